/* kp-application.c: one Keypool per session; the CLI talks to it
 *
 * Keypool is a GApplication, unique on the session bus. `keypool --headless`
 * becomes the primary instance and serves. A later `keypool keys list` finds
 * it on the bus and its command line is carried out there (GApplication
 * command-line forwarding), so keys, states and spend stay consistent. With
 * no instance running, the command runs in its own process, on the database
 * and the keyring directly.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include <stdlib.h>
#include <string.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include <glib-unix.h>
#include <glib/gi18n.h>

#include "cli/kp-cli.h"
#include "kp-deadlines.h"
#include "kp-application.h"
#include "kp-ways-in.h"
#include "tray/kp-tray.h"

#define DRAIN_TIMEOUT_MS 3000

struct _KpAppState
{
  GApplication *app;            /* unowned: the state lives in the application */
  KpGateway    *gateway;
  GError       *load_error;
  GPtrArray    *waiting;        /* command lines waiting for the gateway to load */
  gboolean      loading;
  gboolean      loaded;
  gboolean      daemon;         /* serving: this is the running Keypool */
  char         *pending_secret; /* read by `keys add` before forwarding */
  GApplicationCommandLine *daemon_cmdline;
  KpAppShowWindow show_window;
  KpAppServeFailed serve_failed;
  KpTray       *tray;
  gboolean      want_tray;      /* serving for a desktop, not headless */
  int           exit_status;
  guint         signal_ids[2];
  guint         drain_id;
  gint64        stop_deadline;
  gboolean      stopping;
  gboolean      told_ledger_problem;  /* the notification is out */
  KpDeadline    quiet;          /* a second after the last request: trim */
};

struct _KpApplication
{
  GApplication parent_instance;
};


static void
wipe_pending_secret (KpAppState *self)
{
  if (self->pending_secret != NULL)
    {
      explicit_bzero (self->pending_secret, strlen (self->pending_secret));
      g_clear_pointer (&self->pending_secret, g_free);
    }
}

static void
kp_app_state_free (KpAppState *self)
{
  if (self->quiet.func != NULL)
    kp_deadline_clear (&self->quiet);
  g_clear_handle_id (&self->drain_id, g_source_remove);
  for (guint i = 0; i < G_N_ELEMENTS (self->signal_ids); i++)
    g_clear_handle_id (&self->signal_ids[i], g_source_remove);
  g_clear_pointer (&self->waiting, g_ptr_array_unref);
  g_clear_object (&self->daemon_cmdline);
  g_clear_object (&self->tray);
  g_clear_object (&self->gateway);
  wipe_pending_secret (self);
  g_clear_error (&self->load_error);
  g_free (self);
}

/**
 * kp_app_state_get:
 * @app: Keypool's application, headless or with a window
 *
 * Returns: (transfer none): the state every face of Keypool shares: the
 *   gateway, and the command lines being carried out
 */
KpAppState *
kp_app_state_get (GApplication *app)
{
  static GQuark quark;
  KpAppState *self;

  if (quark == 0)
    quark = g_quark_from_static_string ("kp-app-state");

  self = g_object_get_qdata (G_OBJECT (app), quark);
  if (self == NULL)
    {
      self = g_new0 (KpAppState, 1);
      self->app = app;
      self->gateway = kp_gateway_new ();
      self->waiting = g_ptr_array_new_with_free_func (g_object_unref);
      g_object_set_qdata_full (G_OBJECT (app), quark, self, (GDestroyNotify)kp_app_state_free);
    }
  return self;
}

