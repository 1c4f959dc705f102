/* kp-wire-openai-responses.c: OpenAI's Responses API, as Codex CLI speaks it
 *
 * To a provider that serves Responses itself (its file lists it under
 * "apis") a request passes through. To any other, it becomes the hub's Chat
 * request, and the hub's events become Responses events: response.created,
 * an output item for the message, the reasoning and each function call,
 * their deltas, and response.completed with the whole response and usage.
 *
 * Keypool keeps no conversation state, as with `store: false`: a request
 * that names a previous response, or refers to an item by id, is refused
 * with a message that says to send the whole conversation.
 *
 * This file holds the table, requests, whole answers and the passthrough
 * decoder; kp-wire-openai-responses-stream.c writes the events.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include <string.h>

#include "codec/kp-json-guard.h"
#include "kp-wire-openai-private.h"
#include "kp-wire-openai-responses-private.h"

/* Usage ------------------------------------------------------------------- */

static gint64
count_of (JsonObject *object,
          const char *member)
{
  gint64 value = 0;

  if (!kp_json_int (object, member, &value) || value < 0)
    return 0;
  /* Within the cap every usage reader keeps: sums of counts cannot overflow. */
  return MIN (value, KP_USAGE_MAX_TOKENS);
}

/* {input_tokens, input_tokens_details.cached_tokens, output_tokens,
 * output_tokens_details.reasoning_tokens}: cached tokens are part of the
 * input, reasoning tokens part of the output, as in Chat.
 */
static gboolean
parse_usage (KpUsage    *usage,
             JsonObject *object)
{
  if (object == NULL || !json_object_has_member (object, "input_tokens"))
    return FALSE;

  *usage = (KpUsage) { .known = TRUE };
  usage->prompt_tokens = count_of (object, "input_tokens");
  usage->completion_tokens = count_of (object, "output_tokens");
  usage->cached_tokens = MIN (count_of (kp_json_object (object, "input_tokens_details"),
                                        "cached_tokens"), usage->prompt_tokens);
  usage->reasoning_tokens = count_of (kp_json_object (object, "output_tokens_details"),
                                      "reasoning_tokens");
  return TRUE;
}

JsonObject *
kp_responses_usage_object (const KpUsage *usage)
{
  JsonObject *object = json_object_new ();
  JsonObject *input = json_object_new ();
  JsonObject *output = json_object_new ();

  json_object_set_int_member (object, "input_tokens", usage->prompt_tokens);
  json_object_set_int_member (input, "cached_tokens", usage->cached_tokens);
  json_object_set_object_member (object, "input_tokens_details", input);
  json_object_set_int_member (object, "output_tokens", usage->completion_tokens);
  json_object_set_int_member (output, "reasoning_tokens", usage->reasoning_tokens);
  json_object_set_object_member (object, "output_tokens_details", output);
  json_object_set_int_member (object, "total_tokens",
                              usage->prompt_tokens + usage->completion_tokens);
  return object;
}

/* Requests: Responses -> Chat --------------------------------------------- */

static gboolean
fail (GError     **error,
      KpWireError  code,
      const char  *message)
{
  g_set_error_literal (error, KP_WIRE_ERROR, code, message);
  return FALSE;
}

