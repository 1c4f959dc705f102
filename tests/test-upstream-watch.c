/* test-upstream-watch.c: the flat source that watches an upstream body
 *
 * A real SoupServer answers with a chunked body whose chunks the test sends
 * one at a time; a real SoupSession reads it. The watch must poll the
 * socket itself (not libsoup's chain of sources), wake up for each chunk
 * and for a cancel, and never for nothing.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include "config.h"

#include <libsoup/soup.h>

#include "kp-test-util.h"
#include "kp-upstream-watch.h"

typedef struct
{
  SoupServer        *server;
  SoupServerMessage *msg;      /* the paused response */
  SoupSession       *session;
  GInputStream      *body;
  GCancellable      *cancellable;
  GString           *got;
  guint              wakeups;
  gboolean           eof;
  gboolean           cancelled;
} Fixture;

static void
handler (SoupServer        *server,
         SoupServerMessage *msg,
         const char        *path,
         GHashTable        *query,
         gpointer           user_data)
{
  Fixture *fixture = user_data;
  SoupMessageHeaders *headers = soup_server_message_get_response_headers (msg);

  soup_server_message_set_status (msg, 200, NULL);
  soup_message_headers_set_encoding (headers, SOUP_ENCODING_CHUNKED);
  soup_message_headers_replace (headers, "Content-Type", "text/event-stream");
  fixture->msg = g_object_ref (msg);
  soup_server_message_unpause (msg);
}

static void
send_chunk (Fixture    *fixture,
            const char *text)
{
  SoupMessageBody *body = soup_server_message_get_response_body (fixture->msg);

  if (text == NULL)
    soup_message_body_complete (body);
  else
    soup_message_body_append (body, SOUP_MEMORY_COPY, text, strlen (text));
  soup_server_message_unpause (fixture->msg);
}

/* Reads what the body has, as the relay does: until a read would block. */
static gboolean
on_readable (gpointer user_data)
{
  Fixture *fixture = user_data;

  fixture->wakeups++;
  for (;;)
    {
      g_autoptr(GError) error = NULL;
      char buffer[256];
      gssize n = g_pollable_input_stream_read_nonblocking (G_POLLABLE_INPUT_STREAM (fixture->body),
                                                           buffer, sizeof buffer,
                                                           fixture->cancellable, &error);

      if (n > 0)
        {
          g_string_append_len (fixture->got, buffer, n);
          continue;
        }
      if (n == 0)
        fixture->eof = TRUE;
      else if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        fixture->cancelled = TRUE;
      else
        g_assert_error (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK);
      break;
    }

  return fixture->eof || fixture->cancelled ? G_SOURCE_REMOVE : G_SOURCE_CONTINUE;
}

static gboolean
have_message (gpointer user_data)
{
  return ((Fixture *)user_data)->msg != NULL;
}

typedef struct
{
  Fixture    *fixture;
  const char *text;
} Wanted;

static gboolean
got_text (gpointer user_data)
{
  Wanted *wanted = user_data;

  return g_str_has_suffix (wanted->fixture->got->str, wanted->text);
}

static gboolean
at_eof (gpointer user_data)
{
  return ((Fixture *)user_data)->eof;
}

static gboolean
was_cancelled (gpointer user_data)
{
  return ((Fixture *)user_data)->cancelled;
}

static void
on_sent (GObject      *object,
         GAsyncResult *result,
         gpointer      user_data)
{
  Fixture *fixture = user_data;
  g_autoptr(GError) error = NULL;

  fixture->body = soup_session_send_finish (SOUP_SESSION (object), result, &error);
  g_assert_no_error (error);
}

static gboolean
have_body (gpointer user_data)
{
  return ((Fixture *)user_data)->body != NULL;
}

static void
fixture_set_up (Fixture       *fixture,
                gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSList) uris = NULL;
  g_autofree char *url = NULL;
  g_autoptr(SoupMessage) msg = NULL;

  fixture->got = g_string_new (NULL);
  fixture->cancellable = g_cancellable_new ();
  fixture->server = soup_server_new (NULL, NULL);
  soup_server_add_handler (fixture->server, "/", handler, fixture, NULL);
  soup_server_listen_local (fixture->server, 0, SOUP_SERVER_LISTEN_IPV4_ONLY, &error);
  g_assert_no_error (error);
  uris = soup_server_get_uris (fixture->server);
  url = g_uri_to_string (uris->data);
  g_slist_free_full (g_steal_pointer (&uris), (GDestroyNotify)g_uri_unref);

  fixture->session = soup_session_new_with_options ("proxy-resolver", NULL, NULL);
  msg = soup_message_new ("GET", url);
  soup_session_send_async (fixture->session, msg, G_PRIORITY_DEFAULT, NULL, on_sent, fixture);
  g_assert_true (kp_test_spin_until (have_message, fixture, 10000));
  send_chunk (fixture, "data: 0\n\n");
  g_assert_true (kp_test_spin_until (have_body, fixture, 10000));
}

