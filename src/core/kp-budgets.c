/* kp-budgets.c: daily and monthly spend limits, overall, per provider, per client
 *
 * The object: the budgets, what was told of each this period, the warning,
 * and the request path. A budget's definition and storage are in
 * kp-budgets-store.c; the totals, periods, levels and sentences in
 * kp-budgets-totals.c.
 *
 * The check runs for every request, so it never asks sqlite: running
 * totals for the current day and month are kept in memory, seeded from the
 * ledger at start and updated as each request's row goes to the ledger.
 * Days and months are local time, read from a clock that tests can move.
 *
 * At 80 % a budget is told once (::crossed), at 100 % once more; a budget
 * whose action is "refuse" then takes paid routes away from the requests
 * billed against it. Free routes ($0: local models, subscriptions) still
 * serve. A request under way when a budget is crossed finishes.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include "kp-budgets-private.h"

#define SETTING_KEY "budgets"

struct _KpBudgets
{
  GObject        parent_instance;

  KpCatalog     *catalog;
  KpClients     *clients;
  KpLedger      *ledger;
  GArray        *entries;  /* of KpBudgetEntry */
  KpBudgetTotals totals[2];
  KpBudgetClock  clock;
  gpointer       clock_data;
  gboolean       warning;
  GTimeZone     *zone;       /* the local zone, read again now and then */
  gint64         zone_read;  /* when, in monotonic microseconds */
};

G_DEFINE_FINAL_TYPE (KpBudgets, kp_budgets, G_TYPE_OBJECT)

G_DEFINE_QUARK (kp-budgets-error-quark, kp_budgets_error)

