/* kp-relay.c: one client request: route, upstream exchange, stream relay
 *
 * A relay lives from the moment the server hands it a parsed request until
 * the client's response is finished (written, or the client went away). It
 * holds a reference on the client's exchange (http/kp-http1-server.c) for
 * that whole time; once the exchange is over, writes to it do nothing.
 *
 * Streams are relayed event by event as they arrive: the upstream body is
 * read without blocking into one buffer, complete SSE events are appended to
 * the client's chunked response at once and parsed alongside for usage. The
 * client's response body does not accumulate.
 *
 * The relay knows no API: the client's wire (wire/) parses its request,
 * the route's wire builds the provider's, and a bridge decodes the
 * provider's stream into canonical events and, when the client speaks
 * another wire, encodes them for it. When the two wires match, the bytes
 * pass through and are decoded alongside for usage, errors and the start of
 * the answer. Every read from a provider is bounded.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include <string.h>

#include <gio/gio.h>
#include <json-glib/json-glib.h>

#include "codec/kp-json-guard.h"
#include "kp-gateway.h"
#include "kp-http.h"
#include "kp-relay.h"
#include "kp-sse.h"
#include "wire/kp-wire.h"

#include "kp-relay-private.h"

G_DEFINE_TYPE (KpRelay, kp_relay, G_TYPE_OBJECT)

/* Ends the upstream exchange now. Dropping a body stream before its end
 * closes that connection, so a provider never keeps generating for nobody.
 */
void
kp_relay_release_upstream (KpRelay *self)
{
  kp_deadline_clear (&self->timer);
  g_clear_pointer (&self->exchange, kp_http1_request_free);
}

static void
clear_upstream_request (KpRelay *self)
{
  g_clear_pointer (&self->upstream_uri, g_uri_unref);
  g_clear_pointer (&self->upstream_request, soup_message_headers_unref);
  g_clear_pointer (&self->upstream_body, g_bytes_unref);
  g_clear_pointer (&self->upstream_headers, soup_message_headers_unref);
}

static void
kp_relay_dispose (GObject *object)
{
  KpRelay *self = (KpRelay *)object;

  kp_deadline_clear (&self->timer);
  g_clear_pointer (&self->exchange, kp_http1_request_free);

  G_OBJECT_CLASS (kp_relay_parent_class)->dispose (object);
}

static void
kp_relay_finalize (GObject *object)
{
  KpRelay *self = (KpRelay *)object;

  if (self->client != NULL)
    kp_exchange_set_done_func (self->client, NULL, NULL);
  g_clear_pointer (&self->client, kp_exchange_unref);
  g_clear_object (&self->gateway);
  g_clear_object (&self->cancellable);
  clear_upstream_request (self);
  g_clear_object (&self->provider);
  g_clear_object (&self->credential);
  g_clear_pointer (&self->req, kp_wire_request_free);
  g_clear_pointer (&self->translate_error, g_free);
  g_clear_pointer (&self->bridge, kp_wire_bridge_free);
  if (self->out != NULL)
    g_string_free (self->out, TRUE);
  g_clear_pointer (&self->plan, kp_plan_free);
  g_clear_pointer (&self->attempts, g_array_unref);
  g_clear_pointer (&self->renewed, g_array_unref);
  kp_failure_clear (&self->failure);
  g_clear_pointer (&self->best_provider, g_free);
  g_clear_pointer (&self->best_message, g_free);
  g_clear_pointer (&self->best_code, g_free);
  g_clear_pointer (&self->pending, g_byte_array_unref);
  if (self->event.data != NULL)
    g_string_free (self->event.data, TRUE);
  g_clear_pointer (&self->request_id, g_free);
  g_clear_pointer (&self->error_message, g_free);

  G_OBJECT_CLASS (kp_relay_parent_class)->finalize (object);
}

static void
kp_relay_class_init (KpRelayClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = kp_relay_dispose;
  object_class->finalize = kp_relay_finalize;
}

static void
attempt_clear (gpointer data)
{
  KpAttemptRow *attempt = data;

  g_clear_pointer (&attempt->provider, g_free);
  g_clear_pointer (&attempt->failure, g_free);
}

