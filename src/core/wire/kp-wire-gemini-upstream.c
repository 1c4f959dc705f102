/* kp-wire-gemini-upstream.c: the canonical request as a Gemini one
 *
 * Requests to a Gemini provider are built from the canonical (OpenAI Chat)
 * request; its whole answers and its stream are read back into the hub in
 * kp-wire-gemini-answer.c.
 *
 * Choices worth knowing:
 * - A tool result names its function by tool_call_id only; Gemini matches
 *   functionResponse by name, so the name is looked up among the earlier
 *   assistant tool calls. An unknown id is the client's error.
 * - A tool result that is not a JSON object is wrapped: {"result": …}.
 * - Consecutive turns of one role are merged: Gemini wants the answers to
 *   one turn's function calls together in the next.
 * - Function calls carry no id to Gemini (older models refuse one); ids are
 *   made here, "call_" and random hex, with the signature (see the header).
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include <string.h>

#include "codec/kp-json-guard.h"
#include "kp-wire-gemini-private.h"
#include "kp-wire-util.h"

/* Thinking budgets for reasoning_effort. */
#define BUDGET_MINIMAL 512
#define BUDGET_LOW     1024
#define BUDGET_MEDIUM  8192
#define BUDGET_HIGH    24576

#define SCHEMA_MAX_DEPTH 64

gint64
kp_gemini_budget_for_effort (const char *effort)
{
  if (effort == NULL)
    return -1;
  if (g_str_equal (effort, "none"))
    return 0;
  if (g_str_equal (effort, "minimal"))
    return BUDGET_MINIMAL;
  if (g_str_equal (effort, "low"))
    return BUDGET_LOW;
  if (g_str_equal (effort, "medium"))
    return BUDGET_MEDIUM;
  if (g_str_equal (effort, "high") || g_str_equal (effort, "xhigh"))
    return BUDGET_HIGH;
  return -1;
}

/**
 * kp_gemini_thinking_for_model:
 * @gemini_request: a body kp_gemini_request_from_openai() built
 * @upstream_model: the provider's model id ("gemini-3-pro-preview", "models/…")
 *
 * Gemini 3 models take a thinkingLevel ("low" or "high") instead of a
 * thinkingBudget, and cannot stop thinking: none, minimal and low effort
 * are "low", medium and more "high".
 */
void
kp_gemini_thinking_for_model (JsonObject *gemini_request,
                              const char *upstream_model)
{
  JsonObject *thinking = kp_json_object (kp_json_object (gemini_request, "generationConfig"),
                                         "thinkingConfig");
  const char *model = upstream_model;
  gint64 budget;

  if (thinking == NULL || model == NULL || !kp_json_int (thinking, "thinkingBudget", &budget))
    return;
  if (g_str_has_prefix (model, "models/"))
    model += strlen ("models/");
  if (!g_str_has_prefix (model, "gemini-3"))
    return;
  json_object_remove_member (thinking, "thinkingBudget");
  json_object_set_string_member (thinking, "thinkingLevel", budget <= BUDGET_LOW ? "low" : "high");
  json_object_set_boolean_member (thinking, "includeThoughts", TRUE);
}

/* Schemas ----------------------------------------------------------------- */

/* The keys of Gemini's Schema (an OpenAPI subset); all others are dropped. */
static const char * const schema_keys[] = {
  "type", "format", "title", "description", "nullable", "enum", "maxItems", "minItems",
  "properties", "required", "minProperties", "maxProperties", "minLength", "maxLength",
  "pattern", "example", "anyOf", "propertyOrdering", "default", "items", "minimum",
  "maximum", NULL,
};

static gboolean
is_schema_key (const char *key)
{
  for (guint i = 0; schema_keys[i] != NULL; i++)
    if (g_str_equal (schema_keys[i], key))
      return TRUE;
  return FALSE;
}

static JsonNode *clean_schema (JsonNode *schema, guint depth);

