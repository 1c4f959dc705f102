/* test-kiro.c: the Kiro wire, from fixtures and through the real relay
 *
 * Requests: a tricky conversation (system text, tools, two rounds of tool
 * calls with a repeated result, an image, a trailing assistant turn) becomes
 * the conversationState written from the protocol notes. Streams: the
 * fixtures in tests/fixtures/kiro/ (the .events files) (text with a repeat, tool
 * fragments, reasoning, credits, an exception mid-answer) through a bridge
 * to OpenAI and Anthropic clients. Then a mock Kiro server on loopback,
 * through the server and relay: streams, whole answers, broken frames, and
 * each class of Kiro's errors to the key's state.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include "config.h"

#include <string.h>

#include <json-glib/json-glib.h>

#include "kp-gateway.h"
#include "kp-mock-kiro.h"
#include "kp-sse.h"
#include "kp-test-util.h"
#include "wire/kp-wire-anthropic-private.h"
#include "wire/kp-wire-kiro-private.h"
#include "wire/kp-wire-openai-private.h"

#define TOKEN "kp-kiro-token-0123456789"
#define KIRO_KEY "kiro-access-token-0001"

/* Requests ----------------------------------------------------------------- */

static void
test_request_tricky (void)
{
  g_autofree char *input = kp_test_load_text ("kiro", "request-tricky.json", NULL);
  g_autofree char *expected_text = kp_test_load_text ("kiro", "request-tricky.kiro.json", NULL);
  g_autoptr(JsonNode) request = kp_test_parse_json (input, -1);
  g_autoptr(JsonNode) expected = kp_test_parse_json (expected_text, -1);
  g_autoptr(JsonNode) built = NULL;
  g_autoptr(GError) error = NULL;
  JsonObject *state;
  const char *id;

  built = kp_kiro_request_from_openai (json_node_get_object (request), "claude-sonnet-4.5",
                                       "arn:aws:codewhisperer:eu-central-1:123456789012:profile/ABCDEFGHIJ",
                                       &error);
  g_assert_no_error (error);
  state = json_object_get_object_member (json_node_get_object (built), "conversationState");
  id = json_object_get_string_member (state, "conversationId");
  g_assert_true (g_uuid_string_is_valid (id));
  json_object_set_string_member (state, "conversationId", "(fixed)");
  kp_test_assert_json_equal (built, expected, "Kiro's request");
}

/* The same conversation from an Anthropic client, through the hub. */
static void
test_request_from_anthropic (void)
{
  static const char body[] =
    "{\"model\":\"kiro/x\",\"max_tokens\":100,\"system\":\"Be brief.\","
    "\"tools\":[{\"name\":\"f\",\"description\":\"does f\",\"input_schema\":{\"type\":\"object\"}}],"
    "\"messages\":[{\"role\":\"assistant\",\"content\":\"I start.\"},"
    "{\"role\":\"user\",\"content\":\"Go\"},"
    "{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\",\"id\":\"tu_1\",\"name\":\"f\",\"input\":{\"a\":1}}]},"
    "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"tu_1\",\"content\":\"ok\"}]}]}";
  g_autoptr(GBytes) bytes = g_bytes_new_static (body, strlen (body));
  g_autoptr(KpWireRequest) req = kp_wire_request_new (&kp_wire_anthropic, bytes, NULL);
  KpOffering offering = { .model_id = (char *)"kiro/x", .upstream_id = (char *)"claude-haiku-4.5" };
  KpWireTarget target = { .offering = &offering };
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) built = NULL;
  g_autoptr(JsonNode) node = NULL;
  g_autofree char *history = NULL;
  JsonObject *state;

  g_assert_true (kp_wire_request_parse (req, &error));
  built = kp_wire_build_upstream (req, &kp_wire_kiro, &target, &error);
  g_assert_no_error (error);
  g_assert_null (target.uri);
  node = kp_test_parse_json (g_bytes_get_data (built, NULL), -1);
  state = json_object_get_object_member (json_node_get_object (node), "conversationState");
  history = json_to_string (json_object_get_member (state, "history"), FALSE);

  /* A user turn stands before the assistant's first: the system text. */
  g_assert_true (g_str_has_prefix (history,
                                   "[{\"userInputMessage\":{\"content\":\"Be brief.\",\"modelId\""));
  g_assert_nonnull (strstr (history, "\"toolUses\":[{\"toolUseId\":\"tu_1\",\"name\":\"f\","
                                     "\"input\":{\"a\":1}}]"));
  {
    g_autofree char *current = json_to_string (json_object_get_member (state, "currentMessage"),
                                               FALSE);

    g_assert_nonnull (strstr (current, "\"toolResults\":[{\"toolUseId\":\"tu_1\",\"status\":"
                                       "\"success\",\"content\":[{\"text\":\"ok\"}]}]"));
    g_assert_nonnull (strstr (current, "\"toolSpecification\":{\"name\":\"f\""));
    g_assert_nonnull (strstr (current, "\"modelId\":\"claude-haiku-4.5\""));
  }
  g_assert_false (json_object_has_member (json_node_get_object (node), "profileArn"));
}

