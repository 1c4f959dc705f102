/* kp-relay-answer.c: what a provider answered, on its way to the client
 *
 * The relay's second room: a stream's events (held until the answer has
 * begun, then forwarded or translated as they come), a whole answer or
 * error (translated into the client's wire, its usage read), and the caps
 * on both. kp-relay.c keeps the exchange (routes, attempts, I/O),
 * kp-relay-client.c the client's side.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include <string.h>

#include <json-glib/json-glib.h>

#include "codec/kp-json-guard.h"
#include "kp-gateway.h"
#include "kp-relay-private.h"

/* Stream processing ----------------------------------------------------- */


/* Text for the client or a log: no secret of the route in it, even when a
 * provider echoes the key.
 */
char *
kp_relay_scrub (KpRelay    *self,
       const char *text)
{
  return kp_secret_scrub (text, self->credential ? kp_credential_get_secret (self->credential)
                                                 : NULL);
}

static gboolean
may_flush (KpRelay *self)
{
  return self->committed || self->saw_done || kp_wire_bridge_has_content (self->bridge);
}

/* What reached self->out goes to the client once the answer has begun;
 * before, it is held, so that an error in its place can still fail over.
 */
void
kp_relay_flush_out (KpRelay *self)
{
  if (self->out->len == 0 || !may_flush (self))
    return;
  kp_relay_forward (self, self->out->str, self->out->len);
  g_string_truncate (self->out, 0);
}

/* The provider's error in the middle of the answer: the client gets it in
 * its own wire, and the end.
 */
static void
mid_stream_error (KpRelay          *self,
                  const KpSseEvent *event,
                  const char       *raw,
                  gsize             raw_len)
{
  kp_relay_flush_out (self);
  self->outcome = KP_OUTCOME_UPSTREAM_ERROR;

  if (kp_wire_bridge_is_passthrough (self->bridge))
    {
      g_autofree char *text = g_strndup (raw, raw_len);
      g_autofree char *clean = kp_relay_scrub (self, text);

      kp_relay_set_error_message (self, event->data->str);
      kp_relay_forward (self, clean, strlen (clean));
      self->completed = TRUE;
      kp_relay_end_relay (self, FINAL_COMPLETE);
    }
  else
    {
      g_autofree char *message =
        g_strdup_printf ("%s: %s", kp_provider_get_name (self->provider),
                         self->failure.message ? self->failure.message : "the stream failed");

      kp_relay_reply_error (self, kp_relay_event_failure_status (self),
                   self->failure.code ? self->failure.code : "upstream_error", message);
    }
  kp_failure_clear (&self->failure);
}

/* One event of the provider's stream. Returns FALSE when the route failed
 * before anything reached the client (self->failed), or the client's
 * answer has ended.
 */
static gboolean
answer_begun (KpRelay *self)
{
  return self->committed || kp_wire_bridge_has_content (self->bridge);
}

static gboolean
handle_event (KpRelay          *self,
              const KpSseEvent *event,
              const char       *raw,
              gsize             raw_len)
{
  gboolean forward_raw = FALSE;
  KpStreamStatus status;
  gsize name_len = event->name != NULL ? event->name_len : 0;

  /* Comments: the provider's keep-alives. Once the answer has begun (even
   * when what began is still held for the end of this read burst), they
   * reach the client; before, nothing has been sent that they could follow.
   */
  if (!event->has_data)
    {
      if (answer_begun (self))
        {
          if (kp_wire_bridge_is_passthrough (self->bridge))
            g_string_append_len (self->out, raw, raw_len);
          else
            kp_wire_bridge_keepalive (self->bridge, self->out);
        }
      return TRUE;
    }

  status = kp_wire_bridge_feed (self->bridge, event->name, name_len, event->data->str,
                                event->data->len, self->out, &forward_raw);
  self->usage = *kp_wire_bridge_get_usage (self->bridge);
  if (kp_wire_bridge_has_finish (self->bridge))
    self->saw_finish = TRUE;

  switch (status)
    {
    case KP_STREAM_ERROR:
      kp_failure_classify_event (&self->failure, event->data->str);
      if (!self->committed && !kp_wire_bridge_has_content (self->bridge))
        {
          self->failed = TRUE;
          return FALSE;
        }
      mid_stream_error (self, event, raw, raw_len);
      return FALSE;
    case KP_STREAM_KEEPALIVE:
      /* A sign of life mid-answer reaches the client, so that a long silence
       * does not look like a dead connection to it.
       */
      if (!kp_wire_bridge_is_passthrough (self->bridge))
        {
          if (answer_begun (self))
            kp_wire_bridge_keepalive (self->bridge, self->out);
          return TRUE;
        }
      break;
    case KP_STREAM_END:
      self->saw_done = TRUE;
      break;
    case KP_STREAM_CONTINUE:
    default:
      break;
    }

  if (forward_raw)
    g_string_append_len (self->out, raw, raw_len);
  return TRUE;
}

