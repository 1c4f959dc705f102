/* kp-test-raw.c: a raw HTTP/1.1 client for tests, strict about what comes back
 *
 * A blocking connect, then non-blocking sends and reads pumped while the
 * main loop spins: the server under test runs in the same process. Every
 * answer is parsed strictly (status line, headers, a length or chunks).
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include "config.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "kp-test-raw.h"
#include "kp-test-util.h"

/* KpRaw clients ---------------------------------------------------------------- */

void
kp_raw_answer_free (KpRawAnswer *answer)
{
  soup_message_headers_unref (answer->headers);
  g_string_free (answer->body, TRUE);
  g_free (answer);
}

void
kp_raw_open (KpRaw   *raw,
             guint16 port)
{
  struct sockaddr_in address = { 0 };

  raw->fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  g_assert_cmpint (raw->fd, >=, 0);
  address.sin_family = AF_INET;
  address.sin_port = htons (port);
  address.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
  g_assert_cmpint (connect (raw->fd, (struct sockaddr *)&address, sizeof address), ==, 0);
  raw->got = g_string_new (NULL);
  raw->used = 0;
  raw->closed = FALSE;
  raw->closed_us = 0;
  raw->head_next = FALSE;
  raw->answers = g_ptr_array_new_with_free_func ((GDestroyNotify)kp_raw_answer_free);
  raw->want = 0;
}

void
kp_raw_clear (KpRaw *raw)
{
  if (raw->fd >= 0)
    close (raw->fd);
  raw->fd = -1;
  if (raw->got != NULL)
    g_string_free (raw->got, TRUE);
  raw->got = NULL;
  g_clear_pointer (&raw->answers, g_ptr_array_unref);
}

/* A chunked body from @data; the bytes it took, or 0 while incomplete. */
static gsize
parse_chunked (const char *data,
               gsize      len,
               GString    *body)
{
  gsize pos = 0;

  for (;;)
    {
      const char *eol = g_strstr_len (data + pos, len - pos, "\r\n");
      g_autofree char *digits = NULL;
      guint64 size;

      if (eol == NULL)
        return 0;
      digits = g_strndup (data + pos, eol - (data + pos));
      g_assert_true (g_ascii_string_to_unsigned (digits, 16, 0, G_MAXUINT32, &size, NULL));
      pos = eol - data + 2;
      if (size == 0)
        {
          /* No trailers: the blank line ends the body. */
          if (len - pos < 2)
            return 0;
          g_assert_cmpmem (data + pos, 2, "\r\n", 2);
          return pos + 2;
        }
      if (len - pos < size + 2)
        return 0;
      g_string_append_len (body, data + pos, size);
      g_assert_cmpmem (data + pos + size, 2, "\r\n", 2);
      pos += size + 2;
    }
}

/* Parses the next whole answer in what came; FALSE while there is none. */
static gboolean
raw_parse_next (KpRaw *raw)
{
  const char *data = raw->got->str + raw->used;
  gsize len = raw->got->len - raw->used;
  const char *blank = g_strstr_len (data, len, "\r\n\r\n");
  g_autoptr(SoupMessageHeaders) headers = NULL;
  g_autoptr(GString) body = NULL;
  g_autofree char *phrase = NULL;
  SoupHTTPVersion version;
  KpRawAnswer *answer;
  gboolean chunked = FALSE;
  guint status;
  gsize head_len, body_len;

  if (blank == NULL)
    return FALSE;
  head_len = blank - data + 4;
  g_assert_true (g_str_has_prefix (data, "HTTP/1.1 "));
  headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
  g_assert_true (soup_headers_parse_response (data, (int)head_len, headers, &version,
                                              &status, &phrase));
  body = g_string_new (NULL);

  if (raw->head_next || (status >= 100 && status < 200) || status == 204 || status == 304)
    body_len = 0;
  else if (soup_message_headers_get_one (headers, "Transfer-Encoding") != NULL)
    {
      g_assert_cmpstr (soup_message_headers_get_one (headers, "Transfer-Encoding"), ==, "chunked");
      g_assert_null (soup_message_headers_get_one (headers, "Content-Length"));
      chunked = TRUE;
      body_len = parse_chunked (data + head_len, len - head_len, body);
      if (body_len == 0)
        return FALSE;
    }
  else if (soup_message_headers_get_one (headers, "Content-Length") != NULL)
    {
      guint64 length;

      g_assert_true (g_ascii_string_to_unsigned (soup_message_headers_get_one (headers,
                                                                               "Content-Length"),
                                                 10, 0, G_MAXUINT32, &length, NULL));
      if (len - head_len < length)
        return FALSE;
      body_len = length;
      g_string_append_len (body, data + head_len, length);
    }
  else
    {
      /* Until the connection closes. */
      if (!raw->closed)
        return FALSE;
      body_len = len - head_len;
      g_string_append_len (body, data + head_len, body_len);
    }

  if (status >= 200)
    raw->head_next = FALSE;
  raw->used += head_len + body_len;
  answer = g_new0 (KpRawAnswer, 1);
  answer->status = status;
  answer->headers = g_steal_pointer (&headers);
  answer->body = g_steal_pointer (&body);
  answer->chunked = chunked;
  g_ptr_array_add (raw->answers, answer);
  return TRUE;
}

