/* kp-mock-responses.c: the mock provider's OpenAI Responses API
 *
 * POST …/responses answers as OpenAI does, whatever the model:
 *
 *   - when the request offers function tools and its last input item is
 *     not a function_call_output, a function_call of the first function
 *     tool, with the arguments {"city": "Paris"} (streamed in two pieces);
 *   - otherwise a message: the mock's usual "tok0 tok1 … " text, or, after
 *     a function_call_output, "The tool said: OUTPUT." so that a test sees
 *     the output arrived.
 *
 * The model "mock-text" never calls a tool. Streams are SSE with an
 * `event:` and a `data:` line per event, an increasing sequence_number,
 * and no [DONE]: response.created … response.completed with the usage.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include "config.h"

#include <string.h>

#include "kp-mock-private.h"

#define RESPONSE_ID "resp_mock01"
#define MESSAGE_ID "msg_mock01"
#define CALL_ITEM_ID "fc_mock01"
#define CALL_ID "call_mock_r1"
#define CALL_ARGUMENTS_1 "{\"city\": "
#define CALL_ARGUMENTS_2 "\"Paris\"}"

typedef struct
{
  const char *model;
  const char *tool;      /* the function to call, or NULL to answer in text */
  char       *text;      /* the answer when there is no call */
  guint       output_tokens;
  GString    *events;
  guint       sequence;
} Answer;

static const char *
first_function_tool (JsonObject *request)
{
  JsonNode *node = json_object_get_member (request, "tools");
  JsonArray *tools;

  if (node == NULL || !JSON_NODE_HOLDS_ARRAY (node))
    return NULL;
  tools = json_node_get_array (node);
  for (guint i = 0; i < json_array_get_length (tools); i++)
    {
      JsonNode *element = json_array_get_element (tools, i);
      JsonObject *tool;

      if (!JSON_NODE_HOLDS_OBJECT (element))
        continue;
      tool = json_node_get_object (element);
      if (g_strcmp0 (json_object_get_string_member_with_default (tool, "type", ""), "function") == 0 &&
          json_object_get_string_member_with_default (tool, "name", NULL) != NULL)
        return json_object_get_string_member (tool, "name");
    }
  return NULL;
}

/* The last input item when it is a function_call_output, else NULL. */
static JsonObject *
last_function_output (JsonObject *request)
{
  JsonNode *node = json_object_get_member (request, "input");
  JsonArray *items;
  JsonNode *last;

  if (node == NULL || !JSON_NODE_HOLDS_ARRAY (node))
    return NULL;
  items = json_node_get_array (node);
  if (json_array_get_length (items) == 0)
    return NULL;
  last = json_array_get_element (items, json_array_get_length (items) - 1);
  if (!JSON_NODE_HOLDS_OBJECT (last) ||
      g_strcmp0 (json_object_get_string_member_with_default (json_node_get_object (last), "type", ""),
                 "function_call_output") != 0)
    return NULL;
  return json_node_get_object (last);
}

static JsonObject *
usage_object (guint output_tokens)
{
  JsonObject *usage = json_object_new ();
  JsonObject *input_details = json_object_new ();
  JsonObject *output_details = json_object_new ();

  json_object_set_int_member (usage, "input_tokens", 11);
  json_object_set_int_member (input_details, "cached_tokens", 3);
  json_object_set_object_member (usage, "input_tokens_details", input_details);
  json_object_set_int_member (usage, "output_tokens", output_tokens);
  json_object_set_int_member (output_details, "reasoning_tokens", 1);
  json_object_set_object_member (usage, "output_tokens_details", output_details);
  json_object_set_int_member (usage, "total_tokens", 11 + output_tokens);
  return usage;
}

static JsonObject *
text_part (const char *text)
{
  JsonObject *part = json_object_new ();

  json_object_set_string_member (part, "type", "output_text");
  json_object_set_string_member (part, "text", text);
  json_object_set_array_member (part, "annotations", json_array_new ());
  return part;
}

static JsonObject *
output_item (const Answer *answer,
             gboolean      done)
{
  JsonObject *item = json_object_new ();
  const char *status = done ? "completed" : "in_progress";

  if (answer->tool != NULL)
    {
      json_object_set_string_member (item, "type", "function_call");
      json_object_set_string_member (item, "id", CALL_ITEM_ID);
      json_object_set_string_member (item, "call_id", CALL_ID);
      json_object_set_string_member (item, "name", answer->tool);
      json_object_set_string_member (item, "arguments",
                                     done ? CALL_ARGUMENTS_1 CALL_ARGUMENTS_2 : "");
      json_object_set_string_member (item, "status", status);
    }
  else
    {
      JsonArray *content = json_array_new ();

      json_object_set_string_member (item, "type", "message");
      json_object_set_string_member (item, "id", MESSAGE_ID);
      json_object_set_string_member (item, "status", status);
      json_object_set_string_member (item, "role", "assistant");
      if (done)
        json_array_add_object_element (content, text_part (answer->text));
      json_object_set_array_member (item, "content", content);
    }
  return item;
}

static JsonObject *
response_object (const Answer *answer,
                 gboolean      done)
{
  JsonObject *response = json_object_new ();
  JsonArray *output = json_array_new ();

  json_object_set_string_member (response, "id", RESPONSE_ID);
  json_object_set_string_member (response, "object", "response");
  json_object_set_int_member (response, "created_at", 1700000000);
  json_object_set_string_member (response, "status", done ? "completed" : "in_progress");
  json_object_set_null_member (response, "error");
  json_object_set_null_member (response, "incomplete_details");
  json_object_set_string_member (response, "model", answer->model);
  if (done)
    json_array_add_object_element (output, output_item (answer, TRUE));
  json_object_set_array_member (response, "output", output);
  json_object_set_boolean_member (response, "parallel_tool_calls", TRUE);
  json_object_set_array_member (response, "tools", json_array_new ());
  json_object_set_string_member (response, "tool_choice", "auto");
  if (done)
    json_object_set_object_member (response, "usage", usage_object (answer->output_tokens));
  else
    json_object_set_null_member (response, "usage");
  return response;
}

