/* kp-preferences-window.c: Keypool's preferences
 *
 * Settings live in Keypool's own store (kp_ledger_get/set_setting), so the
 * headless daemon and the window share them. Start at Login writes or
 * removes an XDG autostart entry.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include "kp-preferences-window.h"

#include <errno.h>

#include <glib/gi18n.h>
#include <glib/gstdio.h>

#include "kp-budgets-group.h"
#include "kp-ui-util.h"

static const guint refresh_hours[] = { 6, 12, 24, 168, 0 };
#define DEFAULT_REFRESH_INDEX 2

struct _KpPreferencesWindow
{
  AdwPreferencesWindow  parent_instance;

  KpGateway            *gateway;
  gboolean              loading;

  AdwActionRow         *port_row;
  GtkSpinButton        *port_spin;
  GtkSwitch            *background_switch;
  GtkSwitch            *autostart_switch;
  AdwComboRow          *refresh_row;
};

G_DEFINE_FINAL_TYPE (KpPreferencesWindow, kp_preferences_window, ADW_TYPE_PREFERENCES_WINDOW)

static char *
autostart_path (void)
{
  return g_build_filename (g_get_user_config_dir (), "autostart", APPLICATION_ID ".desktop", NULL);
}

static void
save_setting (KpPreferencesWindow *self,
              const char          *key,
              const char          *value)
{
  KpLedger *ledger = kp_gateway_get_ledger (self->gateway);
  g_autoptr(GError) error = NULL;

  if (ledger == NULL)
    {
      kp_ui_toast (GTK_WIDGET (self),
                   _("Keypool’s store is not open, so the setting was not saved"));
      return;
    }
  if (!kp_ledger_set_setting (ledger, key, value, &error))
    kp_ui_toast (GTK_WIDGET (self), error->message);
}

static void
update_port_subtitle (KpPreferencesWindow *self)
{
  g_autofree char *subtitle = NULL;
  guint chosen = (guint)gtk_spin_button_get_value_as_int (self->port_spin);
  guint serving = kp_gateway_get_port (self->gateway);

  if (kp_gateway_is_serving (self->gateway) && chosen != serving)
    /* Translators: %u is a port number. */
    subtitle = g_strdup_printf (_("Applies when Keypool starts again; it serves on port %u now"),
                                serving);
  else
    subtitle = g_strdup (_("On 127.0.0.1; --port and KEYPOOL_PORT take precedence"));
  adw_action_row_set_subtitle (self->port_row, subtitle);
}

static void
on_port_changed (KpPreferencesWindow *self)
{
  g_autofree char *value = NULL;

  if (self->loading)
    return;
  value = g_strdup_printf ("%d", gtk_spin_button_get_value_as_int (self->port_spin));
  save_setting (self, "port", value);
  update_port_subtitle (self);
}

static void
on_background_changed (KpPreferencesWindow *self)
{
  if (!self->loading)
    save_setting (self, "run-in-background",
                  gtk_switch_get_active (self->background_switch) ? "true" : "false");
}

static gboolean
write_autostart (GError **error)
{
  g_autofree char *path = autostart_path ();
  g_autofree char *dir = g_path_get_dirname (path);
  g_autoptr(GKeyFile) entry = g_key_file_new ();

  const char *group = G_KEY_FILE_DESKTOP_GROUP;

  g_key_file_set_string (entry, group, G_KEY_FILE_DESKTOP_KEY_TYPE, "Application");
  g_key_file_set_string (entry, group, G_KEY_FILE_DESKTOP_KEY_NAME, "Keypool");
  g_key_file_set_string (entry, group, G_KEY_FILE_DESKTOP_KEY_COMMENT,
                         "Pool your AI provider keys behind one local endpoint");
  g_key_file_set_string (entry, group, G_KEY_FILE_DESKTOP_KEY_EXEC, "keypool --background");
  g_key_file_set_string (entry, group, G_KEY_FILE_DESKTOP_KEY_ICON, APPLICATION_ID);
  g_key_file_set_boolean (entry, group, G_KEY_FILE_DESKTOP_KEY_TERMINAL, FALSE);
  g_key_file_set_boolean (entry, group, G_KEY_FILE_DESKTOP_KEY_NO_DISPLAY, TRUE);
  g_key_file_set_boolean (entry, group, "X-GNOME-Autostart-enabled", TRUE);

  if (g_mkdir_with_parents (dir, 0700) != 0)
    {
      int saved = errno;

      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved),
                   _("Cannot make the folder %s: %s"), dir, g_strerror (saved));
      return FALSE;
    }
  return g_key_file_save_to_file (entry, path, error);
}

static void
on_autostart_changed (KpPreferencesWindow *self)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *path = autostart_path ();

  if (self->loading)
    return;

  if (gtk_switch_get_active (self->autostart_switch))
    {
      if (!write_autostart (&error))
        kp_ui_toast (GTK_WIDGET (self), error->message);
    }
  else if (g_unlink (path) != 0 && errno != ENOENT)
    {
      int saved = errno;
      g_autofree char *message = g_strdup_printf (_("Cannot remove %s: %s"), path,
                                                  g_strerror (saved));

      kp_ui_toast (GTK_WIDGET (self), message);
    }
}

