/* kp-wire-gemini-private.h: what the Gemini wire's files share, and what a
 * wire around the same requests (Code Assist's v1internal envelope) reuses
 *
 * The wire is four files: kp-wire-gemini.c (the table, routes, errors),
 * kp-wire-gemini-upstream.c (the hub's request as a Gemini generateContent
 * request; schemas, signatures), kp-wire-gemini-answer.c (a Gemini answer
 * and stream back into the hub; usage, finish reasons) and
 * kp-wire-gemini-client.c (a Gemini client's request into the hub, and the
 * hub's answer and stream back). Nothing in them does I/O.
 *
 * thoughtSignature across turns. Gemini puts an opaque signature on the
 * parts of its answer (on a functionCall part above all) and wants it back
 * on the same part in the next turn; Gemini 3 refuses a function call whose
 * signature is missing. The canonical (Chat) request has no field for it,
 * and clients keep only what Chat defines, so the signature rides in the
 * one thing every client sends back unchanged: the tool call's id. A
 * functionCall with signature S becomes the tool call
 * "<id>" KP_GEMINI_SIGNATURE_MARK "<S in base64url, unpadded>", made of
 * [A-Za-z0-9_-] only, so that Anthropic's id rules keep it whole. Whole
 * answers also carry it as Google's OpenAI-compatible endpoint does,
 * `extra_content.google.thought_signature` on the tool call, and requests
 * are read from either place. A signature on a text part (Gemini may put
 * one on the last part of a turn) is not needed back and is not kept.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include "kp-wire.h"
#include "kp-wire-json.h"

G_BEGIN_DECLS

#define KP_GEMINI_SIGNATURE_MARK "__ts__"

/* The longest model name a client may put in a path. */
#define KP_GEMINI_MODEL_MAX 256

gboolean kp_gemini_split_path (const char   *path,
                               char        **model,
                               const char  **verb);

extern const KpWire kp_wire_gemini;
extern const KpWire kp_wire_gemini_embed;
extern const KpWireEncoderClass kp_gemini_encoder_class;

/* Requests. kp_gemini_request_from_openai() builds the body of
 * `models/{model}:generateContent` (no model, no stream in it: they are in
 * the path). kp_gemini_request_to_openai() reads a Gemini client's body;
 * the relay sets "model" and "stream" from the path.
 */
JsonNode   *kp_gemini_request_from_openai  (JsonObject    *openai_request,
                                            GError       **error);
JsonNode   *kp_gemini_request_to_openai    (JsonObject    *gemini_request,
                                            GError       **error);
void        kp_gemini_thinking_for_model   (JsonObject    *gemini_request,
                                            const char    *upstream_model);

/* Whole answers. */
JsonNode   *kp_gemini_response_to_openai   (JsonObject    *gemini_response,
                                            const char    *model,
                                            GError       **error);
JsonNode   *kp_gemini_response_from_openai (JsonObject    *openai_completion,
                                            const char    *model,
                                            GError       **error);

/* Streams: a decoder reads GenerateContentResponse objects (one per SSE
 * event, one per element of a JSON array, or unwrapped from an envelope)
 * into canonical events. It never sends END: a Gemini stream just ends.
 */
typedef struct _KpGeminiDecoder KpGeminiDecoder;

KpGeminiDecoder *kp_gemini_decoder_new     (void);
void        kp_gemini_decoder_free         (KpGeminiDecoder *self);
void        kp_gemini_decoder_feed         (KpGeminiDecoder *self,
                                            JsonObject      *response,
                                            KpEventSink      sink,
                                            gpointer         user_data);
/* @data is one event's JSON text: an answer, or {"error":…} (an ERROR event). */
void        kp_gemini_decoder_feed_data    (KpGeminiDecoder *self,
                                            const char      *data,
                                            gsize            len,
                                            KpEventSink      sink,
                                            gpointer         user_data);

/* Usage, finish reasons, signatures, schemas. */
gboolean    kp_gemini_parse_usage          (KpUsage       *usage,
                                            JsonObject    *usage_metadata);
JsonObject *kp_gemini_usage_object         (const KpUsage *usage);
KpFinish    kp_gemini_finish_from_reason   (const char    *finish_reason,
                                            gboolean       called_tools);
const char *kp_gemini_reason_for_finish    (KpFinish       finish);
char       *kp_gemini_tool_id_with_signature (const char  *id,
                                            const char    *signature);
char       *kp_gemini_signature_from_tool_id (const char  *tool_id,
                                            char         **bare_id);
JsonNode   *kp_gemini_clean_schema         (JsonNode      *schema);
gint64      kp_gemini_budget_for_effort    (const char    *effort);
const char *kp_gemini_effort_for_thinking  (JsonObject    *thinking_config);

/* Errors: Google's shape, {"error":{"code","message","status"}}. */
const char *kp_gemini_status_for_http      (guint          status);
char       *kp_gemini_error_json           (guint          status,
                                            const char    *message);

G_END_DECLS
