/* kp-auth-token.c: a sign-in sent as short-lived access tokens
 *
 * What OAuth refresh tokens (KpOAuthToken) and Kiro logins (KpKiroToken)
 * share: the access token lives only here, in memory. It is refreshed on a
 * timer before it expires, so a request finds a valid one cached and never
 * waits for a refresh. When the provider refuses one, the requests it
 * refused wait for one refresh at once (kp_auth_refresh_async()); a token
 * fresh from that refresh refused too means the account itself is refused.
 * A sign-in the endpoint refuses is dead: the owner hears of it ("refused")
 * and the credential is marked invalid. A subclass says only how a refresh
 * is asked for and what its grant holds.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include "kp-auth-token.h"
#include "kp-credential.h"

typedef struct
{
  KpOAuthClient *client;
  SoupSession   *session;
  KpOAuthClock   clock;
  gpointer       clock_data;

  char          *fixed;          /* a token sent as it is (a pasted one): never refreshed */
  char          *access_token;   /* wiped when dropped */
  gint64         expires_at;     /* unix s, by the clock */
  KpOAuthState   state;
  char          *problem;        /* why the last refresh failed, or NULL */
  guint          serial;         /* of the access token: changes with each new one */
  gboolean       after_refusal;  /* the token is fresh from a refresh a refusal asked for,
                                  * and served no request yet */
  gboolean       refusal_waits;  /* a refusal waits for the refresh under way */
  gboolean       held;           /* the account is being set up: nothing is sent yet */

  KpAuthWaiters  waiting;        /* for the refresh under way */
  GCancellable  *cancellable;    /* of the refresh under way */
  guint          timer;
  guint          refreshes;      /* how many refreshes were asked of the endpoint */
  JsonObject    *account;        /* what requests must name of the account */
} KpAuthTokenPrivate;

