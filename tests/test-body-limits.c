/* test-body-limits.c: what a large request body costs `keypool --headless`
 *
 * Keypool runs as a process of its own so that its memory is measured
 * alone: the peak resident size (VmHWM) before and after a request. Bodies
 * are streamed from this process in blocks, never held whole here.
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
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>

#include <gio/gio.h>
#include <glib/gstdio.h>

#include "kp-mock-upstream.h"
#include "kp-test-util.h"

#define TOKEN "kp-body-limits-token-0123456789"

/* AddressSanitizer keeps freed memory in quarantine and pads every block:
 * sizes measured under it say nothing about Keypool's.
 */
#if defined(__SANITIZE_ADDRESS__)
#define MEASURES_MEMORY FALSE
#else
#define MEASURES_MEMORY TRUE
#endif
#define MIB   (1024 * 1024)

typedef struct
{
  KpMockUpstream *mock;
  char           *root;
  GSubprocess    *daemon;
  guint           port;
} Fixture;

/* The daemon ends with this test, even when an assertion aborts it. */
static void
die_with_parent (gpointer data)
{
  prctl (PR_SET_PDEATHSIG, SIGKILL);
}

static void
fixture_setup (Fixture       *fixture,
               gconstpointer  data)
{
  g_autoptr(GSubprocessLauncher) launcher = NULL;
  g_autoptr(GDataInputStream) input = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *providers = NULL;
  g_autofree char *config = NULL;
  g_autofree char *data_dir = NULL;
  g_autofree char *mock_json = NULL;
  g_autofree char *path = NULL;
  g_autofree char *line = NULL;
  const char *port;

  fixture->mock = kp_mock_upstream_new (&error);
  g_assert_no_error (error);
  fixture->root = g_dir_make_tmp ("keypool-body-XXXXXX", NULL);
  providers = g_build_filename (fixture->root, "providers", NULL);
  config = g_build_filename (fixture->root, "config", NULL);
  data_dir = g_build_filename (fixture->root, "data", NULL);
  g_assert_cmpint (g_mkdir (providers, 0700), ==, 0);

  mock_json = g_strdup_printf (
    "{\"schema\":1,\"id\":\"mock\",\"name\":\"Mock\",\"base_url\":\"%s\",\"env\":[\"MOCK_API_KEY\"],"
    "\"models\":[{\"id\":\"mock/chat\",\"upstream_id\":\"mock-chat\",\"input\":1,\"output\":2}]}",
    kp_mock_upstream_get_url (fixture->mock));
  path = g_build_filename (providers, "mock.json", NULL);
  g_assert_true (g_file_set_contents (path, mock_json, -1, NULL));

  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE);
  g_subprocess_launcher_setenv (launcher, "KEYPOOL_PROVIDERS_DIR", providers, TRUE);
  g_subprocess_launcher_setenv (launcher, "KEYPOOL_CONFIG_DIR", config, TRUE);
  g_subprocess_launcher_setenv (launcher, "KEYPOOL_DATA_DIR", data_dir, TRUE);
  g_subprocess_launcher_setenv (launcher, "KEYPOOL_TOKEN", TOKEN, TRUE);
  g_subprocess_launcher_setenv (launcher, "MOCK_API_KEY", "sk-mock-body-limits", TRUE);
  g_subprocess_launcher_unsetenv (launcher, "KEYPOOL_PORT");
  g_subprocess_launcher_set_child_setup (launcher, die_with_parent, NULL, NULL);
  /* No session bus: no keyring, and no other Keypool to hand over to. */
  g_subprocess_launcher_unsetenv (launcher, "DBUS_SESSION_BUS_ADDRESS");
  g_subprocess_launcher_unsetenv (launcher, "DISPLAY");
  fixture->daemon = g_subprocess_launcher_spawn (launcher, &error,
                                                 g_getenv ("KEYPOOL_TEST_BINARY"),
                                                 "--headless", "--port", "0", NULL);
  g_assert_no_error (error);

  input = g_data_input_stream_new (g_subprocess_get_stdout_pipe (fixture->daemon));
  g_filter_input_stream_set_close_base_stream (G_FILTER_INPUT_STREAM (input), FALSE);
  line = g_data_input_stream_read_line (input, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (line);
  port = strstr (line, "http://127.0.0.1:");
  g_assert_nonnull (port);
  fixture->port = (guint)g_ascii_strtoull (port + strlen ("http://127.0.0.1:"), NULL, 10);
  g_assert_cmpuint (fixture->port, >, 0);
}

