/* kp-spend-page.c: what Keypool's requests cost
 *
 * Totals for today, 7 and 30 days per provider, a chart of spend per day,
 * the recent problems (KpProblemsGroup) and the recent requests. Refreshed
 * as each request finishes.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include "kp-spend-page.h"

#include <glib/gi18n.h>

#include "kp-budgets-group.h"
#include "kp-problems-group.h"
#include "kp-spend-chart.h"
#include "kp-spend-text.h"
#include "kp-ui-util.h"

#define CHART_DAYS      30
#define RECENT_REQUESTS 50
#define REFRESH_DELAY_MS 150

/* The totals' periods, in days before today: today, 7 days, 30 days. */
static const int PERIODS[] = { 0, 6, 29 };

struct _KpSpendPage
{
  AdwBin        parent_instance;

  KpGateway    *gateway;
  guint         refresh_id;
  GCancellable *cancellable;
  gboolean      reading;        /* a Reading is on its way */
  gboolean      read_again;     /* and another one is due when it is back */
  GPtrArray    *request_rows;   /* unowned: the list box has them */

  GtkGrid      *totals_grid;
  GtkLabel     *credits_label;
  KpSpendChart *chart;
  GtkFlowBox   *legend;
  KpProblemsGroup *problems_group;
  KpBudgetsGroup  *budgets_group;
  GtkListBox   *requests_list;
};

G_DEFINE_FINAL_TYPE (KpSpendPage, kp_spend_page, ADW_TYPE_BIN)

/* Totals are kept per provider for each period. */
typedef struct
{
  char       *provider;
  KpSpendRow  period[G_N_ELEMENTS (PERIODS)];
} Totals;

static void
totals_free (Totals *totals)
{
  g_free (totals->provider);
  g_free (totals);
}

static void
kp_spend_page_dispose (GObject *object)
{
  KpSpendPage *self = KP_SPEND_PAGE (object);

  g_clear_handle_id (&self->refresh_id, g_source_remove);
  g_cancellable_cancel (self->cancellable);
  g_clear_object (&self->cancellable);
  /* AdwBin would unparent its child again after the template dropped it. */
  adw_bin_set_child (ADW_BIN (self), NULL);
  gtk_widget_dispose_template (GTK_WIDGET (self), KP_TYPE_SPEND_PAGE);
  g_clear_pointer (&self->request_rows, g_ptr_array_unref);
  g_clear_object (&self->gateway);

  G_OBJECT_CLASS (kp_spend_page_parent_class)->dispose (object);
}

static void
kp_spend_page_class_init (KpSpendPageClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = kp_spend_page_dispose;

  g_type_ensure (KP_TYPE_SPEND_CHART);
  g_type_ensure (KP_TYPE_PROBLEMS_GROUP);
  g_type_ensure (KP_TYPE_BUDGETS_GROUP);
  gtk_widget_class_set_template_from_resource (widget_class, KP_UI_RESOURCE ("kp-spend-page.ui"));
  gtk_widget_class_bind_template_child (widget_class, KpSpendPage, totals_grid);
  gtk_widget_class_bind_template_child (widget_class, KpSpendPage, credits_label);
  gtk_widget_class_bind_template_child (widget_class, KpSpendPage, chart);
  gtk_widget_class_bind_template_child (widget_class, KpSpendPage, legend);
  gtk_widget_class_bind_template_child (widget_class, KpSpendPage, problems_group);
  gtk_widget_class_bind_template_child (widget_class, KpSpendPage, budgets_group);
  gtk_widget_class_bind_template_child (widget_class, KpSpendPage, requests_list);
}

static void
kp_spend_page_init (KpSpendPage *self)
{
  GtkWidget *placeholder;

  gtk_widget_init_template (GTK_WIDGET (self));
  self->request_rows = g_ptr_array_new ();
  self->cancellable = g_cancellable_new ();

  placeholder = gtk_label_new (_("No requests yet. Point a tool at Keypool (see Connect) and its "
                                 "requests show here."));
  gtk_label_set_wrap (GTK_LABEL (placeholder), TRUE);
  gtk_widget_set_margin_top (placeholder, 18);
  gtk_widget_set_margin_bottom (placeholder, 18);
  gtk_widget_set_margin_start (placeholder, 12);
  gtk_widget_set_margin_end (placeholder, 12);
  gtk_widget_add_css_class (placeholder, "dim-label");
  gtk_list_box_set_placeholder (self->requests_list, placeholder);
}

