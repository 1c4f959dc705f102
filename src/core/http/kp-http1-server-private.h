/* kp-http1-server-private.h: what the server's two files share
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <netinet/in.h>
#include <arpa/inet.h>
#include <sys/uio.h>

#include "kp-deadlines.h"
#include "kp-http1-parser.h"
#include "kp-http1-server.h"
#include "kp-poll-watch.h"

G_BEGIN_DECLS

#define BODY_MAX      (1024u * 1024 * 1024)   /* the owner's own limit is lower */
#define READ_BLOCK    (16 * 1024)
#define PIPELINE_MAX  (64 * 1024)
#define OUT_CAP       (16 * 1024 * 1024)
#define LINGER_BYTES  (256 * 1024)
#define LINGER_MS     1000
#define ACCEPT_BATCH  32
#define REWATCH_MS    100

/* libsoup 3.2 has no name for it. */
#define STATUS_HEADERS_TOO_LARGE 431

typedef enum
{
  CONN_HEAD,     /* reading a request's head */
  CONN_IDLE,     /* kept alive, no byte of a next request yet */
  CONN_BODY,     /* reading a request's body */
  CONN_BUSY,     /* the request is read: the owner answers */
  CONN_LINGER,   /* answered and shut down for writing: drained, then closed */
} ConnState;

typedef struct _Conn Conn;

struct _KpHttp1Server
{
  KpHttp1ServerFuncs  funcs;
  gpointer            user_data;
  char               *server_name;

  GSocket            *listen_socket;
  KpPollWatch        *listen_watch;
  guint               rewatch_id;
  int                 spare_fd;      /* given up to answer one client when none are left */

  GQueue              conns;         /* of Conn, by their links */
  guint               n_counted;     /* conns not being turned away */

  char                date[64];      /* the Date header's value, for date_second */
  gint64              date_second;
  gboolean            stopped;       /* disconnected: the owner hears nothing more */
};

struct _Conn
{
  KpHttp1Server *server;
  GList          link;
  int            fd;
  char           remote[INET6_ADDRSTRLEN];
  ConnState      state;
  gboolean       counted;       /* among the connections the limit counts */
  gboolean       closed;        /* the descriptor is gone; memory waits for refs */
  gboolean       dispatching;   /* inside on_ready(): a finished answer is told there */
  gboolean       broken;        /* a write failed outside on_ready(): lost in the next one */
  guint          refs;

  KpPollWatch   *watch;
  GIOCondition   events;
  KpDeadline     deadline;

  GByteArray    *in;            /* read and not yet used */
  gsize          in_used;       /* of in, at its start */
  gsize          scanned;       /* of the head: no end before this */
  gsize          drained;       /* while lingering */

  GByteArray    *out;           /* written and not yet taken by the socket */
  gsize          out_sent;

  KpExchange    *exchange;      /* the request being read or answered */
};

struct _KpExchange
{
  gatomicrefcount     refs;
  Conn               *conn;            /* NULL once the exchange is over */

  const char         *method;          /* SOUP_METHOD_*, or method_other */
  char               *method_other;    /* a method libsoup has no name for */
  char               *path;
  char               *query;
  GHashTable         *form;
  SoupHTTPVersion     version;
  SoupMessageHeaders *request_headers;
  SoupMessageHeaders *response_headers;

  gboolean            keep_alive;      /* another request may follow on the connection */
  gboolean            chunked_in;
  guint64             body_left;       /* of a Content-Length body */
  KpHttp1Parser       chunks;          /* of a chunked body */
  GByteArray         *body;
  gboolean            body_read;

  guint               status;
  GBytes             *response;
  gboolean            paused;
  gboolean            in_handler;
  gboolean            head_written;
  gboolean            chunked_out;     /* the answer's body goes as chunks */
  gboolean            written;         /* the whole answer is written, maybe buffered */
  gboolean            over;

  guint               client;
  guint               flags;
  KpExchangeDoneFunc  done;
  gpointer            done_data;
};

/* kp-http1-server.c */
gboolean    kp_server_conn_write          (Conn         *conn,
                                           struct iovec *iov,
                                           int           n_iov);
void        kp_server_conn_answer_written (Conn         *conn,
                                           gboolean      from_owner);

/* kp-http1-exchange.c */
KpExchange *kp_exchange_new               (Conn         *conn);
guint       kp_exchange_read_head         (KpExchange   *exchange,
                                           const char   *data,
                                           gsize         len,
                                           gboolean     *has_body,
                                           const char  **message);
void        kp_exchange_send_whole        (KpExchange   *exchange,
                                           gboolean      from_owner);
gboolean    kp_exchange_status_has_no_body (guint        status);

G_END_DECLS
