/* kp-client-conns.h: the local server's client connections, counted and timed
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <gio/gio.h>

#include "kp-gateway.h"

G_BEGIN_DECLS

typedef struct _KpClientConns KpClientConns;

KpClientConns *kp_client_conns_new           (KpGateway     *gateway);
void           kp_client_conns_free          (KpClientConns *self);
gboolean       kp_client_conns_request_started (KpClientConns *self,
                                              GSocket       *socket);
void           kp_client_conns_shed          (KpClientConns *self,
                                              GSocket       *socket);
gboolean       kp_client_conns_is_shed       (KpClientConns *self,
                                              GSocket       *socket);
void           kp_client_conns_got_headers   (KpClientConns *self,
                                              GSocket       *socket);
void           kp_client_conns_request_read  (KpClientConns *self,
                                              GSocket       *socket);
void           kp_client_conns_request_done  (KpClientConns *self,
                                              GSocket       *socket);
void           kp_client_conns_forget        (KpClientConns *self,
                                              GSocket       *socket);
guint          kp_client_conns_count         (KpClientConns *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (KpClientConns, kp_client_conns_free)

G_END_DECLS
