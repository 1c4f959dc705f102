/* test-http1-server.c: the local HTTP/1.1 server, driven directly
 *
 * A KpHttp1Server with a small owner of its own, on a socket of its own,
 * and raw client sockets that send what a test wants and parse what comes
 * back strictly: keep-alive, pipelining, paused and streamed answers,
 * chunked request bodies, refusals, limits, deadlines and clients that go.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include "config.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "http/kp-http1-server.h"
#include "kp-test-raw.h"
#include "kp-test-util.h"

#define SERVER_NAME "keypool-test/1"
#define WAIT_MS     KP_RAW_WAIT_MS

/* The server buffers at most this much of an answer its client leaves
 * unread (OUT_CAP in kp-http1-server.c).
 */
#define OUT_CAP     (16 * 1024 * 1024)
#define BIG_STEP    (1024 * 1024)
#define BIG_MAX     (256 * 1024 * 1024)

typedef struct
{
  KpHttp1ServerLimits  limits;    /* what the owner tells the server */
  KpHttp1Server       *server;
  GSocket             *socket;
  guint16              port;

  guint                n_got_head;
  guint                n_handled;
  guint                n_finished;
  guint                n_done;      /* done funcs called */
  guint                n_gone;      /* of those, with gone */
  GArray              *body_lengths; /* of gsize, as got_body told them */
  GPtrArray           *held;        /* exchanges a handler paused */
  guint                source_id;   /* the timeout or idle that answers them */
  guint                stream_step;

  /* /big */
  char                *big_chunk;
  gsize                big_written;

  /* A client the done func and the unpause look at, or -1. */
  int                  peek_fd;
  gssize               peeked_at_done;
  gssize               peeked_before_unpause;
  guint                done_before_unpause;
  guint                done_in_unpause;

  /* The done func disconnects the server, as a relay's last reference that
   * ends the gateway does.
   */
  gboolean             disconnect_in_done;
} Fixture;

/* The server's owner -------------------------------------------------------- */

/* Bytes waiting on @fd, unread. */
static gssize
peek_waiting (int fd)
{
  char buffer[64 * 1024];
  gssize n;

  do
    n = recv (fd, buffer, sizeof buffer, MSG_PEEK | MSG_DONTWAIT);
  while (n < 0 && errno == EINTR);
  return n < 0 ? 0 : n;
}

static void
on_limits (gpointer             user_data,
           KpHttp1ServerLimits *limits)
{
  Fixture *fixture = user_data;

  *limits = fixture->limits;
}

static void
on_done (KpExchange *exchange,
         gboolean    gone,
         gpointer    user_data)
{
  Fixture *fixture = user_data;

  fixture->n_done++;
  if (gone)
    fixture->n_gone++;
  if (fixture->peek_fd >= 0)
    fixture->peeked_at_done = peek_waiting (fixture->peek_fd);
  if (fixture->disconnect_in_done)
    kp_http1_server_disconnect (fixture->server);
}

static void
on_got_head (KpExchange *exchange,
             gpointer    user_data)
{
  Fixture *fixture = user_data;
  static const char refusal[] = "too large\n";

  fixture->n_got_head++;
  kp_exchange_set_done_func (exchange, on_done, fixture);
  if (g_str_equal (kp_exchange_get_path (exchange), "/refuse"))
    {
      g_autoptr(GBytes) body = g_bytes_new_static (refusal, sizeof refusal - 1);

      kp_exchange_set_status (exchange, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE);
      kp_exchange_set_response (exchange, "text/plain", body);
    }
}

static void
on_got_body (KpExchange *exchange,
             gsize       length,
             gpointer    user_data)
{
  Fixture *fixture = user_data;

  g_array_append_val (fixture->body_lengths, length);
}

static KpExchange *
last_held (Fixture *fixture)
{
  g_assert_cmpuint (fixture->held->len, >, 0);
  return g_ptr_array_index (fixture->held, fixture->held->len - 1);
}

static gboolean
unpause_later (gpointer user_data)
{
  Fixture *fixture = user_data;
  KpExchange *exchange = last_held (fixture);

  fixture->source_id = 0;
  fixture->done_before_unpause = fixture->n_done;
  if (fixture->peek_fd >= 0)
    fixture->peeked_before_unpause = peek_waiting (fixture->peek_fd);
  kp_exchange_unpause (exchange);
  fixture->done_in_unpause = fixture->n_done - fixture->done_before_unpause;
  return G_SOURCE_REMOVE;
}

