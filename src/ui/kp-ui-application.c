/* kp-ui-application.c: Keypool with its window
 *
 * The serving and command-line logic is shared with the headless
 * KpApplication (see kp-application.c); this class only adds the window,
 * the application actions and their shortcuts.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include "kp-ui-application.h"

#include <glib/gi18n.h>

#include "kp-application.h"
#include "kp-preferences-window.h"
#include "kp-window.h"

struct _KpUiApplication
{
  AdwApplication  parent_instance;

  KpWindow       *window;
  gboolean        port_from_setting;
};

G_DEFINE_FINAL_TYPE (KpUiApplication, kp_ui_application, ADW_TYPE_APPLICATION)

/**
 * kp_ui_application_new:
 * @unique: whether a session bus is there to find a running Keypool on
 */
KpUiApplication *
kp_ui_application_new (gboolean unique)
{
  GApplicationFlags flags = G_APPLICATION_HANDLES_COMMAND_LINE;

  if (!unique)
    flags |= G_APPLICATION_NON_UNIQUE;

  return g_object_new (KP_TYPE_UI_APPLICATION,
                       "application-id", APPLICATION_ID,
                       "flags", flags,
                       NULL);
}

/* The port chosen in Preferences applies when neither --port nor
 * KEYPOOL_PORT says otherwise. The store is open once loading has begun
 * and the server listens only when loading ends, so it is set in between.
 */
static void
apply_port_setting (KpUiApplication *self)
{
  KpGateway *gateway = kp_app_get_gateway (G_APPLICATION (self));
  KpLedger *ledger = kp_gateway_get_ledger (gateway);
  g_autofree char *text = NULL;
  guint64 port;

  if (!self->port_from_setting || ledger == NULL || kp_gateway_is_serving (gateway))
    return;
  self->port_from_setting = FALSE;

  text = kp_ledger_get_setting (ledger, "port");
  if (text != NULL && g_ascii_string_to_unsigned (text, 10, 1, 65535, &port, NULL))
    kp_gateway_set_port (gateway, (guint)port);
}

static void
show_window (GApplication *app,
             gboolean      background)
{
  KpUiApplication *self = KP_UI_APPLICATION (app);

  apply_port_setting (self);

  if (background)
    return;

  if (self->window == NULL)
    {
      self->window = kp_window_new (ADW_APPLICATION (self), kp_app_get_gateway (app));
      g_object_add_weak_pointer (G_OBJECT (self->window), (gpointer *)&self->window);
    }
  gtk_window_present (GTK_WINDOW (self->window));
}

static void
serve_failed (GApplication *app,
              const char   *message)
{
  KpUiApplication *self = KP_UI_APPLICATION (app);

  if (self->window != NULL)
    kp_window_serve_failed (self->window, message);
}

static gboolean
kp_ui_application_local_command_line (GApplication   *app,
                                      char         ***arguments,
                                      int            *exit_status)
{
  return kp_app_local_command_line (app, G_APPLICATION_CLASS (kp_ui_application_parent_class),
                                    arguments, exit_status);
}

static void
kp_ui_application_add_platform_data (GApplication    *app,
                                     GVariantBuilder *builder)
{
  kp_app_add_platform_data (app, G_APPLICATION_CLASS (kp_ui_application_parent_class), builder);
}

static int
kp_ui_application_command_line (GApplication            *app,
                                GApplicationCommandLine *cmdline)
{
  KpUiApplication *self = KP_UI_APPLICATION (app);
  g_auto(GStrv) args = g_application_command_line_get_arguments (cmdline, NULL);
  gboolean port_given = g_application_command_line_getenv (cmdline, "KEYPOOL_PORT") != NULL;

  for (guint i = 1; args[i] != NULL; i++)
    if (g_str_equal (args[i], "--port") || g_str_equal (args[i], "-p") ||
        g_str_has_prefix (args[i], "--port="))
      port_given = TRUE;

  /* Only the command line that starts serving decides the port. */
  if (!kp_gateway_is_serving (kp_app_get_gateway (app)) && self->window == NULL)
    self->port_from_setting = !port_given;

  return kp_app_command_line (app, cmdline);
}

static void
quit_activated (GSimpleAction *action,
                GVariant      *parameter,
                gpointer       user_data)
{
  KpUiApplication *self = user_data;

  if (self->window != NULL)
    kp_window_quit (self->window);
  else
    kp_app_stop_serving (G_APPLICATION (self));
}

