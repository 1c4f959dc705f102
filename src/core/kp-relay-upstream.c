/* kp-relay-upstream.c: a relay's exchange with its provider, once sent
 *
 * The phases of the exchange and their deadlines (queued for a connection
 * from Keypool's own pool, connecting, waiting for the first byte, the body
 * with its idle timeout), and the body itself: read without blocking in
 * bursts from Keypool's own HTTP/1.1 client (http/kp-http1-pool.c), handed
 * on as events (kp-relay-answer.c) or kept whole, and its end.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include <gio/gio.h>

#include "kp-gateway-private.h"
#include "wire/kp-wire.h"

#include "kp-relay-private.h"

static void read_burst    (KpRelay *self);
static void body_failed   (KpRelay *self,
                           GError  *error);

/* Timers ----------------------------------------------------------------- */

const char *
kp_relay_phase_name (Phase phase)
{
  switch (phase)
    {
    case PHASE_QUEUED:
      return "free connection";
    case PHASE_CONNECT:
      return "connect";
    case PHASE_FIRST_BYTE:
      return "first byte";
    case PHASE_BODY:
      return "idle";
    case PHASE_IDLE:
    default:
      return "idle";
    }
}

guint
kp_relay_phase_timeout_ms (KpRelay *self,
                           Phase    phase)
{
  switch (phase)
    {
    case PHASE_QUEUED:
      /* Waiting for one of Keypool's own connections is not the provider's
       * fault: as much patience as for its first byte.
       */
      return self->first_byte_ms;
    case PHASE_CONNECT:
      return self->connect_ms;
    case PHASE_FIRST_BYTE:
      return self->first_byte_ms;
    case PHASE_BODY:
      return self->idle_ms;
    case PHASE_IDLE:
    default:
      return 0;
    }
}

/* One deadline for all phases, and the phase's true deadline in a field.
 * The shared timer (kp-deadlines.c) is moved only when the deadline comes
 * sooner than it is set for; a later deadline (a new phase, a chunk of the
 * body) is followed when the timer passes.
 */
static void
set_deadline (KpRelay *self,
              gint64   deadline_us)
{
  self->deadline_us = deadline_us;
  if (deadline_us == -1)
    return;
  if (!kp_deadline_is_set (&self->timer) || deadline_us < self->timer.when_us)
    kp_deadline_set (&self->timer, deadline_us);
}

void
kp_relay_enter_phase (KpRelay *self,
                      Phase    phase)
{
  guint timeout_ms;

  self->phase = phase;
  timeout_ms = kp_relay_phase_timeout_ms (self, phase);
  set_deadline (self, timeout_ms == 0 ? -1 : kp_deadlines_now () + (gint64)timeout_ms * 1000);
}

/* A chunk arrived: the idle deadline counts from now (the iteration's time). */
static void
note_body_activity (KpRelay *self)
{
  if (self->phase != PHASE_BODY)
    kp_relay_enter_phase (self, PHASE_BODY);
  else if (self->idle_ms > 0)
    set_deadline (self, kp_deadlines_now () + (gint64)self->idle_ms * 1000);
}

static void
on_timer (KpDeadline *timer,
          gpointer    user_data)
{
  KpRelay *self = user_data;

  if (self->deadline_us == -1)
    return;
  /* The deadline moved later since the timer was set: follow it now. */
  if (self->deadline_us > kp_deadlines_now ())
    {
      kp_deadline_set (&self->timer, self->deadline_us);
      return;
    }

  self->timed_out = TRUE;
  g_debug ("%s: %s timeout", self->request_id, kp_relay_phase_name (self->phase));
  self->deadline_us = -1;
  g_cancellable_cancel (self->cancellable);

  if (self->exchange != NULL)
    {
      g_autoptr(GError) error = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                                                     "the provider did not answer in time");

      g_object_ref (self);
      if (self->body_mode == BODY_NONE)
        kp_relay_upstream_failed (self, error);
      else
        body_failed (self, error);
      g_object_unref (self);
    }
}

