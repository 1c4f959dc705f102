/* kp-preferences-window.h: Keypool's preferences
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <adwaita.h>

#include "kp-gateway.h"

G_BEGIN_DECLS

#define KP_TYPE_PREFERENCES_WINDOW (kp_preferences_window_get_type ())

G_DECLARE_FINAL_TYPE (KpPreferencesWindow, kp_preferences_window, KP, PREFERENCES_WINDOW,
                      AdwPreferencesWindow)

KpPreferencesWindow *kp_preferences_window_new (GtkWindow *parent,
                                                KpGateway *gateway);

G_END_DECLS
