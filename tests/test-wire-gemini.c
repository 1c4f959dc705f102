/* test-wire-gemini.c: the Gemini wire, from fixtures written from the facts
 *
 * OpenAI ↔ Gemini requests and answers field by field, Gemini's SSE
 * stream into OpenAI's and Anthropic's client streams, the hub's stream
 * into Gemini's SSE and JSON-array streams, routes, schemas, signatures
 * and every Google error body into its failure class. Nothing here does
 * I/O.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include "config.h"

#include <string.h>

#include "kp-sse.h"
#include "kp-test-util.h"
#include "kp-upstream-error.h"
#include "wire/kp-wire-anthropic-private.h"
#include "wire/kp-wire-gemini-private.h"
#include "wire/kp-wire-openai-private.h"

G_DEFINE_AUTOPTR_CLEANUP_FUNC (KpGeminiDecoder, kp_gemini_decoder_free)

static void
on_error_event (const KpEvent *event,
                gpointer       user_data)
{
  if (event->type == KP_EVENT_ERROR)
    *(const char **)user_data = event->text;
}

static KpWireRequest *
request_for (const KpWire *wire,
             const char   *json,
             const char   *path,
             const char   *alt)
{
  g_autoptr(GBytes) body = g_bytes_new (json, strlen (json));
  g_autoptr(GError) error = NULL;
  g_autoptr(GHashTable) query = g_hash_table_new (g_str_hash, g_str_equal);
  KpWireRequest *req = kp_wire_request_new (wire, body, NULL);

  if (alt != NULL)
    g_hash_table_insert (query, (gpointer)"alt", (gpointer)alt);
  if (path != NULL)
    kp_wire_request_set_path (req, path, query);
  kp_wire_request_parse (req, &error);
  g_assert_no_error (error);
  return req;
}

/* OpenAI → Gemini: every field of the fixture lands where §3.1 says. */
static void
test_request_from_openai (void)
{
  g_autoptr(JsonNode) request = kp_test_load_json ("gemini", "openai-request.json");
  g_autoptr(JsonNode) expected = kp_test_load_json ("gemini", "openai-request.gemini.json");
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) built = kp_gemini_request_from_openai (json_node_get_object (request), &error);

  g_assert_no_error (error);
  kp_test_assert_json_equal (built, expected, "the Gemini request");

  /* Through the relay's path: no model and no stream in the body. */
  {
    gsize len;
    g_autofree char *text = kp_test_load_text ("gemini", "openai-request.json", &len);
    g_autoptr(KpWireRequest) req = request_for (&kp_wire_openai_chat, text, NULL, NULL);
    KpOffering offering = { .upstream_id = (char *)"gemini-2.5-flash" };
    KpWireTarget target = { .offering = &offering };
    g_autoptr(GBytes) body = kp_wire_build_upstream (req, &kp_wire_gemini, &target, &error);
    g_autofree char *suffix = kp_wire_gemini.upstream_suffix (req, &target);
    g_autoptr(JsonNode) node = NULL;

    g_assert_no_error (error);
    node = kp_test_parse_json (g_bytes_get_data (body, NULL), g_bytes_get_size (body));
    kp_test_assert_json_equal (node, expected, "the Gemini body");
    g_assert_cmpstr (suffix, ==, "/gemini-2.5-flash:streamGenerateContent?alt=sse");
    req->stream = FALSE;
    g_free (suffix);
    suffix = kp_wire_gemini.upstream_suffix (req, &target);
    g_assert_cmpstr (suffix, ==, "/gemini-2.5-flash:generateContent");
  }
}

static void
test_request_errors (void)
{
  static const char *cases[] = {
    /* A tool result for a call no message made: Gemini needs the name. */
    "{\"messages\":[{\"role\":\"tool\",\"tool_call_id\":\"nope\",\"content\":\"x\"}]}",
    "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"n\":2}",
    "{\"messages\":[{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"a\",\"function\":"
    "{\"name\":\"f\",\"arguments\":\"not json\"}}]}]}",
    "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\","
    "\"image_url\":{\"url\":\"data:image/png,raw\"}}]}]}",
    /* A comma within 7 bytes of "data:" (found by fuzz-request-openai-chat:
     * ";base64" was looked for before the start of the string).
     */
    "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\","
    "\"image_url\":{\"url\":\"data:,x\"}}]}]}",
    "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\","
    "\"image_url\":{\"url\":\"data:ab,x\"}}]}]}",
    "{\"messages\":[{\"role\":\"wizard\",\"content\":\"x\"}]}",
    "{}",
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(JsonNode) node = kp_test_parse_json (cases[i], -1);
      g_autoptr(GError) error = NULL;
      g_autoptr(JsonNode) built = kp_gemini_request_from_openai (json_node_get_object (node),
                                                                  &error);

      g_assert_null (built);
      g_assert_error (error, KP_WIRE_ERROR, KP_WIRE_ERROR_INVALID);
    }
}

/* Gemini → OpenAI (a Gemini client's request into the hub). */
static void
test_request_to_openai (void)
{
  gsize len;
  g_autofree char *text = kp_test_load_text ("gemini", "gemini-request.json", &len);
  g_autoptr(JsonNode) expected = kp_test_load_json ("gemini", "gemini-request.openai.json");
  g_autoptr(KpWireRequest) req =
    request_for (&kp_wire_gemini, text, "/v1beta/models/gemini-2.5-flash:streamGenerateContent",
                 "sse");
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) got = NULL;
  JsonObject *canonical;

  g_assert_cmpstr (req->model, ==, "gemini-2.5-flash");
  g_assert_true (req->stream);
  g_assert_false (req->stream_as_array);
  g_assert_cmpint (req->output_tokens, ==, 256);

  canonical = kp_wire_request_get_canonical (req, &error);
  g_assert_no_error (error);
  got = kp_json_object_node (json_object_ref (canonical));
  kp_test_assert_json_equal (got, expected, "the canonical request");

  /* And back to Gemini: the signature came through the hub. */
  {
    g_autoptr(JsonNode) again = kp_gemini_request_from_openai (canonical, &error);
    JsonArray *contents = json_object_get_array_member (json_node_get_object (again), "contents");
    JsonObject *turn = json_array_get_object_element (contents, 1);
    JsonObject *call = json_array_get_object_element (json_object_get_array_member (turn, "parts"),
                                                      1);

    g_assert_no_error (error);
    g_assert_cmpstr (json_object_get_string_member (call, "thoughtSignature"), ==, "c2lnLW9uZS+/");
  }
}

