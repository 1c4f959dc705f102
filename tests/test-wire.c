/* test-wire.c: the wire registry, the hub, and the Responses wire
 *
 * Every chat-like client wire is turned into every upstream wire through
 * the canonical request, and every upstream stream into every client's,
 * from fixtures written from the protocol facts. Nothing here does I/O.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include "config.h"

#include <string.h>

#include "kp-sse.h"
#include "kp-test-util.h"
#include "wire/kp-wire-anthropic-private.h"
#include "wire/kp-wire-gemini-private.h"
#include "wire/kp-wire-openai-private.h"

/* A client's request, parsed as the relay parses it. */
static KpWireRequest *
request_for (const KpWire *wire,
             const char   *json,
             GError      **error)
{
  g_autoptr(GBytes) body = g_bytes_new (json, strlen (json));
  KpWireRequest *req = kp_wire_request_new (wire, body, NULL);

  if (!kp_wire_request_parse (req, error))
    {
      kp_wire_request_free (req);
      return NULL;
    }
  return req;
}

static KpOffering *
offering_new (const char *upstream_id,
              gboolean    reasoning)
{
  KpOffering *offering = g_new0 (KpOffering, 1);

  offering->model_id = g_strdup (upstream_id);
  offering->upstream_id = g_strdup (upstream_id);
  offering->reasoning = reasoning;
  return offering;
}

static void
offering_free (KpOffering *offering)
{
  g_free (offering->model_id);
  g_free (offering->upstream_id);
  g_free (offering);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (KpOffering, offering_free)

/* The body @upstream gets for @req, parsed. */
static JsonObject *
build_for (KpWireRequest *req,
           const KpWire  *upstream,
           const char    *upstream_id,
           gboolean       reasoning,
           gboolean      *strip_usage)
{
  g_autoptr(KpOffering) offering = offering_new (upstream_id, reasoning);
  KpWireTarget target = { .offering = offering };
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) body = kp_wire_build_upstream (req, upstream, &target, &error);
  g_autoptr(JsonNode) node = NULL;
  gsize len;
  const char *data;

  g_assert_no_error (error);
  g_assert_nonnull (body);
  if (strip_usage != NULL)
    *strip_usage = target.strip_usage;
  data = g_bytes_get_data (body, &len);
  node = kp_test_parse_json (data, len);
  g_assert_true (JSON_NODE_HOLDS_OBJECT (node));
  return json_object_ref (json_node_get_object (node));
}

static void
test_registry (void)
{
  g_assert_true (kp_wire_for_route ("/v1/chat/completions") == &kp_wire_openai_chat);
  g_assert_true (kp_wire_for_route ("/v1/messages") == &kp_wire_anthropic);
  g_assert_true (kp_wire_for_route ("/v1/messages/count_tokens") == &kp_wire_anthropic);
  g_assert_true (kp_wire_for_route ("/v1/responses") == &kp_wire_openai_responses);
  g_assert_true (kp_wire_for_route ("/v1/responses/input_tokens") == &kp_wire_openai_responses);
  g_assert_true (kp_wire_for_route ("/v1/embeddings") == &kp_wire_openai_embeddings);
  g_assert_true (kp_wire_for_route ("/v1/completions") == &kp_wire_openai_completions);
  g_assert_null (kp_wire_for_route ("/v1/messagesx"));
  g_assert_null (kp_wire_for_route ("/v1/nothing"));
  g_assert_true (kp_wire_serves_route (&kp_wire_anthropic, "/v1/messages"));
  g_assert_false (kp_wire_serves_route (&kp_wire_anthropic, "/v1/messages/count_tokens"));

  for (const KpWire * const *wire = kp_wire_all (); *wire != NULL; wire++)
    {
      g_assert_true (kp_wire_for_id ((*wire)->id) == *wire);
      /* Every client wire answers errors in its own shape. */
      if ((*wire)->client_routes != NULL)
        {
          g_assert_nonnull ((*wire)->parse_request);
          g_assert_nonnull ((*wire)->error_json);
          g_assert_nonnull ((*wire)->error_event);
          g_assert_nonnull ((*wire)->error_from_upstream);
        }
      /* A chat wire that clients speak streams to them with an encoder and
       * takes translations with the hub's conversions; an upstream-only one
       * needs neither.
       */
      if ((*wire)->kind == KP_WIRE_KIND_CHAT && (*wire)->client_routes == NULL)
        {
          /* A provider's API only (Kiro): it builds requests and reads answers. */
          g_assert_nonnull ((*wire)->build_body);
          g_assert_nonnull ((*wire)->decoder_new);
          g_assert_true ((*wire)->response_to_canonical != NULL ||
                         (*wire)->answer_to_canonical != NULL);
        }
      else if ((*wire)->kind == KP_WIRE_KIND_CHAT)
        {
          const KpWireEncoderClass *encoder = (*wire)->encoder;

          g_assert_nonnull ((*wire)->to_canonical);
          g_assert_nonnull (encoder);
          g_assert_true (encoder->create && encoder->destroy && encoder->start && encoder->text &&
                         encoder->reasoning && encoder->tool_call && encoder->tool_args &&
                         encoder->usage && encoder->finish && encoder->end);
          g_assert_nonnull ((*wire)->response_from_canonical);
        }
    }
}

