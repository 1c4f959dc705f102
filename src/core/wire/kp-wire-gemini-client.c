/* kp-wire-gemini-client.c: a Gemini client's request into the hub, and the
 * hub's answer and stream back
 *
 * Gemini clients (the @google/genai SDK, Gemini CLI) are served by any
 * provider: their request becomes the canonical one, and what the provider
 * answers becomes GenerateContentResponse objects again.
 *
 * Choices worth knowing:
 * - A functionCall without an id gets "call_<turn>_<n>"; a functionResponse
 *   without one answers the earliest unanswered call of its name.
 * - Schema types are lower-cased ("OBJECT" → "object"): Gemini's SDK sends
 *   its enum names, which OpenAI-style providers refuse.
 * - A stream gives whole function calls: the hub's argument fragments are
 *   gathered and sent with the last chunk.
 * - Tools other than functionDeclarations (Google Search, code execution)
 *   have no counterpart elsewhere and are left out.
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

#define SCHEMA_MAX_DEPTH 64

/* Requests ---------------------------------------------------------------- */

/* Gemini's schema, as JSON Schema: type names in lower case. */
static JsonNode *
lower_types (JsonNode *schema,
             guint     depth)
{
  JsonNode *copy;

  if (schema == NULL || depth > SCHEMA_MAX_DEPTH)
    return NULL;
  if (JSON_NODE_HOLDS_ARRAY (schema))
    {
      JsonArray *in = json_node_get_array (schema);
      JsonArray *out = json_array_new ();

      for (guint i = 0; i < json_array_get_length (in); i++)
        {
          JsonNode *element = lower_types (json_array_get_element (in, i), depth + 1);

          if (element != NULL)
            json_array_add_element (out, element);
        }
      copy = json_node_new (JSON_NODE_ARRAY);
      json_node_take_array (copy, out);
      return copy;
    }
  if (JSON_NODE_HOLDS_OBJECT (schema))
    {
      JsonObject *in = json_node_get_object (schema);
      JsonObject *out = json_object_new ();
      JsonObjectIter iter;
      const char *key;
      JsonNode *value;

      json_object_iter_init (&iter, in);
      while (json_object_iter_next (&iter, &key, &value))
        {
          if (g_str_equal (key, "type") && kp_json_node_string (value) != NULL)
            {
              g_autofree char *lower = g_ascii_strdown (kp_json_node_string (value), -1);

              /* TYPE_UNSPECIFIED says nothing. */
              if (!g_str_equal (lower, "type_unspecified"))
                json_object_set_string_member (out, "type", lower);
            }
          else
            {
              JsonNode *inner = lower_types (value, depth + 1);

              if (inner != NULL)
                json_object_set_member (out, key, inner);
            }
        }
      return kp_json_object_node (out);
    }
  return json_node_copy (schema);
}

static char *
data_url (JsonObject *inline_data)
{
  return g_strdup_printf ("data:%s;base64,%s",
                          kp_json_string (inline_data, "mimeType") ?: "application/octet-stream",
                          kp_json_string (inline_data, "data") ?: "");
}

/* One media part as a Chat content part. */
static JsonObject *
media_part (JsonObject *part)
{
  JsonObject *inline_data = kp_json_object (part, "inlineData");
  JsonObject *file_data = kp_json_object (part, "fileData");
  JsonObject *out = json_object_new ();
  JsonObject *inner = json_object_new ();
  const char *mime;

  if (inline_data != NULL)
    {
      g_autofree char *url = data_url (inline_data);

      mime = kp_json_string (inline_data, "mimeType") ?: "";
      if (g_str_has_prefix (mime, "image/"))
        {
          json_object_set_string_member (out, "type", "image_url");
          json_object_set_string_member (inner, "url", url);
          json_object_set_object_member (out, "image_url", inner);
        }
      else if (g_str_has_prefix (mime, "audio/"))
        {
          json_object_set_string_member (out, "type", "input_audio");
          json_object_set_string_member (inner, "data", kp_json_string (inline_data, "data") ?: "");
          json_object_set_string_member (inner, "format", mime + strlen ("audio/"));
          json_object_set_object_member (out, "input_audio", inner);
        }
      else
        {
          json_object_set_string_member (out, "type", "file");
          json_object_set_string_member (inner, "file_data", url);
          json_object_set_object_member (out, "file", inner);
        }
      return out;
    }

  json_object_set_string_member (out, "type", "image_url");
  json_object_set_string_member (inner, "url", kp_json_string (file_data, "fileUri") ?: "");
  json_object_set_object_member (out, "image_url", inner);
  return out;
}

