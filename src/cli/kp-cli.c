/* kp-cli.c: `keypool keys|providers|models|refresh|spend|requests|token`
 *
 * Every command runs in the primary instance: the running Keypool when there
 * is one, or this process on the database and keyring directly. Output goes
 * to the invoking terminal through the GApplicationCommandLine. A key is
 * never printed: only its last four characters.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "kp-cli.h"
#include "kp-cli-private.h"

#define SECRET_LIMIT (64 * 1024)

static const char *commands[] = { "keys", "providers", "models", "refresh", "route", "spend", "requests",
                                  "token", "clients", "budget", "login", "connect", "disconnect",
                                  NULL };

gboolean
kp_cli_is_command (const char *word)
{
  return word != NULL && g_strv_contains (commands, word);
}

/* Reading the key ----------------------------------------------------------- */

static char *
read_hidden (const char  *prompt,
             GError     **error)
{
  struct termios saved, quiet;
  char buffer[4096];
  FILE *tty;
  char *line;

  tty = fopen ("/dev/tty", "r+");
  if (tty == NULL)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_FAILED,
                           "Cannot open the terminal to ask for the key; pipe it on standard input.");
      return NULL;
    }

  fputs (prompt, tty);
  fflush (tty);
  tcgetattr (fileno (tty), &saved);
  quiet = saved;
  quiet.c_lflag &= ~(ECHO | ECHONL);
  tcsetattr (fileno (tty), TCSAFLUSH, &quiet);

  line = fgets (buffer, sizeof buffer, tty);

  tcsetattr (fileno (tty), TCSAFLUSH, &saved);
  fputs ("\n", tty);
  fclose (tty);

  if (line == NULL)
    {
      explicit_bzero (buffer, sizeof buffer);
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_FAILED, "No key was typed.");
      return NULL;
    }

  line = g_strdup (g_strstrip (buffer));
  explicit_bzero (buffer, sizeof buffer);
  return line;
}

/**
 * kp_cli_read_secret:
 * @provider: the provider the key is for, for the prompt
 * @error: a location for a #GError
 *
 * Reads a key from standard input, or asks for it on the terminal without
 * echoing it. Never from the command line, where other users could see it.
 *
 * Returns: (transfer full): the key, without surrounding white space
 */
char *
kp_cli_read_secret (const char  *provider,
                    GError     **error)
{
  g_autoptr(GString) input = NULL;
  char buffer[4096];
  size_t n;

  if (isatty (STDIN_FILENO))
    {
      g_autofree char *prompt = g_strdup_printf ("API key for %s (typing is hidden): ", provider);
      char *secret = read_hidden (prompt, error);

      if (secret != NULL && *secret == '\0')
        {
          g_free (secret);
          g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_FAILED, "No key was typed.");
          return NULL;
        }
      return secret;
    }

  input = g_string_new (NULL);
  while ((n = fread (buffer, 1, sizeof buffer, stdin)) > 0)
    {
      g_string_append_len (input, buffer, n);
      if (input->len > SECRET_LIMIT)
        break;
    }
  explicit_bzero (buffer, sizeof buffer);

  if (input->len > SECRET_LIMIT)
    {
      explicit_bzero (input->str, input->len);
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_FAILED,
                           "Standard input is far too long to be an API key.");
      return NULL;
    }

  g_strstrip (input->str);
  if (input->str[0] == '\0')
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_FAILED,
                           "No key on standard input: pipe the key in, or run this in a terminal "
                           "to type it.");
      return NULL;
    }

  {
    char *secret = g_strdup (input->str);

    explicit_bzero (input->str, input->len);
    return secret;
  }
}

/* Helpers ------------------------------------------------------------------- */

/* An asynchronous command keeps the application and the caller waiting. */
Pending *
kp_cli_pending_new (GApplication            *app,
             GApplicationCommandLine *cmdline)
{
  Pending *pending = g_new0 (Pending, 1);

  pending->app = g_object_ref (app);
  pending->cmdline = g_object_ref (cmdline);
  g_application_hold (app);
  return pending;
}

void
kp_cli_pending_done (Pending *pending,
              int      status)
{
  kp_app_set_exit_status (pending->app, pending->cmdline, status);
  g_application_release (pending->app);
  g_object_unref (pending->cmdline);
  g_object_unref (pending->app);
  g_free (pending);
}

int
kp_cli_fail (GApplicationCommandLine *cmdline,
      const char              *format,
      ...)
{
  g_autofree char *message = NULL;
  va_list args;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);

  g_application_command_line_printerr (cmdline, "keypool: %s\n", message);
  return EXIT_FAILURE;
}

static gboolean
parse_id (const char *text,
          gint64     *id)
{
  guint64 value;

  if (text == NULL || !g_ascii_string_to_unsigned (text, 10, 1, G_MAXINT64, &value, NULL))
    return FALSE;
  *id = (gint64)value;
  return TRUE;
}

char *
kp_cli_format_usd (gint64 nano)
{
  return g_strdup_printf ("$%.6f", nano / 1e9);
}

static char *
format_until (gint64 unix_s)
{
  g_autoptr(GDateTime) when = g_date_time_new_from_unix_local (unix_s);

  return when ? g_date_time_format (when, "%Y-%m-%d %H:%M:%S") : g_strdup ("?");
}

