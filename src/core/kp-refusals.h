/* kp-refusals.h: a trace of the requests Keypool refuses, bounded
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include "kp-ledger.h"

G_BEGIN_DECLS

/* How long repeats of one refusal are counted in memory before they are
 * written, and how many different refusals are kept apart meanwhile.
 */
#define KP_REFUSALS_WINDOW_MS   10000
#define KP_REFUSALS_MAX_KINDS   64
#define KP_REFUSALS_PATH_MAX    200

#define KP_TYPE_REFUSALS (kp_refusals_get_type ())

G_DECLARE_FINAL_TYPE (KpRefusals, kp_refusals, KP, REFUSALS, GObject)

KpRefusals *kp_refusals_new   (KpLedger   *ledger);
void        kp_refusals_note  (KpRefusals *self,
                               const char *method,
                               const char *path,
                               guint       status,
                               const char *code,
                               const char *client);
void        kp_refusals_flush (KpRefusals *self);
char       *kp_refusals_clean (const char *text,
                               gsize       max_bytes);

G_END_DECLS
