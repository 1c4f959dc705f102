/* kp-conf-yaml.c: a line-level YAML editor for the keys Keypool owns
 *
 * Not a YAML parser: a file of one block mapping is split into its top-level
 * keys, each with the lines of its value; a top-level block sequence into
 * its items. Keypool edits only the key or the item it owns, so the user's
 * comments and layout stay. Paths:
 *   [KEY]                 a top-level key (aider's `model: …`)
 *   [KEY, "name=N"]       the item of the sequence at KEY whose `name` is N
 *                         (Continue's models), raw value = the item's lines,
 *                         "- " at column 0
 *   [KEY, "name=N", SUB]  a scalar in that item (get only)
 * A file that is not one block mapping (flow style at the top, several
 * documents, tabs in indentation) is refused rather than guessed at.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include "kp-conf-format.h"

#include <string.h>

#define YAML_MAX_LINES 100000

static guint
indent_of (const char *line)
{
  guint n = 0;

  while (line[n] == ' ')
    n++;
  return n;
}

static gboolean
is_blank (const char *line)
{
  const char *p = line + indent_of (line);

  return *p == '\0' || *p == '\n' || *p == '\r' || *p == '#';
}

/* The top-level key a line begins, or NULL; *@value after its ':'. */
static char *
top_key (const char  *line,
         const char **value)
{
  const char *p = line;

  if (*p == ' ' || *p == '#' || *p == '-' || *p == '\n' || *p == '\r' || *p == '\0')
    return NULL;
  while (*p != '\0' && *p != ':' && *p != '\n' && *p != '#')
    p++;
  if (*p != ':' || (p[1] != ' ' && p[1] != '\n' && p[1] != '\r' && p[1] != '\0'))
    return NULL;
  if (value != NULL)
    *value = p + 1;
  return g_strstrip (g_strndup (line, p - line));
}

static gboolean
yaml_check_lines (GPtrArray  *lines,
                  GError    **error)
{
  gboolean seen = FALSE;

  if (lines->len > YAML_MAX_LINES)
    {
      g_set_error_literal (error, KP_CONF_ERROR, KP_CONF_ERROR_TOO_BIG, "too many lines");
      return FALSE;
    }
  for (guint i = 0; i < lines->len; i++)
    {
      const char *line = g_ptr_array_index (lines, i);
      g_autofree char *key = NULL;
      const char *p = line;

      while (*p == ' ')
        p++;
      if (*p == '\t')
        goto bad;
      if (is_blank (line))
        continue;
      if (g_str_has_prefix (line, "---") && !seen)
        {
          seen = TRUE;
          continue;
        }
      seen = TRUE;
      if (line[0] == ' ')
        continue;
      /* Items of a top-level key's sequence may sit at column 0. */
      if (line[0] == '-' && (line[1] == ' ' || line[1] == '\n' || line[1] == '\0') && i > 0)
        continue;
      key = top_key (line, NULL);
      if (key == NULL || *key == '\0' || strchr ("{[&*!|>%@`", key[0]) != NULL)
        goto bad;
      continue;

    bad:
      g_set_error (error, KP_CONF_ERROR, KP_CONF_ERROR_PARSE,
                   "line %u is not YAML that Keypool can edit", i + 1);
      return FALSE;
    }
  return TRUE;
}

static gboolean
yaml_check (const char  *text,
            GError     **error)
{
  g_autoptr(GPtrArray) lines = kp_conf_split_lines (text);

  return yaml_check_lines (lines, error);
}

/* The lines [*start, *end) of top-level @key, its own line first; -1 if none. */
static int
find_top (GPtrArray  *lines,
          const char *key,
          guint      *end)
{
  for (guint i = 0; i < lines->len; i++)
    {
      g_autofree char *name = top_key (g_ptr_array_index (lines, i), NULL);

      if (name != NULL && g_str_equal (name, key))
        {
          guint j = i + 1, last = i + 1;

          for (; j < lines->len; j++)
            {
              const char *line = g_ptr_array_index (lines, j);

              if (is_blank (line))
                continue;
              if (line[0] != ' ' && !(line[0] == '-' && (line[1] == ' ' || line[1] == '\n')))
                break;
              last = j + 1;
            }
          *end = last;
          return (int)i;
        }
    }
  return -1;
}