/* Calls made and not yet answered, to give each functionResponse its id. */
typedef struct
{
  char *id;
  char *name;
} Call;

static void
call_clear (gpointer data)
{
  Call *call = data;

  g_free (call->id);
  g_free (call->name);
}

static char *
answer_call (GArray     *pending,
             const char *id,
             const char *name)
{
  for (guint i = 0; i < pending->len; i++)
    {
      Call *call = &g_array_index (pending, Call, i);
      g_autofree char *bare = NULL;

      g_free (kp_gemini_signature_from_tool_id (call->id, &bare));

      if (id != NULL ? (g_str_equal (call->id, id) || g_str_equal (bare, id))
                     : g_strcmp0 (call->name, name) == 0)
        {
          char *found = g_steal_pointer (&call->id);

          g_array_remove_index (pending, i);
          return found;
        }
    }
  return g_strdup (id);
}

static JsonObject *
chat_message (const char *role)
{
  JsonObject *message = json_object_new ();

  json_object_set_string_member (message, "role", role);
  return message;
}

static void
add_model_turn (JsonArray  *messages,
                JsonArray  *parts,
                guint       turn,
                GArray     *pending)
{
  JsonObject *message = chat_message ("assistant");
  g_autoptr(GString) text = g_string_new (NULL);
  JsonArray *calls = json_array_new ();

  for (guint i = 0; i < json_array_get_length (parts); i++)
    {
      JsonObject *part = kp_json_array_object (parts, i);
      JsonObject *function_call = kp_json_object (part, "functionCall");
      gboolean thought = FALSE;

      kp_json_bool (part, "thought", &thought);
      if (function_call != NULL)
        {
          JsonObject *call = json_object_new ();
          JsonObject *function = json_object_new ();
          JsonNode *args = kp_json_member (function_call, "args");
          g_autofree char *arguments = args != NULL ? kp_json_to_string (args, NULL)
                                                    : g_strdup ("{}");
          g_autofree char *made = g_strdup_printf ("call_%u_%u", turn, json_array_get_length (calls));
          const char *given = kp_json_string (function_call, "id");
          const char *signature = kp_json_string (part, "thoughtSignature");
          g_autofree char *id = NULL;
          Call pending_call;

          if (kp_json_nonempty (given) && strstr (given, KP_GEMINI_SIGNATURE_MARK) != NULL)
            id = g_strdup (given);
          else
            id = kp_gemini_tool_id_with_signature (kp_json_nonempty (given) ? given : made,
                                                   signature);
          json_object_set_string_member (call, "id", id);
          json_object_set_string_member (call, "type", "function");
          json_object_set_string_member (function, "name",
                                         kp_json_string (function_call, "name") ?: "");
          json_object_set_string_member (function, "arguments", arguments);
          json_object_set_object_member (call, "function", function);
          json_array_add_object_element (calls, call);

          pending_call.id = g_strdup (id);
          pending_call.name = g_strdup (kp_json_string (function_call, "name") ?: "");
          g_array_append_val (pending, pending_call);
        }
      else if (!thought && kp_json_string (part, "text") != NULL)
        g_string_append (text, kp_json_string (part, "text"));
    }

  if (text->len > 0)
    json_object_set_string_member (message, "content", text->str);
  else
    json_object_set_null_member (message, "content");
  if (json_array_get_length (calls) > 0)
    json_object_set_array_member (message, "tool_calls", calls);
  else
    json_array_unref (calls);
  json_array_add_object_element (messages, message);
}

