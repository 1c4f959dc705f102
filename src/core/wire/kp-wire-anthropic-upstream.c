/* kp-wire-anthropic-upstream.c: the canonical request as an Anthropic one, and back
 *
 * Requests to an Anthropic provider are built from the canonical (OpenAI
 * Chat) request, and its whole answers read back into a chat completion.
 * Both are rebuilt as JSON trees: they are read once and the client waits
 * for the whole answer anyway.
 *
 * Choices worth knowing (the relay and the README rely on them):
 * - Tool ids are kept, with every character outside [a-zA-Z0-9_-] replaced
 *   by '_' on the way to Anthropic, the same way for tool_calls and tool
 *   results, so they still match.
 * - OpenAI's response_format json_object/json_schema becomes an instruction
 *   in `system`: Anthropic has no such switch, and dropping it would silently
 *   give the client prose where it expects JSON.
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

/* A data: URL or an http(s) URL as an Anthropic `source`. */
static JsonObject *
source_from_url (const char  *url,
                 GError     **error)
{
  JsonObject *source;

  if (url != NULL && g_str_has_prefix (url, "data:"))
    {
      const char *comma = strchr (url, ',');
      const char *header = url + strlen ("data:");
      g_autofree char *media_type = NULL;

      if (comma == NULL || comma - header < (gssize)strlen (";base64") ||
          strncmp (comma - strlen (";base64"), ";base64", strlen (";base64")) != 0)
        {
          g_set_error_literal (error, KP_WIRE_ERROR, KP_WIRE_ERROR_INVALID,
                               "A data: URL must be base64-encoded to be sent to an "
                               "Anthropic model.");
          return NULL;
        }
      media_type = g_strndup (header, strcspn (header, ";,"));
      if (media_type[0] == '\0')
        {
          g_set_error_literal (error, KP_WIRE_ERROR, KP_WIRE_ERROR_INVALID,
                               "A data: URL has no media type.");
          return NULL;
        }

      source = json_object_new ();
      json_object_set_string_member (source, "type", "base64");
      json_object_set_string_member (source, "media_type", media_type);
      json_object_set_string_member (source, "data", comma + 1);
      return source;
    }

  if (url != NULL && (g_str_has_prefix (url, "https://") || g_str_has_prefix (url, "http://")))
    {
      source = json_object_new ();
      json_object_set_string_member (source, "type", "url");
      json_object_set_string_member (source, "url", url);
      return source;
    }

  g_set_error_literal (error, KP_WIRE_ERROR, KP_WIRE_ERROR_INVALID,
                       "An image or file must be an http(s) URL or a base64 data: URL.");
  return NULL;
}

static JsonObject *
media_block (const char  *type,
             const char  *url,
             GError     **error)
{
  JsonObject *source = source_from_url (url, error);
  JsonObject *block;

  if (source == NULL)
    return NULL;
  block = json_object_new ();
  json_object_set_string_member (block, "type", type);
  json_object_set_object_member (block, "source", source);
  return block;
}

/* One OpenAI content part as an Anthropic block, added to @blocks. Empty
 * text is left out: Anthropic rejects empty text blocks.
 */
static gboolean
add_openai_part (JsonArray   *blocks,
                 JsonNode    *part_node,
                 gboolean     media_allowed,
                 GError     **error)
{
  JsonObject *part = JSON_NODE_HOLDS_OBJECT (part_node) ? json_node_get_object (part_node) : NULL;
  const char *type = kp_json_string (part, "type");
  JsonObject *block = NULL;

  if (g_strcmp0 (type, "text") == 0 || g_strcmp0 (type, "refusal") == 0)
    {
      const char *text = kp_json_string (part, type);

      if (!kp_json_nonempty (text))
        return TRUE;
      block = kp_anthropic_text_block (text);
    }
  else if (media_allowed && g_strcmp0 (type, "image_url") == 0)
    {
      JsonNode *image = kp_json_member (part, "image_url");
      const char *url = kp_json_node_string (image);

      if (url == NULL && image != NULL && JSON_NODE_HOLDS_OBJECT (image))
        url = kp_json_string (json_node_get_object (image), "url");
      block = media_block ("image", url, error);
      if (block == NULL)
        return FALSE;
    }
  else if (media_allowed && g_strcmp0 (type, "file") == 0)
    {
      block = media_block ("document", kp_json_string (kp_json_object (part, "file"), "file_data"), error);
      if (block == NULL)
        return FALSE;
    }
  else
    {
      g_set_error (error, KP_WIRE_ERROR, KP_WIRE_ERROR_INVALID,
                   "Content of type “%s” cannot be sent to an Anthropic model here.",
                   type != NULL ? type : "(none)");
      return FALSE;
    }

  /* OpenRouter lets OpenAI clients mark cache breakpoints on parts. */
  if (kp_json_object (part, "cache_control") != NULL)
    json_object_set_member (block, "cache_control",
                            json_node_copy (kp_json_member (part, "cache_control")));
  json_array_add_object_element (blocks, block);
  return TRUE;
}

