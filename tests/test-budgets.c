/* test-budgets.c: spend limits against the real server, relay and ledger
 *
 * A mock provider with known prices: every answer of mock/chat costs 11
 * input and 5 output tokens at $1 and $2 per million, $0.000021. Budgets
 * count in a clock the test moves.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include "config.h"

#include <string.h>

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include "kp-gateway.h"
#include "kp-ledger-private.h"
#include "kp-mock-upstream.h"
#include "kp-test-util.h"

#define TOKEN    "kp-test-token-0123456789"
#define MOCK_KEY "mock-key-abcdefghijklmnop"
#define COST     21000   /* nano-USD of one mock/chat answer */

typedef struct
{
  guint  percent;
  char  *title;
  char  *body;
} Crossed;

typedef struct
{
  KpMockUpstream *mock;
  KpGateway      *gateway;
  SoupSession    *client;
  char           *root;
  char           *providers;
  char           *base;
  gint64          now_us;    /* the budgets' clock */
  GArray         *crossed;   /* of Crossed */
} Fixture;

static void
crossed_clear (gpointer data)
{
  Crossed *crossed = data;

  g_free (crossed->title);
  g_free (crossed->body);
}

static gint64
test_clock (gpointer user_data)
{
  Fixture *fixture = user_data;

  return fixture->now_us;
}

static void
on_crossed (KpBudgets  *budgets,
            const char *id,
            guint       percent,
            const char *title,
            const char *body,
            Fixture    *fixture)
{
  Crossed crossed = { percent, g_strdup (title), g_strdup (body) };

  g_array_append_val (fixture->crossed, crossed);
}

static void
write_provider (const char *dir,
                const char *name,
                const char *json)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);

  g_assert_true (g_file_set_contents (path, json, -1, NULL));
}

static void
start_gateway (Fixture *fixture)
{
  fixture->gateway = kp_test_gateway_new (fixture->providers, fixture->root, TOKEN);
  kp_budgets_set_clock (kp_gateway_get_budgets (fixture->gateway), test_clock, fixture);
  g_signal_connect (kp_gateway_get_budgets (fixture->gateway), "crossed", G_CALLBACK (on_crossed),
                    fixture);
  kp_test_gateway_start (fixture->gateway);
  g_free (fixture->base);
  fixture->base = g_strdup_printf ("http://127.0.0.1:%u", kp_gateway_get_port (fixture->gateway));
}

static void
fixture_setup (Fixture       *fixture,
               gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *mock_json = NULL;
  g_autofree char *twin_json = NULL;

  fixture->mock = kp_mock_upstream_new (&error);
  g_assert_no_error (error);
  fixture->root = g_dir_make_tmp ("keypool-budgets-XXXXXX", &error);
  g_assert_no_error (error);
  fixture->providers = g_build_filename (fixture->root, "providers", NULL);
  g_mkdir (fixture->providers, 0700);
  fixture->crossed = g_array_new (FALSE, TRUE, sizeof (Crossed));
  g_array_set_clear_func (fixture->crossed, crossed_clear);
  fixture->now_us = g_get_real_time ();

  mock_json = g_strdup_printf (
    "{\"schema\":1,\"id\":\"mock\",\"name\":\"Mock\",\"base_url\":\"%s\",\"env\":[\"MOCK_API_KEY\"],"
    "\"models\":["
    "{\"id\":\"mock/chat\",\"upstream_id\":\"mock-chat\",\"input\":1,\"output\":2},"
    "{\"id\":\"mock/free\",\"upstream_id\":\"mock-chat\",\"input\":0,\"output\":0},"
    "{\"id\":\"mock/unpriced\",\"upstream_id\":\"mock-chat\"}]}",
    kp_mock_upstream_get_url (fixture->mock));
  write_provider (fixture->providers, "mock.json", mock_json);
  /* The same model, dearer: where a request goes once mock's budget is spent. */
  twin_json = g_strdup_printf (
    "{\"schema\":1,\"id\":\"twin\",\"name\":\"Twin\",\"base_url\":\"%s\",\"env\":[\"TWIN_KEY\"],"
    "\"models\":[{\"id\":\"mock/chat\",\"upstream_id\":\"mock-chat\",\"input\":2,\"output\":4}]}",
    kp_mock_upstream_get_url (fixture->mock));
  write_provider (fixture->providers, "twin.json", twin_json);

  fixture->client = soup_session_new ();
}