/* A message's content as Chat parts, or its text when @text_only. */
static JsonNode *
convert_content (JsonNode  *content,
                 gboolean   text_only,
                 GError   **error)
{
  JsonArray *parts;
  JsonArray *out;
  JsonNode *node;
  g_autoptr(GString) text = NULL;

  if (content == NULL || JSON_NODE_HOLDS_NULL (content))
    return json_node_init_string (json_node_alloc (), "");
  if (kp_json_node_string (content) != NULL)
    return json_node_copy (content);
  if (!JSON_NODE_HOLDS_ARRAY (content))
    {
      fail (error, KP_WIRE_ERROR_INVALID, "A message's “content” must be a text or a list of parts.");
      return NULL;
    }

  parts = json_node_get_array (content);
  out = json_array_new ();
  text = g_string_new (NULL);
  for (guint i = 0; i < json_array_get_length (parts); i++)
    {
      JsonObject *part = kp_json_array_object (parts, i);
      const char *type = kp_json_string (part, "type");

      if (g_strcmp0 (type, "input_text") == 0 || g_strcmp0 (type, "output_text") == 0 ||
          g_strcmp0 (type, "text") == 0 || g_strcmp0 (type, "refusal") == 0)
        {
          const char *value = kp_json_string (part, g_strcmp0 (type, "refusal") == 0 ? "refusal"
                                                                                       : "text");
          JsonObject *chat = json_object_new ();

          if (value == NULL)
            value = "";
          g_string_append (text, value);
          json_object_set_string_member (chat, "type", "text");
          json_object_set_string_member (chat, "text", value);
          json_array_add_object_element (out, chat);
        }
      else if (g_strcmp0 (type, "input_image") == 0 && !text_only)
        {
          const char *url = kp_json_string (part, "image_url");
          JsonObject *chat;
          JsonObject *image;

          if (url == NULL)
            {
              json_array_unref (out);
              fail (error, KP_WIRE_ERROR_NEEDS_STATE,
                    "An input_image must carry its “image_url”; Keypool keeps no uploaded files.");
              return NULL;
            }
          chat = json_object_new ();
          image = json_object_new ();
          json_object_set_string_member (image, "url", url);
          if (kp_json_string (part, "detail") != NULL)
            json_object_set_string_member (image, "detail", kp_json_string (part, "detail"));
          json_object_set_string_member (chat, "type", "image_url");
          json_object_set_object_member (chat, "image_url", image);
          json_array_add_object_element (out, chat);
        }
      else if (g_strcmp0 (type, "input_file") == 0 && !text_only)
        {
          JsonObject *chat = json_object_new ();
          JsonObject *file = json_object_new ();

          if (kp_json_string (part, "file_data") != NULL)
            json_object_set_string_member (file, "file_data", kp_json_string (part, "file_data"));
          if (kp_json_string (part, "filename") != NULL)
            json_object_set_string_member (file, "filename", kp_json_string (part, "filename"));
          json_object_set_string_member (chat, "type", "file");
          json_object_set_object_member (chat, "file", file);
          json_array_add_object_element (out, chat);
        }
    }

  if (text_only)
    {
      json_array_unref (out);
      return json_node_init_string (json_node_alloc (), text->str);
    }
  node = json_node_init_array (json_node_alloc (), out);
  json_array_unref (out);
  return node;
}

static JsonObject *
chat_message (const char *role)
{
  JsonObject *message = json_object_new ();

  json_object_set_string_member (message, "role", role);
  return message;
}

/* The assistant turn a function call belongs to: the last message when it
 * is an assistant's, else a new one.
 */
static JsonObject *
assistant_turn (JsonArray *messages)
{
  guint n = json_array_get_length (messages);
  JsonObject *last = n > 0 ? kp_json_array_object (messages, n - 1) : NULL;

  if (last != NULL && g_strcmp0 (kp_json_string (last, "role"), "assistant") == 0)
    return last;
  last = chat_message ("assistant");
  json_object_set_null_member (last, "content");
  json_array_add_object_element (messages, last);
  return last;
}

static gboolean
add_function_call (JsonArray   *messages,
                   JsonObject  *item,
                   GError     **error)
{
  JsonObject *turn = assistant_turn (messages);
  JsonArray *calls = kp_json_array (turn, "tool_calls");
  JsonObject *call;
  JsonObject *function;

  if (kp_json_string (item, "call_id") == NULL || kp_json_string (item, "name") == NULL)
    return fail (error, KP_WIRE_ERROR_INVALID, "A function_call item needs “call_id” and “name”.");

  if (calls == NULL)
    {
      calls = json_array_new ();
      json_object_set_array_member (turn, "tool_calls", calls);
    }
  call = json_object_new ();
  function = json_object_new ();
  json_object_set_string_member (call, "id", kp_json_string (item, "call_id"));
  json_object_set_string_member (call, "type", "function");
  json_object_set_string_member (function, "name", kp_json_string (item, "name"));
  json_object_set_string_member (function, "arguments", kp_json_string (item, "arguments") ?: "{}");
  json_object_set_object_member (call, "function", function);
  json_array_add_object_element (calls, call);
  return TRUE;
}

