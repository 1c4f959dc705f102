/* kp-key-health.h: what a failure means for a key or an offering, and for how long
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <glib-object.h>

#include "kp-credential.h"
#include "kp-provider.h"
#include "kp-upstream-error.h"

G_BEGIN_DECLS

/* How long a failure keeps a key or an offering out of use, in seconds. A
 * provider's Retry-After counts, but only up to the cap: a broken or hostile
 * header must not rest a key for years.
 */
#define KP_KEY_HEALTH_RATE_LIMIT_DEFAULT_S  60
#define KP_KEY_HEALTH_RATE_LIMIT_MAX_S      3600
#define KP_KEY_HEALTH_QUOTA_DEFAULT_S       3600
#define KP_KEY_HEALTH_QUOTA_MAX_S           (24 * 3600)
/* A quota the provider counts by the month (Kiro's) comes back at the start
 * of the next one: at most a month and a day away, whatever the clock says.
 */
#define KP_KEY_HEALTH_QUOTA_RESET_MAX_S     (32 * 24 * 3600)
#define KP_KEY_HEALTH_MODEL_MISSING_S       3600
#define KP_KEY_HEALTH_BUSY_S                5
#define KP_KEY_HEALTH_DOWN_BASE_S           5
#define KP_KEY_HEALTH_DOWN_MAX_S            300

/**
 * KpClockFunc:
 * @user_data: the data given with the clock
 *
 * Returns: the time now, in unix seconds
 */
typedef gint64 (*KpClockFunc) (gpointer user_data);

#define KP_TYPE_KEY_HEALTH (kp_key_health_get_type ())

G_DECLARE_FINAL_TYPE (KpKeyHealth, kp_key_health, KP, KEY_HEALTH, GObject)

KpKeyHealth *kp_key_health_new               (void);
void         kp_key_health_set_clock         (KpKeyHealth       *self,
                                              KpClockFunc        clock,
                                              gpointer           user_data);
gint64       kp_key_health_now               (KpKeyHealth       *self);
gboolean     kp_key_health_note_failure      (KpKeyHealth       *self,
                                              const KpOffering  *offering,
                                              KpCredential      *credential,
                                              const KpFailure   *failure);
void         kp_key_health_note_success      (KpKeyHealth       *self,
                                              KpCredential      *credential);
gboolean     kp_key_health_note_balance      (KpKeyHealth       *self,
                                              KpCredential      *credential,
                                              double             balance,
                                              const char        *currency,
                                              gboolean           available);
gint64       kp_key_health_get_missing_until (KpKeyHealth       *self,
                                              const KpOffering  *offering);
gint64       kp_key_health_get_busy_until    (KpKeyHealth       *self,
                                              const KpOffering  *offering);

char        *kp_format_time_of_day           (gint64             unix_s);

G_END_DECLS
