/* kp-gateway.c: the composition root of Keypool's core
 *
 * The gateway owns the catalog, the ledger, the keys and the upstream
 * session, and serves them through KpServer. Loading reads the keyring once
 * (bounded by the vault's timeout); after that, nothing on the request path
 * waits for the keyring or the disk beyond one sqlite insert per request.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include "kp-gateway.h"
#include "kp-server.h"

/* Enough pooled connections per provider for 64 concurrent streams. libsoup
 * 3.2 defaults to 2 per host; a much larger limit made it stop reusing idle
 * keep-alive connections, so the limit matches the concurrency we plan for.
 */
#define MAX_CONNS_PER_HOST 64
#define MAX_CONNS          256

#define DEFAULT_CONNECT_MS    15000
#define DEFAULT_FIRST_BYTE_MS 300000
#define DEFAULT_IDLE_MS       300000

#define KEY_CHECK_TIMEOUT_S   20

/* How long a failure keeps a key or an offering out of use. */
#define RATE_LIMIT_DEFAULT_S  60
#define RATE_LIMIT_MAX_S      3600
#define QUOTA_DEFAULT_S       3600
#define MODEL_MISSING_S       3600
#define DOWN_BASE_S           5
#define DOWN_MAX_S            300

struct _KpGateway
{
  GObject      parent_instance;

  KpCatalog   *catalog;
  KpVault     *vault;
  KpLedger    *ledger;
  KpRefresh   *refresh;
  KpServer    *server;
  SoupSession *session;
  GHashTable  *relays;            /* in flight: KpRelay → itself (owned) */
  GPtrArray   *credentials;       /* of KpCredential, by id */
  GHashTable  *disabled;          /* provider ids switched off */
  GHashTable  *suppressed;        /* "provider\nmodel" → unix s: said it lacks the model */
  GHashTable  *busy;              /* "provider\nmodel" → unix s: said it is overloaded */
  guint        rotation;

  guint        port;
  char        *providers_dir;
  char        *config_dir;
  char        *data_dir;
  char        *token;
  char        *token_origin;      /* where the token lives, for messages */
  char        *keyring_problem;   /* why the keyring cannot be used, or NULL */
  gboolean     use_keyring;
  gboolean     loaded;
  GStrv        allowed_origins;
  gsize        body_limit;
  gsize        body_cap;       /* reads from providers */
  gsize        event_cap;
  gsize        list_cap;
  guint        connect_ms;
  guint        first_byte_ms;
  guint        idle_ms;
  gint64       started_us;
  char        *models_json;
  gsize        models_json_len;
  gboolean     serving;
};