static char *
describe_state (KpCredential *credential)
{
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;
  KpCredentialState state = kp_credential_get_state (credential, now);
  gint64 until = kp_credential_get_state_until (credential);

  if (!kp_credential_get_enabled (credential))
    return g_strdup ("disabled");
  if (state != KP_CREDENTIAL_OK && until > 0)
    {
      g_autofree char *when = format_until (until);

      return g_strdup_printf ("%s until %s", kp_credential_state_to_string (state), when);
    }
  return g_strdup (kp_credential_state_to_string (state));
}

/* Parses the options of one command; the rest arguments stay in @argv. */
gboolean
kp_cli_parse_options (GApplicationCommandLine   *cmdline,
               char                    ***argv,
               int                       *argc,
               const GOptionEntry        *entries)
{
  g_autoptr(GOptionContext) context = g_option_context_new (NULL);
  g_autoptr(GError) error = NULL;

  g_option_context_set_help_enabled (context, FALSE);
  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, argc, argv, &error))
    {
      kp_cli_fail (cmdline, "%s", error->message);
      return FALSE;
    }
  return TRUE;
}

/* keys ------------------------------------------------------------------------ */

static void
on_key_added (GObject      *object,
              GAsyncResult *result,
              gpointer      user_data)
{
  Pending *pending = user_data;
  g_autoptr(GError) error = NULL;
  g_autofree char *report = NULL;
  g_autoptr(KpCredential) credential = NULL;
  g_autofree char *hint = NULL;

  credential = kp_gateway_add_key_finish (KP_GATEWAY (object), result, &report, &error);
  if (credential == NULL)
    {
      kp_cli_pending_done (pending, kp_cli_fail (pending->cmdline, "%s", error->message));
      return;
    }

  hint = kp_credential_dup_hint (credential);
  if (report != NULL)
    g_application_command_line_print (pending->cmdline, "%s\n", report);
  g_application_command_line_print (pending->cmdline,
                                    "Added key %" G_GINT64_FORMAT " for %s (%s), kept in the keyring.\n",
                                    kp_credential_get_id (credential),
                                    kp_credential_get_provider_id (credential), hint);
  kp_cli_pending_done (pending, EXIT_SUCCESS);
}

static int
keys_add (GApplication            *app,
          KpGateway               *gateway,
          GApplicationCommandLine *cmdline,
          char                   **argv,
          int                      argc)
{
  g_autofree char *label = NULL;
  g_autofree char *multiplier_text = NULL;
  g_autofree char *secret = NULL;
  gboolean no_check = FALSE;
  double multiplier = 1.0;
  const GOptionEntry entries[] = {
    { "label", 0, 0, G_OPTION_ARG_STRING, &label, NULL, NULL },
    { "multiplier", 0, 0, G_OPTION_ARG_STRING, &multiplier_text, NULL, NULL },
    { "no-check", 0, 0, G_OPTION_ARG_NONE, &no_check, NULL, NULL },
    { NULL }
  };

  if (!kp_cli_parse_options (cmdline, &argv, &argc, entries))
    return EXIT_FAILURE;
  if (argc != 2)
    return kp_cli_fail (cmdline, "usage: keypool keys add PROVIDER [--label L] [--multiplier M] [--no-check]");

  if (multiplier_text != NULL)
    {
      char *end = NULL;

      multiplier = g_ascii_strtod (multiplier_text, &end);
      if (end == multiplier_text || *end != '\0' || !(multiplier > 0 && multiplier <= 100))
        return kp_cli_fail (cmdline, "--multiplier “%s” is not a number above 0 and at most 100.",
                     multiplier_text);
    }

  secret = kp_app_take_secret (app, cmdline);
  if (secret == NULL)
    return kp_cli_fail (cmdline, "No key was given: pipe it on standard input, or type it at the prompt.");

  kp_gateway_add_key_async (gateway, argv[1], label, multiplier, secret, !no_check, NULL,
                            on_key_added, kp_cli_pending_new (app, cmdline));
  explicit_bzero (secret, strlen (secret));
  return -1;
}

static int
keys_list (KpGateway               *gateway,
           GApplicationCommandLine *cmdline)
{
  GPtrArray *credentials = kp_gateway_get_credentials (gateway);
  const char *problem = kp_gateway_get_keyring_problem (gateway);

  if (problem != NULL)
    g_application_command_line_printerr (cmdline,
                                         "The keyring is unavailable (%s): its keys show as locked.\n",
                                         problem);

  if (credentials->len == 0)
    {
      g_application_command_line_print (cmdline,
                                        "No keys yet. Add one with “keypool keys add PROVIDER”.\n");
      return EXIT_SUCCESS;
    }

  g_application_command_line_print (cmdline, "%-4s %-18s %-20s %-8s %-9s %s\n",
                                    "ID", "PROVIDER", "LABEL", "KEY", "SOURCE", "STATE");
  for (guint i = 0; i < credentials->len; i++)
    {
      KpCredential *credential = g_ptr_array_index (credentials, i);
      g_autofree char *hint = kp_credential_dup_hint (credential);
      g_autofree char *state = describe_state (credential);
      const char *last_error = kp_credential_get_last_error (credential);

      g_application_command_line_print (cmdline, "%-4" G_GINT64_FORMAT " %-18s %-20s %-8s %-9s %s\n",
                                        kp_credential_get_id (credential),
                                        kp_credential_get_provider_id (credential),
                                        kp_credential_get_label (credential), hint,
                                        kp_credential_is_from_env (credential) ? "env" : "keyring",
                                        state);
      if (last_error != NULL && kp_credential_get_state (credential, g_get_real_time () / G_USEC_PER_SEC)
                                  != KP_CREDENTIAL_OK)
        g_application_command_line_print (cmdline, "     last error: %.300s\n", last_error);
      if (kp_credential_get_meta (credential, "quota") != NULL)
        g_application_command_line_print (cmdline, "     %s\n",
                                          kp_credential_get_meta (credential, "quota"));
    }
  return EXIT_SUCCESS;
}

