/* kp-relay.c: one client request: route, upstream exchange, stream relay
 *
 * A relay lives from the moment the server hands it a parsed request until
 * the client's response is finished (written, or the client went away). It
 * holds a reference on the server message for that whole time and never
 * touches the message after SoupServerMessage::finished: libsoup 3.2 logs a
 * CRITICAL when a message without I/O is paused or unpaused.
 *
 * Streams are relayed event by event as they arrive: the upstream body is
 * read without blocking into one buffer, complete SSE events are appended to
 * the client's chunked response at once and parsed alongside for usage. The
 * client's response body does not accumulate.
 *
 * The client speaks OpenAI's chat API or Anthropic's Messages API, and so
 * does each provider. When the two match, the request and the answer pass
 * through (only the model id changes); when they differ, kp-anthropic
 * translates the request, the answer, its errors, and each stream event as
 * it arrives.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include <gio/gio.h>
#include <json-glib/json-glib.h>

#include "kp-anthropic.h"
#include "kp-gateway.h"
#include "kp-http.h"
#include "kp-relay.h"
#include "kp-sse.h"

#define READ_CHUNK        16384
#define READS_PER_DISPATCH 16
#define ERROR_BODY_LIMIT  (1024 * 1024)
#define DEFAULT_OUTPUT_TOKENS 1000

typedef enum
{
  PHASE_IDLE,
  PHASE_CONNECT,
  PHASE_FIRST_BYTE,
  PHASE_BODY,
} Phase;

/* How the client's response ends once the request's row is written. */
typedef enum
{
  FINAL_NONE,      /* it has ended already (the client went away) */
  FINAL_UNPAUSE,   /* a whole response is set: let it go out */
  FINAL_COMPLETE,  /* a stream: write its last chunk */
} FinalAction;

typedef enum
{
  BODY_NONE,       /* no upstream answer yet */
  BODY_SSE,        /* relay events as they come */
  BODY_WHOLE,      /* a non-streamed answer: read it, then send it at once */
  BODY_ERROR,      /* an upstream error before anything reached the client */
} BodyMode;

struct _KpRelay
{
  GObject             parent_instance;

  KpGateway          *gateway;          /* owned: the row is written after the response */
  SoupServerMessage  *msg;              /* owned until the relay is finalized */
  GCancellable       *cancellable;
  char               *request_id;

  /* The request. */
  KpDialect           client_dialect;
  GBytes             *client_body;
  JsonParser         *parser;           /* its JSON, rewritten for each route */
  char               *model;
  GStrv               providers;        /* the providers it may go to, or NULL */
  gint64              prompt_tokens;    /* estimated */
  gint64              output_tokens;    /* max_tokens, or a default */
  gboolean            client_stream;
  gboolean            strip_usage;      /* we asked for usage; the client did not */
  gboolean            body_changed;
  JsonNode           *translated;       /* the request in the other dialect, made once */
  char               *translate_error;  /* why it could not be, or NULL */

  /* The routes, and the one being tried. */
  KpPlan             *plan;
  guint               route_index;
  const KpOffering   *offering;
  KpProvider         *provider;
  KpCredential       *credential;       /* NULL for a provider without keys */
  KpDialect           upstream_dialect;
  GArray             *attempts;         /* of KpAttemptRow */
  gint64              attempt_started_us;
  guint               attempt_number;   /* 1 for the first route tried */
  KpFailure           failure;          /* of the current route */
  gboolean            failed;
  guint               best_score;       /* the most telling failure so far */
  guint               best_status;
  KpFailureClass      best_class;
  gboolean            best_timed_out;
  char               *best_provider;
  char               *best_message;
  char               *best_code;
  gint64              retry_after;      /* soonest a rate-limited route is back; -1 */

  /* The upstream exchange. */
  SoupMessage        *upstream;
  GInputStream       *stream;
  GSource            *read_source;
  GSource            *timer;
  Phase               phase;
  BodyMode            body_mode;
  gboolean            timed_out;
  guint               upstream_status;
  GByteArray         *pending;          /* received, not yet consumed */
  gsize               pending_cap;      /* bytes allocated for it */
  KpSseEvent          event;
  KpStreamTranslator *translator;       /* when the two dialects differ */
  GString            *out;              /* client bytes held until the answer begins */

  /* The client side. */
  GSource            *client_watch;
  gulong              finished_handler;
  gboolean            committed;        /* status and headers went to the client */
  gboolean            completed;        /* we ended the client's response */
  gboolean            client_gone;      /* SoupServerMessage::finished fired */
  gboolean            ended;            /* outcome final, ledger row on its way */
  FinalAction         final_action;

  /* What happened. */
  guint               status;
  KpOutcome           outcome;
  char               *error_message;
  KpUsage             usage;
  gboolean            saw_done;
  gboolean            saw_finish;       /* a choice carried a finish_reason */
  gint64              started_us;
  gint64              started_real_us;
  gint64              first_byte_us;
  gint64              ended_us;
};

G_DEFINE_TYPE (KpRelay, kp_relay, G_TYPE_OBJECT)

static void read_upstream (KpRelay *self);

static void
clear_source (GSource **source)
{
  if (*source != NULL)
    {
      g_source_destroy (*source);
      g_clear_pointer (source, g_source_unref);
    }
}

/* Ends the upstream exchange now. Dropping a body stream before its end
 * closes that connection, so a provider never keeps generating for nobody.
 */
static void
release_upstream (KpRelay *self)
{
  clear_source (&self->read_source);
  clear_source (&self->timer);
  g_clear_object (&self->stream);
}

static void
kp_relay_dispose (GObject *object)
{
  KpRelay *self = (KpRelay *)object;

  clear_source (&self->read_source);
  clear_source (&self->timer);
  clear_source (&self->client_watch);

  G_OBJECT_CLASS (kp_relay_parent_class)->dispose (object);
}

static void
kp_relay_finalize (GObject *object)
{
  KpRelay *self = (KpRelay *)object;

  if (self->msg != NULL && self->finished_handler != 0)
    g_signal_handler_disconnect (self->msg, self->finished_handler);
  g_clear_object (&self->msg);
  g_clear_object (&self->gateway);
  g_clear_object (&self->cancellable);
  g_clear_object (&self->upstream);
  g_clear_object (&self->stream);
  g_clear_object (&self->provider);
  g_clear_object (&self->credential);
  g_clear_object (&self->parser);
  g_clear_pointer (&self->client_body, g_bytes_unref);
  g_clear_pointer (&self->translated, json_node_unref);
  g_clear_pointer (&self->translate_error, g_free);
  g_clear_pointer (&self->translator, kp_stream_translator_free);
  if (self->out != NULL)
    g_string_free (self->out, TRUE);
  g_clear_pointer (&self->providers, g_strfreev);
  g_clear_pointer (&self->plan, kp_plan_free);
  g_clear_pointer (&self->attempts, g_array_unref);
  kp_failure_clear (&self->failure);
  g_clear_pointer (&self->best_provider, g_free);
  g_clear_pointer (&self->best_message, g_free);
  g_clear_pointer (&self->best_code, g_free);
  g_clear_pointer (&self->pending, g_byte_array_unref);
  if (self->event.data != NULL)
    g_string_free (self->event.data, TRUE);
  g_clear_pointer (&self->request_id, g_free);
  g_clear_pointer (&self->model, g_free);
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
  self->parser = json_parser_new ();
  self->attempts = g_array_new (FALSE, TRUE, sizeof (KpAttemptRow));
  g_array_set_clear_func (self->attempts, attempt_clear);
  self->failure.retry_after = -1;
  self->retry_after = -1;
  self->started_us = g_get_monotonic_time ();
  self->started_real_us = g_get_real_time ();
  self->outcome = KP_OUTCOME_OK;
}

