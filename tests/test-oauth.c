/* test-oauth.c: OAuth accounts against a mock Google token endpoint
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include "config.h"

#include <string.h>

#include <glib/gstdio.h>

#include "auth/kp-cli-creds.h"
#include "auth/kp-oauth-login.h"
#include "auth/kp-oauth-token.h"
#include "auth/kp-static-auth.h"
#include "kp-code-assist.h"
#include "kp-mock-google.h"
#include "kp-test-util.h"

typedef struct
{
  KpMockGoogle  *google;
  KpOAuthClient *client;
  SoupSession   *session;
  gint64         now;
} Fixture;

static gint64
test_clock (gpointer user_data)
{
  return ((Fixture *)user_data)->now;
}

static void
fixture_set_up (Fixture       *fixture,
                gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) root = NULL;
  g_autofree char *json = NULL;

  fixture->google = kp_mock_google_new (&error);
  g_assert_no_error (error);
  json = g_strdup_printf ("{\"token_url\":\"%s/token\",\"auth_url\":\"%s/auth\","
                          "\"client_id\":\"test-client.apps\",\"client_secret\":\"public\","
                          "\"scopes\":[\"a\",\"b\"],\"auth_params\":{\"access_type\":\"offline\"}}",
                          kp_mock_google_get_url (fixture->google),
                          kp_mock_google_get_url (fixture->google));
  root = json_from_string (json, &error);
  g_assert_no_error (error);
  fixture->client = kp_oauth_client_new_from_json (json_node_get_object (root), "test", &error);
  g_assert_no_error (error);
  fixture->session = soup_session_new ();
  fixture->now = 1800000000;
}

static void
fixture_tear_down (Fixture       *fixture,
                   gconstpointer  data)
{
  g_clear_object (&fixture->session);
  kp_oauth_client_free (fixture->client);
  kp_mock_google_free (fixture->google);
}

static KpOAuthToken *
new_token (Fixture    *fixture,
           const char *refresh_token)
{
  KpAuth *auth = kp_oauth_token_new (fixture->client, fixture->session);

  kp_auth_token_set_clock (KP_AUTH_TOKEN (auth), test_clock, fixture);
  kp_auth_set_secret (auth, refresh_token);
  return KP_OAUTH_TOKEN (auth);
}

static gboolean
token_settled (gpointer data)
{
  return !kp_auth_token_is_refreshing (KP_AUTH_TOKEN (data));
}

/* No token yet: the first ask starts a refresh and gets nothing; later asks
 * get the cached token without a refresh, until the clock nears its expiry.
 */
static void
test_refresh_cached (Fixture       *fixture,
                     gconstpointer  data)
{
  g_autoptr(KpOAuthToken) token = new_token (fixture, "rt-good-0001");
  KpMockGoogleStats *stats = kp_mock_google_get_stats (fixture->google);

  g_assert_cmpint (kp_auth_get_kind (KP_AUTH (token)), ==, KP_AUTH_KIND_OAUTH);
  g_assert_cmpstr (kp_auth_get_secret (KP_AUTH (token)), ==, "rt-good-0001");
  g_assert_null (kp_auth_get_token (KP_AUTH (token)));
  g_assert_true (kp_auth_token_is_refreshing (KP_AUTH_TOKEN (token)));
  g_assert_true (kp_test_spin_until (token_settled, token, 10000));
  g_assert_cmpuint (stats->refreshes, ==, 1);
  g_assert_cmpstr (kp_auth_get_token (KP_AUTH (token)), ==, "at-1");
  g_assert_cmpint (kp_auth_token_get_expires_at (KP_AUTH_TOKEN (token)), ==, fixture->now + 3599);
  /* The form carried the client's id and the refresh token. */
  g_assert_nonnull (strstr (stats->last_token_form, "grant_type=refresh_token"));
  g_assert_nonnull (strstr (stats->last_token_form, "client_secret=public"));

  /* Cached: a hundred asks, no refresh. */
  for (guint i = 0; i < 100; i++)
    g_assert_cmpstr (kp_auth_get_token (KP_AUTH (token)), ==, "at-1");
  g_assert_cmpuint (kp_auth_token_get_refreshes (KP_AUTH_TOKEN (token)), ==, 1);

  /* The timer, before the refresh is due, does nothing. */
  fixture->now += 3599 - KP_OAUTH_REFRESH_AHEAD_S - 10;
  kp_auth_token_tick (KP_AUTH_TOKEN (token));
  g_assert_false (kp_auth_token_is_refreshing (KP_AUTH_TOKEN (token)));
  g_assert_cmpstr (kp_auth_get_token (KP_AUTH (token)), ==, "at-1");

  /* When it is due, it refreshes while the old token is still valid. */
  fixture->now += 20;
  kp_auth_token_tick (KP_AUTH_TOKEN (token));
  g_assert_true (kp_auth_token_is_refreshing (KP_AUTH_TOKEN (token)));
  g_assert_cmpstr (kp_auth_get_token (KP_AUTH (token)), ==, "at-1");
  g_assert_true (kp_test_spin_until (token_settled, token, 10000));
  g_assert_cmpstr (kp_auth_get_token (KP_AUTH (token)), ==, "at-2");
  g_assert_cmpuint (stats->refreshes, ==, 2);
}

