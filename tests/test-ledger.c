/* test-ledger.c: the sqlite store, on real database files
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include "config.h"

#include <string.h>

#include <glib/gstdio.h>
#include <sqlite3.h>

#include "kp-ledger.h"
#include "kp-provider.h"

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

  fixture->dir = g_dir_make_tmp ("keypool-ledger-XXXXXX", NULL);
  /* A folder that does not exist yet: the ledger makes it. */
  fixture->path = g_build_filename (fixture->dir, "nested", "keypool.db", NULL);
  fixture->ledger = kp_ledger_open (fixture->path, &error);
  g_assert_no_error (error);
  g_assert_nonnull (fixture->ledger);
}

static void
fixture_teardown (Fixture       *fixture,
                  gconstpointer  data)
{
  g_autofree char *nested = g_path_get_dirname (fixture->path);
  g_autofree char *wal = g_strconcat (fixture->path, "-wal", NULL);
  g_autofree char *shm = g_strconcat (fixture->path, "-shm", NULL);

  g_clear_object (&fixture->ledger);
  g_unlink (wal);
  g_unlink (shm);
  g_unlink (fixture->path);
  g_rmdir (nested);
  g_rmdir (fixture->dir);
  g_free (fixture->path);
  g_free (fixture->dir);
}

static gint64
query_int (const char *path,
           const char *sql)
{
  sqlite3 *db = NULL;
  sqlite3_stmt *stmt = NULL;
  gint64 value = -1;

  g_assert_cmpint (sqlite3_open_v2 (path, &db, SQLITE_OPEN_READONLY, NULL), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_prepare_v2 (db, sql, -1, &stmt, NULL), ==, SQLITE_OK);
  if (sqlite3_step (stmt) == SQLITE_ROW)
    value = sqlite3_column_int64 (stmt, 0);
  sqlite3_finalize (stmt);
  sqlite3_close (db);
  return value;
}

static void
test_schema (Fixture       *fixture,
             gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(KpLedger) again = NULL;
  GStatBuf st;

  g_assert_cmpint (query_int (fixture->path, "PRAGMA user_version"), ==, 3);
  g_assert_cmpint (query_int (fixture->path,
                              "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name IN "
                              "('credentials', 'provider_settings', 'settings', 'requests', 'attempts', "
                              "'catalog_models', 'provider_refresh')"),
                   ==, 7);
  /* WAL, and private to the user. */
  g_assert_cmpint (query_int (fixture->path, "SELECT COUNT(*) FROM pragma_journal_mode "
                                             "WHERE journal_mode = 'wal'"), ==, 1);
  g_assert_cmpint (g_stat (fixture->path, &st), ==, 0);
  g_assert_cmpint (st.st_mode & 0777, ==, 0600);

  /* Opening again migrates nothing and keeps the data. */
  g_assert_true (kp_ledger_set_setting (fixture->ledger, "port", "7878", &error));
  again = kp_ledger_open (fixture->path, &error);
  g_assert_no_error (error);
  {
    g_autofree char *port = kp_ledger_get_setting (again, "port");

    g_assert_cmpstr (port, ==, "7878");
  }
  g_assert_true (kp_ledger_check_integrity (again, &error));
}

