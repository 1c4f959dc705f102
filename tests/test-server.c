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
#include "kp-mock-upstream.h"
#include "kp-test-raw.h"
#include "kp-test-util.h"

#define TOKEN "kp-server-token-0123456789"

typedef struct
{
  KpTestPlace     place;
  KpMockUpstream *mock;
  KpGateway      *gateway;
  SoupSession    *client;
  char           *base;
} Fixture;

static void
fixture_setup (Fixture       *fixture,
               gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *mock_json = NULL;
  g_autofree char *path = NULL;

  kp_test_place_init (&fixture->place, "server");
  fixture->mock = kp_mock_upstream_new (&error);
  g_assert_no_error (error);
  mock_json = g_strdup_printf (
    "{\"schema\":1,\"id\":\"mock\",\"name\":\"Mock\",\"base_url\":\"%s\",\"env\":[\"MOCK_API_KEY\"],"
    "\"models\":[{\"id\":\"mock/chat\",\"upstream_id\":\"mock-chat\",\"input\":1,\"output\":2}]}",
    kp_mock_upstream_get_url (fixture->mock));
  path = g_build_filename (fixture->place.providers, "mock.json", NULL);
  g_assert_true (g_file_set_contents (path, mock_json, -1, NULL));
  kp_test_place_setenv (&fixture->place, "MOCK_API_KEY", "sk-mock-server");
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
  g_clear_pointer (&fixture->mock, kp_mock_upstream_free);
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

/* Out of file descriptors, accept() fails; a listener that gave up then
 * would be deaf for good. Keypool answers waiting clients through a spare
 * descriptor and accepts again once descriptors are free.
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

/* Client connections: counted, timed ------------------------------------- */

static void
set_limits (Fixture *fixture,
            guint    max_connections,
            guint    header_ms,
            guint    body_ms,
            guint    idle_ms)
{
  KpClientLimits limits = KP_CLIENT_LIMITS_DEFAULT;

  limits.max_connections = max_connections;
  limits.header_ms = header_ms;
  limits.body_ms = body_ms;
  limits.idle_ms = idle_ms;
  kp_gateway_set_client_limits (fixture->gateway, &limits);
}

static void
raw_open (Fixture *fixture,
          KpRaw   *raw)
{
  kp_raw_open (raw, kp_gateway_get_port (fixture->gateway));
}

/* TRUE once the server answered /health on @data, a KpRaw. */
static gboolean
raw_answered (gpointer data)
{
  KpRaw *raw = data;

  kp_raw_pump (raw);
  return strstr (raw->got->str, "\"status\"") != NULL;
}

/* Over the connection limit a client gets a quick 503, not a hang; once a
 * connection closes, the next is served.
 */
static void
test_connection_cap (Fixture       *fixture,
                     gconstpointer  data)
{
  KpRaw raws[3], extra = { 0 };

  set_limits (fixture, 3, 0, 0, 0);
  for (guint i = 0; i < G_N_ELEMENTS (raws); i++)
    raw_open (fixture, &raws[i]);

  raw_open (fixture, &extra);
  g_assert_true (kp_test_spin_until (kp_raw_is_closed, &extra, 10000));
  g_assert_true (g_str_has_prefix (extra.got->str, "HTTP/1.1 503"));
  g_assert_nonnull (strstr (extra.got->str, "Connection: close"));
  g_assert_nonnull (strstr (extra.got->str, "\"server_busy\""));
  kp_raw_clear (&extra);

  /* The first three are still open and served. */
  for (guint i = 0; i < G_N_ELEMENTS (raws); i++)
    g_assert_false (kp_raw_pump (&raws[i]));
  kp_raw_send (&raws[0], "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  g_assert_true (kp_test_spin_until (raw_answered, &raws[0], 10000));

  kp_raw_clear (&raws[1]);
  g_assert_true (kp_test_spin_until (health_again, fixture, 30000));
  kp_raw_clear (&raws[0]);
  kp_raw_clear (&raws[2]);
}

/* A connection that sends nothing is closed after the header timeout. */
static void
test_silent_connection (Fixture       *fixture,
                        gconstpointer  data)
{
  KpRaw raw = { 0 };
  gint64 start;

  set_limits (fixture, 512, 300, 300, 5000);
  start = g_get_monotonic_time ();
  raw_open (fixture, &raw);
  g_assert_true (kp_test_spin_until (kp_raw_is_closed, &raw, 20000));
  g_assert_cmpint (raw.closed_us - start, >=, 250 * 1000);
  kp_raw_clear (&raw);
  g_assert_true (health_answers (fixture, 5000));
}

typedef struct
{
  KpRaw   *raw;
  guint  sent;
} Trickle;

static gboolean
trickle_header (gpointer data)
{
  Trickle *trickle = data;

  /* The test removes this source itself once the connection is closed. */
  if (!kp_raw_pump (trickle->raw))
    {
      kp_raw_send (trickle->raw, "X-Slow: 1\r\n");
      trickle->sent++;
    }
  return G_SOURCE_CONTINUE;
}

/* Slowloris: headers trickled, a line at a time, never finished. */
static void
test_trickled_headers (Fixture       *fixture,
                       gconstpointer  data)
{
  KpRaw raw = { 0 };
  Trickle trickle = { &raw, 0 };
  guint id;

  set_limits (fixture, 512, 500, 500, 5000);
  raw_open (fixture, &raw);
  kp_raw_send (&raw, "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n");
  id = g_timeout_add (50, trickle_header, &trickle);
  g_assert_true (kp_test_spin_until (kp_raw_is_closed, &raw, 20000));
  g_source_remove (id);
  g_assert_cmpuint (trickle.sent, >=, 3);
  kp_raw_clear (&raw);
}

/* A body that stops coming is closed after the body timeout. */
static void
test_unfinished_body (Fixture       *fixture,
                      gconstpointer  data)
{
  KpRaw raw = { 0 };

  set_limits (fixture, 512, 5000, 300, 5000);
  raw_open (fixture, &raw);
  kp_raw_send (&raw, "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  "Authorization: Bearer " TOKEN "\r\nContent-Length: 100\r\n\r\n{\"model\":");
  g_assert_true (kp_test_spin_until (kp_raw_is_closed, &raw, 20000));
  kp_raw_clear (&raw);
}

/* A kept-alive connection idle between requests has a longer time than a
 * new one to send its next request.
 */
static void
test_idle_keepalive (Fixture       *fixture,
                     gconstpointer  data)
{
  KpRaw raw = { 0 };
  gint64 answered;

  set_limits (fixture, 512, 200, 200, 1500);
  raw_open (fixture, &raw);
  kp_raw_send (&raw, "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  g_assert_true (kp_test_spin_until (raw_answered, &raw, 10000));
  g_assert_false (raw.closed);
  answered = g_get_monotonic_time ();
  g_assert_true (kp_test_spin_until (kp_raw_is_closed, &raw, 20000));
  g_assert_cmpint (raw.closed_us - answered, >=, 1200 * 1000);
  kp_raw_clear (&raw);
}

/* A long stream is not an idle connection: no client timeout cuts it. */
static void
test_stream_not_cut (Fixture       *fixture,
                     gconstpointer  data)
{
  g_autofree char *url = g_strconcat (fixture->base, "/v1/chat/completions", NULL);
  g_autoptr(SoupMessage) msg = soup_message_new ("POST", url);
  g_auto(KpTestResponse) response = { 0 };
  const char *body = "{\"model\":\"mock/chat\",\"stream\":true,"
                     "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
  g_autoptr(GBytes) bytes = g_bytes_new_static (body, strlen (body));

  set_limits (fixture, 512, 200, 200, 200);
  kp_mock_upstream_set_chunks (fixture->mock, 6, 250);
  soup_message_headers_replace (soup_message_get_request_headers (msg), "Authorization",
                                "Bearer " TOKEN);
  soup_message_set_request_body_from_bytes (msg, "application/json", bytes);
  kp_test_send (fixture->client, msg, 30000, &response);
  g_assert_cmpuint (response.status, ==, 200);
  g_assert_nonnull (strstr (response.body, "[DONE]"));
  g_assert_cmpuint (kp_mock_upstream_get_stats (fixture->mock)->completed, ==, 1);
}

static gboolean
either_closed (gpointer data)
{
  KpRaw **raws = data;

  return kp_raw_pump (raws[0]) || kp_raw_pump (raws[1]);
}

/* Large bodies held at once are bounded: one more gets a quick 503. */
static void
test_large_bodies_at_once (Fixture       *fixture,
                           gconstpointer  data)
{
  KpClientLimits limits = KP_CLIENT_LIMITS_DEFAULT;
  const char *head = "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     "Authorization: Bearer " TOKEN "\r\nContent-Length: 2097152\r\n\r\n{\"model\":";
  KpRaw a = { 0 }, b = { 0 };
  KpRaw *refused;

  limits.max_large_bodies = 1;
  kp_gateway_set_client_limits (fixture->gateway, &limits);
  raw_open (fixture, &a);
  raw_open (fixture, &b);
  kp_raw_send (&a, head);
  kp_raw_send (&b, head);
  g_assert_true (kp_test_spin_until (either_closed, (KpRaw *[]) { &a, &b }, 10000));
  refused = a.closed ? &a : &b;
  g_assert_true (g_str_has_prefix (refused->got->str, "HTTP/1.1 503"));
  g_assert_nonnull (strstr (refused->got->str, "Retry-After: 1"));
  g_assert_nonnull (strstr (refused->got->str, "server_busy"));
  g_assert_false (kp_raw_pump (refused == &a ? &b : &a));
  kp_raw_clear (&a);
  kp_raw_clear (&b);
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
  ADD ("connection-cap", test_connection_cap);
  ADD ("silent-connection", test_silent_connection);
  ADD ("trickled-headers", test_trickled_headers);
  ADD ("unfinished-body", test_unfinished_body);
  ADD ("idle-keepalive", test_idle_keepalive);
  ADD ("stream-not-cut", test_stream_not_cut);
  ADD ("large-bodies-at-once", test_large_bodies_at_once);

#undef ADD

  return g_test_run ();
}
