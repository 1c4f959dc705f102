/* kp-http1-pool.c: Keypool's own HTTP/1.1 client for relays, and its
 * keep-alive pool
 *
 * The relay's exchange with a provider is the hot path of Keypool, and
 * SoupSession's machinery (a GTask, cancellable sources and queue kicks
 * per request, each a main-loop wakeup) cost more than the relay itself. This
 * client does one request per connection at a time, with one source per
 * connection (kp-http1-conn.c), no GObject signal, and no per-request
 * source.
 *
 * Connections are pooled per scheme, host and port: an idle one is reused
 * most-recently-used first; at most per_host are open or being made at
 * once, and requests beyond that wait in order. Idle connections close
 * after IDLE_TIMEOUT_S (one shared deadline) or when the provider closes
 * them. A reused connection that fails before any byte of the answer is
 * retried once on a new connection; nothing is retried after a byte came.
 *
 * Connections are made with GSocketClient (GLib's resolver and proxy
 * settings); https with TLS from glib-networking (the system CA database),
 * advertising only "http/1.1". Answers may come compressed with gzip or
 * deflate and are decoded here, as libsoup's content decoder did (brotli,
 * which libsoup also took, is not asked for).
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include <string.h>

#include "kp-deadlines.h"

#include "kp-http1-private.h"

#define IDLE_TIMEOUT_S 60

struct _KpHttp1Pool
{
  gatomicrefcount  ref_count;
  guint            per_host;
  GHashTable      *hosts;          /* key → KpHttp1Host */
  GSocketClient   *client;
  GSocketClient   *tls_client;
  GTlsDatabase    *tls_database;   /* tests only; NULL for the system's */
  KpDeadline       idle_deadline;
};

typedef struct
{
  KpHttp1Pool    *pool;
  KpHttp1Host    *host;
  KpHttp1Request *request;   /* NULL once it is gone */
  GCancellable   *cancellable;
} Connect;

static void host_connect       (KpHttp1Host    *host,
                                KpHttp1Request *request);
static void arm_idle_deadline  (KpHttp1Pool    *pool);

static void
host_free (gpointer data)
{
  KpHttp1Host *host = data;
  KpHttp1Conn *conn;

  while ((conn = g_queue_peek_head (&host->idle)) != NULL)
    {
      g_queue_unlink (&host->idle, &conn->link);
      conn->link.data = NULL;
      kp_http1_conn_free (conn);
    }
  g_free (host->key);
  g_free (host->connect_uri);
  g_free (host);
}

static void
on_tls_event (GSocketClient      *client,
              GSocketClientEvent  event,
              GSocketConnectable *connectable,
              GIOStream          *connection,
              KpHttp1Pool        *pool)
{
  static const char * const protocols[] = { "http/1.1", NULL };

  if (event != G_SOCKET_CLIENT_TLS_HANDSHAKING || !G_IS_TLS_CONNECTION (connection))
    return;
  g_tls_connection_set_advertised_protocols (G_TLS_CONNECTION (connection), protocols);
  if (pool->tls_database != NULL)
    g_tls_connection_set_database (G_TLS_CONNECTION (connection), pool->tls_database);
}

static void
on_idle_deadline (KpDeadline *deadline,
                  gpointer    user_data)
{
  KpHttp1Pool *pool = user_data;
  gint64 now = kp_deadlines_now ();
  GHashTableIter iter;
  KpHttp1Host *host;

  g_hash_table_iter_init (&iter, pool->hosts);
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *)&host))
    {
      KpHttp1Conn *conn;

      /* The oldest idle connections are at the tail. */
      while ((conn = g_queue_peek_tail (&host->idle)) != NULL &&
             conn->idle_since + (gint64)IDLE_TIMEOUT_S * G_USEC_PER_SEC <= now)
        kp_http1_host_release (host, conn, FALSE);
    }
  arm_idle_deadline (pool);
}

