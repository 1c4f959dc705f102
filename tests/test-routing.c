/* test-routing.c: the cheapest healthy route, and failover that never lies
 *
 * Two mock providers on their own loopback ports, with different prices and
 * keys whose words make the mock fail in each documented way.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include "config.h"

#include <string.h>

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <sqlite3.h>

#include "kp-gateway-private.h"
#include "kp-mock-upstream.h"
#include "kp-test-util.h"

#define TOKEN "kp-routing-token-0123456789"

typedef struct
{
  KpMockUpstream *a;
  KpMockUpstream *b;
  KpTestRig       rig;
  gint64          now;      /* unix s, for a gateway on the test's clock */
} Fixture;

static gint64
fixture_clock (gpointer data)
{
  Fixture *fixture = data;

  return fixture->now;
}

/* Cooldowns then pass when the test says so, not by waiting for them. */
static void
use_test_clock (Fixture *fixture)
{
  fixture->now = g_get_real_time () / G_USEC_PER_SEC;
  kp_key_health_set_clock (kp_gateway_get_key_health (fixture->rig.gateway), fixture_clock,
                           fixture);
}


static void
fixture_setup (Fixture       *fixture,
               gconstpointer  data)
{
  g_autoptr(GError) error = NULL;

  fixture->a = kp_mock_upstream_new (&error);
  g_assert_no_error (error);
  fixture->b = kp_mock_upstream_new (&error);
  g_assert_no_error (error);
  kp_test_rig_init (&fixture->rig, "routing");
}

static void
fixture_teardown (Fixture       *fixture,
                  gconstpointer  data)
{
  kp_test_rig_clear (&fixture->rig);
  g_clear_pointer (&fixture->a, kp_mock_upstream_free);
  g_clear_pointer (&fixture->b, kp_mock_upstream_free);
}

/* A provider file: @models is the JSON of its "models" list; @keys are its
 * keys, one environment variable each.
 */
static void
provider (Fixture    *fixture,
          const char *id,
          const char *base_url,
          const char *models,
          ...)
{
  g_autoptr(GString) env = g_string_new (NULL);
  g_autofree char *json = NULL;
  const char *key;
  va_list args;
  guint n = 0;

  va_start (args, models);
  while ((key = va_arg (args, const char *)) != NULL)
    {
      g_autofree char *name = g_strdup_printf ("KP_ROUTING_%s_%u", id, n++);

      for (char *p = name; *p; p++)
        *p = g_ascii_toupper (*p) == '-' ? '_' : g_ascii_toupper (*p);
      kp_test_place_setenv (&fixture->rig.place, name, key);
      g_string_append_printf (env, "%s\"%s\"", env->len ? "," : "", name);
    }
  va_end (args);

  json = g_strdup_printf ("{\"id\":\"%s\",\"name\":\"Provider %s\",\"base_url\":\"%s\",\"env\":[%s],"
                          "\"models\":%s}", id, id, base_url, env->str, models);
  kp_test_place_write_provider (&fixture->rig.place, id, json);
}

static void
start_gateway (Fixture *fixture,
               guint    first_byte_ms)
{
  KpGateway *gateway = kp_test_rig_new_gateway (&fixture->rig, TOKEN);

  kp_gateway_set_timeouts (gateway, 2000, first_byte_ms, 2000);
  kp_test_rig_start (&fixture->rig);
}

static void
chat (Fixture        *fixture,
      const char     *body,
      KpTestResponse *response)
{
  g_autofree char *url = g_strconcat (fixture->rig.base, "/v1/chat/completions", NULL);

  kp_test_request (fixture->rig.client, "POST", url, body, response,
                   "Authorization", "Bearer " TOKEN, NULL);
}

#define CHAT(model, extra) \
  "{\"model\":\"" model "\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]" extra "}"

static const char *
provider_of (KpTestResponse *response)
{
  return soup_message_headers_get_one (response->headers, "x-keypool-provider");
}

/* One model on two providers; a is cheaper. */
#define SHARED(upstream, in, out) \
  "[{\"id\":\"shared/model\",\"upstream_id\":\"" upstream "\",\"input\":" in ",\"output\":" out "}]"

/* Tests ----------------------------------------------------------------- */