static gboolean
add_openai_content (JsonArray   *blocks,
                    JsonNode    *content,
                    gboolean     media_allowed,
                    GError     **error)
{
  if (content == NULL || JSON_NODE_HOLDS_NULL (content))
    return TRUE;

  if (kp_json_node_string (content) != NULL)
    {
      if (kp_json_nonempty (kp_json_node_string (content)))
        json_array_add_object_element (blocks, kp_anthropic_text_block (kp_json_node_string (content)));
      return TRUE;
    }

  if (JSON_NODE_HOLDS_ARRAY (content))
    {
      JsonArray *parts = json_node_get_array (content);

      for (guint i = 0; i < json_array_get_length (parts); i++)
        if (!add_openai_part (blocks, json_array_get_element (parts, i), media_allowed, error))
          return FALSE;
      return TRUE;
    }

  g_set_error_literal (error, KP_WIRE_ERROR, KP_WIRE_ERROR_INVALID,
                       "A message's content must be a string or an array of parts.");
  return FALSE;
}

/* Tool results go first in a merged user turn, as Anthropic requires. */
static gboolean
is_tool_result (JsonNode *block)
{
  return g_strcmp0 (kp_json_string (json_node_get_object (block), "type"), "tool_result") == 0;
}

static gboolean
add_tool_calls (JsonArray   *blocks,
                JsonArray   *tool_calls,
                GError     **error)
{
  for (guint i = 0; tool_calls != NULL && i < json_array_get_length (tool_calls); i++)
    {
      JsonNode *call_node = json_array_get_element (tool_calls, i);
      JsonObject *call = JSON_NODE_HOLDS_OBJECT (call_node) ? json_node_get_object (call_node)
                                                            : NULL;
      JsonObject *function = kp_json_object (call, "function");
      const char *name = kp_json_string (function, "name");
      const char *arguments = kp_json_string (function, "arguments");
      g_autofree char *id = kp_anthropic_sanitize_tool_id (kp_json_string (call, "id"));
      JsonObject *input = NULL;
      JsonObject *block;

      if (name == NULL)
        {
          g_set_error_literal (error, KP_WIRE_ERROR, KP_WIRE_ERROR_INVALID,
                               "A tool call in the history has no function name.");
          return FALSE;
        }

      /* Arguments that are not a JSON object cannot be an Anthropic input. */
      if (arguments != NULL)
        input = kp_json_parse_object (arguments, -1);
      if (input == NULL)
        input = json_object_new ();

      block = json_object_new ();
      json_object_set_string_member (block, "type", "tool_use");
      json_object_set_string_member (block, "id", id);
      json_object_set_string_member (block, "name", name);
      json_object_set_object_member (block, "input", input);
      json_array_add_object_element (blocks, block);
    }
  return TRUE;
}

static JsonObject *
tool_result_block (JsonObject  *message,
                   GError     **error)
{
  g_autofree char *id = kp_anthropic_sanitize_tool_id (kp_json_string (message, "tool_call_id"));
  JsonNode *content = kp_json_member (message, "content");
  JsonObject *block = json_object_new ();

  json_object_set_string_member (block, "type", "tool_result");
  json_object_set_string_member (block, "tool_use_id", id);

  if (kp_json_node_string (content) != NULL)
    json_object_set_string_member (block, "content", kp_json_node_string (content));
  else
    {
      JsonArray *blocks = json_array_new ();

      if (!add_openai_content (blocks, content, TRUE, error))
        {
          json_array_unref (blocks);
          json_object_unref (block);
          return NULL;
        }
      if (json_array_get_length (blocks) > 0)
        json_object_set_array_member (block, "content", blocks);
      else
        {
          json_array_unref (blocks);
          json_object_set_string_member (block, "content", "");
        }
    }
  return block;
}

