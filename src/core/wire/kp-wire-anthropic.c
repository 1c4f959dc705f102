/* kp-wire-anthropic.c: Anthropic Messages, both as a client's API and a provider's
 *
 * The table, the stream decoder (a provider's events into the hub's), the
 * stream encoder (the hub's events into what an Anthropic client reads) and
 * the errors. Requests and whole answers are in kp-wire-anthropic-client.c
 * and kp-wire-anthropic-upstream.c.
 *
 * Stream events are on the hot path: the encoder writes the client's JSON
 * text directly from the few fields it needs, escaping every string it
 * copies. When client and provider both speak Anthropic, the decoder only
 * looks at event names and parses the two events that carry usage.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include <string.h>

#include "codec/kp-json-guard.h"
#include "kp-wire-anthropic-private.h"
#include "kp-wire-util.h"

/* Shared by the files of the wire ----------------------------------------- */

/* Anthropic accepts tool ids made of [a-zA-Z0-9_-] only. */
char *
kp_anthropic_sanitize_tool_id (const char *id)
{
  char *clean;

  if (!kp_json_nonempty (id))
    return g_strdup ("toolu_");

  clean = g_strdup (id);
  for (char *p = clean; *p; p++)
    if (!g_ascii_isalnum (*p) && *p != '_' && *p != '-')
      *p = '_';
  return clean;
}

JsonObject *
kp_anthropic_text_block (const char *text)
{
  JsonObject *block = json_object_new ();

  json_object_set_string_member (block, "type", "text");
  json_object_set_string_member (block, "text", text);
  return block;
}

const char *
kp_anthropic_finish_for_stop (const char *stop_reason)
{
  if (g_strcmp0 (stop_reason, "max_tokens") == 0)
    return "length";
  if (g_strcmp0 (stop_reason, "tool_use") == 0)
    return "tool_calls";
  if (g_strcmp0 (stop_reason, "refusal") == 0)
    return "content_filter";
  /* end_turn, stop_sequence, pause_turn and reasons added later. */
  return "stop";
}

const char *
kp_anthropic_stop_for_finish (const char *finish_reason)
{
  if (g_strcmp0 (finish_reason, "length") == 0)
    return "max_tokens";
  if (g_strcmp0 (finish_reason, "tool_calls") == 0 ||
      g_strcmp0 (finish_reason, "function_call") == 0)
    return "tool_use";
  if (g_strcmp0 (finish_reason, "content_filter") == 0)
    return "refusal";
  return "end_turn";
}

JsonObject *
kp_anthropic_openai_usage (const KpUsage *usage)
{
  JsonObject *object = json_object_new ();
  JsonObject *details = json_object_new ();

  json_object_set_int_member (object, "prompt_tokens", usage->prompt_tokens);
  json_object_set_int_member (object, "completion_tokens", usage->completion_tokens);
  json_object_set_int_member (object, "total_tokens",
                              usage->prompt_tokens + usage->completion_tokens);
  json_object_set_int_member (details, "cached_tokens", usage->cached_tokens);
  json_object_set_int_member (details, "cache_write_tokens", usage->cache_write_tokens);
  json_object_set_object_member (object, "prompt_tokens_details", details);
  return object;
}

gint64
kp_anthropic_uncached_input (const KpUsage *usage)
{
  return MAX (usage->prompt_tokens - usage->cached_tokens - usage->cache_write_tokens, 0);
}

JsonObject *
kp_anthropic_usage_object (const KpUsage *usage)
{
  JsonObject *object = json_object_new ();

  json_object_set_int_member (object, "input_tokens", kp_anthropic_uncached_input (usage));
  json_object_set_int_member (object, "output_tokens", usage->completion_tokens);
  json_object_set_int_member (object, "cache_creation_input_tokens", usage->cache_write_tokens);
  json_object_set_int_member (object, "cache_read_input_tokens", usage->cached_tokens);
  return object;
}

char *
kp_anthropic_message_id_for (const char *openai_id)
{
  if (!kp_json_nonempty (openai_id))
    return g_strdup ("msg_keypool");
  if (g_str_has_prefix (openai_id, "msg_"))
    return g_strdup (openai_id);
  return g_strconcat ("msg_", openai_id, NULL);
}

