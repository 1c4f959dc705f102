/* test-planner.c: route planning as a pure function, without a server
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include "config.h"

#include <string.h>

#include "kp-planner.h"

/* A fixed moment: plans and rests are judged against it, not the clock. */
#define NOW ((gint64)1767225600)  /* 2026-01-01 00:00:00 UTC */

typedef struct
{
  KpCatalog   *catalog;
  GPtrArray   *credentials;
  GHashTable  *disabled;
  KpKeyHealth *health;
  gint64       now;
} Fixture;

static gint64
fixture_clock (gpointer user_data)
{
  Fixture *fixture = user_data;

  return fixture->now;
}

static void
add_provider (Fixture    *fixture,
              const char *json)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(KpProvider) provider = NULL;
  g_autoptr(GError) error = NULL;

  g_assert_true (json_parser_load_from_data (parser, json, -1, NULL));
  provider = kp_provider_new_from_json (json_parser_get_root (parser), "test.json", &error);
  g_assert_no_error (error);
  kp_catalog_add_provider (fixture->catalog, provider);
}

/* A key of @provider_id; @secret NULL is a key the keyring has not given. */
static KpCredential *
add_key (Fixture    *fixture,
         gint64      id,
         const char *provider_id,
         double      multiplier,
         const char *secret)
{
  KpCredentialRow row = {
    .id = id, .provider = (char *)provider_id, .label = (char *)"test",
    .multiplier = multiplier, .enabled = TRUE, .source = (char *)"keyring",
    .state = (char *)"ok",
  };
  KpCredential *credential = kp_credential_new_from_row (&row);

  if (secret != NULL)
    kp_credential_set_secret (credential, secret);
  g_ptr_array_add (fixture->credentials, credential);
  return credential;
}

static void
fixture_setup (Fixture       *fixture,
               gconstpointer  data)
{
  fixture->catalog = kp_catalog_new ();
  fixture->credentials = g_ptr_array_new_with_free_func (g_object_unref);
  fixture->disabled = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  fixture->health = kp_key_health_new ();
  fixture->now = NOW;
  kp_key_health_set_clock (fixture->health, fixture_clock, fixture);

  /* a: cheap; b: twice the price; u: no price; local: needs no key. */
  add_provider (fixture,
                "{\"id\":\"a\",\"name\":\"A\",\"base_url\":\"http://a.test/v1\","
                "\"env\":[\"A_KEY\"],\"models\":[{\"id\":\"v/m\",\"upstream_id\":\"a-m\","
                "\"input\":1,\"output\":4}]}");
  add_provider (fixture,
                "{\"id\":\"b\",\"name\":\"B\",\"base_url\":\"http://b.test/v1\","
                "\"env\":[\"B_KEY\"],\"models\":[{\"id\":\"v/m\",\"upstream_id\":"
                "\"b-own-name\",\"input\":2,\"output\":8}]}");
  add_provider (fixture,
                "{\"id\":\"u\",\"name\":\"U\",\"base_url\":\"http://u.test/v1\","
                "\"env\":[\"U_KEY\"],\"models\":[{\"id\":\"v/m\",\"upstream_id\":\"u-m\"}]}");
  add_provider (fixture,
                "{\"id\":\"local\",\"name\":\"Local\",\"base_url\":\"http://127.0.0.1:9/v1\","
                "\"requires_key\":false,\"auth\":\"none\",\"models\":[{\"id\":\"v/local\","
                "\"upstream_id\":\"l\",\"input\":0,\"output\":0}]}");
}

static void
fixture_teardown (Fixture       *fixture,
                  gconstpointer  data)
{
  g_clear_object (&fixture->catalog);
  g_clear_pointer (&fixture->credentials, g_ptr_array_unref);
  g_clear_pointer (&fixture->disabled, g_hash_table_unref);
  g_clear_object (&fixture->health);
}

static KpPlan *
plan_for (Fixture            *fixture,
          const char         *model,
          guint               rotation,
          const char * const *providers)
{
  KpPlanContext context = {
    fixture->credentials, fixture->disabled, fixture->health, fixture->now, rotation,
  };
  KpRouteRequest request = { 1000000, 0, providers };
  g_autoptr(GPtrArray) offerings = kp_planner_resolve (fixture->catalog, model, NULL);

  g_assert_nonnull (offerings);
  return kp_planner_plan (&context, offerings, &request);
}