enum {
  PROP_0,
  PROP_WARNING,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

enum {
  CROSSED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

static void
kp_budgets_finalize (GObject *object)
{
  KpBudgets *self = (KpBudgets *)object;

  g_clear_object (&self->catalog);
  g_clear_object (&self->clients);
  g_clear_object (&self->ledger);
  g_clear_pointer (&self->entries, g_array_unref);
  g_clear_pointer (&self->zone, g_time_zone_unref);
  for (guint i = 0; i < G_N_ELEMENTS (self->totals); i++)
    kp_budget_totals_free (&self->totals[i]);

  G_OBJECT_CLASS (kp_budgets_parent_class)->finalize (object);
}

static void
kp_budgets_get_property (GObject    *object,
                         guint       prop_id,
                         GValue     *value,
                         GParamSpec *pspec)
{
  KpBudgets *self = KP_BUDGETS (object);

  switch (prop_id)
    {
    case PROP_WARNING:
      g_value_set_boolean (value, self->warning);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
kp_budgets_class_init (KpBudgetsClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = kp_budgets_finalize;
  object_class->get_property = kp_budgets_get_property;

  /**
   * KpBudgets:warning:
   *
   * Whether a budget is 80 % spent or more this period.
   */
  properties[PROP_WARNING] =
    g_param_spec_boolean ("warning", NULL, NULL, FALSE,
                          G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, properties);

  /**
   * KpBudgets::crossed:
   * @budgets: the budgets
   * @id: a name for the budget, the same each time it is told
   * @percent: 80 or 100
   * @title: a short sentence for a notification's title
   * @body: the figures: the limit, what was spent, when it resets
   *
   * Emitted once when a budget is 80 % spent in a period, and once more
   * when it is spent.
   */
  signals[CROSSED] =
    g_signal_new ("crossed",
                  G_TYPE_FROM_CLASS (klass),
                  G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL,
                  G_TYPE_NONE, 4, G_TYPE_STRING, G_TYPE_UINT, G_TYPE_STRING, G_TYPE_STRING);
}

static gint64
real_clock (gpointer user_data)
{
  return g_get_real_time ();
}

static void
kp_budgets_init (KpBudgets *self)
{
  self->entries = g_array_new (FALSE, TRUE, sizeof (KpBudgetEntry));
  g_array_set_clear_func (self->entries, kp_budget_entry_clear);
  for (guint i = 0; i < G_N_ELEMENTS (self->totals); i++)
    kp_budget_totals_init (&self->totals[i]);
  self->clock = real_clock;
}

KpBudgets *
kp_budgets_new (KpCatalog *catalog,
                KpClients *clients)
{
  KpBudgets *self;

  g_return_val_if_fail (KP_IS_CATALOG (catalog), NULL);
  g_return_val_if_fail (KP_IS_CLIENTS (clients), NULL);

  self = g_object_new (KP_TYPE_BUDGETS, NULL);
  self->catalog = g_object_ref (catalog);
  self->clients = g_object_ref (clients);
  return self;
}

void
kp_budget_status_free (KpBudgetStatus *status)
{
  if (status == NULL)
    return;
  kp_budget_clear (&status->budget);
  g_free (status->name);
  g_free (status);
}

/* Names, periods, levels -------------------------------------------------------- */

static char *
budget_name (KpBudgets      *self,
             const KpBudget *budget)
{
  const char *period = kp_budget_period_to_string (budget->period);

  switch (budget->scope)
    {
    case KP_BUDGET_ALL:
      return g_strdup_printf ("the %s budget", period);
    case KP_BUDGET_PROVIDER:
      {
        KpProvider *provider = kp_catalog_get_provider (self->catalog, budget->provider_id);

        return g_strdup_printf ("the %s budget for %s", period,
                                provider ? kp_provider_get_name (provider) : budget->provider_id);
      }
    case KP_BUDGET_CLIENT:
      {
        g_autofree char *client = kp_clients_dup_name (self->clients, budget->client_id);

        return g_strdup_printf ("the %s budget for %s", period, client);
      }
    default:
      g_assert_not_reached ();
    }
}

/* Every request asks for the local time: finding the local zone reads
 * /etc/localtime's link each time, so the zone is kept and read again once
 * a minute (the user may travel).
 */
#define ZONE_REREAD_US (60 * G_USEC_PER_SEC)

static GDateTime *
now_local (KpBudgets *self)
{
  gint64 us = self->clock (self->clock_data);
  gint64 mono = g_get_monotonic_time ();
  g_autoptr(GDateTime) utc = g_date_time_new_from_unix_utc (us / G_USEC_PER_SEC);

  if (self->zone == NULL || mono - self->zone_read >= ZONE_REREAD_US)
    {
      g_clear_pointer (&self->zone, g_time_zone_unref);
      self->zone = g_time_zone_new_local ();
      self->zone_read = mono;
    }
  return g_date_time_to_timezone (utc, self->zone);
}

static void update_warning (KpBudgets *self);

/* A new day or month starts from nothing. */
static void
roll (KpBudgets *self)
{
  g_autoptr(GDateTime) now = now_local (self);
  gboolean rolled = FALSE;

  for (guint p = KP_BUDGET_DAY; p <= KP_BUDGET_MONTH; p++)
    {
      gint64 key = kp_budget_period_key (now, p);

      if (self->totals[p].key == key)
        continue;
      kp_budget_totals_clear (&self->totals[p]);
      self->totals[p].key = key;
      for (guint i = 0; i < self->entries->len; i++)
        {
          KpBudgetEntry *entry = &g_array_index (self->entries, KpBudgetEntry, i);

          if (entry->budget.period == p)
            entry->level = 0;
        }
      rolled = TRUE;
    }
  if (rolled)
    update_warning (self);
}

static const KpBudgetSum *
budget_sum (KpBudgets      *self,
            const KpBudget *budget)
{
  return kp_budget_totals_sum (&self->totals[budget->period], budget);
}

static guint
level_of (KpBudgets      *self,
          const KpBudget *budget)
{
  return kp_budget_level (budget, budget_sum (self, budget)->nano);
}

static void
update_warning (KpBudgets *self)
{
  gboolean warning = FALSE;

  for (guint i = 0; i < self->entries->len; i++)
    if (level_of (self, &g_array_index (self->entries, KpBudgetEntry, i).budget) > 0)
      warning = TRUE;

  if (warning != self->warning)
    {
      self->warning = warning;
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_WARNING]);
    }
}

/* Storage ----------------------------------------------------------------------- */

static gboolean
save (KpBudgets  *self,
      GError    **error)
{
  g_autofree char *text = NULL;

  if (self->ledger == NULL)
    return TRUE;
  text = kp_budget_entries_to_json (self->entries);
  return kp_ledger_set_setting (self->ledger, SETTING_KEY, text, error);
}

/* What is spent already was told before, or is not news now. */
static void
settle_levels (KpBudgets *self)
{
  for (guint i = 0; i < self->entries->len; i++)
    {
      KpBudgetEntry *entry = &g_array_index (self->entries, KpBudgetEntry, i);

      entry->level = level_of (self, &entry->budget);
    }
  update_warning (self);
}

/**
 * kp_budgets_set_clock:
 * @clock: (nullable): the time in unix microseconds, or %NULL for the real one
 */
void
kp_budgets_set_clock (KpBudgets     *self,
                      KpBudgetClock  clock,
                      gpointer       user_data)
{
  g_return_if_fail (KP_IS_BUDGETS (self));

  self->clock = clock ? clock : real_clock;
  self->clock_data = user_data;
}

/**
 * kp_budgets_load:
 * @ledger: where budgets are kept and spend is recorded
 *
 * Reads the budgets. This day's and month's spend so far comes with
 * kp_budgets_seed_async(), before requests are served.
 */
gboolean
kp_budgets_load (KpBudgets  *self,
                 KpLedger   *ledger,
                 GError    **error)
{
  g_autofree char *text = NULL;

  g_return_val_if_fail (KP_IS_BUDGETS (self), FALSE);
  g_return_val_if_fail (KP_IS_LEDGER (ledger), FALSE);

  g_set_object (&self->ledger, ledger);
  g_array_set_size (self->entries, 0);
  text = kp_ledger_get_setting (ledger, SETTING_KEY);
  if (text != NULL)
    kp_budget_entries_parse (self->entries, text);
  roll (self);
  settle_levels (self);
  return TRUE;
}

static void
on_seed_read (GObject      *object,
              GAsyncResult *result,
              gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  KpBudgets *self = g_task_get_source_object (task);
  guint period = GPOINTER_TO_UINT (g_task_get_task_data (task));
  g_autoptr(GPtrArray) rows = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GDateTime) now = NULL;
  g_autoptr(GDateTime) start = NULL;