static void
test_request_edges (void)
{
  g_autoptr(GString) long_description = g_string_new (NULL);
  g_autoptr(JsonNode) request = NULL;
  g_autoptr(JsonNode) built = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *json = NULL;
  JsonObject *spec;
  const char *description;

  /* A description over 10,000 characters (two bytes each) is cut at a character. */
  for (guint i = 0; i < 12000; i++)
    g_string_append (long_description, "é");
  json = g_strdup_printf ("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
                          "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\","
                          "\"description\":\"%s\"}}]}", long_description->str);
  request = kp_test_parse_json (json, -1);
  built = kp_kiro_request_from_openai (json_node_get_object (request), "auto", NULL, &error);
  g_assert_no_error (error);
  spec = json_object_get_object_member (
    json_array_get_object_element (
      json_object_get_array_member (
        json_object_get_object_member (
          json_object_get_object_member (
            json_object_get_object_member (
              json_object_get_object_member (json_node_get_object (built), "conversationState"),
              "currentMessage"),
            "userInputMessage"),
          "userInputMessageContext"),
        "tools"),
      0),
    "toolSpecification");
  description = json_object_get_string_member (spec, "description");
  g_assert_cmpint (g_utf8_strlen (description, -1), ==, KP_KIRO_MAX_TOOL_DESCRIPTION);
  g_assert_true (g_utf8_validate (description, -1, NULL));
  g_clear_pointer (&built, json_node_unref);
  g_clear_pointer (&request, json_node_unref);

  /* tool_choice none: no tools at all. */
  request = kp_test_parse_json ("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
                                "\"tool_choice\":\"none\","
                                "\"tools\":[{\"type\":\"function\","
                                "\"function\":{\"name\":\"f\"}}]}", -1);
  built = kp_kiro_request_from_openai (json_node_get_object (request), "auto", NULL, &error);
  g_assert_no_error (error);
  {
    g_autofree char *text = json_to_string (built, FALSE);

    g_assert_null (strstr (text, "toolSpecification"));
    g_assert_null (strstr (text, "history"));
  }
  g_clear_pointer (&built, json_node_unref);
  g_clear_pointer (&request, json_node_unref);

  /* An image Kiro cannot take, and a URL it cannot fetch. */
  request = kp_test_parse_json ("{\"messages\":[{\"role\":\"user\",\"content\":["
                                "{\"type\":\"image_url\","
                                "\"image_url\":{\"url\":\"https://example.com/a.png\"}}]}]}", -1);
  built = kp_kiro_request_from_openai (json_node_get_object (request), "auto", NULL, &error);
  g_assert_null (built);
  g_assert_error (error, KP_WIRE_ERROR, KP_WIRE_ERROR_UNSUPPORTED);
  g_assert_nonnull (strstr (error->message, "data: URLs"));
  g_clear_error (&error);
  g_clear_pointer (&request, json_node_unref);
  request = kp_test_parse_json ("{\"messages\":[{\"role\":\"user\",\"content\":["
                                "{\"type\":\"image_url\","
                                "\"image_url\":{\"url\":\"data:image/tiff;base64,AAAA\"}}]}]}",
                                -1);
  built = kp_kiro_request_from_openai (json_node_get_object (request), "auto", NULL, &error);
  g_assert_null (built);
  g_assert_error (error, KP_WIRE_ERROR, KP_WIRE_ERROR_UNSUPPORTED);
  g_clear_error (&error);
  g_clear_pointer (&request, json_node_unref);

  /* A tool message that names nothing. */
  request = kp_test_parse_json ("{\"messages\":[{\"role\":\"tool\",\"content\":\"x\"}]}", -1);
  built = kp_kiro_request_from_openai (json_node_get_object (request), "auto", NULL, &error);
  g_assert_null (built);
  g_assert_error (error, KP_WIRE_ERROR, KP_WIRE_ERROR_INVALID);
}

static void
test_regions (void)
{
  g_autoptr(GUri) q = g_uri_parse ("https://q.us-east-1.amazonaws.com/generateAssistantResponse",
                                   G_URI_FLAGS_NONE, NULL);
  g_autoptr(GUri) local = g_uri_parse ("http://127.0.0.1:8080/generateAssistantResponse",
                                       G_URI_FLAGS_NONE, NULL);
  g_autoptr(GUri) moved = NULL;
  g_autofree char *region = NULL;
  g_autofree char *text = NULL;

  region = kp_kiro_region_of_arn ("arn:aws:codewhisperer:eu-central-1:123456789012:profile/X");
  g_assert_cmpstr (region, ==, "eu-central-1");
  g_assert_null (kp_kiro_region_of_arn ("arn:aws:codewhisperer:EU/../x:1:profile/X"));
  g_assert_null (kp_kiro_region_of_arn ("not an arn"));
  g_assert_null (kp_kiro_region_of_arn (NULL));

  moved = kp_kiro_uri_for_region (q, region);
  text = g_uri_to_string (moved);
  g_assert_cmpstr (text, ==, "https://q.eu-central-1.amazonaws.com/generateAssistantResponse");
  g_assert_null (kp_kiro_uri_for_region (q, "us-east-1"));
  g_assert_null (kp_kiro_uri_for_region (local, "eu-central-1"));
  g_assert_null (kp_kiro_uri_for_region (q, "evil.com/"));
}

/* Streams through a bridge --------------------------------------------------- */