static void
test_request_errors (void)
{
  static const struct { const KpWire *wire; const char *body; const char *code; } cases[] = {
    { &kp_wire_openai_chat, "", "invalid_json" },
    { &kp_wire_openai_chat, "[1]", "invalid_json" },
    { &kp_wire_openai_chat, "{\"messages\":[]}", "missing_model" },
    { &kp_wire_openai_chat, "{\"model\":\"m\",\"messages\":[]}", "missing_messages" },
    { &kp_wire_openai_chat, "{\"model\":\"m\",\"stream\":1,\"messages\":[{}]}", "invalid_stream" },
    { &kp_wire_openai_chat, "{\"model\":\"m\",\"provider\":3,\"messages\":[{}]}", "invalid_provider" },
    { &kp_wire_anthropic, "{\"model\":\"m\",\"max_tokens\":0,\"messages\":[{}]}", "invalid_max_tokens" },
    { &kp_wire_openai_responses, "{\"model\":\"m\"}", "missing_input" },
    { &kp_wire_openai_responses, "{\"model\":\"m\",\"input\":[]}", "missing_input" },
    { &kp_wire_openai_responses, "{\"model\":\"m\",\"input\":\"hi\",\"previous_response_id\":\"resp_1\"}",
      "previous_response_not_found" },
    { &kp_wire_openai_embeddings, "{\"model\":\"m\"}", "missing_input" },
    { &kp_wire_openai_embeddings, "{\"model\":\"m\",\"input\":\"x\",\"stream\":true}", "invalid_stream" },
    { &kp_wire_openai_completions, "{\"model\":\"m\",\"suffix\":\"x\"}", "missing_input" },
    { &kp_wire_openai_completions, "{\"model\":\"m\",\"prompt\":\"x\",\"suffix\":7}", "invalid_request" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(KpWireRequest) req = request_for (cases[i].wire, cases[i].body, &error);

      g_assert_null (req);
      g_assert_nonnull (error);
      g_assert_cmpstr (kp_wire_error_code (error), ==, cases[i].code);
      g_assert_cmpuint (strlen (error->message), >, 10);
    }

  /* Nesting deeper than Keypool parses is refused before json-glib sees it. */
  {
    g_autoptr(GError) error = NULL;
    g_autofree char *deep = g_malloc (100001);
    g_autoptr(KpWireRequest) req = NULL;

    memset (deep, '[', 100000);
    deep[100000] = '\0';
    req = request_for (&kp_wire_openai_chat, deep, &error);
    g_assert_null (req);
    g_assert_cmpstr (kp_wire_error_code (error), ==, "invalid_json");
    g_assert_nonnull (strstr (error->message, "deeper than"));
  }

  /* A lone surrogate decodes to bytes that are not UTF-8: what goes
   * upstream is UTF-8 all the same.
   */
  {
    g_autoptr(GError) error = NULL;
    g_autoptr(KpWireRequest) req =
      request_for (&kp_wire_openai_chat,
                   "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"a\\ud800bc\"}]}",
                   &error);
    g_autoptr(KpOffering) offering = offering_new ("other", FALSE);
    KpWireTarget target = { .offering = offering };
    g_autoptr(GBytes) built = NULL;

    g_assert_no_error (error);
    built = kp_wire_build_upstream (req, &kp_wire_anthropic, &target, &error);
    g_assert_no_error (error);
    g_assert_true (g_utf8_validate (g_bytes_get_data (built, NULL), g_bytes_get_size (built), NULL));
  }

  /* Keypool's "provider" field is taken off the request. */
  {
    g_autoptr(GError) error = NULL;
    g_autoptr(KpWireRequest) req =
      request_for (&kp_wire_openai_chat,
                   "{\"model\":\"m\",\"provider\":[\"a\",\"b\"],\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
                   &error);
    g_autoptr(JsonObject) body = NULL;

    g_assert_no_error (error);
    g_assert_cmpuint (g_strv_length (req->providers), ==, 2);
    body = build_for (req, &kp_wire_openai_chat, "m", FALSE, NULL);
    g_assert_false (json_object_has_member (body, "provider"));
  }
}

static void
test_responses_request (void)
{
  g_autofree char *text = kp_test_load_text ("wire", "responses-request.json", NULL);
  g_autofree char *expected_text = kp_test_load_text ("wire", "responses-request.chat.json", NULL);
  g_autoptr(JsonNode) expected = kp_test_parse_json (expected_text, -1);
  g_autoptr(GError) error = NULL;
  g_autoptr(KpWireRequest) req = request_for (&kp_wire_openai_responses, text, &error);
  JsonObject *canonical;

  g_assert_no_error (error);
  g_assert_true (req->stream);
  g_assert_cmpint (req->output_tokens, ==, 2048);
  canonical = kp_wire_request_get_canonical (req, &error);
  g_assert_no_error (error);
  {
    g_autoptr(JsonNode) node = kp_json_object_node (json_object_ref (canonical));

    kp_test_assert_json_equal (node, expected, "responses-request.json as Chat");
  }
}

/* The same request reaches every upstream wire with the provider's model
 * id, and what the target model takes.
 */
static void
test_hub_requests (void)
{
  static const char *chat =
    "{\"model\":\"any\",\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},"
    "{\"role\":\"user\",\"content\":\"Hello there\"}],\"max_tokens\":32000,"
    "\"reasoning_effort\":\"high\",\"stream\":true}";
  static const char *anthropic =
    "{\"model\":\"any\",\"system\":\"Be brief.\",\"max_tokens\":32000,"
    "\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":24576},"
    "\"messages\":[{\"role\":\"user\",\"content\":\"Hello there\"}],\"stream\":true}";
  static const char *responses =
    "{\"model\":\"any\",\"instructions\":\"Be brief.\",\"input\":\"Hello there\","
    "\"max_output_tokens\":32000,\"reasoning\":{\"effort\":\"high\"},\"stream\":true}";
  const struct { const KpWire *wire; const char *body; } clients[] = {
    { &kp_wire_openai_chat, chat },
    { &kp_wire_anthropic, anthropic },
    { &kp_wire_openai_responses, responses },
  };
  const KpWire *upstreams[] = { &kp_wire_openai_chat, &kp_wire_anthropic };

  for (guint c = 0; c < G_N_ELEMENTS (clients); c++)
    for (guint u = 0; u < G_N_ELEMENTS (upstreams); u++)
      for (guint reasoning = 0; reasoning < 2; reasoning++)
        {
          g_autoptr(GError) error = NULL;
          g_autoptr(KpWireRequest) req = request_for (clients[c].wire, clients[c].body, &error);
          g_autoptr(JsonObject) body = NULL;
          g_autoptr(JsonNode) node = NULL;
          g_autofree char *text = NULL;

          g_assert_no_error (error);
          if (clients[c].wire == upstreams[u] && reasoning)
            continue;
          body = build_for (req, upstreams[u], "provider-model", reasoning, NULL);
          g_assert_cmpstr (json_object_get_string_member (body, "model"), ==, "provider-model");
          node = kp_json_object_node (json_object_ref (body));
          text = json_to_string (node, FALSE);
          g_assert_nonnull (strstr (text, "Hello there"));
          g_assert_nonnull (strstr (text, "Be brief."));

          if (upstreams[u] == &kp_wire_anthropic)
            {
              g_assert_cmpint (json_object_get_int_member (body, "max_tokens"), >=, 24576);
              g_assert_true (json_object_get_boolean_member (body, "stream"));
            }
          else if (clients[c].wire != &kp_wire_openai_chat)
            {
              /* Translated for an OpenAI model: the output cap and reasoning
               * as that model takes them, and usage in the stream.
               */
              g_assert_true (json_object_get_boolean_member (
                json_object_get_object_member (body, "stream_options"), "include_usage"));
              if (reasoning)
                {
                  g_assert_false (json_object_has_member (body, "max_tokens"));
                  g_assert_cmpint (json_object_get_int_member (body, "max_completion_tokens"),
                                   ==, 32000);
                  g_assert_cmpstr (json_object_get_string_member (body, "reasoning_effort"),
                                   ==, "high");
                }
              else
                {
                  g_assert_cmpint (json_object_get_int_member (body, "max_tokens"), ==, 32000);
                  g_assert_false (json_object_has_member (body, "max_completion_tokens"));
                  g_assert_false (json_object_has_member (body, "reasoning_effort"));
                }
            }
        }
}

