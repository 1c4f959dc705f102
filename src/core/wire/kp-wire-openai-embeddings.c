/* kp-wire-openai-embeddings.c: OpenAI's embeddings API
 *
 * Embeddings are not chat: a request goes only to a provider that serves
 * an embeddings API for a model its file declares an embedding model. To
 * one that serves this API it passes through as it is (only the model id
 * changes), and its cost is the input tokens the answer's usage reports.
 * The request is also the hub of embeddings: another embeddings wire
 * (Gemini's) takes it as it is and gives back an answer of this shape,
 * which is written here as the client asked (floats or base64).
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include "kp-wire-openai-private.h"

#include <string.h>

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

/* The request is the hub's already. */
static JsonNode *
identity (JsonObject  *request,
          GError     **error)
{
  return kp_json_object_node (json_object_ref (request));
}

/* @values (numbers) as little-endian float32, in base64; NULL when one is
 * no number.
 */
static char *
to_base64 (JsonArray *values)
{
  guint n = json_array_get_length (values);
  g_autofree guint32 *words = g_new (guint32, MAX (n, 1));

  for (guint j = 0; j < n; j++)
    {
      JsonNode *node = json_array_get_element (values, j);
      float value;
      guint32 bits;

      if (!kp_json_is_number (node))
        return NULL;
      value = (float)json_node_get_double (node);
      memcpy (&bits, &value, sizeof bits);
      words[j] = GUINT32_TO_LE (bits);
    }
  return g_base64_encode ((const guchar *)words, n * sizeof (guint32));
}

/* A hub answer ({"data": [{"embedding": [...]}], "usage"?}) as the client
 * asked for it: each vector in base64 when it said so, its model name, and
 * usage (Keypool's estimate of the input when the provider said none).
 */
static JsonNode *
response_from_canonical (JsonObject          *answer,
                         const KpWireRequest *req,
                         GError             **error)
{
  JsonObject *request = json_node_get_object (req->root);
  gboolean base64 = g_strcmp0 (kp_json_string (request, "encoding_format"), "base64") == 0;
  JsonArray *data = kp_json_array (answer, "data");
  JsonObject *out = json_object_new ();
  JsonArray *vectors = json_array_new ();
  JsonObject *usage = kp_json_object (answer, "usage");
  gint64 tokens = req->prompt_tokens;
  gboolean ok = data != NULL;

  json_object_set_string_member (out, "object", "list");
  json_object_set_array_member (out, "data", vectors);
  for (guint i = 0; ok && i < json_array_get_length (data); i++)
    {
      JsonArray *values = kp_json_array (kp_json_array_object (data, i), "embedding");
      g_autofree char *text = NULL;
      JsonObject *vector;

      if (values == NULL || (base64 && (text = to_base64 (values)) == NULL))
        {
          ok = FALSE;
          break;
        }
      vector = json_object_new ();
      json_object_set_string_member (vector, "object", "embedding");
      json_object_set_int_member (vector, "index", i);
      if (text != NULL)
        json_object_set_string_member (vector, "embedding", text);
      else
        json_object_set_array_member (vector, "embedding", json_array_ref (values));
      json_array_add_object_element (vectors, vector);
    }
  if (!ok)
    {
      json_object_unref (out);
      g_set_error_literal (error, KP_WIRE_ERROR, KP_WIRE_ERROR_ANSWER,
                           "the answer has no list of embeddings");
      return NULL;
    }
  json_object_set_string_member (out, "model", req->model);
  if (usage != NULL)
    kp_json_int (usage, "prompt_tokens", &tokens);
  usage = json_object_new ();
  json_object_set_int_member (usage, "prompt_tokens", tokens);
  json_object_set_int_member (usage, "total_tokens", tokens);
  json_object_set_object_member (out, "usage", usage);
  return kp_json_object_node (out);
}

static const char * const client_routes[] = { "/v1/embeddings", NULL };

const KpWire kp_wire_openai_embeddings = {
  .id = "openai-embeddings",
  .kind = KP_WIRE_KIND_EMBEDDINGS,
  .client_routes = client_routes,
  .upstream_path = "/embeddings",

  .parse_request = parse_request,
  .to_canonical = identity,
  .response_from_canonical = response_from_canonical,
  .error_json = kp_openai_error_json,
  .error_from_upstream = kp_openai_error_from_upstream,
  .error_event = kp_openai_error_event,

  .build_body = kp_openai_build_passthrough,
  .parse_usage = kp_usage_parse_openai,
};
