/* kp-cli.c: the command line's dispatcher and what its commands share
 *
 * Every command runs in the primary instance: the running Keypool when there
 * is one, or this process on the database and keyring directly. Output goes
 * to the invoking terminal through the GApplicationCommandLine. A key is
 * never printed: only its last four characters. The commands themselves are
 * in kp-cli-*.c: keys and accounts, providers and models, the ledger's
 * reports, clients, budgets and connecting tools.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include <stdlib.h>

#include "kp-cli.h"
#include "kp-cli-private.h"

static const char *commands[] = { "keys", "providers", "models", "refresh", "route", "spend", "requests",
                                  "token", "clients", "budget", "login", "connect", "disconnect",
                                  NULL };

gboolean
kp_cli_is_command (const char *word)
{
  return word != NULL && g_strv_contains (commands, word);
}

/* Helpers ------------------------------------------------------------------- */

/* An asynchronous command keeps the application and the caller waiting. */
Pending *
kp_cli_pending_new (GApplication            *app,
                    GApplicationCommandLine *cmdline)
{
  Pending *pending = g_new0 (Pending, 1);

  pending->app = g_object_ref (app);
  pending->cmdline = g_object_ref (cmdline);
  g_application_hold (app);
  return pending;
}

void
kp_cli_pending_done (Pending *pending,
                     int      status)
{
  kp_app_set_exit_status (pending->app, pending->cmdline, status);
  g_application_release (pending->app);
  g_object_unref (pending->cmdline);
  g_object_unref (pending->app);
  g_free (pending);
}

int
kp_cli_fail (GApplicationCommandLine *cmdline,
             const char              *format,
             ...)
{
  g_autofree char *message = NULL;
  va_list args;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);

  g_application_command_line_printerr (cmdline, "keypool: %s\n", message);
  return EXIT_FAILURE;
}

char *
kp_cli_format_usd (gint64 nano)
{
  return g_strdup_printf ("$%.6f", nano / 1e9);
}

char *
kp_cli_format_until (gint64 unix_s)
{
  g_autoptr(GDateTime) when = g_date_time_new_from_unix_local (unix_s);

  return when ? g_date_time_format (when, "%Y-%m-%d %H:%M:%S") : g_strdup ("?");
}

/* Parses the options of one command; the rest arguments stay in @argv. */
gboolean
kp_cli_parse_options (GApplicationCommandLine   *cmdline,
                      char                    ***argv,
                      int                       *argc,
                      const GOptionEntry        *entries)
{
  g_autoptr(GOptionContext) context = g_option_context_new (NULL);
  g_autoptr(GError) error = NULL;

  g_option_context_set_help_enabled (context, FALSE);
  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, argc, argv, &error))
    {
      kp_cli_fail (cmdline, "%s", error->message);
      return FALSE;
    }
  return TRUE;
}

/**
 * kp_cli_run:
 * @app: the application
 * @gateway: a loaded gateway
 * @cmdline: the command line, `keypool COMMAND …`
 *
 * Carries out one command. Commands that wait for the keyring or a provider
 * hold the application until they are done.
 *
 * Returns: the exit status, or -1 when the command goes on asynchronously
 *   and sets it when it ends
 */
int
kp_cli_run (GApplication            *app,
            KpGateway               *gateway,
            GApplicationCommandLine *cmdline)
{
  g_auto(GStrv) args = g_application_command_line_get_arguments (cmdline, NULL);
  g_autofree char **argv = NULL;
  const char *command;
  int argc;
  int status;

  g_return_val_if_fail (G_IS_APPLICATION (app), EXIT_FAILURE);
  g_return_val_if_fail (args[1] != NULL, EXIT_FAILURE);

  /* GOption rearranges the array it parses: work on a shallow copy. */
  argc = g_strv_length (args) - 1;
  argv = g_memdup2 (args + 1, sizeof (char *) * (argc + 1));
  command = argv[0];

  if (g_str_equal (command, "keys"))
    status = kp_cli_keys (app, gateway, cmdline, argv, argc);
  else if (g_str_equal (command, "providers"))
    status = kp_cli_providers (gateway, cmdline, argv, argc);
  else if (g_str_equal (command, "models"))
    status = kp_cli_models (gateway, cmdline);
  else if (g_str_equal (command, "refresh"))
    status = kp_cli_refresh (app, gateway, cmdline, argv, argc);
  else if (g_str_equal (command, "route"))
    status = kp_cli_route (gateway, cmdline, argv, argc);
  else if (g_str_equal (command, "spend"))
    status = kp_cli_spend (gateway, cmdline, argv, argc);
  else if (g_str_equal (command, "requests"))
    status = kp_cli_requests (gateway, cmdline, argv, argc);
  else if (g_str_equal (command, "connect") || g_str_equal (command, "disconnect"))
    status = kp_cli_connect (app, gateway, cmdline, argv, argc);
  else if (g_str_equal (command, "clients"))
    status = kp_cli_clients (app, gateway, cmdline, argv, argc);
  else if (g_str_equal (command, "budget"))
    status = kp_cli_budget (gateway, cmdline, argv, argc);
  else if (g_str_equal (command, "login"))
    status = kp_cli_login (app, gateway, cmdline, argv, argc);
  else
    status = kp_cli_token (app, gateway, cmdline, argv, argc);

  /* -1: an asynchronous command sets the status when it is done. */
  if (status >= 0)
    kp_app_set_exit_status (app, cmdline, status);
  return status;
}
