/* kp-vault.h: secrets in the Secret Service (the OS keyring)
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define KP_VAULT_ERROR (kp_vault_error_quark ())

typedef enum
{
  KP_VAULT_ERROR_UNAVAILABLE,
  KP_VAULT_ERROR_TIMEOUT,
  KP_VAULT_ERROR_FAILED,
} KpVaultError;

/* The access token's item: provider "keypool", credential "token". */
#define KP_VAULT_TOKEN_KEY "keypool:token"
#define KP_VAULT_TOKEN "token"

#define KP_TYPE_VAULT (kp_vault_get_type ())

G_DECLARE_FINAL_TYPE (KpVault, kp_vault, KP, VAULT, GObject)

GQuark      kp_vault_error_quark   (void);
KpVault    *kp_vault_new           (void);
void        kp_vault_set_timeout   (KpVault              *self,
                                    guint                 timeout_ms);
void        kp_vault_load_async    (KpVault              *self,
                                    GCancellable         *cancellable,
                                    GAsyncReadyCallback   callback,
                                    gpointer              user_data);
GHashTable *kp_vault_load_finish   (KpVault              *self,
                                    GAsyncResult         *result,
                                    GError              **error);
void        kp_vault_store_async   (KpVault              *self,
                                    const char           *provider,
                                    const char           *credential,
                                    const char           *label,
                                    const char           *secret,
                                    GCancellable         *cancellable,
                                    GAsyncReadyCallback   callback,
                                    gpointer              user_data);
gboolean    kp_vault_store_finish  (KpVault              *self,
                                    GAsyncResult         *result,
                                    GError              **error);
void        kp_vault_clear_async   (KpVault              *self,
                                    const char           *credential,
                                    GCancellable         *cancellable,
                                    GAsyncReadyCallback   callback,
                                    gpointer              user_data);
gboolean    kp_vault_clear_finish  (KpVault              *self,
                                    GAsyncResult         *result,
                                    GError              **error);

G_END_DECLS
