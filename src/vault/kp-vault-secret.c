/* kp-vault-secret.c: the keyring's module, on libsecret
 *
 * Loaded by KpVault the first time Keypool talks to the keyring: a Keypool
 * that never does (KEYPOOL_NO_KEYRING, no session bus) never maps libsecret
 * and libgcrypt. Nothing here uses the core.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include <string.h>

#include <gmodule.h>
#include <libsecret/secret.h>

#include "kp-vault-backend.h"

static const SecretSchema credential_schema = {
  "io.github.keypool.Credential", SECRET_SCHEMA_NONE,
  {
    { "provider", SECRET_SCHEMA_ATTRIBUTE_STRING },
    { "credential", SECRET_SCHEMA_ATTRIBUTE_STRING },
    { NULL, 0 },
  }
};

static void
wipe_free (gpointer data)
{
  char *secret = data;

  explicit_bzero (secret, strlen (secret));
  g_free (secret);
}

static void
on_searched (GObject      *object,
             GAsyncResult *result,
             gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GHashTable) secrets = NULL;
  GList *items;

  items = secret_service_search_finish (NULL, result, &error);
  if (error != NULL)
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }

  secrets = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, wipe_free);
  for (GList *l = items; l != NULL; l = l->next)
    {
      SecretItem *item = l->data;
      g_autoptr(GHashTable) attributes = secret_item_get_attributes (item);
      SecretValue *value = secret_item_get_secret (item);
      const char *provider = g_hash_table_lookup (attributes, "provider");
      const char *credential = g_hash_table_lookup (attributes, "credential");
      const char *text = value ? secret_value_get_text (value) : NULL;

      if (provider != NULL && credential != NULL && text != NULL && *text != '\0')
        g_hash_table_replace (secrets, g_strconcat (provider, ":", credential, NULL), g_strdup (text));
      g_clear_pointer (&value, secret_value_unref);
    }
  g_list_free_full (items, g_object_unref);

  g_task_return_pointer (task, g_steal_pointer (&secrets), (GDestroyNotify)g_hash_table_unref);
}

/* Every Keypool item in one search, unlocking the keyring when needed. */
static void
load_async (GCancellable        *cancellable,
            GAsyncReadyCallback  callback,
            gpointer             user_data)
{
  g_autoptr(GHashTable) attributes = g_hash_table_new (g_str_hash, g_str_equal);
  GTask *task = g_task_new (NULL, cancellable, callback, user_data);

  g_task_set_source_tag (task, load_async);
  secret_service_search (NULL, &credential_schema, attributes,
                         SECRET_SEARCH_ALL | SECRET_SEARCH_UNLOCK | SECRET_SEARCH_LOAD_SECRETS,
                         cancellable, on_searched, task);
}

static GHashTable *
load_finish (GAsyncResult  *result,
             GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

static void
store_async (const char          *provider,
             const char          *credential,
             const char          *label,
             const char          *secret,
             GCancellable        *cancellable,
             GAsyncReadyCallback  callback,
             gpointer             user_data)
{
  secret_password_store (&credential_schema, SECRET_COLLECTION_DEFAULT, label, secret,
                         cancellable, callback, user_data,
                         "provider", provider, "credential", credential, NULL);
}

static void
clear_async (const char          *credential,
             GCancellable        *cancellable,
             GAsyncReadyCallback  callback,
             gpointer             user_data)
{
  secret_password_clear (&credential_schema, cancellable, callback, user_data,
                         "credential", credential, NULL);
}

/* Nothing to clear is fine: the item is gone either way. */
static gboolean
clear_finish (GAsyncResult  *result,
              GError       **error)
{
  GError *local_error = NULL;

  secret_password_clear_finish (result, &local_error);
  if (local_error != NULL)
    {
      g_propagate_error (error, local_error);
      return FALSE;
    }
  return TRUE;
}

static gboolean
is_unreachable (const GError *error)
{
  return error->domain == G_DBUS_ERROR || error->domain == G_IO_ERROR ||
         g_error_matches (error, SECRET_ERROR, SECRET_ERROR_PROTOCOL);
}

static const KpVaultBackend backend = {
  .load_async = load_async,
  .load_finish = load_finish,
  .store_async = store_async,
  .store_finish = secret_password_store_finish,
  .clear_async = clear_async,
  .clear_finish = clear_finish,
  .is_unreachable = is_unreachable,
};

/**
 * kp_vault_backend_get:
 * @version: the %KP_VAULT_BACKEND_VERSION the caller was built with
 *
 * Returns: (nullable): the module's table, or %NULL when it was built
 *   against another version of it
 */
G_MODULE_EXPORT const KpVaultBackend *
kp_vault_backend_get (guint version)
{
  if (version != KP_VAULT_BACKEND_VERSION)
    return NULL;
  return &backend;
}