static void
test_cheapest_first (Fixture       *fixture,
                     gconstpointer  data)
{
  g_auto(KpTestResponse) response = { 0 };
  const char *route;

  provider (fixture, "a", kp_mock_upstream_get_url (fixture->a), SHARED ("mock-chat", "1", "1"),
            "key-a-good-0001", NULL);
  provider (fixture, "b", kp_mock_upstream_get_url (fixture->b), SHARED ("mock-chat", "2", "2"),
            "key-b-good-0001", NULL);
  start_gateway (fixture, 5000);

  chat (fixture, CHAT ("shared/model", ""), &response);
  g_assert_cmpuint (response.status, ==, 200);
  g_assert_cmpstr (provider_of (&response), ==, "a");
  route = soup_message_headers_get_one (response.headers, "x-keypool-route");
  g_assert_nonnull (strstr (route, "rank=1/2"));
  g_assert_nonnull (strstr (route, "provider=a"));
  g_assert_nonnull (strstr (route, "attempt=1"));
  g_assert_cmpuint (kp_mock_upstream_get_stats (fixture->b)->requests, ==, 0);
}

static void
test_max_tokens_changes_winner (Fixture       *fixture,
                                gconstpointer  data)
{
  /* a: cheap input, dear output; b: the other way round. */
  provider (fixture, "a", kp_mock_upstream_get_url (fixture->a), SHARED ("mock-chat", "1", "10"),
            "key-a-good-0002", NULL);
  provider (fixture, "b", kp_mock_upstream_get_url (fixture->b), SHARED ("mock-chat", "3", "2"),
            "key-b-good-0002", NULL);
  start_gateway (fixture, 5000);

  {
    g_auto(KpTestResponse) response = { 0 };

    chat (fixture, CHAT ("shared/model", ",\"max_tokens\":1"), &response);
    g_assert_cmpstr (provider_of (&response), ==, "a");
  }
  {
    g_auto(KpTestResponse) response = { 0 };

    chat (fixture, CHAT ("shared/model", ",\"max_completion_tokens\":20000"), &response);
    g_assert_cmpstr (provider_of (&response), ==, "b");
  }
}

static void
test_pins (Fixture       *fixture,
           gconstpointer  data)
{
  KpMockStats *b = kp_mock_upstream_get_stats (fixture->b);

  provider (fixture, "a", kp_mock_upstream_get_url (fixture->a), SHARED ("mock-chat", "1", "1"),
            "key-a-good-0003", NULL);
  provider (fixture, "b", kp_mock_upstream_get_url (fixture->b),
            "[{\"id\":\"shared/model\",\"upstream_id\":\"mock-chat\",\"input\":2,\"output\":2,"
            "\"aliases\":[\"Shared-Latest\"]}]", "key-b-good-0003", NULL);
  start_gateway (fixture, 5000);

  {
    g_auto(KpTestResponse) response = { 0 };

    /* provider:model, with the provider's own model name. */
    chat (fixture, CHAT ("b:mock-chat", ""), &response);
    g_assert_cmpuint (response.status, ==, 200);
    g_assert_cmpstr (provider_of (&response), ==, "b");
  }
  {
    g_auto(KpTestResponse) response = { 0 };

    /* A "provider" field, taken out before the request goes upstream. */
    chat (fixture, CHAT ("shared/model", ",\"provider\":[\"b\"]"), &response);
    g_assert_cmpstr (provider_of (&response), ==, "b");
    g_assert_null (strstr (b->last_body, "\"provider\""));
    g_assert_nonnull (strstr (b->last_body, "\"model\":\"mock-chat\""));
  }
  {
    g_auto(KpTestResponse) response = { 0 };

    /* An alias names the model; the cheapest provider still wins. */
    chat (fixture, CHAT ("shared-latest", ""), &response);
    g_assert_cmpstr (provider_of (&response), ==, "a");
  }
  {
    g_auto(KpTestResponse) response = { 0 };

    chat (fixture, CHAT ("shared/model", ",\"provider\":\"nobody\""), &response);
    g_assert_cmpuint (response.status, ==, 503);
    g_assert_nonnull (strstr (response.body, "None of the providers the request named"));
  }
  {
    g_auto(KpTestResponse) response = { 0 };

    /* Close names are suggested. */
    chat (fixture, CHAT ("shared/modle", ""), &response);
    g_assert_cmpuint (response.status, ==, 404);
    g_assert_nonnull (strstr (response.body, "Did you mean “shared/model”?"));
  }
}