static void
test_routes (void)
{
  static const struct { const char *path; KpRouteKind kind; } routes[] = {
    { "/v1beta/models/gemini-2.5-flash:generateContent", KP_ROUTE_REQUEST },
    { "/v1beta/models/gemini-2.5-flash:streamGenerateContent", KP_ROUTE_REQUEST },
    { "/v1beta/models/google%2Fgemini-2.5-flash:generateContent", KP_ROUTE_REQUEST },
    { "/v1beta/models/google/gemini-2.5-flash:generateContent", KP_ROUTE_REQUEST },
    { "/v1beta/models/gemini-2.5-flash:countTokens", KP_ROUTE_COUNT },
    { "/v1beta/models", KP_ROUTE_MODELS },
    { "/v1beta/models/gemini-2.5-flash", KP_ROUTE_MODEL },
    { "/v1beta/models/models%2Fgemini-2.5-flash", KP_ROUTE_MODEL },
    { "/v1beta/models/gemini-2.5-flash:embedSomething", KP_ROUTE_NONE },
    { "/v1beta/models/:generateContent", KP_ROUTE_NONE },
    { "/v1beta/models/%ff%fe:generateContent", KP_ROUTE_NONE },
  };
  g_autofree char *long_name = g_strnfill (KP_GEMINI_MODEL_MAX + 1, 'a');
  g_autofree char *long_path = g_strconcat ("/v1beta/models/", long_name, ":generateContent", NULL);

  for (guint i = 0; i < G_N_ELEMENTS (routes); i++)
    {
      g_assert_true (kp_wire_for_route (routes[i].path) == &kp_wire_gemini);
      g_assert_true (kp_wire_is_client_path (routes[i].path));
      g_assert_cmpint (kp_wire_route_kind (&kp_wire_gemini, routes[i].path), ==, routes[i].kind);
    }
  g_assert_cmpint (kp_wire_route_kind (&kp_wire_gemini, long_path), ==, KP_ROUTE_NONE);
  g_assert_cmpint (kp_wire_route_kind (&kp_wire_gemini, "/v1beta/models/"), ==, KP_ROUTE_NONE);
  {
    g_autofree char *long_model = g_strconcat ("/v1beta/models/", long_name, NULL);

    g_assert_cmpint (kp_wire_route_kind (&kp_wire_gemini, long_model), ==, KP_ROUTE_NONE);
  }
  g_assert_false (kp_wire_is_client_path ("/v1beta/modelsx"));
  g_assert_null (kp_wire_for_route ("/v1beta"));

  /* The path says the model and the stream; without alt=sse it is an array. */
  {
    const char *body = "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"hi\"}]}]}";
    g_autoptr(KpWireRequest) array =
      request_for (&kp_wire_gemini, body, "/v1beta/models/models%2Fgemini-x:streamGenerateContent",
                   NULL);
    g_autoptr(KpWireRequest) whole =
      request_for (&kp_wire_gemini, body, "/v1beta/models/google/gemini-x:generateContent", NULL);
    g_autoptr(GBytes) bytes = g_bytes_new_static (body, strlen (body));
    g_autoptr(KpWireRequest) bad = kp_wire_request_new (&kp_wire_gemini, bytes, NULL);
    g_autoptr(GBytes) empty_bytes = g_bytes_new_static ("{\"contents\":[]}", 15);
    g_autoptr(KpWireRequest) empty = kp_wire_request_new (&kp_wire_gemini, empty_bytes, NULL);
    g_autoptr(GError) error = NULL;

    g_assert_cmpstr (array->model, ==, "gemini-x");
    g_assert_true (array->stream && array->stream_as_array);
    g_assert_cmpstr (whole->model, ==, "google/gemini-x");
    g_assert_false (whole->stream || whole->stream_as_array);

    kp_wire_request_set_path (bad, long_path, NULL);
    g_assert_false (kp_wire_request_parse (bad, &error));
    g_assert_error (error, KP_WIRE_ERROR, KP_WIRE_ERROR_MISSING_MODEL);
    g_clear_error (&error);
    kp_wire_request_set_path (empty, "/v1beta/models/m:generateContent", NULL);
    g_assert_false (kp_wire_request_parse (empty, &error));
    g_assert_error (error, KP_WIRE_ERROR, KP_WIRE_ERROR_MISSING_MESSAGES);
  }
}

static void
test_schema (void)
{
  g_autoptr(JsonNode) schema = kp_test_parse_json (
    "{\"$schema\":\"x\",\"$id\":\"y\",\"type\":\"object\",\"additionalProperties\":false,"
    "\"properties\":{\"$ref\":{\"type\":\"string\"},\"list\":{\"type\":\"array\","
    "\"items\":{\"$ref\":\"#/$defs/a\",\"type\":\"number\",\"exclusiveMaximum\":3}},"
    "\"choice\":{\"oneOf\":[{\"type\":\"string\",\"format\":\"date\"},{\"type\":\"null\"}]}},"
    "\"patternProperties\":{},\"$defs\":{\"a\":{}},\"required\":[\"list\"]}", -1);
  g_autoptr(JsonNode) expected = kp_test_parse_json (
    "{\"type\":\"object\",\"properties\":{\"$ref\":{\"type\":\"string\"},\"list\":"
    "{\"type\":\"array\",\"items\":{\"type\":\"number\"}},\"choice\":{\"anyOf\":"
    "[{\"type\":\"string\",\"format\":\"date\"},{\"type\":\"null\"}]}},\"required\":[\"list\"]}", -1);
  g_autoptr(JsonNode) clean = kp_gemini_clean_schema (schema);
  g_autoptr(GString) deep = g_string_new (NULL);
  g_autoptr(JsonNode) deep_node = NULL;
  g_autoptr(JsonNode) deep_clean = NULL;

  kp_test_assert_json_equal (clean, expected, "the cleaned schema");
  g_assert_null (kp_gemini_clean_schema (NULL));

  /* Past the depth bound, deeper schemas are cut, not followed. */
  for (guint i = 0; i < 100; i++)
    g_string_append (deep, "{\"type\":\"array\",\"items\":");
  g_string_append (deep, "{}");
  for (guint i = 0; i < 100; i++)
    g_string_append_c (deep, '}');
  deep_node = kp_test_parse_json (deep->str, deep->len);
  deep_clean = kp_gemini_clean_schema (deep_node);
  g_assert_nonnull (deep_clean);
}

static void
test_signatures (void)
{
  g_autofree char *bare = NULL;
  g_autofree char *id = kp_gemini_tool_id_with_signature ("call_1", "ab+/cd==");
  g_autofree char *made = kp_gemini_tool_id_with_signature (NULL, NULL);
  g_autofree char *back = kp_gemini_signature_from_tool_id (id, &bare);
  g_autofree char *clean = kp_anthropic_sanitize_tool_id (id);
  g_autofree char *none = kp_gemini_signature_from_tool_id ("call_2", NULL);

  g_assert_cmpstr (id, ==, "call_1" KP_GEMINI_SIGNATURE_MARK "ab-_cd");
  g_assert_cmpstr (back, ==, "ab+/cd==");
  g_assert_cmpstr (bare, ==, "call_1");
  /* Anthropic's id rules leave it whole. */
  g_assert_cmpstr (clean, ==, id);
  g_assert_null (none);
  g_assert_true (g_str_has_prefix (made, "call_"));
  g_assert_cmpuint (strlen (made), ==, 5 + 24);
}