/* An expired token is never sent. */
static void
test_refresh_expired (Fixture       *fixture,
                      gconstpointer  data)
{
  g_autoptr(KpOAuthToken) token = new_token (fixture, "rt-good-0002");

  kp_auth_token_set_access_token (KP_AUTH_TOKEN (token), "at-imported", fixture->now + 3000);
  g_assert_cmpint (kp_auth_token_get_state (KP_AUTH_TOKEN (token)), ==, KP_OAUTH_STATE_READY);
  g_assert_cmpstr (kp_auth_get_token (KP_AUTH (token)), ==, "at-imported");
  g_assert_cmpuint (kp_auth_token_get_refreshes (KP_AUTH_TOKEN (token)), ==, 0);

  fixture->now += 3000 - KP_OAUTH_EXPIRY_SLACK_S;
  g_assert_cmpint (kp_auth_token_get_state (KP_AUTH_TOKEN (token)), ==, KP_OAUTH_STATE_NO_TOKEN);
  g_assert_null (kp_auth_get_token (KP_AUTH (token)));
  g_assert_true (kp_test_spin_until (token_settled, token, 10000));
  g_assert_cmpstr (kp_auth_get_token (KP_AUTH (token)), ==, "at-1");
}

/* A 401: the token is dropped and refreshed once; a 401 again after that
 * refresh means the account itself is refused.
 */
static void
test_refresh_after_401 (Fixture       *fixture,
                        gconstpointer  data)
{
  g_autoptr(KpOAuthToken) token = new_token (fixture, "rt-good-0003");

  kp_auth_token_set_access_token (KP_AUTH_TOKEN (token), "at-revoked", fixture->now + 3000);
  g_assert_true (kp_auth_rejected (KP_AUTH (token)));
  g_assert_null (kp_auth_get_token (KP_AUTH (token)));
  g_assert_true (kp_test_spin_until (token_settled, token, 10000));
  g_assert_cmpstr (kp_auth_get_token (KP_AUTH (token)), ==, "at-1");
  g_assert_cmpuint (kp_auth_token_get_refreshes (KP_AUTH_TOKEN (token)), ==, 1);

  g_assert_false (kp_auth_rejected (KP_AUTH (token)));

  /* A refresh on time makes a later 401 a token's again. */
  fixture->now += 3599;
  kp_auth_token_tick (KP_AUTH_TOKEN (token));
  g_assert_true (kp_test_spin_until (token_settled, token, 10000));
  g_assert_true (kp_auth_rejected (KP_AUTH (token)));
  g_assert_true (kp_test_spin_until (token_settled, token, 10000));

  /* A request served with the new token: a later 401 is worth a refresh again. */
  kp_auth_accepted (KP_AUTH (token));
  g_assert_true (kp_auth_rejected (KP_AUTH (token)));
  g_assert_true (kp_test_spin_until (token_settled, token, 10000));
  g_assert_cmpuint (kp_auth_token_get_refreshes (KP_AUTH_TOKEN (token)), ==, 4);
}

