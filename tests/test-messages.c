/* test-messages.c: Anthropic both ways, through the real server and relay
 *
 * One mock provider answers both APIs: Anthropic's Messages at …/messages
 * and OpenAI's chat at …/chat/completions. Provider "anthro" speaks
 * Anthropic to it, provider "oai" OpenAI. Clients talk to Keypool in either
 * dialect; the passthrough must leave bytes alone, the translation must keep
 * every text and tool fragment, and failures must be classed as Anthropic
 * means them.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include "config.h"

#include <string.h>

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include "kp-gateway.h"
#include "kp-mock-upstream.h"
#include "kp-sse.h"
#include "kp-test-util.h"

#define TOKEN "kp-messages-token-0123456789"
#define ANTHRO_KEY "sk-ant-mock-good-0001"
#define OAI_KEY "sk-oai-mock-good-0001"

typedef struct
{
  KpMockUpstream *mock;
  KpTestRig       rig;
} Fixture;

/* Claude models at Anthropic prices: input 3, output 15, cache read 0.3 and
 * cache write 3.75 USD per million tokens.
 */
#define CLAUDE(name) \
  "{\"id\":\"anthropic/" name "\",\"upstream_id\":\"" name "\",\"input\":3,\"output\":15," \
  "\"cached_input\":0.3,\"cache_write\":3.75}"

static void
fixture_setup (Fixture       *fixture,
               gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *anthro = NULL;
  g_autofree char *oai = NULL;

  fixture->mock = kp_mock_upstream_new (&error);
  g_assert_no_error (error);
  kp_test_rig_init (&fixture->rig, "messages");

  /* "shared/flaky…" is cheaper on anthro, so anthro is tried first. */
  anthro = g_strdup_printf (
    "{\"id\":\"anthro\",\"name\":\"Anthro\",\"dialect\":\"anthropic\",\"base_url\":\"%s\","
    "\"auth\":{\"type\":\"header\",\"name\":\"x-api-key\"},"
    "\"headers\":{\"anthropic-version\":\"2023-06-01\"},\"env\":[\"KP_MESSAGES_ANTHRO\"],"
    "\"models\":[" CLAUDE ("claude-text") "," CLAUDE ("claude-tools") "," CLAUDE ("claude-thinking") ","
    CLAUDE ("claude-cache") "," CLAUDE ("claude-max") "," CLAUDE ("claude-bad") ","
    "{\"id\":\"shared/flaky-529\",\"upstream_id\":\"claude-529\",\"input\":1,\"output\":1},"
    "{\"id\":\"shared/flaky-event\",\"upstream_id\":\"claude-overload-event\",\"input\":1,\"output\":1},"
    "{\"id\":\"shared/flaky-credit\",\"upstream_id\":\"claude-credit\",\"input\":1,\"output\":1},"
    "{\"id\":\"shared/flaky-429\",\"upstream_id\":\"claude-429\",\"input\":1,\"output\":1},"
    "{\"id\":\"shared/flaky-reset\",\"upstream_id\":\"claude-429-reset\",\"input\":1,\"output\":1}]}",
    kp_mock_upstream_get_url (fixture->mock));
  oai = g_strdup_printf (
    "{\"id\":\"oai\",\"name\":\"Oai\",\"base_url\":\"%s\",\"env\":[\"KP_MESSAGES_OAI\"],"
    "\"models\":[{\"id\":\"oai/tools\",\"upstream_id\":\"mock-tools\",\"input\":1,\"output\":2},"
    "{\"id\":\"oai/chat\",\"upstream_id\":\"mock-chat\",\"input\":1,\"output\":2},"
    "{\"id\":\"oai/bad\",\"upstream_id\":\"mock-400\",\"input\":1,\"output\":2},"
    "{\"id\":\"shared/flaky-529\",\"upstream_id\":\"mock-chat\",\"input\":2,\"output\":2},"
    "{\"id\":\"shared/flaky-event\",\"upstream_id\":\"mock-chat\",\"input\":2,\"output\":2},"
    "{\"id\":\"shared/flaky-credit\",\"upstream_id\":\"mock-chat\",\"input\":2,\"output\":2},"
    "{\"id\":\"shared/flaky-429\",\"upstream_id\":\"mock-chat\",\"input\":2,\"output\":2},"
    "{\"id\":\"shared/flaky-reset\",\"upstream_id\":\"mock-chat\",\"input\":2,\"output\":2}]}",
    kp_mock_upstream_get_url (fixture->mock));
  kp_test_place_write_provider (&fixture->rig.place, "anthro", anthro);
  kp_test_place_write_provider (&fixture->rig.place, "oai", oai);
  kp_test_place_setenv (&fixture->rig.place, "KP_MESSAGES_ANTHRO", ANTHRO_KEY);
  kp_test_place_setenv (&fixture->rig.place, "KP_MESSAGES_OAI", OAI_KEY);

  kp_test_rig_serve (&fixture->rig, TOKEN);
}

static void
fixture_teardown (Fixture       *fixture,
                  gconstpointer  data)
{
  kp_test_rig_clear (&fixture->rig);
  g_clear_pointer (&fixture->mock, kp_mock_upstream_free);
}

