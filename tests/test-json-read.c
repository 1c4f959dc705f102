/* test-json-read.c: the request path's JSON reader against json-glib
 *
 * Every JSON document the tests and the shipped provider files hold (and
 * every "data:" line of the recorded streams) is read by both; the trees
 * must be the same, node for node, number types included. Then what the
 * reader refuses: what json-glib refuses too, what it takes beyond
 * RFC 8259, bytes that are not UTF-8, and nesting past the limit.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include "config.h"

#include <string.h>

#include "codec/kp-json-guard.h"

/* The same tree: node types, value types, values, member order. */
static void
assert_same_tree (JsonNode   *a,
                  JsonNode   *b,
                  const char *where)
{
  if (json_node_get_node_type (a) != json_node_get_node_type (b))
    g_error ("%s: node types differ: %s and %s", where, json_node_type_name (a),
             json_node_type_name (b));

  switch (json_node_get_node_type (a))
    {
    case JSON_NODE_OBJECT:
      {
        JsonObject *oa = json_node_get_object (a);
        JsonObject *ob = json_node_get_object (b);
        g_autoptr(GList) ma = json_object_get_members (oa);
        g_autoptr(GList) mb = json_object_get_members (ob);

        g_assert_cmpuint (g_list_length (ma), ==, g_list_length (mb));
        for (GList *la = ma, *lb = mb; la != NULL; la = la->next, lb = lb->next)
          {
            g_autofree char *inner = g_strdup_printf ("%s.%s", where, (char *)la->data);

            g_assert_cmpstr (la->data, ==, lb->data);
            assert_same_tree (json_object_get_member (oa, la->data),
                              json_object_get_member (ob, lb->data), inner);
          }
        break;
      }
    case JSON_NODE_ARRAY:
      {
        JsonArray *aa = json_node_get_array (a);
        JsonArray *ab = json_node_get_array (b);

        g_assert_cmpuint (json_array_get_length (aa), ==, json_array_get_length (ab));
        for (guint i = 0; i < json_array_get_length (aa); i++)
          {
            g_autofree char *inner = g_strdup_printf ("%s[%u]", where, i);

            assert_same_tree (json_array_get_element (aa, i), json_array_get_element (ab, i),
                              inner);
          }
        break;
      }
    case JSON_NODE_VALUE:
      if (json_node_get_value_type (a) != json_node_get_value_type (b))
        g_error ("%s: value types differ: %s and %s", where,
                 g_type_name (json_node_get_value_type (a)),
                 g_type_name (json_node_get_value_type (b)));
      switch (json_node_get_value_type (a))
        {
        case G_TYPE_INT64:
          g_assert_cmpint (json_node_get_int (a), ==, json_node_get_int (b));
          break;
        case G_TYPE_DOUBLE:
          g_assert_cmpfloat (json_node_get_double (a), ==, json_node_get_double (b));
          break;
        case G_TYPE_BOOLEAN:
          g_assert_cmpint (json_node_get_boolean (a), ==, json_node_get_boolean (b));
          break;
        case G_TYPE_STRING:
          g_assert_cmpstr (json_node_get_string (a), ==, json_node_get_string (b));
          break;
        default:
          g_assert_not_reached ();
        }
      break;
    case JSON_NODE_NULL:
      break;
    }
}

/* Reads @text with both and compares; returns FALSE if json-glib refuses it. */
static gboolean
compare_with_json_glib (const char *text,
                        gssize      len,
                        const char *where)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(JsonNode) ours = NULL;
  g_autoptr(GError) error = NULL;

  if (!kp_json_parser_load_from_data (parser, text, len, NULL) ||
      json_parser_get_root (parser) == NULL)
    return FALSE;
  ours = kp_json_read (text, len, KP_JSON_READ_NONE, &error);
  if (ours == NULL)
    g_error ("%s: json-glib reads it, kp_json_read() does not: %s", where, error->message);
  assert_same_tree (ours, json_parser_get_root (parser), where);
  return TRUE;
}