/* The deadline follows the oldest idle connection of all hosts. */
static void
arm_idle_deadline (KpHttp1Pool *pool)
{
  GHashTableIter iter;
  KpHttp1Host *host;
  gint64 oldest = -1;

  g_hash_table_iter_init (&iter, pool->hosts);
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *)&host))
    {
      KpHttp1Conn *conn = g_queue_peek_tail (&host->idle);

      if (conn != NULL && (oldest == -1 || conn->idle_since < oldest))
        oldest = conn->idle_since;
    }
  if (oldest == -1)
    kp_deadline_clear (&pool->idle_deadline);
  else
    kp_deadline_set (&pool->idle_deadline, oldest + (gint64)IDLE_TIMEOUT_S * G_USEC_PER_SEC);
}

/**
 * kp_http1_pool_new:
 * @per_host: how many connections to one provider at once
 * @use_proxy: whether to ask GLib's proxy resolver (not for this machine)
 */
KpHttp1Pool *
kp_http1_pool_new (guint    per_host,
                   gboolean use_proxy)
{
  KpHttp1Pool *pool = g_new0 (KpHttp1Pool, 1);

  g_return_val_if_fail (per_host > 0, NULL);

  g_atomic_ref_count_init (&pool->ref_count);
  pool->per_host = per_host;
  pool->hosts = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, host_free);
  pool->client = g_socket_client_new ();
  pool->tls_client = g_socket_client_new ();
  g_socket_client_set_enable_proxy (pool->client, use_proxy);
  g_socket_client_set_enable_proxy (pool->tls_client, use_proxy);
  g_socket_client_set_tls (pool->tls_client, TRUE);
  g_signal_connect (pool->tls_client, "event", G_CALLBACK (on_tls_event), pool);
  kp_deadline_init (&pool->idle_deadline, on_idle_deadline, pool);
  return pool;
}

KpHttp1Pool *
kp_http1_pool_ref (KpHttp1Pool *pool)
{
  g_atomic_ref_count_inc (&pool->ref_count);
  return pool;
}

void
kp_http1_pool_unref (KpHttp1Pool *pool)
{
  if (!g_atomic_ref_count_dec (&pool->ref_count))
    return;

  kp_deadline_clear (&pool->idle_deadline);
  g_hash_table_unref (pool->hosts);
  g_signal_handlers_disconnect_by_data (pool->tls_client, pool);
  g_object_unref (pool->client);
  g_object_unref (pool->tls_client);
  g_clear_object (&pool->tls_database);
  g_free (pool);
}

/* Closes every idle connection, as when Keypool stops. */
void
kp_http1_pool_close_idle (KpHttp1Pool *pool)
{
  GHashTableIter iter;
  KpHttp1Host *host;

  g_return_if_fail (pool != NULL);

  g_hash_table_iter_init (&iter, pool->hosts);
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *)&host))
    {
      KpHttp1Conn *conn;

      while ((conn = g_queue_peek_head (&host->idle)) != NULL)
        kp_http1_host_release (host, conn, FALSE);
    }
  kp_deadline_clear (&pool->idle_deadline);
}

void
kp_http1_pool_set_tls_database (KpHttp1Pool  *pool,
                                GTlsDatabase *database)
{
  g_set_object (&pool->tls_database, database);
}

guint
kp_http1_pool_count_idle (KpHttp1Pool *pool)
{
  GHashTableIter iter;
  KpHttp1Host *host;
  guint count = 0;

  g_hash_table_iter_init (&iter, pool->hosts);
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *)&host))
    count += host->idle.length;
  return count;
}

/* Hosts and connections --------------------------------------------------- */

static KpHttp1Host *
get_host (KpHttp1Pool *pool,
          GUri        *uri)
{
  gboolean tls = g_ascii_strcasecmp (g_uri_get_scheme (uri), "https") == 0;
  int port = g_uri_get_port (uri);
  const char *name = g_uri_get_host (uri);
  g_autofree char *bracketed = NULL;
  g_autofree char *key = NULL;
  KpHttp1Host *host;

  if (port == -1)
    port = tls ? 443 : 80;
  if (strchr (name, ':') != NULL)
    name = bracketed = g_strdup_printf ("[%s]", name);
  key = g_strdup_printf ("%s://%s:%d", tls ? "https" : "http", name, port);

  host = g_hash_table_lookup (pool->hosts, key);
  if (host == NULL)
    {
      host = g_new0 (KpHttp1Host, 1);
      host->pool = pool;
      host->tls = tls;
      host->connect_uri = g_strdup_printf ("%s/", key);
      host->key = g_steal_pointer (&key);
      g_hash_table_insert (pool->hosts, host->key, host);
    }
  return host;
}

