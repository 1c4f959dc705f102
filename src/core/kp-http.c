/* kp-http.c: small helpers shared by the server and the relay
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include <string.h>

#include <json-glib/json-glib.h>

#include "kp-http.h"
#include "wire/kp-wire.h"

/**
 * kp_http_client_wire:
 *
 * Returns: the wire a client speaks, by the path it asked for (OpenAI
 *   Chat's for paths no wire serves)
 */
const KpWire *
kp_http_client_wire (SoupServerMessage *msg)
{
  const KpWire *wire = kp_wire_for_route (g_uri_get_path (soup_server_message_get_uri (msg)));

  return wire != NULL ? wire : kp_wire_default ();
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

  kp_http_reply_json (msg, status, kp_http_client_wire (msg)->error_json (status, code, message));
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