static void
fixture_tear_down (Fixture       *fixture,
                   gconstpointer  data)
{
  g_clear_object (&fixture->body);
  g_clear_object (&fixture->msg);
  soup_session_abort (fixture->session);
  g_clear_object (&fixture->session);
  soup_server_disconnect (fixture->server);
  g_clear_object (&fixture->server);
  g_clear_object (&fixture->cancellable);
  g_string_free (fixture->got, TRUE);
}

static GSource *
watch (Fixture  *fixture,
       gboolean  flat)
{
  GSource *source = kp_upstream_watch_new (G_POLLABLE_INPUT_STREAM (fixture->body), flat,
                                           fixture->cancellable);

  g_source_set_callback (source, on_readable, fixture, NULL);
  g_source_attach (source, NULL);
  return source;
}

static void
test_chunks (Fixture       *fixture,
             gconstpointer  data)
{
  gboolean flat = GPOINTER_TO_INT (data);
  g_autoptr(GSource) source = NULL;
  Wanted wanted = { fixture, "data: 0\n\n" };
  char text[32];

  /* Whatever libsoup read with the headers is there at the first read. */
  source = watch (fixture, flat);
  g_assert_cmpint (kp_upstream_watch_is_flat (source), ==, flat);
  on_readable (fixture);
  g_assert_true (kp_test_spin_until (got_text, &wanted, 10000));

  for (guint i = 1; i <= 20; i++)
    {
      guint before = fixture->wakeups;

      g_snprintf (text, sizeof text, "data: %u\n\n", i);
      wanted.text = text;
      send_chunk (fixture, text);
      g_assert_true (kp_test_spin_until (got_text, &wanted, 10000));
      g_assert_cmpuint (fixture->wakeups, >, before);
    }
  g_assert_true (g_str_has_prefix (fixture->got->str, "data: 0\n\ndata: 1\n\n"));

  send_chunk (fixture, NULL);
  g_assert_true (kp_test_spin_until (at_eof, fixture, 10000));
  g_assert_false (fixture->cancelled);
  g_source_destroy (source);
}

/* Nothing arrives: only the cancel wakes the watch. */
static void
test_cancel (Fixture       *fixture,
             gconstpointer  data)
{
  g_autoptr(GSource) source = NULL;
  Wanted wanted = { fixture, "data: 0\n\n" };
  guint quiet;

  source = watch (fixture, TRUE);
  on_readable (fixture);
  g_assert_true (kp_test_spin_until (got_text, &wanted, 10000));

  /* Let the loop run idle for a while: no wake-up without data. */
  quiet = fixture->wakeups;
  for (guint i = 0; i < 50; i++)
    g_main_context_iteration (NULL, FALSE);
  g_assert_cmpuint (fixture->wakeups, <=, quiet + 1);

  g_cancellable_cancel (fixture->cancellable);
  g_assert_true (kp_test_spin_until (was_cancelled, fixture, 10000));
  g_source_destroy (source);
}

/* A reader that stops before the stream would block asks for another call. */
static void
test_again (Fixture       *fixture,
            gconstpointer  data)
{
  g_autoptr(GSource) source = NULL;
  guint before;

  source = watch (fixture, TRUE);
  before = fixture->wakeups;
  kp_upstream_watch_again (source);
  g_assert_true (kp_test_spin_until (got_text, &(Wanted) { fixture, "data: 0\n\n" }, 10000));
  g_assert_cmpuint (fixture->wakeups, >, before);
  g_source_destroy (source);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add ("/keypool/upstream-watch/chunks/flat", Fixture, GINT_TO_POINTER (TRUE),
              fixture_set_up, test_chunks, fixture_tear_down);
  g_test_add ("/keypool/upstream-watch/chunks/whole", Fixture, GINT_TO_POINTER (FALSE),
              fixture_set_up, test_chunks, fixture_tear_down);
  g_test_add ("/keypool/upstream-watch/cancel", Fixture, NULL,
              fixture_set_up, test_cancel, fixture_tear_down);
  g_test_add ("/keypool/upstream-watch/again", Fixture, NULL,
              fixture_set_up, test_again, fixture_tear_down);

  return g_test_run ();
}
