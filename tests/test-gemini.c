/* test-gemini.c: the Gemini wire both ways, through the real server and relay
 *
 * One mock provider answers Gemini's generateContent (kp-mock-gemini.c)
 * and OpenAI's chat. Provider "gem" speaks Gemini to it, "oai" OpenAI.
 * OpenAI clients reach Gemini models; Gemini clients (SSE and JSON-array
 * streams, the key in x-goog-api-key or ?key=) reach both; Google's errors
 * fail over and rest the key as §7 says; the ledger counts Gemini's usage.
 * OpenAI's embeddings reach Gemini's, with the input's estimate counted.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include "config.h"

#include <string.h>

#include <json-glib/json-glib.h>

#include "kp-gateway.h"
#include "kp-ledger.h"
#include "kp-mock-upstream.h"
#include "kp-sse.h"
#include "kp-test-util.h"

#define TOKEN "kp-gemini-token-0123456789"
#define GEM_KEY "AIza-mock-good-0001"
#define OAI_KEY "sk-oai-mock-good-0002"

typedef struct
{
  KpMockUpstream *mock;
  KpTestRig       rig;
} Fixture;

#define GEM(id, upstream) \
  "{\"id\":\"" id "\",\"upstream_id\":\"" upstream "\",\"input\":0.3,\"output\":2.5,\"cached_input\":0.03}"

static void
fixture_setup (Fixture       *fixture,
               gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *gem = NULL;
  g_autofree char *oai = NULL;
  g_autofree char *root = NULL;

  fixture->mock = kp_mock_upstream_new (&error);
  g_assert_no_error (error);
  kp_test_rig_init (&fixture->rig, "gemini");
  root = g_strdup_printf ("http://127.0.0.1:%u", kp_mock_upstream_get_port (fixture->mock));

  /* "shared/…" is cheaper on gem, so gem is tried first. */
  gem = g_strdup_printf (
    "{\"id\":\"gem\",\"name\":\"Gem\",\"dialect\":\"gemini\",\"base_url\":\"%s/v1beta\","
    "\"auth\":{\"type\":\"header\",\"name\":\"x-goog-api-key\"},\"env\":[\"KP_GEMINI_GEM\"],"
    "\"models\":[" GEM ("google/gemini-text", "gemini-text") "," GEM ("google/gemini-tools", "gemini-tools") ","
    GEM ("google/gemini-bad", "gemini-bad") ","
    GEM ("shared/day", "gemini-429-day") "," GEM ("shared/minute", "gemini-429-minute") ","
    GEM ("shared/missing", "gemini-404") "," GEM ("shared/down", "gemini-503") ","
    GEM ("shared/event", "gemini-error-event") ","
    "{\"id\":\"google/text-embedding\",\"upstream_id\":\"gemini-embedding-001\",\"kind\":\"embedding\","
    "\"input\":0.15,\"output\":0}],\"apis\":{\"gemini-embed\":true}}", root);
  oai = g_strdup_printf (
    "{\"id\":\"oai\",\"name\":\"Oai\",\"base_url\":\"%s\",\"env\":[\"KP_GEMINI_OAI\"],"
    "\"models\":[{\"id\":\"oai/chat\",\"upstream_id\":\"mock-chat\",\"input\":1,\"output\":2},"
    "{\"id\":\"oai/tools\",\"upstream_id\":\"mock-tools\",\"input\":1,\"output\":2},"
    "{\"id\":\"shared/day\",\"upstream_id\":\"mock-chat\",\"input\":5,\"output\":5},"
    "{\"id\":\"shared/minute\",\"upstream_id\":\"mock-chat\",\"input\":5,\"output\":5},"
    "{\"id\":\"shared/missing\",\"upstream_id\":\"mock-chat\",\"input\":5,\"output\":5},"
    "{\"id\":\"shared/down\",\"upstream_id\":\"mock-chat\",\"input\":5,\"output\":5},"
    "{\"id\":\"shared/event\",\"upstream_id\":\"mock-chat\",\"input\":5,\"output\":5}]}",
    kp_mock_upstream_get_url (fixture->mock));
  kp_test_place_write_provider (&fixture->rig.place, "gem", gem);
  kp_test_place_write_provider (&fixture->rig.place, "oai", oai);
  kp_test_place_setenv (&fixture->rig.place, "KP_GEMINI_GEM", GEM_KEY);
  kp_test_place_setenv (&fixture->rig.place, "KP_GEMINI_OAI", OAI_KEY);

  kp_test_rig_serve (&fixture->rig, TOKEN);
}

