/* test-ledger-memory.c: what the ledger keeps in memory once it is open
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include "config.h"

#include <glib/gstdio.h>
#include <sqlite3.h>

#include "kp-ledger.h"
#include "kp-test-util.h"

/* sqlite's default page cache: up to 2 MB per connection. */
#define DEFAULT_CACHE_BYTES (2000 * 1024)

static void
test_open_keeps_no_cache (void)
{
  g_autofree char *dir = g_dir_make_tmp ("keypool-ledger-XXXXXX", NULL);
  g_autofree char *path = g_build_filename (dir, "keypool.db", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(KpLedger) ledger = NULL;
  sqlite3 *db = NULL;
  sqlite3_int64 before;
  sqlite3_int64 held;

  /* A ledger that has seen months of requests: 8 MB of rows. */
  ledger = kp_ledger_open (path, &error);
  g_assert_no_error (error);
  g_clear_object (&ledger);
  g_assert_cmpint (sqlite3_open (path, &db), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_exec (db,
                                 "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
                                 "                        WHERE i < 4000) "
                                 "INSERT INTO requests (request_id, time, dialect, status, outcome, "
                                 "                      error, cost_source) "
                                 "SELECT 'r' || i, i, 'openai', 500, 'upstream_error', "
                                 "       hex (randomblob (1000)), 'unknown' FROM n",
                                 NULL, NULL, NULL), ==, SQLITE_OK);
  sqlite3_close (db);

  /* Opening reads every page (quick_check); none of them stays cached. */
  before = sqlite3_memory_used ();
  ledger = kp_ledger_open (path, &error);
  g_assert_no_error (error);
  held = sqlite3_memory_used () - before;
  g_test_message ("sqlite holds %" G_GINT64_FORMAT " bytes for the open ledger", (gint64)held);
  g_assert_cmpint (sqlite3_memory_highwater (FALSE), >, before + DEFAULT_CACHE_BYTES / 2);
  g_assert_cmpint (held, <, DEFAULT_CACHE_BYTES / 4);

  g_clear_object (&ledger);
  kp_test_remove_tree (dir);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/keypool/ledger-memory/open-keeps-no-cache", test_open_keeps_no_cache);

  return g_test_run ();
}