enum {
  REQUEST_FINISHED,
  CHANGED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

enum {
  PROP_0,
  PROP_SERVING,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

G_DEFINE_TYPE (KpGateway, kp_gateway, G_TYPE_OBJECT)

G_DEFINE_QUARK (kp-gateway-error-quark, kp_gateway_error)

static void
wipe_string (char **secret)
{
  if (*secret != NULL)
    {
      explicit_bzero (*secret, strlen (*secret));
      g_clear_pointer (secret, g_free);
    }
}

static void
kp_gateway_dispose (GObject *object)
{
  KpGateway *self = (KpGateway *)object;

  if (self->refresh != NULL)
    g_object_run_dispose (G_OBJECT (self->refresh));
  g_clear_object (&self->refresh);
  g_clear_object (&self->server);
  g_clear_pointer (&self->relays, g_hash_table_unref);
  if (self->session != NULL)
    soup_session_abort (self->session);
  g_clear_object (&self->session);

  G_OBJECT_CLASS (kp_gateway_parent_class)->dispose (object);
}

static void
kp_gateway_finalize (GObject *object)
{
  KpGateway *self = (KpGateway *)object;

  g_clear_object (&self->catalog);
  g_clear_object (&self->vault);
  g_clear_object (&self->ledger);
  g_clear_pointer (&self->credentials, g_ptr_array_unref);
  g_clear_pointer (&self->disabled, g_hash_table_unref);
  g_clear_pointer (&self->suppressed, g_hash_table_unref);
  g_clear_pointer (&self->busy, g_hash_table_unref);
  g_clear_pointer (&self->providers_dir, g_free);
  g_clear_pointer (&self->config_dir, g_free);
  g_clear_pointer (&self->data_dir, g_free);
  g_clear_pointer (&self->token_origin, g_free);
  g_clear_pointer (&self->keyring_problem, g_free);
  g_clear_pointer (&self->allowed_origins, g_strfreev);
  g_clear_pointer (&self->models_json, g_free);
  wipe_string (&self->token);

  G_OBJECT_CLASS (kp_gateway_parent_class)->finalize (object);
}

static void
kp_gateway_get_property (GObject    *object,
                         guint       prop_id,
                         GValue     *value,
                         GParamSpec *pspec)
{
  KpGateway *self = KP_GATEWAY (object);

  switch (prop_id)
    {
    case PROP_SERVING:
      g_value_set_boolean (value, self->serving);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
kp_gateway_class_init (KpGatewayClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = kp_gateway_dispose;
  object_class->finalize = kp_gateway_finalize;
  object_class->get_property = kp_gateway_get_property;

  /**
   * KpGateway:serving:
   *
   * Whether Keypool is listening for clients: from kp_gateway_listen() until
   * kp_gateway_stop().
   */
  properties[PROP_SERVING] =
    g_param_spec_boolean ("serving", NULL, NULL, FALSE,
                          G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, properties);

  /**
   * KpGateway::request-finished:
   * @gateway: the gateway
   * @relay: the finished request, with its outcome, usage and timings
   *
   * Emitted once per client request, whatever its outcome, after its row
   * is in the ledger.
   */
  signals[REQUEST_FINISHED] =
    g_signal_new ("request-finished",
                  G_TYPE_FROM_CLASS (klass),
                  G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL,
                  G_TYPE_NONE, 1, KP_TYPE_RELAY);

  /**
   * KpGateway::changed:
   *
   * Emitted when keys, providers or the token changed.
   */
  signals[CHANGED] =
    g_signal_new ("changed",
                  G_TYPE_FROM_CLASS (klass),
                  G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL,
                  G_TYPE_NONE, 0);
}

static void
kp_gateway_init (KpGateway *self)
{
  self->catalog = kp_catalog_new ();
  self->vault = kp_vault_new ();
  self->refresh = kp_refresh_new (self);
  self->relays = g_hash_table_new_full (NULL, NULL, g_object_unref, NULL);
  self->credentials = g_ptr_array_new_with_free_func (g_object_unref);
  self->disabled = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->suppressed = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->busy = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->port = KP_GATEWAY_DEFAULT_PORT;
  self->body_limit = KP_GATEWAY_DEFAULT_BODY_LIMIT;
  self->body_cap = KP_GATEWAY_DEFAULT_BODY_CAP;
  self->event_cap = KP_GATEWAY_DEFAULT_EVENT_CAP;
  self->list_cap = KP_GATEWAY_DEFAULT_LIST_CAP;
  self->connect_ms = DEFAULT_CONNECT_MS;
  self->first_byte_ms = DEFAULT_FIRST_BYTE_MS;
  self->idle_ms = DEFAULT_IDLE_MS;
  self->use_keyring = TRUE;
  self->allowed_origins = g_new0 (char *, 1);
}

KpGateway *
kp_gateway_new (void)
{
  return g_object_new (KP_TYPE_GATEWAY, NULL);
}

void
kp_gateway_set_port (KpGateway *self,
                     guint      port)
{
  g_return_if_fail (KP_IS_GATEWAY (self));
  g_return_if_fail (port <= 65535);

  self->port = port;
}

/**
 * kp_gateway_set_dirs:
 * @self: a #KpGateway
 * @providers_dir: (nullable): the shipped provider files
 * @config_dir: (nullable): the user's configuration folder; its
 *   `providers/` adds or replaces providers
 * @data_dir: (nullable): where the database lives
 */
void
kp_gateway_set_dirs (KpGateway  *self,
                     const char *providers_dir,
                     const char *config_dir,
                     const char *data_dir)
{
  g_return_if_fail (KP_IS_GATEWAY (self));

  g_free (self->providers_dir);
  self->providers_dir = g_strdup (providers_dir);
  g_free (self->config_dir);
  self->config_dir = g_strdup (config_dir);
  g_free (self->data_dir);
  self->data_dir = g_strdup (data_dir);
}

/**
 * kp_gateway_set_token:
 * @token: (nullable): the access token clients must send, or %NULL to use
 *   the one kept in the keyring (made on first run)
 */
void
kp_gateway_set_token (KpGateway  *self,
                      const char *token)
{
  g_return_if_fail (KP_IS_GATEWAY (self));

  wipe_string (&self->token);
  self->token = g_strdup (token);
  g_free (self->token_origin);
  self->token_origin = token ? g_strdup ("KEYPOOL_TOKEN") : NULL;
}

/**
 * kp_gateway_set_use_keyring:
 *
 * Without the keyring, keys come from environment variables only and the
 * token from KEYPOOL_TOKEN or a file in the configuration folder.
 */
void
kp_gateway_set_use_keyring (KpGateway *self,
                            gboolean   use_keyring)
{
  g_return_if_fail (KP_IS_GATEWAY (self));
  self->use_keyring = use_keyring;
}

void
kp_gateway_set_body_limit (KpGateway *self,
                           gsize      limit)
{
  g_return_if_fail (KP_IS_GATEWAY (self));
  g_return_if_fail (limit > 0);

  self->body_limit = limit;
}

/**
 * kp_gateway_set_timeouts:
 *
 * Upstream timeouts in milliseconds; 0 turns one off. Before the first byte
 * reached the client each ends the attempt; after, it ends the stream.
 */
void
kp_gateway_set_timeouts (KpGateway *self,
                         guint      connect_ms,
                         guint      first_byte_ms,
                         guint      idle_ms)
{
  g_return_if_fail (KP_IS_GATEWAY (self));

  self->connect_ms = connect_ms;
  self->first_byte_ms = first_byte_ms;
  self->idle_ms = idle_ms;
}

void
kp_gateway_set_allowed_origins (KpGateway          *self,
                                const char * const *origins)
{
  g_return_if_fail (KP_IS_GATEWAY (self));

  g_strfreev (self->allowed_origins);
  self->allowed_origins = origins ? g_strdupv ((char **)origins) : g_new0 (char *, 1);
}

/* Tokens ----------------------------------------------------------------- */

static char *
generate_token (GError **error)
{
  guint8 random[24];
  g_autofree char *encoded = NULL;

  if (getrandom (random, sizeof random, 0) != sizeof random)
    {
      int saved_errno = errno;

      g_set_error (error, KP_GATEWAY_ERROR, KP_GATEWAY_ERROR_TOKEN,
                   "Cannot make an access token: %s", g_strerror (saved_errno));
      return NULL;
    }

  encoded = g_base64_encode (random, sizeof random);
  explicit_bzero (random, sizeof random);

  /* URL-safe, so the token can go anywhere a client puts an API key. */
  g_strdelimit (encoded, "+", '-');
  g_strdelimit (encoded, "/", '_');

  return g_strconcat ("kp-", encoded, NULL);
}

static char *
token_file_path (KpGateway *self)
{
  return self->config_dir ? g_build_filename (self->config_dir, "token", NULL) : NULL;
}

static gboolean
write_token_file (KpGateway   *self,
                  const char  *token,
                  GError     **error)
{
  g_autofree char *path = token_file_path (self);
  g_autofree char *line = NULL;
  g_autoptr(GError) local_error = NULL;
  gboolean ok;

  if (path == NULL || g_mkdir_with_parents (self->config_dir, 0700) != 0)
    {
      g_set_error (error, KP_GATEWAY_ERROR, KP_GATEWAY_ERROR_TOKEN,
                   "Cannot keep the access token: no usable configuration folder");
      return FALSE;
    }

  line = g_strconcat (token, "\n", NULL);
  ok = g_file_set_contents_full (path, line, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0600,
                                 &local_error);
  explicit_bzero (line, strlen (line));
  if (!ok)
    {
      g_set_error (error, KP_GATEWAY_ERROR, KP_GATEWAY_ERROR_TOKEN,
                   "Cannot save the access token: %s", local_error->message);
      return FALSE;
    }

  g_free (self->token_origin);
  self->token_origin = g_steal_pointer (&path);
  return TRUE;
}

static char *
read_token_file (KpGateway *self)
{
  g_autofree char *path = token_file_path (self);
  g_autofree char *contents = NULL;

  if (path == NULL || !g_file_get_contents (path, &contents, NULL, NULL))
    return NULL;
  g_strstrip (contents);
  if (*contents == '\0')
    return NULL;
  return g_steal_pointer (&contents);
}

/* Models ----------------------------------------------------------------- */

/* The model list changes only when providers or keys do, so it is built then
 * and served from memory.
 */
static void
build_models_json (KpGateway *self)
{
  g_autoptr(JsonBuilder) builder = json_builder_new_immutable ();
  g_autoptr(JsonNode) root = NULL;
  GPtrArray *ids = kp_catalog_get_model_ids (self->catalog);
  const char *first = NULL;
  const char *last = NULL;

  /* One list both SDKs read: OpenAI's fields, and Anthropic's (type,
   * display_name, created_at; has_more, first_id, last_id) beside them.
   */
  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "object");
  json_builder_add_string_value (builder, "list");
  json_builder_set_member_name (builder, "data");
  json_builder_begin_array (builder);

  for (guint i = 0; i < ids->len; i++)
    {
      const char *id = g_ptr_array_index (ids, i);
      GPtrArray *offerings = kp_catalog_lookup (self->catalog, id);
      g_autofree char *vendor = g_strndup (id, strchr (id, '/') - id);
      gboolean any = FALSE;

      for (guint j = 0; j < offerings->len && !any; j++)
        {
          const KpOffering *offering = g_ptr_array_index (offerings, j);

          any = kp_gateway_provider_is_usable (self, offering->provider);
        }
      if (!any)
        continue;

      json_builder_begin_object (builder);
      json_builder_set_member_name (builder, "id");
      json_builder_add_string_value (builder, id);
      json_builder_set_member_name (builder, "object");
      json_builder_add_string_value (builder, "model");
      json_builder_set_member_name (builder, "created");
      json_builder_add_int_value (builder, 0);
      json_builder_set_member_name (builder, "owned_by");
      json_builder_add_string_value (builder, vendor);
      json_builder_set_member_name (builder, "type");
      json_builder_add_string_value (builder, "model");
      json_builder_set_member_name (builder, "display_name");
      json_builder_add_string_value (builder, id);
      json_builder_set_member_name (builder, "created_at");
      json_builder_add_string_value (builder, "1970-01-01T00:00:00Z");
      json_builder_set_member_name (builder, "providers");
      json_builder_begin_array (builder);
      for (guint j = 0; j < offerings->len; j++)
        {
          const KpOffering *offering = g_ptr_array_index (offerings, j);

          if (kp_gateway_provider_is_usable (self, offering->provider))
            json_builder_add_string_value (builder, kp_provider_get_id (offering->provider));
        }
      json_builder_end_array (builder);
      json_builder_end_object (builder);
      if (first == NULL)
        first = id;
      last = id;
    }

  json_builder_end_array (builder);
  json_builder_set_member_name (builder, "has_more");
  json_builder_add_boolean_value (builder, FALSE);
  json_builder_set_member_name (builder, "first_id");
  if (first != NULL)
    json_builder_add_string_value (builder, first);
  else
    json_builder_add_null_value (builder);
  json_builder_set_member_name (builder, "last_id");
  if (last != NULL)
    json_builder_add_string_value (builder, last);
  else
    json_builder_add_null_value (builder);
  json_builder_end_object (builder);

  root = json_builder_get_root (builder);
  g_free (self->models_json);
  self->models_json = json_to_string (root, FALSE);
  self->models_json_len = strlen (self->models_json);
}

static void
emit_changed (KpGateway *self)
{
  build_models_json (self);
  g_signal_emit (self, signals[CHANGED], 0);
}

/* Loading ----------------------------------------------------------------- */

static KpCredential *
add_credential_from_row (KpGateway             *self,
                         const KpCredentialRow *row)
{
  KpCredential *credential = kp_credential_new_from_row (row);

  g_ptr_array_add (self->credentials, credential);
  return credential;
}

/* Each environment variable that holds a key is a credential with a row of
 * its own, so its state survives restarts; a changed key starts afresh.
 */
static gboolean
load_env_credentials (KpGateway  *self,
                      GPtrArray  *rows,
                      GError    **error)
{
  GPtrArray *providers = kp_catalog_get_providers (self->catalog);

  for (guint i = 0; i < providers->len; i++)
    {
      KpProvider *provider = g_ptr_array_index (providers, i);
      const char * const *env = kp_provider_get_env (provider);
      const char *provider_id = kp_provider_get_id (provider);

      for (guint j = 0; env != NULL && env[j] != NULL; j++)
        {
          g_autofree char *secret = g_strdup (g_getenv (env[j]));
          g_autofree char *fingerprint = NULL;
          KpCredentialRow *found = NULL;
          KpCredential *credential;

          if (secret == NULL || *g_strstrip (secret) == '\0')
            continue;

          fingerprint = kp_secret_fingerprint (secret);
          for (guint k = 0; k < rows->len && found == NULL; k++)
            {
              KpCredentialRow *row = g_ptr_array_index (rows, k);

              if (g_strcmp0 (row->source, "env") == 0 &&
                  g_str_equal (row->provider, provider_id) &&
                  g_strcmp0 (row->env_var, env[j]) == 0)
                found = row;
            }

          if (found == NULL)
            {
              KpCredentialRow fresh = {
                .provider = (char *)provider_id, .label = (char *)env[j], .multiplier = 1.0,
                .enabled = TRUE, .source = (char *)"env", .env_var = (char *)env[j],
                .state = (char *)"ok",
              };

              fresh.id = kp_ledger_add_credential (self->ledger, provider_id, env[j], 1.0, "env",
                                                   env[j], fingerprint, error);
              if (fresh.id == 0)
                return FALSE;
              credential = add_credential_from_row (self, &fresh);
            }
          else
            {
              if (g_strcmp0 (found->fingerprint, fingerprint) != 0)
                {
                  if (!kp_ledger_set_credential_fingerprint (self->ledger, found->id, fingerprint,
                                                             error))
                    return FALSE;
                  g_free (found->state);
                  found->state = g_strdup ("ok");
                  found->state_until = 0;
                  g_clear_pointer (&found->last_error, g_free);
                }
              credential = add_credential_from_row (self, found);
            }

          kp_credential_set_secret (credential, secret);
          explicit_bzero (secret, strlen (secret));
        }
    }

  return TRUE;
}

static gboolean
load_local (KpGateway  *self,
            GError    **error)
{
  g_autofree char *user_providers = NULL;
  g_autofree char *db_path = NULL;
  g_autoptr(GPtrArray) rows = NULL;
  g_autoptr(GHashTable) disabled = NULL;

  if (self->config_dir != NULL)
    user_providers = g_build_filename (self->config_dir, "providers", NULL);
  kp_catalog_load (self->catalog, self->providers_dir, user_providers);

  db_path = g_build_filename (self->data_dir ? self->data_dir : ".", "keypool.db", NULL);
  self->ledger = kp_ledger_open (db_path, error);
  if (self->ledger == NULL)
    return FALSE;

  disabled = kp_ledger_get_disabled_providers (self->ledger, error);
  rows = kp_ledger_list_credentials (self->ledger, error);
  if (disabled == NULL || rows == NULL)
    return FALSE;
  g_hash_table_unref (self->disabled);
  self->disabled = g_steal_pointer (&disabled);

  if (!load_env_credentials (self, rows, error))
    return FALSE;

  /* The last good live model lists replace the files' until the next refresh. */
  if (!kp_refresh_load (self->refresh, error))
    return FALSE;

  /* Keyring credentials get their secret once the keyring answers. */
  for (guint i = 0; i < rows->len; i++)
    {
      KpCredentialRow *row = g_ptr_array_index (rows, i);

      if (g_strcmp0 (row->source, "keyring") == 0)
        add_credential_from_row (self, row);
    }

  return TRUE;
}

static void
on_token_stored (GObject      *object,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  KpGateway *self = g_task_get_source_object (task);
  g_autoptr(GError) error = NULL;
  g_autofree char *path = token_file_path (self);

  if (!kp_vault_store_finish (self->vault, result, &error))
    {
      /* The keyring took no token: keep it in the file instead. */
      g_debug ("Cannot keep the token in the keyring: %s", error->message);
      if (!write_token_file (self, self->token, &error))
        {
          g_task_return_error (task, g_steal_pointer (&error));
          return;
        }
    }
  else
    {
      g_free (self->token_origin);
      self->token_origin = g_strdup ("the keyring");
      /* The token moved into the keyring: no copy stays on disk. */
      if (path != NULL)
        g_unlink (path);
    }

  g_task_return_boolean (task, TRUE);
}

static void
finish_load (KpGateway *self,
             GTask     *task)
{
  g_autoptr(GError) error = NULL;

  build_models_json (self);
  self->loaded = TRUE;

  if (self->token != NULL)
    {
      g_task_return_boolean (task, TRUE);
      return;
    }

  /* A token from an earlier version's file, or a new one. */
  self->token = read_token_file (self);
  if (self->token == NULL)
    self->token = generate_token (&error);
  if (self->token == NULL)
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }

  if (self->keyring_problem == NULL && self->use_keyring)
    {
      kp_vault_store_async (self->vault, "keypool", KP_VAULT_TOKEN, "Keypool access token",
                            self->token, g_task_get_cancellable (task), on_token_stored,
                            g_object_ref (task));
      return;
    }

  if (!write_token_file (self, self->token, &error))
    g_task_return_error (task, g_steal_pointer (&error));
  else
    g_task_return_boolean (task, TRUE);
}

static void
on_vault_loaded (GObject      *object,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  KpGateway *self = g_task_get_source_object (task);
  g_autoptr(GError) error = NULL;
  g_autoptr(GHashTable) secrets = NULL;

  secrets = kp_vault_load_finish (self->vault, result, &error);
  if (secrets == NULL)
    {
      if (g_task_return_error_if_cancelled (task))
        return;
      self->keyring_problem = g_strdup (error->message);
      g_debug ("Keyring unavailable: %s", error->message);
      finish_load (self, task);
      return;
    }

  for (guint i = 0; i < self->credentials->len; i++)
    {
      KpCredential *credential = g_ptr_array_index (self->credentials, i);
      g_autofree char *name = NULL;
      const char *secret;

      if (kp_credential_is_from_env (credential))
        continue;
      name = g_strdup_printf ("%s:%" G_GINT64_FORMAT, kp_credential_get_provider_id (credential),
                              kp_credential_get_id (credential));
      secret = g_hash_table_lookup (secrets, name);
      if (secret != NULL)
        kp_credential_set_secret (credential, secret);
      else
        g_debug ("Key %s has no secret in the keyring", name);
    }

  if (self->token == NULL && g_hash_table_lookup (secrets, KP_VAULT_TOKEN_KEY) != NULL)
    {
      g_autofree char *path = token_file_path (self);

      self->token = g_strdup (g_hash_table_lookup (secrets, KP_VAULT_TOKEN_KEY));
      self->token_origin = g_strdup ("the keyring");
      /* An older copy on disk is no longer needed. */
      if (path != NULL)
        g_unlink (path);
    }

  finish_load (self, task);
}

/**
 * kp_gateway_load_async:
 * @self: a #KpGateway
 * @cancellable: (nullable): a #GCancellable
 * @callback: called when loading is done
 * @user_data: data for @callback
 *
 * Loads the providers, the database, the keys (environment and keyring) and
 * the access token. A keyring that is missing or does not answer is not an
 * error: kp_gateway_get_keyring_problem() says why it could not be used.
 */
void
kp_gateway_load_async (KpGateway           *self,
                       GCancellable        *cancellable,
                       GAsyncReadyCallback  callback,
                       gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  g_autoptr(GError) error = NULL;

  g_return_if_fail (KP_IS_GATEWAY (self));
  g_return_if_fail (!self->loaded);

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, kp_gateway_load_async);

