/* kp-budgets-totals.c: what is spent this day and month, and what it means
 *
 * The running totals of one period (overall, per provider, per client),
 * the periods themselves (local days and months), how far a budget is
 * spent (0, 80 or 100 %), and the sentences that tell the user so: a
 * notification's, and a refused request's.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include "kp-budgets-private.h"

void
kp_budget_totals_init (KpBudgetTotals *totals)
{
  totals->providers = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  totals->clients = g_hash_table_new_full (NULL, NULL, NULL, g_free);
}

/* A new day or month starts from nothing. */
void
kp_budget_totals_clear (KpBudgetTotals *totals)
{
  totals->all = (KpBudgetSum) { 0 };
  g_hash_table_remove_all (totals->providers);
  g_hash_table_remove_all (totals->clients);
}

void
kp_budget_totals_free (KpBudgetTotals *totals)
{
  g_clear_pointer (&totals->providers, g_hash_table_unref);
  g_clear_pointer (&totals->clients, g_hash_table_unref);
}

static KpBudgetSum *
provider_sum (KpBudgetTotals *totals,
              const char     *provider_id)
{
  KpBudgetSum *sum = g_hash_table_lookup (totals->providers, provider_id);

  if (sum == NULL)
    g_hash_table_insert (totals->providers, g_strdup (provider_id), sum = g_new0 (KpBudgetSum, 1));
  return sum;
}

static KpBudgetSum *
client_sum (KpBudgetTotals *totals,
            guint           client_id)
{
  KpBudgetSum *sum = g_hash_table_lookup (totals->clients, GUINT_TO_POINTER (client_id));

  if (sum == NULL)
    g_hash_table_insert (totals->clients, GUINT_TO_POINTER (client_id), sum = g_new0 (KpBudgetSum, 1));
  return sum;
}

static void
add_to (KpBudgetSum  *sum,
        KpCostSource  source,
        gint64        cost_nano)
{
  if (source == KP_COST_UNKNOWN)
    sum->unknown++;
  else
    sum->nano += cost_nano;
}

/* Counts one finished request. */
void
kp_budget_totals_add (KpBudgetTotals *totals,
                      const char     *provider_id,
                      guint           client_id,
                      KpCostSource    source,
                      gint64          cost_nano)
{
  add_to (&totals->all, source, cost_nano);
  if (provider_id != NULL)
    add_to (provider_sum (totals, provider_id), source, cost_nano);
  add_to (client_sum (totals, client_id), source, cost_nano);
}

/**
 * kp_budget_totals_add_rows:
 * @rows: (element-type KpSpendRow): the ledger's spend by client (the key)
 *   and provider
 */
void
kp_budget_totals_add_rows (KpBudgetTotals *totals,
                           GPtrArray      *rows)
{
  for (guint i = 0; i < rows->len; i++)
    {
      const KpSpendRow *row = g_ptr_array_index (rows, i);
      guint64 client_id = 0;
      KpBudgetSum *sum;

      if (row->key == NULL ||
          !g_ascii_string_to_unsigned (row->key, 10, 0, G_MAXINT32, &client_id, NULL))
        client_id = KP_CLIENT_OTHER;
      totals->all.nano += row->cost_nano;
      totals->all.unknown += row->unknown_cost;
      if (row->provider != NULL)
        {
          sum = provider_sum (totals, row->provider);
          sum->nano += row->cost_nano;
          sum->unknown += row->unknown_cost;
        }
      sum = client_sum (totals, (guint)client_id);
      sum->nano += row->cost_nano;
      sum->unknown += row->unknown_cost;
    }
}

/* What is spent against @budget: @totals are of the budget's period. */
const KpBudgetSum *
kp_budget_totals_sum (const KpBudgetTotals *totals,
                      const KpBudget       *budget)
{
  static const KpBudgetSum none = { 0 };
  const KpBudgetSum *sum = NULL;

  switch (budget->scope)
    {
    case KP_BUDGET_ALL:
      sum = &totals->all;
      break;
    case KP_BUDGET_PROVIDER:
      sum = g_hash_table_lookup (totals->providers, budget->provider_id);
      break;
    case KP_BUDGET_CLIENT:
      sum = g_hash_table_lookup (totals->clients, GUINT_TO_POINTER (budget->client_id));
      break;
    default:
      g_assert_not_reached ();
    }
  return sum ? sum : &none;
}

