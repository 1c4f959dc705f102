/* kp-conf-lines.c: what the line-based config formats share
 *
 * Lines keep their own ends, so that joining the lines Keypool did not
 * touch gives back the same bytes.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include "kp-conf-format.h"

#include <string.h>

G_DEFINE_QUARK (kp-conf-error-quark, kp_conf_error)

/**
 * kp_conf_split_lines:
 * @text: a file's text
 *
 * Returns: (transfer full) (element-type utf8): its lines, each with its
 *   line end ("\n" or "\r\n"; none for a last line without one)
 */
GPtrArray *
kp_conf_split_lines (const char *text)
{
  GPtrArray *lines = g_ptr_array_new_with_free_func (g_free);
  const char *p = text;

  while (*p != '\0')
    {
      const char *end = strchr (p, '\n');
      gsize len = end ? (gsize)(end - p) + 1 : strlen (p);

      g_ptr_array_add (lines, g_strndup (p, len));
      p += len;
    }
  return lines;
}

char *
kp_conf_join_lines (GPtrArray *lines)
{
  GString *text = g_string_new (NULL);

  for (guint i = 0; i < lines->len; i++)
    g_string_append (text, g_ptr_array_index (lines, i));
  return g_string_free (text, FALSE);
}

/* A double-quoted string, the same in JSON, TOML and YAML. */
char *
kp_conf_quote_basic (const char *value)
{
  GString *out = g_string_new ("\"");

  for (const char *p = value; *p != '\0'; p++)
    {
      guchar c = (guchar)*p;

      if (c == '"' || c == '\\')
        g_string_append_printf (out, "\\%c", c);
      else if (c == '\n')
        g_string_append (out, "\\n");
      else if (c < 0x20 || c == 0x7f)
        g_string_append_printf (out, "\\u%04x", c);
      else
        g_string_append_c (out, (char)c);
    }
  g_string_append_c (out, '"');
  return g_string_free (out, FALSE);
}

/* The string a plain or quoted scalar stands for; NULL for anything with
 * escapes other than \" and \\, which Keypool never writes.
 */
char *
kp_conf_unquote_basic (const char *raw)
{
  g_autofree char *text = g_strstrip (g_strdup (raw));
  gsize len = strlen (text);
  GString *out;

  if (len >= 2 && text[0] == '\'' && text[len - 1] == '\'')
    return g_strndup (text + 1, len - 2);
  if (len < 2 || text[0] != '"' || text[len - 1] != '"')
    return len > 0 && strchr ("\"'[{", text[0]) == NULL ? g_steal_pointer (&text) : NULL;

  out = g_string_new (NULL);
  for (gsize i = 1; i < len - 1; i++)
    {
      if (text[i] == '\\')
        {
          if (i + 1 >= len - 1 || (text[i + 1] != '"' && text[i + 1] != '\\'))
            {
              g_string_free (out, TRUE);
              return NULL;
            }
          i++;
        }
      else if (text[i] == '"')
        {
          g_string_free (out, TRUE);
          return NULL;
        }
      g_string_append_c (out, text[i]);
    }
  return g_string_free (out, FALSE);
}