static void
on_refresh_changed (KpPreferencesWindow *self)
{
  guint selected = adw_combo_row_get_selected (self->refresh_row);
  g_autofree char *value = NULL;

  if (self->loading || selected >= G_N_ELEMENTS (refresh_hours))
    return;
  value = g_strdup_printf ("%u", refresh_hours[selected]);
  save_setting (self, "catalog-refresh-hours", value);
  /* The timer follows at once. */
  kp_refresh_reload_interval (kp_gateway_get_refresh (self->gateway));
}

static void
kp_preferences_window_dispose (GObject *object)
{
  KpPreferencesWindow *self = KP_PREFERENCES_WINDOW (object);

  gtk_widget_dispose_template (GTK_WIDGET (self), KP_TYPE_PREFERENCES_WINDOW);
  g_clear_object (&self->gateway);

  G_OBJECT_CLASS (kp_preferences_window_parent_class)->dispose (object);
}

static void
kp_preferences_window_class_init (KpPreferencesWindowClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = kp_preferences_window_dispose;

  gtk_widget_class_set_template_from_resource (widget_class,
                                               KP_UI_RESOURCE ("kp-preferences-window.ui"));
  gtk_widget_class_bind_template_child (widget_class, KpPreferencesWindow, port_row);
  gtk_widget_class_bind_template_child (widget_class, KpPreferencesWindow, port_spin);
  gtk_widget_class_bind_template_child (widget_class, KpPreferencesWindow, background_switch);
  gtk_widget_class_bind_template_child (widget_class, KpPreferencesWindow, autostart_switch);
  gtk_widget_class_bind_template_child (widget_class, KpPreferencesWindow, refresh_row);
  gtk_widget_class_bind_template_callback (widget_class, on_port_changed);
  gtk_widget_class_bind_template_callback (widget_class, on_background_changed);
  gtk_widget_class_bind_template_callback (widget_class, on_autostart_changed);
  gtk_widget_class_bind_template_callback (widget_class, on_refresh_changed);
}

static void
kp_preferences_window_init (KpPreferencesWindow *self)
{
  self->loading = TRUE;
  gtk_widget_init_template (GTK_WIDGET (self));
}

static void
load_settings (KpPreferencesWindow *self)
{
  KpLedger *ledger = kp_gateway_get_ledger (self->gateway);
  g_autofree char *port = NULL;
  g_autofree char *background = NULL;
  g_autofree char *hours = NULL;
  g_autofree char *path = autostart_path ();
  guint64 value;
  guint selected = DEFAULT_REFRESH_INDEX;

  if (ledger != NULL)
    {
      port = kp_ledger_get_setting (ledger, "port");
      background = kp_ledger_get_setting (ledger, "run-in-background");
      hours = kp_ledger_get_setting (ledger, "catalog-refresh-hours");
    }

  if (port != NULL && g_ascii_string_to_unsigned (port, 10, 1, 65535, &value, NULL))
    gtk_spin_button_set_value (self->port_spin, (double)value);
  else
    gtk_spin_button_set_value (self->port_spin, KP_GATEWAY_DEFAULT_PORT);
  gtk_switch_set_active (self->background_switch, g_strcmp0 (background, "false") != 0);
  gtk_switch_set_active (self->autostart_switch, g_file_test (path, G_FILE_TEST_EXISTS));

  if (hours != NULL && g_ascii_string_to_unsigned (hours, 10, 0, G_MAXUINT, &value, NULL))
    for (guint i = 0; i < G_N_ELEMENTS (refresh_hours); i++)
      if (refresh_hours[i] == value)
        selected = i;
  adw_combo_row_set_selected (self->refresh_row, selected);

  update_port_subtitle (self);
}

KpPreferencesWindow *
kp_preferences_window_new (GtkWindow *parent,
                           KpGateway *gateway)
{
  KpPreferencesWindow *self;

  g_return_val_if_fail (KP_IS_GATEWAY (gateway), NULL);

  self = g_object_new (KP_TYPE_PREFERENCES_WINDOW, "transient-for", parent, NULL);
  self->gateway = g_object_ref (gateway);
  load_settings (self);
  self->loading = FALSE;

  /* Budgets need the ledger's spend; they have a page of their own. */
  if (kp_gateway_get_ledger (gateway) != NULL)
    {
      GtkWidget *page = adw_preferences_page_new ();

      adw_preferences_page_set_title (ADW_PREFERENCES_PAGE (page), _("Budgets"));
      adw_preferences_page_set_icon_name (ADW_PREFERENCES_PAGE (page), "keypool-spend-symbolic");
      adw_preferences_page_add (ADW_PREFERENCES_PAGE (page),
                                ADW_PREFERENCES_GROUP (kp_budgets_group_new (gateway, TRUE)));
      adw_preferences_window_add (ADW_PREFERENCES_WINDOW (self), ADW_PREFERENCES_PAGE (page));
    }
  return self;
}
