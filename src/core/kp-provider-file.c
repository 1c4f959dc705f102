/* kp-provider-file.c: reading and checking a provider file
 *
 * Part of KpProvider: providers/<id>.json becomes a KpProvider, or an error
 * that names the file and the field at fault. A provider file is outside
 * input: its size and depth are bounded before json-glib parses it, and
 * every field is checked (ids, URLs, header names and values, prices).
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include <string.h>

#include "kp-provider-private.h"
#include "wire/kp-wire.h"
#include "wire/kp-wire-json.h"
#include "codec/kp-json-guard.h"

static gboolean
invalid (GError     **error,
         const char  *origin,
         const char  *format,
         ...) G_GNUC_PRINTF (3, 4);

static gboolean
invalid (GError     **error,
         const char  *origin,
         const char  *format,
         ...)
{
  g_autofree char *message = NULL;
  va_list args;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);

  g_set_error (error, KP_PROVIDER_ERROR, KP_PROVIDER_ERROR_INVALID,
               "%s: %s", origin, message);
  return FALSE;
}

static gboolean
get_string (JsonObject  *object,
            const char  *member,
            gboolean     required,
            char       **out,
            const char  *origin,
            const char  *where,
            GError     **error)
{
  JsonNode *node = json_object_get_member (object, member);

  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    {
      if (required)
        return invalid (error, origin, "%s is missing the field “%s”", where, member);
      return TRUE;
    }

  if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_STRING ||
      *json_node_get_string (node) == '\0')
    return invalid (error, origin, "%s has a “%s” that is not a non-empty string", where, member);

  *out = g_strdup (json_node_get_string (node));
  return TRUE;
}

static gboolean
get_price (JsonObject  *object,
           const char  *member,
           double      *out,
           const char  *origin,
           const char  *where,
           GError     **error)
{
  JsonNode *node = json_object_get_member (object, member);
  double value;

  *out = -1.0;
  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return TRUE;

  if (!kp_json_double (object, member, &value))
    return invalid (error, origin, "%s has a “%s” that is not a number (USD per million tokens)",
                    where, member);

  if (!(value >= 0.0) || value > 1e6)
    return invalid (error, origin, "%s has a “%s” price out of range", where, member);

  *out = value;
  return TRUE;
}

/* A model's context window in tokens: a whole number, or absent (0). */
static gboolean
get_context (JsonObject  *object,
             gint64      *out,
             const char  *origin,
             const char  *where,
             GError     **error)
{
  JsonNode *node = json_object_get_member (object, "context");

  *out = 0;
  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return TRUE;
  if (!kp_json_int (object, "context", out))
    return invalid (error, origin, "%s has a “context” that is not a number (tokens)", where);
  return TRUE;
}

static gboolean
valid_id (const char *id)
{
  for (const char *p = id; *p; p++)
    if (!g_ascii_islower (*p) && !g_ascii_isdigit (*p) && *p != '-' && *p != '_')
      return FALSE;
  return *id != '\0';
}

/* An HTTP token (RFC 9110): what a header name may be. */
static gboolean
valid_header_name (const char *name)
{
  for (const char *p = name; *p; p++)
    if (!g_ascii_isalnum (*p) && strchr ("!#$%&'*+-.^_`|~", *p) == NULL)
      return FALSE;
  return *name != '\0';
}

/* A line break in a value would end the header and start one of the file's
 * own choosing; libsoup would send it as it is.
 */
static gboolean
check_header (const char  *name,
              const char  *value,
              const char  *origin,
              GError     **error)
{
  if (name != NULL && !valid_header_name (name))
    return invalid (error, origin, "“%s” is not a valid header name", name);
  if (value != NULL && strpbrk (value, "\r\n") != NULL)
    return invalid (error, origin, "the value of the header “%s” has a line break",
                    name ? name : "prefix");
  return TRUE;
}