/* reasoning_content (DeepSeek, Qwen, vLLM) or reasoning (OpenRouter). */
const char *
kp_anthropic_reasoning_of (JsonObject *message)
{
  const char *reasoning = kp_json_string (message, "reasoning_content");

  return kp_json_nonempty (reasoning) ? reasoning : kp_json_string (message, "reasoning");
}

/* Errors ------------------------------------------------------------------ */

/**
 * kp_anthropic_error_type:
 * @status: an HTTP status
 *
 * 402 and 504 have their own types in Anthropic's current error list
 * (billing_error, timeout_error); 503 is an overload like 529.
 *
 * Returns: the Anthropic error type for @status
 */
const char *
kp_anthropic_error_type (guint status)
{
  switch (status)
    {
    case 400:
      return "invalid_request_error";
    case 401:
      return "authentication_error";
    case 402:
      return "billing_error";
    case 403:
      return "permission_error";
    case 404:
      return "not_found_error";
    case 413:
      return "request_too_large";
    case 429:
      return "rate_limit_error";
    case 503:
    case 529:
      return "overloaded_error";
    case 504:
      return "timeout_error";
    default:
      return status >= 400 && status < 500 ? "invalid_request_error" : "api_error";
    }
}

static char *
error_body (const char *wrapper_type,
            const char *type,
            const char *message)
{
  g_autoptr(JsonObject) body = json_object_new ();
  JsonObject *error = json_object_new ();
  g_autoptr(JsonNode) node = NULL;

  if (wrapper_type != NULL)
    json_object_set_string_member (body, "type", wrapper_type);
  json_object_set_string_member (error, "type", type);
  json_object_set_string_member (error, "message", message);
  if (wrapper_type == NULL)
    {
      json_object_set_null_member (error, "param");
      json_object_set_null_member (error, "code");
    }
  json_object_set_object_member (body, "error", error);
  node = kp_json_object_node (g_steal_pointer (&body));
  return kp_json_to_string (node, NULL);
}

char *
kp_anthropic_error_json (guint       status,
                         const char *message)
{
  return error_body ("error", kp_anthropic_error_type (status), message ?: "");
}

char *
kp_anthropic_error_from_openai (guint       status,
                                const char *body,
                                gsize       len)
{
  g_autofree char *message = kp_wire_upstream_error_message (&status, body, len);

  return kp_anthropic_error_json (status, message);
}

/* An error in the middle of an Anthropic stream: an `error` event. */
static void
anthropic_error_event (guint       status,
                       const char *code,
                       const char *message,
                       GString    *out)
{
  g_autofree char *json = kp_anthropic_error_json (status, message);

  kp_wire_append_event (out, "error", json, "\n");
}

static char *
anthropic_error_json (guint       status,
                      const char *code,
                      const char *message)
{
  return kp_anthropic_error_json (status, message);
}

/* Decoding a provider's stream -------------------------------------------- */

typedef struct
{
  JsonNode   *last;          /* the event read last (kp_json_read_into) */
  gboolean    passthrough;
  KpUsage     usage;
  GArray     *tool_ordinals;  /* block index -> tool-call ordinal, or -1 */
  guint       n_tools;
} Decoder;

static KpWireDecoder
decoder_new (const KpWireRequest *req,
             const KpWireTarget  *target,
             gboolean             passthrough)
{
  Decoder *self = g_new0 (Decoder, 1);

  self->passthrough = passthrough;
  self->tool_ordinals = g_array_new (FALSE, FALSE, sizeof (gint));
  return self;
}

static void
decoder_free (KpWireDecoder decoder)
{
  Decoder *self = decoder;

  g_clear_pointer (&self->last, json_node_unref);
  g_array_unref (self->tool_ordinals);
  g_free (self);
}

static JsonObject *
decoder_parse (Decoder    *self,
               const char *data,
               gsize       len)
{
  JsonNode *root;

  root = kp_json_read_into (&self->last, data, len);
  return root != NULL && JSON_NODE_HOLDS_OBJECT (root) ? json_node_get_object (root) : NULL;
}

static void
emit_usage (Decoder     *self,
            JsonObject  *usage,
            KpEventSink  sink,
            gpointer     user_data)
{
  if (usage != NULL && kp_usage_parse_anthropic (&self->usage, usage))
    kp_event_emit (sink, user_data, (KpEvent) { .type = KP_EVENT_USAGE, .usage = &self->usage });
}

