/* kp-provider-row.h: one provider, its switch and its keys
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <adwaita.h>

#include "kp-gateway.h"

G_BEGIN_DECLS

typedef enum
{
  KP_REACHABILITY_UNKNOWN,
  KP_REACHABILITY_CHECKING,
  KP_REACHABILITY_REACHABLE,
  KP_REACHABILITY_UNREACHABLE,
} KpReachability;

#define KP_TYPE_PROVIDER_ROW (kp_provider_row_get_type ())

G_DECLARE_FINAL_TYPE (KpProviderRow, kp_provider_row, KP, PROVIDER_ROW, AdwExpanderRow)

KpProviderRow *kp_provider_row_new              (KpGateway      *gateway,
                                                 KpProvider     *provider);
KpProvider    *kp_provider_row_get_provider     (KpProviderRow  *self);
void           kp_provider_row_update           (KpProviderRow  *self);
void           kp_provider_row_set_reachability (KpProviderRow  *self,
                                                 KpReachability  reachability,
                                                 const char     *detail);

G_END_DECLS