static gboolean
parse_auth (KpProvider  *self,
            JsonNode    *node,
            GError     **error)
{
  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return TRUE;

  if (JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == G_TYPE_STRING)
    {
      const char *kind = json_node_get_string (node);

      if (g_str_equal (kind, "bearer"))
        self->auth_kind = KP_AUTH_BEARER;
      else if (g_str_equal (kind, "none"))
        self->auth_kind = KP_AUTH_NONE;
      else
        return invalid (error, self->origin,
                        "“auth” is “%s”; use “bearer”, “none” or {\"type\": \"header\", …}", kind);
      return TRUE;
    }

  if (JSON_NODE_HOLDS_OBJECT (node))
    {
      JsonObject *auth = json_node_get_object (node);
      g_autofree char *type = NULL;
      JsonNode *prefix;

      if (!get_string (auth, "type", TRUE, &type, self->origin, "“auth”", error))
        return FALSE;
      if (!g_str_equal (type, "header"))
        return invalid (error, self->origin, "“auth” has the unknown type “%s”", type);
      if (!get_string (auth, "name", TRUE, &self->auth_header, self->origin, "“auth”", error))
        return FALSE;
      prefix = json_object_get_member (auth, "prefix");
      if (prefix != NULL && !JSON_NODE_HOLDS_NULL (prefix))
        {
          if (kp_json_node_string (prefix) == NULL)
            return invalid (error, self->origin, "“auth” has a “prefix” that is not a string");
          self->auth_prefix = g_strdup (kp_json_node_string (prefix));
        }
      self->auth_kind = KP_AUTH_HEADER;
      return check_header (self->auth_header, self->auth_prefix, self->origin, error);
    }

  return invalid (error, self->origin, "“auth” must be a string or an object");
}

static gboolean
parse_string_array (JsonNode    *node,
                    GStrv       *out,
                    const char  *origin,
                    const char  *member,
                    GError     **error)
{
  g_autoptr(GStrvBuilder) builder = g_strv_builder_new ();
  JsonArray *array;

  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    {
      *out = g_strv_builder_end (builder);
      return TRUE;
    }
  if (!JSON_NODE_HOLDS_ARRAY (node))
    return invalid (error, origin, "“%s” must be a list of strings", member);

  array = json_node_get_array (node);
  for (guint i = 0; i < json_array_get_length (array); i++)
    {
      JsonNode *element = json_array_get_element (array, i);

      if (!JSON_NODE_HOLDS_VALUE (element) || json_node_get_value_type (element) != G_TYPE_STRING)
        return invalid (error, origin, "“%s” must be a list of strings", member);
      g_strv_builder_add (builder, json_node_get_string (element));
    }

  *out = g_strv_builder_end (builder);
  return TRUE;
}

static gboolean
parse_headers (KpProvider  *self,
               JsonNode    *node,
               GError     **error)
{
  g_autoptr(GStrvBuilder) names = g_strv_builder_new ();
  g_autoptr(GStrvBuilder) values = g_strv_builder_new ();

  if (node != NULL && !JSON_NODE_HOLDS_NULL (node))
    {
      JsonObject *object;
      JsonObjectIter iter;
      const char *name;
      JsonNode *value;

      if (!JSON_NODE_HOLDS_OBJECT (node))
        return invalid (error, self->origin, "“headers” must be an object of strings");

      object = json_node_get_object (node);
      json_object_iter_init (&iter, object);
      while (json_object_iter_next (&iter, &name, &value))
        {
          if (!JSON_NODE_HOLDS_VALUE (value) || json_node_get_value_type (value) != G_TYPE_STRING)
            return invalid (error, self->origin, "header “%s” must be a string", name);
          if (!check_header (name, json_node_get_string (value), self->origin, error))
            return FALSE;
          g_strv_builder_add (names, name);
          g_strv_builder_add (values, json_node_get_string (value));
        }
    }

  self->header_names = g_strv_builder_end (names);
  self->header_values = g_strv_builder_end (values);
  return TRUE;
}

