/* kp-credential.c: one upstream key and its health
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include <string.h>

#include "kp-credential.h"
#include "auth/kp-static-auth.h"

struct _KpCredential
{
  GObject            parent_instance;

  gint64             id;
  char              *provider_id;
  char              *label;
  double             multiplier;
  gboolean           enabled;
  gboolean           from_env;
  char              *env_var;
  KpCredentialState  state;
  gint64             state_until;  /* unix seconds; 0 = until something changes */
  char              *last_error;
  char              *user_url;     /* KP_CREDENTIAL_NEEDS_USER: where the owner acts */
  KpAuth            *auth;         /* holds the secret; NULL while there is none */
  GHashTable        *meta;         /* name -> value: what the provider said of the account */
  guint              failures;     /* in a row; health when prices tie */
};

G_DEFINE_TYPE (KpCredential, kp_credential, G_TYPE_OBJECT)

static void
kp_credential_finalize (GObject *object)
{
  KpCredential *self = (KpCredential *)object;

  g_clear_object (&self->auth);
  g_clear_pointer (&self->meta, g_hash_table_unref);
  g_clear_pointer (&self->provider_id, g_free);
  g_clear_pointer (&self->label, g_free);
  g_clear_pointer (&self->env_var, g_free);
  g_clear_pointer (&self->last_error, g_free);
  g_clear_pointer (&self->user_url, g_free);

  G_OBJECT_CLASS (kp_credential_parent_class)->finalize (object);
}

static void
kp_credential_class_init (KpCredentialClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = kp_credential_finalize;
}

static void
kp_credential_init (KpCredential *self)
{
  self->multiplier = 1.0;
  self->enabled = TRUE;
  self->meta = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
}

KpCredential *
kp_credential_new_from_row (const KpCredentialRow *row)
{
  KpCredential *self;

  g_return_val_if_fail (row != NULL, NULL);

  self = g_object_new (KP_TYPE_CREDENTIAL, NULL);
  self->id = row->id;
  self->provider_id = g_strdup (row->provider);
  self->label = g_strdup (row->label ? row->label : "");
  self->multiplier = row->multiplier > 0 ? row->multiplier : 1.0;
  self->enabled = row->enabled;
  self->from_env = g_strcmp0 (row->source, "env") == 0;
  self->env_var = g_strdup (row->env_var);
  self->state = kp_credential_state_from_string (row->state);
  self->state_until = row->state_until;
  self->last_error = g_strdup (row->last_error);
  if (self->state == KP_CREDENTIAL_NEEDS_USER)
    self->user_url = g_strdup (row->user_url);
  return self;
}

gint64
kp_credential_get_id (KpCredential *self)
{
  g_return_val_if_fail (KP_IS_CREDENTIAL (self), 0);
  return self->id;
}

const char *
kp_credential_get_provider_id (KpCredential *self)
{
  g_return_val_if_fail (KP_IS_CREDENTIAL (self), NULL);
  return self->provider_id;
}

const char *
kp_credential_get_label (KpCredential *self)
{
  g_return_val_if_fail (KP_IS_CREDENTIAL (self), NULL);
  return self->label;
}

double
kp_credential_get_multiplier (KpCredential *self)
{
  g_return_val_if_fail (KP_IS_CREDENTIAL (self), 1.0);
  return self->multiplier;
}

gboolean
kp_credential_get_enabled (KpCredential *self)
{
  g_return_val_if_fail (KP_IS_CREDENTIAL (self), FALSE);
  return self->enabled;
}

gboolean
kp_credential_is_from_env (KpCredential *self)
{
  g_return_val_if_fail (KP_IS_CREDENTIAL (self), FALSE);
  return self->from_env;
}

const char *
kp_credential_get_env_var (KpCredential *self)
{
  g_return_val_if_fail (KP_IS_CREDENTIAL (self), NULL);
  return self->env_var;
}

