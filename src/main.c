/* main.c: Keypool starts here
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include <locale.h>
#include <stdlib.h>

#include <glib/gi18n.h>

#include "kp-application.h"

#ifdef KEYPOOL_HAVE_GUI
#include "ui/kp-ui-application.h"

/* `keypool` and its serving options get the window; commands (any first
 * argument that is not an option), --headless, --help and --version never
 * do, and neither does a machine without a display.
 */
static gboolean
wants_window (int   argc,
              char *argv[])
{
  const char *display = g_getenv ("DISPLAY");
  const char *wayland = g_getenv ("WAYLAND_DISPLAY");

  if (argc > 1 && argv[1][0] != '-')
    return FALSE;
  for (int i = 1; i < argc; i++)
    if (g_str_equal (argv[i], "--headless") || g_str_equal (argv[i], "--help") ||
        g_str_equal (argv[i], "-h") || g_str_equal (argv[i], "--version"))
      return FALSE;

  if ((display == NULL || *display == '\0') && (wayland == NULL || *wayland == '\0'))
    return FALSE;
  return gtk_init_check ();
}
#endif

int
main (int   argc,
      char *argv[])
{
  g_autoptr(GApplication) app = NULL;
  g_autoptr(GDBusConnection) bus = NULL;
  int status;

  setlocale (LC_ALL, "");
  bindtextdomain (GETTEXT_PACKAGE, LOCALEDIR);
  bind_textdomain_codeset (GETTEXT_PACKAGE, "UTF-8");
  textdomain (GETTEXT_PACKAGE);

  /* With a session bus, one Keypool serves and commands go to it; without
   * one (a headless server), every process works on its own.
   */
  bus = g_bus_get_sync (G_BUS_TYPE_SESSION, NULL, NULL);
#ifdef KEYPOOL_HAVE_GUI
  if (wants_window (argc, argv))
    app = G_APPLICATION (kp_ui_application_new (bus != NULL));
  else
#endif
    app = G_APPLICATION (kp_application_new (bus != NULL));

  status = g_application_run (app, argc, argv);
  if (status == EXIT_SUCCESS)
    status = kp_app_get_exit_status (app);

  return status;
}