/* Client side ----------------------------------------------------------- */

/* Kept in the ledger and shown, so never with the key in it, even when a
 * provider echoes the key in its error.
 */
static void
set_error_message (KpRelay    *self,
                   const char *message)
{
  g_free (self->error_message);
  self->error_message = kp_secret_scrub (message,
                                         self->credential
                                           ? kp_credential_get_secret (self->credential) : NULL);
}

static void
note_first_byte (KpRelay *self)
{
  if (self->first_byte_us == 0)
    self->first_byte_us = g_get_monotonic_time ();
}

static void
add_route_headers (KpRelay            *self,
                   SoupMessageHeaders *headers)
{
  soup_message_headers_replace (headers, "x-request-id", self->request_id);
  if (self->provider != NULL && self->plan != NULL && self->route_index < self->plan->routes->len)
    {
      const KpRoute *route = &g_array_index (self->plan->routes, KpRoute, self->route_index);
      g_autofree char *value = NULL;
      g_autofree char *key = route->credential
        ? g_strdup_printf ("%" G_GINT64_FORMAT, kp_credential_get_id (route->credential))
        : g_strdup ("none");
      char cost[G_ASCII_DTOSTR_BUF_SIZE] = "unknown";

      if (route->expected_usd >= 0)
        g_ascii_formatd (cost, sizeof cost, "%.6f", route->expected_usd);
      value = g_strdup_printf ("rank=%u/%u provider=%s key=%s model=%s expected_usd=%s attempt=%u",
                               route->rank, self->plan->routes->len,
                               kp_provider_get_id (self->provider), key,
                               route->offering->upstream_id, cost, self->attempt_number);
      soup_message_headers_replace (headers, "x-keypool-provider",
                                    kp_provider_get_id (self->provider));
      soup_message_headers_replace (headers, "x-keypool-route", value);
    }
}

/* The outcome is final: the row goes to the ledger, and the end of the
 * response (@action) waits until it is committed, so a client that has seen
 * its answer end has its row even if Keypool is killed right after.
 */
static void
end_relay (KpRelay     *self,
           FinalAction  action)
{
  if (self->ended)
    return;

  self->ended = TRUE;
  self->final_action = action;
  self->ended_us = g_get_monotonic_time ();
  clear_source (&self->client_watch);
  kp_gateway_relay_finished (self->gateway, self);
}

/**
 * kp_relay_row_written:
 *
 * Called by the gateway once the request's row is committed: the client's
 * response may end now.
 */
void
kp_relay_row_written (KpRelay *self)
{
  g_return_if_fail (KP_IS_RELAY (self));

  if (self->client_gone)
    return;

  switch (self->final_action)
    {
    case FINAL_COMPLETE:
      soup_message_body_complete (soup_server_message_get_response_body (self->msg));
      soup_server_message_unpause (self->msg);
      break;
    case FINAL_UNPAUSE:
      soup_server_message_unpause (self->msg);
      break;
    case FINAL_NONE:
    default:
      break;
    }
}

/* Ends the client's response with an error, in the client's protocol. Before
 * anything reached the client that is a plain HTTP error; after, it is an
 * error event and no [DONE], so the stream never looks complete.
 */
static void
reply_error (KpRelay    *self,
             guint       status,
             const char *code,
             const char *message)
{
  set_error_message (self, message);
  if (self->status == 0 || !self->committed)
    self->status = status;

  if (self->client_gone || self->completed)
    return;

  self->completed = TRUE;

  if (!self->committed)
    {
      add_route_headers (self, soup_server_message_get_response_headers (self->msg));
      kp_http_reply_json (self->msg, status,
                          kp_http_error_json_for (self->client_dialect, status, code, message));
      end_relay (self, FINAL_UNPAUSE);
    }
  else
    {
      SoupMessageBody *body = soup_server_message_get_response_body (self->msg);
      g_autofree char *json = kp_http_error_json_for (self->client_dialect, status, code, message);
      g_autofree char *event =
        g_strconcat (self->client_dialect == KP_DIALECT_ANTHROPIC ? "event: error\ndata: " : "data: ",
                     json, "\n\n", NULL);

      /* The error goes out now; the stream's end waits for the row. */
      soup_message_body_append (body, SOUP_MEMORY_COPY, event, strlen (event));
      soup_server_message_unpause (self->msg);
      end_relay (self, FINAL_COMPLETE);
    }
}

static void record_attempt (KpRelay *self, guint status, KpFailureClass klass);

static void
commit_stream (KpRelay *self)
{
  SoupMessageHeaders *headers;

  g_assert (!self->committed);

  /* From here on this route answers: no failover once a byte is out. */
  record_attempt (self, self->upstream_status, KP_FAILURE_NONE);
  kp_gateway_note_success (self->gateway, &g_array_index (self->plan->routes, KpRoute,
                                                          self->route_index));
  self->committed = TRUE;
  self->status = self->upstream_status;
  note_first_byte (self);

  headers = soup_server_message_get_response_headers (self->msg);
  soup_server_message_set_status (self->msg, self->upstream_status, NULL);
  soup_message_headers_set_encoding (headers, SOUP_ENCODING_CHUNKED);
  soup_message_headers_replace (headers, "Content-Type", "text/event-stream");
  soup_message_headers_replace (headers, "Cache-Control", "no-cache");
  add_route_headers (self, headers);

  /* Without this, every relayed byte stays in memory until the stream ends. */
  soup_message_body_set_accumulate (soup_server_message_get_response_body (self->msg), FALSE);
}

static void
forward (KpRelay    *self,
         const char *data,
         gsize       len)
{
  if (len == 0 || self->client_gone || self->completed)
    return;

  if (!self->committed)
    commit_stream (self);

  soup_message_body_append (soup_server_message_get_response_body (self->msg),
                            SOUP_MEMORY_COPY, data, len);
  soup_server_message_unpause (self->msg);
}

static void
on_client_finished (SoupServerMessage *msg,
                    KpRelay           *self)
{
  g_assert (KP_IS_RELAY (self));

  self->client_gone = TRUE;

  if (!self->completed)
    {
      /* The client hung up before we were done: stop the upstream at once. */
      self->outcome = KP_OUTCOME_CANCELLED;
      if (self->status == 0)
        self->status = 499;
      set_error_message (self, "The client closed the connection before the response was complete.");
      g_debug ("%s: client went away, cancelling upstream", self->request_id);
    }

  g_cancellable_cancel (self->cancellable);
  release_upstream (self);

  g_signal_handler_disconnect (msg, self->finished_handler);
  self->finished_handler = 0;

  end_relay (self, FINAL_NONE);

  /* The reference taken in kp_relay_new(): the exchange is over. */
  g_object_unref (self);
}

/* While a message is paused, libsoup 3.2 does not watch its connection, so a
 * client that hangs up while we wait for upstream would go unnoticed until
 * the next write. Watch the socket ourselves and treat EOF as a hang-up.
 */
