/* kp-models-page.c: the models Keypool knows, their prices and routes
 *
 * One expander row per canonical model. Opening it shows the providers that
 * serve it with their prices, and the route Keypool would take now and why
 * (the same plan as `keypool route`). Plans are made only for open rows.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include "kp-models-page.h"

#include <string.h>

#include <glib/gi18n.h>

#include "kp-ui-util.h"

#define PLAN_PROMPT_TOKENS 1000
#define PLAN_OUTPUT_TOKENS 1000
#define MAX_ROUTES_SHOWN   5

struct _KpModelsPage
{
  AdwBin          parent_instance;

  KpGateway      *gateway;
  GHashTable     *rows;           /* model id → AdwExpanderRow, unowned */
  char           *search;         /* casefolded */

  GtkSearchEntry *search_entry;
  GtkListBox     *models_list;
};

G_DEFINE_FINAL_TYPE (KpModelsPage, kp_models_page, ADW_TYPE_BIN)

static void
kp_models_page_dispose (GObject *object)
{
  KpModelsPage *self = KP_MODELS_PAGE (object);

  /* AdwBin would unparent its child again after the template dropped it. */
  adw_bin_set_child (ADW_BIN (self), NULL);
  gtk_widget_dispose_template (GTK_WIDGET (self), KP_TYPE_MODELS_PAGE);
  g_clear_pointer (&self->rows, g_hash_table_unref);
  g_clear_object (&self->gateway);

  G_OBJECT_CLASS (kp_models_page_parent_class)->dispose (object);
}

static void
kp_models_page_finalize (GObject *object)
{
  KpModelsPage *self = KP_MODELS_PAGE (object);

  g_free (self->search);

  G_OBJECT_CLASS (kp_models_page_parent_class)->finalize (object);
}

static void
on_search_changed (KpModelsPage *self)
{
  g_free (self->search);
  self->search = g_utf8_casefold (gtk_editable_get_text (GTK_EDITABLE (self->search_entry)), -1);
  gtk_list_box_invalidate_filter (self->models_list);
}

static gboolean
filter_row (GtkListBoxRow *row,
            gpointer       user_data)
{
  KpModelsPage *self = user_data;
  const char *haystack = g_object_get_data (G_OBJECT (row), "search-text");

  if (self->search == NULL || self->search[0] == '\0')
    return TRUE;
  return haystack != NULL && strstr (haystack, self->search) != NULL;
}

static void
kp_models_page_class_init (KpModelsPageClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = kp_models_page_dispose;
  object_class->finalize = kp_models_page_finalize;

  gtk_widget_class_set_template_from_resource (widget_class, KP_UI_RESOURCE ("kp-models-page.ui"));
  gtk_widget_class_bind_template_child (widget_class, KpModelsPage, search_entry);
  gtk_widget_class_bind_template_child (widget_class, KpModelsPage, models_list);
  gtk_widget_class_bind_template_callback (widget_class, on_search_changed);
}

static void
kp_models_page_init (KpModelsPage *self)
{
  GtkWidget *placeholder;

  self->rows = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  gtk_widget_init_template (GTK_WIDGET (self));
  gtk_list_box_set_filter_func (self->models_list, filter_row, self, NULL);

  placeholder = adw_status_page_new ();
  adw_status_page_set_icon_name (ADW_STATUS_PAGE (placeholder), "system-search-symbolic");
  adw_status_page_set_title (ADW_STATUS_PAGE (placeholder), _("No Models Found"));
  adw_status_page_set_description (ADW_STATUS_PAGE (placeholder),
                                   _("Try a model name such as “gpt” or a provider such as "
                                     "“deepseek”."));
  gtk_widget_add_css_class (placeholder, "compact");
  gtk_list_box_set_placeholder (self->models_list, placeholder);
}

void
kp_models_page_set_gateway (KpModelsPage *self,
                            KpGateway    *gateway)
{
  g_return_if_fail (KP_IS_MODELS_PAGE (self));
  g_return_if_fail (KP_IS_GATEWAY (gateway));
  g_return_if_fail (self->gateway == NULL);

  self->gateway = g_object_ref (gateway);
  g_signal_connect_object (gateway, "changed", G_CALLBACK (kp_models_page_refresh), self,
                           G_CONNECT_SWAPPED);
  kp_models_page_refresh (self);
}