static guint
compare_file (const char *path)
{
  g_autofree char *contents = NULL;
  g_auto(GStrv) lines = NULL;
  gsize len;
  guint n = 0;

  g_assert_true (g_file_get_contents (path, &contents, &len, NULL));
  if (g_str_has_suffix (path, ".json"))
    {
      g_assert_true (compare_with_json_glib (contents, len, path));
      return 1;
    }
  /* A recorded stream: each "data:" line that is JSON. */
  lines = g_strsplit (contents, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    if (g_str_has_prefix (lines[i], "data:"))
      {
        g_autofree char *where = g_strdup_printf ("%s:%u", path, i + 1);

        n += compare_with_json_glib (lines[i] + 5, -1, where);
      }
  return n;
}

static guint
compare_tree (const char *dir)
{
  g_autoptr(GDir) listing = g_dir_open (dir, 0, NULL);
  const char *name;
  guint n = 0;

  g_assert_nonnull (listing);
  while ((name = g_dir_read_name (listing)) != NULL)
    {
      g_autofree char *path = g_build_filename (dir, name, NULL);

      if (g_file_test (path, G_FILE_TEST_IS_DIR))
        n += compare_tree (path);
      else if (g_str_has_suffix (name, ".json") || g_str_has_suffix (name, ".sse") ||
               g_str_has_suffix (name, ".events"))
        n += compare_file (path);
    }
  return n;
}

static void
test_fixtures (void)
{
  const char *fixtures = g_getenv ("KEYPOOL_FIXTURES_DIR");
  const char *providers = g_getenv ("KEYPOOL_PROVIDERS_DIR");
  guint n;

  g_assert_nonnull (fixtures);
  g_assert_nonnull (providers);
  n = compare_tree (fixtures);
  g_test_message ("%u documents from the fixtures", n);
  g_assert_cmpuint (n, >=, 40);
  n = compare_tree (providers);
  g_assert_cmpuint (n, >=, 10);
}

/* Every kind of value, number and escape, read the same as json-glib. */
static void
test_same_as_json_glib (void)
{
  const char *documents[] = {
    "{}", "[]", "0", "-0", "1", "-1", "true", "false", "null", "\"\"",
    "9223372036854775807", "-9223372036854775808",
    "1.5", "-0.0", "1e3", "1E+3", "2.5e-3", "123456789.123456789", "0.1",
    "[1, 2.0, \"three\", true, false, null, {}, []]",
    " \t\r\n{ \"a\" : [ 1 , { \"b\" : null } ] } \n",
    "\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t\"",
    "\"\\u00e9\\u4e2d\\uD83D\\uDE00 é 中 😀\"",
    "{\"model\":\"gpt-x\",\"messages\":[{\"role\":\"user\",\"content\":\"Say x.\"}],"
    "\"stream\":false,\"max_tokens\":32000,\"temperature\":0.7}",
  };

  for (guint i = 0; i < G_N_ELEMENTS (documents); i++)
    g_assert_true (compare_with_json_glib (documents[i], -1, documents[i]));
}

static void
assert_refused (const char *text,
                gssize      len,
                gint        code,
                const char *message)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) root = kp_json_read (text, len, KP_JSON_READ_NONE, &error);

  if (root != NULL)
    g_error ("kp_json_read() took %s", text);
  g_assert_error (error, KP_JSON_ERROR, code);
  if (message != NULL && strstr (error->message, message) == NULL)
    g_error ("%s: “%s” does not say “%s”", text, error->message, message);
}

