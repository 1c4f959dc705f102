/* test-refresh.c: a catalog that keeps itself current
 *
 * The real gateway against a mock catalog server (model lists, OpenRouter
 * credits, DeepSeek balances) and a mock chat provider, each on its own
 * loopback port.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include "config.h"

#include <string.h>

#include <glib/gstdio.h>

#include "kp-gateway.h"
#include "kp-mock-catalog.h"
#include "kp-mock-upstream.h"
#include "kp-test-util.h"

#define TOKEN "kp-refresh-token-0123456789"

typedef struct
{
  KpMockUpstream *chat;
  KpMockCatalog  *catalog;
  KpTestRig       rig;
  guint           finished; /* KpRefresh::finished emissions */
} Fixture;

static void
fixture_setup (Fixture       *fixture,
               gconstpointer  data)
{
  g_autoptr(GError) error = NULL;

  fixture->chat = kp_mock_upstream_new (&error);
  g_assert_no_error (error);
  fixture->catalog = kp_mock_catalog_new (&error);
  g_assert_no_error (error);
  kp_test_rig_init (&fixture->rig, "refresh");
}

static void
fixture_teardown (Fixture       *fixture,
                  gconstpointer  data)
{
  kp_test_rig_clear (&fixture->rig);
  g_clear_pointer (&fixture->chat, kp_mock_upstream_free);
  g_clear_pointer (&fixture->catalog, kp_mock_catalog_free);
}

/* A provider file whose chat goes to the chat mock and whose model list and
 * balance (given as paths) come from the catalog mock. @key, if any, is in
 * the environment variable KP_REFRESH_<ID>.
 */
static void
provider (Fixture    *fixture,
          const char *id,
          const char *prices,
          const char *models_path,
          const char *balance_path,
          const char *balance_format,
          const char *key,
          const char *models)
{
  g_autoptr(GString) json = g_string_new (NULL);
  g_autofree char *variable = g_ascii_strup (id, -1);
  g_autofree char *env = g_strconcat ("KP_REFRESH_", variable, NULL);
  const char *url = kp_mock_catalog_get_url (fixture->catalog);

  g_string_append_printf (json, "{\"id\":\"%s\",\"base_url\":\"%s/v1\",\"env\":[\"%s\"]",
                          id, kp_mock_upstream_get_url (fixture->chat), env);
  if (key == NULL)
    g_string_append (json, ",\"requires_key\":false,\"auth\":\"none\"");
  if (prices != NULL)
    g_string_append_printf (json, ",\"prices\":\"%s\"", prices);
  /* Like OpenRouter's, its model list is public. */
  if (g_strcmp0 (prices, "openrouter") == 0)
    g_string_append (json, ",\"models_need_key\":false");
  if (models_path != NULL)
    g_string_append_printf (json, ",\"models_endpoint\":\"%s%s\"", url, models_path);
  if (balance_path != NULL)
    g_string_append_printf (json, ",\"balance\":{\"endpoint\":\"%s%s\",\"format\":\"%s\"}",
                            url, balance_path, balance_format);
  g_string_append_printf (json, ",\"models\":%s}", models);
  kp_test_place_write_provider (&fixture->rig.place, id, json->str);

  if (key != NULL)
    kp_test_place_setenv (&fixture->rig.place, env, key);
}

static void
on_finished (KpRefresh *refresh,
             Fixture   *fixture)
{
  fixture->finished++;
}

static void
start_gateway (Fixture *fixture)
{
  kp_test_rig_serve (&fixture->rig, TOKEN);
  fixture->finished = 0;
  g_signal_connect (kp_gateway_get_refresh (fixture->rig.gateway), "finished",
                    G_CALLBACK (on_finished), fixture);
}

/* Refreshes @provider_id (or everything) and waits for the results. */
static GPtrArray *
run_refresh (Fixture    *fixture,
             const char *provider_id)
{
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  KpRefresh *refresh = kp_gateway_get_refresh (fixture->rig.gateway);
  GPtrArray *results;

  kp_refresh_run_async (refresh, provider_id, NULL, kp_test_store_result, &result);
  g_assert_true (kp_test_spin_until (kp_test_result_ready, &result, 15000));
  results = kp_refresh_run_finish (refresh, result, &error);
  g_assert_no_error (error);
  g_assert_nonnull (results);
  return results;
}

static const KpRefreshResult *
find_result (GPtrArray  *results,
             const char *provider_id)
{
  for (guint i = 0; i < results->len; i++)
    {
      const KpRefreshResult *result = g_ptr_array_index (results, i);

      if (g_str_equal (result->provider_id, provider_id))
        return result;
    }
  return NULL;
}

static const KpOffering *
find_offering (Fixture    *fixture,
               const char *provider_id,
               const char *model_id)
{
  KpProvider *provider = kp_catalog_get_provider (kp_gateway_get_catalog (fixture->rig.gateway),
                                                  provider_id);

  g_assert_nonnull (provider);
  for (guint i = 0; i < kp_provider_get_n_offerings (provider); i++)
    {
      const KpOffering *offering = kp_provider_get_offering (provider, i);

      if (g_str_equal (offering->model_id, model_id))
        return offering;
    }
  return NULL;
}

/* A chat request for @model; returns the HTTP status. */
static guint
chat (Fixture    *fixture,
      const char *model,
      char      **provider)
{
  g_autofree char *url = g_strconcat (fixture->rig.base, "/v1/chat/completions", NULL);
  g_auto(KpTestResponse) response = { 0 };

  kp_test_chat (fixture->rig.client, url, TOKEN, model, &response);
  if (provider != NULL)
    *provider = g_strdup (soup_message_headers_get_one (response.headers, "x-keypool-provider"));
  return response.status;
}

