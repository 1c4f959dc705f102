/* kp-ledger-settings.c: the ledger's keys, provider settings,
 * settings and catalog cache, written and read on the caller's connection
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include <string.h>

#include <sqlite3.h>

#include "kp-ledger-internal.h"
#include "kp-provider.h"

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
               "There is no key with id "
               "%" G_GINT64_FORMAT "; “keypool keys list” shows them.", id);
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

  stmt = kp_ledger_prepare (self,
                            "INSERT INTO credentials (provider, label, multiplier, created, "
                            "source, env_var, fingerprint) VALUES (?, ?, ?, ?, ?, ?, ?)", error);
  if (stmt == NULL)
    return 0;

  kp_ledger_bind_text (stmt, 1, provider);
  kp_ledger_bind_text (stmt, 2, label ? label : "");
  sqlite3_bind_double (stmt, 3, multiplier);
  sqlite3_bind_int64 (stmt, 4, g_get_real_time () / G_USEC_PER_SEC);
  kp_ledger_bind_text (stmt, 5, source ? source : "keyring");
  kp_ledger_bind_text (stmt, 6, env_var);
  kp_ledger_bind_text (stmt, 7, fingerprint);

  if (!kp_ledger_step_done (self, stmt, "save the key’s details", error))
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

  stmt = kp_ledger_prepare (self, "DELETE FROM credentials WHERE id = ?", error);
  if (stmt == NULL)
    return FALSE;
  sqlite3_bind_int64 (stmt, 1, id);
  if (!kp_ledger_step_done (self, stmt, "remove the key", error))
    return FALSE;

  return key_was_changed (self, id, error);
}

/**
 * kp_ledger_bound_reason:
 * @reason: (nullable): text a provider sent about an account
 *
 * Returns: (transfer full) (nullable): @reason as valid UTF-8, cut at a
 *   character boundary to at most %KP_LEDGER_MAX_USER_REASON bytes
 */
