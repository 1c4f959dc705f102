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
#include "kp-test-util.h"

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
      reply (msg, 200, "{\"access_token\":\"qwen-access-2\",\"token_type\":\"Bearer\","
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
    const char * const *script = g_str_equal (mock->client_id, "slow") ? script_slow
                               : g_str_equal (mock->client_id, "expired") ? script_expired
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
      reply (msg, 200, "{\"device_code\":\"qwen-device-code\",\"user_code\":\"ABCD-1234\","
                       "\"verification_uri\":\"https://chat.qwen.ai/authorize\","
                       "\"verification_uri_complete\":\"https://chat.qwen.ai/authorize?user_code=ABCD-1234\","
                       "\"expires_in\":600}");
    }
  else if (g_str_equal (path, "/api/v1/oauth2/token"))
    handle_token (mock, msg, form);
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

  kp_oauth_token_refresh_async (KP_OAUTH_TOKEN (auth), NULL, kp_test_store_result, &result);
  g_assert_true (kp_test_spin_until (kp_test_result_ready, &result, 10000));
  g_assert_true (kp_oauth_token_refresh_finish (KP_OAUTH_TOKEN (auth), result, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (kp_auth_get_token (auth), ==, "qwen-access-2");
  g_assert_cmpstr (kp_auth_get_secret (auth), ==, "qwen-refresh-1");
  g_assert_cmpstr (mock.last_refresh_form, ==, "f0304373b74a44d2b584a3fb70ca9e56 qwen-refresh-1");
  g_clear_object (&result);

  /* A dead refresh token: refused, sign in again. */
  kp_auth_set_secret (auth, "qwen-refresh-dead");
  kp_oauth_token_refresh_async (KP_OAUTH_TOKEN (auth), NULL, kp_test_store_result, &result);
  g_assert_true (kp_test_spin_until (kp_test_result_ready, &result, 10000));
  g_assert_false (kp_oauth_token_refresh_finish (KP_OAUTH_TOKEN (auth), result, &error));
  g_assert_error (error, KP_OAUTH_ERROR, KP_OAUTH_ERROR_REFUSED);
  g_assert_cmpint (kp_oauth_token_get_state (KP_OAUTH_TOKEN (auth)), ==, KP_OAUTH_STATE_REFUSED);
  kp_oauth_token_stop (KP_OAUTH_TOKEN (auth));
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

  return g_test_run ();
}
