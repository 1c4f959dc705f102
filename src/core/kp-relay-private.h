/* kp-relay-private.h: what the four rooms of the relay share
 *
 * Only kp-relay.c, kp-relay-client.c, kp-relay-answer.c and kp-relay-upstream.c
 * include this.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <libsoup/soup.h>

#include "http/kp-http1-pool.h"
#include "kp-deadlines.h"
#include "kp-poll-watch.h"
#include "kp-relay.h"
#include "kp-sse.h"
#include "kp-upstream-error.h"
#include "wire/kp-wire.h"

G_BEGIN_DECLS

#define READ_CHUNK         16384
#define READS_PER_DISPATCH 16
#define ERROR_BODY_LIMIT   (1024 * 1024)

typedef enum
{
  PHASE_IDLE,
  PHASE_QUEUED,       /* waiting for a connection from Keypool's own pool */
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
  KpExchange         *client;           /* the client's exchange; owned until finalized */
  GCancellable       *cancellable;
  char               *request_id;
  guint               client_id;        /* whose token the request carried */

  /* The request. */
  const KpWire       *wire;             /* the client's */
  KpWireRequest      *req;              /* parsed once; NULL until kp_relay_start() */
  char               *translate_error;  /* why the last route could not take it */

  /* The routes, and the one being tried. */
  KpPlan             *plan;
  guint               route_index;
  const KpOffering   *offering;
  KpProvider         *provider;
  KpCredential       *credential;       /* NULL for a provider without keys */
  const KpWire       *upstream_wire;
  KpWireTarget        target;
  GArray             *attempts;         /* of KpAttemptRow */
  guint               auth_serial;      /* of the token the current route sent */
  GArray             *renewed;          /* ids of the credentials whose token was renewed
                                         * and sent again: once a request */
  guint               renew_status;     /* the refusal's status, while a new token comes */
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
  GUri               *upstream_uri;
  SoupMessageHeaders *upstream_request; /* the request's headers */
  GBytes             *upstream_body;
  KpHttp1Request     *exchange;         /* http/kp-http1-pool.c */
  SoupMessageHeaders *upstream_headers; /* the answer's */
  KpDeadline          timer;            /* kp-deadlines.c; at or before deadline_us */
  Phase               phase;
  BodyMode            body_mode;
  gboolean            timed_out;
  guint               upstream_status;
  guint               connect_ms;       /* the gateway's timeouts and caps, read once */
  guint               first_byte_ms;
  guint               idle_ms;
  gint64              deadline_us;      /* of the phase; -1 for none (on_timer) */
  gsize               body_cap;
  gsize               event_cap;
  GByteArray         *pending;          /* received, not yet consumed */
  gsize               pending_cap;      /* bytes allocated for it */
  gsize               scanned;          /* of pending: no event ends before this */
  KpSseEvent          event;
  KpWireBridge       *bridge;           /* the stream's decoder, and encoder when wires differ */
  GString            *out;              /* client bytes, held until the answer begins */
  gboolean            hold_out;         /* reading a burst: flush once at its end */

  /* The client side. */
  gboolean            committed;        /* status and headers went to the client */
  gboolean            completed;        /* we ended the client's response */
  gboolean            client_gone;      /* the client's exchange is over */
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

void     kp_relay_set_error_message    (KpRelay        *self,
                                        const char     *message);
void     kp_relay_note_first_byte      (KpRelay        *self);
void     kp_relay_add_route_headers    (KpRelay        *self,
                                        SoupMessageHeaders *headers);
void     kp_relay_end_relay            (KpRelay        *self,
                                        FinalAction     action);
void     kp_relay_reply_error          (KpRelay        *self,
                                        guint           status,
                                        const char     *code,
                                        const char     *message);
void     kp_relay_commit_stream        (KpRelay        *self);
void     kp_relay_forward              (KpRelay        *self,
                                        const char     *data,
                                        gsize           len);
void     kp_relay_release_upstream     (KpRelay        *self);
void     kp_relay_record_attempt       (KpRelay        *self,
                                        guint           status,
                                        KpFailureClass  klass);
void     kp_relay_route_failed         (KpRelay        *self,
                                        guint           status);
guint    kp_relay_event_failure_status (KpRelay        *self);
void     kp_relay_upstream_failed      (KpRelay        *self,
                                        GError         *error);

/* kp-relay-client.c */
void     kp_relay_on_client_done       (KpExchange     *exchange,
                                        gboolean        gone,
                                        gpointer        user_data);

/* kp-relay-answer.c */
char    *kp_relay_scrub                (KpRelay        *self,
                                        const char     *text);
void     kp_relay_flush_out            (KpRelay        *self);
void     kp_relay_process_events       (KpRelay        *self,
                                        gboolean        eof);
void     kp_relay_finish_whole_body    (KpRelay        *self);
gboolean kp_relay_over_cap             (KpRelay        *self);

/* kp-relay-upstream.c */
const char *kp_relay_phase_name        (Phase           phase);
guint    kp_relay_phase_timeout_ms     (KpRelay        *self,
                                        Phase           phase);
void     kp_relay_enter_phase          (KpRelay        *self,
                                        Phase           phase);
void     kp_relay_init_deadline        (KpRelay        *self);
void     kp_relay_send_upstream        (KpRelay        *self);

G_END_DECLS
