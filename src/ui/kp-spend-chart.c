/* kp-spend-chart.c: spend per day, stacked by provider
 *
 * A bar per day, each bar stacked by provider in the order of their spend
 * over the whole period. Hovering a bar, or choosing it with the arrow keys,
 * shows its figures in a tooltip and in the accessible description.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include "kp-spend-chart.h"

#include <math.h>

#include <glib/gi18n.h>

#include "kp-ledger.h"
#include "kp-ui-util.h"

#define GRID_LINES  2
#define PAD         8
#define LABEL_EVERY 7

/* The GNOME palette, strong enough to tell apart in both themes. */
static const char *palette[] = {
  "#3584e4", "#2ec27e", "#e66100", "#9141ac", "#f5c211", "#c01c28", "#865e3c", "#77767b",
};

typedef struct
{
  char   *id;
  char   *name;
  gint64  total;
} ChartProvider;

typedef struct
{
  GDateTime *date;
  gint64     total;
  gint64     unknown;
  gint64     requests;
  gint64    *costs;     /* per provider, in the order of self->providers */
} ChartDay;

struct _KpSpendChart
{
  GtkWidget   parent_instance;

  GPtrArray  *providers;   /* of ChartProvider, most spent first */
  GPtrArray  *days;        /* of ChartDay, oldest first */
  gint64      max_day;
  int         hover;       /* day under the pointer, or -1 */
  int         selected;    /* day chosen with the keyboard */
};

G_DEFINE_FINAL_TYPE (KpSpendChart, kp_spend_chart, GTK_TYPE_WIDGET)

static void
chart_provider_free (ChartProvider *provider)
{
  g_free (provider->id);
  g_free (provider->name);
  g_free (provider);
}

static void
chart_day_free (ChartDay *day)
{
  g_date_time_unref (day->date);
  g_free (day->costs);
  g_free (day);
}

GtkWidget *
kp_spend_chart_new (void)
{
  return g_object_new (KP_TYPE_SPEND_CHART, NULL);
}

static void
kp_spend_chart_finalize (GObject *object)
{
  KpSpendChart *self = KP_SPEND_CHART (object);

  g_clear_pointer (&self->providers, g_ptr_array_unref);
  g_clear_pointer (&self->days, g_ptr_array_unref);

  G_OBJECT_CLASS (kp_spend_chart_parent_class)->finalize (object);
}

/* A round number at least @value, for the top of the scale. */
static double
nice_ceiling (double value)
{
  static const double steps[] = { 1, 2, 5, 10 };
  double magnitude;

  if (value <= 0)
    return 1;
  magnitude = pow (10, floor (log10 (value)));
  for (guint i = 0; i < G_N_ELEMENTS (steps); i++)
    if (steps[i] * magnitude >= value)
      return steps[i] * magnitude;
  return 10 * magnitude;
}

static PangoLayout *
create_small_layout (GtkWidget  *widget,
                     const char *text)
{
  PangoLayout *layout = gtk_widget_create_pango_layout (widget, text);
  PangoAttrList *attrs = pango_attr_list_new ();

  pango_attr_list_insert (attrs, pango_attr_scale_new (0.8333));
  pango_attr_list_insert (attrs, pango_attr_font_features_new ("tnum=1"));
  pango_layout_set_attributes (layout, attrs);
  pango_attr_list_unref (attrs);
  return layout;
}

typedef struct
{
  float plot_x, plot_y, plot_w, plot_h;
  float slot;
} Geometry;

static void
get_geometry (KpSpendChart *self,
              Geometry     *geometry)
{
  GtkWidget *widget = GTK_WIDGET (self);
  double top = nice_ceiling (self->max_day / 1e9);
  g_autofree char *top_text = kp_ui_format_usd ((gint64)(top * 1e9));
  g_autoptr(PangoLayout) layout = create_small_layout (widget, top_text);
  int text_w, text_h;
  guint n = self->days ? MAX (self->days->len, 1) : 1;

  pango_layout_get_pixel_size (layout, &text_w, &text_h);
  geometry->plot_x = text_w + 2 * PAD;
  geometry->plot_y = text_h / 2.0f + 2;
  geometry->plot_w = MAX (gtk_widget_get_width (widget) - geometry->plot_x - PAD, 1);
  geometry->plot_h = MAX (gtk_widget_get_height (widget) - geometry->plot_y - text_h - 2 * PAD, 1);
  geometry->slot = geometry->plot_w / n;
}

