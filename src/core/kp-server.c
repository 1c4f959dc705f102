/* kp-server.c: the local HTTP endpoint
 *
 * Every request passes check_request() before its body is read: the Host
 * must be a loopback name (DNS rebinding), a browser Origin must be allowed,
 * /v1 needs the access token, and a body over the limit is refused unread.
 * Every refusal goes through refuse(), which leaves a trace (kp-refusals.c).
 * A refused request with a body is answered and its connection closed
 * without reading the body (the HTTP/1.1 server does that, and counts and
 * times connections: http/kp-http1-server.c). Large bodies held at once are
 * bounded.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/resource.h>

#include "http/kp-http1-server.h"
#include "kp-http.h"
#include "kp-refusals.h"
#include "kp-server.h"
#include "wire/kp-wire.h"

#define LISTEN_BACKLOG 1024

/* Set in an exchange's flags while its large body is counted in n_large. */
#define FLAG_LARGE 1u

struct _KpServer
{
  GObject        parent_instance;

  KpGateway     *gateway;    /* unowned: the gateway owns the server */
  KpHttp1Server *http;
  KpRefusals    *refusals;
  guint          port;
  guint64        next_request;
  guint          n_large;    /* large request bodies held */
};

G_DEFINE_TYPE (KpServer, kp_server, G_TYPE_OBJECT)

static gboolean
free_later (gpointer data)
{
  kp_http1_server_free (data);
  return G_SOURCE_REMOVE;
}

static void
kp_server_dispose (GObject *object)
{
  KpServer *self = (KpServer *)object;

  if (self->http != NULL)
    {
      /* The server may be inside one of its own calls right now: a relay's
       * last reference, dropped when its exchange is over, can end the
       * gateway and with it this object. It stops calling us at once, and
       * its memory goes once that call is over.
       */
      kp_http1_server_disconnect (self->http);
      g_idle_add_full (G_PRIORITY_DEFAULT, free_later, g_steal_pointer (&self->http), NULL);
    }
  g_clear_object (&self->refusals);

  G_OBJECT_CLASS (kp_server_parent_class)->dispose (object);
}

static void
kp_server_class_init (KpServerClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = kp_server_dispose;
}

static void
kp_server_init (KpServer *self)
{
}

/* Answers @exchange with an error in its wire's shape, and notes the refusal:
 * its method, path (not the query), status, code and the client's address.
 */
G_GNUC_PRINTF (5, 6)
static void
refuse (KpServer    *self,
        KpExchange  *exchange,
        guint        status,
        const char  *code,
        const char  *format,
        ...)
{
  g_autofree char *message = NULL;
  va_list args;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);

  kp_http_reply_error (exchange, status, code, "%s", message);
  kp_refusals_note (self->refusals, kp_exchange_get_method (exchange),
                    kp_exchange_get_path (exchange), status, code,
                    kp_exchange_get_remote_host (exchange));
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

/* Large bodies held at once ------------------------------------------------ */

/* Counts @exchange's body as a large one until the exchange is over, or
 * refuses it with a quick 503 when too many are held.
 */
static gboolean
take_large (KpServer   *self,
            KpExchange *exchange)
{
  const KpClientLimits *limits = kp_gateway_get_client_limits (self->gateway);

  if (kp_exchange_get_flags (exchange) & FLAG_LARGE)
    return TRUE;
  if (self->n_large >= limits->max_large_bodies)
    {
      soup_message_headers_replace (kp_exchange_get_response_headers (exchange),
                                    "Retry-After", "1");
      refuse (self, exchange, 503, "server_busy",
              "Keypool is holding %u large requests already. Try again in a moment.",
              self->n_large);
      return FALSE;
    }
  self->n_large++;
  kp_exchange_set_flags (exchange, kp_exchange_get_flags (exchange) | FLAG_LARGE);
  return TRUE;
}

static void
on_finished (KpExchange *exchange,
             gpointer    user_data)
{
  KpServer *self = user_data;

  if (!(kp_exchange_get_flags (exchange) & FLAG_LARGE))
    return;
  g_assert (self->n_large > 0);
  self->n_large--;
  kp_exchange_set_flags (exchange, kp_exchange_get_flags (exchange) & ~FLAG_LARGE);
}

static void
refuse_too_large (KpServer   *self,
                  KpExchange *exchange)
{
  gsize limit = kp_gateway_get_body_limit (self->gateway);

  refuse (self, exchange, 413, "request_too_large",
          "The request body is larger than Keypool accepts (%" G_GSIZE_FORMAT " MiB). "
          "Send less context, or raise the limit with --max-body-mib.",
          limit / (1024 * 1024));
}

/* A chunked body's size shows only as it comes. */
static void
on_got_body (KpExchange *exchange,
             gsize       length,
             gpointer    user_data)
{
  KpServer *self = user_data;

  if (length > kp_gateway_get_body_limit (self->gateway))
    refuse_too_large (self, exchange);
  else if (length >= kp_gateway_get_client_limits (self->gateway)->large_body)
    take_large (self, exchange);
}