/* The first waiting request gets a new connection, if there is room. */
static void
serve_waiting (KpHttp1Host *host)
{
  KpHttp1Request *request = g_queue_peek_head (&host->waiting);

  if (request != NULL && host->count < host->pool->per_host)
    {
      g_queue_unlink (&host->waiting, &request->link);
      request->link.data = NULL;
      host_connect (host, request);
    }
}

/* Closes @conn and forgets it, without giving its room to anyone. */
static void
host_drop (KpHttp1Host *host,
           KpHttp1Conn *conn)
{
  if (conn->link.data != NULL)
    {
      g_queue_unlink (&host->idle, &conn->link);
      conn->link.data = NULL;
    }
  g_assert (host->count > 0);
  host->count--;
  kp_http1_conn_free (conn);
}

/**
 * kp_http1_host_release:
 * @reusable: whether @conn may serve another request
 *
 * @conn is done with its request: it serves the next one waiting, waits
 * idle, or is closed.
 */
void
kp_http1_host_release (KpHttp1Host *host,
                       KpHttp1Conn *conn,
                       gboolean     reusable)
{
  KpHttp1Request *next;

  if (conn->request != NULL)
    {
      conn->request->conn = NULL;
      conn->request = NULL;
    }

  if (!reusable)
    {
      host_drop (host, conn);
      serve_waiting (host);
      return;
    }

  next = g_queue_peek_head (&host->waiting);
  if (next != NULL)
    {
      g_queue_unlink (&host->waiting, &next->link);
      next->link.data = NULL;
      kp_http1_conn_start (conn, next);
      return;
    }

  if (conn->link.data == NULL)
    {
      conn->idle_since = kp_deadlines_now ();
      conn->link.data = conn;
      g_queue_push_head_link (&host->idle, &conn->link);
      if (!kp_deadline_is_set (&host->pool->idle_deadline))
        arm_idle_deadline (host->pool);
    }
}

static gboolean
is_stale_error (const GError *error)
{
  return error == NULL ||
         g_error_matches (error, G_IO_ERROR, G_IO_ERROR_PARTIAL_INPUT) ||
         g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED) ||
         g_error_matches (error, G_IO_ERROR, G_IO_ERROR_BROKEN_PIPE) ||
         g_error_matches (error, G_IO_ERROR, G_IO_ERROR_NOT_CONNECTED);
}

/**
 * kp_http1_request_fail:
 * @before_answer: no byte of the answer has come
 *
 * @conn failed @request, and is closed. A connection that had served
 * requests before may have been closed by the provider meanwhile: the
 * request is then tried once more on a new one.
 */
void
kp_http1_request_fail (KpHttp1Request *request,
                       KpHttp1Conn    *conn,
                       GError         *error,
                       gboolean        before_answer)
{
  KpHttp1Host *host = conn->host;
  gboolean retry = before_answer && conn->served > 0 && !request->retried &&
                   is_stale_error (error);

  conn->request = NULL;
  request->conn = NULL;
  host_drop (host, conn);

  if (retry)
    {
      g_debug ("a pooled connection to %s was closed by the provider; trying a new one",
               host->key);
      request->retried = TRUE;
      host_connect (host, request);
      return;
    }

  serve_waiting (host);
  request->state = REQUEST_DONE;
  if (error == NULL)
    {
      g_autoptr(GError) closed =
        g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED,
                             "the provider closed the connection before answering");

      request->callbacks->failed (closed, request->user_data);
      return;
    }
  request->callbacks->failed (error, request->user_data);
}

/* A connection made for @request (NULL when it went away meanwhile) is up,
 * or failed with @error.
 */
