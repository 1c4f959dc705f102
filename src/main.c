/* main.c: picks Keypool's face from the command line
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include <locale.h>
#include <stdio.h>
#include <stdlib.h>

#include <glib-unix.h>

#include "kp-gateway.h"

#define DRAIN_TIMEOUT_MS 3000

typedef struct
{
  GMainLoop *loop;
  KpGateway *gateway;
  guint      drain_id;
  gint64     stop_deadline;
  gboolean   stopping;
} Daemon;

static gboolean
check_drained (gpointer user_data)
{
  Daemon *daemon = user_data;

  if (kp_gateway_get_n_active (daemon->gateway) == 0 ||
      g_get_monotonic_time () > daemon->stop_deadline)
    {
      daemon->drain_id = 0;
      g_main_loop_quit (daemon->loop);
      return G_SOURCE_REMOVE;
    }
  return G_SOURCE_CONTINUE;
}

static gboolean
on_signal (gpointer user_data)
{
  Daemon *daemon = user_data;

  if (daemon->stopping)
    {
      /* A second Ctrl-C: do not wait for the streams to end. */
      g_main_loop_quit (daemon->loop);
      return G_SOURCE_CONTINUE;
    }

  daemon->stopping = TRUE;
  g_printerr ("Stopping Keypool…\n");
  kp_gateway_stop (daemon->gateway);
  daemon->stop_deadline = g_get_monotonic_time () + DRAIN_TIMEOUT_MS * 1000;
  daemon->drain_id = g_timeout_add (20, check_drained, daemon);
  return G_SOURCE_CONTINUE;
}

static gboolean
parse_port (const char  *text,
            guint       *port,
            GError     **error)
{
  guint64 value;

  if (!g_ascii_string_to_unsigned (text, 10, 0, 65535, &value, error))
    {
      g_prefix_error (error, "Invalid port “%s”: ", text);
      return FALSE;
    }
  *port = (guint)value;
  return TRUE;
}

static char *
default_config_dir (void)
{
  const char *dir = g_getenv ("KEYPOOL_CONFIG_DIR");

  if (dir != NULL && *dir != '\0')
    return g_strdup (dir);
  return g_build_filename (g_get_user_config_dir (), "keypool", NULL);
}

static char *
default_providers_dir (void)
{
  const char *dir = g_getenv ("KEYPOOL_PROVIDERS_DIR");

  if (dir != NULL && *dir != '\0')
    return g_strdup (dir);
  return g_build_filename (PKGDATADIR, "providers", NULL);
}

static void
describe_providers (KpGateway *gateway)
{
  GPtrArray *providers = kp_catalog_get_providers (kp_gateway_get_catalog (gateway));
  g_autoptr(GString) usable = g_string_new (NULL);

  for (guint i = 0; i < providers->len; i++)
    {
      KpProvider *provider = g_ptr_array_index (providers, i);

      if (!kp_provider_get_requires_key (provider) ||
          !kp_gateway_provider_is_usable (gateway, provider))
        continue;
      if (usable->len > 0)
        g_string_append (usable, ", ");
      g_string_append (usable, kp_provider_get_id (provider));
    }

  if (providers->len == 0)
    g_printerr ("No provider files were found. Set KEYPOOL_PROVIDERS_DIR to Keypool’s "
                "providers/ folder or reinstall Keypool.\n");
  else if (usable->len == 0)
    g_printerr ("No provider has a key yet, so only local servers (Ollama, LM Studio) can be used. "
                "Export a key such as OPENROUTER_API_KEY or DEEPSEEK_API_KEY and start again.\n");
  else
    g_printerr ("Providers with keys: %s\n", usable->str);
}

