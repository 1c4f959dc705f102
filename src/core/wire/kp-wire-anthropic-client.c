/* kp-wire-anthropic-client.c: an Anthropic client's request as the canonical one, and back
 *
 * An Anthropic client's request becomes the canonical (OpenAI Chat) request,
 * and a canonical whole answer becomes the Anthropic message it expects.
 *
 * Thinking given to an Anthropic client comes from `reasoning_content` (or
 * OpenRouter's `reasoning`) with an empty signature: OpenAI providers have
 * none, and an Anthropic client only sends it back to us, where thinking in
 * history is dropped.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include <string.h>

#include "kp-wire-anthropic-private.h"
#include "kp-wire-chat.h"
#include "kp-wire-util.h"


/* Thinking budgets for OpenAI's reasoning_effort, and back. */
#define BUDGET_MINIMAL 1024
#define BUDGET_LOW     2048
#define BUDGET_MEDIUM  8192
#define BUDGET_HIGH    24576
#define BUDGET_XHIGH   32768

/* The text of a string or of the text blocks in an array, joined by '\n'. */
static char *
join_text (JsonNode *content)
{
  GString *text;
  JsonArray *blocks;
  gboolean first = TRUE;

  if (kp_json_node_string (content) != NULL)
    return g_strdup (kp_json_node_string (content));

  text = g_string_new (NULL);
  if (content == NULL || !JSON_NODE_HOLDS_ARRAY (content))
    return g_string_free (text, FALSE);

  blocks = json_node_get_array (content);
  for (guint i = 0; i < json_array_get_length (blocks); i++)
    {
      JsonNode *node = json_array_get_element (blocks, i);
      JsonObject *block = JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
      const char *piece = kp_json_string (block, "text");

      if (g_strcmp0 (kp_json_string (block, "type"), "text") != 0 || piece == NULL)
        continue;
      if (!first)
        g_string_append_c (text, '\n');
      g_string_append (text, piece);
      first = FALSE;
    }
  return g_string_free (text, FALSE);
}

static JsonObject *
image_part (JsonObject *block)
{
  JsonObject *source = kp_json_object (block, "source");
  const char *type = kp_json_string (source, "type");
  g_autofree char *url = NULL;
  JsonObject *image_url;
  JsonObject *part;

  if (g_strcmp0 (type, "base64") == 0)
    url = g_strdup_printf ("data:%s;base64,%s",
                           kp_json_string (source, "media_type") ?: "application/octet-stream",
                           kp_json_string (source, "data") ?: "");
  else if (g_strcmp0 (type, "url") == 0 && kp_json_string (source, "url") != NULL)
    url = g_strdup (kp_json_string (source, "url"));
  else
    return NULL;

  part = json_object_new ();
  if (g_str_equal (kp_json_string (block, "type"), "document"))
    {
      JsonObject *file = json_object_new ();

      json_object_set_string_member (part, "type", "file");
      json_object_set_string_member (file, "file_data", url);
      if (kp_json_string (block, "title") != NULL)
        json_object_set_string_member (file, "filename", kp_json_string (block, "title"));
      json_object_set_object_member (part, "file", file);
      return part;
    }

  image_url = json_object_new ();
  json_object_set_string_member (image_url, "url", url);
  json_object_set_string_member (part, "type", "image_url");
  json_object_set_object_member (part, "image_url", image_url);
  return part;
}

JsonObject *
kp_anthropic_openai_message (const char *role)
{
  JsonObject *message = json_object_new ();

  json_object_set_string_member (message, "role", role);
  return message;
}

/* A user turn: its tool results become tool messages, first, then the rest
 * becomes one user message. Content that is only text is sent as a string,
 * which every OpenAI-compatible server takes.
 */
