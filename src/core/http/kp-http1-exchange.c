/* kp-http1-exchange.c: one request and its answer on the local server
 *
 * How a request's head is read (line, headers, the body's framing), what
 * the server's owner sees of a request (method, path, headers, body) and how
 * it answers: a whole answer, written with its head in one system
 * call, or a stream of chunks, each in one system call, the first with the
 * head. The connection's side is in kp-http1-server.c.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include <string.h>

#include "kp-http1-server-private.h"

/* The answer's head ------------------------------------------------------- */

static const char *
http_date (KpHttp1Server *self)
{
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;

  if (now != self->date_second)
    {
      g_autoptr(GDateTime) time = g_date_time_new_from_unix_utc (now);
      g_autofree char *text = time != NULL ? soup_date_time_to_string (time, SOUP_DATE_HTTP) : NULL;

      g_strlcpy (self->date, text != NULL ? text : "", sizeof self->date);
      self->date_second = now;
    }
  return self->date;
}

gboolean
kp_exchange_status_has_no_body (guint status)
{
  return (status >= 100 && status < 200) || status == 204 || status == 304;
}

static gboolean
is_clean (const char *text)
{
  return strpbrk (text, "\r\n") == NULL;
}

static void
append_header (GString    *head,
               const char *name,
               const char *value)
{
  g_string_append (head, name);
  g_string_append_len (head, ": ", 2);
  g_string_append (head, value);
  g_string_append_len (head, "\r\n", 2);
}

static void
append_number (GString *head,
               guint64  value)
{
  char digits[24];
  gsize n = sizeof digits;

  do
    {
      digits[--n] = '0' + value % 10;
      value /= 10;
    }
  while (value != 0);
  g_string_append_len (head, digits + n, sizeof digits - n);
}

/* The status line and headers of @exchange's answer. A whole answer says its
 * length; a stream goes as chunks (HTTP/1.0: until the connection closes).
 */
static GString *
build_head (KpExchange *exchange,
            gboolean    stream,
            gsize       length)
{
  KpHttp1Server *self = exchange->conn->server;
  GString *head = g_string_sized_new (256);
  SoupMessageHeadersIter iter;
  const char *name, *value;
  const char *phrase;

  if (exchange->status == 0)
    exchange->status = SOUP_STATUS_INTERNAL_SERVER_ERROR;
  phrase = exchange->status == STATUS_HEADERS_TOO_LARGE ? "Request Header Fields Too Large"
                                                         : soup_status_get_phrase (exchange->status);

  g_string_append_len (head, "HTTP/1.1 ", 9);
  append_number (head, exchange->status);
  g_string_append_c (head, ' ');
  g_string_append (head, phrase != NULL ? phrase : "Unknown");
  g_string_append_len (head, "\r\n", 2);
  append_header (head, "Date", http_date (self));
  append_header (head, "Server", self->server_name);

  soup_message_headers_iter_init (&iter, exchange->response_headers);
  while (soup_message_headers_iter_next (&iter, &name, &value))
    {
      /* Framing is the server's; a line break would split the answer. */
      if (g_ascii_strcasecmp (name, "Content-Length") == 0 ||
          g_ascii_strcasecmp (name, "Transfer-Encoding") == 0 ||
          g_ascii_strcasecmp (name, "Connection") == 0 ||
          !is_clean (name) || !is_clean (value))
        continue;
      append_header (head, name, value);
    }

  if (kp_exchange_status_has_no_body (exchange->status))
    ;
  else if (stream && exchange->chunked_out)
    append_header (head, "Transfer-Encoding", "chunked");
  else if (!stream)
    {
      g_string_append_len (head, "Content-Length: ", 16);
      append_number (head, length);
      g_string_append_len (head, "\r\n", 2);
    }

  /* HTTP/1.0 has no chunks: a stream ends with the connection. */
  if (stream && !exchange->chunked_out)
    exchange->keep_alive = FALSE;
  if (!exchange->keep_alive)
    append_header (head, "Connection", "close");
  else if (exchange->version == SOUP_HTTP_1_0)
    append_header (head, "Connection", "keep-alive");
  g_string_append_len (head, "\r\n", 2);
  exchange->head_written = TRUE;
  return head;
}