static void
kp_relay_init (KpRelay *self)
{
  self->cancellable = g_cancellable_new ();
  self->attempts = g_array_new (FALSE, TRUE, sizeof (KpAttemptRow));
  g_array_set_clear_func (self->attempts, attempt_clear);
  self->renewed = g_array_new (FALSE, FALSE, sizeof (gint64));
  self->failure.retry_after = -1;
  self->retry_after = -1;
  self->deadline_us = -1;
  kp_relay_init_deadline (self);
  self->started_us = g_get_monotonic_time ();
  self->started_real_us = g_get_real_time ();
  self->outcome = KP_OUTCOME_OK;
}

/* Attempts ---------------------------------------------------------------- */

static void
record_attempt_as (KpRelay    *self,
                   guint       status,
                   const char *failure)
{
  KpAttemptRow attempt = { 0 };

  attempt.provider = g_strdup (kp_provider_get_id (self->provider));
  attempt.credential_id = self->credential ? kp_credential_get_id (self->credential) : 0;
  attempt.status = status;
  attempt.failure = g_strdup (failure);
  attempt.ms = (g_get_monotonic_time () - self->attempt_started_us) / 1000;
  g_array_append_val (self->attempts, attempt);
}

void
kp_relay_record_attempt (KpRelay        *self,
                guint           status,
                KpFailureClass  klass)
{
  record_attempt_as (self, status,
                     klass != KP_FAILURE_NONE ? kp_failure_class_to_string (klass) : NULL);
}

/* How telling a failure is to the client: a provider's own error about the
 * key, quota, model or rate beats a server error, which beats no answer.
 */
static guint
informativeness (const KpFailure *failure,
                 guint            status)
{
  if (status == 0)
    return 1;
  if (failure->klass == KP_FAILURE_DOWN)
    return 2;
  return 3;
}

static void try_route (KpRelay *self);
static void give_up_route (KpRelay *self,
                           guint    status);

/* An error event in a 200 stream has no status of its own: take the code when
 * it is one (OpenRouter puts the HTTP status there), else 502.
 */
guint
kp_relay_event_failure_status (KpRelay *self)
{
  guint64 code;

  if (self->failure.code != NULL &&
      g_ascii_string_to_unsigned (self->failure.code, 10, 400, 599, &code, NULL))
    return (guint)code;
  return 502;
}

static void
all_routes_failed (KpRelay *self)
{
  g_autoptr(GString) tried = g_string_new (NULL);
  g_autofree char *message = NULL;
  guint status = self->best_status ? self->best_status : (self->best_timed_out ? 504 : 502);

  for (guint i = 0; i < self->attempts->len; i++)
    {
      KpAttemptRow *attempt = &g_array_index (self->attempts, KpAttemptRow, i);

      g_string_append_printf (tried, "%s%s", i ? ", " : "", attempt->provider);
      if (attempt->status)
        g_string_append_printf (tried, " %u", attempt->status);
      g_string_append_printf (tried, " %s", attempt->failure ? attempt->failure : "ok");
    }

  message = g_strdup_printf ("%s: %s (%u route%s tried: %s)", self->best_provider,
                             self->best_message ? self->best_message : "failed",
                             self->attempts->len, self->attempts->len == 1 ? "" : "s", tried->str);
  self->outcome = KP_OUTCOME_UPSTREAM_ERROR;
  self->route_index = self->plan->routes->len - 1;
  if (self->retry_after >= 0 && !self->committed && !self->client_gone)
    {
      g_autofree char *seconds = g_strdup_printf ("%" G_GINT64_FORMAT, self->retry_after);

      soup_message_headers_replace (kp_exchange_get_response_headers (self->client),
                                    "Retry-After", seconds);
    }
  kp_relay_reply_error (self, status, self->best_code ? self->best_code
                                             : kp_failure_class_to_string (self->best_class), message);
}

/* A new token came for the route's refused one, or not: the same route is
 * tried again with it, or given up as any refused route.
 */
