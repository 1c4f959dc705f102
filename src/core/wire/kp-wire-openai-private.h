/* kp-wire-openai-private.h: what OpenAI's wires share
 *
 * Chat, Responses, embeddings and legacy completions answer errors the same
 * way, and read usage the same way.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include "kp-wire.h"
#include "kp-wire-json.h"

G_BEGIN_DECLS

extern const KpWire kp_wire_openai_chat;
extern const KpWire kp_wire_openai_responses;
extern const KpWire kp_wire_openai_embeddings;
extern const KpWire kp_wire_openai_completions;

const char *kp_openai_error_type          (guint        status);
char       *kp_openai_error_json          (guint        status,
                                           const char  *code,
                                           const char  *message);
char       *kp_openai_error_from_upstream (guint        status,
                                           const char  *body,
                                           gsize        len);
void        kp_openai_error_event         (guint        status,
                                           const char  *code,
                                           const char  *message,
                                           GString     *out);
gboolean    kp_openai_data_is_error       (const char  *data,
                                           gsize        len);
gboolean    kp_openai_has_usage_object    (const char  *data);
void        kp_openai_ask_usage           (KpWireRequest *req,
                                           JsonObject  *request,
                                           KpWireTarget *target);
GBytes     *kp_openai_passthrough_body    (KpWireRequest *req,
                                           JsonObject  *request,
                                           KpWireTarget *target);
KpWireDecoder  kp_openai_chat_decoder_new  (const KpWireRequest *req,
                                           const KpWireTarget  *target,
                                           gboolean             passthrough);
KpDecodeResult kp_openai_chat_decode       (KpWireDecoder        decoder,
                                           const char          *event_name,
                                           gsize                name_len,
                                           const char          *data,
                                           gsize                len,
                                           KpEventSink          sink,
                                           gpointer             user_data);
void           kp_openai_chat_decoder_free (KpWireDecoder        decoder);
GBytes     *kp_openai_build_passthrough   (KpWireRequest *req,
                                           JsonObject  *source,
                                           gboolean     passthrough,
                                           KpWireTarget *target,
                                           GError     **error);
JsonObject *kp_json_object_shallow_copy   (JsonObject  *object);

G_END_DECLS