static void
fixture_teardown (Fixture       *fixture,
                  gconstpointer  data)
{
  if (fixture->daemon != NULL)
    {
      g_subprocess_force_exit (fixture->daemon);
      g_subprocess_wait (fixture->daemon, NULL, NULL);
      g_clear_object (&fixture->daemon);
    }
  g_clear_pointer (&fixture->mock, kp_mock_upstream_free);
  kp_test_remove_tree (fixture->root);
  g_free (fixture->root);
}

/* The peak resident size of the daemon so far, in bytes. */
static gsize
daemon_peak_rss (Fixture *fixture)
{
  g_autofree char *path = g_strdup_printf ("/proc/%s/status",
                                           g_subprocess_get_identifier (fixture->daemon));
  g_autofree char *status = NULL;
  const char *line;

  g_assert_true (g_file_get_contents (path, &status, NULL, NULL));
  line = strstr (status, "VmHWM:");
  g_assert_nonnull (line);
  return (gsize)g_ascii_strtoull (line + strlen ("VmHWM:"), NULL, 10) * 1024;
}

/* One request over a raw connection, in a thread of its own: the body is
 * @prefix, then @filler bytes of 'a', then @suffix, sent in 64 KiB blocks.
 * Sending stops when the server stops taking it; the answer is then read
 * to its end.
 */
typedef struct
{
  guint     port;
  char     *head;
  char     *prefix;
  gsize     filler;
  char     *suffix;

  gsize     sent;          /* bytes of the body that went out */
  GString  *answer;
  gint64    answered_us;   /* monotonic time the first answer byte came */
  gboolean  done;
} Upload;

static gboolean
send_all (int         fd,
          const char *data,
          gsize       len)
{
  while (len > 0)
    {
      gssize n = send (fd, data, len, MSG_NOSIGNAL);

      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return FALSE;
      data += n;
      len -= (gsize)n;
    }
  return TRUE;
}

static gpointer
upload_thread (gpointer data)
{
  Upload *upload = data;
  struct sockaddr_in address = { 0 };
  g_autofree char *block = g_malloc (64 * 1024);
  int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  gboolean ok;
  char buffer[4096];
  gsize left = upload->filler;

  g_assert_cmpint (fd, >=, 0);
  address.sin_family = AF_INET;
  address.sin_port = htons (upload->port);
  address.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
  g_assert_cmpint (connect (fd, (struct sockaddr *)&address, sizeof address), ==, 0);

  memset (block, 'a', 64 * 1024);
  ok = send_all (fd, upload->head, strlen (upload->head)) &&
       send_all (fd, upload->prefix, strlen (upload->prefix));
  if (ok)
    upload->sent += strlen (upload->prefix);
  while (ok && left > 0)
    {
      gsize n = MIN (left, 64 * 1024);

      ok = send_all (fd, block, n);
      if (ok)
        {
          upload->sent += n;
          left -= n;
        }
    }
  if (ok && send_all (fd, upload->suffix, strlen (upload->suffix)))
    upload->sent += strlen (upload->suffix);

  for (;;)
    {
      gssize n = recv (fd, buffer, sizeof buffer, 0);

      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        break;
      if (upload->answer->len == 0)
        upload->answered_us = g_get_monotonic_time ();
      g_string_append_len (upload->answer, buffer, n);
      /* A whole answer with a length: no need to wait for the server to close. */
      if (strstr (upload->answer->str, "\r\n\r\n") != NULL &&
          strstr (upload->answer->str, "Connection: close") == NULL)
        {
          const char *length = strstr (upload->answer->str, "Content-Length: ");
          const char *body = strstr (upload->answer->str, "\r\n\r\n") + 4;

          if (length != NULL &&
              (gsize)(upload->answer->str + upload->answer->len - body) >=
              g_ascii_strtoull (length + strlen ("Content-Length: "), NULL, 10))
            break;
        }
    }
  close (fd);
  g_atomic_int_set (&upload->done, TRUE);
  return NULL;
}

static gboolean
upload_done (gpointer data)
{
  return g_atomic_int_get (&((Upload *)data)->done);
}

/* Runs @upload while this process's main loop serves the mock provider. */
static void
upload_run (Upload *upload,
            guint   timeout_ms)
{
  GThread *thread;

  upload->answer = g_string_new (NULL);
  thread = g_thread_new ("upload", upload_thread, upload);
  g_assert_true (kp_test_spin_until (upload_done, upload, timeout_ms));
  g_thread_join (thread);
}

static void
upload_clear (Upload *upload)
{
  g_free (upload->head);
  g_free (upload->prefix);
  g_free (upload->suffix);
  if (upload->answer != NULL)
    g_string_free (upload->answer, TRUE);
}