static void
print_usage (void)
{
  g_print ("Usage:\n"
           "  keypool [--headless] [OPTION…]      serve on http://127.0.0.1:7878/v1\n"
           "  keypool keys add PROVIDER [--label L] [--multiplier M] [--no-check]\n"
           "  keypool keys list | remove ID | reset ID\n"
           "  keypool providers [enable|disable ID]\n"
           "  keypool models\n"
           "  keypool refresh [PROVIDER]\n"
           "  keypool route MODEL [--prompt-tokens N] [--max-tokens N]\n"
           "  keypool spend [--since 7d] [--by provider|model|key|day|client]\n"
           "  keypool requests [--errors] [--last N] [--client NAME]\n"
           "  keypool token [--regenerate]\n"
           "  keypool clients add NAME | list | remove NAME | rename NAME NEW\n"
           "  keypool budget set daily|monthly USD [--provider ID | --client NAME] "
           "[--action warn|refuse]\n"
           "  keypool budget list | clear daily|monthly [--provider ID | --client NAME]\n"
           "\n"
           "Serving options:\n"
           "  --port PORT              port on 127.0.0.1 (default 7878, or KEYPOOL_PORT; 0 = any)\n"
           "  --connect-timeout S      seconds to connect to a provider (default 15; 0 = none)\n"
           "  --first-byte-timeout S   seconds for an answer to begin (default 300; 0 = none)\n"
           "  --idle-timeout S         seconds a stream may stay silent (default 300; 0 = none)\n"
           "  --max-body-mib MIB       largest request body accepted (default 32)\n"
           "  --allow-origin ORIGIN    accept browser requests from ORIGIN (repeatable)\n"
           "  --no-keyring             keys from environment variables only\n"
           "  --version                print the version\n"
           "\n"
           "A running Keypool carries out the commands; without one they act on the\n"
           "database and the keyring directly.\n");
}

/* Command lines, local side ---------------------------------------------------- */

/**
 * kp_app_local_command_line:
 * @app: the application
 * @parent_class: the class to chain up to
 *
 * Runs in the process the user started. Help and the version are answered
 * here; `keys add` reads the key here, in the user's terminal, never from
 * argv, and it travels with the command line to the running Keypool.
 */
static char *dup_way_in_hint (const char *provider_id);

gboolean
kp_app_local_command_line (GApplication       *app,
                           GApplicationClass  *parent_class,
                           char             ***arguments,
                           int                *exit_status)
{
  KpAppState *self = kp_app_state_get (app);
  char **argv = *arguments;

  if (argv[1] != NULL && (g_str_equal (argv[1], "--help") || g_str_equal (argv[1], "-h") ||
                          g_str_equal (argv[1], "help")))
    {
      print_usage ();
      *exit_status = EXIT_SUCCESS;
      return TRUE;
    }

  if (argv[1] != NULL && g_str_equal (argv[1], "--version"))
    {
      g_print ("keypool %s\n", PACKAGE_VERSION);
      *exit_status = EXIT_SUCCESS;
      return TRUE;
    }

  if (argv[1] != NULL && g_str_equal (argv[1], "keys") &&
      argv[2] != NULL && g_str_equal (argv[2], "add") &&
      argv[3] != NULL && argv[3][0] != '-')
    {
      g_autoptr(GError) error = NULL;
      g_autofree char *way_in = dup_way_in_hint (argv[3]);

      /* An account provider takes no key: none is asked for. */
      if (way_in != NULL)
        {
          g_printerr ("keypool: %s\n", way_in);
          *exit_status = EXIT_FAILURE;
          return TRUE;
        }
      self->pending_secret = kp_cli_read_secret (argv[3], &error);
      if (self->pending_secret == NULL)
        {
          g_printerr ("keypool: %s\n", error->message);
          *exit_status = EXIT_FAILURE;
          return TRUE;
        }
    }

  return parent_class->local_command_line (app, arguments, exit_status);
}

void
kp_app_add_platform_data (GApplication      *app,
                          GApplicationClass *parent_class,
                          GVariantBuilder   *builder)
{
  KpAppState *self = kp_app_state_get (app);

  parent_class->add_platform_data (app, builder);

  if (self->pending_secret != NULL)
    {
      g_variant_builder_add (builder, "{sv}", "keypool-secret",
                             g_variant_new_string (self->pending_secret));
      wipe_pending_secret (self);
    }
}

static char *
env_or_default (const char *variable,
                const char *base,
                const char *leaf)
{
  const char *value = g_getenv (variable);

  if (value != NULL && *value != '\0')
    return g_strdup (value);
  return g_build_filename (base, leaf, NULL);
}

