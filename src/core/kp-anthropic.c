/* kp-anthropic.c: Anthropic Messages ⇄ OpenAI Chat Completions
 *
 * Requests and whole responses are rebuilt as JSON trees: they are read once
 * and the client waits for the whole answer anyway. Stream events are on the
 * hot path, so the translator writes the client's JSON text directly from the
 * few fields it needs, escaping every string it copies.
 *
 * Choices worth knowing (the relay and the README rely on them):
 * - Tool ids are kept, with every character outside [a-zA-Z0-9_-] replaced
 *   by '_' on the way to Anthropic, the same way for tool_calls and tool
 *   results, so they still match.
 * - OpenAI's response_format json_object/json_schema becomes an instruction
 *   in `system`: Anthropic has no such switch, and dropping it would silently
 *   give the client prose where it expects JSON.
 * - Thinking given to an Anthropic client comes from `reasoning_content` (or
 *   OpenRouter's `reasoning`) with an empty signature: OpenAI providers have
 *   none, and an Anthropic client only sends it back to us, where thinking in
 *   history is dropped.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include <string.h>

#include "kp-anthropic.h"

G_DEFINE_QUARK (kp-anthropic-error-quark, kp_anthropic_error)

/* Thinking budgets for OpenAI's reasoning_effort, and back. */
#define BUDGET_MINIMAL 1024
#define BUDGET_LOW     2048
#define BUDGET_MEDIUM  8192
#define BUDGET_HIGH    24576
#define BUDGET_XHIGH   32768

/* Reading JSON that may have any shape. */

static JsonNode *
get_member (JsonObject *object,
            const char *member)
{
  return object != NULL ? json_object_get_member (object, member) : NULL;
}

static JsonObject *
get_object (JsonObject *object,
            const char *member)
{
  JsonNode *node = get_member (object, member);

  return node != NULL && JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
}

static JsonArray *
get_array (JsonObject *object,
           const char *member)
{
  JsonNode *node = get_member (object, member);

  return node != NULL && JSON_NODE_HOLDS_ARRAY (node) ? json_node_get_array (node) : NULL;
}

static const char *
node_string (JsonNode *node)
{
  return node != NULL && JSON_NODE_HOLDS_VALUE (node) &&
         json_node_get_value_type (node) == G_TYPE_STRING ? json_node_get_string (node) : NULL;
}

static const char *
get_string (JsonObject *object,
            const char *member)
{
  return node_string (get_member (object, member));
}

static gboolean
node_is_number (JsonNode *node)
{
  return node != NULL && JSON_NODE_HOLDS_VALUE (node) &&
         (json_node_get_value_type (node) == G_TYPE_INT64 ||
          json_node_get_value_type (node) == G_TYPE_DOUBLE);
}

static gboolean
get_int (JsonObject *object,
         const char *member,
         gint64     *value)
{
  JsonNode *node = get_member (object, member);

  if (!node_is_number (node))
    return FALSE;
  if (json_node_get_value_type (node) == G_TYPE_INT64)
    *value = json_node_get_int (node);
  else
    *value = (gint64)json_node_get_double (node);
  return TRUE;
}

static gboolean
get_bool (JsonObject *object,
          const char *member,
          gboolean   *value)
{
  JsonNode *node = get_member (object, member);

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node) ||
      json_node_get_value_type (node) != G_TYPE_BOOLEAN)
    return FALSE;
  *value = json_node_get_boolean (node);
  return TRUE;
}

static gboolean
is_nonempty (const char *text)
{
  return text != NULL && text[0] != '\0';
}

/* Copies @member from @from to @to when it is a number, renamed to @as. */
static void
copy_number (JsonObject *from,
             const char *member,
             JsonObject *to,
             const char *as)
{
  JsonNode *node = get_member (from, member);

  if (node_is_number (node))
    json_object_set_member (to, as, json_node_copy (node));
}

static JsonObject *
parse_object (const char *text,
              gssize      len)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  JsonNode *root;

  if (text == NULL || !json_parser_load_from_data (parser, text, len, NULL))
    return NULL;
  root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    return NULL;
  return json_object_ref (json_node_get_object (root));
}

static JsonNode *
object_node (JsonObject *object)
{
  JsonNode *node = json_node_new (JSON_NODE_OBJECT);

  json_node_take_object (node, object);
  return node;
}

/* Anthropic accepts tool ids made of [a-zA-Z0-9_-] only. */
static char *
sanitize_tool_id (const char *id)
{
  char *clean;

  if (!is_nonempty (id))
    return g_strdup ("toolu_");

  clean = g_strdup (id);
  for (char *p = clean; *p; p++)
    if (!g_ascii_isalnum (*p) && *p != '_' && *p != '-')
      *p = '_';
  return clean;
}

static JsonObject *
text_block (const char *text)
{
  JsonObject *block = json_object_new ();

  json_object_set_string_member (block, "type", "text");
  json_object_set_string_member (block, "text", text);
  return block;
}

