/* kp-kiro-token.c: a Kiro account's sign-in, sent as access tokens
 *
 * The keyring keeps the whole sign-in as one small JSON text: the refresh
 * token, how it refreshes (social or IdC, and for IdC the device
 * registration's client id and secret), its region, its profile ARN and the
 * file or database it was imported from. None of it reaches the database.
 * The access token lives only here. It is refreshed on a timer ten minutes
 * before it expires (KP_KIRO_REFRESH_AHEAD_S), and at once after Kiro refused
 * one (an invalid bearer token). A refused refresh reads the source once
 * more (kp_kiro_login_refresh_async()); refused again, the account is dead
 * until the user signs in to Kiro again ("refused").
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
  GObject        parent_instance;

  KpOAuthClient *client;
  SoupSession   *session;
  KpOAuthClock   clock;
  gpointer       clock_data;

  KpKiroLogin   *login;          /* NULL until the keyring gave the secret */
  char          *secret;         /* what the keyring keeps; wiped when dropped */
  JsonObject    *account;        /* {"profileArn": …} for the requests */
  KpOAuthState   state;
  guint          serial;         /* of the access token: changes with each new one */
  gboolean       after_refusal;  /* the token is fresh from a refresh a refusal asked for,
                                  * and served no request yet */
  gboolean       refusal_waits;  /* a refusal waits for the refresh under way */
  gboolean       rotated;        /* the refresh token changed since the secret was kept */
  gboolean       pasted;         /* the secret is an access token or a Kiro API key
                                  * the user pasted: sent as it is */

  GCancellable  *cancellable;    /* of the refresh under way */
  KpAuthWaiters  waiting;        /* for the refresh under way */
  guint          timer;
  guint          refreshes;
};

enum
{
  SIGNAL_REFRESHED,
  SIGNAL_REFUSED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

static void kp_kiro_token_iface_init (KpAuthInterface *iface);
static void refresh_in_background (KpKiroToken *self);

G_DEFINE_FINAL_TYPE_WITH_CODE (KpKiroToken, kp_kiro_token, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (KP_TYPE_AUTH, kp_kiro_token_iface_init))

static gint64
now_s (KpKiroToken *self)
{
  if (self->clock != NULL)
    return self->clock (self->clock_data);
  return g_get_real_time () / G_USEC_PER_SEC;
}

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
  /* The same object, changed in place: a request being built holds it. */
  if (self->login != NULL && self->login->profile_arn != NULL)
    json_object_set_string_member (self->account, "profileArn", self->login->profile_arn);
  else if (json_object_has_member (self->account, "profileArn"))
    json_object_remove_member (self->account, "profileArn");
}

/* GObject -------------------------------------------------------------------- */

static void
kp_kiro_token_dispose (GObject *object)
{
  kp_kiro_token_stop (KP_KIRO_TOKEN (object));
  G_OBJECT_CLASS (kp_kiro_token_parent_class)->dispose (object);
}

static void
kp_kiro_token_finalize (GObject *object)
{
  KpKiroToken *self = (KpKiroToken *)object;

  g_clear_pointer (&self->login, kp_kiro_login_free);
  kp_secret_wipe (&self->secret);
  g_clear_pointer (&self->account, json_object_unref);
  g_clear_pointer (&self->client, kp_oauth_client_free);
  g_clear_object (&self->session);
  kp_auth_waiters_clear (&self->waiting);

  G_OBJECT_CLASS (kp_kiro_token_parent_class)->finalize (object);
}

static void
kp_kiro_token_class_init (KpKiroTokenClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = kp_kiro_token_dispose;
  object_class->finalize = kp_kiro_token_finalize;

  /**
   * KpKiroToken::refreshed:
   *
   * A new access token is cached.
   */
  signals[SIGNAL_REFRESHED] = g_signal_new ("refreshed", G_TYPE_FROM_CLASS (klass),
                                            G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                            G_TYPE_NONE, 0);
  /**
   * KpKiroToken::refused:
   * @message: why, for the user
   *
   * The sign-in is dead: the user must sign in to Kiro again.
   */
  signals[SIGNAL_REFUSED] = g_signal_new ("refused", G_TYPE_FROM_CLASS (klass),
                                          G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                          G_TYPE_NONE, 1, G_TYPE_STRING);
}

static void
kp_kiro_token_init (KpKiroToken *self)
{
  self->account = json_object_new ();
  kp_auth_waiters_init (&self->waiting);
}

/* KpAuth ------------------------------------------------------------------- */