static gboolean
parse_models (KpProvider  *self,
              JsonNode    *node,
              GError     **error)
{
  JsonArray *array;

  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return TRUE;
  if (!JSON_NODE_HOLDS_ARRAY (node))
    return invalid (error, self->origin, "“models” must be a list");

  array = json_node_get_array (node);
  for (guint i = 0; i < json_array_get_length (array); i++)
    {
      JsonNode *element = json_array_get_element (array, i);
      g_autofree char *where = g_strdup_printf ("model #%u", i + 1);
      g_autofree char *id = NULL;
      KpOffering offering = { 0 };
      JsonObject *model;

      if (!JSON_NODE_HOLDS_OBJECT (element))
        return invalid (error, self->origin, "%s is not an object", where);
      model = json_node_get_object (element);

      if (!get_string (model, "id", TRUE, &id, self->origin, where, error))
        return FALSE;
      if (strchr (id, '/') == NULL || id[0] == '/' || g_str_has_suffix (id, "/"))
        return invalid (error, self->origin, "model “%s” must be a canonical “vendor/model” id", id);

      offering.model_id = g_ascii_strdown (id, -1);
      offering.provider = self;
      g_array_append_val (self->offerings, offering);

      {
        KpOffering *stored = &g_array_index (self->offerings, KpOffering, self->offerings->len - 1);
        g_autofree char *model_where = g_strdup_printf ("model “%s”", id);

        if (!get_string (model, "upstream_id", FALSE, &stored->upstream_id,
                         self->origin, model_where, error) ||
            !get_price (model, "input", &stored->input, self->origin, model_where, error) ||
            !get_price (model, "output", &stored->output, self->origin, model_where, error) ||
            !get_price (model, "cached_input", &stored->cached_input,
                        self->origin, model_where, error) ||
            !get_price (model, "cache_write", &stored->cache_write,
                        self->origin, model_where, error))
          return FALSE;

        if (stored->upstream_id == NULL)
          stored->upstream_id = g_strdup (strchr (id, '/') + 1);

        if (!get_context (model, &stored->context, self->origin, model_where, error))
          return FALSE;
        {
          JsonNode *reasoning = json_object_get_member (model, "reasoning");
          g_autofree char *kind = NULL;

          if (reasoning != NULL && !(JSON_NODE_HOLDS_VALUE (reasoning) &&
                                     json_node_get_value_type (reasoning) == G_TYPE_BOOLEAN))
            return invalid (error, self->origin, "model “%s”: “reasoning” must be true or false", id);
          stored->reasoning = reasoning != NULL && json_node_get_boolean (reasoning);

          if (!get_string (model, "kind", FALSE, &kind, self->origin, model_where, error))
            return FALSE;
          if (kind == NULL || g_str_equal (kind, "chat"))
            stored->kind = KP_MODEL_CHAT;
          else if (g_str_equal (kind, "embedding"))
            stored->kind = KP_MODEL_EMBEDDING;
          else
            return invalid (error, self->origin,
                            "model “%s” has the kind “%s”; it must be “chat” or “embedding”",
                            id, kind);
        }

        /* An embedding has no output tokens: its input price is all it costs. */
        if (stored->kind == KP_MODEL_EMBEDDING && stored->input >= 0 && stored->output < 0)
          stored->output = 0;
        if ((stored->input < 0) != (stored->output < 0))
          return invalid (error, self->origin,
                          "model “%s” has only one of “input” and “output”; give both prices or neither",
                          id);
        stored->price_source = kp_offering_has_price (stored) ? KP_PRICE_BUNDLED : KP_PRICE_UNKNOWN;

        if (!parse_string_array (json_object_get_member (model, "aliases"), &stored->aliases,
                                 self->origin, "aliases", error))
          return FALSE;
        for (guint k = 0; stored->aliases[k] != NULL; k++)
          {
            char *lower = g_ascii_strdown (stored->aliases[k], -1);

            g_free (stored->aliases[k]);
            stored->aliases[k] = lower;
          }
      }
    }

  return TRUE;
}

static gboolean
valid_endpoint (const char *base_url,
                const char *endpoint)
{
  g_autofree char *url = NULL;
  g_autoptr(GUri) uri = NULL;

  if (g_str_has_prefix (endpoint, "http://") || g_str_has_prefix (endpoint, "https://"))
    url = g_strdup (endpoint);
  else
    url = g_strconcat (base_url, endpoint[0] == '/' ? "" : "/", endpoint, NULL);
  uri = g_uri_parse (url, G_URI_FLAGS_ENCODED, NULL);
  return uri != NULL && g_uri_get_host (uri) != NULL;
}

/* "dialect": the wire of the provider's chat API. The names are the
 * provider file's own: "openai" is OpenAI Chat.
 */
static gboolean
parse_wire (KpProvider  *self,
            const char  *dialect,
            GError     **error)
{
  const KpWire *wire;

  if (dialect == NULL || g_str_equal (dialect, "openai"))
    dialect = "openai-chat";
  wire = kp_wire_for_id (dialect);
  if (wire == NULL || wire->kind != KP_WIRE_KIND_CHAT ||
      (wire->response_to_canonical == NULL && wire->answer_to_canonical == NULL))
    {
      g_set_error (error, KP_PROVIDER_ERROR, KP_PROVIDER_ERROR_UNSUPPORTED,
                   "%s: the dialect “%s” is not supported by this Keypool "
                   "(only “openai”, “anthropic”, “gemini” and “kiro”)",
                   self->origin, dialect);
      return FALSE;
    }
  self->wire = g_strdup (wire->id);
  return TRUE;
}

