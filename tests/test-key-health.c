/* test-key-health.c: what a failure does to a key or an offering, on a clock the test sets
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include "config.h"

#include <string.h>

#include "kp-key-health.h"

#define NOW    ((gint64)1767225600)  /* 2026-01-01 00:00:00 UTC */
#define SECRET "sk-health-test-0123456789"

typedef struct
{
  KpKeyHealth  *health;
  KpProvider   *provider;
  KpCredential *credential;
  gint64        now;
} Fixture;

static gint64
fixture_clock (gpointer user_data)
{
  Fixture *fixture = user_data;

  return fixture->now;
}

static void
fixture_setup (Fixture       *fixture,
               gconstpointer  data)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) error = NULL;
  KpCredentialRow row = {
    .id = 7, .provider = (char *)"p", .label = (char *)"test", .multiplier = 1.0,
    .enabled = TRUE, .source = (char *)"keyring", .state = (char *)"ok",
  };

  g_assert_true (json_parser_load_from_data (parser,
    "{\"id\":\"p\",\"name\":\"P\",\"base_url\":\"http://p.test/v1\","
    "\"models\":[{\"id\":\"v/m\",\"input\":1,\"output\":1}]}", -1, NULL));
  fixture->provider = kp_provider_new_from_json (json_parser_get_root (parser), "p.json", &error);
  g_assert_no_error (error);

  fixture->credential = kp_credential_new_from_row (&row);
  kp_credential_set_secret (fixture->credential, SECRET);

  fixture->now = NOW;
  fixture->health = kp_key_health_new ();
  kp_key_health_set_clock (fixture->health, fixture_clock, fixture);
}

static void
fixture_teardown (Fixture       *fixture,
                  gconstpointer  data)
{
  g_clear_object (&fixture->health);
  g_clear_object (&fixture->credential);
  g_clear_object (&fixture->provider);
}

static const KpOffering *
offering (Fixture *fixture)
{
  return kp_provider_get_offering (fixture->provider, 0);
}

/* Fails the fixture's key once and returns until when it rests. */
static gint64
fail (Fixture        *fixture,
      KpFailureClass  klass,
      gint64          retry_after)
{
  KpFailure failure = { .klass = klass, .retry_after = retry_after };

  g_assert_true (kp_key_health_note_failure (fixture->health, offering (fixture),
                                             fixture->credential, &failure));
  return kp_credential_get_state_until (fixture->credential);
}

static void
test_clock (Fixture       *fixture,
            gconstpointer  data)
{
  gint64 real;

  g_assert_cmpint (kp_key_health_now (fixture->health), ==, NOW);
  fixture->now += 10;
  g_assert_cmpint (kp_key_health_now (fixture->health), ==, NOW + 10);

  /* Back to the real clock. */
  kp_key_health_set_clock (fixture->health, NULL, NULL);
  real = g_get_real_time () / G_USEC_PER_SEC;
  g_assert_cmpint (kp_key_health_now (fixture->health), >=, real - 1);
  g_assert_cmpint (kp_key_health_now (fixture->health), <=, real + 1);
}

static void
test_rate_limited (Fixture       *fixture,
                   gconstpointer  data)
{
  /* As the provider asked; a minute when it did not say; a second for “0”. */
  g_assert_cmpint (fail (fixture, KP_FAILURE_RATE_LIMITED, 30), ==, NOW + 30);
  g_assert_cmpint (kp_credential_get_state (fixture->credential, NOW), ==, KP_CREDENTIAL_COOLING);
  g_assert_cmpint (fail (fixture, KP_FAILURE_RATE_LIMITED, -1), ==,
                   NOW + KP_KEY_HEALTH_RATE_LIMIT_DEFAULT_S);
  g_assert_cmpint (fail (fixture, KP_FAILURE_RATE_LIMITED, 0), ==, NOW + 1);

  /* A Retry-After of 31 years rests the key an hour at most. */
  g_assert_cmpint (fail (fixture, KP_FAILURE_RATE_LIMITED, 999999999), ==,
                   NOW + KP_KEY_HEALTH_RATE_LIMIT_MAX_S);

  /* It comes back by itself when its time comes, not a second before. */
  g_assert_false (kp_credential_is_usable (fixture->credential,
                                           NOW + KP_KEY_HEALTH_RATE_LIMIT_MAX_S - 1));
  g_assert_true (kp_credential_is_usable (fixture->credential,
                                          NOW + KP_KEY_HEALTH_RATE_LIMIT_MAX_S));
}

