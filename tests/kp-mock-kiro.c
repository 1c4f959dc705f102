/* kp-mock-kiro.c: Kiro's generateAssistantResponse for tests
 *
 * POST /generateAssistantResponse with a conversationState. The modelId of
 * the current message chooses the answer:
 *
 *   kiro-text        text.events           kiro-tools     tools.events
 *   kiro-reasoning   reasoning.events      kiro-exception exception.events
 *   kiro-bad-crc     text.events with its first message's CRC broken
 *   kiro-cut         text.events cut inside its last message
 *   kiro-empty       a 200 with no message at all
 *   kiro-throttled   429 ThrottlingException
 *   kiro-suspended   423, the account locked
 *   kiro-banned      403 {"reason":"TemporarilySuspended"}
 *   kiro-quota       400 ServiceQuotaExceededException (MONTHLY_REQUEST_COUNT)
 *   kiro-malformed   400 "Improperly formed request."
 *   kiro-bearer      403 "The bearer token included in the request is invalid."
 *
 * It also plays Kiro's sign-in and management endpoints:
 *
 *   POST /refreshToken     a social login's refresh
 *   POST /token            an IdC login's refresh (SSO-OIDC CreateToken)
 *   GET  /getUsageLimits   the account's usage
 *   POST /                 ListAvailableModels (x-amz-target)
 *
 * A refresh with the refresh token it accepts (kp_mock_kiro_set_refresh())
 * gives the access token "at-<n>" for the n-th refresh, and a new refresh
 * token "rt-rotated-<n>" when told to rotate; any other is refused (400). Once
 * kp_mock_kiro_require_token() named an access token, a chat request with
 * another gets 403 "The bearer token … is invalid".
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include "config.h"

#include <string.h>

#include <json-glib/json-glib.h>

#include "codec/kp-event-stream.h"
#include "kp-mock-kiro.h"

struct _KpMockKiro
{
  SoupServer *server;
  char       *url;
  guint       requests;
  char       *last_body;
  char       *last_auth;

  char       *good_refresh;   /* the refresh token the refresh endpoints accept */
  gboolean    rotate;
  char       *required;       /* the access token chat requests must carry, or NULL */
  char       *usage_answer;   /* getUsageLimits' answer instead of the usual one, or NULL */
  KpMockKiroStats stats;
};

/**
 * kp_mock_kiro_load_events:
 * @name: a file in tests/fixtures/kiro
 *
 * Returns: (transfer full): its messages as an AWS event stream
 */
GByteArray *
kp_mock_kiro_load_events (const char *name)
{
  g_autofree char *path = g_build_filename (g_getenv ("KEYPOOL_FIXTURES_DIR"), "kiro", name, NULL);
  g_autofree char *text = NULL;
  g_auto(GStrv) lines = NULL;
  GByteArray *out = g_byte_array_new ();

  if (!g_file_get_contents (path, &text, NULL, NULL))
    g_error ("no fixture %s", path);
  lines = g_strsplit (text, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      g_auto(GStrv) fields = NULL;

      if (lines[i][0] == '\0' || lines[i][0] == '#')
        continue;
      fields = g_strsplit (lines[i], " ", 3);
      g_assert (g_strv_length (fields) == 3);
      if (g_str_equal (fields[0], "event"))
        kp_event_stream_append_event (out, fields[1], fields[2]);
      else if (g_str_equal (fields[0], "exception"))
        kp_event_stream_append_exception (out, fields[1], fields[2]);
      else
        g_error ("%s: a line must start with event or exception", path);
    }
  return out;
}

static void
set_error (SoupServerMessage *msg,
           guint              status,
           const char        *type,
           const char        *json)
{
  SoupMessageHeaders *headers = soup_server_message_get_response_headers (msg);

  if (type != NULL)
    soup_message_headers_replace (headers, "x-amzn-ErrorType", type);
  soup_server_message_set_status (msg, status, NULL);
  soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_COPY, json, strlen (json));
}

static void
set_stream (SoupServerMessage *msg,
            GByteArray        *stream)
{
  gsize len = stream->len;
  guint8 *data = g_byte_array_free (stream, FALSE);

  soup_server_message_set_status (msg, 200, NULL);
  soup_server_message_set_response (msg, "application/vnd.amazon.eventstream", SOUP_MEMORY_TAKE,
                                    (const char *)data, len);
}

static void
remember (char       **slot,
          const char  *value)
{
  g_free (*slot);
  *slot = g_strdup (value);
}

