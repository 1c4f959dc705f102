/* kp-poll-watch.c: many descriptor watches on one epoll source
 *
 * Every stream held a GSource of its own for each socket it watched (the
 * provider connection, the client connection, and the client's room to
 * write while it reads slowly). GLib 2.74 polls with poll(): each main-loop
 * iteration handed every descriptor of every stream to the kernel, and
 * walked every source in prepare, query and check. With fifty streams that
 * was about a quarter of Keypool's CPU, spent again for each burst of
 * chunks.
 *
 * Here the watches share one source, which polls one epoll descriptor: the
 * kernel keeps the interest list and tells only what is ready. The source
 * may recurse, like the sources it replaces: GLib then does not take its
 * descriptor out of the poll set around each dispatch (which costs a write
 * to the context's wakeup descriptor and one more iteration).
 *
 * A dispatch takes at most BATCH ready descriptors; the epoll descriptor
 * stays readable while more are ready, so other sources get their turn in
 * between and the next iteration goes on. Epoll is level-triggered here, as
 * poll() is: a descriptor left readable is told again in the next dispatch.
 * Several watches may share a descriptor (the client connection's watch and
 * the watch for room to write); epoll is asked for what any of them wants.
 *
 * A callback may free any watch and make new ones, and may run a nested
 * main loop. So a freed watch is only marked dead while a dispatch is under
 * way, and its memory goes when the outermost dispatch ends.
 *
 * A descriptor closed while it is watched leaves epoll by itself, and its
 * number may come back for another socket. A watch of the new socket
 * registers it anew, and a watch left on the old one is told of the new
 * socket's events: its owner must find out that its socket was closed, as
 * kp-http1-server.c does by closing its connections itself.
 *
 * The source belongs to the main context that was the thread's default when
 * the first watch was made; watches are used from that thread only.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include <errno.h>
#include <sys/epoll.h>

#include "kp-poll-watch.h"

/* Ready descriptors taken by one dispatch. */
#define BATCH 64

/* GIOCondition has poll()'s values, which are epoll's. */
G_STATIC_ASSERT ((int)EPOLLIN == (int)G_IO_IN && (int)EPOLLOUT == (int)G_IO_OUT);
G_STATIC_ASSERT ((int)EPOLLPRI == (int)G_IO_PRI && (int)EPOLLERR == (int)G_IO_ERR);
G_STATIC_ASSERT ((int)EPOLLHUP == (int)G_IO_HUP);

#define ASKED   (G_IO_IN | G_IO_OUT | G_IO_PRI)
#define ALWAYS  (G_IO_HUP | G_IO_ERR)

struct _KpPollWatch
{
  int           fd;
  GIOCondition  events;
  KpPollFunc    func;
  gpointer      user_data;
  KpPollWatch  *next;       /* the next watch of the same descriptor */
  gboolean      dead;       /* freed during a dispatch */
  gboolean      again;      /* to be called with no events */
  gboolean      queued;     /* in `again`, or in a dispatch's share of it */
};

typedef struct
{
  KpPollWatch *watches;     /* newest first */
  gboolean     registered;
  guint32      mask;        /* what epoll was asked for, when registered */
} Slot;

static GSource   *source;
static int        epfd = -1;
static GArray    *slots;    /* of Slot, by descriptor */
static GPtrArray *dead;     /* freed during a dispatch */
static GPtrArray *again;    /* of KpPollWatch *, called in the next dispatch */
static guint      depth;    /* dispatches under way, nested */
static guint      n_watches;

static inline Slot *
slot_of (int fd)
{
  return &g_array_index (slots, Slot, fd);
}

static void
call (KpPollWatch  *watch,
      GIOCondition  revents)
{
  watch->again = FALSE;
  watch->func (watch, revents, watch->user_data);
}

/* Tells @fd's watches what it is ready for. The chain is walked with the
 * next watch read before each call: no watch leaves the chain, nor its
 * memory, while a dispatch is under way, and new ones go in at its head.
 */
static void
dispatch_fd (int      fd,
             guint32  events)
{
  KpPollWatch *watch;
  KpPollWatch *next;

  if ((guint)fd >= slots->len)
    return;
  for (watch = slot_of (fd)->watches; watch != NULL; watch = next)
    {
      GIOCondition revents = events & (watch->events | ALWAYS);

      next = watch->next;
      if (!watch->dead && revents != 0)
        call (watch, revents);
    }
}