/* What neither reads. */
static void
test_malformed (void)
{
  struct {
    const char *text;
    const char *message;
  } cases[] = {
    { "{", "line 1, column 1: an object that never ends" },
    { "[1,]", "line 1, column 4: “]” where a value was expected" },
    { "{\"a\":1,}", "“}” where a member name in double quotes was expected" },
    { "{\"a\" 1}", "“1” where “:” was expected" },
    { "{1:2}", "a member name in double quotes" },
    { "[-]", "a digit" },
    { "[1e]", "a digit in the exponent" },
    { "[+1]", "where a value was expected" },
    { "tru", "where a value was expected" },
    { "[true false]", "“f” where “,” or “]” was expected" },
    { "\"abc", "a string that never ends" },
    { "\"\\u12\"", "four hex digits" },
    { "[1] x", "“x” where nothing more was expected" },
    { "[NaN]", "where a value was expected" },
    { "{\n  \"a\": 1,\n  x}", "line 3, column 3" },
    { "[\"é\", é]", "line 1, column 7: “é” where a value was expected" },
    { "", "the JSON is empty" },
    { " \n ", "the JSON is empty" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(JsonParser) parser = json_parser_new ();

      assert_refused (cases[i].text, -1, KP_JSON_ERROR_SYNTAX, cases[i].message);
      /* json-glib has no value for these either. */
      g_assert_true (!kp_json_parser_load_from_data (parser, cases[i].text, -1, NULL) ||
                     json_parser_get_root (parser) == NULL);
    }
  assert_refused (NULL, 0, KP_JSON_ERROR_SYNTAX, "empty");
  /* A NUL inside the given length is no JSON. */
  assert_refused ("[1]\0[2]", 7, KP_JSON_ERROR_SYNTAX, "a NUL byte in the text (at byte 3)");
}

/* What json-glib takes beyond RFC 8259, refused here. */
static void
test_beyond_rfc (void)
{
  struct {
    const char *text;
    const char *message;
  } cases[] = {
    { "['single']", "“'” where a value was expected" },
    { "[/* comment */ 1]", "“/” where a value was expected" },
    { "[\"a\tb\"]", "the control character 0x09 must be escaped" },
    { "[\"a\nb\"]", "the control character 0x0a must be escaped" },
    { "[\"a\\u0000b\"]", "\\u0000 cannot be kept" },   /* json-glib: "a" */
    { "{\"a\": 1, \"b\": {\"a\": 2}, \"a\": 3}",
      "line 1, column 25: the member “a” appears twice" },   /* json-glib: the last */
    { "[01]", "“1” where “,” or “]” was expected" },
    { "[1.]", "a digit after the decimal point" },
    { "[.5]", "where a value was expected" },
    { "\"a\\x\"", "a backslash before “x”" },          /* json-glib: "ax" */
    { "[1e999]", "too large" },                         /* json-glib: inf */
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    assert_refused (cases[i].text, -1, KP_JSON_ERROR_SYNTAX, cases[i].message);

  /* A long name is cut in the message, between characters. */
  {
    g_autoptr(GString) text = g_string_new ("{\"");
    g_autoptr(GError) error = NULL;

    for (guint i = 0; i < 1000; i++)
      g_string_append (text, "é");
    g_string_append (text, "\":1,\"");
    for (guint i = 0; i < 1000; i++)
      g_string_append (text, "é");
    g_string_append (text, "\":2}");
    assert_refused (text->str, text->len, KP_JSON_ERROR_SYNTAX, "éé…” appears twice");
    g_assert_null (kp_json_read (text->str, text->len, KP_JSON_READ_NONE, &error));
    g_assert_cmpuint (strlen (error->message), <, 200);
    g_assert_true (g_utf8_validate (error->message, -1, NULL));
  }

  assert_refused ("[\"\xff\"]", -1, KP_JSON_ERROR_NOT_UTF8, "at byte 2");
  assert_refused ("{\"a\xc3\":1}", -1, KP_JSON_ERROR_NOT_UTF8, "at byte 3");
}

/* Half a surrogate pair, alone, is U+FFFD; the character after it stays. */
static void
test_lone_surrogates (void)
{
  struct {
    const char *text;
    const char *string;
  } cases[] = {
    { "\"a\\uD800\"", "a\xef\xbf\xbd" },
    { "\"\\uD800\\u0041b\"", "\xef\xbf\xbd" "Ab" },
    { "\"\\uD83D\\uD83D\\uDE00\"", "\xef\xbf\xbd\xf0\x9f\x98\x80" },
    { "\"\\uDC00x\"", "\xef\xbf\xbdx" },
    { "\"\\uD800\\\"\"", "\xef\xbf\xbd\"" },
    { "\"\\uD800\\u12\"", NULL },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(JsonNode) root = kp_json_read (cases[i].text, -1, KP_JSON_READ_NONE, &error);

      if (cases[i].string == NULL)
        {
          g_assert_null (root);
          g_assert_error (error, KP_JSON_ERROR, KP_JSON_ERROR_SYNTAX);
          continue;
        }
      g_assert_no_error (error);
      g_assert_cmpstr (json_node_get_string (root), ==, cases[i].string);
      g_assert_true (g_utf8_validate (json_node_get_string (root), -1, NULL));
    }
}

/* Numbers past 64 bits are doubles; json-glib wraps them around
 * (9223372036854775808 becomes -9223372036854775808).
 */
static void
test_numbers (void)
{
  g_autoptr(JsonNode) big = kp_json_read ("[9223372036854775808, -9223372036854775809, "
                                          "123456789012345678901234567890]", -1,
                                          KP_JSON_READ_NONE, NULL);
  JsonArray *array = json_node_get_array (big);

  for (guint i = 0; i < 3; i++)
    g_assert_true (json_node_get_value_type (json_array_get_element (array, i)) == G_TYPE_DOUBLE);
  g_assert_cmpfloat (json_array_get_double_element (array, 0), ==, 9223372036854775808.0);
  g_assert_cmpfloat (json_array_get_double_element (array, 1), ==, -9223372036854775809.0);
  g_assert_cmpfloat (json_array_get_double_element (array, 2), ==, 1.2345678901234568e29);
}

static char *
nested (guint depth)
{
  GString *text = g_string_new (NULL);

  for (guint i = 0; i < depth; i++)
    g_string_append (text, i % 2 ? "{\"a\":" : "[");
  g_string_append_c (text, '0');
  for (guint i = depth; i > 0; i--)
    g_string_append_c (text, (i - 1) % 2 ? '}' : ']');
  return g_string_free (text, FALSE);
}

static void
test_depth (void)
{
  g_autofree char *at_limit = nested (KP_JSON_MAX_DEPTH);
  g_autofree char *past = nested (KP_JSON_MAX_DEPTH + 1);
  g_autofree char *brackets = g_malloc (100000 + 1);
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(GError) error = NULL;

  root = kp_json_read (at_limit, -1, KP_JSON_READ_NONE, &error);
  g_assert_no_error (error);
  g_assert_nonnull (root);
  g_assert_true (compare_with_json_glib (at_limit, -1, "at the limit"));
  assert_refused (past, -1, KP_JSON_ERROR_TOO_DEEP, "deeper than 128 levels");

  memset (brackets, '[', 100000);
  brackets[100000] = '\0';
  assert_refused (brackets, 100000, KP_JSON_ERROR_TOO_DEEP, "deeper than 128 levels");
}

/* Sealed on demand, as json-glib's immutable parser seals. */
static void
test_seal (void)
{
  g_autoptr(JsonNode) sealed = kp_json_read ("{\"a\":[1]}", -1, KP_JSON_READ_SEAL, NULL);
  g_autoptr(JsonNode) open = kp_json_read ("{\"a\":[1]}", -1, KP_JSON_READ_NONE, NULL);

  g_assert_true (json_node_is_immutable (sealed));
  g_assert_true (json_object_is_immutable (json_node_get_object (sealed)));
  g_assert_false (json_node_is_immutable (open));
  json_object_set_int_member (json_node_get_object (open), "b", 2);
  g_assert_cmpint (json_object_get_size (json_node_get_object (open)), ==, 2);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/keypool/json-read/fixtures", test_fixtures);
  g_test_add_func ("/keypool/json-read/same-as-json-glib", test_same_as_json_glib);
  g_test_add_func ("/keypool/json-read/malformed", test_malformed);
  g_test_add_func ("/keypool/json-read/beyond-rfc", test_beyond_rfc);
  g_test_add_func ("/keypool/json-read/lone-surrogates", test_lone_surrogates);
  g_test_add_func ("/keypool/json-read/numbers", test_numbers);
  g_test_add_func ("/keypool/json-read/depth", test_depth);
  g_test_add_func ("/keypool/json-read/seal", test_seal);

  return g_test_run ();
}
