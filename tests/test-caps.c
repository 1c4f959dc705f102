/* test-caps.c: every read from a provider is bounded
 *
 * A provider here is a real SoupServer that sends 100 MiB: a whole answer,
 * one stream event that never ends, or a good start and then such an event.
 * Keypool must answer with a clear 502 in the client's wire, stop reading,
 * and its peak memory must stay far below what the provider sent.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include "config.h"

#include <string.h>

#include "kp-gateway.h"
#include "kp-test-util.h"

#define TOKEN "kp-caps-token-0123456789abcdef"
#define KEY   "sk-caps-provider-key-0001"

#define MIB        (1024 * 1024)
#define SENT_TOTAL ((gsize)100 * MIB)
#define BODY_CAP   ((gsize)4 * MIB)
#define EVENT_CAP  ((gsize)1 * MIB)

typedef enum
{
  HUGE_BODY,           /* a JSON answer of 100 MiB */
  ENDLESS_EVENT,       /* "data: aaaa…" with no end */
  GOOD_THEN_ENDLESS,   /* one chunk of answer, then an endless event */
} Mode;

typedef struct
{
  SoupServer *server;
  char       *url;
  Mode        mode;
  GPtrArray  *stalled;    /* messages answered in part, held open */
  char       *block;      /* MIB bytes of 'a' */
  gsize       sent;
  gboolean    finished;
} Provider;

static void
append_next (SoupServerMessage *msg,
             Provider          *provider)
{
  SoupMessageBody *body = soup_server_message_get_response_body (msg);

  if (provider->sent >= SENT_TOTAL)
    {
      soup_message_body_complete (body);
      return;
    }
  soup_message_body_append (body, SOUP_MEMORY_STATIC, provider->block, MIB);
  provider->sent += MIB;
}

static void
on_wrote_chunk (SoupServerMessage *msg,
                Provider          *provider)
{
  if (!provider->finished)
    append_next (msg, provider);
}

static void
on_finished (SoupServerMessage *msg,
             Provider          *provider)
{
  provider->finished = TRUE;
}

static void
provider_handler (SoupServer        *server,
                  SoupServerMessage *msg,
                  const char        *path,
                  GHashTable        *query,
                  gpointer           user_data)
{
  Provider *provider = user_data;
  SoupMessageHeaders *headers = soup_server_message_get_response_headers (msg);
  SoupMessageBody *body = soup_server_message_get_response_body (msg);
  static const char *start_whole = "{\"id\":\"x\",\"choices\":[{\"message\":{\"content\":\"";
  static const char *good =
    "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hello\"}}]}\n\n";

  {
    SoupMessageBody *request = soup_server_message_get_request_body (msg);
    g_autofree char *text = g_strndup (request->data, request->length);

    /* The pool test's models: one that answers at once, and one that
     * starts its stream and then holds the connection.
     */
    if (strstr (text, "\"model\":\"small\"") != NULL)
      {
        static const char *small = "{\"id\":\"s\",\"object\":\"chat.completion\",\"choices\":[{\"index\":0,"
                                   "\"message\":{\"role\":\"assistant\",\"content\":\"Small.\"},"
                                   "\"finish_reason\":\"stop\"}]}";

        soup_server_message_set_status (msg, 200, NULL);
        soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_STATIC, small,
                                          strlen (small));
        return;
      }
    if (strstr (text, "\"model\":\"stall\"") != NULL)
      {
        static const char *first =
          "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hello\"}}]}\n\n";

        soup_server_message_set_status (msg, 200, NULL);
        soup_message_headers_set_encoding (headers, SOUP_ENCODING_CHUNKED);
        soup_message_headers_replace (headers, "Content-Type", "text/event-stream");
        soup_message_body_append (body, SOUP_MEMORY_STATIC, first, strlen (first));
        g_ptr_array_add (provider->stalled, g_object_ref (msg));
        return;
      }
  }

  provider->sent = 0;
  provider->finished = FALSE;
  soup_server_message_set_status (msg, 200, NULL);
  soup_message_headers_set_encoding (headers, SOUP_ENCODING_CHUNKED);
  soup_message_headers_replace (headers, "Content-Type",
                                provider->mode == HUGE_BODY ? "application/json"
                                                            : "text/event-stream");
  soup_message_body_set_accumulate (body, FALSE);
  switch (provider->mode)
    {
    case HUGE_BODY:
      soup_message_body_append (body, SOUP_MEMORY_STATIC, start_whole, strlen (start_whole));
      break;
    case GOOD_THEN_ENDLESS:
      soup_message_body_append (body, SOUP_MEMORY_STATIC, good, strlen (good));
      soup_message_body_append (body, SOUP_MEMORY_STATIC, "data: ", 6);
      break;
    case ENDLESS_EVENT:
    default:
      soup_message_body_append (body, SOUP_MEMORY_STATIC, "data: ", 6);
      break;
    }
  g_signal_connect (msg, "wrote-chunk", G_CALLBACK (on_wrote_chunk), provider);
  g_signal_connect (msg, "finished", G_CALLBACK (on_finished), provider);
}