static void
add_user_turn (JsonArray *out,
               JsonNode  *content)
{
  g_autoptr(JsonArray) parts = json_array_new ();
  JsonArray *blocks;
  gboolean only_text = TRUE;
  JsonObject *message;

  if (content == NULL || !JSON_NODE_HOLDS_ARRAY (content))
    {
      message = kp_anthropic_openai_message ("user");
      json_object_set_string_member (message, "content", kp_json_node_string (content) ?: "");
      json_array_add_object_element (out, message);
      return;
    }

  blocks = json_node_get_array (content);
  for (guint i = 0; i < json_array_get_length (blocks); i++)
    {
      JsonNode *node = json_array_get_element (blocks, i);
      JsonObject *block = JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
      const char *type = kp_json_string (block, "type");
      JsonObject *part = NULL;

      if (g_strcmp0 (type, "tool_result") == 0)
        {
          g_autofree char *text = join_text (kp_json_member (block, "content"));
          gboolean is_error = FALSE;

          message = kp_anthropic_openai_message ("tool");
          json_object_set_string_member (message, "tool_call_id",
                                         kp_json_string (block, "tool_use_id") ?: "");
          kp_json_bool (block, "is_error", &is_error);
          if (is_error)
            {
              g_autofree char *marked = g_strconcat ("Error: ", text, NULL);

              json_object_set_string_member (message, "content", marked);
            }
          else
            json_object_set_string_member (message, "content", text);
          json_array_add_object_element (out, message);
        }
      else if (g_strcmp0 (type, "text") == 0 && kp_json_string (block, "text") != NULL)
        part = kp_anthropic_text_block (kp_json_string (block, "text"));
      else if (g_strcmp0 (type, "image") == 0 || g_strcmp0 (type, "document") == 0)
        {
          part = image_part (block);
          only_text = FALSE;
        }
      /* Other blocks (server tool results, search results...) have no
       * OpenAI form and are left out.
       */
      if (part != NULL)
        json_array_add_object_element (parts, part);
    }

  if (json_array_get_length (parts) == 0)
    return;

  message = kp_anthropic_openai_message ("user");
  if (only_text)
    {
      g_autoptr(JsonNode) node = json_node_new (JSON_NODE_ARRAY);
      g_autofree char *text = NULL;

      json_node_set_array (node, parts);
      text = join_text (node);
      json_object_set_string_member (message, "content", text);
    }
  else
    json_object_set_array_member (message, "content", g_steal_pointer (&parts));
  json_array_add_object_element (out, message);
}

/* An Anthropic tool_use block as an OpenAI tool call: its input becomes the
 * arguments' JSON text.
 */
static JsonObject *
tool_call_for_block (JsonObject *block)
{
  JsonObject *call = json_object_new ();
  JsonObject *function = json_object_new ();
  JsonNode *input = kp_json_member (block, "input");
  g_autofree char *arguments = input != NULL ? kp_json_to_string (input, NULL) : g_strdup ("{}");

  json_object_set_string_member (call, "id", kp_json_string (block, "id") ?: "");
  json_object_set_string_member (call, "type", "function");
  json_object_set_string_member (function, "name", kp_json_string (block, "name") ?: "");
  json_object_set_string_member (function, "arguments", arguments);
  json_object_set_object_member (call, "function", function);
  return call;
}

/* An Anthropic assistant turn's blocks, OpenAI's way: the text joined, the
 * thinking joined (when @thinking is given), and the tool calls.
 */
void
kp_anthropic_collect_blocks (JsonArray  *blocks,
                GString   **text,
                GString   **thinking,
                JsonArray  *tool_calls)
{
  for (guint i = 0; i < json_array_get_length (blocks); i++)
    {
      JsonNode *node = json_array_get_element (blocks, i);
      JsonObject *block = JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
      const char *type = kp_json_string (block, "type");

      if (g_strcmp0 (type, "text") == 0 && kp_json_string (block, "text") != NULL)
        {
          if (*text == NULL)
            *text = g_string_new (NULL);
          g_string_append (*text, kp_json_string (block, "text"));
        }
      else if (thinking != NULL && g_strcmp0 (type, "thinking") == 0 &&
               kp_json_string (block, "thinking") != NULL)
        {
          if (*thinking == NULL)
            *thinking = g_string_new (NULL);
          g_string_append (*thinking, kp_json_string (block, "thinking"));
        }
      else if (g_strcmp0 (type, "tool_use") == 0)
        json_array_add_object_element (tool_calls, tool_call_for_block (block));
    }
}