/* Same wire in and out: the client's own bytes, unless something changed. */
static void
test_passthrough (void)
{
  static const char *chat =
    "{\"model\":\"same\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}";
  static const char *streamed =
    "{\"model\":\"same\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}";
  g_autoptr(GError) error = NULL;
  g_autoptr(KpWireRequest) req = request_for (&kp_wire_openai_chat, chat, &error);
  g_autoptr(KpWireRequest) stream_req = request_for (&kp_wire_openai_chat, streamed, &error);
  g_autoptr(KpOffering) offering = offering_new ("same", FALSE);
  KpWireTarget target = { .offering = offering };
  g_autoptr(GBytes) body = NULL;
  g_autoptr(JsonObject) built = NULL;
  gboolean strip = FALSE;

  g_assert_no_error (error);
  body = kp_wire_build_upstream (req, &kp_wire_openai_chat, &target, &error);
  g_assert_no_error (error);
  g_assert_true (body == req->body);
  g_assert_false (target.strip_usage);

  /* Keypool asks for usage in a stream the client did not ask it for, and
   * says so, so that the extra chunk is dropped again.
   */
  built = build_for (stream_req, &kp_wire_openai_chat, "other", FALSE, &strip);
  g_assert_true (strip);
  g_assert_cmpstr (json_object_get_string_member (built, "model"), ==, "other");
  g_assert_true (json_object_get_boolean_member (json_object_get_object_member (built, "stream_options"),
                                                 "include_usage"));

  /* A rewritten body is JSON any reader takes: json-glib 1.6 alone would
   * write 1e308 as "1e+308.0". Members keep their order.
   */
  {
    static const char *big =
      "{\"model\":\"m\",\"temperature\":1e308,\"top_p\":1,\"seed\":-7,"
      "\"messages\":[{\"role\":\"user\",\"content\":\"\\u0001\\\"x\"}]}";
    g_autoptr(KpWireRequest) big_req = request_for (&kp_wire_openai_chat, big, &error);
    g_autoptr(KpOffering) other = offering_new ("other", FALSE);
    KpWireTarget other_target = { .offering = other };
    g_autoptr(GBytes) rewritten = kp_wire_build_upstream (big_req, &kp_wire_openai_chat,
                                                          &other_target, &error);
    g_autofree char *text = g_strndup (g_bytes_get_data (rewritten, NULL), g_bytes_get_size (rewritten));

    g_assert_no_error (error);
    g_assert_cmpstr (text, ==,
                     "{\"model\":\"other\",\"temperature\":1e+308,\"top_p\":1,\"seed\":-7,"
                     "\"messages\":[{\"role\":\"user\",\"content\":\"\\u0001\\\"x\"}]}");
  }
}