static void
fixture_teardown (Fixture       *fixture,
                  gconstpointer  data)
{
  kp_test_rig_clear (&fixture->rig);
  g_clear_pointer (&fixture->mock, kp_mock_upstream_free);
}

/* @header names how the token goes: "Authorization", "x-goog-api-key", or
 * NULL for none (a ?key= in @path, or no token at all).
 */
static void
send (Fixture        *fixture,
      const char     *method,
      const char     *path,
      const char     *body,
      const char     *header,
      KpTestResponse *response)
{
  g_autofree char *url = g_strconcat (fixture->rig.base, path, NULL);
  const char *value = g_strcmp0 (header, "Authorization") == 0 ? "Bearer " TOKEN : TOKEN;

  kp_test_request (fixture->rig.client, method, url, body, response, header, value, NULL);
}

static JsonNode *
parse (const char *text)
{
  g_autoptr(GError) error = NULL;
  JsonNode *node = json_from_string (text, &error);

  g_assert_no_error (error);
  g_assert_nonnull (node);
  return node;
}

static const char *
string_at (JsonNode   *node,
           const char *path)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) found = json_path_query (path, node, &error);
  JsonArray *results;

  g_assert_no_error (error);
  results = json_node_get_array (found);
  if (json_array_get_length (results) == 0)
    return NULL;
  /* The node lives as long as @node does. */
  return g_intern_string (json_node_get_string (json_array_get_element (results, 0)));
}

static gint64
int_at (JsonNode   *node,
        const char *path)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) found = json_path_query (path, node, &error);

  g_assert_no_error (error);
  g_assert_cmpuint (json_array_get_length (json_node_get_array (found)), ==, 1);
  return json_array_get_int_element (json_node_get_array (found), 0);
}

static KpRequestRow *
last_row (Fixture *fixture)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) rows = kp_ledger_recent_requests (kp_gateway_get_ledger (fixture->rig.gateway), 1,
                                                         &error);

  g_assert_no_error (error);
  g_assert_cmpuint (rows->len, ==, 1);
  return g_ptr_array_steal_index (rows, 0);
}

