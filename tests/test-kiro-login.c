/* test-kiro-login.c: Kiro's sign-in read from its files, and refreshed
 *
 * Kiro's token file (social, and IdC with its device registration), and
 * kiro-cli's SQLite database (read-only), written into a private folder;
 * refreshes against a loopback server playing Kiro's refreshToken and
 * SSO-OIDC's CreateToken: granted, granted without a new refresh token,
 * refused then granted after Kiro rotated the token in its file, refused.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include "config.h"

#include <string.h>

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <sqlite3.h>

#include "auth/kp-kiro-login.h"
#include "auth/kp-oauth-client.h"
#include "kp-test-util.h"

#define ARN "arn:aws:codewhisperer:us-east-1:699475941385:profile/EHGA3GRVQMUK"

typedef struct
{
  SoupServer *server;
  char       *base;
  char       *dir;
  guint       social;
  guint       idc;
  char       *last_body;
} Fixture;

static void
handler (SoupServer        *server,
         SoupServerMessage *msg,
         const char        *path,
         GHashTable        *query,
         gpointer           user_data)
{
  Fixture *fixture = user_data;
  SoupMessageBody *body = soup_server_message_get_request_body (msg);
  g_autoptr(JsonParser) parser = json_parser_new ();
  JsonObject *request;
  const char *refresh;

  g_free (fixture->last_body);
  fixture->last_body = g_strndup (body->data, body->length);
  if (!json_parser_load_from_data (parser, body->data, body->length, NULL) ||
      !JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
    {
      kp_test_reply_json (msg, 400, "{\"message\":\"not JSON\"}");
      return;
    }
  request = json_node_get_object (json_parser_get_root (parser));
  refresh = json_object_get_string_member_with_default (request, "refreshToken", "");

  if (g_str_equal (path, "/refreshToken"))
    {
      fixture->social++;
      if (g_str_equal (refresh, "social-refresh-1") || g_str_equal (refresh, "social-rotated"))
        kp_test_reply_json (msg, 200, "{\"accessToken\":\"social-access-2\","
                                      "\"refreshToken\":\"social-refresh-2\","
                                      "\"expiresIn\":3600,\"profileArn\":\"" ARN "\"}");
      else
        kp_test_reply_json (msg, 401, "{\"message\":\"Invalid refresh token\"}");
    }
  else if (g_str_equal (path, "/token"))
    {
      fixture->idc++;
      if (g_strcmp0 (json_object_get_string_member_with_default (request, "clientId", ""),
                     "idc-client") != 0 ||
          g_strcmp0 (json_object_get_string_member_with_default (request, "clientSecret", ""),
                     "idc-secret") != 0 ||
          g_strcmp0 (json_object_get_string_member_with_default (request, "grantType", ""),
                     "refresh_token") != 0)
        kp_test_reply_json (msg, 400, "{\"error\":\"invalid_client\"}");
      else if (g_str_equal (refresh, "idc-refresh-1"))
        /* No new refresh token: the old one stays. */
        kp_test_reply_json (msg, 200, "{\"accessToken\":\"idc-access-2\",\"expiresIn\":28800,"
                                      "\"tokenType\":\"Bearer\"}");
      else
        kp_test_reply_json (msg, 400, "{\"error\":\"invalid_grant\"}");
    }
  else
    kp_test_reply_json (msg, 404, "{}");
}

static void
fixture_setup (Fixture       *fixture,
               gconstpointer  data)
{
  g_autoptr(GError) error = NULL;

  fixture->server = kp_test_server_new (handler, fixture, &fixture->base);
  fixture->dir = g_dir_make_tmp ("keypool-kiro-login-XXXXXX", &error);
  g_assert_no_error (error);
}

static void
fixture_teardown (Fixture       *fixture,
                  gconstpointer  data)
{
  soup_server_disconnect (fixture->server);
  g_clear_object (&fixture->server);
  kp_test_remove_tree (fixture->dir);
  g_free (fixture->dir);
  g_free (fixture->base);
  g_free (fixture->last_body);
}

