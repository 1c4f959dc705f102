/* kp-wire-openai-completions.c: OpenAI's legacy completions API
 *
 * Continue and other editors use it for autocomplete, with `suffix` for
 * fill-in-the-middle. It goes only to providers whose file says they serve
 * it (DeepSeek's FIM endpoint, Ollama, LM Studio, …) and passes through as
 * it is; its stream is read like a chat stream (choices, finish_reason, the
 * usage chunk), so it shares the chat wire's decoder.
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
  JsonObject *request = json_node_get_object (req->root);
  JsonNode *prompt = json_object_get_member (request, "prompt");
  JsonNode *suffix = json_object_get_member (request, "suffix");
  gint64 max_tokens = 0;

  if (prompt == NULL || !(JSON_NODE_HOLDS_ARRAY (prompt) || kp_json_node_string (prompt) != NULL))
    {
      g_set_error_literal (error, KP_WIRE_ERROR, KP_WIRE_ERROR_MISSING_INPUT,
                           "The request needs “prompt”: the text to complete.");
      return FALSE;
    }
  if (suffix != NULL && !JSON_NODE_HOLDS_NULL (suffix) && kp_json_node_string (suffix) == NULL)
    {
      g_set_error_literal (error, KP_WIRE_ERROR, KP_WIRE_ERROR_INVALID,
                           "“suffix” must be the text that follows the completion.");
      return FALSE;
    }
  if (kp_json_int (request, "max_tokens", &max_tokens) && max_tokens > 0)
    req->output_tokens = max_tokens;
  kp_json_bool (kp_json_object (request, "stream_options"), "include_usage", &req->wants_usage);
  return TRUE;
}

static GBytes *
build_body (KpWireRequest  *req,
            JsonObject     *source,
            gboolean        passthrough,
            KpWireTarget   *target,
            GError        **error)
{
  g_assert (passthrough);

  kp_openai_ask_usage (req, source, target);
  return kp_openai_passthrough_body (req, source, target);
}

static const char * const client_routes[] = { "/v1/completions", NULL };

const KpWire kp_wire_openai_completions = {
  .id = "openai-completions",
  .kind = KP_WIRE_KIND_COMPLETIONS,
  .client_routes = client_routes,
  .upstream_path = "/completions",

  .parse_request = parse_request,
  .error_json = kp_openai_error_json,
  .error_from_upstream = kp_openai_error_from_upstream,
  .error_event = kp_openai_error_event,

  .build_body = build_body,
  .decoder_new = kp_openai_chat_decoder_new,
  .decode = kp_openai_chat_decode,
  .decoder_free = kp_openai_chat_decoder_free,
  .parse_usage = kp_usage_parse_openai,
};
