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
#include "kp-wire-util.h"

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
  g_autofree char *message = kp_wire_upstream_error_message (&status, body, len);

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

  kp_wire_append_event (out, NULL, json, "\r\n");
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
  kp_gemini_thinking_for_model (json_node_get_object (built), target->offering->upstream_id);
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

/* The client's side ------------------------------------------------------- */

#define MODELS_PREFIX "/v1beta/models/"

typedef enum
{
  METHOD_NONE,
  METHOD_GENERATE,
  METHOD_STREAM,
  METHOD_COUNT,
} Method;

/* "/v1beta/models/{model}:{verb}" (shared with kp-wire-gemini-embed.c):
 * TRUE with the model, decoded and bounded, and a pointer to the verb in
 * @path; FALSE for any other path.
 */
gboolean
kp_gemini_split_path (const char   *path,
                      char        **model,
                      const char  **verb)
{
  const char *name;
  const char *colon;
  g_autofree char *escaped = NULL;
  g_autofree char *decoded = NULL;

  if (model != NULL)
    *model = NULL;
  if (path == NULL || !g_str_has_prefix (path, MODELS_PREFIX))
    return FALSE;
  name = path + strlen (MODELS_PREFIX);
  colon = strrchr (name, ':');
  if (colon == NULL || colon == name || colon - name > 3 * KP_GEMINI_MODEL_MAX)
    return FALSE;

  escaped = g_strndup (name, colon - name);
  decoded = g_uri_unescape_string (escaped, NULL);
  if (decoded == NULL || *decoded == '\0' || strlen (decoded) > KP_GEMINI_MODEL_MAX ||
      !g_utf8_validate (decoded, -1, NULL))
    return FALSE;
  *verb = colon + 1;
  if (model != NULL)
    *model = g_steal_pointer (&decoded);
  return TRUE;
}

/* The model (decoded) and the method of a generate path. */
static Method
split_path (const char  *path,
            char       **model)
{
  const char *verb;
  Method method;
  g_autofree char *found = NULL;

  if (model != NULL)
    *model = NULL;
  if (!kp_gemini_split_path (path, &found, &verb))
    return METHOD_NONE;
  if (g_str_equal (verb, "generateContent"))
    method = METHOD_GENERATE;
  else if (g_str_equal (verb, "streamGenerateContent"))
    method = METHOD_STREAM;
  else if (g_str_equal (verb, "countTokens"))
    method = METHOD_COUNT;
  else
    return METHOD_NONE;
  if (model != NULL)
    *model = g_steal_pointer (&found);
  return method;
}

/* "/v1beta/models/{model}", no method: the model (decoded, without
 * "models/"), or NULL.
 */
static char *
model_of_path (const char *path)
{
  const char *name;
  g_autofree char *decoded = NULL;

  if (path == NULL || !g_str_has_prefix (path, MODELS_PREFIX))
    return NULL;
  name = path + strlen (MODELS_PREFIX);
  if (*name == '\0' || strchr (name, ':') != NULL || strlen (name) > 3 * KP_GEMINI_MODEL_MAX)
    return NULL;
  decoded = g_uri_unescape_string (name, NULL);
  if (decoded == NULL || *decoded == '\0' || strlen (decoded) > KP_GEMINI_MODEL_MAX ||
      !g_utf8_validate (decoded, -1, NULL))
    return NULL;
  if (g_str_has_prefix (decoded, "models/"))
    return g_strdup (decoded + strlen ("models/"));
  return g_steal_pointer (&decoded);
}

static KpRouteKind
match_route (const char *path)
{
  g_autofree char *model = model_of_path (path);

  if (model != NULL)
    return KP_ROUTE_MODEL;
  switch (split_path (path, NULL))
    {
    case METHOD_GENERATE:
    case METHOD_STREAM:
      return KP_ROUTE_REQUEST;
    case METHOD_COUNT:
      return KP_ROUTE_COUNT;
    case METHOD_NONE:
    default:
      return KP_ROUTE_NONE;
    }
}

/* The model and the stream are in the path; `alt=sse` picks SSE over a
 * JSON array.
 */
static gboolean
parse_route (KpWireRequest  *req,
             GError        **error)
{
  g_autofree char *model = NULL;
  Method method;
  const char *alt;

  if (req->path == NULL)
    return TRUE;
  method = split_path (req->path, &model);
  if (method == METHOD_NONE)
    {
      g_set_error (error, KP_WIRE_ERROR, KP_WIRE_ERROR_MISSING_MODEL,
                   "The path must be /v1beta/models/{model}:generateContent (or "
                   ":streamGenerateContent, :countTokens), with a model name of at most %u "
                   "characters.", KP_GEMINI_MODEL_MAX);
      return FALSE;
    }
  /* "models/gemini-2.5-flash" and "gemini-2.5-flash" are one model. */
  g_free (req->model);
  req->model = g_strdup (g_str_has_prefix (model, "models/") ? model + strlen ("models/") : model);
  req->stream = method == METHOD_STREAM;
  alt = req->query != NULL ? g_hash_table_lookup (req->query, "alt") : NULL;
  req->stream_as_array = req->stream && g_strcmp0 (alt, "sse") != 0;
  return TRUE;
}

