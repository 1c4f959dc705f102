/* test-kiro-accounts.c: Kiro accounts through the gateway: imported from
 * Kiro's token file or kiro-cli's database into a real keyring (on a private
 * bus), refreshed (social and IdC) against a mock Kiro on loopback, refused,
 * and each of Kiro's errors turned into the account's state
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include "config.h"

#include <string.h>

#include <sqlite3.h>

#include "auth/kp-kiro-token.h"
#include "kp-gateway-private.h"
#include "kp-key-health.h"
#include "kp-kiro-manage.h"
#include "kp-mock-kiro.h"
#include "kp-test-util.h"

#define TOKEN "kp-test-token-kiro-accounts"
#define ARN   "arn:aws:codewhisperer:us-east-1:699475941385:profile/EHGA3GRVQMUK"
#define REFRESH_FILE "rt-from-kiro-file-0001"

typedef struct
{
  KpTestPlace  place;
  KpMockKiro  *mock;
  KpGateway   *gateway;
  SoupSession *client;
  char        *base;
  char        *cache;      /* the test's ~/.aws/sso/cache */
  gint64       now;        /* the injected clock */
} Fixture;

static gint64
fixture_clock (gpointer data)
{
  return ((Fixture *)data)->now;
}

#define MODEL(id, upstream) \
  "{\"id\":\"kiro/" id "\",\"upstream_id\":\"" upstream "\",\"input\":0,\"output\":0," \
  "\"context\":200000}"

/* The provider file, its sign-in read from @import and refreshed at @refresh_path. */
static void
write_provider (Fixture    *fixture,
                const char *import,
                const char *refresh_path)
{
  g_autoptr(GError) error = NULL;
  const char *url = kp_mock_kiro_get_url (fixture->mock);
  g_autofree char *provider = g_strdup_printf (
    "{\"schema\":1,\"id\":\"kiro\",\"name\":\"Kiro\",\"dialect\":\"kiro\",\"base_url\":\"%s\","
    "\"requires_key\":true,\"subscription\":true,\"prices_checked\":\"2026-12-02\","
    "\"oauth\":{\"flow\":\"kiro\",\"import_file\":\"%s\",\"token_url\":\"%s%s\","
    "\"manage_url\":\"%s\"},\"models\":["
    MODEL ("text", "kiro-text") "," MODEL ("throttled", "kiro-throttled") ","
    MODEL ("suspended", "kiro-suspended") "," MODEL ("banned", "kiro-banned") ","
    MODEL ("quota", "kiro-quota") "," MODEL ("malformed", "kiro-malformed") "]}",
    url, import, url, refresh_path, url);
  g_autofree char *path = g_build_filename (fixture->place.providers, "kiro.json", NULL);

  g_file_set_contents (path, provider, -1, &error);
  g_assert_no_error (error);
}

static void
start_gateway (Fixture *fixture)
{
  fixture->gateway = kp_test_gateway_new (fixture->place.providers, fixture->place.root, TOKEN);
  kp_gateway_set_use_keyring (fixture->gateway, TRUE);
  kp_test_gateway_start (fixture->gateway);
  fixture->base = g_strdup_printf ("http://127.0.0.1:%u", kp_gateway_get_port (fixture->gateway));
}

static void
fixture_set_up (Fixture       *fixture,
                gconstpointer  data)
{
  g_autoptr(GError) error = NULL;

  kp_test_place_init (&fixture->place, "kiro-accounts");
  fixture->mock = kp_mock_kiro_new (&error);
  g_assert_no_error (error);
  fixture->cache = g_build_filename (fixture->place.root, "aws", "sso", "cache", NULL);
  g_assert_cmpint (g_mkdir_with_parents (fixture->cache, 0700), ==, 0);
  fixture->client = soup_session_new ();
  fixture->now = g_get_real_time () / G_USEC_PER_SEC;
}

static void
fixture_tear_down (Fixture       *fixture,
                   gconstpointer  data)
{
  soup_session_abort (fixture->client);
  g_clear_object (&fixture->client);
  kp_test_gateway_clear (&fixture->gateway);
  kp_test_spin_ms (10);
  g_clear_pointer (&fixture->mock, kp_mock_kiro_free);
  g_free (fixture->base);
  g_free (fixture->cache);
  kp_test_place_clear (&fixture->place);
}

static char *
iso_time (gint64 unix_s)
{
  g_autoptr(GDateTime) when = g_date_time_new_from_unix_utc (unix_s);

  return g_date_time_format (when, "%Y-%m-%dT%H:%M:%S.000Z");
}