static void
test_rate_limited (Fixture       *fixture,
                   gconstpointer  data)
{
  provider (fixture, "a", kp_mock_upstream_get_url (fixture->a), SHARED ("mock-chat", "1", "1"),
            "key-a-rate-0004", NULL);
  provider (fixture, "b", kp_mock_upstream_get_url (fixture->b), SHARED ("mock-chat", "2", "2"),
            "key-b-good-0004", NULL);
  start_gateway (fixture, 5000);
  use_test_clock (fixture);

  {
    g_auto(KpTestResponse) response = { 0 };

    /* 429 from a: on to b, and the client sees b's whole answer. */
    chat (fixture, CHAT ("shared/model", ""), &response);
    g_assert_cmpuint (response.status, ==, 200);
    g_assert_cmpstr (provider_of (&response), ==, "b");
    g_assert_nonnull (strstr (response.body, "tok0 tok1 tok2 tok3 tok4"));
    g_assert_nonnull (strstr (soup_message_headers_get_one (response.headers, "x-keypool-route"),
                              "attempt=2"));
  }
  g_assert_cmpint (kp_test_credential_state (fixture->rig.gateway, "key-a-rate-0004"), ==, KP_CREDENTIAL_COOLING);
  g_assert_cmpint (kp_credential_get_state_until (kp_test_credential (fixture->rig.gateway, "key-a-rate-0004")), ==,
                   fixture->now + 2);

  {
    g_auto(KpTestResponse) response = { 0 };

    /* Skipped while it cools down (Retry-After: 2)… */
    chat (fixture, CHAT ("shared/model", ""), &response);
    g_assert_cmpstr (provider_of (&response), ==, "b");
    g_assert_cmpuint (kp_mock_upstream_count_key (fixture->a, "key-a-rate-0004"), ==, 1);
  }

  fixture->now += 2;
  {
    g_auto(KpTestResponse) response = { 0 };

    /* …and tried again once its two seconds have passed. */
    chat (fixture, CHAT ("shared/model", ""), &response);
    g_assert_cmpuint (kp_mock_upstream_count_key (fixture->a, "key-a-rate-0004"), ==, 2);
    g_assert_cmpstr (provider_of (&response), ==, "b");
  }
}

