/* kp-ui-util.h: formatting and small helpers shared by the window's pages
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <adwaita.h>

G_BEGIN_DECLS

#define KP_UI_RESOURCE(file) ("/io/github/keypool/Keypool/ui/" file)

char *kp_ui_format_usd        (gint64       nano_usd);
char *kp_ui_format_price      (double       usd_per_million);
char *kp_ui_format_count      (gint64       count);
char *kp_ui_format_time       (gint64       unix_s);
char *kp_ui_format_ago        (gint64       unix_s);
void  kp_ui_toast             (GtkWidget   *widget,
                               const char  *message);
void  kp_ui_copy              (GtkWidget   *widget,
                               const char  *text,
                               const char  *message);
void  kp_ui_set_accessible_label (GtkWidget *widget,
                               const char  *label);

G_END_DECLS
