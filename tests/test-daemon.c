/* test-daemon.c: `keypool --headless` as a process
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include "config.h"

#include <signal.h>
#include <string.h>
#include <sys/stat.h>

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <libsoup/soup.h>

#include "kp-test-util.h"

typedef struct
{
  GSubprocess *process;
  char        *url;
  char        *config;
} Daemon;

static GSubprocessLauncher *
new_launcher (const char *config)
{
  GSubprocessLauncher *launcher =
    g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE);

  g_autofree char *data = g_build_filename (config, "data", NULL);

  g_subprocess_launcher_setenv (launcher, "KEYPOOL_CONFIG_DIR", config, TRUE);
  g_subprocess_launcher_setenv (launcher, "KEYPOOL_DATA_DIR", data, TRUE);
  /* No session bus: no keyring, and no other Keypool to hand commands to. */
  g_subprocess_launcher_unsetenv (launcher, "DBUS_SESSION_BUS_ADDRESS");
  g_subprocess_launcher_unsetenv (launcher, "DISPLAY");
  g_subprocess_launcher_unsetenv (launcher, "KEYPOOL_TOKEN");
  g_subprocess_launcher_unsetenv (launcher, "KEYPOOL_PORT");
  return launcher;
}

static char *
read_line (GSubprocess *process)
{
  g_autoptr(GDataInputStream) input =
    g_data_input_stream_new (g_subprocess_get_stdout_pipe (process));

  g_filter_input_stream_set_close_base_stream (G_FILTER_INPUT_STREAM (input), FALSE);
  return g_data_input_stream_read_line (input, NULL, NULL, NULL);
}

static void
daemon_start (Daemon     *daemon,
              const char *port_arg,
              const char *port_env)
{
  g_autoptr(GSubprocessLauncher) launcher = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *line = NULL;
  const char *binary = g_getenv ("KEYPOOL_TEST_BINARY");

  g_assert_nonnull (binary);
  daemon->config = g_dir_make_tmp ("keypool-daemon-XXXXXX", NULL);
  launcher = new_launcher (daemon->config);
  if (port_env != NULL)
    g_subprocess_launcher_setenv (launcher, "KEYPOOL_PORT", port_env, TRUE);

  daemon->process = g_subprocess_launcher_spawn (launcher, &error, binary, "--headless",
                                                 port_arg ? "--port" : NULL, port_arg, NULL);
  g_assert_no_error (error);

  line = read_line (daemon->process);
  g_assert_nonnull (line);
  g_assert_true (g_str_has_prefix (line, "Keypool is serving on http://127.0.0.1:"));
  daemon->url = g_strdup (strstr (line, "http://"));
}

static void
daemon_free (Daemon *daemon)
{
  if (daemon->process != NULL && g_subprocess_get_identifier (daemon->process) != NULL)
    {
      g_subprocess_force_exit (daemon->process);
      g_subprocess_wait (daemon->process, NULL, NULL);
    }
  g_clear_object (&daemon->process);
  g_free (daemon->url);
  if (daemon->config != NULL)
    {
      kp_test_remove_tree (daemon->config);
      g_free (daemon->config);
    }
}

static guint
get (const char *url,
     const char *token,
     GBytes    **body)
{
  g_autoptr(SoupSession) session = soup_session_new ();
  g_autoptr(SoupMessage) msg = soup_message_new ("GET", url);
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) bytes = NULL;

  if (token != NULL)
    {
      g_autofree char *value = g_strconcat ("Bearer ", token, NULL);

      soup_message_headers_replace (soup_message_get_request_headers (msg), "Authorization", value);
    }
  bytes = soup_session_send_and_read (session, msg, NULL, &error);
  g_assert_no_error (error);
  if (body != NULL)
    *body = g_steal_pointer (&bytes);
  return soup_message_get_status (msg);
}

