/* kp-models-page.h: the models Keypool knows, their prices and routes
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <adwaita.h>

#include "kp-gateway.h"

G_BEGIN_DECLS

#define KP_TYPE_MODELS_PAGE (kp_models_page_get_type ())

G_DECLARE_FINAL_TYPE (KpModelsPage, kp_models_page, KP, MODELS_PAGE, AdwBin)

void kp_models_page_set_gateway  (KpModelsPage *self,
                                  KpGateway    *gateway);
void kp_models_page_refresh      (KpModelsPage *self);
void kp_models_page_focus_search (KpModelsPage *self);

G_END_DECLS
