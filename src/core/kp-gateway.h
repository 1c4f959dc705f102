/* kp-gateway.h: the composition root of Keypool's core
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <libsoup/soup.h>

#include "kp-catalog.h"
#include "kp-relay.h"
#include "kp-vault.h"

G_BEGIN_DECLS

#define KP_GATEWAY_DEFAULT_PORT       7878
#define KP_GATEWAY_DEFAULT_BODY_LIMIT (32 * 1024 * 1024)

#define KP_GATEWAY_ERROR (kp_gateway_error_quark ())

typedef enum
{
  KP_GATEWAY_ERROR_LISTEN,
  KP_GATEWAY_ERROR_TOKEN,
} KpGatewayError;

#define KP_TYPE_GATEWAY (kp_gateway_get_type ())

G_DECLARE_FINAL_TYPE (KpGateway, kp_gateway, KP, GATEWAY, GObject)

GQuark        kp_gateway_error_quark          (void);
KpGateway    *kp_gateway_new                  (void);
void          kp_gateway_set_port             (KpGateway   *self,
                                               guint        port);
void          kp_gateway_set_dirs             (KpGateway   *self,
                                               const char  *providers_dir,
                                               const char  *config_dir);
void          kp_gateway_set_token            (KpGateway   *self,
                                               const char  *token);
void          kp_gateway_set_body_limit       (KpGateway   *self,
                                               gsize        limit);
void          kp_gateway_set_timeouts         (KpGateway   *self,
                                               guint        connect_ms,
                                               guint        first_byte_ms,
                                               guint        idle_ms);
void          kp_gateway_set_allowed_origins  (KpGateway   *self,
                                               const char * const *origins);
gboolean      kp_gateway_start                (KpGateway   *self,
                                               GError     **error);
void          kp_gateway_stop                 (KpGateway   *self);
guint         kp_gateway_get_port             (KpGateway   *self);
char         *kp_gateway_dup_base_url         (KpGateway   *self);
const char   *kp_gateway_get_token            (KpGateway   *self);
const char   *kp_gateway_get_token_path       (KpGateway   *self);
KpCatalog    *kp_gateway_get_catalog          (KpGateway   *self);
KpVault      *kp_gateway_get_vault            (KpGateway   *self);
SoupSession  *kp_gateway_get_session          (KpGateway   *self);
guint         kp_gateway_get_n_active         (KpGateway   *self);
gboolean      kp_gateway_provider_is_usable   (KpGateway   *self,
                                               KpProvider  *provider);

/* Used by the server and the relay only. */
gsize         kp_gateway_get_body_limit       (KpGateway   *self);
void          kp_gateway_get_timeouts         (KpGateway   *self,
                                               guint       *connect_ms,
                                               guint       *first_byte_ms,
                                               guint       *idle_ms);
gboolean      kp_gateway_origin_allowed       (KpGateway   *self,
                                               const char  *origin);
const char   *kp_gateway_get_models_json      (KpGateway   *self,
                                               gsize       *length);
char         *kp_gateway_dup_health_json      (KpGateway   *self);
void          kp_gateway_relay_started        (KpGateway   *self,
                                               KpRelay     *relay);
void          kp_gateway_relay_finished       (KpGateway   *self,
                                               KpRelay     *relay);

G_END_DECLS
