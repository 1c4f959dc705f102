/* test-ledger-migrate.c: a real version-6 database file, full of rows of
 * every kind, through migrations 7 and 8 and on
 *
 * The version-6 schema below is frozen here as Keypool 6 wrote it: the
 * test must not take it from the code it checks.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include "config.h"

#include <string.h>

#include <glib/gstdio.h>
#include <sqlite3.h>

#include "kp-credential.h"
#include "kp-ledger-internal.h"
#include "kp-ledger-private.h"
#include "kp-test-util.h"

static const char schema_6[] =
  "CREATE TABLE credentials ("
  "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
  "  provider TEXT NOT NULL,"
  "  label TEXT NOT NULL DEFAULT '',"
  "  multiplier REAL NOT NULL DEFAULT 1.0 CHECK (multiplier > 0),"
  "  enabled INTEGER NOT NULL DEFAULT 1,"
  "  created INTEGER NOT NULL,"
  "  source TEXT NOT NULL CHECK (source IN ('keyring', 'env')),"
  "  env_var TEXT,"
  "  fingerprint TEXT,"
  "  state TEXT NOT NULL DEFAULT 'ok'"
  "    CHECK (state IN ('ok', 'cooling', 'exhausted', 'invalid')),"
  "  state_until INTEGER NOT NULL DEFAULT 0,"
  "  last_error TEXT,"
  "  UNIQUE (provider, env_var));"
  "CREATE TABLE provider_settings (provider TEXT PRIMARY KEY,"
  "  enabled INTEGER NOT NULL DEFAULT 1);"
  "CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
  "CREATE TABLE requests ("
  "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
  "  request_id TEXT NOT NULL,"
  "  time INTEGER NOT NULL,"
  "  dialect TEXT NOT NULL,"
  "  model TEXT,"
  "  provider TEXT,"
  "  credential_id INTEGER,"
  "  upstream_model TEXT,"
  "  status INTEGER NOT NULL,"
  "  outcome TEXT NOT NULL"
  "    CHECK (outcome IN ('ok', 'upstream_error', 'client_error', 'interrupted', 'cancelled')),"
  "  error TEXT,"
  "  attempts INTEGER NOT NULL DEFAULT 0,"
  "  prompt_tokens INTEGER NOT NULL DEFAULT 0,"
  "  completion_tokens INTEGER NOT NULL DEFAULT 0,"
  "  cached_tokens INTEGER NOT NULL DEFAULT 0,"
  "  reasoning_tokens INTEGER NOT NULL DEFAULT 0,"
  "  cost_nano INTEGER NOT NULL DEFAULT 0,"
  "  cost_source TEXT NOT NULL"
  "    CHECK (cost_source IN ('reported', 'computed', 'estimated', 'unknown')),"
  "  ttfb_ms INTEGER,"
  "  total_ms INTEGER,"
  "  streamed INTEGER NOT NULL DEFAULT 0);"
  "CREATE INDEX requests_by_time ON requests (time);"
  "CREATE TABLE attempts ("
  "  request INTEGER NOT NULL REFERENCES requests (id) ON DELETE CASCADE,"
  "  n INTEGER NOT NULL,"
  "  provider TEXT,"
  "  credential_id INTEGER,"
  "  status INTEGER NOT NULL,"
  "  failure TEXT,"
  "  ms INTEGER NOT NULL,"
  "  PRIMARY KEY (request, n));"
  "ALTER TABLE requests ADD COLUMN cache_write_tokens INTEGER NOT NULL DEFAULT 0;"
  "CREATE TABLE catalog_models ("
  "  provider TEXT NOT NULL, n INTEGER NOT NULL, upstream_id TEXT NOT NULL,"
  "  input REAL, output REAL, cached_input REAL, context INTEGER NOT NULL DEFAULT 0,"
  "  source TEXT NOT NULL, refreshed_at INTEGER NOT NULL,"
  "  PRIMARY KEY (provider, upstream_id));"
  "CREATE TABLE provider_refresh ("
  "  provider TEXT PRIMARY KEY, refreshed_at INTEGER NOT NULL DEFAULT 0,"
  "  ok_at INTEGER NOT NULL DEFAULT 0, error TEXT, balance REAL, currency TEXT,"
  "  balance_at INTEGER NOT NULL DEFAULT 0);"
  "CREATE TABLE refusals ("
  "  id INTEGER PRIMARY KEY, time INTEGER NOT NULL, last_time INTEGER NOT NULL,"
  "  count INTEGER NOT NULL DEFAULT 1 CHECK (count > 0), method TEXT, path TEXT,"
  "  status INTEGER NOT NULL, code TEXT NOT NULL, client TEXT);"
  "CREATE INDEX requests_failed ON requests (time) WHERE status >= 400 OR outcome = "
  "'interrupted';"
  "ALTER TABLE requests ADD COLUMN client_id INTEGER NOT NULL DEFAULT 0;"
  "ALTER TABLE requests ADD COLUMN client_address TEXT;"
  "PRAGMA user_version = 6;";

static const char *tables[] = {
  "credentials", "provider_settings", "settings", "requests", "attempts",
  "catalog_models", "provider_refresh", "refusals", "sqlite_sequence",
};

/* A request as Keypool inserts one. */
static const char insert_request[] =
  "INSERT INTO requests (request_id, time, dialect, status, outcome, cost_source) "
  "VALUES (?, ?, ?, ?, ?, ?)";

