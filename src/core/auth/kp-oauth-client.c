/* kp-oauth-client.c: an OAuth application, as a provider file describes it
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include <string.h>

#include "kp-oauth-client.h"
#include "codec/kp-json-guard.h"
#include "kp-credential.h"
#include "kp-http.h"
#include "wire/kp-wire-json.h"

#define MAX_SCOPES 32
#define MAX_AUTH_PARAMS 16
#define MAX_FIELD 2048

G_DEFINE_BOXED_TYPE (KpOAuthClient, kp_oauth_client, kp_oauth_client_copy, kp_oauth_client_free)
G_DEFINE_QUARK (kp-oauth-error-quark, kp_oauth_error)

void
kp_oauth_client_free (KpOAuthClient *client)
{
  if (client == NULL)
    return;
  g_free (client->token_url);
  g_free (client->auth_url);
  g_free (client->client_id);
  g_free (client->client_secret);
  g_strfreev (client->scopes);
  g_free (client->redirect_path);
  g_strfreev (client->auth_params);
  g_free (client->import_file);
  g_free (client->account_setup);
  g_free (client->device_code_url);
  g_free (client->manage_url);
  g_free (client);
}

KpOAuthClient *
kp_oauth_client_copy (const KpOAuthClient *client)
{
  KpOAuthClient *copy;

  if (client == NULL)
    return NULL;
  copy = g_new0 (KpOAuthClient, 1);
  copy->token_url = g_strdup (client->token_url);
  copy->auth_url = g_strdup (client->auth_url);
  copy->client_id = g_strdup (client->client_id);
  copy->client_secret = g_strdup (client->client_secret);
  copy->scopes = g_strdupv (client->scopes);
  copy->redirect_port = client->redirect_port;
  copy->redirect_path = g_strdup (client->redirect_path);
  copy->auth_params = g_strdupv (client->auth_params);
  copy->import_file = g_strdup (client->import_file);
  copy->account_setup = g_strdup (client->account_setup);
  copy->flow = client->flow;
  copy->device_code_url = g_strdup (client->device_code_url);
  copy->manage_url = g_strdup (client->manage_url);
  copy->daily_quota_utc_offset_min = client->daily_quota_utc_offset_min;
  return copy;
}

static gboolean
get_text (JsonObject  *object,
          const char  *name,
          gboolean     required,
          char       **out,
          const char  *origin,
          GError     **error)
{
  JsonNode *node = json_object_get_member (object, name);
  const char *value;

  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    {
      if (!required)
        return TRUE;
      g_set_error (error, KP_OAUTH_ERROR, KP_OAUTH_ERROR_INVALID,
                   "%s: “oauth” needs “%s”.", origin, name);
      return FALSE;
    }
  if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_STRING ||
      (value = json_node_get_string (node)) == NULL || *value == '\0' ||
      strlen (value) > MAX_FIELD)
    {
      g_set_error (error, KP_OAUTH_ERROR, KP_OAUTH_ERROR_INVALID,
                   "%s: “oauth.%s” must be a non-empty string of at most %d bytes.",
                   origin, name, MAX_FIELD);
      return FALSE;
    }
  *out = g_strdup (value);
  return TRUE;
}

static gboolean
check_url (const char  *url,
           const char  *name,
           const char  *origin,
           GError     **error)
{
  g_autoptr(GUri) uri = NULL;
  const char *scheme;

  if (url == NULL)
    return TRUE;
  uri = g_uri_parse (url, G_URI_FLAGS_NONE, NULL);
  scheme = uri ? g_uri_get_scheme (uri) : NULL;
  /* Tokens travel over TLS, or stay on this machine. */
  if (uri == NULL || g_uri_get_host (uri) == NULL ||
      !(g_strcmp0 (scheme, "https") == 0 ||
        (g_strcmp0 (scheme, "http") == 0 && kp_http_host_is_loopback (g_uri_get_host (uri)))))
    {
      g_set_error (error, KP_OAUTH_ERROR, KP_OAUTH_ERROR_INVALID,
                   "%s: “oauth.%s” must be an https URL (or http on 127.0.0.1).", origin, name);
      return FALSE;
    }
  return TRUE;
}

