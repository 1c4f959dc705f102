/* test-ledger.c: the sqlite store, on real database files
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include "config.h"

#include <string.h>

#include <glib/gstdio.h>
#include <sqlite3.h>

#include <unistd.h>

#include "kp-ledger-private.h"
#include "kp-provider.h"
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

static void
test_schema (Fixture       *fixture,
             gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(KpLedger) again = NULL;
  GStatBuf st;

  g_assert_cmpint (kp_test_db_int (fixture->path, "PRAGMA user_version"), ==, 8);
  g_assert_cmpint (kp_test_db_int (fixture->path,
                                   "SELECT COUNT(*) FROM pragma_table_info('requests') "
                                   "WHERE name = 'client_address'"), ==, 1);
  g_assert_cmpint (kp_test_db_int (fixture->path,
                                   "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND "
                                   "name IN ('credentials', 'provider_settings', 'settings', "
                                   "'requests', 'attempts', 'catalog_models', 'provider_refresh', "
                                   "'refusals')"),
                   ==, 8);
  /* Failed requests are found without reading every request. */
  g_assert_cmpint (kp_test_db_int (fixture->path,
                                   "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND "
                                   "name = 'requests_failed'"),
                   ==, 1);
  /* WAL, and private to the user. */
  g_assert_cmpint (kp_test_db_int (fixture->path, "SELECT COUNT(*) FROM pragma_journal_mode "
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

  /* A NULL value removes a setting; removing one that is gone is no error. */
  g_assert_true (kp_ledger_set_setting (again, "port", NULL, &error));
  g_assert_no_error (error);
  g_assert_null (kp_ledger_get_setting (again, "port"));
  g_assert_cmpint (kp_test_db_int (fixture->path, "SELECT COUNT(*) FROM settings WHERE key = 'port'"),
                   ==, 0);
  g_assert_true (kp_ledger_set_setting (again, "port", NULL, &error));
  g_assert_no_error (error);
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
    .request_id = (char *)"kp-test", .time_ms = time_ms, .api = (char *)"openai-chat",
    .model = (char *)model, .provider = (char *)provider, .credential_id = 3,
    .upstream_model = (char *)model, .status = 200, .outcome = (char *)outcome,
    .attempts = 2, .prompt_tokens = prompt, .completion_tokens = completion,
    .cost_nano = cost_nano, .cost_source = (char *)cost_source, .ttfb_ms = 5, .total_ms = 52,
    .streamed = TRUE, .client_address = (char *)"127.0.0.1",
  };

  g_assert_true (kp_ledger_add_request (ledger, &row, attempts, G_N_ELEMENTS (attempts), &error));
  g_assert_no_error (error);
}