static const char *outcomes[] = {
  "ok", "upstream_error", "client_error", "interrupted", "cancelled",
};

static const char *cost_sources[] = {
  "reported", "computed", "estimated", "unknown",
};

static const char *states[] = {
  "ok", "cooling", "exhausted", "invalid",
};

static void
exec_ok (sqlite3    *db,
         const char *sql)
{
  char *message = NULL;

  if (sqlite3_exec (db, sql, NULL, NULL, &message) != SQLITE_OK)
    g_error ("%s: %s", sql, message);
}

/* Rows of every kind: every state, source, outcome and cost source; NULLs
 * and values in every nullable column; text that needs quoting, numbers at
 * their edges; and ids with holes, the AUTOINCREMENT counters past them.
 */
static void
write_version_6 (const char *path,
                 const char *obstacle)
{
  sqlite3 *db = NULL;
  guint n = 0;

  g_assert_cmpint (sqlite3_open (path, &db), ==, SQLITE_OK);
  exec_ok (db, "PRAGMA journal_mode = WAL");
  exec_ok (db, "PRAGMA foreign_keys = ON");
  exec_ok (db, schema_6);
  exec_ok (db, "BEGIN");

  for (guint s = 0; s < G_N_ELEMENTS (states); s++)
    {
      char *sql;

      sql = sqlite3_mprintf ("INSERT INTO credentials (provider, label, multiplier, enabled, "
                             "created, source, env_var, fingerprint, state, state_until, "
                             "last_error) VALUES ('openai', %Q, %.17g, %d, %u, 'keyring', NULL, "
                             "%Q, %Q, %d, %Q)",
                             s == 0 ? "" : "l'abel ✓", 0.25 + s, s % 2, 1700000000u + s,
                             s == 1 ? NULL : "fp-x", states[s], s == 0 ? 0 : 1800000000 + s,
                             s == 0 ? NULL : "rate_limited: \"quoted\"\nnew line");
      exec_ok (db, sql);
      sqlite3_free (sql);
    }
  exec_ok (db, "INSERT INTO credentials (provider, created, source, env_var) "
               "VALUES ('anthropic', 1, 'env', 'ANTHROPIC_API_KEY')");
  /* A removed key: its id is never given again. */
  exec_ok (db, "INSERT INTO credentials (provider, created, source) VALUES ('gone', 2, 'keyring')");
  exec_ok (db, "DELETE FROM credentials WHERE provider = 'gone'");

  for (guint o = 0; o < G_N_ELEMENTS (outcomes); o++)
    for (guint c = 0; c < G_N_ELEMENTS (cost_sources); c++, n++)
      {
        char *sql;

        sql = sqlite3_mprintf ("INSERT INTO requests (request_id, time, dialect, model, provider, "
                               "credential_id, upstream_model, status, outcome, error, attempts, "
                               "prompt_tokens, completion_tokens, cached_tokens, reasoning_tokens, "
                               "cost_nano, cost_source, ttfb_ms, total_ms, streamed, "
                               "cache_write_tokens, client_id, client_address) VALUES "
                               "('kp-%u', %lld, %Q, %Q, %Q, %s, %Q, %u, %Q, %Q, %u, %lld, %u, %u, "
                               "%u, %lld, %Q, %s, %s, %d, %u, %u, %Q)",
                               n, (long long)1760000000000 + n, n % 2 ? "anthropic" : "openai-chat",
                               n % 3 ? "gpt-x" : NULL, n % 4 ? "openai" : NULL,
                               n % 4 ? "1" : "NULL", n % 5 ? "gpt-x-2026" : NULL,
                               o == 0 ? 200 : 400 + o, outcomes[o],
                               o == 0 ? NULL : "it's \"broken\" — ünïcode", n % 3,
                               n == 7 ? (long long)1000000000000 : (long long)n * 1000, n * 10,
                               n, n % 2, n == 7 ? (long long)1000000000000000 : (long long)n * 17,
                               cost_sources[c], n % 2 ? "NULL" : "123", n % 6 ? "4567" : "NULL",
                               (int)(n % 2), n * 3, n % 3, n % 2 ? "127.0.0.1" : NULL);
        exec_ok (db, sql);
        sqlite3_free (sql);
        sql = sqlite3_mprintf ("INSERT INTO attempts (request, n, provider, credential_id, status, "
                               "failure, ms) VALUES (last_insert_rowid (), 1, 'openai', %s, %u, "
                               "%Q, %u)",
                               n % 2 ? "1" : "NULL", o == 0 ? 200 : 429,
                               o == 0 ? NULL : "rate_limited", n);
        exec_ok (db, sql);
        sqlite3_free (sql);
      }
  /* A second attempt on one request, and a removed request. */
  exec_ok (db, "INSERT INTO attempts (request, n, provider, credential_id, status, failure, ms) "
               "VALUES (3, 2, 'anthropic', NULL, 200, NULL, 12)");
  exec_ok (db, "INSERT INTO requests (request_id, time, dialect, status, outcome, cost_source) "
               "VALUES ('kp-gone', 1, 'openai-chat', 200, 'ok', 'unknown')");
  exec_ok (db, "DELETE FROM requests WHERE request_id = 'kp-gone'");

  exec_ok (db, "INSERT INTO provider_settings VALUES ('openai', 0), ('groq', 1)");
  exec_ok (db, "INSERT INTO settings VALUES ('port', '7878'), ('budget.daily', '2.5')");
  exec_ok (db, "INSERT INTO catalog_models VALUES ('openai', 0, 'gpt-x', 1.25, 10.0, NULL, "
               "128000, 'live', 1760000000), ('openai', 1, 'gpt-y', NULL, NULL, 0.1, 0, "
               "'file', 1760000001)");
  exec_ok (db, "INSERT INTO provider_refresh VALUES ('openai', 1760000000, 1760000000, NULL, "
               "12.5, 'USD', 1760000000), ('deepseek', 5, 0, 'HTTP 500', NULL, NULL, 0)");
  exec_ok (db, "INSERT INTO refusals VALUES (1, 10, 20, 3, 'POST', '/v1/x', 401, "
               "'invalid_api_key', '127.0.0.1'), (2, 30, 30, 1, NULL, NULL, 404, 'not_found', NULL)");
  /* A table in the way of a migration's rebuild makes that migration fail. */
  if (obstacle != NULL)
    {
      char *sql = sqlite3_mprintf ("CREATE TABLE \"%w\" (x)", obstacle);

      exec_ok (db, sql);
      sqlite3_free (sql);
    }
  exec_ok (db, "COMMIT");
  sqlite3_close (db);
}