/* Feeds the fixture @input of @upstream to a bridge for @client. */
static GString *
run_bridge (const KpWire  *upstream,
            const KpWire  *client,
            const char    *input,
            KpUsage       *usage)
{
  gsize len;
  g_autofree char *text = kp_test_load_text ("anthropic", input, &len);
  g_autoptr(GBytes) request_body = g_bytes_new_static ("{}", 2);
  g_autoptr(KpWireRequest) req = kp_wire_request_new (client, request_body, NULL);
  g_autoptr(KpWireBridge) bridge = NULL;
  KpSseEvent event = { .data = g_string_new (NULL) };
  GString *out = g_string_new (NULL);
  KpStreamStatus status = KP_STREAM_CONTINUE;
  gsize offset = 0;
  gsize used;

  req->model = g_strdup ("client-model");
  req->prompt_tokens = 42;
  bridge = kp_wire_bridge_new (upstream, client, req, NULL);
  while ((used = kp_sse_next_event (text + offset, len - offset, &event)) > 0)
    {
      gboolean raw;

      offset += used;
      if (!event.has_data)
        continue;
      g_assert_true (status == KP_STREAM_CONTINUE || status == KP_STREAM_KEEPALIVE);
      status = kp_wire_bridge_feed (bridge, event.name, event.name ? event.name_len : 0,
                                    event.data->str, event.data->len, out, &raw);
      g_assert_false (raw);
    }
  g_assert_cmpint (status, ==, KP_STREAM_END);
  g_assert_true (kp_wire_bridge_has_content (bridge));
  *usage = *kp_wire_bridge_get_usage (bridge);
  g_string_free (event.data, TRUE);
  return out;
}

