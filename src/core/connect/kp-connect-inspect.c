/* kp-connect-inspect.c: whether a tool is installed and uses Keypool
 *
 * A tool is installed when its program is on PATH or one of its markers is
 * there. Its config points at Keypool when every one of its files does:
 * each holds the values Keypool writes there (all but the token and the
 * model, which may be any), and the first one the base URL.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include "kp-connect-private.h"

#include <string.h>

const char *
kp_connect_file_state_to_string (KpConnectFileState state)
{
  switch (state)
    {
    case KP_CONNECT_FILE_MISSING: return "missing";
    case KP_CONNECT_FILE_OTHER: return "other";
    case KP_CONNECT_FILE_CONNECTED: return "connected";
    case KP_CONNECT_FILE_UNREADABLE: return "unreadable";
    default: g_assert_not_reached ();
    }
}

char *
kp_connect_dup_path (const KpConnectFile *file,
                     const char          *home)
{
  return g_build_filename (home, file->path, NULL);
}

/**
 * kp_connect_dup_paths:
 *
 * Returns: (transfer full): the tool's files, for showing: ", " between them
 */
char *
kp_connect_dup_paths (const KpConnectTool *tool,
                      const char          *home)
{
  GString *paths = g_string_new (NULL);

  for (const KpConnectFile *f = tool->files; f->path != NULL; f++)
    {
      g_autofree char *path = kp_connect_dup_path (f, home);

      g_string_append_printf (paths, "%s%s", f == tool->files ? "" : ", ", path);
    }
  return g_string_free (paths, FALSE);
}

/* Whether @name in @dir is one of the tool's files or Keypool's records. */
static gboolean
is_keypool_entry (const KpConnectTool *tool,
                  const char          *home,
                  const char          *dir,
                  const char          *name)
{
  g_autofree char *full = g_build_filename (dir, name, NULL);

  for (const KpConnectFile *f = tool->files; f->path != NULL; f++)
    {
      g_autofree char *path = kp_connect_dup_path (f, home);

      if (g_str_equal (full, path) ||
          (g_str_has_prefix (full, path) &&
           (g_str_equal (full + strlen (path), KP_CONNECT_STATE_SUFFIX) ||
            g_str_equal (full + strlen (path), KP_CONNECT_BACKUP_SUFFIX))))
        return TRUE;
    }
  return FALSE;
}

/* Whether @dir has an entry that is not Keypool's own doing: anything but
 * the tool's files and Keypool's records beside them, or one of the files
 * when Keypool did not make it.
 */
static gboolean
has_user_entries (const KpConnectTool *tool,
                  const char          *home,
                  const char          *dir)
{
  g_autoptr(GDir) listing = g_dir_open (dir, 0, NULL);
  const char *name;

  if (listing == NULL)
    return FALSE;
  while ((name = g_dir_read_name (listing)) != NULL)
    if (!is_keypool_entry (tool, home, dir, name))
      return TRUE;
  /* Only the tool's files (if anything): the user's own unless Keypool made them. */
  for (const KpConnectFile *f = tool->files; f->path != NULL; f++)
    {
      g_autofree char *path = kp_connect_dup_path (f, home);
      g_autofree char *state_path = g_strconcat (path, KP_CONNECT_STATE_SUFFIX, NULL);
      g_autoptr(GKeyFile) state = g_key_file_new ();

      if (!g_file_test (path, G_FILE_TEST_EXISTS))
        continue;
      if (!g_key_file_load_from_file (state, state_path, G_KEY_FILE_NONE, NULL) ||
          g_key_file_get_boolean (state, KP_CONNECT_STATE_GROUP, "existed", NULL))
        return TRUE;
    }
  return FALSE;
}

/* Whether @dir holds one of the tool's files. */
static gboolean
is_config_dir (const KpConnectTool *tool,
               const char          *home,
               const char          *dir)
{
  for (const KpConnectFile *f = tool->files; f->path != NULL; f++)
    {
      g_autofree char *path = kp_connect_dup_path (f, home);
      g_autofree char *parent = g_path_get_dirname (path);

      if (g_str_equal (parent, dir))
        return TRUE;
    }
  return FALSE;
}

/* Whether @marker (relative to @home; see KpConnectTool) is there. */
static gboolean
marker_exists (const KpConnectTool *tool,
               const char          *home,
               const char          *marker)
{
  g_autofree char *path = g_build_filename (home, marker, NULL);
  g_autofree char *dir = NULL;
  g_autofree char *prefix = NULL;
  g_autoptr(GDir) listing = NULL;
  const char *name;

  if (!g_str_has_suffix (path, "*"))
    {
      if (is_config_dir (tool, home, path))
        return has_user_entries (tool, home, path);
      return g_file_test (path, G_FILE_TEST_EXISTS);
    }
  path[strlen (path) - 1] = '\0';
  dir = g_path_get_dirname (path);
  prefix = g_path_get_basename (path);
  listing = g_dir_open (dir, 0, NULL);
  if (listing == NULL)
    return FALSE;
  /* A bounded look: an extensions folder has some hundreds of entries. */
  for (guint n = 0; (name = g_dir_read_name (listing)) != NULL && n < 10000; n++)
    if (g_str_has_prefix (name, prefix))
      return TRUE;
  return FALSE;
}

