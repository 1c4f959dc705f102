/* kp-provider.c: one provider definition, read from providers/<id>.json
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include <string.h>

#include "kp-provider.h"
#include "wire/kp-wire.h"
#include "codec/kp-json-guard.h"

struct _KpProvider
{
  GObject     parent_instance;

  char       *id;
  char       *name;
  char       *wire;          /* the wire of its chat API: "openai-chat", "anthropic", … */
  char       *base_url;
  char       *origin;        /* the file it came from, for messages */
  GUri       *chat_uri;
  GHashTable *apis;          /* wire id -> GUri: every API it serves, the chat one included */
  KpAuthKind  auth_kind;
  char       *auth_header;
  char       *auth_prefix;
  GStrv       env;
  GStrv       header_names;
  GStrv       header_values;
  gboolean    requires_key;
  gboolean    check_with_chat;  /* no model list: check keys with a tiny chat */
  char       *prices_checked;
  char       *models_endpoint;   /* a path under base_url or a URL; NULL = "/models" */
  char       *models_prefix;     /* put before each name in the list, not in requests */
  gboolean    models_need_key;
  gboolean    models_list_adds; /* the live list adds to the file's models */
  KpPriceFormat price_format;
  char       *balance_endpoint;
  KpBalanceFormat balance_format;
  KpOAuthClient *oauth;      /* its keys are OAuth refresh tokens; NULL = API keys */
  gboolean    subscription;  /* its accounts' quota is paid already: $0 at the margin */
  GArray     *offerings;     /* of KpOffering */
};

G_DEFINE_TYPE (KpProvider, kp_provider, G_TYPE_OBJECT)

G_DEFINE_QUARK (kp-provider-error-quark, kp_provider_error)

static void
kp_offering_clear (gpointer data)
{
  KpOffering *offering = data;

  g_clear_pointer (&offering->model_id, g_free);
  g_clear_pointer (&offering->upstream_id, g_free);
  g_clear_pointer (&offering->aliases, g_strfreev);
}

static void
kp_provider_finalize (GObject *object)
{
  KpProvider *self = (KpProvider *)object;

  g_clear_pointer (&self->id, g_free);
  g_clear_pointer (&self->name, g_free);
  g_clear_pointer (&self->base_url, g_free);
  g_clear_pointer (&self->origin, g_free);
  g_clear_pointer (&self->chat_uri, g_uri_unref);
  g_clear_pointer (&self->apis, g_hash_table_unref);
  g_clear_pointer (&self->wire, g_free);
  g_clear_pointer (&self->auth_header, g_free);
  g_clear_pointer (&self->auth_prefix, g_free);
  g_clear_pointer (&self->env, g_strfreev);
  g_clear_pointer (&self->header_names, g_strfreev);
  g_clear_pointer (&self->header_values, g_strfreev);
  g_clear_pointer (&self->prices_checked, g_free);
  g_clear_pointer (&self->models_endpoint, g_free);
  g_clear_pointer (&self->models_prefix, g_free);
  g_clear_pointer (&self->balance_endpoint, g_free);
  g_clear_pointer (&self->offerings, g_array_unref);

  g_clear_pointer (&self->oauth, kp_oauth_client_free);
  G_OBJECT_CLASS (kp_provider_parent_class)->finalize (object);
}

static void
kp_provider_class_init (KpProviderClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = kp_provider_finalize;
}