/* OpenAI -> Anthropic requests */

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
          g_set_error_literal (error, KP_ANTHROPIC_ERROR, KP_ANTHROPIC_ERROR_INVALID,
                               "A data: URL must be base64-encoded to be sent to an "
                               "Anthropic model.");
          return NULL;
        }
      media_type = g_strndup (header, strcspn (header, ";,"));
      if (media_type[0] == '\0')
        {
          g_set_error_literal (error, KP_ANTHROPIC_ERROR, KP_ANTHROPIC_ERROR_INVALID,
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

  g_set_error_literal (error, KP_ANTHROPIC_ERROR, KP_ANTHROPIC_ERROR_INVALID,
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
  const char *type = get_string (part, "type");
  JsonObject *block = NULL;

  if (g_strcmp0 (type, "text") == 0 || g_strcmp0 (type, "refusal") == 0)
    {
      const char *text = get_string (part, type);

      if (!is_nonempty (text))
        return TRUE;
      block = text_block (text);
    }
  else if (media_allowed && g_strcmp0 (type, "image_url") == 0)
    {
      JsonNode *image = get_member (part, "image_url");
      const char *url = node_string (image);

      if (url == NULL && image != NULL && JSON_NODE_HOLDS_OBJECT (image))
        url = get_string (json_node_get_object (image), "url");
      block = media_block ("image", url, error);
      if (block == NULL)
        return FALSE;
    }
  else if (media_allowed && g_strcmp0 (type, "file") == 0)
    {
      block = media_block ("document", get_string (get_object (part, "file"), "file_data"), error);
      if (block == NULL)
        return FALSE;
    }
  else
    {
      g_set_error (error, KP_ANTHROPIC_ERROR, KP_ANTHROPIC_ERROR_INVALID,
                   "Content of type “%s” cannot be sent to an Anthropic model here.",
                   type != NULL ? type : "(none)");
      return FALSE;
    }

  /* OpenRouter lets OpenAI clients mark cache breakpoints on parts. */
  if (get_object (part, "cache_control") != NULL)
    json_object_set_member (block, "cache_control",
                            json_node_copy (get_member (part, "cache_control")));
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

  if (node_string (content) != NULL)
    {
      if (is_nonempty (node_string (content)))
        json_array_add_object_element (blocks, text_block (node_string (content)));
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

  g_set_error_literal (error, KP_ANTHROPIC_ERROR, KP_ANTHROPIC_ERROR_INVALID,
                       "A message's content must be a string or an array of parts.");
  return FALSE;
}

static gboolean
is_tool_result (JsonNode *block)
{
  return g_strcmp0 (get_string (json_node_get_object (block), "type"), "tool_result") == 0;
}

/* Adds a turn to @messages, merging it into the last one when the role is
 * the same, so that roles alternate. Tool results go first in a user turn,
 * as Anthropic requires. Takes @blocks.
 */
static void
add_turn (JsonArray  *messages,
          const char *role,
          JsonArray  *blocks)
{
  guint n = json_array_get_length (messages);
  JsonObject *last = n > 0 ? json_array_get_object_element (messages, n - 1) : NULL;
  JsonObject *message;

  if (json_array_get_length (blocks) == 0)
    {
      json_array_unref (blocks);
      return;
    }

  if (last != NULL && g_strcmp0 (get_string (last, "role"), role) == 0)
    {
      JsonArray *parts[2] = { get_array (last, "content"), blocks };
      JsonArray *merged = json_array_new ();

      for (int results = 1; results >= 0; results--)
        for (guint p = 0; p < G_N_ELEMENTS (parts); p++)
          for (guint i = 0; i < json_array_get_length (parts[p]); i++)
            {
              JsonNode *block = json_array_get_element (parts[p], i);

              if (is_tool_result (block) == (gboolean)results)
                json_array_add_element (merged, json_node_copy (block));
            }

      json_array_unref (blocks);
      json_object_set_array_member (last, "content", merged);
      return;
    }

  message = json_object_new ();
  json_object_set_string_member (message, "role", role);
  json_object_set_array_member (message, "content", blocks);
  json_array_add_object_element (messages, message);
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
      JsonObject *function = get_object (call, "function");
      const char *name = get_string (function, "name");
      const char *arguments = get_string (function, "arguments");
      g_autofree char *id = sanitize_tool_id (get_string (call, "id"));
      JsonObject *input = NULL;
      JsonObject *block;

      if (name == NULL)
        {
          g_set_error_literal (error, KP_ANTHROPIC_ERROR, KP_ANTHROPIC_ERROR_INVALID,
                               "A tool call in the history has no function name.");
          return FALSE;
        }

      /* Arguments that are not a JSON object cannot be an Anthropic input. */
      if (arguments != NULL)
        input = parse_object (arguments, -1);
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
  g_autofree char *id = sanitize_tool_id (get_string (message, "tool_call_id"));
  JsonNode *content = get_member (message, "content");
  JsonObject *block = json_object_new ();

  json_object_set_string_member (block, "type", "tool_result");
  json_object_set_string_member (block, "tool_use_id", id);

  if (node_string (content) != NULL)
    json_object_set_string_member (block, "content", node_string (content));
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
      const char *role = get_string (message, "role");
      JsonNode *content = get_member (message, "content");
      g_autoptr(JsonArray) blocks = json_array_new ();

      if (role == NULL)
        {
          g_set_error (error, KP_ANTHROPIC_ERROR, KP_ANTHROPIC_ERROR_INVALID,
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
          add_turn (out, "user", g_steal_pointer (&blocks));
        }
      else if (g_str_equal (role, "assistant"))
        {
          /* reasoning_content has no signature, and Anthropic refuses
           * thinking without one: it stays out of the history.
           */
          if (!add_openai_content (blocks, content, FALSE, error) ||
              !add_tool_calls (blocks, get_array (message, "tool_calls"), error))
            return FALSE;
          add_turn (out, "assistant", g_steal_pointer (&blocks));
        }
      else if (g_str_equal (role, "tool"))
        {
          JsonObject *block = tool_result_block (message, error);

          if (block == NULL)
            return FALSE;
          json_array_add_object_element (blocks, block);
          add_turn (out, "user", g_steal_pointer (&blocks));
        }
      else
        {
          g_set_error (error, KP_ANTHROPIC_ERROR, KP_ANTHROPIC_ERROR_INVALID,
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
      const char *type = get_string (tool, "type");
      JsonObject *function = get_object (tool, "function");
      JsonObject *parameters = get_object (function, "parameters");
      const char *name = get_string (function, "name");
      JsonObject *anthropic_tool;

      if ((type != NULL && !g_str_equal (type, "function")) || name == NULL)
        {
          g_set_error (error, KP_ANTHROPIC_ERROR, KP_ANTHROPIC_ERROR_INVALID,
                       "tools[%u] is not a function with a name; only functions can be "
                       "offered to an Anthropic model.", i);
          json_array_unref (converted);
          return FALSE;
        }

      anthropic_tool = json_object_new ();
      json_object_set_string_member (anthropic_tool, "name", name);
      if (get_string (function, "description") != NULL)
        json_object_set_string_member (anthropic_tool, "description",
                                       get_string (function, "description"));
      if (parameters != NULL && json_object_get_size (parameters) > 0)
        json_object_set_member (anthropic_tool, "input_schema",
                                json_node_copy (get_member (function, "parameters")));
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
  JsonNode *choice = get_member (request, "tool_choice");
  const char *name = node_string (choice);
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
      tool = get_string (get_object (json_node_get_object (choice), "function"), "name");
      if (tool != NULL)
        type = "tool";
    }
  get_bool (request, "parallel_tool_calls", &parallel);

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
  JsonObject *format = get_object (request, "response_format");
  const char *type = get_string (format, "type");
  JsonNode *schema = get_member (get_object (format, "json_schema"), "schema");

  if (g_strcmp0 (type, "json_object") == 0)
    json_array_add_object_element (system,
      text_block ("Answer with a single JSON object and nothing else."));
  else if (g_strcmp0 (type, "json_schema") == 0 && schema != NULL)
    {
      g_autofree char *text = json_to_string (schema, FALSE);
      g_autofree char *instruction =
        g_strdup_printf ("Answer with a single JSON value that conforms to this JSON "
                         "Schema, and nothing else: %s", text);

      json_array_add_object_element (system, text_block (instruction));
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
  gint64 n = 1;
  gint64 budget;
  gboolean stream;
  const char *user;

  g_return_val_if_fail (openai_request != NULL, NULL);

  messages = get_array (openai_request, "messages");
  if (messages == NULL)
    {
      g_set_error_literal (error, KP_ANTHROPIC_ERROR, KP_ANTHROPIC_ERROR_INVALID,
                           "The request needs a messages array.");
      return NULL;
    }
  if (get_int (openai_request, "n", &n) && n > 1)
    {
      g_set_error_literal (error, KP_ANTHROPIC_ERROR, KP_ANTHROPIC_ERROR_INVALID,
                           "Anthropic models give one answer per request: n must be 1.");
      return NULL;
    }

  out = json_object_new ();
  system = json_array_new ();
  out_messages = json_array_new ();
  json_object_set_array_member (out, "messages", out_messages);

  if (get_string (openai_request, "model") != NULL)
    json_object_set_string_member (out, "model", get_string (openai_request, "model"));

  if (!convert_openai_messages (messages, system, out_messages, error))
    return NULL;

  add_response_format (openai_request, system);
  if (json_array_get_length (system) == 1 &&
      get_member (json_array_get_object_element (system, 0), "cache_control") == NULL)
    json_object_set_string_member (out, "system",
                                   get_string (json_array_get_object_element (system, 0), "text"));
  else if (json_array_get_length (system) > 0)
    json_object_set_array_member (out, "system", g_steal_pointer (&system));

  tools = get_array (openai_request, "tools");
  if (tools != NULL && json_array_get_length (tools) > 0)
    {
      if (!convert_openai_tools (tools, out, error))
        return NULL;
      tool_choice = convert_openai_tool_choice (openai_request);
      if (tool_choice != NULL)
        json_object_set_object_member (out, "tool_choice", tool_choice);
    }

  stop = get_member (openai_request, "stop");
  if (node_string (stop) != NULL)
    {
      JsonArray *sequences = json_array_new ();

      json_array_add_string_element (sequences, node_string (stop));
      json_object_set_array_member (out, "stop_sequences", sequences);
    }
  else if (stop != NULL && JSON_NODE_HOLDS_ARRAY (stop) &&
           json_array_get_length (json_node_get_array (stop)) > 0)
    json_object_set_member (out, "stop_sequences", json_node_copy (stop));

  if (!get_int (openai_request, "max_completion_tokens", &max_tokens))
    get_int (openai_request, "max_tokens", &max_tokens);

  budget = budget_for_effort (get_string (openai_request, "reasoning_effort"));
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
  if (budget == 0 && node_is_number (get_member (openai_request, "temperature")))
    json_object_set_double_member (out, "temperature",
      MIN (json_node_get_double (get_member (openai_request, "temperature")), 1.0));
  if (budget == 0)
    copy_number (openai_request, "top_p", out, "top_p");

  user = get_string (openai_request, "user");
  if (user != NULL)
    {
      JsonObject *metadata = json_object_new ();

      json_object_set_string_member (metadata, "user_id", user);
      json_object_set_object_member (out, "metadata", metadata);
    }

  if (get_bool (openai_request, "stream", &stream))
    json_object_set_boolean_member (out, "stream", stream);

  return object_node (g_steal_pointer (&out));
}

/* Anthropic -> OpenAI requests */

/* The text of a string or of the text blocks in an array, joined by '\n'. */
static char *
join_text (JsonNode *content)
{
  GString *text;
  JsonArray *blocks;
  gboolean first = TRUE;

  if (node_string (content) != NULL)
    return g_strdup (node_string (content));

  text = g_string_new (NULL);
  if (content == NULL || !JSON_NODE_HOLDS_ARRAY (content))
    return g_string_free (text, FALSE);

  blocks = json_node_get_array (content);
  for (guint i = 0; i < json_array_get_length (blocks); i++)
    {
      JsonNode *node = json_array_get_element (blocks, i);
      JsonObject *block = JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
      const char *piece = get_string (block, "text");

      if (g_strcmp0 (get_string (block, "type"), "text") != 0 || piece == NULL)
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
  JsonObject *source = get_object (block, "source");
  const char *type = get_string (source, "type");
  g_autofree char *url = NULL;
  JsonObject *image_url;
  JsonObject *part;

  if (g_strcmp0 (type, "base64") == 0)
    url = g_strdup_printf ("data:%s;base64,%s",
                           get_string (source, "media_type") ?: "application/octet-stream",
                           get_string (source, "data") ?: "");
  else if (g_strcmp0 (type, "url") == 0 && get_string (source, "url") != NULL)
    url = g_strdup (get_string (source, "url"));
  else
    return NULL;

  part = json_object_new ();
  if (g_str_equal (get_string (block, "type"), "document"))
    {
      JsonObject *file = json_object_new ();

      json_object_set_string_member (part, "type", "file");
      json_object_set_string_member (file, "file_data", url);
      if (get_string (block, "title") != NULL)
        json_object_set_string_member (file, "filename", get_string (block, "title"));
      json_object_set_object_member (part, "file", file);
      return part;
    }

  image_url = json_object_new ();
  json_object_set_string_member (image_url, "url", url);
  json_object_set_string_member (part, "type", "image_url");
  json_object_set_object_member (part, "image_url", image_url);
  return part;
}

static JsonObject *
openai_message (const char *role)
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
      message = openai_message ("user");
      json_object_set_string_member (message, "content", node_string (content) ?: "");
      json_array_add_object_element (out, message);
      return;
    }

  blocks = json_node_get_array (content);
  for (guint i = 0; i < json_array_get_length (blocks); i++)
    {
      JsonNode *node = json_array_get_element (blocks, i);
      JsonObject *block = JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
      const char *type = get_string (block, "type");
      JsonObject *part = NULL;

      if (g_strcmp0 (type, "tool_result") == 0)
        {
          g_autofree char *text = join_text (get_member (block, "content"));
          gboolean is_error = FALSE;

          message = openai_message ("tool");
          json_object_set_string_member (message, "tool_call_id",
                                         get_string (block, "tool_use_id") ?: "");
          get_bool (block, "is_error", &is_error);
          if (is_error)
            {
              g_autofree char *marked = g_strconcat ("Error: ", text, NULL);

              json_object_set_string_member (message, "content", marked);
            }
          else
            json_object_set_string_member (message, "content", text);
          json_array_add_object_element (out, message);
        }
      else if (g_strcmp0 (type, "text") == 0 && get_string (block, "text") != NULL)
        part = text_block (get_string (block, "text"));
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

  message = openai_message ("user");
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
  JsonNode *input = get_member (block, "input");
  g_autofree char *arguments = input != NULL ? json_to_string (input, FALSE) : g_strdup ("{}");

  json_object_set_string_member (call, "id", get_string (block, "id") ?: "");
  json_object_set_string_member (call, "type", "function");
  json_object_set_string_member (function, "name", get_string (block, "name") ?: "");
  json_object_set_string_member (function, "arguments", arguments);
  json_object_set_object_member (call, "function", function);
  return call;
}

/* An Anthropic assistant turn's blocks, OpenAI's way: the text joined, the
 * thinking joined (when @thinking is given), and the tool calls.
 */
static void
collect_blocks (JsonArray  *blocks,
                GString   **text,
                GString   **thinking,
                JsonArray  *tool_calls)
{
  for (guint i = 0; i < json_array_get_length (blocks); i++)
    {
      JsonNode *node = json_array_get_element (blocks, i);
      JsonObject *block = JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
      const char *type = get_string (block, "type");

      if (g_strcmp0 (type, "text") == 0 && get_string (block, "text") != NULL)
        {
          if (*text == NULL)
            *text = g_string_new (NULL);
          g_string_append (*text, get_string (block, "text"));
        }
      else if (thinking != NULL && g_strcmp0 (type, "thinking") == 0 &&
               get_string (block, "thinking") != NULL)
        {
          if (*thinking == NULL)
            *thinking = g_string_new (NULL);
          g_string_append (*thinking, get_string (block, "thinking"));
        }
      else if (g_strcmp0 (type, "tool_use") == 0)
        json_array_add_object_element (tool_calls, tool_call_for_block (block));
    }
}

static void
add_assistant_turn (JsonArray *out,
                    JsonNode  *content)
{
  JsonObject *message = openai_message ("assistant");
  g_autoptr(GString) text = NULL;
  JsonArray *tool_calls = json_array_new ();
  JsonArray *blocks;

  if (content == NULL || !JSON_NODE_HOLDS_ARRAY (content))
    {
      json_object_set_string_member (message, "content", node_string (content) ?: "");
      json_array_add_object_element (out, message);
      json_array_unref (tool_calls);
      return;
    }

  /* Thinking in the history only means something to Anthropic. */
  blocks = json_node_get_array (content);
  collect_blocks (blocks, &text, NULL, tool_calls);

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
      const char *type = get_string (tool, "type");
      JsonObject *function;
      JsonObject *wrapper;

      /* Server tools (web search, code execution...) run at Anthropic. */
      if ((type != NULL && !g_str_equal (type, "custom")) || get_string (tool, "name") == NULL)
        continue;

      function = json_object_new ();
      json_object_set_string_member (function, "name", get_string (tool, "name"));
      if (get_string (tool, "description") != NULL)
        json_object_set_string_member (function, "description", get_string (tool, "description"));
      if (get_object (tool, "input_schema") != NULL)
        json_object_set_member (function, "parameters",
                                json_node_copy (get_member (tool, "input_schema")));
      wrapper = json_object_new ();
      json_object_set_string_member (wrapper, "type", "function");
      json_object_set_object_member (wrapper, "function", function);
      json_array_add_object_element (converted, wrapper);
    }

  if (json_array_get_length (converted) > 0)
    json_object_set_array_member (out, "tools", converted);
  else
    json_array_unref (converted);
}

static void
convert_anthropic_tool_choice (JsonObject *choice,
                               JsonObject *out)
{
  const char *type = get_string (choice, "type");
  gboolean disable_parallel = FALSE;

  if (g_strcmp0 (type, "auto") == 0)
    json_object_set_string_member (out, "tool_choice", "auto");
  else if (g_strcmp0 (type, "any") == 0)
    json_object_set_string_member (out, "tool_choice", "required");
  else if (g_strcmp0 (type, "none") == 0)
    json_object_set_string_member (out, "tool_choice", "none");
  else if (g_strcmp0 (type, "tool") == 0 && get_string (choice, "name") != NULL)
    {
      JsonObject *named = json_object_new ();
      JsonObject *function = json_object_new ();

      json_object_set_string_member (function, "name", get_string (choice, "name"));
      json_object_set_string_member (named, "type", "function");
      json_object_set_object_member (named, "function", function);
      json_object_set_object_member (out, "tool_choice", named);
    }

  if (get_bool (choice, "disable_parallel_tool_use", &disable_parallel) && disable_parallel)
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

  messages = get_array (anthropic_request, "messages");
  if (messages == NULL)
    {
      g_set_error_literal (error, KP_ANTHROPIC_ERROR, KP_ANTHROPIC_ERROR_INVALID,
                           "The request needs a messages array.");
      return NULL;
    }

  out = json_object_new ();
  out_messages = json_array_new ();
  if (get_string (anthropic_request, "model") != NULL)
    json_object_set_string_member (out, "model", get_string (anthropic_request, "model"));

  system = get_member (anthropic_request, "system");
  if (system != NULL && !JSON_NODE_HOLDS_NULL (system))
    {
      g_autofree char *text = join_text (system);

      if (text[0] != '\0')
        {
          JsonObject *message = openai_message ("system");

          json_object_set_string_member (message, "content", text);
          json_array_add_object_element (out_messages, message);
        }
    }

  for (guint i = 0; i < json_array_get_length (messages); i++)
    {
      JsonNode *node = json_array_get_element (messages, i);
      JsonObject *message = JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
      const char *role = get_string (message, "role");

      if (g_strcmp0 (role, "user") == 0)
        add_user_turn (out_messages, get_member (message, "content"));
      else if (g_strcmp0 (role, "assistant") == 0)
        add_assistant_turn (out_messages, get_member (message, "content"));
      else if (g_strcmp0 (role, "system") == 0)
        {
          /* Claude Code puts system turns among the messages (a beta of
           * 2026); OpenAI takes a system message anywhere.
           */
          g_autofree char *text = join_text (get_member (message, "content"));

          if (text[0] != '\0')
            {
              JsonObject *turn = openai_message ("system");

              json_object_set_string_member (turn, "content", text);
              json_array_add_object_element (out_messages, turn);
            }
        }
      else
        {
          g_set_error (error, KP_ANTHROPIC_ERROR, KP_ANTHROPIC_ERROR_INVALID,
                       "messages[%u] must have the role “user”, “assistant” or “system”.", i);
          json_array_unref (out_messages);
          return NULL;
        }
    }
  json_object_set_array_member (out, "messages", out_messages);

  if (get_array (anthropic_request, "tools") != NULL)
    convert_anthropic_tools (get_array (anthropic_request, "tools"), out);
  if (json_object_has_member (out, "tools") &&
      get_object (anthropic_request, "tool_choice") != NULL)
    convert_anthropic_tool_choice (get_object (anthropic_request, "tool_choice"), out);

  stop = get_member (anthropic_request, "stop_sequences");
  if (stop != NULL && JSON_NODE_HOLDS_ARRAY (stop) &&
      json_array_get_length (json_node_get_array (stop)) > 0)
    json_object_set_member (out, "stop", json_node_copy (stop));

  copy_number (anthropic_request, "max_tokens", out, "max_tokens");
  copy_number (anthropic_request, "temperature", out, "temperature");
  copy_number (anthropic_request, "top_p", out, "top_p");

  /* Thinking with a budget, or adaptive thinking at the effort output_config
   * names (newer Claude clients send that), is an OpenAI reasoning effort.
   */
  thinking = get_object (anthropic_request, "thinking");
  effort = get_string (get_object (anthropic_request, "output_config"), "effort");
  if (g_strcmp0 (get_string (thinking, "type"), "enabled") == 0 &&
      get_int (thinking, "budget_tokens", &budget))
    json_object_set_string_member (out, "reasoning_effort", effort_for_budget (budget));
  else if (g_strcmp0 (get_string (thinking, "type"), "disabled") != 0 &&
           (g_strcmp0 (effort, "low") == 0 || g_strcmp0 (effort, "medium") == 0 ||
            g_strcmp0 (effort, "high") == 0))
    json_object_set_string_member (out, "reasoning_effort", effort);
  else if (g_strcmp0 (get_string (thinking, "type"), "disabled") != 0 &&
           (g_strcmp0 (effort, "xhigh") == 0 || g_strcmp0 (effort, "max") == 0))
    json_object_set_string_member (out, "reasoning_effort", "high");
  else if (g_strcmp0 (get_string (thinking, "type"), "adaptive") == 0)
    json_object_set_string_member (out, "reasoning_effort", "medium");

  if (get_string (get_object (anthropic_request, "metadata"), "user_id") != NULL)
    json_object_set_string_member (out, "user",
                                   get_string (get_object (anthropic_request, "metadata"),
                                               "user_id"));

  if (get_bool (anthropic_request, "stream", &stream))
    json_object_set_boolean_member (out, "stream", stream);
  if (stream)
    {
      JsonObject *options = json_object_new ();

      json_object_set_boolean_member (options, "include_usage", TRUE);
      json_object_set_object_member (out, "stream_options", options);
    }

  return object_node (g_steal_pointer (&out));
}

/* Whole responses */

static const char *
finish_reason_for_stop (const char *stop_reason)
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

static const char *
stop_reason_for_finish (const char *finish_reason)
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

static JsonObject *
openai_usage (const KpUsage *usage)
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

static gint64
uncached_input (const KpUsage *usage)
{
  return MAX (usage->prompt_tokens - usage->cached_tokens - usage->cache_write_tokens, 0);
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

  content = get_array (anthropic_message, "content");
  if (content == NULL)
    {
      g_set_error_literal (error, KP_ANTHROPIC_ERROR, KP_ANTHROPIC_ERROR_INVALID,
                           "The Anthropic answer has no content array.");
      return NULL;
    }

  message = openai_message ("assistant");
  tool_calls = json_array_new ();
  collect_blocks (content, &text, &thinking, tool_calls);

  if (text != NULL)
    json_object_set_string_member (message, "content", text->str);
  else
    json_object_set_null_member (message, "content");
  if (thinking != NULL)
    json_object_set_string_member (message, "reasoning_content", thinking->str);
  if (json_array_get_length (tool_calls) > 0)
    json_object_set_array_member (message, "tool_calls", tool_calls);
  else
    json_array_unref (tool_calls);

  choice = json_object_new ();
  json_object_set_int_member (choice, "index", 0);
  json_object_set_object_member (choice, "message", message);
  json_object_set_string_member (choice, "finish_reason",
    finish_reason_for_stop (get_string (anthropic_message, "stop_reason")));
  choices = json_array_new ();
  json_array_add_object_element (choices, choice);

  id = g_strconcat ("chatcmpl-", get_string (anthropic_message, "id") ?: "keypool", NULL);
  out = json_object_new ();
  json_object_set_string_member (out, "id", id);
  json_object_set_string_member (out, "object", "chat.completion");
  json_object_set_int_member (out, "created", g_get_real_time () / G_USEC_PER_SEC);
  json_object_set_string_member (out, "model", model != NULL ? model
                                 : get_string (anthropic_message, "model") ?: "");
  json_object_set_array_member (out, "choices", choices);
  if (kp_usage_parse_anthropic (&usage, get_object (anthropic_message, "usage")))
    json_object_set_object_member (out, "usage", openai_usage (&usage));

  return object_node (out);
}

static JsonObject *
anthropic_usage (const KpUsage *usage)
{
  JsonObject *object = json_object_new ();

  json_object_set_int_member (object, "input_tokens", uncached_input (usage));
  json_object_set_int_member (object, "output_tokens", usage->completion_tokens);
  json_object_set_int_member (object, "cache_creation_input_tokens", usage->cache_write_tokens);
  json_object_set_int_member (object, "cache_read_input_tokens", usage->cached_tokens);
  return object;
}

static char *
message_id_for (const char *openai_id)
{
  if (!is_nonempty (openai_id))
    return g_strdup ("msg_keypool");
  if (g_str_has_prefix (openai_id, "msg_"))
    return g_strdup (openai_id);
  return g_strconcat ("msg_", openai_id, NULL);
}

/* reasoning_content (DeepSeek, Qwen, vLLM) or reasoning (OpenRouter). */
static const char *
reasoning_of (JsonObject *message)
{
  const char *reasoning = get_string (message, "reasoning_content");

  return is_nonempty (reasoning) ? reasoning : get_string (message, "reasoning");
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

  choices = get_array (openai_completion, "choices");
  choice_node = choices != NULL && json_array_get_length (choices) > 0
                ? json_array_get_element (choices, 0) : NULL;
  choice = choice_node != NULL && JSON_NODE_HOLDS_OBJECT (choice_node)
           ? json_node_get_object (choice_node) : NULL;
  message = get_object (choice, "message");
  if (message == NULL)
    {
      g_set_error_literal (error, KP_ANTHROPIC_ERROR, KP_ANTHROPIC_ERROR_INVALID,
                           "The OpenAI answer has no message in choices[0].");
      return NULL;
    }

  content = json_array_new ();
  reasoning = reasoning_of (message);
  if (is_nonempty (reasoning))
    {
      JsonObject *block = json_object_new ();

      json_object_set_string_member (block, "type", "thinking");
      json_object_set_string_member (block, "thinking", reasoning);
      json_object_set_string_member (block, "signature", "");
      json_array_add_object_element (content, block);
    }

  text = get_string (message, "content");
  if (!is_nonempty (text))
    text = get_string (message, "refusal");
  if (is_nonempty (text))
    json_array_add_object_element (content, text_block (text));

  tool_calls = get_array (message, "tool_calls");
  for (guint i = 0; tool_calls != NULL && i < json_array_get_length (tool_calls); i++)
    {
      JsonNode *call_node = json_array_get_element (tool_calls, i);
      JsonObject *call = JSON_NODE_HOLDS_OBJECT (call_node) ? json_node_get_object (call_node)
                                                            : NULL;
      JsonObject *function = get_object (call, "function");
      const char *arguments = get_string (function, "arguments");
      g_autofree char *tool_id = sanitize_tool_id (get_string (call, "id"));
      JsonObject *input = arguments != NULL ? parse_object (arguments, -1) : NULL;
      JsonObject *block = json_object_new ();

      json_object_set_string_member (block, "type", "tool_use");
      json_object_set_string_member (block, "id", tool_id);
      json_object_set_string_member (block, "name", get_string (function, "name") ?: "");
      json_object_set_object_member (block, "input", input != NULL ? input : json_object_new ());
      json_array_add_object_element (content, block);
    }

  id = message_id_for (get_string (openai_completion, "id"));
  out = json_object_new ();
  json_object_set_string_member (out, "id", id);
  json_object_set_string_member (out, "type", "message");
  json_object_set_string_member (out, "role", "assistant");
  json_object_set_string_member (out, "model", model != NULL ? model
                                 : get_string (openai_completion, "model") ?: "");
  json_object_set_array_member (out, "content", content);
  json_object_set_string_member (out, "stop_reason",
                                 stop_reason_for_finish (get_string (choice, "finish_reason")));
  json_object_set_null_member (out, "stop_sequence");
  kp_usage_parse_openai (&usage, get_object (openai_completion, "usage"));
  json_object_set_object_member (out, "usage", anthropic_usage (&usage));

  return object_node (out);
}

/* Errors */

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
  node = object_node (g_steal_pointer (&body));
  return json_to_string (node, FALSE);
}

char *
kp_anthropic_error_json (guint       status,
                         const char *message)
{
  return error_body ("error", kp_anthropic_error_type (status), message ?: "");
}

/* The message of an error body in either dialect, OpenRouter's included:
 * {"error":{"message":..}}, {"error":"text"} or {"message":..}. A body that
 * is none of these is its own message.
 */
static char *
error_message (const char *body,
               gsize       len,
               gint64     *code)
{
  g_autoptr(JsonObject) root = body != NULL && len > 0 ? parse_object (body, len) : NULL;
  JsonNode *error = get_member (root, "error");
  const char *message = NULL;

  if (error != NULL && JSON_NODE_HOLDS_OBJECT (error))
    {
      message = get_string (json_node_get_object (error), "message");
      if (code != NULL)
        get_int (json_node_get_object (error), "code", code);
    }
  else if (node_string (error) != NULL)
    message = node_string (error);
  else
    message = get_string (root, "message");

  if (message != NULL)
    return g_strdup (message);
  if (root == NULL && body != NULL && len > 0 && g_utf8_validate (body, len, NULL))
    return g_strstrip (g_strndup (body, len));
  return NULL;
}

char *
kp_anthropic_error_from_openai (guint       status,
                                const char *body,
                                gsize       len)
{
  gint64 code = 0;
  g_autofree char *message = error_message (body, len, &code);

  /* OpenRouter repeats the status as a number in error.code. */
  if (status < 400 && code >= 400 && code < 600)
    status = (guint)code;
  if (!is_nonempty (message))
    {
      g_free (message);
      message = g_strdup_printf ("The provider answered with HTTP status %u.", status);
    }
  return kp_anthropic_error_json (status, message);
}

/**
 * kp_anthropic_error_to_openai:
 * @status: the HTTP status of the upstream answer
 * @body: (nullable): the upstream body
 * @len: its length
 *
 * The Anthropic error type becomes the OpenAI `type`; `code` and `param`
 * are null, as OpenAI has no codes for these.
 *
 * Returns: the OpenAI error body
 */
char *
kp_anthropic_error_to_openai (guint       status,
                              const char *body,
                              gsize       len)
{
  g_autoptr(JsonObject) root = body != NULL && len > 0 ? parse_object (body, len) : NULL;
  const char *type = get_string (get_object (root, "error"), "type");
  g_autofree char *message = error_message (body, len, NULL);

  if (!is_nonempty (message))
    {
      g_free (message);
      message = g_strdup_printf ("The provider answered with HTTP status %u.", status);
    }
  return error_body (NULL, type != NULL ? type : kp_anthropic_error_type (status), message);
}

/* Streams */

typedef enum
{
  BLOCK_NONE,
  BLOCK_TEXT,
  BLOCK_THINKING,
  BLOCK_TOOL,
} BlockKind;

/* An OpenAI tool call streamed as an Anthropic tool_use block. */
typedef struct
{
  gint64  openai_index;
  guint   block_index;
  char   *id;            /* as the provider sent it, or NULL */
} ToolBlock;

static void
tool_block_clear (gpointer data)
{
  g_free (((ToolBlock *)data)->id);
}

struct _KpStreamTranslator
{
  KpStreamDirection direction;
  char             *model;
  gboolean          include_usage;
  JsonParser       *parser;
  KpUsage           usage;
  gint64            created;

  /* What every client event starts with, once the id is known. */
  GString          *prefix;
  gboolean          started;
  gboolean          has_content;
  gboolean          ended;
  const char       *stop_reason;   /* in the client's dialect */
  gboolean          finish_sent;

  /* Anthropic -> OpenAI: block index -> tool-call ordinal (or -1). */
  GArray           *tool_ordinals;
  guint             n_tools;

  /* OpenAI -> Anthropic: the open block, and the tool blocks so far. */
  char             *message_id;
  BlockKind         block_kind;
  guint             block_index;
  guint             n_blocks;
  GArray           *tool_blocks;
};

/* Writes @text as a JSON string, quotes included. The text comes from a
 * parsed document, so it is valid UTF-8 and only needs escaping.
 */
static void
append_json_string (GString    *out,
                    const char *text)
{
  const char *run = text;
  const char *p;

  g_string_append_c (out, '"');
  for (p = text; *p; p++)
    {
      guchar c = (guchar)*p;

      if (c >= 0x20 && c != '"' && c != '\\')
        continue;
      g_string_append_len (out, run, p - run);
      switch (c)
        {
        case '"':
          g_string_append (out, "\\\"");
          break;
        case '\\':
          g_string_append (out, "\\\\");
          break;
        case '\n':
          g_string_append (out, "\\n");
          break;
        case '\r':
          g_string_append (out, "\\r");
          break;
        case '\t':
          g_string_append (out, "\\t");
          break;
        default:
          g_string_append_printf (out, "\\u%04x", c);
          break;
        }
      run = p + 1;
    }
  g_string_append_len (out, run, p - run);
  g_string_append_c (out, '"');
}

KpStreamTranslator *
kp_stream_translator_new (KpStreamDirection  direction,
                          const char        *model,
                          gboolean           include_usage)
{
  KpStreamTranslator *self = g_new0 (KpStreamTranslator, 1);

  self->direction = direction;
  self->model = g_strdup (model != NULL ? model : "");
  self->include_usage = include_usage;
  self->parser = json_parser_new_immutable ();
  self->created = g_get_real_time () / G_USEC_PER_SEC;
  self->prefix = g_string_new (NULL);
  self->tool_ordinals = g_array_new (FALSE, FALSE, sizeof (gint));
  self->tool_blocks = g_array_new (FALSE, FALSE, sizeof (ToolBlock));
  g_array_set_clear_func (self->tool_blocks, tool_block_clear);
  return self;
}

void
kp_stream_translator_free (KpStreamTranslator *self)
{
  if (self == NULL)
    return;
  g_free (self->model);
  g_object_unref (self->parser);
  g_string_free (self->prefix, TRUE);
  g_array_unref (self->tool_ordinals);
  g_array_unref (self->tool_blocks);
  g_free (self->message_id);
  g_free (self);
}

/* Anthropic provider, OpenAI client */

static void
chunk_begin (KpStreamTranslator *self,
             GString            *out)
{
  g_string_append (out, "data: ");
  g_string_append_len (out, self->prefix->str, self->prefix->len);
  g_string_append (out, "{\"index\":0,\"delta\":");
}

static void
chunk_end (KpStreamTranslator *self,
           GString            *out,
           const char         *finish_reason)
{
  g_string_append (out, ",\"finish_reason\":");
  if (finish_reason != NULL)
    append_json_string (out, finish_reason);
  else
    g_string_append (out, "null");
  g_string_append (out, self->include_usage ? "}],\"usage\":null}\n\n" : "}]}\n\n");
}

static void
openai_set_prefix (KpStreamTranslator *self,
                   const char         *message_id)
{
  g_autofree char *id = g_strconcat ("chatcmpl-", is_nonempty (message_id) ? message_id
                                                                           : "keypool", NULL);

  g_string_assign (self->prefix, "{\"id\":");
  append_json_string (self->prefix, id);
  g_string_append_printf (self->prefix,
                          ",\"object\":\"chat.completion.chunk\",\"created\":%" G_GINT64_FORMAT
                          ",\"model\":", self->created);
  append_json_string (self->prefix, self->model);
  g_string_append (self->prefix, ",\"choices\":[");
}

/* The role chunk opens every OpenAI stream. */
static void
openai_start (KpStreamTranslator *self,
              const char         *message_id,
              GString            *out)
{
  if (self->started)
    return;
  openai_set_prefix (self, message_id);
  chunk_begin (self, out);
  g_string_append (out, "{\"role\":\"assistant\",\"content\":\"\"}");
  chunk_end (self, out, NULL);
  self->started = TRUE;
}

static void
openai_text_delta (KpStreamTranslator *self,
                   const char         *field,
                   const char         *text,
                   GString            *out)
{
  if (!is_nonempty (text))
    return;
  openai_start (self, NULL, out);
  chunk_begin (self, out);
  g_string_append_printf (out, "{\"%s\":", field);
  append_json_string (out, text);
  g_string_append_c (out, '}');
  chunk_end (self, out, NULL);
  self->has_content = TRUE;
}

static void
openai_tool_start (KpStreamTranslator *self,
                   JsonObject         *block,
                   gint64              index,
                   GString            *out)
{
  gint ordinal = (gint)self->n_tools++;
  JsonObject *input = get_object (block, "input");

  if (index >= 0 && index < G_MAXUINT16)
    {
      gint none = -1;

      while (self->tool_ordinals->len <= (guint)index)
        g_array_append_val (self->tool_ordinals, none);
      g_array_index (self->tool_ordinals, gint, index) = ordinal;
    }

  openai_start (self, NULL, out);
  chunk_begin (self, out);
  g_string_append_printf (out, "{\"tool_calls\":[{\"index\":%d,\"id\":", ordinal);
  append_json_string (out, get_string (block, "id") ?: "");
  g_string_append (out, ",\"type\":\"function\",\"function\":{\"name\":");
  append_json_string (out, get_string (block, "name") ?: "");
  g_string_append (out, ",\"arguments\":");
  /* Anthropic starts with an empty input and streams it; a provider that
   * gives the whole input at once is passed on as it is.
   */
  if (input != NULL && json_object_get_size (input) > 0)
    {
      g_autofree char *arguments = json_to_string (get_member (block, "input"), FALSE);

      append_json_string (out, arguments);
    }
  else
    g_string_append (out, "\"\"");
  g_string_append (out, "}}]}");
  chunk_end (self, out, NULL);
  self->has_content = TRUE;
}

static void
openai_tool_arguments (KpStreamTranslator *self,
                       gint64              index,
                       const char         *partial_json,
                       GString            *out)
{
  gint ordinal = -1;

  if (!is_nonempty (partial_json))
    return;
  if (index >= 0 && (guint64)index < self->tool_ordinals->len)
    ordinal = g_array_index (self->tool_ordinals, gint, index);
  /* A delta for a block that did not start as a tool: the latest tool. */
  if (ordinal < 0)
    ordinal = self->n_tools > 0 ? (gint)self->n_tools - 1 : 0;

  openai_start (self, NULL, out);
  chunk_begin (self, out);
  g_string_append_printf (out, "{\"tool_calls\":[{\"index\":%d,\"function\":{\"arguments\":",
                          ordinal);
  append_json_string (out, partial_json);
  g_string_append (out, "}}]}");
  chunk_end (self, out, NULL);
  self->has_content = TRUE;
}

static void
openai_finish (KpStreamTranslator *self,
               GString            *out)
{
  if (self->finish_sent)
    return;
  openai_start (self, NULL, out);
  chunk_begin (self, out);
  g_string_append (out, "{}");
  chunk_end (self, out, self->stop_reason ?: "stop");
  self->finish_sent = TRUE;
}

/* The usage chunk (when the client asked for it) and [DONE]. */
static void
openai_end (KpStreamTranslator *self,
            GString            *out)
{
  openai_finish (self, out);
  if (self->include_usage)
    {
      g_string_append (out, "data: ");
      g_string_append_len (out, self->prefix->str, self->prefix->len);
      g_string_append_printf (out,
                              "],\"usage\":{\"prompt_tokens\":%" G_GINT64_FORMAT
                              ",\"completion_tokens\":%" G_GINT64_FORMAT
                              ",\"total_tokens\":%" G_GINT64_FORMAT
                              ",\"prompt_tokens_details\":{\"cached_tokens\":%" G_GINT64_FORMAT
                              ",\"cache_write_tokens\":%" G_GINT64_FORMAT "}}}\n\n",
                              self->usage.prompt_tokens, self->usage.completion_tokens,
                              self->usage.prompt_tokens + self->usage.completion_tokens,
                              self->usage.cached_tokens, self->usage.cache_write_tokens);
    }
  g_string_append (out, "data: [DONE]\n\n");
  self->ended = TRUE;
}

static KpStreamStatus
feed_anthropic (KpStreamTranslator *self,
                const char         *event_name,
                JsonObject         *data,
                GString            *out)
{
  const char *type = get_string (data, "type") ?: event_name;
  gint64 index = -1;

  if (type == NULL)
    return KP_STREAM_CONTINUE;
  get_int (data, "index", &index);

  if (g_str_equal (type, "message_start"))
    {
      JsonObject *message = get_object (data, "message");

      kp_usage_parse_anthropic (&self->usage, get_object (message, "usage"));
      openai_start (self, get_string (message, "id"), out);
    }
  else if (g_str_equal (type, "content_block_start"))
    {
      JsonObject *block = get_object (data, "content_block");
      const char *block_type = get_string (block, "type");

      if (g_strcmp0 (block_type, "tool_use") == 0)
        openai_tool_start (self, block, index, out);
      else if (g_strcmp0 (block_type, "text") == 0)
        openai_text_delta (self, "content", get_string (block, "text"), out);
      else if (g_strcmp0 (block_type, "thinking") == 0)
        openai_text_delta (self, "reasoning_content", get_string (block, "thinking"), out);
    }
  else if (g_str_equal (type, "content_block_delta"))
    {
      JsonObject *delta = get_object (data, "delta");
      const char *delta_type = get_string (delta, "type");

      if (g_strcmp0 (delta_type, "text_delta") == 0)
        openai_text_delta (self, "content", get_string (delta, "text"), out);
      else if (g_strcmp0 (delta_type, "input_json_delta") == 0)
        openai_tool_arguments (self, index, get_string (delta, "partial_json"), out);
      else if (g_strcmp0 (delta_type, "thinking_delta") == 0)
        openai_text_delta (self, "reasoning_content", get_string (delta, "thinking"), out);
      /* signature_delta, citations_delta: nothing an OpenAI client reads. */
    }
  else if (g_str_equal (type, "message_delta"))
    {
      const char *stop_reason = get_string (get_object (data, "delta"), "stop_reason");

      kp_usage_parse_anthropic (&self->usage, get_object (data, "usage"));
      if (stop_reason != NULL)
        {
          self->stop_reason = finish_reason_for_stop (stop_reason);
          openai_finish (self, out);
        }
    }
  else if (g_str_equal (type, "message_stop"))
    {
      if (self->stop_reason == NULL)
        self->stop_reason = "stop";
      openai_end (self, out);
      return KP_STREAM_END;
    }
  else if (g_str_equal (type, "error"))
    return KP_STREAM_ERROR;

  return KP_STREAM_CONTINUE;
}

/* OpenAI provider, Anthropic client */

static void
event_begin (GString    *out,
             const char *name)
{
  g_string_append (out, "event: ");
  g_string_append (out, name);
  g_string_append (out, "\ndata: ");
}

static void
anthropic_start (KpStreamTranslator *self,
                 GString            *out)
{
  if (self->started)
    return;
  if (self->message_id == NULL)
    self->message_id = g_strdup ("msg_keypool");

  event_begin (out, "message_start");
  g_string_append (out, "{\"type\":\"message_start\",\"message\":{\"id\":");
  append_json_string (out, self->message_id);
  g_string_append (out, ",\"type\":\"message\",\"role\":\"assistant\",\"model\":");
  append_json_string (out, self->model);
  g_string_append_printf (out,
                          ",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,"
                          "\"usage\":{\"input_tokens\":%" G_GINT64_FORMAT
                          ",\"output_tokens\":0"
                          ",\"cache_creation_input_tokens\":%" G_GINT64_FORMAT
                          ",\"cache_read_input_tokens\":%" G_GINT64_FORMAT "}}}\n\n",
                          uncached_input (&self->usage), self->usage.cache_write_tokens,
                          self->usage.cached_tokens);
  self->started = TRUE;
}

static void
anthropic_close_block (KpStreamTranslator *self,
                       GString            *out)
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
anthropic_open_block (KpStreamTranslator *self,
                      BlockKind           kind,
                      GString            *out)
{
  anthropic_start (self, out);
  anthropic_close_block (self, out);
  self->block_kind = kind;
  self->block_index = self->n_blocks++;
  event_begin (out, "content_block_start");
  g_string_append_printf (out, "{\"type\":\"content_block_start\",\"index\":%u,"
                          "\"content_block\":", self->block_index);
}

static void
anthropic_text_delta (KpStreamTranslator *self,
                      BlockKind           kind,
                      const char         *text,
                      GString            *out)
{
  gboolean thinking = kind == BLOCK_THINKING;

  if (!is_nonempty (text))
    return;

  if (self->block_kind != kind)
    {
      anthropic_open_block (self, kind, out);
      g_string_append (out, thinking
                       ? "{\"type\":\"thinking\",\"thinking\":\"\",\"signature\":\"\"}}\n\n"
                       : "{\"type\":\"text\",\"text\":\"\"}}\n\n");
    }

  event_begin (out, "content_block_delta");
  g_string_append_printf (out, "{\"type\":\"content_block_delta\",\"index\":%u,\"delta\":",
                          self->block_index);
  g_string_append (out, thinking ? "{\"type\":\"thinking_delta\",\"thinking\":"
                                 : "{\"type\":\"text_delta\",\"text\":");
  append_json_string (out, text);
  g_string_append (out, "}}\n\n");
  self->has_content = TRUE;
}

static void
anthropic_json_delta (guint       block_index,
                      const char *partial_json,
                      GString    *out)
{
  event_begin (out, "content_block_delta");
  g_string_append_printf (out, "{\"type\":\"content_block_delta\",\"index\":%u,"
                          "\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":",
                          block_index);
  append_json_string (out, partial_json);
  g_string_append (out, "}}\n\n");
}

static ToolBlock *
find_tool_block (KpStreamTranslator *self,
                 gint64              openai_index)
{
  for (guint i = self->tool_blocks->len; i > 0; i--)
    {
      ToolBlock *tool = &g_array_index (self->tool_blocks, ToolBlock, i - 1);

      if (tool->openai_index == openai_index)
        return tool;
    }
  return NULL;
}

static void
anthropic_tool_calls (KpStreamTranslator *self,
                      JsonArray          *calls,
                      GString            *out)
{
  for (guint i = 0; i < json_array_get_length (calls); i++)
    {
      JsonNode *node = json_array_get_element (calls, i);
      JsonObject *call = JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
      JsonObject *function = get_object (call, "function");
      const char *id = get_string (call, "id");
      const char *arguments = get_string (function, "arguments");
      gint64 openai_index = i;
      ToolBlock *tool;
      guint block_index;

      get_int (call, "index", &openai_index);
      tool = find_tool_block (self, openai_index);

      /* A call starts with an index not seen before, or with another id
       * for the same index; some providers repeat the id on every fragment.
       */
      if (tool == NULL || (is_nonempty (id) && tool->id != NULL && !g_str_equal (id, tool->id)))
        {
          g_autofree char *clean_id = NULL;
          ToolBlock added;

          anthropic_open_block (self, BLOCK_TOOL, out);
          if (is_nonempty (id))
            clean_id = sanitize_tool_id (id);
          else
            {
              g_autofree char *made = g_strdup_printf ("toolu_%s_%u", self->message_id,
                                                       self->block_index);

              clean_id = sanitize_tool_id (made);
            }

          g_string_append (out, "{\"type\":\"tool_use\",\"id\":");
          append_json_string (out, clean_id);
          g_string_append (out, ",\"name\":");
          append_json_string (out, get_string (function, "name") ?: "");
          g_string_append (out, ",\"input\":{}}}\n\n");
          self->has_content = TRUE;

          added.openai_index = openai_index;
          added.block_index = self->block_index;
          added.id = is_nonempty (id) ? g_strdup (id) : NULL;
          g_array_append_val (self->tool_blocks, added);
          block_index = self->block_index;
        }
      else
        block_index = tool->block_index;

      /* Fragments of a call whose block was closed by another one still go
       * to that call's block: clients gather deltas by index.
       */
      if (is_nonempty (arguments))
        anthropic_json_delta (block_index, arguments, out);
    }
}

static void
anthropic_end (KpStreamTranslator *self,
               GString            *out)
{
  anthropic_start (self, out);
  anthropic_close_block (self, out);

  event_begin (out, "message_delta");
  g_string_append (out, "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":");
  append_json_string (out, self->stop_reason ?: "end_turn");
  g_string_append_printf (out,
                          ",\"stop_sequence\":null},\"usage\":{\"input_tokens\":%" G_GINT64_FORMAT
                          ",\"output_tokens\":%" G_GINT64_FORMAT
                          ",\"cache_creation_input_tokens\":%" G_GINT64_FORMAT
                          ",\"cache_read_input_tokens\":%" G_GINT64_FORMAT "}}\n\n",
                          uncached_input (&self->usage), self->usage.completion_tokens,
                          self->usage.cache_write_tokens, self->usage.cached_tokens);
  event_begin (out, "message_stop");
  g_string_append (out, "{\"type\":\"message_stop\"}\n\n");
  self->ended = TRUE;
}

static KpStreamStatus
feed_openai (KpStreamTranslator *self,
             JsonObject         *chunk,
             GString            *out)
{
  JsonArray *choices;
  JsonNode *choice_node;
  JsonObject *choice;
  JsonObject *delta;
  const char *finish_reason;
  const char *reasoning;

  if (get_member (chunk, "error") != NULL && !JSON_NODE_HOLDS_NULL (get_member (chunk, "error")))
    return KP_STREAM_ERROR;

  if (self->message_id == NULL)
    self->message_id = message_id_for (get_string (chunk, "id"));
  if (get_object (chunk, "usage") != NULL)
    kp_usage_parse_openai (&self->usage, get_object (chunk, "usage"));

  choices = get_array (chunk, "choices");
  choice_node = choices != NULL && json_array_get_length (choices) > 0
                ? json_array_get_element (choices, 0) : NULL;
  choice = choice_node != NULL && JSON_NODE_HOLDS_OBJECT (choice_node)
           ? json_node_get_object (choice_node) : NULL;
  /* The usage chunk has no choice; the client hears of it with the end. */
  if (choice == NULL)
    return KP_STREAM_CONTINUE;

  anthropic_start (self, out);
  delta = get_object (choice, "delta");
  reasoning = reasoning_of (delta);
  anthropic_text_delta (self, BLOCK_THINKING, reasoning, out);
  anthropic_text_delta (self, BLOCK_TEXT, get_string (delta, "content"), out);
  if (get_array (delta, "tool_calls") != NULL)
    anthropic_tool_calls (self, get_array (delta, "tool_calls"), out);

  finish_reason = get_string (choice, "finish_reason");
  if (finish_reason != NULL)
    self->stop_reason = stop_reason_for_finish (finish_reason);

  return KP_STREAM_CONTINUE;
}

/**
 * kp_stream_translator_feed:
 * @self: a translator
 * @event_name: (nullable): the upstream event's name
 * @data: the event's data
 * @len: its length
 * @out: where the client's SSE text is appended
 *
 * Data that is not JSON (other than OpenAI's "[DONE]") is ignored, as any
 * unknown event is. Nothing is added once the stream ended.
 *
 * Returns: what the event meant for the stream
 */
KpStreamStatus
kp_stream_translator_feed (KpStreamTranslator *self,
                           const char         *event_name,
                           const char         *data,
                           gsize               len,
                           GString            *out)
{
  JsonNode *root;

  g_return_val_if_fail (self != NULL, KP_STREAM_ERROR);
  g_return_val_if_fail (data != NULL || len == 0, KP_STREAM_ERROR);
  g_return_val_if_fail (out != NULL, KP_STREAM_ERROR);

  if (self->ended)
    return KP_STREAM_END;

  if (g_strcmp0 (event_name, "error") == 0)
    return KP_STREAM_ERROR;

  if (self->direction == KP_STREAM_OPENAI_TO_ANTHROPIC &&
      len == strlen ("[DONE]") && memcmp (data, "[DONE]", len) == 0)
    {
      anthropic_end (self, out);
      return KP_STREAM_END;
    }

  if (len == 0 || !json_parser_load_from_data (self->parser, data, len, NULL))
    return KP_STREAM_CONTINUE;
  root = json_parser_get_root (self->parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    return KP_STREAM_CONTINUE;

  if (self->direction == KP_STREAM_ANTHROPIC_TO_OPENAI)
    return feed_anthropic (self, event_name, json_node_get_object (root), out);
  return feed_openai (self, json_node_get_object (root), out);
}

/**
 * kp_stream_translator_finish:
 * @self: a translator
 * @out: where the client's end is appended
 *
 * For an upstream that closed without its last event. An answer whose
 * finish reason came is complete: the client gets the end it expects. One
 * cut before that gets nothing here; the relay reports the cut.
 *
 * Returns: %TRUE if the stream ended well (or had already ended)
 */
gboolean
kp_stream_translator_finish (KpStreamTranslator *self,
                             GString            *out)
{
  g_return_val_if_fail (self != NULL, FALSE);
  g_return_val_if_fail (out != NULL, FALSE);

  if (self->ended)
    return TRUE;
  if (self->stop_reason == NULL)
    return FALSE;

  if (self->direction == KP_STREAM_ANTHROPIC_TO_OPENAI)
    openai_end (self, out);
  else
    anthropic_end (self, out);
  return TRUE;
}

gboolean
kp_stream_translator_has_content (KpStreamTranslator *self)
{
  g_return_val_if_fail (self != NULL, FALSE);

  return self->has_content;
}

gboolean
kp_stream_translator_has_finish (KpStreamTranslator *self)
{
  g_return_val_if_fail (self != NULL, FALSE);

  return self->stop_reason != NULL;
}

const KpUsage *
kp_stream_translator_get_usage (KpStreamTranslator *self)
{
  g_return_val_if_fail (self != NULL, NULL);

  return &self->usage;
}