void
kp_models_page_focus_search (KpModelsPage *self)
{
  g_return_if_fail (KP_IS_MODELS_PAGE (self));
  gtk_widget_grab_focus (GTK_WIDGET (self->search_entry));
}

static char *
describe_prices (const KpOffering *offering)
{
  g_autofree char *input = kp_ui_format_price (offering->input);
  g_autofree char *output = kp_ui_format_price (offering->output);

  if (!kp_offering_has_price (offering))
    return g_strdup (_("price unknown"));
  /* Translators: two prices, such as “$0.15” and “$0.60”. */
  return g_strdup_printf (_("%s in, %s out"), input, output);
}

/* The collapsed row: how many serve it and the lowest list price. */
static char *
describe_model (KpModelsPage *self,
                GPtrArray    *offerings)
{
  const KpOffering *cheapest = NULL;
  guint usable = 0;
  g_autofree char *price = NULL;
  g_autofree char *serving = NULL;

  for (guint i = 0; i < offerings->len; i++)
    {
      const KpOffering *offering = g_ptr_array_index (offerings, i);

      if (kp_gateway_provider_is_usable (self->gateway, offering->provider))
        usable++;
      if (kp_offering_has_price (offering) &&
          (cheapest == NULL ||
           offering->input + offering->output < cheapest->input + cheapest->output))
        cheapest = offering;
    }

  serving = g_strdup_printf (g_dngettext (GETTEXT_PACKAGE, "%u provider", "%u providers",
                                          offerings->len),
                             offerings->len);
  if (cheapest != NULL)
    {
      g_autofree char *prices = describe_prices (cheapest);

      /* Translators: “from” the lowest prices, e.g. “from $0.15 in, $0.60 out”. */
      price = g_strdup_printf (_("from %s"), prices);
    }
  else
    price = g_strdup (_("price unknown"));

  if (usable == 0)
    /* Translators: e.g. “3 providers · from $0.15 in, $0.60 out · no key yet”. */
    return g_strdup_printf (_("%s · %s · no key yet"), serving, price);
  return g_strdup_printf ("%s · %s", serving, price);
}

static GtkWidget *
detail_row (const char *title,
            const char *subtitle,
            const char *icon_name,
            const char *icon_style)
{
  GtkWidget *row = adw_action_row_new ();

  adw_preferences_row_set_use_markup (ADW_PREFERENCES_ROW (row), FALSE);
  adw_preferences_row_set_title (ADW_PREFERENCES_ROW (row), title);
  adw_action_row_set_subtitle (ADW_ACTION_ROW (row), subtitle);
  adw_action_row_set_subtitle_lines (ADW_ACTION_ROW (row), 4);
  if (icon_name != NULL)
    {
      GtkWidget *icon = gtk_image_new_from_icon_name (icon_name);

      if (icon_style != NULL)
        gtk_widget_add_css_class (icon, icon_style);
      adw_action_row_add_prefix (ADW_ACTION_ROW (row), icon);
    }
  return row;
}

static const char *
provider_name (KpModelsPage *self,
               const char   *id)
{
  KpProvider *provider = kp_catalog_get_provider (kp_gateway_get_catalog (self->gateway), id);

  return provider ? kp_provider_get_name (provider) : id;
}

static void
add_detail (AdwExpanderRow *row,
            GtkWidget      *child)
{
  GPtrArray *children = g_object_get_data (G_OBJECT (row), "details");

  adw_expander_row_add_row (row, child);
  g_ptr_array_add (children, child);
}

/* Where a price comes from: the provider file as of its check, or the
 * provider's own list as of the refresh.
 */
static char *
describe_price_source (const KpOffering *offering)
{
  const char *checked = kp_provider_get_prices_checked (offering->provider);

  switch (offering->price_source)
    {
    case KP_PRICE_LIVE:
      {
        g_autofree char *when = kp_ui_format_time (offering->listed_at);

        /* Translators: %s is a time, such as “14:05:10”. */
        return g_strdup_printf (_("live price, %s"), when);
      }

    case KP_PRICE_BUNDLED:
      if (checked != NULL)
        /* Translators: %s is a date, such as “2026-11-27”. */
        return g_strdup_printf (_("price from the provider file, checked %s"), checked);
      return g_strdup (_("price from the provider file"));

    case KP_PRICE_UNKNOWN:
    default:
      return g_strdup (_("no price known"));
    }
}

