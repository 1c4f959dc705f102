/* kp-http1-server.c: the local HTTP/1.1 server, its connections and exchanges
 *
 * Keypool's clients send a request and read its answer, on kept-alive
 * connections, often streamed. This server does that and no more, on the
 * epoll source all of Keypool's sockets share (kp-poll-watch.c), as the
 * upstream side does (kp-http1-conn.c).
 *
 * It replaced libsoup 3.2's server, which cost about half of the
 * instructions of a relayed request, and, in GLib 2.74, eight writes to the
 * main context's wakeup descriptor per request: every dispatch of one of its
 * socket sources took the descriptor out of the poll set and put it back.
 * It also needed a workaround each for what it did not do: count and time
 * connections, notice a client that hangs up between requests or while an
 * answer is on its way, accept again after running out of descriptors,
 * answer a refused request without reading its body, write a stream's
 * chunks in one system call each.
 *
 * A connection reads a request's head (at most KP_HTTP1_HEAD_MAX bytes and
 * KP_HTTP1_HEADERS_MAX headers), tells its owner (got_head), reads the body, tells it
 * again (handle), and writes the answer: a whole one in one system call
 * with its head, or chunks, each in one system call. What the socket does
 * not take waits in a buffer, bounded by OUT_CAP. While the answer is
 * under way the connection reads ahead at most PIPELINE_MAX bytes of a
 * client's next request; a client that hangs up meanwhile is told to the
 * exchange's owner at once.
 *
 * A client that ends its side of the connection (EOF) while its answer is
 * under way counts as gone, as one that hangs up does: coding tools cancel
 * a request by closing its connection, and the provider's request must stop
 * at once. A client that only half-closes after sending gets no answer to a
 * relayed request.
 *
 * A connection that must close (a refused body left unread, `Connection:
 * close`, an HTTP/1.0 stream) is shut down for writing after its answer and
 * drained of at most LINGER_BYTES for at most LINGER_MS before it closes:
 * closing with unread bytes makes the kernel reset the connection, and a
 * client still sending may then miss the answer.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kp-http1-server-private.h"

static void conn_process (Conn *conn);
static void conn_lost (Conn *conn, const char *why);
static void conn_linger (Conn *conn);
static void exchange_over (KpExchange *exchange, gboolean gone);
static void conn_break (Conn *conn, const char *why);
static void start_listen_watch (KpHttp1Server *self);

/* Connections -------------------------------------------------------------- */

static void
conn_ref (Conn *conn)
{
  conn->refs++;
}

static void
conn_unref (Conn *conn)
{
  g_assert (conn->refs > 0);
  if (--conn->refs > 0)
    return;
  g_assert (conn->closed);
  g_clear_pointer (&conn->in, g_byte_array_unref);
  g_clear_pointer (&conn->out, g_byte_array_unref);
  g_free (conn);
}

static const char *
state_name (ConnState state)
{
  switch (state)
    {
    case CONN_HEAD:
      return "sent no whole request headers";
    case CONN_BODY:
      return "sent no whole request body";
    case CONN_IDLE:
      return "sent no next request";
    case CONN_LINGER:
      return "did not close after its answer";
    case CONN_BUSY:
    default:
      return "was busy";
    }
}

static void
conn_set_events (Conn         *conn,
                 GIOCondition  events)
{
  if (conn->closed || conn->events == events)
    return;
  conn->events = events;
  kp_poll_watch_set_events (conn->watch, events);
}

/* Reads what the socket has wanted from its owner's limits. */
static void
conn_enter (Conn      *conn,
            ConnState  state)
{
  KpHttp1ServerLimits limits = { 0 };
  guint ms = 0;

  conn->state = state;
  if (!conn->server->stopped)
    conn->server->funcs.limits (conn->server->user_data, &limits);
  switch (state)
    {
    case CONN_HEAD:
      ms = limits.header_ms;
      break;
    case CONN_BODY:
      ms = limits.body_ms;
      break;
    case CONN_IDLE:
      ms = limits.idle_ms;
      break;
    case CONN_LINGER:
      ms = LINGER_MS;
      break;
    case CONN_BUSY:
    default:
      break;
    }
  if (ms > 0)
    kp_deadline_set_in (&conn->deadline, ms);
  else
    kp_deadline_clear (&conn->deadline);
}