  rows = kp_ledger_spend_by_client_and_provider_finish (KP_LEDGER (object), result, &error);
  if (rows == NULL)
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  roll (self);
  kp_budget_totals_add_rows (&self->totals[period], rows);

  if (period == KP_BUDGET_MONTH)
    {
      settle_levels (self);
      g_task_return_boolean (task, TRUE);
      return;
    }

  now = now_local (self);
  start = kp_budget_period_start (now, KP_BUDGET_MONTH);
  g_task_set_task_data (task, GUINT_TO_POINTER (KP_BUDGET_MONTH), NULL);
  kp_ledger_spend_by_client_and_provider_async (self->ledger, g_date_time_to_unix (start) * 1000,
                                                g_task_get_cancellable (task), on_seed_read,
                                                g_object_ref (task));
}

/**
 * kp_budgets_seed_async:
 *
 * Adds up this day's and this month's spend so far, on a worker thread. Call
 * it once after kp_budgets_load(), before requests are served: what the
 * ledger holds then is counted once.
 */
void
kp_budgets_seed_async (KpBudgets           *self,
                       GCancellable        *cancellable,
                       GAsyncReadyCallback  callback,
                       gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  g_autoptr(GDateTime) now = NULL;
  g_autoptr(GDateTime) start = NULL;

  g_return_if_fail (KP_IS_BUDGETS (self));
  g_return_if_fail (self->ledger != NULL);

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, kp_budgets_seed_async);
  g_task_set_task_data (task, GUINT_TO_POINTER (KP_BUDGET_DAY), NULL);
  roll (self);
  now = now_local (self);
  start = kp_budget_period_start (now, KP_BUDGET_DAY);
  kp_ledger_spend_by_client_and_provider_async (self->ledger, g_date_time_to_unix (start) * 1000,
                                                cancellable, on_seed_read,
                                                g_steal_pointer (&task));
}

