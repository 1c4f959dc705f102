/* kp-oauth-token.c: an OAuth refresh token, sent as access tokens
 *
 * The refresh token is the credential's secret: it lives in the keyring and
 * here, never in the database. It buys the access tokens KpAuthToken keeps
 * and sends. A refresh token the endpoint refuses is dead: the user signs in
 * again.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include <string.h>

#include "kp-oauth-token.h"
#include "kp-credential.h"
#include "kp-device-flow.h"

struct _KpOAuthToken
{
  KpAuthToken    parent_instance;

  char          *refresh_token;  /* the secret; wiped when dropped */
  char          *resource_url;   /* where the login said the account's API is, as it said it */
};

G_DEFINE_FINAL_TYPE (KpOAuthToken, kp_oauth_token, KP_TYPE_AUTH_TOKEN)

static void
kp_oauth_token_finalize (GObject *object)
{
  KpOAuthToken *self = (KpOAuthToken *)object;

  kp_secret_wipe (&self->refresh_token);
  g_free (self->resource_url);

  G_OBJECT_CLASS (kp_oauth_token_parent_class)->finalize (object);
}

static const char *
oauth_get_secret (KpAuthToken *token)
{
  return KP_OAUTH_TOKEN (token)->refresh_token;
}

static void
oauth_set_secret (KpAuthToken *token,
                  const char  *secret)
{
  KpOAuthToken *self = KP_OAUTH_TOKEN (token);

  if (g_strcmp0 (secret, self->refresh_token) == 0)
    return;
  /* A new refresh token: nothing of the old one's holds. */
  kp_auth_token_reset (token, KP_OAUTH_STATE_NO_TOKEN);
  kp_secret_wipe (&self->refresh_token);
  self->refresh_token = g_strdup (secret);
}

static gboolean
oauth_can_refresh (KpAuthToken *token)
{
  return KP_OAUTH_TOKEN (token)->refresh_token != NULL;
}

static void
on_grant (GObject      *object,
          GAsyncResult *result,
          gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  GError *error = NULL;
  KpOAuthGrant *grant = kp_oauth_client_request_token_finish (result, &error);

  if (grant == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, grant, (GDestroyNotify)kp_oauth_grant_free);
}

static void
oauth_refresh_async (KpAuthToken         *token,
                     GCancellable        *cancellable,
                     GAsyncReadyCallback  callback,
                     gpointer             user_data)
{
  KpOAuthToken *self = KP_OAUTH_TOKEN (token);
  g_autoptr(GHashTable) form = g_hash_table_new (g_str_hash, g_str_equal);
  GTask *task = g_task_new (self, cancellable, callback, user_data);

  /* The endpoint's own error says a cancellation. */
  g_task_set_check_cancellable (task, FALSE);
  g_hash_table_insert (form, (gpointer)"grant_type", (gpointer)"refresh_token");
  g_hash_table_insert (form, (gpointer)"refresh_token", self->refresh_token);
  kp_oauth_client_request_token_async (kp_auth_token_get_client (token),
                                       kp_auth_token_get_session (token), form, cancellable,
                                       on_grant, task);
}

static char *
oauth_refresh_finish (KpAuthToken   *token,
                      GAsyncResult  *result,
                      gint64        *expires_in,
                      GError       **error)
{
  KpOAuthToken *self = KP_OAUTH_TOKEN (token);
  g_autoptr(KpOAuthGrant) grant = g_task_propagate_pointer (G_TASK (result), error);

  if (grant == NULL)
    return NULL;
  /* Some endpoints rotate the refresh token. It is kept in memory only:
   * the old one in the keyring stays valid for the ones that do not.
   */
  if (grant->refresh_token != NULL && *grant->refresh_token != '\0')
    {
      kp_secret_wipe (&self->refresh_token);
      self->refresh_token = g_steal_pointer (&grant->refresh_token);
    }
  if (grant->resource_url != NULL)
    kp_oauth_token_set_resource_url (self, grant->resource_url);
  *expires_in = grant->expires_in;
  return g_steal_pointer (&grant->access_token);
}

static void
kp_oauth_token_class_init (KpOAuthTokenClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  KpAuthTokenClass *token_class = KP_AUTH_TOKEN_CLASS (klass);

  object_class->finalize = kp_oauth_token_finalize;
  token_class->refused_advice = "Sign in again to use this account.";
  token_class->get_secret = oauth_get_secret;
  token_class->set_secret = oauth_set_secret;
  token_class->can_refresh = oauth_can_refresh;
  token_class->refresh_async = oauth_refresh_async;
  token_class->refresh_finish = oauth_refresh_finish;
}

static void
kp_oauth_token_init (KpOAuthToken *self)
{
}

/**
 * kp_oauth_token_new:
 * @client: the OAuth application (copied)
 * @session: where refreshes are sent
 */
KpAuth *
kp_oauth_token_new (const KpOAuthClient *client,
                    SoupSession         *session)
{
  KpOAuthToken *self;

  g_return_val_if_fail (client != NULL, NULL);
  g_return_val_if_fail (SOUP_IS_SESSION (session), NULL);

  self = g_object_new (KP_TYPE_OAUTH_TOKEN, NULL);
  kp_auth_token_setup (KP_AUTH_TOKEN (self), client, session);
  return KP_AUTH (self);
}

/**
 * kp_oauth_token_set_resource_url:
 * @resource_url: (nullable): where the login says the account's API is
 *   (Qwen Code's `resource_url`: a host, or an https URL)
 *
 * Requests of the account go to `https://<host>/v1` instead of the
 * provider's base URL. Anything but a plain https host is ignored.
 */
void
kp_oauth_token_set_resource_url (KpOAuthToken *self,
                                 const char   *resource_url)
{
  g_autofree char *base = NULL;

  g_return_if_fail (KP_IS_OAUTH_TOKEN (self));

  base = resource_url != NULL && strlen (resource_url) <= KP_OAUTH_RESOURCE_URL_MAX
           ? kp_oauth_api_base_from_resource (resource_url, NULL) : NULL;
  if (base == NULL)
    return;
  json_object_set_string_member (kp_auth_token_get_account_object (KP_AUTH_TOKEN (self)),
                                 "baseUrl", base);
  g_free (self->resource_url);
  self->resource_url = g_strdup (resource_url);
}

/**
 * kp_oauth_token_get_resource_url:
 *
 * Returns: (nullable): the last valid `resource_url` the login or a refresh
 *   named (kept with the account so that a restart knows it)
 */
const char *
kp_oauth_token_get_resource_url (KpOAuthToken *self)
{
  g_return_val_if_fail (KP_IS_OAUTH_TOKEN (self), NULL);
  return self->resource_url;
}
