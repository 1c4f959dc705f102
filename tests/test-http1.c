/* test-http1.c: Keypool's own HTTP/1.1 client and its keep-alive pool
 *
 * The pool against a raw peer on 127.0.0.1 that writes hand-made bytes
 * (and counts connections), against real SoupServers (chunked, TLS with a certificate
 * made at test time), and through the relay. The parser has a test of
 * its own, test-http1-parser.c.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include "config.h"

#include <string.h>

#include <gio/gio.h>
#include <libsoup/soup.h>

#include "http/kp-http1-private.h"
#include "kp-gateway.h"
#include "kp-http1-answers.h"
#include "kp-test-util.h"

#define TOKEN "kp-test-http1-token"

/* A raw peer -------------------------------------------------------------- */

typedef enum
{
  PEER_ANSWER,            /* the answer, then wait for the next request */
  PEER_CLOSE_AFTER,       /* the answer, then close */
  PEER_DROP_REUSED,       /* close instead of answering a second request */
  PEER_PARTIAL_REUSED,    /* a byte of an answer to a second request, then close */
  PEER_NEVER_ANSWER,
} PeerMode;

typedef struct
{
  GSocketService *service;
  guint16         port;
  GMutex          lock;
  GCond           cond;
  PeerMode        mode;
  char           *answer;
  gsize           answer_len;
  gsize           split;         /* writes of this many bytes; 0 for one */
  guint           connections;
  guint           active;        /* handlers running */
  guint           requests;
  gboolean        stopping;
  char           *last_request;
} Peer;

/* Reads one request (head and Content-Length body). FALSE at the end. */
static gboolean
read_request (Peer         *peer,
              GInputStream *in)
{
  g_autoptr(GString) request = g_string_new (NULL);
  const char *end = NULL;
  gsize body = 0;
  char buffer[4096];

  while (end == NULL || request->len < (gsize)(end + 4 - request->str) + body)
    {
      gssize n = g_input_stream_read (in, buffer, sizeof buffer, NULL, NULL);

      if (n <= 0)
        return FALSE;
      g_string_append_len (request, buffer, n);
      if (end == NULL && (end = strstr (request->str, "\r\n\r\n")) != NULL)
        {
          const char *length = strstr (request->str, "Content-Length: ");

          g_assert_nonnull (length);
          body = g_ascii_strtoull (length + 16, NULL, 10);
        }
    }

  g_mutex_lock (&peer->lock);
  peer->requests++;
  g_free (peer->last_request);
  peer->last_request = g_strdup (request->str);
  g_mutex_unlock (&peer->lock);
  return TRUE;
}

static void
write_answer (Peer          *peer,
              GOutputStream *out)
{
  gsize step = peer->split ? peer->split : peer->answer_len;

  for (gsize at = 0; at < peer->answer_len; at += step)
    if (!g_output_stream_write_all (out, peer->answer + at, MIN (step, peer->answer_len - at),
                                    NULL, NULL, NULL))
      return;
}

static gboolean
on_peer_run (GThreadedSocketService *service,
             GSocketConnection      *connection,
             GObject                *source,
             Peer                   *peer)
{
  GInputStream *in = g_io_stream_get_input_stream (G_IO_STREAM (connection));
  GOutputStream *out = g_io_stream_get_output_stream (G_IO_STREAM (connection));

  g_mutex_lock (&peer->lock);
  peer->connections++;
  peer->active++;
  g_mutex_unlock (&peer->lock);

  for (guint n = 0; read_request (peer, in); n++)
    {
      if (peer->mode == PEER_NEVER_ANSWER)
        {
          g_mutex_lock (&peer->lock);
          while (!peer->stopping)
            g_cond_wait (&peer->cond, &peer->lock);
          g_mutex_unlock (&peer->lock);
          break;
        }
      if (n == 1 && peer->mode == PEER_DROP_REUSED)
        break;
      if (n == 1 && peer->mode == PEER_PARTIAL_REUSED)
        {
          g_output_stream_write_all (out, "H", 1, NULL, NULL, NULL);
          break;
        }
      write_answer (peer, out);
      if (peer->mode == PEER_CLOSE_AFTER)
        break;
    }
  g_io_stream_close (G_IO_STREAM (connection), NULL, NULL);

  g_mutex_lock (&peer->lock);
  peer->active--;
  g_cond_broadcast (&peer->cond);
  g_mutex_unlock (&peer->lock);
  return TRUE;
}