static JsonArray *
clean_schema_list (JsonArray *list,
                   guint      depth)
{
  JsonArray *out = json_array_new ();

  for (guint i = 0; i < json_array_get_length (list); i++)
    {
      JsonNode *clean = clean_schema (json_array_get_element (list, i), depth + 1);

      if (clean != NULL)
        json_array_add_element (out, clean);
    }
  return out;
}

/* JSON Schema's "type": ["string", "null"] is Gemini's type + nullable. */
static void
set_type (JsonObject *out,
          JsonNode   *type)
{
  if (kp_json_node_string (type) != NULL)
    {
      json_object_set_string_member (out, "type", kp_json_node_string (type));
      return;
    }
  if (type == NULL || !JSON_NODE_HOLDS_ARRAY (type))
    return;
  for (guint i = 0; i < json_array_get_length (json_node_get_array (type)); i++)
    {
      const char *name = kp_json_node_string (json_array_get_element (json_node_get_array (type), i));

      if (g_strcmp0 (name, "null") == 0)
        json_object_set_boolean_member (out, "nullable", TRUE);
      else if (name != NULL && !json_object_has_member (out, "type"))
        json_object_set_string_member (out, "type", name);
    }
}

static JsonNode *
clean_schema (JsonNode *schema,
              guint     depth)
{
  JsonObject *in;
  JsonObject *out;
  JsonObjectIter iter;
  const char *key;
  JsonNode *value;

  if (schema == NULL || !JSON_NODE_HOLDS_OBJECT (schema) || depth > SCHEMA_MAX_DEPTH)
    return NULL;
  in = json_node_get_object (schema);
  out = json_object_new ();

  json_object_iter_init (&iter, in);
  while (json_object_iter_next (&iter, &key, &value))
    {
      if (g_str_equal (key, "type"))
        set_type (out, value);
      else if (g_str_equal (key, "properties") && JSON_NODE_HOLDS_OBJECT (value))
        {
          JsonObject *properties = json_object_new ();
          JsonObjectIter inner;
          const char *name;
          JsonNode *property;

          json_object_iter_init (&inner, json_node_get_object (value));
          while (json_object_iter_next (&inner, &name, &property))
            {
              JsonNode *clean = clean_schema (property, depth + 1);

              if (clean != NULL)
                json_object_set_member (properties, name, clean);
            }
          json_object_set_object_member (out, "properties", properties);
        }
      else if (g_str_equal (key, "items"))
        {
          JsonNode *clean = clean_schema (value, depth + 1);

          if (clean != NULL)
            json_object_set_member (out, "items", clean);
        }
      else if ((g_str_equal (key, "anyOf") || g_str_equal (key, "oneOf")) &&
               JSON_NODE_HOLDS_ARRAY (value))
        json_object_set_array_member (out, "anyOf",
                                      clean_schema_list (json_node_get_array (value), depth));
      else if (g_str_equal (key, "const") && kp_json_node_string (value) != NULL)
        {
          JsonArray *values = json_array_new ();

          json_array_add_string_element (values, kp_json_node_string (value));
          json_object_set_array_member (out, "enum", values);
          if (!json_object_has_member (in, "type"))
            json_object_set_string_member (out, "type", "string");
        }
      else if (is_schema_key (key))
        json_object_set_member (out, key, json_node_copy (value));
    }
  return kp_json_object_node (out);
}

/**
 * kp_gemini_clean_schema:
 * @schema: a JSON Schema
 *
 * Returns: (transfer full) (nullable): @schema with only the keys Gemini's
 *   Schema knows (`$schema`, `additionalProperties`, `$ref`, `$defs`,
 *   `exclusiveMinimum` and the like are dropped), or %NULL when it is not
 *   an object
 */
JsonNode *
kp_gemini_clean_schema (JsonNode *schema)
{
  return clean_schema (schema, 0);
}

/* Tool ids and signatures ------------------------------------------------- */

/**
 * kp_gemini_tool_id_with_signature:
 * @id: (nullable): the call's own id, or %NULL for a new one
 * @signature: (nullable): its thoughtSignature
 *
 * Returns: (transfer full): the tool call id the hub carries
 */
