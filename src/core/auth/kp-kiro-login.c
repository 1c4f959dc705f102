/* kp-kiro-login.c: a Kiro sign-in, read from Kiro's own files, and its refresh
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include <string.h>

#include <json-glib/json-glib.h>
#include <sqlite3.h>

#include "codec/kp-json-guard.h"
#include "kp-credential.h"
#include "kp-http.h"
#include "kp-kiro-login.h"
#include "kp-oauth-client.h"

const char *
kp_kiro_auth_method_to_string (KpKiroAuthMethod method)
{
  switch (method)
    {
    case KP_KIRO_AUTH_IDC:
      return "IdC";
    case KP_KIRO_AUTH_SOCIAL:
    default:
      return "social";
    }
}

void
kp_kiro_login_free (KpKiroLogin *login)
{
  if (login == NULL)
    return;
  kp_secret_wipe (&login->access_token);
  kp_secret_wipe (&login->refresh_token);
  kp_secret_wipe (&login->client_secret);
  g_free (login->profile_arn);
  g_free (login->region);
  g_free (login->client_id);
  g_free (login->source);
  g_free (login);
}

static JsonObject *
parse_object (const char  *text,
              gsize        len,
              const char  *what,
              GError     **error)
{
  g_autoptr(JsonNode) root = kp_json_parse (text, len, NULL);

  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    {
      g_set_error (error, KP_OAUTH_ERROR, KP_OAUTH_ERROR_INVALID, "%s is not a JSON object", what);
      return NULL;
    }
  return json_object_ref (json_node_get_object (root));
}

static char *
read_small_file (const char  *path,
                 gsize       *len,
                 GError     **error)
{
  g_autoptr(GFile) file = g_file_new_for_path (path);
  g_autoptr(GFileInfo) info = g_file_query_info (file, G_FILE_ATTRIBUTE_STANDARD_SIZE,
                                                 G_FILE_QUERY_INFO_NONE, NULL, error);
  char *text = NULL;

  if (info == NULL)
    return NULL;
  if (g_file_info_get_size (info) > KP_KIRO_MAX_FILE)
    {
      g_set_error (error, KP_OAUTH_ERROR, KP_OAUTH_ERROR_INVALID,
                   "%s is larger than a Kiro sign-in can be", path);
      return NULL;
    }
  if (!g_file_get_contents (path, &text, len, error))
    return NULL;
  return text;
}

static char *
string_of (JsonObject *object,
           const char *camel,
           const char *snake)
{
  JsonNode *node = object != NULL ? json_object_get_member (object, camel) : NULL;

  if (node == NULL && snake != NULL && object != NULL)
    node = json_object_get_member (object, snake);
  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node) ||
      json_node_get_value_type (node) != G_TYPE_STRING || *json_node_get_string (node) == '\0')
    return NULL;
  return g_strdup (json_node_get_string (node));
}

/* An ISO-8601 time, or a number of seconds (or milliseconds) since 1970. */
static gint64
time_of (JsonObject *object,
         const char *camel,
         const char *snake)
{
  JsonNode *node = json_object_get_member (object, camel);

  if (node == NULL && snake != NULL)
    node = json_object_get_member (object, snake);
  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node))
    return 0;
  if (json_node_get_value_type (node) == G_TYPE_STRING)
    {
      g_autoptr(GTimeZone) utc = g_time_zone_new_utc ();
      g_autoptr(GDateTime) when = g_date_time_new_from_iso8601 (json_node_get_string (node), utc);

      return when != NULL ? g_date_time_to_unix (when) : 0;
    }
  if (json_node_get_value_type (node) == G_TYPE_INT64)
    {
      gint64 value = json_node_get_int (node);

      return value > G_GINT64_CONSTANT (100000000000) ? value / 1000 : MAX (value, 0);
    }
  return 0;
}

