/* kp-wire-openai-chat.c: OpenAI Chat Completions, the hub
 *
 * The canonical request is a Chat request and the canonical whole answer a
 * chat completion, so this wire's conversions to and from the hub are the
 * identity; what it adds is the stream: a decoder of providers' chunks into
 * the hub's events and an encoder of the hub's events into chunks.
 *
 * Passed through, a stream is read without parsing every chunk: only errors,
 * the chunk with usage and the finish reason are looked for.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include <string.h>

#include "codec/kp-json-guard.h"
#include "kp-wire-openai-private.h"
#include "kp-wire-util.h"

/* Errors ------------------------------------------------------------------ */

const char *
kp_openai_error_type (guint status)
{
  switch (status)
    {
    case 400:
    case 405:
    case 413:
    case 415:
      return "invalid_request_error";
    case 401:
      return "authentication_error";
    case 403:
      return "permission_error";
    case 404:
      return "not_found_error";
    case 429:
      return "rate_limit_error";
    case 503:
    case 529:
      return "overloaded_error";
    default:
      return "api_error";
    }
}

static char *
error_body (const char *type,
            const char *code,
            const char *message)
{
  g_autoptr(GString) out = g_string_new ("{\"error\":{\"message\":");

  kp_json_append_string (out, message != NULL ? message : "");
  g_string_append (out, ",\"type\":");
  kp_json_append_string (out, type);
  g_string_append (out, ",\"param\":null,\"code\":");
  if (code != NULL)
    kp_json_append_string (out, code);
  else
    g_string_append (out, "null");
  g_string_append (out, "}}");
  return g_string_free (g_steal_pointer (&out), FALSE);
}

/**
 * kp_openai_error_json:
 *
 * Returns: (transfer full): an OpenAI-style error body:
 *   `{"error":{"message","type","param","code"}}`
 */
char *
kp_openai_error_json (guint       status,
                      const char *code,
                      const char *message)
{
  return error_body (kp_openai_error_type (status), code, message);
}

/**
 * kp_openai_error_from_upstream:
 * @status: the HTTP status of the upstream answer
 * @body: (nullable): the upstream body, in any wire
 * @len: its length
 *
 * The provider's error type (Anthropic's included) becomes the OpenAI
 * `type`; an OpenAI-shaped error keeps its `code` and `param`, which
 * clients read (`context_length_exceeded` tells a prompt too long apart).
 *
 * Returns: the OpenAI error body
 */
char *
kp_openai_error_from_upstream (guint       status,
                               const char *body,
                               gsize       len)
{
  g_autofree char *type = NULL;
  g_autofree char *message = kp_wire_error_message (body, len, NULL, &type);
  g_autoptr(JsonObject) root = body != NULL && len > 0 ? kp_json_parse_object (body, len) : NULL;
  JsonObject *error = kp_json_object (root, "error");
  const char *code = kp_json_string (error, "code");
  const char *param = kp_json_string (error, "param");
  g_autoptr(GString) out = g_string_new ("{\"error\":{\"message\":");

  if (!kp_json_nonempty (message))
    {
      g_free (message);
      message = g_strdup_printf ("The provider answered with HTTP status %u.", status);
    }
  kp_json_append_string (out, message);
  g_string_append (out, ",\"type\":");
  kp_json_append_string (out, type != NULL ? type : kp_openai_error_type (status));
  g_string_append (out, ",\"param\":");
  if (param != NULL)
    kp_json_append_string (out, param);
  else
    g_string_append (out, "null");
  g_string_append (out, ",\"code\":");
  if (code != NULL)
    kp_json_append_string (out, code);
  else
    g_string_append (out, "null");
  g_string_append (out, "}}");
  return g_string_free (g_steal_pointer (&out), FALSE);
}

/* The same body as an event; no [DONE] follows, so the stream never looks
 * complete.
 */
void
kp_openai_error_event (guint       status,
                       const char *code,
                       const char *message,
                       GString    *out)
{
  g_autofree char *json = kp_openai_error_json (status, code, message);

  kp_wire_append_event (out, NULL, json, "\n");
}

/* Shared by OpenAI's wires ------------------------------------------------ */

gboolean
kp_openai_data_is_error (const char *data,
                         gsize       len)
{
  const char *end = data + len;

  while (data < end && g_ascii_isspace (*data))
    data++;
  return (gsize)(end - data) >= 8 && memcmp (data, "{\"error\"", 8) == 0;
}