/* What a client read from its stream. */
typedef struct
{
  GString   *text;
  GString   *reasoning;
  GPtrArray *tools;      /* "id name arguments", by index */
  char      *finish;
  char      *error;
} Read;

static void
read_clear (Read *read)
{
  g_string_free (read->text, TRUE);
  g_string_free (read->reasoning, TRUE);
  g_ptr_array_unref (read->tools);
  g_free (read->finish);
  g_free (read->error);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Read, read_clear)

static void
string_free_all (gpointer data)
{
  g_string_free (data, TRUE);
}

static void
read_init (Read *read)
{
  read->text = g_string_new (NULL);
  read->reasoning = g_string_new (NULL);
  read->tools = g_ptr_array_new_with_free_func (string_free_all);
}

static const char *
member_string (JsonObject *object,
               const char *name)
{
  JsonNode *node = object != NULL ? json_object_get_member (object, name) : NULL;

  return node != NULL && JSON_NODE_HOLDS_VALUE (node) &&
         json_node_get_value_type (node) == G_TYPE_STRING ? json_node_get_string (node) : NULL;
}

static JsonObject *
member_object (JsonObject *object,
               const char *name)
{
  JsonNode *node = object != NULL ? json_object_get_member (object, name) : NULL;

  return node != NULL && JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
}

static GString *
tool_at (Read  *read,
         guint  index)
{
  while (read->tools->len <= index)
    g_ptr_array_add (read->tools, g_string_new (NULL));
  return g_ptr_array_index (read->tools, index);
}

/* One event of an OpenAI Chat stream. */
static void
read_openai (Read       *read,
             JsonObject *chunk)
{
  JsonArray *choices = json_object_has_member (chunk, "choices")
                         ? json_object_get_array_member (chunk, "choices") : NULL;
  JsonObject *choice;
  JsonObject *delta;

  if (member_object (chunk, "error") != NULL)
    {
      g_free (read->error);
      read->error = g_strdup (member_string (member_object (chunk, "error"), "message"));
      return;
    }
  if (choices == NULL || json_array_get_length (choices) == 0)
    return;
  choice = json_array_get_object_element (choices, 0);
  delta = member_object (choice, "delta");
  if (member_string (delta, "content") != NULL)
    g_string_append (read->text, member_string (delta, "content"));
  if (member_string (delta, "reasoning_content") != NULL)
    g_string_append (read->reasoning, member_string (delta, "reasoning_content"));
  if (delta != NULL && json_object_has_member (delta, "tool_calls"))
    {
      JsonArray *calls = json_object_get_array_member (delta, "tool_calls");

      for (guint i = 0; i < json_array_get_length (calls); i++)
        {
          JsonObject *call = json_array_get_object_element (calls, i);
          JsonObject *function = member_object (call, "function");
          GString *tool = tool_at (read, (guint)json_object_get_int_member (call, "index"));

          if (member_string (call, "id") != NULL)
            g_string_append_printf (tool, "%s %s ", member_string (call, "id"),
                                    member_string (function, "name"));
          if (member_string (function, "arguments") != NULL)
            g_string_append (tool, member_string (function, "arguments"));
        }
    }
  if (member_string (choice, "finish_reason") != NULL)
    {
      g_free (read->finish);
      read->finish = g_strdup (member_string (choice, "finish_reason"));
    }
}

/* One event of an Anthropic stream; tool blocks are numbered in order. */
static void
read_anthropic (Read       *read,
                JsonObject *event,
                GArray     *block_tools)
{
  const char *type = member_string (event, "type");
  gint64 index = json_object_get_int_member_with_default (event, "index", -1);

  if (g_strcmp0 (type, "error") == 0)
    {
      g_free (read->error);
      read->error = g_strdup (member_string (member_object (event, "error"), "message"));
    }
  else if (g_strcmp0 (type, "content_block_start") == 0)
    {
      JsonObject *block = member_object (event, "content_block");
      gint tool = -1;

      if (g_strcmp0 (member_string (block, "type"), "tool_use") == 0)
        {
          tool = (gint)read->tools->len;
          g_string_append_printf (tool_at (read, tool), "%s %s ", member_string (block, "id"),
                                  member_string (block, "name"));
        }
      while (block_tools->len <= (guint)index)
        g_array_append_val (block_tools, tool);
      g_array_index (block_tools, gint, index) = tool;
    }
  else if (g_strcmp0 (type, "content_block_delta") == 0)
    {
      JsonObject *delta = member_object (event, "delta");
      const char *kind = member_string (delta, "type");

      if (g_strcmp0 (kind, "text_delta") == 0)
        g_string_append (read->text, member_string (delta, "text"));
      else if (g_strcmp0 (kind, "thinking_delta") == 0)
        g_string_append (read->reasoning, member_string (delta, "thinking"));
      else if (g_strcmp0 (kind, "input_json_delta") == 0)
        g_string_append (tool_at (read, g_array_index (block_tools, gint, index)),
                         member_string (delta, "partial_json"));
    }
  else if (g_strcmp0 (type, "message_delta") == 0)
    {
      g_free (read->finish);
      read->finish = g_strdup (member_string (member_object (event, "delta"), "stop_reason"));
    }
}