/* One part of the stream a call, then its end. */
static gboolean
stream_later (gpointer user_data)
{
  Fixture *fixture = user_data;
  static const char *const parts[] = { "hello ", "streamed ", "world" };
  KpExchange *exchange = last_held (fixture);

  if (fixture->stream_step < G_N_ELEMENTS (parts))
    {
      const char *part = parts[fixture->stream_step++];

      kp_exchange_write_chunk (exchange, part, strlen (part));
      return G_SOURCE_CONTINUE;
    }
  kp_exchange_end_chunks (exchange);
  fixture->source_id = 0;
  return G_SOURCE_REMOVE;
}

/* A mebibyte a call, until the client is gone or BIG_MAX is written. */
static gboolean
big_later (gpointer user_data)
{
  Fixture *fixture = user_data;
  KpExchange *exchange = last_held (fixture);

  if (!kp_exchange_is_over (exchange) && fixture->big_written < BIG_MAX)
    {
      kp_exchange_write_chunk (exchange, fixture->big_chunk, BIG_STEP);
      fixture->big_written += BIG_STEP;
      return G_SOURCE_CONTINUE;
    }
  kp_exchange_end_chunks (exchange);
  fixture->source_id = 0;
  return G_SOURCE_REMOVE;
}

static void
hold (Fixture    *fixture,
      KpExchange *exchange)
{
  kp_exchange_pause (exchange);
  g_ptr_array_add (fixture->held, kp_exchange_ref (exchange));
}

static void
on_handle (KpExchange *exchange,
           gpointer    user_data)
{
  Fixture *fixture = user_data;
  const char *path = kp_exchange_get_path (exchange);

  fixture->n_handled++;
  /* The server answers 500 to a status never set. */
  kp_exchange_set_status (exchange, SOUP_STATUS_OK);
  if (g_str_equal (path, "/echo"))
    {
      g_autoptr(GBytes) body = kp_exchange_take_body (exchange);

      kp_exchange_set_response (exchange, "application/octet-stream", body);
    }
  else if (g_str_equal (path, "/hello"))
    kp_exchange_take_response (exchange, "text/plain", g_strdup ("hello"), 5);
  else if (g_str_equal (path, "/pause"))
    {
      hold (fixture, exchange);
      kp_exchange_take_response (exchange, "text/plain", g_strdup ("later"), 5);
      g_assert_cmpuint (fixture->source_id, ==, 0);
      fixture->source_id = g_timeout_add (100, unpause_later, fixture);
    }
  else if (g_str_equal (path, "/hold"))
    hold (fixture, exchange);
  else if (g_str_equal (path, "/stream"))
    {
      hold (fixture, exchange);
      fixture->stream_step = 0;
      g_assert_cmpuint (fixture->source_id, ==, 0);
      fixture->source_id = g_idle_add (stream_later, fixture);
    }
  else if (g_str_equal (path, "/big"))
    {
      hold (fixture, exchange);
      g_assert_cmpuint (fixture->source_id, ==, 0);
      fixture->source_id = g_idle_add (big_later, fixture);
    }
  else if (g_str_equal (path, "/bad-header"))
    {
      SoupMessageHeaders *headers = kp_exchange_get_response_headers (exchange);

      /* libsoup 3.2 refuses the value itself (unless built without
       * checks); the server must not write it either way.
       */
      g_test_expect_message ("libsoup", G_LOG_LEVEL_CRITICAL, "*strpbrk*");
      soup_message_headers_replace (headers, "X-Bad", "a\r\nX-Injected: 1");
      g_test_assert_expected_messages ();
      soup_message_headers_replace (headers, "X-Good", "yes");
      kp_exchange_take_response (exchange, "text/plain", g_strdup ("ok"), 2);
    }
  else
    kp_exchange_set_status (exchange, SOUP_STATUS_NOT_FOUND);
}

static void
on_finished (KpExchange *exchange,
             gpointer    user_data)
{
  Fixture *fixture = user_data;

  fixture->n_finished++;
}

static const KpHttp1ServerFuncs funcs = {
  .limits = on_limits,
  .got_head = on_got_head,
  .got_body = on_got_body,
  .handle = on_handle,
  .finished = on_finished,
};

