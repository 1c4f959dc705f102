/* kp-wire-kiro-private.h: what the Kiro wire's files share
 *
 * The wire is two files: kp-wire-kiro.c (the hub's request as Kiro's
 * conversationState, and the table) and kp-wire-kiro-stream.c (the AWS
 * event stream cut into events, decoded into the hub's, a whole answer, and
 * Kiro's errors). Kiro is a provider's API only: no client speaks it.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include "kp-wire.h"
#include "kp-wire-json.h"

G_BEGIN_DECLS

/* A tool description longer than this gets Kiro's 400 "Improperly formed
 * request": it is shortened to it.
 */
#define KP_KIRO_MAX_TOOL_DESCRIPTION 10000

/* What a turn with no text of its own says: Kiro refuses empty content. */
#define KP_KIRO_EMPTY_CONTENT "(empty)"

/* The region of the host a provider file names, replaced by the region of
 * the account's profile.
 */
#define KP_KIRO_DEFAULT_REGION "us-east-1"

extern const KpWire kp_wire_kiro;

JsonNode     *kp_kiro_request_from_openai  (JsonObject          *openai_request,
                                            const char          *model_id,
                                            const char          *profile_arn,
                                            GError             **error);
char         *kp_kiro_region_of_arn        (const char          *profile_arn);
GUri         *kp_kiro_uri_for_region       (GUri                *uri,
                                            const char          *region);

/* kp-wire-kiro-stream.c */
KpWireDecoder kp_kiro_decoder_new          (const KpWireRequest *req,
                                            const KpWireTarget  *target,
                                            gboolean             passthrough);
void          kp_kiro_decoder_free         (KpWireDecoder        decoder);
KpDecodeResult kp_kiro_decode              (KpWireDecoder        decoder,
                                            const char          *name,
                                            gsize                name_len,
                                            const char          *data,
                                            gsize                len,
                                            KpEventSink          sink,
                                            gpointer             user_data);
void          kp_kiro_decode_end           (KpWireDecoder        decoder,
                                            KpEventSink          sink,
                                            gpointer             user_data);
gssize        kp_kiro_next_event           (const guint8        *buf,
                                            gsize                len,
                                            gboolean             eof,
                                            KpSseEvent          *event,
                                            GError             **error);
JsonNode     *kp_kiro_answer_to_canonical  (const char          *data,
                                            gsize                len,
                                            const char          *model,
                                            KpUsage             *usage,
                                            GError             **error);
void          kp_kiro_classify             (KpFailure           *failure,
                                            guint                status,
                                            const char          *body,
                                            gsize                len);

G_END_DECLS