static void
on_token_renewed (GObject      *object,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  g_autoptr(KpRelay) self = user_data;
  g_autoptr(GError) error = NULL;
  gboolean renewed = kp_auth_refresh_finish (KP_AUTH (object), result, &error);
  char *message;

  kp_relay_release_upstream (self);
  if (self->client_gone || self->completed)
    {
      kp_failure_clear (&self->failure);
      return;
    }

  if (renewed)
    {
      g_debug ("%s: a new token came; the same route again", self->request_id);
      record_attempt_as (self, self->renew_status, "auth_refreshed");
      kp_failure_clear (&self->failure);
      try_route (self);
      return;
    }

  if (self->timed_out)
    message = g_strdup_printf ("%s (no new token within %u.%u s)",
                               self->failure.message ? self->failure.message : "refused",
                               self->first_byte_ms / 1000, (self->first_byte_ms % 1000) / 100);
  else
    message = g_strdup_printf ("%s (no new token: %s)",
                               self->failure.message ? self->failure.message : "refused",
                               error->message);
  g_free (self->failure.message);
  self->failure.message = kp_relay_scrub (self, message);
  g_free (message);
  give_up_route (self, self->renew_status);
}

/* The provider refused the route's access token (not the account): unless
 * this request renewed the credential's token already, a new one is asked of
 * its auth now (one refresh for every request that waits on it, within the
 * first-byte deadline), and the same route is tried again with it. A static
 * key is never renewed. Returns TRUE when the route waits for the token.
 */
static gboolean
renew_token (KpRelay *self,
             guint    status)
{
  KpAuth *auth = self->credential != NULL ? kp_credential_get_auth (self->credential) : NULL;
  gint64 id;

  if (auth == NULL || self->committed || self->client_gone || self->completed ||
      self->failure.klass != KP_FAILURE_AUTH || self->failure.account_locked ||
      !kp_auth_can_refresh (auth))
    return FALSE;
  id = kp_credential_get_id (self->credential);
  for (guint i = 0; i < self->renewed->len; i++)
    if (g_array_index (self->renewed, gint64, i) == id)
      return FALSE;
  g_array_append_val (self->renewed, id);

  g_debug ("%s: route %u (%s): token refused, asking for a new one", self->request_id,
           g_array_index (self->plan->routes, KpRoute, self->route_index).rank,
           kp_provider_get_id (self->provider));
  self->renew_status = status;
  self->timed_out = FALSE;
  kp_relay_enter_phase (self, PHASE_FIRST_BYTE);
  kp_auth_refresh_async (auth, self->auth_serial, self->cancellable, on_token_renewed,
                         g_object_ref (self));
  return TRUE;
}

/* The current route failed before anything reached the client: a refused
 * access token is renewed and the route tried once more (renew_token());
 * otherwise note it, put the key or offering out of use as the failure class
 * says, and go on with the next route.
 */
void
kp_relay_route_failed (KpRelay *self,
              guint    status)
{
  /* From here on the provider's words may reach a log, the ledger or the
   * client: never with a key of the route in them.
   */
  if (self->failure.message != NULL)
    {
      char *clean = kp_relay_scrub (self, self->failure.message);

      g_free (self->failure.message);
      self->failure.message = clean;
    }

  kp_relay_release_upstream (self);
  if (renew_token (self, status))
    return;
  give_up_route (self, status);
}

/* Notes the current route's failure, puts its key or offering out of use,
 * and goes on with the next route.
 */
static void
give_up_route (KpRelay *self,
               guint    status)
{
  const KpRoute *route = &g_array_index (self->plan->routes, KpRoute, self->route_index);
  guint score = informativeness (&self->failure, status);

  kp_relay_record_attempt (self, status, self->failure.klass);
  /* Keypool's own pool was full: no key or provider is at fault. */
  if (!(self->timed_out && self->phase == PHASE_QUEUED))
    kp_gateway_note_failure (self->gateway, route, &self->failure);
  if ((self->failure.klass == KP_FAILURE_RATE_LIMITED || self->failure.klass == KP_FAILURE_QUOTA) &&
      self->failure.retry_after >= 0 &&
      (self->retry_after < 0 || self->failure.retry_after < self->retry_after))
    self->retry_after = self->failure.retry_after;

  g_debug ("%s: route %u (%s) failed: %s %s", self->request_id, route->rank,
           kp_provider_get_id (self->provider), kp_failure_class_to_string (self->failure.klass),
           self->failure.message ? self->failure.message : "");

  if (score >= self->best_score)
    {
      g_autofree char *clean = g_strdup (self->failure.message);

      self->best_score = score;
      self->best_status = status;
      self->best_class = self->failure.klass;
      self->best_timed_out = self->timed_out;
      g_free (self->best_provider);
      self->best_provider = g_strdup (kp_provider_get_name (self->provider));
      g_free (self->best_message);
      self->best_message = g_steal_pointer (&clean);
      g_free (self->best_code);
      self->best_code = g_strdup (self->failure.code);
    }
  kp_failure_clear (&self->failure);

  if (self->client_gone || self->completed)
    return;

  self->route_index++;
  if (self->route_index < self->plan->routes->len)
    try_route (self);
  else
    all_routes_failed (self);
}

