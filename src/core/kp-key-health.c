/* kp-key-health.c: what a failure means for a key or an offering, and for how long
 *
 * A failed attempt's class (see kp-upstream-error.h) decides what happens
 * to the route's key: a rate limit cools it down, an empty account exhausts
 * it, a refused key is invalid until it changes, an upstream that is down
 * rests it briefly with a backoff. A provider that lacks the model, or is
 * overloaded for everyone, rests the offering instead of the key.
 *
 * Time comes from a clock that tests may replace, so that a cooldown can
 * pass without waiting for it.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include "kp-key-health.h"

struct _KpKeyHealth
{
  GObject      parent_instance;

  KpClockFunc  clock;
  gpointer     clock_data;
  GHashTable  *missing;  /* "provider\nmodel" → unix s: said it lacks the model */
  GHashTable  *busy;     /* "provider\nmodel" → unix s: said it is overloaded */
};

G_DEFINE_FINAL_TYPE (KpKeyHealth, kp_key_health, G_TYPE_OBJECT)

/* What a key's balance, read by the catalog refresh, means for it. */
#define BALANCE_PREFIX "balance: "

static gint64
real_clock (gpointer user_data)
{
  return g_get_real_time () / G_USEC_PER_SEC;
}

static void
kp_key_health_finalize (GObject *object)
{
  KpKeyHealth *self = (KpKeyHealth *)object;

  g_clear_pointer (&self->missing, g_hash_table_unref);
  g_clear_pointer (&self->busy, g_hash_table_unref);

  G_OBJECT_CLASS (kp_key_health_parent_class)->finalize (object);
}

static void
kp_key_health_class_init (KpKeyHealthClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = kp_key_health_finalize;
}

static void
kp_key_health_init (KpKeyHealth *self)
{
  self->clock = real_clock;
  self->missing = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  self->busy = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
}

KpKeyHealth *
kp_key_health_new (void)
{
  return g_object_new (KP_TYPE_KEY_HEALTH, NULL);
}

/**
 * kp_key_health_set_clock:
 * @clock: (nullable): what tells the time, or %NULL for the real clock
 * @user_data: data for @clock
 */
void
kp_key_health_set_clock (KpKeyHealth *self,
                         KpClockFunc  clock,
                         gpointer     user_data)
{
  g_return_if_fail (KP_IS_KEY_HEALTH (self));

  self->clock = clock ? clock : real_clock;
  self->clock_data = clock ? user_data : NULL;
}

/**
 * kp_key_health_now:
 *
 * Returns: the time now by this health's clock, in unix seconds
 */
gint64
kp_key_health_now (KpKeyHealth *self)
{
  g_return_val_if_fail (KP_IS_KEY_HEALTH (self), 0);

  return self->clock (self->clock_data);
}

char *
kp_format_time_of_day (gint64 unix_s)
{
  g_autoptr(GDateTime) when = g_date_time_new_from_unix_local (unix_s);

  return when ? g_date_time_format (when, "%H:%M:%S") : g_strdup ("?");
}

static char *
offering_key (const KpOffering *offering)
{
  return g_strconcat (kp_provider_get_id (offering->provider), "\n", offering->model_id, NULL);
}

static gint64
lookup_until (GHashTable       *table,
              const KpOffering *offering)
{
  g_autofree char *key = offering_key (offering);
  gint64 *until = g_hash_table_lookup (table, key);

  return until ? *until : 0;
}

static void
rest_offering (GHashTable       *table,
               const KpOffering *offering,
               gint64            until)
{
  g_hash_table_replace (table, offering_key (offering), g_memdup2 (&until, sizeof until));
}

/* A wait the provider asked for (< 0: it did not say), or the default,
 * kept within [1, max].
 */
static gint64
bounded_wait (gint64 asked,
              gint64 fallback,
              gint64 max)
{
  return CLAMP (asked >= 0 ? asked : fallback, 1, max);
}

/**
 * kp_key_health_note_failure:
 * @self: a #KpKeyHealth
 * @offering: the offering the failed attempt used
 * @credential: (nullable): its key, if it had one
 * @failure: how it failed
 *
 * Puts the key (or the offering) out of use for as long as the failure
 * class says; the state ends by itself at its time.
 *
 * Returns: whether the key's state changed, so that it must be saved
 */