enum
{
  SIGNAL_REFRESHED,
  SIGNAL_REFUSED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

static void kp_auth_token_iface_init (KpAuthInterface *iface);
static void start_refresh            (KpAuthToken     *self);

G_DEFINE_ABSTRACT_TYPE_WITH_CODE (KpAuthToken, kp_auth_token, G_TYPE_OBJECT,
                                  G_ADD_PRIVATE (KpAuthToken)
                                  G_IMPLEMENT_INTERFACE (KP_TYPE_AUTH, kp_auth_token_iface_init))

#define PRIV(self) ((KpAuthTokenPrivate *)kp_auth_token_get_instance_private (KP_AUTH_TOKEN (self)))

static void
kp_auth_token_dispose (GObject *object)
{
  kp_auth_token_stop (KP_AUTH_TOKEN (object));
  G_OBJECT_CLASS (kp_auth_token_parent_class)->dispose (object);
}

static void
kp_auth_token_finalize (GObject *object)
{
  KpAuthTokenPrivate *priv = PRIV (object);

  kp_secret_wipe (&priv->fixed);
  kp_secret_wipe (&priv->access_token);
  g_clear_pointer (&priv->problem, g_free);
  g_clear_pointer (&priv->client, kp_oauth_client_free);
  g_clear_object (&priv->session);
  kp_auth_waiters_clear (&priv->waiting);
  g_clear_pointer (&priv->account, json_object_unref);

  G_OBJECT_CLASS (kp_auth_token_parent_class)->finalize (object);
}

static void
kp_auth_token_class_init (KpAuthTokenClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = kp_auth_token_dispose;
  object_class->finalize = kp_auth_token_finalize;
  klass->refresh_ahead_s = KP_OAUTH_REFRESH_AHEAD_S;

  /**
   * KpAuthToken::refreshed:
   *
   * A new access token is cached.
   */
  signals[SIGNAL_REFRESHED] = g_signal_new ("refreshed", G_TYPE_FROM_CLASS (klass),
                                            G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                            G_TYPE_NONE, 0);
  /**
   * KpAuthToken::refused:
   * @message: why, for the user
   *
   * The sign-in is dead: the user must sign in again.
   */
  signals[SIGNAL_REFUSED] = g_signal_new ("refused", G_TYPE_FROM_CLASS (klass),
                                          G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                          G_TYPE_NONE, 1, G_TYPE_STRING);
}

static void
kp_auth_token_init (KpAuthToken *self)
{
  KpAuthTokenPrivate *priv = PRIV (self);

  kp_auth_waiters_init (&priv->waiting);
  priv->account = json_object_new ();
}

gint64
kp_auth_token_now (KpAuthToken *self)
{
  KpAuthTokenPrivate *priv = PRIV (self);

  if (priv->clock != NULL)
    return priv->clock (priv->clock_data);
  return g_get_real_time () / G_USEC_PER_SEC;
}

static gboolean
token_valid (KpAuthToken *self,
             gint64       now)
{
  KpAuthTokenPrivate *priv = PRIV (self);

  return priv->access_token != NULL && now < priv->expires_at - KP_OAUTH_EXPIRY_SLACK_S;
}

/* What a refresh needs is there, and the sign-in is not dead. */
static gboolean
can_refresh (KpAuthToken *self)
{
  KpAuthTokenPrivate *priv = PRIV (self);

  return priv->fixed == NULL && priv->state != KP_OAUTH_STATE_REFUSED &&
         KP_AUTH_TOKEN_GET_CLASS (self)->can_refresh (self);
}

/* The access token was refused: it is not sent again. */
static void
drop_refused (KpAuthToken *self)
{
  KpAuthTokenPrivate *priv = PRIV (self);

  kp_secret_wipe (&priv->access_token);
  priv->state = KP_OAUTH_STATE_NO_TOKEN;
}

/* KpAuth ------------------------------------------------------------------- */

static KpAuthKindId
token_get_kind (KpAuth *auth)
{
  return KP_AUTH_KIND_OAUTH;
}

static const char *
token_get_token (KpAuth *auth)
{
  KpAuthToken *self = KP_AUTH_TOKEN (auth);
  KpAuthTokenPrivate *priv = PRIV (self);

  if (priv->fixed != NULL)
    return priv->fixed;
  if (token_valid (self, kp_auth_token_now (self)))
    return priv->held ? NULL : priv->access_token;
  /* The request goes elsewhere; the next one finds a token. */
  if (can_refresh (self))
    start_refresh (self);
  return NULL;
}

/* A request gave up on the account after a refusal (see kp_auth_rejected()). */
static gboolean
token_rejected (KpAuth *auth)
{
  KpAuthToken *self = KP_AUTH_TOKEN (auth);
  KpAuthTokenPrivate *priv = PRIV (self);

  /* Refused again after the refresh a refusal brought: it is the account,
   * not the token.
   */
  if (!can_refresh (self) || priv->after_refusal)
    return FALSE;
  drop_refused (self);
  /* A refresh that failed for want of an answer is tried again on its timer. */
  if (priv->problem == NULL)
    {
      priv->refusal_waits = TRUE;
      start_refresh (self);
    }
  return TRUE;
}

/* The token works: a later refusal is the token's again, worth a refresh. */
static void
token_accepted (KpAuth *auth)
{
  PRIV (auth)->after_refusal = FALSE;
}

static JsonObject *
token_get_account (KpAuth *auth)
{
  KpAuthTokenPrivate *priv = PRIV (auth);

  return json_object_get_size (priv->account) > 0 ? priv->account : NULL;
}

static gboolean
token_can_refresh (KpAuth *auth)
{
  return can_refresh (KP_AUTH_TOKEN (auth));
}

static guint
token_get_serial (KpAuth *auth)
{
  return PRIV (auth)->serial;
}

static void
token_refresh_async (KpAuth              *auth,
                     guint                refused_serial,
                     GCancellable        *cancellable,
                     GAsyncReadyCallback  callback,
                     gpointer             user_data)
{
  KpAuthToken *self = KP_AUTH_TOKEN (auth);
  KpAuthTokenPrivate *priv = PRIV (self);
  g_autoptr(GTask) task = g_task_new (self, cancellable, callback, user_data);

  g_task_set_source_tag (task, kp_auth_refresh_async);
  if (!can_refresh (self))
    {
      g_task_return_new_error (task, KP_OAUTH_ERROR, KP_OAUTH_ERROR_REFUSED, "%s",
                               priv->problem ? priv->problem : "The sign-in was refused.");
      return;
    }
  if (refused_serial == priv->serial)
    {
      if (priv->after_refusal)
        {
          g_task_return_new_error (task, KP_OAUTH_ERROR, KP_OAUTH_ERROR_REFUSED,
                                   "The provider refused a token fresh from a refresh.");
          return;
        }
      drop_refused (self);
    }
  else if (priv->cancellable == NULL && token_valid (self, kp_auth_token_now (self)))
    {
      /* A newer token came while the refused one was on its way. */
      g_task_return_boolean (task, TRUE);
      return;
    }
  priv->refusal_waits = TRUE;
  kp_auth_waiters_add (&priv->waiting, g_steal_pointer (&task));
  start_refresh (self);
}

static const char *
token_get_secret (KpAuth *auth)
{
  return KP_AUTH_TOKEN_GET_CLASS (auth)->get_secret (KP_AUTH_TOKEN (auth));
}

static void
token_set_secret (KpAuth     *auth,
                  const char *secret)
{
  KP_AUTH_TOKEN_GET_CLASS (auth)->set_secret (KP_AUTH_TOKEN (auth), secret);
}

static void
kp_auth_token_iface_init (KpAuthInterface *iface)
{
  iface->get_kind = token_get_kind;
  iface->get_secret = token_get_secret;
  iface->set_secret = token_set_secret;
  iface->get_token = token_get_token;
  iface->rejected = token_rejected;
  iface->accepted = token_accepted;
  iface->get_account = token_get_account;
  iface->can_refresh = token_can_refresh;
  iface->get_serial = token_get_serial;
  iface->refresh_async = token_refresh_async;
}

/* Refresh ------------------------------------------------------------------ */

static gboolean
on_timer (gpointer user_data)
{
  KpAuthToken *self = user_data;

  PRIV (self)->timer = 0;
  kp_auth_token_tick (self);
  return G_SOURCE_REMOVE;
}

static void
schedule (KpAuthToken *self,
          gint64       delay_s)
{
  KpAuthTokenPrivate *priv = PRIV (self);

  g_clear_handle_id (&priv->timer, g_source_remove);
  priv->timer = g_timeout_add_seconds ((guint)CLAMP (delay_s, 1, 24 * 3600), on_timer, self);
}

static void
finish_waiting (KpAuthToken  *self,
                const GError *error)
{
  KpAuthTokenPrivate *priv = PRIV (self);

  priv->refusal_waits = FALSE;
  kp_auth_waiters_finish (&priv->waiting, error);
}

typedef struct
{
  KpAuthToken  *self;         /* a reference */
  GCancellable *cancellable;  /* of this refresh: a newer one may have replaced it */
} Refresh;

static void
on_refreshed (GObject      *object,
              GAsyncResult *result,
              gpointer      user_data)
{
  Refresh *refresh = user_data;
  g_autoptr(KpAuthToken) self = refresh->self;
  g_autoptr(GCancellable) cancellable = refresh->cancellable;
  KpAuthTokenPrivate *priv = PRIV (self);
  KpAuthTokenClass *klass = KP_AUTH_TOKEN_GET_CLASS (self);
  g_autoptr(GError) error = NULL;
  g_autofree char *access_token = NULL;
  gint64 expires_in = 0;
  gint64 now;

  g_free (refresh);
  access_token = klass->refresh_finish (self, result, &expires_in, &error);
  if (priv->cancellable != cancellable)
    {
      /* Stopped, and perhaps another refresh under way since: not this one's to answer. */
      if (priv->cancellable == NULL)
        {
          if (error == NULL)
            g_set_error_literal (&error, KP_OAUTH_ERROR, KP_OAUTH_ERROR_CANCELLED,
                                 "The refresh was stopped.");
          finish_waiting (self, error);
        }
      kp_secret_wipe (&access_token);
      return;
    }
  g_clear_object (&priv->cancellable);

  if (access_token == NULL &&
      (g_error_matches (error, KP_OAUTH_ERROR, KP_OAUTH_ERROR_CANCELLED) ||
       g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED)))
    {
      finish_waiting (self, error);
      return;
    }