char *
kp_gemini_tool_id_with_signature (const char *id,
                                  const char *signature)
{
  g_autofree char *made = NULL;
  g_autofree char *encoded = NULL;
  gsize len;

  if (!kp_json_nonempty (id))
    id = made = g_strdup_printf ("call_%08x%08x%08x", g_random_int (), g_random_int (),
                                 g_random_int ());
  /* An id that carries its signature already (one Keypool made). */
  if (!kp_json_nonempty (signature) || strstr (id, KP_GEMINI_SIGNATURE_MARK) != NULL)
    return g_strdup (id);

  /* Already base64: only its alphabet changes (URL-safe, no padding). */
  encoded = g_strdup (signature);
  len = strlen (encoded);
  while (len > 0 && encoded[len - 1] == '=')
    encoded[--len] = '\0';
  for (char *p = encoded; *p; p++)
    if (*p == '+')
      *p = '-';
    else if (*p == '/')
      *p = '_';
    else if (!g_ascii_isalnum (*p) && *p != '-' && *p != '_')
      {
        /* Not base64 after all: it could not travel in an id. */
        return g_strdup (id);
      }
  return g_strconcat (id, KP_GEMINI_SIGNATURE_MARK, encoded, NULL);
}

/**
 * kp_gemini_signature_from_tool_id:
 * @tool_id: a tool call id
 * @bare_id: (out) (optional) (transfer full): the id without the signature
 *
 * Returns: (transfer full) (nullable): the signature kept in @tool_id
 */
char *
kp_gemini_signature_from_tool_id (const char  *tool_id,
                                  char       **bare_id)
{
  const char *mark = tool_id != NULL ? strstr (tool_id, KP_GEMINI_SIGNATURE_MARK) : NULL;
  GString *signature;

  if (bare_id != NULL)
    *bare_id = mark != NULL ? g_strndup (tool_id, mark - tool_id) : g_strdup (tool_id);
  if (mark == NULL || mark[strlen (KP_GEMINI_SIGNATURE_MARK)] == '\0')
    return NULL;

  signature = g_string_new (mark + strlen (KP_GEMINI_SIGNATURE_MARK));
  for (gsize i = 0; i < signature->len; i++)
    if (signature->str[i] == '-')
      signature->str[i] = '+';
    else if (signature->str[i] == '_')
      signature->str[i] = '/';
  while (signature->len % 4 != 0)
    g_string_append_c (signature, '=');
  return g_string_free (signature, FALSE);
}

/* The signature of a canonical tool call: Google's field, or the id. */
static char *
tool_call_signature (JsonObject *call)
{
  const char *given = kp_json_string (kp_json_object (kp_json_object (call, "extra_content"),
                                                      "google"),
                                      "thought_signature");

  if (kp_json_nonempty (given))
    return g_strdup (given);
  return kp_gemini_signature_from_tool_id (kp_json_string (call, "id"), NULL);
}

/* Requests ---------------------------------------------------------------- */

/* A data: URL as inlineData, an http(s) URL as fileData. */
static JsonObject *
media_part (const char  *url,
            const char  *fallback_type,
            GError     **error)
{
  JsonObject *part = json_object_new ();
  JsonObject *data = json_object_new ();

  if (url != NULL && g_str_has_prefix (url, "data:"))
    {
      const char *header = url + strlen ("data:");
      const char *comma = strchr (header, ',');
      g_autofree char *mime = NULL;

      /* The length first: ";base64" is looked for just before the comma. */
      if (comma == NULL || comma - header < (gssize)strlen (";base64") ||
          !g_str_has_prefix (comma - strlen (";base64"), ";base64"))
        {
          json_object_unref (part);
          json_object_unref (data);
          g_set_error_literal (error, KP_WIRE_ERROR, KP_WIRE_ERROR_INVALID,
                               "A data: URL must be base64-encoded to be sent to a Gemini model.");
          return NULL;
        }
      mime = g_strndup (header, strcspn (header, ";,"));
      json_object_set_string_member (data, "mimeType", *mime ? mime : fallback_type);
      json_object_set_string_member (data, "data", comma + 1);
      json_object_set_object_member (part, "inlineData", data);
      return part;
    }
  if (url != NULL && (g_str_has_prefix (url, "https://") || g_str_has_prefix (url, "http://")))
    {
      const char *mime = fallback_type;

      if (g_str_has_suffix (url, ".png"))
        mime = "image/png";
      else if (g_str_has_suffix (url, ".webp"))
        mime = "image/webp";
      else if (g_str_has_suffix (url, ".gif"))
        mime = "image/gif";
      else if (g_str_has_suffix (url, ".pdf"))
        mime = "application/pdf";
      json_object_set_string_member (data, "mimeType", mime);
      json_object_set_string_member (data, "fileUri", url);
      json_object_set_object_member (part, "fileData", data);
      return part;
    }
  json_object_unref (part);
  json_object_unref (data);
  g_set_error_literal (error, KP_WIRE_ERROR, KP_WIRE_ERROR_INVALID,
                       "An image or file must be an http(s) URL or a base64 data: URL.");
  return NULL;
}