/* Reads a client's SSE stream. */
static void
read_stream (const KpWire *client,
             const char   *sse,
             gsize         len,
             Read         *read)
{
  KpSseEvent event = { .data = g_string_new (NULL) };
  g_autoptr(GArray) block_tools = g_array_new (FALSE, FALSE, sizeof (gint));
  gsize offset = 0;
  gsize used;

  read_init (read);
  while ((used = kp_sse_next_event (sse + offset, len - offset, &event)) > 0)
    {
      g_autoptr(JsonNode) node = NULL;

      offset += used;
      if (!event.has_data || g_str_equal (event.data->str, "[DONE]"))
        continue;
      node = kp_test_parse_json (event.data->str, -1);
      if (client == &kp_wire_anthropic)
        read_anthropic (read, json_node_get_object (node), block_tools);
      else
        read_openai (read, json_node_get_object (node));
    }
  g_assert_cmpuint (offset, ==, len);
  g_string_free (event.data, TRUE);
}

/* Feeds a fixture's event stream, cut as the relay cuts it, to a bridge
 * toward @client. Returns the status of the last feed.
 */
static KpStreamStatus
run_bridge (const KpWire *client,
            const char   *fixture,
            GString      *out,
            KpUsage      *usage,
            char        **error_data)
{
  g_autoptr(GByteArray) stream = kp_mock_kiro_load_events (fixture);
  g_autoptr(GBytes) body = g_bytes_new_static ("{}", 2);
  g_autoptr(KpWireRequest) req = kp_wire_request_new (client, body, NULL);
  KpOffering offering = { .model_id = (char *)"kiro/claude", .upstream_id = (char *)"claude",
                          .context = 200000 };
  KpWireTarget target = { .offering = &offering };
  g_autoptr(KpWireBridge) bridge = NULL;
  KpSseEvent event = { .data = g_string_new (NULL) };
  KpStreamStatus status = KP_STREAM_CONTINUE;
  gsize offset = 0;
  gssize used;

  req->model = g_strdup ("kiro/claude");
  req->stream = TRUE;
  req->prompt_tokens = 42;
  bridge = kp_wire_bridge_new (&kp_wire_kiro, client, req, &target);
  g_assert_false (kp_wire_bridge_is_passthrough (bridge));
  while ((used = kp_kiro_next_event (stream->data + offset, stream->len - offset, TRUE,
                                     &event, NULL)) > 0)
    {
      gboolean raw;

      offset += used;
      status = kp_wire_bridge_feed (bridge, event.name, event.name_len, event.data->str,
                                    event.data->len, out, &raw);
      g_assert_false (raw);
      if (status == KP_STREAM_ERROR)
        {
          *error_data = g_strdup (kp_wire_bridge_get_error (bridge));
          break;
        }
    }
  if (status != KP_STREAM_ERROR)
    {
      g_assert_cmpint (used, ==, 0);
      g_assert_true (kp_wire_bridge_finish (bridge, out));
      status = KP_STREAM_END;
    }
  *usage = *kp_wire_bridge_get_usage (bridge);
  g_string_free (event.data, TRUE);
  return status;
}

static const KpWire *clients[] = { &kp_wire_openai_chat, &kp_wire_anthropic };

static void
test_stream_text (void)
{
  for (guint i = 0; i < G_N_ELEMENTS (clients); i++)
    {
      g_autoptr(GString) out = g_string_new (NULL);
      g_autofree char *error = NULL;
      g_auto(Read) read = { 0 };
      KpUsage usage;

      g_test_message ("to %s", clients[i]->id);
      g_assert_cmpint (run_bridge (clients[i], "text.events", out, &usage, &error), ==,
                       KP_STREAM_END);
      read_stream (clients[i], out->str, out->len, &read);
      /* The repeated chunk once. */
      g_assert_cmpstr (read.text->str, ==, "Hello, world!");
      g_assert_cmpstr (read.finish, ==, clients[i] == &kp_wire_anthropic ? "end_turn" : "stop");
      g_assert_null (read.error);

      /* Estimated: 12.5 % of 200,000 tokens in, 13 characters out. */
      g_assert_true (usage.known && usage.estimated);
      g_assert_cmpint (usage.prompt_tokens, ==, 25000);
      g_assert_cmpint (usage.completion_tokens, ==, 4);
      g_assert_true (usage.has_credits);
      g_assert_cmpfloat_with_epsilon (usage.credits, 0.0097, 1e-9);
    }
}

static void
test_stream_tools (void)
{
  for (guint i = 0; i < G_N_ELEMENTS (clients); i++)
    {
      g_autoptr(GString) out = g_string_new (NULL);
      g_autofree char *error = NULL;
      g_auto(Read) read = { 0 };
      KpUsage usage;

      g_test_message ("to %s", clients[i]->id);
      g_assert_cmpint (run_bridge (clients[i], "tools.events", out, &usage, &error), ==,
                       KP_STREAM_END);
      read_stream (clients[i], out->str, out->len, &read);
      g_assert_cmpstr (read.text->str, ==, "Checking.");
      g_assert_cmpuint (read.tools->len, ==, 2);
      g_assert_cmpstr (((GString *)read.tools->pdata[0])->str, ==,
                       "tooluse_a get_weather {\"city\":\"Paris\"}");
      g_assert_cmpstr (((GString *)read.tools->pdata[1])->str, ==,
                       "tooluse_b get_time {\"tz\":\"UTC\"}");
      g_assert_cmpstr (read.finish, ==, clients[i] == &kp_wire_anthropic ? "tool_use" : "tool_calls");
      /* The prompt as the request's size says, with no context event. */
      g_assert_cmpint (usage.prompt_tokens, ==, 42);
      g_assert_cmpfloat_with_epsilon (usage.credits, 0.02, 1e-9);
    }
}