/* The item of the sequence in lines (from, to] whose name is @name. */
typedef struct
{
  int   start;      /* its "- " line, or -1 */
  guint end;        /* after its last line that is not blank */
  guint indent;     /* where the items' "- " sit */
  guint after;      /* after the sequence's last item */
  guint n_items;
} Item;

static char *
item_scalar (GPtrArray  *lines,
             guint       start,
             guint       end,
             guint       indent,
             const char *sub)
{
  for (guint i = start; i < end; i++)
    {
      const char *line = g_ptr_array_index (lines, i);
      const char *p = line + indent_of (line);
      g_autofree char *name = NULL;
      const char *value = NULL;

      if (i == start)
        {
          p = line + indent + 1;
          while (*p == ' ')
            p++;
        }
      else if (indent_of (line) != indent + 2)
        continue;
      name = top_key (p, &value);
      if (name != NULL && g_str_equal (name, sub))
        {
          g_autofree char *raw = g_strstrip (g_strdup (value));

          /* A comment after a plain scalar is not part of it. */
          if (raw[0] != '"' && raw[0] != '\'' && strstr (raw, " #") != NULL)
            *strstr (raw, " #") = '\0';
          return g_strstrip (g_steal_pointer (&raw));
        }
    }
  return NULL;
}

static gboolean
find_item (GPtrArray   *lines,
           guint        from,
           guint        to,
           const char  *match,
           Item        *item,
           GError     **error)
{
  const char *name = match + strlen ("name=");

  item->start = -1;
  item->indent = 0;
  item->after = from;
  item->n_items = 0;

  for (guint i = from; i < to; i++)
    {
      const char *line = g_ptr_array_index (lines, i);
      guint in = indent_of (line);
      guint j, last;

      if (is_blank (line))
        continue;
      if (line[in] != '-' || (line[in + 1] != ' ' && line[in + 1] != '\n' && line[in + 1] != '\r'))
        {
          g_set_error (error, KP_CONF_ERROR, KP_CONF_ERROR_PARSE,
                       "line %u is not an item of a list that Keypool can edit", i + 1);
          return FALSE;
        }
      if (item->n_items++ == 0)
        item->indent = in;
      else if (in != item->indent)
        {
          g_set_error (error, KP_CONF_ERROR, KP_CONF_ERROR_PARSE,
                       "line %u is indented unlike the list's other items", i + 1);
          return FALSE;
        }

      for (j = i + 1, last = i + 1; j < to; j++)
        {
          const char *next = g_ptr_array_index (lines, j);

          if (is_blank (next))
            continue;
          if (indent_of (next) <= in)
            break;
          last = j + 1;
        }
      if (item->start < 0)
        {
          g_autofree char *value = item_scalar (lines, i, last, in, "name");
          g_autofree char *plain = value ? kp_conf_unquote_basic (value) : NULL;

          if (plain != NULL && g_str_equal (plain, name))
            {
              item->start = (int)i;
              item->end = last;
            }
        }
      item->after = last;
      i = last - 1;
    }
  return TRUE;
}

static char *
yaml_get (const char          *text,
          const char * const  *path,
          GError             **error)
{
  g_autoptr(GPtrArray) lines = kp_conf_split_lines (text);
  const char *value = NULL;
  guint end;
  int at;
  Item item;

  if (!yaml_check_lines (lines, error))
    return NULL;
  at = find_top (lines, path[0], &end);
  if (at < 0)
    return NULL;

  if (path[1] == NULL)
    {
      GString *raw;

      g_free (top_key (g_ptr_array_index (lines, at), &value));
      raw = g_string_new (value);

      for (guint i = at + 1; i < end; i++)
        g_string_append (raw, g_ptr_array_index (lines, i));
      g_strstrip (raw->str);
      raw->len = strlen (raw->str);
      return g_string_free (raw, FALSE);
    }

  if (!find_item (lines, at + 1, end, path[1], &item, error) || item.start < 0)
    return NULL;
  if (path[2] != NULL)
    return item_scalar (lines, item.start, item.end, item.indent, path[2]);

  {
    GString *raw = g_string_new (NULL);

    for (guint i = item.start; i < item.end; i++)
      {
        const char *line = g_ptr_array_index (lines, i);

        g_string_append (raw, line + MIN (indent_of (line), item.indent));
      }
    return g_string_free (raw, FALSE);
  }
}

