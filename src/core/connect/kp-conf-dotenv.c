/* kp-conf-dotenv.c: KEY=value files (Gemini CLI's ~/.gemini/.env)
 *
 * A key is the variable's name. A line Keypool does not own is kept as it
 * is; a line that is neither blank, a comment nor an assignment makes the
 * file one Keypool does not edit.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include "kp-conf-format.h"

#include <string.h>

/* The name a line assigns, or NULL; *@value points after the '='. */
static char *
line_name (const char  *line,
           const char **value)
{
  const char *p = line;
  const char *start;

  while (*p == ' ' || *p == '\t')
    p++;
  if (g_str_has_prefix (p, "export ") || g_str_has_prefix (p, "export\t"))
    p += 7;
  while (*p == ' ' || *p == '\t')
    p++;
  start = p;
  while (g_ascii_isalnum (*p) || *p == '_' || *p == '.' || *p == '-')
    p++;
  if (p == start)
    return NULL;
  {
    const char *name_end = p;

    while (*p == ' ' || *p == '\t')
      p++;
    if (*p != '=')
      return NULL;
    if (value != NULL)
      *value = p + 1;
    return g_strndup (start, name_end - start);
  }
}

static gboolean
is_blank_or_comment (const char *line)
{
  const char *p = line;

  while (g_ascii_isspace (*p))
    p++;
  return *p == '\0' || *p == '#';
}

static gboolean
dotenv_check (const char  *text,
              GError     **error)
{
  g_autoptr(GPtrArray) lines = kp_conf_split_lines (text);
  gboolean in_quote = FALSE;

  for (guint i = 0; i < lines->len; i++)
    {
      const char *line = g_ptr_array_index (lines, i);
      g_autofree char *name = NULL;
      const char *value = NULL;

      if (in_quote)
        {
          /* A multi-line double-quoted value goes on to its closing quote. */
          if (strchr (line, '"') != NULL)
            in_quote = FALSE;
          continue;
        }
      if (is_blank_or_comment (line))
        continue;
      name = line_name (line, &value);
      if (name == NULL)
        {
          g_set_error (error, KP_CONF_ERROR, KP_CONF_ERROR_PARSE,
                       "line %u is not NAME=value", i + 1);
          return FALSE;
        }
      while (*value == ' ' || *value == '\t')
        value++;
      if (*value == '"' && strchr (value + 1, '"') == NULL)
        in_quote = TRUE;
    }
  if (in_quote)
    {
      g_set_error_literal (error, KP_CONF_ERROR, KP_CONF_ERROR_PARSE,
                           "a quoted value is never closed");
      return FALSE;
    }
  return TRUE;
}

static int
find_line (GPtrArray  *lines,
           const char *key)
{
  int found = -1;

  for (guint i = 0; i < lines->len; i++)
    {
      g_autofree char *name = line_name (g_ptr_array_index (lines, i), NULL);

      /* The last assignment wins, as in a shell. */
      if (name != NULL && g_str_equal (name, key))
        found = (int)i;
    }
  return found;
}

static char *
dotenv_get (const char          *text,
            const char * const  *path,
            GError             **error)
{
  g_autoptr(GPtrArray) lines = kp_conf_split_lines (text);
  const char *value = NULL;
  int i = find_line (lines, path[0]);
  g_autofree char *name = NULL;

  if (i < 0)
    return NULL;
  name = line_name (g_ptr_array_index (lines, i), &value);
  return g_strchomp (g_strdup (value));
}

static char *
dotenv_set (const char          *text,
            const char * const  *path,
            const char          *raw,
            GError             **error)
{
  g_autoptr(GPtrArray) lines = kp_conf_split_lines (text);
  int i = find_line (lines, path[0]);
  char *line = raw ? g_strdup_printf ("%s=%s\n", path[0], raw) : NULL;

  if (i >= 0 && line != NULL)
    {
      const char *old = g_ptr_array_index (lines, i);

      /* Keep the old line's end, so that the rest stays as it was. */
      if (!g_str_has_suffix (old, "\n"))
        line[strlen (line) - 1] = '\0';
      else if (g_str_has_suffix (old, "\r\n"))
        {
          g_autofree char *crlf = g_strdup_printf ("%s=%s\r\n", path[0], raw);

          g_free (line);
          line = g_steal_pointer (&crlf);
        }
      g_free (g_ptr_array_index (lines, i));
      g_ptr_array_index (lines, i) = line;
    }
  else if (i >= 0)
    g_ptr_array_remove_index (lines, i);
  else if (line != NULL)
    {
      const char *last = lines->len ? g_ptr_array_index (lines, lines->len - 1) : NULL;

      if (last != NULL && !g_str_has_suffix (last, "\n"))
        {
          char *ended = g_strconcat (last, "\n", NULL);

          g_free (g_ptr_array_index (lines, lines->len - 1));
          g_ptr_array_index (lines, lines->len - 1) = ended;
        }
      g_ptr_array_add (lines, line);
    }
  return kp_conf_join_lines (lines);
}

static char *
dotenv_quote (const char *value)
{
  for (const char *p = value; *p != '\0'; p++)
    if (!g_ascii_isalnum (*p) && strchr ("-_.:/@+", *p) == NULL)
      return kp_conf_quote_basic (value);
  return g_strdup (value);
}

const KpConfFormat kp_conf_format_dotenv = {
  .id = "dotenv",
  .check = dotenv_check,
  .get = dotenv_get,
  .set = dotenv_set,
  .quote = dotenv_quote,
  .unquote = kp_conf_unquote_basic,
};
