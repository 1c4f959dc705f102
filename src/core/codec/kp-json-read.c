/* kp-json-read.c: JSON text to a json-glib tree in one pass
 *
 * json-glib 1.6 sets up a GScanner for every document it parses: about
 * 36,000 instructions for a request of a hundred bytes, a seventh of all a
 * non-streamed request costs Keypool (callgrind). What a request brings
 * and gets (a client's body, a provider's answer, each event of a stream
 * that is decoded) is read here instead: one pass over the bytes, building
 * the same JsonNode tree json-glib would.
 *
 * It reads JSON as RFC 8259 says, which is narrower than json-glib: no
 * 'single-quoted' strings, no comments, no raw control characters in a
 * string, no unknown escapes, no numbers such as 01, .5 or 1e999, no name
 * twice in one object, and the text must be UTF-8. It also refuses
 * \u0000, which a C string cannot keep (json-glib cuts the string there).
 * Half a UTF-16 surrogate pair, alone, becomes U+FFFD: JavaScript clients
 * send one when they cut a string between the halves, and what goes on
 * must be UTF-8. Nesting stops at KP_JSON_MAX_DEPTH levels: it recurses,
 * so it needs no kp_json_check() first. An error says where, by line and
 * column.
 *
 * Numbers: an integer that fits in 64 bits is an int64 node, as json-glib
 * makes it; any other number a double. A number no double can hold (1e999)
 * is refused rather than kept as infinity, which no JSON can say again.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include <math.h>
#include <string.h>

#include "kp-json-guard.h"

typedef struct
{
  const char *start;
  const char *p;
  const char *end;
  guint       depth;
  GString    *text;      /* the string being read */
  GError    **error;
  gboolean    failed;
} Reader;

static JsonNode *read_value (Reader *r);

/* Sets the error once, saying where @at is. */
G_GNUC_PRINTF (3, 4)
static void
fail_at (Reader     *r,
         const char *at,
         const char *format,
         ...)
{
  g_autofree char *what = NULL;
  const char *line = r->start;
  guint n_line = 1;
  va_list args;

  if (r->failed)
    return;
  r->failed = TRUE;
  if (r->error == NULL)
    return;

  for (const char *c = r->start; c < at; c++)
    if (*c == '\n')
      {
        n_line++;
        line = c + 1;
      }
  va_start (args, format);
  what = g_strdup_vprintf (format, args);
  va_end (args);
  /* The text before @at is valid UTF-8: it was checked first. */
  g_set_error (r->error, KP_JSON_ERROR, KP_JSON_ERROR_SYNTAX,
               "line %u, column %ld: %s", n_line, g_utf8_pointer_to_offset (line, at) + 1, what);
}

/* What was found where something else was wanted, for an error. */
static char *
describe (Reader *r)
{
  if (r->p >= r->end)
    return g_strdup ("the end of the text");
  if ((guchar)*r->p < 0x20)
    return g_strdup_printf ("the control character 0x%02x", (guchar)*r->p);
  return g_strdup_printf ("“%.*s”", (int)(g_utf8_next_char (r->p) - r->p), r->p);
}

static void
unexpected (Reader     *r,
            const char *wanted)
{
  g_autofree char *found = describe (r);

  fail_at (r, r->p, "%s where %s was expected", found, wanted);
}

static inline void
skip_space (Reader *r)
{
  while (r->p < r->end && (*r->p == ' ' || *r->p == '\n' || *r->p == '\r' || *r->p == '\t'))
    r->p++;
}

/* Four hex digits after "\u"; -1 if they are not there. */
static gint
read_hex4 (Reader *r)
{
  gint value = 0;

  if (r->end - r->p < 4)
    return -1;
  for (guint i = 0; i < 4; i++)
    {
      gint digit = g_ascii_xdigit_value (r->p[i]);

      if (digit < 0)
        return -1;
      value = value * 16 + digit;
    }
  r->p += 4;
  return value;
}