/* Appends one event; consumes @data. */
static void
add_event (Answer     *answer,
           const char *type,
           JsonObject *data)
{
  g_autofree char *text = NULL;

  json_object_set_string_member (data, "type", type);
  json_object_set_int_member (data, "sequence_number", answer->sequence++);
  text = kp_mock_object_to_data (data);
  g_string_append_printf (answer->events, "event: %s\ndata: %s\n\n", type, text);
}

static JsonObject *
item_event (const Answer *answer,
            gboolean      done)
{
  JsonObject *data = json_object_new ();

  json_object_set_int_member (data, "output_index", 0);
  json_object_set_object_member (data, "item", output_item (answer, done));
  return data;
}

static JsonObject *
part_event (const char *member,
            const char *value)
{
  JsonObject *data = json_object_new ();

  json_object_set_string_member (data, "item_id", MESSAGE_ID);
  json_object_set_int_member (data, "output_index", 0);
  json_object_set_int_member (data, "content_index", 0);
  if (member != NULL)
    json_object_set_string_member (data, member, value);
  return data;
}

static JsonObject *
arguments_event (const char *member,
                 const char *value)
{
  JsonObject *data = json_object_new ();

  json_object_set_string_member (data, "item_id", CALL_ITEM_ID);
  json_object_set_int_member (data, "output_index", 0);
  json_object_set_string_member (data, member, value);
  return data;
}

static void
stream_answer (Answer *answer)
{
  JsonObject *data;

  data = json_object_new ();
  json_object_set_object_member (data, "response", response_object (answer, FALSE));
  add_event (answer, "response.created", data);
  data = json_object_new ();
  json_object_set_object_member (data, "response", response_object (answer, FALSE));
  add_event (answer, "response.in_progress", data);
  add_event (answer, "response.output_item.added", item_event (answer, FALSE));

  if (answer->tool != NULL)
    {
      add_event (answer, "response.function_call_arguments.delta",
                 arguments_event ("delta", CALL_ARGUMENTS_1));
      add_event (answer, "response.function_call_arguments.delta",
                 arguments_event ("delta", CALL_ARGUMENTS_2));
      add_event (answer, "response.function_call_arguments.done",
                 arguments_event ("arguments", CALL_ARGUMENTS_1 CALL_ARGUMENTS_2));
    }
  else
    {
      const char *next = answer->text;

      data = part_event (NULL, NULL);
      json_object_set_object_member (data, "part", text_part (""));
      add_event (answer, "response.content_part.added", data);
      /* A delta per word, each with the space after it. */
      while (*next != '\0')
        {
          const char *space = strchr (next, ' ');
          gsize len = space != NULL ? (gsize) (space - next) + 1 : strlen (next);
          g_autofree char *piece = g_strndup (next, len);

          add_event (answer, "response.output_text.delta", part_event ("delta", piece));
          next += len;
        }
      add_event (answer, "response.output_text.done", part_event ("text", answer->text));
      data = part_event (NULL, NULL);
      json_object_set_object_member (data, "part", text_part (answer->text));
      add_event (answer, "response.content_part.done", data);
    }

  add_event (answer, "response.output_item.done", item_event (answer, TRUE));
  data = json_object_new ();
  json_object_set_object_member (data, "response", response_object (answer, TRUE));
  add_event (answer, "response.completed", data);
}

/**
 * kp_mock_responses_handle:
 * @stats: the mock's statistics, updated
 * @n_chunks: how many words the usual answer has
 * @msg: a POST to …/responses
 */
void
kp_mock_responses_handle (KpMockStats       *stats,
                          guint              n_chunks,
                          SoupServerMessage *msg)
{
  g_autoptr(JsonObject) request = kp_mock_read_request (stats, msg, "Authorization");
  g_autoptr(GString) events = NULL;
  JsonObject *output;
  Answer answer = { 0 };

  if (request == NULL)
    return;

  answer.model = json_object_get_string_member_with_default (request, "model", "mock-chat");
  output = last_function_output (request);
  if (output == NULL && !g_str_equal (answer.model, "mock-text"))
    answer.tool = first_function_tool (request);
  if (output != NULL)
    {
      JsonNode *node = json_object_get_member (output, "output");
      g_autofree char *said = NULL;

      if (node != NULL && JSON_NODE_HOLDS_VALUE (node) &&
          json_node_get_value_type (node) == G_TYPE_STRING)
        said = g_strdup (json_node_get_string (node));
      else
        said = node != NULL ? json_to_string (node, FALSE) : g_strdup ("nothing");
      answer.text = g_strdup_printf ("The tool said: %s.", said);
    }
  else
    answer.text = kp_mock_answer_text (n_chunks);
  answer.output_tokens = answer.tool != NULL ? 7 : n_chunks;

  if (json_object_get_boolean_member_with_default (request, "stream", FALSE))
    {
      answer.events = events = g_string_new (NULL);
      stream_answer (&answer);
      kp_mock_reply_sse (msg, events);
    }
  else
    kp_mock_reply_json (msg, 200, response_object (&answer, TRUE));
  g_free (answer.text);
}