static char *
write_file (Fixture    *fixture,
            const char *name,
            const char *text)
{
  char *path = g_build_filename (fixture->dir, name, NULL);

  g_assert_true (g_file_set_contents (path, text, -1, NULL));
  return path;
}

#define SOCIAL_FILE \
  "{\"accessToken\":\"social-access-1\",\"refreshToken\":\"social-refresh-1\"," \
  "\"expiresAt\":\"2026-12-02T12:00:00.000Z\",\"profileArn\":\"" ARN "\"," \
  "\"authMethod\":\"social\",\"provider\":\"Google\"}"

#define IDC_FILE \
  "{\"accessToken\":\"idc-access-1\",\"refreshToken\":\"idc-refresh-1\"," \
  "\"expiresAt\":\"2026-12-02T12:00:00Z\",\"authMethod\":\"IdC\",\"provider\":\"BuilderId\"," \
  "\"region\":\"eu-west-1\",\"clientIdHash\":\"0123abcd\"}"

static void
test_read_files (Fixture       *fixture,
                 gconstpointer  data)
{
  g_autofree char *social_path = write_file (fixture, "kiro-auth-token.json", SOCIAL_FILE);
  g_autoptr(KpKiroLogin) social = NULL;
  g_autoptr(KpKiroLogin) idc = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GDateTime) noon = g_date_time_new_utc (2026, 12, 2, 12, 0, 0);

  social = kp_kiro_login_read_file (social_path, &error);
  g_assert_no_error (error);
  g_assert_cmpint (social->method, ==, KP_KIRO_AUTH_SOCIAL);
  g_assert_cmpstr (social->refresh_token, ==, "social-refresh-1");
  g_assert_cmpstr (social->profile_arn, ==, ARN);
  g_assert_cmpstr (social->region, ==, "us-east-1");
  g_assert_cmpint (social->expires_at, ==, g_date_time_to_unix (noon));

  /* Ten minutes before expiry it is due, not eleven. */
  g_assert_false (kp_kiro_login_needs_refresh (social, social->expires_at - 11 * 60));
  g_assert_true (kp_kiro_login_needs_refresh (social, social->expires_at - 9 * 60));

  /* An IdC login without its registration file is refused with a reason. */
  g_free (write_file (fixture, "kiro-auth-token.json", IDC_FILE));
  idc = kp_kiro_login_read_file (social_path, &error);
  g_assert_null (idc);
  g_assert_nonnull (error);
  g_clear_error (&error);

  g_free (write_file (fixture, "0123abcd.json",
                      "{\"clientId\":\"idc-client\",\"clientSecret\":\"idc-secret\","
                      "\"expiresAt\":\"2027-03-01T00:00:00Z\"}"));
  idc = kp_kiro_login_read_file (social_path, &error);
  g_assert_no_error (error);
  g_assert_cmpint (idc->method, ==, KP_KIRO_AUTH_IDC);
  g_assert_cmpstr (idc->client_id, ==, "idc-client");
  g_assert_cmpstr (idc->client_secret, ==, "idc-secret");
  g_assert_cmpstr (idc->region, ==, "eu-west-1");

  /* A hash that climbs out of the folder, and a file with no refresh token. */
  g_free (write_file (fixture, "kiro-auth-token.json",
                      "{\"refreshToken\":\"x\",\"authMethod\":\"IdC\",\"clientIdHash\":\"../../etc/x\"}"));
  g_assert_null (kp_kiro_login_read_file (social_path, &error));
  g_assert_error (error, KP_OAUTH_ERROR, KP_OAUTH_ERROR_INVALID);
  g_clear_error (&error);
  g_free (write_file (fixture, "kiro-auth-token.json", "{\"accessToken\":\"a\"}"));
  g_assert_null (kp_kiro_login_read_file (social_path, &error));
  g_assert_error (error, KP_OAUTH_ERROR, KP_OAUTH_ERROR_INVALID);
  g_assert_nonnull (strstr (error->message, "sign in to Kiro"));
  g_assert_null (strstr (error->message, "\"a\""));
}

