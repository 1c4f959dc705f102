/* kp-refresh.c: the catalog refresh: live models, prices and balances
 *
 * One refresh asks every usable provider at once for its model list (with
 * prices where the list has them) and its balance (where it has an
 * endpoint), each with a timeout of its own. A provider's answer is applied
 * as soon as it arrives, so a slow one holds up nobody; one that fails keeps
 * its last good list and records the error. Only one refresh runs at a
 * time: asking while one runs joins it, or queues one more after it when
 * the running one does not cover what was asked.
 *
 * Everything here is asynchronous, and the large model lists are parsed on
 * a worker thread: requests never wait for a refresh.
 *
 * This file is the object and its public calls: loading the last good
 * lists, the interval, starting and stopping, asking for a run. A run
 * itself is in kp-refresh-run.c; reading the providers' answers in
 * kp-refresh-parse.c.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include "kp-refresh-private.h"
#include "kp-gateway.h"

#define DEFAULT_INTERVAL_HOURS 6
#define DEFAULT_TIMEOUT_MS     30000

enum {
  PROP_0,
  PROP_RUNNING,
  N_PROPS
};

enum {
  FINISHED,
  N_SIGNALS
};

static GParamSpec *properties[N_PROPS];
static guint signals[N_SIGNALS];

G_DEFINE_FINAL_TYPE (KpRefresh, kp_refresh, G_TYPE_OBJECT)

G_DEFINE_QUARK (kp-refresh-error-quark, kp_refresh_error)

void
kp_refresh_result_free (KpRefreshResult *result)
{
  if (result == NULL)
    return;
  g_free (result->provider_id);
  g_free (result->summary);
  g_free (result);
}

/* Object ------------------------------------------------------------------- */

KpRefresh *
kp_refresh_new (KpGateway *gateway)
{
  KpRefresh *self;

  g_return_val_if_fail (KP_IS_GATEWAY (gateway), NULL);

  self = g_object_new (KP_TYPE_REFRESH, NULL);
  self->gateway = gateway;
  return self;
}

static void
kp_refresh_dispose (GObject *object)
{
  KpRefresh *self = (KpRefresh *)object;

  /* The gateway is going: answers still on their way find nobody to tell. */
  kp_refresh_stop (self);
  self->gateway = NULL;
  if (self->own_session != NULL)
    soup_session_abort (self->own_session);
  g_clear_object (&self->own_session);

  G_OBJECT_CLASS (kp_refresh_parent_class)->dispose (object);
}

static void
kp_refresh_finalize (GObject *object)
{
  KpRefresh *self = (KpRefresh *)object;

  g_clear_pointer (&self->states, g_hash_table_unref);
  g_clear_pointer (&self->queued, g_ptr_array_unref);

  G_OBJECT_CLASS (kp_refresh_parent_class)->finalize (object);
}

