/* kp-budgets-group.c: budgets, where they stand, and what each client spent
 *
 * On the Spend page it shows each budget's spend this period, what each
 * client spent this month and how many requests have no known price. In
 * Preferences it also adds and removes budgets.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include "kp-budgets-group.h"

#include <glib/gi18n.h>

#include "kp-ui-util.h"

typedef struct
{
  KpBudgetScope  scope;
  char          *provider_id;
  guint          client_id;
} Target;

struct _KpBudgetsGroup
{
  AdwPreferencesGroup parent_instance;

  KpGateway      *gateway;
  gboolean        editable;
  GPtrArray      *rows;         /* unowned: the group has them */
  GArray         *targets;      /* of Target, as target_row lists them */
  GCancellable   *cancellable;  /* of the spend read in flight */

  AdwExpanderRow *new_row;
  AdwComboRow    *period_row;
  AdwComboRow    *target_row;
  AdwEntryRow    *limit_row;
  AdwComboRow    *action_row;
};

G_DEFINE_FINAL_TYPE (KpBudgetsGroup, kp_budgets_group, ADW_TYPE_PREFERENCES_GROUP)

static void
target_clear (gpointer data)
{
  g_free (((Target *)data)->provider_id);
}

static void
kp_budgets_group_dispose (GObject *object)
{
  KpBudgetsGroup *self = KP_BUDGETS_GROUP (object);

  g_cancellable_cancel (self->cancellable);
  g_clear_object (&self->cancellable);
  gtk_widget_dispose_template (GTK_WIDGET (self), KP_TYPE_BUDGETS_GROUP);
  g_clear_pointer (&self->rows, g_ptr_array_unref);
  g_clear_pointer (&self->targets, g_array_unref);
  g_clear_object (&self->gateway);

  G_OBJECT_CLASS (kp_budgets_group_parent_class)->dispose (object);
}

static void
add_row (KpBudgetsGroup *self,
         const char     *title,
         const char     *subtitle,
         GtkWidget      *suffix)
{
  GtkWidget *row = adw_action_row_new ();

  adw_preferences_row_set_use_markup (ADW_PREFERENCES_ROW (row), FALSE);
  adw_preferences_row_set_title (ADW_PREFERENCES_ROW (row), title);
  if (subtitle != NULL)
    adw_action_row_set_subtitle (ADW_ACTION_ROW (row), subtitle);
  if (suffix != NULL)
    adw_action_row_add_suffix (ADW_ACTION_ROW (row), suffix);
  adw_preferences_group_add (ADW_PREFERENCES_GROUP (self), row);
  g_ptr_array_add (self->rows, row);
}

static void
show_error (KpBudgetsGroup *self,
            const char     *message)
{
  GtkRoot *root = gtk_widget_get_root (GTK_WIDGET (self));
  GtkWidget *dialog = adw_message_dialog_new (GTK_IS_WINDOW (root) ? GTK_WINDOW (root) : NULL,
                                              _("Budget Not Changed"), message);

  adw_message_dialog_add_response (ADW_MESSAGE_DIALOG (dialog), "close", _("_Close"));
  gtk_window_present (GTK_WINDOW (dialog));
}

static void
on_remove_clicked (GtkButton      *button,
                   KpBudgetsGroup *self)
{
  const KpBudget *budget = g_object_get_data (G_OBJECT (button), "budget");
  g_autoptr(GError) error = NULL;

  if (!kp_budgets_clear (kp_gateway_get_budgets (self->gateway), budget, &error))
    show_error (self, error->message);
  kp_budgets_group_refresh (self);
}

static void
budget_free (gpointer data)
{
  KpBudget *budget = data;

  g_free (budget->provider_id);
  g_free (budget);
}

