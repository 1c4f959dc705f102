/* kp-conn-watch.c: one watch on a client connection for its whole life
 *
 * Keypool watches its clients' sockets for two reasons libsoup 3.2 does not
 * cover. Between requests, a kept-alive connection whose client has gone
 * would stay in CLOSE-WAIT for good (the server never reads it again; fixed
 * upstream later): the watch closes it. While a relay answers, its message
 * is paused and libsoup watches nothing, so a client that hangs up during a
 * long wait for the provider would go unnoticed: the watch tells the relay.
 *
 * Both used to be a source of their own, made and destroyed for every
 * request. In GLib 2.74, attaching or destroying a source that polls a
 * descriptor, and dispatching one that may not recurse, each write to the
 * main context's wakeup eventfd and cost one more main-loop iteration: four
 * writes per request. Here one watch per connection, on the source all
 * sockets share (kp-poll-watch.c), lives as long as the connection, and
 * only changes what a hang-up means.
 *
 * The watch is level-triggered on input. Bytes of a request are libsoup's to
 * read and it reads them in the same iteration; bytes that nobody reads
 * (a client pipelining its next request while Keypool answers) hide any
 * later hang-up, so the watch stops there, as it also does after a bounded
 * number of dispatches in a row that found unread bytes.
 *
 * The watch lives in the socket's data, so it goes at the latest with the
 * socket. When libsoup closes the socket first, epoll forgets the descriptor;
 * should its number come back for another socket that is watched too, this
 * watch hears of that one's events, sees its own socket closed and stops.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include <errno.h>
#include <sys/socket.h>

#include "kp-conn-watch.h"
#include "kp-poll-watch.h"

/* Dispatches in a row that may find bytes libsoup has not read yet. */
#define MAX_SPINS 64

typedef enum
{
  WATCH_READING,   /* libsoup reads a request or writes its answer */
  WATCH_IDLE,      /* between requests: a hang-up closes the connection */
  WATCH_BUSY,      /* a relay answers: a hang-up is the relay's news */
} WatchMode;

typedef struct
{
  KpPollWatch    *poll;
  GSocket        *socket;      /* not owned: the watch is in its data */
  WatchMode       mode;
  KpConnGoneFunc  gone;
  gpointer        gone_data;
  guint           spins;
} Watch;

static GQuark
watch_quark (void)
{
  static GQuark quark;

  if (G_UNLIKELY (quark == 0))
    quark = g_quark_from_static_string ("kp-conn-watch");
  return quark;
}

static void
watch_free (gpointer data)
{
  Watch *watch = data;

  kp_poll_watch_free (watch->poll);
  g_free (watch);
}

/**
 * kp_conn_watch_stop:
 * @socket: a client connection's socket
 *
 * Stops watching @socket, if it is watched.
 */
void
kp_conn_watch_stop (GSocket *socket)
{
  g_object_set_qdata (G_OBJECT (socket), watch_quark (), NULL);
}

static void
on_socket (KpPollWatch  *poll,
           GIOCondition  condition,
           gpointer      user_data)
{
  Watch *watch = user_data;
  GSocket *socket = watch->socket;
  WatchMode mode;
  KpConnGoneFunc gone;
  gpointer gone_data;
  char byte;
  gssize n = 0;

  /* libsoup closed it: its descriptor may already serve another client. */
  if (g_socket_is_closed (socket))
    {
      kp_conn_watch_stop (socket);
      return;
    }

  if ((condition & (G_IO_HUP | G_IO_ERR)) == 0)
    {
      n = recv (g_socket_get_fd (socket), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
      if (n > 0)
        {
          if (watch->mode != WATCH_BUSY && ++watch->spins <= MAX_SPINS)
            return;
          /* Pipelined bytes: not a hang-up, and none can be told now. */
          kp_conn_watch_stop (socket);
          return;
        }
    }

  /* The client has gone: end of stream, a reset, or a hang-up. */
  mode = watch->mode;
  gone = watch->gone;
  gone_data = watch->gone_data;
  g_object_ref (socket);
  kp_conn_watch_stop (socket);

  switch (mode)
    {
    case WATCH_IDLE:
      g_debug ("Closing a kept-alive connection its client has closed");
      g_socket_close (socket, NULL);
      break;
    case WATCH_BUSY:
      if (gone != NULL)
        gone (gone_data);
      break;
    case WATCH_READING:
    default:
      /* libsoup reads the end itself. */
      break;
    }

  g_object_unref (socket);
}

static Watch *
ensure_watch (GSocket *socket)
{
  Watch *watch = g_object_get_qdata (G_OBJECT (socket), watch_quark ());

  if (watch != NULL || g_socket_is_closed (socket))
    return watch;

  watch = g_new0 (Watch, 1);
  watch->socket = socket;
  watch->poll = kp_poll_watch_new (g_socket_get_fd (socket), G_IO_IN, on_socket, watch);
  g_object_set_qdata_full (G_OBJECT (socket), watch_quark (), watch, watch_free);
  return watch;
}

static void
set_mode (Watch     *watch,
          WatchMode  mode)
{
  watch->mode = mode;
  watch->spins = 0;
  if (mode != WATCH_BUSY)
    {
      watch->gone = NULL;
      watch->gone_data = NULL;
    }
}

/**
 * kp_conn_watch_idle:
 * @socket: a client connection's socket, its last answer written
 *
 * Between requests: if the client hangs up, the connection is closed.
 */
void
kp_conn_watch_idle (GSocket *socket)
{
  Watch *watch = ensure_watch (socket);

  if (watch != NULL)
    set_mode (watch, WATCH_IDLE);
}

/**
 * kp_conn_watch_reading:
 * @socket: a client connection's socket
 *
 * A request is being read (or answered by libsoup itself): a hang-up is
 * libsoup's to notice. Does not start a watch.
 */
void
kp_conn_watch_reading (GSocket *socket)
{
  Watch *watch = g_object_get_qdata (G_OBJECT (socket), watch_quark ());

  if (watch != NULL)
    set_mode (watch, WATCH_READING);
}

/**
 * kp_conn_watch_busy:
 * @socket: a client connection's socket
 * @gone: called once if the client hangs up
 * @user_data: for @gone, and for kp_conn_watch_release()
 *
 * Keypool answers the request on @socket, its message paused: @gone is
 * told of a hang-up until kp_conn_watch_release().
 */
void
kp_conn_watch_busy (GSocket        *socket,
                    KpConnGoneFunc  gone,
                    gpointer        user_data)
{
  Watch *watch = ensure_watch (socket);

  if (watch == NULL)
    return;
  set_mode (watch, WATCH_BUSY);
  watch->gone = gone;
  watch->gone_data = user_data;
}

/**
 * kp_conn_watch_release:
 * @socket: a client connection's socket
 * @user_data: what was given to kp_conn_watch_busy()
 *
 * The answer is over: @user_data is told nothing more.
 */
void
kp_conn_watch_release (GSocket  *socket,
                       gpointer  user_data)
{
  Watch *watch = g_object_get_qdata (G_OBJECT (socket), watch_quark ());

  if (watch != NULL && watch->mode == WATCH_BUSY && watch->gone_data == user_data)
    set_mode (watch, WATCH_READING);
}