/* Gemini's answer → OpenAI's, and OpenAI's → Gemini's. */
static void
test_answers (void)
{
  g_autoptr(JsonNode) gemini = kp_test_load_json ("gemini", "gemini-response.json");
  g_autoptr(JsonNode) expected = kp_test_load_json ("gemini", "gemini-response.openai.json");
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) openai = kp_gemini_response_to_openai (json_node_get_object (gemini),
                                                              "client-model", &error);
  g_autoptr(JsonNode) back = NULL;
  g_autoptr(JsonNode) expected_back = kp_test_load_json ("gemini",
                                                        "gemini-response.openai.gemini.json");
  g_autoptr(JsonNode) blocked = kp_test_parse_json (
    "{\"promptFeedback\":{\"blockReason\":\"SAFETY\"},\"usageMetadata\":{\"promptTokenCount\":3}}",
    -1);
  g_autoptr(JsonNode) blocked_openai = NULL;
  g_autoptr(JsonNode) junk = kp_test_parse_json ("{\"something\":1}", -1);
  g_autoptr(JsonNode) junk_openai = NULL;

  g_assert_no_error (error);
  /* "created" is the time of translation; the call's id is made here, with
   * the signature after it.
   */
  json_object_remove_member (json_node_get_object (openai), "created");
  {
    JsonObject *call = json_array_get_object_element (json_object_get_array_member (
      json_object_get_object_member (json_array_get_object_element (
        json_object_get_array_member (json_node_get_object (openai), "choices"), 0), "message"),
      "tool_calls"), 0);
    const char *id = json_object_get_string_member (call, "id");

    g_assert_true (g_str_has_prefix (id, "call_"));
    g_assert_true (g_str_has_suffix (id, KP_GEMINI_SIGNATURE_MARK "c2lnLW9uZS-_"));
    json_object_set_string_member (call, "id", "call_made" KP_GEMINI_SIGNATURE_MARK "c2lnLW9uZS-_");
  }
  kp_test_assert_json_equal (openai, expected, "the chat completion");

  back = kp_gemini_response_from_openai (json_node_get_object (openai), "client-model", &error);
  g_assert_no_error (error);
  kp_test_assert_json_equal (back, expected_back, "the Gemini answer");

  blocked_openai = kp_gemini_response_to_openai (json_node_get_object (blocked), "m", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (json_object_get_string_member (
    json_array_get_object_element (json_object_get_array_member (json_node_get_object (blocked_openai),
                                                                 "choices"), 0),
    "finish_reason"), ==, "content_filter");

  junk_openai = kp_gemini_response_to_openai (json_node_get_object (junk), "m", &error);
  g_assert_null (junk_openai);
  g_assert_error (error, KP_WIRE_ERROR, KP_WIRE_ERROR_ANSWER);
}

static void
test_usage_and_finish (void)
{
  g_autoptr(JsonNode) node = kp_test_parse_json (
    "{\"promptTokenCount\":100,\"candidatesTokenCount\":20,\"thoughtsTokenCount\":30,"
    "\"cachedContentTokenCount\":40,\"toolUsePromptTokenCount\":5,\"totalTokenCount\":155}", -1);
  KpUsage usage = { 0 };

  g_assert_true (kp_gemini_parse_usage (&usage, json_node_get_object (node)));
  g_assert_true (usage.known);
  g_assert_cmpint (usage.prompt_tokens, ==, 105);
  g_assert_cmpint (usage.completion_tokens, ==, 50);
  g_assert_cmpint (usage.reasoning_tokens, ==, 30);
  g_assert_cmpint (usage.cached_tokens, ==, 40);
  g_assert_false (kp_gemini_parse_usage (&usage, NULL));

  /* Counts past any real one are kept at the cap: their sums (and the
   * encoders' total_tokens) do not overflow. Found by fuzz-stream-gemini.
   */
  {
    g_autoptr(JsonNode) huge = kp_test_parse_json (
      "{\"promptTokenCount\":9223372036854775807,\"candidatesTokenCount\":9223372036854775807,"
      "\"thoughtsTokenCount\":9223372036854775807,\"toolUsePromptTokenCount\":5}", -1);

    g_assert_true (kp_gemini_parse_usage (&usage, json_node_get_object (huge)));
    g_assert_cmpint (usage.prompt_tokens, ==, KP_USAGE_MAX_TOKENS + 5);
    g_assert_cmpint (usage.completion_tokens, ==, 2 * KP_USAGE_MAX_TOKENS);
    g_assert_cmpint (usage.reasoning_tokens, ==, KP_USAGE_MAX_TOKENS);
  }

  g_assert_cmpint (kp_gemini_finish_from_reason ("STOP", FALSE), ==, KP_FINISH_STOP);
  g_assert_cmpint (kp_gemini_finish_from_reason ("STOP", TRUE), ==, KP_FINISH_TOOL_CALLS);
  g_assert_cmpint (kp_gemini_finish_from_reason ("MAX_TOKENS", TRUE), ==, KP_FINISH_LENGTH);
  for (guint i = 0; i < 6; i++)
    {
      const char *filtered[] = { "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT",
                                 "SPII", "IMAGE_SAFETY" };

      g_assert_cmpint (kp_gemini_finish_from_reason (filtered[i], FALSE), ==,
                       KP_FINISH_CONTENT_FILTER);
    }
  g_assert_cmpint (kp_gemini_finish_from_reason ("MALFORMED_FUNCTION_CALL", FALSE), ==,
                   KP_FINISH_STOP);
  g_assert_cmpint (kp_gemini_finish_from_reason (NULL, FALSE), ==, KP_FINISH_NONE);
  g_assert_cmpstr (kp_gemini_reason_for_finish (KP_FINISH_TOOL_CALLS), ==, "STOP");
  g_assert_cmpstr (kp_gemini_reason_for_finish (KP_FINISH_LENGTH), ==, "MAX_TOKENS");
  g_assert_cmpstr (kp_gemini_reason_for_finish (KP_FINISH_CONTENT_FILTER), ==, "SAFETY");

  g_assert_cmpstr (kp_gemini_effort_for_thinking (NULL), ==, NULL);
  {
    g_autoptr(JsonNode) level = kp_test_parse_json ("{\"thinkingLevel\":\"HIGH\"}", -1);
    g_autoptr(JsonNode) off = kp_test_parse_json ("{\"thinkingBudget\":0}", -1);
    g_autoptr(JsonNode) dynamic = kp_test_parse_json ("{\"thinkingBudget\":-1}", -1);

    g_assert_cmpstr (kp_gemini_effort_for_thinking (json_node_get_object (level)), ==, "high");
    g_assert_cmpstr (kp_gemini_effort_for_thinking (json_node_get_object (off)), ==, "none");
    g_assert_cmpstr (kp_gemini_effort_for_thinking (json_node_get_object (dynamic)), ==, "medium");
  }
  g_assert_cmpint (kp_gemini_budget_for_effort ("none"), ==, 0);
  g_assert_cmpint (kp_gemini_budget_for_effort ("low"), ==, 1024);
  g_assert_cmpint (kp_gemini_budget_for_effort ("bogus"), ==, -1);
}

/* Feeds @text (SSE) of @upstream to a bridge for a @client request. */
static GString *
run_bridge (const KpWire  *upstream,
            KpWireRequest *req,
            const char    *text,
            gsize          len,
            KpUsage       *usage)
{
  g_autoptr(KpWireBridge) bridge = kp_wire_bridge_new (upstream, req->wire, req, NULL);
  KpSseEvent event = { .data = g_string_new (NULL) };
  GString *out = g_string_new (NULL);
  gsize offset = 0;
  gsize used;

  while ((used = kp_sse_next_event (text + offset, len - offset, &event)) > 0)
    {
      gboolean raw;
      KpStreamStatus status;

      offset += used;
      if (!event.has_data)
        continue;
      status = kp_wire_bridge_feed (bridge, event.name, event.name ? event.name_len : 0,
                                    event.data->str, event.data->len, out, &raw);
      /* OpenAI's stream ends with [DONE]; Gemini's just stops. */
      g_assert_true (status == KP_STREAM_CONTINUE ||
                     (status == KP_STREAM_END && offset == len));
      g_assert_false (raw);
    }
  g_assert_cmpuint (offset, ==, len);
  /* A Gemini stream just ends: the bridge closes a finished answer. */
  g_assert_true (kp_wire_bridge_has_finish (bridge));
  g_assert_true (kp_wire_bridge_finish (bridge, out));
  g_assert_true (kp_wire_bridge_has_content (bridge));
  *usage = *kp_wire_bridge_get_usage (bridge);
  g_string_free (event.data, TRUE);
  return out;
}