/* "$1.20 of $5.00 (24 %) · refuses paid requests · resets 2026-12-03 00:00" */
static char *
describe_status (const KpBudgetStatus *status)
{
  g_autofree char *spent = kp_ui_format_usd (status->spent_nano);
  g_autofree char *limit = kp_ui_format_usd (status->budget.limit_nano);
  g_autofree char *resets = kp_ui_format_time (status->resets_at);

  /* Translators: spend, limit, percent, what happens at 100 %, when it starts again. */
  return g_strdup_printf (_("%s of %s (%.0f %%) · %s · starts again %s"), spent, limit,
                          100.0 * status->spent_nano / status->budget.limit_nano,
                          status->budget.action == KP_BUDGET_REFUSE ? _("refuses paid requests")
                                                                    : _("warns only"),
                          resets);
}

static void
add_budget_rows (KpBudgetsGroup *self)
{
  KpBudgets *budgets = kp_gateway_get_budgets (self->gateway);
  g_autoptr(GPtrArray) list = kp_budgets_list (budgets);

  for (guint i = 0; i < list->len; i++)
    {
      KpBudgetStatus *status = g_ptr_array_index (list, i);
      g_autofree char *subtitle = describe_status (status);
      g_autofree char *title = NULL;
      GtkWidget *remove = NULL;

      /* "the daily budget for aider" → "Daily budget for aider" */
      title = g_strdup (g_str_has_prefix (status->name, "the ") ? status->name + 4 : status->name);
      title[0] = g_ascii_toupper (title[0]);
      if (self->editable)
        {
          KpBudget *budget = g_new0 (KpBudget, 1);
          g_autofree char *label = g_strdup_printf (_("Remove %s"), title);

          *budget = status->budget;
          budget->provider_id = g_strdup (status->budget.provider_id);
          remove = gtk_button_new_from_icon_name ("user-trash-symbolic");
          gtk_widget_set_valign (remove, GTK_ALIGN_CENTER);
          gtk_widget_add_css_class (remove, "flat");
          gtk_widget_set_tooltip_text (remove, label);
          kp_ui_set_accessible_label (remove, label);
          g_object_set_data_full (G_OBJECT (remove), "budget", budget, budget_free);
          g_signal_connect (remove, "clicked", G_CALLBACK (on_remove_clicked), self);
        }
      add_row (self, title, subtitle, remove);
    }
  if (list->len == 0 && !self->editable)
    add_row (self, _("No budgets"), _("Set daily or monthly limits in Preferences."), NULL);
}

static void
on_client_spend_read (GObject      *object,
                      GAsyncResult *result,
                      gpointer      user_data)
{
  KpBudgetsGroup *self = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) rows = kp_ledger_spend_finish (KP_LEDGER (object), result, &error);

  if (rows == NULL)
    return;  /* Cancelled: the group is gone or reading again. */

  for (guint i = 0; i < rows->len; i++)
    {
      KpSpendRow *row = g_ptr_array_index (rows, i);
      guint64 id = 0;
      g_autofree char *name = NULL;
      g_autofree char *title = NULL;
      g_autofree char *cost = kp_ui_format_usd (row->cost_nano);
      g_autofree char *subtitle = NULL;

      g_ascii_string_to_unsigned (row->key, 10, 0, G_MAXUINT, &id, NULL);
      name = kp_clients_dup_name (kp_gateway_get_clients (self->gateway), (guint)id);
      /* Translators: a client's name, such as "Claude Code". */
      title = g_strdup_printf (_("%s this month"), name);
      if (row->unknown_cost > 0)
        /* Translators: an amount, then a count of requests. */
        subtitle = g_strdup_printf (g_dngettext (GETTEXT_PACKAGE,
                                                 "%s, and %d request of unknown cost",
                                                 "%s, and %d requests of unknown cost",
                                                 (gulong)row->unknown_cost),
                                    cost, (int)row->unknown_cost);
      else
        subtitle = g_strdup (cost);
      add_row (self, title, subtitle, NULL);
    }
}