static void
test_stream_reasoning (void)
{
  for (guint i = 0; i < G_N_ELEMENTS (clients); i++)
    {
      g_autoptr(GString) out = g_string_new (NULL);
      g_autofree char *error = NULL;
      g_auto(Read) read = { 0 };
      KpUsage usage;

      g_test_message ("to %s", clients[i]->id);
      g_assert_cmpint (run_bridge (clients[i], "reasoning.events", out, &usage, &error), ==,
                       KP_STREAM_END);
      read_stream (clients[i], out->str, out->len, &read);
      g_assert_cmpstr (read.reasoning->str, ==, "The user greets; answer briefly.");
      g_assert_cmpstr (read.text->str, ==, "Hi.");
    }
}

/* An exception after some text: the bridge reports it as the provider's
 * error, in the common error shape, classed as its HTTP status would be.
 */
static void
test_stream_exception (void)
{
  for (guint i = 0; i < G_N_ELEMENTS (clients); i++)
    {
      g_autoptr(GString) out = g_string_new (NULL);
      g_autofree char *error = NULL;
      g_auto(Read) read = { 0 };
      KpFailure failure = { 0 };
      KpUsage usage;

      g_test_message ("to %s", clients[i]->id);
      g_assert_cmpint (run_bridge (clients[i], "exception.events", out, &usage, &error), ==,
                       KP_STREAM_ERROR);
      read_stream (clients[i], out->str, out->len, &read);
      g_assert_cmpstr (read.text->str, ==, "Partial answer");
      g_assert_null (read.finish);
      /* The credits billed before the exception still count. */
      g_assert_cmpfloat_with_epsilon (usage.credits, 0.25, 1e-9);

      g_assert_nonnull (error);
      kp_failure_classify_event (&failure, error);
      g_assert_cmpint (failure.klass, ==, KP_FAILURE_RATE_LIMITED);
      g_assert_cmpstr (failure.message, ==, "Too many requests, please wait before trying again.");
      kp_failure_clear (&failure);
    }
}

static void
test_whole_answer (void)
{
  g_autoptr(GByteArray) stream = kp_mock_kiro_load_events ("tools.events");
  g_autoptr(JsonNode) answer = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *text = NULL;
  KpUsage usage = { 0 };

  answer = kp_kiro_answer_to_canonical ((const char *)stream->data, stream->len, "kiro/claude",
                                        &usage, &error);
  g_assert_no_error (error);
  text = json_to_string (answer, FALSE);
  g_assert_nonnull (strstr (text, "\"content\":\"Checking.\""));
  g_assert_nonnull (strstr (text, "\"tool_calls\":[{\"id\":\"tooluse_a\",\"type\":\"function\","
                                  "\"function\":{\"name\":\"get_weather\",\"arguments\":"
                                  "\"{\\\"city\\\":\\\"Paris\\\"}\"}}"));
  g_assert_nonnull (strstr (text, "\"finish_reason\":\"tool_calls\""));
  g_assert_true (usage.estimated);
  g_assert_cmpfloat_with_epsilon (usage.credits, 0.02, 1e-9);
  g_clear_pointer (&answer, json_node_unref);

  /* An exception, a cut frame and nothing at all are errors. */
  g_byte_array_unref (stream);
  stream = kp_mock_kiro_load_events ("exception.events");
  answer = kp_kiro_answer_to_canonical ((const char *)stream->data, stream->len, "m", &usage,
                                        &error);
  g_assert_null (answer);
  g_assert_error (error, KP_WIRE_ERROR, KP_WIRE_ERROR_ANSWER);
  g_assert_nonnull (strstr (error->message, "Too many requests"));
  g_clear_error (&error);

  answer = kp_kiro_answer_to_canonical ((const char *)stream->data, stream->len - 1, "m", &usage,
                                        &error);
  g_assert_null (answer);
  g_assert_error (error, KP_WIRE_ERROR, KP_WIRE_ERROR_ANSWER);
  g_clear_error (&error);

  answer = kp_kiro_answer_to_canonical ("", 0, "m", &usage, &error);
  g_assert_null (answer);
  g_assert_error (error, KP_WIRE_ERROR, KP_WIRE_ERROR_ANSWER);
}