static gboolean
parse_request (KpWireRequest  *req,
               GError        **error)
{
  JsonObject *request = json_node_get_object (req->root);
  gint64 max_tokens = 0;

  if (kp_wire_require_list (request, "contents", "turns", error) == NULL)
    return FALSE;
  if (kp_json_int (kp_json_object (request, "generationConfig"), "maxOutputTokens", &max_tokens) &&
      max_tokens > 0)
    req->output_tokens = max_tokens;
  return TRUE;
}

static JsonNode *
to_canonical (JsonObject  *request,
              GError     **error)
{
  return kp_gemini_request_to_openai (request, error);
}

static JsonNode *
response_from_canonical (JsonObject          *completion,
                         const KpWireRequest *req,
                         GError             **error)
{
  return kp_gemini_response_from_openai (completion, req->model, error);
}

static char *
count_json (gint64 input_tokens)
{
  return g_strdup_printf ("{\"totalTokens\":%" G_GINT64_FORMAT "}", input_tokens);
}

/* One model of Keypool's list in Gemini's shape. */
static void
append_model (GString    *out,
              const char *id,
              const char *display)
{
  g_autofree char *name = g_strconcat ("models/", id, NULL);

  g_string_append (out, "{\"name\":");
  kp_json_append_string (out, name);
  g_string_append (out, ",\"baseModelId\":");
  kp_json_append_string (out, id);
  g_string_append (out, ",\"version\":\"keypool\",\"displayName\":");
  kp_json_append_string (out, display ?: id);
  g_string_append (out, ",\"supportedGenerationMethods\":"
                   "[\"generateContent\",\"streamGenerateContent\",\"countTokens\"]}");
}

/* Keypool's model list ({"data":[{"id"}]}) in Gemini's shape. */
static char *
models_json (const char *openai_models,
             gsize       len)
{
  g_autoptr(JsonObject) list = kp_json_parse_object (openai_models, len);
  JsonArray *data = kp_json_array (list, "data");
  g_autoptr(GString) out = g_string_new ("{\"models\":[");

  for (guint i = 0; data != NULL && i < json_array_get_length (data); i++)
    {
      const char *id = kp_json_string (kp_json_array_object (data, i), "id");

      if (id == NULL)
        continue;
      if (out->str[out->len - 1] != '[')
        g_string_append_c (out, ',');
      append_model (out, id, kp_json_string (kp_json_array_object (data, i), "display_name"));
    }
  g_string_append (out, "]}");
  return g_string_free (g_steal_pointer (&out), FALSE);
}

/* GET /v1beta/models/{model}: Keypool's model of that id, or else the
 * first whose id ends in "/{model}" (Gemini's clients name models bare).
 */
static char *
model_json (const char *openai_models,
            gsize       len,
            const char *path,
            guint      *status)
{
  g_autoptr(JsonObject) list = kp_json_parse_object (openai_models, len);
  JsonArray *data = kp_json_array (list, "data");
  g_autofree char *model = model_of_path (path);
  g_autofree char *message = NULL;
  JsonObject *found = NULL;

  for (guint pass = 0; model != NULL && pass < 2 && found == NULL; pass++)
    for (guint i = 0; data != NULL && i < json_array_get_length (data) && found == NULL; i++)
      {
        JsonObject *entry = kp_json_array_object (data, i);
        const char *id = kp_json_string (entry, "id");
        const char *slash = id ? strrchr (id, '/') : NULL;

        if (id != NULL && (pass == 0 ? g_str_equal (id, model)
                                     : slash != NULL && g_str_equal (slash + 1, model)))
          found = entry;
      }
  if (found != NULL)
    {
      g_autoptr(GString) out = g_string_new (NULL);

      *status = 200;
      append_model (out, kp_json_string (found, "id"), kp_json_string (found, "display_name"));
      return g_string_free (g_steal_pointer (&out), FALSE);
    }
  *status = 404;
  message = g_strdup_printf ("models/%s is not found: no provider of yours serves it now. "
                             "GET /v1beta/models lists what does.", model ? model : "");
  return kp_gemini_error_json (404, message);
}

/* For the list of what Keypool serves; paths below /v1beta/models. */
static const char * const client_routes[] = {
  MODELS_PREFIX "{model}:generateContent",
  MODELS_PREFIX "{model}:streamGenerateContent",
  NULL,
};

const KpWire kp_wire_gemini = {
  .id = "gemini",
  .kind = KP_WIRE_KIND_CHAT,
  .client_routes = client_routes,
  .upstream_path = "/models",
  .models_route = "/v1beta/models",
  .usage_member = "usageMetadata",
  /* Google's SDKs read an SSE stream as `data:` events only: a comment
   * would stall them.
   */
  .keepalive = "",
  .client_headers = "x-goog-api-key, x-goog-api-client",
  .count_json = count_json,
  .match_route = match_route,
  .parse_route = parse_route,
  .models_json = models_json,
  .model_json = model_json,

  .parse_request = parse_request,
  .to_canonical = to_canonical,
  .response_from_canonical = response_from_canonical,
  .encoder = &kp_gemini_encoder_class,
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
