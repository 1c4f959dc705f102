/* test-gateway.c: the real server and relay against a mock upstream
 *
 * Keypool, the mock provider and the test's HTTP client share one main
 * loop; raw requests that must set their own Host header run in a thread.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include "config.h"

#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include "connect/kp-connector.h"
#include "kp-gateway.h"
#include "kp-mock-upstream.h"
#include "kp-test-util.h"

#define TOKEN    "kp-test-token-0123456789"
#define MOCK_KEY "mock-key-abcdefghijklmnop"

typedef struct
{
  KpMockUpstream *mock;
  KpGateway      *gateway;
  SoupSession    *client;
  char           *root;
  char           *base;       /* http://127.0.0.1:PORT */
  GPtrArray      *finished;   /* of KpRelay */
} Fixture;


static void
write_provider (const char *dir,
                const char *name,
                const char *json)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);

  g_assert_true (g_file_set_contents (path, json, -1, NULL));
}

static void
on_request_finished (KpGateway *gateway,
                     KpRelay   *relay,
                     Fixture   *fixture)
{
  g_ptr_array_add (fixture->finished, g_object_ref (relay));
}

static gboolean
has_finished (gpointer data)
{
  Fixture *fixture = data;

  return fixture->finished->len > 0;
}

static KpRelay *
wait_finished (Fixture *fixture)
{
  g_assert_true (kp_test_spin_until (has_finished, fixture, 5000));
  return g_ptr_array_index (fixture->finished, fixture->finished->len - 1);
}

static void
fixture_setup (Fixture       *fixture,
               gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *providers = NULL;
  g_autofree char *mock_json = NULL;
  const char *origins[] = { "https://trusted.example", NULL };

  fixture->mock = kp_mock_upstream_new (&error);
  g_assert_no_error (error);
  kp_mock_upstream_set_chunks (fixture->mock, 5, 0);

  fixture->root = g_dir_make_tmp ("keypool-gateway-XXXXXX", &error);
  g_assert_no_error (error);
  providers = g_build_filename (fixture->root, "providers", NULL);
  g_mkdir (providers, 0700);

  mock_json = g_strdup_printf (
    "{\"schema\":1,\"id\":\"mock\",\"name\":\"Mock\",\"base_url\":\"%s\",\"env\":[\"MOCK_API_KEY\"],"
    "\"models\":["
    "{\"id\":\"mock/chat\",\"upstream_id\":\"mock-chat\",\"input\":1,\"output\":2,\"cached_input\":0.5},"
    "{\"id\":\"mock/cost\",\"upstream_id\":\"mock-cost\",\"input\":1,\"output\":2},"
    "{\"id\":\"mock/unpriced\",\"upstream_id\":\"mock-chat\"},"
    "{\"id\":\"mock/rate\",\"upstream_id\":\"mock-429\",\"input\":1,\"output\":2},"
    "{\"id\":\"mock/broken\",\"upstream_id\":\"mock-500\",\"input\":1,\"output\":2},"
    "{\"id\":\"mock/too-long\",\"upstream_id\":\"mock-400\",\"input\":1,\"output\":2},"
    "{\"id\":\"mock/hang\",\"upstream_id\":\"mock-hang\",\"input\":1,\"output\":2},"
    "{\"id\":\"mock/stall\",\"upstream_id\":\"mock-stall\",\"input\":1,\"output\":2},"
    "{\"id\":\"mock/cut\",\"upstream_id\":\"mock-cut\",\"input\":1,\"output\":2},"
    "{\"id\":\"mock/instream\",\"upstream_id\":\"mock-instream-error\",\"input\":1,\"output\":2}]}",
    kp_mock_upstream_get_url (fixture->mock));
  write_provider (providers, "mock.json", mock_json);
  {
    g_autofree char *twin_json = g_strdup_printf (
      "{\"id\":\"twin\",\"name\":\"Twin\",\"base_url\":\"%s\",\"env\":[\"TWIN_KEY_A\",\"TWIN_KEY_B\"],"
      "\"models\":[{\"id\":\"twin/chat\",\"upstream_id\":\"mock-chat\",\"input\":1,\"output\":2}]}",
      kp_mock_upstream_get_url (fixture->mock));

    write_provider (providers, "twin.json", twin_json);
  }
  write_provider (providers, "nokey.json",
                  "{\"id\":\"nokey\",\"name\":\"No Key\",\"base_url\":\"http://127.0.0.1:9/v1\","
                  "\"env\":[\"KEYPOOL_TEST_UNSET_KEY\"],"
                  "\"models\":[{\"id\":\"nokey/model\",\"input\":1,\"output\":1}]}");
  /* Port 1 on loopback: nothing listens there, so connecting is refused. */
  write_provider (providers, "dead.json",
                  "{\"id\":\"dead\",\"name\":\"Dead Provider\",\"base_url\":\"http://127.0.0.1:1/v1\","
                  "\"requires_key\":false,\"auth\":\"none\","
                  "\"models\":[{\"id\":\"dead/model\",\"input\":0,\"output\":0}]}");

  fixture->gateway = kp_test_gateway_new (providers, fixture->root, TOKEN);
  kp_gateway_set_body_limit (fixture->gateway, 64 * 1024);
  kp_gateway_set_timeouts (fixture->gateway, 2000, 800, 800);
  kp_gateway_set_allowed_origins (fixture->gateway, origins);
  kp_test_gateway_start (fixture->gateway);

  fixture->finished = g_ptr_array_new_with_free_func (g_object_unref);
  g_signal_connect (fixture->gateway, "request-finished", G_CALLBACK (on_request_finished), fixture);

  fixture->base = g_strdup_printf ("http://127.0.0.1:%u", kp_gateway_get_port (fixture->gateway));
  fixture->client = soup_session_new_with_options ("max-conns-per-host", 16, NULL);
}

static void
fixture_teardown (Fixture       *fixture,
                  gconstpointer  data)
{
  soup_session_abort (fixture->client);
  g_clear_object (&fixture->client);
  kp_test_gateway_clear (&fixture->gateway);
  g_clear_pointer (&fixture->mock, kp_mock_upstream_free);
  g_clear_pointer (&fixture->finished, g_ptr_array_unref);
  kp_test_spin_ms (10);
  kp_test_remove_tree (fixture->root);
  g_free (fixture->root);
  g_free (fixture->base);
}

/* A plain request through libsoup ------------------------------------- */

static SoupMessage *
new_message (Fixture    *fixture,
             const char *method,
             const char *path,
             const char *body)
{
  g_autofree char *url = g_strconcat (fixture->base, path, NULL);
  SoupMessage *msg = soup_message_new (method, url);

  soup_message_headers_replace (soup_message_get_request_headers (msg),
                                "Authorization", "Bearer " TOKEN);
  if (body != NULL)
    {
      g_autoptr(GBytes) bytes = g_bytes_new (body, strlen (body));

      soup_message_set_request_body_from_bytes (msg, "application/json", bytes);
    }
  return msg;
}

static void
send_message (Fixture        *fixture,
              SoupMessage    *msg,
              KpTestResponse *response)
{
  kp_test_send (fixture->client, msg, 10000, response);
}

static void
request (Fixture        *fixture,
         const char     *method,
         const char     *path,
         const char     *body,
         KpTestResponse *response)
{
  g_autoptr(SoupMessage) msg = new_message (fixture, method, path, body);

  send_message (fixture, msg, response);
}

static const char *
body_text (KpTestResponse *response)
{
  return response->body;
}

static JsonObject *
parse_object (JsonParser     *parser,
              KpTestResponse *response)
{
  g_autoptr(GError) error = NULL;

  json_parser_load_from_data (parser, body_text (response), -1, &error);
  g_assert_no_error (error);
  g_assert_true (JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)));
  return json_node_get_object (json_parser_get_root (parser));
}

