/* kp-vault.h: provider keys
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include "kp-provider.h"

G_BEGIN_DECLS

#define KP_TYPE_VAULT (kp_vault_get_type ())

G_DECLARE_FINAL_TYPE (KpVault, kp_vault, KP, VAULT, GObject)

KpVault    *kp_vault_new          (void);
void        kp_vault_load_env     (KpVault    *self,
                                   KpProvider *provider);
guint       kp_vault_get_n_keys   (KpVault    *self,
                                   const char *provider_id);
const char *kp_vault_next_key     (KpVault    *self,
                                   const char *provider_id);
char       *kp_vault_describe_key (const char *key);

G_END_DECLS
