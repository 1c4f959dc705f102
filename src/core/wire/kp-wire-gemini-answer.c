/* kp-wire-gemini-answer.c: a Gemini provider's answers and streams, into the hub
 *
 * A whole GenerateContentResponse becomes a chat completion; a stream's
 * responses become canonical events. Thought parts are reasoning, STOP
 * after a function call is tool_calls, the last usageMetadata counts.
 * Function calls get ids that carry their thoughtSignature (see
 * kp-wire-gemini-private.h).
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include <string.h>

#include "codec/kp-json-guard.h"
#include "kp-wire-gemini-private.h"
#include "kp-wire-chat.h"

/* Answers ----------------------------------------------------------------- */

/**
 * kp_gemini_finish_from_reason:
 * @called_tools: whether the answer has a function call
 *
 * Gemini says STOP after a function call too.
 */
KpFinish
kp_gemini_finish_from_reason (const char *reason,
                              gboolean    called_tools)
{
  static const char * const filtered[] = {
    "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY",
    "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION", NULL,
  };

  if (reason == NULL)
    return KP_FINISH_NONE;
  if (g_str_equal (reason, "MAX_TOKENS"))
    return KP_FINISH_LENGTH;
  for (guint i = 0; filtered[i] != NULL; i++)
    if (g_str_equal (reason, filtered[i]))
      return KP_FINISH_CONTENT_FILTER;
  return called_tools ? KP_FINISH_TOOL_CALLS : KP_FINISH_STOP;
}

/**
 * kp_gemini_parse_usage:
 * @usage_metadata: (nullable): a `usageMetadata` object
 *
 * Thoughts are output (billed as such), tool-use prompt tokens input;
 * cached tokens are part of the prompt, counted apart.
 */
gboolean
kp_gemini_parse_usage (KpUsage    *usage,
                       JsonObject *usage_metadata)
{
  gint64 prompt = 0;
  gint64 candidates = 0;
  gint64 thoughts = 0;
  gint64 cached = 0;
  gint64 tool_prompt = 0;
  gboolean any;

  if (usage_metadata == NULL)
    return FALSE;
  any = kp_json_int (usage_metadata, "promptTokenCount", &prompt);
  any |= kp_json_int (usage_metadata, "candidatesTokenCount", &candidates);
  any |= kp_json_int (usage_metadata, "thoughtsTokenCount", &thoughts);
  kp_json_int (usage_metadata, "cachedContentTokenCount", &cached);
  kp_json_int (usage_metadata, "toolUsePromptTokenCount", &tool_prompt);
  if (!any)
    return FALSE;

  /* Each count within 0 … KP_USAGE_MAX_TOKENS, as every usage reader
   * keeps them: a provider's huge count must not overflow the sums here and
   * in the encoders.
   */
  prompt = CLAMP (prompt, 0, KP_USAGE_MAX_TOKENS);
  candidates = CLAMP (candidates, 0, KP_USAGE_MAX_TOKENS);
  thoughts = CLAMP (thoughts, 0, KP_USAGE_MAX_TOKENS);
  cached = CLAMP (cached, 0, KP_USAGE_MAX_TOKENS);
  tool_prompt = CLAMP (tool_prompt, 0, KP_USAGE_MAX_TOKENS);

  usage->known = TRUE;
  usage->prompt_tokens = prompt + tool_prompt;
  usage->completion_tokens = candidates + thoughts;
  usage->reasoning_tokens = thoughts;
  usage->cached_tokens = cached;
  usage->cache_write_tokens = 0;
  return TRUE;
}

static JsonObject *
openai_usage (const KpUsage *usage)
{
  JsonObject *object = json_object_new ();
  JsonObject *prompt = json_object_new ();
  JsonObject *completion = json_object_new ();

  json_object_set_int_member (object, "prompt_tokens", usage->prompt_tokens);
  json_object_set_int_member (object, "completion_tokens", usage->completion_tokens);
  json_object_set_int_member (object, "total_tokens",
                              usage->prompt_tokens + usage->completion_tokens);
  json_object_set_int_member (prompt, "cached_tokens", usage->cached_tokens);
  json_object_set_object_member (object, "prompt_tokens_details", prompt);
  json_object_set_int_member (completion, "reasoning_tokens", usage->reasoning_tokens);
  json_object_set_object_member (object, "completion_tokens_details", completion);
  return object;
}

