/* kp-mock-embeddings.c: the mock provider's OpenAI embeddings API
 *
 * POST …/embeddings answers one vector per input (a text, a list of texts,
 * a list of token ids or a list of such lists), of `dimensions` numbers (8
 * when not asked), as floats or, with "encoding_format": "base64", as
 * little-endian float32. Vector i holds (i + 1) / 8 + j / 128 at j: exact
 * in float32, so a test can compare it. usage.prompt_tokens counts the
 * words and token ids of the input.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include "config.h"

#include <string.h>

#include "kp-mock-private.h"

#define DEFAULT_DIMENSIONS 8
#define MAX_DIMENSIONS 4096

static guint
count_words (const char *text)
{
  g_auto(GStrv) words = g_strsplit_set (text, " \t\n", -1);
  guint n = 0;

  for (guint i = 0; words[i] != NULL; i++)
    if (words[i][0] != '\0')
      n++;
  return n;
}

static gboolean
is_token_id (JsonNode *node)
{
  return JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == G_TYPE_INT64;
}

/* The tokens of one input: a text, or a list of token ids. */
static gboolean
count_input (JsonNode *node,
             guint    *tokens)
{
  if (JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == G_TYPE_STRING)
    *tokens += count_words (json_node_get_string (node));
  else if (JSON_NODE_HOLDS_ARRAY (node))
    {
      JsonArray *ids = json_node_get_array (node);

      for (guint i = 0; i < json_array_get_length (ids); i++)
        {
          if (!is_token_id (json_array_get_element (ids, i)))
            return FALSE;
        }
      *tokens += json_array_get_length (ids);
    }
  else
    return FALSE;
  return TRUE;
}

static JsonNode *
vector (guint    index,
        guint    dimensions,
        gboolean base64)
{
  g_autofree guint32 *words = g_new (guint32, dimensions);
  JsonArray *floats = json_array_new ();

  for (guint j = 0; j < dimensions; j++)
    {
      float value = (index + 1) / 8.0f + j / 128.0f;
      guint32 bits;

      memcpy (&bits, &value, sizeof bits);
      words[j] = GUINT32_TO_LE (bits);
      json_array_add_double_element (floats, value);
    }
  if (base64)
    {
      g_autofree char *text = g_base64_encode ((const guchar *) words, dimensions * sizeof (guint32));

      json_array_unref (floats);
      return json_node_init_string (json_node_alloc (), text);
    }
  {
    /* The node takes the only reference (json_node_init_array() would add one). */
    JsonNode *node = json_node_new (JSON_NODE_ARRAY);

    json_node_take_array (node, floats);
    return node;
  }
}

/**
 * kp_mock_embeddings_handle:
 * @stats: the mock's statistics, updated
 * @msg: a POST to …/embeddings
 */