/* One escape, r->p just after the backslash. */
static gboolean
read_escape (Reader *r)
{
  const char *escape = r->p - 1;
  gint unit, low;
  gunichar c;

  if (r->p >= r->end)
    {
      fail_at (r, escape, "a string that never ends");
      return FALSE;
    }
  switch (*r->p++)
    {
    case '"': g_string_append_c (r->text, '"'); return TRUE;
    case '\\': g_string_append_c (r->text, '\\'); return TRUE;
    case '/': g_string_append_c (r->text, '/'); return TRUE;
    case 'b': g_string_append_c (r->text, '\b'); return TRUE;
    case 'f': g_string_append_c (r->text, '\f'); return TRUE;
    case 'n': g_string_append_c (r->text, '\n'); return TRUE;
    case 'r': g_string_append_c (r->text, '\r'); return TRUE;
    case 't': g_string_append_c (r->text, '\t'); return TRUE;
    case 'u':
      break;
    default:
      {
        g_autofree char *found = NULL;

        r->p--;
        found = describe (r);
        fail_at (r, escape, "a backslash before %s: JSON has no such escape", found);
        return FALSE;
      }
    }

  unit = read_hex4 (r);
  if (unit < 0)
    {
      fail_at (r, escape, "a \\u escape needs four hex digits");
      return FALSE;
    }
  if (unit >= 0xd800 && unit <= 0xdbff && r->end - r->p >= 6 && r->p[0] == '\\' &&
      r->p[1] == 'u')
    {
      const char *second = r->p;

      r->p += 2;
      low = read_hex4 (r);
      if (low >= 0xdc00 && low <= 0xdfff)
        c = 0x10000 + (((gunichar)unit - 0xd800) << 10) + ((gunichar)low - 0xdc00);
      else
        {
          /* Not the second half: read on its own, next. */
          r->p = second;
          c = 0xfffd;
        }
    }
  else if (unit >= 0xd800 && unit <= 0xdfff)
    c = 0xfffd;  /* half a pair, alone */
  else
    c = (gunichar)unit;

  if (c == 0)
    {
      fail_at (r, escape, "\\u0000 cannot be kept in a string");
      return FALSE;
    }
  g_string_append_unichar (r->text, c);
  return TRUE;
}

/* A string into r->text, r->p at its opening quote. */
static gboolean
read_string (Reader *r)
{
  const char *opening = r->p++;

  g_string_truncate (r->text, 0);
  for (;;)
    {
      const char *run = r->p;

      while (r->p < r->end && *r->p != '"' && *r->p != '\\' && (guchar)*r->p >= 0x20)
        r->p++;
      g_string_append_len (r->text, run, r->p - run);
      if (r->p >= r->end)
        {
          fail_at (r, opening, "a string that never ends");
          return FALSE;
        }
      if (*r->p == '"')
        {
          r->p++;
          return TRUE;
        }
      if (*r->p != '\\')
        {
          fail_at (r, r->p, "the control character 0x%02x must be escaped in a string",
                   (guchar)*r->p);
          return FALSE;
        }
      r->p++;
      if (!read_escape (r))
        return FALSE;
    }
}

static inline gboolean
is_digit (Reader *r)
{
  return r->p < r->end && *r->p >= '0' && *r->p <= '9';
}

static JsonNode *
read_number (Reader *r)
{
  const char *number = r->p;
  gboolean negative = FALSE, whole = TRUE, overflow = FALSE;
  guint64 magnitude = 0;
  char buffer[G_ASCII_DTOSTR_BUF_SIZE * 2];
  g_autofree char *long_copy = NULL;
  const char *copy;
  double value;
  gsize len;

  if (*r->p == '-')
    {
      negative = TRUE;
      r->p++;
    }
  if (!is_digit (r))
    {
      unexpected (r, "a digit");
      return NULL;
    }
  if (*r->p == '0')
    r->p++;
  else
    while (is_digit (r))
      {
        guint digit = *r->p++ - '0';

        if (magnitude > (G_MAXUINT64 - digit) / 10)
          overflow = TRUE;
        else
          magnitude = magnitude * 10 + digit;
      }
  if (r->p < r->end && *r->p == '.')
    {
      whole = FALSE;
      r->p++;
      if (!is_digit (r))
        {
          unexpected (r, "a digit after the decimal point");
          return NULL;
        }
      while (is_digit (r))
        r->p++;
    }
  if (r->p < r->end && (*r->p == 'e' || *r->p == 'E'))
    {
      whole = FALSE;
      r->p++;
      if (r->p < r->end && (*r->p == '+' || *r->p == '-'))
        r->p++;
      if (!is_digit (r))
        {
          unexpected (r, "a digit in the exponent");
          return NULL;
        }
      while (is_digit (r))
        r->p++;
    }

  if (whole && !overflow)
    {
      if (!negative && magnitude <= G_MAXINT64)
        return json_node_init_int (json_node_alloc (), (gint64)magnitude);
      if (negative && magnitude <= (guint64)G_MAXINT64 + 1)
        return json_node_init_int (json_node_alloc (),
                                   magnitude == (guint64)G_MAXINT64 + 1 ? G_MININT64
                                                                        : -(gint64)magnitude);
    }

  /* g_ascii_strtod() wants the number alone, ended by a NUL. */
  len = r->p - number;
  if (len < sizeof buffer)
    {
      memcpy (buffer, number, len);
      buffer[len] = '\0';
      copy = buffer;
    }
  else
    copy = long_copy = g_strndup (number, len);
  value = g_ascii_strtod (copy, NULL);
  if (!isfinite (value))
    {
      fail_at (r, number, "the number %.*s is too large", (int)MIN (len, 40), number);
      return NULL;
    }
  return json_node_init_double (json_node_alloc (), value);
}