/* Kiro's token file; for IdC, its device registration beside it. */
static char *
write_token_file (Fixture    *fixture,
                  const char *method,
                  const char *refresh_token,
                  gint64      expires_at)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *expires = iso_time (expires_at);
  g_autofree char *path = g_build_filename (fixture->cache, "kiro-auth-token.json", NULL);
  g_autofree char *text = g_strdup_printf (
    "{\"accessToken\":\"at-file\",\"refreshToken\":\"%s\",\"expiresAt\":\"%s\","
    "\"profileArn\":\"" ARN "\",\"authMethod\":\"%s\",\"provider\":\"%s\","
    "\"region\":\"us-east-1\",\"clientIdHash\":\"0123abcd\"}",
    refresh_token, expires, method, g_str_equal (method, "IdC") ? "BuilderId" : "Github");

  g_file_set_contents (path, text, -1, &error);
  g_assert_no_error (error);
  if (g_str_equal (method, "IdC"))
    {
      g_autofree char *registration = g_build_filename (fixture->cache, "0123abcd.json", NULL);

      g_file_set_contents (registration,
                           "{\"clientId\":\"idc-client-id\",\"clientSecret\":\"idc-client-secret-77\","
                           "\"expiresAt\":\"2099-01-01T00:00:00Z\"}", -1, &error);
      g_assert_no_error (error);
    }
  return g_steal_pointer (&path);
}

static KpCredential *
import (Fixture *fixture)
{
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  KpCredential *credential;

  kp_gateway_import_login_async (fixture->gateway, "kiro", "mine", NULL, kp_test_store_result,
                                 &result);
  g_assert_true (kp_test_spin_until (kp_test_result_ready, &result, 10000));
  credential = kp_gateway_login_finish (fixture->gateway, result, &error);
  g_assert_no_error (error);
  g_assert_nonnull (credential);
  g_assert_true (KP_IS_KIRO_TOKEN (kp_credential_get_auth (credential)));
  return credential;
}

static void
chat (Fixture        *fixture,
      const char     *model,
      KpTestResponse *response)
{
  g_autofree char *body = g_strdup_printf (
    "{\"model\":\"kiro/%s\",\"max_tokens\":77,\"temperature\":0.25,"
    "\"messages\":[{\"role\":\"user\",\"content\":\"Hello\"}]}", model);
  g_autofree char *url = g_strconcat (fixture->base, "/v1/chat/completions", NULL);
  g_autoptr(SoupMessage) msg = soup_message_new ("POST", url);
  g_autoptr(GBytes) bytes = g_bytes_new (body, strlen (body));

  soup_message_headers_replace (soup_message_get_request_headers (msg), "Authorization",
                                "Bearer " TOKEN);
  soup_message_set_request_body_from_bytes (msg, "application/json", bytes);
  kp_test_send (fixture->client, msg, 15000, response);
}

static gboolean
has_usage (gpointer data)
{
  return kp_credential_get_meta (data, "quota") != NULL &&
         kp_credential_get_meta (data, "models") != NULL;
}

static gboolean
is_ready (gpointer data)
{
  KpKiroToken *token = KP_KIRO_TOKEN (kp_credential_get_auth (data));

  return kp_auth_token_get_state (KP_AUTH_TOKEN (token)) == KP_OAUTH_STATE_READY &&
         kp_credential_get_state (data, g_get_real_time () / G_USEC_PER_SEC) == KP_CREDENTIAL_OK;
}

/* A refresh came back: the token is no longer the file's. */
static gboolean
is_refreshed (gpointer data)
{
  KpKiroToken *token = KP_KIRO_TOKEN (kp_credential_get_auth (data));

  return g_strcmp0 (kp_auth_token_peek (KP_AUTH_TOKEN (token)), "at-file") != 0 && is_ready (data);
}

static gboolean
is_invalid (gpointer data)
{
  return kp_credential_get_state (data, 0) == KP_CREDENTIAL_INVALID;
}

/* Whether @needle is anywhere in the file's bytes. */
static gboolean
file_contains (const char *path,
               const char *needle)
{
  g_autofree char *data = NULL;
  gsize len = 0;

  if (!g_file_get_contents (path, &data, &len, NULL))
    return FALSE;
  return memmem (data, len, needle, strlen (needle)) != NULL;
}

static void
assert_no_secret_on_disk (Fixture    *fixture,
                          const char *secret)
{
  g_autofree char *db = g_build_filename (fixture->place.root, "data", "keypool.db", NULL);
  g_autofree char *wal = g_strconcat (db, "-wal", NULL);

  g_assert_true (g_file_test (db, G_FILE_TEST_EXISTS));
  g_assert_false (file_contains (db, secret));
  g_assert_false (file_contains (wal, secret));
}

/* Imported from the token file, the request carries its token and profile,
 * its usage and models are read, and nothing secret reaches the database.
 */
