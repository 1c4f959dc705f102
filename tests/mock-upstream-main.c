/* mock-upstream-main.c: the test provider as a program, for client tests
 *
 * Prints its base URL on stdout, then serves until SIGINT or SIGTERM.
 * With --google it also runs the mock Google token endpoint and Code Assist
 * API (kp-mock-google.h), and prints that one's URL on a second line.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include "config.h"

#include <stdio.h>
#include <stdlib.h>

#include <glib-unix.h>

#include "kp-mock-google.h"
#include "kp-mock-upstream.h"

static gboolean
on_signal (gpointer user_data)
{
  g_main_loop_quit (user_data);
  return G_SOURCE_REMOVE;
}

int
main (int   argc,
      char *argv[])
{
  g_autoptr(GOptionContext) context = g_option_context_new (NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(KpMockUpstream) mock = NULL;
  g_autoptr(KpMockGoogle) google = NULL;
  g_autoptr(GMainLoop) loop = NULL;
  int chunks = 5;
  int interval = 0;
  gboolean with_google = FALSE;
  g_autofree char *google_quota = NULL;
  g_autofree char *google_error = NULL;
  int google_status = 403;
  GOptionEntry entries[] = {
    { "chunks", 0, 0, G_OPTION_ARG_INT, &chunks, "Content chunks per answer", "N" },
    { "interval", 0, 0, G_OPTION_ARG_INT, &interval, "Milliseconds between chunks", "MS" },
    { "google", 0, 0, G_OPTION_ARG_NONE, &with_google, "Also run the mock Google servers", NULL },
    { "google-quota", 0, 0, G_OPTION_ARG_STRING, &google_quota,
      "retrieveUserQuota's buckets", "JSON" },
    { "google-error", 0, 0, G_OPTION_ARG_STRING, &google_error,
      "What every Code Assist generate answers", "JSON" },
    { "google-error-status", 0, 0, G_OPTION_ARG_INT, &google_status,
      "The status of --google-error", "STATUS" },
    { NULL }
  };

  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("mock-upstream: %s\n", error->message);
      return EXIT_FAILURE;
    }

  mock = kp_mock_upstream_new (&error);
  if (mock == NULL)
    {
      g_printerr ("mock-upstream: %s\n", error->message);
      return EXIT_FAILURE;
    }
  kp_mock_upstream_set_chunks (mock, MAX (chunks, 0), MAX (interval, 0));

  g_print ("%s\n", kp_mock_upstream_get_url (mock));
  if (with_google)
    {
      google = kp_mock_google_new (&error);
      if (google == NULL)
        {
          g_printerr ("mock-upstream: %s\n", error->message);
          return EXIT_FAILURE;
        }
      if (google_quota != NULL)
        kp_mock_google_set_quota (google, google_quota);
      if (google_error != NULL)
        kp_mock_google_set_error (google, (guint)CLAMP (google_status, 400, 599), google_error);
      g_print ("%s\n", kp_mock_google_get_url (google));
    }
  fflush (stdout);

  loop = g_main_loop_new (NULL, FALSE);
  g_unix_signal_add (SIGINT, on_signal, loop);
  g_unix_signal_add (SIGTERM, on_signal, loop);
  g_main_loop_run (loop);

  return EXIT_SUCCESS;
}