/* Makes the relay's deadline ready; it is set by each phase. */
void
kp_relay_init_deadline (KpRelay *self)
{
  kp_deadline_init (&self->timer, on_timer, self);
}

/* Reading ----------------------------------------------------------------- */

static void
upstream_eof (KpRelay *self)
{
  if (self->body_mode == BODY_SSE)
    {
      kp_relay_process_events (self, TRUE);
      if (self->failed)
        {
          kp_relay_route_failed (self, kp_relay_event_failure_status (self));
          return;
        }
      if (self->client_gone || self->completed)
        {
          kp_relay_release_upstream (self);
          return;
        }

      /* A stream whose provider ended without its last event: the bridge
       * closes it when the answer was finished.
       */
      if (!self->saw_done && kp_wire_bridge_finish (self->bridge, self->out))
        {
          self->saw_done = TRUE;
          self->usage = *kp_wire_bridge_get_usage (self->bridge);
          kp_relay_flush_out (self);
        }

      /* A stream read until the provider closed the connection (no
       * framing) ends plainly; one that never finished its answer was cut.
       */
      if (!self->saw_done && !self->saw_finish && self->outcome == KP_OUTCOME_OK)
        {
          g_autoptr(GError) error =
            g_error_new_literal (G_IO_ERROR, G_IO_ERROR_PARTIAL_INPUT,
                                 self->committed ? "it ended before the answer was complete"
                                                 : "the stream ended before the answer began");

          kp_relay_upstream_failed (self, error);
          return;
        }

      kp_relay_release_upstream (self);
      if (!self->committed)
        {
          /* An empty stream: the client still gets a well-formed response. */
          kp_relay_commit_stream (self);
        }
      self->completed = TRUE;
      kp_relay_end_relay (self, FINAL_COMPLETE);
      return;
    }

  kp_relay_finish_whole_body (self);
}

/* Reads what upstream has without blocking; the connection's one source
 * calls again when there is more. The events of all the chunks read at
 * once go to the client together (kp_relay_process_events): nothing waits
 * for more, and a burst costs one client chunk, not one per upstream chunk.
 */
static void
read_upstream (KpRelay *self)
{
  /* A route that fails over or a client that goes away may drop the last
   * other reference meanwhile.
   */
  g_object_ref (self);
  self->hold_out = TRUE;
  read_burst (self);
  self->hold_out = FALSE;
  if (self->out != NULL)
    kp_relay_flush_out (self);
  g_object_unref (self);
}

/* The body broke off (a read error, or a deadline). */
static void
body_failed (KpRelay *self,
             GError  *error)
{
  g_debug ("%s: upstream read failed: %s", self->request_id, error->message);

  /* What the burst held goes out before the error. */
  self->hold_out = FALSE;
  kp_relay_flush_out (self);
  if (self->body_mode == BODY_SSE && !self->committed)
    {
      kp_relay_process_events (self, FALSE);
      if (self->failed)
        {
          kp_relay_route_failed (self, kp_relay_event_failure_status (self));
          return;
        }
    }
  kp_relay_upstream_failed (self, error);
}

static void
read_burst (KpRelay *self)
{
  for (guint i = 0; i < READS_PER_DISPATCH; i++)
    {
      g_autoptr(GError) error = NULL;
      gsize old_len = self->pending->len;
      gssize n;

      if (self->client_gone || self->exchange == NULL)
        return;

      /* Read into the buffer's free space; it grows only when nearly full. */
      if (self->pending_cap - old_len < READ_CHUNK / 4)
        self->pending_cap = MAX (self->pending_cap * 2, old_len + READ_CHUNK);
      g_byte_array_set_size (self->pending, self->pending_cap);
      n = kp_http1_request_read (self->exchange, self->pending->data + old_len,
                                 self->pending_cap - old_len, &error);
      g_byte_array_set_size (self->pending, old_len + MAX (n, 0));

      if (n == KP_HTTP1_WOULD_BLOCK)
        return;

      if (n < 0)
        {
          body_failed (self, error);
          return;
        }

      if (n == 0)
        {
          /* What the burst held goes out before the end. */
          self->hold_out = FALSE;
          kp_relay_flush_out (self);
          upstream_eof (self);
          return;
        }

      note_body_activity (self);

      if (kp_relay_over_cap (self))
        return;

      if (self->body_mode == BODY_SSE)
        {
          kp_relay_process_events (self, FALSE);
          if (self->failed)
            {
              kp_relay_route_failed (self, kp_relay_event_failure_status (self));
              return;
            }
          if (self->completed)
            {
              /* An error event ended the client's answer. */
              kp_relay_release_upstream (self);
              return;
            }
        }
      else if (self->body_mode == BODY_ERROR && self->pending->len > ERROR_BODY_LIMIT)
        {
          upstream_eof (self);
          return;
        }
    }

  /* Stopped with data still coming: the connection may hold bytes that no
   * poll would announce.
   */
  if (self->exchange != NULL && !self->client_gone)
    kp_http1_request_again (self->exchange);
}