/* Each row keeps its client; spend and requests are read back per client. */
static void
test_clients (Fixture       *fixture,
              gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) spend = NULL;
  g_autoptr(GPtrArray) rows = NULL;
  gint64 now_ms = g_get_real_time () / 1000;
  const struct { guint client; const char *provider; gint64 cost; const char *source; } requests[] = {
    { 0, "deepseek", 1000, "computed" },
    { 2, "deepseek", 2000, "computed" },
    { 2, "openai", 3000, "reported" },
    { 2, "openai", 0, "unknown" },
    { 5, "openai", 4000, "computed" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (requests); i++)
    {
      KpRequestRow row = {
        .request_id = (char *)"kp-client", .time_ms = now_ms, .api = (char *)"openai-chat",
        .model = (char *)"m", .provider = (char *)requests[i].provider, .status = 200,
        .outcome = (char *)"ok", .cost_nano = requests[i].cost,
        .cost_source = (char *)requests[i].source, .ttfb_ms = -1, .client_id = requests[i].client,
      };

      g_assert_true (kp_ledger_add_request (fixture->ledger, &row, NULL, 0, &error));
      g_assert_no_error (error);
    }

  spend = kp_ledger_spend (fixture->ledger, 0, KP_SPEND_BY_CLIENT, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (spend->len, ==, 3);
  g_assert_cmpstr (((KpSpendRow *)g_ptr_array_index (spend, 0))->key, ==, "2");
  g_assert_cmpint (((KpSpendRow *)g_ptr_array_index (spend, 0))->cost_nano, ==, 5000);
  g_assert_cmpint (((KpSpendRow *)g_ptr_array_index (spend, 0))->unknown_cost, ==, 1);
  g_assert_cmpint (((KpSpendRow *)g_ptr_array_index (spend, 0))->requests, ==, 3);
  g_clear_pointer (&spend, g_ptr_array_unref);

  spend = kp_ledger_spend_by_client_and_provider (fixture->ledger, now_ms, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (spend->len, ==, 4);
  g_clear_pointer (&spend, g_ptr_array_unref);
  spend = kp_ledger_spend_by_client_and_provider (fixture->ledger, now_ms + 1, &error);
  g_assert_cmpuint (spend->len, ==, 0);
  g_clear_pointer (&spend, g_ptr_array_unref);

  /* The same on worker threads, as the window and the budgets read them. */
  {
    g_autoptr(GAsyncResult) by_client = NULL;
    g_autoptr(GAsyncResult) by_both = NULL;

    kp_ledger_spend_async (fixture->ledger, 0, KP_SPEND_BY_CLIENT, NULL, kp_test_store_result,
                           &by_client);
    kp_ledger_spend_by_client_and_provider_async (fixture->ledger, 0, NULL, kp_test_store_result,
                                                  &by_both);
    g_assert_true (kp_test_spin_until (kp_test_result_ready, &by_client, 10000));
    g_assert_true (kp_test_spin_until (kp_test_result_ready, &by_both, 10000));
    spend = kp_ledger_spend_finish (fixture->ledger, by_client, &error);
    g_assert_no_error (error);
    g_assert_cmpuint (spend->len, ==, 3);
    g_clear_pointer (&spend, g_ptr_array_unref);
    spend = kp_ledger_spend_by_client_and_provider_finish (fixture->ledger, by_both, &error);
    g_assert_no_error (error);
    g_assert_cmpuint (spend->len, ==, 4);
  }

  rows = kp_ledger_recent_requests_of_client (fixture->ledger, 2, 2, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (rows->len, ==, 2);
  g_assert_cmpuint (((KpRequestRow *)g_ptr_array_index (rows, 0))->client_id, ==, 2);
  g_assert_cmpstr (((KpRequestRow *)g_ptr_array_index (rows, 0))->cost_source, ==, "unknown");
  g_clear_pointer (&rows, g_ptr_array_unref);
  rows = kp_ledger_recent_requests (fixture->ledger, 10, &error);
  g_assert_cmpuint (((KpRequestRow *)g_ptr_array_index (rows, 0))->client_id, ==, 5);
  g_assert_cmpuint (((KpRequestRow *)g_ptr_array_index (rows, 4))->client_id, ==, 0);
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
  g_assert_cmpstr (((KpRequestRow *)g_ptr_array_index (recent, 1))->client_address, ==,
                   "127.0.0.1");
  g_assert_cmpint (kp_test_db_int (fixture->path, "SELECT COUNT(*) FROM attempts"), ==, 10);
  g_assert_cmpint (kp_test_db_int (fixture->path,
                                   "SELECT COUNT(*) FROM attempts WHERE failure IS NULL"), ==, 5);

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
  g_assert_cmpint (kp_test_db_int (fixture->path, "SELECT COUNT(*) FROM requests"), ==, 0);
  g_assert_cmpint (kp_test_db_int (fixture->path, "SELECT COUNT(*) FROM attempts"), ==, 0);
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

/* The ledger fails loudly and loses nothing it can keep ----------------- */

static void
add_request_at (KpLedger   *ledger,
                const char *request_id,
                gint64      time_ms)
{
  g_autoptr(GError) error = NULL;
  KpRequestRow row = {
    .request_id = (char *)request_id, .time_ms = time_ms, .model = (char *)"m", .status = 200,
    .outcome = (char *)"ok", .cost_source = (char *)"computed", .ttfb_ms = -1,
  };

  g_assert_true (kp_ledger_add_request (ledger, &row, NULL, 0, &error));
  g_assert_no_error (error);
}

/* The moved-aside copy of @path in its folder, or NULL. */
static char *
find_moved_aside (const char *path)
{
  g_autofree char *dir = g_path_get_dirname (path);
  g_autofree char *base = g_path_get_basename (path);
  g_autofree char *prefix = g_strconcat (base, ".damaged-", NULL);
  g_autoptr(GDir) listing = g_dir_open (dir, 0, NULL);
  const char *name;

  while (listing != NULL && (name = g_dir_read_name (listing)) != NULL)
    if (g_str_has_prefix (name, prefix) && !g_str_has_suffix (name, "-wal"))
      return g_build_filename (dir, name, NULL);
  return NULL;
}

/* Opens a damaged @path: it is moved aside, a new one starts, and the
 * problem says so.
 */
static void
assert_recovers_from_damage (const char *path)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(KpLedger) ledger = NULL;
  g_autoptr(GPtrArray) recent = NULL;
  g_autofree char *aside = NULL;

  g_test_expect_message ("keypool", G_LOG_LEVEL_WARNING, "*database was damaged*moved to*");
  ledger = kp_ledger_open (path, &error);
  g_test_assert_expected_messages ();
  g_assert_no_error (error);
  g_assert_nonnull (ledger);

  aside = find_moved_aside (path);
  g_assert_nonnull (aside);
  g_assert_nonnull (kp_ledger_get_problem (ledger));
  g_assert_nonnull (strstr (kp_ledger_get_problem (ledger), aside));

  /* The new database works. */
  add_request_at (ledger, "kp-after", 42);
  recent = kp_ledger_recent_requests (ledger, 10, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (recent->len, ==, 1);
  g_assert_true (kp_ledger_check_integrity (ledger, &error));
}

/* A file of garbage where the database was. */
static void
test_damaged_garbage (void)
{
  g_autofree char *dir = g_dir_make_tmp ("keypool-ledger-XXXXXX", NULL);
  g_autofree char *path = g_build_filename (dir, "keypool.db", NULL);
  g_autoptr(GString) garbage = g_string_new (NULL);
  g_autofree char *aside = NULL;
  g_autofree char *kept = NULL;
  gsize kept_len = 0;

  {
    g_autoptr(KpLedger) ledger = kp_ledger_open (path, NULL);

    add_request_at (ledger, "kp-before", 1);
  }
  for (guint i = 0; i < 8192; i++)
    g_string_append (garbage, "garbage!");
  g_assert_true (g_file_set_contents (path, garbage->str, garbage->len, NULL));

  assert_recovers_from_damage (path);

  /* Nothing is deleted: the damaged file is kept as it was. */
  aside = find_moved_aside (path);
  g_assert_true (g_file_get_contents (aside, &kept, &kept_len, NULL));
  g_assert_cmpmem (kept, kept_len, garbage->str, garbage->len);
  kp_test_remove_tree (dir);
}

/* A sound header over damaged pages: only PRAGMA quick_check notices. */
static void
test_damaged_pages (void)
{
  g_autofree char *dir = g_dir_make_tmp ("keypool-ledger-XXXXXX", NULL);
  g_autofree char *path = g_build_filename (dir, "keypool.db", NULL);
  g_autofree char *contents = NULL;
  gsize len = 0;

  {
    g_autoptr(KpLedger) ledger = kp_ledger_open (path, NULL);

    for (guint i = 0; i < 2000; i++)
      add_request_at (ledger, "kp-before-with-a-long-request-id-to-fill-pages", i);
  }
  g_assert_true (g_file_get_contents (path, &contents, &len, NULL));
  g_assert_cmpuint (len, >, 16 * 4096);
  /* Pages from the fourth on, past the schema, become noise. */
  for (gsize i = 3 * 4096; i < len - 4096; i++)
    contents[i] = (char)(i * 7919 % 251);
  g_assert_true (g_file_set_contents (path, contents, len, NULL));

  assert_recovers_from_damage (path);
  kp_test_remove_tree (dir);
}

static void
on_written (GObject      *object,
            GAsyncResult *result,
            gpointer      user_data)
{
  g_ptr_array_add (user_data, g_object_ref (result));
}

static void
add_request_later (KpLedger   *ledger,
                   const char *request_id,
                   gint64      time_ms,
                   GPtrArray  *results)
{
  KpRequestRow row = {
    .request_id = (char *)request_id, .time_ms = time_ms, .model = (char *)"m", .status = 200,
    .outcome = (char *)"ok", .cost_source = (char *)"computed", .ttfb_ms = -1,
  };

  kp_ledger_add_request_async (ledger, &row, NULL, 0, on_written, results);
}

typedef struct
{
  KpLedger   *ledger;
  const char *needle;   /* NULL: no problem */
  GPtrArray  *results;
  guint       n_results;
} Waiting;

static gboolean
problem_is (gpointer data)
{
  Waiting *waiting = data;
  const char *problem = kp_ledger_get_problem (waiting->ledger);

  if (waiting->needle == NULL)
    return problem == NULL;
  return problem != NULL && strstr (problem, waiting->needle) != NULL;
}

static gboolean
results_are_in (gpointer data)
{
  Waiting *waiting = data;

  return waiting->results->len >= waiting->n_results;
}

/* Each result says the row waits in memory or, at most @dropped of them,
 * that it was dropped. A row already told that it waits gets no second
 * answer when it is dropped later: how many of the dropped rows were still
 * unanswered depends on how the writer thread took them from its queue
 * (one at a time or together), so only the bound is the writer's promise.
 */
static void
assert_rows_wait (KpLedger  *ledger,
                  GPtrArray *results,
                  guint      dropped)
{
  guint n_dropped = 0;

  for (guint i = 0; i < results->len; i++)
    {
      g_autoptr(GError) error = NULL;

      g_assert_false (kp_ledger_add_request_finish (ledger, results->pdata[i], &error));
      if (g_error_matches (error, KP_LEDGER_ERROR, KP_LEDGER_ERROR_PENDING))
        continue;
      g_assert_error (error, KP_LEDGER_ERROR, KP_LEDGER_ERROR_QUERY);
      g_assert_nonnull (strstr (error->message, "dropped"));
      n_dropped++;
    }
  g_test_message ("%u of %u results said their row was dropped", n_dropped, results->len);
  g_assert_cmpuint (n_dropped, <=, dropped);
}

/* Writes fail as on a full disk: the rows wait in memory, the problem says
 * so, and once writes work again every row is written with its own time.
 */
static void
test_write_failure (void)
{
  g_autofree char *dir = g_dir_make_tmp ("keypool-ledger-XXXXXX", NULL);
  g_autofree char *path = g_build_filename (dir, "keypool.db", NULL);
  g_autoptr(GPtrArray) results = g_ptr_array_new_with_free_func (g_object_unref);
  g_autoptr(GError) error = NULL;
  g_autoptr(KpLedger) ledger = kp_ledger_open (path, &error);
  g_autoptr(GPtrArray) recent = NULL;
  gint64 base = g_get_real_time () / 1000 - 3600 * 1000;
  Waiting waiting = { ledger, NULL, results, 3 };

  g_assert_no_error (error);
  g_assert_null (kp_ledger_get_problem (ledger));
  kp_ledger_set_retry_policy (ledger, 5, 40, 10000);
  kp_ledger_set_fail_writes (ledger, TRUE);

  g_test_expect_message ("keypool", G_LOG_LEVEL_WARNING, "*not being recorded*disk is full*");
  for (guint i = 0; i < 3; i++)
    {
      g_autofree char *id = g_strdup_printf ("kp-late-%u", i);

      add_request_later (ledger, id, base + i * 60000, results);
    }
  g_assert_true (kp_test_spin_until (results_are_in, &waiting, 20000));
  assert_rows_wait (ledger, results, 0);
  waiting.needle = "3 wait in memory";
  g_assert_true (kp_test_spin_until (problem_is, &waiting, 20000));
  g_test_assert_expected_messages ();
  g_assert_cmpint (kp_test_db_int (path, "SELECT COUNT(*) FROM requests"), ==, 0);

  /* The disk has room again. */
  kp_ledger_set_fail_writes (ledger, FALSE);
  waiting.needle = NULL;
  g_assert_true (kp_test_spin_until (problem_is, &waiting, 20000));
  g_assert_cmpint (kp_test_db_int (path, "SELECT COUNT(*) FROM requests"), ==, 3);
  recent = kp_ledger_recent_requests (ledger, 10, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (recent->len, ==, 3);
  for (guint i = 0; i < 3; i++)
    {
      KpRequestRow *row = g_ptr_array_index (recent, i);
      g_autofree char *id = g_strdup_printf ("kp-late-%u", 2 - i);

      /* Written late, at their true times. */
      g_assert_cmpstr (row->request_id, ==, id);
      g_assert_cmpint (row->time_ms, ==, base + (2 - i) * 60000);
    }

  g_clear_object (&ledger);
  kp_test_remove_tree (dir);
}

/* No more rows wait than the bound: the newest are kept. */
static void
test_write_failure_bounded (void)
{
  g_autofree char *dir = g_dir_make_tmp ("keypool-ledger-XXXXXX", NULL);
  g_autofree char *path = g_build_filename (dir, "keypool.db", NULL);
  g_autoptr(GPtrArray) results = g_ptr_array_new_with_free_func (g_object_unref);
  g_autoptr(GError) error = NULL;
  g_autoptr(KpLedger) ledger = kp_ledger_open (path, &error);
  g_autoptr(GPtrArray) recent = NULL;
  Waiting waiting = { ledger, "2 older ones were dropped", results, 4 };

  kp_ledger_set_retry_policy (ledger, 5, 40, 2);
  kp_ledger_set_fail_writes (ledger, TRUE);
  g_test_expect_message ("keypool", G_LOG_LEVEL_WARNING, "*not being recorded*");
  for (guint i = 0; i < 4; i++)
    {
      g_autofree char *id = g_strdup_printf ("kp-%u", i);

      add_request_later (ledger, id, 1000 + i, results);
    }
  g_assert_true (kp_test_spin_until (results_are_in, &waiting, 20000));
  g_assert_true (kp_test_spin_until (problem_is, &waiting, 20000));
  g_test_assert_expected_messages ();
  assert_rows_wait (ledger, results, 2);

  kp_ledger_set_fail_writes (ledger, FALSE);
  waiting.needle = NULL;
  g_assert_true (kp_test_spin_until (problem_is, &waiting, 20000));
  recent = kp_ledger_recent_requests (ledger, 10, &error);
  g_assert_cmpuint (recent->len, ==, 2);
  g_assert_cmpstr (((KpRequestRow *)recent->pdata[0])->request_id, ==, "kp-3");
  g_assert_cmpstr (((KpRequestRow *)recent->pdata[1])->request_id, ==, "kp-2");

  g_clear_object (&ledger);
  kp_test_remove_tree (dir);
}

/* Keys' states go through the writer like rows: while writes fail they
 * wait, a key's newest state replacing the older ones, and are not
 * dropped for rows; a removed key's state is skipped.
 */
static void
test_states_wait (void)
{
  g_autofree char *dir = g_dir_make_tmp ("keypool-ledger-XXXXXX", NULL);
  g_autofree char *path = g_build_filename (dir, "keypool.db", NULL);
  g_autofree char *sql = NULL;
  g_autoptr(GPtrArray) results = g_ptr_array_new_with_free_func (g_object_unref);
  g_autoptr(GError) error = NULL;
  g_autoptr(KpLedger) ledger = kp_ledger_open (path, &error);
  Waiting waiting = { ledger, "4 wait in memory", results, 4 };
  gint64 a, b;

  g_assert_no_error (error);
  a = kp_ledger_add_credential (ledger, "openai", "a", 1.0, "keyring", NULL, NULL, &error);
  b = kp_ledger_add_credential (ledger, "openai", "b", 1.0, "keyring", NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (kp_ledger_remove_credential (ledger, b, &error));

  kp_ledger_set_retry_policy (ledger, 5, 40, 2);
  kp_ledger_set_fail_writes (ledger, TRUE);
  g_test_expect_message ("keypool", G_LOG_LEVEL_WARNING, "*not being recorded*");
  for (guint i = 0; i < 50; i++)
    kp_ledger_save_credential_state (ledger, a, "cooling", 1000 + i, "rate_limited");
  kp_ledger_save_credential_state (ledger, b, "invalid", 0, NULL);
  for (guint i = 0; i < 4; i++)
    {
      g_autofree char *id = g_strdup_printf ("kp-%u", i);

      add_request_later (ledger, id, 1000 + i, results);
    }
  g_assert_true (kp_test_spin_until (results_are_in, &waiting, 20000));
  /* a's newest state, b's, and the two newest rows. */
  g_assert_true (kp_test_spin_until (problem_is, &waiting, 20000));
  g_test_assert_expected_messages ();
  sql = g_strdup_printf ("SELECT state_until FROM credentials WHERE id = %" G_GINT64_FORMAT, a);
  g_assert_cmpint (kp_test_db_int (path, sql), ==, 0);

  kp_ledger_set_fail_writes (ledger, FALSE);
  waiting.needle = NULL;
  g_assert_true (kp_test_spin_until (problem_is, &waiting, 20000));
  g_assert_cmpint (kp_test_db_int (path, sql), ==, 1049);
  g_assert_cmpint (kp_test_db_int (path, "SELECT COUNT(*) FROM credentials"), ==, 1);
  g_assert_cmpint (kp_test_db_int (path, "SELECT COUNT(*) FROM requests"), ==, 2);

  g_clear_object (&ledger);
  kp_test_remove_tree (dir);
}

/* The user's writes through the writer thread while writes fail: a setting
 * waits in memory and reads back at once; a new key is answered with the
 * error, never left waiting; both work once writes do.
 */
static void
test_writes_wait (void)
{
  g_autofree char *dir = g_dir_make_tmp ("keypool-ledger-XXXXXX", NULL);
  g_autofree char *path = g_build_filename (dir, "keypool.db", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(KpLedger) ledger = kp_ledger_open (path, &error);
  g_autoptr(GAsyncResult) saved = NULL;
  g_autoptr(GAsyncResult) added = NULL;
  g_autofree char *value = NULL;
  Waiting waiting = { ledger, "wait in memory", NULL, 0 };
  sqlite3 *db = NULL;
  gint64 id;

  g_assert_no_error (error);
  kp_ledger_set_retry_policy (ledger, 5, 40, 10);
  kp_ledger_set_fail_writes (ledger, TRUE);
  g_test_expect_message ("keypool", G_LOG_LEVEL_WARNING, "*not being recorded*");

  kp_ledger_set_setting_async (ledger, "port", "7979", kp_test_store_result, &saved);
  value = kp_ledger_get_setting (ledger, "port");
  g_assert_cmpstr (value, ==, "7979");
  g_assert_true (kp_test_spin_until (kp_test_result_ready, &saved, 20000));
  g_assert_false (kp_ledger_write_finish (ledger, saved, &error));
  g_assert_error (error, KP_LEDGER_ERROR, KP_LEDGER_ERROR_PENDING);
  g_clear_error (&error);

  kp_ledger_add_credential_async (ledger, "openai", "new", 1.0, "keyring", NULL, NULL,
                                  kp_test_store_result, &added);
  g_assert_true (kp_test_spin_until (kp_test_result_ready, &added, 20000));
  g_assert_cmpint (kp_ledger_add_credential_finish (ledger, added, &error), ==, 0);
  g_assert_error (error, KP_LEDGER_ERROR, KP_LEDGER_ERROR_QUERY);
  g_clear_error (&error);
  g_clear_object (&added);
  g_assert_true (kp_test_spin_until (problem_is, &waiting, 20000));
  g_test_assert_expected_messages ();
  g_assert_cmpint (kp_test_db_int (path, "SELECT COUNT(*) FROM settings"), ==, 0);

  /* Writes work again: the setting lands; the database says what it is. */
  kp_ledger_set_fail_writes (ledger, FALSE);
  waiting.needle = NULL;
  g_assert_true (kp_test_spin_until (problem_is, &waiting, 20000));
  g_assert_cmpint (kp_test_db_int (path, "SELECT CAST(value AS INTEGER) FROM settings "
                                         "WHERE key = 'port'"), ==, 7979);
  kp_ledger_add_credential_async (ledger, "openai", "new", 1.0, "keyring", NULL, NULL,
                                  kp_test_store_result, &added);
  g_assert_true (kp_test_spin_until (kp_test_result_ready, &added, 20000));
  id = kp_ledger_add_credential_finish (ledger, added, &error);
  g_assert_no_error (error);
  g_assert_cmpint (id, >, 0);
  g_assert_cmpint (kp_test_db_int (path, "SELECT COUNT(*) FROM credentials"), ==, 1);

  /* A new key alone while writes fail: answered, and nothing is left to
   * retry; the writer waits for the next write, which lands.
   */
  kp_ledger_set_fail_writes (ledger, TRUE);
  g_clear_object (&added);
  kp_ledger_add_credential_async (ledger, "openai", "other", 1.0, "keyring", NULL, NULL,
                                  kp_test_store_result, &added);
  g_assert_true (kp_test_spin_until (kp_test_result_ready, &added, 20000));
  g_assert_cmpint (kp_ledger_add_credential_finish (ledger, added, &error), ==, 0);
  g_assert_error (error, KP_LEDGER_ERROR, KP_LEDGER_ERROR_QUERY);
  g_clear_error (&error);
  kp_ledger_set_fail_writes (ledger, FALSE);
  g_clear_object (&saved);
  kp_ledger_set_setting_async (ledger, "run-in-background", "true", kp_test_store_result, &saved);
  g_assert_true (kp_test_spin_until (kp_test_result_ready, &saved, 20000));
  g_assert_true (kp_ledger_write_finish (ledger, saved, &error));
  g_assert_no_error (error);
  g_assert_cmpint (kp_test_db_int (path, "SELECT COUNT(*) FROM credentials"), ==, 1);
  g_assert_cmpint (kp_test_db_int (path, "SELECT COUNT(*) FROM settings"), ==, 2);

  g_assert_cmpint (sqlite3_open (path, &db), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_exec (db, "UPDATE settings SET value = '8080' WHERE key = 'port'",
                                 NULL, NULL, NULL), ==, SQLITE_OK);
  sqlite3_close (db);
  g_clear_pointer (&value, g_free);
  value = kp_ledger_get_setting (ledger, "port");
  g_assert_cmpstr (value, ==, "8080");

  g_clear_object (&ledger);
  kp_test_remove_tree (dir);
}

/* A database the user may not write (root may write anything: the test
 * runs as nobody then).
 */
static void
test_read_only (void)
{
  g_autofree char *dir = NULL;
  g_autofree char *path = NULL;
  g_autoptr(GPtrArray) results = g_ptr_array_new_with_free_func (g_object_unref);
  g_autoptr(GError) error = NULL;
  g_autoptr(KpLedger) ledger = NULL;
  gboolean was_root = geteuid () == 0;
  Waiting waiting = { NULL, NULL, results, 1 };

  if (was_root && seteuid (65534) != 0)
    {
      g_test_skip ("cannot act as another user than root");
      return;
    }

  dir = g_dir_make_tmp ("keypool-ledger-XXXXXX", NULL);
  g_assert_nonnull (dir);
  path = g_build_filename (dir, "keypool.db", NULL);
  g_clear_object (&ledger);
  ledger = kp_ledger_open (path, &error);
  g_assert_no_error (error);
  g_clear_object (&ledger);
  g_assert_cmpint (g_chmod (path, 0400), ==, 0);

  g_test_expect_message ("keypool", G_LOG_LEVEL_WARNING, "*read-only*");
  ledger = kp_ledger_open (path, &error);
  g_test_assert_expected_messages ();
  g_assert_no_error (error);
  waiting.ledger = ledger;
  kp_ledger_set_retry_policy (ledger, 5, 40, 10000);

  add_request_later (ledger, "kp-read-only", 1234, results);
  g_assert_true (kp_test_spin_until (results_are_in, &waiting, 20000));
  assert_rows_wait (ledger, results, 0);
  waiting.needle = "not being recorded";
  g_assert_true (kp_test_spin_until (problem_is, &waiting, 20000));

  /* The user makes it writable again. */
  {
    const char *suffixes[] = { "", "-wal", "-shm" };

    for (guint i = 0; i < G_N_ELEMENTS (suffixes); i++)
      {
        g_autofree char *file = g_strconcat (path, suffixes[i], NULL);

        if (g_file_test (file, G_FILE_TEST_EXISTS))
          g_assert_cmpint (g_chmod (file, 0600), ==, 0);
      }
  }
  waiting.needle = NULL;
  g_assert_true (kp_test_spin_until (problem_is, &waiting, 20000));
  g_assert_cmpint (kp_test_db_int (path, "SELECT COUNT(*) FROM requests WHERE time = 1234"), ==, 1);

  g_clear_object (&ledger);
  kp_test_remove_tree (dir);
  if (was_root)
    g_assert_cmpint (seteuid (0), ==, 0);
}

/* /health says "degraded", and why, while the ledger has a problem. */
static void
test_health_degraded (void)
{
  KpTestPlace place = { 0 };
  g_autofree char *data = NULL;
  g_autofree char *db = NULL;
  g_autofree char *url = NULL;
  g_autoptr(SoupSession) session = soup_session_new ();
  g_autoptr(SoupMessage) msg = NULL;
  g_auto(KpTestResponse) response = { 0 };
  KpGateway *gateway;

  kp_test_place_init (&place, "ledger-health");
  data = g_build_filename (place.root, "data", NULL);
  db = g_build_filename (data, "keypool.db", NULL);
  g_assert_cmpint (g_mkdir (data, 0700), ==, 0);
  g_assert_true (g_file_set_contents (db, "garbage garbage garbage garbage", -1, NULL));

  gateway = kp_test_gateway_new (place.providers, place.root, "kp-health-token-0123456789");
  g_test_expect_message ("keypool", G_LOG_LEVEL_WARNING, "*database was damaged*");
  kp_test_gateway_start (gateway);
  g_test_assert_expected_messages ();

  url = g_strdup_printf ("http://127.0.0.1:%u/health", kp_gateway_get_port (gateway));
  msg = soup_message_new ("GET", url);
  kp_test_send (session, msg, 10000, &response);
  g_assert_cmpuint (response.status, ==, 200);
  g_assert_nonnull (strstr (response.body, "\"status\":\"degraded\""));
  g_assert_nonnull (strstr (response.body, "\"problem\":\"The database was damaged"));

  soup_session_abort (session);
  kp_test_gateway_clear (&gateway);
  kp_test_place_clear (&place);
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
  ADD ("clients", test_clients);
  ADD ("no-half-rows", test_no_half_rows);
  ADD ("catalog-cache", test_catalog_cache);
  g_test_add_func ("/keypool/ledger/newer-schema", test_newer_schema);
  g_test_add_func ("/keypool/ledger/damaged-garbage", test_damaged_garbage);
  g_test_add_func ("/keypool/ledger/damaged-pages", test_damaged_pages);
  g_test_add_func ("/keypool/ledger/write-failure", test_write_failure);
  g_test_add_func ("/keypool/ledger/write-failure-bounded", test_write_failure_bounded);
  g_test_add_func ("/keypool/ledger/states-wait", test_states_wait);
  g_test_add_func ("/keypool/ledger/writes-wait", test_writes_wait);
  g_test_add_func ("/keypool/ledger/read-only", test_read_only);
  g_test_add_func ("/keypool/ledger/health-degraded", test_health_degraded);

#undef ADD

  return g_test_run ();
}