  now = kp_auth_token_now (self);
  if (access_token == NULL)
    {
      g_free (priv->problem);
      priv->problem = g_strdup (error->message);
      if (g_error_matches (error, KP_OAUTH_ERROR, KP_OAUTH_ERROR_REFUSED))
        {
          g_autofree char *message =
            klass->refused_advice != NULL
              ? g_strdup_printf ("%s %s", error->message, klass->refused_advice)
              : g_strdup (error->message);

          kp_secret_wipe (&priv->access_token);
          priv->state = KP_OAUTH_STATE_REFUSED;
          g_clear_handle_id (&priv->timer, g_source_remove);
          g_debug ("Refresh refused: %s", error->message);
          finish_waiting (self, error);
          g_signal_emit (self, signals[SIGNAL_REFUSED], 0, message);
          return;
        }
      /* No answer: keep the token while it lasts, and try again soon. */
      g_debug ("Refresh failed: %s", error->message);
      if (!token_valid (self, now))
        priv->state = KP_OAUTH_STATE_NO_TOKEN;
      schedule (self, KP_OAUTH_RETRY_S);
      finish_waiting (self, error);
      return;
    }

  kp_secret_wipe (&priv->access_token);
  priv->access_token = g_steal_pointer (&access_token);
  priv->expires_at = now + expires_in;
  priv->serial++;
  priv->after_refusal = priv->refusal_waits;
  priv->state = KP_OAUTH_STATE_READY;
  g_clear_pointer (&priv->problem, g_free);
  schedule (self, priv->expires_at - klass->refresh_ahead_s - now);
  finish_waiting (self, NULL);
  g_signal_emit (self, signals[SIGNAL_REFRESHED], 0);
}

