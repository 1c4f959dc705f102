/* test-ledger-now.c: rows written at once on the ledger's own thread, on
 * real database files
 *
 * A request alone in flight has its row committed on the main loop's
 * connection (kp_ledger_try_add_request_now()) instead of a trip to the
 * writer thread. That must never take a row out of order, wait for another
 * program's lock, write while writes are known to fail, or leave the WAL
 * to grow with no checkpoint.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include "config.h"

#include <glib/gstdio.h>
#include <sqlite3.h>

#include "kp-ledger-private.h"
#include "kp-test-util.h"

typedef struct
{
  char     *dir;
  char     *path;
  KpLedger *ledger;
} Fixture;

static void
fixture_setup (Fixture       *fixture,
               gconstpointer  data)
{
  g_autoptr(GError) error = NULL;

  fixture->dir = g_dir_make_tmp ("keypool-ledger-now-XXXXXX", NULL);
  fixture->path = g_build_filename (fixture->dir, "keypool.db", NULL);
  fixture->ledger = kp_ledger_open (fixture->path, &error);
  g_assert_no_error (error);
}

static void
fixture_teardown (Fixture       *fixture,
                  gconstpointer  data)
{
  g_clear_object (&fixture->ledger);
  kp_test_remove_tree (fixture->dir);
  g_free (fixture->path);
  g_free (fixture->dir);
}

static KpRequestRow
make_row (const char *request_id)
{
  KpRequestRow row = {
    .request_id = (char *)request_id, .time_ms = g_get_real_time () / 1000,
    .model = (char *)"m", .status = 200, .outcome = (char *)"ok",
    .cost_source = (char *)"computed", .ttfb_ms = -1,
  };

  return row;
}

static gboolean
try_now (KpLedger   *ledger,
         const char *request_id)
{
  KpRequestRow row = make_row (request_id);
  KpAttemptRow attempt = { .provider = (char *)"p", .status = 200, .ms = 3 };

  return kp_ledger_try_add_request_now (ledger, &row, &attempt, 1);
}

static void
on_written (GObject      *object,
            GAsyncResult *result,
            gpointer      user_data)
{
  g_ptr_array_add (user_data, g_object_ref (result));
}

static gboolean
has_results (gpointer data)
{
  return ((GPtrArray *)data)->len > 0;
}

/* Queues a row for the writer thread and waits until it is committed. */
static void
add_through_writer (KpLedger   *ledger,
                    const char *request_id)
{
  g_autoptr(GPtrArray) results = g_ptr_array_new_with_free_func (g_object_unref);
  g_autoptr(GError) error = NULL;
  KpRequestRow row = make_row (request_id);

  kp_ledger_add_request_async (ledger, &row, NULL, 0, on_written, results);
  g_assert_true (kp_test_spin_until (has_results, results, 20000));
  g_assert_true (kp_ledger_add_request_finish (ledger, results->pdata[0], &error));
  g_assert_no_error (error);
}

static gint64
count_rows (const char *path,
            const char *request_id)
{
  g_autofree char *sql = g_strdup_printf ("SELECT COUNT(*) FROM requests WHERE request_id = '%s'",
                                          request_id);

  return kp_test_db_int (path, sql);
}

/* Written at once: another connection sees the row, with its attempt, as
 * soon as the call returns.
 */
static void
test_written_at_once (Fixture       *fixture,
                      gconstpointer  data)
{
  g_assert_true (try_now (fixture->ledger, "kp-now-1"));
  g_assert_cmpint (count_rows (fixture->path, "kp-now-1"), ==, 1);
  g_assert_cmpint (kp_test_db_int (fixture->path,
                                   "SELECT COUNT(*) FROM attempts a JOIN requests r "
                                   "ON a.request = r.id WHERE r.request_id = 'kp-now-1'"), ==, 1);

  /* Once the writer thread has run and gone idle, rows are written at once
   * again. */
  add_through_writer (fixture->ledger, "kp-queued");
  g_assert_true (try_now (fixture->ledger, "kp-now-2"));
  g_assert_cmpint (count_rows (fixture->path, "kp-now-2"), ==, 1);
}

/* Another program holds the write lock: nothing waits for it on the main
 * loop, nothing is written, and the caller queues the row instead.
 */