static KpAuthKindId
kiro_get_kind (KpAuth *auth)
{
  return KP_AUTH_KIND_OAUTH;
}

static const char *
kiro_get_secret (KpAuth *auth)
{
  return KP_KIRO_TOKEN (auth)->secret;
}

static void
kiro_set_secret (KpAuth     *auth,
                 const char *secret)
{
  KpKiroToken *self = KP_KIRO_TOKEN (auth);
  g_autoptr(GError) error = NULL;

  if (g_strcmp0 (secret, self->secret) == 0)
    return;
  kp_kiro_token_stop (self);
  g_clear_pointer (&self->login, kp_kiro_login_free);
  kp_secret_wipe (&self->secret);
  self->secret = g_strdup (secret);
  self->state = KP_OAUTH_STATE_NO_TOKEN;
  self->after_refusal = FALSE;
  self->serial++;
  self->rotated = FALSE;
  self->pasted = secret != NULL && !kp_kiro_secret_is_login (secret);
  if (secret != NULL && !self->pasted)
    {
      self->login = kp_kiro_login_from_secret (secret, &error);
      if (self->login == NULL)
        {
          g_debug ("Kiro: %s", error->message);
          self->state = KP_OAUTH_STATE_REFUSED;
        }
    }
  update_account (self);
}

static gboolean
token_valid (KpKiroToken *self,
             gint64       now)
{
  return self->login != NULL && self->login->access_token != NULL &&
         now < self->login->expires_at - KP_OAUTH_EXPIRY_SLACK_S;
}

static const char *
kiro_get_token (KpAuth *auth)
{
  KpKiroToken *self = KP_KIRO_TOKEN (auth);

  if (self->pasted)
    return self->secret;
  if (token_valid (self, now_s (self)))
    return self->login->access_token;
  refresh_in_background (self);
  return NULL;
}

static gboolean
kiro_can_refresh (KpAuth *auth)
{
  KpKiroToken *self = KP_KIRO_TOKEN (auth);

  return !self->pasted && self->login != NULL && self->state != KP_OAUTH_STATE_REFUSED;
}

/* The access token was refused: it is not sent again. */
static void
drop_refused (KpKiroToken *self)
{
  kp_secret_wipe (&self->login->access_token);
  self->state = KP_OAUTH_STATE_NO_TOKEN;
}

/* A request gave up on the account after Kiro said the bearer token is
 * invalid (see kp_auth_rejected()).
 */
static gboolean
kiro_rejected (KpAuth *auth)
{
  KpKiroToken *self = KP_KIRO_TOKEN (auth);

  if (!kiro_can_refresh (auth) || self->after_refusal)
    return FALSE;
  drop_refused (self);
  self->refusal_waits = TRUE;
  refresh_in_background (self);
  return TRUE;
}

static void
kiro_accepted (KpAuth *auth)
{
  KP_KIRO_TOKEN (auth)->after_refusal = FALSE;
}

static guint
kiro_get_serial (KpAuth *auth)
{
  return KP_KIRO_TOKEN (auth)->serial;
}

static void
kiro_refresh_async (KpAuth              *auth,
                    guint                refused_serial,
                    GCancellable        *cancellable,
                    GAsyncReadyCallback  callback,
                    gpointer             user_data)
{
  KpKiroToken *self = KP_KIRO_TOKEN (auth);
  g_autoptr(GTask) task = g_task_new (self, cancellable, callback, user_data);

  g_task_set_source_tag (task, kp_auth_refresh_async);
  if (!kiro_can_refresh (auth))
    {
      g_task_return_new_error (task, KP_OAUTH_ERROR, KP_OAUTH_ERROR_REFUSED,
                               "The Kiro sign-in was refused.");
      return;
    }
  if (refused_serial == self->serial)
    {
      if (self->after_refusal)
        {
          g_task_return_new_error (task, KP_OAUTH_ERROR, KP_OAUTH_ERROR_REFUSED,
                                   "Kiro refused a token fresh from a refresh.");
          return;
        }
      drop_refused (self);
    }
  else if (self->cancellable == NULL && token_valid (self, now_s (self)))
    {
      /* A newer token came while the refused one was on its way. */
      g_task_return_boolean (task, TRUE);
      return;
    }
  self->refusal_waits = TRUE;
  kp_auth_waiters_add (&self->waiting, g_steal_pointer (&task));
  refresh_in_background (self);
}