static gboolean
is_region (const char *text)
{
  gsize len = text != NULL ? strlen (text) : 0;

  if (len == 0 || len > 32)
    return FALSE;
  for (gsize i = 0; i < len; i++)
    if (!g_ascii_islower (text[i]) && !g_ascii_isdigit (text[i]) && text[i] != '-')
      return FALSE;
  return TRUE;
}

/* The token's fields, in Kiro's camelCase or kiro-cli's snake_case. */
static KpKiroLogin *
login_from_object (JsonObject  *token,
                   const char  *source,
                   GError     **error)
{
  g_autoptr(KpKiroLogin) login = g_new0 (KpKiroLogin, 1);
  g_autofree char *method = string_of (token, "authMethod", "auth_method");

  login->access_token = string_of (token, "accessToken", "access_token");
  login->refresh_token = string_of (token, "refreshToken", "refresh_token");
  login->expires_at = time_of (token, "expiresAt", "expires_at");
  login->profile_arn = string_of (token, "profileArn", "profile_arn");
  login->region = string_of (token, "region", NULL);
  login->source = g_strdup (source);
  if (!is_region (login->region))
    {
      g_free (login->region);
      login->region = g_strdup ("us-east-1");
    }
  login->method = method != NULL && g_ascii_strcasecmp (method, "social") != 0
                    ? KP_KIRO_AUTH_IDC : KP_KIRO_AUTH_SOCIAL;
  if (login->refresh_token == NULL)
    {
      g_set_error (error, KP_OAUTH_ERROR, KP_OAUTH_ERROR_INVALID,
                   "%s holds no refresh token: sign in to Kiro first", source);
      return NULL;
    }
  return g_steal_pointer (&login);
}

static gboolean
take_registration (KpKiroLogin  *login,
                   JsonObject   *registration,
                   GError      **error)
{
  login->client_id = string_of (registration, "clientId", "client_id");
  login->client_secret = string_of (registration, "clientSecret", "client_secret");
  if (login->client_id == NULL || login->client_secret == NULL)
    {
      g_set_error (error, KP_OAUTH_ERROR, KP_OAUTH_ERROR_INVALID,
                   "Kiro's device registration has no client id or secret: sign in to Kiro again");
      return FALSE;
    }
  return TRUE;
}

/**
 * kp_kiro_login_new_from_object:
 * @object: a sign-in in Kiro's fields (what Keypool keeps in the keyring)
 * @source: (nullable): the file it came from, to read again on a refused refresh
 *
 * Returns: (transfer full): the sign-in, or %NULL with @error set
 */
KpKiroLogin *
kp_kiro_login_new_from_object (JsonObject  *object,
                               const char  *source,
                               GError     **error)
{
  g_autoptr(KpKiroLogin) login = login_from_object (object, source ? source : "The sign-in",
                                                    error);

  if (login == NULL)
    return NULL;
  if (source == NULL)
    g_clear_pointer (&login->source, g_free);
  if (login->method == KP_KIRO_AUTH_IDC && !take_registration (login, object, error))
    return NULL;
  return g_steal_pointer (&login);
}

/* A copy a refresh can change while the original stays as it was. */
KpKiroLogin *
kp_kiro_login_copy (const KpKiroLogin *login)
{
  KpKiroLogin *copy = g_new0 (KpKiroLogin, 1);

  copy->method = login->method;
  copy->access_token = g_strdup (login->access_token);
  copy->refresh_token = g_strdup (login->refresh_token);
  copy->expires_at = login->expires_at;
  copy->profile_arn = g_strdup (login->profile_arn);
  copy->region = g_strdup (login->region);
  copy->client_id = g_strdup (login->client_id);
  copy->client_secret = g_strdup (login->client_secret);
  copy->source = g_strdup (login->source);
  return copy;
}

/**
 * kp_kiro_login_read_file:
 * @path: Kiro's kiro-auth-token.json
 *
 * Reads the sign-in, and for an IdC login its device registration from
 * `<clientIdHash>.json` in the same folder.
 */
