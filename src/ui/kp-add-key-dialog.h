/* kp-add-key-dialog.h: add a provider key, checked with the provider first
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <adwaita.h>

#include "kp-gateway.h"

G_BEGIN_DECLS

#define KP_TYPE_ADD_KEY_DIALOG (kp_add_key_dialog_get_type ())

G_DECLARE_FINAL_TYPE (KpAddKeyDialog, kp_add_key_dialog, KP, ADD_KEY_DIALOG, AdwMessageDialog)

KpAddKeyDialog *kp_add_key_dialog_new (GtkWindow  *parent,
                                       KpGateway  *gateway,
                                       const char *provider_id);

G_END_DECLS
