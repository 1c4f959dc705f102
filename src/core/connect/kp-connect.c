/* kp-connect.c: editing, backing up and restoring tools' configs
 *
 * Before Keypool first writes one of a tool's files it copies it beside
 * itself (FILE.keypool-backup, the same bytes and mode) and records, in
 * FILE.keypool-state, whether there was a file and a digest of what Keypool
 * wrote. Disconnecting puts the backup back as it was when the file is still
 * what Keypool wrote; when the user edited it since, only the keys Keypool
 * owns are put back to what the backup had, and the user's edits stay.
 * Every write is atomic (a temporary file renamed over) and keeps the mode.
 *
 * A tool's files are one unit: every one is read and edited in memory
 * before any is written, so that one Keypool cannot edit leaves them all
 * as they are; the backups are made before the first write, and a write
 * that fails undoes the ones before it.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include "kp-connect-private.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include <glib/gstdio.h>

/**
 * kp_connect_read_bounded:
 * @exists: (out): whether there is a file at @path
 * @mode: (out) (optional): its mode
 *
 * Returns: (transfer full) (nullable): the file's text; NULL with *@exists
 *   FALSE when there is none, or with @error when Keypool does not edit it
 */
char *
kp_connect_read_bounded (const char  *path,
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
  if (st.st_size > KP_CONNECT_FILE_MAX)
    {
      g_set_error (error, KP_CONF_ERROR, KP_CONF_ERROR_TOO_BIG,
                   "%s is larger than %d bytes; Keypool does not edit it", path, KP_CONNECT_FILE_MAX);
      return NULL;
    }
  if (!g_file_get_contents (path, &contents, &len, error))
    return NULL;
  if (len > KP_CONNECT_FILE_MAX || strlen (contents) != len || !g_utf8_validate (contents, len, NULL))
    {
      g_set_error (error, KP_CONF_ERROR, KP_CONF_ERROR_PARSE,
                   "%s is not UTF-8 text; Keypool does not edit it", path);
      return NULL;
    }
  return g_steal_pointer (&contents);
}

/* @format with @values in it; each quoted with @quote_with, when given. */
char *
kp_connect_fill (const char            *format,
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
kp_connect_render (const KpConnectFile    *file,
                   const char             *text,
                   const KpConnectValues  *values,
                   GError                **error)
{
  g_autofree char *out = g_strdup (text ? text : file->skeleton ? file->skeleton : "");

  if (!file->format->check (out, error))
    return NULL;
  for (const KpConnectEntry *e = file->entries; e->path[0] != NULL; e++)
    {
      g_autofree char *raw = NULL;
      char *next;

      if (e->raw)
        raw = kp_connect_fill (e->value, values, file->format);
      else
        {
          g_autofree char *plain = kp_connect_fill (e->value, values, NULL);

          raw = file->format->quote (plain);
        }
      next = file->format->set (out, e->path, raw, error);
      if (next == NULL)
        return NULL;
      g_free (out);
      out = next;
    }
  return g_steal_pointer (&out);
}

/**
 * kp_connect_dup_snippet:
 *
 * Returns: (transfer full): what to paste instead: the one file's text, or
 *   with more than one file each one's, after a line that names it
 */
char *
kp_connect_dup_snippet (const KpConnectTool   *tool,
                        const KpConnectValues *values)
{
  GString *snippet = g_string_new (NULL);

  if (tool->files[1].path == NULL)
    {
      g_autofree char *text = kp_connect_render (tool->files, NULL, values, NULL);

      g_string_append (snippet, text);
      return g_string_free (snippet, FALSE);
    }
  for (const KpConnectFile *f = tool->files; f->path != NULL; f++)
    {
      g_autofree char *text = kp_connect_render (f, NULL, values, NULL);

      g_string_append_printf (snippet, "%s~/%s:\n%s", f == tool->files ? "" : "\n", f->path, text);
    }
  return g_string_free (snippet, FALSE);
}

char *
kp_connect_get_plain (const KpConnectFile *file,
                      const char          *text,
                      const char * const  *path)
{
  g_autofree char *raw = file->format->get (text, path, NULL);

  return raw ? file->format->unquote (raw) : NULL;
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
      g_set_error (error, KP_CONF_ERROR, KP_CONF_ERROR_IO, "%s cannot be given mode %04o: %s", path,
                   mode, g_strerror (errno));
      return FALSE;
    }
  return TRUE;
}

