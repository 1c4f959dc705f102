/* kp-server.c: the local HTTP endpoint
 *
 * Every request passes the early handler before its body is read: the Host
 * must be a loopback name (DNS rebinding), a browser Origin must be allowed,
 * /v1 needs the access token, and a body over the limit is refused unread.
 * Every refusal goes through refuse(), which leaves a trace (kp-refusals.c).
 * A refused request with a body is answered and its connection closed
 * without reading the body. Connections are counted and timed
 * (kp-client-conns.c), and large bodies held at once are bounded.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include "kp-client-conns.h"
#include "kp-conn-watch.h"
#include "kp-http.h"
#include "kp-linger.h"
#include "kp-refusals.h"
#include "kp-server.h"
#include "wire/kp-wire.h"
#include "codec/kp-json-guard.h"

#define LISTEN_BACKLOG 1024

struct _KpServer
{
  GObject     parent_instance;

  KpClientConns *conns;
  GHashTable *lingering;   /* answered connections being closed (kp-linger.c) */
  guint       n_large;     /* large request bodies held */

  KpGateway  *gateway;    /* unowned: the gateway owns the server */
  SoupServer *server;
  KpRefusals *refusals;
  guint       port;
  guint64     next_request;

  GSocket    *listen_socket;
  GSource    *listen_watch;  /* notices that libsoup stopped accepting */
  guint       rewatch_id;
  int         spare_fd;      /* given up to answer one connection when none are left */
};

G_DEFINE_TYPE (KpServer, kp_server, G_TYPE_OBJECT)

/* Set on a message whose large body is counted in n_large. */
static GQuark large_quark;

static gboolean
unref_later (gpointer data)
{
  g_object_unref (data);
  return G_SOURCE_REMOVE;
}

static void
kp_server_dispose (GObject *object)
{
  KpServer *self = (KpServer *)object;

  g_clear_pointer (&self->conns, kp_client_conns_free);
  g_clear_pointer (&self->lingering, g_hash_table_unref);
  g_clear_handle_id (&self->rewatch_id, g_source_remove);
  if (self->listen_watch != NULL)
    {
      g_source_destroy (self->listen_watch);
      g_clear_pointer (&self->listen_watch, g_source_unref);
    }
  g_clear_object (&self->listen_socket);
  if (self->spare_fd >= 0)
    close (self->spare_fd);
  self->spare_fd = -1;
  if (self->server != NULL)
    {
      /* libsoup may be inside one of the server's own signals right now: a
       * relay's last reference, dropped by a handler, can end the gateway
       * and with it this object. The server is let go once that emission
       * is over, and meanwhile it calls nothing of ours.
       */
      g_signal_handlers_disconnect_by_data (self->server, self);
      soup_server_remove_handler (self->server, NULL);
      soup_server_disconnect (self->server);
      g_idle_add_full (G_PRIORITY_DEFAULT, unref_later, g_steal_pointer (&self->server), NULL);
    }
  g_clear_object (&self->refusals);

  G_OBJECT_CLASS (kp_server_parent_class)->dispose (object);
}

static void
kp_server_class_init (KpServerClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = kp_server_dispose;
  large_quark = g_quark_from_static_string ("kp-large-body");
}

static void
kp_server_init (KpServer *self)
{
  self->lingering = kp_linger_table_new ();
  self->spare_fd = -1;
}

static void
on_request_read (SoupServer        *server,
                 SoupServerMessage *msg,
                 KpServer          *self)
{
  GSocket *socket = soup_server_message_get_socket (msg);

  if (socket != NULL)
    {
      kp_conn_watch_reading (socket);
      kp_client_conns_request_read (self->conns, socket);
    }
}

static void
on_request_done (SoupServer        *server,
                 SoupServerMessage *msg,
                 KpServer          *self)
{
  GSocket *socket = soup_server_message_get_socket (msg);

  if (socket == NULL || g_socket_is_closed (socket))
    return;
  kp_client_conns_request_done (self->conns, socket);
  /* A client that hangs up between requests is noticed (libsoup 3.2.3's
   * server never reads a kept-alive connection's end: it would stay in
   * CLOSE-WAIT for good).
   */
  kp_conn_watch_idle (socket);
}