void
kp_relay_upstream_failed (KpRelay *self,
                 GError  *error)
{
  const char *name = kp_provider_get_name (self->provider);
  g_autofree char *message = NULL;

  kp_relay_release_upstream (self);

  if (self->client_gone || self->completed)
    return;

  if (self->timed_out && self->phase == PHASE_QUEUED)
    message = g_strdup_printf ("no free connection to it within %u s: Keypool opens at most %u "
                               "at once to one provider", self->first_byte_ms / 1000,
                               kp_gateway_get_upstream_conns (self->gateway));
  else if (self->timed_out)
    {
      guint timeout_ms = kp_relay_phase_timeout_ms (self, self->phase);

      message = g_strdup_printf ("no answer within %u.%u s (%s timeout)",
                                 timeout_ms / 1000, (timeout_ms % 1000) / 100,
                                 kp_relay_phase_name (self->phase));
    }
  else
    message = g_strdup (error->message);

  if (self->committed)
    {
      g_autofree char *broke = g_strdup_printf ("The stream from %s broke off: %s.", name,
                                                self->timed_out ? "no data arrived in time"
                                                                : error->message);

      self->outcome = KP_OUTCOME_INTERRUPTED;
      kp_relay_reply_error (self, 502, "upstream_interrupted", broke);
      return;
    }

  /* Nothing reached the client yet: another route can still answer. */
  self->failure = (KpFailure) {
    .klass = KP_FAILURE_DOWN,
    .message = g_strdup_printf ("%s (%s)", message,
                                g_uri_get_host (self->upstream_uri)),
    .code = g_strdup (self->timed_out ? "upstream_timeout" : "upstream_unreachable"),
    .retry_after = -1,
  };
  kp_relay_route_failed (self, 0);
}

/* Request ---------------------------------------------------------------- */

/* Starts the current route: a fresh exchange with its provider and key. A
 * route whose wire cannot express the request is passed over.
 */