gboolean
kp_budgets_seed_finish (KpBudgets     *self,
                        GAsyncResult  *result,
                        GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

/* Managing ---------------------------------------------------------------------- */

/**
 * kp_budgets_set:
 * @budget: the budget; one of the same period and target is replaced
 */
gboolean
kp_budgets_set (KpBudgets       *self,
                const KpBudget  *budget,
                GError         **error)
{
  KpBudgetEntry entry = { 0 };
  guint i;

  g_return_val_if_fail (KP_IS_BUDGETS (self), FALSE);
  g_return_val_if_fail (budget != NULL, FALSE);

  if (!kp_budget_check (budget, error))
    return FALSE;

  roll (self);
  entry.budget = *budget;
  entry.budget.provider_id = g_strdup (budget->provider_id);
  for (i = 0; i < self->entries->len; i++)
    if (kp_budget_same_target (&g_array_index (self->entries, KpBudgetEntry, i).budget, budget))
      break;
  if (i < self->entries->len)
    {
      KpBudgetEntry *old = &g_array_index (self->entries, KpBudgetEntry, i);

      kp_budget_clear (&old->budget);
      *old = entry;
    }
  else if (self->entries->len >= KP_BUDGETS_MAX)
    {
      kp_budget_clear (&entry.budget);
      g_set_error (error, KP_BUDGETS_ERROR, KP_BUDGETS_ERROR_INVALID,
                   "Keypool keeps at most %d budgets.", KP_BUDGETS_MAX);
      return FALSE;
    }
  else
    g_array_append_val (self->entries, entry);

  /* A new limit is told about when it is crossed from now on. */
  settle_levels (self);
  return save (self, error);
}

/**
 * kp_budgets_clear:
 * @budget: the period and target of the budget to clear; the rest is ignored
 */
gboolean
kp_budgets_clear (KpBudgets       *self,
                  const KpBudget  *budget,
                  GError         **error)
{
  g_return_val_if_fail (KP_IS_BUDGETS (self), FALSE);
  g_return_val_if_fail (budget != NULL, FALSE);

  for (guint i = 0; i < self->entries->len; i++)
    if (kp_budget_same_target (&g_array_index (self->entries, KpBudgetEntry, i).budget, budget))
      {
        g_array_remove_index (self->entries, i);
        update_warning (self);
        return save (self, error);
      }

  g_set_error_literal (error, KP_BUDGETS_ERROR, KP_BUDGETS_ERROR_NOT_FOUND,
                       "There is no such budget; “keypool budget list” lists them.");
  return FALSE;
}

static KpBudgetStatus *
status_new (KpBudgets      *self,
            GDateTime      *now,
            const KpBudget *budget)
{
  KpBudgetStatus *status = g_new0 (KpBudgetStatus, 1);
  const KpBudgetSum *sum = budget_sum (self, budget);

  status->budget = *budget;
  status->budget.provider_id = g_strdup (budget->provider_id);
  status->name = budget_name (self, budget);
  status->spent_nano = sum->nano;
  status->unknown = sum->unknown;
  status->resets_at = kp_budget_period_end (now, budget->period);
  return status;
}

/**
 * kp_budgets_list:
 *
 * Returns: (transfer container) (element-type KpBudgetStatus): every
 *   budget with what was spent against it this period
 */
GPtrArray *
kp_budgets_list (KpBudgets *self)
{
  GPtrArray *list = g_ptr_array_new_with_free_func ((GDestroyNotify)kp_budget_status_free);
  g_autoptr(GDateTime) now = NULL;

  g_return_val_if_fail (KP_IS_BUDGETS (self), list);

  roll (self);
  now = now_local (self);
  for (guint i = 0; i < self->entries->len; i++)
    g_ptr_array_add (list, status_new (self, now, &g_array_index (self->entries, KpBudgetEntry, i).budget));
  return list;
}

gboolean
kp_budgets_get_warning (KpBudgets *self)
{
  g_return_val_if_fail (KP_IS_BUDGETS (self), FALSE);

  roll (self);
  return self->warning;
}

/**
 * kp_budgets_get_unknown:
 *
 * Returns: how many requests this day or month have no known price, and
 *   are counted in no budget
 */
gint64
kp_budgets_get_unknown (KpBudgets      *self,
                        KpBudgetPeriod  period)
{
  g_return_val_if_fail (KP_IS_BUDGETS (self), 0);

  roll (self);
  return self->totals[period].all.unknown;
}

/* The request path -------------------------------------------------------------- */

static void
tell (KpBudgets      *self,
      const KpBudget *budget,
      guint           level)
{
  g_autoptr(GDateTime) now = now_local (self);
  g_autoptr(KpBudgetStatus) status = status_new (self, now, budget);
  g_autofree char *id = kp_budget_dup_id (budget);
  g_autofree char *title = NULL;
  g_autofree char *body = NULL;

  kp_budget_crossing_text (status, level, &title, &body);
  g_debug ("Budget: %s. %s", title, body);
  g_signal_emit (self, signals[CROSSED], 0, id, level, title, body);
}

/**
 * kp_budgets_note:
 * @provider_id: (nullable): the provider that served the request
 * @client_id: the client that made it
 * @source: where its cost comes from
 * @cost_nano: its cost
 *
 * Counts one finished request, as its row goes to the ledger, and tells of
 * the budgets it made cross 80 % or 100 %.
 */
void
kp_budgets_note (KpBudgets    *self,
                 const char   *provider_id,
                 guint         client_id,
                 KpCostSource  source,
                 gint64        cost_nano)
{
  g_return_if_fail (KP_IS_BUDGETS (self));

  if (source != KP_COST_UNKNOWN && cost_nano <= 0)
    return;

  roll (self);
  for (guint p = KP_BUDGET_DAY; p <= KP_BUDGET_MONTH; p++)
    kp_budget_totals_add (&self->totals[p], provider_id, client_id, source, cost_nano);

  for (guint i = 0; i < self->entries->len; i++)
    {
      KpBudgetEntry *entry = &g_array_index (self->entries, KpBudgetEntry, i);
      guint level = level_of (self, &entry->budget);

      if (level > entry->level)
        {
          entry->level = level;
          tell (self, &entry->budget, level);
        }
    }
  update_warning (self);
}

/* The spent budget in "refuse" mode a paid request on @provider_id by
 * @client_id would be billed against, or NULL.
 */
static const KpBudget *
refusing_budget (KpBudgets  *self,
                 const char *provider_id,
                 guint       client_id)
{
  for (guint i = 0; i < self->entries->len; i++)
    {
      const KpBudget *budget = &g_array_index (self->entries, KpBudgetEntry, i).budget;

      if (budget->action == KP_BUDGET_REFUSE && kp_budget_applies (budget, provider_id, client_id) &&
          budget_sum (self, budget)->nano >= budget->limit_nano)
        return budget;
    }
  return NULL;
}

/**
 * kp_budgets_filter_plan:
 * @plan: the routes for one request
 * @client_id: the client that made it
 *
 * Takes out the paid routes (and those of unknown price) that a spent
 * budget in "refuse" mode holds; free routes and subscriptions' stay.
 *
 * Returns: (transfer full) (nullable): when no route is left because of a
 *   budget, what to tell the client: the budget, its limit, what was spent
 *   and when it resets
 */
char *
kp_budgets_filter_plan (KpBudgets *self,
                        KpPlan    *plan,
                        guint      client_id)
{
  const KpBudget *first = NULL;
  g_autoptr(GDateTime) now = NULL;
  g_autoptr(KpBudgetStatus) status = NULL;

  g_return_val_if_fail (KP_IS_BUDGETS (self), NULL);
  g_return_val_if_fail (plan != NULL, NULL);

  if (self->entries->len == 0)
    return NULL;

  roll (self);
  for (guint i = 0; i < plan->routes->len;)
    {
      const KpRoute *route = &g_array_index (plan->routes, KpRoute, i);
      const KpBudget *budget = NULL;

      /* A subscription's route is paid already, whatever its list price. */
      if (route->expected_usd != 0 && !kp_provider_get_subscription (route->provider))
        budget = refusing_budget (self, kp_provider_get_id (route->provider), client_id);
      if (budget == NULL)
        {
          i++;
          continue;
        }
      if (first == NULL)
        first = budget;
      g_array_remove_index (plan->routes, i);
    }

  if (first == NULL || plan->routes->len > 0)
    return NULL;

  now = now_local (self);
  status = status_new (self, now, first);
  return kp_budget_refusal_text (status);
}
