/* test-poll-watch.c: many descriptor watches on one epoll source
 *
 * Real socket pairs, watched through the main loop. A watch is told when
 * its socket is ready and only then; what it waits for can change; a
 * callback may free its own watch or any other one of the same batch, make
 * new ones, and run the loop again inside itself; a batch is bounded and
 * the ready sockets beyond it are served in the next iterations. The test
 * never waits for a time: it runs the loop until nothing more is ready
 * (sockets that are ready are told without waiting) or until a condition
 * holds. ASan and valgrind tell of any use of a freed watch.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include "config.h"

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kp-poll-watch.h"
#include "kp-test-util.h"

#define WAIT_MS 30000

typedef struct _Pair Pair;

struct _Pair
{
  int           fds[2];     /* the watch is on fds[0] */
  KpPollWatch  *watch;
  guint         calls;
  GIOCondition  last;
  gboolean      drain;      /* read what is ready, each call */
  Pair         *victim;     /* its watch is freed by this one's first call */
  Pair         *spawn;      /* a watch is made for it by this one's first call */
  gboolean      free_self;  /* this one's first call frees its own watch */
  Pair         *nested;     /* this one's first call makes it ready, and runs
                             * the loop until it is told */
  guint         agains;     /* calls that ask for one more call */
};

static void
pair_open (Pair *pair)
{
  memset (pair, 0, sizeof *pair);
  g_assert_no_errno (socketpair (AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
                                 pair->fds));
}

static void
pair_close (Pair *pair)
{
  g_clear_pointer (&pair->watch, kp_poll_watch_free);
  for (guint i = 0; i < 2; i++)
    if (pair->fds[i] >= 0)
      {
        close (pair->fds[i]);
        pair->fds[i] = -1;
      }
}

static void
pair_send (Pair *pair)
{
  g_assert_cmpint (write (pair->fds[1], "x", 1), ==, 1);
}

static void
drain (int fd)
{
  char buffer[256];

  while (read (fd, buffer, sizeof buffer) > 0)
    ;
}

typedef struct
{
  Pair  *pairs;
  guint  n;
} Pairs;

static gboolean
all_called (gpointer data)
{
  Pairs *set = data;

  for (guint i = 0; i < set->n; i++)
    if (set->pairs[i].calls == 0)
      return FALSE;
  return TRUE;
}

static void on_ready (KpPollWatch *watch, GIOCondition revents, gpointer user_data);

static void
pair_watch (Pair         *pair,
            GIOCondition  events)
{
  pair->watch = kp_poll_watch_new (pair->fds[0], events, on_ready, pair);
}

static void
on_ready (KpPollWatch  *watch,
          GIOCondition  revents,
          gpointer      user_data)
{
  Pair *pair = user_data;

  /* A freed watch is never told anything again. */
  g_assert_true (watch == pair->watch);
  pair->calls++;
  pair->last = revents;
  if (pair->drain)
    drain (pair->fds[0]);
  if (pair->agains > 0)
    {
      pair->agains--;
      kp_poll_watch_again (watch);
    }
  if (pair->calls > 1)
    return;
  if (pair->nested != NULL)
    {
      Pairs set = { pair->nested, 1 };

      pair_send (pair->nested);
      g_assert_true (kp_test_spin_until (all_called, &set, WAIT_MS));
    }
  if (pair->victim != NULL)
    g_clear_pointer (&pair->victim->watch, kp_poll_watch_free);
  if (pair->spawn != NULL)
    pair_watch (pair->spawn, G_IO_IN);
  if (pair->free_self)
    g_clear_pointer (&pair->watch, kp_poll_watch_free);
}

/* Runs the loop until no source is ready: a socket that is ready is told
 * in these iterations, since none of them waits.
 */
static void
settle (void)
{
  for (guint i = 0; i < 10000 && g_main_context_iteration (NULL, FALSE); i++)
    ;
}

/* Nothing is ready: not even a descriptor whose watches stopped asking. */
static void
assert_quiet (void)
{
  settle ();
  g_assert_false (g_main_context_iteration (NULL, FALSE));
}

/* Once what was ready has been told, @pair is told nothing more. */
static void
assert_untold (Pair *pair)
{
  settle ();
  pair->calls = 0;
  assert_quiet ();
  g_assert_cmpuint (pair->calls, ==, 0);
}

/* Closes the other end; returns what @pair's watch was told of it. */
static GIOCondition
hang_up (Pair *pair)
{
  Pairs set = { pair, 1 };

  close (pair->fds[1]);
  pair->fds[1] = -1;
  pair->calls = 0;
  g_assert_true (kp_test_spin_until (all_called, &set, WAIT_MS));
  return pair->last;
}