/* Tests ------------------------------------------------------------------- */

/* Per-token decimal strings become USD per million exactly, with none of the
 * noise of multiplying a double (0.00000023 × 1e6 is 0.22999999999999998).
 */
static void
test_price_conversion (void)
{
  static const struct { const char *text; double expected; } cases[] = {
    { "0.000003", 3.0 }, { "0.000015", 15.0 }, { "0.0000025", 2.5 }, { "0.00000023", 0.23 },
    { "0.00000015", 0.15 }, { "3e-06", 3.0 }, { "1.5E-7", 0.15 }, { "0", 0.0 }, { "+0.0000011", 1.1 },
  };
  static const char *bad[] = { "-1", "-0.000001", "", ".", "abc", "0.000003x", "1e", "0x10", " 1" };
  double value = -1;

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_assert_true (kp_refresh_parse_price (cases[i].text, 6, &value));
      g_assert_cmpfloat (value, ==, cases[i].expected);
    }
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    g_assert_false (kp_refresh_parse_price (bad[i], 6, &value));

  /* Per million already: no shift. */
  g_assert_true (kp_refresh_parse_price ("0.88", 0, &value));
  g_assert_cmpfloat (value, ==, 0.88);
}

static void
test_parse_models (void)
{
  static const char openrouter[] =
    "{\"data\":["
    "{\"id\":\"anthropic/claude-sonnet-4\",\"context_length\":200000,"
    " \"pricing\":{\"prompt\":\"0.000003\",\"completion\":\"0.000015\","
    "  \"input_cache_read\":\"0.0000003\"}},"
    "{\"id\":\"x/number-priced\",\"pricing\":{\"prompt\":2.3e-07,\"completion\":1e-06}},"
    "{\"id\":\"openrouter/auto\",\"pricing\":{\"prompt\":\"-1\",\"completion\":\"-1\"}},"
    "{\"id\":\"x/half\",\"pricing\":{\"prompt\":\"0.000001\"}},"
    "{\"id\":\"x/free:free\",\"pricing\":{\"prompt\":\"0\",\"completion\":\"0\"}},"
    "{\"name\":\"no id\"}, 7,"
    /* An id of the wrong kind is no id. */
    "{\"id\":{}}, {\"id\":[\"a/b\"]}, {\"id\":5}]}";
  /* Gemini's own list names its models. */
  static const char gemini[] =
    "{\"models\":[{\"name\":{}},{\"name\":[\"x\"]},{\"id\":{},\"name\":\"models/g-1\"}]}";
  static const char together[] =
    "[{\"id\":\"meta-llama/Llama-3.3-70B-Instruct-Turbo\",\"context_length\":131072,"
    "  \"pricing\":{\"input\":0.88,\"output\":0.88,\"hourly\":0}},"
    " {\"id\":\"Qwen/Qwen3\",\"pricing\":{\"input\":\"0.2\",\"output\":\"0.6\"}},"
    " {\"id\":\"no/pricing\"}]";
  g_autoptr(GBytes) body = g_bytes_new_static (openrouter, strlen (openrouter));
  g_autoptr(GBytes) bare = g_bytes_new_static (together, strlen (together));
  g_autoptr(GBytes) junk = g_bytes_new_static ("{\"models\":1}", 12);
  g_autoptr(GArray) models = NULL;
  g_autoptr(GError) error = NULL;
  const KpLiveModel *m;

  models = kp_refresh_parse_models (body, KP_PRICES_OPENROUTER, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (models->len, ==, 5);
  m = &g_array_index (models, KpLiveModel, 0);
  g_assert_cmpstr (m->upstream_id, ==, "anthropic/claude-sonnet-4");
  g_assert_cmpfloat (m->input, ==, 3.0);
  g_assert_cmpfloat (m->output, ==, 15.0);
  g_assert_cmpfloat (m->cached_input, ==, 0.3);
  g_assert_cmpint (m->context, ==, 200000);
  m = &g_array_index (models, KpLiveModel, 1);
  g_assert_cmpfloat (m->input, ==, 0.23);
  g_assert_cmpfloat (m->output, ==, 1.0);
  /* "Varies" and half a price are no price; a real 0 is free. */
  g_assert_cmpfloat (g_array_index (models, KpLiveModel, 2).input, <, 0);
  g_assert_cmpfloat (g_array_index (models, KpLiveModel, 3).input, <, 0);
  g_assert_cmpfloat (g_array_index (models, KpLiveModel, 3).output, <, 0);
  g_assert_cmpfloat (g_array_index (models, KpLiveModel, 4).input, ==, 0);
  g_clear_pointer (&models, g_array_unref);

  models = kp_refresh_parse_models (bare, KP_PRICES_PER_MILLION, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (models->len, ==, 3);
  g_assert_cmpfloat (g_array_index (models, KpLiveModel, 0).input, ==, 0.88);
  g_assert_cmpint (g_array_index (models, KpLiveModel, 0).context, ==, 131072);
  g_assert_cmpfloat (g_array_index (models, KpLiveModel, 1).output, ==, 0.6);
  g_assert_cmpfloat (g_array_index (models, KpLiveModel, 2).input, <, 0);
  g_clear_pointer (&models, g_array_unref);

  /* A list without prices in it gives none, whatever the format says. */
  models = kp_refresh_parse_models (bare, KP_PRICES_NONE, &error);
  g_assert_cmpfloat (g_array_index (models, KpLiveModel, 0).input, <, 0);
  g_clear_pointer (&models, g_array_unref);

  models = kp_refresh_parse_models (junk, KP_PRICES_OPENROUTER, &error);
  g_assert_null (models);
  g_assert_nonnull (error);
  g_clear_error (&error);

  {
    g_autoptr(GBytes) named = g_bytes_new_static (gemini, strlen (gemini));

    models = kp_refresh_parse_models (named, KP_PRICES_NONE, &error);
    g_assert_no_error (error);
    g_assert_cmpuint (models->len, ==, 1);
    g_assert_cmpstr (g_array_index (models, KpLiveModel, 0).upstream_id, ==, "models/g-1");
    g_clear_pointer (&models, g_array_unref);
  }
}

#define OR_MODELS_V1 \
  "{\"data\":[" \
  "{\"id\":\"a/kept\",\"pricing\":{\"prompt\":\"0.000003\",\"completion\":\"0.000015\"}}," \
  "{\"id\":\"a/bundled-price\"}," \
  "{\"id\":\"a/new\",\"context_length\":8192," \
  " \"pricing\":{\"prompt\":\"0.00000023\",\"completion\":\"0.000001\"}}," \
  "{\"id\":\"a/new-unpriced\"}]}"

/* The live list decides which models a provider serves: a model gone from
 * it is no longer routed there, a new one routes with its live price or as
 * unpriced (never free), and the list survives a restart.
 */
static void
test_models_added_and_removed (Fixture       *fixture,
                               gconstpointer  data)
{
  g_autoptr(GPtrArray) results = NULL;
  g_autofree char *served_by = NULL;
  const KpRefreshRow *state;
  const KpOffering *offering;

  provider (fixture, "or", "openrouter", "/or/models", NULL, NULL, "sk-or-test-key-1234",
            "[{\"id\":\"a/kept\",\"upstream_id\":\"a/kept\",\"input\":1,\"output\":2},"
            " {\"id\":\"a/removed\",\"upstream_id\":\"a/removed\",\"input\":1,\"output\":2},"
            " {\"id\":\"a/bundled-price\",\"upstream_id\":\"a/bundled-price\",\"input\":5,\"output\":6,"
            "  \"aliases\":[\"bp\"]}]");
  kp_mock_catalog_set (fixture->catalog, "/or/models", 200, OR_MODELS_V1, 0);
  start_gateway (fixture);

  /* Before any refresh: the file's models. */
  g_assert_nonnull (find_offering (fixture, "or", "a/removed"));
  g_assert_null (find_offering (fixture, "or", "a/new"));
  g_assert_cmpuint (chat (fixture, "a/removed", NULL), ==, 200);
  g_assert_null (kp_refresh_get_state (kp_gateway_get_refresh (fixture->rig.gateway), "or"));

  results = run_refresh (fixture, NULL);
  g_assert_cmpint (find_result (results, "or")->outcome, ==, KP_REFRESH_OK);
  g_assert_cmpuint (kp_mock_catalog_get_requests (fixture->catalog, "/or/models"), ==, 1);
  /* The model list is public: asked without the key. */
  g_assert_true (kp_mock_catalog_last_auth_is (fixture->catalog, "/or/models", NULL));

  offering = find_offering (fixture, "or", "a/kept");
  g_assert_nonnull (offering);
  g_assert_cmpfloat (offering->input, ==, 3.0);
  g_assert_cmpfloat (offering->output, ==, 15.0);
  g_assert_cmpint (offering->price_source, ==, KP_PRICE_LIVE);
  g_assert_cmpint (offering->listed_at, >, 0);

  /* Listed without a price: the file's price, said to be the file's. */
  offering = find_offering (fixture, "or", "a/bundled-price");
  g_assert_cmpfloat (offering->input, ==, 5.0);
  g_assert_cmpint (offering->price_source, ==, KP_PRICE_BUNDLED);
  g_assert_true (g_strv_contains ((const char * const *)offering->aliases, "bp"));

  offering = find_offering (fixture, "or", "a/new");
  g_assert_cmpfloat (offering->input, ==, 0.23);
  g_assert_cmpfloat (offering->output, ==, 1.0);
  g_assert_cmpint (offering->context, ==, 8192);

  offering = find_offering (fixture, "or", "a/new-unpriced");
  g_assert_nonnull (offering);
  g_assert_false (kp_offering_has_price (offering));
  g_assert_cmpint (offering->price_source, ==, KP_PRICE_UNKNOWN);

  g_assert_null (find_offering (fixture, "or", "a/removed"));
  g_assert_null (kp_catalog_lookup (kp_gateway_get_catalog (fixture->rig.gateway), "a/removed"));

  /* Routing follows. */
  g_assert_cmpuint (chat (fixture, "a/removed", NULL), ==, 404);
  g_assert_cmpuint (chat (fixture, "a/new", &served_by), ==, 200);
  g_assert_cmpstr (served_by, ==, "or");
  g_assert_cmpuint (chat (fixture, "bp", NULL), ==, 200);
  {
    g_autoptr(GPtrArray) offerings = kp_gateway_resolve (fixture->rig.gateway, "a/new-unpriced",
                                                         NULL);
    KpRouteRequest request = { 1000, 1000, NULL };
    g_autoptr(KpPlan) plan = kp_gateway_plan (fixture->rig.gateway, offerings, &request);

    g_assert_cmpuint (plan->routes->len, ==, 1);
    /* Unpriced is never $0. */
    g_assert_cmpfloat (g_array_index (plan->routes, KpRoute, 0).expected_usd, <, 0);
  }
  {
    gsize len;
    const char *json = kp_gateway_get_models_json (fixture->rig.gateway, &len);

    g_assert_nonnull (strstr (json, "\"a/new-unpriced\""));
    g_assert_null (strstr (json, "\"a/removed\""));
  }

  state = kp_refresh_get_state (kp_gateway_get_refresh (fixture->rig.gateway), "or");
  g_assert_nonnull (state);
  g_assert_cmpint (state->ok_at, >, 0);
  g_assert_null (state->error);

  /* A restart serves the last good list before any refresh. */
  kp_test_rig_stop (&fixture->rig);
  kp_mock_catalog_set (fixture->catalog, "/or/models", 500, "{}", 0);
  start_gateway (fixture);
  g_assert_null (find_offering (fixture, "or", "a/removed"));
  offering = find_offering (fixture, "or", "a/new");
  g_assert_nonnull (offering);
  g_assert_cmpfloat (offering->input, ==, 0.23);
  g_assert_cmpint (offering->price_source, ==, KP_PRICE_LIVE);
  state = kp_refresh_get_state (kp_gateway_get_refresh (fixture->rig.gateway), "or");
  g_assert_nonnull (state);
  g_assert_cmpint (state->ok_at, >, 0);
  g_assert_cmpuint (kp_mock_catalog_get_requests (fixture->catalog, "/or/models"), ==, 1);
}

static void
assert_key_state (Fixture           *fixture,
                  const char        *provider_id,
                  KpCredentialState  expected)
{
  GPtrArray *credentials = kp_gateway_get_credentials (fixture->rig.gateway);
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;
  guint found = 0;

  for (guint i = 0; i < credentials->len; i++)
    {
      KpCredential *credential = g_ptr_array_index (credentials, i);

      if (!g_str_equal (kp_credential_get_provider_id (credential), provider_id))
        continue;
      found++;
      g_assert_cmpstr (kp_credential_state_to_string (kp_credential_get_state (credential, now)), ==,
                       kp_credential_state_to_string (expected));
      if (expected == KP_CREDENTIAL_EXHAUSTED)
        g_assert_true (g_str_has_prefix (kp_credential_get_last_error (credential), "balance: "));
    }
  g_assert_cmpuint (found, ==, 1);
}

#define DS_BALANCE(usd) \
  "{\"is_available\":true,\"balance_infos\":[{\"currency\":\"CNY\",\"total_balance\":\"110.00\"}," \
  "{\"currency\":\"USD\",\"total_balance\":\"" usd "\",\"granted_balance\":\"0.00\"}]}"

/* A balance at or below zero puts the key out of use; a positive one on a
 * later refresh brings it back.
 */
static void
test_balance (Fixture       *fixture,
              gconstpointer  data)
{
  g_autoptr(GPtrArray) results = NULL;
  const KpRefreshRow *state;

  provider (fixture, "ds", NULL, "/ds/models", "/ds/balance", "deepseek", "sk-ds-test-key-5678",
            "[{\"id\":\"d/chat\",\"upstream_id\":\"d-chat\",\"input\":1,\"output\":2}]");
  provider (fixture, "or", "openrouter", "/or/models", "/or/credits", "openrouter_credits",
            "sk-or-test-key-9012",
            "[{\"id\":\"a/kept\",\"upstream_id\":\"a/kept\",\"input\":1,\"output\":2}]");
  kp_mock_catalog_set (fixture->catalog, "/ds/models", 200, "{\"data\":[{\"id\":\"d-chat\"}]}", 0);
  kp_mock_catalog_set (fixture->catalog, "/ds/balance", 200, DS_BALANCE ("0.00"), 0);
  kp_mock_catalog_set (fixture->catalog, "/or/models", 200, OR_MODELS_V1, 0);
  kp_mock_catalog_set (fixture->catalog, "/or/credits", 200,
                       "{\"data\":{\"total_credits\":10,\"total_usage\":10.5}}", 0);
  start_gateway (fixture);

  assert_key_state (fixture, "ds", KP_CREDENTIAL_OK);
  results = run_refresh (fixture, NULL);
  g_assert_cmpint (find_result (results, "ds")->outcome, ==, KP_REFRESH_OK);
  g_assert_cmpint (find_result (results, "or")->outcome, ==, KP_REFRESH_OK);
  /* Balances are read with the key. */
  g_assert_true (kp_mock_catalog_last_auth_is (fixture->catalog, "/ds/balance",
                                               "Bearer sk-ds-test-key-5678"));
  g_assert_true (kp_mock_catalog_last_auth_is (fixture->catalog, "/ds/models",
                                               "Bearer sk-ds-test-key-5678"));
  g_assert_true (kp_mock_catalog_last_auth_is (fixture->catalog, "/or/credits",
                                               "Bearer sk-or-test-key-9012"));

  assert_key_state (fixture, "ds", KP_CREDENTIAL_EXHAUSTED);
  assert_key_state (fixture, "or", KP_CREDENTIAL_EXHAUSTED);
  state = kp_refresh_get_state (kp_gateway_get_refresh (fixture->rig.gateway), "ds");
  g_assert_true (state->has_balance);
  g_assert_cmpfloat (state->balance, ==, 0.0);
  g_assert_cmpstr (state->currency, ==, "USD");
  state = kp_refresh_get_state (kp_gateway_get_refresh (fixture->rig.gateway), "or");
  g_assert_cmpfloat (state->balance, ==, -0.5);

  /* Nothing routes to an exhausted key. */
  g_assert_cmpuint (chat (fixture, "d/chat", NULL), !=, 200);
  g_assert_cmpuint (kp_mock_upstream_get_stats (fixture->chat)->requests, ==, 0);

  /* Topped up. */
  kp_mock_catalog_set (fixture->catalog, "/ds/balance", 200, DS_BALANCE ("12.50"), 0);
  kp_mock_catalog_set (fixture->catalog, "/or/credits", 200,
                       "{\"data\":{\"total_credits\":20,\"total_usage\":10.5}}", 0);
  g_clear_pointer (&results, g_ptr_array_unref);
  results = run_refresh (fixture, NULL);
  assert_key_state (fixture, "ds", KP_CREDENTIAL_OK);
  assert_key_state (fixture, "or", KP_CREDENTIAL_OK);
  state = kp_refresh_get_state (kp_gateway_get_refresh (fixture->rig.gateway), "ds");
  g_assert_cmpfloat (state->balance, ==, 12.5);
  state = kp_refresh_get_state (kp_gateway_get_refresh (fixture->rig.gateway), "or");
  g_assert_cmpfloat (state->balance, ==, 9.5);
  g_assert_cmpuint (chat (fixture, "d/chat", NULL), ==, 200);

  /* The key's secret is never in what the refresh reports. */
  for (guint i = 0; i < results->len; i++)
    g_assert_null (strstr (((KpRefreshResult *)g_ptr_array_index (results, i))->summary, "sk-"));

  /* Members of the wrong kind count as absent: an unknown currency, and
   * available unless the answer says otherwise.
   */
  kp_mock_catalog_set (fixture->catalog, "/ds/balance", 200,
                       "{\"is_available\":{},\"balance_infos\":[{\"currency\":{},"
                       "\"total_balance\":\"3.00\"},{\"currency\":[\"USD\"],\"total_balance\":\"4.00\"}]}",
                       0);
  g_clear_pointer (&results, g_ptr_array_unref);
  results = run_refresh (fixture, NULL);
  g_assert_cmpint (find_result (results, "ds")->outcome, ==, KP_REFRESH_OK);
  state = kp_refresh_get_state (kp_gateway_get_refresh (fixture->rig.gateway), "ds");
  g_assert_cmpfloat (state->balance, ==, 3.0);
  g_assert_cmpstr (state->currency, ==, "?");
  assert_key_state (fixture, "ds", KP_CREDENTIAL_OK);
}

/* A provider that fails keeps its last good list and records the error;
 * the others still refresh.
 */
/* Each key is read for its own balance, and only the empty one is put out
 * of use: two keys may be two accounts.
 */
static void
test_balance_per_key (Fixture       *fixture,
                      gconstpointer  data)
{
  g_autoptr(GPtrArray) results = NULL;
  g_autofree char *path = g_strdup_printf ("%s/ds.json", fixture->rig.place.providers);
  g_autofree char *json = g_strdup_printf (
    "{\"id\":\"ds\",\"base_url\":\"%s/v1\",\"env\":[\"KP_REFRESH_DS_A\",\"KP_REFRESH_DS_B\"],"
    "\"models_endpoint\":\"%s/ds/models\","
    "\"balance\":{\"endpoint\":\"%s/ds/balance\",\"format\":\"deepseek\"},"
    "\"models\":[{\"id\":\"d/chat\",\"upstream_id\":\"d-chat\",\"input\":1,\"output\":2}]}",
    kp_mock_upstream_get_url (fixture->chat), kp_mock_catalog_get_url (fixture->catalog),
    kp_mock_catalog_get_url (fixture->catalog));
  const KpRefreshRow *state;
  const char *summary;

  g_assert_true (g_file_set_contents (path, json, -1, NULL));
  kp_test_place_setenv (&fixture->rig.place, "KP_REFRESH_DS_A", "sk-ds-empty-key-0001");
  kp_test_place_setenv (&fixture->rig.place, "KP_REFRESH_DS_B", "sk-ds-funded-key-0002");
  kp_mock_catalog_set (fixture->catalog, "/ds/models", 200, "{\"data\":[{\"id\":\"d-chat\"}]}", 0);
  kp_mock_catalog_set_for_key (fixture->catalog, "/ds/balance", "Bearer sk-ds-empty-key-0001",
                               DS_BALANCE ("0.00"));
  kp_mock_catalog_set_for_key (fixture->catalog, "/ds/balance", "Bearer sk-ds-funded-key-0002",
                               DS_BALANCE ("7.25"));
  start_gateway (fixture);

  results = run_refresh (fixture, NULL);
  g_assert_cmpint (find_result (results, "ds")->outcome, ==, KP_REFRESH_OK);
  g_assert_cmpuint (kp_mock_catalog_get_requests (fixture->catalog, "/ds/balance"), ==, 2);
  g_assert_cmpint (kp_test_credential_state (fixture->rig.gateway, "sk-ds-empty-key-0001"), ==, KP_CREDENTIAL_EXHAUSTED);
  g_assert_cmpint (kp_test_credential_state (fixture->rig.gateway, "sk-ds-funded-key-0002"), ==, KP_CREDENTIAL_OK);

  /* The provider shows its first key's balance; the summary names both. */
  state = kp_refresh_get_state (kp_gateway_get_refresh (fixture->rig.gateway), "ds");
  g_assert_cmpfloat (state->balance, ==, 0.0);
  summary = find_result (results, "ds")->summary;
  g_assert_nonnull (strstr (summary, "balance 0.00 USD"));
  g_assert_nonnull (strstr (summary, "balance 7.25 USD"));
  g_assert_null (strstr (summary, "sk-"));

  /* Requests still go out, on the funded key. */
  g_assert_cmpuint (chat (fixture, "d/chat", NULL), ==, 200);
  g_assert_cmpuint (kp_mock_upstream_count_key (fixture->chat, "sk-ds-funded-key-0002"), ==, 1);
  g_assert_cmpuint (kp_mock_upstream_count_key (fixture->chat, "sk-ds-empty-key-0001"), ==, 0);
}

static void
test_failing_provider (Fixture       *fixture,
                       gconstpointer  data)
{
  g_autoptr(GPtrArray) results = NULL;
  const KpRefreshRow *state;
  gint64 ok_at;

  provider (fixture, "aaa", NULL, "/aaa/models", NULL, NULL, "sk-aaa-echoed-key",
            "[{\"id\":\"a/one\",\"upstream_id\":\"one\"}]");
  provider (fixture, "bbb", NULL, "/bbb/models", NULL, NULL, "sk-bbb-key-0000",
            "[{\"id\":\"b/one\",\"upstream_id\":\"one\"}]");
  kp_mock_catalog_set (fixture->catalog, "/aaa/models", 200,
                       "{\"data\":[{\"id\":\"one\"},{\"id\":\"two\"}]}", 0);
  kp_mock_catalog_set (fixture->catalog, "/bbb/models", 200, "{\"data\":[{\"id\":\"one\"}]}", 0);
  start_gateway (fixture);

  results = run_refresh (fixture, NULL);
  g_assert_cmpint (find_result (results, "aaa")->outcome, ==, KP_REFRESH_OK);
  g_assert_nonnull (find_offering (fixture, "aaa", "aaa/two"));
  state = kp_refresh_get_state (kp_gateway_get_refresh (fixture->rig.gateway), "aaa");
  ok_at = state->ok_at;
  g_assert_cmpint (ok_at, >, 0);

  /* aaa breaks, and echoes the key in its error; bbb gets a new model. */
  kp_mock_catalog_set (fixture->catalog, "/aaa/models", 500,
                       "{\"error\":{\"message\":\"exploded for sk-aaa-echoed-key\"}}", 0);
  kp_mock_catalog_set (fixture->catalog, "/bbb/models", 200,
                       "{\"data\":[{\"id\":\"one\"},{\"id\":\"three\"}]}", 0);
  g_clear_pointer (&results, g_ptr_array_unref);
  kp_test_spin_ms (1100);
  results = run_refresh (fixture, NULL);

  g_assert_cmpint (find_result (results, "aaa")->outcome, ==, KP_REFRESH_FAILED);
  g_assert_nonnull (strstr (find_result (results, "aaa")->summary, "HTTP 500"));
  g_assert_null (strstr (find_result (results, "aaa")->summary, "sk-aaa-echoed-key"));
  g_assert_cmpint (find_result (results, "bbb")->outcome, ==, KP_REFRESH_OK);
  g_assert_nonnull (find_offering (fixture, "bbb", "bbb/three"));
  /* aaa keeps what it had. */
  g_assert_nonnull (find_offering (fixture, "aaa", "aaa/two"));
  g_assert_nonnull (find_offering (fixture, "aaa", "a/one"));

  state = kp_refresh_get_state (kp_gateway_get_refresh (fixture->rig.gateway), "aaa");
  g_assert_nonnull (state->error);
  g_assert_nonnull (strstr (state->error, "HTTP 500"));
  g_assert_null (strstr (state->error, "sk-aaa-echoed-key"));
  g_assert_cmpint (state->ok_at, ==, ok_at);
  g_assert_cmpint (state->refreshed_at, >, ok_at);

  /* An empty or broken list is a failure too, never "no models". */
  kp_mock_catalog_set (fixture->catalog, "/aaa/models", 200, "{\"data\":[]}", 0);
  g_clear_pointer (&results, g_ptr_array_unref);
  results = run_refresh (fixture, "aaa");
  g_assert_cmpuint (results->len, ==, 1);
  g_assert_cmpint (find_result (results, "aaa")->outcome, ==, KP_REFRESH_FAILED);
  g_assert_nonnull (find_offering (fixture, "aaa", "aaa/two"));

  /* The error survives a restart. */
  kp_test_rig_stop (&fixture->rig);
  start_gateway (fixture);
  state = kp_refresh_get_state (kp_gateway_get_refresh (fixture->rig.gateway), "aaa");
  g_assert_nonnull (state);
  g_assert_nonnull (state->error);
  g_assert_nonnull (find_offering (fixture, "aaa", "aaa/two"));
}

/* A model list or a balance answer of 100,000 "[" fails that refresh with
 * a clear error; json-glib alone would overflow its stack and end Keypool.
 */
static void
test_deep_answers (Fixture       *fixture,
                   gconstpointer  data)
{
  g_autoptr(GPtrArray) results = NULL;
  g_autofree char *deep = g_malloc (100000 + 1);
  const KpRefreshResult *result;
  const KpRefreshRow *state;

  memset (deep, '[', 100000);
  deep[100000] = '\0';
  provider (fixture, "ds", NULL, "/ds/models", "/ds/balance", "deepseek", "sk-ds-deep-key-5678",
            "[{\"id\":\"d/chat\",\"upstream_id\":\"d-chat\",\"input\":1,\"output\":2}]");
  kp_mock_catalog_set (fixture->catalog, "/ds/models", 200, deep, 0);
  kp_mock_catalog_set (fixture->catalog, "/ds/balance", 200, deep, 0);
  start_gateway (fixture);

  results = run_refresh (fixture, NULL);
  result = find_result (results, "ds");
  g_assert_cmpint (result->outcome, ==, KP_REFRESH_FAILED);
  g_assert_nonnull (strstr (result->summary, "deeper than 128 levels"));
  g_assert_nonnull (find_offering (fixture, "ds", "d/chat"));
  state = kp_refresh_get_state (kp_gateway_get_refresh (fixture->rig.gateway), "ds");
  g_assert_false (state->has_balance);
  assert_key_state (fixture, "ds", KP_CREDENTIAL_OK);

  /* Keypool still serves. */
  g_assert_cmpuint (chat (fixture, "d/chat", NULL), ==, 200);
}

/* A model list or balance larger than Keypool reads is not read past it. */
static void
test_huge_answers (Fixture       *fixture,
                   gconstpointer  data)
{
  g_autoptr(GPtrArray) results = NULL;
  g_autoptr(GString) huge = g_string_new ("{\"data\":[");
  const KpRefreshResult *result;

  /* 2 MiB of models, against a cap of 1 MiB. */
  while (huge->len < 2 * 1024 * 1024)
    g_string_append_printf (huge, "{\"id\":\"model-%" G_GSIZE_FORMAT "\"},", huge->len);
  g_string_append (huge, "{\"id\":\"last\"}]}");
  provider (fixture, "ds", NULL, "/ds/models", "/ds/balance", "deepseek", "sk-ds-huge-key-5678",
            "[{\"id\":\"d/chat\",\"upstream_id\":\"d-chat\",\"input\":1,\"output\":2}]");
  kp_mock_catalog_set (fixture->catalog, "/ds/models", 200, huge->str, 0);
  kp_mock_catalog_set (fixture->catalog, "/ds/balance", 200, huge->str, 0);
  start_gateway (fixture);
  kp_gateway_set_read_caps (fixture->rig.gateway, 0, 0, 1024 * 1024);

  results = run_refresh (fixture, NULL);
  result = find_result (results, "ds");
  g_assert_cmpint (result->outcome, ==, KP_REFRESH_FAILED);
  g_assert_nonnull (strstr (result->summary, "larger than 1 MiB"));
  /* The file's models stay, and Keypool still serves. */
  g_assert_nonnull (find_offering (fixture, "ds", "d/chat"));
  g_assert_null (find_offering (fixture, "ds", "ds/last"));
  assert_key_state (fixture, "ds", KP_CREDENTIAL_OK);
  g_assert_cmpuint (chat (fixture, "d/chat", NULL), ==, 200);
}

static gboolean
has_bbb_three (gpointer data)
{
  Fixture *fixture = data;

  return find_offering (fixture, "bbb", "bbb/three") != NULL;
}

/* A provider that does not answer holds up nobody, and times out. */
static void
test_slow_provider (Fixture       *fixture,
                    gconstpointer  data)
{
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GPtrArray) results = NULL;
  KpRefresh *refresh;
  gint64 start;

  kp_test_place_setenv (&fixture->rig.place, "KEYPOOL_REFRESH_TIMEOUT_MS", "1500");
  provider (fixture, "aaa", NULL, "/aaa/models", NULL, NULL, NULL,
            "[{\"id\":\"a/one\",\"upstream_id\":\"one\"}]");
  provider (fixture, "bbb", NULL, "/bbb/models", NULL, NULL, NULL,
            "[{\"id\":\"b/one\",\"upstream_id\":\"one\"}]");
  /* aaa answers only when the test says: the timeout alone ends its wait. */
  kp_mock_catalog_set (fixture->catalog, "/aaa/models", 200, "{\"data\":[{\"id\":\"late\"}]}",
                       KP_MOCK_CATALOG_HOLD);
  kp_mock_catalog_set (fixture->catalog, "/bbb/models", 200,
                       "{\"data\":[{\"id\":\"one\"},{\"id\":\"three\"}]}", 0);
  start_gateway (fixture);
  refresh = kp_gateway_get_refresh (fixture->rig.gateway);

  start = g_get_monotonic_time ();
  kp_refresh_run_async (refresh, NULL, NULL, kp_test_store_result, &result);
  g_assert_true (kp_refresh_is_running (refresh));
  g_assert_true (kp_test_spin_until (has_bbb_three, fixture, 20000));
  /* bbb is served while aaa is still being waited for. */
  g_assert_true (kp_refresh_is_running (refresh));
  g_assert_null (result);

  g_assert_true (kp_test_spin_until (kp_test_result_ready, &result, 20000));
  g_test_message ("the refresh gave up on aaa after %" G_GINT64_FORMAT " ms (timeout 1500 ms)",
                  (g_get_monotonic_time () - start) / 1000);
  results = kp_refresh_run_finish (refresh, result, NULL);
  g_assert_cmpint (find_result (results, "aaa")->outcome, ==, KP_REFRESH_FAILED);
  g_assert_nonnull (strstr (find_result (results, "aaa")->summary, "no answer within 1.5 s"));
  g_assert_nonnull (find_offering (fixture, "aaa", "a/one"));
  g_assert_null (find_offering (fixture, "aaa", "aaa/late"));
}

/* The timer refreshes on its own, and two refreshes never overlap: asking
 * again while one runs joins it.
 */
static void
test_timer (Fixture       *fixture,
            gconstpointer  data)
{
  KpRefresh *refresh;
  guint joined = 0;
  gint64 start, took;

  kp_test_place_setenv (&fixture->rig.place, "KEYPOOL_REFRESH_INTERVAL_MS", "150");
  provider (fixture, "aaa", NULL, "/aaa/models", NULL, NULL, NULL,
            "[{\"id\":\"a/one\",\"upstream_id\":\"one\"}]");
  kp_mock_catalog_set (fixture->catalog, "/aaa/models", 200, "{\"data\":[{\"id\":\"one\"}]}", 300);
  start_gateway (fixture);
  refresh = kp_gateway_get_refresh (fixture->rig.gateway);
  g_assert_cmpint (kp_refresh_get_interval_ms (refresh), ==, 150);

  /* Not started: no timer. */
  kp_test_spin_ms (400);
  g_assert_cmpuint (kp_mock_catalog_get_requests (fixture->catalog, "/aaa/models"), ==, 0);

  /* Never refreshed: at once, then every interval after the last ended. */
  start = g_get_monotonic_time ();
  kp_refresh_start (refresh);
  while (fixture->finished < 3)
    {
      g_assert_cmpint (g_get_monotonic_time () - start, <, 60 * G_USEC_PER_SEC);
      g_main_context_iteration (NULL, FALSE);
      /* Asking while one runs joins it. */
      if (kp_refresh_is_running (refresh) && joined < 20)
        {
          kp_refresh_run_async (refresh, NULL, NULL, NULL, NULL);
          kp_refresh_run_async (refresh, "aaa", NULL, NULL, NULL);
          joined++;
        }
      g_usleep (1000);
    }
  took = g_get_monotonic_time () - start;
  kp_refresh_stop (refresh);
  while (kp_refresh_is_running (refresh))
    g_main_context_iteration (NULL, TRUE);

  g_assert_cmpuint (joined, >, 0);
  /* Three runs of 300 ms, each after the last ended and 150 ms passed: never
   * sooner, however long a busy machine makes them. Each asked the mock once. */
  g_assert_cmpint (took, >=, (3 * 300 + 2 * 150) * 1000);
  g_assert_cmpuint (fixture->finished, ==, 3);
  g_assert_cmpuint (kp_mock_catalog_get_requests (fixture->catalog, "/aaa/models"), ==,
                    fixture->finished);
  g_assert_cmpuint (kp_mock_catalog_get_max_in_flight (fixture->catalog, "/aaa/models"), ==, 1);
  g_assert_cmpint (kp_refresh_get_last_run (refresh), >, 0);
}

/* A recent refresh is not repeated at start. */
static void
test_timer_recent (Fixture       *fixture,
                   gconstpointer  data)
{
  KpRefresh *refresh;

  provider (fixture, "aaa", NULL, "/aaa/models", NULL, NULL, NULL,
            "[{\"id\":\"a/one\",\"upstream_id\":\"one\"}]");
  kp_mock_catalog_set (fixture->catalog, "/aaa/models", 200, "{\"data\":[{\"id\":\"one\"}]}", 0);
  start_gateway (fixture);
  refresh = kp_gateway_get_refresh (fixture->rig.gateway);
  g_ptr_array_unref (run_refresh (fixture, NULL));
  g_assert_cmpuint (kp_mock_catalog_get_requests (fixture->catalog, "/aaa/models"), ==, 1);
  kp_test_rig_stop (&fixture->rig);

  /* An hour between refreshes, the last one just now. */
  kp_test_place_setenv (&fixture->rig.place, "KEYPOOL_REFRESH_INTERVAL_MS", "3600000");
  start_gateway (fixture);
  refresh = kp_gateway_get_refresh (fixture->rig.gateway);
  kp_refresh_start (refresh);
  kp_test_spin_ms (300);
  g_assert_cmpuint (kp_mock_catalog_get_requests (fixture->catalog, "/aaa/models"), ==, 1);
  g_assert_false (kp_refresh_is_running (refresh));

  /* Only on demand: starting arms nothing. */
  kp_test_rig_stop (&fixture->rig);
  kp_test_place_setenv (&fixture->rig.place, "KEYPOOL_REFRESH_INTERVAL_MS", "0");
  start_gateway (fixture);
  kp_refresh_start (kp_gateway_get_refresh (fixture->rig.gateway));
  kp_test_spin_ms (200);
  g_assert_cmpuint (kp_mock_catalog_get_requests (fixture->catalog, "/aaa/models"), ==, 1);
}

static gboolean
aaa_in_flight (gpointer data)
{
  Fixture *fixture = data;

  return kp_mock_catalog_get_in_flight (fixture->catalog, "/aaa/models") == 1;
}

/* Requests are served at once while a refresh waits on a provider. */
static void
test_serves_during_refresh (Fixture       *fixture,
                            gconstpointer  data)
{
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GPtrArray) results = NULL;
  KpRefresh *refresh;

  provider (fixture, "aaa", NULL, "/aaa/models", NULL, NULL, "sk-aaa-key-1111",
            "[{\"id\":\"a/one\",\"upstream_id\":\"one\"}]");
  /* The model list is held until the chat is answered. */
  kp_mock_catalog_set (fixture->catalog, "/aaa/models", 200, "{\"data\":[{\"id\":\"one\"}]}",
                       KP_MOCK_CATALOG_HOLD);
  start_gateway (fixture);
  refresh = kp_gateway_get_refresh (fixture->rig.gateway);

  kp_refresh_run_async (refresh, NULL, NULL, kp_test_store_result, &result);
  g_assert_true (kp_test_spin_until (aaa_in_flight, fixture, 10000));

  g_assert_cmpuint (chat (fixture, "a/one", NULL), ==, 200);
  g_assert_true (kp_refresh_is_running (refresh));
  g_assert_true (aaa_in_flight (fixture));
  g_assert_null (result);

  kp_mock_catalog_release (fixture->catalog, "/aaa/models");
  g_assert_true (kp_test_spin_until (kp_test_result_ready, &result, 10000));
  results = kp_refresh_run_finish (refresh, result, NULL);
  g_assert_cmpint (find_result (results, "aaa")->outcome, ==, KP_REFRESH_OK);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  /* The tests set these themselves. */
  g_unsetenv ("KEYPOOL_REFRESH_INTERVAL_MS");
  g_unsetenv ("KEYPOOL_REFRESH_TIMEOUT_MS");

#define ADD(path, func) \
  g_test_add ("/keypool/refresh/" path, Fixture, NULL, fixture_setup, func, fixture_teardown)

  g_test_add_func ("/keypool/refresh/price-conversion", test_price_conversion);
  g_test_add_func ("/keypool/refresh/parse-models", test_parse_models);
  ADD ("models-added-and-removed", test_models_added_and_removed);
  ADD ("balance", test_balance);
  ADD ("balance-per-key", test_balance_per_key);
  ADD ("failing-provider", test_failing_provider);
  ADD ("deep-answers", test_deep_answers);
  ADD ("huge-answers", test_huge_answers);
  ADD ("slow-provider", test_slow_provider);
  ADD ("timer", test_timer);
  ADD ("timer-recent", test_timer_recent);
  ADD ("serves-during-refresh", test_serves_during_refresh);

#undef ADD

  return g_test_run ();
}
