/* fuzz-common.c: what every libFuzzer target of Keypool shares
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "codec/kp-json-guard.h"
#include "kp-sse.h"

#include "fuzz-common.h"

/* Warnings about a bad input are the input's fault, and printing them
 * would slow the run down; a critical is a broken promise of the code. It
 * aborts here: GLib would end with SIGTRAP, which libFuzzer does not catch.
 */
static GLogWriterOutput
quiet_writer (GLogLevelFlags   log_level,
              const GLogField *fields,
              gsize            n_fields,
              gpointer         user_data)
{
  if (log_level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL))
    {
      g_log_writer_standard_streams (log_level, fields, n_fields, user_data);
      abort ();
    }
  return G_LOG_WRITER_HANDLED;
}

/**
 * fuzz_init:
 *
 * Call once, from LLVMFuzzerInitialize(): criticals abort, so that libFuzzer
 * reports them as crashes, and nothing else is printed.
 */
void
fuzz_init (void)
{
  g_log_set_always_fatal (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL);
  g_log_set_writer_func (quiet_writer, NULL, NULL);
}

/**
 * fuzz_request_new:
 * @wire: a client's wire
 * @json: a request body that @wire accepts
 *
 * Returns: (transfer full): the request, parsed as the relay parses it
 */
KpWireRequest *
fuzz_request_new (const KpWire *wire,
                  const char   *json)
{
  g_autoptr(GBytes) body = g_bytes_new_static (json, strlen (json));
  g_autoptr(KpWireRequest) req = kp_wire_request_new (wire, body, NULL);
  g_autoptr(GError) error = NULL;

  if (!kp_wire_request_parse (req, &error))
    g_error ("The fuzz target's own %s request does not parse: %s", wire->id, error->message);
  return g_steal_pointer (&req);
}

/* Keypool's output is JSON that a client parses. Its strings are not always
 * UTF-8 yet: json-glib decodes half a surrogate pair ("\ud800") to bytes
 * that are not, and the text of a provider's error is passed on as it came.
 * Until they are, only the structure is checked here.
 */
void
fuzz_assert_json (const char *data,
                  gsize       len)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *valid = g_utf8_make_valid (data, len);
  g_autoptr(JsonNode) node = kp_json_parse (valid, -1, &error);

  if (node == NULL)
    g_error ("Keypool wrote JSON that does not parse (%s): %.*s",
             error->message, (int)MIN (len, 2000), data);
}

/* A stream Keypool wrote for a client: whole events, each with JSON data
 * (or OpenAI's "[DONE]").
 */
void
fuzz_assert_sse_json (const char *data,
                      gsize       len)
{
  KpSseEvent event = { .data = g_string_new (NULL) };
  gsize offset = 0;
  gsize used;

  while ((used = kp_sse_next_event (data + offset, len - offset, &event)) > 0)
    {
      if (event.has_data && !g_str_equal (event.data->str, "[DONE]"))
        fuzz_assert_json (event.data->str, event.data->len);
      offset += used;
    }
  if (offset != len)
    g_error ("Keypool wrote a stream that ends inside an event: %.*s",
             (int)MIN (len - offset, 2000), data + offset);
  g_string_free (event.data, TRUE);
}
