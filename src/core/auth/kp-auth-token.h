/* kp-auth-token.h: a sign-in sent as short-lived access tokens
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <libsoup/soup.h>

#include "kp-auth.h"
#include "kp-oauth-client.h"

G_BEGIN_DECLS

/* An access token is refreshed this long before it expires (unless its
 * class says otherwise), and not sent in its last seconds.
 */
#define KP_OAUTH_REFRESH_AHEAD_S 300
#define KP_OAUTH_EXPIRY_SLACK_S  30
/* After a refresh that failed for want of an answer. */
#define KP_OAUTH_RETRY_S         30

typedef enum
{
  KP_OAUTH_STATE_NO_TOKEN,   /* no valid access token yet */
  KP_OAUTH_STATE_READY,      /* a valid access token is cached */
  KP_OAUTH_STATE_REFUSED,    /* the sign-in is dead: sign in again */
} KpOAuthState;

typedef gint64 (*KpOAuthClock) (gpointer user_data);

#define KP_TYPE_AUTH_TOKEN (kp_auth_token_get_type ())

G_DECLARE_DERIVABLE_TYPE (KpAuthToken, kp_auth_token, KP, AUTH_TOKEN, GObject)

struct _KpAuthTokenClass
{
  GObjectClass parent_class;

  /* How long before its expiry an access token is refreshed. */
  gint64        refresh_ahead_s;
  /* Said after why a refresh was refused, in ::refused; or NULL. */
  const char   *refused_advice;

  /* What the keyring keeps (kp_auth_get_secret()), and a new one. */
  const char *(*get_secret)     (KpAuthToken          *self);
  void        (*set_secret)     (KpAuthToken          *self,
                                 const char           *secret);
  /* Whether it holds what a refresh needs (a refresh token, a login). */
  gboolean    (*can_refresh)    (KpAuthToken          *self);
  /* Asks the endpoint for a new access token; the task's source is @self. */
  void        (*refresh_async)  (KpAuthToken          *self,
                                 GCancellable         *cancellable,
                                 GAsyncReadyCallback   callback,
                                 gpointer              user_data);
  /* Takes the grant in (a new refresh token, where the API is, ...) and
   * returns its access token, valid for @expires_in seconds; or NULL with
   * @error set (KP_OAUTH_ERROR_REFUSED: the sign-in is dead).
   */
  char       *(*refresh_finish) (KpAuthToken          *self,
                                 GAsyncResult         *result,
                                 gint64               *expires_in,
                                 GError              **error);
};

void           kp_auth_token_setup            (KpAuthToken         *self,
                                               const KpOAuthClient *client,
                                               SoupSession         *session);
void           kp_auth_token_reset            (KpAuthToken         *self,
                                               KpOAuthState         state);
void           kp_auth_token_set_fixed        (KpAuthToken         *self,
                                               const char          *token);
JsonObject    *kp_auth_token_get_account_object (KpAuthToken       *self);
gint64         kp_auth_token_now              (KpAuthToken         *self);

void           kp_auth_token_set_clock        (KpAuthToken         *self,
                                               KpOAuthClock         clock,
                                               gpointer             user_data);
void           kp_auth_token_set_access_token (KpAuthToken         *self,
                                               const char          *access_token,
                                               gint64               expires_at);
gint64         kp_auth_token_get_expires_at   (KpAuthToken         *self);
KpOAuthState   kp_auth_token_get_state        (KpAuthToken         *self);
const char    *kp_auth_token_get_problem      (KpAuthToken         *self);
const KpOAuthClient *kp_auth_token_get_client (KpAuthToken         *self);
SoupSession   *kp_auth_token_get_session      (KpAuthToken         *self);
gboolean       kp_auth_token_is_refreshing    (KpAuthToken         *self);
guint          kp_auth_token_get_refreshes    (KpAuthToken         *self);
void           kp_auth_token_tick             (KpAuthToken         *self);
void           kp_auth_token_refresh_async    (KpAuthToken         *self,
                                               GCancellable        *cancellable,
                                               GAsyncReadyCallback  callback,
                                               gpointer             user_data);
gboolean       kp_auth_token_refresh_finish   (KpAuthToken         *self,
                                               GAsyncResult        *result,
                                               GError             **error);
void           kp_auth_token_set_held         (KpAuthToken         *self,
                                               gboolean             held);
gboolean       kp_auth_token_get_held         (KpAuthToken         *self);
const char    *kp_auth_token_peek             (KpAuthToken         *self);
void           kp_auth_token_stop             (KpAuthToken         *self);
const char    *kp_oauth_state_to_string       (KpOAuthState         state);

G_END_DECLS