static void
connected (KpHttp1Host       *host,
           KpHttp1Request    *request,
           GSocketConnection *connection,
           const GError      *error)
{
  if (connection == NULL)
    {
      g_assert (host->count > 0);
      host->count--;
      serve_waiting (host);
      if (request != NULL)
        {
          request->state = REQUEST_DONE;
          request->callbacks->failed (error, request->user_data);
        }
      return;
    }

  if (request != NULL)
    kp_http1_conn_start (kp_http1_conn_new (host, connection), request);
  else
    kp_http1_host_release (host, kp_http1_conn_new (host, connection), TRUE);
}

static void
on_connected (GObject      *object,
              GAsyncResult *result,
              gpointer      user_data)
{
  Connect *connect = user_data;
  KpHttp1Pool *pool = connect->pool;
  KpHttp1Host *host = connect->host;
  KpHttp1Request *request = connect->request;
  g_autoptr(GError) error = NULL;
  GSocketConnection *connection;

  connection = g_socket_client_connect_to_uri_finish (G_SOCKET_CLIENT (object), result, &error);
  g_object_unref (connect->cancellable);
  g_free (connect);
  if (request != NULL)
    request->connect = NULL;

  /* The pool outlives what the callbacks may free. */
  connected (host, request, connection, error);
  kp_http1_pool_unref (pool);
}

/* Makes a new connection for @request. */
static void
host_connect (KpHttp1Host    *host,
              KpHttp1Request *request)
{
  KpHttp1Pool *pool = host->pool;
  Connect *connect = g_new0 (Connect, 1);

  host->count++;
  connect->pool = kp_http1_pool_ref (pool);
  connect->host = host;
  connect->request = request;
  connect->cancellable = g_cancellable_new ();
  request->state = REQUEST_CONNECTING;
  request->connect = connect;
  g_socket_client_connect_to_uri_async (host->tls ? pool->tls_client : pool->client,
                                        host->connect_uri, host->tls ? 443 : 80,
                                        connect->cancellable, on_connected, connect);
  request->callbacks->connecting (request->user_data);
}

/* Requests ---------------------------------------------------------------- */

static void
append_target (GString    *out,
               const char *text)
{
  /* Whatever made the URI, no space or control byte reaches the wire. */
  for (const guchar *p = (const guchar *)text; *p != '\0'; p++)
    {
      if (*p <= 0x20 || *p >= 0x7f)
        g_string_append_printf (out, "%%%02X", *p);
      else
        g_string_append_c (out, *p);
    }
}

static gboolean
header_is_safe (const char *text)
{
  for (const guchar *p = (const guchar *)text; *p != '\0'; p++)
    if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
      return FALSE;
  return TRUE;
}

static GBytes *
build_head (GUri               *uri,
            const char         *method,
            SoupMessageHeaders *headers,
            gsize               body_len)
{
  GString *out = g_string_sized_new (1024);
  const char *path = g_uri_get_path (uri);
  const char *query = g_uri_get_query (uri);
  const char *host = g_uri_get_host (uri);
  int port = g_uri_get_port (uri);
  gboolean tls = g_ascii_strcasecmp (g_uri_get_scheme (uri), "https") == 0;
  SoupMessageHeadersIter iter;
  const char *name, *value;

  g_string_append (out, method);
  g_string_append_c (out, ' ');
  append_target (out, path != NULL && *path != '\0' ? path : "/");
  if (query != NULL)
    {
      g_string_append_c (out, '?');
      append_target (out, query);
    }
  g_string_append (out, " HTTP/1.1\r\nHost: ");
  if (strchr (host, ':') != NULL)
    {
      g_string_append_c (out, '[');
      g_string_append (out, host);
      g_string_append_c (out, ']');
    }
  else
    g_string_append (out, host);
  if (port != -1 && port != (tls ? 443 : 80))
    g_string_append_printf (out, ":%d", port);
  g_string_append (out, "\r\n");

  if (soup_message_headers_get_one (headers, "User-Agent") == NULL)
    g_string_append (out, "User-Agent: Keypool/" PACKAGE_VERSION "\r\n");
  if (soup_message_headers_get_one (headers, "Accept-Encoding") == NULL)
    g_string_append (out, "Accept-Encoding: gzip, deflate\r\n");

  soup_message_headers_iter_init (&iter, headers);
  while (soup_message_headers_iter_next (&iter, &name, &value))
    {
      /* Framing and the connection are this client's business. */
      if (g_ascii_strcasecmp (name, "Host") == 0 ||
          g_ascii_strcasecmp (name, "Content-Length") == 0 ||
          g_ascii_strcasecmp (name, "Transfer-Encoding") == 0 ||
          g_ascii_strcasecmp (name, "Connection") == 0 ||
          g_ascii_strcasecmp (name, "Keep-Alive") == 0)
        continue;
      if (!header_is_safe (name) || !header_is_safe (value))
        {
          g_debug ("a header with a control character was left out of the request");
          continue;
        }
      /* Appended, not printed: a request has a dozen headers. */
      g_string_append (out, name);
      g_string_append_len (out, ": ", 2);
      g_string_append (out, value);
      g_string_append_len (out, "\r\n", 2);
    }
  g_string_append_printf (out, "Content-Length: %" G_GSIZE_FORMAT "\r\n\r\n", body_len);
  return g_string_free_to_bytes (out);
}