static char *
chat_head (gsize       length,
           const char *token)
{
  return g_strdup_printf ("POST /v1/chat/completions HTTP/1.1\r\n"
                          "Host: 127.0.0.1\r\n"
                          "Content-Type: application/json\r\n"
                          "%s%s%s"
                          "Content-Length: %" G_GSIZE_FORMAT "\r\n"
                          "\r\n",
                          token ? "Authorization: Bearer " : "", token ? token : "",
                          token ? "\r\n" : "", length);
}

/* A valid chat request of @size bytes. */
static void
upload_init_chat (Upload     *upload,
                  guint       port,
                  gsize       size,
                  const char *token)
{
  upload->port = port;
  upload->prefix = g_strdup ("{\"model\":\"mock/chat\",\"messages\":[{\"role\":\"user\",\"content\":\"");
  upload->suffix = g_strdup ("\"}]}");
  g_assert_cmpuint (size, >, strlen (upload->prefix) + strlen (upload->suffix));
  upload->filler = size - strlen (upload->prefix) - strlen (upload->suffix);
  upload->head = chat_head (size, token);
}

/* A small request first, so that what a first request costs once (the
 * catalog, sqlite, TLS) is not counted against the body.
 */
static void
warm_up (Fixture *fixture)
{
  Upload upload = { 0 };

  upload_init_chat (&upload, fixture->port, 1024, TOKEN);
  upload_run (&upload, 30000);
  g_assert_true (g_str_has_prefix (upload.answer->str, "HTTP/1.1 200"));
  upload_clear (&upload);
}

/* A body without the token is refused before it is read: 200 MB sent
 * without `Expect: 100-continue` costs the daemon no memory, and the client
 * has its 401 long before it could have sent it all.
 */
static void
test_refused_body_unread (Fixture       *fixture,
                          gconstpointer  data)
{
  Upload upload = { 0 };
  gsize before, after;
  gint64 start;

  warm_up (fixture);
  before = daemon_peak_rss (fixture);

  upload_init_chat (&upload, fixture->port, (gsize)200 * 1000 * 1000, NULL);
  start = g_get_monotonic_time ();
  upload_run (&upload, 60000);
  after = daemon_peak_rss (fixture);

  g_test_message ("peak RSS %" G_GSIZE_FORMAT " → %" G_GSIZE_FORMAT " KiB; %" G_GSIZE_FORMAT
                  " body bytes sent; answer after %" G_GINT64_FORMAT " ms", before / 1024,
                  after / 1024, upload.sent, (upload.answered_us - start) / 1000);
  if (MEASURES_MEMORY)
    g_assert_cmpuint (after - before, <, 20 * MIB);
  /* The daemon stopped taking the body: far less than all of it went out. */
  g_assert_cmpuint (upload.sent, <, 100 * MIB);
  g_assert_true (g_str_has_prefix (upload.answer->str, "HTTP/1.1 401"));
  g_assert_nonnull (strstr (upload.answer->str, "missing_api_key"));
  g_assert_nonnull (strstr (upload.answer->str, "Connection: close"));
  upload_clear (&upload);

  /* And it serves on. */
  warm_up (fixture);
}

/* A valid 31 MB chat body costs the daemon a few times its size at most:
 * one copy of the bytes, the parsed tree and the provider's body.
 */
static void
test_large_body_peak (Fixture       *fixture,
                      gconstpointer  data)
{
  Upload upload = { 0 };
  gsize size = (gsize)31 * 1000 * 1000;
  gsize before, after;

  warm_up (fixture);
  before = daemon_peak_rss (fixture);

  upload_init_chat (&upload, fixture->port, size, TOKEN);
  upload_run (&upload, 60000);
  after = daemon_peak_rss (fixture);

  g_test_message ("peak RSS %" G_GSIZE_FORMAT " → %" G_GSIZE_FORMAT " KiB for a %" G_GSIZE_FORMAT
                  " byte body: %.2f× its size", before / 1024, after / 1024, size,
                  (double)(after - before) / size);
  g_assert_true (g_str_has_prefix (upload.answer->str, "HTTP/1.1 200"));
  g_assert_cmpuint (kp_mock_upstream_get_stats (fixture->mock)->requests, ==, 2);
  g_assert_cmpuint (strlen (kp_mock_upstream_get_stats (fixture->mock)->last_body), >, size - 100);
  if (MEASURES_MEMORY)
    g_assert_cmpuint (after - before, <, size * 7 / 2);
  upload_clear (&upload);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

#define ADD(path, func) \
  g_test_add ("/keypool/body-limits/" path, Fixture, NULL, fixture_setup, func, fixture_teardown)

  ADD ("refused-body-unread", test_refused_body_unread);
  ADD ("large-body-peak", test_large_body_peak);

#undef ADD

  return g_test_run ();
}