static GPtrArray *
sse_datas (const char *text,
           gsize       len,
           GPtrArray  *names)
{
  GPtrArray *datas = g_ptr_array_new_with_free_func (g_free);
  KpSseEvent event = { .data = g_string_new (NULL) };
  gsize offset = 0;
  gsize used;

  while ((used = kp_sse_next_event (text + offset, len - offset, &event)) > 0)
    {
      offset += used;
      if (!event.has_data)
        continue;
      g_ptr_array_add (datas, g_strdup (event.data->str));
      if (names != NULL)
        g_ptr_array_add (names, event.name ? g_strndup (event.name, event.name_len) : g_strdup (""));
    }
  g_string_free (event.data, TRUE);
  return datas;
}

/* Gemini's SSE → events → an OpenAI client's stream. */
static void
test_stream_to_openai (void)
{
  gsize len;
  g_autofree char *text = kp_test_load_text ("gemini", "gemini-stream.sse", &len);
  g_autoptr(KpWireRequest) req = request_for (&kp_wire_openai_chat,
    "{\"model\":\"m\",\"stream\":true,\"stream_options\":{\"include_usage\":true},"
    "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", NULL, NULL);
  KpUsage usage;
  g_autoptr(GString) out = run_bridge (&kp_wire_gemini, req, text, len, &usage);
  g_autoptr(GPtrArray) datas = sse_datas (out->str, out->len, NULL);
  g_autoptr(GString) content = g_string_new (NULL);
  g_autoptr(GString) reasoning = g_string_new (NULL);
  const char *finish = NULL;
  const char *call_id = NULL;
  g_autofree char *signature = NULL;
  JsonNode *last_usage = NULL;
  g_autoptr(GPtrArray) nodes = g_ptr_array_new_with_free_func ((GDestroyNotify)json_node_unref);

  /* The last usageMetadata counts: thoughts are output, cached tokens apart. */
  g_assert_cmpint (usage.prompt_tokens, ==, 12);
  g_assert_cmpint (usage.completion_tokens, ==, 12);
  g_assert_cmpint (usage.reasoning_tokens, ==, 5);
  g_assert_cmpint (usage.cached_tokens, ==, 4);

  g_assert_cmpstr (datas->pdata[datas->len - 1], ==, "[DONE]");
  for (guint i = 0; i + 1 < datas->len; i++)
    {
      JsonNode *node = kp_test_parse_json (datas->pdata[i], -1);
      JsonObject *chunk = json_node_get_object (node);
      JsonArray *choices = json_object_get_array_member (chunk, "choices");
      JsonObject *choice = json_array_get_length (choices) > 0
                             ? json_array_get_object_element (choices, 0) : NULL;
      JsonObject *delta = choice ? json_object_get_object_member (choice, "delta") : NULL;

      g_ptr_array_add (nodes, node);
      g_assert_cmpstr (json_object_get_string_member (chunk, "id"), ==, "chatcmpl-r-9");
      if (delta != NULL && json_object_has_member (delta, "content") &&
          !json_object_get_null_member (delta, "content"))
        g_string_append (content, json_object_get_string_member (delta, "content"));
      if (delta != NULL && json_object_has_member (delta, "reasoning_content"))
        g_string_append (reasoning, json_object_get_string_member (delta, "reasoning_content"));
      if (delta != NULL && json_object_has_member (delta, "tool_calls"))
        {
          JsonObject *call = json_array_get_object_element (
            json_object_get_array_member (delta, "tool_calls"), 0);

          call_id = json_object_get_string_member (call, "id");
          g_assert_cmpstr (json_object_get_string_member (json_object_get_object_member (call, "function"),
                                                          "name"), ==, "get_weather");
          g_assert_cmpstr (json_object_get_string_member (json_object_get_object_member (call, "function"),
                                                          "arguments"), ==, "{\"city\":\"Paris\"}");
        }
      if (choice != NULL && json_object_has_member (choice, "finish_reason") &&
          !json_object_get_null_member (choice, "finish_reason"))
        finish = json_object_get_string_member (choice, "finish_reason");
      if (json_object_has_member (chunk, "usage") && !json_object_get_null_member (chunk, "usage"))
        last_usage = json_object_get_member (chunk, "usage");
    }
  g_assert_cmpstr (content->str, ==, "Hello, world");
  g_assert_cmpstr (reasoning->str, ==, "Pondering");
  g_assert_cmpstr (finish, ==, "tool_calls");
  g_assert_nonnull (call_id);
  signature = kp_gemini_signature_from_tool_id (call_id, NULL);
  g_assert_cmpstr (signature, ==, "c2lnLW9uZS+/");
  g_assert_nonnull (last_usage);
  g_assert_cmpint (json_object_get_int_member (json_node_get_object (last_usage), "completion_tokens"),
                   ==, 12);
}

/* Gemini's SSE → events → an Anthropic client's stream. */
static void
test_stream_to_anthropic (void)
{
  gsize len;
  g_autofree char *text = kp_test_load_text ("gemini", "gemini-stream.sse", &len);
  g_autoptr(KpWireRequest) req = request_for (&kp_wire_anthropic,
    "{\"model\":\"m\",\"stream\":true,\"max_tokens\":10,"
    "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", NULL, NULL);
  KpUsage usage;
  g_autoptr(GString) out = run_bridge (&kp_wire_gemini, req, text, len, &usage);
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GPtrArray) datas = sse_datas (out->str, out->len, names);
  g_autoptr(GString) said = g_string_new (NULL);
  g_autoptr(GString) thought = g_string_new (NULL);
  const char *stop_reason = NULL;
  g_autofree char *tool_id = NULL;
  g_autoptr(GPtrArray) nodes = g_ptr_array_new_with_free_func ((GDestroyNotify)json_node_unref);

  g_assert_cmpstr (names->pdata[0], ==, "message_start");
  g_assert_cmpstr (names->pdata[names->len - 1], ==, "message_stop");
  for (guint i = 0; i < datas->len; i++)
    {
      JsonNode *node = kp_test_parse_json (datas->pdata[i], -1);
      JsonObject *data = json_node_get_object (node);

      g_ptr_array_add (nodes, node);
      if (g_str_equal (names->pdata[i], "content_block_delta"))
        {
          JsonObject *delta = json_object_get_object_member (data, "delta");
          const char *type = json_object_get_string_member (delta, "type");

          if (g_str_equal (type, "text_delta"))
            g_string_append (said, json_object_get_string_member (delta, "text"));
          else if (g_str_equal (type, "thinking_delta"))
            g_string_append (thought, json_object_get_string_member (delta, "thinking"));
        }
      else if (g_str_equal (names->pdata[i], "content_block_start"))
        {
          JsonObject *block = json_object_get_object_member (data, "content_block");

          if (g_str_equal (json_object_get_string_member (block, "type"), "tool_use"))
            tool_id = g_strdup (json_object_get_string_member (block, "id"));
        }
      else if (g_str_equal (names->pdata[i], "message_delta"))
        {
          stop_reason = json_object_get_string_member (json_object_get_object_member (data, "delta"),
                                                       "stop_reason");
          g_assert_cmpint (json_object_get_int_member (json_object_get_object_member (data, "usage"),
                                                       "output_tokens"), ==, 12);
          g_assert_cmpint (json_object_get_int_member (json_object_get_object_member (data, "usage"),
                                                       "cache_read_input_tokens"), ==, 4);
        }
    }
  g_assert_cmpstr (said->str, ==, "Hello, world");
  g_assert_cmpstr (thought->str, ==, "Pondering");
  g_assert_cmpstr (stop_reason, ==, "tool_use");
  /* The signature survived Anthropic's id rules. */
  {
    g_autofree char *signature = kp_gemini_signature_from_tool_id (tool_id, NULL);

    g_assert_cmpstr (signature, ==, "c2lnLW9uZS+/");
  }
}

