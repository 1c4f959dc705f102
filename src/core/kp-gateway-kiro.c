/* kp-gateway-kiro.c: Kiro accounts
 *
 * Part of KpGateway. A Kiro account comes in from Kiro's own sign-in (its
 * token file and device registration, or kiro-cli's database, read only);
 * the keyring keeps the sign-in (see kp-kiro-token.c) and the credential's
 * auth, a KpKiroToken, keeps it refreshed. A refresh that gives a new
 * refresh token replaces the keyring's copy. After each refresh the
 * account's usage limits and models are read (kp-kiro-manage.c).
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include <string.h>

#include "kp-gateway-private.h"
#include "kp-http.h"
#include "kp-kiro-manage.h"
#include "auth/kp-cli-creds.h"
#include "auth/kp-kiro-token.h"

static void
on_secret_stored (GObject      *object,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  g_autoptr(GError) error = NULL;

  if (!kp_vault_store_finish (KP_VAULT (object), result, &error))
    g_warning ("Kiro's new refresh token was not kept in the keyring: %s", error->message);
}

/* Kiro rotates refresh tokens: the keyring keeps the newest. */
static void
keep_rotated (KpGateway    *self,
              KpCredential *credential,
              KpKiroToken  *token)
{
  KpProvider *provider;
  g_autofree char *name = NULL;
  g_autofree char *item_label = NULL;
  const char *secret = kp_auth_get_secret (KP_AUTH (token));
  const char *label = kp_credential_get_label (credential);

  if (!kp_kiro_token_take_rotated (token) || secret == NULL ||
      kp_gateway_get_keyring_problem (self) != NULL)
    return;
  provider = kp_catalog_get_provider (kp_gateway_get_catalog (self),
                                      kp_credential_get_provider_id (credential));
  name = g_strdup_printf ("%" G_GINT64_FORMAT, kp_credential_get_id (credential));
  item_label = g_strdup_printf ("Keypool: %s key%s%s",
                                provider ? kp_provider_get_name (provider)
                                         : kp_credential_get_provider_id (credential),
                                label && *label ? " " : "", label ? label : "");
  kp_credential_set_secret (credential, secret);
  kp_vault_store_async (kp_gateway_get_vault (self), kp_credential_get_provider_id (credential),
                        name, item_label, secret, NULL, on_secret_stored, NULL);
}

static void
on_refreshed (KpKiroToken *token,
              KpGateway   *self)
{
  KpCredential *credential = kp_gateway_credential_of_auth (self, KP_AUTH (token));

  if (credential != NULL)
    {
      keep_rotated (self, credential, token);
      kp_kiro_manage_read (self, credential);
    }
  kp_gateway_emit_changed (self);
}

/**
 * kp_gateway_attach_kiro:
 *
 * Gives a credential of a Kiro provider its auth: a kept sign-in is
 * refreshed, a pasted token is sent as it is.
 */
void
kp_gateway_attach_kiro (KpGateway           *self,
                        KpCredential        *credential,
                        const KpOAuthClient *client)
{
  g_autoptr(KpAuth) auth = kp_kiro_token_new (client, kp_gateway_get_auth_session (self));

  g_signal_connect_object (auth, "refused", G_CALLBACK (kp_gateway_auth_refused), self, 0);
  g_signal_connect_object (auth, "refreshed", G_CALLBACK (on_refreshed), self, 0);
  kp_credential_set_auth (credential, auth);
}

/* Import ---------------------------------------------------------------------- */

/* Where Kiro keeps its sign-in: the provider file's import_file, Kiro's token
 * file, kiro-cli's database, the older amazon-q CLI's database.
 */
static char *
find_source (const KpOAuthClient *client)
{
  const char *data_home = g_getenv ("XDG_DATA_HOME");
  g_autofree char *share = data_home != NULL && g_path_is_absolute (data_home)
                             ? g_strdup (data_home)
                             : kp_cli_creds_expand_path ("~/.local/share");
  g_autofree char *cli = g_build_filename (share, "kiro-cli", "data.sqlite3", NULL);
  g_autofree char *q = g_build_filename (share, "amazon-q", "data.sqlite3", NULL);
  const char *candidates[] = {
    client->import_file, "~/.aws/sso/cache/kiro-auth-token.json", cli,
    "~/Library/Application Support/kiro-cli/data.sqlite3", q,
  };

  for (guint i = 0; i < G_N_ELEMENTS (candidates); i++)
    if (candidates[i] != NULL && kp_cli_creds_exists (candidates[i]))
      return kp_cli_creds_expand_path (candidates[i]);
  return NULL;
}

