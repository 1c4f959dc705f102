/* kp-spend-text.h: what a spend total or a request cost says, in words
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <glib.h>

#include "kp-ledger.h"

G_BEGIN_DECLS

/* How an amount in nano-USD is written: the window's and the CLI's ways. */
typedef char *(*KpUsdFormat) (gint64 nano_usd);

char *kp_spend_format_credits      (double              credits);
char *kp_spend_describe_total      (const KpSpendRow   *row,
                                    KpUsdFormat         format_usd);
char *kp_spend_describe_request    (const KpRequestRow *row,
                                    KpUsdFormat         format_usd);
char *kp_spend_describe_credits    (GPtrArray          *rows,
                                    const char       *(*name_of) (const char *provider_id,
                                                                  gpointer    data),
                                    gpointer            data,
                                    const char         *period);

G_END_DECLS
