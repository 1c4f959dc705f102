/* kp-access-token.c: the token clients must send, and where it is kept
 *
 * The token is made on first run and kept in the keyring; without a keyring
 * it lives in a file only its owner can read, in the configuration folder.
 * KEYPOOL_TOKEN (or a test) may fix it instead: then Keypool never changes
 * or stores it.
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

#include "kp-access-token.h"
#include "kp-credential.h"

#define KEYRING_ORIGIN "the keyring"
#define FIXED_ORIGIN   "KEYPOOL_TOKEN"
#define ITEM_LABEL     "Keypool access token"

struct _KpAccessToken
{
  GObject   parent_instance;

  KpVault  *vault;
  char     *config_dir;
  char     *token;
  char     *origin;  /* where the token lives, for messages */
  gboolean  fixed;
};

G_DEFINE_FINAL_TYPE (KpAccessToken, kp_access_token, G_TYPE_OBJECT)

G_DEFINE_QUARK (kp-access-token-error-quark, kp_access_token_error)

static void
set_origin (KpAccessToken *self,
            const char    *origin)
{
  g_free (self->origin);
  self->origin = g_strdup (origin);
}

/* Takes @token: the old one is wiped. */
static void
take_token (KpAccessToken *self,
            char          *token)
{
  kp_secret_wipe (&self->token);
  self->token = token;
}

static void
kp_access_token_finalize (GObject *object)
{
  KpAccessToken *self = (KpAccessToken *)object;

  g_clear_object (&self->vault);
  g_clear_pointer (&self->config_dir, g_free);
  g_clear_pointer (&self->origin, g_free);
  kp_secret_wipe (&self->token);

  G_OBJECT_CLASS (kp_access_token_parent_class)->finalize (object);
}

static void
kp_access_token_class_init (KpAccessTokenClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = kp_access_token_finalize;
}

static void
kp_access_token_init (KpAccessToken *self)
{
}

/**
 * kp_access_token_new:
 * @vault: the keyring the token is kept in
 */
KpAccessToken *
kp_access_token_new (KpVault *vault)
{
  KpAccessToken *self;

  g_return_val_if_fail (KP_IS_VAULT (vault), NULL);

  self = g_object_new (KP_TYPE_ACCESS_TOKEN, NULL);
  self->vault = g_object_ref (vault);
  return self;
}

/**
 * kp_access_token_set_fixed:
 * @token: (nullable): the token clients must send, or %NULL to use the one
 *   kept in the keyring (made on first run)
 */
void
kp_access_token_set_fixed (KpAccessToken *self,
                           const char    *token)
{
  g_return_if_fail (KP_IS_ACCESS_TOKEN (self));

  take_token (self, g_strdup (token));
  set_origin (self, token ? FIXED_ORIGIN : NULL);
  self->fixed = token != NULL;
}

/**
 * kp_access_token_set_config_dir:
 * @config_dir: (nullable): where the token file lives without a keyring
 */
void
kp_access_token_set_config_dir (KpAccessToken *self,
                                const char    *config_dir)
{
  g_return_if_fail (KP_IS_ACCESS_TOKEN (self));

  g_free (self->config_dir);
  self->config_dir = g_strdup (config_dir);
}

/**
 * kp_access_token_get:
 *
 * Returns: (nullable): the token, or %NULL before it is known
 */
const char *
kp_access_token_get (KpAccessToken *self)
{
  g_return_val_if_fail (KP_IS_ACCESS_TOKEN (self), NULL);
  return self->token;
}

/**
 * kp_access_token_get_origin:
 *
 * Returns: (nullable): where the token is kept: "the keyring",
 *   "KEYPOOL_TOKEN" or a file
 */
const char *
kp_access_token_get_origin (KpAccessToken *self)
{
  g_return_val_if_fail (KP_IS_ACCESS_TOKEN (self), NULL);
  return self->origin;
}

