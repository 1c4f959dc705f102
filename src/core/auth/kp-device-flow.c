/* kp-device-flow.c: an OAuth device sign-in with PKCE (RFC 8628, Qwen Code's)
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include <string.h>

#include <json-glib/json-glib.h>

#include "codec/kp-json-guard.h"
#include "kp-credential.h"
#include "kp-device-flow.h"
#include "kp-http.h"
#include "kp-oauth-client.h"

/* Answers of a device endpoint are small. */
#define MAX_ANSWER (64 * 1024)

struct _KpDeviceFlow
{
  GObject      parent_instance;

  SoupSession *session;
  char        *device_code_url;
  char        *token_url;
  char        *client_id;
  char        *scope;
  char        *verifier;     /* PKCE: 32 random bytes, base64url */
  char        *device_code;
  gint64       deadline_us;  /* monotonic: when the code expires */
  guint        interval_ms;
  guint        polls;
  double       time_scale;   /* tests wait less */
};

G_DEFINE_FINAL_TYPE (KpDeviceFlow, kp_device_flow, G_TYPE_OBJECT)

static void
kp_device_flow_finalize (GObject *object)
{
  KpDeviceFlow *self = KP_DEVICE_FLOW (object);

  g_clear_object (&self->session);
  g_free (self->device_code_url);
  g_free (self->token_url);
  g_free (self->client_id);
  g_free (self->scope);
  kp_secret_wipe (&self->verifier);
  kp_secret_wipe (&self->device_code);
  G_OBJECT_CLASS (kp_device_flow_parent_class)->finalize (object);
}

static void
kp_device_flow_class_init (KpDeviceFlowClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = kp_device_flow_finalize;
}

static void
kp_device_flow_init (KpDeviceFlow *self)
{
  self->interval_ms = KP_DEVICE_FLOW_INTERVAL_MS;
  self->time_scale = 1.0;
}

static char *
base64url (const guint8 *data,
           gsize         len)
{
  char *text = g_base64_encode (data, len);
  gsize n = strlen (text);

  for (gsize i = 0; i < n; i++)
    if (text[i] == '+')
      text[i] = '-';
    else if (text[i] == '/')
      text[i] = '_';
  while (n > 0 && text[n - 1] == '=')
    text[--n] = '\0';
  return text;
}

/* The S256 challenge of a PKCE verifier. */
char *
kp_device_flow_pkce_challenge (const char *verifier)
{
  g_autoptr(GChecksum) checksum = g_checksum_new (G_CHECKSUM_SHA256);
  guint8 digest[32];
  gsize len = sizeof digest;

  g_checksum_update (checksum, (const guchar *)verifier, strlen (verifier));
  g_checksum_get_digest (checksum, digest, &len);
  return base64url (digest, len);
}

/**
 * kp_device_flow_new:
 * @session: where requests go
 * @scope: the scopes, separated by spaces
 */
KpDeviceFlow *
kp_device_flow_new (SoupSession *session,
                    const char  *device_code_url,
                    const char  *token_url,
                    const char  *client_id,
                    const char  *scope)
{
  KpDeviceFlow *self = g_object_new (KP_TYPE_DEVICE_FLOW, NULL);
  guint8 random[32];

  self->session = g_object_ref (session);
  self->device_code_url = g_strdup (device_code_url);
  self->token_url = g_strdup (token_url);
  self->client_id = g_strdup (client_id);
  self->scope = g_strdup (scope);
  for (guint i = 0; i < sizeof random; i += 4)
    {
      guint32 word = g_random_int ();

      memcpy (random + i, &word, 4);
    }
  self->verifier = base64url (random, sizeof random);
  return self;
}

/* Tests: every wait is @scale of what it would be. */
void
kp_device_flow_set_time_scale (KpDeviceFlow *self,
                               double        scale)
{
  self->time_scale = scale;
}

/* The interval polling is at now, as the server slowed it. */
guint
kp_device_flow_get_interval_ms (KpDeviceFlow *self)
{
  return self->interval_ms;
}

guint
kp_device_flow_get_polls (KpDeviceFlow *self)
{
  return self->polls;
}

const char *
kp_device_flow_get_code_verifier (KpDeviceFlow *self)
{
  return self->verifier;
}

void
kp_device_code_free (KpDeviceCode *code)
{
  if (code == NULL)
    return;
  g_free (code->user_code);
  g_free (code->verification_uri);
  g_free (code->verification_uri_complete);
  g_free (code);
}

