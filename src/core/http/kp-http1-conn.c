/* kp-http1-conn.c: one keep-alive connection to a provider
 *
 * A connection has one watch for its whole life, on the source all
 * sockets share (kp-poll-watch.c, which may recurse like the source it
 * replaced: GLib then does not take its descriptor out of the poll set
 * around each dispatch, which costs a wakeup write each time). It watches
 * the socket while a request is written, while its answer is awaited,
 * while the body is read, and while the connection waits idle in the pool
 * (where any sign of life means the provider closed it).
 *
 * A request goes out in one write of head and body together. Plain
 * sockets are read and written with recv() and send() directly; TLS goes
 * through the pollable streams of the TLS connection. Reads go until the
 * socket would block, so TLS bytes held inside the TLS layer are never left
 * waiting for a poll that would not announce them. A plain socket that gave
 * fewer bytes than asked for was empty then: it counts as blocked until the
 * watch is told again, which it is while bytes wait (epoll is
 * level-triggered), and a relayed chunk costs one recv() instead of two.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "kp-http1-private.h"

static void
conn_ready (KpPollWatch  *watch,
            GIOCondition  revents,
            gpointer      user_data);

KpHttp1Conn *
kp_http1_conn_new (KpHttp1Host       *host,
                   GSocketConnection *connection)
{
  KpHttp1Conn *conn = g_new0 (KpHttp1Conn, 1);
  GSocket *socket = g_socket_connection_get_socket (connection);

  conn->host = host;
  conn->connection = connection;
  conn->tls = host->tls;
  conn->fd = g_socket_get_fd (socket);
  conn->in = G_POLLABLE_INPUT_STREAM (g_io_stream_get_input_stream (G_IO_STREAM (connection)));
  conn->out = G_POLLABLE_OUTPUT_STREAM (g_io_stream_get_output_stream (G_IO_STREAM (connection)));
  conn->buffer = g_malloc (KP_HTTP1_BUFFER_SIZE);
  kp_http1_parser_init (&conn->parser);

  /* The request goes out in one write: nothing to gain from Nagle. */
  g_socket_set_option (socket, IPPROTO_TCP, TCP_NODELAY, 1, NULL);

  conn->watch = kp_poll_watch_new (conn->fd, G_IO_IN, conn_ready, conn);
  return conn;
}

void
kp_http1_conn_free (KpHttp1Conn *conn)
{
  g_assert (conn->link.data == NULL);

  kp_poll_watch_free (conn->watch);
  /* Closing the socket, not the TLS stream: a TLS close would wait to
   * write its close_notify, and nothing may block the main loop.
   */
  g_socket_close (g_socket_connection_get_socket (conn->connection), NULL);
  g_object_unref (conn->connection);
  kp_http1_parser_clear (&conn->parser);
  g_free (conn->buffer);
  g_free (conn);
}

/* Waits for room to write, or for bytes to read. While the request is
 * written, what the provider may say early is not read, so it is not
 * polled for either.
 */
static void
watch (KpHttp1Conn *conn,
       gboolean     writable)
{
  kp_poll_watch_set_events (conn->watch, writable ? G_IO_OUT : G_IO_IN);
}

/* What a recv() or send() returned, with errno: KP_HTTP1_WOULD_BLOCK for
 * EAGAIN, -1 with @error set for an error.
 */
static gssize
socket_result (gssize      n,
               const char *doing,
               GError    **error)
{
  int saved = errno;

  if (n >= 0)
    return n;
  if (saved == EAGAIN || saved == EWOULDBLOCK)
    return KP_HTTP1_WOULD_BLOCK;
  g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved),
               "Error %s the provider: %s", doing, g_strerror (saved));
  return -1;
}