  if (!load_local (self, &error))
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }

  if (!self->use_keyring)
    {
      self->keyring_problem = g_strdup ("turned off with --no-keyring");
      finish_load (self, task);
      return;
    }

  kp_vault_load_async (self->vault, cancellable, on_vault_loaded, g_steal_pointer (&task));
}

gboolean
kp_gateway_load_finish (KpGateway     *self,
                        GAsyncResult  *result,
                        GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

/**
 * kp_gateway_listen:
 * @self: a loaded #KpGateway
 * @error: a location for a #GError
 *
 * Starts serving on 127.0.0.1.
 */
gboolean
kp_gateway_listen (KpGateway  *self,
                   GError    **error)
{
  g_return_val_if_fail (KP_IS_GATEWAY (self), FALSE);
  g_return_val_if_fail (self->loaded, FALSE);
  g_return_val_if_fail (!self->serving, FALSE);

  if (self->session == NULL)
    self->session = soup_session_new_with_options ("max-conns", MAX_CONNS,
                                                   "max-conns-per-host", MAX_CONNS_PER_HOST,
                                                   "timeout", 0,
                                                   "idle-timeout", 60,
                                                   "user-agent", "Keypool/" PACKAGE_VERSION,
                                                   NULL);

  self->server = kp_server_new (self);
  if (!kp_server_listen (self->server, self->port, error))
    {
      g_clear_object (&self->server);
      return FALSE;
    }

  self->started_us = g_get_monotonic_time ();
  self->serving = TRUE;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_SERVING]);
  return TRUE;
}

/**
 * kp_gateway_stop:
 * @self: a #KpGateway
 *
 * Ends every request in flight (a stream gets an error event, never a false
 * end). The relays finish as the main loop runs; wait for
 * kp_gateway_get_n_active() to reach 0 before quitting.
 */
void
kp_gateway_stop (KpGateway *self)
{
  g_autoptr(GPtrArray) relays = g_ptr_array_new_with_free_func (g_object_unref);
  GHashTableIter iter;
  gpointer relay;

  g_return_if_fail (KP_IS_GATEWAY (self));

  if (!self->serving)
    return;
  self->serving = FALSE;
  kp_refresh_stop (self->refresh);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_SERVING]);

  /* Aborting can finish a relay and remove it from the table at once. */
  g_hash_table_iter_init (&iter, self->relays);
  while (g_hash_table_iter_next (&iter, &relay, NULL))
    g_ptr_array_add (relays, g_object_ref (relay));
  for (guint i = 0; i < relays->len; i++)
    kp_relay_abort (g_ptr_array_index (relays, i), "Keypool is shutting down.");
}

gboolean
kp_gateway_is_serving (KpGateway *self)
{
  g_return_val_if_fail (KP_IS_GATEWAY (self), FALSE);
  return self->serving;
}

/* State ------------------------------------------------------------------- */

guint
kp_gateway_get_port (KpGateway *self)
{
  g_return_val_if_fail (KP_IS_GATEWAY (self), 0);

  return self->server ? kp_server_get_port (self->server) : self->port;
}

char *
kp_gateway_dup_base_url (KpGateway *self)
{
  g_return_val_if_fail (KP_IS_GATEWAY (self), NULL);

  return g_strdup_printf ("http://127.0.0.1:%u/v1", kp_gateway_get_port (self));
}

const char *
kp_gateway_get_token (KpGateway *self)
{
  g_return_val_if_fail (KP_IS_GATEWAY (self), NULL);
  return self->token;
}

/**
 * kp_gateway_get_token_origin:
 *
 * Returns: where the token is kept: "the keyring", "KEYPOOL_TOKEN" or a file
 */
const char *
kp_gateway_get_token_origin (KpGateway *self)
{
  g_return_val_if_fail (KP_IS_GATEWAY (self), NULL);
  return self->token_origin;
}

/**
 * kp_gateway_get_keyring_problem:
 *
 * Returns: (nullable): why the keyring cannot be used, or %NULL when it can
 */
