/* kp-budgets-store.c: a budget's definition, and the list as it is kept
 *
 * The budgets are one JSON array in the ledger's settings ("budgets"). A
 * damaged list keeps the budgets that could be read, with a warning.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include <json-glib/json-glib.h>

#include "codec/kp-json-guard.h"
#include "kp-budgets-private.h"
#include "wire/kp-wire-json.h"

#define SETTING_MAX (256 * 1024)

const char *
kp_budget_period_to_string (KpBudgetPeriod period)
{
  return period == KP_BUDGET_DAY ? "daily" : "monthly";
}

gboolean
kp_budget_period_from_string (const char     *text,
                              KpBudgetPeriod *period)
{
  if (g_strcmp0 (text, "daily") == 0 || g_strcmp0 (text, "day") == 0)
    *period = KP_BUDGET_DAY;
  else if (g_strcmp0 (text, "monthly") == 0 || g_strcmp0 (text, "month") == 0)
    *period = KP_BUDGET_MONTH;
  else
    return FALSE;
  return TRUE;
}

const char *
kp_budget_action_to_string (KpBudgetAction action)
{
  return action == KP_BUDGET_REFUSE ? "refuse" : "warn";
}

gboolean
kp_budget_action_from_string (const char     *text,
                              KpBudgetAction *action)
{
  if (g_strcmp0 (text, "refuse") == 0)
    *action = KP_BUDGET_REFUSE;
  else if (g_strcmp0 (text, "warn") == 0)
    *action = KP_BUDGET_WARN;
  else
    return FALSE;
  return TRUE;
}

const char *
kp_budget_scope_to_string (KpBudgetScope scope)
{
  switch (scope)
    {
    case KP_BUDGET_ALL: return "all";
    case KP_BUDGET_PROVIDER: return "provider";
    case KP_BUDGET_CLIENT: return "client";
    default: g_assert_not_reached ();
    }
}

static gboolean
scope_from_string (const char    *text,
                   KpBudgetScope *scope)
{
  for (KpBudgetScope s = KP_BUDGET_ALL; s <= KP_BUDGET_CLIENT; s++)
    if (g_strcmp0 (text, kp_budget_scope_to_string (s)) == 0)
      {
        *scope = s;
        return TRUE;
      }
  return FALSE;
}

void
kp_budget_clear (KpBudget *budget)
{
  g_clear_pointer (&budget->provider_id, g_free);
}

void
kp_budget_entry_clear (gpointer entry)
{
  kp_budget_clear (&((KpBudgetEntry *)entry)->budget);
}

gboolean
kp_budget_check (const KpBudget  *budget,
                 GError         **error)
{
  if (budget->limit_nano <= 0)
    {
      g_set_error_literal (error, KP_BUDGETS_ERROR, KP_BUDGETS_ERROR_INVALID,
                           "A budget’s limit is an amount of US dollars above 0.");
      return FALSE;
    }
  if ((budget->scope == KP_BUDGET_PROVIDER) != (budget->provider_id != NULL) ||
      (budget->scope == KP_BUDGET_CLIENT && budget->client_id == 0) ||
      (budget->scope != KP_BUDGET_CLIENT && budget->client_id != 0))
    {
      g_set_error_literal (error, KP_BUDGETS_ERROR, KP_BUDGETS_ERROR_INVALID,
                           "A budget is for everything, one provider or one client.");
      return FALSE;
    }
  return TRUE;
}

gboolean
kp_budget_same_target (const KpBudget *a,
                       const KpBudget *b)
{
  return a->scope == b->scope && a->period == b->period &&
         g_strcmp0 (a->provider_id, b->provider_id) == 0 && a->client_id == b->client_id;
}

/* Whether a request on @provider_id by @client_id is billed against @budget. */
gboolean
kp_budget_applies (const KpBudget *budget,
                   const char     *provider_id,
                   guint           client_id)
{
  switch (budget->scope)
    {
    case KP_BUDGET_ALL:
      return TRUE;
    case KP_BUDGET_PROVIDER:
      return g_strcmp0 (budget->provider_id, provider_id) == 0;
    case KP_BUDGET_CLIENT:
      return budget->client_id == client_id;
    default:
      g_assert_not_reached ();
    }
}