static void
test_newer_schema (void)
{
  g_autofree char *dir = g_dir_make_tmp ("keypool-ledger-XXXXXX", NULL);
  g_autofree char *path = g_build_filename (dir, "keypool.db", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(KpLedger) ledger = NULL;
  sqlite3 *db = NULL;

  g_assert_cmpint (sqlite3_open (path, &db), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_exec (db, "PRAGMA user_version = 99", NULL, NULL, NULL), ==, SQLITE_OK);
  sqlite3_close (db);

  ledger = kp_ledger_open (path, &error);
  g_assert_null (ledger);
  g_assert_error (error, KP_LEDGER_ERROR, KP_LEDGER_ERROR_NEWER);
  g_assert_nonnull (strstr (error->message, "newer Keypool"));

  g_unlink (path);
  g_rmdir (dir);
}

static void
test_credentials (Fixture       *fixture,
                  gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) rows = NULL;
  KpCredentialRow *row;
  gint64 a, b;

  a = kp_ledger_add_credential (fixture->ledger, "openrouter", "work", 0.8, "keyring", NULL, NULL, &error);
  g_assert_no_error (error);
  b = kp_ledger_add_credential (fixture->ledger, "deepseek", "DEEPSEEK_API_KEY", 1.0, "env",
                                "DEEPSEEK_API_KEY", "0123456789abcdef", &error);
  g_assert_no_error (error);
  g_assert_cmpint (b, >, a);

  /* One env variable of one provider is one credential. */
  g_assert_cmpint (kp_ledger_add_credential (fixture->ledger, "deepseek", "x", 1.0, "env",
                                             "DEEPSEEK_API_KEY", NULL, &error), ==, 0);
  g_assert_error (error, KP_LEDGER_ERROR, KP_LEDGER_ERROR_QUERY);
  g_clear_error (&error);

  g_assert_true (kp_ledger_set_credential_state (fixture->ledger, a, "cooling", 1999999999,
                                                 "429 from upstream", &error));
  rows = kp_ledger_list_credentials (fixture->ledger, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (rows->len, ==, 2);
  row = g_ptr_array_index (rows, 0);
  g_assert_cmpint (row->id, ==, a);
  g_assert_cmpstr (row->provider, ==, "openrouter");
  g_assert_cmpstr (row->label, ==, "work");
  g_assert_cmpfloat (row->multiplier, ==, 0.8);
  g_assert_true (row->enabled);
  g_assert_cmpstr (row->source, ==, "keyring");
  g_assert_cmpstr (row->state, ==, "cooling");
  g_assert_cmpint (row->state_until, ==, 1999999999);
  g_assert_cmpstr (row->last_error, ==, "429 from upstream");
  g_assert_cmpint (row->created, >, 1700000000);

  /* A changed key starts afresh. */
  g_assert_true (kp_ledger_set_credential_state (fixture->ledger, b, "invalid", 0, "401", &error));
  g_assert_true (kp_ledger_set_credential_fingerprint (fixture->ledger, b, "fedcba9876543210", &error));
  g_clear_pointer (&rows, g_ptr_array_unref);
  rows = kp_ledger_list_credentials (fixture->ledger, &error);
  row = g_ptr_array_index (rows, 1);
  g_assert_cmpstr (row->state, ==, "ok");
  g_assert_cmpstr (row->fingerprint, ==, "fedcba9876543210");
  g_assert_null (row->last_error);

  /* Bad states never get in. */
  g_assert_false (kp_ledger_set_credential_state (fixture->ledger, a, "confused", 0, NULL, &error));
  g_clear_error (&error);

  g_assert_true (kp_ledger_remove_credential (fixture->ledger, a, &error));
  g_assert_false (kp_ledger_remove_credential (fixture->ledger, a, &error));
  g_assert_error (error, KP_LEDGER_ERROR, KP_LEDGER_ERROR_NOT_FOUND);
  g_clear_error (&error);
  g_assert_false (kp_ledger_set_credential_state (fixture->ledger, 4242, "ok", 0, NULL, &error));
  g_assert_error (error, KP_LEDGER_ERROR, KP_LEDGER_ERROR_NOT_FOUND);
}

static void
test_providers (Fixture       *fixture,
                gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GHashTable) disabled = NULL;

  g_assert_true (kp_ledger_set_provider_enabled (fixture->ledger, "groq", FALSE, &error));
  g_assert_true (kp_ledger_set_provider_enabled (fixture->ledger, "xai", FALSE, &error));
  g_assert_true (kp_ledger_set_provider_enabled (fixture->ledger, "xai", TRUE, &error));
  disabled = kp_ledger_get_disabled_providers (fixture->ledger, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_hash_table_size (disabled), ==, 1);
  g_assert_true (g_hash_table_contains (disabled, "groq"));
}

static void
add_request (KpLedger   *ledger,
             gint64      time_ms,
             const char *model,
             const char *provider,
             const char *outcome,
             gint64      cost_nano,
             const char *cost_source,
             gint64      prompt,
             gint64      completion)
{
  g_autoptr(GError) error = NULL;
  KpAttemptRow attempts[] = {
    { (char *)"other", 7, 429, (char *)"rate_limited", 12 },
    { (char *)provider, 3, 200, NULL, 40 },
  };
  KpRequestRow row = {
    .request_id = (char *)"kp-test", .time_ms = time_ms, .dialect = (char *)"openai",
    .model = (char *)model, .provider = (char *)provider, .credential_id = 3,
    .upstream_model = (char *)model, .status = 200, .outcome = (char *)outcome,
    .attempts = 2, .prompt_tokens = prompt, .completion_tokens = completion,
    .cost_nano = cost_nano, .cost_source = (char *)cost_source, .ttfb_ms = 5, .total_ms = 52,
    .streamed = TRUE,
  };

  g_assert_true (kp_ledger_add_request (ledger, &row, attempts, G_N_ELEMENTS (attempts), &error));
  g_assert_no_error (error);
}