/* One of a tool's files, as a connect or a disconnect goes. */
typedef struct
{
  const KpConnectFile *file;
  char                *path;
  char                *state_path;
  char                *backup_path;
  char                *text;        /* the file now; NULL when there is none */
  gboolean             exists;
  guint                mode;
  /* Connecting. */
  char                *next;        /* what Keypool writes */
  gboolean             is_private;  /* it holds the token: only its owner reads it */
  char                *old_state;   /* Keypool's record before, to undo with */
  gboolean             recorded;    /* its record (and backup) is written */
  gboolean             written;
  /* Disconnecting. */
  gboolean             existed;     /* there was a file before Keypool */
  int                  old_mode;
  gboolean             as_left;     /* still what Keypool wrote */
  char                *out;         /* else: the user's edits with Keypool's keys undone */
} Staged;

static Staged *
staged_new (const KpConnectFile *file,
            const char          *home)
{
  Staged *s = g_new0 (Staged, 1);

  s->file = file;
  s->path = kp_connect_dup_path (file, home);
  s->state_path = g_strconcat (s->path, KP_CONNECT_STATE_SUFFIX, NULL);
  s->backup_path = g_strconcat (s->path, KP_CONNECT_BACKUP_SUFFIX, NULL);
  s->mode = 0600;
  return s;
}

static void
staged_free (Staged *s)
{
  g_free (s->path);
  g_free (s->state_path);
  g_free (s->backup_path);
  g_free (s->text);
  g_free (s->next);
  g_free (s->old_state);
  g_free (s->out);
  g_free (s);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Staged, staged_free)

/* Reads @s's file; FALSE with @error when Keypool does not edit it. */
static gboolean
staged_read (Staged  *s,
             GError **error)
{
  g_autoptr(GError) local_error = NULL;

  s->text = kp_connect_read_bounded (s->path, &s->exists, &s->mode, &local_error);
  if (local_error != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&local_error));
      return FALSE;
    }
  return TRUE;
}

/* Remembers, the first time Keypool writes @s's file, whether it was there
 * (and a copy of it) and its mode; every time, a digest of what Keypool wrote.
 */
static gboolean
save_state (Staged  *s,
            GError **error)
{
  g_autoptr(GKeyFile) state = g_key_file_new ();
  g_autofree char *written = NULL;
  g_autofree char *state_text = NULL;

  if (s->old_state == NULL ||
      !g_key_file_load_from_data (state, s->old_state, -1, G_KEY_FILE_NONE, NULL))
    {
      g_clear_pointer (&s->old_state, g_free);
      if (s->exists && !write_atomic (s->backup_path, s->text, s->mode, error))
        return FALSE;
      g_key_file_set_boolean (state, KP_CONNECT_STATE_GROUP, "existed", s->exists);
      if (s->exists)
        g_key_file_set_integer (state, KP_CONNECT_STATE_GROUP, "mode", (int)s->mode);
    }
  else if (s->exists && !g_key_file_has_key (state, KP_CONNECT_STATE_GROUP, "mode", NULL))
    g_key_file_set_integer (state, KP_CONNECT_STATE_GROUP, "mode", (int)s->mode);
  written = digest (s->next);
  g_key_file_set_string (state, KP_CONNECT_STATE_GROUP, "written", written);
  state_text = g_key_file_to_data (state, NULL, NULL);
  if (!write_atomic (s->state_path, state_text, 0600, error))
    {
      if (s->old_state == NULL)
        g_unlink (s->backup_path);
      return FALSE;
    }
  s->recorded = TRUE;
  return TRUE;
}

/* Puts back what a connect that failed half-way wrote: best effort. */
static void
undo_connect (GPtrArray *staged)
{
  for (guint i = staged->len; i-- > 0;)
    {
      Staged *s = g_ptr_array_index (staged, i);
      gboolean put_back = TRUE;

      if (s->written && !s->exists)
        g_unlink (s->path);
      else if (s->written)
        {
          put_back = write_atomic (s->path, s->text, s->mode, NULL) && set_mode (s->path, s->mode, NULL);
          if (!put_back)
            g_warning ("%s could not be put back after a failed connect; a copy is in %s",
                       s->path, s->backup_path);
        }
      if (!s->recorded)
        continue;
      if (s->old_state != NULL)
        write_atomic (s->state_path, s->old_state, 0600, NULL);
      else
        {
          g_unlink (s->state_path);
          if (put_back)
            g_unlink (s->backup_path);
        }
    }
}