static void
test_import_file (Fixture       *fixture,
                  gconstpointer  data)
{
  g_autofree char *file = write_token_file (fixture, "social", REFRESH_FILE,
                                            fixture->now + 3600);
  g_autofree char *before = NULL;
  g_autofree char *after = NULL;
  g_autoptr(KpCredential) credential = NULL;
  KpMockKiroStats *stats = kp_mock_kiro_get_stats (fixture->mock);

  g_assert_true (g_file_get_contents (file, &before, NULL, NULL));
  write_provider (fixture, file, "/refreshToken");
  start_gateway (fixture);
  credential = import (fixture);

  {
    g_auto(KpTestResponse) response = { 0 };

    chat (fixture, "text", &response);
    g_assert_cmpuint (response.status, ==, 200);
    g_assert_cmpstr (kp_mock_kiro_get_last_auth (fixture->mock), ==, "Bearer at-file");
    g_assert_nonnull (strstr (kp_mock_kiro_get_last_body (fixture->mock),
                              "\"profileArn\":\"" ARN "\""));
    /* §4.2's inferenceConfig, from the client's max_tokens and temperature. */
    g_assert_nonnull (strstr (kp_mock_kiro_get_last_body (fixture->mock),
                              "\"inferenceConfig\":{\"maxTokens\":77,\"temperature\":0.25}"));
  }
  /* The access token was still good: no refresh. */
  g_assert_cmpuint (stats->refreshes, ==, 0);

  g_assert_true (kp_test_spin_until (has_usage, credential, 10000));
  g_assert_cmpstr (kp_credential_get_meta (credential, "quota"), ==,
                   "KIRO FREE: 12.5 of 50 credits used this month, resets 2100-01-01");
  g_assert_cmpstr (kp_credential_get_meta (credential, "models"), ==,
                   "claude-sonnet-4.5, auto, deepseek-3.2");
  g_assert_cmpstr (stats->last_usage_auth, ==, "Bearer at-file");
  g_assert_cmpstr (stats->last_usage_arn, ==, ARN);

  /* Kiro's file is only read; the refresh token is in the keyring only. */
  g_assert_true (g_file_get_contents (file, &after, NULL, NULL));
  g_assert_cmpstr (before, ==, after);
  assert_no_secret_on_disk (fixture, REFRESH_FILE);
  assert_no_secret_on_disk (fixture, "at-file");

  /* The same account again is refused. */
  {
    g_autoptr(GAsyncResult) result = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(KpCredential) again = NULL;

    kp_gateway_import_login_async (fixture->gateway, "kiro", NULL, NULL, kp_test_store_result,
                                   &result);
    g_assert_true (kp_test_spin_until (kp_test_result_ready, &result, 10000));
    again = kp_gateway_login_finish (fixture->gateway, result, &error);
    g_assert_null (again);
    g_assert_nonnull (strstr (error->message, "already key"));
  }

  /* After a restart the keyring gives the sign-in back: refreshed, it works. */
  kp_mock_kiro_set_refresh (fixture->mock, REFRESH_FILE, FALSE);
  g_clear_object (&credential);
  kp_test_gateway_clear (&fixture->gateway);
  g_clear_pointer (&fixture->base, g_free);
  start_gateway (fixture);
  {
    g_auto(KpTestResponse) first = { 0 };
    g_auto(KpTestResponse) second = { 0 };
    KpCredential *loaded;

    /* The first request finds no access token yet and starts the refresh. */
    chat (fixture, "text", &first);
    loaded = g_ptr_array_index (kp_gateway_get_credentials (fixture->gateway), 0);
    g_assert_true (kp_test_spin_until (is_ready, loaded, 10000));
    chat (fixture, "text", &second);
    g_assert_cmpuint (second.status, ==, 200);
    g_assert_cmpstr (kp_mock_kiro_get_last_auth (fixture->mock), ==, "Bearer at-1");
    /* The refresh answer's profile ARN replaced the file's. */
    g_assert_nonnull (strstr (kp_mock_kiro_get_last_body (fixture->mock),
                              "profile/NEW"));
  }
}

/* kiro-cli's database, read only. */
static void
test_import_sqlite (Fixture       *fixture,
                    gconstpointer  data)
{
  g_autofree char *db_path = g_build_filename (fixture->place.root, "data.sqlite3", NULL);
  g_autofree char *expires = iso_time (fixture->now + 3600);
  g_autofree char *value = g_strdup_printf (
    "{\"access_token\":\"at-sqlite\",\"refresh_token\":\"rt-sqlite-0002\",\"expires_at\":\"%s\","
    "\"region\":\"us-east-1\",\"profile_arn\":\"" ARN "\"}", expires);
  g_autofree char *before = NULL;
  g_autofree char *after = NULL;
  g_autoptr(KpCredential) credential = NULL;
  sqlite3 *db = NULL;
  sqlite3_stmt *stmt = NULL;

  g_assert_cmpint (sqlite3_open (db_path, &db), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_exec (db, "CREATE TABLE auth_kv (key TEXT PRIMARY KEY, value TEXT)",
                                 NULL, NULL, NULL), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_prepare_v2 (db, "INSERT INTO auth_kv VALUES ('kirocli:social:token', ?1)",
                                       -1, &stmt, NULL), ==, SQLITE_OK);
  sqlite3_bind_text (stmt, 1, value, -1, SQLITE_STATIC);
  g_assert_cmpint (sqlite3_step (stmt), ==, SQLITE_DONE);
  sqlite3_finalize (stmt);
  sqlite3_close (db);
  g_assert_true (g_file_get_contents (db_path, &before, NULL, NULL));

  write_provider (fixture, db_path, "/refreshToken");
  start_gateway (fixture);
  credential = import (fixture);
  {
    g_auto(KpTestResponse) response = { 0 };

    chat (fixture, "text", &response);
    g_assert_cmpuint (response.status, ==, 200);
    g_assert_cmpstr (kp_mock_kiro_get_last_auth (fixture->mock), ==, "Bearer at-sqlite");
    g_assert_nonnull (strstr (kp_mock_kiro_get_last_body (fixture->mock), ARN));
  }
  g_assert_true (g_file_get_contents (db_path, &after, NULL, NULL));
  g_assert_true (g_str_equal (before, after));
  assert_no_secret_on_disk (fixture, "rt-sqlite-0002");
}

