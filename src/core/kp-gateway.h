/* kp-gateway.h: the composition root of Keypool's core
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <libsoup/soup.h>

#include "kp-budgets.h"
#include "kp-catalog.h"
#include "kp-clients.h"
#include "kp-credential.h"
#include "kp-key-health.h"
#include "kp-ledger.h"
#include "kp-planner.h"
#include "kp-refresh.h"
#include "kp-relay.h"
#include "kp-upstream-error.h"
#include "kp-vault.h"

G_BEGIN_DECLS

#define KP_GATEWAY_DEFAULT_PORT       7878
#define KP_GATEWAY_DEFAULT_BODY_LIMIT (32 * 1024 * 1024)

/* What Keypool reads from a provider at most. */
#define KP_GATEWAY_DEFAULT_BODY_CAP   ((gsize)64 * 1024 * 1024)
#define KP_GATEWAY_DEFAULT_EVENT_CAP  ((gsize)8 * 1024 * 1024)
#define KP_GATEWAY_DEFAULT_LIST_CAP   ((gsize)16 * 1024 * 1024)

/* What the local server allows its clients. Timeouts are in milliseconds;
 * 0 turns one off.
 */
typedef struct
{
  guint max_connections;   /* open at once; more get a quick 503 */
  guint max_large_bodies;  /* bodies of large_body bytes or more held at once */
  gsize large_body;
  guint header_ms;         /* from connecting, or a request's first byte, to its headers */
  guint body_ms;           /* from the headers to the end of the body */
  guint idle_ms;           /* a kept-alive connection between requests */
} KpClientLimits;

#define KP_CLIENT_LIMITS_DEFAULT { 512, 8, 1024 * 1024, 30000, 60000, 120000 }

#define KP_GATEWAY_ERROR (kp_gateway_error_quark ())

typedef enum
{
  KP_GATEWAY_ERROR_LISTEN,
  KP_GATEWAY_ERROR_NOT_FOUND,
  KP_GATEWAY_ERROR_INVALID,
  KP_GATEWAY_ERROR_KEYRING,
  KP_GATEWAY_ERROR_KEY_REJECTED,
} KpGatewayError;

#define KP_TYPE_GATEWAY (kp_gateway_get_type ())

G_DECLARE_FINAL_TYPE (KpGateway, kp_gateway, KP, GATEWAY, GObject)

GQuark        kp_gateway_error_quark          (void);
KpGateway    *kp_gateway_new                  (void);

/* Configuration, before loading. */
void          kp_gateway_set_port             (KpGateway   *self,
                                               guint        port);
void          kp_gateway_set_dirs             (KpGateway   *self,
                                               const char  *providers_dir,
                                               const char  *config_dir,
                                               const char  *data_dir);
void          kp_gateway_set_token            (KpGateway   *self,
                                               const char  *token);
void          kp_gateway_set_use_keyring      (KpGateway   *self,
                                               gboolean     use_keyring);
void          kp_gateway_set_body_limit       (KpGateway   *self,
                                               gsize        limit);
void          kp_gateway_set_timeouts         (KpGateway   *self,
                                               guint        connect_ms,
                                               guint        first_byte_ms,
                                               guint        idle_ms);
void          kp_gateway_set_client_limits    (KpGateway   *self,
                                               const KpClientLimits *limits);
void          kp_gateway_set_allowed_origins  (KpGateway   *self,
                                               const char * const *origins);

/* Life cycle. */
void          kp_gateway_load_async           (KpGateway           *self,
                                               GCancellable        *cancellable,
                                               GAsyncReadyCallback  callback,
                                               gpointer             user_data);
gboolean      kp_gateway_load_finish          (KpGateway           *self,
                                               GAsyncResult        *result,
                                               GError             **error);
gboolean      kp_gateway_listen               (KpGateway   *self,
                                               GError     **error);
void          kp_gateway_stop                 (KpGateway   *self);
gboolean      kp_gateway_is_serving           (KpGateway   *self);

/* State. */
guint         kp_gateway_get_port             (KpGateway   *self);
char         *kp_gateway_dup_base_url         (KpGateway   *self);
const char   *kp_gateway_get_token            (KpGateway   *self);
const char   *kp_gateway_get_token_origin     (KpGateway   *self);
const char   *kp_gateway_get_keyring_problem  (KpGateway   *self);
KpCatalog    *kp_gateway_get_catalog          (KpGateway   *self);
KpClients    *kp_gateway_get_clients          (KpGateway   *self);
KpBudgets    *kp_gateway_get_budgets          (KpGateway   *self);
KpLedger     *kp_gateway_get_ledger           (KpGateway   *self);
KpRefresh    *kp_gateway_get_refresh          (KpGateway   *self);
SoupSession  *kp_gateway_get_session          (KpGateway   *self);
SoupSession  *kp_gateway_get_session_for      (KpGateway   *self,
                                               GUri        *uri);
guint         kp_gateway_get_n_active         (KpGateway   *self);
GPtrArray    *kp_gateway_get_credentials      (KpGateway   *self);
KpCredential *kp_gateway_find_credential      (KpGateway   *self,
                                               gint64       id);
gboolean      kp_gateway_provider_is_enabled  (KpGateway   *self,
                                               KpProvider  *provider);
gboolean      kp_gateway_provider_is_usable   (KpGateway   *self,
                                               KpProvider  *provider);
guint         kp_gateway_count_keys           (KpGateway   *self,
                                               KpProvider  *provider);
