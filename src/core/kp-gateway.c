/* kp-gateway.c: the composition root of Keypool's core
 *
 * The gateway owns the catalog, the ledger, the keys and their health, the
 * access token and the upstream session, and serves them through KpServer.
 * It composes the parts and does little itself: kp-planner ranks routes,
 * kp-key-health says what a failure does to a key, kp-access-token keeps
 * the token. This file is the object itself: loading, serving, its state
 * and ::changed. Its other rooms: kp-gateway-routes.c (the model list,
 * plans and what failures do to keys), kp-gateway-limits.c (upstream
 * sessions and bounds), kp-gateway-relays.c (requests in flight and their
 * rows), kp-gateway-keys.c (managing keys), kp-gateway-oauth.c (accounts).
 * Loading reads the keyring once (bounded by the vault's timeout); after
 * that, nothing on the request path waits for the keyring or the disk
 * beyond one sqlite insert per request.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include "kp-access-token.h"
#include "kp-budgets.h"
#include "kp-clients.h"
#include "kp-gateway-internal.h"
#include "kp-server.h"

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
  if (self->relay_pool != NULL)
    kp_http1_pool_close_idle (self->relay_pool);
  g_clear_pointer (&self->relay_pool, kp_http1_pool_unref);
  if (self->local_relay_pool != NULL)
    kp_http1_pool_close_idle (self->local_relay_pool);
  g_clear_pointer (&self->local_relay_pool, kp_http1_pool_unref);

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

/* Changes ----------------------------------------------------------------- */

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

  kp_gateway_update_models_json (self);

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
  kp_gateway_update_models_json (self);
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

/* The access token -------------------------------------------------------- */

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

/* For the gateway's own files --------------------------------------------- */

void
kp_gateway_emit_request_finished (KpGateway *self,
                                  KpRelay   *relay)
{
  g_signal_emit (self, signals[REQUEST_FINISHED], 0, relay);
}