static void
fixture_teardown (Fixture       *fixture,
                  gconstpointer  data)
{
  soup_session_abort (fixture->client);
  g_clear_object (&fixture->client);
  kp_test_gateway_clear (&fixture->gateway);
  g_clear_pointer (&fixture->mock, kp_mock_upstream_free);
  g_clear_pointer (&fixture->crossed, g_array_unref);
  kp_test_remove_tree (fixture->root);
  g_free (fixture->root);
  g_free (fixture->providers);
  g_free (fixture->base);
}

static void
post (Fixture        *fixture,
      const char     *path,
      const char     *body,
      KpTestResponse *response)
{
  g_autofree char *url = g_strconcat (fixture->base, path, NULL);
  g_autoptr(SoupMessage) msg = soup_message_new ("POST", url);
  g_autoptr(GBytes) bytes = g_bytes_new (body, strlen (body));

  soup_message_headers_replace (soup_message_get_request_headers (msg), "Authorization",
                                "Bearer " TOKEN);
  soup_message_set_request_body_from_bytes (msg, "application/json", bytes);
  kp_test_send (fixture->client, msg, 10000, response);
}

#define CHAT(model) "{\"model\":\"" model "\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}"

/* One chat; returns its status and the provider that served it. */
static guint
chat (Fixture     *fixture,
      const char  *model,
      char       **provider)
{
  g_autofree char *body = g_strdup_printf (
    "{\"model\":\"%s\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", model);
  g_auto(KpTestResponse) response = { 0 };

  post (fixture, "/v1/chat/completions", body, &response);
  if (provider != NULL)
    *provider = g_strdup (soup_message_headers_get_one (response.headers, "x-keypool-provider"));
  return response.status;
}

static void
set_budget (Fixture        *fixture,
            KpBudgetScope   scope,
            const char     *provider,
            KpBudgetPeriod  period,
            gint64          limit_nano,
            KpBudgetAction  action)
{
  g_autoptr(GError) error = NULL;
  KpBudget budget = { scope, (char *)provider, 0, period, limit_nano, action };

  g_assert_true (kp_budgets_set (kp_gateway_get_budgets (fixture->gateway), &budget, &error));
  g_assert_no_error (error);
}

static KpBudgetStatus *
find_status (GPtrArray      *list,
             KpBudgetPeriod  period)
{
  for (guint i = 0; i < list->len; i++)
    {
      KpBudgetStatus *status = g_ptr_array_index (list, i);

      if (status->budget.period == period)
        return status;
    }
  g_assert_not_reached ();
}

static void
assert_contains (const char *haystack,
                 const char *needle)
{
  if (haystack == NULL || strstr (haystack, needle) == NULL)
    g_error ("“%s” does not contain “%s”", haystack ? haystack : "(null)", needle);
}

static char *
tomorrow (Fixture *fixture)
{
  g_autoptr(GDateTime) now = g_date_time_new_from_unix_local (fixture->now_us / G_USEC_PER_SEC);
  g_autoptr(GDateTime) next = g_date_time_add_days (now, 1);

  return g_date_time_format (next, "%Y-%m-%d 00:00");
}

/* Tests ----------------------------------------------------------------- */

/* Refuse mode: told at 80 % and at 100 %, once each; the request that
 * crosses finishes, the next paid one gets a 429 with the figures, a free
 * route still serves, and nothing is lost from the ledger. The check never
 * asks sqlite.
 */