KpKiroLogin *
kp_kiro_login_read_file (const char  *path,
                         GError     **error)
{
  g_autofree char *text = NULL;
  g_autoptr(JsonObject) token = NULL;
  g_autoptr(KpKiroLogin) login = NULL;
  g_autofree char *hash = NULL;
  gsize len;

  text = read_small_file (path, &len, error);
  if (text == NULL)
    return NULL;
  token = parse_object (text, len, path, error);
  kp_secret_wipe (&text);
  if (token == NULL)
    return NULL;
  login = login_from_object (token, path, error);
  if (login == NULL || login->method != KP_KIRO_AUTH_IDC)
    return g_steal_pointer (&login);

  hash = string_of (token, "clientIdHash", NULL);
  if (hash == NULL || strchr (hash, '/') != NULL || hash[0] == '.')
    {
      g_set_error (error, KP_OAUTH_ERROR, KP_OAUTH_ERROR_INVALID,
                   "%s is an IdC sign-in without its clientIdHash: sign in to Kiro again", path);
      return NULL;
    }
  {
    g_autofree char *dir = g_path_get_dirname (path);
    g_autofree char *name = g_strconcat (hash, ".json", NULL);
    g_autofree char *registration_path = g_build_filename (dir, name, NULL);
    g_autofree char *registration_text = read_small_file (registration_path, &len, error);
    g_autoptr(JsonObject) registration = NULL;

    if (registration_text == NULL)
      return NULL;
    registration = parse_object (registration_text, len, registration_path, error);
    kp_secret_wipe (&registration_text);
    if (registration == NULL || !take_registration (login, registration, error))
      return NULL;
  }
  return g_steal_pointer (&login);
}

static char *
sqlite_value (sqlite3    *db,
              const char *key)
{
  sqlite3_stmt *stmt = NULL;
  char *value = NULL;

  if (sqlite3_prepare_v2 (db, "SELECT value FROM auth_kv WHERE key = ?1", -1, &stmt, NULL) !=
      SQLITE_OK)
    return NULL;
  sqlite3_bind_text (stmt, 1, key, -1, SQLITE_STATIC);
  if (sqlite3_step (stmt) == SQLITE_ROW && sqlite3_column_bytes (stmt, 0) <= KP_KIRO_MAX_FILE)
    value = g_strndup ((const char *)sqlite3_column_text (stmt, 0), sqlite3_column_bytes (stmt, 0));
  sqlite3_finalize (stmt);
  return value;
}

/**
 * kp_kiro_login_read_sqlite:
 * @path: kiro-cli's data.sqlite3, opened read-only
 */