/* Closes the descriptor now; the memory goes with the last reference. */
static void
conn_close (Conn *conn)
{
  KpHttp1Server *self = conn->server;

  if (conn->closed)
    return;
  g_assert (conn->exchange == NULL);
  conn->closed = TRUE;
  g_queue_unlink (&self->conns, &conn->link);
  if (conn->counted)
    self->n_counted--;
  g_clear_pointer (&conn->watch, kp_poll_watch_free);
  kp_deadline_clear (&conn->deadline);
  close (conn->fd);
  conn->fd = -1;
  conn_unref (conn);
}

static void
on_deadline (KpDeadline *deadline,
             gpointer    user_data)
{
  Conn *conn = user_data;

  g_debug ("Closing a client connection that %s in time", state_name (conn->state));
  conn_lost (conn, NULL);
}

/* Appends what @iov holds from byte @skip on to the connection's buffer. */
static void
buffer_rest (Conn         *conn,
             struct iovec *iov,
             int           n_iov,
             gsize         skip)
{
  if (conn->out == NULL)
    conn->out = g_byte_array_new ();
  for (int i = 0; i < n_iov; i++)
    {
      gsize part = MIN (skip, iov[i].iov_len);

      g_byte_array_append (conn->out, (guint8 *)iov[i].iov_base + part, iov[i].iov_len - part);
      skip -= part;
    }
}

static gboolean
out_pending (Conn *conn)
{
  return conn->out != NULL && conn->out->len > conn->out_sent;
}

static GIOCondition
wanted_events (Conn *conn)
{
  GIOCondition events = 0;

  if (out_pending (conn))
    events |= G_IO_OUT;
  /* A client's next request is read ahead, bounded: past that the watch
   * stops reading, and with it hearing of a hang-up, until the answer is out.
   */
  if (conn->state != CONN_BUSY || conn->in->len - conn->in_used < PIPELINE_MAX)
    events |= G_IO_IN;
  return events;
}

/* Writes @iov without blocking; what the socket does not take waits. FALSE
 * when the client is gone (the connection is then lost).
 */
gboolean
kp_server_conn_write (Conn         *conn,
                      struct iovec *iov,
                      int           n_iov)
{
  struct msghdr message = { 0 };
  gsize total = 0;
  gssize written;

  if (conn->closed || conn->broken)
    return FALSE;
  for (int i = 0; i < n_iov; i++)
    total += iov[i].iov_len;

  if (out_pending (conn))
    written = 0;
  else
    {
      message.msg_iov = iov;
      message.msg_iovlen = n_iov;
      do
        written = sendmsg (conn->fd, &message, MSG_NOSIGNAL | MSG_DONTWAIT);
      while (written < 0 && errno == EINTR);
      if (written < 0)
        {
          if (errno != EAGAIN && errno != EWOULDBLOCK)
            {
              conn_break (conn, g_strerror (errno));
              return FALSE;
            }
          written = 0;
        }
    }
  if ((gsize)written == total)
    return TRUE;

  buffer_rest (conn, iov, n_iov, written);
  if (conn->out->len - conn->out_sent > OUT_CAP)
    {
      /* Memory stays bounded: a client this far behind has gone. */
      conn_break (conn, "it left too much of its answer unread");
      return FALSE;
    }
  conn_set_events (conn, wanted_events (conn));
  return TRUE;
}

/* Sends what waits; FALSE when the client is gone. */
static gboolean
conn_flush (Conn *conn)
{
  gssize written;

  if (!out_pending (conn))
    return TRUE;
  do
    written = send (conn->fd, conn->out->data + conn->out_sent,
                    conn->out->len - conn->out_sent, MSG_NOSIGNAL | MSG_DONTWAIT);
  while (written < 0 && errno == EINTR);
  if (written < 0)
    {
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        return TRUE;
      conn_break (conn, g_strerror (errno));
      return FALSE;
    }
  conn->out_sent += written;
  if (conn->out_sent == conn->out->len)
    {
      g_byte_array_set_size (conn->out, 0);
      conn->out_sent = 0;
    }
  else if (conn->out_sent > conn->out->len / 2)
    {
      /* What was sent leaves only once it is half of the buffer: a client
       * that takes a little at a time costs no copy of the whole rest.
       */
      g_byte_array_remove_range (conn->out, 0, conn->out_sent);
      conn->out_sent = 0;
    }
  return TRUE;
}