static void
test_quota_capped (Fixture       *fixture,
                   gconstpointer  data)
{
  gint64 until;

  /* OpenAI's insufficient_quota with “Retry-After: 999999999” rested a key
   * until 2058; now a day at most.
   */
  until = fail (fixture, KP_FAILURE_QUOTA, 999999999);
  g_assert_cmpint (until, ==, NOW + KP_KEY_HEALTH_QUOTA_MAX_S);
  g_assert_cmpint (until - NOW, <=, 24 * 3600);
  g_assert_cmpint (kp_credential_get_state (fixture->credential, until - 1), ==,
                   KP_CREDENTIAL_EXHAUSTED);
  g_assert_cmpint (kp_credential_get_state (fixture->credential, until), ==, KP_CREDENTIAL_OK);

  /* A reset time the provider gives within a day is kept as it is. */
  g_assert_cmpint (fail (fixture, KP_FAILURE_QUOTA, 7200), ==, NOW + 7200);

  /* None, or “now”, is an hour. */
  g_assert_cmpint (fail (fixture, KP_FAILURE_QUOTA, -1), ==, NOW + KP_KEY_HEALTH_QUOTA_DEFAULT_S);
  g_assert_cmpint (fail (fixture, KP_FAILURE_QUOTA, 0), ==, NOW + KP_KEY_HEALTH_QUOTA_DEFAULT_S);
}

static void
test_auth (Fixture       *fixture,
           gconstpointer  data)
{
  g_assert_cmpint (fail (fixture, KP_FAILURE_AUTH, 60), ==, 0);
  /* Invalid until the key changes: time does not heal it. */
  g_assert_cmpint (kp_credential_get_state (fixture->credential, NOW + 365 * 24 * 3600), ==,
                   KP_CREDENTIAL_INVALID);
}

static void
test_down_backoff (Fixture       *fixture,
                   gconstpointer  data)
{
  const gint64 expected[] = { 5, 10, 20, 40, 80, 160, 300, 300 };

  /* Short, doubling while it keeps failing, five minutes at most. */
  for (guint i = 0; i < G_N_ELEMENTS (expected); i++)
    g_assert_cmpint (fail (fixture, KP_FAILURE_DOWN, -1), ==, NOW + expected[i]);
  g_assert_cmpuint (kp_credential_get_failures (fixture->credential), ==, G_N_ELEMENTS (expected));

  /* A success starts the count again. */
  kp_key_health_note_success (fixture->health, fixture->credential);
  g_assert_cmpuint (kp_credential_get_failures (fixture->credential), ==, 0);
  g_assert_cmpint (fail (fixture, KP_FAILURE_DOWN, -1), ==, NOW + KP_KEY_HEALTH_DOWN_BASE_S);
}

static void
test_offering_rests (Fixture       *fixture,
                     gconstpointer  data)
{
  KpFailure overloaded = { .klass = KP_FAILURE_DOWN, .retry_after = -1, .overloaded = TRUE };
  KpFailure missing = { .klass = KP_FAILURE_MODEL_MISSING, .retry_after = -1 };

  g_assert_cmpint (kp_key_health_get_busy_until (fixture->health, offering (fixture)), ==, 0);
  g_assert_cmpint (kp_key_health_get_missing_until (fixture->health, offering (fixture)), ==, 0);

  /* The provider's trouble, not the key's: its record stays clean. */
  g_assert_false (kp_key_health_note_failure (fixture->health, offering (fixture),
                                              fixture->credential, &overloaded));
  g_assert_cmpint (kp_key_health_get_busy_until (fixture->health, offering (fixture)), ==,
                   NOW + KP_KEY_HEALTH_BUSY_S);
  g_assert_false (kp_key_health_note_failure (fixture->health, offering (fixture),
                                              fixture->credential, &missing));
  g_assert_cmpint (kp_key_health_get_missing_until (fixture->health, offering (fixture)), ==,
                   NOW + KP_KEY_HEALTH_MODEL_MISSING_S);

  g_assert_cmpint (kp_credential_get_state (fixture->credential, NOW), ==, KP_CREDENTIAL_OK);
  g_assert_cmpuint (kp_credential_get_failures (fixture->credential), ==, 0);

  /* The same failures without a key rest the offering alike. */
  fixture->now += 100;
  g_assert_false (kp_key_health_note_failure (fixture->health, offering (fixture), NULL,
                                              &overloaded));
  g_assert_cmpint (kp_key_health_get_busy_until (fixture->health, offering (fixture)), ==,
                   NOW + 100 + KP_KEY_HEALTH_BUSY_S);
}