static JsonObject *
kiro_get_account (KpAuth *auth)
{
  return KP_KIRO_TOKEN (auth)->account;
}

static void
kp_kiro_token_iface_init (KpAuthInterface *iface)
{
  iface->accepted = kiro_accepted;
  iface->get_kind = kiro_get_kind;
  iface->get_secret = kiro_get_secret;
  iface->set_secret = kiro_set_secret;
  iface->get_token = kiro_get_token;
  iface->rejected = kiro_rejected;
  iface->get_account = kiro_get_account;
  iface->can_refresh = kiro_can_refresh;
  iface->get_serial = kiro_get_serial;
  iface->refresh_async = kiro_refresh_async;
}

/* Refresh ------------------------------------------------------------------ */

static gboolean
on_timer (gpointer user_data)
{
  KpKiroToken *self = user_data;

  self->timer = 0;
  kp_kiro_token_tick (self);
  return G_SOURCE_REMOVE;
}

static void
schedule (KpKiroToken *self,
          gint64       delay_s)
{
  g_clear_handle_id (&self->timer, g_source_remove);
  self->timer = g_timeout_add_seconds ((guint)CLAMP (delay_s, 1, 24 * 3600), on_timer, self);
}

static void
finish_waiting (KpKiroToken  *self,
                const GError *error)
{
  self->refusal_waits = FALSE;
  kp_auth_waiters_finish (&self->waiting, error);
}

typedef struct
{
  KpKiroToken *self;   /* a reference */
  KpKiroLogin *login;  /* the copy the refresh changes */
} Refresh;

static void
on_refreshed (GObject      *object,
              GAsyncResult *result,
              gpointer      user_data)
{
  Refresh *refresh = user_data;
  g_autoptr(KpKiroToken) self = refresh->self;
  g_autoptr(KpKiroLogin) login = refresh->login;
  g_autoptr(GError) error = NULL;
  gint64 now = now_s (self);
  gint64 lifetime;

  g_free (refresh);
  if (!kp_kiro_login_refresh_finish (result, &error))
    {
      if (g_error_matches (error, KP_OAUTH_ERROR, KP_OAUTH_ERROR_CANCELLED))
        {
          finish_waiting (self, error);
          return;
        }
      g_clear_object (&self->cancellable);
      if (g_error_matches (error, KP_OAUTH_ERROR, KP_OAUTH_ERROR_REFUSED))
        {
          self->state = KP_OAUTH_STATE_REFUSED;
          if (self->login != NULL)
            kp_secret_wipe (&self->login->access_token);
          g_clear_handle_id (&self->timer, g_source_remove);
          g_debug ("Kiro refresh refused: %s", error->message);
          finish_waiting (self, error);
          g_signal_emit (self, signals[SIGNAL_REFUSED], 0, error->message);
          return;
        }
      g_debug ("Kiro refresh failed: %s", error->message);
      if (!token_valid (self, now))
        self->state = KP_OAUTH_STATE_NO_TOKEN;
      schedule (self, KP_OAUTH_RETRY_S);
      finish_waiting (self, error);
      return;
    }
  g_clear_object (&self->cancellable);

  /* The login's expiry is on the wall clock; the token's clock may differ (tests). */
  lifetime = login->expires_at - g_get_real_time () / G_USEC_PER_SEC;
  login->expires_at = now + CLAMP (lifetime, 0, 30 * 24 * 3600);
  if (self->login == NULL || g_strcmp0 (self->login->refresh_token, login->refresh_token) != 0)
    {
      self->rotated = TRUE;
      kp_secret_wipe (&self->secret);
      self->secret = kp_kiro_login_to_secret (login);
    }
  g_clear_pointer (&self->login, kp_kiro_login_free);
  self->login = g_steal_pointer (&login);
  update_account (self);
  self->serial++;
  self->after_refusal = self->refusal_waits;
  self->state = KP_OAUTH_STATE_READY;
  schedule (self, self->login->expires_at - KP_KIRO_REFRESH_AHEAD_S - now);
  finish_waiting (self, NULL);
  g_signal_emit (self, signals[SIGNAL_REFRESHED], 0);
}

static void
refresh_in_background (KpKiroToken *self)
{
  Refresh *refresh;

  if (self->login == NULL || self->state == KP_OAUTH_STATE_REFUSED || self->cancellable != NULL)
    return;
  self->cancellable = g_cancellable_new ();
  self->refreshes++;
  refresh = g_new0 (Refresh, 1);
  refresh->self = g_object_ref (self);
  refresh->login = kp_kiro_login_copy (self->login);
  /* The token URL of the provider file, when it names one, is the endpoint (tests). */
  kp_kiro_login_refresh_async (refresh->login, self->session, self->client->token_url,
                               self->cancellable, on_refreshed, refresh);
}