gboolean
kp_key_health_note_failure (KpKeyHealth      *self,
                            const KpOffering *offering,
                            KpCredential     *credential,
                            const KpFailure  *failure)
{
  gint64 now;
  g_autofree char *said = NULL;
  g_autofree char *message = NULL;
  guint streak;
  gint64 wait;

  g_return_val_if_fail (KP_IS_KEY_HEALTH (self), FALSE);
  g_return_val_if_fail (offering != NULL, FALSE);
  g_return_val_if_fail (credential == NULL || KP_IS_CREDENTIAL (credential), FALSE);
  g_return_val_if_fail (failure != NULL, FALSE);

  now = kp_key_health_now (self);

  switch (failure->klass)
    {
    case KP_FAILURE_MODEL_MISSING:
      rest_offering (self->missing, offering, now + KP_KEY_HEALTH_MODEL_MISSING_S);
      return FALSE;

    case KP_FAILURE_DOWN:
      if (failure->overloaded)
        {
          /* The provider is busy for everyone: rest the offering a moment,
           * and leave the key's record alone.
           */
          rest_offering (self->busy, offering, now + KP_KEY_HEALTH_BUSY_S);
          return FALSE;
        }
      break;

    case KP_FAILURE_RATE_LIMITED:
    case KP_FAILURE_QUOTA:
    case KP_FAILURE_AUTH:
    case KP_FAILURE_NEEDS_USER:
      break;

    case KP_FAILURE_CLIENT:
    case KP_FAILURE_NONE:
    default:
      return FALSE;
    }

  if (credential == NULL)
    return FALSE;
  /* An OAuth access token refused that no refresh has replaced yet (the
   * request's own refresh did not come in time, or failed for want of an
   * answer): its auth gets a new one, the account is fine. A token fresh
   * from a refresh that is refused too means the account (kp_auth_rejected()).
   */
  if (failure->klass == KP_FAILURE_AUTH && !failure->account_locked &&
      kp_credential_rejected (credential))
    return FALSE;

  said = g_strdup_printf ("%s%s%s", kp_failure_class_to_string (failure->klass),
                          failure->message ? ": " : "", failure->message ? failure->message : "");
  message = kp_secret_scrub (said, kp_credential_get_secret (credential));

  streak = kp_credential_note_failure (credential);

  switch (failure->klass)
    {
    case KP_FAILURE_RATE_LIMITED:
      wait = bounded_wait (failure->retry_after, KP_KEY_HEALTH_RATE_LIMIT_DEFAULT_S,
                           KP_KEY_HEALTH_RATE_LIMIT_MAX_S);
      kp_credential_set_state (credential, KP_CREDENTIAL_COOLING, now + wait, message);
      break;

    case KP_FAILURE_QUOTA:
      if (failure->quota_reset != KP_QUOTA_RESET_UNKNOWN)
        {
          /* Back at the start of the provider's next day or month. */
          wait = kp_quota_reset_next (failure->quota_reset, failure->reset_utc_offset_min, now) - now;
          wait = CLAMP (wait, 1, KP_KEY_HEALTH_QUOTA_RESET_MAX_S);
          kp_credential_set_state (credential, KP_CREDENTIAL_EXHAUSTED, now + wait, message);
          break;
        }
      /* A quota that resets “now” is no information: rest the default. */
      wait = bounded_wait (failure->retry_after > 0 ? failure->retry_after : -1,
                           KP_KEY_HEALTH_QUOTA_DEFAULT_S, KP_KEY_HEALTH_QUOTA_MAX_S);
      kp_credential_set_state (credential, KP_CREDENTIAL_EXHAUSTED, now + wait, message);
      break;

    case KP_FAILURE_AUTH:
      /* Out of use until its owner acts ("keypool keys reset" after). */
      kp_credential_set_state (credential, KP_CREDENTIAL_INVALID, 0, message);
      break;

    case KP_FAILURE_NEEDS_USER:
      {
        g_autofree char *url = failure->user_url
                               ? kp_secret_scrub (failure->user_url, kp_credential_get_secret (credential))
                               : NULL;

        /* Not tried again until its owner has visited the page and said so
         * (Retry in the window, "keypool keys reset").
         */
        kp_credential_set_needs_user (credential, url, message);
      }
      break;

    case KP_FAILURE_DOWN:
      /* Short, and doubling while it keeps failing. */
      wait = MIN ((gint64)KP_KEY_HEALTH_DOWN_BASE_S << MIN (streak - 1, 10),
                  KP_KEY_HEALTH_DOWN_MAX_S);
      kp_credential_set_state (credential, KP_CREDENTIAL_COOLING, now + wait, message);
      break;

    case KP_FAILURE_MODEL_MISSING:
    case KP_FAILURE_CLIENT:
    case KP_FAILURE_NONE:
    default:
      g_assert_not_reached ();
    }

  return TRUE;
}