static void
test_readable (void)
{
  Pair pair;
  Pairs set = { &pair, 1 };

  pair_open (&pair);
  pair_watch (&pair, G_IO_IN);
  g_assert_cmpuint (kp_poll_watches_count (), ==, 1);
  settle ();
  g_assert_cmpuint (pair.calls, ==, 0);

  pair_send (&pair);
  g_assert_true (kp_test_spin_until (all_called, &set, WAIT_MS));
  g_assert_cmpuint (pair.last, ==, G_IO_IN);

  /* Level-triggered: unread bytes are told again. */
  settle ();
  g_assert_cmpuint (pair.calls, >, 1);

  /* Read: nothing is ready any more. */
  drain (pair.fds[0]);
  assert_untold (&pair);

  /* The other end closed: readable, and a hang-up. */
  g_assert_cmpuint (hang_up (&pair), ==, G_IO_IN | G_IO_HUP);

  pair_close (&pair);
  g_assert_cmpuint (kp_poll_watches_count (), ==, 0);
}

static void
test_set_events (void)
{
  Pair pair;
  Pairs set = { &pair, 1 };

  pair_open (&pair);
  pair_watch (&pair, 0);

  /* Watching for nothing: bytes waiting, room to write, no call. */
  pair_send (&pair);
  assert_untold (&pair);

  kp_poll_watch_set_events (pair.watch, G_IO_OUT);
  g_assert_true (kp_test_spin_until (all_called, &set, WAIT_MS));
  g_assert_cmpuint (pair.last, ==, G_IO_OUT);

  kp_poll_watch_set_events (pair.watch, G_IO_IN);
  pair.calls = 0;
  g_assert_true (kp_test_spin_until (all_called, &set, WAIT_MS));
  g_assert_cmpuint (pair.last, ==, G_IO_IN);

  kp_poll_watch_set_events (pair.watch, 0);
  assert_untold (&pair);

  /* A hang-up is told even to a watch that waits for nothing. */
  g_assert_cmpuint (hang_up (&pair), ==, G_IO_HUP);

  pair_close (&pair);
}

/* Every watch of a batch frees its own watch, and the watch of the next
 * pair (whose readiness is in the same batch), whichever comes first.
 */
static void
test_free_in_batch (void)
{
  enum { N = 16 };
  Pair pairs[N];
  guint called = 0;

  for (guint i = 0; i < N; i++)
    pair_open (&pairs[i]);
  for (guint i = 0; i < N; i++)
    {
      pairs[i].victim = &pairs[(i + 1) % N];
      pairs[i].free_self = TRUE;
      pair_watch (&pairs[i], G_IO_IN);
      pair_send (&pairs[i]);
    }
  g_assert_cmpuint (kp_poll_watches_count (), ==, N);

  settle ();
  for (guint i = 0; i < N; i++)
    {
      g_assert_cmpuint (pairs[i].calls, <=, 1);
      g_assert_null (pairs[i].watch);
      called += pairs[i].calls;
    }
  /* A call frees at most two watches, and the first call's victim was
   * ready in the batch but never told.
   */
  g_assert_cmpuint (called, >=, N / 2);
  g_assert_cmpuint (called, <, N);
  g_assert_cmpuint (kp_poll_watches_count (), ==, 0);

  for (guint i = 0; i < N; i++)
    pair_close (&pairs[i]);
}

/* Two watches of one socket, and two watches called by
 * kp_poll_watch_again(): each frees the other on its call, so only one is
 * called.
 */
static void
test_free_shared (void)
{
  Pair a, b;

  pair_open (&a);
  a.drain = TRUE;
  b = a;
  a.victim = &b;
  b.victim = &a;
  pair_watch (&a, G_IO_IN);
  pair_watch (&b, G_IO_IN);
  pair_send (&a);
  settle ();
  g_assert_cmpuint (a.calls + b.calls, ==, 1);
  g_assert_cmpuint (kp_poll_watches_count (), ==, 1);
  g_clear_pointer (&a.watch, kp_poll_watch_free);
  g_clear_pointer (&b.watch, kp_poll_watch_free);

  drain (a.fds[0]);
  a.calls = b.calls = 0;
  pair_watch (&a, 0);
  pair_watch (&b, 0);
  kp_poll_watch_again (a.watch);
  kp_poll_watch_again (b.watch);
  settle ();
  g_assert_cmpuint (a.calls + b.calls, ==, 1);
  g_assert_cmpuint (kp_poll_watches_count (), ==, 1);
  g_clear_pointer (&b.watch, kp_poll_watch_free);
  pair_close (&a);
}