/* @endpoint: a path under base_url, or a whole http(s) URL. */
static GUri *
api_uri (KpProvider  *self,
         const char  *endpoint,
         GError     **error)
{
  g_autofree char *url = NULL;
  GUri *uri;

  if (g_str_has_prefix (endpoint, "http://") || g_str_has_prefix (endpoint, "https://") ||
      strstr (endpoint, "://") != NULL)
    url = g_strdup (endpoint);
  else
    url = g_strconcat (self->base_url, (endpoint[0] == '/' || endpoint[0] == '\0') ? "" : "/",
                       endpoint, NULL);
  uri = g_uri_parse (url, G_URI_FLAGS_ENCODED, NULL);
  if (uri == NULL ||
      (g_strcmp0 (g_uri_get_scheme (uri), "http") != 0 &&
       g_strcmp0 (g_uri_get_scheme (uri), "https") != 0) ||
      g_uri_get_host (uri) == NULL)
    {
      g_clear_pointer (&uri, g_uri_unref);
      invalid (error, self->origin, "“%s” is not an http(s) URL", url);
    }
  return uri;
}

/* "apis": the other APIs the provider serves, by wire id, each `true` (at
 * the wire's own path under base_url) or the path or URL where it is.
 */
static gboolean
parse_apis (KpProvider  *self,
            JsonNode    *node,
            GError     **error)
{
  JsonObjectIter iter;
  const char *id;
  JsonNode *value;

  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return TRUE;
  if (!JSON_NODE_HOLDS_OBJECT (node))
    return invalid (error, self->origin, "“apis” must be an object of API names");

  json_object_iter_init (&iter, json_node_get_object (node));
  while (json_object_iter_next (&iter, &id, &value))
    {
      const KpWire *wire = kp_wire_for_id (id);
      const char *endpoint = NULL;
      GUri *uri;

      if (wire == NULL || wire->build_body == NULL)
        return invalid (error, self->origin, "“apis” names “%s”, which this Keypool does not speak",
                        id);
      if (JSON_NODE_HOLDS_VALUE (value) && json_node_get_value_type (value) == G_TYPE_BOOLEAN)
        {
          if (!json_node_get_boolean (value))
            continue;
          endpoint = wire->upstream_path;
        }
      else if (JSON_NODE_HOLDS_VALUE (value) && json_node_get_value_type (value) == G_TYPE_STRING)
        endpoint = json_node_get_string (value);
      else
        return invalid (error, self->origin, "“apis”: “%s” must be true, false or a path", id);

      uri = api_uri (self, endpoint, error);
      if (uri == NULL)
        return FALSE;
      g_hash_table_insert (self->apis, g_strdup (wire->id), uri);
    }
  return TRUE;
}

/* The fields that say how the catalog refresh reads the provider's own
 * model list, prices and balance.
 */
