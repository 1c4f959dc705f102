/* fuzz-stream.c: a provider's stream in one wire (FUZZ_WIRE), decoded
 *
 * The bytes are cut into events as the relay cuts them (SSE, or the wire's
 * own framing) and fed to a
 * bridge toward every client wire that streams, the provider's own wire
 * being a passthrough; a stream that stops without its last event is
 * finished as the relay finishes it. What a bridge writes for a client must
 * be whole events of JSON.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include "config.h"

#include <string.h>

#include "kp-sse.h"
#include "kp-upstream-error.h"

#include "fuzz-common.h"

#ifndef FUZZ_WIRE
#error "FUZZ_WIRE names the provider's wire, e.g. -DFUZZ_WIRE=\"anthropic\""
#endif

static const KpWire *upstream;

static char model_id[] = "fuzz/model";
static char upstream_id[] = "fuzz-model-1";
static const KpOffering offering = { .model_id = model_id, .upstream_id = upstream_id };

typedef struct
{
  KpWireRequest *req;
  KpWireBridge  *bridge;
  GString       *out;
  gboolean       stopped;   /* the relay feeds no more after an error or the end */
} Client;

int
LLVMFuzzerInitialize (int    *argc,
                      char ***argv)
{
  fuzz_init ();
  upstream = kp_wire_for_id (FUZZ_WIRE);
  g_assert_nonnull (upstream);
  g_assert_nonnull (upstream->decoder_new);
  return 0;
}

static void
feed (Client           *client,
      const KpSseEvent *event)
{
  gboolean passthrough = kp_wire_bridge_is_passthrough (client->bridge);
  gboolean forward_raw = TRUE;
  KpStreamStatus status;

  if (client->stopped || !event->has_data)
    return;

  status = kp_wire_bridge_feed (client->bridge, event->name,
                                event->name != NULL ? event->name_len : 0,
                                event->data->str, event->data->len, client->out, &forward_raw);
  g_assert_true (passthrough || !forward_raw);
  g_assert_true (!passthrough || client->out->len == 0);
  kp_wire_bridge_get_usage (client->bridge);

  if (status == KP_STREAM_ERROR)
    {
      /* What the relay makes of a provider's error mid-stream. */
      KpFailure failure = { 0 };

      g_assert_nonnull (kp_wire_bridge_get_error (client->bridge));
      kp_failure_classify_event (&failure, event->data->str);
      if (!passthrough)
        client->req->wire->error_event (502, failure.code != NULL ? failure.code : "upstream_error",
                                        failure.message != NULL ? failure.message : "failed",
                                        client->out);
      kp_failure_clear (&failure);
      client->stopped = TRUE;
    }
  else if (status == KP_STREAM_END)
    client->stopped = TRUE;
  else if (status == KP_STREAM_KEEPALIVE && !passthrough)
    kp_wire_bridge_keepalive (client->bridge, client->out);
}

int
LLVMFuzzerTestOneInput (const guint8 *data,
                        size_t        size)
{
  const char *buf = size > 0 ? (const char *)data : "";
  g_autoptr(GPtrArray) clients = g_ptr_array_new ();
  g_autoptr(GBytes) body = g_bytes_new_static ("{}", 2);
  KpSseEvent event = { .data = g_string_new (NULL) };
  KpWireTarget target = { .offering = &offering };
  gsize offset = 0;
  gsize used;

  /* The length chooses the options, so that mutations reach all four. */
  target.strip_usage = (size & 2) != 0;
  for (const KpWire * const *wire = kp_wire_all (); *wire != NULL; wire++)
    {
      Client *client;

      /* No client speaks a provider-only wire (Kiro): no passthrough of it. */
      if ((*wire)->client_routes == NULL || (*wire != upstream && (*wire)->encoder == NULL))
        continue;
      client = g_new0 (Client, 1);
      client->req = kp_wire_request_new (*wire, body, NULL);
      client->req->model = g_strdup ("fuzz/model");
      client->req->stream = TRUE;
      client->req->wants_usage = (size & 1) != 0;
      client->req->prompt_tokens = 42;
      client->bridge = kp_wire_bridge_new (upstream, *wire, client->req, &target);
      client->out = g_string_new (NULL);
      g_ptr_array_add (clients, client);
    }

  if (upstream->next_event != NULL)
    {
      /* A stream of the wire's own framing (Kiro's AWS event stream), cut
       * as the relay cuts it; a broken frame ends it.
       */
      gssize n;

      while ((n = upstream->next_event ((const guint8 *)buf + offset, size - offset, TRUE,
                                        &event, NULL)) > 0)
        {
          for (guint i = 0; i < clients->len; i++)
            feed (g_ptr_array_index (clients, i), &event);
          offset += n;
        }
    }
  else
    {
      while ((used = kp_sse_next_event (buf + offset, size - offset, &event)) > 0)
        {
          for (guint i = 0; i < clients->len; i++)
            feed (g_ptr_array_index (clients, i), &event);
          offset += used;
        }
      if (offset < size)
        {
          /* A last event without its blank line. */
          g_autofree char *tail = g_malloc (size - offset + 2);

          memcpy (tail, buf + offset, size - offset);
          memcpy (tail + size - offset, "\n\n", 2);
          if (kp_sse_next_event (tail, size - offset + 2, &event) > 0)
            for (guint i = 0; i < clients->len; i++)
              feed (g_ptr_array_index (clients, i), &event);
        }
    }

  for (guint i = 0; i < clients->len; i++)
    {
      Client *client = g_ptr_array_index (clients, i);

      if (!client->stopped)
        kp_wire_bridge_finish (client->bridge, client->out);
      kp_wire_bridge_has_content (client->bridge);
      fuzz_assert_sse_json (client->out->str, client->out->len);

      kp_wire_bridge_free (client->bridge);
      kp_wire_request_free (client->req);
      g_string_free (client->out, TRUE);
      g_free (client);
    }
  g_string_free (event.data, TRUE);
  return 0;
}
