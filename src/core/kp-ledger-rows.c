/* kp-ledger-rows.c: what one request, refusal or key state writes,
 * inside a transaction its caller holds
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include <sqlite3.h>

#include "kp-ledger-internal.h"

/* Refusals are a trace for the user, not an archive: the newest are kept. */
#define REFUSALS_KEPT 1000

/* One request and its attempts, inside a transaction the caller holds. */
gboolean
kp_ledger_insert_request (KpLedger            *self,
                          const KpRequestRow  *row,
                          const KpAttemptRow  *attempts,
                          guint                n_attempts,
                          GError             **error)
{
  sqlite3_stmt *stmt;
  gint64 request;

  stmt = kp_ledger_prepare (self,
                            "INSERT INTO requests (request_id, time, dialect, model, provider, "
                            "credential_id, upstream_model, status, outcome, error, attempts, "
                            "prompt_tokens, completion_tokens, cached_tokens, reasoning_tokens, "
                            "cost_nano, cost_source, ttfb_ms, total_ms, streamed, "
                            "cache_write_tokens, client_id, client_address, credits, "
                            "tokens_estimated) "
                            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
                            "?, ?, ?, ?, ?)", error);
  if (stmt == NULL)
    return FALSE;

  kp_ledger_bind_text (stmt, 1, row->request_id);
  sqlite3_bind_int64 (stmt, 2, row->time_ms);
  kp_ledger_bind_text (stmt, 3, row->api ? row->api : "openai-chat");
  kp_ledger_bind_text (stmt, 4, row->model);
  kp_ledger_bind_text (stmt, 5, row->provider);
  if (row->credential_id > 0)
    sqlite3_bind_int64 (stmt, 6, row->credential_id);
  else
    sqlite3_bind_null (stmt, 6);
  kp_ledger_bind_text (stmt, 7, row->upstream_model);
  sqlite3_bind_int (stmt, 8, row->status);
  kp_ledger_bind_text (stmt, 9, row->outcome);
  kp_ledger_bind_text (stmt, 10, row->error);
  sqlite3_bind_int (stmt, 11, row->attempts);
  sqlite3_bind_int64 (stmt, 12, row->prompt_tokens);
  sqlite3_bind_int64 (stmt, 13, row->completion_tokens);
  sqlite3_bind_int64 (stmt, 14, row->cached_tokens);
  sqlite3_bind_int64 (stmt, 15, row->reasoning_tokens);
  sqlite3_bind_int64 (stmt, 16, row->cost_nano);
  kp_ledger_bind_text (stmt, 17, row->cost_source ? row->cost_source : "unknown");
  if (row->ttfb_ms >= 0)
    sqlite3_bind_int64 (stmt, 18, row->ttfb_ms);
  else
    sqlite3_bind_null (stmt, 18);
  sqlite3_bind_int64 (stmt, 19, row->total_ms);
  sqlite3_bind_int (stmt, 20, row->streamed ? 1 : 0);
  sqlite3_bind_int64 (stmt, 21, row->cache_write_tokens);
  sqlite3_bind_int64 (stmt, 22, row->client_id);
  kp_ledger_bind_text (stmt, 23, row->client_address);
  if (row->has_credits)
    sqlite3_bind_double (stmt, 24, row->credits);
  else
    sqlite3_bind_null (stmt, 24);
  sqlite3_bind_int (stmt, 25, row->tokens_estimated ? 1 : 0);

  if (!kp_ledger_step_done (self, stmt, "record a request", error))
    return FALSE;
  request = sqlite3_last_insert_rowid (self->db);

  for (guint i = 0; i < n_attempts; i++)
    {
      stmt = kp_ledger_prepare (self,
                                "INSERT INTO attempts (request, n, provider, credential_id, "
                                "status, failure, ms) VALUES (?, ?, ?, ?, ?, ?, ?)", error);
      if (stmt == NULL)
        return FALSE;
      sqlite3_bind_int64 (stmt, 1, request);
      sqlite3_bind_int (stmt, 2, i + 1);
      kp_ledger_bind_text (stmt, 3, attempts[i].provider);
      if (attempts[i].credential_id > 0)
        sqlite3_bind_int64 (stmt, 4, attempts[i].credential_id);
      else
        sqlite3_bind_null (stmt, 4);
      sqlite3_bind_int (stmt, 5, attempts[i].status);
      kp_ledger_bind_text (stmt, 6, attempts[i].failure);
      sqlite3_bind_int64 (stmt, 7, attempts[i].ms);
      if (!kp_ledger_step_done (self, stmt, "record an attempt", error))
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

  if (!kp_ledger_run (self, "BEGIN IMMEDIATE", "record a request", error))
    return FALSE;
  if (!kp_ledger_insert_request (self, row, attempts, n_attempts, error) ||
      !kp_ledger_run (self, "COMMIT", "record a request", error))
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
gboolean
kp_ledger_insert_refusal (KpLedger            *self,
                          const KpRefusalRow  *row,
                          gboolean             merge,
                          GError             **error)
{
  sqlite3_stmt *stmt;
  gint64 id;

  if (merge)
    {
      stmt = kp_ledger_prepare (self,
                                "UPDATE refusals SET count = count + ?, last_time = "
                                "MAX(last_time, ?) "
                                "WHERE id = (SELECT MAX(id) FROM refusals WHERE status = ? AND "
                                "code = ? AND method IS ? AND path IS ? AND client IS ?)", error);
      if (stmt == NULL)
        return FALSE;
      sqlite3_bind_int64 (stmt, 1, MAX (row->count, 1));
      sqlite3_bind_int64 (stmt, 2, row->last_ms);
      sqlite3_bind_int (stmt, 3, row->status);
      kp_ledger_bind_text (stmt, 4, row->code ? row->code : "unknown");
      kp_ledger_bind_text (stmt, 5, row->method);
      kp_ledger_bind_text (stmt, 6, row->path);
      kp_ledger_bind_text (stmt, 7, row->client);
      if (!kp_ledger_step_done (self, stmt, "record a refusal", error))
        return FALSE;
      if (sqlite3_changes (self->db) > 0)
        return TRUE;
    }

  stmt = kp_ledger_prepare (self,
                            "INSERT INTO refusals (time, last_time, count, method, path, status, "
                            "code, client) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", error);
  if (stmt == NULL)
    return FALSE;
  sqlite3_bind_int64 (stmt, 1, row->time_ms);
  sqlite3_bind_int64 (stmt, 2, MAX (row->last_ms, row->time_ms));
  sqlite3_bind_int64 (stmt, 3, MAX (row->count, 1));
  kp_ledger_bind_text (stmt, 4, row->method);
  kp_ledger_bind_text (stmt, 5, row->path);
  sqlite3_bind_int (stmt, 6, row->status);
  kp_ledger_bind_text (stmt, 7, row->code ? row->code : "unknown");
  kp_ledger_bind_text (stmt, 8, row->client);
  if (!kp_ledger_step_done (self, stmt, "record a refusal", error))
    return FALSE;

  /* Ids only grow (the newest row is never deleted): the oldest go. */
  id = sqlite3_last_insert_rowid (self->db);
  if (id <= REFUSALS_KEPT)
    return TRUE;
  stmt = kp_ledger_prepare (self, "DELETE FROM refusals WHERE id <= ?", error);
  if (stmt == NULL)
    return FALSE;
  sqlite3_bind_int64 (stmt, 1, id - REFUSALS_KEPT);
  return kp_ledger_step_done (self, stmt, "forget old refusals", error);
}

/* Writer thread, inside a transaction it holds. A key removed meanwhile has
 * no state to keep: no row touched is no error here.
 */
gboolean
kp_ledger_insert_state (KpLedger               *self,
                        const KpCredentialRow  *row,
                        GError                **error)
{
  sqlite3_stmt *stmt;

  /* "needs_user" without a page keeps the one it had (the gateway saves
   * states without it); any other state forgets it.
   */
  stmt = kp_ledger_prepare (self,
                            "UPDATE credentials SET state = ?1, state_until = ?2, last_error = ?3, "
                            "user_url = CASE WHEN ?1 = 'needs_user' THEN coalesce (?5, user_url) "
                            "END WHERE id = ?4",
                            error);
  if (stmt == NULL)
    return FALSE;
  kp_ledger_bind_text (stmt, 1, row->state);
  sqlite3_bind_int64 (stmt, 2, row->state_until);
  kp_ledger_bind_text (stmt, 3, row->last_error);
  sqlite3_bind_int64 (stmt, 4, row->id);
  kp_ledger_bind_text (stmt, 5, row->user_url);
  return kp_ledger_step_done (self, stmt, "save a key’s state", error);
}

void
kp_ledger_request_row_clear (KpRequestRow *row)
{
  g_clear_pointer (&row->request_id, g_free);
  g_clear_pointer (&row->api, g_free);
  g_clear_pointer (&row->model, g_free);
  g_clear_pointer (&row->provider, g_free);
  g_clear_pointer (&row->upstream_model, g_free);
  g_clear_pointer (&row->outcome, g_free);
  g_clear_pointer (&row->error, g_free);
  g_clear_pointer (&row->cost_source, g_free);
  g_clear_pointer (&row->client_address, g_free);
}

void
kp_request_row_free (KpRequestRow *row)
{
  if (row == NULL)
    return;
  kp_ledger_request_row_clear (row);
  g_free (row);
}
