/* kp-kiro-token.h: a Kiro account's sign-in, sent as access tokens
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <libsoup/soup.h>

#include "kp-auth.h"
#include "kp-kiro-login.h"
#include "kp-oauth-client.h"
#include "kp-oauth-token.h"

G_BEGIN_DECLS

/* What the keyring keeps for a Kiro account is at most this big. */
#define KP_KIRO_MAX_SECRET (16 * 1024)

#define KP_TYPE_KIRO_TOKEN (kp_kiro_token_get_type ())

G_DECLARE_FINAL_TYPE (KpKiroToken, kp_kiro_token, KP, KIRO_TOKEN, GObject)

KpAuth            *kp_kiro_token_new              (const KpOAuthClient *client,
                                                   SoupSession         *session);
void               kp_kiro_token_set_clock        (KpKiroToken         *self,
                                                   KpOAuthClock         clock,
                                                   gpointer             user_data);
void               kp_kiro_token_set_access_token (KpKiroToken         *self,
                                                   const char          *access_token,
                                                   gint64               expires_at);
const KpKiroLogin *kp_kiro_token_get_login        (KpKiroToken         *self);
const KpOAuthClient *kp_kiro_token_get_client     (KpKiroToken         *self);
KpOAuthState       kp_kiro_token_get_state        (KpKiroToken         *self);
gint64             kp_kiro_token_get_expires_at   (KpKiroToken         *self);
guint              kp_kiro_token_get_refreshes    (KpKiroToken         *self);
const char        *kp_kiro_token_peek             (KpKiroToken         *self);
gboolean           kp_kiro_token_take_rotated     (KpKiroToken         *self);
void               kp_kiro_token_tick             (KpKiroToken         *self);
void               kp_kiro_token_stop             (KpKiroToken         *self);

char              *kp_kiro_login_to_secret        (const KpKiroLogin   *login);
KpKiroLogin       *kp_kiro_login_from_secret      (const char          *secret,
                                                   GError             **error);
gboolean           kp_kiro_secret_is_login        (const char          *secret);

G_END_DECLS
