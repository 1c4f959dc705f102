/* kp-gateway.c: the composition root of Keypool's core
 *
 * The gateway owns the catalog, the ledger, the keys and their health, the
 * access token and the upstream session, and serves them through KpServer.
 * It composes the parts and does little itself: kp-planner ranks routes,
 * kp-key-health says what a failure does to a key, kp-access-token keeps
 * the token, and kp-gateway-keys.c manages keys. Loading reads the keyring
 * once (bounded by the vault's timeout); after that, nothing on the request
 * path waits for the keyring or the disk beyond one sqlite insert per
 * request.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include <string.h>

#include "kp-access-token.h"
#include "kp-budgets.h"
#include "kp-clients.h"
#include "kp-gateway-private.h"
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

struct _KpGateway
{
  GObject        parent_instance;

  KpCatalog     *catalog;
  KpVault       *vault;
  KpLedger      *ledger;
  KpRefresh     *refresh;
  KpServer      *server;
  SoupSession   *session;
  SoupSession   *local_session;    /* for providers on this machine: no proxy */
  SoupSession   *auth_session;     /* OAuth token endpoints and account setup */
  GHashTable    *relays;           /* in flight: KpRelay → itself (owned) */
  GPtrArray     *credentials;      /* of KpCredential, by id */
  GHashTable    *disabled;         /* provider ids switched off */
  KpKeyHealth   *health;           /* what failures mean for keys and offerings */
  KpAccessToken *token;            /* what clients must send */
  KpClients     *clients;          /* named client tokens */
  KpBudgets     *budgets;          /* spend limits, with this day's and month's spend */
  guint          rotation;         /* plans with ties so far: equal routes take turns */

  guint          port;
  char          *providers_dir;
  char          *config_dir;
  char          *data_dir;
  char          *keyring_problem;  /* why the keyring cannot be used, or NULL */
  gboolean       use_keyring;
  gboolean       loaded;
  GStrv          allowed_origins;
  gsize          body_limit;
  guint          conns_per_host;   /* Keypool's own pool of upstream connections */
  gsize          body_cap;         /* reads from providers */
  gsize          event_cap;
  gsize          list_cap;
  guint          connect_ms;
  guint          first_byte_ms;
  guint          idle_ms;
  KpClientLimits client_limits;
  gint64         started_us;
  char          *models_json;
  gsize          models_json_len;
  char          *models_usable;    /* the usable providers models_json was built for */
  gboolean       catalog_changed;  /* models_json is out of date whatever is usable */
  guint          models_builds;
  guint          changed_id;       /* a coalesced ::changed to come */
  gint64         changed_us;       /* monotonic time of the last ::changed */
  gboolean       serving;
};

/* Failures and refreshes come in bursts: the faces redraw at most this often. */
#define CHANGED_INTERVAL_MS 200

