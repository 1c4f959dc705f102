/* kp-http1-private.h: what the pool and its connections share, and what
 * only tests may call
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <gio/gio.h>

#include "kp-http1-parser.h"
#include "kp-http1-pool.h"
#include "kp-poll-watch.h"

G_BEGIN_DECLS

#define KP_HTTP1_BUFFER_SIZE 16384

typedef struct _KpHttp1Host KpHttp1Host;
typedef struct _KpHttp1Conn KpHttp1Conn;

typedef enum
{
  REQUEST_QUEUED,      /* waiting for a free connection */
  REQUEST_CONNECTING,  /* a new connection is being made for it */
  REQUEST_SENDING,
  REQUEST_HEAD,        /* waiting for the answer's head */
  REQUEST_BODY,
  REQUEST_DONE,        /* the body was read whole, or the request failed */
} KpHttp1RequestState;

struct _KpHttp1Host
{
  KpHttp1Pool *pool;
  char        *key;       /* scheme://host:port */
  char        *connect_uri;
  gboolean     tls;
  GQueue       idle;      /* of KpHttp1Conn, the most recently used first */
  GQueue       waiting;   /* of KpHttp1Request, first come first served */
  guint        count;     /* connections open or being made */
};

struct _KpHttp1Request
{
  KpHttp1Host            *host;
  GBytes                 *head;       /* written with the body in one call */
  GBytes                 *body;
  const KpHttp1Callbacks *callbacks;
  gpointer                user_data;
  KpHttp1RequestState     state;
  KpHttp1Conn            *conn;       /* while it has one */
  gpointer                connect;    /* while a connection is made for it */
  GList                   link;       /* in host->waiting */
  gboolean                retried;
  guint                   again_id;   /* readable() once more, without a connection */

  /* A compressed body: the framed bytes not yet inflated. */
  GConverter             *inflater;
  GByteArray             *coded;
  gsize                   coded_start;
  gsize                   coded_total;
  gsize                   dropped;    /* framed bytes after the compressed stream */
  gboolean                framed_done;
  gboolean                inflated_done;
};

struct _KpHttp1Conn
{
  KpHttp1Host          *host;
  GSocketConnection    *connection;
  GPollableInputStream *in;          /* for TLS; plain sockets are read directly */
  GPollableOutputStream *out;
  int                   fd;
  gboolean              tls;
  KpPollWatch          *watch;       /* the one watch of the connection's life */
  KpHttp1Request       *request;     /* NULL while idle */
  gsize                 written;     /* of the request's head and body */
  guint8               *buffer;      /* received, not yet parsed: [start, end) */
  gsize                 start;
  gsize                 end;
  gboolean              drained;     /* a plain recv() found the socket empty */
  KpHttp1Parser         parser;
  guint                 served;      /* requests answered whole */
  gboolean              got_byte;    /* of the current request's answer */
  gint64                idle_since;
  GList                 link;        /* in host->idle */
};

/* kp-http1-conn.c */
KpHttp1Conn *kp_http1_conn_new       (KpHttp1Host       *host,
                                      GSocketConnection *connection);
void         kp_http1_conn_free      (KpHttp1Conn       *conn);
void         kp_http1_conn_start     (KpHttp1Conn       *conn,
                                      KpHttp1Request    *request);
gssize       kp_http1_conn_read_body (KpHttp1Conn       *conn,
                                      guint8            *buffer,
                                      gsize              size,
                                      GError           **error);
void         kp_http1_conn_again     (KpHttp1Conn       *conn);

/* kp-http1-pool.c, for the connections */
void         kp_http1_host_release   (KpHttp1Host       *host,
                                      KpHttp1Conn       *conn,
                                      gboolean           reusable);
void         kp_http1_request_fail   (KpHttp1Request    *request,
                                      KpHttp1Conn       *conn,
                                      GError            *error,
                                      gboolean           before_answer);

/* For tests only: a certificate database for https providers. */
void         kp_http1_pool_set_tls_database (KpHttp1Pool  *pool,
                                             GTlsDatabase *database);
guint        kp_http1_pool_count_idle       (KpHttp1Pool  *pool);

G_END_DECLS
