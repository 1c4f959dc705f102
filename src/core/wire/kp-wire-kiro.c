/* kp-wire-kiro.c: Kiro (AWS CodeWhisperer / Q Developer), as a provider's API
 *
 * The hub's Chat request becomes Kiro's `conversationState`: there is no
 * system field, so the system text opens the first user turn; the history
 * strictly alternates user and assistant, starting with a user turn, so
 * turns of one role in a row are merged and a placeholder stands in where a
 * turn is missing; tool results go into the user turn after the assistant's
 * tool calls, each tool use id once; the tools go on the current message
 * only, each description at most KP_KIRO_MAX_TOOL_DESCRIPTION characters;
 * images go as base64 bytes. The account's profile ARN names the region of
 * the host. The answer is an AWS event stream: kp-wire-kiro-stream.c.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include <string.h>

#include "kp-wire-kiro-private.h"
#include "kp-wire-util.h"

typedef struct
{
  gboolean   assistant;
  GString   *text;
  JsonArray *images;        /* user turns */
  JsonArray *tool_results;  /* user turns */
  JsonArray *tool_uses;     /* assistant turns */
} Turn;

static void
turn_free (gpointer data)
{
  Turn *turn = data;

  g_string_free (turn->text, TRUE);
  g_clear_pointer (&turn->images, json_array_unref);
  g_clear_pointer (&turn->tool_results, json_array_unref);
  g_clear_pointer (&turn->tool_uses, json_array_unref);
  g_free (turn);
}

static Turn *
turn_new (gboolean assistant)
{
  Turn *turn = g_new0 (Turn, 1);

  turn->assistant = assistant;
  turn->text = g_string_new (NULL);
  if (assistant)
    turn->tool_uses = json_array_new ();
  else
    {
      turn->images = json_array_new ();
      turn->tool_results = json_array_new ();
    }
  return turn;
}

/* The turn of that role at the end of @turns: the last one, or a new one. */
static Turn *
turn_for (GPtrArray *turns,
          gboolean   assistant)
{
  Turn *turn = turns->len > 0 ? g_ptr_array_index (turns, turns->len - 1) : NULL;

  if (turn != NULL && turn->assistant == assistant)
    return turn;
  turn = turn_new (assistant);
  g_ptr_array_add (turns, turn);
  return turn;
}

static void
append_text (GString    *text,
             const char *more)
{
  if (!kp_json_nonempty (more))
    return;
  if (text->len > 0)
    g_string_append (text, "\n\n");
  g_string_append (text, more);
}

/* A base64 data: URL as a Kiro image. */
static JsonObject *
image_from_url (const char  *url,
                GError     **error)
{
  static const char * const formats[] = { "png", "jpeg", "gif", "webp", NULL };
  const char *comma = url != NULL ? strchr (url, ',') : NULL;
  g_autofree char *media_type = NULL;
  const char *format = NULL;
  JsonObject *image;
  JsonObject *source;

  if (url == NULL || !g_str_has_prefix (url, "data:") || comma == NULL ||
      comma - url < (gssize)strlen ("data:;base64") ||
      strncmp (comma - strlen (";base64"), ";base64", strlen (";base64")) != 0)
    {
      g_set_error_literal (error, KP_WIRE_ERROR, KP_WIRE_ERROR_UNSUPPORTED,
                           "Kiro takes images only as base64 data: URLs "
                           "(data:image/png;base64,…).");
      return NULL;
    }
  media_type = g_ascii_strdown (url + strlen ("data:"), strcspn (url + strlen ("data:"), ";,"));
  if (g_str_equal (media_type, "image/jpg"))
    format = "jpeg";
  for (guint i = 0; format == NULL && formats[i] != NULL; i++)
    if (g_str_has_prefix (media_type, "image/") && g_str_equal (media_type + 6, formats[i]))
      format = formats[i];
  if (format == NULL)
    {
      g_set_error (error, KP_WIRE_ERROR, KP_WIRE_ERROR_UNSUPPORTED,
                   "Kiro takes PNG, JPEG, GIF and WebP images, not “%s”.", media_type);
      return NULL;
    }

  image = json_object_new ();
  source = json_object_new ();
  json_object_set_string_member (image, "format", format);
  json_object_set_string_member (source, "bytes", comma + 1);
  json_object_set_object_member (image, "source", source);
  return image;
}