int
main (int   argc,
      char *argv[])
{
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(KpGateway) gateway = NULL;
  g_autoptr(GMainLoop) loop = NULL;
  g_autofree char *port_text = NULL;
  g_autofree char *config_dir = NULL;
  g_autofree char *providers_dir = NULL;
  g_autofree char *base_url = NULL;
  g_auto(GStrv) origins = NULL;
  gboolean headless = FALSE;
  gboolean version = FALSE;
  int connect_s = 15;
  int first_byte_s = 300;
  int idle_s = 300;
  int max_body_mib = KP_GATEWAY_DEFAULT_BODY_LIMIT / (1024 * 1024);
  guint port = KP_GATEWAY_DEFAULT_PORT;
  Daemon daemon = { 0 };
  const char *env_token;
  GOptionEntry entries[] = {
    { "headless", 0, 0, G_OPTION_ARG_NONE, &headless,
      "Serve without a window", NULL },
    { "port", 'p', 0, G_OPTION_ARG_STRING, &port_text,
      "Port on 127.0.0.1 (default 7878, or KEYPOOL_PORT; 0 picks a free one)", "PORT" },
    { "connect-timeout", 0, 0, G_OPTION_ARG_INT, &connect_s,
      "Seconds to connect to a provider (default 15; 0 = none)", "S" },
    { "first-byte-timeout", 0, 0, G_OPTION_ARG_INT, &first_byte_s,
      "Seconds to wait for a provider's answer to begin (default 300; 0 = none)", "S" },
    { "idle-timeout", 0, 0, G_OPTION_ARG_INT, &idle_s,
      "Seconds a stream may stay silent (default 300; 0 = none)", "S" },
    { "max-body-mib", 0, 0, G_OPTION_ARG_INT, &max_body_mib,
      "Largest request body accepted, in MiB (default 32)", "MIB" },
    { "allow-origin", 0, 0, G_OPTION_ARG_STRING_ARRAY, &origins,
      "Accept browser requests from this origin (repeatable)", "ORIGIN" },
    { "version", 0, 0, G_OPTION_ARG_NONE, &version,
      "Print the version and exit", NULL },
    { NULL }
  };

  setlocale (LC_ALL, "");

  context = g_option_context_new (NULL);
  g_option_context_set_summary (context,
    "Keypool pools your AI provider keys behind one local OpenAI-compatible endpoint.\n"
    "Point clients at http://127.0.0.1:7878/v1 with Keypool’s access token.");
  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("keypool: %s\n", error->message);
      return EXIT_FAILURE;
    }

  if (version)
    {
      g_print ("keypool %s\n", PACKAGE_VERSION);
      return EXIT_SUCCESS;
    }

  if (argc > 1)
    {
      g_printerr ("keypool: unknown command “%s”. Run “keypool --help”.\n", argv[1]);
      return EXIT_FAILURE;
    }

  if (port_text == NULL && g_getenv ("KEYPOOL_PORT") != NULL)
    port_text = g_strdup (g_getenv ("KEYPOOL_PORT"));
  if (port_text != NULL && !parse_port (port_text, &port, &error))
    {
      g_printerr ("keypool: %s\n", error->message);
      return EXIT_FAILURE;
    }

  if (connect_s < 0 || first_byte_s < 0 || idle_s < 0 || max_body_mib <= 0 ||
      connect_s > 86400 || first_byte_s > 86400 || idle_s > 86400 || max_body_mib > 4096)
    {
      g_printerr ("keypool: timeouts must be 0–86400 seconds and --max-body-mib 1–4096.\n");
      return EXIT_FAILURE;
    }

  if (!headless)
    g_printerr ("This build of Keypool has no window yet; serving headless.\n");

  config_dir = default_config_dir ();
  providers_dir = default_providers_dir ();

  gateway = kp_gateway_new ();
  kp_gateway_set_port (gateway, port);
  kp_gateway_set_dirs (gateway, providers_dir, config_dir);
  kp_gateway_set_timeouts (gateway, connect_s * 1000, first_byte_s * 1000, idle_s * 1000);
  kp_gateway_set_body_limit (gateway, (gsize)max_body_mib * 1024 * 1024);
  kp_gateway_set_allowed_origins (gateway, (const char * const *)origins);

  env_token = g_getenv ("KEYPOOL_TOKEN");
  if (env_token != NULL && *env_token != '\0')
    kp_gateway_set_token (gateway, env_token);

  if (!kp_gateway_start (gateway, &error))
    {
      g_printerr ("keypool: %s\n", error->message);
      return EXIT_FAILURE;
    }

  base_url = kp_gateway_dup_base_url (gateway);
  g_print ("Keypool is serving on %s\n", base_url);
  fflush (stdout);

  if (kp_gateway_get_token_path (gateway) != NULL)
    g_printerr ("Access token: in %s\n", kp_gateway_get_token_path (gateway));
  else
    g_printerr ("Access token: from KEYPOOL_TOKEN\n");
  describe_providers (gateway);

  loop = g_main_loop_new (NULL, FALSE);
  daemon.loop = loop;
  daemon.gateway = gateway;
  g_unix_signal_add (SIGINT, on_signal, &daemon);
  g_unix_signal_add (SIGTERM, on_signal, &daemon);

  g_main_loop_run (loop);

  g_clear_handle_id (&daemon.drain_id, g_source_remove);
  g_clear_object (&gateway);

  return EXIT_SUCCESS;
}
