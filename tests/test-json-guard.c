/* test-json-guard.c: the depth check before every JSON parse
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include "config.h"

#include <string.h>

#include "codec/kp-json-guard.h"
#include "kp-upstream-error.h"

/* @depth arrays nested, then closed: "[[…]]". */
static char *
nested_arrays (guint depth)
{
  GString *text = g_string_sized_new (depth * 2);

  for (guint i = 0; i < depth; i++)
    g_string_append_c (text, '[');
  for (guint i = 0; i < depth; i++)
    g_string_append_c (text, ']');
  return g_string_free (text, FALSE);
}

/* 100,000 "[" with nothing closed: json-glib 1.6 alone overflows its stack. */
static void
test_hundred_thousand_brackets (void)
{
  g_autofree char *text = g_malloc (100000 + 1);
  g_autoptr(GError) error = NULL;
  JsonNode *root;

  memset (text, '[', 100000);
  text[100000] = '\0';

  g_assert_false (kp_json_check (text, -1, KP_JSON_MAX_DEPTH, &error));
  g_assert_error (error, KP_JSON_ERROR, KP_JSON_ERROR_TOO_DEEP);
  g_assert_nonnull (strstr (error->message, "128"));
  g_clear_error (&error);

  root = kp_json_parse (text, 100000, &error);
  g_assert_null (root);
  g_assert_error (error, KP_JSON_ERROR, KP_JSON_ERROR_TOO_DEEP);
}

static void
test_at_the_limit (void)
{
  g_autofree char *at = nested_arrays (KP_JSON_MAX_DEPTH);
  g_autofree char *past = nested_arrays (KP_JSON_MAX_DEPTH + 1);
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) root = NULL;

  g_assert_true (kp_json_check (at, -1, KP_JSON_MAX_DEPTH, &error));
  g_assert_no_error (error);
  root = kp_json_parse (at, -1, &error);
  g_assert_no_error (error);
  g_assert_true (JSON_NODE_HOLDS_ARRAY (root));

  g_assert_false (kp_json_check (past, -1, KP_JSON_MAX_DEPTH, &error));
  g_assert_error (error, KP_JSON_ERROR, KP_JSON_ERROR_TOO_DEEP);
  g_clear_error (&error);

  /* Depth counts what is open at once, not how many were ever opened. */
  {
    g_autoptr(GString) wide = g_string_new ("[");

    for (guint i = 0; i < 10000; i++)
      g_string_append (wide, i ? ",[[]]" : "[[]]");
    g_string_append_c (wide, ']');
    g_assert_true (kp_json_check (wide->str, wide->len, 3, &error));
    g_assert_no_error (error);
    g_assert_false (kp_json_check (wide->str, wide->len, 2, &error));
    g_assert_error (error, KP_JSON_ERROR, KP_JSON_ERROR_TOO_DEEP);
  }
}

static void
test_nested_objects (void)
{
  g_autoptr(GString) text = g_string_new (NULL);
  g_autoptr(GError) error = NULL;

  /* {"a":{"a":…[{"a":1}]…}}, objects and arrays mixed */
  for (guint i = 0; i < 200; i++)
    g_string_append (text, i % 2 ? "[" : "{\"a\":");
  g_string_append (text, "1");
  for (guint i = 200; i-- > 0;)
    g_string_append (text, i % 2 ? "]" : "}");

  g_assert_true (kp_json_check (text->str, text->len, 200, &error));
  g_assert_no_error (error);
  g_assert_false (kp_json_check (text->str, text->len, 199, &error));
  g_assert_error (error, KP_JSON_ERROR, KP_JSON_ERROR_TOO_DEEP);
  g_clear_error (&error);
  g_assert_null (kp_json_parse (text->str, text->len, &error));
  g_assert_error (error, KP_JSON_ERROR, KP_JSON_ERROR_TOO_DEEP);
}

