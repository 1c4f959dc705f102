/* kp-wire-bridge.c: the bridge from a provider's stream to a client's: the
 * upstream wire's decoder feeds events to the client wire's encoder
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include "kp-wire.h"
#include "kp-wire-json.h"

struct _KpWireBridge
{
  const KpWire  *upstream;
  const KpWire  *client;
  KpWireDecoder  decoder;
  KpWireEncoder  encoder;   /* NULL for a passthrough */
  GString       *out;       /* during a feed */
  KpStreamStatus status;
  gboolean       has_content;
  gboolean       has_finish;
  gboolean       ended;
  gboolean       encoded_end;
  gboolean       as_array;  /* the client's stream is a JSON array */
  const char    *error;     /* during a feed */
  KpUsage        usage;
};

/**
 * kp_wire_bridge_new:
 * @upstream: the provider's wire
 * @client: the client's wire; the same as @upstream for a passthrough
 * @req: (nullable): the client's request
 * @target: (nullable): the route
 */
KpWireBridge *
kp_wire_bridge_new (const KpWire        *upstream,
                    const KpWire        *client,
                    const KpWireRequest *req,
                    const KpWireTarget  *target)
{
  KpWireBridge *self = g_new0 (KpWireBridge, 1);
  gboolean as_array = req != NULL && req->stream_as_array;
  gboolean passthrough = upstream == client && !as_array;

  self->as_array = as_array;
  self->upstream = upstream;
  self->client = client;
  self->decoder = upstream->decoder_new (req, target, passthrough);
  if (!passthrough)
    self->encoder = client->encoder->create (req);
  return self;
}

void
kp_wire_bridge_free (KpWireBridge *self)
{
  if (self == NULL)
    return;
  self->upstream->decoder_free (self->decoder);
  if (self->encoder != NULL)
    self->client->encoder->destroy (self->encoder);
  g_free (self);
}

/* The one place that tells events apart: each goes to its encoder method. */
static void
encode (KpWireBridge  *self,
        const KpEvent *event)
{
  const KpWireEncoderClass *encoder = self->client->encoder;

  switch (event->type)
    {
    case KP_EVENT_START:
      encoder->start (self->encoder, event->id, self->out);
      break;
    case KP_EVENT_TEXT:
      if (kp_json_nonempty (event->text))
        encoder->text (self->encoder, event->text, self->out);
      break;
    case KP_EVENT_REASONING:
      if (kp_json_nonempty (event->text))
        encoder->reasoning (self->encoder, event->text, self->out);
      break;
    case KP_EVENT_TOOL_CALL:
      encoder->tool_call (self->encoder, event, self->out);
      break;
    case KP_EVENT_TOOL_ARGS:
      if (kp_json_nonempty (event->text))
        encoder->tool_args (self->encoder, event->index, event->text, self->out);
      break;
    case KP_EVENT_USAGE:
      encoder->usage (self->encoder, event->usage);
      break;
    case KP_EVENT_FINISH:
      encoder->finish (self->encoder, event->finish, self->out);
      break;
    case KP_EVENT_END:
      encoder->end (self->encoder, self->out);
      break;
    case KP_EVENT_ERROR:
    case KP_EVENT_KEEPALIVE:
    default:
      break;
    }
}

static void
on_event (const KpEvent *event,
          gpointer       user_data)
{
  KpWireBridge *self = user_data;

  switch (event->type)
    {
    case KP_EVENT_ERROR:
      self->status = KP_STREAM_ERROR;
      self->error = event->text;
      return;
    case KP_EVENT_TEXT:
    case KP_EVENT_REASONING:
    case KP_EVENT_TOOL_ARGS:
      if (event->light || kp_json_nonempty (event->text))
        self->has_content = TRUE;
      break;
    case KP_EVENT_TOOL_CALL:
      self->has_content = TRUE;
      break;
    case KP_EVENT_USAGE:
      self->usage = *event->usage;
      break;
    case KP_EVENT_FINISH:
      self->has_finish = TRUE;
      break;
    case KP_EVENT_END:
      if (self->status != KP_STREAM_ERROR)
        self->status = KP_STREAM_END;
      self->ended = TRUE;
      break;
    case KP_EVENT_KEEPALIVE:
      if (self->status == KP_STREAM_CONTINUE)
        self->status = KP_STREAM_KEEPALIVE;
      return;
    case KP_EVENT_START:
    default:
      break;
    }

  if (self->encoder != NULL && self->status != KP_STREAM_ERROR && !self->encoded_end)
    {
      encode (self, event);
      self->encoded_end = event->type == KP_EVENT_END;
    }
}