/* The exchange's answer is all written: it is over once the socket has taken
 * it. Told from the connection's own dispatch, never from inside the call of
 * the owner that wrote the last bytes.
 */
void
kp_server_conn_answer_written (Conn     *conn,
                               gboolean  from_owner)
{
  KpExchange *exchange = conn->exchange;

  exchange->written = TRUE;
  if (out_pending (conn))
    return;
  if (conn->dispatching && !from_owner)
    exchange_over (exchange, FALSE);
  else
    kp_poll_watch_again (conn->watch);
}

/* After an exchange: the next request, or the end. */
static void
conn_next (Conn     *conn,
           gboolean  keep_alive)
{
  if (conn->closed)
    return;
  if (!keep_alive)
    {
      conn_linger (conn);
      return;
    }
  conn_enter (conn, conn->in->len > conn->in_used ? CONN_HEAD : CONN_IDLE);
  conn->scanned = 0;
  conn_set_events (conn, wanted_events (conn));
  /* Bytes of the next request may be here already. */
  if (conn->in->len > conn->in_used)
    kp_poll_watch_again (conn->watch);
}

/* The client is gone, or too slow: its exchange hears of it, and the
 * connection closes.
 */
static void
conn_lost (Conn       *conn,
           const char *why)
{
  if (conn->closed)
    return;
  if (why != NULL)
    g_debug ("Lost a client connection: %s", why);
  conn_ref (conn);
  if (conn->exchange != NULL)
    exchange_over (conn->exchange, TRUE);
  conn_close (conn);
  conn_unref (conn);
}

/* The connection failed, or its client fell too far behind. Inside the
 * connection's own dispatch it is lost at once; otherwise its owner is
 * writing to it right now, and hears of the loss from the next dispatch,
 * never from inside its own call.
 */
static void
conn_break (Conn       *conn,
            const char *why)
{
  if (conn->closed || conn->broken)
    return;
  if (conn->dispatching)
    {
      conn_lost (conn, why);
      return;
    }
  g_debug ("Lost a client connection: %s", why);
  conn->broken = TRUE;
  if (conn->out != NULL)
    g_byte_array_set_size (conn->out, 0);
  conn->out_sent = 0;
  shutdown (conn->fd, SHUT_RDWR);
  kp_poll_watch_again (conn->watch);
}

/* Shut down for writing once the answer is out, then drained and closed. */
static void
conn_linger (Conn *conn)
{
  if (conn->closed)
    return;
  conn_enter (conn, CONN_LINGER);
  conn->drained = 0;
  if (!out_pending (conn))
    shutdown (conn->fd, SHUT_WR);
  conn_set_events (conn, wanted_events (conn) | G_IO_IN);
}

static void
linger_ready (Conn         *conn,
              GIOCondition  revents)
{
  char buffer[READ_BLOCK];
  gssize n;

  if (out_pending (conn))
    {
      if (!conn_flush (conn))
        return;
      if (out_pending (conn))
        return;
      shutdown (conn->fd, SHUT_WR);
      conn_set_events (conn, G_IO_IN);
    }

  do
    n = recv (conn->fd, buffer, sizeof buffer, MSG_DONTWAIT);
  while (n < 0 && errno == EINTR);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && !(revents & (G_IO_HUP | G_IO_ERR)))
    return;
  if (n > 0)
    {
      conn->drained += n;
      if (conn->drained < LINGER_BYTES)
        return;
    }
  conn_close (conn);
}

/* Ends @exchange: its owner hears of it, and the connection goes on to the
 * next request, or closes.
 */
static void
exchange_over (KpExchange *exchange,
               gboolean    gone)
{
  Conn *conn = exchange->conn;
  KpHttp1Server *self;
  KpExchangeDoneFunc done = exchange->done;
  gboolean keep_alive;

  if (exchange->over)
    return;
  g_assert (conn != NULL && conn->exchange == exchange);
  self = conn->server;
  exchange->over = TRUE;
  keep_alive = !gone && exchange->keep_alive;

  /* The connection lets go first: the callbacks may end the server, and
   * with it every connection. The exchange still knows its own until they
   * return.
   */
  conn_ref (conn);
  conn->exchange = NULL;
  exchange->done = NULL;
  if (done != NULL)
    done (exchange, gone, exchange->done_data);
  if (!self->stopped)
    self->funcs.finished (exchange, self->user_data);

  exchange->conn = NULL;
  kp_exchange_unref (exchange);

  if (!gone)
    conn_next (conn, keep_alive);
  conn_unref (conn);
}

