/* test-anthropic.c: Anthropic Messages ⇄ OpenAI Chat Completions
 *
 * Each translation runs on a fixture written from the protocol facts and is
 * compared, as parsed JSON, with the fixture of what the other side must
 * receive. Streams are compared event by event.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include "config.h"

#include <string.h>

#include "kp-sse.h"
#include "kp-test-util.h"
#include "wire/kp-wire-anthropic-private.h"
#include "wire/kp-wire-openai-private.h"

/* A stream from a provider of one wire to a client of the other, through
 * the hub's events.
 */
typedef enum
{
  A2O,  /* Anthropic provider, OpenAI client */
  O2A,  /* OpenAI provider, Anthropic client */
} Direction;

typedef struct
{
  KpWireRequest *req;
  KpWireBridge  *bridge;
} Translator;

static Translator *
translator_new (Direction   direction,
                const char *model,
                gboolean    include_usage)
{
  Translator *self = g_new0 (Translator, 1);
  const KpWire *upstream = direction == A2O ? &kp_wire_anthropic : &kp_wire_openai_chat;
  const KpWire *client = direction == A2O ? &kp_wire_openai_chat : &kp_wire_anthropic;
  g_autoptr(GBytes) body = g_bytes_new_static ("{}", 2);

  self->req = kp_wire_request_new (client, body, NULL);
  self->req->model = g_strdup (model);
  self->req->wants_usage = include_usage;
  self->bridge = kp_wire_bridge_new (upstream, client, self->req, NULL);
  return self;
}

static void
translator_free (Translator *self)
{
  kp_wire_bridge_free (self->bridge);
  kp_wire_request_free (self->req);
  g_free (self);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Translator, translator_free)

static KpStreamStatus
translator_feed (Translator *self,
                 const char *name,
                 const char *data,
                 gsize       len,
                 GString    *out)
{
  gboolean forward_raw = TRUE;
  KpStreamStatus status = kp_wire_bridge_feed (self->bridge, name, name ? strlen (name) : 0,
                                               data, len, out, &forward_raw);

  /* A translation never passes the provider's own bytes on. */
  g_assert_false (forward_raw);
  return status;
}

/* `created` is the time of the translation. */
static void
drop_volatile (JsonNode *node)
{
  if (node != NULL && JSON_NODE_HOLDS_OBJECT (node))
    json_object_remove_member (json_node_get_object (node), "created");
}

/* The translation's time left out; a difference fails the test, and the
 * other cases still run.
 */
static void
assert_json_equal (JsonNode   *actual,
                   JsonNode   *expected,
                   const char *what)
{
  drop_volatile (actual);
  drop_volatile (expected);
  if (!json_node_equal (actual, expected))
    {
      g_autofree char *a = json_to_string (actual, TRUE);
      g_autofree char *e = json_to_string (expected, TRUE);

      g_test_message ("%s differs.\nGot:\n%s\nExpected:\n%s", what, a, e);
      g_test_fail ();
    }
}

static void
check_request (const char *input,
               const char *expected_name,
               gboolean    from_openai)
{
  g_autoptr(JsonNode) request = kp_test_load_json ("anthropic", input);
  g_autoptr(JsonNode) expected = kp_test_load_json ("anthropic", expected_name);
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) actual = NULL;

  if (from_openai)
    actual = kp_anthropic_request_from_openai (json_node_get_object (request), &error);
  else
    actual = kp_anthropic_request_to_openai (json_node_get_object (request), &error);
  g_assert_no_error (error);
  g_assert_nonnull (actual);
  assert_json_equal (actual, expected, expected_name);
}

static void
test_request_from_openai (void)
{
  check_request ("openai-request.json", "openai-request.anthropic.json", TRUE);
  check_request ("openai-request-thinking.json", "openai-request-thinking.anthropic.json", TRUE);
}

static void
test_request_to_openai (void)
{
  check_request ("anthropic-request.json", "anthropic-request.openai.json", FALSE);
}

static void
expect_invalid_request (const char *json,
                        gboolean    from_openai)
{
  g_autoptr(JsonNode) request = kp_test_parse_json (json, -1);
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) result = NULL;

  if (from_openai)
    result = kp_anthropic_request_from_openai (json_node_get_object (request), &error);
  else
    result = kp_anthropic_request_to_openai (json_node_get_object (request), &error);
  g_assert_null (result);
  g_assert_error (error, KP_WIRE_ERROR, KP_WIRE_ERROR_INVALID);
  g_assert_nonnull (error->message);
}

