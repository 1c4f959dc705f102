/* kp-auth.c: how a credential becomes request headers
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include "kp-auth.h"

G_DEFINE_INTERFACE (KpAuth, kp_auth, G_TYPE_OBJECT)

static gboolean
kp_auth_default_rejected (KpAuth *self)
{
  return FALSE;
}

static void
kp_auth_default_accepted (KpAuth *self)
{
}

static void
kp_auth_default_init (KpAuthInterface *iface)
{
  iface->rejected = kp_auth_default_rejected;
  iface->accepted = kp_auth_default_accepted;
}

KpAuthKindId
kp_auth_get_kind (KpAuth *self)
{
  g_return_val_if_fail (KP_IS_AUTH (self), KP_AUTH_KIND_STATIC);
  return KP_AUTH_GET_IFACE (self)->get_kind (self);
}

/**
 * kp_auth_get_secret:
 *
 * Returns: (nullable): what the keyring keeps for the credential
 */
const char *
kp_auth_get_secret (KpAuth *self)
{
  g_return_val_if_fail (KP_IS_AUTH (self), NULL);
  return KP_AUTH_GET_IFACE (self)->get_secret (self);
}

void
kp_auth_set_secret (KpAuth     *self,
                    const char *secret)
{
  g_return_if_fail (KP_IS_AUTH (self));
  KP_AUTH_GET_IFACE (self)->set_secret (self, secret);
}

/**
 * kp_auth_get_token:
 *
 * Never waits: an OAuth auth that has no valid access token cached returns
 * %NULL and gets one in the background.
 *
 * Returns: (nullable): what to send to the provider now
 */
const char *
kp_auth_get_token (KpAuth *self)
{
  g_return_val_if_fail (KP_IS_AUTH (self), NULL);
  return KP_AUTH_GET_IFACE (self)->get_token (self);
}

/**
 * kp_auth_rejected:
 *
 * Tells the auth that the provider refused what it sent, and the request
 * gave up on it. A token fresh from a refresh that a refusal asked for, and
 * refused too, means the account itself is refused.
 *
 * Returns: %TRUE if the auth recovers by itself, %FALSE if the credential
 *   itself is bad
 */
gboolean
kp_auth_rejected (KpAuth *self)
{
  g_return_val_if_fail (KP_IS_AUTH (self), FALSE);
  return KP_AUTH_GET_IFACE (self)->rejected (self);
}

void
kp_auth_accepted (KpAuth *self)
{
  g_return_if_fail (KP_IS_AUTH (self));
  KP_AUTH_GET_IFACE (self)->accepted (self);
}

/**
 * kp_auth_get_account:
 *
 * Returns: (transfer none) (nullable): what the login knows of its account
 *   that a request must carry (Kiro's profileArn), or %NULL
 */
JsonObject *
kp_auth_get_account (KpAuth *self)
{
  g_return_val_if_fail (KP_IS_AUTH (self), NULL);
  if (KP_AUTH_GET_IFACE (self)->get_account == NULL)
    return NULL;
  return KP_AUTH_GET_IFACE (self)->get_account (self);
}

const char *
kp_auth_kind_to_string (KpAuthKindId kind)
{
  switch (kind)
    {
    case KP_AUTH_KIND_OAUTH:
      return "oauth";
    case KP_AUTH_KIND_STATIC:
    default:
      return "key";
    }
}

/**
 * kp_auth_can_refresh:
 *
 * Returns: whether a token the provider refused can be replaced now (an
 *   OAuth refresh); %FALSE for a static key
 */
gboolean
kp_auth_can_refresh (KpAuth *self)
{
  KpAuthInterface *iface;

  g_return_val_if_fail (KP_IS_AUTH (self), FALSE);
  iface = KP_AUTH_GET_IFACE (self);
  return iface->refresh_async != NULL && iface->can_refresh != NULL && iface->can_refresh (self);
}

/**
 * kp_auth_get_serial:
 *
 * Returns: which token kp_auth_get_token() gives; it changes with each new
 *   token (a static key's is always 0)
 */
guint
kp_auth_get_serial (KpAuth *self)
{
  g_return_val_if_fail (KP_IS_AUTH (self), 0);
  if (KP_AUTH_GET_IFACE (self)->get_serial == NULL)
    return 0;
  return KP_AUTH_GET_IFACE (self)->get_serial (self);
}