/* Where the next event may end: after a blank line. Only the bytes that
 * came since the last look are searched, so a large event that arrives in
 * many reads costs linear time.
 */
static gboolean
has_event_end (KpRelay *self)
{
  const char *buf = (const char *)self->pending->data;
  gsize from = self->scanned > 2 ? self->scanned - 2 : 0;
  gsize len = self->pending->len;

  for (const char *p = buf + from; (p = memchr (p, '\n', len - (p - buf))) != NULL; p++)
    {
      gsize at = p - buf;

      if (at + 1 < len && (buf[at + 1] == '\n' ||
                           (buf[at + 1] == '\r' && at + 2 < len && buf[at + 2] == '\n')))
        return TRUE;
    }
  self->scanned = len;
  return FALSE;
}

/* A stream whose framing is broken (a bad checksum, a cut message): it
 * cannot be read on. Before the answer began another route may answer;
 * after, the client's stream ends with the error.
 */
static void
framing_failed (KpRelay *self,
                GError  *error)
{
  g_autofree char *broke = NULL;

  g_debug ("%s: the stream cannot be read: %s", self->request_id, error->message);
  if (!self->committed && !kp_wire_bridge_has_content (self->bridge))
    {
      kp_failure_clear (&self->failure);
      self->failure = (KpFailure) {
        .klass = KP_FAILURE_DOWN,
        .message = g_strdup_printf ("its stream cannot be read: %s", error->message),
        .code = g_strdup ("upstream_invalid_stream"),
        .retry_after = -1,
      };
      self->failed = TRUE;
      return;
    }

  kp_relay_flush_out (self);
  broke = g_strdup_printf ("The stream from %s broke off: %s.",
                           kp_provider_get_name (self->provider), error->message);
  self->outcome = KP_OUTCOME_INTERRUPTED;
  kp_relay_reply_error (self, 502, "upstream_invalid_stream", broke);
}

/* The events of a stream its wire cuts (not SSE): every whole one. */
static void
process_framed (KpRelay  *self,
                gboolean  eof)
{
  const guint8 *buf = self->pending->len > 0 ? self->pending->data : (const guint8 *)"";
  gsize len = self->pending->len;
  gsize offset = 0;
  gssize n;

  for (;;)
    {
      g_autoptr(GError) error = NULL;

      n = self->upstream_wire->next_event (buf + offset, len - offset, eof, &self->event, &error);
      if (n < 0)
        {
          g_byte_array_set_size (self->pending, 0);
          framing_failed (self, error);
          return;
        }
      if (n == 0)
        break;
      if (!handle_event (self, &self->event, (const char *)buf + offset, n) &&
          (self->failed || self->completed))
        return;
      offset += n;
    }

  g_byte_array_remove_range (self->pending, 0, offset);
  if (eof || !self->hold_out)
    kp_relay_flush_out (self);
}

/* Hands every complete event in the buffer to the client. While the relay
 * reads a burst of upstream chunks (hold_out), what they produce goes out
 * once, at the end of the burst: one client chunk for all that was there.
 */
void
kp_relay_process_events (KpRelay  *self,
                gboolean  eof)
{
  const char *buf = (const char *)self->pending->data;
  gsize len = self->pending->len;
  gsize offset = 0;
  gsize n;

  if (self->upstream_wire->next_event != NULL)
    {
      process_framed (self, eof);
      return;
    }
  if (len == 0)
    {
      if (eof || !self->hold_out)
        kp_relay_flush_out (self);
      return;
    }
  if (!eof && !has_event_end (self))
    return;

  while ((n = kp_sse_next_event (buf + offset, len - offset, &self->event)) > 0)
    {
      gboolean go_on = handle_event (self, &self->event, buf + offset, n);

      offset += n;
      if (!go_on)
        {
          if (self->failed || self->completed)
            return;
        }
    }

  if (eof && offset < len)
    {
      /* A last event without its blank line: parse it, pass it on as is. */
      g_autoptr(GByteArray) tail = g_byte_array_new ();

      g_byte_array_append (tail, (const guint8 *)buf + offset, len - offset);
      g_byte_array_append (tail, (const guint8 *)"\n\n", 2);
      if (kp_sse_next_event ((const char *)tail->data, tail->len, &self->event) > 0 &&
          !handle_event (self, &self->event, (const char *)tail->data, tail->len) &&
          (self->failed || self->completed))
        return;
      offset = len;
    }

  g_byte_array_remove_range (self->pending, 0, offset);
  self->scanned = 0;
  if (eof || !self->hold_out)
    kp_relay_flush_out (self);
}