/**
 * kp_http1_request_new:
 * @uri: an http or https URI
 * @headers: the request's headers; Host and Content-Length are added
 * @body: (nullable): its body
 *
 * Sends a request through @pool. The callbacks tell how it goes; free the
 * request with kp_http1_request_free() at any time, which closes its
 * connection unless the answer was read whole. callbacks->connecting and
 * callbacks->sent may be called from within this call; no other is.
 *
 * Returns: (transfer full): the request
 */
KpHttp1Request *
kp_http1_request_new (KpHttp1Pool            *pool,
                      GUri                   *uri,
                      const char             *method,
                      SoupMessageHeaders     *headers,
                      GBytes                 *body,
                      const KpHttp1Callbacks *callbacks,
                      gpointer                user_data)
{
  KpHttp1Request *request;
  KpHttp1Host *host;
  KpHttp1Conn *conn;

  g_return_val_if_fail (pool != NULL, NULL);
  g_return_val_if_fail (uri != NULL && g_uri_get_host (uri) != NULL, NULL);
  g_return_val_if_fail (callbacks != NULL, NULL);

  kp_http1_pool_ref (pool);
  host = get_host (pool, uri);
  request = g_new0 (KpHttp1Request, 1);
  request->host = host;
  request->callbacks = callbacks;
  request->user_data = user_data;
  request->body = body != NULL ? g_bytes_ref (body) : g_bytes_new_static ("", 0);
  request->head = build_head (uri, method, headers, g_bytes_get_size (request->body));

  conn = g_queue_peek_head (&host->idle);
  if (conn != NULL)
    {
      g_queue_unlink (&host->idle, &conn->link);
      conn->link.data = NULL;
      kp_http1_conn_start (conn, request);
    }
  else if (host->count < pool->per_host)
    host_connect (host, request);
  else
    {
      request->state = REQUEST_QUEUED;
      request->link.data = request;
      g_queue_push_tail_link (&host->waiting, &request->link);
    }
  return request;
}

/* The compressed stream ended: the body's framing is read to its end (a
 * chunked body's last chunk), so that the connection can serve again. What
 * else a provider sends after the stream's end is dropped, up to a bound;
 * past it, the connection is closed rather than read on.
 */
static gssize
finish_framing (KpHttp1Request *request,
                GError        **error)
{
  while (!request->framed_done && request->conn != NULL)
    {
      guint8 scratch[512];
      gssize n = kp_http1_conn_read_body (request->conn, scratch, sizeof scratch, error);

      if (n < 0)
        return n;
      request->framed_done = n == 0;
      request->dropped += n;
      if (request->dropped > KP_HTTP1_HEAD_MAX)
        break;
    }
  return 0;
}