static void
ensure_ended (GPtrArray *lines,
              guint      before)
{
  if (before > 0 && before == lines->len)
    {
      const char *last = g_ptr_array_index (lines, before - 1);

      if (!g_str_has_suffix (last, "\n"))
        {
          char *ended = g_strconcat (last, "\n", NULL);

          g_free (g_ptr_array_index (lines, before - 1));
          g_ptr_array_index (lines, before - 1) = ended;
        }
    }
}

/* Inserts @raw's lines at @at, each indented by @indent. */
static void
insert_block (GPtrArray  *lines,
              guint       at,
              const char *raw,
              guint       indent)
{
  g_autoptr(GPtrArray) block = kp_conf_split_lines (raw);
  g_autofree char *pad = g_strnfill (indent, ' ');

  ensure_ended (lines, at);
  for (guint i = 0; i < block->len; i++)
    {
      const char *line = g_ptr_array_index (block, i);
      gboolean ended = g_str_has_suffix (line, "\n");

      g_ptr_array_insert (lines, at + i, g_strconcat (pad, line, ended ? "" : "\n", NULL));
    }
}

static char *
yaml_set (const char          *text,
          const char * const  *path,
          const char          *raw,
          GError             **error)
{
  g_autoptr(GPtrArray) lines = kp_conf_split_lines (text);
  guint end;
  int at;
  Item item;

  g_return_val_if_fail (path[1] == NULL || path[2] == NULL, NULL);

  if (!yaml_check_lines (lines, error))
    return NULL;
  at = find_top (lines, path[0], &end);

  if (path[1] == NULL)
    {
      if (at >= 0)
        g_ptr_array_remove_range (lines, at, end - at);
      if (raw != NULL)
        {
          g_autofree char *line = g_strdup_printf ("%s: %s\n", path[0], raw);

          insert_block (lines, at >= 0 ? (guint)at : lines->len, line, 0);
        }
      return kp_conf_join_lines (lines);
    }

  if (at < 0)
    {
      if (raw != NULL)
        {
          g_autofree char *head = g_strdup_printf ("%s:\n", path[0]);

          insert_block (lines, lines->len, head, 0);
          insert_block (lines, lines->len, raw, 2);
        }
      return kp_conf_join_lines (lines);
    }

  {
    const char *value = NULL;
    g_autofree char *rest = NULL;

    g_free (top_key (g_ptr_array_index (lines, at), &value));
    rest = g_strstrip (g_strdup (value));

    if (rest[0] != '\0' && rest[0] != '#')
      {
        /* `models: []`: an empty list Keypool can write as a block. */
        if (!g_str_equal (rest, "[]") || end != (guint)at + 1)
          {
            g_set_error (error, KP_CONF_ERROR, KP_CONF_ERROR_PARSE,
                         "%s: on line %d is not a list Keypool can edit", path[0], at + 1);
            return NULL;
          }
        if (raw != NULL)
          {
            g_autofree char *head = g_strdup_printf ("%s:\n", path[0]);

            g_free (g_ptr_array_index (lines, at));
            g_ptr_array_index (lines, at) = g_steal_pointer (&head);
            insert_block (lines, at + 1, raw, 2);
          }
        return kp_conf_join_lines (lines);
      }
  }

  if (!find_item (lines, at + 1, end, path[1], &item, error))
    return NULL;
  if (item.start >= 0)
    {
      g_ptr_array_remove_range (lines, item.start, item.end - item.start);
      if (raw != NULL)
        insert_block (lines, item.start, raw, item.indent);
    }
  else if (raw != NULL)
    insert_block (lines, item.n_items ? item.after : (guint)at + 1, raw,
                  item.n_items ? item.indent : 2);
  return kp_conf_join_lines (lines);
}

static char *
yaml_quote (const char *value)
{
  return kp_conf_quote_basic (value);
}

const KpConfFormat kp_conf_format_yaml = {
  .id = "yaml",
  .check = yaml_check,
  .get = yaml_get,
  .set = yaml_set,
  .quote = yaml_quote,
  .unquote = kp_conf_unquote_basic,
};
