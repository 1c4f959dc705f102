/* test-scrub.c: a provider that echoes the key never gets it to the client
 *
 * The provider here is a real SoupServer that puts the key it was sent into
 * its answers: a 400 body, an error event before the answer, and one in the
 * middle of it, in OpenAI's wire and in Anthropic's. Clients of both wires,
 * passed through and translated, must never see the key.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include "config.h"

#include <string.h>

#include "kp-gateway.h"
#include "kp-test-util.h"

#define TOKEN "kp-scrub-token-0123456789abcdef"
#define KEY   "sk-scrub-SECRET-key-4242-abcdef"

typedef struct
{
  SoupServer  *server;
  char        *url;
  KpTestPlace  place;
  KpGateway   *gateway;
  SoupSession *client;
  char        *base;
} Fixture;

/* The key the provider was sent, as it arrived. */
static char *
sent_key (SoupServerMessage *msg)
{
  SoupMessageHeaders *headers = soup_server_message_get_request_headers (msg);
  const char *bearer = soup_message_headers_get_one (headers, "Authorization");
  const char *x_api_key = soup_message_headers_get_one (headers, "x-api-key");

  if (bearer != NULL && g_str_has_prefix (bearer, "Bearer "))
    return g_strdup (bearer + 7);
  return g_strdup (x_api_key != NULL ? x_api_key : "");
}

static void
provider_handler (SoupServer        *server,
                  SoupServerMessage *msg,
                  const char        *path,
                  GHashTable        *query,
                  gpointer           user_data)
{
  SoupMessageBody *request = soup_server_message_get_request_body (msg);
  g_autofree char *key = sent_key (msg);
  g_autofree char *body = g_strndup (request->data, request->length);
  gboolean anthropic = g_str_has_suffix (path, "/messages");
  g_autofree char *text = NULL;

  if (strstr (body, "echo-400") != NULL)
    {
      text = anthropic
        ? g_strdup_printf ("{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\","
                           "\"message\":\"Bad request from key %s\"}}", key)
        : g_strdup_printf ("{\"error\":{\"message\":\"Bad request from key %s\","
                           "\"type\":\"invalid_request_error\",\"code\":null}}", key);
      soup_server_message_set_status (msg, 400, NULL);
      soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_TAKE,
                                        g_steal_pointer (&text), strlen (text));
      return;
    }

  /* A stream: an error event at once, or after some of the answer. */
  if (anthropic)
    text = g_strdup_printf (
      "%s"
      "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\","
      "\"message\":\"Internal trouble with key %s\"}}\n\n",
      strstr (body, "echo-late") != NULL
        ? "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\","
          "\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"m\","
          "\"usage\":{\"input_tokens\":5,\"output_tokens\":0}}}\n\n"
          "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,"
          "\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
          "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
          "\"delta\":{\"type\":\"text_delta\",\"text\":\"Hello\"}}\n\n"
        : "",
      key);
  else
    text = g_strdup_printf (
      "%sdata: {\"error\":{\"message\":\"Internal trouble with key %s\",\"code\":500}}\n\n",
      strstr (body, "echo-late") != NULL
        ? "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hello\"}}]}\n\n"
        : "",
      key);
  soup_server_message_set_status (msg, 200, NULL);
  soup_server_message_set_response (msg, "text/event-stream", SOUP_MEMORY_TAKE,
                                    g_steal_pointer (&text), strlen (text));
}

static void
write_provider (Fixture    *fixture,
                const char *id,
                const char *dialect)
{
  g_autofree char *path = g_strdup_printf ("%s/%s.json", fixture->place.providers, id);
  g_autofree char *json = g_strdup_printf (
    "{\"id\":\"%s\",\"name\":\"%s\",\"dialect\":\"%s\",\"base_url\":\"%sv1\","
    "%s\"env\":[\"KP_SCRUB_KEY\"],\"models\":["
    "{\"id\":\"%s/echo-400\",\"upstream_id\":\"echo-400\",\"input\":1,\"output\":1},"
    "{\"id\":\"%s/echo-early\",\"upstream_id\":\"echo-early\",\"input\":1,\"output\":1},"
    "{\"id\":\"%s/echo-late\",\"upstream_id\":\"echo-late\",\"input\":1,\"output\":1}]}",
    id, id, dialect, fixture->url,
    g_str_equal (dialect, "anthropic") ? "\"auth\":{\"type\":\"header\",\"name\":\"x-api-key\"}," : "",
    id, id, id);

  g_assert_true (g_file_set_contents (path, json, -1, NULL));
}