/**
 * kp_key_health_note_success:
 * @credential: (nullable): the key that served a request
 *
 * A key that served a request is healthy again: it ranks with the others.
 */
void
kp_key_health_note_success (KpKeyHealth  *self,
                            KpCredential *credential)
{
  g_return_if_fail (KP_IS_KEY_HEALTH (self));

  if (credential != NULL)
    kp_credential_note_success (credential);
}

/**
 * kp_key_health_note_balance:
 * @self: a #KpKeyHealth
 * @credential: the key the balance was read with
 * @balance: what is left, in @currency
 * @currency: (nullable): the currency the provider reported
 * @available: whether the provider says the account may be used
 *
 * A balance at or below zero puts the key out of use (exhausted, until a
 * later balance or a reset says otherwise); a positive one brings back a
 * key that was exhausted.
 *
 * Returns: whether the key's state changed, so that it must be saved
 */
gboolean
kp_key_health_note_balance (KpKeyHealth  *self,
                            KpCredential *credential,
                            double        balance,
                            const char   *currency,
                            gboolean      available)
{
  gint64 now;

  g_return_val_if_fail (KP_IS_KEY_HEALTH (self), FALSE);
  g_return_val_if_fail (KP_IS_CREDENTIAL (credential), FALSE);

  now = kp_key_health_now (self);
  if (balance <= 0 || !available)
    {
      g_autofree char *when = kp_format_time_of_day (now);
      g_autofree char *message = g_strdup_printf (BALANCE_PREFIX "%.2f %s left (read at %s)%s",
                                                  balance, currency ? currency : "", when,
                                                  available ? "" : "; the provider says the "
                                                                   "account cannot be used");

      kp_credential_set_state (credential, KP_CREDENTIAL_EXHAUSTED, 0, message);
      return TRUE;
    }

  if (kp_credential_get_state (credential, now) == KP_CREDENTIAL_EXHAUSTED)
    {
      g_debug ("Key %" G_GINT64_FORMAT " has a balance again", kp_credential_get_id (credential));
      kp_credential_set_state (credential, KP_CREDENTIAL_OK, 0, NULL);
      kp_credential_note_success (credential);
      return TRUE;
    }

  return FALSE;
}

/**
 * kp_key_health_get_missing_until:
 *
 * Returns: until when (unix s) the offering rests because its provider said
 *   it does not have the model; 0 if it never said so
 */
gint64
kp_key_health_get_missing_until (KpKeyHealth      *self,
                                 const KpOffering *offering)
{
  g_return_val_if_fail (KP_IS_KEY_HEALTH (self), 0);
  g_return_val_if_fail (offering != NULL, 0);

  return lookup_until (self->missing, offering);
}

/**
 * kp_key_health_get_busy_until:
 *
 * Returns: until when (unix s) the offering rests because its provider said
 *   it is overloaded; 0 if it never said so
 */
gint64
kp_key_health_get_busy_until (KpKeyHealth      *self,
                              const KpOffering *offering)
{
  g_return_val_if_fail (KP_IS_KEY_HEALTH (self), 0);
  g_return_val_if_fail (offering != NULL, 0);

  return lookup_until (self->busy, offering);
}
