/* kp-budgets.h: daily and monthly spend limits, overall, per provider, per client
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <gio/gio.h>

#include "kp-catalog.h"
#include "kp-clients.h"
#include "kp-ledger.h"
#include "kp-planner.h"
#include "kp-usage.h"

G_BEGIN_DECLS

#define KP_BUDGETS_ERROR (kp_budgets_error_quark ())

typedef enum
{
  KP_BUDGETS_ERROR_INVALID,
  KP_BUDGETS_ERROR_NOT_FOUND,
} KpBudgetsError;

typedef enum
{
  KP_BUDGET_DAY,
  KP_BUDGET_MONTH,
} KpBudgetPeriod;

typedef enum
{
  KP_BUDGET_ALL,       /* every request */
  KP_BUDGET_PROVIDER,  /* the requests one provider served */
  KP_BUDGET_CLIENT,    /* the requests one client made */
} KpBudgetScope;

typedef enum
{
  KP_BUDGET_WARN,      /* at 100 %: tell, and keep serving */
  KP_BUDGET_REFUSE,    /* at 100 %: refuse requests that would be billed against it */
} KpBudgetAction;

typedef struct
{
  KpBudgetScope   scope;
  char           *provider_id;  /* KP_BUDGET_PROVIDER only */
  guint           client_id;    /* KP_BUDGET_CLIENT only */
  KpBudgetPeriod  period;
  gint64          limit_nano;
  KpBudgetAction  action;
} KpBudget;

/* A budget with where it stands now. */
typedef struct
{
  KpBudget  budget;
  char     *name;          /* "the daily budget for Claude Code" */
  gint64    spent_nano;    /* reported, computed and estimated costs this period */
  gint64    unknown;       /* requests of this period with no known price */
  gint64    resets_at;     /* unix seconds: the start of the next day or month */
} KpBudgetStatus;

/* The time budgets count in, unix microseconds; tests move it. */
typedef gint64 (*KpBudgetClock) (gpointer user_data);

#define KP_TYPE_BUDGETS (kp_budgets_get_type ())

G_DECLARE_FINAL_TYPE (KpBudgets, kp_budgets, KP, BUDGETS, GObject)

GQuark          kp_budgets_error_quark     (void);
KpBudgets      *kp_budgets_new             (KpCatalog            *catalog,
                                            KpClients            *clients);
void            kp_budgets_set_clock       (KpBudgets            *self,
                                            KpBudgetClock         clock,
                                            gpointer              user_data);
gboolean        kp_budgets_load            (KpBudgets            *self,
                                            KpLedger             *ledger,
                                            GError              **error);
void            kp_budgets_seed_async      (KpBudgets            *self,
                                            GCancellable         *cancellable,
                                            GAsyncReadyCallback   callback,
                                            gpointer              user_data);
gboolean        kp_budgets_seed_finish     (KpBudgets            *self,
                                            GAsyncResult         *result,
                                            GError              **error);

gboolean        kp_budgets_set             (KpBudgets            *self,
                                            const KpBudget       *budget,
                                            GError              **error);
gboolean        kp_budgets_clear           (KpBudgets            *self,
                                            const KpBudget       *budget,
                                            GError              **error);
GPtrArray      *kp_budgets_list            (KpBudgets            *self);
gboolean        kp_budgets_get_warning     (KpBudgets            *self);
gint64          kp_budgets_get_unknown     (KpBudgets            *self,
                                            KpBudgetPeriod        period);

/* The request path. */
void            kp_budgets_note            (KpBudgets            *self,
                                            const char           *provider_id,
                                            guint                 client_id,
                                            KpCostSource          source,
                                            gint64                cost_nano);
char           *kp_budgets_filter_plan     (KpBudgets            *self,
                                            KpPlan               *plan,
                                            guint                 client_id);

const char     *kp_budget_period_to_string (KpBudgetPeriod        period);
gboolean        kp_budget_period_from_string (const char         *text,
                                            KpBudgetPeriod       *period);
const char     *kp_budget_action_to_string (KpBudgetAction        action);
gboolean        kp_budget_action_from_string (const char         *text,
                                            KpBudgetAction       *action);
const char     *kp_budget_scope_to_string  (KpBudgetScope         scope);
void            kp_budget_status_free      (KpBudgetStatus       *status);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (KpBudgetStatus, kp_budget_status_free)

G_END_DECLS