/* The hub's events as a Gemini client reads them: SSE, or one JSON array
 * (read back element by element into events again).
 */
typedef struct
{
  GString *text;
  GString *reasoning;
  guint    n_calls;
  KpFinish finish;
  KpUsage  usage;
  char    *call_name;
  char    *signature;
} Seen;

static void
on_seen (const KpEvent *event,
         gpointer       user_data)
{
  Seen *seen = user_data;

  switch (event->type)
    {
    case KP_EVENT_TEXT:
      g_string_append (seen->text, event->text);
      break;
    case KP_EVENT_REASONING:
      g_string_append (seen->reasoning, event->text);
      break;
    case KP_EVENT_TOOL_CALL:
      seen->n_calls++;
      g_free (seen->call_name);
      seen->call_name = g_strdup (event->name);
      g_free (seen->signature);
      seen->signature = kp_gemini_signature_from_tool_id (event->id, NULL);
      g_assert_cmpstr (event->text, ==, "{\"city\":\"Paris\"}");
      break;
    case KP_EVENT_FINISH:
      seen->finish = event->finish;
      break;
    case KP_EVENT_USAGE:
      seen->usage = *event->usage;
      break;
    default:
      break;
    }
}

static void
check_seen (Seen *seen)
{
  g_assert_cmpstr (seen->text->str, ==, "Hello, world");
  g_assert_cmpstr (seen->reasoning->str, ==, "Pondering");
  g_assert_cmpuint (seen->n_calls, ==, 1);
  g_assert_cmpstr (seen->call_name, ==, "get_weather");
  g_assert_cmpstr (seen->signature, ==, "c2lnLW9uZS+/");
  g_assert_cmpint (seen->finish, ==, KP_FINISH_TOOL_CALLS);
  g_assert_cmpint (seen->usage.prompt_tokens, ==, 12);
  g_assert_cmpint (seen->usage.completion_tokens, ==, 12);
  g_assert_cmpint (seen->usage.reasoning_tokens, ==, 5);
  g_string_free (seen->text, TRUE);
  g_string_free (seen->reasoning, TRUE);
  g_free (seen->call_name);
  g_free (seen->signature);
}

static void
test_gemini_client_streams (void)
{
  gsize len;
  g_autofree char *text = kp_test_load_text ("gemini", "gemini-stream.sse", &len);
  const char *body = "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"hi\"}]}]}";

  for (guint as_array = 0; as_array < 2; as_array++)
    {
      g_autoptr(KpWireRequest) req = request_for (&kp_wire_gemini, body,
                                                  "/v1beta/models/m:streamGenerateContent",
                                                  as_array ? NULL : "sse");
      g_autoptr(KpGeminiDecoder) decoder = kp_gemini_decoder_new ();
      Seen seen = { g_string_new (NULL), g_string_new (NULL) };
      KpUsage usage;
      g_autoptr(GString) out = NULL;

      /* Gemini to a Gemini client: SSE passes through; an array client's
       * stream is made anew.
       */
      g_assert_cmpint (req->stream_as_array, ==, as_array);
      {
        g_autoptr(KpWireBridge) bridge = kp_wire_bridge_new (&kp_wire_gemini, &kp_wire_gemini,
                                                             req, NULL);

        g_assert_cmpint (kp_wire_bridge_is_passthrough (bridge), ==, !as_array);
      }
      if (!as_array)
        {
          /* What an OpenAI provider's stream becomes for a Gemini SSE client. */
          g_autoptr(KpWireRequest) openai_req = request_for (&kp_wire_openai_chat,
            "{\"model\":\"m\",\"stream\":true,\"stream_options\":{\"include_usage\":true},"
            "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", NULL, NULL);
          g_autoptr(GString) openai = run_bridge (&kp_wire_gemini, openai_req, text, len, &usage);
          g_autoptr(GPtrArray) datas = NULL;

          out = run_bridge (&kp_wire_openai_chat, req, openai->str, openai->len, &usage);
          datas = sse_datas (out->str, out->len, NULL);

          for (guint i = 0; i < datas->len; i++)
            kp_gemini_decoder_feed_data (decoder, datas->pdata[i], strlen (datas->pdata[i]),
                                         on_seen, &seen);
        }
      else
        {
          g_autoptr(JsonNode) node = NULL;
          JsonArray *array;

          out = run_bridge (&kp_wire_gemini, req, text, len, &usage);
          g_assert_true (out->str[0] == '[' && out->str[out->len - 1] == ']');
          node = kp_test_parse_json (out->str, out->len);
          array = json_node_get_array (node);
          g_assert_cmpuint (json_array_get_length (array), >=, 4);
          for (guint i = 0; i < json_array_get_length (array); i++)
            kp_gemini_decoder_feed (decoder, json_array_get_object_element (array, i),
                                    on_seen, &seen);
        }
      check_seen (&seen);
    }
}

/* An error mid-stream ends an array as its last element. */
static void
test_array_error (void)
{
  const char *body = "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"hi\"}]}]}";
  g_autoptr(KpWireRequest) array = request_for (&kp_wire_gemini, body,
                                                "/v1beta/models/m:streamGenerateContent", NULL);
  g_autoptr(KpWireRequest) sse = request_for (&kp_wire_gemini, body,
                                              "/v1beta/models/m:streamGenerateContent", "sse");
  g_autoptr(GString) out = g_string_new ("[{\"candidates\":[]}");
  g_autoptr(GString) event = g_string_new (NULL);
  g_autoptr(JsonNode) node = NULL;
  JsonObject *error;

  kp_wire_error_event (array, 502, "upstream_error", "broke \"off\"", out);
  node = kp_test_parse_json (out->str, out->len);
  error = json_object_get_object_member (json_array_get_object_element (json_node_get_array (node), 1),
                                         "error");
  g_assert_cmpint (json_object_get_int_member (error, "code"), ==, 502);
  g_assert_cmpstr (json_object_get_string_member (error, "message"), ==, "broke \"off\"");
  g_assert_cmpstr (json_object_get_string_member (error, "status"), ==, "INTERNAL");

  kp_wire_error_event (sse, 429, "rate_limited", "slow", event);
  g_assert_cmpstr (event->str, ==,
                   "data: {\"error\":{\"code\":429,\"message\":\"slow\","
                   "\"status\":\"RESOURCE_EXHAUSTED\"}}\r\n\r\n");
}