/* Those kp_poll_watch_again() asked for before this dispatch; those asked
 * for during it wait for the next one.
 */
static void
dispatch_again (void)
{
  g_autoptr(GPtrArray) due = again;

  again = g_ptr_array_new ();
  for (guint i = 0; i < due->len; i++)
    {
      KpPollWatch *watch = g_ptr_array_index (due, i);

      watch->queued = FALSE;
      if (!watch->dead && watch->again)
        call (watch, 0);
    }
}

static void
unlink_watch (KpPollWatch *watch)
{
  KpPollWatch **link = &slot_of (watch->fd)->watches;

  while (*link != watch)
    link = &(*link)->next;
  *link = watch->next;
  /* No dispatch is under way: a queued watch is in `again`, once. */
  if (watch->queued)
    g_ptr_array_remove_fast (again, watch);
  g_free (watch);
}

static void
reap (void)
{
  for (guint i = 0; i < dead->len; i++)
    unlink_watch (g_ptr_array_index (dead, i));
  g_ptr_array_set_size (dead, 0);
}

static gboolean
poller_dispatch (GSource     *gsource,
                 GSourceFunc  callback,
                 gpointer     user_data)
{
  struct epoll_event events[BATCH];
  int n;

  depth++;
  do
    n = epoll_wait (epfd, events, BATCH, 0);
  while (n < 0 && errno == EINTR);
  for (int i = 0; i < n; i++)
    dispatch_fd (events[i].data.fd, events[i].events);
  if (again->len > 0)
    dispatch_again ();
  depth--;

  /* A full batch may have left ready descriptors behind: the epoll
   * descriptor stays readable, and the next iteration takes them. Watches
   * asked for again during dispatch_again() make poller_prepare() say so.
   */
  if (depth == 0 && dead->len > 0)
    reap ();
  return G_SOURCE_CONTINUE;
}

/* Watches asked for again make the source ready before the context polls,
 * and the poll then does not wait. They are asked for from the loop's own
 * thread, so nothing needs waking: a ready time would do the same, but in
 * GLib 2.74 each change of it writes to the context's wakeup descriptor,
 * and the next poll reads it back (three system calls for each answer that
 * ends from its owner's call, kp-http1-server.c).
 */
static gboolean
poller_prepare (GSource *gsource,
                gint    *timeout)
{
  *timeout = -1;
  return again->len > 0;
}

static GSourceFuncs poller_funcs = { poller_prepare, NULL, poller_dispatch, NULL, NULL, NULL };

static void
ensure_poller (void)
{
  if (source != NULL)
    return;

  epfd = epoll_create1 (EPOLL_CLOEXEC);
  if (epfd < 0)
    g_error ("Could not make an epoll descriptor: %s", g_strerror (errno));
  slots = g_array_new (FALSE, TRUE, sizeof (Slot));
  dead = g_ptr_array_new ();
  again = g_ptr_array_new ();
  source = g_source_new (&poller_funcs, sizeof (GSource));
  g_source_add_unix_fd (source, epfd, G_IO_IN);
  g_source_set_can_recurse (source, TRUE);
  g_source_set_static_name (source, "[keypool] sockets");
  g_source_attach (source, g_main_context_get_thread_default ());
}

/* Tells epoll what the live watches of @fd want. @fresh: a watch was just
 * made, and @fd may be a new socket that reuses a closed one's number, so
 * epoll is asked even if the slot seems to say it all: a modification of a
 * descriptor epoll does not know fails, and it is added then.
 */