static gboolean
add_function_output (JsonArray   *messages,
                     JsonObject  *item,
                     GError     **error)
{
  JsonObject *message;
  JsonNode *output;

  if (kp_json_string (item, "call_id") == NULL)
    return fail (error, KP_WIRE_ERROR_INVALID, "A function_call_output item needs its “call_id”.");

  output = convert_content (kp_json_member (item, "output"), TRUE, error);
  if (output == NULL)
    return FALSE;
  message = chat_message ("tool");
  json_object_set_string_member (message, "tool_call_id", kp_json_string (item, "call_id"));
  json_object_set_member (message, "content", output);
  json_array_add_object_element (messages, message);
  return TRUE;
}

static gboolean
add_message (JsonArray   *messages,
             JsonObject  *item,
             GError     **error)
{
  const char *role = kp_json_string (item, "role");
  gboolean assistant = g_strcmp0 (role, "assistant") == 0;
  JsonObject *message;
  JsonNode *content;

  if (role == NULL || !(assistant || g_str_equal (role, "user") || g_str_equal (role, "system") ||
                        g_str_equal (role, "developer")))
    return fail (error, KP_WIRE_ERROR_INVALID,
                 "A message item's “role” must be “user”, “assistant”, “system” or “developer”.");

  content = convert_content (kp_json_member (item, "content"), assistant, error);
  if (content == NULL)
    return FALSE;
  /* Codex sends its rules as "developer" messages: most chat APIs other
   * than OpenAI's know only "system".
   */
  message = chat_message (g_str_equal (role, "developer") ? "system" : role);
  json_object_set_member (message, "content", content);
  json_array_add_object_element (messages, message);
  return TRUE;
}

static gboolean
convert_input (JsonNode    *input,
               JsonArray   *messages,
               GError     **error)
{
  JsonArray *items;

  if (kp_json_node_string (input) != NULL)
    {
      JsonObject *message = chat_message ("user");

      json_object_set_string_member (message, "content", kp_json_node_string (input));
      json_array_add_object_element (messages, message);
      return TRUE;
    }

  items = json_node_get_array (input);
  for (guint i = 0; i < json_array_get_length (items); i++)
    {
      JsonObject *item = kp_json_array_object (items, i);
      const char *type = kp_json_string (item, "type");
      gboolean ok = TRUE;

      if (item == NULL)
        return fail (error, KP_WIRE_ERROR_INVALID, "Every item of “input” must be an object.");

      if (type == NULL || g_str_equal (type, "message"))
        ok = add_message (messages, item, error);
      else if (g_str_equal (type, "function_call"))
        ok = add_function_call (messages, item, error);
      else if (g_str_equal (type, "function_call_output"))
        ok = add_function_output (messages, item, error);
      else if (g_str_equal (type, "item_reference"))
        ok = fail (error, KP_WIRE_ERROR_NEEDS_STATE,
                   "Keypool keeps no stored items (as with “store”: false): send the item itself "
                   "in “input”, not a reference to it.");
      /* Reasoning items (encrypted or summarised) only mean something to the
       * provider that made them; other item kinds have no Chat form.
       */
      if (!ok)
        return FALSE;
    }
  return TRUE;
}

static void
convert_tools (JsonArray  *tools,
               JsonObject *out)
{
  JsonArray *chat = json_array_new ();

  for (guint i = 0; i < json_array_get_length (tools); i++)
    {
      JsonObject *tool = kp_json_array_object (tools, i);
      JsonObject *function;
      JsonObject *wrapped;

      /* Built-in tools (web search, file search, a computer) run at OpenAI;
       * another provider cannot offer them.
       */
      if (g_strcmp0 (kp_json_string (tool, "type"), "function") != 0 ||
          kp_json_string (tool, "name") == NULL)
        continue;

      function = json_object_new ();
      json_object_set_string_member (function, "name", kp_json_string (tool, "name"));
      if (kp_json_string (tool, "description") != NULL)
        json_object_set_string_member (function, "description", kp_json_string (tool, "description"));
      if (kp_json_object (tool, "parameters") != NULL)
        json_object_set_member (function, "parameters",
                                json_node_copy (kp_json_member (tool, "parameters")));
      if (json_object_has_member (tool, "strict"))
        json_object_set_member (function, "strict", json_node_copy (kp_json_member (tool, "strict")));
      wrapped = json_object_new ();
      json_object_set_string_member (wrapped, "type", "function");
      json_object_set_object_member (wrapped, "function", function);
      json_array_add_object_element (chat, wrapped);
    }

  if (json_array_get_length (chat) > 0)
    json_object_set_array_member (out, "tools", chat);
  else
    json_array_unref (chat);
}

