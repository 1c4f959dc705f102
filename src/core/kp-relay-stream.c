/* kp-relay-stream.c: a relayed stream's bytes on their way to the client
 *
 * libsoup 3.2 writes a chunked response one chunk at a time, and between
 * chunks the message is paused. Every chunk then cost an unpause (an idle
 * source, two more main-loop iterations), and three system calls for its
 * size line, its bytes and the CRLF after them, each a segment of its own
 * with TCP_NODELAY.
 *
 * So libsoup writes the head of the response and the first chunk, and the
 * end of the body (the last chunk and the connection's keep-alive). In
 * between, while libsoup is paused with nothing left to write, the relay
 * writes each chunk itself, framed as HTTP/1.1 chunks, in one system call
 * straight to the socket. What the socket does not take waits in a buffer
 * with a watch for room; the end of the body waits for that buffer too.
 * The client reads one well-formed chunked body either way.
 *
 * While libsoup writes (the head, the first chunk, the end) the socket is
 * corked, so that those leave as one segment too; it is uncorked when
 * libsoup says it wrote them (::wrote-chunk, ::wrote-body). Linux sends
 * corked bytes after 200 ms at the latest: a missed uncork would cost a
 * delay, never a hang.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include "kp-gateway.h"

#include "kp-relay-private.h"

/* Bytes a client may leave unread before it counts as gone. */
#define DIRECT_OUT_CAP (16 * 1024 * 1024)

static int
client_fd (KpRelay *self)
{
  GSocket *socket = self->msg != NULL ? soup_server_message_get_socket (self->msg) : NULL;

  if (socket == NULL || g_socket_is_closed (socket))
    return -1;
  return g_socket_get_fd (socket);
}

void
kp_relay_set_cork (KpRelay  *self,
                   gboolean  cork)
{
  int value = cork ? 1 : 0;
  int fd;

  if (self->corked == cork)
    return;
  fd = client_fd (self);
  if (fd >= 0 && setsockopt (fd, IPPROTO_TCP, TCP_CORK, &value, sizeof value) == 0)
    self->corked = cork;
}

static void
on_wrote_chunk (SoupServerMessage *msg,
                KpRelay           *self)
{
  kp_relay_set_cork (self, FALSE);
  if (self->soup_chunks > 0)
    self->soup_chunks--;
  /* libsoup has written all it had and pauses: the socket is ours. */
  if (self->soup_chunks == 0)
    self->direct = TRUE;
}

static void
on_wrote_body (SoupServerMessage *msg,
               KpRelay           *self)
{
  kp_relay_set_cork (self, FALSE);
}

/* Connects to @self's message: called once, when the relay is made. */
void
kp_relay_watch_writes (KpRelay *self)
{
  g_signal_connect (self->msg, "wrote-chunk", G_CALLBACK (on_wrote_chunk), self);
  g_signal_connect (self->msg, "wrote-body", G_CALLBACK (on_wrote_body), self);
}

static void
hand_end_to_libsoup (KpRelay *self)
{
  kp_relay_set_cork (self, TRUE);
  soup_message_body_complete (soup_server_message_get_response_body (self->msg));
  soup_server_message_unpause (self->msg);
}

static void flush_direct (KpRelay *self);

static void
on_client_writable (KpPollWatch  *watch,
                    GIOCondition  condition,
                    gpointer      user_data)
{
  KpRelay *self = user_data;

  g_clear_pointer (&self->direct_watch, kp_poll_watch_free);
  flush_direct (self);
}

/* The client cannot take more now: wait for room (or its hang-up, which
 * the connection's watch reports).
 */
static void
wait_for_room (KpRelay *self)
{
  int fd;

  if (self->direct_watch != NULL || (fd = client_fd (self)) < 0)
    return;
  self->direct_watch = kp_poll_watch_new (fd, G_IO_OUT, on_client_writable, self);
}

/* Writes @iov to the client without blocking. Returns the bytes written,
 * or -1 when the client is gone (the connection's watch, or libsoup, will
 * tell the relay).
 */
static gssize
write_direct (KpRelay      *self,
              struct iovec *iov,
              int           n_iov)
{
  struct msghdr message = { 0 };
  int fd = client_fd (self);
  gssize written;

  if (fd < 0)
    return -1;
  message.msg_iov = iov;
  message.msg_iovlen = n_iov;
  do
    written = sendmsg (fd, &message, MSG_NOSIGNAL | MSG_DONTWAIT);
  while (written < 0 && errno == EINTR);
  if (written < 0)
    return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -1;
  return written;
}