static void
on_refused (KpOAuthToken *token,
            const char   *message,
            char        **out)
{
  g_free (*out);
  *out = g_strdup (message);
}

/* A refused refresh token: refused for good, and said clearly, without it. */
static void
test_refresh_refused (Fixture       *fixture,
                      gconstpointer  data)
{
  g_autoptr(KpOAuthToken) token = new_token (fixture, "rt-revoked-0004");
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *message = NULL;

  g_signal_connect (token, "refused", G_CALLBACK (on_refused), &message);
  kp_mock_google_kill_refresh_token (fixture->google, "rt-revoked-0004");
  kp_auth_token_refresh_async (KP_AUTH_TOKEN (token), NULL, kp_test_store_result, &result);
  g_assert_true (kp_test_spin_until (kp_test_result_ready, &result, 10000));
  g_assert_false (kp_auth_token_refresh_finish (KP_AUTH_TOKEN (token), result, &error));
  g_assert_error (error, KP_OAUTH_ERROR, KP_OAUTH_ERROR_REFUSED);
  g_assert_cmpint (kp_auth_token_get_state (KP_AUTH_TOKEN (token)), ==, KP_OAUTH_STATE_REFUSED);
  g_assert_nonnull (message);
  g_assert_nonnull (strstr (message, "invalid_grant"));
  g_assert_nonnull (strstr (message, "Sign in again"));
  g_assert_null (strstr (message, "rt-revoked-0004"));
  g_assert_null (kp_auth_get_token (KP_AUTH (token)));
  /* Nothing more is asked of the endpoint. */
  g_assert_false (kp_auth_token_is_refreshing (KP_AUTH_TOKEN (token)));
  g_assert_false (kp_auth_rejected (KP_AUTH (token)));
}

/* Renewing a refused token -------------------------------------------------- */

static gboolean
results_ready (gpointer data)
{
  GAsyncResult **results = data;

  return results[0] != NULL && results[1] != NULL;
}

/* Two requests refused with the same token wait for one refresh; one
 * refused with a token older than the cached one is answered at once; a
 * token fresh from that refresh refused again is not refreshed (no loop)
 * until a request was served with it.
 */
static void
test_renew_shared (Fixture       *fixture,
                   gconstpointer  data)
{
  g_autoptr(KpOAuthToken) token = new_token (fixture, "rt-good-0005");
  KpAuth *auth = KP_AUTH (token);
  GAsyncResult *results[2] = { NULL, NULL };
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  guint refused;

  kp_auth_token_set_access_token (KP_AUTH_TOKEN (token), "at-revoked", fixture->now + 3000);
  g_assert_true (kp_auth_can_refresh (auth));
  refused = kp_auth_get_serial (auth);

  kp_auth_refresh_async (auth, refused, NULL, kp_test_store_result, &results[0]);
  kp_auth_refresh_async (auth, refused, NULL, kp_test_store_result, &results[1]);
  /* The refused token is not given out meanwhile. */
  g_assert_null (kp_auth_get_token (auth));
  g_assert_true (kp_test_spin_until (results_ready, results, 10000));
  for (guint i = 0; i < 2; i++)
    {
      g_assert_true (kp_auth_refresh_finish (auth, results[i], &error));
      g_assert_no_error (error);
      g_clear_object (&results[i]);
    }
  g_assert_cmpuint (kp_mock_google_get_stats (fixture->google)->refreshes, ==, 1);
  g_assert_cmpstr (kp_auth_get_token (auth), ==, "at-1");
  g_assert_cmpuint (kp_auth_get_serial (auth), !=, refused);

  /* Refused with the old token, late: the new one is there. */
  kp_auth_refresh_async (auth, refused, NULL, kp_test_store_result, &result);
  g_assert_true (kp_test_spin_until (kp_test_result_ready, &result, 10000));
  g_assert_true (kp_auth_refresh_finish (auth, result, &error));
  g_clear_object (&result);

  /* The fresh token refused too: the account, not the token. */
  kp_auth_refresh_async (auth, kp_auth_get_serial (auth), NULL, kp_test_store_result, &result);
  g_assert_true (kp_test_spin_until (kp_test_result_ready, &result, 10000));
  g_assert_false (kp_auth_refresh_finish (auth, result, &error));
  g_assert_error (error, KP_OAUTH_ERROR, KP_OAUTH_ERROR_REFUSED);
  g_clear_error (&error);
  g_clear_object (&result);
  g_assert_false (kp_auth_rejected (auth));
  g_assert_cmpuint (kp_auth_token_get_refreshes (KP_AUTH_TOKEN (token)), ==, 1);

  /* Once a request was served with it, a refusal is the token's again. */
  kp_auth_accepted (auth);
  kp_auth_refresh_async (auth, kp_auth_get_serial (auth), NULL, kp_test_store_result, &result);
  g_assert_true (kp_test_spin_until (kp_test_result_ready, &result, 10000));
  g_assert_true (kp_auth_refresh_finish (auth, result, &error));
  g_assert_cmpstr (kp_auth_get_token (auth), ==, "at-2");
}

