/* kp-wire-anthropic-private.h: what the Anthropic wire's files share
 *
 * The wire is three files: kp-wire-anthropic.c (the table, streams and
 * errors), kp-wire-anthropic-client.c (an Anthropic client's request into
 * the hub and the hub's answer back) and kp-wire-anthropic-upstream.c (the
 * hub's request for an Anthropic provider and its answer back). Nothing in
 * them does I/O, so each direction is tested against fixtures.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include "kp-wire.h"
#include "kp-wire-json.h"

G_BEGIN_DECLS

/* max_tokens for Anthropic when a request named none. */
#define KP_ANTHROPIC_DEFAULT_MAX_TOKENS 8192

extern const KpWire kp_wire_anthropic;

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

/* Errors. */
const char *kp_anthropic_error_type           (guint        status);
char       *kp_anthropic_error_json           (guint        status,
                                               const char  *message);
char       *kp_anthropic_error_from_openai    (guint        status,
                                               const char  *body,
                                               gsize        len);

/* Shared by the files of the wire. */
char       *kp_anthropic_sanitize_tool_id     (const char  *id);
JsonObject *kp_anthropic_text_block           (const char  *text);
const char *kp_anthropic_finish_for_stop      (const char  *stop_reason);
const char *kp_anthropic_stop_for_finish      (const char  *finish_reason);
JsonObject *kp_anthropic_openai_usage         (const KpUsage *usage);
gint64      kp_anthropic_uncached_input       (const KpUsage *usage);
JsonObject *kp_anthropic_usage_object         (const KpUsage *usage);
char       *kp_anthropic_message_id_for       (const char  *openai_id);
const char *kp_anthropic_reasoning_of         (JsonObject  *message);
JsonObject *kp_anthropic_openai_message       (const char  *role);
void        kp_anthropic_collect_blocks       (JsonArray   *blocks,
                                               GString    **text,
                                               GString    **thinking,
                                               JsonArray   *tool_calls);

G_END_DECLS