KpKiroLogin *
kp_kiro_login_read_sqlite (const char  *path,
                           GError     **error)
{
  static const char * const token_keys[] = {
    "kirocli:social:token", "kirocli:odic:token", "codewhisperer:odic:token",
    "kirocli:external-idp:token", NULL,
  };
  static const char * const registration_keys[] = {
    "kirocli:odic:device-registration", "codewhisperer:odic:device-registration", NULL,
  };
  g_autofree char *uri = NULL;
  g_autofree char *text = NULL;
  g_autoptr(JsonObject) token = NULL;
  g_autoptr(KpKiroLogin) login = NULL;
  const char *found = NULL;
  sqlite3 *db = NULL;

  uri = g_filename_to_uri (path, NULL, error);
  if (uri == NULL)
    return NULL;
  {
    g_autofree char *ro = g_strconcat (uri, "?mode=ro", NULL);

    if (sqlite3_open_v2 (ro, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, NULL) != SQLITE_OK)
      {
        g_set_error (error, KP_OAUTH_ERROR, KP_OAUTH_ERROR_INVALID,
                     "kiro-cli's database %s cannot be opened: %s", path,
                     db != NULL ? sqlite3_errmsg (db) : "out of memory");
        sqlite3_close (db);
        return NULL;
      }
  }
  sqlite3_busy_timeout (db, 1000);

  for (guint i = 0; token_keys[i] != NULL && text == NULL; i++)
    {
      text = sqlite_value (db, token_keys[i]);
      found = token_keys[i];
    }
  if (text == NULL)
    {
      sqlite3_close (db);
      g_set_error (error, KP_OAUTH_ERROR, KP_OAUTH_ERROR_INVALID,
                   "kiro-cli's database %s holds no sign-in: run “kiro-cli login” first", path);
      return NULL;
    }
  token = parse_object (text, strlen (text), found, error);
  kp_secret_wipe (&text);
  if (token != NULL)
    login = login_from_object (token, path, error);
  if (login != NULL)
    login->method = g_str_has_suffix (found, ":social:token") ? KP_KIRO_AUTH_SOCIAL
                                                             : KP_KIRO_AUTH_IDC;

  if (login != NULL && login->method == KP_KIRO_AUTH_IDC)
    {
      g_autoptr(JsonObject) registration = NULL;

      for (guint i = 0; registration_keys[i] != NULL && text == NULL; i++)
        text = sqlite_value (db, registration_keys[i]);
      if (text != NULL)
        registration = parse_object (text, strlen (text), "kiro-cli's device registration", error);
      kp_secret_wipe (&text);
      if (registration == NULL || !take_registration (login, registration, error))
        {
          if (registration == NULL && error != NULL && *error == NULL)
            g_set_error (error, KP_OAUTH_ERROR, KP_OAUTH_ERROR_INVALID,
                         "kiro-cli's database %s has no device registration: run "
                         "“kiro-cli login” again", path);
          g_clear_pointer (&login, kp_kiro_login_free);
        }
    }
  sqlite3_close (db);
  return g_steal_pointer (&login);
}

/* A source is a token file or kiro-cli's database, told apart by its name. */
KpKiroLogin *
kp_kiro_login_read_source (const char  *path,
                           GError     **error)
{
  if (g_str_has_suffix (path, ".sqlite3") || g_str_has_suffix (path, ".db"))
    return kp_kiro_login_read_sqlite (path, error);
  return kp_kiro_login_read_file (path, error);
}

/* Kiro's token file when there is one, else kiro-cli's database. */
char *
kp_kiro_login_default_source (void)
{
  g_autofree char *file = g_build_filename (g_get_home_dir (), ".aws", "sso", "cache",
                                            "kiro-auth-token.json", NULL);
  g_autofree char *cli = g_build_filename (g_get_user_data_dir (), "kiro-cli", "data.sqlite3",
                                           NULL);

  if (g_file_test (file, G_FILE_TEST_IS_REGULAR))
    return g_steal_pointer (&file);
  if (g_file_test (cli, G_FILE_TEST_IS_REGULAR))
    return g_steal_pointer (&cli);
  return NULL;
}

gboolean
kp_kiro_login_needs_refresh (const KpKiroLogin *login,
                             gint64             now)
{
  return login->access_token == NULL || login->expires_at - now < KP_KIRO_REFRESH_AHEAD_S;
}

/**
 * kp_kiro_login_refresh_message:
 * @endpoint: (nullable): where to send it instead of Kiro's or AWS's (tests)
 *
 * Returns: (transfer full): the refresh request: Kiro's refreshToken for a
 *   social login, SSO-OIDC's CreateToken for an IdC one, both JSON
 */
