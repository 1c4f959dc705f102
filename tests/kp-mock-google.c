/* kp-mock-google.c: Google's OAuth token endpoint and Code Assist API, for tests
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include "config.h"

#include <string.h>

#include <json-glib/json-glib.h>

#include "kp-mock-google.h"
#include "auth/kp-oauth-login.h"

struct _KpMockGoogle
{
  SoupServer        *server;
  char              *url;
  KpMockGoogleStats  stats;
  GHashTable        *dead;        /* refresh tokens refused */
  GHashTable        *rejected;    /* access tokens refused */
  gint64             expires_in;
  char              *code;
  char              *challenge;
  char              *redirect_uri;
  KpMockTier         tier;
  guint              polls_needed;
  guint              error_status;
  char              *error_body;
  char              *quota;
  guint              n_tokens;
  gboolean           hold;        /* refresh answers wait for kp_mock_google_hold_refreshes() */
  GPtrArray         *held;        /* of SoupServerMessage, answered and paused */
  guint              refusals_held; /* 401s wait until this many are there */
  GPtrArray         *held_refusals;
};

static void
release (GPtrArray *messages)
{
  for (guint i = 0; i < messages->len; i++)
    soup_server_message_unpause (g_ptr_array_index (messages, i));
  g_ptr_array_set_size (messages, 0);
}

static void
reply (SoupServerMessage *msg,
       guint              status,
       const char        *json)
{
  soup_server_message_set_status (msg, status, NULL);
  soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_COPY, json, strlen (json));
}

static void
handle_token (KpMockGoogle      *self,
              SoupServerMessage *msg)
{
  SoupMessageBody *body = soup_server_message_get_request_body (msg);
  g_autoptr(GBytes) bytes = soup_message_body_flatten (body);
  g_autofree char *form_text = g_strndup (g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes));
  g_autoptr(GHashTable) form = soup_form_decode (form_text);
  const char *grant = g_hash_table_lookup (form, "grant_type");
  g_autofree char *json = NULL;

  g_free (self->stats.last_token_form);
  self->stats.last_token_form = g_strdup (form_text);

  if (g_strcmp0 (g_hash_table_lookup (form, "client_id"), "test-client.apps") != 0)
    {
      reply (msg, 401, "{\"error\":\"invalid_client\",\"error_description\":\"The OAuth client was not found.\"}");
      return;
    }

  if (g_strcmp0 (grant, "refresh_token") == 0)
    {
      const char *refresh = g_hash_table_lookup (form, "refresh_token");

      if (refresh == NULL || g_hash_table_contains (self->dead, refresh))
        {
          reply (msg, 400, "{\"error\":\"invalid_grant\",\"error_description\":\"Token has been expired or revoked.\"}");
          return;
        }
      self->stats.refreshes++;
      json = g_strdup_printf ("{\"access_token\":\"at-%u\",\"expires_in\":%" G_GINT64_FORMAT ","
                              "\"scope\":\"s\",\"token_type\":\"Bearer\"}",
                              ++self->n_tokens, self->expires_in);
      reply (msg, 200, json);
      if (self->hold)
        {
          soup_server_message_pause (msg);
          g_ptr_array_add (self->held, g_object_ref (msg));
        }
      return;
    }

  if (g_strcmp0 (grant, "authorization_code") == 0)
    {
      const char *code = g_hash_table_lookup (form, "code");
      const char *verifier = g_hash_table_lookup (form, "code_verifier");
      g_autofree char *challenge = verifier ? kp_oauth_pkce_challenge (verifier) : NULL;

      if (self->code == NULL || g_strcmp0 (code, self->code) != 0 ||
          g_strcmp0 (challenge, self->challenge) != 0 ||
          g_strcmp0 (g_hash_table_lookup (form, "redirect_uri"), self->redirect_uri) != 0)
        {
          reply (msg, 400, "{\"error\":\"invalid_grant\",\"error_description\":\"Bad code or verifier.\"}");
          return;
        }
      self->stats.code_grants++;
      reply (msg, 200, "{\"access_token\":\"at-login\",\"refresh_token\":\"rt-from-login-0001\","
                       "\"expires_in\":3599,\"token_type\":\"Bearer\"}");
      return;
    }

  reply (msg, 400, "{\"error\":\"unsupported_grant_type\"}");
}

static gboolean
authorized (KpMockGoogle      *self,
            SoupServerMessage *msg)
{
  const char *auth = soup_message_headers_get_one (soup_server_message_get_request_headers (msg),
                                                   "Authorization");

  g_free (self->stats.last_auth);
  self->stats.last_auth = g_strdup (auth);
  if (auth == NULL || !g_str_has_prefix (auth, "Bearer at-") ||
      g_hash_table_contains (self->rejected, auth + strlen ("Bearer ")))
    {
      reply (msg, 401, "{\"error\":{\"code\":401,\"message\":\"Request had invalid authentication "
                       "credentials.\",\"status\":\"UNAUTHENTICATED\"}}");
      return FALSE;
    }
  return TRUE;
}