static JsonNode *
read_word (Reader     *r,
           const char *word)
{
  gsize len = strlen (word);

  if ((gsize)(r->end - r->p) < len || memcmp (r->p, word, len) != 0)
    {
      unexpected (r, "a value");
      return NULL;
    }
  r->p += len;
  if (word[0] == 'n')
    return json_node_init_null (json_node_alloc ());
  return json_node_init_boolean (json_node_alloc (), word[0] == 't');
}

static JsonNode *
read_object (Reader *r)
{
  g_autoptr(JsonObject) object = json_object_new ();
  const char *opening = r->p++;

  skip_space (r);
  if (r->p < r->end && *r->p == '}')
    {
      r->p++;
      return json_node_init_object (json_node_alloc (), object);
    }

  for (;;)
    {
      char short_name[64];
      g_autofree char *long_name = NULL;
      const char *name, *name_at;
      JsonNode *value;

      if (r->p >= r->end)
        {
          fail_at (r, opening, "an object that never ends");
          return NULL;
        }
      if (*r->p != '"')
        {
          unexpected (r, "a member name in double quotes");
          return NULL;
        }
      name_at = r->p;
      if (!read_string (r))
        return NULL;
      /* The value's own strings go through r->text too. */
      if (r->text->len < sizeof short_name)
        {
          memcpy (short_name, r->text->str, r->text->len + 1);
          name = short_name;
        }
      else
        name = long_name = g_strndup (r->text->str, r->text->len);

      skip_space (r);
      if (r->p >= r->end || *r->p != ':')
        {
          unexpected (r, "“:”");
          return NULL;
        }
      r->p++;
      skip_space (r);
      if (r->p >= r->end)
        {
          fail_at (r, opening, "an object that never ends");
          return NULL;
        }
      /* A name given twice is refused: RFC 8259 leaves its meaning open,
       * and json-glib replaces the value by a walk over every member, which
       * many repeats of one name would make quadratic.
       */
      if (json_object_has_member (object, name))
        {
          g_autofree char *shown = NULL;
          gsize shown_len = strlen (name);

          /* At most 60 bytes of the name, cut between characters. */
          if (shown_len > 60)
            shown_len = g_utf8_find_prev_char (name, name + 61) - name;
          shown = g_strndup (name, shown_len);
          fail_at (r, name_at, "the member “%s%s” appears twice in one object", shown,
                   shown_len < strlen (name) ? "…" : "");
          return NULL;
        }
      value = read_value (r);
      if (value == NULL)
        return NULL;
      json_object_set_member (object, name, value);

      skip_space (r);
      if (r->p < r->end && *r->p == ',')
        {
          r->p++;
          skip_space (r);
          continue;
        }
      if (r->p < r->end && *r->p == '}')
        {
          r->p++;
          return json_node_init_object (json_node_alloc (), object);
        }
      if (r->p >= r->end)
        fail_at (r, opening, "an object that never ends");
      else
        unexpected (r, "“,” or “}”");
      return NULL;
    }
}

static JsonNode *
read_array (Reader *r)
{
  g_autoptr(JsonArray) array = json_array_new ();
  const char *opening = r->p++;

  skip_space (r);
  if (r->p < r->end && *r->p == ']')
    {
      r->p++;
      return json_node_init_array (json_node_alloc (), array);
    }

  for (;;)
    {
      JsonNode *value;

      if (r->p >= r->end)
        {
          fail_at (r, opening, "an array that never ends");
          return NULL;
        }
      value = read_value (r);
      if (value == NULL)
        return NULL;
      json_array_add_element (array, value);

      skip_space (r);
      if (r->p < r->end && *r->p == ',')
        {
          r->p++;
          skip_space (r);
          continue;
        }
      if (r->p < r->end && *r->p == ']')
        {
          r->p++;
          return json_node_init_array (json_node_alloc (), array);
        }
      if (r->p >= r->end)
        fail_at (r, opening, "an array that never ends");
      else
        unexpected (r, "“,” or “]”");
      return NULL;
    }
}