static gboolean
on_client_socket (GSocket      *socket,
                  GIOCondition  condition,
                  gpointer      user_data)
{
  KpRelay *self = user_data;
  char byte;
  gssize n;

  if ((condition & (G_IO_HUP | G_IO_ERR)) == 0)
    {
      n = recv (g_socket_get_fd (socket), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
      if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)))
        {
          /* Pipelined data: not a hang-up, and we cannot tell more. */
          g_clear_pointer (&self->client_watch, g_source_unref);
          return G_SOURCE_REMOVE;
        }
    }

  g_clear_pointer (&self->client_watch, g_source_unref);

  if (!self->client_gone && !self->completed)
    {
      g_debug ("%s: client socket closed", self->request_id);
      self->outcome = KP_OUTCOME_CANCELLED;
      self->status = 499;
      set_error_message (self, "The client closed the connection before the response was complete.");
      g_cancellable_cancel (self->cancellable);

      /* Let libsoup notice: its write fails and it emits ::finished. */
      self->completed = TRUE;
      if (!self->committed)
        soup_server_message_set_status (self->msg, 499, NULL);
      else
        soup_message_body_complete (soup_server_message_get_response_body (self->msg));
      end_relay (self, FINAL_NONE);
      soup_server_message_unpause (self->msg);
    }

  return G_SOURCE_REMOVE;
}

static void
watch_client (KpRelay *self)
{
  GSocket *socket = soup_server_message_get_socket (self->msg);

  if (socket == NULL)
    return;

  self->client_watch = g_socket_create_source (socket, G_IO_IN | G_IO_HUP | G_IO_ERR, NULL);
  g_source_set_callback (self->client_watch, G_SOURCE_FUNC (on_client_socket), self, NULL);
  g_source_set_static_name (self->client_watch, "[keypool] client watch");
  g_source_attach (self->client_watch, NULL);
}

/* Timers ----------------------------------------------------------------- */

static const char *
phase_name (Phase phase)
{
  switch (phase)
    {
    case PHASE_CONNECT:
      return "connect";
    case PHASE_FIRST_BYTE:
      return "first byte";
    case PHASE_BODY:
      return "idle";
    case PHASE_IDLE:
    default:
      return "idle";
    }
}

static guint
phase_timeout_ms (KpRelay *self,
                  Phase    phase)
{
  guint connect_ms, first_byte_ms, idle_ms;

  kp_gateway_get_timeouts (self->gateway, &connect_ms, &first_byte_ms, &idle_ms);
  switch (phase)
    {
    case PHASE_CONNECT:
      return connect_ms;
    case PHASE_FIRST_BYTE:
      return first_byte_ms;
    case PHASE_BODY:
      return idle_ms;
    case PHASE_IDLE:
    default:
      return 0;
    }
}

static gboolean
on_timer (gpointer user_data)
{
  KpRelay *self = user_data;

  self->timed_out = TRUE;
  g_debug ("%s: %s timeout", self->request_id, phase_name (self->phase));
  g_source_set_ready_time (self->timer, -1);
  g_cancellable_cancel (self->cancellable);

  return G_SOURCE_CONTINUE;
}

static gboolean
timer_dispatch (GSource     *source,
                GSourceFunc  callback,
                gpointer     user_data)
{
  return callback (user_data);
}

static GSourceFuncs timer_funcs = { NULL, NULL, timer_dispatch, NULL, NULL, NULL };

/* One timer for all phases; moving a deadline is a field update, not a new
 * source, so the per-chunk cost of the idle timeout stays tiny.
 */
static void
enter_phase (KpRelay *self,
             Phase    phase)
{
  guint timeout_ms;

  self->phase = phase;
  timeout_ms = phase_timeout_ms (self, phase);

  if (self->timer == NULL)
    {
      if (timeout_ms == 0)
        return;
      self->timer = g_source_new (&timer_funcs, sizeof (GSource));
      g_source_set_callback (self->timer, on_timer, self, NULL);
      g_source_set_static_name (self->timer, "[keypool] relay timer");
      g_source_attach (self->timer, NULL);
    }

  if (timeout_ms == 0)
    g_source_set_ready_time (self->timer, -1);
  else
    g_source_set_ready_time (self->timer,
                             g_source_get_time (self->timer) + (gint64)timeout_ms * 1000);
}

/* Stream processing ----------------------------------------------------- */

static guint event_failure_status (KpRelay *self);

static gboolean
data_is_error (const GString *data)
{
  const char *p = data->str;

  while (g_ascii_isspace (*p))
    p++;
  return g_str_has_prefix (p, "{\"error\"");
}

/* With include_usage, every chunk says "usage":null; only the one with an
 * object is worth parsing.
 */
static gboolean
has_usage_object (const char *data)
{
  const char *p = data;

  while ((p = strstr (p, "\"usage\"")) != NULL)
    {
      p += strlen ("\"usage\"");
      while (g_ascii_isspace (*p))
        p++;
      if (*p != ':')
        continue;
      p++;
      while (g_ascii_isspace (*p))
        p++;
      if (*p == '{')
        return TRUE;
    }
  return FALSE;
}

static JsonObject *
parse_object (JsonParser    *parser,
              const GString *data)
{
  JsonNode *root;

  if (!json_parser_load_from_data (parser, data->str, data->len, NULL))
    return NULL;
  root = json_parser_get_root (parser);
  return root != NULL && JSON_NODE_HOLDS_OBJECT (root) ? json_node_get_object (root) : NULL;
}

static JsonObject *
get_object_member (JsonObject *object,
                   const char *member)
{
  JsonNode *node = object ? json_object_get_member (object, member) : NULL;

  return node != NULL && JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
}

/* An Anthropic stream, relayed as it is to an Anthropic client. Its
 * message_start (and any ping) comes before the answer; they are held back
 * until the first content block, so that an error event in its place can
 * still fail over. Usage comes in message_start and message_delta.
 */
static gboolean
handle_anthropic_event (KpRelay          *self,
                        const KpSseEvent *event,
                        const char       *raw,
                        gsize             raw_len)
{
  gboolean is_start = kp_sse_event_is (event, "message_start");
  gboolean is_delta = kp_sse_event_is (event, "message_delta");
  gboolean is_stop = kp_sse_event_is (event, "message_stop");

  if (!event->has_data)
    return self->committed;

  if (kp_sse_event_is (event, "error"))
    {
      if (!self->committed)
        {
          kp_failure_classify_event (&self->failure, event->data->str);
          self->failed = TRUE;
          return FALSE;
        }
      self->outcome = KP_OUTCOME_UPSTREAM_ERROR;
      set_error_message (self, event->data->str);
      return TRUE;
    }

  if (is_start || is_delta)
    {
      g_autoptr(JsonParser) parser = json_parser_new_immutable ();
      JsonObject *object = parse_object (parser, event->data);
      JsonObject *usage;

      if (is_start)
        object = get_object_member (object, "message");
      usage = get_object_member (object, "usage");
      if (usage != NULL)
        kp_usage_parse_anthropic (&self->usage, usage);
      if (is_delta)
        {
          JsonObject *delta = get_object_member (object, "delta");

          if (delta != NULL &&
              json_object_get_string_member_with_default (delta, "stop_reason", NULL) != NULL)
            self->saw_finish = TRUE;
        }
    }
  if (is_stop)
    self->saw_done = TRUE;

  if (self->committed)
    return TRUE;

  /* The answer begins (or ends without any content): what was held goes first. */
  if (is_delta || is_stop || g_str_has_prefix (event->name ? event->name : "", "content_block"))
    {
      if (self->out->len > 0)
        {
          forward (self, self->out->str, self->out->len);
          g_string_truncate (self->out, 0);
        }
      return TRUE;
    }

  g_string_append_len (self->out, raw, raw_len);
  return FALSE;
}