/* Whether connecting changes @s's file: its text, or its mode. */
static gboolean
staged_needs_write (const Staged *s)
{
  return s->text == NULL || !g_str_equal (s->text, s->next);
}

static gboolean
staged_needs_private (const Staged *s)
{
  return s->is_private && s->exists && (s->mode & 077) != 0;
}

/* Writes what connecting makes of @s's file, atomically. */
static gboolean
staged_write (Staged  *s,
              GError **error)
{
  if (!staged_needs_write (s))
    return set_mode (s->path, 0600, error);
  if (s->is_private)
    {
      if (!write_atomic (s->path, s->next, 0600, error))
        return FALSE;
    }
  else if (!write_atomic (s->path, s->next, s->exists ? s->mode : 0644, error) ||
           (s->exists && !set_mode (s->path, s->mode, error)))
    return FALSE;
  s->written = TRUE;
  return TRUE;
}

/**
 * kp_connect_write:
 * @changed: (out): whether a file changed
 * @opened_mode: (out): the first file's mode when others could read or
 *   write it (it is 0600 now: it holds a token), or 0
 *
 * Points the tool's config at Keypool. When Keypool cannot edit one of its
 * files, none is written, with an error of %KP_CONF_ERROR that names it.
 * The first file holds a client token, so it is written 0600 whatever it
 * was; kp_connect_restore() puts the old mode back. The others keep theirs.
 */
gboolean
kp_connect_write (const KpConnectTool    *tool,
                  const char             *home,
                  const KpConnectValues  *values,
                  gboolean               *changed,
                  guint                  *opened_mode,
                  GError                **error)
{
  g_autoptr(GPtrArray) staged = g_ptr_array_new_with_free_func ((GDestroyNotify)staged_free);

  *changed = FALSE;
  *opened_mode = 0;

  /* Every file read and edited before any is written. */
  for (const KpConnectFile *f = tool->files; f->path != NULL; f++)
    {
      Staged *s = staged_new (f, home);
      g_autoptr(GError) local_error = NULL;

      g_ptr_array_add (staged, s);
      if (!staged_read (s, error))
        return FALSE;
      s->next = kp_connect_render (f, s->text, values, &local_error);
      if (s->next == NULL)
        {
          g_set_error (error, KP_CONF_ERROR, local_error->code, "Keypool cannot edit %s: %s.",
                       s->path, local_error->message);
          return FALSE;
        }
      s->is_private = f == tool->files;
      if (staged_needs_private (s))
        *opened_mode = s->mode;
    }

  /* Keep what was there, before anything else. */
  for (guint i = 0; i < staged->len; i++)
    {
      Staged *s = g_ptr_array_index (staged, i);
      g_autofree char *dir = g_path_get_dirname (s->path);

      if (!staged_needs_write (s) && !staged_needs_private (s))
        continue;
      if (g_mkdir_with_parents (dir, 0700) != 0)
        {
          g_set_error (error, KP_CONF_ERROR, KP_CONF_ERROR_IO, "%s cannot be made: %s", dir,
                       g_strerror (errno));
          undo_connect (staged);
          return FALSE;
        }
      g_file_get_contents (s->state_path, &s->old_state, NULL, NULL);
      if (!save_state (s, error))
        {
          undo_connect (staged);
          return FALSE;
        }
    }

  for (guint i = 0; i < staged->len; i++)
    {
      Staged *s = g_ptr_array_index (staged, i);

      if (!s->recorded)
        continue;
      if (!staged_write (s, error))
        {
          undo_connect (staged);
          return FALSE;
        }
      *changed |= s->written;
    }
  return TRUE;
}

/* Reads what disconnecting needs of @s's file and works out what it makes
 * of it; FALSE with @error when it cannot put it back.
 */
