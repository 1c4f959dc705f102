/* test-qwen.c: Qwen Code's device sign-in and refresh, against a mock server
 *
 * A loopback SoupServer plays chat.qwen.ai's device-code and token
 * endpoints. It checks the PKCE verifier against the challenge it was
 * given, and answers the polls from a script chosen by the client id:
 * pending then approved, slow_down several times, expired, refused. The
 * refresh grant answers with no new refresh token: the old one is kept.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include "config.h"

#include <string.h>

#include <json-glib/json-glib.h>

#include "auth/kp-device-flow.h"
#include "auth/kp-oauth-client.h"
#include "auth/kp-oauth-token.h"
#include "kp-gateway-private.h"
#include "kp-key-health.h"
#include "kp-test-util.h"
#include "wire/kp-wire.h"

#define SCOPE "openid profile email model.completion"

typedef struct
{
  SoupServer *server;
  char       *base;
  char       *challenge;    /* the last device request's */
  char       *client_id;
  guint       polls;
  guint       refreshes;
  char       *last_refresh_form;
  gint64      last_poll_us;
  GArray     *gaps_us;      /* between polls */
  guint       chats;
  char       *last_chat_auth;
  gboolean    refresh_no_resource;  /* a refresh names no resource_url */
  guint       refused_chats;        /* chats refused with 401 */
  char       *refuse_token;         /* the access token chats refuse (401) */
} Mock;

static const char * const script_ok[] = { "authorization_pending", "slow_down",
                                          "authorization_pending", NULL };
static const char * const script_slow[] = { "slow_down", "slow_down", "slow_down", NULL };
static const char * const script_expired[] = { "authorization_pending", "expired_token", NULL };
static const char * const script_denied[] = { "access_denied", NULL };

static void
reply (SoupServerMessage *msg,
       guint              status,
       const char        *json)
{
  soup_server_message_set_status (msg, status, NULL);
  soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_COPY, json,
                                    strlen (json));
}

static void
handle_token (Mock              *mock,
              SoupServerMessage *msg,
              GHashTable        *form)
{
  const char *grant_type = g_hash_table_lookup (form, "grant_type");

  if (g_strcmp0 (grant_type, "refresh_token") == 0)
    {
      mock->refreshes++;
      g_free (mock->last_refresh_form);
      mock->last_refresh_form = g_strdup_printf ("%s %s",
                                                 (char *)g_hash_table_lookup (form, "client_id"),
                                                 (char *)g_hash_table_lookup (form, "refresh_token"));
      if (g_strcmp0 (g_hash_table_lookup (form, "refresh_token"), "qwen-refresh-1") != 0)
        {
          reply (msg, 400, "{\"error\":\"invalid_grant\",\"error_description\":\"dead\"}");
          return;
        }
      /* No refresh_token: the old one stays good. */
      reply (msg, 200, mock->refresh_no_resource
                         ? "{\"access_token\":\"qwen-access-2\",\"token_type\":\"Bearer\","
                           "\"expires_in\":3600}"
                         : "{\"access_token\":\"qwen-access-2\",\"token_type\":\"Bearer\","
                           "\"expires_in\":3600,\"resource_url\":\"portal.qwen.ai\"}");
      return;
    }

  if (g_strcmp0 (grant_type, "urn:ietf:params:oauth:grant-type:device_code") != 0)
    {
      reply (msg, 400, "{\"error\":\"unsupported_grant_type\"}");
      return;
    }

  {
    const char *verifier = g_hash_table_lookup (form, "code_verifier");
    g_autofree char *challenge = kp_device_flow_pkce_challenge (verifier != NULL ? verifier : "");
    const char *id = g_str_has_prefix (mock->client_id, "gw-") ? mock->client_id + 3
                                                               : mock->client_id;
    const char * const *script = g_str_equal (id, "slow") ? script_slow
                               : g_str_equal (id, "expired") ? script_expired
                               : g_str_equal (mock->client_id, "denied") ? script_denied
                               : script_ok;
    gint64 now = g_get_monotonic_time ();

    if (mock->last_poll_us != 0)
      {
        gint64 gap = now - mock->last_poll_us;

        g_array_append_val (mock->gaps_us, gap);
      }
    mock->last_poll_us = now;

    /* PKCE: the verifier must be the one the challenge was made from. */
    if (g_strcmp0 (challenge, mock->challenge) != 0 ||
        g_strcmp0 (g_hash_table_lookup (form, "device_code"), "qwen-device-code") != 0)
      {
        reply (msg, 400, "{\"error\":\"invalid_grant\"}");
        return;
      }
    if (mock->polls < g_strv_length ((GStrv)script))
      {
        const char *error = script[mock->polls++];
        g_autofree char *json = g_strdup_printf ("{\"error\":\"%s\"}", error);

        reply (msg, g_str_equal (error, "slow_down") ? 429 : 400, json);
        return;
      }
    mock->polls++;
    reply (msg, 200, "{\"access_token\":\"qwen-access-1\",\"refresh_token\":\"qwen-refresh-1\","
                     "\"token_type\":\"Bearer\",\"expires_in\":3600,\"scope\":\"" SCOPE "\","
                     "\"resource_url\":\"portal.qwen.ai\"}");
  }
}