/* An id that stays the same for one budget: for notifications. */
char *
kp_budget_dup_id (const KpBudget *budget)
{
  return g_strdup_printf ("budget-%s-%s-%s-%u", kp_budget_period_to_string (budget->period),
                          kp_budget_scope_to_string (budget->scope),
                          budget->provider_id ? budget->provider_id : "", budget->client_id);
}

/**
 * kp_budget_entries_to_json:
 * @entries: (element-type KpBudgetEntry): the budgets
 *
 * Returns: (transfer full): the budgets as they are kept
 */
char *
kp_budget_entries_to_json (GArray *entries)
{
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  g_autoptr(JsonNode) root = NULL;

  json_builder_begin_array (builder);
  for (guint i = 0; i < entries->len; i++)
    {
      const KpBudget *budget = &g_array_index (entries, KpBudgetEntry, i).budget;

      json_builder_begin_object (builder);
      json_builder_set_member_name (builder, "scope");
      json_builder_add_string_value (builder, kp_budget_scope_to_string (budget->scope));
      if (budget->provider_id != NULL)
        {
          json_builder_set_member_name (builder, "provider");
          json_builder_add_string_value (builder, budget->provider_id);
        }
      if (budget->scope == KP_BUDGET_CLIENT)
        {
          json_builder_set_member_name (builder, "client");
          json_builder_add_int_value (builder, budget->client_id);
        }
      json_builder_set_member_name (builder, "period");
      json_builder_add_string_value (builder, kp_budget_period_to_string (budget->period));
      json_builder_set_member_name (builder, "limit_nano");
      json_builder_add_int_value (builder, budget->limit_nano);
      json_builder_set_member_name (builder, "action");
      json_builder_add_string_value (builder, kp_budget_action_to_string (budget->action));
      json_builder_end_object (builder);
    }
  json_builder_end_array (builder);

  root = json_builder_get_root (builder);
  return json_to_string (root, FALSE);
}

/**
 * kp_budget_entries_parse:
 * @entries: (element-type KpBudgetEntry): where the budgets read go
 * @text: the budgets as they are kept
 *
 * Adds the budgets of @text (at most %KP_BUDGETS_MAX) to @entries.
 */
void
kp_budget_entries_parse (GArray     *entries,
                         const char *text)
{
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(GError) error = NULL;
  JsonArray *array;

  if (strlen (text) > SETTING_MAX || (root = kp_json_parse (text, -1, &error)) == NULL ||
      !JSON_NODE_HOLDS_ARRAY (root))
    goto damaged;
  array = json_node_get_array (root);
  for (guint i = 0; i < json_array_get_length (array) && i < KP_BUDGETS_MAX; i++)
    {
      JsonNode *node = json_array_get_element (array, i);
      JsonObject *object;
      KpBudgetEntry entry = { 0 };

      if (!JSON_NODE_HOLDS_OBJECT (node))
        goto damaged;
      object = json_node_get_object (node);
      if (!scope_from_string (kp_json_string_or (object, "scope", ""),
                              &entry.budget.scope))
        goto damaged;
      entry.budget.provider_id =
        g_strdup (kp_json_string (object, "provider"));
      entry.budget.client_id =
        (guint)CLAMP (kp_json_int_or (object, "client", 0), 0, G_MAXINT32);
      entry.budget.limit_nano = kp_json_int_or (object, "limit_nano", 0);
      if (!kp_budget_period_from_string (kp_json_string (object, "period"),
                                         &entry.budget.period) ||
          !kp_budget_action_from_string (kp_json_string (object, "action"),
                                         &entry.budget.action) ||
          !kp_budget_check (&entry.budget, NULL))
        {
          kp_budget_clear (&entry.budget);
          goto damaged;
        }
      g_array_append_val (entries, entry);
    }
  return;

damaged:
  g_warning ("The budgets in the database are damaged; the ones that could be read are kept.");
}
