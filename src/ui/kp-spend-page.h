/* kp-spend-page.h: what Keypool's requests cost
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <adwaita.h>

#include "kp-gateway.h"

G_BEGIN_DECLS

#define KP_TYPE_SPEND_PAGE (kp_spend_page_get_type ())

G_DECLARE_FINAL_TYPE (KpSpendPage, kp_spend_page, KP, SPEND_PAGE, AdwBin)

void kp_spend_page_set_gateway (KpSpendPage *self,
                                KpGateway   *gateway);
void kp_spend_page_refresh     (KpSpendPage *self);

G_END_DECLS