static gboolean
parse_refresh (KpProvider  *self,
               JsonObject  *object,
               GError     **error)
{
  g_autofree char *prices = NULL;
  g_autofree char *models_list = NULL;
  JsonNode *node;

  if (!get_string (object, "prices_checked", FALSE, &self->prices_checked, self->origin,
                   "the provider", error) ||
      !get_string (object, "models_endpoint", FALSE, &self->models_endpoint, self->origin,
                   "the provider", error) ||
      !get_string (object, "models_prefix", FALSE, &self->models_prefix, self->origin,
                   "the provider", error) ||
      !get_string (object, "prices", FALSE, &prices, self->origin, "the provider", error) ||
      !get_string (object, "models_list", FALSE, &models_list, self->origin, "the provider", error))
    return FALSE;

  if (models_list != NULL && !g_str_equal (models_list, "replaces") &&
      !g_str_equal (models_list, "adds"))
    return invalid (error, self->origin, "“models_list” is “%s”; use “replaces” or “adds”",
                    models_list);
  self->models_list_adds = g_strcmp0 (models_list, "adds") == 0;

  if (self->models_endpoint != NULL && !valid_endpoint (self->base_url, self->models_endpoint))
    return invalid (error, self->origin, "“models_endpoint” “%s” is not a path or an http(s) URL",
                    self->models_endpoint);

  if (prices == NULL || g_str_equal (prices, "none"))
    self->price_format = KP_PRICES_NONE;
  else if (g_str_equal (prices, "openrouter"))
    self->price_format = KP_PRICES_OPENROUTER;
  else if (g_str_equal (prices, "per_million"))
    self->price_format = KP_PRICES_PER_MILLION;
  else if (g_str_equal (prices, "free"))
    self->price_format = KP_PRICES_FREE;
  else
    return invalid (error, self->origin,
                    "“prices” is “%s”; use “openrouter”, “per_million”, “free” or “none”", prices);

  self->models_need_key = self->requires_key;
  node = json_object_get_member (object, "models_need_key");
  if (node != NULL && !JSON_NODE_HOLDS_NULL (node))
    {
      if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_BOOLEAN)
        return invalid (error, self->origin, "“models_need_key” must be true or false");
      self->models_need_key = json_node_get_boolean (node);
    }

  node = json_object_get_member (object, "balance");
  if (node != NULL && !JSON_NODE_HOLDS_NULL (node))
    {
      g_autofree char *format = NULL;
      JsonObject *balance;

      if (!JSON_NODE_HOLDS_OBJECT (node))
        return invalid (error, self->origin,
                        "“balance” must be an object: {\"endpoint\": …, \"format\": …}");
      balance = json_node_get_object (node);
      if (!get_string (balance, "endpoint", TRUE, &self->balance_endpoint, self->origin,
                       "“balance”", error) ||
          !get_string (balance, "format", TRUE, &format, self->origin, "“balance”", error))
        return FALSE;
      if (!valid_endpoint (self->base_url, self->balance_endpoint))
        return invalid (error, self->origin, "the balance endpoint “%s” is not a path or an http(s) URL",
                        self->balance_endpoint);
      if (g_str_equal (format, "openrouter_credits"))
        self->balance_format = KP_BALANCE_OPENROUTER_CREDITS;
      else if (g_str_equal (format, "deepseek"))
        self->balance_format = KP_BALANCE_DEEPSEEK;
      else
        return invalid (error, self->origin,
                        "the balance format “%s” is unknown; use “openrouter_credits” or “deepseek”",
                        format);
    }

  return TRUE;
}

/* "oauth": the provider's keys are OAuth refresh tokens of this application
 * (see auth/kp-oauth-client.h); "subscription": its accounts' quota is paid
 * for already.
 */
static gboolean
parse_oauth (KpProvider  *self,
             JsonObject  *object,
             GError     **error)
{
  JsonNode *node = json_object_get_member (object, "oauth");
  g_autoptr(GError) oauth_error = NULL;

  if (node != NULL && !JSON_NODE_HOLDS_NULL (node))
    {
      if (!JSON_NODE_HOLDS_OBJECT (node))
        {
          invalid (error, self->origin, "“oauth” must be an object");
          return FALSE;
        }
      self->oauth = kp_oauth_client_new_from_json (json_node_get_object (node), self->origin,
                                                   &oauth_error);
      if (self->oauth == NULL)
        {
          g_set_error_literal (error, KP_PROVIDER_ERROR, KP_PROVIDER_ERROR_INVALID,
                               oauth_error->message);
          return FALSE;
        }
    }

  node = json_object_get_member (object, "subscription");
  if (node != NULL && !JSON_NODE_HOLDS_NULL (node))
    {
      if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_BOOLEAN)
        {
          invalid (error, self->origin, "“subscription” must be true or false");
          return FALSE;
        }
      self->subscription = json_node_get_boolean (node);
    }
  return TRUE;
}

/**
 * kp_provider_new_from_json:
 * @root: the parsed provider file
 * @origin: where it came from, used in error messages
 * @error: a location for a #GError
 *
 * Returns: (transfer full): the provider, or %NULL with @error set to a
 *   message that names the file and the field at fault.
 */