static gboolean
convert_openai_messages (JsonArray   *messages,
                         JsonArray   *system,
                         JsonArray   *out,
                         GError     **error)
{
  for (guint i = 0; i < json_array_get_length (messages); i++)
    {
      JsonNode *node = json_array_get_element (messages, i);
      JsonObject *message = JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
      const char *role = kp_json_string (message, "role");
      JsonNode *content = kp_json_member (message, "content");
      g_autoptr(JsonArray) blocks = json_array_new ();

      if (role == NULL)
        {
          g_set_error (error, KP_WIRE_ERROR, KP_WIRE_ERROR_INVALID,
                       "messages[%u] has no role.", i);
          return FALSE;
        }

      if (g_str_equal (role, "system") || g_str_equal (role, "developer"))
        {
          if (!add_openai_content (system, content, FALSE, error))
            return FALSE;
        }
      else if (g_str_equal (role, "user"))
        {
          if (!add_openai_content (blocks, content, TRUE, error))
            return FALSE;
          kp_wire_add_turn (out, "user", "content", g_steal_pointer (&blocks), is_tool_result);
        }
      else if (g_str_equal (role, "assistant"))
        {
          /* reasoning_content has no signature, and Anthropic refuses
           * thinking without one: it stays out of the history.
           */
          if (!add_openai_content (blocks, content, FALSE, error) ||
              !add_tool_calls (blocks, kp_json_array (message, "tool_calls"), error))
            return FALSE;
          kp_wire_add_turn (out, "assistant", "content", g_steal_pointer (&blocks), is_tool_result);
        }
      else if (g_str_equal (role, "tool"))
        {
          JsonObject *block = tool_result_block (message, error);

          if (block == NULL)
            return FALSE;
          json_array_add_object_element (blocks, block);
          kp_wire_add_turn (out, "user", "content", g_steal_pointer (&blocks), is_tool_result);
        }
      else
        {
          g_set_error (error, KP_WIRE_ERROR, KP_WIRE_ERROR_INVALID,
                       "messages[%u] has the role “%s”, which an Anthropic model cannot take.",
                       i, role);
          return FALSE;
        }
    }
  return TRUE;
}

static gboolean
convert_openai_tools (JsonArray   *tools,
                      JsonObject  *out,
                      GError     **error)
{
  JsonArray *converted = json_array_new ();

  for (guint i = 0; i < json_array_get_length (tools); i++)
    {
      JsonNode *node = json_array_get_element (tools, i);
      JsonObject *tool = JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
      const char *type = kp_json_string (tool, "type");
      JsonObject *function = kp_json_object (tool, "function");
      JsonObject *parameters = kp_json_object (function, "parameters");
      const char *name = kp_json_string (function, "name");
      JsonObject *anthropic_tool;

      if ((type != NULL && !g_str_equal (type, "function")) || name == NULL)
        {
          g_set_error (error, KP_WIRE_ERROR, KP_WIRE_ERROR_INVALID,
                       "tools[%u] is not a function with a name; only functions can be "
                       "offered to an Anthropic model.", i);
          json_array_unref (converted);
          return FALSE;
        }

      anthropic_tool = json_object_new ();
      json_object_set_string_member (anthropic_tool, "name", name);
      if (kp_json_string (function, "description") != NULL)
        json_object_set_string_member (anthropic_tool, "description",
                                       kp_json_string (function, "description"));
      if (parameters != NULL && json_object_get_size (parameters) > 0)
        json_object_set_member (anthropic_tool, "input_schema",
                                json_node_copy (kp_json_member (function, "parameters")));
      else
        {
          JsonObject *schema = json_object_new ();

          json_object_set_string_member (schema, "type", "object");
          json_object_set_object_member (schema, "properties", json_object_new ());
          json_object_set_object_member (anthropic_tool, "input_schema", schema);
        }
      json_array_add_object_element (converted, anthropic_tool);
    }

  json_object_set_array_member (out, "tools", converted);
  return TRUE;
}

static JsonObject *
convert_openai_tool_choice (JsonObject *request)
{
  JsonNode *choice = kp_json_member (request, "tool_choice");
  const char *name = kp_json_node_string (choice);
  const char *type = "auto";
  const char *tool = NULL;
  gboolean parallel = TRUE;
  JsonObject *out;

  if (name != NULL)
    {
      if (g_str_equal (name, "required"))
        type = "any";
      else if (g_str_equal (name, "none"))
        type = "none";
    }
  else if (choice != NULL && JSON_NODE_HOLDS_OBJECT (choice))
    {
      tool = kp_json_string (kp_json_object (json_node_get_object (choice), "function"), "name");
      if (tool != NULL)
        type = "tool";
    }
  kp_json_bool (request, "parallel_tool_calls", &parallel);

  if (choice == NULL && parallel)
    return NULL;

  out = json_object_new ();
  json_object_set_string_member (out, "type", type);
  if (tool != NULL)
    json_object_set_string_member (out, "name", tool);
  if (!parallel && !g_str_equal (type, "none"))
    json_object_set_boolean_member (out, "disable_parallel_tool_use", TRUE);
  return out;
}