/* A user turn: its function responses as tool messages first (they answer
 * the turn before), then the rest as one user message.
 */
static void
add_user_turn (JsonArray *messages,
               JsonArray *parts,
               GArray    *pending)
{
  JsonArray *content = json_array_new ();

  for (guint i = 0; i < json_array_get_length (parts); i++)
    {
      JsonObject *part = kp_json_array_object (parts, i);
      JsonObject *response = kp_json_object (part, "functionResponse");

      if (response != NULL)
        {
          JsonObject *message = chat_message ("tool");
          JsonNode *result = kp_json_member (response, "response");
          g_autofree char *id = answer_call (pending, kp_json_string (response, "id"),
                                             kp_json_string (response, "name"));
          g_autofree char *text = result != NULL ? kp_json_to_string (result, NULL)
                                                 : g_strdup ("{}");

          if (id == NULL)
            id = g_strdup_printf ("call_%s", kp_json_string (response, "name") ?: "unknown");
          json_object_set_string_member (message, "tool_call_id", id);
          json_object_set_string_member (message, "content", text);
          json_array_add_object_element (messages, message);
        }
      else if (kp_json_string (part, "text") != NULL)
        {
          JsonObject *text = json_object_new ();
          gboolean thought = FALSE;

          kp_json_bool (part, "thought", &thought);
          if (thought)
            {
              json_object_unref (text);
              continue;
            }
          json_object_set_string_member (text, "type", "text");
          json_object_set_string_member (text, "text", kp_json_string (part, "text"));
          json_array_add_object_element (content, text);
        }
      else if (kp_json_object (part, "inlineData") != NULL ||
               kp_json_object (part, "fileData") != NULL)
        json_array_add_object_element (content, media_part (part));
    }

  if (json_array_get_length (content) > 0)
    {
      JsonObject *message = chat_message ("user");

      json_object_set_array_member (message, "content", content);
      json_array_add_object_element (messages, message);
    }
  else
    json_array_unref (content);
}

static char *
text_of_parts (JsonArray *parts)
{
  GString *text = g_string_new (NULL);

  for (guint i = 0; parts != NULL && i < json_array_get_length (parts); i++)
    {
      const char *piece = kp_json_string (kp_json_array_object (parts, i), "text");

      if (piece != NULL)
        {
          if (text->len > 0)
            g_string_append_c (text, '\n');
          g_string_append (text, piece);
        }
    }
  return g_string_free (text, FALSE);
}

static void
convert_tools (JsonArray  *tools,
               JsonObject *out)
{
  JsonArray *list = json_array_new ();

  for (guint i = 0; i < json_array_get_length (tools); i++)
    {
      JsonArray *declarations = kp_json_array (kp_json_array_object (tools, i),
                                               "functionDeclarations");

      for (guint j = 0; declarations != NULL && j < json_array_get_length (declarations); j++)
        {
          JsonObject *declaration = kp_json_array_object (declarations, j);
          JsonNode *schema = kp_json_member (declaration, "parametersJsonSchema");
          JsonNode *parameters;

          if (kp_json_string (declaration, "name") == NULL)
            continue;
          if (schema == NULL)
            schema = kp_json_member (declaration, "parameters");
          if (schema != NULL && JSON_NODE_HOLDS_OBJECT (schema))
            parameters = lower_types (schema, 0);
          else
            {
              JsonObject *empty = json_object_new ();

              json_object_set_string_member (empty, "type", "object");
              json_object_set_object_member (empty, "properties", json_object_new ());
              parameters = kp_json_object_node (empty);
            }
          json_array_add_object_element (list,
                                         kp_wire_chat_function (kp_json_string (declaration, "name"),
                                                                kp_json_string (declaration,
                                                                                "description"),
                                                                parameters));
        }
    }

  kp_wire_chat_set_tools (out, list);
}