static void
on_key_removed (GObject      *object,
                GAsyncResult *result,
                gpointer      user_data)
{
  Pending *pending = user_data;
  g_autoptr(GError) error = NULL;

  if (!kp_gateway_remove_key_finish (KP_GATEWAY (object), result, &error))
    {
      kp_cli_pending_done (pending, kp_cli_fail (pending->cmdline, "%s", error->message));
      return;
    }
  g_application_command_line_print (pending->cmdline, "Removed the key from Keypool and the keyring.\n");
  kp_cli_pending_done (pending, EXIT_SUCCESS);
}

static int
keys_reset (KpGateway               *gateway,
            GApplicationCommandLine *cmdline,
            gint64                   id)
{
  g_autoptr(GError) error = NULL;

  if (!kp_gateway_reset_key (gateway, id, &error))
    return kp_cli_fail (cmdline, "%s", error->message);
  g_application_command_line_print (cmdline, "Key %" G_GINT64_FORMAT " is ready for use again.\n", id);
  return EXIT_SUCCESS;
}

static void
on_account_added (GObject      *object,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  Pending *pending = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(KpCredential) credential = NULL;

  /* The import and the sign-in finish alike. */
  credential = kp_gateway_login_finish (KP_GATEWAY (object), result, &error);
  if (credential == NULL)
    {
      kp_cli_pending_done (pending, kp_cli_fail (pending->cmdline, "%s", error->message));
      return;
    }
  g_application_command_line_print (pending->cmdline,
                                    "Added account %" G_GINT64_FORMAT " for %s; its refresh token "
                                    "is kept in the keyring.\n",
                                    kp_credential_get_id (credential),
                                    kp_credential_get_provider_id (credential));
  kp_cli_pending_done (pending, EXIT_SUCCESS);
}

/* keypool keys import PROVIDER: a CLI's saved login (read, never changed). */
static int
keys_import (GApplication            *app,
             KpGateway               *gateway,
             GApplicationCommandLine *cmdline,
             char                   **argv,
             int                      argc)
{
  g_autofree char *label = NULL;
  const GOptionEntry entries[] = {
    { "label", 0, 0, G_OPTION_ARG_STRING, &label, NULL, NULL },
    { NULL }
  };

  if (!kp_cli_parse_options (cmdline, &argv, &argc, entries))
    return EXIT_FAILURE;
  if (argc != 2)
    return kp_cli_fail (cmdline, "usage: keypool keys import PROVIDER [--label L] (e.g. gemini-cli)");

  kp_gateway_import_login_async (gateway, argv[1], label, NULL, on_account_added,
                                 kp_cli_pending_new (app, cmdline));
  return -1;
}

/* keypool login PROVIDER: sign in in the browser. */
static int
login (GApplication            *app,
       KpGateway               *gateway,
       GApplicationCommandLine *cmdline,
       char                   **argv,
       int                      argc)
{
  g_autofree char *label = NULL;
  g_autofree char *url = NULL;
  g_autoptr(GError) error = NULL;
  gboolean no_browser = FALSE;
  int timeout_s = 0;
  Pending *pending;
  const GOptionEntry entries[] = {
    { "label", 0, 0, G_OPTION_ARG_STRING, &label, NULL, NULL },
    { "no-browser", 0, 0, G_OPTION_ARG_NONE, &no_browser, NULL, NULL },
    { "timeout", 0, 0, G_OPTION_ARG_INT, &timeout_s, NULL, NULL },
    { NULL }
  };

  if (!kp_cli_parse_options (cmdline, &argv, &argc, entries))
    return EXIT_FAILURE;
  if (argc != 2 || timeout_s < 0 || timeout_s > 3600)
    return kp_cli_fail (cmdline, "usage: keypool login PROVIDER [--label L] [--no-browser] "
                          "[--timeout SECONDS] (e.g. gemini-cli, antigravity)");

  pending = kp_cli_pending_new (app, cmdline);
  if (!kp_gateway_login_async (gateway, argv[1], label, !no_browser, (guint)timeout_s, &url, NULL,
                               on_account_added, pending, &error))
    {
      kp_cli_pending_done (pending, kp_cli_fail (cmdline, "%s", error->message));
      return -1;
    }
  g_application_command_line_print (cmdline, "Sign in here (waiting for the browser):\n%s\n", url);
  return -1;
}