static void
sign_in_handler (KpMockKiro        *self,
                 SoupServerMessage *msg,
                 const char        *path,
                 GHashTable        *query)
{
  SoupMessageBody *body = soup_server_message_get_request_body (msg);
  SoupMessageHeaders *headers = soup_server_message_get_request_headers (msg);
  const char *method = soup_server_message_get_method (msg);

  if (g_str_equal (path, "/getUsageLimits"))
    {
      self->stats.usage_reads++;
      remember (&self->stats.last_usage_auth, soup_message_headers_get_one (headers, "Authorization"));
      remember (&self->stats.last_usage_arn, query ? g_hash_table_lookup (query, "profileArn") : NULL);
      if (self->usage_answer != NULL)
        {
          set_error (msg, 200, NULL, self->usage_answer);
          return;
        }
      set_error (msg, 200, NULL,
                 "{\"usageBreakdownList\":[{\"resourceType\":\"CREDIT\",\"currentUsage\":12,"
                 "\"currentUsageWithPrecision\":12.5,\"usageLimit\":50,"
                 "\"usageLimitWithPrecision\":50.0,\"unitPlural\":\"credits\"}],"
                 "\"nextDateReset\":4102444800,"
                 "\"subscriptionInfo\":{\"subscriptionTitle\":\"KIRO FREE\"}}");
      return;
    }
  if (g_str_equal (path, "/") && g_str_equal (method, "POST"))
    {
      self->stats.model_reads++;
      if (g_strcmp0 (soup_message_headers_get_one (headers, "x-amz-target"),
                     "KiroControlPlaneBearerService.ListAvailableModels") != 0)
        {
          set_error (msg, 400, "UnknownOperationException", "{\"message\":\"unknown\"}");
          return;
        }
      set_error (msg, 200, NULL,
                 "{\"models\":[{\"modelId\":\"claude-sonnet-4.5\",\"modelName\":\"Sonnet\"},"
                 "{\"modelId\":\"auto\"},{\"modelId\":\"deepseek-3.2\"}]}");
      return;
    }

  /* /refreshToken or /token */
  self->stats.refreshes++;
  remember (&self->stats.last_refresh_path, path);
  g_free (self->stats.last_refresh_body);
  self->stats.last_refresh_body = g_strndup (body->data, body->length);
  if (self->good_refresh == NULL ||
      strstr (self->stats.last_refresh_body, self->good_refresh) == NULL)
    {
      set_error (msg, 400, "InvalidGrantException",
                 "{\"error\":\"invalid_grant\",\"message\":\"Invalid refresh token\"}");
      return;
    }
  {
    g_autofree char *answer = NULL;
    g_autofree char *rotated = NULL;

    if (self->rotate)
      {
        rotated = g_strdup_printf ("rt-rotated-%u", self->stats.refreshes);
        remember (&self->good_refresh, rotated);
      }
    answer = g_strdup_printf ("{\"accessToken\":\"at-%u\",%s%s%s\"expiresIn\":3600%s}",
                              self->stats.refreshes,
                              rotated ? "\"refreshToken\":\"" : "", rotated ? rotated : "",
                              rotated ? "\"," : "",
                              g_str_equal (path, "/refreshToken")
                                ? ",\"profileArn\":\"arn:aws:codewhisperer:eu-central-1:111:profile/NEW\""
                                : "");
    set_error (msg, 200, NULL, answer);
  }
}