/* A provider's stream as Responses events: the lifecycle, every item with
 * its deltas, and the whole response with usage at the end.
 */
static void
check_responses_stream (const KpWire *upstream,
                        const char   *input,
                        const char   *text,
                        guint         n_calls,
                        const char   *status)
{
  g_autofree char *terminal = g_strconcat ("response.", status, NULL);
  KpUsage usage;
  g_autoptr(GString) out = run_bridge (upstream, &kp_wire_openai_responses, input, &usage);
  g_auto(KpTestEvents) events = kp_test_scan_events (out->str, out->len);
  g_autoptr(GString) deltas = g_string_new (NULL);
  g_autoptr(GHashTable) arguments = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  JsonObject *response = NULL;
  g_autoptr(JsonNode) last = NULL;
  guint calls_added = 0;

  g_assert_cmpuint (events.names->len, >, 4);
  g_assert_cmpstr (events.names->pdata[0], ==, "response.created");
  g_assert_cmpstr (events.names->pdata[events.names->len - 1], ==, terminal);

  for (guint i = 0; i < events.names->len; i++)
    {
      g_autoptr(JsonNode) node = kp_test_parse_json (events.datas->pdata[i], -1);
      JsonObject *data = json_node_get_object (node);

      /* The data's type is the event's name; the numbers go up by one. */
      g_assert_cmpstr (json_object_get_string_member (data, "type"), ==, events.names->pdata[i]);
      g_assert_cmpint (json_object_get_int_member (data, "sequence_number"), ==, i);
      g_assert_false (json_object_has_member (data, "error"));

      if (g_str_equal (events.names->pdata[i], "response.output_text.delta"))
        g_string_append (deltas, json_object_get_string_member (data, "delta"));
      else if (g_str_equal (events.names->pdata[i], "response.output_item.added") &&
               g_str_equal (json_object_get_string_member (json_object_get_object_member (data, "item"),
                                                           "type"), "function_call"))
        calls_added++;
      else if (g_str_equal (events.names->pdata[i], "response.function_call_arguments.delta"))
        {
          const char *id = json_object_get_string_member (data, "item_id");
          const char *so_far = g_hash_table_lookup (arguments, id);
          g_autofree char *joined = g_strconcat (so_far != NULL ? so_far : "",
                                                 json_object_get_string_member (data, "delta"), NULL);

          g_hash_table_replace (arguments, g_strdup (id), g_steal_pointer (&joined));
        }
    }
  g_assert_cmpstr (deltas->str, ==, text);
  g_assert_cmpuint (calls_added, ==, n_calls);

  last = kp_test_parse_json (events.datas->pdata[events.names->len - 1], -1);
  response = json_object_get_object_member (json_node_get_object (last), "response");
  g_assert_cmpstr (json_object_get_string_member (response, "status"), ==, status);
  g_assert_cmpstr (json_object_get_string_member (response, "model"), ==, "client-model");
  g_assert_cmpint (json_object_get_int_member (json_object_get_object_member (response, "usage"),
                                               "input_tokens"), ==, usage.prompt_tokens);
  g_assert_cmpint (json_object_get_int_member (json_object_get_object_member (response, "usage"),
                                               "output_tokens"), ==, usage.completion_tokens);

  /* The whole output repeats what the deltas said. */
  {
    JsonArray *output = json_object_get_array_member (response, "output");
    guint n_function_calls = 0;

    for (guint i = 0; i < json_array_get_length (output); i++)
      {
        JsonObject *item = json_array_get_object_element (output, i);
        const char *type = json_object_get_string_member (item, "type");

        g_assert_cmpstr (json_object_get_string_member_with_default (item, "status", "completed"), ==,
                         "completed");
        if (g_str_equal (type, "function_call"))
          {
            const char *streamed = g_hash_table_lookup (arguments,
                                                        json_object_get_string_member (item, "id"));
            const char *call_args = json_object_get_string_member (item, "arguments");
            g_autoptr(JsonNode) args = kp_test_parse_json (call_args, -1);

            n_function_calls++;
            g_assert_cmpstr (json_object_get_string_member (item, "arguments"), ==, streamed);
            g_assert_true (JSON_NODE_HOLDS_OBJECT (args));
            g_assert_nonnull (json_object_get_string_member (item, "call_id"));
          }
      }
    g_assert_cmpuint (n_function_calls, ==, n_calls);
  }
}

