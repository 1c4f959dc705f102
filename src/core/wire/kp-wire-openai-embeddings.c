/* kp-wire-openai-embeddings.c: OpenAI's embeddings API
 *
 * Embeddings are not chat: a request goes only to a provider that serves
 * this API for a model its file declares an embedding model, and passes
 * through as it is (only the model id changes). Its cost is the input
 * tokens the answer's usage reports.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include "kp-wire-openai-private.h"

static gboolean
parse_request (KpWireRequest  *req,
               GError        **error)
{
  JsonNode *input = json_object_get_member (json_node_get_object (req->root), "input");

  if (input == NULL ||
      !(JSON_NODE_HOLDS_ARRAY (input) || kp_json_node_string (input) != NULL) ||
      (JSON_NODE_HOLDS_ARRAY (input) && json_array_get_length (json_node_get_array (input)) == 0))
    {
      g_set_error_literal (error, KP_WIRE_ERROR, KP_WIRE_ERROR_MISSING_INPUT,
                           "The request needs “input”: a text, or a non-empty list of texts "
                           "or token ids, to embed.");
      return FALSE;
    }
  if (req->stream)
    {
      g_set_error_literal (error, KP_WIRE_ERROR, KP_WIRE_ERROR_INVALID_STREAM,
                           "Embeddings are not streamed: leave out “stream”.");
      return FALSE;
    }
  /* An embedding has no output tokens to pay for. */
  req->output_tokens = 1;
  return TRUE;
}

static const char * const client_routes[] = { "/v1/embeddings", NULL };

const KpWire kp_wire_openai_embeddings = {
  .id = "openai-embeddings",
  .kind = KP_WIRE_KIND_EMBEDDINGS,
  .client_routes = client_routes,
  .upstream_path = "/embeddings",

  .parse_request = parse_request,
  .error_json = kp_openai_error_json,
  .error_from_upstream = kp_openai_error_from_upstream,
  .error_event = kp_openai_error_event,

  .build_body = kp_openai_build_passthrough,
  .parse_usage = kp_usage_parse_openai,
};
