/* kp-test-util.h: helpers the test programs share
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

gboolean kp_test_spin_until     (gboolean      (*done) (gpointer),
                                 gpointer        data,
                                 guint           timeout_ms);
void     kp_test_spin_ms        (guint           ms);
void     kp_test_remove_tree    (const char     *path);
void     kp_test_store_result   (GObject        *object,
                                 GAsyncResult   *result,
                                 gpointer        user_data);
gboolean kp_test_result_ready   (gpointer        data);

G_END_DECLS