static void
try_route (KpRelay *self)
{
  const KpRoute *route;
  SoupMessageHeaders *headers;
  g_autoptr(GBytes) body = NULL;

  for (;;)
    {
      route = &g_array_index (self->plan->routes, KpRoute, self->route_index);
      g_clear_object (&self->provider);
      g_clear_object (&self->credential);
      clear_upstream_request (self);
      self->offering = route->offering;
      self->provider = g_object_ref (route->offering->provider);
      self->credential = route->credential ? g_object_ref (route->credential) : NULL;
      self->upstream_wire = kp_wire_route_for (self->wire, self->offering);
      self->target = (KpWireTarget) {
        .provider = self->provider, .offering = self->offering,
        .project = self->credential ? kp_credential_get_meta (self->credential, "project") : NULL,
        .account = self->credential ? kp_credential_get_account (self->credential) : NULL,
      };

      g_clear_pointer (&self->translate_error, g_free);
      if (self->upstream_wire != NULL)
        {
          g_autoptr(GError) error = NULL;

          body = kp_wire_build_upstream (self->req, self->upstream_wire, &self->target, &error);
          if (body != NULL)
            {
              g_autofree char *uri = kp_wire_upstream_uri (self->req, self->upstream_wire,
                                                           &self->target);

              kp_wire_target_clear (&self->target);

              self->upstream_uri = uri != NULL ? g_uri_parse (uri, SOUP_HTTP_URI_FLAGS, NULL) : NULL;
              if (self->upstream_uri != NULL && g_uri_get_host (self->upstream_uri) != NULL &&
                  *g_uri_get_host (self->upstream_uri) != '\0' &&
                  (g_strcmp0 (g_uri_get_scheme (self->upstream_uri), "http") == 0 ||
                   g_strcmp0 (g_uri_get_scheme (self->upstream_uri), "https") == 0))
                break;
              g_clear_pointer (&self->upstream_uri, g_uri_unref);
              g_clear_pointer (&body, g_bytes_unref);
              self->translate_error = g_strdup ("its address for this model is not a valid URL");
            }
          else
            self->translate_error = g_strdup (error->message);
        }
      else
        self->translate_error = g_strdup ("it does not serve this API");

      g_debug ("%s: route %u (%s) cannot take this request: %s", self->request_id, route->rank,
               kp_provider_get_id (self->provider), self->translate_error);
      if (++self->route_index < self->plan->routes->len)
        continue;

      if (self->attempts->len > 0)
        {
          all_routes_failed (self);
        }
      else
        {
          g_autofree char *message =
            g_strdup_printf ("%s cannot take this request: %s", kp_provider_get_name (self->provider),
                             self->translate_error);

          self->outcome = KP_OUTCOME_CLIENT_ERROR;
          kp_relay_reply_error (self, 400, "unsupported_request", message);
        }
      return;
    }

  /* Nothing of an earlier attempt carries over. */
  self->body_mode = BODY_NONE;
  self->upstream_status = 0;
  self->timed_out = FALSE;
  self->failed = FALSE;
  self->saw_done = FALSE;
  self->saw_finish = FALSE;
  self->usage = (KpUsage) { 0 };
  g_byte_array_set_size (self->pending, 0);
  g_string_truncate (self->out, 0);
  g_clear_pointer (&self->bridge, kp_wire_bridge_free);
  self->scanned = 0;
  /* The last route's calls may still be winding down on the old one. */
  g_clear_object (&self->cancellable);
  self->cancellable = g_cancellable_new ();
  self->attempt_started_us = g_get_monotonic_time ();
  self->attempt_number = self->attempts->len + 1;

  g_debug ("%s: %s → route %u of %u: %s (%s)", self->request_id, self->req->model, route->rank,
           self->plan->routes->len, kp_provider_get_id (self->provider),
           self->offering->upstream_id);

  self->upstream_request = headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_REQUEST);
  kp_provider_apply_headers (self->provider, headers,
                             self->credential ? kp_credential_get_token (self->credential) : NULL);
  self->auth_serial = self->credential != NULL && kp_credential_get_auth (self->credential) != NULL
                        ? kp_auth_get_serial (kp_credential_get_auth (self->credential)) : 0;
  soup_message_headers_replace (headers, "Accept",
                                self->req->stream ? "text/event-stream" : "application/json");
  if (self->upstream_wire->add_headers != NULL)
    self->upstream_wire->add_headers (self->req, headers);
  soup_message_headers_replace (headers, "Content-Type", "application/json");
  self->upstream_body = g_steal_pointer (&body);
  kp_relay_send_upstream (self);
}

/* Only the offerings whose provider can serve the client's API. */
static GPtrArray *
fitting_offerings (KpRelay   *self,
                   GPtrArray *offerings)
{
  GPtrArray *fitting = g_ptr_array_new ();

  for (guint i = 0; i < offerings->len; i++)
    {
      const KpOffering *offering = g_ptr_array_index (offerings, i);

      if (kp_wire_route_for (self->wire, offering) != NULL)
        g_ptr_array_add (fitting, (gpointer)offering);
    }
  return fitting;
}

/**
 * kp_relay_start:
 * @self: a #KpRelay
 *
 * Parses the client's request, plans the routes and starts with the first.
 * Every outcome, including a refusal, ends the client's response.
 */
