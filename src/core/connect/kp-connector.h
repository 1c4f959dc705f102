/* kp-connector.h: `keypool connect`, with a client token and a model
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <gio/gio.h>

#include "kp-connect.h"
#include "kp-gateway.h"

G_BEGIN_DECLS

/* What a connect did. */
typedef struct
{
  gboolean  changed;      /* a file was written */
  guint     opened_mode;  /* @token_path's mode, when others could read it before; it is 0600 now */
  char     *path;         /* the tool's files, for showing: ", " between them */
  char     *token_path;   /* the one that holds the token */
  char     *model;
  gboolean  model_served; /* the user's keys serve @model now */
  char     *problem;      /* why the files were left alone, or NULL */
  char     *snippet;      /* then: what to paste instead (it has the token) */
} KpConnectResult;

char            *kp_connector_pick_model     (KpGateway            *gateway,
                                              const KpConnectTool  *tool,
                                              gboolean             *served);
gboolean         kp_connector_model_served   (KpGateway            *gateway,
                                              const char           *model);
void             kp_connector_connect_async  (KpGateway            *gateway,
                                              const KpConnectTool  *tool,
                                              const char           *home,
                                              const char           *model,
                                              GCancellable         *cancellable,
                                              GAsyncReadyCallback   callback,
                                              gpointer              user_data);
KpConnectResult *kp_connector_connect_finish (KpGateway            *gateway,
                                              GAsyncResult         *result,
                                              GError              **error);
void             kp_connector_disconnect_async  (KpGateway           *gateway,
                                                 const KpConnectTool *tool,
                                                 const char          *home,
                                                 GCancellable        *cancellable,
                                                 GAsyncReadyCallback  callback,
                                                 gpointer             user_data);
gboolean         kp_connector_disconnect_finish (KpGateway           *gateway,
                                                 GAsyncResult        *result,
                                                 GError             **error);
void             kp_connect_result_free      (KpConnectResult      *result);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (KpConnectResult, kp_connect_result_free)

G_END_DECLS
