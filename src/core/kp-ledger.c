/* kp-ledger.c: Keypool's sqlite store
 *
 * One database in WAL mode. Every finished request is one row, written with
 * its attempts in one transaction: a crash or kill -9 loses at most the
 * requests still in flight and never leaves half a row. Statements are
 * prepared once and kept; nothing here blocks on fsync per row
 * (synchronous=NORMAL is durable against a process crash in WAL mode).
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

#include "kp-ledger-private.h"
#include "kp-provider.h"

struct _KpLedger
{
  GObject     parent_instance;

  sqlite3    *db;
  char       *path;
  GHashTable *statements;   /* static SQL text → sqlite3_stmt */
  GThread    *writer;       /* writes request rows; started on first use */
  GAsyncQueue *queue;       /* of Job, for the writer */
  GMainContext *context;    /* where the problem is told */
  KpLedger  **owner;        /* atomic rc box: this ledger until it is finalized */

  /* What is wrong, for the user: set at open (damaged, read-only) and by the
   * writer (rows not written). Main thread only.
   */
  char       *open_problem;
  gboolean    open_read_only;
  char       *write_problem;
  char       *problem;

  /* The writer's retry policy; tests shorten it. */
  guint       retry_min_ms;
  guint       retry_max_ms;
  guint       max_pending;
  gint        fail_writes;  /* atomic: a test's injected write failure */
  guint       reads;        /* aggregate queries run on this connection, for tests */
};

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

/* A request row, a refusal or a key's state, on its way to the writer thread. */
typedef struct
{
  KpRequestRow  row;
  GArray       *attempts;   /* of KpAttemptRow, deep copies */
  KpRefusalRow *refusal;    /* set for a refusal; then row and attempts are unused */
  KpCredentialRow *state;   /* set for a key's state (id, state, state_until, last_error) */
  gboolean      merge;      /* the refusal adds to the newest row like it */
  GTask        *task;       /* NULL once the caller heard that the row waits */
} Job;

#define RETRY_MIN_MS 250
#define RETRY_MAX_MS 30000
#define MAX_PENDING  10000

/* How long a connection waits for another's write lock. The writer thread
 * waits briefly: a request's response ends once its row is written or
 * waits in memory. A lock held longer than BUSY_PROBLEM_AFTER_MS is shown.
 */
#define BUSY_TIMEOUT_MS        2000
#define WRITER_BUSY_TIMEOUT_MS 100
#define BUSY_RETRY_MAX_MS      1000
#define BUSY_PROBLEM_AFTER_MS  2000

/* Refusals are a trace for the user, not an archive: the newest are kept. */
#define REFUSALS_KEPT 1000

/* Pushed last: the writer ends after the rows queued before it. */
static Job stop_job;

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
  "CREATE INDEX requests_failed ON requests (time) WHERE status >= 400 OR outcome = 'interrupted';",
};

static void
kp_ledger_finalize (GObject *object)
{
  KpLedger *self = (KpLedger *)object;

  /* Rows already handed over are written before the ledger goes. */
  if (self->writer != NULL)
    {
      g_async_queue_push (self->queue, &stop_job);
      g_thread_join (self->writer);
      self->writer = NULL;
    }
  /* What the writer told is still on its way: it finds no ledger. */
  *self->owner = NULL;
  g_clear_pointer (&self->owner, g_atomic_rc_box_release);
  g_clear_pointer (&self->queue, g_async_queue_unref);
  g_clear_pointer (&self->statements, g_hash_table_unref);
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
  self->owner = g_atomic_rc_box_new0 (KpLedger *);
  *self->owner = self;
  self->retry_min_ms = RETRY_MIN_MS;
  self->retry_max_ms = RETRY_MAX_MS;
  self->max_pending = MAX_PENDING;
}

/* Main thread: the problem is the write problem while there is one. */
static void
update_problem (KpLedger *self)
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

