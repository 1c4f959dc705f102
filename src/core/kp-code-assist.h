/* kp-code-assist.h: a Code Assist account's project and tier
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <libsoup/soup.h>

G_BEGIN_DECLS

#define KP_CODE_ASSIST_ERROR (kp_code_assist_error_quark ())

typedef enum
{
  KP_CODE_ASSIST_ERROR_FAILED,       /* no usable answer */
  KP_CODE_ASSIST_ERROR_INELIGIBLE,   /* the account cannot use Code Assist */
  KP_CODE_ASSIST_ERROR_VALIDATION,   /* the user must visit a validation URL */
} KpCodeAssistError;

/* Google asks for a poll every 5 s; at most this many. */
#define KP_CODE_ASSIST_POLL_MS    5000
#define KP_CODE_ASSIST_MAX_POLLS  60

typedef struct
{
  char *project;         /* NULL on the free tier: Google manages the project */
  char *tier;            /* "free-tier", "standard-tier", … */
  char *validation_url;  /* unused: kp_code_assist_setup_dup_validation_url() has it */
} KpCodeAssistAccount;

typedef struct
{
  double remaining;   /* the lowest remaining fraction, 0..1; < 0 = not said */
  gint64 reset_at;    /* when that bucket resets, unix s; 0 = not said */
} KpCodeAssistQuota;

GQuark               kp_code_assist_error_quark   (void);
void                 kp_code_assist_setup_async   (SoupSession          *session,
                                                   const char           *base_url,
                                                   const char           *access_token,
                                                   guint                 poll_ms,
                                                   GCancellable         *cancellable,
                                                   GAsyncReadyCallback   callback,
                                                   gpointer              user_data);
KpCodeAssistAccount *kp_code_assist_setup_finish  (GAsyncResult         *result,
                                                   GError              **error);
char                *kp_code_assist_setup_dup_validation_url (GAsyncResult *result);
void                 kp_code_assist_quota_async   (SoupSession          *session,
                                                   const char           *base_url,
                                                   const char           *access_token,
                                                   const char           *project,
                                                   GCancellable         *cancellable,
                                                   GAsyncReadyCallback   callback,
                                                   gpointer              user_data);
KpCodeAssistQuota   *kp_code_assist_quota_finish  (GAsyncResult         *result,
                                                   GError              **error);
char                *kp_code_assist_quota_describe (const KpCodeAssistQuota *quota);
void                 kp_code_assist_account_free  (KpCodeAssistAccount  *account);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (KpCodeAssistAccount, kp_code_assist_account_free)

G_END_DECLS
