/* test-code-assist-gateway.c: a Code Assist account through the gateway, with
 * its refresh token in a real keyring (on a private bus) and a mock Google
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include "config.h"

#include <string.h>

#include "auth/kp-oauth-token.h"
#include "kp-gateway-private.h"
#include "kp-mock-google.h"
#include "kp-test-util.h"

#define TOKEN "kp-test-token-code-assist"

typedef struct
{
  KpTestPlace    place;
  KpMockGoogle  *google;
  KpGateway     *gateway;
  SoupSession   *client;
  char          *base;
} Fixture;

static void
fixture_set_up (Fixture       *fixture,
                gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *provider = NULL;
  g_autofree char *path = NULL;

  kp_test_place_init (&fixture->place, "code-assist");
  fixture->google = kp_mock_google_new (&error);
  g_assert_no_error (error);
  provider = g_strdup_printf (
    "{\"schema\":1,\"id\":\"gca\",\"name\":\"Code Assist test\",\"dialect\":\"code-assist\","
    "\"base_url\":\"%s/v1internal\",\"key_check\":\"chat\",\"requires_key\":true,"
    "\"subscription\":true,\"prices_checked\":\"2026-12-02\","
    "\"oauth\":{\"token_url\":\"%s/token\",\"client_id\":\"test-client.apps\","
    "\"account_setup\":\"code-assist\"},"
    "\"models\":[{\"id\":\"google/gemini-2.5-pro\",\"upstream_id\":\"gemini-2.5-pro\","
    "\"input\":0,\"output\":0}]}",
    kp_mock_google_get_url (fixture->google), kp_mock_google_get_url (fixture->google));
  path = g_build_filename (fixture->place.providers, "gca.json", NULL);
  g_file_set_contents (path, provider, -1, &error);
  g_assert_no_error (error);

  kp_mock_google_set_tier (fixture->google, KP_MOCK_TIER_EXISTING, 0);
  kp_mock_google_set_quota (fixture->google,
                            "[{\"modelId\":\"gemini-2.5-pro\",\"remainingFraction\":0.62,"
                            "\"resetTime\":\"2030-01-01T09:00:00Z\"},"
                            "{\"modelId\":\"gemini-2.5-flash\",\"remainingFraction\":0.9}]");

  fixture->gateway = kp_test_gateway_new (fixture->place.providers, fixture->place.root, TOKEN);
  kp_gateway_set_use_keyring (fixture->gateway, TRUE);
  kp_test_gateway_start (fixture->gateway);
  fixture->base = g_strdup_printf ("http://127.0.0.1:%u", kp_gateway_get_port (fixture->gateway));
  fixture->client = soup_session_new ();
}

static void
fixture_tear_down (Fixture       *fixture,
                   gconstpointer  data)
{
  kp_test_gateway_clear (&fixture->gateway);
  g_clear_object (&fixture->client);
  g_free (fixture->base);
  kp_mock_google_free (fixture->google);
  kp_test_place_clear (&fixture->place);
}

static void
chat (Fixture        *fixture,
      KpTestResponse *response)
{
  static const char body[] =
    "{\"model\":\"google/gemini-2.5-pro\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
  g_autofree char *url = g_strconcat (fixture->base, "/v1/chat/completions", NULL);
  g_autoptr(SoupMessage) msg = soup_message_new ("POST", url);
  g_autoptr(GBytes) bytes = g_bytes_new_static (body, strlen (body));

  soup_message_headers_replace (soup_message_get_request_headers (msg), "Authorization",
                                "Bearer " TOKEN);
  soup_message_set_request_body_from_bytes (msg, "application/json", bytes);
  kp_test_send (fixture->client, msg, 15000, response);
}

static gboolean
account_ready (gpointer data)
{
  KpCredential *credential = data;

  return kp_credential_is_usable (credential, g_get_real_time () / G_USEC_PER_SEC) &&
         kp_credential_get_meta (credential, "quota") != NULL;
}

/* The newest request's attempts in the ledger, @expected with the key's id
 * for %1$s; and one request row per chat so far.
 */
static void
assert_attempts (Fixture      *fixture,
                 KpCredential *credential,
                 const char   *expected)
{
  g_autofree char *db = g_build_filename (fixture->place.root, "data", "keypool.db", NULL);
  g_autofree char *id = g_strdup_printf ("%" G_GINT64_FORMAT, kp_credential_get_id (credential));
  g_autofree char *attempts = kp_test_last_attempts (db, NULL);
  g_autoptr(GString) want = g_string_new (expected);

  g_string_replace (want, "%1$s", id, 0);
  g_assert_cmpstr (attempts, ==, want->str);
}