/* Brackets inside strings are text, not nesting. */
static void
test_brackets_in_strings (void)
{
  g_autoptr(GString) text = g_string_new ("{\"messages\":[{\"content\":\"");
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) root = NULL;

  for (guint i = 0; i < 50000; i++)
    g_string_append (text, "[{");
  g_string_append (text, "\"}]}");

  g_assert_true (kp_json_check (text->str, text->len, KP_JSON_MAX_DEPTH, &error));
  g_assert_no_error (error);
  root = kp_json_parse (text->str, text->len, &error);
  g_assert_no_error (error);
  g_assert_true (JSON_NODE_HOLDS_OBJECT (root));
}

/* An escaped quote does not end a string; an escaped backslash before a
 * quote does.
 */
static void
test_escapes (void)
{
  g_autoptr(GError) error = NULL;

  /* "\"[[[…" stays one string: 300 brackets of text */
  {
    g_autoptr(GString) text = g_string_new ("[\"\\\"");

    for (guint i = 0; i < 300; i++)
      g_string_append_c (text, '[');
    g_string_append (text, "\"]");
    g_assert_true (kp_json_check (text->str, text->len, 2, &error));
    g_assert_no_error (error);
  }

  /* "\\" ends the string: the 300 brackets after it nest */
  {
    g_autoptr(GString) text = g_string_new ("[\"\\\\\",");

    for (guint i = 0; i < 300; i++)
      g_string_append_c (text, '[');
    g_assert_false (kp_json_check (text->str, text->len, KP_JSON_MAX_DEPTH, &error));
    g_assert_error (error, KP_JSON_ERROR, KP_JSON_ERROR_TOO_DEEP);
    g_clear_error (&error);
  }

  /* "\u005b" and a backslash as the very last byte */
  g_assert_true (kp_json_check ("[\"\\u005b\"]", -1, 1, &error));
  g_assert_true (kp_json_check ("[\"\\", -1, 1, &error));
  g_assert_no_error (error);
}

/* Not too deep, but not JSON: json-glib's own error. */
/* json-glib's scanner reads more than RFC 8259: 'strings', comments from
 * one '/' to the next, and \u escapes that take the character after them.
 * A quote inside one of those must not hide the brackets after it.
 */
static void
test_json_glib_syntax (void)
{
  const char *hiding[] = {
    "{'\"':1, \"a\":",        /* a quote in a 'string' */
    "['\"',",
    "[/*\"*/",                /* a quote in a comment */
    "[\"\\uD800\", \",",      /* half a surrogate pair takes the closing quote */
    "[\"\\u12\", \",",        /* so does a \u that ends early */
  };
  const char *fine[] = {
    "[{\"a\": \"it's /fine/ [[\"}]",
    "[\"\\uD83D\\uDE00\", {}]",
    "[/* [[[ */ 1, 'x]]]', {}]",
  };

  for (guint i = 0; i < G_N_ELEMENTS (hiding); i++)
    {
      g_autoptr(GString) text = g_string_new (hiding[i]);
      g_autoptr(GError) error = NULL;
      g_autoptr(JsonNode) root = NULL;

      for (guint j = 0; j < 100000; j++)
        g_string_append_c (text, '[');
      g_assert_false (kp_json_check (text->str, text->len, KP_JSON_MAX_DEPTH, &error));
      g_assert_error (error, KP_JSON_ERROR, KP_JSON_ERROR_TOO_DEEP);
      g_clear_error (&error);

      /* Without the check, json-glib would overflow its stack here. */
      root = kp_json_parse (text->str, text->len, &error);
      g_assert_null (root);
      g_assert_error (error, KP_JSON_ERROR, KP_JSON_ERROR_TOO_DEEP);
    }

  for (guint i = 0; i < G_N_ELEMENTS (fine); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(JsonNode) root = NULL;

      g_assert_true (kp_json_check (fine[i], -1, 2, &error));
      g_assert_no_error (error);
      g_assert_false (kp_json_check (fine[i], -1, 1, &error));
      g_assert_error (error, KP_JSON_ERROR, KP_JSON_ERROR_TOO_DEEP);
      g_clear_error (&error);
      root = kp_json_parse (fine[i], -1, &error);
      g_assert_no_error (error);
      g_assert_nonnull (root);
    }
}

