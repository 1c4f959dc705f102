/* kp-wire-code-assist.h: Google's Code Assist v1internal API (Gemini CLI,
 * Antigravity), upstream only
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include "kp-wire.h"

G_BEGIN_DECLS

extern const KpWire kp_wire_code_assist;
extern const KpWire kp_wire_antigravity;

G_END_DECLS
