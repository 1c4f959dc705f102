/* kp-kiro-manage.c: a Kiro account's usage limits and models, from Kiro's management API
 *
 * After each refresh of a Kiro account's token (the refresh timer's work),
 * Keypool asks Kiro's management API (§4.2 of the protocol notes) what the
 * account has used of its monthly limit (GET getUsageLimits) and which models
 * it may use (ListAvailableModels). The answers are bounded in size
 * (KP_KIRO_MANAGE_MAX_ANSWER) and depth (kp_json_parse()), and kept as the
 * credential's "quota" and "models" texts, which the window and
 * `keypool keys list` show. The field names of the usage answer are not
 * documented: those read here are the ones gateways report
 * (usageBreakdownList with currentUsage / usageLimit, nextDateReset,
 * subscriptionInfo.subscriptionTitle); an answer without them leaves no text.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include <math.h>
#include <string.h>

#include "kp-gateway-private.h"
#include "kp-http.h"
#include "kp-kiro-manage.h"
#include "auth/kp-kiro-token.h"
#include "codec/kp-json-guard.h"
#include "wire/kp-wire-kiro-private.h"

static JsonNode *
member (JsonObject *object,
        const char *name)
{
  return object != NULL ? json_object_get_member (object, name) : NULL;
}

static gboolean
number_of (JsonObject *object,
           const char *name,
           double     *out)
{
  JsonNode *node = member (object, name);
  GType type;

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node))
    return FALSE;
  type = json_node_get_value_type (node);
  if (type != G_TYPE_INT64 && type != G_TYPE_DOUBLE)
    return FALSE;
  *out = json_node_get_double (node);
  return isfinite (*out) && *out >= 0 && *out < 1e12;
}

static const char *
string_of (JsonObject *object,
           const char *name)
{
  JsonNode *node = member (object, name);

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node) ||
      json_node_get_value_type (node) != G_TYPE_STRING)
    return NULL;
  return json_node_get_string (node);
}

static JsonObject *
object_of (JsonObject *object,
           const char *name)
{
  JsonNode *node = member (object, name);

  return node != NULL && JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
}

/* A time in seconds or milliseconds since 1970, or ISO 8601; 0 if none. */
static gint64
time_of (JsonObject *object,
         const char *name)
{
  JsonNode *node = member (object, name);
  double value;

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node))
    return 0;
  if (json_node_get_value_type (node) == G_TYPE_STRING)
    {
      g_autoptr(GTimeZone) utc = g_time_zone_new_utc ();
      g_autoptr(GDateTime) when = g_date_time_new_from_iso8601 (json_node_get_string (node), utc);

      return when != NULL ? g_date_time_to_unix (when) : 0;
    }
  if (!number_of (object, name, &value))
    return 0;
  return value > 1e11 ? (gint64)(value / 1000) : (gint64)value;
}

static char *
format_amount (double value)
{
  char buffer[G_ASCII_DTOSTR_BUF_SIZE];

  if (value == (double)(gint64)value)
    return g_strdup_printf ("%" G_GINT64_FORMAT, (gint64)value);
  return g_strdup (g_ascii_formatd (buffer, sizeof buffer, "%.1f", value));
}

/**
 * kp_kiro_usage_describe:
 * @answer: getUsageLimits' answer
 * @now: unix s (a reset in the past is not shown)
 *
 * Returns: (transfer full) (nullable): "KIRO FREE: 12.5 of 50 credits used
 *   this month, resets 2027-01-01", or %NULL when the answer says nothing known
 */
