/* kp-server.h: the local HTTP endpoint
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include "kp-gateway.h"

G_BEGIN_DECLS

#define KP_TYPE_SERVER (kp_server_get_type ())

G_DECLARE_FINAL_TYPE (KpServer, kp_server, KP, SERVER, GObject)

KpServer *kp_server_new        (KpGateway  *gateway);
gboolean  kp_server_listen     (KpServer   *self,
                                guint       port,
                                GError    **error);
guint     kp_server_get_port   (KpServer   *self);
void      kp_server_disconnect (KpServer   *self);

G_END_DECLS
