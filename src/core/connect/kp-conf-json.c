/* kp-conf-json.c: JSON config files (Claude Code, opencode)
 *
 * The file is parsed (after a depth check), the members Keypool owns are
 * set or removed, and it is written back with two-space indentation. Every
 * other member stays, in its order; only the white space may change. A
 * file with comments (JSONC) is refused: writing it back would lose them.
 * A key is the path of member names from the root object.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include "kp-conf-format.h"

#include <string.h>

#include <json-glib/json-glib.h>

#include "codec/kp-json-guard.h"

static gboolean
has_comments (const char *text)
{
  gboolean in_string = FALSE;

  for (const char *p = text; *p != '\0'; p++)
    {
      if (in_string)
        {
          if (*p == '\\' && p[1] != '\0')
            p++;
          else if (*p == '"')
            in_string = FALSE;
        }
      else if (*p == '"')
        in_string = TRUE;
      else if (*p == '/' && (p[1] == '/' || p[1] == '*'))
        return TRUE;
    }
  return FALSE;
}

static JsonNode *
parse_root (const char  *text,
            GError     **error)
{
  g_autoptr(GError) local_error = NULL;
  g_autoptr(JsonNode) root = NULL;
  const char *p = text;

  while (g_ascii_isspace (*p))
    p++;
  /* An empty file is an empty object. */
  if (*p == '\0')
    return json_node_init_object (json_node_alloc (), json_object_new ());

  if (has_comments (text))
    {
      g_set_error_literal (error, KP_CONF_ERROR, KP_CONF_ERROR_PARSE,
                           "it has comments, which Keypool would lose in writing it");
      return NULL;
    }
  if (!kp_json_check (text, -1, KP_CONF_MAX_DEPTH, &local_error) ||
      (root = kp_json_parse (text, -1, &local_error)) == NULL)
    {
      g_set_error (error, KP_CONF_ERROR, KP_CONF_ERROR_PARSE, "it is not valid JSON (%s)",
                   local_error->message);
      return NULL;
    }
  if (!JSON_NODE_HOLDS_OBJECT (root))
    {
      g_set_error_literal (error, KP_CONF_ERROR, KP_CONF_ERROR_PARSE,
                           "it is not a JSON object");
      return NULL;
    }
  return g_steal_pointer (&root);
}

static gboolean
json_check (const char  *text,
            GError     **error)
{
  g_autoptr(JsonNode) root = parse_root (text, error);

  return root != NULL;
}

/* The object that holds @path's last member; NULL (with @error when it is
 * no object) if there is none and @create is FALSE.
 */
static JsonObject *
parent_of (JsonNode            *root,
           const char * const  *path,
           gboolean             create,
           GError             **error)
{
  JsonObject *object = json_node_get_object (root);

  for (guint i = 0; path[i + 1] != NULL; i++)
    {
      JsonNode *member = json_object_get_member (object, path[i]);

      if (member == NULL)
        {
          if (!create)
            return NULL;
          json_object_set_object_member (object, path[i], json_object_new ());
          member = json_object_get_member (object, path[i]);
        }
      if (!JSON_NODE_HOLDS_OBJECT (member))
        {
          g_set_error (error, KP_CONF_ERROR, KP_CONF_ERROR_PARSE,
                       "its “%s” is not a JSON object", path[i]);
          return NULL;
        }
      object = json_node_get_object (member);
    }
  return object;
}

static char *
json_get (const char          *text,
          const char * const  *path,
          GError             **error)
{
  g_autoptr(JsonNode) root = parse_root (text, error);
  JsonObject *parent;
  JsonNode *node;

  if (root == NULL)
    return NULL;
  parent = parent_of (root, path, FALSE, error);
  if (parent == NULL)
    return NULL;
  node = json_object_get_member (parent, path[g_strv_length ((char **)path) - 1]);
  return node ? json_to_string (node, FALSE) : NULL;
}

/* Objects left empty by a removal go too, from the deepest up. */
static void
prune (JsonNode            *root,
       const char * const  *path)
{
  guint depth = g_strv_length ((char **)path);

  for (guint n = depth - 1; n > 0; n--)
    {
      g_autofree char **prefix = g_new0 (char *, n + 1);
      JsonObject *parent;
      JsonNode *node;

      memcpy (prefix, path, n * sizeof (char *));
      parent = parent_of (root, (const char * const *)prefix, FALSE, NULL);
      if (parent == NULL)
        return;
      node = json_object_get_member (parent, prefix[n - 1]);
      if (node == NULL || !JSON_NODE_HOLDS_OBJECT (node) ||
          json_object_get_size (json_node_get_object (node)) > 0)
        return;
      json_object_remove_member (parent, prefix[n - 1]);
    }
}

static char *
json_set (const char          *text,
          const char * const  *path,
          const char          *raw,
          GError             **error)
{
  g_autoptr(JsonNode) root = parse_root (text, error);
  g_autoptr(JsonGenerator) generator = NULL;
  g_autofree char *out = NULL;
  const char *name = path[g_strv_length ((char **)path) - 1];
  JsonObject *parent;

  if (root == NULL)
    return NULL;

  if (raw != NULL)
    {
      g_autoptr(GError) local_error = NULL;
      JsonNode *value = kp_json_parse (raw, -1, &local_error);

      if (value == NULL)
        {
          g_set_error (error, KP_CONF_ERROR, KP_CONF_ERROR_PARSE, "%s", local_error->message);
          return NULL;
        }
      parent = parent_of (root, path, TRUE, error);
      if (parent == NULL)
        {
          json_node_unref (value);
          return NULL;
        }
      json_object_set_member (parent, name, value);
    }
  else
    {
      g_autoptr(GError) local_error = NULL;

      parent = parent_of (root, path, FALSE, &local_error);
      if (local_error != NULL)
        {
          g_propagate_error (error, g_steal_pointer (&local_error));
          return NULL;
        }
      if (parent != NULL && json_object_has_member (parent, name))
        {
          json_object_remove_member (parent, name);
          prune (root, path);
        }
    }

  generator = json_generator_new ();
  json_generator_set_pretty (generator, TRUE);
  json_generator_set_indent (generator, 2);
  json_generator_set_root (generator, root);
  out = json_generator_to_data (generator, NULL);
  return g_strconcat (out, "\n", NULL);
}

static char *
json_unquote (const char *raw)
{
  g_autoptr(JsonNode) node = kp_json_parse (raw, -1, NULL);

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node) ||
      json_node_get_value_type (node) != G_TYPE_STRING)
    return NULL;
  return g_strdup (json_node_get_string (node));
}

static char *
json_quote (const char *value)
{
  g_autoptr(JsonNode) node = json_node_init_string (json_node_alloc (), value);

  return json_to_string (node, FALSE);
}

const KpConfFormat kp_conf_format_json = {
  .id = "json",
  .check = json_check,
  .get = json_get,
  .set = json_set,
  .quote = json_quote,
  .unquote = json_unquote,
};