static void
test_responses_streams (void)
{
  KpUsage usage;
  g_autoptr(GString) out = NULL;

  check_responses_stream (&kp_wire_openai_chat, "openai-stream.sse", "Checking.", 2, "completed");
  /* Cut at the output cap: incomplete, and the reason says why. */
  check_responses_stream (&kp_wire_openai_chat, "openai-stream-text.sse", "Hello\n\"there\"", 0,
                          "incomplete");
  check_responses_stream (&kp_wire_anthropic, "anthropic-stream.sse", "Checking \"both\"\n", 2,
                          "completed");

  /* Reasoning becomes a reasoning item with a summary. */
  out = run_bridge (&kp_wire_openai_chat, &kp_wire_openai_responses, "openai-stream.sse", &usage);
  g_assert_nonnull (strstr (out->str, "event: response.reasoning_summary_text.delta\n"));
  g_assert_nonnull (strstr (out->str, "\"summary\":[{\"type\":\"summary_text\",\"text\":\"Two cities.\"}]"));
}

/* An Anthropic client streaming from an OpenAI provider: message_start
 * carries Keypool's estimate of the input tokens, and message_delta the
 * provider's figure.
 */
static void
test_anthropic_input_estimate (void)
{
  KpUsage usage;
  g_autoptr(GString) out = run_bridge (&kp_wire_openai_chat, &kp_wire_anthropic,
                                       "openai-stream.sse", &usage);
  g_auto(KpTestEvents) events = kp_test_scan_events (out->str, out->len);
  g_autoptr(JsonNode) start = kp_test_parse_json (events.datas->pdata[0], -1);
  g_autoptr(JsonNode) delta = NULL;
  JsonObject *start_usage;

  g_assert_cmpstr (events.names->pdata[0], ==, "message_start");
  start_usage = json_object_get_object_member (
    json_object_get_object_member (json_node_get_object (start), "message"), "usage");
  g_assert_cmpint (json_object_get_int_member (start_usage, "input_tokens"), ==, 42);

  g_assert_cmpstr (events.names->pdata[events.names->len - 2], ==, "message_delta");
  delta = kp_test_parse_json (events.datas->pdata[events.names->len - 2], -1);
  /* 10,100 prompt tokens, of which 8,000 read from the cache and 2,000 written to it. */
  g_assert_cmpint (json_object_get_int_member (json_object_get_object_member (json_node_get_object (delta),
                                                                              "usage"),
                                               "input_tokens"), ==, 100);
}

