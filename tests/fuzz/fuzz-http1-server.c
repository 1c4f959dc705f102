/* fuzz-http1-server.c: the local HTTP/1.1 server, fed a client's bytes
 *
 * The real server listens on 127.0.0.1; each input is what one client sends
 * on one connection. The owner answers as Keypool's does in shape: whole
 * answers, paused ones, streams, and a refusal before the body. Whatever
 * comes in, the server answers in HTTP/1.1 or closes, and once the client
 * has gone it holds no connection.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "http/kp-http1-server.h"

#include "fuzz-common.h"

/* Main-loop turns an input may take: far more than any needs. */
#define MAX_TURNS 20000

static KpHttp1Server *server;
static guint16 port;
static guint32 n_inputs;

static void
on_limits (gpointer             user_data,
           KpHttp1ServerLimits *limits)
{
  /* No deadlines: an input ends when the client closes. */
  *limits = (KpHttp1ServerLimits) { 8, 0, 0, 0 };
}

static void
on_got_head (KpExchange *exchange,
             gpointer    user_data)
{
  if (g_str_equal (kp_exchange_get_path (exchange), "/refuse"))
    {
      kp_exchange_set_status (exchange, 413);
      kp_exchange_take_response (exchange, "text/plain", g_strdup ("no"), 2);
    }
}

static void
on_got_body (KpExchange *exchange,
             gsize       length,
             gpointer    user_data)
{
  if (length > 64 * 1024)
    kp_exchange_set_status (exchange, 413);
}

static gboolean
unpause_later (gpointer data)
{
  KpExchange *exchange = data;

  kp_exchange_set_status (exchange, 200);
  kp_exchange_take_response (exchange, "text/plain", g_strdup ("held"), 4);
  kp_exchange_unpause (exchange);
  return G_SOURCE_REMOVE;
}

static void
on_handle (KpExchange *exchange,
           gpointer    user_data)
{
  const char *path = kp_exchange_get_path (exchange);

  kp_exchange_set_status (exchange, 200);
  if (g_str_equal (path, "/echo"))
    {
      g_autoptr(GBytes) body = kp_exchange_take_body (exchange);

      kp_exchange_set_response (exchange, "application/octet-stream", body);
    }
  else if (g_str_equal (path, "/stream"))
    {
      kp_exchange_pause (exchange);
      kp_exchange_write_chunk (exchange, "one", 3);
      kp_exchange_write_chunk (exchange, "two", 3);
      kp_exchange_end_chunks (exchange);
    }
  else if (g_str_equal (path, "/hold"))
    {
      kp_exchange_pause (exchange);
      g_idle_add_full (G_PRIORITY_DEFAULT, unpause_later, kp_exchange_ref (exchange),
                       (GDestroyNotify)kp_exchange_unref);
    }
  else
    kp_exchange_take_response (exchange, "text/plain", g_strdup ("ok"), 2);
}

static void
on_finished (KpExchange *exchange,
             gpointer    user_data)
{
}

static const KpHttp1ServerFuncs funcs = {
  .limits = on_limits,
  .got_head = on_got_head,
  .got_body = on_got_body,
  .handle = on_handle,
  .finished = on_finished,
};

int
LLVMFuzzerInitialize (int    *argc,
                      char ***argv)
{
  g_autoptr(GSocket) socket = NULL;
  g_autoptr(GInetAddress) loopback = NULL;
  g_autoptr(GSocketAddress) address = NULL;
  g_autoptr(GSocketAddress) bound = NULL;

  fuzz_init ();
  socket = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL);
  loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  address = g_inet_socket_address_new (loopback, 0);
  g_assert_true (g_socket_bind (socket, address, TRUE, NULL));
  g_socket_set_listen_backlog (socket, 16);
  g_assert_true (g_socket_listen (socket, NULL));
  bound = g_socket_get_local_address (socket, NULL);
  port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
  server = kp_http1_server_new (&funcs, NULL, "fuzz/1");
  g_assert_true (kp_http1_server_listen (server, socket, NULL));
  return 0;
}

