/* fuzz-http1.c: the relays' HTTP/1.1 response parser, over a whole answer
 * and over the same answer in pieces, as a connection receives it
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include "config.h"

#include <string.h>

#include "http/kp-http1-parser.h"

#include "fuzz-common.h"

typedef struct
{
  KpHttp1Parser parser;
  GString      *raw;    /* head bytes not yet taken */
  GString      *body;
  gboolean      failed;
} Run;

static void
feed_body (Run          *run,
           const guint8 *data,
           gsize         len)
{
  while (len > 0 && run->parser.state != KP_HTTP1_DONE && !run->failed)
    {
      gsize start, body_len;
      gssize used = kp_http1_parser_body (&run->parser, data, len, &start, &body_len, NULL);

      if (used < 0)
        {
          run->failed = TRUE;
          return;
        }
      g_assert ((gsize)used <= len && start + body_len <= (gsize)used);
      g_assert (used > 0 || run->parser.state == KP_HTTP1_DONE);
      g_string_append_len (run->body, (const char *)data + start, body_len);
      data += used;
      len -= used;
    }
}

static void
feed (Run          *run,
      const guint8 *data,
      gsize         len)
{
  if (run->failed)
    return;
  if (run->parser.state != KP_HTTP1_HEAD)
    {
      feed_body (run, data, len);
      return;
    }

  g_string_append_len (run->raw, (const char *)data, len);
  for (;;)
    {
      gssize used = kp_http1_parser_head (&run->parser, run->raw->str, run->raw->len, NULL);

      if (used < 0)
        run->failed = TRUE;
      if (used <= 0)
        {
          /* The head never grows past its cap unnoticed. */
          g_assert (run->failed || run->raw->len < KP_HTTP1_HEAD_MAX);
          return;
        }
      g_assert ((gsize)used <= run->raw->len);
      g_string_erase (run->raw, 0, used);
      if (run->parser.state != KP_HTTP1_HEAD)
        {
          gsize rest_len = run->raw->len;
          g_autofree guint8 *rest = g_memdup2 (run->raw->str, rest_len + 1);

          g_assert (run->parser.headers != NULL);
          g_assert (run->parser.status >= 200 && run->parser.status <= 999);
          g_string_truncate (run->raw, 0);
          feed_body (run, rest, rest_len);
          return;
        }
    }
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
  Run whole = { .raw = g_string_new (NULL), .body = g_string_new (NULL) };
  Run pieces = { .raw = g_string_new (NULL), .body = g_string_new (NULL) };
  gsize step = size > 0 ? 1 + data[0] % 7 : 1;

  kp_http1_parser_init (&whole.parser);
  kp_http1_parser_init (&pieces.parser);

  feed (&whole, data, size);
  for (gsize at = 0; at < size; at += step)
    feed (&pieces, data + at, MIN (step, size - at));

  /* However the bytes arrive, the answer is the same. */
  g_assert (whole.failed == pieces.failed);
  if (!whole.failed)
    {
      g_assert (whole.parser.state == pieces.parser.state);
      g_assert (whole.parser.status == pieces.parser.status);
      g_assert (whole.parser.keep_alive == pieces.parser.keep_alive);
      g_assert (whole.body->len == pieces.body->len);
      g_assert (memcmp (whole.body->str, pieces.body->str, whole.body->len) == 0);
      if (whole.parser.state != KP_HTTP1_HEAD)
        kp_http1_parser_eof (&whole.parser, NULL);
    }

  kp_http1_parser_clear (&whole.parser);
  kp_http1_parser_clear (&pieces.parser);
  g_string_free (whole.raw, TRUE);
  g_string_free (whole.body, TRUE);
  g_string_free (pieces.raw, TRUE);
  g_string_free (pieces.body, TRUE);
  return 0;
}
