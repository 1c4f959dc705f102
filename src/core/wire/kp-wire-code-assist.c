/* kp-wire-code-assist.c: Google's Code Assist v1internal API (Gemini CLI,
 * Antigravity), upstream only
 *
 * A Code Assist request is a Gemini generateContent request in an envelope:
 * {"model", "project", "user_prompt_id", "request": {…, "session_id"}}; each
 * answer (the whole one, and each stream event) is a Gemini answer in
 * {"response": …}. The Gemini mapping is the Gemini wire's
 * (kp-wire-gemini-private.h); this file only wraps and unwraps. Antigravity
 * adds "userAgent", "requestType" and "requestId", names the session
 * "sessionId", and takes no safetySettings.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include <string.h>

#include "kp-wire-code-assist.h"
#include "kp-wire-gemini-private.h"
#include "codec/kp-json-guard.h"

typedef struct
{
  KpGeminiDecoder *gemini;
  JsonNode        *last;     /* the event read last (kp_json_read_into) */
} Decoder;

static KpWireDecoder
decoder_new (const KpWireRequest *req,
             const KpWireTarget  *target,
             gboolean             passthrough)
{
  Decoder *decoder = g_new0 (Decoder, 1);

  decoder->gemini = kp_gemini_decoder_new ();
  return decoder;
}

static void
decoder_free (KpWireDecoder data)
{
  Decoder *decoder = data;

  kp_gemini_decoder_free (decoder->gemini);
  g_clear_pointer (&decoder->last, json_node_unref);
  g_free (decoder);
}

/* Each event is {"response": <Gemini answer>, "traceId", …}, or an error. */
static KpDecodeResult
decode (KpWireDecoder  data,
        const char    *event_name,
        gsize          name_len,
        const char    *text,
        gsize          len,
        KpEventSink    sink,
        gpointer       user_data)
{
  Decoder *decoder = data;
  JsonNode *root;
  JsonObject *object;
  JsonObject *response;

  root = kp_json_read_into (&decoder->last, text, len);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    return KP_DECODE_FORWARD;
  object = json_node_get_object (root);
  if (json_object_has_member (object, "error"))
    {
      kp_event_emit (sink, user_data, (KpEvent) { .type = KP_EVENT_ERROR, .text = text });
      return KP_DECODE_FORWARD;
    }
  response = kp_json_object (object, "response");
  /* Some events carry only credits or a trace: nothing to say. */
  if (response != NULL)
    kp_gemini_decoder_feed (decoder->gemini, response, sink, user_data);
  return KP_DECODE_FORWARD;
}

static char *
new_id (void)
{
  return g_uuid_string_random ();
}

static GBytes *
wrap (KpWireRequest  *req,
      JsonObject     *source,
      KpWireTarget   *target,
      gboolean        antigravity,
      GError        **error)
{
  g_autoptr(JsonNode) request = NULL;
  g_autoptr(JsonNode) node = NULL;
  g_autoptr(JsonObject) envelope = json_object_new ();
  g_autofree char *prompt_id = new_id ();
  g_autofree char *session_id = new_id ();
  JsonObject *inner;

  request = kp_gemini_request_from_openai (source, error);
  if (request == NULL)
    return NULL;
  inner = json_node_get_object (request);
  kp_gemini_thinking_for_model (inner, target->offering->upstream_id);

  json_object_set_string_member (envelope, "model", target->offering->upstream_id);
  /* The free tier works in a project Google manages: none is named. */
  if (target->project != NULL && *target->project != '\0')
    json_object_set_string_member (envelope, "project", target->project);

  if (antigravity)
    {
      g_autofree char *request_id = g_strconcat ("agent-", prompt_id, NULL);

      json_object_set_string_member (envelope, "userAgent", "antigravity");
      json_object_set_string_member (envelope, "requestType", "agent");
      json_object_set_string_member (envelope, "requestId", request_id);
      json_object_remove_member (inner, "safetySettings");
      json_object_set_string_member (inner, "sessionId", session_id);
    }
  else
    {
      json_object_set_string_member (envelope, "user_prompt_id", prompt_id);
      json_object_set_string_member (inner, "session_id", session_id);
    }
  json_object_set_member (envelope, "request", g_steal_pointer (&request));

  node = kp_json_object_node (g_steal_pointer (&envelope));
  return kp_wire_serialize (node);
}

static GBytes *
build_body (KpWireRequest  *req,
            JsonObject     *source,
            gboolean        passthrough,
            KpWireTarget   *target,
            GError        **error)
{
  return wrap (req, source, target, FALSE, error);
}

static GBytes *
build_body_antigravity (KpWireRequest  *req,
                        JsonObject     *source,
                        gboolean        passthrough,
                        KpWireTarget   *target,
                        GError        **error)
{
  return wrap (req, source, target, TRUE, error);
}

/* The methods are Google's custom verbs: {base}:generateContent. */
static char *
upstream_suffix (const KpWireRequest *req,
                 const KpWireTarget  *target)
{
  return g_strdup (req->stream ? ":streamGenerateContent?alt=sse" : ":generateContent");
}

static JsonNode *
response_to_canonical (JsonObject  *answer,
                       const char  *model,
                       GError     **error)
{
  JsonObject *response = kp_json_object (answer, "response");

  if (response == NULL)
    {
      g_set_error (error, KP_WIRE_ERROR, KP_WIRE_ERROR_ANSWER,
                   "The Code Assist answer has no “response”.");
      return NULL;
    }
  return kp_gemini_response_to_openai (response, model, error);
}

const KpWire kp_wire_code_assist = {
  .id = "code-assist",
  .kind = KP_WIRE_KIND_CHAT,
  .client_routes = NULL,
  .upstream_path = "",
  .usage_member = "usageMetadata",

  .build_body = build_body,
  .upstream_suffix = upstream_suffix,
  .decoder_new = decoder_new,
  .decode = decode,
  .decoder_free = decoder_free,
  .response_to_canonical = response_to_canonical,
  .parse_usage = kp_gemini_parse_usage,
};

const KpWire kp_wire_antigravity = {
  .id = "antigravity",
  .kind = KP_WIRE_KIND_CHAT,
  .client_routes = NULL,
  .upstream_path = "",
  .usage_member = "usageMetadata",

  .build_body = build_body_antigravity,
  .upstream_suffix = upstream_suffix,
  .decoder_new = decoder_new,
  .decode = decode,
  .decoder_free = decoder_free,
  .response_to_canonical = response_to_canonical,
  .parse_usage = kp_gemini_parse_usage,
};
