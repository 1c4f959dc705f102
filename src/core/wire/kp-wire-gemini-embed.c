/* kp-wire-gemini-embed.c: Gemini's embeddings, `:embedContent` and `:batchEmbedContents`
 *
 * Like OpenAI's embeddings: not chat, so a request goes only to a provider
 * that serves this API (`"apis": {"gemini-embed": true}`, a Gemini one) for
 * a model its file declares an embedding model, and passes through as it is;
 * only the model names in it change to the provider's. Google's answer has
 * no usage: such a request's cost is unknown unless the provider says.
 *
 * A client of OpenAI's embeddings is served by such a provider too: its
 * request (the hub's) becomes one :batchEmbedContents, and Google's answer
 * an OpenAI one, whose usage is Keypool's estimate of the input (and the
 * ledger's, marked estimated) unless Google says.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include "kp-wire-gemini-private.h"
#include "kp-wire-json.h"

#include <string.h>

#define MODELS_PREFIX "/v1beta/models/"
/* A batch of more than this many texts is refused (Google's own limit). */
#define BATCH_MAX 100

typedef enum
{
  METHOD_NONE,
  METHOD_ONE,
  METHOD_BATCH,
} Method;

/* "/v1beta/models/{model}:embedContent" or ":batchEmbedContents": the
 * model (decoded, without "models/") and the method.
 */
static Method
split_path (const char  *path,
            char       **model)
{
  g_autofree char *found = NULL;
  const char *verb;
  Method method;

  if (model != NULL)
    *model = NULL;
  if (!kp_gemini_split_path (path, &found, &verb))
    return METHOD_NONE;
  if (g_str_equal (verb, "embedContent"))
    method = METHOD_ONE;
  else if (g_str_equal (verb, "batchEmbedContents"))
    method = METHOD_BATCH;
  else
    return METHOD_NONE;
  if (model != NULL)
    *model = g_strdup (g_str_has_prefix (found, "models/") ? found + strlen ("models/") : found);
  return method;
}

static KpRouteKind
match_route (const char *path)
{
  return split_path (path, NULL) != METHOD_NONE ? KP_ROUTE_REQUEST : KP_ROUTE_NONE;
}

static gboolean
parse_route (KpWireRequest  *req,
             GError        **error)
{
  g_autofree char *model = NULL;

  if (req->path == NULL)
    return TRUE;
  if (split_path (req->path, &model) == METHOD_NONE)
    {
      g_set_error (error, KP_WIRE_ERROR, KP_WIRE_ERROR_MISSING_MODEL,
                   "The path must be /v1beta/models/{model}:embedContent (or "
                   ":batchEmbedContents), with a model name of at most %u characters.",
                   KP_GEMINI_MODEL_MAX);
      return FALSE;
    }
  g_free (req->model);
  req->model = g_steal_pointer (&model);
  req->stream = FALSE;
  return TRUE;
}

/* A Content with at least one part. */
static gboolean
has_parts (JsonObject *content)
{
  JsonArray *parts = kp_json_array (content, "parts");

  return parts != NULL && json_array_get_length (parts) > 0;
}

static gboolean
parse_request (KpWireRequest  *req,
               GError        **error)
{
  JsonObject *request = json_node_get_object (req->root);
  Method method = split_path (req->path, NULL);

  if (method == METHOD_BATCH)
    {
      JsonArray *requests = kp_json_array (request, "requests");
      guint n = requests ? json_array_get_length (requests) : 0;

      if (n == 0 || n > BATCH_MAX)
        {
          g_set_error (error, KP_WIRE_ERROR, KP_WIRE_ERROR_MISSING_INPUT,
                       "The request needs “requests”: a list of 1 to %u embedContent requests.",
                       BATCH_MAX);
          return FALSE;
        }
      for (guint i = 0; i < n; i++)
        if (!has_parts (kp_json_object (kp_json_array_object (requests, i), "content")))
          {
            g_set_error (error, KP_WIRE_ERROR, KP_WIRE_ERROR_MISSING_INPUT,
                         "requests[%u] needs “content” with at least one part to embed.", i);
            return FALSE;
          }
    }
  else if (!has_parts (kp_json_object (request, "content")))
    {
      g_set_error_literal (error, KP_WIRE_ERROR, KP_WIRE_ERROR_MISSING_INPUT,
                           "The request needs “content” with at least one part to embed.");
      return FALSE;
    }
  /* An embedding has no output tokens to pay for. */
  req->output_tokens = 1;
  return TRUE;
}

