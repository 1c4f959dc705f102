/* kp-conf-toml.c: a line-level TOML editor for the keys Keypool owns
 *
 * Not a TOML parser: it finds table headers and `key = value` lines (with
 * values that go on over lines: arrays, inline tables, multi-line strings)
 * and edits only those it is asked to, so that the user's comments and
 * layout stay. A key is [KEY] at the top level or [TABLE, KEY] in a
 * `[TABLE]` section. A line it cannot place, or a table Keypool owns that
 * is also written another way (an inline table, dotted keys), makes it
 * refuse the file rather than guess.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#define TOML_MAX_ENTRIES 100000

#include "config.h"

#include "kp-conf-format.h"

#include <string.h>

typedef enum
{
  LINE_BLANK,     /* blank or a comment */
  LINE_HEADER,
  LINE_KEY,
  LINE_MORE,      /* the rest of a value begun above */
} LineKind;

typedef struct
{
  LineKind  kind;
  char     *table;   /* the section it is in; "" at the top; "[[x]]" for arrays of tables */
  char     *name;    /* LINE_HEADER: the table; LINE_KEY: the key, spaces taken out */
  guint     end;     /* LINE_KEY: the first line after its value */
} Line;

typedef struct
{
  GPtrArray *lines;  /* of char*, with their ends */
  GArray    *info;   /* of Line */
} Doc;

static void
doc_clear (Doc *doc)
{
  for (guint i = 0; doc->info && i < doc->info->len; i++)
    {
      Line *line = &g_array_index (doc->info, Line, i);

      g_free (line->table);
      g_free (line->name);
    }
  g_clear_pointer (&doc->info, g_array_unref);
  g_clear_pointer (&doc->lines, g_ptr_array_unref);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Doc, doc_clear)

/* A name without the spaces around its dots. */
static char *
squeeze (const char *start,
         gsize       len)
{
  GString *out = g_string_new (NULL);
  char quote = 0;

  for (gsize i = 0; i < len; i++)
    {
      char c = start[i];

      if (quote != 0)
        {
          if (c == quote)
            quote = 0;
          g_string_append_c (out, c);
        }
      else if (c == '"' || c == '\'')
        {
          quote = c;
          g_string_append_c (out, c);
        }
      else if (c != ' ' && c != '\t')
        g_string_append_c (out, c);
    }
  return g_string_free (out, FALSE);
}

/* Scans one line's value part for brackets and strings.  @ml is the open
 * multi-line string ('"' or '\'' for """ and ''', or 0), @depth the open
 * brackets; both go on to the next line.
 */
static gboolean
scan_value (const char *p,
            char       *ml,
            int        *depth)
{
  while (*p != '\0' && *p != '\n' && *p != '\r')
    {
      if (*ml != 0)
        {
          char close[4] = { *ml, *ml, *ml, 0 };

          if (*ml == '"' && *p == '\\' && p[1] != '\0')
            {
              p += 2;
              continue;
            }
          if (g_str_has_prefix (p, close))
            {
              *ml = 0;
              p += 3;
              while (*p == close[0])
                p++;
              continue;
            }
          p++;
          continue;
        }
      if (g_str_has_prefix (p, "\"\"\"") || g_str_has_prefix (p, "'''"))
        {
          *ml = *p;
          p += 3;
          continue;
        }
      if (*p == '"' || *p == '\'')
        {
          char q = *p++;

          while (*p != '\0' && *p != q && *p != '\n')
            {
              if (q == '"' && *p == '\\' && p[1] != '\0')
                p++;
              p++;
            }
          if (*p != q)
            return FALSE;
          p++;
          continue;
        }
      if (*p == '#')
        break;
      if (*p == '[' || *p == '{')
        (*depth)++;
      else if (*p == ']' || *p == '}')
        {
          if (--(*depth) < 0 || *depth > KP_CONF_MAX_DEPTH)
            return FALSE;
        }
      if (*depth > KP_CONF_MAX_DEPTH)
        return FALSE;
      p++;
    }
  return TRUE;
}

