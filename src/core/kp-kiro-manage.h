/* kp-kiro-manage.h: a Kiro account's usage limits and models, from Kiro's management API
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <json-glib/json-glib.h>

#include "kp-credential.h"
#include "kp-gateway.h"

G_BEGIN_DECLS

/* The management API's answers are small: bigger ones are not read. */
#define KP_KIRO_MANAGE_MAX_ANSWER (256 * 1024)
/* At most this many model ids are kept. */
#define KP_KIRO_MANAGE_MAX_MODELS 64

char *kp_kiro_usage_describe  (JsonObject   *answer,
                               gint64        now);
char *kp_kiro_models_describe (JsonObject   *answer);
char *kp_kiro_manage_base     (const char   *manage_url,
                               const char   *region);
void  kp_kiro_manage_read     (KpGateway    *gateway,
                               KpCredential *credential);

G_END_DECLS