static int
day_at (KpSpendChart *self,
        double        x)
{
  Geometry g;
  int day;

  if (self->days == NULL || self->days->len == 0)
    return -1;
  get_geometry (self, &g);
  if (x < g.plot_x || x >= g.plot_x + g.plot_w)
    return -1;
  day = (int)((x - g.plot_x) / g.slot);
  return CLAMP (day, 0, (int)self->days->len - 1);
}

static void
draw_text (GtkSnapshot   *snapshot,
           PangoLayout   *layout,
           float          x,
           float          y,
           const GdkRGBA *color)
{
  gtk_snapshot_save (snapshot);
  gtk_snapshot_translate (snapshot, &GRAPHENE_POINT_INIT (x, y));
  gtk_snapshot_append_layout (snapshot, layout, color);
  gtk_snapshot_restore (snapshot);
}

static void
kp_spend_chart_snapshot (GtkWidget   *widget,
                         GtkSnapshot *snapshot)
{
  KpSpendChart *self = KP_SPEND_CHART (widget);
  GdkRGBA fg, grid, dim, highlight;
  double top = nice_ceiling (self->max_day / 1e9);
  int focus_day = gtk_widget_has_focus (widget) ? self->selected : -1;
  Geometry g;

  gtk_style_context_get_color (gtk_widget_get_style_context (widget), &fg);
  grid = fg;
  grid.alpha = 0.15f;
  dim = fg;
  dim.alpha = 0.55f;
  highlight = fg;
  highlight.alpha = 0.07f;
  get_geometry (self, &g);

  /* The scale: a line and an amount at 0, half and the top. */
  for (int i = 0; i <= GRID_LINES; i++)
    {
      float y = g.plot_y + g.plot_h * (1.0f - (float)i / GRID_LINES);
      g_autofree char *text = kp_ui_format_usd ((gint64)(top * 1e9 * i / GRID_LINES));
      g_autoptr(PangoLayout) layout = create_small_layout (widget, text);
      int text_w, text_h;

      pango_layout_get_pixel_size (layout, &text_w, &text_h);
      gtk_snapshot_append_color (snapshot, &grid, &GRAPHENE_RECT_INIT (g.plot_x, y, g.plot_w, 1));
      draw_text (snapshot, layout, g.plot_x - PAD - text_w, y - text_h / 2.0f, &dim);
    }

  if (self->days == NULL || self->days->len == 0)
    return;

  for (guint d = 0; d < self->days->len; d++)
    {
      ChartDay *day = g_ptr_array_index (self->days, d);
      float bar_w = MAX (g.slot * 0.64f, 2.0f);
      float x = g.plot_x + d * g.slot + (g.slot - bar_w) / 2;
      float bottom = g.plot_y + g.plot_h;

      if ((int)d == self->hover || (int)d == focus_day)
        gtk_snapshot_append_color (snapshot, &highlight,
                                   &GRAPHENE_RECT_INIT (g.plot_x + d * g.slot, g.plot_y,
                                                        g.slot, g.plot_h));

      for (guint p = 0; p < self->providers->len; p++)
        {
          GdkRGBA color;
          float h;

          if (day->costs[p] <= 0)
            continue;
          h = (float)(day->costs[p] / 1e9 / top * g.plot_h);
          h = MAX (h, 1.0f);
          gdk_rgba_parse (&color, palette[p % G_N_ELEMENTS (palette)]);
          gtk_snapshot_append_color (snapshot, &color,
                                     &GRAPHENE_RECT_INIT (x, bottom - h, bar_w, h));
          bottom -= h;
        }

      /* Requests of unknown cost: a mark, never a bar that looks like $0. */
      if (day->unknown > 0)
        gtk_snapshot_append_color (snapshot, &dim, &GRAPHENE_RECT_INIT (x, bottom - 3, bar_w, 2));

      if ((self->days->len - 1 - d) % LABEL_EVERY == 0)
        {
          g_autofree char *text = g_date_time_format (day->date, _("%b %-d"));
          g_autoptr(PangoLayout) layout = create_small_layout (widget, text);
          int text_w, text_h;
          float label_x;

          pango_layout_get_pixel_size (layout, &text_w, &text_h);
          label_x = CLAMP (x + bar_w / 2 - text_w / 2.0f, 0,
                           gtk_widget_get_width (widget) - text_w);
          draw_text (snapshot, layout, label_x, g.plot_y + g.plot_h + PAD, &dim);
        }
    }

  if (self->max_day == 0)
    {
      g_autoptr(PangoLayout) layout = NULL;
      int text_w, text_h;

      layout = gtk_widget_create_pango_layout (widget, _("No spend in this period"));
      pango_layout_get_pixel_size (layout, &text_w, &text_h);
      draw_text (snapshot, layout, g.plot_x + (g.plot_w - text_w) / 2,
                 g.plot_y + (g.plot_h - text_h) / 2, &dim);
    }
}