char *
kp_kiro_usage_describe (JsonObject *answer,
                        gint64      now)
{
  JsonNode *list = member (answer, "usageBreakdownList");
  JsonObject *first = NULL;
  JsonObject *subscription = object_of (answer, "subscriptionInfo");
  const char *title = string_of (subscription, "subscriptionTitle");
  const char *unit;
  double used, limit;
  gint64 reset;
  g_autofree char *used_text = NULL;
  g_autofree char *limit_text = NULL;
  g_autofree char *reset_text = NULL;

  if (list != NULL && JSON_NODE_HOLDS_ARRAY (list) &&
      json_array_get_length (json_node_get_array (list)) > 0)
    {
      JsonNode *node = json_array_get_element (json_node_get_array (list), 0);

      first = JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
    }
  if (first == NULL ||
      !(number_of (first, "currentUsageWithPrecision", &used) ||
        number_of (first, "currentUsage", &used)) ||
      !(number_of (first, "usageLimitWithPrecision", &limit) ||
        number_of (first, "usageLimit", &limit)))
    return NULL;

  unit = string_of (first, "unitPlural");
  if (unit == NULL || strlen (unit) > 32)
    unit = "credits";
  used_text = format_amount (used);
  limit_text = format_amount (limit);
  reset = time_of (answer, "nextDateReset");
  if (reset == 0)
    reset = time_of (first, "nextDateReset");
  if (reset > now)
    {
      g_autoptr(GDateTime) when = g_date_time_new_from_unix_utc (reset);

      reset_text = when != NULL ? g_date_time_format (when, ", resets %Y-%m-%d") : NULL;
    }
  return g_strdup_printf ("%s%s%s of %s %s used this month%s",
                          title != NULL && strlen (title) <= 64 ? title : "",
                          title != NULL && strlen (title) <= 64 ? ": " : "", used_text,
                          limit_text, unit, reset_text ? reset_text : "");
}

/**
 * kp_kiro_models_describe:
 * @answer: ListAvailableModels' answer: {"models":[{"modelId":…},…]}
 *
 * Returns: (transfer full) (nullable): the model ids, comma-separated
 */
char *
kp_kiro_models_describe (JsonObject *answer)
{
  JsonNode *list = member (answer, "models");
  g_autoptr(GString) text = NULL;
  JsonArray *array;

  if (list == NULL || !JSON_NODE_HOLDS_ARRAY (list))
    return NULL;
  array = json_node_get_array (list);
  text = g_string_new (NULL);
  for (guint i = 0, kept = 0; i < json_array_get_length (array) && kept < KP_KIRO_MANAGE_MAX_MODELS;
       i++)
    {
      JsonNode *node = json_array_get_element (array, i);
      const char *id = JSON_NODE_HOLDS_OBJECT (node)
                         ? string_of (json_node_get_object (node), "modelId") : NULL;

      if (id == NULL || *id == '\0' || strlen (id) > 128 || strchr (id, ',') != NULL)
        continue;
      g_string_append_printf (text, "%s%s", kept++ > 0 ? ", " : "", id);
    }
  return text->len > 0 ? g_string_free (g_steal_pointer (&text), FALSE) : NULL;
}

/**
 * kp_kiro_manage_base:
 * @manage_url: (nullable): the provider file's override (tests)
 *
 * Returns: (transfer full): where the management API of @region is
 */
char *
kp_kiro_manage_base (const char *manage_url,
                     const char *region)
{
  if (manage_url != NULL)
    return g_strdup (manage_url);
  return g_strdup_printf ("https://management.%s.kiro.dev", region);
}

/* Reading ------------------------------------------------------------------- */

typedef enum
{
  READ_USAGE,
  READ_MODELS,
} ReadKind;

typedef struct
{
  GWeakRef      gateway;
  KpCredential *credential;
  ReadKind      kind;
} Read;

static void
read_free (Read *read)
{
  g_weak_ref_clear (&read->gateway);
  g_clear_object (&read->credential);
  g_free (read);
}

static void
on_read (GObject      *object,
         GAsyncResult *result,
         gpointer      user_data)
{
  Read *read = user_data;
  g_autoptr(KpGateway) self = g_weak_ref_get (&read->gateway);
  g_autoptr(GError) error = NULL;
  SoupMessage *msg = NULL;
  g_autoptr(GBytes) body = kp_http_read_bounded_finish (result, &msg, &error);
  g_autoptr(JsonNode) root = NULL;
  g_autofree char *text = NULL;

  if (body != NULL && !SOUP_STATUS_IS_SUCCESSFUL (soup_message_get_status (msg)))
    g_set_error (&error, G_IO_ERROR, G_IO_ERROR_FAILED, "HTTP %u", soup_message_get_status (msg));
  else if (body != NULL)
    root = kp_json_parse (g_bytes_get_data (body, NULL), (gssize)g_bytes_get_size (body), &error);

  if (self != NULL && root != NULL && JSON_NODE_HOLDS_OBJECT (root))
    {
      if (read->kind == READ_USAGE)
        text = kp_kiro_usage_describe (json_node_get_object (root),
                                       g_get_real_time () / G_USEC_PER_SEC);
      else
        text = kp_kiro_models_describe (json_node_get_object (root));
      if (text != NULL)
        {
          kp_credential_set_meta (read->credential, read->kind == READ_USAGE ? "quota" : "models",
                                  text);
          kp_gateway_emit_changed (self);
        }
    }
  else if (error != NULL)
    g_debug ("Kiro's %s for key %" G_GINT64_FORMAT " not read: %s",
             read->kind == READ_USAGE ? "usage" : "models",
             kp_credential_get_id (read->credential), error->message);
  read_free (read);
}

