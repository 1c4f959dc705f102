/* test-spend-text.c: what the Spend page and `keypool spend` say of a
 * total, a request and the credits
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include "config.h"

#include "kp-spend-text.h"

static char *
usd (gint64 nano)
{
  return g_strdup_printf ("$%.6f", nano / 1e9);
}

static void
test_credits (void)
{
  struct { double credits; const char *text; } cases[] = {
    { 41.3, "41.3 credits" },
    { 1, "1 credit" },
    { 0, "0 credits" },
    { 0.0417, "0.0417 credits" },
    { 0.25, "0.25 credits" },
    { 12.0049, "12 credits" },
    { -3, "0 credits" },
    { 1e300 * 1e300, "0 credits" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *text = kp_spend_format_credits (cases[i].credits);

      g_assert_cmpstr (text, ==, cases[i].text);
    }
}

static void
test_totals (void)
{
  struct { KpSpendRow row; const char *text; } cases[] = {
    { { .requests = 3, .cost_nano = 120000000 }, "$0.120000" },
    { { .requests = 5, .cost_nano = 120000000, .unknown_cost = 2 }, "$0.120000 + 2 unknown" },
    /* Only subscriptions: no money, and never "$0". */
    { { .requests = 12, .subscription = 12 }, "subscription (12 requests)" },
    { { .requests = 1, .subscription = 1 }, "subscription (1 request)" },
    { { .requests = 4, .cost_nano = 21000, .subscription = 3 },
      "$0.000021 + subscription (3 requests)" },
    { { .requests = 0 }, "$0.000000" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *text = kp_spend_describe_total (&cases[i].row, usd);

      g_assert_cmpstr (text, ==, cases[i].text);
    }
}

static void
test_request (void)
{
  KpRequestRow row = { .cost_source = (char *)"subscription", .cost_nano = 0 };
  g_autofree char *subscription = kp_spend_describe_request (&row, usd);
  g_autofree char *unknown = NULL;
  g_autofree char *computed = NULL;

  g_assert_cmpstr (subscription, ==, "subscription");
  row.cost_source = (char *)"unknown";
  unknown = kp_spend_describe_request (&row, usd);
  g_assert_cmpstr (unknown, ==, "unknown");
  row.cost_source = (char *)"computed";
  row.cost_nano = 21000;
  computed = kp_spend_describe_request (&row, usd);
  g_assert_cmpstr (computed, ==, "$0.000021");
}

static const char *
name_of (const char *id,
         gpointer    data)
{
  return g_str_equal (id, "kiro") ? "Kiro" : id;
}

/* The Spend page's line under the totals: per provider, where any. */
static void
test_credits_line (void)
{
  g_autoptr(GPtrArray) rows = g_ptr_array_new ();
  KpSpendRow kiro = { .key = (char *)"kiro", .requests = 9, .subscription = 9,
                      .has_credits = TRUE, .credits = 41.3 };
  KpSpendRow openai = { .key = (char *)"openai", .requests = 2, .cost_nano = 5 };
  KpSpendRow other = { .key = (char *)"kiro-2", .requests = 1, .subscription = 1,
                       .has_credits = TRUE, .credits = 0 };
  g_autofree char *none = NULL;
  g_autofree char *text = NULL;

  g_ptr_array_add (rows, &openai);
  none = kp_spend_describe_credits (rows, name_of, NULL, "this month");
  g_assert_null (none);

  g_ptr_array_add (rows, &kiro);
  g_ptr_array_add (rows, &other);
  text = kp_spend_describe_credits (rows, name_of, NULL, "this month");
  g_assert_cmpstr (text, ==, "Kiro: 41.3 credits this month\nkiro-2: 0 credits this month");
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/keypool/spend-text/credits", test_credits);
  g_test_add_func ("/keypool/spend-text/totals", test_totals);
  g_test_add_func ("/keypool/spend-text/request", test_request);
  g_test_add_func ("/keypool/spend-text/credits-line", test_credits_line);

  return g_test_run ();
}