/* A stream in the other dialect: each event is translated into self->out,
 * which reaches the client once the answer has begun (see flush_translated).
 * The provider's own bytes are never forwarded.
 */
static gboolean
handle_translated_event (KpRelay          *self,
                         const KpSseEvent *event)
{
  g_autofree char *name = NULL;
  KpStreamStatus status;

  /* The provider's keep-alives (comments, Anthropic's pings) become a comment
   * in the client's stream, so that a long silence mid-answer does not look
   * like a dead connection to it.
   */
  if (!event->has_data || kp_sse_event_is (event, "ping"))
    {
      if (self->committed)
        g_string_append (self->out, ": keep-alive\n\n");
      return FALSE;
    }

  name = event->name ? g_strndup (event->name, event->name_len) : NULL;
  status = kp_stream_translator_feed (self->translator, name, event->data->str,
                                      event->data->len, self->out);
  self->usage = *kp_stream_translator_get_usage (self->translator);
  if (kp_stream_translator_has_finish (self->translator))
    self->saw_finish = TRUE;

  if (status == KP_STREAM_END)
    self->saw_done = TRUE;
  else if (status == KP_STREAM_ERROR && !self->completed)
    {
      kp_failure_classify_event (&self->failure, event->data->str);
      if (!self->committed && !kp_stream_translator_has_content (self->translator))
        {
          self->failed = TRUE;
          return FALSE;
        }

      /* Mid-answer: the client gets the error in its own dialect, and the end. */
      {
        g_autofree char *message =
          g_strdup_printf ("%s: %s", kp_provider_get_name (self->provider),
                           self->failure.message ? self->failure.message : "the stream failed");
        guint status_code = event_failure_status (self);

        if (self->out->len > 0)
          {
            forward (self, self->out->str, self->out->len);
            g_string_truncate (self->out, 0);
          }
        self->outcome = KP_OUTCOME_UPSTREAM_ERROR;
        reply_error (self, status_code,
                     self->failure.code ? self->failure.code : "upstream_error", message);
        kp_failure_clear (&self->failure);
      }
    }
  return FALSE;
}

static void
flush_translated (KpRelay *self)
{
  if (self->translator == NULL || self->out->len == 0)
    return;
  if (!self->committed && !self->saw_done &&
      !kp_stream_translator_has_content (self->translator))
    return;

  forward (self, self->out->str, self->out->len);
  g_string_truncate (self->out, 0);
}

/* Returns whether the event goes to the client. Before anything reached the
 * client, an error event is the route's failure (self->failed is set) and
 * keep-alive comments are held back, so that another route can still answer.
 */
static gboolean
handle_event (KpRelay          *self,
              const KpSseEvent *event,
              const char       *raw,
              gsize             raw_len)
{
  const GString *data = event->data;
  g_autoptr(JsonParser) parser = NULL;
  JsonObject *object;
  JsonNode *node;

  if (self->translator != NULL)
    return handle_translated_event (self, event);
  if (self->upstream_dialect == KP_DIALECT_ANTHROPIC)
    return handle_anthropic_event (self, event, raw, raw_len);

  if (!event->has_data)
    return self->committed;

  if (data->len == 6 && memcmp (data->str, "[DONE]", 6) == 0)
    {
      self->saw_done = TRUE;
      return TRUE;
    }

  if (data_is_error (data))
    {
      if (!self->committed)
        {
          kp_failure_classify_event (&self->failure, data->str);
          self->failed = TRUE;
          return FALSE;
        }
      self->outcome = KP_OUTCOME_UPSTREAM_ERROR;
      set_error_message (self, data->str);
      return TRUE;
    }

  if (!self->saw_finish && strstr (data->str, "\"finish_reason\":\"") != NULL)
    self->saw_finish = TRUE;

  /* Only the rare event that carries usage is parsed as JSON. */
  if (!has_usage_object (data->str))
    return TRUE;

  parser = json_parser_new_immutable ();
  if (!json_parser_load_from_data (parser, data->str, data->len, NULL))
    return TRUE;

  node = json_parser_get_root (parser);
  if (!JSON_NODE_HOLDS_OBJECT (node))
    return TRUE;
  object = json_node_get_object (node);

  node = json_object_get_member (object, "usage");
  if (node == NULL || !JSON_NODE_HOLDS_OBJECT (node))
    return TRUE;
  kp_usage_parse_openai (&self->usage, json_node_get_object (node));

  /* The usage-only chunk we asked for on the client's behalf. */
  if (self->strip_usage)
    {
      node = json_object_get_member (object, "choices");
      if (node != NULL && JSON_NODE_HOLDS_ARRAY (node) &&
          json_array_get_length (json_node_get_array (node)) == 0)
        return FALSE;
    }

  return TRUE;
}

/* Hands every complete event in the buffer to the client, keeping runs of
 * forwarded events together so that one read becomes one chunk.
 */
static void
process_events (KpRelay  *self,
                gboolean  eof)
{
  const char *buf = (const char *)self->pending->data;
  gsize len = self->pending->len;
  gsize offset = 0;
  gsize run_start = 0;
  gsize n;

  while ((n = kp_sse_next_event (buf + offset, len - offset, &self->event)) > 0)
    {
      if (!handle_event (self, &self->event, buf + offset, n))
        {
          if (self->failed)
            return;
          forward (self, buf + run_start, offset - run_start);
          run_start = offset + n;
        }
      offset += n;
    }

  if (eof && offset < len)
    {
      /* A last event without its blank line: parse it, pass it on as is. */
      g_autoptr(GByteArray) tail = g_byte_array_new ();

      g_byte_array_append (tail, (const guint8 *)buf + offset, len - offset);
      g_byte_array_append (tail, (const guint8 *)"\n\n", 2);
      if (kp_sse_next_event ((const char *)tail->data, tail->len, &self->event) > 0 &&
          !handle_event (self, &self->event, (const char *)tail->data, tail->len) && self->failed)
        return;
      offset = len;
    }

  forward (self, buf + run_start, offset - run_start);
  flush_translated (self);
  g_byte_array_remove_range (self->pending, 0, offset);
}

/* The extent of the last `"usage": {…}` object in a JSON text. A quote
 * inside a string is escaped, so the key cannot be matched inside one.
 */
static gboolean
find_usage_object (const char  *data,
                   gsize        len,
                   const char **start,
                   gsize       *object_len)
{
  const char *end = data + len;
  const char *found = NULL;
  const char *p = data;
  const char *q;
  guint depth = 0;
  gboolean in_string = FALSE;

  while ((p = memmem (p, end - p, "\"usage\"", 7)) != NULL)
    {
      q = p + 7;
      while (q < end && g_ascii_isspace (*q))
        q++;
      if (q < end && *q == ':')
        {
          q++;
          while (q < end && g_ascii_isspace (*q))
            q++;
          if (q < end && *q == '{')
            found = q;
        }
      p += 7;
    }
  if (found == NULL)
    return FALSE;

  for (q = found; q < end; q++)
    {
      if (in_string)
        {
          if (*q == '\\')
            q++;
          else if (*q == '"')
            in_string = FALSE;
        }
      else if (*q == '"')
        in_string = TRUE;
      else if (*q == '{')
        depth++;
      else if (*q == '}' && --depth == 0)
        {
          *start = found;
          *object_len = q - found + 1;
          return TRUE;
        }
    }
  return FALSE;
}

