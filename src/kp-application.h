/* kp-application.h: one Keypool per session; the CLI talks to it
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <gio/gio.h>

#include "kp-gateway.h"

G_BEGIN_DECLS

/* What every face of Keypool shares, whichever GApplication class it runs
 * as: headless (KpApplication) or with a window (an AdwApplication).
 */
typedef struct _KpAppState KpAppState;

typedef void (*KpAppShowWindow) (GApplication *app,
                                 gboolean      background);
typedef void (*KpAppServeFailed) (GApplication *app,
                                  const char   *message);

KpAppState *kp_app_state_get          (GApplication             *app);
gboolean    kp_app_local_command_line (GApplication             *app,
                                       GApplicationClass        *parent_class,
                                       char                   ***arguments,
                                       int                      *exit_status);
void        kp_app_add_platform_data  (GApplication             *app,
                                       GApplicationClass        *parent_class,
                                       GVariantBuilder          *builder);
int         kp_app_command_line       (GApplication             *app,
                                       GApplicationCommandLine  *cmdline);
void        kp_app_set_window_hook    (GApplication             *app,
                                       KpAppShowWindow           show_window,
                                       KpAppServeFailed          serve_failed);
void        kp_app_stop_serving       (GApplication             *app);
void        kp_app_set_exit_status    (GApplication             *app,
                                       GApplicationCommandLine  *cmdline,
                                       int                       status);
int         kp_app_get_exit_status    (GApplication             *app);
KpGateway  *kp_app_get_gateway        (GApplication             *app);
char       *kp_app_take_secret        (GApplication             *app,
                                       GApplicationCommandLine  *cmdline);

#define KP_TYPE_APPLICATION (kp_application_get_type ())

G_DECLARE_FINAL_TYPE (KpApplication, kp_application, KP, APPLICATION, GApplication)

KpApplication *kp_application_new (gboolean unique);

G_END_DECLS
