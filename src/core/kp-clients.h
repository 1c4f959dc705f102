/* kp-clients.h: named client tokens ("Claude Code", "Cursor", …)
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <libsoup/soup.h>

#include "kp-ledger.h"
#include "kp-vault.h"

G_BEGIN_DECLS

#define KP_CLIENTS_ERROR (kp_clients_error_quark ())

typedef enum
{
  KP_CLIENTS_ERROR_INVALID,    /* the name is empty, too long or reserved */
  KP_CLIENTS_ERROR_EXISTS,     /* a client of that name exists */
  KP_CLIENTS_ERROR_NOT_FOUND,  /* no client of that name */
  KP_CLIENTS_ERROR_KEYRING,    /* the keyring cannot keep the token */
  KP_CLIENTS_ERROR_FAILED,
} KpClientsError;

/* The id of requests made with the main access token, shown as "Other". */
#define KP_CLIENT_OTHER 0

#define KP_CLIENT_NAME_MAX 64

/* A client as the faces show it. Never its token. */
typedef struct
{
  guint     id;
  char     *name;
  gint64    created;   /* unix seconds */
  gboolean  removed;   /* its token is gone; kept so that old spend keeps its name */
  gboolean  active;    /* its token is known: requests with it are served */
} KpClientInfo;

#define KP_TYPE_CLIENTS (kp_clients_get_type ())

G_DECLARE_FINAL_TYPE (KpClients, kp_clients, KP, CLIENTS, GObject)

GQuark        kp_clients_error_quark   (void);
KpClients    *kp_clients_new           (KpVault              *vault);
gboolean      kp_clients_load          (KpClients            *self,
                                        KpLedger             *ledger,
                                        GError              **error);
void          kp_clients_found_secrets (KpClients            *self,
                                        GHashTable           *secrets);
void          kp_clients_set_keyring_problem (KpClients      *self,
                                        const char           *problem);

/* The token check: the client whose token @token is, or FALSE. */
gboolean      kp_clients_check         (KpClients            *self,
                                        const char           *token,
                                        guint                *id);

GPtrArray    *kp_clients_list          (KpClients            *self,
                                        gboolean              with_removed);
char         *kp_clients_dup_name      (KpClients            *self,
                                        guint                 id);
gboolean      kp_clients_find          (KpClients            *self,
                                        const char           *name,
                                        guint                *id);

/* Management: the CLI, the window and `keypool connect` use these. */
void          kp_clients_add_async     (KpClients            *self,
                                        const char           *name,
                                        gboolean              replace,
                                        GCancellable         *cancellable,
                                        GAsyncReadyCallback   callback,
                                        gpointer              user_data);
char         *kp_clients_add_finish    (KpClients            *self,
                                        GAsyncResult         *result,
                                        guint                *id,
                                        GError              **error);
void          kp_clients_remove_async  (KpClients            *self,
                                        const char           *name,
                                        GCancellable         *cancellable,
                                        GAsyncReadyCallback   callback,
                                        gpointer              user_data);
gboolean      kp_clients_remove_finish (KpClients            *self,
                                        GAsyncResult         *result,
                                        GError              **error);
gboolean      kp_clients_rename        (KpClients            *self,
                                        const char           *name,
                                        const char           *new_name,
                                        GError              **error);

void          kp_client_info_free      (KpClientInfo         *info);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (KpClientInfo, kp_client_info_free)

G_END_DECLS
