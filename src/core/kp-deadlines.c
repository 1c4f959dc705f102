/* kp-deadlines.c: many deadlines on one main-loop timer
 *
 * Every relay has a deadline (connect, first byte, idle body) and so has
 * every client connection (headers, body, keep-alive). With a GSource each,
 * a request attached, moved and destroyed several timers, and in GLib 2.74
 * each of those calls writes to the main context's wakeup eventfd and costs
 * a main-loop iteration, even from the loop's own thread. Here they share
 * one source: a binary heap ordered by time, and the source's ready time is
 * moved only when a deadline comes sooner than it is set for. A deadline
 * that is cleared or moved later stays behind it; the timer then fires a
 * little early, finds nothing due, and follows the heap's new first
 * deadline. Under load new deadlines are later than the first one, so a
 * request costs no GSource call at all.
 *
 * The timer belongs to the main context that was the thread's default when
 * the first deadline was set; deadlines are used from that thread only.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include "kp-deadlines.h"

#define NOT_SET (-1)

static GPtrArray *heap;    /* of KpDeadline *, the soonest first */
static GSource   *timer;

static inline KpDeadline *
at (guint i)
{
  return g_ptr_array_index (heap, i);
}

static inline void
place (KpDeadline *deadline,
       guint       i)
{
  heap->pdata[i] = deadline;
  deadline->index = i;
}

static void
sift_up (guint i)
{
  KpDeadline *deadline = at (i);

  while (i > 0)
    {
      guint parent = (i - 1) / 2;

      if (at (parent)->when_us <= deadline->when_us)
        break;
      place (at (parent), i);
      i = parent;
    }
  place (deadline, i);
}

static void
sift_down (guint i)
{
  KpDeadline *deadline = at (i);
  guint n = heap->len;

  for (;;)
    {
      guint child = 2 * i + 1;

      if (child >= n)
        break;
      if (child + 1 < n && at (child + 1)->when_us < at (child)->when_us)
        child++;
      if (deadline->when_us <= at (child)->when_us)
        break;
      place (at (child), i);
      i = child;
    }
  place (deadline, i);
}

static void
take_out (KpDeadline *deadline)
{
  guint i = deadline->index;
  KpDeadline *last = g_ptr_array_steal_index_fast (heap, heap->len - 1);

  deadline->when_us = NOT_SET;
  if (last == deadline)
    return;
  place (last, i);
  sift_down (i);
  sift_up (last->index);
}

/* Moves the timer sooner when the first deadline is sooner than it. */
static void
arm (void)
{
  gint64 ready;
  gint64 first;

  if (heap->len == 0)
    return;
  first = at (0)->when_us;
  ready = g_source_get_ready_time (timer);
  if (ready == -1 || first < ready)
    g_source_set_ready_time (timer, first);
}

static gboolean
timer_dispatch (GSource     *source,
                GSourceFunc  callback,
                gpointer     user_data)
{
  gint64 now = g_source_get_time (source);

  while (heap->len > 0 && at (0)->when_us <= now)
    {
      KpDeadline *deadline = at (0);

      take_out (deadline);
      deadline->func (deadline, deadline->user_data);
    }

  if (heap->len == 0)
    g_source_set_ready_time (source, -1);
  else if (g_source_get_ready_time (source) != at (0)->when_us)
    g_source_set_ready_time (source, at (0)->when_us);

  return G_SOURCE_CONTINUE;
}

static GSourceFuncs timer_funcs = { NULL, NULL, timer_dispatch, NULL, NULL, NULL };

static void
ensure_timer (void)
{
  if (timer != NULL)
    return;

  heap = g_ptr_array_new ();
  timer = g_source_new (&timer_funcs, sizeof (GSource));
  g_source_set_static_name (timer, "[keypool] deadlines");
  g_source_set_ready_time (timer, -1);
  g_source_attach (timer, g_main_context_get_thread_default ());
}

/**
 * kp_deadline_init:
 * @deadline: the deadline, inside its owner
 * @func: called when the deadline passes
 * @user_data: for @func
 *
 * Makes @deadline ready for use, not set.
 */
void
kp_deadline_init (KpDeadline     *deadline,
                  KpDeadlineFunc  func,
                  gpointer        user_data)
{
  g_return_if_fail (deadline != NULL);
  g_return_if_fail (func != NULL);

  deadline->when_us = NOT_SET;
  deadline->index = 0;
  deadline->func = func;
  deadline->user_data = user_data;
}

/**
 * kp_deadline_set:
 * @deadline: an initialized deadline
 * @when_us: monotonic microseconds, as kp_deadlines_now() tells, or -1
 *
 * Sets @deadline to pass at @when_us (at once if that is past), or clears
 * it for -1. Setting a set deadline moves it.
 */
void
kp_deadline_set (KpDeadline *deadline,
                 gint64      when_us)
{
  g_return_if_fail (deadline != NULL);

  if (when_us < 0)
    {
      kp_deadline_clear (deadline);
      return;
    }

  ensure_timer ();
  if (deadline->when_us == NOT_SET)
    {
      deadline->when_us = when_us;
      g_ptr_array_add (heap, deadline);
      sift_up (heap->len - 1);
    }
  else if (when_us < deadline->when_us)
    {
      deadline->when_us = when_us;
      sift_up (deadline->index);
    }
  else
    {
      deadline->when_us = when_us;
      sift_down (deadline->index);
    }
  arm ();
}

/**
 * kp_deadline_set_in:
 * @deadline: an initialized deadline
 * @ms: from now (the main loop's time of this iteration)
 *
 * Sets @deadline to pass @ms milliseconds from now.
 */
void
kp_deadline_set_in (KpDeadline *deadline,
                    guint       ms)
{
  kp_deadline_set (deadline, kp_deadlines_now () + (gint64)ms * 1000);
}

/**
 * kp_deadline_clear:
 * @deadline: an initialized deadline
 *
 * Clears @deadline if it is set; its function will not be called.
 */
void
kp_deadline_clear (KpDeadline *deadline)
{
  g_return_if_fail (deadline != NULL);

  if (deadline->when_us != NOT_SET)
    take_out (deadline);
}

gboolean
kp_deadline_is_set (const KpDeadline *deadline)
{
  return deadline->when_us != NOT_SET;
}

/**
 * kp_deadlines_now:
 *
 * Returns: the monotonic time deadlines are measured in, in microseconds:
 *   the main loop's time of this iteration, read without a system call
 */
gint64
kp_deadlines_now (void)
{
  ensure_timer ();
  return g_source_get_time (timer);
}

/**
 * kp_deadlines_count:
 *
 * Returns: how many deadlines are set (for tests)
 */
guint
kp_deadlines_count (void)
{
  return heap != NULL ? heap->len : 0;
}