/* A whole answer can be long; only its usage object is parsed. */
static void
parse_whole_usage (KpRelay *self)
{
  g_autoptr(JsonParser) parser = NULL;
  const char *start;
  gsize len;
  JsonNode *root;

  if (!find_usage_object ((const char *)self->pending->data, self->pending->len, &start, &len))
    return;

  parser = json_parser_new_immutable ();
  if (!json_parser_load_from_data (parser, start, len, NULL))
    return;

  root = json_parser_get_root (parser);
  if (!JSON_NODE_HOLDS_OBJECT (root))
    return;
  if (self->upstream_dialect == KP_DIALECT_ANTHROPIC)
    kp_usage_parse_anthropic (&self->usage, json_node_get_object (root));
  else
    kp_usage_parse_openai (&self->usage, json_node_get_object (root));
}

/* A whole answer or error body in the client's dialect. Returns FALSE when
 * the answer cannot be read.
 */
static gboolean
translate_whole_body (KpRelay  *self,
                      gboolean  is_error)
{
  const char *data = (const char *)self->pending->data;
  gsize len = self->pending->len;
  g_autoptr(JsonParser) parser = NULL;
  g_autoptr(JsonNode) answer = NULL;
  g_autoptr(GError) error = NULL;
  char *text;
  JsonNode *root;

  if (self->client_dialect == self->upstream_dialect)
    return TRUE;

  if (is_error)
    text = self->client_dialect == KP_DIALECT_ANTHROPIC
             ? kp_anthropic_error_from_openai (self->upstream_status, data, len)
             : kp_anthropic_error_to_openai (self->upstream_status, data, len);
  else
    {
      parser = json_parser_new_immutable ();
      if (!json_parser_load_from_data (parser, data, len, &error) ||
          !JSON_NODE_HOLDS_OBJECT ((root = json_parser_get_root (parser))))
        {
          g_debug ("%s: the answer is not a JSON object: %s", self->request_id,
                   error ? error->message : "");
          return FALSE;
        }
      answer = self->client_dialect == KP_DIALECT_ANTHROPIC
                 ? kp_anthropic_response_from_openai (json_node_get_object (root), self->model, &error)
                 : kp_anthropic_response_to_openai (json_node_get_object (root), self->model, &error);
      if (answer == NULL)
        {
          g_debug ("%s: the answer cannot be translated: %s", self->request_id, error->message);
          return FALSE;
        }
      text = json_to_string (answer, FALSE);
    }

  g_byte_array_set_size (self->pending, 0);
  g_byte_array_append (self->pending, (const guint8 *)text, strlen (text));
  g_free (text);
  return TRUE;
}

/* Attempts ---------------------------------------------------------------- */

static void
record_attempt (KpRelay        *self,
                guint           status,
                KpFailureClass  klass)
{
  KpAttemptRow attempt = { 0 };

  attempt.provider = g_strdup (kp_provider_get_id (self->provider));
  attempt.credential_id = self->credential ? kp_credential_get_id (self->credential) : 0;
  attempt.status = status;
  attempt.failure = klass != KP_FAILURE_NONE ? g_strdup (kp_failure_class_to_string (klass)) : NULL;
  attempt.ms = (g_get_monotonic_time () - self->attempt_started_us) / 1000;
  g_array_append_val (self->attempts, attempt);
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

/* An error event in a 200 stream has no status of its own: take the code when
 * it is one (OpenRouter puts the HTTP status there), else 502.
 */
static guint
event_failure_status (KpRelay *self)
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

      soup_message_headers_replace (soup_server_message_get_response_headers (self->msg),
                                    "Retry-After", seconds);
    }
  reply_error (self, status, self->best_code ? self->best_code
                                             : kp_failure_class_to_string (self->best_class), message);
}

/* The current route failed before anything reached the client: note it, put
 * the key or offering out of use as the failure class says, and go on with
 * the next route.
 */