static gboolean
refresh_cb (gpointer user_data)
{
  KpSpendPage *self = user_data;

  self->refresh_id = 0;
  kp_spend_page_refresh (self);
  return G_SOURCE_REMOVE;
}

/* Several requests finishing together refresh the page once. */
static void
on_request_finished (KpSpendPage *self)
{
  if (self->refresh_id == 0)
    self->refresh_id = g_timeout_add (REFRESH_DELAY_MS, refresh_cb, self);
}

void
kp_spend_page_set_gateway (KpSpendPage *self,
                           KpGateway   *gateway)
{
  g_return_if_fail (KP_IS_SPEND_PAGE (self));
  g_return_if_fail (KP_IS_GATEWAY (gateway));
  g_return_if_fail (self->gateway == NULL);

  self->gateway = g_object_ref (gateway);
  g_signal_connect_object (gateway, "request-finished", G_CALLBACK (on_request_finished), self,
                           G_CONNECT_SWAPPED);
  kp_problems_group_set_gateway (self->problems_group, gateway);
  kp_budgets_group_set_gateway (self->budgets_group, gateway);
  kp_spend_page_refresh (self);
}

static GDateTime *
local_midnight_days_ago (int days)
{
  g_autoptr(GDateTime) now = g_date_time_new_now_local ();
  g_autoptr(GDateTime) midnight = NULL;

  midnight = g_date_time_new_local (g_date_time_get_year (now), g_date_time_get_month (now),
                                    g_date_time_get_day_of_month (now), 0, 0, 0);

  return g_date_time_add_days (midnight, -days);
}

static const char *
provider_name (KpSpendPage *self,
               const char  *id)
{
  KpCatalog *catalog = kp_gateway_get_catalog (self->gateway);
  KpProvider *provider = id ? kp_catalog_get_provider (catalog, id) : NULL;

  if (provider != NULL)
    return kp_provider_get_name (provider);
  return id && !g_str_equal (id, "(none)") ? id : _("No provider");
}

static GtkWidget *
grid_label (const char *text,
            gboolean    numeric,
            gboolean    heading)
{
  GtkWidget *label = gtk_label_new (text);

  gtk_label_set_xalign (GTK_LABEL (label), numeric ? 1.0f : 0.0f);
  if (numeric)
    gtk_widget_add_css_class (label, "numeric");
  if (heading)
    gtk_widget_add_css_class (label, "heading");
  else
    gtk_label_set_selectable (GTK_LABEL (label), FALSE);
  gtk_label_set_ellipsize (GTK_LABEL (label), numeric ? PANGO_ELLIPSIZE_NONE : PANGO_ELLIPSIZE_END);
  gtk_widget_set_hexpand (label, !numeric);
  return label;
}

static void
add_spend (KpSpendRow       *sum,
           const KpSpendRow *row)
{
  sum->requests += row->requests;
  sum->cost_nano += row->cost_nano;
  sum->unknown_cost += row->unknown_cost;
  sum->subscription += row->subscription;
  sum->has_credits |= row->has_credits;
  sum->credits += row->credits;
}

static const char *
provider_name_cb (const char *id,
                  gpointer    data)
{
  return provider_name (data, id);
}

