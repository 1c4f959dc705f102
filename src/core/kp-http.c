/* kp-http.c: small helpers shared by the server and the relay
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include <string.h>

#include <json-glib/json-glib.h>

#include "http/kp-http1-server.h"
#include "kp-http.h"
#include "wire/kp-wire.h"

/**
 * kp_http_client_wire:
 *
 * Returns: the wire a client speaks, by the path it asked for (OpenAI
 *   Chat's for paths no wire serves)
 */
const KpWire *
kp_http_client_wire (KpExchange *exchange)
{
  const KpWire *wire = kp_wire_for_route (kp_exchange_get_path (exchange));

  return wire != NULL ? wire : kp_wire_default ();
}

/**
 * kp_http_set_request_path:
 *
 * Tells @req the path and query @msg asked for (a wire may read its model
 * there).
 */
void
kp_http_set_request_path (KpWireRequest *req,
                          KpExchange    *exchange)
{
  kp_wire_request_set_path (req, kp_exchange_get_path (exchange), kp_exchange_get_form (exchange));
}

/**
 * kp_http_reply_json:
 * @json: (transfer full): the body
 */
void
kp_http_reply_json (KpExchange *exchange,
                    guint       status,
                    char       *json)
{
  kp_exchange_set_status (exchange, status);
  kp_exchange_take_response (exchange, "application/json", json, strlen (json));
}

void
kp_http_reply_error (KpExchange *exchange,
                     guint       status,
                     const char *code,
                     const char *format,
                     ...)
{
  g_autofree char *message = NULL;
  va_list args;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);

  kp_http_reply_json (exchange, status, kp_http_client_wire (exchange)->error_json (status, code, message));
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

/* Reading a provider's whole answer, bounded -------------------------------- */

#define READ_BLOCK 65536

typedef struct
{
  SoupMessage  *msg;
  GInputStream *stream;
  GByteArray   *body;
  gsize         cap;
  int           priority;
} BoundedRead;

static void
bounded_read_free (gpointer data)
{
  BoundedRead *read = data;

  g_clear_object (&read->msg);
  g_clear_object (&read->stream);
  g_clear_pointer (&read->body, g_byte_array_unref);
  g_free (read);
}

static void on_block_read (GObject *object, GAsyncResult *result, gpointer user_data);

static void
read_next_block (GTask *task)
{
  BoundedRead *read = g_task_get_task_data (task);

  g_input_stream_read_bytes_async (read->stream, READ_BLOCK, read->priority,
                                   g_task_get_cancellable (task), on_block_read, task);
}

static void
on_block_read (GObject      *object,
               GAsyncResult *result,
               gpointer      user_data)
{
  GTask *task = user_data;
  BoundedRead *read = g_task_get_task_data (task);
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) block = g_input_stream_read_bytes_finish (G_INPUT_STREAM (object), result, &error);

  if (block == NULL)
    {
      g_task_return_error (task, g_steal_pointer (&error));
      g_object_unref (task);
      return;
    }
  if (g_bytes_get_size (block) == 0)
    {
      g_task_return_pointer (task, g_byte_array_free_to_bytes (g_steal_pointer (&read->body)),
                             (GDestroyNotify)g_bytes_unref);
      g_object_unref (task);
      return;
    }
  if (read->body->len + g_bytes_get_size (block) > read->cap)
    {
      /* Dropping the stream closes the connection: nothing more is read. */
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_MESSAGE_TOO_LARGE,
                               "the answer is larger than %" G_GSIZE_FORMAT " MiB",
                               read->cap / (1024 * 1024));
      g_clear_object (&read->stream);
      g_object_unref (task);
      return;
    }
  g_byte_array_append (read->body, g_bytes_get_data (block, NULL), g_bytes_get_size (block));
  read_next_block (task);
}

static void
on_bounded_sent (GObject      *object,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  GTask *task = user_data;
  BoundedRead *read = g_task_get_task_data (task);
  g_autoptr(GError) error = NULL;

  read->stream = soup_session_send_finish (SOUP_SESSION (object), result, &error);
  if (read->stream == NULL)
    {
      g_task_return_error (task, g_steal_pointer (&error));
      g_object_unref (task);
      return;
    }
  read_next_block (task);
}

/**
 * kp_http_read_bounded_async:
 * @session: the session to send with
 * @msg: the request
 * @cap: the most bytes of answer to read
 *
 * Like soup_session_send_and_read_async(), but an answer larger than @cap
 * is not read past it: the read fails with %G_IO_ERROR_MESSAGE_TOO_LARGE.
 */
void
kp_http_read_bounded_async (SoupSession         *session,
                            SoupMessage         *msg,
                            gsize                cap,
                            int                  priority,
                            GCancellable        *cancellable,
                            GAsyncReadyCallback  callback,
                            gpointer             user_data)
{
  GTask *task = g_task_new (session, cancellable, callback, user_data);
  BoundedRead *read = g_new0 (BoundedRead, 1);

  g_task_set_source_tag (task, kp_http_read_bounded_async);
  read->msg = g_object_ref (msg);
  read->body = g_byte_array_new ();
  read->cap = cap;
  read->priority = priority;
  g_task_set_task_data (task, read, bounded_read_free);
  soup_session_send_async (session, msg, priority, cancellable, on_bounded_sent, task);
}

/**
 * kp_http_read_bounded_finish:
 * @msg: (out) (optional) (transfer none): the request, for its status
 *
 * Returns: (transfer full) (nullable): the answer's body
 */
GBytes *
kp_http_read_bounded_finish (GAsyncResult  *result,
                             SoupMessage  **msg,
                             GError       **error)
{
  g_return_val_if_fail (G_IS_TASK (result), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == kp_http_read_bounded_async, NULL);

  if (msg != NULL)
    *msg = ((BoundedRead *)g_task_get_task_data (G_TASK (result)))->msg;
  return g_task_propagate_pointer (G_TASK (result), error);
}