/* Reads what the server sent; FALSE once it closed. */
static gboolean
drain (int      fd,
       GString *got)
{
  char buffer[16384];

  for (;;)
    {
      gssize n = recv (fd, buffer, sizeof buffer, MSG_DONTWAIT);

      if (n > 0)
        {
          /* The start is enough to check; the rest is dropped. */
          if (got->len < 64)
            g_string_append_len (got, buffer, MIN ((gsize)n, 64 - got->len));
          continue;
        }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return TRUE;
      return FALSE;
    }
}

/* A non-blocking connect: libFuzzer's timer signal interrupts a blocking
 * one.
 */
static void
connect_to_server (int                 fd,
                   struct sockaddr_in *address)
{
  struct pollfd pfd = { fd, POLLOUT, 0 };
  int error = 0;
  socklen_t error_len = sizeof error;

  g_assert_cmpint (fcntl (fd, F_SETFL, O_NONBLOCK), ==, 0);
  if (connect (fd, (struct sockaddr *)address, sizeof *address) == 0)
    return;
  if (errno != EINPROGRESS && errno != EINTR)
    g_error ("Cannot connect to the server: %s", g_strerror (errno));
  while (poll (&pfd, 1, 10000) < 0 && errno == EINTR)
    ;
  g_assert_cmpint (getsockopt (fd, SOL_SOCKET, SO_ERROR, &error, &error_len), ==, 0);
  if (error != 0)
    g_error ("Cannot connect to the server: %s", g_strerror (error));
}

int
LLVMFuzzerTestOneInput (const guint8 *data,
                        size_t        size)
{
  struct sockaddr_in address = { 0 };
  g_autoptr(GString) got = g_string_new (NULL);
  gsize sent = 0;
  guint idle_turns = 0;
  gboolean open = TRUE;
  int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

  g_assert_cmpint (fd, >=, 0);
  /* Each input from another loopback address: the server's side of a
   * connection it closed waits in TIME_WAIT, and one address alone would run
   * out of ports in a long run.
   */
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl (0x7f000000 | (1 + (++n_inputs % 0xfffffe)));
  g_assert_cmpint (bind (fd, (struct sockaddr *)&address, sizeof address), ==, 0);
  address.sin_family = AF_INET;
  address.sin_port = htons (port);
  address.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
  connect_to_server (fd, &address);

  /* Send it all, letting the server read and answer, until nothing moves. */
  for (guint turn = 0; turn < MAX_TURNS && idle_turns < 4 && open; turn++)
    {
      gboolean moved = FALSE;

      if (sent < size)
        {
          gssize n = send (fd, data + sent, size - sent, MSG_DONTWAIT | MSG_NOSIGNAL);

          if (n > 0)
            {
              sent += n;
              moved = TRUE;
            }
          else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            sent = size;   /* the server closed: the rest cannot go */
        }
      if (g_main_context_iteration (NULL, FALSE))
        moved = TRUE;
      open = drain (fd, got);
      idle_turns = moved ? 0 : idle_turns + 1;
    }

  /* Whatever it sent is HTTP/1.1 (a 100 Continue included). */
  if (got->len > 0)
    g_assert_true (g_str_has_prefix (got->str, "HTTP/1.1 ") ||
                   (got->len < 9 && strncmp (got->str, "HTTP/1.1 ", got->len) == 0));

  /* The client ends its side (every other input), then leaves with a reset:
   * a close would leave the port in TIME_WAIT, and a long run would use up
   * the ports.
   */
  if (size % 2 == 0 && open)
    {
      shutdown (fd, SHUT_WR);
      for (guint turn = 0; turn < 8; turn++)
        {
          g_main_context_iteration (NULL, FALSE);
          if (!drain (fd, got))
            break;
        }
    }
  setsockopt (fd, SOL_SOCKET, SO_LINGER, &(struct linger) { 1, 0 }, sizeof (struct linger));
  close (fd);
  for (guint turn = 0; turn < MAX_TURNS && kp_http1_server_count (server) > 0; turn++)
    g_main_context_iteration (NULL, FALSE);
  g_assert_cmpuint (kp_http1_server_count (server), ==, 0);
  while (g_main_context_iteration (NULL, FALSE))
    ;
  return 0;
}
