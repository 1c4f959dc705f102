/* test-server.c: the local endpoint under abuse
 *
 * The real gateway and server in this process, driven by raw sockets.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include "config.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include "kp-gateway.h"
#include "kp-test-util.h"

#define TOKEN "kp-server-token-0123456789"

typedef struct
{
  KpTestPlace  place;
  KpGateway   *gateway;
  SoupSession *client;
  char        *base;
} Fixture;

static void
fixture_setup (Fixture       *fixture,
               gconstpointer  data)
{
  kp_test_place_init (&fixture->place, "server");
  fixture->gateway = kp_test_gateway_new (fixture->place.providers, fixture->place.root, TOKEN);
  kp_test_gateway_start (fixture->gateway);
  fixture->base = g_strdup_printf ("http://127.0.0.1:%u", kp_gateway_get_port (fixture->gateway));
  fixture->client = soup_session_new ();
}

static void
fixture_teardown (Fixture       *fixture,
                  gconstpointer  data)
{
  soup_session_abort (fixture->client);
  g_clear_object (&fixture->client);
  kp_test_gateway_clear (&fixture->gateway);
  kp_test_place_clear (&fixture->place);
  g_free (fixture->base);
}

/* A blocking TCP connection to the gateway, or -1 when out of descriptors. */
static int
connect_raw (Fixture *fixture)
{
  struct sockaddr_in address = { 0 };
  int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

  if (fd < 0)
    return -1;
  address.sin_family = AF_INET;
  address.sin_port = htons (kp_gateway_get_port (fixture->gateway));
  address.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
  g_assert_cmpint (connect (fd, (struct sockaddr *)&address, sizeof address), ==, 0);
  return fd;
}

/* GET /health; TRUE when it answered 200 within @timeout_ms. */
static gboolean
health_answers (Fixture *fixture,
                guint    timeout_ms)
{
  g_autofree char *url = g_strconcat (fixture->base, "/health", NULL);
  g_autoptr(SoupSession) session = soup_session_new_with_options ("timeout", (timeout_ms + 999) / 1000,
                                                                  NULL);
  g_autoptr(SoupMessage) msg = soup_message_new ("GET", url);
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GBytes) body = NULL;
  g_autoptr(GError) error = NULL;

  soup_session_send_and_read_async (session, msg, G_PRIORITY_DEFAULT, NULL,
                                    kp_test_store_result, &result);
  if (!kp_test_spin_until (kp_test_result_ready, &result, timeout_ms + 2000))
    {
      soup_session_abort (session);
      kp_test_spin_until (kp_test_result_ready, &result, 5000);
      return FALSE;
    }
  body = soup_session_send_and_read_finish (session, result, &error);
  return body != NULL && soup_message_get_status (msg) == 200;
}

static gboolean
health_again (gpointer data)
{
  return health_answers (data, 1000);
}

/* Out of file descriptors, libsoup 3.2's listener stops accepting for good
 * after one failed accept(). Keypool notices and listens again once
 * descriptors are free.
 */
static void
test_fd_exhaustion (Fixture       *fixture,
                    gconstpointer  data)
{
  g_autoptr(GArray) fds = g_array_new (FALSE, FALSE, sizeof (int));
  struct rlimit saved, low;

  g_assert_true (health_answers (fixture, 5000));

  g_assert_cmpint (getrlimit (RLIMIT_NOFILE, &saved), ==, 0);
  low = saved;
  low.rlim_cur = 256;
  g_assert_cmpint (setrlimit (RLIMIT_NOFILE, &low), ==, 0);

  /* Each connection costs a descriptor here and one in the server, in this
   * same process: open them until none is left, letting the server accept.
   */
  for (;;)
    {
      int fd = connect_raw (fixture);

      if (fd < 0)
        {
          g_assert_cmpint (errno, ==, EMFILE);
          break;
        }
      g_array_append_val (fds, fd);
      g_main_context_iteration (NULL, FALSE);
    }
  g_assert_cmpuint (fds->len, >, 50);
  /* One more connection takes the last descriptor here and leaves none for
   * the server's accept(), which fails.
   */
  close (g_array_index (fds, int, fds->len - 1));
  g_array_index (fds, int, fds->len - 1) = connect_raw (fixture);
  g_assert_cmpint (g_array_index (fds, int, fds->len - 1), >=, 0);
  for (guint i = 0; i < 50; i++)
    g_main_context_iteration (NULL, FALSE);

  for (guint i = 0; i < fds->len; i++)
    close (g_array_index (fds, int, i));
  g_assert_cmpint (setrlimit (RLIMIT_NOFILE, &saved), ==, 0);

  /* The idle connections are gone: /health answers again. */
  g_assert_true (kp_test_spin_until (health_again, fixture, 30000));
}

/* At start the soft limit is raised to the hard one. */
static void
test_fd_limit_raised (Fixture       *fixture,
                      gconstpointer  data)
{
  struct rlimit limit;

  g_assert_cmpint (getrlimit (RLIMIT_NOFILE, &limit), ==, 0);
  g_assert_true (limit.rlim_cur == limit.rlim_max);
}

int
main (int   argc,
      char *argv[])
{
  struct rlimit limit;

  g_test_init (&argc, &argv, NULL);

  /* Start low: the gateway raises it. */
  if (getrlimit (RLIMIT_NOFILE, &limit) == 0 && limit.rlim_max > 512)
    {
      limit.rlim_cur = 512;
      setrlimit (RLIMIT_NOFILE, &limit);
    }

#define ADD(path, func) \
  g_test_add ("/keypool/server/" path, Fixture, NULL, fixture_setup, func, fixture_teardown)

  ADD ("fd-limit-raised", test_fd_limit_raised);
  ADD ("fd-exhaustion", test_fd_exhaustion);

#undef ADD

  return g_test_run ();
}