static int
keys (GApplication            *app,
      KpGateway               *gateway,
      GApplicationCommandLine *cmdline,
      char                   **argv,
      int                      argc)
{
  gint64 id;

  if (argc < 2)
    return kp_cli_fail (cmdline, "usage: keypool keys add|list|remove|reset …");

  if (g_str_equal (argv[1], "add"))
    return keys_add (app, gateway, cmdline, argv + 1, argc - 1);
  if (g_str_equal (argv[1], "list") && argc == 2)
    return keys_list (gateway, cmdline);
  if (g_str_equal (argv[1], "import"))
    return keys_import (app, gateway, cmdline, argv + 1, argc - 1);

  if ((g_str_equal (argv[1], "remove") || g_str_equal (argv[1], "reset")) && argc == 3)
    {
      if (!parse_id (argv[2], &id))
        return kp_cli_fail (cmdline, "“%s” is not a key id; “keypool keys list” shows them.", argv[2]);
      if (g_str_equal (argv[1], "reset"))
        return keys_reset (gateway, cmdline, id);
      kp_gateway_remove_key_async (gateway, id, NULL, on_key_removed, kp_cli_pending_new (app, cmdline));
      return -1;
    }

  return kp_cli_fail (cmdline, "usage: keypool keys add PROVIDER | import PROVIDER | list | "
                               "remove ID | reset ID");
}

/* providers, models ------------------------------------------------------------ */

static int
providers (KpGateway               *gateway,
           GApplicationCommandLine *cmdline,
           char                   **argv,
           int                      argc)
{
  GPtrArray *list = kp_catalog_get_providers (kp_gateway_get_catalog (gateway));
  g_autoptr(GError) error = NULL;

  if (argc == 3 && (g_str_equal (argv[1], "enable") || g_str_equal (argv[1], "disable")))
    {
      gboolean enable = g_str_equal (argv[1], "enable");

      if (!kp_gateway_set_provider_enabled (gateway, argv[2], enable, &error))
        return kp_cli_fail (cmdline, "%s", error->message);
      g_application_command_line_print (cmdline, "%s is %s.\n", argv[2],
                                        enable ? "switched on" : "switched off");
      return EXIT_SUCCESS;
    }
  if (argc != 1)
    return kp_cli_fail (cmdline, "usage: keypool providers [enable|disable ID]");

  g_application_command_line_print (cmdline, "%-18s %-22s %-8s %-5s %-6s %s\n",
                                    "ID", "NAME", "ENABLED", "KEYS", "MODELS", "REFRESHED");
  for (guint i = 0; i < list->len; i++)
    {
      KpProvider *provider = g_ptr_array_index (list, i);
      const KpRefreshRow *state = kp_refresh_get_state (kp_gateway_get_refresh (gateway),
                                                        kp_provider_get_id (provider));
      g_autofree char *keys_text = NULL;
      g_autofree char *refreshed = NULL;

      keys_text = kp_provider_get_requires_key (provider)
                    ? g_strdup_printf ("%u", kp_gateway_count_keys (gateway, provider))
                    : g_strdup ("none needed");
      refreshed = state && state->refreshed_at ? format_until (state->refreshed_at) : g_strdup ("never");
      g_application_command_line_print (cmdline, "%-18s %-22s %-8s %-5s %-6u %s\n",
                                        kp_provider_get_id (provider), kp_provider_get_name (provider),
                                        kp_gateway_provider_is_enabled (gateway, provider) ? "yes" : "no",
                                        keys_text, kp_provider_get_n_offerings (provider), refreshed);
      if (state != NULL && state->error != NULL)
        {
          g_autofree char *good = state->ok_at ? format_until (state->ok_at) : NULL;

          g_application_command_line_print (cmdline, "     last error: %.200s\n", state->error);
          g_application_command_line_print (cmdline, "     models as of: %s\n",
                                            good ? good : "the provider file");
        }
      if (state != NULL && state->has_balance)
        {
          g_autofree char *when = format_until (state->balance_at);

          g_application_command_line_print (cmdline, "     balance: %.2f %s (read %s)\n",
                                            state->balance, state->currency ? state->currency : "",
                                            when);
        }
    }
  return EXIT_SUCCESS;
}

static int
models (KpGateway               *gateway,
        GApplicationCommandLine *cmdline)
{
  KpCatalog *catalog = kp_gateway_get_catalog (gateway);
  GPtrArray *ids = kp_catalog_get_model_ids (catalog);

  for (guint i = 0; i < ids->len; i++)
    {
      GPtrArray *offerings = kp_catalog_lookup (catalog, g_ptr_array_index (ids, i));
      g_autoptr(GString) line = g_string_new (g_ptr_array_index (ids, i));

      g_string_append (line, "\n   ");
      for (guint j = 0; j < offerings->len; j++)
        {
          const KpOffering *offering = g_ptr_array_index (offerings, j);

          g_string_append_printf (line, " %s", kp_provider_get_id (offering->provider));
          if (kp_offering_has_price (offering))
            g_string_append_printf (line, " $%g/$%g%s", offering->input, offering->output,
                                    offering->price_source == KP_PRICE_LIVE ? " (live)" : "");
          else
            g_string_append (line, " (price unknown)");
          if (!kp_gateway_provider_is_usable (gateway, offering->provider))
            g_string_append (line, " [no key]");
          g_string_append (line, j + 1 < offerings->len ? "," : "");
        }
      g_application_command_line_print (cmdline, "%s\n", line->str);
    }
  g_application_command_line_print (cmdline, "Prices are USD per million input/output tokens.\n");
  return EXIT_SUCCESS;
}