static gboolean
name_is (const char *name,
         gsize       name_len,
         const char *literal)
{
  gsize len = strlen (literal);

  return name != NULL && name_len == len && memcmp (name, literal, len) == 0;
}

/* An event whose data has no type: its name, when it is one we read. */
static const char *
known_name (const char *name,
            gsize       name_len)
{
  static const char * const names[] = {
    "message_start", "content_block_start", "content_block_delta", "message_delta",
    "message_stop", NULL,
  };

  for (guint i = 0; names[i] != NULL; i++)
    if (name_is (name, name_len, names[i]))
      return names[i];
  return NULL;
}

static gint
tool_ordinal (Decoder *self,
              gint64   block_index)
{
  gint ordinal = -1;

  if (block_index >= 0 && (guint64)block_index < self->tool_ordinals->len)
    ordinal = g_array_index (self->tool_ordinals, gint, block_index);
  /* A delta for a block that did not start as a tool: the latest tool. */
  if (ordinal < 0)
    ordinal = self->n_tools > 0 ? (gint)self->n_tools - 1 : 0;
  return ordinal;
}

static void
decode_block_start (Decoder     *self,
                    JsonObject  *data,
                    gint64       index,
                    KpEventSink  sink,
                    gpointer     user_data)
{
  JsonObject *block = kp_json_object (data, "content_block");
  const char *type = kp_json_string (block, "type");

  if (g_strcmp0 (type, "tool_use") == 0)
    {
      JsonObject *input = kp_json_object (block, "input");
      g_autofree char *arguments = NULL;
      gint ordinal = (gint)self->n_tools++;

      if (index >= 0 && index < G_MAXUINT16)
        {
          gint none = -1;

          while (self->tool_ordinals->len <= (guint)index)
            g_array_append_val (self->tool_ordinals, none);
          g_array_index (self->tool_ordinals, gint, index) = ordinal;
        }
      /* Anthropic starts with an empty input and streams it; a provider that
       * gives the whole input at once is passed on as it is.
       */
      if (input != NULL && json_object_get_size (input) > 0)
        arguments = kp_json_to_string (kp_json_member (block, "input"), NULL);
      kp_event_emit (sink, user_data, (KpEvent) {
        .type = KP_EVENT_TOOL_CALL,
        .index = ordinal,
        .id = kp_json_string (block, "id"),
        .name = kp_json_string (block, "name"),
        .text = arguments,
      });
    }
  else if (g_strcmp0 (type, "text") == 0 && kp_json_nonempty (kp_json_string (block, "text")))
    kp_event_emit (sink, user_data, (KpEvent) { .type = KP_EVENT_TEXT,
                                       .text = kp_json_string (block, "text") });
  else if (g_strcmp0 (type, "thinking") == 0 &&
           kp_json_nonempty (kp_json_string (block, "thinking")))
    kp_event_emit (sink, user_data, (KpEvent) { .type = KP_EVENT_REASONING,
                                       .text = kp_json_string (block, "thinking") });
}

static void
decode_block_delta (Decoder     *self,
                    JsonObject  *data,
                    gint64       index,
                    KpEventSink  sink,
                    gpointer     user_data)
{
  JsonObject *delta = kp_json_object (data, "delta");
  const char *type = kp_json_string (delta, "type");
  KpEvent event = { 0 };

  if (g_strcmp0 (type, "text_delta") == 0)
    event = (KpEvent) { .type = KP_EVENT_TEXT, .text = kp_json_string (delta, "text") };
  else if (g_strcmp0 (type, "thinking_delta") == 0)
    event = (KpEvent) { .type = KP_EVENT_REASONING, .text = kp_json_string (delta, "thinking") };
  else if (g_strcmp0 (type, "input_json_delta") == 0)
    event = (KpEvent) { .type = KP_EVENT_TOOL_ARGS, .index = tool_ordinal (self, index),
                        .text = kp_json_string (delta, "partial_json") };
  /* signature_delta, citations_delta: nothing the hub carries. */

  if (kp_json_nonempty (event.text))
    sink (&event, user_data);
}