/* Answers @msg with an error in its wire's shape, and notes the refusal:
 * its method, path (not the query), status, code and the client's address.
 */
G_GNUC_PRINTF (5, 6)
static void
refuse (KpServer          *self,
        SoupServerMessage *msg,
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

  kp_http_reply_error (msg, status, code, "%s", message);
  kp_refusals_note (self->refusals, soup_server_message_get_method (msg),
                    g_uri_get_path (soup_server_message_get_uri (msg)), status, code,
                    soup_server_message_get_remote_host (msg));
}

/* Bearer (OpenAI's clients), x-api-key (Anthropic's), x-goog-api-key or
 * ?key= (Gemini's).
 */
static const char *
get_token (SoupMessageHeaders *headers,
           GHashTable         *query)
{
  const char *value = soup_message_headers_get_one (headers, "Authorization");
  const char *key = query != NULL ? g_hash_table_lookup (query, "key") : NULL;

  if (value != NULL)
    {
      if (g_ascii_strncasecmp (value, "Bearer ", 7) != 0)
        return NULL;
      value += 7;
      while (*value == ' ')
        value++;
      return value;
    }

  value = soup_message_headers_get_one (headers, "x-api-key");
  if (value == NULL)
    value = soup_message_headers_get_one (headers, "x-goog-api-key");
  return value != NULL ? value : key;
}

/* Answering without reading the body -----------------------------------------
 *
 * libsoup 3.2 reads a request's whole body before it writes any answer, even
 * once an early handler has refused the request, unless the client asked
 * with `Expect: 100-continue`. A refused body is not read: the server takes
 * the connection from libsoup (soup_server_message_steal_connection() is
 * safe in an early handler and in got-chunk: libsoup touches nothing of the
 * message's I/O after them), writes the answer libsoup would have written
 * with `Connection: close`, and closes (kp-linger.c).
 */

static void release_large (KpServer *self, SoupServerMessage *msg);

/* Writes @msg's answer (none when @answer is FALSE) and closes its connection
 * without reading the rest of the request. @msg may be gone on return.
 */
static void
answer_and_close (KpServer          *self,
                  SoupServerMessage *msg,
                  gboolean           answer)
{
  GSocket *socket = soup_server_message_get_socket (msg);
  g_autoptr(GBytes) bytes = answer ? kp_linger_serialize_answer (msg) : g_bytes_new (NULL, 0);
  g_autoptr(GIOStream) stream = NULL;

  if (socket != NULL)
    {
      kp_client_conns_forget (self->conns, socket);
      kp_conn_watch_stop (socket);
    }
  release_large (self, msg);

  stream = soup_server_message_steal_connection (msg);
  if (stream != NULL)
    kp_linger_start (self->lingering, g_steal_pointer (&stream), g_steal_pointer (&bytes));
}

/* Whether a body follows the headers: one with a length, or chunks. */
static gboolean
has_body (SoupMessageHeaders *headers)
{
  return soup_message_headers_get_encoding (headers) == SOUP_ENCODING_CHUNKED ||
         soup_message_headers_get_content_length (headers) > 0;
}

/* Large bodies held at once ------------------------------------------------ */

static void
on_large_finished (SoupServerMessage *msg,
                   KpServer          *self)
{
  release_large (self, msg);
}

static void
release_large (KpServer          *self,
               SoupServerMessage *msg)
{
  if (g_object_steal_qdata (G_OBJECT (msg), large_quark) == NULL)
    return;
  g_assert (self->n_large > 0);
  self->n_large--;
  g_signal_handlers_disconnect_by_func (msg, on_large_finished, self);
}

/* Counts @msg's body as a large one until its answer is finished, or refuses
 * it with a quick 503 when too many are held.
 */