/* Whether @text (the file @file of @tool) holds what Keypool writes there,
 * but for the token and the model. @values has the URLs.
 */
static gboolean
points_at_keypool (const KpConnectTool   *tool,
                   const KpConnectFile   *file,
                   const char            *text,
                   const KpConnectValues *values)
{
  if (file == tool->files)
    {
      g_autofree char *where = kp_connect_get_plain (file, text, tool->url_path);

      if (where == NULL || (!g_str_equal (where, values->url) && !g_str_equal (where, values->root)))
        return FALSE;
    }
  for (const KpConnectEntry *e = file->entries; e->path[0] != NULL; e++)
    {
      g_autofree char *want = NULL;
      g_autofree char *have = NULL;

      if (e->raw || strstr (e->value, "@TOKEN@") != NULL || strstr (e->value, "@MODEL@") != NULL)
        continue;
      want = kp_connect_fill (e->value, values, NULL);
      have = kp_connect_get_plain (file, text, e->path);
      if (g_strcmp0 (want, have) != 0)
        return FALSE;
    }
  return TRUE;
}

void
kp_connect_inspect (const KpConnectTool *tool,
                    const char          *home,
                    const char          *url,
                    KpConnectStatus     *status)
{
  g_autofree char *root = NULL;
  g_autofree char *first_text = NULL;
  gboolean any = FALSE;
  gboolean all = TRUE;

  memset (status, 0, sizeof *status);
  status->path = kp_connect_dup_paths (tool, home);

  for (guint i = 0; tool->programs && tool->programs[i] != NULL && !status->installed; i++)
    {
      g_autofree char *found = g_find_program_in_path (tool->programs[i]);

      status->installed = found != NULL;
    }
  for (guint i = 0; tool->markers && tool->markers[i] != NULL && !status->installed; i++)
    status->installed = marker_exists (tool, home, tool->markers[i]);

  for (const KpConnectFile *f = tool->files; f->path != NULL; f++)
    {
      g_autofree char *path = kp_connect_dup_path (f, home);
      g_autofree char *state_path = g_strconcat (path, KP_CONNECT_STATE_SUFFIX, NULL);

      status->restorable |= g_file_test (state_path, G_FILE_TEST_IS_REGULAR);
    }

  root = g_str_has_suffix (url, "/v1") ? g_strndup (url, strlen (url) - 3) : g_strdup (url);
  for (const KpConnectFile *f = tool->files; f->path != NULL; f++)
    {
      /* Whether Keypool could write it, not only read it. */
      KpConnectValues trial = { url, root, "-", "-" };
      g_autoptr(GError) error = NULL;
      g_autofree char *path = kp_connect_dup_path (f, home);
      g_autofree char *text = NULL;
      g_autofree char *trial_text = NULL;
      gboolean exists;

      text = kp_connect_read_bounded (path, &exists, NULL, &error);
      if (!exists)
        {
          all = FALSE;
          continue;
        }
      any = TRUE;
      if (text != NULL)
        trial_text = kp_connect_render (f, text, &trial, &error);
      if (trial_text == NULL)
        {
          status->state = KP_CONNECT_FILE_UNREADABLE;
          /* With more than one file, the user is told which. */
          status->problem = tool->files[1].path == NULL
                            ? g_strdup (error->message)
                            : g_strdup_printf ("%s: %s", path, error->message);
          return;
        }
      all &= points_at_keypool (tool, f, text, &trial);
      if (f == tool->files)
        first_text = g_steal_pointer (&text);
    }

  status->state = !any ? KP_CONNECT_FILE_MISSING
                  : all ? KP_CONNECT_FILE_CONNECTED : KP_CONNECT_FILE_OTHER;
  if (status->state != KP_CONNECT_FILE_CONNECTED)
    return;
  status->model = kp_connect_get_plain (tool->files, first_text, tool->model_path);
  if (status->model != NULL && tool->model_prefix != NULL &&
      g_str_has_prefix (status->model, tool->model_prefix))
    {
      char *bare = g_strdup (status->model + strlen (tool->model_prefix));

      g_free (status->model);
      status->model = bare;
    }
}

void
kp_connect_status_clear (KpConnectStatus *status)
{
  g_clear_pointer (&status->path, g_free);
  g_clear_pointer (&status->model, g_free);
  g_clear_pointer (&status->problem, g_free);
}

/**
 * kp_connect_dup_token:
 *
 * Returns: (transfer full) (nullable): the token the tool's config holds now
 */
char *
kp_connect_dup_token (const KpConnectTool *tool,
                      const char          *home)
{
  g_autofree char *path = kp_connect_dup_path (tool->files, home);
  g_autofree char *text = NULL;
  gboolean exists;

  text = kp_connect_read_bounded (path, &exists, NULL, NULL);
  if (text == NULL || !tool->files->format->check (text, NULL))
    return NULL;
  return kp_connect_get_plain (tool->files, text, tool->token_path);
}