/* A chat completion as a Responses response object. */
static void
test_responses_answer (void)
{
  g_autofree char *text = kp_test_load_text ("anthropic", "openai-response.json", NULL);
  g_autoptr(GBytes) request_body = g_bytes_new_static ("{}", 2);
  g_autoptr(KpWireRequest) req = kp_wire_request_new (&kp_wire_openai_responses, request_body, NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) answer = NULL;
  g_autoptr(JsonNode) node = NULL;
  JsonObject *response;
  JsonArray *output;
  JsonObject *usage;
  gsize len;
  const char *data;

  req->model = g_strdup ("asked-for");
  answer = kp_wire_translate_answer (req, &kp_wire_openai_chat, text, strlen (text), NULL, &error);
  g_assert_no_error (error);
  data = g_bytes_get_data (answer, &len);
  node = kp_test_parse_json (data, len);
  response = json_node_get_object (node);
  g_assert_cmpstr (json_object_get_string_member (response, "object"), ==, "response");
  g_assert_true (g_str_has_prefix (json_object_get_string_member (response, "id"), "resp_"));
  g_assert_cmpstr (json_object_get_string_member (response, "model"), ==, "asked-for");
  g_assert_cmpstr (json_object_get_string_member (response, "status"), ==, "completed");

  output = json_object_get_array_member (response, "output");
  g_assert_cmpuint (json_array_get_length (output), ==, 4);
  g_assert_cmpstr (json_object_get_string_member (json_array_get_object_element (output, 0), "type"),
                   ==, "reasoning");
  g_assert_cmpstr (json_object_get_string_member (
                     json_array_get_object_element (
                       json_object_get_array_member (json_array_get_object_element (output, 1),
                                                     "content"), 0), "text"), ==, "Checking.");
  g_assert_cmpstr (json_object_get_string_member (json_array_get_object_element (output, 2), "call_id"),
                   ==, "call_1");
  g_assert_cmpstr (json_object_get_string_member (json_array_get_object_element (output, 2), "arguments"),
                   ==, "{\"city\":\"Oslo\"}");
  g_assert_cmpstr (json_object_get_string_member (json_array_get_object_element (output, 3), "name"),
                   ==, "get_time");

  usage = json_object_get_object_member (response, "usage");
  g_assert_cmpint (json_object_get_int_member (usage, "input_tokens"), ==, 10100);
  g_assert_cmpint (json_object_get_int_member (usage, "output_tokens"), ==, 500);
  g_assert_cmpint (json_object_get_int_member (json_object_get_object_member (usage, "input_tokens_details"),
                                               "cached_tokens"), ==, 8000);

  /* And an Anthropic message too, through the hub. */
  {
    g_autofree char *message = kp_test_load_text ("anthropic", "anthropic-response.json", NULL);
    g_autoptr(GBytes) from_anthropic = kp_wire_translate_answer (req, &kp_wire_anthropic, message,
                                                                 strlen (message), NULL, &error);

    g_assert_no_error (error);
    g_assert_nonnull (from_anthropic);
  }
}

static void
test_error_shapes (void)
{
  for (const KpWire * const *wire = kp_wire_all (); *wire != NULL; wire++)
    {
      g_autofree char *body = NULL;
      g_autoptr(JsonNode) node = NULL;
      g_autoptr(GString) event = g_string_new (NULL);
      g_auto(KpTestEvents) events = { NULL, NULL };
      JsonObject *error;

      if ((*wire)->client_routes == NULL)
        continue;
      body = (*wire)->error_json (429, "rate_limited", "Slow \"down\".");
      node = kp_test_parse_json (body, -1);
      error = json_object_get_object_member (json_node_get_object (node), "error");
      g_assert_cmpstr (json_object_get_string_member (error, "message"), ==, "Slow \"down\".");
      /* Google's errors name the status, the others a type. */
      if (json_object_has_member (error, "status"))
        g_assert_cmpstr (json_object_get_string_member (error, "status"), ==, "RESOURCE_EXHAUSTED");
      else
        g_assert_cmpstr (json_object_get_string_member (error, "type"), ==, "rate_limit_error");

      /* In a stream: one complete event whose data carries the error, so
       * that the client's SDK throws it.
       */
      (*wire)->error_event (502, "upstream_error", "It broke.", event);
      events = kp_test_scan_events (event->str, event->len);
      g_assert_cmpuint (events.datas->len, ==, 1);
      {
        g_autoptr(JsonNode) data = kp_test_parse_json (events.datas->pdata[0], -1);
        JsonObject *inner = json_object_get_object_member (json_node_get_object (data), "error");

        g_assert_cmpstr (json_object_get_string_member (inner, "message"), ==, "It broke.");
      }
    }
}

