/* fuzz-common.h: what every libFuzzer target of Keypool shares
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <glib.h>

#include "wire/kp-wire.h"

G_BEGIN_DECLS

/* libFuzzer's entry points, declared for -Wmissing-prototypes. */
int            LLVMFuzzerInitialize     (int           *argc,
                                         char        ***argv);
int            LLVMFuzzerTestOneInput   (const guint8  *data,
                                         size_t         size);

void           fuzz_init                (void);
KpWireRequest *fuzz_request_new         (const KpWire  *wire,
                                         const char    *json);
void           fuzz_assert_json         (const char    *data,
                                         gsize          len);
void           fuzz_assert_sse_json     (const char    *data,
                                         gsize          len);

G_END_DECLS