const char *
kp_oauth_flow_to_string (KpOAuthFlow flow)
{
  switch (flow)
    {
    case KP_OAUTH_FLOW_DEVICE:
      return "device";
    case KP_OAUTH_FLOW_KIRO:
      return "kiro";
    case KP_OAUTH_FLOW_CODE:
    default:
      return "code";
    }
}

static gboolean
read_flow (JsonObject     *object,
           KpOAuthClient  *client,
           const char     *origin,
           GError        **error)
{
  g_autofree char *flow = NULL;
  JsonNode *node;

  if (!get_text (object, "flow", FALSE, &flow, origin, error))
    return FALSE;
  if (flow == NULL || g_str_equal (flow, "code"))
    client->flow = KP_OAUTH_FLOW_CODE;
  else if (g_str_equal (flow, "device"))
    client->flow = KP_OAUTH_FLOW_DEVICE;
  else if (g_str_equal (flow, "kiro"))
    client->flow = KP_OAUTH_FLOW_KIRO;
  else
    {
      g_set_error (error, KP_OAUTH_ERROR, KP_OAUTH_ERROR_INVALID,
                   "%s: “oauth.flow” is “%s”; the known ones are “code”, “device” and “kiro”.",
                   origin, flow);
      return FALSE;
    }
  if (!get_text (object, "device_code_url", client->flow == KP_OAUTH_FLOW_DEVICE,
                 &client->device_code_url, origin, error) ||
      !get_text (object, "manage_url", FALSE, &client->manage_url, origin, error) ||
      !check_url (client->device_code_url, "device_code_url", origin, error) ||
      !check_url (client->manage_url, "manage_url", origin, error))
    return FALSE;

  client->daily_quota_utc_offset_min = G_MININT;
  node = json_object_get_member (object, "daily_quota_utc_offset_min");
  if (node != NULL)
    {
      gint64 offset = JSON_NODE_HOLDS_VALUE (node) &&
                      json_node_get_value_type (node) == G_TYPE_INT64
                        ? json_node_get_int (node) : G_MININT64;

      if (offset < -14 * 60 || offset > 14 * 60)
        {
          g_set_error (error, KP_OAUTH_ERROR, KP_OAUTH_ERROR_INVALID,
                       "%s: “oauth.daily_quota_utc_offset_min” must be minutes east of UTC "
                       "(-840 to 840).", origin);
          return FALSE;
        }
      client->daily_quota_utc_offset_min = (int)offset;
    }
  return TRUE;
}

/**
 * kp_oauth_client_new_from_json:
 * @object: a provider file's "oauth" object
 * @origin: where it comes from, for errors
 *
 * Returns: (transfer full): the application, or %NULL with @error set
 */