/* Returns the bytes read, 0 at the end, -1 on an error or KP_HTTP1_WOULD_BLOCK. */
static gssize
conn_recv (KpHttp1Conn *conn,
           guint8      *buffer,
           gsize        size,
           GError     **error)
{
  gssize n;

  if (conn->tls)
    {
      GError *local = NULL;

      n = g_pollable_input_stream_read_nonblocking (conn->in, buffer, size, NULL, &local);
      if (n < 0 && g_error_matches (local, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
        {
          g_error_free (local);
          return KP_HTTP1_WOULD_BLOCK;
        }
      if (n < 0)
        g_propagate_error (error, local);
      return n;
    }

  if (conn->drained)
    return KP_HTTP1_WOULD_BLOCK;
  do
    n = recv (conn->fd, buffer, size, MSG_DONTWAIT);
  while (n < 0 && errno == EINTR);
  if (n > 0 && (gsize)n < size)
    conn->drained = TRUE;
  return socket_result (n, "receiving data from", error);
}

/* Writes what the socket takes of the request's head and body, from
 * conn->written on, in one call. Returns the bytes written, -1 on an error
 * or KP_HTTP1_WOULD_BLOCK.
 */
static gssize
conn_send (KpHttp1Conn *conn,
           GError     **error)
{
  KpHttp1Request *request = conn->request;
  GOutputVector vectors[2];
  guint n_vectors = 0;
  gsize written = conn->written;
  gssize n;

  for (guint i = 0; i < 2; i++)
    {
      gsize len;
      const guint8 *data = g_bytes_get_data (i == 0 ? request->head : request->body, &len);

      if (written >= len)
        {
          written -= len;
          continue;
        }
      vectors[n_vectors++] = (GOutputVector) { data + written, len - written };
      written = 0;
    }
  if (n_vectors == 0)
    return 0;

  if (conn->tls)
    {
      GError *local = NULL;
      gsize done = 0;

      switch (g_pollable_output_stream_writev_nonblocking (conn->out, vectors, n_vectors, &done,
                                                           NULL, &local))
        {
        case G_POLLABLE_RETURN_OK:
          return done;
        case G_POLLABLE_RETURN_WOULD_BLOCK:
          return KP_HTTP1_WOULD_BLOCK;
        case G_POLLABLE_RETURN_FAILED:
        default:
          g_propagate_error (error, local);
          return -1;
        }
    }

  {
    struct msghdr message = { 0 };

    /* GOutputVector has the layout of struct iovec (GIO relies on it too). */
    message.msg_iov = (struct iovec *)vectors;
    message.msg_iovlen = n_vectors;
    do
      n = sendmsg (conn->fd, &message, MSG_DONTWAIT | MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
  }
  return socket_result (n, "sending data to", error);
}

static gsize
request_size (KpHttp1Request *request)
{
  return g_bytes_get_size (request->head) + g_bytes_get_size (request->body);
}

/* Writes what the socket takes of the request. FALSE when it failed (the
 * request has been told).
 */
static gboolean
conn_write (KpHttp1Conn *conn)
{
  KpHttp1Request *request = conn->request;
  gsize len = request_size (request);

  while (conn->written < len)
    {
      g_autoptr(GError) error = NULL;
      gssize n = conn_send (conn, &error);

      if (n == KP_HTTP1_WOULD_BLOCK)
        {
          watch (conn, TRUE);
          return TRUE;
        }
      if (n < 0)
        {
          kp_http1_request_fail (request, conn, error, TRUE);
          return FALSE;
        }
      conn->written += n;
    }

  watch (conn, FALSE);
  request->state = REQUEST_HEAD;
  request->callbacks->sent (request->user_data);
  return TRUE;
}

/**
 * kp_http1_conn_start:
 *
 * Gives @conn to @request and writes it. Only a write that succeeds is
 * reported from here (callbacks->sent); a failure is reported from the
 * main loop, so that the caller's state is settled first.
 */
void
kp_http1_conn_start (KpHttp1Conn    *conn,
                     KpHttp1Request *request)
{
  gssize n;

  g_assert (conn->request == NULL);

  conn->request = request;
  conn->written = 0;
  conn->got_byte = FALSE;
  conn->drained = FALSE;
  conn->start = conn->end = 0;
  kp_http1_parser_clear (&conn->parser);
  request->conn = conn;
  request->state = REQUEST_SENDING;

  n = conn_send (conn, NULL);
  if (n < 0)
    {
      /* Blocked, or failed: the source tries again and reports. */
      watch (conn, TRUE);
      return;
    }
  conn->written = n;
  if (conn->written < request_size (request))
    {
      watch (conn, TRUE);
      return;
    }
  conn_write (conn);
}

/* Room for more of the head: the buffer grows up to the head's cap. */
static gsize
make_room (KpHttp1Conn *conn)
{
  if (conn->start > 0 && conn->start == conn->end)
    conn->start = conn->end = 0;
  if (conn->end < KP_HTTP1_BUFFER_SIZE && conn->start == 0)
    return KP_HTTP1_BUFFER_SIZE - conn->end;
  if (conn->start > 0)
    {
      memmove (conn->buffer, conn->buffer + conn->start, conn->end - conn->start);
      conn->end -= conn->start;
      conn->start = 0;
    }
  if (conn->end == KP_HTTP1_BUFFER_SIZE)
    conn->buffer = g_realloc (conn->buffer, KP_HTTP1_HEAD_MAX);
  return (conn->end < KP_HTTP1_BUFFER_SIZE ? KP_HTTP1_BUFFER_SIZE : KP_HTTP1_HEAD_MAX) - conn->end;
}

static void
conn_read_head (KpHttp1Conn *conn)
{
  KpHttp1Request *request = conn->request;

  for (;;)
    {
      g_autoptr(GError) error = NULL;
      gsize room = make_room (conn);
      gssize n;

      if (room == 0)
        {
          /* The parser refuses a head this long before the buffer is full. */
          g_assert_not_reached ();
        }

      n = conn_recv (conn, conn->buffer + conn->end, room, &error);
      if (n == KP_HTTP1_WOULD_BLOCK)
        return;
      if (n == 0)
        {
          kp_http1_parser_eof (&conn->parser, &error);
          kp_http1_request_fail (request, conn, error, !conn->got_byte);
          return;
        }
      if (n < 0)
        {
          kp_http1_request_fail (request, conn, error, !conn->got_byte);
          return;
        }

      conn->got_byte = TRUE;
      conn->end += n;

      while (conn->start < conn->end)
        {
          gssize used = kp_http1_parser_head (&conn->parser, (const char *)conn->buffer + conn->start,
                                              conn->end - conn->start, &error);

          if (used < 0)
            {
              kp_http1_request_fail (request, conn, error, FALSE);
              return;
            }
          if (used == 0)
            break;
          conn->start += used;
          if (conn->parser.state != KP_HTTP1_HEAD)
            {
              if (conn->parser.coding != KP_HTTP1_CODING_IDENTITY)
                {
                  GZlibCompressorFormat format = conn->parser.coding == KP_HTTP1_CODING_GZIP
                                                   ? G_ZLIB_COMPRESSOR_FORMAT_GZIP
                                                   : G_ZLIB_COMPRESSOR_FORMAT_ZLIB;

                  request->inflater = G_CONVERTER (g_zlib_decompressor_new (format));
                  request->coded = g_byte_array_new ();
                }
              request->state = REQUEST_BODY;
              request->callbacks->head (conn->parser.status, conn->parser.headers,
                                        request->user_data);
              return;
            }
        }
    }
}

static void
conn_ready (KpPollWatch  *poll_watch,
            GIOCondition  revents,
            gpointer      user_data)
{
  KpHttp1Conn *conn = user_data;
  KpHttp1Request *request = conn->request;

  conn->drained = FALSE;
  if (request == NULL)
    {
      /* Idle in the pool: the provider closed it, or talks out of turn. */
      if (revents != 0)
        kp_http1_host_release (conn->host, conn, FALSE);
      return;
    }

  switch (request->state)
    {
    case REQUEST_SENDING:
      /* Once written, the answer cannot be there yet: wait for the poll. */
      conn_write (conn);
      return;
    case REQUEST_HEAD:
      conn_read_head (conn);
      return;
    case REQUEST_BODY:
      request->callbacks->readable (request->user_data);
      return;
    case REQUEST_QUEUED:
    case REQUEST_CONNECTING:
    case REQUEST_DONE:
    default:
      g_assert_not_reached ();
    }
}

/* The body was read whole: the connection goes back to its pool. */
static void
conn_done (KpHttp1Conn *conn)
{
  KpHttp1Request *request = conn->request;

  request->state = REQUEST_DONE;
  request->conn = NULL;
  conn->served++;
  kp_http1_host_release (conn->host, conn,
                         conn->parser.keep_alive && conn->start == conn->end);
}

/**
 * kp_http1_conn_read_body:
 *
 * Returns: as kp_http1_request_read()
 */
gssize
kp_http1_conn_read_body (KpHttp1Conn *conn,
                         guint8      *buffer,
                         gsize        size,
                         GError     **error)
{
  KpHttp1Parser *parser = &conn->parser;

  for (;;)
    {
      gsize body_start, body_len;
      gssize used;
      gssize n;

      if (parser->state == KP_HTTP1_DONE)
        {
          conn_done (conn);
          return 0;
        }

      if (conn->start < conn->end)
        {
          used = kp_http1_parser_body (parser, conn->buffer + conn->start,
                                       MIN (conn->end - conn->start, size),
                                       &body_start, &body_len, error);
          if (used < 0)
            return -1;
          memcpy (buffer, conn->buffer + conn->start + body_start, body_len);
          conn->start += used;
          if (body_len == 0)
            continue;
          if (parser->state == KP_HTTP1_DONE)
            conn_done (conn);
          return body_len;
        }
      conn->start = conn->end = 0;

      if (parser->state == KP_HTTP1_BODY_LENGTH || parser->state == KP_HTTP1_BODY_CLOSE)
        {
          /* Plain body bytes: straight into the reader's buffer. */
          gsize want = parser->state == KP_HTTP1_BODY_LENGTH
                         ? (gsize)MIN ((guint64)size, parser->remaining) : size;

          n = conn_recv (conn, buffer, want, error);
          if (n > 0)
            {
              used = kp_http1_parser_body (parser, buffer, n, &body_start, &body_len, NULL);
              g_assert (used == n && body_start == 0 && body_len == (gsize)n);
              if (parser->state == KP_HTTP1_DONE)
                conn_done (conn);
              return n;
            }
        }
      else
        {
          n = conn_recv (conn, conn->buffer, KP_HTTP1_BUFFER_SIZE, error);
          if (n > 0)
            {
              conn->end = n;
              continue;
            }
        }

      if (n == 0)
        {
          if (!kp_http1_parser_eof (parser, error))
            return -1;
          parser->keep_alive = FALSE;
          conn_done (conn);
        }
      return n;
    }
}

/* The reader stopped before the socket would block: dispatch again soon. */
void
kp_http1_conn_again (KpHttp1Conn *conn)
{
  kp_poll_watch_again (conn->watch);
}