static void
add_offering_rows (KpModelsPage   *self,
                   AdwExpanderRow *row,
                   GPtrArray      *offerings)
{
  for (guint i = 0; i < offerings->len; i++)
    {
      const KpOffering *offering = g_ptr_array_index (offerings, i);
      g_autofree char *price_only = describe_prices (offering);
      g_autofree char *source = describe_price_source (offering);
      g_autofree char *prices = NULL;
      g_autofree char *subtitle = NULL;
      const char *state = NULL;

      /* Translators: a price and where it comes from, e.g. “$3 in, $15 out (live price, 14:05)”. */
      prices = kp_offering_has_price (offering) ? g_strdup_printf (_("%s (%s)"), price_only, source)
                                                : g_strdup (price_only);

      if (!kp_gateway_provider_is_enabled (self->gateway, offering->provider))
        state = _("switched off");
      else if (!kp_gateway_provider_is_usable (self->gateway, offering->provider))
        state = _("no key");

      subtitle = state ? g_strdup_printf ("%s · %s · %s", offering->upstream_id, prices, state)
                       : g_strdup_printf ("%s · %s", offering->upstream_id, prices);
      add_detail (row, detail_row (kp_provider_get_name (offering->provider), subtitle,
                                   NULL, NULL));
    }
}

static void
add_plan_rows (KpModelsPage   *self,
               AdwExpanderRow *row,
               const char     *model_id)
{
  g_autoptr(GPtrArray) offerings = NULL;
  g_autoptr(KpPlan) plan = NULL;
  g_auto(GStrv) providers = NULL;
  KpRouteRequest request = { 0 };

  offerings = kp_gateway_resolve (self->gateway, model_id, &providers);
  if (offerings == NULL)
    return;

  request.prompt_tokens = PLAN_PROMPT_TOKENS;
  request.output_tokens = PLAN_OUTPUT_TOKENS;
  request.providers = (const char * const *)providers;
  plan = kp_gateway_plan_peek (self->gateway, offerings, &request);

  if (plan->routes->len == 0)
    {
      g_autofree char *why = kp_plan_describe_empty (plan, model_id);

      add_detail (row, detail_row (_("No route now"), why, "action-unavailable-symbolic",
                                   "warning"));
    }

  for (guint i = 0; i < plan->routes->len && i < MAX_ROUTES_SHOWN; i++)
    {
      const KpRoute *route = &g_array_index (plan->routes, KpRoute, i);
      const char *name = kp_provider_get_name (route->offering->provider);
      g_autofree char *title = NULL;
      g_autofree char *key = NULL;
      g_autofree char *cost = NULL;
      g_autofree char *why = NULL;
      g_autofree char *subtitle = NULL;

      if (route->credential != NULL)
        {
          const char *label = kp_credential_get_label (route->credential);
          g_autofree char *hint = kp_credential_dup_hint (route->credential);

          /* Translators: %s is a key's label or the end of the key. */
          key = g_strdup_printf (_("key “%s”"), label && *label ? label : hint);
        }
      else
        key = g_strdup (_("no key needed"));

      if (route->expected_usd >= 0)
        {
          g_autofree char *usd = kp_ui_format_usd ((gint64)(route->expected_usd * 1e9 + 0.5));

          /* Translators: an amount, such as “$0.0012”. */
          cost = g_strdup_printf (_("about %s per request"), usd);
        }
      else
        cost = g_strdup (_("price unknown, so tried after every priced route"));

      if (route->rank == 1)
        {
          /* Translators: %s is a provider. */
          title = g_strdup_printf (_("Keypool would use %s"), name);
          why = plan->routes->len > 1
                  ? g_strdup (_("the lowest expected cost of the usable routes"))
                  : g_strdup (_("the only usable route"));
        }
      else
        /* Translators: %u is a rank (2, 3…), %s a provider. */
        title = g_strdup_printf (_("Then %u: %s"), route->rank, name);

      if (why != NULL)
        subtitle = g_strdup_printf ("%s · %s · %s\n%s", route->offering->upstream_id, key, cost,
                                    why);
      else
        subtitle = g_strdup_printf ("%s · %s · %s", route->offering->upstream_id, key, cost);
      add_detail (row, detail_row (title, subtitle,
                                   route->rank == 1 ? "emblem-ok-symbolic" : "go-next-symbolic",
                                   route->rank == 1 ? "success" : "dim-label"));
    }

  for (guint i = 0; i < plan->excluded->len; i++)
    {
      KpExclusion *exclusion = g_ptr_array_index (plan->excluded, i);
      /* Translators: %s is a provider Keypool does not use for this model now. */
      g_autofree char *title = g_strdup_printf (_("Not used now: %s"),
                                                provider_name (self, exclusion->provider_id));

      add_detail (row, detail_row (title, exclusion->reason, "action-unavailable-symbolic",
                                   "dim-label"));
    }
}

