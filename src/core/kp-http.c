/* kp-http.c: small helpers shared by the server and the relay
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include <string.h>

#include <json-glib/json-glib.h>

#include "kp-anthropic.h"
#include "kp-http.h"

static const char *
error_type_for_status (guint status)
{
  switch (status)
    {
    case 400:
    case 405:
    case 413:
    case 415:
      return "invalid_request_error";
    case 401:
      return "authentication_error";
    case 403:
      return "permission_error";
    case 404:
      return "not_found_error";
    case 429:
      return "rate_limit_error";
    case 503:
    case 529:
      return "overloaded_error";
    default:
      return "api_error";
    }
}

/**
 * kp_http_error_json:
 *
 * Returns: (transfer full): an OpenAI-style error body:
 *   `{"error":{"message","type","param","code"}}`
 */
char *
kp_http_error_json (guint       status,
                    const char *code,
                    const char *message)
{
  g_autoptr(JsonBuilder) builder = json_builder_new_immutable ();
  g_autoptr(JsonNode) root = NULL;

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "error");
  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "message");
  json_builder_add_string_value (builder, message);
  json_builder_set_member_name (builder, "type");
  json_builder_add_string_value (builder, error_type_for_status (status));
  json_builder_set_member_name (builder, "param");
  json_builder_add_null_value (builder);
  json_builder_set_member_name (builder, "code");
  if (code != NULL)
    json_builder_add_string_value (builder, code);
  else
    json_builder_add_null_value (builder);
  json_builder_end_object (builder);
  json_builder_end_object (builder);

  root = json_builder_get_root (builder);
  return json_to_string (root, FALSE);
}

/**
 * kp_http_error_json_for:
 * @dialect: the client's protocol
 *
 * Returns: (transfer full): an error body in @dialect's shape. Anthropic's
 *   is `{"type":"error","error":{"type","message"}}`: it has no code.
 */
char *
kp_http_error_json_for (KpDialect   dialect,
                        guint       status,
                        const char *code,
                        const char *message)
{
  if (dialect == KP_DIALECT_ANTHROPIC)
    return kp_anthropic_error_json (status, message);
  return kp_http_error_json (status, code, message);
}

/**
 * kp_http_client_dialect:
 *
 * Returns: the protocol a client speaks, by the path it asked for:
 *   Anthropic's SDKs use `/v1/messages`
 */
KpDialect
kp_http_client_dialect (SoupServerMessage *msg)
{
  const char *path = g_uri_get_path (soup_server_message_get_uri (msg));

  if (path != NULL && g_str_has_prefix (path, "/v1/messages") &&
      (path[12] == '\0' || path[12] == '/'))
    return KP_DIALECT_ANTHROPIC;
  return KP_DIALECT_OPENAI;
}

/**
 * kp_http_reply_json:
 * @json: (transfer full): the body
 */
void
kp_http_reply_json (SoupServerMessage *msg,
                    guint              status,
                    char              *json)
{
  soup_server_message_set_status (msg, status, NULL);
  soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_TAKE,
                                    json, strlen (json));
}

void
kp_http_reply_error (SoupServerMessage *msg,
                     guint              status,
                     const char        *code,
                     const char        *format,
                     ...)
{
  g_autofree char *message = NULL;
  va_list args;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);

  kp_http_reply_json (msg, status,
                      kp_http_error_json_for (kp_http_client_dialect (msg), status, code, message));
}

/**
 * kp_http_host_is_loopback:
 * @host: (nullable): a Host header value
 *
 * A browser page on another site can resolve its own name to 127.0.0.1 (DNS
 * rebinding) and then talk to Keypool; its requests still carry that site's
 * name in Host. Only loopback names and literals are accepted.
 */
gboolean
kp_http_host_is_loopback (const char *host)
{
  const char *end;
  gsize len;

  if (host == NULL || *host == '\0')
    return FALSE;

  if (host[0] == '[')
    {
      end = strchr (host, ']');
      if (end == NULL || end - host != 4 || memcmp (host, "[::1]", 5) != 0)
        return FALSE;
      end++;
    }
  else
    {
      end = strchr (host, ':');
      if (end == NULL)
        end = host + strlen (host);
    }

  /* An optional port: digits only. */
  if (*end == ':')
    {
      const char *p = end + 1;

      if (*p == '\0')
        return FALSE;
      for (; *p; p++)
        if (!g_ascii_isdigit (*p))
          return FALSE;
    }
  else if (*end != '\0')
    return FALSE;

  if (host[0] == '[')
    return TRUE;

  len = end - host;
  if (len > 0 && host[len - 1] == '.')
    len--;

  if ((len == 9 && g_ascii_strncasecmp (host, "localhost", 9) == 0) ||
      (len == 9 && memcmp (host, "127.0.0.1", 9) == 0))
    return TRUE;

  return len > 10 && g_ascii_strncasecmp (host + len - 10, ".localhost", 10) == 0;
}

/**
 * kp_http_secret_equal:
 *
 * Compares two secrets in time that does not depend on where they differ.
 */
gboolean
kp_http_secret_equal (const char *a,
                      const char *b)
{
  gsize la;
  gsize lb;
  guint8 diff;

  if (a == NULL || b == NULL)
    return FALSE;

  la = strlen (a);
  lb = strlen (b);
  diff = la != lb;
  for (gsize i = 0; i < lb; i++)
    diff |= (guint8)a[i % (la ? la : 1)] ^ (guint8)b[i];

  return diff == 0;
}
