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
                            "SELECT request_id, time, dialect, model, provider, credential_id, "
                            "upstream_model, status, outcome, error, attempts, prompt_tokens, "
                            "completion_tokens, cached_tokens, reasoning_tokens, cost_nano, "
                            "cost_source, ttfb_ms, total_ms, streamed, cache_write_tokens, "
                            "client_id FROM requests WHERE client_id = ? ORDER BY id DESC LIMIT ?",
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