/* With include_usage, every chunk says "usage":null; only the one with an
 * object is worth parsing.
 */
gboolean
kp_openai_has_usage_object (const char *data)
{
  const char *p = data;

  while ((p = strstr (p, "\"usage\"")) != NULL)
    {
      p += strlen ("\"usage\"");
      while (g_ascii_isspace (*p))
        p++;
      if (*p != ':')
        continue;
      p++;
      while (g_ascii_isspace (*p))
        p++;
      if (*p == '{')
        return TRUE;
    }
  return FALSE;
}

/* A new object with the same members: changing its top level leaves the
 * original as it was.
 */
JsonObject *
kp_json_object_shallow_copy (JsonObject *object)
{
  JsonObject *copy = json_object_new ();
  JsonObjectIter iter;
  const char *name;
  JsonNode *node;

  json_object_iter_init_ordered (&iter, object);
  while (json_object_iter_next_ordered (&iter, &name, &node))
    json_object_set_member (copy, name, json_node_ref (node));
  return copy;
}

/* A stream's usage is asked for when the client did not ask for it, so
 * that the cost is known; the decoder drops that extra chunk again.
 */
void
kp_openai_ask_usage (KpWireRequest *req,
                     JsonObject    *request,
                     KpWireTarget  *target)
{
  if (!req->stream || req->wants_usage)
    return;
  kp_json_ask_usage (request);
  req->changed = TRUE;
  target->strip_usage = TRUE;
}

/* The client's own request for a provider of its wire: only the model id
 * changes. The client's bytes are reused when nothing does.
 */
GBytes *
kp_openai_passthrough_body (KpWireRequest *req,
                            JsonObject    *request,
                            KpWireTarget  *target)
{
  const char *upstream_id = target->offering->upstream_id;

  if (g_strcmp0 (kp_json_string (request, "model"), upstream_id) != 0)
    {
      json_object_set_string_member (request, "model", upstream_id);
      req->changed = TRUE;
    }
  if (!req->changed)
    return g_bytes_ref (req->body);
  return kp_wire_serialize (req->root);
}

/* The build_body of a wire that only passes through: the client's own
 * request, with the provider's model id.
 */
GBytes *
kp_openai_build_passthrough (KpWireRequest  *req,
                             JsonObject     *source,
                             gboolean        passthrough,
                             KpWireTarget   *target,
                             GError        **error)
{
  g_assert (passthrough);
  return kp_openai_passthrough_body (req, source, target);
}

/* Decoding a provider's stream -------------------------------------------- */

typedef struct
{
  gint64  openai_index;
  guint   ordinal;
  char   *id;            /* as the provider sent it, or NULL */
} ToolCall;

static void
tool_call_clear (gpointer data)
{
  g_free (((ToolCall *)data)->id);
}

typedef struct
{
  JsonNode   *last;          /* the event read last (kp_json_read_into) */
  gboolean    passthrough;
  gboolean    strip_usage;
  gboolean    started;
  KpUsage     usage;
  GArray     *tool_calls;
} Decoder;

KpWireDecoder
kp_openai_chat_decoder_new (const KpWireRequest *req,
                            const KpWireTarget  *target,
                            gboolean             passthrough)
{
  Decoder *self = g_new0 (Decoder, 1);

  self->passthrough = passthrough;
  self->strip_usage = target != NULL && target->strip_usage;
  self->tool_calls = g_array_new (FALSE, FALSE, sizeof (ToolCall));
  g_array_set_clear_func (self->tool_calls, tool_call_clear);
  return self;
}

void
kp_openai_chat_decoder_free (KpWireDecoder decoder)
{
  Decoder *self = decoder;

  g_clear_pointer (&self->last, json_node_unref);
  g_array_unref (self->tool_calls);
  g_free (self);
}

static ToolCall *
find_tool_call (Decoder *self,
                gint64   openai_index)
{
  for (guint i = self->tool_calls->len; i > 0; i--)
    {
      ToolCall *call = &g_array_index (self->tool_calls, ToolCall, i - 1);

      if (call->openai_index == openai_index)
        return call;
    }
  return NULL;
}

