/* kp-ledger-internal.h: what the rooms of the ledger share
 *
 * Only kp-ledger.c, kp-ledger-settings.c, kp-ledger-rows.c,
 * kp-ledger-writer.c, kp-ledger-reads.c and kp-ledger-clients.c include
 * this.
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
GPtrArray    *kp_ledger_read_request_rows (KpLedger      *self,
                                           sqlite3_stmt  *stmt,
                                           GError       **error);
GPtrArray    *kp_ledger_read_spend_rows   (KpLedger      *self,
                                           sqlite3_stmt  *stmt,
                                           gboolean       with_provider,
                                           GError       **error);

/* kp-ledger-writer.c */
void          kp_ledger_stop_writer       (KpLedger      *self);

G_END_DECLS
