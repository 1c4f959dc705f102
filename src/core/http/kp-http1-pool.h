/* kp-http1-pool.h: Keypool's own HTTP/1.1 client for relays, and its
 * keep-alive pool
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <libsoup/soup.h>

G_BEGIN_DECLS

typedef struct _KpHttp1Pool    KpHttp1Pool;
typedef struct _KpHttp1Request KpHttp1Request;

/* kp_http1_request_read() found nothing to read yet: readable() follows. */
#define KP_HTTP1_WOULD_BLOCK (-2)

/**
 * KpHttp1Callbacks:
 * @connecting: a new connection is being made for the request
 * @sent: the request is written; its answer is awaited
 * @head: the final answer's status and headers arrived; the body is read
 *   with kp_http1_request_read()
 * @readable: more of the body may be read
 * @failed: the request failed before its head arrived
 *
 * Each is called from the main loop, never from within a call into the
 * client; any of them may free the request.
 */
typedef struct
{
  void (*connecting) (gpointer            user_data);
  void (*sent)       (gpointer            user_data);
  void (*head)       (guint               status,
                      SoupMessageHeaders *headers,
                      gpointer            user_data);
  void (*readable)   (gpointer            user_data);
  void (*failed)     (const GError       *error,
                      gpointer            user_data);
} KpHttp1Callbacks;

KpHttp1Pool    *kp_http1_pool_new            (guint                   per_host,
                                              gboolean                use_proxy);
KpHttp1Pool    *kp_http1_pool_ref            (KpHttp1Pool            *pool);
void            kp_http1_pool_unref          (KpHttp1Pool            *pool);
void            kp_http1_pool_close_idle     (KpHttp1Pool            *pool);

KpHttp1Request *kp_http1_request_new         (KpHttp1Pool            *pool,
                                              GUri                   *uri,
                                              const char             *method,
                                              SoupMessageHeaders     *headers,
                                              GBytes                 *body,
                                              const KpHttp1Callbacks *callbacks,
                                              gpointer                user_data);
gssize          kp_http1_request_read        (KpHttp1Request         *request,
                                              guint8                 *buffer,
                                              gsize                   size,
                                              GError                **error);
void            kp_http1_request_again       (KpHttp1Request         *request);
void            kp_http1_request_free        (KpHttp1Request         *request);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (KpHttp1Pool, kp_http1_pool_unref)

G_END_DECLS