static gint64
budget_for_effort (const char *effort)
{
  static const struct { const char *name; gint64 budget; } budgets[] = {
    { "minimal", BUDGET_MINIMAL },
    { "low", BUDGET_LOW },
    { "medium", BUDGET_MEDIUM },
    { "high", BUDGET_HIGH },
    { "xhigh", BUDGET_XHIGH },
  };

  for (guint i = 0; effort != NULL && i < G_N_ELEMENTS (budgets); i++)
    if (g_str_equal (effort, budgets[i].name))
      return budgets[i].budget;
  /* "none", and values this table does not know yet: no thinking. */
  return 0;
}

static void
add_response_format (JsonObject *request,
                     JsonArray  *system)
{
  JsonObject *format = kp_json_object (request, "response_format");
  const char *type = kp_json_string (format, "type");
  JsonNode *schema = kp_json_member (kp_json_object (format, "json_schema"), "schema");

  if (g_strcmp0 (type, "json_object") == 0)
    json_array_add_object_element (system,
      kp_anthropic_text_block ("Answer with a single JSON object and nothing else."));
  else if (g_strcmp0 (type, "json_schema") == 0 && schema != NULL)
    {
      g_autofree char *text = kp_json_to_string (schema, NULL);
      g_autofree char *instruction =
        g_strdup_printf ("Answer with a single JSON value that conforms to this JSON "
                         "Schema, and nothing else: %s", text);

      json_array_add_object_element (system, kp_anthropic_text_block (instruction));
    }
}

/**
 * kp_anthropic_request_from_openai:
 * @openai_request: an OpenAI chat completion request
 * @error: a place for the reason the request cannot be sent
 *
 * Fields that have no Anthropic counterpart (n = 1, seed, logprobs,
 * penalties, stream_options, service_tier, store, OpenAI's metadata...) are
 * left out; n > 1 is an error because one answer would silently replace
 * several.
 *
 * Returns: (transfer full): the Anthropic Messages request, or %NULL
 */
JsonNode *
kp_anthropic_request_from_openai (JsonObject  *openai_request,
                                  GError     **error)
{
  g_autoptr(JsonObject) out = NULL;
  g_autoptr(JsonArray) system = NULL;
  JsonArray *messages;
  JsonArray *out_messages;
  JsonArray *tools;
  JsonObject *tool_choice;
  JsonNode *stop;
  gint64 max_tokens = KP_ANTHROPIC_DEFAULT_MAX_TOKENS;
  gint64 budget;
  gboolean stream;
  const char *user;

  g_return_val_if_fail (openai_request != NULL, NULL);

  messages = kp_wire_messages (openai_request,
                               "Anthropic models give one answer per request: n must be 1.",
                               error);
  if (messages == NULL)
    return NULL;

  out = json_object_new ();
  system = json_array_new ();
  out_messages = json_array_new ();
  json_object_set_array_member (out, "messages", out_messages);

  if (kp_json_string (openai_request, "model") != NULL)
    json_object_set_string_member (out, "model", kp_json_string (openai_request, "model"));

  if (!convert_openai_messages (messages, system, out_messages, error))
    return NULL;

  add_response_format (openai_request, system);
  if (json_array_get_length (system) == 1 &&
      kp_json_member (json_array_get_object_element (system, 0), "cache_control") == NULL)
    json_object_set_string_member (out, "system",
                                   kp_json_string (json_array_get_object_element (system, 0), "text"));
  else if (json_array_get_length (system) > 0)
    json_object_set_array_member (out, "system", g_steal_pointer (&system));

  tools = kp_json_array (openai_request, "tools");
  if (tools != NULL && json_array_get_length (tools) > 0)
    {
      if (!convert_openai_tools (tools, out, error))
        return NULL;
      tool_choice = convert_openai_tool_choice (openai_request);
      if (tool_choice != NULL)
        json_object_set_object_member (out, "tool_choice", tool_choice);
    }

  stop = kp_json_member (openai_request, "stop");
  if (kp_json_node_string (stop) != NULL)
    {
      JsonArray *sequences = json_array_new ();

      json_array_add_string_element (sequences, kp_json_node_string (stop));
      json_object_set_array_member (out, "stop_sequences", sequences);
    }
  else if (stop != NULL && JSON_NODE_HOLDS_ARRAY (stop) &&
           json_array_get_length (json_node_get_array (stop)) > 0)
    json_object_set_member (out, "stop_sequences", json_node_copy (stop));

  if (!kp_json_int (openai_request, "max_completion_tokens", &max_tokens))
    kp_json_int (openai_request, "max_tokens", &max_tokens);

  budget = budget_for_effort (kp_json_string (openai_request, "reasoning_effort"));
  if (budget > 0)
    {
      JsonObject *thinking = json_object_new ();

      /* The budget is part of max_tokens: keep the room the client asked
       * for the answer itself.
       */
      if (max_tokens <= budget)
        max_tokens += budget;
      json_object_set_string_member (thinking, "type", "enabled");
      json_object_set_int_member (thinking, "budget_tokens", budget);
      json_object_set_object_member (out, "thinking", thinking);
    }
  json_object_set_int_member (out, "max_tokens", max_tokens);

  /* With thinking on, Anthropic only takes the default sampling. OpenAI's
   * temperature goes up to 2, Anthropic's to 1.
   */
  if (budget == 0 && kp_json_is_number (kp_json_member (openai_request, "temperature")))
    json_object_set_double_member (out, "temperature",
      MIN (json_node_get_double (kp_json_member (openai_request, "temperature")), 1.0));
  if (budget == 0)
    kp_json_copy_number (openai_request, "top_p", out, "top_p");

  user = kp_json_string (openai_request, "user");
  if (user != NULL)
    {
      JsonObject *metadata = json_object_new ();

      json_object_set_string_member (metadata, "user_id", user);
      json_object_set_object_member (out, "metadata", metadata);
    }

  if (kp_json_bool (openai_request, "stream", &stream))
    json_object_set_boolean_member (out, "stream", stream);

  return kp_json_object_node (g_steal_pointer (&out));
}