/* Social: refreshed at Kiro ten minutes before expiry (by the injected clock);
 * a rotated refresh token replaces the keyring's copy.
 */
static void
test_refresh_social (Fixture       *fixture,
                     gconstpointer  data)
{
  gint64 expires = fixture->now + 3600;
  g_autofree char *file = write_token_file (fixture, "social", REFRESH_FILE, expires);
  g_autoptr(KpCredential) credential = NULL;
  KpMockKiroStats *stats = kp_mock_kiro_get_stats (fixture->mock);
  KpKiroToken *token;
  g_autofree char *stored = NULL;

  write_provider (fixture, file, "/refreshToken");
  start_gateway (fixture);
  credential = import (fixture);
  token = KP_KIRO_TOKEN (kp_credential_get_auth (credential));
  kp_auth_token_set_clock (KP_AUTH_TOKEN (token), fixture_clock, fixture);
  kp_mock_kiro_set_refresh (fixture->mock, REFRESH_FILE, TRUE);
  stored = g_strdup (kp_credential_get_secret (credential));

  /* Eleven minutes before: not yet. */
  fixture->now = expires - 11 * 60;
  kp_auth_token_tick (KP_AUTH_TOKEN (token));
  kp_test_spin_ms (50);
  g_assert_cmpuint (stats->refreshes, ==, 0);

  /* Nine minutes before: refreshed. */
  fixture->now = expires - 9 * 60;
  kp_auth_token_tick (KP_AUTH_TOKEN (token));
  g_assert_true (kp_test_spin_until (is_refreshed, credential, 10000));
  g_assert_cmpuint (stats->refreshes, ==, 1);
  g_assert_cmpstr (stats->last_refresh_path, ==, "/refreshToken");
  g_assert_nonnull (strstr (stats->last_refresh_body, "\"refreshToken\":\"" REFRESH_FILE "\""));
  g_assert_null (strstr (stats->last_refresh_body, "clientSecret"));
  g_assert_cmpstr (kp_auth_token_peek (KP_AUTH_TOKEN (token)), ==, "at-1");
  g_assert_cmpint (kp_auth_token_get_expires_at (KP_AUTH_TOKEN (token)), ==, fixture->now + 3600);

  /* The new refresh token is what the keyring keeps now. */
  g_assert_cmpstr (kp_kiro_token_get_login (token)->refresh_token, ==, "rt-rotated-1");
  g_assert_cmpstr (kp_credential_get_secret (credential), !=, stored);
  {
    g_autoptr(KpKiroLogin) kept = kp_kiro_login_from_secret (kp_credential_get_secret (credential),
                                                             NULL);

    g_assert_nonnull (kept);
    g_assert_cmpstr (kept->refresh_token, ==, "rt-rotated-1");
  }
  assert_no_secret_on_disk (fixture, "rt-rotated-1");
}

/* IdC: refreshed at SSO-OIDC with the device registration's client. */
static void
test_refresh_idc (Fixture       *fixture,
                  gconstpointer  data)
{
  /* Expired already: the import refreshes at once. */
  g_autofree char *file = write_token_file (fixture, "IdC", "rt-idc-0003", fixture->now - 60);
  g_autoptr(KpCredential) credential = NULL;
  KpMockKiroStats *stats = kp_mock_kiro_get_stats (fixture->mock);

  kp_mock_kiro_set_refresh (fixture->mock, "rt-idc-0003", FALSE);
  write_provider (fixture, file, "/token");
  start_gateway (fixture);
  credential = import (fixture);
  g_assert_true (kp_test_spin_until (is_ready, credential, 10000));
  g_assert_cmpuint (stats->refreshes, ==, 1);
  g_assert_cmpstr (stats->last_refresh_path, ==, "/token");
  g_assert_nonnull (strstr (stats->last_refresh_body, "\"clientId\":\"idc-client-id\""));
  g_assert_nonnull (strstr (stats->last_refresh_body, "\"clientSecret\":\"idc-client-secret-77\""));
  g_assert_nonnull (strstr (stats->last_refresh_body, "\"grantType\":\"refresh_token\""));
  g_assert_nonnull (strstr (stats->last_refresh_body, "\"refreshToken\":\"rt-idc-0003\""));
  assert_no_secret_on_disk (fixture, "idc-client-secret-77");
  {
    g_auto(KpTestResponse) response = { 0 };

    chat (fixture, "text", &response);
    g_assert_cmpuint (response.status, ==, 200);
    g_assert_cmpstr (kp_mock_kiro_get_last_auth (fixture->mock), ==, "Bearer at-1");
  }
}

/* A refused refresh reads Kiro's file again once: a newer refresh token there
 * is used; none, and the account is invalid with a message saying what to do.
 */