static KpCredential *
add_account (Fixture    *fixture,
             const char *refresh_token)
{
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  KpCredential *credential;

  kp_gateway_add_account_async (fixture->gateway, "gca", "me", refresh_token, NULL, 0,
                                NULL, kp_test_store_result, &result);
  g_assert_true (kp_test_spin_until (kp_test_result_ready, &result, 10000));
  credential = kp_gateway_add_account_finish (fixture->gateway, result, &error);
  g_assert_no_error (error);
  g_assert_true (kp_test_spin_until (account_ready, credential, 10000));
  return credential;
}

static gboolean
account_invalid (gpointer data)
{
  return kp_credential_get_state (data, 0) == KP_CREDENTIAL_INVALID;
}

static void
test_account (Fixture       *fixture,
              gconstpointer  data)
{
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(KpCredential) credential = NULL;
  KpMockGoogleStats *stats = kp_mock_google_get_stats (fixture->google);

  kp_gateway_add_account_async (fixture->gateway, "gca", "me", "rt-good-refresh-0001", NULL, 0,
                                NULL, kp_test_store_result, &result);
  g_assert_true (kp_test_spin_until (kp_test_result_ready, &result, 10000));
  credential = kp_gateway_add_account_finish (fixture->gateway, result, &error);
  g_assert_no_error (error);
  g_assert_true (KP_IS_OAUTH_TOKEN (kp_credential_get_auth (credential)));

  /* Refreshed, set up (loadCodeAssist), and its quota read, before any request. */
  g_assert_true (kp_test_spin_until (account_ready, credential, 10000));
  g_assert_cmpuint (stats->refreshes, ==, 1);
  g_assert_cmpuint (stats->loads, ==, 1);
  g_assert_cmpstr (kp_credential_get_meta (credential, "project"), ==, "existing-proj-42");
  g_assert_true (g_str_has_prefix (kp_credential_get_meta (credential, "quota"),
                                   "62 % of today's quota left, resets "));

  {
    g_auto(KpTestResponse) response = { 0 };

    chat (fixture, &response);
    g_assert_cmpuint (response.status, ==, 200);
    g_assert_nonnull (strstr (response.body, "Hello from Code Assist"));
    g_assert_cmpstr (stats->last_auth, ==, "Bearer at-1");
    g_assert_nonnull (strstr (stats->last_generate, "\"project\":\"existing-proj-42\""));
    g_assert_nonnull (strstr (stats->last_generate, "\"model\":\"gemini-2.5-pro\""));
    /* The cached token served it: no refresh on the request path. */
    g_assert_cmpuint (stats->refreshes, ==, 1);
  }

  /* A 401: refreshed once, and the same request is sent again with the new
   * token; the account stays usable.
   */
  kp_mock_google_reject_access_token (fixture->google, "at-1");
  {
    g_auto(KpTestResponse) response = { 0 };

    chat (fixture, &response);
    g_assert_cmpuint (response.status, ==, 200);
    g_assert_cmpstr (stats->last_auth, ==, "Bearer at-2");
    g_assert_cmpuint (stats->refused, ==, 1);
    g_assert_cmpuint (stats->refreshes, ==, 2);
    assert_attempts (fixture, credential, "401 auth_refreshed %1$s\n200 - %1$s\n");
  }
  g_assert_cmpint (kp_credential_get_state (credential, 0), ==, KP_CREDENTIAL_OK);
  g_assert_true (kp_test_spin_until (account_ready, credential, 10000));
  {
    g_auto(KpTestResponse) response = { 0 };

    chat (fixture, &response);
    g_assert_cmpuint (response.status, ==, 200);
    g_assert_cmpstr (stats->last_auth, ==, "Bearer at-2");
    g_assert_cmpuint (stats->refreshes, ==, 2);
  }

  /* The refresh token revoked: after the next 401 the account is invalid,
   * and says why without the token.
   */
  kp_mock_google_kill_refresh_token (fixture->google, "rt-good-refresh-0001");
  kp_mock_google_reject_access_token (fixture->google, "at-2");
  {
    g_auto(KpTestResponse) response = { 0 };

    chat (fixture, &response);
    g_assert_cmpuint (response.status, !=, 200);
  }
  g_assert_true (kp_test_spin_until (account_invalid, credential, 10000));
  g_assert_nonnull (strstr (kp_credential_get_last_error (credential), "Sign in again"));
  g_assert_null (strstr (kp_credential_get_last_error (credential), "rt-good-refresh-0001"));
}

