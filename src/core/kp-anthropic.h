/* kp-anthropic.h: Anthropic Messages ⇄ OpenAI Chat Completions
 *
 * The relay speaks the client's dialect to the client and the provider's
 * dialect to the provider. When the two differ, requests, whole responses,
 * errors and stream events are translated here. Nothing in this file does
 * I/O: every function takes parsed JSON or one SSE event and gives back
 * JSON or SSE text, so each direction can be tested against fixtures.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <json-glib/json-glib.h>

#include "kp-usage.h"

G_BEGIN_DECLS

#define KP_ANTHROPIC_ERROR (kp_anthropic_error_quark ())

typedef enum
{
  KP_ANTHROPIC_ERROR_INVALID,   /* the request cannot be expressed: a 400 for the client */
} KpAnthropicError;

/* max_tokens for Anthropic when an OpenAI client named none. */
#define KP_ANTHROPIC_DEFAULT_MAX_TOKENS 8192

GQuark      kp_anthropic_error_quark          (void);

/* Requests. The model is copied as it is (the relay sets the provider's own
 * id later); `stream` is kept. Returns a new JSON object node, or NULL with
 * @error set to a message that tells the client what to change.
 */
JsonNode   *kp_anthropic_request_from_openai  (JsonObject  *openai_request,
                                               GError     **error);
JsonNode   *kp_anthropic_request_to_openai    (JsonObject  *anthropic_request,
                                               GError     **error);

/* Whole (non-streamed) responses. @model is the name the client asked for. */
JsonNode   *kp_anthropic_response_to_openai   (JsonObject  *anthropic_message,
                                               const char  *model,
                                               GError     **error);
JsonNode   *kp_anthropic_response_from_openai (JsonObject  *openai_completion,
                                               const char  *model,
                                               GError     **error);

/* Errors. An Anthropic error body for @status and @message. */
const char *kp_anthropic_error_type           (guint        status);
char       *kp_anthropic_error_json           (guint        status,
                                               const char  *message);
/* An upstream error body in one dialect, rewritten in the other. A body that
 * is not a recognisable error keeps its text as the message.
 */
char       *kp_anthropic_error_from_openai    (guint        status,
                                               const char  *body,
                                               gsize        len);
char       *kp_anthropic_error_to_openai      (guint        status,
                                               const char  *body,
                                               gsize        len);

/* Streams. A translator turns a provider's SSE events, one at a time, into
 * the client's SSE text, and keeps the usage the provider reported.
 */
typedef enum
{
  KP_STREAM_ANTHROPIC_TO_OPENAI,  /* Anthropic provider, OpenAI client */
  KP_STREAM_OPENAI_TO_ANTHROPIC,  /* OpenAI provider, Anthropic client */
} KpStreamDirection;

typedef enum
{
  KP_STREAM_CONTINUE,  /* go on; @out may have grown */
  KP_STREAM_ERROR,     /* the event is the provider's error: nothing was added */
  KP_STREAM_END,       /* the provider's last event: @out holds the client's end */
} KpStreamStatus;

typedef struct _KpStreamTranslator KpStreamTranslator;

KpStreamTranslator *kp_stream_translator_new         (KpStreamDirection   direction,
                                                      const char         *model,
                                                      gboolean            include_usage);
void                kp_stream_translator_free        (KpStreamTranslator *self);
KpStreamStatus      kp_stream_translator_feed        (KpStreamTranslator *self,
                                                      const char         *event_name,
                                                      const char         *data,
                                                      gsize               len,
                                                      GString            *out);
gboolean            kp_stream_translator_finish      (KpStreamTranslator *self,
                                                      GString            *out);
gboolean            kp_stream_translator_has_content (KpStreamTranslator *self);
gboolean            kp_stream_translator_has_finish  (KpStreamTranslator *self);
const KpUsage      *kp_stream_translator_get_usage   (KpStreamTranslator *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (KpStreamTranslator, kp_stream_translator_free)

G_END_DECLS