static Peer *
peer_new (PeerMode    mode,
          const char *answer,
          gssize      len)
{
  Peer *peer = g_new0 (Peer, 1);
  g_autoptr(GSocketAddress) any = g_inet_socket_address_new_from_string ("127.0.0.1", 0);
  g_autoptr(GSocketAddress) bound = NULL;
  g_autoptr(GError) error = NULL;

  g_mutex_init (&peer->lock);
  g_cond_init (&peer->cond);
  peer->mode = mode;
  peer->answer_len = len < 0 ? strlen (answer) : (gsize)len;
  peer->answer = g_memdup2 (answer, peer->answer_len + 1);
  peer->service = g_threaded_socket_service_new (8);
  g_socket_listener_add_address (G_SOCKET_LISTENER (peer->service), any, G_SOCKET_TYPE_STREAM,
                                 G_SOCKET_PROTOCOL_TCP, NULL, &bound, &error);
  g_assert_no_error (error);
  peer->port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
  g_signal_connect (peer->service, "run", G_CALLBACK (on_peer_run), peer);
  g_socket_service_start (peer->service);
  return peer;
}

static guint
peer_count (Peer  *peer,
            guint *requests)
{
  guint connections;

  g_mutex_lock (&peer->lock);
  connections = peer->connections;
  if (requests != NULL)
    *requests = peer->requests;
  g_mutex_unlock (&peer->lock);
  return connections;
}

/* After the client side is gone, so that no handler waits for a request. */
static void
peer_free (Peer *peer)
{
  g_socket_service_stop (peer->service);
  g_socket_listener_close (G_SOCKET_LISTENER (peer->service));
  g_mutex_lock (&peer->lock);
  peer->stopping = TRUE;
  g_cond_broadcast (&peer->cond);
  while (peer->active > 0)
    g_cond_wait (&peer->cond, &peer->lock);
  g_mutex_unlock (&peer->lock);
  g_object_unref (peer->service);
  g_mutex_clear (&peer->lock);
  g_cond_clear (&peer->cond);
  g_free (peer->answer);
  g_free (peer->last_request);
  g_free (peer);
}

static char *
peer_url (Peer *peer)
{
  return g_strdup_printf ("http://127.0.0.1:%u/v1/chat?x=1", peer->port);
}

/* The client side ---------------------------------------------------------- */

typedef struct
{
  KpHttp1Request     *request;
  guint               status;
  SoupMessageHeaders *headers;
  GString            *body;
  GError             *error;
  gboolean            done;
  gboolean            connecting;
  gboolean            sent;
  gsize               stop_after;   /* free the request after this many body bytes */
  guint               burst;        /* reads per callback, as the relay; 0 for all */
} Exchange;

static void
read_all (Exchange *ex)
{
  for (guint i = 0;; i++)
    {
      guint8 buffer[7];   /* small, so that reads cross chunk boundaries */
      gssize n;

      if (ex->burst > 0 && i == ex->burst)
        {
          /* Stopped before the body would block: told again when to go on. */
          kp_http1_request_again (ex->request);
          return;
        }
      n = kp_http1_request_read (ex->request, buffer, sizeof buffer, &ex->error);

      if (n == KP_HTTP1_WOULD_BLOCK)
        return;
      if (n <= 0)
        {
          ex->done = TRUE;
          return;
        }
      g_string_append_len (ex->body, (const char *)buffer, n);
      if (ex->stop_after > 0 && ex->body->len >= ex->stop_after)
        {
          g_clear_pointer (&ex->request, kp_http1_request_free);
          ex->done = TRUE;
          return;
        }
    }
}

static void
on_connecting (gpointer user_data)
{
  ((Exchange *)user_data)->connecting = TRUE;
}

static void
on_sent (gpointer user_data)
{
  ((Exchange *)user_data)->sent = TRUE;
}

static void
on_head (guint               status,
         SoupMessageHeaders *headers,
         gpointer            user_data)
{
  Exchange *ex = user_data;

  ex->status = status;
  ex->headers = soup_message_headers_ref (headers);
  read_all (ex);
}

static void
on_readable (gpointer user_data)
{
  read_all (user_data);
}

static void
on_failed (const GError *error,
           gpointer      user_data)
{
  Exchange *ex = user_data;

  ex->error = g_error_copy (error);
  ex->done = TRUE;
}

static const KpHttp1Callbacks callbacks = {
  on_connecting, on_sent, on_head, on_readable, on_failed,
};

static gboolean
exchange_done (gpointer data)
{
  return ((Exchange *)data)->done;
}

