/* kp-mock-agent.c: the mock provider's chat model that calls tools
 *
 * mock-agent answers a Chat request that offers tools with a call of the
 * first one, its arguments {"city": "Paris"} (streamed in two pieces); a
 * request whose last message is a tool result gets "The tool said:
 * RESULT." So a client can go round a tool loop through Keypool.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include "config.h"

#include "kp-mock-private.h"

/* The first function tool the request offers, or NULL. */
static const char *
first_tool (JsonObject *request)
{
  JsonArray *tools = kp_mock_array_member (request, "tools");

  for (guint i = 0; tools != NULL && i < json_array_get_length (tools); i++)
    {
      JsonNode *tool = json_array_get_element (tools, i);
      JsonObject *function;

      if (!JSON_NODE_HOLDS_OBJECT (tool))
        continue;
      function = kp_mock_object_member (json_node_get_object (tool), "function");
      if (function != NULL &&
          json_object_get_string_member_with_default (function, "name", NULL) != NULL)
        return json_object_get_string_member (function, "name");
    }
  return NULL;
}

/* The content of the last message when it is a tool result, or NULL. */
static char *
last_tool_result (JsonObject *request)
{
  JsonArray *messages = kp_mock_array_member (request, "messages");
  guint n = messages != NULL ? json_array_get_length (messages) : 0;
  JsonNode *last = n > 0 ? json_array_get_element (messages, n - 1) : NULL;
  JsonNode *content;

  if (last == NULL || !JSON_NODE_HOLDS_OBJECT (last) ||
      g_strcmp0 (json_object_get_string_member_with_default (json_node_get_object (last), "role", ""),
                 "tool") != 0)
    return NULL;
  content = json_object_get_member (json_node_get_object (last), "content");
  if (content != NULL && JSON_NODE_HOLDS_VALUE (content) &&
      json_node_get_value_type (content) == G_TYPE_STRING)
    return g_strdup (json_node_get_string (content));
  return content != NULL ? json_to_string (content, FALSE) : g_strdup ("");
}

static JsonObject *
agent_chunk (JsonObject *delta,
             const char *finish_reason)
{
  JsonObject *chunk = json_object_new ();
  JsonObject *choice = json_object_new ();
  JsonArray *choices = json_array_new ();

  json_object_set_string_member (chunk, "id", "mock-a");
  json_object_set_string_member (chunk, "object", "chat.completion.chunk");
  json_object_set_int_member (chunk, "created", 1);
  json_object_set_string_member (chunk, "model", "mock-agent");
  json_object_set_int_member (choice, "index", 0);
  json_object_set_object_member (choice, "delta", delta);
  if (finish_reason != NULL)
    json_object_set_string_member (choice, "finish_reason", finish_reason);
  else
    json_object_set_null_member (choice, "finish_reason");
  json_array_add_object_element (choices, choice);
  json_object_set_array_member (chunk, "choices", choices);
  return chunk;
}

static JsonObject *
agent_call (const char *tool,
            const char *arguments,
            gboolean    first)
{
  JsonObject *call = json_object_new ();
  JsonObject *function = json_object_new ();

  json_object_set_int_member (call, "index", 0);
  if (first)
    {
      json_object_set_string_member (call, "id", "call_mock_a1");
      json_object_set_string_member (call, "type", "function");
      json_object_set_string_member (function, "name", tool);
    }
  json_object_set_string_member (function, "arguments", arguments);
  json_object_set_object_member (call, "function", function);
  return call;
}

static void
add_agent_chunk (GString    *events,
                 JsonObject *chunk)
{
  g_autofree char *data = kp_mock_object_to_data (chunk);

  g_string_append_printf (events, "data: %s\n\n", data);
}

/**
 * kp_mock_agent_reply:
 * @msg: a chat request for the model mock-agent
 * @request: its body
 *
 * Answers with a call of the first tool, or, after its result, a sentence
 * that quotes the result.
 */
void
kp_mock_agent_reply (SoupServerMessage *msg,
                     JsonObject        *request,
                     gboolean           stream,
                     gboolean           include_usage)
{
  g_autofree char *result = last_tool_result (request);
  g_autofree char *text = NULL;
  const char *tool = result == NULL ? first_tool (request) : NULL;
  JsonObject *usage = json_object_new ();

  json_object_set_int_member (usage, "prompt_tokens", 20);
  json_object_set_int_member (usage, "completion_tokens", 6);
  json_object_set_int_member (usage, "total_tokens", 26);
  if (tool == NULL)
    text = result != NULL ? g_strdup_printf ("The tool said: %s.", result) : g_strdup ("No tools.");

  if (stream)
    {
      g_autoptr(GString) events = g_string_new (NULL);
      JsonObject *delta = json_object_new ();
      JsonArray *calls;

      json_object_set_string_member (delta, "role", "assistant");
      json_object_set_string_member (delta, "content", "");
      add_agent_chunk (events, agent_chunk (delta, NULL));
      delta = json_object_new ();
      if (tool != NULL)
        {
          calls = json_array_new ();
          json_array_add_object_element (calls, agent_call (tool, "{\"city\": ", TRUE));
          json_object_set_array_member (delta, "tool_calls", calls);
          add_agent_chunk (events, agent_chunk (delta, NULL));
          delta = json_object_new ();
          calls = json_array_new ();
          json_array_add_object_element (calls, agent_call (tool, "\"Paris\"}", FALSE));
          json_object_set_array_member (delta, "tool_calls", calls);
        }
      else
        json_object_set_string_member (delta, "content", text);
      add_agent_chunk (events, agent_chunk (delta, NULL));
      add_agent_chunk (events, agent_chunk (json_object_new (), tool != NULL ? "tool_calls" : "stop"));
      if (include_usage)
        {
          JsonObject *last = agent_chunk (json_object_new (), NULL);

          json_object_set_array_member (last, "choices", json_array_new ());
          json_object_set_object_member (last, "usage", usage);
          add_agent_chunk (events, last);
        }
      else
        json_object_unref (usage);
      g_string_append (events, "data: [DONE]\n\n");
      kp_mock_reply_sse (msg, events);
      return;
    }

  {
    JsonObject *answer = agent_chunk (json_object_new (), tool != NULL ? "tool_calls" : "stop");
    JsonObject *choice = json_array_get_object_element (json_object_get_array_member (answer, "choices"), 0);
    JsonObject *message = json_object_new ();

    json_object_set_string_member (answer, "object", "chat.completion");
    json_object_set_string_member (message, "role", "assistant");
    if (tool != NULL)
      {
        JsonArray *calls = json_array_new ();
        JsonObject *call = agent_call (tool, "{\"city\": \"Paris\"}", TRUE);

        json_object_remove_member (call, "index");
        json_array_add_object_element (calls, call);
        json_object_set_null_member (message, "content");
        json_object_set_array_member (message, "tool_calls", calls);
      }
    else
      json_object_set_string_member (message, "content", text);
    json_object_remove_member (choice, "delta");
    json_object_set_object_member (choice, "message", message);
    json_object_set_object_member (answer, "usage", usage);
    kp_mock_reply_json (msg, 200, answer);
  }
}