/* refresh --------------------------------------------------------------------- */

static void
on_refreshed (GObject      *object,
              GAsyncResult *result,
              gpointer      user_data)
{
  Pending *pending = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) results = NULL;
  int status = EXIT_SUCCESS;

  results = kp_refresh_run_finish (KP_REFRESH (object), result, &error);
  if (results == NULL)
    {
      kp_cli_pending_done (pending, kp_cli_fail (pending->cmdline, "%s", error->message));
      return;
    }

  for (guint i = 0; i < results->len; i++)
    {
      KpRefreshResult *one = g_ptr_array_index (results, i);
      const char *outcome = one->outcome == KP_REFRESH_OK ? "ok"
                            : one->outcome == KP_REFRESH_FAILED ? "failed" : "skipped";

      g_application_command_line_print (pending->cmdline, "%-18s %-8s %s\n", one->provider_id,
                                        outcome, one->summary);
      /* A provider asked for by name must have been refreshed. */
      if (pending->named && one->outcome != KP_REFRESH_OK)
        status = EXIT_FAILURE;
    }
  kp_cli_pending_done (pending, status);
}

static int
refresh (GApplication            *app,
         KpGateway               *gateway,
         GApplicationCommandLine *cmdline,
         char                   **argv,
         int                      argc)
{
  Pending *pending;

  if (argc > 2)
    return kp_cli_fail (cmdline, "usage: keypool refresh [PROVIDER]");
  if (argc == 2 && kp_catalog_get_provider (kp_gateway_get_catalog (gateway), argv[1]) == NULL)
    return kp_cli_fail (cmdline, "There is no provider “%s”; “keypool providers” lists them.", argv[1]);

  pending = kp_cli_pending_new (app, cmdline);
  pending->named = argc == 2;
  kp_refresh_run_async (kp_gateway_get_refresh (gateway), argc == 2 ? argv[1] : NULL, NULL,
                        on_refreshed, pending);
  return -1;
}

/* route ----------------------------------------------------------------------- */

static int
route (KpGateway               *gateway,
       GApplicationCommandLine *cmdline,
       char                   **argv,
       int                      argc)
{
  g_autofree char *prompt_text = NULL;
  g_autofree char *max_text = NULL;
  g_autoptr(GPtrArray) offerings = NULL;
  g_autoptr(KpPlan) plan = NULL;
  g_auto(GStrv) providers = NULL;
  guint64 prompt = 1000, output = 1000;
  KpRouteRequest request = { 0 };
  const GOptionEntry entries[] = {
    { "prompt-tokens", 0, 0, G_OPTION_ARG_STRING, &prompt_text, NULL, NULL },
    { "max-tokens", 0, 0, G_OPTION_ARG_STRING, &max_text, NULL, NULL },
    { NULL }
  };

  if (!kp_cli_parse_options (cmdline, &argv, &argc, entries))
    return EXIT_FAILURE;
  if (argc != 2)
    return kp_cli_fail (cmdline, "usage: keypool route MODEL [--prompt-tokens N] [--max-tokens N]");
  if (prompt_text != NULL && !g_ascii_string_to_unsigned (prompt_text, 10, 0, 10000000, &prompt, NULL))
    return kp_cli_fail (cmdline, "--prompt-tokens “%s” is not a number from 0 to 10000000.", prompt_text);
  if (max_text != NULL && !g_ascii_string_to_unsigned (max_text, 10, 1, 10000000, &output, NULL))
    return kp_cli_fail (cmdline, "--max-tokens “%s” is not a number from 1 to 10000000.", max_text);

  offerings = kp_gateway_resolve (gateway, argv[1], &providers);
  if (offerings == NULL)
    {
      g_autofree char *close = kp_catalog_suggest (kp_gateway_get_catalog (gateway), argv[1]);

      return kp_cli_fail (cmdline, "No provider Keypool knows serves “%s”.%s%s%s", argv[1],
                   close ? " Did you mean " : "", close ? close : "", close ? "?" : "");
    }

  request.prompt_tokens = prompt;
  request.output_tokens = output;
  request.providers = (const char * const *)providers;
  plan = kp_gateway_plan (gateway, offerings, &request);

  g_application_command_line_print (cmdline,
                                    "Routes for “%s” with %" G_GUINT64_FORMAT " prompt and %" G_GUINT64_FORMAT
                                    " output tokens, best first:\n", argv[1], prompt, output);
  if (plan->routes->len == 0)
    {
      g_autofree char *why = kp_plan_describe_empty (plan, argv[1]);

      g_application_command_line_print (cmdline, "  none. %s\n", why);
    }
  for (guint i = 0; i < plan->routes->len; i++)
    {
      const KpRoute *r = &g_array_index (plan->routes, KpRoute, i);
      g_autofree char *key = NULL;
      g_autofree char *cost = NULL;

      key = r->credential
        ? g_strdup_printf ("key %" G_GINT64_FORMAT " “%s” ×%g", kp_credential_get_id (r->credential),
                           kp_credential_get_label (r->credential),
                           kp_credential_get_multiplier (r->credential))
        : g_strdup ("no key needed");
      cost = r->expected_usd >= 0 ? g_strdup_printf ("$%.6f", r->expected_usd)
                                  : g_strdup ("price unknown (after every priced route)");
      g_application_command_line_print (cmdline, "  %u. %-16s %-24s %-34s %s\n", r->rank,
                                        kp_provider_get_id (r->offering->provider),
                                        r->offering->upstream_id, key, cost);
    }

  if (plan->excluded->len > 0)
    g_application_command_line_print (cmdline, "Not used now:\n");
  for (guint i = 0; i < plan->excluded->len; i++)
    {
      KpExclusion *exclusion = g_ptr_array_index (plan->excluded, i);

      g_application_command_line_print (cmdline, "  - %s: %s\n", exclusion->provider_id,
                                        exclusion->reason);
    }
  return EXIT_SUCCESS;
}