static gboolean
doc_load (Doc         *doc,
          const char  *text,
          GError     **error)
{
  g_autofree char *table = g_strdup ("");
  char ml = 0;
  int depth = 0;
  guint key_line = 0;

  doc->lines = kp_conf_split_lines (text);
  doc->info = g_array_sized_new (FALSE, TRUE, sizeof (Line), doc->lines->len);
  g_array_set_size (doc->info, doc->lines->len);

  if (doc->lines->len > TOML_MAX_ENTRIES)
    {
      g_set_error_literal (error, KP_CONF_ERROR, KP_CONF_ERROR_TOO_BIG, "too many lines");
      return FALSE;
    }

  for (guint i = 0; i < doc->lines->len; i++)
    {
      const char *text_line = g_ptr_array_index (doc->lines, i);
      Line *line = &g_array_index (doc->info, Line, i);
      const char *p = text_line;

      line->table = g_strdup (table);

      if (ml != 0 || depth > 0)
        {
          line->kind = LINE_MORE;
          if (!scan_value (p, &ml, &depth))
            goto bad;
          if (ml == 0 && depth == 0)
            g_array_index (doc->info, Line, key_line).end = i + 1;
          continue;
        }

      while (*p == ' ' || *p == '\t')
        p++;
      if (*p == '\0' || *p == '\n' || *p == '\r' || *p == '#')
        {
          line->kind = LINE_BLANK;
          continue;
        }
      if (*p == '[')
        {
          gboolean array = p[1] == '[';
          const char *start = p + (array ? 2 : 1);
          const char *close = strstr (start, array ? "]]" : "]");
          const char *rest;

          if (close == NULL)
            goto bad;
          rest = close + (array ? 2 : 1);
          while (*rest == ' ' || *rest == '\t')
            rest++;
          if (*rest != '\0' && *rest != '\n' && *rest != '\r' && *rest != '#')
            goto bad;
          line->kind = LINE_HEADER;
          g_free (table);
          table = squeeze (start, close - start);
          if (array)
            {
              char *wrapped = g_strdup_printf ("[[%s]]", table);

              g_free (table);
              table = wrapped;
            }
          line->name = g_strdup (table);
          continue;
        }

      {
        const char *eq = p;
        char quote = 0;

        for (; *eq != '\0'; eq++)
          {
            if (quote != 0)
              {
                if (*eq == quote)
                  quote = 0;
              }
            else if (*eq == '"' || *eq == '\'')
              quote = *eq;
            else if (*eq == '=')
              break;
            else if (!g_ascii_isalnum (*eq) && strchr ("_-. \t", *eq) == NULL)
              goto bad;
          }
        if (*eq != '=' || eq == p)
          goto bad;
        line->kind = LINE_KEY;
        line->name = squeeze (p, eq - p);
        line->end = i + 1;
        key_line = i;
        if (!scan_value (eq + 1, &ml, &depth))
          goto bad;
      }
      continue;

    bad:
      g_set_error (error, KP_CONF_ERROR, KP_CONF_ERROR_PARSE,
                   "line %u is not TOML that Keypool can edit", i + 1);
      return FALSE;
    }

  if (ml != 0 || depth > 0)
    {
      g_set_error_literal (error, KP_CONF_ERROR, KP_CONF_ERROR_PARSE,
                           "a string or an array is never closed");
      return FALSE;
    }
  return TRUE;
}

static gboolean
toml_check (const char  *text,
            GError     **error)
{
  g_auto(Doc) doc = { 0 };

  return doc_load (&doc, text, error);
}

/* The table a path's key is in ("" at the top), and the key. */
static void
split_path (const char * const  *path,
            const char         **table,
            const char         **key)
{
  if (path[1] == NULL)
    {
      *table = "";
      *key = path[0];
    }
  else
    {
      *table = path[0];
      *key = path[1];
    }
}

/* Refuses a table Keypool owns that is also written some other way. */
static gboolean
check_owned (Doc         *doc,
             const char  *table,
             GError     **error)
{
  g_autofree char *dotted = g_strconcat (table, ".", NULL);

  if (*table == '\0')
    return TRUE;
  for (guint i = 0; i < doc->info->len; i++)
    {
      Line *line = &g_array_index (doc->info, Line, i);
      g_autofree char *full = NULL;

      if (line->kind != LINE_KEY || g_str_equal (line->table, table))
        continue;
      full = *line->table ? g_strconcat (line->table, ".", line->name, NULL) : g_strdup (line->name);
      {
        g_autofree char *full_dotted = g_strconcat (full, ".", NULL);

        /* `[TABLE]` keys as dotted keys elsewhere, or `model_providers = { … }`. */
        if (g_str_equal (full, table) || g_str_has_prefix (full, dotted) ||
            g_str_has_prefix (table, full_dotted))
          {
            g_set_error (error, KP_CONF_ERROR, KP_CONF_ERROR_PARSE,
                         "[%s] is written on line %u in a way Keypool does not edit", table, i + 1);
            return FALSE;
          }
      }
    }
  return TRUE;
}

static int
find_key (Doc        *doc,
          const char *table,
          const char *key)
{
  for (guint i = 0; i < doc->info->len; i++)
    {
      Line *line = &g_array_index (doc->info, Line, i);

      if (line->kind == LINE_KEY && g_str_equal (line->table, table) && g_str_equal (line->name, key))
        return (int)i;
    }
  return -1;
}