/* "role: item item | role: …": an item by its text, else its type, else
 * its one member's name.
 */
static char *
describe_turns (JsonNode   *request,
                const char *turns_member,
                const char *items_member)
{
  JsonArray *turns = json_object_get_array_member (json_node_get_object (request), turns_member);
  GString *out = g_string_new (NULL);

  for (guint t = 0; t < json_array_get_length (turns); t++)
    {
      JsonObject *turn = json_array_get_object_element (turns, t);
      JsonArray *items = json_object_get_array_member (turn, items_member);

      g_string_append_printf (out, "%s%s:", t > 0 ? " | " : "",
                              json_object_get_string_member (turn, "role"));
      for (guint i = 0; i < json_array_get_length (items); i++)
        {
          JsonObject *item = json_array_get_object_element (items, i);
          g_autoptr(GList) members = json_object_get_members (item);

          g_string_append_printf (out, " %s",
                                  json_object_get_string_member_with_default (
                                    item, "text",
                                    json_object_get_string_member_with_default (
                                      item, "type", members->data)));
        }
    }
  return g_string_free (out, FALSE);
}

/* Messages of one role become one turn, so that roles alternate; in an
 * Anthropic user turn the tool results go first.
 */
static void
test_turns_merged (void)
{
  const char *chat =
    "{\"model\":\"m\",\"messages\":["
    "{\"role\":\"user\",\"content\":\"a\"},"
    "{\"role\":\"user\",\"content\":\"b\"},"
    "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"call_1\","
    "\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]},"
    "{\"role\":\"user\",\"content\":\"note\"},"
    "{\"role\":\"tool\",\"tool_call_id\":\"call_1\",\"content\":\"42\"}]}";
  g_autoptr(JsonNode) request = kp_test_parse_json (chat, -1);
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) anthropic = NULL;
  g_autoptr(JsonNode) gemini = NULL;
  g_autofree char *anthropic_turns = NULL;
  g_autofree char *gemini_turns = NULL;

  anthropic = kp_anthropic_request_from_openai (json_node_get_object (request), &error);
  g_assert_no_error (error);
  anthropic_turns = describe_turns (anthropic, "messages", "content");
  g_assert_cmpstr (anthropic_turns, ==, "user: a b | assistant: tool_use | user: tool_result note");

  gemini = kp_gemini_request_from_openai (json_node_get_object (request), &error);
  g_assert_no_error (error);
  gemini_turns = describe_turns (gemini, "contents", "parts");
  g_assert_cmpstr (gemini_turns, ==,
                   "user: a b | model: functionCall | user: note functionResponse");
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/keypool/wire/registry", test_registry);
  g_test_add_func ("/keypool/wire/request-errors", test_request_errors);
  g_test_add_func ("/keypool/wire/hub-requests", test_hub_requests);
  g_test_add_func ("/keypool/wire/passthrough", test_passthrough);
  g_test_add_func ("/keypool/wire/responses/request", test_responses_request);
  g_test_add_func ("/keypool/wire/responses/streams", test_responses_streams);
  g_test_add_func ("/keypool/wire/responses/answer", test_responses_answer);
  g_test_add_func ("/keypool/wire/error-shapes", test_error_shapes);
  g_test_add_func ("/keypool/wire/anthropic-input-estimate", test_anthropic_input_estimate);
  g_test_add_func ("/keypool/wire/turns-merged", test_turns_merged);

  return g_test_run ();
}