static gboolean
staged_prepare_restore (Staged   *s,
                        GKeyFile *state,
                        GError  **error)
{
  g_autoptr(GError) local_error = NULL;
  g_autofree char *backup = NULL;
  g_autofree char *written = NULL;
  g_autofree char *now = NULL;
  gboolean backup_exists;

  s->existed = g_key_file_get_boolean (state, KP_CONNECT_STATE_GROUP, "existed", NULL);
  written = g_key_file_get_string (state, KP_CONNECT_STATE_GROUP, "written", NULL);
  s->old_mode = g_key_file_get_integer (state, KP_CONNECT_STATE_GROUP, "mode", NULL);
  if (s->old_mode <= 0 || (s->old_mode & ~07777) != 0)
    s->old_mode = 0;

  if (!staged_read (s, error))
    return FALSE;
  if (s->existed)
    {
      backup = kp_connect_read_bounded (s->backup_path, &backup_exists, NULL, &local_error);
      if (backup == NULL)
        {
          g_set_error (error, KP_CONF_ERROR, KP_CONF_ERROR_IO,
                       "The backup %s is gone or unreadable%s%s; %s is left as it is.",
                       s->backup_path, local_error ? ": " : "", local_error ? local_error->message : "",
                       s->path);
          return FALSE;
        }
    }
  if (s->text != NULL)
    now = digest (s->text);
  s->as_left = !s->exists || (written != NULL && g_strcmp0 (now, written) == 0);
  if (s->as_left)
    return TRUE;

  /* Edited since: only Keypool's keys go back to what they were. */
  s->out = g_strdup (s->text);
  for (const KpConnectEntry *e = s->file->entries; e->path[0] != NULL; e++)
    {
      g_autofree char *old = backup ? s->file->format->get (backup, e->path, NULL) : NULL;
      char *next = s->file->format->set (s->out, e->path, old, &local_error);

      if (next == NULL)
        {
          g_set_error (error, KP_CONF_ERROR, KP_CONF_ERROR_PARSE,
                       "%s was edited since Keypool wrote it, and Keypool cannot edit it now "
                       "(%s); it is left as it is, and the old file is in %s.",
                       s->path, local_error->message, s->existed ? s->backup_path : "no backup");
          return FALSE;
        }
      g_free (s->out);
      s->out = next;
    }
  return TRUE;
}

static gboolean
staged_restore (Staged  *s,
                GError **error)
{
  if (s->as_left)
    {
      /* As Keypool left it: the old file comes back as it was. */
      if (s->existed && g_rename (s->backup_path, s->path) != 0)
        {
          g_set_error (error, KP_CONF_ERROR, KP_CONF_ERROR_IO, "%s cannot be put back: %s",
                       s->path, g_strerror (errno));
          return FALSE;
        }
      /* Connected before Keypool made files private: the backup is the file itself. */
      if (s->existed && s->old_mode != 0 && !set_mode (s->path, (guint)s->old_mode, error))
        return FALSE;
      if (!s->existed && s->exists && g_unlink (s->path) != 0)
        {
          g_set_error (error, KP_CONF_ERROR, KP_CONF_ERROR_IO, "%s cannot be removed: %s",
                       s->path, g_strerror (errno));
          return FALSE;
        }
    }
  else
    {
      guint mode = s->existed && s->old_mode != 0 ? (guint)s->old_mode : s->mode;

      if (!write_atomic (s->path, s->out, mode, error) || !set_mode (s->path, mode, error))
        return FALSE;
      if (s->existed)
        g_unlink (s->backup_path);
    }
  g_unlink (s->state_path);
  return TRUE;
}

/**
 * kp_connect_restore:
 *
 * Puts back what the tool's files were before Keypool wrote them. Every
 * file is checked before any is put back: one that cannot be leaves them
 * all as they are.
 */
gboolean
kp_connect_restore (const KpConnectTool  *tool,
                    const char           *home,
                    GError              **error)
{
  g_autoptr(GPtrArray) staged = g_ptr_array_new_with_free_func ((GDestroyNotify)staged_free);

  for (const KpConnectFile *f = tool->files; f->path != NULL; f++)
    {
      g_autoptr(Staged) s = staged_new (f, home);
      g_autoptr(GKeyFile) state = g_key_file_new ();

      /* A file Keypool did not write (or connected before it had this file) stays. */
      if (!g_key_file_load_from_file (state, s->state_path, G_KEY_FILE_NONE, NULL))
        continue;
      if (!staged_prepare_restore (s, state, error))
        return FALSE;
      g_ptr_array_add (staged, g_steal_pointer (&s));
    }
  if (staged->len == 0)
    {
      g_autofree char *paths = kp_connect_dup_paths (tool, home);

      g_set_error (error, KP_CONF_ERROR, KP_CONF_ERROR_IO,
                   "Keypool has not connected %s: there is nothing of its own to undo in %s.",
                   tool->name, paths);
      return FALSE;
    }
  for (guint i = 0; i < staged->len; i++)
    if (!staged_restore (g_ptr_array_index (staged, i), error))
      return FALSE;
  return TRUE;
}
