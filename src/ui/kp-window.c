/* kp-window.c: Keypool's main window
 *
 * Four pages in a view stack: Providers, Spend, Models and Connect. The
 * window shows the gateway even while it is still loading: the pages refresh
 * on its "changed" signal, and once more when it begins to serve.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include "kp-window.h"

#include <glib/gi18n.h>

#include "kp-application.h"
#include "kp-connect-page.h"
#include "kp-models-page.h"
#include "kp-providers-page.h"
#include "kp-spend-page.h"
#include "kp-ui-util.h"


struct _KpWindow
{
  AdwApplicationWindow  parent_instance;

  KpGateway            *gateway;
  gboolean              was_serving;
  gboolean              failed;          /* Keypool could not start serving */

  AdwToastOverlay      *toast_overlay;
  AdwViewStack         *stack;
  GtkWidget            *status_box;
  GtkLabel             *status_label;
  GtkSpinner           *status_spinner;
  KpProvidersPage      *providers_page;
  KpSpendPage          *spend_page;
  KpModelsPage         *models_page;
  KpConnectPage        *connect_page;
};

G_DEFINE_FINAL_TYPE (KpWindow, kp_window, ADW_TYPE_APPLICATION_WINDOW)

enum {
  PROP_0,
  PROP_GATEWAY,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

KpWindow *
kp_window_new (AdwApplication *application,
               KpGateway      *gateway)
{
  g_return_val_if_fail (ADW_IS_APPLICATION (application), NULL);
  g_return_val_if_fail (KP_IS_GATEWAY (gateway), NULL);

  return g_object_new (KP_TYPE_WINDOW,
                       "application", application,
                       "gateway", gateway,
                       NULL);
}

/* kp_app_command_line() reports a failure to serve through the exit
 * status of the process that started Keypool.
 */
static gboolean
gateway_failed (KpWindow *self)
{
  GtkApplication *app = gtk_window_get_application (GTK_WINDOW (self));

  return !kp_gateway_is_serving (self->gateway) &&
         (self->failed || (app != NULL && kp_app_get_exit_status (G_APPLICATION (app)) != 0));
}

static void
update_status (KpWindow *self)
{
  gboolean failed = gateway_failed (self);

  gtk_widget_set_visible (self->status_box, !kp_gateway_is_serving (self->gateway));
  gtk_spinner_set_spinning (self->status_spinner, !failed);
  gtk_widget_set_visible (GTK_WIDGET (self->status_spinner), !failed);
  if (failed)
    {
      gtk_label_set_label (self->status_label, _("Not serving"));
      gtk_widget_set_tooltip_text (self->status_box,
                                   _("Keypool could not start serving. The terminal it was started "
                                     "from says why; another program may be using its port."));
    }
  else
    gtk_label_set_label (self->status_label, _("Starting…"));
}

/* When the gateway begins to serve, the keys' secrets have just come from
 * the keyring: everything is refreshed. When it stops (Quit, SIGTERM,
 * SIGINT), the window goes, so that Keypool can end.
 */
static void
on_serving (KpWindow *self)
{
  if (!kp_gateway_is_serving (self->gateway))
    {
      if (self->was_serving)
        gtk_window_destroy (GTK_WINDOW (self));
      return;
    }

  self->was_serving = TRUE;
  update_status (self);
  kp_providers_page_refresh (self->providers_page);
  kp_spend_page_refresh (self->spend_page);
  kp_models_page_refresh (self->models_page);
  kp_connect_page_refresh (self->connect_page);
}

/**
 * kp_window_serve_failed:
 * @message: why, as Keypool told the terminal
 *
 * Keypool could not start serving: the window says so instead of waiting.
 */
void
kp_window_serve_failed (KpWindow   *self,
                        const char *message)
{
  g_return_if_fail (KP_IS_WINDOW (self));

  self->failed = TRUE;
  update_status (self);
  kp_ui_toast (GTK_WIDGET (self), _("Keypool could not start serving"));
}

/* Closing the window leaves Keypool serving, unless the user turned "Run
 * in Background" off. The window goes away rather than hiding: launching
 * keypool or the tray makes a new one, and a closed Keypool uses no memory
 * for a window nobody sees.
 */
static gboolean
kp_window_close_request (GtkWindow *window)
{
  KpWindow *self = KP_WINDOW (window);
  KpLedger *ledger = kp_gateway_get_ledger (self->gateway);
  g_autofree char *background = NULL;

  if (ledger != NULL)
    background = kp_ledger_get_setting (ledger, "run-in-background");

  if (g_strcmp0 (background, "false") == 0 && !gateway_failed (self))
    {
      kp_window_quit (self);
      return TRUE;
    }
  return GTK_WINDOW_CLASS (kp_window_parent_class)->close_request (window);
}

static void
toast_activated (GtkWidget  *widget,
                 const char *action_name,
                 GVariant   *parameter)
{
  KpWindow *self = KP_WINDOW (widget);
  AdwToast *toast = adw_toast_new (g_variant_get_string (parameter, NULL));

  adw_toast_set_timeout (toast, 4);
  adw_toast_overlay_add_toast (self->toast_overlay, toast);
}

static void
page_activated (GtkWidget  *widget,
                const char *action_name,
                GVariant   *parameter)
{
  KpWindow *self = KP_WINDOW (widget);

  adw_view_stack_set_visible_child_name (self->stack, g_variant_get_string (parameter, NULL));
}

static void
search_activated (GtkWidget  *widget,
                  const char *action_name,
                  GVariant   *parameter)
{
  KpWindow *self = KP_WINDOW (widget);

  adw_view_stack_set_visible_child_name (self->stack, "models");
  kp_models_page_focus_search (self->models_page);
}

static void
on_catalog_refreshed (GObject      *object,
                      GAsyncResult *result,
                      gpointer      user_data)
{
  g_autoptr(KpWindow) self = user_data;
  g_autoptr(GPtrArray) results = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GString) failed = g_string_new (NULL);
  guint n_failed = 0;