static JsonObject *
text_part (const char *text)
{
  JsonObject *part = json_object_new ();

  json_object_set_string_member (part, "text", text);
  return part;
}

/* A message's content (a string or a list of parts) as Gemini parts. */
static gboolean
add_content (JsonArray  *parts,
             JsonNode   *content,
             GError    **error)
{
  JsonArray *list;

  if (content == NULL || JSON_NODE_HOLDS_NULL (content))
    return TRUE;
  if (kp_json_node_string (content) != NULL)
    {
      if (kp_json_nonempty (kp_json_node_string (content)))
        json_array_add_object_element (parts, text_part (kp_json_node_string (content)));
      return TRUE;
    }
  if (!JSON_NODE_HOLDS_ARRAY (content))
    {
      g_set_error_literal (error, KP_WIRE_ERROR, KP_WIRE_ERROR_INVALID,
                           "A message's content must be a string or a list of parts.");
      return FALSE;
    }

  list = json_node_get_array (content);
  for (guint i = 0; i < json_array_get_length (list); i++)
    {
      JsonObject *part = kp_json_array_object (list, i);
      const char *type = kp_json_string (part, "type");
      JsonObject *out = NULL;

      if (g_strcmp0 (type, "text") == 0 || g_strcmp0 (type, "refusal") == 0)
        {
          if (kp_json_nonempty (kp_json_string (part, type)))
            out = text_part (kp_json_string (part, type));
        }
      else if (g_strcmp0 (type, "image_url") == 0)
        {
          JsonNode *image = kp_json_member (part, "image_url");
          const char *url = kp_json_node_string (image);

          if (url == NULL && image != NULL && JSON_NODE_HOLDS_OBJECT (image))
            url = kp_json_string (json_node_get_object (image), "url");
          out = media_part (url, "image/jpeg", error);
          if (out == NULL)
            return FALSE;
        }
      else if (g_strcmp0 (type, "input_audio") == 0)
        {
          JsonObject *audio = kp_json_object (part, "input_audio");
          g_autofree char *url = g_strdup_printf ("data:audio/%s;base64,%s",
                                                  kp_json_string (audio, "format") ?: "wav",
                                                  kp_json_string (audio, "data") ?: "");

          out = media_part (url, "audio/wav", error);
          if (out == NULL)
            return FALSE;
        }
      else if (g_strcmp0 (type, "file") == 0)
        {
          out = media_part (kp_json_string (kp_json_object (part, "file"), "file_data"),
                            "application/pdf", error);
          if (out == NULL)
            return FALSE;
        }
      if (out != NULL)
        json_array_add_object_element (parts, out);
    }
  return TRUE;
}

/* Arguments are a JSON text in Chat, an object in Gemini. */
static JsonNode *
parse_arguments (const char  *arguments,
                 GError     **error)
{
  g_autoptr(JsonObject) object = NULL;

  if (!kp_json_nonempty (arguments))
    return kp_json_object_node (json_object_new ());
  object = kp_json_parse_object (arguments, -1);
  if (object == NULL)
    {
      g_set_error_literal (error, KP_WIRE_ERROR, KP_WIRE_ERROR_INVALID,
                           "A tool call's arguments must be a JSON object to be sent to a "
                           "Gemini model.");
      return NULL;
    }
  return kp_json_object_node (g_steal_pointer (&object));
}

