/* kp-wire-util.c: logic more than one wire needs, that is no one wire's
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include "kp-wire.h"
#include "kp-wire-json.h"
#include "kp-wire-util.h"

/**
 * kp_wire_require_list:
 * @request: a client's request
 * @member: the member that must hold a non-empty list ("messages")
 * @items: what the list's items are, for the error ("chat messages")
 *
 * Returns: (transfer none) (nullable): the list, or %NULL with @error set
 *   (KP_WIRE_ERROR_MISSING_MESSAGES) when it is missing or empty
 */
JsonArray *
kp_wire_require_list (JsonObject  *request,
                      const char  *member,
                      const char  *items,
                      GError     **error)
{
  JsonArray *list = kp_json_array (request, member);

  if (list == NULL || json_array_get_length (list) == 0)
    {
      g_set_error (error, KP_WIRE_ERROR, KP_WIRE_ERROR_MISSING_MESSAGES,
                   "The request needs “%s”: a non-empty list of %s.", member, items);
      return NULL;
    }
  return list;
}

/**
 * kp_wire_messages:
 * @request: a request in the hub's shape or Anthropic's
 * @one_answer: (nullable): the error for n > 1, for a wire that gives one
 *   answer per request (one answer would silently replace several)
 *
 * Returns: (transfer none) (nullable): the request's messages, or %NULL
 *   with @error set when there are none or @one_answer applies
 */
JsonArray *
kp_wire_messages (JsonObject  *request,
                  const char  *one_answer,
                  GError     **error)
{
  JsonArray *messages = kp_json_array (request, "messages");
  gint64 n = 1;

  if (messages == NULL)
    {
      g_set_error_literal (error, KP_WIRE_ERROR, KP_WIRE_ERROR_INVALID,
                           "The request needs a messages array.");
      return NULL;
    }
  if (one_answer != NULL && kp_json_int (request, "n", &n) && n > 1)
    {
      g_set_error_literal (error, KP_WIRE_ERROR, KP_WIRE_ERROR_INVALID, one_answer);
      return NULL;
    }
  return messages;
}

/**
 * kp_wire_add_turn:
 * @turns: a conversation: turns of {"role": …, @member: […]}
 * @role: the new turn's role
 * @member: the member that holds a turn's items ("content", "parts")
 * @items: (transfer full): the new turn's items; an empty list adds nothing
 * @goes_first: (nullable): the items that go before the others in a merged
 *   turn (Anthropic's tool results)
 *
 * Adds a turn, merged into the last one when that has the same role, so
 * that roles alternate as the providers require.
 */
void
kp_wire_add_turn (JsonArray        *turns,
                  const char       *role,
                  const char       *member,
                  JsonArray        *items,
                  KpWireItemFilter  goes_first)
{
  guint n = json_array_get_length (turns);
  JsonObject *last = n > 0 ? kp_json_array_object (turns, n - 1) : NULL;
  JsonObject *turn;

  if (json_array_get_length (items) == 0)
    {
      json_array_unref (items);
      return;
    }

  if (last != NULL && g_strcmp0 (kp_json_string (last, "role"), role) == 0)
    {
      JsonArray *from[2] = { kp_json_array (last, member), items };
      JsonArray *merged = json_array_new ();

      /* With @goes_first, two passes: its items, then the rest. */
      for (int pass = goes_first != NULL ? 0 : 1; pass < 2; pass++)
        for (guint f = 0; f < G_N_ELEMENTS (from); f++)
          for (guint i = 0; from[f] != NULL && i < json_array_get_length (from[f]); i++)
            {
              JsonNode *item = json_array_get_element (from[f], i);

              if (goes_first == NULL || goes_first (item) == (pass == 0))
                json_array_add_element (merged, json_node_copy (item));
            }

      json_array_unref (items);
      json_object_set_array_member (last, member, merged);
      return;
    }

  turn = json_object_new ();
  json_object_set_string_member (turn, "role", role);
  json_object_set_array_member (turn, member, items);
  json_array_add_object_element (turns, turn);
}

/**
 * kp_wire_append_event:
 * @name: (nullable): the event's name, for a wire whose events have one
 * @data: the event's data, one line
 * @eol: the line end the wire writes ("\n", "\r\n")
 *
 * Appends one server-sent event to @out.
 */
void
kp_wire_append_event (GString    *out,
                      const char *name,
                      const char *data,
                      const char *eol)
{
  if (name != NULL)
    g_string_append_printf (out, "event: %s%s", name, eol);
  g_string_append (out, "data: ");
  g_string_append (out, data);
  g_string_append (out, eol);
  g_string_append (out, eol);
}