/* spend, requests --------------------------------------------------------------- */

gboolean
kp_cli_parse_since (const char *text,
             gint64     *since_ms)
{
  gint64 now_ms = g_get_real_time () / 1000;
  guint64 amount;
  gint64 unit_ms;
  gsize len;
  g_autofree char *number = NULL;

  if (g_str_equal (text, "all"))
    {
      *since_ms = 0;
      return TRUE;
    }

  len = strlen (text);
  if (len < 2)
    return FALSE;
  switch (text[len - 1])
    {
    case 'm': unit_ms = 60 * 1000; break;
    case 'h': unit_ms = 3600 * 1000; break;
    case 'd': unit_ms = 24 * 3600 * 1000; break;
    case 'w': unit_ms = 7 * 24 * 3600 * 1000; break;
    default: return FALSE;
    }
  number = g_strndup (text, len - 1);
  if (!g_ascii_string_to_unsigned (number, 10, 1, 100000, &amount, NULL))
    return FALSE;

  *since_ms = now_ms - (gint64)amount * unit_ms;
  return TRUE;
}

/* A client's id, as the ledger groups by it, as its name. */
static char *
client_name (KpGateway  *gateway,
             const char *id_text)
{
  guint64 id = 0;

  if (id_text == NULL || !g_ascii_string_to_unsigned (id_text, 10, 0, G_MAXUINT, &id, NULL))
    id = KP_CLIENT_OTHER;
  return kp_clients_dup_name (kp_gateway_get_clients (gateway), (guint)id);
}

static int
spend (KpGateway               *gateway,
       GApplicationCommandLine *cmdline,
       char                   **argv,
       int                      argc)
{
  g_autofree char *since_text = NULL;
  g_autofree char *by_text = NULL;
  g_autoptr(GPtrArray) rows = NULL;
  g_autoptr(GError) error = NULL;
  gint64 since_ms;
  gint64 total = 0, unknown = 0, requests = 0;
  KpSpendBy by;
  const GOptionEntry entries[] = {
    { "since", 0, 0, G_OPTION_ARG_STRING, &since_text, NULL, NULL },
    { "by", 0, 0, G_OPTION_ARG_STRING, &by_text, NULL, NULL },
    { NULL }
  };

  if (!kp_cli_parse_options (cmdline, &argv, &argc, entries))
    return EXIT_FAILURE;
  if (argc != 1)
    return kp_cli_fail (cmdline, "usage: keypool spend [--since 7d] [--by provider|model|key|day|client]");

  if (!kp_cli_parse_since (since_text ? since_text : "30d", &since_ms))
    return kp_cli_fail (cmdline, "--since “%s” is not a period such as 30m, 24h, 7d, 2w or all.", since_text);

  if (by_text == NULL || g_str_equal (by_text, "provider"))
    by = KP_SPEND_BY_PROVIDER;
  else if (g_str_equal (by_text, "model"))
    by = KP_SPEND_BY_MODEL;
  else if (g_str_equal (by_text, "key"))
    by = KP_SPEND_BY_KEY;
  else if (g_str_equal (by_text, "day"))
    by = KP_SPEND_BY_DAY;
  else if (g_str_equal (by_text, "client"))
    by = KP_SPEND_BY_CLIENT;
  else
    return kp_cli_fail (cmdline, "--by “%s” is not provider, model, key, day or client.", by_text);

  rows = kp_ledger_spend (kp_gateway_get_ledger (gateway), since_ms, by, &error);
  if (rows == NULL)
    return kp_cli_fail (cmdline, "%s", error->message);

  g_application_command_line_print (cmdline, "%-36s %9s %14s %12s %12s\n", by_text ? by_text : "provider",
                                    "REQUESTS", "COST", "INPUT", "OUTPUT");
  for (guint i = 0; i < rows->len; i++)
    {
      KpSpendRow *row = g_ptr_array_index (rows, i);
      g_autofree char *cost = kp_cli_format_usd (row->cost_nano);
      g_autofree char *client = by == KP_SPEND_BY_CLIENT ? client_name (gateway, row->key) : NULL;

      g_application_command_line_print (cmdline, "%-36s %9" G_GINT64_FORMAT " %14s %12" G_GINT64_FORMAT
                                        " %12" G_GINT64_FORMAT "%s\n",
                                        client ? client : row->key, row->requests, cost,
                                        row->prompt_tokens,
                                        row->completion_tokens,
                                        row->unknown_cost ? "  + unknown" : "");
      total += row->cost_nano;
      unknown += row->unknown_cost;
      requests += row->requests;
    }

  {
    g_autofree char *cost = kp_cli_format_usd (total);

    g_application_command_line_print (cmdline, "%-36s %9" G_GINT64_FORMAT " %14s\n", "TOTAL",
                                      requests, cost);
  }
  if (unknown > 0)
    g_application_command_line_print (cmdline,
                                      "%" G_GINT64_FORMAT " answered requests have an unknown cost "
                                      "(no price known), not counted above.\n", unknown);
  return EXIT_SUCCESS;
}