/* Checks the OpenAI error shape and returns its code. */
static const char *
assert_error (JsonParser     *parser,
              KpTestResponse *response,
              guint           status)
{
  JsonObject *root;
  JsonObject *error;

  if (response->status != status)
    g_error ("expected %u, got %u: %s", status, response->status, body_text (response));
  g_assert_cmpstr (soup_message_headers_get_content_type (response->headers, NULL), ==,
                   "application/json");

  root = parse_object (parser, response);
  error = json_object_get_object_member (root, "error");
  g_assert_nonnull (error);
  g_assert_true (json_object_has_member (error, "message"));
  g_assert_true (json_object_has_member (error, "type"));
  g_assert_true (json_object_has_member (error, "param"));
  g_assert_true (json_object_has_member (error, "code"));
  g_assert_cmpuint (strlen (json_object_get_string_member (error, "message")), >, 10);

  return JSON_NODE_HOLDS_NULL (json_object_get_member (error, "code"))
           ? NULL : json_object_get_string_member (error, "code");
}

#define CHAT(model, extra) \
  "{\"model\":\"" model "\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]" extra "}"

/* Tests ---------------------------------------------------------------- */

static void
test_health (Fixture       *fixture,
             gconstpointer  data)
{
  g_auto(KpTestResponse) response = { 0 };
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(SoupMessage) msg = NULL;
  g_autofree char *url = g_strconcat (fixture->base, "/health", NULL);
  JsonObject *root;

  /* No token needed. */
  msg = soup_message_new ("GET", url);
  send_message (fixture, msg, &response);
  g_assert_cmpuint (response.status, ==, 200);
  root = parse_object (parser, &response);
  g_assert_cmpstr (json_object_get_string_member (root, "status"), ==, "ok");
  g_assert_cmpint (json_object_get_int_member (root, "providers"), ==, 4);
  /* mock and twin have keys, dead needs none, nokey has none. */
  g_assert_cmpint (json_object_get_int_member (root, "usable_providers"), ==, 3);
  g_assert_null (strstr (body_text (&response), MOCK_KEY));
}

static void
test_models (Fixture       *fixture,
             gconstpointer  data)
{
  g_auto(KpTestResponse) response = { 0 };
  g_autoptr(JsonParser) parser = json_parser_new ();
  JsonObject *root;
  JsonArray *models;
  gboolean saw_chat = FALSE;

  request (fixture, "GET", "/v1/models", NULL, &response);
  g_assert_cmpuint (response.status, ==, 200);
  root = parse_object (parser, &response);
  g_assert_cmpstr (json_object_get_string_member (root, "object"), ==, "list");
  models = json_object_get_array_member (root, "data");
  g_assert_cmpuint (json_array_get_length (models), ==, 12);

  for (guint i = 0; i < json_array_get_length (models); i++)
    {
      JsonObject *model = json_array_get_object_element (models, i);
      const char *id = json_object_get_string_member (model, "id");

      g_assert_cmpstr (json_object_get_string_member (model, "object"), ==, "model");
      /* A provider without a key contributes nothing. */
      g_assert_cmpstr (id, !=, "nokey/model");
      if (g_str_equal (id, "mock/chat"))
        {
          saw_chat = TRUE;
          g_assert_cmpstr (json_object_get_string_member (model, "owned_by"), ==, "mock");
        }
    }
  g_assert_true (saw_chat);
}

static void
test_chat_plain (Fixture       *fixture,
                 gconstpointer  data)
{
  g_auto(KpTestResponse) response = { 0 };
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(JsonParser) upstream = json_parser_new ();
  KpMockStats *stats = kp_mock_upstream_get_stats (fixture->mock);
  JsonObject *root;
  JsonObject *message;
  KpRelay *relay;
  gint64 cost = 0;

  request (fixture, "POST", "/v1/chat/completions", CHAT ("mock/chat", ""), &response);
  g_assert_cmpuint (response.status, ==, 200);
  g_assert_cmpstr (soup_message_headers_get_one (response.headers, "x-keypool-provider"), ==, "mock");
  g_assert_nonnull (soup_message_headers_get_one (response.headers, "x-request-id"));
  /* A non-streamed answer keeps its length. */
  g_assert_cmpint (soup_message_headers_get_encoding (response.headers), ==,
                   SOUP_ENCODING_CONTENT_LENGTH);

  root = parse_object (parser, &response);
  message = json_object_get_object_member (
    json_array_get_object_element (json_object_get_array_member (root, "choices"), 0), "message");
  g_assert_cmpstr (json_object_get_string_member (message, "content"), ==, "tok0 tok1 tok2 tok3 tok4 ");

  /* The upstream saw its own model id and the provider's key, not ours. */
  g_assert_cmpuint (stats->requests, ==, 1);
  g_assert_cmpstr (stats->last_auth, ==, "Bearer " MOCK_KEY);
  g_assert_true (json_parser_load_from_data (upstream, stats->last_body, -1, NULL));
  g_assert_cmpstr (json_object_get_string_member (json_node_get_object (json_parser_get_root (upstream)),
                                                  "model"), ==, "mock-chat");

  relay = wait_finished (fixture);
  g_assert_cmpint (kp_relay_get_outcome (relay), ==, KP_OUTCOME_OK);
  g_assert_cmpuint (kp_relay_get_status (relay), ==, 200);
  g_assert_false (kp_relay_get_streamed (relay));
  g_assert_cmpstr (kp_relay_get_provider_id (relay), ==, "mock");
  g_assert_cmpint (kp_relay_get_usage (relay)->prompt_tokens, ==, 11);
  g_assert_cmpint (kp_relay_get_usage (relay)->completion_tokens, ==, 5);
  g_assert_cmpint (kp_relay_get_usage (relay)->cached_tokens, ==, 3);
  g_assert_cmpint (kp_relay_get_usage (relay)->reasoning_tokens, ==, 1);
  /* (8 × $1 + 3 × $0.50 + 5 × $2) per million tokens */
  g_assert_cmpint (kp_relay_get_cost (relay, &cost), ==, KP_COST_COMPUTED);
  g_assert_cmpint (cost, ==, 19500);
}

/* A provider on this machine goes through a session without a proxy
 * resolver (GIO's default one is never loaded for it); any other address
 * through the main session, which keeps the system's proxy settings.
 */
static void
test_chat_local_session (Fixture       *fixture,
                         gconstpointer  data)
{
  g_auto(KpTestResponse) response = { 0 };
  g_autoptr(GUri) local = g_uri_parse (kp_mock_upstream_get_url (fixture->mock), G_URI_FLAGS_NONE, NULL);
  g_autoptr(GUri) named = g_uri_parse ("http://localhost:9/v1", G_URI_FLAGS_NONE, NULL);
  g_autoptr(GUri) v6 = g_uri_parse ("http://[::1]:9/v1", G_URI_FLAGS_NONE, NULL);
  g_autoptr(GUri) remote = g_uri_parse ("https://api.example.com/v1", G_URI_FLAGS_NONE, NULL);
  g_autoptr(GUri) lookalike = g_uri_parse ("http://127.0.0.1.example.com/v1", G_URI_FLAGS_NONE, NULL);
  g_autoptr(GProxyResolver) resolver = NULL;
  SoupSession *main_session = kp_gateway_get_session (fixture->gateway);
  SoupSession *local_session;
  guint main_per_host = 0;
  guint local_per_host = 0;

  request (fixture, "POST", "/v1/chat/completions", CHAT ("mock/chat", ""), &response);
  g_assert_cmpuint (response.status, ==, 200);
  g_assert_cmpuint (kp_mock_upstream_get_stats (fixture->mock)->requests, ==, 1);

  local_session = kp_gateway_get_session_for (fixture->gateway, local);
  g_assert_nonnull (local_session);
  g_assert_true (local_session != main_session);
  g_assert_true (kp_gateway_get_session_for (fixture->gateway, named) == local_session);
  g_assert_true (kp_gateway_get_session_for (fixture->gateway, v6) == local_session);
  g_assert_true (kp_gateway_get_session_for (fixture->gateway, remote) == main_session);
  g_assert_true (kp_gateway_get_session_for (fixture->gateway, lookalike) == main_session);

  g_object_get (local_session, "proxy-resolver", &resolver, "max-conns-per-host", &local_per_host, NULL);
  g_object_get (main_session, "max-conns-per-host", &main_per_host, NULL);
  g_assert_null (resolver);
  g_assert_cmpuint (local_per_host, ==, main_per_host);
}

