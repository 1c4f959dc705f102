/* kp-refresh.h: the catalog refresh: live models, prices and balances
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <gio/gio.h>

#include "kp-ledger.h"
#include "kp-provider.h"

G_BEGIN_DECLS

typedef struct _KpGateway KpGateway;

#define KP_REFRESH_ERROR (kp_refresh_error_quark ())

typedef enum
{
  KP_REFRESH_ERROR_NOT_FOUND,
  KP_REFRESH_ERROR_UNAVAILABLE,
} KpRefreshError;

typedef enum
{
  KP_REFRESH_OK,
  KP_REFRESH_FAILED,    /* the provider keeps its last good data */
  KP_REFRESH_SKIPPED,   /* nothing to ask it: off, or no key where one is needed */
} KpRefreshOutcome;

/* How one provider's refresh went, for the command line and the window. */
typedef struct
{
  char             *provider_id;
  KpRefreshOutcome  outcome;
  char             *summary;   /* what was learnt, or what went wrong */
} KpRefreshResult;

#define KP_TYPE_REFRESH (kp_refresh_get_type ())

G_DECLARE_FINAL_TYPE (KpRefresh, kp_refresh, KP, REFRESH, GObject)

GQuark              kp_refresh_error_quark      (void);
KpRefresh          *kp_refresh_new              (KpGateway           *gateway);
gboolean            kp_refresh_load             (KpRefresh           *self,
                                                 GError             **error);
void                kp_refresh_start            (KpRefresh           *self);
void                kp_refresh_stop             (KpRefresh           *self);
void                kp_refresh_reload_interval  (KpRefresh           *self);
gint64              kp_refresh_get_interval_ms  (KpRefresh           *self);
gboolean            kp_refresh_is_running       (KpRefresh           *self);
gint64              kp_refresh_get_last_run     (KpRefresh           *self);
const KpRefreshRow *kp_refresh_get_state        (KpRefresh           *self,
                                                 const char          *provider_id);
void                kp_refresh_run_async        (KpRefresh           *self,
                                                 const char          *provider_id,
                                                 GCancellable        *cancellable,
                                                 GAsyncReadyCallback  callback,
                                                 gpointer             user_data);
GPtrArray          *kp_refresh_run_finish       (KpRefresh           *self,
                                                 GAsyncResult        *result,
                                                 GError             **error);
void                kp_refresh_result_free      (KpRefreshResult     *result);
gboolean            kp_refresh_parse_price      (const char          *text,
                                                 int                  shift,
                                                 double              *usd);
GArray             *kp_refresh_parse_models     (GBytes              *body,
                                                 KpPriceFormat        format,
                                                 GError             **error);

G_END_DECLS