/* Reads what has come and parses the whole answers in it; TRUE once the
 * server closed the connection.
 */
gboolean
kp_raw_pump (KpRaw *raw)
{
  char buffer[16 * 1024];

  while (!raw->closed)
    {
      gssize n = recv (raw->fd, buffer, sizeof buffer, MSG_DONTWAIT);

      if (n > 0)
        {
          g_string_append_len (raw->got, buffer, n);
          continue;
        }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        break;
      raw->closed = TRUE;
      raw->closed_us = g_get_monotonic_time ();
    }
  while (raw_parse_next (raw))
    ;
  return raw->closed;
}

gboolean
kp_raw_is_closed (gpointer data)
{
  return kp_raw_pump (data);
}

static gboolean
raw_has_wanted (gpointer data)
{
  KpRaw *raw = data;

  kp_raw_pump (raw);
  return raw->answers->len >= raw->want || raw->closed;
}

/* Waits for the @n-th answer on @raw, and returns it. */
KpRawAnswer *
kp_raw_wait_answer (KpRaw *raw,
                    guint n)
{
  raw->want = n;
  g_assert_true (kp_test_spin_until (raw_has_wanted, raw, KP_RAW_WAIT_MS));
  g_assert_cmpuint (raw->answers->len, >=, n);
  return g_ptr_array_index (raw->answers, n - 1);
}

void
kp_raw_wait_closed (KpRaw *raw)
{
  g_assert_true (kp_test_spin_until (kp_raw_is_closed, raw, KP_RAW_WAIT_MS));
}

typedef struct
{
  KpRaw        *raw;
  const char *data;
  gsize       len;
  gsize       sent;
  int         error;
} Sending;

static gboolean
send_more (gpointer user_data)
{
  Sending *sending = user_data;

  while (sending->sent < sending->len)
    {
      gssize n = send (sending->raw->fd, sending->data + sending->sent,
                       sending->len - sending->sent, MSG_NOSIGNAL | MSG_DONTWAIT);

      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return FALSE;
      if (n < 0)
        {
          sending->error = errno;
          return TRUE;
        }
      sending->sent += n;
    }
  return TRUE;
}

/* Sends all of @data, letting the server read meanwhile. */
void
kp_raw_send_len (KpRaw      *raw,
                 const char *data,
                 gsize      len)
{
  Sending sending = { raw, data, len, 0, 0 };

  g_assert_true (kp_test_spin_until (send_more, &sending, KP_RAW_WAIT_MS));
  g_assert_cmpint (sending.error, ==, 0);
}

void
kp_raw_send (KpRaw      *raw,
             const char *text)
{
  kp_raw_send_len (raw, text, strlen (text));
}

/* Waiting on the owner ---------------------------------------------------- */

typedef struct
{
  guint *counter;
  guint  n;
} Count;

static gboolean
count_reached (gpointer data)
{
  Count *count = data;

  return *count->counter >= count->n;
}

void
kp_raw_wait_count (guint *counter,
                   guint n)
{
  Count count = { counter, n };

  g_assert_true (kp_test_spin_until (count_reached, &count, KP_RAW_WAIT_MS));
}

void
kp_raw_assert_header (KpRawAnswer *answer,
                      const char  *name,
                      const char  *value)
{
  g_assert_cmpstr (soup_message_headers_get_one (answer->headers, name), ==, value);
}