static void
convert_tool_choice (JsonNode   *choice,
                     JsonObject *out)
{
  JsonObject *object;

  if (kp_json_node_string (choice) != NULL)
    {
      json_object_set_string_member (out, "tool_choice", kp_json_node_string (choice));
      return;
    }
  object = choice != NULL && JSON_NODE_HOLDS_OBJECT (choice) ? json_node_get_object (choice) : NULL;
  if (g_strcmp0 (kp_json_string (object, "type"), "function") == 0 &&
      kp_json_string (object, "name") != NULL)
    {
      JsonObject *wrapped = json_object_new ();
      JsonObject *function = json_object_new ();

      json_object_set_string_member (function, "name", kp_json_string (object, "name"));
      json_object_set_string_member (wrapped, "type", "function");
      json_object_set_object_member (wrapped, "function", function);
      json_object_set_object_member (out, "tool_choice", wrapped);
    }
}

/* text.format (json_schema or json_object) as Chat's response_format. */
static void
convert_format (JsonObject *format,
                JsonObject *out)
{
  const char *type = kp_json_string (format, "type");
  JsonObject *response_format;

  if (g_strcmp0 (type, "json_object") == 0)
    {
      response_format = json_object_new ();
      json_object_set_string_member (response_format, "type", "json_object");
      json_object_set_object_member (out, "response_format", response_format);
    }
  else if (g_strcmp0 (type, "json_schema") == 0)
    {
      JsonObject *schema = json_object_new ();

      json_object_set_string_member (schema, "name", kp_json_string (format, "name") ?: "answer");
      if (kp_json_member (format, "schema") != NULL)
        json_object_set_member (schema, "schema", json_node_copy (kp_json_member (format, "schema")));
      if (kp_json_member (format, "strict") != NULL)
        json_object_set_member (schema, "strict", json_node_copy (kp_json_member (format, "strict")));
      response_format = json_object_new ();
      json_object_set_string_member (response_format, "type", "json_schema");
      json_object_set_object_member (response_format, "json_schema", schema);
      json_object_set_object_member (out, "response_format", response_format);
    }
}

static JsonNode *
to_canonical (JsonObject  *request,
              GError     **error)
{
  g_autoptr(JsonObject) out = json_object_new ();
  JsonArray *messages = json_array_new ();
  const char *instructions = kp_json_string (request, "instructions");
  const char *effort = kp_json_string (kp_json_object (request, "reasoning"), "effort");
  gboolean stream = FALSE;

  json_object_set_array_member (out, "messages", messages);
  json_object_set_string_member (out, "model", kp_json_string (request, "model") ?: "");
  if (kp_json_nonempty (instructions))
    {
      JsonObject *system = chat_message ("system");

      json_object_set_string_member (system, "content", instructions);
      json_array_add_object_element (messages, system);
    }
  if (!convert_input (kp_json_member (request, "input"), messages, error))
    return NULL;

  if (kp_json_array (request, "tools") != NULL)
    convert_tools (kp_json_array (request, "tools"), out);
  if (json_object_has_member (out, "tools"))
    {
      convert_tool_choice (kp_json_member (request, "tool_choice"), out);
      if (json_object_has_member (request, "parallel_tool_calls"))
        json_object_set_member (out, "parallel_tool_calls",
                                json_node_copy (kp_json_member (request, "parallel_tool_calls")));
    }
  kp_json_copy_number (request, "max_output_tokens", out, "max_tokens");
  kp_json_copy_number (request, "temperature", out, "temperature");
  kp_json_copy_number (request, "top_p", out, "top_p");
  if (effort != NULL && !g_str_equal (effort, "none"))
    json_object_set_string_member (out, "reasoning_effort",
                                   g_str_equal (effort, "xhigh") ? "high" : effort);
  convert_format (kp_json_object (kp_json_object (request, "text"), "format"), out);
  if (kp_json_string (request, "user") != NULL)
    json_object_set_string_member (out, "user", kp_json_string (request, "user"));

  if (kp_json_bool (request, "stream", &stream))
    json_object_set_boolean_member (out, "stream", stream);
  if (stream)
    kp_json_ask_usage (out);
  return kp_json_object_node (g_steal_pointer (&out));
}