/* Asks the endpoint for a new access token, unless it is being asked. */
static void
start_refresh (KpAuthToken *self)
{
  KpAuthTokenPrivate *priv = PRIV (self);
  Refresh *refresh;

  if (priv->cancellable != NULL)
    return;

  priv->cancellable = g_cancellable_new ();
  priv->refreshes++;
  refresh = g_new0 (Refresh, 1);
  refresh->self = g_object_ref (self);
  refresh->cancellable = g_object_ref (priv->cancellable);
  KP_AUTH_TOKEN_GET_CLASS (self)->refresh_async (self, priv->cancellable, on_refreshed, refresh);
}

/**
 * kp_auth_token_refresh_async:
 *
 * Buys a new access token. Calls made while one is under way wait for it:
 * the endpoint is asked once.
 */
void
kp_auth_token_refresh_async (KpAuthToken         *self,
                             GCancellable        *cancellable,
                             GAsyncReadyCallback  callback,
                             gpointer             user_data)
{
  KpAuthTokenPrivate *priv;
  g_autoptr(GTask) task = NULL;

  g_return_if_fail (KP_IS_AUTH_TOKEN (self));

  priv = PRIV (self);
  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, kp_auth_token_refresh_async);

  if (priv->state == KP_OAUTH_STATE_REFUSED)
    {
      g_task_return_new_error (task, KP_OAUTH_ERROR, KP_OAUTH_ERROR_REFUSED, "%s",
                               priv->problem ? priv->problem : "The sign-in was refused.");
      return;
    }
  if (!can_refresh (self))
    {
      g_task_return_new_error (task, KP_OAUTH_ERROR, KP_OAUTH_ERROR_REFUSED,
                               "There is no refresh token (keyring locked or unavailable).");
      return;
    }
  kp_auth_waiters_add (&priv->waiting, g_steal_pointer (&task));
  start_refresh (self);
}