/* A message's content: its text, and its images when @images is given. */
static gboolean
read_content (JsonNode   *content,
              GString    *text,
              JsonArray  *images,
              GError    **error)
{
  JsonArray *parts;

  if (content == NULL || JSON_NODE_HOLDS_NULL (content))
    return TRUE;
  if (kp_json_node_string (content) != NULL)
    {
      append_text (text, kp_json_node_string (content));
      return TRUE;
    }
  if (!JSON_NODE_HOLDS_ARRAY (content))
    {
      g_set_error_literal (error, KP_WIRE_ERROR, KP_WIRE_ERROR_INVALID,
                           "A message's “content” must be text or a list of parts.");
      return FALSE;
    }

  parts = json_node_get_array (content);
  for (guint i = 0; i < json_array_get_length (parts); i++)
    {
      JsonObject *part = kp_json_array_object (parts, i);
      const char *type = kp_json_string (part, "type");

      if (g_strcmp0 (type, "text") == 0)
        append_text (text, kp_json_string (part, "text"));
      else if (g_strcmp0 (type, "image_url") == 0 && images != NULL)
        {
          JsonNode *node = kp_json_member (part, "image_url");
          const char *url = kp_json_node_string (node);
          JsonObject *image;

          if (url == NULL && node != NULL && JSON_NODE_HOLDS_OBJECT (node))
            url = kp_json_string (json_node_get_object (node), "url");
          image = image_from_url (url, error);
          if (image == NULL)
            return FALSE;
          json_array_add_object_element (images, image);
        }
      else if (g_strcmp0 (type, "image_url") != 0)
        {
          g_set_error (error, KP_WIRE_ERROR, KP_WIRE_ERROR_UNSUPPORTED,
                       "Content of type “%s” cannot be sent to Kiro.",
                       type != NULL ? type : "(none)");
          return FALSE;
        }
    }
  return TRUE;
}

static void
add_tool_uses (Turn       *turn,
               JsonObject *message)
{
  JsonArray *calls = kp_json_array (message, "tool_calls");

  for (guint i = 0; calls != NULL && i < json_array_get_length (calls); i++)
    {
      JsonObject *call = kp_json_array_object (calls, i);
      JsonObject *function = kp_json_object (call, "function");
      const char *arguments = kp_json_string (function, "arguments");
      JsonObject *input = arguments != NULL ? kp_json_parse_object (arguments, -1) : NULL;
      JsonObject *use = json_object_new ();

      json_object_set_string_member (use, "toolUseId", kp_json_nonempty (kp_json_string (call, "id"))
                                                         ? kp_json_string (call, "id")
                                                         : "tooluse_keypool");
      json_object_set_string_member (use, "name", kp_json_nonempty (kp_json_string (function, "name"))
                                                    ? kp_json_string (function, "name")
                                                    : "tool");
      json_object_set_object_member (use, "input", input != NULL ? input : json_object_new ());
      json_array_add_object_element (turn->tool_uses, use);
    }
}

static gboolean
add_tool_result (Turn        *turn,
                 JsonObject  *message,
                 GHashTable  *seen,
                 GError     **error)
{
  const char *id = kp_json_string (message, "tool_call_id");
  g_autoptr(GString) text = g_string_new (NULL);
  JsonObject *result;
  JsonArray *content;
  JsonObject *part;

  if (!kp_json_nonempty (id))
    {
      g_set_error_literal (error, KP_WIRE_ERROR, KP_WIRE_ERROR_INVALID,
                           "A “tool” message needs the “tool_call_id” it answers.");
      return FALSE;
    }
  /* Kiro refuses a request that names one tool use twice: the first wins. */
  if (g_hash_table_contains (seen, id))
    return TRUE;
  g_hash_table_add (seen, g_strdup (id));

  if (!read_content (kp_json_member (message, "content"), text, NULL, error))
    return FALSE;

  result = json_object_new ();
  content = json_array_new ();
  part = json_object_new ();
  json_object_set_string_member (part, "text", text->len > 0 ? text->str : KP_KIRO_EMPTY_CONTENT);
  json_array_add_object_element (content, part);
  json_object_set_string_member (result, "toolUseId", id);
  json_object_set_string_member (result, "status", "success");
  json_object_set_array_member (result, "content", content);
  json_array_add_object_element (turn->tool_results, result);
  return TRUE;
}

/* A description cut at a character, never inside one. */
static char *
shorten (const char *text)
{
  glong len = g_utf8_strlen (text, -1);

  if (len <= KP_KIRO_MAX_TOOL_DESCRIPTION)
    return g_strdup (text);
  return g_utf8_substring (text, 0, KP_KIRO_MAX_TOOL_DESCRIPTION);
}