static void
convert_tool_config (JsonObject *config,
                     JsonObject *out)
{
  JsonObject *calling = kp_json_object (config, "functionCallingConfig");
  const char *mode = kp_json_string (calling, "mode");
  JsonArray *allowed = kp_json_array (calling, "allowedFunctionNames");

  if (mode == NULL || !json_object_has_member (out, "tools"))
    return;
  if ((g_str_equal (mode, "ANY") || g_str_equal (mode, "VALIDATED")) && allowed != NULL &&
      json_array_get_length (allowed) == 1 &&
      kp_json_node_string (json_array_get_element (allowed, 0)) != NULL)
    {
      JsonObject *choice = json_object_new ();
      JsonObject *function = json_object_new ();

      json_object_set_string_member (choice, "type", "function");
      json_object_set_string_member (function, "name",
                                     kp_json_node_string (json_array_get_element (allowed, 0)));
      json_object_set_object_member (choice, "function", function);
      json_object_set_object_member (out, "tool_choice", choice);
    }
  else if (g_str_equal (mode, "ANY"))
    json_object_set_string_member (out, "tool_choice", "required");
  else if (g_str_equal (mode, "NONE"))
    json_object_set_string_member (out, "tool_choice", "none");
  else
    json_object_set_string_member (out, "tool_choice", "auto");
}

/**
 * kp_gemini_effort_for_thinking:
 * @thinking_config: (nullable): a thinkingConfig
 *
 * Returns: (nullable): the reasoning_effort it means
 */
const char *
kp_gemini_effort_for_thinking (JsonObject *thinking_config)
{
  const char *level = kp_json_string (thinking_config, "thinkingLevel");
  gint64 budget;

  if (level != NULL)
    {
      static const char * const levels[] = { "minimal", "low", "medium", "high", NULL };
      g_autofree char *lower = g_ascii_strdown (level, -1);

      for (guint i = 0; levels[i] != NULL; i++)
        if (g_str_equal (lower, levels[i]))
          return levels[i];
      return NULL;
    }
  if (!kp_json_int (thinking_config, "thinkingBudget", &budget))
    return NULL;
  if (budget == 0)
    return "none";
  if (budget < 0)
    return "medium";   /* dynamic: the model decides */
  if (budget <= 1024)
    return "low";
  if (budget <= 8192)
    return "medium";
  return "high";
}

static void
convert_generation_config (JsonObject *config,
                           JsonObject *out)
{
  JsonArray *stop = kp_json_array (config, "stopSequences");
  JsonNode *schema = kp_json_member (config, "responseJsonSchema");
  const char *effort = kp_gemini_effort_for_thinking (kp_json_object (config, "thinkingConfig"));

  if (config == NULL)
    return;
  kp_json_copy_number (config, "temperature", out, "temperature");
  kp_json_copy_number (config, "topP", out, "top_p");
  kp_json_copy_number (config, "seed", out, "seed");
  kp_json_copy_number (config, "presencePenalty", out, "presence_penalty");
  kp_json_copy_number (config, "frequencyPenalty", out, "frequency_penalty");
  kp_json_copy_number (config, "maxOutputTokens", out, "max_tokens");
  if (stop != NULL && json_array_get_length (stop) > 0)
    json_object_set_array_member (out, "stop", json_array_ref (stop));

  if (schema == NULL)
    schema = kp_json_member (config, "responseSchema");
  if (schema != NULL && JSON_NODE_HOLDS_OBJECT (schema))
    {
      JsonObject *format = json_object_new ();
      JsonObject *json_schema = json_object_new ();

      json_object_set_string_member (json_schema, "name", "response");
      json_object_set_member (json_schema, "schema", lower_types (schema, 0));
      json_object_set_string_member (format, "type", "json_schema");
      json_object_set_object_member (format, "json_schema", json_schema);
      json_object_set_object_member (out, "response_format", format);
    }
  else if (g_strcmp0 (kp_json_string (config, "responseMimeType"), "application/json") == 0)
    {
      JsonObject *format = json_object_new ();

      json_object_set_string_member (format, "type", "json_object");
      json_object_set_object_member (out, "response_format", format);
    }

  if (effort != NULL)
    json_object_set_string_member (out, "reasoning_effort", effort);
}

