/* kp-relay-client.c: the client's side of a relay
 *
 * What the client gets and when: route headers, a stream committed on the
 * first byte, chunks forwarded as they come, an error in the client's wire
 * (an error event mid-stream), and the end of the response once the row is
 * written (for a request alone in flight: just before it is, in the same
 * call). A client that hangs up, even while its message is paused, ends
 * the exchange at once.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include "kp-gateway.h"
#include "kp-http.h"
#include "kp-relay-private.h"

/* Client side ----------------------------------------------------------- */

/* Kept in the ledger and shown, so never with the key in it, even when a
 * provider echoes the key in its error.
 */
void
kp_relay_set_error_message (KpRelay    *self,
                   const char *message)
{
  g_free (self->error_message);
  self->error_message = kp_secret_scrub (message,
                                         self->credential
                                           ? kp_credential_get_secret (self->credential) : NULL);
}

void
kp_relay_note_first_byte (KpRelay *self)
{
  if (self->first_byte_us == 0)
    self->first_byte_us = g_get_monotonic_time ();
}

void
kp_relay_add_route_headers (KpRelay            *self,
                   SoupMessageHeaders *headers)
{
  soup_message_headers_replace (headers, "x-request-id", self->request_id);
  if (self->provider != NULL && self->plan != NULL && self->route_index < self->plan->routes->len)
    {
      const KpRoute *route = &g_array_index (self->plan->routes, KpRoute, self->route_index);
      g_autofree char *value = NULL;
      g_autofree char *key = route->credential
        ? g_strdup_printf ("%" G_GINT64_FORMAT, kp_credential_get_id (route->credential))
        : g_strdup ("none");
      char cost[G_ASCII_DTOSTR_BUF_SIZE] = "unknown";

      if (route->expected_usd >= 0)
        g_ascii_formatd (cost, sizeof cost, "%.6f", route->expected_usd);
      value = g_strdup_printf ("rank=%u/%u provider=%s key=%s model=%s expected_usd=%s attempt=%u",
                               route->rank, self->plan->routes->len,
                               kp_provider_get_id (self->provider), key,
                               route->offering->upstream_id, cost, self->attempt_number);
      soup_message_headers_replace (headers, "x-keypool-provider",
                                    kp_provider_get_id (self->provider));
      soup_message_headers_replace (headers, "x-keypool-route", value);
    }
}

/* The outcome is final: the row goes to the ledger, and the end of the
 * response (@action) waits until it is committed, so a client that has seen
 * its answer end has its row even if Keypool is killed right after; a
 * request alone in flight ends first and is committed right after
 * (kp-gateway-relays.c).
 */
void
kp_relay_end_relay (KpRelay     *self,
           FinalAction  action)
{
  if (self->ended)
    return;

  self->ended = TRUE;
  self->final_action = action;
  self->ended_us = g_get_monotonic_time ();
  kp_gateway_relay_finished (self->gateway, self);
}

/**
 * kp_relay_end_answer:
 *
 * Called by the gateway once the request's row is committed, or is about
 * to be at once: the client's response ends now, as the outcome decided.
 * Once is enough; later calls do nothing.
 */
void
kp_relay_end_answer (KpRelay *self)
{
  FinalAction action;

  g_return_if_fail (KP_IS_RELAY (self));

  action = self->final_action;
  self->final_action = FINAL_NONE;
  if (self->client_gone)
    return;

  switch (action)
    {
    case FINAL_COMPLETE:
      kp_exchange_end_chunks (self->client);
      break;
    case FINAL_UNPAUSE:
      kp_exchange_unpause (self->client);
      break;
    case FINAL_NONE:
    default:
      break;
    }
}

/* Ends the client's response with an error, in the client's protocol. Before
 * anything reached the client that is a plain HTTP error; after, it is an
 * error event and no [DONE], so the stream never looks complete.
 */
void
kp_relay_reply_error (KpRelay    *self,
             guint       status,
             const char *code,
             const char *message)
{
  kp_relay_set_error_message (self, message);
  if (self->status == 0 || !self->committed)
    self->status = status;

  if (self->client_gone || self->completed)
    return;

  self->completed = TRUE;

  if (!self->committed)
    {
      kp_relay_add_route_headers (self, kp_exchange_get_response_headers (self->client));
      kp_http_reply_json (self->client, status, self->wire->error_json (status, code, self->error_message));
      kp_relay_end_relay (self, FINAL_UNPAUSE);
    }
  else
    {
      g_autoptr(GString) event = g_string_new (NULL);

      /* The error goes out now; the stream's end waits for the row. */
      kp_wire_error_event (self->req, status, code, self->error_message, event);
      kp_exchange_write_chunk (self->client, event->str, event->len);
      kp_relay_end_relay (self, FINAL_COMPLETE);
    }
}


void
kp_relay_commit_stream (KpRelay *self)
{
  SoupMessageHeaders *headers;

  g_assert (!self->committed);

  /* From here on this route answers: no failover once a byte is out. */
  kp_relay_record_attempt (self, self->upstream_status, KP_FAILURE_NONE);
  kp_gateway_note_success (self->gateway, &g_array_index (self->plan->routes, KpRoute,
                                                          self->route_index));
  self->committed = TRUE;
  self->status = self->upstream_status;
  kp_relay_note_first_byte (self);

  headers = kp_exchange_get_response_headers (self->client);
  kp_exchange_set_status (self->client, self->upstream_status);
  soup_message_headers_replace (headers, "Content-Type",
                                self->req->stream_as_array ? "application/json"
                                                           : "text/event-stream");
  soup_message_headers_replace (headers, "Cache-Control", "no-cache");
  kp_relay_add_route_headers (self, headers);
}

void
kp_relay_forward (KpRelay    *self,
         const char *data,
         gsize       len)
{
  if (len == 0 || self->client_gone || self->completed)
    return;

  if (!self->committed)
    kp_relay_commit_stream (self);

  kp_exchange_write_chunk (self->client, data, len);
}

/* The client's exchange is over: its answer is written, or the client hung
 * up (@gone), at any time, also while the relay waits for the provider.
 */
void
kp_relay_on_client_done (KpExchange *exchange,
                         gboolean    gone,
                         gpointer    user_data)
{
  KpRelay *self = user_data;

  g_assert (KP_IS_RELAY (self));

  self->client_gone = TRUE;

  if (!self->completed)
    {
      /* The client hung up before we were done: stop the upstream at once. */
      self->outcome = KP_OUTCOME_CANCELLED;
      if (self->status == 0 || !self->committed)
        self->status = 499;
      kp_relay_set_error_message (self, "The client closed the connection before the response was complete.");
      g_debug ("%s: client went away, cancelling upstream", self->request_id);
    }

  g_cancellable_cancel (self->cancellable);
  kp_relay_release_upstream (self);
  kp_relay_end_relay (self, FINAL_NONE);

  /* The reference taken in kp_relay_new(): the exchange is over. */
  g_object_unref (self);
}
