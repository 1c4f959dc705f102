/* kp-gateway-keys.c: adding, checking, removing and setting up keys
 *
 * Part of KpGateway: the keys live in the gateway's list, their secrets in
 * the keyring (or environment variables), their details and state in the
 * database. A key added here is routable at once.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include <string.h>

#include <json-glib/json-glib.h>

#include "kp-gateway-private.h"
#include "kp-http.h"

/* A key check is one small request: it either answers soon or not at all. */
#define KEY_CHECK_TIMEOUT_S 20

static void
set_no_such_key (GError **error,
                 gint64   id)
{
  g_set_error (error, KP_GATEWAY_ERROR, KP_GATEWAY_ERROR_NOT_FOUND,
               "There is no key with id %" G_GINT64_FORMAT "; “keypool keys list” shows them.", id);
}

KpCredential *
kp_gateway_find_credential (KpGateway *self,
                            gint64     id)
{
  GPtrArray *credentials;

  g_return_val_if_fail (KP_IS_GATEWAY (self), NULL);

  credentials = kp_gateway_get_credentials (self);
  for (guint i = 0; i < credentials->len; i++)
    {
      KpCredential *credential = g_ptr_array_index (credentials, i);

      if (kp_credential_get_id (credential) == id)
        return credential;
    }
  return NULL;
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
  GPtrArray *credentials;
  const char *id;
  guint n = 0;

  g_return_val_if_fail (KP_IS_GATEWAY (self), 0);
  g_return_val_if_fail (KP_IS_PROVIDER (provider), 0);

  id = kp_provider_get_id (provider);
  credentials = kp_gateway_get_credentials (self);
  for (guint i = 0; i < credentials->len; i++)
    {
      KpCredential *credential = g_ptr_array_index (credentials, i);

      if (g_str_equal (kp_credential_get_provider_id (credential), id) &&
          kp_credential_get_secret (credential) != NULL)
        n++;
    }
  return n;
}

static KpCredential *
add_credential_from_row (KpGateway             *self,
                         const KpCredentialRow *row)
{
  KpCredential *credential = kp_credential_new_from_row (row);

  g_ptr_array_add (kp_gateway_get_credentials (self), credential);
  return credential;
}

/* Each environment variable that holds a key is a credential with a row of
 * its own, so its state survives restarts; a changed key starts afresh.
 */