static void
test_refused (Fixture       *fixture,
              gconstpointer  data)
{
  g_autofree char *file = write_token_file (fixture, "social", "rt-old-0004", fixture->now + 3600);
  g_autoptr(KpCredential) credential = NULL;
  KpMockKiroStats *stats = kp_mock_kiro_get_stats (fixture->mock);
  KpKiroToken *token;

  write_provider (fixture, file, "/refreshToken");
  start_gateway (fixture);
  credential = import (fixture);
  token = KP_KIRO_TOKEN (kp_credential_get_auth (credential));
  kp_auth_token_set_clock (KP_AUTH_TOKEN (token), fixture_clock, fixture);

  /* Kiro refreshed first: its file has the new refresh token. */
  kp_mock_kiro_set_refresh (fixture->mock, "rt-new-0005", FALSE);
  g_free (write_token_file (fixture, "social", "rt-new-0005", fixture->now + 3600));
  fixture->now += 3600 - 60;
  kp_auth_token_tick (KP_AUTH_TOKEN (token));
  g_assert_true (kp_test_spin_until (is_refreshed, credential, 10000));
  g_assert_cmpuint (stats->refreshes, ==, 2);
  g_assert_nonnull (strstr (stats->last_refresh_body, "rt-new-0005"));

  /* Refused, and the file holds nothing newer: invalid. */
  kp_mock_kiro_set_refresh (fixture->mock, "rt-someone-else", FALSE);
  fixture->now += 3600 - 60;
  kp_auth_token_tick (KP_AUTH_TOKEN (token));
  g_assert_true (kp_test_spin_until (is_invalid, credential, 10000));
  g_assert_cmpuint (stats->refreshes, ==, 3);
  g_assert_nonnull (strstr (kp_credential_get_last_error (credential), "sign in to Kiro again"));
  g_assert_null (strstr (kp_credential_get_last_error (credential), "rt-new-0005"));
  g_assert_cmpint (kp_auth_token_get_state (KP_AUTH_TOKEN (token)), ==, KP_OAUTH_STATE_REFUSED);
}

/* An invalid bearer token: refreshed, and the account stays usable. */
static void
test_bearer_invalid (Fixture       *fixture,
                     gconstpointer  data)
{
  g_autofree char *file = write_token_file (fixture, "social", REFRESH_FILE, fixture->now + 3600);
  g_autoptr(KpCredential) credential = NULL;
  KpMockKiroStats *stats = kp_mock_kiro_get_stats (fixture->mock);

  write_provider (fixture, file, "/refreshToken");
  start_gateway (fixture);
  credential = import (fixture);
  kp_mock_kiro_set_refresh (fixture->mock, REFRESH_FILE, FALSE);
  kp_mock_kiro_require_token (fixture->mock, "at-1");
  /* Refused ("the bearer token … is invalid"): refreshed once, and the same
   * request sent again with the new token.
   */
  {
    g_auto(KpTestResponse) response = { 0 };
    g_autofree char *db = g_build_filename (fixture->place.root, "data", "keypool.db", NULL);
    g_autofree char *attempts = NULL;
    g_autofree char *expected = g_strdup_printf ("403 auth_refreshed %1$" G_GINT64_FORMAT "\n"
                                                 "200 - %1$" G_GINT64_FORMAT "\n",
                                                 kp_credential_get_id (credential));
    guint rows = 0;

    chat (fixture, "text", &response);
    g_assert_cmpuint (response.status, ==, 200);
    g_assert_cmpstr (kp_mock_kiro_get_last_auth (fixture->mock), ==, "Bearer at-1");
    g_assert_cmpuint (stats->refreshes, ==, 1);
    g_assert_cmpuint (kp_mock_kiro_get_requests (fixture->mock), ==, 2);
    attempts = kp_test_last_attempts (db, &rows);
    g_assert_cmpstr (attempts, ==, expected);
    g_assert_cmpuint (rows, ==, 1);
  }
  g_assert_true (is_refreshed (credential));
  g_assert_cmpint (kp_credential_get_state (credential, 0), ==, KP_CREDENTIAL_OK);
  {
    g_auto(KpTestResponse) response = { 0 };

    chat (fixture, "text", &response);
    g_assert_cmpuint (response.status, ==, 200);
    g_assert_cmpstr (kp_mock_kiro_get_last_auth (fixture->mock), ==, "Bearer at-1");
    g_assert_cmpuint (stats->refreshes, ==, 1);
  }

  /* Refused again after its refresh: one refresh more, no loop, and the
   * account is invalid.
   */
  kp_mock_kiro_require_token (fixture->mock, "at-none");
  {
    g_auto(KpTestResponse) response = { 0 };
    guint before = kp_mock_kiro_get_requests (fixture->mock);

    chat (fixture, "text", &response);
    g_assert_cmpuint (response.status, ==, 403);
    g_assert_cmpuint (stats->refreshes, ==, 2);
    g_assert_cmpuint (kp_mock_kiro_get_requests (fixture->mock), ==, before + 2);
  }
  g_assert_cmpint (kp_credential_get_state (credential, 0), ==, KP_CREDENTIAL_INVALID);
}