static void
read_client_spend (KpBudgetsGroup *self)
{
  KpLedger *ledger = kp_gateway_get_ledger (self->gateway);
  g_autoptr(GDateTime) now = g_date_time_new_now_local ();
  g_autoptr(GDateTime) month = g_date_time_new_local (g_date_time_get_year (now),
                                                      g_date_time_get_month (now), 1, 0, 0, 0);

  if (ledger == NULL)
    return;
  g_cancellable_cancel (self->cancellable);
  g_clear_object (&self->cancellable);
  self->cancellable = g_cancellable_new ();
  kp_ledger_spend_async (ledger, g_date_time_to_unix (month) * 1000, KP_SPEND_BY_CLIENT,
                         self->cancellable, on_client_spend_read, self);
}

static void
fill_targets (KpBudgetsGroup *self)
{
  GPtrArray *providers = kp_catalog_get_providers (kp_gateway_get_catalog (self->gateway));
  g_autoptr(GPtrArray) clients = kp_clients_list (kp_gateway_get_clients (self->gateway), FALSE);
  g_autoptr(GtkStringList) names = gtk_string_list_new (NULL);
  Target everything = { KP_BUDGET_ALL, NULL, 0 };

  g_array_set_size (self->targets, 0);
  gtk_string_list_append (names, _("Everything"));
  g_array_append_val (self->targets, everything);
  for (guint i = 0; i < providers->len; i++)
    {
      KpProvider *provider = g_ptr_array_index (providers, i);
      g_autofree char *name = NULL;
      Target target = { KP_BUDGET_PROVIDER, g_strdup (kp_provider_get_id (provider)), 0 };

      if (kp_gateway_count_keys (self->gateway, provider) == 0)
        {
          g_free (target.provider_id);
          continue;
        }
      /* Translators: a provider's name, such as "DeepSeek". */
      name = g_strdup_printf (_("Provider %s"), kp_provider_get_name (provider));
      gtk_string_list_append (names, name);
      g_array_append_val (self->targets, target);
    }
  for (guint i = 0; i < clients->len; i++)
    {
      KpClientInfo *info = g_ptr_array_index (clients, i);
      g_autofree char *name = g_strdup_printf (_("Client %s"), info->name);
      Target target = { KP_BUDGET_CLIENT, NULL, info->id };

      gtk_string_list_append (names, name);
      g_array_append_val (self->targets, target);
    }
  adw_combo_row_set_model (self->target_row, G_LIST_MODEL (names));
}

/* A number of dollars with at most nine decimals. */
static gboolean
parse_limit (const char *text,
             gint64     *nano)
{
  double value;
  char *end = NULL;

  if (*text == '$')
    text++;
  value = g_ascii_strtod (text, &end);
  if (end == text || *end != '\0' || !(value > 0) || value > 1e6)
    return FALSE;
  *nano = (gint64)(value * 1e9 + 0.5);
  return *nano > 0;
}

static void
on_add (KpBudgetsGroup *self)
{
  g_autoptr(GError) error = NULL;
  const Target *target;
  guint index = adw_combo_row_get_selected (self->target_row);
  KpBudget budget = { 0 };

  if (self->gateway == NULL || index >= self->targets->len)
    return;
  if (!parse_limit (gtk_editable_get_text (GTK_EDITABLE (self->limit_row)), &budget.limit_nano))
    {
      show_error (self, _("The limit is an amount of US dollars above 0, such as 5 or 0.50."));
      return;
    }
  target = &g_array_index (self->targets, Target, index);
  budget.scope = target->scope;
  budget.provider_id = target->provider_id;
  budget.client_id = target->client_id;
  budget.period = adw_combo_row_get_selected (self->period_row) == 0 ? KP_BUDGET_DAY
                                                                      : KP_BUDGET_MONTH;
  budget.action = adw_combo_row_get_selected (self->action_row) == 0 ? KP_BUDGET_WARN
                                                                      : KP_BUDGET_REFUSE;
  if (!kp_budgets_set (kp_gateway_get_budgets (self->gateway), &budget, &error))
    {
      show_error (self, error->message);
      return;
    }
  gtk_editable_set_text (GTK_EDITABLE (self->limit_row), "");
  adw_expander_row_set_expanded (self->new_row, FALSE);
  kp_budgets_group_refresh (self);
}