/* The account's project is kept: a restart uses it without loadCodeAssist. */
static void
test_restart (Fixture       *fixture,
              gconstpointer  data)
{
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(KpCredential) credential = NULL;
  KpCredential *again;
  KpMockGoogleStats *stats = kp_mock_google_get_stats (fixture->google);
  gint64 id;

  kp_gateway_add_account_async (fixture->gateway, "gca", "me", "rt-good-refresh-0001", NULL, 0,
                                NULL, kp_test_store_result, &result);
  g_assert_true (kp_test_spin_until (kp_test_result_ready, &result, 10000));
  credential = kp_gateway_add_account_finish (fixture->gateway, result, &error);
  g_assert_no_error (error);
  g_assert_true (kp_test_spin_until (account_ready, credential, 10000));
  g_assert_cmpuint (stats->loads, ==, 1);
  id = kp_credential_get_id (credential);

  kp_test_gateway_clear (&fixture->gateway);
  fixture->gateway = kp_test_gateway_new (fixture->place.providers, fixture->place.root, TOKEN);
  kp_gateway_set_use_keyring (fixture->gateway, TRUE);
  kp_test_gateway_start (fixture->gateway);
  g_free (fixture->base);
  fixture->base = g_strdup_printf ("http://127.0.0.1:%u", kp_gateway_get_port (fixture->gateway));

  again = kp_gateway_find_credential (fixture->gateway, id);
  g_assert_nonnull (again);
  g_assert_true (kp_test_spin_until (account_ready, again, 10000));
  /* A new access token and the quota, but no second discovery. */
  g_assert_cmpuint (stats->refreshes, ==, 2);
  g_assert_cmpuint (stats->loads, ==, 1);
  g_assert_cmpstr (kp_credential_get_meta (again, "project"), ==, "existing-proj-42");
  {
    g_auto(KpTestResponse) response = { 0 };

    chat (fixture, &response);
    g_assert_cmpuint (response.status, ==, 200);
    g_assert_nonnull (strstr (stats->last_generate, "\"project\":\"existing-proj-42\""));
  }
}

/* One chat that the account cannot serve: 401 to the client, @refused
 * requests refused and @refreshes refreshes in all, the account invalid,
 * and @attempts in the ledger.
 */
static void
chat_refused (Fixture        *fixture,
              KpCredential   *credential,
              guint           refused,
              guint           refreshes,
              const char     *attempts,
              KpTestResponse *response)
{
  KpMockGoogleStats *stats = kp_mock_google_get_stats (fixture->google);

  chat (fixture, response);
  g_assert_cmpuint (response->status, ==, 401);
  g_assert_cmpuint (stats->refused, ==, refused);
  g_assert_cmpuint (stats->refreshes, ==, refreshes);
  g_assert_cmpint (kp_credential_get_state (credential, 0), ==, KP_CREDENTIAL_INVALID);
  assert_attempts (fixture, credential, attempts);
}

/* The token refused again after its refresh: no second refresh, no loop;
 * the account is invalid and the client hears why.
 */
static void
test_renew_refused_again (Fixture       *fixture,
                          gconstpointer  data)
{
  g_autoptr(KpCredential) credential = add_account (fixture, "rt-good-refresh-0002");
  g_auto(KpTestResponse) response = { 0 };

  kp_mock_google_reject_access_token (fixture->google, "at-1");
  kp_mock_google_reject_access_token (fixture->google, "at-2");
  kp_mock_google_reject_access_token (fixture->google, "at-3");
  chat_refused (fixture, credential, 2, 2, "401 auth_refreshed %1$s\n401 auth_invalid %1$s\n",
                &response);
}

/* The refresh token refused: the route fails at once, with a clear error. */
static void
test_renew_refresh_refused (Fixture       *fixture,
                            gconstpointer  data)
{
  g_autoptr(KpCredential) credential = add_account (fixture, "rt-good-refresh-0003");
  g_auto(KpTestResponse) response = { 0 };

  kp_mock_google_reject_access_token (fixture->google, "at-1");
  kp_mock_google_kill_refresh_token (fixture->google, "rt-good-refresh-0003");
  chat_refused (fixture, credential, 1, 1, "401 auth_invalid %1$s\n", &response);
  g_assert_nonnull (strstr (response.body, "no new token"));
  g_assert_nonnull (strstr (response.body, "invalid_grant"));
  g_assert_null (strstr (response.body, "rt-good-refresh-0003"));
}

