/* kp-poll-watch.h: many descriptor watches on one epoll source
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _KpPollWatch KpPollWatch;

/**
 * KpPollFunc:
 * @watch: the watch whose descriptor is ready
 * @revents: what it is ready for, among the watch's events, %G_IO_HUP and
 *   %G_IO_ERR; 0 when it runs because of kp_poll_watch_again()
 * @user_data: the data given to kp_poll_watch_new()
 *
 * Called from the main loop. It may change or free @watch and any other
 * watch, and make new ones.
 */
typedef void (*KpPollFunc) (KpPollWatch  *watch,
                            GIOCondition  revents,
                            gpointer      user_data);

KpPollWatch *kp_poll_watch_new        (int           fd,
                                       GIOCondition  events,
                                       KpPollFunc    func,
                                       gpointer      user_data);
void         kp_poll_watch_set_events (KpPollWatch  *watch,
                                       GIOCondition  events);
void         kp_poll_watch_again      (KpPollWatch  *watch);
void         kp_poll_watch_free       (KpPollWatch  *watch);
guint        kp_poll_watches_count    (void);

G_END_DECLS