static void
kp_budgets_group_class_init (KpBudgetsGroupClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = kp_budgets_group_dispose;

  gtk_widget_class_set_template_from_resource (widget_class,
                                               KP_UI_RESOURCE ("kp-budgets-group.ui"));
  gtk_widget_class_bind_template_child (widget_class, KpBudgetsGroup, new_row);
  gtk_widget_class_bind_template_child (widget_class, KpBudgetsGroup, period_row);
  gtk_widget_class_bind_template_child (widget_class, KpBudgetsGroup, target_row);
  gtk_widget_class_bind_template_child (widget_class, KpBudgetsGroup, limit_row);
  gtk_widget_class_bind_template_child (widget_class, KpBudgetsGroup, action_row);
  gtk_widget_class_bind_template_callback (widget_class, on_add);
}

static void
kp_budgets_group_init (KpBudgetsGroup *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));
  self->rows = g_ptr_array_new ();
  self->targets = g_array_new (FALSE, TRUE, sizeof (Target));
  g_array_set_clear_func (self->targets, target_clear);
}

/**
 * kp_budgets_group_new:
 * @editable: whether budgets can be added and removed here (Preferences),
 *   else the group shows spend this month by client too (the Spend page)
 */
KpBudgetsGroup *
kp_budgets_group_new (KpGateway *gateway,
                      gboolean   editable)
{
  KpBudgetsGroup *self = g_object_new (KP_TYPE_BUDGETS_GROUP, NULL);

  self->editable = editable;
  gtk_widget_set_visible (GTK_WIDGET (self->new_row), editable);
  if (editable)
    adw_preferences_group_set_description (ADW_PREFERENCES_GROUP (self),
                                           _("At 80 % of a budget Keypool tells you once; when it "
                                             "is spent it warns again, or refuses the requests "
                                             "that would be billed against it. Free routes always "
                                             "serve."));
  kp_budgets_group_set_gateway (self, gateway);
  return self;
}

void
kp_budgets_group_set_gateway (KpBudgetsGroup *self,
                              KpGateway      *gateway)
{
  g_return_if_fail (KP_IS_BUDGETS_GROUP (self));
  g_return_if_fail (KP_IS_GATEWAY (gateway));

  g_set_object (&self->gateway, gateway);
  kp_budgets_group_refresh (self);
}

/**
 * kp_budgets_group_refresh:
 *
 * Shows the budgets as they stand now, and reads this month's spend by
 * client again.
 */
void
kp_budgets_group_refresh (KpBudgetsGroup *self)
{
  KpBudgets *budgets;
  gint64 unknown;

  g_return_if_fail (KP_IS_BUDGETS_GROUP (self));

  for (guint i = 0; i < self->rows->len; i++)
    adw_preferences_group_remove (ADW_PREFERENCES_GROUP (self), g_ptr_array_index (self->rows, i));
  g_ptr_array_set_size (self->rows, 0);
  if (self->gateway == NULL || kp_gateway_get_ledger (self->gateway) == NULL)
    return;

  budgets = kp_gateway_get_budgets (self->gateway);
  add_budget_rows (self);
  if (self->editable)
    {
      fill_targets (self);
      return;
    }

  unknown = kp_budgets_get_unknown (budgets, KP_BUDGET_MONTH);
  if (unknown > 0)
    {
      g_autofree char *text =
        g_strdup_printf (g_dngettext (GETTEXT_PACKAGE,
                                      "%d request this month has no known price: no budget counts it.",
                                      "%d requests this month have no known price: no budget counts them.",
                                      (gulong)unknown), (int)unknown);

      adw_preferences_group_set_description (ADW_PREFERENCES_GROUP (self), text);
    }
  else
    adw_preferences_group_set_description (ADW_PREFERENCES_GROUP (self), NULL);
  read_client_spend (self);
}