static void
exchange_start (Exchange    *ex,
                KpHttp1Pool *pool,
                const char  *url)
{
  g_autoptr(GUri) uri = g_uri_parse (url, SOUP_HTTP_URI_FLAGS, NULL);
  g_autoptr(SoupMessageHeaders) headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_REQUEST);
  g_autoptr(GBytes) body = g_bytes_new_static ("{\"a\":1}", 7);

  g_assert_nonnull (uri);
  memset (ex, 0, sizeof *ex);
  ex->body = g_string_new (NULL);
  soup_message_headers_append (headers, "Content-Type", "application/json");
  ex->request = kp_http1_request_new (pool, uri, "POST", headers, body, &callbacks, ex);
}

static void
exchange_wait (Exchange *ex)
{
  g_assert_true (kp_test_spin_until (exchange_done, ex, 10000));
}

static void
exchange_clear (Exchange *ex)
{
  g_clear_pointer (&ex->request, kp_http1_request_free);
  g_clear_pointer (&ex->headers, soup_message_headers_unref);
  g_string_free (ex->body, TRUE);
  g_clear_error (&ex->error);
}

/* One request through @pool; the body it got. */
static void
exchange_run (Exchange    *ex,
              KpHttp1Pool *pool,
              const char  *url)
{
  exchange_start (ex, pool, url);
  exchange_wait (ex);
}

/* Pool against the raw peer ----------------------------------------------- */

typedef struct
{
  Peer        *peer;
  KpHttp1Pool *pool;
  char        *url;
} Setup;

static void
setup_init (Setup      *setup,
            PeerMode    mode,
            const char *answer,
            gssize      len,
            guint       per_host)
{
  setup->peer = peer_new (mode, answer, len);
  setup->url = peer_url (setup->peer);
  setup->pool = kp_http1_pool_new (per_host, FALSE);
}

/* The pool first: the peer's handlers then see their connections close. */
static void
setup_clear (Setup *setup)
{
  kp_http1_pool_close_idle (setup->pool);
  kp_http1_pool_unref (setup->pool);
  peer_free (setup->peer);
  g_free (setup->url);
}