KpOAuthClient *
kp_oauth_client_new_from_json (JsonObject  *object,
                               const char  *origin,
                               GError     **error)
{
  g_autoptr(KpOAuthClient) client = g_new0 (KpOAuthClient, 1);
  g_autoptr(GStrvBuilder) scopes = g_strv_builder_new ();
  g_autoptr(GStrvBuilder) params = g_strv_builder_new ();
  JsonNode *node;

  g_return_val_if_fail (object != NULL, NULL);

  /* Kiro's login names its own refresh endpoint and client: a token_url is
   * only an override (tests), and there is no client id.
   */
  if (!read_flow (object, client, origin, error) ||
      !get_text (object, "token_url", client->flow != KP_OAUTH_FLOW_KIRO, &client->token_url,
                 origin, error) ||
      !get_text (object, "auth_url", FALSE, &client->auth_url, origin, error) ||
      !get_text (object, "client_id", client->flow != KP_OAUTH_FLOW_KIRO, &client->client_id,
                 origin, error) ||
      !get_text (object, "client_secret", FALSE, &client->client_secret, origin, error) ||
      !get_text (object, "redirect_path", FALSE, &client->redirect_path, origin, error) ||
      !get_text (object, "import_file", FALSE, &client->import_file, origin, error) ||
      !get_text (object, "account_setup", FALSE, &client->account_setup, origin, error) ||
      !check_url (client->token_url, "token_url", origin, error) ||
      !check_url (client->auth_url, "auth_url", origin, error))
    return NULL;

  if (client->account_setup != NULL && !g_str_equal (client->account_setup, "code-assist"))
    {
      g_set_error (error, KP_OAUTH_ERROR, KP_OAUTH_ERROR_INVALID,
                   "%s: “oauth.account_setup” is “%s”; the one known is “code-assist”.", origin,
                   client->account_setup);
      return NULL;
    }
  if (client->redirect_path == NULL)
    client->redirect_path = g_strdup ("/oauth2callback");
  if (client->redirect_path[0] != '/')
    {
      g_set_error (error, KP_OAUTH_ERROR, KP_OAUTH_ERROR_INVALID,
                   "%s: “oauth.redirect_path” must start with “/”.", origin);
      return NULL;
    }

  node = json_object_get_member (object, "redirect_port");
  if (node != NULL)
    {
      gint64 port = JSON_NODE_HOLDS_VALUE (node) ? json_node_get_int (node) : -1;

      if (json_node_get_value_type (node) != G_TYPE_INT64 || port < 0 || port > 65535)
        {
          g_set_error (error, KP_OAUTH_ERROR, KP_OAUTH_ERROR_INVALID,
                       "%s: “oauth.redirect_port” must be a port number (0 = any).", origin);
          return NULL;
        }
      client->redirect_port = (guint)port;
    }

  node = json_object_get_member (object, "scopes");
  if (node != NULL)
    {
      JsonArray *array = JSON_NODE_HOLDS_ARRAY (node) ? json_node_get_array (node) : NULL;

      if (array == NULL || json_array_get_length (array) > MAX_SCOPES)
        {
          g_set_error (error, KP_OAUTH_ERROR, KP_OAUTH_ERROR_INVALID,
                       "%s: “oauth.scopes” must be a list of at most %d strings.", origin,
                       MAX_SCOPES);
          return NULL;
        }
      for (guint i = 0; i < json_array_get_length (array); i++)
        {
          const char *scope = kp_json_node_string (json_array_get_element (array, i));

          if (scope == NULL || *scope == '\0' || strchr (scope, ' ') != NULL)
            {
              g_set_error (error, KP_OAUTH_ERROR, KP_OAUTH_ERROR_INVALID,
                           "%s: “oauth.scopes” must hold scope names without spaces.", origin);
              return NULL;
            }
          g_strv_builder_add (scopes, scope);
        }
    }
  client->scopes = g_strv_builder_end (scopes);

  node = json_object_get_member (object, "auth_params");
  if (node != NULL)
    {
      JsonObject *extra = JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
      g_autoptr(GList) names = extra ? json_object_get_members (extra) : NULL;

      if (extra == NULL || json_object_get_size (extra) > MAX_AUTH_PARAMS)
        {
          g_set_error (error, KP_OAUTH_ERROR, KP_OAUTH_ERROR_INVALID,
                       "%s: “oauth.auth_params” must be an object of at most %d strings.",
                       origin, MAX_AUTH_PARAMS);
          return NULL;
        }
      for (GList *l = names; l != NULL; l = l->next)
        {
          JsonNode *value = json_object_get_member (extra, l->data);

          if (!JSON_NODE_HOLDS_VALUE (value) || json_node_get_value_type (value) != G_TYPE_STRING)
            {
              g_set_error (error, KP_OAUTH_ERROR, KP_OAUTH_ERROR_INVALID,
                           "%s: “oauth.auth_params.%s” must be a string.", origin,
                           (const char *)l->data);
              return NULL;
            }
          g_strv_builder_add (params, l->data);
          g_strv_builder_add (params, json_node_get_string (value));
        }
    }
  client->auth_params = g_strv_builder_end (params);

  return g_steal_pointer (&client);
}

