/* kp-ledger.c: Keypool's sqlite store: the object, opening, the schema
 *
 * One database in WAL mode. Every finished request is one row, written with
 * its attempts in one transaction: a crash or kill -9 loses at most the
 * requests still in flight and never leaves half a row. Statements are
 * prepared once and kept; nothing here blocks on fsync per row
 * (synchronous=NORMAL is durable against a process crash in WAL mode).
 *
 * The rooms: this file (the object, open, migrations, quick_check and the
 * sqlite helpers), kp-ledger-settings.c (keys, providers, settings, the
 * catalog cache), kp-ledger-rows.c (what one request, refusal or key state
 * writes), kp-ledger-writer.c (the writer thread), kp-ledger-writes.c (the
 * keys', settings' and catalog's writes through it) and kp-ledger-reads.c
 * (requests, problems and spend read back, also on worker threads).
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include <errno.h>
#include <string.h>

#include <glib/gstdio.h>
#include <sqlite3.h>

#include "kp-ledger-internal.h"
#include "kp-ledger-private.h"

enum {
  PROP_0,
  PROP_PROBLEM,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

enum {
  REFUSALS_WRITTEN,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

G_DEFINE_TYPE (KpLedger, kp_ledger, G_TYPE_OBJECT)

#define RETRY_MIN_MS 250
#define RETRY_MAX_MS 30000
#define MAX_PENDING  10000

G_DEFINE_QUARK (kp-ledger-error-quark, kp_ledger_error)

/* Numbered migrations: migration N brings user_version from N-1 to N. */
static const char *migrations[] = {
  /* 1: the first schema */
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
  "CREATE TABLE provider_settings ("
  "  provider TEXT PRIMARY KEY,"
  "  enabled INTEGER NOT NULL DEFAULT 1);"
  "CREATE TABLE settings ("
  "  key TEXT PRIMARY KEY,"
  "  value TEXT NOT NULL);"
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
  "  PRIMARY KEY (request, n));",

  /* 2: tokens written to a prompt cache are priced apart (Anthropic) */
  "ALTER TABLE requests ADD COLUMN cache_write_tokens INTEGER NOT NULL DEFAULT 0;",

  /* 3: catalog cache: the last good live model list of each provider, and
   * how its last refresh went. Prices are USD per million tokens; NULL = not
   * given. No secret is kept here.
   */
  "CREATE TABLE catalog_models ("
  "  provider TEXT NOT NULL,"
  "  n INTEGER NOT NULL,"
  "  upstream_id TEXT NOT NULL,"
  "  input REAL,"
  "  output REAL,"
  "  cached_input REAL,"
  "  context INTEGER NOT NULL DEFAULT 0,"
  "  source TEXT NOT NULL,"
  "  refreshed_at INTEGER NOT NULL,"
  "  PRIMARY KEY (provider, upstream_id));"
  "CREATE TABLE provider_refresh ("
  "  provider TEXT PRIMARY KEY,"
  "  refreshed_at INTEGER NOT NULL DEFAULT 0,"
  "  ok_at INTEGER NOT NULL DEFAULT 0,"
  "  error TEXT,"
  "  balance REAL,"
  "  currency TEXT,"
  "  balance_at INTEGER NOT NULL DEFAULT 0);",

  /* 4: requests refused before they reached a relay (a bad token, an
   * unknown path, a wrong method...), repeats of one method, path, status,
   * code and client counted in one row: never a body, a header or a token.
   * The index finds failed requests without reading every request.
   */
  "CREATE TABLE refusals ("
  "  id INTEGER PRIMARY KEY,"
  "  time INTEGER NOT NULL,"
  "  last_time INTEGER NOT NULL,"
  "  count INTEGER NOT NULL DEFAULT 1 CHECK (count > 0),"
  "  method TEXT,"
  "  path TEXT,"
  "  status INTEGER NOT NULL,"
  "  code TEXT NOT NULL,"
  "  client TEXT);"
  "CREATE INDEX requests_failed ON requests (time) WHERE status >= 400 OR outcome = "
  "'interrupted';",

  /* 5: the client token each request came with (0 = the main token). */
  "ALTER TABLE requests ADD COLUMN client_id INTEGER NOT NULL DEFAULT 0;",

  /* 6: where a relayed request came from, as a refusal's client says */
  "ALTER TABLE requests ADD COLUMN client_address TEXT;",

  /* 7: money and accounts. A request served by a subscription costs
   * nothing at the margin ('subscription'); the credits a provider says it
   * used (Kiro) are kept, NULL when it said none; tokens_estimated tells
   * counts Keypool guessed from reported ones. An account may wait for its
   * owner ('needs_user'), with the page where the owner acts (user_url).
   * sqlite cannot change a CHECK: both tables are rebuilt and every row
   * copied as it was, ids and AUTOINCREMENT counters included. Foreign
   * keys are off while migrations run, so dropping the old requests does
   * not cascade to the attempts.
   */
  "CREATE TABLE requests_new ("
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
  "    CHECK (cost_source IN ('reported', 'computed', 'estimated', 'unknown', 'subscription')),"
  "  ttfb_ms INTEGER,"
  "  total_ms INTEGER,"
  "  streamed INTEGER NOT NULL DEFAULT 0,"
  "  cache_write_tokens INTEGER NOT NULL DEFAULT 0,"
  "  client_id INTEGER NOT NULL DEFAULT 0,"
  "  client_address TEXT,"
  "  credits REAL,"
  "  tokens_estimated INTEGER NOT NULL DEFAULT 0 CHECK (tokens_estimated IN (0, 1)));"
  "INSERT INTO requests_new (id, request_id, time, dialect, model, provider, credential_id,"
  "  upstream_model, status, outcome, error, attempts, prompt_tokens, completion_tokens,"
  "  cached_tokens, reasoning_tokens, cost_nano, cost_source, ttfb_ms, total_ms, streamed,"
  "  cache_write_tokens, client_id, client_address)"
  "  SELECT id, request_id, time, dialect, model, provider, credential_id,"
  "  upstream_model, status, outcome, error, attempts, prompt_tokens, completion_tokens,"
  "  cached_tokens, reasoning_tokens, cost_nano, cost_source, ttfb_ms, total_ms, streamed,"
  "  cache_write_tokens, client_id, client_address FROM requests ORDER BY id;"
  "DELETE FROM sqlite_sequence WHERE name = 'requests_new';"
  "INSERT INTO sqlite_sequence (name, seq)"
  "  SELECT 'requests_new', seq FROM sqlite_sequence WHERE name = 'requests';"
  "DROP TABLE requests;"
  "ALTER TABLE requests_new RENAME TO requests;"
  "CREATE INDEX requests_by_time ON requests (time);"
  "CREATE INDEX requests_failed ON requests (time) WHERE status >= 400 OR outcome = "
  "'interrupted';"
  "CREATE TABLE credentials_new ("
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
  "    CHECK (state IN ('ok', 'cooling', 'exhausted', 'invalid', 'needs_user')),"
  "  state_until INTEGER NOT NULL DEFAULT 0,"
  "  last_error TEXT,"
  "  user_url TEXT CHECK (user_url IS NULL OR length (user_url) <= 2048),"
  "  UNIQUE (provider, env_var));"
  "INSERT INTO credentials_new (id, provider, label, multiplier, enabled, created, source,"
  "  env_var, fingerprint, state, state_until, last_error)"
  "  SELECT id, provider, label, multiplier, enabled, created, source,"
  "  env_var, fingerprint, state, state_until, last_error FROM credentials ORDER BY id;"
  "DELETE FROM sqlite_sequence WHERE name = 'credentials_new';"
  "INSERT INTO sqlite_sequence (name, seq)"
  "  SELECT 'credentials_new', seq FROM sqlite_sequence WHERE name = 'credentials';"
  "DROP TABLE credentials;"
  "ALTER TABLE credentials_new RENAME TO credentials;",

  /* 8: less written per request recorded.
   * - The CHECKs on requests name their values one comparison at a time:
   *   sqlite tests "x IN (more than two constants)" against a temporary
   *   table it builds anew for every row inserted, two per request. The
   *   table is rebuilt as migration 7 rebuilt it, every row and the
   *   AUTOINCREMENT counter copied as they were; what the CHECKs let in
   *   is unchanged.
   * - An attempt is found by its request and number, and nothing else:
   *   kept WITHOUT ROWID, the table is its own primary key. A rowid table
   *   also keeps an index on (request, n) beside the rows, one more page
   *   written for every request recorded.
   */
  "CREATE TABLE requests_new ("
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
  "    CHECK (outcome = 'ok' OR outcome = 'upstream_error' OR outcome = 'client_error' OR"
  "           outcome = 'interrupted' OR outcome = 'cancelled'),"
  "  error TEXT,"
  "  attempts INTEGER NOT NULL DEFAULT 0,"
  "  prompt_tokens INTEGER NOT NULL DEFAULT 0,"
  "  completion_tokens INTEGER NOT NULL DEFAULT 0,"
  "  cached_tokens INTEGER NOT NULL DEFAULT 0,"
  "  reasoning_tokens INTEGER NOT NULL DEFAULT 0,"
  "  cost_nano INTEGER NOT NULL DEFAULT 0,"
  "  cost_source TEXT NOT NULL"
  "    CHECK (cost_source = 'reported' OR cost_source = 'computed' OR"
  "           cost_source = 'estimated' OR cost_source = 'unknown' OR"
  "           cost_source = 'subscription'),"
  "  ttfb_ms INTEGER,"
  "  total_ms INTEGER,"
  "  streamed INTEGER NOT NULL DEFAULT 0,"
  "  cache_write_tokens INTEGER NOT NULL DEFAULT 0,"
  "  client_id INTEGER NOT NULL DEFAULT 0,"
  "  client_address TEXT,"
  "  credits REAL,"
  "  tokens_estimated INTEGER NOT NULL DEFAULT 0 CHECK (tokens_estimated IN (0, 1)));"
  "INSERT INTO requests_new (id, request_id, time, dialect, model, provider, credential_id,"
  "  upstream_model, status, outcome, error, attempts, prompt_tokens, completion_tokens,"
  "  cached_tokens, reasoning_tokens, cost_nano, cost_source, ttfb_ms, total_ms, streamed,"
  "  cache_write_tokens, client_id, client_address, credits, tokens_estimated)"
  "  SELECT id, request_id, time, dialect, model, provider, credential_id,"
  "  upstream_model, status, outcome, error, attempts, prompt_tokens, completion_tokens,"
  "  cached_tokens, reasoning_tokens, cost_nano, cost_source, ttfb_ms, total_ms, streamed,"
  "  cache_write_tokens, client_id, client_address, credits, tokens_estimated"
  "  FROM requests ORDER BY id;"
  "DELETE FROM sqlite_sequence WHERE name = 'requests_new';"
  "INSERT INTO sqlite_sequence (name, seq)"
  "  SELECT 'requests_new', seq FROM sqlite_sequence WHERE name = 'requests';"
  "DROP TABLE requests;"
  "ALTER TABLE requests_new RENAME TO requests;"
  "CREATE INDEX requests_by_time ON requests (time);"
  "CREATE INDEX requests_failed ON requests (time) WHERE status >= 400 OR outcome = "
  "'interrupted';"
  "CREATE TABLE attempts_new ("
  "  request INTEGER NOT NULL REFERENCES requests (id) ON DELETE CASCADE,"
  "  n INTEGER NOT NULL,"
  "  provider TEXT,"
  "  credential_id INTEGER,"
  "  status INTEGER NOT NULL,"
  "  failure TEXT,"
  "  ms INTEGER NOT NULL,"
  "  PRIMARY KEY (request, n)) WITHOUT ROWID;"
  "INSERT INTO attempts_new (request, n, provider, credential_id, status, failure, ms)"
  "  SELECT request, n, provider, credential_id, status, failure, ms FROM attempts"
  "  ORDER BY request, n;"
  "DROP TABLE attempts;"
  "ALTER TABLE attempts_new RENAME TO attempts;",
};