  results = kp_refresh_run_finish (KP_REFRESH (object), result, &error);
  if (results == NULL)
    {
      kp_ui_toast (GTK_WIDGET (self), error->message);
      return;
    }

  for (guint i = 0; i < results->len; i++)
    {
      KpRefreshResult *one = g_ptr_array_index (results, i);
      KpProvider *provider;

      if (one->outcome != KP_REFRESH_FAILED)
        continue;
      provider = kp_catalog_get_provider (kp_gateway_get_catalog (self->gateway), one->provider_id);
      g_string_append_printf (failed, "%s%s", n_failed++ ? ", " : "",
                              provider ? kp_provider_get_name (provider) : one->provider_id);
    }

  if (n_failed == 0)
    kp_ui_toast (GTK_WIDGET (self), _("Models and prices are up to date"));
  else
    {
      /* Translators: %s lists providers, such as “Ollama, DeepSeek”. */
      g_autofree char *message = g_strdup_printf (_("Could not refresh %s; the Providers page says why"),
                                                  failed->str);

      kp_ui_toast (GTK_WIDGET (self), message);
    }
}

static void
refresh_catalog_activated (GtkWidget  *widget,
                           const char *action_name,
                           GVariant   *parameter)
{
  KpWindow *self = KP_WINDOW (widget);

  kp_refresh_run_async (kp_gateway_get_refresh (self->gateway), NULL, NULL, on_catalog_refreshed,
                        g_object_ref (self));
}

/* One refresh at a time: the button waits while one runs. */
static void
on_refresh_running (KpWindow *self)
{
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "win.refresh-catalog",
                                 !kp_refresh_is_running (kp_gateway_get_refresh (self->gateway)));
}

static void
on_visible_page (KpWindow *self)
{
  const char *name = adw_view_stack_get_visible_child_name (self->stack);

  if (g_strcmp0 (name, "providers") == 0)
    kp_providers_page_check_local_servers (self->providers_page);
}

static void
kp_window_constructed (GObject *object)
{
  KpWindow *self = KP_WINDOW (object);

  G_OBJECT_CLASS (kp_window_parent_class)->constructed (object);

  kp_providers_page_set_gateway (self->providers_page, self->gateway);
  kp_spend_page_set_gateway (self->spend_page, self->gateway);
  kp_models_page_set_gateway (self->models_page, self->gateway);
  kp_connect_page_set_gateway (self->connect_page, self->gateway);

  update_status (self);
  self->was_serving = kp_gateway_is_serving (self->gateway);
  g_signal_connect_object (self->gateway, "notify::serving", G_CALLBACK (on_serving), self,
                           G_CONNECT_SWAPPED);

  g_signal_connect_object (self->stack, "notify::visible-child", G_CALLBACK (on_visible_page),
                           self, G_CONNECT_SWAPPED);
  g_signal_connect_object (kp_gateway_get_refresh (self->gateway), "notify::running",
                           G_CALLBACK (on_refresh_running), self, G_CONNECT_SWAPPED);
  on_refresh_running (self);
  on_visible_page (self);
}