/* Two accounts; the refresh token of the one whose access token is refused
 * is dead: the request goes on to the other account and is answered.
 */
static void
test_renew_next_route (Fixture       *fixture,
                       gconstpointer  data)
{
  g_autoptr(KpCredential) dead = add_account (fixture, "rt-good-refresh-0005");
  g_autoptr(KpCredential) good = add_account (fixture, "rt-good-refresh-0006");
  KpMockGoogleStats *stats = kp_mock_google_get_stats (fixture->google);
  g_autofree char *expected = g_strdup_printf ("401 auth_invalid %" G_GINT64_FORMAT "\n"
                                               "200 - %" G_GINT64_FORMAT "\n",
                                               kp_credential_get_id (dead),
                                               kp_credential_get_id (good));
  g_autofree char *good_only = g_strdup_printf ("200 - %" G_GINT64_FORMAT "\n",
                                                kp_credential_get_id (good));
  g_autofree char *db = g_build_filename (fixture->place.root, "data", "keypool.db", NULL);

  g_assert_cmpstr (kp_auth_token_peek (KP_AUTH_TOKEN (kp_credential_get_auth (dead))), ==, "at-1");
  kp_mock_google_reject_access_token (fixture->google, "at-1");
  kp_mock_google_kill_refresh_token (fixture->google, "rt-good-refresh-0005");
  /* The two accounts take turns in first place: within two requests the
   * dead one is tried once.
   */
  for (guint i = 0; i < 2; i++)
    {
      g_auto(KpTestResponse) response = { 0 };
      gboolean was_ok = kp_credential_get_state (dead, 0) == KP_CREDENTIAL_OK;
      g_autofree char *attempts = NULL;

      chat (fixture, &response);
      g_assert_cmpuint (response.status, ==, 200);
      g_assert_cmpstr (stats->last_auth, ==, "Bearer at-2");
      attempts = kp_test_last_attempts (db, NULL);
      if (was_ok && kp_credential_get_state (dead, 0) == KP_CREDENTIAL_INVALID)
        g_assert_cmpstr (attempts, ==, expected);
      else
        g_assert_cmpstr (attempts, ==, good_only);
    }
  g_assert_cmpint (kp_credential_get_state (dead, 0), ==, KP_CREDENTIAL_INVALID);
  g_assert_cmpint (kp_credential_get_state (good, 0), ==, KP_CREDENTIAL_OK);
  g_assert_cmpuint (stats->refused, ==, 1);
  g_assert_cmpuint (stats->refreshes, ==, 2);
}

/* The new token is late: the request gives up on it at its first-byte
 * deadline, the account stays usable, and the token, when it comes, serves
 * the next request.
 */
static void
test_renew_deadline (Fixture       *fixture,
                     gconstpointer  data)
{
  g_autoptr(KpCredential) credential = add_account (fixture, "rt-good-refresh-0007");
  KpMockGoogleStats *stats = kp_mock_google_get_stats (fixture->google);

  kp_gateway_set_timeouts (fixture->gateway, 2000, 500 * kp_test_timeout_scale (), 2000);
  kp_mock_google_reject_access_token (fixture->google, "at-1");
  kp_mock_google_hold_refreshes (fixture->google, TRUE);
  {
    g_auto(KpTestResponse) response = { 0 };

    chat (fixture, &response);
    g_assert_cmpuint (response.status, ==, 401);
    g_assert_nonnull (strstr (response.body, "no new token within"));
    g_assert_cmpuint (kp_mock_google_get_held (fixture->google), ==, 1);
    assert_attempts (fixture, credential, "401 auth_invalid %1$s\n");
  }
  /* Not the account's fault: it waits for its token. */
  g_assert_cmpint (kp_credential_get_state (credential, 0), ==, KP_CREDENTIAL_OK);

  kp_mock_google_hold_refreshes (fixture->google, FALSE);
  g_assert_true (kp_test_spin_until (account_ready, credential, 10000));
  {
    g_auto(KpTestResponse) response = { 0 };

    chat (fixture, &response);
    g_assert_cmpuint (response.status, ==, 200);
    g_assert_cmpstr (stats->last_auth, ==, "Bearer at-2");
    g_assert_cmpuint (stats->refreshes, ==, 2);
  }
}