/* Whole answers: Chat -> Responses ---------------------------------------- */

char *
kp_responses_response_id_for (const char *id)
{
  if (!kp_json_nonempty (id))
    return g_strdup_printf ("resp_keypool%08x", g_random_int ());
  if (g_str_has_prefix (id, "resp_"))
    return g_strdup (id);
  return g_strconcat ("resp_", id, NULL);
}

JsonObject *
kp_responses_output_text_part (const char *text)
{
  JsonObject *part = json_object_new ();

  json_object_set_string_member (part, "type", "output_text");
  json_object_set_string_member (part, "text", text);
  json_object_set_array_member (part, "annotations", json_array_new ());
  return part;
}

JsonObject *
kp_responses_message_item (const char *id,
              const char *text,
              const char *status)
{
  JsonObject *item = json_object_new ();
  JsonArray *content = json_array_new ();

  json_object_set_string_member (item, "type", "message");
  json_object_set_string_member (item, "id", id);
  json_object_set_string_member (item, "status", status);
  json_object_set_string_member (item, "role", "assistant");
  if (text != NULL)
    json_array_add_object_element (content, kp_responses_output_text_part (text));
  json_object_set_array_member (item, "content", content);
  return item;
}

JsonObject *
kp_responses_reasoning_item (const char *id,
                const char *text)
{
  JsonObject *item = json_object_new ();
  JsonArray *summary = json_array_new ();
  JsonObject *part = json_object_new ();

  json_object_set_string_member (part, "type", "summary_text");
  json_object_set_string_member (part, "text", text);
  json_array_add_object_element (summary, part);
  json_object_set_string_member (item, "type", "reasoning");
  json_object_set_string_member (item, "id", id);
  json_object_set_array_member (item, "summary", summary);
  return item;
}

JsonObject *
kp_responses_function_call_item (const char *id,
                    const char *call_id,
                    const char *name,
                    const char *arguments,
                    const char *status)
{
  JsonObject *item = json_object_new ();

  json_object_set_string_member (item, "type", "function_call");
  json_object_set_string_member (item, "id", id);
  json_object_set_string_member (item, "call_id", call_id);
  json_object_set_string_member (item, "name", name);
  json_object_set_string_member (item, "arguments", arguments);
  json_object_set_string_member (item, "status", status);
  return item;
}

/* The response object around @output. */
JsonObject *
kp_responses_response_object (const char    *id,
                 const char    *model,
                 gint64         created_at,
                 const char    *status,
                 KpFinish       finish,
                 JsonArray     *output,
                 const KpUsage *usage)
{
  JsonObject *response = json_object_new ();

  json_object_set_string_member (response, "id", id);
  json_object_set_string_member (response, "object", "response");
  json_object_set_int_member (response, "created_at", created_at);
  json_object_set_string_member (response, "status", status);
  json_object_set_null_member (response, "error");
  if (finish == KP_FINISH_LENGTH || finish == KP_FINISH_CONTENT_FILTER)
    {
      JsonObject *details = json_object_new ();

      json_object_set_string_member (details, "reason", finish == KP_FINISH_LENGTH
                                                        ? "max_output_tokens" : "content_filter");
      json_object_set_object_member (response, "incomplete_details", details);
    }
  else
    json_object_set_null_member (response, "incomplete_details");
  json_object_set_string_member (response, "model", model);
  json_object_set_array_member (response, "output", output != NULL ? output : json_array_new ());
  json_object_set_boolean_member (response, "parallel_tool_calls", TRUE);
  json_object_set_array_member (response, "tools", json_array_new ());
  json_object_set_string_member (response, "tool_choice", "auto");
  if (usage != NULL && usage->known)
    json_object_set_object_member (response, "usage", kp_responses_usage_object (usage));
  else
    json_object_set_null_member (response, "usage");
  return response;
}

const char *
kp_responses_status_for (KpFinish finish)
{
  return finish == KP_FINISH_LENGTH || finish == KP_FINISH_CONTENT_FILTER ? "incomplete"
                                                                          : "completed";
}

