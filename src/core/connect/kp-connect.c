/* kp-connect.c: reading, editing, backing up and restoring tools' configs
 *
 * Before Keypool first writes a tool's file it copies it beside itself
 * (FILE.keypool-backup, the same bytes and mode) and records, in
 * FILE.keypool-state, whether there was a file and a digest of what Keypool
 * wrote. Disconnecting puts the backup back as it was when the file is still
 * what Keypool wrote; when the user edited it since, only the keys Keypool
 * owns are put back to what the backup had, and the user's edits stay.
 * Every write is atomic (a temporary file renamed over) and keeps the mode.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include "kp-connect.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include <glib/gstdio.h>

/* A config file is small; a larger one is not edited. */
#define FILE_MAX (1024 * 1024)
#define STATE_GROUP "keypool-connect"

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
kp_connect_dup_path (const KpConnectTool *tool,
                     const char          *home)
{
  return g_build_filename (home, tool->file, NULL);
}

/* The file's text; NULL with *@exists FALSE when there is none. */
static char *
read_bounded (const char  *path,
              gboolean    *exists,
              guint       *mode,
              GError     **error)
{
  GStatBuf st;
  g_autofree char *contents = NULL;
  gsize len;

  *exists = FALSE;
  if (g_lstat (path, &st) != 0)
    {
      if (errno == ENOENT)
        return NULL;
      g_set_error (error, KP_CONF_ERROR, KP_CONF_ERROR_IO, "%s cannot be read: %s", path,
                   g_strerror (errno));
      return NULL;
    }
  *exists = TRUE;
  if (mode != NULL)
    *mode = st.st_mode & 07777;
  if (!S_ISREG (st.st_mode))
    {
      g_set_error (error, KP_CONF_ERROR, KP_CONF_ERROR_PARSE,
                   "%s is not a plain file (a link, perhaps); Keypool does not replace it", path);
      return NULL;
    }
  if (st.st_size > FILE_MAX)
    {
      g_set_error (error, KP_CONF_ERROR, KP_CONF_ERROR_TOO_BIG,
                   "%s is larger than %d bytes; Keypool does not edit it", path, FILE_MAX);
      return NULL;
    }
  if (!g_file_get_contents (path, &contents, &len, error))
    return NULL;
  if (len > FILE_MAX || strlen (contents) != len || !g_utf8_validate (contents, len, NULL))
    {
      g_set_error (error, KP_CONF_ERROR, KP_CONF_ERROR_PARSE,
                   "%s is not UTF-8 text; Keypool does not edit it", path);
      return NULL;
    }
  return g_steal_pointer (&contents);
}

/* Whether @dir has an entry that is not Keypool's own doing: a file other
 * than the tool's config and Keypool's records beside it, or the config
 * itself when Keypool did not make it.
 */
static gboolean
has_user_entries (const KpConnectTool *tool,
                  const char          *home,
                  const char          *dir)
{
  g_autofree char *path = kp_connect_dup_path (tool, home);
  g_autofree char *base = g_path_get_basename (path);
  g_autofree char *state_name = g_strconcat (base, ".keypool-state", NULL);
  g_autofree char *backup_name = g_strconcat (base, ".keypool-backup", NULL);
  g_autofree char *state_path = g_strconcat (path, ".keypool-state", NULL);
  g_autoptr(GKeyFile) state = g_key_file_new ();
  g_autoptr(GDir) listing = g_dir_open (dir, 0, NULL);
  const char *name;

  if (listing == NULL)
    return FALSE;
  while ((name = g_dir_read_name (listing)) != NULL)
    if (!g_str_equal (name, base) && !g_str_equal (name, state_name) &&
        !g_str_equal (name, backup_name))
      return TRUE;
  /* Only the config (if anything): the user's own unless Keypool made it. */
  if (!g_file_test (path, G_FILE_TEST_EXISTS))
    return FALSE;
  if (!g_key_file_load_from_file (state, state_path, G_KEY_FILE_NONE, NULL))
    return TRUE;
  return g_key_file_get_boolean (state, STATE_GROUP, "existed", NULL);
}