/* Each of §4.2's error classes, and the state it leaves (by the injected clock). */
static void
test_error_states (Fixture       *fixture,
                   gconstpointer  data)
{
  g_autofree char *file = write_token_file (fixture, "social", REFRESH_FILE,
                                            fixture->now + 7 * 24 * 3600);
  g_autoptr(KpCredential) credential = NULL;
  g_autoptr(GDateTime) clock = g_date_time_new_utc (2027, 1, 31, 12, 0, 0);
  g_autoptr(GDateTime) reset = g_date_time_new_utc (2027, 2, 1, 0, 0, 0);
  KpKeyHealth *health;
  g_autoptr(GError) error = NULL;
  guint requests;

  write_provider (fixture, file, "/refreshToken");
  start_gateway (fixture);
  credential = import (fixture);
  health = kp_gateway_get_key_health (fixture->gateway);
  fixture->now = g_date_time_to_unix (clock);
  kp_key_health_set_clock (health, fixture_clock, fixture);
  kp_auth_token_set_clock (KP_AUTH_TOKEN (kp_credential_get_auth (credential)), fixture_clock,
                           fixture);
  kp_auth_token_set_access_token (KP_AUTH_TOKEN (kp_credential_get_auth (credential)), "at-file",
                                  fixture->now + 3600);

  /* Throttling: a cooldown. */
  {
    g_auto(KpTestResponse) response = { 0 };

    chat (fixture, "throttled", &response);
    g_assert_cmpuint (response.status, ==, 429);
    g_assert_cmpint (kp_credential_get_state (credential, fixture->now), ==, KP_CREDENTIAL_COOLING);
    g_assert_true (kp_gateway_reset_key (fixture->gateway, kp_credential_get_id (credential),
                                         &error));
  }
  /* The monthly quota: exhausted until 00:00 UTC on the first of next month,
   * more than the day an unknown quota rests.
   */
  {
    g_auto(KpTestResponse) response = { 0 };

    chat (fixture, "quota", &response);
    g_assert_cmpuint (response.status, !=, 200);
    g_assert_cmpint (kp_credential_get_state (credential, fixture->now), ==,
                     KP_CREDENTIAL_EXHAUSTED);
    g_assert_cmpint (kp_credential_get_state_until (credential), ==, g_date_time_to_unix (reset));
    g_assert_true (kp_gateway_reset_key (fixture->gateway, kp_credential_get_id (credential),
                                         &error));
  }
  {
    g_autoptr(GDateTime) mid = g_date_time_new_utc (2027, 3, 2, 8, 0, 0);
    g_autoptr(GDateTime) april = g_date_time_new_utc (2027, 4, 1, 0, 0, 0);
    g_auto(KpTestResponse) response = { 0 };

    fixture->now = g_date_time_to_unix (mid);
    kp_auth_token_set_access_token (KP_AUTH_TOKEN (kp_credential_get_auth (credential)),
                                    "at-file", fixture->now + 3600);
    chat (fixture, "quota", &response);
    g_assert_cmpint (kp_credential_get_state_until (credential), ==, g_date_time_to_unix (april));
    g_assert_cmpint (kp_credential_get_state_until (credential) - fixture->now, >, 24 * 3600);
    g_assert_true (kp_gateway_reset_key (fixture->gateway, kp_credential_get_id (credential),
                                         &error));
  }
  /* A malformed request: the client's error, the account untouched. */
  {
    g_auto(KpTestResponse) response = { 0 };

    chat (fixture, "malformed", &response);
    g_assert_cmpuint (response.status, ==, 400);
    g_assert_cmpint (kp_credential_get_state (credential, fixture->now), ==, KP_CREDENTIAL_OK);
  }
  /* Suspended (403 TemporarilySuspended) and locked (423): invalid at once,
   * with no refresh tried.
   */
  requests = kp_mock_kiro_get_stats (fixture->mock)->refreshes;
  {
    g_auto(KpTestResponse) response = { 0 };

    chat (fixture, "banned", &response);
    g_assert_cmpint (kp_credential_get_state (credential, fixture->now), ==, KP_CREDENTIAL_INVALID);
    g_assert_true (kp_gateway_reset_key (fixture->gateway, kp_credential_get_id (credential),
                                         &error));
  }
  {
    g_auto(KpTestResponse) response = { 0 };

    chat (fixture, "suspended", &response);
    g_assert_cmpint (kp_credential_get_state (credential, fixture->now), ==, KP_CREDENTIAL_INVALID);
  }
  kp_test_spin_ms (50);
  g_assert_cmpuint (kp_mock_kiro_get_stats (fixture->mock)->refreshes, ==, requests);
}

