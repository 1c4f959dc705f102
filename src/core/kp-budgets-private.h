/* kp-budgets-private.h: what the parts of KpBudgets share
 *
 * kp-budgets-store.c   a budget's definition, and the list as kept in the ledger
 * kp-budgets-totals.c  what is spent this day and month, how far a budget
 *                      is spent, and the sentences that say so
 * kp-budgets.c         the object: the budgets, what was told of each, the
 *                      warning, and the request path
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include "kp-budgets.h"

G_BEGIN_DECLS

#define KP_BUDGETS_MAX        200
#define KP_BUDGET_WARN_PERCENT 80

/* A budget, and what was told of it this period: 0, 80 or 100. */
typedef struct
{
  KpBudget budget;
  guint    level;
} KpBudgetEntry;

/* Definitions and storage (kp-budgets-store.c). */
void      kp_budget_clear          (KpBudget            *budget);
gboolean  kp_budget_check          (const KpBudget      *budget,
                                    GError             **error);
gboolean  kp_budget_same_target    (const KpBudget      *a,
                                    const KpBudget      *b);
gboolean  kp_budget_applies        (const KpBudget      *budget,
                                    const char          *provider_id,
                                    guint                client_id);
char     *kp_budget_dup_id         (const KpBudget      *budget);
void      kp_budget_entry_clear    (gpointer             entry);
char     *kp_budget_entries_to_json (GArray             *entries);
void      kp_budget_entries_parse  (GArray              *entries,
                                    const char          *text);

/* What is spent (kp-budgets-totals.c). */
typedef struct
{
  gint64 nano;
  gint64 unknown;
} KpBudgetSum;

typedef struct
{
  gint64      key;        /* the day (YYYYMMDD) or month (YYYYMM) counted */
  KpBudgetSum all;
  GHashTable *providers;  /* provider id → KpBudgetSum */
  GHashTable *clients;    /* client id → KpBudgetSum */
} KpBudgetTotals;

void               kp_budget_totals_init   (KpBudgetTotals *totals);
void               kp_budget_totals_clear  (KpBudgetTotals *totals);
void               kp_budget_totals_free   (KpBudgetTotals *totals);
void               kp_budget_totals_add    (KpBudgetTotals *totals,
                                            const char     *provider_id,
                                            guint           client_id,
                                            KpCostSource    source,
                                            gint64          cost_nano);
void               kp_budget_totals_add_rows (KpBudgetTotals *totals,
                                              GPtrArray      *rows);
const KpBudgetSum *kp_budget_totals_sum    (const KpBudgetTotals *totals,
                                            const KpBudget       *budget);
guint              kp_budget_level         (const KpBudget       *budget,
                                            gint64                spent_nano);

gint64             kp_budget_period_key    (GDateTime      *now,
                                            KpBudgetPeriod  period);
GDateTime         *kp_budget_period_start  (GDateTime      *now,
                                            KpBudgetPeriod  period);
gint64             kp_budget_period_end    (GDateTime      *now,
                                            KpBudgetPeriod  period);

void               kp_budget_crossing_text (const KpBudgetStatus  *status,
                                            guint                  level,
                                            char                 **title,
                                            char                 **body);
char              *kp_budget_refusal_text  (const KpBudgetStatus  *status);

G_END_DECLS