static void
test_request_invalid (void)
{
  expect_invalid_request ("{\"model\":\"m\",\"messages\":{}}", TRUE);
  expect_invalid_request ("{\"model\":\"m\",\"messages\":[{\"content\":\"hi\"}]}", TRUE);
  expect_invalid_request ("{\"model\":\"m\",\"messages\":[{\"role\":\"robot\","
                          "\"content\":\"x\"}]}", TRUE);
  expect_invalid_request ("{\"model\":\"m\",\"n\":2,\"messages\":[{\"role\":\"user\","
                          "\"content\":\"x\"}]}", TRUE);
  expect_invalid_request ("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\","
                          "\"image_url\":{\"url\":\"ftp://x/y.png\"}}]}]}", TRUE);
  expect_invalid_request ("{\"max_tokens\":5}", FALSE);
  expect_invalid_request ("{\"messages\":[{\"role\":\"robot\",\"content\":\"x\"}]}", FALSE);
}

/* What Claude Code (2.1) sends: a system turn among the messages, adaptive
 * thinking with its effort in output_config, and context management, which
 * OpenAI has no word for.
 */
static void
test_request_claude_code (void)
{
  g_autoptr(JsonNode) request = kp_test_parse_json (
    "{\"model\":\"claude-opus-5-5\",\"max_tokens\":32000,\"stream\":true,"
    "\"system\":[{\"type\":\"text\",\"text\":\"You are an agent.\","
    "\"cache_control\":{\"type\":\"ephemeral\"}}],"
    "\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Say hello\"}]},"
    "{\"role\":\"system\",\"content\":[{\"type\":\"text\",\"text\":\"# Environment\\nlinux\"}]}],"
    "\"thinking\":{\"type\":\"adaptive\",\"display\":\"omitted\"},"
    "\"output_config\":{\"effort\":\"high\"},"
    "\"context_management\":{\"edits\":[{\"type\":\"clear_thinking_20251015\",\"keep\":\"all\"}]}}",
    -1);
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) result = kp_anthropic_request_to_openai (json_node_get_object (request), &error);
  JsonObject *out;
  JsonArray *messages;

  g_assert_no_error (error);
  out = json_node_get_object (result);
  messages = json_object_get_array_member (out, "messages");
  g_assert_cmpuint (json_array_get_length (messages), ==, 3);
  g_assert_cmpstr (json_object_get_string_member (json_array_get_object_element (messages, 0), "role"),
                   ==, "system");
  g_assert_cmpstr (json_object_get_string_member (json_array_get_object_element (messages, 1), "role"),
                   ==, "user");
  g_assert_cmpstr (json_object_get_string_member (json_array_get_object_element (messages, 2), "role"),
                   ==, "system");
  g_assert_cmpstr (json_object_get_string_member (json_array_get_object_element (messages, 2), "content"),
                   ==, "# Environment\nlinux");
  g_assert_cmpstr (json_object_get_string_member (out, "reasoning_effort"), ==, "high");
  g_assert_false (json_object_has_member (out, "context_management"));
  g_assert_false (json_object_has_member (out, "output_config"));
  g_assert_false (json_object_has_member (out, "thinking"));
  g_assert_true (json_object_get_boolean_member (json_object_get_object_member (out, "stream_options"),
                                                 "include_usage"));
}