static void
test_key_states (Fixture       *fixture,
                 gconstpointer  data)
{
  g_autoptr(GPtrArray) rows = NULL;
  g_autofree char *data_dir = NULL;

  /* Four keys of a, each failing its own way, then b. */
  provider (fixture, "a", kp_mock_upstream_get_url (fixture->a), SHARED ("mock-chat", "1", "1"),
            "key-a-nocredit-05", "key-a-quota-0005", "key-a-invalid-05", "key-a-down-00005", NULL);
  provider (fixture, "b", kp_mock_upstream_get_url (fixture->b), SHARED ("mock-chat", "2", "2"),
            "key-b-good-0005", NULL);
  start_gateway (fixture, 5000);

  {
    g_auto(KpTestResponse) response = { 0 };

    chat (fixture, CHAT ("shared/model", ""), &response);
    g_assert_cmpuint (response.status, ==, 200);
    g_assert_cmpstr (provider_of (&response), ==, "b");
    g_assert_nonnull (strstr (soup_message_headers_get_one (response.headers, "x-keypool-route"),
                              "attempt=5"));
  }

  /* 402 and OpenAI's 429 insufficient_quota: exhausted; 401: invalid until
   * the key changes; 500: a short cooldown.
   */
  g_assert_cmpint (kp_test_credential_state (fixture->rig.gateway, "key-a-nocredit-05"), ==, KP_CREDENTIAL_EXHAUSTED);
  g_assert_cmpint (kp_test_credential_state (fixture->rig.gateway, "key-a-quota-0005"), ==, KP_CREDENTIAL_EXHAUSTED);
  g_assert_cmpint (kp_test_credential_state (fixture->rig.gateway, "key-a-invalid-05"), ==, KP_CREDENTIAL_INVALID);
  g_assert_cmpint (kp_credential_get_state_until (kp_test_credential (fixture->rig.gateway, "key-a-invalid-05")), ==, 0);
  g_assert_cmpint (kp_test_credential_state (fixture->rig.gateway, "key-a-down-00005"), ==, KP_CREDENTIAL_COOLING);
  g_assert_cmpint (kp_credential_get_state_until (kp_test_credential (fixture->rig.gateway, "key-a-down-00005")), <=,
                   g_get_real_time () / G_USEC_PER_SEC + 5);
  g_assert_nonnull (strstr (kp_credential_get_last_error (kp_test_credential (fixture->rig.gateway, "key-a-quota-0005")),
                            "quota_exhausted: You exceeded your current quota"));

  /* Every attempt is in the ledger with the request. */
  rows = kp_ledger_recent_requests (kp_gateway_get_ledger (fixture->rig.gateway), 1, NULL);
  g_assert_cmpuint (((KpRequestRow *)g_ptr_array_index (rows, 0))->attempts, ==, 5);

  /* The states survive a restart. */
  kp_test_rig_stop (&fixture->rig);
  start_gateway (fixture, 5000);
  g_assert_cmpint (kp_test_credential_state (fixture->rig.gateway, "key-a-nocredit-05"), ==, KP_CREDENTIAL_EXHAUSTED);
  g_assert_cmpint (kp_test_credential_state (fixture->rig.gateway, "key-a-invalid-05"), ==, KP_CREDENTIAL_INVALID);
  {
    g_auto(KpTestResponse) response = { 0 };

    chat (fixture, CHAT ("shared/model", ""), &response);
    g_assert_cmpstr (provider_of (&response), ==, "b");
    g_assert_cmpuint (kp_mock_upstream_count_key (fixture->a, "key-a-invalid-05"), ==, 1);
  }

  /* Reset: tried again at once. */
  g_assert_true (kp_gateway_reset_key (fixture->rig.gateway,
                                       kp_credential_get_id (kp_test_credential (fixture->rig.gateway, "key-a-invalid-05")),
                                       NULL));
  g_assert_cmpint (kp_test_credential_state (fixture->rig.gateway, "key-a-invalid-05"), ==, KP_CREDENTIAL_OK);
  data_dir = g_build_filename (fixture->rig.place.root, "data", NULL);
  g_assert_true (g_file_test (data_dir, G_FILE_TEST_IS_DIR));
}

static gboolean
ledger_has_problem (gpointer data)
{
  return kp_ledger_get_problem (data) != NULL;
}

typedef struct
{
  sqlite3 *db;
  gint64   id;
  gint64   until;
} SavedState;

/* Whether the database (not the gateway's memory) has the key's state. */
static gboolean
state_is_saved (gpointer data)
{
  SavedState *saved = data;
  sqlite3_stmt *stmt = NULL;
  gboolean found;

  g_assert_cmpint (sqlite3_prepare_v2 (saved->db, "SELECT state, state_until FROM credentials "
                                       "WHERE id = ?", -1, &stmt, NULL), ==, SQLITE_OK);
  sqlite3_bind_int64 (stmt, 1, saved->id);
  found = sqlite3_step (stmt) == SQLITE_ROW &&
          g_strcmp0 ((const char *)sqlite3_column_text (stmt, 0), "exhausted") == 0 &&
          sqlite3_column_int64 (stmt, 1) == saved->until;
  sqlite3_finalize (stmt);
  return found;
}

/* Another program holds the database's write lock for seconds: requests
 * that fail over (and so change a key's state) are answered without
 * waiting for it, and the state is saved once the lock is gone.
 */