static JsonNode *
response_from_canonical (JsonObject          *completion,
                         const KpWireRequest *req,
                         GError             **error)
{
  JsonObject *choice = kp_json_array_object (kp_json_array (completion, "choices"), 0);
  JsonObject *message = kp_json_object (choice, "message");
  JsonArray *calls = kp_json_array (message, "tool_calls");
  g_autofree char *id = kp_responses_response_id_for (kp_json_string (completion, "id"));
  const char *reasoning = kp_json_string (message, "reasoning_content");
  const char *text = kp_json_string (message, "content");
  KpFinish finish = kp_finish_from_string (kp_json_string (choice, "finish_reason"));
  JsonArray *output;
  KpUsage usage = { 0 };
  gint64 created = 0;

  if (message == NULL)
    {
      g_set_error_literal (error, KP_WIRE_ERROR, KP_WIRE_ERROR_ANSWER,
                           "The answer has no message in choices[0].");
      return NULL;
    }

  output = json_array_new ();
  if (!kp_json_nonempty (reasoning))
    reasoning = kp_json_string (message, "reasoning");
  if (kp_json_nonempty (reasoning))
    {
      g_autofree char *item_id = g_strconcat ("rs_", id + 5, NULL);

      json_array_add_object_element (output, kp_responses_reasoning_item (item_id, reasoning));
    }
  if (kp_json_nonempty (text))
    {
      g_autofree char *item_id = g_strconcat ("msg_", id + 5, NULL);

      json_array_add_object_element (output, kp_responses_message_item (item_id, text, "completed"));
    }
  for (guint i = 0; calls != NULL && i < json_array_get_length (calls); i++)
    {
      JsonObject *call = kp_json_array_object (calls, i);
      JsonObject *function = kp_json_object (call, "function");
      g_autofree char *item_id = g_strdup_printf ("fc_%s_%u", id + 5, i);

      json_array_add_object_element (output,
                                     kp_responses_function_call_item (item_id, kp_json_string (call, "id") ?: item_id,
                                                         kp_json_string (function, "name") ?: "",
                                                         kp_json_string (function, "arguments") ?: "",
                                                         "completed"));
    }

  kp_usage_parse_openai (&usage, kp_json_object (completion, "usage"));
  if (!kp_json_int (completion, "created", &created))
    created = g_get_real_time () / G_USEC_PER_SEC;
  return kp_json_object_node (kp_responses_response_object (id, req->model, created, kp_responses_status_for (finish),
                                               finish, output, &usage));
}

/* Errors: the body is OpenAI's; in a stream, an `error` event that the SDK
 * throws (it looks for `error` in the data).
 */
static void
error_event (guint       status,
             const char *code,
             const char *message,
             GString    *out)
{
  g_autoptr(GString) data = g_string_new ("{\"type\":\"error\",\"code\":");
  g_autofree char *body = kp_openai_error_json (status, code, message);

  if (code != NULL)
    kp_json_append_string (data, code);
  else
    g_string_append (data, "null");
  g_string_append (data, ",\"message\":");
  kp_json_append_string (data, message != NULL ? message : "");
  g_string_append (data, ",\"param\":null,\"error\":");
  /* The OpenAI body's one member, "error", is what goes here. */
  g_string_append_len (data, body + strlen ("{\"error\":"), strlen (body) - strlen ("{\"error\":") - 1);
  g_string_append (data, "}");
  g_string_append (out, "event: error\ndata: ");
  g_string_append_len (out, data->str, data->len);
  g_string_append (out, "\n\n");
}

/* Passed through: a provider's Responses stream ---------------------------- */

typedef struct
{
  JsonNode   *last;          /* the event read last (kp_json_read_into) */
  KpUsage     usage;
} Decoder;

static KpWireDecoder
decoder_new (const KpWireRequest *req,
             const KpWireTarget  *target,
             gboolean             passthrough)
{
  return g_new0 (Decoder, 1);
}

static void
decoder_free (KpWireDecoder decoder)
{
  Decoder *self = decoder;

  g_clear_pointer (&self->last, json_node_unref);
  g_free (self);
}

