/* kp-cli-connect.c: `keypool connect [TOOL]` and `keypool disconnect TOOL`
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include <stdlib.h>

#include "kp-cli.h"
#include "connect/kp-connector.h"

typedef struct
{
  GApplication            *app;
  GApplicationCommandLine *cmdline;
  const KpConnectTool     *tool;
} Pending;

static Pending *
pending_new (GApplication            *app,
             GApplicationCommandLine *cmdline,
             const KpConnectTool     *tool)
{
  Pending *pending = g_new0 (Pending, 1);

  pending->app = g_object_ref (app);
  pending->cmdline = g_object_ref (cmdline);
  pending->tool = tool;
  g_application_hold (app);
  return pending;
}

static void
pending_done (Pending *pending,
              int      status)
{
  kp_app_set_exit_status (pending->app, pending->cmdline, status);
  g_application_release (pending->app);
  g_object_unref (pending->cmdline);
  g_object_unref (pending->app);
  g_free (pending);
}

/* The invoking user's home: the caller's, where it says. */
static const char *
home_of (GApplicationCommandLine *cmdline)
{
  const char *home = g_application_command_line_getenv (cmdline, "HOME");

  return home != NULL && g_path_is_absolute (home) ? home : g_get_home_dir ();
}

static char *
tool_ids (void)
{
  const KpConnectTool * const *tools = kp_connect_get_tools ();
  GString *ids = g_string_new (NULL);

  for (guint i = 0; tools[i] != NULL; i++)
    g_string_append_printf (ids, "%s%s", i ? ", " : "", tools[i]->id);
  return g_string_free (ids, FALSE);
}

static int
list_tools (KpGateway               *gateway,
            GApplicationCommandLine *cmdline)
{
  const KpConnectTool * const *tools = kp_connect_get_tools ();
  g_autofree char *url = kp_gateway_dup_base_url (gateway);

  g_application_command_line_print (cmdline, "%-12s %-10s %-11s %-32s %s\n",
                                    "TOOL", "INSTALLED", "CONFIG", "MODEL", "FILE");
  for (guint i = 0; tools[i] != NULL; i++)
    {
      g_auto(KpConnectStatus) status = { 0 };

      kp_connect_inspect (tools[i], home_of (cmdline), url, &status);
      g_application_command_line_print (cmdline, "%-12s %-10s %-11s %-32s %s\n", tools[i]->id,
                                        status.installed ? "yes" : "no",
                                        kp_connect_file_state_to_string (status.state),
                                        status.model ? status.model : "-", status.path);
      if (status.problem != NULL)
        g_application_command_line_print (cmdline, "             %s\n", status.problem);
    }
  return EXIT_SUCCESS;
}

static void
on_connected (GObject      *object,
              GAsyncResult *res,
              gpointer      user_data)
{
  Pending *pending = user_data;
  GApplicationCommandLine *cmdline = pending->cmdline;
  g_autoptr(GError) error = NULL;
  g_autoptr(KpConnectResult) result = NULL;

  result = kp_connector_connect_finish (KP_GATEWAY (object), res, &error);
  if (result == NULL)
    {
      g_application_command_line_printerr (cmdline, "keypool: %s\n", error->message);
      pending_done (pending, EXIT_FAILURE);
      return;
    }
  if (result->problem != NULL)
    {
      g_application_command_line_printerr (cmdline,
                                           "keypool: %s\nNothing is written. Paste this "
                                           "yourself (it has %s’s new token):\n",
                                           result->problem, pending->tool->name);
      g_application_command_line_print (cmdline, "%s", result->snippet);
      pending_done (pending, EXIT_FAILURE);
      return;
    }

  if (result->changed)
    g_application_command_line_print (cmdline, "%s now uses Keypool: written to %s (a backup of "
                                      "what was there is beside it).\n",
                                      pending->tool->name, result->path);
  else
    g_application_command_line_print (cmdline, "%s already uses Keypool: %s unchanged.\n",
                                      pending->tool->name, result->path);
  if (result->opened_mode != 0)
    g_application_command_line_print (cmdline, "%s was open to others (mode %04o); it holds a "
                                      "token now, so it is 0600: only you can read it.\n",
                                      result->token_path, result->opened_mode);
  if (pending->tool->note != NULL)
    g_application_command_line_print (cmdline, "%s\n", pending->tool->note);
  g_application_command_line_print (cmdline, "Model: %s%s\n", result->model,
                                    result->model_served ? ""
                                    : " (no key of yours serves it now: add one, or pick another "
                                      "with --model)");
  pending_done (pending, EXIT_SUCCESS);
}

static void
on_disconnected (GObject      *object,
                 GAsyncResult *res,
                 gpointer      user_data)
{
  Pending *pending = user_data;
  g_autoptr(GError) error = NULL;

  if (!kp_connector_disconnect_finish (KP_GATEWAY (object), res, &error))
    {
      g_application_command_line_printerr (pending->cmdline, "keypool: %s\n", error->message);
      pending_done (pending, EXIT_FAILURE);
      return;
    }
  g_application_command_line_print (pending->cmdline,
                                    "%s’s config is as it was before Keypool, and its client token "
                                    "is removed.\n", pending->tool->name);
  pending_done (pending, EXIT_SUCCESS);
}

/**
 * kp_cli_connect:
 *
 * `keypool connect` lists the tools; `keypool connect TOOL [--model M]`
 * and `keypool disconnect TOOL` write and restore a tool's config.
 */
int
kp_cli_connect (GApplication            *app,
                KpGateway               *gateway,
                GApplicationCommandLine *cmdline,
                char                   **argv,
                int                      argc)
{
  g_autofree char *model = NULL;
  g_autoptr(GOptionContext) context = g_option_context_new (NULL);
  g_autoptr(GError) error = NULL;
  gboolean disconnect = g_str_equal (argv[0], "disconnect");
  const KpConnectTool *tool;
  const GOptionEntry entries[] = {
    { "model", 0, 0, G_OPTION_ARG_STRING, &model, NULL, NULL },
    { NULL }
  };

  g_option_context_set_help_enabled (context, FALSE);
  g_option_context_add_main_entries (context, disconnect ? entries + 1 : entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_application_command_line_printerr (cmdline, "keypool: %s\n", error->message);
      return EXIT_FAILURE;
    }
  if (argc == 1 && !disconnect && model == NULL)
    return list_tools (gateway, cmdline);
  if (argc != 2)
    {
      g_application_command_line_printerr (cmdline, "keypool: usage: keypool connect [TOOL [--model "
                                           "MODEL]] | keypool disconnect TOOL\n");
      return EXIT_FAILURE;
    }

  tool = kp_connect_lookup (argv[1]);
  if (tool == NULL)
    {
      g_autofree char *ids = tool_ids ();

      g_application_command_line_printerr (cmdline,
                                           "keypool: “%s” is not a tool Keypool connects; it knows "
                                           "%s. (For Cursor, copy the settings from the window’s "
                                           "Connect page.)\n", argv[1], ids);
      return EXIT_FAILURE;
    }

  if (disconnect)
    kp_connector_disconnect_async (gateway, tool, home_of (cmdline), NULL, on_disconnected,
                                   pending_new (app, cmdline, tool));
  else
    kp_connector_connect_async (gateway, tool, home_of (cmdline), model, NULL, on_connected,
                                pending_new (app, cmdline, tool));
  return -1;
}