/* POSTs @body to @path; @header and @value add one request header. */
static void
post (Fixture        *fixture,
      const char     *path,
      const char     *body,
      const char     *token,
      const char     *header,
      const char     *value,
      KpTestResponse *response)
{
  g_autofree char *url = g_strconcat (fixture->rig.base, path, NULL);

  /* Anthropic's SDK sends the key in x-api-key. */
  kp_test_request (fixture->rig.client, "POST", url, body, response,
                   "x-api-key", token, "anthropic-version", "2023-06-01", header, value, NULL);
}

#define MESSAGES(model, extra) \
  "{\"model\":\"" model "\",\"max_tokens\":256,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]" \
  extra "}"

#define CHAT(model, extra) \
  "{\"model\":\"" model "\",\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"}," \
  "{\"role\":\"user\",\"content\":\"hi\"}]" extra "}"

static JsonNode *
parse (const char *text)
{
  g_autoptr(GError) error = NULL;
  JsonNode *node = json_from_string (text, &error);

  g_assert_no_error (error);
  g_assert_nonnull (node);
  return node;
}

/* Every event of an SSE body, as (name, parsed data) pairs in order. */
typedef struct
{
  char     *name;
  JsonNode *data;   /* NULL for [DONE] */
} Event;

static void
event_clear (gpointer data)
{
  Event *event = data;

  g_free (event->name);
  g_clear_pointer (&event->data, json_node_unref);
}

static GArray *
parse_events (const char *body)
{
  GArray *events = g_array_new (FALSE, TRUE, sizeof (Event));
  KpSseEvent event = { .data = g_string_new (NULL) };
  gsize len = strlen (body);
  gsize offset = 0;
  gsize n;

  g_array_set_clear_func (events, event_clear);
  while ((n = kp_sse_next_event (body + offset, len - offset, &event)) > 0)
    {
      Event parsed = { 0 };

      offset += n;
      if (!event.has_data)
        continue;
      parsed.name = event.name ? g_strndup (event.name, event.name_len) : NULL;
      if (!g_str_equal (event.data->str, "[DONE]"))
        parsed.data = parse (event.data->str);
      g_array_append_val (events, parsed);
    }
  g_assert_cmpuint (offset, ==, len);
  g_string_free (event.data, TRUE);
  return events;
}

static JsonObject *
object_at (JsonNode   *node,
           const char *path)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) found = json_path_query (path, node, &error);
  JsonArray *array;

  g_assert_no_error (error);
  array = json_node_get_array (found);
  g_assert_cmpuint (json_array_get_length (array), ==, 1);
  return json_node_get_object (json_array_get_element (array, 0));
}

static const char *
string_at (JsonNode   *node,
           const char *path)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) found = json_path_query (path, node, &error);
  JsonArray *array;
  static char *last;

  g_assert_no_error (error);
  array = json_node_get_array (found);
  g_assert_cmpuint (json_array_get_length (array), ==, 1);
  g_free (last);
  last = g_strdup (json_array_get_string_element (array, 0));
  return last;
}

static KpRequestRow *
last_row (Fixture *fixture)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) rows = NULL;

  /* The row is committed before the response ends. */
  rows = kp_ledger_recent_requests (kp_gateway_get_ledger (fixture->rig.gateway), 1, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (rows->len, ==, 1);
  return g_ptr_array_steal_index (rows, 0);
}

static void
assert_anthropic_error (KpTestResponse *response,
                        guint           status,
                        const char     *type)
{
  g_autoptr(JsonNode) root = parse (response->body);

  g_assert_cmpuint (response->status, ==, status);
  g_assert_cmpstr (string_at (root, "$.type"), ==, "error");
  g_assert_cmpstr (string_at (root, "$.error.type"), ==, type);
  g_assert_cmpstr (string_at (root, "$.error.message"), !=, "");
}

/* Tests ----------------------------------------------------------------- */

/* An Anthropic client and an Anthropic provider: the stream is relayed byte
 * for byte, the client's beta flags go along, and usage is read on the way.
 */
static void
test_passthrough_stream (Fixture       *fixture,
                         gconstpointer  data)
{
  g_auto(KpTestResponse) response = { 0 };
  KpMockStats *stats = kp_mock_upstream_get_stats (fixture->mock);
  g_autoptr(KpRequestRow) row = NULL;

  post (fixture, "/v1/messages", MESSAGES ("anthropic/claude-text", ",\"stream\":true"), TOKEN,
        "anthropic-beta", "interleaved-thinking-2025-05-14", &response);
  g_assert_cmpuint (response.status, ==, 200);
  g_assert_cmpstr (soup_message_headers_get_content_type (response.headers, NULL), ==,
                   "text/event-stream");
  g_assert_cmpstr (response.body, ==, kp_mock_anthropic_stream ("claude-text"));
  g_assert_cmpstr (soup_message_headers_get_one (response.headers, "x-keypool-provider"), ==, "anthro");

  g_assert_cmpstr (stats->last_auth, ==, ANTHRO_KEY);
  g_assert_cmpstr (stats->last_anthropic_version, ==, "2023-06-01");
  g_assert_cmpstr (stats->last_anthropic_beta, ==, "interleaved-thinking-2025-05-14");
  g_assert_nonnull (strstr (stats->last_body, "\"model\":\"claude-text\""));

  row = last_row (fixture);
  g_assert_cmpstr (row->api, ==, "anthropic");
  g_assert_cmpstr (row->outcome, ==, "ok");
  g_assert_cmpint (row->prompt_tokens, ==, 12);
  g_assert_cmpint (row->completion_tokens, ==, 4);
  /* 12 × 3 + 4 × 15 = 96 USD per million tokens: 96,000 nano-USD. */
  g_assert_cmpstr (row->cost_source, ==, "computed");
  g_assert_cmpint (row->cost_nano, ==, 96000);
}

