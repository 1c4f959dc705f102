/* kp-client-conns.c: the local server's client connections, counted and timed
 *
 * libsoup 3.2's server has no limit on connections and no timeout of its
 * own: a client that connects and says nothing, or trickles its headers,
 * holds a connection and a descriptor for good. The server tells this
 * table where each connection is in its request, and a connection that
 * stays too long where a client should be quick is closed:
 *
 *   headers  from connecting (or a later request's first byte) to the end
 *            of the headers: the client sends nothing, or too slowly
 *   body     from the headers to the end of the body
 *   busy     Keypool is answering: no limit, a stream may be long and quiet
 *   idle     between requests on a kept-alive connection: a longer limit
 *
 * libsoup signals no closed connection: one it closed is noticed by its
 * closed socket, at its next deadline or when the count is checked.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include "kp-client-conns.h"
#include "kp-deadlines.h"

/* A connection over the limit is answered at once, then given this long to
 * read its answer before it is closed.
 */
#define SHED_MS 1000

typedef enum
{
  CONN_HEADERS,
  CONN_BODY,
  CONN_BUSY,
  CONN_IDLE,
  CONN_SHED,
} ConnState;

typedef struct
{
  KpClientConns *owner;
  GSocket       *socket;
  ConnState      state;
  KpDeadline     deadline;   /* kp-deadlines.c: one timer for all */
} Conn;

struct _KpClientConns
{
  KpGateway  *gateway;   /* unowned: it owns the server that owns this */
  GHashTable *conns;     /* GSocket → Conn */
  guint       n_shed;
};

static void
conn_free (gpointer data)
{
  Conn *conn = data;

  if (conn->state == CONN_SHED)
    conn->owner->n_shed--;
  kp_deadline_clear (&conn->deadline);
  g_object_unref (conn->socket);
  g_free (conn);
}

KpClientConns *
kp_client_conns_new (KpGateway *gateway)
{
  KpClientConns *self = g_new0 (KpClientConns, 1);

  self->gateway = gateway;
  self->conns = g_hash_table_new_full (NULL, NULL, NULL, conn_free);
  return self;
}

void
kp_client_conns_free (KpClientConns *self)
{
  if (self == NULL)
    return;
  g_hash_table_unref (self->conns);
  g_free (self);
}

static const char *
state_name (ConnState state)
{
  switch (state)
    {
    case CONN_HEADERS:
      return "sent no whole request headers";
    case CONN_BODY:
      return "sent no whole request body";
    case CONN_IDLE:
      return "sent no next request";
    case CONN_SHED:
      return "was over the connection limit";
    case CONN_BUSY:
    default:
      return "was busy";
    }
}

static void
on_deadline (KpDeadline *deadline,
             gpointer    user_data)
{
  Conn *conn = user_data;
  GSocket *socket = conn->socket;

  if (!g_socket_is_closed (socket))
    {
      g_debug ("Closing a client connection that %s in time", state_name (conn->state));
      /* Shut down first, so that libsoup, which still watches the socket,
       * reads its end and lets go of the connection.
       */
      g_socket_shutdown (socket, TRUE, TRUE, NULL);
      g_socket_close (socket, NULL);
    }
  g_hash_table_remove (conn->owner->conns, socket);
}

static void
conn_enter (Conn      *conn,
            ConnState  state)
{
  const KpClientLimits *limits = kp_gateway_get_client_limits (conn->owner->gateway);
  guint ms = 0;

  if (conn->state == CONN_SHED)
    return;
  conn->state = state;
  switch (state)
    {
    case CONN_HEADERS:
      ms = limits->header_ms;
      break;
    case CONN_BODY:
      ms = limits->body_ms;
      break;
    case CONN_IDLE:
      ms = limits->idle_ms;
      break;
    case CONN_SHED:
      ms = SHED_MS;
      conn->owner->n_shed++;
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

/* Connections libsoup has closed since it said so last. */
static gboolean
is_closed (gpointer key,
           gpointer value,
           gpointer user_data)
{
  return g_socket_is_closed (key);
}

/**
 * kp_client_conns_count:
 *
 * Returns: the open client connections, not counting those over the limit
 *   that are being turned away
 */
guint
kp_client_conns_count (KpClientConns *self)
{
  g_hash_table_foreach_remove (self->conns, is_closed, NULL);
  return g_hash_table_size (self->conns) - self->n_shed;
}

/**
 * kp_client_conns_request_started:
 *
 * libsoup starts a request on @socket: right after accepting it, or at the
 * first byte of a next request on a kept-alive connection.
 *
 * Returns: %FALSE when @socket is a new connection over the limit
 */
gboolean
kp_client_conns_request_started (KpClientConns *self,
                                 GSocket       *socket)
{
  Conn *conn = g_hash_table_lookup (self->conns, socket);

  if (conn == NULL)
    {
      const KpClientLimits *limits = kp_gateway_get_client_limits (self->gateway);

      if (g_hash_table_size (self->conns) - self->n_shed >= limits->max_connections &&
          kp_client_conns_count (self) >= limits->max_connections)
        return FALSE;
      conn = g_new0 (Conn, 1);
      conn->owner = self;
      conn->socket = g_object_ref (socket);
      kp_deadline_init (&conn->deadline, on_deadline, conn);
      g_hash_table_insert (self->conns, socket, conn);
    }
  conn_enter (conn, CONN_HEADERS);
  return TRUE;
}

/* Tracks @socket, a connection over the limit, until it is closed. */
void
kp_client_conns_shed (KpClientConns *self,
                      GSocket       *socket)
{
  Conn *conn = g_new0 (Conn, 1);

  conn->owner = self;
  conn->socket = g_object_ref (socket);
  kp_deadline_init (&conn->deadline, on_deadline, conn);
  g_hash_table_replace (self->conns, socket, conn);
  conn_enter (conn, CONN_SHED);
}

gboolean
kp_client_conns_is_shed (KpClientConns *self,
                         GSocket       *socket)
{
  Conn *conn = g_hash_table_lookup (self->conns, socket);

  return conn != NULL && conn->state == CONN_SHED;
}

static void
enter (KpClientConns *self,
       GSocket       *socket,
       ConnState      state)
{
  Conn *conn = g_hash_table_lookup (self->conns, socket);

  if (conn != NULL)
    conn_enter (conn, state);
}

void
kp_client_conns_got_headers (KpClientConns *self,
                             GSocket       *socket)
{
  enter (self, socket, CONN_BODY);
}

void
kp_client_conns_request_read (KpClientConns *self,
                              GSocket       *socket)
{
  enter (self, socket, CONN_BUSY);
}

void
kp_client_conns_request_done (KpClientConns *self,
                              GSocket       *socket)
{
  enter (self, socket, CONN_IDLE);
}

/* @socket is no longer libsoup's (answered and closed by the server). */
void
kp_client_conns_forget (KpClientConns *self,
                        GSocket       *socket)
{
  g_hash_table_remove (self->conns, socket);
}
