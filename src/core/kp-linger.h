/* kp-linger.h: answering on a connection taken from libsoup, and closing it
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <libsoup/soup.h>

G_BEGIN_DECLS

GHashTable *kp_linger_table_new         (void);
void        kp_linger_start             (GHashTable        *table,
                                         GIOStream         *stream,
                                         GBytes            *answer);
GBytes     *kp_linger_serialize_answer  (SoupServerMessage *msg);

G_END_DECLS