static void
test_chat_cost_sources (Fixture       *fixture,
                        gconstpointer  data)
{
  KpRelay *relay;
  gint64 cost = -1;

  {
    g_auto(KpTestResponse) response = { 0 };

    request (fixture, "POST", "/v1/chat/completions", CHAT ("mock/cost", ""), &response);
    g_assert_cmpuint (response.status, ==, 200);
    relay = wait_finished (fixture);
    g_assert_cmpint (kp_relay_get_cost (relay, &cost), ==, KP_COST_REPORTED);
    g_assert_cmpint (cost, ==, 123000);
  }

  {
    g_auto(KpTestResponse) response = { 0 };

    g_ptr_array_set_size (fixture->finished, 0);
    request (fixture, "POST", "/v1/chat/completions", CHAT ("mock/unpriced", ""), &response);
    g_assert_cmpuint (response.status, ==, 200);
    relay = wait_finished (fixture);
    /* Usage is known, the price is not: unknown, never $0 computed. */
    g_assert_true (kp_relay_get_usage (relay)->known);
    g_assert_cmpint (kp_relay_get_cost (relay, &cost), ==, KP_COST_UNKNOWN);
  }
}

/* Streaming ------------------------------------------------------------ */

typedef struct
{
  GInputStream *stream;
  GString      *text;
  GArray       *times;     /* µs each read returned data */
  GError       *error;
  GCancellable *cancellable;
  gboolean      eof;
  gboolean      failed;
  guint         close_after;  /* close after this many bytes; 0 = never */
  char          buffer[4096];
} Reader;

static void read_next (Reader *reader);

static void
on_chunk (GObject      *object,
          GAsyncResult *result,
          gpointer      user_data)
{
  Reader *reader = user_data;
  gssize n = g_input_stream_read_finish (G_INPUT_STREAM (object), result, &reader->error);

  if (n < 0)
    {
      reader->failed = TRUE;
      return;
    }
  if (n == 0)
    {
      reader->eof = TRUE;
      return;
    }

  {
    gint64 now = g_get_monotonic_time ();

    g_array_append_val (reader->times, now);
  }
  g_string_append_len (reader->text, reader->buffer, n);

  if (reader->close_after > 0 && reader->text->len >= reader->close_after)
    {
      /* Hang up: closing a response before its end closes the connection. */
      g_input_stream_close (reader->stream, NULL, NULL);
      g_clear_object (&reader->stream);
      reader->eof = TRUE;
      return;
    }
  read_next (reader);
}

static void
read_next (Reader *reader)
{
  g_input_stream_read_async (reader->stream, reader->buffer, sizeof reader->buffer,
                             G_PRIORITY_DEFAULT, reader->cancellable, on_chunk, reader);
}

static void
on_stream_sent (GObject      *object,
                GAsyncResult *result,
                gpointer      user_data)
{
  Reader *reader = user_data;

  reader->stream = soup_session_send_finish (SOUP_SESSION (object), result, &reader->error);
  if (reader->stream == NULL)
    {
      reader->failed = TRUE;
      return;
    }
  read_next (reader);
}

static gboolean
reader_done (gpointer data)
{
  Reader *reader = data;

  return reader->eof || reader->failed;
}

static void
reader_init (Reader *reader)
{
  memset (reader, 0, sizeof *reader);
  reader->text = g_string_new (NULL);
  reader->times = g_array_new (FALSE, FALSE, sizeof (gint64));
  reader->cancellable = g_cancellable_new ();
}

static void
reader_clear (Reader *reader)
{
  g_string_free (reader->text, TRUE);
  g_array_unref (reader->times);
  g_clear_object (&reader->stream);
  g_clear_object (&reader->cancellable);
  g_clear_error (&reader->error);
}

static SoupMessage *
start_stream (Fixture    *fixture,
              const char *body,
              Reader     *reader)
{
  SoupMessage *msg = new_message (fixture, "POST", "/v1/chat/completions", body);

  soup_session_send_async (fixture->client, msg, G_PRIORITY_DEFAULT, reader->cancellable,
                           on_stream_sent, reader);
  return msg;
}

static guint
count (const char *haystack,
       const char *needle)
{
  guint n = 0;

  for (const char *p = strstr (haystack, needle); p; p = strstr (p + 1, needle))
    n++;
  return n;
}

static void
test_stream_relay (Fixture       *fixture,
                   gconstpointer  data)
{
  g_autoptr(SoupMessage) msg = NULL;
  KpMockStats *stats = kp_mock_upstream_get_stats (fixture->mock);
  Reader reader;
  KpRelay *relay;
  const char *text;
  gint64 last_emit;

  kp_mock_upstream_set_chunks (fixture->mock, 5, 60);
  reader_init (&reader);
  msg = start_stream (fixture, CHAT ("mock/chat", ",\"stream\":true"), &reader);
  g_assert_true (kp_test_spin_until (reader_done, &reader, 10000));
  g_assert_no_error (reader.error);

  g_assert_cmpuint (soup_message_get_status (msg), ==, 200);
  g_assert_cmpstr (soup_message_headers_get_content_type (soup_message_get_response_headers (msg), NULL),
                   ==, "text/event-stream");

  text = reader.text->str;
  /* In order, complete, and ended properly. */
  g_assert_nonnull (strstr (text, "tok0"));
  g_assert_true (strstr (text, "tok0") < strstr (text, "tok1"));
  g_assert_true (strstr (text, "tok3") < strstr (text, "tok4"));
  g_assert_true (strstr (text, "tok4") < strstr (text, "\"finish_reason\":\"stop\""));
  g_assert_true (g_str_has_suffix (text, "data: [DONE]\n\n"));
  g_assert_cmpuint (count (text, "data: "), ==, 7);

  /* The usage chunk Keypool asked for is not shown to a client that did not. */
  g_assert_null (strstr (text, "\"choices\":[]"));
  g_assert_nonnull (strstr (stats->last_body, "\"include_usage\":true"));

  /* Relayed as it came: the first chunk reached the client long before the
   * last one was even written upstream, and chunks arrived one by one.
   */
  g_assert_cmpuint (stats->emit_times->len, ==, 5);
  last_emit = g_array_index (stats->emit_times, gint64, 4);
  g_assert_cmpint (g_array_index (reader.times, gint64, 0), <, last_emit);
  g_assert_cmpuint (reader.times->len, >=, 5);

  relay = wait_finished (fixture);
  g_assert_cmpint (kp_relay_get_outcome (relay), ==, KP_OUTCOME_OK);
  g_assert_true (kp_relay_get_streamed (relay));
  g_assert_cmpint (kp_relay_get_usage (relay)->completion_tokens, ==, 5);
  g_assert_cmpint (kp_relay_get_usage (relay)->prompt_tokens, ==, 11);
  g_assert_cmpint (kp_relay_get_ttfb_ms (relay), >=, 0);

  reader_clear (&reader);
}

static void
test_stream_usage_requested (Fixture       *fixture,
                             gconstpointer  data)
{
  g_autoptr(SoupMessage) msg = NULL;
  Reader reader;

  reader_init (&reader);
  msg = start_stream (fixture, CHAT ("mock/chat", ",\"stream\":true,"
                                     "\"stream_options\":{\"include_usage\":true}"), &reader);
  g_assert_true (kp_test_spin_until (reader_done, &reader, 10000));
  g_assert_no_error (reader.error);

  /* Asked for, so passed on. */
  g_assert_nonnull (strstr (reader.text->str, "\"choices\":[],\"usage\":{\"prompt_tokens\":11"));
  g_assert_true (g_str_has_suffix (reader.text->str, "data: [DONE]\n\n"));
  g_assert_cmpint (kp_relay_get_usage (wait_finished (fixture))->completion_tokens, ==, 5);
  reader_clear (&reader);
}

static void
assert_stream_error_end (Reader     *reader,
                         const char *before)
{
  const char *text = reader->text->str;
  const char *error_event = strstr (text, "data: {\"error\":");

  if (before != NULL)
    g_assert_nonnull (strstr (text, before));
  g_assert_nonnull (error_event);
  /* Never a stream that looks complete. */
  g_assert_null (strstr (text, "[DONE]"));
  g_assert_true (g_str_has_suffix (text, "}\n\n"));
}

