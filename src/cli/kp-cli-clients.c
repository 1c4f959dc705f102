/* kp-cli-clients.c: `keypool clients add NAME|list|remove NAME|rename NAME NEW`
 *
 * `add` prints the new token once, on standard output alone, so that it can
 * be piped into a tool's configuration; it is never shown again.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include <stdlib.h>

#include "kp-cli-private.h"

#define USAGE "usage: keypool clients add NAME | list | remove NAME | rename NAME NEW"

static void
on_client_added (GObject      *object,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  Pending *pending = user_data;
  g_autoptr(GError) error = NULL;
  char *token;

  token = kp_clients_add_finish (KP_CLIENTS (object), result, NULL, &error);
  if (token == NULL)
    {
      kp_cli_pending_done (pending, kp_cli_fail (pending->cmdline, "%s", error->message));
      return;
    }
  g_application_command_line_print (pending->cmdline, "%s\n", token);
  kp_secret_wipe (&token);
  g_application_command_line_printerr (pending->cmdline,
                                       "This token is shown once: give it to the client now.\n");
  kp_cli_pending_done (pending, EXIT_SUCCESS);
}

static void
on_client_removed (GObject      *object,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  Pending *pending = user_data;
  g_autoptr(GError) error = NULL;

  if (!kp_clients_remove_finish (KP_CLIENTS (object), result, &error))
    {
      kp_cli_pending_done (pending, kp_cli_fail (pending->cmdline, "%s", error->message));
      return;
    }
  g_application_command_line_print (pending->cmdline,
                                    "Removed; its token is refused from now on.\n");
  kp_cli_pending_done (pending, EXIT_SUCCESS);
}

static int
list (KpClients               *clients,
      GApplicationCommandLine *cmdline)
{
  g_autoptr(GPtrArray) list = kp_clients_list (clients, FALSE);

  if (list->len == 0)
    {
      g_application_command_line_print (cmdline,
                                        "No client tokens; “keypool clients add NAME” makes one.\n");
      return EXIT_SUCCESS;
    }

  g_application_command_line_print (cmdline, "%-32s %-19s %s\n", "NAME", "CREATED", "STATE");
  for (guint i = 0; i < list->len; i++)
    {
      KpClientInfo *info = g_ptr_array_index (list, i);
      g_autoptr(GDateTime) created = g_date_time_new_from_unix_local (info->created);
      g_autofree char *when = created ? g_date_time_format (created, "%Y-%m-%d %H:%M:%S")
                                      : g_strdup ("?");

      g_application_command_line_print (cmdline, "%-32s %-19s %s\n", info->name, when,
                                        info->active ? "in use" : "no token in the keyring");
    }
  return EXIT_SUCCESS;
}

/**
 * kp_cli_clients:
 *
 * Returns: the exit status, or -1 when the command goes on asynchronously
 */
int
kp_cli_clients (GApplication            *app,
                KpGateway               *gateway,
                GApplicationCommandLine *cmdline,
                char                   **argv,
                int                      argc)
{
  KpClients *clients = kp_gateway_get_clients (gateway);
  g_autoptr(GError) error = NULL;
  const GOptionEntry entries[] = { { NULL } };
  const char *verb;

  if (!kp_cli_parse_options (cmdline, &argv, &argc, entries))
    return EXIT_FAILURE;
  verb = argc > 1 ? argv[1] : "list";

  if (g_str_equal (verb, "list") && argc <= 2)
    return list (clients, cmdline);

  if (g_str_equal (verb, "add") && argc == 3)
    {
      kp_clients_add_async (clients, argv[2], FALSE, NULL, on_client_added,
                            kp_cli_pending_new (app, cmdline));
      return -1;
    }

  if (g_str_equal (verb, "remove") && argc == 3)
    {
      kp_clients_remove_async (clients, argv[2], NULL, on_client_removed,
                               kp_cli_pending_new (app, cmdline));
      return -1;
    }

  if (g_str_equal (verb, "rename") && argc == 4)
    {
      if (!kp_clients_rename (clients, argv[2], argv[3], &error))
        return kp_cli_fail (cmdline, "%s", error->message);
      return EXIT_SUCCESS;
    }

  return kp_cli_fail (cmdline, USAGE);
}
