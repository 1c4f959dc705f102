/* kp-clients-group.h: the Connect page's client tokens
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <adwaita.h>

#include "kp-gateway.h"

G_BEGIN_DECLS

#define KP_TYPE_CLIENTS_GROUP (kp_clients_group_get_type ())

G_DECLARE_FINAL_TYPE (KpClientsGroup, kp_clients_group, KP, CLIENTS_GROUP, AdwPreferencesGroup)

void kp_clients_group_set_gateway (KpClientsGroup *self,
                                   KpGateway      *gateway);

G_END_DECLS