static void
test_pool_reuse (void)
{
  Setup setup;
  guint requests = 0;

  setup_init (&setup, PEER_ANSWER, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", -1, 4);
  for (guint i = 0; i < 3; i++)
    {
      Exchange ex;

      exchange_run (&ex, setup.pool, setup.url);
      g_assert_no_error (ex.error);
      g_assert_cmpuint (ex.status, ==, 200);
      g_assert_cmpstr (ex.body->str, ==, "hello");
      g_assert_true (ex.sent);
      /* Only the first request makes a connection. */
      g_assert_cmpint (ex.connecting, ==, i == 0);
      exchange_clear (&ex);
      g_assert_cmpuint (kp_http1_pool_count_idle (setup.pool), ==, 1);
    }
  g_assert_cmpuint (peer_count (setup.peer, &requests), ==, 1);
  g_assert_cmpuint (requests, ==, 3);

  /* What went out: the request line, Host, the codings it takes, the body. */
  g_assert_true (g_str_has_prefix (setup.peer->last_request, "POST /v1/chat?x=1 HTTP/1.1\r\n"));
  g_assert_nonnull (strstr (setup.peer->last_request, "\r\nHost: 127.0.0.1:"));
  g_assert_nonnull (strstr (setup.peer->last_request, "\r\nContent-Length: 7\r\n"));
  g_assert_nonnull (strstr (setup.peer->last_request, "\r\nContent-Type: application/json\r\n"));
  g_assert_nonnull (strstr (setup.peer->last_request, "\r\nAccept-Encoding: gzip, deflate\r\n"));
  g_assert_true (g_str_has_suffix (setup.peer->last_request, "\r\n\r\n{\"a\":1}"));
  setup_clear (&setup);
}

/* A reader that stops after a few reads, as the relay does after a burst,
 * is told to go on, also when the body's last bytes came in the burst.
 */
static void
test_pool_bursts (void)
{
  const char *answers[] = {
    "HTTP/1.1 200 OK\r\nContent-Length: 21\r\n\r\nhello hello hello hi!",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n15\r\nhello hello hello hi!\r\n0\r\n\r\n",
  };

  for (guint i = 0; i < G_N_ELEMENTS (answers); i++)
    for (guint burst = 1; burst <= 4; burst++)
      {
        Setup setup;
        Exchange ex;

        setup_init (&setup, PEER_ANSWER, answers[i], -1, 4);
        exchange_start (&ex, setup.pool, setup.url);
        ex.burst = burst;
        exchange_wait (&ex);
        g_assert_no_error (ex.error);
        g_assert_cmpstr (ex.body->str, ==, "hello hello hello hi!");
        exchange_clear (&ex);
        setup_clear (&setup);
      }
}

/* Runs @n requests through @setup, each answered @body. */
static void
run_ok (Setup      *setup,
        guint       n,
        const char *body)
{
  for (guint i = 0; i < n; i++)
    {
      Exchange ex;

      exchange_run (&ex, setup->pool, setup->url);
      g_assert_no_error (ex.error);
      g_assert_cmpstr (ex.body->str, ==, body);
      exchange_clear (&ex);
    }
}

/* Answers the pool must not reuse the connection after. */
static void
test_pool_no_reuse (void)
{
  struct {
    PeerMode    mode;
    const char *answer;
    const char *body;
  } cases[] = {
    { PEER_ANSWER, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", "ok" },
    { PEER_ANSWER, "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", "ok" },
    { PEER_CLOSE_AFTER, "HTTP/1.1 200 OK\r\n\r\nuntil the end", "until the end" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      Setup setup;

      setup_init (&setup, cases[i].mode, cases[i].answer, -1, 4);
      run_ok (&setup, 2, cases[i].body);
      g_assert_cmpuint (kp_http1_pool_count_idle (setup.pool), ==, 0);
      g_assert_cmpuint (peer_count (setup.peer, NULL), ==, 2);
      setup_clear (&setup);
    }
}

/* Chunked with extensions, trailers and a 100 Continue, one byte per write. */
static void
test_pool_byte_writes (void)
{
  Setup setup;

  setup_init (&setup, PEER_ANSWER, chunked_answer, -1, 4);
  setup.peer->split = 1;
  for (guint i = 0; i < 2; i++)
    {
      Exchange ex;

      exchange_run (&ex, setup.pool, setup.url);
      g_assert_no_error (ex.error);
      g_assert_cmpuint (ex.status, ==, 200);
      g_assert_cmpstr (ex.body->str, ==, "hello world");
      g_assert_cmpstr (soup_message_headers_get_content_type (ex.headers, NULL), ==,
                       "text/event-stream");
      exchange_clear (&ex);
    }
  g_assert_cmpuint (peer_count (setup.peer, NULL), ==, 1);
  setup_clear (&setup);
}

static gboolean
pool_has_no_idle (gpointer data)
{
  return kp_http1_pool_count_idle (data) == 0;
}

#define OK_ANSWER "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

/* A pooled connection the provider closed at the moment of the request is
 * retried once on a new one; the provider closing an idle one is noticed.
 */
static void
test_pool_stale (void)
{
  Setup setup;
  guint requests = 0;

  setup_init (&setup, PEER_DROP_REUSED, OK_ANSWER, -1, 4);
  run_ok (&setup, 2, "ok");
  g_assert_cmpuint (peer_count (setup.peer, &requests), ==, 2);
  g_assert_cmpuint (requests, ==, 3);
  setup_clear (&setup);

  /* Not after a byte of the answer came. */
  setup_init (&setup, PEER_PARTIAL_REUSED, OK_ANSWER, -1, 4);
  run_ok (&setup, 1, "ok");
  {
    Exchange ex;

    exchange_run (&ex, setup.pool, setup.url);
    g_assert_error (ex.error, G_IO_ERROR, G_IO_ERROR_PARTIAL_INPUT);
    g_assert_nonnull (strstr (ex.error->message, "before answering"));
    exchange_clear (&ex);
  }
  g_assert_cmpuint (peer_count (setup.peer, &requests), ==, 1);
  g_assert_cmpuint (requests, ==, 2);
  setup_clear (&setup);

  /* The provider closes an idle connection: the pool lets it go. */
  setup_init (&setup, PEER_CLOSE_AFTER, OK_ANSWER, -1, 4);
  run_ok (&setup, 1, "ok");
  g_assert_true (kp_test_spin_until (pool_has_no_idle, setup.pool, 10000));
  setup_clear (&setup);
}

static void
test_pool_errors (void)
{
  g_autoptr(GString) huge = g_string_new ("HTTP/1.1 200 OK\r\n");
  struct {
    const char *answer;
    int         code;
    const char *message;
  } cases[] = {
    { "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
      G_IO_ERROR_INVALID_DATA, "chunk size" },
    { "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\nok",
      G_IO_ERROR_INVALID_DATA, "both Content-Length and Transfer-Encoding" },
    { "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
      G_IO_ERROR_PARTIAL_INPUT, "before the answer was complete" },
    { "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
      G_IO_ERROR_PARTIAL_INPUT, "before the answer was complete" },
    { NULL, G_IO_ERROR_INVALID_DATA, "larger than 64 KiB" },
  };

  /* Headers without end, well past the cap: refused at the cap. */
  while (huge->len < 1024 * 1024)
    g_string_append (huge, "X-Long: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
  cases[G_N_ELEMENTS (cases) - 1].answer = huge->str;

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      Setup setup;
      Exchange ex;

      setup_init (&setup, PEER_CLOSE_AFTER, cases[i].answer, -1, 4);
      exchange_run (&ex, setup.pool, setup.url);
      g_assert_error (ex.error, G_IO_ERROR, cases[i].code);
      if (strstr (ex.error->message, cases[i].message) == NULL)
        g_error ("case %u: \"%s\" does not say \"%s\"", i, ex.error->message, cases[i].message);
      exchange_clear (&ex);
      g_assert_cmpuint (kp_http1_pool_count_idle (setup.pool), ==, 0);
      setup_clear (&setup);
    }

  {
    /* Nothing listens on port 1. */
    KpHttp1Pool *pool = kp_http1_pool_new (4, FALSE);
    Exchange ex;

    exchange_run (&ex, pool, "http://127.0.0.1:1/v1");
    g_assert_error (ex.error, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED);
    exchange_clear (&ex);
    kp_http1_pool_unref (pool);
  }
}

static GBytes *
compress (GZlibCompressorFormat  format,
          const char            *text,
          gsize                  len)
{
  g_autoptr(GConverter) compressor = G_CONVERTER (g_zlib_compressor_new (format, 9));
  g_autoptr(GError) error = NULL;
  guint8 *out = g_malloc (len + 1024);
  gsize used = 0, made = 0;

  g_assert_cmpint (g_converter_convert (compressor, text, len, out, len + 1024,
                                        G_CONVERTER_INPUT_AT_END, &used, &made, &error),
                   ==, G_CONVERTER_FINISHED);
  g_assert_no_error (error);
  g_assert_cmpuint (used, ==, len);
  return g_bytes_new_take (out, made);
}

/* Compressed answers are inflated, as libsoup's decoder did; a body that
 * inflates to far more than it is comes out in reads of the reader's size.
 */
static void
test_pool_compressed (void)
{
  g_autoptr(GString) text = g_string_new (NULL);
  struct {
    const char           *coding;
    GZlibCompressorFormat format;
    gboolean              chunked;
  } cases[] = {
    { "gzip", G_ZLIB_COMPRESSOR_FORMAT_GZIP, FALSE },
    { "x-gzip", G_ZLIB_COMPRESSOR_FORMAT_GZIP, TRUE },
    { "deflate", G_ZLIB_COMPRESSOR_FORMAT_ZLIB, FALSE },
  };

  for (guint i = 0; i < 20000; i++)
    g_string_append_printf (text, "line %u of a long answer\n", i);

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GBytes) body = compress (cases[i].format, text->str, text->len);
      g_autoptr(GString) answer = g_string_new (NULL);
      gsize len;
      const char *data = g_bytes_get_data (body, &len);
      Setup setup;

      g_string_append_printf (answer, "HTTP/1.1 200 OK\r\nContent-Encoding: %s\r\n", cases[i].coding);
      if (cases[i].chunked)
        {
          g_string_append_printf (answer, "Transfer-Encoding: chunked\r\n\r\n%zx\r\n", len);
          g_string_append_len (answer, data, len);
          g_string_append (answer, "\r\n0\r\n\r\n");
        }
      else
        {
          g_string_append_printf (answer, "Content-Length: %zu\r\n\r\n", len);
          g_string_append_len (answer, data, len);
        }

      setup_init (&setup, PEER_ANSWER, answer->str, answer->len, 4);
      run_ok (&setup, 2, text->str);
      g_test_message ("%s: %u connections", cases[i].coding, peer_count (setup.peer, NULL));
      g_assert_cmpuint (peer_count (setup.peer, NULL), ==, 1);
      setup_clear (&setup);
    }

  {
    /* Cut short, and not compressed at all. */
    g_autoptr(GBytes) body = compress (G_ZLIB_COMPRESSOR_FORMAT_GZIP, text->str, text->len);
    const char *bad_answers[] = {
      "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 11\r\n\r\nhello world",
      NULL,
    };
    g_autoptr(GString) truncated = g_string_new ("HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n"
                                                 "Content-Length: 20\r\n\r\n");

    g_string_append_len (truncated, g_bytes_get_data (body, NULL), 20);
    bad_answers[1] = truncated->str;
    for (guint i = 0; i < G_N_ELEMENTS (bad_answers); i++)
      {
        Setup setup;
        Exchange ex;

        setup_init (&setup, PEER_ANSWER, bad_answers[i],
                    i == 1 ? (gssize)truncated->len : -1, 4);
        exchange_run (&ex, setup.pool, setup.url);
        g_assert_error (ex.error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
        g_assert_nonnull (strstr (ex.error->message, "compressed answer is malformed"));
        exchange_clear (&ex);
        setup_clear (&setup);
      }
  }
}

/* The relay ends mid-body: the connection is closed, not pooled. */
static void
test_pool_cancel_mid_body (void)
{
  g_autoptr(GString) answer = g_string_new ("HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n");
  Setup setup;

  for (guint i = 0; i < 100000; i++)
    g_string_append_c (answer, 'a' + i % 26);
  setup_init (&setup, PEER_ANSWER, answer->str, answer->len, 4);

  for (guint i = 0; i < 2; i++)
    {
      Exchange ex;

      exchange_start (&ex, setup.pool, setup.url);
      ex.stop_after = 10;
      exchange_wait (&ex);
      g_assert_null (ex.request);
      g_assert_cmpuint (kp_http1_pool_count_idle (setup.pool), ==, 0);
      exchange_clear (&ex);
    }
  g_assert_cmpuint (peer_count (setup.peer, NULL), ==, 2);
  setup_clear (&setup);
}

/* Past the limit per host, requests wait for a connection in order. */
static void
test_pool_queue (void)
{
  Setup setup;
  Exchange ex[3];

  setup_init (&setup, PEER_ANSWER, OK_ANSWER, -1, 1);
  for (guint i = 0; i < G_N_ELEMENTS (ex); i++)
    exchange_start (&ex[i], setup.pool, setup.url);
  g_assert_true (ex[0].connecting);
  g_assert_false (ex[1].connecting);
  g_assert_false (ex[2].connecting);
  for (guint i = 0; i < G_N_ELEMENTS (ex); i++)
    {
      exchange_wait (&ex[i]);
      g_assert_no_error (ex[i].error);
      g_assert_cmpstr (ex[i].body->str, ==, "ok");
    }
  g_assert_cmpuint (peer_count (setup.peer, NULL), ==, 1);
  for (guint i = 0; i < G_N_ELEMENTS (ex); i++)
    exchange_clear (&ex[i]);

  /* A waiting request that goes away leaves the queue. */
  exchange_start (&ex[0], setup.pool, setup.url);
  exchange_start (&ex[1], setup.pool, setup.url);
  g_clear_pointer (&ex[1].request, kp_http1_request_free);
  exchange_wait (&ex[0]);
  g_assert_no_error (ex[0].error);
  exchange_clear (&ex[0]);
  exchange_clear (&ex[1]);
  setup_clear (&setup);
}

/* Against real SoupServers ------------------------------------------------ */

static void
on_soup_request (SoupServer        *server,
                 SoupServerMessage *msg,
                 const char        *path,
                 GHashTable        *query,
                 gpointer           user_data)
{
  SoupMessageHeaders *headers = soup_server_message_get_response_headers (msg);
  SoupMessageBody *body = soup_server_message_get_response_body (msg);

  soup_server_message_set_status (msg, 200, NULL);
  soup_message_headers_set_encoding (headers, SOUP_ENCODING_CHUNKED);
  soup_message_headers_set_content_type (headers, "text/event-stream", NULL);
  for (guint i = 0; i < 5; i++)
    {
      g_autofree char *event = g_strdup_printf ("data: %u\n\n", i);

      soup_message_body_append (body, SOUP_MEMORY_COPY, event, strlen (event));
    }
  soup_message_body_complete (body);
}

static SoupServer *
soup_server_start (GTlsCertificate *certificate,
                   char           **url)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocketAddress) address = g_inet_socket_address_new_from_string ("127.0.0.1", 0);
  SoupServer *server = soup_server_new ("tls-certificate", certificate, NULL);
  GSList *uris;

  soup_server_add_handler (server, NULL, on_soup_request, NULL, NULL);
  g_assert_true (soup_server_listen (server, address,
                                     certificate ? SOUP_SERVER_LISTEN_HTTPS : 0, &error));
  g_assert_no_error (error);
  uris = soup_server_get_uris (server);
  *url = g_strdup_printf ("%s://127.0.0.1:%d/v1/stream", certificate ? "https" : "http",
                          g_uri_get_port (uris->data));
  g_slist_free_full (uris, (GDestroyNotify)g_uri_unref);
  return server;
}

