/* kp-credential.h: one upstream key and its health
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <glib-object.h>

#include "kp-ledger.h"
#include "auth/kp-auth.h"

G_BEGIN_DECLS

typedef enum
{
  KP_CREDENTIAL_OK,
  KP_CREDENTIAL_COOLING,
  KP_CREDENTIAL_EXHAUSTED,
  KP_CREDENTIAL_INVALID,
  KP_CREDENTIAL_NEEDS_USER,   /* an account waiting for its owner (Google's VALIDATION_REQUIRED) */
} KpCredentialState;

#define KP_TYPE_CREDENTIAL (kp_credential_get_type ())

G_DECLARE_FINAL_TYPE (KpCredential, kp_credential, KP, CREDENTIAL, GObject)

KpCredential      *kp_credential_new_from_row    (const KpCredentialRow *row);
gint64             kp_credential_get_id          (KpCredential *self);
const char        *kp_credential_get_provider_id (KpCredential *self);
const char        *kp_credential_get_label       (KpCredential *self);
double             kp_credential_get_multiplier  (KpCredential *self);
gboolean           kp_credential_get_enabled     (KpCredential *self);
gboolean           kp_credential_is_from_env     (KpCredential *self);
const char        *kp_credential_get_env_var     (KpCredential *self);
KpCredentialState  kp_credential_get_state       (KpCredential *self,
                                                  gint64        now);
gint64             kp_credential_get_state_until (KpCredential *self);
const char        *kp_credential_get_last_error  (KpCredential *self);
void               kp_credential_set_options     (KpCredential *self,
                                                  double        multiplier,
                                                  gboolean      enabled);
void               kp_credential_set_state       (KpCredential *self,
                                                  KpCredentialState state,
                                                  gint64        until,
                                                  const char   *last_error);
void               kp_credential_set_needs_user  (KpCredential *self,
                                                  const char   *url,
                                                  const char   *reason);
const char        *kp_credential_get_user_url    (KpCredential *self);
guint              kp_credential_get_failures    (KpCredential *self);
guint              kp_credential_note_failure    (KpCredential *self);
void               kp_credential_note_success    (KpCredential *self);
const char        *kp_credential_get_secret      (KpCredential *self);
void               kp_credential_set_secret      (KpCredential *self,
                                                  const char   *secret);
void               kp_credential_set_auth        (KpCredential *self,
                                                  KpAuth       *auth);
KpAuth            *kp_credential_get_auth        (KpCredential *self);
const char        *kp_credential_get_token       (KpCredential *self);
gboolean           kp_credential_rejected        (KpCredential *self);
const char        *kp_credential_get_meta        (KpCredential *self,
                                                  const char   *name);
void               kp_credential_set_meta        (KpCredential *self,
                                                  const char   *name,
                                                  const char   *value);
char              *kp_credential_dup_hint        (KpCredential *self);
gboolean           kp_credential_is_usable       (KpCredential *self,
                                                  gint64        now);
const char        *kp_credential_state_to_string (KpCredentialState state);
KpCredentialState  kp_credential_state_from_string (const char *state);
char              *kp_secret_fingerprint         (const char   *secret);
char              *kp_secret_hint                (const char   *secret);
void               kp_secret_wipe                (char        **secret);
char              *kp_secret_scrub               (const char   *text,
                                                  const char   *secret);

G_END_DECLS