/* How accounts of @provider_id come in, when not by an API key: read from
 * the provider files the gateway would load.
 */
static char *
dup_way_in_hint (const char *provider_id)
{
  g_autofree char *providers = env_or_default ("KEYPOOL_PROVIDERS_DIR", PKGDATADIR, "providers");
  g_autofree char *config = env_or_default ("KEYPOOL_CONFIG_DIR", g_get_user_config_dir (), "keypool");
  g_autofree char *user_providers = g_build_filename (config, "providers", NULL);
  g_autoptr(KpCatalog) catalog = kp_catalog_new ();

  kp_catalog_load (catalog, providers, user_providers);
  return kp_ways_in_dup_hint (kp_catalog_get_provider (catalog, provider_id));
}

static void
configure_gateway (KpAppState *self)
{
  g_autofree char *providers = env_or_default ("KEYPOOL_PROVIDERS_DIR", PKGDATADIR, "providers");
  g_autofree char *config = env_or_default ("KEYPOOL_CONFIG_DIR", g_get_user_config_dir (), "keypool");
  g_autofree char *data = env_or_default ("KEYPOOL_DATA_DIR", g_get_user_data_dir (), "keypool");
  const char *token = g_getenv ("KEYPOOL_TOKEN");
  const char *no_keyring = g_getenv ("KEYPOOL_NO_KEYRING");

  kp_gateway_set_dirs (self->gateway, providers, config, data);
  if (token != NULL && *token != '\0')
    kp_gateway_set_token (self->gateway, token);
  if (no_keyring != NULL && *no_keyring != '\0' && !g_str_equal (no_keyring, "0"))
    kp_gateway_set_use_keyring (self->gateway, FALSE);
}

/* Serving ------------------------------------------------------------------------ */

static gboolean
check_drained (gpointer user_data)
{
  KpAppState *self = user_data;

  if (kp_gateway_get_n_active (self->gateway) > 0 &&
      g_get_monotonic_time () < self->stop_deadline)
    return G_SOURCE_CONTINUE;

  self->drain_id = 0;
  g_application_release (self->app);
  return G_SOURCE_REMOVE;
}

/**
 * kp_app_stop_serving:
 *
 * Ends the requests in flight with an error (never a false end), waits for
 * them to finish for a moment, then lets the application quit.
 */
void
kp_app_stop_serving (GApplication *app)
{
  KpAppState *self = kp_app_state_get (app);

  if (self->stopping)
    {
      /* Asked twice (a second Ctrl-C): do not wait for the streams. */
      self->stop_deadline = 0;
      return;
    }
  if (!self->daemon)
    return;

  self->stopping = TRUE;
  kp_gateway_stop (self->gateway);
  self->stop_deadline = g_get_monotonic_time () + DRAIN_TIMEOUT_MS * 1000;
  self->drain_id = g_timeout_add (20, check_drained, self);
}

static gboolean
on_signal (gpointer user_data)
{
  KpAppState *self = user_data;

  if (!self->stopping)
    g_printerr ("Stopping Keypool…\n");
  kp_app_stop_serving (self->app);
  return G_SOURCE_CONTINUE;
}

typedef struct
{
  char   *port;
  int     connect_s;
  int     first_byte_s;
  int     idle_s;
  int     max_body_mib;
  GStrv   origins;
  gboolean headless;
  gboolean background;
  gboolean no_keyring;
} DaemonOptions;