static void
route_failed (KpRelay *self,
              guint    status)
{
  const KpRoute *route = &g_array_index (self->plan->routes, KpRoute, self->route_index);
  guint score = informativeness (&self->failure, status);

  release_upstream (self);
  record_attempt (self, status, self->failure.klass);
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
      g_autofree char *clean = kp_secret_scrub (self->failure.message,
                                                self->credential
                                                  ? kp_credential_get_secret (self->credential) : NULL);

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

/* The provider's answer to a non-streamed request, or its error. */
static void
finish_whole_body (KpRelay *self)
{
  SoupMessageHeaders *upstream_headers = soup_message_get_response_headers (self->upstream);
  const char *content_type = soup_message_headers_get_content_type (upstream_headers, NULL);
  SoupMessageHeaders *headers;
  gsize len = self->pending->len;
  guint8 *data;

  if (self->body_mode == BODY_ERROR)
    {
      g_autofree char *text = g_strndup ((const char *)self->pending->data, MIN (len, 1000));

      kp_failure_classify_http (&self->failure, self->upstream_status, upstream_headers,
                                (const char *)self->pending->data, len);
      if (self->failure.klass != KP_FAILURE_CLIENT)
        {
          route_failed (self, self->upstream_status);
          return;
        }

      /* The request itself is at fault: the client gets the provider's answer
       * as it is (in its own dialect), and no other key is tried or blamed.
       */
      record_attempt (self, self->upstream_status, KP_FAILURE_CLIENT);
      kp_failure_clear (&self->failure);
      self->outcome = KP_OUTCOME_CLIENT_ERROR;
      set_error_message (self, text);
      translate_whole_body (self, TRUE);
      content_type = "application/json";
    }
  else
    {
      parse_whole_usage (self);
      if (!translate_whole_body (self, FALSE))
        {
          self->failure = (KpFailure) {
            .klass = KP_FAILURE_DOWN,
            .message = g_strdup ("its answer was not a message Keypool could read"),
            .code = g_strdup ("upstream_invalid_answer"),
            .retry_after = -1,
          };
          route_failed (self, 502);
          return;
        }
      if (self->client_dialect != self->upstream_dialect)
        content_type = "application/json";
      record_attempt (self, self->upstream_status, KP_FAILURE_NONE);
      kp_gateway_note_success (self->gateway, &g_array_index (self->plan->routes, KpRoute,
                                                              self->route_index));
    }

  self->status = self->upstream_status;
  self->committed = TRUE;
  self->completed = TRUE;
  note_first_byte (self);

  headers = soup_server_message_get_response_headers (self->msg);
  add_route_headers (self, headers);
  if (self->body_mode == BODY_ERROR)
    {
      const char *retry_after = soup_message_headers_get_one (upstream_headers, "Retry-After");

      if (retry_after != NULL)
        soup_message_headers_replace (headers, "Retry-After", retry_after);
    }

  /* The body is ours now; keep its exact length (no re-chunking). */
  len = self->pending->len;
  data = g_byte_array_steal (self->pending, NULL);
  self->pending_cap = 0;
  soup_server_message_set_status (self->msg, self->upstream_status, NULL);
  soup_server_message_set_response (self->msg,
                                    content_type ? content_type : "application/json",
                                    SOUP_MEMORY_TAKE, (const char *)data, len);
  release_upstream (self);
  end_relay (self, FINAL_UNPAUSE);
}

static void
upstream_failed (KpRelay *self,
                 GError  *error)
{
  const char *name = kp_provider_get_name (self->provider);
  g_autofree char *message = NULL;

  release_upstream (self);

  if (self->client_gone || self->completed)
    return;

  if (self->timed_out)
    {
      guint timeout_ms = phase_timeout_ms (self, self->phase);

      message = g_strdup_printf ("no answer within %u.%u s (%s timeout)",
                                 timeout_ms / 1000, (timeout_ms % 1000) / 100,
                                 phase_name (self->phase));
    }
  else
    message = g_strdup (error->message);

  if (self->committed)
    {
      g_autofree char *broke = g_strdup_printf ("The stream from %s broke off: %s.", name,
                                                self->timed_out ? "no data arrived in time"
                                                                : error->message);

      self->outcome = KP_OUTCOME_INTERRUPTED;
      reply_error (self, 502, "upstream_interrupted", broke);
      return;
    }

  /* Nothing reached the client yet: another route can still answer. */
  self->failure = (KpFailure) {
    .klass = KP_FAILURE_DOWN,
    .message = g_strdup_printf ("%s (%s)", message, g_uri_get_host (kp_provider_get_chat_uri (self->provider))),
    .code = g_strdup (self->timed_out ? "upstream_timeout" : "upstream_unreachable"),
    .retry_after = -1,
  };
  route_failed (self, 0);
}

static void
upstream_eof (KpRelay *self)
{
  if (self->body_mode == BODY_SSE)
    {
      process_events (self, TRUE);
      if (self->failed)
        {
          route_failed (self, event_failure_status (self));
          return;
        }
      if (self->client_gone || self->completed)
        {
          release_upstream (self);
          return;
        }

      /* A translated stream whose provider ended without its last event:
       * the translator closes it when the answer was finished.
       */
      if (self->translator != NULL && !self->saw_done &&
          kp_stream_translator_finish (self->translator, self->out))
        {
          self->saw_done = TRUE;
          flush_translated (self);
        }

      /* libsoup reports a connection dropped between two chunks as a plain
       * end; a stream that never finished its answer was cut.
       */
      if (!self->saw_done && !self->saw_finish && self->outcome == KP_OUTCOME_OK)
        {
          g_autoptr(GError) error =
            g_error_new_literal (G_IO_ERROR, G_IO_ERROR_PARTIAL_INPUT,
                                 self->committed ? "it ended before the answer was complete"
                                                 : "the stream ended before the answer began");

          upstream_failed (self, error);
          return;
        }

      release_upstream (self);
      if (!self->committed)
        {
          /* An empty stream: the client still gets a well-formed response. */
          commit_stream (self);
        }
      self->completed = TRUE;
      end_relay (self, FINAL_COMPLETE);
      return;
    }

  finish_whole_body (self);
}

static gboolean
on_upstream_readable (GObject  *stream,
                      gpointer  user_data)
{
  KpRelay *self = user_data;

  /* The source stays for the whole body: no new source per chunk. It is
   * destroyed with the upstream stream.
   */
  read_upstream (self);
  return G_SOURCE_CONTINUE;
}

/* Reads what upstream has without blocking; a poll source calls again when
 * there is more. No GIO worker thread is involved.
 */
static void
read_upstream (KpRelay *self)
{
  GPollableInputStream *pollable = G_POLLABLE_INPUT_STREAM (self->stream);
  gboolean would_block = FALSE;

  for (guint i = 0; i < READS_PER_DISPATCH; i++)
    {
      g_autoptr(GError) error = NULL;
      gsize old_len = self->pending->len;
      gssize n;

      if (self->client_gone)
        return;

      /* Read into the buffer's free space; it grows only when nearly full. */
      if (self->pending_cap - old_len < READ_CHUNK / 4)
        self->pending_cap = MAX (self->pending_cap * 2, old_len + READ_CHUNK);
      g_byte_array_set_size (self->pending, self->pending_cap);
      n = g_pollable_input_stream_read_nonblocking (pollable, self->pending->data + old_len,
                                                    self->pending_cap - old_len,
                                                    self->cancellable, &error);
      g_byte_array_set_size (self->pending, old_len + MAX (n, 0));

      if (n < 0 && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
        {
          would_block = TRUE;
          break;
        }

      if (n < 0)
        {
          g_debug ("%s: upstream read failed: %s", self->request_id, error->message);
          if (self->body_mode == BODY_SSE && !self->committed)
            {
              process_events (self, FALSE);
              if (self->failed)
                {
                  route_failed (self, event_failure_status (self));
                  return;
                }
            }
          upstream_failed (self, error);
          return;
        }

      if (n == 0)
        {
          upstream_eof (self);
          return;
        }

      enter_phase (self, PHASE_BODY);

      if (self->body_mode == BODY_SSE)
        {
          process_events (self, FALSE);
          if (self->failed)
            {
              route_failed (self, event_failure_status (self));
              return;
            }
          if (self->completed)
            {
              /* An error event ended the client's answer. */
              release_upstream (self);
              return;
            }
        }
      else if (self->body_mode == BODY_ERROR && self->pending->len > ERROR_BODY_LIMIT)
        {
          upstream_eof (self);
          return;
        }
    }

  /* A source made while the stream had nothing buffered stays right; after
   * stopping with data still coming, a new one sees what the stream holds.
   */
  if (self->read_source != NULL && would_block)
    return;
  clear_source (&self->read_source);

  self->read_source = g_pollable_input_stream_create_source (pollable, self->cancellable);
  g_source_set_callback (self->read_source, G_SOURCE_FUNC (on_upstream_readable), self, NULL);
  g_source_set_static_name (self->read_source, "[keypool] upstream read");
  g_source_attach (self->read_source, NULL);
}

static gboolean request_wants_usage (JsonObject *request);

static void
on_sent (GObject      *object,
         GAsyncResult *result,
         gpointer      user_data)
{
  g_autoptr(KpRelay) self = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GInputStream) stream = NULL;
  SoupMessage *upstream = soup_session_get_async_result_message (SOUP_SESSION (object), result);
  SoupMessageHeaders *headers;
  const char *content_type;

  stream = soup_session_send_finish (SOUP_SESSION (object), result, &error);

  /* A route given up on (timeout, hang-up) has been replaced meanwhile. */
  if (upstream != self->upstream || self->client_gone || self->completed)
    return;

  if (stream == NULL)
    {
      g_debug ("%s: upstream request failed: %s", self->request_id, error->message);
      upstream_failed (self, error);
      return;
    }

  self->upstream_status = soup_message_get_status (self->upstream);
  headers = soup_message_get_response_headers (self->upstream);
  content_type = soup_message_headers_get_content_type (headers, NULL);

  if (!SOUP_STATUS_IS_SUCCESSFUL (self->upstream_status))
    self->body_mode = BODY_ERROR;
  else if (g_strcmp0 (content_type, "text/event-stream") == 0)
    self->body_mode = BODY_SSE;
  else
    self->body_mode = BODY_WHOLE;

  if (!G_IS_POLLABLE_INPUT_STREAM (stream) ||
      !g_pollable_input_stream_can_poll (G_POLLABLE_INPUT_STREAM (stream)))
    {
      g_autoptr(GError) poll_error =
        g_error_new_literal (G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                             "the response stream cannot be read without blocking");
      upstream_failed (self, poll_error);
      return;
    }

  if (self->body_mode == BODY_SSE && self->client_dialect != self->upstream_dialect)
    {
      JsonObject *request = json_node_get_object (json_parser_get_root (self->parser));

      self->translator =
        kp_stream_translator_new (self->upstream_dialect == KP_DIALECT_ANTHROPIC
                                    ? KP_STREAM_ANTHROPIC_TO_OPENAI
                                    : KP_STREAM_OPENAI_TO_ANTHROPIC,
                                  self->model,
                                  self->client_dialect == KP_DIALECT_OPENAI &&
                                  request_wants_usage (request));
    }

  self->stream = g_steal_pointer (&stream);
  enter_phase (self, PHASE_BODY);
  read_upstream (self);
}

static void
on_wrote_body (SoupMessage *upstream,
               KpRelay     *self)
{
  /* The request is out, so the connection is up: now wait for the answer. */
  if (self->phase == PHASE_CONNECT && upstream == self->upstream)
    enter_phase (self, PHASE_FIRST_BYTE);
}

/* Request ---------------------------------------------------------------- */

static gboolean
request_wants_usage (JsonObject *request)
{
  JsonNode *node = json_object_get_member (request, "stream_options");
  JsonObject *options;

  if (node == NULL || !JSON_NODE_HOLDS_OBJECT (node))
    return FALSE;
  options = json_node_get_object (node);
  return json_object_get_boolean_member_with_default (options, "include_usage", FALSE);
}

/* The request for a provider of the other dialect, with its model id; made
 * once, and NULL (self->translate_error says why) when it cannot be.
 */
static GBytes *
build_translated_body (KpRelay *self)
{
  JsonObject *request = json_node_get_object (json_parser_get_root (self->parser));
  char *json;

  if (self->translated == NULL && self->translate_error == NULL)
    {
      g_autoptr(GError) error = NULL;

      self->translated = self->client_dialect == KP_DIALECT_OPENAI
                           ? kp_anthropic_request_from_openai (request, &error)
                           : kp_anthropic_request_to_openai (request, &error);
      if (self->translated == NULL)
        self->translate_error = g_strdup (error->message);
    }
  if (self->translated == NULL)
    return NULL;

  json_object_set_string_member (json_node_get_object (self->translated), "model",
                                 self->offering->upstream_id);
  json = json_to_string (self->translated, FALSE);
  return g_bytes_new_take (json, strlen (json));
}

/* What the current route's provider must see: its own model id, and a request
 * for usage in streams. The client's bytes are reused when nothing changes.
 */
static GBytes *
build_upstream_body (KpRelay *self)
{
  JsonObject *request = json_node_get_object (json_parser_get_root (self->parser));
  gboolean changed = self->body_changed;

  if (self->client_dialect != self->upstream_dialect)
    return build_translated_body (self);

  if (g_strcmp0 (json_object_get_string_member_with_default (request, "model", ""),
                 self->offering->upstream_id) != 0)
    {
      json_object_set_string_member (request, "model", self->offering->upstream_id);
      changed = TRUE;
    }

  /* Anthropic requires max_tokens; its clients always send it, but a
   * hand-written request may not.
   */
  if (self->client_dialect == KP_DIALECT_ANTHROPIC &&
      json_object_get_int_member_with_default (request, "max_tokens", 0) <= 0)
    {
      json_object_set_int_member (request, "max_tokens", KP_ANTHROPIC_DEFAULT_MAX_TOKENS);
      changed = TRUE;
    }

  if (self->client_dialect == KP_DIALECT_OPENAI &&
      self->client_stream && !self->strip_usage && !request_wants_usage (request))
    {
      JsonObject *options = json_object_new ();

      /* Ask for usage so the cost is known; the extra chunk is removed again. */
      json_object_set_boolean_member (options, "include_usage", TRUE);
      json_object_set_object_member (request, "stream_options", options);
      self->strip_usage = TRUE;
      changed = TRUE;
    }

  if (!changed && g_strcmp0 (self->model, self->offering->upstream_id) == 0)
    return g_bytes_ref (self->client_body);

  self->body_changed = TRUE;
  {
    char *json = json_to_string (json_parser_get_root (self->parser), FALSE);

    return g_bytes_new_take (json, strlen (json));
  }
}

/* Starts the current route: a fresh exchange with its provider and key. A
 * route whose dialect cannot express the request is passed over.
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
      g_clear_object (&self->upstream);
      self->offering = route->offering;
      self->provider = g_object_ref (route->offering->provider);
      self->credential = route->credential ? g_object_ref (route->credential) : NULL;
      self->upstream_dialect = kp_provider_get_dialect (self->provider);

      body = build_upstream_body (self);
      if (body != NULL)
        break;

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
          reply_error (self, 400, "unsupported_request", message);
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
  g_clear_pointer (&self->translator, kp_stream_translator_free);
  /* The last route's calls may still be winding down on the old one. */
  g_clear_object (&self->cancellable);
  self->cancellable = g_cancellable_new ();
  self->attempt_started_us = g_get_monotonic_time ();
  self->attempt_number = self->attempts->len + 1;

  g_debug ("%s: %s → route %u of %u: %s (%s)", self->request_id, self->model, route->rank,
           self->plan->routes->len, kp_provider_get_id (self->provider),
           self->offering->upstream_id);

  self->upstream = soup_message_new_from_uri (SOUP_METHOD_POST,
                                              kp_provider_get_chat_uri (self->provider));
  /* libsoup 3.2 opens a new connection for every POST unless told that it
   * may reuse one: with this, keep-alive connections to a provider are
   * pooled (no TCP and TLS handshake per request). A request on a pooled
   * connection that the provider has just closed is retried on a new one.
   */
  soup_message_add_flags (self->upstream, SOUP_MESSAGE_IDEMPOTENT);
  headers = soup_message_get_request_headers (self->upstream);
  kp_provider_apply_headers (self->provider, headers,
                             self->credential ? kp_credential_get_secret (self->credential) : NULL);
  soup_message_headers_replace (headers, "Accept",
                                self->client_stream ? "text/event-stream" : "application/json");
  if (self->client_dialect == KP_DIALECT_ANTHROPIC &&
      self->upstream_dialect == KP_DIALECT_ANTHROPIC)
    {
      /* The features a Claude client turned on go with its request. */
      const char *beta = soup_message_headers_get_one (
        soup_server_message_get_request_headers (self->msg), "anthropic-beta");

      if (beta != NULL)
        soup_message_headers_replace (headers, "anthropic-beta", beta);
    }
  soup_message_set_request_body_from_bytes (self->upstream, "application/json", body);
  /* The message never outlives the relay that owns it. */
  g_signal_connect (self->upstream, "wrote-body", G_CALLBACK (on_wrote_body), self);

  enter_phase (self, PHASE_CONNECT);
  soup_session_send_async (kp_gateway_get_session (self->gateway), self->upstream,
                           G_PRIORITY_DEFAULT, self->cancellable, on_sent,
                           g_object_ref (self));
}