static gboolean
take_large (KpServer          *self,
            SoupServerMessage *msg)
{
  const KpClientLimits *limits = kp_gateway_get_client_limits (self->gateway);

  if (g_object_get_qdata (G_OBJECT (msg), large_quark) != NULL)
    return TRUE;
  if (self->n_large >= limits->max_large_bodies)
    {
      soup_message_headers_replace (soup_server_message_get_response_headers (msg),
                                    "Retry-After", "1");
      refuse (self, msg, 503, "server_busy",
              "Keypool is holding %u large requests already. Try again in a moment.",
              self->n_large);
      return FALSE;
    }
  self->n_large++;
  g_object_set_qdata (G_OBJECT (msg), large_quark, GINT_TO_POINTER (TRUE));
  g_signal_connect (msg, "finished", G_CALLBACK (on_large_finished), self);
  return TRUE;
}

static void
refuse_too_large (KpServer          *self,
                  SoupServerMessage *msg)
{
  gsize limit = kp_gateway_get_body_limit (self->gateway);

  refuse (self, msg, 413, "request_too_large",
          "The request body is larger than Keypool accepts (%" G_GSIZE_FORMAT " MiB). "
          "Send less context, or raise the limit with --max-body-mib.",
          limit / (1024 * 1024));
}

static void
on_got_chunk (SoupServerMessage *msg,
              GBytes            *chunk,
              KpServer          *self)
{
  SoupMessageHeaders *headers = soup_server_message_get_request_headers (msg);
  gsize length = kp_http_collect_chunk (msg, chunk);

  /* A chunked body's size shows only as it comes. */
  if (soup_message_headers_get_encoding (headers) != SOUP_ENCODING_CHUNKED)
    return;

  if (length > kp_gateway_get_body_limit (self->gateway))
    {
      refuse_too_large (self, msg);
      answer_and_close (self, msg, TRUE);
    }
  else if (length >= kp_gateway_get_client_limits (self->gateway)->large_body &&
           !take_large (self, msg))
    answer_and_close (self, msg, TRUE);
}

/* Every check a request passes before its body is read; FALSE once it is
 * refused.
 */
static gboolean
check_request (KpServer          *self,
               SoupServerMessage *msg,
               const char        *path,
               GHashTable        *query)
{
  SoupMessageHeaders *headers = soup_server_message_get_request_headers (msg);
  const char *host = soup_message_headers_get_one (headers, "Host");
  const char *origin = soup_message_headers_get_one (headers, "Origin");
  goffset length;

  if (!kp_http_host_is_loopback (host))
    {
      refuse (self, msg, 403, "forbidden_host",
              "Keypool answers only to loopback host names (127.0.0.1, localhost, [::1]); "
              "this request named “%s”.", host ? host : "no host");
      return FALSE;
    }

  if (origin != NULL && !kp_gateway_origin_allowed (self->gateway, origin))
    {
      refuse (self, msg, 403, "forbidden_origin",
              "Requests from the web page at %s are refused. "
              "Allow the origin with --allow-origin if you trust it.", origin);
      return FALSE;
    }

  if (g_str_has_prefix (path, "/v1/") || g_str_equal (path, "/v1") ||
      kp_wire_is_client_path (path))
    {
      const char *token = get_token (headers, query);
      guint client = KP_CLIENT_OTHER;

      if (soup_server_message_get_method (msg) == SOUP_METHOD_OPTIONS)
        return TRUE;

      if (token == NULL || *token == '\0')
        {
          refuse (self, msg, 401, "missing_api_key",
                  "No access token. Send Keypool’s token as “Authorization: Bearer "
                  "<token>”, “x-api-key: <token>” or “x-goog-api-key: <token>”; "
                  "“keypool token” prints it.");
          return FALSE;
        }
      if (kp_http_secret_equal (token, kp_gateway_get_token (self->gateway)))
        kp_clients_tag_message (msg, KP_CLIENT_OTHER);
      else if (kp_clients_check (kp_gateway_get_clients (self->gateway), token, &client))
        kp_clients_tag_message (msg, client);
      else
        {
          refuse (self, msg, 401, "invalid_api_key",
                  "The access token is not Keypool’s, nor a client token in use. “keypool "
                  "token” prints the main one; “keypool clients list” lists the clients.");
          return FALSE;
        }
    }

  length = soup_message_headers_get_content_length (headers);
  if (length > (goffset)kp_gateway_get_body_limit (self->gateway))
    {
      refuse_too_large (self, msg);
      return FALSE;
    }
  if (soup_message_headers_get_encoding (headers) == SOUP_ENCODING_CONTENT_LENGTH &&
      length >= (goffset)kp_gateway_get_client_limits (self->gateway)->large_body)
    return take_large (self, msg);

  return TRUE;
}