static void
test_state_saved_while_locked (Fixture       *fixture,
                               gconstpointer  data)
{
  KpLedger *ledger;
  KpCredential *credential;
  SavedState saved = { 0 };
  gint64 started;

  provider (fixture, "a", kp_mock_upstream_get_url (fixture->a), SHARED ("mock-chat", "1", "1"),
            "key-a-quota-0012", NULL);
  provider (fixture, "b", kp_mock_upstream_get_url (fixture->b), SHARED ("mock-chat", "2", "2"),
            "key-b-good-0012", NULL);
  start_gateway (fixture, 5000);
  use_test_clock (fixture);
  ledger = kp_gateway_get_ledger (fixture->rig.gateway);

  g_assert_cmpint (sqlite3_open_v2 (kp_ledger_get_path (ledger), &saved.db, SQLITE_OPEN_READWRITE,
                                    NULL), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_exec (saved.db, "BEGIN IMMEDIATE", NULL, NULL, NULL), ==, SQLITE_OK);
  g_test_expect_message ("keypool", G_LOG_LEVEL_WARNING, "*not being recorded*locked*");

  /* Each request fails on a's key first and is served by b; the key's
   * exhaustion has passed (by the test's clock) before the next one. Each
   * waited two seconds (the busy timeout) when the state was written on
   * the main loop, and as long for its row before its stream could end,
   * and the state was lost (see below).
   */
  started = g_get_monotonic_time ();
  for (guint i = 0; i < 5; i++)
    {
      g_auto(KpTestResponse) response = { 0 };

      chat (fixture, CHAT ("shared/model", ",\"stream\":true"), &response);
      g_assert_cmpuint (response.status, ==, 200);
      g_assert_cmpstr (provider_of (&response), ==, "b");
      g_assert_cmpint (kp_test_credential_state (fixture->rig.gateway, "key-a-quota-0012"), ==,
                       KP_CREDENTIAL_EXHAUSTED);
      fixture->now += KP_KEY_HEALTH_QUOTA_DEFAULT_S + 1;
    }
  g_assert_cmpuint (kp_mock_upstream_count_key (fixture->a, "key-a-quota-0012"), ==, 5);
  g_test_message ("5 failing-over requests with the database locked: %" G_GINT64_FORMAT " ms",
                  (g_get_monotonic_time () - started) / 1000);

  /* The writer thread waited for the lock and says what is wrong. */
  g_assert_true (kp_test_spin_until (ledger_has_problem, ledger, 20000));
  g_test_assert_expected_messages ();

  credential = kp_test_credential (fixture->rig.gateway, "key-a-quota-0012");
  saved.id = kp_credential_get_id (credential);
  saved.until = kp_credential_get_state_until (credential);
  g_assert_false (state_is_saved (&saved));
  g_assert_cmpint (sqlite3_exec (saved.db, "ROLLBACK", NULL, NULL, NULL), ==, SQLITE_OK);
  g_assert_true (kp_test_spin_until (state_is_saved, &saved, 20000));
  sqlite3_close (saved.db);

  /* It survives a restart. */
  kp_test_rig_stop (&fixture->rig);
  start_gateway (fixture, 5000);
  credential = kp_test_credential (fixture->rig.gateway, "key-a-quota-0012");
  g_assert_cmpint (kp_credential_get_state_until (credential), ==, saved.until);
  g_assert_cmpint (kp_test_credential_state (fixture->rig.gateway, "key-a-quota-0012"), ==,
                   KP_CREDENTIAL_EXHAUSTED);
}

typedef struct
{
  guint  count;
  gint64 last_us;   /* monotonic */
  gint64 min_gap_us; /* the shortest time between two emissions */
} Emissions;

static void
on_changed (KpGateway *gateway,
            Emissions *emissions)
{
  gint64 now_us = g_get_monotonic_time ();

  if (emissions->count > 0 &&
      (emissions->min_gap_us == 0 || now_us - emissions->last_us < emissions->min_gap_us))
    emissions->min_gap_us = now_us - emissions->last_us;
  emissions->count++;
  emissions->last_us = now_us;
}

typedef struct
{
  Emissions *emissions;
  gint64     after_us;
} Told;

static gboolean
told_after (gpointer data)
{
  Told *told = data;

  return told->emissions->last_us > told->after_us;
}

/* A key that fails on every request changes its state every time: the
 * faces hear of it a few times, not 200, and the model list (which a key's
 * state does not change) is not built again.
 */