static void
test_refuse (Fixture       *fixture,
             gconstpointer  data)
{
  g_auto(KpTestResponse) refused = { 0 };
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GPtrArray) rows = NULL;
  g_autofree char *reset = NULL;
  JsonObject *error;
  const char *message;
  guint reads;

  start_gateway (fixture);
  /* $0.00005: two answers are 84 %, three are 126 %. */
  set_budget (fixture, KP_BUDGET_ALL, NULL, KP_BUDGET_DAY, 50000, KP_BUDGET_REFUSE);
  reads = kp_ledger_get_reads (kp_gateway_get_ledger (fixture->gateway));

  g_assert_cmpuint (chat (fixture, "mock/chat", NULL), ==, 200);
  g_assert_cmpuint (fixture->crossed->len, ==, 0);
  g_assert_false (kp_budgets_get_warning (kp_gateway_get_budgets (fixture->gateway)));
  g_assert_cmpuint (chat (fixture, "mock/chat", NULL), ==, 200);
  g_assert_cmpuint (fixture->crossed->len, ==, 1);
  g_assert_cmpuint (g_array_index (fixture->crossed, Crossed, 0).percent, ==, 80);
  assert_contains (g_array_index (fixture->crossed, Crossed, 0).title, "80 % of the daily budget");
  assert_contains (g_array_index (fixture->crossed, Crossed, 0).body, "$0.000042 of $0.000050");
  g_assert_true (kp_budgets_get_warning (kp_gateway_get_budgets (fixture->gateway)));

  /* Under the limit when it starts: it is served, and crosses it. */
  g_assert_cmpuint (chat (fixture, "mock/chat", NULL), ==, 200);
  g_assert_cmpuint (fixture->crossed->len, ==, 2);
  g_assert_cmpuint (g_array_index (fixture->crossed, Crossed, 1).percent, ==, 100);
  assert_contains (g_array_index (fixture->crossed, Crossed, 1).body, "are refused");

  post (fixture, "/v1/chat/completions", CHAT ("mock/chat"), &refused);
  g_assert_cmpuint (refused.status, ==, 429);
  g_assert_true (json_parser_load_from_data (parser, refused.body, -1, NULL));
  error = json_object_get_object_member (json_node_get_object (json_parser_get_root (parser)), "error");
  g_assert_cmpstr (json_object_get_string_member (error, "code"), ==, "budget_exceeded");
  message = json_object_get_string_member (error, "message");
  reset = tomorrow (fixture);
  assert_contains (message, "the daily budget ($0.000050)");
  assert_contains (message, "$0.000063 so far");
  assert_contains (message, reset);

  /* In the client's own API: Anthropic's error shape for an Anthropic client. */
  {
    g_auto(KpTestResponse) anthropic = { 0 };
    g_autoptr(JsonParser) shape = json_parser_new ();
    JsonObject *root;

    post (fixture, "/v1/messages",
          "{\"model\":\"mock/chat\",\"max_tokens\":16,"
          "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", &anthropic);
    g_assert_cmpuint (anthropic.status, ==, 429);
    g_assert_true (json_parser_load_from_data (shape, anthropic.body, -1, NULL));
    root = json_node_get_object (json_parser_get_root (shape));
    g_assert_cmpstr (json_object_get_string_member (root, "type"), ==, "error");
    assert_contains (json_object_get_string_member (json_object_get_object_member (root, "error"),
                                                    "message"), "$0.000063 so far");
  }

  /* A $0 route is not billed against it. */
  g_assert_cmpuint (chat (fixture, "mock/free", NULL), ==, 200);
  /* Nothing more is told this day. */
  g_assert_cmpuint (chat (fixture, "mock/chat", NULL), ==, 429);
  g_assert_cmpuint (fixture->crossed->len, ==, 2);

  g_assert_cmpuint (kp_ledger_get_reads (kp_gateway_get_ledger (fixture->gateway)), ==, reads);
  g_assert_cmpuint (kp_mock_upstream_get_stats (fixture->mock)->requests, ==, 4);

  /* Every request has its row, the refused ones too. */
  rows = kp_ledger_recent_requests (kp_gateway_get_ledger (fixture->gateway), 100, NULL);
  g_assert_cmpuint (rows->len, ==, 7);
  g_assert_cmpuint (((KpRequestRow *)g_ptr_array_index (rows, 0))->status, ==, 429);
}

/* Warn mode keeps serving, and tells each threshold once. */
static void
test_warn (Fixture       *fixture,
           gconstpointer  data)
{
  start_gateway (fixture);
  set_budget (fixture, KP_BUDGET_ALL, NULL, KP_BUDGET_MONTH, 50000, KP_BUDGET_WARN);

  for (guint i = 0; i < 5; i++)
    g_assert_cmpuint (chat (fixture, "mock/chat", NULL), ==, 200);
  g_assert_cmpuint (fixture->crossed->len, ==, 2);
  g_assert_cmpuint (g_array_index (fixture->crossed, Crossed, 0).percent, ==, 80);
  g_assert_cmpuint (g_array_index (fixture->crossed, Crossed, 1).percent, ==, 100);
  assert_contains (g_array_index (fixture->crossed, Crossed, 1).body, "keeps serving");
}

/* A provider's budget holds that provider only: the request goes to the
 * dearer one that still has budget.
 */