void
kp_oauth_grant_free (KpOAuthGrant *grant)
{
  if (grant == NULL)
    return;
  kp_secret_wipe (&grant->access_token);
  kp_secret_wipe (&grant->refresh_token);
  g_free (grant->scope);
  g_free (grant->resource_url);
  g_free (grant);
}

static char *
dup_member_string (JsonObject *object,
                   const char *name)
{
  JsonNode *node = json_object_get_member (object, name);

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node) ||
      json_node_get_value_type (node) != G_TYPE_STRING)
    return NULL;
  return g_strdup (json_node_get_string (node));
}

static void
wipe_free (gpointer data)
{
  char *text = data;

  kp_secret_wipe (&text);
}

typedef struct
{
  char *secrets[3];  /* the form's secrets: none may appear in an error */
} TokenRequest;

static void
token_request_free (TokenRequest *request)
{
  for (guint i = 0; i < G_N_ELEMENTS (request->secrets); i++)
    kp_secret_wipe (&request->secrets[i]);
  g_free (request);
}

static char *
scrub_all (TokenRequest *request,
           const char   *text)
{
  char *clean = g_strdup (text);

  for (guint i = 0; i < G_N_ELEMENTS (request->secrets); i++)
    {
      char *next = kp_secret_scrub (clean, request->secrets[i]);

      g_free (clean);
      clean = next;
    }
  return clean;
}

static void
on_token_answer (GObject      *object,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  TokenRequest *request = g_task_get_task_data (task);
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) body = NULL;
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(KpOAuthGrant) grant = NULL;
  g_autofree char *said = NULL;
  SoupMessage *msg = NULL;
  JsonObject *answer = NULL;
  const char *data;
  gsize len;
  guint status;

  body = kp_http_read_bounded_finish (result, &msg, &error);
  if (body == NULL)
    {
      g_autofree char *clean = scrub_all (request, error->message);

      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        g_task_return_new_error (task, KP_OAUTH_ERROR, KP_OAUTH_ERROR_CANCELLED,
                                 "The token request was cancelled.");
      else
        g_task_return_new_error (task, KP_OAUTH_ERROR, KP_OAUTH_ERROR_FAILED,
                                 "The token endpoint did not answer: %s", clean);
      return;
    }

  status = soup_message_get_status (msg);
  data = g_bytes_get_data (body, &len);
  root = kp_json_parse (data, len, NULL);
  if (root != NULL && JSON_NODE_HOLDS_OBJECT (root))
    answer = json_node_get_object (root);

  if (!SOUP_STATUS_IS_SUCCESSFUL (status))
    {
      g_autofree char *code = answer ? dup_member_string (answer, "error") : NULL;
      g_autofree char *description = answer ? dup_member_string (answer, "error_description")
                                            : NULL;
      g_autofree char *clean = NULL;

      said = g_strdup_printf ("%s%s%s", code ? code : "no reason given",
                              description ? ": " : "", description ? description : "");
      clean = scrub_all (request, said);
      /* A grant the server refuses is dead; anything else may pass. */
      if (status == 400 || status == 401 || status == 403)
        g_task_return_new_error (task, KP_OAUTH_ERROR, KP_OAUTH_ERROR_REFUSED,
                                 "The sign-in was refused (HTTP %u, %.200s).", status, clean);
      else
        g_task_return_new_error (task, KP_OAUTH_ERROR, KP_OAUTH_ERROR_FAILED,
                                 "The token endpoint answered HTTP %u (%.200s).", status, clean);
      return;
    }

  grant = g_new0 (KpOAuthGrant, 1);
  if (answer != NULL)
    {
      JsonNode *expires = json_object_get_member (answer, "expires_in");

      grant->access_token = dup_member_string (answer, "access_token");
      grant->refresh_token = dup_member_string (answer, "refresh_token");
      grant->scope = dup_member_string (answer, "scope");
      grant->resource_url = dup_member_string (answer, "resource_url");
      if (expires != NULL && JSON_NODE_HOLDS_VALUE (expires))
        {
          GType type = json_node_get_value_type (expires);

          if (type == G_TYPE_INT64)
            grant->expires_in = json_node_get_int (expires);
          else if (type == G_TYPE_DOUBLE)
            grant->expires_in = (gint64)json_node_get_double (expires);
          else if (type == G_TYPE_STRING)
            grant->expires_in = g_ascii_strtoll (json_node_get_string (expires), NULL, 10);
        }
    }
  if (grant->access_token == NULL || *grant->access_token == '\0' ||
      strlen (grant->access_token) > 8192 ||
      (grant->refresh_token != NULL && strlen (grant->refresh_token) > 8192))
    {
      g_task_return_new_error (task, KP_OAUTH_ERROR, KP_OAUTH_ERROR_INVALID,
                               "The token endpoint's answer has no usable access token.");
      return;
    }
  /* An hour when not said; never less than a minute nor more than a day. */
  grant->expires_in = grant->expires_in > 0 ? CLAMP (grant->expires_in, 60, 24 * 3600) : 3600;

  g_task_return_pointer (task, g_steal_pointer (&grant), (GDestroyNotify)kp_oauth_grant_free);
}