/* The body goes upstream as the client wrote it: cache_control and thinking
 * signatures survive, only the model id changes.
 */
static void
test_passthrough_whole (Fixture       *fixture,
                        gconstpointer  data)
{
  static const char body[] =
    "{\"model\":\"anthropic/claude-thinking\",\"max_tokens\":2048,"
    "\"system\":[{\"type\":\"text\",\"text\":\"You add numbers.\",\"cache_control\":{\"type\":\"ephemeral\"}}],"
    "\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":1024},"
    "\"messages\":[{\"role\":\"user\",\"content\":\"1+1?\"},"
    "{\"role\":\"assistant\",\"content\":[{\"type\":\"thinking\",\"thinking\":\"One and one.\","
    "\"signature\":\"EqQBCkYIARgCKkAsig\"},{\"type\":\"text\",\"text\":\"2\"}]},"
    "{\"role\":\"user\",\"content\":\"2+2?\"}]}";
  g_auto(KpTestResponse) response = { 0 };
  KpMockStats *stats = kp_mock_upstream_get_stats (fixture->mock);
  g_autoptr(JsonNode) sent = NULL;
  g_autoptr(JsonNode) expected = parse (body);

  post (fixture, "/v1/messages", body, TOKEN, NULL, NULL, &response);
  g_assert_cmpuint (response.status, ==, 200);
  g_assert_cmpstr (response.body, ==, kp_mock_anthropic_message ("claude-thinking"));

  sent = parse (stats->last_body);
  json_object_set_string_member (json_node_get_object (expected), "model", "claude-thinking");
  g_assert_true (json_node_equal (sent, expected));
}

static void
test_cache_cost (Fixture       *fixture,
                 gconstpointer  data)
{
  g_auto(KpTestResponse) response = { 0 };
  g_autoptr(KpRequestRow) row = NULL;

  post (fixture, "/v1/messages", MESSAGES ("anthropic/claude-cache", ",\"stream\":true"), TOKEN,
        NULL, NULL, &response);
  g_assert_cmpuint (response.status, ==, 200);

  row = last_row (fixture);
  g_assert_cmpint (row->prompt_tokens, ==, 100 + 2000 + 500);
  g_assert_cmpint (row->cached_tokens, ==, 2000);
  g_assert_cmpint (row->cache_write_tokens, ==, 500);
  g_assert_cmpint (row->completion_tokens, ==, 50);
  /* 100 × 3 + 2000 × 0.3 + 500 × 3.75 + 50 × 15 = 3525 USD per million tokens. */
  g_assert_cmpint (row->cost_nano, ==, 3525000);

  /* The same through the OpenAI dialect, not streamed. */
  {
    g_auto(KpTestResponse) chat = { 0 };
    g_autoptr(KpRequestRow) again = NULL;
    g_autoptr(JsonNode) root = NULL;

    post (fixture, "/v1/chat/completions", CHAT ("anthropic/claude-cache", ""), TOKEN, NULL, NULL,
          &chat);
    g_assert_cmpuint (chat.status, ==, 200);
    root = parse (chat.body);
    g_assert_cmpint (json_object_get_int_member (object_at (root, "$.usage"), "prompt_tokens"), ==, 2600);
    g_assert_cmpint (json_object_get_int_member (object_at (root, "$.usage.prompt_tokens_details"),
                                                 "cached_tokens"), ==, 2000);
    again = last_row (fixture);
    g_assert_cmpstr (again->api, ==, "openai-chat");
    g_assert_cmpint (again->cost_nano, ==, 3525000);
  }
}

/* An OpenAI client, an Anthropic provider: text, two tool calls in pieces,
 * usage, [DONE].
 */
