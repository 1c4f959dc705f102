/* kp-ledger-internal.h: what the rooms of the ledger share
 *
 * Only kp-ledger.c and kp-ledger-*.c include this.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <sqlite3.h>

#include "kp-ledger.h"

G_BEGIN_DECLS

struct _KpLedger
{
  GObject     parent_instance;

  sqlite3    *db;
  char       *path;
  GHashTable *statements;   /* static SQL text → sqlite3_stmt */
  GThread    *writer;       /* writes request rows; started on first use */
  GAsyncQueue *queue;       /* of Job, for the writer */
  gboolean    writer_busy;  /* under the queue's lock: the writer holds jobs */
  gint        wal_full;     /* atomic: the WAL wants a checkpoint (see kp-ledger-writer.c) */
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
  GHashTable *queued_settings;  /* key → QueuedSetting: set, not yet known written */
  guint64     setting_serial;
  guint       reads;        /* aggregate queries run on this connection, for tests */
};

/* Any other write, run by the writer thread inside the transaction of its
 * batch, on the writer's connection; @result is what the caller hears back
 * (a new row's id).
 */
typedef gboolean (*KpLedgerOpFunc) (KpLedger  *writer,
                                    gpointer   data,
                                    gint64    *result,
                                    GError   **error);

/* Run on the ledger's thread once an op's fate is known (written, refused,
 * or replaced by a newer one), with the ledger.
 */
typedef void (*KpLedgerOpSettled) (KpLedger *self,
                                   gpointer  data);

/* A request row, a refusal, a key's state or an op, on its way to the
 * writer thread.
 */
typedef struct
{
  KpRequestRow  row;
  GArray       *attempts;   /* of KpAttemptRow, deep copies */
  KpRefusalRow *refusal;    /* set for a refusal; then row and attempts are unused */
  KpCredentialRow *state;   /* set for a key's state (id, state, state_until, last_error) */
  gboolean      merge;      /* the refusal adds to the newest row like it */
  GTask        *task;       /* NULL once the caller heard that the row waits */

  KpLedgerOpFunc    op;     /* set for an op; then the fields above but task are unused */
  gpointer          op_data;
  GDestroyNotify    op_data_free;
  KpLedgerOpSettled op_settled;  /* nullable */
  char             *op_key;      /* nullable: a newer op of the same key replaces one that waits */
  gboolean          op_answer;   /* its caller waits for the answer: it never waits in memory */
  gint64            op_result;
  gint64            queued_us;   /* monotonic */
} Job;

/* How long a connection waits for another's write lock. The writer thread
 * waits briefly: a request's response ends once its row is written or
 * waits in memory. A lock held longer than BUSY_PROBLEM_AFTER_MS is shown.
 */
#define BUSY_TIMEOUT_MS        2000
#define WRITER_BUSY_TIMEOUT_MS 100
#define BUSY_RETRY_MAX_MS      1000
#define BUSY_PROBLEM_AFTER_MS  2000

/* kp-ledger.c: the connection and its helpers */
KpLedger     *kp_ledger_open_connection   (const char    *path,
                                           gboolean       check,
                                           GError       **error);
void          kp_ledger_update_problem    (KpLedger      *self);
void          kp_ledger_emit_refusals_written (KpLedger  *self);
gboolean      kp_ledger_set_sqlite_error  (KpLedger      *self,
                                           GError       **error,
                                           const char    *doing);
gboolean      kp_ledger_exec              (KpLedger      *self,
                                           const char    *sql,
                                           const char    *doing,
                                           GError       **error);
gboolean      kp_ledger_run               (KpLedger      *self,
                                           const char    *sql,
                                           const char    *doing,
                                           GError       **error);
sqlite3_stmt *kp_ledger_prepare           (KpLedger      *self,
                                           const char    *sql,
                                           GError       **error);
void          kp_ledger_bind_text         (sqlite3_stmt  *stmt,
                                           int            index,
                                           const char    *text);
char         *kp_ledger_column_text       (sqlite3_stmt  *stmt,
                                           int            index);
gboolean      kp_ledger_step_done         (KpLedger      *self,
                                           sqlite3_stmt  *stmt,
                                           const char    *doing,
                                           GError       **error);

/* kp-ledger-now.c */
void          kp_ledger_watch_wal         (KpLedger      *self);
void          kp_ledger_watch_writer_wal  (KpLedger      *self,
                                           KpLedger      *writer);

/* kp-ledger-settings.c */
gboolean      kp_ledger_write_live_models (KpLedger      *self,
                                           const char    *provider,
                                           const char    *source,
                                           GArray        *models,
                                           gint64         refreshed_at,
                                           GError       **error);

/* kp-ledger-rows.c: one job's rows, inside a transaction the caller holds */
gboolean      kp_ledger_insert_request    (KpLedger               *self,
                                           const KpRequestRow     *row,
                                           const KpAttemptRow     *attempts,
                                           guint                   n_attempts,
                                           GError                **error);
gboolean      kp_ledger_insert_refusal    (KpLedger               *self,
                                           const KpRefusalRow     *row,
                                           gboolean                merge,
                                           GError                **error);
gboolean      kp_ledger_insert_state      (KpLedger               *self,
                                           const KpCredentialRow  *row,
                                           GError                **error);
void          kp_ledger_request_row_clear (KpRequestRow           *row);

/* kp-ledger-reads.c: rows of the reading queries, and a read-only
 * connection for a worker thread */
KpLedger     *kp_ledger_open_reader       (const char    *path,
                                           GError       **error);
/* What kp_ledger_read_request_rows() reads, in its order. */
#define KP_LEDGER_REQUEST_COLUMNS \
  "request_id, time, dialect, model, provider, credential_id, upstream_model, status, " \
  "outcome, error, attempts, prompt_tokens, completion_tokens, cached_tokens, " \
  "reasoning_tokens, cost_nano, cost_source, ttfb_ms, total_ms, streamed, " \
  "cache_write_tokens, client_id, client_address, credits, tokens_estimated"

/* What every spend query sums after the output tokens: the requests served
 * by a subscription (their cost is no spend) and the credits used (NULL
 * when no request said any).
 */
#define KP_LEDGER_SPEND_MORE "SUM(cost_source = 'subscription'), SUM(credits)"

GPtrArray    *kp_ledger_read_request_rows (KpLedger      *self,
                                           sqlite3_stmt  *stmt,
                                           GError       **error);
GPtrArray    *kp_ledger_read_spend_rows   (KpLedger      *self,
                                           sqlite3_stmt  *stmt,
                                           gboolean       with_provider,
                                           GError       **error);

/* kp-ledger-writes.c */
typedef struct
{
  char    *value;
  guint64  serial;   /* of the write that set it */
} QueuedSetting;

void          kp_ledger_queued_setting_free (gpointer      data);

/* kp-ledger-writer.c */
void          kp_ledger_stop_writer       (KpLedger      *self);
void          kp_ledger_push_op           (KpLedger            *self,
                                           KpLedgerOpFunc       op,
                                           gpointer             op_data,
                                           GDestroyNotify       op_data_free,
                                           KpLedgerOpSettled    op_settled,
                                           const char          *op_key,
                                           gboolean             answer,
                                           GTask               *task);

G_END_DECLS
