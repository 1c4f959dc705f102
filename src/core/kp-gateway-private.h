/* kp-gateway-private.h: what only the core's own files (and its tests) may call
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include "kp-gateway.h"
#include "http/kp-http1-pool.h"
#include "auth/kp-oauth-client.h"
#include "kp-upstream-error.h"

G_BEGIN_DECLS

KpVault     *kp_gateway_get_vault          (KpGateway   *self);
KpKeyHealth *kp_gateway_get_key_health     (KpGateway   *self);
SoupSession *kp_gateway_ensure_session     (KpGateway   *self,
                                            guint        timeout_s);
void         kp_gateway_emit_changed       (KpGateway   *self);
void         kp_gateway_emit_login_code    (KpGateway   *self,
                                            const char  *provider_id,
                                            const char  *user_code,
                                            const char  *url);
guint        kp_gateway_get_models_builds  (KpGateway   *self);

SoupSession *kp_gateway_get_auth_session   (KpGateway   *self);
KpHttp1Pool *kp_gateway_get_pool_for       (KpGateway   *self,
                                            GUri        *uri);

/* kp-gateway-oauth.c */
void         kp_gateway_attach_auth        (KpGateway    *self,
                                            KpCredential *credential);
KpCredential *kp_gateway_credential_of_auth (KpGateway   *self,
                                            KpAuth       *auth);
void         kp_gateway_auth_refused       (KpAuth       *auth,
                                            const char   *message,
                                            KpGateway    *self);
void         kp_gateway_stop_auth          (KpGateway    *self);
void         kp_gateway_oauth_adjust_failure (KpCredential *credential,
                                              KpFailure    *failure);
void         kp_gateway_forget_account     (KpGateway    *self,
                                            gint64        id);

void         kp_gateway_add_account_full_async (KpGateway           *self,
                                                const char          *provider_id,
                                                const char          *label,
                                                const char          *refresh_token,
                                                const char          *access_token,
                                                gint64               expires_at,
                                                const char          *resource_url,
                                                GCancellable        *cancellable,
                                                GAsyncReadyCallback  callback,
                                                gpointer             user_data);

void         kp_gateway_add_signed_in      (KpGateway           *self,
                                            GTask               *task,
                                            const char          *provider_id,
                                            const char          *label,
                                            const char          *refresh_token,
                                            const char          *access_token,
                                            gint64               expires_in,
                                            const char          *resource_url,
                                            GCancellable        *cancellable);

/* kp-gateway-device.c */
gboolean     kp_gateway_login_device_async (KpGateway           *self,
                                            KpProvider          *provider,
                                            const char          *label,
                                            gboolean             open_browser,
                                            guint                timeout_s,
                                            GCancellable        *cancellable,
                                            GAsyncReadyCallback  callback,
                                            gpointer             user_data,
                                            GError             **error);

/* kp-gateway-kiro.c */
void         kp_gateway_attach_kiro        (KpGateway           *self,
                                            KpCredential        *credential,
                                            const KpOAuthClient *client);
char        *kp_gateway_dup_kiro_source    (const KpOAuthClient *client);
void         kp_gateway_import_kiro_async  (KpGateway           *self,
                                            const char          *provider_id,
                                            const KpOAuthClient *client,
                                            const char          *label,
                                            const char          *path,
                                            GCancellable        *cancellable,
                                            GAsyncReadyCallback  callback,
                                            gpointer             user_data);
void         kp_gateway_retry_account      (KpGateway    *self,
                                            KpCredential *credential);

/* kp-gateway-keys.c */
gboolean     kp_gateway_load_env_keys      (KpGateway   *self,
                                            GPtrArray   *rows,
                                            GError     **error);

G_END_DECLS
