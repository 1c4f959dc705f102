/* kp-vault.c: secrets in the Secret Service (the OS keyring)
 *
 * Every call is asynchronous and bounded by Keypool's own timeout, so a
 * keyring that never answers cannot hang Keypool. Secrets are read once, at
 * start, in one search; the request path never talks to the keyring.
 *
 * libsecret is in a module of its own (src/vault/, kp-vault-backend.h),
 * loaded by the first call that finds a session bus: a Keypool without a
 * keyring never maps libsecret and libgcrypt.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include <string.h>

#include "kp-module.h"
#include "kp-vault-backend.h"
#include "kp-vault.h"

#define DEFAULT_TIMEOUT_MS 5000

struct _KpVault
{
  GObject parent_instance;

  guint   timeout_ms;
};

G_DEFINE_TYPE (KpVault, kp_vault, G_TYPE_OBJECT)

G_DEFINE_QUARK (kp-vault-error-quark, kp_vault_error)

typedef struct _Call Call;

/* What a call asks of the module once it is loaded. */
typedef void (*CallStart) (const KpVaultBackend *backend,
                           Call                 *call,
                           GTask                *task);

/* One keyring call: its own cancellable, cancelled by the caller's or by the
 * timeout, whichever comes first, and what it asks, kept until the module is
 * there.
 */
struct _Call
{
  GCancellable *cancellable;
  GCancellable *outer;
  gulong        outer_handler;
  guint         timeout_id;
  guint         timeout_ms;
  gboolean      timed_out;

  CallStart     start;
  const KpVaultBackend *backend;
  char         *provider;
  char         *credential;
  char         *label;
  char         *secret;
};

static void
wipe_free (char *secret)
{
  if (secret != NULL)
    explicit_bzero (secret, strlen (secret));
  g_free (secret);
}

static void
call_free (Call *call)
{
  g_clear_handle_id (&call->timeout_id, g_source_remove);
  if (call->outer != NULL)
    g_cancellable_disconnect (call->outer, call->outer_handler);
  g_clear_object (&call->outer);
  g_clear_object (&call->cancellable);
  g_free (call->provider);
  g_free (call->credential);
  g_free (call->label);
  wipe_free (call->secret);
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
               CallStart            start,
               GCancellable        *cancellable,
               GAsyncReadyCallback  callback,
               gpointer             user_data,
               gpointer             source_tag)
{
  GTask *task = g_task_new (self, cancellable, callback, user_data);
  Call *call = g_new0 (Call, 1);

  g_task_set_source_tag (task, source_tag);
  call->start = start;
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

/* Turns a failed call's error into one a person can act on. */
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
  else if (call->backend == NULL || call->backend->is_unreachable (error))
    {
      g_dbus_error_strip_remote_error (error);
      g_task_return_new_error (task, KP_VAULT_ERROR, KP_VAULT_ERROR_UNAVAILABLE,
                               "no Secret Service could be reached: %s", error->message);
    }
  else
    g_task_return_new_error (task, KP_VAULT_ERROR, KP_VAULT_ERROR_FAILED,
                             "the keyring refused: %s", error->message);
}

/* The module, loaded once; a failure is tried again by the next call. */
static const KpVaultBackend *
get_backend (GError **error)
{
  static const KpVaultBackend *backend;
  G_LOCK_DEFINE_STATIC (backend);
  const KpVaultBackend *result;

  G_LOCK (backend);
  if (backend == NULL)
    {
      GModule *module = kp_module_open ("keypool-vault", "vault", error);
      KpVaultBackendGet get = NULL;

      if (module != NULL && !g_module_symbol (module, KP_VAULT_BACKEND_GET, (gpointer *)&get))
        g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED,
                     "%s is not Keypool's keyring module", g_module_name (module));
      else if (get != NULL && (backend = get (KP_VAULT_BACKEND_VERSION)) == NULL)
        g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED,
                     "%s is from another version of Keypool", g_module_name (module));
    }
  result = backend;
  G_UNLOCK (backend);
  return result;
}

/* No session bus, no Secret Service: the module is loaded only once there
 * is a bus to reach one on (libsecret then uses the same connection).
 */
static void
on_bus (GObject      *object,
        GAsyncResult *result,
        gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  Call *call = g_task_get_task_data (task);
  g_autoptr(GDBusConnection) bus = NULL;
  g_autoptr(GError) error = NULL;

  bus = g_bus_get_finish (result, &error);
  if (bus == NULL)
    {
      return_error (task, error);
      return;
    }

  call->backend = get_backend (&error);
  if (call->backend == NULL)
    {
      g_task_return_new_error (task, KP_VAULT_ERROR, KP_VAULT_ERROR_UNAVAILABLE,
                               "Keypool's keyring module cannot be loaded: %s", error->message);
      return;
    }
  call->start (call->backend, call, g_steal_pointer (&task));
}

/* Takes @task. */
static void
call_run (GTask *task)
{
  Call *call = g_task_get_task_data (task);

  g_bus_get (G_BUS_TYPE_SESSION, call->cancellable, on_bus, task);
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
on_loaded (GObject      *object,
           GAsyncResult *result,
           gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  Call *call = g_task_get_task_data (task);
  g_autoptr(GError) error = NULL;
  GHashTable *secrets;

  secrets = call->backend->load_finish (result, &error);
  if (secrets == NULL)
    return_error (task, error);
  else
    g_task_return_pointer (task, secrets, (GDestroyNotify)g_hash_table_unref);
}

static void
start_load (const KpVaultBackend *backend,
            Call                 *call,
            GTask                *task)
{
  backend->load_async (call->cancellable, on_loaded, task);
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
  g_return_if_fail (KP_IS_VAULT (self));

  call_run (call_task_new (self, start_load, cancellable, callback, user_data,
                           kp_vault_load_async));
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
  Call *call = g_task_get_task_data (task);
  g_autoptr(GError) error = NULL;

  if (!call->backend->store_finish (result, &error))
    return_error (task, error);
  else
    g_task_return_boolean (task, TRUE);
}

static void
start_store (const KpVaultBackend *backend,
             Call                 *call,
             GTask                *task)
{
  backend->store_async (call->provider, call->credential, call->label, call->secret,
                        call->cancellable, on_stored, task);
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

  task = call_task_new (self, start_store, cancellable, callback, user_data,
                        kp_vault_store_async);
  call = g_task_get_task_data (task);
  call->provider = g_strdup (provider);
  call->credential = g_strdup (credential);
  call->label = g_strdup (label);
  call->secret = g_strdup (secret);
  call_run (task);
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
  Call *call = g_task_get_task_data (task);
  g_autoptr(GError) error = NULL;

  if (!call->backend->clear_finish (result, &error))
    return_error (task, error);
  else
    g_task_return_boolean (task, TRUE);
}

static void
start_clear (const KpVaultBackend *backend,
             Call                 *call,
             GTask                *task)
{
  backend->clear_async (call->credential, call->cancellable, on_cleared, task);
}

void
kp_vault_clear_async (KpVault             *self,
                      const char          *credential,
                      GCancellable        *cancellable,
                      GAsyncReadyCallback  callback,
                      gpointer             user_data)
{
  GTask *task;

  g_return_if_fail (KP_IS_VAULT (self));
  g_return_if_fail (credential != NULL);

  task = call_task_new (self, start_clear, cancellable, callback, user_data,
                        kp_vault_clear_async);
  ((Call *)g_task_get_task_data (task))->credential = g_strdup (credential);
  call_run (task);
}

gboolean
kp_vault_clear_finish (KpVault       *self,
                       GAsyncResult  *result,
                       GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}
