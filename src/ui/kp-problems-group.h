/* kp-problems-group.h: the requests Keypool refused or that failed
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <adwaita.h>

#include "kp-gateway.h"

G_BEGIN_DECLS

#define KP_TYPE_PROBLEMS_GROUP (kp_problems_group_get_type ())

G_DECLARE_FINAL_TYPE (KpProblemsGroup, kp_problems_group, KP, PROBLEMS_GROUP, AdwPreferencesGroup)

void kp_problems_group_set_gateway (KpProblemsGroup *self,
                                    KpGateway       *gateway);
void kp_problems_group_refresh     (KpProblemsGroup *self);

G_END_DECLS
