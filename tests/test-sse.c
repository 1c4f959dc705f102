/* test-sse.c: the SSE scanner
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include "config.h"

#include <string.h>

#include "kp-sse.h"

typedef struct
{
  GPtrArray *names;
  GPtrArray *datas;
} Collected;

/* Feeds @input in pieces of @step bytes, as network reads would, and
 * collects every event found.
 */
static gsize
scan_in_steps (const char *input,
               gsize       step,
               Collected  *out)
{
  g_autoptr(GByteArray) buffer = g_byte_array_new ();
  KpSseEvent event = { .data = g_string_new (NULL) };
  gsize total = strlen (input);
  gsize fed = 0;
  gsize consumed = 0;

  out->names = g_ptr_array_new_with_free_func (g_free);
  out->datas = g_ptr_array_new_with_free_func (g_free);

  while (fed < total)
    {
      gsize n = MIN (step, total - fed);
      gsize offset = 0;
      gsize len;

      g_byte_array_append (buffer, (const guint8 *)input + fed, n);
      fed += n;

      while ((len = kp_sse_next_event ((const char *)buffer->data + offset,
                                       buffer->len - offset, &event)) > 0)
        {
          if (event.has_data)
            {
              g_ptr_array_add (out->names, event.name ? g_strndup (event.name, event.name_len)
                                                      : g_strdup (""));
              g_ptr_array_add (out->datas, g_strdup (event.data->str));
            }
          offset += len;
        }
      consumed += offset;
      g_byte_array_remove_range (buffer, 0, offset);
    }

  g_string_free (event.data, TRUE);
  return consumed;
}

static void
collected_clear (Collected *c)
{
  g_ptr_array_unref (c->names);
  g_ptr_array_unref (c->datas);
}

static void
test_openai_stream (void)
{
  const char *input =
    "data: {\"a\":1}\n\n"
    ": keep-alive\n\n"
    "data: {\"b\":2}\r\n\r\n"
    "data: [DONE]\n\n";

  /* Every split point must give the same events. */
  for (gsize step = 1; step <= strlen (input); step++)
    {
      Collected c;
      gsize consumed = scan_in_steps (input, step, &c);

      g_assert_cmpuint (consumed, ==, strlen (input));
      g_assert_cmpuint (c.datas->len, ==, 3);
      g_assert_cmpstr (g_ptr_array_index (c.datas, 0), ==, "{\"a\":1}");
      g_assert_cmpstr (g_ptr_array_index (c.datas, 1), ==, "{\"b\":2}");
      g_assert_cmpstr (g_ptr_array_index (c.datas, 2), ==, "[DONE]");
      collected_clear (&c);
    }
}

static void
test_named_multiline (void)
{
  Collected c;

  scan_in_steps ("event: message_start\ndata: line one\ndata:line two\nid: 7\nretry: 10\n\n"
                 "event:ping\ndata\n\n", 3, &c);

  g_assert_cmpuint (c.datas->len, ==, 2);
  g_assert_cmpstr (g_ptr_array_index (c.names, 0), ==, "message_start");
  /* One leading space is syntax; lines join with a newline. */
  g_assert_cmpstr (g_ptr_array_index (c.datas, 0), ==, "line one\nline two");
  g_assert_cmpstr (g_ptr_array_index (c.names, 1), ==, "ping");
  g_assert_cmpstr (g_ptr_array_index (c.datas, 1), ==, "");
  collected_clear (&c);
}

static void
test_incomplete (void)
{
  KpSseEvent event = { .data = g_string_new (NULL) };
  const char *partial = "data: {\"half\":";

  g_assert_cmpuint (kp_sse_next_event (partial, strlen (partial), &event), ==, 0);
  g_assert_cmpuint (kp_sse_next_event ("data: x\n", 8, &event), ==, 0);
  g_assert_cmpuint (kp_sse_next_event ("data: x\n\nrest", 13, &event), ==, 9);
  g_assert_true (event.has_data);
  g_assert_cmpstr (event.data->str, ==, "x");

  /* A comment-only block is a complete event without data. */
  g_assert_cmpuint (kp_sse_next_event (": ping\n\n", 8, &event), ==, 8);
  g_assert_false (event.has_data);
  g_assert_false (kp_sse_event_is (&event, "ping"));

  g_string_free (event.data, TRUE);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/keypool/sse/openai-stream-any-split", test_openai_stream);
  g_test_add_func ("/keypool/sse/named-multiline", test_named_multiline);
  g_test_add_func ("/keypool/sse/incomplete", test_incomplete);

  return g_test_run ();
}