static gboolean
add_tool_calls (JsonArray   *parts,
                JsonArray   *calls,
                GHashTable  *names,
                GError     **error)
{
  for (guint i = 0; calls != NULL && i < json_array_get_length (calls); i++)
    {
      JsonObject *call = kp_json_array_object (calls, i);
      JsonObject *function = kp_json_object (call, "function");
      const char *name = kp_json_string (function, "name");
      g_autofree char *signature = NULL;
      JsonObject *part;
      JsonObject *function_call;
      JsonNode *args;

      if (!kp_json_nonempty (name))
        {
          g_set_error_literal (error, KP_WIRE_ERROR, KP_WIRE_ERROR_INVALID,
                               "A tool call has no function name.");
          return FALSE;
        }
      args = parse_arguments (kp_json_string (function, "arguments"), error);
      if (args == NULL)
        return FALSE;
      if (kp_json_string (call, "id") != NULL)
        g_hash_table_replace (names, g_strdup (kp_json_string (call, "id")), g_strdup (name));

      function_call = json_object_new ();
      json_object_set_string_member (function_call, "name", name);
      json_object_set_member (function_call, "args", args);
      part = json_object_new ();
      json_object_set_object_member (part, "functionCall", function_call);
      signature = tool_call_signature (call);
      if (signature != NULL)
        json_object_set_string_member (part, "thoughtSignature", signature);
      json_array_add_object_element (parts, part);
    }
  return TRUE;
}

/* A tool's result: its JSON object, or its text wrapped. */
static JsonNode *
tool_response (JsonNode *content)
{
  g_autoptr(GString) text = g_string_new (NULL);
  JsonObject *wrapped;

  if (kp_json_node_string (content) != NULL)
    g_string_append (text, kp_json_node_string (content));
  else if (content != NULL && JSON_NODE_HOLDS_ARRAY (content))
    for (guint i = 0; i < json_array_get_length (json_node_get_array (content)); i++)
      {
        JsonObject *part = kp_json_array_object (json_node_get_array (content), i);

        if (kp_json_string (part, "text") != NULL)
          g_string_append (text, kp_json_string (part, "text"));
      }

  if (text->len > 0 && text->str[0] == '{')
    {
      JsonObject *object = kp_json_parse_object (text->str, text->len);

      if (object != NULL)
        return kp_json_object_node (object);
    }
  wrapped = json_object_new ();
  json_object_set_string_member (wrapped, "result", text->str);
  return kp_json_object_node (wrapped);
}