void
kp_relay_start (KpRelay *self)
{
  g_autoptr(GPtrArray) offerings = NULL;
  g_autoptr(GPtrArray) fitting = NULL;
  g_autoptr(GBytes) body = NULL;
  g_autoptr(GError) error = NULL;
  KpRouteRequest request = { 0 };
  g_autofree char *refusal = NULL;

  g_return_if_fail (KP_IS_RELAY (self));

  body = kp_exchange_take_body (self->client);
  self->req = kp_wire_request_new (self->wire, body,
                                   kp_exchange_get_request_headers (self->client));
  kp_http_set_request_path (self->req, self->client);

  /* A refusal below is the client's error, and is recorded as one. */
  self->outcome = KP_OUTCOME_CLIENT_ERROR;
  if (!kp_wire_request_parse (self->req, &error))
    {
      kp_relay_reply_error (self, 400, kp_wire_error_code (error), error->message);
      return;
    }

  offerings = kp_gateway_resolve (self->gateway, self->req->model, &self->req->providers);
  if (offerings == NULL)
    {
      g_autofree char *message =
        kp_catalog_describe_unknown (kp_gateway_get_catalog (self->gateway), self->req->model);

      kp_relay_reply_error (self, 404, "model_not_found", message);
      return;
    }
  fitting = fitting_offerings (self, offerings);
  if (fitting->len == 0)
    {
      g_autofree char *message =
        g_strdup_printf ("No provider serves “%s” at %s: it is known, but not as a model "
                         "for this API.", self->req->model,
                         kp_exchange_get_path (self->client));

      kp_relay_reply_error (self, 404, "model_not_found", message);
      return;
    }
  self->outcome = KP_OUTCOME_OK;

  request.prompt_tokens = self->req->prompt_tokens;
  request.output_tokens = self->req->output_tokens;
  request.providers = (const char * const *)self->req->providers;
  self->plan = kp_gateway_plan (self->gateway, fitting, &request);
  refusal = kp_budgets_filter_plan (kp_gateway_get_budgets (self->gateway), self->plan,
                                    self->client_id);
  if (refusal != NULL)
    {
      self->outcome = KP_OUTCOME_CLIENT_ERROR;
      kp_relay_reply_error (self, 429, "budget_exceeded", refusal);
      return;
    }

  if (self->plan->routes->len == 0)
    {
      g_autofree char *message = kp_plan_describe_empty (self->plan, self->req->model);

      self->outcome = KP_OUTCOME_UPSTREAM_ERROR;
      kp_relay_reply_error (self, 503, "no_route", message);
      return;
    }

  self->out = g_string_new (NULL);
  self->pending = g_byte_array_sized_new (READ_CHUNK);
  self->pending_cap = READ_CHUNK;
  self->event.data = g_string_sized_new (1024);
  try_route (self);
}

/**
 * kp_relay_new:
 * @gateway: the gateway
 * @exchange: the client's exchange, already paused by the caller
 * @request_id: the id sent back in `x-request-id`
 */
KpRelay *
kp_relay_new (KpGateway         *gateway,
              KpExchange        *exchange,
              const char        *request_id)
{
  KpRelay *self;

  g_return_val_if_fail (KP_IS_GATEWAY (gateway), NULL);
  g_return_val_if_fail (exchange != NULL, NULL);

  self = g_object_new (KP_TYPE_RELAY, NULL);
  self->gateway = g_object_ref (gateway);
  /* Read once: the read loop consults them for every chunk. */
  kp_gateway_get_timeouts (gateway, &self->connect_ms, &self->first_byte_ms, &self->idle_ms);
  kp_gateway_get_read_caps (gateway, &self->body_cap, &self->event_cap, NULL);
  self->client = kp_exchange_ref (exchange);
  self->request_id = g_strdup (request_id);
  self->client_id = kp_exchange_get_client (exchange);
  self->wire = kp_wire_for_route (kp_exchange_get_path (exchange));
  if (self->wire == NULL)
    self->wire = kp_wire_default ();
  kp_exchange_set_done_func (exchange, kp_relay_on_client_done, self);

  /* A relay lives until the client's response is finished. */
  g_object_ref (self);
  return self;
}

/**
 * kp_relay_abort:
 * @self: a #KpRelay
 * @reason: what to tell the client
 *
 * Ends the exchange now, as when Keypool shuts down: the upstream request is
 * cancelled and the client gets an error (an error event mid-stream).
 */
void
kp_relay_abort (KpRelay    *self,
                const char *reason)
{
  g_return_if_fail (KP_IS_RELAY (self));

  if (self->client_gone || self->completed)
    return;

  g_cancellable_cancel (self->cancellable);
  kp_relay_release_upstream (self);
  self->outcome = self->committed ? KP_OUTCOME_INTERRUPTED : KP_OUTCOME_UPSTREAM_ERROR;
  kp_relay_reply_error (self, 503, "shutting_down", reason);
}

/**
 * kp_relay_get_client_id:
 *
 * Returns: the client whose token the request carried;
 *   %KP_CLIENT_OTHER for the main token
 */
guint
kp_relay_get_client_id (KpRelay *self)
{
  g_return_val_if_fail (KP_IS_RELAY (self), KP_CLIENT_OTHER);
  return self->client_id;
}

