/* kp-cli-keys.c: `keypool keys|login|token`: keys, accounts and the access token
 *
 * A key is read from standard input or typed on the terminal without echo,
 * never taken from the command line; it is never printed, only its last
 * four characters.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include <glib-unix.h>
#include <signal.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "kp-cli-private.h"
#include "kp-ways-in.h"

#define SECRET_LIMIT (64 * 1024)

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
      g_autofree char *when = kp_cli_format_until (until);

      return g_strdup_printf ("%s until %s", kp_credential_state_to_string (state), when);
    }
  return g_strdup (kp_credential_state_to_string (state));
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
  g_autofree char *way_in = NULL;
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
  /* The invoking process asks for no key for an account provider; this one
   * may read other provider files, so it checks too.
   */
  way_in = kp_ways_in_dup_hint (kp_catalog_get_provider (kp_gateway_get_catalog (gateway), argv[1]));
  if (way_in != NULL)
    {
      if (secret != NULL)
        explicit_bzero (secret, strlen (secret));
      return kp_cli_fail (cmdline, "%s", way_in);
    }
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
      if (kp_credential_get_meta (credential, "models") != NULL)
        g_application_command_line_print (cmdline, "     models: %.300s\n",
                                          kp_credential_get_meta (credential, "models"));
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

/* A sign-in under way: a device sign-in's code is printed when it comes, and
 * Ctrl-C (in a keypool of its own) cancels it.
 */
typedef struct
{
  Pending      *pending;
  KpGateway    *gateway;
  GCancellable *cancellable;
  gulong        code_id;
  guint         sigint_id;
} Login;

static void
on_login_code (KpGateway  *gateway,
               const char *provider_id,
               const char *user_code,
               const char *url,
               Login      *login)
{
  g_application_command_line_print (login->pending->cmdline,
                                    "To sign in to %s, open\n  %s\nand enter the code %s "
                                    "(waiting for your approval; Ctrl-C cancels).\n",
                                    provider_id, url ? url : "(the provider gave no page)",
                                    user_code ? user_code : "");
}

static gboolean
on_login_interrupted (gpointer user_data)
{
  Login *login = user_data;

  login->sigint_id = 0;
  g_cancellable_cancel (login->cancellable);
  return G_SOURCE_REMOVE;
}

static void
on_signed_in (GObject      *object,
              GAsyncResult *result,
              gpointer      user_data)
{
  Login *login = user_data;

  g_clear_signal_handler (&login->code_id, login->gateway);
  g_clear_handle_id (&login->sigint_id, g_source_remove);
  g_clear_object (&login->cancellable);
  g_clear_object (&login->gateway);
  on_account_added (object, result, login->pending);
  g_free (login);
}

/* keypool login PROVIDER: sign in in the browser, or with a device code. */
int
kp_cli_login (GApplication            *app,
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
  Login *login;
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
                          "[--timeout SECONDS] (e.g. gemini-cli, antigravity, qwen)");

  login = g_new0 (Login, 1);
  login->pending = kp_cli_pending_new (app, cmdline);
  login->gateway = g_object_ref (gateway);
  login->cancellable = g_cancellable_new ();
  login->code_id = g_signal_connect (gateway, "login-code", G_CALLBACK (on_login_code), login);
  if (!g_application_command_line_get_is_remote (cmdline))
    login->sigint_id = g_unix_signal_add (SIGINT, on_login_interrupted, login);
  if (!kp_gateway_login_async (gateway, argv[1], label, !no_browser, (guint)timeout_s, &url,
                               login->cancellable, on_signed_in, login, &error))
    {
      Pending *pending = login->pending;

      g_clear_signal_handler (&login->code_id, login->gateway);
      g_clear_handle_id (&login->sigint_id, g_source_remove);
      g_clear_object (&login->cancellable);
      g_clear_object (&login->gateway);
      g_free (login);
      kp_cli_pending_done (pending, kp_cli_fail (cmdline, "%s", error->message));
      return -1;
    }
  /* A device sign-in has no page yet: its code comes with "login-code". */
  if (url != NULL)
    g_application_command_line_print (cmdline, "Sign in here (waiting for the browser):\n%s\n",
                                      url);
  return -1;
}

int
kp_cli_keys (GApplication            *app,
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

int
kp_cli_token (GApplication            *app,
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
