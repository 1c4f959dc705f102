/* kp-wire.h: one interface for every API Keypool speaks
 *
 * A wire format is how one API looks on the wire: OpenAI Chat, Anthropic
 * Messages, OpenAI Responses, embeddings, legacy completions, … Each is one
 * file that fills one KpWire table; nothing outside wire/ names a wire.
 *
 * The hub is OpenAI Chat: a client's request is parsed into the canonical
 * request (Chat JSON), and an upstream request is built from it; a provider's
 * stream is decoded into canonical events (KpEvent), and the client's stream
 * is encoded from them. N wires need 2N conversions, never N × N. When the
 * client and the provider speak the same wire, the request and the answer
 * pass through, and the decoder reads the bytes alongside for usage, errors
 * and the start of the answer.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <json-glib/json-glib.h>
#include <libsoup/soup.h>

#include "kp-provider.h"
#include "kp-sse.h"
#include "kp-upstream-error.h"
#include "kp-usage.h"

G_BEGIN_DECLS

#define KP_WIRE_ERROR (kp_wire_error_quark ())

/* A client's request that cannot be served gets a 400 with the code
 * kp_wire_error_code() names.
 */
typedef enum
{
  KP_WIRE_ERROR_INVALID,             /* the request is malformed */
  KP_WIRE_ERROR_INVALID_JSON,
  KP_WIRE_ERROR_MISSING_MODEL,
  KP_WIRE_ERROR_MISSING_MESSAGES,
  KP_WIRE_ERROR_MISSING_INPUT,
  KP_WIRE_ERROR_INVALID_STREAM,
  KP_WIRE_ERROR_INVALID_MAX_TOKENS,
  KP_WIRE_ERROR_INVALID_PROVIDER,
  KP_WIRE_ERROR_NEEDS_STATE,         /* it refers to state Keypool does not keep */
  KP_WIRE_ERROR_UNSUPPORTED,         /* this provider's wire cannot express it */
  KP_WIRE_ERROR_ANSWER,              /* a provider's answer cannot be read */
} KpWireError;

/* What a wire's requests ask for: the routes that can serve them. Chat-like
 * wires translate into each other through the hub; the others need a
 * provider that speaks them.
 */
typedef enum
{
  KP_WIRE_KIND_CHAT,
  KP_WIRE_KIND_EMBEDDINGS,
  KP_WIRE_KIND_COMPLETIONS,
} KpWireKind;

/* The canonical stream. */
typedef enum
{
  KP_EVENT_START,      /* the answer's id is known (@id) */
  KP_EVENT_TEXT,       /* a piece of the answer (@text) */
  KP_EVENT_REASONING,  /* a piece of the thinking (@text) */
  KP_EVENT_TOOL_CALL,  /* tool call @index begins: @id, @name, @text = arguments so far */
  KP_EVENT_TOOL_ARGS,  /* more arguments of tool call @index (@text) */
  KP_EVENT_USAGE,      /* the usage so far (@usage); the last one counts */
  KP_EVENT_FINISH,     /* the answer is complete (@finish) */
  KP_EVENT_ERROR,      /* the provider's error (@text: its raw data) */
  KP_EVENT_KEEPALIVE,  /* nothing happened, but the provider is there */
  KP_EVENT_END,        /* the last event */
} KpEventType;

/* Why an answer ended, as OpenAI Chat names it (the hub). */
typedef enum
{
  KP_FINISH_NONE,
  KP_FINISH_STOP,
  KP_FINISH_LENGTH,
  KP_FINISH_TOOL_CALLS,
  KP_FINISH_CONTENT_FILTER,
} KpFinish;

typedef struct
{
  KpEventType    type;
  const char    *id;
  const char    *name;
  const char    *text;
  guint          index;   /* tool calls: 0, 1, … in the order they began */
  KpFinish       finish;
  const KpUsage *usage;
  gboolean       light;   /* decoded without reading the text (a passthrough) */
} KpEvent;

typedef struct _KpWire KpWire;