/* The owner is done with the request's head: the answer it set goes out, or
 * the body is read.
 */
static void
after_head (Conn       *conn,
            KpExchange *exchange,
            gboolean    has_body)
{
  if (exchange->status != 0)
    {
      /* Refused: a body that follows is not read. */
      if (has_body)
        exchange->keep_alive = FALSE;
      conn_enter (conn, CONN_BUSY);
      kp_exchange_send_whole (exchange, FALSE);
      return;
    }

  if (has_body)
    {
      const char *expect = soup_message_headers_get_one (exchange->request_headers, "Expect");

      /* HTTP/1.0 has no 1xx answers: its clients' expectation is ignored. */
      if (expect != NULL && g_ascii_strcasecmp (expect, "100-continue") == 0 &&
          exchange->version != SOUP_HTTP_1_0)
        {
          static const char go_on[] = "HTTP/1.1 100 Continue\r\n\r\n";
          struct iovec iov = { (char *)go_on, sizeof go_on - 1 };

          if (!kp_server_conn_write (conn, &iov, 1))
            return;
        }
      conn_enter (conn, CONN_BODY);
      return;
    }

  exchange->body_read = TRUE;
}

/* The whole request is read: the owner answers. */
static void
handle (Conn       *conn,
        KpExchange *exchange)
{
  KpHttp1Server *self = conn->server;

  conn_enter (conn, CONN_BUSY);
  conn_set_events (conn, wanted_events (conn));
  exchange->in_handler = TRUE;
  if (!self->stopped)
    self->funcs.handle (exchange, self->user_data);
  exchange->in_handler = FALSE;
  if (!exchange->over && exchange->conn != NULL && !exchange->paused && !exchange->head_written)
    kp_exchange_send_whole (exchange, FALSE);
}

/* Reading requests --------------------------------------------------------- */

static void
refuse_now (Conn       *conn,
            guint       status,
            const char *message)
{
  KpExchange *exchange = conn->exchange;
  g_autofree char *body = g_strdup_printf ("%s\n", message);

  if (exchange == NULL)
    {
      exchange = conn->exchange = kp_exchange_new (conn);
      exchange->method = SOUP_METHOD_GET;
      exchange->path = g_strdup ("/");
    }
  exchange->keep_alive = FALSE;
  exchange->status = status;
  g_clear_pointer (&exchange->response, g_bytes_unref);
  soup_message_headers_clear (exchange->response_headers);
  soup_message_headers_replace (exchange->response_headers, "Content-Type", "text/plain; charset=utf-8");
  exchange->response = g_bytes_new_take (g_steal_pointer (&body), strlen (message) + 1);
  conn_enter (conn, CONN_BUSY);
  kp_exchange_send_whole (exchange, FALSE);
}

/* Where the head ends (past its blank line), or 0. */
static gsize
find_head_end (Conn *conn)
{
  return kp_http1_find_head_end ((const char *)conn->in->data + conn->in_used,
                                 conn->in->len - conn->in_used, &conn->scanned);
}

/* Parses the head of @len bytes at the start of the input into a new
 * exchange; FALSE once the request is refused.
 */
static gboolean
parse_head (Conn     *conn,
            gsize     len,
            gboolean *has_body)
{
  const char *message = NULL;
  guint status;

  conn->exchange = kp_exchange_new (conn);
  status = kp_exchange_read_head (conn->exchange, (const char *)conn->in->data + conn->in_used,
                                  len, has_body, &message);
  if (status != SOUP_STATUS_OK)
    {
      refuse_now (conn, status, message);
      return FALSE;
    }
  return TRUE;
}