/* A value, r->p at its first character. */
static JsonNode *
read_value (Reader *r)
{
  JsonNode *node;

  if (r->p >= r->end)
    {
      unexpected (r, "a value");
      return NULL;
    }

  switch (*r->p)
    {
    case '{':
    case '[':
      if (r->depth >= KP_JSON_MAX_DEPTH)
        {
          if (!r->failed && r->error != NULL)
            g_set_error (r->error, KP_JSON_ERROR, KP_JSON_ERROR_TOO_DEEP,
                         "the JSON nests deeper than %u levels (at byte %" G_GSIZE_FORMAT ")",
                         KP_JSON_MAX_DEPTH, (gsize)(r->p - r->start));
          r->failed = TRUE;
          return NULL;
        }
      r->depth++;
      node = *r->p == '{' ? read_object (r) : read_array (r);
      r->depth--;
      return node;
    case '"':
      if (!read_string (r))
        return NULL;
      return json_node_init_string (json_node_alloc (), r->text->str);
    case 't':
      return read_word (r, "true");
    case 'f':
      return read_word (r, "false");
    case 'n':
      return read_word (r, "null");
    case '-':
    case '0': case '1': case '2': case '3': case '4':
    case '5': case '6': case '7': case '8': case '9':
      return read_number (r);
    default:
      unexpected (r, "a value");
      return NULL;
    }
}

/**
 * kp_json_read:
 * @data: JSON text from outside
 * @len: its length, or -1 when @data ends with a NUL
 * @flags: %KP_JSON_READ_SEAL to seal the tree, as json-glib's immutable
 *   parser does
 * @error: a location for a #GError
 *
 * Reads one JSON value (RFC 8259, nested at most %KP_JSON_MAX_DEPTH
 * levels) into the tree json-glib would make of it. See the top of this
 * file for what it refuses that json-glib takes.
 *
 * Returns: (transfer full) (nullable): the root, or %NULL with @error set
 *   (%KP_JSON_ERROR_SYNTAX, %KP_JSON_ERROR_TOO_DEEP or
 *   %KP_JSON_ERROR_NOT_UTF8)
 */
JsonNode *
kp_json_read (const char       *data,
              gssize            len,
              KpJsonReadFlags   flags,
              GError          **error)
{
  g_autoptr(GString) text = NULL;
  const char *bad = NULL;
  JsonNode *root;
  Reader r = { 0 };

  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (data == NULL)
    {
      data = "";
      len = 0;
    }
  if (len < 0)
    len = strlen (data);
  if (!g_utf8_validate_len (data, len, &bad))
    {
      if (*bad == '\0')
        g_set_error (error, KP_JSON_ERROR, KP_JSON_ERROR_SYNTAX,
                     "a NUL byte in the text (at byte %" G_GSIZE_FORMAT ")", (gsize)(bad - data));
      else
        g_set_error (error, KP_JSON_ERROR, KP_JSON_ERROR_NOT_UTF8,
                     "the text is not UTF-8 (at byte %" G_GSIZE_FORMAT ")", (gsize)(bad - data));
      return NULL;
    }

  text = g_string_sized_new (64);
  r.start = r.p = data;
  r.end = data + len;
  r.text = text;
  r.error = error;

  skip_space (&r);
  if (r.p >= r.end)
    {
      g_set_error_literal (error, KP_JSON_ERROR, KP_JSON_ERROR_SYNTAX, "the JSON is empty");
      return NULL;
    }
  root = read_value (&r);
  if (root == NULL)
    return NULL;
  skip_space (&r);
  if (r.p < r.end)
    {
      unexpected (&r, "nothing more");
      json_node_unref (root);
      return NULL;
    }
  if (flags & KP_JSON_READ_SEAL)
    json_node_seal (root);
  return root;
}

/**
 * kp_json_read_into:
 * @last: (inout): where a stream decoder keeps the event it read last
 * @data: one event's JSON, from a provider
 * @len: its length, or -1 when @data ends with a NUL
 *
 * kp_json_read(), sealed, for a decoder that reads one event after another:
 * the tree read before is dropped, and the new one stays in @last until the
 * next read or until the decoder clears it.
 *
 * Returns: (transfer none) (nullable): the new root, or %NULL when @data is
 *   not JSON (the caller ignores it, as it does any event it cannot read)
 */
JsonNode *
kp_json_read_into (JsonNode   **last,
                   const char  *data,
                   gssize       len)
{
  g_return_val_if_fail (last != NULL, NULL);

  g_clear_pointer (last, json_node_unref);
  if (len == 0)
    return NULL;
  *last = kp_json_read (data, len, KP_JSON_READ_SEAL, NULL);
  return *last;
}