static JsonObject *
openai_tool_call (JsonObject *function_call,
                  const char *signature)
{
  JsonObject *call = json_object_new ();
  JsonObject *function = json_object_new ();
  JsonNode *args = kp_json_member (function_call, "args");
  g_autofree char *id = kp_gemini_tool_id_with_signature (kp_json_string (function_call, "id"),
                                                          signature);
  g_autofree char *arguments = args != NULL ? kp_json_to_string (args, NULL) : g_strdup ("{}");

  json_object_set_string_member (call, "id", id);
  json_object_set_string_member (call, "type", "function");
  json_object_set_string_member (function, "name", kp_json_string (function_call, "name") ?: "");
  json_object_set_string_member (function, "arguments", arguments);
  json_object_set_object_member (call, "function", function);
  if (kp_json_nonempty (signature))
    {
      JsonObject *extra = json_object_new ();
      JsonObject *google = json_object_new ();

      json_object_set_string_member (google, "thought_signature", signature);
      json_object_set_object_member (extra, "google", google);
      json_object_set_object_member (call, "extra_content", extra);
    }
  return call;
}

/**
 * kp_gemini_response_to_openai:
 * @gemini_response: a GenerateContentResponse
 * @model: the model the client asked for
 *
 * Returns: (transfer full): the chat completion, or %NULL
 */
JsonNode *
kp_gemini_response_to_openai (JsonObject  *gemini_response,
                              const char  *model,
                              GError     **error)
{
  JsonObject *candidate = kp_json_array_object (kp_json_array (gemini_response, "candidates"), 0);
  JsonArray *parts = kp_json_array (kp_json_object (candidate, "content"), "parts");
  g_autoptr(GString) text = NULL;
  g_autoptr(GString) thinking = NULL;
  JsonArray *tool_calls = json_array_new ();
  JsonObject *message = json_object_new ();
  JsonObject *choice = json_object_new ();
  JsonArray *choices = json_array_new ();
  JsonObject *out = json_object_new ();
  g_autofree char *id = NULL;
  KpUsage usage = { 0 };
  KpFinish finish;

  if (candidate == NULL && kp_json_object (gemini_response, "promptFeedback") == NULL &&
      kp_json_object (gemini_response, "usageMetadata") == NULL)
    {
      json_array_unref (tool_calls);
      json_object_unref (message);
      json_object_unref (choice);
      json_array_unref (choices);
      json_object_unref (out);
      g_set_error_literal (error, KP_WIRE_ERROR, KP_WIRE_ERROR_ANSWER,
                           "The Gemini answer has no candidates.");
      return NULL;
    }

  for (guint i = 0; parts != NULL && i < json_array_get_length (parts); i++)
    {
      JsonObject *part = kp_json_array_object (parts, i);
      JsonObject *call = kp_json_object (part, "functionCall");
      const char *part_text = kp_json_string (part, "text");
      gboolean thought = FALSE;

      if (call != NULL)
        json_array_add_object_element (tool_calls,
          openai_tool_call (call, kp_json_string (part, "thoughtSignature")));
      else if (part_text != NULL)
        {
          GString **into;

          kp_json_bool (part, "thought", &thought);
          into = thought ? &thinking : &text;
          if (*into == NULL)
            *into = g_string_new (NULL);
          g_string_append (*into, part_text);
        }
    }

  json_object_set_string_member (message, "role", "assistant");
  kp_wire_chat_set_answer (message, text, thinking, tool_calls);

  finish = kp_gemini_finish_from_reason (kp_json_string (candidate, "finishReason"),
                                         json_object_has_member (message, "tool_calls"));
  if (candidate == NULL && kp_json_string (kp_json_object (gemini_response, "promptFeedback"),
                                           "blockReason") != NULL)
    finish = KP_FINISH_CONTENT_FILTER;

  json_object_set_int_member (choice, "index", 0);
  json_object_set_object_member (choice, "message", message);
  json_object_set_string_member (choice, "finish_reason", kp_finish_to_string (finish));
  json_array_add_object_element (choices, choice);

  id = g_strconcat ("chatcmpl-", kp_json_string (gemini_response, "responseId") ?: "keypool", NULL);
  json_object_set_string_member (out, "id", id);
  json_object_set_string_member (out, "object", "chat.completion");
  json_object_set_int_member (out, "created", g_get_real_time () / G_USEC_PER_SEC);
  json_object_set_string_member (out, "model", model != NULL ? model
                                 : kp_json_string (gemini_response, "modelVersion") ?: "");
  json_object_set_array_member (out, "choices", choices);
  if (kp_gemini_parse_usage (&usage, kp_json_object (gemini_response, "usageMetadata")))
    json_object_set_object_member (out, "usage", openai_usage (&usage));

  return kp_json_object_node (out);
}