/* Whether @marker (relative to @home; see KpConnectTool) is there. */
static gboolean
marker_exists (const KpConnectTool *tool,
               const char          *home,
               const char          *marker)
{
  g_autofree char *path = g_build_filename (home, marker, NULL);
  g_autofree char *config = kp_connect_dup_path (tool, home);
  g_autofree char *config_dir = g_path_get_dirname (config);
  g_autofree char *dir = NULL;
  g_autofree char *prefix = NULL;
  g_autoptr(GDir) listing = NULL;
  const char *name;

  if (!g_str_has_suffix (path, "*"))
    {
      if (g_str_equal (path, config_dir))
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

static char *
fill (const char            *format,
      const KpConnectValues *values,
      const KpConfFormat    *quote_with)
{
  g_autoptr(GString) text = g_string_new (format);
  const char *names[] = { "@URL@", "@ROOT@", "@TOKEN@", "@MODEL@" };
  const char *with[] = { values->url, values->root, values->token, values->model };

  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      g_autofree char *quoted = quote_with ? quote_with->quote (with[i]) : NULL;

      g_string_replace (text, names[i], quoted ? quoted : with[i], 0);
    }
  return g_string_free (g_steal_pointer (&text), FALSE);
}

/**
 * kp_connect_render:
 * @text: (nullable): the file's text now, or NULL for a new file
 *
 * Returns: (transfer full): the text with Keypool's keys set to @values, or
 *   NULL when Keypool cannot edit @text
 */
char *
kp_connect_render (const KpConnectTool    *tool,
                   const char             *text,
                   const KpConnectValues  *values,
                   GError                **error)
{
  g_autofree char *out = g_strdup (text ? text : tool->skeleton ? tool->skeleton : "");

  if (!tool->format->check (out, error))
    return NULL;
  for (const KpConnectEntry *e = tool->entries; e->path[0] != NULL; e++)
    {
      g_autofree char *raw = NULL;
      char *next;

      if (e->raw)
        raw = fill (e->value, values, tool->format);
      else
        {
          g_autofree char *plain = fill (e->value, values, NULL);

          raw = tool->format->quote (plain);
        }
      next = tool->format->set (out, e->path, raw, error);
      if (next == NULL)
        return NULL;
      g_free (out);
      out = next;
    }
  return g_steal_pointer (&out);
}

char *
kp_connect_dup_snippet (const KpConnectTool   *tool,
                        const KpConnectValues *values)
{
  return kp_connect_render (tool, NULL, values, NULL);
}

static char *
get_plain (const KpConnectTool *tool,
           const char          *text,
           const char * const  *path)
{
  g_autofree char *raw = tool->format->get (text, path, NULL);

  return raw ? tool->format->unquote (raw) : NULL;
}

void
kp_connect_inspect (const KpConnectTool *tool,
                    const char          *home,
                    const char          *url,
                    KpConnectStatus     *status)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *text = NULL;
  g_autofree char *state_path = NULL;
  g_autofree char *where = NULL;
  g_autofree char *root = NULL;
  g_autofree char *trial_text = NULL;
  gboolean exists;

  memset (status, 0, sizeof *status);
  status->path = kp_connect_dup_path (tool, home);

  for (guint i = 0; tool->programs && tool->programs[i] != NULL && !status->installed; i++)
    {
      g_autofree char *found = g_find_program_in_path (tool->programs[i]);

      status->installed = found != NULL;
    }
  for (guint i = 0; tool->markers && tool->markers[i] != NULL && !status->installed; i++)
    status->installed = marker_exists (tool, home, tool->markers[i]);

  state_path = g_strconcat (status->path, ".keypool-state", NULL);
  status->restorable = g_file_test (state_path, G_FILE_TEST_IS_REGULAR);

  text = read_bounded (status->path, &exists, NULL, &error);
  if (!exists)
    {
      status->state = KP_CONNECT_FILE_MISSING;
      return;
    }
  root = g_str_has_suffix (url, "/v1") ? g_strndup (url, strlen (url) - 3) : g_strdup (url);
  if (text != NULL)
    {
      /* Whether Keypool could write it, not only read it. */
      KpConnectValues trial = { url, root, "-", "-" };

      trial_text = kp_connect_render (tool, text, &trial, &error);
    }
  if (trial_text == NULL)
    {
      status->state = KP_CONNECT_FILE_UNREADABLE;
      status->problem = g_strdup (error->message);
      return;
    }

  where = get_plain (tool, text, tool->url_path);
  if (where == NULL || (!g_str_equal (where, url) && !g_str_equal (where, root)))
    {
      status->state = KP_CONNECT_FILE_OTHER;
      return;
    }
  status->state = KP_CONNECT_FILE_CONNECTED;
  status->model = get_plain (tool, text, tool->model_path);
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
 * Returns: (transfer full) (nullable): the token the tool's file holds now
 */
char *
kp_connect_dup_token (const KpConnectTool *tool,
                      const char          *home)
{
  g_autofree char *path = kp_connect_dup_path (tool, home);
  g_autofree char *text = NULL;
  gboolean exists;

  text = read_bounded (path, &exists, NULL, NULL);
  if (text == NULL || !tool->format->check (text, NULL))
    return NULL;
  return get_plain (tool, text, tool->token_path);
}

static char *
digest (const char *text)
{
  return g_compute_checksum_for_string (G_CHECKSUM_SHA256, text, -1);
}

static gboolean
write_atomic (const char  *path,
              const char  *text,
              guint        mode,
              GError     **error)
{
  g_autoptr(GError) local_error = NULL;

  if (!g_file_set_contents_full (path, text, -1,
                                 G_FILE_SET_CONTENTS_CONSISTENT | G_FILE_SET_CONTENTS_ONLY_EXISTING,
                                 (int)mode, &local_error))
    {
      g_set_error (error, KP_CONF_ERROR, KP_CONF_ERROR_IO, "%s", local_error->message);
      return FALSE;
    }
  return TRUE;
}

static gboolean
set_mode (const char  *path,
          guint        mode,
          GError     **error)
{
  if (g_chmod (path, (int)mode) != 0)
    {
      g_set_error (error, KP_CONF_ERROR, KP_CONF_ERROR_IO, "%s cannot be made private: %s", path,
                   g_strerror (errno));
      return FALSE;
    }
  return TRUE;
}

/* Remembers, the first time Keypool writes @path, whether it was there and
 * its mode; every time, a digest of what Keypool wrote (@next).
 */
static gboolean
save_state (const char  *state_path,
            const char  *backup_path,
            const char  *text,
            gboolean     exists,
            guint        mode,
            const char  *next,
            GError     **error)
{
  g_autoptr(GKeyFile) state = g_key_file_new ();
  g_autofree char *written = NULL;
  g_autofree char *state_text = NULL;

  if (!g_key_file_load_from_file (state, state_path, G_KEY_FILE_NONE, NULL))
    {
      if (exists && !write_atomic (backup_path, text, mode, error))
        return FALSE;
      g_key_file_set_boolean (state, STATE_GROUP, "existed", exists);
      if (exists)
        g_key_file_set_integer (state, STATE_GROUP, "mode", (int)mode);
    }
  else if (exists && !g_key_file_has_key (state, STATE_GROUP, "mode", NULL))
    g_key_file_set_integer (state, STATE_GROUP, "mode", (int)mode);
  written = digest (next);
  g_key_file_set_string (state, STATE_GROUP, "written", written);
  state_text = g_key_file_to_data (state, NULL, NULL);
  return write_atomic (state_path, state_text, 0600, error);
}

/**
 * kp_connect_write:
 * @changed: (out): whether the file changed
 * @opened_mode: (out): the file's mode when others could read or write it
 *   (it is 0600 now: it holds a token), or 0
 *
 * Points the tool's config at Keypool. A file Keypool cannot edit is left
 * as it is, with an error of %KP_CONF_ERROR. The file holds a client token,
 * so it is written 0600 whatever it was; kp_connect_restore() puts the old
 * mode back.
 */
gboolean
kp_connect_write (const KpConnectTool    *tool,
                  const char             *home,
                  const KpConnectValues  *values,
                  gboolean               *changed,
                  guint                  *opened_mode,
                  GError                **error)
{
  g_autofree char *path = kp_connect_dup_path (tool, home);
  g_autofree char *state_path = g_strconcat (path, ".keypool-state", NULL);
  g_autofree char *backup_path = g_strconcat (path, ".keypool-backup", NULL);
  g_autofree char *dir = g_path_get_dirname (path);
  g_autofree char *text = NULL;
  g_autofree char *next = NULL;
  g_autoptr(GError) local_error = NULL;
  gboolean exists;
  guint mode = 0600;

  *changed = FALSE;
  *opened_mode = 0;
  text = read_bounded (path, &exists, &mode, &local_error);
  if (local_error != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&local_error));
      return FALSE;
    }
  next = kp_connect_render (tool, text, values, &local_error);
  if (next == NULL)
    {
      g_set_error (error, KP_CONF_ERROR, local_error->code, "Keypool cannot edit %s: %s.", path,
                   local_error->message);
      return FALSE;
    }
  if (exists && (mode & 077) != 0)
    *opened_mode = mode;
  if (text != NULL && g_str_equal (text, next))
    {
      /* Connected before, but open to others: only the mode changes. */
      if (*opened_mode != 0 &&
          (!save_state (state_path, backup_path, text, exists, mode, next, error) ||
           !set_mode (path, 0600, error)))
        return FALSE;
      return TRUE;
    }

  if (g_mkdir_with_parents (dir, 0700) != 0)
    {
      g_set_error (error, KP_CONF_ERROR, KP_CONF_ERROR_IO, "%s cannot be made: %s", dir,
                   g_strerror (errno));
      return FALSE;
    }

  /* The first time: keep what was there, before anything else. */
  if (!save_state (state_path, backup_path, text, exists, mode, next, error))
    return FALSE;
  if (!write_atomic (path, next, 0600, error))
    return FALSE;
  *changed = TRUE;
  return TRUE;
}