static void
test_openai_client_anthropic_stream (Fixture       *fixture,
                                     gconstpointer  data)
{
  g_auto(KpTestResponse) response = { 0 };
  KpMockStats *stats = kp_mock_upstream_get_stats (fixture->mock);
  g_autoptr(GArray) events = NULL;
  g_autoptr(GString) text = g_string_new (NULL);
  g_autoptr(GString) args0 = g_string_new (NULL);
  g_autoptr(GString) args1 = g_string_new (NULL);
  GString *args[2] = { args0, args1 };
  const char *ids[2] = { NULL, NULL };
  const char *names[2] = { NULL, NULL };
  g_autoptr(JsonNode) sent = NULL;
  const char *finish = NULL;
  gint64 prompt = -1;

  post (fixture, "/v1/chat/completions",
        CHAT ("anthropic/claude-tools", ",\"stream\":true,\"stream_options\":{\"include_usage\":true},"
              "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
              "\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}}}}}]"),
        TOKEN, NULL, NULL, &response);
  g_assert_cmpuint (response.status, ==, 200);

  /* What went upstream is Anthropic's request. */
  g_assert_cmpstr (stats->last_auth, ==, ANTHRO_KEY);
  sent = parse (stats->last_body);
  g_assert_cmpstr (string_at (sent, "$.model"), ==, "claude-tools");
  g_assert_cmpint (json_object_get_int_member (json_node_get_object (sent), "max_tokens"), >, 0);
  g_assert_nonnull (strstr (stats->last_body, "Be brief."));
  g_assert_cmpstr (string_at (sent, "$.tools[0].name"), ==, "get_weather");
  g_assert_false (json_object_has_member (json_node_get_object (sent), "stream_options"));

  /* Anthropic's ping mid-answer is a comment in the OpenAI stream. */
  g_assert_nonnull (strstr (response.body, "\n\n: keep-alive\n\n"));
  events = parse_events (response.body);
  g_assert_cmpuint (events->len, >, 3);
  g_assert_null (g_array_index (events, Event, events->len - 1).data);   /* [DONE] */
  for (guint i = 0; i + 1 < events->len; i++)
    {
      JsonObject *chunk = json_node_get_object (g_array_index (events, Event, i).data);
      JsonArray *choices = json_object_get_array_member (chunk, "choices");
      JsonObject *delta;

      g_assert_cmpstr (json_object_get_string_member (chunk, "object"), ==, "chat.completion.chunk");
      if (json_object_has_member (chunk, "usage") &&
          JSON_NODE_HOLDS_OBJECT (json_object_get_member (chunk, "usage")))
        prompt = json_object_get_int_member (json_object_get_object_member (chunk, "usage"),
                                             "prompt_tokens");
      if (json_array_get_length (choices) == 0)
        continue;
      delta = json_object_get_object_member (json_array_get_object_element (choices, 0), "delta");
      if (JSON_NODE_HOLDS_VALUE (json_object_get_member (json_array_get_object_element (choices, 0),
                                                         "finish_reason")))
        finish = json_object_get_string_member (json_array_get_object_element (choices, 0), "finish_reason");
      if (json_object_has_member (delta, "content") &&
          JSON_NODE_HOLDS_VALUE (json_object_get_member (delta, "content")))
        g_string_append (text, json_object_get_string_member (delta, "content"));
      if (json_object_has_member (delta, "tool_calls"))
        {
          JsonArray *calls = json_object_get_array_member (delta, "tool_calls");

          for (guint k = 0; k < json_array_get_length (calls); k++)
            {
              JsonObject *call = json_array_get_object_element (calls, k);
              gint64 index = json_object_get_int_member (call, "index");
              JsonObject *function = json_object_get_object_member (call, "function");

              g_assert_cmpint (index, >=, 0);
              g_assert_cmpint (index, <, 2);
              if (json_object_has_member (call, "id"))
                ids[index] = json_object_get_string_member (call, "id");
              if (json_object_has_member (function, "name"))
                names[index] = json_object_get_string_member (function, "name");
              if (json_object_has_member (function, "arguments"))
                g_string_append (args[index], json_object_get_string_member (function, "arguments"));
            }
        }
    }

  g_assert_cmpstr (text->str, ==, "Checking both.");
  g_assert_cmpstr (ids[0], ==, "toolu_01A");
  g_assert_cmpstr (names[0], ==, "get_weather");
  g_assert_cmpstr (args[0]->str, ==, "{\"city\": \"Paris\"}");
  g_assert_cmpstr (ids[1], ==, "toolu_01B");
  g_assert_cmpstr (names[1], ==, "get_time");
  g_assert_cmpstr (args[1]->str, ==, "{\"zone\": \"CET\"}");
  g_assert_cmpstr (finish, ==, "tool_calls");
  g_assert_cmpint (prompt, ==, 40);

  {
    g_autoptr(KpRequestRow) row = last_row (fixture);

    g_assert_cmpstr (row->outcome, ==, "ok");
    g_assert_cmpint (row->completion_tokens, ==, 31);
    g_assert_true (row->streamed);
  }
}

static void
test_openai_client_anthropic_whole (Fixture       *fixture,
                                    gconstpointer  data)
{
  g_auto(KpTestResponse) response = { 0 };
  g_autoptr(JsonNode) root = NULL;

  post (fixture, "/v1/chat/completions", CHAT ("anthropic/claude-thinking", ""), TOKEN, NULL, NULL,
        &response);
  g_assert_cmpuint (response.status, ==, 200);
  root = parse (response.body);
  g_assert_cmpstr (string_at (root, "$.object"), ==, "chat.completion");
  g_assert_cmpstr (string_at (root, "$.choices[0].message.content"), ==, "4");
  g_assert_cmpstr (string_at (root, "$.choices[0].message.reasoning_content"), ==,
                   "Two plus two is four.");
  g_assert_cmpstr (string_at (root, "$.choices[0].finish_reason"), ==, "stop");

  {
    g_auto(KpTestResponse) cut = { 0 };
    g_autoptr(JsonNode) cut_root = NULL;

    post (fixture, "/v1/chat/completions", CHAT ("anthropic/claude-max", ""), TOKEN, NULL, NULL, &cut);
    cut_root = parse (cut.body);
    g_assert_cmpstr (string_at (cut_root, "$.choices[0].finish_reason"), ==, "length");
  }
}