/* Every row of @table, each column quoted as sqlite keeps it (type
 * included), in the columns @table had in version 6.
 */
static GPtrArray *
dump_table (sqlite3    *db,
            const char *table,
            GPtrArray  *columns)
{
  g_autoptr(GPtrArray) rows = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GString) sql = g_string_new ("SELECT ");
  sqlite3_stmt *stmt = NULL;

  for (guint i = 0; i < columns->len; i++)
    g_string_append_printf (sql, "%squote (\"%s\")", i > 0 ? " || '|' || " : "",
                            (const char *)g_ptr_array_index (columns, i));
  g_string_append_printf (sql, " FROM \"%s\" ORDER BY 1", table);
  g_assert_cmpint (sqlite3_prepare_v2 (db, sql->str, -1, &stmt, NULL), ==, SQLITE_OK);
  while (sqlite3_step (stmt) == SQLITE_ROW)
    g_ptr_array_add (rows, g_strdup ((const char *)sqlite3_column_text (stmt, 0)));
  sqlite3_finalize (stmt);
  return g_steal_pointer (&rows);
}

static GPtrArray *
table_columns (sqlite3    *db,
               const char *table)
{
  g_autoptr(GPtrArray) columns = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *sql = g_strdup_printf ("SELECT name FROM pragma_table_info ('%s') ORDER BY cid",
                                          table);
  sqlite3_stmt *stmt = NULL;

  g_assert_cmpint (sqlite3_prepare_v2 (db, sql, -1, &stmt, NULL), ==, SQLITE_OK);
  while (sqlite3_step (stmt) == SQLITE_ROW)
    g_ptr_array_add (columns, g_strdup ((const char *)sqlite3_column_text (stmt, 0)));
  sqlite3_finalize (stmt);
  return g_steal_pointer (&columns);
}