static void
test_lock_held (Fixture       *fixture,
                gconstpointer  data)
{
  sqlite3 *other = NULL;

  g_assert_cmpint (sqlite3_open (fixture->path, &other), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_exec (other, "BEGIN IMMEDIATE", NULL, NULL, NULL), ==, SQLITE_OK);

  g_assert_false (try_now (fixture->ledger, "kp-locked"));

  g_assert_cmpint (sqlite3_exec (other, "ROLLBACK", NULL, NULL, NULL), ==, SQLITE_OK);
  sqlite3_close (other);
  g_assert_cmpint (count_rows (fixture->path, "kp-locked"), ==, 0);

  g_assert_true (try_now (fixture->ledger, "kp-unlocked"));
  g_assert_cmpint (count_rows (fixture->path, "kp-unlocked"), ==, 1);
}

typedef struct
{
  KpLedger  *ledger;
  GPtrArray *results;
} Queued;

static gboolean
queued_settled (gpointer data)
{
  Queued *queued = data;

  return queued->results->len > 0 && kp_ledger_get_problem (queued->ledger) != NULL;
}

static gboolean
problem_gone (gpointer data)
{
  return kp_ledger_get_problem (data) == NULL;
}

/* While rows wait for the writer (writes fail), a row is never written
 * ahead of them: it goes to the queue too, and all are written, in order,
 * once writes work again.
 */
static void
test_writer_holds_rows (Fixture       *fixture,
                        gconstpointer  data)
{
  g_autoptr(GPtrArray) results = g_ptr_array_new_with_free_func (g_object_unref);
  KpRequestRow row = make_row ("kp-waiting");
  Queued queued = { fixture->ledger, results };

  kp_ledger_set_retry_policy (fixture->ledger, 5, 40, 10000);
  kp_ledger_set_fail_writes (fixture->ledger, TRUE);
  g_test_expect_message ("keypool", G_LOG_LEVEL_WARNING, "*not being recorded*");
  kp_ledger_add_request_async (fixture->ledger, &row, NULL, 0, on_written, results);
  g_assert_true (kp_test_spin_until (queued_settled, &queued, 20000));
  g_test_assert_expected_messages ();

  /* Writes would work now on this connection, but a row waits. */
  kp_ledger_set_fail_writes (fixture->ledger, FALSE);
  g_assert_false (try_now (fixture->ledger, "kp-behind"));
  g_assert_cmpint (count_rows (fixture->path, "kp-behind"), ==, 0);

  g_assert_true (kp_test_spin_until (problem_gone, fixture->ledger, 20000));
  g_assert_cmpint (count_rows (fixture->path, "kp-waiting"), ==, 1);
}

/* The main loop's connection never checkpoints: once the WAL is full, rows
 * go to the writer, whose commit checkpoints; then rows are written at
 * once again, and the WAL file does not grow past its checkpoint size.
 */
static void
test_checkpoint_on_writer (Fixture       *fixture,
                           gconstpointer  data)
{
  g_autofree char *wal = g_strconcat (fixture->path, "-wal", NULL);
  guint written_now = 0;
  guint refused = 0;
  GStatBuf st;

  for (guint i = 0; i < 3000 && refused == 0; i++)
    {
      g_autofree char *id = g_strdup_printf ("kp-fill-%u", i);

      if (try_now (fixture->ledger, id))
        written_now++;
      else
        refused++;
    }
  /* A few pages a row: the WAL filled before 3,000 rows. */
  g_assert_cmpuint (refused, ==, 1);
  g_assert_cmpuint (written_now, >, 10);
  g_assert_false (try_now (fixture->ledger, "kp-still-full"));

  add_through_writer (fixture->ledger, "kp-checkpoint");
  g_assert_true (try_now (fixture->ledger, "kp-after"));

  /* Another round the same size reuses the checkpointed WAL. */
  for (guint i = 0; i < written_now; i++)
    {
      g_autofree char *id = g_strdup_printf ("kp-again-%u", i);

      if (!try_now (fixture->ledger, id))
        add_through_writer (fixture->ledger, id);
    }
  g_assert_cmpint (g_stat (wal, &st), ==, 0);
  /* 1,000 pages of 4 KiB, and the last commit's frames past them. */
  g_assert_cmpint (st.st_size, <, 5 * 1024 * 1024);
  g_assert_cmpint (kp_test_db_int (fixture->path, "SELECT COUNT(*) FROM requests"), ==,
                   2 * written_now + 2);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

#define ADD(path, func) \
  g_test_add ("/keypool/ledger-now/" path, Fixture, NULL, fixture_setup, func, fixture_teardown)

  ADD ("written-at-once", test_written_at_once);
  ADD ("lock-held", test_lock_held);
  ADD ("writer-holds-rows", test_writer_holds_rows);
  ADD ("checkpoint-on-writer", test_checkpoint_on_writer);

  return g_test_run ();
}
