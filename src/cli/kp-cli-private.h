/* kp-cli-private.h: what the files of the command line share
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include "kp-cli.h"

G_BEGIN_DECLS

typedef struct
{
  GApplication            *app;
  GApplicationCommandLine *cmdline;
  gboolean                 named;    /* `refresh PROVIDER`: it must be refreshed */
} Pending;

Pending  *kp_cli_pending_new   (GApplication            *app,
                                GApplicationCommandLine *cmdline);
void      kp_cli_pending_done  (Pending                 *pending,
                                int                      status);
int       kp_cli_fail          (GApplicationCommandLine *cmdline,
                                const char              *format,
                                ...) G_GNUC_PRINTF (2, 3);
gboolean  kp_cli_parse_options (GApplicationCommandLine   *cmdline,
                                char                    ***argv,
                                int                       *argc,
                                const GOptionEntry        *entries);
gboolean  kp_cli_parse_since   (const char              *text,
                                gint64                  *since_ms);
char     *kp_cli_format_usd    (gint64                   nano);
char     *kp_cli_format_until  (gint64                   unix_s);

/* kp-cli-keys.c */
int       kp_cli_keys          (GApplication            *app,
                                KpGateway               *gateway,
                                GApplicationCommandLine *cmdline,
                                char                   **argv,
                                int                      argc);
int       kp_cli_login         (GApplication            *app,
                                KpGateway               *gateway,
                                GApplicationCommandLine *cmdline,
                                char                   **argv,
                                int                      argc);
int       kp_cli_token         (GApplication            *app,
                                KpGateway               *gateway,
                                GApplicationCommandLine *cmdline,
                                char                   **argv,
                                int                      argc);

/* kp-cli-catalog.c */
int       kp_cli_providers     (KpGateway               *gateway,
                                GApplicationCommandLine *cmdline,
                                char                   **argv,
                                int                      argc);
int       kp_cli_models        (KpGateway               *gateway,
                                GApplicationCommandLine *cmdline);
int       kp_cli_refresh       (GApplication            *app,
                                KpGateway               *gateway,
                                GApplicationCommandLine *cmdline,
                                char                   **argv,
                                int                      argc);
int       kp_cli_route         (KpGateway               *gateway,
                                GApplicationCommandLine *cmdline,
                                char                   **argv,
                                int                      argc);

/* kp-cli-reports.c */
int       kp_cli_spend         (KpGateway               *gateway,
                                GApplicationCommandLine *cmdline,
                                char                   **argv,
                                int                      argc);
int       kp_cli_requests      (KpGateway               *gateway,
                                GApplicationCommandLine *cmdline,
                                char                   **argv,
                                int                      argc);

/* kp-cli-clients.c */
int       kp_cli_clients       (GApplication            *app,
                                KpGateway               *gateway,
                                GApplicationCommandLine *cmdline,
                                char                   **argv,
                                int                      argc);

/* kp-cli-budget.c */
int       kp_cli_budget        (KpGateway               *gateway,
                                GApplicationCommandLine *cmdline,
                                char                   **argv,
                                int                      argc);
gboolean  kp_cli_parse_usd     (const char              *text,
                                gint64                  *nano);

/* kp-cli-quota.c */
void      kp_cli_print_quotas  (GApplicationCommandLine *cmdline,
                                KpGateway               *gateway,
                                KpProvider              *provider);

G_END_DECLS