#define CHAT(model, extra) \
  "{\"model\":\"" model "\",\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"}," \
  "{\"role\":\"user\",\"content\":\"hi\"}]" extra "}"

#define CONTENTS "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"hi\"}]}]}"

/* An OpenAI client, a Gemini provider: streamed, with thinking and usage. */
static void
test_openai_to_gemini_stream (Fixture       *fixture,
                              gconstpointer  data)
{
  g_auto(KpTestResponse) response = { 0 };
  g_autoptr(KpRequestRow) row = NULL;
  KpMockStats *stats = kp_mock_upstream_get_stats (fixture->mock);
  g_autoptr(GString) content = g_string_new (NULL);
  g_autoptr(GString) reasoning = g_string_new (NULL);
  KpSseEvent event = { .data = g_string_new (NULL) };
  gsize offset = 0;
  gsize n;
  gboolean done = FALSE;
  gint64 completion = -1;

  send (fixture, "POST", "/v1/chat/completions",
        CHAT ("google/gemini-text", ",\"stream\":true,\"stream_options\":{\"include_usage\":true},"
              "\"reasoning_effort\":\"low\""), "Authorization", &response);
  g_assert_cmpuint (response.status, ==, 200);
  g_assert_cmpstr (soup_message_headers_get_one (response.headers, "x-keypool-provider"), ==, "gem");
  g_assert_cmpstr (stats->last_path, ==, "/v1beta/models/gemini-text:streamGenerateContent");
  g_assert_cmpstr (stats->last_auth, ==, GEM_KEY);
  g_assert_nonnull (strstr (stats->last_body, "\"systemInstruction\""));
  g_assert_nonnull (strstr (stats->last_body, "\"thinkingBudget\":1024"));
  g_assert_null (strstr (stats->last_body, "\"model\""));

  while ((n = kp_sse_next_event (response.body + offset, response.length - offset, &event)) > 0)
    {
      g_autoptr(JsonNode) chunk = NULL;

      offset += n;
      if (!event.has_data)
        continue;
      if (g_str_equal (event.data->str, "[DONE]"))
        {
          done = TRUE;
          continue;
        }
      chunk = parse (event.data->str);
      {
        JsonArray *choices = json_object_get_array_member (json_node_get_object (chunk), "choices");
        JsonObject *delta = json_array_get_length (choices) > 0
          ? json_object_get_object_member (json_array_get_object_element (choices, 0), "delta")
          : NULL;

        if (delta != NULL && json_object_has_member (delta, "content") &&
            !json_object_get_null_member (delta, "content"))
          g_string_append (content, json_object_get_string_member (delta, "content"));
        if (delta != NULL && json_object_has_member (delta, "reasoning_content"))
          g_string_append (reasoning, json_object_get_string_member (delta, "reasoning_content"));
      }
      if (json_object_has_member (json_node_get_object (chunk), "usage") &&
          !json_object_get_null_member (json_node_get_object (chunk), "usage"))
        completion = int_at (chunk, "$.usage.completion_tokens");
    }
  g_string_free (event.data, TRUE);
  g_assert_true (done);
  g_assert_cmpstr (content->str, ==, "Hello from Gemini");
  g_assert_cmpstr (reasoning->str, ==, "Let me think.");
  g_assert_cmpint (completion, ==, 9);

  /* The last usageMetadata counts; thoughts are output. */
  row = last_row (fixture);
  g_assert_cmpstr (row->provider, ==, "gem");
  g_assert_cmpint (row->prompt_tokens, ==, 11);
  g_assert_cmpint (row->completion_tokens, ==, 9);
  g_assert_cmpint (row->reasoning_tokens, ==, 5);
  g_assert_cmpint (row->cost_nano, >, 0);
}

/* A function call and its result: the signature comes back through an
 * OpenAI client (the mock refuses a call without it).
 */
static void
test_openai_tool_round_trip (Fixture       *fixture,
                             gconstpointer  data)
{
  g_auto(KpTestResponse) first = { 0 };
  g_auto(KpTestResponse) second = { 0 };
  g_autoptr(JsonNode) root = NULL;
  g_autofree char *body = NULL;
  const char *id;
  KpMockStats *stats = kp_mock_upstream_get_stats (fixture->mock);

  send (fixture, "POST", "/v1/chat/completions",
        CHAT ("google/gemini-tools", ",\"tools\":[{\"type\":\"function\",\"function\":{\"name\":"
              "\"get_weather\",\"parameters\":{\"type\":\"object\",\"additionalProperties\":false,"
              "\"properties\":{\"city\":{\"type\":\"string\"}}}}}]"), "Authorization", &first);
  g_assert_cmpuint (first.status, ==, 200);
  g_assert_cmpstr (stats->last_path, ==, "/v1beta/models/gemini-tools:generateContent");
  g_assert_null (strstr (stats->last_body, "additionalProperties"));
  root = parse (first.body);
  g_assert_cmpstr (string_at (root, "$.choices[0].finish_reason"), ==, "tool_calls");
  g_assert_cmpstr (string_at (root, "$.choices[0].message.tool_calls[0].function.name"), ==,
                   "get_weather");
  g_assert_cmpstr (string_at (root, "$.choices[0].message.tool_calls[0].function.arguments"), ==,
                   "{\"city\":\"Paris\"}");
  id = string_at (root, "$.choices[0].message.tool_calls[0].id");
  g_assert_nonnull (id);

  /* What an OpenAI client sends back: the id, nothing of Google's. */
  body = g_strdup_printf (
    "{\"model\":\"google/gemini-tools\",\"messages\":[{\"role\":\"user\",\"content\":\"weather?\"},"
    "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"%s\",\"type\":\"function\","
    "\"function\":{\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\"}}]},"
    "{\"role\":\"tool\",\"tool_call_id\":\"%s\",\"content\":\"sunny\"}]}", id, id);
  send (fixture, "POST", "/v1/chat/completions", body, "Authorization", &second);
  g_assert_cmpuint (second.status, ==, 200);
  g_assert_nonnull (strstr (stats->last_body, "\"thoughtSignature\":\"c2lnLW1vY2stMQ==\""));
  g_assert_nonnull (strstr (stats->last_body,
                            "\"functionResponse\":{\"name\":\"get_weather\",\"response\":"
                            "{\"result\":\"sunny\"}}"));
}

/* A Gemini client, a Gemini provider: the provider's bytes as they are. */
static void
test_gemini_passthrough (Fixture       *fixture,
                         gconstpointer  data)
{
  KpMockStats *stats = kp_mock_upstream_get_stats (fixture->mock);

  {
    g_auto(KpTestResponse) response = { 0 };
    g_autoptr(KpRequestRow) row = NULL;

    send (fixture, "POST", "/v1beta/models/google%2Fgemini-text:streamGenerateContent?alt=sse",
          CONTENTS, "x-goog-api-key", &response);
    g_assert_cmpuint (response.status, ==, 200);
    g_assert_cmpstr (soup_message_headers_get_content_type (response.headers, NULL), ==,
                     "text/event-stream");
    g_assert_cmpstr (stats->last_body, ==, CONTENTS);
    g_assert_nonnull (strstr (response.body, "data: {\"candidates\":[{\"content\":{\"role\":\"model\","
                                             "\"parts\":[{\"text\":\"from Gemini\"}]},"));
    g_assert_true (g_str_has_suffix (response.body, "\r\n\r\n"));
    row = last_row (fixture);
    g_assert_cmpstr (row->api, ==, "gemini");
    g_assert_cmpint (row->prompt_tokens, ==, 11);
    g_assert_cmpint (row->completion_tokens, ==, 9);
  }

  /* Not streamed, the key in the query, the model with Google's prefix. */
  {
    g_auto(KpTestResponse) response = { 0 };
    g_autoptr(JsonNode) root = NULL;
    g_autoptr(KpRequestRow) row = NULL;

    send (fixture, "POST", "/v1beta/models/models%2Fgoogle%2Fgemini-text:generateContent?key=" TOKEN,
          CONTENTS, NULL, &response);
    g_assert_cmpuint (response.status, ==, 200);
    root = parse (response.body);
    g_assert_cmpstr (string_at (root, "$.candidates[0].content.parts[1].text"), ==,
                     "Hello from Gemini");
    g_assert_cmpstr (stats->last_path, ==, "/v1beta/models/gemini-text:generateContent");
    row = last_row (fixture);
    g_assert_cmpint (row->completion_tokens, ==, 9);
  }
}

/* A Gemini client, an OpenAI provider: its JSON-array stream, and a whole
 * answer with function calls.
 */
static void
test_gemini_client_translated (Fixture       *fixture,
                               gconstpointer  data)
{
  {
    g_auto(KpTestResponse) response = { 0 };
    g_autoptr(JsonNode) root = NULL;
    JsonArray *chunks;
    g_autoptr(GString) text = g_string_new (NULL);

    send (fixture, "POST", "/v1beta/models/oai%2Fchat:streamGenerateContent", CONTENTS,
          "x-goog-api-key", &response);
    g_assert_cmpuint (response.status, ==, 200);
    g_assert_cmpstr (soup_message_headers_get_content_type (response.headers, NULL), ==,
                     "application/json");
    root = parse (response.body);
    chunks = json_node_get_array (root);
    g_assert_cmpuint (json_array_get_length (chunks), >=, 2);
    for (guint i = 0; i < json_array_get_length (chunks); i++)
      {
        JsonObject *candidate = json_array_get_object_element (
          json_object_get_array_member (json_array_get_object_element (chunks, i), "candidates"), 0);
        JsonArray *parts = json_object_get_array_member (
          json_object_get_object_member (candidate, "content"), "parts");

        for (guint j = 0; j < json_array_get_length (parts); j++)
          g_string_append (text, json_object_get_string_member_with_default (
            json_array_get_object_element (parts, j), "text", ""));
      }
    g_assert_cmpuint (text->len, >, 0);
    {
      JsonObject *last = json_array_get_object_element (chunks, json_array_get_length (chunks) - 1);
      JsonObject *candidate = json_array_get_object_element (
        json_object_get_array_member (last, "candidates"), 0);

      g_assert_cmpstr (json_object_get_string_member (candidate, "finishReason"), ==, "STOP");
      g_assert_cmpint (json_object_get_int_member (json_object_get_object_member (last, "usageMetadata"),
                                                   "promptTokenCount"), >, 0);
    }
  }

  {
    g_auto(KpTestResponse) response = { 0 };
    g_autoptr(JsonNode) root = NULL;

    send (fixture, "POST", "/v1beta/models/oai%2Ftools:generateContent",
          "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"weather?\"}]}],"
          "\"tools\":[{\"functionDeclarations\":[{\"name\":\"get_weather\",\"parameters\":"
          "{\"type\":\"OBJECT\",\"properties\":{\"city\":{\"type\":\"STRING\"}}}}]}]}",
          "Authorization", &response);
    g_assert_cmpuint (response.status, ==, 200);
    root = parse (response.body);
    g_assert_cmpstr (string_at (root, "$.candidates[0].content.parts[1].functionCall.name"), !=, NULL);
    g_assert_cmpstr (string_at (root, "$.candidates[0].finishReason"), ==, "STOP");
  }
}

/* Google's errors: the key rests as §7 says, the next route answers. */
static void
test_failures (Fixture       *fixture,
               gconstpointer  data)
{
  static const struct { const char *model; KpCredentialState state; } cases[] = {
    { "shared/minute", KP_CREDENTIAL_COOLING },
    { "shared/day", KP_CREDENTIAL_EXHAUSTED },
    { "shared/missing", KP_CREDENTIAL_OK },
    { "shared/down", KP_CREDENTIAL_OK },
    { "shared/event", KP_CREDENTIAL_OK },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_auto(KpTestResponse) response = { 0 };
      g_autoptr(KpRequestRow) row = NULL;
      g_autofree char *body = g_strdup_printf (
        "{\"model\":\"%s\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
        cases[i].model);
      GPtrArray *credentials;

      send (fixture, "POST", "/v1/chat/completions", body, "Authorization", &response);
      g_assert_cmpuint (response.status, ==, 200);
      g_assert_cmpstr (soup_message_headers_get_one (response.headers, "x-keypool-provider"), ==,
                       "oai");
      row = last_row (fixture);
      g_assert_cmpint (row->attempts, ==, 2);
      g_assert_cmpint (kp_test_credential_state (fixture->rig.gateway, GEM_KEY), ==,
                       cases[i].state);
      if (cases[i].state == KP_CREDENTIAL_COOLING)
        {
          gint64 until = kp_credential_get_state_until (kp_test_credential (fixture->rig.gateway, GEM_KEY));
          gint64 now = g_get_real_time () / G_USEC_PER_SEC;

          /* RetryInfo's 3 s. */
          g_assert_cmpint (until, >=, now + 1);
          g_assert_cmpint (until, <=, now + 5);
        }

      credentials = kp_gateway_get_credentials (fixture->rig.gateway);
      for (guint j = 0; j < credentials->len; j++)
        g_assert_true (kp_gateway_reset_key (fixture->rig.gateway,
                                             kp_credential_get_id (g_ptr_array_index (credentials, j)),
                                             NULL));
    }

  /* The request's own fault comes back in Google's shape, not failed over. */
  {
    g_auto(KpTestResponse) response = { 0 };
    g_autoptr(JsonNode) root = NULL;

    send (fixture, "POST", "/v1beta/models/google%2Fgemini-bad:generateContent", CONTENTS,
          "x-goog-api-key", &response);
    g_assert_cmpuint (response.status, ==, 400);
    root = parse (response.body);
    g_assert_cmpint (int_at (root, "$.error.code"), ==, 400);
    g_assert_cmpstr (string_at (root, "$.error.status"), ==, "INVALID_ARGUMENT");
  }
}

/* An OpenAI client's embeddings on a Gemini provider: one batch upstream,
 * an OpenAI answer, and a ledger row priced from Keypool's estimate of the
 * input (Google counts no tokens), marked estimated.
 */
static void
test_openai_embeddings_to_gemini (Fixture       *fixture,
                                  gconstpointer  data)
{
  const char *body = "{\"model\":\"google/text-embedding\",\"input\":[\"one two\",\"three\"],"
                     "\"encoding_format\":\"float\"}";
  g_auto(KpTestResponse) response = { 0 };
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(KpRequestRow) row = NULL;
  KpMockStats *stats = kp_mock_upstream_get_stats (fixture->mock);
  gint64 tokens;

  send (fixture, "POST", "/v1/embeddings", body, "Authorization", &response);
  g_assert_cmpuint (response.status, ==, 200);
  g_assert_cmpstr (soup_message_headers_get_one (response.headers, "x-keypool-provider"), ==, "gem");
  g_assert_cmpstr (stats->last_path, ==, "/v1beta/models/gemini-embedding-001:batchEmbedContents");
  root = parse (response.body);
  g_assert_cmpstr (string_at (root, "$.object"), ==, "list");
  g_assert_cmpstr (string_at (root, "$.data[1].object"), ==, "embedding");
  g_assert_cmpint (int_at (root, "$.data[1].index"), ==, 1);
  g_assert_cmpstr (string_at (root, "$.model"), ==, "google/text-embedding");
  tokens = int_at (root, "$.usage.prompt_tokens");
  g_assert_cmpint (tokens, >, 0);
  g_assert_cmpint (int_at (root, "$.usage.total_tokens"), ==, tokens);

  row = last_row (fixture);
  g_assert_cmpstr (row->api, ==, "openai-embeddings");
  g_assert_cmpstr (row->provider, ==, "gem");
  g_assert_cmpint (row->status, ==, 200);
  g_assert_cmpint (row->prompt_tokens, ==, tokens);
  g_assert_cmpint (row->completion_tokens, ==, 0);
  g_assert_true (row->tokens_estimated);
  g_assert_cmpstr (row->cost_source, ==, "estimated");
  /* $0.15 per million tokens is 150 nano-USD a token. */
  g_assert_cmpint (row->cost_nano, ==, tokens * 150);

  /* In base64 when asked: little-endian float32, the mock's values exactly. */
  {
    const char *base64_body = "{\"model\":\"google/text-embedding\",\"input\":\"one\","
                              "\"encoding_format\":\"base64\"}";
    g_auto(KpTestResponse) second = { 0 };
    g_autoptr(JsonNode) answer = NULL;
    g_autofree guchar *bytes = NULL;
    gsize len = 0;

    send (fixture, "POST", "/v1/embeddings", base64_body, "Authorization", &second);
    g_assert_cmpuint (second.status, ==, 200);
    answer = parse (second.body);
    bytes = g_base64_decode (string_at (answer, "$.data[0].embedding"), &len);
    g_assert_cmpuint (len, ==, 8 * sizeof (guint32));
    for (guint j = 0; j < 8; j++)
      {
        guint32 bits;
        float value;

        memcpy (&bits, bytes + j * sizeof bits, sizeof bits);
        bits = GUINT32_FROM_LE (bits);
        memcpy (&value, &bits, sizeof value);
        g_assert_cmpfloat (value, ==, 1 / 8.0f + j / 128.0f);
      }
  }
}

/* Refusals and Keypool's own answers in Google's shape. */
static void
test_gemini_refusals_and_lists (Fixture       *fixture,
                                gconstpointer  data)
{
  {
    g_auto(KpTestResponse) response = { 0 };
    g_autoptr(JsonNode) root = NULL;

    send (fixture, "POST", "/v1beta/models/google%2Fgemini-text:generateContent", CONTENTS, NULL,
          &response);
    g_assert_cmpuint (response.status, ==, 401);
    root = parse (response.body);
    g_assert_cmpint (int_at (root, "$.error.code"), ==, 401);
    g_assert_cmpstr (string_at (root, "$.error.status"), ==, "UNAUTHENTICATED");
    g_assert_null (strstr (response.body, TOKEN));
  }
  {
    g_auto(KpTestResponse) response = { 0 };
    g_autoptr(JsonNode) root = NULL;

    send (fixture, "POST", "/v1beta/models/no-such-model:generateContent", CONTENTS,
          "x-goog-api-key", &response);
    g_assert_cmpuint (response.status, ==, 404);
    root = parse (response.body);
    g_assert_cmpstr (string_at (root, "$.error.status"), ==, "NOT_FOUND");
  }
  {
    g_auto(KpTestResponse) response = { 0 };
    g_autoptr(JsonNode) root = NULL;

    send (fixture, "POST", "/v1beta/models/google%2Fgemini-text:generateContent", "{\"contents\":[]}",
          "x-goog-api-key", &response);
    g_assert_cmpuint (response.status, ==, 400);
    root = parse (response.body);
    g_assert_cmpstr (string_at (root, "$.error.status"), ==, "INVALID_ARGUMENT");
  }
  {
    g_auto(KpTestResponse) response = { 0 };

    send (fixture, "GET", "/v1beta/models/google%2Fgemini-text:generateContent", NULL,
          "x-goog-api-key", &response);
    g_assert_cmpuint (response.status, ==, 405);
  }
  {
    g_auto(KpTestResponse) response = { 0 };
    g_autoptr(JsonNode) root = NULL;

    send (fixture, "GET", "/v1beta/models", NULL, "x-goog-api-key", &response);
    g_assert_cmpuint (response.status, ==, 200);
    root = parse (response.body);
    g_assert_nonnull (strstr (response.body, "\"name\":\"models/google/gemini-text\""));
    g_assert_cmpstr (string_at (root, "$.models[0].supportedGenerationMethods[0]"), ==,
                     "generateContent");
  }
  {
    g_auto(KpTestResponse) response = { 0 };
    g_autoptr(JsonNode) root = NULL;

    send (fixture, "POST", "/v1beta/models/google%2Fgemini-text:countTokens", CONTENTS,
          "x-goog-api-key", &response);
    g_assert_cmpuint (response.status, ==, 200);
    root = parse (response.body);
    g_assert_cmpint (int_at (root, "$.totalTokens"), >, 0);
  }
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

#define ADD(name, func) \
  g_test_add ("/keypool/gemini-relay/" name, Fixture, NULL, fixture_setup, func, fixture_teardown)

  ADD ("openai-to-gemini-stream", test_openai_to_gemini_stream);
  ADD ("openai-tool-round-trip", test_openai_tool_round_trip);
  ADD ("gemini-passthrough", test_gemini_passthrough);
  ADD ("gemini-client-translated", test_gemini_client_translated);
  ADD ("failures", test_failures);
  ADD ("refusals-and-lists", test_gemini_refusals_and_lists);
  ADD ("openai-embeddings-to-gemini", test_openai_embeddings_to_gemini);

  return g_test_run ();
}