SoupMessage *
kp_kiro_login_refresh_message (const KpKiroLogin *login,
                               const char        *endpoint)
{
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(GBytes) body = NULL;
  g_autofree char *url = NULL;
  SoupMessage *msg;
  char *json;

  json_builder_begin_object (builder);
  if (login->method == KP_KIRO_AUTH_SOCIAL)
    {
      url = endpoint != NULL ? g_strdup (endpoint)
                             : g_strdup_printf ("https://prod.%s.auth.desktop.kiro.dev/refreshToken",
                                                login->region);
    }
  else
    {
      url = endpoint != NULL ? g_strdup (endpoint)
                             : g_strdup_printf ("https://oidc.%s.amazonaws.com/token", login->region);
      json_builder_set_member_name (builder, "clientId");
      json_builder_add_string_value (builder, login->client_id ? login->client_id : "");
      json_builder_set_member_name (builder, "clientSecret");
      json_builder_add_string_value (builder, login->client_secret ? login->client_secret : "");
      json_builder_set_member_name (builder, "grantType");
      json_builder_add_string_value (builder, "refresh_token");
    }
  json_builder_set_member_name (builder, "refreshToken");
  json_builder_add_string_value (builder, login->refresh_token);
  json_builder_end_object (builder);
  root = json_builder_get_root (builder);
  json = json_to_string (root, FALSE);
  body = g_bytes_new_take (json, strlen (json));

  msg = soup_message_new (SOUP_METHOD_POST, url);
  if (msg == NULL)
    return NULL;
  soup_message_headers_replace (soup_message_get_request_headers (msg), "Accept",
                                "application/json");
  soup_message_set_request_body_from_bytes (msg, "application/json", body);
  return msg;
}

/**
 * kp_kiro_login_take_refresh:
 * @body: a refresh answer: {accessToken, refreshToken?, expiresIn, profileArn?}
 *
 * Keeps the new tokens; a refresh token not given again stays as it was.
 */
gboolean
kp_kiro_login_take_refresh (KpKiroLogin  *login,
                            const char   *body,
                            gsize         len,
                            gint64        now,
                            GError      **error)
{
  g_autoptr(JsonObject) answer = parse_object (body, len, "Kiro's refresh answer", error);
  g_autofree char *access = NULL;
  g_autofree char *refresh = NULL;
  g_autofree char *arn = NULL;
  JsonNode *expires;

  if (answer == NULL)
    return FALSE;
  access = string_of (answer, "accessToken", "access_token");
  if (access == NULL)
    {
      g_set_error_literal (error, KP_OAUTH_ERROR, KP_OAUTH_ERROR_INVALID,
                           "Kiro's refresh answer has no access token");
      return FALSE;
    }
  refresh = string_of (answer, "refreshToken", "refresh_token");
  arn = string_of (answer, "profileArn", NULL);
  expires = json_object_get_member (answer, "expiresIn");

  kp_secret_wipe (&login->access_token);
  login->access_token = g_steal_pointer (&access);
  if (refresh != NULL)
    {
      kp_secret_wipe (&login->refresh_token);
      login->refresh_token = g_steal_pointer (&refresh);
    }
  if (arn != NULL)
    {
      g_free (login->profile_arn);
      login->profile_arn = g_steal_pointer (&arn);
    }
  login->expires_at = now + (expires != NULL && JSON_NODE_HOLDS_VALUE (expires) &&
                                     json_node_get_value_type (expires) == G_TYPE_INT64
                               ? CLAMP (json_node_get_int (expires), 0, 30 * 24 * 3600)
                               : 3600);
  return TRUE;
}

/* Refreshing ------------------------------------------------------------------ */

typedef struct
{
  KpKiroLogin *login;     /* unowned: the caller keeps it alive */
  SoupSession *session;
  char        *endpoint;
  gboolean     reread;    /* the source was read again once already */
} Refresh;

static void
refresh_free (gpointer data)
{
  Refresh *refresh = data;

  g_clear_object (&refresh->session);
  g_free (refresh->endpoint);
  g_free (refresh);
}

static void send_refresh (GTask *task);