static void
kp_spend_chart_measure (GtkWidget      *widget,
                        GtkOrientation  orientation,
                        int             for_size,
                        int            *minimum,
                        int            *natural,
                        int            *minimum_baseline,
                        int            *natural_baseline)
{
  if (orientation == GTK_ORIENTATION_HORIZONTAL)
    {
      *minimum = 240;
      *natural = 640;
    }
  else
    {
      *minimum = 160;
      *natural = 200;
    }
}

static gboolean
kp_spend_chart_query_tooltip (GtkWidget  *widget,
                              int         x,
                              int         y,
                              gboolean    keyboard_mode,
                              GtkTooltip *tooltip)
{
  KpSpendChart *self = KP_SPEND_CHART (widget);
  int day = keyboard_mode ? self->selected : day_at (self, x);
  g_autofree char *text = NULL;
  Geometry g;

  if (day < 0 || self->days == NULL || day >= (int)self->days->len)
    return FALSE;

  get_geometry (self, &g);
  text = kp_spend_chart_describe_day (self, day);
  gtk_tooltip_set_text (tooltip, text);
  gtk_tooltip_set_tip_area (tooltip, &(GdkRectangle) { (int)(g.plot_x + day * g.slot),
                                                       (int)g.plot_y, MAX ((int)g.slot, 1),
                                                       (int)g.plot_h });
  return TRUE;
}