/* Writes @exchange's whole answer, head and body in one system call. */
void
kp_exchange_send_whole (KpExchange *exchange,
                        gboolean    from_owner)
{
  Conn *conn = exchange->conn;
  gsize length = 0;
  const char *body = exchange->response ? g_bytes_get_data (exchange->response, &length) : NULL;
  g_autoptr(GString) head = NULL;
  struct iovec iov[2];
  int n = 1;

  if (kp_exchange_status_has_no_body (exchange->status == 0 ? 500 : exchange->status))
    length = 0;
  head = build_head (exchange, FALSE, length);
  iov[0].iov_base = head->str;
  iov[0].iov_len = head->len;
  if (length > 0 && exchange->method != SOUP_METHOD_HEAD)
    {
      iov[1].iov_base = (char *)body;
      iov[1].iov_len = length;
      n = 2;
    }
  if (kp_server_conn_write (conn, iov, n))
    kp_server_conn_answer_written (conn, from_owner);
}

/* Reading a request's head -------------------------------------------------- */

static gboolean
all_digits (const char *text)
{
  if (*text == '\0')
    return FALSE;
  for (; *text != '\0'; text++)
    if (!g_ascii_isdigit (*text))
      return FALSE;
  return TRUE;
}

/* The interned name of a method HTTP defines, or NULL. A client's own
 * method is not interned: the table would grow with every name sent.
 */
static const char *
known_method (const char *method)
{
  const char * const known[] = {
    SOUP_METHOD_GET, SOUP_METHOD_POST, SOUP_METHOD_HEAD, SOUP_METHOD_OPTIONS,
    SOUP_METHOD_PUT, SOUP_METHOD_DELETE, SOUP_METHOD_CONNECT, SOUP_METHOD_TRACE,
  };

  for (guint i = 0; i < G_N_ELEMENTS (known); i++)
    if (strcmp (method, known[i]) == 0)
      return known[i];
  return NULL;
}

/* Splits the request target into path and query. */
static gboolean
set_target (KpExchange *exchange,
            const char *target)
{
  const char *question;

  if (g_ascii_strncasecmp (target, "http://", 7) == 0)
    {
      /* The absolute form: the path follows the authority. */
      target = strchr (target + 7, '/');
      if (target == NULL)
        target = "/";
    }
  else if (strcmp (target, "*") == 0)
    {
      exchange->path = g_strdup ("*");
      return TRUE;
    }
  if (target[0] != '/')
    return FALSE;

  question = strchr (target, '?');
  if (question != NULL)
    {
      exchange->path = g_strndup (target, question - target);
      exchange->query = g_strdup (question + 1);
    }
  else
    exchange->path = g_strdup (target);
  return TRUE;
}

/**
 * kp_exchange_read_head:
 * @data: the request's head, @len bytes up to and with its blank line
 * @has_body: (out): whether a body follows
 * @message: (out): why the request is refused, when it is
 *
 * Reads a request's line and headers, and how its body is framed, into
 * @exchange.
 *
 * Returns: %SOUP_STATUS_OK, or the status to refuse the request with
 */