/* The extent of the last `"usage": {…}` object in a JSON text. A quote
 * inside a string is escaped, so the key cannot be matched inside one.
 */
static gboolean
find_usage_object (const char  *data,
                   gsize        len,
                   const char  *member,
                   const char **start,
                   gsize       *object_len)
{
  g_autofree char *key = g_strdup_printf ("\"%s\"", member);
  gsize key_len = strlen (key);
  const char *end = data + len;
  const char *found = NULL;
  const char *p = data;
  const char *q;
  gsize depth = 0;
  gboolean in_string = FALSE;

  while ((p = memmem (p, end - p, key, key_len)) != NULL)
    {
      q = p + key_len;
      while (q < end && g_ascii_isspace (*q))
        q++;
      if (q < end && *q == ':')
        {
          q++;
          while (q < end && g_ascii_isspace (*q))
            q++;
          if (q < end && *q == '{')
            found = q;
        }
      p += key_len;
    }
  if (found == NULL)
    return FALSE;

  for (q = found; q < end; q++)
    {
      if (in_string)
        {
          if (*q == '\\')
            q++;
          else if (*q == '"')
            in_string = FALSE;
        }
      else if (*q == '"')
        in_string = TRUE;
      else if (*q == '{')
        depth++;
      else if (*q == '}' && --depth == 0)
        {
          *start = found;
          *object_len = q - found + 1;
          return TRUE;
        }
    }
  return FALSE;
}

/* A whole answer can be long; only its usage object is parsed. */
static void
parse_whole_usage (KpRelay *self)
{
  g_autoptr(JsonNode) root = NULL;
  const char *start;
  gsize len;

  if (self->upstream_wire->parse_usage == NULL ||
      !find_usage_object ((const char *)self->pending->data, self->pending->len,
                          self->upstream_wire->usage_member ?: "usage", &start, &len))
    return;

  root = kp_json_read (start, len, KP_JSON_READ_SEAL, NULL);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    return;
  self->upstream_wire->parse_usage (&self->usage, json_node_get_object (root));
}

/* Replaces the pending body with @text. */
static void
take_body (KpRelay *self,
           char    *text,
           gsize    len)
{
  g_byte_array_set_size (self->pending, 0);
  g_byte_array_append (self->pending, (const guint8 *)text, len);
  self->pending_cap = self->pending->len;
  g_free (text);
}

/* A whole answer or error body in the client's wire, with no secret of the
 * route in it. Returns FALSE when the answer cannot be read.
 */
static gboolean
translate_whole_body (KpRelay  *self,
                      gboolean  is_error)
{
  const char *data = (const char *)self->pending->data;
  gsize len = self->pending->len;

  if (is_error)
    {
      char *text;

      if (self->wire != self->upstream_wire)
        text = kp_wire_translate_error (self->wire, self->upstream_status, data, len);
      else
        text = g_strndup (data, len);
      if (self->credential != NULL)
        {
          char *clean = kp_relay_scrub (self, text);

          g_free (text);
          text = clean;
        }
      take_body (self, text, strlen (text));
      return TRUE;
    }

  if (self->wire != self->upstream_wire)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GBytes) answer = kp_wire_translate_answer (self->req, self->upstream_wire,
                                                           data, len, &self->usage, &error);
      gsize answer_len;
      gconstpointer answer_data;

      if (answer == NULL)
        {
          g_debug ("%s: the answer cannot be translated: %s", self->request_id, error->message);
          return FALSE;
        }
      answer_data = g_bytes_get_data (answer, &answer_len);
      take_body (self, g_memdup2 (answer_data, answer_len), answer_len);
    }
  return TRUE;
}

