/* kp-connect-page.h: how tools connect to Keypool
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <adwaita.h>

#include "kp-gateway.h"

G_BEGIN_DECLS

#define KP_TYPE_CONNECT_PAGE (kp_connect_page_get_type ())

G_DECLARE_FINAL_TYPE (KpConnectPage, kp_connect_page, KP, CONNECT_PAGE, AdwBin)

void kp_connect_page_set_gateway (KpConnectPage *self,
                                  KpGateway     *gateway);
void kp_connect_page_refresh     (KpConnectPage *self);

G_END_DECLS