/* Signs of life: none for Gemini's SSE clients (their SDK would stall on a
 * comment), white space in an array, a comment for the others.
 */
static void
test_keepalive (void)
{
  const char *body = "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"hi\"}]}]}";
  g_autoptr(KpWireRequest) sse = request_for (&kp_wire_gemini, body,
                                              "/v1beta/models/m:streamGenerateContent", "sse");
  g_autoptr(KpWireRequest) array = request_for (&kp_wire_gemini, body,
                                                "/v1beta/models/m:streamGenerateContent", NULL);
  g_autoptr(KpWireRequest) chat = request_for (&kp_wire_openai_chat,
    "{\"model\":\"m\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
    NULL, NULL);
  g_autoptr(KpWireBridge) to_sse = kp_wire_bridge_new (&kp_wire_openai_chat, &kp_wire_gemini, sse, NULL);
  g_autoptr(KpWireBridge) to_array = kp_wire_bridge_new (&kp_wire_openai_chat, &kp_wire_gemini, array,
                                                         NULL);
  g_autoptr(KpWireBridge) to_chat = kp_wire_bridge_new (&kp_wire_gemini, &kp_wire_openai_chat, chat,
                                                        NULL);
  g_autoptr(GString) out = g_string_new (NULL);

  kp_wire_bridge_keepalive (to_sse, out);
  g_assert_cmpstr (out->str, ==, "");
  kp_wire_bridge_keepalive (to_array, out);
  g_assert_cmpstr (out->str, ==, "\n");
  g_string_truncate (out, 0);
  kp_wire_bridge_keepalive (to_chat, out);
  g_assert_cmpstr (out->str, ==, ": keep-alive\n\n");
}

/* Function calls wait for the end of the stream: their number and size are
 * bounded.
 */
static void
test_held_calls_bounded (void)
{
  const char *body = "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"hi\"}]}]}";
  g_autoptr(KpWireRequest) req = request_for (&kp_wire_gemini, body,
                                              "/v1beta/models/m:streamGenerateContent", "sse");
  const KpWireEncoderClass *klass = &kp_gemini_encoder_class;
  KpWireEncoder encoder = klass->create (req);
  g_autoptr(GString) out = g_string_new (NULL);
  g_autofree char *piece = g_strnfill (1024 * 1024, ' ');
  g_autoptr(GPtrArray) datas = NULL;
  g_autoptr(JsonNode) last = NULL;
  JsonArray *parts;

  for (guint i = 0; i < 600; i++)
    {
      KpEvent event = { .type = KP_EVENT_TOOL_CALL, .index = i, .id = "c", .name = "f",
                        .text = "{}" };

      klass->tool_call (encoder, &event, out);
    }
  /* 64 MiB offered; at most 16 held. */
  for (guint i = 0; i < 64; i++)
    klass->tool_args (encoder, 0, piece, out);
  g_assert_cmpuint (out->len, ==, 0);
  klass->finish (encoder, KP_FINISH_TOOL_CALLS, out);
  klass->end (encoder, out);
  klass->destroy (encoder);

  g_assert_cmpuint (out->len, <, 17 * 1024 * 1024);
  datas = sse_datas (out->str, out->len, NULL);
  g_assert_cmpuint (datas->len, ==, 1);
  last = kp_test_parse_json (datas->pdata[0], -1);
  parts = json_object_get_array_member (json_object_get_object_member (
    json_array_get_object_element (json_object_get_array_member (json_node_get_object (last),
                                                                 "candidates"), 0), "content"),
    "parts");
  g_assert_cmpuint (json_array_get_length (parts), ==, 512);
}