static void
handler (SoupServer        *server,
         SoupServerMessage *msg,
         const char        *path,
         GHashTable        *query,
         gpointer           user_data)
{
  Mock *mock = user_data;
  SoupMessageBody *body = soup_server_message_get_request_body (msg);
  g_autofree char *text = g_strndup (body->data, body->length);
  g_autoptr(GHashTable) form = soup_form_decode (text);

  if (g_str_equal (path, "/api/v1/oauth2/device/code"))
    {
      g_free (mock->challenge);
      mock->challenge = g_strdup (g_hash_table_lookup (form, "code_challenge"));
      g_free (mock->client_id);
      mock->client_id = g_strdup (g_hash_table_lookup (form, "client_id"));
      mock->polls = 0;
      if (g_strcmp0 (g_hash_table_lookup (form, "code_challenge_method"), "S256") != 0 ||
          g_strcmp0 (g_hash_table_lookup (form, "scope"), SCOPE) != 0 || mock->challenge == NULL)
        {
          reply (msg, 400, "{\"error\":\"invalid_request\"}");
          return;
        }
      /* The gateway's and the command's sign-ins (client ids "gw-…") poll each second. */
      reply (msg, 200, g_str_has_prefix (mock->client_id, "gw-")
        ? "{\"device_code\":\"qwen-device-code\",\"user_code\":\"ABCD-1234\","
          "\"verification_uri\":\"https://chat.qwen.ai/authorize\","
          "\"verification_uri_complete\":\"https://chat.qwen.ai/authorize?user_code=ABCD-1234\","
          "\"expires_in\":600,\"interval\":1}"
        : "{\"device_code\":\"qwen-device-code\",\"user_code\":\"ABCD-1234\","
          "\"verification_uri\":\"https://chat.qwen.ai/authorize\","
          "\"verification_uri_complete\":\"https://chat.qwen.ai/authorize?user_code=ABCD-1234\","
          "\"expires_in\":600}");
    }
  else if (g_str_equal (path, "/api/v1/oauth2/token"))
    handle_token (mock, msg, form);
  else if (g_str_equal (path, "/v1/chat/completions"))
    {
      SoupMessageHeaders *headers = soup_server_message_get_request_headers (msg);

      mock->chats++;
      g_free (mock->last_chat_auth);
      mock->last_chat_auth = g_strdup (soup_message_headers_get_one (headers, "Authorization"));
      if (mock->refuse_token != NULL && mock->last_chat_auth != NULL &&
          g_str_has_suffix (mock->last_chat_auth, mock->refuse_token))
        {
          mock->refused_chats++;
          reply (msg, 401, "{\"error\":{\"code\":\"invalid_api_key\",\"type\":\"invalid_request_error\","
                           "\"message\":\"Invalid access token.\"}}");
          return;
        }
      /* The model says which of §5's errors: the daily quota, or a rate limit;
       * or an answer.
       */
      if (strstr (text, "\"ok-model\"") != NULL)
        reply (msg, 200, "{\"id\":\"c-1\",\"object\":\"chat.completion\",\"model\":\"ok-model\","
                         "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
                         "\"content\":\"Hello from Qwen\"},\"finish_reason\":\"stop\"}],"
                         "\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":3,\"total_tokens\":6}}");
      else if (strstr (text, "\"quota-model\"") != NULL)
        reply (msg, 403, "{\"error\":{\"code\":\"insufficient_quota\",\"type\":\"insufficient_quota\","
                         "\"message\":\"Free allocated quota exceeded.\"}}");
      else
        reply (msg, 429, "{\"error\":{\"code\":\"rate_limit_exceeded\","
                         "\"message\":\"Too many requests\"}}");
    }
  else
    reply (msg, 404, "{\"error\":\"not_found\"}");
}

static void
mock_init (Mock *mock)
{
  g_autoptr(GError) error = NULL;
  GSList *uris;

  memset (mock, 0, sizeof *mock);
  mock->gaps_us = g_array_new (FALSE, FALSE, sizeof (gint64));
  mock->server = soup_server_new (NULL, NULL);
  soup_server_add_handler (mock->server, NULL, handler, mock, NULL);
  soup_server_listen_local (mock->server, 0, SOUP_SERVER_LISTEN_IPV4_ONLY, &error);
  g_assert_no_error (error);
  uris = soup_server_get_uris (mock->server);
  mock->base = g_strdup_printf ("http://127.0.0.1:%u", g_uri_get_port (uris->data));
  g_slist_free_full (uris, (GDestroyNotify)g_uri_unref);
}

static void
mock_clear (Mock *mock)
{
  soup_server_disconnect (mock->server);
  g_clear_object (&mock->server);
  g_free (mock->base);
  g_free (mock->challenge);
  g_free (mock->client_id);
  g_free (mock->last_refresh_form);
  g_free (mock->last_chat_auth);
  g_free (mock->refuse_token);
  g_array_unref (mock->gaps_us);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Mock, mock_clear)

static KpDeviceFlow *
flow_new (Mock        *mock,
          SoupSession *session,
          const char  *client_id)
{
  g_autofree char *device = g_strconcat (mock->base, "/api/v1/oauth2/device/code", NULL);
  g_autofree char *token = g_strconcat (mock->base, "/api/v1/oauth2/token", NULL);
  KpDeviceFlow *flow = kp_device_flow_new (session, device, token, client_id, SCOPE);

  /* 5 s of polling interval is 5 ms here. */
  kp_device_flow_set_time_scale (flow, 0.001);
  return flow;
}

/* Starts the sign-in and polls it to its end. */
static KpDeviceGrant *
sign_in (KpDeviceFlow  *flow,
         GCancellable  *cancellable,
         GError       **error)
{
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GAsyncResult) polled = NULL;
  g_autoptr(KpDeviceCode) code = NULL;

  kp_device_flow_start_async (flow, NULL, kp_test_store_result, &result);
  g_assert_true (kp_test_spin_until (kp_test_result_ready, &result, 10000));
  code = kp_device_flow_start_finish (flow, result, error);
  if (code == NULL)
    return NULL;
  g_assert_cmpstr (code->user_code, ==, "ABCD-1234");
  g_assert_cmpstr (code->verification_uri_complete, ==,
                   "https://chat.qwen.ai/authorize?user_code=ABCD-1234");
  g_assert_cmpint (code->expires_in, ==, 600);

  kp_device_flow_poll_async (flow, cancellable, kp_test_store_result, &polled);
  g_assert_true (kp_test_spin_until (kp_test_result_ready, &polled, 20000));
  return kp_device_flow_poll_finish (flow, polled, error);
}