static void
test_malformed (void)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (kp_json_check ("]]]}}{", -1, 1, &error));
  g_assert_null (kp_json_parse ("{\"a\":", -1, &error));
  g_assert_nonnull (error);
  g_assert_true (error->domain == JSON_PARSER_ERROR);
  g_clear_error (&error);
  g_assert_null (kp_json_parse ("", 0, &error));
  g_assert_nonnull (error);
  g_clear_error (&error);
  g_assert_null (kp_json_parse (NULL, 0, &error));
  g_assert_nonnull (error);
}

/* An upstream error body or in-stream error event of 100,000 "[" is a
 * failure like any other, not the end of the process.
 */
static void
test_upstream_error (void)
{
  g_autofree char *deep = g_malloc (100000 + 1);
  KpFailure failure;

  memset (deep, '[', 100000);
  deep[100000] = '\0';

  kp_failure_classify_http (&failure, 500, NULL, deep, 100000);
  g_assert_cmpint (failure.klass, ==, KP_FAILURE_DOWN);
  g_assert_nonnull (failure.message);
  g_assert_cmpuint (strlen (failure.message), <=, 300);
  kp_failure_clear (&failure);

  kp_failure_classify_http (&failure, 429, NULL, deep, 100000);
  g_assert_cmpint (failure.klass, ==, KP_FAILURE_RATE_LIMITED);
  kp_failure_clear (&failure);

  kp_failure_classify_event (&failure, deep);
  g_assert_cmpint (failure.klass, ==, KP_FAILURE_DOWN);
  kp_failure_clear (&failure);

  /* Spaces or a comment alone are JSON with no root to json-glib. */
  kp_failure_classify_http (&failure, 503, NULL, "\n", 1);
  g_assert_cmpint (failure.klass, ==, KP_FAILURE_DOWN);
  g_assert_cmpstr (failure.message, ==, "\n");
  kp_failure_clear (&failure);

  kp_failure_classify_event (&failure, "/* nothing */");
  g_assert_cmpint (failure.klass, ==, KP_FAILURE_DOWN);
  kp_failure_clear (&failure);
}

/* A provider's RetryInfo delay is a Go duration; one past gint64's range
 * (found by fuzz-stream-anthropic) is clamped, not cast: the cast of such a
 * double is undefined.
 */
static void
test_huge_go_duration (void)
{
  g_assert_cmpint (kp_parse_go_duration_ms ("1.5s"), ==, 1500);
  g_assert_cmpint (kp_parse_go_duration_ms ("2m59.56s"), ==, 179560);
  g_assert_cmpint (kp_parse_go_duration_ms ("5728320000000000000000000ms"), ==,
                   (gint64)G_MAXINT32 * 1000);
  g_assert_cmpint (kp_parse_go_duration_ms ("1e300h"), ==, (gint64)G_MAXINT32 * 1000);
  g_assert_cmpint (kp_parse_go_duration_ms ("-1s"), ==, -1);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/keypool/json-guard/hundred-thousand-brackets", test_hundred_thousand_brackets);
  g_test_add_func ("/keypool/json-guard/at-the-limit", test_at_the_limit);
  g_test_add_func ("/keypool/json-guard/nested-objects", test_nested_objects);
  g_test_add_func ("/keypool/json-guard/brackets-in-strings", test_brackets_in_strings);
  g_test_add_func ("/keypool/json-guard/escapes", test_escapes);
  g_test_add_func ("/keypool/json-guard/json-glib-syntax", test_json_glib_syntax);
  g_test_add_func ("/keypool/json-guard/malformed", test_malformed);
  g_test_add_func ("/keypool/json-guard/upstream-error", test_upstream_error);
  g_test_add_func ("/keypool/json-guard/huge-go-duration", test_huge_go_duration);

  return g_test_run ();
}
