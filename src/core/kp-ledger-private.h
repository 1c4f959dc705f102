/* kp-ledger-private.h: what only the core and its tests may call
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include "kp-ledger.h"

G_BEGIN_DECLS

void kp_ledger_set_retry_policy (KpLedger *self,
                                 guint     min_delay_ms,
                                 guint     max_delay_ms,
                                 guint     max_pending);
void kp_ledger_set_fail_writes  (KpLedger *self,
                                 gboolean  fail);
guint kp_ledger_get_reads       (KpLedger *self);

G_END_DECLS