static void
update_fd (int      fd,
           gboolean fresh)
{
  Slot *slot = slot_of (fd);
  struct epoll_event event = { 0 };
  gboolean any = FALSE;
  int op;

  for (KpPollWatch *watch = slot->watches; watch != NULL; watch = watch->next)
    if (!watch->dead)
      {
        any = TRUE;
        event.events |= watch->events & ASKED;
      }
  event.data.fd = fd;

  if (!any)
    {
      /* It fails harmlessly when the descriptor was closed already. */
      if (slot->registered)
        epoll_ctl (epfd, EPOLL_CTL_DEL, fd, NULL);
      slot->registered = FALSE;
      return;
    }
  if (slot->registered && !fresh && slot->mask == event.events)
    return;

  op = slot->registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
  if (epoll_ctl (epfd, op, fd, &event) < 0)
    {
      if (op == EPOLL_CTL_ADD && errno == EEXIST)
        op = EPOLL_CTL_MOD;
      else if (op == EPOLL_CTL_MOD && errno == ENOENT)
        op = EPOLL_CTL_ADD;
      else
        op = -1;
      if (op == -1 || epoll_ctl (epfd, op, fd, &event) < 0)
        {
          /* Closed under its watches: nothing is left to tell them. */
          if (errno != EBADF)
            g_warning ("Could not watch descriptor %d: %s", fd, g_strerror (errno));
          slot->registered = FALSE;
          return;
        }
    }
  slot->registered = TRUE;
  slot->mask = event.events;
}

/**
 * kp_poll_watch_new:
 * @fd: a descriptor epoll can watch (a socket, a pipe)
 * @events: %G_IO_IN, %G_IO_OUT, %G_IO_PRI; %G_IO_HUP and %G_IO_ERR are
 *   always told, as poll() does
 * @func: called when @fd is ready
 * @user_data: for @func
 *
 * Watches @fd until kp_poll_watch_free(). Level-triggered: @func is called
 * in every main-loop iteration in which @fd is ready.
 *
 * Returns: (transfer full): the watch
 */
KpPollWatch *
kp_poll_watch_new (int           fd,
                   GIOCondition  events,
                   KpPollFunc    func,
                   gpointer      user_data)
{
  KpPollWatch *watch;
  Slot *slot;

  g_return_val_if_fail (fd >= 0, NULL);
  g_return_val_if_fail (func != NULL, NULL);

  ensure_poller ();
  if ((guint)fd >= slots->len)
    g_array_set_size (slots, MAX ((guint)fd + 1, slots->len * 2));

  watch = g_new0 (KpPollWatch, 1);
  watch->fd = fd;
  watch->events = events;
  watch->func = func;
  watch->user_data = user_data;
  slot = slot_of (fd);
  watch->next = slot->watches;
  slot->watches = watch;
  n_watches++;
  update_fd (fd, TRUE);
  return watch;
}

/**
 * kp_poll_watch_set_events:
 * @watch: a watch
 * @events: what to watch for from now on, as for kp_poll_watch_new()
 *
 * Costs nothing when @events does not change what epoll is asked for.
 */
void
kp_poll_watch_set_events (KpPollWatch  *watch,
                          GIOCondition  events)
{
  g_return_if_fail (watch != NULL && !watch->dead);

  if (watch->events == events)
    return;
  watch->events = events;
  update_fd (watch->fd, FALSE);
}

/**
 * kp_poll_watch_again:
 * @watch: a watch
 *
 * Calls @watch's function in the next main-loop iteration even if its
 * descriptor is not ready then (with no events; once, if it is): for a
 * reader that stopped before the socket would block, or bytes held above
 * the socket (in a TLS layer) that epoll cannot see.
 */
void
kp_poll_watch_again (KpPollWatch *watch)
{
  g_return_if_fail (watch != NULL && !watch->dead);

  if (watch->again)
    return;
  watch->again = TRUE;
  if (!watch->queued)
    {
      watch->queued = TRUE;
      g_ptr_array_add (again, watch);
    }
  /* The dispatch under way takes it after its descriptors, or else the
   * next one does (poller_prepare()). */
}

/**
 * kp_poll_watch_free:
 * @watch: (transfer full): a watch
 *
 * Stops @watch: its function is not called again, even later in a
 * dispatch under way. Frees @watch before the descriptor is closed, or
 * after: either is safe.
 */
void
kp_poll_watch_free (KpPollWatch *watch)
{
  g_return_if_fail (watch != NULL && !watch->dead);

  watch->dead = TRUE;
  n_watches--;
  update_fd (watch->fd, FALSE);
  if (depth > 0)
    g_ptr_array_add (dead, watch);
  else
    unlink_watch (watch);
}

/**
 * kp_poll_watches_count:
 *
 * Returns: the watches made and not freed
 */
guint
kp_poll_watches_count (void)
{
  return n_watches;
}