static gboolean
set_sqlite_error (KpLedger    *self,
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

static gboolean
exec (KpLedger    *self,
      const char  *sql,
      const char  *doing,
      GError     **error)
{
  if (sqlite3_exec (self->db, sql, NULL, NULL, NULL) != SQLITE_OK)
    return set_sqlite_error (self, error, doing);
  return TRUE;
}

/* Prepared once per SQL text, reset for every use. */
static sqlite3_stmt *
prepare (KpLedger    *self,
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
      set_sqlite_error (self, error, "prepare a query");
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
      return set_sqlite_error (self, error, "read the schema version");
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

  for (gint64 i = version; i < (gint64)G_N_ELEMENTS (migrations); i++)
    {
      g_autofree char *bump = g_strdup_printf ("PRAGMA user_version = %" G_GINT64_FORMAT, i + 1);

      /* Each migration and its version bump commit together or not at all. */
      if (!exec (self, "BEGIN IMMEDIATE", "start a migration", error))
        return FALSE;
      if (!exec (self, migrations[i], "migrate the database", error) ||
          !exec (self, bump, "migrate the database", error) ||
          !exec (self, "COMMIT", "migrate the database", error))
        {
          sqlite3_exec (self->db, "ROLLBACK", NULL, NULL, NULL);
          return FALSE;
        }
      g_debug ("Ledger migrated to schema %" G_GINT64_FORMAT, i + 1);
    }

  return TRUE;
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
      return set_sqlite_error (self, error, "check the database");
    }
  if (sqlite3_step (stmt) == SQLITE_ROW && sqlite3_column_text (stmt, 0) != NULL)
    result = g_strdup ((const char *)sqlite3_column_text (stmt, 0));
  else
    {
      set_sqlite_error (self, error, "check the database");
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
static KpLedger *
open_connection (const char  *path,
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
  if (!exec (self, self->open_read_only ? "PRAGMA schema_version" : "PRAGMA journal_mode = WAL",
             "open the database", error) ||
      (check && !quick_check (self, error)) ||
      !exec (self, "PRAGMA synchronous = NORMAL", "set synchronous", error) ||
      !exec (self, "PRAGMA foreign_keys = ON", "enable foreign keys", error) ||
      !migrate (self, error))
    return NULL;

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

  self = open_connection (path, TRUE, &local_error);
  if (self == NULL && g_error_matches (local_error, KP_LEDGER_ERROR, KP_LEDGER_ERROR_DAMAGED))
    {
      g_autofree char *reason = g_strdup (local_error->message);

      g_clear_error (&local_error);
      aside = move_aside (path, error);
      if (aside == NULL)
        return NULL;
      self = open_connection (path, FALSE, &local_error);
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
  update_problem (self);

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

static void
bind_text (sqlite3_stmt *stmt,
           int           index,
           const char   *text)
{
  if (text != NULL)
    sqlite3_bind_text (stmt, index, text, -1, SQLITE_TRANSIENT);
  else
    sqlite3_bind_null (stmt, index);
}

static char *
column_text (sqlite3_stmt *stmt,
             int           index)
{
  const unsigned char *text = sqlite3_column_text (stmt, index);

  return text ? g_strdup ((const char *)text) : NULL;
}

static gboolean
step_done (KpLedger     *self,
           sqlite3_stmt *stmt,
           const char   *doing,
           GError      **error)
{
  int rc = sqlite3_step (stmt);

  sqlite3_reset (stmt);
  if (rc != SQLITE_DONE)
    return set_sqlite_error (self, error, doing);
  return TRUE;
}

/* Credentials ----------------------------------------------------------- */

/* After an UPDATE or DELETE of one key: no row touched means no such key. */
static gboolean
key_was_changed (KpLedger  *self,
                 gint64     id,
                 GError   **error)
{
  if (sqlite3_changes (self->db) > 0)
    return TRUE;

  g_set_error (error, KP_LEDGER_ERROR, KP_LEDGER_ERROR_NOT_FOUND,
               "There is no key with id %" G_GINT64_FORMAT "; “keypool keys list” shows them.", id);
  return FALSE;
}

gint64
kp_ledger_add_credential (KpLedger    *self,
                          const char  *provider,
                          const char  *label,
                          double       multiplier,
                          const char  *source,
                          const char  *env_var,
                          const char  *fingerprint,
                          GError     **error)
{
  sqlite3_stmt *stmt;

  g_return_val_if_fail (KP_IS_LEDGER (self), 0);
  g_return_val_if_fail (provider != NULL, 0);
  g_return_val_if_fail (multiplier > 0, 0);

  stmt = prepare (self,
                  "INSERT INTO credentials (provider, label, multiplier, created, source, env_var, "
                  "fingerprint) VALUES (?, ?, ?, ?, ?, ?, ?)", error);
  if (stmt == NULL)
    return 0;

  bind_text (stmt, 1, provider);
  bind_text (stmt, 2, label ? label : "");
  sqlite3_bind_double (stmt, 3, multiplier);
  sqlite3_bind_int64 (stmt, 4, g_get_real_time () / G_USEC_PER_SEC);
  bind_text (stmt, 5, source ? source : "keyring");
  bind_text (stmt, 6, env_var);
  bind_text (stmt, 7, fingerprint);

  if (!step_done (self, stmt, "save the key’s details", error))
    return 0;

  return sqlite3_last_insert_rowid (self->db);
}

gboolean
kp_ledger_remove_credential (KpLedger  *self,
                             gint64     id,
                             GError   **error)
{
  sqlite3_stmt *stmt;

  g_return_val_if_fail (KP_IS_LEDGER (self), FALSE);

  stmt = prepare (self, "DELETE FROM credentials WHERE id = ?", error);
  if (stmt == NULL)
    return FALSE;
  sqlite3_bind_int64 (stmt, 1, id);
  if (!step_done (self, stmt, "remove the key", error))
    return FALSE;

  return key_was_changed (self, id, error);
}

void
kp_credential_row_free (KpCredentialRow *row)
{
  if (row == NULL)
    return;
  g_free (row->provider);
  g_free (row->label);
  g_free (row->source);
  g_free (row->env_var);
  g_free (row->fingerprint);
  g_free (row->state);
  g_free (row->last_error);
  g_free (row);
}

/**
 * kp_ledger_list_credentials:
 *
 * Returns: (transfer container) (element-type KpCredentialRow): every
 *   credential, by id
 */
GPtrArray *
kp_ledger_list_credentials (KpLedger  *self,
                            GError   **error)
{
  g_autoptr(GPtrArray) rows = g_ptr_array_new_with_free_func ((GDestroyNotify)kp_credential_row_free);
  sqlite3_stmt *stmt;
  int rc;

  g_return_val_if_fail (KP_IS_LEDGER (self), NULL);

  stmt = prepare (self,
                  "SELECT id, provider, label, multiplier, enabled, created, source, env_var, "
                  "fingerprint, state, state_until, last_error FROM credentials ORDER BY id", error);
  if (stmt == NULL)
    return NULL;

  while ((rc = sqlite3_step (stmt)) == SQLITE_ROW)
    {
      KpCredentialRow *row = g_new0 (KpCredentialRow, 1);

      row->id = sqlite3_column_int64 (stmt, 0);
      row->provider = column_text (stmt, 1);
      row->label = column_text (stmt, 2);
      row->multiplier = sqlite3_column_double (stmt, 3);
      row->enabled = sqlite3_column_int (stmt, 4) != 0;
      row->created = sqlite3_column_int64 (stmt, 5);
      row->source = column_text (stmt, 6);
      row->env_var = column_text (stmt, 7);
      row->fingerprint = column_text (stmt, 8);
      row->state = column_text (stmt, 9);
      row->state_until = sqlite3_column_int64 (stmt, 10);
      row->last_error = column_text (stmt, 11);
      g_ptr_array_add (rows, row);
    }
  sqlite3_reset (stmt);

  if (rc != SQLITE_DONE)
    {
      set_sqlite_error (self, error, "read the keys");
      return NULL;
    }
  return g_steal_pointer (&rows);
}

gboolean
kp_ledger_set_credential_state (KpLedger    *self,
                                gint64       id,
                                const char  *state,
                                gint64       until,
                                const char  *last_error,
                                GError     **error)
{
  sqlite3_stmt *stmt;

  g_return_val_if_fail (KP_IS_LEDGER (self), FALSE);
  g_return_val_if_fail (state != NULL, FALSE);

  stmt = prepare (self,
                  "UPDATE credentials SET state = ?, state_until = ?, last_error = ? WHERE id = ?",
                  error);
  if (stmt == NULL)
    return FALSE;
  bind_text (stmt, 1, state);
  sqlite3_bind_int64 (stmt, 2, until);
  bind_text (stmt, 3, last_error);
  sqlite3_bind_int64 (stmt, 4, id);
  if (!step_done (self, stmt, "save the key’s state", error))
    return FALSE;

  return key_was_changed (self, id, error);
}

/* Writer thread, inside a transaction it holds. A key removed meanwhile has
 * no state to keep: no row touched is no error here.
 */
static gboolean
insert_state (KpLedger               *self,
              const KpCredentialRow  *row,
              GError                **error)
{
  sqlite3_stmt *stmt;

  stmt = prepare (self,
                  "UPDATE credentials SET state = ?, state_until = ?, last_error = ? WHERE id = ?",
                  error);
  if (stmt == NULL)
    return FALSE;
  bind_text (stmt, 1, row->state);
  sqlite3_bind_int64 (stmt, 2, row->state_until);
  bind_text (stmt, 3, row->last_error);
  sqlite3_bind_int64 (stmt, 4, row->id);
  return step_done (self, stmt, "save a key’s state", error);
}

gboolean
kp_ledger_set_credential_options (KpLedger  *self,
                                  gint64     id,
                                  double     multiplier,
                                  gboolean   enabled,
                                  GError   **error)
{
  sqlite3_stmt *stmt;

  g_return_val_if_fail (KP_IS_LEDGER (self), FALSE);
  g_return_val_if_fail (multiplier > 0, FALSE);

  stmt = prepare (self, "UPDATE credentials SET multiplier = ?, enabled = ? WHERE id = ?", error);
  if (stmt == NULL)
    return FALSE;
  sqlite3_bind_double (stmt, 1, multiplier);
  sqlite3_bind_int (stmt, 2, enabled ? 1 : 0);
  sqlite3_bind_int64 (stmt, 3, id);
  if (!step_done (self, stmt, "save the key’s details", error))
    return FALSE;
  return key_was_changed (self, id, error);
}

gboolean
kp_ledger_set_credential_fingerprint (KpLedger    *self,
                                      gint64       id,
                                      const char  *fingerprint,
                                      GError     **error)
{
  sqlite3_stmt *stmt;

  g_return_val_if_fail (KP_IS_LEDGER (self), FALSE);

  /* A new key starts afresh: whatever the old one ran into is forgotten. */
  stmt = prepare (self,
                  "UPDATE credentials SET fingerprint = ?, state = 'ok', state_until = 0, "
                  "last_error = NULL WHERE id = ?", error);
  if (stmt == NULL)
    return FALSE;
  bind_text (stmt, 1, fingerprint);
  sqlite3_bind_int64 (stmt, 2, id);
  return step_done (self, stmt, "save the key’s details", error);
}

/* Providers and settings ----------------------------------------------- */

gboolean
kp_ledger_set_provider_enabled (KpLedger    *self,
                                const char  *provider,
                                gboolean     enabled,
                                GError     **error)
{
  sqlite3_stmt *stmt;

  g_return_val_if_fail (KP_IS_LEDGER (self), FALSE);

  stmt = prepare (self,
                  "INSERT INTO provider_settings (provider, enabled) VALUES (?, ?) "
                  "ON CONFLICT (provider) DO UPDATE SET enabled = excluded.enabled", error);
  if (stmt == NULL)
    return FALSE;
  bind_text (stmt, 1, provider);
  sqlite3_bind_int (stmt, 2, enabled ? 1 : 0);
  return step_done (self, stmt, "save the provider setting", error);
}

/**
 * kp_ledger_get_disabled_providers:
 *
 * Returns: (transfer full): a set of the ids of disabled providers
 */
GHashTable *
kp_ledger_get_disabled_providers (KpLedger  *self,
                                  GError   **error)
{
  g_autoptr(GHashTable) set = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  sqlite3_stmt *stmt;
  int rc;

  g_return_val_if_fail (KP_IS_LEDGER (self), NULL);

  stmt = prepare (self, "SELECT provider FROM provider_settings WHERE enabled = 0", error);
  if (stmt == NULL)
    return NULL;
  while ((rc = sqlite3_step (stmt)) == SQLITE_ROW)
    g_hash_table_add (set, column_text (stmt, 0));
  sqlite3_reset (stmt);

  if (rc != SQLITE_DONE)
    {
      set_sqlite_error (self, error, "read the provider settings");
      return NULL;
    }
  return g_steal_pointer (&set);
}

char *
kp_ledger_get_setting (KpLedger   *self,
                       const char *key)
{
  sqlite3_stmt *stmt;
  char *value = NULL;

  g_return_val_if_fail (KP_IS_LEDGER (self), NULL);

  stmt = prepare (self, "SELECT value FROM settings WHERE key = ?", NULL);
  if (stmt == NULL)
    return NULL;
  bind_text (stmt, 1, key);
  if (sqlite3_step (stmt) == SQLITE_ROW)
    value = column_text (stmt, 0);
  sqlite3_reset (stmt);
  return value;
}

gboolean
kp_ledger_set_setting (KpLedger    *self,
                       const char  *key,
                       const char  *value,
                       GError     **error)
{
  sqlite3_stmt *stmt;

  g_return_val_if_fail (KP_IS_LEDGER (self), FALSE);

  stmt = prepare (self,
                  "INSERT INTO settings (key, value) VALUES (?, ?) "
                  "ON CONFLICT (key) DO UPDATE SET value = excluded.value", error);
  if (stmt == NULL)
    return FALSE;
  bind_text (stmt, 1, key);
  bind_text (stmt, 2, value);
  return step_done (self, stmt, "save a setting", error);
}

/* Catalog cache ---------------------------------------------------------- */

static void
bind_price (sqlite3_stmt *stmt,
            int           index,
            double        price)
{
  if (price >= 0)
    sqlite3_bind_double (stmt, index, price);
  else
    sqlite3_bind_null (stmt, index);
}

static double
column_price (sqlite3_stmt *stmt,
              int           index)
{
  return sqlite3_column_type (stmt, index) == SQLITE_NULL ? -1.0 : sqlite3_column_double (stmt, index);
}

/**
 * kp_ledger_save_live_models:
 * @self: a #KpLedger
 * @provider: the provider
 * @source: the URL the list came from
 * @models: (element-type KpLiveModel): the list, in the provider's order
 * @refreshed_at: when it was fetched, unix seconds
 * @error: a location for a #GError
 *
 * Replaces the provider's cached model list, in one transaction.
 */
gboolean
kp_ledger_save_live_models (KpLedger    *self,
                            const char  *provider,
                            const char  *source,
                            GArray      *models,
                            gint64       refreshed_at,
                            GError     **error)
{
  sqlite3_stmt *stmt;

  g_return_val_if_fail (KP_IS_LEDGER (self), FALSE);
  g_return_val_if_fail (provider != NULL && source != NULL && models != NULL, FALSE);

  if (!exec (self, "BEGIN IMMEDIATE", "save the model list", error))
    return FALSE;

  stmt = prepare (self, "DELETE FROM catalog_models WHERE provider = ?", error);
  if (stmt == NULL)
    goto fail;
  bind_text (stmt, 1, provider);
  if (!step_done (self, stmt, "save the model list", error))
    goto fail;

  for (guint i = 0; i < models->len; i++)
    {
      const KpLiveModel *model = &g_array_index (models, KpLiveModel, i);

      stmt = prepare (self,
                      "INSERT OR IGNORE INTO catalog_models (provider, n, upstream_id, input, output, "
                      "cached_input, context, source, refreshed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                      error);
      if (stmt == NULL)
        goto fail;
      bind_text (stmt, 1, provider);
      sqlite3_bind_int (stmt, 2, i);
      bind_text (stmt, 3, model->upstream_id);
      bind_price (stmt, 4, model->input);
      bind_price (stmt, 5, model->output);
      bind_price (stmt, 6, model->cached_input);
      sqlite3_bind_int64 (stmt, 7, MAX (model->context, 0));
      bind_text (stmt, 8, source);
      sqlite3_bind_int64 (stmt, 9, refreshed_at);
      if (!step_done (self, stmt, "save the model list", error))
        goto fail;
    }

  if (exec (self, "COMMIT", "save the model list", error))
    return TRUE;

fail:
  sqlite3_exec (self->db, "ROLLBACK", NULL, NULL, NULL);
  return FALSE;
}

/**
 * kp_ledger_get_live_models:
 * @self: a #KpLedger
 * @provider: the provider
 * @refreshed_at: (out): when the list was fetched; 0 when there is none
 * @error: a location for a #GError
 *
 * Returns: (transfer full) (element-type KpLiveModel): the provider's last
 *   good model list, empty when none was kept, or %NULL with @error set
 */
GArray *
kp_ledger_get_live_models (KpLedger    *self,
                           const char  *provider,
                           gint64      *refreshed_at,
                           GError     **error)
{
  g_autoptr(GArray) models = g_array_new (FALSE, TRUE, sizeof (KpLiveModel));
  sqlite3_stmt *stmt;
  int rc;

  g_return_val_if_fail (KP_IS_LEDGER (self), NULL);
  g_return_val_if_fail (provider != NULL, NULL);

  g_array_set_clear_func (models, kp_live_model_clear);
  *refreshed_at = 0;

  stmt = prepare (self,
                  "SELECT upstream_id, input, output, cached_input, context, refreshed_at "
                  "FROM catalog_models WHERE provider = ? ORDER BY n", error);
  if (stmt == NULL)
    return NULL;
  bind_text (stmt, 1, provider);
  while ((rc = sqlite3_step (stmt)) == SQLITE_ROW)
    {
      KpLiveModel model = {
        .upstream_id = column_text (stmt, 0),
        .input = column_price (stmt, 1),
        .output = column_price (stmt, 2),
        .cached_input = column_price (stmt, 3),
        .context = sqlite3_column_int64 (stmt, 4),
      };

      *refreshed_at = MAX (*refreshed_at, sqlite3_column_int64 (stmt, 5));
      g_array_append_val (models, model);
    }
  sqlite3_reset (stmt);

  if (rc != SQLITE_DONE)
    {
      set_sqlite_error (self, error, "read the model list");
      return NULL;
    }
  return g_steal_pointer (&models);
}

gboolean
kp_ledger_save_refresh (KpLedger            *self,
                        const KpRefreshRow  *row,
                        GError             **error)
{
  sqlite3_stmt *stmt;

  g_return_val_if_fail (KP_IS_LEDGER (self), FALSE);
  g_return_val_if_fail (row != NULL && row->provider != NULL, FALSE);

  stmt = prepare (self,
                  "INSERT INTO provider_refresh (provider, refreshed_at, ok_at, error, balance, "
                  "currency, balance_at) VALUES (?, ?, ?, ?, ?, ?, ?) "
                  "ON CONFLICT (provider) DO UPDATE SET refreshed_at = excluded.refreshed_at, "
                  "ok_at = excluded.ok_at, error = excluded.error, balance = excluded.balance, "
                  "currency = excluded.currency, balance_at = excluded.balance_at", error);
  if (stmt == NULL)
    return FALSE;
  bind_text (stmt, 1, row->provider);
  sqlite3_bind_int64 (stmt, 2, row->refreshed_at);
  sqlite3_bind_int64 (stmt, 3, row->ok_at);
  bind_text (stmt, 4, row->error);
  if (row->has_balance)
    sqlite3_bind_double (stmt, 5, row->balance);
  else
    sqlite3_bind_null (stmt, 5);
  bind_text (stmt, 6, row->currency);
  sqlite3_bind_int64 (stmt, 7, row->balance_at);
  return step_done (self, stmt, "save how the refresh went", error);
}

void
kp_refresh_row_free (KpRefreshRow *row)
{
  if (row == NULL)
    return;
  g_free (row->provider);
  g_free (row->error);
  g_free (row->currency);
  g_free (row);
}

/**
 * kp_ledger_list_refreshes:
 *
 * Returns: (transfer full) (element-type KpRefreshRow): how the last refresh
 *   of each provider went, or %NULL with @error set
 */
GPtrArray *
kp_ledger_list_refreshes (KpLedger  *self,
                          GError   **error)
{
  g_autoptr(GPtrArray) rows = g_ptr_array_new_with_free_func ((GDestroyNotify)kp_refresh_row_free);
  sqlite3_stmt *stmt;
  int rc;

  g_return_val_if_fail (KP_IS_LEDGER (self), NULL);

  stmt = prepare (self,
                  "SELECT provider, refreshed_at, ok_at, error, balance, currency, balance_at "
                  "FROM provider_refresh ORDER BY provider", error);
  if (stmt == NULL)
    return NULL;
  while ((rc = sqlite3_step (stmt)) == SQLITE_ROW)
    {
      KpRefreshRow *row = g_new0 (KpRefreshRow, 1);

      row->provider = column_text (stmt, 0);
      row->refreshed_at = sqlite3_column_int64 (stmt, 1);
      row->ok_at = sqlite3_column_int64 (stmt, 2);
      row->error = column_text (stmt, 3);
      row->has_balance = sqlite3_column_type (stmt, 4) != SQLITE_NULL;
      row->balance = sqlite3_column_double (stmt, 4);
      row->currency = column_text (stmt, 5);
      row->balance_at = sqlite3_column_int64 (stmt, 6);
      g_ptr_array_add (rows, row);
    }
  sqlite3_reset (stmt);

  if (rc != SQLITE_DONE)
    {
      set_sqlite_error (self, error, "read how the refreshes went");
      return NULL;
    }
  return g_steal_pointer (&rows);
}

/* Requests --------------------------------------------------------------- */

/**
 * kp_ledger_add_request:
 * @self: a #KpLedger
 * @row: the request
 * @attempts: (array length=n_attempts): its attempts, in order
 * @n_attempts: how many
 * @error: a location for a #GError
 *
 * Writes the request and its attempts in one transaction.
 */
/* One request and its attempts, inside a transaction the caller holds. */
static gboolean
insert_request (KpLedger            *self,
                const KpRequestRow  *row,
                const KpAttemptRow  *attempts,
                guint                n_attempts,
                GError             **error)
{
  sqlite3_stmt *stmt;
  gint64 request;

  stmt = prepare (self,
                  "INSERT INTO requests (request_id, time, dialect, model, provider, credential_id, "
                  "upstream_model, status, outcome, error, attempts, prompt_tokens, "
                  "completion_tokens, cached_tokens, reasoning_tokens, cost_nano, cost_source, "
                  "ttfb_ms, total_ms, streamed, cache_write_tokens) "
                  "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", error);
  if (stmt == NULL)
    return FALSE;

  bind_text (stmt, 1, row->request_id);
  sqlite3_bind_int64 (stmt, 2, row->time_ms);
  bind_text (stmt, 3, row->api ? row->api : "openai-chat");
  bind_text (stmt, 4, row->model);
  bind_text (stmt, 5, row->provider);
  if (row->credential_id > 0)
    sqlite3_bind_int64 (stmt, 6, row->credential_id);
  else
    sqlite3_bind_null (stmt, 6);
  bind_text (stmt, 7, row->upstream_model);
  sqlite3_bind_int (stmt, 8, row->status);
  bind_text (stmt, 9, row->outcome);
  bind_text (stmt, 10, row->error);
  sqlite3_bind_int (stmt, 11, row->attempts);
  sqlite3_bind_int64 (stmt, 12, row->prompt_tokens);
  sqlite3_bind_int64 (stmt, 13, row->completion_tokens);
  sqlite3_bind_int64 (stmt, 14, row->cached_tokens);
  sqlite3_bind_int64 (stmt, 15, row->reasoning_tokens);
  sqlite3_bind_int64 (stmt, 16, row->cost_nano);
  bind_text (stmt, 17, row->cost_source ? row->cost_source : "unknown");
  if (row->ttfb_ms >= 0)
    sqlite3_bind_int64 (stmt, 18, row->ttfb_ms);
  else
    sqlite3_bind_null (stmt, 18);
  sqlite3_bind_int64 (stmt, 19, row->total_ms);
  sqlite3_bind_int (stmt, 20, row->streamed ? 1 : 0);
  sqlite3_bind_int64 (stmt, 21, row->cache_write_tokens);

  if (!step_done (self, stmt, "record a request", error))
    return FALSE;
  request = sqlite3_last_insert_rowid (self->db);

  for (guint i = 0; i < n_attempts; i++)
    {
      stmt = prepare (self,
                      "INSERT INTO attempts (request, n, provider, credential_id, status, failure, ms) "
                      "VALUES (?, ?, ?, ?, ?, ?, ?)", error);
      if (stmt == NULL)
        return FALSE;
      sqlite3_bind_int64 (stmt, 1, request);
      sqlite3_bind_int (stmt, 2, i + 1);
      bind_text (stmt, 3, attempts[i].provider);
      if (attempts[i].credential_id > 0)
        sqlite3_bind_int64 (stmt, 4, attempts[i].credential_id);
      else
        sqlite3_bind_null (stmt, 4);
      sqlite3_bind_int (stmt, 5, attempts[i].status);
      bind_text (stmt, 6, attempts[i].failure);
      sqlite3_bind_int64 (stmt, 7, attempts[i].ms);
      if (!step_done (self, stmt, "record an attempt", error))
        return FALSE;
    }

  return TRUE;
}

/**
 * kp_ledger_add_request:
 * @self: a #KpLedger
 * @row: the request
 * @attempts: (array length=n_attempts): its attempts, in order
 * @n_attempts: how many
 * @error: a location for a #GError
 *
 * Writes the request and its attempts in one transaction.
 */
gboolean
kp_ledger_add_request (KpLedger            *self,
                       const KpRequestRow  *row,
                       const KpAttemptRow  *attempts,
                       guint                n_attempts,
                       GError             **error)
{
  g_return_val_if_fail (KP_IS_LEDGER (self), FALSE);
  g_return_val_if_fail (row != NULL, FALSE);

  if (!exec (self, "BEGIN IMMEDIATE", "record a request", error))
    return FALSE;
  if (!insert_request (self, row, attempts, n_attempts, error) ||
      !exec (self, "COMMIT", "record a request", error))
    {
      sqlite3_exec (self->db, "ROLLBACK", NULL, NULL, NULL);
      return FALSE;
    }
  return TRUE;
}

/* Refusals -------------------------------------------------------------------
 *
 * Written by the writer thread like requests, and pruned there to the
 * newest REFUSALS_KEPT. What to write, and how often, the caller decides
 * (see kp-refusals.c): a flood of refusals is a few rows.
 */

/* Inside a transaction the caller holds. */
static gboolean
insert_refusal (KpLedger            *self,
                const KpRefusalRow  *row,
                gboolean             merge,
                GError             **error)
{
  sqlite3_stmt *stmt;
  gint64 id;

  if (merge)
    {
      stmt = prepare (self,
                      "UPDATE refusals SET count = count + ?, last_time = MAX(last_time, ?) "
                      "WHERE id = (SELECT MAX(id) FROM refusals WHERE status = ? AND code = ? "
                      "AND method IS ? AND path IS ? AND client IS ?)", error);
      if (stmt == NULL)
        return FALSE;
      sqlite3_bind_int64 (stmt, 1, MAX (row->count, 1));
      sqlite3_bind_int64 (stmt, 2, row->last_ms);
      sqlite3_bind_int (stmt, 3, row->status);
      bind_text (stmt, 4, row->code ? row->code : "unknown");
      bind_text (stmt, 5, row->method);
      bind_text (stmt, 6, row->path);
      bind_text (stmt, 7, row->client);
      if (!step_done (self, stmt, "record a refusal", error))
        return FALSE;
      if (sqlite3_changes (self->db) > 0)
        return TRUE;
    }

  stmt = prepare (self,
                  "INSERT INTO refusals (time, last_time, count, method, path, status, code, "
                  "client) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", error);
  if (stmt == NULL)
    return FALSE;
  sqlite3_bind_int64 (stmt, 1, row->time_ms);
  sqlite3_bind_int64 (stmt, 2, MAX (row->last_ms, row->time_ms));
  sqlite3_bind_int64 (stmt, 3, MAX (row->count, 1));
  bind_text (stmt, 4, row->method);
  bind_text (stmt, 5, row->path);
  sqlite3_bind_int (stmt, 6, row->status);
  bind_text (stmt, 7, row->code ? row->code : "unknown");
  bind_text (stmt, 8, row->client);
  if (!step_done (self, stmt, "record a refusal", error))
    return FALSE;

  /* Ids only grow (the newest row is never deleted): the oldest go. */
  id = sqlite3_last_insert_rowid (self->db);
  if (id <= REFUSALS_KEPT)
    return TRUE;
  stmt = prepare (self, "DELETE FROM refusals WHERE id <= ?", error);
  if (stmt == NULL)
    return FALSE;
  sqlite3_bind_int64 (stmt, 1, id - REFUSALS_KEPT);
  return step_done (self, stmt, "forget old refusals", error);
}

/* The ledger's thread: the owner is cleared there, after the writer ended. */
static gboolean
emit_refusals_written (gpointer data)
{
  KpLedger **owner = data;

  if (*owner != NULL)
    g_signal_emit (*owner, signals[REFUSALS_WRITTEN], 0);
  return G_SOURCE_REMOVE;
}

/* Writer thread: tells the ledger's thread that refusals were committed;
 * never runs the signal here, even while the ledger is being finalized.
 */
static void
tell_refusals_written (KpLedger *self)
{
  g_autoptr(GSource) source = g_idle_source_new ();

  g_source_set_priority (source, G_PRIORITY_DEFAULT);
  g_source_set_callback (source, emit_refusals_written, g_atomic_rc_box_acquire (self->owner),
                         g_atomic_rc_box_release);
  g_source_set_static_name (source, "[keypool] refusals written");
  g_source_attach (source, self->context);
}

/* The writer thread ---------------------------------------------------------
 *
 * Rows are written by a thread of their own, on its own connection, so that
 * sqlite's work (and, now and then, a WAL checkpoint) never runs on the main
 * loop. Rows that arrive together share one transaction; each request hears
 * back once its row is committed. When the disk or the file fails (full,
 * read-only, gone), the rows wait in memory, up to max_pending, the newest
 * kept; the writer tries again with a growing delay, on a fresh connection,
 * and #KpLedger:problem says what is wrong until a write works.
 */

static void
request_row_clear (KpRequestRow *row)
{
  g_clear_pointer (&row->request_id, g_free);
  g_clear_pointer (&row->api, g_free);
  g_clear_pointer (&row->model, g_free);
  g_clear_pointer (&row->provider, g_free);
  g_clear_pointer (&row->upstream_model, g_free);
  g_clear_pointer (&row->outcome, g_free);
  g_clear_pointer (&row->error, g_free);
  g_clear_pointer (&row->cost_source, g_free);
}

static void
job_free (Job *job)
{
  request_row_clear (&job->row);
  g_clear_pointer (&job->refusal, kp_refusal_row_free);
  g_clear_pointer (&job->state, kp_credential_row_free);
  g_clear_pointer (&job->attempts, g_array_unref);
  g_clear_object (&job->task);
  g_free (job);
}

static void
attempt_row_clear (gpointer data)
{
  KpAttemptRow *attempt = data;

  g_free (attempt->provider);
  g_free (attempt->failure);
}

/* Tells the caller of each job how its row went, once. */
static gboolean
release_task (gpointer data)
{
  return G_SOURCE_REMOVE;
}

static void
finish_jobs (KpLedger     *self,
             GPtrArray    *jobs,
             const GError *error)
{
  for (guint i = 0; i < jobs->len; i++)
    {
      Job *job = g_ptr_array_index (jobs, i);
      g_autoptr(GSource) source = NULL;

      if (job->task == NULL)
        continue;
      if (error == NULL)
        g_task_return_boolean (job->task, TRUE);
      else
        g_task_return_error (job->task, g_error_copy (error));

      /* The task holds the ledger: its last reference must not go here,
       * or the writer would finalize the ledger and join itself.
       */
      source = g_idle_source_new ();
      g_source_set_callback (source, release_task, g_steal_pointer (&job->task), g_object_unref);
      g_source_set_static_name (source, "[keypool] ledger task");
      g_source_attach (source, self->context);
    }
}

static gboolean
write_batch (KpLedger   *writer,
             KpLedger   *self,
             GPtrArray  *jobs,
             GError    **error)
{
  gboolean refusals = FALSE;

  if (g_atomic_int_get (&self->fail_writes))
    {
      g_set_error (error, KP_LEDGER_ERROR, KP_LEDGER_ERROR_QUERY,
                   "Cannot record requests in %s: database or disk is full", self->path);
      return FALSE;
    }

  if (!exec (writer, "BEGIN IMMEDIATE", "record requests", error))
    return FALSE;
  for (guint i = 0; i < jobs->len; i++)
    {
      Job *job = g_ptr_array_index (jobs, i);
      gboolean written;

      if (job->refusal != NULL)
        {
          written = insert_refusal (writer, job->refusal, job->merge, error);
          refusals = TRUE;
        }
      else if (job->state != NULL)
        written = insert_state (writer, job->state, error);
      else
        written = insert_request (writer, &job->row, (const KpAttemptRow *)(gpointer)job->attempts->data,
                                  job->attempts->len, error);
      if (!written)
        {
          sqlite3_exec (writer->db, "ROLLBACK", NULL, NULL, NULL);
          return FALSE;
        }
    }
  if (!exec (writer, "COMMIT", "record requests", error))
    {
      sqlite3_exec (writer->db, "ROLLBACK", NULL, NULL, NULL);
      return FALSE;
    }
  if (refusals)
    tell_refusals_written (self);
  return TRUE;
}

/* Another connection holds the write lock. */
static gboolean
is_busy (KpLedger *writer)
{
  int code = sqlite3_errcode (writer->db) & 0xff;

  return code == SQLITE_BUSY || code == SQLITE_LOCKED;
}

/* The row itself is at fault (a constraint, a value sqlite refuses), not
 * the disk or the file: writing it again would fail again.
 */
static gboolean
row_at_fault (KpLedger *writer)
{
  switch (sqlite3_errcode (writer->db) & 0xff)
    {
    case SQLITE_CONSTRAINT:
    case SQLITE_MISMATCH:
    case SQLITE_TOOBIG:
    case SQLITE_RANGE:
      return TRUE;
    default:
      return FALSE;
    }
}

typedef struct
{
  KpLedger **owner;    /* the ledger's rc box: NULL once it is finalized */
  char      *problem;  /* NULL: rows are written again */
} ProblemUpdate;

static void
problem_update_free (gpointer data)
{
  ProblemUpdate *update = data;

  g_atomic_rc_box_release (update->owner);
  g_free (update->problem);
  g_free (update);
}

/* The ledger's thread. It holds no reference: taking one here could make
 * this the last one, and a ledger must never be finalized by its writer.
 */
static gboolean
apply_write_problem (gpointer data)
{
  ProblemUpdate *update = data;
  KpLedger *self = *update->owner;

  if (self == NULL)
    return G_SOURCE_REMOVE;

  g_free (self->write_problem);
  self->write_problem = g_strdup (update->problem);
  /* A row written means the file takes writes again. */
  if (update->problem == NULL && self->open_read_only)
    {
      g_clear_pointer (&self->open_problem, g_free);
      self->open_read_only = FALSE;
    }
  update_problem (self);
  return G_SOURCE_REMOVE;
}

/* Writer thread: tells the ledger's thread what is wrong now. Always
 * through a source on that thread's context, never run here: invoking the
 * context from this thread could run the update (and drop the ledger's last
 * reference) on the writer itself, which then would have to join itself.
 */
static void
tell_write_problem (KpLedger   *self,
                    const char *problem)
{
  ProblemUpdate *update = g_new0 (ProblemUpdate, 1);
  g_autoptr(GSource) source = g_idle_source_new ();

  update->owner = g_atomic_rc_box_acquire (self->owner);
  update->problem = g_strdup (problem);
  g_source_set_priority (source, G_PRIORITY_DEFAULT);
  g_source_set_callback (source, apply_write_problem, update, problem_update_free);
  g_source_set_static_name (source, "[keypool] ledger problem");
  g_source_attach (source, self->context);
}

/* Writes every row that waits. Rows the database refuses for what they are
 * fail alone; when the disk or the file fails, every row stays in @jobs.
 *
 * Returns: %TRUE when nothing is left to write
 */
static gboolean
write_jobs (KpLedger   *self,
            KpLedger  **writer,
            GPtrArray  *jobs,
            gboolean    stopping,
            GError    **error)
{
  if (*writer == NULL)
    {
      *writer = open_connection (self->path, FALSE, error);
      if (*writer == NULL)
        return FALSE;
    }
  /* Rows wait for a lock only briefly, and their requests with them; the
   * last ones, before Keypool stops, as long as the main connection would.
   */
  sqlite3_busy_timeout ((*writer)->db, stopping ? BUSY_TIMEOUT_MS : WRITER_BUSY_TIMEOUT_MS);

  if (write_batch (*writer, self, jobs, error))
    {
      finish_jobs (self, jobs, NULL);
      g_ptr_array_set_size (jobs, 0);
      return TRUE;
    }
  if (!row_at_fault (*writer))
    return FALSE;
  g_clear_error (error);

  /* One bad row must not take the others with it. */
  for (guint i = 0; i < jobs->len;)
    {
      g_autoptr(GPtrArray) one = g_ptr_array_new ();
      g_autoptr(GError) row_error = NULL;

      g_ptr_array_add (one, g_ptr_array_index (jobs, i));
      if (write_batch (*writer, self, one, &row_error))
        finish_jobs (self, one, NULL);
      else if (row_at_fault (*writer))
        {
          g_debug ("A row was refused: %s", row_error->message);
          finish_jobs (self, one, row_error);
        }
      else
        {
          g_propagate_error (error, g_steal_pointer (&row_error));
          return FALSE;
        }
      g_ptr_array_remove_index (jobs, i);
    }
  return TRUE;
}

/* Writer thread: a key's newer state replaces one that still waits, so
 * a key failing again and again while writes fail is one row to write.
 */
static gboolean
replace_state (GPtrArray *jobs,
               Job       *job)
{
  for (guint i = jobs->len; i > 0; i--)
    {
      Job *waiting = g_ptr_array_index (jobs, i - 1);

      if (waiting->state != NULL && waiting->state->id == job->state->id)
        {
          g_assert (waiting->task == NULL);
          job_free (waiting);
          jobs->pdata[i - 1] = job;
          return TRUE;
        }
    }
  return FALSE;
}

static gpointer
writer_thread (gpointer data)
{
  KpLedger *self = data;
  g_autoptr(GPtrArray) jobs = g_ptr_array_new_with_free_func ((GDestroyNotify)job_free);
  g_autoptr(KpLedger) writer = NULL;
  gboolean stopping = FALSE;
  guint delay_ms = 0;       /* 0 while writes work */
  gint64 next_try = 0;      /* monotonic µs of the next retry */
  guint64 lost = 0;
  gint64 failing_since = 0; /* monotonic µs of the first failed try; 0 while writes work */
  gboolean busy;
  guint n_rows;

  while (!stopping || jobs->len > 0)
    {
      gint64 now = g_get_monotonic_time ();
      Job *job;

      if (stopping)
        job = NULL;
      else if (delay_ms == 0)
        job = g_async_queue_pop (self->queue);
      else
        job = g_async_queue_timeout_pop (self->queue, MAX (next_try - now, 0));

      /* Take whatever else is waiting: one commit for all of it. */
      while (job != NULL)
        {
          if (job == &stop_job)
            stopping = TRUE;
          else if (job->state == NULL || !replace_state (jobs, job))
            g_ptr_array_add (jobs, job);
          job = g_async_queue_try_pop (self->queue);
        }

      /* Keep the newest rows when too many wait. Keys' states are few (one
       * per key, see replace_state()) and stay: a restart must find them.
       */
      n_rows = 0;
      for (guint i = 0; i < jobs->len; i++)
        if (((Job *)g_ptr_array_index (jobs, i))->state == NULL)
          n_rows++;
      if (n_rows > self->max_pending)
        {
          g_autoptr(GPtrArray) dropped = g_ptr_array_new_with_free_func ((GDestroyNotify)job_free);
          g_autoptr(GError) too_many = g_error_new (KP_LEDGER_ERROR, KP_LEDGER_ERROR_QUERY,
                                                    "Too many requests wait to be recorded; "
                                                    "the oldest are dropped");

          for (guint i = 0; n_rows > self->max_pending;)
            {
              if (((Job *)g_ptr_array_index (jobs, i))->state != NULL)
                i++;
              else
                {
                  g_ptr_array_add (dropped, g_ptr_array_steal_index (jobs, i));
                  n_rows--;
                }
            }
          finish_jobs (self, dropped, too_many);
          lost += dropped->len;
        }

      if (jobs->len == 0)
        continue;

      if (delay_ms != 0 && !stopping && g_get_monotonic_time () < next_try)
        {
          /* Rows that arrive while writes fail wait with the others. */
          g_autoptr(GError) pending = g_error_new (KP_LEDGER_ERROR, KP_LEDGER_ERROR_PENDING,
                                                   "The request waits in memory to be recorded");
          finish_jobs (self, jobs, pending);
          continue;
        }

      {
        g_autoptr(GError) error = NULL;
        g_autoptr(GError) pending = NULL;
        g_autofree char *problem = NULL;
        g_autofree char *lost_text = NULL;

        if (write_jobs (self, &writer, jobs, stopping, &error))
          {
            if (delay_ms != 0)
              tell_write_problem (self, NULL);
            delay_ms = 0;
            failing_since = 0;
            lost = 0;
            continue;
          }

        /* Another program holds the write lock: the rows wait, and are
         * tried again soon on the same connection; that is a problem for
         * the user only once it lasts. The disk or the file failed: every
         * row waits, and the connection is opened anew for the next try (a
         * file made writable again).
         */
        busy = writer != NULL && is_busy (writer);
        if (!busy)
          g_clear_object (&writer);
        if (failing_since == 0)
          failing_since = g_get_monotonic_time ();
        if (stopping)
          {
            g_warning ("%u requests could not be recorded before Keypool stopped: %s",
                       jobs->len, error->message);
            finish_jobs (self, jobs, error);
            break;
          }

        pending = g_error_new (KP_LEDGER_ERROR, KP_LEDGER_ERROR_PENDING,
                               "The request waits in memory to be recorded: %s", error->message);
        finish_jobs (self, jobs, pending);
        delay_ms = delay_ms == 0 ? self->retry_min_ms
                                 : MIN (delay_ms * 2, busy ? MIN (self->retry_max_ms, BUSY_RETRY_MAX_MS)
                                                           : self->retry_max_ms);
        next_try = g_get_monotonic_time () + (gint64)delay_ms * 1000;
        if (busy && g_get_monotonic_time () - failing_since < BUSY_PROBLEM_AFTER_MS * 1000)
          continue;
        if (lost > 0)
          lost_text = g_strdup_printf (" %" G_GUINT64_FORMAT " older ones were dropped.", lost);
        problem = g_strdup_printf ("Requests are not being recorded. %s. %u wait in memory and "
                                   "are written when the database takes them again.%s",
                                   error->message, jobs->len, lost_text ? lost_text : "");
        tell_write_problem (self, problem);
      }
    }

  return NULL;
}

static void
push_job (KpLedger *self,
          Job      *job)
{
  if (self->writer == NULL)
    {
      self->queue = g_async_queue_new ();
      self->writer = g_thread_new ("keypool-ledger", writer_thread, self);
    }
  g_async_queue_push (self->queue, job);
}

/**
 * kp_ledger_add_request_async:
 * @self: a #KpLedger
 * @row: the request; copied
 * @attempts: (array length=n_attempts): its attempts; copied
 * @n_attempts: how many
 * @callback: called on this thread's main context once the row is committed,
 *   or with %KP_LEDGER_ERROR_PENDING when writes fail and the row waits in
 *   memory (bounded) to be written, with its own time, once they work again
 * @user_data: data for @callback
 *
 * Like kp_ledger_add_request(), without blocking the caller.
 */
void
kp_ledger_add_request_async (KpLedger            *self,
                             const KpRequestRow  *row,
                             const KpAttemptRow  *attempts,
                             guint                n_attempts,
                             GAsyncReadyCallback  callback,
                             gpointer             user_data)
{
  Job *job;

  g_return_if_fail (KP_IS_LEDGER (self));
  g_return_if_fail (row != NULL);

  job = g_new0 (Job, 1);
  job->row = *row;
  job->row.request_id = g_strdup (row->request_id);
  job->row.api = g_strdup (row->api);
  job->row.model = g_strdup (row->model);
  job->row.provider = g_strdup (row->provider);
  job->row.upstream_model = g_strdup (row->upstream_model);
  job->row.outcome = g_strdup (row->outcome);
  job->row.error = g_strdup (row->error);
  job->row.cost_source = g_strdup (row->cost_source);
  job->attempts = g_array_sized_new (FALSE, TRUE, sizeof (KpAttemptRow), n_attempts);
  g_array_set_clear_func (job->attempts, attempt_row_clear);
  for (guint i = 0; i < n_attempts; i++)
    {
      KpAttemptRow copy = attempts[i];

      copy.provider = g_strdup (attempts[i].provider);
      copy.failure = g_strdup (attempts[i].failure);
      g_array_append_val (job->attempts, copy);
    }
  job->task = g_task_new (self, NULL, callback, user_data);
  g_task_set_source_tag (job->task, kp_ledger_add_request_async);
  push_job (self, job);
}

/**
 * kp_ledger_add_refusal:
 * @self: a #KpLedger
 * @row: the refusal; copied
 * @merge: add @row's count to the newest row of the same method, path,
 *   status, code and client, when there is one, instead of a new row
 *
 * Queues @row for the writer thread and returns at once. The table keeps
 * the newest 1,000 rows. #KpLedger::refusals-written follows the commit.
 */
void
kp_ledger_add_refusal (KpLedger           *self,
                       const KpRefusalRow *row,
                       gboolean            merge)
{
  Job *job;

  g_return_if_fail (KP_IS_LEDGER (self));
  g_return_if_fail (row != NULL);

  job = g_new0 (Job, 1);
  job->refusal = g_new0 (KpRefusalRow, 1);
  *job->refusal = *row;
  job->refusal->method = g_strdup (row->method);
  job->refusal->path = g_strdup (row->path);
  job->refusal->code = g_strdup (row->code);
  job->refusal->client = g_strdup (row->client);
  job->merge = merge;
  /* No task: nobody waits for a refusal, and the ledger may go meanwhile
   * (its finalize writes what is queued).
   */
  push_job (self, job);
}

/**
 * kp_ledger_save_credential_state:
 * @self: a #KpLedger
 * @id: the key
 * @state: "ok", "cooling", "exhausted" or "invalid"
 * @until: unix seconds; 0 = until something changes
 * @last_error: (nullable): what went wrong, without the secret
 *
 * Queues the key's state for the writer thread and returns at once, so a
 * failing request never waits for the database. It is written in order
 * with the rows queued before it; a newer state of the same key replaces
 * one that still waits; while writes fail it waits in memory, and the
 * ledger's finalize writes it. A key removed meanwhile is skipped.
 */
void
kp_ledger_save_credential_state (KpLedger   *self,
                                 gint64      id,
                                 const char *state,
                                 gint64      until,
                                 const char *last_error)
{
  Job *job;

  g_return_if_fail (KP_IS_LEDGER (self));
  g_return_if_fail (id > 0);
  g_return_if_fail (state != NULL);

  job = g_new0 (Job, 1);
  job->state = g_new0 (KpCredentialRow, 1);
  job->state->id = id;
  job->state->state = g_strdup (state);
  job->state->state_until = until;
  job->state->last_error = g_strdup (last_error);
  push_job (self, job);
}

/* Before the first row. */
void
kp_ledger_set_retry_policy (KpLedger *self,
                            guint     min_delay_ms,
                            guint     max_delay_ms,
                            guint     max_pending)
{
  g_return_if_fail (KP_IS_LEDGER (self));
  g_return_if_fail (self->writer == NULL);
  g_return_if_fail (min_delay_ms > 0 && min_delay_ms <= max_delay_ms && max_pending > 0);

  self->retry_min_ms = min_delay_ms;
  self->retry_max_ms = max_delay_ms;
  self->max_pending = max_pending;
}

/* Every write fails as a full disk would, until told otherwise. */
void
kp_ledger_set_fail_writes (KpLedger *self,
                           gboolean  fail)
{
  g_return_if_fail (KP_IS_LEDGER (self));
  g_atomic_int_set (&self->fail_writes, fail ? 1 : 0);
}

gboolean
kp_ledger_add_request_finish (KpLedger      *self,
                              GAsyncResult  *result,
                              GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

void
kp_request_row_free (KpRequestRow *row)
{
  if (row == NULL)
    return;
  request_row_clear (row);
  g_free (row);
}

/**
 * kp_ledger_recent_requests:
 *
 * Returns: (transfer container) (element-type KpRequestRow): the last
 *   @limit requests, newest first
 */
GPtrArray *
kp_ledger_recent_requests (KpLedger  *self,
                           guint      limit,
                           GError   **error)
{
  g_autoptr(GPtrArray) rows = g_ptr_array_new_with_free_func ((GDestroyNotify)kp_request_row_free);
  sqlite3_stmt *stmt;
  int rc;

  g_return_val_if_fail (KP_IS_LEDGER (self), NULL);

  self->reads++;
  stmt = prepare (self,
                  "SELECT request_id, time, dialect, model, provider, credential_id, upstream_model, "
                  "status, outcome, error, attempts, prompt_tokens, completion_tokens, cached_tokens, "
                  "reasoning_tokens, cost_nano, cost_source, ttfb_ms, total_ms, streamed, "
                  "cache_write_tokens "
                  "FROM requests ORDER BY id DESC LIMIT ?", error);
  if (stmt == NULL)
    return NULL;
  sqlite3_bind_int (stmt, 1, limit);

  while ((rc = sqlite3_step (stmt)) == SQLITE_ROW)
    {
      KpRequestRow *row = g_new0 (KpRequestRow, 1);

      row->request_id = column_text (stmt, 0);
      row->time_ms = sqlite3_column_int64 (stmt, 1);
      row->api = column_text (stmt, 2);
      row->model = column_text (stmt, 3);
      row->provider = column_text (stmt, 4);
      row->credential_id = sqlite3_column_int64 (stmt, 5);
      row->upstream_model = column_text (stmt, 6);
      row->status = sqlite3_column_int (stmt, 7);
      row->outcome = column_text (stmt, 8);
      row->error = column_text (stmt, 9);
      row->attempts = sqlite3_column_int (stmt, 10);
      row->prompt_tokens = sqlite3_column_int64 (stmt, 11);
      row->completion_tokens = sqlite3_column_int64 (stmt, 12);
      row->cached_tokens = sqlite3_column_int64 (stmt, 13);
      row->reasoning_tokens = sqlite3_column_int64 (stmt, 14);
      row->cost_nano = sqlite3_column_int64 (stmt, 15);
      row->cost_source = column_text (stmt, 16);
      row->ttfb_ms = sqlite3_column_type (stmt, 17) == SQLITE_NULL ? -1 : sqlite3_column_int64 (stmt, 17);
      row->total_ms = sqlite3_column_int64 (stmt, 18);
      row->streamed = sqlite3_column_int (stmt, 19) != 0;
      row->cache_write_tokens = sqlite3_column_int64 (stmt, 20);
      g_ptr_array_add (rows, row);
    }
  sqlite3_reset (stmt);

  if (rc != SQLITE_DONE)
    {
      set_sqlite_error (self, error, "read the requests");
      return NULL;
    }
  return g_steal_pointer (&rows);
}

void
kp_refusal_row_free (KpRefusalRow *row)
{
  if (row == NULL)
    return;
  g_free (row->method);
  g_free (row->path);
  g_free (row->code);
  g_free (row->client);
  g_free (row);
}

void
kp_problem_row_free (KpProblemRow *row)
{
  if (row == NULL)
    return;
  g_free (row->method);
  g_free (row->path);
  g_free (row->model);
  g_free (row->api);
  g_free (row->code);
  g_free (row->error);
  g_free (row->client);
  g_free (row);
}

/**
 * kp_ledger_recent_problems:
 * @self: a #KpLedger
 * @limit: how many rows at most
 * @error: a location for a #GError
 *
 * Why a tool "does nothing": refusals and requests that failed (HTTP status
 * 400 or above, or a stream cut short; not those the client itself gave
 * up), together.
 *
 * Returns: (transfer container) (element-type KpProblemRow): the last
 *   @limit, newest first
 */
GPtrArray *
kp_ledger_recent_problems (KpLedger  *self,
                           guint      limit,
                           GError   **error)
{
  g_autoptr(GPtrArray) rows = g_ptr_array_new_with_free_func ((GDestroyNotify)kp_problem_row_free);
  sqlite3_stmt *stmt;
  int rc;

  g_return_val_if_fail (KP_IS_LEDGER (self), NULL);

  /* Each side takes its newest through its own order (requests_failed is a
   * partial index on exactly that condition), then both are merged.
   */
  stmt = prepare (self,
                  "SELECT * FROM (SELECT 1, last_time, count, status, method, path, NULL, NULL, "
                  "code, NULL, client FROM refusals ORDER BY last_time DESC, id DESC LIMIT ?1) "
                  "UNION ALL "
                  "SELECT * FROM (SELECT 0, time, 1, status, NULL, NULL, model, dialect, outcome, "
                  "error, NULL FROM requests WHERE (status >= 400 OR outcome = 'interrupted') "
                  "AND outcome != 'cancelled' "
                  "ORDER BY time DESC LIMIT ?1) "
                  "ORDER BY 2 DESC LIMIT ?1", error);
  if (stmt == NULL)
    return NULL;
  sqlite3_bind_int (stmt, 1, limit);

  while ((rc = sqlite3_step (stmt)) == SQLITE_ROW)
    {
      KpProblemRow *row = g_new0 (KpProblemRow, 1);

      row->refused = sqlite3_column_int (stmt, 0) != 0;
      row->time_ms = sqlite3_column_int64 (stmt, 1);
      row->count = sqlite3_column_int (stmt, 2);
      row->status = sqlite3_column_int (stmt, 3);
      row->method = column_text (stmt, 4);
      row->path = column_text (stmt, 5);
      row->model = column_text (stmt, 6);
      row->api = column_text (stmt, 7);
      row->code = column_text (stmt, 8);
      row->error = column_text (stmt, 9);
      row->client = column_text (stmt, 10);
      g_ptr_array_add (rows, row);
    }
  sqlite3_reset (stmt);

  if (rc != SQLITE_DONE)
    {
      set_sqlite_error (self, error, "read the recent problems");
      return NULL;
    }
  return g_steal_pointer (&rows);
}

/* Reads on a worker thread ---------------------------------------------------
 *
 * What the faces show (the spend totals, the chart, the recent requests and
 * problems) is added up on a worker thread, on a read-only connection of its
 * own (the main thread's is not shared between threads), so the main loop
 * never waits for sqlite to go through a month of rows. In WAL mode a reader
 * never waits for the writer either.
 */

typedef struct _Read Read;
typedef GPtrArray *(*ReadFunc) (KpLedger    *reader,
                                const Read  *read,
                                GError     **error);

struct _Read
{
  ReadFunc  func;
  gint64    since_ms;
  KpSpendBy by;
  guint     limit;
};

static KpLedger *
open_reader (const char  *path,
             GError     **error)
{
  g_autoptr(KpLedger) reader = g_object_new (KP_TYPE_LEDGER, NULL);

  reader->path = g_strdup (path);
  if (sqlite3_open_v2 (path, &reader->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX,
                       NULL) != SQLITE_OK)
    {
      g_set_error (error, KP_LEDGER_ERROR, KP_LEDGER_ERROR_OPEN,
                   "Cannot open the database %s: %s", path,
                   reader->db ? sqlite3_errmsg (reader->db) : "out of memory");
      return NULL;
    }
  sqlite3_busy_timeout (reader->db, BUSY_TIMEOUT_MS);
  return g_steal_pointer (&reader);
}

static void
read_in_thread (GTask        *task,
                gpointer      source_object,
                gpointer      task_data,
                GCancellable *cancellable)
{
  KpLedger *self = source_object;
  const Read *read = task_data;
  g_autoptr(KpLedger) reader = NULL;
  g_autoptr(GError) error = NULL;
  GPtrArray *rows = NULL;

  reader = open_reader (self->path, &error);
  if (reader != NULL)
    rows = read->func (reader, read, &error);
  if (rows == NULL)
    g_task_return_error (task, g_steal_pointer (&error));
  else
    g_task_return_pointer (task, rows, (GDestroyNotify)g_ptr_array_unref);
}

static void
read_async (KpLedger            *self,
            const Read          *read,
            gpointer             source_tag,
            GCancellable        *cancellable,
            GAsyncReadyCallback  callback,
            gpointer             user_data)
{
  g_autoptr(GTask) task = g_task_new (self, cancellable, callback, user_data);

  g_task_set_source_tag (task, source_tag);
  g_task_set_task_data (task, g_memdup2 (read, sizeof *read), g_free);
  g_task_set_return_on_cancel (task, TRUE);
  g_task_run_in_thread (task, read_in_thread);
}

static GPtrArray *
read_finish (KpLedger      *self,
             GAsyncResult  *result,
             gpointer       source_tag,
             GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == source_tag, NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

static GPtrArray *
read_problems (KpLedger    *reader,
               const Read  *read,
               GError     **error)
{
  return kp_ledger_recent_problems (reader, read->limit, error);
}

/**
 * kp_ledger_recent_problems_async:
 *
 * Like kp_ledger_recent_problems(), on a worker thread.
 */
void
kp_ledger_recent_problems_async (KpLedger            *self,
                                 guint                limit,
                                 GCancellable        *cancellable,
                                 GAsyncReadyCallback  callback,
                                 gpointer             user_data)
{
  Read read = { .func = read_problems, .limit = limit };

  g_return_if_fail (KP_IS_LEDGER (self));
  read_async (self, &read, kp_ledger_recent_problems_async, cancellable, callback, user_data);
}

/**
 * kp_ledger_recent_problems_finish:
 *
 * Returns: (transfer container) (element-type KpProblemRow): the rows, or
 *   %NULL with @error set
 */
GPtrArray *
kp_ledger_recent_problems_finish (KpLedger      *self,
                                  GAsyncResult  *result,
                                  GError       **error)
{
  return read_finish (self, result, kp_ledger_recent_problems_async, error);
}

static GPtrArray *
read_requests (KpLedger    *reader,
               const Read  *read,
               GError     **error)
{
  return kp_ledger_recent_requests (reader, read->limit, error);
}

/**
 * kp_ledger_recent_requests_async:
 *
 * Like kp_ledger_recent_requests(), on a worker thread.
 */
void
kp_ledger_recent_requests_async (KpLedger            *self,
                                 guint                limit,
                                 GCancellable        *cancellable,
                                 GAsyncReadyCallback  callback,
                                 gpointer             user_data)
{
  Read read = { .func = read_requests, .limit = limit };

  g_return_if_fail (KP_IS_LEDGER (self));
  read_async (self, &read, kp_ledger_recent_requests_async, cancellable, callback, user_data);
}

/**
 * kp_ledger_recent_requests_finish:
 *
 * Returns: (transfer container) (element-type KpRequestRow): the rows, or
 *   %NULL with @error set
 */
GPtrArray *
kp_ledger_recent_requests_finish (KpLedger      *self,
                                  GAsyncResult  *result,
                                  GError       **error)
{
  return read_finish (self, result, kp_ledger_recent_requests_async, error);
}

void
kp_spend_row_free (KpSpendRow *row)
{
  if (row == NULL)
    return;
  g_free (row->key);
  g_free (row->provider);
  g_free (row);
}

/* Reads spend rows: key, [provider,] requests, cost, unknown, input, output. */
static GPtrArray *
read_spend_rows (KpLedger      *self,
                 sqlite3_stmt  *stmt,
                 gboolean       with_provider,
                 GError       **error)
{
  g_autoptr(GPtrArray) rows = g_ptr_array_new_with_free_func ((GDestroyNotify)kp_spend_row_free);
  int column;
  int rc;

  self->reads++;

  while ((rc = sqlite3_step (stmt)) == SQLITE_ROW)
    {
      KpSpendRow *row = g_new0 (KpSpendRow, 1);

      column = 0;
      row->key = column_text (stmt, column++);
      if (with_provider)
        row->provider = column_text (stmt, column++);
      row->requests = sqlite3_column_int64 (stmt, column++);
      row->cost_nano = sqlite3_column_int64 (stmt, column++);
      row->unknown_cost = sqlite3_column_int64 (stmt, column++);
      row->prompt_tokens = sqlite3_column_int64 (stmt, column++);
      row->completion_tokens = sqlite3_column_int64 (stmt, column++);
      g_ptr_array_add (rows, row);
    }
  sqlite3_reset (stmt);

  if (rc != SQLITE_DONE)
    {
      set_sqlite_error (self, error, "add up the spend");
      return NULL;
    }
  return g_steal_pointer (&rows);
}

/**
 * kp_ledger_spend_by_day_and_provider:
 * @self: a #KpLedger
 * @since_ms: unix ms; requests from then on count
 * @error: a location for a #GError
 *
 * For a chart of spend per day, stacked by provider.
 *
 * Returns: (transfer container) (element-type KpSpendRow): one row per day
 *   (local time, "YYYY-MM-DD" in @key) and provider, by day then provider
 */
GPtrArray *
kp_ledger_spend_by_day_and_provider (KpLedger  *self,
                                     gint64     since_ms,
                                     GError   **error)
{
  sqlite3_stmt *stmt;

  g_return_val_if_fail (KP_IS_LEDGER (self), NULL);

  stmt = prepare (self,
                  "SELECT strftime('%Y-%m-%d', time / 1000, 'unixepoch', 'localtime'), "
                  "COALESCE(provider, '(none)'), COUNT(*), "
                  "SUM(CASE WHEN cost_source != 'unknown' THEN cost_nano ELSE 0 END), "
                  "SUM(cost_source = 'unknown' AND outcome IN ('ok', 'interrupted')), "
                  "SUM(prompt_tokens), SUM(completion_tokens) FROM requests WHERE time >= ? "
                  "GROUP BY 1, 2 ORDER BY 1, 2", error);
  if (stmt == NULL)
    return NULL;
  sqlite3_bind_int64 (stmt, 1, since_ms);
  return read_spend_rows (self, stmt, TRUE, error);
}

/**
 * kp_ledger_spend:
 * @self: a #KpLedger
 * @since_ms: unix ms; requests from then on count
 * @by: how to group
 * @error: a location for a #GError
 *
 * Unknown costs are counted apart, never added as $0.
 *
 * Returns: (transfer container) (element-type KpSpendRow): one row per
 *   group; days in order, the others by cost, largest first
 */
GPtrArray *
kp_ledger_spend (KpLedger  *self,
                 gint64     since_ms,
                 KpSpendBy  by,
                 GError   **error)
{
  static const char *queries[] = {
    [KP_SPEND_BY_PROVIDER] =
      "SELECT COALESCE(provider, '(none)'), COUNT(*), "
      "SUM(CASE WHEN cost_source != 'unknown' THEN cost_nano ELSE 0 END), "
      "SUM(cost_source = 'unknown' AND outcome IN ('ok', 'interrupted')), "
      "SUM(prompt_tokens), SUM(completion_tokens) FROM requests WHERE time >= ? "
      "GROUP BY 1 ORDER BY 3 DESC, 1",
    [KP_SPEND_BY_MODEL] =
      "SELECT COALESCE(model, '(none)'), COUNT(*), "
      "SUM(CASE WHEN cost_source != 'unknown' THEN cost_nano ELSE 0 END), "
      "SUM(cost_source = 'unknown' AND outcome IN ('ok', 'interrupted')), "
      "SUM(prompt_tokens), SUM(completion_tokens) FROM requests WHERE time >= ? "
      "GROUP BY 1 ORDER BY 3 DESC, 1",
    [KP_SPEND_BY_KEY] =
      "SELECT COALESCE(CAST(credential_id AS TEXT), '(none)'), COUNT(*), "
      "SUM(CASE WHEN cost_source != 'unknown' THEN cost_nano ELSE 0 END), "
      "SUM(cost_source = 'unknown' AND outcome IN ('ok', 'interrupted')), "
      "SUM(prompt_tokens), SUM(completion_tokens) FROM requests WHERE time >= ? "
      "GROUP BY 1 ORDER BY 3 DESC, 1",
    [KP_SPEND_BY_DAY] =
      "SELECT strftime('%Y-%m-%d', time / 1000, 'unixepoch', 'localtime'), COUNT(*), "
      "SUM(CASE WHEN cost_source != 'unknown' THEN cost_nano ELSE 0 END), "
      "SUM(cost_source = 'unknown' AND outcome IN ('ok', 'interrupted')), "
      "SUM(prompt_tokens), SUM(completion_tokens) FROM requests WHERE time >= ? "
      "GROUP BY 1 ORDER BY 1",
  };
  sqlite3_stmt *stmt;

  g_return_val_if_fail (KP_IS_LEDGER (self), NULL);
  g_return_val_if_fail (by <= KP_SPEND_BY_DAY, NULL);

  stmt = prepare (self, queries[by], error);
  if (stmt == NULL)
    return NULL;
  sqlite3_bind_int64 (stmt, 1, since_ms);
  return read_spend_rows (self, stmt, FALSE, error);
}

static GPtrArray *
read_spend (KpLedger    *reader,
            const Read  *read,
            GError     **error)
{
  return kp_ledger_spend (reader, read->since_ms, read->by, error);
}

/**
 * kp_ledger_spend_async:
 *
 * Like kp_ledger_spend(), on a worker thread.
 */
void
kp_ledger_spend_async (KpLedger            *self,
                       gint64               since_ms,
                       KpSpendBy            by,
                       GCancellable        *cancellable,
                       GAsyncReadyCallback  callback,
                       gpointer             user_data)
{
  Read read = { .func = read_spend, .since_ms = since_ms, .by = by };

  g_return_if_fail (KP_IS_LEDGER (self));
  g_return_if_fail (by <= KP_SPEND_BY_DAY);
  read_async (self, &read, kp_ledger_spend_async, cancellable, callback, user_data);
}

/**
 * kp_ledger_spend_finish:
 *
 * Returns: (transfer container) (element-type KpSpendRow): the rows, or
 *   %NULL with @error set
 */
GPtrArray *
kp_ledger_spend_finish (KpLedger      *self,
                        GAsyncResult  *result,
                        GError       **error)
{
  return read_finish (self, result, kp_ledger_spend_async, error);
}

static GPtrArray *
read_spend_by_day (KpLedger    *reader,
                   const Read  *read,
                   GError     **error)
{
  return kp_ledger_spend_by_day_and_provider (reader, read->since_ms, error);
}

/**
 * kp_ledger_spend_by_day_and_provider_async:
 *
 * Like kp_ledger_spend_by_day_and_provider(), on a worker thread.
 */
void
kp_ledger_spend_by_day_and_provider_async (KpLedger            *self,
                                           gint64               since_ms,
                                           GCancellable        *cancellable,
                                           GAsyncReadyCallback  callback,
                                           gpointer             user_data)
{
  Read read = { .func = read_spend_by_day, .since_ms = since_ms };

  g_return_if_fail (KP_IS_LEDGER (self));
  read_async (self, &read, kp_ledger_spend_by_day_and_provider_async, cancellable, callback,
              user_data);
}

/**
 * kp_ledger_spend_by_day_and_provider_finish:
 *
 * Returns: (transfer container) (element-type KpSpendRow): the rows, or
 *   %NULL with @error set
 */
GPtrArray *
kp_ledger_spend_by_day_and_provider_finish (KpLedger      *self,
                                            GAsyncResult  *result,
                                            GError       **error)
{
  return read_finish (self, result, kp_ledger_spend_by_day_and_provider_async, error);
}

/* How many aggregate queries (spend, recent requests) ran on this
 * connection: a test sees that the faces' run on worker threads.
 */
guint
kp_ledger_get_reads (KpLedger *self)
{
  g_return_val_if_fail (KP_IS_LEDGER (self), 0);
  return self->reads;
}

gboolean
kp_ledger_check_integrity (KpLedger  *self,
                           GError   **error)
{
  sqlite3_stmt *stmt = NULL;
  g_autofree char *result = NULL;

  g_return_val_if_fail (KP_IS_LEDGER (self), FALSE);

  if (sqlite3_prepare_v2 (self->db, "PRAGMA integrity_check", -1, &stmt, NULL) != SQLITE_OK)
    return set_sqlite_error (self, error, "check the database");
  if (sqlite3_step (stmt) == SQLITE_ROW)
    result = column_text (stmt, 0);
  sqlite3_finalize (stmt);

  if (g_strcmp0 (result, "ok") != 0)
    {
      g_set_error (error, KP_LEDGER_ERROR, KP_LEDGER_ERROR_QUERY,
                   "%s failed its integrity check: %s", self->path, result ? result : "no answer");
      return FALSE;
    }
  return TRUE;
}
