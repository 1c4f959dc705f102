/* kp-wire.c: the registry of wires and what all wires share: routes, error
 * codes, finish reasons, error bodies read in any wire
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include <string.h>

#include "codec/kp-json-guard.h"
#include "kp-wire.h"
#include "kp-wire-anthropic-private.h"
#include "kp-wire-code-assist.h"
#include "kp-wire-gemini-private.h"
#include "kp-wire-kiro-private.h"
#include "kp-wire-openai-private.h"

G_DEFINE_QUARK (kp-wire-error-quark, kp_wire_error)

/* The registry: adding a wire is one line here. */
static const KpWire * const wires[] = {
  &kp_wire_openai_chat,
  &kp_wire_anthropic,
  &kp_wire_openai_responses,
  &kp_wire_openai_embeddings,
  &kp_wire_openai_completions,
  &kp_wire_gemini,
  &kp_wire_gemini_embed,
  &kp_wire_code_assist,
  &kp_wire_antigravity,
  &kp_wire_kiro,
  NULL,
};

const KpWire * const *
kp_wire_all (void)
{
  return wires;
}

const KpWire *
kp_wire_default (void)
{
  return &kp_wire_openai_chat;
}

/**
 * kp_wire_for_route:
 * @path: a request path
 *
 * Returns: (nullable): the wire that serves @path to clients. A path below
 *   a route (`/v1/messages/count_tokens`) belongs to its wire too, for
 *   the shape of its errors.
 */
const KpWire *
kp_wire_for_route (const char *path)
{
  const KpWire *below = NULL;

  if (path == NULL)
    return NULL;

  for (guint i = 0; wires[i] != NULL; i++)
    {
      const char * const *routes = wires[i]->client_routes;
      const char *models = wires[i]->models_route;
      gsize len;

      for (guint j = 0; routes != NULL && routes[j] != NULL; j++)
        {
          len = strlen (routes[j]);
          if (strncmp (path, routes[j], len) != 0)
            continue;
          if (path[len] == '\0')
            return wires[i];
          if (path[len] == '/')
            below = wires[i];
        }

      /* A wire whose requests are paths it matches (Gemini's embeddings,
       * below another wire's model list).
       */
      if (wires[i]->match_route != NULL && wires[i]->match_route (path) == KP_ROUTE_REQUEST)
        return wires[i];

      /* A wire whose requests go below its model list (Gemini's). */
      len = models != NULL ? strlen (models) : 0;
      if (len > 0 && strncmp (path, models, len) == 0 &&
          (path[len] == '\0' || path[len] == '/'))
        below = wires[i];
    }
  return below;
}

/* Whether @path is one of @wire's own routes, not one below it. */
gboolean
kp_wire_serves_route (const KpWire *wire,
                      const char   *path)
{
  for (guint j = 0; wire->client_routes != NULL && wire->client_routes[j] != NULL; j++)
    if (g_str_equal (wire->client_routes[j], path))
      return TRUE;
  return FALSE;
}

/**
 * kp_wire_route_kind:
 * @wire: the wire kp_wire_for_route() found for @path
 *
 * Returns: what @path is to @wire: one of its routes, its token counter,
 *   its model list, a path its match_route() takes, or none of these
 */
KpRouteKind
kp_wire_route_kind (const KpWire *wire,
                    const char   *path)
{
  if (wire == NULL || path == NULL)
    return KP_ROUTE_NONE;
  if (kp_wire_serves_route (wire, path))
    return KP_ROUTE_REQUEST;
  if (wire->count_route != NULL && g_str_equal (wire->count_route, path))
    return KP_ROUTE_COUNT;
  if (wire->models_route != NULL && g_str_equal (wire->models_route, path))
    return KP_ROUTE_MODELS;
  if (wire->match_route != NULL)
    return wire->match_route (path);
  return KP_ROUTE_NONE;
}

/* Whether @path is one of a wire's, or below one: it needs the token. */
gboolean
kp_wire_is_client_path (const char *path)
{
  return kp_wire_for_route (path) != NULL;
}

const KpWire *
kp_wire_for_id (const char *id)
{
  for (guint i = 0; id != NULL && wires[i] != NULL; i++)
    if (g_str_equal (wires[i]->id, id))
      return wires[i];
  return NULL;
}

/**
 * kp_wire_error_code:
 *
 * Returns: the code a client gets with a request refused for @error
 */
