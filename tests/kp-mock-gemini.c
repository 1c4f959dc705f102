/* kp-mock-gemini.c: the mock provider's Gemini side
 *
 * POST …/models/{model}:generateContent, and :streamGenerateContent (SSE
 * with alt=sse, one JSON array without), as Google's Gemini API answers.
 * The key is in x-goog-api-key. The model picks the answer:
 *
 *   gemini-text         a thought, then "Hello from Gemini" in two chunks;
 *                       usage on every chunk, the last one right
 *   gemini-tools        a functionCall get_weather {"city":"Paris"} with a
 *                       thoughtSignature; finishReason STOP
 *   gemini-429-day      429 RESOURCE_EXHAUSTED, a per-day QuotaFailure
 *   gemini-429-minute   429 RESOURCE_EXHAUSTED, per-minute, RetryInfo 3s
 *   gemini-404          404 NOT_FOUND
 *   gemini-503          503 UNAVAILABLE
 *   gemini-bad          400 INVALID_ARGUMENT (the request's fault)
 *   gemini-error-event  200 stream whose first event is an error
 *
 * GET /v1beta/models lists them, Gemini's way (kp-mock-upstream.c).
 *
 * A key with "invalid" in it gets 400 API_KEY_INVALID, as Google answers.
 * A request whose function call lacks its thoughtSignature, or which has no
 * "contents", gets 400 INVALID_ARGUMENT.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include "config.h"

#include <string.h>

#include <json-glib/json-glib.h>

#include "kp-mock-upstream.h"

#define SIGNATURE "c2lnLW1vY2stMQ=="

#define USAGE(prompt, candidates, thoughts) \
  "\"usageMetadata\":{\"promptTokenCount\":" prompt ",\"candidatesTokenCount\":" candidates \
  ",\"thoughtsTokenCount\":" thoughts ",\"totalTokenCount\":0}"

static const char * const text_chunks[] = {
  "{\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\"Let me think.\","
  "\"thought\":true}]},\"index\":0}]," USAGE ("9", "0", "3") ",\"responseId\":\"mock-r1\","
  "\"modelVersion\":\"gemini-text\"}",
  "{\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\"Hello \"}]},"
  "\"index\":0}]," USAGE ("9", "1", "3") ",\"responseId\":\"mock-r1\"}",
  "{\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\"from Gemini\"}]},"
  "\"finishReason\":\"STOP\",\"index\":0}]," USAGE ("11", "4", "5") ",\"responseId\":\"mock-r1\"}",
  NULL,
};

static const char * const tools_chunks[] = {
  "{\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"functionCall\":{\"name\":"
  "\"get_weather\",\"args\":{\"city\":\"Paris\"}},\"thoughtSignature\":\"" SIGNATURE "\"}]},"
  "\"finishReason\":\"STOP\",\"index\":0}]," USAGE ("20", "6", "0") ",\"responseId\":\"mock-r2\"}",
  NULL,
};

static const char text_whole[] =
  "{\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\"Let me think.\","
  "\"thought\":true},{\"text\":\"Hello from Gemini\"}]},\"finishReason\":\"STOP\",\"index\":0}],"
  USAGE ("11", "4", "5") ",\"responseId\":\"mock-r1\",\"modelVersion\":\"gemini-text\"}";

static const struct
{
  const char *model;
  guint       status;
  const char *body;
} errors[] = {
  { "gemini-429-day", 429,
    "{\"error\":{\"code\":429,\"message\":\"You exceeded your current quota, please check your "
    "plan and billing details.\",\"status\":\"RESOURCE_EXHAUSTED\",\"details\":[{\"@type\":"
    "\"type.googleapis.com/google.rpc.QuotaFailure\",\"violations\":[{\"quotaId\":"
    "\"GenerateRequestsPerDayPerProjectPerModel-FreeTier\"}]}]}}" },
  { "gemini-429-minute", 429,
    "{\"error\":{\"code\":429,\"message\":\"You exceeded your current quota.\",\"status\":"
    "\"RESOURCE_EXHAUSTED\",\"details\":[{\"@type\":\"type.googleapis.com/google.rpc.QuotaFailure\","
    "\"violations\":[{\"quotaId\":\"GenerateRequestsPerMinutePerProjectPerModel-FreeTier\"}]},"
    "{\"@type\":\"type.googleapis.com/google.rpc.RetryInfo\",\"retryDelay\":\"3s\"}]}}" },
  { "gemini-404", 404,
    "{\"error\":{\"code\":404,\"message\":\"models/gemini-404 is not found for API version v1beta, "
    "or is not supported for generateContent.\",\"status\":\"NOT_FOUND\"}}" },
  { "gemini-503", 503,
    "{\"error\":{\"code\":503,\"message\":\"The model is overloaded. Please try again later.\","
    "\"status\":\"UNAVAILABLE\"}}" },
  { "gemini-bad", 400,
    "{\"error\":{\"code\":400,\"message\":\"Invalid value at 'contents[0].parts[0]'.\","
    "\"status\":\"INVALID_ARGUMENT\"}}" },
};

static const char bad_key[] =
  "{\"error\":{\"code\":400,\"message\":\"API key not valid. Please pass a valid API key.\","
  "\"status\":\"INVALID_ARGUMENT\",\"details\":[{\"@type\":\"type.googleapis.com/"
  "google.rpc.ErrorInfo\",\"reason\":\"API_KEY_INVALID\",\"domain\":\"googleapis.com\"}]}}";

static const char error_event[] =
  "{\"error\":{\"code\":503,\"message\":\"The model is overloaded.\",\"status\":\"UNAVAILABLE\"}}";

static void
reply (SoupServerMessage *msg,
       guint              status,
       const char        *content_type,
       char              *body)
{
  soup_server_message_set_status (msg, status, NULL);
  soup_server_message_set_response (msg, content_type, SOUP_MEMORY_TAKE, body, strlen (body));
}

/* Gemini 3 refuses a function call sent back without its signature. */
static gboolean
signatures_kept (JsonObject *request)
{
  JsonArray *contents = json_object_get_array_member (request, "contents");

  for (guint i = 0; i < json_array_get_length (contents); i++)
    {
      JsonNode *turn = json_array_get_element (contents, i);
      JsonArray *parts;

      if (!JSON_NODE_HOLDS_OBJECT (turn) ||
          !json_object_has_member (json_node_get_object (turn), "parts"))
        continue;
      parts = json_object_get_array_member (json_node_get_object (turn), "parts");
      for (guint j = 0; j < json_array_get_length (parts); j++)
        {
          JsonObject *part = json_array_get_object_element (parts, j);

          if (json_object_has_member (part, "functionCall") &&
              g_strcmp0 (json_object_get_string_member_with_default (part, "thoughtSignature", ""),
                         SIGNATURE) != 0)
            return FALSE;
        }
    }
  return TRUE;
}

