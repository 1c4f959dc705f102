/* kp-access-token.h: the token clients must send, and where it is kept
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <gio/gio.h>

#include "kp-vault.h"

G_BEGIN_DECLS

#define KP_ACCESS_TOKEN_ERROR (kp_access_token_error_quark ())

typedef enum
{
  KP_ACCESS_TOKEN_ERROR_FAILED,   /* no token could be made or kept */
  KP_ACCESS_TOKEN_ERROR_FIXED,    /* it comes from KEYPOOL_TOKEN: not Keypool's to change */
  KP_ACCESS_TOKEN_ERROR_KEYRING,  /* the keyring refused it */
} KpAccessTokenError;

#define KP_TYPE_ACCESS_TOKEN (kp_access_token_get_type ())

G_DECLARE_FINAL_TYPE (KpAccessToken, kp_access_token, KP, ACCESS_TOKEN, GObject)

GQuark         kp_access_token_error_quark      (void);
KpAccessToken *kp_access_token_new              (KpVault              *vault);
void           kp_access_token_set_fixed        (KpAccessToken        *self,
                                                 const char           *token);
void           kp_access_token_set_config_dir   (KpAccessToken        *self,
                                                 const char           *config_dir);
const char    *kp_access_token_get              (KpAccessToken        *self);
const char    *kp_access_token_get_origin       (KpAccessToken        *self);
void           kp_access_token_found_in_keyring (KpAccessToken        *self,
                                                 const char           *token);
void           kp_access_token_ensure_async     (KpAccessToken        *self,
                                                 gboolean              keyring,
                                                 GCancellable         *cancellable,
                                                 GAsyncReadyCallback   callback,
                                                 gpointer              user_data);
gboolean       kp_access_token_ensure_finish    (KpAccessToken        *self,
                                                 GAsyncResult         *result,
                                                 GError              **error);
void           kp_access_token_replace_async    (KpAccessToken        *self,
                                                 gboolean              keyring,
                                                 GCancellable         *cancellable,
                                                 GAsyncReadyCallback   callback,
                                                 gpointer              user_data);
gboolean       kp_access_token_replace_finish   (KpAccessToken        *self,
                                                 GAsyncResult         *result,
                                                 GError              **error);
char          *kp_access_token_generate         (GError              **error);

G_END_DECLS
