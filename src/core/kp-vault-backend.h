/* kp-vault-backend.h: what the keyring's module gives KpVault
 *
 * The module (src/vault/) is the only part of Keypool that links libsecret.
 * It uses nothing from the core, so any program with the core (Keypool, the
 * tests) can load it. KpVault adds the timeout, the session bus check and
 * the error messages.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* Bumped whenever the table below changes. */
#define KP_VAULT_BACKEND_VERSION 1

/* The module's one entry point: the table, or NULL for another version. */
#define KP_VAULT_BACKEND_GET "kp_vault_backend_get"

typedef struct
{
  /* Every Keypool item: "PROVIDER:CREDENTIAL" → secret, wiped when the
   * table is destroyed. */
  void        (*load_async)     (GCancellable         *cancellable,
                                 GAsyncReadyCallback   callback,
                                 gpointer              user_data);
  GHashTable *(*load_finish)    (GAsyncResult         *result,
                                 GError              **error);
  void        (*store_async)    (const char           *provider,
                                 const char           *credential,
                                 const char           *label,
                                 const char           *secret,
                                 GCancellable         *cancellable,
                                 GAsyncReadyCallback   callback,
                                 gpointer              user_data);
  gboolean    (*store_finish)   (GAsyncResult         *result,
                                 GError              **error);
  void        (*clear_async)    (const char           *credential,
                                 GCancellable         *cancellable,
                                 GAsyncReadyCallback   callback,
                                 gpointer              user_data);
  gboolean    (*clear_finish)   (GAsyncResult         *result,
                                 GError              **error);
  /* Whether @error says that no Secret Service could be reached (as
   * opposed to one that refused). */
  gboolean    (*is_unreachable) (const GError         *error);
} KpVaultBackend;

typedef const KpVaultBackend *(*KpVaultBackendGet) (guint version);

/* In the module. */
const KpVaultBackend *kp_vault_backend_get (guint version);

G_END_DECLS
