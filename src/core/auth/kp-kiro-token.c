/* kp-kiro-token.c: a Kiro account's sign-in, sent as access tokens
 *
 * The keyring keeps the whole sign-in as one small JSON text: the refresh
 * token, how it refreshes (social or IdC, and for IdC the device
 * registration's client id and secret), its region, its profile ARN and the
 * file or database it was imported from. None of it reaches the database.
 * KpAuthToken keeps the access token in memory, refreshes it ten minutes
 * before it expires (KP_KIRO_REFRESH_AHEAD_S), and at once after Kiro
 * refused one (an invalid bearer token). A refused refresh reads the source
 * once more (kp_kiro_login_refresh_async()); refused again, the account is
 * dead until the user signs in to Kiro again ("refused").
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include <string.h>

#include "codec/kp-json-guard.h"
#include "kp-credential.h"
#include "kp-kiro-token.h"

struct _KpKiroToken
{
  KpAuthToken    parent_instance;

  KpKiroLogin   *login;          /* NULL until the keyring gave the secret */
  char          *secret;         /* what the keyring keeps; wiped when dropped */
  gboolean       rotated;        /* the refresh token changed since the secret was kept */
};

G_DEFINE_FINAL_TYPE (KpKiroToken, kp_kiro_token, KP_TYPE_AUTH_TOKEN)

/* The secret ---------------------------------------------------------------- */

#define KIRO_SECRET_PREFIX "kiro-login:"

static void
add_member (JsonBuilder *builder,
            const char  *name,
            const char  *value)
{
  if (value == NULL)
    return;
  json_builder_set_member_name (builder, name);
  json_builder_add_string_value (builder, value);
}

/**
 * kp_kiro_login_to_secret:
 *
 * Returns: (transfer full): what the keyring keeps for the sign-in (its
 *   access token is left out: it lives in memory only)
 */
char *
kp_kiro_login_to_secret (const KpKiroLogin *login)
{
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  g_autoptr(JsonNode) root = NULL;
  g_autofree char *json = NULL;
  g_autofree char *encoded = NULL;
  char *secret;

  json_builder_begin_object (builder);
  add_member (builder, "authMethod", kp_kiro_auth_method_to_string (login->method));
  add_member (builder, "refreshToken", login->refresh_token);
  add_member (builder, "region", login->region);
  add_member (builder, "profileArn", login->profile_arn);
  add_member (builder, "clientId", login->client_id);
  add_member (builder, "clientSecret", login->client_secret);
  add_member (builder, "source", login->source);
  json_builder_end_object (builder);
  root = json_builder_get_root (builder);
  json = json_to_string (root, FALSE);
  /* One word, whatever the paths hold: a keyring secret has no spaces. */
  encoded = g_base64_encode ((const guchar *)json, strlen (json));
  secret = g_strconcat (KIRO_SECRET_PREFIX, encoded, NULL);
  kp_secret_wipe (&json);
  kp_secret_wipe (&encoded);
  return secret;
}

/* Whether a credential's secret is a Kiro sign-in Keypool kept, not a key
 * the user pasted (which is sent as it is).
 */
gboolean
kp_kiro_secret_is_login (const char *secret)
{
  return secret != NULL && g_str_has_prefix (secret, KIRO_SECRET_PREFIX);
}

/**
 * kp_kiro_login_from_secret:
 *
 * Returns: (transfer full): the sign-in the keyring kept, or %NULL with
 *   @error set
 */
KpKiroLogin *
kp_kiro_login_from_secret (const char  *secret,
                           GError     **error)
{
  g_autoptr(JsonNode) root = NULL;
  g_autofree guchar *json = NULL;
  gsize len = 0;
  JsonObject *object;
  JsonNode *source;

  if (kp_kiro_secret_is_login (secret) && strlen (secret) <= KP_KIRO_MAX_SECRET)
    json = g_base64_decode (secret + strlen (KIRO_SECRET_PREFIX), &len);
  if (json != NULL && len > 0)
    root = kp_json_parse ((const char *)json, (gssize)len, NULL);
  if (json != NULL)
    explicit_bzero (json, len);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    {
      g_set_error_literal (error, KP_OAUTH_ERROR, KP_OAUTH_ERROR_INVALID,
                           "The Kiro sign-in in the keyring cannot be read: import it again");
      return NULL;
    }
  object = json_node_get_object (root);
  source = json_object_get_member (object, "source");
  return kp_kiro_login_new_from_object (object,
                                        source != NULL && JSON_NODE_HOLDS_VALUE (source) &&
                                          json_node_get_value_type (source) == G_TYPE_STRING
                                          ? json_node_get_string (source) : NULL,
                                        error);
}

static void
update_account (KpKiroToken *self)
{
  JsonObject *account = kp_auth_token_get_account_object (KP_AUTH_TOKEN (self));

  if (self->login != NULL && self->login->profile_arn != NULL)
    json_object_set_string_member (account, "profileArn", self->login->profile_arn);
  else if (json_object_has_member (account, "profileArn"))
    json_object_remove_member (account, "profileArn");
}

/* GObject and KpAuthToken --------------------------------------------------- */

static void
kp_kiro_token_finalize (GObject *object)
{
  KpKiroToken *self = (KpKiroToken *)object;

  g_clear_pointer (&self->login, kp_kiro_login_free);
  kp_secret_wipe (&self->secret);

  G_OBJECT_CLASS (kp_kiro_token_parent_class)->finalize (object);
}

static const char *
kiro_get_secret (KpAuthToken *token)
{
  return KP_KIRO_TOKEN (token)->secret;
}

/* A sign-in Keypool kept, or a token or Kiro API key the user pasted (sent
 * as it is, never refreshed).
 */