static const KpRoute *
route_at (KpPlan *plan,
          guint   index)
{
  g_assert_cmpuint (index, <, plan->routes->len);
  return &g_array_index (plan->routes, KpRoute, index);
}

static const char *
provider_at (KpPlan *plan,
             guint   index)
{
  return kp_provider_get_id (route_at (plan, index)->provider);
}

static gint64
key_at (KpPlan *plan,
        guint   index)
{
  const KpRoute *route = route_at (plan, index);

  return route->credential ? kp_credential_get_id (route->credential) : 0;
}

/* The one exclusion about @provider_id (and @credential_id, if not 0). */
static KpExclusion *
exclusion_of (KpPlan     *plan,
              const char *provider_id,
              gint64      credential_id)
{
  KpExclusion *found = NULL;

  for (guint i = 0; i < plan->excluded->len; i++)
    {
      KpExclusion *exclusion = g_ptr_array_index (plan->excluded, i);

      if (g_str_equal (exclusion->provider_id, provider_id) &&
          (credential_id == 0 || exclusion->credential_id == credential_id))
        {
          g_assert_null (found);
          found = exclusion;
        }
    }
  g_assert_nonnull (found);
  return found;
}

static void
assert_contains (const char *text,
                 const char *part)
{
  if (strstr (text, part) == NULL)
    g_error ("“%s” does not contain “%s”", text, part);
}

static void
test_order_by_cost (Fixture       *fixture,
                    gconstpointer  data)
{
  g_autoptr(KpPlan) plan = NULL;

  /* a's first key costs three times list price: dearer than b at list. */
  add_key (fixture, 1, "a", 3.0, "sk-a-dear");
  add_key (fixture, 2, "a", 1.0, "sk-a-cheap");
  add_key (fixture, 3, "b", 1.0, "sk-b");
  add_key (fixture, 4, "u", 1.0, "sk-u");

  plan = plan_for (fixture, "v/m", 0, NULL);
  g_assert_cmpuint (plan->routes->len, ==, 4);
  g_assert_cmpuint (plan->excluded->len, ==, 0);

  /* A million prompt tokens at $1, $2 and 3 × $1 per million. */
  g_assert_cmpint (key_at (plan, 0), ==, 2);
  g_assert_cmpfloat_with_epsilon (route_at (plan, 0)->expected_usd, 1.0, 1e-9);
  g_assert_cmpint (key_at (plan, 1), ==, 3);
  g_assert_cmpfloat_with_epsilon (route_at (plan, 1)->expected_usd, 2.0, 1e-9);
  g_assert_cmpint (key_at (plan, 2), ==, 1);
  g_assert_cmpfloat_with_epsilon (route_at (plan, 2)->expected_usd, 3.0, 1e-9);

  /* Unpriced comes last, never as free. */
  g_assert_cmpstr (provider_at (plan, 3), ==, "u");
  g_assert_cmpfloat (route_at (plan, 3)->expected_usd, <, 0);

  for (guint i = 0; i < plan->routes->len; i++)
    g_assert_cmpuint (route_at (plan, i)->rank, ==, i + 1);
  g_assert_cmpuint (plan->tied, ==, 0);
}

static void
test_output_price (Fixture       *fixture,
                   gconstpointer  data)
{
  KpPlanContext context = { fixture->credentials, NULL, NULL, NOW, 0 };
  KpRouteRequest request = { 1000, 2000, NULL };
  g_autoptr(GPtrArray) offerings = kp_planner_resolve (fixture->catalog, "v/m", NULL);
  g_autoptr(KpPlan) plan = NULL;

  add_key (fixture, 1, "a", 1.0, "sk-a");
  plan = kp_planner_plan (&context, offerings, &request);

  /* 1000 × $1 + 2000 × $4, per million. */
  g_assert_cmpfloat_with_epsilon (route_at (plan, 0)->expected_usd, 0.009, 1e-12);
}