static void
daemon_options_clear (DaemonOptions *options)
{
  g_clear_pointer (&options->port, g_free);
  g_clear_pointer (&options->origins, g_strfreev);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (DaemonOptions, daemon_options_clear)

static gboolean
parse_daemon_options (GApplicationCommandLine  *cmdline,
                      DaemonOptions            *options,
                      GError                  **error)
{
  g_autoptr(GOptionContext) context = g_option_context_new (NULL);
  g_auto(GStrv) args = g_application_command_line_get_arguments (cmdline, NULL);
  g_autofree char **argv = g_memdup2 (args, sizeof (char *) * (g_strv_length (args) + 1));
  int argc = g_strv_length (args);
  GOptionEntry entries[] = {
    { "headless", 0, 0, G_OPTION_ARG_NONE, &options->headless, NULL, NULL },
    { "background", 0, 0, G_OPTION_ARG_NONE, &options->background, NULL, NULL },
    { "port", 'p', 0, G_OPTION_ARG_STRING, &options->port, NULL, NULL },
    { "connect-timeout", 0, 0, G_OPTION_ARG_INT, &options->connect_s, NULL, NULL },
    { "first-byte-timeout", 0, 0, G_OPTION_ARG_INT, &options->first_byte_s, NULL, NULL },
    { "idle-timeout", 0, 0, G_OPTION_ARG_INT, &options->idle_s, NULL, NULL },
    { "max-body-mib", 0, 0, G_OPTION_ARG_INT, &options->max_body_mib, NULL, NULL },
    { "allow-origin", 0, 0, G_OPTION_ARG_STRING_ARRAY, &options->origins, NULL, NULL },
    { "no-keyring", 0, 0, G_OPTION_ARG_NONE, &options->no_keyring, NULL, NULL },
    { NULL }
  };

  options->connect_s = 15;
  options->first_byte_s = 300;
  options->idle_s = 300;
  options->max_body_mib = KP_GATEWAY_DEFAULT_BODY_LIMIT / (1024 * 1024);

  g_option_context_set_help_enabled (context, FALSE);
  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, error))
    return FALSE;

  if (argc > 1)
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_FAILED,
                   "unknown command “%s”. Run “keypool --help”.", argv[1]);
      return FALSE;
    }

  if (options->connect_s < 0 || options->first_byte_s < 0 || options->idle_s < 0 ||
      options->connect_s > 86400 || options->first_byte_s > 86400 || options->idle_s > 86400 ||
      options->max_body_mib <= 0 || options->max_body_mib > 4096)
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   "timeouts must be 0–86400 seconds and --max-body-mib 1–4096.");
      return FALSE;
    }

  return TRUE;
}

static void
describe_providers (KpAppState              *self,
                    GApplicationCommandLine *cmdline)
{
  GPtrArray *providers = kp_catalog_get_providers (kp_gateway_get_catalog (self->gateway));
  g_autoptr(GString) usable = g_string_new (NULL);
  const char *problem = kp_gateway_get_keyring_problem (self->gateway);

  if (problem != NULL)
    g_application_command_line_printerr (cmdline,
      "The keyring is unavailable: %s. Keys come from environment variables only, "
      "and the access token from KEYPOOL_TOKEN or a file.\n", problem);

  for (guint i = 0; i < providers->len; i++)
    {
      KpProvider *provider = g_ptr_array_index (providers, i);

      if (!kp_provider_get_requires_key (provider) ||
          !kp_gateway_provider_is_usable (self->gateway, provider))
        continue;
      g_string_append_printf (usable, "%s%s", usable->len ? ", " : "", kp_provider_get_id (provider));
    }

  if (providers->len == 0)
    g_application_command_line_printerr (cmdline,
      "No provider files were found. Set KEYPOOL_PROVIDERS_DIR to Keypool’s providers/ folder "
      "or reinstall Keypool.\n");
  else if (usable->len == 0)
    g_application_command_line_printerr (cmdline,
      "No provider has a key yet, so only local servers (Ollama, LM Studio) can be used. "
      "Add one with “keypool keys add PROVIDER”.\n");
  else
    g_application_command_line_printerr (cmdline, "Providers with keys: %s\n", usable->str);

  g_application_command_line_printerr (cmdline, "Access token: in %s (“keypool token” prints it)\n",
                                       kp_gateway_get_token_origin (self->gateway));
}

static void run_waiting (KpAppState *self);

static void
on_tray_activate (KpTray     *tray,
                  KpAppState *self)
{
  if (self->show_window != NULL)
    self->show_window (self->app, FALSE);
}

static void
on_tray_quit (KpTray     *tray,
              KpAppState *self)
{
  kp_app_stop_serving (self->app);
}