static void
kiro_set_secret (KpAuthToken *token,
                 const char  *secret)
{
  KpKiroToken *self = KP_KIRO_TOKEN (token);
  g_autoptr(GError) error = NULL;

  if (g_strcmp0 (secret, self->secret) == 0)
    return;
  g_clear_pointer (&self->login, kp_kiro_login_free);
  kp_secret_wipe (&self->secret);
  self->secret = g_strdup (secret);
  self->rotated = FALSE;
  if (secret != NULL && kp_kiro_secret_is_login (secret))
    {
      self->login = kp_kiro_login_from_secret (secret, &error);
      if (self->login == NULL)
        g_debug ("Kiro: %s", error->message);
    }
  kp_auth_token_reset (token, secret != NULL && kp_kiro_secret_is_login (secret) &&
                                self->login == NULL
                                ? KP_OAUTH_STATE_REFUSED : KP_OAUTH_STATE_NO_TOKEN);
  if (secret != NULL && !kp_kiro_secret_is_login (secret))
    kp_auth_token_set_fixed (token, secret);
  update_account (self);
}

static gboolean
kiro_can_refresh (KpAuthToken *token)
{
  return KP_KIRO_TOKEN (token)->login != NULL;
}

static void
on_login_refreshed (GObject      *object,
                    GAsyncResult *result,
                    gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  GError *error = NULL;

  if (kp_kiro_login_refresh_finish (result, &error))
    g_task_return_boolean (task, TRUE);
  else
    g_task_return_error (task, error);
}

static void
kiro_refresh_async (KpAuthToken         *token,
                    GCancellable        *cancellable,
                    GAsyncReadyCallback  callback,
                    gpointer             user_data)
{
  KpKiroToken *self = KP_KIRO_TOKEN (token);
  GTask *task = g_task_new (self, cancellable, callback, user_data);
  KpKiroLogin *login = kp_kiro_login_copy (self->login);

  /* The refresh's own error says a cancellation. */
  g_task_set_check_cancellable (task, FALSE);
  /* The copy the refresh changes. */
  g_task_set_task_data (task, login, (GDestroyNotify)kp_kiro_login_free);
  /* The token URL of the provider file, when it names one, is the endpoint (tests). */
  kp_kiro_login_refresh_async (login, kp_auth_token_get_session (token),
                               kp_auth_token_get_client (token)->token_url, cancellable,
                               on_login_refreshed, task);
}

static char *
kiro_refresh_finish (KpAuthToken   *token,
                     GAsyncResult  *result,
                     gint64        *expires_in,
                     GError       **error)
{
  KpKiroToken *self = KP_KIRO_TOKEN (token);
  g_autoptr(KpKiroLogin) login = NULL;
  gint64 lifetime;

  if (!g_task_propagate_boolean (G_TASK (result), error))
    return NULL;
  login = kp_kiro_login_copy (g_task_get_task_data (G_TASK (result)));
  /* The login's expiry is on the wall clock; the token's clock may differ (tests). */
  lifetime = login->expires_at - g_get_real_time () / G_USEC_PER_SEC;
  *expires_in = CLAMP (lifetime, 0, 30 * 24 * 3600);
  if (self->login == NULL || g_strcmp0 (self->login->refresh_token, login->refresh_token) != 0)
    {
      self->rotated = TRUE;
      kp_secret_wipe (&self->secret);
      self->secret = kp_kiro_login_to_secret (login);
    }
  g_clear_pointer (&self->login, kp_kiro_login_free);
  self->login = g_steal_pointer (&login);
  update_account (self);
  /* The access token lives in the token, not in the login. */
  return g_steal_pointer (&self->login->access_token);
}

static void
kp_kiro_token_class_init (KpKiroTokenClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  KpAuthTokenClass *token_class = KP_AUTH_TOKEN_CLASS (klass);

  object_class->finalize = kp_kiro_token_finalize;
  token_class->refresh_ahead_s = KP_KIRO_REFRESH_AHEAD_S;
  token_class->get_secret = kiro_get_secret;
  token_class->set_secret = kiro_set_secret;
  token_class->can_refresh = kiro_can_refresh;
  token_class->refresh_async = kiro_refresh_async;
  token_class->refresh_finish = kiro_refresh_finish;
}

static void
kp_kiro_token_init (KpKiroToken *self)
{
}

/**
 * kp_kiro_token_new:
 * @client: the provider's "oauth" object (flow "kiro"; copied)
 * @session: where refreshes are sent
 */
KpAuth *
kp_kiro_token_new (const KpOAuthClient *client,
                   SoupSession         *session)
{
  KpKiroToken *self;

  g_return_val_if_fail (client != NULL, NULL);
  g_return_val_if_fail (SOUP_IS_SESSION (session), NULL);

  self = g_object_new (KP_TYPE_KIRO_TOKEN, NULL);
  kp_auth_token_setup (KP_AUTH_TOKEN (self), client, session);
  return KP_AUTH (self);
}

/**
 * kp_kiro_token_get_login:
 *
 * Returns: (nullable): the sign-in (its region and profile ARN; its access
 *   token is the token's, see kp_auth_token_peek())
 */
const KpKiroLogin *
kp_kiro_token_get_login (KpKiroToken *self)
{
  g_return_val_if_fail (KP_IS_KIRO_TOKEN (self), NULL);
  return self->login;
}

/* Whether Kiro gave a new refresh token since the last call: the keyring's
 * copy must then be replaced.
 */
gboolean
kp_kiro_token_take_rotated (KpKiroToken *self)
{
  gboolean rotated;

  g_return_val_if_fail (KP_IS_KIRO_TOKEN (self), FALSE);
  rotated = self->rotated;
  self->rotated = FALSE;
  return rotated;
}
