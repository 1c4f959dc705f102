/* kp-relay.h: one client request: route, upstream exchange, stream relay
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <libsoup/soup.h>

#include "http/kp-http1-server.h"
#include "kp-credential.h"
#include "kp-ledger.h"
#include "kp-usage.h"

G_BEGIN_DECLS

typedef enum
{
  KP_OUTCOME_OK,
  KP_OUTCOME_UPSTREAM_ERROR,
  KP_OUTCOME_CLIENT_ERROR,
  KP_OUTCOME_INTERRUPTED,
  KP_OUTCOME_CANCELLED,
} KpOutcome;

typedef struct _KpGateway KpGateway;

#define KP_TYPE_RELAY (kp_relay_get_type ())

G_DECLARE_FINAL_TYPE (KpRelay, kp_relay, KP, RELAY, GObject)

KpRelay        *kp_relay_new                  (KpGateway         *gateway,
                                               KpExchange        *exchange,
                                               const char        *request_id);
void            kp_relay_start                (KpRelay           *self);
void            kp_relay_abort                (KpRelay           *self,
                                               const char        *reason);
void            kp_relay_end_answer           (KpRelay           *self);
guint           kp_relay_get_client_id        (KpRelay           *self);
const char     *kp_relay_get_api              (KpRelay           *self);
const char     *kp_relay_get_request_id       (KpRelay           *self);
const char     *kp_relay_get_model            (KpRelay           *self);
const char     *kp_relay_get_provider_id      (KpRelay           *self);
const char     *kp_relay_get_upstream_model   (KpRelay           *self);
guint           kp_relay_get_status           (KpRelay           *self);
KpOutcome       kp_relay_get_outcome          (KpRelay           *self);
const char     *kp_relay_get_error_message    (KpRelay           *self);
const KpUsage  *kp_relay_get_usage            (KpRelay           *self);
KpCostSource    kp_relay_get_cost             (KpRelay           *self,
                                               gint64            *cost_nano);
gboolean        kp_relay_get_streamed         (KpRelay           *self);
KpCredential   *kp_relay_get_credential       (KpRelay           *self);
GArray         *kp_relay_get_attempts         (KpRelay           *self);
KpGateway      *kp_relay_get_gateway          (KpRelay           *self);
gint64          kp_relay_get_start_time       (KpRelay           *self);
gint64          kp_relay_get_ttfb_ms          (KpRelay           *self);
gint64          kp_relay_get_total_ms         (KpRelay           *self);
const char     *kp_outcome_to_string          (KpOutcome          outcome);

G_END_DECLS