static void
test_health_breaks_ties (Fixture       *fixture,
                         gconstpointer  data)
{
  KpCredential *failing;
  g_autoptr(KpPlan) plan = NULL;

  failing = add_key (fixture, 1, "a", 1.0, "sk-a-failing");
  add_key (fixture, 2, "a", 1.0, "sk-a-fine");
  kp_credential_note_failure (failing);

  /* Same price: the key that has been failing goes second, whatever the turn. */
  for (guint rotation = 0; rotation < 3; rotation++)
    {
      g_clear_pointer (&plan, kp_plan_free);
      plan = plan_for (fixture, "v/m", rotation, NULL);
      g_assert_cmpint (key_at (plan, 0), ==, 2);
      g_assert_cmpint (key_at (plan, 1), ==, 1);
      g_assert_cmpuint (plan->tied, ==, 0);
    }
}

static void
test_rotation (Fixture       *fixture,
               gconstpointer  data)
{
  add_key (fixture, 1, "a", 1.0, "sk-a-one");
  add_key (fixture, 2, "a", 1.0, "sk-a-two");
  add_key (fixture, 3, "a", 1.0, "sk-a-three");
  add_key (fixture, 4, "b", 1.0, "sk-b");

  /* Three equal keys take turns at the front; b stays behind them. */
  for (guint rotation = 0; rotation < 6; rotation++)
    {
      g_autoptr(KpPlan) plan = plan_for (fixture, "v/m", rotation, NULL);

      g_assert_cmpuint (plan->tied, ==, 3);
      g_assert_cmpint (key_at (plan, 0), ==, 1 + rotation % 3);
      g_assert_cmpint (key_at (plan, 1), ==, 1 + (rotation + 1) % 3);
      g_assert_cmpstr (provider_at (plan, 3), ==, "b");
      g_assert_cmpuint (route_at (plan, 0)->rank, ==, 1);
    }
}

static void
test_key_exclusions (Fixture       *fixture,
                     gconstpointer  data)
{
  g_autoptr(KpPlan) plan = NULL;
  KpCredential *off, *cooling, *exhausted, *invalid;
  KpExclusion *exclusion;

  off = add_key (fixture, 1, "a", 1.0, "sk-off");
  kp_credential_set_options (off, 1.0, FALSE);
  add_key (fixture, 2, "a", 1.0, NULL);
  cooling = add_key (fixture, 3, "a", 1.0, "sk-cooling");
  kp_credential_set_state (cooling, KP_CREDENTIAL_COOLING, NOW + 60, "rate_limited: slow down");
  exhausted = add_key (fixture, 4, "a", 1.0, "sk-exhausted");
  kp_credential_set_state (exhausted, KP_CREDENTIAL_EXHAUSTED, 0, NULL);
  invalid = add_key (fixture, 5, "a", 1.0, "sk-invalid");
  kp_credential_set_state (invalid, KP_CREDENTIAL_INVALID, 0, "auth_invalid: bad key");
  add_key (fixture, 6, "b", 1.0, "sk-b");

  plan = plan_for (fixture, "v/m", 0, NULL);

  /* b is the only route; u has no key at all. */
  g_assert_cmpuint (plan->routes->len, ==, 1);
  g_assert_cmpstr (provider_at (plan, 0), ==, "b");
  g_assert_cmpuint (plan->excluded->len, ==, 6);

  exclusion = exclusion_of (plan, "a", 1);
  g_assert_cmpint (exclusion->kind, ==, KP_EXCLUSION_KEY_OFF);
  assert_contains (exclusion->reason, "switched off");

  exclusion = exclusion_of (plan, "a", 2);
  g_assert_cmpint (exclusion->kind, ==, KP_EXCLUSION_NO_KEY);
  assert_contains (exclusion->reason, "keyring locked or unavailable");

  exclusion = exclusion_of (plan, "a", 3);
  g_assert_cmpint (exclusion->kind, ==, KP_EXCLUSION_COOLING);
  g_assert_cmpint (exclusion->until, ==, NOW + 60);
  assert_contains (exclusion->reason, "cooling down until");
  assert_contains (exclusion->reason, ": rate_limited: slow down");

  exclusion = exclusion_of (plan, "a", 4);
  g_assert_cmpint (exclusion->kind, ==, KP_EXCLUSION_EXHAUSTED);
  g_assert_cmpint (exclusion->until, ==, 0);
  assert_contains (exclusion->reason, "is out of quota");

  exclusion = exclusion_of (plan, "a", 5);
  g_assert_cmpint (exclusion->kind, ==, KP_EXCLUSION_INVALID);
  assert_contains (exclusion->reason, "refused by the provider: auth_invalid: bad key");

  exclusion = exclusion_of (plan, "u", 0);
  g_assert_cmpint (exclusion->kind, ==, KP_EXCLUSION_NO_KEY);
  g_assert_cmpint (exclusion->credential_id, ==, 0);
  assert_contains (exclusion->reason, "keypool keys add u");
  assert_contains (exclusion->reason, "or set U_KEY");

  g_assert_cmpstr (kp_exclusion_kind_to_string (KP_EXCLUSION_KEY_OFF), ==, "key-off");
  g_assert_cmpstr (kp_exclusion_kind_to_string (KP_EXCLUSION_COOLING), ==, "cooling");
}