static void
test_stream_cut (Fixture       *fixture,
                 gconstpointer  data)
{
  g_autoptr(SoupMessage) msg = NULL;
  Reader reader;
  KpRelay *relay;

  reader_init (&reader);
  msg = start_stream (fixture, CHAT ("mock/cut", ",\"stream\":true"), &reader);
  g_assert_true (kp_test_spin_until (reader_done, &reader, 10000));

  assert_stream_error_end (&reader, "tok2");
  g_assert_nonnull (strstr (reader.text->str, "upstream_interrupted"));

  relay = wait_finished (fixture);
  g_assert_cmpint (kp_relay_get_outcome (relay), ==, KP_OUTCOME_INTERRUPTED);
  reader_clear (&reader);
}

static gboolean
mock_cancelled (gpointer data)
{
  return kp_mock_upstream_get_stats (data)->cancelled > 0;
}

static gboolean
mock_has_request (gpointer data)
{
  return kp_mock_upstream_get_stats (data)->requests > 0;
}

/* The stalling mock's two chunks have reached the client. */
static gboolean
reader_has_two_chunks (gpointer data)
{
  Reader *reader = data;

  return strstr (reader->text->str, "tok1") != NULL || reader_done (reader);
}

static gboolean
no_relay_active (gpointer data)
{
  return kp_gateway_get_n_active (data) == 0;
}

static void
test_stream_idle_timeout (Fixture       *fixture,
                          gconstpointer  data)
{
  g_autoptr(SoupMessage) msg = NULL;
  KpMockStats *stats = kp_mock_upstream_get_stats (fixture->mock);
  Reader reader;
  KpRelay *relay;

  reader_init (&reader);
  msg = start_stream (fixture, CHAT ("mock/stall", ",\"stream\":true"), &reader);
  g_assert_true (kp_test_spin_until (reader_done, &reader, 10000));

  assert_stream_error_end (&reader, "tok1");
  relay = wait_finished (fixture);
  g_assert_cmpint (kp_relay_get_outcome (relay), ==, KP_OUTCOME_INTERRUPTED);
  g_assert_nonnull (strstr (kp_relay_get_error_message (relay), "no data arrived in time"));

  /* The silent upstream was hung up on, once. */
  g_assert_true (kp_test_spin_until (mock_cancelled, fixture->mock, 3000));
  g_assert_cmpuint (stats->cancelled, ==, 1);
  reader_clear (&reader);
}

static void
test_disconnect_mid_stream (Fixture       *fixture,
                            gconstpointer  data)
{
  g_autoptr(SoupMessage) msg = NULL;
  Reader reader;
  KpRelay *relay;
  gint64 closed;

  /* No idle timeout: only the client's hang-up may end this. */
  kp_gateway_set_timeouts (fixture->gateway, 2000, 5000, 0);

  reader_init (&reader);
  reader.close_after = 1;
  msg = start_stream (fixture, CHAT ("mock/stall", ",\"stream\":true"), &reader);
  g_assert_true (kp_test_spin_until (reader_done, &reader, 10000));
  g_assert_nonnull (strstr (reader.text->str, "tok0"));
  closed = g_get_monotonic_time ();

  g_assert_true (kp_test_spin_until (mock_cancelled, fixture->mock, 3000));
  g_test_message ("upstream cancelled %.1f ms after the client hung up",
                  (g_get_monotonic_time () - closed) / 1000.0);

  relay = wait_finished (fixture);
  g_assert_cmpint (kp_relay_get_outcome (relay), ==, KP_OUTCOME_CANCELLED);
  reader_clear (&reader);
}

static void
test_disconnect_before_first_byte (Fixture       *fixture,
                                   gconstpointer  data)
{
  g_autoptr(SoupMessage) msg = NULL;
  Reader reader;
  KpRelay *relay;

  kp_gateway_set_timeouts (fixture->gateway, 2000, 0, 0);

  reader_init (&reader);
  msg = start_stream (fixture, CHAT ("mock/hang", ",\"stream\":true"), &reader);
  g_assert_true (kp_test_spin_until (mock_has_request, fixture->mock, 5000));
  g_assert_cmpuint (kp_mock_upstream_get_stats (fixture->mock)->requests, ==, 1);
  g_cancellable_cancel (reader.cancellable);

  /* No timeout is set, so only noticing the hang-up can cancel upstream. */
  g_assert_true (kp_test_spin_until (mock_cancelled, fixture->mock, 3000));
  relay = wait_finished (fixture);
  g_assert_cmpint (kp_relay_get_outcome (relay), ==, KP_OUTCOME_CANCELLED);
  reader_clear (&reader);
}

static void
count_notify (GObject    *object,
              GParamSpec *pspec,
              guint      *count)
{
  (*count)++;
}

static void
test_stop_ends_streams (Fixture       *fixture,
                        gconstpointer  data)
{
  g_autoptr(SoupMessage) msg = NULL;
  Reader reader;
  KpRelay *relay;
  guint notified = 0;
  gboolean serving = FALSE;

  kp_gateway_set_timeouts (fixture->gateway, 2000, 5000, 0);

  reader_init (&reader);
  msg = start_stream (fixture, CHAT ("mock/stall", ",\"stream\":true"), &reader);
  g_assert_true (kp_test_spin_until (reader_has_two_chunks, &reader, 5000));
  g_assert_false (reader_done (&reader));
  g_assert_cmpuint (reader.text->len, >, 0);

  /* The window and the tray learn of it by KpGateway:serving. */
  g_object_get (fixture->gateway, "serving", &serving, NULL);
  g_assert_true (serving);
  g_signal_connect (fixture->gateway, "notify::serving", G_CALLBACK (count_notify), &notified);
  kp_gateway_stop (fixture->gateway);
  kp_gateway_stop (fixture->gateway);
  g_assert_cmpuint (notified, ==, 1);
  g_assert_false (kp_gateway_is_serving (fixture->gateway));
  g_signal_handlers_disconnect_by_func (fixture->gateway, count_notify, &notified);
  g_assert_true (kp_test_spin_until (reader_done, &reader, 5000));
  assert_stream_error_end (&reader, "tok1");
  g_assert_nonnull (strstr (reader.text->str, "shutting down"));

  relay = wait_finished (fixture);
  g_assert_cmpint (kp_relay_get_outcome (relay), ==, KP_OUTCOME_INTERRUPTED);
  g_assert_cmpuint (kp_gateway_get_n_active (fixture->gateway), ==, 0);
  reader_clear (&reader);
}

/* Errors --------------------------------------------------------------- */

static void
test_errors_auth (Fixture       *fixture,
                  gconstpointer  data)
{
  g_autoptr(JsonParser) parser = json_parser_new ();

  {
    g_auto(KpTestResponse) response = { 0 };
    g_autoptr(SoupMessage) msg = new_message (fixture, "GET", "/v1/models", NULL);

    soup_message_headers_remove (soup_message_get_request_headers (msg), "Authorization");
    send_message (fixture, msg, &response);
    g_assert_cmpstr (assert_error (parser, &response, 401), ==, "missing_api_key");
  }
  {
    g_auto(KpTestResponse) response = { 0 };
    g_autoptr(SoupMessage) msg = new_message (fixture, "GET", "/v1/models", NULL);

    soup_message_headers_replace (soup_message_get_request_headers (msg),
                                  "Authorization", "Bearer kp-wrong");
    send_message (fixture, msg, &response);
    g_assert_cmpstr (assert_error (parser, &response, 401), ==, "invalid_api_key");
    /* The error never echoes a secret. */
    g_assert_null (strstr (body_text (&response), TOKEN));
    g_assert_null (strstr (body_text (&response), "kp-wrong"));
  }
  {
    g_auto(KpTestResponse) response = { 0 };
    g_autoptr(SoupMessage) msg = new_message (fixture, "GET", "/v1/models", NULL);

    /* Anthropic clients send x-api-key. */
    soup_message_headers_remove (soup_message_get_request_headers (msg), "Authorization");
    soup_message_headers_replace (soup_message_get_request_headers (msg), "x-api-key", TOKEN);
    send_message (fixture, msg, &response);
    g_assert_cmpuint (response.status, ==, 200);
  }
  g_assert_cmpuint (kp_mock_upstream_get_stats (fixture->mock)->requests, ==, 0);
}

typedef struct
{
  guint  port;
  char  *request;
  char  *response;
  gboolean keep_alive;   /* read one response by its Content-Length, then hang up */
  gboolean done;
} RawRequest;