/* @periods: the spend by provider since today, 7 and 30 days (PERIODS). */
static void
refresh_totals (KpSpendPage  *self,
                GPtrArray   **periods)
{
  g_autoptr(GPtrArray) totals = g_ptr_array_new_with_free_func ((GDestroyNotify)totals_free);
  g_autoptr(GHashTable) by_provider = g_hash_table_new (g_str_hash, g_str_equal);
  const char *headings[] = { _("Provider"), _("Today"), _("7 Days"), _("30 Days") };
  Totals all = { 0 };
  GtkWidget *child;
  int row = 1;

  while ((child = gtk_widget_get_first_child (GTK_WIDGET (self->totals_grid))) != NULL)
    gtk_grid_remove (self->totals_grid, child);

  for (guint h = 0; h < G_N_ELEMENTS (headings); h++)
    gtk_grid_attach (self->totals_grid, grid_label (headings[h], h > 0, TRUE), h, 0, 1, 1);

  for (guint p = 0; p < G_N_ELEMENTS (PERIODS); p++)
    {
      GPtrArray *rows = periods[p];

      for (guint i = 0; i < rows->len; i++)
        {
          KpSpendRow *spend = g_ptr_array_index (rows, i);
          Totals *t = g_hash_table_lookup (by_provider, spend->key);

          if (t == NULL)
            {
              t = g_new0 (Totals, 1);
              t->provider = g_strdup (spend->key);
              g_ptr_array_add (totals, t);
              g_hash_table_insert (by_provider, t->provider, t);
            }
          add_spend (&t->period[p], spend);
          add_spend (&all.period[p], spend);
        }
    }

  for (guint i = 0; i < totals->len; i++, row++)
    {
      Totals *t = g_ptr_array_index (totals, i);

      const char *name = provider_name (self, t->provider);

      gtk_grid_attach (self->totals_grid, grid_label (name, FALSE, FALSE), 0, row, 1, 1);
      for (guint p = 0; p < G_N_ELEMENTS (PERIODS); p++)
        {
          g_autofree char *text = kp_spend_describe_total (&t->period[p], kp_ui_format_usd);

          gtk_grid_attach (self->totals_grid, grid_label (text, TRUE, FALSE), p + 1, row, 1, 1);
        }
    }

  gtk_grid_attach (self->totals_grid, grid_label (_("All providers"), FALSE, TRUE), 0, row, 1, 1);
  for (guint p = 0; p < G_N_ELEMENTS (PERIODS); p++)
    {
      g_autofree char *text = kp_spend_describe_total (&all.period[p], kp_ui_format_usd);

      gtk_grid_attach (self->totals_grid, grid_label (text, TRUE, TRUE), p + 1, row, 1, 1);
    }
}

/* @rows: the spend by provider this month. Credits are no money: they are
 * told apart, per provider that reported any.
 */
static void
refresh_credits (KpSpendPage *self,
                 GPtrArray   *rows)
{
  /* Translators: after a count of credits: "Kiro: 41.3 credits this month". */
  g_autofree char *text = kp_spend_describe_credits (rows, provider_name_cb, self,
                                                     _("this month"));

  gtk_label_set_text (self->credits_label, text ? text : "");
  gtk_widget_set_visible (GTK_WIDGET (self->credits_label), text != NULL);
}

/* @rows: the spend by day and provider since @first. */
static void
refresh_chart (KpSpendPage *self,
               GDateTime   *first,
               GPtrArray   *rows)
{
  g_autoptr(GHashTable) names = g_hash_table_new (g_str_hash, g_str_equal);
  GPtrArray *providers = kp_catalog_get_providers (kp_gateway_get_catalog (self->gateway));
  GtkWidget *child;

  for (guint i = 0; i < providers->len; i++)
    {
      KpProvider *provider = g_ptr_array_index (providers, i);

      g_hash_table_insert (names, (gpointer)kp_provider_get_id (provider),
                           (gpointer)kp_provider_get_name (provider));
    }
  g_hash_table_insert (names, (gpointer)"(none)", (gpointer)_("No provider"));
  kp_spend_chart_set_data (self->chart, first, CHART_DAYS, rows, names);

  while ((child = gtk_widget_get_first_child (GTK_WIDGET (self->legend))) != NULL)
    gtk_flow_box_remove (self->legend, child);
  for (guint p = 0; p < kp_spend_chart_get_n_providers (self->chart); p++)
    {
      const char *name = kp_spend_chart_get_provider_name (self->chart, p);
      g_autofree char *escaped = g_markup_escape_text (name, -1);
      g_autofree char *markup = g_strdup_printf ("<span foreground=\"%s\">●</span> %s",
                                                 kp_spend_chart_get_provider_color (self->chart, p),
                                                 escaped);
      GtkWidget *label = gtk_label_new (NULL);

      gtk_label_set_markup (GTK_LABEL (label), markup);
      gtk_widget_add_css_class (label, "caption");
      gtk_flow_box_append (self->legend, label);
    }
  gtk_widget_set_visible (GTK_WIDGET (self->legend),
                          kp_spend_chart_get_n_providers (self->chart) > 0);
}