/* A client's request, as the relay holds it: parsed once. */
typedef struct
{
  const KpWire       *wire;          /* the client's */
  GBytes             *body;          /* the client's bytes */
  JsonNode           *root;          /* their JSON, an object */
  JsonNode           *canonical;     /* Chat JSON, made when a route needs it */
  SoupMessageHeaders *headers;       /* the client's request headers */
  char               *model;
  gboolean            stream;
  gboolean            wants_usage;   /* the client asked for usage in its stream */
  gint64              prompt_tokens; /* estimated */
  gint64              output_tokens; /* asked for, or a default */
  GStrv               providers;     /* Keypool's "provider" field, or NULL */
  gboolean            changed;       /* @root no longer says what @body says */
  char               *path;          /* the path the client asked for, or NULL */
  GHashTable         *query;         /* its query (decoded), or NULL */
  gboolean            stream_as_array; /* the client reads its stream as one JSON
                                        * array, not SSE: nothing passes through */
} KpWireRequest;

/* The route the upstream request is built for. */
typedef struct
{
  KpProvider       *provider;
  const KpOffering *offering;        /* its upstream id is the model sent */
  JsonObject       *account;         /* (nullable): what the credential's login knows
                                      * of its account (Kiro's profileArn, …) */
  const char       *project;         /* the account's project, for APIs that name
                                      * one (Code Assist); NULL = none */
  gboolean          strip_usage;     /* out: Keypool asked for usage the client did not */
  GUri             *uri;             /* out (nullable): where to send the request, when
                                      * the wire picks it (Kiro's region); owned */
} KpWireTarget;

typedef gpointer KpWireDecoder;
typedef gpointer KpWireEncoder;
typedef void (*KpEventSink) (const KpEvent *event,
                             gpointer       user_data);

/* A decoder hands @event to @sink. */
static inline void
kp_event_emit (KpEventSink sink,
               gpointer    user_data,
               KpEvent     event)
{
  sink (&event, user_data);
}

/* What a decoded event means for a passthrough. */
typedef enum
{
  KP_DECODE_FORWARD,  /* pass the event's bytes on */
  KP_DECODE_DROP,     /* keep them from the client (usage Keypool asked for) */
} KpDecodeResult;

/* What a path below a wire's route is (see KpWire.match_route). */
typedef enum
{
  KP_ROUTE_NONE,
  KP_ROUTE_REQUEST,   /* a request the relay serves */
  KP_ROUTE_COUNT,     /* the wire's token counter */
  KP_ROUTE_MODELS,    /* the wire's model list (GET) */
  KP_ROUTE_MODEL,     /* one model of that list (GET) */
} KpRouteKind;

/* An encoder whose struct begins with this takes
 * kp_wire_encoder_keep_usage() and kp_wire_encoder_keep_finish() as its
 * usage and finish methods: most wires write both only at the end.
 */
typedef struct
{
  KpUsage  usage;
  KpFinish finish;
} KpWireEncoderBase;

/* How a client's wire writes the canonical stream: one method per event.
 * The bridge calls them in the stream's order, and none after end.
 */
typedef struct
{
  KpWireEncoder (*create)    (const KpWireRequest *req);
  void          (*destroy)   (KpWireEncoder        self);
  void          (*start)     (KpWireEncoder        self,
                              const char          *id,
                              GString             *out);
  void          (*text)      (KpWireEncoder        self,
                              const char          *text,
                              GString             *out);
  void          (*reasoning) (KpWireEncoder        self,
                              const char          *text,
                              GString             *out);
  void          (*tool_call) (KpWireEncoder        self,
                              const KpEvent       *event,
                              GString             *out);
  void          (*tool_args) (KpWireEncoder        self,
                              guint                index,
                              const char          *text,
                              GString             *out);
  void          (*usage)     (KpWireEncoder        self,
                              const KpUsage       *usage);
  void          (*finish)    (KpWireEncoder        self,
                              KpFinish             finish,
                              GString             *out);
  void          (*end)       (KpWireEncoder        self,
                              GString             *out);
} KpWireEncoderClass;

struct _KpWire
{
  const char          *id;             /* "openai-chat", "anthropic", … (the ledger's too) */
  KpWireKind           kind;
  const char * const  *client_routes;  /* POST paths it serves; NULL = upstream only */
  const char          *upstream_path;  /* appended to a provider's base URL */
  const char          *count_route;    /* POST path of its token counter, or NULL */
  const char          *client_headers; /* headers its clients send, for CORS */
  const char          *models_route;   /* GET path of its model list, or NULL */
  const char          *usage_member;   /* a whole answer's usage object; NULL = "usage" */
  const char          *keepalive;      /* a sign of life in its streams; NULL = an SSE
                                        * comment, "" = none (its clients take none) */
  char         *(*count_json)        (gint64               input_tokens);
  /* Paths below a client route that carry part of the request (Gemini's
   * model and method): what @path is, or KP_ROUTE_NONE.
   */
  KpRouteKind   (*match_route)       (const char          *path);
  /* Reads what the path and query say (model, stream) before the body. */
  gboolean      (*parse_route)       (KpWireRequest       *req,
                                      GError             **error);
  /* The model list (OpenAI's shape, as Keypool serves it) in this wire's. */
  char         *(*models_json)       (const char          *openai_models,
                                      gsize                len);
  /* The model a KP_ROUTE_MODEL @path names, from the same list, in this
   * wire's shape; or its error body, with *@status set (404).
   */
  char         *(*model_json)        (const char          *openai_models,
                                      gsize                len,
                                      const char          *path,
                                      guint               *status);

