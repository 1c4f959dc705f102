/* kp-conn-watch.h: one watch on a client connection for its whole life
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* Called once when the client of a busy connection has hung up. */
typedef void (*KpConnGoneFunc) (gpointer user_data);

void kp_conn_watch_idle    (GSocket        *socket);
void kp_conn_watch_reading (GSocket        *socket);
void kp_conn_watch_busy    (GSocket        *socket,
                            KpConnGoneFunc  gone,
                            gpointer        user_data);
void kp_conn_watch_release (GSocket        *socket,
                            gpointer        user_data);
void kp_conn_watch_stop    (GSocket        *socket);

G_END_DECLS