static GtkWidget *
request_row_new (KpSpendPage        *self,
                 const KpRequestRow *request)
{
  GtkWidget *row = adw_action_row_new ();
  GtkWidget *box = gtk_box_new (GTK_ORIENTATION_VERTICAL, 2);
  GtkWidget *cost_label;
  GtkWidget *source_label;
  g_autofree char *time = kp_ui_format_time (request->time_ms / 1000);
  g_autofree char *in = kp_ui_format_count (request->prompt_tokens);
  g_autofree char *out = kp_ui_format_count (request->completion_tokens);
  g_autofree char *cost = NULL;
  g_autofree char *credits = NULL;
  g_autofree char *ms = request->total_ms >= 0 ? kp_ui_format_count (request->total_ms)
                                               : g_strdup ("–");
  g_autoptr(GString) subtitle = g_string_new (NULL);
  const char *source = request->cost_source ? request->cost_source : "unknown";
  gboolean ok = g_strcmp0 (request->outcome, "ok") == 0;

  /* Translators: a time, a provider, input and output tokens, and milliseconds. */
  g_string_append_printf (subtitle, _("%s · %s · %s in, %s out tokens · %s ms"),
                          time, provider_name (self, request->provider), in, out, ms);
  if (request->tokens_estimated)
    g_string_append_printf (subtitle, " · %s", _("tokens estimated by Keypool"));
  if (!ok)
    {
      g_string_append_printf (subtitle, "\n%s", request->outcome ? request->outcome : "?");
      if (request->status > 0)
        g_string_append_printf (subtitle, " (HTTP %u)", request->status);
      if (request->error != NULL && *request->error != '\0')
        g_string_append_printf (subtitle, ": %s", request->error);
    }

  adw_preferences_row_set_use_markup (ADW_PREFERENCES_ROW (row), FALSE);
  adw_preferences_row_set_title (ADW_PREFERENCES_ROW (row),
                                 request->model ? request->model : _("No model"));
  adw_action_row_set_subtitle (ADW_ACTION_ROW (row), subtitle->str);
  adw_action_row_set_subtitle_lines (ADW_ACTION_ROW (row), 3);

  /* A subscription's request is no spend: never shown as $0.00. */
  if (g_str_equal (source, "unknown"))
    cost = g_strdup (_("unknown"));
  else if (g_str_equal (source, "subscription"))
    cost = g_strdup (_("subscription"));
  else
    cost = kp_ui_format_usd (request->cost_nano);
  cost_label = gtk_label_new (cost);
  gtk_label_set_xalign (GTK_LABEL (cost_label), 1.0f);
  gtk_widget_add_css_class (cost_label, "numeric");
  if (request->has_credits)
    credits = kp_spend_format_credits (request->credits);
  source_label = gtk_label_new (credits ? credits
                                : g_str_equal (source, "reported") ? _("reported")
                                : g_str_equal (source, "computed") ? _("computed")
                                : g_str_equal (source, "estimated") ? _("estimated")
                                : g_str_equal (source, "subscription") ? _("no spend")
                                : _("no price"));
  gtk_label_set_xalign (GTK_LABEL (source_label), 1.0f);
  gtk_widget_add_css_class (source_label, "caption");
  gtk_widget_add_css_class (source_label, "dim-label");
  gtk_widget_set_valign (box, GTK_ALIGN_CENTER);
  gtk_box_append (GTK_BOX (box), cost_label);
  gtk_box_append (GTK_BOX (box), source_label);
  adw_action_row_add_suffix (ADW_ACTION_ROW (row), box);

  if (!ok)
    {
      GtkWidget *icon = gtk_image_new_from_icon_name ("dialog-error-symbolic");

      gtk_widget_add_css_class (icon, "error");
      gtk_accessible_update_property (GTK_ACCESSIBLE (icon),
                                      GTK_ACCESSIBLE_PROPERTY_LABEL, _("Failed"),
                                      -1);
      adw_action_row_add_prefix (ADW_ACTION_ROW (row), icon);
    }
  return row;
}

