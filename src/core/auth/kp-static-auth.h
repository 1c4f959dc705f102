/* kp-static-auth.h: an API key, sent as it is
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include "kp-auth.h"

G_BEGIN_DECLS

#define KP_TYPE_STATIC_AUTH (kp_static_auth_get_type ())

G_DECLARE_FINAL_TYPE (KpStaticAuth, kp_static_auth, KP, STATIC_AUTH, GObject)

KpAuth *kp_static_auth_new (const char *secret);

G_END_DECLS