gboolean
kp_auth_token_refresh_finish (KpAuthToken   *self,
                              GAsyncResult  *result,
                              GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

/**
 * kp_auth_token_tick:
 *
 * What the timer does: refreshes the access token if it is due (by the
 * token's clock). Tests with their own clock call it after moving the clock.
 */
void
kp_auth_token_tick (KpAuthToken *self)
{
  KpAuthTokenPrivate *priv;
  gint64 ahead;
  gint64 now;

  g_return_if_fail (KP_IS_AUTH_TOKEN (self));

  priv = PRIV (self);
  ahead = KP_AUTH_TOKEN_GET_CLASS (self)->refresh_ahead_s;
  now = kp_auth_token_now (self);
  if (priv->access_token != NULL && now < priv->expires_at - ahead)
    {
      schedule (self, priv->expires_at - ahead - now);
      return;
    }
  if (can_refresh (self))
    start_refresh (self);
}

/**
 * kp_auth_token_stop:
 *
 * Cancels the refresh under way and the timer.
 */
void
kp_auth_token_stop (KpAuthToken *self)
{
  KpAuthTokenPrivate *priv;

  g_return_if_fail (KP_IS_AUTH_TOKEN (self));

  priv = PRIV (self);
  g_clear_handle_id (&priv->timer, g_source_remove);
  if (priv->cancellable != NULL)
    {
      g_cancellable_cancel (priv->cancellable);
      g_clear_object (&priv->cancellable);
    }
}

/* For subclasses ------------------------------------------------------------- */

/* What every subclass's _new() does: @client is copied. */
void
kp_auth_token_setup (KpAuthToken         *self,
                     const KpOAuthClient *client,
                     SoupSession         *session)
{
  KpAuthTokenPrivate *priv = PRIV (self);

  priv->client = kp_oauth_client_copy (client);
  priv->session = g_object_ref (session);
}

/**
 * kp_auth_token_reset:
 * @state: the state of the new sign-in (%KP_OAUTH_STATE_REFUSED when it
 *   cannot be used at all)
 *
 * A new sign-in: nothing of the old one's holds.
 */
void
kp_auth_token_reset (KpAuthToken  *self,
                     KpOAuthState  state)
{
  KpAuthTokenPrivate *priv = PRIV (self);

  kp_auth_token_stop (self);
  kp_secret_wipe (&priv->access_token);
  kp_secret_wipe (&priv->fixed);
  priv->expires_at = 0;
  priv->state = state;
  g_clear_pointer (&priv->problem, g_free);
  priv->after_refusal = FALSE;
  priv->serial++;
}

/* A token sent as it is, never refreshed (a Kiro access token or API key
 * the user pasted); NULL for none.
 */
void
kp_auth_token_set_fixed (KpAuthToken *self,
                         const char  *token)
{
  KpAuthTokenPrivate *priv = PRIV (self);

  kp_secret_wipe (&priv->fixed);
  priv->fixed = g_strdup (token);
}

/* The object kp_auth_get_account() gives when it has members: changed in
 * place, since a request being built holds it.
 */
JsonObject *
kp_auth_token_get_account_object (KpAuthToken *self)
{
  return PRIV (self)->account;
}

/* Accessors ----------------------------------------------------------------- */

void
kp_auth_token_set_clock (KpAuthToken  *self,
                         KpOAuthClock  clock,
                         gpointer      user_data)
{
  KpAuthTokenPrivate *priv;

  g_return_if_fail (KP_IS_AUTH_TOKEN (self));
  priv = PRIV (self);
  priv->clock = clock;
  priv->clock_data = user_data;
}

/**
 * kp_auth_token_set_access_token:
 * @expires_at: unix seconds, by the token's clock
 *
 * An access token known from elsewhere (a CLI's credentials file): used while
 * it is valid, and refreshed before it expires.
 */
void
kp_auth_token_set_access_token (KpAuthToken *self,
                                const char  *access_token,
                                gint64       expires_at)
{
  KpAuthTokenPrivate *priv;
  gint64 ahead;
  gint64 now;

  g_return_if_fail (KP_IS_AUTH_TOKEN (self));

  priv = PRIV (self);
  ahead = KP_AUTH_TOKEN_GET_CLASS (self)->refresh_ahead_s;
  now = kp_auth_token_now (self);
  kp_secret_wipe (&priv->access_token);
  priv->access_token = g_strdup (access_token);
  priv->expires_at = expires_at;
  priv->serial++;
  priv->after_refusal = FALSE;
  if (token_valid (self, now))
    {
      priv->state = KP_OAUTH_STATE_READY;
      schedule (self, expires_at - ahead - now);
    }
}

gint64
kp_auth_token_get_expires_at (KpAuthToken *self)
{
  g_return_val_if_fail (KP_IS_AUTH_TOKEN (self), 0);
  return PRIV (self)->expires_at;
}

KpOAuthState
kp_auth_token_get_state (KpAuthToken *self)
{
  KpAuthTokenPrivate *priv;

  g_return_val_if_fail (KP_IS_AUTH_TOKEN (self), KP_OAUTH_STATE_NO_TOKEN);

  priv = PRIV (self);
  if (priv->state == KP_OAUTH_STATE_READY && !token_valid (self, kp_auth_token_now (self)))
    return KP_OAUTH_STATE_NO_TOKEN;
  return priv->state;
}

/**
 * kp_auth_token_get_problem:
 *
 * Returns: (nullable): why the last refresh failed
 */
const char *
kp_auth_token_get_problem (KpAuthToken *self)
{
  g_return_val_if_fail (KP_IS_AUTH_TOKEN (self), NULL);
  return PRIV (self)->problem;
}

const KpOAuthClient *
kp_auth_token_get_client (KpAuthToken *self)
{
  g_return_val_if_fail (KP_IS_AUTH_TOKEN (self), NULL);
  return PRIV (self)->client;
}

SoupSession *
kp_auth_token_get_session (KpAuthToken *self)
{
  g_return_val_if_fail (KP_IS_AUTH_TOKEN (self), NULL);
  return PRIV (self)->session;
}

gboolean
kp_auth_token_is_refreshing (KpAuthToken *self)
{
  g_return_val_if_fail (KP_IS_AUTH_TOKEN (self), FALSE);
  return PRIV (self)->cancellable != NULL;
}

/* How many refreshes were sent: tests see that a cached token is used. */
guint
kp_auth_token_get_refreshes (KpAuthToken *self)
{
  g_return_val_if_fail (KP_IS_AUTH_TOKEN (self), 0);
  return PRIV (self)->refreshes;
}

/**
 * kp_auth_token_set_held:
 * @held: whether requests must wait (the account is being set up)
 *
 * A held token is refreshed as usual but not given to requests.
 */
void
kp_auth_token_set_held (KpAuthToken *self,
                        gboolean     held)
{
  g_return_if_fail (KP_IS_AUTH_TOKEN (self));
  PRIV (self)->held = held;
}

gboolean
kp_auth_token_get_held (KpAuthToken *self)
{
  g_return_val_if_fail (KP_IS_AUTH_TOKEN (self), FALSE);
  return PRIV (self)->held;
}

/**
 * kp_auth_token_peek:
 *
 * Returns: (nullable): the valid access token, held or not (for setting the
 *   account up, and for its management API)
 */
const char *
kp_auth_token_peek (KpAuthToken *self)
{
  g_return_val_if_fail (KP_IS_AUTH_TOKEN (self), NULL);
  return token_valid (self, kp_auth_token_now (self)) ? PRIV (self)->access_token : NULL;
}

const char *
kp_oauth_state_to_string (KpOAuthState state)
{
  switch (state)
    {
    case KP_OAUTH_STATE_READY:
      return "ready";
    case KP_OAUTH_STATE_REFUSED:
      return "refused";
    case KP_OAUTH_STATE_NO_TOKEN:
    default:
      return "no-token";
    }
}
