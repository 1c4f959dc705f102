/* kp-gateway-private.h: what only the core's own files (and its tests) may call
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include "kp-gateway.h"

G_BEGIN_DECLS

KpVault     *kp_gateway_get_vault          (KpGateway   *self);
KpKeyHealth *kp_gateway_get_key_health     (KpGateway   *self);
SoupSession *kp_gateway_ensure_session     (KpGateway   *self,
                                            guint        timeout_s);
void         kp_gateway_emit_changed       (KpGateway   *self);
guint        kp_gateway_get_models_builds  (KpGateway   *self);

SoupSession *kp_gateway_get_auth_session   (KpGateway   *self);

/* kp-gateway-oauth.c */
void         kp_gateway_attach_auth        (KpGateway    *self,
                                            KpCredential *credential);
void         kp_gateway_stop_auth          (KpGateway    *self);
void         kp_gateway_retry_account      (KpGateway    *self,
                                            KpCredential *credential);

/* kp-gateway-keys.c */
gboolean     kp_gateway_load_env_keys      (KpGateway   *self,
                                            GPtrArray   *rows,
                                            GError     **error);

G_END_DECLS
