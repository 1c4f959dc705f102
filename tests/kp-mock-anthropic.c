/* kp-mock-anthropic.c: the mock provider's Anthropic Messages side
 *
 * POST …/messages answers as Anthropic does. The model picks the answer:
 *
 *   claude-text       "Hello from Anthropic", end_turn
 *   claude-tools      a sentence, a ping, then two tool calls whose input
 *                     arrives in pieces split mid-token; stop_reason tool_use
 *   claude-thinking   a thinking block with its signature, then text
 *   claude-cache      text, with usage that read and wrote the prompt cache
 *   claude-max        text cut by max_tokens
 *   claude-429        429 rate_limit_error, retry-after: 5
 *   claude-429-reset  429 rate_limit_error with only an
 *                     anthropic-ratelimit-requests-reset time, 40 s ahead
 *   claude-529        529 overloaded_error
 *   claude-credit     400 "Your credit balance is too low …"
 *   claude-bad        400 invalid_request_error (the request's fault)
 *   claude-overload-event  200 stream: message_start, then an error event
 *
 * A key with "invalid" in it gets 401 authentication_error. Streams go out
 * one event at a time, a few milliseconds apart; every event is the text
 * kp_mock_anthropic_stream() returns, so a test can check that a relay
 * passed them through byte for byte.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include "config.h"

#include <string.h>

#include <json-glib/json-glib.h>

#include "kp-mock-upstream.h"

#define EVENT_INTERVAL_MS 3

#define START(model, input, read, write) \
  "event: message_start\n" \
  "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_mock01\",\"type\":\"message\"," \
  "\"role\":\"assistant\",\"model\":\"" model "\",\"content\":[],\"stop_reason\":null," \
  "\"stop_sequence\":null,\"usage\":{\"input_tokens\":" input ",\"output_tokens\":1," \
  "\"cache_creation_input_tokens\":" write ",\"cache_read_input_tokens\":" read "}}}\n\n"

#define TEXT_BLOCK(i) \
  "event: content_block_start\n" \
  "data: {\"type\":\"content_block_start\",\"index\":" i ",\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"

#define TEXT(i, text) \
  "event: content_block_delta\n" \
  "data: {\"type\":\"content_block_delta\",\"index\":" i ",\"delta\":{\"type\":\"text_delta\",\"text\":\"" text "\"}}\n\n"

#define TOOL_BLOCK(i, id, name) \
  "event: content_block_start\n" \
  "data: {\"type\":\"content_block_start\",\"index\":" i ",\"content_block\":{\"type\":\"tool_use\"," \
  "\"id\":\"" id "\",\"name\":\"" name "\",\"input\":{}}}\n\n"

#define JSON_PART(i, part) \
  "event: content_block_delta\n" \
  "data: {\"type\":\"content_block_delta\",\"index\":" i ",\"delta\":{\"type\":\"input_json_delta\"," \
  "\"partial_json\":\"" part "\"}}\n\n"

#define STOP_BLOCK(i) \
  "event: content_block_stop\n" \
  "data: {\"type\":\"content_block_stop\",\"index\":" i "}\n\n"

#define END(reason, output) \
  "event: message_delta\n" \
  "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"" reason "\",\"stop_sequence\":null}," \
  "\"usage\":{\"output_tokens\":" output "}}\n\n" \
  "event: message_stop\n" \
  "data: {\"type\":\"message_stop\"}\n\n"

#define PING "event: ping\ndata: {\"type\": \"ping\"}\n\n"

typedef struct
{
  const char *model;
  const char *stream;
  const char *message;   /* the same answer, not streamed */
} Script;