void
kp_device_grant_free (KpDeviceGrant *grant)
{
  if (grant == NULL)
    return;
  kp_secret_wipe (&grant->access_token);
  kp_secret_wipe (&grant->refresh_token);
  g_free (grant->resource_url);
  g_free (grant);
}

static void
post_form (KpDeviceFlow        *self,
           const char          *url,
           GHashTable          *form,
           GCancellable        *cancellable,
           GAsyncReadyCallback  callback,
           gpointer             user_data)
{
  g_autoptr(SoupMessage) msg = soup_message_new_from_encoded_form (SOUP_METHOD_POST, url,
                                                                   soup_form_encode_hash (form));
  g_autofree char *request_id = g_uuid_string_random ();

  soup_message_headers_replace (soup_message_get_request_headers (msg), "Accept",
                                "application/json");
  soup_message_headers_replace (soup_message_get_request_headers (msg), "x-request-id",
                                request_id);
  kp_http_read_bounded_async (self->session, msg, MAX_ANSWER, G_PRIORITY_DEFAULT, cancellable,
                              callback, user_data);
}

/* A JSON object answer, or NULL. */
static JsonObject *
answer_object (GBytes *body)
{
  g_autoptr(JsonNode) root = NULL;
  gsize len;
  const char *data = body != NULL ? g_bytes_get_data (body, &len) : NULL;

  if (data == NULL || len == 0)
    return NULL;
  root = kp_json_parse (data, len, NULL);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    return NULL;
  return json_object_ref (json_node_get_object (root));
}

static char *
dup_string (JsonObject *object,
            const char *member)
{
  JsonNode *node = object != NULL ? json_object_get_member (object, member) : NULL;

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node) ||
      json_node_get_value_type (node) != G_TYPE_STRING)
    return NULL;
  return g_strdup (json_node_get_string (node));
}

static gint64
get_seconds (JsonObject *object,
             const char *member)
{
  JsonNode *node = object != NULL ? json_object_get_member (object, member) : NULL;

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node) ||
      json_node_get_value_type (node) != G_TYPE_INT64)
    return 0;
  return CLAMP (json_node_get_int (node), 0, G_GINT64_CONSTANT (100) * 365 * 24 * 3600);
}

/* Starting --------------------------------------------------------------- */

static void
on_device_code (GObject      *object,
                GAsyncResult *result,
                gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  KpDeviceFlow *self = g_task_get_source_object (task);
  SoupMessage *msg = NULL;  /* transfer none */
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) body = kp_http_read_bounded_finish (result, &msg, &error);
  g_autoptr(JsonObject) answer = NULL;
  g_autoptr(KpDeviceCode) code = NULL;
  gint64 interval;

  if (body == NULL)
    {
      g_task_return_new_error (task, KP_OAUTH_ERROR,
                               g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED)
                                 ? KP_OAUTH_ERROR_CANCELLED : KP_OAUTH_ERROR_FAILED,
                               "The sign-in could not start: %s", error->message);
      return;
    }
  answer = answer_object (body);
  if (!SOUP_STATUS_IS_SUCCESSFUL (soup_message_get_status (msg)) || answer == NULL)
    {
      g_task_return_new_error (task, KP_OAUTH_ERROR, KP_OAUTH_ERROR_FAILED,
                               "The sign-in could not start: the server answered %u",
                               soup_message_get_status (msg));
      return;
    }

  code = g_new0 (KpDeviceCode, 1);
  code->user_code = dup_string (answer, "user_code");
  code->verification_uri = dup_string (answer, "verification_uri");
  code->verification_uri_complete = dup_string (answer, "verification_uri_complete");
  code->expires_in = get_seconds (answer, "expires_in");
  kp_secret_wipe (&self->device_code);
  self->device_code = dup_string (answer, "device_code");
  if (self->device_code == NULL || code->user_code == NULL ||
      (code->verification_uri == NULL && code->verification_uri_complete == NULL))
    {
      g_task_return_new_error (task, KP_OAUTH_ERROR, KP_OAUTH_ERROR_INVALID,
                               "The sign-in could not start: the answer has no device code, "
                               "user code or page");
      return;
    }
  if (code->expires_in <= 0 || code->expires_in > KP_DEVICE_FLOW_MAX_EXPIRY_S)
    code->expires_in = KP_DEVICE_FLOW_MAX_EXPIRY_S;
  interval = get_seconds (answer, "interval");
  self->interval_ms = interval > 0 ? (guint)MIN (interval * 1000, KP_DEVICE_FLOW_MAX_INTERVAL_MS)
                                   : KP_DEVICE_FLOW_INTERVAL_MS;
  self->deadline_us = g_get_monotonic_time () +
                      (gint64)(code->expires_in * G_USEC_PER_SEC * self->time_scale);
  g_task_return_pointer (task, g_steal_pointer (&code), (GDestroyNotify)kp_device_code_free);
}