/* An Anthropic client, an OpenAI provider: the OpenAI stream comes back as
 * Anthropic's events.
 */
static void
test_anthropic_client_openai_stream (Fixture       *fixture,
                                     gconstpointer  data)
{
  g_auto(KpTestResponse) response = { 0 };
  KpMockStats *stats = kp_mock_upstream_get_stats (fixture->mock);
  g_autoptr(GArray) events = NULL;
  g_autoptr(JsonNode) sent = NULL;
  g_autoptr(GString) order = g_string_new (NULL);
  g_autoptr(GString) text = g_string_new (NULL);
  g_autoptr(GString) json0 = g_string_new (NULL);
  g_autoptr(GString) json1 = g_string_new (NULL);
  gint64 tool_block[2] = { -1, -1 };
  guint tools = 0;

  post (fixture, "/v1/messages",
        MESSAGES ("oai/tools", ",\"stream\":true,\"system\":\"Be brief.\","
                  "\"tools\":[{\"name\":\"get_weather\",\"input_schema\":{\"type\":\"object\"}}]"),
        TOKEN, NULL, NULL, &response);
  g_assert_cmpuint (response.status, ==, 200);

  /* Upstream got OpenAI's chat request, with usage asked for. */
  g_assert_cmpstr (stats->last_auth, ==, "Bearer " OAI_KEY);
  sent = parse (stats->last_body);
  g_assert_cmpstr (string_at (sent, "$.model"), ==, "mock-tools");
  g_assert_cmpstr (string_at (sent, "$.messages[0].role"), ==, "system");
  g_assert_cmpstr (string_at (sent, "$.tools[0].function.name"), ==, "get_weather");
  g_assert_true (json_object_get_boolean_member (object_at (sent, "$.stream_options"), "include_usage"));

  events = parse_events (response.body);
  for (guint i = 0; i < events->len; i++)
    {
      Event *event = &g_array_index (events, Event, i);
      JsonObject *object = json_node_get_object (event->data);

      g_assert_nonnull (event->name);
      g_assert_cmpstr (json_object_get_string_member (object, "type"), ==, event->name);
      if (g_str_equal (event->name, "ping"))
        continue;
      g_string_append_printf (order, "%s%s", order->len ? " " : "", event->name);

      if (g_str_equal (event->name, "content_block_start"))
        {
          JsonObject *block = json_object_get_object_member (object, "content_block");

          if (g_str_equal (json_object_get_string_member (block, "type"), "tool_use"))
            {
              g_assert_cmpuint (tools, <, 2);
              g_assert_cmpstr (json_object_get_string_member (block, "id"), ==,
                               tools == 0 ? "call_w1" : "call_t2");
              tool_block[tools++] = json_object_get_int_member (object, "index");
            }
        }
      else if (g_str_equal (event->name, "content_block_delta"))
        {
          JsonObject *delta = json_object_get_object_member (object, "delta");
          gint64 index = json_object_get_int_member (object, "index");

          if (g_str_equal (json_object_get_string_member (delta, "type"), "text_delta"))
            g_string_append (text, json_object_get_string_member (delta, "text"));
          else if (index == tool_block[0])
            g_string_append (json0, json_object_get_string_member (delta, "partial_json"));
          else if (index == tool_block[1])
            g_string_append (json1, json_object_get_string_member (delta, "partial_json"));
          else
            g_assert_not_reached ();
        }
      else if (g_str_equal (event->name, "message_delta"))
        {
          g_assert_cmpstr (string_at (event->data, "$.delta.stop_reason"), ==, "tool_use");
          g_assert_cmpint (json_object_get_int_member (object_at (event->data, "$.usage"),
                                                       "output_tokens"), ==, 20);
        }
    }

  g_assert_cmpstr (order->str, ==,
                   "message_start content_block_start content_block_delta content_block_stop "
                   "content_block_start content_block_delta content_block_delta "
                   "content_block_stop content_block_start content_block_delta content_block_delta "
                   "content_block_stop message_delta message_stop");
  g_assert_cmpstr (text->str, ==, "Let me check.");
  g_assert_cmpstr (json0->str, ==, "{\"city\": \"Paris\"}");
  g_assert_cmpstr (json1->str, ==, "{\"zone\": \"CET\"}");

  {
    g_autoptr(KpRequestRow) row = last_row (fixture);

    g_assert_cmpstr (row->api, ==, "anthropic");
    g_assert_cmpint (row->prompt_tokens, ==, 30);
    g_assert_cmpint (row->cached_tokens, ==, 10);
    g_assert_cmpint (row->completion_tokens, ==, 20);
  }
}