/* OpenAI -> Anthropic -> OpenAI keeps the conversation and the tools. */
static void
test_request_round_trip (void)
{
  const char *original =
    "{\"model\":\"m\",\"max_tokens\":300,\"messages\":["
    "{\"role\":\"system\",\"content\":\"Be kind.\"},"
    "{\"role\":\"user\",\"content\":\"Weather?\"},"
    "{\"role\":\"assistant\",\"content\":\"Looking.\",\"tool_calls\":[{\"id\":\"call_1\","
    "\"type\":\"function\",\"function\":{\"name\":\"w\","
    "\"arguments\":\"{\\\"c\\\":\\\"Oslo\\\"}\"}}]},"
    "{\"role\":\"tool\",\"tool_call_id\":\"call_1\",\"content\":\"cold\"},"
    "{\"role\":\"user\",\"content\":\"Thanks\"}],"
    "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"w\",\"description\":\"d\","
    "\"parameters\":{\"type\":\"object\",\"properties\":{\"c\":{\"type\":\"string\"}}}}}],"
    "\"tool_choice\":\"auto\",\"stop\":[\"X\"]}";
  g_autoptr(JsonNode) request = kp_test_parse_json (original, -1);
  g_autoptr(JsonNode) anthropic = NULL;
  g_autoptr(JsonNode) back = NULL;
  g_autoptr(GError) error = NULL;

  anthropic = kp_anthropic_request_from_openai (json_node_get_object (request), &error);
  g_assert_no_error (error);
  back = kp_anthropic_request_to_openai (json_node_get_object (anthropic), &error);
  g_assert_no_error (error);

  /* The conversation, the tools and the settings come back as they were. */
  assert_json_equal (back, request, "round trip");
}

static void
check_response (const char *input,
                const char *expected_name,
                const char *model,
                gboolean    to_openai)
{
  g_autoptr(JsonNode) response = kp_test_load_json ("anthropic", input);
  g_autoptr(JsonNode) expected = kp_test_load_json ("anthropic", expected_name);
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) actual = NULL;

  if (to_openai)
    actual = kp_anthropic_response_to_openai (json_node_get_object (response), model, &error);
  else
    actual = kp_anthropic_response_from_openai (json_node_get_object (response), model, &error);
  g_assert_no_error (error);
  g_assert_nonnull (actual);
  if (to_openai)
    g_assert_true (json_object_has_member (json_node_get_object (actual), "created"));
  assert_json_equal (actual, expected, expected_name);
}

static void
test_response_to_openai (void)
{
  check_response ("anthropic-response.json", "anthropic-response.openai.json",
                  "claude-sonnet", TRUE);
}

static void
test_response_from_openai (void)
{
  check_response ("openai-response.json", "openai-response.anthropic.json", "claude-x", FALSE);
}