const char *
kp_gateway_get_keyring_problem (KpGateway *self)
{
  g_return_val_if_fail (KP_IS_GATEWAY (self), NULL);
  return self->keyring_problem;
}

KpCatalog *
kp_gateway_get_catalog (KpGateway *self)
{
  g_return_val_if_fail (KP_IS_GATEWAY (self), NULL);
  return self->catalog;
}

KpLedger *
kp_gateway_get_ledger (KpGateway *self)
{
  g_return_val_if_fail (KP_IS_GATEWAY (self), NULL);
  return self->ledger;
}

/**
 * kp_gateway_get_refresh:
 *
 * Returns: (transfer none): the catalog refresh: live models, prices and
 *   balances
 */
KpRefresh *
kp_gateway_get_refresh (KpGateway *self)
{
  g_return_val_if_fail (KP_IS_GATEWAY (self), NULL);
  return self->refresh;
}

SoupSession *
kp_gateway_get_session (KpGateway *self)
{
  g_return_val_if_fail (KP_IS_GATEWAY (self), NULL);
  return self->session;
}

guint
kp_gateway_get_n_active (KpGateway *self)
{
  g_return_val_if_fail (KP_IS_GATEWAY (self), 0);
  return g_hash_table_size (self->relays);
}

/**
 * kp_gateway_get_credentials:
 *
 * Returns: (transfer none) (element-type KpCredential): every key
 */
GPtrArray *
kp_gateway_get_credentials (KpGateway *self)
{
  g_return_val_if_fail (KP_IS_GATEWAY (self), NULL);
  return self->credentials;
}

KpCredential *
kp_gateway_find_credential (KpGateway *self,
                            gint64     id)
{
  g_return_val_if_fail (KP_IS_GATEWAY (self), NULL);

  for (guint i = 0; i < self->credentials->len; i++)
    {
      KpCredential *credential = g_ptr_array_index (self->credentials, i);

      if (kp_credential_get_id (credential) == id)
        return credential;
    }
  return NULL;
}

gboolean
kp_gateway_provider_is_enabled (KpGateway  *self,
                                KpProvider *provider)
{
  g_return_val_if_fail (KP_IS_GATEWAY (self), FALSE);
  return !g_hash_table_contains (self->disabled, kp_provider_get_id (provider));
}

/**
 * kp_gateway_count_keys:
 *
 * Returns: how many keys the provider has (usable now or not)
 */
guint
kp_gateway_count_keys (KpGateway  *self,
                       KpProvider *provider)
{
  const char *id = kp_provider_get_id (provider);
  guint n = 0;

  g_return_val_if_fail (KP_IS_GATEWAY (self), 0);

  for (guint i = 0; i < self->credentials->len; i++)
    {
      KpCredential *credential = g_ptr_array_index (self->credentials, i);

      if (g_str_equal (kp_credential_get_provider_id (credential), id) &&
          kp_credential_get_secret (credential) != NULL)
        n++;
    }
  return n;
}

gboolean
kp_gateway_provider_is_usable (KpGateway  *self,
                               KpProvider *provider)
{
  g_return_val_if_fail (KP_IS_GATEWAY (self), FALSE);
  g_return_val_if_fail (KP_IS_PROVIDER (provider), FALSE);

  if (!kp_gateway_provider_is_enabled (self, provider))
    return FALSE;
  return !kp_provider_get_requires_key (provider) || kp_gateway_count_keys (self, provider) > 0;
}

static void
exclusion_free (gpointer data)
{
  KpExclusion *exclusion = data;

  g_free (exclusion->provider_id);
  g_free (exclusion->reason);
  g_free (exclusion->kind);
  g_free (exclusion);
}

static void G_GNUC_PRINTF (6, 7)
exclude (KpPlan     *plan,
         const char *provider_id,
         gint64      credential_id,
         const char *kind,
         gint64      until,
         const char *format,
         ...)
{
  KpExclusion *exclusion = g_new0 (KpExclusion, 1);
  va_list args;

  va_start (args, format);
  exclusion->reason = g_strdup_vprintf (format, args);
  va_end (args);
  exclusion->provider_id = g_strdup (provider_id);
  exclusion->credential_id = credential_id;
  exclusion->kind = g_strdup (kind);
  exclusion->until = until;
  g_ptr_array_add (plan->excluded, exclusion);
}

static char *
format_time (gint64 unix_s)
{
  g_autoptr(GDateTime) when = g_date_time_new_from_unix_local (unix_s);

  return when ? g_date_time_format (when, "%H:%M:%S") : g_strdup ("?");
}

static char *
suppression_key (const KpOffering *offering)
{
  return g_strconcat (kp_provider_get_id (offering->provider), "\n", offering->model_id, NULL);
}

/* Why a key cannot be used now, or NULL when it can. */
static void
exclude_credential (KpPlan       *plan,
                    KpCredential *credential,
                    gint64        now)
{
  const char *provider_id = kp_credential_get_provider_id (credential);
  gint64 id = kp_credential_get_id (credential);
  const char *label = kp_credential_get_label (credential);
  const char *last_error = kp_credential_get_last_error (credential);
  KpCredentialState state = kp_credential_get_state (credential, now);
  gint64 until = kp_credential_get_state_until (credential);
  g_autofree char *when = until > 0 ? format_time (until) : NULL;

  if (!kp_credential_get_enabled (credential))
    exclude (plan, provider_id, id, "off", 0, "key %" G_GINT64_FORMAT " “%s” is switched off", id, label);
  else if (kp_credential_get_secret (credential) == NULL)
    exclude (plan, provider_id, id, "no-key", 0,
             "key %" G_GINT64_FORMAT " “%s” is not available (keyring locked or unavailable)", id, label);
  else if (state == KP_CREDENTIAL_COOLING)
    exclude (plan, provider_id, id, "cooling", until,
             "key %" G_GINT64_FORMAT " “%s” is cooling down until %s%s%s", id, label, when,
             last_error ? ": " : "", last_error ? last_error : "");
  else if (state == KP_CREDENTIAL_EXHAUSTED)
    exclude (plan, provider_id, id, "exhausted", until,
             "key %" G_GINT64_FORMAT " “%s” is out of quota%s%s%s%s", id, label,
             when ? " until " : "", when ? when : "",
             last_error ? ": " : "", last_error ? last_error : "");
  else if (state == KP_CREDENTIAL_INVALID)
    exclude (plan, provider_id, id, "invalid", 0,
             "key %" G_GINT64_FORMAT " “%s” was refused by the provider%s%s", id, label,
             last_error ? ": " : "", last_error ? last_error : "");
}

static int
compare_routes (gconstpointer a,
                gconstpointer b)
{
  const KpRoute *ra = a;
  const KpRoute *rb = b;
  gboolean pa = ra->expected_usd >= 0;
  gboolean pb = rb->expected_usd >= 0;
  guint fa, fb;

  /* Unpriced offerings come after every priced one: never treated as free. */
  if (pa != pb)
    return pa ? -1 : 1;
  if (pa && ra->expected_usd != rb->expected_usd)
    return ra->expected_usd < rb->expected_usd ? -1 : 1;

  /* Then health: a key that has been failing goes after one that has not. */
  fa = ra->credential ? kp_credential_get_failures (ra->credential) : 0;
  fb = rb->credential ? kp_credential_get_failures (rb->credential) : 0;
  return fa < fb ? -1 : fa > fb ? 1 : 0;
}

static void
route_clear (gpointer data)
{
  KpRoute *route = data;

  g_clear_object (&route->credential);
  g_clear_object (&route->provider);
}

/**
 * kp_gateway_resolve:
 * @self: a #KpGateway
 * @model: what the client asked for: a canonical “vendor/model” (any case),
 *   an alias, a bare name that names one model, or a pin “provider:model”
 *   where the model may also be that provider's own name for it
 * @providers: (inout) (nullable): the providers the request may use; a pin
 *   narrows it to its provider
 *
 * Returns: (transfer container) (nullable) (element-type KpOffering): the
 *   offerings of the model, or %NULL when nobody serves it
 */
GPtrArray *
kp_gateway_resolve (KpGateway   *self,
                    const char  *model,
                    GStrv       *providers)
{
  const char *colon = strchr (model, ':');
  GPtrArray *offerings;

  g_return_val_if_fail (KP_IS_GATEWAY (self), NULL);
  g_return_val_if_fail (model != NULL, NULL);

  /* Only a known provider id before the colon makes a pin: model names such
   * as "qwen2.5-coder:7b" or "…:free" have colons of their own.
   */
  if (colon != NULL)
    {
      g_autofree char *provider_id = g_strndup (model, colon - model);
      KpProvider *provider = kp_catalog_get_provider (self->catalog, provider_id);
      const char *name = colon + 1;

      if (provider != NULL)
        {
          if (providers != NULL)
            {
              g_strfreev (*providers);
              *providers = g_strdupv ((char *[]) { provider_id, NULL });
            }

          offerings = kp_catalog_lookup (self->catalog, name);
          if (offerings != NULL)
            return g_ptr_array_ref (offerings);

          for (guint i = 0; i < kp_provider_get_n_offerings (provider); i++)
            {
              const KpOffering *offering = kp_provider_get_offering (provider, i);

              if (g_ascii_strcasecmp (offering->upstream_id, name) == 0)
                {
                  GPtrArray *single = g_ptr_array_new ();

                  g_ptr_array_add (single, (gpointer)offering);
                  return single;
                }
            }
          return NULL;
        }
    }

  offerings = kp_catalog_lookup (self->catalog, model);
  return offerings ? g_ptr_array_ref (offerings) : NULL;
}