/* How many times @opcode appears in the program sqlite makes of @sql. */
static guint
count_opcodes (const char *path,
               const char *sql,
               const char *opcode)
{
  g_autofree char *explain = g_strconcat ("EXPLAIN ", sql, NULL);
  sqlite3 *db = NULL;
  sqlite3_stmt *stmt = NULL;
  guint n = 0;

  /* Read-write: on a read-only connection sqlite makes no CHECK code. */
  g_assert_cmpint (sqlite3_open_v2 (path, &db, SQLITE_OPEN_READWRITE, NULL), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_prepare_v2 (db, explain, -1, &stmt, NULL), ==, SQLITE_OK);
  while (sqlite3_step (stmt) == SQLITE_ROW)
    if (g_strcmp0 ((const char *)sqlite3_column_text (stmt, 1), opcode) == 0)
      n++;
  sqlite3_finalize (stmt);
  sqlite3_close (db);
  return n;
}

typedef struct
{
  GPtrArray *columns[G_N_ELEMENTS (tables)];
  GPtrArray *rows[G_N_ELEMENTS (tables)];
} Snapshot;

static void
snapshot_take (Snapshot   *snapshot,
               const char *path,
               Snapshot   *columns_of)
{
  sqlite3 *db = NULL;

  g_assert_cmpint (sqlite3_open_v2 (path, &db, SQLITE_OPEN_READONLY, NULL), ==, SQLITE_OK);
  for (guint t = 0; t < G_N_ELEMENTS (tables); t++)
    {
      snapshot->columns[t] = columns_of ? g_ptr_array_ref (columns_of->columns[t])
                                        : table_columns (db, tables[t]);
      g_assert_cmpuint (snapshot->columns[t]->len, >, 0);
      snapshot->rows[t] = dump_table (db, tables[t], snapshot->columns[t]);
    }
  sqlite3_close (db);
}

static void
snapshot_clear (Snapshot *snapshot)
{
  for (guint t = 0; t < G_N_ELEMENTS (tables); t++)
    {
      g_clear_pointer (&snapshot->columns[t], g_ptr_array_unref);
      g_clear_pointer (&snapshot->rows[t], g_ptr_array_unref);
    }
}