static void
set_hover (KpSpendChart *self,
           int           day)
{
  if (self->hover == day)
    return;
  self->hover = day;
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

static void
on_motion (GtkEventControllerMotion *controller,
           double                    x,
           double                    y,
           KpSpendChart             *self)
{
  set_hover (self, day_at (self, x));
}

static void
on_leave (GtkEventControllerMotion *controller,
          KpSpendChart             *self)
{
  set_hover (self, -1);
}

static void
select_day (KpSpendChart *self,
            int           day)
{
  g_autofree char *text = NULL;

  if (self->days == NULL || self->days->len == 0)
    return;
  self->selected = CLAMP (day, 0, (int)self->days->len - 1);
  text = kp_spend_chart_describe_day (self, self->selected);
  gtk_accessible_update_property (GTK_ACCESSIBLE (self),
                                  GTK_ACCESSIBLE_PROPERTY_DESCRIPTION, text,
                                  -1);
  gtk_widget_queue_draw (GTK_WIDGET (self));
  gtk_widget_trigger_tooltip_query (GTK_WIDGET (self));
}

static gboolean
on_key_pressed (GtkEventControllerKey *controller,
                guint                  keyval,
                guint                  keycode,
                GdkModifierType        state,
                KpSpendChart          *self)
{
  int last = self->days ? (int)self->days->len - 1 : 0;

  switch (keyval)
    {
    case GDK_KEY_Left:
    case GDK_KEY_KP_Left:
      select_day (self, self->selected - 1);
      return TRUE;
    case GDK_KEY_Right:
    case GDK_KEY_KP_Right:
      select_day (self, self->selected + 1);
      return TRUE;
    case GDK_KEY_Home:
      select_day (self, 0);
      return TRUE;
    case GDK_KEY_End:
      select_day (self, last);
      return TRUE;
    default:
      return FALSE;
    }
}

static void
kp_spend_chart_class_init (KpSpendChartClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->finalize = kp_spend_chart_finalize;
  widget_class->snapshot = kp_spend_chart_snapshot;
  widget_class->measure = kp_spend_chart_measure;
  widget_class->query_tooltip = kp_spend_chart_query_tooltip;

  gtk_widget_class_set_css_name (widget_class, "spendchart");
  gtk_widget_class_set_accessible_role (widget_class, GTK_ACCESSIBLE_ROLE_IMG);
}

static void
kp_spend_chart_init (KpSpendChart *self)
{
  GtkEventController *motion = gtk_event_controller_motion_new ();
  GtkEventController *keys = gtk_event_controller_key_new ();
  GtkEventController *focus = gtk_event_controller_focus_new ();

  self->hover = -1;
  self->providers = g_ptr_array_new_with_free_func ((GDestroyNotify)chart_provider_free);
  self->days = g_ptr_array_new_with_free_func ((GDestroyNotify)chart_day_free);

  g_signal_connect (motion, "motion", G_CALLBACK (on_motion), self);
  g_signal_connect (motion, "leave", G_CALLBACK (on_leave), self);
  gtk_widget_add_controller (GTK_WIDGET (self), motion);
  g_signal_connect (keys, "key-pressed", G_CALLBACK (on_key_pressed), self);
  gtk_widget_add_controller (GTK_WIDGET (self), keys);
  g_signal_connect_swapped (focus, "enter", G_CALLBACK (gtk_widget_queue_draw), self);
  g_signal_connect_swapped (focus, "leave", G_CALLBACK (gtk_widget_queue_draw), self);
  gtk_widget_add_controller (GTK_WIDGET (self), focus);

  gtk_widget_set_focusable (GTK_WIDGET (self), TRUE);
  gtk_widget_set_has_tooltip (GTK_WIDGET (self), TRUE);
  gtk_accessible_update_property (GTK_ACCESSIBLE (self),
                                  GTK_ACCESSIBLE_PROPERTY_LABEL, _("Spend per day"),
                                  -1);
}

static int
compare_providers (gconstpointer a,
                   gconstpointer b)
{
  const ChartProvider *pa = *(const ChartProvider **)a;
  const ChartProvider *pb = *(const ChartProvider **)b;

  if (pa->total != pb->total)
    return pa->total > pb->total ? -1 : 1;
  return g_strcmp0 (pa->name, pb->name);
}

/**
 * kp_spend_chart_set_data:
 * @self: a #KpSpendChart
 * @first_day: the local midnight the first bar stands for
 * @n_days: how many days to show
 * @rows: (element-type KpSpendRow): spend per day and provider, from
 *   kp_ledger_spend_by_day_and_provider()
 * @names: (nullable): provider id → name
 */
void
kp_spend_chart_set_data (KpSpendChart *self,
                         GDateTime    *first_day,
                         guint         n_days,
                         GPtrArray    *rows,
                         GHashTable   *names)
{
  g_autoptr(GHashTable) day_index = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr(GHashTable) provider_index = g_hash_table_new (g_str_hash, g_str_equal);
  gint64 all = 0;
  g_autofree char *summary = NULL;

  g_return_if_fail (KP_IS_SPEND_CHART (self));
  g_return_if_fail (first_day != NULL);
  g_return_if_fail (rows != NULL);

  g_ptr_array_set_size (self->providers, 0);
  g_ptr_array_set_size (self->days, 0);
  self->max_day = 0;

  /* The providers, most spent first: that is their colour and stack order. */
  for (guint i = 0; i < rows->len; i++)
    {
      KpSpendRow *row = g_ptr_array_index (rows, i);
      ChartProvider *provider = g_hash_table_lookup (provider_index, row->provider);

      if (provider == NULL)
        {
          const char *name = names ? g_hash_table_lookup (names, row->provider) : NULL;

          provider = g_new0 (ChartProvider, 1);
          provider->id = g_strdup (row->provider);
          provider->name = g_strdup (name ? name : row->provider);
          g_ptr_array_add (self->providers, provider);
          g_hash_table_insert (provider_index, provider->id, provider);
        }
      provider->total += row->cost_nano;
    }
  g_ptr_array_sort (self->providers, compare_providers);
  g_hash_table_remove_all (provider_index);
  for (guint p = 0; p < self->providers->len; p++)
    {
      ChartProvider *provider = g_ptr_array_index (self->providers, p);

      g_hash_table_insert (provider_index, provider->id, GUINT_TO_POINTER (p));
    }

  for (guint d = 0; d < n_days; d++)
    {
      ChartDay *day = g_new0 (ChartDay, 1);

      day->date = g_date_time_add_days (first_day, d);
      day->costs = g_new0 (gint64, MAX (self->providers->len, 1));
      g_ptr_array_add (self->days, day);
      g_hash_table_insert (day_index, g_date_time_format (day->date, "%Y-%m-%d"), day);
    }

  for (guint i = 0; i < rows->len; i++)
    {
      KpSpendRow *row = g_ptr_array_index (rows, i);
      ChartDay *day = g_hash_table_lookup (day_index, row->key);
      guint p = GPOINTER_TO_UINT (g_hash_table_lookup (provider_index, row->provider));

      if (day == NULL)
        continue;
      day->costs[p] += row->cost_nano;
      day->total += row->cost_nano;
      day->unknown += row->unknown_cost;
      day->requests += row->requests;
      all += row->cost_nano;
    }

  for (guint d = 0; d < self->days->len; d++)
    {
      ChartDay *day = g_ptr_array_index (self->days, d);

      self->max_day = MAX (self->max_day, day->total);
    }

  self->selected = self->days->len > 0 ? (int)self->days->len - 1 : 0;
  {
    g_autofree char *total = kp_ui_format_usd (all);

    /* Translators: %u is a number of days, %s an amount such as “$1.20”. */
    summary = g_strdup_printf (g_dngettext (GETTEXT_PACKAGE, "%2$s in the last %1$u day",
                                            "%2$s in the last %1$u days", n_days),
                               n_days, total);
  }
  gtk_accessible_update_property (GTK_ACCESSIBLE (self),
                                  GTK_ACCESSIBLE_PROPERTY_DESCRIPTION, summary,
                                  -1);
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

guint
kp_spend_chart_get_n_providers (KpSpendChart *self)
{
  g_return_val_if_fail (KP_IS_SPEND_CHART (self), 0);
  return self->providers->len;
}

const char *
kp_spend_chart_get_provider_name (KpSpendChart *self,
                                  guint         index)
{
  g_return_val_if_fail (KP_IS_SPEND_CHART (self), NULL);
  g_return_val_if_fail (index < self->providers->len, NULL);
  return ((ChartProvider *)g_ptr_array_index (self->providers, index))->name;
}

const char *
kp_spend_chart_get_provider_color (KpSpendChart *self,
                                   guint         index)
{
  g_return_val_if_fail (KP_IS_SPEND_CHART (self), NULL);
  return palette[index % G_N_ELEMENTS (palette)];
}

/**
 * kp_spend_chart_describe_day:
 * @self: a #KpSpendChart
 * @day: a bar, 0 for the oldest
 *
 * Returns: (transfer full): the day's date, total and spend per provider
 */
char *
kp_spend_chart_describe_day (KpSpendChart *self,
                             guint         day)
{
  ChartDay *data;
  g_autoptr(GString) text = g_string_new (NULL);
  g_autofree char *date = NULL;
  g_autofree char *total = NULL;
  g_autofree char *requests = NULL;

  g_return_val_if_fail (KP_IS_SPEND_CHART (self), NULL);
  g_return_val_if_fail (day < self->days->len, NULL);

  data = g_ptr_array_index (self->days, day);
  /* Translators: a date, see the strftime manual for the codes. */
  date = g_date_time_format (data->date, _("%A, %B %-d"));
  total = kp_ui_format_usd (data->total);
  requests = kp_ui_format_count (data->requests);
  /* Translators: a date, an amount, and a count of requests. */
  g_string_append_printf (text, g_dngettext (GETTEXT_PACKAGE, "%s: %s in %s request",
                                             "%s: %s in %s requests", (gulong)data->requests),
                          date, total, requests);
  for (guint p = 0; p < self->providers->len; p++)
    {
      ChartProvider *provider = g_ptr_array_index (self->providers, p);
      g_autofree char *cost = NULL;

      if (data->costs[p] <= 0)
        continue;
      cost = kp_ui_format_usd (data->costs[p]);
      g_string_append_printf (text, "\n%s: %s", provider->name, cost);
    }
  if (data->unknown > 0)
    {
      g_autofree char *unknown = kp_ui_format_count (data->unknown);

      g_string_append_c (text, '\n');
      /* Translators: %s counts requests whose cost Keypool does not know. */
      g_string_append_printf (text, g_dngettext (GETTEXT_PACKAGE, "%s request of unknown cost",
                                                 "%s requests of unknown cost",
                                                 (gulong)data->unknown),
                              unknown);
    }
  return g_string_free (g_steal_pointer (&text), FALSE);
}