/**
 * kp_gateway_plan:
 * @self: a #KpGateway
 * @offerings: (element-type KpOffering): the offerings of one model
 * @request: the request's size and restrictions
 *
 * Expands each offering of an enabled provider by its usable keys, orders
 * the routes by the request's expected cost (input and output price × the
 * key's multiplier), then health, and lets routes that tie take turns at the
 * front so that load spreads over equal keys. Everything left out is listed
 * with the reason.
 *
 * Returns: (transfer full): the plan
 */
KpPlan *
kp_gateway_plan (KpGateway            *self,
                 GPtrArray            *offerings,
                 const KpRouteRequest *request)
{
  KpPlan *plan = g_new0 (KpPlan, 1);
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;
  guint run = 1;

  g_return_val_if_fail (KP_IS_GATEWAY (self), plan);

  plan->routes = g_array_new (FALSE, TRUE, sizeof (KpRoute));
  g_array_set_clear_func (plan->routes, route_clear);
  plan->excluded = g_ptr_array_new_with_free_func (exclusion_free);

  for (guint i = 0; i < offerings->len; i++)
    {
      const KpOffering *offering = g_ptr_array_index (offerings, i);
      KpProvider *provider = offering->provider;
      const char *provider_id = kp_provider_get_id (provider);
      g_autofree char *key = suppression_key (offering);
      gint64 suppressed = GPOINTER_TO_SIZE (g_hash_table_lookup (self->suppressed, key));
      gint64 busy = GPOINTER_TO_SIZE (g_hash_table_lookup (self->busy, key));
      double base = -1;
      guint keys = 0;

      if (request->providers != NULL && !g_strv_contains (request->providers, provider_id))
        {
          exclude (plan, provider_id, 0, "pinned", 0, "not among the providers the request named");
          continue;
        }
      if (!kp_gateway_provider_is_enabled (self, provider))
        {
          exclude (plan, provider_id, 0, "off", 0, "provider is switched off");
          continue;
        }
      if (suppressed > now)
        {
          g_autofree char *when = format_time (suppressed);

          exclude (plan, provider_id, 0, "missing", suppressed,
                   "said it does not have this model; not tried again until %s", when);
          continue;
        }
      if (busy > now)
        {
          g_autofree char *when = format_time (busy);

          exclude (plan, provider_id, 0, "busy", busy,
                   "said it is overloaded; not tried again until %s", when);
          continue;
        }

      if (kp_offering_has_price (offering))
        base = (request->prompt_tokens * offering->input +
                request->output_tokens * offering->output) / 1e6;

      if (!kp_provider_get_requires_key (provider))
        {
          KpRoute route = { offering, NULL, base, 0, g_object_ref (provider) };

          g_array_append_val (plan->routes, route);
          continue;
        }

      for (guint j = 0; j < self->credentials->len; j++)
        {
          KpCredential *credential = g_ptr_array_index (self->credentials, j);

          if (!g_str_equal (kp_credential_get_provider_id (credential), provider_id))
            continue;
          keys++;
          if (kp_credential_is_usable (credential, now))
            {
              KpRoute route = {
                offering, g_object_ref (credential),
                base >= 0 ? base * kp_credential_get_multiplier (credential) : -1, 0,
                g_object_ref (provider)
              };

              g_array_append_val (plan->routes, route);
            }
          else
            exclude_credential (plan, credential, now);
        }

      if (keys == 0)
        {
          const char * const *env = kp_provider_get_env (provider);

          exclude (plan, provider_id, 0, "no-key", 0, "no key (add one with “keypool keys add %s”%s%s)",
                   provider_id, env && env[0] ? " or set " : "", env && env[0] ? env[0] : "");
        }
    }

  g_array_sort (plan->routes, compare_routes);

  /* Rotate the leading run of routes that tie on price and health. */
  while (run < plan->routes->len &&
         compare_routes (&g_array_index (plan->routes, KpRoute, 0),
                         &g_array_index (plan->routes, KpRoute, run)) == 0)
    run++;
  if (run > 1)
    {
      guint shift = self->rotation++ % run;
      g_autofree KpRoute *copy = g_memdup2 (plan->routes->data, run * sizeof (KpRoute));

      for (guint i = 0; i < run; i++)
        g_array_index (plan->routes, KpRoute, i) = copy[(i + shift) % run];
    }

  for (guint i = 0; i < plan->routes->len; i++)
    g_array_index (plan->routes, KpRoute, i).rank = i + 1;

  return plan;
}

void
kp_plan_free (KpPlan *plan)
{
  if (plan == NULL)
    return;
  g_clear_pointer (&plan->routes, g_array_unref);
  g_clear_pointer (&plan->excluded, g_ptr_array_unref);
  g_free (plan);
}

/**
 * kp_plan_describe_empty:
 *
 * Returns: (transfer full): what is missing for a plan without routes, as
 *   one sentence a person can act on
 */
char *
kp_plan_describe_empty (KpPlan     *plan,
                        const char *model)
{
  g_autoptr(GString) no_key = g_string_new (NULL);
  gint64 soonest = 0;
  guint waiting = 0, refused = 0, off = 0, pinned = 0;

  for (guint i = 0; i < plan->excluded->len; i++)
    {
      KpExclusion *exclusion = g_ptr_array_index (plan->excluded, i);

      if (g_str_equal (exclusion->kind, "no-key"))
        g_string_append_printf (no_key, "%s%s: %s", no_key->len ? "; " : "", exclusion->provider_id,
                                exclusion->reason);
      else if (g_str_equal (exclusion->kind, "cooling") || g_str_equal (exclusion->kind, "exhausted") ||
               g_str_equal (exclusion->kind, "missing"))
        {
          waiting++;
          if (exclusion->until > 0 && (soonest == 0 || exclusion->until < soonest))
            soonest = exclusion->until;
        }
      else if (g_str_equal (exclusion->kind, "invalid"))
        refused++;
      else if (g_str_equal (exclusion->kind, "pinned"))
        pinned++;
      else
        off++;
    }

  if (waiting > 0)
    {
      g_autofree char *when = soonest ? format_time (soonest) : NULL;

      return g_strdup_printf ("Every key that serves “%s” is resting after errors (%u cooling down or "
                              "out of quota%s%s). %s%s%s“keypool route %s” shows each one.",
                              model, waiting, refused ? ", some refused" : "",
                              no_key->len ? "; other providers have no key" : "",
                              when ? "The first is back at " : "", when ? when : "",
                              when ? ". " : "", model);
    }
  if (refused > 0)
    return g_strdup_printf ("Every key that serves “%s” was refused by its provider. Replace them "
                            "with “keypool keys add”; “keypool keys list” shows the errors.", model);
  if (no_key->len > 0)
    return g_strdup_printf ("No key for any provider serving “%s”. %s.", model, no_key->str);
  if (pinned > 0 && off == 0)
    return g_strdup_printf ("None of the providers the request named serves “%s”.", model);
  return g_strdup_printf ("Every provider serving “%s” is switched off. Turn one on with "
                          "“keypool providers enable ID”.", model);
}

static void
persist_state (KpGateway    *self,
               KpCredential *credential)
{
  g_autoptr(GError) error = NULL;

  if (!kp_ledger_set_credential_state (self->ledger, kp_credential_get_id (credential),
                                       kp_credential_state_to_string (
                                         kp_credential_get_state (credential, 0)),
                                       kp_credential_get_state_until (credential),
                                       kp_credential_get_last_error (credential), &error))
    g_warning ("A key’s state was not saved: %s", error->message);
}

/**
 * kp_gateway_note_failure:
 * @self: a #KpGateway
 * @route: the route that failed
 * @failure: how
 *
 * Puts the route's key (or offering) out of use for as long as the failure
 * class says; the state is saved, so it survives a restart, and it ends by
 * itself at its time.
 */
void
kp_gateway_note_failure (KpGateway       *self,
                         const KpRoute   *route,
                         const KpFailure *failure)
{
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;
  KpCredential *credential = route->credential;
  g_autofree char *message = NULL;
  guint streak;
  gint64 wait;

  g_return_if_fail (KP_IS_GATEWAY (self));

  message = g_strdup_printf ("%s%s%s", kp_failure_class_to_string (failure->klass),
                             failure->message ? ": " : "", failure->message ? failure->message : "");
  if (credential != NULL)
    {
      g_autofree char *clean = kp_secret_scrub (message, kp_credential_get_secret (credential));

      g_free (message);
      message = g_steal_pointer (&clean);
    }

  switch (failure->klass)
    {
    case KP_FAILURE_MODEL_MISSING:
      g_hash_table_replace (self->suppressed, suppression_key (route->offering),
                            GSIZE_TO_POINTER (now + MODEL_MISSING_S));
      return;

    case KP_FAILURE_RATE_LIMITED:
      if (credential == NULL)
        return;
      kp_credential_note_failure (credential);
      wait = failure->retry_after >= 0 ? failure->retry_after : RATE_LIMIT_DEFAULT_S;
      kp_credential_set_state (credential, KP_CREDENTIAL_COOLING,
                               now + CLAMP (wait, 1, RATE_LIMIT_MAX_S), message);
      break;

    case KP_FAILURE_QUOTA:
      if (credential == NULL)
        return;
      kp_credential_note_failure (credential);
      wait = failure->retry_after > 0 ? failure->retry_after : QUOTA_DEFAULT_S;
      kp_credential_set_state (credential, KP_CREDENTIAL_EXHAUSTED, now + wait, message);
      break;

    case KP_FAILURE_AUTH:
      if (credential == NULL)
        return;
      kp_credential_note_failure (credential);
      kp_credential_set_state (credential, KP_CREDENTIAL_INVALID, 0, message);
      break;

    case KP_FAILURE_DOWN:
      if (failure->overloaded)
        {
          /* The provider is busy for everyone: rest the offering a moment,
           * and leave the key's record alone.
           */
          g_hash_table_replace (self->busy, suppression_key (route->offering),
                                GSIZE_TO_POINTER (now + DOWN_BASE_S));
          return;
        }
      if (credential == NULL)
        return;
      /* Short, and doubling while it keeps failing. */
      streak = kp_credential_note_failure (credential);
      wait = MIN ((gint64)DOWN_BASE_S << MIN (streak - 1, 10), DOWN_MAX_S);
      kp_credential_set_state (credential, KP_CREDENTIAL_COOLING, now + wait, message);
      break;

    case KP_FAILURE_CLIENT:
    case KP_FAILURE_NONE:
    default:
      return;
    }

  persist_state (self, credential);
  emit_changed (self);
}

