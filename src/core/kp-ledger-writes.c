/* kp-ledger-writes.c: the user's and the catalog refresh's writes, through
 * the writer thread
 *
 * Adding or removing a key, a key's options, a provider switched on or off,
 * a setting, a provider's live model list and how its refresh went: each is
 * queued for the writer thread like a request row, so the main loop never
 * waits for sqlite (nor for another program's write lock). Each is written
 * in order with the rows queued before it; while writes fail it waits in
 * memory, is retried, and #KpLedger:problem says so, as for rows. What
 * this process set, kp_ledger_get_setting() returns at once.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include "kp-ledger-internal.h"
#include "kp-provider.h"

void
kp_ledger_queued_setting_free (gpointer data)
{
  QueuedSetting *queued = data;

  g_free (queued->value);
  g_free (queued);
}

static GTask *
new_task (KpLedger            *self,
          gpointer             source_tag,
          GAsyncReadyCallback  callback,
          gpointer             user_data)
{
  GTask *task;

  if (callback == NULL)
    return NULL;
  task = g_task_new (self, NULL, callback, user_data);
  g_task_set_source_tag (task, source_tag);
  return task;
}

/* A key removed meanwhile has nothing left to change. */
static gboolean
ignore_not_found (gboolean   done,
                  GError   **error)
{
  if (!done && error != NULL && g_error_matches (*error, KP_LEDGER_ERROR,
                                                 KP_LEDGER_ERROR_NOT_FOUND))
    {
      g_clear_error (error);
      return TRUE;
    }
  return done;
}

/* Settings ----------------------------------------------------------------- */

typedef struct
{
  char    *key;
  char    *value;
  guint64  serial;
} SettingOp;

static void
setting_op_free (gpointer data)
{
  SettingOp *op = data;

  g_free (op->key);
  g_free (op->value);
  g_free (op);
}

static gboolean
write_setting (KpLedger  *writer,
               gpointer   data,
               gint64    *result,
               GError   **error)
{
  SettingOp *op = data;

  return kp_ledger_set_setting (writer, op->key, op->value, error);
}

/* The ledger's thread: once the newest value of @key is written (or refused),
 * the database says what it is.
 */
static void
setting_settled (KpLedger *self,
                 gpointer  data)
{
  SettingOp *op = data;
  QueuedSetting *queued = g_hash_table_lookup (self->queued_settings, op->key);

  if (queued != NULL && queued->serial == op->serial)
    g_hash_table_remove (self->queued_settings, op->key);
}

/**
 * kp_ledger_set_setting_async:
 * @self: a #KpLedger
 * @key: the setting
 * @value: (nullable): its new value, or %NULL to remove it
 * @callback: (nullable): called once it is written, or with
 *   %KP_LEDGER_ERROR_PENDING when writes fail and it waits in memory
 * @user_data: data for @callback
 *
 * Like kp_ledger_set_setting(), without blocking the caller.
 * kp_ledger_get_setting() returns @value (%NULL once removed) from now on.
 */
void
kp_ledger_set_setting_async (KpLedger            *self,
                             const char          *key,
                             const char          *value,
                             GAsyncReadyCallback  callback,
                             gpointer             user_data)
{
  SettingOp *op;
  QueuedSetting *queued;
  g_autofree char *op_key = NULL;

  g_return_if_fail (KP_IS_LEDGER (self));
  g_return_if_fail (key != NULL);

  op = g_new0 (SettingOp, 1);
  op->key = g_strdup (key);
  op->value = g_strdup (value);
  op->serial = ++self->setting_serial;

  queued = g_new0 (QueuedSetting, 1);
  queued->value = g_strdup (value);
  queued->serial = op->serial;
  g_hash_table_replace (self->queued_settings, g_strdup (key), queued);

  op_key = g_strconcat ("setting:", key, NULL);
  kp_ledger_push_op (self, write_setting, op, setting_op_free, setting_settled, op_key, FALSE,
                     new_task (self, kp_ledger_set_setting_async, callback, user_data));
}

/* Providers ---------------------------------------------------------------- */

typedef struct
{
  char     *provider;
  gboolean  enabled;
} ProviderOp;

static void
provider_op_free (gpointer data)
{
  ProviderOp *op = data;

  g_free (op->provider);
  g_free (op);
}

static gboolean
write_provider_enabled (KpLedger  *writer,
                        gpointer   data,
                        gint64    *result,
                        GError   **error)
{
  ProviderOp *op = data;

  return kp_ledger_set_provider_enabled (writer, op->provider, op->enabled, error);
}

/**
 * kp_ledger_set_provider_enabled_async:
 * @callback: (nullable): as for kp_ledger_set_setting_async()
 *
 * Like kp_ledger_set_provider_enabled(), without blocking the caller.
 */
