/* kp-cli-reports.c: `keypool spend|requests`: reports from the ledger
 *
 * What was spent (by provider, model, key or client, over a period) and
 * the requests made, with `requests --errors` for the problems: the
 * requests that failed and the ones Keypool could not serve.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "kp-cli-private.h"

/* spend, requests --------------------------------------------------------------- */

gboolean
kp_cli_parse_since (const char *text,
             gint64     *since_ms)
{
  gint64 now_ms = g_get_real_time () / 1000;
  guint64 amount;
  gint64 unit_ms;
  gsize len;
  g_autofree char *number = NULL;

  if (g_str_equal (text, "all"))
    {
      *since_ms = 0;
      return TRUE;
    }

  len = strlen (text);
  if (len < 2)
    return FALSE;
  switch (text[len - 1])
    {
    case 'm': unit_ms = 60 * 1000; break;
    case 'h': unit_ms = 3600 * 1000; break;
    case 'd': unit_ms = 24 * 3600 * 1000; break;
    case 'w': unit_ms = 7 * 24 * 3600 * 1000; break;
    default: return FALSE;
    }
  number = g_strndup (text, len - 1);
  if (!g_ascii_string_to_unsigned (number, 10, 1, 100000, &amount, NULL))
    return FALSE;

  *since_ms = now_ms - (gint64)amount * unit_ms;
  return TRUE;
}

/* A client's id, as the ledger groups by it, as its name. */
static char *
client_name (KpGateway  *gateway,
             const char *id_text)
{
  guint64 id = 0;

  if (id_text == NULL || !g_ascii_string_to_unsigned (id_text, 10, 0, G_MAXUINT, &id, NULL))
    id = KP_CLIENT_OTHER;
  return kp_clients_dup_name (kp_gateway_get_clients (gateway), (guint)id);
}

int
kp_cli_spend (KpGateway               *gateway,
              GApplicationCommandLine *cmdline,
              char                   **argv,
              int                      argc)
{
  g_autofree char *since_text = NULL;
  g_autofree char *by_text = NULL;
  g_autoptr(GPtrArray) rows = NULL;
  g_autoptr(GError) error = NULL;
  gint64 since_ms;
  gint64 total = 0, unknown = 0, requests = 0;
  KpSpendBy by;
  const GOptionEntry entries[] = {
    { "since", 0, 0, G_OPTION_ARG_STRING, &since_text, NULL, NULL },
    { "by", 0, 0, G_OPTION_ARG_STRING, &by_text, NULL, NULL },
    { NULL }
  };

  if (!kp_cli_parse_options (cmdline, &argv, &argc, entries))
    return EXIT_FAILURE;
  if (argc != 1)
    return kp_cli_fail (cmdline, "usage: keypool spend [--since 7d] [--by provider|model|key|day|client]");

  if (!kp_cli_parse_since (since_text ? since_text : "30d", &since_ms))
    return kp_cli_fail (cmdline, "--since “%s” is not a period such as 30m, 24h, 7d, 2w or all.", since_text);

  if (by_text == NULL || g_str_equal (by_text, "provider"))
    by = KP_SPEND_BY_PROVIDER;
  else if (g_str_equal (by_text, "model"))
    by = KP_SPEND_BY_MODEL;
  else if (g_str_equal (by_text, "key"))
    by = KP_SPEND_BY_KEY;
  else if (g_str_equal (by_text, "day"))
    by = KP_SPEND_BY_DAY;
  else if (g_str_equal (by_text, "client"))
    by = KP_SPEND_BY_CLIENT;
  else
    return kp_cli_fail (cmdline, "--by “%s” is not provider, model, key, day or client.", by_text);

  rows = kp_ledger_spend (kp_gateway_get_ledger (gateway), since_ms, by, &error);
  if (rows == NULL)
    return kp_cli_fail (cmdline, "%s", error->message);

  g_application_command_line_print (cmdline, "%-36s %9s %14s %12s %12s\n", by_text ? by_text : "provider",
                                    "REQUESTS", "COST", "INPUT", "OUTPUT");
  for (guint i = 0; i < rows->len; i++)
    {
      KpSpendRow *row = g_ptr_array_index (rows, i);
      g_autofree char *cost = kp_cli_format_usd (row->cost_nano);
      g_autofree char *client = by == KP_SPEND_BY_CLIENT ? client_name (gateway, row->key) : NULL;

      g_application_command_line_print (cmdline, "%-36s %9" G_GINT64_FORMAT " %14s %12" G_GINT64_FORMAT
                                        " %12" G_GINT64_FORMAT "%s\n",
                                        client ? client : row->key, row->requests, cost,
                                        row->prompt_tokens,
                                        row->completion_tokens,
                                        row->unknown_cost ? "  + unknown" : "");
      total += row->cost_nano;
      unknown += row->unknown_cost;
      requests += row->requests;
    }

  {
    g_autofree char *cost = kp_cli_format_usd (total);

    g_application_command_line_print (cmdline, "%-36s %9" G_GINT64_FORMAT " %14s\n", "TOTAL",
                                      requests, cost);
  }
  if (unknown > 0)
    g_application_command_line_print (cmdline,
                                      "%" G_GINT64_FORMAT " answered requests have an unknown cost "
                                      "(no price known), not counted above.\n", unknown);
  return EXIT_SUCCESS;
}

static char *
format_local_time (gint64 time_ms)
{
  g_autoptr(GDateTime) when = g_date_time_new_from_unix_local (time_ms / 1000);

  return g_date_time_format (when, "%Y-%m-%d %H:%M:%S");
}