static KpDecodeResult
decode (KpWireDecoder  decoder,
        const char    *name,
        gsize          name_len,
        const char    *data,
        gsize          len,
        KpEventSink    sink,
        gpointer       user_data)
{
  Decoder *self = decoder;
  JsonObject *object = NULL;
  const char *type;
  gint64 index = -1;

  if (name_is (name, name_len, "error"))
    {
      kp_event_emit (sink, user_data, (KpEvent) { .type = KP_EVENT_ERROR, .text = data });
      return KP_DECODE_FORWARD;
    }
  if (name_is (name, name_len, "ping"))
    {
      kp_event_emit (sink, user_data, (KpEvent) { .type = KP_EVENT_KEEPALIVE });
      return KP_DECODE_FORWARD;
    }

  /* Passed through, only the events with usage or the end are read. */
  if (self->passthrough && name != NULL)
    {
      if (name_len > 14 && memcmp (name, "content_block_", 14) == 0)
        {
          kp_event_emit (sink, user_data, (KpEvent) { .type = KP_EVENT_TEXT, .light = TRUE });
          return KP_DECODE_FORWARD;
        }
      if (name_is (name, name_len, "message_stop"))
        {
          kp_event_emit (sink, user_data, (KpEvent) { .type = KP_EVENT_END, .light = TRUE });
          return KP_DECODE_FORWARD;
        }
      if (!name_is (name, name_len, "message_start") && !name_is (name, name_len, "message_delta"))
        return KP_DECODE_FORWARD;
    }

  object = decoder_parse (self, data, len);
  type = kp_json_string (object, "type");
  if (type == NULL)
    type = known_name (name, name_len);
  if (type == NULL)
    return KP_DECODE_FORWARD;
  kp_json_int (object, "index", &index);

  if (g_str_equal (type, "error"))
    kp_event_emit (sink, user_data, (KpEvent) { .type = KP_EVENT_ERROR, .text = data });
  else if (g_str_equal (type, "ping"))
    kp_event_emit (sink, user_data, (KpEvent) { .type = KP_EVENT_KEEPALIVE });
  else if (g_str_equal (type, "message_start"))
    {
      JsonObject *message = kp_json_object (object, "message");

      kp_event_emit (sink, user_data, (KpEvent) { .type = KP_EVENT_START,
                                         .id = kp_json_string (message, "id") });
      emit_usage (self, kp_json_object (message, "usage"), sink, user_data);
    }
  else if (g_str_equal (type, "content_block_start"))
    {
      if (self->passthrough)
        kp_event_emit (sink, user_data, (KpEvent) { .type = KP_EVENT_TEXT, .light = TRUE });
      else
        decode_block_start (self, object, index, sink, user_data);
    }
  else if (g_str_equal (type, "content_block_delta"))
    {
      if (self->passthrough)
        kp_event_emit (sink, user_data, (KpEvent) { .type = KP_EVENT_TEXT, .light = TRUE });
      else
        decode_block_delta (self, object, index, sink, user_data);
    }
  else if (g_str_equal (type, "message_delta"))
    {
      const char *stop_reason = kp_json_string (kp_json_object (object, "delta"), "stop_reason");

      emit_usage (self, kp_json_object (object, "usage"), sink, user_data);
      if (stop_reason != NULL)
        kp_event_emit (sink, user_data, (KpEvent) {
          .type = KP_EVENT_FINISH,
          .finish = kp_finish_from_string (kp_anthropic_finish_for_stop (stop_reason)),
        });
    }
  else if (g_str_equal (type, "message_stop"))
    kp_event_emit (sink, user_data, (KpEvent) { .type = KP_EVENT_END });

  return KP_DECODE_FORWARD;
}

/* Encoding the hub's stream for an Anthropic client ----------------------- */

typedef enum
{
  BLOCK_NONE,
  BLOCK_TEXT,
  BLOCK_THINKING,
  BLOCK_TOOL,
} BlockKind;

typedef struct
{
  KpWireEncoderBase base;
  char        *model;
  char        *message_id;
  gint64       input_estimate;  /* until the provider says */
  gboolean     started;
  gboolean     ended;
  BlockKind    block_kind;
  guint        block_index;
  guint        n_blocks;
  GArray      *tool_blocks;     /* tool-call ordinal -> block index */
} Encoder;