static void
test_read_sqlite (Fixture       *fixture,
                  gconstpointer  data)
{
  g_autofree char *path = g_build_filename (fixture->dir, "data.sqlite3", NULL);
  g_autoptr(KpKiroLogin) login = NULL;
  g_autoptr(GError) error = NULL;
  GStatBuf before;
  GStatBuf after;
  sqlite3 *db = NULL;

  g_assert_cmpint (sqlite3_open (path, &db), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_exec (db,
    "CREATE TABLE auth_kv (key TEXT PRIMARY KEY, value TEXT);"
    "INSERT INTO auth_kv VALUES ('kirocli:odic:token', '{\"access_token\":\"cli-access\","
    "\"refresh_token\":\"cli-refresh\",\"expires_at\":\"2026-12-02T13:00:00Z\","
    "\"region\":\"us-east-1\",\"profile_arn\":\"" ARN "\"}');"
    "INSERT INTO auth_kv VALUES ('kirocli:odic:device-registration',"
    "'{\"client_id\":\"cli-client\",\"client_secret\":\"cli-secret\"}');",
    NULL, NULL, NULL), ==, SQLITE_OK);
  sqlite3_close (db);
  g_assert_cmpint (g_stat (path, &before), ==, 0);

  login = kp_kiro_login_read_source (path, &error);
  g_assert_no_error (error);
  g_assert_cmpint (login->method, ==, KP_KIRO_AUTH_IDC);
  g_assert_cmpstr (login->access_token, ==, "cli-access");
  g_assert_cmpstr (login->refresh_token, ==, "cli-refresh");
  g_assert_cmpstr (login->client_id, ==, "cli-client");
  g_assert_cmpstr (login->profile_arn, ==, ARN);

  /* Read-only: the database is as it was, and no journal was left. */
  g_assert_cmpint (g_stat (path, &after), ==, 0);
  g_assert_cmpint (before.st_size, ==, after.st_size);
  g_assert_cmpint (before.st_mtime, ==, after.st_mtime);
  {
    g_autofree char *wal = g_strconcat (path, "-wal", NULL);

    g_assert_false (g_file_test (wal, G_FILE_TEST_EXISTS));
  }

  /* A database with no sign-in says what to run. */
  g_clear_pointer (&login, kp_kiro_login_free);
  g_assert_cmpint (sqlite3_open (path, &db), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_exec (db, "DELETE FROM auth_kv", NULL, NULL, NULL), ==, SQLITE_OK);
  sqlite3_close (db);
  login = kp_kiro_login_read_source (path, &error);
  g_assert_null (login);
  g_assert_nonnull (strstr (error->message, "kiro-cli login"));
}

static gboolean
refresh (Fixture      *fixture,
         KpKiroLogin  *login,
         const char   *path,
         GError      **error)
{
  g_autoptr(SoupSession) session = soup_session_new ();
  g_autoptr(GAsyncResult) result = NULL;
  g_autofree char *endpoint = g_strconcat (fixture->base, path, NULL);

  kp_kiro_login_refresh_async (login, session, endpoint, NULL, kp_test_store_result, &result);
  g_assert_true (kp_test_spin_until (kp_test_result_ready, &result, 10000));
  return kp_kiro_login_refresh_finish (result, error);
}

static void
test_refresh_social (Fixture       *fixture,
                     gconstpointer  data)
{
  g_autofree char *path = write_file (fixture, "kiro-auth-token.json", SOCIAL_FILE);
  g_autoptr(KpKiroLogin) login = kp_kiro_login_read_file (path, NULL);
  g_autoptr(GError) error = NULL;
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;

  g_assert_true (refresh (fixture, login, "/refreshToken", &error));
  g_assert_no_error (error);
  g_assert_cmpstr (fixture->last_body, ==, "{\"refreshToken\":\"social-refresh-1\"}");
  g_assert_cmpstr (login->access_token, ==, "social-access-2");
  g_assert_cmpstr (login->refresh_token, ==, "social-refresh-2");
  g_assert_cmpint (login->expires_at, >=, now + 3600);
  g_assert_cmpint (login->expires_at, <=, now + 3700);
}

