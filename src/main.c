/* main.c: Keypool starts here
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include <locale.h>
#include <stdlib.h>

#include "kp-application.h"

int
main (int   argc,
      char *argv[])
{
  g_autoptr(KpApplication) app = NULL;
  g_autoptr(GDBusConnection) bus = NULL;
  int status;

  setlocale (LC_ALL, "");

  /* With a session bus, one Keypool serves and commands go to it; without
   * one (a headless server), every process works on its own.
   */
  bus = g_bus_get_sync (G_BUS_TYPE_SESSION, NULL, NULL);
  app = kp_application_new (bus != NULL);

  status = g_application_run (G_APPLICATION (app), argc, argv);
  if (status == EXIT_SUCCESS)
    status = kp_app_get_exit_status (G_APPLICATION (app));

  return status;
}
