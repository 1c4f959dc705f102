/* kp-ways-in.h: how an account of a provider comes into Keypool
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include "kp-provider.h"

G_BEGIN_DECLS

typedef enum
{
  KP_WAY_IN_NONE    = 0,
  KP_WAY_IN_KEY     = 1 << 0,  /* an API key, pasted or piped */
  KP_WAY_IN_IMPORT  = 1 << 1,  /* a CLI's saved login (the file may not exist yet) */
  KP_WAY_IN_SIGN_IN = 1 << 2,  /* a sign-in in the browser */
} KpWayIn;

KpWayIn  kp_ways_in_of        (KpProvider *provider);
char    *kp_ways_in_dup_hint  (KpProvider *provider);

G_END_DECLS