KpProvider *
kp_provider_new_from_json (JsonNode    *root,
                           const char  *origin,
                           GError     **error)
{
  g_autoptr(KpProvider) self = NULL;
  g_autofree char *dialect = NULL;
  JsonObject *object;
  JsonNode *node;

  g_return_val_if_fail (root != NULL, NULL);
  g_return_val_if_fail (origin != NULL, NULL);

  self = g_object_new (KP_TYPE_PROVIDER, NULL);
  self->origin = g_strdup (origin);

  if (!JSON_NODE_HOLDS_OBJECT (root))
    {
      invalid (error, origin, "a provider file must hold one JSON object");
      return NULL;
    }
  object = json_node_get_object (root);

  node = json_object_get_member (object, "schema");
  if (node != NULL &&
      (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_INT64))
    {
      invalid (error, origin, "\"schema\" must be a whole number");
      return NULL;
    }
  if (node != NULL && json_node_get_int (node) != 1)
    {
      g_set_error (error, KP_PROVIDER_ERROR, KP_PROVIDER_ERROR_UNSUPPORTED,
                   "%s: schema %" G_GINT64_FORMAT " is newer than this Keypool understands (1)",
                   origin, json_node_get_int (node));
      return NULL;
    }

  if (!get_string (object, "id", TRUE, &self->id, origin, "the provider", error) ||
      !get_string (object, "name", FALSE, &self->name, origin, "the provider", error) ||
      !get_string (object, "dialect", FALSE, &dialect, origin, "the provider", error) ||
      !get_string (object, "base_url", TRUE, &self->base_url, origin, "the provider", error))
    return NULL;

  if (!valid_id (self->id))
    {
      invalid (error, origin, "the id “%s” may use only a–z, 0–9, “-” and “_”", self->id);
      return NULL;
    }

  if (self->name == NULL)
    self->name = g_strdup (self->id);
  if (!parse_wire (self, dialect, error))
    return NULL;

  while (g_str_has_suffix (self->base_url, "/"))
    self->base_url[strlen (self->base_url) - 1] = '\0';

  self->chat_uri = api_uri (self, kp_wire_for_id (self->wire)->upstream_path, NULL);
  if (self->chat_uri == NULL)
    {
      invalid (error, origin, "“base_url” “%s” is not an http(s) URL", self->base_url);
      return NULL;
    }
  g_hash_table_insert (self->apis, g_strdup (self->wire), g_uri_ref (self->chat_uri));
  if (!parse_apis (self, json_object_get_member (object, "apis"), error))
    return NULL;

  {
    g_autofree char *key_check = NULL;

    if (!get_string (object, "key_check", FALSE, &key_check, origin, "the provider", error))
      return NULL;
    if (key_check != NULL && !g_str_equal (key_check, "models") && !g_str_equal (key_check, "chat"))
      {
        invalid (error, origin, "“key_check” is “%s”; use “models” or “chat”", key_check);
        return NULL;
      }
    self->check_with_chat = g_strcmp0 (key_check, "chat") == 0;
  }

  node = json_object_get_member (object, "requires_key");
  if (node != NULL && !JSON_NODE_HOLDS_NULL (node))
    {
      if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_BOOLEAN)
        {
          invalid (error, origin, "“requires_key” must be true or false");
          return NULL;
        }
      self->requires_key = json_node_get_boolean (node);
    }

  if (!parse_oauth (self, object, error) ||
      !parse_auth (self, json_object_get_member (object, "auth"), error) ||
      !parse_string_array (json_object_get_member (object, "env"), &self->env,
                           origin, "env", error) ||
      !parse_headers (self, json_object_get_member (object, "headers"), error) ||
      !parse_refresh (self, object, error) ||
      !parse_models (self, json_object_get_member (object, "models"), error))
    return NULL;

  return g_steal_pointer (&self);
}

/**
 * kp_provider_new_from_file:
 * @path: a provider JSON file
 * @error: a location for a #GError
 *
 * A local file, read with GLib: loading the catalog sets up no GIO VFS
 * (its extension points and module scan).
 *
 * Returns: (transfer full): the provider, or %NULL with @error set.
 */
KpProvider *
kp_provider_new_from_file (const char  *path,
                           GError     **error)
{
  g_autoptr(JsonParser) parser = json_parser_new_immutable ();
  g_autofree char *contents = NULL;
  gsize length = 0;

  g_return_val_if_fail (path != NULL, NULL);

  if (!g_file_get_contents (path, &contents, &length, error))
    return NULL;

  if (!kp_json_parser_load_from_data (parser, contents, length, error))
    {
      if (g_error_matches (*error, KP_JSON_ERROR, KP_JSON_ERROR_TOO_DEEP))
        g_prefix_error (error, "%s: ", path);
      else
        g_prefix_error (error, "%s: not valid JSON: ", path);
      return NULL;
    }

  /* json-glib reads an empty file (or one of spaces) as valid, with no root. */
  if (json_parser_get_root (parser) == NULL)
    {
      invalid (error, path, "the file is empty; a provider file holds one JSON object");
      return NULL;
    }

  return kp_provider_new_from_json (json_parser_get_root (parser), path, error);
}