void
kp_gateway_note_success (KpGateway     *self,
                         const KpRoute *route)
{
  g_return_if_fail (KP_IS_GATEWAY (self));

  if (route->credential != NULL)
    kp_credential_note_success (route->credential);
}

/**
 * kp_gateway_set_key_options:
 * @multiplier: what the key costs relative to list price, above 0
 * @enabled: whether it may be used at all
 */
gboolean
kp_gateway_set_key_options (KpGateway  *self,
                            gint64      id,
                            double      multiplier,
                            gboolean    enabled,
                            GError    **error)
{
  KpCredential *credential = kp_gateway_find_credential (self, id);

  g_return_val_if_fail (KP_IS_GATEWAY (self), FALSE);

  if (credential == NULL)
    {
      g_set_error (error, KP_GATEWAY_ERROR, KP_GATEWAY_ERROR_NOT_FOUND,
                   "There is no key with id %" G_GINT64_FORMAT "; “keypool keys list” shows them.", id);
      return FALSE;
    }
  if (!(multiplier > 0 && multiplier <= 100))
    {
      g_set_error (error, KP_GATEWAY_ERROR, KP_GATEWAY_ERROR_INVALID,
                   "The multiplier must be above 0 and at most 100.");
      return FALSE;
    }
  if (!kp_ledger_set_credential_options (self->ledger, id, multiplier, enabled, error))
    return FALSE;
  kp_credential_set_options (credential, multiplier, enabled);
  emit_changed (self);
  return TRUE;
}

/**
 * kp_gateway_reset_key:
 *
 * Clears a key's state, so it is tried again at once.
 */
gboolean
kp_gateway_reset_key (KpGateway  *self,
                      gint64      id,
                      GError    **error)
{
  KpCredential *credential = kp_gateway_find_credential (self, id);

  g_return_val_if_fail (KP_IS_GATEWAY (self), FALSE);

  if (credential == NULL)
    {
      g_set_error (error, KP_GATEWAY_ERROR, KP_GATEWAY_ERROR_NOT_FOUND,
                   "There is no key with id %" G_GINT64_FORMAT "; “keypool keys list” shows them.", id);
      return FALSE;
    }
  if (!kp_ledger_set_credential_state (self->ledger, id, "ok", 0, NULL, error))
    return FALSE;
  kp_credential_set_state (credential, KP_CREDENTIAL_OK, 0, NULL);
  kp_credential_note_success (credential);
  emit_changed (self);
  return TRUE;
}

/* What a key's balance, read by the catalog refresh, means for it. */
#define BALANCE_PREFIX "balance: "

/**
 * kp_gateway_note_balance:
 * @self: a #KpGateway
 * @credential: the key the balance was read with
 * @balance: what is left, in @currency
 * @currency: the currency the provider reported
 * @available: whether the provider says the account may be used
 *
 * A balance at or below zero puts the key out of use (exhausted, until a
 * later balance or a reset says otherwise); a positive one brings back a
 * key that was exhausted.
 */
void
kp_gateway_note_balance (KpGateway    *self,
                         KpCredential *credential,
                         double        balance,
                         const char   *currency,
                         gboolean      available)
{
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;
  KpCredentialState state;

  g_return_if_fail (KP_IS_GATEWAY (self));
  g_return_if_fail (KP_IS_CREDENTIAL (credential));

  /* The key may have been removed while its balance was on the way. */
  if (kp_gateway_find_credential (self, kp_credential_get_id (credential)) != credential)
    return;

  state = kp_credential_get_state (credential, now);
  if (balance <= 0 || !available)
    {
      g_autofree char *when = format_time (now);
      g_autofree char *message = g_strdup_printf (BALANCE_PREFIX "%.2f %s left (read at %s)%s",
                                                  balance, currency ? currency : "", when,
                                                  available ? "" : "; the provider says the "
                                                                   "account cannot be used");

      kp_credential_set_state (credential, KP_CREDENTIAL_EXHAUSTED, 0, message);
    }
  else if (state == KP_CREDENTIAL_EXHAUSTED)
    {
      g_debug ("Key %" G_GINT64_FORMAT " has a balance again", kp_credential_get_id (credential));
      kp_credential_set_state (credential, KP_CREDENTIAL_OK, 0, NULL);
      kp_credential_note_success (credential);
    }
  else
    return;

  persist_state (self, credential);
  emit_changed (self);
}

/**
 * kp_gateway_catalog_changed:
 *
 * Called by the refresh when a provider's models or prices changed.
 */
void
kp_gateway_catalog_changed (KpGateway *self)
{
  g_return_if_fail (KP_IS_GATEWAY (self));

  emit_changed (self);
}

/* Management -------------------------------------------------------------- */

gboolean
kp_gateway_set_provider_enabled (KpGateway   *self,
                                 const char  *provider_id,
                                 gboolean     enabled,
                                 GError     **error)
{
  g_return_val_if_fail (KP_IS_GATEWAY (self), FALSE);

  if (kp_catalog_get_provider (self->catalog, provider_id) == NULL)
    {
      g_set_error (error, KP_GATEWAY_ERROR, KP_GATEWAY_ERROR_NOT_FOUND,
                   "There is no provider “%s”; “keypool providers” lists them.", provider_id);
      return FALSE;
    }

  if (!kp_ledger_set_provider_enabled (self->ledger, provider_id, enabled, error))
    return FALSE;

  if (enabled)
    g_hash_table_remove (self->disabled, provider_id);
  else
    g_hash_table_add (self->disabled, g_strdup (provider_id));

  emit_changed (self);
  return TRUE;
}

typedef struct
{
  char         *provider_id;
  char         *label;
  double        multiplier;
  char         *secret;
  char         *report;
  KpCredential *credential;
} AddKey;

static void
add_key_free (AddKey *add)
{
  g_free (add->provider_id);
  g_free (add->label);
  wipe_string (&add->secret);
  g_free (add->report);
  g_clear_object (&add->credential);
  g_free (add);
}

static void
on_key_stored (GObject      *object,
               GAsyncResult *result,
               gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  KpGateway *self = g_task_get_source_object (task);
  AddKey *add = g_task_get_task_data (task);
  g_autoptr(GError) error = NULL;

  if (!kp_vault_store_finish (self->vault, result, &error))
    {
      /* Nothing half-done stays behind: the row goes with the secret. */
      kp_ledger_remove_credential (self->ledger, kp_credential_get_id (add->credential), NULL);
      g_task_return_new_error (task, KP_GATEWAY_ERROR, KP_GATEWAY_ERROR_KEYRING,
                               "The key was not saved: %s.", error->message);
      return;
    }

  kp_credential_set_secret (add->credential, add->secret);
  g_ptr_array_add (self->credentials, g_object_ref (add->credential));
  emit_changed (self);
  g_task_return_pointer (task, g_object_ref (add->credential), g_object_unref);
}

static void
store_new_key (GTask *task)
{
  KpGateway *self = g_task_get_source_object (task);
  AddKey *add = g_task_get_task_data (task);
  KpProvider *provider = kp_catalog_get_provider (self->catalog, add->provider_id);
  g_autoptr(GError) error = NULL;
  g_autofree char *name = NULL;
  g_autofree char *item_label = NULL;
  KpCredentialRow row = {
    .provider = add->provider_id, .label = add->label, .multiplier = add->multiplier,
    .enabled = TRUE, .source = (char *)"keyring", .state = (char *)"ok",
  };

  row.created = g_get_real_time () / G_USEC_PER_SEC;
  row.id = kp_ledger_add_credential (self->ledger, add->provider_id, add->label, add->multiplier,
                                     "keyring", NULL, NULL, &error);
  if (row.id == 0)
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  add->credential = kp_credential_new_from_row (&row);

  name = g_strdup_printf ("%" G_GINT64_FORMAT, row.id);
  item_label = g_strdup_printf ("Keypool: %s key%s%s", kp_provider_get_name (provider),
                                *add->label ? " " : "", add->label);
  kp_vault_store_async (self->vault, add->provider_id, name, item_label, add->secret,
                        g_task_get_cancellable (task), on_key_stored, g_object_ref (task));
}