static JsonArray *
kiro_tools (JsonObject *request)
{
  JsonArray *tools = kp_json_array (request, "tools");
  JsonArray *specs;

  if (tools == NULL || json_array_get_length (tools) == 0 ||
      g_strcmp0 (kp_json_string (request, "tool_choice"), "none") == 0)
    return NULL;

  specs = json_array_new ();
  for (guint i = 0; i < json_array_get_length (tools); i++)
    {
      JsonObject *function = kp_json_object (kp_json_array_object (tools, i), "function");
      const char *name = kp_json_string (function, "name");
      const char *description = kp_json_string (function, "description");
      JsonNode *parameters = kp_json_member (function, "parameters");
      g_autofree char *short_description = NULL;
      JsonObject *spec;
      JsonObject *schema;
      JsonObject *wrapper;

      if (!kp_json_nonempty (name))
        continue;
      /* Kiro refuses an empty description too. */
      short_description = shorten (kp_json_nonempty (description) ? description : name);

      spec = json_object_new ();
      schema = json_object_new ();
      wrapper = json_object_new ();
      json_object_set_string_member (spec, "name", name);
      json_object_set_string_member (spec, "description", short_description);
      if (parameters != NULL && JSON_NODE_HOLDS_OBJECT (parameters))
        json_object_set_member (schema, "json", json_node_copy (parameters));
      else
        {
          JsonObject *empty = json_object_new ();

          json_object_set_string_member (empty, "type", "object");
          json_object_set_object_member (empty, "properties", json_object_new ());
          json_object_set_object_member (schema, "json", empty);
        }
      json_object_set_object_member (spec, "inputSchema", schema);
      json_object_set_object_member (wrapper, "toolSpecification", spec);
      json_array_add_object_element (specs, wrapper);
    }
  if (json_array_get_length (specs) == 0)
    g_clear_pointer (&specs, json_array_unref);
  return specs;
}

static JsonObject *
user_message (Turn       *turn,
              const char *model_id,
              JsonArray  *tools)
{
  JsonObject *message = json_object_new ();
  JsonObject *context = json_object_new ();
  JsonObject *wrapper = json_object_new ();

  json_object_set_string_member (message, "content",
                                 turn->text->len > 0 ? turn->text->str : KP_KIRO_EMPTY_CONTENT);
  json_object_set_string_member (message, "modelId", model_id);
  json_object_set_string_member (message, "origin", "AI_EDITOR");
  if (json_array_get_length (turn->images) > 0)
    json_object_set_array_member (message, "images", json_array_ref (turn->images));
  if (tools != NULL)
    json_object_set_array_member (context, "tools", json_array_ref (tools));
  if (json_array_get_length (turn->tool_results) > 0)
    json_object_set_array_member (context, "toolResults", json_array_ref (turn->tool_results));
  if (json_object_get_size (context) > 0)
    json_object_set_object_member (message, "userInputMessageContext", context);
  else
    json_object_unref (context);
  json_object_set_object_member (wrapper, "userInputMessage", message);
  return wrapper;
}

static JsonObject *
assistant_message (Turn *turn)
{
  JsonObject *message = json_object_new ();
  JsonObject *wrapper = json_object_new ();

  json_object_set_string_member (message, "content",
                                 turn->text->len > 0 ? turn->text->str : KP_KIRO_EMPTY_CONTENT);
  if (json_array_get_length (turn->tool_uses) > 0)
    json_object_set_array_member (message, "toolUses", json_array_ref (turn->tool_uses));
  json_object_set_object_member (wrapper, "assistantResponseMessage", message);
  return wrapper;
}

/* §4.2's optional inferenceConfig: the client's output cap and temperature
 * (UNCONFIRMED whether Kiro honours them; sent beside conversationState, as
 * gateways do). Values out of range are left out, not clamped.
 */
static void
add_inference_config (JsonObject *root,
                      JsonObject *openai_request)
{
  JsonNode *max = kp_json_member (openai_request, "max_completion_tokens");
  JsonNode *temperature = kp_json_member (openai_request, "temperature");
  JsonObject *config = json_object_new ();

  if (max == NULL || !JSON_NODE_HOLDS_VALUE (max))
    max = kp_json_member (openai_request, "max_tokens");
  if (max != NULL && JSON_NODE_HOLDS_VALUE (max) && json_node_get_value_type (max) == G_TYPE_INT64 &&
      json_node_get_int (max) > 0 && json_node_get_int (max) <= G_MAXINT32)
    json_object_set_int_member (config, "maxTokens", json_node_get_int (max));
  if (temperature != NULL && JSON_NODE_HOLDS_VALUE (temperature) &&
      (json_node_get_value_type (temperature) == G_TYPE_DOUBLE ||
       json_node_get_value_type (temperature) == G_TYPE_INT64))
    {
      double value = json_node_get_double (temperature);

      if (value >= 0 && value <= 2)
        json_object_set_double_member (config, "temperature", value);
    }
  if (json_object_get_size (config) > 0)
    json_object_set_object_member (root, "inferenceConfig", config);
  else
    json_object_unref (config);
}