static void
test_anthropic_client_openai_whole (Fixture       *fixture,
                                    gconstpointer  data)
{
  g_auto(KpTestResponse) response = { 0 };
  g_autoptr(JsonNode) root = NULL;

  post (fixture, "/v1/messages", MESSAGES ("oai/tools", ""), TOKEN, NULL, NULL, &response);
  g_assert_cmpuint (response.status, ==, 200);
  root = parse (response.body);
  g_assert_cmpstr (string_at (root, "$.type"), ==, "message");
  g_assert_cmpstr (string_at (root, "$.role"), ==, "assistant");
  g_assert_cmpstr (string_at (root, "$.stop_reason"), ==, "tool_use");
  g_assert_cmpstr (string_at (root, "$.content[0].type"), ==, "text");
  g_assert_cmpstr (string_at (root, "$.content[0].text"), ==, "Let me check.");
  g_assert_cmpstr (string_at (root, "$.content[1].id"), ==, "call_w1");
  g_assert_cmpstr (string_at (root, "$.content[1].input.city"), ==, "Paris");
  g_assert_cmpstr (string_at (root, "$.content[2].input.zone"), ==, "CET");
  /* input_tokens leaves the cached ones out. */
  g_assert_cmpint (json_object_get_int_member (object_at (root, "$.usage"), "input_tokens"), ==, 20);
  g_assert_cmpint (json_object_get_int_member (object_at (root, "$.usage"), "cache_read_input_tokens"),
                   ==, 10);
}

/* 529: Anthropic is overloaded; the next route answers, and the key is not
 * blamed as bad or out of money.
 */
static void
test_overloaded_fails_over (Fixture       *fixture,
                            gconstpointer  data)
{
  g_autoptr(KpRequestRow) row = NULL;

  {
    g_auto(KpTestResponse) response = { 0 };
    g_autoptr(JsonNode) root = NULL;

    post (fixture, "/v1/messages", MESSAGES ("shared/flaky-529", ""), TOKEN, NULL, NULL, &response);
    g_assert_cmpuint (response.status, ==, 200);
    g_assert_cmpstr (soup_message_headers_get_one (response.headers, "x-keypool-provider"), ==, "oai");
    root = parse (response.body);
    g_assert_cmpstr (string_at (root, "$.type"), ==, "message");
  }
  row = last_row (fixture);
  g_assert_cmpint (row->attempts, ==, 2);
  g_assert_cmpint (kp_test_credential_state (fixture->rig.gateway, ANTHRO_KEY), ==,
                   KP_CREDENTIAL_OK);

  /* The busy offering rests a moment: the next request goes straight on. */
  {
    g_auto(KpTestResponse) response = { 0 };
    g_autoptr(KpRequestRow) again = NULL;

    post (fixture, "/v1/messages", MESSAGES ("shared/flaky-529", ""), TOKEN, NULL, NULL, &response);
    g_assert_cmpuint (response.status, ==, 200);
    again = last_row (fixture);
    g_assert_cmpint (again->attempts, ==, 1);
  }
  /* The key still serves its other models. */
  {
    g_auto(KpTestResponse) response = { 0 };

    post (fixture, "/v1/messages", MESSAGES ("anthropic/claude-text", ""), TOKEN, NULL, NULL, &response);
    g_assert_cmpuint (response.status, ==, 200);
  }
}

/* An error event in a 200 stream, before any content: nothing of it reaches
 * the client, and the next route answers.
 */
static void
test_error_event_fails_over (Fixture       *fixture,
                             gconstpointer  data)
{
  g_auto(KpTestResponse) response = { 0 };
  g_autoptr(GArray) events = NULL;

  post (fixture, "/v1/messages", MESSAGES ("shared/flaky-event", ",\"stream\":true"), TOKEN, NULL,
        NULL, &response);
  g_assert_cmpuint (response.status, ==, 200);
  g_assert_cmpstr (soup_message_headers_get_one (response.headers, "x-keypool-provider"), ==, "oai");
  g_assert_null (strstr (response.body, "overloaded"));
  g_assert_null (strstr (response.body, "msg_mock01"));
  events = parse_events (response.body);
  g_assert_cmpstr (g_array_index (events, Event, 0).name, ==, "message_start");
  g_assert_cmpstr (g_array_index (events, Event, events->len - 1).name, ==, "message_stop");
  g_assert_cmpint (kp_test_credential_state (fixture->rig.gateway, ANTHRO_KEY), ==,
                   KP_CREDENTIAL_OK);
}