static gboolean
parse_request (KpRelay    *self,
               GBytes     *body)
{
  g_autoptr(GError) error = NULL;
  JsonObject *request;
  JsonNode *node;
  gconstpointer data;
  gsize len;

  data = g_bytes_get_data (body, &len);
  if (len == 0)
    {
      reply_error (self, 400, "invalid_json",
                   "The request body is empty; send a JSON object with “model” and “messages”.");
      return FALSE;
    }

  if (!json_parser_load_from_data (self->parser, data, len, &error))
    {
      g_autofree char *message =
        g_strdup_printf ("The request body is not valid JSON: %s", error->message);
      reply_error (self, 400, "invalid_json", message);
      return FALSE;
    }

  node = json_parser_get_root (self->parser);
  if (node == NULL || !JSON_NODE_HOLDS_OBJECT (node))
    {
      reply_error (self, 400, "invalid_json",
                   "The request body must be a JSON object with “model” and “messages”.");
      return FALSE;
    }
  request = json_node_get_object (node);

  node = json_object_get_member (request, "model");
  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node) ||
      json_node_get_value_type (node) != G_TYPE_STRING || *json_node_get_string (node) == '\0')
    {
      reply_error (self, 400, "missing_model",
                   "The request has no “model”: name the model to use, e.g. “deepseek/deepseek-chat”. "
                   "GET /v1/models lists them.");
      return FALSE;
    }
  self->model = g_strdup (json_node_get_string (node));

  node = json_object_get_member (request, "messages");
  if (node == NULL || !JSON_NODE_HOLDS_ARRAY (node) ||
      json_array_get_length (json_node_get_array (node)) == 0)
    {
      reply_error (self, 400, "missing_messages",
                   "The request needs “messages”: a non-empty list of chat messages.");
      return FALSE;
    }

  node = json_object_get_member (request, "stream");
  if (node != NULL && JSON_NODE_HOLDS_VALUE (node) &&
      json_node_get_value_type (node) == G_TYPE_BOOLEAN)
    self->client_stream = json_node_get_boolean (node);
  else if (node != NULL && !JSON_NODE_HOLDS_NULL (node))
    {
      reply_error (self, 400, "invalid_stream", "“stream” must be true or false.");
      return FALSE;
    }

  /* Anthropic's clients say how long an answer may be: it must be a number. */
  node = json_object_get_member (request, "max_tokens");
  if (self->client_dialect == KP_DIALECT_ANTHROPIC && node != NULL &&
      (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_INT64 ||
       json_node_get_int (node) <= 0))
    {
      reply_error (self, 400, "invalid_max_tokens", "“max_tokens” must be a positive integer.");
      return FALSE;
    }

  /* "provider": one id or a list; Keypool's, so it never goes upstream. */
  node = json_object_get_member (request, "provider");
  if (node != NULL)
    {
      g_autoptr(GStrvBuilder) providers = g_strv_builder_new ();
      gboolean ok = TRUE;

      if (JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == G_TYPE_STRING)
        g_strv_builder_add (providers, json_node_get_string (node));
      else if (JSON_NODE_HOLDS_ARRAY (node))
        {
          JsonArray *array = json_node_get_array (node);

          for (guint i = 0; i < json_array_get_length (array) && ok; i++)
            {
              JsonNode *element = json_array_get_element (array, i);

              ok = JSON_NODE_HOLDS_VALUE (element) &&
                   json_node_get_value_type (element) == G_TYPE_STRING;
              if (ok)
                g_strv_builder_add (providers, json_node_get_string (element));
            }
        }
      else
        ok = FALSE;

      if (!ok)
        {
          reply_error (self, 400, "invalid_provider",
                       "“provider” must be a provider id or a list of them, e.g. \"deepseek\".");
          return FALSE;
        }
      self->providers = g_strv_builder_end (providers);
      json_object_remove_member (request, "provider");
      self->body_changed = TRUE;
    }

  {
    gint64 max_tokens = json_object_get_int_member_with_default (request, "max_completion_tokens", 0);

    if (max_tokens <= 0)
      max_tokens = json_object_get_int_member_with_default (request, "max_tokens", 0);
    self->output_tokens = max_tokens > 0 ? max_tokens : DEFAULT_OUTPUT_TOKENS;
  }
  /* About four bytes of JSON per token: rough, and the same for every route. */
  self->prompt_tokens = MAX ((gint64)len / 4, 1);

  return TRUE;
}

