/* kp-upstream-watch.h: one flat source that says when an upstream body may
 * have more to read
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

GSource *kp_upstream_watch_new      (GPollableInputStream *stream,
                                     gboolean              flat,
                                     GCancellable         *cancellable);
gboolean kp_upstream_watch_is_flat  (GSource              *watch);
void     kp_upstream_watch_again    (GSource              *watch);
void     kp_source_set_unblocked    (GSource              *source);

G_END_DECLS