static void
test_stop_reasons (void)
{
  static const struct { const char *anthropic; const char *openai; } to_openai[] = {
    { "end_turn", "stop" },
    { "stop_sequence", "stop" },
    { "max_tokens", "length" },
    { "tool_use", "tool_calls" },
    { "refusal", "content_filter" },
    { "pause_turn", "stop" },
    { "model_context_window_exceeded", "stop" },
  };
  static const struct { const char *openai; const char *anthropic; } from_openai[] = {
    { "stop", "end_turn" },
    { "length", "max_tokens" },
    { "tool_calls", "tool_use" },
    { "content_filter", "refusal" },
    { "function_call", "tool_use" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (to_openai); i++)
    {
      g_autofree char *json = g_strdup_printf (
        "{\"id\":\"msg_1\",\"content\":[],\"stop_reason\":\"%s\"}", to_openai[i].anthropic);
      g_autoptr(JsonNode) message = kp_test_parse_json (json, -1);
      g_autoptr(JsonNode) completion =
        kp_anthropic_response_to_openai (json_node_get_object (message), "m", NULL);
      JsonObject *choice = json_array_get_object_element (
        json_object_get_array_member (json_node_get_object (completion), "choices"), 0);

      g_assert_cmpstr (json_object_get_string_member (choice, "finish_reason"), ==,
                       to_openai[i].openai);
      /* No text block: content is null, not "". */
      g_assert_true (json_object_get_null_member (json_object_get_object_member (choice, "message"),
                                                  "content"));
    }

  for (guint i = 0; i < G_N_ELEMENTS (from_openai); i++)
    {
      g_autofree char *json = g_strdup_printf (
        "{\"id\":\"c\",\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":\"x\"},"
        "\"finish_reason\":\"%s\"}]}", from_openai[i].openai);
      g_autoptr(JsonNode) completion = kp_test_parse_json (json, -1);
      g_autoptr(JsonNode) message =
        kp_anthropic_response_from_openai (json_node_get_object (completion), "m", NULL);

      JsonObject *object = json_node_get_object (message);

      g_assert_cmpstr (json_object_get_string_member (object, "stop_reason"), ==,
                       from_openai[i].anthropic);
    }
}

/* Anthropic's usage for a cache write and a cache read, in KpUsage terms,
 * and what it costs at $3 / $15 / $0.30 / $3.75 per million tokens.
 */
static void
test_usage_and_cost (void)
{
  KpOffering offering = { .input = 3.0, .output = 15.0, .cached_input = 0.3, .cache_write = 3.75 };
  g_autoptr(JsonNode) message = kp_test_load_json ("anthropic", "anthropic-response.json");
  g_autoptr(JsonNode) completion = NULL;
  KpUsage usage = { 0 };
  KpUsage back = { 0 };
  gint64 cost = -1;

  g_assert_true (kp_usage_parse_anthropic (&usage,
    json_object_get_object_member (json_node_get_object (message), "usage")));
  g_assert_cmpint (usage.prompt_tokens, ==, 100 + 2000 + 8000);
  g_assert_cmpint (usage.cached_tokens, ==, 8000);
  g_assert_cmpint (usage.cache_write_tokens, ==, 2000);
  g_assert_cmpint (usage.completion_tokens, ==, 500);

  /* 100 × 3 + 8000 × 0.30 + 2000 × 3.75 + 500 × 15 = 17 700 USD per million
   * tokens, that is $0.0177 = 17 700 000 nano-USD.
   */
  g_assert_cmpint (kp_usage_get_cost (&usage, &offering, &cost), ==, KP_COST_COMPUTED);
  g_assert_cmpint (cost, ==, 17700000);

  /* The OpenAI usage written for the client reads back the same. */
  completion = kp_anthropic_response_to_openai (json_node_get_object (message), "m", NULL);
  g_assert_true (kp_usage_parse_openai (&back,
    json_object_get_object_member (json_node_get_object (completion), "usage")));
  g_assert_cmpint (back.prompt_tokens, ==, usage.prompt_tokens);
  g_assert_cmpint (back.cached_tokens, ==, usage.cached_tokens);
  g_assert_cmpint (back.cache_write_tokens, ==, usage.cache_write_tokens);
  g_assert_cmpint (back.completion_tokens, ==, usage.completion_tokens);
  g_assert_cmpint (kp_usage_get_cost (&back, &offering, &cost), ==, KP_COST_COMPUTED);
  g_assert_cmpint (cost, ==, 17700000);
}

static void
assert_error_body (const char *body,
                   const char *type,
                   const char *message,
                   gboolean    anthropic)
{
  g_autoptr(JsonNode) node = kp_test_parse_json (body, -1);
  JsonObject *root = json_node_get_object (node);
  JsonObject *error = json_object_get_object_member (root, "error");

  if (anthropic)
    g_assert_cmpstr (json_object_get_string_member (root, "type"), ==, "error");
  else
    g_assert_false (json_object_has_member (root, "type"));
  g_assert_cmpstr (json_object_get_string_member (error, "type"), ==, type);
  g_assert_cmpstr (json_object_get_string_member (error, "message"), ==, message);
}

static void
test_errors (void)
{
  static const struct { guint status; const char *type; } types[] = {
    { 400, "invalid_request_error" }, { 401, "authentication_error" }, { 402, "billing_error" },
    { 403, "permission_error" }, { 404, "not_found_error" }, { 413, "request_too_large" },
    { 422, "invalid_request_error" }, { 429, "rate_limit_error" }, { 500, "api_error" },
    { 502, "api_error" }, { 503, "overloaded_error" }, { 529, "overloaded_error" },
  };
  const char *openai = "{\"error\":{\"message\":\"You exceeded your current quota\","
                       "\"type\":\"insufficient_quota\",\"param\":null,"
                       "\"code\":\"insufficient_quota\"}}";
  const char *openrouter = "{\"error\":{\"message\":\"Provider returned error\",\"code\":502,"
                           "\"metadata\":{\"raw\":\"x\"}}}";
  const char *anthropic = "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\","
                          "\"message\":\"Overloaded\"},\"request_id\":\"req_1\"}";
  g_autofree char *body = NULL;

  for (guint i = 0; i < G_N_ELEMENTS (types); i++)
    g_assert_cmpstr (kp_anthropic_error_type (types[i].status), ==, types[i].type);

  body = kp_anthropic_error_json (404, "No model \"x\".");
  assert_error_body (body, "not_found_error", "No model \"x\".", TRUE);
  g_clear_pointer (&body, g_free);

  body = kp_anthropic_error_from_openai (429, openai, strlen (openai));
  assert_error_body (body, "rate_limit_error", "You exceeded your current quota", TRUE);
  g_clear_pointer (&body, g_free);

  /* OpenRouter's status in the body counts when the HTTP status says nothing. */
  body = kp_anthropic_error_from_openai (200, openrouter, strlen (openrouter));
  assert_error_body (body, "api_error", "Provider returned error", TRUE);
  g_clear_pointer (&body, g_free);

  body = kp_anthropic_error_from_openai (502, "Bad gateway\n", strlen ("Bad gateway\n"));
  assert_error_body (body, "api_error", "Bad gateway", TRUE);
  g_clear_pointer (&body, g_free);

  body = kp_openai_error_from_upstream (529, anthropic, strlen (anthropic));
  assert_error_body (body, "overloaded_error", "Overloaded", FALSE);
  g_clear_pointer (&body, g_free);

  body = kp_openai_error_from_upstream (401, "", 0);
  assert_error_body (body, "authentication_error",
                     "The provider answered with HTTP status 401.", FALSE);
}

/* Streams */

static void
assert_events_equal (const char *actual,
                     gsize       actual_len,
                     const char *expected_name)
{
  gsize expected_len;
  g_autofree char *expected = kp_test_load_text ("anthropic", expected_name, &expected_len);
  g_auto(KpTestEvents) got = kp_test_scan_events (actual, actual_len);
  g_auto(KpTestEvents) want = kp_test_scan_events (expected, expected_len);

  for (guint i = 0; i < MIN (got.names->len, want.names->len); i++)
    {
      const char *got_data = got.datas->pdata[i];
      const char *want_data = want.datas->pdata[i];
      g_autofree char *what = g_strdup_printf ("%s event %u", expected_name, i);

      g_assert_cmpstr (got.names->pdata[i], ==, want.names->pdata[i]);
      if (g_str_equal (want_data, "[DONE]"))
        g_assert_cmpstr (got_data, ==, want_data);
      else
        {
          g_autoptr(JsonNode) a = kp_test_parse_json (got_data, -1);
          g_autoptr(JsonNode) e = kp_test_parse_json (want_data, -1);

          assert_json_equal (a, e, what);
        }
    }
  g_assert_cmpuint (got.names->len, ==, want.names->len);
}

/* Feeds the upstream events of @input, stopping after @limit events
 * (G_MAXUINT for all), and returns the status of the last one.
 */
static KpStreamStatus
run_stream (Translator *translator,
            const char         *input,
            guint               limit,
            GString            *out)
{
  gsize len;
  g_autofree char *text = kp_test_load_text ("anthropic", input, &len);
  KpSseEvent event = { .data = g_string_new (NULL) };
  KpStreamStatus status = KP_STREAM_CONTINUE;
  gsize offset = 0;
  gsize used;
  guint fed = 0;

  while (fed < limit && (used = kp_sse_next_event (text + offset, len - offset, &event)) > 0)
    {
      offset += used;
      if (!event.has_data)
        continue;
      {
        g_autofree char *name = event.name != NULL ? g_strndup (event.name, event.name_len) : NULL;

        /* Only the last event may end the stream; a ping is a sign of life. */
        g_assert_true (status == KP_STREAM_CONTINUE || status == KP_STREAM_KEEPALIVE);
        status = translator_feed (translator, name, event.data->str, event.data->len, out);
        fed++;
      }
    }
  g_string_free (event.data, TRUE);
  return status;
}

static void
check_stream (Direction direction,
              const char       *model,
              gboolean          include_usage,
              const char       *input,
              const char       *expected)
{
  g_autoptr(Translator) translator = translator_new (direction, model,
                                                                        include_usage);
  g_autoptr(GString) out = g_string_new (NULL);

  g_assert_cmpint (run_stream (translator, input, G_MAXUINT, out), ==, KP_STREAM_END);
  g_assert_true (kp_wire_bridge_has_content (translator->bridge));
  g_assert_true (kp_wire_bridge_has_finish (translator->bridge));
  assert_events_equal (out->str, out->len, expected);
}

static void
test_stream_anthropic_to_openai (void)
{
  g_autoptr(Translator) translator = NULL;
  g_autoptr(GString) out = g_string_new (NULL);
  const KpUsage *usage;

  check_stream (A2O, "claude-sonnet", TRUE,
                "anthropic-stream.sse", "anthropic-stream.openai.sse");
  check_stream (A2O, "haiku", FALSE,
                "anthropic-stream-text.sse", "anthropic-stream-text.openai.sse");

  translator = translator_new (A2O, "m", TRUE);
  run_stream (translator, "anthropic-stream.sse", G_MAXUINT, out);
  usage = kp_wire_bridge_get_usage (translator->bridge);
  g_assert_true (usage->known);
  g_assert_cmpint (usage->prompt_tokens, ==, 10100);
  g_assert_cmpint (usage->cached_tokens, ==, 8000);
  g_assert_cmpint (usage->cache_write_tokens, ==, 2000);
  g_assert_cmpint (usage->completion_tokens, ==, 500);

  /* After the end, nothing more is written. */
  g_string_truncate (out, 0);
  g_assert_cmpint (translator_feed (translator, "message_stop",
                                              "{\"type\":\"message_stop\"}", 23, out),
                   ==, KP_STREAM_END);
  g_assert_cmpuint (out->len, ==, 0);
}

static void
test_stream_openai_to_anthropic (void)
{
  g_autoptr(Translator) translator = NULL;
  g_autoptr(GString) out = g_string_new (NULL);
  const KpUsage *usage;

  check_stream (O2A, "claude-x", FALSE,
                "openai-stream.sse", "openai-stream.anthropic.sse");
  check_stream (O2A, "claude-y", FALSE,
                "openai-stream-text.sse", "openai-stream-text.anthropic.sse");

  translator = translator_new (O2A, "m", FALSE);
  run_stream (translator, "openai-stream.sse", G_MAXUINT, out);
  usage = kp_wire_bridge_get_usage (translator->bridge);
  g_assert_cmpint (usage->prompt_tokens, ==, 10100);
  g_assert_cmpint (usage->cached_tokens, ==, 8000);
  g_assert_cmpint (usage->cache_write_tokens, ==, 2000);
  g_assert_cmpint (usage->completion_tokens, ==, 500);
}

/* Before the answer begins the relay may still fail over: what the
 * translator wrote so far is only the opening.
 */
static void
test_stream_has_content (void)
{
  const char *role_chunk =
    "{\"id\":\"x\",\"choices\":[{\"index\":0,"
    "\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}";
  g_autoptr(Translator) a2o = translator_new (A2O, "m", FALSE);
  g_autoptr(Translator) o2a = translator_new (O2A, "m", FALSE);
  g_autoptr(GString) out = g_string_new (NULL);

  /* message_start, then the empty text block start and a ping. */
  run_stream (a2o, "anthropic-stream-text.sse", 2, out);
  g_assert_false (kp_wire_bridge_has_content (a2o->bridge));
  g_assert_nonnull (strstr (out->str, "\"role\":\"assistant\""));
  g_assert_null (strstr (out->str, "\"content\":\"Hel\""));

  g_string_truncate (out, 0);
  g_assert_cmpint (translator_feed (o2a, NULL, role_chunk, strlen (role_chunk), out),
                   ==, KP_STREAM_CONTINUE);
  g_assert_false (kp_wire_bridge_has_content (o2a->bridge));
  g_assert_true (g_str_has_prefix (out->str, "event: message_start\n"));
  g_assert_false (kp_wire_bridge_has_finish (o2a->bridge));
}

static void
test_stream_errors (void)
{
  const char *anthropic_error = "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\","
                                "\"message\":\"Overloaded\"}}";
  const char *openai_error = "{\"error\":{\"message\":\"upstream failed\",\"code\":502}}";
  g_autoptr(Translator) a2o = translator_new (A2O, "m", TRUE);
  g_autoptr(Translator) a2o_unnamed = translator_new (A2O, "m", TRUE);
  g_autoptr(Translator) o2a = translator_new (O2A, "m", FALSE);
  g_autoptr(GString) out = g_string_new (NULL);
  gsize before;

  /* An error before any content: the relay may fail over. */
  run_stream (a2o, "anthropic-stream.sse", 1, out);
  before = out->len;
  g_assert_cmpint (translator_feed (a2o, "error", anthropic_error,
                                              strlen (anthropic_error), out), ==, KP_STREAM_ERROR);
  g_assert_cmpuint (out->len, ==, before);
  g_assert_false (kp_wire_bridge_has_content (a2o->bridge));

  /* The data's type says it as well as the event name. */
  g_assert_cmpint (translator_feed (a2o_unnamed, NULL, anthropic_error,
                                              strlen (anthropic_error), out), ==, KP_STREAM_ERROR);
  g_assert_cmpuint (out->len, ==, before);

  g_string_truncate (out, 0);
  g_assert_cmpint (translator_feed (o2a, NULL, openai_error, strlen (openai_error), out),
                   ==, KP_STREAM_ERROR);
  g_assert_cmpuint (out->len, ==, 0);

  /* Data that is not JSON is ignored. */
  g_assert_cmpint (translator_feed (o2a, NULL, "garbage", 7, out),
                   ==, KP_STREAM_CONTINUE);
  g_assert_cmpuint (out->len, ==, 0);
}

/* An upstream that closes without its last event. */
static void
test_stream_cut (void)
{
  g_autoptr(Translator) early = translator_new (A2O, "haiku", FALSE);
  g_autoptr(Translator) late = translator_new (A2O, "haiku", FALSE);
  g_autoptr(Translator) o2a_early = translator_new (O2A, "claude-y", FALSE);
  g_autoptr(Translator) o2a_late = translator_new (O2A, "claude-y", FALSE);
  g_autoptr(GString) out = g_string_new (NULL);
  gsize before;

  /* Cut in the middle of the text: no ending, the relay reports the cut. */
  run_stream (early, "anthropic-stream-text.sse", 4, out);
  g_assert_true (kp_wire_bridge_has_content (early->bridge));
  g_assert_false (kp_wire_bridge_has_finish (early->bridge));
  before = out->len;
  g_assert_false (kp_wire_bridge_finish (early->bridge, out));
  g_assert_cmpuint (out->len, ==, before);

  /* Cut after message_delta: the answer is whole, the client gets [DONE]. */
  g_string_truncate (out, 0);
  run_stream (late, "anthropic-stream-text.sse", 6, out);
  g_assert_true (kp_wire_bridge_has_finish (late->bridge));
  g_assert_true (kp_wire_bridge_finish (late->bridge, out));
  assert_events_equal (out->str, out->len, "anthropic-stream-text.openai.sse");

  g_string_truncate (out, 0);
  run_stream (o2a_early, "openai-stream-text.sse", 2, out);
  g_assert_false (kp_wire_bridge_has_finish (o2a_early->bridge));
  before = out->len;
  g_assert_false (kp_wire_bridge_finish (o2a_early->bridge, out));
  g_assert_cmpuint (out->len, ==, before);

  /* Cut before [DONE]: the finish reason and usage came, so the end is known. */
  g_string_truncate (out, 0);
  run_stream (o2a_late, "openai-stream-text.sse", 3, out);
  g_assert_true (kp_wire_bridge_finish (o2a_late->bridge, out));
  assert_events_equal (out->str, out->len, "openai-stream-text.anthropic.sse");
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/keypool/anthropic/request/from-openai", test_request_from_openai);
  g_test_add_func ("/keypool/anthropic/request/to-openai", test_request_to_openai);
  g_test_add_func ("/keypool/anthropic/request/invalid", test_request_invalid);
  g_test_add_func ("/keypool/anthropic/request/claude-code", test_request_claude_code);
  g_test_add_func ("/keypool/anthropic/request/round-trip", test_request_round_trip);
  g_test_add_func ("/keypool/anthropic/response/to-openai", test_response_to_openai);
  g_test_add_func ("/keypool/anthropic/response/from-openai", test_response_from_openai);
  g_test_add_func ("/keypool/anthropic/response/stop-reasons", test_stop_reasons);
  g_test_add_func ("/keypool/anthropic/usage-and-cost", test_usage_and_cost);
  g_test_add_func ("/keypool/anthropic/errors", test_errors);
  g_test_add_func ("/keypool/anthropic/stream/anthropic-to-openai",
                   test_stream_anthropic_to_openai);
  g_test_add_func ("/keypool/anthropic/stream/openai-to-anthropic",
                   test_stream_openai_to_anthropic);
  g_test_add_func ("/keypool/anthropic/stream/has-content", test_stream_has_content);
  g_test_add_func ("/keypool/anthropic/stream/errors", test_stream_errors);
  g_test_add_func ("/keypool/anthropic/stream/cut", test_stream_cut);

  return g_test_run ();
}