gboolean
kp_gateway_load_env_keys (KpGateway  *self,
                          GPtrArray  *rows,
                          GError    **error)
{
  KpLedger *ledger = kp_gateway_get_ledger (self);
  GPtrArray *providers = kp_catalog_get_providers (kp_gateway_get_catalog (self));

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

              fresh.id = kp_ledger_add_credential (ledger, provider_id, env[j], 1.0, "env",
                                                   env[j], fingerprint, error);
              if (fresh.id == 0)
                return FALSE;
              credential = add_credential_from_row (self, &fresh);
            }
          else
            {
              if (g_strcmp0 (found->fingerprint, fingerprint) != 0)
                {
                  if (!kp_ledger_set_credential_fingerprint (ledger, found->id, fingerprint,
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
      set_no_such_key (error, id);
      return FALSE;
    }
  if (!(multiplier > 0 && multiplier <= 100))
    {
      g_set_error (error, KP_GATEWAY_ERROR, KP_GATEWAY_ERROR_INVALID,
                   "The multiplier must be above 0 and at most 100.");
      return FALSE;
    }
  /* In order with the writes before it; a failure shows as the ledger's problem. */
  kp_ledger_set_credential_options_async (kp_gateway_get_ledger (self), id, multiplier, enabled,
                                          NULL, NULL);
  kp_credential_set_options (credential, multiplier, enabled);
  kp_gateway_emit_changed (self);
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
      set_no_such_key (error, id);
      return FALSE;
    }
  /* In order with the states the writer thread still has to save. */
  kp_ledger_save_credential_state (kp_gateway_get_ledger (self), id, "ok", 0, NULL);
  kp_credential_set_state (credential, KP_CREDENTIAL_OK, 0, NULL);
  kp_credential_note_success (credential);
  kp_gateway_retry_account (self, credential);
  kp_gateway_emit_changed (self);
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
  kp_secret_wipe (&add->secret);
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

  if (!kp_vault_store_finish (kp_gateway_get_vault (self), result, &error))
    {
      /* Nothing half-done stays behind: the row goes with the secret. */
      kp_ledger_remove_credential_async (kp_gateway_get_ledger (self),
                                         kp_credential_get_id (add->credential), NULL, NULL);
      g_task_return_new_error (task, KP_GATEWAY_ERROR, KP_GATEWAY_ERROR_KEYRING,
                               "The key was not saved: %s.", error->message);
      return;
    }

  kp_credential_set_secret (add->credential, add->secret);
  g_ptr_array_add (kp_gateway_get_credentials (self), g_object_ref (add->credential));
  kp_gateway_emit_changed (self);
  g_task_return_pointer (task, g_object_ref (add->credential), g_object_unref);
}

static void
on_key_row_added (GObject      *object,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  KpGateway *self = g_task_get_source_object (task);
  AddKey *add = g_task_get_task_data (task);
  KpProvider *provider = kp_catalog_get_provider (kp_gateway_get_catalog (self), add->provider_id);
  g_autoptr(GError) error = NULL;
  g_autofree char *name = NULL;
  g_autofree char *item_label = NULL;
  GCancellable *cancellable;
  KpCredentialRow row = {
    .provider = add->provider_id, .label = add->label, .multiplier = add->multiplier,
    .enabled = TRUE, .source = (char *)"keyring", .state = (char *)"ok",
  };

  row.created = g_get_real_time () / G_USEC_PER_SEC;
  row.id = kp_ledger_add_credential_finish (KP_LEDGER (object), result, &error);
  if (row.id == 0)
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  add->credential = kp_credential_new_from_row (&row);
  kp_gateway_attach_auth (self, add->credential);

  name = g_strdup_printf ("%" G_GINT64_FORMAT, row.id);
  item_label = g_strdup_printf ("Keypool: %s key%s%s",
                                provider ? kp_provider_get_name (provider) : add->provider_id,
                                *add->label ? " " : "", add->label);
  cancellable = g_task_get_cancellable (task);
  kp_vault_store_async (kp_gateway_get_vault (self), add->provider_id, name, item_label,
                        add->secret, cancellable, on_key_stored, g_steal_pointer (&task));
}

/* The key's row first (through the ledger's writer thread), then its secret. */
static void
store_new_key (GTask *task)
{
  KpGateway *self = g_task_get_source_object (task);
  AddKey *add = g_task_get_task_data (task);

  kp_ledger_add_credential_async (kp_gateway_get_ledger (self), add->provider_id, add->label,
                                  add->multiplier, "keyring", NULL, NULL, on_key_row_added,
                                  g_object_ref (task));
}

static void
on_key_checked (GObject      *object,
                GAsyncResult *result,
                gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  KpGateway *self = g_task_get_source_object (task);
  AddKey *add = g_task_get_task_data (task);
  KpProvider *provider = kp_catalog_get_provider (kp_gateway_get_catalog (self), add->provider_id);
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) body = NULL;
  SoupMessage *msg = NULL;
  guint status;

  body = kp_http_read_bounded_finish (result, &msg, &error);
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
  gsize cap;

  g_return_if_fail (KP_IS_GATEWAY (self));
  g_return_if_fail (provider_id != NULL && secret != NULL);

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, kp_gateway_add_key_async);

  provider = kp_catalog_get_provider (kp_gateway_get_catalog (self), provider_id);
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
  if (kp_gateway_get_keyring_problem (self) != NULL)
    {
      g_task_return_new_error (task, KP_GATEWAY_ERROR, KP_GATEWAY_ERROR_KEYRING,
                               "The key was not saved: the keyring is unavailable (%s). "
                               "Without it, give keys in environment variables such as %s.",
                               kp_gateway_get_keyring_problem (self),
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
          json_builder_add_string_value (builder,
                                         kp_provider_get_offering (provider, 0)->upstream_id);
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

      kp_provider_apply_headers (provider, soup_message_get_request_headers (msg), secret);
      kp_gateway_get_read_caps (self, NULL, NULL, &cap);
      kp_http_read_bounded_async (kp_gateway_ensure_session (self, KEY_CHECK_TIMEOUT_S),
                                  msg, cap, G_PRIORITY_DEFAULT, cancellable, on_key_checked,
                                  g_steal_pointer (&task));
      return;
    }

  store_new_key (task);
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

  if (!kp_vault_clear_finish (kp_gateway_get_vault (self), result, &error))
    {
      g_task_return_new_error (task, KP_GATEWAY_ERROR, KP_GATEWAY_ERROR_KEYRING,
                               "The key was not removed: %s.", error->message);
      return;
    }

  kp_ledger_remove_credential_async (kp_gateway_get_ledger (self),
                                     kp_credential_get_id (credential), NULL, NULL);
  kp_gateway_forget_account (self, kp_credential_get_id (credential));

  g_ptr_array_remove (kp_gateway_get_credentials (self), credential);
  kp_gateway_emit_changed (self);
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
      GError *error = NULL;

      set_no_such_key (&error, id);
      g_task_return_error (task, error);
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
  if (kp_gateway_get_keyring_problem (self) != NULL)
    {
      g_task_return_new_error (task, KP_GATEWAY_ERROR, KP_GATEWAY_ERROR_KEYRING,
                               "The key was not removed: the keyring is unavailable (%s).",
                               kp_gateway_get_keyring_problem (self));
      return;
    }

  g_task_set_task_data (task, g_object_ref (credential), g_object_unref);
  name = g_strdup_printf ("%" G_GINT64_FORMAT, id);
  kp_vault_clear_async (kp_gateway_get_vault (self), name, cancellable, on_key_cleared,
                        g_steal_pointer (&task));
}

gboolean
kp_gateway_remove_key_finish (KpGateway     *self,
                              GAsyncResult  *result,
                              GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}