guint
kp_exchange_read_head (KpExchange  *exchange,
                       const char  *data,
                       gsize        len,
                       gboolean    *has_body,
                       const char **message)
{
  g_autofree char *method = NULL;
  g_autofree char *target = NULL;
  const char *connection;
  const char *length;
  const char *coding;
  guint lines = 0;
  guint status;

  for (gsize i = 0; i < len; i++)
    lines += data[i] == '\n';
  if (lines > KP_HTTP1_HEADERS_MAX + 2)
    {
      *message = "Too many request headers.";
      return STATUS_HEADERS_TOO_LARGE;
    }

  status = soup_headers_parse_request (data, (int)len, exchange->request_headers,
                                       &method, &target, &exchange->version);
  if (status != SOUP_STATUS_OK)
    {
      *message = "The request's head is not valid HTTP/1.1.";
      return status;
    }
  exchange->method = known_method (method);
  if (exchange->method == NULL)
    exchange->method = exchange->method_other = g_steal_pointer (&method);
  if (!set_target (exchange, target))
    {
      *message = "The request's target is not a path.";
      return SOUP_STATUS_BAD_REQUEST;
    }

  connection = soup_message_headers_get_list (exchange->request_headers, "Connection");
  if (exchange->version == SOUP_HTTP_1_0)
    exchange->keep_alive = connection != NULL &&
                           soup_header_contains (connection, "keep-alive");
  else
    exchange->keep_alive = connection == NULL || !soup_header_contains (connection, "close");
  exchange->chunked_out = exchange->version != SOUP_HTTP_1_0;

  length = soup_message_headers_get_list (exchange->request_headers, "Content-Length");
  coding = soup_message_headers_get_list (exchange->request_headers, "Transfer-Encoding");
  *has_body = FALSE;
  if (coding != NULL)
    {
      if (length != NULL || g_ascii_strcasecmp (coding, "chunked") != 0)
        {
          *message = length != NULL ? "The request has both a length and chunks."
                                    : "Only chunked request bodies are understood.";
          return length != NULL ? SOUP_STATUS_BAD_REQUEST : SOUP_STATUS_NOT_IMPLEMENTED;
        }
      exchange->chunked_in = TRUE;
      kp_http1_parser_init (&exchange->chunks);
      exchange->chunks.state = KP_HTTP1_CHUNK_SIZE;
      *has_body = TRUE;
    }
  else if (length != NULL)
    {
      if (!all_digits (length) || strlen (length) > 18)
        {
          *message = "The request's Content-Length is not a length.";
          return SOUP_STATUS_BAD_REQUEST;
        }
      exchange->body_left = g_ascii_strtoull (length, NULL, 10);
      if (exchange->body_left > BODY_MAX)
        {
          *message = "The request's body is too large.";
          return SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE;
        }
      *has_body = exchange->body_left > 0;
    }
  return SOUP_STATUS_OK;
}


/* Exchanges ---------------------------------------------------------------- */

KpExchange *
kp_exchange_new (Conn *conn)
{
  KpExchange *exchange = g_new0 (KpExchange, 1);

  g_atomic_ref_count_init (&exchange->refs);
  exchange->conn = conn;
  exchange->request_headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_REQUEST);
  exchange->response_headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
  return exchange;
}

KpExchange *
kp_exchange_ref (KpExchange *exchange)
{
  g_return_val_if_fail (exchange != NULL, NULL);
  g_atomic_ref_count_inc (&exchange->refs);
  return exchange;
}

void
kp_exchange_unref (KpExchange *exchange)
{
  if (exchange == NULL || !g_atomic_ref_count_dec (&exchange->refs))
    return;
  g_assert (exchange->conn == NULL);
  g_free (exchange->method_other);
  g_free (exchange->path);
  g_free (exchange->query);
  g_clear_pointer (&exchange->form, g_hash_table_unref);
  soup_message_headers_unref (exchange->request_headers);
  soup_message_headers_unref (exchange->response_headers);
  g_clear_pointer (&exchange->body, g_byte_array_unref);
  g_clear_pointer (&exchange->response, g_bytes_unref);
  g_free (exchange);
}

/* The exchange's request ---------------------------------------------------- */

const char *
kp_exchange_get_method (KpExchange *exchange)
{
  return exchange->method;
}

const char *
kp_exchange_get_path (KpExchange *exchange)
{
  return exchange->path;
}

/* The query's fields, or NULL without a query. */
GHashTable *
kp_exchange_get_form (KpExchange *exchange)
{
  if (exchange->form == NULL && exchange->query != NULL)
    exchange->form = soup_form_decode (exchange->query);
  return exchange->form;
}

SoupMessageHeaders *
kp_exchange_get_request_headers (KpExchange *exchange)
{
  return exchange->request_headers;
}

/* The body, once: an empty one after the first call. */
GBytes *
kp_exchange_take_body (KpExchange *exchange)
{
  GByteArray *body = g_steal_pointer (&exchange->body);

  return body != NULL ? g_byte_array_free_to_bytes (body) : g_bytes_new (NULL, 0);
}

const char *
kp_exchange_get_remote_host (KpExchange *exchange)
{
  return exchange->conn != NULL ? exchange->conn->remote : NULL;
}

guint
kp_exchange_get_client (KpExchange *exchange)
{
  return exchange->client;
}

void
kp_exchange_set_client (KpExchange *exchange,
                        guint       client)
{
  exchange->client = client;
}

guint
kp_exchange_get_flags (KpExchange *exchange)
{
  return exchange->flags;
}

void
kp_exchange_set_flags (KpExchange *exchange,
                       guint       flags)
{
  exchange->flags = flags;
}

/* The exchange's answer ----------------------------------------------------- */

void
kp_exchange_set_status (KpExchange *exchange,
                        guint       status)
{
  if (!exchange->head_written)
    exchange->status = status;
}