static gboolean
convert_messages (JsonArray   *messages,
                  JsonArray   *system,
                  JsonArray   *contents,
                  GError     **error)
{
  g_autoptr(GHashTable) names = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);

  for (guint i = 0; i < json_array_get_length (messages); i++)
    {
      JsonObject *message = kp_json_array_object (messages, i);
      const char *role = kp_json_string (message, "role");
      JsonArray *parts;

      if (message == NULL || role == NULL)
        {
          g_set_error (error, KP_WIRE_ERROR, KP_WIRE_ERROR_INVALID,
                       "Message %u has no role.", i);
          return FALSE;
        }

      if (g_str_equal (role, "system") || g_str_equal (role, "developer"))
        {
          if (!add_content (system, kp_json_member (message, "content"), error))
            return FALSE;
          continue;
        }

      parts = json_array_new ();
      if (g_str_equal (role, "user"))
        {
          if (!add_content (parts, kp_json_member (message, "content"), error))
            goto fail;
          kp_wire_add_turn (contents, "user", "parts", parts, NULL);
        }
      else if (g_str_equal (role, "assistant"))
        {
          if (!add_content (parts, kp_json_member (message, "content"), error) ||
              !add_tool_calls (parts, kp_json_array (message, "tool_calls"), names, error))
            goto fail;
          kp_wire_add_turn (contents, "model", "parts", parts, NULL);
        }
      else if (g_str_equal (role, "tool") || g_str_equal (role, "function"))
        {
          const char *id = kp_json_string (message, "tool_call_id");
          const char *name = id != NULL ? g_hash_table_lookup (names, id) : NULL;
          JsonObject *response;
          JsonObject *part;

          if (name == NULL)
            name = kp_json_string (message, "name");
          if (!kp_json_nonempty (name))
            {
              g_set_error (error, KP_WIRE_ERROR, KP_WIRE_ERROR_INVALID,
                           "Message %u answers the tool call “%s”, which no earlier assistant "
                           "message made; Gemini needs the function's name.", i, id ? id : "");
              goto fail;
            }
          response = json_object_new ();
          json_object_set_string_member (response, "name", name);
          json_object_set_member (response, "response",
                                  tool_response (kp_json_member (message, "content")));
          part = json_object_new ();
          json_object_set_object_member (part, "functionResponse", response);
          json_array_add_object_element (parts, part);
          kp_wire_add_turn (contents, "user", "parts", parts, NULL);
        }
      else
        {
          g_set_error (error, KP_WIRE_ERROR, KP_WIRE_ERROR_INVALID,
                       "Message %u has the unknown role “%s”.", i, role);
          goto fail;
        }
      continue;

    fail:
      json_array_unref (parts);
      return FALSE;
    }
  return TRUE;
}

static JsonArray *
convert_tools (JsonArray *tools)
{
  JsonArray *declarations = json_array_new ();

  for (guint i = 0; i < json_array_get_length (tools); i++)
    {
      JsonObject *function = kp_json_object (kp_json_array_object (tools, i), "function");
      JsonObject *declaration;
      JsonNode *parameters;

      if (kp_json_string (function, "name") == NULL)
        continue;
      declaration = json_object_new ();
      json_object_set_string_member (declaration, "name", kp_json_string (function, "name"));
      if (kp_json_string (function, "description") != NULL)
        json_object_set_string_member (declaration, "description",
                                       kp_json_string (function, "description"));
      parameters = kp_gemini_clean_schema (kp_json_member (function, "parameters"));
      if (parameters != NULL)
        json_object_set_member (declaration, "parameters", parameters);
      json_array_add_object_element (declarations, declaration);
    }
  return declarations;
}

static JsonObject *
convert_tool_choice (JsonNode *choice)
{
  JsonObject *config = json_object_new ();
  JsonObject *out = json_object_new ();
  const char *mode = kp_json_node_string (choice);

  if (mode == NULL && choice != NULL && JSON_NODE_HOLDS_OBJECT (choice))
    {
      const char *name = kp_json_string (kp_json_object (json_node_get_object (choice),
                                                         "function"), "name");
      JsonArray *names = json_array_new ();

      if (name != NULL)
        json_array_add_string_element (names, name);
      json_object_set_string_member (config, "mode", "ANY");
      json_object_set_array_member (config, "allowedFunctionNames", names);
    }
  else
    json_object_set_string_member (config, "mode",
                                   g_strcmp0 (mode, "required") == 0 ? "ANY"
                                   : g_strcmp0 (mode, "none") == 0 ? "NONE" : "AUTO");
  json_object_set_object_member (out, "functionCallingConfig", config);
  return out;
}

static void
add_response_format (JsonObject *request,
                     JsonObject *config)
{
  JsonObject *format = kp_json_object (request, "response_format");
  const char *type = kp_json_string (format, "type");

  if (g_strcmp0 (type, "json_object") == 0)
    json_object_set_string_member (config, "responseMimeType", "application/json");
  else if (g_strcmp0 (type, "json_schema") == 0)
    {
      JsonNode *schema = kp_gemini_clean_schema (kp_json_member (kp_json_object (format,
                                                                                 "json_schema"),
                                                                 "schema"));

      json_object_set_string_member (config, "responseMimeType", "application/json");
      if (schema != NULL)
        json_object_set_member (config, "responseSchema", schema);
    }
}