/**
 * kp_wire_bridge_feed:
 * @self: a bridge
 * @event_name: (nullable): the upstream event's name (not NUL-terminated)
 * @name_len: its length
 * @data: the event's data, NUL-terminated
 * @len: its length
 * @out: where the client's text is appended (not for a passthrough)
 * @forward_raw: (out): for a passthrough, whether the event's own bytes go
 *   to the client
 *
 * Returns: what the event meant for the stream. After an error, the event's
 *   data is kp_wire_bridge_get_error() until the next feed.
 */
KpStreamStatus
kp_wire_bridge_feed (KpWireBridge *self,
                     const char   *event_name,
                     gsize         name_len,
                     const char   *data,
                     gsize         len,
                     GString      *out,
                     gboolean     *forward_raw)
{
  KpDecodeResult result;

  g_return_val_if_fail (self != NULL, KP_STREAM_ERROR);
  g_return_val_if_fail (data != NULL, KP_STREAM_ERROR);

  *forward_raw = FALSE;
  if (self->ended)
    return KP_STREAM_END;

  self->out = out;
  self->status = KP_STREAM_CONTINUE;
  self->error = NULL;
  result = self->upstream->decode (self->decoder, event_name, name_len, data, len,
                                   on_event, self);
  self->out = NULL;

  *forward_raw = self->encoder == NULL && result == KP_DECODE_FORWARD &&
                 self->status != KP_STREAM_ERROR;
  return self->status;
}

/**
 * kp_wire_bridge_finish:
 * @out: where the client's end is appended
 *
 * For an upstream that closed without its last event. An answer whose
 * finish reason came is complete: the client gets the end it expects. One
 * cut before that gets nothing here; the relay reports the cut.
 *
 * Returns: %TRUE if the stream ended well (or had already ended)
 */
gboolean
kp_wire_bridge_finish (KpWireBridge *self,
                       GString      *out)
{
  KpEvent end = { .type = KP_EVENT_END };

  g_return_val_if_fail (self != NULL, FALSE);

  if (self->ended)
    return TRUE;
  /* A wire whose streams end with the connection ends its answer here. */
  if (self->upstream->decode_end != NULL)
    {
      self->out = out;
      self->status = KP_STREAM_CONTINUE;
      self->error = NULL;
      self->upstream->decode_end (self->decoder, on_event, self);
      self->out = NULL;
      if (self->ended)
        return TRUE;
    }
  if (!self->has_finish)
    return FALSE;
  if (self->encoder != NULL && !self->encoded_end)
    {
      self->out = out;
      encode (self, &end);
      self->out = NULL;
      self->encoded_end = TRUE;
    }
  self->ended = TRUE;
  return TRUE;
}

/* A comment in the client's stream, so that a long silence mid-answer does
 * not look like a dead connection to it.
 */
void
kp_wire_bridge_keepalive (KpWireBridge *self,
                          GString      *out)
{
  /* Between the elements of a JSON array, white space is all there is. */
  if (self->as_array)
    g_string_append (out, "\n");
  else
    g_string_append (out, self->client->keepalive ?: ": keep-alive\n\n");
}

gboolean
kp_wire_bridge_is_passthrough (KpWireBridge *self)
{
  return self->encoder == NULL;
}

gboolean
kp_wire_bridge_has_content (KpWireBridge *self)
{
  return self->has_content;
}

gboolean
kp_wire_bridge_has_finish (KpWireBridge *self)
{
  return self->has_finish;
}

const char *
kp_wire_bridge_get_error (KpWireBridge *self)
{
  return self->error;
}

const KpUsage *
kp_wire_bridge_get_usage (KpWireBridge *self)
{
  return &self->usage;
}

/* Encoders ----------------------------------------------------------------- */

/* The usage method of an encoder that begins with a KpWireEncoderBase. */
void
kp_wire_encoder_keep_usage (KpWireEncoder  self,
                            const KpUsage *usage)
{
  ((KpWireEncoderBase *)self)->usage = *usage;
}

/* The finish method of an encoder that begins with a KpWireEncoderBase. */
void
kp_wire_encoder_keep_finish (KpWireEncoder  self,
                             KpFinish       finish,
                             GString       *out)
{
  ((KpWireEncoderBase *)self)->finish = finish;
}