static void
fixture_setup (Fixture       *fixture,
               gconstpointer  data)
{
  g_autoptr(GSocketAddress) address = g_inet_socket_address_new_from_string ("127.0.0.1", 0);
  g_autoptr(GSocketAddress) bound = NULL;
  g_autoptr(GError) error = NULL;

  fixture->limits.max_connections = 16;
  fixture->body_lengths = g_array_new (FALSE, FALSE, sizeof (gsize));
  fixture->held = g_ptr_array_new_with_free_func ((GDestroyNotify)kp_exchange_unref);
  fixture->peek_fd = -1;

  fixture->socket = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
                                  G_SOCKET_PROTOCOL_TCP, &error);
  g_assert_no_error (error);
  g_socket_bind (fixture->socket, address, TRUE, &error);
  g_assert_no_error (error);
  g_socket_set_listen_backlog (fixture->socket, 16);
  g_socket_listen (fixture->socket, &error);
  g_assert_no_error (error);
  bound = g_socket_get_local_address (fixture->socket, &error);
  g_assert_no_error (error);
  fixture->port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));

  fixture->server = kp_http1_server_new (&funcs, fixture, SERVER_NAME);
  g_assert_true (kp_http1_server_listen (fixture->server, fixture->socket, &error));
  g_assert_no_error (error);
}

static void
fixture_teardown (Fixture       *fixture,
                  gconstpointer  data)
{
  g_clear_handle_id (&fixture->source_id, g_source_remove);
  g_clear_pointer (&fixture->server, kp_http1_server_free);
  g_clear_pointer (&fixture->held, g_ptr_array_unref);
  g_clear_pointer (&fixture->body_lengths, g_array_unref);
  g_clear_pointer (&fixture->big_chunk, g_free);
  g_clear_object (&fixture->socket);
}

/* A whole answer: its status, length and the server's own headers. */
static void
assert_whole (KpRawAnswer     *answer,
              guint       status,
              const char *body)
{
  g_autofree char *length = g_strdup_printf ("%" G_GSIZE_FORMAT, strlen (body));
  g_autoptr(GDateTime) date = NULL;

  g_assert_cmpuint (answer->status, ==, status);
  g_assert_false (answer->chunked);
  kp_raw_assert_header (answer, "Content-Length", length);
  g_assert_cmpstr (answer->body->str, ==, body);
  kp_raw_assert_header (answer, "Server", SERVER_NAME);
  g_assert_nonnull (soup_message_headers_get_one (answer->headers, "Date"));
  date = soup_date_time_new_from_http_string (soup_message_headers_get_one (answer->headers,
                                                                            "Date"));
  g_assert_nonnull (date);
}

/* Refused by the server: @status, and the connection closes after it. */
static void
assert_refused (Fixture    *fixture,
                const char *request,
                guint       status)
{
  KpRaw raw = { 0 };
  KpRawAnswer *answer;

  kp_raw_open (&raw, fixture->port);
  kp_raw_send (&raw, request);
  kp_raw_wait_closed (&raw);
  g_assert_cmpuint (raw.answers->len, ==, 1);
  answer = g_ptr_array_index (raw.answers, 0);
  g_assert_cmpuint (answer->status, ==, status);
  kp_raw_assert_header (answer, "Connection", "close");
  g_assert_cmpuint (raw.used, ==, raw.got->len);
  kp_raw_clear (&raw);
}

/* Tests ---------------------------------------------------------------------- */