/**
 * kp_relay_start:
 * @self: a #KpRelay
 *
 * Parses the client's chat request, plans the routes and starts with the
 * first. Every outcome, including a refusal, ends the client's response.
 */
void
kp_relay_start (KpRelay *self)
{
  g_autoptr(GPtrArray) offerings = NULL;
  KpRouteRequest request = { 0 };

  g_return_if_fail (KP_IS_RELAY (self));

  self->client_body = soup_message_body_flatten (soup_server_message_get_request_body (self->msg));

  /* A refusal below is the client's error, and is recorded as one. */
  self->outcome = KP_OUTCOME_CLIENT_ERROR;
  if (!parse_request (self, self->client_body))
    return;

  offerings = kp_gateway_resolve (self->gateway, self->model, &self->providers);
  if (offerings == NULL)
    {
      g_autofree char *message =
        kp_catalog_describe_unknown (kp_gateway_get_catalog (self->gateway), self->model);

      reply_error (self, 404, "model_not_found", message);
      return;
    }
  self->outcome = KP_OUTCOME_OK;

  request.prompt_tokens = self->prompt_tokens;
  request.output_tokens = self->output_tokens;
  request.providers = (const char * const *)self->providers;
  self->plan = kp_gateway_plan (self->gateway, offerings, &request);

  if (self->plan->routes->len == 0)
    {
      g_autofree char *message = kp_plan_describe_empty (self->plan, self->model);

      self->outcome = KP_OUTCOME_UPSTREAM_ERROR;
      reply_error (self, 503, "no_route", message);
      return;
    }

  self->out = g_string_new (NULL);
  self->pending = g_byte_array_sized_new (READ_CHUNK);
  self->pending_cap = READ_CHUNK;
  self->event.data = g_string_sized_new (1024);
  watch_client (self);
  try_route (self);
}

/**
 * kp_relay_new:
 * @gateway: the gateway
 * @msg: the client's message, already paused by the caller
 * @request_id: the id sent back in `x-request-id`
 */
KpRelay *
kp_relay_new (KpGateway         *gateway,
              SoupServerMessage *msg,
              const char        *request_id)
{
  KpRelay *self;

  g_return_val_if_fail (KP_IS_GATEWAY (gateway), NULL);
  g_return_val_if_fail (SOUP_IS_SERVER_MESSAGE (msg), NULL);

  self = g_object_new (KP_TYPE_RELAY, NULL);
  self->gateway = g_object_ref (gateway);
  self->msg = g_object_ref (msg);
  self->request_id = g_strdup (request_id);
  self->client_dialect = kp_http_client_dialect (msg);
  self->finished_handler = g_signal_connect (msg, "finished",
                                             G_CALLBACK (on_client_finished), self);

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
  release_upstream (self);
  self->outcome = self->committed ? KP_OUTCOME_INTERRUPTED : KP_OUTCOME_UPSTREAM_ERROR;
  reply_error (self, 503, "shutting_down", reason);
}

/**
 * kp_relay_get_dialect:
 *
 * Returns: the protocol the client speaks
 */
KpDialect
kp_relay_get_dialect (KpRelay *self)
{
  g_return_val_if_fail (KP_IS_RELAY (self), KP_DIALECT_OPENAI);
  return self->client_dialect;
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
  return self->model;
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