/**
 * kp_credential_get_state:
 * @now: unix seconds
 *
 * A state with an end time is over once that time has come: a cooling or
 * exhausted key recovers by itself. A rejected key and an account waiting
 * for its owner stay so until something changes.
 */
KpCredentialState
kp_credential_get_state (KpCredential *self,
                         gint64        now)
{
  g_return_val_if_fail (KP_IS_CREDENTIAL (self), KP_CREDENTIAL_INVALID);

  if (self->state != KP_CREDENTIAL_OK && self->state != KP_CREDENTIAL_INVALID &&
      self->state != KP_CREDENTIAL_NEEDS_USER &&
      self->state_until > 0 && now >= self->state_until)
    return KP_CREDENTIAL_OK;
  return self->state;
}

gint64
kp_credential_get_state_until (KpCredential *self)
{
  g_return_val_if_fail (KP_IS_CREDENTIAL (self), 0);
  return self->state_until;
}

const char *
kp_credential_get_last_error (KpCredential *self)
{
  g_return_val_if_fail (KP_IS_CREDENTIAL (self), NULL);
  return self->last_error;
}

void
kp_credential_set_options (KpCredential *self,
                           double        multiplier,
                           gboolean      enabled)
{
  g_return_if_fail (KP_IS_CREDENTIAL (self));
  g_return_if_fail (multiplier > 0);

  self->multiplier = multiplier;
  self->enabled = enabled;
}

void
kp_credential_set_state (KpCredential      *self,
                         KpCredentialState  state,
                         gint64             until,
                         const char        *last_error)
{
  g_return_if_fail (KP_IS_CREDENTIAL (self));

  self->state = state;
  self->state_until = until;
  g_free (self->last_error);
  self->last_error = g_strdup (last_error);
  if (state != KP_CREDENTIAL_NEEDS_USER)
    g_clear_pointer (&self->user_url, g_free);
}

/**
 * kp_credential_set_needs_user:
 * @url: (nullable): the page where the account's owner acts; the same
 *   bounds as kp_ledger_save_credential_needs_user() apply to what is kept
 *   there (the caller saves it with that function)
 * @reason: (nullable): why, without the secret
 *
 * Marks the account as waiting for its owner (Google's
 * VALIDATION_REQUIRED, ...): not used until something changes.
 */
void
kp_credential_set_needs_user (KpCredential *self,
                              const char   *url,
                              const char   *reason)
{
  g_autofree char *bounded = kp_ledger_bound_reason (reason);

  g_return_if_fail (KP_IS_CREDENTIAL (self));

  kp_credential_set_state (self, KP_CREDENTIAL_NEEDS_USER, 0, bounded);
  g_free (self->user_url);
  self->user_url = url != NULL && strlen (url) <= KP_LEDGER_MAX_USER_URL ? g_strdup (url) : NULL;
}

/* The page where the owner of an account waiting for them acts, or NULL. */
const char *
kp_credential_get_user_url (KpCredential *self)
{
  g_return_val_if_fail (KP_IS_CREDENTIAL (self), NULL);
  return self->state == KP_CREDENTIAL_NEEDS_USER ? self->user_url : NULL;
}

guint
kp_credential_get_failures (KpCredential *self)
{
  g_return_val_if_fail (KP_IS_CREDENTIAL (self), 0);
  return self->failures;
}

/**
 * kp_credential_note_failure:
 *
 * Returns: how many times in a row the key has failed now
 */
guint
kp_credential_note_failure (KpCredential *self)
{
  g_return_val_if_fail (KP_IS_CREDENTIAL (self), 0);
  return ++self->failures;
}

void
kp_credential_note_success (KpCredential *self)
{
  g_return_if_fail (KP_IS_CREDENTIAL (self));
  self->failures = 0;
  if (self->auth != NULL)
    kp_auth_accepted (self->auth);
}

/**
 * kp_credential_get_secret:
 *
 * Returns: (nullable): what the keyring keeps (the key, or an OAuth refresh
 *   token), or %NULL while the keyring has not given it
 */