static char *
format_local_time (gint64 time_ms)
{
  g_autoptr(GDateTime) when = g_date_time_new_from_unix_local (time_ms / 1000);

  return g_date_time_format (when, "%Y-%m-%d %H:%M:%S");
}

/* `keypool requests --errors`: what was refused and what failed, so that a
 * user whose tool "does nothing" sees why.
 */
static int
problems (KpGateway               *gateway,
          GApplicationCommandLine *cmdline,
          guint                    last)
{
  g_autoptr(GPtrArray) rows = NULL;
  g_autoptr(GError) error = NULL;

  rows = kp_ledger_recent_problems (kp_gateway_get_ledger (gateway), last, &error);
  if (rows == NULL)
    return kp_cli_fail (cmdline, "%s", error->message);

  g_application_command_line_print (cmdline, "%-19s %4s %6s %-15s %-20s %s\n",
                                    "TIME", "HTTP", "TIMES", "CLIENT", "CODE", "REQUEST");
  for (guint i = 0; i < rows->len; i++)
    {
      KpProblemRow *row = g_ptr_array_index (rows, i);
      g_autofree char *time_text = format_local_time (row->time_ms);
      g_autofree char *status = row->status > 0 ? g_strdup_printf ("%u", row->status)
                                                : g_strdup ("-");
      g_autofree char *what = NULL;

      if (row->refused && row->path == NULL)
        what = g_strdup ("(refused requests of too many kinds to list apart)");
      else if (row->refused)
        what = g_strdup_printf ("%s %s", row->method ? row->method : "?", row->path);
      else if (row->error != NULL)
        what = g_strdup_printf ("model %s: %s", row->model ? row->model : "-", row->error);
      else
        what = g_strdup_printf ("model %s", row->model ? row->model : "-");

      g_application_command_line_print (cmdline, "%-19s %4s %6u %-15s %-20s %s\n",
                                        time_text, status, row->count,
                                        row->client ? row->client : "-",
                                        row->code ? row->code : "-", what);
    }
  if (rows->len == 0)
    g_application_command_line_print (cmdline, "Nothing was refused and no request failed.\n");
  return EXIT_SUCCESS;
}

static int
requests (KpGateway               *gateway,
          GApplicationCommandLine *cmdline,
          char                   **argv,
          int                      argc)
{
  g_autofree char *last_text = NULL;
  g_autofree char *client_text = NULL;
  g_autoptr(GPtrArray) rows = NULL;
  g_autoptr(GError) error = NULL;
  guint64 last = 20;
  gboolean errors = FALSE;
  guint client = KP_CLIENT_OTHER;
  const GOptionEntry entries[] = {
    { "last", 'n', 0, G_OPTION_ARG_STRING, &last_text, NULL, NULL },
    { "errors", 0, 0, G_OPTION_ARG_NONE, &errors, NULL, NULL },
    { "client", 0, 0, G_OPTION_ARG_STRING, &client_text, NULL, NULL },
    { NULL }
  };

  if (!kp_cli_parse_options (cmdline, &argv, &argc, entries))
    return EXIT_FAILURE;
  if (argc != 1)
    return kp_cli_fail (cmdline, "usage: keypool requests [--errors] [--last N] [--client NAME]");
  if (last_text != NULL && !g_ascii_string_to_unsigned (last_text, 10, 1, 100000, &last, NULL))
    return kp_cli_fail (cmdline, "--last “%s” is not a number from 1 to 100000.", last_text);

  if (client_text != NULL && !kp_clients_find (kp_gateway_get_clients (gateway), client_text, &client))
    return kp_cli_fail (cmdline, "There is no client named “%s”; “keypool clients list” lists them.",
                        client_text);

  if (errors)
    return problems (gateway, cmdline, (guint)last);

  if (client_text != NULL)
    rows = kp_ledger_recent_requests_of_client (kp_gateway_get_ledger (gateway), client, (guint)last,
                                                &error);
  else
    rows = kp_ledger_recent_requests (kp_gateway_get_ledger (gateway), (guint)last, &error);
  if (rows == NULL)
    return kp_cli_fail (cmdline, "%s", error->message);

  g_application_command_line_print (cmdline, "%-19s %-32s %-14s %4s %-14s %7s %7s %-22s %7s %s\n",
                                    "TIME", "MODEL", "PROVIDER", "HTTP", "OUTCOME", "IN", "OUT",
                                    "COST", "MS", "CLIENT");
  for (guint i = 0; i < rows->len; i++)
    {
      KpRequestRow *row = g_ptr_array_index (rows, i);
      g_autofree char *time_text = format_local_time (row->time_ms);
      g_autofree char *cost = NULL;
      g_autofree char *client_name = kp_clients_dup_name (kp_gateway_get_clients (gateway),
                                                          row->client_id);

      if (g_strcmp0 (row->cost_source, "unknown") == 0)
        cost = g_strdup ("unknown");
      else
        {
          g_autofree char *usd = kp_cli_format_usd (row->cost_nano);

          cost = g_strdup_printf ("%s %s", usd, row->cost_source);
        }

      g_application_command_line_print (cmdline,
                                        "%-19s %-32.32s %-14.14s %4u %-14s %7" G_GINT64_FORMAT
                                        " %7" G_GINT64_FORMAT " %-22s %7" G_GINT64_FORMAT " %s\n",
                                        time_text, row->model ? row->model : "-",
                                        row->provider ? row->provider : "-", row->status,
                                        row->outcome, row->prompt_tokens, row->completion_tokens,
                                        cost, row->total_ms, client_name);
    }
  return EXIT_SUCCESS;
}