static gpointer
raw_thread (gpointer data)
{
  RawRequest *raw = data;
  g_autoptr(GSocketClient) client = g_socket_client_new ();
  g_autoptr(GSocketConnection) connection = NULL;
  g_autoptr(GString) response = g_string_new (NULL);
  GInputStream *input;
  char buffer[4096];
  gssize n;

  connection = g_socket_client_connect_to_host (client, "127.0.0.1", raw->port, NULL, NULL);
  g_assert_nonnull (connection);
  g_assert_true (g_output_stream_write_all (g_io_stream_get_output_stream (G_IO_STREAM (connection)),
                                            raw->request, strlen (raw->request), NULL, NULL, NULL));
  input = g_io_stream_get_input_stream (G_IO_STREAM (connection));
  while ((n = g_input_stream_read (input, buffer, sizeof buffer, NULL, NULL)) > 0)
    {
      const char *end;
      const char *length;

      g_string_append_len (response, buffer, n);
      if (!raw->keep_alive)
        continue;

      /* The whole body named by Content-Length is in: hang up. */
      end = strstr (response->str, "\r\n\r\n");
      length = strstr (response->str, "Content-Length: ");
      if (end != NULL && length != NULL &&
          response->len >= (gsize)(end + 4 - response->str) + g_ascii_strtoull (length + 16, NULL, 10))
        break;
    }
  g_io_stream_close (G_IO_STREAM (connection), NULL, NULL);

  raw->response = g_string_free (g_steal_pointer (&response), FALSE);
  g_atomic_int_set (&raw->done, TRUE);
  return NULL;
}

static gboolean
raw_done (gpointer data)
{
  return g_atomic_int_get (&((RawRequest *)data)->done);
}

/* Sends bytes exactly as given (own Host and Origin headers) from a thread,
 * while this thread runs Keypool's loop.
 */
static char *raw_http (Fixture    *fixture,
                       const char *format,
                       ...) G_GNUC_PRINTF (2, 3);

static char *
raw_http (Fixture    *fixture,
          const char *format,
          ...)
{
  RawRequest raw = { .port = kp_gateway_get_port (fixture->gateway) };
  GThread *thread;
  va_list args;

  va_start (args, format);
  raw.request = g_strdup_vprintf (format, args);
  va_end (args);

  thread = g_thread_new ("raw-http", raw_thread, &raw);
  g_assert_true (kp_test_spin_until (raw_done, &raw, 10000));
  g_thread_join (thread);
  g_free (raw.request);
  return raw.response;
}

static char *
raw_http_keepalive (Fixture    *fixture,
                    const char *request)
{
  RawRequest raw = { .port = kp_gateway_get_port (fixture->gateway), .request = (char *)request,
                     .keep_alive = TRUE };
  GThread *thread = g_thread_new ("raw-http", raw_thread, &raw);

  g_assert_true (kp_test_spin_until (raw_done, &raw, 10000));
  g_thread_join (thread);
  return raw.response;
}

static void
assert_raw_status (const char *response,
                   guint       status,
                   const char *code)
{
  g_autofree char *status_line = g_strdup_printf ("HTTP/1.1 %u ", status);

  if (!g_str_has_prefix (response, status_line))
    g_error ("expected %u, got: %.200s", status, response);
  if (code != NULL)
    {
      g_autofree char *needle = g_strdup_printf ("\"code\":\"%s\"", code);

      g_assert_nonnull (strstr (response, needle));
    }
}

/* A slow reader on a kept-alive connection ------------------------------ */

/* Enough to fill every buffer between Keypool and a client that does not
 * read: 6.4 MB, past the 4 MB a loopback socket's send buffer may grow to.
 */
#define SLOW_CHUNKS  100
#define SLOW_PADDING (64 * 1024)

typedef struct
{
  guint16   port;
  gboolean  hang_up;     /* close instead of reading */
  gint      may_read;    /* set once the provider has sent every chunk */
  GString  *body;        /* the stream's body, its chunks decoded */
  char     *second;      /* the answer to a second request on the connection */
  char     *head;        /* the start of what was read */
  gboolean  framed;      /* every chunk well formed, nothing after the last */
  const char *failed;    /* where reading went wrong */
  gint      done;
} SlowReader;

/* Reads exactly @want bytes into @into, from what is already in @have first. */
static gboolean
read_exact (int      fd,
            GString *have,
            gsize    want)
{
  char buffer[4096];

  while (have->len < want)
    {
      gssize n = recv (fd, buffer, sizeof buffer, 0);

      if (n <= 0)
        return FALSE;
      g_string_append_len (have, buffer, n);
    }
  return TRUE;
}

/* Reads until @have holds @needle; returns its offset, or -1. */
static gssize
read_until (int         fd,
            GString    *have,
            const char *needle)
{
  char buffer[4096];

  for (;;)
    {
      const char *at = strstr (have->str, needle);
      gssize n;

      if (at != NULL)
        return at - have->str;
      n = recv (fd, buffer, sizeof buffer, 0);
      if (n <= 0)
        return -1;
      g_string_append_len (have, buffer, n);
    }
}

static gpointer
slow_reader_thread (gpointer data)
{
  SlowReader *slow = data;
  struct sockaddr_in address = { .sin_family = AF_INET, .sin_port = g_htons (slow->port),
                                 .sin_addr.s_addr = g_htonl (INADDR_LOOPBACK) };
  struct timeval timeout = { 20, 0 };
  const char *body = CHAT ("mock/chat", ",\"stream\":true");
  g_autofree char *request = g_strdup_printf ("POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                              "Authorization: Bearer " TOKEN "\r\n"
                                              "Content-Type: application/json\r\n"
                                              "Content-Length: %zu\r\n\r\n%s", strlen (body), body);
  const char *health = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  g_autoptr(GString) have = g_string_new (NULL);
  int small = 2048;
  int fd = socket (AF_INET, SOCK_STREAM, 0);
  gssize end;

  /* A small window: Keypool's writes to this client soon stop fitting. */
  setsockopt (fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  if (connect (fd, (struct sockaddr *)&address, sizeof address) != 0 ||
      send (fd, request, strlen (request), MSG_NOSIGNAL) != (gssize)strlen (request))
    goto out;

  /* Read nothing until the provider is done, then everything. */
  while (!g_atomic_int_get (&slow->may_read))
    g_usleep (1000);
  if (slow->hang_up)
    goto out;

  slow->failed = "the head";
  if ((end = read_until (fd, have, "\r\n\r\n")) < 0 ||
      strstr (have->str, "Transfer-Encoding: chunked") == NULL)
    goto out;
  g_string_erase (have, 0, end + 4);

  for (;;)
    {
      gssize line_end = read_until (fd, have, "\r\n");
      char *after = NULL;
      guint64 size;

      slow->failed = "a chunk's size line";
      if (line_end <= 0)
        goto out;
      size = g_ascii_strtoull (have->str, &after, 16);
      if (after != have->str + line_end)
        goto out;
      g_string_erase (have, 0, line_end + 2);
      slow->failed = "a chunk's bytes";
      if (!read_exact (fd, have, size + 2) || memcmp (have->str + size, "\r\n", 2) != 0)
        goto out;
      g_string_append_len (slow->body, have->str, size);
      g_string_erase (have, 0, size + 2);
      if (size == 0)
        break;
    }
  /* Nothing may follow the last chunk on a kept-alive connection. */
  slow->failed = have->len == 0 ? NULL : "bytes after the last chunk";
  slow->framed = have->len == 0;

  /* The connection serves a next request. */
  if (send (fd, health, strlen (health), MSG_NOSIGNAL) == (gssize)strlen (health) &&
      read_until (fd, have, "\r\n\r\n") >= 0)
    slow->second = g_strdup (have->str);

out:
  if (slow->head == NULL)
    slow->head = g_strndup (have->str, MIN (have->len, 300));
  close (fd);
  g_atomic_int_set (&slow->done, TRUE);
  return NULL;
}

static gboolean
slow_provider_done (gpointer data)
{
  return kp_mock_upstream_get_stats (data)->emit_times->len >= SLOW_CHUNKS;
}

static gboolean
slow_done (gpointer data)
{
  return g_atomic_int_get (&((SlowReader *)data)->done);
}

/* A provider streams 6.4 MB at once to @slow's client, which reads nothing
 * until the provider is done: by then the relay holds what the client has
 * not taken.
 */
static void
run_slow_reader (Fixture    *fixture,
                 SlowReader *slow)
{
  GThread *thread;

  /* The mock makes its 6.4 MB in one go, in this process: slowly under
   * valgrind. This test is about the client's side, not deadlines.
   */
  kp_gateway_set_timeouts (fixture->gateway, 60000, 60000, 60000);
  kp_mock_upstream_set_chunks (fixture->mock, SLOW_CHUNKS, 0);
  kp_mock_upstream_set_chunk_padding (fixture->mock, SLOW_PADDING);
  thread = g_thread_new ("slow-reader", slow_reader_thread, slow);
  g_assert_true (kp_test_spin_until (slow_provider_done, fixture->mock, 20000));
  g_atomic_int_set (&slow->may_read, TRUE);
  g_assert_true (kp_test_spin_until (slow_done, slow, 30000));
  g_thread_join (thread);
}

static void
test_stream_slow_reader (Fixture       *fixture,
                         gconstpointer  data)
{
  SlowReader slow = { .port = kp_gateway_get_port (fixture->gateway), .body = g_string_new (NULL) };
  KpRelay *relay;
  const char *at;

  run_slow_reader (fixture, &slow);

  /* Every chunk, once, in order, framed, and the stream ended properly. */
  if (!slow.framed)
    g_error ("the stream's body broke off at %s, after %zu bytes (%s)", slow.failed, slow.body->len,
             slow.head);
  at = slow.body->str;
  for (guint i = 0; i < SLOW_CHUNKS; i += 7)
    {
      g_autofree char *word = g_strdup_printf ("\"tok%u x", i);
      const char *next = strstr (at, word);

      g_assert_nonnull (next);
      at = next;
    }
  g_assert_cmpuint (count (slow.body->str, "\"content\":\"tok"), ==, SLOW_CHUNKS);
  g_assert_true (g_str_has_suffix (slow.body->str, "data: [DONE]\n\n"));

  g_assert_nonnull (slow.second);
  g_assert_true (g_str_has_prefix (slow.second, "HTTP/1.1 200 "));

  relay = wait_finished (fixture);
  g_assert_cmpint (kp_relay_get_outcome (relay), ==, KP_OUTCOME_OK);

  g_string_free (slow.body, TRUE);
  g_free (slow.second);
  g_free (slow.head);
}

static void
test_errors_host (Fixture       *fixture,
                  gconstpointer  data)
{
  const char *good[] = { "127.0.0.1", "localhost:7878", "LOCALHOST", "[::1]:7878", "app.localhost",
                         "127.0.0.1:1" };
  const char *bad[] = { "evil.example", "127.0.0.1.evil.example", "localhost.evil.example",
                        "localhost:abc", "[::2]", "10.0.0.1", "localhost:" };

  for (guint i = 0; i < G_N_ELEMENTS (good); i++)
    {
      g_autofree char *response =
        raw_http (fixture, "GET /health HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", good[i]);

      assert_raw_status (response, 200, NULL);
    }
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autofree char *response =
        raw_http (fixture, "GET /v1/models HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer " TOKEN "\r\n"
                  "Connection: close\r\n\r\n", bad[i]);

      /* libsoup itself answers 400 to a Host it cannot parse. */
      if (g_str_has_prefix (response, "HTTP/1.1 400 "))
        g_test_message ("Host “%s”: refused by libsoup as malformed", bad[i]);
      else
        assert_raw_status (response, 403, "forbidden_host");
    }
}