const char *
kp_credential_get_secret (KpCredential *self)
{
  g_return_val_if_fail (KP_IS_CREDENTIAL (self), NULL);
  return self->auth ? kp_auth_get_secret (self->auth) : NULL;
}

/**
 * kp_credential_set_secret:
 *
 * Gives the credential its secret: to its OAuth auth if it has one, else it
 * becomes a static key.
 */
void
kp_credential_set_secret (KpCredential *self,
                          const char   *secret)
{
  g_return_if_fail (KP_IS_CREDENTIAL (self));

  if (self->auth != NULL && kp_auth_get_kind (self->auth) != KP_AUTH_KIND_STATIC)
    kp_auth_set_secret (self->auth, secret);
  else
    {
      g_clear_object (&self->auth);
      if (secret != NULL)
        self->auth = kp_static_auth_new (secret);
    }
}

/**
 * kp_credential_set_auth:
 * @auth: (transfer none): how the credential is sent
 *
 * A secret the credential already holds moves to @auth.
 */
void
kp_credential_set_auth (KpCredential *self,
                        KpAuth       *auth)
{
  g_autoptr(KpAuth) old = NULL;

  g_return_if_fail (KP_IS_CREDENTIAL (self));
  g_return_if_fail (KP_IS_AUTH (auth));

  old = g_steal_pointer (&self->auth);
  self->auth = g_object_ref (auth);
  if (old != NULL && kp_auth_get_secret (old) != NULL && kp_auth_get_secret (auth) == NULL)
    kp_auth_set_secret (auth, kp_auth_get_secret (old));
}

/**
 * kp_credential_get_auth:
 *
 * Returns: (transfer none) (nullable): how the credential is sent
 */
KpAuth *
kp_credential_get_auth (KpCredential *self)
{
  g_return_val_if_fail (KP_IS_CREDENTIAL (self), NULL);
  return self->auth;
}

/**
 * kp_credential_get_token:
 *
 * Never waits (see kp_auth_get_token()).
 *
 * Returns: (nullable): what is sent to the provider now
 */
const char *
kp_credential_get_token (KpCredential *self)
{
  g_return_val_if_fail (KP_IS_CREDENTIAL (self), NULL);
  return self->auth ? kp_auth_get_token (self->auth) : NULL;
}

/**
 * kp_credential_rejected:
 *
 * The provider refused what the credential sent (HTTP 401).
 *
 * Returns: %TRUE if its auth recovers by itself (an OAuth refresh), so the
 *   credential is not invalid
 */
gboolean
kp_credential_rejected (KpCredential *self)
{
  g_return_val_if_fail (KP_IS_CREDENTIAL (self), FALSE);
  return self->auth != NULL && kp_auth_rejected (self->auth);
}

/**
 * kp_credential_get_meta:
 * @name: what is asked, such as "project"
 *
 * Returns: (nullable): what the provider said of the account; never a secret
 */
const char *
kp_credential_get_meta (KpCredential *self,
                        const char   *name)
{
  g_return_val_if_fail (KP_IS_CREDENTIAL (self), NULL);
  return g_hash_table_lookup (self->meta, name);
}

void
kp_credential_set_meta (KpCredential *self,
                        const char   *name,
                        const char   *value)
{
  g_return_if_fail (KP_IS_CREDENTIAL (self));
  g_return_if_fail (name != NULL);

  if (value == NULL)
    g_hash_table_remove (self->meta, name);
  else
    g_hash_table_replace (self->meta, g_strdup (name), g_strdup (value));
}

char *
kp_credential_dup_hint (KpCredential *self)
{
  const char *secret;

  g_return_val_if_fail (KP_IS_CREDENTIAL (self), NULL);
  secret = kp_credential_get_secret (self);
  return secret ? kp_secret_hint (secret) : g_strdup ("(locked)");
}