typedef struct
{
  Provider     provider;
  KpTestPlace  place;
  KpGateway   *gateway;
  SoupSession *client;
  char        *base;
} Fixture;

static void
fixture_setup (Fixture       *fixture,
               gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *json = NULL;
  g_autofree char *path = NULL;
  GSList *uris;

  fixture->provider.block = g_malloc (MIB);
  fixture->provider.stalled = g_ptr_array_new_with_free_func (g_object_unref);
  memset (fixture->provider.block, 'a', MIB);
  fixture->provider.server = soup_server_new (NULL, NULL);
  soup_server_add_handler (fixture->provider.server, NULL, provider_handler, &fixture->provider, NULL);
  soup_server_listen_local (fixture->provider.server, 0, SOUP_SERVER_LISTEN_IPV4_ONLY, &error);
  g_assert_no_error (error);
  uris = soup_server_get_uris (fixture->provider.server);
  fixture->provider.url = g_uri_to_string (uris->data);
  g_slist_free_full (uris, (GDestroyNotify)g_uri_unref);

  kp_test_place_init (&fixture->place, "caps");
  kp_test_place_setenv (&fixture->place, "KP_CAPS_KEY", KEY);
  json = g_strdup_printf ("{\"id\":\"big\",\"name\":\"Big\",\"base_url\":\"%sv1\","
                          "\"env\":[\"KP_CAPS_KEY\"],\"models\":[{\"id\":\"big/model\","
                          "\"upstream_id\":\"model\",\"input\":1,\"output\":1},"
                          "{\"id\":\"big/small\",\"upstream_id\":\"small\",\"input\":1,\"output\":1},"
                          "{\"id\":\"big/stall\",\"upstream_id\":\"stall\",\"input\":1,\"output\":1}]}",
                          fixture->provider.url);
  path = g_build_filename (fixture->place.providers, "big.json", NULL);
  g_assert_true (g_file_set_contents (path, json, -1, NULL));

  fixture->gateway = kp_test_gateway_new (fixture->place.providers, fixture->place.root, TOKEN);
  kp_gateway_set_read_caps (fixture->gateway, BODY_CAP, EVENT_CAP, 0);
  /* One connection to the provider, so that the pool test can fill it. */
  kp_gateway_set_upstream_conns (fixture->gateway, 1);
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
  soup_server_disconnect (fixture->provider.server);
  g_clear_object (&fixture->provider.server);
  g_free (fixture->provider.url);
  g_free (fixture->provider.block);
  g_ptr_array_unref (fixture->provider.stalled);
  kp_test_place_clear (&fixture->place);
  g_free (fixture->base);
}

/* Kilobytes, from /proc/self/status: the resident set now, or its peak. */
static gint64
status_kib (const char *field)
{
  g_autofree char *status = NULL;
  const char *line;

  g_assert_true (g_file_get_contents ("/proc/self/status", &status, NULL, NULL));
  line = strstr (status, field);
  g_assert_nonnull (line);
  return g_ascii_strtoll (line + strlen (field) + 1, NULL, 10);
}

/* Resets the peak, so that VmHWM says what happens from here on. */
static void
reset_peak (void)
{
  g_file_set_contents ("/proc/self/clear_refs", "5", 1, NULL);
}