/* Takes the body's bytes from the input. */
static gboolean
read_body (Conn       *conn,
           KpExchange *exchange)
{
  KpHttp1Server *self = conn->server;
  const guint8 *data = conn->in->data + conn->in_used;
  gsize len = conn->in->len - conn->in_used;

  if (exchange->body == NULL)
    exchange->body = g_byte_array_sized_new ((guint)MIN (exchange->body_left, 16 * 1024 * 1024));

  if (!exchange->chunked_in)
    {
      gsize n = (gsize)MIN ((guint64)len, exchange->body_left);

      g_byte_array_append (exchange->body, data, (guint)n);
      conn->in_used += n;
      exchange->body_left -= n;
      exchange->body_read = exchange->body_left == 0;
      return TRUE;
    }

  while (len > 0 && exchange->chunks.state != KP_HTTP1_DONE)
    {
      g_autoptr(GError) error = NULL;
      gsize start, n;
      gssize used = kp_http1_parser_body (&exchange->chunks, data, len, &start, &n, &error);

      if (used < 0)
        {
          refuse_now (conn, SOUP_STATUS_BAD_REQUEST, "The request's chunked body is malformed.");
          return FALSE;
        }
      if (n > 0 && exchange->body->len + n > BODY_MAX)
        {
          refuse_now (conn, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE, "The request's body is too large.");
          return FALSE;
        }
      if (n > 0)
        g_byte_array_append (exchange->body, data + start, (guint)n);
      data += used;
      len -= used;
      conn->in_used += used;
      if (n > 0)
        {
          if (!self->stopped)
            self->funcs.got_body (exchange, exchange->body->len, self->user_data);
          if (exchange->over || conn->closed)
            return FALSE;
          if (exchange->status != 0)
            {
              /* Refused: the rest is not read. */
              exchange->keep_alive = FALSE;
              conn_enter (conn, CONN_BUSY);
              kp_exchange_send_whole (exchange, FALSE);
              return FALSE;
            }
        }
    }
  exchange->body_read = exchange->chunks.state == KP_HTTP1_DONE;
  return TRUE;
}

/* Uses what was read: heads, bodies, and requests to handle. */
static void
conn_process (Conn *conn)
{
  KpHttp1Server *self = conn->server;

  while (!conn->closed)
    {
      KpExchange *exchange = conn->exchange;

      if (conn->state == CONN_IDLE || conn->state == CONN_HEAD)
        {
          g_autoptr(KpExchange) hold = NULL;
          gsize end;
          gboolean has_body = FALSE;

          if (conn->in->len == conn->in_used)
            return;
          if (conn->state == CONN_IDLE)
            conn_enter (conn, CONN_HEAD);
          end = find_head_end (conn);
          if (end == 0 && conn->in->len - conn->in_used <= KP_HTTP1_HEAD_MAX)
            return;
          if (end == 0 || end > KP_HTTP1_HEAD_MAX)
            {
              refuse_now (conn, STATUS_HEADERS_TOO_LARGE, "The request's head is too large.");
              return;
            }
          if (!parse_head (conn, end, &has_body))
            return;
          conn->in_used += end;
          conn->scanned = 0;
          hold = kp_exchange_ref (conn->exchange);
          conn_enter (conn, CONN_BODY);
          if (!self->stopped)
            self->funcs.got_head (hold, self->user_data);
          if (conn->closed || hold->over)
            return;
          after_head (conn, hold, has_body);
          if (conn->closed || hold->over || hold->head_written)
            return;
          if (hold->body_read)
            {
              handle (conn, hold);
              return;
            }
        }
      else if (conn->state == CONN_BODY)
        {
          g_autoptr(KpExchange) hold = kp_exchange_ref (exchange);

          if (!read_body (conn, hold) || !hold->body_read)
            return;
          handle (conn, hold);
          return;
        }
      else
        return;
    }
}

/* Reads what the socket has; FALSE when the connection is lost. */
static gboolean
conn_read (Conn *conn)
{
  gssize n;

  /* The used part goes once it is half of the buffer. */
  if (conn->in_used > 0 && (conn->in_used == conn->in->len || conn->in_used > conn->in->len / 2))
    {
      g_byte_array_remove_range (conn->in, 0, conn->in_used);
      conn->in_used = 0;
    }

  /* A few blocks at a time: a large body is used as it comes. */
  for (guint i = 0; i < 8; i++)
    {
      guint len = conn->in->len;

      g_byte_array_set_size (conn->in, len + READ_BLOCK);
      do
        n = recv (conn->fd, conn->in->data + len, READ_BLOCK, MSG_DONTWAIT);
      while (n < 0 && errno == EINTR);
      g_byte_array_set_size (conn->in, len + MAX (n, 0));

      if (n == 0)
        {
          conn_lost (conn, conn->state == CONN_IDLE ? NULL : "the client closed it");
          return FALSE;
        }
      if (n < 0)
        {
          if (errno == EAGAIN || errno == EWOULDBLOCK)
            return TRUE;
          conn_lost (conn, g_strerror (errno));
          return FALSE;
        }
      if (n < READ_BLOCK || conn->state == CONN_BUSY)
        return TRUE;
    }
  return TRUE;
}