static void
fixture_setup (Fixture       *fixture,
               gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  GSList *uris;

  fixture->server = soup_server_new (NULL, NULL);
  soup_server_add_handler (fixture->server, NULL, provider_handler, fixture, NULL);
  soup_server_listen_local (fixture->server, 0, SOUP_SERVER_LISTEN_IPV4_ONLY, &error);
  g_assert_no_error (error);
  uris = soup_server_get_uris (fixture->server);
  fixture->url = g_uri_to_string (uris->data);
  g_slist_free_full (uris, (GDestroyNotify)g_uri_unref);

  kp_test_place_init (&fixture->place, "scrub");
  kp_test_place_setenv (&fixture->place, "KP_SCRUB_KEY", KEY);
  write_provider (fixture, "oai", "openai");
  write_provider (fixture, "ant", "anthropic");

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
  soup_server_disconnect (fixture->server);
  g_clear_object (&fixture->server);
  g_free (fixture->url);
  kp_test_place_clear (&fixture->place);
  g_free (fixture->base);
}

/* Every request of one client wire, to every model of both providers. */
static void
check_client (Fixture    *fixture,
              const char *path,
              const char *extra)
{
  static const char *providers[] = { "oai", "ant" };
  /* The early error rests the key, so it comes last. */
  static const char *models[] = { "echo-400", "echo-late", "echo-early" };

  for (guint p = 0; p < G_N_ELEMENTS (providers); p++)
    for (guint m = 0; m < G_N_ELEMENTS (models); m++)
      {
        g_auto(KpTestResponse) response = { 0 };
        g_autofree char *url = g_strconcat (fixture->base, path, NULL);
        g_autoptr(SoupMessage) msg = soup_message_new (SOUP_METHOD_POST, url);
        g_autofree char *body = g_strdup_printf (
          "{\"model\":\"%s/%s\",\"stream\":%s,%s\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
          providers[p], models[m], m == 0 ? "false" : "true", extra);
        g_autoptr(GBytes) bytes = g_bytes_new (body, strlen (body));

        soup_message_headers_replace (soup_message_get_request_headers (msg), "Authorization",
                                      "Bearer " TOKEN);
        soup_message_set_request_body_from_bytes (msg, "application/json", bytes);
        kp_test_send (fixture->client, msg, 30000, &response);

        g_test_message ("%s %s/%s: %u %s", path, providers[p], models[m], response.status,
                        response.body);
        /* The provider did answer with the key in it... */
        g_assert_cmpuint (response.length, >, 0);
        /* ...and the client never sees it, nor its distinctive middle. */
        g_assert_null (strstr (response.body, KEY));
        g_assert_null (strstr (response.body, "SECRET-key-4242"));
        /* What the provider said still reaches the client, with the key hidden. */
        g_assert_true (strstr (response.body, "Bad request from key") != NULL ||
                       strstr (response.body, "Internal trouble with key") != NULL);
        if (m == 1)
          {
            /* Mid-answer: the answer so far, then the error; never an end. */
            g_assert_cmpuint (response.status, ==, 200);
            g_assert_nonnull (strstr (response.body, "Hello"));
            g_assert_null (strstr (response.body, "[DONE]"));
            g_assert_null (strstr (response.body, "message_stop"));
          }
        else
          g_assert_cmpuint (response.status, >=, 400);
      }
}

static void
test_openai_client (Fixture       *fixture,
                    gconstpointer  data)
{
  check_client (fixture, "/v1/chat/completions", "");
}

static void
test_anthropic_client (Fixture       *fixture,
                       gconstpointer  data)
{
  check_client (fixture, "/v1/messages", "\"max_tokens\":100,");
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add ("/keypool/scrub/openai-client", Fixture, NULL,
              fixture_setup, test_openai_client, fixture_teardown);
  g_test_add ("/keypool/scrub/anthropic-client", Fixture, NULL,
              fixture_setup, test_anthropic_client, fixture_teardown);

  return g_test_run ();
}