static KpWireEncoder
encoder_new (const KpWireRequest *req)
{
  Encoder *self = g_new0 (Encoder, 1);

  self->model = g_strdup (req != NULL && req->model != NULL ? req->model : "");
  self->input_estimate = req != NULL ? req->prompt_tokens : 0;
  self->tool_blocks = g_array_new (FALSE, FALSE, sizeof (guint));
  return self;
}

static void
encoder_free (KpWireEncoder encoder)
{
  Encoder *self = encoder;

  g_free (self->model);
  g_free (self->message_id);
  g_array_unref (self->tool_blocks);
  g_free (self);
}

static void
event_begin (GString    *out,
             const char *name)
{
  g_string_append (out, "event: ");
  g_string_append (out, name);
  g_string_append (out, "\ndata: ");
}

/* message_start carries the input tokens: the provider's count when it gave
 * one first (an Anthropic provider does), else Keypool's estimate; the exact
 * figure follows in message_delta.
 */
static void
encode_start (Encoder *self,
              GString *out)
{
  const KpUsage *usage = &self->base.usage;
  gint64 input;

  if (self->started)
    return;
  if (self->message_id == NULL)
    self->message_id = g_strdup ("msg_keypool");
  input = usage->known ? kp_anthropic_uncached_input (usage) : self->input_estimate;

  event_begin (out, "message_start");
  g_string_append (out, "{\"type\":\"message_start\",\"message\":{\"id\":");
  kp_json_append_string (out, self->message_id);
  g_string_append (out, ",\"type\":\"message\",\"role\":\"assistant\",\"model\":");
  kp_json_append_string (out, self->model);
  g_string_append_printf (out,
                          ",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,"
                          "\"usage\":{\"input_tokens\":%" G_GINT64_FORMAT
                          ",\"output_tokens\":0"
                          ",\"cache_creation_input_tokens\":%" G_GINT64_FORMAT
                          ",\"cache_read_input_tokens\":%" G_GINT64_FORMAT "}}}\n\n",
                          input, usage->cache_write_tokens, usage->cached_tokens);
  self->started = TRUE;
}

static void
close_block (Encoder *self,
             GString *out)
{
  if (self->block_kind == BLOCK_NONE)
    return;

  /* Anthropic ends every thinking block with its signature; there is none
   * here, and an empty one keeps the block's shape for clients.
   */
  if (self->block_kind == BLOCK_THINKING)
    {
      event_begin (out, "content_block_delta");
      g_string_append_printf (out, "{\"type\":\"content_block_delta\",\"index\":%u,"
                              "\"delta\":{\"type\":\"signature_delta\",\"signature\":\"\"}}\n\n",
                              self->block_index);
    }
  event_begin (out, "content_block_stop");
  g_string_append_printf (out, "{\"type\":\"content_block_stop\",\"index\":%u}\n\n",
                          self->block_index);
  self->block_kind = BLOCK_NONE;
}

/* Closes the open block and starts one of @kind; the caller writes the
 * content_block object after this and closes the event.
 */
static void
open_block (Encoder   *self,
            BlockKind  kind,
            GString   *out)
{
  encode_start (self, out);
  close_block (self, out);
  self->block_kind = kind;
  self->block_index = self->n_blocks++;
  event_begin (out, "content_block_start");
  g_string_append_printf (out, "{\"type\":\"content_block_start\",\"index\":%u,"
                          "\"content_block\":", self->block_index);
}

static void
encode_text (Encoder    *self,
             BlockKind   kind,
             const char *text,
             GString    *out)
{
  gboolean thinking = kind == BLOCK_THINKING;

  if (!kp_json_nonempty (text))
    return;

  if (self->block_kind != kind)
    {
      open_block (self, kind, out);
      g_string_append (out, thinking
                       ? "{\"type\":\"thinking\",\"thinking\":\"\",\"signature\":\"\"}}\n\n"
                       : "{\"type\":\"text\",\"text\":\"\"}}\n\n");
    }

  event_begin (out, "content_block_delta");
  g_string_append_printf (out, "{\"type\":\"content_block_delta\",\"index\":%u,\"delta\":",
                          self->block_index);
  g_string_append (out, thinking ? "{\"type\":\"thinking_delta\",\"thinking\":"
                                 : "{\"type\":\"text_delta\",\"text\":");
  kp_json_append_string (out, text);
  g_string_append (out, "}}\n\n");
}