/* A tray icon when there is a session bus; with no tray host on it, the
 * item simply waits for one, and Keypool works through its window.
 */
static void
start_tray (KpAppState *self)
{
  GDBusConnection *bus = g_application_get_dbus_connection (self->app);
  g_autoptr(GError) error = NULL;

  if (bus == NULL || !self->want_tray)
    return;

  self->tray = kp_tray_new (bus, self->gateway, &error);
  if (self->tray == NULL)
    {
      g_warning ("No tray icon: %s", error->message);
      return;
    }
  g_signal_connect (self->tray, "activate", G_CALLBACK (on_tray_activate), self);
  g_signal_connect (self->tray, "quit", G_CALLBACK (on_tray_quit), self);
}

/* One desktop notification when requests stop being recorded, taken back
 * when they are recorded again. The problem is also on /health, the tray
 * and the Spend page, and the ledger logs it.
 */
static void
on_gateway_changed (KpAppState *self)
{
  KpLedger *ledger = kp_gateway_get_ledger (self->gateway);
  const char *problem = ledger != NULL ? kp_ledger_get_problem (ledger) : NULL;

  if (problem != NULL && !self->told_ledger_problem)
    {
      g_autoptr(GNotification) notification =
        g_notification_new (_("Keypool cannot record requests"));

      g_notification_set_body (notification, problem);
      g_notification_set_priority (notification, G_NOTIFICATION_PRIORITY_HIGH);
      g_application_send_notification (self->app, "ledger-problem", notification);
      self->told_ledger_problem = TRUE;
    }
  else if (problem == NULL && self->told_ledger_problem)
    {
      g_application_withdraw_notification (self->app, "ledger-problem");
      self->told_ledger_problem = FALSE;
    }
}

/* A budget 80 % spent, then spent: one notification each per period. Its
 * action opens the Spend page (the window's own "show-spend"; headless,
 * there is nothing to open).
 */
static void
on_budget_crossed (KpBudgets  *budgets,
                   const char *id,
                   guint       percent,
                   const char *title,
                   const char *body,
                   KpAppState *self)
{
  g_autoptr(GNotification) notification = g_notification_new (title);

  g_notification_set_body (notification, body);
  g_notification_set_priority (notification, percent >= 100 ? G_NOTIFICATION_PRIORITY_HIGH
                                                           : G_NOTIFICATION_PRIORITY_NORMAL);
  g_notification_set_default_action (notification, "app.show-spend");
  g_notification_add_button (notification, _("Show Spend"), "app.show-spend");
  g_application_send_notification (self->app, id, notification);
}

static void
show_spend_activated (GSimpleAction *action,
                      GVariant      *parameter,
                      gpointer       user_data)
{
  g_debug ("No window to show the spend in");
}

/* Loading parsed every provider file, the catalog and the ledger's schema:
 * once Keypool waits for clients, what that freed goes back to the system
 * (about 100 KB of a headless Keypool's idle memory).
 *
 * From then on, up to 1 MiB free at the top of a heap stays there: with
 * glibc's 128 KiB default the ledger's thread gave pages back and took them
 * again on every transaction (an madvise, page faults and a TLB shootdown
 * across cores each time).
 */
#define KP_MALLOC_TRIM_THRESHOLD (1024 * 1024)

static gboolean
trim_after_start (gpointer user_data)
{
#ifdef __GLIBC__
  malloc_trim (0);
  mallopt (M_TRIM_THRESHOLD, KP_MALLOC_TRIM_THRESHOLD);
#endif
  return G_SOURCE_REMOVE;
}

/* A burst of requests leaves free memory inside the heaps (the 1 MiB above
 * and what fragmentation keeps): once no request has been in flight for a
 * second, it goes back to the system. A desktop gateway is idle most of the
 * day.
 */
#define QUIET_TRIM_MS 1000

static void
on_quiet (KpDeadline *deadline,
          gpointer    user_data)
{
  KpAppState *self = user_data;

  if (kp_gateway_get_n_active (self->gateway) > 0)
    return;
#ifdef __GLIBC__
  malloc_trim (0);
#endif
}