static void
test_credit_and_rate (Fixture       *fixture,
                      gconstpointer  data)
{
  {
    g_auto(KpTestResponse) response = { 0 };

    post (fixture, "/v1/chat/completions", CHAT ("shared/flaky-429", ""), TOKEN, NULL, NULL, &response);
    g_assert_cmpuint (response.status, ==, 200);
    g_assert_cmpstr (soup_message_headers_get_one (response.headers, "x-keypool-provider"), ==, "oai");
    g_assert_cmpint (kp_test_credential_state (fixture->rig.gateway, ANTHRO_KEY), ==,
                     KP_CREDENTIAL_COOLING);
  }

  {
    GPtrArray *credentials = kp_gateway_get_credentials (fixture->rig.gateway);

    for (guint i = 0; i < credentials->len; i++)
      g_assert_true (kp_gateway_reset_key (fixture->rig.gateway,
                                           kp_credential_get_id (g_ptr_array_index (credentials, i)),
                                           NULL));
  }
  g_assert_cmpint (kp_test_credential_state (fixture->rig.gateway, ANTHRO_KEY), ==,
                   KP_CREDENTIAL_OK);

  {
    g_auto(KpTestResponse) response = { 0 };
    gint64 now = g_get_real_time () / G_USEC_PER_SEC;
    gint64 until;

    /* No retry-after: the time Anthropic's own header says the limit resets. */
    post (fixture, "/v1/messages", MESSAGES ("shared/flaky-reset", ""), TOKEN, NULL, NULL, &response);
    g_assert_cmpuint (response.status, ==, 200);
    g_assert_cmpint (kp_test_credential_state (fixture->rig.gateway, ANTHRO_KEY), ==,
                     KP_CREDENTIAL_COOLING);
    until = kp_credential_get_state_until (kp_test_credential (fixture->rig.gateway, ANTHRO_KEY));
    g_assert_cmpint (until, >=, now + 38);
    g_assert_cmpint (until, <=, now + 42);
    g_assert_true (kp_gateway_reset_key (fixture->rig.gateway,
                                         kp_credential_get_id (kp_test_credential (
                                           fixture->rig.gateway, ANTHRO_KEY)),
                                         NULL));
  }

  {
    g_auto(KpTestResponse) response = { 0 };

    post (fixture, "/v1/messages", MESSAGES ("shared/flaky-credit", ""), TOKEN, NULL, NULL, &response);
    g_assert_cmpuint (response.status, ==, 200);
    g_assert_cmpstr (soup_message_headers_get_one (response.headers, "x-keypool-provider"), ==, "oai");
    g_assert_cmpint (kp_test_credential_state (fixture->rig.gateway, ANTHRO_KEY), ==,
                     KP_CREDENTIAL_EXHAUSTED);
  }
}

/* A 400 that is the request's fault goes back as it is, in the client's
 * dialect, and no other route is tried.
 */
static void
test_client_errors (Fixture       *fixture,
                    gconstpointer  data)
{
  KpMockStats *stats = kp_mock_upstream_get_stats (fixture->mock);

  {
    g_auto(KpTestResponse) response = { 0 };

    post (fixture, "/v1/messages", MESSAGES ("anthropic/claude-bad", ""), TOKEN, NULL, NULL, &response);
    assert_anthropic_error (&response, 400, "invalid_request_error");
    g_assert_nonnull (strstr (response.body, "unexpected tool_use_id"));
  }
  {
    g_auto(KpTestResponse) response = { 0 };
    g_autoptr(JsonNode) root = NULL;

    /* Anthropic's error, told to an OpenAI client. */
    post (fixture, "/v1/chat/completions", CHAT ("anthropic/claude-bad", ""), TOKEN, NULL, NULL,
          &response);
    g_assert_cmpuint (response.status, ==, 400);
    root = parse (response.body);
    g_assert_nonnull (strstr (string_at (root, "$.error.message"), "unexpected tool_use_id"));
  }
  {
    g_auto(KpTestResponse) response = { 0 };

    /* OpenAI's error, told to an Anthropic client. */
    kp_mock_upstream_reset (fixture->mock);
    post (fixture, "/v1/messages", MESSAGES ("oai/bad", ""), TOKEN, NULL, NULL, &response);
    assert_anthropic_error (&response, 400, "invalid_request_error");
    g_assert_nonnull (strstr (response.body, "maximum context length"));
    g_assert_cmpuint (stats->requests, ==, 1);
  }
}

/* Keypool's own refusals, in Anthropic's shape on /v1/messages. */
static void
test_own_errors (Fixture       *fixture,
                 gconstpointer  data)
{
  {
    g_auto(KpTestResponse) response = { 0 };

    post (fixture, "/v1/messages", MESSAGES ("anthropic/claude-text", ""), NULL, NULL, NULL, &response);
    assert_anthropic_error (&response, 401, "authentication_error");
  }
  {
    g_auto(KpTestResponse) response = { 0 };

    post (fixture, "/v1/messages", MESSAGES ("anthropic/claude-text", ""), "wrong-token", NULL, NULL,
          &response);
    assert_anthropic_error (&response, 401, "authentication_error");
  }
  {
    g_auto(KpTestResponse) response = { 0 };

    /* Claude Code's way: ANTHROPIC_AUTH_TOKEN is sent as a bearer token. */
    post (fixture, "/v1/messages", MESSAGES ("anthropic/claude-text", ""), NULL, "Authorization",
          "Bearer " TOKEN, &response);
    g_assert_cmpuint (response.status, ==, 200);
  }
  {
    g_auto(KpTestResponse) response = { 0 };

    post (fixture, "/v1/messages", MESSAGES ("anthropic/claude-txet", ""), TOKEN, NULL, NULL, &response);
    assert_anthropic_error (&response, 404, "not_found_error");
    g_assert_nonnull (strstr (response.body, "anthropic/claude-text"));
  }
  {
    g_auto(KpTestResponse) response = { 0 };

    post (fixture, "/v1/messages", "{\"model\":", TOKEN, NULL, NULL, &response);
    assert_anthropic_error (&response, 400, "invalid_request_error");
  }
  {
    g_auto(KpTestResponse) response = { 0 };

    post (fixture, "/v1/messages",
          "{\"model\":\"anthropic/claude-text\",\"max_tokens\":\"lots\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
          TOKEN, NULL, NULL, &response);
    assert_anthropic_error (&response, 400, "invalid_request_error");
    g_assert_nonnull (strstr (response.body, "max_tokens"));
  }
  {
    g_auto(KpTestResponse) response = { 0 };

    /* No max_tokens at all: Keypool supplies Anthropic's required one. */
    post (fixture, "/v1/messages",
          "{\"model\":\"anthropic/claude-text\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
          TOKEN, NULL, NULL, &response);
    g_assert_cmpuint (response.status, ==, 200);
  }
}