/* New requests are added at the top; rows already shown stay as they are,
 * so a busy gateway does not rebuild the list for every request.
 */
static void
refresh_requests (KpSpendPage *self,
                  GPtrArray   *requests)
{
  const char *newest = NULL;
  guint n_new = 0;

  if (self->request_rows->len > 0)
    newest = g_object_get_data (g_ptr_array_index (self->request_rows, 0), "request-id");
  while (n_new < requests->len)
    {
      KpRequestRow *request = g_ptr_array_index (requests, n_new);

      if (newest != NULL && g_strcmp0 (request->request_id, newest) == 0)
        break;
      n_new++;
    }

  /* The newest row shown is gone from the ledger's list: start over. */
  if (n_new == requests->len)
    {
      for (guint i = 0; i < self->request_rows->len; i++)
        gtk_list_box_remove (self->requests_list, g_ptr_array_index (self->request_rows, i));
      g_ptr_array_set_size (self->request_rows, 0);
    }

  for (guint i = n_new; i > 0; i--)
    {
      KpRequestRow *request = g_ptr_array_index (requests, i - 1);
      GtkWidget *row = request_row_new (self, request);

      g_object_set_data_full (G_OBJECT (row), "request-id", g_strdup (request->request_id), g_free);
      gtk_list_box_prepend (self->requests_list, row);
      g_ptr_array_insert (self->request_rows, 0, row);
    }

  while (self->request_rows->len > RECENT_REQUESTS)
    {
      GtkWidget *row = g_ptr_array_index (self->request_rows, self->request_rows->len - 1);

      gtk_list_box_remove (self->requests_list, row);
      g_ptr_array_set_size (self->request_rows, self->request_rows->len - 1);
    }
}

/* Reading -------------------------------------------------------------------
 *
 * The totals, the chart and the recent requests are read on worker threads
 * (see kp_ledger_spend_async()), never on the loop that serves, and shown
 * together once all are back.
 */

typedef struct
{
  KpSpendPage  *page;          /* not a reference: valid while not cancelled */
  GCancellable *cancellable;
  guint         pending;
  GPtrArray    *periods[G_N_ELEMENTS (PERIODS)];
  GPtrArray    *month;         /* by provider, for the credits */
  GDateTime    *chart_first;
  GPtrArray    *chart;
  GPtrArray    *requests;
  GError       *error;         /* the first that went wrong */
} Reading;

static void
reading_free (Reading *reading)
{
  g_clear_object (&reading->cancellable);
  for (guint p = 0; p < G_N_ELEMENTS (PERIODS); p++)
    g_clear_pointer (&reading->periods[p], g_ptr_array_unref);
  g_clear_pointer (&reading->month, g_ptr_array_unref);
  g_clear_pointer (&reading->chart_first, g_date_time_unref);
  g_clear_pointer (&reading->chart, g_ptr_array_unref);
  g_clear_pointer (&reading->requests, g_ptr_array_unref);
  g_clear_error (&reading->error);
  g_free (reading);
}

static void read_ledger (KpSpendPage *self);

/* Takes @reading once every read is back. */
static void
reading_step_done (Reading *reading)
{
  KpSpendPage *self = reading->page;

  g_assert (reading->pending > 0);
  if (--reading->pending > 0)
    return;

  /* The page went away meanwhile. */
  if (g_cancellable_is_cancelled (reading->cancellable))
    {
      reading_free (reading);
      return;
    }

  self->reading = FALSE;
  if (reading->error != NULL)
    kp_ui_toast (GTK_WIDGET (self), reading->error->message);
  else
    {
      refresh_totals (self, reading->periods);
      refresh_credits (self, reading->month);
      refresh_chart (self, reading->chart_first, reading->chart);
      refresh_requests (self, reading->requests);
    }
  reading_free (reading);

  if (self->read_again)
    {
      self->read_again = FALSE;
      read_ledger (self);
    }
}