static void
on_head (guint               status,
         SoupMessageHeaders *headers,
         gpointer            user_data)
{
  KpRelay *self = user_data;
  const char *content_type = soup_message_headers_get_content_type (headers, NULL);

  self->upstream_status = status;
  g_clear_pointer (&self->upstream_headers, soup_message_headers_unref);
  self->upstream_headers = soup_message_headers_ref (headers);

  if (!SOUP_STATUS_IS_SUCCESSFUL (self->upstream_status))
    self->body_mode = BODY_ERROR;
  else if (g_strcmp0 (content_type, "text/event-stream") == 0)
    self->body_mode = BODY_SSE;
  /* A stream of the wire's own framing: relayed as events when the client
   * asked for a stream, read whole when it did not.
   */
  else if (self->upstream_wire->stream_content_type != NULL &&
           g_strcmp0 (content_type, self->upstream_wire->stream_content_type) == 0)
    self->body_mode = self->req->stream ? BODY_SSE : BODY_WHOLE;
  else
    self->body_mode = BODY_WHOLE;

  /* A wire that has no stream of its own is read as a whole answer. */
  if (self->body_mode == BODY_SSE && self->upstream_wire->decoder_new == NULL)
    self->body_mode = BODY_WHOLE;
  if (self->body_mode == BODY_SSE)
    self->bridge = kp_wire_bridge_new (self->upstream_wire, self->wire, self->req, &self->target);

  kp_relay_enter_phase (self, PHASE_BODY);
  read_upstream (self);
}

static void
on_readable (gpointer user_data)
{
  read_upstream (user_data);
}

static void
on_failed (const GError *error,
           gpointer      user_data)
{
  KpRelay *self = user_data;

  g_debug ("%s: upstream request failed: %s", self->request_id, error->message);
  g_object_ref (self);
  kp_relay_upstream_failed (self, (GError *)error);
  g_object_unref (self);
}

/* A new connection is being made for the request: from here the provider's
 * connect timeout counts. A pooled connection makes none.
 */
static void
on_connecting (gpointer user_data)
{
  KpRelay *self = user_data;

  if (self->phase != PHASE_BODY)
    kp_relay_enter_phase (self, PHASE_CONNECT);
}

static void
on_sent (gpointer user_data)
{
  KpRelay *self = user_data;

  /* The request is out, so the connection is up: now wait for the answer. */
  if (self->phase == PHASE_QUEUED || self->phase == PHASE_CONNECT)
    kp_relay_enter_phase (self, PHASE_FIRST_BYTE);
}

static const KpHttp1Callbacks upstream_callbacks = {
  .connecting = on_connecting,
  .sent = on_sent,
  .head = on_head,
  .readable = on_readable,
  .failed = on_failed,
};

/* Sends the route's request, prepared by the relay, to its provider. */
void
kp_relay_send_upstream (KpRelay *self)
{
  kp_relay_enter_phase (self, PHASE_QUEUED);
  self->exchange = kp_http1_request_new (kp_gateway_get_pool_for (self->gateway, self->upstream_uri),
                                         self->upstream_uri, "POST", self->upstream_request,
                                         self->upstream_body, &upstream_callbacks, self);
}
