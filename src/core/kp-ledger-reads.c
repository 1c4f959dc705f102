/* kp-ledger-reads.c: requests, problems and spend read back, on the
 * caller's connection or on a worker thread's read-only one
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include <sqlite3.h>

#include "kp-ledger-internal.h"
#include "kp-ledger-private.h"

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
  sqlite3_stmt *stmt;

  g_return_val_if_fail (KP_IS_LEDGER (self), NULL);

  stmt = kp_ledger_prepare (self,
                            "SELECT " KP_LEDGER_REQUEST_COLUMNS " FROM requests "
                            "ORDER BY id DESC LIMIT ?", error);
  if (stmt == NULL)
    return NULL;
  sqlite3_bind_int (stmt, 1, limit);
  return kp_ledger_read_request_rows (self, stmt, error);
}

/* The rows of a query that selects what kp_ledger_recent_requests() does. */
GPtrArray *
kp_ledger_read_request_rows (KpLedger      *self,
                             sqlite3_stmt  *stmt,
                             GError       **error)
{
  g_autoptr(GPtrArray) rows = g_ptr_array_new_with_free_func ((GDestroyNotify)kp_request_row_free);
  int rc;

  self->reads++;
  while ((rc = sqlite3_step (stmt)) == SQLITE_ROW)
    {
      KpRequestRow *row = g_new0 (KpRequestRow, 1);

      row->request_id = kp_ledger_column_text (stmt, 0);
      row->time_ms = sqlite3_column_int64 (stmt, 1);
      row->api = kp_ledger_column_text (stmt, 2);
      row->model = kp_ledger_column_text (stmt, 3);
      row->provider = kp_ledger_column_text (stmt, 4);
      row->credential_id = sqlite3_column_int64 (stmt, 5);
      row->upstream_model = kp_ledger_column_text (stmt, 6);
      row->status = sqlite3_column_int (stmt, 7);
      row->outcome = kp_ledger_column_text (stmt, 8);
      row->error = kp_ledger_column_text (stmt, 9);
      row->attempts = sqlite3_column_int (stmt, 10);
      row->prompt_tokens = sqlite3_column_int64 (stmt, 11);
      row->completion_tokens = sqlite3_column_int64 (stmt, 12);
      row->cached_tokens = sqlite3_column_int64 (stmt, 13);
      row->reasoning_tokens = sqlite3_column_int64 (stmt, 14);
      row->cost_nano = sqlite3_column_int64 (stmt, 15);
      row->cost_source = kp_ledger_column_text (stmt, 16);
      row->ttfb_ms = sqlite3_column_type (stmt, 17) == SQLITE_NULL ? -1 : sqlite3_column_int64 (stmt, 17);
      row->total_ms = sqlite3_column_int64 (stmt, 18);
      row->streamed = sqlite3_column_int (stmt, 19) != 0;
      row->cache_write_tokens = sqlite3_column_int64 (stmt, 20);
      row->client_id = (guint)sqlite3_column_int64 (stmt, 21);
      row->client_address = kp_ledger_column_text (stmt, 22);
      row->has_credits = sqlite3_column_type (stmt, 23) != SQLITE_NULL;
      row->credits = row->has_credits ? sqlite3_column_double (stmt, 23) : 0;
      row->tokens_estimated = sqlite3_column_int (stmt, 24) != 0;
      g_ptr_array_add (rows, row);
    }
  sqlite3_reset (stmt);

  if (rc != SQLITE_DONE)
    {
      kp_ledger_set_sqlite_error (self, error, "read the requests");
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
  stmt = kp_ledger_prepare (self,
                            "SELECT * FROM (SELECT 1, last_time, count, status, method, path, "
                            "NULL, NULL, code, NULL, client FROM refusals "
                            "ORDER BY last_time DESC, id DESC LIMIT ?1) "
                            "UNION ALL "
                            "SELECT * FROM (SELECT 0, time, 1, status, NULL, NULL, model, "
                            "dialect, outcome, error, client_address FROM requests "
                            "WHERE (status >= 400 OR outcome = 'interrupted') "
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
      row->method = kp_ledger_column_text (stmt, 4);
      row->path = kp_ledger_column_text (stmt, 5);
      row->model = kp_ledger_column_text (stmt, 6);
      row->api = kp_ledger_column_text (stmt, 7);
      row->code = kp_ledger_column_text (stmt, 8);
      row->error = kp_ledger_column_text (stmt, 9);
      row->client = kp_ledger_column_text (stmt, 10);
      g_ptr_array_add (rows, row);
    }
  sqlite3_reset (stmt);

  if (rc != SQLITE_DONE)
    {
      kp_ledger_set_sqlite_error (self, error, "read the recent problems");
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

KpLedger *
kp_ledger_open_reader (const char  *path,
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

  reader = kp_ledger_open_reader (self->path, &error);
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
GPtrArray *
kp_ledger_read_spend_rows (KpLedger      *self,
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
      row->key = kp_ledger_column_text (stmt, column++);
      if (with_provider)
        row->provider = kp_ledger_column_text (stmt, column++);
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
      kp_ledger_set_sqlite_error (self, error, "add up the spend");
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

  stmt = kp_ledger_prepare (self,
                            "SELECT strftime('%Y-%m-%d', time / 1000, 'unixepoch', 'localtime'), "
                            "COALESCE(provider, '(none)'), COUNT(*), "
                            "SUM(CASE WHEN cost_source != 'unknown' THEN cost_nano ELSE 0 END), "
                            "SUM(cost_source = 'unknown' AND outcome IN ('ok', 'interrupted')), "
                            "SUM(prompt_tokens), SUM(completion_tokens) FROM requests WHERE time "
                            ">= ? GROUP BY 1, 2 ORDER BY 1, 2", error);
  if (stmt == NULL)
    return NULL;
  sqlite3_bind_int64 (stmt, 1, since_ms);
  return kp_ledger_read_spend_rows (self, stmt, TRUE, error);
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
    [KP_SPEND_BY_CLIENT] =
      "SELECT CAST(client_id AS TEXT), COUNT(*), "
      "SUM(CASE WHEN cost_source != 'unknown' THEN cost_nano ELSE 0 END), "
      "SUM(cost_source = 'unknown' AND outcome IN ('ok', 'interrupted')), "
      "SUM(prompt_tokens), SUM(completion_tokens) FROM requests WHERE time >= ? "
      "GROUP BY 1 ORDER BY 3 DESC, 1",
  };
  sqlite3_stmt *stmt;

  g_return_val_if_fail (KP_IS_LEDGER (self), NULL);
  g_return_val_if_fail (by <= KP_SPEND_BY_CLIENT, NULL);

  stmt = kp_ledger_prepare (self, queries[by], error);
  if (stmt == NULL)
    return NULL;
  sqlite3_bind_int64 (stmt, 1, since_ms);
  return kp_ledger_read_spend_rows (self, stmt, FALSE, error);
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
  g_return_if_fail (by <= KP_SPEND_BY_CLIENT);
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