static void
add_assistant_turn (JsonArray *out,
                    JsonNode  *content)
{
  JsonObject *message = kp_anthropic_openai_message ("assistant");
  g_autoptr(GString) text = NULL;
  JsonArray *tool_calls = json_array_new ();
  JsonArray *blocks;

  if (content == NULL || !JSON_NODE_HOLDS_ARRAY (content))
    {
      json_object_set_string_member (message, "content", kp_json_node_string (content) ?: "");
      json_array_add_object_element (out, message);
      json_array_unref (tool_calls);
      return;
    }

  /* Thinking in the history only means something to Anthropic. */
  blocks = json_node_get_array (content);
  kp_anthropic_collect_blocks (blocks, &text, NULL, tool_calls);

  if (text != NULL)
    json_object_set_string_member (message, "content", text->str);
  else if (json_array_get_length (tool_calls) > 0)
    json_object_set_null_member (message, "content");
  else
    json_object_set_string_member (message, "content", "");

  if (json_array_get_length (tool_calls) > 0)
    json_object_set_array_member (message, "tool_calls", tool_calls);
  else
    json_array_unref (tool_calls);
  json_array_add_object_element (out, message);
}

static void
convert_anthropic_tools (JsonArray  *tools,
                         JsonObject *out)
{
  JsonArray *converted = json_array_new ();

  for (guint i = 0; i < json_array_get_length (tools); i++)
    {
      JsonNode *node = json_array_get_element (tools, i);
      JsonObject *tool = JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
      const char *type = kp_json_string (tool, "type");
      JsonNode *schema;

      /* Server tools (web search, code execution...) run at Anthropic. */
      if ((type != NULL && !g_str_equal (type, "custom")) || kp_json_string (tool, "name") == NULL)
        continue;

      schema = kp_json_object (tool, "input_schema") != NULL
               ? json_node_copy (kp_json_member (tool, "input_schema")) : NULL;
      json_array_add_object_element (converted,
                                     kp_wire_chat_function (kp_json_string (tool, "name"),
                                                            kp_json_string (tool, "description"),
                                                            schema));
    }

  kp_wire_chat_set_tools (out, converted);
}

static void
convert_anthropic_tool_choice (JsonObject *choice,
                               JsonObject *out)
{
  const char *type = kp_json_string (choice, "type");
  gboolean disable_parallel = FALSE;

  if (g_strcmp0 (type, "auto") == 0)
    json_object_set_string_member (out, "tool_choice", "auto");
  else if (g_strcmp0 (type, "any") == 0)
    json_object_set_string_member (out, "tool_choice", "required");
  else if (g_strcmp0 (type, "none") == 0)
    json_object_set_string_member (out, "tool_choice", "none");
  else if (g_strcmp0 (type, "tool") == 0 && kp_json_string (choice, "name") != NULL)
    {
      JsonObject *named = json_object_new ();
      JsonObject *function = json_object_new ();

      json_object_set_string_member (function, "name", kp_json_string (choice, "name"));
      json_object_set_string_member (named, "type", "function");
      json_object_set_object_member (named, "function", function);
      json_object_set_object_member (out, "tool_choice", named);
    }

  if (kp_json_bool (choice, "disable_parallel_tool_use", &disable_parallel) && disable_parallel)
    json_object_set_boolean_member (out, "parallel_tool_calls", FALSE);
}

static const char *
effort_for_budget (gint64 budget)
{
  if (budget <= 4096)
    return "low";
  if (budget <= 16384)
    return "medium";
  return "high";
}

/**
 * kp_anthropic_request_to_openai:
 * @anthropic_request: an Anthropic Messages request
 * @error: a place for the reason the request cannot be sent
 *
 * cache_control and top_k have no OpenAI counterpart and are left out. A
 * streamed request also asks for the usage chunk, so that the stream can
 * report tokens.
 *
 * Returns: (transfer full): the OpenAI chat completion request, or %NULL
 */