/* Inflates what is there of a compressed body; reads more when it needs. */
static gssize
read_inflated (KpHttp1Request *request,
               guint8         *buffer,
               gsize           size,
               GError        **error)
{
  for (;;)
    {
      gsize avail = request->coded->len - request->coded_start;
      gsize old_len;
      gssize n;

      if (request->inflated_done)
        return finish_framing (request, error);
      if (request->framed_done && request->coded_total == 0)
        return 0;

      if (avail > 0 || request->framed_done)
        {
          g_autoptr(GError) local = NULL;
          gsize used = 0, made = 0;
          GConverterResult result =
            g_converter_convert (request->inflater, request->coded->data + request->coded_start,
                                 avail, buffer, size,
                                 request->framed_done ? G_CONVERTER_INPUT_AT_END
                                                      : G_CONVERTER_NO_FLAGS,
                                 &used, &made, &local);

          if (result == G_CONVERTER_ERROR &&
              !(g_error_matches (local, G_IO_ERROR, G_IO_ERROR_PARTIAL_INPUT) &&
                !request->framed_done))
            {
              g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                           "the provider's compressed answer is malformed: %s", local->message);
              return -1;
            }
          if (result != G_CONVERTER_ERROR)
            {
              request->coded_start += used;
              request->inflated_done = result == G_CONVERTER_FINISHED;
              if (made > 0)
                return made;
              if (used > 0 || request->inflated_done)
                continue;
            }
        }

      /* More of the framed body, after what is left of it. */
      g_byte_array_remove_range (request->coded, 0, request->coded_start);
      request->coded_start = 0;
      old_len = request->coded->len;
      g_byte_array_set_size (request->coded, old_len + KP_HTTP1_BUFFER_SIZE);
      n = request->conn != NULL
            ? kp_http1_conn_read_body (request->conn, request->coded->data + old_len,
                                       KP_HTTP1_BUFFER_SIZE, error)
            : 0;
      g_byte_array_set_size (request->coded, old_len + MAX (n, 0));
      if (n < 0)
        return n;
      request->framed_done = n == 0;
      request->coded_total += n;
    }
}

/**
 * kp_http1_request_read:
 *
 * Reads the answer's body without blocking, once callbacks->head came.
 *
 * Returns: the bytes read into @buffer, 0 at the body's end,
 *   %KP_HTTP1_WOULD_BLOCK when none are there yet (callbacks->readable
 *   follows), or -1 with @error set
 */
gssize
kp_http1_request_read (KpHttp1Request *request,
                       guint8         *buffer,
                       gsize           size,
                       GError        **error)
{
  g_return_val_if_fail (request != NULL, -1);
  g_return_val_if_fail (size > 0, -1);

  if (request->inflater != NULL)
    return read_inflated (request, buffer, size, error);
  if (request->state == REQUEST_DONE)
    return 0;
  g_return_val_if_fail (request->state == REQUEST_BODY && request->conn != NULL, -1);
  return kp_http1_conn_read_body (request->conn, buffer, size, error);
}

static gboolean
on_again (gpointer user_data)
{
  KpHttp1Request *request = user_data;

  request->again_id = 0;
  request->callbacks->readable (request->user_data);
  return G_SOURCE_REMOVE;
}

/* The reader stopped before the body would block: callbacks->readable soon. */
void
kp_http1_request_again (KpHttp1Request *request)
{
  g_return_if_fail (request != NULL);

  if (request->conn != NULL)
    kp_http1_conn_again (request->conn);
  else if (request->again_id == 0)
    {
      /* The body's last bytes came, and its connection went back to the
       * pool: what the reader has not taken yet (its end, or more of an
       * inflated body) is announced without it.
       */
      request->again_id = g_idle_add (on_again, request);
    }
}

/* Ends @request; a connection still busy with it is closed. */
void
kp_http1_request_free (KpHttp1Request *request)
{
  KpHttp1Host *host;
  KpHttp1Pool *pool;

  if (request == NULL)
    return;

  host = request->host;
  pool = host->pool;
  if (request->conn != NULL)
    kp_http1_host_release (host, request->conn, FALSE);
  if (request->link.data != NULL)
    g_queue_unlink (&host->waiting, &request->link);
  if (request->connect != NULL)
    {
      Connect *connect = request->connect;

      /* A connect that has not finished (a connect timeout) is given up. */
      connect->request = NULL;
      g_cancellable_cancel (connect->cancellable);
    }
  g_clear_handle_id (&request->again_id, g_source_remove);
  g_clear_object (&request->inflater);
  g_clear_pointer (&request->coded, g_byte_array_unref);
  g_bytes_unref (request->head);
  g_bytes_unref (request->body);
  g_free (request);
  kp_http1_pool_unref (pool);
}