static void
kp_window_dispose (GObject *object)
{
  KpWindow *self = KP_WINDOW (object);

  gtk_widget_dispose_template (GTK_WIDGET (self), KP_TYPE_WINDOW);

  G_OBJECT_CLASS (kp_window_parent_class)->dispose (object);
}

static void
kp_window_finalize (GObject *object)
{
  KpWindow *self = KP_WINDOW (object);

  g_clear_object (&self->gateway);

  G_OBJECT_CLASS (kp_window_parent_class)->finalize (object);
}

static void
kp_window_get_property (GObject    *object,
                        guint       prop_id,
                        GValue     *value,
                        GParamSpec *pspec)
{
  KpWindow *self = KP_WINDOW (object);

  switch (prop_id)
    {
    case PROP_GATEWAY:
      g_value_set_object (value, self->gateway);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
kp_window_set_property (GObject      *object,
                        guint         prop_id,
                        const GValue *value,
                        GParamSpec   *pspec)
{
  KpWindow *self = KP_WINDOW (object);

  switch (prop_id)
    {
    case PROP_GATEWAY:
      self->gateway = g_value_dup_object (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
kp_window_class_init (KpWindowClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);
  GtkWindowClass *window_class = GTK_WINDOW_CLASS (klass);

  object_class->constructed = kp_window_constructed;
  object_class->dispose = kp_window_dispose;
  object_class->finalize = kp_window_finalize;
  object_class->get_property = kp_window_get_property;
  object_class->set_property = kp_window_set_property;
  window_class->close_request = kp_window_close_request;

  properties[PROP_GATEWAY] =
    g_param_spec_object ("gateway", NULL, NULL,
                         KP_TYPE_GATEWAY,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY |
                         G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  g_object_class_install_properties (object_class, N_PROPS, properties);

  g_type_ensure (KP_TYPE_PROVIDERS_PAGE);
  g_type_ensure (KP_TYPE_SPEND_PAGE);
  g_type_ensure (KP_TYPE_MODELS_PAGE);
  g_type_ensure (KP_TYPE_CONNECT_PAGE);

  gtk_widget_class_set_template_from_resource (widget_class, KP_UI_RESOURCE ("kp-window.ui"));
  gtk_widget_class_bind_template_child (widget_class, KpWindow, toast_overlay);
  gtk_widget_class_bind_template_child (widget_class, KpWindow, stack);
  gtk_widget_class_bind_template_child (widget_class, KpWindow, status_box);
  gtk_widget_class_bind_template_child (widget_class, KpWindow, status_label);
  gtk_widget_class_bind_template_child (widget_class, KpWindow, status_spinner);
  gtk_widget_class_bind_template_child (widget_class, KpWindow, providers_page);
  gtk_widget_class_bind_template_child (widget_class, KpWindow, spend_page);
  gtk_widget_class_bind_template_child (widget_class, KpWindow, models_page);
  gtk_widget_class_bind_template_child (widget_class, KpWindow, connect_page);

  gtk_widget_class_install_action (widget_class, "win.toast", "s", toast_activated);
  gtk_widget_class_install_action (widget_class, "win.page", "s", page_activated);
  gtk_widget_class_install_action (widget_class, "win.search", NULL, search_activated);
  gtk_widget_class_install_action (widget_class, "win.refresh-catalog", NULL,
                                   refresh_catalog_activated);
}

static void
kp_window_init (KpWindow *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));
}

/**
 * kp_window_quit:
 * @self: a #KpWindow
 *
 * Closes the window and stops Keypool: the requests in flight end, then the
 * application quits.
 */
void
kp_window_quit (KpWindow *self)
{
  g_autoptr(GApplication) app = NULL;
  gboolean failed;

  g_return_if_fail (KP_IS_WINDOW (self));

  if (gtk_window_get_application (GTK_WINDOW (self)) != NULL)
    app = G_APPLICATION (g_object_ref (gtk_window_get_application (GTK_WINDOW (self))));
  failed = gateway_failed (self);
  gtk_window_destroy (GTK_WINDOW (self));
  /* After a failure the serving hold is already gone. */
  if (app != NULL && !failed)
    kp_app_stop_serving (app);
}
