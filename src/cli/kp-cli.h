/* kp-cli.h: `keypool keys|providers|models|refresh|spend|requests|token`
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <gio/gio.h>

#include "kp-application.h"

G_BEGIN_DECLS

gboolean kp_cli_is_command   (const char              *word);
int      kp_cli_run          (GApplication            *app,
                              KpGateway               *gateway,
                              GApplicationCommandLine *cmdline);
int      kp_cli_connect      (GApplication            *app,
                              KpGateway               *gateway,
                              GApplicationCommandLine *cmdline,
                              char                   **argv,
                              int                      argc);
char    *kp_cli_read_secret  (const char              *provider,
                              GError                 **error);

G_END_DECLS