/**
 * kp_access_token_generate:
 *
 * Returns: (transfer full) (nullable): a new random token, URL-safe, or
 *   %NULL with @error set
 */
char *
kp_access_token_generate (GError **error)
{
  guint8 random[24];
  g_autofree char *encoded = NULL;

  if (getrandom (random, sizeof random, 0) != sizeof random)
    {
      int saved_errno = errno;

      g_set_error (error, KP_ACCESS_TOKEN_ERROR, KP_ACCESS_TOKEN_ERROR_FAILED,
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
file_path (KpAccessToken *self)
{
  return self->config_dir ? g_build_filename (self->config_dir, "token", NULL) : NULL;
}

/* Once the keyring holds the token, no copy stays on disk. */
static void
remove_file (KpAccessToken *self)
{
  g_autofree char *path = file_path (self);

  if (path != NULL)
    g_unlink (path);
}

static gboolean
write_file (KpAccessToken  *self,
            const char     *token,
            GError        **error)
{
  g_autofree char *path = file_path (self);
  g_autofree char *line = NULL;
  g_autoptr(GError) local_error = NULL;
  gboolean ok;

  if (path == NULL || g_mkdir_with_parents (self->config_dir, 0700) != 0)
    {
      g_set_error (error, KP_ACCESS_TOKEN_ERROR, KP_ACCESS_TOKEN_ERROR_FAILED,
                   "Cannot keep the access token: no usable configuration folder");
      return FALSE;
    }

  line = g_strconcat (token, "\n", NULL);
  ok = g_file_set_contents_full (path, line, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0600,
                                 &local_error);
  explicit_bzero (line, strlen (line));
  if (!ok)
    {
      g_set_error (error, KP_ACCESS_TOKEN_ERROR, KP_ACCESS_TOKEN_ERROR_FAILED,
                   "Cannot save the access token: %s", local_error->message);
      return FALSE;
    }

  set_origin (self, path);
  return TRUE;
}

static char *
read_file (KpAccessToken *self)
{
  g_autofree char *path = file_path (self);
  g_autofree char *contents = NULL;

  if (path == NULL || !g_file_get_contents (path, &contents, NULL, NULL))
    return NULL;
  g_strstrip (contents);
  if (*contents == '\0')
    return NULL;
  return g_steal_pointer (&contents);
}

/**
 * kp_access_token_found_in_keyring:
 * @token: the token the keyring holds
 *
 * Uses the keyring's token, unless one is known already.
 */
void
kp_access_token_found_in_keyring (KpAccessToken *self,
                                  const char    *token)
{
  g_return_if_fail (KP_IS_ACCESS_TOKEN (self));
  g_return_if_fail (token != NULL);

  if (self->token != NULL)
    return;

  take_token (self, g_strdup (token));
  set_origin (self, KEYRING_ORIGIN);
  /* An older copy on disk is no longer needed. */
  remove_file (self);
}

static void
on_first_token_stored (GObject      *object,
                       GAsyncResult *result,
                       gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  KpAccessToken *self = g_task_get_source_object (task);
  g_autoptr(GError) error = NULL;

  if (!kp_vault_store_finish (self->vault, result, &error))
    {
      /* The keyring took no token: keep it in the file instead. */
      g_debug ("Cannot keep the token in the keyring: %s", error->message);
      g_clear_error (&error);
      if (!write_file (self, self->token, &error))
        {
          g_task_return_error (task, g_steal_pointer (&error));
          return;
        }
    }
  else
    {
      set_origin (self, KEYRING_ORIGIN);
      remove_file (self);
    }

  g_task_return_boolean (task, TRUE);
}

/**
 * kp_access_token_ensure_async:
 * @self: a #KpAccessToken
 * @keyring: whether the keyring may keep the token
 * @cancellable: (nullable): a #GCancellable
 * @callback: called when the token is known and kept
 * @user_data: data for @callback
 *
 * Makes sure there is a token: the fixed one, the keyring's, an earlier
 * version's file, or a new one. A new or file token moves into the keyring
 * when it takes it, else it stays in (or goes to) the file.
 */
void
kp_access_token_ensure_async (KpAccessToken       *self,
                              gboolean             keyring,
                              GCancellable        *cancellable,
                              GAsyncReadyCallback  callback,
                              gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  g_autoptr(GError) error = NULL;

  g_return_if_fail (KP_IS_ACCESS_TOKEN (self));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, kp_access_token_ensure_async);

  if (self->token != NULL)
    {
      g_task_return_boolean (task, TRUE);
      return;
    }

  self->token = read_file (self);
  if (self->token == NULL)
    self->token = kp_access_token_generate (&error);
  if (self->token == NULL)
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }

  if (keyring)
    {
      kp_vault_store_async (self->vault, "keypool", KP_VAULT_TOKEN, ITEM_LABEL, self->token,
                            cancellable, on_first_token_stored, g_steal_pointer (&task));
      return;
    }

  if (!write_file (self, self->token, &error))
    g_task_return_error (task, g_steal_pointer (&error));
  else
    g_task_return_boolean (task, TRUE);
}

gboolean
kp_access_token_ensure_finish (KpAccessToken  *self,
                               GAsyncResult   *result,
                               GError        **error)
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
  KpAccessToken *self = g_task_get_source_object (task);
  char *token = g_task_get_task_data (task);
  g_autoptr(GError) error = NULL;

  if (!kp_vault_store_finish (self->vault, result, &error))
    {
      g_task_return_new_error (task, KP_ACCESS_TOKEN_ERROR, KP_ACCESS_TOKEN_ERROR_KEYRING,
                               "The token was not changed: %s.", error->message);
      return;
    }

  take_token (self, g_strdup (token));
  set_origin (self, KEYRING_ORIGIN);
  remove_file (self);
  g_task_return_boolean (task, TRUE);
}