SoupMessageHeaders *
kp_exchange_get_response_headers (KpExchange *exchange)
{
  return exchange->response_headers;
}

/* A whole answer's body; sent when the handler returns, or at unpause. */
void
kp_exchange_set_response (KpExchange *exchange,
                          const char *content_type,
                          GBytes     *body)
{
  if (exchange->head_written)
    return;
  if (content_type != NULL)
    soup_message_headers_replace (exchange->response_headers, "Content-Type", content_type);
  g_clear_pointer (&exchange->response, g_bytes_unref);
  exchange->response = body != NULL ? g_bytes_ref (body) : NULL;
}

void
kp_exchange_take_response (KpExchange *exchange,
                           const char *content_type,
                           char       *body,
                           gsize       length)
{
  g_autoptr(GBytes) bytes = g_bytes_new_take (body, length);

  kp_exchange_set_response (exchange, content_type, bytes);
}

/* The answer waits for kp_exchange_unpause() or the first chunk. */
void
kp_exchange_pause (KpExchange *exchange)
{
  exchange->paused = TRUE;
}

/* Sends the whole answer set so far. */
void
kp_exchange_unpause (KpExchange *exchange)
{
  exchange->paused = FALSE;
  if (exchange->conn == NULL || exchange->over || exchange->in_handler || exchange->head_written)
    return;
  kp_exchange_send_whole (exchange, TRUE);
}

/* Sends @data as the next part of a streamed answer: the head goes with the
 * first.
 */
void
kp_exchange_write_chunk (KpExchange *exchange,
                         const char *data,
                         gsize       length)
{
  static const char digits[] = "0123456789abcdef";
  g_autoptr(GString) head = NULL;
  struct iovec iov[4];
  char size[24];
  gsize n = sizeof size - 2;
  int i = 0;

  if (exchange->conn == NULL || exchange->over || exchange->written || length == 0)
    return;
  if (!exchange->head_written)
    {
      head = build_head (exchange, TRUE, 0);
      iov[i].iov_base = head->str;
      iov[i++].iov_len = head->len;
    }
  if (exchange->method == SOUP_METHOD_HEAD || kp_exchange_status_has_no_body (exchange->status))
    ;
  else if (exchange->chunked_out)
    {
      gsize value = length;

      size[sizeof size - 2] = '\r';
      size[sizeof size - 1] = '\n';
      do
        {
          size[--n] = digits[value & 0xf];
          value >>= 4;
        }
      while (value != 0);
      iov[i].iov_base = size + n;
      iov[i++].iov_len = sizeof size - n;
      iov[i].iov_base = (char *)data;
      iov[i++].iov_len = length;
      iov[i].iov_base = (char *)"\r\n";
      iov[i++].iov_len = 2;
    }
  else
    {
      iov[i].iov_base = (char *)data;
      iov[i++].iov_len = length;
    }
  if (i > 0)
    kp_server_conn_write (exchange->conn, iov, i);
}

/* Ends a streamed answer (one with no chunk yet is an empty stream). */
void
kp_exchange_end_chunks (KpExchange *exchange)
{
  g_autoptr(GString) head = NULL;
  struct iovec iov[2];
  int i = 0;

  if (exchange->conn == NULL || exchange->over || exchange->written)
    return;
  if (!exchange->head_written)
    {
      head = build_head (exchange, TRUE, 0);
      iov[i].iov_base = head->str;
      iov[i++].iov_len = head->len;
    }
  /* HTTP/1.0 has no last chunk: the head said the close ends the body. */
  if (exchange->chunked_out && exchange->method != SOUP_METHOD_HEAD &&
      !kp_exchange_status_has_no_body (exchange->status))
    {
      iov[i].iov_base = (char *)"0\r\n\r\n";
      iov[i++].iov_len = 5;
    }
  if (i == 0 || kp_server_conn_write (exchange->conn, iov, i))
    kp_server_conn_answer_written (exchange->conn, TRUE);
}

gboolean
kp_exchange_is_over (KpExchange *exchange)
{
  return exchange->over;
}

/* @func is called once, when the exchange is over. */
void
kp_exchange_set_done_func (KpExchange         *exchange,
                           KpExchangeDoneFunc  func,
                           gpointer            user_data)
{
  exchange->done = func;
  exchange->done_data = user_data;
}