/* token -------------------------------------------------------------------------- */

static void
on_token_regenerated (GObject      *object,
                      GAsyncResult *result,
                      gpointer      user_data)
{
  Pending *pending = user_data;
  g_autoptr(GError) error = NULL;
  KpGateway *gateway = KP_GATEWAY (object);

  if (!kp_gateway_regenerate_token_finish (gateway, result, &error))
    {
      kp_cli_pending_done (pending, kp_cli_fail (pending->cmdline, "%s", error->message));
      return;
    }
  g_application_command_line_print (pending->cmdline, "%s\n", kp_gateway_get_token (gateway));
  g_application_command_line_printerr (pending->cmdline,
                                       "A new token is in use; give it to your clients.\n");
  kp_cli_pending_done (pending, EXIT_SUCCESS);
}

static int
token (GApplication            *app,
       KpGateway               *gateway,
       GApplicationCommandLine *cmdline,
       char                   **argv,
       int                      argc)
{
  gboolean regenerate = FALSE;
  const GOptionEntry entries[] = {
    { "regenerate", 0, 0, G_OPTION_ARG_NONE, &regenerate, NULL, NULL },
    { NULL }
  };

  if (!kp_cli_parse_options (cmdline, &argv, &argc, entries))
    return EXIT_FAILURE;
  if (argc != 1)
    return kp_cli_fail (cmdline, "usage: keypool token [--regenerate]");

  if (regenerate)
    {
      kp_gateway_regenerate_token_async (gateway, NULL, on_token_regenerated,
                                         kp_cli_pending_new (app, cmdline));
      return -1;
    }

  g_application_command_line_print (cmdline, "%s\n", kp_gateway_get_token (gateway));
  return EXIT_SUCCESS;
}

/**
 * kp_cli_run:
 * @app: the application
 * @gateway: a loaded gateway
 * @cmdline: the command line, `keypool COMMAND …`
 *
 * Carries out one command. Commands that wait for the keyring or a provider
 * hold the application until they are done.
 *
 * Returns: the exit status, or -1 when the command goes on asynchronously
 *   and sets it when it ends
 */
int
kp_cli_run (GApplication            *app,
            KpGateway               *gateway,
            GApplicationCommandLine *cmdline)
{
  g_auto(GStrv) args = g_application_command_line_get_arguments (cmdline, NULL);
  g_autofree char **argv = NULL;
  const char *command;
  int argc;
  int status;

  g_return_val_if_fail (G_IS_APPLICATION (app), EXIT_FAILURE);
  g_return_val_if_fail (args[1] != NULL, EXIT_FAILURE);

  /* GOption rearranges the array it parses: work on a shallow copy. */
  argc = g_strv_length (args) - 1;
  argv = g_memdup2 (args + 1, sizeof (char *) * (argc + 1));
  command = argv[0];

  if (g_str_equal (command, "keys"))
    status = keys (app, gateway, cmdline, argv, argc);
  else if (g_str_equal (command, "providers"))
    status = providers (gateway, cmdline, argv, argc);
  else if (g_str_equal (command, "models"))
    status = models (gateway, cmdline);
  else if (g_str_equal (command, "refresh"))
    status = refresh (app, gateway, cmdline, argv, argc);
  else if (g_str_equal (command, "route"))
    status = route (gateway, cmdline, argv, argc);
  else if (g_str_equal (command, "spend"))
    status = spend (gateway, cmdline, argv, argc);
  else if (g_str_equal (command, "requests"))
    status = requests (gateway, cmdline, argv, argc);
  else if (g_str_equal (command, "connect") || g_str_equal (command, "disconnect"))
    status = kp_cli_connect (app, gateway, cmdline, argv, argc);
  else if (g_str_equal (command, "clients"))
    status = kp_cli_clients (app, gateway, cmdline, argv, argc);
  else if (g_str_equal (command, "budget"))
    status = kp_cli_budget (gateway, cmdline, argv, argc);
  else if (g_str_equal (command, "login"))
    status = login (app, gateway, cmdline, argv, argc);
  else
    status = token (app, gateway, cmdline, argv, argc);

  /* -1: an asynchronous command sets the status when it is done. */
  if (status >= 0)
    kp_app_set_exit_status (app, cmdline, status);
  return status;
}
