/* test-http1-parser.c: the response parser of Keypool's own HTTP/1.1 client
 *
 * Hand-made answers fed whole, split in two at every byte and in three:
 * the framings (Content-Length, chunked with extensions and trailers, read
 * until close, 1xx before the answer, no body) and every refusal.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include "config.h"

#include <string.h>

#include <glib.h>

#include "http/kp-http1-private.h"
#include "kp-http1-answers.h"

/* Parser ------------------------------------------------------------------- */


typedef struct
{
  KpHttp1Parser parser;
  GString      *raw;     /* head bytes not yet taken */
  GString      *body;
  GError       *error;
} Feed;

static void
feed_init (Feed *feed)
{
  kp_http1_parser_init (&feed->parser);
  feed->raw = g_string_new (NULL);
  feed->body = g_string_new (NULL);
  feed->error = NULL;
}

static void
feed_clear (Feed *feed)
{
  kp_http1_parser_clear (&feed->parser);
  g_string_free (feed->raw, TRUE);
  g_string_free (feed->body, TRUE);
  g_clear_error (&feed->error);
}

static gboolean
feed_body (Feed       *f,
           const char *data,
           gsize       len)
{
  while (len > 0 && f->parser.state != KP_HTTP1_DONE)
    {
      gsize start, body_len;
      gssize used = kp_http1_parser_body (&f->parser, (const guint8 *)data, len,
                                          &start, &body_len, &f->error);

      if (used < 0)
        return FALSE;
      g_string_append_len (f->body, data + start, body_len);
      data += used;
      len -= used;
    }
  return TRUE;
}

/* Gives @len bytes to the parser, as a connection would. FALSE on an error. */
static gboolean
feed (Feed       *f,
      const char *data,
      gsize       len)
{
  if (f->parser.state != KP_HTTP1_HEAD)
    return feed_body (f, data, len);

  g_string_append_len (f->raw, data, len);
  for (;;)
    {
      gssize used = kp_http1_parser_head (&f->parser, f->raw->str, f->raw->len, &f->error);

      if (used <= 0)
        return used == 0;
      g_string_erase (f->raw, 0, used);
      if (f->parser.state != KP_HTTP1_HEAD)
        {
          gsize rest_len = f->raw->len;
          g_autofree char *rest = g_memdup2 (f->raw->str, rest_len + 1);

          g_string_truncate (f->raw, 0);
          return feed_body (f, rest, rest_len);
        }
    }
}

static void
assert_chunked_answer (Feed *f)
{
  g_assert_no_error (f->error);
  g_assert_cmpint (f->parser.state, ==, KP_HTTP1_DONE);
  g_assert_cmpuint (f->parser.status, ==, 200);
  g_assert_true (f->parser.keep_alive);
  g_assert_cmpstr (f->body->str, ==, "hello world");
  g_assert_cmpstr (soup_message_headers_get_one (f->parser.headers, "X-Test"), ==, "padded value");
  g_assert_null (soup_message_headers_get_one (f->parser.headers, "X-Trailer"));
}

/* Split in two at every byte, and in three at every pair of bytes. */
static void
test_parser_splits (void)
{
  gsize len = strlen (chunked_answer);

  for (gsize i = 0; i <= len; i++)
    {
      Feed f;

      feed_init (&f);
      g_assert_true (feed (&f, chunked_answer, i));
      g_assert_true (feed (&f, chunked_answer + i, len - i));
      assert_chunked_answer (&f);
      feed_clear (&f);
    }

  for (gsize i = 0; i <= len; i += 3)
    for (gsize j = i; j <= len; j++)
      {
        Feed f;

        feed_init (&f);
        g_assert_true (feed (&f, chunked_answer, i));
        g_assert_true (feed (&f, chunked_answer + i, j - i));
        g_assert_true (feed (&f, chunked_answer + j, len - j));
        assert_chunked_answer (&f);
        feed_clear (&f);
      }

  {
    Feed f;

    /* One byte at a time. */
    feed_init (&f);
    for (gsize i = 0; i < len; i++)
      g_assert_true (feed (&f, chunked_answer + i, 1));
    assert_chunked_answer (&f);
    feed_clear (&f);
  }
}