/* Every Google error body of §3.1 and §7 into its class. */
static void
test_error_classes (void)
{
  static const struct
  {
    guint status;
    const char *body;
    KpFailureClass klass;
    gint64 retry_after;
  } cases[] = {
    { 400, "{\"error\":{\"code\":400,\"message\":\"API key not valid. Please pass a valid API key.\","
           "\"status\":\"INVALID_ARGUMENT\",\"details\":[{\"@type\":\"type.googleapis.com/"
           "google.rpc.ErrorInfo\",\"reason\":\"API_KEY_INVALID\",\"domain\":\"googleapis.com\"}]}}",
      KP_FAILURE_AUTH, -1 },
    { 400, "{\"error\":{\"code\":400,\"message\":\"Invalid JSON payload received.\","
           "\"status\":\"INVALID_ARGUMENT\"}}", KP_FAILURE_CLIENT, -1 },
    { 400, "{\"error\":{\"code\":400,\"message\":\"User location is not supported for the API use.\","
           "\"status\":\"FAILED_PRECONDITION\"}}", KP_FAILURE_AUTH, -1 },
    { 403, "{\"error\":{\"code\":403,\"message\":\"Method doesn't allow unregistered callers.\","
           "\"status\":\"PERMISSION_DENIED\"}}", KP_FAILURE_AUTH, -1 },
    { 404, "{\"error\":{\"code\":404,\"message\":\"models/gemini-9 is not found for API version "
           "v1beta\",\"status\":\"NOT_FOUND\"}}", KP_FAILURE_MODEL_MISSING, -1 },
    { 429, "{\"error\":{\"code\":429,\"message\":\"You exceeded your current quota, please check "
           "your plan and billing details.\",\"status\":\"RESOURCE_EXHAUSTED\",\"details\":["
           "{\"@type\":\"type.googleapis.com/google.rpc.QuotaFailure\",\"violations\":[{\"quotaMetric\":"
           "\"generativelanguage.googleapis.com/generate_content_free_tier_requests\",\"quotaId\":"
           "\"GenerateRequestsPerDayPerProjectPerModel-FreeTier\"}]},{\"@type\":"
           "\"type.googleapis.com/google.rpc.RetryInfo\",\"retryDelay\":\"37s\"}]}}",
      KP_FAILURE_QUOTA, 37 },
    { 429, "{\"error\":{\"code\":429,\"message\":\"You exceeded your current quota, please check "
           "your plan and billing details.\",\"status\":\"RESOURCE_EXHAUSTED\",\"details\":["
           "{\"@type\":\"type.googleapis.com/google.rpc.QuotaFailure\",\"violations\":[{\"quotaId\":"
           "\"GenerateRequestsPerMinutePerProjectPerModel-FreeTier\"}]},{\"@type\":"
           "\"type.googleapis.com/google.rpc.RetryInfo\",\"retryDelay\":\"1.5s\"}]}}",
      KP_FAILURE_RATE_LIMITED, 2 },
    { 429, "{\"error\":{\"code\":429,\"message\":\"Resource has been exhausted (e.g. check quota).\","
           "\"status\":\"RESOURCE_EXHAUSTED\"}}", KP_FAILURE_RATE_LIMITED, -1 },
    { 500, "{\"error\":{\"code\":500,\"message\":\"An internal error has occurred.\","
           "\"status\":\"INTERNAL\"}}", KP_FAILURE_DOWN, -1 },
    { 503, "{\"error\":{\"code\":503,\"message\":\"The model is overloaded. Please try again later.\","
           "\"status\":\"UNAVAILABLE\"}}", KP_FAILURE_DOWN, -1 },
    { 504, "{\"error\":{\"code\":504,\"message\":\"Deadline exceeded\",\"status\":"
           "\"DEADLINE_EXCEEDED\"}}", KP_FAILURE_DOWN, -1 },
    /* The compatible endpoint's array-wrapped error. */
    { 400, "[{\"error\":{\"code\":400,\"message\":\"API key expired. Please renew the API key.\","
           "\"status\":\"INVALID_ARGUMENT\",\"details\":[{\"@type\":\"type.googleapis.com/"
           "google.rpc.ErrorInfo\",\"reason\":\"API_KEY_EXPIRED\"}]}}]", KP_FAILURE_AUTH, -1 },
    /* Details of the wrong kind count as absent: never read as a value. */
    { 429, "{\"error\":{\"code\":429,\"message\":\"m\",\"status\":\"RESOURCE_EXHAUSTED\","
           "\"details\":[{\"@type\":{}},{\"@type\":7},{\"@type\":[\"x\"]}]}}",
      KP_FAILURE_RATE_LIMITED, -1 },
    { 400, "{\"error\":{\"code\":400,\"message\":\"m\",\"status\":\"INVALID_ARGUMENT\","
           "\"details\":[{\"@type\":\"type.googleapis.com/google.rpc.ErrorInfo\",\"reason\":{}}]}}",
      KP_FAILURE_CLIENT, -1 },
    { 429, "{\"error\":{\"code\":429,\"message\":\"m\",\"status\":\"RESOURCE_EXHAUSTED\","
           "\"details\":[{\"@type\":\"type.googleapis.com/google.rpc.RetryInfo\",\"retryDelay\":[]},"
           "{\"@type\":\"type.googleapis.com/google.rpc.QuotaFailure\",\"violations\":"
           "[{\"quotaId\":{}},{\"quotaId\":[\"PerDay\"]},7]}]}}",
      KP_FAILURE_RATE_LIMITED, -1 },
    { 403, "{\"error\":{\"code\":403,\"message\":\"m\",\"status\":\"PERMISSION_DENIED\","
           "\"details\":[{\"@type\":\"type.googleapis.com/google.rpc.Help\",\"links\":"
           "[{\"url\":{}}]}]}}",
      KP_FAILURE_AUTH, -1 },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      KpFailure failure;

      kp_failure_classify_http (&failure, cases[i].status, NULL, cases[i].body,
                                strlen (cases[i].body));
      /* Gemini's 503 is the model's load, not the key's fault. */
      g_assert_cmpint (failure.overloaded, ==, cases[i].status == 503);
      if (failure.klass != cases[i].klass || failure.retry_after != cases[i].retry_after)
        g_error ("case %u: %s, retry %" G_GINT64_FORMAT, i,
                 kp_failure_class_to_string (failure.klass), failure.retry_after);
      g_assert_nonnull (failure.message);
      kp_failure_clear (&failure);
    }

  /* The same error as an event of a 200 stream: its code is its status. */
  {
    KpFailure failure;

    kp_failure_classify_event (&failure, cases[6].body);
    g_assert_cmpint (failure.klass, ==, KP_FAILURE_RATE_LIMITED);
    kp_failure_clear (&failure);
    kp_failure_classify_event (&failure, cases[9].body);
    g_assert_cmpint (failure.klass, ==, KP_FAILURE_DOWN);
    kp_failure_clear (&failure);
  }

  /* A stream's error event is an ERROR event. */
  {
    g_autoptr(KpGeminiDecoder) decoder = kp_gemini_decoder_new ();
    const char *error_text = NULL;

    kp_gemini_decoder_feed_data (decoder, cases[9].body, strlen (cases[9].body),
                                 on_error_event, &error_text);
    g_assert_true (error_text == cases[9].body);
  }

  /* Another wire's error in Google's shape. */
  {
    const char *openai = "{\"error\":{\"message\":\"Rate limit reached\",\"type\":\"requests\"}}";
    g_autofree char *json = kp_wire_translate_error (&kp_wire_gemini, 429, openai, strlen (openai));

    g_assert_cmpstr (json, ==, "{\"error\":{\"code\":429,\"message\":\"Rate limit reached\","
                               "\"status\":\"RESOURCE_EXHAUSTED\"}}");
  }
}

static void
test_models_json (void)
{
  const char *openai = "{\"object\":\"list\",\"data\":[{\"id\":\"google/gemini-2.5-flash\","
                       "\"display_name\":\"Gemini 2.5 Flash\"},{\"id\":\"deepseek-chat\"}]}";
  g_autofree char *json = kp_wire_gemini.models_json (openai, strlen (openai));
  g_autoptr(JsonNode) node = kp_test_parse_json (json, -1);
  JsonArray *models = json_object_get_array_member (json_node_get_object (node), "models");
  JsonObject *first = json_array_get_object_element (models, 0);
  g_autofree char *count = kp_wire_gemini.count_json (42);

  g_assert_cmpuint (json_array_get_length (models), ==, 2);
  g_assert_cmpstr (json_object_get_string_member (first, "name"), ==, "models/google/gemini-2.5-flash");
  g_assert_cmpstr (json_object_get_string_member (first, "displayName"), ==, "Gemini 2.5 Flash");
  g_assert_true (json_array_get_length (json_object_get_array_member (first,
                                                                      "supportedGenerationMethods")) > 0);
  g_assert_cmpstr (count, ==, "{\"totalTokens\":42}");
}

/* GET /v1beta/models/{model}: the id, else the first whose id ends in it. */
static void
test_model_json (void)
{
  const char *openai = "{\"object\":\"list\",\"data\":[{\"id\":\"google/gemini-2.5-flash\","
                       "\"display_name\":\"Gemini 2.5 Flash\"},{\"id\":\"other/gemini-2.5-flash\"},"
                       "{\"id\":\"deepseek-chat\"}]}";
  static const struct { const char *path; guint status; const char *name; } cases[] = {
    { "/v1beta/models/google/gemini-2.5-flash", 200, "models/google/gemini-2.5-flash" },
    { "/v1beta/models/google%2Fgemini-2.5-flash", 200, "models/google/gemini-2.5-flash" },
    { "/v1beta/models/gemini-2.5-flash", 200, "models/google/gemini-2.5-flash" },
    { "/v1beta/models/models%2Fdeepseek-chat", 200, "models/deepseek-chat" },
    { "/v1beta/models/other%2Fgemini-2.5-flash", 200, "models/other/gemini-2.5-flash" },
    { "/v1beta/models/gemini-9", 404, NULL },
    { "/v1beta/models/flash", 404, NULL },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      guint status = 0;
      g_autofree char *json = kp_wire_gemini.model_json (openai, strlen (openai), cases[i].path, &status);
      g_autoptr(JsonNode) node = kp_test_parse_json (json, -1);
      JsonObject *object = json_node_get_object (node);

      g_assert_cmpuint (status, ==, cases[i].status);
      if (cases[i].name != NULL)
        g_assert_cmpstr (json_object_get_string_member (object, "name"), ==, cases[i].name);
      else
        {
          JsonObject *error = json_object_get_object_member (object, "error");

          g_assert_cmpint (json_object_get_int_member (error, "code"), ==, 404);
          g_assert_cmpstr (json_object_get_string_member (error, "status"), ==, "NOT_FOUND");
          g_assert_nonnull (strstr (json_object_get_string_member (error, "message"), "models/"));
        }
    }
}