static void
fill_details (KpModelsPage   *self,
              AdwExpanderRow *row)
{
  GPtrArray *children = g_object_get_data (G_OBJECT (row), "details");
  const char *model_id = g_object_get_data (G_OBJECT (row), "model-id");
  GPtrArray *offerings = kp_catalog_lookup (kp_gateway_get_catalog (self->gateway), model_id);

  for (guint i = 0; i < children->len; i++)
    adw_expander_row_remove (row, g_ptr_array_index (children, i));
  g_ptr_array_set_size (children, 0);

  if (offerings != NULL)
    add_offering_rows (self, row, offerings);
  add_plan_rows (self, row, model_id);
}

static void
on_expanded (AdwExpanderRow *row,
             GParamSpec     *pspec,
             KpModelsPage   *self)
{
  if (adw_expander_row_get_expanded (row))
    fill_details (self, row);
}

static AdwExpanderRow *
model_row_new (KpModelsPage *self,
               const char   *model_id,
               GPtrArray    *offerings)
{
  AdwExpanderRow *row = ADW_EXPANDER_ROW (adw_expander_row_new ());
  g_autoptr(GString) search = g_string_new (model_id);

  for (guint i = 0; i < offerings->len; i++)
    {
      const KpOffering *offering = g_ptr_array_index (offerings, i);

      g_string_append_printf (search, " %s %s %s", kp_provider_get_id (offering->provider),
                              kp_provider_get_name (offering->provider), offering->upstream_id);
    }

  adw_preferences_row_set_use_markup (ADW_PREFERENCES_ROW (row), FALSE);
  adw_preferences_row_set_title (ADW_PREFERENCES_ROW (row), model_id);
  g_object_set_data_full (G_OBJECT (row), "model-id", g_strdup (model_id), g_free);
  g_object_set_data_full (G_OBJECT (row), "search-text", g_utf8_casefold (search->str, -1), g_free);
  g_object_set_data_full (G_OBJECT (row), "details", g_ptr_array_new (),
                          (GDestroyNotify)g_ptr_array_unref);
  g_signal_connect_object (row, "notify::expanded", G_CALLBACK (on_expanded), self, 0);
  return row;
}

/**
 * kp_models_page_refresh:
 * @self: a #KpModelsPage
 *
 * Lists the catalog's models, and plans the routes of the open rows again:
 * keys, their health and the providers' switches may have changed.
 */
void
kp_models_page_refresh (KpModelsPage *self)
{
  KpCatalog *catalog;
  GPtrArray *ids;

  g_return_if_fail (KP_IS_MODELS_PAGE (self));

  if (self->gateway == NULL)
    return;

  catalog = kp_gateway_get_catalog (self->gateway);
  ids = kp_catalog_get_model_ids (catalog);
  for (guint i = 0; i < ids->len; i++)
    {
      const char *id = g_ptr_array_index (ids, i);
      GPtrArray *offerings = kp_catalog_lookup (catalog, id);
      AdwExpanderRow *row = g_hash_table_lookup (self->rows, id);
      g_autofree char *summary = NULL;

      if (offerings == NULL)
        continue;
      if (row == NULL)
        {
          row = model_row_new (self, id, offerings);
          g_hash_table_insert (self->rows, g_strdup (id), row);
          gtk_list_box_append (self->models_list, GTK_WIDGET (row));
        }

      summary = describe_model (self, offerings);
      adw_expander_row_set_subtitle (row, summary);
      if (adw_expander_row_get_expanded (row))
        fill_details (self, row);
    }
}
