/* mock-upstream-main.c: the test provider as a program, for client tests
 *
 * Prints its base URL on stdout, then serves until SIGINT or SIGTERM.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include "config.h"

#include <stdio.h>
#include <stdlib.h>

#include <glib-unix.h>

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
  g_autoptr(GMainLoop) loop = NULL;
  int chunks = 5;
  int interval = 0;
  GOptionEntry entries[] = {
    { "chunks", 0, 0, G_OPTION_ARG_INT, &chunks, "Content chunks per answer", "N" },
    { "interval", 0, 0, G_OPTION_ARG_INT, &interval, "Milliseconds between chunks", "MS" },
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
  fflush (stdout);

  loop = g_main_loop_new (NULL, FALSE);
  g_unix_signal_add (SIGINT, on_signal, loop);
  g_unix_signal_add (SIGTERM, on_signal, loop);
  g_main_loop_run (loop);

  return EXIT_SUCCESS;
}
