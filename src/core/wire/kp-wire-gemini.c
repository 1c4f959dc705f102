/* kp-wire-gemini.c: Google's Gemini API (generateContent), as a provider's
 * API and a client's
 *
 * The table, the routes (the model and the method are in the path:
 * `/v1beta/models/{model}:generateContent`), errors in Google's shape and
 * the stream decoder's wrapper. Requests and answers are in
 * kp-wire-gemini-upstream.c and kp-wire-gemini-client.c.
 *
 * Upstream, a request goes to `{base_url}/models/{model}:generateContent`,
 * or `:streamGenerateContent?alt=sse` for a stream, whose events are one
 * answer object each and which simply ends.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include <string.h>

#include "codec/kp-json-guard.h"
#include "kp-wire-gemini-private.h"

/* Errors ------------------------------------------------------------------ */

/* google.rpc.Code names, by HTTP status. */
const char *
kp_gemini_status_for_http (guint status)
{
  switch (status)
    {
    case 400:
      return "INVALID_ARGUMENT";
    case 401:
      return "UNAUTHENTICATED";
    case 403:
      return "PERMISSION_DENIED";
    case 404:
      return "NOT_FOUND";
    case 405:
      return "UNIMPLEMENTED";
    case 409:
      return "ABORTED";
    case 413:
      return "INVALID_ARGUMENT";
    case 429:
      return "RESOURCE_EXHAUSTED";
    case 499:
      return "CANCELLED";
    case 501:
      return "UNIMPLEMENTED";
    case 503:
      return "UNAVAILABLE";
    case 504:
      return "DEADLINE_EXCEEDED";
    default:
      if (status >= 500)
        return "INTERNAL";
      return status >= 400 ? "FAILED_PRECONDITION" : "UNKNOWN";
    }
}

char *
kp_gemini_error_json (guint       status,
                      const char *message)
{
  g_autoptr(GString) out = g_string_new ("{\"error\":{\"code\":");

  g_string_append_printf (out, "%u,\"message\":", status);
  kp_json_append_string (out, message ?: "");
  g_string_append (out, ",\"status\":");
  kp_json_append_string (out, kp_gemini_status_for_http (status));
  g_string_append (out, "}}");
  return g_string_free (g_steal_pointer (&out), FALSE);
}

static char *
gemini_error_json (guint       status,
                   const char *code,
                   const char *message)
{
  return kp_gemini_error_json (status, message);
}

/* A provider's error (any wire's shape) in Google's. */
static char *
error_from_upstream (guint       status,
                     const char *body,
                     gsize       len)
{
  gint64 code = 0;
  g_autofree char *message = kp_wire_error_message (body, len, &code, NULL);

  if (status < 400 && code >= 400 && code < 600)
    status = (guint)code;
  if (!kp_json_nonempty (message))
    {
      g_free (message);
      message = g_strdup_printf ("The provider answered with HTTP status %u.", status);
    }
  return kp_gemini_error_json (status, message);
}

/* Mid-stream, Gemini sends the error as one more event. */
static void
error_event (guint       status,
             const char *code,
             const char *message,
             GString    *out)
{
  g_autofree char *json = kp_gemini_error_json (status, message);

  g_string_append (out, "data: ");
  g_string_append (out, json);
  g_string_append (out, "\r\n\r\n");
}

/* Decoding a provider's stream -------------------------------------------- */

static KpWireDecoder
decoder_new (const KpWireRequest *req,
             const KpWireTarget  *target,
             gboolean             passthrough)
{
  return kp_gemini_decoder_new ();
}

static void
decoder_free (KpWireDecoder decoder)
{
  kp_gemini_decoder_free (decoder);
}

/* Every event is read, passthrough or not: each may carry the usage. */
static KpDecodeResult
decode (KpWireDecoder  decoder,
        const char    *event_name,
        gsize          name_len,
        const char    *data,
        gsize          len,
        KpEventSink    sink,
        gpointer       user_data)
{
  kp_gemini_decoder_feed_data (decoder, data, len, sink, user_data);
  return KP_DECODE_FORWARD;
}

/* Upstream requests ------------------------------------------------------- */

static GBytes *
build_body (KpWireRequest  *req,
            JsonObject     *source,
            gboolean        passthrough,
            KpWireTarget   *target,
            GError        **error)
{
  g_autoptr(JsonNode) built = NULL;

  /* The model and the stream are in the path: the body goes as it came. */
  if (passthrough)
    return req->changed ? kp_wire_serialize (req->root) : g_bytes_ref (req->body);

  built = kp_gemini_request_from_openai (source, error);
  if (built == NULL)
    return NULL;
  return kp_wire_serialize (built);
}

/* "/{model}:generateContent", or the stream's method with SSE. */
static char *
upstream_suffix (const KpWireRequest *req,
                 const KpWireTarget  *target)
{
  g_autofree char *model = g_uri_escape_string (target->offering->upstream_id, NULL, FALSE);

  return g_strconcat ("/", model,
                      req->stream ? ":streamGenerateContent?alt=sse" : ":generateContent", NULL);
}

static JsonNode *
response_to_canonical (JsonObject  *answer,
                       const char  *model,
                       GError     **error)
{
  return kp_gemini_response_to_openai (answer, model, error);
}

const KpWire kp_wire_gemini = {
  .id = "gemini",
  .kind = KP_WIRE_KIND_CHAT,
  .client_routes = NULL,
  .upstream_path = "/models",
  .usage_member = "usageMetadata",
  .client_headers = "x-goog-api-key, x-goog-api-client",

  .error_json = gemini_error_json,
  .error_from_upstream = error_from_upstream,
  .error_event = error_event,

  .build_body = build_body,
  .upstream_suffix = upstream_suffix,
  .decoder_new = decoder_new,
  .decode = decode,
  .decoder_free = decoder_free,
  .response_to_canonical = response_to_canonical,
  .parse_usage = kp_gemini_parse_usage,
};