/* Gemini 3 thinks by level, not budget: low for little effort, else high. */
static void
test_thinking_level (void)
{
  static const struct { const char *effort; const char *model; const char *level; gint64 budget; } cases[] = {
    { "low", "gemini-3-pro-preview", "low", -1 },
    { "none", "gemini-3-pro-preview", "low", -1 },
    { "minimal", "models/gemini-3-flash", "low", -1 },
    { "medium", "gemini-3-pro-preview", "high", -1 },
    { "high", "gemini-3.1-pro-preview", "high", -1 },
    { "high", "gemini-2.5-pro", NULL, 24576 },
    { "none", "gemini-2.5-flash", NULL, 0 },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *text = g_strdup_printf ("{\"model\":\"m\",\"reasoning_effort\":\"%s\","
                                               "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
                                               cases[i].effort);
      g_autoptr(JsonNode) request = kp_test_parse_json (text, -1);
      g_autoptr(GError) error = NULL;
      g_autoptr(JsonNode) built = kp_gemini_request_from_openai (json_node_get_object (request), &error);
      JsonObject *thinking;

      g_assert_no_error (error);
      kp_gemini_thinking_for_model (json_node_get_object (built), cases[i].model);
      thinking = json_object_get_object_member (
        json_object_get_object_member (json_node_get_object (built), "generationConfig"), "thinkingConfig");
      g_assert_cmpstr (json_object_get_string_member_with_default (thinking, "thinkingLevel", NULL), ==,
                       cases[i].level);
      g_assert_cmpint (json_object_get_int_member_with_default (thinking, "thinkingBudget", -1), ==,
                       cases[i].budget);
      if (cases[i].level != NULL)
        g_assert_true (json_object_get_boolean_member (thinking, "includeThoughts"));

      /* And back: a Gemini client's level is the same effort. */
      if (cases[i].level != NULL)
        g_assert_cmpstr (kp_gemini_effort_for_thinking (thinking), ==, cases[i].level);
    }
}

/* :embedContent and :batchEmbedContents are Gemini's embeddings wire. */
static void
test_embed_routes (void)
{
  const char *one = "{\"content\":{\"parts\":[{\"text\":\"hi\"}]}}";
  const char *batch = "{\"requests\":[{\"model\":\"models/e\",\"content\":{\"parts\":[{\"text\":\"a\"}]}},"
                      "{\"model\":\"models/e\",\"content\":{\"parts\":[{\"text\":\"b\"}]}}]}";
  g_autoptr(GString) big = g_string_new ("{\"requests\":[");
  g_autoptr(KpWireRequest) req = NULL;
  g_autoptr(KpWireRequest) many = NULL;
  g_autoptr(KpWireRequest) partless = NULL;
  g_autoptr(GBytes) big_bytes = NULL;
  g_autoptr(GBytes) partless_bytes = g_bytes_new_static ("{\"content\":{\"parts\":[]}}", 24);
  g_autoptr(GError) error = NULL;

  g_assert_true (kp_wire_for_route ("/v1beta/models/e:embedContent") == &kp_wire_gemini_embed);
  g_assert_true (kp_wire_for_route ("/v1beta/models/google%2Fe:batchEmbedContents") == &kp_wire_gemini_embed);
  g_assert_true (kp_wire_for_route ("/v1beta/models/e:generateContent") == &kp_wire_gemini);
  g_assert_true (kp_wire_for_route ("/v1beta/models/e") == &kp_wire_gemini);
  g_assert_cmpint (kp_wire_route_kind (&kp_wire_gemini_embed, "/v1beta/models/e:embedContent"), ==,
                   KP_ROUTE_REQUEST);
  g_assert_cmpint (kp_wire_gemini_embed.kind, ==, KP_WIRE_KIND_EMBEDDINGS);

  req = request_for (&kp_wire_gemini_embed, one, "/v1beta/models/models%2Fgoogle%2Fe:embedContent", NULL);
  g_assert_cmpstr (req->model, ==, "google/e");
  g_assert_false (req->stream);
  g_clear_pointer (&req, kp_wire_request_free);
  req = request_for (&kp_wire_gemini_embed, batch, "/v1beta/models/e:batchEmbedContents", NULL);
  g_assert_cmpstr (req->model, ==, "e");

  /* The batch is bounded, and every content has a part. */
  for (guint i = 0; i < 101; i++)
    g_string_append_printf (big, "%s{\"content\":{\"parts\":[{\"text\":\"x\"}]}}", i ? "," : "");
  g_string_append (big, "]}");
  big_bytes = g_bytes_new (big->str, big->len);
  many = kp_wire_request_new (&kp_wire_gemini_embed, big_bytes, NULL);
  kp_wire_request_set_path (many, "/v1beta/models/e:batchEmbedContents", NULL);
  g_assert_false (kp_wire_request_parse (many, &error));
  g_assert_error (error, KP_WIRE_ERROR, KP_WIRE_ERROR_MISSING_INPUT);
  g_clear_error (&error);
  partless = kp_wire_request_new (&kp_wire_gemini_embed, partless_bytes, NULL);
  kp_wire_request_set_path (partless, "/v1beta/models/e:embedContent", NULL);
  g_assert_false (kp_wire_request_parse (partless, &error));
  g_assert_error (error, KP_WIRE_ERROR, KP_WIRE_ERROR_MISSING_INPUT);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/keypool/gemini/request-from-openai", test_request_from_openai);
  g_test_add_func ("/keypool/gemini/request-errors", test_request_errors);
  g_test_add_func ("/keypool/gemini/request-to-openai", test_request_to_openai);
  g_test_add_func ("/keypool/gemini/routes", test_routes);
  g_test_add_func ("/keypool/gemini/schema", test_schema);
  g_test_add_func ("/keypool/gemini/signatures", test_signatures);
  g_test_add_func ("/keypool/gemini/answers", test_answers);
  g_test_add_func ("/keypool/gemini/usage-and-finish", test_usage_and_finish);
  g_test_add_func ("/keypool/gemini/stream-to-openai", test_stream_to_openai);
  g_test_add_func ("/keypool/gemini/stream-to-anthropic", test_stream_to_anthropic);
  g_test_add_func ("/keypool/gemini/client-streams", test_gemini_client_streams);
  g_test_add_func ("/keypool/gemini/array-error", test_array_error);
  g_test_add_func ("/keypool/gemini/keepalive", test_keepalive);
  g_test_add_func ("/keypool/gemini/held-calls-bounded", test_held_calls_bounded);
  g_test_add_func ("/keypool/gemini/error-classes", test_error_classes);
  g_test_add_func ("/keypool/gemini/models-json", test_models_json);
  g_test_add_func ("/keypool/gemini/model-json", test_model_json);
  g_test_add_func ("/keypool/gemini/thinking-level", test_thinking_level);
  g_test_add_func ("/keypool/gemini/embed-routes", test_embed_routes);

  return g_test_run ();
}
