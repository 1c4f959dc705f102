/* kp-module.c: Keypool's own modules, found and opened
 *
 * Parts of Keypool that pull in large libraries (the window: GTK and
 * libadwaita; the keyring: libsecret and libgcrypt) live in modules loaded
 * when first needed, so `keypool --headless` and the command line never map
 * them. A module is looked for, in order: in the folders of
 * KEYPOOL_MODULE_DIR (the test suite points it at the build tree), in its
 * folder beside the program (a build tree), and where `meson install` puts
 * it. The first place that has the file wins.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include <gio/gio.h>

#include "kp-module.h"

static char *
find_module (const char *name,
             const char *build_dir)
{
  const char *env = g_getenv ("KEYPOOL_MODULE_DIR");
  g_autofree char *exe = g_file_read_link ("/proc/self/exe", NULL);
  g_autofree char *beside = NULL;
  g_autofree char *installed = NULL;

  if (env != NULL && *env != '\0')
    {
      g_auto(GStrv) dirs = g_strsplit (env, G_SEARCHPATH_SEPARATOR_S, -1);

      for (guint i = 0; dirs[i] != NULL; i++)
        {
          g_autofree char *path = NULL;

          if (*dirs[i] == '\0')
            continue;
          path = g_module_build_path (dirs[i], name);
          if (g_file_test (path, G_FILE_TEST_EXISTS))
            return g_steal_pointer (&path);
        }
    }

  if (exe != NULL)
    {
      g_autofree char *dir = g_path_get_dirname (exe);
      g_autofree char *folder = g_build_filename (dir, build_dir, NULL);

      beside = g_module_build_path (folder, name);
      if (g_file_test (beside, G_FILE_TEST_EXISTS))
        return g_steal_pointer (&beside);
    }

  installed = g_module_build_path (KEYPOOL_MODULE_DIR, name);
  if (g_file_test (installed, G_FILE_TEST_EXISTS))
    return g_steal_pointer (&installed);
  return NULL;
}

/**
 * kp_module_open:
 * @name: the module's name, without "lib" and ".so": "keypool-vault"
 * @build_dir: its folder beside the program in a build tree: "vault"
 * @error: a location for a #GError
 *
 * Opens one of Keypool's modules and keeps it loaded for the life of the
 * process (modules hold types and callbacks that must not go away).
 *
 * Returns: (transfer none): the module, or %NULL with @error set when it is
 *   not installed or cannot be loaded
 */
GModule *
kp_module_open (const char  *name,
                const char  *build_dir,
                GError     **error)
{
  g_autofree char *path = NULL;
  GModule *module;

  g_return_val_if_fail (name != NULL && build_dir != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  path = find_module (name, build_dir);
  if (path == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                   "%s is not installed (looked in %s)", name, KEYPOOL_MODULE_DIR);
      return NULL;
    }

  module = g_module_open (path, G_MODULE_BIND_LAZY | G_MODULE_BIND_LOCAL);
  if (module == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "%s", g_module_error ());
      return NULL;
    }
  g_module_make_resident (module);
  return module;
}