const char *
kp_wire_error_code (const GError *error)
{
  if (error == NULL || error->domain != KP_WIRE_ERROR)
    return "invalid_request";

  switch ((KpWireError)error->code)
    {
    case KP_WIRE_ERROR_INVALID_JSON:
      return "invalid_json";
    case KP_WIRE_ERROR_MISSING_MODEL:
      return "missing_model";
    case KP_WIRE_ERROR_MISSING_MESSAGES:
      return "missing_messages";
    case KP_WIRE_ERROR_MISSING_INPUT:
      return "missing_input";
    case KP_WIRE_ERROR_INVALID_STREAM:
      return "invalid_stream";
    case KP_WIRE_ERROR_INVALID_MAX_TOKENS:
      return "invalid_max_tokens";
    case KP_WIRE_ERROR_INVALID_PROVIDER:
      return "invalid_provider";
    case KP_WIRE_ERROR_NEEDS_STATE:
      return "previous_response_not_found";
    case KP_WIRE_ERROR_UNSUPPORTED:
      return "unsupported_request";
    case KP_WIRE_ERROR_ANSWER:
      return "upstream_invalid_answer";
    case KP_WIRE_ERROR_INVALID:
    default:
      return "invalid_request";
    }
}

GBytes *
kp_wire_serialize (JsonNode *node)
{
  gsize len = 0;
  char *json = kp_json_to_string (node, &len);

  return g_bytes_new_take (json, len);
}

/* What a wire left in a target for the caller: the URI it picked. */
void
kp_wire_target_clear (KpWireTarget *target)
{
  g_clear_pointer (&target->uri, g_uri_unref);
}

const char *
kp_finish_to_string (KpFinish finish)
{
  switch (finish)
    {
    case KP_FINISH_LENGTH:
      return "length";
    case KP_FINISH_TOOL_CALLS:
      return "tool_calls";
    case KP_FINISH_CONTENT_FILTER:
      return "content_filter";
    case KP_FINISH_STOP:
    case KP_FINISH_NONE:
    default:
      return "stop";
    }
}

KpFinish
kp_finish_from_string (const char *reason)
{
  if (reason == NULL)
    return KP_FINISH_NONE;
  if (g_str_equal (reason, "length"))
    return KP_FINISH_LENGTH;
  if (g_str_equal (reason, "tool_calls") || g_str_equal (reason, "function_call"))
    return KP_FINISH_TOOL_CALLS;
  if (g_str_equal (reason, "content_filter"))
    return KP_FINISH_CONTENT_FILTER;
  return KP_FINISH_STOP;
}

/**
 * kp_wire_error_message:
 * @body: (nullable): an error body in any wire
 * @code: (out) (optional): its numeric code, when it has one
 * @type: (out) (optional) (transfer full): its type, when it has one
 *
 * Reads {"error":{"message":..}}, {"error":"text"} or {"message":..};
 * OpenRouter's among them. A body that is none of these is its own message.
 *
 * Returns: (transfer full) (nullable): the message
 */
char *
kp_wire_error_message (const char  *body,
                       gsize        len,
                       gint64      *code,
                       char       **type)
{
  g_autoptr(JsonObject) root = body != NULL && len > 0 ? kp_json_parse_object (body, len) : NULL;
  JsonNode *error = kp_json_member (root, "error");
  const char *message = NULL;

  if (type != NULL)
    *type = NULL;
  if (error != NULL && JSON_NODE_HOLDS_OBJECT (error))
    {
      message = kp_json_string (json_node_get_object (error), "message");
      if (code != NULL)
        kp_json_int (json_node_get_object (error), "code", code);
      if (type != NULL)
        *type = g_strdup (kp_json_string (json_node_get_object (error), "type"));
    }
  else if (kp_json_node_string (error) != NULL)
    message = kp_json_node_string (error);
  else
    message = kp_json_string (root, "message");

  if (message != NULL)
    return g_strdup (message);
  if (root == NULL && body != NULL && len > 0 && g_utf8_validate (body, len, NULL))
    return g_strstrip (g_strndup (body, len));
  return NULL;
}

/**
 * kp_wire_upstream_error_message:
 * @status: (inout): the provider's HTTP status; an error status its body
 *   repeats in a numeric code (OpenRouter's) takes the place of one that is
 *   no error
 * @body: (nullable): the provider's error body, in any wire
 *
 * Returns: (transfer full): the body's message, or one that names the status
 */
char *
kp_wire_upstream_error_message (guint      *status,
                                const char *body,
                                gsize       len)
{
  gint64 code = 0;
  char *message = kp_wire_error_message (body, len, &code, NULL);

  if (*status < 400 && code >= 400 && code < 600)
    *status = (guint)code;
  if (!kp_json_nonempty (message))
    {
      g_free (message);
      message = g_strdup_printf ("The provider answered with HTTP status %u.", *status);
    }
  return message;
}