static void
handler (SoupServer        *server,
         SoupServerMessage *msg,
         const char        *path,
         GHashTable        *query,
         gpointer           user_data)
{
  KpMockKiro *self = user_data;
  SoupMessageBody *body = soup_server_message_get_request_body (msg);
  g_autoptr(JsonParser) parser = json_parser_new ();
  const char *model = NULL;
  JsonNode *root;

  if (g_str_equal (path, "/refreshToken") || g_str_equal (path, "/token") ||
      g_str_equal (path, "/getUsageLimits") || g_str_equal (path, "/"))
    {
      sign_in_handler (self, msg, path, query);
      return;
    }
  if (!g_str_equal (soup_server_message_get_method (msg), "POST") ||
      !g_str_equal (path, "/generateAssistantResponse"))
    {
      set_error (msg, 404, NULL, "{\"message\":\"not found\"}");
      return;
    }

  self->requests++;
  g_free (self->last_body);
  self->last_body = g_strndup (body->data, body->length);
  g_free (self->last_auth);
  self->last_auth = g_strdup (soup_message_headers_get_one (
    soup_server_message_get_request_headers (msg), "Authorization"));

  if (json_parser_load_from_data (parser, body->data, body->length, NULL) &&
      (root = json_parser_get_root (parser)) != NULL && JSON_NODE_HOLDS_OBJECT (root))
    {
      JsonObject *state = json_object_get_object_member (json_node_get_object (root),
                                                         "conversationState");
      JsonObject *current = state ? json_object_get_object_member (state, "currentMessage") : NULL;
      JsonObject *user = current ? json_object_get_object_member (current, "userInputMessage")
                                 : NULL;

      model = user ? json_object_get_string_member_with_default (user, "modelId", NULL) : NULL;
    }
  if (self->required != NULL)
    {
      g_autofree char *bearer = g_strconcat ("Bearer ", self->required, NULL);

      if (g_strcmp0 (self->last_auth, bearer) != 0)
        {
          set_error (msg, 403, "AccessDeniedException",
                     "{\"message\":\"The bearer token included in the request is invalid.\"}");
          return;
        }
    }
  if (model == NULL)
    {
      set_error (msg, 400, "ValidationException", "{\"message\":\"Improperly formed request.\"}");
      return;
    }

  if (g_str_equal (model, "kiro-text"))
    set_stream (msg, kp_mock_kiro_load_events ("text.events"));
  else if (g_str_equal (model, "kiro-tools"))
    set_stream (msg, kp_mock_kiro_load_events ("tools.events"));
  else if (g_str_equal (model, "kiro-reasoning"))
    set_stream (msg, kp_mock_kiro_load_events ("reasoning.events"));
  else if (g_str_equal (model, "kiro-exception"))
    set_stream (msg, kp_mock_kiro_load_events ("exception.events"));
  else if (g_str_equal (model, "kiro-bad-crc"))
    {
      GByteArray *stream = kp_mock_kiro_load_events ("text.events");
      guint32 total = ((guint32)stream->data[0] << 24) | ((guint32)stream->data[1] << 16) |
                      ((guint32)stream->data[2] << 8) | stream->data[3];

      stream->data[total - 1] ^= 0x55;
      set_stream (msg, stream);
    }
  else if (g_str_equal (model, "kiro-cut"))
    {
      GByteArray *stream = kp_mock_kiro_load_events ("text.events");

      g_byte_array_set_size (stream, stream->len - 3);
      set_stream (msg, stream);
    }
  else if (g_str_equal (model, "kiro-empty"))
    set_stream (msg, g_byte_array_new ());
  else if (g_str_equal (model, "kiro-throttled"))
    set_error (msg, 429, "ThrottlingException", "{\"message\":\"Rate exceeded\"}");
  else if (g_str_equal (model, "kiro-suspended"))
    set_error (msg, 423, NULL, "{\"message\":\"Your account is locked.\"}");
  else if (g_str_equal (model, "kiro-banned"))
    set_error (msg, 403, "AccessDeniedException",
               "{\"message\":\"Access denied.\",\"reason\":\"TemporarilySuspended\"}");
  else if (g_str_equal (model, "kiro-quota"))
    set_error (msg, 400, "ServiceQuotaExceededException",
               "{\"__type\":\"ServiceQuotaExceededException\",\"message\":\"You have reached "
               "the limit.\",\"reason\":\"MONTHLY_REQUEST_COUNT\"}");
  else if (g_str_equal (model, "kiro-malformed"))
    set_error (msg, 400, "ValidationException", "{\"message\":\"Improperly formed request.\"}");
  else if (g_str_equal (model, "kiro-bearer"))
    set_error (msg, 403, "AccessDeniedException",
               "{\"message\":\"The bearer token included in the request is invalid.\"}");
  else
    set_error (msg, 400, "ValidationException", "{\"message\":\"Invalid model.\"}");
}

KpMockKiro *
kp_mock_kiro_new (GError **error)
{
  KpMockKiro *self = g_new0 (KpMockKiro, 1);
  GSList *uris;

  self->server = soup_server_new (NULL, NULL);
  soup_server_add_handler (self->server, NULL, handler, self, NULL);
  if (!soup_server_listen_local (self->server, 0, SOUP_SERVER_LISTEN_IPV4_ONLY, error))
    {
      kp_mock_kiro_free (self);
      return NULL;
    }
  uris = soup_server_get_uris (self->server);
  self->url = g_strdup_printf ("http://127.0.0.1:%u", g_uri_get_port (uris->data));
  g_slist_free_full (uris, (GDestroyNotify)g_uri_unref);
  return self;
}

void
kp_mock_kiro_free (KpMockKiro *self)
{
  if (self == NULL)
    return;
  if (self->server != NULL)
    soup_server_disconnect (self->server);
  g_clear_object (&self->server);
  g_free (self->url);
  g_free (self->last_body);
  g_free (self->last_auth);
  g_free (self->good_refresh);
  g_free (self->required);
  g_free (self->usage_answer);
  g_free (self->stats.last_refresh_path);
  g_free (self->stats.last_refresh_body);
  g_free (self->stats.last_usage_auth);
  g_free (self->stats.last_usage_arn);
  g_free (self);
}

/* The refresh token the refresh endpoints accept (NULL: none), and whether
 * each refresh hands out a new one.
 */
void
kp_mock_kiro_set_refresh (KpMockKiro *self,
                          const char *refresh_token,
                          gboolean    rotate)
{
  remember (&self->good_refresh, refresh_token);
  self->rotate = rotate;
}

void
kp_mock_kiro_require_token (KpMockKiro *self,
                            const char *access_token)
{
  remember (&self->required, access_token);
}

/* What getUsageLimits answers from now on (NULL: the usual). */
void
kp_mock_kiro_set_usage_answer (KpMockKiro *self,
                               const char *answer)
{
  remember (&self->usage_answer, answer);
}

KpMockKiroStats *
kp_mock_kiro_get_stats (KpMockKiro *self)
{
  return &self->stats;
}

const char *
kp_mock_kiro_get_url (KpMockKiro *self)
{
  return self->url;
}

guint
kp_mock_kiro_get_requests (KpMockKiro *self)
{
  return self->requests;
}

const char *
kp_mock_kiro_get_last_body (KpMockKiro *self)
{
  return self->last_body;
}

const char *
kp_mock_kiro_get_last_auth (KpMockKiro *self)
{
  return self->last_auth;
}