static void
test_cooldown_ends_with_time (Fixture       *fixture,
                              gconstpointer  data)
{
  KpCredential *cooling;
  g_autoptr(KpPlan) before = NULL;
  g_autoptr(KpPlan) after = NULL;

  cooling = add_key (fixture, 1, "a", 1.0, "sk-cooling");
  kp_credential_set_state (cooling, KP_CREDENTIAL_COOLING, NOW + 60, NULL);

  before = plan_for (fixture, "v/m", 0, (const char * const []) { "a", NULL });
  g_assert_cmpuint (before->routes->len, ==, 0);

  /* The same key, a minute later: back without anyone touching it. */
  fixture->now = NOW + 60;
  after = plan_for (fixture, "v/m", 0, (const char * const []) { "a", NULL });
  g_assert_cmpuint (after->routes->len, ==, 1);
  g_assert_cmpint (key_at (after, 0), ==, 1);
}

static void
test_provider_off (Fixture       *fixture,
                   gconstpointer  data)
{
  g_autoptr(KpPlan) plan = NULL;
  g_autofree char *why = NULL;

  add_key (fixture, 1, "a", 1.0, "sk-a");
  g_hash_table_add (fixture->disabled, g_strdup ("a"));

  plan = plan_for (fixture, "v/m", 0, (const char * const []) { "a", NULL });
  g_assert_cmpuint (plan->routes->len, ==, 0);
  g_assert_cmpint (exclusion_of (plan, "a", 0)->kind, ==, KP_EXCLUSION_PROVIDER_OFF);
  g_assert_cmpint (exclusion_of (plan, "b", 0)->kind, ==, KP_EXCLUSION_PINNED);

  why = kp_plan_describe_empty (plan, "v/m");
  g_assert_cmpstr (why, ==, "Every provider serving “v/m” is switched off. Turn one on with "
                            "“keypool providers enable ID”.");
}

static void
test_no_key_needed (Fixture       *fixture,
                    gconstpointer  data)
{
  g_autoptr(KpPlan) plan = plan_for (fixture, "v/local", 0, NULL);

  g_assert_cmpuint (plan->routes->len, ==, 1);
  g_assert_null (route_at (plan, 0)->credential);
  g_assert_cmpfloat (route_at (plan, 0)->expected_usd, ==, 0.0);
}

