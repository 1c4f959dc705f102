/* kp-oauth-token.c: an OAuth refresh token, sent as access tokens
 *
 * The refresh token is the credential's secret: it lives in the keyring and
 * here, never in the database. The access token it buys lives only here, in
 * memory. It is refreshed on a timer before it expires, so a request finds a
 * valid one cached and never waits for a refresh; when the provider refuses
 * one (HTTP 401), it is refreshed once more at once, and the requests it
 * refused wait for that one refresh (kp_auth_refresh_async()). A refresh token the
 * endpoint refuses is dead: the owner hears of it ("refused") and the
 * credential is marked invalid.
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
  GObject        parent_instance;

  KpOAuthClient *client;
  SoupSession   *session;
  KpOAuthClock   clock;
  gpointer       clock_data;

  char          *refresh_token;  /* the secret; wiped when dropped */
  char          *access_token;   /* wiped when dropped */
  gint64         expires_at;     /* unix s */
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
  JsonObject    *account;        /* {"baseUrl": …} when the login named its API (Qwen) */
  char          *resource_url;   /* what the login named it by, as it said it */
};

enum
{
  SIGNAL_REFRESHED,
  SIGNAL_REFUSED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

static void kp_oauth_token_iface_init (KpAuthInterface *iface);
static void schedule (KpOAuthToken *self,
                      gint64        delay_s);

G_DEFINE_FINAL_TYPE_WITH_CODE (KpOAuthToken, kp_oauth_token, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (KP_TYPE_AUTH, kp_oauth_token_iface_init))

static gint64
now_s (KpOAuthToken *self)
{
  if (self->clock != NULL)
    return self->clock (self->clock_data);
  return g_get_real_time () / G_USEC_PER_SEC;
}

static void
kp_oauth_token_dispose (GObject *object)
{
  KpOAuthToken *self = (KpOAuthToken *)object;

  kp_oauth_token_stop (self);
  G_OBJECT_CLASS (kp_oauth_token_parent_class)->dispose (object);
}

static void
kp_oauth_token_finalize (GObject *object)
{
  KpOAuthToken *self = (KpOAuthToken *)object;

  kp_secret_wipe (&self->refresh_token);
  kp_secret_wipe (&self->access_token);
  g_clear_pointer (&self->problem, g_free);
  g_clear_pointer (&self->client, kp_oauth_client_free);
  g_clear_object (&self->session);
  kp_auth_waiters_clear (&self->waiting);
  g_clear_pointer (&self->account, json_object_unref);
  g_free (self->resource_url);

  G_OBJECT_CLASS (kp_oauth_token_parent_class)->finalize (object);
}

static void
kp_oauth_token_class_init (KpOAuthTokenClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = kp_oauth_token_dispose;
  object_class->finalize = kp_oauth_token_finalize;

  /**
   * KpOAuthToken::refreshed:
   *
   * A new access token is cached.
   */
  signals[SIGNAL_REFRESHED] = g_signal_new ("refreshed", G_TYPE_FROM_CLASS (klass),
                                            G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                            G_TYPE_NONE, 0);
  /**
   * KpOAuthToken::refused:
   * @message: why, for the user
   *
   * The refresh token is dead: the user must sign in again.
   */
  signals[SIGNAL_REFUSED] = g_signal_new ("refused", G_TYPE_FROM_CLASS (klass),
                                          G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                          G_TYPE_NONE, 1, G_TYPE_STRING);
}

static void
kp_oauth_token_init (KpOAuthToken *self)
{
  kp_auth_waiters_init (&self->waiting);
  self->account = json_object_new ();
}

/* KpAuth ------------------------------------------------------------------- */

static KpAuthKindId
oauth_get_kind (KpAuth *auth)
{
  return KP_AUTH_KIND_OAUTH;
}

static const char *
oauth_get_secret (KpAuth *auth)
{
  return KP_OAUTH_TOKEN (auth)->refresh_token;
}

static void
oauth_set_secret (KpAuth     *auth,
                  const char *secret)
{
  KpOAuthToken *self = KP_OAUTH_TOKEN (auth);

  if (g_strcmp0 (secret, self->refresh_token) == 0)
    return;
  /* A new refresh token: nothing of the old one's holds. */
  kp_oauth_token_stop (self);
  kp_secret_wipe (&self->refresh_token);
  kp_secret_wipe (&self->access_token);
  self->refresh_token = g_strdup (secret);
  self->expires_at = 0;
  self->state = KP_OAUTH_STATE_NO_TOKEN;
  g_clear_pointer (&self->problem, g_free);
  self->after_refusal = FALSE;
  self->serial++;
}

static gboolean
token_valid (KpOAuthToken *self,
             gint64        now)
{
  return self->access_token != NULL && now < self->expires_at - KP_OAUTH_EXPIRY_SLACK_S;
}

static void
refresh_in_background (KpOAuthToken *self)
{
  if (self->refresh_token == NULL || self->state == KP_OAUTH_STATE_REFUSED ||
      self->cancellable != NULL)
    return;
  kp_oauth_token_refresh_async (self, NULL, NULL, NULL);
}

static const char *
oauth_get_token (KpAuth *auth)
{
  KpOAuthToken *self = KP_OAUTH_TOKEN (auth);

  if (token_valid (self, now_s (self)))
    return self->held ? NULL : self->access_token;
  /* The request goes elsewhere; the next one finds a token. */
  refresh_in_background (self);
  return NULL;
}

static void start_refresh (KpOAuthToken *self);

/* The access token was refused: it is not sent again. */
static void
drop_refused (KpOAuthToken *self)
{
  kp_secret_wipe (&self->access_token);
  self->state = KP_OAUTH_STATE_NO_TOKEN;
}

/* A request gave up on the account after a 401 (see kp_auth_rejected()). */
static gboolean
oauth_rejected (KpAuth *auth)
{
  KpOAuthToken *self = KP_OAUTH_TOKEN (auth);

  if (self->state == KP_OAUTH_STATE_REFUSED || self->refresh_token == NULL)
    return FALSE;
  /* Refused again after the refresh a 401 brought: it is the account, not
   * the token.
   */
  if (self->after_refusal)
    return FALSE;
  drop_refused (self);
  /* A refresh that failed for want of an answer is tried again on its timer. */
  if (self->problem == NULL && self->refresh_token != NULL)
    {
      self->refusal_waits = TRUE;
      start_refresh (self);
    }
  return TRUE;
}

/* The token works: a later 401 is the token's again, worth a refresh. */
static void
oauth_accepted (KpAuth *auth)
{
  KP_OAUTH_TOKEN (auth)->after_refusal = FALSE;
}

static gboolean
oauth_can_refresh (KpAuth *auth)
{
  KpOAuthToken *self = KP_OAUTH_TOKEN (auth);

  return self->refresh_token != NULL && self->state != KP_OAUTH_STATE_REFUSED;
}

static guint
oauth_get_serial (KpAuth *auth)
{
  return KP_OAUTH_TOKEN (auth)->serial;
}

static void
oauth_refresh_async (KpAuth              *auth,
                     guint                refused_serial,
                     GCancellable        *cancellable,
                     GAsyncReadyCallback  callback,
                     gpointer             user_data)
{
  KpOAuthToken *self = KP_OAUTH_TOKEN (auth);
  g_autoptr(GTask) task = g_task_new (self, cancellable, callback, user_data);

  g_task_set_source_tag (task, kp_auth_refresh_async);
  if (!oauth_can_refresh (auth))
    {
      g_task_return_new_error (task, KP_OAUTH_ERROR, KP_OAUTH_ERROR_REFUSED, "%s",
                               self->problem ? self->problem : "The sign-in was refused.");
      return;
    }
  if (refused_serial == self->serial)
    {
      if (self->after_refusal)
        {
          g_task_return_new_error (task, KP_OAUTH_ERROR, KP_OAUTH_ERROR_REFUSED,
                                   "The provider refused a token fresh from a refresh.");
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
  start_refresh (self);
}

static JsonObject *
oauth_get_account (KpAuth *auth)
{
  KpOAuthToken *self = KP_OAUTH_TOKEN (auth);

  return json_object_get_size (self->account) > 0 ? self->account : NULL;
}

static void
kp_oauth_token_iface_init (KpAuthInterface *iface)
{
  iface->get_account = oauth_get_account;
  iface->accepted = oauth_accepted;
  iface->get_kind = oauth_get_kind;
  iface->get_secret = oauth_get_secret;
  iface->set_secret = oauth_set_secret;
  iface->get_token = oauth_get_token;
  iface->rejected = oauth_rejected;
  iface->can_refresh = oauth_can_refresh;
  iface->get_serial = oauth_get_serial;
  iface->refresh_async = oauth_refresh_async;
}

/* Refresh ------------------------------------------------------------------ */

static gboolean
on_timer (gpointer user_data)
{
  KpOAuthToken *self = user_data;

  self->timer = 0;
  kp_oauth_token_tick (self);
  return G_SOURCE_REMOVE;
}

static void
schedule (KpOAuthToken *self,
          gint64        delay_s)
{
  g_clear_handle_id (&self->timer, g_source_remove);
  self->timer = g_timeout_add_seconds ((guint)CLAMP (delay_s, 1, 24 * 3600), on_timer, self);
}

static void
finish_waiting (KpOAuthToken *self,
                const GError *error)
{
  self->refusal_waits = FALSE;
  kp_auth_waiters_finish (&self->waiting, error);
}

static void
on_refreshed (GObject      *object,
              GAsyncResult *result,
              gpointer      user_data)
{
  g_autoptr(KpOAuthToken) self = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(KpOAuthGrant) grant = NULL;
  gint64 now;

  grant = kp_oauth_client_request_token_finish (result, &error);
  g_clear_object (&self->cancellable);

  if (grant == NULL && g_error_matches (error, KP_OAUTH_ERROR, KP_OAUTH_ERROR_CANCELLED))
    {
      finish_waiting (self, error);
      return;
    }

  now = now_s (self);
  if (grant == NULL)
    {
      g_free (self->problem);
      self->problem = g_strdup (error->message);
      if (g_error_matches (error, KP_OAUTH_ERROR, KP_OAUTH_ERROR_REFUSED))
        {
          g_autofree char *message =
            g_strdup_printf ("%s Sign in again to use this account.", error->message);

          kp_secret_wipe (&self->access_token);
          self->state = KP_OAUTH_STATE_REFUSED;
          g_clear_handle_id (&self->timer, g_source_remove);
          g_debug ("OAuth refresh refused: %s", error->message);
          finish_waiting (self, error);
          g_signal_emit (self, signals[SIGNAL_REFUSED], 0, message);
          return;
        }
      /* No answer: keep the token while it lasts, and try again soon. */
      g_debug ("OAuth refresh failed: %s", error->message);
      if (!token_valid (self, now))
        self->state = KP_OAUTH_STATE_NO_TOKEN;
      schedule (self, KP_OAUTH_RETRY_S);
      finish_waiting (self, error);
      return;
    }

  kp_secret_wipe (&self->access_token);
  self->access_token = g_steal_pointer (&grant->access_token);
  self->expires_at = now + grant->expires_in;
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
  self->serial++;
  self->after_refusal = self->refusal_waits;
  self->state = KP_OAUTH_STATE_READY;
  g_clear_pointer (&self->problem, g_free);
  schedule (self, self->expires_at - KP_OAUTH_REFRESH_AHEAD_S - now);
  finish_waiting (self, NULL);
  g_signal_emit (self, signals[SIGNAL_REFRESHED], 0);
}

/**
 * kp_oauth_token_refresh_async:
 *
 * Buys a new access token with the refresh token. Calls made while one is
 * under way wait for it: the endpoint is asked once.
 */
void
kp_oauth_token_refresh_async (KpOAuthToken        *self,
                              GCancellable        *cancellable,
                              GAsyncReadyCallback  callback,
                              gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;

  g_return_if_fail (KP_IS_OAUTH_TOKEN (self));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, kp_oauth_token_refresh_async);

  if (self->refresh_token == NULL)
    {
      g_task_return_new_error (task, KP_OAUTH_ERROR, KP_OAUTH_ERROR_REFUSED,
                               "There is no refresh token (keyring locked or unavailable).");
      return;
    }
  if (self->state == KP_OAUTH_STATE_REFUSED)
    {
      g_task_return_new_error (task, KP_OAUTH_ERROR, KP_OAUTH_ERROR_REFUSED, "%s",
                               self->problem ? self->problem : "The sign-in was refused.");
      return;
    }

  kp_auth_waiters_add (&self->waiting, g_steal_pointer (&task));
  start_refresh (self);
}

/* Asks the endpoint for a new access token, unless it is being asked. */
static void
start_refresh (KpOAuthToken *self)
{
  g_autoptr(GHashTable) form = NULL;

  if (self->cancellable != NULL)
    return;

  self->cancellable = g_cancellable_new ();
  self->refreshes++;
  form = g_hash_table_new (g_str_hash, g_str_equal);
  g_hash_table_insert (form, (gpointer)"grant_type", (gpointer)"refresh_token");
  g_hash_table_insert (form, (gpointer)"refresh_token", self->refresh_token);
  kp_oauth_client_request_token_async (self->client, self->session, form, self->cancellable,
                                       on_refreshed, g_object_ref (self));
}

gboolean
kp_oauth_token_refresh_finish (KpOAuthToken  *self,
                               GAsyncResult  *result,
                               GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

/**
 * kp_oauth_token_tick:
 *
 * What the timer does: refreshes the access token if it is due (by the
 * token's clock). Tests with their own clock call it after moving the clock.
 */
void
kp_oauth_token_tick (KpOAuthToken *self)
{
  gint64 now;

  g_return_if_fail (KP_IS_OAUTH_TOKEN (self));

  now = now_s (self);
  if (self->access_token != NULL && now < self->expires_at - KP_OAUTH_REFRESH_AHEAD_S)
    {
      schedule (self, self->expires_at - KP_OAUTH_REFRESH_AHEAD_S - now);
      return;
    }
  refresh_in_background (self);
}

/**
 * kp_oauth_token_stop:
 *
 * Cancels the refresh under way and the timer.
 */
void
kp_oauth_token_stop (KpOAuthToken *self)
{
  g_return_if_fail (KP_IS_OAUTH_TOKEN (self));

  g_clear_handle_id (&self->timer, g_source_remove);
  if (self->cancellable != NULL)
    g_cancellable_cancel (self->cancellable);
}

/* Accessors ----------------------------------------------------------------- */

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
  self->client = kp_oauth_client_copy (client);
  self->session = g_object_ref (session);
  return KP_AUTH (self);
}

void
kp_oauth_token_set_clock (KpOAuthToken *self,
                          KpOAuthClock  clock,
                          gpointer      user_data)
{
  g_return_if_fail (KP_IS_OAUTH_TOKEN (self));
  self->clock = clock;
  self->clock_data = user_data;
}

/**
 * kp_oauth_token_set_access_token:
 * @expires_at: unix seconds
 *
 * An access token known from elsewhere (a CLI's credentials file): used while
 * it is valid, and refreshed before it expires.
 */
void
kp_oauth_token_set_access_token (KpOAuthToken *self,
                                 const char   *access_token,
                                 gint64        expires_at)
{
  gint64 now;

  g_return_if_fail (KP_IS_OAUTH_TOKEN (self));

  now = now_s (self);
  kp_secret_wipe (&self->access_token);
  self->access_token = g_strdup (access_token);
  self->expires_at = expires_at;
  self->serial++;
  self->after_refusal = FALSE;
  if (token_valid (self, now))
    {
      self->state = KP_OAUTH_STATE_READY;
      schedule (self, expires_at - KP_OAUTH_REFRESH_AHEAD_S - now);
    }
}

gint64
kp_oauth_token_get_expires_at (KpOAuthToken *self)
{
  g_return_val_if_fail (KP_IS_OAUTH_TOKEN (self), 0);
  return self->expires_at;
}

KpOAuthState
kp_oauth_token_get_state (KpOAuthToken *self)
{
  g_return_val_if_fail (KP_IS_OAUTH_TOKEN (self), KP_OAUTH_STATE_NO_TOKEN);

  if (self->state == KP_OAUTH_STATE_READY && !token_valid (self, now_s (self)))
    return KP_OAUTH_STATE_NO_TOKEN;
  return self->state;
}

/**
 * kp_oauth_token_get_problem:
 *
 * Returns: (nullable): why the last refresh failed
 */
const char *
kp_oauth_token_get_problem (KpOAuthToken *self)
{
  g_return_val_if_fail (KP_IS_OAUTH_TOKEN (self), NULL);
  return self->problem;
}

const KpOAuthClient *
kp_oauth_token_get_client (KpOAuthToken *self)
{
  g_return_val_if_fail (KP_IS_OAUTH_TOKEN (self), NULL);
  return self->client;
}

SoupSession *
kp_oauth_token_get_session (KpOAuthToken *self)
{
  g_return_val_if_fail (KP_IS_OAUTH_TOKEN (self), NULL);
  return self->session;
}

gboolean
kp_oauth_token_is_refreshing (KpOAuthToken *self)
{
  g_return_val_if_fail (KP_IS_OAUTH_TOKEN (self), FALSE);
  return self->cancellable != NULL;
}

/**
 * kp_oauth_token_set_held:
 * @held: whether requests must wait (the account is being set up)
 *
 * A held token is refreshed as usual but not given to requests.
 */
void
kp_oauth_token_set_held (KpOAuthToken *self,
                         gboolean      held)
{
  g_return_if_fail (KP_IS_OAUTH_TOKEN (self));
  self->held = held;
}

gboolean
kp_oauth_token_get_held (KpOAuthToken *self)
{
  g_return_val_if_fail (KP_IS_OAUTH_TOKEN (self), FALSE);
  return self->held;
}

/**
 * kp_oauth_token_peek:
 *
 * Returns: (nullable): the valid access token, held or not (for setting the
 *   account up)
 */
const char *
kp_oauth_token_peek (KpOAuthToken *self)
{
  g_return_val_if_fail (KP_IS_OAUTH_TOKEN (self), NULL);
  return token_valid (self, now_s (self)) ? self->access_token : NULL;
}

/* How many refreshes were sent: tests see that a cached token is used. */
guint
kp_oauth_token_get_refreshes (KpOAuthToken *self)
{
  g_return_val_if_fail (KP_IS_OAUTH_TOKEN (self), 0);
  return self->refreshes;
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
  /* The same object, changed in place: a request being built holds it. */
  json_object_set_string_member (self->account, "baseUrl", base);
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