static void
flush_direct (KpRelay *self)
{
  if (self->direct_out != NULL && self->direct_out->len > self->direct_sent)
    {
      struct iovec iov = { self->direct_out->data + self->direct_sent,
                           self->direct_out->len - self->direct_sent };
      gssize written = write_direct (self, &iov, 1);

      if (written < 0)
        {
          /* The client has gone. A relay that is still on hears of it from
           * the connection's watch; one that only waited to end hands the
           * end to libsoup, whose write fails and finishes the message.
           */
          g_byte_array_set_size (self->direct_out, 0);
          self->direct_sent = 0;
          if (!self->direct_end)
            return;
        }
      else
        self->direct_sent += written;

      if (self->direct_sent == self->direct_out->len)
        {
          g_byte_array_set_size (self->direct_out, 0);
          self->direct_sent = 0;
        }
      else
        {
          /* What was sent leaves the buffer only once it is half of it:
           * a client that takes a little at a time costs no copy of the
           * whole rest each time.
           */
          if (self->direct_sent > self->direct_out->len / 2)
            {
              g_byte_array_remove_range (self->direct_out, 0, self->direct_sent);
              self->direct_sent = 0;
            }
          wait_for_room (self);
          return;
        }
    }

  if (self->direct_end)
    {
      self->direct_end = FALSE;
      if (!self->client_gone)
        hand_end_to_libsoup (self);
    }
}

/* "<len in hex>\r\n", the head of a chunk, into @head (at least 18
 * bytes); returns its length. Written by hand: it goes before every chunk.
 */
static gsize
chunk_head (char  *head,
            gsize  len)
{
  static const char digits[] = "0123456789abcdef";
  char reversed[16];
  gsize n = 0, i = 0;

  do
    {
      reversed[n++] = digits[len & 0xf];
      len >>= 4;
    }
  while (len != 0);
  while (n > 0)
    head[i++] = reversed[--n];
  head[i++] = '\r';
  head[i++] = '\n';
  return i;
}

/**
 * kp_relay_send_chunk:
 *
 * Sends @data to the client as one chunk of the response's body: through
 * libsoup until it has written the head, then straight to the socket.
 */
void
kp_relay_send_chunk (KpRelay    *self,
                     const char *data,
                     gsize       len)
{
  char head[24];
  struct iovec iov[3];
  gsize total;
  gssize written;
  gsize skip;

  if (!self->direct)
    {
      kp_relay_set_cork (self, TRUE);
      self->soup_chunks++;
      soup_message_body_append (soup_server_message_get_response_body (self->msg),
                                SOUP_MEMORY_COPY, data, len);
      soup_server_message_unpause (self->msg);
      return;
    }

  iov[0].iov_base = head;
  iov[0].iov_len = chunk_head (head, len);
  iov[1].iov_base = (char *)data;
  iov[1].iov_len = len;
  iov[2].iov_base = (char *)"\r\n";
  iov[2].iov_len = 2;
  total = iov[0].iov_len + len + 2;

  /* Bytes already waiting go first. */
  if (self->direct_out != NULL && self->direct_out->len > self->direct_sent)
    written = 0;
  else if ((written = write_direct (self, iov, 3)) < 0)
    return;
  if ((gsize)written == total)
    return;

  if (self->direct_out == NULL)
    self->direct_out = g_byte_array_new ();
  skip = written;
  for (guint i = 0; i < 3; i++)
    {
      gsize part = MIN (skip, iov[i].iov_len);

      g_byte_array_append (self->direct_out, (guint8 *)iov[i].iov_base + part, iov[i].iov_len - part);
      skip -= part;
    }

  if (self->direct_out->len - self->direct_sent > DIRECT_OUT_CAP)
    {
      GSocket *socket = soup_server_message_get_socket (self->msg);

      /* Memory stays bounded: a client this far behind has gone. */
      g_debug ("%s: the client left %u bytes of the stream unread; closing its connection",
               self->request_id, self->direct_out->len - self->direct_sent);
      g_byte_array_set_size (self->direct_out, 0);
      self->direct_sent = 0;
      if (socket != NULL)
        g_socket_shutdown (socket, TRUE, TRUE, NULL);
      return;
    }
  wait_for_room (self);
}

/**
 * kp_relay_send_end:
 *
 * Ends the response's body once every chunk is out: libsoup writes the
 * last chunk and keeps the connection for the client's next request.
 */
void
kp_relay_send_end (KpRelay *self)
{
  if (self->direct_out != NULL && self->direct_out->len > self->direct_sent)
    {
      self->direct_end = TRUE;
      return;
    }
  hand_end_to_libsoup (self);
}

/* The client has gone, or the relay ends: nothing more is written. */
void
kp_relay_stream_clear (KpRelay *self)
{
  g_clear_pointer (&self->direct_watch, kp_poll_watch_free);
  g_clear_pointer (&self->direct_out, g_byte_array_unref);
  self->direct_sent = 0;
  self->direct_end = FALSE;
}
