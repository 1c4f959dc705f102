/* kp-ui-application.h: Keypool with its window
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <adwaita.h>

G_BEGIN_DECLS

#define KP_TYPE_UI_APPLICATION (kp_ui_application_get_type ())

G_DECLARE_FINAL_TYPE (KpUiApplication, kp_ui_application, KP, UI_APPLICATION, AdwApplication)

KpUiApplication *kp_ui_application_new (gboolean unique);

G_END_DECLS