  /* Client side. */
  gboolean      (*parse_request)     (KpWireRequest       *req,
                                      GError             **error);
  JsonNode     *(*to_canonical)      (JsonObject          *request,
                                      GError             **error);
  JsonNode     *(*response_from_canonical) (JsonObject    *completion,
                                      const KpWireRequest *req,
                                      GError             **error);
  char         *(*error_json)        (guint                status,
                                      const char          *code,
                                      const char          *message);
  char         *(*error_from_upstream) (guint              status,
                                      const char          *body,
                                      gsize                len);
  void          (*error_event)       (guint                status,
                                      const char          *code,
                                      const char          *message,
                                      GString             *out);
  const KpWireEncoderClass *encoder;  /* NULL: never streamed to clients */

  /* Upstream side. */
  GBytes       *(*build_body)        (KpWireRequest       *req,
                                      JsonObject          *source,
                                      gboolean             passthrough,
                                      KpWireTarget        *target,
                                      GError             **error);
  void          (*add_headers)       (const KpWireRequest *req,
                                      SoupMessageHeaders  *headers);
  /* What follows upstream_path for this request, when it depends on it
   * (Gemini's "/{model}:generateContent"); NULL = nothing.
   */
  char         *(*upstream_suffix)   (const KpWireRequest *req,
                                      const KpWireTarget  *target);
  KpWireDecoder (*decoder_new)       (const KpWireRequest *req,
                                      const KpWireTarget  *target,
                                      gboolean             passthrough);
  KpDecodeResult (*decode)           (KpWireDecoder        decoder,
                                      const char          *event_name,
                                      gsize                name_len,
                                      const char          *data,
                                      gsize                len,
                                      KpEventSink          sink,
                                      gpointer             user_data);
  void          (*decoder_free)      (KpWireDecoder        decoder);
  JsonNode     *(*response_to_canonical) (JsonObject      *answer,
                                      const char          *model,
                                      GError             **error);
  gboolean      (*parse_usage)       (KpUsage             *usage,
                                      JsonObject          *usage_object);

  /* Upstream side, for a provider whose answers are not SSE or JSON (Kiro's
   * AWS event stream). NULL for the others.
   */
  const char   *stream_content_type; /* its streams' Content-Type */
  /* Cuts one event from the start of @buf into @event: its length, 0 when
   * more bytes are needed, -1 with @error set when the stream cannot be
   * read on (at @eof, bytes that are no whole event are an error too).
   */
  gssize        (*next_event)        (const guint8        *buf,
                                      gsize                len,
                                      gboolean             eof,
                                      KpSseEvent          *event,
                                      GError             **error);
  /* The provider closed a stream that has no last event of its own. */
  void          (*decode_end)        (KpWireDecoder        decoder,
                                      KpEventSink          sink,
                                      gpointer             user_data);
  /* A whole answer read from its bytes, with its usage. */
  JsonNode     *(*answer_to_canonical) (const char        *data,
                                      gsize                len,
                                      const char          *model,
                                      KpUsage             *usage,
                                      GError             **error);
  /* What the provider's own error words mean, after the common reading. */
  void          (*classify)          (KpFailure           *failure,
                                      guint                status,
                                      const char          *body,
                                      gsize                len);
};

GQuark          kp_wire_error_quark        (void);
const char     *kp_wire_error_code         (const GError        *error);
GBytes         *kp_wire_serialize          (JsonNode            *node);

/* The registry. */
const KpWire   *kp_wire_for_route          (const char          *path);
gboolean        kp_wire_serves_route       (const KpWire        *wire,
                                            const char          *path);
KpRouteKind     kp_wire_route_kind         (const KpWire        *wire,
                                            const char          *path);
gboolean        kp_wire_is_client_path     (const char          *path);
const KpWire   *kp_wire_for_id             (const char          *id);
const KpWire   *kp_wire_default            (void);
const KpWire * const *kp_wire_all          (void);