static void
on_request_finished (KpGateway *gateway,
                     KpRelay   *relay,
                     gpointer   user_data)
{
  KpAppState *self = user_data;

  /* Moving a deadline later costs no system call (kp-deadlines.c). */
  if (kp_gateway_get_n_active (gateway) == 0)
    kp_deadline_set_in (&self->quiet, QUIET_TRIM_MS);
}

static void
on_serving_loaded (GObject      *object,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  KpAppState *self = user_data;
  g_autoptr(GApplicationCommandLine) cmdline = g_steal_pointer (&self->daemon_cmdline);
  g_autoptr(GError) error = NULL;
  g_autofree char *url = NULL;

  self->loading = FALSE;
  if (!kp_gateway_load_finish (self->gateway, result, &error) ||
      !kp_gateway_listen (self->gateway, &error))
    {
      g_application_command_line_printerr (cmdline, "keypool: %s\n", error->message);
      kp_app_set_exit_status (self->app, cmdline, EXIT_FAILURE);
      if (self->serve_failed != NULL)
        self->serve_failed (self->app, error->message);
      self->load_error = g_steal_pointer (&error);
      run_waiting (self);
      g_application_release (self->app);
      return;
    }
  self->loaded = TRUE;

  url = kp_gateway_dup_base_url (self->gateway);
  g_application_command_line_print (cmdline, "Keypool is serving on %s\n", url);
  describe_providers (self, cmdline);
  kp_refresh_start (kp_gateway_get_refresh (self->gateway));
  start_tray (self);
  g_signal_connect_swapped (self->gateway, "changed", G_CALLBACK (on_gateway_changed), self);
  on_gateway_changed (self);
  g_signal_connect (kp_gateway_get_budgets (self->gateway), "crossed",
                    G_CALLBACK (on_budget_crossed), self);
  if (g_action_map_lookup_action (G_ACTION_MAP (self->app), "show-spend") == NULL)
    {
      static const GActionEntry entries[] = { { "show-spend", show_spend_activated } };

      g_action_map_add_action_entries (G_ACTION_MAP (self->app), entries, G_N_ELEMENTS (entries),
                                       self);
    }

  self->signal_ids[0] = g_unix_signal_add (SIGINT, on_signal, self);
  self->signal_ids[1] = g_unix_signal_add (SIGTERM, on_signal, self);
  g_idle_add_full (G_PRIORITY_LOW, trim_after_start, NULL, NULL);
  kp_deadline_init (&self->quiet, on_quiet, self);
  g_signal_connect (self->gateway, "request-finished", G_CALLBACK (on_request_finished), self);
  run_waiting (self);
}

/* `keypool [--headless|--background] [OPTION…]`: serve, with a window when the
 * application has one and was not asked to be headless.
 */