static gboolean
has_prefix (const char *name,
            gsize       len,
            const char *prefix)
{
  gsize prefix_len = strlen (prefix);

  return len >= prefix_len && memcmp (name, prefix, prefix_len) == 0;
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
  g_autofree char *type_copy = NULL;
  JsonObject *object = NULL;
  JsonNode *root;
  const char *type;

  /* Only the terminal events, errors, and unnamed events are parsed. */
  if (name == NULL || has_prefix (name, name_len, "response.completed") ||
      has_prefix (name, name_len, "response.incomplete") ||
      has_prefix (name, name_len, "response.failed") ||
      (name_len == 5 && memcmp (name, "error", 5) == 0))
    {
      if ((root = kp_json_read_into (&self->last, data, len)) != NULL &&
          JSON_NODE_HOLDS_OBJECT (root))
        object = json_node_get_object (root);
    }
  type_copy = name != NULL ? g_strndup (name, name_len) : NULL;
  type = type_copy != NULL ? type_copy : kp_json_string (object, "type");
  if (type == NULL)
    return KP_DECODE_FORWARD;

  if (g_str_equal (type, "error") || g_str_equal (type, "response.failed"))
    kp_event_emit (sink, user_data, (KpEvent) { .type = KP_EVENT_ERROR, .text = data });
  else if (g_str_equal (type, "response.created"))
    kp_event_emit (sink, user_data, (KpEvent) { .type = KP_EVENT_START, .light = TRUE });
  else if (g_str_equal (type, "response.completed") || g_str_equal (type, "response.incomplete"))
    {
      if (parse_usage (&self->usage, kp_json_object (kp_json_object (object, "response"), "usage")))
        kp_event_emit (sink, user_data, (KpEvent) { .type = KP_EVENT_USAGE, .usage = &self->usage });
      kp_event_emit (sink, user_data, (KpEvent) { .type = KP_EVENT_FINISH, .light = TRUE });
      kp_event_emit (sink, user_data, (KpEvent) { .type = KP_EVENT_END, .light = TRUE });
    }
  else if (g_str_has_prefix (type, "response.output_") ||
           g_str_has_prefix (type, "response.content_part") ||
           g_str_has_prefix (type, "response.function_call") ||
           g_str_has_prefix (type, "response.reasoning") ||
           g_str_has_prefix (type, "response.refusal"))
    kp_event_emit (sink, user_data, (KpEvent) { .type = KP_EVENT_TEXT, .light = TRUE });
  return KP_DECODE_FORWARD;
}

/* The table ---------------------------------------------------------------- */

static gboolean
parse_request (KpWireRequest  *req,
               GError        **error)
{
  JsonObject *request = json_node_get_object (req->root);
  JsonNode *input = json_object_get_member (request, "input");
  JsonNode *previous = json_object_get_member (request, "previous_response_id");
  gint64 max_tokens = 0;

  if (previous != NULL && !JSON_NODE_HOLDS_NULL (previous))
    return fail (error, KP_WIRE_ERROR_NEEDS_STATE,
                 "Keypool keeps no conversation state (as with “store”: false), so it cannot "
                 "continue from “previous_response_id”: send the whole conversation in “input”.");
  if (input == NULL || !(kp_json_node_string (input) != NULL ||
                         (JSON_NODE_HOLDS_ARRAY (input) &&
                          json_array_get_length (json_node_get_array (input)) > 0)))
    return fail (error, KP_WIRE_ERROR_MISSING_INPUT,
                 "The request needs “input”: a text, or a non-empty list of items.");

  if (kp_json_int (request, "max_output_tokens", &max_tokens) && max_tokens > 0)
    req->output_tokens = max_tokens;
  /* A Responses stream always ends with the usage. */
  req->wants_usage = TRUE;
  return TRUE;
}

static char *
count_json (gint64 input_tokens)
{
  return g_strdup_printf ("{\"object\":\"response.input_tokens\",\"input_tokens\":%"
                          G_GINT64_FORMAT "}", input_tokens);
}

static const char * const client_routes[] = { "/v1/responses", NULL };

const KpWire kp_wire_openai_responses = {
  .id = "openai-responses",
  .kind = KP_WIRE_KIND_CHAT,
  .client_routes = client_routes,
  .upstream_path = "/responses",
  .count_route = "/v1/responses/input_tokens",
  .count_json = count_json,

  .parse_request = parse_request,
  .to_canonical = to_canonical,
  .response_from_canonical = response_from_canonical,
  .error_json = kp_openai_error_json,
  .error_from_upstream = kp_openai_error_from_upstream,
  .error_event = error_event,
  .encoder = &kp_responses_encoder_class,

  .build_body = kp_openai_build_passthrough,
  .decoder_new = decoder_new,
  .decode = decode,
  .decoder_free = decoder_free,
  .parse_usage = parse_usage,
};