/* The usage answer's text, and its bounds. */
static void
test_usage_describe (void)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autofree char *text = NULL;
  g_autoptr(GString) many = g_string_new ("{\"models\":[");

  g_assert_true (json_parser_load_from_data (parser,
    "{\"usageBreakdownList\":[{\"currentUsage\":3,\"usageLimit\":50}],"
    "\"nextDateReset\":1000}", -1, NULL));
  text = kp_kiro_usage_describe (json_node_get_object (json_parser_get_root (parser)), 2000);
  /* A reset in the past is not shown. */
  g_assert_cmpstr (text, ==, "3 of 50 credits used this month");
  g_clear_pointer (&text, g_free);

  g_assert_true (json_parser_load_from_data (parser, "{\"usageBreakdownList\":[]}", -1, NULL));
  g_assert_null (kp_kiro_usage_describe (json_node_get_object (json_parser_get_root (parser)), 0));
  g_assert_true (json_parser_load_from_data (parser,
    "{\"usageBreakdownList\":[{\"currentUsage\":\"3\",\"usageLimit\":-1}]}", -1, NULL));
  g_assert_null (kp_kiro_usage_describe (json_node_get_object (json_parser_get_root (parser)), 0));

  /* At most KP_KIRO_MANAGE_MAX_MODELS ids are kept. */
  for (guint i = 0; i < 500; i++)
    g_string_append_printf (many, "%s{\"modelId\":\"m%u\"}", i ? "," : "", i);
  g_string_append (many, "]}");
  g_assert_true (json_parser_load_from_data (parser, many->str, -1, NULL));
  text = kp_kiro_models_describe (json_node_get_object (json_parser_get_root (parser)));
  g_assert_nonnull (text);
  {
    g_auto(GStrv) ids = g_strsplit (text, ", ", -1);

    g_assert_cmpuint (g_strv_length (ids), ==, KP_KIRO_MANAGE_MAX_MODELS);
  }
}

/* The quota periods, across month and year ends and at the provider's offset. */
static void
test_quota_reset (void)
{
  g_autoptr(GDateTime) dec = g_date_time_new_utc (2026, 12, 31, 23, 59, 0);
  g_autoptr(GDateTime) jan = g_date_time_new_utc (2027, 1, 1, 0, 0, 0);
  /* 15:59 UTC is 23:59 in UTC+8; 16:00 UTC is the next day there. */
  g_autoptr(GDateTime) before = g_date_time_new_utc (2027, 3, 10, 15, 59, 0);
  g_autoptr(GDateTime) after = g_date_time_new_utc (2027, 3, 10, 16, 0, 0);
  g_autoptr(GDateTime) next_day = g_date_time_new_utc (2027, 3, 11, 16, 0, 0);

  g_assert_cmpint (kp_quota_reset_next (KP_QUOTA_RESET_MONTH, 0, g_date_time_to_unix (dec)), ==,
                   g_date_time_to_unix (jan));
  g_assert_cmpint (kp_quota_reset_next (KP_QUOTA_RESET_DAY, 0, g_date_time_to_unix (dec)), ==,
                   g_date_time_to_unix (jan));
  g_assert_cmpint (kp_quota_reset_next (KP_QUOTA_RESET_DAY, 480, g_date_time_to_unix (before)),
                   ==, g_date_time_to_unix (after));
  g_assert_cmpint (kp_quota_reset_next (KP_QUOTA_RESET_DAY, 480, g_date_time_to_unix (after)),
                   ==, g_date_time_to_unix (next_day));
  g_assert_cmpint (kp_quota_reset_next (KP_QUOTA_RESET_UNKNOWN, 0, 1000), ==, 0);
}

static gboolean
has_quota (gpointer data)
{
  return kp_credential_get_meta (data, "quota") != NULL;
}

static gboolean
has_models (gpointer data)
{
  return kp_credential_get_meta (data, "models") != NULL;
}

static gboolean
usage_read (gpointer data)
{
  return kp_mock_kiro_get_stats (data)->usage_reads >= 1;
}

/* A usage answer too big or too deep is not read; the models still are. */
static void
test_usage_bounds (Fixture       *fixture,
                   gconstpointer  data)
{
  g_autofree char *file = write_token_file (fixture, "social", REFRESH_FILE, fixture->now + 3600);
  g_autoptr(GString) big = g_string_new ("{\"usageBreakdownList\":[{\"currentUsage\":1,"
                                         "\"usageLimit\":50}],\"pad\":\"");
  g_autoptr(GString) deep = g_string_new ("{\"usageBreakdownList\":[{\"currentUsage\":1,"
                                          "\"usageLimit\":50}],\"pad\":");
  const char *answers[2];

  while (big->len <= KP_KIRO_MANAGE_MAX_ANSWER)
    g_string_append (big, "xxxxxxxxxxxxxxxx");
  g_string_append (big, "\"}");
  for (guint i = 0; i < 1000; i++)
    g_string_append_c (deep, '[');
  for (guint i = 0; i < 1000; i++)
    g_string_append_c (deep, ']');
  g_string_append_c (deep, '}');
  answers[0] = big->str;
  answers[1] = deep->str;

  write_provider (fixture, file, "/refreshToken");
  start_gateway (fixture);
  for (guint i = 0; i < G_N_ELEMENTS (answers); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(KpCredential) credential = NULL;
      g_autoptr(GAsyncResult) result = NULL;

      kp_mock_kiro_set_usage_answer (fixture->mock, answers[i]);
      kp_mock_kiro_get_stats (fixture->mock)->usage_reads = 0;
      credential = import (fixture);
      g_assert_true (kp_test_spin_until (usage_read, fixture->mock, 10000));
      g_assert_true (kp_test_spin_until (has_models, credential, 10000));
      /* Both answers came; the usage one never becomes a text. */
      g_assert_false (kp_test_spin_until (has_quota, credential, 1000));

      kp_auth_token_stop (KP_AUTH_TOKEN (kp_credential_get_auth (credential)));
      kp_gateway_remove_key_async (fixture->gateway, kp_credential_get_id (credential), NULL,
                                   kp_test_store_result, &result);
      g_assert_true (kp_test_spin_until (kp_test_result_ready, &result, 10000));
      g_assert_true (kp_gateway_remove_key_finish (fixture->gateway, result, &error));
      g_assert_no_error (error);
    }
}