static void
assert_same_rows (Snapshot *before,
                  Snapshot *after)
{
  for (guint t = 0; t < G_N_ELEMENTS (tables); t++)
    {
      g_assert_cmpuint (after->rows[t]->len, ==, before->rows[t]->len);
      for (guint i = 0; i < before->rows[t]->len; i++)
        g_assert_cmpstr (g_ptr_array_index (after->rows[t], i), ==,
                         g_ptr_array_index (before->rows[t], i));
    }
}

static void
test_from_version_6 (void)
{
  g_autofree char *dir = g_dir_make_tmp ("keypool-migrate-XXXXXX", NULL);
  g_autofree char *path = g_build_filename (dir, "keypool.db", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(KpLedger) ledger = NULL;
  g_autoptr(GPtrArray) recent = NULL;
  g_autoptr(GPtrArray) keys = NULL;
  Snapshot before = { 0 };
  Snapshot after = { 0 };
  gint64 request_seq, credential_seq;

  write_version_6 (path, NULL);
  snapshot_take (&before, path, NULL);
  /* Version 6 builds a temporary table for each IN list of a CHECK, on
   * every row inserted: the test below can tell.
   */
  g_assert_cmpuint (count_opcodes (path, insert_request, "OpenEphemeral"), ==, 2);
  g_assert_cmpuint (before.rows[3]->len, ==, 20);  /* requests */
  g_assert_cmpuint (before.rows[4]->len, ==, 21);  /* attempts */
  request_seq = kp_test_db_int (path, "SELECT seq FROM sqlite_sequence WHERE name = 'requests'");
  credential_seq = kp_test_db_int (path,
                                   "SELECT seq FROM sqlite_sequence WHERE name = 'credentials'");
  g_assert_cmpint (request_seq, ==, 21);
  g_assert_cmpint (credential_seq, ==, 6);

  ledger = kp_ledger_open (path, &error);
  g_assert_no_error (error);
  g_assert_nonnull (ledger);
  g_assert_null (kp_ledger_get_problem (ledger));
  g_assert_cmpint (kp_test_db_int (path, "PRAGMA user_version"), ==, 8);

  /* Every row and every version-6 column as it was, counters included. */
  snapshot_take (&after, path, &before);
  assert_same_rows (&before, &after);
  g_assert_cmpint (kp_test_db_int (path,
                                   "SELECT COUNT(*) FROM sqlite_master WHERE name LIKE '%_new'"),
                   ==, 0);

  /* The new columns: nothing known of the old rows. */
  g_assert_cmpint (kp_test_db_int (path, "SELECT COUNT(*) FROM requests WHERE credits IS NULL AND "
                                         "tokens_estimated = 0"), ==, 20);
  g_assert_cmpint (kp_test_db_int (path, "SELECT COUNT(*) FROM credentials WHERE user_url IS NULL"),
                   ==, 5);

  /* The indexes are back, as they were. */
  g_assert_cmpint (kp_test_db_int (path,
                                   "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND "
                                   "tbl_name = 'requests' AND name IN ('requests_by_time', "
                                   "'requests_failed')"), ==, 2);
  {
    g_autofree char *failed = kp_test_db_text (path, "SELECT sql FROM sqlite_master WHERE name = "
                                                     "'requests_failed'");

    g_assert_nonnull (strstr (failed, "WHERE status >= 400 OR outcome = 'interrupted'"));
  }
  /* Migration 8: no temporary table for a request's CHECKs, and the
   * attempts are their own primary key, with no index beside them.
   */
  g_assert_cmpuint (count_opcodes (path, insert_request, "OpenEphemeral"), ==, 0);
  {
    g_autofree char *attempts = kp_test_db_text (path, "SELECT sql FROM sqlite_master WHERE name = "
                                                       "'attempts'");

    g_assert_nonnull (strstr (attempts, "WITHOUT ROWID"));
    g_assert_nonnull (strstr (attempts, "REFERENCES requests (id) ON DELETE CASCADE"));
  }
  g_assert_cmpint (kp_test_db_int (path, "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' "
                                         "AND tbl_name = 'attempts'"), ==, 0);
  g_assert_cmpint (kp_test_db_int (path, "SELECT COUNT(*) FROM pragma_foreign_key_check"), ==, 0);
  g_assert_true (kp_ledger_check_integrity (ledger, &error));
  g_assert_no_error (error);

  /* Read back through the ledger. */
  recent = kp_ledger_recent_requests (ledger, 100, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (recent->len, ==, 20);
  for (guint i = 0; i < recent->len; i++)
    {
      KpRequestRow *row = g_ptr_array_index (recent, i);

      g_assert_false (row->has_credits);
      g_assert_false (row->tokens_estimated);
    }
  keys = kp_ledger_list_credentials (ledger, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (keys->len, ==, 5);
  for (guint s = 0; s < G_N_ELEMENTS (states); s++)
    {
      KpCredentialRow *row = g_ptr_array_index (keys, s);

      g_assert_cmpstr (row->state, ==, states[s]);
      g_assert_null (row->user_url);
    }

  /* New rows: the old counters go on, a removed id is not given again. */
  {
    KpRequestRow row = {
      .request_id = (char *)"kp-sub", .time_ms = 1770000000000, .api = (char *)"openai-chat",
      .provider = (char *)"kiro", .status = 200, .outcome = (char *)"ok",
      .cost_source = (char *)"subscription", .ttfb_ms = -1, .has_credits = TRUE,
      .credits = 0.0417, .tokens_estimated = TRUE,
    };
    KpAttemptRow attempt = { (char *)"kiro", 0, 200, NULL, 5 };

    g_assert_true (kp_ledger_add_request (ledger, &row, &attempt, 1, &error));
    g_assert_no_error (error);
  }
  g_assert_cmpint (kp_test_db_int (path, "SELECT id FROM requests WHERE request_id = 'kp-sub'"), ==,
                   request_seq + 1);
  g_assert_cmpint (kp_ledger_add_credential (ledger, "kiro", "", 1.0, "keyring", NULL, NULL,
                                             &error), ==, credential_seq + 1);
  g_assert_no_error (error);

  /* Foreign keys are on again: removing a request takes its attempts. */
  g_assert_cmpint (kp_test_db_int (path, "SELECT COUNT(*) FROM attempts WHERE request = 3"), ==, 2);
  g_assert_true (kp_ledger_exec (ledger, "DELETE FROM requests WHERE id = 3", "test", &error));
  g_assert_no_error (error);
  g_assert_cmpint (kp_test_db_int (path, "SELECT COUNT(*) FROM attempts WHERE request = 3"), ==, 0);

  snapshot_clear (&before);
  snapshot_clear (&after);
  g_clear_object (&ledger);
  kp_test_remove_tree (dir);
}

/* A migration that cannot finish leaves the file as the one before left
 * it: every row, nothing half-built. A table in the way of migration 7's
 * rebuild stops the file at version 6; one in the way of migration 8's,
 * at version 7 (migration 7 commits on its own).
 */
static void
check_failed_migration (const char *obstacle,
                        gint64      version)
{
  g_autofree char *dir = g_dir_make_tmp ("keypool-migrate-XXXXXX", NULL);
  g_autofree char *path = g_build_filename (dir, "keypool.db", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(KpLedger) ledger = NULL;
  Snapshot before = { 0 };
  Snapshot after = { 0 };

  write_version_6 (path, obstacle);
  snapshot_take (&before, path, NULL);

  ledger = kp_ledger_open (path, &error);
  g_assert_null (ledger);
  g_assert_nonnull (error);
  g_assert_cmpint (kp_test_db_int (path, "PRAGMA user_version"), ==, version);
  snapshot_take (&after, path, &before);
  assert_same_rows (&before, &after);
  g_assert_cmpint (kp_test_db_int (path, "SELECT COUNT(*) FROM sqlite_master WHERE name = "
                                         "'credentials_new'"), ==, 0);
  g_assert_cmpint (kp_test_db_int (path,
                                   "SELECT COUNT(*) FROM pragma_table_info ('requests') WHERE "
                                   "name = 'credits'"), ==, version >= 7 ? 1 : 0);
  /* The attempts are still a rowid table with their index. */
  g_assert_cmpint (kp_test_db_int (path, "SELECT COUNT(*) FROM sqlite_master WHERE sql LIKE "
                                         "'%WITHOUT ROWID%'"), ==, 0);

  snapshot_clear (&before);
  snapshot_clear (&after);
  kp_test_remove_tree (dir);
}

static void
test_failed_migration (void)
{
  check_failed_migration ("requests_new", 6);
  check_failed_migration ("attempts_new", 7);
}

/* What migrations 7 and 8 let in, and what they still keep out. */
static void
test_new_values (void)
{
  g_autofree char *dir = g_dir_make_tmp ("keypool-migrate-XXXXXX", NULL);
  g_autofree char *path = g_build_filename (dir, "keypool.db", NULL);
  g_autofree char *long_url = NULL;
  g_autofree char *long_reason = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(KpLedger) ledger = kp_ledger_open (path, &error);
  g_autoptr(GPtrArray) recent = NULL;
  g_autoptr(GPtrArray) keys = NULL;
  KpRequestRow row = {
    .request_id = (char *)"kp-1", .time_ms = 1770000000000, .api = (char *)"openai-chat",
    .provider = (char *)"kiro", .status = 200, .outcome = (char *)"ok",
    .cost_source = (char *)"subscription", .ttfb_ms = -1, .has_credits = TRUE,
    .credits = 41.3, .tokens_estimated = TRUE,
  };
  gint64 a, b, c, d;

  g_assert_no_error (error);
  g_assert_true (kp_ledger_add_request (ledger, &row, NULL, 0, &error));
  g_assert_no_error (error);
  row.request_id = (char *)"kp-2";
  row.cost_source = (char *)"computed";
  row.has_credits = FALSE;
  row.tokens_estimated = FALSE;
  g_assert_true (kp_ledger_add_request (ledger, &row, NULL, 0, &error));
  g_assert_no_error (error);
  row.request_id = (char *)"kp-3";
  row.cost_source = (char *)"free-money";
  g_assert_false (kp_ledger_add_request (ledger, &row, NULL, 0, &error));
  g_assert_error (error, KP_LEDGER_ERROR, KP_LEDGER_ERROR_QUERY);
  g_clear_error (&error);
  row.cost_source = (char *)"computed";
  row.outcome = (char *)"okay";
  g_assert_false (kp_ledger_add_request (ledger, &row, NULL, 0, &error));
  g_assert_error (error, KP_LEDGER_ERROR, KP_LEDGER_ERROR_QUERY);
  g_clear_error (&error);
  row.outcome = (char *)"ok";

  recent = kp_ledger_recent_requests (ledger, 10, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (recent->len, ==, 2);
  {
    KpRequestRow *computed = g_ptr_array_index (recent, 0);
    KpRequestRow *subscription = g_ptr_array_index (recent, 1);

    g_assert_cmpstr (subscription->cost_source, ==, "subscription");
    g_assert_true (subscription->has_credits);
    g_assert_cmpfloat_with_epsilon (subscription->credits, 41.3, 1e-9);
    g_assert_true (subscription->tokens_estimated);
    g_assert_cmpstr (computed->cost_source, ==, "computed");
    g_assert_false (computed->has_credits);
    g_assert_false (computed->tokens_estimated);
  }

  /* An account waiting for its owner keeps the page, bounded; a later save
   * of the same state keeps it, any other state forgets it.
   */
  a = kp_ledger_add_credential (ledger, "gemini-cli", "a", 1.0, "keyring", NULL, NULL, &error);
  b = kp_ledger_add_credential (ledger, "gemini-cli", "b", 1.0, "keyring", NULL, NULL, &error);
  c = kp_ledger_add_credential (ledger, "gemini-cli", "c", 1.0, "keyring", NULL, NULL, &error);
  d = kp_ledger_add_credential (ledger, "gemini-cli", "d", 1.0, "keyring", NULL, NULL, &error);
  g_assert_no_error (error);
  long_url = g_strdup_printf ("https://accounts.google.com/%0*d", KP_LEDGER_MAX_USER_URL, 0);
  long_reason = g_strnfill (KP_LEDGER_MAX_USER_REASON + 10, 'x');
  /* A two-byte character across the bound is cut whole. */
  long_reason[KP_LEDGER_MAX_USER_REASON - 1] = '\xc3';
  long_reason[KP_LEDGER_MAX_USER_REASON] = '\xa9';
  kp_ledger_save_credential_needs_user (ledger, a, "https://accounts.google.com/signin/continue?x=1",
                                        "Verify your account");
  kp_ledger_save_credential_state (ledger, a, "needs_user", 0, "Verify your account");
  kp_ledger_save_credential_needs_user (ledger, b, long_url, long_reason);
  kp_ledger_save_credential_needs_user (ledger, c, "https://user:pw@example.com/", NULL);
  kp_ledger_save_credential_needs_user (ledger, d, "https://example.com/verify", "r");
  kp_ledger_save_credential_state (ledger, d, "ok", 0, NULL);
  /* The writer has written what was queued once the ledger is gone. */
  g_clear_object (&ledger);

  ledger = kp_ledger_open (path, &error);
  g_assert_no_error (error);
  keys = kp_ledger_list_credentials (ledger, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (keys->len, ==, 4);
  {
    KpCredentialRow *ra = g_ptr_array_index (keys, 0);
    KpCredentialRow *rb = g_ptr_array_index (keys, 1);
    KpCredentialRow *rc = g_ptr_array_index (keys, 2);
    KpCredentialRow *rd = g_ptr_array_index (keys, 3);
    g_autoptr(KpCredential) credential = kp_credential_new_from_row (ra);

    g_assert_cmpstr (ra->state, ==, "needs_user");
    g_assert_cmpstr (ra->user_url, ==, "https://accounts.google.com/signin/continue?x=1");
    g_assert_cmpstr (ra->last_error, ==, "Verify your account");
    g_assert_cmpint (kp_credential_get_state (credential, G_MAXINT64), ==,
                     KP_CREDENTIAL_NEEDS_USER);
    g_assert_false (kp_credential_is_usable (credential, 0));
    g_assert_cmpstr (kp_credential_get_user_url (credential), ==, ra->user_url);
    g_assert_cmpstr (kp_credential_state_to_string (KP_CREDENTIAL_NEEDS_USER), ==, "needs_user");
    g_assert_cmpint (kp_credential_state_from_string ("needs_user"), ==, KP_CREDENTIAL_NEEDS_USER);
    kp_credential_set_state (credential, KP_CREDENTIAL_OK, 0, NULL);
    g_assert_null (kp_credential_get_user_url (credential));

    g_assert_cmpstr (rb->state, ==, "needs_user");
    g_assert_null (rb->user_url);
    g_assert_cmpuint (strlen (rb->last_error), ==, KP_LEDGER_MAX_USER_REASON - 1);
    g_assert_true (g_utf8_validate (rb->last_error, -1, NULL));

    g_assert_cmpstr (rc->state, ==, "needs_user");
    g_assert_null (rc->user_url);

    g_assert_cmpstr (rd->state, ==, "ok");
    g_assert_null (rd->user_url);
  }

  /* The schema itself refuses what the C side would never write. */
  g_assert_false (kp_ledger_exec (ledger, "UPDATE credentials SET state = 'asleep'", "test",
                                  &error));
  g_clear_error (&error);
  {
    g_autofree char *sql = g_strdup_printf ("UPDATE credentials SET user_url = '%s'", long_url);

    g_assert_false (kp_ledger_exec (ledger, sql, "test", &error));
    g_clear_error (&error);
  }

  g_clear_object (&ledger);
  kp_test_remove_tree (dir);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/keypool/ledger-migrate/from-version-6", test_from_version_6);
  g_test_add_func ("/keypool/ledger-migrate/failed", test_failed_migration);
  g_test_add_func ("/keypool/ledger-migrate/new-values", test_new_values);

  return g_test_run ();
}