/**
 * kp_gemini_request_from_openai:
 * @openai_request: an OpenAI chat completion request
 *
 * Fields without a Gemini counterpart (logprobs, user, store, …) are left
 * out; n > 1 is an error, as one answer would silently replace several.
 *
 * Returns: (transfer full): the generateContent body, or %NULL
 */
JsonNode *
kp_gemini_request_from_openai (JsonObject  *openai_request,
                               GError     **error)
{
  g_autoptr(JsonObject) out = NULL;
  JsonArray *messages;
  JsonArray *system;
  JsonArray *contents;
  JsonArray *tools;
  JsonObject *config;
  JsonNode *stop;
  gint64 max_tokens;
  gint64 budget;

  g_return_val_if_fail (openai_request != NULL, NULL);

  messages = kp_wire_messages (openai_request,
                               "Gemini models give one answer per request here: n must be 1.",
                               error);
  if (messages == NULL)
    return NULL;

  out = json_object_new ();
  contents = json_array_new ();
  json_object_set_array_member (out, "contents", contents);
  system = json_array_new ();
  if (!convert_messages (messages, system, contents, error))
    {
      json_array_unref (system);
      return NULL;
    }
  if (json_array_get_length (system) > 0)
    {
      JsonObject *instruction = json_object_new ();

      json_object_set_array_member (instruction, "parts", system);
      json_object_set_object_member (out, "systemInstruction", instruction);
    }
  else
    json_array_unref (system);

  tools = kp_json_array (openai_request, "tools");
  if (tools != NULL && json_array_get_length (tools) > 0)
    {
      JsonArray *list = json_array_new ();
      JsonObject *tool = json_object_new ();

      json_object_set_array_member (tool, "functionDeclarations", convert_tools (tools));
      json_array_add_object_element (list, tool);
      json_object_set_array_member (out, "tools", list);
      if (kp_json_member (openai_request, "tool_choice") != NULL)
        json_object_set_object_member (out, "toolConfig",
          convert_tool_choice (kp_json_member (openai_request, "tool_choice")));
    }

  config = json_object_new ();
  kp_json_copy_number (openai_request, "temperature", config, "temperature");
  kp_json_copy_number (openai_request, "top_p", config, "topP");
  kp_json_copy_number (openai_request, "top_k", config, "topK");
  kp_json_copy_number (openai_request, "seed", config, "seed");
  kp_json_copy_number (openai_request, "presence_penalty", config, "presencePenalty");
  kp_json_copy_number (openai_request, "frequency_penalty", config, "frequencyPenalty");
  if (kp_json_int (openai_request, "max_completion_tokens", &max_tokens) ||
      kp_json_int (openai_request, "max_tokens", &max_tokens))
    json_object_set_int_member (config, "maxOutputTokens", max_tokens);

  stop = kp_json_member (openai_request, "stop");
  if (kp_json_node_string (stop) != NULL)
    {
      JsonArray *sequences = json_array_new ();

      json_array_add_string_element (sequences, kp_json_node_string (stop));
      json_object_set_array_member (config, "stopSequences", sequences);
    }
  else if (stop != NULL && JSON_NODE_HOLDS_ARRAY (stop) &&
           json_array_get_length (json_node_get_array (stop)) > 0)
    json_object_set_member (config, "stopSequences", json_node_copy (stop));

  add_response_format (openai_request, config);

  budget = kp_gemini_budget_for_effort (kp_json_string (openai_request, "reasoning_effort"));
  if (budget >= 0)
    {
      JsonObject *thinking = json_object_new ();

      json_object_set_int_member (thinking, "thinkingBudget", budget);
      if (budget > 0)
        json_object_set_boolean_member (thinking, "includeThoughts", TRUE);
      json_object_set_object_member (config, "thinkingConfig", thinking);
    }

  if (json_object_get_size (config) > 0)
    json_object_set_object_member (out, "generationConfig", config);
  else
    json_object_unref (config);

  return kp_json_object_node (g_steal_pointer (&out));
}
