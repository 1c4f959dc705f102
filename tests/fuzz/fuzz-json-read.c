/* fuzz-json-read.c: the request path's JSON reader against json-glib
 *
 * kp_json_read() must never crash, recurse past its limit or leak, and what
 * it reads must be what json-glib reads: the same tree, node for node. The
 * two differ on purpose only where json-glib keeps what JSON cannot say
 * (see kp-json-read.c): an integer past 64 bits (a double here, wrapped
 * around there) and half a surrogate pair (U+FFFD here, bytes that are not
 * UTF-8 there, or a refusal). Everything else the reader takes, json-glib
 * takes too.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include "config.h"

#include <math.h>
#include <string.h>

#include "codec/kp-json-guard.h"

#include "fuzz-common.h"

static void
compare (JsonNode *ours,
         JsonNode *theirs)
{
  g_assert_cmpint (json_node_get_node_type (ours), ==, json_node_get_node_type (theirs));

  if (JSON_NODE_HOLDS_OBJECT (ours))
    {
      g_autoptr(GList) a = json_object_get_members (json_node_get_object (ours));
      g_autoptr(GList) b = json_object_get_members (json_node_get_object (theirs));

      g_assert_cmpuint (g_list_length (a), ==, g_list_length (b));
      for (GList *la = a, *lb = b; la != NULL; la = la->next, lb = lb->next)
        {
          /* json-glib's name may hold half a surrogate pair as raw bytes. */
          if (g_utf8_validate (lb->data, -1, NULL))
            g_assert_cmpstr (la->data, ==, lb->data);
          compare (json_object_get_member (json_node_get_object (ours), la->data),
                   json_object_get_member (json_node_get_object (theirs), lb->data));
        }
    }
  else if (JSON_NODE_HOLDS_ARRAY (ours))
    {
      JsonArray *a = json_node_get_array (ours);
      JsonArray *b = json_node_get_array (theirs);

      g_assert_cmpuint (json_array_get_length (a), ==, json_array_get_length (b));
      for (guint i = 0; i < json_array_get_length (a); i++)
        compare (json_array_get_element (a, i), json_array_get_element (b, i));
    }
  else if (JSON_NODE_HOLDS_VALUE (ours))
    {
      GType type = json_node_get_value_type (ours);

      if (type == G_TYPE_DOUBLE && json_node_get_value_type (theirs) == G_TYPE_INT64)
        {
          /* Only an integer past 64 bits. */
          g_assert_cmpfloat (fabs (json_node_get_double (ours)), >=, 9223372036854775807.0);
          return;
        }
      g_assert_true (type == json_node_get_value_type (theirs));
      if (type == G_TYPE_STRING)
        {
          const char *a = json_node_get_string (ours);
          const char *b = json_node_get_string (theirs);

          g_assert_true (g_utf8_validate (a, -1, NULL));
          if (g_utf8_validate (b, -1, NULL))
            g_assert_cmpstr (a, ==, b);
          else
            g_assert_nonnull (strstr (a, "\xef\xbf\xbd"));
        }
      else if (type == G_TYPE_INT64)
        g_assert_cmpint (json_node_get_int (ours), ==, json_node_get_int (theirs));
      else if (type == G_TYPE_DOUBLE)
        g_assert_cmpfloat (json_node_get_double (ours), ==, json_node_get_double (theirs));
      else
        g_assert_cmpint (json_node_get_boolean (ours), ==, json_node_get_boolean (theirs));
    }
}

/* A \uD800-\uDFFF escape: json-glib reads half a pair by its own rules
 * (it takes the characters after it, a closing quote included).
 */
static gboolean
has_surrogate_escape (const char *text,
                      gsize       size)
{
  for (gsize i = 0; i + 3 < size; i++)
    if (text[i] == '\\' && text[i + 1] == 'u' && (text[i + 2] == 'd' || text[i + 2] == 'D') &&
        strchr ("89abcdefABCDEF", text[i + 3]) != NULL && text[i + 3] != '\0')
      return TRUE;
  return FALSE;
}

int
LLVMFuzzerInitialize (int    *argc,
                      char ***argv)
{
  fuzz_init ();
  return 0;
}

int
LLVMFuzzerTestOneInput (const guint8 *data,
                        size_t        size)
{
  const char *text = (const char *)data;
  g_autoptr(JsonNode) ours = NULL;
  g_autoptr(JsonParser) parser = NULL;
  g_autoptr(GError) error = NULL;

  ours = kp_json_read (text, size, KP_JSON_READ_SEAL, &error);
  g_assert_true ((ours != NULL) != (error != NULL));
  if (ours == NULL)
    {
      g_assert_true (error->domain == KP_JSON_ERROR);
      g_assert_true (g_utf8_validate (error->message, -1, NULL));
      return 0;
    }
  g_assert_true (json_node_is_immutable (ours));

  parser = json_parser_new ();
  if (!kp_json_parser_load_from_data (parser, text, size, NULL) ||
      json_parser_get_root (parser) == NULL)
    {
      if (has_surrogate_escape (text, size))
        return 0;
      g_error ("kp_json_read() took what json-glib refuses");
    }
  compare (ours, json_parser_get_root (parser));
  return 0;
}