static void
test_requests_and_spend (Fixture       *fixture,
                         gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) recent = NULL;
  g_autoptr(GPtrArray) by_provider = NULL;
  g_autoptr(GPtrArray) by_day = NULL;
  g_autoptr(GPtrArray) since = NULL;
  gint64 now = g_get_real_time () / 1000;
  gint64 day = 24 * 3600 * 1000;
  KpSpendRow *row;

  add_request (fixture->ledger, now - 3 * day, "a/m", "openrouter", "ok", 1000, "reported", 10, 5);
  add_request (fixture->ledger, now - day, "a/m", "openrouter", "ok", 2500, "computed", 20, 5);
  add_request (fixture->ledger, now, "b/m", "deepseek", "ok", 700, "computed", 30, 6);
  /* Unknown cost counts apart, never as $0. */
  add_request (fixture->ledger, now, "c/m", "deepseek", "ok", 0, "unknown", 40, 7);
  add_request (fixture->ledger, now, "c/m", "deepseek", "client_error", 0, "unknown", 0, 0);

  recent = kp_ledger_recent_requests (fixture->ledger, 2, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (recent->len, ==, 2);
  g_assert_cmpstr (((KpRequestRow *)g_ptr_array_index (recent, 0))->outcome, ==, "client_error");
  g_assert_cmpint (((KpRequestRow *)g_ptr_array_index (recent, 1))->ttfb_ms, ==, 5);
  g_assert_cmpint (query_int (fixture->path, "SELECT COUNT(*) FROM attempts"), ==, 10);
  g_assert_cmpint (query_int (fixture->path, "SELECT COUNT(*) FROM attempts WHERE failure IS NULL"), ==, 5);

  by_provider = kp_ledger_spend (fixture->ledger, 0, KP_SPEND_BY_PROVIDER, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (by_provider->len, ==, 2);
  row = g_ptr_array_index (by_provider, 0);
  g_assert_cmpstr (row->key, ==, "openrouter");
  g_assert_cmpint (row->requests, ==, 2);
  g_assert_cmpint (row->cost_nano, ==, 3500);
  g_assert_cmpint (row->unknown_cost, ==, 0);
  row = g_ptr_array_index (by_provider, 1);
  g_assert_cmpstr (row->key, ==, "deepseek");
  g_assert_cmpint (row->requests, ==, 3);
  g_assert_cmpint (row->cost_nano, ==, 700);
  g_assert_cmpint (row->unknown_cost, ==, 1);
  g_assert_cmpint (row->prompt_tokens, ==, 70);

  by_day = kp_ledger_spend (fixture->ledger, 0, KP_SPEND_BY_DAY, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (by_day->len, ==, 3);
  /* Oldest first; today's row holds today's three requests. */
  row = g_ptr_array_index (by_day, 2);
  g_assert_cmpint (row->requests, ==, 3);
  g_assert_cmpint (row->cost_nano, ==, 700);
  g_assert_cmpint (((KpSpendRow *)g_ptr_array_index (by_day, 0))->cost_nano, ==, 1000);

  since = kp_ledger_spend (fixture->ledger, now - day - 1000, KP_SPEND_BY_MODEL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (since->len, ==, 3);
  g_assert_cmpstr (((KpSpendRow *)g_ptr_array_index (since, 0))->key, ==, "a/m");
  g_assert_cmpint (((KpSpendRow *)g_ptr_array_index (since, 0))->requests, ==, 1);

  g_assert_true (kp_ledger_check_integrity (fixture->ledger, &error));
}

static void
test_no_half_rows (Fixture       *fixture,
                   gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  KpAttemptRow attempts[] = {
    { (char *)"p", 1, 200, NULL, 1 },
    { (char *)"p", 1, 200, NULL, 1 },
  };
  KpRequestRow row = {
    .request_id = (char *)"kp-bad", .time_ms = 1, .model = (char *)"m", .status = 200,
    /* Not an outcome the schema knows: the whole request must be refused. */
    .outcome = (char *)"exploded", .cost_source = (char *)"computed",
  };

  g_assert_false (kp_ledger_add_request (fixture->ledger, &row, attempts, 2, &error));
  g_assert_error (error, KP_LEDGER_ERROR, KP_LEDGER_ERROR_QUERY);
  g_assert_cmpint (query_int (fixture->path, "SELECT COUNT(*) FROM requests"), ==, 0);
  g_assert_cmpint (query_int (fixture->path, "SELECT COUNT(*) FROM attempts"), ==, 0);
}

/* The catalog cache: a model list round-trips in order, an unknown price
 * stays unknown (never 0), and a new list replaces the old one.
 */
static void
test_catalog_cache (Fixture       *fixture,
                    gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GArray) models = g_array_new (FALSE, TRUE, sizeof (KpLiveModel));
  g_autoptr(GArray) read = NULL;
  g_autoptr(GPtrArray) rows = NULL;
  KpLiveModel priced = { (char *)"b/priced", 2.5, 10.0, -1, 4096 };
  KpLiveModel unpriced = { (char *)"a/unpriced", -1, -1, -1, 0 };
  KpRefreshRow row = {
    .provider = (char *)"p", .refreshed_at = 200, .ok_at = 100, .error = (char *)"HTTP 500",
    .has_balance = TRUE, .balance = -0.5, .currency = (char *)"USD", .balance_at = 100,
  };
  gint64 when = 0;

  g_array_append_val (models, priced);
  g_array_append_val (models, unpriced);
  g_assert_true (kp_ledger_save_live_models (fixture->ledger, "p", "http://x/models", models, 100,
                                             &error));
  g_assert_no_error (error);

  read = kp_ledger_get_live_models (fixture->ledger, "p", &when, &error);
  g_assert_no_error (error);
  g_assert_cmpint (when, ==, 100);
  g_assert_cmpuint (read->len, ==, 2);
  g_assert_cmpstr (g_array_index (read, KpLiveModel, 0).upstream_id, ==, "b/priced");
  g_assert_cmpfloat (g_array_index (read, KpLiveModel, 0).input, ==, 2.5);
  g_assert_cmpfloat (g_array_index (read, KpLiveModel, 0).cached_input, <, 0);
  g_assert_cmpint (g_array_index (read, KpLiveModel, 0).context, ==, 4096);
  g_assert_cmpstr (g_array_index (read, KpLiveModel, 1).upstream_id, ==, "a/unpriced");
  g_assert_cmpfloat (g_array_index (read, KpLiveModel, 1).input, <, 0);
  g_assert_cmpfloat (g_array_index (read, KpLiveModel, 1).output, <, 0);
  g_clear_pointer (&read, g_array_unref);

  g_array_set_size (models, 1);
  g_assert_true (kp_ledger_save_live_models (fixture->ledger, "p", "http://x/models", models, 300,
                                             &error));
  read = kp_ledger_get_live_models (fixture->ledger, "p", &when, &error);
  g_assert_cmpuint (read->len, ==, 1);
  g_assert_cmpint (when, ==, 300);
  g_clear_pointer (&read, g_array_unref);
  read = kp_ledger_get_live_models (fixture->ledger, "other", &when, &error);
  g_assert_cmpuint (read->len, ==, 0);
  g_assert_cmpint (when, ==, 0);

  g_assert_true (kp_ledger_save_refresh (fixture->ledger, &row, &error));
  g_assert_no_error (error);
  rows = kp_ledger_list_refreshes (fixture->ledger, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (rows->len, ==, 1);
  {
    KpRefreshRow *got = g_ptr_array_index (rows, 0);

    g_assert_cmpstr (got->provider, ==, "p");
    g_assert_cmpint (got->refreshed_at, ==, 200);
    g_assert_cmpint (got->ok_at, ==, 100);
    g_assert_cmpstr (got->error, ==, "HTTP 500");
    g_assert_true (got->has_balance);
    g_assert_cmpfloat (got->balance, ==, -0.5);
    g_assert_cmpstr (got->currency, ==, "USD");
  }
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

#define ADD(path, func) \
  g_test_add ("/keypool/ledger/" path, Fixture, NULL, fixture_setup, func, fixture_teardown)

  ADD ("schema", test_schema);
  ADD ("credentials", test_credentials);
  ADD ("providers", test_providers);
  ADD ("requests-and-spend", test_requests_and_spend);
  ADD ("no-half-rows", test_no_half_rows);
  ADD ("catalog-cache", test_catalog_cache);
  g_test_add_func ("/keypool/ledger/newer-schema", test_newer_schema);

#undef ADD

  return g_test_run ();
}