/**
 * kp_relay_get_api:
 *
 * Returns: the id of the API the client speaks, as the ledger records it
 */
const char *
kp_relay_get_api (KpRelay *self)
{
  g_return_val_if_fail (KP_IS_RELAY (self), NULL);
  return self->wire->id;
}

const char *
kp_relay_get_request_id (KpRelay *self)
{
  g_return_val_if_fail (KP_IS_RELAY (self), NULL);
  return self->request_id;
}

const char *
kp_relay_get_model (KpRelay *self)
{
  g_return_val_if_fail (KP_IS_RELAY (self), NULL);
  return self->req != NULL ? self->req->model : NULL;
}

const char *
kp_relay_get_provider_id (KpRelay *self)
{
  g_return_val_if_fail (KP_IS_RELAY (self), NULL);
  return self->provider ? kp_provider_get_id (self->provider) : NULL;
}

const char *
kp_relay_get_upstream_model (KpRelay *self)
{
  g_return_val_if_fail (KP_IS_RELAY (self), NULL);
  return self->offering ? self->offering->upstream_id : NULL;
}

guint
kp_relay_get_status (KpRelay *self)
{
  g_return_val_if_fail (KP_IS_RELAY (self), 0);
  return self->status;
}

KpOutcome
kp_relay_get_outcome (KpRelay *self)
{
  g_return_val_if_fail (KP_IS_RELAY (self), KP_OUTCOME_CANCELLED);
  return self->outcome;
}

const char *
kp_relay_get_error_message (KpRelay *self)
{
  g_return_val_if_fail (KP_IS_RELAY (self), NULL);
  return self->error_message;
}

const KpUsage *
kp_relay_get_usage (KpRelay *self)
{
  g_return_val_if_fail (KP_IS_RELAY (self), NULL);
  return &self->usage;
}

KpCostSource
kp_relay_get_cost (KpRelay *self,
                   gint64  *cost_nano)
{
  g_return_val_if_fail (KP_IS_RELAY (self), KP_COST_UNKNOWN);
  return kp_usage_get_cost (&self->usage, self->offering, cost_nano);
}

gboolean
kp_relay_get_streamed (KpRelay *self)
{
  g_return_val_if_fail (KP_IS_RELAY (self), FALSE);
  return self->body_mode == BODY_SSE;
}

gint64
kp_relay_get_ttfb_ms (KpRelay *self)
{
  g_return_val_if_fail (KP_IS_RELAY (self), -1);
  return self->first_byte_us ? (self->first_byte_us - self->started_us) / 1000 : -1;
}

gint64
kp_relay_get_total_ms (KpRelay *self)
{
  g_return_val_if_fail (KP_IS_RELAY (self), -1);
  return self->ended_us ? (self->ended_us - self->started_us) / 1000 : -1;
}

KpGateway *
kp_relay_get_gateway (KpRelay *self)
{
  g_return_val_if_fail (KP_IS_RELAY (self), NULL);
  return self->gateway;
}

/**
 * kp_relay_get_attempts:
 *
 * Returns: (transfer none) (element-type KpAttemptRow): every route tried
 */
GArray *
kp_relay_get_attempts (KpRelay *self)
{
  g_return_val_if_fail (KP_IS_RELAY (self), NULL);
  return self->attempts;
}

/**
 * kp_relay_get_credential:
 *
 * Returns: (transfer none) (nullable): the key used, if any
 */
KpCredential *
kp_relay_get_credential (KpRelay *self)
{
  g_return_val_if_fail (KP_IS_RELAY (self), NULL);
  return self->credential;
}

/**
 * kp_relay_get_start_time:
 *
 * Returns: when the request arrived, in unix µs
 */
gint64
kp_relay_get_start_time (KpRelay *self)
{
  g_return_val_if_fail (KP_IS_RELAY (self), 0);
  return self->started_real_us;
}

const char *
kp_outcome_to_string (KpOutcome outcome)
{
  switch (outcome)
    {
    case KP_OUTCOME_OK:
      return "ok";
    case KP_OUTCOME_UPSTREAM_ERROR:
      return "upstream_error";
    case KP_OUTCOME_CLIENT_ERROR:
      return "client_error";
    case KP_OUTCOME_INTERRUPTED:
      return "interrupted";
    case KP_OUTCOME_CANCELLED:
    default:
      return "cancelled";
    }
}