/**
 * kp_kiro_request_from_openai:
 * @openai_request: the hub's request
 * @model_id: Kiro's id of the model
 * @profile_arn: (nullable): the account's profile, when its login has one
 *
 * Returns: (transfer full) (nullable): Kiro's request, or %NULL with @error
 *   set to what the client should change
 */
JsonNode *
kp_kiro_request_from_openai (JsonObject  *openai_request,
                             const char  *model_id,
                             const char  *profile_arn,
                             GError     **error)
{
  JsonArray *messages = kp_wire_require_list (openai_request, "messages", "chat messages", error);
  g_autoptr(GPtrArray) turns = g_ptr_array_new_with_free_func (turn_free);
  g_autoptr(GHashTable) seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr(GString) system = g_string_new (NULL);
  g_autoptr(JsonArray) tools = NULL;
  g_autofree char *conversation_id = g_uuid_string_random ();
  JsonObject *state;
  JsonObject *root;
  JsonArray *history;
  JsonNode *node;
  Turn *first;

  if (messages == NULL)
    return NULL;

  for (guint i = 0; i < json_array_get_length (messages); i++)
    {
      JsonObject *message = kp_json_array_object (messages, i);
      const char *role = kp_json_string (message, "role");
      JsonNode *content = kp_json_member (message, "content");

      if (g_strcmp0 (role, "system") == 0 || g_strcmp0 (role, "developer") == 0)
        {
          if (!read_content (content, system, NULL, error))
            return NULL;
        }
      else if (g_strcmp0 (role, "user") == 0)
        {
          Turn *turn = turn_for (turns, FALSE);

          if (!read_content (content, turn->text, turn->images, error))
            return NULL;
        }
      else if (g_strcmp0 (role, "assistant") == 0)
        {
          Turn *turn = turn_for (turns, TRUE);

          if (!read_content (content, turn->text, NULL, error))
            return NULL;
          add_tool_uses (turn, message);
        }
      else if (g_strcmp0 (role, "tool") == 0)
        {
          if (!add_tool_result (turn_for (turns, FALSE), message, seen, error))
            return NULL;
        }
      else
        {
          g_set_error (error, KP_WIRE_ERROR, KP_WIRE_ERROR_INVALID,
                       "A message's “role” must be system, user, assistant or tool, not “%s”.",
                       role != NULL ? role : "(none)");
          return NULL;
        }
    }

  /* Strictly user, assistant, user, …, user. */
  first = turns->len > 0 ? g_ptr_array_index (turns, 0) : NULL;
  if (first == NULL || first->assistant)
    g_ptr_array_insert (turns, 0, turn_new (FALSE));
  if (((Turn *)g_ptr_array_index (turns, turns->len - 1))->assistant)
    turn_for (turns, FALSE);

  /* There is no system field: the system text opens the first user turn. */
  if (system->len > 0)
    {
      Turn *user = g_ptr_array_index (turns, 0);

      if (user->text->len > 0)
        g_string_append (system, "\n\n");
      g_string_prepend (user->text, system->str);
    }

  tools = kiro_tools (openai_request);
  history = json_array_new ();
  for (guint i = 0; i + 1 < turns->len; i++)
    {
      Turn *turn = g_ptr_array_index (turns, i);

      json_array_add_object_element (history, turn->assistant ? assistant_message (turn)
                                                              : user_message (turn, model_id, NULL));
    }

  state = json_object_new ();
  json_object_set_string_member (state, "chatTriggerType", "MANUAL");
  json_object_set_string_member (state, "conversationId", conversation_id);
  json_object_set_string_member (state, "agentTaskType", "vibe");
  json_object_set_object_member (state, "currentMessage",
                                 user_message (g_ptr_array_index (turns, turns->len - 1),
                                               model_id, tools));
  if (json_array_get_length (history) > 0)
    json_object_set_array_member (state, "history", history);
  else
    json_array_unref (history);

  root = json_object_new ();
  json_object_set_object_member (root, "conversationState", state);
  add_inference_config (root, openai_request);
  if (kp_json_nonempty (profile_arn))
    json_object_set_string_member (root, "profileArn", profile_arn);
  node = json_node_new (JSON_NODE_OBJECT);
  json_node_take_object (node, root);
  return node;
}

