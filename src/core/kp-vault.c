/* kp-vault.c: secrets in the Secret Service (the OS keyring)
 *
 * Every call is asynchronous and bounded by Keypool's own timeout, so a
 * keyring that never answers cannot hang Keypool. Secrets are read once, at
 * start, in one search; the request path never talks to the keyring.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include <string.h>

#include <libsecret/secret.h>

#include "kp-vault.h"

#define DEFAULT_TIMEOUT_MS 5000

struct _KpVault
{
  GObject parent_instance;

  guint   timeout_ms;
};

G_DEFINE_TYPE (KpVault, kp_vault, G_TYPE_OBJECT)

G_DEFINE_QUARK (kp-vault-error-quark, kp_vault_error)

static const SecretSchema credential_schema = {
  "io.github.keypool.Credential", SECRET_SCHEMA_NONE,
  {
    { "provider", SECRET_SCHEMA_ATTRIBUTE_STRING },
    { "credential", SECRET_SCHEMA_ATTRIBUTE_STRING },
    { NULL, 0 },
  }
};

/* One keyring call: its own cancellable, cancelled by the caller's or by the
 * timeout, whichever comes first.
 */
typedef struct
{
  GCancellable *cancellable;
  GCancellable *outer;
  gulong        outer_handler;
  guint         timeout_id;
  guint         timeout_ms;
  gboolean      timed_out;
} Call;

static void
call_free (Call *call)
{
  g_clear_handle_id (&call->timeout_id, g_source_remove);
  if (call->outer != NULL)
    g_cancellable_disconnect (call->outer, call->outer_handler);
  g_clear_object (&call->outer);
  g_clear_object (&call->cancellable);
  g_free (call);
}

static gboolean
on_call_timeout (gpointer user_data)
{
  Call *call = user_data;

  call->timeout_id = 0;
  call->timed_out = TRUE;
  g_cancellable_cancel (call->cancellable);
  return G_SOURCE_REMOVE;
}

static void
on_outer_cancelled (GCancellable *outer,
                    Call         *call)
{
  g_cancellable_cancel (call->cancellable);
}

static GTask *
call_task_new (KpVault             *self,
               GCancellable        *cancellable,
               GAsyncReadyCallback  callback,
               gpointer             user_data,
               gpointer             source_tag)
{
  GTask *task = g_task_new (self, cancellable, callback, user_data);
  Call *call = g_new0 (Call, 1);

  g_task_set_source_tag (task, source_tag);
  call->cancellable = g_cancellable_new ();
  call->timeout_ms = self->timeout_ms;
  if (cancellable != NULL)
    {
      call->outer = g_object_ref (cancellable);
      call->outer_handler = g_cancellable_connect (cancellable, G_CALLBACK (on_outer_cancelled),
                                                   call, NULL);
    }
  call->timeout_id = g_timeout_add (self->timeout_ms, on_call_timeout, call);
  g_task_set_task_data (task, call, (GDestroyNotify)call_free);
  return task;
}

/* Turns libsecret's error into one a person can act on. */
static void
return_error (GTask  *task,
              GError *error)
{
  Call *call = g_task_get_task_data (task);

  if (call->timed_out)
    g_task_return_new_error (task, KP_VAULT_ERROR, KP_VAULT_ERROR_TIMEOUT,
                             "the keyring did not answer within %u s", call->timeout_ms / 1000);
  else if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    g_task_return_error (task, g_error_copy (error));
  else if (error->domain == G_DBUS_ERROR || error->domain == G_IO_ERROR ||
           g_error_matches (error, SECRET_ERROR, SECRET_ERROR_PROTOCOL))
    {
      g_dbus_error_strip_remote_error (error);
      g_task_return_new_error (task, KP_VAULT_ERROR, KP_VAULT_ERROR_UNAVAILABLE,
                               "no Secret Service could be reached: %s", error->message);
    }
  else
    g_task_return_new_error (task, KP_VAULT_ERROR, KP_VAULT_ERROR_FAILED,
                             "the keyring refused: %s", error->message);
}

static void
kp_vault_class_init (KpVaultClass *klass)
{
}