/* Claude Code asks for /v1/messages?beta=true, and names models with a
 * snapshot date that no provider file lists.
 */
static void
test_claude_code_names (Fixture       *fixture,
                        gconstpointer  data)
{
  KpMockStats *stats = kp_mock_upstream_get_stats (fixture->mock);

  {
    g_auto(KpTestResponse) response = { 0 };

    post (fixture, "/v1/messages?beta=true", MESSAGES ("claude-text-20250929", ""), NULL,
          "Authorization", "Bearer " TOKEN, &response);
    g_assert_cmpuint (response.status, ==, 200);
    g_assert_cmpstr (soup_message_headers_get_one (response.headers, "x-keypool-provider"), ==, "anthro");
    g_assert_nonnull (strstr (stats->last_body, "\"model\":\"claude-text\""));
  }
  {
    g_auto(KpTestResponse) response = { 0 };

    post (fixture, "/v1/messages", MESSAGES ("anthropic/claude-text-20250929", ""), TOKEN, NULL, NULL,
          &response);
    g_assert_cmpuint (response.status, ==, 200);
  }
  {
    g_auto(KpTestResponse) response = { 0 };

    /* Only a date is taken off, and only a whole one. */
    post (fixture, "/v1/messages", MESSAGES ("claude-text-2025", ""), TOKEN, NULL, NULL, &response);
    assert_anthropic_error (&response, 404, "not_found_error");
  }
}

static void
test_count_tokens (Fixture       *fixture,
                   gconstpointer  data)
{
  {
    g_auto(KpTestResponse) response = { 0 };
    g_autoptr(JsonNode) root = NULL;
    gint64 tokens;

    post (fixture, "/v1/messages/count_tokens",
          "{\"model\":\"anthropic/claude-text\",\"system\":\"You are terse.\","
          "\"messages\":[{\"role\":\"user\",\"content\":\"How many tokens is this sentence?\"}]}",
          TOKEN, NULL, NULL, &response);
    g_assert_cmpuint (response.status, ==, 200);
    root = parse (response.body);
    tokens = json_object_get_int_member (json_node_get_object (root), "input_tokens");
    g_assert_cmpint (tokens, >, 5);
    g_assert_cmpint (tokens, <, 60);
    /* Nothing went upstream. */
    g_assert_cmpuint (kp_mock_upstream_get_stats (fixture->mock)->requests, ==, 0);
  }
  {
    g_auto(KpTestResponse) response = { 0 };

    post (fixture, "/v1/messages/count_tokens", "{\"model\":\"nobody/nothing\",\"messages\":[]}",
          TOKEN, NULL, NULL, &response);
    assert_anthropic_error (&response, 404, "not_found_error");
  }
  {
    /* 100,000 "[" are a 400, not a stack overflow that ends every stream. */
    g_auto(KpTestResponse) response = { 0 };
    g_autofree char *deep = g_malloc (100000 + 1);

    memset (deep, '[', 100000);
    deep[100000] = '\0';
    post (fixture, "/v1/messages/count_tokens", deep, TOKEN, NULL, NULL, &response);
    g_assert_cmpuint (response.status, ==, 400);
    g_assert_nonnull (strstr (response.body, "deeper than 128 levels"));
  }
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

#define ADD(path, func) \
  g_test_add ("/keypool/messages/" path, Fixture, NULL, fixture_setup, func, fixture_teardown)

  ADD ("passthrough-stream", test_passthrough_stream);
  ADD ("passthrough-whole", test_passthrough_whole);
  ADD ("cache-cost", test_cache_cost);
  ADD ("openai-client-anthropic-stream", test_openai_client_anthropic_stream);
  ADD ("openai-client-anthropic-whole", test_openai_client_anthropic_whole);
  ADD ("anthropic-client-openai-stream", test_anthropic_client_openai_stream);
  ADD ("anthropic-client-openai-whole", test_anthropic_client_openai_whole);
  ADD ("overloaded-fails-over", test_overloaded_fails_over);
  ADD ("error-event-fails-over", test_error_event_fails_over);
  ADD ("credit-and-rate", test_credit_and_rate);
  ADD ("client-errors", test_client_errors);
  ADD ("own-errors", test_own_errors);
  ADD ("claude-code-names", test_claude_code_names);
  ADD ("count-tokens", test_count_tokens);

#undef ADD

  return g_test_run ();
}
