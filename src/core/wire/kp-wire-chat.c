/* kp-wire-chat.c: pieces of the canonical (OpenAI Chat) request and answer
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include "kp-wire-chat.h"

/* A system message with @text, after the messages so far; none for an
 * empty text, which a chat API may refuse.
 */
void
kp_wire_chat_add_system (JsonArray  *messages,
                         const char *text)
{
  JsonObject *message;

  if (text == NULL || text[0] == '\0')
    return;
  message = json_object_new ();
  json_object_set_string_member (message, "role", "system");
  json_object_set_string_member (message, "content", text);
  json_array_add_object_element (messages, message);
}

/**
 * kp_wire_chat_function:
 * @description: (nullable): what the tool does
 * @parameters: (nullable) (transfer full): its JSON Schema, or %NULL for none
 *
 * Returns: (transfer full): `{"type":"function","function":{…}}`
 */
JsonObject *
kp_wire_chat_function (const char *name,
                       const char *description,
                       JsonNode   *parameters)
{
  JsonObject *function = json_object_new ();
  JsonObject *tool = json_object_new ();

  json_object_set_string_member (function, "name", name);
  if (description != NULL)
    json_object_set_string_member (function, "description", description);
  if (parameters != NULL)
    json_object_set_member (function, "parameters", parameters);
  json_object_set_string_member (tool, "type", "function");
  json_object_set_object_member (tool, "function", function);
  return tool;
}

/* Takes @tools; a request with none has no "tools" at all. */
void
kp_wire_chat_set_tools (JsonObject *request,
                        JsonArray  *tools)
{
  if (json_array_get_length (tools) == 0)
    {
      json_array_unref (tools);
      return;
    }
  json_object_set_array_member (request, "tools", tools);
}

/**
 * kp_wire_chat_set_answer:
 * @message: an answer's assistant message
 * @text: (nullable): its text; none makes the content null
 * @reasoning: (nullable): its reasoning
 * @tool_calls: (transfer full): its tool calls; an empty list is left out
 */
void
kp_wire_chat_set_answer (JsonObject *message,
                         GString    *text,
                         GString    *reasoning,
                         JsonArray  *tool_calls)
{
  if (text != NULL)
    json_object_set_string_member (message, "content", text->str);
  else
    json_object_set_null_member (message, "content");
  if (reasoning != NULL)
    json_object_set_string_member (message, "reasoning_content", reasoning->str);
  if (json_array_get_length (tool_calls) > 0)
    json_object_set_array_member (message, "tool_calls", tool_calls);
  else
    json_array_unref (tool_calls);
}