/* More ready sockets than a dispatch takes: one iteration serves some,
 * the next iterations the others, each once.
 */
static void
test_many_ready (void)
{
  enum { N = 300 };
  Pair *pairs = g_new0 (Pair, N);
  Pairs set = { pairs, N };
  guint first = 0;

  for (guint i = 0; i < N; i++)
    {
      pair_open (&pairs[i]);
      pairs[i].drain = TRUE;
      pair_watch (&pairs[i], G_IO_IN);
      pair_send (&pairs[i]);
    }

  g_main_context_iteration (NULL, FALSE);
  for (guint i = 0; i < N; i++)
    first += pairs[i].calls;
  g_assert_cmpuint (first, >, 0);
  g_assert_cmpuint (first, <, N);

  g_assert_true (kp_test_spin_until (all_called, &set, WAIT_MS));
  settle ();
  for (guint i = 0; i < N; i++)
    {
      g_assert_cmpuint (pairs[i].calls, ==, 1);
      pair_close (&pairs[i]);
    }
  g_free (pairs);
}

/* A watch made during a dispatch, for a socket that is ready already (and
 * one on a descriptor of the batch), is told in a later iteration.
 */
static void
test_add_in_dispatch (void)
{
  Pair a, b, c;
  Pairs set = { &b, 1 };

  pair_open (&a);
  pair_open (&b);
  a.spawn = &b;
  a.drain = TRUE;
  b.drain = TRUE;
  pair_watch (&a, G_IO_IN);
  pair_send (&a);
  pair_send (&b);
  g_assert_true (kp_test_spin_until (all_called, &set, WAIT_MS));
  g_assert_cmpuint (a.calls, ==, 1);
  g_assert_cmpuint (b.calls, ==, 1);
  g_assert_cmpuint (kp_poll_watches_count (), ==, 2);

  /* A second watch of a's socket, made while a is told. */
  c = a;
  c.calls = 0;
  c.spawn = NULL;
  c.watch = NULL;
  a.calls = 0;
  a.spawn = &c;
  a.drain = FALSE;
  pair_send (&a);
  set.pairs = &c;
  g_assert_true (kp_test_spin_until (all_called, &set, WAIT_MS));
  g_assert_cmpuint (kp_poll_watches_count (), ==, 3);

  g_clear_pointer (&c.watch, kp_poll_watch_free);
  pair_close (&a);
  pair_close (&b);
  g_assert_cmpuint (kp_poll_watches_count (), ==, 0);
}

/* Two watches of one socket each hear of what they wait for. */
static void
test_shared_fd (void)
{
  Pair in, out;
  Pairs set = { &out, 1 };

  pair_open (&in);
  out = in;
  in.drain = TRUE;
  pair_watch (&in, G_IO_IN);
  pair_watch (&out, G_IO_OUT);

  g_assert_true (kp_test_spin_until (all_called, &set, WAIT_MS));
  g_assert_cmpuint (out.last, ==, G_IO_OUT);
  g_assert_cmpuint (in.calls, ==, 0);

  g_clear_pointer (&out.watch, kp_poll_watch_free);
  settle ();
  pair_send (&in);
  set.pairs = &in;
  g_assert_true (kp_test_spin_until (all_called, &set, WAIT_MS));
  g_assert_cmpuint (in.last, ==, G_IO_IN);

  /* The socket still has room, but no watch asks for it any more. */
  assert_quiet ();

  pair_close (&in);
}