static char *
toml_get (const char          *text,
          const char * const  *path,
          GError             **error)
{
  g_auto(Doc) doc = { 0 };
  const char *table, *key;
  GString *value;
  Line *line;
  int i;

  split_path (path, &table, &key);
  if (!doc_load (&doc, text, error) || !check_owned (&doc, table, error))
    return NULL;
  i = find_key (&doc, table, key);
  if (i < 0)
    return NULL;

  line = &g_array_index (doc.info, Line, i);
  value = g_string_new (strchr (g_ptr_array_index (doc.lines, i), '=') + 1);
  for (guint j = i + 1; j < line->end; j++)
    g_string_append (value, g_ptr_array_index (doc.lines, j));
  g_strstrip (value->str);
  value->len = strlen (value->str);

  /* A trailing comment after a one-line string is not the value. */
  if (value->str[0] == '"' && line->end == (guint)i + 1)
    {
      for (gsize k = 1; k < value->len; k++)
        {
          if (value->str[k] == '\\')
            k++;
          else if (value->str[k] == '"')
            {
              g_string_truncate (value, k + 1);
              break;
            }
        }
    }
  return g_string_free (value, FALSE);
}

static gboolean
is_empty_line (const char *line)
{
  for (; *line != '\0'; line++)
    if (!g_ascii_isspace (*line))
      return FALSE;
  return TRUE;
}

static void
insert_line (GPtrArray  *lines,
             guint       at,
             const char *line)
{
  /* The line before must end, or the new one would join it. */
  if (at > 0 && at == lines->len)
    {
      const char *last = g_ptr_array_index (lines, at - 1);

      if (!g_str_has_suffix (last, "\n"))
        {
          char *ended = g_strconcat (last, "\n", NULL);

          g_free (g_ptr_array_index (lines, at - 1));
          g_ptr_array_index (lines, at - 1) = ended;
        }
    }
  g_ptr_array_insert (lines, at, g_strdup (line));
}

static char *
toml_set (const char          *text,
          const char * const  *path,
          const char          *raw,
          GError             **error)
{
  g_auto(Doc) doc = { 0 };
  g_autofree char *new_line = NULL;
  const char *table, *key;
  int i;

  split_path (path, &table, &key);
  if (!doc_load (&doc, text, error) || !check_owned (&doc, table, error))
    return NULL;
  if (raw != NULL)
    new_line = g_strdup_printf ("%s = %s\n", key, raw);

  i = find_key (&doc, table, key);
  if (i >= 0)
    {
      Line *line = &g_array_index (doc.info, Line, i);
      guint end = line->end;

      g_ptr_array_remove_range (doc.lines, i, end - i);
      if (new_line != NULL)
        {
          insert_line (doc.lines, i, new_line);
          return kp_conf_join_lines (doc.lines);
        }

      /* A section of Keypool's left with nothing in it goes too. */
      if (*table != '\0')
        {
          int header = -1;
          gboolean empty = TRUE;

          for (guint j = 0; j < doc.info->len; j++)
            {
              Line *other = &g_array_index (doc.info, Line, j);

              if (other->kind == LINE_HEADER && g_str_equal (other->name, table))
                header = (int)j;
              else if (g_str_equal (other->table, table) && other->kind != LINE_BLANK &&
                       (j < (guint)i || j >= end))
                empty = FALSE;
            }
          if (header >= 0 && empty)
            {
              guint from = header, to = header + 1;

              /* With its contents (blank lines by now) and the blank line before it. */
              while (to < doc.info->len && g_str_equal (g_array_index (doc.info, Line, to).table, table))
                to++;
              to -= end - i;
              if (from > 0 && is_empty_line (g_ptr_array_index (doc.lines, from - 1)))
                from--;
              g_ptr_array_remove_range (doc.lines, from, to - from);
            }
        }
      return kp_conf_join_lines (doc.lines);
    }

  if (new_line == NULL)
    return kp_conf_join_lines (doc.lines);

  /* After the last key of its section; a new section goes at the end. */
  {
    int last = -1;
    int header = -1;

    for (guint j = 0; j < doc.info->len; j++)
      {
        Line *line = &g_array_index (doc.info, Line, j);

        if (line->kind == LINE_HEADER && g_str_equal (line->name, table))
          header = (int)j;
        if (line->kind == LINE_KEY && g_str_equal (line->table, table))
          last = (int)g_array_index (doc.info, Line, j).end - 1;
      }

    if (last >= 0)
      insert_line (doc.lines, last + 1, new_line);
    else if (header >= 0)
      insert_line (doc.lines, header + 1, new_line);
    else if (*table == '\0')
      insert_line (doc.lines, 0, new_line);
    else
      {
        g_autofree char *section = g_strdup_printf ("[%s]\n", table);

        if (doc.lines->len > 0)
          insert_line (doc.lines, doc.lines->len, "\n");
        insert_line (doc.lines, doc.lines->len, section);
        insert_line (doc.lines, doc.lines->len, new_line);
      }
  }
  return kp_conf_join_lines (doc.lines);
}

const KpConfFormat kp_conf_format_toml = {
  .id = "toml",
  .check = toml_check,
  .get = toml_get,
  .set = toml_set,
  .quote = kp_conf_quote_basic,
  .unquote = kp_conf_unquote_basic,
};