static void
wipe_and_free (gpointer data)
{
  char *token = data;

  kp_secret_wipe (&token);
}

/**
 * kp_access_token_replace_async:
 * @self: a #KpAccessToken
 * @keyring: whether the keyring keeps the token (else the file does)
 * @cancellable: (nullable): a #GCancellable
 * @callback: called when the new token is in use
 * @user_data: data for @callback
 *
 * Makes a new token; clients must use it from then on. The old one stays
 * in use if the new one cannot be kept.
 */
void
kp_access_token_replace_async (KpAccessToken       *self,
                               gboolean             keyring,
                               GCancellable        *cancellable,
                               GAsyncReadyCallback  callback,
                               gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  g_autoptr(GError) error = NULL;
  char *token;

  g_return_if_fail (KP_IS_ACCESS_TOKEN (self));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, kp_access_token_replace_async);

  if (self->fixed)
    {
      g_task_return_new_error (task, KP_ACCESS_TOKEN_ERROR, KP_ACCESS_TOKEN_ERROR_FIXED,
                               "The token comes from KEYPOOL_TOKEN; change that variable instead.");
      return;
    }

  token = kp_access_token_generate (&error);
  if (token == NULL)
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }

  if (!keyring)
    {
      if (write_file (self, token, &error))
        {
          take_token (self, token);
          g_task_return_boolean (task, TRUE);
        }
      else
        {
          kp_secret_wipe (&token);
          g_task_return_error (task, g_steal_pointer (&error));
        }
      return;
    }

  g_task_set_task_data (task, token, wipe_and_free);
  kp_vault_store_async (self->vault, "keypool", KP_VAULT_TOKEN, ITEM_LABEL, token,
                        cancellable, on_new_token_stored, g_steal_pointer (&task));
}

gboolean
kp_access_token_replace_finish (KpAccessToken  *self,
                                GAsyncResult   *result,
                                GError        **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}
