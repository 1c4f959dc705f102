/* kp-gateway.c: the composition root of Keypool's core
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

struct _KpGateway
{
  GObject      parent_instance;

  KpCatalog   *catalog;
  KpVault     *vault;
  KpServer    *server;
  SoupSession *session;
  GHashTable  *relays;          /* in flight: KpRelay → itself (owned) */

  guint        port;
  char        *providers_dir;
  char        *config_dir;
  char        *token;
  char        *token_path;
  GStrv        allowed_origins;
  gsize        body_limit;
  guint        connect_ms;
  guint        first_byte_ms;
  guint        idle_ms;
  gint64       started_us;
  char        *models_json;
  gsize        models_json_len;
  gboolean     running;
};

enum {
  REQUEST_FINISHED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

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
  g_clear_pointer (&self->providers_dir, g_free);
  g_clear_pointer (&self->config_dir, g_free);
  g_clear_pointer (&self->token_path, g_free);
  g_clear_pointer (&self->allowed_origins, g_strfreev);
  g_clear_pointer (&self->models_json, g_free);
  wipe_string (&self->token);

  G_OBJECT_CLASS (kp_gateway_parent_class)->finalize (object);
}

static void
kp_gateway_class_init (KpGatewayClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = kp_gateway_dispose;
  object_class->finalize = kp_gateway_finalize;

  /**
   * KpGateway::request-finished:
   * @gateway: the gateway
   * @relay: the finished request, with its outcome, usage and timings
   *
   * Emitted once per client request, whatever its outcome.
   */
  signals[REQUEST_FINISHED] =
    g_signal_new ("request-finished",
                  G_TYPE_FROM_CLASS (klass),
                  G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL,
                  G_TYPE_NONE, 1, KP_TYPE_RELAY);
}