static void
on_refreshed (GObject      *object,
              GAsyncResult *result,
              gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  Refresh *refresh = g_task_get_task_data (task);
  SoupMessage *msg = NULL;  /* transfer none */
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) body = kp_http_read_bounded_finish (result, &msg, &error);
  guint status;

  if (body == NULL)
    {
      g_task_return_new_error (task, KP_OAUTH_ERROR,
                               g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED)
                                 ? KP_OAUTH_ERROR_CANCELLED : KP_OAUTH_ERROR_FAILED,
                               "Kiro's sign-in could not be refreshed: %s", error->message);
      return;
    }
  status = soup_message_get_status (msg);
  if (SOUP_STATUS_IS_SUCCESSFUL (status))
    {
      if (!kp_kiro_login_take_refresh (refresh->login, g_bytes_get_data (body, NULL),
                                       g_bytes_get_size (body),
                                       g_get_real_time () / G_USEC_PER_SEC, &error))
        g_task_return_error (task, g_steal_pointer (&error));
      else
        g_task_return_boolean (task, TRUE);
      return;
    }

  if (status == 400 || status == 401 || status == 403)
    {
      /* Kiro may have rotated the refresh token itself: read its file again, once. */
      if (!refresh->reread && refresh->login->source != NULL)
        {
          g_autoptr(KpKiroLogin) again = kp_kiro_login_read_source (refresh->login->source, NULL);

          refresh->reread = TRUE;
          if (again != NULL && g_strcmp0 (again->refresh_token, refresh->login->refresh_token) != 0)
            {
              kp_secret_wipe (&refresh->login->refresh_token);
              refresh->login->refresh_token = g_steal_pointer (&again->refresh_token);
              kp_secret_wipe (&refresh->login->access_token);
              refresh->login->access_token = g_steal_pointer (&again->access_token);
              refresh->login->expires_at = again->expires_at;
              send_refresh (g_steal_pointer (&task));
              return;
            }
        }
      g_task_return_new_error (task, KP_OAUTH_ERROR, KP_OAUTH_ERROR_REFUSED,
                               "Kiro refused to refresh the sign-in (HTTP %u): sign in to Kiro "
                               "again, then import it again", status);
      return;
    }
  g_task_return_new_error (task, KP_OAUTH_ERROR, KP_OAUTH_ERROR_FAILED,
                           "Kiro's sign-in could not be refreshed: HTTP %u", status);
}

static void
send_refresh (GTask *task)
{
  Refresh *refresh = g_task_get_task_data (task);
  g_autoptr(SoupMessage) msg = kp_kiro_login_refresh_message (refresh->login, refresh->endpoint);

  if (msg == NULL)
    {
      g_task_return_new_error (task, KP_OAUTH_ERROR, KP_OAUTH_ERROR_INVALID,
                               "Kiro's refresh address cannot be used");
      g_object_unref (task);
      return;
    }
  kp_http_read_bounded_async (refresh->session, msg, KP_KIRO_MAX_FILE, G_PRIORITY_DEFAULT,
                              g_task_get_cancellable (task), on_refreshed, task);
}

/**
 * kp_kiro_login_refresh_async:
 * @login: the sign-in; it must outlive the call, and takes the new tokens
 * @endpoint: (nullable): where to refresh instead of Kiro's or AWS's (tests)
 *
 * Refreshes the sign-in. A refused refresh reads the sign-in's source once
 * more, in case Kiro rotated the refresh token, and tries with the new one;
 * refused again, it fails with %KP_OAUTH_ERROR_REFUSED.
 */
void
kp_kiro_login_refresh_async (KpKiroLogin         *login,
                             SoupSession         *session,
                             const char          *endpoint,
                             GCancellable        *cancellable,
                             GAsyncReadyCallback  callback,
                             gpointer             user_data)
{
  GTask *task = g_task_new (NULL, cancellable, callback, user_data);
  Refresh *refresh = g_new0 (Refresh, 1);

  refresh->login = login;
  refresh->session = g_object_ref (session);
  refresh->endpoint = g_strdup (endpoint);
  g_task_set_task_data (task, refresh, refresh_free);
  send_refresh (task);
}

gboolean
kp_kiro_login_refresh_finish (GAsyncResult  *result,
                              GError       **error)
{
  return g_task_propagate_boolean (G_TASK (result), error);
}
