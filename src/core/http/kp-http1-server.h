/* kp-http1-server.h: the local HTTP/1.1 server, its connections and exchanges
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <gio/gio.h>
#include <libsoup/soup.h>

G_BEGIN_DECLS

typedef struct _KpHttp1Server KpHttp1Server;
typedef struct _KpExchange    KpExchange;

/* What a client connection may take, read again for each state it enters. */
typedef struct
{
  guint max_connections;   /* open at once; more get a quick 503 */
  guint header_ms;         /* from connecting, or a request's first byte, to its headers */
  guint body_ms;           /* from the headers to the end of the body */
  guint idle_ms;           /* a kept-alive connection between requests */
} KpHttp1ServerLimits;

/**
 * KpHttp1ServerFuncs:
 * @limits: fills in the connection limits in force now
 * @got_head: a request's head is read, its body not yet. Setting a status
 *   refuses it: the answer goes out at once, and a body that follows is not
 *   read (the connection closes after the answer).
 * @got_body: more of a chunked body arrived, @length bytes so far; may
 *   refuse the request as @got_head may
 * @handle: the whole request is read. Answer, or kp_exchange_pause() and
 *   answer later with kp_exchange_unpause() or a stream of chunks.
 * @finished: the exchange is over: its answer is written, or its client is
 *   gone. Told once for every exchange, including one refused by the server
 *   itself before @got_head (a head that is not HTTP, say), until
 *   kp_http1_server_disconnect(): from then on the owner hears nothing.
 */
typedef struct
{
  void (*limits)   (gpointer user_data, KpHttp1ServerLimits *limits);
  void (*got_head) (KpExchange *exchange, gpointer user_data);
  void (*got_body) (KpExchange *exchange, gsize length, gpointer user_data);
  void (*handle)   (KpExchange *exchange, gpointer user_data);
  void (*finished) (KpExchange *exchange, gpointer user_data);
} KpHttp1ServerFuncs;

/* Called once when an exchange is over; @gone when its client left before
 * the whole answer was written.
 */
typedef void (*KpExchangeDoneFunc) (KpExchange *exchange,
                                    gboolean    gone,
                                    gpointer    user_data);

KpHttp1Server *kp_http1_server_new        (const KpHttp1ServerFuncs *funcs,
                                           gpointer                  user_data,
                                           const char               *server_name);
gboolean       kp_http1_server_listen     (KpHttp1Server            *self,
                                           GSocket                  *socket,
                                           GError                  **error);
void           kp_http1_server_disconnect (KpHttp1Server            *self);
gboolean       kp_http1_server_is_stopped (KpHttp1Server            *self);
void           kp_http1_server_free       (KpHttp1Server            *self);
guint          kp_http1_server_count      (KpHttp1Server            *self);

KpExchange         *kp_exchange_ref                  (KpExchange  *exchange);
void                kp_exchange_unref                (KpExchange  *exchange);

/* The request. */
const char         *kp_exchange_get_method           (KpExchange  *exchange);
const char         *kp_exchange_get_path             (KpExchange  *exchange);
GHashTable         *kp_exchange_get_form             (KpExchange  *exchange);
SoupMessageHeaders *kp_exchange_get_request_headers  (KpExchange  *exchange);
GBytes             *kp_exchange_take_body            (KpExchange  *exchange);
const char         *kp_exchange_get_remote_host      (KpExchange  *exchange);

/* Two numbers for the server's owner: which client a token named, and
 * whatever it counts the exchange in.
 */
guint               kp_exchange_get_client           (KpExchange  *exchange);
void                kp_exchange_set_client           (KpExchange  *exchange,
                                                      guint        client);
guint               kp_exchange_get_flags            (KpExchange  *exchange);
void                kp_exchange_set_flags            (KpExchange  *exchange,
                                                      guint        flags);

/* The answer. */
void                kp_exchange_set_status           (KpExchange  *exchange,
                                                      guint        status);
SoupMessageHeaders *kp_exchange_get_response_headers (KpExchange  *exchange);
void                kp_exchange_set_response         (KpExchange  *exchange,
                                                      const char  *content_type,
                                                      GBytes      *body);
void                kp_exchange_take_response        (KpExchange  *exchange,
                                                      const char  *content_type,
                                                      char        *body,
                                                      gsize        length);
void                kp_exchange_pause                (KpExchange  *exchange);
void                kp_exchange_unpause              (KpExchange  *exchange);
void                kp_exchange_write_chunk          (KpExchange  *exchange,
                                                      const char  *data,
                                                      gsize        length);
void                kp_exchange_end_chunks           (KpExchange  *exchange);
gboolean            kp_exchange_is_over              (KpExchange  *exchange);
void                kp_exchange_set_done_func        (KpExchange         *exchange,
                                                      KpExchangeDoneFunc  func,
                                                      gpointer            user_data);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (KpExchange, kp_exchange_unref)

G_END_DECLS