/**
 * kp_device_flow_start_async:
 *
 * Asks for a device code, with the PKCE challenge of this flow's verifier.
 */
void
kp_device_flow_start_async (KpDeviceFlow        *self,
                            GCancellable        *cancellable,
                            GAsyncReadyCallback  callback,
                            gpointer             user_data)
{
  GTask *task = g_task_new (self, cancellable, callback, user_data);
  g_autoptr(GHashTable) form = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, g_free);

  g_hash_table_insert (form, (gpointer)"client_id", g_strdup (self->client_id));
  g_hash_table_insert (form, (gpointer)"scope", g_strdup (self->scope));
  g_hash_table_insert (form, (gpointer)"code_challenge",
                       kp_device_flow_pkce_challenge (self->verifier));
  g_hash_table_insert (form, (gpointer)"code_challenge_method", g_strdup ("S256"));
  post_form (self, self->device_code_url, form, cancellable, on_device_code, task);
}

KpDeviceCode *
kp_device_flow_start_finish (KpDeviceFlow  *self,
                             GAsyncResult  *result,
                             GError       **error)
{
  return g_task_propagate_pointer (G_TASK (result), error);
}

/* Polling ---------------------------------------------------------------- */

static void poll_once (GTask *task);

static gboolean
on_wait_over (gpointer user_data)
{
  poll_once (user_data);
  return G_SOURCE_REMOVE;
}

static void
wait_then_poll (GTask *task)
{
  KpDeviceFlow *self = g_task_get_source_object (task);
  guint ms = (guint)MAX (self->interval_ms * self->time_scale, 1);
  g_autoptr(GSource) source = g_timeout_source_new (ms);

  g_source_set_callback (source, on_wait_over, task, NULL);
  g_source_set_static_name (source, "[keypool] device sign-in poll");
  g_source_attach (source, g_main_context_get_thread_default ());
}

static void
on_token (GObject      *object,
          GAsyncResult *result,
          gpointer      user_data)
{
  GTask *task = user_data;
  KpDeviceFlow *self = g_task_get_source_object (task);
  SoupMessage *msg = NULL;  /* transfer none */
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) body = kp_http_read_bounded_finish (result, &msg, &error);
  g_autoptr(JsonObject) answer = NULL;
  g_autofree char *code = NULL;
  g_autoptr(KpDeviceGrant) grant = NULL;

  if (body == NULL)
    {
      g_task_return_new_error (task, KP_OAUTH_ERROR,
                               g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED)
                                 ? KP_OAUTH_ERROR_CANCELLED : KP_OAUTH_ERROR_FAILED,
                               "The sign-in stopped: %s", error->message);
      g_object_unref (task);
      return;
    }
  answer = answer_object (body);
  code = dup_string (answer, "error");

  if (SOUP_STATUS_IS_SUCCESSFUL (soup_message_get_status (msg)) && code == NULL)
    {
      grant = g_new0 (KpDeviceGrant, 1);
      grant->access_token = dup_string (answer, "access_token");
      grant->refresh_token = dup_string (answer, "refresh_token");
      grant->expires_in = get_seconds (answer, "expires_in");
      grant->resource_url = dup_string (answer, "resource_url");
      if (grant->access_token == NULL)
        g_task_return_new_error (task, KP_OAUTH_ERROR, KP_OAUTH_ERROR_INVALID,
                                 "The sign-in's answer has no access token");
      else
        g_task_return_pointer (task, g_steal_pointer (&grant),
                               (GDestroyNotify)kp_device_grant_free);
      g_object_unref (task);
      return;
    }

  if (g_strcmp0 (code, "authorization_pending") == 0)
    ;
  else if (g_strcmp0 (code, "slow_down") == 0)
    self->interval_ms = MIN (self->interval_ms * 3 / 2, KP_DEVICE_FLOW_MAX_INTERVAL_MS);
  else if (g_strcmp0 (code, "expired_token") == 0)
    {
      g_task_return_new_error (task, KP_OAUTH_ERROR, KP_OAUTH_ERROR_REFUSED,
                               "The sign-in code expired before it was approved: sign in again.");
      g_object_unref (task);
      return;
    }
  else if (g_strcmp0 (code, "access_denied") == 0)
    {
      g_task_return_new_error (task, KP_OAUTH_ERROR, KP_OAUTH_ERROR_REFUSED,
                               "The sign-in was refused in the browser.");
      g_object_unref (task);
      return;
    }
  else
    {
      g_task_return_new_error (task, KP_OAUTH_ERROR, KP_OAUTH_ERROR_FAILED,
                               "The sign-in stopped: the server answered %u%s%s",
                               soup_message_get_status (msg), code ? " " : "", code ? code : "");
      g_object_unref (task);
      return;
    }

  if (g_get_monotonic_time () >= self->deadline_us)
    {
      g_task_return_new_error (task, KP_OAUTH_ERROR, KP_OAUTH_ERROR_CANCELLED,
                               "The sign-in timed out: the code was not approved in time.");
      g_object_unref (task);
      return;
    }
  wait_then_poll (task);
}

