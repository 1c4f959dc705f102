/* kp-cli-creds.h: an OAuth login another CLI saved in a JSON file
 *
 * Gemini CLI (~/.gemini/oauth_creds.json) and Qwen Code keep their logins in
 * the shape of google-auth-library's Credentials: access_token,
 * refresh_token, token_type, expiry_date (milliseconds since the epoch).
 * Keypool reads such a file and never changes it.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* Such a file is a few hundred bytes. */
#define KP_CLI_CREDS_MAX_SIZE (64 * 1024)

typedef struct
{
  char   *refresh_token;
  char   *access_token;  /* NULL if none */
  gint64  expires_at;    /* unix s; 0 if not said */
  char   *resource_url;  /* where the account's API is (Qwen Code), or NULL */
} KpCliCreds;

char       *kp_cli_creds_expand_path (const char  *path);
gboolean    kp_cli_creds_exists      (const char  *path);
KpCliCreds *kp_cli_creds_read        (const char  *path,
                                      GError     **error);
void        kp_cli_creds_free        (KpCliCreds  *creds);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (KpCliCreds, kp_cli_creds_free)

G_END_DECLS
