/* kp-window.h: Keypool's main window
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <adwaita.h>

#include "kp-gateway.h"

G_BEGIN_DECLS

#define KP_TYPE_WINDOW (kp_window_get_type ())

G_DECLARE_FINAL_TYPE (KpWindow, kp_window, KP, WINDOW, AdwApplicationWindow)

KpWindow *kp_window_new  (AdwApplication *application,
                          KpGateway      *gateway);
void      kp_window_quit (KpWindow       *self);
void      kp_window_serve_failed (KpWindow   *self,
                                  const char *message);

G_END_DECLS