static void
test_again (void)
{
  Pair pair;
  Pairs set = { &pair, 1 };

  pair_open (&pair);
  pair_watch (&pair, G_IO_IN);
  kp_poll_watch_again (pair.watch);
  kp_poll_watch_again (pair.watch);
  g_assert_true (kp_test_spin_until (all_called, &set, WAIT_MS));
  g_assert_cmpuint (pair.last, ==, 0);
  settle ();
  g_assert_cmpuint (pair.calls, ==, 1);

  /* Asked for outside a dispatch: one iteration that does not block calls
   * it, and then the loop is quiet.
   */
  pair.calls = 0;
  kp_poll_watch_again (pair.watch);
  g_assert_true (g_main_context_iteration (NULL, FALSE));
  g_assert_cmpuint (pair.calls, ==, 1);
  g_assert_cmpuint (pair.last, ==, 0);
  assert_quiet ();

  /* Asked for by its own call for a ready descriptor: the same dispatch
   * calls it again, after the descriptors.
   */
  pair.calls = 0;
  pair.drain = TRUE;
  pair.agains = 1;
  pair_send (&pair);
  g_assert_true (g_main_context_iteration (NULL, FALSE));
  g_assert_cmpuint (pair.calls, ==, 2);
  g_assert_cmpuint (pair.last, ==, 0);
  assert_quiet ();
  pair.drain = FALSE;

  /* Asked for, then freed: never called. */
  pair.calls = 0;
  kp_poll_watch_again (pair.watch);
  g_clear_pointer (&pair.watch, kp_poll_watch_free);
  settle ();
  g_assert_cmpuint (pair.calls, ==, 0);

  /* Ready and asked for in the same dispatches, asking again each time it
   * is called, then freed while asked for: never read again (valgrind).
   */
  pair_send (&pair);
  pair.agains = 100;
  pair_watch (&pair, G_IO_IN);
  kp_poll_watch_again (pair.watch);
  for (guint i = 0; i < 3; i++)
    g_main_context_iteration (NULL, FALSE);
  g_assert_cmpuint (pair.agains, <, 100);
  g_assert_cmpuint (pair.agains, >, 0);
  pair_close (&pair);
  pair.calls = 0;
  settle ();
  g_assert_cmpuint (pair.calls, ==, 0);
}

/* A callback runs the loop inside itself: the source is dispatched again
 * within its own dispatch, and there frees the watch that is still being
 * told.
 */
static void
test_recurse (void)
{
  Pair outer, inner;
  Pairs set = { &outer, 1 };

  pair_open (&outer);
  pair_open (&inner);
  outer.drain = inner.drain = TRUE;
  outer.nested = &inner;
  inner.victim = &outer;
  pair_watch (&outer, G_IO_IN);
  pair_watch (&inner, G_IO_IN);
  pair_send (&outer);
  g_assert_true (kp_test_spin_until (all_called, &set, WAIT_MS));
  settle ();
  g_assert_cmpuint (outer.calls, ==, 1);
  g_assert_cmpuint (inner.calls, ==, 1);
  g_assert_null (outer.watch);
  g_assert_cmpuint (kp_poll_watches_count (), ==, 1);
  pair_close (&outer);
  pair_close (&inner);
}

/* A socket closed under its watch; a new socket gets the same number and
 * a watch of its own, which must hear of it although the old watch is
 * still there.
 */
static void
test_closed_reused (void)
{
  Pair old, fresh;
  Pairs set = { &fresh, 1 };
  int number;

  pair_open (&old);
  pair_watch (&old, G_IO_IN);
  number = old.fds[0];
  close (old.fds[0]);
  old.fds[0] = -1;

  pair_open (&fresh);
  if (fresh.fds[1] == number)
    {
      fresh.fds[1] = fresh.fds[0];
      fresh.fds[0] = number;
    }
  else if (fresh.fds[0] != number)
    {
      /* The lowest free number was not the one closed: swap it in. */
      g_assert_no_errno (dup2 (fresh.fds[0], number));
      close (fresh.fds[0]);
      fresh.fds[0] = number;
    }
  fresh.drain = TRUE;
  pair_watch (&fresh, G_IO_IN);
  pair_send (&fresh);
  g_assert_true (kp_test_spin_until (all_called, &set, WAIT_MS));

  /* The old watch goes; the new one keeps hearing. */
  g_clear_pointer (&old.watch, kp_poll_watch_free);
  fresh.calls = 0;
  pair_send (&fresh);
  g_assert_true (kp_test_spin_until (all_called, &set, WAIT_MS));

  pair_close (&old);
  pair_close (&fresh);
  g_assert_cmpuint (kp_poll_watches_count (), ==, 0);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/keypool/poll-watch/readable", test_readable);
  g_test_add_func ("/keypool/poll-watch/set-events", test_set_events);
  g_test_add_func ("/keypool/poll-watch/free-in-batch", test_free_in_batch);
  g_test_add_func ("/keypool/poll-watch/free-shared", test_free_shared);
  g_test_add_func ("/keypool/poll-watch/many-ready", test_many_ready);
  g_test_add_func ("/keypool/poll-watch/add-in-dispatch", test_add_in_dispatch);
  g_test_add_func ("/keypool/poll-watch/shared-fd", test_shared_fd);
  g_test_add_func ("/keypool/poll-watch/again", test_again);
  g_test_add_func ("/keypool/poll-watch/recurse", test_recurse);
  g_test_add_func ("/keypool/poll-watch/closed-reused", test_closed_reused);

  return g_test_run ();
}