void
kp_ledger_set_provider_enabled_async (KpLedger            *self,
                                      const char          *provider,
                                      gboolean             enabled,
                                      GAsyncReadyCallback  callback,
                                      gpointer             user_data)
{
  ProviderOp *op;
  g_autofree char *op_key = NULL;

  g_return_if_fail (KP_IS_LEDGER (self));
  g_return_if_fail (provider != NULL);

  op = g_new0 (ProviderOp, 1);
  op->provider = g_strdup (provider);
  op->enabled = enabled;
  op_key = g_strconcat ("provider:", provider, NULL);
  kp_ledger_push_op (self, write_provider_enabled, op, provider_op_free, NULL, op_key, FALSE,
                     new_task (self, kp_ledger_set_provider_enabled_async, callback, user_data));
}

/* Keys --------------------------------------------------------------------- */

typedef struct
{
  gint64  id;
  char   *provider;
  char   *label;
  double  multiplier;
  gboolean enabled;
  char   *source;
  char   *env_var;
  char   *fingerprint;
} KeyOp;

static void
key_op_free (gpointer data)
{
  KeyOp *op = data;

  g_free (op->provider);
  g_free (op->label);
  g_free (op->source);
  g_free (op->env_var);
  g_free (op->fingerprint);
  g_free (op);
}

static gboolean
write_key_options (KpLedger  *writer,
                   gpointer   data,
                   gint64    *result,
                   GError   **error)
{
  KeyOp *op = data;

  return ignore_not_found (kp_ledger_set_credential_options (writer, op->id, op->multiplier,
                                                             op->enabled, error), error);
}

/**
 * kp_ledger_set_credential_options_async:
 * @callback: (nullable): as for kp_ledger_set_setting_async()
 *
 * Like kp_ledger_set_credential_options(), without blocking the caller. A
 * key removed meanwhile is skipped.
 */
void
kp_ledger_set_credential_options_async (KpLedger            *self,
                                        gint64               id,
                                        double               multiplier,
                                        gboolean             enabled,
                                        GAsyncReadyCallback  callback,
                                        gpointer             user_data)
{
  KeyOp *op;
  g_autofree char *op_key = NULL;

  g_return_if_fail (KP_IS_LEDGER (self));
  g_return_if_fail (multiplier > 0);

  op = g_new0 (KeyOp, 1);
  op->id = id;
  op->multiplier = multiplier;
  op->enabled = enabled;
  op_key = g_strdup_printf ("options:%" G_GINT64_FORMAT, id);
  kp_ledger_push_op (self, write_key_options, op, key_op_free, NULL, op_key, FALSE,
                     new_task (self, kp_ledger_set_credential_options_async, callback, user_data));
}

static gboolean
write_key_removal (KpLedger  *writer,
                   gpointer   data,
                   gint64    *result,
                   GError   **error)
{
  KeyOp *op = data;

  return ignore_not_found (kp_ledger_remove_credential (writer, op->id, error), error);
}

/**
 * kp_ledger_remove_credential_async:
 * @callback: (nullable): as for kp_ledger_set_setting_async()
 *
 * Like kp_ledger_remove_credential(), without blocking the caller. A key
 * that is gone already is no error.
 */
void
kp_ledger_remove_credential_async (KpLedger            *self,
                                   gint64               id,
                                   GAsyncReadyCallback  callback,
                                   gpointer             user_data)
{
  KeyOp *op;

  g_return_if_fail (KP_IS_LEDGER (self));

  op = g_new0 (KeyOp, 1);
  op->id = id;
  kp_ledger_push_op (self, write_key_removal, op, key_op_free, NULL, NULL, FALSE,
                     new_task (self, kp_ledger_remove_credential_async, callback, user_data));
}

static gboolean
write_new_key (KpLedger  *writer,
               gpointer   data,
               gint64    *result,
               GError   **error)
{
  KeyOp *op = data;

  *result = kp_ledger_add_credential (writer, op->provider, op->label, op->multiplier,
                                      op->source, op->env_var, op->fingerprint, error);
  return *result != 0;
}

/**
 * kp_ledger_add_credential_async:
 * @callback: called on this thread's main context with the new key's id
 *   (see kp_ledger_add_credential_finish())
 *
 * Like kp_ledger_add_credential(), without blocking the caller. The caller
 * hears back once the row is written, or with the error that kept it from
 * being written: a new key never waits in memory.
 */
void
kp_ledger_add_credential_async (KpLedger            *self,
                                const char          *provider,
                                const char          *label,
                                double               multiplier,
                                const char          *source,
                                const char          *env_var,
                                const char          *fingerprint,
                                GAsyncReadyCallback  callback,
                                gpointer             user_data)
{
  KeyOp *op;

  g_return_if_fail (KP_IS_LEDGER (self));
  g_return_if_fail (provider != NULL);
  g_return_if_fail (multiplier > 0);
  g_return_if_fail (callback != NULL);

  op = g_new0 (KeyOp, 1);
  op->provider = g_strdup (provider);
  op->label = g_strdup (label);
  op->multiplier = multiplier;
  op->source = g_strdup (source);
  op->env_var = g_strdup (env_var);
  op->fingerprint = g_strdup (fingerprint);
  kp_ledger_push_op (self, write_new_key, op, key_op_free, NULL, NULL, TRUE,
                     new_task (self, kp_ledger_add_credential_async, callback, user_data));
}

