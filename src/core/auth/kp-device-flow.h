/* kp-device-flow.h: an OAuth device sign-in with PKCE (RFC 8628, Qwen Code's)
 *
 * The user is shown a code and a page to open; Keypool polls the token
 * endpoint until the user approved, refused, or the code expired. Polling
 * starts at the interval the server gave (5 s when it gave none), slows by
 * half on every `slow_down` up to 10 s, and ends at the code's expiry or when
 * the caller cancels.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <gio/gio.h>
#include <libsoup/soup.h>

G_BEGIN_DECLS

#define KP_DEVICE_FLOW_INTERVAL_MS      5000
#define KP_DEVICE_FLOW_MAX_INTERVAL_MS  10000
#define KP_DEVICE_FLOW_MAX_EXPIRY_S     1800

/* What the user must see: the code, and the page where it is entered. */
typedef struct
{
  char   *user_code;
  char   *verification_uri;
  char   *verification_uri_complete;  /* the page with the code in it, or NULL */
  gint64  expires_in;                 /* seconds */
} KpDeviceCode;

/* What the sign-in granted. */
typedef struct
{
  char   *access_token;
  char   *refresh_token;
  gint64  expires_in;    /* seconds; 0 if not said */
  char   *resource_url;  /* where the account's API is (Qwen), or NULL */
} KpDeviceGrant;

#define KP_TYPE_DEVICE_FLOW (kp_device_flow_get_type ())

G_DECLARE_FINAL_TYPE (KpDeviceFlow, kp_device_flow, KP, DEVICE_FLOW, GObject)

KpDeviceFlow  *kp_device_flow_new             (SoupSession         *session,
                                               const char          *device_code_url,
                                               const char          *token_url,
                                               const char          *client_id,
                                               const char          *scope);
void           kp_device_flow_set_time_scale  (KpDeviceFlow        *self,
                                               double               scale);
guint          kp_device_flow_get_interval_ms (KpDeviceFlow        *self);
guint          kp_device_flow_get_polls       (KpDeviceFlow        *self);
const char    *kp_device_flow_get_code_verifier (KpDeviceFlow      *self);

void           kp_device_flow_start_async     (KpDeviceFlow        *self,
                                               GCancellable        *cancellable,
                                               GAsyncReadyCallback  callback,
                                               gpointer             user_data);
KpDeviceCode  *kp_device_flow_start_finish    (KpDeviceFlow        *self,
                                               GAsyncResult        *result,
                                               GError             **error);
void           kp_device_flow_poll_async      (KpDeviceFlow        *self,
                                               GCancellable        *cancellable,
                                               GAsyncReadyCallback  callback,
                                               gpointer             user_data);
KpDeviceGrant *kp_device_flow_poll_finish     (KpDeviceFlow        *self,
                                               GAsyncResult        *result,
                                               GError             **error);

void           kp_device_code_free            (KpDeviceCode        *code);
void           kp_device_grant_free           (KpDeviceGrant       *grant);
char          *kp_device_flow_pkce_challenge  (const char          *verifier);
char          *kp_oauth_api_base_from_resource (const char         *resource_url,
                                               const char          *fallback);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (KpDeviceCode, kp_device_code_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (KpDeviceGrant, kp_device_grant_free)

G_END_DECLS