/* Regions ------------------------------------------------------------------ */

static gboolean
is_region (const char *text)
{
  gsize len = text != NULL ? strlen (text) : 0;

  if (len == 0 || len > 32)
    return FALSE;
  for (gsize i = 0; i < len; i++)
    if (!g_ascii_islower (text[i]) && !g_ascii_isdigit (text[i]) && text[i] != '-')
      return FALSE;
  return TRUE;
}

/**
 * kp_kiro_region_of_arn:
 * @profile_arn: (nullable): `arn:aws:codewhisperer:<region>:<account>:profile/<id>`
 *
 * Returns: (transfer full) (nullable): its region, or %NULL when it names none
 */
char *
kp_kiro_region_of_arn (const char *profile_arn)
{
  g_auto(GStrv) parts = NULL;

  if (profile_arn == NULL || !g_str_has_prefix (profile_arn, "arn:"))
    return NULL;
  parts = g_strsplit (profile_arn, ":", 6);
  if (g_strv_length (parts) < 5 || !is_region (parts[3]))
    return NULL;
  return g_strdup (parts[3]);
}

/**
 * kp_kiro_uri_for_region:
 * @uri: a provider's URI, whose host may name the default region
 *   (`q.us-east-1.amazonaws.com`)
 * @region: the account's region
 *
 * Returns: (transfer full) (nullable): @uri on that region's host, or %NULL
 *   when @uri names no region (a local test server) or already that one
 */
GUri *
kp_kiro_uri_for_region (GUri       *uri,
                        const char *region)
{
  const char *host = uri != NULL ? g_uri_get_host (uri) : NULL;
  g_autofree char *label = g_strconcat (".", KP_KIRO_DEFAULT_REGION, ".", NULL);
  g_autofree char *replaced = NULL;
  const char *at;

  if (host == NULL || !is_region (region) || g_str_equal (region, KP_KIRO_DEFAULT_REGION))
    return NULL;
  at = strstr (host, label);
  if (at == NULL)
    return NULL;
  replaced = g_strdup_printf ("%.*s.%s.%s", (int)(at - host), host, region, at + strlen (label));
  return g_uri_build (g_uri_get_flags (uri), g_uri_get_scheme (uri), g_uri_get_userinfo (uri),
                      replaced, g_uri_get_port (uri), g_uri_get_path (uri), g_uri_get_query (uri),
                      g_uri_get_fragment (uri));
}

/* The table ---------------------------------------------------------------- */

static GBytes *
build_body (KpWireRequest  *req,
            JsonObject     *source,
            gboolean        passthrough,
            KpWireTarget   *target,
            GError        **error)
{
  const char *profile_arn = kp_json_string (target->account, "profileArn");
  g_autofree char *region = kp_kiro_region_of_arn (profile_arn);
  g_autoptr(JsonNode) built = NULL;

  /* No client speaks Kiro: the request always comes through the hub. */
  built = kp_kiro_request_from_openai (source, target->offering->upstream_id, profile_arn,
                                       error);
  if (built == NULL)
    return NULL;

  kp_wire_target_clear (target);
  if (region != NULL)
    target->uri = kp_kiro_uri_for_region (kp_provider_get_api_uri (target->provider,
                                                                   kp_wire_kiro.id),
                                          region);
  return kp_wire_serialize (built);
}

static void
add_headers (const KpWireRequest *req,
             SoupMessageHeaders  *headers)
{
  g_autofree char *invocation = g_uuid_string_random ();

  /* Kiro answers with an AWS event stream, whatever the client asked for. */
  soup_message_headers_replace (headers, "Accept", "*/*");
  soup_message_headers_replace (headers, "amz-sdk-invocation-id", invocation);
  soup_message_headers_replace (headers, "amz-sdk-request", "attempt=1; max=1");
  soup_message_headers_replace (headers, "x-amzn-kiro-agent-mode", "vibe");
}

const KpWire kp_wire_kiro = {
  .id = "kiro",
  .kind = KP_WIRE_KIND_CHAT,
  .client_routes = NULL,
  .upstream_path = "/generateAssistantResponse",

  .build_body = build_body,
  .add_headers = add_headers,
  .decoder_new = kp_kiro_decoder_new,
  .decode = kp_kiro_decode,
  .decoder_free = kp_kiro_decoder_free,

  .stream_content_type = "application/vnd.amazon.eventstream",
  .next_event = kp_kiro_next_event,
  .decode_end = kp_kiro_decode_end,
  .answer_to_canonical = kp_kiro_answer_to_canonical,
  .classify = kp_kiro_classify,
};