static void
kp_refresh_get_property (GObject    *object,
                         guint       prop_id,
                         GValue     *value,
                         GParamSpec *pspec)
{
  KpRefresh *self = KP_REFRESH (object);

  switch (prop_id)
    {
    case PROP_RUNNING:
      g_value_set_boolean (value, self->run != NULL);
      break;

    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
kp_refresh_class_init (KpRefreshClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = kp_refresh_dispose;
  object_class->finalize = kp_refresh_finalize;
  object_class->get_property = kp_refresh_get_property;

  /**
   * KpRefresh:running:
   *
   * Whether a refresh is in flight.
   */
  properties[PROP_RUNNING] =
    g_param_spec_boolean ("running", NULL, NULL, FALSE,
                          G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  g_object_class_install_properties (object_class, N_PROPS, properties);

  /**
   * KpRefresh::finished:
   *
   * Emitted when a refresh has asked every provider it was to ask. Each
   * provider's answer was applied (and #KpGateway::changed emitted) as it
   * arrived.
   */
  signals[FINISHED] =
    g_signal_new ("finished",
                  G_TYPE_FROM_CLASS (klass),
                  G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL,
                  G_TYPE_NONE, 0);
}

static void
kp_refresh_init (KpRefresh *self)
{
  self->states = g_hash_table_new_full (g_str_hash, g_str_equal, NULL,
                                        (GDestroyNotify)kp_refresh_row_free);
  self->queued = g_ptr_array_new_with_free_func (g_object_unref);
  self->interval_ms = (gint64)DEFAULT_INTERVAL_HOURS * 3600 * 1000;
  self->timeout_ms = DEFAULT_TIMEOUT_MS;
}


void
kp_refresh_notify_running (KpRefresh *self)
{
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_RUNNING]);
}

void
kp_refresh_emit_finished (KpRefresh *self)
{
  g_signal_emit (self, signals[FINISHED], 0);
}

/* Public ------------------------------------------------------------------- */

/**
 * kp_refresh_load:
 * @self: a #KpRefresh
 * @error: a location for a #GError
 *
 * Serves the last good model list of each provider from the database, and
 * reads how its last refresh went. Called once the catalog and the ledger
 * are loaded.
 */
gboolean
kp_refresh_load (KpRefresh  *self,
                 GError    **error)
{
  KpLedger *ledger;
  KpCatalog *catalog;
  g_autoptr(GPtrArray) rows = NULL;
  g_autoptr(GPtrArray) ids = NULL;
  g_autofree char *last = NULL;

  g_return_val_if_fail (KP_IS_REFRESH (self), FALSE);

  ledger = kp_gateway_get_ledger (self->gateway);
  catalog = kp_gateway_get_catalog (self->gateway);

  rows = kp_ledger_list_refreshes (ledger, error);
  if (rows == NULL)
    return FALSE;
  while (rows->len > 0)
    {
      KpRefreshRow *row = g_ptr_array_steal_index (rows, 0);

      g_hash_table_replace (self->states, row->provider, row);
    }

  /* Copied first: applying a list replaces providers in the catalog. */
  ids = g_ptr_array_new_with_free_func (g_free);
  for (guint i = 0; i < kp_catalog_get_providers (catalog)->len; i++)
    {
      KpProvider *provider = g_ptr_array_index (kp_catalog_get_providers (catalog), i);

      g_ptr_array_add (ids, g_strdup (kp_provider_get_id (provider)));
    }
  for (guint i = 0; i < ids->len; i++)
    {
      const char *id = g_ptr_array_index (ids, i);
      g_autoptr(GArray) models = NULL;
      gint64 listed_at = 0;

      models = kp_ledger_get_live_models (ledger, id, &listed_at, error);
      if (models == NULL)
        return FALSE;
      if (models->len > 0)
        kp_catalog_apply_live (catalog, id, models, listed_at);
    }

  last = kp_ledger_get_setting (ledger, LAST_RUN_SETTING);
  if (last == NULL || !g_ascii_string_to_signed (last, 10, 0, G_MAXINT64, &self->last_run, NULL))
    self->last_run = 0;

  kp_refresh_reload_interval (self);
  return TRUE;
}

/**
 * kp_refresh_reload_interval:
 *
 * Reads how often to refresh: `KEYPOOL_REFRESH_INTERVAL_MS` when set (0 =
 * only on demand), otherwise the `catalog-refresh-hours` setting (default 6;
 * 0 = never), and re-arms the timer. `KEYPOOL_REFRESH_TIMEOUT_MS` sets how
 * long each provider may take (default 30 s).
 */
void
kp_refresh_reload_interval (KpRefresh *self)
{
  const char *env = g_getenv ("KEYPOOL_REFRESH_INTERVAL_MS");
  const char *timeout = g_getenv ("KEYPOOL_REFRESH_TIMEOUT_MS");
  KpLedger *ledger;
  guint64 value;

  g_return_if_fail (KP_IS_REFRESH (self));

  ledger = self->gateway ? kp_gateway_get_ledger (self->gateway) : NULL;
  if (env != NULL && g_ascii_string_to_unsigned (env, 10, 0, G_MAXINT32, &value, NULL))
    self->interval_ms = (gint64)value;
  else
    {
      g_autofree char *hours = ledger ? kp_ledger_get_setting (ledger, "catalog-refresh-hours") : NULL;

      if (hours == NULL || !g_ascii_string_to_unsigned (hours, 10, 0, 24 * 365, &value, NULL))
        value = DEFAULT_INTERVAL_HOURS;
      self->interval_ms = (gint64)value * 3600 * 1000;
    }

  if (timeout != NULL && g_ascii_string_to_unsigned (timeout, 10, 1, G_MAXINT32, &value, NULL))
    self->timeout_ms = (guint)value;

  kp_refresh_schedule (self);
}

/**
 * kp_refresh_start:
 *
 * Refreshes on the timer from now on, and at once when the last refresh is
 * older than the interval.
 */
void
kp_refresh_start (KpRefresh *self)
{
  g_return_if_fail (KP_IS_REFRESH (self));

  self->started = TRUE;
  kp_refresh_schedule (self);
}

/**
 * kp_refresh_stop:
 *
 * Stops the timer and breaks off a refresh in flight; what was already
 * applied stays.
 */
void
kp_refresh_stop (KpRefresh *self)
{
  g_return_if_fail (KP_IS_REFRESH (self));

  self->started = FALSE;
  g_clear_handle_id (&self->timer_id, g_source_remove);
  if (self->run != NULL)
    g_cancellable_cancel (self->run->cancellable);
}

gint64
kp_refresh_get_interval_ms (KpRefresh *self)
{
  g_return_val_if_fail (KP_IS_REFRESH (self), 0);
  return self->interval_ms;
}

gboolean
kp_refresh_is_running (KpRefresh *self)
{
  g_return_val_if_fail (KP_IS_REFRESH (self), FALSE);
  return self->run != NULL;
}

/**
 * kp_refresh_get_last_run:
 *
 * Returns: when the last refresh of every provider ended, unix seconds; 0
 *   when there has been none
 */
gint64
kp_refresh_get_last_run (KpRefresh *self)
{
  g_return_val_if_fail (KP_IS_REFRESH (self), 0);
  return self->last_run;
}

/**
 * kp_refresh_get_state:
 *
 * Returns: (nullable): how the provider's last refresh went, or %NULL when
 *   it was never refreshed
 */
const KpRefreshRow *
kp_refresh_get_state (KpRefresh  *self,
                      const char *provider_id)
{
  g_return_val_if_fail (KP_IS_REFRESH (self), NULL);
  g_return_val_if_fail (provider_id != NULL, NULL);

  return g_hash_table_lookup (self->states, provider_id);
}

/**
 * kp_refresh_run_async:
 * @self: a #KpRefresh
 * @provider_id: (nullable): one provider, or %NULL for every usable one
 * @cancellable: (nullable): a #GCancellable; it stops the wait, not the refresh
 * @callback: called when the refresh is done
 * @user_data: data for @callback
 *
 * Refreshes now. While a refresh runs, this waits for it when it covers
 * @provider_id (or everything), or for one more right after it.
 */
void
kp_refresh_run_async (KpRefresh           *self,
                      const char          *provider_id,
                      GCancellable        *cancellable,
                      GAsyncReadyCallback  callback,
                      gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;

  g_return_if_fail (KP_IS_REFRESH (self));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, kp_refresh_run_async);
  g_task_set_task_data (task, g_strdup (provider_id), g_free);

  if (self->gateway == NULL || kp_gateway_get_ledger (self->gateway) == NULL)
    {
      g_task_return_new_error (task, KP_REFRESH_ERROR, KP_REFRESH_ERROR_UNAVAILABLE,
                               "Keypool is still starting; refresh in a moment.");
      return;
    }

  if (provider_id != NULL && kp_catalog_get_provider (kp_gateway_get_catalog (self->gateway),
                                                      provider_id) == NULL)
    {
      g_task_return_new_error (task, KP_REFRESH_ERROR, KP_REFRESH_ERROR_NOT_FOUND,
                               "There is no provider “%s”; “keypool providers” lists them.",
                               provider_id);
      return;
    }

  if (self->run != NULL)
    {
      gboolean covered = self->run->only == NULL ||
                         (provider_id != NULL &&
                          g_strv_contains ((const char * const *)self->run->only, provider_id));

      g_ptr_array_add (covered ? self->run->tasks : self->queued, g_steal_pointer (&task));
      return;
    }

  {
    g_auto(GStrv) only = provider_id ? g_strdupv ((char *[]) { (char *)provider_id, NULL }) : NULL;
    g_autoptr(GPtrArray) tasks = g_ptr_array_new_with_free_func (g_object_unref);

    g_ptr_array_add (tasks, g_steal_pointer (&task));
    kp_refresh_run_start (self, only, tasks);
  }
}

/**
 * kp_refresh_run_finish:
 *
 * Returns: (transfer full) (element-type KpRefreshResult): one result per
 *   provider asked or skipped, or %NULL with @error set
 */
GPtrArray *
kp_refresh_run_finish (KpRefresh     *self,
                       GAsyncResult  *result,
                       GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}
