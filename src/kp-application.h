/* kp-application.h: one Keypool per session; the CLI talks to it
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <gio/gio.h>

#include "kp-gateway.h"

G_BEGIN_DECLS

#define KP_TYPE_APPLICATION (kp_application_get_type ())

G_DECLARE_FINAL_TYPE (KpApplication, kp_application, KP, APPLICATION, GApplication)

KpApplication *kp_application_new             (gboolean                 unique);
int            kp_application_get_exit_status (KpApplication           *self);
void           kp_application_set_exit_status (KpApplication           *self,
                                               GApplicationCommandLine *cmdline,
                                               int                      status);
KpGateway     *kp_application_get_gateway     (KpApplication           *self);
char          *kp_application_take_secret     (KpApplication           *self,
                                               GApplicationCommandLine *cmdline);

G_END_DECLS