/**
 * kp_mock_gemini_handle:
 * @stats: the mock's statistics, updated
 * @msg: a POST to …/models/{model}:{method}
 * @path: its path
 * @query: (nullable): its query
 */
void
kp_mock_gemini_handle (KpMockStats       *stats,
                       SoupServerMessage *msg,
                       const char        *path,
                       GHashTable        *query)
{
  SoupMessageHeaders *request_headers = soup_server_message_get_request_headers (msg);
  const char *key = soup_message_headers_get_one (request_headers, "x-goog-api-key");
  const char *name = strstr (path, "/models/") + strlen ("/models/");
  const char *colon = strrchr (name, ':');
  g_autofree char *model = g_strndup (name, colon - name);
  gboolean stream = g_str_equal (colon + 1, "streamGenerateContent");
  gboolean sse = query != NULL && g_strcmp0 (g_hash_table_lookup (query, "alt"), "sse") == 0;
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GBytes) bytes = soup_message_body_flatten (soup_server_message_get_request_body (msg));
  const char * const *chunks = NULL;
  GString *body;

  stats->requests++;
  g_free (stats->last_body);
  stats->last_body = g_strndup (g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes));
  g_free (stats->last_auth);
  stats->last_auth = g_strdup (key);

  if (key == NULL || strstr (key, "invalid") != NULL)
    {
      reply (msg, 400, "application/json", g_strdup (bad_key));
      return;
    }
  for (guint i = 0; i < G_N_ELEMENTS (errors); i++)
    if (g_str_equal (model, errors[i].model))
      {
        reply (msg, errors[i].status, "application/json", g_strdup (errors[i].body));
        return;
      }

  if (!json_parser_load_from_data (parser, stats->last_body, -1, NULL) ||
      !JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)) ||
      !json_object_has_member (json_node_get_object (json_parser_get_root (parser)), "contents") ||
      !signatures_kept (json_node_get_object (json_parser_get_root (parser))))
    {
      reply (msg, 400, "application/json",
             g_strdup ("{\"error\":{\"code\":400,\"message\":\"Request contains an invalid argument "
                       "(contents, or a function call without its thought signature).\","
                       "\"status\":\"INVALID_ARGUMENT\"}}"));
      return;
    }
  if (g_str_equal (model, "gemini-tools"))
    chunks = tools_chunks;
  else
    chunks = text_chunks;

  if (!stream)
    {
      reply (msg, 200, "application/json",
             g_strdup (chunks == tools_chunks ? tools_chunks[0] : text_whole));
      return;
    }

  body = g_string_new (sse ? NULL : "[");
  if (g_str_equal (model, "gemini-error-event"))
    {
      if (sse)
        g_string_append_printf (body, "data: %s\r\n\r\n", error_event);
      else
        g_string_append_printf (body, "%s]", error_event);
      reply (msg, 200, sse ? "text/event-stream" : "application/json",
             g_string_free (body, FALSE));
      return;
    }
  for (guint i = 0; chunks[i] != NULL; i++)
    {
      if (sse)
        g_string_append_printf (body, "data: %s\r\n\r\n", chunks[i]);
      else
        g_string_append_printf (body, "%s%s", i > 0 ? ",\r\n" : "", chunks[i]);
    }
  if (!sse)
    g_string_append_c (body, ']');
  reply (msg, 200, sse ? "text/event-stream" : "application/json", g_string_free (body, FALSE));
}