static gboolean
refresh_held (gpointer data)
{
  return kp_mock_google_get_held (data) == 1;
}

/* A waiter that gives up (its deadline) is answered at once; the refresh
 * goes on and its token is cached for the next request.
 */
static void
test_renew_cancel (Fixture       *fixture,
                   gconstpointer  data)
{
  g_autoptr(KpOAuthToken) token = new_token (fixture, "rt-good-0006");
  KpAuth *auth = KP_AUTH (token);
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;

  kp_auth_token_set_access_token (KP_AUTH_TOKEN (token), "at-revoked", fixture->now + 3000);
  kp_mock_google_hold_refreshes (fixture->google, TRUE);
  kp_auth_refresh_async (auth, kp_auth_get_serial (auth), cancellable, kp_test_store_result,
                         &result);
  g_assert_true (kp_test_spin_until (refresh_held, fixture->google, 10000));
  g_assert_null (result);
  g_cancellable_cancel (cancellable);
  g_assert_true (kp_test_spin_until (kp_test_result_ready, &result, 10000));
  g_assert_false (kp_auth_refresh_finish (auth, result, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_true (kp_auth_token_is_refreshing (KP_AUTH_TOKEN (token)));

  kp_mock_google_hold_refreshes (fixture->google, FALSE);
  g_assert_true (kp_test_spin_until (token_settled, token, 10000));
  g_assert_cmpstr (kp_auth_get_token (auth), ==, "at-1");
}

/* A dead refresh token: the waiter hears so, and the token is refused. */
static void
test_renew_refused (Fixture       *fixture,
                    gconstpointer  data)
{
  g_autoptr(KpOAuthToken) token = new_token (fixture, "rt-revoked-0007");
  KpAuth *auth = KP_AUTH (token);
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(KpAuth) key = kp_static_auth_new ("sk-static-key-0007");

  kp_auth_token_set_access_token (KP_AUTH_TOKEN (token), "at-revoked", fixture->now + 3000);
  kp_mock_google_kill_refresh_token (fixture->google, "rt-revoked-0007");
  kp_auth_refresh_async (auth, kp_auth_get_serial (auth), NULL, kp_test_store_result, &result);
  g_assert_true (kp_test_spin_until (kp_test_result_ready, &result, 10000));
  g_assert_false (kp_auth_refresh_finish (auth, result, &error));
  g_assert_error (error, KP_OAUTH_ERROR, KP_OAUTH_ERROR_REFUSED);
  g_assert_cmpint (kp_auth_token_get_state (KP_AUTH_TOKEN (token)), ==, KP_OAUTH_STATE_REFUSED);
  g_assert_false (kp_auth_can_refresh (auth));

  /* A static key is never refreshed. */
  g_assert_false (kp_auth_can_refresh (key));
}

/* Plays the browser: the provider sends it back to the loopback redirect. */
static void
browser_returns (Fixture    *fixture,
                 const char *url,
                 guint       expected_status)
{
  g_autoptr(SoupMessage) msg = soup_message_new (SOUP_METHOD_GET, url);
  g_auto(KpTestResponse) response = { 0 };

  kp_test_send (fixture->session, msg, 10000, &response);
  g_assert_cmpuint (response.status, ==, expected_status);
}

static void
test_login (Fixture       *fixture,
            gconstpointer  data)
{
  g_autoptr(KpOAuthLogin) login = kp_oauth_login_new (fixture->client, fixture->session);
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GUri) uri = NULL;
  g_autoptr(GHashTable) query = NULL;
  g_autoptr(KpOAuthGrant) grant = NULL;
  g_autofree char *back = NULL;
  g_autofree char *wrong = NULL;
  const char *redirect;

  kp_oauth_login_set_open_browser (login, FALSE);
  g_assert_true (kp_oauth_login_listen (login, &error));
  g_assert_no_error (error);

  uri = g_uri_parse (kp_oauth_login_get_url (login), G_URI_FLAGS_NONE, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (g_uri_get_path (uri), ==, "/auth");
  query = g_uri_parse_params (g_uri_get_query (uri), -1, "&", G_URI_PARAMS_NONE, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (g_hash_table_lookup (query, "client_id"), ==, "test-client.apps");
  g_assert_cmpstr (g_hash_table_lookup (query, "response_type"), ==, "code");
  g_assert_cmpstr (g_hash_table_lookup (query, "code_challenge_method"), ==, "S256");
  g_assert_cmpstr (g_hash_table_lookup (query, "scope"), ==, "a b");
  g_assert_cmpstr (g_hash_table_lookup (query, "access_type"), ==, "offline");
  g_assert_cmpuint (strlen (g_hash_table_lookup (query, "code_challenge")), ==, 43);
  redirect = g_hash_table_lookup (query, "redirect_uri");
  g_assert_true (g_str_has_prefix (redirect, "http://127.0.0.1:"));
  g_assert_true (g_str_has_suffix (redirect, "/oauth2callback"));

  kp_mock_google_expect_code (fixture->google, "code-from-google",
                              g_hash_table_lookup (query, "code_challenge"), redirect);
  kp_oauth_login_run_async (login, NULL, kp_test_store_result, &result);

  /* Another page's state is turned away, and the sign-in goes on. */
  wrong = g_strdup_printf ("%s?code=stolen&state=not-ours", redirect);
  browser_returns (fixture, wrong, 400);
  g_assert_null (result);

  back = g_strdup_printf ("%s?code=code-from-google&state=%s", redirect,
                          (const char *)g_hash_table_lookup (query, "state"));
  browser_returns (fixture, back, 200);
  g_assert_true (kp_test_spin_until (kp_test_result_ready, &result, 10000));
  grant = kp_oauth_login_run_finish (login, result, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (grant->refresh_token, ==, "rt-from-login-0001");
  g_assert_cmpstr (grant->access_token, ==, "at-login");
  /* The mock checked the verifier against the challenge. */
  g_assert_cmpuint (kp_mock_google_get_stats (fixture->google)->code_grants, ==, 1);
}

/* A verifier that does not match the challenge is refused by the endpoint. */
static void
test_login_bad_verifier (Fixture       *fixture,
                         gconstpointer  data)
{
  g_autoptr(KpOAuthLogin) login = kp_oauth_login_new (fixture->client, fixture->session);
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GUri) uri = NULL;
  g_autoptr(GHashTable) query = NULL;
  g_autofree char *back = NULL;
  const char *redirect;

  kp_oauth_login_set_open_browser (login, FALSE);
  g_assert_true (kp_oauth_login_listen (login, &error));
  uri = g_uri_parse (kp_oauth_login_get_url (login), G_URI_FLAGS_NONE, NULL);
  query = g_uri_parse_params (g_uri_get_query (uri), -1, "&", G_URI_PARAMS_NONE, NULL);
  redirect = g_hash_table_lookup (query, "redirect_uri");
  kp_mock_google_expect_code (fixture->google, "code-x", "not-the-challenge", redirect);
  kp_oauth_login_run_async (login, NULL, kp_test_store_result, &result);
  back = g_strdup_printf ("%s?code=code-x&state=%s", redirect,
                          (const char *)g_hash_table_lookup (query, "state"));
  browser_returns (fixture, back, 200);
  g_assert_true (kp_test_spin_until (kp_test_result_ready, &result, 10000));
  g_assert_null (kp_oauth_login_run_finish (login, result, &error));
  g_assert_error (error, KP_OAUTH_ERROR, KP_OAUTH_ERROR_REFUSED);
  g_assert_null (strstr (error->message, "code-x"));
}

static void
test_login_cancel_timeout (Fixture       *fixture,
                           gconstpointer  data)
{
  g_autoptr(KpOAuthLogin) login = kp_oauth_login_new (fixture->client, fixture->session);
  g_autoptr(KpOAuthLogin) slow = kp_oauth_login_new (fixture->client, fixture->session);
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GAsyncResult) timed_out = NULL;
  g_autoptr(GError) error = NULL;

  kp_oauth_login_set_open_browser (login, FALSE);
  kp_oauth_login_run_async (login, cancellable, kp_test_store_result, &result);
  g_cancellable_cancel (cancellable);
  g_assert_true (kp_test_spin_until (kp_test_result_ready, &result, 10000));
  g_assert_null (kp_oauth_login_run_finish (login, result, &error));
  g_assert_error (error, KP_OAUTH_ERROR, KP_OAUTH_ERROR_CANCELLED);
  g_clear_error (&error);

  kp_oauth_login_set_open_browser (slow, FALSE);
  kp_oauth_login_set_timeout (slow, 1);
  kp_oauth_login_run_async (slow, NULL, kp_test_store_result, &timed_out);
  g_assert_true (kp_test_spin_until (kp_test_result_ready, &timed_out, 10000));
  g_assert_null (kp_oauth_login_run_finish (slow, timed_out, &error));
  g_assert_error (error, KP_OAUTH_ERROR, KP_OAUTH_ERROR_CANCELLED);
}

/* The PKCE example of RFC 7636, appendix B. */
static void
test_pkce (void)
{
  g_autofree char *challenge =
    kp_oauth_pkce_challenge ("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");

  g_assert_cmpstr (challenge, ==, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
}

/* Project discovery ------------------------------------------------------ */

static KpCodeAssistAccount *
discover (Fixture  *fixture,
          GError  **error)
{
  g_autoptr(GAsyncResult) result = NULL;
  g_autofree char *base = g_strconcat (kp_mock_google_get_url (fixture->google), "/v1internal",
                                       NULL);

  /* A short poll: the wait is the mock's, not Google's 5 s. */
  kp_code_assist_setup_async (fixture->session, base, "at-77", 20, NULL, kp_test_store_result,
                              &result);
  g_assert_true (kp_test_spin_until (kp_test_result_ready, &result, 10000));
  return kp_code_assist_setup_finish (result, error);
}

static void
test_discover_existing (Fixture       *fixture,
                        gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(KpCodeAssistAccount) account = NULL;
  KpMockGoogleStats *stats = kp_mock_google_get_stats (fixture->google);

  kp_mock_google_set_tier (fixture->google, KP_MOCK_TIER_EXISTING, 0);
  account = discover (fixture, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (account->project, ==, "existing-proj-42");
  /* paidTier wins over currentTier. */
  g_assert_cmpstr (account->tier, ==, "g1-pro-tier");
  g_assert_cmpuint (stats->loads, ==, 1);
  g_assert_cmpuint (stats->onboards, ==, 0);
  g_assert_cmpstr (stats->last_auth, ==, "Bearer at-77");
}

static void
test_discover_onboard (Fixture       *fixture,
                       gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(KpCodeAssistAccount) account = NULL;
  KpMockGoogleStats *stats = kp_mock_google_get_stats (fixture->google);

  kp_mock_google_set_tier (fixture->google, KP_MOCK_TIER_ONBOARD, 2);
  account = discover (fixture, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (account->project, ==, "onboarded-proj-7");
  g_assert_cmpstr (account->tier, ==, "standard-tier");
  g_assert_cmpuint (stats->onboards, ==, 1);
  g_assert_cmpuint (stats->polls, ==, 2);
  g_assert_nonnull (strstr (stats->last_onboard, "\"tierId\":\"standard-tier\""));
}

/* The free tier: no project sent, none kept. */
static void
test_discover_free (Fixture       *fixture,
                    gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(KpCodeAssistAccount) account = NULL;
  KpMockGoogleStats *stats = kp_mock_google_get_stats (fixture->google);

  kp_mock_google_set_tier (fixture->google, KP_MOCK_TIER_FREE, 1);
  account = discover (fixture, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (account->tier, ==, "free-tier");
  g_assert_null (account->project);
  g_assert_nonnull (strstr (stats->last_onboard, "\"tierId\":\"free-tier\""));
  g_assert_null (strstr (stats->last_onboard, "cloudaicompanionProject"));
  g_assert_cmpuint (stats->polls, ==, 1);
}

/* CLI logins --------------------------------------------------------------- */

static void
write_file (const char *path,
            const char *text,
            gssize      len)
{
  g_autoptr(GError) error = NULL;

  g_file_set_contents (path, text, len, &error);
  g_assert_no_error (error);
}

static void
test_import (void)
{
  KpTestPlace place = { 0 };
  g_autofree char *fixture = g_build_filename (g_getenv ("KEYPOOL_FIXTURES_DIR"), "oauth",
                                               "oauth_creds.json", NULL);
  g_autofree char *dir = NULL;
  g_autofree char *path = NULL;
  g_autofree char *before = NULL;
  g_autofree char *after = NULL;
  g_autofree char *deep = NULL;
  g_autofree char *big = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(KpCliCreds) creds = NULL;
  g_autoptr(GString) nested = g_string_new (NULL);
  gsize len;
  GStatBuf st_before, st_after;

  kp_test_place_init (&place, "import");
  kp_test_place_setenv (&place, "HOME", place.root);
  dir = g_build_filename (place.root, ".gemini", NULL);
  path = g_build_filename (dir, "oauth_creds.json", NULL);

  g_assert_false (kp_cli_creds_exists ("~/.gemini/oauth_creds.json"));
  g_assert_null (kp_cli_creds_read ("~/.gemini/oauth_creds.json", &error));
  g_assert_error (error, KP_OAUTH_ERROR, KP_OAUTH_ERROR_INVALID);
  g_assert_nonnull (strstr (error->message, "sign in with the CLI first"));
  g_clear_error (&error);

  g_assert_cmpint (g_mkdir (dir, 0700), ==, 0);
  g_file_get_contents (fixture, &before, &len, &error);
  g_assert_no_error (error);
  write_file (path, before, len);
  g_assert_cmpint (g_stat (path, &st_before), ==, 0);

  g_assert_true (kp_cli_creds_exists ("~/.gemini/oauth_creds.json"));
  creds = kp_cli_creds_read ("~/.gemini/oauth_creds.json", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (creds->refresh_token, ==, "1//fixture-refresh-token-0001");
  g_assert_cmpstr (creds->access_token, ==, "ya29.fixture-access-token-0001");
  /* expiry_date is in milliseconds. */
  g_assert_cmpint (creds->expires_at, ==, 4102444800);

  /* The file is left as it was. */
  g_file_get_contents (path, &after, NULL, &error);
  g_assert_cmpstr (after, ==, before);
  g_assert_cmpint (g_stat (path, &st_after), ==, 0);
  g_assert_cmpint (st_after.st_mtime, ==, st_before.st_mtime);
  g_assert_cmpint (st_after.st_mode, ==, st_before.st_mode);

  /* No refresh token: nothing to keep. */
  write_file (path, "{\"access_token\":\"x\"}", -1);
  g_assert_null (kp_cli_creds_read (path, &error));
  g_assert_nonnull (strstr (error->message, "no refresh token"));
  g_clear_error (&error);

  /* Too deep for the guard. */
  for (guint i = 0; i < 10000; i++)
    g_string_append_c (nested, '[');
  deep = g_strdup_printf ("{\"refresh_token\":\"r\",\"x\":%s}", nested->str);
  write_file (path, deep, -1);
  g_assert_null (kp_cli_creds_read (path, &error));
  g_assert_nonnull (strstr (error->message, "not a credentials file"));
  g_clear_error (&error);

  /* Too big to be one. */
  big = g_strnfill (KP_CLI_CREDS_MAX_SIZE + 1, ' ');
  write_file (path, big, -1);
  g_assert_null (kp_cli_creds_read (path, &error));
  g_assert_nonnull (strstr (error->message, "not a credentials file"));
  g_clear_error (&error);

  /* Not JSON. */
  write_file (path, "refresh_token=r", -1);
  g_assert_null (kp_cli_creds_read (path, &error));
  g_clear_error (&error);

  kp_test_place_clear (&place);
}

static void
test_client_config (void)
{
  static const char * const bad[] = {
    "{\"client_id\":\"x\"}",
    "{\"token_url\":\"http://example.com/token\",\"client_id\":\"x\"}",
    "{\"token_url\":\"https://t/token\",\"client_id\":\"\"}",
    "{\"token_url\":\"https://t/token\",\"client_id\":\"x\",\"redirect_port\":70000}",
    "{\"token_url\":\"https://t/token\",\"client_id\":\"x\",\"scopes\":[\"a b\"]}",
    "{\"token_url\":\"https://t/token\",\"client_id\":\"x\",\"scopes\":[{}]}",
    "{\"token_url\":\"https://t/token\",\"client_id\":\"x\",\"scopes\":[3]}",
    "{\"token_url\":\"https://t/token\",\"client_id\":\"x\",\"redirect_path\":\"cb\"}",
  };

  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(JsonNode) root = json_from_string (bad[i], NULL);
      g_autoptr(KpOAuthClient) client =
        kp_oauth_client_new_from_json (json_node_get_object (root), "t.json", &error);

      g_assert_null (client);
      g_assert_error (error, KP_OAUTH_ERROR, KP_OAUTH_ERROR_INVALID);
      g_assert_true (g_str_has_prefix (error->message, "t.json: "));
    }
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

#define ADD(path, func) \
  g_test_add (path, Fixture, NULL, fixture_set_up, func, fixture_tear_down)
  ADD ("/oauth/refresh/cached", test_refresh_cached);
  ADD ("/oauth/refresh/expired", test_refresh_expired);
  ADD ("/oauth/refresh/after-401", test_refresh_after_401);
  ADD ("/oauth/refresh/refused", test_refresh_refused);
  ADD ("/oauth/renew/shared", test_renew_shared);
  ADD ("/oauth/renew/cancel", test_renew_cancel);
  ADD ("/oauth/renew/refused", test_renew_refused);
  ADD ("/oauth/login/flow", test_login);
  ADD ("/oauth/login/bad-verifier", test_login_bad_verifier);
  ADD ("/oauth/login/cancel-timeout", test_login_cancel_timeout);
  ADD ("/oauth/discover/existing", test_discover_existing);
  ADD ("/oauth/discover/onboard", test_discover_onboard);
  ADD ("/oauth/discover/free", test_discover_free);
#undef ADD
  g_test_add_func ("/oauth/pkce", test_pkce);
  g_test_add_func ("/oauth/import", test_import);
  g_test_add_func ("/oauth/client-config", test_client_config);

  return g_test_run ();
}