static void
early_handler (SoupServer        *server,
               SoupServerMessage *msg,
               const char        *path,
               GHashTable        *query,
               gpointer           user_data)
{
  KpServer *self = user_data;
  SoupMessageHeaders *headers = soup_server_message_get_request_headers (msg);
  GSocket *socket = soup_server_message_get_socket (msg);

  if (socket != NULL)
    {
      /* Turned away at connect: it was told so already. */
      if (kp_client_conns_is_shed (self->conns, socket))
        {
          answer_and_close (self, msg, FALSE);
          return;
        }
      kp_client_conns_got_headers (self->conns, socket);
    }

  if (!check_request (self, msg, path, query))
    {
      if (has_body (headers))
        answer_and_close (self, msg, TRUE);
      return;
    }

  if (has_body (headers))
    {
      gboolean chunked = soup_message_headers_get_encoding (headers) == SOUP_ENCODING_CHUNKED;

      kp_http_collect_body (msg, chunked ? 0 : soup_message_headers_get_content_length (headers));
      g_signal_connect_object (msg, "got-chunk", G_CALLBACK (on_got_chunk), self, 0);
    }
}

static void
reply_method_not_allowed (KpServer          *self,
                          SoupServerMessage *msg,
                          const char        *allow)
{
  soup_message_headers_replace (soup_server_message_get_response_headers (msg), "Allow", allow);
  refuse (self, msg, 405, "method_not_allowed",
          "%s %s is not supported; use %s.",
          soup_server_message_get_method (msg),
          g_uri_get_path (soup_server_message_get_uri (msg)), allow);
}

static void
add_cors_headers (KpServer          *self,
                  SoupServerMessage *msg)
{
  SoupMessageHeaders *request = soup_server_message_get_request_headers (msg);
  SoupMessageHeaders *response = soup_server_message_get_response_headers (msg);
  const char *origin = soup_message_headers_get_one (request, "Origin");

  /* The early handler refused every origin that is not allowed. */
  if (origin == NULL)
    return;

  soup_message_headers_replace (response, "Access-Control-Allow-Origin", origin);
  soup_message_headers_replace (response, "Vary", "Origin");
  if (soup_server_message_get_method (msg) == SOUP_METHOD_OPTIONS)
    {
      g_autoptr(GString) allowed = g_string_new ("Authorization, Content-Type, x-api-key");

      soup_message_headers_replace (response, "Access-Control-Allow-Methods", "GET, POST, OPTIONS");

      /* And the headers each API's clients send. */
      for (const KpWire * const *wire = kp_wire_all (); *wire != NULL; wire++)
        if ((*wire)->client_headers != NULL)
          g_string_append_printf (allowed, ", %s", (*wire)->client_headers);
      soup_message_headers_replace (response, "Access-Control-Allow-Headers", allowed->str);
      soup_message_headers_replace (response, "Access-Control-Max-Age", "600");
    }
}

static void
handle_request (KpServer          *self,
             SoupServerMessage *msg)
{
  g_autoptr(KpRelay) relay = NULL;
  char request_id[40];

  g_snprintf (request_id, sizeof request_id, "kp-%08x%08" G_GINT64_MODIFIER "x",
              g_random_int (), (gint64)++self->next_request);

  soup_server_message_pause (msg);
  relay = kp_relay_new (self->gateway, msg, request_id);
  kp_gateway_relay_started (self->gateway, relay, soup_server_message_get_remote_host (msg));
  kp_relay_start (relay);
}

/* A wire's token counter, estimated: about four
 * bytes of JSON a token, as the router estimates a prompt. Claude Code asks
 * before it sends.
 */