char *
kp_ledger_bound_reason (const char *reason)
{
  g_autofree char *valid = NULL;
  const char *end;

  if (reason == NULL)
    return NULL;
  valid = g_utf8_make_valid (reason, -1);
  if (strlen (valid) <= KP_LEDGER_MAX_USER_REASON)
    return g_steal_pointer (&valid);
  end = g_utf8_find_prev_char (valid, valid + KP_LEDGER_MAX_USER_REASON + 1);
  return g_strndup (valid, end - valid);
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
  g_free (row->user_url);
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

  stmt = kp_ledger_prepare (self,
                            "SELECT id, provider, label, multiplier, enabled, created, source, "
                            "env_var, "
                            "fingerprint, state, state_until, last_error, user_url FROM "
                            "credentials ORDER BY id", error);
  if (stmt == NULL)
    return NULL;

  while ((rc = sqlite3_step (stmt)) == SQLITE_ROW)
    {
      KpCredentialRow *row = g_new0 (KpCredentialRow, 1);

      row->id = sqlite3_column_int64 (stmt, 0);
      row->provider = kp_ledger_column_text (stmt, 1);
      row->label = kp_ledger_column_text (stmt, 2);
      row->multiplier = sqlite3_column_double (stmt, 3);
      row->enabled = sqlite3_column_int (stmt, 4) != 0;
      row->created = sqlite3_column_int64 (stmt, 5);
      row->source = kp_ledger_column_text (stmt, 6);
      row->env_var = kp_ledger_column_text (stmt, 7);
      row->fingerprint = kp_ledger_column_text (stmt, 8);
      row->state = kp_ledger_column_text (stmt, 9);
      row->state_until = sqlite3_column_int64 (stmt, 10);
      row->last_error = kp_ledger_column_text (stmt, 11);
      row->user_url = kp_ledger_column_text (stmt, 12);
      g_ptr_array_add (rows, row);
    }
  sqlite3_reset (stmt);

  if (rc != SQLITE_DONE)
    {
      kp_ledger_set_sqlite_error (self, error, "read the keys");
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

  /* A key waiting for its owner keeps the page it was given; any other
   * state forgets it.
   */
  stmt = kp_ledger_prepare (self,
                            "UPDATE credentials SET state = ?1, state_until = ?2, last_error = ?3, "
                            "user_url = CASE WHEN ?1 = 'needs_user' THEN user_url END "
                            "WHERE id = ?4",
                            error);
  if (stmt == NULL)
    return FALSE;
  kp_ledger_bind_text (stmt, 1, state);
  sqlite3_bind_int64 (stmt, 2, until);
  kp_ledger_bind_text (stmt, 3, last_error);
  sqlite3_bind_int64 (stmt, 4, id);
  if (!kp_ledger_step_done (self, stmt, "save the key’s state", error))
    return FALSE;

  return key_was_changed (self, id, error);
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

  stmt = kp_ledger_prepare (self, "UPDATE credentials SET multiplier = ?, enabled = ? WHERE id = ?",
                            error);
  if (stmt == NULL)
    return FALSE;
  sqlite3_bind_double (stmt, 1, multiplier);
  sqlite3_bind_int (stmt, 2, enabled ? 1 : 0);
  sqlite3_bind_int64 (stmt, 3, id);
  if (!kp_ledger_step_done (self, stmt, "save the key’s details", error))
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
  stmt = kp_ledger_prepare (self,
                            "UPDATE credentials SET fingerprint = ?, state = 'ok', state_until = "
                            "0, last_error = NULL WHERE id = ?", error);
  if (stmt == NULL)
    return FALSE;
  kp_ledger_bind_text (stmt, 1, fingerprint);
  sqlite3_bind_int64 (stmt, 2, id);
  return kp_ledger_step_done (self, stmt, "save the key’s details", error);
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

  stmt = kp_ledger_prepare (self,
                            "INSERT INTO provider_settings (provider, enabled) VALUES (?, ?) "
                            "ON CONFLICT (provider) DO UPDATE SET enabled = "
                            "excluded.enabled", error);
  if (stmt == NULL)
    return FALSE;
  kp_ledger_bind_text (stmt, 1, provider);
  sqlite3_bind_int (stmt, 2, enabled ? 1 : 0);
  return kp_ledger_step_done (self, stmt, "save the provider setting", error);
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

  stmt = kp_ledger_prepare (self, "SELECT provider FROM provider_settings WHERE enabled = 0",
                            error);
  if (stmt == NULL)
    return NULL;
  while ((rc = sqlite3_step (stmt)) == SQLITE_ROW)
    g_hash_table_add (set, kp_ledger_column_text (stmt, 0));
  sqlite3_reset (stmt);

  if (rc != SQLITE_DONE)
    {
      kp_ledger_set_sqlite_error (self, error, "read the provider settings");
      return NULL;
    }
  return g_steal_pointer (&set);
}

char *
kp_ledger_get_setting (KpLedger   *self,
                       const char *key)
{
  QueuedSetting *queued;
  sqlite3_stmt *stmt;
  char *value = NULL;

  g_return_val_if_fail (KP_IS_LEDGER (self), NULL);

  /* What this process set is what it reads, even before it is written. */
  queued = g_hash_table_lookup (self->queued_settings, key);
  if (queued != NULL)
    return g_strdup (queued->value);

  stmt = kp_ledger_prepare (self, "SELECT value FROM settings WHERE key = ?", NULL);
  if (stmt == NULL)
    return NULL;
  kp_ledger_bind_text (stmt, 1, key);
  if (sqlite3_step (stmt) == SQLITE_ROW)
    value = kp_ledger_column_text (stmt, 0);
  sqlite3_reset (stmt);
  return value;
}

/**
 * kp_ledger_set_setting:
 * @value: (nullable): the setting's new value, or %NULL to remove it
 */
gboolean
kp_ledger_set_setting (KpLedger    *self,
                       const char  *key,
                       const char  *value,
                       GError     **error)
{
  sqlite3_stmt *stmt;

  g_return_val_if_fail (KP_IS_LEDGER (self), FALSE);
  g_return_val_if_fail (key != NULL, FALSE);

  g_hash_table_remove (self->queued_settings, key);
  if (value == NULL)
    {
      stmt = kp_ledger_prepare (self, "DELETE FROM settings WHERE key = ?", error);
      if (stmt == NULL)
        return FALSE;
      kp_ledger_bind_text (stmt, 1, key);
      return kp_ledger_step_done (self, stmt, "remove a setting", error);
    }
  stmt = kp_ledger_prepare (self,
                            "INSERT INTO settings (key, value) VALUES (?, ?) "
                            "ON CONFLICT (key) DO UPDATE SET value = excluded.value", error);
  if (stmt == NULL)
    return FALSE;
  kp_ledger_bind_text (stmt, 1, key);
  kp_ledger_bind_text (stmt, 2, value);
  return kp_ledger_step_done (self, stmt, "save a setting", error);
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

/* Replaces the provider's cached model list, inside a transaction the
 * caller holds.
 */
gboolean
kp_ledger_write_live_models (KpLedger    *self,
                             const char  *provider,
                             const char  *source,
                             GArray      *models,
                             gint64       refreshed_at,
                             GError     **error)
{
  sqlite3_stmt *stmt;

  stmt = kp_ledger_prepare (self, "DELETE FROM catalog_models WHERE provider = ?", error);
  if (stmt == NULL)
    return FALSE;
  kp_ledger_bind_text (stmt, 1, provider);
  if (!kp_ledger_step_done (self, stmt, "save the model list", error))
    return FALSE;

  for (guint i = 0; i < models->len; i++)
    {
      const KpLiveModel *model = &g_array_index (models, KpLiveModel, i);

      stmt = kp_ledger_prepare (self,
                                "INSERT OR IGNORE INTO catalog_models (provider, n, upstream_id, "
                                "input, output, cached_input, context, source, refreshed_at) "
                                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", error);
      if (stmt == NULL)
        return FALSE;
      kp_ledger_bind_text (stmt, 1, provider);
      sqlite3_bind_int (stmt, 2, i);
      kp_ledger_bind_text (stmt, 3, model->upstream_id);
      bind_price (stmt, 4, model->input);
      bind_price (stmt, 5, model->output);
      bind_price (stmt, 6, model->cached_input);
      sqlite3_bind_int64 (stmt, 7, MAX (model->context, 0));
      kp_ledger_bind_text (stmt, 8, source);
      sqlite3_bind_int64 (stmt, 9, refreshed_at);
      if (!kp_ledger_step_done (self, stmt, "save the model list", error))
        return FALSE;
    }
  return TRUE;
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
  g_return_val_if_fail (KP_IS_LEDGER (self), FALSE);
  g_return_val_if_fail (provider != NULL && source != NULL && models != NULL, FALSE);

  if (!kp_ledger_exec (self, "BEGIN IMMEDIATE", "save the model list", error))
    return FALSE;
  if (kp_ledger_write_live_models (self, provider, source, models, refreshed_at, error) &&
      kp_ledger_exec (self, "COMMIT", "save the model list", error))
    return TRUE;
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

  stmt = kp_ledger_prepare (self,
                            "SELECT upstream_id, input, output, cached_input, context, "
                            "refreshed_at "
                            "FROM catalog_models WHERE provider = ? ORDER BY n", error);
  if (stmt == NULL)
    return NULL;
  kp_ledger_bind_text (stmt, 1, provider);
  while ((rc = sqlite3_step (stmt)) == SQLITE_ROW)
    {
      KpLiveModel model = {
        .upstream_id = kp_ledger_column_text (stmt, 0),
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
      kp_ledger_set_sqlite_error (self, error, "read the model list");
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

  stmt = kp_ledger_prepare (self,
                            "INSERT INTO provider_refresh (provider, refreshed_at, ok_at, error, "
                            "balance, currency, balance_at) VALUES (?, ?, ?, ?, ?, ?, ?) "
                            "ON CONFLICT (provider) DO UPDATE SET "
                            "refreshed_at = excluded.refreshed_at, ok_at = excluded.ok_at, "
                            "error = excluded.error, balance = excluded.balance, "
                            "currency = excluded.currency, balance_at = excluded.balance_at",
                            error);
  if (stmt == NULL)
    return FALSE;
  kp_ledger_bind_text (stmt, 1, row->provider);
  sqlite3_bind_int64 (stmt, 2, row->refreshed_at);
  sqlite3_bind_int64 (stmt, 3, row->ok_at);
  kp_ledger_bind_text (stmt, 4, row->error);
  if (row->has_balance)
    sqlite3_bind_double (stmt, 5, row->balance);
  else
    sqlite3_bind_null (stmt, 5);
  kp_ledger_bind_text (stmt, 6, row->currency);
  sqlite3_bind_int64 (stmt, 7, row->balance_at);
  return kp_ledger_step_done (self, stmt, "save how the refresh went", error);
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

  stmt = kp_ledger_prepare (self,
                            "SELECT provider, refreshed_at, ok_at, error, balance, currency, "
                            "balance_at FROM provider_refresh ORDER BY provider", error);
  if (stmt == NULL)
    return NULL;
  while ((rc = sqlite3_step (stmt)) == SQLITE_ROW)
    {
      KpRefreshRow *row = g_new0 (KpRefreshRow, 1);

      row->provider = kp_ledger_column_text (stmt, 0);
      row->refreshed_at = sqlite3_column_int64 (stmt, 1);
      row->ok_at = sqlite3_column_int64 (stmt, 2);
      row->error = kp_ledger_column_text (stmt, 3);
      row->has_balance = sqlite3_column_type (stmt, 4) != SQLITE_NULL;
      row->balance = sqlite3_column_double (stmt, 4);
      row->currency = kp_ledger_column_text (stmt, 5);
      row->balance_at = sqlite3_column_int64 (stmt, 6);
      g_ptr_array_add (rows, row);
    }
  sqlite3_reset (stmt);

  if (rc != SQLITE_DONE)
    {
      kp_ledger_set_sqlite_error (self, error, "read how the refreshes went");
      return NULL;
    }
  return g_steal_pointer (&rows);
}

/* Requests --------------------------------------------------------------- */