static void
on_key_checked (GObject      *object,
                GAsyncResult *result,
                gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  KpGateway *self = g_task_get_source_object (task);
  AddKey *add = g_task_get_task_data (task);
  KpProvider *provider = kp_catalog_get_provider (self->catalog, add->provider_id);
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) body = NULL;
  SoupMessage *msg = soup_session_get_async_result_message (SOUP_SESSION (object), result);
  guint status;

  body = soup_session_send_and_read_finish (SOUP_SESSION (object), result, &error);
  if (body == NULL)
    {
      g_task_return_new_error (task, KP_GATEWAY_ERROR, KP_GATEWAY_ERROR_KEY_REJECTED,
                               "Could not check the key: %s is unreachable (%s). "
                               "Use --no-check to save it anyway.",
                               kp_provider_get_name (provider), error->message);
      return;
    }

  status = soup_message_get_status (msg);
  if (status == 401 || status == 403)
    {
      gsize len;
      const char *data = g_bytes_get_data (body, &len);
      g_autofree char *text = g_strndup (data, MIN (len, 300));
      g_autofree char *clean = kp_secret_scrub (text, add->secret);

      g_task_return_new_error (task, KP_GATEWAY_ERROR, KP_GATEWAY_ERROR_KEY_REJECTED,
                               "%s rejected the key (HTTP %u): %s",
                               kp_provider_get_name (provider), status, clean);
      return;
    }
  if (!SOUP_STATUS_IS_SUCCESSFUL (status))
    {
      g_task_return_new_error (task, KP_GATEWAY_ERROR, KP_GATEWAY_ERROR_KEY_REJECTED,
                               "Could not check the key: %s answered HTTP %u. "
                               "Use --no-check to save it anyway.",
                               kp_provider_get_name (provider), status);
      return;
    }

  add->report = g_strdup_printf ("%s accepted the key.", kp_provider_get_name (provider));
  store_new_key (task);
}

/**
 * kp_gateway_add_key_async:
 * @self: a loaded #KpGateway
 * @provider_id: the provider
 * @label: a name for the key
 * @multiplier: what the key costs relative to list price (1.0 = list price)
 * @secret: the key
 * @check: ask the provider (its models list) whether it takes the key first
 *
 * Saves a key in the keyring and its details in the database; the key is
 * routable at once.
 */
void
kp_gateway_add_key_async (KpGateway           *self,
                          const char          *provider_id,
                          const char          *label,
                          double               multiplier,
                          const char          *secret,
                          gboolean             check,
                          GCancellable        *cancellable,
                          GAsyncReadyCallback  callback,
                          gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  KpProvider *provider;
  AddKey *add;

  g_return_if_fail (KP_IS_GATEWAY (self));
  g_return_if_fail (provider_id != NULL && secret != NULL);

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, kp_gateway_add_key_async);

  provider = kp_catalog_get_provider (self->catalog, provider_id);
  if (provider == NULL)
    {
      g_task_return_new_error (task, KP_GATEWAY_ERROR, KP_GATEWAY_ERROR_NOT_FOUND,
                               "There is no provider “%s”; “keypool providers” lists them.",
                               provider_id);
      return;
    }
  if (!(multiplier > 0 && multiplier <= 100))
    {
      g_task_return_new_error (task, KP_GATEWAY_ERROR, KP_GATEWAY_ERROR_INVALID,
                               "The multiplier must be above 0 and at most 100.");
      return;
    }
  if (*secret == '\0' || strchr (secret, '\n') != NULL || strchr (secret, ' ') != NULL)
    {
      g_task_return_new_error (task, KP_GATEWAY_ERROR, KP_GATEWAY_ERROR_INVALID,
                               "That does not look like an API key: it is empty or has spaces.");
      return;
    }
  if (self->keyring_problem != NULL)
    {
      g_task_return_new_error (task, KP_GATEWAY_ERROR, KP_GATEWAY_ERROR_KEYRING,
                               "The key was not saved: the keyring is unavailable (%s). "
                               "Without it, give keys in environment variables such as %s.",
                               self->keyring_problem,
                               kp_provider_get_env (provider)[0] ? kp_provider_get_env (provider)[0]
                                                                 : "the provider names");
      return;
    }

  add = g_new0 (AddKey, 1);
  add->provider_id = g_strdup (provider_id);
  add->label = g_strdup (label ? label : "");
  add->multiplier = multiplier;
  add->secret = g_strdup (secret);
  g_task_set_task_data (task, add, (GDestroyNotify)add_key_free);

  if (check)
    {
      g_autofree char *url = NULL;
      g_autoptr(SoupMessage) msg = NULL;

      /* The model list costs nothing; a provider without one gets a chat
       * request for a single token of its first model.
       */
      if (kp_provider_get_check_with_chat (provider) && kp_provider_get_n_offerings (provider) > 0)
        {
          g_autofree char *body = NULL;
          g_autoptr(GBytes) bytes = NULL;
          g_autoptr(JsonBuilder) builder = json_builder_new_immutable ();
          g_autoptr(JsonNode) root = NULL;
          gsize len;

          json_builder_begin_object (builder);
          json_builder_set_member_name (builder, "model");
          json_builder_add_string_value (builder, kp_provider_get_offering (provider, 0)->upstream_id);
          json_builder_set_member_name (builder, "max_tokens");
          json_builder_add_int_value (builder, 1);
          json_builder_set_member_name (builder, "messages");
          json_builder_begin_array (builder);
          json_builder_begin_object (builder);
          json_builder_set_member_name (builder, "role");
          json_builder_add_string_value (builder, "user");
          json_builder_set_member_name (builder, "content");
          json_builder_add_string_value (builder, "ping");
          json_builder_end_object (builder);
          json_builder_end_array (builder);
          json_builder_end_object (builder);
          root = json_builder_get_root (builder);
          body = json_to_string (root, FALSE);
          len = strlen (body);
          bytes = g_bytes_new_take (g_steal_pointer (&body), len);

          url = g_uri_to_string (kp_provider_get_chat_uri (provider));
          msg = soup_message_new (SOUP_METHOD_POST, url);
          soup_message_set_request_body_from_bytes (msg, "application/json", bytes);
        }
      else
        {
          url = g_strconcat (kp_provider_get_base_url (provider), "/models", NULL);
          msg = soup_message_new (SOUP_METHOD_GET, url);
        }

      if (self->session == NULL)
        self->session = soup_session_new_with_options ("timeout", KEY_CHECK_TIMEOUT_S,
                                                       "user-agent", "Keypool/" PACKAGE_VERSION,
                                                       NULL);
      kp_provider_apply_headers (provider, soup_message_get_request_headers (msg), secret);
      soup_session_send_and_read_async (self->session, msg, G_PRIORITY_DEFAULT, cancellable,
                                        on_key_checked, g_steal_pointer (&task));
      return;
    }

  store_new_key (g_steal_pointer (&task));
}

/**
 * kp_gateway_add_key_finish:
 * @check_report: (out) (optional) (nullable): what the provider said, if checked
 *
 * Returns: (transfer full): the new key, or %NULL with @error set
 */
KpCredential *
kp_gateway_add_key_finish (KpGateway     *self,
                           GAsyncResult  *result,
                           char         **check_report,
                           GError       **error)
{
  AddKey *add;

  g_return_val_if_fail (g_task_is_valid (result, self), NULL);

  add = g_task_get_task_data (G_TASK (result));
  if (check_report != NULL)
    *check_report = add ? g_strdup (add->report) : NULL;
  return g_task_propagate_pointer (G_TASK (result), error);
}

static void
on_key_cleared (GObject      *object,
                GAsyncResult *result,
                gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  KpGateway *self = g_task_get_source_object (task);
  KpCredential *credential = g_task_get_task_data (task);
  g_autoptr(GError) error = NULL;

  if (!kp_vault_clear_finish (self->vault, result, &error))
    {
      g_task_return_new_error (task, KP_GATEWAY_ERROR, KP_GATEWAY_ERROR_KEYRING,
                               "The key was not removed: %s.", error->message);
      return;
    }

  if (!kp_ledger_remove_credential (self->ledger, kp_credential_get_id (credential), &error))
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }

  g_ptr_array_remove (self->credentials, credential);
  emit_changed (self);
  g_task_return_boolean (task, TRUE);
}

void
kp_gateway_remove_key_async (KpGateway           *self,
                             gint64               id,
                             GCancellable        *cancellable,
                             GAsyncReadyCallback  callback,
                             gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  g_autofree char *name = NULL;
  KpCredential *credential;

  g_return_if_fail (KP_IS_GATEWAY (self));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, kp_gateway_remove_key_async);

  credential = kp_gateway_find_credential (self, id);
  if (credential == NULL)
    {
      g_task_return_new_error (task, KP_GATEWAY_ERROR, KP_GATEWAY_ERROR_NOT_FOUND,
                               "There is no key with id %" G_GINT64_FORMAT "; "
                               "“keypool keys list” shows them.", id);
      return;
    }
  if (kp_credential_is_from_env (credential))
    {
      g_task_return_new_error (task, KP_GATEWAY_ERROR, KP_GATEWAY_ERROR_INVALID,
                               "Key %" G_GINT64_FORMAT " comes from the environment variable %s; "
                               "unset it and restart Keypool instead.", id,
                               kp_credential_get_env_var (credential));
      return;
    }
  if (self->keyring_problem != NULL)
    {
      g_task_return_new_error (task, KP_GATEWAY_ERROR, KP_GATEWAY_ERROR_KEYRING,
                               "The key was not removed: the keyring is unavailable (%s).",
                               self->keyring_problem);
      return;
    }

  g_task_set_task_data (task, g_object_ref (credential), g_object_unref);
  name = g_strdup_printf ("%" G_GINT64_FORMAT, id);
  kp_vault_clear_async (self->vault, name, cancellable, on_key_cleared, g_steal_pointer (&task));
}