static void
test_no_change (Fixture       *fixture,
                gconstpointer  data)
{
  KpFailure client = { .klass = KP_FAILURE_CLIENT, .retry_after = -1 };
  KpFailure rate = { .klass = KP_FAILURE_RATE_LIMITED, .retry_after = 10 };

  /* The request's own fault blames no one. */
  g_assert_false (kp_key_health_note_failure (fixture->health, offering (fixture),
                                              fixture->credential, &client));
  g_assert_cmpint (kp_credential_get_state (fixture->credential, NOW), ==, KP_CREDENTIAL_OK);
  g_assert_cmpuint (kp_credential_get_failures (fixture->credential), ==, 0);

  /* A route without a key has no key state to change. */
  g_assert_false (kp_key_health_note_failure (fixture->health, offering (fixture), NULL, &rate));
}

static void
test_message_scrubbed (Fixture       *fixture,
                       gconstpointer  data)
{
  KpFailure failure = {
    .klass = KP_FAILURE_AUTH, .retry_after = -1,
    .message = (char *)"Incorrect API key provided: " SECRET ".",
  };
  const char *last_error;

  g_assert_true (kp_key_health_note_failure (fixture->health, offering (fixture),
                                             fixture->credential, &failure));
  last_error = kp_credential_get_last_error (fixture->credential);
  g_assert_nonnull (last_error);
  g_assert_true (g_str_has_prefix (last_error, "auth_invalid: Incorrect API key provided: "));
  g_assert_null (strstr (last_error, SECRET));
}

static void
test_balance (Fixture       *fixture,
              gconstpointer  data)
{
  /* Nothing left: exhausted, with no end of its own. */
  g_assert_true (kp_key_health_note_balance (fixture->health, fixture->credential, 0, "USD", TRUE));
  g_assert_cmpint (kp_credential_get_state (fixture->credential, NOW), ==, KP_CREDENTIAL_EXHAUSTED);
  g_assert_cmpint (kp_credential_get_state_until (fixture->credential), ==, 0);
  g_assert_true (g_str_has_prefix (kp_credential_get_last_error (fixture->credential),
                                   "balance: 0.00 USD left"));

  /* Money again: back at once. */
  fixture->now += 600;
  g_assert_true (kp_key_health_note_balance (fixture->health, fixture->credential, 5, "USD", TRUE));
  g_assert_cmpint (kp_credential_get_state (fixture->credential, fixture->now), ==,
                   KP_CREDENTIAL_OK);

  /* A positive balance on a healthy key changes nothing to save. */
  g_assert_false (kp_key_health_note_balance (fixture->health, fixture->credential, 5, "USD",
                                              TRUE));

  /* Money, but the provider says the account cannot be used. */
  g_assert_true (kp_key_health_note_balance (fixture->health, fixture->credential, 5, NULL,
                                             FALSE));
  g_assert_cmpint (kp_credential_get_state (fixture->credential, fixture->now), ==,
                   KP_CREDENTIAL_EXHAUSTED);
  g_assert_nonnull (strstr (kp_credential_get_last_error (fixture->credential),
                            "the provider says the account cannot be used"));
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

#define ADD(name, func) \
  g_test_add ("/keypool/key-health/" name, Fixture, NULL, fixture_setup, func, fixture_teardown)

  ADD ("clock", test_clock);
  ADD ("rate-limited", test_rate_limited);
  ADD ("quota-capped", test_quota_capped);
  ADD ("auth", test_auth);
  ADD ("down-backoff", test_down_backoff);
  ADD ("offering-rests", test_offering_rests);
  ADD ("no-change", test_no_change);
  ADD ("message-scrubbed", test_message_scrubbed);
  ADD ("balance", test_balance);

#undef ADD

  return g_test_run ();
}