static void
encode_json_delta (guint       block_index,
                   const char *partial_json,
                   GString    *out)
{
  if (!kp_json_nonempty (partial_json))
    return;
  event_begin (out, "content_block_delta");
  g_string_append_printf (out, "{\"type\":\"content_block_delta\",\"index\":%u,"
                          "\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":",
                          block_index);
  kp_json_append_string (out, partial_json);
  g_string_append (out, "}}\n\n");
}

static void
on_tool_call (KpWireEncoder  encoder,
              const KpEvent *event,
              GString       *out)
{
  Encoder *self = encoder;
  g_autofree char *clean_id = NULL;

  open_block (self, BLOCK_TOOL, out);
  if (kp_json_nonempty (event->id))
    clean_id = kp_anthropic_sanitize_tool_id (event->id);
  else
    {
      g_autofree char *made = g_strdup_printf ("toolu_%s_%u", self->message_id,
                                               self->block_index);

      clean_id = kp_anthropic_sanitize_tool_id (made);
    }

  g_string_append (out, "{\"type\":\"tool_use\",\"id\":");
  kp_json_append_string (out, clean_id);
  g_string_append (out, ",\"name\":");
  kp_json_append_string (out, event->name != NULL ? event->name : "");
  g_string_append (out, ",\"input\":{}}}\n\n");

  while (self->tool_blocks->len <= event->index)
    g_array_append_val (self->tool_blocks, self->block_index);
  g_array_index (self->tool_blocks, guint, event->index) = self->block_index;

  encode_json_delta (self->block_index, event->text, out);
}