static void
test_pins (Fixture       *fixture,
           gconstpointer  data)
{
  g_auto(GStrv) providers = NULL;
  g_autoptr(GPtrArray) offerings = NULL;
  KpPlanContext context = { fixture->credentials, NULL, NULL, NOW, 0 };
  KpRouteRequest request = { 10, 10, NULL };
  g_autoptr(KpPlan) plan = NULL;
  g_autofree char *why = NULL;

  add_key (fixture, 1, "a", 1.0, "sk-a");
  add_key (fixture, 2, "b", 1.0, "sk-b");

  /* A pin by canonical id narrows the providers to the pinned one… */
  offerings = kp_planner_resolve (fixture->catalog, "b:v/m", &providers);
  g_assert_nonnull (offerings);
  g_assert_cmpuint (offerings->len, ==, 3);
  g_assert_cmpstrv (providers, ((const char * const []) { "b", NULL }));

  request.providers = (const char * const *)providers;
  plan = kp_planner_plan (&context, offerings, &request);
  g_assert_cmpuint (plan->routes->len, ==, 1);
  g_assert_cmpstr (provider_at (plan, 0), ==, "b");
  g_assert_cmpint (exclusion_of (plan, "a", 0)->kind, ==, KP_EXCLUSION_PINNED);
  g_assert_cmpint (exclusion_of (plan, "u", 0)->kind, ==, KP_EXCLUSION_PINNED);
  g_clear_pointer (&offerings, g_ptr_array_unref);
  g_clear_pointer (&providers, g_strfreev);

  /* …and by the provider's own name for the model: that one offering. */
  offerings = kp_planner_resolve (fixture->catalog, "b:B-Own-Name", &providers);
  g_assert_nonnull (offerings);
  g_assert_cmpuint (offerings->len, ==, 1);
  g_assert_cmpstr (((const KpOffering *)g_ptr_array_index (offerings, 0))->upstream_id, ==,
                   "b-own-name");
  g_clear_pointer (&offerings, g_ptr_array_unref);
  g_clear_pointer (&providers, g_strfreev);

  /* A colon after something that is no provider is part of the model's name. */
  g_assert_null (kp_planner_resolve (fixture->catalog, "qwen2.5-coder:7b", &providers));
  g_assert_null (providers);
  g_assert_null (kp_planner_resolve (fixture->catalog, "b:no-such-model", &providers));
  g_assert_cmpstrv (providers, ((const char * const []) { "b", NULL }));

  /* A pin to a provider that does not serve the model leaves nothing. */
  g_clear_pointer (&plan, kp_plan_free);
  plan = plan_for (fixture, "v/m", 0, (const char * const []) { "nobody", NULL });
  g_assert_cmpuint (plan->routes->len, ==, 0);
  why = kp_plan_describe_empty (plan, "v/m");
  g_assert_cmpstr (why, ==, "None of the providers the request named serves “v/m”.");
}

static void
test_describe (Fixture       *fixture,
               gconstpointer  data)
{
  KpCredential *a, *b;
  const char * const only_ab[] = { "a", "b", NULL };

  a = add_key (fixture, 1, "a", 1.0, "sk-a");
  b = add_key (fixture, 2, "b", 1.0, "sk-b");

  /* Both refused. */
  kp_credential_set_state (a, KP_CREDENTIAL_INVALID, 0, NULL);
  kp_credential_set_state (b, KP_CREDENTIAL_INVALID, 0, NULL);
  {
    g_autoptr(KpPlan) plan = plan_for (fixture, "v/m", 0, only_ab);
    g_autofree char *why = kp_plan_describe_empty (plan, "v/m");

    g_assert_cmpstr (why, ==, "Every key that serves “v/m” was refused by its provider. Replace "
                              "them with “keypool keys add”; “keypool keys list” shows the "
                              "errors.");
  }

  /* One resting, one refused: the one that comes back by itself, and when. */
  kp_credential_set_state (a, KP_CREDENTIAL_COOLING, NOW + 90, NULL);
  {
    g_autoptr(KpPlan) plan = plan_for (fixture, "v/m", 0, only_ab);
    g_autofree char *why = kp_plan_describe_empty (plan, "v/m");
    g_autofree char *when = kp_format_time_of_day (NOW + 90);
    g_autofree char *expected =
      g_strdup_printf ("Every key that serves “v/m” is resting after errors (1 cooling down or "
                       "out of quota, some refused). The first is back at %s. “keypool route "
                       "v/m” shows each one.", when);

    g_assert_cmpstr (why, ==, expected);
  }

  /* No keys anywhere: each provider says how to add one. */
  g_ptr_array_set_size (fixture->credentials, 0);
  {
    g_autoptr(KpPlan) plan = plan_for (fixture, "v/m", 0, only_ab);
    g_autofree char *why = kp_plan_describe_empty (plan, "v/m");

    g_assert_cmpstr (why, ==, "No key for any provider serving “v/m”. a: no key (add one with "
                              "“keypool keys add a” or set A_KEY); b: no key (add one with "
                              "“keypool keys add b” or set B_KEY).");
  }
}