/**
 * kp_gateway_dup_kiro_source:
 *
 * Returns: (transfer full) (nullable): the Kiro sign-in an import would read
 */
char *
kp_gateway_dup_kiro_source (const KpOAuthClient *client)
{
  return find_source (client);
}

static KpCredential *
find_login (KpGateway   *self,
            const char  *provider_id,
            KpKiroLogin *login)
{
  GPtrArray *credentials = kp_gateway_get_credentials (self);

  for (guint i = 0; i < credentials->len; i++)
    {
      KpCredential *credential = g_ptr_array_index (credentials, i);
      KpAuth *auth = kp_credential_get_auth (credential);
      const KpKiroLogin *known = auth != NULL && KP_IS_KIRO_TOKEN (auth)
                                   ? kp_kiro_token_get_login (KP_KIRO_TOKEN (auth)) : NULL;

      if (known != NULL && g_str_equal (kp_credential_get_provider_id (credential), provider_id) &&
          kp_http_secret_equal (known->refresh_token, login->refresh_token))
        return credential;
    }
  return NULL;
}

static void
on_kiro_stored (GObject      *object,
                GAsyncResult *result,
                gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  KpKiroLogin *login = g_task_get_task_data (task);
  g_autoptr(GError) error = NULL;
  g_autoptr(KpCredential) credential = NULL;
  KpAuth *auth;

  credential = kp_gateway_add_key_finish (KP_GATEWAY (object), result, NULL, &error);
  if (credential == NULL)
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  auth = kp_credential_get_auth (credential);
  if (auth != NULL && KP_IS_KIRO_TOKEN (auth))
    {
      if (login->access_token != NULL)
        kp_auth_token_set_access_token (KP_AUTH_TOKEN (auth), login->access_token,
                                        login->expires_at);
      /* Refreshed now if the token is old; either way its usage is read. */
      if (kp_auth_get_token (auth) != NULL)
        kp_kiro_manage_read (KP_GATEWAY (object), credential);
    }
  g_task_return_pointer (task, g_steal_pointer (&credential), g_object_unref);
}

/**
 * kp_gateway_import_kiro_async:
 * @client: the provider's "oauth" object (flow "kiro")
 * @path: (nullable): the token file or kiro-cli database; %NULL: the usual places
 *
 * Adds the account Kiro (or kiro-cli) is signed in with. Its files are only read.
 */
void
kp_gateway_import_kiro_async (KpGateway           *self,
                              const char          *provider_id,
                              const KpOAuthClient *client,
                              const char          *label,
                              const char          *path,
                              GCancellable        *cancellable,
                              GAsyncReadyCallback  callback,
                              gpointer             user_data)
{
  g_autoptr(GTask) task = g_task_new (self, cancellable, callback, user_data);
  g_autoptr(GError) error = NULL;
  g_autofree char *source = path != NULL ? g_strdup (path) : find_source (client);
  g_autoptr(KpKiroLogin) login = NULL;
  g_autofree char *secret = NULL;
  KpCredential *existing;

  g_task_set_source_tag (task, kp_gateway_import_kiro_async);
  if (source == NULL)
    {
      g_task_return_new_error (task, KP_GATEWAY_ERROR, KP_GATEWAY_ERROR_NOT_FOUND,
                               "Nothing imported: Kiro's sign-in was not found "
                               "(~/.aws/sso/cache/kiro-auth-token.json, or kiro-cli's "
                               "data.sqlite3). Sign in to Kiro first.");
      return;
    }
  login = kp_kiro_login_read_source (source, &error);
  if (login == NULL)
    {
      g_task_return_new_error (task, KP_GATEWAY_ERROR, KP_GATEWAY_ERROR_INVALID,
                               "Nothing imported: %s", error->message);
      return;
    }
  existing = find_login (self, provider_id, login);
  if (existing != NULL)
    {
      g_task_return_new_error (task, KP_GATEWAY_ERROR, KP_GATEWAY_ERROR_INVALID,
                               "That account is already key %" G_GINT64_FORMAT
                               "; “keypool keys reset %" G_GINT64_FORMAT "” tries it again.",
                               kp_credential_get_id (existing), kp_credential_get_id (existing));
      return;
    }

  secret = kp_kiro_login_to_secret (login);
  g_task_set_task_data (task, g_steal_pointer (&login), (GDestroyNotify)kp_kiro_login_free);
  kp_gateway_add_key_async (self, provider_id, label ? label : "", 1.0, secret, FALSE,
                            cancellable, on_kiro_stored, g_steal_pointer (&task));
  kp_secret_wipe (&secret);
}
