/* kp-tray.h: Keypool's tray icon and menu (StatusNotifierItem + dbusmenu)
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <gio/gio.h>

#include "kp-gateway.h"

G_BEGIN_DECLS

#define KP_TYPE_TRAY (kp_tray_get_type ())

G_DECLARE_FINAL_TYPE (KpTray, kp_tray, KP, TRAY, GObject)

KpTray     *kp_tray_new              (GDBusConnection  *connection,
                                      KpGateway        *gateway,
                                      GError          **error);
gboolean    kp_tray_is_registered    (KpTray           *self);
const char *kp_tray_get_status       (KpTray           *self);
guint       kp_tray_get_revision     (KpTray           *self);
void        kp_tray_refresh          (KpTray           *self);

G_END_DECLS