static void
test_offering_rests (Fixture       *fixture,
                     gconstpointer  data)
{
  KpFailure missing = { .klass = KP_FAILURE_MODEL_MISSING, .retry_after = -1 };
  g_autoptr(GPtrArray) offerings = kp_planner_resolve (fixture->catalog, "b:v/m", NULL);
  const KpOffering *offering_b = NULL;
  KpExclusion *exclusion;

  add_key (fixture, 1, "a", 1.0, "sk-a");
  add_key (fixture, 2, "b", 1.0, "sk-b");
  for (guint i = 0; i < offerings->len; i++)
    {
      const KpOffering *offering = g_ptr_array_index (offerings, i);

      if (g_str_equal (kp_provider_get_id (offering->provider), "b"))
        offering_b = offering;
    }
  g_assert_nonnull (offering_b);

  /* b said it lacks the model: not the key's fault, so no state to save. */
  g_assert_false (kp_key_health_note_failure (fixture->health, offering_b, NULL, &missing));
  {
    g_autoptr(KpPlan) plan = plan_for (fixture, "v/m", 0, NULL);

    g_assert_cmpuint (plan->routes->len, ==, 1);
    g_assert_cmpstr (provider_at (plan, 0), ==, "a");
    exclusion = exclusion_of (plan, "b", 0);
    g_assert_cmpint (exclusion->kind, ==, KP_EXCLUSION_MISSING);
    g_assert_cmpint (exclusion->until, ==, NOW + KP_KEY_HEALTH_MODEL_MISSING_S);
    assert_contains (exclusion->reason, "does not have this model");
  }

  /* An hour on, it is asked again. */
  fixture->now = NOW + KP_KEY_HEALTH_MODEL_MISSING_S;
  {
    g_autoptr(KpPlan) plan = plan_for (fixture, "v/m", 0, NULL);

    g_assert_cmpuint (plan->routes->len, ==, 2);
  }
}

/* The offering of @model that @provider_id serves. */
static const KpOffering *
offering_of (Fixture    *fixture,
             const char *model,
             const char *provider_id)
{
  GPtrArray *offerings = kp_catalog_lookup (fixture->catalog, model);

  for (guint i = 0; offerings != NULL && i < offerings->len; i++)
    {
      const KpOffering *offering = g_ptr_array_index (offerings, i);

      if (g_str_equal (kp_provider_get_id (offering->provider), provider_id))
        return offering;
    }
  g_assert_not_reached ();
  return NULL;
}

/* Anthropic's 529: every provider of the model is busy for a few seconds.
 * That is neither “switched off” nor the keys' fault.
 */