/* Requests. */
KpWireRequest  *kp_wire_request_new        (const KpWire        *wire,
                                            GBytes              *body,
                                            SoupMessageHeaders  *headers);
void            kp_wire_request_free       (KpWireRequest       *req);
void            kp_wire_request_set_path   (KpWireRequest       *req,
                                            const char          *path,
                                            GHashTable          *query);
gboolean        kp_wire_request_parse_common (KpWireRequest     *req,
                                            GError             **error);
gboolean        kp_wire_request_parse      (KpWireRequest       *req,
                                            GError             **error);
JsonObject     *kp_wire_request_get_canonical (KpWireRequest    *req,
                                            GError             **error);
const KpWire   *kp_wire_upstream_for       (const KpWire        *client,
                                            KpProvider          *provider);
const KpWire   *kp_wire_route_for          (const KpWire        *client,
                                            const KpOffering    *offering);
char           *kp_wire_upstream_uri       (const KpWireRequest *req,
                                            const KpWire        *upstream,
                                            const KpWireTarget  *target);
GBytes         *kp_wire_build_upstream     (KpWireRequest       *req,
                                            const KpWire        *upstream,
                                            KpWireTarget        *target,
                                            GError             **error);

/* Whole answers and errors. */
GBytes         *kp_wire_translate_answer   (KpWireRequest       *req,
                                            const KpWire        *upstream,
                                            const char          *data,
                                            gsize                len,
                                            KpUsage             *usage,
                                            GError             **error);
char           *kp_wire_translate_error    (const KpWire        *client,
                                            guint                status,
                                            const char          *data,
                                            gsize                len);
char           *kp_wire_error_message      (const char          *body,
                                            gsize                len,
                                            gint64              *code,
                                            char               **type);
char           *kp_wire_upstream_error_message (guint           *status,
                                                const char      *body,
                                                gsize            len);
void            kp_wire_target_clear       (KpWireTarget        *target);
char           *kp_wire_rebase_url         (const char          *url,
                                            const char          *provider_base,
                                            const char          *account_base);
void            kp_wire_error_event        (const KpWireRequest *req,
                                            guint                status,
                                            const char          *code,
                                            const char          *message,
                                            GString             *out);
const char     *kp_finish_to_string        (KpFinish             finish);
KpFinish        kp_finish_from_string      (const char          *reason);

/* Streams: a bridge decodes a provider's events and, when the client speaks
 * another wire, encodes them for the client.
 */
typedef enum
{
  KP_STREAM_CONTINUE,  /* go on; @out may have grown */
  KP_STREAM_ERROR,     /* the event is the provider's error: nothing was added */
  KP_STREAM_END,       /* the provider's last event */
  KP_STREAM_KEEPALIVE, /* nothing for the client but a sign of life */
} KpStreamStatus;

typedef struct _KpWireBridge KpWireBridge;

KpWireBridge   *kp_wire_bridge_new         (const KpWire        *upstream,
                                            const KpWire        *client,
                                            const KpWireRequest *req,
                                            const KpWireTarget  *target);
void            kp_wire_bridge_free        (KpWireBridge        *self);
KpStreamStatus  kp_wire_bridge_feed        (KpWireBridge        *self,
                                            const char          *event_name,
                                            gsize                name_len,
                                            const char          *data,
                                            gsize                len,
                                            GString             *out,
                                            gboolean            *forward_raw);
gboolean        kp_wire_bridge_finish      (KpWireBridge        *self,
                                            GString             *out);
void            kp_wire_bridge_keepalive   (KpWireBridge        *self,
                                            GString             *out);
gboolean        kp_wire_bridge_is_passthrough (KpWireBridge     *self);
gboolean        kp_wire_bridge_has_content (KpWireBridge        *self);
gboolean        kp_wire_bridge_has_finish  (KpWireBridge        *self);
const char     *kp_wire_bridge_get_error   (KpWireBridge        *self);
const KpUsage  *kp_wire_bridge_get_usage   (KpWireBridge        *self);

void            kp_wire_encoder_keep_usage  (KpWireEncoder       self,
                                             const KpUsage      *usage);
void            kp_wire_encoder_keep_finish (KpWireEncoder       self,
                                             KpFinish            finish,
                                             GString            *out);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (KpWireBridge, kp_wire_bridge_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (KpWireRequest, kp_wire_request_free)

G_END_DECLS