gboolean
kp_gateway_remove_key_finish (KpGateway     *self,
                              GAsyncResult  *result,
                              GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

static void
on_new_token_stored (GObject      *object,
                     GAsyncResult *result,
                     gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  KpGateway *self = g_task_get_source_object (task);
  char *token = g_task_get_task_data (task);
  g_autoptr(GError) error = NULL;

  if (!kp_vault_store_finish (self->vault, result, &error))
    {
      g_task_return_new_error (task, KP_GATEWAY_ERROR, KP_GATEWAY_ERROR_KEYRING,
                               "The token was not changed: %s.", error->message);
      return;
    }

  wipe_string (&self->token);
  self->token = g_strdup (token);
  emit_changed (self);
  g_task_return_boolean (task, TRUE);
}

/**
 * kp_gateway_regenerate_token_async:
 *
 * Makes a new access token; clients must use it from then on.
 */
void
kp_gateway_regenerate_token_async (KpGateway           *self,
                                   GCancellable        *cancellable,
                                   GAsyncReadyCallback  callback,
                                   gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  g_autoptr(GError) error = NULL;
  char *token;

  g_return_if_fail (KP_IS_GATEWAY (self));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, kp_gateway_regenerate_token_async);

  if (g_strcmp0 (self->token_origin, "KEYPOOL_TOKEN") == 0)
    {
      g_task_return_new_error (task, KP_GATEWAY_ERROR, KP_GATEWAY_ERROR_TOKEN,
                               "The token comes from KEYPOOL_TOKEN; change that variable instead.");
      return;
    }

  token = generate_token (&error);
  if (token == NULL)
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }

  if (self->keyring_problem != NULL)
    {
      gboolean ok = write_token_file (self, token, &error);

      if (ok)
        {
          wipe_string (&self->token);
          self->token = token;
          emit_changed (self);
          g_task_return_boolean (task, TRUE);
        }
      else
        {
          wipe_string (&token);
          g_task_return_error (task, g_steal_pointer (&error));
        }
      return;
    }

  g_task_set_task_data (task, token, (GDestroyNotify)g_free);
  kp_vault_store_async (self->vault, "keypool", KP_VAULT_TOKEN, "Keypool access token", token,
                        cancellable, on_new_token_stored, g_steal_pointer (&task));
}

gboolean
kp_gateway_regenerate_token_finish (KpGateway     *self,
                                    GAsyncResult  *result,
                                    GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

/* For the server and the relay --------------------------------------------- */

gsize
kp_gateway_get_body_limit (KpGateway *self)
{
  return self->body_limit;
}

/**
 * kp_gateway_get_read_caps:
 * @body_cap: (out) (optional): the largest whole answer read from a provider
 * @event_cap: (out) (optional): the largest stream event
 * @list_cap: (out) (optional): the largest model list or balance answer
 */
void
kp_gateway_get_read_caps (KpGateway *self,
                          gsize     *body_cap,
                          gsize     *event_cap,
                          gsize     *list_cap)
{
  g_return_if_fail (KP_IS_GATEWAY (self));

  if (body_cap != NULL)
    *body_cap = self->body_cap;
  if (event_cap != NULL)
    *event_cap = self->event_cap;
  if (list_cap != NULL)
    *list_cap = self->list_cap;
}

/**
 * kp_gateway_set_read_caps:
 *
 * Bounds every read from a provider; 0 keeps a cap as it is.
 */
void
kp_gateway_set_read_caps (KpGateway *self,
                          gsize      body_cap,
                          gsize      event_cap,
                          gsize      list_cap)
{
  g_return_if_fail (KP_IS_GATEWAY (self));

  if (body_cap > 0)
    self->body_cap = body_cap;
  if (event_cap > 0)
    self->event_cap = event_cap;
  if (list_cap > 0)
    self->list_cap = list_cap;
}

void
kp_gateway_get_timeouts (KpGateway *self,
                         guint     *connect_ms,
                         guint     *first_byte_ms,
                         guint     *idle_ms)
{
  *connect_ms = self->connect_ms;
  *first_byte_ms = self->first_byte_ms;
  *idle_ms = self->idle_ms;
}

gboolean
kp_gateway_origin_allowed (KpGateway  *self,
                           const char *origin)
{
  for (guint i = 0; self->allowed_origins[i] != NULL; i++)
    if (g_ascii_strcasecmp (self->allowed_origins[i], origin) == 0)
      return TRUE;
  return FALSE;
}

const char *
kp_gateway_get_models_json (KpGateway *self,
                            gsize     *length)
{
  *length = self->models_json_len;
  return self->models_json;
}

/* "status":"ok", or "degraded" with the ledger's problem as "problem". */
static char *
health_status_json (const char *problem)
{
  g_autoptr(JsonNode) node = NULL;
  g_autofree char *quoted = NULL;

  if (problem == NULL)
    return g_strdup ("\"status\":\"ok\"");
  node = json_node_init_string (json_node_alloc (), problem);
  quoted = json_to_string (node, FALSE);
  return g_strdup_printf ("\"status\":\"degraded\",\"problem\":%s", quoted);
}

char *
kp_gateway_dup_health_json (KpGateway *self)
{
  GPtrArray *providers = kp_catalog_get_providers (self->catalog);
  g_autofree char *status =
    health_status_json (self->ledger ? kp_ledger_get_problem (self->ledger) : NULL);
  guint usable = 0;

  for (guint i = 0; i < providers->len; i++)
    if (kp_gateway_provider_is_usable (self, g_ptr_array_index (providers, i)))
      usable++;

  return g_strdup_printf ("{%s,\"version\":\"%s\",\"uptime_s\":%" G_GINT64_FORMAT
                          ",\"providers\":%u,\"usable_providers\":%u,\"models\":%u,"
                          "\"active_requests\":%u,\"keyring\":%s}",
                          status, PACKAGE_VERSION,
                          (g_get_monotonic_time () - self->started_us) / G_USEC_PER_SEC,
                          providers->len, usable,
                          kp_catalog_get_model_ids (self->catalog)->len,
                          g_hash_table_size (self->relays),
                          self->keyring_problem ? "false" : "true");
}

void
kp_gateway_relay_started (KpGateway *self,
                          KpRelay   *relay)
{
  g_hash_table_add (self->relays, g_object_ref (relay));
}

/* The relay's gateway is the one whose ledger wrote the row. */
static void
on_row_written (GObject      *object,
                GAsyncResult *result,
                gpointer      user_data)
{
  g_autoptr(KpRelay) relay = user_data;
  g_autoptr(GError) error = NULL;
  KpGateway *self = kp_relay_get_gateway (relay);

  /* A row that waits in memory is the ledger's problem to tell, once. */
  if (!kp_ledger_add_request_finish (KP_LEDGER (object), result, &error) &&
      !g_error_matches (error, KP_LEDGER_ERROR, KP_LEDGER_ERROR_PENDING))
    g_warning ("A request was not recorded: %s", error->message);

  if (self != NULL && self->relays != NULL && g_hash_table_remove (self->relays, relay))
    g_signal_emit (self, signals[REQUEST_FINISHED], 0, relay);
  kp_relay_row_written (relay);
}

static void
record (KpGateway *self,
        KpRelay   *relay)
{
  const KpUsage *usage = kp_relay_get_usage (relay);
  KpCredential *credential = kp_relay_get_credential (relay);
  GArray *attempts = kp_relay_get_attempts (relay);
  KpCostSource source;
  gint64 cost = 0;
  KpRequestRow row = { 0 };

  source = kp_relay_get_cost (relay, &cost);

  row.request_id = (char *)kp_relay_get_request_id (relay);
  row.time_ms = kp_relay_get_start_time (relay) / 1000;
  row.api = (char *)kp_relay_get_api (relay);
  row.model = (char *)kp_relay_get_model (relay);
  row.provider = (char *)kp_relay_get_provider_id (relay);
  row.credential_id = credential ? kp_credential_get_id (credential) : 0;
  row.upstream_model = (char *)kp_relay_get_upstream_model (relay);
  row.status = kp_relay_get_status (relay);
  row.outcome = (char *)kp_outcome_to_string (kp_relay_get_outcome (relay));
  row.error = (char *)kp_relay_get_error_message (relay);
  row.attempts = attempts->len;
  row.prompt_tokens = usage->prompt_tokens;
  row.completion_tokens = usage->completion_tokens;
  row.cached_tokens = usage->cached_tokens;
  row.cache_write_tokens = usage->cache_write_tokens;
  row.reasoning_tokens = usage->reasoning_tokens;
  row.cost_nano = cost;
  row.cost_source = (char *)kp_cost_source_to_string (source);
  row.ttfb_ms = kp_relay_get_ttfb_ms (relay);
  row.total_ms = MAX (kp_relay_get_total_ms (relay), 0);
  row.streamed = kp_relay_get_streamed (relay);

  kp_ledger_add_request_async (self->ledger, &row, (const KpAttemptRow *)attempts->data,
                               attempts->len, on_row_written, g_object_ref (relay));
}

/* The relay stays among the active ones until its row is committed, so a
 * shutdown waits for it.
 */
void
kp_gateway_relay_finished (KpGateway *self,
                           KpRelay   *relay)
{
  if (!g_hash_table_contains (self->relays, relay))
    return;

  record (self, relay);
}