static void
test_classify (void)
{
  static const struct
  {
    guint          status;
    const char    *body;
    KpFailureClass klass;
  } cases[] = {
    { 403, "{\"message\":\"The bearer token included in the request is invalid.\"}", KP_FAILURE_AUTH },
    { 403, "{\"message\":\"denied\",\"reason\":\"TemporarilySuspended\"}", KP_FAILURE_AUTH },
    { 423, "{\"message\":\"locked\"}", KP_FAILURE_AUTH },
    { 402, "{\"message\":\"pay\"}", KP_FAILURE_QUOTA },
    { 400, "{\"__type\":\"ServiceQuotaExceededException\",\"message\":\"limit\"}", KP_FAILURE_QUOTA },
    { 400, "{\"message\":\"x\",\"reason\":\"MONTHLY_REQUEST_COUNT\"}", KP_FAILURE_QUOTA },
    { 429, "{\"message\":\"Rate exceeded\"}", KP_FAILURE_RATE_LIMITED },
    { 400, "{\"__type\":\"ThrottlingException\",\"message\":\"slow\"}", KP_FAILURE_RATE_LIMITED },
    { 400, "{\"message\":\"Improperly formed request.\"}", KP_FAILURE_CLIENT },
    { 400, "{\"__type\":\"ValidationException\",\"message\":\"bad\"}", KP_FAILURE_CLIENT },
    { 500, "{\"message\":\"oops\"}", KP_FAILURE_DOWN },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      KpFailure failure = { 0 };

      kp_failure_classify_http (&failure, cases[i].status, NULL, cases[i].body,
                                strlen (cases[i].body));
      kp_kiro_classify (&failure, cases[i].status, cases[i].body, strlen (cases[i].body));
      g_test_message ("%u %s → %s", cases[i].status, cases[i].body,
                      kp_failure_class_to_string (failure.klass));
      g_assert_cmpint (failure.klass, ==, cases[i].klass);
      if (failure.klass == KP_FAILURE_QUOTA)
        g_assert_cmpint (failure.retry_after, >, 0);
      kp_failure_clear (&failure);
    }
}

/* Through the relay ----------------------------------------------------------- */

typedef struct
{
  KpMockKiro *mock;
  KpTestRig   rig;
} Fixture;

#define MODEL(id, upstream) \
  "{\"id\":\"kiro/" id "\",\"upstream_id\":\"" upstream "\",\"input\":3,\"output\":15," \
  "\"context\":200000}"

static void
fixture_setup (Fixture       *fixture,
               gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *provider = NULL;

  fixture->mock = kp_mock_kiro_new (&error);
  g_assert_no_error (error);
  kp_test_rig_init (&fixture->rig, "kiro");

  provider = g_strdup_printf (
    "{\"id\":\"kiro\",\"name\":\"Kiro\",\"dialect\":\"kiro\",\"base_url\":\"%s\","
    "\"subscription\":true,\"env\":[\"KP_KIRO_TEST_TOKEN\"],\"models\":["
    MODEL ("text", "kiro-text") "," MODEL ("tools", "kiro-tools") ","
    MODEL ("exception", "kiro-exception") "," MODEL ("bad-crc", "kiro-bad-crc") ","
    MODEL ("cut", "kiro-cut") "," MODEL ("empty", "kiro-empty") ","
    MODEL ("throttled", "kiro-throttled") "," MODEL ("suspended", "kiro-suspended") ","
    MODEL ("banned", "kiro-banned") "," MODEL ("quota", "kiro-quota") ","
    MODEL ("malformed", "kiro-malformed") "," MODEL ("bearer", "kiro-bearer") "]}",
    kp_mock_kiro_get_url (fixture->mock));
  kp_test_place_write_provider (&fixture->rig.place, "kiro", provider);
  kp_test_place_setenv (&fixture->rig.place, "KP_KIRO_TEST_TOKEN", KIRO_KEY);

  kp_test_rig_serve (&fixture->rig, TOKEN);
}

static void
fixture_teardown (Fixture       *fixture,
                  gconstpointer  data)
{
  kp_test_rig_clear (&fixture->rig);
  g_clear_pointer (&fixture->mock, kp_mock_kiro_free);
}

static void
post (Fixture        *fixture,
      const char     *path,
      const char     *body,
      KpTestResponse *response)
{
  g_autofree char *url = g_strconcat (fixture->rig.base, path, NULL);

  kp_test_request (fixture->rig.client, "POST", url, body, response,
                   "Authorization", "Bearer " TOKEN, "anthropic-version", "2023-06-01", NULL);
}

static char *
chat (const char *model,
      gboolean    stream)
{
  return g_strdup_printf ("{\"model\":\"kiro/%s\",\"stream\":%s,\"messages\":["
                          "{\"role\":\"system\",\"content\":\"Be brief.\"},"
                          "{\"role\":\"user\",\"content\":\"Hello\"}]}",
                          model, stream ? "true" : "false");
}

static KpRequestRow *
last_row (Fixture *fixture)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) rows = NULL;

  rows = kp_ledger_recent_requests (kp_gateway_get_ledger (fixture->rig.gateway), 1, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (rows->len, ==, 1);
  return g_ptr_array_steal_index (rows, 0);
}

/* The key usable again, whatever the last request did to it. */
static void
reset_key (Fixture *fixture)
{
  g_autoptr(GError) error = NULL;
  KpCredential *credential = kp_test_credential (fixture->rig.gateway, KIRO_KEY);

  g_assert_true (kp_gateway_reset_key (fixture->rig.gateway, kp_credential_get_id (credential),
                                       &error));
  g_assert_no_error (error);
  g_assert_cmpint (kp_test_credential_state (fixture->rig.gateway, KIRO_KEY), ==, KP_CREDENTIAL_OK);
}