/* Sets @object's "model" to @name when it has one that differs. */
static void
rename_model (KpWireRequest *req,
              JsonObject    *object,
              const char    *name)
{
  if (object == NULL || !json_object_has_member (object, "model") ||
      g_strcmp0 (kp_json_string (object, "model"), name) == 0)
    return;
  json_object_set_string_member (object, "model", name);
  req->changed = TRUE;
}

/* The client's request with the provider's model names: a batch names its
 * model in every request, and Google refuses one that is not the path's.
 */
static GBytes *
passthrough_body (KpWireRequest *req,
                  JsonObject    *source,
                  const char    *name)
{
  JsonArray *requests = kp_json_array (source, "requests");

  rename_model (req, source, name);
  for (guint i = 0; requests != NULL && i < json_array_get_length (requests); i++)
    rename_model (req, kp_json_array_object (requests, i), name);
  if (!req->changed)
    return g_bytes_ref (req->body);
  return kp_wire_serialize (req->root);
}

/* The hub's request (OpenAI's embeddings) as one :batchEmbedContents: a
 * request per text, with "dimensions" as outputDimensionality.
 */
static GBytes *
batch_from_canonical (JsonObject  *source,
                      const char  *name,
                      GError     **error)
{
  JsonNode *input = json_object_get_member (source, "input");
  g_autoptr(JsonArray) texts = json_array_new ();
  g_autoptr(JsonObject) body = json_object_new ();
  g_autoptr(JsonNode) root = NULL;
  JsonArray *requests;
  gint64 dimensions = 0;

  if (kp_json_node_string (input) != NULL)
    json_array_add_string_element (texts, kp_json_node_string (input));
  else if (input != NULL && JSON_NODE_HOLDS_ARRAY (input))
    for (guint i = 0; i < json_array_get_length (json_node_get_array (input)); i++)
      {
        const char *text = kp_json_node_string (json_array_get_element (json_node_get_array (input), i));

        if (text == NULL)
          {
            g_set_error_literal (error, KP_WIRE_ERROR, KP_WIRE_ERROR_UNSUPPORTED,
                                 "Gemini's embeddings take texts, not token ids.");
            return NULL;
          }
        json_array_add_string_element (texts, text);
      }
  if (json_array_get_length (texts) == 0 || json_array_get_length (texts) > BATCH_MAX)
    {
      g_set_error (error, KP_WIRE_ERROR, KP_WIRE_ERROR_UNSUPPORTED,
                   "Gemini's embeddings take 1 to %u texts in one request.", BATCH_MAX);
      return NULL;
    }
  kp_json_int (source, "dimensions", &dimensions);

  requests = json_array_new ();
  for (guint i = 0; i < json_array_get_length (texts); i++)
    {
      JsonObject *one = json_object_new ();
      JsonObject *content = json_object_new ();
      JsonArray *parts = json_array_new ();
      JsonObject *part = json_object_new ();

      json_object_set_string_member (part, "text", json_array_get_string_element (texts, i));
      json_array_add_object_element (parts, part);
      json_object_set_array_member (content, "parts", parts);
      json_object_set_string_member (one, "model", name);
      json_object_set_object_member (one, "content", content);
      if (dimensions > 0)
        json_object_set_int_member (one, "outputDimensionality", dimensions);
      json_array_add_object_element (requests, one);
    }
  json_object_set_array_member (body, "requests", requests);
  root = kp_json_object_node (json_object_ref (body));
  return kp_wire_serialize (root);
}

static GBytes *
build_body (KpWireRequest  *req,
            JsonObject     *source,
            gboolean        passthrough,
            KpWireTarget   *target,
            GError        **error)
{
  g_autofree char *name = g_strconcat ("models/", target->offering->upstream_id, NULL);

  if (passthrough)
    return passthrough_body (req, source, name);
  return batch_from_canonical (source, name, error);
}

