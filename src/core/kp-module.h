/* kp-module.h: Keypool's own modules, found and opened
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <gmodule.h>

G_BEGIN_DECLS

GModule *kp_module_open (const char  *name,
                         const char  *build_dir,
                         GError     **error);

G_END_DECLS