GPtrArray    *kp_gateway_resolve              (KpGateway            *self,
                                               const char           *model,
                                               GStrv                *providers);
KpPlan       *kp_gateway_plan                 (KpGateway            *self,
                                               GPtrArray            *offerings,
                                               const KpRouteRequest *request);
KpPlan       *kp_gateway_plan_peek            (KpGateway            *self,
                                               GPtrArray            *offerings,
                                               const KpRouteRequest *request);
void          kp_gateway_note_failure         (KpGateway            *self,
                                               const KpRoute        *route,
                                               const KpFailure      *failure);
void          kp_gateway_note_success         (KpGateway            *self,
                                               const KpRoute        *route);
gboolean      kp_gateway_set_key_options      (KpGateway            *self,
                                               gint64                id,
                                               double                multiplier,
                                               gboolean              enabled,
                                               GError              **error);
gboolean      kp_gateway_reset_key            (KpGateway            *self,
                                               gint64                id,
                                               GError              **error);
void          kp_gateway_note_balance         (KpGateway            *self,
                                               KpCredential         *credential,
                                               double                balance,
                                               const char           *currency,
                                               gboolean              available);
void          kp_gateway_catalog_changed      (KpGateway            *self);

/* Management: the CLI, the window and the tray go through these. */
gboolean      kp_gateway_set_provider_enabled (KpGateway   *self,
                                               const char  *provider_id,
                                               gboolean     enabled,
                                               GError     **error);
void          kp_gateway_add_key_async        (KpGateway           *self,
                                               const char          *provider_id,
                                               const char          *label,
                                               double               multiplier,
                                               const char          *secret,
                                               gboolean             check,
                                               GCancellable        *cancellable,
                                               GAsyncReadyCallback  callback,
                                               gpointer             user_data);
KpCredential *kp_gateway_add_key_finish       (KpGateway           *self,
                                               GAsyncResult        *result,
                                               char               **check_report,
                                               GError             **error);
void          kp_gateway_add_account_async    (KpGateway           *self,
                                               const char          *provider_id,
                                               const char          *label,
                                               const char          *refresh_token,
                                               const char          *access_token,
                                               gint64               expires_at,
                                               GCancellable        *cancellable,
                                               GAsyncReadyCallback  callback,
                                               gpointer             user_data);
KpCredential *kp_gateway_add_account_finish   (KpGateway           *self,
                                               GAsyncResult        *result,
                                               GError             **error);
char         *kp_gateway_dup_login_file       (KpGateway           *self,
                                               const char          *provider_id);
void          kp_gateway_import_login_async   (KpGateway           *self,
                                               const char          *provider_id,
                                               const char          *label,
                                               GCancellable        *cancellable,
                                               GAsyncReadyCallback  callback,
                                               gpointer             user_data);
KpCredential *kp_gateway_import_login_finish  (KpGateway           *self,
                                               GAsyncResult        *result,
                                               GError             **error);
gboolean      kp_gateway_login_async          (KpGateway           *self,
                                               const char          *provider_id,
                                               const char          *label,
                                               gboolean             open_browser,
                                               guint                timeout_s,
                                               char               **url_out,
                                               GCancellable        *cancellable,
                                               GAsyncReadyCallback  callback,
                                               gpointer             user_data,
                                               GError             **error);
KpCredential *kp_gateway_login_finish         (KpGateway           *self,
                                               GAsyncResult        *result,
                                               GError             **error);
void          kp_gateway_remove_key_async     (KpGateway           *self,
                                               gint64               id,
                                               GCancellable        *cancellable,
                                               GAsyncReadyCallback  callback,
                                               gpointer             user_data);
gboolean      kp_gateway_remove_key_finish    (KpGateway           *self,
                                               GAsyncResult        *result,
                                               GError             **error);
void          kp_gateway_regenerate_token_async (KpGateway         *self,
                                               GCancellable        *cancellable,
                                               GAsyncReadyCallback  callback,
                                               gpointer             user_data);
gboolean      kp_gateway_regenerate_token_finish (KpGateway        *self,
                                               GAsyncResult        *result,
                                               GError             **error);

/* Used by the server and the relay only. */
gsize         kp_gateway_get_body_limit       (KpGateway   *self);
void          kp_gateway_set_upstream_conns   (KpGateway   *self,
                                               guint        per_host);
guint         kp_gateway_get_upstream_conns   (KpGateway   *self);
void          kp_gateway_get_read_caps        (KpGateway   *self,
                                               gsize       *body_cap,
                                               gsize       *event_cap,
                                               gsize       *list_cap);
void          kp_gateway_set_read_caps        (KpGateway   *self,
                                               gsize        body_cap,
                                               gsize        event_cap,
                                               gsize        list_cap);
void          kp_gateway_get_timeouts         (KpGateway   *self,
                                               guint       *connect_ms,
                                               guint       *first_byte_ms,
                                               guint       *idle_ms);
const KpClientLimits *kp_gateway_get_client_limits (KpGateway *self);
gboolean      kp_gateway_origin_allowed       (KpGateway   *self,
                                               const char  *origin);
const char   *kp_gateway_get_models_json      (KpGateway   *self,
                                               gsize       *length);
char         *kp_gateway_dup_health_json      (KpGateway   *self);
void          kp_gateway_relay_started        (KpGateway   *self,
                                               KpRelay     *relay,
                                               const char  *client_address);
void          kp_gateway_relay_finished       (KpGateway   *self,
                                               KpRelay     *relay);

G_END_DECLS