static void
decode_tool_calls (Decoder     *self,
                   JsonArray   *calls,
                   KpEventSink  sink,
                   gpointer     user_data)
{
  for (guint i = 0; i < json_array_get_length (calls); i++)
    {
      JsonObject *call = kp_json_array_object (calls, i);
      JsonObject *function = kp_json_object (call, "function");
      const char *id = kp_json_string (call, "id");
      const char *arguments = kp_json_string (function, "arguments");
      gint64 openai_index = i;
      ToolCall *known;

      kp_json_int (call, "index", &openai_index);
      known = find_tool_call (self, openai_index);

      /* A call starts with an index not seen before, or with another id
       * for the same index; some providers repeat the id on every fragment.
       */
      if (known == NULL || (kp_json_nonempty (id) && known->id != NULL && !g_str_equal (id, known->id)))
        {
          ToolCall added = {
            .openai_index = openai_index,
            .ordinal = self->tool_calls->len,
            .id = kp_json_nonempty (id) ? g_strdup (id) : NULL,
          };

          g_array_append_val (self->tool_calls, added);
          kp_event_emit (sink, user_data, (KpEvent) {
            .type = KP_EVENT_TOOL_CALL,
            .index = added.ordinal,
            .id = id,
            .name = kp_json_string (function, "name"),
            .text = arguments,
          });
        }
      else if (kp_json_nonempty (arguments))
        kp_event_emit (sink, user_data, (KpEvent) { .type = KP_EVENT_TOOL_ARGS, .index = known->ordinal,
                                           .text = arguments });
    }
}

/* reasoning_content (DeepSeek, Qwen, vLLM) or reasoning (OpenRouter). */
static const char *
reasoning_of (JsonObject *delta)
{
  const char *reasoning = kp_json_string (delta, "reasoning_content");

  return kp_json_nonempty (reasoning) ? reasoning : kp_json_string (delta, "reasoning");
}

/* Returns FALSE when the chunk is the provider's error. */
static gboolean
decode_chunk (Decoder     *self,
              JsonObject  *chunk,
              KpEventSink  sink,
              gpointer     user_data)
{
  JsonObject *choice;
  JsonObject *delta;
  JsonNode *error = kp_json_member (chunk, "error");
  const char *finish_reason;

  if (error != NULL && !JSON_NODE_HOLDS_NULL (error))
    return FALSE;

  if (!self->started)
    {
      kp_event_emit (sink, user_data, (KpEvent) { .type = KP_EVENT_START,
                                         .id = kp_json_string (chunk, "id") });
      self->started = TRUE;
    }
  if (kp_usage_parse_openai (&self->usage, kp_json_object (chunk, "usage")))
    kp_event_emit (sink, user_data, (KpEvent) { .type = KP_EVENT_USAGE, .usage = &self->usage });

  choice = kp_json_array_object (kp_json_array (chunk, "choices"), 0);
  if (choice == NULL)
    return TRUE;

  delta = kp_json_object (choice, "delta");
  if (kp_json_nonempty (reasoning_of (delta)))
    kp_event_emit (sink, user_data, (KpEvent) { .type = KP_EVENT_REASONING, .text = reasoning_of (delta) });
  if (kp_json_nonempty (kp_json_string (delta, "content")))
    kp_event_emit (sink, user_data, (KpEvent) { .type = KP_EVENT_TEXT,
                                       .text = kp_json_string (delta, "content") });
  if (kp_json_array (delta, "tool_calls") != NULL)
    decode_tool_calls (self, kp_json_array (delta, "tool_calls"), sink, user_data);

  finish_reason = kp_json_string (choice, "finish_reason");
  if (finish_reason != NULL)
    kp_event_emit (sink, user_data, (KpEvent) { .type = KP_EVENT_FINISH,
                                       .finish = kp_finish_from_string (finish_reason) });
  return TRUE;
}