/**
 * kp_anthropic_response_to_openai:
 * @anthropic_message: an Anthropic message
 * @model: the model the client asked for
 * @error: a place for the reason the message cannot be read
 *
 * The completion's id is "chatcmpl-" and the message id, as in a stream.
 *
 * Returns: (transfer full): the chat completion, or %NULL
 */
JsonNode *
kp_anthropic_response_to_openai (JsonObject  *anthropic_message,
                                 const char  *model,
                                 GError     **error)
{
  JsonObject *out;
  JsonObject *choice;
  JsonObject *message;
  JsonArray *choices;
  JsonArray *content;
  JsonArray *tool_calls;
  g_autoptr(GString) text = NULL;
  g_autoptr(GString) thinking = NULL;
  g_autofree char *id = NULL;
  KpUsage usage = { 0 };

  g_return_val_if_fail (anthropic_message != NULL, NULL);

  content = kp_json_array (anthropic_message, "content");
  if (content == NULL)
    {
      g_set_error_literal (error, KP_WIRE_ERROR, KP_WIRE_ERROR_INVALID,
                           "The Anthropic answer has no content array.");
      return NULL;
    }

  message = kp_anthropic_openai_message ("assistant");
  tool_calls = json_array_new ();
  kp_anthropic_collect_blocks (content, &text, &thinking, tool_calls);

  kp_wire_chat_set_answer (message, text, thinking, tool_calls);

  choice = json_object_new ();
  json_object_set_int_member (choice, "index", 0);
  json_object_set_object_member (choice, "message", message);
  json_object_set_string_member (choice, "finish_reason",
    kp_anthropic_finish_for_stop (kp_json_string (anthropic_message, "stop_reason")));
  choices = json_array_new ();
  json_array_add_object_element (choices, choice);

  id = g_strconcat ("chatcmpl-", kp_json_string (anthropic_message, "id") ?: "keypool", NULL);
  out = json_object_new ();
  json_object_set_string_member (out, "id", id);
  json_object_set_string_member (out, "object", "chat.completion");
  json_object_set_int_member (out, "created", g_get_real_time () / G_USEC_PER_SEC);
  json_object_set_string_member (out, "model", model != NULL ? model
                                 : kp_json_string (anthropic_message, "model") ?: "");
  json_object_set_array_member (out, "choices", choices);
  if (kp_usage_parse_anthropic (&usage, kp_json_object (anthropic_message, "usage")))
    json_object_set_object_member (out, "usage", kp_anthropic_openai_usage (&usage));

  return kp_json_object_node (out);
}