enum {
  REQUEST_FINISHED,
  CHANGED,
  LOGIN_CODE,
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
kp_gateway_dispose (GObject *object)
{
  KpGateway *self = (KpGateway *)object;

  g_clear_handle_id (&self->changed_id, g_source_remove);
  if (self->refresh != NULL)
    g_object_run_dispose (G_OBJECT (self->refresh));
  g_clear_object (&self->refresh);
  g_clear_object (&self->server);
  g_clear_pointer (&self->relays, g_hash_table_unref);
  if (self->credentials != NULL)
    kp_gateway_stop_auth (self);
  if (self->session != NULL)
    soup_session_abort (self->session);
  g_clear_object (&self->session);
  if (self->local_session != NULL)
    soup_session_abort (self->local_session);
  g_clear_object (&self->local_session);
  if (self->auth_session != NULL)
    soup_session_abort (self->auth_session);
  g_clear_object (&self->auth_session);

  G_OBJECT_CLASS (kp_gateway_parent_class)->dispose (object);
}

static void
kp_gateway_finalize (GObject *object)
{
  KpGateway *self = (KpGateway *)object;

  /* Again: the ledger's problem may have changed since dispose. */
  g_clear_handle_id (&self->changed_id, g_source_remove);
  g_clear_object (&self->catalog);
  g_clear_object (&self->vault);
  g_clear_object (&self->ledger);
  g_clear_pointer (&self->credentials, g_ptr_array_unref);
  g_clear_pointer (&self->disabled, g_hash_table_unref);
  g_clear_object (&self->health);
  g_clear_object (&self->token);
  g_clear_object (&self->clients);
  g_clear_object (&self->budgets);
  g_clear_pointer (&self->providers_dir, g_free);
  g_clear_pointer (&self->config_dir, g_free);
  g_clear_pointer (&self->data_dir, g_free);
  g_clear_pointer (&self->keyring_problem, g_free);
  g_clear_pointer (&self->allowed_origins, g_strfreev);
  g_clear_pointer (&self->models_json, g_free);
  g_clear_pointer (&self->models_usable, g_free);

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
   * Emitted when keys, their states, providers, the catalog, the token or
   * the ledger's problem changed. Changes in quick succession are told
   * together, at most once per 200 ms; the last one is always told.
   */
  signals[CHANGED] =
    g_signal_new ("changed",
                  G_TYPE_FROM_CLASS (klass),
                  G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL,
                  G_TYPE_NONE, 0);

  /**
   * KpGateway::login-code:
   * @provider_id: the provider being signed in to
   * @user_code: the code the user enters
   * @url: the page where it is entered (with the code in it, when the
   *   provider gives such a page)
   *
   * A device sign-in (kp_gateway_login_async() for Qwen Code) has its code:
   * show it to the user. The sign-in then waits for their approval.
   */
  signals[LOGIN_CODE] =
    g_signal_new ("login-code",
                  G_TYPE_FROM_CLASS (klass),
                  G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL,
                  G_TYPE_NONE, 3, G_TYPE_STRING, G_TYPE_STRING, G_TYPE_STRING);
}

static void emit_changed (KpGateway *self);

static void
kp_gateway_init (KpGateway *self)
{
  self->catalog = kp_catalog_new ();
  self->vault = kp_vault_new ();
  self->refresh = kp_refresh_new (self);
  /* relay → the client's address */
  self->relays = g_hash_table_new_full (NULL, NULL, g_object_unref, g_free);
  self->credentials = g_ptr_array_new_with_free_func (g_object_unref);
  self->disabled = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->health = kp_key_health_new ();
  self->token = kp_access_token_new (self->vault);
  self->clients = kp_clients_new (self->vault);
  g_signal_connect_object (self->clients, "changed", G_CALLBACK (emit_changed), self,
                           G_CONNECT_SWAPPED);
  self->budgets = kp_budgets_new (self->catalog, self->clients);
  self->port = KP_GATEWAY_DEFAULT_PORT;
  self->body_limit = KP_GATEWAY_DEFAULT_BODY_LIMIT;
  self->body_cap = KP_GATEWAY_DEFAULT_BODY_CAP;
  self->conns_per_host = MAX_CONNS_PER_HOST;
  self->event_cap = KP_GATEWAY_DEFAULT_EVENT_CAP;
  self->list_cap = KP_GATEWAY_DEFAULT_LIST_CAP;
  self->connect_ms = DEFAULT_CONNECT_MS;
  self->first_byte_ms = DEFAULT_FIRST_BYTE_MS;
  self->idle_ms = DEFAULT_IDLE_MS;
  self->client_limits = (KpClientLimits) KP_CLIENT_LIMITS_DEFAULT;
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
  kp_access_token_set_config_dir (self->token, config_dir);
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

  kp_access_token_set_fixed (self->token, token);
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

/**
 * kp_gateway_set_client_limits:
 *
 * What the local server allows its clients; takes effect at once.
 */
void
kp_gateway_set_client_limits (KpGateway            *self,
                              const KpClientLimits *limits)
{
  g_return_if_fail (KP_IS_GATEWAY (self));
  g_return_if_fail (limits != NULL && limits->max_connections > 0);

  self->client_limits = *limits;
}

void
kp_gateway_set_allowed_origins (KpGateway          *self,
                                const char * const *origins)
{
  g_return_if_fail (KP_IS_GATEWAY (self));

  g_strfreev (self->allowed_origins);
  self->allowed_origins = origins ? g_strdupv ((char **)origins) : g_new0 (char *, 1);
}

/* Models ----------------------------------------------------------------- */

/* The model list changes only when providers or keys do, so it is built then
 * and served from memory.
 */
static gboolean
provider_is_usable (KpProvider *provider,
                    gpointer    user_data)
{
  return kp_gateway_provider_is_usable (user_data, provider);
}

/* The ids of the providers that may serve now: what the model list
 * depends on besides the catalog. A key's state does not change it.
 */
static char *
dup_usable_providers (KpGateway *self)
{
  GPtrArray *providers = kp_catalog_get_providers (self->catalog);
  GString *usable = g_string_new (NULL);

  for (guint i = 0; i < providers->len; i++)
    {
      KpProvider *provider = g_ptr_array_index (providers, i);

      if (kp_gateway_provider_is_usable (self, provider))
        g_string_append_printf (usable, "%s\n", kp_provider_get_id (provider));
    }
  return g_string_free (usable, FALSE);
}

/* Rebuilds the model list only when the catalog or the usable providers
 * changed, not for every failure.
 */
static void
update_models_json (KpGateway *self)
{
  g_autofree char *usable = dup_usable_providers (self);

  if (self->models_json != NULL && !self->catalog_changed &&
      g_strcmp0 (usable, self->models_usable) == 0)
    return;

  g_free (self->models_json);
  self->models_json = kp_catalog_dup_models_json (self->catalog, provider_is_usable, self);
  self->models_json_len = strlen (self->models_json);
  g_free (self->models_usable);
  self->models_usable = g_steal_pointer (&usable);
  self->catalog_changed = FALSE;
  self->models_builds++;
}

static gboolean
emit_changed_now (gpointer data)
{
  KpGateway *self = data;

  self->changed_id = 0;
  self->changed_us = g_get_monotonic_time ();
  g_signal_emit (self, signals[CHANGED], 0);
  return G_SOURCE_REMOVE;
}

/* The model list is brought up to date at once; ::changed is told at once
 * after a quiet moment, else together with what follows, CHANGED_INTERVAL_MS
 * after the last time it was told.
 */
static void
emit_changed (KpGateway *self)
{
  gint64 next_us;
  gint64 now_us = g_get_monotonic_time ();

  update_models_json (self);

  if (self->changed_id != 0)
    return;
  next_us = self->changed_us + CHANGED_INTERVAL_MS * 1000;
  if (self->changed_us == 0 || now_us >= next_us)
    {
      emit_changed_now (self);
      return;
    }
  self->changed_id = g_timeout_add_full (G_PRIORITY_DEFAULT, (next_us - now_us + 999) / 1000,
                                         emit_changed_now, self, NULL);
  g_source_set_static_name (g_main_context_find_source_by_id (NULL, self->changed_id),
                            "[keypool] changed");
}

/* Loading ----------------------------------------------------------------- */

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
  /* The faces show a ledger that cannot write; they learn of it here. */
  g_signal_connect_object (self->ledger, "notify::problem", G_CALLBACK (emit_changed), self,
                           G_CONNECT_SWAPPED);

  disabled = kp_ledger_get_disabled_providers (self->ledger, error);
  rows = kp_ledger_list_credentials (self->ledger, error);
  if (disabled == NULL || rows == NULL)
    return FALSE;
  g_hash_table_unref (self->disabled);
  self->disabled = g_steal_pointer (&disabled);

  if (!kp_gateway_load_env_keys (self, rows, error))
    return FALSE;

  if (!kp_clients_load (self->clients, self->ledger, error) ||
      !kp_budgets_load (self->budgets, self->ledger, error))
    return FALSE;

  /* The last good live model lists replace the files' until the next refresh. */
  if (!kp_refresh_load (self->refresh, error))
    return FALSE;

  /* Keyring credentials get their secret once the keyring answers. */
  for (guint i = 0; i < rows->len; i++)
    {
      KpCredentialRow *row = g_ptr_array_index (rows, i);

      if (g_strcmp0 (row->source, "keyring") == 0)
        {
          KpCredential *credential = kp_credential_new_from_row (row);

          g_ptr_array_add (self->credentials, credential);
          kp_gateway_attach_auth (self, credential);
        }
    }

  return TRUE;
}

static void
on_token_ready (GObject      *object,
                GAsyncResult *result,
                gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  g_autoptr(GError) error = NULL;

  if (!kp_access_token_ensure_finish (KP_ACCESS_TOKEN (object), result, &error))
    g_task_return_error (task, g_steal_pointer (&error));
  else
    g_task_return_boolean (task, TRUE);
}

static void
on_budgets_seeded (GObject      *object,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  GTask *task = user_data;
  KpGateway *self = g_task_get_source_object (task);
  g_autoptr(GError) error = NULL;

  if (!kp_budgets_seed_finish (KP_BUDGETS (object), result, &error))
    {
      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        {
          g_task_return_error (task, g_steal_pointer (&error));
          g_object_unref (task);
          return;
        }
      /* A ledger that cannot be read is told elsewhere; Keypool still serves. */
      g_warning ("Budgets count from $0: the spend so far could not be read: %s", error->message);
    }
  kp_access_token_ensure_async (self->token, self->keyring_problem == NULL && self->use_keyring,
                                g_task_get_cancellable (task), on_token_ready, task);
}

/* Takes @task. */
static void
finish_load (KpGateway *self,
             GTask     *task)
{
  update_models_json (self);
  self->loaded = TRUE;

  /* Budgets know this day's and month's spend before the first request. */
  kp_budgets_seed_async (self->budgets, g_task_get_cancellable (task), on_budgets_seeded, task);
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
  const char *token;

  secrets = kp_vault_load_finish (self->vault, result, &error);
  if (secrets == NULL)
    {
      if (g_task_return_error_if_cancelled (task))
        return;
      self->keyring_problem = g_strdup (error->message);
      kp_clients_set_keyring_problem (self->clients, self->keyring_problem);
      g_debug ("Keyring unavailable: %s", error->message);
      finish_load (self, g_steal_pointer (&task));
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
        {
          kp_credential_set_secret (credential, secret);
          /* An OAuth account gets its first access token now, not when asked. */
          kp_credential_get_token (credential);
        }
      else
        g_debug ("Key %s has no secret in the keyring", name);
    }

  kp_clients_found_secrets (self->clients, secrets);

  token = g_hash_table_lookup (secrets, KP_VAULT_TOKEN_KEY);
  if (token != NULL)
    kp_access_token_found_in_keyring (self->token, token);

  finish_load (self, g_steal_pointer (&task));
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
      kp_clients_set_keyring_problem (self->clients, self->keyring_problem);
      finish_load (self, g_steal_pointer (&task));
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
    self->session = soup_session_new_with_options ("max-conns", MAX (MAX_CONNS, self->conns_per_host),
                                                   "max-conns-per-host", self->conns_per_host,
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
  return kp_access_token_get (self->token);
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
  return kp_access_token_get_origin (self->token);
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

/**
 * kp_gateway_get_clients:
 *
 * Returns: (transfer none): the named client tokens; kp_clients_add_async()
 *   makes one for a tool
 */
KpClients *
kp_gateway_get_clients (KpGateway *self)
{
  g_return_val_if_fail (KP_IS_GATEWAY (self), NULL);
  return self->clients;
}

/**
 * kp_gateway_get_budgets:
 *
 * Returns: (transfer none): the spend limits
 */
KpBudgets *
kp_gateway_get_budgets (KpGateway *self)
{
  g_return_val_if_fail (KP_IS_GATEWAY (self), NULL);
  return self->budgets;
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

/**
 * kp_gateway_get_auth_session:
 *
 * Returns: (transfer none): the session for OAuth token endpoints and
 *   account setup: small requests, a short timeout
 */
SoupSession *
kp_gateway_get_auth_session (KpGateway *self)
{
  g_return_val_if_fail (KP_IS_GATEWAY (self), NULL);

  if (self->auth_session == NULL)
    self->auth_session = soup_session_new_with_options ("timeout", 30,
                                                        "user-agent", "Keypool/" PACKAGE_VERSION,
                                                        NULL);
  return self->auth_session;
}

SoupSession *
kp_gateway_get_session (KpGateway *self)
{
  g_return_val_if_fail (KP_IS_GATEWAY (self), NULL);
  return self->session;
}

static gboolean
uri_is_loopback (GUri *uri)
{
  g_autoptr(GInetAddress) address = NULL;
  const char *host = g_uri_get_host (uri);

  if (host == NULL)
    return FALSE;
  if (g_ascii_strcasecmp (host, "localhost") == 0)
    return TRUE;
  address = g_inet_address_new_from_string (host);
  return address != NULL && g_inet_address_get_is_loopback (address);
}

/**
 * kp_gateway_get_session_for:
 * @uri: the upstream request's URI
 *
 * A provider on this machine (a local model server, a test's mock) needs no
 * proxy. Its requests go through a session of their own without a proxy
 * resolver, with the same limits: libsoup then never asks GIO's default
 * resolver, which loads libproxy and GNOME's proxy settings (GSettings,
 * dconf and their threads, about 2.5 MB) and looks each new connection up
 * in a worker thread.
 *
 * Returns: (transfer none) (nullable): the session for @uri, or %NULL as
 *   kp_gateway_get_session()
 */
SoupSession *
kp_gateway_get_session_for (KpGateway *self,
                            GUri      *uri)
{
  guint timeout_s = 0;
  guint idle_s = 0;

  g_return_val_if_fail (KP_IS_GATEWAY (self), NULL);

  if (self->session == NULL || uri == NULL || !uri_is_loopback (uri))
    return self->session;

  if (self->local_session == NULL)
    {
      g_object_get (self->session, "timeout", &timeout_s, "idle-timeout", &idle_s, NULL);
      self->local_session = soup_session_new_with_options ("max-conns", MAX (MAX_CONNS, self->conns_per_host),
                                                           "max-conns-per-host", self->conns_per_host,
                                                           "timeout", timeout_s,
                                                           "idle-timeout", idle_s,
                                                           "user-agent", "Keypool/" PACKAGE_VERSION,
                                                           "proxy-resolver", NULL,
                                                           NULL);
    }
  return self->local_session;
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

gboolean
kp_gateway_provider_is_enabled (KpGateway  *self,
                                KpProvider *provider)
{
  g_return_val_if_fail (KP_IS_GATEWAY (self), FALSE);
  return !g_hash_table_contains (self->disabled, kp_provider_get_id (provider));
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

/**
 * kp_gateway_resolve:
 * @self: a #KpGateway
 * @model: what the client asked for (see kp_planner_resolve())
 * @providers: (inout) (nullable): the providers the request may use; a pin
 *   narrows it to its provider
 *
 * Returns: (transfer container) (nullable) (element-type KpOffering): the
 *   offerings of the model, or %NULL when nobody serves it
 */
GPtrArray *
kp_gateway_resolve (KpGateway  *self,
                    const char *model,
                    GStrv      *providers)
{
  g_return_val_if_fail (KP_IS_GATEWAY (self), NULL);
  g_return_val_if_fail (model != NULL, NULL);

  return kp_planner_resolve (self->catalog, model, providers);
}

/**
 * kp_gateway_plan:
 * @self: a #KpGateway
 * @offerings: (element-type KpOffering): the offerings of one model
 * @request: the request's size and restrictions
 *
 * Plans the request with the keys, providers and rests as they are now
 * (see kp_planner_plan()); routes that tie take turns from one plan to the
 * next.
 *
 * Returns: (transfer full): the plan
 */
KpPlan *
kp_gateway_plan (KpGateway            *self,
                 GPtrArray            *offerings,
                 const KpRouteRequest *request)
{
  KpPlanContext context = { 0 };
  KpPlan *plan;

  g_return_val_if_fail (KP_IS_GATEWAY (self), NULL);
  g_return_val_if_fail (offerings != NULL, NULL);
  g_return_val_if_fail (request != NULL, NULL);

  context.credentials = self->credentials;
  context.disabled = self->disabled;
  context.health = self->health;
  context.now = kp_key_health_now (self->health);
  context.rotation = self->rotation;

  plan = kp_planner_plan (&context, offerings, request);
  if (plan->tied > 1)
    self->rotation++;
  return plan;
}

/* Queued for the ledger's writer thread: a failing request never waits for
 * the database, even one another program holds locked.
 */
static void
persist_state (KpGateway    *self,
               KpCredential *credential)
{
  kp_ledger_save_credential_state (self->ledger, kp_credential_get_id (credential),
                                   kp_credential_state_to_string (
                                     kp_credential_get_state (credential, 0)),
                                   kp_credential_get_state_until (credential),
                                   kp_credential_get_last_error (credential));
}

/**
 * kp_gateway_note_failure:
 * @self: a #KpGateway
 * @route: the route that failed
 * @failure: how
 *
 * Puts the route's key (or offering) out of use for as long as the failure
 * class says (see kp_key_health_note_failure()); a key's state is saved, so
 * it survives a restart, and it ends by itself at its time.
 */
void
kp_gateway_note_failure (KpGateway       *self,
                         const KpRoute   *route,
                         const KpFailure *failure)
{
  KpFailure known;

  g_return_if_fail (KP_IS_GATEWAY (self));
  g_return_if_fail (route != NULL);
  g_return_if_fail (failure != NULL);

  known = *failure;  /* shallow: its strings stay the caller's */

  /* What the account's sign-in knows of its quota (Qwen's daily one). */
  if (route->credential != NULL)
    kp_gateway_oauth_adjust_failure (route->credential, &known);
  if (!kp_key_health_note_failure (self->health, route->offering, route->credential, &known))
    return;

  persist_state (self, route->credential);
  emit_changed (self);
}

void
kp_gateway_note_success (KpGateway     *self,
                         const KpRoute *route)
{
  g_return_if_fail (KP_IS_GATEWAY (self));
  g_return_if_fail (route != NULL);

  kp_key_health_note_success (self->health, route->credential);
}

/**
 * kp_gateway_note_balance:
 * @self: a #KpGateway
 * @credential: the key the balance was read with
 * @balance: what is left, in @currency
 * @currency: (nullable): the currency the provider reported
 * @available: whether the provider says the account may be used
 *
 * What a balance means for the key: see kp_key_health_note_balance().
 */
void
kp_gateway_note_balance (KpGateway    *self,
                         KpCredential *credential,
                         double        balance,
                         const char   *currency,
                         gboolean      available)
{
  g_return_if_fail (KP_IS_GATEWAY (self));
  g_return_if_fail (KP_IS_CREDENTIAL (credential));

  /* The key may have been removed while its balance was on the way. */
  if (kp_gateway_find_credential (self, kp_credential_get_id (credential)) != credential)
    return;

  if (!kp_key_health_note_balance (self->health, credential, balance, currency, available))
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

  self->catalog_changed = TRUE;
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

  /* In order with the writes before it; a failure shows as the ledger's problem. */
  kp_ledger_set_provider_enabled_async (self->ledger, provider_id, enabled, NULL, NULL);

  if (enabled)
    g_hash_table_remove (self->disabled, provider_id);
  else
    g_hash_table_add (self->disabled, g_strdup (provider_id));

  emit_changed (self);
  return TRUE;
}


static void
on_token_replaced (GObject      *object,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  KpGateway *self = g_task_get_source_object (task);
  g_autoptr(GError) error = NULL;

  if (!kp_access_token_replace_finish (KP_ACCESS_TOKEN (object), result, &error))
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }

  emit_changed (self);
  g_task_return_boolean (task, TRUE);
}

/**
 * kp_gateway_regenerate_token_async:
 *
 * Makes a new access token; clients must use it from then on. Errors are
 * in the #KP_ACCESS_TOKEN_ERROR domain.
 */
void
kp_gateway_regenerate_token_async (KpGateway           *self,
                                   GCancellable        *cancellable,
                                   GAsyncReadyCallback  callback,
                                   gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;

  g_return_if_fail (KP_IS_GATEWAY (self));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, kp_gateway_regenerate_token_async);

  kp_access_token_replace_async (self->token, self->keyring_problem == NULL, cancellable,
                                 on_token_replaced, g_steal_pointer (&task));
}

gboolean
kp_gateway_regenerate_token_finish (KpGateway     *self,
                                    GAsyncResult  *result,
                                    GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

/* For the core's own files ------------------------------------------------- */

KpVault *
kp_gateway_get_vault (KpGateway *self)
{
  g_return_val_if_fail (KP_IS_GATEWAY (self), NULL);
  return self->vault;
}

/**
 * kp_gateway_get_key_health:
 *
 * Returns: (transfer none): what failures did to keys and offerings; tests
 *   set its clock
 */
KpKeyHealth *
kp_gateway_get_key_health (KpGateway *self)
{
  g_return_val_if_fail (KP_IS_GATEWAY (self), NULL);
  return self->health;
}

/**
 * kp_gateway_ensure_session:
 * @timeout_s: the session's timeout, if it must be made now
 *
 * Returns: (transfer none): the upstream session; before Keypool serves,
 *   one made for a key check
 */
SoupSession *
kp_gateway_ensure_session (KpGateway *self,
                           guint      timeout_s)
{
  g_return_val_if_fail (KP_IS_GATEWAY (self), NULL);

  if (self->session == NULL)
    self->session = soup_session_new_with_options ("timeout", timeout_s,
                                                   "max-conns", MAX (MAX_CONNS, self->conns_per_host),
                                                   "max-conns-per-host", self->conns_per_host,
                                                   "user-agent", "Keypool/" PACKAGE_VERSION,
                                                   NULL);
  return self->session;
}

void
kp_gateway_emit_login_code (KpGateway  *self,
                            const char *provider_id,
                            const char *user_code,
                            const char *url)
{
  g_return_if_fail (KP_IS_GATEWAY (self));
  g_signal_emit (self, signals[LOGIN_CODE], 0, provider_id, user_code, url);
}

void
kp_gateway_emit_changed (KpGateway *self)
{
  g_return_if_fail (KP_IS_GATEWAY (self));
  emit_changed (self);
}

/* How many times the model list was built: tests see that failures do not. */
guint
kp_gateway_get_models_builds (KpGateway *self)
{
  g_return_val_if_fail (KP_IS_GATEWAY (self), 0);
  return self->models_builds;
}

/* For the server and the relay --------------------------------------------- */

gsize
kp_gateway_get_body_limit (KpGateway *self)
{
  return self->body_limit;
}

/**
 * kp_gateway_set_upstream_conns:
 * @per_host: how many connections to one provider at once
 *
 * Before kp_gateway_listen(); tests lower it to fill the pool.
 */
void
kp_gateway_set_upstream_conns (KpGateway *self,
                               guint      per_host)
{
  g_return_if_fail (KP_IS_GATEWAY (self));
  g_return_if_fail (self->session == NULL);
  g_return_if_fail (per_host > 0);

  self->conns_per_host = per_host;
}

guint
kp_gateway_get_upstream_conns (KpGateway *self)
{
  g_return_val_if_fail (KP_IS_GATEWAY (self), 0);
  return self->conns_per_host;
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

const KpClientLimits *
kp_gateway_get_client_limits (KpGateway *self)
{
  return &self->client_limits;
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

/**
 * kp_gateway_relay_started:
 * @client_address: (nullable): the client's IP address, for its row
 */
void
kp_gateway_relay_started (KpGateway  *self,
                          KpRelay    *relay,
                          const char *client_address)
{
  g_hash_table_insert (self->relays, g_object_ref (relay), g_strdup (client_address));
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
  row.client_id = kp_relay_get_client_id (relay);
  row.client_address = g_hash_table_lookup (self->relays, relay);

  /* Counted at once: the next request is checked against it, even while
   * the row is still on its way to the disk. */
  if (kp_relay_get_outcome (relay) == KP_OUTCOME_OK ||
      kp_relay_get_outcome (relay) == KP_OUTCOME_INTERRUPTED)
    kp_budgets_note (self->budgets, row.provider, row.client_id, source, cost);

  kp_ledger_add_request_async (self->ledger, &row, (const KpAttemptRow *)(gpointer)attempts->data,
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
