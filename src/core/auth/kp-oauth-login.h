/* kp-oauth-login.h: an installed app's sign-in in the user's browser
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <libsoup/soup.h>

#include "kp-oauth-client.h"

G_BEGIN_DECLS

/* How long a sign-in waits for the browser to come back. */
#define KP_OAUTH_LOGIN_TIMEOUT_S 300

#define KP_TYPE_OAUTH_LOGIN (kp_oauth_login_get_type ())

G_DECLARE_FINAL_TYPE (KpOAuthLogin, kp_oauth_login, KP, OAUTH_LOGIN, GObject)

KpOAuthLogin *kp_oauth_login_new           (const KpOAuthClient *client,
                                            SoupSession         *session);
void          kp_oauth_login_set_timeout   (KpOAuthLogin        *self,
                                            guint                timeout_s);
void          kp_oauth_login_set_open_browser (KpOAuthLogin     *self,
                                            gboolean             open_browser);
gboolean      kp_oauth_login_listen        (KpOAuthLogin        *self,
                                            GError             **error);
const char   *kp_oauth_login_get_url       (KpOAuthLogin        *self);
void          kp_oauth_login_run_async     (KpOAuthLogin        *self,
                                            GCancellable        *cancellable,
                                            GAsyncReadyCallback  callback,
                                            gpointer             user_data);
KpOAuthGrant *kp_oauth_login_run_finish    (KpOAuthLogin        *self,
                                            GAsyncResult        *result,
                                            GError             **error);
char         *kp_oauth_pkce_challenge      (const char          *verifier);

G_END_DECLS