static const char soup_body[] = "data: 0\n\ndata: 1\n\ndata: 2\n\ndata: 3\n\ndata: 4\n\n";

/* Three streams on one kept-alive connection; then @pool goes. */
static void
run_kept_alive (KpHttp1Pool *pool,
                const char  *url)
{
  for (guint i = 0; i < 3; i++)
    {
      Exchange ex;

      exchange_run (&ex, pool, url);
      g_assert_no_error (ex.error);
      g_assert_cmpuint (ex.status, ==, 200);
      g_assert_cmpstr (ex.body->str, ==, soup_body);
      g_assert_cmpint (ex.connecting, ==, i == 0);
      exchange_clear (&ex);
    }
  kp_http1_pool_close_idle (pool);
  kp_http1_pool_unref (pool);
}

static void
test_soup_server (void)
{
  g_autofree char *url = NULL;
  g_autoptr(SoupServer) server = soup_server_start (NULL, &url);
  KpHttp1Pool *pool = kp_http1_pool_new (4, FALSE);

  run_kept_alive (pool, url);
  soup_server_disconnect (server);
}

/* A self-signed certificate for 127.0.0.1, made now with openssl. */
static gboolean
make_certificate (const char *dir,
                  char      **cert_path,
                  char      **key_path)
{
  g_autofree char *openssl = g_find_program_in_path ("openssl");
  g_autofree char *subject_alt = g_strdup ("subjectAltName=IP:127.0.0.1");
  int status = 0;

  if (openssl == NULL)
    return FALSE;
  *cert_path = g_build_filename (dir, "cert.pem", NULL);
  *key_path = g_build_filename (dir, "key.pem", NULL);
  {
    const char *argv[] = {
      openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
      "-nodes", "-keyout", *key_path, "-out", *cert_path, "-days", "2",
      "-subj", "/CN=127.0.0.1", "-addext", subject_alt, NULL,
    };

    g_assert_true (g_spawn_sync (NULL, (char **)argv, NULL,
                                 G_SPAWN_STDOUT_TO_DEV_NULL | G_SPAWN_STDERR_TO_DEV_NULL,
                                 NULL, NULL, NULL, NULL, &status, NULL));
  }
  return g_spawn_check_wait_status (status, NULL);
}