/**
 * kp_gemini_request_to_openai:
 * @gemini_request: a generateContent body
 *
 * Returns: (transfer full): the canonical request (without model and
 *   stream: the path says them), or %NULL
 */
JsonNode *
kp_gemini_request_to_openai (JsonObject  *gemini_request,
                             GError     **error)
{
  JsonArray *contents = kp_json_array (gemini_request, "contents");
  JsonNode *system = kp_json_member (gemini_request, "systemInstruction");
  JsonArray *tools = kp_json_array (gemini_request, "tools");
  g_autoptr(GArray) pending = g_array_new (FALSE, FALSE, sizeof (Call));
  JsonObject *out;
  JsonArray *messages;
  gint64 candidates = 1;

  g_array_set_clear_func (pending, call_clear);
  if (contents == NULL)
    {
      g_set_error_literal (error, KP_WIRE_ERROR, KP_WIRE_ERROR_MISSING_MESSAGES,
                           "The request needs “contents”: a list of turns.");
      return NULL;
    }
  if (kp_json_int (kp_json_object (gemini_request, "generationConfig"), "candidateCount",
                   &candidates) && candidates > 1)
    {
      g_set_error_literal (error, KP_WIRE_ERROR, KP_WIRE_ERROR_UNSUPPORTED,
                           "Keypool gives one candidate per request: candidateCount must be 1.");
      return NULL;
    }

  out = json_object_new ();
  messages = json_array_new ();
  json_object_set_array_member (out, "messages", messages);

  if (system != NULL)
    {
      g_autofree char *text = kp_json_node_string (system) != NULL
        ? g_strdup (kp_json_node_string (system))
        : JSON_NODE_HOLDS_OBJECT (system)
            ? text_of_parts (kp_json_array (json_node_get_object (system), "parts"))
            : g_strdup ("");

      kp_wire_chat_add_system (messages, text);
    }

  for (guint i = 0; i < json_array_get_length (contents); i++)
    {
      JsonObject *turn = kp_json_array_object (contents, i);
      JsonArray *parts = kp_json_array (turn, "parts");
      const char *role = kp_json_string (turn, "role");

      if (parts == NULL)
        continue;
      if (g_strcmp0 (role, "model") == 0)
        add_model_turn (messages, parts, i, pending);
      else
        add_user_turn (messages, parts, pending);
    }
  if (json_array_get_length (messages) == 0)
    {
      json_object_unref (out);
      g_set_error_literal (error, KP_WIRE_ERROR, KP_WIRE_ERROR_MISSING_MESSAGES,
                           "The request's “contents” has nothing to answer.");
      return NULL;
    }

  if (tools != NULL)
    convert_tools (tools, out);
  convert_tool_config (kp_json_object (gemini_request, "toolConfig"), out);
  convert_generation_config (kp_json_object (gemini_request, "generationConfig"), out);
  return kp_json_object_node (out);
}

/* Answers ----------------------------------------------------------------- */

const char *
kp_gemini_reason_for_finish (KpFinish finish)
{
  switch (finish)
    {
    case KP_FINISH_LENGTH:
      return "MAX_TOKENS";
    case KP_FINISH_CONTENT_FILTER:
      return "SAFETY";
    case KP_FINISH_TOOL_CALLS:
    case KP_FINISH_STOP:
    case KP_FINISH_NONE:
    default:
      return "STOP";
    }
}

