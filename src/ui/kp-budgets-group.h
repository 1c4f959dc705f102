/* kp-budgets-group.h: budgets, where they stand, and what each client spent
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <adwaita.h>

#include "kp-gateway.h"

G_BEGIN_DECLS

#define KP_TYPE_BUDGETS_GROUP (kp_budgets_group_get_type ())

G_DECLARE_FINAL_TYPE (KpBudgetsGroup, kp_budgets_group, KP, BUDGETS_GROUP, AdwPreferencesGroup)

KpBudgetsGroup *kp_budgets_group_new         (KpGateway      *gateway,
                                              gboolean        editable);
void            kp_budgets_group_set_gateway (KpBudgetsGroup *self,
                                              KpGateway      *gateway);
void            kp_budgets_group_refresh     (KpBudgetsGroup *self);

G_END_DECLS