gboolean
kp_credential_is_usable (KpCredential *self,
                         gint64        now)
{
  g_return_val_if_fail (KP_IS_CREDENTIAL (self), FALSE);

  /* An OAuth credential without a valid access token gets one meanwhile. */
  return self->enabled && kp_credential_get_state (self, now) == KP_CREDENTIAL_OK &&
         kp_credential_get_token (self) != NULL;
}

const char *
kp_credential_state_to_string (KpCredentialState state)
{
  switch (state)
    {
    case KP_CREDENTIAL_COOLING:
      return "cooling";
    case KP_CREDENTIAL_EXHAUSTED:
      return "exhausted";
    case KP_CREDENTIAL_INVALID:
      return "invalid";
    case KP_CREDENTIAL_NEEDS_USER:
      return "needs_user";
    case KP_CREDENTIAL_OK:
    default:
      return "ok";
    }
}

KpCredentialState
kp_credential_state_from_string (const char *state)
{
  if (g_strcmp0 (state, "cooling") == 0)
    return KP_CREDENTIAL_COOLING;
  if (g_strcmp0 (state, "exhausted") == 0)
    return KP_CREDENTIAL_EXHAUSTED;
  if (g_strcmp0 (state, "invalid") == 0)
    return KP_CREDENTIAL_INVALID;
  if (g_strcmp0 (state, "needs_user") == 0)
    return KP_CREDENTIAL_NEEDS_USER;
  return KP_CREDENTIAL_OK;
}

/**
 * kp_secret_wipe:
 * @secret: (inout) (nullable): a secret string, or %NULL
 *
 * Overwrites the secret's bytes before freeing it, and clears the pointer.
 */
void
kp_secret_wipe (char **secret)
{
  g_return_if_fail (secret != NULL);

  if (*secret != NULL)
    {
      explicit_bzero (*secret, strlen (*secret));
      g_clear_pointer (secret, g_free);
    }
}

/**
 * kp_secret_fingerprint:
 *
 * Returns: (transfer full): a short digest that tells whether a key changed;
 *   it cannot give the key back
 */
char *
kp_secret_fingerprint (const char *secret)
{
  g_autofree char *digest = NULL;

  g_return_val_if_fail (secret != NULL, NULL);

  digest = g_compute_checksum_for_string (G_CHECKSUM_SHA256, secret, -1);
  return g_strndup (digest, 16);
}

/**
 * kp_secret_hint:
 *
 * Returns: (transfer full): the form of a key that may be shown: its last four
 *   characters, or nothing of it when it is too short to hide the rest
 */
char *
kp_secret_hint (const char *secret)
{
  gsize len;

  g_return_val_if_fail (secret != NULL, NULL);

  len = strlen (secret);
  if (len < 12)
    return g_strdup ("…");
  return g_strdup_printf ("…%s", secret + len - 4);
}

/**
 * kp_secret_scrub:
 * @text: (nullable): a message, such as a provider's error
 * @secret: (nullable): a key that must not appear in it
 *
 * Some providers echo the key they were sent in their errors; such messages
 * are kept and shown, so the key is replaced by its hint first.
 *
 * Returns: (transfer full) (nullable): @text without @secret
 */
char *
kp_secret_scrub (const char *text,
                 const char *secret)
{
  g_autofree char *hint = NULL;
  GString *out;
  const char *p;
  gsize len;

  if (text == NULL)
    return NULL;
  if (secret == NULL || *secret == '\0' || strstr (text, secret) == NULL)
    return g_strdup (text);

  hint = kp_secret_hint (secret);
  len = strlen (secret);
  out = g_string_new (NULL);
  for (p = text; *p; )
    {
      const char *found = strstr (p, secret);

      if (found == NULL)
        {
          g_string_append (out, p);
          break;
        }
      g_string_append_len (out, p, found - p);
      g_string_append (out, hint);
      p = found + len;
    }
  return g_string_free (out, FALSE);
}