static void
post (Fixture        *fixture,
      const char     *path,
      const char     *body,
      KpTestResponse *response)
{
  g_autofree char *url = g_strconcat (fixture->base, path, NULL);
  g_autoptr(SoupMessage) msg = soup_message_new (SOUP_METHOD_POST, url);
  g_autoptr(GBytes) bytes = g_bytes_new (body, strlen (body));

  soup_message_headers_replace (soup_message_get_request_headers (msg), "Authorization",
                                "Bearer " TOKEN);
  soup_message_set_request_body_from_bytes (msg, "application/json", bytes);
  kp_test_send (fixture->client, msg, 60000, response);
}

static void
assert_bounded (Fixture *fixture,
                gint64   rss_before_kib)
{
  gint64 peak = status_kib ("VmHWM:");

  /* Far below the 100 MiB the provider offered: the cap and a little. */
  g_test_message ("peak RSS grew by %" G_GINT64_FORMAT " KiB; the provider sent %"
                  G_GSIZE_FORMAT " MiB", peak - rss_before_kib, fixture->provider.sent / MIB);
  g_assert_cmpint (peak - rss_before_kib, <, 40 * 1024);
  /* Keypool stopped reading: the provider never got to send it all. */
  g_assert_cmpuint (fixture->provider.sent, <, SENT_TOTAL);
}

static void
test_huge_body (Fixture       *fixture,
                gconstpointer  data)
{
  g_auto(KpTestResponse) response = { 0 };
  gint64 before;

  fixture->provider.mode = HUGE_BODY;
  reset_peak ();
  before = status_kib ("VmRSS:");
  post (fixture, "/v1/chat/completions",
        "{\"model\":\"big/model\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", &response);
  g_assert_cmpuint (response.status, ==, 502);
  g_assert_nonnull (strstr (response.body, "\"code\":\"upstream_too_large\""));
  g_assert_nonnull (strstr (response.body, "larger than 4 MiB"));
  g_assert_nonnull (strstr (response.body, "Big"));
  assert_bounded (fixture, before);

  /* An Anthropic client hears it in its own shape. */
  g_clear_pointer (&response.body, g_free);
  g_clear_pointer (&response.headers, soup_message_headers_unref);
  post (fixture, "/v1/messages",
        "{\"model\":\"big/model\",\"max_tokens\":10,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
        &response);
  g_assert_cmpuint (response.status, ==, 502);
  g_assert_true (g_str_has_prefix (response.body, "{\"type\":\"error\""));
  g_assert_nonnull (strstr (response.body, "larger than 4 MiB"));
}

static void
test_endless_event (Fixture       *fixture,
                    gconstpointer  data)
{
  g_auto(KpTestResponse) response = { 0 };
  gint64 before;

  fixture->provider.mode = ENDLESS_EVENT;
  reset_peak ();
  before = status_kib ("VmRSS:");
  post (fixture, "/v1/chat/completions",
        "{\"model\":\"big/model\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
        &response);
  /* Nothing reached the client: a plain error, not a stream. */
  g_assert_cmpuint (response.status, ==, 502);
  g_assert_nonnull (strstr (response.body, "stream event larger than 1 MiB"));
  assert_bounded (fixture, before);
}

static void
test_good_then_endless (Fixture       *fixture,
                        gconstpointer  data)
{
  g_auto(KpTestResponse) response = { 0 };
  gint64 before;

  fixture->provider.mode = GOOD_THEN_ENDLESS;
  reset_peak ();
  before = status_kib ("VmRSS:");
  post (fixture, "/v1/chat/completions",
        "{\"model\":\"big/model\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
        &response);
  /* The answer had begun: it ends with an error event, never with [DONE]. */
  g_assert_cmpuint (response.status, ==, 200);
  g_assert_nonnull (strstr (response.body, "\"content\":\"Hello\""));
  g_assert_nonnull (strstr (response.body, "data: {\"error\":"));
  g_assert_nonnull (strstr (response.body, "upstream_too_large"));
  g_assert_null (strstr (response.body, "[DONE]"));
  assert_bounded (fixture, before);
}