static void
on_ready (KpPollWatch  *watch,
          GIOCondition  revents,
          gpointer      user_data)
{
  Conn *conn = user_data;

  conn_ref (conn);
  conn->dispatching = TRUE;

  /* Both ways shut (or reset): the client cannot read an answer any more. */
  if (conn->broken || (revents & (G_IO_HUP | G_IO_ERR)))
    {
      conn_lost (conn, conn->broken ? NULL : "it hung up");
      goto out;
    }

  if (conn->state == CONN_LINGER)
    {
      linger_ready (conn, revents);
      goto out;
    }

  if ((revents & G_IO_OUT) && !conn_flush (conn))
    goto out;

  if (revents & G_IO_IN)
    {
      /* Bytes that follow a request while it is answered are its client's
       * next request; only the end of the connection matters now.
       */
      if (!conn_read (conn))
        goto out;
    }

  if (conn->exchange != NULL && conn->exchange->written && !out_pending (conn))
    exchange_over (conn->exchange, FALSE);
  if (!conn->closed && conn->state != CONN_BUSY && conn->state != CONN_LINGER)
    conn_process (conn);
  if (!conn->closed && conn->state != CONN_LINGER)
    conn_set_events (conn, wanted_events (conn));

out:
  conn->dispatching = FALSE;
  conn_unref (conn);
}

/* Accepting ---------------------------------------------------------------- */

#define BUSY_BODY \
  "{\"error\":{\"message\":\"Keypool has too many connections open. Close some, or try again " \
  "in a moment.\",\"type\":\"server_busy\",\"code\":503}}"
#define BUSY_BODY_LENGTH 132
G_STATIC_ASSERT (sizeof BUSY_BODY - 1 == BUSY_BODY_LENGTH);

static const char busy_response[] =
  "HTTP/1.1 503 Service Unavailable\r\n"
  "Content-Type: application/json\r\n"
  "Retry-After: 1\r\n"
  "Connection: close\r\n"
  "Content-Length: " G_STRINGIFY (BUSY_BODY_LENGTH) "\r\n"
  "\r\n"
  BUSY_BODY;

static void
add_conn (KpHttp1Server                 *self,
          int                            fd,
          const struct sockaddr_storage *address,
          gboolean                       counted)
{
  Conn *conn = g_new0 (Conn, 1);
  int one = 1;

  conn->server = self;
  conn->fd = fd;
  conn->refs = 1;
  conn->counted = counted;
  conn->link.data = conn;
  conn->in = g_byte_array_new ();
  if (address->ss_family == AF_INET)
    {
      struct sockaddr_in in;

      memcpy (&in, address, sizeof in);
      inet_ntop (AF_INET, &in.sin_addr, conn->remote, sizeof conn->remote);
    }
  setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  kp_deadline_init (&conn->deadline, on_deadline, conn);
  g_queue_push_tail_link (&self->conns, &conn->link);
  if (counted)
    self->n_counted++;
  conn->events = G_IO_IN;
  conn->watch = kp_poll_watch_new (fd, G_IO_IN, on_ready, conn);

  if (counted)
    conn_enter (conn, CONN_HEAD);
  else
    {
      struct iovec iov = { (char *)busy_response, sizeof busy_response - 1 };

      g_debug ("Turning away a client connection: %u are open", self->n_counted);
      if (kp_server_conn_write (conn, &iov, 1))
        conn_linger (conn);
    }
}