static int
start_serving (KpAppState              *self,
               GApplicationCommandLine *cmdline)
{
  g_auto(DaemonOptions) options = { 0 };
  g_autoptr(GError) error = NULL;
  guint64 port = KP_GATEWAY_DEFAULT_PORT;
  const char *port_text;

  if (self->daemon && self->show_window != NULL && !g_application_command_line_get_is_remote (cmdline))
    return EXIT_SUCCESS;

  if (!parse_daemon_options (cmdline, &options, &error))
    {
      g_application_command_line_printerr (cmdline, "keypool: %s\n", error->message);
      kp_app_set_exit_status (self->app, cmdline, EXIT_FAILURE);
      return EXIT_FAILURE;
    }

  if (self->daemon)
    {
      g_autofree char *url = kp_gateway_dup_base_url (self->gateway);

      /* Launching again presents the window of the running Keypool. */
      if (self->show_window != NULL && !options.headless && !options.background)
        {
          self->show_window (self->app, FALSE);
          return EXIT_SUCCESS;
        }
      g_application_command_line_printerr (cmdline,
                                           "keypool: Keypool is already running, serving on %s.\n", url);
      kp_app_set_exit_status (self->app, cmdline, EXIT_FAILURE);
      return EXIT_FAILURE;
    }
  if (self->loading || self->loaded)
    {
      g_application_command_line_printerr (cmdline,
                                           "keypool: another keypool command is running; try again in a moment.\n");
      kp_app_set_exit_status (self->app, cmdline, EXIT_FAILURE);
      return EXIT_FAILURE;
    }

  port_text = options.port ? options.port : g_getenv ("KEYPOOL_PORT");
  if (port_text != NULL && !g_ascii_string_to_unsigned (port_text, 10, 0, 65535, &port, &error))
    {
      g_application_command_line_printerr (cmdline, "keypool: Invalid port “%s”: %s\n",
                                           port_text, error->message);
      kp_app_set_exit_status (self->app, cmdline, EXIT_FAILURE);
      return EXIT_FAILURE;
    }

  self->daemon = TRUE;
  self->loading = TRUE;
  self->want_tray = !options.headless;
  configure_gateway (self);
  if (options.no_keyring)
    kp_gateway_set_use_keyring (self->gateway, FALSE);
  kp_gateway_set_port (self->gateway, (guint)port);
  kp_gateway_set_timeouts (self->gateway, options.connect_s * 1000, options.first_byte_s * 1000,
                           options.idle_s * 1000);
  kp_gateway_set_body_limit (self->gateway, (gsize)options.max_body_mib * 1024 * 1024);
  kp_gateway_set_allowed_origins (self->gateway, (const char * const *)options.origins);

  /* Serving holds the application until it is told to stop. */
  g_application_hold (self->app);
  self->daemon_cmdline = g_object_ref (cmdline);
  kp_gateway_load_async (self->gateway, NULL, on_serving_loaded, self);

  if (self->show_window != NULL && !options.headless)
    self->show_window (self->app, options.background);
  else if (!options.headless && !options.background)
    g_application_command_line_printerr (cmdline, "No display: Keypool runs without its window.\n");

  return EXIT_SUCCESS;
}

/* Commands ------------------------------------------------------------------------ */

static void
run_waiting (KpAppState *self)
{
  g_autoptr(GPtrArray) waiting = g_steal_pointer (&self->waiting);

  self->waiting = g_ptr_array_new_with_free_func (g_object_unref);
  for (guint i = 0; waiting != NULL && i < waiting->len; i++)
    {
      GApplicationCommandLine *cmdline = g_ptr_array_index (waiting, i);

      if (self->load_error != NULL)
        {
          g_application_command_line_printerr (cmdline, "keypool: %s\n", self->load_error->message);
          kp_app_set_exit_status (self->app, cmdline, EXIT_FAILURE);
        }
      else
        kp_cli_run (self->app, self->gateway, cmdline);
      g_application_release (self->app);
    }
}

static void
on_direct_loaded (GObject      *object,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  KpAppState *self = user_data;
  g_autoptr(GError) error = NULL;

  self->loading = FALSE;
  if (!kp_gateway_load_finish (self->gateway, result, &error))
    self->load_error = g_steal_pointer (&error);
  else
    self->loaded = TRUE;
  run_waiting (self);
  g_application_release (self->app);
}

/**
 * kp_app_command_line:
 *
 * Runs in the primary instance: serves, or carries out a command.
 */
int
kp_app_command_line (GApplication            *app,
                     GApplicationCommandLine *cmdline)
{
  KpAppState *self = kp_app_state_get (app);
  g_auto(GStrv) args = g_application_command_line_get_arguments (cmdline, NULL);

  if (args[1] == NULL || args[1][0] == '-')
    return start_serving (self, cmdline);

  if (!kp_cli_is_command (args[1]))
    {
      g_application_command_line_printerr (cmdline,
                                           "keypool: unknown command “%s”. Run “keypool --help”.\n",
                                           args[1]);
      kp_app_set_exit_status (app, cmdline, 2);
      return 2;
    }

  /* GApplication reports what this returns; an asynchronous command sets
   * its status later, when it ends.
   */
  if (self->loaded)
    return MAX (kp_cli_run (app, self->gateway, cmdline), EXIT_SUCCESS);

  /* No Keypool is serving: load the store and keyring here, then run. */
  g_application_hold (app);
  g_ptr_array_add (self->waiting, g_object_ref (cmdline));
  if (!self->loading)
    {
      self->loading = TRUE;
      configure_gateway (self);
      g_application_hold (app);
      kp_gateway_load_async (self->gateway, NULL, on_direct_loaded, self);
    }
  return EXIT_SUCCESS;
}

