/* kp-key-row.h: one provider key in the Providers page
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <adwaita.h>

#include "kp-gateway.h"

G_BEGIN_DECLS

#define KP_TYPE_KEY_ROW (kp_key_row_get_type ())

G_DECLARE_FINAL_TYPE (KpKeyRow, kp_key_row, KP, KEY_ROW, AdwActionRow)

KpKeyRow *kp_key_row_new    (KpGateway    *gateway,
                             KpCredential *credential);
gint64    kp_key_row_get_id (KpKeyRow     *self);
void      kp_key_row_update (KpKeyRow     *self);

G_END_DECLS