static void
test_provider_budget (Fixture       *fixture,
                      gconstpointer  data)
{
  g_autofree char *provider = NULL;

  start_gateway (fixture);
  set_budget (fixture, KP_BUDGET_PROVIDER, "mock", KP_BUDGET_DAY, COST, KP_BUDGET_REFUSE);

  g_assert_cmpuint (chat (fixture, "mock/chat", &provider), ==, 200);
  g_assert_cmpstr (provider, ==, "mock");
  g_clear_pointer (&provider, g_free);
  g_assert_cmpuint (chat (fixture, "mock/chat", &provider), ==, 200);
  g_assert_cmpstr (provider, ==, "twin");
  g_clear_pointer (&provider, g_free);
  /* Pinned to mock: nothing is left but the budget. */
  g_assert_cmpuint (chat (fixture, "mock:mock/chat", NULL), ==, 429);
}

/* A new day starts the daily budget from nothing; the month goes on. */
static void
test_daily_reset (Fixture       *fixture,
                  gconstpointer  data)
{
  g_autoptr(GDateTime) noon = g_date_time_new_local (2026, 6, 10, 12, 0, 0);
  g_autoptr(GDateTime) late = g_date_time_new_local (2026, 6, 10, 23, 59, 59);
  g_autoptr(GDateTime) next = g_date_time_new_local (2026, 6, 11, 0, 0, 1);
  g_autoptr(GPtrArray) list = NULL;

  fixture->now_us = g_date_time_to_unix (noon) * G_USEC_PER_SEC;
  start_gateway (fixture);
  set_budget (fixture, KP_BUDGET_ALL, NULL, KP_BUDGET_DAY, COST, KP_BUDGET_REFUSE);
  set_budget (fixture, KP_BUDGET_ALL, NULL, KP_BUDGET_MONTH, 100 * COST, KP_BUDGET_REFUSE);

  g_assert_cmpuint (chat (fixture, "mock/chat", NULL), ==, 200);
  g_assert_cmpuint (chat (fixture, "mock/chat", NULL), ==, 429);
  fixture->now_us = g_date_time_to_unix (late) * G_USEC_PER_SEC;
  g_assert_cmpuint (chat (fixture, "mock/chat", NULL), ==, 429);

  fixture->now_us = g_date_time_to_unix (next) * G_USEC_PER_SEC;
  g_assert_false (kp_budgets_get_warning (kp_gateway_get_budgets (fixture->gateway)));
  g_assert_cmpuint (chat (fixture, "mock/chat", NULL), ==, 200);
  g_assert_cmpuint (chat (fixture, "mock/chat", NULL), ==, 429);
  /* Told again in the new day: 100 % on the 10th and on the 11th. */
  g_assert_cmpuint (fixture->crossed->len, ==, 2);

  list = kp_budgets_list (kp_gateway_get_budgets (fixture->gateway));
  g_assert_cmpint (find_status (list, KP_BUDGET_DAY)->spent_nano, ==, COST);
  g_assert_cmpint (find_status (list, KP_BUDGET_MONTH)->spent_nano, ==, 2 * COST);
  {
    g_autoptr(GDateTime) midnight = g_date_time_new_local (2026, 6, 12, 0, 0, 0);
    g_autoptr(GDateTime) july = g_date_time_new_local (2026, 7, 1, 0, 0, 0);

    g_assert_cmpint (find_status (list, KP_BUDGET_DAY)->resets_at, ==, g_date_time_to_unix (midnight));
    g_assert_cmpint (find_status (list, KP_BUDGET_MONTH)->resets_at, ==, g_date_time_to_unix (july));
  }
}

/* After a restart the totals come from the ledger, and the budgets from the
 * settings: a spent budget is still spent, and not told again.
 */
static void
test_seeded_from_ledger (Fixture       *fixture,
                         gconstpointer  data)
{
  start_gateway (fixture);
  set_budget (fixture, KP_BUDGET_ALL, NULL, KP_BUDGET_DAY, COST, KP_BUDGET_REFUSE);
  g_assert_cmpuint (chat (fixture, "mock/unpriced", NULL), ==, 200);
  g_assert_cmpuint (chat (fixture, "mock/chat", NULL), ==, 200);
  g_assert_cmpuint (fixture->crossed->len, ==, 1);
  g_assert_cmpint (kp_budgets_get_unknown (kp_gateway_get_budgets (fixture->gateway), KP_BUDGET_DAY),
                   ==, 1);
  kp_test_gateway_clear (&fixture->gateway);

  start_gateway (fixture);
  g_assert_true (kp_budgets_get_warning (kp_gateway_get_budgets (fixture->gateway)));
  g_assert_cmpint (kp_budgets_get_unknown (kp_gateway_get_budgets (fixture->gateway), KP_BUDGET_MONTH),
                   ==, 1);
  g_assert_cmpuint (chat (fixture, "mock/chat", NULL), ==, 429);
  g_assert_cmpuint (chat (fixture, "mock/free", NULL), ==, 200);
  g_assert_cmpuint (fixture->crossed->len, ==, 1);

  {
    g_autoptr(GError) error = NULL;
    KpBudget budget = { KP_BUDGET_ALL, NULL, 0, KP_BUDGET_DAY, 0, KP_BUDGET_WARN };

    g_assert_true (kp_budgets_clear (kp_gateway_get_budgets (fixture->gateway), &budget, &error));
    g_assert_no_error (error);
    g_assert_false (kp_budgets_clear (kp_gateway_get_budgets (fixture->gateway), &budget, &error));
    g_assert_error (error, KP_BUDGETS_ERROR, KP_BUDGETS_ERROR_NOT_FOUND);
  }
  g_assert_cmpuint (chat (fixture, "mock/chat", NULL), ==, 200);
}