static char *
body_text (SoupServerMessage *msg)
{
  g_autoptr(GBytes) bytes = soup_message_body_flatten (soup_server_message_get_request_body (msg));

  return g_strndup (g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes));
}

static void
handle_code_assist (KpMockGoogle      *self,
                    SoupServerMessage *msg,
                    const char        *path)
{
  const char *method = strchr (path, ':');

  if (!authorized (self, msg))
    {
      if (method == NULL || strstr (method, "enerateContent") == NULL)
        return;
      /* A generate request refused. */
      self->stats.refused++;
      if (self->refusals_held > 0)
        {
          soup_server_message_pause (msg);
          g_ptr_array_add (self->held_refusals, g_object_ref (msg));
          if (self->held_refusals->len >= self->refusals_held)
            {
              self->refusals_held = 0;
              release (self->held_refusals);
            }
        }
      return;
    }

  if (g_str_has_prefix (path, "/v1internal/operations/"))
    {
      self->stats.polls++;
      if (self->stats.polls >= self->polls_needed)
        reply (msg, 200, "{\"name\":\"operations/op-1\",\"done\":true,\"response\":"
                         "{\"cloudaicompanionProject\":{\"id\":\"onboarded-proj-7\",\"name\":\"p\"}}}");
      else
        reply (msg, 200, "{\"name\":\"operations/op-1\",\"done\":false}");
      return;
    }
  if (method == NULL)
    {
      reply (msg, 404, "{\"error\":{\"code\":404,\"message\":\"no such method\",\"status\":\"NOT_FOUND\"}}");
      return;
    }
  method++;

  if (g_str_equal (method, "loadCodeAssist"))
    {
      self->stats.loads++;
      switch (self->tier)
        {
        case KP_MOCK_TIER_EXISTING:
          reply (msg, 200, "{\"currentTier\":{\"id\":\"standard-tier\",\"name\":\"Standard\"},"
                           "\"cloudaicompanionProject\":\"existing-proj-42\","
                           "\"paidTier\":{\"id\":\"g1-pro-tier\"}}");
          break;
        case KP_MOCK_TIER_ONBOARD:
          reply (msg, 200, "{\"allowedTiers\":[{\"id\":\"free-tier\"},"
                           "{\"id\":\"standard-tier\",\"isDefault\":true,"
                           "\"userDefinedCloudaicompanionProject\":true}]}");
          break;
        case KP_MOCK_TIER_FREE:
        default:
          reply (msg, 200, "{\"allowedTiers\":[{\"id\":\"free-tier\",\"isDefault\":true}]}");
          break;
        }
      return;
    }
  if (g_str_equal (method, "onboardUser"))
    {
      self->stats.onboards++;
      g_free (self->stats.last_onboard);
      self->stats.last_onboard = body_text (msg);
      if (self->polls_needed == 0)
        reply (msg, 200, "{\"name\":\"operations/op-1\",\"done\":true,\"response\":"
                         "{\"cloudaicompanionProject\":{\"id\":\"onboarded-proj-7\"}}}");
      else
        reply (msg, 200, "{\"name\":\"operations/op-1\",\"done\":false}");
      return;
    }
  if (g_str_equal (method, "retrieveUserQuota"))
    {
      g_autofree char *json = g_strdup_printf ("{\"buckets\":%s}", self->quota ? self->quota : "[]");

      reply (msg, 200, json);
      return;
    }
  if (g_str_equal (method, "generateContent") || g_str_equal (method, "streamGenerateContent"))
    {
      self->stats.generates++;
      g_free (self->stats.last_generate);
      self->stats.last_generate = body_text (msg);
      if (self->error_status != 0)
        {
          reply (msg, self->error_status, self->error_body);
          return;
        }
      if (g_str_equal (method, "generateContent"))
        reply (msg, 200, "{\"response\":{\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":"
                         "[{\"text\":\"Hello from Code Assist\"}]},\"finishReason\":\"STOP\"}],"
                         "\"usageMetadata\":{\"promptTokenCount\":7,\"candidatesTokenCount\":4,"
                         "\"totalTokenCount\":11},\"modelVersion\":\"gemini-2.5-pro\","
                         "\"responseId\":\"resp-1\"},\"traceId\":\"t-1\"}");
      else
        {
          static const char stream[] =
            "data: {\"response\":{\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\"Hello \"}]}}],\"responseId\":\"resp-2\"},\"traceId\":\"t\"}\r\n\r\n"
            "data: {\"response\":{\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\"stream\"}]},\"finishReason\":\"STOP\"}],"
            "\"usageMetadata\":{\"promptTokenCount\":7,\"candidatesTokenCount\":2,\"totalTokenCount\":9}},\"traceId\":\"t\"}\r\n\r\n";

          soup_server_message_set_status (msg, 200, NULL);
          soup_server_message_set_response (msg, "text/event-stream", SOUP_MEMORY_STATIC, stream,
                                            strlen (stream));
        }
      return;
    }

  reply (msg, 404, "{\"error\":{\"code\":404,\"message\":\"no such method\",\"status\":\"NOT_FOUND\"}}");
}