static guint
count_fds (void)
{
  g_autoptr(GDir) dir = g_dir_open ("/proc/self/fd", 0, NULL);
  guint n = 0;

  while (dir != NULL && g_dir_read_name (dir) != NULL)
    n++;
  return n;
}

static guint fds_before;

/* Back to no more descriptors than before. */
static gboolean
fds_back (gpointer data)
{
  return count_fds () <= fds_before;
}

static void
test_idle_connections_closed (Fixture       *fixture,
                              gconstpointer  data)
{
  guint before;
  guint after;

  /* A warm-up, so that lazily opened files do not count. */
  g_free (raw_http (fixture, "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"));
  kp_test_spin_ms (100);
  before = count_fds ();

  /* Twenty clients that keep their connection alive, then hang up. */
  for (guint i = 0; i < 20; i++)
    {
      g_autofree char *response =
        raw_http_keepalive (fixture, "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");

      assert_raw_status (response, 200, NULL);
    }

  fds_before = before;
  g_assert_true (kp_test_spin_until (fds_back, NULL, 20000));
  after = count_fds ();
  g_test_message ("%u descriptors before, %u after 20 kept-alive clients hung up", before, after);
  g_assert_cmpuint (after, <=, before);
}

/* A client that hangs up while Keypool still holds its stream's last
 * megabytes: the relay lets go of the connection (no descriptor stays).
 */
static void
test_stream_slow_reader_hangs_up (Fixture       *fixture,
                                  gconstpointer  data)
{
  SlowReader slow = { .port = kp_gateway_get_port (fixture->gateway), .body = g_string_new (NULL),
                      .hang_up = TRUE };
  guint before;

  /* A warm-up through the provider: its kept-alive connection, in
   * Keypool's pool and in the mock, is there before and after.
   */
  {
    const char *body = CHAT ("mock/chat", "");
    g_autofree char *response =
      raw_http (fixture, "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                "Authorization: Bearer " TOKEN "\r\nContent-Type: application/json\r\n"
                "Content-Length: %zu\r\nConnection: close\r\n\r\n%s", strlen (body), body);

    assert_raw_status (response, 200, NULL);
  }
  wait_finished (fixture);
  g_ptr_array_set_size (fixture->finished, 0);
  kp_test_spin_ms (100);
  before = count_fds ();

  run_slow_reader (fixture, &slow);

  wait_finished (fixture);
  fds_before = before;
  g_assert_true (kp_test_spin_until (fds_back, NULL, 20000));
  g_string_free (slow.body, TRUE);
  g_free (slow.head);
}

static void
test_errors_origin (Fixture       *fixture,
                    gconstpointer  data)
{
  g_autofree char *evil =
    raw_http (fixture, "GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: https://evil.example\r\n"
              "Authorization: Bearer " TOKEN "\r\nConnection: close\r\n\r\n");
  g_autofree char *trusted =
    raw_http (fixture, "GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: https://trusted.example\r\n"
              "Authorization: Bearer " TOKEN "\r\nConnection: close\r\n\r\n");
  g_autofree char *preflight =
    raw_http (fixture, "OPTIONS /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
              "Origin: https://trusted.example\r\nAccess-Control-Request-Method: POST\r\n"
              "Connection: close\r\n\r\n");

  assert_raw_status (evil, 403, "forbidden_origin");
  assert_raw_status (trusted, 200, NULL);
  g_assert_nonnull (strstr (trusted, "Access-Control-Allow-Origin: https://trusted.example"));
  assert_raw_status (preflight, 204, NULL);
  g_assert_nonnull (strstr (preflight, "Access-Control-Allow-Headers:"));
}

static void
test_errors_request (Fixture       *fixture,
                     gconstpointer  data)
{
  const struct {
    const char *body;
    guint status;
    const char *code;
  } cases[] = {
    { "", 400, "invalid_json" },
    { "{\"model\":", 400, "invalid_json" },
    { "[1,2]", 400, "invalid_json" },
    { "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", 400, "missing_model" },
    { "{\"model\":42,\"messages\":[]}", 400, "missing_model" },
    { "{\"model\":\"mock/chat\"}", 400, "missing_messages" },
    { "{\"model\":\"mock/chat\",\"messages\":[]}", 400, "missing_messages" },
    { CHAT ("mock/chat", ",\"stream\":\"yes\""), 400, "invalid_stream" },
    { CHAT ("nobody/nothing", ""), 404, "model_not_found" },
    { CHAT ("nokey/model", ""), 503, "no_route" },
  };
  g_autoptr(JsonParser) parser = json_parser_new ();

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_auto(KpTestResponse) response = { 0 };

      request (fixture, "POST", "/v1/chat/completions", cases[i].body, &response);
      g_assert_cmpstr (assert_error (parser, &response, cases[i].status), ==, cases[i].code);
      if (cases[i].status == 404)
        g_assert_nonnull (strstr (body_text (&response), "/v1/models"));
      if (cases[i].status == 503)
        g_assert_nonnull (strstr (body_text (&response), "KEYPOOL_TEST_UNSET_KEY"));
    }

  /* Nothing malformed reached a provider, and each got its one row. */
  g_assert_cmpuint (kp_mock_upstream_get_stats (fixture->mock)->requests, ==, 0);
  g_assert_cmpuint (fixture->finished->len, ==, G_N_ELEMENTS (cases));
  g_assert_cmpint (kp_relay_get_outcome (g_ptr_array_index (fixture->finished, 0)), ==,
                   KP_OUTCOME_CLIENT_ERROR);
}