JsonObject *
kp_gemini_usage_object (const KpUsage *usage)
{
  JsonObject *object = json_object_new ();
  gint64 thoughts = MIN (usage->reasoning_tokens, usage->completion_tokens);

  json_object_set_int_member (object, "promptTokenCount", usage->prompt_tokens);
  json_object_set_int_member (object, "candidatesTokenCount", usage->completion_tokens - thoughts);
  json_object_set_int_member (object, "totalTokenCount",
                              usage->prompt_tokens + usage->completion_tokens);
  if (usage->cached_tokens > 0)
    json_object_set_int_member (object, "cachedContentTokenCount", usage->cached_tokens);
  if (thoughts > 0)
    json_object_set_int_member (object, "thoughtsTokenCount", thoughts);
  return object;
}

/* A canonical tool call as a functionCall part. */
static JsonObject *
function_call_part (const char *id,
                    const char *name,
                    const char *arguments,
                    const char *given_signature)
{
  JsonObject *part = json_object_new ();
  JsonObject *call = json_object_new ();
  g_autoptr(JsonObject) args = kp_json_nonempty (arguments)
                                 ? kp_json_parse_object (arguments, -1) : NULL;
  g_autofree char *signature = kp_gemini_signature_from_tool_id (id, NULL);

  if (id != NULL)
    json_object_set_string_member (call, "id", id);
  json_object_set_string_member (call, "name", name ?: "");
  json_object_set_object_member (call, "args", args != NULL ? json_object_ref (args)
                                                            : json_object_new ());
  json_object_set_object_member (part, "functionCall", call);
  if (kp_json_nonempty (given_signature))
    json_object_set_string_member (part, "thoughtSignature", given_signature);
  else if (signature != NULL)
    json_object_set_string_member (part, "thoughtSignature", signature);
  return part;
}

static JsonObject *
text_part (const char *text,
           gboolean    thought)
{
  JsonObject *part = json_object_new ();

  json_object_set_string_member (part, "text", text);
  if (thought)
    json_object_set_boolean_member (part, "thought", TRUE);
  return part;
}

/**
 * kp_gemini_response_from_openai:
 * @openai_completion: a chat completion
 * @model: the model the client asked for
 *
 * Returns: (transfer full): the GenerateContentResponse, or %NULL
 */
JsonNode *
kp_gemini_response_from_openai (JsonObject  *openai_completion,
                                const char  *model,
                                GError     **error)
{
  JsonObject *choice = kp_json_array_object (kp_json_array (openai_completion, "choices"), 0);
  JsonObject *message = kp_json_object (choice, "message");
  JsonArray *calls = kp_json_array (message, "tool_calls");
  const char *reasoning = kp_json_string (message, "reasoning_content");
  JsonNode *content = kp_json_member (message, "content");
  JsonObject *out;
  JsonObject *candidate;
  JsonObject *turn;
  JsonArray *parts;
  JsonArray *candidates;
  KpUsage usage = { 0 };

  if (message == NULL)
    {
      g_set_error_literal (error, KP_WIRE_ERROR, KP_WIRE_ERROR_ANSWER,
                           "The answer has no message.");
      return NULL;
    }

  parts = json_array_new ();
  if (!kp_json_nonempty (reasoning))
    reasoning = kp_json_string (message, "reasoning");
  if (kp_json_nonempty (reasoning))
    json_array_add_object_element (parts, text_part (reasoning, TRUE));
  if (kp_json_nonempty (kp_json_node_string (content)))
    json_array_add_object_element (parts, text_part (kp_json_node_string (content), FALSE));
  else if (content != NULL && JSON_NODE_HOLDS_ARRAY (content))
    for (guint i = 0; i < json_array_get_length (json_node_get_array (content)); i++)
      {
        const char *text = kp_json_string (kp_json_array_object (json_node_get_array (content), i),
                                           "text");

        if (kp_json_nonempty (text))
          json_array_add_object_element (parts, text_part (text, FALSE));
      }
  for (guint i = 0; calls != NULL && i < json_array_get_length (calls); i++)
    {
      JsonObject *call = kp_json_array_object (calls, i);
      JsonObject *function = kp_json_object (call, "function");

      json_array_add_object_element (parts, function_call_part (
        kp_json_string (call, "id"), kp_json_string (function, "name"),
        kp_json_string (function, "arguments"),
        kp_json_string (kp_json_object (kp_json_object (call, "extra_content"), "google"),
                        "thought_signature")));
    }
  if (json_array_get_length (parts) == 0)
    json_array_add_object_element (parts, text_part ("", FALSE));

  turn = json_object_new ();
  json_object_set_string_member (turn, "role", "model");
  json_object_set_array_member (turn, "parts", parts);
  candidate = json_object_new ();
  json_object_set_object_member (candidate, "content", turn);
  json_object_set_string_member (candidate, "finishReason",
    kp_gemini_reason_for_finish (kp_finish_from_string (kp_json_string (choice, "finish_reason"))));
  json_object_set_int_member (candidate, "index", 0);
  candidates = json_array_new ();
  json_array_add_object_element (candidates, candidate);

  out = json_object_new ();
  json_object_set_array_member (out, "candidates", candidates);
  if (kp_usage_parse_openai (&usage, kp_json_object (openai_completion, "usage")))
    json_object_set_object_member (out, "usageMetadata", kp_gemini_usage_object (&usage));
  json_object_set_string_member (out, "modelVersion", model ?: kp_json_string (openai_completion,
                                                                              "model") ?: "");
  json_object_set_string_member (out, "responseId", kp_json_string (openai_completion, "id") ?: "");
  return kp_json_object_node (out);
}