JsonNode *
kp_anthropic_request_to_openai (JsonObject  *anthropic_request,
                                GError     **error)
{
  g_autoptr(JsonObject) out = NULL;
  JsonArray *messages;
  JsonArray *out_messages;
  JsonNode *system;
  JsonNode *stop;
  JsonObject *thinking;
  const char *effort;
  gint64 budget;
  gboolean stream = FALSE;

  g_return_val_if_fail (anthropic_request != NULL, NULL);

  messages = kp_wire_messages (anthropic_request, NULL, error);
  if (messages == NULL)
    return NULL;

  out = json_object_new ();
  out_messages = json_array_new ();
  if (kp_json_string (anthropic_request, "model") != NULL)
    json_object_set_string_member (out, "model", kp_json_string (anthropic_request, "model"));

  system = kp_json_member (anthropic_request, "system");
  if (system != NULL && !JSON_NODE_HOLDS_NULL (system))
    {
      g_autofree char *text = join_text (system);

      kp_wire_chat_add_system (out_messages, text);
    }

  for (guint i = 0; i < json_array_get_length (messages); i++)
    {
      JsonNode *node = json_array_get_element (messages, i);
      JsonObject *message = JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
      const char *role = kp_json_string (message, "role");

      if (g_strcmp0 (role, "user") == 0)
        add_user_turn (out_messages, kp_json_member (message, "content"));
      else if (g_strcmp0 (role, "assistant") == 0)
        add_assistant_turn (out_messages, kp_json_member (message, "content"));
      else if (g_strcmp0 (role, "system") == 0)
        {
          /* Claude Code puts system turns among the messages (a beta of
           * 2026); OpenAI takes a system message anywhere.
           */
          g_autofree char *text = join_text (kp_json_member (message, "content"));

          kp_wire_chat_add_system (out_messages, text);
        }
      else
        {
          g_set_error (error, KP_WIRE_ERROR, KP_WIRE_ERROR_INVALID,
                       "messages[%u] must have the role “user”, “assistant” or “system”.", i);
          json_array_unref (out_messages);
          return NULL;
        }
    }
  json_object_set_array_member (out, "messages", out_messages);

  if (kp_json_array (anthropic_request, "tools") != NULL)
    convert_anthropic_tools (kp_json_array (anthropic_request, "tools"), out);
  if (json_object_has_member (out, "tools") &&
      kp_json_object (anthropic_request, "tool_choice") != NULL)
    convert_anthropic_tool_choice (kp_json_object (anthropic_request, "tool_choice"), out);

  stop = kp_json_member (anthropic_request, "stop_sequences");
  if (stop != NULL && JSON_NODE_HOLDS_ARRAY (stop) &&
      json_array_get_length (json_node_get_array (stop)) > 0)
    json_object_set_member (out, "stop", json_node_copy (stop));

  kp_json_copy_number (anthropic_request, "max_tokens", out, "max_tokens");
  kp_json_copy_number (anthropic_request, "temperature", out, "temperature");
  kp_json_copy_number (anthropic_request, "top_p", out, "top_p");

  /* Thinking with a budget, or adaptive thinking at the effort output_config
   * names (newer Claude clients send that), is an OpenAI reasoning effort.
   */
  thinking = kp_json_object (anthropic_request, "thinking");
  effort = kp_json_string (kp_json_object (anthropic_request, "output_config"), "effort");
  if (g_strcmp0 (kp_json_string (thinking, "type"), "enabled") == 0 &&
      kp_json_int (thinking, "budget_tokens", &budget))
    json_object_set_string_member (out, "reasoning_effort", effort_for_budget (budget));
  else if (g_strcmp0 (kp_json_string (thinking, "type"), "disabled") != 0 &&
           (g_strcmp0 (effort, "low") == 0 || g_strcmp0 (effort, "medium") == 0 ||
            g_strcmp0 (effort, "high") == 0))
    json_object_set_string_member (out, "reasoning_effort", effort);
  else if (g_strcmp0 (kp_json_string (thinking, "type"), "disabled") != 0 &&
           (g_strcmp0 (effort, "xhigh") == 0 || g_strcmp0 (effort, "max") == 0))
    json_object_set_string_member (out, "reasoning_effort", "high");
  else if (g_strcmp0 (kp_json_string (thinking, "type"), "adaptive") == 0)
    json_object_set_string_member (out, "reasoning_effort", "medium");

  if (kp_json_string (kp_json_object (anthropic_request, "metadata"), "user_id") != NULL)
    json_object_set_string_member (out, "user",
                                   kp_json_string (kp_json_object (anthropic_request, "metadata"),
                                               "user_id"));

  if (kp_json_bool (anthropic_request, "stream", &stream))
    json_object_set_boolean_member (out, "stream", stream);
  if (stream)
    kp_json_ask_usage (out);

  return kp_json_object_node (g_steal_pointer (&out));
}