/* Two requests, one after the other, on one connection. */
static void
test_keep_alive (Fixture       *fixture,
                 gconstpointer  data)
{
  KpRaw raw = { 0 };

  kp_raw_open (&raw, fixture->port);
  kp_raw_send (&raw, "GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  assert_whole (kp_raw_wait_answer (&raw, 1), 200, "hello");
  g_assert_null (soup_message_headers_get_one (kp_raw_wait_answer (&raw, 1)->headers, "Connection"));
  kp_raw_send (&raw, "POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 4\r\n\r\nping");
  assert_whole (kp_raw_wait_answer (&raw, 2), 200, "ping");
  g_assert_true (g_str_has_prefix (raw.got->str, "HTTP/1.1 200 OK\r\n"));
  g_assert_false (raw.closed);

  kp_raw_wait_count (&fixture->n_finished, 2);
  g_assert_cmpuint (fixture->n_got_head, ==, 2);
  g_assert_cmpuint (fixture->n_handled, ==, 2);
  g_assert_cmpuint (fixture->n_done, ==, 2);
  g_assert_cmpuint (fixture->n_gone, ==, 0);
  g_assert_cmpuint (kp_http1_server_count (fixture->server), ==, 1);
  kp_raw_clear (&raw);
}

/* Requests sent at once are answered in order, one paused among them. */
static void
test_pipelining (Fixture       *fixture,
                 gconstpointer  data)
{
  KpRaw raw = { 0 };

  kp_raw_open (&raw, fixture->port);
  kp_raw_send (&raw,
            "POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 3\r\n\r\nabc"
            "GET /pause HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
            "POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 3\r\n\r\ndef");
  assert_whole (kp_raw_wait_answer (&raw, 1), 200, "abc");
  assert_whole (kp_raw_wait_answer (&raw, 2), 200, "later");
  assert_whole (kp_raw_wait_answer (&raw, 3), 200, "def");
  g_assert_cmpuint (raw.used, ==, raw.got->len);
  kp_raw_wait_count (&fixture->n_finished, 3);
  g_assert_cmpuint (fixture->n_done, ==, 3);
  g_assert_cmpuint (fixture->n_gone, ==, 0);
  g_assert_false (raw.closed);
  kp_raw_clear (&raw);
}

/* A paused answer goes out at unpause; done is told once it is written,
 * from the server's own dispatch.
 */
static void
test_paused (Fixture       *fixture,
             gconstpointer  data)
{
  KpRaw raw = { 0 };

  kp_raw_open (&raw, fixture->port);
  fixture->peek_fd = raw.fd;
  fixture->peeked_before_unpause = -1;
  fixture->peeked_at_done = -1;
  kp_raw_send (&raw, "GET /pause HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  kp_raw_wait_count (&fixture->n_done, 1);

  /* Nothing came, and nothing was done, before the unpause. */
  g_assert_cmpint (fixture->peeked_before_unpause, ==, 0);
  g_assert_cmpuint (fixture->done_before_unpause, ==, 0);
  g_assert_cmpuint (fixture->done_in_unpause, ==, 0);
  g_assert_cmpuint (fixture->n_gone, ==, 0);

  assert_whole (kp_raw_wait_answer (&raw, 1), 200, "later");
  /* When done was told, the whole answer was there for the client. */
  g_assert_cmpint (fixture->peeked_at_done, ==, (gssize)raw.got->len);
  kp_raw_wait_count (&fixture->n_finished, 1);
  fixture->peek_fd = -1;
  kp_raw_clear (&raw);
}

/* A stream of chunks: a chunked body on HTTP/1.1, the bare body until the
 * close on HTTP/1.0.
 */
static void
test_streamed (Fixture       *fixture,
               gconstpointer  data)
{
  KpRaw raw = { 0 };
  KpRawAnswer *answer;

  kp_raw_open (&raw, fixture->port);
  kp_raw_send (&raw, "GET /stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  answer = kp_raw_wait_answer (&raw, 1);
  g_assert_cmpuint (answer->status, ==, 200);
  g_assert_true (answer->chunked);
  g_assert_cmpstr (answer->body->str, ==, "hello streamed world");
  kp_raw_assert_header (answer, "Server", SERVER_NAME);
  g_assert_nonnull (strstr (raw.got->str, "\r\n\r\n6\r\nhello \r\n9\r\nstreamed \r\n5\r\nworld\r\n"
                                          "0\r\n\r\n"));
  kp_raw_wait_count (&fixture->n_done, 1);
  g_assert_cmpuint (fixture->n_gone, ==, 0);

  /* The connection is kept alive. */
  kp_raw_send (&raw, "GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  assert_whole (kp_raw_wait_answer (&raw, 2), 200, "hello");
  kp_raw_clear (&raw);

  kp_raw_open (&raw, fixture->port);
  kp_raw_send (&raw, "GET /stream HTTP/1.0\r\n\r\n");
  kp_raw_wait_closed (&raw);
  g_assert_cmpuint (raw.answers->len, ==, 1);
  answer = g_ptr_array_index (raw.answers, 0);
  g_assert_cmpuint (answer->status, ==, 200);
  g_assert_false (answer->chunked);
  g_assert_null (soup_message_headers_get_one (answer->headers, "Content-Length"));
  kp_raw_assert_header (answer, "Connection", "close");
  g_assert_cmpstr (answer->body->str, ==, "hello streamed world");
  kp_raw_clear (&raw);

  /* Kept alive by an HTTP/1.0 client, a stream still ends with the close. */
  kp_raw_open (&raw, fixture->port);
  kp_raw_send (&raw, "GET /stream HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  kp_raw_wait_closed (&raw);
  g_assert_cmpuint (raw.answers->len, ==, 1);
  answer = g_ptr_array_index (raw.answers, 0);
  g_assert_false (answer->chunked);
  g_assert_null (soup_message_headers_get_one (answer->headers, "Content-Length"));
  g_assert_cmpstr (answer->body->str, ==, "hello streamed world");
  kp_raw_wait_count (&fixture->n_done, 4);
  g_assert_cmpuint (fixture->n_gone, ==, 0);
  kp_raw_clear (&raw);
}

/* A client that leaves while its answer is paused: done hears it is gone. */
static void
test_gone_while_paused (Fixture       *fixture,
                        gconstpointer  data)
{
  KpRaw raw = { 0 };

  kp_raw_open (&raw, fixture->port);
  kp_raw_send (&raw, "GET /hold HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  kp_raw_wait_count (&fixture->n_handled, 1);
  g_assert_cmpuint (fixture->n_done, ==, 0);
  kp_raw_clear (&raw);

  kp_raw_wait_count (&fixture->n_done, 1);
  g_assert_cmpuint (fixture->n_gone, ==, 1);
  g_assert_cmpuint (fixture->n_finished, ==, 1);
  g_assert_true (kp_exchange_is_over (last_held (fixture)));
  g_assert_cmpuint (kp_http1_server_count (fixture->server), ==, 0);

  /* Answering now is no harm. */
  kp_exchange_unpause (last_held (fixture));
  kp_exchange_write_chunk (last_held (fixture), "late", 4);
  kp_exchange_end_chunks (last_held (fixture));
  g_assert_cmpuint (fixture->n_done, ==, 1);
  g_assert_cmpuint (fixture->n_finished, ==, 1);
}

static gboolean
body_lengths_reached (gpointer data)
{
  Fixture *fixture = data;

  return fixture->body_lengths->len >= 1 &&
         g_array_index (fixture->body_lengths, gsize, fixture->body_lengths->len - 1) >= 5;
}

/* A chunked request body arrives in parts; a malformed one is refused. */
static void
test_chunked_request (Fixture       *fixture,
                      gconstpointer  data)
{
  KpRaw raw = { 0 };

  kp_raw_open (&raw, fixture->port);
  kp_raw_send (&raw, "POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                  "5\r\nhello\r\n");
  g_assert_true (kp_test_spin_until (body_lengths_reached, fixture, WAIT_MS));
  g_assert_cmpuint (fixture->n_handled, ==, 0);
  kp_raw_send (&raw, "6;ext=1\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n");
  assert_whole (kp_raw_wait_answer (&raw, 1), 200, "hello world");

  g_assert_cmpuint (fixture->body_lengths->len, >=, 2);
  for (guint i = 1; i < fixture->body_lengths->len; i++)
    g_assert_cmpuint (g_array_index (fixture->body_lengths, gsize, i), >,
                      g_array_index (fixture->body_lengths, gsize, i - 1));
  g_assert_cmpuint (g_array_index (fixture->body_lengths, gsize, fixture->body_lengths->len - 1),
                    ==, 11);

  /* The connection is kept alive. */
  kp_raw_send (&raw, "GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  assert_whole (kp_raw_wait_answer (&raw, 2), 200, "hello");
  kp_raw_clear (&raw);

  assert_refused (fixture,
                  "POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                  "zz\r\nhello\r\n0\r\n\r\n",
                  400);
  kp_raw_wait_count (&fixture->n_finished, 3);
  g_assert_cmpuint (fixture->n_handled, ==, 2);
  g_assert_cmpuint (fixture->n_gone, ==, 0);
}

/* A request refused at its head: the answer goes out without its body
 * being read, and the connection closes after it.
 */
static void
test_refused_head (Fixture       *fixture,
                   gconstpointer  data)
{
  KpRaw raw = { 0 };
  KpRawAnswer *answer;

  kp_raw_open (&raw, fixture->port);
  kp_raw_send (&raw, "POST /refuse HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1048576\r\n\r\n");
  kp_raw_wait_closed (&raw);
  g_assert_cmpuint (raw.answers->len, ==, 1);
  answer = g_ptr_array_index (raw.answers, 0);
  assert_whole (answer, 413, "too large\n");
  kp_raw_assert_header (answer, "Connection", "close");
  g_assert_cmpuint (fixture->n_handled, ==, 0);
  kp_raw_wait_count (&fixture->n_finished, 1);
  g_assert_cmpuint (fixture->n_done, ==, 1);
  g_assert_cmpuint (fixture->n_gone, ==, 0);
  kp_raw_clear (&raw);
}

/* `Expect: 100-continue`: the interim answer before the body is sent. */
static void
test_expect_continue (Fixture       *fixture,
                      gconstpointer  data)
{
  KpRaw raw = { 0 };
  KpRawAnswer *answer;

  kp_raw_open (&raw, fixture->port);
  kp_raw_send (&raw, "POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nExpect: 100-continue\r\n"
                  "Content-Length: 5\r\n\r\n");
  answer = kp_raw_wait_answer (&raw, 1);
  g_assert_cmpuint (answer->status, ==, 100);
  g_assert_true (g_str_has_prefix (raw.got->str, "HTTP/1.1 100 Continue\r\n\r\n"));
  g_assert_cmpuint (fixture->n_handled, ==, 0);
  kp_raw_send (&raw, "hello");
  assert_whole (kp_raw_wait_answer (&raw, 2), 200, "hello");
  kp_raw_clear (&raw);
}

/* A head too large, or with too many lines: 431, then the close. */
static void
test_head_limits (Fixture       *fixture,
                  gconstpointer  data)
{
  g_autoptr(GString) request = g_string_new ("GET /hello HTTP/1.1\r\nX-Long: ");
  KpRaw raw = { 0 };

  /* No blank line, ever. */
  for (guint i = 0; i < 70 * 1024; i++)
    g_string_append_c (request, 'a');
  kp_raw_open (&raw, fixture->port);
  kp_raw_send_len (&raw, request->str, request->len);
  kp_raw_wait_closed (&raw);
  g_assert_cmpuint (raw.answers->len, ==, 1);
  g_assert_cmpuint (((KpRawAnswer *)g_ptr_array_index (raw.answers, 0))->status, ==, 431);
  g_assert_true (g_str_has_prefix (raw.got->str,
                                   "HTTP/1.1 431 Request Header Fields Too Large\r\n"));
  kp_raw_clear (&raw);

  /* 128 header lines are fine... */
  g_string_assign (request, "GET /hello HTTP/1.1\r\n");
  for (guint i = 0; i < 128; i++)
    g_string_append_printf (request, "X-Header-%u: %u\r\n", i, i);
  kp_raw_open (&raw, fixture->port);
  kp_raw_send_len (&raw, request->str, request->len);
  kp_raw_send (&raw, "\r\n");
  assert_whole (kp_raw_wait_answer (&raw, 1), 200, "hello");
  kp_raw_clear (&raw);

  /* ...one more is not. */
  g_string_append (request, "X-Header-128: 128\r\n");
  g_string_append (request, "\r\n");
  assert_refused (fixture, request->str, 431);

  /* The server refused them before got_head, and still said finished. */
  g_assert_cmpuint (fixture->n_got_head, ==, 1);
  kp_raw_wait_count (&fixture->n_finished, 3);
}

/* Heads the server refuses itself. */
static void
test_bad_heads (Fixture       *fixture,
                gconstpointer  data)
{
  assert_refused (fixture, "GARBAGE\r\n\r\n", 400);
  assert_refused (fixture, "GET hello HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 400);
  assert_refused (fixture,
                  "POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
                  "Content-Length: 5\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
                  400);
  assert_refused (fixture,
                  "POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: gzip\r\n\r\n",
                  501);
  assert_refused (fixture,
                  "POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5x\r\n\r\nhello",
                  400);
  assert_refused (fixture,
                  "POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: -5\r\n\r\nhello",
                  400);
  g_assert_cmpuint (fixture->n_got_head, ==, 0);
  g_assert_cmpuint (fixture->n_handled, ==, 0);
  kp_raw_wait_count (&fixture->n_finished, 6);
}

/* HEAD: the length of the body that is not sent; the connection goes on. */
static void
test_head_method (Fixture       *fixture,
                  gconstpointer  data)
{
  KpRaw raw = { 0 };
  KpRawAnswer *answer;

  kp_raw_open (&raw, fixture->port);
  raw.head_next = TRUE;
  kp_raw_send (&raw, "HEAD /hello HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  answer = kp_raw_wait_answer (&raw, 1);
  g_assert_cmpuint (answer->status, ==, 200);
  kp_raw_assert_header (answer, "Content-Length", "5");
  /* The next answer must start right after the head. */
  kp_raw_send (&raw, "GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  assert_whole (kp_raw_wait_answer (&raw, 2), 200, "hello");
  g_assert_cmpuint (raw.used, ==, raw.got->len);
  g_assert_false (raw.closed);
  kp_raw_clear (&raw);
}

/* `Connection: close` from the client: said back, then the close. */
static void
test_connection_close (Fixture       *fixture,
                       gconstpointer  data)
{
  KpRaw raw = { 0 };
  KpRawAnswer *answer;

  kp_raw_open (&raw, fixture->port);
  kp_raw_send (&raw, "GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
  kp_raw_wait_closed (&raw);
  g_assert_cmpuint (raw.answers->len, ==, 1);
  answer = g_ptr_array_index (raw.answers, 0);
  assert_whole (answer, 200, "hello");
  kp_raw_assert_header (answer, "Connection", "close");
  g_assert_cmpuint (raw.used, ==, raw.got->len);
  kp_raw_wait_count (&fixture->n_done, 1);
  g_assert_cmpuint (fixture->n_gone, ==, 0);
  kp_raw_clear (&raw);
}

static gboolean
two_counted (gpointer data)
{
  Fixture *fixture = data;

  return kp_http1_server_count (fixture->server) >= 2;
}

/* Past max_connections a client gets the busy answer and the close. */
static void
test_max_connections (Fixture       *fixture,
                      gconstpointer  data)
{
  KpRaw a = { 0 }, b = { 0 }, c = { 0 };
  KpRawAnswer *answer;

  fixture->limits.max_connections = 2;
  kp_raw_open (&a, fixture->port);
  kp_raw_open (&b, fixture->port);
  g_assert_true (kp_test_spin_until (two_counted, fixture, WAIT_MS));

  kp_raw_open (&c, fixture->port);
  kp_raw_wait_closed (&c);
  g_assert_cmpuint (c.answers->len, ==, 1);
  answer = g_ptr_array_index (c.answers, 0);
  g_assert_cmpuint (answer->status, ==, 503);
  kp_raw_assert_header (answer, "Connection", "close");
  kp_raw_assert_header (answer, "Retry-After", "1");
  g_assert_nonnull (strstr (answer->body->str, "\"server_busy\""));
  g_assert_cmpuint (kp_http1_server_count (fixture->server), ==, 2);
  g_assert_cmpuint (fixture->n_finished, ==, 0);
  kp_raw_clear (&c);

  /* The first two are still served. */
  g_assert_false (kp_raw_pump (&a));
  g_assert_false (kp_raw_pump (&b));
  kp_raw_send (&b, "GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  assert_whole (kp_raw_wait_answer (&b, 1), 200, "hello");
  g_assert_cmpuint (kp_http1_server_count (fixture->server), ==, 2);
  kp_raw_clear (&a);
  kp_raw_clear (&b);
}

/* A client that reads nothing of a long stream: the server buffers at most
 * OUT_CAP, then gives the client up.
 */
static void
test_unread_stream (Fixture       *fixture,
                    gconstpointer  data)
{
  KpRaw raw = { 0 };

  fixture->big_chunk = g_malloc (BIG_STEP);
  memset (fixture->big_chunk, 'x', BIG_STEP);
  kp_raw_open (&raw, fixture->port);
  kp_raw_send (&raw, "GET /big HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  kp_raw_wait_count (&fixture->n_done, 1);
  g_assert_cmpuint (fixture->n_gone, ==, 1);
  g_assert_cmpuint (fixture->n_finished, ==, 1);
  g_assert_true (kp_exchange_is_over (last_held (fixture)));
  /* More than the cap went, yet far from all: the kernel's buffers on
   * both sides hold the rest.
   */
  g_assert_cmpuint (fixture->big_written, >, OUT_CAP);
  g_assert_cmpuint (fixture->big_written, <, OUT_CAP + 64 * 1024 * 1024);
  g_assert_cmpuint (kp_http1_server_count (fixture->server), ==, 0);
  kp_raw_wait_closed (&raw);
  kp_raw_clear (&raw);
}

/* A connection that sends nothing is closed at header_ms. */
static void
test_header_deadline (Fixture       *fixture,
                      gconstpointer  data)
{
  KpRaw raw = { 0 };

  fixture->limits.header_ms = 200;
  kp_raw_open (&raw, fixture->port);
  kp_raw_wait_closed (&raw);
  g_assert_cmpuint (raw.got->len, ==, 0);
  g_assert_cmpuint (fixture->n_finished, ==, 0);
  g_assert_cmpuint (kp_http1_server_count (fixture->server), ==, 0);
  kp_raw_clear (&raw);
}

/* A line break in a response header's value splits no answer. */
static void
test_header_injection (Fixture       *fixture,
                       gconstpointer  data)
{
  KpRaw raw = { 0 };
  KpRawAnswer *answer;

  kp_raw_open (&raw, fixture->port);
  kp_raw_send (&raw, "GET /bad-header HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  answer = kp_raw_wait_answer (&raw, 1);
  assert_whole (answer, 200, "ok");
  kp_raw_assert_header (answer, "X-Good", "yes");
  g_assert_null (soup_message_headers_get_one (answer->headers, "X-Injected"));
  g_assert_null (strstr (raw.got->str, "X-Injected"));
  kp_raw_clear (&raw);
}

/* Disconnecting with an exchange under way: its done hears the client is
 * gone, and the server can go.
 */
static void
test_disconnect (Fixture       *fixture,
                 gconstpointer  data)
{
  KpRaw raw = { 0 };

  kp_raw_open (&raw, fixture->port);
  kp_raw_send (&raw, "GET /hold HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  kp_raw_wait_count (&fixture->n_handled, 1);
  g_assert_cmpuint (fixture->n_done, ==, 0);

  kp_http1_server_disconnect (fixture->server);
  g_assert_true (kp_http1_server_is_stopped (fixture->server));
  g_assert_cmpuint (fixture->n_done, ==, 1);
  g_assert_cmpuint (fixture->n_gone, ==, 1);
  g_assert_true (kp_exchange_is_over (last_held (fixture)));
  g_assert_cmpuint (kp_http1_server_count (fixture->server), ==, 0);
  kp_raw_wait_closed (&raw);
  g_assert_cmpuint (raw.got->len, ==, 0);

  /* The owner may still answer; nothing happens. */
  kp_exchange_take_response (last_held (fixture), "text/plain", g_strdup ("late"), 4);
  kp_exchange_unpause (last_held (fixture));
  g_assert_cmpuint (fixture->n_done, ==, 1);
  kp_raw_clear (&raw);

  g_clear_pointer (&fixture->server, kp_http1_server_free);
  g_ptr_array_set_size (fixture->held, 0);
}

/* The server disconnected from inside an exchange's done func, while
 * another connection waits idle: both close, nothing is told twice.
 */
static void
test_disconnect_in_done (Fixture       *fixture,
                         gconstpointer  data)
{
  KpRaw raw = { 0 };
  KpRaw idle = { 0 };

  kp_raw_open (&idle, fixture->port);
  kp_raw_open (&raw, fixture->port);
  fixture->disconnect_in_done = TRUE;
  kp_raw_send (&raw, "GET /hold HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  kp_raw_wait_count (&fixture->n_handled, 1);
  kp_exchange_take_response (last_held (fixture), "text/plain", g_strdup ("answer"), 6);
  kp_exchange_unpause (last_held (fixture));

  kp_raw_wait_count (&fixture->n_done, 1);
  g_assert_cmpuint (fixture->n_gone, ==, 0);
  g_assert_true (kp_http1_server_is_stopped (fixture->server));
  g_assert_cmpuint (kp_http1_server_count (fixture->server), ==, 0);
  kp_raw_wait_closed (&raw);
  kp_test_assert_contains (raw.got->str, "\r\n\r\nanswer");
  kp_raw_wait_closed (&idle);
  g_assert_cmpuint (fixture->n_done, ==, 1);

  kp_raw_clear (&raw);
  kp_raw_clear (&idle);
  g_clear_pointer (&fixture->server, kp_http1_server_free);
  g_ptr_array_set_size (fixture->held, 0);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

#define ADD(path, func) \
  g_test_add ("/keypool/http1-server/" path, Fixture, NULL, fixture_setup, func, fixture_teardown)

  ADD ("keep-alive", test_keep_alive);
  ADD ("pipelining", test_pipelining);
  ADD ("paused", test_paused);
  ADD ("streamed", test_streamed);
  ADD ("gone-while-paused", test_gone_while_paused);
  ADD ("chunked-request", test_chunked_request);
  ADD ("refused-head", test_refused_head);
  ADD ("expect-continue", test_expect_continue);
  ADD ("head-limits", test_head_limits);
  ADD ("bad-heads", test_bad_heads);
  ADD ("head-method", test_head_method);
  ADD ("connection-close", test_connection_close);
  ADD ("max-connections", test_max_connections);
  ADD ("unread-stream", test_unread_stream);
  ADD ("header-deadline", test_header_deadline);
  ADD ("header-injection", test_header_injection);
  ADD ("disconnect", test_disconnect);
  ADD ("disconnect-in-done", test_disconnect_in_done);

#undef ADD

  return g_test_run ();
}