static void
test_relay_stream (Fixture       *fixture,
                   gconstpointer  data)
{
  g_autofree char *body = chat ("text", TRUE);
  g_auto(KpTestResponse) response = { 0 };
  g_auto(Read) read = { 0 };
  g_autoptr(KpRequestRow) row = NULL;
  g_autoptr(JsonNode) sent = NULL;
  JsonObject *user;

  post (fixture, "/v1/chat/completions", body, &response);
  g_assert_cmpuint (response.status, ==, 200);
  g_assert_cmpstr (soup_message_headers_get_content_type (response.headers, NULL), ==,
                   "text/event-stream");
  read_stream (&kp_wire_openai_chat, response.body, response.length, &read);
  g_assert_cmpstr (read.text->str, ==, "Hello, world!");
  g_assert_cmpstr (read.finish, ==, "stop");
  g_assert_true (g_str_has_suffix (response.body, "data: [DONE]\n\n"));

  /* What Kiro got: a conversationState, with our key. */
  g_assert_cmpstr (kp_mock_kiro_get_last_auth (fixture->mock), ==, "Bearer " KIRO_KEY);
  sent = kp_test_parse_json (kp_mock_kiro_get_last_body (fixture->mock), -1);
  user = json_object_get_object_member (
    json_object_get_object_member (
      json_object_get_object_member (json_node_get_object (sent), "conversationState"),
      "currentMessage"),
    "userInputMessage");
  g_assert_cmpstr (json_object_get_string_member (user, "content"), ==, "Be brief.\n\nHello");
  g_assert_cmpstr (json_object_get_string_member (user, "modelId"), ==, "kiro-text");

  /* Tokens estimated: 12.5 % of the context in, 13 characters out; the
   * money a subscription's (no spend, whatever the list price), and the
   * credits as the meteringEvent said.
   */
  row = last_row (fixture);
  g_assert_cmpstr (row->outcome, ==, "ok");
  g_assert_cmpint (row->prompt_tokens, ==, 25000);
  g_assert_cmpint (row->completion_tokens, ==, 4);
  g_assert_true (row->tokens_estimated);
  g_assert_cmpstr (row->cost_source, ==, "subscription");
  g_assert_cmpint (row->cost_nano, ==, 0);
  g_assert_true (row->has_credits);
  g_assert_cmpfloat_with_epsilon (row->credits, 0.0097, 1e-9);
}

static void
test_relay_anthropic_tools (Fixture       *fixture,
                            gconstpointer  data)
{
  g_auto(KpTestResponse) response = { 0 };
  g_auto(Read) read = { 0 };

  post (fixture, "/v1/messages",
        "{\"model\":\"kiro/tools\",\"max_tokens\":100,\"stream\":true,"
        "\"messages\":[{\"role\":\"user\",\"content\":\"Weather?\"}]}", &response);
  g_assert_cmpuint (response.status, ==, 200);
  read_stream (&kp_wire_anthropic, response.body, response.length, &read);
  g_assert_cmpstr (read.text->str, ==, "Checking.");
  g_assert_cmpuint (read.tools->len, ==, 2);
  g_assert_cmpstr (((GString *)read.tools->pdata[0])->str, ==,
                   "tooluse_a get_weather {\"city\":\"Paris\"}");
  g_assert_cmpstr (read.finish, ==, "tool_use");
  g_assert_true (g_str_has_suffix (response.body, "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"));
}

static void
test_relay_whole (Fixture       *fixture,
                  gconstpointer  data)
{
  g_autofree char *body = chat ("tools", FALSE);
  g_auto(KpTestResponse) response = { 0 };
  g_autoptr(JsonNode) answer = NULL;
  g_autofree char *text = NULL;
  g_autoptr(KpRequestRow) row = NULL;

  post (fixture, "/v1/chat/completions", body, &response);
  g_assert_cmpuint (response.status, ==, 200);
  g_assert_cmpstr (soup_message_headers_get_content_type (response.headers, NULL), ==,
                   "application/json");
  answer = kp_test_parse_json (response.body, -1);
  text = json_to_string (answer, FALSE);
  g_assert_nonnull (strstr (text, "\"content\":\"Checking.\""));
  g_assert_nonnull (strstr (text, "\"finish_reason\":\"tool_calls\""));
  g_assert_nonnull (strstr (text, "\"name\":\"get_time\""));
  row = last_row (fixture);
  g_assert_cmpstr (row->cost_source, ==, "subscription");
  g_assert_cmpint (row->completion_tokens, >, 0);
  g_assert_true (row->tokens_estimated);
  g_assert_true (row->has_credits);
  g_assert_cmpfloat_with_epsilon (row->credits, 0.02, 1e-9);
}

/* An exception after text: the client's stream ends with an error event in
 * its own protocol, never one that looks complete.
 */
static void
test_relay_exception (Fixture       *fixture,
                      gconstpointer  data)
{
  g_auto(KpTestResponse) response = { 0 };
  g_auto(KpTestResponse) anthropic = { 0 };
  g_autofree char *body = chat ("exception", TRUE);
  g_auto(Read) read = { 0 };
  g_auto(Read) read_anthropic_stream = { 0 };
  g_autoptr(KpRequestRow) row = NULL;

  post (fixture, "/v1/chat/completions", body, &response);
  g_assert_cmpuint (response.status, ==, 200);
  read_stream (&kp_wire_openai_chat, response.body, response.length, &read);
  g_assert_cmpstr (read.text->str, ==, "Partial answer");
  g_assert_null (read.finish);
  g_assert_nonnull (read.error);
  g_assert_nonnull (strstr (read.error, "Too many requests"));
  g_assert_null (strstr (response.body, "never read"));
  row = last_row (fixture);
  g_assert_cmpstr (row->outcome, !=, "ok");

  post (fixture, "/v1/messages",
        "{\"model\":\"kiro/exception\",\"max_tokens\":100,\"stream\":true,"
        "\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}", &anthropic);
  read_stream (&kp_wire_anthropic, anthropic.body, anthropic.length, &read_anthropic_stream);
  g_assert_cmpstr (read_anthropic_stream.text->str, ==, "Partial answer");
  g_assert_nonnull (read_anthropic_stream.error);
}

