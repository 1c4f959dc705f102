/* kp-wire-json.c: reading JSON of any shape, writing JSON text fast
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include <string.h>

#include "codec/kp-json-guard.h"
#include "kp-wire-json.h"

JsonNode *
kp_json_member (JsonObject *object,
                const char *member)
{
  return object != NULL ? json_object_get_member (object, member) : NULL;
}

JsonObject *
kp_json_object (JsonObject *object,
                const char *member)
{
  JsonNode *node = kp_json_member (object, member);

  return node != NULL && JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
}

JsonArray *
kp_json_array (JsonObject *object,
               const char *member)
{
  JsonNode *node = kp_json_member (object, member);

  return node != NULL && JSON_NODE_HOLDS_ARRAY (node) ? json_node_get_array (node) : NULL;
}

/* The object at @index of @array, or NULL when it is something else. */
JsonObject *
kp_json_array_object (JsonArray *array,
                      guint      index)
{
  JsonNode *node;

  if (array == NULL || index >= json_array_get_length (array))
    return NULL;
  node = json_array_get_element (array, index);
  return JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
}

const char *
kp_json_node_string (JsonNode *node)
{
  return node != NULL && JSON_NODE_HOLDS_VALUE (node) &&
         json_node_get_value_type (node) == G_TYPE_STRING ? json_node_get_string (node) : NULL;
}

const char *
kp_json_string (JsonObject *object,
                const char *member)
{
  return kp_json_node_string (kp_json_member (object, member));
}

/* The string @member, or @fallback when it is missing or something else. */
const char *
kp_json_string_or (JsonObject *object,
                   const char *member,
                   const char *fallback)
{
  const char *value = kp_json_string (object, member);

  return value != NULL ? value : fallback;
}

gboolean
kp_json_is_number (JsonNode *node)
{
  return node != NULL && JSON_NODE_HOLDS_VALUE (node) &&
         (json_node_get_value_type (node) == G_TYPE_INT64 ||
          json_node_get_value_type (node) == G_TYPE_DOUBLE);
}

/* A number as an integer; a fraction or a huge double is clamped. */
gboolean
kp_json_int (JsonObject *object,
             const char *member,
             gint64     *value)
{
  JsonNode *node = kp_json_member (object, member);
  double d;

  if (!kp_json_is_number (node))
    return FALSE;
  if (json_node_get_value_type (node) == G_TYPE_INT64)
    {
      *value = json_node_get_int (node);
      return TRUE;
    }
  d = json_node_get_double (node);
  if (d != d)
    d = 0;
  *value = d >= (double)G_MAXINT64 ? G_MAXINT64 : d <= (double)G_MININT64 ? G_MININT64 : (gint64)d;
  return TRUE;
}

/* The number @member as an integer, or @fallback when it is not a number. */
gint64
kp_json_int_or (JsonObject *object,
                const char *member,
                gint64      fallback)
{
  gint64 value;

  return kp_json_int (object, member, &value) ? value : fallback;
}

gboolean
kp_json_bool (JsonObject *object,
              const char *member,
              gboolean   *value)
{
  JsonNode *node = kp_json_member (object, member);

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node) ||
      json_node_get_value_type (node) != G_TYPE_BOOLEAN)
    return FALSE;
  *value = json_node_get_boolean (node);
  return TRUE;
}

gboolean
kp_json_bool_or (JsonObject *object,
                 const char *member,
                 gboolean    fallback)
{
  gboolean value;

  return kp_json_bool (object, member, &value) ? value : fallback;
}

/* A number (a whole one too) as a double. */
gboolean
kp_json_double (JsonObject *object,
                const char *member,
                double     *value)
{
  JsonNode *node = kp_json_member (object, member);

  if (!kp_json_is_number (node))
    return FALSE;
  *value = json_node_get_double (node);
  return TRUE;
}

gboolean
kp_json_nonempty (const char *text)
{
  return text != NULL && text[0] != '\0';
}

/* Copies @member from @from to @to when it is a number, renamed to @as. */
void
kp_json_copy_number (JsonObject *from,
                     const char *member,
                     JsonObject *to,
                     const char *as)
{
  JsonNode *node = kp_json_member (from, member);

  if (kp_json_is_number (node))
    json_object_set_member (to, as, json_node_copy (node));
}

/**
 * kp_json_parse_object:
 *
 * Returns: (transfer full) (nullable): the object @text holds, or %NULL
 */
JsonObject *
kp_json_parse_object (const char *text,
                      gssize      len)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  JsonNode *root;

  if (text == NULL || !kp_json_parser_load_from_data (parser, text, len, NULL))
    return NULL;
  root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    return NULL;
  return json_object_ref (json_node_get_object (root));
}

/* Asks a streamed OpenAI request for the usage at its end. */
void
kp_json_ask_usage (JsonObject *request)
{
  JsonObject *options = json_object_new ();

  json_object_set_boolean_member (options, "include_usage", TRUE);
  json_object_set_object_member (request, "stream_options", options);
}

