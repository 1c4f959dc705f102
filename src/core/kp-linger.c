/* kp-linger.c: answering on a connection taken from libsoup, and closing it
 *
 * After answering a request whose body it will not read (see kp-server.c),
 * the server writes the answer itself, then reads and drops at most
 * LINGER_BYTES, for at most LINGER_MS, before it closes: closing with unread
 * bytes makes the kernel reset the connection, and a client still sending
 * may then miss the answer.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include "kp-linger.h"
#include "kp-poll-watch.h"

#define LINGER_BYTES (256 * 1024)
#define LINGER_MS    1000

typedef struct
{
  GHashTable  *table;    /* the lingering connections this one is among */
  GIOStream   *stream;
  GSocket     *socket;
  GBytes      *answer;
  gsize        written;
  gsize        drained;
  KpPollWatch *watch;
  guint        timer_id;
} Linger;

static void
linger_free (gpointer data)
{
  Linger *linger = data;

  g_clear_pointer (&linger->watch, kp_poll_watch_free);
  g_clear_handle_id (&linger->timer_id, g_source_remove);
  g_io_stream_close (linger->stream, NULL, NULL);
  g_object_unref (linger->stream);
  g_clear_object (&linger->socket);
  g_clear_pointer (&linger->answer, g_bytes_unref);
  g_free (linger);
}

static void
linger_end (Linger *linger)
{
  g_hash_table_remove (linger->table, linger);
}

static gboolean
on_linger_timeout (gpointer user_data)
{
  Linger *linger = user_data;

  linger->timer_id = 0;
  linger_end (linger);
  return G_SOURCE_REMOVE;
}

static void linger_step (Linger *linger);

static void
on_linger_ready (KpPollWatch  *watch,
                 GIOCondition  condition,
                 gpointer      user_data)
{
  linger_step (user_data);
}

static void
linger_wait (Linger       *linger,
             GIOCondition  condition)
{
  if (linger->watch == NULL)
    linger->watch = kp_poll_watch_new (g_socket_get_fd (linger->socket), condition,
                                       on_linger_ready, linger);
  else
    kp_poll_watch_set_events (linger->watch, condition);
}

/* Writes the answer, then reads and drops what the client still sends. */
static void
linger_step (Linger *linger)
{
  GSocket *socket = linger->socket;
  g_autoptr(GError) error = NULL;
  gsize len;
  const char *data = g_bytes_get_data (linger->answer, &len);
  char buffer[16 * 1024];
  gssize n;

  while (linger->written < len)
    {
      n = g_socket_send_with_blocking (socket, data + linger->written, len - linger->written,
                                       FALSE, NULL, &error);
      if (n < 0 && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
        {
          linger_wait (linger, G_IO_OUT);
          return;
        }
      if (n <= 0)
        {
          linger_end (linger);
          return;
        }
      linger->written += (gsize)n;
      if (linger->written == len)
        {
          g_socket_shutdown (socket, FALSE, TRUE, NULL);
          linger_wait (linger, G_IO_IN);
          return;
        }
    }

  for (;;)
    {
      n = g_socket_receive_with_blocking (socket, buffer, sizeof buffer, FALSE, NULL, &error);
      if (n < 0 && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
        return;
      if (n <= 0 || (linger->drained += (gsize)n) >= LINGER_BYTES)
        break;
    }
  linger_end (linger);
}

/**
 * kp_linger_serialize_answer:
 * @msg: a message whose answer is set
 *
 * Returns: (transfer full): the answer, as libsoup would write it, with
 *   `Connection: close`
 */
GBytes *
kp_linger_serialize_answer (SoupServerMessage *msg)
{
  GString *out = g_string_new (NULL);
  SoupMessageHeaders *headers = soup_server_message_get_response_headers (msg);
  g_autoptr(GBytes) body = soup_message_body_flatten (soup_server_message_get_response_body (msg));
  SoupMessageHeadersIter iter;
  const char *name, *value;
  guint status = soup_server_message_get_status (msg);
  const char *reason = soup_server_message_get_reason_phrase (msg);

  g_string_append_printf (out, "HTTP/1.1 %u %s\r\n", status,
                          reason != NULL ? reason : soup_status_get_phrase (status));
  soup_message_headers_iter_init (&iter, headers);
  while (soup_message_headers_iter_next (&iter, &name, &value))
    if (g_ascii_strcasecmp (name, "Content-Length") != 0 &&
        g_ascii_strcasecmp (name, "Transfer-Encoding") != 0 &&
        g_ascii_strcasecmp (name, "Connection") != 0)
      g_string_append_printf (out, "%s: %s\r\n", name, value);
  g_string_append_printf (out, "Connection: close\r\nContent-Length: %" G_GSIZE_FORMAT "\r\n\r\n",
                          g_bytes_get_size (body));
  g_string_append_len (out, g_bytes_get_data (body, NULL), g_bytes_get_size (body));
  return g_string_free_to_bytes (out);
}

/**
 * kp_linger_table_new:
 *
 * Returns: (transfer full): a set of lingering connections; unreffing it
 *   closes those still open
 */
GHashTable *
kp_linger_table_new (void)
{
  return g_hash_table_new_full (NULL, NULL, linger_free, NULL);
}

/**
 * kp_linger_start:
 * @table: from kp_linger_table_new(); the connection is in it until closed
 * @stream: (transfer full): the connection, taken from libsoup
 * @answer: (transfer full): what to write before closing; empty: nothing
 */
void
kp_linger_start (GHashTable *table,
                 GIOStream  *stream,
                 GBytes     *answer)
{
  Linger *linger = g_new0 (Linger, 1);

  linger->table = table;
  linger->stream = stream;
  linger->socket = g_object_get_data (G_OBJECT (linger->stream), "GSocket");
  linger->answer = answer;
  g_hash_table_add (table, linger);
  if (linger->socket == NULL || g_bytes_get_size (linger->answer) == 0)
    {
      linger_end (linger);
      return;
    }
  g_object_ref (linger->socket);
  linger->timer_id = g_timeout_add (LINGER_MS, on_linger_timeout, linger);
  linger_step (linger);
}