static void
test_failures_coalesced (Fixture       *fixture,
                         gconstpointer  data)
{
  Emissions emissions = { 0 };
  Told told = { &emissions, 0 };
  guint builds;
  gint64 started;
  gint64 elapsed_ms;

  provider (fixture, "a", kp_mock_upstream_get_url (fixture->a), SHARED ("mock-chat", "1", "1"),
            "key-a-quota-0013", NULL);
  provider (fixture, "b", kp_mock_upstream_get_url (fixture->b), SHARED ("mock-chat", "2", "2"),
            "key-b-good-0013", NULL);
  start_gateway (fixture, 5000);
  use_test_clock (fixture);
  g_signal_connect (fixture->rig.gateway, "changed", G_CALLBACK (on_changed), &emissions);
  builds = kp_gateway_get_models_builds (fixture->rig.gateway);

  started = g_get_monotonic_time ();
  for (guint i = 0; i < 200; i++)
    {
      g_auto(KpTestResponse) response = { 0 };

      told.after_us = g_get_monotonic_time ();
      chat (fixture, CHAT ("shared/model", ""), &response);
      g_assert_cmpstr (provider_of (&response), ==, "b");
      fixture->now += KP_KEY_HEALTH_QUOTA_DEFAULT_S + 1;
    }
  elapsed_ms = (g_get_monotonic_time () - started) / 1000;
  g_assert_cmpuint (kp_mock_upstream_count_key (fixture->a, "key-a-quota-0013"), ==, 200);

  /* The last change is told, after the last failure. */
  g_assert_true (kp_test_spin_until (told_after, &told, 5000));
  g_test_message ("200 failures in %" G_GINT64_FORMAT " ms: %u emissions of ::changed, "
                  "%u builds of the model list", elapsed_ms, emissions.count,
                  kp_gateway_get_models_builds (fixture->rig.gateway) - builds);
  /* At most one per 200 ms, and one more at the end: told apart by at
   * least the interval (less a little for the timer's rounding), however
   * long the machine takes for the 200 requests (under valgrind, each may
   * take longer than the interval: then each is told).
   */
  g_assert_cmpuint (emissions.count, <=, elapsed_ms / 200 + 2);
  if (elapsed_ms < 200 * 190)
    g_assert_cmpuint (emissions.count, <, 200);
  if (emissions.count > 1)
    g_assert_cmpint (emissions.min_gap_us, >=, 190 * 1000);
  g_assert_cmpuint (kp_gateway_get_models_builds (fixture->rig.gateway), ==, builds);
}

static void
test_model_missing_and_down (Fixture       *fixture,
                             gconstpointer  data)
{
  /* c is cheapest but nothing listens on its port. */
  provider (fixture, "c", "http://127.0.0.1:1/v1", SHARED ("mock-chat", "0.1", "0.1"),
            "key-c-good-0006", NULL);
  provider (fixture, "a", kp_mock_upstream_get_url (fixture->a), SHARED ("mock-chat", "1", "1"),
            "key-a-nomodel-06", NULL);
  provider (fixture, "b", kp_mock_upstream_get_url (fixture->b), SHARED ("mock-chat", "2", "2"),
            "key-b-good-0006", NULL);
  start_gateway (fixture, 5000);

  {
    g_auto(KpTestResponse) response = { 0 };

    chat (fixture, CHAT ("shared/model", ""), &response);
    g_assert_cmpuint (response.status, ==, 200);
    g_assert_cmpstr (provider_of (&response), ==, "b");
  }
  g_assert_cmpint (kp_test_credential_state (fixture->rig.gateway, "key-c-good-0006"), ==, KP_CREDENTIAL_COOLING);
  /* A model a provider says it lacks is not its key's fault. */
  g_assert_cmpint (kp_test_credential_state (fixture->rig.gateway, "key-a-nomodel-06"), ==, KP_CREDENTIAL_OK);

  {
    g_auto(KpTestResponse) response = { 0 };

    /* a's offering is suppressed now: its key is not even tried. */
    chat (fixture, CHAT ("shared/model", ""), &response);
    g_assert_cmpstr (provider_of (&response), ==, "b");
    g_assert_cmpuint (kp_mock_upstream_count_key (fixture->a, "key-a-nomodel-06"), ==, 1);
  }
}