static void
kp_provider_init (KpProvider *self)
{
  self->auth_kind = KP_AUTH_BEARER;
  self->requires_key = TRUE;
  self->offerings = g_array_new (FALSE, TRUE, sizeof (KpOffering));
  g_array_set_clear_func (self->offerings, kp_offering_clear);
  self->apis = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                      (GDestroyNotify)g_uri_unref);
}

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
  GType type;
  double value;

  *out = -1.0;
  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return TRUE;

  type = JSON_NODE_HOLDS_VALUE (node) ? json_node_get_value_type (node) : G_TYPE_INVALID;
  if (type != G_TYPE_DOUBLE && type != G_TYPE_INT64)
    return invalid (error, origin, "%s has a “%s” that is not a number (USD per million tokens)",
                    where, member);

  value = json_node_get_double (node);
  if (!(value >= 0.0) || value > 1e6)
    return invalid (error, origin, "%s has a “%s” price out of range", where, member);

  *out = value;
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

      if (!get_string (auth, "type", TRUE, &type, self->origin, "“auth”", error))
        return FALSE;
      if (!g_str_equal (type, "header"))
        return invalid (error, self->origin, "“auth” has the unknown type “%s”", type);
      if (!get_string (auth, "name", TRUE, &self->auth_header, self->origin, "“auth”", error))
        return FALSE;
      if (json_object_has_member (auth, "prefix") &&
          !JSON_NODE_HOLDS_NULL (json_object_get_member (auth, "prefix")))
        self->auth_prefix = g_strdup (json_object_get_string_member_with_default (auth, "prefix", ""));
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

        stored->context = json_object_get_int_member_with_default (model, "context", 0);
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

  if (json_object_get_int_member_with_default (object, "schema", 1) != 1)
    {
      g_set_error (error, KP_PROVIDER_ERROR, KP_PROVIDER_ERROR_UNSUPPORTED,
                   "%s: schema %" G_GINT64_FORMAT " is newer than this Keypool understands (1)",
                   origin, json_object_get_int_member_with_default (object, "schema", 1));
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
 * @file: a provider JSON file
 * @error: a location for a #GError
 *
 * Returns: (transfer full): the provider, or %NULL with @error set.
 */
KpProvider *
kp_provider_new_from_file (GFile   *file,
                           GError **error)
{
  g_autoptr(JsonParser) parser = json_parser_new_immutable ();
  g_autofree char *path = NULL;
  g_autofree char *contents = NULL;
  gsize length = 0;

  g_return_val_if_fail (G_IS_FILE (file), NULL);

  path = g_file_get_path (file);
  if (!g_file_load_contents (file, NULL, &contents, &length, NULL, error))
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

const char *
kp_provider_get_id (KpProvider *self)
{
  g_return_val_if_fail (KP_IS_PROVIDER (self), NULL);
  return self->id;
}

const char *
kp_provider_get_name (KpProvider *self)
{
  g_return_val_if_fail (KP_IS_PROVIDER (self), NULL);
  return self->name;
}

const char *
kp_provider_get_base_url (KpProvider *self)
{
  g_return_val_if_fail (KP_IS_PROVIDER (self), NULL);
  return self->base_url;
}

const char *
kp_provider_get_origin (KpProvider *self)
{
  g_return_val_if_fail (KP_IS_PROVIDER (self), NULL);
  return self->origin;
}

/**
 * kp_provider_get_chat_uri:
 *
 * Returns: (transfer none): the chat completions endpoint, parsed once
 */
GUri *
kp_provider_get_chat_uri (KpProvider *self)
{
  g_return_val_if_fail (KP_IS_PROVIDER (self), NULL);
  return self->chat_uri;
}

/**
 * kp_provider_get_wire:
 *
 * Returns: the id of the wire its chat API speaks
 */
const char *
kp_provider_get_wire (KpProvider *self)
{
  g_return_val_if_fail (KP_IS_PROVIDER (self), NULL);

  return self->wire;
}

/**
 * kp_provider_serves:
 * @wire_id: a wire's id
 *
 * Returns: whether the provider speaks that wire itself
 */
gboolean
kp_provider_serves (KpProvider *self,
                    const char *wire_id)
{
  g_return_val_if_fail (KP_IS_PROVIDER (self), FALSE);

  return g_hash_table_contains (self->apis, wire_id);
}

/**
 * kp_provider_get_api_uri:
 * @wire_id: a wire the provider serves
 *
 * Returns: (transfer none) (nullable): where that API is
 */
GUri *
kp_provider_get_api_uri (KpProvider *self,
                         const char *wire_id)
{
  g_return_val_if_fail (KP_IS_PROVIDER (self), NULL);

  return g_hash_table_lookup (self->apis, wire_id);
}

KpAuthKind
kp_provider_get_auth_kind (KpProvider *self)
{
  g_return_val_if_fail (KP_IS_PROVIDER (self), KP_AUTH_NONE);
  return self->auth_kind;
}

/**
 * kp_provider_get_check_with_chat:
 *
 * Returns: whether a key is checked with a one-token chat request (for a
 *   provider without a model list) instead of the model list
 */
gboolean
kp_provider_get_check_with_chat (KpProvider *self)
{
  g_return_val_if_fail (KP_IS_PROVIDER (self), FALSE);
  return self->check_with_chat;
}

gboolean
kp_provider_get_requires_key (KpProvider *self)
{
  g_return_val_if_fail (KP_IS_PROVIDER (self), TRUE);
  return self->requires_key;
}

const char * const *
kp_provider_get_env (KpProvider *self)
{
  g_return_val_if_fail (KP_IS_PROVIDER (self), NULL);
  return (const char * const *)self->env;
}

guint
kp_provider_get_n_offerings (KpProvider *self)
{
  g_return_val_if_fail (KP_IS_PROVIDER (self), 0);
  return self->offerings->len;
}

const KpOffering *
kp_provider_get_offering (KpProvider *self,
                          guint       index)
{
  g_return_val_if_fail (KP_IS_PROVIDER (self), NULL);
  g_return_val_if_fail (index < self->offerings->len, NULL);
  return &g_array_index (self->offerings, KpOffering, index);
}

/**
 * kp_provider_apply_headers:
 * @self: a #KpProvider
 * @headers: the upstream request headers
 * @key: (nullable): the credential to send, if any
 *
 * Adds the provider's authentication and extra headers to an upstream request.
 */
void
kp_provider_apply_headers (KpProvider         *self,
                           SoupMessageHeaders *headers,
                           const char         *key)
{
  g_return_if_fail (KP_IS_PROVIDER (self));

  for (guint i = 0; self->header_names[i] != NULL; i++)
    soup_message_headers_replace (headers, self->header_names[i], self->header_values[i]);

  if (key == NULL || self->auth_kind == KP_AUTH_NONE)
    return;

  if (self->auth_kind == KP_AUTH_BEARER)
    {
      g_autofree char *value = g_strconcat ("Bearer ", key, NULL);

      soup_message_headers_replace (headers, "Authorization", value);
      memset (value, 0, strlen (value));
    }
  else
    {
      g_autofree char *value = g_strconcat (self->auth_prefix ? self->auth_prefix : "", key, NULL);

      soup_message_headers_replace (headers, self->auth_header, value);
      memset (value, 0, strlen (value));
    }
}

/**
 * kp_provider_get_oauth:
 *
 * Returns: (nullable): the OAuth application its keys belong to, or %NULL
 *   when its keys are API keys
 */
const KpOAuthClient *
kp_provider_get_oauth (KpProvider *self)
{
  g_return_val_if_fail (KP_IS_PROVIDER (self), NULL);
  return self->oauth;
}

gboolean
kp_provider_get_subscription (KpProvider *self)
{
  g_return_val_if_fail (KP_IS_PROVIDER (self), FALSE);
  return self->subscription;
}

gboolean
kp_offering_has_price (const KpOffering *offering)
{
  return offering->input >= 0 && offering->output >= 0;
}

const char *
kp_price_source_to_string (KpPriceSource source)
{
  switch (source)
    {
    case KP_PRICE_BUNDLED:
      return "bundled";
    case KP_PRICE_LIVE:
      return "live";
    case KP_PRICE_UNKNOWN:
    default:
      return "unknown";
    }
}

/**
 * kp_provider_get_prices_checked:
 *
 * Returns: (nullable): the date the file's prices were last compared with the
 *   provider's, as YYYY-MM-DD
 */
const char *
kp_provider_get_prices_checked (KpProvider *self)
{
  g_return_val_if_fail (KP_IS_PROVIDER (self), NULL);
  return self->prices_checked;
}

static char *
resolve_endpoint (KpProvider *self,
                  const char *endpoint)
{
  if (g_str_has_prefix (endpoint, "http://") || g_str_has_prefix (endpoint, "https://"))
    return g_strdup (endpoint);
  return g_strconcat (self->base_url, endpoint[0] == '/' ? "" : "/", endpoint, NULL);
}

/**
 * kp_provider_dup_models_url:
 *
 * Returns: (transfer full) (nullable): where the provider lists its models,
 *   or %NULL for a provider without a model list (`"key_check": "chat"`)
 */
char *
kp_provider_dup_models_url (KpProvider *self)
{
  g_return_val_if_fail (KP_IS_PROVIDER (self), NULL);

  if (self->models_endpoint == NULL && self->check_with_chat)
    return NULL;
  return resolve_endpoint (self, self->models_endpoint ? self->models_endpoint : "/models");
}

/**
 * kp_provider_get_models_need_key:
 *
 * Returns: whether the model list is only given to a caller with a key
 */
gboolean
kp_provider_get_models_need_key (KpProvider *self)
{
  g_return_val_if_fail (KP_IS_PROVIDER (self), TRUE);
  return self->models_need_key;
}

/**
 * kp_provider_get_models_prefix:
 *
 * Returns: (nullable): what the model list puts before each model's name
 *   (Google's "models/"), which requests leave out
 */
const char *
kp_provider_get_models_prefix (KpProvider *self)
{
  g_return_val_if_fail (KP_IS_PROVIDER (self), NULL);
  return self->models_prefix;
}

KpPriceFormat
kp_provider_get_price_format (KpProvider *self)
{
  g_return_val_if_fail (KP_IS_PROVIDER (self), KP_PRICES_NONE);
  return self->price_format;
}

/**
 * kp_provider_dup_balance_url:
 *
 * Returns: (transfer full) (nullable): where a key's balance is read, or
 *   %NULL when the provider has no such endpoint
 */
char *
kp_provider_dup_balance_url (KpProvider *self)
{
  g_return_val_if_fail (KP_IS_PROVIDER (self), NULL);
  return self->balance_endpoint ? resolve_endpoint (self, self->balance_endpoint) : NULL;
}

KpBalanceFormat
kp_provider_get_balance_format (KpProvider *self)
{
  g_return_val_if_fail (KP_IS_PROVIDER (self), KP_BALANCE_NONE);
  return self->balance_endpoint ? self->balance_format : KP_BALANCE_NONE;
}

void
kp_live_model_clear (gpointer data)
{
  KpLiveModel *model = data;

  g_clear_pointer (&model->upstream_id, g_free);
}

/**
 * kp_live_model_canonical_id:
 * @provider: the provider that listed the model
 * @upstream_id: what the provider calls it
 *
 * The canonical id of a model the provider file does not know: the upstream
 * id in lower case when it already reads “vendor/model” (OpenRouter,
 * DeepInfra, Together), otherwise “provider/model”.
 *
 * Returns: (transfer full) (nullable): the id, or %NULL for a name that
 *   cannot be one (empty, too long, spaces or control characters)
 */
char *
kp_live_model_canonical_id (KpProvider *provider,
                            const char *upstream_id)
{
  g_autofree char *lower = NULL;
  const char *slash;
  gsize len;

  g_return_val_if_fail (KP_IS_PROVIDER (provider), NULL);
  g_return_val_if_fail (upstream_id != NULL, NULL);

  len = strlen (upstream_id);
  if (len == 0 || len > 200)
    return NULL;
  for (const char *p = upstream_id; *p; p++)
    if ((guchar)*p <= ' ' || (guchar)*p >= 0x7f || *p == '"' || *p == '\\')
      return NULL;

  lower = g_ascii_strdown (upstream_id, -1);
  slash = strchr (lower, '/');
  if (slash != NULL && slash != lower && slash[1] != '\0' && !g_str_has_suffix (lower, "/"))
    return g_steal_pointer (&lower);
  if (slash != NULL)
    return NULL;
  return g_strconcat (provider->id, "/", lower, NULL);
}

/* Whether a file model has exactly @upstream_id; if none has, the file
 * models whose upstream id differs from it only in case stand for it.
 */
static gboolean
has_exact_upstream_id (KpProvider *bundled,
                       const char *upstream_id)
{
  for (guint i = 0; i < bundled->offerings->len; i++)
    if (g_str_equal (g_array_index (bundled->offerings, KpOffering, i).upstream_id, upstream_id))
      return TRUE;
  return FALSE;
}

/**
 * kp_model_name_undated_length:
 * @name: a model name
 *
 * Anthropic names snapshots by date: "claude-sonnet-4-20250514".
 *
 * Returns: the length of @name without a trailing "-YYYYMMDD", or 0 when it
 *   has none
 */
gsize
kp_model_name_undated_length (const char *name)
{
  gsize len = strlen (name);

  if (len <= 9 || name[len - 9] != '-')
    return 0;
  for (gsize i = len - 8; i < len; i++)
    if (!g_ascii_isdigit (name[i]))
      return 0;
  return len - 9;
}

/* The file's model of which @upstream_id is a dated snapshot
 * ("claude-sonnet-4-20250514" of "claude-sonnet-4", by its upstream id, an
 * alias or its canonical name without the vendor), or NULL.
 */
static const KpOffering *
find_snapshot_of (KpProvider *bundled,
                  const char *upstream_id)
{
  gsize len = kp_model_name_undated_length (upstream_id);
  g_autofree char *base = NULL;

  if (len == 0)
    return NULL;
  base = g_ascii_strdown (upstream_id, len);

  for (guint i = 0; i < bundled->offerings->len; i++)
    {
      const KpOffering *offering = &g_array_index (bundled->offerings, KpOffering, i);
      const char *bare = strchr (offering->model_id, '/');

      if (g_ascii_strcasecmp (offering->upstream_id, base) == 0 ||
          (bare != NULL && g_str_equal (bare + 1, base)) ||
          (offering->aliases != NULL &&
           g_strv_contains ((const char * const *)offering->aliases, base)))
        return offering;
    }
  return NULL;
}

/* One offering of the merged provider: @model as the live list names it,
 * under the name of the file model @known, or a name of its own.
 */
static void
merge_one (KpProvider        *self,
           KpProvider        *bundled,
           const KpLiveModel *model,
           const KpOffering  *known,
           GHashTable        *seen,
           gint64             listed_at)
{
  const KpOffering *snapshot_of = known ? NULL : find_snapshot_of (bundled, model->upstream_id);
  gboolean live_price = model->input >= 0 && model->output >= 0;
  KpOffering offering = { 0 };

  offering.model_id = known ? g_strdup (known->model_id)
                            : kp_live_model_canonical_id (bundled, model->upstream_id);
  if (offering.model_id == NULL || g_hash_table_contains (seen, offering.model_id))
    {
      g_free (offering.model_id);
      return;
    }

  offering.upstream_id = g_strdup (model->upstream_id);
  offering.aliases = known ? g_strdupv (known->aliases) : g_new0 (char *, 1);
  offering.context = model->context > 0 ? model->context : known ? known->context : 0;
  offering.reasoning = known ? known->reasoning : snapshot_of ? snapshot_of->reasoning : FALSE;
  offering.kind = known ? known->kind : snapshot_of ? snapshot_of->kind : KP_MODEL_CHAT;
  offering.provider = self;
  offering.listed_at = listed_at;
  if (live_price)
    {
      offering.input = model->input;
      offering.output = model->output;
      offering.cached_input = model->cached_input;
      /* Lists give no cache-write price: the file's, or the input price. */
      offering.cache_write = known ? known->cache_write : -1;
      offering.price_source = KP_PRICE_LIVE;
    }
  else if (known != NULL && kp_offering_has_price (known))
    {
      offering.input = known->input;
      offering.output = known->output;
      offering.cached_input = known->cached_input;
      offering.cache_write = known->cache_write;
      offering.price_source = KP_PRICE_BUNDLED;
    }
  else if (snapshot_of != NULL && kp_offering_has_price (snapshot_of))
    {
      /* A dated snapshot costs what the file says its model costs. */
      offering.input = snapshot_of->input;
      offering.output = snapshot_of->output;
      offering.cached_input = snapshot_of->cached_input;
      offering.cache_write = snapshot_of->cache_write;
      offering.context = offering.context > 0 ? offering.context : snapshot_of->context;
      offering.price_source = KP_PRICE_BUNDLED;
    }
  else
    {
      offering.input = offering.output = offering.cached_input = offering.cache_write = -1;
      offering.price_source = KP_PRICE_UNKNOWN;
    }

  g_array_append_val (self->offerings, offering);
  g_hash_table_add (seen, g_array_index (self->offerings, KpOffering,
                                         self->offerings->len - 1).model_id);
}

/**
 * kp_provider_new_merged:
 * @bundled: the provider as its file describes it
 * @live: (element-type KpLiveModel): the models its live list names
 * @listed_at: when the list was fetched, unix seconds
 *
 * Makes the provider as it is now: its definition from the file, and exactly
 * the models of the live list. A model the file knows keeps its canonical id
 * and aliases, and its file price while the list gives none; a new model
 * gets its live price, or none (never free). Models the list no longer names
 * are left out, so they are no longer routed to this provider.
 *
 * The result is a new object, so that requests in flight keep the offerings
 * they point at for as long as they hold the old one.
 *
 * Returns: (transfer full): the merged provider
 */
KpProvider *
kp_provider_new_merged (KpProvider *bundled,
                        GArray     *live,
                        gint64      listed_at)
{
  g_autoptr(GHashTable) seen = g_hash_table_new (g_str_hash, g_str_equal);
  KpProvider *self;

  g_return_val_if_fail (KP_IS_PROVIDER (bundled), NULL);
  g_return_val_if_fail (live != NULL, NULL);

  self = g_object_new (KP_TYPE_PROVIDER, NULL);
  self->id = g_strdup (bundled->id);
  self->name = g_strdup (bundled->name);
  self->wire = g_strdup (bundled->wire);
  self->base_url = g_strdup (bundled->base_url);
  self->origin = g_strdup (bundled->origin);
  self->chat_uri = g_uri_ref (bundled->chat_uri);
  g_hash_table_unref (self->apis);
  self->apis = g_hash_table_ref (bundled->apis);
  self->auth_kind = bundled->auth_kind;
  self->auth_header = g_strdup (bundled->auth_header);
  self->auth_prefix = g_strdup (bundled->auth_prefix);
  self->env = g_strdupv (bundled->env);
  self->header_names = g_strdupv (bundled->header_names);
  self->header_values = g_strdupv (bundled->header_values);
  self->requires_key = bundled->requires_key;
  self->check_with_chat = bundled->check_with_chat;
  self->prices_checked = g_strdup (bundled->prices_checked);
  self->models_endpoint = g_strdup (bundled->models_endpoint);
  self->models_prefix = g_strdup (bundled->models_prefix);
  self->models_need_key = bundled->models_need_key;
  self->models_list_adds = bundled->models_list_adds;
  self->price_format = bundled->price_format;
  self->balance_endpoint = g_strdup (bundled->balance_endpoint);
  self->balance_format = bundled->balance_format;
  self->oauth = kp_oauth_client_copy (bundled->oauth);
  self->subscription = bundled->subscription;

  for (guint i = 0; i < live->len; i++)
    {
      const KpLiveModel *model = &g_array_index (live, KpLiveModel, i);
      gboolean exact = has_exact_upstream_id (bundled, model->upstream_id);
      gboolean found = FALSE;

      /* Every file model of that upstream id (an alias may be written as an
       * entry of its own), or the live model under a name of its own.
       */
      for (guint k = 0; k < bundled->offerings->len; k++)
        {
          const KpOffering *known = &g_array_index (bundled->offerings, KpOffering, k);

          if (exact ? !g_str_equal (known->upstream_id, model->upstream_id)
                    : g_ascii_strcasecmp (known->upstream_id, model->upstream_id) != 0)
            continue;
          merge_one (self, bundled, model, known, seen, listed_at);
          found = TRUE;
        }
      if (!found)
        merge_one (self, bundled, model, NULL, seen, listed_at);
    }

  /* A list that names models otherwise than requests do (Anthropic lists
   * dated ids, and serves the file's aliases too) only adds to the file.
   */
  for (guint i = 0; self->models_list_adds && i < bundled->offerings->len; i++)
    {
      const KpOffering *known = &g_array_index (bundled->offerings, KpOffering, i);
      KpOffering offering = *known;

      if (g_hash_table_contains (seen, known->model_id))
        continue;
      offering.model_id = g_strdup (known->model_id);
      offering.upstream_id = g_strdup (known->upstream_id);
      offering.aliases = g_strdupv (known->aliases);
      offering.provider = self;
      g_array_append_val (self->offerings, offering);
    }

  return self;
}