static void
handle_count_tokens (KpServer          *self,
                     SoupServerMessage *msg,
                     const KpWire      *wire)
{
  g_autoptr(GBytes) body = NULL;
  g_autoptr(KpWireRequest) req = NULL;
  g_autoptr(GPtrArray) offerings = NULL;
  g_autoptr(GError) error = NULL;

  body = kp_http_take_body (msg);
  req = kp_wire_request_new (wire, body, NULL);
  kp_http_set_request_path (req, msg);
  if (!kp_wire_request_parse_common (req, &error))
    {
      refuse (self, msg, 400, kp_wire_error_code (error), "%s", error->message);
      return;
    }

  offerings = kp_gateway_resolve (self->gateway, req->model, &req->providers);
  if (offerings == NULL)
    {
      g_autofree char *message =
        kp_catalog_describe_unknown (kp_gateway_get_catalog (self->gateway), req->model);

      refuse (self, msg, 404, "model_not_found", "%s", message);
      return;
    }

  /* The router's estimate of a prompt: the body is already the measure. */
  kp_http_reply_json (msg, 200, wire->count_json (req->prompt_tokens));
}

/* What a client that asked for a path Keypool does not serve is told. */
static char *
describe_routes (void)
{
  const KpWire * const *wires = kp_wire_all ();
  g_autoptr(GString) routes = g_string_new (NULL);

  for (guint i = 0; wires[i] != NULL; i++)
    for (guint j = 0; wires[i]->client_routes != NULL && wires[i]->client_routes[j] != NULL; j++)
      g_string_append_printf (routes, "POST %s, ", wires[i]->client_routes[j]);
  g_string_append (routes, "GET /v1/models and GET /health");
  return g_string_free (g_steal_pointer (&routes), FALSE);
}

/* A wire's own model list, or one model of it, made from Keypool's. */
static void
reply_wire_models (KpServer          *self,
                   SoupServerMessage *msg,
                   const KpWire      *wire,
                   const char        *path)
{
  gsize length;
  const char *json = kp_gateway_get_models_json (self->gateway, &length);
  guint status = 200;
  char *body = path ? wire->model_json (json, length, path, &status) : wire->models_json (json, length);

  kp_http_reply_json (msg, status, body);
}

static void
handler (SoupServer        *server,
         SoupServerMessage *msg,
         const char        *path,
         GHashTable        *query,
         gpointer           user_data)
{
  KpServer *self = user_data;
  const char *method = soup_server_message_get_method (msg);
  const KpWire *wire;
  KpRouteKind kind;

  add_cors_headers (self, msg);

  if (method == SOUP_METHOD_OPTIONS)
    {
      soup_server_message_set_status (msg, 204, NULL);
      return;
    }

  wire = kp_wire_for_route (path);
  kind = kp_wire_route_kind (wire, path);
  if ((kind == KP_ROUTE_MODELS && wire->models_json != NULL) ||
      (kind == KP_ROUTE_MODEL && wire->model_json != NULL))
    {
      if (method != SOUP_METHOD_GET && method != SOUP_METHOD_HEAD)
        reply_method_not_allowed (self, msg, "GET");
      else
        reply_wire_models (self, msg, wire, kind == KP_ROUTE_MODEL ? path : NULL);
    }
  else if (kind == KP_ROUTE_REQUEST || kind == KP_ROUTE_COUNT)
    {
      if (method != SOUP_METHOD_POST)
        reply_method_not_allowed (self, msg, "POST");
      else if (kind == KP_ROUTE_COUNT)
        handle_count_tokens (self, msg, wire);
      else
        handle_request (self, msg);
    }
  else if (g_str_equal (path, "/v1/models"))
    {
      gsize length;
      const char *json;

      if (method != SOUP_METHOD_GET && method != SOUP_METHOD_HEAD)
        {
          reply_method_not_allowed (self, msg, "GET");
          return;
        }
      json = kp_gateway_get_models_json (self->gateway, &length);
      soup_server_message_set_status (msg, 200, NULL);
      soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_COPY, json, length);
    }
  else if (g_str_equal (path, "/health"))
    {
      if (method != SOUP_METHOD_GET && method != SOUP_METHOD_HEAD)
        reply_method_not_allowed (self, msg, "GET");
      else
        kp_http_reply_json (msg, 200, kp_gateway_dup_health_json (self->gateway));
    }
  else
    {
      g_autofree char *routes = describe_routes ();

      refuse (self, msg, 404, "unknown_path",
              "Keypool has nothing at %s. It serves %s.", path, routes);
    }
}