/* Streams ----------------------------------------------------------------- */

struct _KpGeminiDecoder
{
  JsonNode   *last;          /* the event read last (kp_json_read_into) */
  gboolean    started;
  guint       n_tools;
  KpUsage     usage;
};

KpGeminiDecoder *
kp_gemini_decoder_new (void)
{
  return g_new0 (KpGeminiDecoder, 1);
}

void
kp_gemini_decoder_free (KpGeminiDecoder *self)
{
  if (self == NULL)
    return;
  g_clear_pointer (&self->last, json_node_unref);
  g_free (self);
}

/**
 * kp_gemini_decoder_feed:
 * @response: one GenerateContentResponse of a stream
 *
 * Sends START before the first content, the parts as TEXT, REASONING and
 * TOOL_CALL (arguments whole), the usage (each chunk's replaces the last)
 * and FINISH.
 */
void
kp_gemini_decoder_feed (KpGeminiDecoder *self,
                        JsonObject      *response,
                        KpEventSink      sink,
                        gpointer         user_data)
{
  JsonObject *candidate = kp_json_array_object (kp_json_array (response, "candidates"), 0);
  JsonArray *parts = kp_json_array (kp_json_object (candidate, "content"), "parts");
  const char *reason = kp_json_string (candidate, "finishReason");
  KpFinish finish;

  if (!self->started)
    {
      self->started = TRUE;
      kp_event_emit (sink, user_data, (KpEvent) {
        .type = KP_EVENT_START,
        .id = kp_json_string (response, "responseId") ?: "keypool",
      });
    }

  for (guint i = 0; parts != NULL && i < json_array_get_length (parts); i++)
    {
      JsonObject *part = kp_json_array_object (parts, i);
      JsonObject *call = kp_json_object (part, "functionCall");
      const char *text = kp_json_string (part, "text");
      gboolean thought = FALSE;

      if (call != NULL)
        {
          JsonNode *args = kp_json_member (call, "args");
          g_autofree char *arguments = args != NULL ? kp_json_to_string (args, NULL)
                                                    : g_strdup ("{}");
          g_autofree char *id =
            kp_gemini_tool_id_with_signature (kp_json_string (call, "id"),
                                              kp_json_string (part, "thoughtSignature"));

          kp_event_emit (sink, user_data, (KpEvent) {
            .type = KP_EVENT_TOOL_CALL,
            .index = self->n_tools++,
            .id = id,
            .name = kp_json_string (call, "name") ?: "",
            .text = arguments,
          });
        }
      else if (text != NULL)
        {
          kp_json_bool (part, "thought", &thought);
          kp_event_emit (sink, user_data, (KpEvent) {
            .type = thought ? KP_EVENT_REASONING : KP_EVENT_TEXT,
            .text = text,
          });
        }
    }

  if (kp_gemini_parse_usage (&self->usage, kp_json_object (response, "usageMetadata")))
    kp_event_emit (sink, user_data, (KpEvent) { .type = KP_EVENT_USAGE, .usage = &self->usage });

  finish = kp_gemini_finish_from_reason (reason, self->n_tools > 0);
  if (candidate == NULL &&
      kp_json_string (kp_json_object (response, "promptFeedback"), "blockReason") != NULL)
    finish = KP_FINISH_CONTENT_FILTER;
  if (finish != KP_FINISH_NONE)
    kp_event_emit (sink, user_data, (KpEvent) { .type = KP_EVENT_FINISH, .finish = finish });
}

void
kp_gemini_decoder_feed_data (KpGeminiDecoder *self,
                             const char      *data,
                             gsize            len,
                             KpEventSink      sink,
                             gpointer         user_data)
{
  JsonNode *root;
  JsonObject *object;

  root = kp_json_read_into (&self->last, data, len);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    return;
  object = json_node_get_object (root);
  if (json_object_has_member (object, "error"))
    {
      kp_event_emit (sink, user_data, (KpEvent) { .type = KP_EVENT_ERROR, .text = data });
      return;
    }
  kp_gemini_decoder_feed (self, object, sink, user_data);
}
