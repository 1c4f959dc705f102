/* kp-oauth-token.h: an OAuth refresh token, sent as access tokens
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <libsoup/soup.h>

#include "kp-auth-token.h"
#include "kp-oauth-client.h"

G_BEGIN_DECLS

/* A login's resource_url (Qwen's API host) is at most this long. */
#define KP_OAUTH_RESOURCE_URL_MAX 512

#define KP_TYPE_OAUTH_TOKEN (kp_oauth_token_get_type ())

G_DECLARE_FINAL_TYPE (KpOAuthToken, kp_oauth_token, KP, OAUTH_TOKEN, KpAuthToken)

KpAuth        *kp_oauth_token_new              (const KpOAuthClient *client,
                                                SoupSession         *session);
void           kp_oauth_token_set_resource_url (KpOAuthToken        *self,
                                                const char          *resource_url);
const char    *kp_oauth_token_get_resource_url (KpOAuthToken        *self);

G_END_DECLS