/**
 * kp_anthropic_response_from_openai:
 * @openai_completion: an OpenAI chat completion
 * @model: the model the client asked for
 * @error: a place for the reason the completion cannot be read
 *
 * Reasoning becomes a thinking block with an empty signature. Tool-call
 * arguments that are not a JSON object become an empty input.
 *
 * Returns: (transfer full): the Anthropic message, or %NULL
 */
JsonNode *
kp_anthropic_response_from_openai (JsonObject  *openai_completion,
                                   const char  *model,
                                   GError     **error)
{
  JsonArray *choices;
  JsonNode *choice_node;
  JsonObject *choice;
  JsonObject *message;
  JsonObject *out;
  JsonArray *content;
  const char *reasoning;
  const char *text;
  g_autofree char *id = NULL;
  JsonArray *tool_calls;
  KpUsage usage = { 0 };

  g_return_val_if_fail (openai_completion != NULL, NULL);

  choices = kp_json_array (openai_completion, "choices");
  choice_node = choices != NULL && json_array_get_length (choices) > 0
                ? json_array_get_element (choices, 0) : NULL;
  choice = choice_node != NULL && JSON_NODE_HOLDS_OBJECT (choice_node)
           ? json_node_get_object (choice_node) : NULL;
  message = kp_json_object (choice, "message");
  if (message == NULL)
    {
      g_set_error_literal (error, KP_WIRE_ERROR, KP_WIRE_ERROR_INVALID,
                           "The OpenAI answer has no message in choices[0].");
      return NULL;
    }

  content = json_array_new ();
  reasoning = kp_anthropic_reasoning_of (message);
  if (kp_json_nonempty (reasoning))
    {
      JsonObject *block = json_object_new ();

      json_object_set_string_member (block, "type", "thinking");
      json_object_set_string_member (block, "thinking", reasoning);
      json_object_set_string_member (block, "signature", "");
      json_array_add_object_element (content, block);
    }

  text = kp_json_string (message, "content");
  if (!kp_json_nonempty (text))
    text = kp_json_string (message, "refusal");
  if (kp_json_nonempty (text))
    json_array_add_object_element (content, kp_anthropic_text_block (text));

  tool_calls = kp_json_array (message, "tool_calls");
  for (guint i = 0; tool_calls != NULL && i < json_array_get_length (tool_calls); i++)
    {
      JsonNode *call_node = json_array_get_element (tool_calls, i);
      JsonObject *call = JSON_NODE_HOLDS_OBJECT (call_node) ? json_node_get_object (call_node)
                                                            : NULL;
      JsonObject *function = kp_json_object (call, "function");
      const char *arguments = kp_json_string (function, "arguments");
      g_autofree char *tool_id = kp_anthropic_sanitize_tool_id (kp_json_string (call, "id"));
      JsonObject *input = arguments != NULL ? kp_json_parse_object (arguments, -1) : NULL;
      JsonObject *block = json_object_new ();

      json_object_set_string_member (block, "type", "tool_use");
      json_object_set_string_member (block, "id", tool_id);
      json_object_set_string_member (block, "name", kp_json_string (function, "name") ?: "");
      json_object_set_object_member (block, "input", input != NULL ? input : json_object_new ());
      json_array_add_object_element (content, block);
    }

  id = kp_anthropic_message_id_for (kp_json_string (openai_completion, "id"));
  out = json_object_new ();
  json_object_set_string_member (out, "id", id);
  json_object_set_string_member (out, "type", "message");
  json_object_set_string_member (out, "role", "assistant");
  json_object_set_string_member (out, "model", model != NULL ? model
                                 : kp_json_string (openai_completion, "model") ?: "");
  json_object_set_array_member (out, "content", content);
  json_object_set_string_member (out, "stop_reason",
                                 kp_anthropic_stop_for_finish (kp_json_string (choice, "finish_reason")));
  json_object_set_null_member (out, "stop_sequence");
  kp_usage_parse_openai (&usage, kp_json_object (openai_completion, "usage"));
  json_object_set_object_member (out, "usage", kp_anthropic_usage_object (&usage));

  return kp_json_object_node (out);
}
