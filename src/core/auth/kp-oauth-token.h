/* kp-oauth-token.h: an OAuth refresh token, sent as access tokens
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <libsoup/soup.h>

#include "kp-auth.h"
#include "kp-oauth-client.h"

G_BEGIN_DECLS

/* An access token is refreshed this long before it expires, and not sent in
 * its last seconds.
 */
#define KP_OAUTH_REFRESH_AHEAD_S 300
#define KP_OAUTH_EXPIRY_SLACK_S  30
/* After a refresh that failed for want of an answer. */
#define KP_OAUTH_RETRY_S         30
/* A login's resource_url (Qwen's API host) is at most this long. */
#define KP_OAUTH_RESOURCE_URL_MAX 512

typedef enum
{
  KP_OAUTH_STATE_NO_TOKEN,   /* no valid access token yet */
  KP_OAUTH_STATE_READY,      /* a valid access token is cached */
  KP_OAUTH_STATE_REFUSED,    /* the refresh token is dead: sign in again */
} KpOAuthState;

typedef gint64 (*KpOAuthClock) (gpointer user_data);

#define KP_TYPE_OAUTH_TOKEN (kp_oauth_token_get_type ())

G_DECLARE_FINAL_TYPE (KpOAuthToken, kp_oauth_token, KP, OAUTH_TOKEN, GObject)

KpAuth        *kp_oauth_token_new              (const KpOAuthClient *client,
                                                SoupSession         *session);
void           kp_oauth_token_set_clock        (KpOAuthToken        *self,
                                                KpOAuthClock         clock,
                                                gpointer             user_data);
void           kp_oauth_token_set_access_token (KpOAuthToken        *self,
                                                const char          *access_token,
                                                gint64               expires_at);
gint64         kp_oauth_token_get_expires_at   (KpOAuthToken        *self);
KpOAuthState   kp_oauth_token_get_state        (KpOAuthToken        *self);
const char    *kp_oauth_token_get_problem      (KpOAuthToken        *self);
const KpOAuthClient *kp_oauth_token_get_client (KpOAuthToken        *self);
SoupSession   *kp_oauth_token_get_session      (KpOAuthToken        *self);
gboolean       kp_oauth_token_is_refreshing    (KpOAuthToken        *self);
guint          kp_oauth_token_get_refreshes    (KpOAuthToken        *self);
void           kp_oauth_token_tick             (KpOAuthToken        *self);
void           kp_oauth_token_refresh_async    (KpOAuthToken        *self,
                                                GCancellable        *cancellable,
                                                GAsyncReadyCallback  callback,
                                                gpointer             user_data);
gboolean       kp_oauth_token_refresh_finish   (KpOAuthToken        *self,
                                                GAsyncResult        *result,
                                                GError             **error);
void           kp_oauth_token_set_held         (KpOAuthToken        *self,
                                                gboolean             held);
gboolean       kp_oauth_token_get_held         (KpOAuthToken        *self);
const char    *kp_oauth_token_peek             (KpOAuthToken        *self);
void           kp_oauth_token_stop             (KpOAuthToken        *self);
void           kp_oauth_token_set_resource_url (KpOAuthToken        *self,
                                                const char          *resource_url);
const char    *kp_oauth_token_get_resource_url (KpOAuthToken        *self);
const char    *kp_oauth_state_to_string        (KpOAuthState         state);

G_END_DECLS