static void
test_errors_paths (Fixture       *fixture,
                   gconstpointer  data)
{
  g_autoptr(JsonParser) parser = json_parser_new ();

  {
    g_auto(KpTestResponse) response = { 0 };

    request (fixture, "GET", "/v1/chat/completions", NULL, &response);
    g_assert_cmpstr (assert_error (parser, &response, 405), ==, "method_not_allowed");
    g_assert_cmpstr (soup_message_headers_get_one (response.headers, "Allow"), ==, "POST");
  }
  {
    g_auto(KpTestResponse) response = { 0 };

    request (fixture, "POST", "/v1/models", "{}", &response);
    g_assert_cmpstr (assert_error (parser, &response, 405), ==, "method_not_allowed");
  }
  {
    g_auto(KpTestResponse) response = { 0 };

    request (fixture, "GET", "/v1/nothing-here", NULL, &response);
    g_assert_cmpstr (assert_error (parser, &response, 404), ==, "unknown_path");
  }
  {
    g_auto(KpTestResponse) response = { 0 };

    request (fixture, "POST", "/v1/chat/completions/extra", CHAT ("mock/chat", ""), &response);
    g_assert_cmpstr (assert_error (parser, &response, 404), ==, "unknown_path");
  }
}

static void
test_errors_body_limit (Fixture       *fixture,
                        gconstpointer  data)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GString) big = g_string_new ("{\"model\":\"mock/chat\",\"messages\":[{\"role\":\"user\",\"content\":\"");

  while (big->len < 100 * 1024)
    g_string_append (big, "0123456789abcdef");
  g_string_append (big, "\"}]}");

  {
    g_auto(KpTestResponse) response = { 0 };

    request (fixture, "POST", "/v1/chat/completions", big->str, &response);
    g_assert_cmpstr (assert_error (parser, &response, 413), ==, "request_too_large");
  }
  {
    /* Chunked, so the size is not known up front. */
    g_auto(KpTestResponse) response = { 0 };
    g_autoptr(SoupMessage) msg = new_message (fixture, "POST", "/v1/chat/completions", NULL);
    g_autoptr(GInputStream) stream = g_memory_input_stream_new_from_data (big->str, big->len, NULL);

    soup_message_set_request_body (msg, "application/json", stream, -1);
    send_message (fixture, msg, &response);
    g_assert_cmpstr (assert_error (parser, &response, 413), ==, "request_too_large");
  }
  g_assert_cmpuint (kp_mock_upstream_get_stats (fixture->mock)->requests, ==, 0);

  {
    /* Under the limit is fine. */
    g_auto(KpTestResponse) response = { 0 };

    request (fixture, "POST", "/v1/chat/completions", CHAT ("mock/chat", ""), &response);
    g_assert_cmpuint (response.status, ==, 200);
  }
}

/* Failures rest a key for a while; these tests want a fresh start each time. */
static void
reset_keys (Fixture *fixture)
{
  GPtrArray *credentials = kp_gateway_get_credentials (fixture->gateway);

  for (guint i = 0; i < credentials->len; i++)
    g_assert_true (kp_gateway_reset_key (fixture->gateway,
                                         kp_credential_get_id (g_ptr_array_index (credentials, i)),
                                         NULL));
}

static void
test_errors_upstream (Fixture       *fixture,
                      gconstpointer  data)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  KpRelay *relay;

  {
    g_auto(KpTestResponse) response = { 0 };

    request (fixture, "POST", "/v1/chat/completions", CHAT ("mock/rate", ""), &response);
    /* The only route: its status, code and message, and its Retry-After. */
    g_assert_cmpstr (assert_error (parser, &response, 429), ==, "rate_limit_exceeded");
    g_assert_nonnull (strstr (body_text (&response), "Mock: Rate limit reached for requests"));
    g_assert_nonnull (strstr (body_text (&response), "1 route tried"));
    g_assert_cmpstr (soup_message_headers_get_one (response.headers, "Retry-After"), ==, "7");
    relay = wait_finished (fixture);
    g_assert_cmpint (kp_relay_get_outcome (relay), ==, KP_OUTCOME_UPSTREAM_ERROR);
    g_assert_nonnull (strstr (kp_relay_get_error_message (relay), "Rate limit"));
  }
  {
    g_auto(KpTestResponse) response = { 0 };

    reset_keys (fixture);
    request (fixture, "POST", "/v1/chat/completions", CHAT ("mock/broken", ""), &response);
    g_assert_cmpstr (assert_error (parser, &response, 500), ==, "upstream_down");
    g_assert_nonnull (strstr (body_text (&response), "mock upstream exploded"));
  }
  {
    g_auto(KpTestResponse) response = { 0 };

    reset_keys (fixture);
    request (fixture, "POST", "/v1/chat/completions", CHAT ("mock/too-long", ",\"stream\":true"),
             &response);
    g_assert_cmpstr (assert_error (parser, &response, 400), ==, "context_length_exceeded");
  }
  {
    g_auto(KpTestResponse) response = { 0 };

    request (fixture, "POST", "/v1/chat/completions", CHAT ("dead/model", ""), &response);
    g_assert_cmpstr (assert_error (parser, &response, 502), ==, "upstream_unreachable");
    g_assert_nonnull (strstr (body_text (&response), "Dead Provider"));
    g_assert_cmpstr (soup_message_headers_get_one (response.headers, "x-keypool-provider"), ==, "dead");
  }
  {
    g_auto(KpTestResponse) response = { 0 };
    gint64 start = g_get_monotonic_time ();

    reset_keys (fixture);
    request (fixture, "POST", "/v1/chat/completions", CHAT ("mock/hang", ""), &response);
    g_assert_cmpstr (assert_error (parser, &response, 504), ==, "upstream_timeout");
    g_assert_nonnull (strstr (body_text (&response), "first byte"));
    g_test_message ("first-byte timeout after %.0f ms (set to 800 ms)",
                    (g_get_monotonic_time () - start) / 1000.0);
  }
  {
    g_auto(KpTestResponse) response = { 0 };

    /* An error event in a 200 stream before any content is the route's
     * failure; with no other route, the client gets it as an error.
     */
    reset_keys (fixture);
    request (fixture, "POST", "/v1/chat/completions", CHAT ("mock/instream", ",\"stream\":true"),
             &response);
    assert_error (parser, &response, 502);
    g_assert_nonnull (strstr (body_text (&response), "overloaded mid-stream"));
  }
}

static void
test_rotation (Fixture       *fixture,
               gconstpointer  data)
{
  KpMockStats *stats = kp_mock_upstream_get_stats (fixture->mock);
  guint a = 0, b = 0;

  /* Two keys of one provider at the same price take turns. */
  for (guint i = 0; i < 6; i++)
    {
      g_auto(KpTestResponse) response = { 0 };

      request (fixture, "POST", "/v1/chat/completions", CHAT ("twin/chat", ""), &response);
      g_assert_cmpuint (response.status, ==, 200);
      if (g_str_equal (stats->last_auth, "Bearer twin-key-aaaaaaaaaaaa"))
        a++;
      else if (g_str_equal (stats->last_auth, "Bearer twin-key-bbbbbbbbbbbb"))
        b++;
    }
  g_assert_cmpuint (a, ==, 3);
  g_assert_cmpuint (b, ==, 3);
}

/* Which twin key served the last request: 'a' or 'b'. */
static char
twin_served (KpMockStats *stats)
{
  if (g_str_equal (stats->last_auth, "Bearer twin-key-aaaaaaaaaaaa"))
    return 'a';
  g_assert_cmpstr (stats->last_auth, ==, "Bearer twin-key-bbbbbbbbbbbb");
  return 'b';
}

/* Picking a tool's default model is a question: the keys do not take a
 * turn for it, so the next request gets the other key all the same.
 */