static void
test_describe_busy (Fixture       *fixture,
                    gconstpointer  data)
{
  KpFailure overloaded = { .klass = KP_FAILURE_DOWN, .retry_after = -1, .overloaded = TRUE };
  const char * const only_ab[] = { "a", "b", NULL };
  KpCredential *a = add_key (fixture, 1, "a", 1.0, "sk-a");
  KpCredential *b = add_key (fixture, 2, "b", 1.0, "sk-b");
  g_autoptr(KpPlan) plan = NULL;
  g_autofree char *why = NULL;
  g_autofree char *when = NULL;
  g_autofree char *expected = NULL;

  g_assert_false (kp_key_health_note_failure (fixture->health, offering_of (fixture, "v/m", "a"),
                                              a, &overloaded));
  fixture->now = NOW + 2;
  g_assert_false (kp_key_health_note_failure (fixture->health, offering_of (fixture, "v/m", "b"),
                                              b, &overloaded));

  /* The keys keep a clean record. */
  g_assert_cmpint (kp_credential_get_state (a, fixture->now), ==, KP_CREDENTIAL_OK);
  g_assert_cmpuint (kp_credential_get_failures (a), ==, 0);

  plan = plan_for (fixture, "v/m", 0, only_ab);
  g_assert_cmpuint (plan->routes->len, ==, 0);
  g_assert_cmpint (exclusion_of (plan, "a", 0)->kind, ==, KP_EXCLUSION_BUSY);
  g_assert_cmpint (exclusion_of (plan, "a", 0)->until, ==, NOW + KP_KEY_HEALTH_BUSY_S);
  g_assert_cmpint (exclusion_of (plan, "b", 0)->kind, ==, KP_EXCLUSION_BUSY);
  g_assert_cmpstr (kp_exclusion_kind_to_string (KP_EXCLUSION_BUSY), ==, "busy");
  assert_contains (exclusion_of (plan, "a", 0)->reason, "said it is overloaded");

  /* It names the first to come back: a, which rested first. */
  why = kp_plan_describe_empty (plan, "v/m");
  when = kp_format_time_of_day (NOW + KP_KEY_HEALTH_BUSY_S);
  expected = g_strdup_printf ("Every provider serving “v/m” said it is overloaded, so each rests "
                              "a few seconds. The first is back at %s. Try again then; “keypool "
                              "route v/m” shows each one.", when);
  g_assert_cmpstr (why, ==, expected);
  g_assert_null (strstr (why, "switched off"));

  /* Busy and cooling together: the resting message, which says both. */
  kp_credential_set_state (b, KP_CREDENTIAL_COOLING, NOW + 60, NULL);
  g_clear_pointer (&plan, kp_plan_free);
  g_clear_pointer (&why, g_free);
  fixture->now = NOW + KP_KEY_HEALTH_BUSY_S + 1;
  plan = plan_for (fixture, "v/m", 0, only_ab);
  g_assert_cmpuint (plan->routes->len, ==, 1);
  g_assert_cmpstr (provider_at (plan, 0), ==, "a");
  g_assert_cmpint (exclusion_of (plan, "b", 0)->kind, ==, KP_EXCLUSION_BUSY);

  kp_credential_set_state (a, KP_CREDENTIAL_COOLING, NOW + 60, NULL);
  g_clear_pointer (&plan, kp_plan_free);
  plan = plan_for (fixture, "v/m", 0, only_ab);
  why = kp_plan_describe_empty (plan, "v/m");
  assert_contains (why, "is resting after errors (1 cooling down or out of quota, some providers "
                        "overloaded)");
}

/* Every key switched off: that is the user's switch, not the provider's. */
static void
test_describe_keys_off (Fixture       *fixture,
                        gconstpointer  data)
{
  const char * const only_ab[] = { "a", "b", NULL };
  g_autoptr(KpPlan) plan = NULL;
  g_autofree char *why = NULL;

  kp_credential_set_options (add_key (fixture, 1, "a", 1.0, "sk-a"), 1.0, FALSE);
  kp_credential_set_options (add_key (fixture, 2, "b", 1.0, "sk-b"), 1.0, FALSE);

  plan = plan_for (fixture, "v/m", 0, only_ab);
  g_assert_cmpuint (plan->routes->len, ==, 0);
  why = kp_plan_describe_empty (plan, "v/m");
  g_assert_cmpstr (why, ==, "Every key that serves “v/m” is switched off. Turn one on in "
                            "Keypool’s window, on the Providers page.");

  /* With a provider switched off as well, that is the thing to say. */
  g_hash_table_add (fixture->disabled, g_strdup ("b"));
  g_clear_pointer (&plan, kp_plan_free);
  g_clear_pointer (&why, g_free);
  plan = plan_for (fixture, "v/m", 0, only_ab);
  why = kp_plan_describe_empty (plan, "v/m");
  assert_contains (why, "is switched off. Turn one on with “keypool providers enable ID”.");
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

#define ADD(name, func) \
  g_test_add ("/keypool/planner/" name, Fixture, NULL, fixture_setup, func, fixture_teardown)

  ADD ("order-by-cost", test_order_by_cost);
  ADD ("output-price", test_output_price);
  ADD ("health-breaks-ties", test_health_breaks_ties);
  ADD ("rotation", test_rotation);
  ADD ("key-exclusions", test_key_exclusions);
  ADD ("cooldown-ends-with-time", test_cooldown_ends_with_time);
  ADD ("provider-off", test_provider_off);
  ADD ("no-key-needed", test_no_key_needed);
  ADD ("pins", test_pins);
  ADD ("describe", test_describe);
  ADD ("describe-busy", test_describe_busy);
  ADD ("describe-keys-off", test_describe_keys_off);
  ADD ("offering-rests", test_offering_rests);

#undef ADD

  return g_test_run ();
}
