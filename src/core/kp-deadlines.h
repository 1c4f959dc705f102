/* kp-deadlines.h: many deadlines on one main-loop timer
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _KpDeadline KpDeadline;

/**
 * KpDeadlineFunc:
 * @deadline: the deadline that passed; it is no longer set
 * @user_data: the data given to kp_deadline_init()
 *
 * Called from the main loop once @deadline's time has come. It may set
 * @deadline again, set or clear others, and free the structure that holds
 * @deadline (after clearing it, or since it is already not set).
 */
typedef void (*KpDeadlineFunc) (KpDeadline *deadline,
                                gpointer    user_data);

/* Kept inside its owner's structure; the fields are private. */
struct _KpDeadline
{
  gint64          when_us;  /* monotonic, or -1 when not set */
  guint           index;    /* in the heap, while set */
  KpDeadlineFunc  func;
  gpointer        user_data;
};

void     kp_deadline_init    (KpDeadline     *deadline,
                              KpDeadlineFunc  func,
                              gpointer        user_data);
void     kp_deadline_set     (KpDeadline     *deadline,
                              gint64          when_us);
void     kp_deadline_set_in  (KpDeadline     *deadline,
                              guint           ms);
void     kp_deadline_clear   (KpDeadline     *deadline);
gboolean kp_deadline_is_set  (const KpDeadline *deadline);
gint64   kp_deadlines_now    (void);
guint    kp_deadlines_count  (void);

G_END_DECLS