static void
test_pick_is_pure (Fixture       *fixture,
                   gconstpointer  data)
{
  static const char * const models[] = { "twin/chat", NULL };
  KpConnectTool tool = { .id = "test-tool", .name = "Test tool", .models = models };
  KpMockStats *stats = kp_mock_upstream_get_stats (fixture->mock);
  char first;

  {
    g_auto(KpTestResponse) response = { 0 };

    request (fixture, "POST", "/v1/chat/completions", CHAT ("twin/chat", ""), &response);
    g_assert_cmpuint (response.status, ==, 200);
    first = twin_served (stats);
  }
  /* An odd number of picks: were each a turn, the same key would come next. */
  for (guint i = 0; i < 3; i++)
    {
      gboolean served = FALSE;
      g_autofree char *pick = kp_connector_pick_model (fixture->gateway, &tool, &served);

      g_assert_cmpstr (pick, ==, "twin/chat");
      g_assert_true (served);
    }
  {
    g_auto(KpTestResponse) response = { 0 };

    request (fixture, "POST", "/v1/chat/completions", CHAT ("twin/chat", ""), &response);
    g_assert_cmpuint (response.status, ==, 200);
    g_assert_cmpint (twin_served (stats), !=, first);
  }
}

static KpRequestRow *
find_row (GPtrArray  *rows,
          const char *model,
          const char *outcome)
{
  for (guint i = 0; i < rows->len; i++)
    {
      KpRequestRow *row = g_ptr_array_index (rows, i);

      if (g_strcmp0 (row->model, model) == 0 && g_strcmp0 (row->outcome, outcome) == 0)
        return row;
    }
  g_error ("no ledger row for %s with outcome %s", model, outcome);
  return NULL;
}

static void
test_ledger_rows (Fixture       *fixture,
                  gconstpointer  data)
{
  KpLedger *ledger = kp_gateway_get_ledger (fixture->gateway);
  g_autoptr(GPtrArray) rows = NULL;
  g_autoptr(GPtrArray) spend = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(SoupMessage) msg = NULL;
  KpRequestRow *row;
  KpSpendRow *mock = NULL;
  Reader reader;
  const char *bodies[] = {
    CHAT ("mock/chat", ""), CHAT ("mock/cost", ",\"stream\":true"), CHAT ("mock/unpriced", ""),
    CHAT ("mock/rate", ""), "{\"model\":", CHAT ("nobody/nothing", ""),
  };

  for (guint i = 0; i < G_N_ELEMENTS (bodies); i++)
    {
      g_auto(KpTestResponse) response = { 0 };

      request (fixture, "POST", "/v1/chat/completions", bodies[i], &response);
    }

  /* And a client that hangs up mid-stream (the 429 rested the key). */
  reset_keys (fixture);
  kp_gateway_set_timeouts (fixture->gateway, 2000, 5000, 0);
  reader_init (&reader);
  reader.close_after = 1;
  msg = start_stream (fixture, CHAT ("mock/stall", ",\"stream\":true"), &reader);
  g_assert_true (kp_test_spin_until (reader_done, &reader, 10000));
  g_assert_true (kp_test_spin_until (mock_cancelled, fixture->mock, 3000));
  reader_clear (&reader);
  /* A relay is active until its row is in the ledger. */
  g_assert_true (kp_test_spin_until (no_relay_active, fixture->gateway, 5000));

  /* One row per request, whatever its outcome. */
  rows = kp_ledger_recent_requests (ledger, 100, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (rows->len, ==, G_N_ELEMENTS (bodies) + 1);

  row = find_row (rows, "mock/chat", "ok");
  g_assert_cmpstr (row->cost_source, ==, "computed");
  g_assert_cmpint (row->cost_nano, ==, 19500);
  g_assert_cmpstr (row->provider, ==, "mock");
  g_assert_cmpstr (row->upstream_model, ==, "mock-chat");
  g_assert_cmpint (row->credential_id, >, 0);
  g_assert_cmpint (row->prompt_tokens, ==, 11);
  g_assert_cmpint (row->cached_tokens, ==, 3);
  g_assert_cmpint (row->reasoning_tokens, ==, 1);
  g_assert_false (row->streamed);
  g_assert_cmpuint (row->attempts, ==, 1);

  row = find_row (rows, "mock/cost", "ok");
  g_assert_cmpstr (row->cost_source, ==, "reported");
  g_assert_cmpint (row->cost_nano, ==, 123000);
  g_assert_true (row->streamed);
  g_assert_cmpint (row->ttfb_ms, >=, 0);

  row = find_row (rows, "mock/unpriced", "ok");
  g_assert_cmpstr (row->cost_source, ==, "unknown");

  row = find_row (rows, "mock/rate", "upstream_error");
  g_assert_cmpuint (row->status, ==, 429);
  g_assert_nonnull (strstr (row->error, "Rate limit"));

  row = find_row (rows, NULL, "client_error");
  g_assert_cmpuint (row->status, ==, 400);
  g_assert_cmpuint (row->attempts, ==, 0);

  row = find_row (rows, "nobody/nothing", "client_error");
  g_assert_cmpuint (row->status, ==, 404);

  row = find_row (rows, "mock/stall", "cancelled");
  g_assert_true (row->streamed);

  spend = kp_ledger_spend (ledger, 0, KP_SPEND_BY_PROVIDER, &error);
  g_assert_no_error (error);
  for (guint i = 0; i < spend->len; i++)
    if (g_str_equal (((KpSpendRow *)g_ptr_array_index (spend, i))->key, "mock"))
      mock = g_ptr_array_index (spend, i);
  g_assert_nonnull (mock);
  g_assert_cmpint (mock->requests, ==, 5);
  g_assert_cmpint (mock->cost_nano, ==, 19500 + 123000);
  g_assert_cmpint (mock->unknown_cost, ==, 1);

  /* No secret in what the ledger keeps. */
  for (guint i = 0; i < rows->len; i++)
    {
      row = g_ptr_array_index (rows, i);
      g_assert_true (row->error == NULL || strstr (row->error, MOCK_KEY) == NULL);
    }
}

int
main (int   argc,
      char *argv[])
{
  g_setenv ("MOCK_API_KEY", MOCK_KEY, TRUE);
  g_setenv ("TWIN_KEY_A", "twin-key-aaaaaaaaaaaa", TRUE);
  g_setenv ("TWIN_KEY_B", "twin-key-bbbbbbbbbbbb", TRUE);
  g_unsetenv ("KEYPOOL_TEST_UNSET_KEY");
  g_test_init (&argc, &argv, NULL);

#define ADD(path, func) \
  g_test_add ("/keypool/gateway/" path, Fixture, NULL, fixture_setup, func, fixture_teardown)

  ADD ("health", test_health);
  ADD ("models", test_models);
  ADD ("chat/plain", test_chat_plain);
  ADD ("chat/cost-sources", test_chat_cost_sources);
  ADD ("chat/local-session", test_chat_local_session);
  ADD ("stream/relay-as-it-comes", test_stream_relay);
  ADD ("stream/usage-requested", test_stream_usage_requested);
  ADD ("stream/cut", test_stream_cut);
  ADD ("stream/slow-reader-keeps-connection", test_stream_slow_reader);
  ADD ("stream/slow-reader-hangs-up", test_stream_slow_reader_hangs_up);
  ADD ("stream/idle-timeout", test_stream_idle_timeout);
  ADD ("disconnect/mid-stream", test_disconnect_mid_stream);
  ADD ("disconnect/before-first-byte", test_disconnect_before_first_byte);
  ADD ("stop/ends-streams", test_stop_ends_streams);
  ADD ("errors/auth", test_errors_auth);
  ADD ("errors/host", test_errors_host);
  ADD ("errors/origin", test_errors_origin);
  ADD ("idle-connections-closed", test_idle_connections_closed);
  ADD ("errors/request", test_errors_request);
  ADD ("errors/paths", test_errors_paths);
  ADD ("errors/body-limit", test_errors_body_limit);
  ADD ("errors/upstream", test_errors_upstream);
  ADD ("routing/rotates-equal-keys", test_rotation);
  ADD ("routing/connect-pick-is-pure", test_pick_is_pure);
  ADD ("ledger/one-row-per-request", test_ledger_rows);

#undef ADD

  return g_test_run ();
}