/**
 * kp_connect_restore:
 *
 * Puts back what the tool's config was before Keypool wrote it.
 */
gboolean
kp_connect_restore (const KpConnectTool  *tool,
                    const char           *home,
                    GError              **error)
{
  g_autofree char *path = kp_connect_dup_path (tool, home);
  g_autofree char *state_path = g_strconcat (path, ".keypool-state", NULL);
  g_autofree char *backup_path = g_strconcat (path, ".keypool-backup", NULL);
  g_autoptr(GKeyFile) state = g_key_file_new ();
  g_autoptr(GError) local_error = NULL;
  g_autofree char *text = NULL;
  g_autofree char *backup = NULL;
  g_autofree char *written = NULL;
  g_autofree char *now = NULL;
  gboolean existed, exists, backup_exists;
  guint mode = 0600;
  int old_mode;

  if (!g_key_file_load_from_file (state, state_path, G_KEY_FILE_NONE, NULL))
    {
      g_set_error (error, KP_CONF_ERROR, KP_CONF_ERROR_IO,
                   "Keypool has not connected %s: there is nothing of its own to undo in %s.",
                   tool->name, path);
      return FALSE;
    }
  existed = g_key_file_get_boolean (state, STATE_GROUP, "existed", NULL);
  written = g_key_file_get_string (state, STATE_GROUP, "written", NULL);
  old_mode = g_key_file_get_integer (state, STATE_GROUP, "mode", NULL);

  text = read_bounded (path, &exists, &mode, &local_error);
  if (local_error != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&local_error));
      return FALSE;
    }
  if (existed)
    {
      backup = read_bounded (backup_path, &backup_exists, NULL, &local_error);
      if (backup == NULL)
        {
          g_set_error (error, KP_CONF_ERROR, KP_CONF_ERROR_IO,
                       "The backup %s is gone or unreadable%s%s; %s is left as it is.", backup_path,
                       local_error ? ": " : "", local_error ? local_error->message : "", path);
          return FALSE;
        }
    }

  if (text != NULL)
    now = digest (text);

  if (!exists || (written != NULL && g_strcmp0 (now, written) == 0))
    {
      /* As Keypool left it: the old file comes back as it was. */
      if (existed && g_rename (backup_path, path) != 0)
        {
          g_set_error (error, KP_CONF_ERROR, KP_CONF_ERROR_IO, "%s cannot be put back: %s",
                       path, g_strerror (errno));
          return FALSE;
        }
      /* Connected before Keypool made files private: the backup is the file itself. */
      if (existed && old_mode > 0 && (old_mode & ~07777) == 0 && !set_mode (path, (guint)old_mode, error))
        return FALSE;
      if (!existed && exists && g_unlink (path) != 0)
        {
          g_set_error (error, KP_CONF_ERROR, KP_CONF_ERROR_IO, "%s cannot be removed: %s",
                       path, g_strerror (errno));
          return FALSE;
        }
    }
  else
    {
      /* Edited since: only Keypool's keys go back to what they were. */
      g_autofree char *out = g_strdup (text);

      for (const KpConnectEntry *e = tool->entries; e->path[0] != NULL; e++)
        {
          g_autofree char *old = backup ? tool->format->get (backup, e->path, NULL) : NULL;
          char *next = tool->format->set (out, e->path, old, &local_error);

          if (next == NULL)
            {
              g_set_error (error, KP_CONF_ERROR, KP_CONF_ERROR_PARSE,
                           "%s was edited since Keypool wrote it, and Keypool cannot edit it now "
                           "(%s); it is left as it is, and the old file is in %s.",
                           path, local_error->message, existed ? backup_path : "no backup");
              return FALSE;
            }
          g_free (out);
          out = next;
        }
      if (existed && old_mode > 0 && (old_mode & ~07777) == 0)
        mode = (guint)old_mode;
      if (!write_atomic (path, out, mode, error))
        return FALSE;
      if (existed)
        g_unlink (backup_path);
    }
  g_unlink (state_path);
  return TRUE;
}
