/* test-deadlines.c: many deadlines on one main-loop timer
 *
 * Deadlines pass in the order of their times, whatever the order they were
 * set, moved or cleared in; a cleared one never passes; a callback may set
 * others; and nothing is left set afterwards. The test waits for the
 * deadlines to pass (never for a fixed time), so a slow machine only makes
 * it slower: the order does not depend on when the loop runs.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include "config.h"

#include "kp-deadlines.h"

#define WAIT_US (30 * G_USEC_PER_SEC)

typedef struct
{
  KpDeadline  deadline;
  int         name;
  GArray     *order;    /* of int: the names, as they passed */
  KpDeadline *then;     /* set when this one passes, or NULL */
  gint64      due;      /* test_many: the time it was last set to */
  gint64      passed_at;
} Item;

static void
on_passed (KpDeadline *deadline,
           gpointer    user_data)
{
  Item *item = user_data;

  g_assert_false (kp_deadline_is_set (deadline));
  item->passed_at = g_get_monotonic_time ();
  g_array_append_val (item->order, item->name);
  if (item->then != NULL)
    kp_deadline_set_in (item->then, 1);
}

static void
item_init (Item   *item,
           int     name,
           GArray *order)
{
  item->name = name;
  item->order = order;
  item->then = NULL;
  item->passed_at = 0;
  kp_deadline_init (&item->deadline, on_passed, item);
}

/* Runs the loop until @n deadlines passed, or fails after WAIT_US. */
static void
wait_for (GArray *order,
          guint   n)
{
  gint64 end = g_get_monotonic_time () + WAIT_US;

  while (order->len < n)
    {
      g_assert_cmpint (g_get_monotonic_time (), <, end);
      g_main_context_iteration (NULL, TRUE);
    }
}

static void
test_order (void)
{
  g_autoptr(GArray) order = g_array_new (FALSE, FALSE, sizeof (int));
  Item items[6];
  static const int expected[] = { 5, 1, 3, 4 };
  gint64 now;

  for (guint i = 0; i < G_N_ELEMENTS (items); i++)
    item_init (&items[i], i, order);

  now = kp_deadlines_now ();
  kp_deadline_set (&items[0].deadline, now + 60 * 1000);
  kp_deadline_set (&items[1].deadline, now + 20 * 1000);
  kp_deadline_set (&items[2].deadline, now + 30 * 1000);
  kp_deadline_set (&items[3].deadline, now + 40 * 1000);
  kp_deadline_set (&items[4].deadline, now + 10 * 1000);
  kp_deadline_set (&items[5].deadline, now + 5 * 1000);
  g_assert_cmpuint (kp_deadlines_count (), ==, 6);

  /* Cleared: never passes. Moved later, and sooner. */
  kp_deadline_clear (&items[2].deadline);
  kp_deadline_clear (&items[2].deadline);
  kp_deadline_set (&items[4].deadline, now + 50 * 1000);
  kp_deadline_set (&items[0].deadline, now + 25 * 1000);
  kp_deadline_clear (&items[0].deadline);
  kp_deadline_set (&items[3].deadline, now + 30 * 1000);
  g_assert_cmpuint (kp_deadlines_count (), ==, 4);

  wait_for (order, G_N_ELEMENTS (expected));
  g_assert_cmpmem (order->data, order->len * sizeof (int), expected, sizeof expected);
  for (guint i = 0; i < G_N_ELEMENTS (expected); i++)
    g_assert_cmpint (items[expected[i]].passed_at, >=, now);
  g_assert_cmpuint (kp_deadlines_count (), ==, 0);

  /* None passes twice, and a cleared one never does. */
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_assert_cmpuint (order->len, ==, G_N_ELEMENTS (expected));
}

/* A deadline may set another from its callback, and one set in the past
 * passes at the next iteration.
 */
static void
test_chain (void)
{
  g_autoptr(GArray) order = g_array_new (FALSE, FALSE, sizeof (int));
  Item a, b, c;

  item_init (&a, 1, order);
  item_init (&b, 2, order);
  item_init (&c, 3, order);
  a.then = &b.deadline;
  b.then = &c.deadline;

  kp_deadline_set (&a.deadline, kp_deadlines_now () - 1000);
  wait_for (order, 3);
  g_assert_cmpint (g_array_index (order, int, 0), ==, 1);
  g_assert_cmpint (g_array_index (order, int, 1), ==, 2);
  g_assert_cmpint (g_array_index (order, int, 2), ==, 3);
  g_assert_cmpuint (kp_deadlines_count (), ==, 0);
}

/* Many deadlines, set and moved at random: they pass in time order. */
static void
test_many (void)
{
  g_autoptr(GArray) order = g_array_new (FALSE, FALSE, sizeof (int));
  g_autofree Item *items = g_new0 (Item, 500);
  g_autoptr(GRand) rand = g_rand_new_with_seed (7);
  gint64 now = kp_deadlines_now ();
  guint set = 0;

  for (guint i = 0; i < 500; i++)
    item_init (&items[i], i, order);
  for (guint round = 0; round < 3000; round++)
    {
      Item *item = &items[g_rand_int_range (rand, 0, 500)];

      if (g_rand_int_range (rand, 0, 5) == 0)
        kp_deadline_clear (&item->deadline);
      else
        {
          item->due = now + g_rand_int_range (rand, 1000, 80 * 1000);
          kp_deadline_set (&item->deadline, item->due);
        }
    }
  for (guint i = 0; i < 500; i++)
    set += kp_deadline_is_set (&items[i].deadline);
  g_assert_cmpuint (kp_deadlines_count (), ==, set);

  wait_for (order, set);
  for (guint i = 1; i < order->len; i++)
    {
      Item *before = &items[g_array_index (order, int, i - 1)];
      Item *after = &items[g_array_index (order, int, i)];

      g_assert_false (kp_deadline_is_set (&before->deadline));
      g_assert_cmpint (before->due, <=, after->due);
    }
  for (guint i = 0; i < order->len; i++)
    {
      Item *item = &items[g_array_index (order, int, i)];

      /* Never early. */
      g_assert_cmpint (item->passed_at, >=, item->due);
    }
  g_assert_cmpuint (kp_deadlines_count (), ==, 0);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/keypool/deadlines/order", test_order);
  g_test_add_func ("/keypool/deadlines/chain", test_chain);
  g_test_add_func ("/keypool/deadlines/many", test_many);

  return g_test_run ();
}