static void
handle (SoupServer        *server,
        SoupServerMessage *msg,
        const char        *path,
        GHashTable        *query,
        gpointer           user_data)
{
  KpMockGoogle *self = user_data;

  if (g_str_equal (path, "/token"))
    handle_token (self, msg);
  else if (g_str_has_prefix (path, "/v1internal"))
    handle_code_assist (self, msg, path);
  else
    reply (msg, 404, "{}");
}

KpMockGoogle *
kp_mock_google_new (GError **error)
{
  KpMockGoogle *self = g_new0 (KpMockGoogle, 1);
  g_autoptr(GSList) uris = NULL;

  self->dead = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->rejected = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->expires_in = 3599;
  self->held = g_ptr_array_new_with_free_func (g_object_unref);
  self->held_refusals = g_ptr_array_new_with_free_func (g_object_unref);
  self->server = soup_server_new (NULL, NULL);
  soup_server_add_handler (self->server, NULL, handle, self, NULL);
  if (!soup_server_listen_local (self->server, 0, SOUP_SERVER_LISTEN_IPV4_ONLY, error))
    {
      kp_mock_google_free (self);
      return NULL;
    }
  uris = soup_server_get_uris (self->server);
  self->url = g_strdup_printf ("http://127.0.0.1:%d", g_uri_get_port (uris->data));
  g_slist_free_full (g_steal_pointer (&uris), (GDestroyNotify)g_uri_unref);
  return self;
}

void
kp_mock_google_free (KpMockGoogle *self)
{
  if (self == NULL)
    return;
  kp_mock_google_hold_refreshes (self, FALSE);
  release (self->held_refusals);
  soup_server_disconnect (self->server);
  g_clear_object (&self->server);
  g_ptr_array_unref (self->held);
  g_ptr_array_unref (self->held_refusals);
  g_free (self->url);
  g_hash_table_unref (self->dead);
  g_hash_table_unref (self->rejected);
  g_free (self->code);
  g_free (self->challenge);
  g_free (self->redirect_uri);
  g_free (self->error_body);
  g_free (self->quota);
  g_free (self->stats.last_onboard);
  g_free (self->stats.last_generate);
  g_free (self->stats.last_auth);
  g_free (self->stats.last_token_form);
  g_free (self);
}

const char *
kp_mock_google_get_url (KpMockGoogle *self)
{
  return self->url;
}

KpMockGoogleStats *
kp_mock_google_get_stats (KpMockGoogle *self)
{
  return &self->stats;
}

void
kp_mock_google_kill_refresh_token (KpMockGoogle *self,
                                   const char   *refresh_token)
{
  g_hash_table_add (self->dead, g_strdup (refresh_token));
}

void
kp_mock_google_set_expires_in (KpMockGoogle *self,
                               gint64        expires_in)
{
  self->expires_in = expires_in;
}

void
kp_mock_google_expect_code (KpMockGoogle *self,
                            const char   *code,
                            const char   *challenge,
                            const char   *redirect_uri)
{
  g_free (self->code);
  self->code = g_strdup (code);
  g_free (self->challenge);
  self->challenge = g_strdup (challenge);
  g_free (self->redirect_uri);
  self->redirect_uri = g_strdup (redirect_uri);
}

void
kp_mock_google_set_tier (KpMockGoogle *self,
                         KpMockTier    tier,
                         guint         polls_needed)
{
  self->tier = tier;
  self->polls_needed = polls_needed;
}

void
kp_mock_google_set_error (KpMockGoogle *self,
                          guint         status,
                          const char   *body)
{
  self->error_status = body ? status : 0;
  g_free (self->error_body);
  self->error_body = g_strdup (body);
}

void
kp_mock_google_reject_access_token (KpMockGoogle *self,
                                    const char   *access_token)
{
  g_hash_table_add (self->rejected, g_strdup (access_token));
}

void
kp_mock_google_set_quota (KpMockGoogle *self,
                          const char   *buckets_json)
{
  g_free (self->quota);
  self->quota = g_strdup (buckets_json);
}

/* While @hold, the token endpoint's refresh answers wait; when it ends, the
 * held ones go out.
 */
void
kp_mock_google_hold_refreshes (KpMockGoogle *self,
                               gboolean      hold)
{
  self->hold = hold;
  if (!hold)
    release (self->held);
}

/* The next 401s wait until @n of them are there, then go out together. */
void
kp_mock_google_hold_refusals (KpMockGoogle *self,
                              guint         n)
{
  self->refusals_held = n;
}

guint
kp_mock_google_get_held (KpMockGoogle *self)
{
  return self->held->len;
}