/* Encoding the hub's stream for a Gemini client --------------------------- */

typedef struct
{
  char    *id;
  char    *name;
  GString *arguments;
} PendingCall;

/* Function calls are held until the end: bounded, whatever a provider
 * sends.
 */
#define MAX_CALLS      512
#define MAX_CALL_BYTES (16 * 1024 * 1024)

typedef struct
{
  KpWireEncoderBase base;
  char     *model;
  char     *response_id;
  gboolean  as_array;
  gboolean  wrote;       /* an element (and "[") is out */
  gboolean  ended;
  gsize     held;        /* bytes of arguments held */
  GArray   *calls;       /* of PendingCall, sent whole at the end */
} Encoder;

static void
pending_call_clear (gpointer data)
{
  PendingCall *call = data;

  g_free (call->id);
  g_free (call->name);
  g_string_free (call->arguments, TRUE);
}

static KpWireEncoder
encoder_new (const KpWireRequest *req)
{
  Encoder *self = g_new0 (Encoder, 1);

  self->model = g_strdup (req != NULL && req->model != NULL ? req->model : "");
  self->as_array = req != NULL && req->stream_as_array;
  self->calls = g_array_new (FALSE, FALSE, sizeof (PendingCall));
  g_array_set_clear_func (self->calls, pending_call_clear);
  return self;
}

static void
encoder_free (KpWireEncoder encoder)
{
  Encoder *self = encoder;

  g_free (self->model);
  g_free (self->response_id);
  g_array_unref (self->calls);
  g_free (self);
}