static void
test_tls (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("keypool-http1-XXXXXX", NULL);
  g_autofree char *cert_path = NULL;
  g_autofree char *key_path = NULL;
  g_autofree char *url = NULL;
  g_autoptr(GTlsCertificate) certificate = NULL;
  g_autoptr(GTlsDatabase) database = NULL;
  g_autoptr(SoupServer) server = NULL;
  KpHttp1Pool *pool;

  if (!g_tls_backend_supports_tls (g_tls_backend_get_default ()))
    {
      g_test_skip ("no TLS backend (glib-networking)");
      return;
    }
  if (!make_certificate (dir, &cert_path, &key_path))
    {
      g_test_skip ("openssl could not make a test certificate");
      kp_test_remove_tree (dir);
      return;
    }

  certificate = g_tls_certificate_new_from_files (cert_path, key_path, &error);
  g_assert_no_error (error);
  database = g_tls_file_database_new (cert_path, &error);
  g_assert_no_error (error);
  server = soup_server_start (certificate, &url);

  /* The system's CAs do not know it. */
  pool = kp_http1_pool_new (4, FALSE);
  {
    Exchange ex;

    exchange_run (&ex, pool, url);
    g_assert_nonnull (ex.error);
    g_assert_true (ex.error->domain == G_TLS_ERROR);
    exchange_clear (&ex);
  }
  kp_http1_pool_unref (pool);

  pool = kp_http1_pool_new (4, FALSE);
  kp_http1_pool_set_tls_database (pool, database);
  run_kept_alive (pool, url);
  soup_server_disconnect (server);
  kp_test_remove_tree (dir);
}

