/* kp-http.h: small helpers shared by the server and the relay
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <libsoup/soup.h>

#include "http/kp-http1-server.h"
#include "kp-provider.h"
#include "wire/kp-wire.h"

G_BEGIN_DECLS

void      kp_http_reply_error      (KpExchange    *exchange,
                                    guint          status,
                                    const char    *code,
                                    const char    *format,
                                    ...) G_GNUC_PRINTF (4, 5);
void      kp_http_set_request_path (KpWireRequest *req,
                                    KpExchange    *exchange);
const KpWire *kp_http_client_wire  (KpExchange    *exchange);
void      kp_http_reply_json       (KpExchange    *exchange,
                                    guint          status,
                                    char          *json);
void      kp_http_read_bounded_async  (SoupSession         *session,
                                       SoupMessage         *msg,
                                       gsize                cap,
                                       int                  priority,
                                       GCancellable        *cancellable,
                                       GAsyncReadyCallback  callback,
                                       gpointer             user_data);
GBytes   *kp_http_read_bounded_finish (GAsyncResult        *result,
                                       SoupMessage        **msg,
                                       GError             **error);
gboolean  kp_http_host_is_loopback (const char        *host);
gboolean  kp_http_secret_equal     (const char        *a,
                                    const char        *b);

G_END_DECLS