static const Script scripts[] = {
  { "claude-text",
    START ("claude-text", "12", "0", "0") PING TEXT_BLOCK ("0") TEXT ("0", "Hello")
    TEXT ("0", " from") TEXT ("0", " Anthropic") STOP_BLOCK ("0") END ("end_turn", "4"),
    "{\"id\":\"msg_mock02\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-text\","
    "\"content\":[{\"type\":\"text\",\"text\":\"Hello from Anthropic\"}],\"stop_reason\":\"end_turn\","
    "\"stop_sequence\":null,\"usage\":{\"input_tokens\":12,\"output_tokens\":4,"
    "\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0}}" },
  { "claude-tools",
    START ("claude-tools", "40", "0", "0") TEXT_BLOCK ("0") TEXT ("0", "Checking both.") STOP_BLOCK ("0")
    PING TOOL_BLOCK ("1", "toolu_01A", "get_weather") JSON_PART ("1", "") JSON_PART ("1", "{\\\"ci")
    JSON_PART ("1", "ty\\\": \\\"Par") JSON_PART ("1", "is\\\"}") STOP_BLOCK ("1")
    TOOL_BLOCK ("2", "toolu_01B", "get_time") JSON_PART ("2", "{\\\"zone\\\":")
    JSON_PART ("2", " \\\"CET\\\"}") STOP_BLOCK ("2") END ("tool_use", "31"),
    "{\"id\":\"msg_mock03\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-tools\","
    "\"content\":[{\"type\":\"text\",\"text\":\"Checking both.\"},"
    "{\"type\":\"tool_use\",\"id\":\"toolu_01A\",\"name\":\"get_weather\",\"input\":{\"city\":\"Paris\"}},"
    "{\"type\":\"tool_use\",\"id\":\"toolu_01B\",\"name\":\"get_time\",\"input\":{\"zone\":\"CET\"}}],"
    "\"stop_reason\":\"tool_use\",\"stop_sequence\":null,\"usage\":{\"input_tokens\":40,"
    "\"output_tokens\":31,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0}}" },
  { "claude-thinking",
    START ("claude-thinking", "20", "0", "0")
    "event: content_block_start\n"
    "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"thinking\",\"thinking\":\"\"}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"Two plus two\"}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\" is four.\"}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"signature_delta\",\"signature\":\"c2lnbmF0dXJl\"}}\n\n"
    STOP_BLOCK ("0") TEXT_BLOCK ("1") TEXT ("1", "4") STOP_BLOCK ("1") END ("end_turn", "15"),
    "{\"id\":\"msg_mock04\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-thinking\","
    "\"content\":[{\"type\":\"thinking\",\"thinking\":\"Two plus two is four.\",\"signature\":\"c2lnbmF0dXJl\"},"
    "{\"type\":\"text\",\"text\":\"4\"}],\"stop_reason\":\"end_turn\",\"stop_sequence\":null,"
    "\"usage\":{\"input_tokens\":20,\"output_tokens\":15,\"cache_creation_input_tokens\":0,"
    "\"cache_read_input_tokens\":0}}" },
  { "claude-cache",
    START ("claude-cache", "100", "2000", "500") TEXT_BLOCK ("0") TEXT ("0", "Cached.") STOP_BLOCK ("0")
    END ("end_turn", "50"),
    "{\"id\":\"msg_mock05\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-cache\","
    "\"content\":[{\"type\":\"text\",\"text\":\"Cached.\"}],\"stop_reason\":\"end_turn\","
    "\"stop_sequence\":null,\"usage\":{\"input_tokens\":100,\"output_tokens\":50,"
    "\"cache_creation_input_tokens\":500,\"cache_read_input_tokens\":2000}}" },
  { "claude-max",
    START ("claude-max", "9", "0", "0") TEXT_BLOCK ("0") TEXT ("0", "Once upon") STOP_BLOCK ("0")
    END ("max_tokens", "2"),
    "{\"id\":\"msg_mock06\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-max\","
    "\"content\":[{\"type\":\"text\",\"text\":\"Once upon\"}],\"stop_reason\":\"max_tokens\","
    "\"stop_sequence\":null,\"usage\":{\"input_tokens\":9,\"output_tokens\":2}}" },
  { "claude-overload-event",
    START ("claude-overload-event", "9", "0", "0")
    "event: error\n"
    "data: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n",
    NULL },
};

static const Script *
find_script (const char *model)
{
  for (guint i = 0; i < G_N_ELEMENTS (scripts); i++)
    if (g_str_equal (scripts[i].model, model))
      return &scripts[i];
  return NULL;
}

/**
 * kp_mock_anthropic_stream:
 * @model: a model of the list above
 *
 * Returns: the exact bytes the mock streams for @model, or %NULL
 */
const char *
kp_mock_anthropic_stream (const char *model)
{
  const Script *script = find_script (model);

  return script ? script->stream : NULL;
}

/**
 * kp_mock_anthropic_message:
 *
 * Returns: the exact body the mock answers a non-streamed request with
 */
const char *
kp_mock_anthropic_message (const char *model)
{
  const Script *script = find_script (model);

  return script ? script->message : NULL;
}

typedef struct
{
  SoupServerMessage *msg;
  const char        *next;     /* the rest of the script */
  guint              timeout_id;
  gboolean           finished;
} Stream;

static void
stream_free (Stream *stream)
{
  g_clear_handle_id (&stream->timeout_id, g_source_remove);
  g_clear_object (&stream->msg);
  g_free (stream);
}

static void
on_finished (SoupServerMessage *msg,
             Stream            *stream)
{
  g_signal_handlers_disconnect_by_data (msg, stream);
  stream_free (stream);
}

static gboolean
stream_tick (gpointer user_data)
{
  Stream *stream = user_data;
  SoupMessageBody *body = soup_server_message_get_response_body (stream->msg);
  const char *end = strstr (stream->next, "\n\n");

  /* One event: up to and including its blank line. */
  end = end ? end + 2 : stream->next + strlen (stream->next);
  soup_message_body_append (body, SOUP_MEMORY_COPY, stream->next, end - stream->next);
  stream->next = end;

  if (*stream->next == '\0')
    {
      stream->timeout_id = 0;
      soup_message_body_complete (body);
      soup_server_message_unpause (stream->msg);
      return G_SOURCE_REMOVE;
    }

  soup_server_message_unpause (stream->msg);
  return G_SOURCE_CONTINUE;
}

static void
reply (SoupServerMessage *msg,
       guint              status,
       const char        *body)
{
  soup_server_message_set_status (msg, status, NULL);
  soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_COPY, body, strlen (body));
}