/* Through the relay ------------------------------------------------------- */

typedef struct
{
  KpTestPlace  place;
  KpGateway   *gateway;
  SoupSession *client;
  char        *base;
} Relay;

static void
relay_start (Relay *relay,
             Peer  *peer)
{
  g_autofree char *provider = g_strdup_printf (
    "{\"id\":\"raw\",\"name\":\"Raw\",\"base_url\":\"http://127.0.0.1:%u/v1\","
    "\"requires_key\":false,\"auth\":\"none\","
    "\"models\":[{\"id\":\"raw/model\",\"input\":0,\"output\":0}]}", peer->port);

  kp_test_place_init (&relay->place, "http1");
  kp_test_place_write_provider (&relay->place, "raw", provider);
  relay->gateway = kp_test_gateway_new (relay->place.providers, relay->place.root, TOKEN);
  kp_gateway_set_timeouts (relay->gateway, 2000, 300 * kp_test_timeout_scale (), 2000);
  kp_test_gateway_start (relay->gateway);
  relay->base = g_strdup_printf ("http://127.0.0.1:%u", kp_gateway_get_port (relay->gateway));
  relay->client = soup_session_new ();
}

static void
relay_send (Relay          *relay,
            KpTestResponse *response)
{
  g_autofree char *url = g_strdup_printf ("%s/v1/chat/completions", relay->base);
  g_autoptr(SoupMessage) msg = soup_message_new ("POST", url);
  static const char body[] = "{\"model\":\"raw/model\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
  g_autoptr(GBytes) bytes = g_bytes_new_static (body, strlen (body));

  soup_message_headers_append (soup_message_get_request_headers (msg), "Authorization",
                               "Bearer " TOKEN);
  soup_message_set_request_body_from_bytes (msg, "application/json", bytes);
  kp_test_send (relay->client, msg, 10000 * kp_test_timeout_scale (), response);
}