static void
on_limits (gpointer             user_data,
           KpHttp1ServerLimits *limits)
{
  KpServer *self = user_data;
  const KpClientLimits *client = kp_gateway_get_client_limits (self->gateway);

  limits->max_connections = client->max_connections;
  limits->header_ms = client->header_ms;
  limits->body_ms = client->body_ms;
  limits->idle_ms = client->idle_ms;
}

/* Every check a request passes before its body is read; FALSE once it is
 * refused.
 */
static gboolean
check_request (KpServer   *self,
               KpExchange *exchange)
{
  SoupMessageHeaders *headers = kp_exchange_get_request_headers (exchange);
  const char *path = kp_exchange_get_path (exchange);
  const char *host = soup_message_headers_get_one (headers, "Host");
  const char *origin = soup_message_headers_get_one (headers, "Origin");
  goffset length;

  if (!kp_http_host_is_loopback (host))
    {
      refuse (self, exchange, 403, "forbidden_host",
              "Keypool answers only to loopback host names (127.0.0.1, localhost, [::1]); "
              "this request named “%s”.", host ? host : "no host");
      return FALSE;
    }

  if (origin != NULL && !kp_gateway_origin_allowed (self->gateway, origin))
    {
      refuse (self, exchange, 403, "forbidden_origin",
              "Requests from the web page at %s are refused. "
              "Allow the origin with --allow-origin if you trust it.", origin);
      return FALSE;
    }

  if (g_str_has_prefix (path, "/v1/") || g_str_equal (path, "/v1") ||
      kp_wire_is_client_path (path))
    {
      const char *token = get_token (headers, kp_exchange_get_form (exchange));
      guint client = KP_CLIENT_OTHER;

      if (kp_exchange_get_method (exchange) == SOUP_METHOD_OPTIONS)
        return TRUE;

      if (token == NULL || *token == '\0')
        {
          refuse (self, exchange, 401, "missing_api_key",
                  "No access token. Send Keypool’s token as “Authorization: Bearer "
                  "<token>”, “x-api-key: <token>” or “x-goog-api-key: <token>”; "
                  "“keypool token” prints it.");
          return FALSE;
        }
      if (kp_http_secret_equal (token, kp_gateway_get_token (self->gateway)))
        kp_exchange_set_client (exchange, KP_CLIENT_OTHER);
      else if (kp_clients_check (kp_gateway_get_clients (self->gateway), token, &client))
        kp_exchange_set_client (exchange, client);
      else
        {
          refuse (self, exchange, 401, "invalid_api_key",
                  "The access token is not Keypool’s, nor a client token in use. “keypool "
                  "token” prints the main one; “keypool clients list” lists the clients.");
          return FALSE;
        }
    }

  length = soup_message_headers_get_content_length (headers);
  if (length > (goffset)kp_gateway_get_body_limit (self->gateway))
    {
      refuse_too_large (self, exchange);
      return FALSE;
    }
  if (soup_message_headers_get_encoding (headers) == SOUP_ENCODING_CONTENT_LENGTH &&
      length >= (goffset)kp_gateway_get_client_limits (self->gateway)->large_body)
    return take_large (self, exchange);

  return TRUE;
}

static void
on_got_head (KpExchange *exchange,
             gpointer    user_data)
{
  check_request (user_data, exchange);
}

static void
reply_method_not_allowed (KpServer   *self,
                          KpExchange *exchange,
                          const char *allow)
{
  soup_message_headers_replace (kp_exchange_get_response_headers (exchange), "Allow", allow);
  refuse (self, exchange, 405, "method_not_allowed",
          "%s %s is not supported; use %s.",
          kp_exchange_get_method (exchange),
          kp_exchange_get_path (exchange), allow);
}