/**
 * kp_auth_refresh_async:
 * @refused_serial: the serial (kp_auth_get_serial()) of the token refused
 * @cancellable: (nullable): stops this caller's wait, not the refresh
 *
 * The provider refused the token of @refused_serial: a new one is bought at
 * once. Every caller that asks while the refresh is under way waits for the
 * same refresh; a caller whose token is older than the one cached now is
 * answered at once. A token fresh from such a refresh that is refused too
 * is not refreshed again: the account is at fault.
 */
void
kp_auth_refresh_async (KpAuth              *self,
                       guint                refused_serial,
                       GCancellable        *cancellable,
                       GAsyncReadyCallback  callback,
                       gpointer             user_data)
{
  g_return_if_fail (KP_IS_AUTH (self));

  if (KP_AUTH_GET_IFACE (self)->refresh_async == NULL)
    {
      g_autoptr(GTask) task = g_task_new (self, cancellable, callback, user_data);

      g_task_set_source_tag (task, kp_auth_refresh_async);
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                               "A key cannot be refreshed.");
      return;
    }
  KP_AUTH_GET_IFACE (self)->refresh_async (self, refused_serial, cancellable, callback, user_data);
}

/**
 * kp_auth_refresh_finish:
 *
 * Returns: %TRUE when a new token is there to send
 */
gboolean
kp_auth_refresh_finish (KpAuth        *self,
                        GAsyncResult  *result,
                        GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

/* Waiters ----------------------------------------------------------------- */

typedef struct
{
  KpAuthWaiters *waiters;  /* lives as long as the task: inside its source object */
  GTask         *task;     /* not a reference */
  GSource       *source;   /* fires when the waiter's cancellable is cancelled */
} Waiter;

static void
waiter_free (gpointer data)
{
  Waiter *waiter = data;

  g_source_destroy (waiter->source);
  g_source_unref (waiter->source);
  g_free (waiter);
}

static gboolean
on_waiter_cancelled (GCancellable *cancellable,
                     gpointer      user_data)
{
  Waiter *waiter = user_data;
  guint index;

  /* Stolen: answered here, not again when the refresh ends. */
  if (g_ptr_array_find (waiter->waiters->tasks, waiter->task, &index))
    {
      GTask *task = g_ptr_array_steal_index (waiter->waiters->tasks, index);

      g_task_return_error_if_cancelled (task);
      g_object_unref (task);
    }
  return G_SOURCE_REMOVE;
}

void
kp_auth_waiters_init (KpAuthWaiters *waiters)
{
  waiters->tasks = g_ptr_array_new_with_free_func (g_object_unref);
}

/* Takes @task, which returns a boolean when the refresh under way ends. */
void
kp_auth_waiters_add (KpAuthWaiters *waiters,
                     GTask         *task)
{
  GCancellable *cancellable = g_task_get_cancellable (task);

  if (cancellable != NULL)
    {
      Waiter *waiter = g_new0 (Waiter, 1);

      waiter->waiters = waiters;
      waiter->task = task;
      waiter->source = g_cancellable_source_new (cancellable);
      g_source_set_callback (waiter->source, G_SOURCE_FUNC (on_waiter_cancelled), waiter, NULL);
      g_source_set_static_name (waiter->source, "[keypool] refresh waiter");
      g_source_attach (waiter->source, g_task_get_context (task));
      g_task_set_task_data (task, waiter, waiter_free);
    }
  g_ptr_array_add (waiters->tasks, task);
}

/* Answers every waiter: %TRUE, or @error. */
void
kp_auth_waiters_finish (KpAuthWaiters *waiters,
                        const GError  *error)
{
  g_autoptr(GPtrArray) tasks = g_steal_pointer (&waiters->tasks);

  waiters->tasks = g_ptr_array_new_with_free_func (g_object_unref);
  for (guint i = 0; i < tasks->len; i++)
    {
      GTask *task = g_ptr_array_index (tasks, i);

      if (error != NULL)
        g_task_return_error (task, g_error_copy (error));
      else
        g_task_return_boolean (task, TRUE);
    }
}

void
kp_auth_waiters_clear (KpAuthWaiters *waiters)
{
  g_clear_pointer (&waiters->tasks, g_ptr_array_unref);
}