static void
poll_once (GTask *task)
{
  KpDeviceFlow *self = g_task_get_source_object (task);
  g_autoptr(GHashTable) form = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, g_free);

  if (g_task_return_error_if_cancelled (task))
    {
      g_object_unref (task);
      return;
    }
  self->polls++;
  g_hash_table_insert (form, (gpointer)"grant_type",
                       g_strdup ("urn:ietf:params:oauth:grant-type:device_code"));
  g_hash_table_insert (form, (gpointer)"client_id", g_strdup (self->client_id));
  g_hash_table_insert (form, (gpointer)"device_code", g_strdup (self->device_code));
  g_hash_table_insert (form, (gpointer)"code_verifier", g_strdup (self->verifier));
  post_form (self, self->token_url, form, g_task_get_cancellable (task), on_token, task);
}

/**
 * kp_device_flow_poll_async:
 *
 * Polls until the user approved the code (a grant), refused it, the code
 * expired, or @cancellable was cancelled (%KP_OAUTH_ERROR_CANCELLED).
 */
void
kp_device_flow_poll_async (KpDeviceFlow        *self,
                           GCancellable        *cancellable,
                           GAsyncReadyCallback  callback,
                           gpointer             user_data)
{
  GTask *task = g_task_new (self, cancellable, callback, user_data);

  g_task_set_check_cancellable (task, FALSE);
  if (self->device_code == NULL)
    {
      g_task_return_new_error (task, KP_OAUTH_ERROR, KP_OAUTH_ERROR_FAILED,
                               "The sign-in has not started.");
      g_object_unref (task);
      return;
    }
  wait_then_poll (task);
}

KpDeviceGrant *
kp_device_flow_poll_finish (KpDeviceFlow  *self,
                            GAsyncResult  *result,
                            GError       **error)
{
  GError *inner = NULL;
  KpDeviceGrant *grant = g_task_propagate_pointer (G_TASK (result), &inner);

  if (inner != NULL && inner->domain == G_IO_ERROR && inner->code == G_IO_ERROR_CANCELLED)
    {
      g_set_error_literal (error, KP_OAUTH_ERROR, KP_OAUTH_ERROR_CANCELLED,
                           "The sign-in was cancelled.");
      g_error_free (inner);
      return NULL;
    }
  if (inner != NULL)
    g_propagate_error (error, inner);
  return grant;
}

/**
 * kp_oauth_api_base_from_resource:
 * @resource_url: (nullable): where a login says its account's API is
 *   (Qwen's `resource_url`: a host, or a URL)
 * @fallback: the provider's own base URL
 *
 * Returns: (transfer full): `https://<host>/v1`, or @fallback when
 *   @resource_url is missing or not a plain host
 */
char *
kp_oauth_api_base_from_resource (const char *resource_url,
                                 const char *fallback)
{
  g_autofree char *url = NULL;
  g_autoptr(GUri) uri = NULL;
  const char *path;

  if (resource_url == NULL || *resource_url == '\0')
    return g_strdup (fallback);
  url = strstr (resource_url, "://") != NULL ? g_strdup (resource_url)
                                              : g_strconcat ("https://", resource_url, NULL);
  uri = g_uri_parse (url, G_URI_FLAGS_NONE, NULL);
  if (uri == NULL || g_uri_get_host (uri) == NULL || *g_uri_get_host (uri) == '\0' ||
      g_strcmp0 (g_uri_get_scheme (uri), "https") != 0 || g_uri_get_userinfo (uri) != NULL ||
      g_uri_get_query (uri) != NULL)
    return g_strdup (fallback);
  path = g_uri_get_path (uri);
  while (*path == '/')
    path++;
  if (*path == '\0' || g_str_equal (path, "v1") || g_str_equal (path, "v1/"))
    return g_strdup_printf ("https://%s/v1", g_uri_get_host (uri));
  return g_strdup (fallback);
}