/* A passed-through chunk: only the rare one with usage is parsed. */
static KpDecodeResult
decode_light (Decoder     *self,
              const char  *data,
              gsize        len,
              KpEventSink  sink,
              gpointer     user_data)
{
  if (!self->started)
    {
      kp_event_emit (sink, user_data, (KpEvent) { .type = KP_EVENT_START, .light = TRUE });
      self->started = TRUE;
    }

  if (kp_openai_has_usage_object (data))
    {
      JsonNode *root = kp_json_read_into (&self->last, data, len);
      JsonObject *chunk = root != NULL && JSON_NODE_HOLDS_OBJECT (root)
                          ? json_node_get_object (root) : NULL;
      JsonArray *array = kp_json_array (chunk, "choices");

      if (kp_usage_parse_openai (&self->usage, kp_json_object (chunk, "usage")))
        kp_event_emit (sink, user_data, (KpEvent) { .type = KP_EVENT_USAGE, .usage = &self->usage });
      /* The usage-only chunk Keypool asked for on the client's behalf. */
      if (self->strip_usage && array != NULL && json_array_get_length (array) == 0)
        return KP_DECODE_DROP;
    }

  /* Any other chunk is the answer: its role, its text or its tool calls. */
  kp_event_emit (sink, user_data, (KpEvent) { .type = KP_EVENT_TEXT, .light = TRUE });
  if (strstr (data, "\"finish_reason\":\"") != NULL)
    kp_event_emit (sink, user_data, (KpEvent) { .type = KP_EVENT_FINISH, .light = TRUE });
  return KP_DECODE_FORWARD;
}

KpDecodeResult
kp_openai_chat_decode (KpWireDecoder  decoder,
                       const char    *name,
                       gsize          name_len,
                       const char    *data,
                       gsize          len,
                       KpEventSink    sink,
                       gpointer       user_data)
{
  Decoder *self = decoder;
  JsonNode *root;

  if ((name != NULL && name_len == 5 && memcmp (name, "error", 5) == 0) ||
      kp_openai_data_is_error (data, len))
    {
      kp_event_emit (sink, user_data, (KpEvent) { .type = KP_EVENT_ERROR, .text = data });
      return KP_DECODE_FORWARD;
    }
  if (len == 6 && memcmp (data, "[DONE]", 6) == 0)
    {
      kp_event_emit (sink, user_data, (KpEvent) { .type = KP_EVENT_END, .light = self->passthrough });
      return KP_DECODE_FORWARD;
    }

  if (self->passthrough)
    return decode_light (self, data, len, sink, user_data);

  /* Data that is not JSON is ignored, as any unknown event is. */
  root = kp_json_read_into (&self->last, data, len);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    return KP_DECODE_FORWARD;
  if (!decode_chunk (self, json_node_get_object (root), sink, user_data))
    kp_event_emit (sink, user_data, (KpEvent) { .type = KP_EVENT_ERROR, .text = data });
  return KP_DECODE_FORWARD;
}

/* Encoding the hub's stream as chunks ------------------------------------- */

typedef struct
{
  KpWireEncoderBase base;
  char     *model;
  gboolean  include_usage;
  gint64    created;
  GString  *prefix;        /* what every chunk starts with, once the id is known */
  gboolean  started;
  gboolean  finish_sent;
  gboolean  ended;
} Encoder;

static KpWireEncoder
encoder_new (const KpWireRequest *req)
{
  Encoder *self = g_new0 (Encoder, 1);

  self->model = g_strdup (req != NULL && req->model != NULL ? req->model : "");
  self->include_usage = req != NULL && req->wants_usage;
  self->created = g_get_real_time () / G_USEC_PER_SEC;
  self->prefix = g_string_new (NULL);
  return self;
}

static void
encoder_free (KpWireEncoder encoder)
{
  Encoder *self = encoder;

  g_free (self->model);
  g_string_free (self->prefix, TRUE);
  g_free (self);
}

static void
chunk_begin (Encoder *self,
             GString *out)
{
  g_string_append (out, "data: ");
  g_string_append_len (out, self->prefix->str, self->prefix->len);
  g_string_append (out, "{\"index\":0,\"delta\":");
}

static void
chunk_end (Encoder    *self,
           GString    *out,
           const char *finish_reason)
{
  g_string_append (out, ",\"finish_reason\":");
  if (finish_reason != NULL)
    kp_json_append_string (out, finish_reason);
  else
    g_string_append (out, "null");
  g_string_append (out, self->include_usage ? "}],\"usage\":null}\n\n" : "}]}\n\n");
}