/**
 * kp_kiro_token_tick:
 *
 * What the timer does: refreshes the access token if it is due (by the
 * token's clock). Tests with their own clock call it after moving the clock.
 */
void
kp_kiro_token_tick (KpKiroToken *self)
{
  gint64 now;

  g_return_if_fail (KP_IS_KIRO_TOKEN (self));

  now = now_s (self);
  if (self->login != NULL && self->login->access_token != NULL &&
      now < self->login->expires_at - KP_KIRO_REFRESH_AHEAD_S)
    {
      schedule (self, self->login->expires_at - KP_KIRO_REFRESH_AHEAD_S - now);
      return;
    }
  refresh_in_background (self);
}

/**
 * kp_kiro_token_stop:
 *
 * Cancels the refresh under way and the timer.
 */
void
kp_kiro_token_stop (KpKiroToken *self)
{
  g_return_if_fail (KP_IS_KIRO_TOKEN (self));

  g_clear_handle_id (&self->timer, g_source_remove);
  if (self->cancellable != NULL)
    {
      g_cancellable_cancel (self->cancellable);
      g_clear_object (&self->cancellable);
    }
}

/* Accessors ----------------------------------------------------------------- */

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
  self->client = kp_oauth_client_copy (client);
  self->session = g_object_ref (session);
  return KP_AUTH (self);
}

void
kp_kiro_token_set_clock (KpKiroToken  *self,
                         KpOAuthClock  clock,
                         gpointer      user_data)
{
  g_return_if_fail (KP_IS_KIRO_TOKEN (self));
  self->clock = clock;
  self->clock_data = user_data;
}

/**
 * kp_kiro_token_set_access_token:
 * @expires_at: unix seconds, by the token's clock
 *
 * The access token the import found: used while it is valid, refreshed
 * ten minutes before it expires.
 */
void
kp_kiro_token_set_access_token (KpKiroToken *self,
                                const char  *access_token,
                                gint64       expires_at)
{
  gint64 now;

  g_return_if_fail (KP_IS_KIRO_TOKEN (self));
  if (self->login == NULL)
    return;

  now = now_s (self);
  kp_secret_wipe (&self->login->access_token);
  self->login->access_token = g_strdup (access_token);
  self->login->expires_at = expires_at;
  self->serial++;
  self->after_refusal = FALSE;
  if (token_valid (self, now))
    {
      self->state = KP_OAUTH_STATE_READY;
      schedule (self, expires_at - KP_KIRO_REFRESH_AHEAD_S - now);
    }
}

/**
 * kp_kiro_token_get_login:
 *
 * Returns: (nullable): the sign-in (its region and profile ARN)
 */
const KpKiroLogin *
kp_kiro_token_get_login (KpKiroToken *self)
{
  g_return_val_if_fail (KP_IS_KIRO_TOKEN (self), NULL);
  return self->login;
}

const KpOAuthClient *
kp_kiro_token_get_client (KpKiroToken *self)
{
  g_return_val_if_fail (KP_IS_KIRO_TOKEN (self), NULL);
  return self->client;
}

KpOAuthState
kp_kiro_token_get_state (KpKiroToken *self)
{
  g_return_val_if_fail (KP_IS_KIRO_TOKEN (self), KP_OAUTH_STATE_NO_TOKEN);
  if (self->state == KP_OAUTH_STATE_READY && !token_valid (self, now_s (self)))
    return KP_OAUTH_STATE_NO_TOKEN;
  return self->state;
}

gint64
kp_kiro_token_get_expires_at (KpKiroToken *self)
{
  g_return_val_if_fail (KP_IS_KIRO_TOKEN (self), 0);
  return self->login != NULL ? self->login->expires_at : 0;
}

guint
kp_kiro_token_get_refreshes (KpKiroToken *self)
{
  g_return_val_if_fail (KP_IS_KIRO_TOKEN (self), 0);
  return self->refreshes;
}

/* The valid access token, for the management API; NULL when there is none. */
const char *
kp_kiro_token_peek (KpKiroToken *self)
{
  g_return_val_if_fail (KP_IS_KIRO_TOKEN (self), NULL);
  return token_valid (self, now_s (self)) ? self->login->access_token : NULL;
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