static void
add_cors_headers (KpServer   *self,
                  KpExchange *exchange)
{
  SoupMessageHeaders *request = kp_exchange_get_request_headers (exchange);
  SoupMessageHeaders *response = kp_exchange_get_response_headers (exchange);
  const char *origin = soup_message_headers_get_one (request, "Origin");

  /* check_request() refused every origin that is not allowed. */
  if (origin == NULL)
    return;

  soup_message_headers_replace (response, "Access-Control-Allow-Origin", origin);
  soup_message_headers_replace (response, "Vary", "Origin");
  if (kp_exchange_get_method (exchange) == SOUP_METHOD_OPTIONS)
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
handle_request (KpServer   *self,
                KpExchange *exchange)
{
  g_autoptr(KpRelay) relay = NULL;
  char request_id[40];

  g_snprintf (request_id, sizeof request_id, "kp-%08x%08" G_GINT64_MODIFIER "x",
              g_random_int (), (gint64)++self->next_request);

  kp_exchange_pause (exchange);
  relay = kp_relay_new (self->gateway, exchange, request_id);
  kp_gateway_relay_started (self->gateway, relay, kp_exchange_get_remote_host (exchange));
  kp_relay_start (relay);
}

/* A wire's token counter, estimated: about four
 * bytes of JSON a token, as the router estimates a prompt. Claude Code asks
 * before it sends.
 */
static void
handle_count_tokens (KpServer     *self,
                     KpExchange   *exchange,
                     const KpWire *wire)
{
  g_autoptr(GBytes) body = NULL;
  g_autoptr(KpWireRequest) req = NULL;
  g_autoptr(GPtrArray) offerings = NULL;
  g_autoptr(GError) error = NULL;

  body = kp_exchange_take_body (exchange);
  req = kp_wire_request_new (wire, body, NULL);
  kp_http_set_request_path (req, exchange);
  if (!kp_wire_request_parse_common (req, &error))
    {
      refuse (self, exchange, 400, kp_wire_error_code (error), "%s", error->message);
      return;
    }

  offerings = kp_gateway_resolve (self->gateway, req->model, &req->providers);
  if (offerings == NULL)
    {
      g_autofree char *message =
        kp_catalog_describe_unknown (kp_gateway_get_catalog (self->gateway), req->model);

      refuse (self, exchange, 404, "model_not_found", "%s", message);
      return;
    }

  /* The router's estimate of a prompt: the body is already the measure. */
  kp_http_reply_json (exchange, 200, wire->count_json (req->prompt_tokens));
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
reply_wire_models (KpServer     *self,
                   KpExchange   *exchange,
                   const KpWire *wire,
                   const char   *path)
{
  gsize length;
  const char *json = kp_gateway_get_models_json (self->gateway, &length);
  guint status = 200;
  char *body = path ? wire->model_json (json, length, path, &status) : wire->models_json (json, length);

  kp_http_reply_json (exchange, status, body);
}

static void
on_handle (KpExchange *exchange,
           gpointer    user_data)
{
  KpServer *self = user_data;
  const char *method = kp_exchange_get_method (exchange);
  const char *path = kp_exchange_get_path (exchange);
  const KpWire *wire;
  KpRouteKind kind;

  add_cors_headers (self, exchange);

  if (method == SOUP_METHOD_OPTIONS)
    {
      kp_exchange_set_status (exchange, 204);
      return;
    }

  wire = kp_wire_for_route (path);
  kind = kp_wire_route_kind (wire, path);
  if ((kind == KP_ROUTE_MODELS && wire->models_json != NULL) ||
      (kind == KP_ROUTE_MODEL && wire->model_json != NULL))
    {
      if (method != SOUP_METHOD_GET && method != SOUP_METHOD_HEAD)
        reply_method_not_allowed (self, exchange, "GET");
      else
        reply_wire_models (self, exchange, wire, kind == KP_ROUTE_MODEL ? path : NULL);
    }
  else if (kind == KP_ROUTE_REQUEST || kind == KP_ROUTE_COUNT)
    {
      if (method != SOUP_METHOD_POST)
        reply_method_not_allowed (self, exchange, "POST");
      else if (kind == KP_ROUTE_COUNT)
        handle_count_tokens (self, exchange, wire);
      else
        handle_request (self, exchange);
    }
  else if (g_str_equal (path, "/v1/models"))
    {
      gsize length;
      const char *json;

      if (method != SOUP_METHOD_GET && method != SOUP_METHOD_HEAD)
        {
          reply_method_not_allowed (self, exchange, "GET");
          return;
        }
      json = kp_gateway_get_models_json (self->gateway, &length);
      kp_exchange_set_status (exchange, 200);
      kp_exchange_take_response (exchange, "application/json", g_memdup2 (json, length), length);
    }
  else if (g_str_equal (path, "/health"))
    {
      if (method != SOUP_METHOD_GET && method != SOUP_METHOD_HEAD)
        reply_method_not_allowed (self, exchange, "GET");
      else
        kp_http_reply_json (exchange, 200, kp_gateway_dup_health_json (self->gateway));
    }
  else
    {
      g_autofree char *routes = describe_routes ();

      refuse (self, exchange, 404, "unknown_path",
              "Keypool has nothing at %s. It serves %s.", path, routes);
    }
}

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

static const KpHttp1ServerFuncs server_funcs = {
  .limits = on_limits,
  .got_head = on_got_head,
  .got_body = on_got_body,
  .handle = on_handle,
  .finished = on_finished,
};

KpServer *
kp_server_new (KpGateway *gateway)
{
  KpServer *self;

  g_return_val_if_fail (KP_IS_GATEWAY (gateway), NULL);

  self = g_object_new (KP_TYPE_SERVER, NULL);
  self->gateway = gateway;
  self->http = kp_http1_server_new (&server_funcs, self, "Keypool/" PACKAGE_VERSION);
  self->refusals = kp_refusals_new (kp_gateway_get_ledger (gateway));

  return self;
}

/**
 * kp_server_listen:
 * @self: a #KpServer
 * @port: the TCP port on 127.0.0.1, or 0 for any free port
 * @error: a location for a #GError
 *
 * Binds a socket with a listen backlog large enough for a burst of clients.
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
      !kp_http1_server_listen (self->http, socket, error))
    {
      g_prefix_error (error, "Cannot listen on 127.0.0.1:%u: ", port);
      return FALSE;
    }

  bound = g_socket_get_local_address (socket, error);
  if (bound == NULL)
    return FALSE;
  self->port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));

  raise_fd_limit ();
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

  if (self->http != NULL)
    kp_http1_server_disconnect (self->http);
}