static void
keep_rows (Reading    *reading,
           GPtrArray **where,
           GPtrArray  *rows,
           GError     *error)
{
  if (rows != NULL)
    *where = rows;
  else if (reading->error == NULL)
    reading->error = error;
  else
    g_error_free (error);
  reading_step_done (reading);
}

/* One of the periods: they come back in any order. */
typedef struct
{
  Reading *reading;
  guint    period;
} PeriodRead;

static void
on_period_read (GObject      *object,
                GAsyncResult *result,
                gpointer      user_data)
{
  g_autofree PeriodRead *read = user_data;
  GError *error = NULL;
  GPtrArray *rows = kp_ledger_spend_finish (KP_LEDGER (object), result, &error);

  keep_rows (read->reading, &read->reading->periods[read->period], rows, error);
}

static void
on_month_read (GObject      *object,
               GAsyncResult *result,
               gpointer      user_data)
{
  Reading *reading = user_data;
  GError *error = NULL;
  GPtrArray *rows = kp_ledger_spend_finish (KP_LEDGER (object), result, &error);

  keep_rows (reading, &reading->month, rows, error);
}

static void
on_chart_read (GObject      *object,
               GAsyncResult *result,
               gpointer      user_data)
{
  Reading *reading = user_data;
  GError *error = NULL;
  GPtrArray *rows = kp_ledger_spend_by_day_and_provider_finish (KP_LEDGER (object), result,
                                                                &error);

  keep_rows (reading, &reading->chart, rows, error);
}

static void
on_requests_read (GObject      *object,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  Reading *reading = user_data;
  GError *error = NULL;
  GPtrArray *rows = kp_ledger_recent_requests_finish (KP_LEDGER (object), result, &error);

  keep_rows (reading, &reading->requests, rows, error);
}

static void
read_ledger (KpSpendPage *self)
{
  KpLedger *ledger;
  Reading *reading;

  if (self->gateway == NULL || (ledger = kp_gateway_get_ledger (self->gateway)) == NULL)
    return;
  if (self->reading)
    {
      self->read_again = TRUE;
      return;
    }

  self->reading = TRUE;
  reading = g_new0 (Reading, 1);
  reading->page = self;
  reading->cancellable = g_object_ref (self->cancellable);
  reading->pending = G_N_ELEMENTS (PERIODS) + 3;
  reading->chart_first = local_midnight_days_ago (CHART_DAYS - 1);
  for (guint p = 0; p < G_N_ELEMENTS (PERIODS); p++)
    {
      g_autoptr(GDateTime) since = local_midnight_days_ago (PERIODS[p]);
      PeriodRead *read = g_new0 (PeriodRead, 1);

      read->reading = reading;
      read->period = p;
      kp_ledger_spend_async (ledger, g_date_time_to_unix (since) * 1000, KP_SPEND_BY_PROVIDER,
                             self->cancellable, on_period_read, read);
    }
  {
    g_autoptr(GDateTime) now = g_date_time_new_now_local ();
    g_autoptr(GDateTime) month = g_date_time_new_local (g_date_time_get_year (now),
                                                        g_date_time_get_month (now), 1, 0, 0, 0);

    kp_ledger_spend_async (ledger, g_date_time_to_unix (month) * 1000, KP_SPEND_BY_PROVIDER,
                           self->cancellable, on_month_read, reading);
  }
  kp_ledger_spend_by_day_and_provider_async (ledger,
                                             g_date_time_to_unix (reading->chart_first) * 1000,
                                             self->cancellable, on_chart_read, reading);
  kp_ledger_recent_requests_async (ledger, RECENT_REQUESTS, self->cancellable, on_requests_read,
                                   reading);
}

/**
 * kp_spend_page_refresh:
 * @self: a #KpSpendPage
 *
 * Reads the totals, the chart and the recent requests from the ledger, on
 * worker threads; the page shows them once they are back.
 */
void
kp_spend_page_refresh (KpSpendPage *self)
{
  g_return_if_fail (KP_IS_SPEND_PAGE (self));

  read_ledger (self);
  kp_problems_group_refresh (self->problems_group);
  kp_budgets_group_refresh (self->budgets_group);
}