void
kp_mock_embeddings_handle (KpMockStats       *stats,
                           SoupServerMessage *msg)
{
  g_autoptr(JsonObject) request = kp_mock_read_request (stats, msg, "Authorization");
  JsonObject *answer;
  JsonObject *usage;
  JsonArray *data;
  JsonNode *input;
  g_autoptr(GPtrArray) inputs = g_ptr_array_new ();
  gint64 dimensions;
  gboolean base64;
  guint tokens = 0;

  if (request == NULL)
    return;

  input = json_object_get_member (request, "input");
  dimensions = json_object_get_int_member_with_default (request, "dimensions", DEFAULT_DIMENSIONS);
  base64 = g_strcmp0 (json_object_get_string_member_with_default (request, "encoding_format", "float"),
                      "base64") == 0;
  if (input == NULL || dimensions <= 0 || dimensions > MAX_DIMENSIONS)
    {
      kp_mock_reply_error (msg, 400, "mock: “input” is missing or “dimensions” is out of range");
      return;
    }

  /* A list of texts or of lists is several inputs; a list of token ids is one. */
  if (JSON_NODE_HOLDS_ARRAY (input) && json_array_get_length (json_node_get_array (input)) > 0 &&
      is_token_id (json_array_get_element (json_node_get_array (input), 0)))
    g_ptr_array_add (inputs, input);
  else if (JSON_NODE_HOLDS_ARRAY (input))
    for (guint i = 0; i < json_array_get_length (json_node_get_array (input)); i++)
      g_ptr_array_add (inputs, json_array_get_element (json_node_get_array (input), i));
  else
    g_ptr_array_add (inputs, input);

  data = json_array_new ();
  for (guint i = 0; i < inputs->len; i++)
    {
      JsonObject *embedding;

      if (!count_input (g_ptr_array_index (inputs, i), &tokens))
        {
          json_array_unref (data);
          kp_mock_reply_error (msg, 400, "mock: an input is neither a text nor token ids");
          return;
        }
      embedding = json_object_new ();
      json_object_set_string_member (embedding, "object", "embedding");
      json_object_set_int_member (embedding, "index", i);
      json_object_set_member (embedding, "embedding", vector (i, dimensions, base64));
      json_array_add_object_element (data, embedding);
    }
  if (inputs->len == 0)
    {
      json_array_unref (data);
      kp_mock_reply_error (msg, 400, "mock: “input” is an empty list");
      return;
    }

  answer = json_object_new ();
  json_object_set_string_member (answer, "object", "list");
  json_object_set_array_member (answer, "data", data);
  json_object_set_string_member (answer, "model",
                                 json_object_get_string_member_with_default (request, "model", ""));
  usage = json_object_new ();
  json_object_set_int_member (usage, "prompt_tokens", tokens);
  json_object_set_int_member (usage, "total_tokens", tokens);
  json_object_set_object_member (answer, "usage", usage);
  kp_mock_reply_json (msg, 200, answer);
}

/* Gemini's: {"values": [...]} for a content, from the index of its text. */
static JsonObject *
gemini_embedding (guint index)
{
  JsonObject *embedding = json_object_new ();
  JsonNode *values = vector (index, DEFAULT_DIMENSIONS, FALSE);

  json_object_set_member (embedding, "values", values);
  return embedding;
}

/**
 * kp_mock_gemini_embed_handle:
 * @path: …/models/{model}:embedContent or :batchEmbedContents
 *
 * Like Google: a batch whose requests name another model than the path's
 * is refused; there is no usage in the answer.
 */
void
kp_mock_gemini_embed_handle (KpMockStats       *stats,
                             SoupServerMessage *msg,
                             const char        *path)
{
  g_autoptr(JsonObject) request = kp_mock_read_request (stats, msg, "x-goog-api-key");
  const char *models = strstr (path, "/models/");
  g_autofree char *model = NULL;
  JsonObject *answer;

  if (request == NULL)
    return;
  model = g_strndup (models + 1, strrchr (path, ':') - (models + 1));
  answer = json_object_new ();
  if (g_str_has_suffix (path, ":batchEmbedContents"))
    {
      JsonArray *requests = kp_mock_array_member (request, "requests");
      JsonArray *embeddings = json_array_new ();

      for (guint i = 0; requests != NULL && i < json_array_get_length (requests); i++)
        {
          JsonObject *one = json_array_get_object_element (requests, i);

          if (g_strcmp0 (json_object_get_string_member_with_default (one, "model", ""), model) != 0)
            {
              json_array_unref (embeddings);
              json_object_unref (answer);
              kp_mock_reply_error (msg, 400, "mock: a batch request names another model than the path");
              return;
            }
          json_array_add_object_element (embeddings, gemini_embedding (i));
        }
      json_object_set_array_member (answer, "embeddings", embeddings);
    }
  else if (kp_mock_object_member (request, "content") != NULL)
    json_object_set_object_member (answer, "embedding", gemini_embedding (0));
  else
    {
      json_object_unref (answer);
      kp_mock_reply_error (msg, 400, "mock: “content” is missing");
      return;
    }
  kp_mock_reply_json (msg, 200, answer);
}
