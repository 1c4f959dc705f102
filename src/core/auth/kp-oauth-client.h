/* kp-oauth-client.h: an OAuth application, as a provider file describes it
 *
 * Everything particular to one vendor's OAuth (its endpoints, its public
 * installed-app client id and secret, its scopes, its redirect port) is data
 * in the provider file's "oauth" object; the code here and in
 * kp-oauth-token.c and kp-oauth-login.c is the same for every vendor.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>
#include <libsoup/soup.h>

G_BEGIN_DECLS

#define KP_OAUTH_ERROR (kp_oauth_error_quark ())

typedef enum
{
  KP_OAUTH_ERROR_FAILED,     /* no answer, or a server error: try again later */
  KP_OAUTH_ERROR_REFUSED,    /* the grant is dead: the user must sign in again */
  KP_OAUTH_ERROR_INVALID,    /* an answer that cannot be read */
  KP_OAUTH_ERROR_CANCELLED,  /* the sign-in was cancelled or timed out */
} KpOAuthError;

/* Token answers are small; a bigger one is not a token answer. */
#define KP_OAUTH_MAX_ANSWER (64 * 1024)

/* How an account of the provider signs in and refreshes. */
typedef enum
{
  KP_OAUTH_FLOW_CODE,    /* the browser, PKCE, a loopback redirect (Google's) */
  KP_OAUTH_FLOW_DEVICE,  /* a code the user enters on a page (Qwen Code's, RFC 8628) */
  KP_OAUTH_FLOW_KIRO,    /* Kiro's own login, imported; refreshed at Kiro or AWS SSO-OIDC */
} KpOAuthFlow;

typedef struct
{
  KpOAuthFlow flow;
  char     *token_url;       /* where codes and refresh tokens become access tokens */
  char     *auth_url;        /* where the browser signs in; NULL: no browser sign-in */
  char     *client_id;
  char     *client_secret;   /* an installed app's public "secret", or NULL */
  GStrv     scopes;
  guint     redirect_port;   /* the loopback port the sign-in waits on; 0 = any free one */
  char     *redirect_path;   /* "/oauth2callback" */
  GStrv     auth_params;     /* extra query of the sign-in URL: name, value, name, value, … */
  char     *import_file;     /* a CLI's credentials file, "~/"-relative, or NULL */
  char     *account_setup;   /* what an account needs before use ("code-assist"), or NULL */
  char     *device_code_url; /* the device flow's code endpoint */
  char     *manage_url;      /* Kiro: the management API instead of management.<region>.kiro.dev */
  int       daily_quota_utc_offset_min; /* the provider's day for a daily quota, minutes east
                                         * of UTC; G_MININT = no daily quota known */
} KpOAuthClient;

/* What a token endpoint granted. */
typedef struct
{
  char   *access_token;
  char   *refresh_token;   /* NULL when the endpoint keeps the old one */
  gint64  expires_in;      /* seconds; 0 if not said */
  char   *scope;
  char   *resource_url;    /* where the account's API is (Qwen Code), or NULL */
} KpOAuthGrant;

#define KP_TYPE_OAUTH_CLIENT (kp_oauth_client_get_type ())

GType          kp_oauth_client_get_type     (void) G_GNUC_CONST;
const char    *kp_oauth_flow_to_string      (KpOAuthFlow    flow);
GQuark         kp_oauth_error_quark         (void);
KpOAuthClient *kp_oauth_client_new_from_json (JsonObject     *object,
                                             const char     *origin,
                                             GError        **error);
KpOAuthClient *kp_oauth_client_copy         (const KpOAuthClient *client);
void           kp_oauth_client_free         (KpOAuthClient *client);

void           kp_oauth_client_request_token_async (const KpOAuthClient *client,
                                                    SoupSession         *session,
                                                    GHashTable          *form,
                                                    GCancellable        *cancellable,
                                                    GAsyncReadyCallback  callback,
                                                    gpointer             user_data);
KpOAuthGrant  *kp_oauth_client_request_token_finish (GAsyncResult       *result,
                                                    GError            **error);
void           kp_oauth_grant_free          (KpOAuthGrant  *grant);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (KpOAuthClient, kp_oauth_client_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (KpOAuthGrant, kp_oauth_grant_free)

G_END_DECLS