/* The role chunk opens every stream. */
static void
on_start (KpWireEncoder  encoder,
          const char    *message_id,
          GString       *out)
{
  Encoder *self = encoder;
  g_autofree char *id = NULL;

  if (self->started)
    return;
  id = g_strconcat ("chatcmpl-", kp_json_nonempty (message_id) ? message_id : "keypool", NULL);
  g_string_assign (self->prefix, "{\"id\":");
  kp_json_append_string (self->prefix, id);
  g_string_append_printf (self->prefix,
                          ",\"object\":\"chat.completion.chunk\",\"created\":%" G_GINT64_FORMAT
                          ",\"model\":", self->created);
  kp_json_append_string (self->prefix, self->model);
  g_string_append (self->prefix, ",\"choices\":[");

  chunk_begin (self, out);
  g_string_append (out, "{\"role\":\"assistant\",\"content\":\"\"}");
  chunk_end (self, out, NULL);
  self->started = TRUE;
}

static void
encode_text (Encoder    *self,
             const char *field,
             const char *text,
             GString    *out)
{
  if (!kp_json_nonempty (text))
    return;
  on_start (self, NULL, out);
  chunk_begin (self, out);
  g_string_append_printf (out, "{\"%s\":", field);
  kp_json_append_string (out, text);
  g_string_append_c (out, '}');
  chunk_end (self, out, NULL);
}

static void
on_tool_call (KpWireEncoder  encoder,
              const KpEvent *event,
              GString       *out)
{
  Encoder *self = encoder;

  on_start (self, NULL, out);
  chunk_begin (self, out);
  g_string_append_printf (out, "{\"tool_calls\":[{\"index\":%u,\"id\":", event->index);
  kp_json_append_string (out, event->id != NULL ? event->id : "");
  g_string_append (out, ",\"type\":\"function\",\"function\":{\"name\":");
  kp_json_append_string (out, event->name != NULL ? event->name : "");
  g_string_append (out, ",\"arguments\":");
  kp_json_append_string (out, event->text != NULL ? event->text : "");
  g_string_append (out, "}}]}");
  chunk_end (self, out, NULL);
}

static void
on_tool_args (KpWireEncoder  encoder,
              guint          index,
              const char    *text,
              GString       *out)
{
  Encoder *self = encoder;

  if (!kp_json_nonempty (text))
    return;
  on_start (self, NULL, out);
  chunk_begin (self, out);
  g_string_append_printf (out, "{\"tool_calls\":[{\"index\":%u,\"function\":{\"arguments\":",
                          index);
  kp_json_append_string (out, text);
  g_string_append (out, "}}]}");
  chunk_end (self, out, NULL);
}

static void
encode_finish (Encoder *self,
               GString *out)
{
  KpFinish finish = self->base.finish != KP_FINISH_NONE ? self->base.finish : KP_FINISH_STOP;

  if (self->finish_sent)
    return;
  on_start (self, NULL, out);
  chunk_begin (self, out);
  g_string_append (out, "{}");
  chunk_end (self, out, kp_finish_to_string (finish));
  self->finish_sent = TRUE;
}

/* The usage chunk (when the client asked for it) and [DONE]. */
static void
on_end (KpWireEncoder  encoder,
        GString       *out)
{
  Encoder *self = encoder;
  const KpUsage *usage = &self->base.usage;

  encode_finish (self, out);
  if (self->include_usage)
    {
      g_string_append (out, "data: ");
      g_string_append_len (out, self->prefix->str, self->prefix->len);
      g_string_append_printf (out,
                              "],\"usage\":{\"prompt_tokens\":%" G_GINT64_FORMAT
                              ",\"completion_tokens\":%" G_GINT64_FORMAT
                              ",\"total_tokens\":%" G_GINT64_FORMAT
                              ",\"prompt_tokens_details\":{\"cached_tokens\":%" G_GINT64_FORMAT
                              ",\"cache_write_tokens\":%" G_GINT64_FORMAT "}",
                              usage->prompt_tokens, usage->completion_tokens,
                              usage->prompt_tokens + usage->completion_tokens,
                              usage->cached_tokens, usage->cache_write_tokens);
      /* Thinking tokens, when the provider told them apart (Gemini does). */
      if (usage->reasoning_tokens > 0)
        g_string_append_printf (out, ",\"completion_tokens_details\":{\"reasoning_tokens\":%"
                                G_GINT64_FORMAT "}", usage->reasoning_tokens);
      g_string_append (out, "}}\n\n");
    }
  g_string_append (out, "data: [DONE]\n\n");
  self->ended = TRUE;
}

static void
on_text (KpWireEncoder  encoder,
         const char    *text,
         GString       *out)
{
  encode_text (encoder, "content", text, out);
}