/* The provider's answer to a non-streamed request, or its error. */
void
kp_relay_finish_whole_body (KpRelay *self)
{
  SoupMessageHeaders *upstream_headers = self->upstream_headers;
  const char *content_type = soup_message_headers_get_content_type (upstream_headers, NULL);
  SoupMessageHeaders *headers;
  gsize len = self->pending->len;
  guint8 *data;

  if (self->body_mode == BODY_ERROR)
    {
      g_autofree char *text = g_strndup ((const char *)self->pending->data, MIN (len, 1000));

      kp_failure_classify_http (&self->failure, self->upstream_status, upstream_headers,
                                (const char *)self->pending->data, len);
      if (self->upstream_wire->classify != NULL)
        self->upstream_wire->classify (&self->failure, self->upstream_status,
                                       (const char *)self->pending->data, len);
      if (self->failure.klass != KP_FAILURE_CLIENT)
        {
          kp_relay_route_failed (self, self->upstream_status);
          return;
        }

      /* The request itself is at fault: the client gets the provider's answer
       * as it is (in its own wire), and no other key is tried or blamed.
       */
      kp_relay_record_attempt (self, self->upstream_status, KP_FAILURE_CLIENT);
      kp_failure_clear (&self->failure);
      self->outcome = KP_OUTCOME_CLIENT_ERROR;
      kp_relay_set_error_message (self, text);
      translate_whole_body (self, TRUE);
      content_type = "application/json";
    }
  else
    {
      parse_whole_usage (self);
      if (!translate_whole_body (self, FALSE))
        {
          self->failure = (KpFailure) {
            .klass = KP_FAILURE_DOWN,
            .message = g_strdup ("its answer was not a message Keypool could read"),
            .code = g_strdup ("upstream_invalid_answer"),
            .retry_after = -1,
          };
          kp_relay_route_failed (self, 502);
          return;
        }
      if (self->wire != self->upstream_wire)
        content_type = "application/json";
      kp_relay_record_attempt (self, self->upstream_status, KP_FAILURE_NONE);
      kp_gateway_note_success (self->gateway, &g_array_index (self->plan->routes, KpRoute,
                                                              self->route_index));
    }

  self->status = self->upstream_status;
  self->committed = TRUE;
  self->completed = TRUE;
  kp_relay_note_first_byte (self);

  headers = kp_exchange_get_response_headers (self->client);
  kp_relay_add_route_headers (self, headers);
  if (self->body_mode == BODY_ERROR)
    {
      const char *retry_after = soup_message_headers_get_one (upstream_headers, "Retry-After");

      if (retry_after != NULL)
        soup_message_headers_replace (headers, "Retry-After", retry_after);
    }

  /* The body is ours now; keep its exact length (no re-chunking). */
  len = self->pending->len;
  data = g_byte_array_steal (self->pending, NULL);
  self->pending_cap = 0;
  kp_exchange_set_status (self->client, self->upstream_status);
  kp_exchange_take_response (self->client, content_type ? content_type : "application/json",
                             (char *)data, len);
  kp_relay_release_upstream (self);
  kp_relay_end_relay (self, FINAL_UNPAUSE);
}

/* Every read from a provider is bounded: a whole answer by the body cap, a
 * stream by the size of one event. Past it the exchange ends with a clear
 * 502 and the buffer does not grow. Returns TRUE when it did.
 */
gboolean
kp_relay_over_cap (KpRelay *self)
{
  gsize cap = self->body_mode == BODY_SSE ? self->event_cap : self->body_cap;
  g_autofree char *what = NULL;

  if (self->body_mode == BODY_ERROR || self->pending->len <= cap)
    return FALSE;

  what = self->body_mode == BODY_SSE
           ? g_strdup_printf ("it sent a stream event larger than %" G_GSIZE_FORMAT " MiB",
                              cap / (1024 * 1024))
           : g_strdup_printf ("its answer is larger than %" G_GSIZE_FORMAT " MiB",
                              cap / (1024 * 1024));
  g_debug ("%s: %s", self->request_id, what);
  kp_relay_flush_out (self);
  g_byte_array_set_size (self->pending, 0);
  kp_relay_release_upstream (self);

  if (self->committed)
    {
      g_autofree char *broke = g_strdup_printf ("The stream from %s broke off: %s.",
                                                kp_provider_get_name (self->provider), what);

      self->outcome = KP_OUTCOME_INTERRUPTED;
      kp_relay_reply_error (self, 502, "upstream_too_large", broke);
      return TRUE;
    }

  /* The answer, not the key, is at fault, and another route would likely
   * send the same: the client hears it now, and no key is rested.
   */
  {
    g_autofree char *message = g_strdup_printf ("%s: %s", kp_provider_get_name (self->provider),
                                                what);

    kp_relay_record_attempt (self, 502, KP_FAILURE_DOWN);
    self->outcome = KP_OUTCOME_UPSTREAM_ERROR;
    kp_relay_reply_error (self, 502, "upstream_too_large", message);
  }
  return TRUE;
}