/**
 * kp_oauth_client_request_token_async:
 * @form: the grant's fields (grant_type, code or refresh_token, …); the
 *   client's id and secret are added
 *
 * Posts a form to the token endpoint and reads its answer.
 */
void
kp_oauth_client_request_token_async (const KpOAuthClient *client,
                                     SoupSession         *session,
                                     GHashTable          *form,
                                     GCancellable        *cancellable,
                                     GAsyncReadyCallback  callback,
                                     gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  g_autoptr(GHashTable) fields = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr(SoupMessage) msg = NULL;
  g_autoptr(GBytes) bytes = NULL;
  TokenRequest *request;
  GHashTableIter iter;
  gpointer name, value;
  char *encoded;

  g_return_if_fail (client != NULL);
  g_return_if_fail (SOUP_IS_SESSION (session));
  g_return_if_fail (form != NULL);

  task = g_task_new (NULL, cancellable, callback, user_data);
  g_task_set_source_tag (task, kp_oauth_client_request_token_async);
  request = g_new0 (TokenRequest, 1);
  request->secrets[0] = g_strdup (g_hash_table_lookup (form, "refresh_token"));
  request->secrets[1] = g_strdup (g_hash_table_lookup (form, "code"));
  request->secrets[2] = g_strdup (g_hash_table_lookup (form, "code_verifier"));
  g_task_set_task_data (task, request, (GDestroyNotify)token_request_free);

  g_hash_table_iter_init (&iter, form);
  while (g_hash_table_iter_next (&iter, &name, &value))
    g_hash_table_insert (fields, name, value);
  g_hash_table_insert (fields, (gpointer)"client_id", client->client_id);
  if (client->client_secret != NULL)
    g_hash_table_insert (fields, (gpointer)"client_secret", client->client_secret);

  encoded = soup_form_encode_hash (fields);
  bytes = g_bytes_new_with_free_func (encoded, strlen (encoded), wipe_free, encoded);
  msg = soup_message_new (SOUP_METHOD_POST, client->token_url);
  if (msg == NULL)
    {
      g_task_return_new_error (task, KP_OAUTH_ERROR, KP_OAUTH_ERROR_INVALID,
                               "The token URL cannot be used.");
      return;
    }
  soup_message_headers_replace (soup_message_get_request_headers (msg), "Accept",
                                "application/json");
  soup_message_set_request_body_from_bytes (msg, "application/x-www-form-urlencoded", bytes);
  kp_http_read_bounded_async (session, msg, KP_OAUTH_MAX_ANSWER, G_PRIORITY_DEFAULT, cancellable,
                              on_token_answer, g_steal_pointer (&task));
}

/**
 * kp_oauth_client_request_token_finish:
 *
 * Returns: (transfer full): what was granted, or %NULL with @error set
 */
KpOAuthGrant *
kp_oauth_client_request_token_finish (GAsyncResult  *result,
                                      GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}