/* What the keyring keeps: one word whatever the paths hold, read back whole;
 * a pasted token is sent as it is and never refreshed.
 */
static void
test_secret (void)
{
  KpKiroLogin login = {
    .method = KP_KIRO_AUTH_IDC, .refresh_token = (char *)"rt-secret", .region = (char *)"eu-central-1",
    .profile_arn = (char *)ARN, .client_id = (char *)"cid", .client_secret = (char *)"csecret",
    .source = (char *)"/Users/me/Library/Application Support/kiro-cli/data.sqlite3",
  };
  g_autofree char *secret = kp_kiro_login_to_secret (&login);
  g_autoptr(KpKiroLogin) back = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(KpOAuthClient) client = g_new0 (KpOAuthClient, 1);
  g_autoptr(SoupSession) session = soup_session_new ();
  g_autoptr(KpAuth) auth = NULL;

  g_assert_null (strchr (secret, ' '));
  g_assert_null (strstr (secret, "rt-secret"));
  g_assert_true (kp_kiro_secret_is_login (secret));
  back = kp_kiro_login_from_secret (secret, &error);
  g_assert_no_error (error);
  g_assert_cmpint (back->method, ==, KP_KIRO_AUTH_IDC);
  g_assert_cmpstr (back->refresh_token, ==, "rt-secret");
  g_assert_cmpstr (back->client_secret, ==, "csecret");
  g_assert_cmpstr (back->region, ==, "eu-central-1");
  g_assert_cmpstr (back->source, ==, login.source);
  g_assert_null (back->access_token);

  g_assert_null (kp_kiro_login_from_secret ("kiro-login:!!!not-base64", &error));
  g_assert_error (error, KP_OAUTH_ERROR, KP_OAUTH_ERROR_INVALID);
  g_clear_error (&error);
  {
    /* Bigger than the keyring keeps: not read. */
    g_autofree char *padding = g_strnfill (KP_KIRO_MAX_SECRET, 'A');
    g_autofree char *huge = g_strconcat (secret, padding, NULL);

    g_assert_null (kp_kiro_login_from_secret (huge, &error));
    g_assert_error (error, KP_OAUTH_ERROR, KP_OAUTH_ERROR_INVALID);
  }

  client->flow = KP_OAUTH_FLOW_KIRO;
  auth = kp_kiro_token_new (client, session);
  kp_auth_set_secret (auth, "ksk_pasted_token_1");
  g_assert_cmpstr (kp_auth_get_token (auth), ==, "ksk_pasted_token_1");
  g_assert_false (kp_auth_rejected (auth));
  g_assert_cmpuint (kp_auth_token_get_refreshes (KP_AUTH_TOKEN (auth)), ==, 0);
  kp_auth_set_secret (auth, secret);
  g_assert_cmpstr (json_object_get_string_member (kp_auth_get_account (auth), "profileArn"), ==,
                   ARN);
  kp_auth_token_stop (KP_AUTH_TOKEN (auth));
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/kiro-accounts/usage-describe", test_usage_describe);
  g_test_add_func ("/kiro-accounts/quota-reset", test_quota_reset);
  g_test_add_func ("/kiro-accounts/secret", test_secret);
  g_test_add ("/kiro-accounts/import-file", Fixture, NULL, fixture_set_up, test_import_file,
              fixture_tear_down);
  g_test_add ("/kiro-accounts/usage-bounds", Fixture, NULL, fixture_set_up, test_usage_bounds,
              fixture_tear_down);
  g_test_add ("/kiro-accounts/import-sqlite", Fixture, NULL, fixture_set_up, test_import_sqlite,
              fixture_tear_down);
  g_test_add ("/kiro-accounts/refresh-social", Fixture, NULL, fixture_set_up,
              test_refresh_social, fixture_tear_down);
  g_test_add ("/kiro-accounts/refresh-idc", Fixture, NULL, fixture_set_up, test_refresh_idc,
              fixture_tear_down);
  g_test_add ("/kiro-accounts/refused", Fixture, NULL, fixture_set_up, test_refused,
              fixture_tear_down);
  g_test_add ("/kiro-accounts/bearer-invalid", Fixture, NULL, fixture_set_up,
              test_bearer_invalid, fixture_tear_down);
  g_test_add ("/kiro-accounts/error-states", Fixture, NULL, fixture_set_up, test_error_states,
              fixture_tear_down);

  return g_test_run ();
}