static void
test_client_error_is_returned (Fixture       *fixture,
                               gconstpointer  data)
{
  g_auto(KpTestResponse) response = { 0 };

  provider (fixture, "a", kp_mock_upstream_get_url (fixture->a), SHARED ("mock-400", "1", "1"),
            "key-a-good-0007", "key-a-good-0007b", NULL);
  provider (fixture, "b", kp_mock_upstream_get_url (fixture->b), SHARED ("mock-400", "2", "2"),
            "key-b-good-0007", NULL);
  start_gateway (fixture, 5000);

  chat (fixture, CHAT ("shared/model", ""), &response);
  g_assert_cmpuint (response.status, ==, 400);
  g_assert_nonnull (strstr (response.body, "\"code\":\"context_length_exceeded\""));

  /* Returned at once: no other key tried, none blamed. */
  g_assert_cmpuint (kp_mock_upstream_get_stats (fixture->a)->requests, ==, 1);
  g_assert_cmpuint (kp_mock_upstream_get_stats (fixture->b)->requests, ==, 0);
  g_assert_cmpint (kp_test_credential_state (fixture->rig.gateway, "key-a-good-0007"), ==, KP_CREDENTIAL_OK);
  g_assert_cmpint (kp_test_credential_state (fixture->rig.gateway, "key-a-good-0007b"), ==, KP_CREDENTIAL_OK);
}

static gboolean
mock_cancelled (gpointer data)
{
  return kp_mock_upstream_get_stats (data)->cancelled > 0;
}

static void
test_first_byte_timeout (Fixture       *fixture,
                         gconstpointer  data)
{
  g_auto(KpTestResponse) response = { 0 };
  gint64 start;

  provider (fixture, "a", kp_mock_upstream_get_url (fixture->a), SHARED ("mock-chat", "1", "1"),
            "key-a-slow-0008", NULL);
  provider (fixture, "b", kp_mock_upstream_get_url (fixture->b), SHARED ("mock-chat", "2", "2"),
            "key-b-good-0008", NULL);
  start_gateway (fixture, 500);

  start = g_get_monotonic_time ();
  chat (fixture, CHAT ("shared/model", ",\"stream\":true"), &response);
  g_test_message ("answered by b after %.0f ms (first-byte timeout 500 ms)",
                  (g_get_monotonic_time () - start) / 1000.0);
  g_assert_cmpuint (response.status, ==, 200);
  g_assert_cmpstr (provider_of (&response), ==, "b");
  g_assert_true (g_str_has_suffix (response.body, "data: [DONE]\n\n"));
  g_assert_cmpint (kp_test_credential_state (fixture->rig.gateway, "key-a-slow-0008"), ==, KP_CREDENTIAL_COOLING);

  /* The abandoned request upstream was hung up on, once. */
  g_assert_true (kp_test_spin_until (mock_cancelled, fixture->a, 3000));
  g_assert_cmpuint (kp_mock_upstream_get_stats (fixture->a)->cancelled, ==, 1);
}

static void
test_error_event_fails_over (Fixture       *fixture,
                             gconstpointer  data)
{
  g_auto(KpTestResponse) response = { 0 };

  provider (fixture, "a", kp_mock_upstream_get_url (fixture->a),
            SHARED ("mock-instream-error", "1", "1"), "key-a-good-0009", NULL);
  provider (fixture, "b", kp_mock_upstream_get_url (fixture->b), SHARED ("mock-chat", "2", "2"),
            "key-b-good-0009", NULL);
  start_gateway (fixture, 5000);

  /* An error event before any content: the route failed, nothing was sent. */
  chat (fixture, CHAT ("shared/model", ",\"stream\":true"), &response);
  g_assert_cmpuint (response.status, ==, 200);
  g_assert_cmpstr (provider_of (&response), ==, "b");
  g_assert_null (strstr (response.body, "overloaded mid-stream"));
  g_assert_nonnull (strstr (response.body, "tok4"));
}