static void
kp_vault_init (KpVault *self)
{
  const char *env = g_getenv ("KEYPOOL_KEYRING_TIMEOUT_MS");
  guint64 value;

  /* The window test gives a Keypool built with sanitizers on a busy machine
   * longer: a main loop that is late to read the keyring's answer must not
   * count as a keyring that never answered. */
  if (env != NULL && g_ascii_string_to_unsigned (env, 10, 1, G_MAXINT32, &value, NULL))
    self->timeout_ms = (guint)value;
  else
    self->timeout_ms = DEFAULT_TIMEOUT_MS;
}

KpVault *
kp_vault_new (void)
{
  return g_object_new (KP_TYPE_VAULT, NULL);
}

void
kp_vault_set_timeout (KpVault *self,
                      guint    timeout_ms)
{
  g_return_if_fail (KP_IS_VAULT (self));
  g_return_if_fail (timeout_ms > 0);

  self->timeout_ms = timeout_ms;
}

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
      return_error (task, error);
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

/**
 * kp_vault_load_async:
 *
 * Reads every Keypool secret from the keyring in one search, unlocking it
 * when needed.
 */
void
kp_vault_load_async (KpVault             *self,
                     GCancellable        *cancellable,
                     GAsyncReadyCallback  callback,
                     gpointer             user_data)
{
  g_autoptr(GHashTable) attributes = NULL;
  GTask *task;
  Call *call;

  g_return_if_fail (KP_IS_VAULT (self));

  task = call_task_new (self, cancellable, callback, user_data, kp_vault_load_async);
  call = g_task_get_task_data (task);
  attributes = g_hash_table_new (g_str_hash, g_str_equal);

  secret_service_search (NULL, &credential_schema, attributes,
                         SECRET_SEARCH_ALL | SECRET_SEARCH_UNLOCK | SECRET_SEARCH_LOAD_SECRETS,
                         call->cancellable, on_searched, task);
}

/**
 * kp_vault_load_finish:
 *
 * Returns: (transfer full): the secrets by "PROVIDER:CREDENTIAL", their two
 *   attributes; they are wiped when the table is destroyed
 */
GHashTable *
kp_vault_load_finish (KpVault       *self,
                      GAsyncResult  *result,
                      GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

static void
on_stored (GObject      *object,
           GAsyncResult *result,
           gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  g_autoptr(GError) error = NULL;

  if (!secret_password_store_finish (result, &error))
    return_error (task, error);
  else
    g_task_return_boolean (task, TRUE);
}

void
kp_vault_store_async (KpVault             *self,
                      const char          *provider,
                      const char          *credential,
                      const char          *label,
                      const char          *secret,
                      GCancellable        *cancellable,
                      GAsyncReadyCallback  callback,
                      gpointer             user_data)
{
  GTask *task;
  Call *call;

  g_return_if_fail (KP_IS_VAULT (self));
  g_return_if_fail (provider != NULL && credential != NULL && secret != NULL);

  task = call_task_new (self, cancellable, callback, user_data, kp_vault_store_async);
  call = g_task_get_task_data (task);
  secret_password_store (&credential_schema, SECRET_COLLECTION_DEFAULT, label, secret,
                         call->cancellable, on_stored, task,
                         "provider", provider, "credential", credential, NULL);
}

gboolean
kp_vault_store_finish (KpVault       *self,
                       GAsyncResult  *result,
                       GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

static void
on_cleared (GObject      *object,
            GAsyncResult *result,
            gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  g_autoptr(GError) error = NULL;

  /* Nothing to clear is fine: the item is gone either way. */
  secret_password_clear_finish (result, &error);
  if (error != NULL)
    return_error (task, error);
  else
    g_task_return_boolean (task, TRUE);
}

void
kp_vault_clear_async (KpVault             *self,
                      const char          *credential,
                      GCancellable        *cancellable,
                      GAsyncReadyCallback  callback,
                      gpointer             user_data)
{
  GTask *task;
  Call *call;

  g_return_if_fail (KP_IS_VAULT (self));
  g_return_if_fail (credential != NULL);

  task = call_task_new (self, cancellable, callback, user_data, kp_vault_clear_async);
  call = g_task_get_task_data (task);
  secret_password_clear (&credential_schema, call->cancellable, on_cleared, task,
                         "credential", credential, NULL);
}

gboolean
kp_vault_clear_finish (KpVault       *self,
                       GAsyncResult  *result,
                       GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}