/**
 * kp_app_set_window_hook:
 * @show_window: shows (or presents) the window; with %TRUE, only makes sure
 *   the application runs in the background
 * @serve_failed: tells the window that Keypool could not start serving
 *
 * Set by an application that can show a window; without one, Keypool
 * serves headless.
 */
void
kp_app_set_window_hook (GApplication     *app,
                        KpAppShowWindow   show_window,
                        KpAppServeFailed  serve_failed)
{
  KpAppState *self = kp_app_state_get (app);

  self->show_window = show_window;
  self->serve_failed = serve_failed;
}

/**
 * kp_app_set_exit_status:
 *
 * Sets how the command ends. For a command run in this process, GApplication
 * reports success whenever the main loop ran, so the status is kept here too.
 */
void
kp_app_set_exit_status (GApplication            *app,
                        GApplicationCommandLine *cmdline,
                        int                      status)
{
  g_application_command_line_set_exit_status (cmdline, status);
  if (!g_application_command_line_get_is_remote (cmdline) && status != 0)
    kp_app_state_get (app)->exit_status = status;
}

int
kp_app_get_exit_status (GApplication *app)
{
  return kp_app_state_get (app)->exit_status;
}

KpGateway *
kp_app_get_gateway (GApplication *app)
{
  return kp_app_state_get (app)->gateway;
}

/**
 * kp_app_take_secret:
 *
 * Returns: (transfer full) (nullable): the key that `keys add` read in the
 *   invoking process: sent along with a forwarded command line, or kept
 *   here when the command runs in this process
 */
char *
kp_app_take_secret (GApplication            *app,
                    GApplicationCommandLine *cmdline)
{
  g_autoptr(GVariant) platform = NULL;
  char *secret = NULL;

  if (g_application_command_line_get_is_remote (cmdline))
    {
      platform = g_application_command_line_get_platform_data (cmdline);
      if (platform != NULL)
        g_variant_lookup (platform, "keypool-secret", "s", &secret);
      return secret;
    }

  return g_steal_pointer (&kp_app_state_get (app)->pending_secret);
}

/* KpApplication: Keypool without a window ----------------------------------------- */

G_DEFINE_TYPE (KpApplication, kp_application, G_TYPE_APPLICATION)

static gboolean
kp_application_local_command_line (GApplication   *app,
                                   char         ***arguments,
                                   int            *exit_status)
{
  return kp_app_local_command_line (app, G_APPLICATION_CLASS (kp_application_parent_class),
                                    arguments, exit_status);
}

static void
kp_application_add_platform_data (GApplication    *app,
                                  GVariantBuilder *builder)
{
  kp_app_add_platform_data (app, G_APPLICATION_CLASS (kp_application_parent_class), builder);
}

static void
kp_application_class_init (KpApplicationClass *klass)
{
  GApplicationClass *app_class = G_APPLICATION_CLASS (klass);

  app_class->local_command_line = kp_application_local_command_line;
  app_class->add_platform_data = kp_application_add_platform_data;
  app_class->command_line = kp_app_command_line;
}

static void
kp_application_init (KpApplication *self)
{
}

/**
 * kp_application_new:
 * @unique: whether a session bus is there to find a running Keypool on
 */
KpApplication *
kp_application_new (gboolean unique)
{
  GApplicationFlags flags = G_APPLICATION_HANDLES_COMMAND_LINE;

  if (!unique)
    flags |= G_APPLICATION_NON_UNIQUE;

  return g_object_new (KP_TYPE_APPLICATION,
                       "application-id", APPLICATION_ID,
                       "flags", flags,
                       NULL);
}