static void
on_reasoning (KpWireEncoder  encoder,
              const char    *text,
              GString       *out)
{
  encode_text (encoder, "reasoning_content", text, out);
}

static void
on_finish (KpWireEncoder  encoder,
           KpFinish       finish,
           GString       *out)
{
  kp_wire_encoder_keep_finish (encoder, finish, out);
  encode_finish (encoder, out);
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
  .finish = on_finish,
  .end = on_end,
};

/* The table ---------------------------------------------------------------- */

static gboolean
parse_request (KpWireRequest  *req,
               GError        **error)
{
  JsonObject *request = json_node_get_object (req->root);
  gint64 max_tokens = 0;

  if (kp_wire_require_list (request, "messages", "chat messages", error) == NULL)
    return FALSE;

  if ((!kp_json_int (request, "max_completion_tokens", &max_tokens) || max_tokens <= 0) &&
      (!kp_json_int (request, "max_tokens", &max_tokens) || max_tokens <= 0))
    max_tokens = 0;
  if (max_tokens > 0)
    req->output_tokens = max_tokens;
  kp_json_bool (kp_json_object (request, "stream_options"), "include_usage", &req->wants_usage);
  return TRUE;
}

static JsonNode *
identity (JsonObject  *object,
          GError     **error)
{
  return kp_json_object_node (json_object_ref (object));
}

static JsonNode *
response_from_canonical (JsonObject          *completion,
                         const KpWireRequest *req,
                         GError             **error)
{
  return kp_json_object_node (json_object_ref (completion));
}

static JsonNode *
response_to_canonical (JsonObject  *answer,
                       const char  *model,
                       GError     **error)
{
  return kp_json_object_node (json_object_ref (answer));
}

/* The output cap and reasoning as the target model takes them: OpenAI's
 * reasoning models refuse max_tokens and want max_completion_tokens; other
 * models get no reasoning_effort, and many servers read only max_tokens.
 */
static void
fit_model (JsonObject       *request,
           const KpOffering *offering)
{
  JsonNode *max_tokens = json_object_get_member (request, "max_tokens");
  JsonNode *max_completion = json_object_get_member (request, "max_completion_tokens");

  if (offering->reasoning)
    {
      if (max_tokens != NULL)
        {
          if (max_completion == NULL)
            json_object_set_member (request, "max_completion_tokens", json_node_ref (max_tokens));
          json_object_remove_member (request, "max_tokens");
        }
    }
  else
    {
      json_object_remove_member (request, "reasoning_effort");
      if (max_completion != NULL)
        {
          if (max_tokens == NULL)
            json_object_set_member (request, "max_tokens", json_node_ref (max_completion));
          json_object_remove_member (request, "max_completion_tokens");
        }
    }
}

static GBytes *
build_body (KpWireRequest  *req,
            JsonObject     *source,
            gboolean        passthrough,
            KpWireTarget   *target,
            GError        **error)
{
  g_autoptr(JsonNode) node = NULL;
  JsonObject *request;
  gboolean stream = FALSE;

  if (passthrough)
    {
      kp_openai_ask_usage (req, source, target);
      return kp_openai_passthrough_body (req, source, target);
    }

  request = kp_json_object_shallow_copy (source);
  node = kp_json_object_node (request);
  json_object_set_string_member (request, "model", target->offering->upstream_id);
  fit_model (request, target->offering);
  if (kp_json_bool (request, "stream", &stream) && stream)
    kp_json_ask_usage (request);
  return kp_wire_serialize (node);
}

static const char * const client_routes[] = { "/v1/chat/completions", NULL };

const KpWire kp_wire_openai_chat = {
  .id = "openai-chat",
  .kind = KP_WIRE_KIND_CHAT,
  .client_routes = client_routes,
  .upstream_path = "/chat/completions",

  .parse_request = parse_request,
  .to_canonical = identity,
  .response_from_canonical = response_from_canonical,
  .error_json = kp_openai_error_json,
  .error_from_upstream = kp_openai_error_from_upstream,
  .error_event = kp_openai_error_event,
  .encoder = &encoder_class,

  .build_body = build_body,
  .decoder_new = kp_openai_chat_decoder_new,
  .decode = kp_openai_chat_decode,
  .decoder_free = kp_openai_chat_decoder_free,
  .response_to_canonical = response_to_canonical,
  .parse_usage = kp_usage_parse_openai,
};