static void
on_end (KpWireEncoder  encoder,
        GString       *out)
{
  Encoder *self = encoder;
  const KpUsage *usage = &self->base.usage;
  const char *stop = kp_anthropic_stop_for_finish (kp_finish_to_string (self->base.finish));

  if (self->ended)
    return;
  encode_start (self, out);
  close_block (self, out);

  event_begin (out, "message_delta");
  g_string_append (out, "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":");
  kp_json_append_string (out, stop);
  g_string_append_printf (out,
                          ",\"stop_sequence\":null},\"usage\":{\"input_tokens\":%" G_GINT64_FORMAT
                          ",\"output_tokens\":%" G_GINT64_FORMAT
                          ",\"cache_creation_input_tokens\":%" G_GINT64_FORMAT
                          ",\"cache_read_input_tokens\":%" G_GINT64_FORMAT "}}\n\n",
                          kp_anthropic_uncached_input (usage), usage->completion_tokens,
                          usage->cache_write_tokens, usage->cached_tokens);
  event_begin (out, "message_stop");
  g_string_append (out, "{\"type\":\"message_stop\"}\n\n");
  self->ended = TRUE;
}

static void
on_start (KpWireEncoder  encoder,
          const char    *id,
          GString       *out)
{
  Encoder *self = encoder;

  if (self->message_id == NULL)
    self->message_id = kp_anthropic_message_id_for (id);
  encode_start (self, out);
}

static void
on_text (KpWireEncoder  encoder,
         const char    *text,
         GString       *out)
{
  encode_text (encoder, BLOCK_TEXT, text, out);
}

static void
on_reasoning (KpWireEncoder  encoder,
              const char    *text,
              GString       *out)
{
  encode_text (encoder, BLOCK_THINKING, text, out);
}

/* Fragments of a call whose block was closed by another one still go to
 * that call's block: clients gather deltas by index.
 */
static void
on_tool_args (KpWireEncoder  encoder,
              guint          index,
              const char    *text,
              GString       *out)
{
  Encoder *self = encoder;

  if (index < self->tool_blocks->len)
    encode_json_delta (g_array_index (self->tool_blocks, guint, index), text, out);
  else if (self->block_kind == BLOCK_TOOL)
    encode_json_delta (self->block_index, text, out);
}

static const KpWireEncoderClass encoder_class = {
  .create = encoder_new,
  .destroy = encoder_free,
  .start = on_start,
  .text = on_text,
  .reasoning = on_reasoning,
  .tool_call = on_tool_call,
  .tool_args = on_tool_args,
  .usage = kp_wire_encoder_keep_usage,
  .finish = kp_wire_encoder_keep_finish,
  .end = on_end,
};

/* The table ---------------------------------------------------------------- */

static gboolean
parse_request (KpWireRequest  *req,
               GError        **error)
{
  JsonObject *request = json_node_get_object (req->root);
  JsonNode *node;

  if (kp_wire_require_list (request, "messages", "chat messages", error) == NULL)
    return FALSE;

  /* Anthropic's clients say how long an answer may be: it must be a number. */
  node = json_object_get_member (request, "max_tokens");
  if (node != NULL &&
      (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_INT64 ||
       json_node_get_int (node) <= 0))
    {
      g_set_error_literal (error, KP_WIRE_ERROR, KP_WIRE_ERROR_INVALID_MAX_TOKENS,
                           "“max_tokens” must be a positive integer.");
      return FALSE;
    }
  if (node != NULL)
    req->output_tokens = json_node_get_int (node);
  return TRUE;
}

static JsonNode *
response_from_canonical (JsonObject          *completion,
                         const KpWireRequest *req,
                         GError             **error)
{
  return kp_anthropic_response_from_openai (completion, req->model, error);
}

static GBytes *
build_body (KpWireRequest  *req,
            JsonObject     *source,
            gboolean        passthrough,
            KpWireTarget   *target,
            GError        **error)
{
  const char *upstream_id = target->offering->upstream_id;
  g_autoptr(JsonNode) built = NULL;
  JsonObject *request;
  gboolean changed = req->changed;

  if (passthrough)
    {
      request = source;
      if (g_strcmp0 (kp_json_string (request, "model"), upstream_id) != 0)
        {
          json_object_set_string_member (request, "model", upstream_id);
          changed = TRUE;
        }
      /* Anthropic requires max_tokens; its clients always send it, but a
       * hand-written request may not.
       */
      if (kp_json_int_or (request, "max_tokens", 0) <= 0)
        {
          json_object_set_int_member (request, "max_tokens", KP_ANTHROPIC_DEFAULT_MAX_TOKENS);
          changed = TRUE;
        }
      if (!changed)
        return g_bytes_ref (req->body);
      req->changed = TRUE;
      return kp_wire_serialize (req->root);
    }

  built = kp_anthropic_request_from_openai (source, error);
  if (built == NULL)
    return NULL;
  json_object_set_string_member (json_node_get_object (built), "model", upstream_id);
  return kp_wire_serialize (built);
}

static void
add_headers (const KpWireRequest *req,
             SoupMessageHeaders  *headers)
{
  const char *beta;

  /* The features a Claude client turned on go with its request. */
  if (req->wire != &kp_wire_anthropic || req->headers == NULL)
    return;
  beta = soup_message_headers_get_one (req->headers, "anthropic-beta");
  if (beta != NULL)
    soup_message_headers_replace (headers, "anthropic-beta", beta);
}

static JsonNode *
to_canonical (JsonObject  *request,
              GError     **error)
{
  return kp_anthropic_request_to_openai (request, error);
}

static char *
count_json (gint64 input_tokens)
{
  return g_strdup_printf ("{\"input_tokens\":%" G_GINT64_FORMAT "}", input_tokens);
}

static const char * const client_routes[] = { "/v1/messages", NULL };

const KpWire kp_wire_anthropic = {
  .id = "anthropic",
  .kind = KP_WIRE_KIND_CHAT,
  .client_routes = client_routes,
  .upstream_path = "/messages",
  .count_route = "/v1/messages/count_tokens",
  .client_headers = "anthropic-version, anthropic-beta",
  .count_json = count_json,

  .parse_request = parse_request,
  .to_canonical = to_canonical,
  .response_from_canonical = response_from_canonical,
  .error_json = anthropic_error_json,
  .error_from_upstream = kp_anthropic_error_from_openai,
  .error_event = anthropic_error_event,
  .encoder = &encoder_class,

  .build_body = build_body,
  .add_headers = add_headers,
  .decoder_new = decoder_new,
  .decode = decode,
  .decoder_free = decoder_free,
  .response_to_canonical = kp_anthropic_response_to_openai,
  .parse_usage = kp_usage_parse_anthropic,
};