static void
test_parser_framing (void)
{
  struct {
    const char *answer;
    guint       status;
    gboolean    keep_alive;
    gboolean    done;        /* without the peer closing */
    const char *body;
  } cases[] = {
    { "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", 200, TRUE, TRUE, "hello" },
    { "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello", 200, TRUE, TRUE, "hello" },
    { "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", 200, FALSE, TRUE, "ok" },
    { "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", 200, FALSE, TRUE, "ok" },
    { "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok", 200, TRUE, TRUE, "ok" },
    { "HTTP/1.1 200 OK\r\n\r\nuntil close", 200, FALSE, FALSE, "until close" },
    { "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n", 204, TRUE, TRUE, "" },
    { "HTTP/1.1 304 Not Modified\r\n\r\n", 304, TRUE, TRUE, "" },
    { "HTTP/1.1 200 OK\nContent-Length: 2\n\nok", 200, TRUE, TRUE, "ok" },
    { "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 429 Too Many\r\nRetry-After: 7\r\n"
      "Content-Length: 0\r\n\r\n", 429, TRUE, TRUE, "" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      Feed f;

      feed_init (&f);
      g_assert_true (feed (&f, cases[i].answer, strlen (cases[i].answer)));
      g_assert_no_error (f.error);
      g_assert_cmpuint (f.parser.status, ==, cases[i].status);
      g_assert_cmpint (f.parser.state == KP_HTTP1_DONE, ==, cases[i].done);
      if (!cases[i].done)
        g_assert_true (kp_http1_parser_eof (&f.parser, NULL));
      g_assert_cmpint (f.parser.keep_alive, ==, cases[i].keep_alive);
      g_assert_cmpstr (f.body->str, ==, cases[i].body);
      feed_clear (&f);
    }
}

static void
test_parser_refusals (void)
{
  g_autoptr(GString) many = g_string_new ("HTTP/1.1 200 OK\r\n");
  g_autoptr(GString) huge = g_string_new ("HTTP/1.1 200 OK\r\n");
  g_autoptr(GString) long_chunk = g_string_new ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;");
  struct {
    const char *answer;
    gsize       len;
    const char *message;
  } cases[] = {
    { "HTTP/1.1 200 OK\r\nX-A: a\r\n folded\r\nContent-Length: 0\r\n\r\n", 0, "folds" },
    { "HTTP/1.1 200 OK\r\nX-A: a\0b\r\n\r\n", 29, "NUL" },
    { "HTTP/1.1 200 OK\r\nX-A: a\x01\r\n\r\n", 0, "control" },
    { "HTTP/1.1 200 OK\r\nX A: a\r\n\r\n", 0, "header name" },
    { "HTTP/1.1 200 OK\r\nX-A: a\rb\r\n\r\n", 0, "bare CR" },
    { "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 0, "chunk size" },
    { "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\n", 0, "too large" },
    { "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n", 0, "longer than" },
    { "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", 0,
      "both Content-Length and Transfer-Encoding" },
    { "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", 0, "other than chunked" },
    { "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", 0, "conflicting" },
    { "HTTP/1.1 200 OK\r\nContent-Length: -3\r\n\r\n", 0, "malformed Content-Length" },
    { "HTTP/1.1 200 OK\r\nContent-Encoding: br\r\nContent-Length: 0\r\n\r\n", 0, "content coding" },
    { "HTTP/1.1 200 OK\r\nContent-Encoding: gzip, gzip\r\nContent-Length: 0\r\n\r\n", 0,
      "content coding" },
    { "HTTP/1.1 101 Switching\r\n\r\n", 0, "switched protocols" },
    { "HTTP/2 200\r\n\r\n", 0, "status line" },
    { "HTTP/1.1 2x0 OK\r\n\r\n", 0, "status code" },
    { "SSH-2.0-OpenSSH\r\n\r\n", 0, "status line" },
    { NULL, 0, "more than 128 headers" },
    { NULL, 0, "larger than 64 KiB" },
    { NULL, 0, "longer than 1 KiB" },
  };

  for (guint i = 0; i < 129; i++)
    g_string_append_printf (many, "X-%u: v\r\n", i);
  g_string_append (many, "\r\n");
  cases[G_N_ELEMENTS (cases) - 3].answer = many->str;
  while (huge->len < 70 * 1024)
    g_string_append (huge, "X-Long: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
  cases[G_N_ELEMENTS (cases) - 2].answer = huge->str;
  while (long_chunk->len < 2048)
    g_string_append (long_chunk, "name=value;");
  cases[G_N_ELEMENTS (cases) - 1].answer = long_chunk->str;

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      Feed f;
      gsize len = cases[i].len ? cases[i].len : strlen (cases[i].answer);

      feed_init (&f);
      g_assert_false (feed (&f, cases[i].answer, len));
      g_assert_error (f.error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
      if (strstr (f.error->message, cases[i].message) == NULL)
        g_error ("case %u: \"%s\" does not say \"%s\"", i, f.error->message, cases[i].message);
      feed_clear (&f);
    }

  {
    Feed f;

    /* Cut short: the body is incomplete. */
    feed_init (&f);
    g_assert_true (feed (&f, "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc", 41));
    g_assert_false (kp_http1_parser_eof (&f.parser, &f.error));
    g_assert_error (f.error, G_IO_ERROR, G_IO_ERROR_PARTIAL_INPUT);
    feed_clear (&f);
  }
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/keypool/http1/parser/splits", test_parser_splits);
  g_test_add_func ("/keypool/http1/parser/framing", test_parser_framing);
  g_test_add_func ("/keypool/http1/parser/refusals", test_parser_refusals);

  return g_test_run ();
}
