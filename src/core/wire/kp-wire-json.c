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
 * Writes @text as a JSON string, quotes included. The text comes from a
 * parsed document, so it is valid UTF-8 and only needs escaping.
 */
void
kp_json_append_string (GString    *out,
                       const char *text)
{
  const char *run = text;
  const char *p;

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

/* Compact JSON text of @node. */
char *
kp_json_to_string (JsonNode *node,
                   gsize    *length)
{
  g_autoptr(JsonGenerator) generator = json_generator_new ();

  json_generator_set_root (generator, node);
  return json_generator_to_data (generator, length);
}