static void
preferences_activated (GSimpleAction *action,
                       GVariant      *parameter,
                       gpointer       user_data)
{
  KpUiApplication *self = user_data;
  KpPreferencesWindow *preferences;

  if (self->window == NULL)
    return;
  preferences = kp_preferences_window_new (GTK_WINDOW (self->window),
                                           kp_app_get_gateway (G_APPLICATION (self)));
  gtk_window_present (GTK_WINDOW (preferences));
}

static void
about_activated (GSimpleAction *action,
                 GVariant      *parameter,
                 gpointer       user_data)
{
  KpUiApplication *self = user_data;
  static const char *developers[] = { "The Keypool authors", NULL };
  GtkWidget *about;

  about = g_object_new (ADW_TYPE_ABOUT_WINDOW,
                        "transient-for", self->window,
                        "modal", TRUE,
                        "application-icon", APPLICATION_ID,
                        "application-name", _("Keypool"),
                        "developer-name", _("The Keypool authors"),
                        "version", PACKAGE_VERSION,
                        "comments", _("Pool your AI provider keys behind one local, "
                                      "OpenAI-compatible endpoint."),
                        "license-type", GTK_LICENSE_GPL_3_0,
                        "copyright", "© 2026 The Keypool authors",
                        "developers", developers,
                        /* Translators: put your names here, one per line. */
                        "translator-credits", _("translator-credits"),
                        NULL);
  gtk_window_present (GTK_WINDOW (about));
}

/* A budget's notification: the window, on its Spend page. */
static void
show_spend_activated (GSimpleAction *action,
                      GVariant      *parameter,
                      gpointer       user_data)
{
  KpUiApplication *self = user_data;

  show_window (G_APPLICATION (self), FALSE);
  if (self->window != NULL)
    gtk_widget_activate_action (GTK_WIDGET (self->window), "win.page", "s", "spend");
}

static const GActionEntry app_actions[] = {
  { "quit", quit_activated },
  { "show-spend", show_spend_activated },
  { "preferences", preferences_activated },
  { "about", about_activated },
};

static void
kp_ui_application_startup (GApplication *app)
{
  static const char *quit_accels[] = { "<Control>q", NULL };
  static const char *preferences_accels[] = { "<Control>comma", NULL };
  static const char *close_accels[] = { "<Control>w", NULL };
  static const char *search_accels[] = { "<Control>f", NULL };
  static const char *refresh_accels[] = { "<Control>r", NULL };
  static const char *page_accels[][2] = {
    { "<Alt>1", NULL }, { "<Alt>2", NULL }, { "<Alt>3", NULL }, { "<Alt>4", NULL },
  };
  static const char *pages[] = { "providers", "spend", "models", "connect" };
  GtkApplication *gtk_app = GTK_APPLICATION (app);

  G_APPLICATION_CLASS (kp_ui_application_parent_class)->startup (app);

  g_action_map_add_action_entries (G_ACTION_MAP (app), app_actions, G_N_ELEMENTS (app_actions),
                                   app);
  gtk_application_set_accels_for_action (gtk_app, "app.quit", quit_accels);
  gtk_application_set_accels_for_action (gtk_app, "app.preferences", preferences_accels);
  gtk_application_set_accels_for_action (gtk_app, "window.close", close_accels);
  gtk_application_set_accels_for_action (gtk_app, "win.search", search_accels);
  gtk_application_set_accels_for_action (gtk_app, "win.refresh-catalog", refresh_accels);
  for (guint i = 0; i < G_N_ELEMENTS (pages); i++)
    {
      g_autofree char *detailed = g_strdup_printf ("win.page::%s", pages[i]);

      gtk_application_set_accels_for_action (gtk_app, detailed, page_accels[i]);
    }

  kp_app_set_window_hook (app, show_window, serve_failed);
}

static void
kp_ui_application_class_init (KpUiApplicationClass *klass)
{
  GApplicationClass *app_class = G_APPLICATION_CLASS (klass);

  app_class->local_command_line = kp_ui_application_local_command_line;
  app_class->add_platform_data = kp_ui_application_add_platform_data;
  app_class->command_line = kp_ui_application_command_line;
  app_class->startup = kp_ui_application_startup;
}

static void
kp_ui_application_init (KpUiApplication *self)
{
}
