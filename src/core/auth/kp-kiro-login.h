/* kp-kiro-login.h: a Kiro sign-in, read from Kiro's own files, and its refresh
 *
 * Kiro (the IDE) keeps its sign-in in ~/.aws/sso/cache/kiro-auth-token.json,
 * and for an IdC login (AWS Builder ID, Identity Center) the device
 * registration beside it in <clientIdHash>.json. kiro-cli keeps both in its
 * SQLite database, table auth_kv, read here read-only. A social login
 * (Google, GitHub) refreshes at Kiro's own endpoint, an IdC login at AWS
 * SSO-OIDC. Kiro rotates refresh tokens: when a refresh is refused, the
 * source is read again once, in case Kiro refreshed first.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <gio/gio.h>
#include <libsoup/soup.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/* Refresh this long before the access token expires. */
#define KP_KIRO_REFRESH_AHEAD_S (10 * 60)
/* Kiro's files and answers are small. */
#define KP_KIRO_MAX_FILE (256 * 1024)

typedef enum
{
  KP_KIRO_AUTH_SOCIAL,  /* Google or GitHub, through Kiro */
  KP_KIRO_AUTH_IDC,     /* AWS Builder ID or IAM Identity Center */
} KpKiroAuthMethod;

typedef struct
{
  KpKiroAuthMethod  method;
  char             *access_token;
  char             *refresh_token;
  gint64            expires_at;     /* unix s; 0 if not said */
  char             *profile_arn;    /* or NULL */
  char             *region;         /* of the login (us-east-1 when not said) */
  char             *client_id;      /* IdC: the device registration */
  char             *client_secret;
  char             *source;         /* the file it was read from */
} KpKiroLogin;

const char  *kp_kiro_auth_method_to_string (KpKiroAuthMethod  method);
KpKiroLogin *kp_kiro_login_new_from_object (JsonObject      *object,
                                             const char       *source,
                                             GError          **error);
KpKiroLogin *kp_kiro_login_copy             (const KpKiroLogin *login);
KpKiroLogin *kp_kiro_login_read_file        (const char       *path,
                                             GError          **error);
KpKiroLogin *kp_kiro_login_read_sqlite      (const char       *path,
                                             GError          **error);
KpKiroLogin *kp_kiro_login_read_source      (const char       *path,
                                             GError          **error);
char        *kp_kiro_login_default_source   (void);
gboolean     kp_kiro_login_needs_refresh    (const KpKiroLogin *login,
                                             gint64            now);
SoupMessage *kp_kiro_login_refresh_message  (const KpKiroLogin *login,
                                             const char       *endpoint);
gboolean     kp_kiro_login_take_refresh     (KpKiroLogin      *login,
                                             const char       *body,
                                             gsize             len,
                                             gint64            now,
                                             GError          **error);
void         kp_kiro_login_refresh_async    (KpKiroLogin      *login,
                                             SoupSession      *session,
                                             const char       *endpoint,
                                             GCancellable     *cancellable,
                                             GAsyncReadyCallback callback,
                                             gpointer          user_data);
gboolean     kp_kiro_login_refresh_finish   (GAsyncResult     *result,
                                             GError          **error);
void         kp_kiro_login_free             (KpKiroLogin      *login);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (KpKiroLogin, kp_kiro_login_free)

G_END_DECLS
