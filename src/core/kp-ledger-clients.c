/* kp-ledger-clients.c: the requests and spend of client tokens
 *
 * Each request row records the client token it came with (client_id; 0 for
 * the main token). Budgets start a day or a month from these totals.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include "kp-ledger-internal.h"

/**
 * kp_ledger_recent_requests_of_client:
 * @client_id: the client; 0 for the main token
 *
 * Returns: (transfer container) (element-type KpRequestRow): the last
 *   @limit requests of one client, newest first
 */
GPtrArray *
kp_ledger_recent_requests_of_client (KpLedger  *self,
                                     guint      client_id,
                                     guint      limit,
                                     GError   **error)
{
  sqlite3_stmt *stmt;

  g_return_val_if_fail (KP_IS_LEDGER (self), NULL);

  stmt = kp_ledger_prepare (self,
                            "SELECT " KP_LEDGER_REQUEST_COLUMNS " FROM requests "
                            "WHERE client_id = ? ORDER BY id DESC LIMIT ?",
                            error);
  if (stmt == NULL)
    return NULL;
  sqlite3_bind_int64 (stmt, 1, client_id);
  sqlite3_bind_int (stmt, 2, limit);
  return kp_ledger_read_request_rows (self, stmt, error);
}

/**
 * kp_ledger_spend_by_client_and_provider:
 * @since_ms: unix ms; requests from then on count
 *
 * What budgets start a day or a month from.
 *
 * Returns: (transfer container) (element-type KpSpendRow): one row per
 *   client (its id in @key) and provider (NULL when none served)
 */
GPtrArray *
kp_ledger_spend_by_client_and_provider (KpLedger  *self,
                                        gint64     since_ms,
                                        GError   **error)
{
  sqlite3_stmt *stmt;

  g_return_val_if_fail (KP_IS_LEDGER (self), NULL);

  stmt = kp_ledger_prepare (self,
                            "SELECT CAST(client_id AS TEXT), provider, COUNT(*), "
                            "SUM(CASE WHEN cost_source != 'unknown' THEN cost_nano ELSE 0 END), "
                            "SUM(cost_source = 'unknown' AND outcome IN ('ok', 'interrupted')), "
                            "SUM(prompt_tokens), SUM(completion_tokens) FROM requests "
                            "WHERE time >= ? GROUP BY 1, 2", error);
  if (stmt == NULL)
    return NULL;
  sqlite3_bind_int64 (stmt, 1, since_ms);
  return kp_ledger_read_spend_rows (self, stmt, TRUE, error);
}

static void
spend_in_thread (GTask        *task,
                 gpointer      source_object,
                 gpointer      task_data,
                 GCancellable *cancellable)
{
  KpLedger *self = source_object;
  const gint64 *since_ms = task_data;
  g_autoptr(KpLedger) reader = NULL;
  g_autoptr(GError) error = NULL;
  GPtrArray *rows = NULL;

  reader = kp_ledger_open_reader (self->path, &error);
  if (reader != NULL)
    rows = kp_ledger_spend_by_client_and_provider (reader, *since_ms, &error);
  if (rows == NULL)
    g_task_return_error (task, g_steal_pointer (&error));
  else
    g_task_return_pointer (task, rows, (GDestroyNotify)g_ptr_array_unref);
}

/**
 * kp_ledger_spend_by_client_and_provider_async:
 *
 * Like kp_ledger_spend_by_client_and_provider(), on a worker thread and its
 * own read-only connection: the main loop never adds up a month of rows.
 */
void
kp_ledger_spend_by_client_and_provider_async (KpLedger            *self,
                                              gint64               since_ms,
                                              GCancellable        *cancellable,
                                              GAsyncReadyCallback  callback,
                                              gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;

  g_return_if_fail (KP_IS_LEDGER (self));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, kp_ledger_spend_by_client_and_provider_async);
  g_task_set_task_data (task, g_memdup2 (&since_ms, sizeof since_ms), g_free);
  g_task_set_return_on_cancel (task, TRUE);
  g_task_run_in_thread (task, spend_in_thread);
}

/**
 * kp_ledger_spend_by_client_and_provider_finish:
 *
 * Returns: (transfer container) (element-type KpSpendRow): the rows, or
 *   %NULL with @error set
 */
GPtrArray *
kp_ledger_spend_by_client_and_provider_finish (KpLedger      *self,
                                               GAsyncResult  *result,
                                               GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}