/* `keypool requests --errors`: what was refused and what failed, so that a
 * user whose tool "does nothing" sees why.
 */
static int
problems (KpGateway               *gateway,
          GApplicationCommandLine *cmdline,
          guint                    last)
{
  g_autoptr(GPtrArray) rows = NULL;
  g_autoptr(GError) error = NULL;

  rows = kp_ledger_recent_problems (kp_gateway_get_ledger (gateway), last, &error);
  if (rows == NULL)
    return kp_cli_fail (cmdline, "%s", error->message);

  g_application_command_line_print (cmdline, "%-19s %4s %6s %-15s %-20s %s\n",
                                    "TIME", "HTTP", "TIMES", "CLIENT", "CODE", "REQUEST");
  for (guint i = 0; i < rows->len; i++)
    {
      KpProblemRow *row = g_ptr_array_index (rows, i);
      g_autofree char *time_text = format_local_time (row->time_ms);
      g_autofree char *status = row->status > 0 ? g_strdup_printf ("%u", row->status)
                                                : g_strdup ("-");
      g_autofree char *what = NULL;

      if (row->refused && row->path == NULL)
        what = g_strdup ("(refused requests of too many kinds to list apart)");
      else if (row->refused)
        what = g_strdup_printf ("%s %s", row->method ? row->method : "?", row->path);
      else if (row->error != NULL)
        what = g_strdup_printf ("model %s: %s", row->model ? row->model : "-", row->error);
      else
        what = g_strdup_printf ("model %s", row->model ? row->model : "-");

      g_application_command_line_print (cmdline, "%-19s %4s %6u %-15s %-20s %s\n",
                                        time_text, status, row->count,
                                        row->client ? row->client : "-",
                                        row->code ? row->code : "-", what);
    }
  if (rows->len == 0)
    g_application_command_line_print (cmdline, "Nothing was refused and no request failed.\n");
  return EXIT_SUCCESS;
}

int
kp_cli_requests (KpGateway               *gateway,
                 GApplicationCommandLine *cmdline,
                 char                   **argv,
                 int                      argc)
{
  g_autofree char *last_text = NULL;
  g_autofree char *client_text = NULL;
  g_autoptr(GPtrArray) rows = NULL;
  g_autoptr(GError) error = NULL;
  guint64 last = 20;
  gboolean errors = FALSE;
  guint client = KP_CLIENT_OTHER;
  const GOptionEntry entries[] = {
    { "last", 'n', 0, G_OPTION_ARG_STRING, &last_text, NULL, NULL },
    { "errors", 0, 0, G_OPTION_ARG_NONE, &errors, NULL, NULL },
    { "client", 0, 0, G_OPTION_ARG_STRING, &client_text, NULL, NULL },
    { NULL }
  };

  if (!kp_cli_parse_options (cmdline, &argv, &argc, entries))
    return EXIT_FAILURE;
  if (argc != 1)
    return kp_cli_fail (cmdline, "usage: keypool requests [--errors] [--last N] [--client NAME]");
  if (last_text != NULL && !g_ascii_string_to_unsigned (last_text, 10, 1, 100000, &last, NULL))
    return kp_cli_fail (cmdline, "--last “%s” is not a number from 1 to 100000.", last_text);

  if (client_text != NULL && !kp_clients_find (kp_gateway_get_clients (gateway), client_text, &client))
    return kp_cli_fail (cmdline, "There is no client named “%s”; “keypool clients list” lists them.",
                        client_text);

  if (errors)
    return problems (gateway, cmdline, (guint)last);

  if (client_text != NULL)
    rows = kp_ledger_recent_requests_of_client (kp_gateway_get_ledger (gateway), client, (guint)last,
                                                &error);
  else
    rows = kp_ledger_recent_requests (kp_gateway_get_ledger (gateway), (guint)last, &error);
  if (rows == NULL)
    return kp_cli_fail (cmdline, "%s", error->message);

  g_application_command_line_print (cmdline, "%-19s %-32s %-14s %4s %-14s %7s %7s %-22s %7s %s\n",
                                    "TIME", "MODEL", "PROVIDER", "HTTP", "OUTCOME", "IN", "OUT",
                                    "COST", "MS", "CLIENT");
  for (guint i = 0; i < rows->len; i++)
    {
      KpRequestRow *row = g_ptr_array_index (rows, i);
      g_autofree char *time_text = format_local_time (row->time_ms);
      g_autofree char *cost = NULL;
      g_autofree char *client_name = kp_clients_dup_name (kp_gateway_get_clients (gateway),
                                                          row->client_id);

      if (g_strcmp0 (row->cost_source, "unknown") == 0)
        cost = g_strdup ("unknown");
      else
        {
          g_autofree char *usd = kp_cli_format_usd (row->cost_nano);

          cost = g_strdup_printf ("%s %s", usd, row->cost_source);
        }

      g_application_command_line_print (cmdline,
                                        "%-19s %-32.32s %-14.14s %4u %-14s %7" G_GINT64_FORMAT
                                        " %7" G_GINT64_FORMAT " %-22s %7" G_GINT64_FORMAT " %s\n",
                                        time_text, row->model ? row->model : "-",
                                        row->provider ? row->provider : "-", row->status,
                                        row->outcome, row->prompt_tokens, row->completion_tokens,
                                        cost, row->total_ms, client_name);
    }
  return EXIT_SUCCESS;
}

