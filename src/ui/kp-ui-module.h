/* kp-ui-module.h: the window's module, as the program sees it
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <gio/gio.h>
#include <gmodule.h>

G_BEGIN_DECLS

/* The names main.c looks up, and their types. */
#define KP_UI_MODULE_INIT            "kp_ui_module_init"
#define KP_UI_MODULE_APPLICATION_NEW "kp_ui_module_application_new"

typedef gboolean      (*KpUiModuleInit)           (void);
typedef GApplication *(*KpUiModuleApplicationNew) (gboolean unique);

/* In the module. */
gboolean      kp_ui_module_init            (void);
GApplication *kp_ui_module_application_new (gboolean  unique);
const char   *g_module_check_init          (GModule  *module);

G_END_DECLS
