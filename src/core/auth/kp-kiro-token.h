/* kp-kiro-token.h: a Kiro account's sign-in, sent as access tokens
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <libsoup/soup.h>

#include "kp-auth-token.h"
#include "kp-kiro-login.h"
#include "kp-oauth-client.h"

G_BEGIN_DECLS

/* What the keyring keeps for a Kiro account is at most this big. */
#define KP_KIRO_MAX_SECRET (16 * 1024)

#define KP_TYPE_KIRO_TOKEN (kp_kiro_token_get_type ())

G_DECLARE_FINAL_TYPE (KpKiroToken, kp_kiro_token, KP, KIRO_TOKEN, KpAuthToken)

KpAuth            *kp_kiro_token_new              (const KpOAuthClient *client,
                                                   SoupSession         *session);
const KpKiroLogin *kp_kiro_token_get_login        (KpKiroToken         *self);
gboolean           kp_kiro_token_take_rotated     (KpKiroToken         *self);

char              *kp_kiro_login_to_secret        (const KpKiroLogin   *login);
KpKiroLogin       *kp_kiro_login_from_secret      (const char          *secret,
                                                   GError             **error);
gboolean           kp_kiro_secret_is_login        (const char          *secret);

G_END_DECLS
