/* kp-providers-page.h: providers, their keys, and local servers
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <adwaita.h>

#include "kp-gateway.h"

G_BEGIN_DECLS

#define KP_TYPE_PROVIDERS_PAGE (kp_providers_page_get_type ())

G_DECLARE_FINAL_TYPE (KpProvidersPage, kp_providers_page, KP, PROVIDERS_PAGE, AdwBin)

void kp_providers_page_set_gateway         (KpProvidersPage *self,
                                            KpGateway       *gateway);
void kp_providers_page_refresh             (KpProvidersPage *self);
void kp_providers_page_check_local_servers (KpProvidersPage *self);

G_END_DECLS
