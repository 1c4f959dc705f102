/* kp-wire-openai-responses-private.h: what the Responses wire's files share
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include "kp-wire.h"

G_BEGIN_DECLS

extern const KpWireEncoderClass kp_responses_encoder_class;

JsonObject *kp_responses_usage_object       (const KpUsage *usage);
char       *kp_responses_response_id_for    (const char    *id);
JsonObject *kp_responses_output_text_part   (const char    *text);
JsonObject *kp_responses_message_item       (const char    *id,
                                             const char    *text,
                                             const char    *status);
JsonObject *kp_responses_reasoning_item     (const char    *id,
                                             const char    *text);
JsonObject *kp_responses_function_call_item (const char    *id,
                                             const char    *call_id,
                                             const char    *name,
                                             const char    *arguments,
                                             const char    *status);
JsonObject *kp_responses_response_object    (const char    *id,
                                             const char    *model,
                                             gint64         created_at,
                                             const char    *status,
                                             KpFinish       finish,
                                             JsonArray     *output,
                                             const KpUsage *usage);
const char *kp_responses_status_for         (KpFinish       finish);

G_END_DECLS