typedef struct
{
  guint  status;
  char  *body;
} Answer;

static void
on_answer (GObject      *object,
           GAsyncResult *result,
           gpointer      user_data)
{
  Answer *answer = user_data;
  g_autoptr(GBytes) body = soup_session_send_and_read_finish (SOUP_SESSION (object), result, NULL);

  answer->status = soup_message_get_status (soup_session_get_async_result_message (
                                              SOUP_SESSION (object), result));
  answer->body = body ? g_strndup (g_bytes_get_data (body, NULL), g_bytes_get_size (body))
                      : g_strdup ("");
}

static gboolean
answers_in (gpointer data)
{
  Answer *answers = data;

  return answers[0].body != NULL && answers[1].body != NULL;
}

static gboolean
refused_twice_and_held (gpointer data)
{
  return kp_mock_google_get_stats (data)->refused == 2 && kp_mock_google_get_held (data) == 1;
}

/* Two requests refused with the same token at once: one refresh serves
 * both, and both are answered.
 */
static void
test_renew_shared (Fixture       *fixture,
                   gconstpointer  data)
{
  static const char body[] =
    "{\"model\":\"google/gemini-2.5-pro\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
  g_autoptr(KpCredential) credential = add_account (fixture, "rt-good-refresh-0004");
  KpMockGoogleStats *stats = kp_mock_google_get_stats (fixture->google);
  g_autofree char *url = g_strconcat (fixture->base, "/v1/chat/completions", NULL);
  Answer answers[2] = { { 0 } };

  kp_mock_google_reject_access_token (fixture->google, "at-1");
  /* Both are sent with the refused token before either hears of it. */
  kp_mock_google_hold_refusals (fixture->google, 2);
  kp_mock_google_hold_refreshes (fixture->google, TRUE);
  for (guint i = 0; i < 2; i++)
    {
      g_autoptr(SoupMessage) msg = soup_message_new ("POST", url);
      g_autoptr(GBytes) bytes = g_bytes_new_static (body, strlen (body));

      soup_message_headers_replace (soup_message_get_request_headers (msg), "Authorization",
                                    "Bearer " TOKEN);
      soup_message_set_request_body_from_bytes (msg, "application/json", bytes);
      soup_session_send_and_read_async (fixture->client, msg, G_PRIORITY_DEFAULT, NULL,
                                        on_answer, &answers[i]);
    }
  g_assert_true (kp_test_spin_until (refused_twice_and_held, fixture->google, 15000));
  kp_mock_google_hold_refreshes (fixture->google, FALSE);
  g_assert_true (kp_test_spin_until (answers_in, answers, 15000));

  for (guint i = 0; i < 2; i++)
    {
      g_assert_cmpuint (answers[i].status, ==, 200);
      g_assert_nonnull (strstr (answers[i].body, "Hello from Code Assist"));
      g_free (answers[i].body);
    }
  g_assert_cmpuint (stats->refreshes, ==, 2);
  g_assert_cmpuint (stats->refused, ==, 2);
  g_assert_cmpstr (stats->last_auth, ==, "Bearer at-2");
  g_assert_cmpint (kp_credential_get_state (credential, 0), ==, KP_CREDENTIAL_OK);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add ("/code-assist-gateway/account", Fixture, NULL, fixture_set_up, test_account,
              fixture_tear_down);
  g_test_add ("/code-assist-gateway/restart", Fixture, NULL, fixture_set_up, test_restart,
              fixture_tear_down);
  g_test_add ("/code-assist-gateway/renew-refused-again", Fixture, NULL, fixture_set_up,
              test_renew_refused_again, fixture_tear_down);
  g_test_add ("/code-assist-gateway/renew-refresh-refused", Fixture, NULL, fixture_set_up,
              test_renew_refresh_refused, fixture_tear_down);
  g_test_add ("/code-assist-gateway/renew-next-route", Fixture, NULL, fixture_set_up,
              test_renew_next_route, fixture_tear_down);
  g_test_add ("/code-assist-gateway/renew-deadline", Fixture, NULL, fixture_set_up,
              test_renew_deadline, fixture_tear_down);
  g_test_add ("/code-assist-gateway/renew-shared", Fixture, NULL, fixture_set_up,
              test_renew_shared, fixture_tear_down);

  return g_test_run ();
}