/* 0, KP_BUDGET_WARN_PERCENT or 100: how far @budget is spent. */
guint
kp_budget_level (const KpBudget *budget,
                 gint64          spent_nano)
{
  gint64 limit = budget->limit_nano;

  if (spent_nano >= limit)
    return 100;
  /* spent / limit ≥ 80 %, without overflow for any sane limit. */
  if (spent_nano >= limit / 100 * KP_BUDGET_WARN_PERCENT + limit % 100 * KP_BUDGET_WARN_PERCENT / 100)
    return KP_BUDGET_WARN_PERCENT;
  return 0;
}

/* Periods ----------------------------------------------------------------------- */

gint64
kp_budget_period_key (GDateTime      *now,
                      KpBudgetPeriod  period)
{
  gint64 key = g_date_time_get_year (now) * 100 + g_date_time_get_month (now);

  return period == KP_BUDGET_DAY ? key * 100 + g_date_time_get_day_of_month (now) : key;
}

GDateTime *
kp_budget_period_start (GDateTime      *now,
                        KpBudgetPeriod  period)
{
  return g_date_time_new (g_date_time_get_timezone (now),
                          g_date_time_get_year (now), g_date_time_get_month (now),
                          period == KP_BUDGET_DAY ? g_date_time_get_day_of_month (now) : 1,
                          0, 0, 0);
}

/* When the period of @now ends, in unix seconds. */
gint64
kp_budget_period_end (GDateTime      *now,
                      KpBudgetPeriod  period)
{
  g_autoptr(GDateTime) start = kp_budget_period_start (now, period);
  g_autoptr(GDateTime) end = period == KP_BUDGET_DAY ? g_date_time_add_days (start, 1)
                                                     : g_date_time_add_months (start, 1);

  return g_date_time_to_unix (end);
}

/* Sentences --------------------------------------------------------------------- */

/* Cents for budgets of dollars; small test budgets keep their digits. */
static char *
format_usd (gint64 nano)
{
  return g_strdup_printf (nano < 1000000000 ? "$%.6f" : "$%.2f", nano / 1e9);
}

static char *
format_reset (gint64 unix_s)
{
  g_autoptr(GDateTime) when = g_date_time_new_from_unix_local (unix_s);

  return g_date_time_format (when, "%Y-%m-%d %H:%M");
}

/* A notification's title and body, for a budget @level (80 or 100) % spent. */
void
kp_budget_crossing_text (const KpBudgetStatus  *status,
                         guint                  level,
                         char                 **title,
                         char                 **body)
{
  g_autofree char *limit = format_usd (status->budget.limit_nano);
  g_autofree char *spent = format_usd (status->spent_nano);
  g_autofree char *reset = format_reset (status->resets_at);

  if (level < 100)
    {
      *title = g_strdup_printf ("%d %% of %s is spent", KP_BUDGET_WARN_PERCENT, status->name);
      *body = g_strdup_printf ("%s of %s so far; it resets at %s.", spent, limit, reset);
    }
  else
    {
      *title = g_strdup_printf ("%c%s is spent", g_ascii_toupper (status->name[0]), status->name + 1);
      *body = g_strdup_printf ("%s of %s. %s until %s.", spent, limit,
                               status->budget.action == KP_BUDGET_REFUSE
                                 ? "Requests billed against it are refused (free routes still serve)"
                                 : "Keypool keeps serving (this budget only warns)",
                               reset);
    }
}

/* What a request refused for @status's budget is told: the budget, its
 * limit, what was spent and when it resets.
 */
char *
kp_budget_refusal_text (const KpBudgetStatus *status)
{
  g_autofree char *limit = format_usd (status->budget.limit_nano);
  g_autofree char *spent = format_usd (status->spent_nano);
  g_autofree char *reset = format_reset (status->resets_at);

  return g_strdup_printf ("Refused: %s (%s) is spent: %s so far. It resets at %s. Free routes "
                          "still serve; “keypool budget” raises or clears it.",
                          status->name, limit, spent, reset);
}