/* Broken framing: a bad CRC before any content is a failed route (502
 * with the reason); a stream cut inside a message after content ends the
 * client's stream with an error; an empty stream is not an answer.
 */
static void
test_relay_broken_frames (Fixture       *fixture,
                          gconstpointer  data)
{
  {
    g_autofree char *body = chat ("bad-crc", TRUE);
    g_auto(KpTestResponse) response = { 0 };

    post (fixture, "/v1/chat/completions", body, &response);
    g_assert_cmpuint (response.status, ==, 502);
    g_assert_nonnull (strstr (response.body, "CRC"));
    g_assert_null (strstr (response.body, "{\\\"content\\\""));
  }
  reset_key (fixture);
  {
    g_autofree char *body = chat ("cut", TRUE);
    g_auto(KpTestResponse) response = { 0 };
    g_auto(Read) read = { 0 };

    post (fixture, "/v1/chat/completions", body, &response);
    g_assert_cmpuint (response.status, ==, 200);
    read_stream (&kp_wire_openai_chat, response.body, response.length, &read);
    g_assert_nonnull (read.error);
    g_assert_nonnull (strstr (read.error, "ended inside a message"));
    g_assert_null (read.finish);
  }
  reset_key (fixture);
  {
    g_autofree char *body = chat ("empty", TRUE);
    g_auto(KpTestResponse) response = { 0 };

    post (fixture, "/v1/chat/completions", body, &response);
    g_assert_cmpuint (response.status, ==, 502);
  }
  reset_key (fixture);
  {
    g_autofree char *body = chat ("cut", FALSE);
    g_auto(KpTestResponse) response = { 0 };

    post (fixture, "/v1/chat/completions", body, &response);
    g_assert_cmpuint (response.status, ==, 502);
  }
}

static void
test_relay_errors (Fixture       *fixture,
                   gconstpointer  data)
{
  static const struct
  {
    const char        *model;
    KpCredentialState  state;
    guint              status;
  } cases[] = {
    /* A malformed request is the client's: no key is blamed. */
    { "malformed", KP_CREDENTIAL_OK, 400 },
    { "throttled", KP_CREDENTIAL_COOLING, 429 },
    { "quota", KP_CREDENTIAL_EXHAUSTED, 0 },
    { "bearer", KP_CREDENTIAL_INVALID, 0 },
    { "suspended", KP_CREDENTIAL_INVALID, 0 },
    { "banned", KP_CREDENTIAL_INVALID, 0 },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *body = chat (cases[i].model, TRUE);
      g_auto(KpTestResponse) response = { 0 };

      g_test_message ("kiro/%s", cases[i].model);
      reset_key (fixture);

      post (fixture, "/v1/chat/completions", body, &response);
      g_assert_cmpuint (response.status, >=, 400);
      if (cases[i].status != 0)
        g_assert_cmpuint (response.status, ==, cases[i].status);
      g_assert_cmpint (kp_test_credential_state (fixture->rig.gateway, KIRO_KEY), ==,
                       cases[i].state);
    }
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/kiro/request/tricky", test_request_tricky);
  g_test_add_func ("/kiro/request/from-anthropic", test_request_from_anthropic);
  g_test_add_func ("/kiro/request/edges", test_request_edges);
  g_test_add_func ("/kiro/request/regions", test_regions);
  g_test_add_func ("/kiro/stream/text", test_stream_text);
  g_test_add_func ("/kiro/stream/tools", test_stream_tools);
  g_test_add_func ("/kiro/stream/reasoning", test_stream_reasoning);
  g_test_add_func ("/kiro/stream/exception", test_stream_exception);
  g_test_add_func ("/kiro/whole-answer", test_whole_answer);
  g_test_add_func ("/kiro/classify", test_classify);
  g_test_add ("/kiro/relay/stream", Fixture, NULL, fixture_setup, test_relay_stream,
              fixture_teardown);
  g_test_add ("/kiro/relay/anthropic-tools", Fixture, NULL, fixture_setup,
              test_relay_anthropic_tools, fixture_teardown);
  g_test_add ("/kiro/relay/whole", Fixture, NULL, fixture_setup, test_relay_whole,
              fixture_teardown);
  g_test_add ("/kiro/relay/exception", Fixture, NULL, fixture_setup, test_relay_exception,
              fixture_teardown);
  g_test_add ("/kiro/relay/broken-frames", Fixture, NULL, fixture_setup,
              test_relay_broken_frames, fixture_teardown);
  g_test_add ("/kiro/relay/errors", Fixture, NULL, fixture_setup, test_relay_errors,
              fixture_teardown);

  return g_test_run ();
}