static void
kp_gateway_init (KpGateway *self)
{
  self->catalog = kp_catalog_new ();
  self->vault = kp_vault_new ();
  self->relays = g_hash_table_new_full (NULL, NULL, g_object_unref, NULL);
  self->port = KP_GATEWAY_DEFAULT_PORT;
  self->body_limit = KP_GATEWAY_DEFAULT_BODY_LIMIT;
  self->connect_ms = DEFAULT_CONNECT_MS;
  self->first_byte_ms = DEFAULT_FIRST_BYTE_MS;
  self->idle_ms = DEFAULT_IDLE_MS;
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
 *   `providers/` adds or replaces providers, and it keeps the access token
 */
void
kp_gateway_set_dirs (KpGateway  *self,
                     const char *providers_dir,
                     const char *config_dir)
{
  g_return_if_fail (KP_IS_GATEWAY (self));

  g_free (self->providers_dir);
  self->providers_dir = g_strdup (providers_dir);
  g_free (self->config_dir);
  self->config_dir = g_strdup (config_dir);
}

/**
 * kp_gateway_set_token:
 * @token: (nullable): the access token clients must send, or %NULL to use
 *   the one kept in the configuration folder (made on first run)
 */
void
kp_gateway_set_token (KpGateway  *self,
                      const char *token)
{
  g_return_if_fail (KP_IS_GATEWAY (self));

  wipe_string (&self->token);
  self->token = g_strdup (token);
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

static gboolean
load_token (KpGateway  *self,
            GError    **error)
{
  g_autoptr(GError) local_error = NULL;
  g_autofree char *contents = NULL;

  if (self->token != NULL)
    return TRUE;

  if (self->config_dir == NULL)
    {
      g_set_error_literal (error, KP_GATEWAY_ERROR, KP_GATEWAY_ERROR_TOKEN,
                           "No access token: set KEYPOOL_TOKEN or a configuration folder.");
      return FALSE;
    }

  self->token_path = g_build_filename (self->config_dir, "token", NULL);

  if (g_file_get_contents (self->token_path, &contents, NULL, &local_error))
    {
      g_strstrip (contents);
      if (*contents != '\0')
        {
          self->token = g_steal_pointer (&contents);
          return TRUE;
        }
    }
  else if (!g_error_matches (local_error, G_FILE_ERROR, G_FILE_ERROR_NOENT))
    {
      g_set_error (error, KP_GATEWAY_ERROR, KP_GATEWAY_ERROR_TOKEN,
                   "Cannot read the access token: %s", local_error->message);
      return FALSE;
    }

  g_clear_error (&local_error);

  if (g_mkdir_with_parents (self->config_dir, 0700) != 0)
    {
      int saved_errno = errno;

      g_set_error (error, KP_GATEWAY_ERROR, KP_GATEWAY_ERROR_TOKEN,
                   "Cannot create the configuration folder %s: %s",
                   self->config_dir, g_strerror (saved_errno));
      return FALSE;
    }

  self->token = generate_token (error);
  if (self->token == NULL)
    return FALSE;

  {
    g_autofree char *line = g_strconcat (self->token, "\n", NULL);
    gboolean ok;

    ok = g_file_set_contents_full (self->token_path, line, -1,
                                   G_FILE_SET_CONTENTS_CONSISTENT, 0600, &local_error);
    explicit_bzero (line, strlen (line));
    if (!ok)
      {
        g_set_error (error, KP_GATEWAY_ERROR, KP_GATEWAY_ERROR_TOKEN,
                     "Cannot save the access token: %s", local_error->message);
        return FALSE;
      }
  }

  g_message ("Made a new access token in %s", self->token_path);
  return TRUE;
}

gboolean
kp_gateway_provider_is_usable (KpGateway  *self,
                               KpProvider *provider)
{
  g_return_val_if_fail (KP_IS_GATEWAY (self), FALSE);
  g_return_val_if_fail (KP_IS_PROVIDER (provider), FALSE);

  return !kp_provider_get_requires_key (provider) ||
         kp_vault_get_n_keys (self->vault, kp_provider_get_id (provider)) > 0;
}

/* The model list changes only when providers or keys do, so it is built once
 * and served from memory.
 */
static void
build_models_json (KpGateway *self)
{
  g_autoptr(JsonBuilder) builder = json_builder_new_immutable ();
  g_autoptr(JsonNode) root = NULL;
  GPtrArray *ids = kp_catalog_get_model_ids (self->catalog);

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
    }

  json_builder_end_array (builder);
  json_builder_end_object (builder);

  root = json_builder_get_root (builder);
  g_free (self->models_json);
  self->models_json = json_to_string (root, FALSE);
  self->models_json_len = strlen (self->models_json);
}

/**
 * kp_gateway_start:
 * @self: a #KpGateway
 * @error: a location for a #GError
 *
 * Loads the providers and their keys, the access token, and starts serving.
 */
gboolean
kp_gateway_start (KpGateway  *self,
                  GError    **error)
{
  g_autofree char *user_providers = NULL;
  GPtrArray *providers;

  g_return_val_if_fail (KP_IS_GATEWAY (self), FALSE);
  g_return_val_if_fail (!self->running, FALSE);

  if (!load_token (self, error))
    return FALSE;

  if (self->config_dir != NULL)
    user_providers = g_build_filename (self->config_dir, "providers", NULL);
  kp_catalog_load (self->catalog, self->providers_dir, user_providers);

  providers = kp_catalog_get_providers (self->catalog);
  for (guint i = 0; i < providers->len; i++)
    kp_vault_load_env (self->vault, g_ptr_array_index (providers, i));
  build_models_json (self);

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
  self->running = TRUE;
  return TRUE;
}

/**
 * kp_gateway_stop:
 * @self: a #KpGateway
 *
 * Ends every request in flight (a stream gets an error event, never a false
 * end) and stops listening. The relays finish as the main loop runs; wait
 * for kp_gateway_get_n_active() to reach 0 before quitting.
 */
void
kp_gateway_stop (KpGateway *self)
{
  g_autoptr(GPtrArray) relays = g_ptr_array_new_with_free_func (g_object_unref);
  GHashTableIter iter;
  gpointer relay;

  g_return_if_fail (KP_IS_GATEWAY (self));

  if (!self->running)
    return;
  self->running = FALSE;

  /* Aborting can finish a relay and remove it from the table at once. */
  g_hash_table_iter_init (&iter, self->relays);
  while (g_hash_table_iter_next (&iter, &relay, NULL))
    g_ptr_array_add (relays, g_object_ref (relay));
  for (guint i = 0; i < relays->len; i++)
    kp_relay_abort (g_ptr_array_index (relays, i), "Keypool is shutting down.");
}

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
 * kp_gateway_get_token_path:
 *
 * Returns: (nullable): the file that keeps the token, or %NULL when the token
 *   came from KEYPOOL_TOKEN
 */
const char *
kp_gateway_get_token_path (KpGateway *self)
{
  g_return_val_if_fail (KP_IS_GATEWAY (self), NULL);
  return self->token_path;
}

KpCatalog *
kp_gateway_get_catalog (KpGateway *self)
{
  g_return_val_if_fail (KP_IS_GATEWAY (self), NULL);
  return self->catalog;
}

KpVault *
kp_gateway_get_vault (KpGateway *self)
{
  g_return_val_if_fail (KP_IS_GATEWAY (self), NULL);
  return self->vault;
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

gsize
kp_gateway_get_body_limit (KpGateway *self)
{
  return self->body_limit;
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

char *
kp_gateway_dup_health_json (KpGateway *self)
{
  GPtrArray *providers = kp_catalog_get_providers (self->catalog);
  guint usable = 0;

  for (guint i = 0; i < providers->len; i++)
    if (kp_gateway_provider_is_usable (self, g_ptr_array_index (providers, i)))
      usable++;

  return g_strdup_printf ("{\"status\":\"ok\",\"version\":\"%s\",\"uptime_s\":%" G_GINT64_FORMAT
                          ",\"providers\":%u,\"usable_providers\":%u,\"models\":%u,"
                          "\"active_requests\":%u}",
                          PACKAGE_VERSION,
                          (g_get_monotonic_time () - self->started_us) / G_USEC_PER_SEC,
                          providers->len, usable,
                          kp_catalog_get_model_ids (self->catalog)->len,
                          g_hash_table_size (self->relays));
}

void
kp_gateway_relay_started (KpGateway *self,
                          KpRelay   *relay)
{
  g_hash_table_add (self->relays, g_object_ref (relay));
}

void
kp_gateway_relay_finished (KpGateway *self,
                           KpRelay   *relay)
{
  g_autoptr(KpRelay) hold = g_object_ref (relay);

  if (!g_hash_table_remove (self->relays, relay))
    return;

  g_signal_emit (self, signals[REQUEST_FINISHED], 0, relay);
}