static void
relay_stop (Relay *relay)
{
  kp_test_gateway_clear_with_client (&relay->gateway, &relay->client);
  g_clear_pointer (&relay->base, g_free);
  kp_test_place_clear (&relay->place);
}

#define CHAT_ANSWER \
  "{\"id\":\"c1\",\"object\":\"chat.completion\",\"model\":\"raw\",\"choices\":[{\"index\":0," \
  "\"message\":{\"role\":\"assistant\",\"content\":\"hi there\"},\"finish_reason\":\"stop\"}]," \
  "\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2,\"total_tokens\":5}}"

static void
test_relay_reuse (void)
{
  g_autofree char *answer = g_strdup_printf ("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                             "Content-Length: %zu\r\n\r\n%s",
                                             strlen (CHAT_ANSWER), CHAT_ANSWER);
  Peer *peer = peer_new (PEER_ANSWER, answer, -1);
  Relay relay = { 0 };
  guint requests = 0;

  relay_start (&relay, peer);
  for (guint i = 0; i < 3; i++)
    {
      g_auto(KpTestResponse) response = { 0 };

      relay_send (&relay, &response);
      g_assert_cmpuint (response.status, ==, 200);
      g_assert_nonnull (strstr (response.body, "hi there"));
    }
  g_assert_cmpuint (peer_count (peer, &requests), ==, 1);
  g_assert_cmpuint (requests, ==, 3);
  g_assert_nonnull (strstr (peer->last_request, "POST /v1/chat/completions HTTP/1.1\r\n"));
  relay_stop (&relay);
  peer_free (peer);
}

/* A provider that takes the request and never answers: the relay's
 * first-byte deadline ends it.
 */
static void
test_relay_never_answers (void)
{
  Peer *peer = peer_new (PEER_NEVER_ANSWER, "", 0);
  Relay relay = { 0 };
  g_auto(KpTestResponse) response = { 0 };

  relay_start (&relay, peer);
  relay_send (&relay, &response);
  g_assert_cmpuint (response.status, ==, 504);
  g_assert_nonnull (strstr (response.body, "upstream_timeout"));
  g_assert_nonnull (strstr (response.body, "first byte"));
  relay_stop (&relay);
  peer_free (peer);
}

/* A malformed answer is the provider's failure, told clearly. */
static void
test_relay_bad_answer (void)
{
  Peer *peer = peer_new (PEER_CLOSE_AFTER,
                         "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", -1);
  Relay relay = { 0 };
  g_auto(KpTestResponse) response = { 0 };

  relay_start (&relay, peer);
  relay_send (&relay, &response);
  g_assert_cmpuint (response.status, ==, 502);
  g_assert_nonnull (strstr (response.body, "both Content-Length and Transfer-Encoding"));
  relay_stop (&relay);
  peer_free (peer);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/keypool/http1/pool/reuse", test_pool_reuse);
  g_test_add_func ("/keypool/http1/pool/no-reuse", test_pool_no_reuse);
  g_test_add_func ("/keypool/http1/pool/bursts", test_pool_bursts);
  g_test_add_func ("/keypool/http1/pool/byte-writes", test_pool_byte_writes);
  g_test_add_func ("/keypool/http1/pool/stale", test_pool_stale);
  g_test_add_func ("/keypool/http1/pool/errors", test_pool_errors);
  g_test_add_func ("/keypool/http1/pool/compressed", test_pool_compressed);
  g_test_add_func ("/keypool/http1/pool/cancel-mid-body", test_pool_cancel_mid_body);
  g_test_add_func ("/keypool/http1/pool/queue", test_pool_queue);
  g_test_add_func ("/keypool/http1/soup-server", test_soup_server);
  g_test_add_func ("/keypool/http1/tls", test_tls);
  g_test_add_func ("/keypool/http1/relay/reuse", test_relay_reuse);
  g_test_add_func ("/keypool/http1/relay/never-answers", test_relay_never_answers);
  g_test_add_func ("/keypool/http1/relay/bad-answer", test_relay_bad_answer);

  return g_test_run ();
}