typedef struct
{
  KpLedger *ledger;
  guint     rows;
} RowsWait;

static gboolean
rows_written (gpointer user_data)
{
  RowsWait *wait = user_data;
  g_autoptr(GPtrArray) rows = kp_ledger_recent_requests (wait->ledger, 100, NULL);

  return rows != NULL && rows->len >= wait->rows;
}

/* A subscription's route is paid already: its requests are recorded as
 * "subscription", count in no budget (not even as unknown), and it still
 * serves once a budget in refuse mode is spent, whatever its list price.
 */
static void
test_subscription (Fixture       *fixture,
                   gconstpointer  data)
{
  g_autofree char *sub_json = NULL;
  g_autofree char *provider = NULL;
  g_autoptr(GPtrArray) list = NULL;
  g_autoptr(GPtrArray) rows = NULL;
  g_autoptr(GPtrArray) spend = NULL;
  KpBudgets *budgets;
  RowsWait wait = { NULL, 4 };
  guint subscription_rows = 0;

  sub_json = g_strdup_printf (
    "{\"schema\":1,\"id\":\"sub\",\"name\":\"Sub\",\"base_url\":\"%s\",\"env\":[\"SUB_KEY\"],"
    "\"subscription\":true,"
    "\"models\":[{\"id\":\"sub/chat\",\"upstream_id\":\"mock-chat\",\"input\":1,\"output\":2}]}",
    kp_mock_upstream_get_url (fixture->mock));
  write_provider (fixture->providers, "sub.json", sub_json);
  start_gateway (fixture);
  budgets = kp_gateway_get_budgets (fixture->gateway);
  set_budget (fixture, KP_BUDGET_ALL, NULL, KP_BUDGET_DAY, COST, KP_BUDGET_REFUSE);

  g_assert_cmpuint (chat (fixture, "sub/chat", &provider), ==, 200);
  g_assert_cmpstr (provider, ==, "sub");
  g_clear_pointer (&provider, g_free);
  list = kp_budgets_list (budgets);
  g_assert_cmpint (find_status (list, KP_BUDGET_DAY)->spent_nano, ==, 0);
  g_assert_cmpint (kp_budgets_get_unknown (budgets, KP_BUDGET_DAY), ==, 0);
  g_assert_cmpuint (fixture->crossed->len, ==, 0);

  /* Paid requests spend the budget; then only the subscription serves. */
  g_assert_cmpuint (chat (fixture, "mock/chat", NULL), ==, 200);
  g_assert_cmpuint (chat (fixture, "mock/chat", NULL), ==, 429);
  g_assert_cmpuint (chat (fixture, "sub/chat", &provider), ==, 200);
  g_assert_cmpstr (provider, ==, "sub");
  g_clear_pointer (&list, g_ptr_array_unref);
  list = kp_budgets_list (budgets);
  g_assert_cmpint (find_status (list, KP_BUDGET_DAY)->spent_nano, ==, COST);
  g_assert_cmpint (kp_budgets_get_unknown (budgets, KP_BUDGET_DAY), ==, 0);

  wait.ledger = kp_gateway_get_ledger (fixture->gateway);
  g_assert_true (kp_test_spin_until (rows_written, &wait, 20000));
  rows = kp_ledger_recent_requests (wait.ledger, 100, NULL);
  for (guint i = 0; i < rows->len; i++)
    {
      KpRequestRow *row = g_ptr_array_index (rows, i);

      if (g_strcmp0 (row->provider, "sub") != 0)
        continue;
      g_assert_cmpstr (row->cost_source, ==, "subscription");
      g_assert_cmpint (row->cost_nano, ==, 0);
      g_assert_cmpint (row->prompt_tokens, >, 0);
      subscription_rows++;
    }
  g_assert_cmpuint (subscription_rows, ==, 2);

  spend = kp_ledger_spend (wait.ledger, 0, KP_SPEND_BY_PROVIDER, NULL);
  g_assert_nonnull (spend);
  for (guint i = 0; i < spend->len; i++)
    {
      KpSpendRow *row = g_ptr_array_index (spend, i);

      if (g_str_equal (row->key, "sub"))
        {
          g_assert_cmpint (row->subscription, ==, 2);
          g_assert_cmpint (row->cost_nano, ==, 0);
          g_assert_cmpint (row->unknown_cost, ==, 0);
        }
      else
        g_assert_cmpint (row->subscription, ==, 0);
    }
}