/* Answers one waiting client 503 through the spare descriptor. */
static gboolean
shed_connection (KpHttp1Server *self)
{
  int fd;

  if (self->spare_fd < 0)
    return FALSE;
  close (self->spare_fd);
  fd = accept4 (g_socket_get_fd (self->listen_socket), NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
  if (fd >= 0)
    {
      if (send (fd, busy_response, sizeof busy_response - 1, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
        g_debug ("Cannot answer a client 503: %s", g_strerror (errno));
      close (fd);
    }
  self->spare_fd = open ("/dev/null", O_RDONLY | O_CLOEXEC);
  return fd >= 0;
}

static gboolean
rewatch (gpointer user_data)
{
  KpHttp1Server *self = user_data;

  self->rewatch_id = 0;
  start_listen_watch (self);
  return G_SOURCE_REMOVE;
}

static void
on_listen_ready (KpPollWatch  *watch,
                 GIOCondition  revents,
                 gpointer      user_data)
{
  KpHttp1Server *self = user_data;

  for (guint i = 0; i < ACCEPT_BATCH && self->listen_socket != NULL; i++)
    {
      struct sockaddr_storage address;
      socklen_t address_len = sizeof address;
      KpHttp1ServerLimits limits = { 0 };
      int fd = accept4 (g_socket_get_fd (self->listen_socket), (struct sockaddr *)&address,
                        &address_len, SOCK_CLOEXEC | SOCK_NONBLOCK);

      if (fd < 0)
        {
          if (errno == EINTR || errno == ECONNABORTED)
            continue;
          if (errno == EAGAIN || errno == EWOULDBLOCK)
            return;
          if ((errno == EMFILE || errno == ENFILE) && shed_connection (self))
            continue;
          /* No descriptor, nor a spare one: look again shortly rather
           * than spin.
           */
          g_debug ("Cannot accept a client connection: %s", g_strerror (errno));
          g_clear_pointer (&self->listen_watch, kp_poll_watch_free);
          if (self->rewatch_id == 0)
            self->rewatch_id = g_timeout_add (REWATCH_MS, rewatch, self);
          return;
        }

      if (self->stopped)
        {
          close (fd);
          return;
        }
      self->funcs.limits (self->user_data, &limits);
      add_conn (self, fd, &address, self->n_counted < limits.max_connections);
    }
}

static void
start_listen_watch (KpHttp1Server *self)
{
  if (self->listen_watch != NULL || self->listen_socket == NULL)
    return;
  self->listen_watch = kp_poll_watch_new (g_socket_get_fd (self->listen_socket), G_IO_IN,
                                          on_listen_ready, self);
}

/* The server --------------------------------------------------------------- */

KpHttp1Server *
kp_http1_server_new (const KpHttp1ServerFuncs *funcs,
                     gpointer                  user_data,
                     const char               *server_name)
{
  KpHttp1Server *self = g_new0 (KpHttp1Server, 1);

  self->funcs = *funcs;
  self->user_data = user_data;
  self->server_name = g_strdup (server_name);
  self->spare_fd = -1;
  self->date_second = -1;
  g_queue_init (&self->conns);
  return self;
}

/* Serves the clients of @socket, which listens already. */
gboolean
kp_http1_server_listen (KpHttp1Server  *self,
                        GSocket        *socket,
                        GError        **error)
{
  g_return_val_if_fail (self->listen_socket == NULL, FALSE);

  self->listen_socket = g_object_ref (socket);
  if (self->spare_fd < 0)
    self->spare_fd = open ("/dev/null", O_RDONLY | O_CLOEXEC);
  start_listen_watch (self);
  return TRUE;
}

/* Stops listening and closes every connection; exchanges under way hear
 * that their clients are gone.
 */
void
kp_http1_server_disconnect (KpHttp1Server *self)
{
  self->stopped = TRUE;
  g_clear_handle_id (&self->rewatch_id, g_source_remove);
  g_clear_pointer (&self->listen_watch, kp_poll_watch_free);
  if (self->listen_socket != NULL)
    g_socket_close (self->listen_socket, NULL);
  g_clear_object (&self->listen_socket);
  while (self->conns.head != NULL)
    {
      Conn *conn = self->conns.head->data;

      if (conn->exchange != NULL)
        conn_lost (conn, NULL);
      else
        conn_close (conn);
    }
}

void
kp_http1_server_free (KpHttp1Server *self)
{
  if (self == NULL)
    return;
  kp_http1_server_disconnect (self);
  if (self->spare_fd >= 0)
    close (self->spare_fd);
  g_free (self->server_name);
  g_free (self);
}

gboolean
kp_http1_server_is_stopped (KpHttp1Server *self)
{
  return self->stopped;
}

/* The open client connections, not counting those being turned away. */
guint
kp_http1_server_count (KpHttp1Server *self)
{
  return self->n_counted;
}
