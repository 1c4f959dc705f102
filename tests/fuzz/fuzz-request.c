/* fuzz-request.c: a client's request body, as one wire (FUZZ_WIRE) reads it
 *
 * The body is parsed as the server parses it; when the wire accepts it, it is
 * made canonical and built for every provider wire the relay could send it
 * to, with a reasoning model and a plain one. A refused body gets the error
 * the client would get.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include "config.h"

#include <string.h>

#include "fuzz-common.h"

#ifndef FUZZ_WIRE
#error "FUZZ_WIRE names the client wire, e.g. -DFUZZ_WIRE=\"openai-chat\""
#endif

static const KpWire *wire;
static SoupMessageHeaders *client_headers;

static char model_id[] = "fuzz/model";
static char upstream_id[] = "fuzz-model-1";
static KpOffering offerings[] = {
  { .model_id = model_id, .upstream_id = upstream_id, .input = 1, .output = 2, .context = 8192 },
  { .model_id = model_id, .upstream_id = upstream_id, .reasoning = TRUE },
};

int
LLVMFuzzerInitialize (int    *argc,
                      char ***argv)
{
  fuzz_init ();
  wire = kp_wire_for_id (FUZZ_WIRE);
  g_assert_nonnull (wire);
  g_assert_nonnull (wire->client_routes);

  /* What an Anthropic client sends; the other wires ignore it. */
  client_headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_REQUEST);
  soup_message_headers_append (client_headers, "anthropic-version", "2023-06-01");
  soup_message_headers_append (client_headers, "anthropic-beta",
                               "interleaved-thinking-2025-05-14,context-1m-2025-08-07");
  return 0;
}

static void
build (KpWireRequest *req,
       const KpWire  *upstream)
{
  for (guint i = 0; i < G_N_ELEMENTS (offerings); i++)
    {
      KpWireTarget target = { .offering = &offerings[i] };
      g_autoptr(GError) error = NULL;
      g_autoptr(GBytes) body = kp_wire_build_upstream (req, upstream, &target, &error);
      g_autoptr(SoupMessageHeaders) headers = NULL;

      g_assert_true ((body != NULL) != (error != NULL));
      kp_wire_target_clear (&target);
      if (body == NULL)
        continue;
      fuzz_assert_json (g_bytes_get_data (body, NULL), g_bytes_get_size (body));
      if (upstream->add_headers != NULL)
        {
          headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_REQUEST);
          upstream->add_headers (req, headers);
        }
    }
}

int
LLVMFuzzerTestOneInput (const guint8 *data,
                        size_t        size)
{
  g_autoptr(GBytes) body = g_bytes_new (data, size);
  g_autoptr(KpWireRequest) req = kp_wire_request_new (wire, body, client_headers);
  g_autoptr(GError) error = NULL;

  if (!kp_wire_request_parse (req, &error))
    {
      g_autofree char *answer = NULL;

      g_assert_nonnull (error);
      answer = wire->error_json (400, kp_wire_error_code (error), error->message);
      fuzz_assert_json (answer, strlen (answer));
      return 0;
    }
  g_assert_no_error (error);
  g_assert_true (req->model != NULL && *req->model != '\0');
  g_assert_cmpint (req->output_tokens, >, 0);

  /* The provider's own wire first, as a route that serves it takes it as is. */
  build (req, wire);
  /* Chat translates through the hub; so do embeddings (to Gemini's). */
  if (wire->kind != KP_WIRE_KIND_CHAT && wire->to_canonical == NULL)
    return 0;

  if (kp_wire_request_get_canonical (req, &error) == NULL)
    {
      g_assert_nonnull (error);
      return 0;
    }
  for (const KpWire * const *upstream = kp_wire_all (); *upstream != NULL; upstream++)
    if (*upstream != wire && (*upstream)->kind == wire->kind &&
        ((*upstream)->response_to_canonical != NULL || (*upstream)->answer_to_canonical != NULL))
      build (req, *upstream);
  return 0;
}