/* The budgets are read back from the ledger's file, which may hold anything:
 * a member of the wrong kind is a damaged budget, never a programming error
 * (json-glib's getters raise a CRITICAL on an object where a value goes).
 */
static void
test_damaged_setting (Fixture       *fixture,
                      gconstpointer  data)
{
  static const char *const damaged[] = {
    "{\"scope\":{},\"period\":\"day\",\"limit_nano\":5,\"action\":\"warn\"}",
    "{\"scope\":[],\"period\":\"day\",\"limit_nano\":5,\"action\":\"warn\"}",
    "{\"scope\":\"provider\",\"provider\":{},\"period\":\"day\",\"limit_nano\":5,"
    "\"action\":\"warn\"}",
    "{\"scope\":\"client\",\"client\":{},\"period\":\"day\",\"limit_nano\":5,"
    "\"action\":\"warn\"}",
    "{\"scope\":\"client\",\"client\":\"1\",\"period\":\"day\",\"limit_nano\":5,"
    "\"action\":\"warn\"}",
    "{\"scope\":\"all\",\"period\":\"day\",\"limit_nano\":[5],\"action\":\"warn\"}",
    "{\"scope\":\"all\",\"period\":\"day\",\"limit_nano\":\"5\",\"action\":\"warn\"}",
    "{\"scope\":\"all\",\"period\":{},\"limit_nano\":5,\"action\":\"warn\"}",
    "{\"scope\":\"all\",\"period\":\"day\",\"limit_nano\":5,\"action\":[]}",
  };
  KpBudgets *budgets;
  KpLedger *ledger;

  start_gateway (fixture);
  budgets = kp_gateway_get_budgets (fixture->gateway);
  ledger = kp_gateway_get_ledger (fixture->gateway);

  for (guint i = 0; i < G_N_ELEMENTS (damaged); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GPtrArray) list = NULL;
      g_autofree char *text = g_strdup_printf (
        "[{\"scope\":\"all\",\"period\":\"month\",\"limit_nano\":7,\"action\":\"refuse\"},%s]",
        damaged[i]);

      g_test_message ("%s", damaged[i]);
      g_assert_true (kp_ledger_set_setting (ledger, "budgets", text, &error));
      g_assert_no_error (error);
      g_test_expect_message ("keypool", G_LOG_LEVEL_WARNING, "*budgets in the database are damaged*");
      g_assert_true (kp_budgets_load (budgets, ledger, &error));
      g_assert_no_error (error);
      g_test_assert_expected_messages ();

      /* What came before the damaged budget is kept. */
      list = kp_budgets_list (budgets);
      g_assert_cmpuint (list->len, ==, 1);
      g_assert_cmpint (((KpBudgetStatus *)g_ptr_array_index (list, 0))->budget.limit_nano, ==, 7);
    }
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);
  g_setenv ("MOCK_API_KEY", MOCK_KEY, TRUE);
  g_setenv ("TWIN_KEY", "twin-key-aaaaaaaaaaaa", TRUE);
  g_setenv ("SUB_KEY", "sub-key-bbbbbbbbbbbbbb", TRUE);

#define ADD(path, func) \
  g_test_add ("/keypool/budgets/" path, Fixture, NULL, fixture_setup, func, fixture_teardown)

  ADD ("refuse", test_refuse);
  ADD ("warn", test_warn);
  ADD ("provider", test_provider_budget);
  ADD ("daily-reset", test_daily_reset);
  ADD ("seeded-from-ledger", test_seeded_from_ledger);
  ADD ("subscription", test_subscription);
  ADD ("damaged-setting", test_damaged_setting);

#undef ADD

  return g_test_run ();
}
