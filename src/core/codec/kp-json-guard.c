/* kp-json-guard.c: a nesting depth check before json-glib parses
 *
 * json-glib 1.6 parses recursively and has no depth limit: 100,000 nested
 * “[” overflow the stack and end the process, with every stream in flight.
 * Everything Keypool parses from outside (a client's body, an upstream's
 * answer, a provider file) passes this check first. It is one pass over the
 * bytes, with no recursion: it counts the brackets that open and close
 * outside strings, and steps over escapes inside them. It checks nothing
 * else: json-glib still says what is wrong with malformed JSON.
 *
 * A bracket counts when json-glib's scanner would read it as one, so the
 * check reads strings and comments as that scanner does, not as RFC 8259
 * says: json-glib 1.6 also takes 'single-quoted' strings and comments from
 * one '/' to the next, and a \u escape that ends early or a half surrogate
 * pair takes the characters after it, a closing quote included. Reading
 * them otherwise would hide brackets from the count.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include <string.h>

#include "kp-json-guard.h"

G_DEFINE_QUARK (kp-json-error-quark, kp_json_error)

/* json-glib's \u: up to four hex digits; the first other character ends
 * the escape and is taken with it. @i is at the 'u' and ends at the last
 * character taken.
 */
static gunichar
skip_unicode_escape (const char *data,
                     gsize       n,
                     gsize      *i)
{
  gunichar value = 0;

  for (guint k = 0; k < 4 && *i + 1 < n; k++)
    {
      char c = data[++*i];

      if (!g_ascii_isxdigit (c))
        break;
      value += (gunichar)g_ascii_xdigit_value (c) << ((3 - k) * 4);
    }
  return value;
}

/* Steps over the rest of a \u escape in a double-quoted string, @i at the
 * 'u'. Returns FALSE when json-glib would end the string there (a broken
 * surrogate pair: it takes one more character and fails).
 */
static gboolean
skip_escape_u (const char *data,
               gsize       n,
               gsize      *i)
{
  gunichar first;
  gunichar second;

  if (*i + 1 >= n || !g_ascii_isxdigit (data[*i + 1]))
    return TRUE;
  first = skip_unicode_escape (data, n, i);
  if (first < 0xd800 || first > 0xdfff)
    return TRUE;

  /* A surrogate: json-glib takes the next character, and the one after a
   * backslash, whatever they are, looking for the second half.
   */
  if (*i + 1 >= n || data[++*i] != '\\')
    return TRUE;
  if (*i + 1 >= n || data[++*i] != 'u')
    return TRUE;
  second = skip_unicode_escape (data, n, i);
  if (first <= 0xdbff && second >= 0xdc00 && second <= 0xdfff)
    return TRUE;
  if (*i + 1 < n)
    (*i)++;
  return FALSE;
}

/**
 * kp_json_check:
 * @data: JSON text
 * @len: its length, or -1 when @data ends with a NUL
 * @max_depth: how many arrays and objects may nest
 * @error: a location for a #GError
 *
 * Returns: %TRUE if @data nests no deeper than @max_depth; otherwise %FALSE
 *   with @error set to %KP_JSON_ERROR_TOO_DEEP
 */
gboolean
kp_json_check (const char  *data,
               gssize       len,
               guint        max_depth,
               GError     **error)
{
  char in = 0;   /* the quote of the string, or the '/' of the comment, we are in */
  gsize depth = 0;
  gsize n;

  g_return_val_if_fail (data != NULL || len == 0, FALSE);

  n = len < 0 ? strlen (data) : (gsize)len;
  for (gsize i = 0; i < n; i++)
    {
      char c = data[i];

      if (in == '"')
        {
          if (c == '"')
            in = 0;
          else if (c == '\\' && i + 1 < n)
            {
              /* Whatever follows is escaped: \" does not end the string. */
              if (data[++i] == 'u' && !skip_escape_u (data, n, &i))
                in = 0;
            }
          continue;
        }
      if (in != 0)
        {
          /* 'strings' have no escapes; a comment ends at the next '/'. */
          if (c == in)
            in = 0;
          continue;
        }

      switch (c)
        {
        case '"':
        case '\'':
        case '/':
          in = c;
          break;
        case '[':
        case '{':
          if (++depth > max_depth)
            {
              g_set_error (error, KP_JSON_ERROR, KP_JSON_ERROR_TOO_DEEP,
                           "the JSON nests deeper than %u levels (at byte %" G_GSIZE_FORMAT ")",
                           max_depth, i);
              return FALSE;
            }
          break;
        case ']':
        case '}':
          /* Unbalanced closers are json-glib's to report. */
          if (depth > 0)
            depth--;
          break;
        default:
          break;
        }
    }

  return TRUE;
}

/**
 * kp_json_parser_load_from_data:
 * @parser: a #JsonParser
 * @data: JSON text from outside
 * @len: its length, or -1 when @data ends with a NUL
 * @error: a location for a #GError
 *
 * json_parser_load_from_data(), after kp_json_check() with
 * %KP_JSON_MAX_DEPTH: use it for every JSON that comes from outside.
 *
 * Returns: %TRUE if @parser holds the parsed JSON
 */
gboolean
kp_json_parser_load_from_data (JsonParser  *parser,
                               const char  *data,
                               gssize       len,
                               GError     **error)
{
  g_return_val_if_fail (JSON_IS_PARSER (parser), FALSE);

  if (data == NULL)
    {
      data = "";
      len = 0;
    }
  if (!kp_json_check (data, len, KP_JSON_MAX_DEPTH, error))
    return FALSE;
  return json_parser_load_from_data (parser, data, len, error);
}

/**
 * kp_json_parse:
 * @data: JSON text from outside
 * @len: its length, or -1 when @data ends with a NUL
 * @error: a location for a #GError
 *
 * Returns: (transfer full) (nullable): the root of the parsed JSON, or %NULL
 *   with @error set (too deep, not JSON, or empty)
 */
JsonNode *
kp_json_parse (const char  *data,
               gssize       len,
               GError     **error)
{
  g_autoptr(JsonParser) parser = json_parser_new_immutable ();
  JsonNode *root;

  if (!kp_json_parser_load_from_data (parser, data, len, error))
    return NULL;
  root = json_parser_get_root (parser);
  if (root == NULL)
    {
      g_set_error_literal (error, JSON_PARSER_ERROR, JSON_PARSER_ERROR_PARSE,
                           "the JSON is empty");
      return NULL;
    }
  return json_node_ref (root);
}