static void
send (KpGateway    *self,
      KpCredential *credential,
      ReadKind      kind,
      SoupMessage  *msg,
      const char   *token)
{
  g_autofree char *bearer = g_strconcat ("Bearer ", token, NULL);
  Read *read;

  if (msg == NULL)
    return;
  soup_message_headers_replace (soup_message_get_request_headers (msg), "Authorization", bearer);
  soup_message_headers_replace (soup_message_get_request_headers (msg), "Accept",
                                "application/json");
  kp_secret_wipe (&bearer);
  read = g_new0 (Read, 1);
  g_weak_ref_init (&read->gateway, self);
  read->credential = g_object_ref (credential);
  read->kind = kind;
  kp_http_read_bounded_async (kp_gateway_get_auth_session (self), msg, KP_KIRO_MANAGE_MAX_ANSWER,
                              G_PRIORITY_LOW, NULL, on_read, read);
}

/**
 * kp_kiro_manage_read:
 *
 * Reads the account's usage limits and models in the background; what comes
 * back becomes the credential's "quota" and "models" texts.
 */
void
kp_kiro_manage_read (KpGateway    *self,
                     KpCredential *credential)
{
  KpAuth *auth = kp_credential_get_auth (credential);
  KpKiroToken *token;
  const KpKiroLogin *login;
  const char *access;
  g_autofree char *region = NULL;
  g_autofree char *base = NULL;
  g_autofree char *url = NULL;
  g_autofree char *arn = NULL;
  g_autofree char *body = NULL;
  g_autoptr(GBytes) bytes = NULL;
  g_autoptr(SoupMessage) usage = NULL;
  g_autoptr(SoupMessage) models = NULL;

  if (auth == NULL || !KP_IS_KIRO_TOKEN (auth))
    return;
  token = KP_KIRO_TOKEN (auth);
  login = kp_kiro_token_get_login (token);
  access = kp_auth_token_peek (KP_AUTH_TOKEN (token));
  if (login == NULL || access == NULL || login->profile_arn == NULL)
    return;

  region = kp_kiro_region_of_arn (login->profile_arn);
  base = kp_kiro_manage_base (kp_auth_token_get_client (KP_AUTH_TOKEN (token))->manage_url,
                              region ? region : login->region);
  arn = g_uri_escape_string (login->profile_arn, NULL, FALSE);
  url = g_strdup_printf ("%s/getUsageLimits?isEmailRequired=true&origin=AI_EDITOR&profileArn=%s"
                         "&resourceType=AGENTIC_REQUEST", base, arn);
  usage = soup_message_new (SOUP_METHOD_GET, url);
  send (self, credential, READ_USAGE, usage, access);

  g_free (url);
  url = g_strconcat (base, "/", NULL);
  models = soup_message_new (SOUP_METHOD_POST, url);
  if (models != NULL)
    {
      g_autoptr(JsonBuilder) builder = json_builder_new ();
      g_autoptr(JsonNode) root = NULL;

      json_builder_begin_object (builder);
      json_builder_set_member_name (builder, "origin");
      json_builder_add_string_value (builder, "AI_EDITOR");
      json_builder_set_member_name (builder, "profileArn");
      json_builder_add_string_value (builder, login->profile_arn);
      json_builder_end_object (builder);
      root = json_builder_get_root (builder);
      body = json_to_string (root, FALSE);
      bytes = g_bytes_new (body, strlen (body));
      soup_message_headers_replace (soup_message_get_request_headers (models), "x-amz-target",
                                    "KiroControlPlaneBearerService.ListAvailableModels");
      soup_message_set_request_body_from_bytes (models, "application/x-amz-json-1.0", bytes);
    }
  send (self, credential, READ_MODELS, models, access);
}