static void
test_device_success (void)
{
  g_auto(Mock) mock;
  g_autoptr(SoupSession) session = soup_session_new ();
  g_autoptr(KpDeviceFlow) flow = NULL;
  g_autoptr(KpDeviceGrant) grant = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *base = NULL;

  mock_init (&mock);
  flow = flow_new (&mock, session, "ok");
  grant = sign_in (flow, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (grant->access_token, ==, "qwen-access-1");
  g_assert_cmpstr (grant->refresh_token, ==, "qwen-refresh-1");
  g_assert_cmpint (grant->expires_in, ==, 3600);
  g_assert_cmpstr (grant->resource_url, ==, "portal.qwen.ai");
  /* Pending, slow down, pending, then the grant. */
  g_assert_cmpuint (kp_device_flow_get_polls (flow), ==, 4);
  g_assert_cmpuint (kp_device_flow_get_interval_ms (flow), ==, 7500);

  base = kp_oauth_api_base_from_resource (grant->resource_url, "https://fallback/v1");
  g_assert_cmpstr (base, ==, "https://portal.qwen.ai/v1");
}

/* Each slow_down makes polling half as slow again, up to 10 s. */
static void
test_device_slow_down (void)
{
  g_auto(Mock) mock;
  g_autoptr(SoupSession) session = soup_session_new ();
  g_autoptr(KpDeviceFlow) flow = NULL;
  g_autoptr(KpDeviceGrant) grant = NULL;
  g_autoptr(GError) error = NULL;

  mock_init (&mock);
  flow = flow_new (&mock, session, "slow");
  grant = sign_in (flow, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (grant);
  g_assert_cmpuint (kp_device_flow_get_polls (flow), ==, 4);
  /* 5 → 7.5 → 10 (capped from 11.25) → 10 s. */
  g_assert_cmpuint (kp_device_flow_get_interval_ms (flow), ==, KP_DEVICE_FLOW_MAX_INTERVAL_MS);
  g_assert_cmpuint (mock.gaps_us->len, ==, 3);
  /* The waits grew with the interval (scaled to ms), never shrank. */
  g_assert_cmpint (g_array_index (mock.gaps_us, gint64, 2), >=, 7000);
}

static void
test_device_expired_and_denied (void)
{
  g_auto(Mock) mock;
  g_autoptr(SoupSession) session = soup_session_new ();

  mock_init (&mock);
  {
    g_autoptr(KpDeviceFlow) flow = flow_new (&mock, session, "expired");
    g_autoptr(GError) error = NULL;
    g_autoptr(KpDeviceGrant) grant = sign_in (flow, NULL, &error);

    g_assert_null (grant);
    g_assert_error (error, KP_OAUTH_ERROR, KP_OAUTH_ERROR_REFUSED);
    g_assert_nonnull (strstr (error->message, "expired"));
  }
  {
    g_autoptr(KpDeviceFlow) flow = flow_new (&mock, session, "denied");
    g_autoptr(GError) error = NULL;
    g_autoptr(KpDeviceGrant) grant = sign_in (flow, NULL, &error);

    g_assert_null (grant);
    g_assert_error (error, KP_OAUTH_ERROR, KP_OAUTH_ERROR_REFUSED);
    g_assert_nonnull (strstr (error->message, "refused"));
  }
}

static gboolean
cancel_now (gpointer data)
{
  g_cancellable_cancel (data);
  return G_SOURCE_REMOVE;
}

/* The user gives up: the poll ends at once, as cancelled. */
static void
test_device_cancel (void)
{
  g_auto(Mock) mock;
  g_autoptr(SoupSession) session = soup_session_new ();
  g_autoptr(KpDeviceFlow) flow = NULL;
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(KpDeviceGrant) grant = NULL;

  mock_init (&mock);
  flow = flow_new (&mock, session, "ok");
  kp_device_flow_set_time_scale (flow, 0.01);
  g_timeout_add (20, cancel_now, cancellable);
  grant = sign_in (flow, cancellable, &error);
  g_assert_null (grant);
  g_assert_error (error, KP_OAUTH_ERROR, KP_OAUTH_ERROR_CANCELLED);
}

/* A wrong verifier is refused by the server: PKCE is checked for real. */
static void
test_pkce (void)
{
  g_autofree char *challenge = kp_device_flow_pkce_challenge (
    "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");

  /* RFC 7636, appendix B. */
  g_assert_cmpstr (challenge, ==, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
}

static void
test_resource_url (void)
{
  static const struct { const char *resource; const char *base; } cases[] = {
    { "portal.qwen.ai", "https://portal.qwen.ai/v1" },
    { "https://portal.qwen.ai", "https://portal.qwen.ai/v1" },
    { "https://portal.qwen.ai/v1", "https://portal.qwen.ai/v1" },
    { "dashscope.aliyuncs.com/", "https://dashscope.aliyuncs.com/v1" },
    { NULL, "https://portal.qwen.ai/v1" },
    { "", "https://portal.qwen.ai/v1" },
    { "http://insecure.example", "https://portal.qwen.ai/v1" },
    { "https://user@evil.example", "https://portal.qwen.ai/v1" },
    { "https://x.example/other/path", "https://portal.qwen.ai/v1" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *base = kp_oauth_api_base_from_resource (cases[i].resource,
                                                               "https://portal.qwen.ai/v1");

      g_assert_cmpstr (base, ==, cases[i].base);
    }
}

/* Refresh through the common OAuth token: the answer has no new refresh
 * token, and the old one is kept.
 */
static void
test_refresh_keeps_refresh_token (void)
{
  g_auto(Mock) mock;
  g_autoptr(SoupSession) session = soup_session_new ();
  g_autoptr(JsonNode) node = NULL;
  g_autoptr(KpOAuthClient) client = NULL;
  g_autoptr(KpAuth) auth = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *json = NULL;

  mock_init (&mock);
  json = g_strdup_printf ("{\"token_url\":\"%s/api/v1/oauth2/token\","
                          "\"client_id\":\"f0304373b74a44d2b584a3fb70ca9e56\","
                          "\"scopes\":[\"openid\",\"profile\",\"email\",\"model.completion\"]}",
                          mock.base);
  node = json_from_string (json, &error);
  g_assert_no_error (error);
  client = kp_oauth_client_new_from_json (json_node_get_object (node), "test", &error);
  g_assert_no_error (error);
  auth = kp_oauth_token_new (client, session);
  kp_auth_set_secret (auth, "qwen-refresh-1");

  kp_auth_token_refresh_async (KP_AUTH_TOKEN (auth), NULL, kp_test_store_result, &result);
  g_assert_true (kp_test_spin_until (kp_test_result_ready, &result, 10000));
  g_assert_true (kp_auth_token_refresh_finish (KP_AUTH_TOKEN (auth), result, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (kp_auth_get_token (auth), ==, "qwen-access-2");
  g_assert_cmpstr (kp_auth_get_secret (auth), ==, "qwen-refresh-1");
  g_assert_cmpstr (mock.last_refresh_form, ==, "f0304373b74a44d2b584a3fb70ca9e56 qwen-refresh-1");
  g_clear_object (&result);

  /* A dead refresh token: refused, sign in again. */
  kp_auth_set_secret (auth, "qwen-refresh-dead");
  kp_auth_token_refresh_async (KP_AUTH_TOKEN (auth), NULL, kp_test_store_result, &result);
  g_assert_true (kp_test_spin_until (kp_test_result_ready, &result, 10000));
  g_assert_false (kp_auth_token_refresh_finish (KP_AUTH_TOKEN (auth), result, &error));
  g_assert_error (error, KP_OAUTH_ERROR, KP_OAUTH_ERROR_REFUSED);
  g_assert_cmpint (kp_auth_token_get_state (KP_AUTH_TOKEN (auth)), ==, KP_OAUTH_STATE_REFUSED);
  kp_auth_token_stop (KP_AUTH_TOKEN (auth));
}

/* Accounts: the gateway's sign-in, import and quota, and the commands --- */

/* Where the account's API is: the provider's base URL swapped for it. */
static void
test_rebase (void)
{
  g_autofree char *moved = kp_wire_rebase_url ("https://portal.qwen.ai/v1/chat/completions",
                                               "https://portal.qwen.ai/v1",
                                               "https://dashscope.example/v1");
  g_autoptr(KpOAuthClient) client = g_new0 (KpOAuthClient, 1);
  g_autoptr(SoupSession) session = soup_session_new ();
  g_autoptr(KpAuth) auth = NULL;
  JsonObject *account;

  g_assert_cmpstr (moved, ==, "https://dashscope.example/v1/chat/completions");
  /* Only https; only under the provider's base. */
  g_assert_null (kp_wire_rebase_url ("https://portal.qwen.ai/v1/chat/completions",
                                     "https://portal.qwen.ai/v1", "http://evil.example/v1"));
  g_assert_null (kp_wire_rebase_url ("https://other.example/v1/chat/completions",
                                     "https://portal.qwen.ai/v1", "https://dashscope.example/v1"));
  g_assert_null (kp_wire_rebase_url ("https://portal.qwen.ai/v10/x", "https://portal.qwen.ai/v1",
                                     "https://dashscope.example/v1"));

  client->token_url = g_strdup ("https://chat.qwen.ai/api/v1/oauth2/token");
  client->client_id = g_strdup ("x");
  auth = kp_oauth_token_new (client, session);
  g_assert_null (kp_auth_get_account (auth));
  kp_oauth_token_set_resource_url (KP_OAUTH_TOKEN (auth), "http://plain.example");
  g_assert_null (kp_auth_get_account (auth));
  kp_oauth_token_set_resource_url (KP_OAUTH_TOKEN (auth), "portal.qwen.ai");
  account = kp_auth_get_account (auth);
  g_assert_nonnull (account);
  g_assert_cmpstr (json_object_get_string_member (account, "baseUrl"), ==,
                   "https://portal.qwen.ai/v1");
  g_assert_cmpstr (kp_oauth_token_get_resource_url (KP_OAUTH_TOKEN (auth)), ==, "portal.qwen.ai");

  /* Past 512 bytes, or not https: ignored, the last good one stays. */
  {
    g_autofree char *label = g_strnfill (KP_OAUTH_RESOURCE_URL_MAX, 'a');
    g_autofree char *long_host = g_strconcat (label, ".example", NULL);

    kp_oauth_token_set_resource_url (KP_OAUTH_TOKEN (auth), long_host);
    kp_oauth_token_set_resource_url (KP_OAUTH_TOKEN (auth), "http://plain.example");
    g_assert_cmpstr (kp_oauth_token_get_resource_url (KP_OAUTH_TOKEN (auth)), ==,
                     "portal.qwen.ai");
    g_assert_cmpstr (json_object_get_string_member (account, "baseUrl"), ==,
                     "https://portal.qwen.ai/v1");
  }
}

typedef struct
{
  Mock         mock;
  KpTestPlace  place;
  char        *home;
  KpGateway   *gateway;
  char        *code;      /* what "login-code" said */
  char        *page;
  gint64       now;       /* the key health's clock */
} Place;

static gint64
place_clock (gpointer data)
{
  return ((Place *)data)->now;
}

/* The provider file, with the mock's endpoints and @client_id choosing its script. */
static void
write_provider (Place      *place,
                const char *client_id)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *json = g_strdup_printf (
    "{\"schema\":1,\"id\":\"qwen-code\",\"name\":\"Qwen Code\",\"dialect\":\"openai\","
    "\"base_url\":\"%s/v1\",\"auth\":\"bearer\",\"requires_key\":true,\"key_check\":\"chat\","
    "\"subscription\":true,\"prices_checked\":\"2026-12-02\","
    "\"oauth\":{\"flow\":\"device\",\"device_code_url\":\"%s/api/v1/oauth2/device/code\","
    "\"token_url\":\"%s/api/v1/oauth2/token\",\"client_id\":\"%s\","
    "\"scopes\":[\"openid\",\"profile\",\"email\",\"model.completion\"],"
    "\"import_file\":\"~/.qwen/oauth_creds.json\",\"daily_quota_utc_offset_min\":480},"
    "\"models\":[{\"id\":\"qwen/quota\",\"upstream_id\":\"quota-model\",\"input\":0,\"output\":0},"
    "{\"id\":\"qwen/busy\",\"upstream_id\":\"busy-model\",\"input\":0,\"output\":0},"
    "{\"id\":\"qwen/ok\",\"upstream_id\":\"ok-model\",\"input\":0,\"output\":0}]}",
    place->mock.base, place->mock.base, place->mock.base, client_id);
  g_autofree char *path = g_build_filename (place->place.providers, "qwen-code.json", NULL);

  g_file_set_contents (path, json, -1, &error);
  g_assert_no_error (error);
}

/* Qwen Code's own credentials file, as qwen-code writes it, with @refresh
 * and @resource_url (NULL: none).
 */
static char *
write_creds_full (Place      *place,
                  const char *refresh,
                  const char *resource_url)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_build_filename (place->home, ".qwen", NULL);
  g_autofree char *path = g_build_filename (dir, "oauth_creds.json", NULL);
  g_autofree char *resource = resource_url
                                ? g_strdup_printf (",\"resource_url\":\"%s\"", resource_url)
                                : g_strdup ("");
  g_autofree char *json = g_strdup_printf (
    "{\"access_token\":\"qwen-file-access\",\"refresh_token\":\"%s\","
    "\"token_type\":\"Bearer\",\"expiry_date\":%" G_GINT64_FORMAT "%s}",
    refresh, (g_get_real_time () / G_USEC_PER_SEC + 3600) * 1000, resource);

  g_assert_cmpint (g_mkdir_with_parents (dir, 0700), ==, 0);
  g_file_set_contents (path, json, -1, &error);
  g_assert_no_error (error);
  return g_steal_pointer (&path);
}

static char *
write_creds (Place *place)
{
  return write_creds_full (place, "qwen-file-refresh", NULL);
}

static void
place_set_up (Place         *place,
              gconstpointer  data)
{
  mock_init (&place->mock);
  kp_test_place_init (&place->place, "qwen");
  place->home = g_build_filename (place->place.root, "home", NULL);
  g_assert_cmpint (g_mkdir_with_parents (place->home, 0700), ==, 0);
  write_provider (place, "gw-ok");
}

static void
start_gateway (Place *place)
{
  place->gateway = kp_test_gateway_new (place->place.providers, place->place.root, "kp-qwen-test");
  kp_gateway_set_use_keyring (place->gateway, TRUE);
  kp_test_gateway_start (place->gateway);
}

static void
place_tear_down (Place         *place,
                 gconstpointer  data)
{
  kp_test_gateway_clear (&place->gateway);
  kp_test_spin_ms (10);
  mock_clear (&place->mock);
  kp_test_place_clear (&place->place);
  g_free (place->home);
  g_free (place->code);
  g_free (place->page);
}

static void
on_login_code (KpGateway  *gateway,
               const char *provider_id,
               const char *user_code,
               const char *url,
               Place      *place)
{
  g_assert_cmpstr (provider_id, ==, "qwen-code");
  g_free (place->code);
  place->code = g_strdup (user_code);
  g_free (place->page);
  place->page = g_strdup (url);
}

static KpCredential *
gateway_login (Place   *place,
               guint    timeout_s,
               GCancellable *cancellable,
               GError **error)
{
  g_autoptr(GAsyncResult) result = NULL;
  g_autofree char *url = g_strdup ("not cleared");

  g_signal_connect (place->gateway, "login-code", G_CALLBACK (on_login_code), place);
  g_assert_true (kp_gateway_login_async (place->gateway, "qwen", "me", FALSE, timeout_s, &url,
                                         cancellable, kp_test_store_result, &result, error));
  /* The page comes with the code, later. */
  g_assert_null (url);
  g_assert_true (kp_test_spin_until (kp_test_result_ready, &result, 30000));
  g_signal_handlers_disconnect_by_func (place->gateway, on_login_code, place);
  return kp_gateway_login_finish (place->gateway, result, error);
}

/* `login qwen` through the gateway: the code and its page told, pending and
 * slow_down waited out, the account kept with its API's address.
 */
static void
test_gateway_login (Place         *place,
                    gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(KpCredential) credential = NULL;
  KpAuth *auth;

  start_gateway (place);
  credential = gateway_login (place, 0, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (place->code, ==, "ABCD-1234");
  g_assert_cmpstr (place->page, ==, "https://chat.qwen.ai/authorize?user_code=ABCD-1234");
  g_assert_cmpuint (place->mock.polls, ==, 4);
  g_assert_cmpstr (kp_credential_get_provider_id (credential), ==, "qwen-code");
  auth = kp_credential_get_auth (credential);
  g_assert_true (KP_IS_OAUTH_TOKEN (auth));
  g_assert_cmpstr (kp_auth_token_peek (KP_AUTH_TOKEN (auth)), ==, "qwen-access-1");
  g_assert_cmpstr (kp_credential_get_secret (credential), ==, "qwen-refresh-1");
  g_assert_cmpstr (json_object_get_string_member (kp_credential_get_account (credential),
                                                  "baseUrl"), ==, "https://portal.qwen.ai/v1");
}

static gboolean
cancel_when_coded (gpointer data)
{
  return ((Place *)data)->code != NULL;
}

/* The caller's cancellable ends the sign-in; nothing is kept. */
static void
test_gateway_cancel (Place         *place,
                     gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(KpCredential) credential = NULL;
  g_autofree char *url = NULL;

  write_provider (place, "gw-slow");
  start_gateway (place);
  g_signal_connect (place->gateway, "login-code", G_CALLBACK (on_login_code), place);
  g_assert_true (kp_gateway_login_async (place->gateway, "qwen-code", NULL, FALSE, 0, &url,
                                         cancellable, kp_test_store_result, &result, &error));
  g_assert_true (kp_test_spin_until (cancel_when_coded, place, 10000));
  g_cancellable_cancel (cancellable);
  g_assert_true (kp_test_spin_until (kp_test_result_ready, &result, 10000));
  g_signal_handlers_disconnect_by_func (place->gateway, on_login_code, place);
  credential = kp_gateway_login_finish (place->gateway, result, &error);
  g_assert_null (credential);
  g_assert_error (error, KP_OAUTH_ERROR, KP_OAUTH_ERROR_CANCELLED);
  g_assert_cmpstr (error->message, ==, "The sign-in was cancelled.");
  g_assert_cmpuint (kp_gateway_get_credentials (place->gateway)->len, ==, 0);
}

/* Nobody approves: the timeout ends it. */
static void
test_gateway_timeout (Place         *place,
                      gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(KpCredential) credential = NULL;

  write_provider (place, "gw-slow");
  start_gateway (place);
  credential = gateway_login (place, 1, NULL, &error);
  g_assert_null (credential);
  g_assert_error (error, KP_OAUTH_ERROR, KP_OAUTH_ERROR_CANCELLED);
  g_assert_nonnull (strstr (error->message, "timed out after 1 s"));
}

/* Imports the credentials file written in @place's home. */
static KpCredential *
import_creds (Place *place)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  g_autofree char *home = g_strdup (g_getenv ("HOME"));
  KpCredential *credential;

  g_setenv ("HOME", place->home, TRUE);
  kp_gateway_import_login_async (place->gateway, "qwen", NULL, NULL, kp_test_store_result,
                                 &result);
  g_assert_true (kp_test_spin_until (kp_test_result_ready, &result, 10000));
  credential = kp_gateway_import_login_finish (place->gateway, result, &error);
  if (home != NULL)
    g_setenv ("HOME", home, TRUE);
  else
    g_unsetenv ("HOME");
  g_assert_no_error (error);
  return credential;
}

static void
chat_model (Place          *place,
            const char     *model,
            KpTestResponse *response)
{
  g_autoptr(SoupSession) client = soup_session_new ();
  g_autofree char *url = g_strdup_printf ("http://127.0.0.1:%u/v1/chat/completions",
                                          kp_gateway_get_port (place->gateway));
  g_autofree char *body = g_strdup_printf ("{\"model\":\"%s\",\"messages\":"
                                           "[{\"role\":\"user\",\"content\":\"hi\"}]}", model);
  g_autoptr(SoupMessage) msg = soup_message_new ("POST", url);
  g_autoptr(GBytes) bytes = g_bytes_new (body, strlen (body));

  soup_message_headers_replace (soup_message_get_request_headers (msg), "Authorization",
                                "Bearer kp-qwen-test");
  soup_message_set_request_body_from_bytes (msg, "application/json", bytes);
  kp_test_send (client, msg, 15000, response);
}

/* An imported account: its quota error rests it until 00:00 in Beijing (UTC+8),
 * a plain 429 only cools it down.
 */
static void
test_gateway_quota (Place         *place,
                    gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(KpCredential) credential = NULL;
  g_autoptr(GDateTime) clock = g_date_time_new_utc (2027, 3, 10, 15, 59, 0);
  g_autoptr(GDateTime) midnight = g_date_time_new_utc (2027, 3, 10, 16, 0, 0);

  g_free (write_creds (place));
  start_gateway (place);
  credential = import_creds (place);
  /* No resource_url in the file: the provider's own base URL. */
  g_assert_null (kp_credential_get_account (credential));

  place->now = g_date_time_to_unix (clock);
  kp_key_health_set_clock (kp_gateway_get_key_health (place->gateway), place_clock, place);
  for (guint i = 0; i < 2; i++)
    {
      g_auto(KpTestResponse) response = { 0 };

      chat_model (place, i == 0 ? "qwen/quota" : "qwen/busy", &response);
      g_assert_cmpuint (response.status, !=, 200);
      g_assert_cmpstr (place->mock.last_chat_auth, ==, "Bearer qwen-file-access");
      if (i == 0)
        {
          g_assert_cmpint (kp_credential_get_state (credential, place->now), ==,
                           KP_CREDENTIAL_EXHAUSTED);
          /* 23:59 in Beijing: back at its midnight, a minute away, not in an hour. */
          g_assert_cmpint (kp_credential_get_state_until (credential), ==,
                           g_date_time_to_unix (midnight));
          g_assert_true (kp_gateway_reset_key (place->gateway, kp_credential_get_id (credential),
                                               &error));
        }
      else
        g_assert_cmpint (kp_credential_get_state (credential, place->now), ==,
                         KP_CREDENTIAL_COOLING);
    }
  g_assert_cmpuint (place->mock.chats, ==, 2);
}

static gboolean
has_token (gpointer data)
{
  KpOAuthToken *token = data;

  kp_auth_get_token (KP_AUTH (token));
  return kp_auth_token_peek (KP_AUTH_TOKEN (token)) != NULL;
}

/* The account's resource_url outlives a restart: the first request after
 * it goes to that host, before any refresh names it again. ("localhost":
 * https on port 443 there is refused at once; the error names the host.)
 */
static void
test_gateway_resource_restart (Place         *place,
                               gconstpointer  data)
{
  g_autoptr(KpCredential) credential = NULL;
  KpCredential *again;
  KpAuth *auth;
  gint64 id;

  g_free (write_creds_full (place, "qwen-refresh-1", "localhost"));
  start_gateway (place);
  credential = import_creds (place);
  g_assert_cmpstr (json_object_get_string_member (kp_credential_get_account (credential),
                                                  "baseUrl"), ==, "https://localhost/v1");
  id = kp_credential_get_id (credential);

  kp_test_gateway_clear (&place->gateway);
  place->mock.refresh_no_resource = TRUE;
  start_gateway (place);
  again = kp_gateway_find_credential (place->gateway, id);
  g_assert_nonnull (again);
  auth = kp_credential_get_auth (again);
  g_assert_true (KP_IS_OAUTH_TOKEN (auth));
  /* Known at once, from the ledger. */
  g_assert_nonnull (kp_credential_get_account (again));
  g_assert_cmpstr (json_object_get_string_member (kp_credential_get_account (again), "baseUrl"),
                   ==, "https://localhost/v1");
  g_assert_true (kp_test_spin_until (has_token, auth, 10000));
  g_assert_cmpuint (place->mock.refreshes, ==, 1);

  {
    g_auto(KpTestResponse) response = { 0 };

    chat_model (place, "qwen/ok", &response);
    g_assert_cmpuint (response.status, !=, 200);
    g_assert_nonnull (strstr (response.body, "(localhost)"));
    g_assert_cmpuint (place->mock.chats, ==, 0);
  }
}

/* A refused access token: one refresh, the same request again with the new
 * token, one request row with both attempts.
 */
static void
test_gateway_renew (Place         *place,
                    gconstpointer  data)
{
  g_autoptr(KpCredential) credential = NULL;
  g_autofree char *db = g_build_filename (place->place.root, "data", "keypool.db", NULL);
  g_autofree char *attempts = NULL;
  g_autofree char *expected = NULL;
  g_auto(KpTestResponse) response = { 0 };
  guint rows = 0;

  g_free (write_creds_full (place, "qwen-refresh-1", NULL));
  start_gateway (place);
  credential = import_creds (place);
  place->mock.refresh_no_resource = TRUE;
  place->mock.refuse_token = g_strdup ("qwen-file-access");
  chat_model (place, "qwen/ok", &response);
  g_assert_cmpuint (response.status, ==, 200);
  g_assert_nonnull (strstr (response.body, "Hello from Qwen"));
  g_assert_cmpuint (place->mock.refused_chats, ==, 1);
  g_assert_cmpuint (place->mock.refreshes, ==, 1);
  g_assert_cmpuint (place->mock.chats, ==, 2);
  g_assert_cmpstr (place->mock.last_chat_auth, ==, "Bearer qwen-access-2");
  expected = g_strdup_printf ("401 auth_refreshed %1$" G_GINT64_FORMAT "\n200 - %1$" G_GINT64_FORMAT
                              "\n", kp_credential_get_id (credential));
  attempts = kp_test_last_attempts (db, &rows);
  g_assert_cmpstr (attempts, ==, expected);
  g_assert_cmpuint (rows, ==, 1);
  g_assert_cmpint (kp_credential_get_state (credential, 0), ==, KP_CREDENTIAL_OK);
}

/* The commands ---------------------------------------------------------- */

typedef struct
{
  char    *out;
  char    *err;
  GError  *error;
  gboolean done;
} Ran;

static void
on_ran (GObject      *object,
        GAsyncResult *result,
        gpointer      user_data)
{
  Ran *ran = user_data;

  g_subprocess_communicate_utf8_finish (G_SUBPROCESS (object), result, &ran->out, &ran->err,
                                        &ran->error);
  ran->done = TRUE;
}

static gboolean
ran_done (gpointer data)
{
  return ((Ran *)data)->done;
}

/* `keypool ARGS…` in its own process, while this loop serves the mock. */
static int
run_keypool (Place       *place,
             char       **out,
             char       **err,
             ...)
{
  g_autoptr(GSubprocessLauncher) launcher =
    g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                               G_SUBPROCESS_FLAGS_STDERR_PIPE);
  g_autoptr(GSubprocess) process = NULL;
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *config = g_build_filename (place->place.root, "cli-config", NULL);
  g_autofree char *data_dir = g_build_filename (place->place.root, "cli-data", NULL);
  Ran ran = { 0 };
  const char *arg;
  va_list args;

  g_ptr_array_add (argv, (gpointer)g_getenv ("KEYPOOL_TEST_BINARY"));
  va_start (args, err);
  while ((arg = va_arg (args, const char *)) != NULL)
    g_ptr_array_add (argv, (gpointer)arg);
  va_end (args);
  g_ptr_array_add (argv, NULL);

  g_subprocess_launcher_setenv (launcher, "KEYPOOL_PROVIDERS_DIR", place->place.providers, TRUE);
  g_subprocess_launcher_setenv (launcher, "KEYPOOL_CONFIG_DIR", config, TRUE);
  g_subprocess_launcher_setenv (launcher, "KEYPOOL_DATA_DIR", data_dir, TRUE);
  g_subprocess_launcher_setenv (launcher, "HOME", place->home, TRUE);
  g_subprocess_launcher_unsetenv (launcher, "KEYPOOL_TOKEN");
  g_subprocess_launcher_unsetenv (launcher, "KEYPOOL_PORT");
  process = g_subprocess_launcher_spawnv (launcher, (const char * const *)argv->pdata, &error);
  g_assert_no_error (error);
  g_subprocess_communicate_utf8_async (process, "", NULL, on_ran, &ran);
  g_assert_true (kp_test_spin_until (ran_done, &ran, 60000));
  g_assert_no_error (ran.error);
  /* No token ever reaches what keypool prints. */
  for (const char *const *secret = (const char *const[]) { "qwen-access-1", "qwen-refresh-1",
                                                           "qwen-file-access",
                                                           "qwen-file-refresh", NULL };
       *secret != NULL; secret++)
    {
      g_assert_null (strstr (ran.out, *secret));
      g_assert_null (strstr (ran.err, *secret));
    }
  *out = ran.out;
  *err = ran.err;
  return g_subprocess_get_exit_status (process);
}

/* `keypool login qwen --no-browser`: pending, slow_down, approved; then a code
 * that expires.
 */
static void
test_cli_login (Place         *place,
                gconstpointer  data)
{
  {
    g_autofree char *out = NULL;
    g_autofree char *err = NULL;

    g_assert_cmpint (run_keypool (place, &out, &err, "login", "qwen", "--no-browser", "--label",
                                  "work", NULL), ==, 0);
    g_assert_nonnull (strstr (out, "ABCD-1234"));
    g_assert_nonnull (strstr (out, "https://chat.qwen.ai/authorize?user_code=ABCD-1234"));
    g_assert_nonnull (strstr (out, "Added account 1 for qwen-code"));
    g_assert_cmpuint (place->mock.polls, ==, 4);
  }
  {
    g_autofree char *out = NULL;
    g_autofree char *err = NULL;

    g_assert_cmpint (run_keypool (place, &out, &err, "keys", "list", NULL), ==, 0);
    g_assert_nonnull (strstr (out, "qwen-code"));
    g_assert_nonnull (strstr (out, "work"));
  }
  write_provider (place, "gw-expired");
  {
    g_autofree char *out = NULL;
    g_autofree char *err = NULL;

    g_assert_cmpint (run_keypool (place, &out, &err, "login", "qwen", "--no-browser", NULL), ==,
                     1);
    g_assert_nonnull (strstr (out, "ABCD-1234"));
    g_assert_nonnull (strstr (err, "expired"));
  }
}

/* `keypool keys import qwen`: ~/.qwen/oauth_creds.json, read and left as it was. */
static void
test_cli_import (Place         *place,
                 gconstpointer  data)
{
  g_autofree char *creds = write_creds (place);
  g_autofree char *before = NULL;
  g_autofree char *after = NULL;
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;

  g_assert_true (g_file_get_contents (creds, &before, NULL, NULL));
  g_assert_cmpint (run_keypool (place, &out, &err, "keys", "import", "qwen", NULL), ==, 0);
  g_assert_nonnull (strstr (out, "Added account 1 for qwen-code"));
  g_assert_true (g_file_get_contents (creds, &after, NULL, NULL));
  g_assert_cmpstr (before, ==, after);
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (run_keypool (place, &out, &err, "keys", "import", "qwen", NULL), ==, 1);
  g_assert_nonnull (strstr (err, "already key 1"));
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/qwen/device/success", test_device_success);
  g_test_add_func ("/qwen/device/slow-down", test_device_slow_down);
  g_test_add_func ("/qwen/device/expired-and-denied", test_device_expired_and_denied);
  g_test_add_func ("/qwen/device/cancel", test_device_cancel);
  g_test_add_func ("/qwen/pkce", test_pkce);
  g_test_add_func ("/qwen/resource-url", test_resource_url);
  g_test_add_func ("/qwen/refresh", test_refresh_keeps_refresh_token);
  g_test_add_func ("/qwen/rebase", test_rebase);
  g_test_add ("/qwen/gateway/login", Place, NULL, place_set_up, test_gateway_login,
              place_tear_down);
  g_test_add ("/qwen/gateway/cancel", Place, NULL, place_set_up, test_gateway_cancel,
              place_tear_down);
  g_test_add ("/qwen/gateway/timeout", Place, NULL, place_set_up, test_gateway_timeout,
              place_tear_down);
  g_test_add ("/qwen/gateway/resource-restart", Place, NULL, place_set_up,
              test_gateway_resource_restart, place_tear_down);
  g_test_add ("/qwen/gateway/renew", Place, NULL, place_set_up, test_gateway_renew,
              place_tear_down);
  g_test_add ("/qwen/gateway/quota", Place, NULL, place_set_up, test_gateway_quota,
              place_tear_down);
  g_test_add ("/qwen/cli/login", Place, NULL, place_set_up, test_cli_login, place_tear_down);
  g_test_add ("/qwen/cli/import", Place, NULL, place_set_up, test_cli_import, place_tear_down);

  return g_test_run ();
}