static void
test_refresh_idc (Fixture       *fixture,
                  gconstpointer  data)
{
  g_autofree char *path = write_file (fixture, "kiro-auth-token.json", IDC_FILE);
  g_autoptr(KpKiroLogin) login = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(SoupMessage) msg = NULL;

  g_free (write_file (fixture, "0123abcd.json",
                      "{\"clientId\":\"idc-client\",\"clientSecret\":\"idc-secret\"}"));
  login = kp_kiro_login_read_file (path, &error);
  g_assert_no_error (error);

  /* Without a test endpoint, AWS's in the login's region. */
  msg = kp_kiro_login_refresh_message (login, NULL);
  {
    g_autofree char *uri = g_uri_to_string (soup_message_get_uri (msg));

    g_assert_cmpstr (uri, ==, "https://oidc.eu-west-1.amazonaws.com/token");
  }

  g_assert_true (refresh (fixture, login, "/token", &error));
  g_assert_no_error (error);
  g_assert_cmpuint (fixture->idc, ==, 1);
  g_assert_cmpstr (login->access_token, ==, "idc-access-2");
  /* None came back: the old refresh token stays. */
  g_assert_cmpstr (login->refresh_token, ==, "idc-refresh-1");
}

/* Refused: Kiro rotated the token in its file meanwhile; the file is read
 * again once and the refresh tried with the new token. Refused again (the
 * file unchanged): the user must sign in to Kiro again.
 */
static void
test_refresh_refused (Fixture       *fixture,
                      gconstpointer  data)
{
  g_autofree char *path = write_file (fixture, "kiro-auth-token.json",
                                      "{\"refreshToken\":\"social-stale\",\"authMethod\":\"social\"}");
  g_autoptr(KpKiroLogin) login = kp_kiro_login_read_file (path, NULL);
  g_autoptr(GError) error = NULL;

  g_free (write_file (fixture, "kiro-auth-token.json",
                      "{\"refreshToken\":\"social-rotated\",\"authMethod\":\"social\"}"));
  g_assert_true (refresh (fixture, login, "/refreshToken", &error));
  g_assert_no_error (error);
  g_assert_cmpuint (fixture->social, ==, 2);
  g_assert_cmpstr (login->access_token, ==, "social-access-2");

  /* Dead for good. */
  fixture->social = 0;
  g_free (write_file (fixture, "kiro-auth-token.json",
                      "{\"refreshToken\":\"social-dead\",\"authMethod\":\"social\"}"));
  g_clear_pointer (&login, kp_kiro_login_free);
  login = kp_kiro_login_read_file (path, NULL);
  g_assert_false (refresh (fixture, login, "/refreshToken", &error));
  g_assert_error (error, KP_OAUTH_ERROR, KP_OAUTH_ERROR_REFUSED);
  g_assert_nonnull (strstr (error->message, "sign in to Kiro again"));
  g_assert_null (strstr (error->message, "social-dead"));
  /* The file was read again once, not in a loop. */
  g_assert_cmpuint (fixture->social, ==, 1);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add ("/kiro-login/read-files", Fixture, NULL, fixture_setup, test_read_files,
              fixture_teardown);
  g_test_add ("/kiro-login/read-sqlite", Fixture, NULL, fixture_setup, test_read_sqlite,
              fixture_teardown);
  g_test_add ("/kiro-login/refresh-social", Fixture, NULL, fixture_setup, test_refresh_social,
              fixture_teardown);
  g_test_add ("/kiro-login/refresh-idc", Fixture, NULL, fixture_setup, test_refresh_idc,
              fixture_teardown);
  g_test_add ("/kiro-login/refresh-refused", Fixture, NULL, fixture_setup, test_refresh_refused,
              fixture_teardown);

  return g_test_run ();
}