static void
kp_ledger_finalize (GObject *object)
{
  KpLedger *self = (KpLedger *)object;

  /* Rows already handed over are written before the ledger goes. */
  kp_ledger_stop_writer (self);
  /* What the writer told is still on its way: it finds no ledger. */
  *self->owner = NULL;
  g_clear_pointer (&self->owner, g_atomic_rc_box_release);
  g_clear_pointer (&self->queue, g_async_queue_unref);
  g_clear_pointer (&self->statements, g_hash_table_unref);
  g_clear_pointer (&self->queued_settings, g_hash_table_unref);
  if (self->db != NULL)
    {
      /* Folding the WAL back keeps the folder tidy; errors here are harmless. */
      sqlite3_exec (self->db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
      sqlite3_close_v2 (self->db);
      self->db = NULL;
    }
  g_clear_pointer (&self->path, g_free);
  g_clear_pointer (&self->context, g_main_context_unref);
  g_clear_pointer (&self->open_problem, g_free);
  g_clear_pointer (&self->write_problem, g_free);
  g_clear_pointer (&self->problem, g_free);

  G_OBJECT_CLASS (kp_ledger_parent_class)->finalize (object);
}

static void
kp_ledger_get_property (GObject    *object,
                        guint       prop_id,
                        GValue     *value,
                        GParamSpec *pspec)
{
  KpLedger *self = KP_LEDGER (object);

  switch (prop_id)
    {
    case PROP_PROBLEM:
      g_value_set_string (value, self->problem);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
kp_ledger_class_init (KpLedgerClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = kp_ledger_finalize;
  object_class->get_property = kp_ledger_get_property;

  /* Before sqlite is first used (its initialization takes the settings):
   * no page cache made ready in advance. By default every connection
   * writes 20 page slots at open, about 90 KB kept resident per
   * connection (three in a running Keypool) however little it reads; the
   * slots come one at a time instead, as pages are read. Another user of
   * sqlite in the process may have initialized it first: then the
   * default stays, which only costs that memory.
   */
  sqlite3_config (SQLITE_CONFIG_PAGECACHE, NULL, 0, 0);

  /**
   * KpLedger:problem:
   *
   * What keeps the ledger from recording as it should, in a sentence for
   * the user, or %NULL when all is well: a damaged database that was moved
   * aside, a read-only one, or rows that wait in memory because writes fail.
   */
  properties[PROP_PROBLEM] =
    g_param_spec_string ("problem", NULL, NULL, NULL,
                         G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  g_object_class_install_properties (object_class, N_PROPS, properties);

  /**
   * KpLedger::refusals-written:
   *
   * Refusals were committed: what kp_ledger_recent_problems() reads changed.
   * Emitted on the thread that opened the ledger, once per batch of rows.
   */
  signals[REFUSALS_WRITTEN] =
    g_signal_new ("refusals-written", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 0);
}

static void
kp_ledger_init (KpLedger *self)
{
  self->statements = g_hash_table_new_full (NULL, NULL, NULL,
                                            (GDestroyNotify)sqlite3_finalize);
  self->queued_settings = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                                 kp_ledger_queued_setting_free);
  self->owner = g_atomic_rc_box_new0 (KpLedger *);
  *self->owner = self;
  self->retry_min_ms = RETRY_MIN_MS;
  self->retry_max_ms = RETRY_MAX_MS;
  self->max_pending = MAX_PENDING;
}

/* The ledger's thread. */
void
kp_ledger_emit_refusals_written (KpLedger *self)
{
  g_signal_emit (self, signals[REFUSALS_WRITTEN], 0);
}

/* Main thread: the problem is the write problem while there is one. */
void
kp_ledger_update_problem (KpLedger *self)
{
  const char *problem = self->write_problem ? self->write_problem : self->open_problem;

  if (g_strcmp0 (problem, self->problem) == 0)
    return;
  /* Said once when it starts; the property follows every change. */
  if (problem != NULL && self->problem == NULL)
    g_warning ("%s", problem);
  else if (problem == NULL)
    g_message ("The ledger records requests again.");
  g_free (self->problem);
  self->problem = g_strdup (problem);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_PROBLEM]);
}

gboolean
kp_ledger_set_sqlite_error (KpLedger    *self,
                            GError     **error,
                            const char  *doing)
{
  int code = sqlite3_errcode (self->db) & 0xff;

  g_set_error (error, KP_LEDGER_ERROR,
               code == SQLITE_CORRUPT || code == SQLITE_NOTADB ? KP_LEDGER_ERROR_DAMAGED
                                                               : KP_LEDGER_ERROR_QUERY,
               "Cannot %s in %s: %s", doing, self->path, sqlite3_errmsg (self->db));
  return FALSE;
}

gboolean
kp_ledger_exec (KpLedger    *self,
                const char  *sql,
                const char  *doing,
                GError     **error)
{
  if (sqlite3_exec (self->db, sql, NULL, NULL, NULL) != SQLITE_OK)
    return kp_ledger_set_sqlite_error (self, error, doing);
  return TRUE;
}

/* One statement that returns no row (BEGIN, COMMIT...), prepared once: a
 * statement kp_ledger_exec() would parse again on every request.
 */
gboolean
kp_ledger_run (KpLedger    *self,
               const char  *sql,
               const char  *doing,
               GError     **error)
{
  sqlite3_stmt *stmt = kp_ledger_prepare (self, sql, error);

  return stmt != NULL && kp_ledger_step_done (self, stmt, doing, error);
}

/* Prepared once per SQL text, reset for every use. */
sqlite3_stmt *
kp_ledger_prepare (KpLedger    *self,
                   const char  *sql,
                   GError     **error)
{
  sqlite3_stmt *stmt = g_hash_table_lookup (self->statements, sql);

  if (stmt != NULL)
    {
      sqlite3_reset (stmt);
      sqlite3_clear_bindings (stmt);
      return stmt;
    }

  if (sqlite3_prepare_v3 (self->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, NULL) != SQLITE_OK)
    {
      kp_ledger_set_sqlite_error (self, error, "prepare a query");
      return NULL;
    }

  g_hash_table_insert (self->statements, (gpointer)sql, stmt);
  return stmt;
}

static gboolean
migrate (KpLedger  *self,
         GError   **error)
{
  sqlite3_stmt *stmt = NULL;
  gint64 version;

  if (sqlite3_prepare_v2 (self->db, "PRAGMA user_version", -1, &stmt, NULL) != SQLITE_OK ||
      sqlite3_step (stmt) != SQLITE_ROW)
    {
      sqlite3_finalize (stmt);
      return kp_ledger_set_sqlite_error (self, error, "read the schema version");
    }
  version = sqlite3_column_int64 (stmt, 0);
  sqlite3_finalize (stmt);

  if (version > (gint64)G_N_ELEMENTS (migrations))
    {
      g_set_error (error, KP_LEDGER_ERROR, KP_LEDGER_ERROR_NEWER,
                   "%s was written by a newer Keypool (schema %" G_GINT64_FORMAT ", this one "
                   "knows %u). Update Keypool, or move the file away to start afresh.",
                   self->path, version, (guint)G_N_ELEMENTS (migrations));
      return FALSE;
    }

  if (version == (gint64)G_N_ELEMENTS (migrations))
    return TRUE;

  /* A migration may rebuild a table others refer to (7 does): dropping the
   * old one must not cascade. This pragma cannot change inside a
   * transaction, so it is set around them all.
   */
  if (!kp_ledger_exec (self, "PRAGMA foreign_keys = OFF", "migrate the database", error))
    return FALSE;

  for (gint64 i = version; i < (gint64)G_N_ELEMENTS (migrations); i++)
    {
      g_autofree char *bump = g_strdup_printf ("PRAGMA user_version = %" G_GINT64_FORMAT, i + 1);

      /* Each migration and its version bump commit together or not at all. */
      if (!kp_ledger_exec (self, "BEGIN IMMEDIATE", "start a migration", error))
        {
          sqlite3_exec (self->db, "PRAGMA foreign_keys = ON", NULL, NULL, NULL);
          return FALSE;
        }
      if (!kp_ledger_exec (self, migrations[i], "migrate the database", error) ||
          !kp_ledger_exec (self, bump, "migrate the database", error) ||
          !kp_ledger_exec (self, "COMMIT", "migrate the database", error))
        {
          sqlite3_exec (self->db, "ROLLBACK", NULL, NULL, NULL);
          sqlite3_exec (self->db, "PRAGMA foreign_keys = ON", NULL, NULL, NULL);
          return FALSE;
        }
      g_debug ("Ledger migrated to schema %" G_GINT64_FORMAT, i + 1);
    }

  return kp_ledger_exec (self, "PRAGMA foreign_keys = ON", "enable foreign keys", error);
}

/* The first answer of PRAGMA quick_check: "ok" on a sound database. */
static gboolean
quick_check (KpLedger  *self,
             GError   **error)
{
  sqlite3_stmt *stmt = NULL;
  g_autofree char *result = NULL;

  if (sqlite3_prepare_v2 (self->db, "PRAGMA quick_check(1)", -1, &stmt, NULL) != SQLITE_OK)
    {
      sqlite3_finalize (stmt);
      return kp_ledger_set_sqlite_error (self, error, "check the database");
    }
  if (sqlite3_step (stmt) == SQLITE_ROW && sqlite3_column_text (stmt, 0) != NULL)
    result = g_strdup ((const char *)sqlite3_column_text (stmt, 0));
  else
    {
      kp_ledger_set_sqlite_error (self, error, "check the database");
      sqlite3_finalize (stmt);
      return FALSE;
    }
  sqlite3_finalize (stmt);

  if (!g_str_equal (result, "ok"))
    {
      g_set_error (error, KP_LEDGER_ERROR, KP_LEDGER_ERROR_DAMAGED,
                   "%s is damaged: %s", self->path, result);
      return FALSE;
    }
  return TRUE;
}

/* Opens @path and brings it to the current schema; @check runs
 * PRAGMA quick_check first.
 */
KpLedger *
kp_ledger_open_connection (const char  *path,
                           gboolean     check,
                           GError     **error)
{
  g_autoptr(KpLedger) self = NULL;
  g_autofree char *dir = NULL;
  GStatBuf st;

  self = g_object_new (KP_TYPE_LEDGER, NULL);
  self->path = g_strdup (path);

  dir = g_path_get_dirname (path);
  if (g_mkdir_with_parents (dir, 0700) != 0)
    {
      int saved_errno = errno;

      g_set_error (error, KP_LEDGER_ERROR, KP_LEDGER_ERROR_OPEN,
                   "Cannot create the folder %s: %s", dir, g_strerror (saved_errno));
      return NULL;
    }

  if (sqlite3_open_v2 (path, &self->db,
                       SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                       NULL) != SQLITE_OK)
    {
      g_set_error (error, KP_LEDGER_ERROR, KP_LEDGER_ERROR_OPEN,
                   "Cannot open the database %s: %s", path,
                   self->db ? sqlite3_errmsg (self->db) : "out of memory");
      return NULL;
    }

  /* The CLI and a running Keypool may touch the file at the same moment. */
  sqlite3_busy_timeout (self->db, BUSY_TIMEOUT_MS);

  /* sqlite opens a file it may not write read-only, and says so only when
   * a write fails; the journal mode of such a file stays as it is.
   */
  self->open_read_only = sqlite3_db_readonly (self->db, "main") == 1;
  if (!kp_ledger_exec (self,
                       self->open_read_only ? "PRAGMA schema_version" : "PRAGMA journal_mode = WAL",
                       "open the database", error) ||
      (check && !quick_check (self, error)) ||
      !kp_ledger_exec (self, "PRAGMA synchronous = NORMAL", "set synchronous", error) ||
      !kp_ledger_exec (self, "PRAGMA foreign_keys = ON", "enable foreign keys", error) ||
      !migrate (self, error))
    return NULL;

  /* Opening read the whole file (quick_check reads every page): those
   * pages, up to sqlite's 2 MB of cache, are not the ones the requests to
   * come need, and would stay in memory for the life of the connection. */
  sqlite3_db_release_memory (self->db);

  /* Private to the user; a file its owner made read-only stays so. */
  if (g_stat (path, &st) == 0 && (st.st_mode & 077) != 0)
    g_chmod (path, st.st_mode & 0700);

  return g_steal_pointer (&self);
}

/* Moves a damaged database (and its WAL) aside under a name with the time:
 * keypool.db → keypool.db.damaged-20260501-101500.
 */
static char *
move_aside (const char  *path,
            GError     **error)
{
  g_autoptr(GDateTime) now = g_date_time_new_now_local ();
  g_autofree char *stamp = g_date_time_format (now, "%Y%m%d-%H%M%S");
  g_autofree char *aside = g_strdup_printf ("%s.damaged-%s", path, stamp);
  g_autofree char *wal = g_strconcat (path, "-wal", NULL);
  g_autofree char *wal_aside = g_strconcat (aside, "-wal", NULL);
  g_autofree char *shm = g_strconcat (path, "-shm", NULL);

  for (guint n = 2; g_file_test (aside, G_FILE_TEST_EXISTS); n++)
    {
      g_free (aside);
      aside = g_strdup_printf ("%s.damaged-%s-%u", path, stamp, n);
      g_free (wal_aside);
      wal_aside = g_strconcat (aside, "-wal", NULL);
    }

  if (g_rename (path, aside) != 0)
    {
      int saved_errno = errno;

      g_set_error (error, KP_LEDGER_ERROR, KP_LEDGER_ERROR_OPEN,
                   "%s is damaged and cannot be moved aside (%s). Move it away to start afresh.",
                   path, g_strerror (saved_errno));
      return NULL;
    }
  g_rename (wal, wal_aside);
  g_unlink (shm);
  return g_steal_pointer (&aside);
}

/**
 * kp_ledger_open:
 * @path: the database file; its folder is created when missing
 * @error: a location for a #GError
 *
 * Checks the database (PRAGMA quick_check) before use. A damaged one is
 * moved aside under a name with the time, never deleted, and a new one
 * takes its place; #KpLedger:problem says so. A read-only one opens, and
 * #KpLedger:problem says that requests cannot be recorded.
 *
 * Returns: (transfer full): the ledger, migrated to the current schema
 */
KpLedger *
kp_ledger_open (const char  *path,
                GError     **error)
{
  g_autoptr(KpLedger) self = NULL;
  g_autoptr(GError) local_error = NULL;
  g_autofree char *aside = NULL;

  g_return_val_if_fail (path != NULL, NULL);

  self = kp_ledger_open_connection (path, TRUE, &local_error);
  if (self == NULL && g_error_matches (local_error, KP_LEDGER_ERROR, KP_LEDGER_ERROR_DAMAGED))
    {
      g_autofree char *reason = g_strdup (local_error->message);

      g_clear_error (&local_error);
      aside = move_aside (path, error);
      if (aside == NULL)
        return NULL;
      self = kp_ledger_open_connection (path, FALSE, &local_error);
      if (self != NULL)
        self->open_problem = g_strdup_printf ("The database was damaged (%s). It was moved to %s "
                                              "and a new one started: spending before now is in "
                                              "the moved file.", reason, aside);
    }
  if (self == NULL)
    {
      g_propagate_error (error, g_steal_pointer (&local_error));
      return NULL;
    }

  if (self->open_read_only)
    self->open_problem = g_strdup_printf ("The database %s is read-only: requests cannot be "
                                          "recorded. Make it writable; Keypool keeps up to %u "
                                          "requests in memory until then.",
                                          path, self->max_pending);

  self->context = g_main_context_ref_thread_default ();
  kp_ledger_watch_wal (self);
  kp_ledger_update_problem (self);

  return g_steal_pointer (&self);
}

/**
 * kp_ledger_get_problem:
 * @self: a #KpLedger
 *
 * Returns: (nullable): what keeps the ledger from recording as it should,
 *   or %NULL when all is well
 */
const char *
kp_ledger_get_problem (KpLedger *self)
{
  g_return_val_if_fail (KP_IS_LEDGER (self), NULL);
  return self->problem;
}

const char *
kp_ledger_get_path (KpLedger *self)
{
  g_return_val_if_fail (KP_IS_LEDGER (self), NULL);
  return self->path;
}

void
kp_ledger_bind_text (sqlite3_stmt *stmt,
                     int           index,
                     const char   *text)
{
  if (text != NULL)
    sqlite3_bind_text (stmt, index, text, -1, SQLITE_TRANSIENT);
  else
    sqlite3_bind_null (stmt, index);
}

char *
kp_ledger_column_text (sqlite3_stmt *stmt,
                       int           index)
{
  const unsigned char *text = sqlite3_column_text (stmt, index);

  return text ? g_strdup ((const char *)text) : NULL;
}

gboolean
kp_ledger_step_done (KpLedger     *self,
                     sqlite3_stmt *stmt,
                     const char   *doing,
                     GError      **error)
{
  int rc = sqlite3_step (stmt);

  sqlite3_reset (stmt);
  if (rc != SQLITE_DONE)
    return kp_ledger_set_sqlite_error (self, error, doing);
  return TRUE;
}


gboolean
kp_ledger_check_integrity (KpLedger  *self,
                           GError   **error)
{
  sqlite3_stmt *stmt = NULL;
  g_autofree char *result = NULL;

  g_return_val_if_fail (KP_IS_LEDGER (self), FALSE);

  if (sqlite3_prepare_v2 (self->db, "PRAGMA integrity_check", -1, &stmt, NULL) != SQLITE_OK)
    return kp_ledger_set_sqlite_error (self, error, "check the database");
  if (sqlite3_step (stmt) == SQLITE_ROW)
    result = kp_ledger_column_text (stmt, 0);
  sqlite3_finalize (stmt);

  if (g_strcmp0 (result, "ok") != 0)
    {
      g_set_error (error, KP_LEDGER_ERROR, KP_LEDGER_ERROR_QUERY,
                   "%s failed its integrity check: %s", self->path, result ? result : "no answer");
      return FALSE;
    }
  return TRUE;
}
