/* kp-wire-chat.h: pieces of the canonical (OpenAI Chat) request and answer
 *
 * What the translations into the hub share: a system message, a function
 * tool, the tools list, an answer's message.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <json-glib/json-glib.h>

G_BEGIN_DECLS

void        kp_wire_chat_add_system (JsonArray  *messages,
                                     const char *text);
JsonObject *kp_wire_chat_function   (const char *name,
                                     const char *description,
                                     JsonNode   *parameters);
void        kp_wire_chat_set_tools  (JsonObject *request,
                                     JsonArray  *tools);
void        kp_wire_chat_set_answer (JsonObject *message,
                                     GString    *text,
                                     GString    *reasoning,
                                     JsonArray  *tool_calls);

G_END_DECLS