/* Out of file descriptors ----------------------------------------------------
 *
 * libsoup 3.2's listener removes its accept watch after one failed accept()
 * (EMFILE) and never adds it back: the server would be deaf for good, even
 * once the connections that used the descriptors are gone. A watch of our
 * own on the listening socket, below libsoup's priority, runs only when a
 * connection waits and libsoup did not take it: then descriptors are short,
 * or libsoup's watch is gone. While none is free, each waiting client gets
 * a quick 503 through a spare descriptor kept for that, not a hang; once
 * one is free, the socket is handed to libsoup again.
 */

static void start_listen_watch (KpServer *self);

/* Soft limit up to the hard one: a desktop's default 1,024 is little for a
 * gateway with many streams.
 */
static void
raise_fd_limit (void)
{
  struct rlimit limit;

  if (getrlimit (RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur >= limit.rlim_max)
    return;
  limit.rlim_cur = limit.rlim_max;
  if (setrlimit (RLIMIT_NOFILE, &limit) != 0)
    g_debug ("Cannot raise the file descriptor limit: %s", g_strerror (errno));
}

#define BUSY_BODY \
  "{\"error\":{\"message\":\"Keypool has too many connections open. Close some, or try again " \
  "in a moment.\",\"type\":\"server_busy\",\"code\":503}}"
#define BUSY_BODY_LENGTH 132
G_STATIC_ASSERT (sizeof BUSY_BODY - 1 == BUSY_BODY_LENGTH);

static const char busy_response[] =
  "HTTP/1.1 503 Service Unavailable\r\n"
  "Content-Type: application/json\r\n"
  "Retry-After: 1\r\n"
  "Connection: close\r\n"
  "Content-Length: " G_STRINGIFY (BUSY_BODY_LENGTH) "\r\n"
  "\r\n"
  BUSY_BODY;

/* Answers one waiting client 503 with the spare descriptor. */
static gboolean
shed_connection (KpServer *self)
{
  int fd;

  if (self->spare_fd < 0)
    return FALSE;
  close (self->spare_fd);
  fd = accept4 (g_socket_get_fd (self->listen_socket), NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
  if (fd >= 0)
    {
      if (send (fd, busy_response, sizeof busy_response - 1, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
        g_debug ("Cannot answer a client 503: %s", g_strerror (errno));
      close (fd);
    }
  self->spare_fd = open ("/dev/null", O_RDONLY | O_CLOEXEC);
  return fd >= 0;
}

static gboolean
rewatch (gpointer user_data)
{
  KpServer *self = user_data;

  self->rewatch_id = 0;
  start_listen_watch (self);
  return G_SOURCE_REMOVE;
}

static gboolean
on_listen_ready (GSocket      *socket,
                 GIOCondition  condition,
                 gpointer      user_data)
{
  KpServer *self = user_data;
  g_autoptr(GError) error = NULL;
  int probe = open ("/dev/null", O_RDONLY | O_CLOEXEC);

  if (probe >= 0)
    {
      /* Descriptors are free again: libsoup listens anew on the same socket. */
      close (probe);
      g_message ("Accepting connections again on 127.0.0.1:%u", self->port);
      if (soup_server_listen_socket (self->server, socket, 0, &error))
        return G_SOURCE_CONTINUE;
      g_warning ("Cannot accept connections again: %s", error->message);
    }
  else if (shed_connection (self))
    return G_SOURCE_CONTINUE;

  /* Nothing to do for now: look again shortly rather than spin. */
  g_source_destroy (self->listen_watch);
  g_clear_pointer (&self->listen_watch, g_source_unref);
  if (self->rewatch_id == 0)
    self->rewatch_id = g_timeout_add (100, rewatch, self);
  return G_SOURCE_REMOVE;
}

static void
start_listen_watch (KpServer *self)
{
  if (self->listen_watch != NULL || self->listen_socket == NULL)
    return;
  self->listen_watch = g_socket_create_source (self->listen_socket, G_IO_IN, NULL);
  g_source_set_priority (self->listen_watch, G_PRIORITY_LOW);
  g_source_set_callback (self->listen_watch, G_SOURCE_FUNC (on_listen_ready), self, NULL);
  g_source_set_static_name (self->listen_watch, "[keypool] listener watch");
  g_source_attach (self->listen_watch, NULL);
}

/* A new connection over the limit is told so at once and closed soon. */
static void
on_request_started (SoupServer        *server,
                    SoupServerMessage *msg,
                    KpServer          *self)
{
  GSocket *socket = soup_server_message_get_socket (msg);

  if (socket == NULL || kp_client_conns_request_started (self->conns, socket))
    return;

  g_debug ("Turning away a client connection: %u are open",
           kp_gateway_get_client_limits (self->gateway)->max_connections);
  if (send (g_socket_get_fd (socket), busy_response, sizeof busy_response - 1,
            MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
    g_debug ("Cannot answer a client 503: %s", g_strerror (errno));
  g_socket_shutdown (socket, FALSE, TRUE, NULL);
  kp_client_conns_shed (self->conns, socket);
}

KpServer *
kp_server_new (KpGateway *gateway)
{
  KpServer *self;

  g_return_val_if_fail (KP_IS_GATEWAY (gateway), NULL);

  self = g_object_new (KP_TYPE_SERVER, NULL);
  self->gateway = gateway;
  self->server = soup_server_new ("server-header", "Keypool/" PACKAGE_VERSION " ", NULL);
  self->refusals = kp_refusals_new (kp_gateway_get_ledger (gateway));
  self->conns = kp_client_conns_new (gateway);
  soup_server_add_early_handler (self->server, NULL, early_handler, self, NULL);
  soup_server_add_handler (self->server, NULL, handler, self, NULL);
  g_signal_connect (self->server, "request-started", G_CALLBACK (on_request_started), self);
  g_signal_connect (self->server, "request-read", G_CALLBACK (on_request_read), self);
  g_signal_connect (self->server, "request-finished", G_CALLBACK (on_request_done), self);
  g_signal_connect (self->server, "request-aborted", G_CALLBACK (on_request_done), self);

  return self;
}

/**
 * kp_server_listen:
 * @self: a #KpServer
 * @port: the TCP port on 127.0.0.1, or 0 for any free port
 * @error: a location for a #GError
 *
 * Binds a socket of our own so that the listen backlog is large enough for a
 * burst of clients (libsoup's own is 10), and keeps accepting after running
 * out of file descriptors (see above).
 */
gboolean
kp_server_listen (KpServer  *self,
                  guint      port,
                  GError   **error)
{
  g_autoptr(GSocket) socket = NULL;
  g_autoptr(GInetAddress) loopback = NULL;
  g_autoptr(GSocketAddress) address = NULL;
  g_autoptr(GSocketAddress) bound = NULL;

  g_return_val_if_fail (KP_IS_SERVER (self), FALSE);
  g_return_val_if_fail (port <= 65535, FALSE);

  socket = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, error);
  if (socket == NULL)
    return FALSE;

  loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  address = g_inet_socket_address_new (loopback, port);

  if (!g_socket_bind (socket, address, TRUE, error))
    {
      g_prefix_error (error, "Cannot listen on 127.0.0.1:%u: ", port);
      return FALSE;
    }

  g_socket_set_listen_backlog (socket, LISTEN_BACKLOG);
  if (!g_socket_listen (socket, error) ||
      !soup_server_listen_socket (self->server, socket, 0, error))
    {
      g_prefix_error (error, "Cannot listen on 127.0.0.1:%u: ", port);
      return FALSE;
    }

  bound = g_socket_get_local_address (socket, error);
  if (bound == NULL)
    return FALSE;
  self->port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));

  raise_fd_limit ();
  if (self->spare_fd < 0)
    self->spare_fd = open ("/dev/null", O_RDONLY | O_CLOEXEC);
  g_set_object (&self->listen_socket, socket);
  start_listen_watch (self);

  return TRUE;
}

guint
kp_server_get_port (KpServer *self)
{
  g_return_val_if_fail (KP_IS_SERVER (self), 0);
  return self->port;
}

void
kp_server_disconnect (KpServer *self)
{
  g_return_if_fail (KP_IS_SERVER (self));

  soup_server_disconnect (self->server);
}