/* One GenerateContentResponse, framed: @parts is taken. */
static void
write_chunk (Encoder    *self,
             JsonArray  *parts,
             const char *finish_reason,
             gboolean    with_usage,
             GString    *out)
{
  g_autoptr(JsonObject) chunk = json_object_new ();
  g_autoptr(JsonNode) node = NULL;
  g_autofree char *json = NULL;
  JsonObject *candidate = json_object_new ();
  JsonObject *content = json_object_new ();
  JsonArray *candidates = json_array_new ();

  json_object_set_string_member (content, "role", "model");
  json_object_set_array_member (content, "parts", parts);
  json_object_set_object_member (candidate, "content", content);
  if (finish_reason != NULL)
    json_object_set_string_member (candidate, "finishReason", finish_reason);
  json_object_set_int_member (candidate, "index", 0);
  json_array_add_object_element (candidates, candidate);
  json_object_set_array_member (chunk, "candidates", candidates);
  if (with_usage && self->base.usage.known)
    json_object_set_object_member (chunk, "usageMetadata",
                                   kp_gemini_usage_object (&self->base.usage));
  json_object_set_string_member (chunk, "modelVersion", self->model);
  json_object_set_string_member (chunk, "responseId", self->response_id ?: "keypool");

  node = kp_json_object_node (g_steal_pointer (&chunk));
  json = kp_json_to_string (node, NULL);
  if (self->as_array)
    {
      g_string_append (out, self->wrote ? ",\r\n" : "[");
      g_string_append (out, json);
    }
  else
    {
      g_string_append (out, "data: ");
      g_string_append (out, json);
      g_string_append (out, "\r\n\r\n");
    }
  self->wrote = TRUE;
}

static void
on_start (KpWireEncoder  encoder,
          const char    *id,
          GString       *out)
{
  Encoder *self = encoder;

  if (self->response_id == NULL && id != NULL)
    self->response_id = g_strdup (id);
}

static void
on_text (KpWireEncoder  encoder,
         const char    *text,
         GString       *out)
{
  JsonArray *parts = json_array_new ();

  json_array_add_object_element (parts, text_part (text, FALSE));
  write_chunk (encoder, parts, NULL, FALSE, out);
}

static void
on_reasoning (KpWireEncoder  encoder,
              const char    *text,
              GString       *out)
{
  JsonArray *parts = json_array_new ();

  json_array_add_object_element (parts, text_part (text, TRUE));
  write_chunk (encoder, parts, NULL, FALSE, out);
}

static void
on_tool_call (KpWireEncoder  encoder,
              const KpEvent *event,
              GString       *out)
{
  Encoder *self = encoder;
  PendingCall call;

  if (self->calls->len >= MAX_CALLS)
    {
      g_debug ("A stream made more than %d function calls; the rest are dropped", MAX_CALLS);
      return;
    }
  call = (PendingCall) {
    .id = g_strdup (event->id),
    .name = g_strdup (event->name ?: ""),
    .arguments = g_string_new (event->text),
  };
  self->held += call.arguments->len;
  /* The index is the call's ordinal: a gap would be the provider's fault. */
  g_array_append_val (self->calls, call);
}

static void
on_tool_args (KpWireEncoder  encoder,
              guint          index,
              const char    *text,
              GString       *out)
{
  Encoder *self = encoder;
  gsize len = strlen (text);

  if (index >= self->calls->len)
    return;
  if (self->held + len > MAX_CALL_BYTES)
    {
      g_debug ("A stream's function calls passed %d bytes; the rest is dropped", MAX_CALL_BYTES);
      return;
    }
  self->held += len;
  g_string_append_len (g_array_index (self->calls, PendingCall, index).arguments, text, len);
}

/* The calls, the finish reason and the usage go in one last chunk. */
static void
on_end (KpWireEncoder  encoder,
        GString       *out)
{
  Encoder *self = encoder;
  JsonArray *parts = json_array_new ();

  if (self->ended)
    {
      json_array_unref (parts);
      return;
    }
  for (guint i = 0; i < self->calls->len; i++)
    {
      PendingCall *call = &g_array_index (self->calls, PendingCall, i);

      json_array_add_object_element (parts, function_call_part (call->id, call->name,
                                                                call->arguments->str, NULL));
    }
  if (json_array_get_length (parts) == 0)
    json_array_add_object_element (parts, text_part ("", FALSE));
  write_chunk (self, parts, kp_gemini_reason_for_finish (self->base.finish), TRUE, out);
  if (self->as_array)
    g_string_append (out, "]");
  self->ended = TRUE;
}

const KpWireEncoderClass kp_gemini_encoder_class = {
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