static char *
upstream_suffix (const KpWireRequest *req,
                 const KpWireTarget  *target)
{
  g_autofree char *model = g_uri_escape_string (target->offering->upstream_id, NULL, FALSE);
  /* A request of another wire is sent as a batch. */
  gboolean one = req->wire == &kp_wire_gemini_embed && split_path (req->path, NULL) == METHOD_ONE;

  return g_strconcat ("/", model, one ? ":embedContent" : ":batchEmbedContents", NULL);
}

/* Google's answer (a batch's "embeddings", or one "embedding") as the hub's:
 * OpenAI's embeddings answer, with usage when Google says.
 */
static JsonNode *
response_to_canonical (JsonObject  *answer,
                       const char  *model,
                       GError     **error)
{
  JsonArray *embeddings = kp_json_array (answer, "embeddings");
  JsonObject *single = kp_json_object (answer, "embedding");
  JsonObject *usage_metadata = kp_json_object (answer, "usageMetadata");
  g_autoptr(JsonObject) out = json_object_new ();
  JsonArray *data = json_array_new ();
  guint n = embeddings ? json_array_get_length (embeddings) : single ? 1 : 0;
  gint64 tokens;

  json_object_set_string_member (out, "object", "list");
  json_object_set_array_member (out, "data", data);
  for (guint i = 0; i < n; i++)
    {
      JsonObject *embedding = embeddings ? kp_json_array_object (embeddings, i) : single;
      JsonArray *values = kp_json_array (embedding, "values");
      JsonObject *item;

      if (values == NULL)
        {
          g_set_error (error, KP_WIRE_ERROR, KP_WIRE_ERROR_ANSWER,
                       "embedding %u of the answer has no values", i);
          return NULL;
        }
      item = json_object_new ();
      json_object_set_string_member (item, "object", "embedding");
      json_object_set_int_member (item, "index", i);
      json_object_set_array_member (item, "embedding", json_array_ref (values));
      json_array_add_object_element (data, item);
    }
  if (n == 0)
    {
      g_set_error_literal (error, KP_WIRE_ERROR, KP_WIRE_ERROR_ANSWER,
                           "the answer has no embeddings");
      return NULL;
    }
  json_object_set_string_member (out, "model", model);
  if (usage_metadata != NULL && kp_json_int (usage_metadata, "promptTokenCount", &tokens))
    {
      JsonObject *usage = json_object_new ();

      json_object_set_int_member (usage, "prompt_tokens", tokens);
      json_object_set_int_member (usage, "total_tokens", tokens);
      json_object_set_object_member (out, "usage", usage);
    }
  return kp_json_object_node (g_steal_pointer (&out));
}

/* Errors are Google's, as on the Gemini wire. */
static char *
error_json (guint       status,
            const char *code,
            const char *message)
{
  return kp_wire_gemini.error_json (status, code, message);
}

static char *
error_from_upstream (guint       status,
                     const char *body,
                     gsize       len)
{
  return kp_wire_gemini.error_from_upstream (status, body, len);
}

static void
error_event (guint       status,
             const char *code,
             const char *message,
             GString    *out)
{
  kp_wire_gemini.error_event (status, code, message, out);
}

/* For the list of what Keypool serves; paths below /v1beta/models. */
static const char * const client_routes[] = {
  MODELS_PREFIX "{model}:embedContent",
  MODELS_PREFIX "{model}:batchEmbedContents",
  NULL,
};

const KpWire kp_wire_gemini_embed = {
  .id = "gemini-embed",
  .kind = KP_WIRE_KIND_EMBEDDINGS,
  .client_routes = client_routes,
  .upstream_path = "/models",
  .usage_member = "usageMetadata",
  .client_headers = "x-goog-api-key, x-goog-api-client",
  .match_route = match_route,
  .parse_route = parse_route,

  .parse_request = parse_request,
  .error_json = error_json,
  .error_from_upstream = error_from_upstream,
  .error_event = error_event,

  .build_body = build_body,
  .upstream_suffix = upstream_suffix,
  .response_to_canonical = response_to_canonical,
  .parse_usage = kp_gemini_parse_usage,
};