typedef struct
{
  gboolean   done;
  guint      status;
  GString   *text;
} Pending;

static void
on_sent_read (GObject      *object,
              GAsyncResult *result,
              gpointer      user_data)
{
  Pending *pending = user_data;
  g_autoptr(GBytes) body = soup_session_send_and_read_finish (SOUP_SESSION (object), result, NULL);

  pending->status = soup_message_get_status (soup_session_get_async_result_message (SOUP_SESSION (object),
                                                                                   result));
  if (body != NULL)
    g_string_append_len (pending->text, g_bytes_get_data (body, NULL), g_bytes_get_size (body));
  pending->done = TRUE;
}

static gboolean
pending_done (gpointer data)
{
  return ((Pending *)data)->done;
}

static gboolean
has_stalled (gpointer data)
{
  return ((Fixture *)data)->provider.stalled->len > 0;
}

static SoupMessage *
post_async (Fixture      *fixture,
            const char   *body,
            GCancellable *cancellable,
            Pending      *pending)
{
  g_autofree char *url = g_strconcat (fixture->base, "/v1/chat/completions", NULL);
  SoupMessage *msg = soup_message_new (SOUP_METHOD_POST, url);
  g_autoptr(GBytes) bytes = g_bytes_new (body, strlen (body));

  soup_message_headers_replace (soup_message_get_request_headers (msg), "Authorization",
                                "Bearer " TOKEN);
  soup_message_set_request_body_from_bytes (msg, "application/json", bytes);
  soup_session_send_and_read_async (fixture->client, msg, G_PRIORITY_DEFAULT, cancellable,
                                    on_sent_read, pending);
  return msg;
}

/* Waiting for one of Keypool's own connections to a provider is not the
 * provider's connect timeout, and blames no key.
 */
static void
test_pool_wait (Fixture       *fixture,
                gconstpointer  data)
{
  g_autoptr(GCancellable) cancel_first = g_cancellable_new ();
  g_autoptr(SoupMessage) first = NULL;
  g_autoptr(SoupMessage) second = NULL;
  Pending a = { .text = g_string_new (NULL) };
  Pending b = { .text = g_string_new (NULL) };

  /* A 100 ms connect timeout (longer under valgrind, where connecting
   * takes longer), and patience for the first byte.
   */
  kp_gateway_set_timeouts (fixture->gateway, 100 * kp_test_timeout_scale (), 20000, 0);

  first = post_async (fixture, "{\"model\":\"big/stall\",\"stream\":true,"
                      "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", cancel_first, &a);
  g_assert_true (kp_test_spin_until (has_stalled, fixture, 10000));
  second = post_async (fixture, "{\"model\":\"big/small\","
                       "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", NULL, &b);

  /* The only connection is taken. Time passing well beyond the connect
   * timeout is what is tested here, so the test lets it pass.
   */
  kp_test_spin_ms (600 * kp_test_timeout_scale ());
  g_assert_false (b.done);

  /* The stream ends; its connection goes to the waiting request. */
  g_cancellable_cancel (cancel_first);
  g_assert_true (kp_test_spin_until (pending_done, &b, 20000));
  g_assert_cmpuint (b.status, ==, 200);
  g_assert_nonnull (strstr (b.text->str, "Small."));
  g_assert_cmpint (kp_test_credential_state (fixture->gateway, KEY), ==, KP_CREDENTIAL_OK);

  g_assert_true (kp_test_spin_until (pending_done, &a, 20000));
  g_string_free (a.text, TRUE);
  g_string_free (b.text, TRUE);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add ("/keypool/caps/huge-body", Fixture, NULL,
              fixture_setup, test_huge_body, fixture_teardown);
  g_test_add ("/keypool/caps/endless-event", Fixture, NULL,
              fixture_setup, test_endless_event, fixture_teardown);
  g_test_add ("/keypool/caps/good-then-endless", Fixture, NULL,
              fixture_setup, test_good_then_endless, fixture_teardown);
  g_test_add ("/keypool/caps/pool-wait", Fixture, NULL,
              fixture_setup, test_pool_wait, fixture_teardown);

  return g_test_run ();
}