/**
 * kp_ledger_add_credential_finish:
 *
 * Returns: the new key's id, or 0 with @error set
 */
gint64
kp_ledger_add_credential_finish (KpLedger      *self,
                                 GAsyncResult  *result,
                                 GError       **error)
{
  gssize id;

  g_return_val_if_fail (g_task_is_valid (result, self), 0);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == kp_ledger_add_credential_async,
                        0);

  id = g_task_propagate_int (G_TASK (result), error);
  return id > 0 ? id : 0;
}

/* The catalog refresh ------------------------------------------------------- */

typedef struct
{
  char         *provider;
  char         *source;
  GArray       *models;    /* of KpLiveModel, deep copies */
  gint64        refreshed_at;
  KpRefreshRow *refresh;   /* set for how the refresh went; then the others are unused */
} CatalogOp;

static void
catalog_op_free (gpointer data)
{
  CatalogOp *op = data;

  g_free (op->provider);
  g_free (op->source);
  g_clear_pointer (&op->models, g_array_unref);
  g_clear_pointer (&op->refresh, kp_refresh_row_free);
  g_free (op);
}

static gboolean
write_live_models (KpLedger  *writer,
                   gpointer   data,
                   gint64    *result,
                   GError   **error)
{
  CatalogOp *op = data;

  return kp_ledger_write_live_models (writer, op->provider, op->source, op->models,
                                      op->refreshed_at, error);
}

/**
 * kp_ledger_save_live_models_async:
 * @models: (element-type KpLiveModel): the list; copied
 * @callback: (nullable): as for kp_ledger_set_setting_async()
 *
 * Like kp_ledger_save_live_models(), without blocking the caller. A newer
 * list of the same provider replaces one that waits in memory.
 */
void
kp_ledger_save_live_models_async (KpLedger            *self,
                                  const char          *provider,
                                  const char          *source,
                                  GArray              *models,
                                  gint64               refreshed_at,
                                  GAsyncReadyCallback  callback,
                                  gpointer             user_data)
{
  CatalogOp *op;
  g_autofree char *op_key = NULL;

  g_return_if_fail (KP_IS_LEDGER (self));
  g_return_if_fail (provider != NULL && source != NULL && models != NULL);

  op = g_new0 (CatalogOp, 1);
  op->provider = g_strdup (provider);
  op->source = g_strdup (source);
  op->refreshed_at = refreshed_at;
  op->models = g_array_sized_new (FALSE, TRUE, sizeof (KpLiveModel), models->len);
  g_array_set_clear_func (op->models, kp_live_model_clear);
  for (guint i = 0; i < models->len; i++)
    {
      KpLiveModel copy = g_array_index (models, KpLiveModel, i);

      copy.upstream_id = g_strdup (copy.upstream_id);
      g_array_append_val (op->models, copy);
    }
  op_key = g_strconcat ("models:", provider, NULL);
  kp_ledger_push_op (self, write_live_models, op, catalog_op_free, NULL, op_key, FALSE,
                     new_task (self, kp_ledger_save_live_models_async, callback, user_data));
}

static gboolean
write_refresh (KpLedger  *writer,
               gpointer   data,
               gint64    *result,
               GError   **error)
{
  CatalogOp *op = data;

  return kp_ledger_save_refresh (writer, op->refresh, error);
}

/**
 * kp_ledger_save_refresh_async:
 * @row: how the refresh went; copied
 * @callback: (nullable): as for kp_ledger_set_setting_async()
 *
 * Like kp_ledger_save_refresh(), without blocking the caller.
 */
void
kp_ledger_save_refresh_async (KpLedger            *self,
                              const KpRefreshRow  *row,
                              GAsyncReadyCallback  callback,
                              gpointer             user_data)
{
  CatalogOp *op;
  g_autofree char *op_key = NULL;

  g_return_if_fail (KP_IS_LEDGER (self));
  g_return_if_fail (row != NULL && row->provider != NULL);

  op = g_new0 (CatalogOp, 1);
  op->refresh = g_new0 (KpRefreshRow, 1);
  *op->refresh = *row;
  op->refresh->provider = g_strdup (row->provider);
  op->refresh->error = g_strdup (row->error);
  op->refresh->currency = g_strdup (row->currency);
  op_key = g_strconcat ("refresh:", row->provider, NULL);
  kp_ledger_push_op (self, write_refresh, op, catalog_op_free, NULL, op_key, FALSE,
                     new_task (self, kp_ledger_save_refresh_async, callback, user_data));
}

/**
 * kp_ledger_write_finish:
 *
 * Finishes any of the writes above but kp_ledger_add_credential_async().
 *
 * Returns: %TRUE once written; %FALSE with @error set otherwise
 *   (%KP_LEDGER_ERROR_PENDING: it waits in memory)
 */
gboolean
kp_ledger_write_finish (KpLedger      *self,
                        GAsyncResult  *result,
                        GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  return g_task_propagate_int (G_TASK (result), error) >= 0;
}
