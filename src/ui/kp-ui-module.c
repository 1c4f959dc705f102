/* kp-ui-module.c: what the program looks up in the window's module
 *
 * The window lives in a module of its own, loaded when Keypool starts with
 * a window: `keypool --headless` and the command line never map GTK and
 * libadwaita into the process. The module takes the core from the program
 * that loads it, so both share one copy of every type.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include <gmodule.h>

#include "kp-ui-application.h"
#include "kp-ui-module.h"

/**
 * kp_ui_module_init:
 *
 * Returns: whether a display could be opened
 */
G_MODULE_EXPORT gboolean
kp_ui_module_init (void)
{
  return gtk_init_check ();
}

/**
 * kp_ui_module_application_new:
 * @unique: whether one Keypool serves the session
 *
 * Returns: (transfer full): Keypool with its window
 */
G_MODULE_EXPORT GApplication *
kp_ui_module_application_new (gboolean unique)
{
  return G_APPLICATION (kp_ui_application_new (unique));
}

/* A module with a GType in it must stay loaded. */
G_MODULE_EXPORT const char *
g_module_check_init (GModule *module)
{
  g_module_make_resident (module);
  return NULL;
}