static void
test_serve_and_stop (void)
{
  Daemon daemon = { 0 };
  g_autofree char *health = NULL;
  g_autofree char *models = NULL;
  g_autofree char *token_path = NULL;
  g_autofree char *token = NULL;
  g_autofree char *maps = NULL;
  g_autoptr(GBytes) body = NULL;
  g_autoptr(GError) error = NULL;
  GStatBuf st;
  gint64 start;

  daemon_start (&daemon, "0", NULL);
  /* Serving, so the keyring was tried; with no session bus that never maps
   * libsecret (the keyring's module is loaded only once there is a bus). */
  maps = g_strdup_printf ("/proc/%s/maps", g_subprocess_get_identifier (daemon.process));
  g_assert_true (kp_test_file_contains (maps, "libglib-2.0.so"));
  g_assert_false (kp_test_file_contains (maps, "libsecret-1.so"));
  g_assert_false (kp_test_file_contains (maps, "libkeypool-vault.so"));

  g_assert_true (g_str_has_suffix (daemon.url, "/v1"));
  health = g_strdup_printf ("%.*s/health", (int)strlen (daemon.url) - 3, daemon.url);
  models = g_strconcat (daemon.url, "/models", NULL);

  g_assert_cmpuint (get (health, NULL, &body), ==, 200);
  g_assert_nonnull (strstr (g_bytes_get_data (body, NULL), "\"status\":\"ok\""));

  /* First run: a token was made, readable by the user alone. */
  token_path = g_build_filename (daemon.config, "token", NULL);
  g_assert_cmpint (g_stat (token_path, &st), ==, 0);
  g_assert_cmpint (st.st_mode & 0777, ==, 0600);
  g_assert_true (g_file_get_contents (token_path, &token, NULL, NULL));
  g_strstrip (token);
  g_assert_true (g_str_has_prefix (token, "kp-"));
  g_assert_cmpuint (strlen (token), >=, 30);

  g_assert_cmpuint (get (models, NULL, NULL), ==, 401);
  g_assert_cmpuint (get (models, token, NULL), ==, 200);

  /* SIGTERM: a clean, quick exit. */
  start = g_get_monotonic_time ();
  g_subprocess_send_signal (daemon.process, SIGTERM);
  g_subprocess_wait (daemon.process, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (g_subprocess_get_if_exited (daemon.process));
  g_assert_cmpint (g_subprocess_get_exit_status (daemon.process), ==, 0);
  g_assert_cmpint (g_get_monotonic_time () - start, <, 5 * G_USEC_PER_SEC);

  daemon_free (&daemon);
}

static void
test_port_env_and_conflict (void)
{
  Daemon first = { 0 };
  g_autoptr(GSubprocessLauncher) launcher = NULL;
  g_autoptr(GSubprocess) second = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *err = NULL;
  g_autofree char *port = NULL;
  g_autofree char *config = g_dir_make_tmp ("keypool-daemon-XXXXXX", NULL);
  GUri *uri;

  daemon_start (&first, NULL, "0");
  uri = g_uri_parse (first.url, G_URI_FLAGS_NONE, NULL);
  port = g_strdup_printf ("%d", g_uri_get_port (uri));
  g_uri_unref (uri);

  /* The same port again: a clear one-line error, not a crash. */
  launcher = new_launcher (config);
  g_subprocess_launcher_setenv (launcher, "KEYPOOL_TOKEN", "kp-test", TRUE);
  second = g_subprocess_launcher_spawn (launcher, &error, g_getenv ("KEYPOOL_TEST_BINARY"),
                                        "--headless", "--port", port, NULL);
  g_assert_no_error (error);
  g_subprocess_communicate_utf8 (second, NULL, NULL, NULL, &err, &error);
  g_assert_no_error (error);
  g_assert_cmpint (g_subprocess_get_exit_status (second), !=, 0);
  g_assert_nonnull (strstr (err, "Cannot listen on 127.0.0.1:"));
  kp_test_remove_tree (config);

  daemon_free (&first);
}

static void
test_bad_arguments (void)
{
  const char *cases[][3] = {
    { "--port", "70000", "Invalid port" },
    { "--port", "seven", "Invalid port" },
    { "--idle-timeout", "-1", "timeouts must be" },
    { "frobnicate", NULL, "unknown command" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GSubprocess) process = NULL;
      g_autoptr(GError) error = NULL;
      g_autofree char *err = NULL;

      process = g_subprocess_new (G_SUBPROCESS_FLAGS_STDOUT_SILENCE | G_SUBPROCESS_FLAGS_STDERR_PIPE,
                                  &error, g_getenv ("KEYPOOL_TEST_BINARY"), "--headless",
                                  cases[i][0], cases[i][1], NULL);
      g_assert_no_error (error);
      g_subprocess_communicate_utf8 (process, NULL, NULL, NULL, &err, &error);
      g_assert_no_error (error);
      g_assert_cmpint (g_subprocess_get_exit_status (process), !=, 0);
      if (strstr (err, cases[i][2]) == NULL)
        g_error ("“%s %s”: “%s” does not say “%s”", cases[i][0], cases[i][1], err, cases[i][2]);
    }
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/keypool/daemon/serve-and-stop", test_serve_and_stop);
  g_test_add_func ("/keypool/daemon/port-env-and-conflict", test_port_env_and_conflict);
  g_test_add_func ("/keypool/daemon/bad-arguments", test_bad_arguments);

  return g_test_run ();
}
