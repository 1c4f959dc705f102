/* kp-cli-budget.c: `keypool budget set|list|clear`
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "kp-cli-private.h"

#define USAGE \
  "usage: keypool budget set daily|monthly USD [--provider ID | --client NAME] [--action warn|refuse]\n" \
  "       keypool budget list\n" \
  "       keypool budget clear daily|monthly [--provider ID | --client NAME]"

#define MAX_DOLLARS 1000000

/**
 * kp_cli_parse_usd:
 * @text: an amount of US dollars: "5", "12.50", "$0.25"
 * @nano: (out): the amount in nano-USD
 *
 * Returns: whether @text is an amount from $0.000000001 to $1,000,000
 */
gboolean
kp_cli_parse_usd (const char *text,
                  gint64     *nano)
{
  const char *dot;
  g_autofree char *whole = NULL;
  guint64 dollars = 0;
  gint64 fraction = 0;
  guint digits = 0;

  if (text == NULL)
    return FALSE;
  if (*text == '$')
    text++;
  dot = strchr (text, '.');
  whole = dot ? g_strndup (text, dot - text) : g_strdup (text);
  if (*whole != '\0' && !g_ascii_string_to_unsigned (whole, 10, 0, MAX_DOLLARS, &dollars, NULL))
    return FALSE;
  if (dot != NULL)
    for (const char *p = dot + 1; *p != '\0'; p++, digits++)
      {
        if (!g_ascii_isdigit (*p) || digits >= 9)
          return FALSE;
        fraction = fraction * 10 + (*p - '0');
      }
  if (*whole == '\0' && digits == 0)
    return FALSE;
  for (; digits < 9; digits++)
    fraction *= 10;

  *nano = (gint64)dollars * 1000000000 + fraction;
  return *nano > 0 && *nano <= (gint64)MAX_DOLLARS * 1000000000;
}

/* Fills @budget's target from --provider or --client. */
static gboolean
parse_target (KpGateway                *gateway,
              GApplicationCommandLine  *cmdline,
              const char               *period,
              const char               *provider,
              const char               *client,
              KpBudget                 *budget)
{
  if (!kp_budget_period_from_string (period, &budget->period))
    {
      kp_cli_fail (cmdline, "“%s” is not daily or monthly.", period);
      return FALSE;
    }
  if (provider != NULL && client != NULL)
    {
      kp_cli_fail (cmdline, "A budget is for one provider or one client, not both.");
      return FALSE;
    }
  if (provider != NULL)
    {
      if (kp_catalog_get_provider (kp_gateway_get_catalog (gateway), provider) == NULL)
        {
          kp_cli_fail (cmdline, "There is no provider “%s”; “keypool providers” lists them.", provider);
          return FALSE;
        }
      budget->scope = KP_BUDGET_PROVIDER;
      budget->provider_id = (char *)provider;
    }
  else if (client != NULL)
    {
      if (!kp_clients_find (kp_gateway_get_clients (gateway), client, &budget->client_id) ||
          budget->client_id == KP_CLIENT_OTHER)
        {
          kp_cli_fail (cmdline, "There is no client named “%s”; “keypool clients list” lists them.",
                       client);
          return FALSE;
        }
      budget->scope = KP_BUDGET_CLIENT;
    }
  else
    budget->scope = KP_BUDGET_ALL;
  return TRUE;
}

static int
list (KpGateway               *gateway,
      GApplicationCommandLine *cmdline)
{
  KpBudgets *budgets = kp_gateway_get_budgets (gateway);
  g_autoptr(GPtrArray) list = kp_budgets_list (budgets);
  gint64 unknown = kp_budgets_get_unknown (budgets, KP_BUDGET_MONTH);

  if (list->len == 0)
    g_application_command_line_print (cmdline, "No budgets; “keypool budget set daily 5” sets one.\n");
  else
    g_application_command_line_print (cmdline, "%-44s %12s %12s %5s %-7s %s\n", "BUDGET", "LIMIT",
                                      "SPENT", "%", "ACTION", "RESETS");
  for (guint i = 0; i < list->len; i++)
    {
      KpBudgetStatus *status = g_ptr_array_index (list, i);
      g_autofree char *limit = kp_cli_format_usd (status->budget.limit_nano);
      g_autofree char *spent = kp_cli_format_usd (status->spent_nano);
      g_autoptr(GDateTime) resets = g_date_time_new_from_unix_local (status->resets_at);
      g_autofree char *when = g_date_time_format (resets, "%Y-%m-%d %H:%M");
      /* "the daily budget for X" reads as "daily budget for X" in a table. */
      const char *name = g_str_has_prefix (status->name, "the ") ? status->name + 4 : status->name;

      g_application_command_line_print (cmdline, "%-44s %12s %12s %5.0f %-7s %s\n", name, limit, spent,
                                        100.0 * status->spent_nano / status->budget.limit_nano,
                                        kp_budget_action_to_string (status->budget.action), when);
    }
  if (unknown > 0)
    g_application_command_line_print (cmdline,
                                      "%" G_GINT64_FORMAT " requests this month have no known price; "
                                      "no budget counts them.\n", unknown);
  return EXIT_SUCCESS;
}

/**
 * kp_cli_budget:
 *
 * Returns: the exit status
 */
int
kp_cli_budget (KpGateway               *gateway,
               GApplicationCommandLine *cmdline,
               char                   **argv,
               int                      argc)
{
  g_autofree char *provider = NULL;
  g_autofree char *client = NULL;
  g_autofree char *action = NULL;
  g_autoptr(GError) error = NULL;
  KpBudget budget = { 0 };
  const GOptionEntry entries[] = {
    { "provider", 0, 0, G_OPTION_ARG_STRING, &provider, NULL, NULL },
    { "client", 0, 0, G_OPTION_ARG_STRING, &client, NULL, NULL },
    { "action", 0, 0, G_OPTION_ARG_STRING, &action, NULL, NULL },
    { NULL }
  };
  const char *verb;

  if (!kp_cli_parse_options (cmdline, &argv, &argc, entries))
    return EXIT_FAILURE;
  verb = argc > 1 ? argv[1] : "list";

  if (g_str_equal (verb, "list") && argc <= 2)
    return list (gateway, cmdline);

  if (g_str_equal (verb, "set") && argc == 4)
    {
      if (!parse_target (gateway, cmdline, argv[2], provider, client, &budget))
        return EXIT_FAILURE;
      if (!kp_cli_parse_usd (argv[3], &budget.limit_nano))
        return kp_cli_fail (cmdline, "“%s” is not an amount of US dollars from 0 to %d, such as 5 "
                            "or 0.50.", argv[3], MAX_DOLLARS);
      if (!kp_budget_action_from_string (action ? action : "warn", &budget.action))
        return kp_cli_fail (cmdline, "--action “%s” is not warn or refuse.", action);
      if (!kp_budgets_set (kp_gateway_get_budgets (gateway), &budget, &error))
        return kp_cli_fail (cmdline, "%s", error->message);
      return list (gateway, cmdline);
    }

  if (g_str_equal (verb, "clear") && argc == 3 && action == NULL)
    {
      if (!parse_target (gateway, cmdline, argv[2], provider, client, &budget))
        return EXIT_FAILURE;
      if (!kp_budgets_clear (kp_gateway_get_budgets (gateway), &budget, &error))
        return kp_cli_fail (cmdline, "%s", error->message);
      return EXIT_SUCCESS;
    }

  return kp_cli_fail (cmdline, USAGE);
}