static void
reply_error (SoupServerMessage *msg,
             guint              status,
             const char        *type,
             const char        *message)
{
  g_autofree char *body =
    g_strdup_printf ("{\"type\":\"error\",\"error\":{\"type\":\"%s\",\"message\":\"%s\"},"
                     "\"request_id\":\"req_mock\"}", type, message);

  reply (msg, status, body);
}

/**
 * kp_mock_anthropic_handle:
 * @stats: the mock's statistics, updated
 * @msg: a POST to …/messages
 */
void
kp_mock_anthropic_handle (KpMockStats       *stats,
                          SoupServerMessage *msg)
{
  SoupMessageHeaders *request_headers = soup_server_message_get_request_headers (msg);
  SoupMessageHeaders *headers = soup_server_message_get_response_headers (msg);
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GBytes) bytes = NULL;
  const char *key = soup_message_headers_get_one (request_headers, "x-api-key");
  const Script *script;
  JsonObject *request;
  const char *model;
  const char *data;
  gsize len;

  bytes = soup_message_body_flatten (soup_server_message_get_request_body (msg));
  data = g_bytes_get_data (bytes, &len);
  stats->requests++;
  g_free (stats->last_body);
  stats->last_body = g_strndup (data, len);
  g_free (stats->last_auth);
  stats->last_auth = g_strdup (key);
  g_free (stats->last_anthropic_beta);
  stats->last_anthropic_beta =
    g_strdup (soup_message_headers_get_one (request_headers, "anthropic-beta"));
  g_free (stats->last_anthropic_version);
  stats->last_anthropic_version =
    g_strdup (soup_message_headers_get_one (request_headers, "anthropic-version"));

  if (key == NULL)
    {
      reply_error (msg, 401, "authentication_error", "x-api-key header is required");
      return;
    }
  if (strstr (key, "invalid") != NULL)
    {
      reply_error (msg, 401, "authentication_error", "invalid x-api-key");
      return;
    }

  if (!json_parser_load_from_data (parser, data, len, NULL) ||
      !JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
    {
      reply_error (msg, 400, "invalid_request_error", "mock: the body is not JSON");
      return;
    }
  request = json_node_get_object (json_parser_get_root (parser));
  model = json_object_get_string_member_with_default (request, "model", "");

  /* What Anthropic insists on, so that a translation that forgets it fails. */
  if (json_object_get_int_member_with_default (request, "max_tokens", 0) <= 0)
    {
      reply_error (msg, 400, "invalid_request_error", "max_tokens: Field required");
      return;
    }

  if (g_str_equal (model, "claude-429"))
    {
      soup_message_headers_replace (headers, "retry-after", "5");
      reply_error (msg, 429, "rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit");
      return;
    }
  if (g_str_equal (model, "claude-429-reset"))
    {
      g_autoptr(GDateTime) now = g_date_time_new_now_utc ();
      g_autoptr(GDateTime) reset = g_date_time_add_seconds (now, 40);
      g_autofree char *text = g_date_time_format_iso8601 (reset);

      soup_message_headers_replace (headers, "anthropic-ratelimit-requests-reset", text);
      reply_error (msg, 429, "rate_limit_error", "Number of requests has exceeded your rate limit");
      return;
    }
  if (g_str_equal (model, "claude-529"))
    {
      reply_error (msg, 529, "overloaded_error", "Overloaded");
      return;
    }
  if (g_str_equal (model, "claude-credit"))
    {
      reply_error (msg, 400, "invalid_request_error",
                   "Your credit balance is too low to access the Anthropic API. "
                   "Please go to Plans & Billing to upgrade or purchase credits.");
      return;
    }
  if (g_str_equal (model, "claude-bad"))
    {
      reply_error (msg, 400, "invalid_request_error",
                   "messages.1.content.0: unexpected tool_use_id found in tool_result blocks");
      return;
    }

  script = find_script (model);
  if (script == NULL)
    {
      g_autofree char *message = g_strdup_printf ("model: %s", model);

      reply_error (msg, 404, "not_found_error", message);
      return;
    }

  if (json_object_get_boolean_member_with_default (request, "stream", FALSE))
    {
      Stream *stream = g_new0 (Stream, 1);

      stream->msg = g_object_ref (msg);
      stream->next = script->stream;
      soup_server_message_set_status (msg, 200, NULL);
      soup_message_headers_set_encoding (headers, SOUP_ENCODING_CHUNKED);
      soup_message_headers_replace (headers, "Content-Type", "text/event-stream; charset=utf-8");
      soup_message_headers_replace (headers, "request-id", "req_mock");
      soup_message_body_set_accumulate (soup_server_message_get_response_body (msg), FALSE);
      soup_server_message_pause (msg);
      g_signal_connect (msg, "finished", G_CALLBACK (on_finished), stream);
      stream->timeout_id = g_timeout_add (EVENT_INTERVAL_MS, stream_tick, stream);
      return;
    }

  if (script->message == NULL)
    {
      reply_error (msg, 529, "overloaded_error", "Overloaded");
      return;
    }
  reply (msg, 200, script->message);
}