/* Takes @object into a new node. */
JsonNode *
kp_json_object_node (JsonObject *object)
{
  JsonNode *node = json_node_new (JSON_NODE_OBJECT);

  json_node_take_object (node, object);
  return node;
}

/**
 * kp_json_append_string:
 *
 * Writes @text as a JSON string, quotes included; bytes that are not
 * UTF-8 become U+FFFD.
 */
void
kp_json_append_string (GString    *out,
                       const char *text)
{
  g_autofree char *valid = NULL;
  const char *run;
  const char *p;

  /* json-glib decodes a lone surrogate (\\ud800) into bytes that are not
   * UTF-8, and providers may send any bytes: what Keypool writes is UTF-8.
   */
  if (!g_utf8_validate (text, -1, NULL))
    text = valid = g_utf8_make_valid (text, -1);
  run = text;

  g_string_append_c (out, '"');
  for (p = text; *p; p++)
    {
      guchar c = (guchar)*p;

      if (c >= 0x20 && c != '"' && c != '\\')
        continue;
      g_string_append_len (out, run, p - run);
      switch (c)
        {
        case '"':
          g_string_append (out, "\\\"");
          break;
        case '\\':
          g_string_append (out, "\\\\");
          break;
        case '\n':
          g_string_append (out, "\\n");
          break;
        case '\r':
          g_string_append (out, "\\r");
          break;
        case '\t':
          g_string_append (out, "\\t");
          break;
        default:
          g_string_append_printf (out, "\\u%04x", c);
          break;
        }
      run = p + 1;
    }
  g_string_append_len (out, run, p - run);
  g_string_append_c (out, '"');
}

static void append_node (GString *out, JsonNode *node);

/* A double as JSON: the shortest text that reads back the same, always with
 * a fraction or an exponent; json-glib 1.6 writes 1e308 as "1e+308.0".
 */
static void
append_double (GString *out,
               double   value)
{
  char buffer[G_ASCII_DTOSTR_BUF_SIZE];

  if (value != value || value > G_MAXDOUBLE || value < -G_MAXDOUBLE)
    {
      /* Not a JSON number; a parsed document never holds one. */
      g_string_append (out, "null");
      return;
    }
  g_ascii_dtostr (buffer, sizeof buffer, value);
  g_string_append (out, buffer);
  if (strpbrk (buffer, ".eE") == NULL)
    g_string_append (out, ".0");
}

static void
append_value (GString  *out,
              JsonNode *node)
{
  switch (json_node_get_value_type (node))
    {
    case G_TYPE_INT64:
      g_string_append_printf (out, "%" G_GINT64_FORMAT, json_node_get_int (node));
      break;
    case G_TYPE_DOUBLE:
      append_double (out, json_node_get_double (node));
      break;
    case G_TYPE_BOOLEAN:
      g_string_append (out, json_node_get_boolean (node) ? "true" : "false");
      break;
    case G_TYPE_STRING:
      kp_json_append_string (out, json_node_get_string (node));
      break;
    default:
      g_string_append (out, "null");
      break;
    }
}

static void
append_node (GString  *out,
             JsonNode *node)
{
  switch (JSON_NODE_TYPE (node))
    {
    case JSON_NODE_OBJECT:
      {
        JsonObjectIter iter;
        const char *name;
        JsonNode *member;
        gboolean first = TRUE;

        g_string_append_c (out, '{');
        json_object_iter_init_ordered (&iter, json_node_get_object (node));
        while (json_object_iter_next_ordered (&iter, &name, &member))
          {
            if (!first)
              g_string_append_c (out, ',');
            first = FALSE;
            kp_json_append_string (out, name);
            g_string_append_c (out, ':');
            append_node (out, member);
          }
        g_string_append_c (out, '}');
      }
      break;
    case JSON_NODE_ARRAY:
      {
        JsonArray *array = json_node_get_array (node);

        g_string_append_c (out, '[');
        for (guint i = 0; i < json_array_get_length (array); i++)
          {
            if (i > 0)
              g_string_append_c (out, ',');
            append_node (out, json_array_get_element (array, i));
          }
        g_string_append_c (out, ']');
      }
      break;
    case JSON_NODE_VALUE:
      append_value (out, node);
      break;
    case JSON_NODE_NULL:
    default:
      g_string_append (out, "null");
      break;
    }
}

/**
 * kp_json_to_string:
 * @node: a tree from a parsed (depth-checked) document, or one Keypool built
 * @length: (out) (optional): the text's length
 *
 * Compact JSON text that any JSON reader takes, numbers included.
 *
 * Returns: (transfer full): the text
 */
char *
kp_json_to_string (JsonNode *node,
                   gsize    *length)
{
  GString *out = g_string_sized_new (256);

  append_node (out, node);
  if (length != NULL)
    *length = out->len;
  return g_string_free (out, FALSE);
}