static void
test_all_routes_fail (Fixture       *fixture,
                      gconstpointer  data)
{
  provider (fixture, "a", kp_mock_upstream_get_url (fixture->a), SHARED ("mock-chat", "1", "1"),
            "key-a-rate-0010", NULL);
  provider (fixture, "b", kp_mock_upstream_get_url (fixture->b), SHARED ("mock-chat", "2", "2"),
            "key-b-down-0010", NULL);
  start_gateway (fixture, 5000);

  {
    g_auto(KpTestResponse) response = { 0 };

    /* The most telling error: the rate limit, not the 500. */
    chat (fixture, CHAT ("shared/model", ""), &response);
    g_assert_cmpuint (response.status, ==, 429);
    g_assert_nonnull (strstr (response.body, "Provider a: Rate limit reached for requests"));
    g_assert_nonnull (strstr (response.body, "2 routes tried: a 429 rate_limited, b 500 upstream_down"));
    g_assert_nonnull (strstr (response.body, "\"code\":\"rate_limit_exceeded\""));
    g_assert_cmpstr (soup_message_headers_get_one (response.headers, "Retry-After"), ==, "2");
  }
  {
    g_auto(KpTestResponse) response = { 0 };

    /* Now no route is usable: say when the first is back. */
    chat (fixture, CHAT ("shared/model", ""), &response);
    g_assert_cmpuint (response.status, ==, 503);
    g_assert_nonnull (strstr (response.body, "\"code\":\"no_route\""));
    g_assert_nonnull (strstr (response.body, "resting after errors"));
    g_assert_nonnull (strstr (response.body, "The first is back at "));
  }
}

static void
test_explain (Fixture       *fixture,
              gconstpointer  data)
{
  g_autoptr(GSubprocessLauncher) launcher = NULL;
  g_autoptr(GSubprocess) process = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *out = NULL;

  provider (fixture, "a", kp_mock_upstream_get_url (fixture->a), SHARED ("mock-chat", "1", "10"),
            "key-a-good-0011", NULL);
  provider (fixture, "b", kp_mock_upstream_get_url (fixture->b), SHARED ("mock-chat", "3", "2"),
            "key-b-good-0011", NULL);
  provider (fixture, "c", kp_mock_upstream_get_url (fixture->b), SHARED ("mock-chat", "0.1", "0.1"),
            NULL);

  launcher = kp_test_place_launcher (&fixture->rig.place, G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                                                          G_SUBPROCESS_FLAGS_STDERR_MERGE);
  g_subprocess_launcher_setenv (launcher, "KEYPOOL_NO_KEYRING", "1", TRUE);
  g_subprocess_launcher_unsetenv (launcher, "DBUS_SESSION_BUS_ADDRESS");
  process = g_subprocess_launcher_spawn (launcher, &error, g_getenv ("KEYPOOL_TEST_BINARY"),
                                         "route", "shared/model", "--prompt-tokens", "100",
                                         "--max-tokens", "10000", NULL);
  g_assert_no_error (error);
  g_subprocess_communicate_utf8 (process, NULL, NULL, &out, NULL, &error);
  g_assert_no_error (error);
  g_test_message ("%s", out);
  g_assert_cmpint (g_subprocess_get_exit_status (process), ==, 0);

  /* 100 × $3 + 10000 × $2 per million for b; 100 × $1 + 10000 × $10 for a. */
  g_assert_nonnull (strstr (out, "with 100 prompt and 10000 output tokens"));
  g_assert_nonnull (strstr (out, "1. b "));
  g_assert_nonnull (strstr (out, "$0.020300"));
  g_assert_nonnull (strstr (out, "2. a "));
  g_assert_nonnull (strstr (out, "$0.100100"));
  g_assert_nonnull (strstr (out, "Not used now:"));
  g_assert_nonnull (strstr (out, "- c: no key (add one with “keypool keys add c”"));
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

#define ADD(path, func) \
  g_test_add ("/keypool/routing/" path, Fixture, NULL, fixture_setup, func, fixture_teardown)

  ADD ("cheapest-first", test_cheapest_first);
  ADD ("max-tokens-changes-winner", test_max_tokens_changes_winner);
  ADD ("pins-aliases-suggestions", test_pins);
  ADD ("rate-limited", test_rate_limited);
  ADD ("key-states", test_key_states);
  ADD ("key-states/saved-while-locked", test_state_saved_while_locked);
  ADD ("key-states/failures-coalesced", test_failures_coalesced);
  ADD ("model-missing-and-down", test_model_missing_and_down);
  ADD ("client-error-is-returned", test_client_error_is_returned);
  ADD ("first-byte-timeout", test_first_byte_timeout);
  ADD ("error-event-fails-over", test_error_event_fails_over);
  ADD ("all-routes-fail", test_all_routes_fail);
  ADD ("explain", test_explain);

#undef ADD

  return g_test_run ();
}
