/* kp-cli-catalog.c: `keypool providers|models|refresh|route`
 *
 * What Keypool knows of providers and models: the providers and their
 * keys, refreshes and balances; every model; a live refresh; and the route
 * a request for a model would take now.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "kp-cli-private.h"

/* providers, models, refresh ------------------------------------------------------ */

int
kp_cli_providers (KpGateway               *gateway,
                  GApplicationCommandLine *cmdline,
                  char                   **argv,
                  int                      argc)
{
  GPtrArray *list = kp_catalog_get_providers (kp_gateway_get_catalog (gateway));
  g_autoptr(GError) error = NULL;

  if (argc == 3 && (g_str_equal (argv[1], "enable") || g_str_equal (argv[1], "disable")))
    {
      gboolean enable = g_str_equal (argv[1], "enable");

      if (!kp_gateway_set_provider_enabled (gateway, argv[2], enable, &error))
        return kp_cli_fail (cmdline, "%s", error->message);
      g_application_command_line_print (cmdline, "%s is %s.\n", argv[2],
                                        enable ? "switched on" : "switched off");
      return EXIT_SUCCESS;
    }
  if (argc != 1)
    return kp_cli_fail (cmdline, "usage: keypool providers [enable|disable ID]");

  g_application_command_line_print (cmdline, "%-18s %-22s %-8s %-5s %-6s %s\n",
                                    "ID", "NAME", "ENABLED", "KEYS", "MODELS", "REFRESHED");
  for (guint i = 0; i < list->len; i++)
    {
      KpProvider *provider = g_ptr_array_index (list, i);
      const KpRefreshRow *state = kp_refresh_get_state (kp_gateway_get_refresh (gateway),
                                                        kp_provider_get_id (provider));
      g_autofree char *keys_text = NULL;
      g_autofree char *refreshed = NULL;

      keys_text = kp_provider_get_requires_key (provider)
                    ? g_strdup_printf ("%u", kp_gateway_count_keys (gateway, provider))
                    : g_strdup ("none needed");
      refreshed = state && state->refreshed_at ? kp_cli_format_until (state->refreshed_at) : g_strdup ("never");
      g_application_command_line_print (cmdline, "%-18s %-22s %-8s %-5s %-6u %s\n",
                                        kp_provider_get_id (provider), kp_provider_get_name (provider),
                                        kp_gateway_provider_is_enabled (gateway, provider) ? "yes" : "no",
                                        keys_text, kp_provider_get_n_offerings (provider), refreshed);
      if (state != NULL && state->error != NULL)
        {
          g_autofree char *good = state->ok_at ? kp_cli_format_until (state->ok_at) : NULL;

          g_application_command_line_print (cmdline, "     last error: %.200s\n", state->error);
          g_application_command_line_print (cmdline, "     models as of: %s\n",
                                            good ? good : "the provider file");
        }
      if (state != NULL && state->has_balance)
        {
          g_autofree char *when = kp_cli_format_until (state->balance_at);

          g_application_command_line_print (cmdline, "     balance: %.2f %s (read %s)\n",
                                            state->balance, state->currency ? state->currency : "",
                                            when);
        }
      kp_cli_print_quotas (cmdline, gateway, provider);
    }
  return EXIT_SUCCESS;
}

int
kp_cli_models (KpGateway               *gateway,
               GApplicationCommandLine *cmdline)
{
  KpCatalog *catalog = kp_gateway_get_catalog (gateway);
  GPtrArray *ids = kp_catalog_get_model_ids (catalog);

  for (guint i = 0; i < ids->len; i++)
    {
      GPtrArray *offerings = kp_catalog_lookup (catalog, g_ptr_array_index (ids, i));
      g_autoptr(GString) line = g_string_new (g_ptr_array_index (ids, i));

      g_string_append (line, "\n   ");
      for (guint j = 0; j < offerings->len; j++)
        {
          const KpOffering *offering = g_ptr_array_index (offerings, j);

          g_string_append_printf (line, " %s", kp_provider_get_id (offering->provider));
          if (kp_offering_has_price (offering))
            g_string_append_printf (line, " $%g/$%g%s", offering->input, offering->output,
                                    offering->price_source == KP_PRICE_LIVE ? " (live)" : "");
          else
            g_string_append (line, " (price unknown)");
          if (!kp_gateway_provider_is_usable (gateway, offering->provider))
            g_string_append (line, " [no key]");
          g_string_append (line, j + 1 < offerings->len ? "," : "");
        }
      g_application_command_line_print (cmdline, "%s\n", line->str);
    }
  g_application_command_line_print (cmdline, "Prices are USD per million input/output tokens.\n");
  return EXIT_SUCCESS;
}

/* refresh --------------------------------------------------------------------- */

static void
on_refreshed (GObject      *object,
              GAsyncResult *result,
              gpointer      user_data)
{
  Pending *pending = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) results = NULL;
  int status = EXIT_SUCCESS;

  results = kp_refresh_run_finish (KP_REFRESH (object), result, &error);
  if (results == NULL)
    {
      kp_cli_pending_done (pending, kp_cli_fail (pending->cmdline, "%s", error->message));
      return;
    }

  for (guint i = 0; i < results->len; i++)
    {
      KpRefreshResult *one = g_ptr_array_index (results, i);
      const char *outcome = one->outcome == KP_REFRESH_OK ? "ok"
                            : one->outcome == KP_REFRESH_FAILED ? "failed" : "skipped";

      g_application_command_line_print (pending->cmdline, "%-18s %-8s %s\n", one->provider_id,
                                        outcome, one->summary);
      /* A provider asked for by name must have been refreshed. */
      if (pending->named && one->outcome != KP_REFRESH_OK)
        status = EXIT_FAILURE;
    }
  kp_cli_pending_done (pending, status);
}

int
kp_cli_refresh (GApplication            *app,
                KpGateway               *gateway,
                GApplicationCommandLine *cmdline,
                char                   **argv,
                int                      argc)
{
  Pending *pending;

  if (argc > 2)
    return kp_cli_fail (cmdline, "usage: keypool refresh [PROVIDER]");
  if (argc == 2 && kp_catalog_get_provider (kp_gateway_get_catalog (gateway), argv[1]) == NULL)
    return kp_cli_fail (cmdline, "There is no provider “%s”; “keypool providers” lists them.", argv[1]);

  pending = kp_cli_pending_new (app, cmdline);
  pending->named = argc == 2;
  kp_refresh_run_async (kp_gateway_get_refresh (gateway), argc == 2 ? argv[1] : NULL, NULL,
                        on_refreshed, pending);
  return -1;
}

/* route ----------------------------------------------------------------------- */

int
kp_cli_route (KpGateway               *gateway,
              GApplicationCommandLine *cmdline,
              char                   **argv,
              int                      argc)
{
  g_autofree char *prompt_text = NULL;
  g_autofree char *max_text = NULL;
  g_autoptr(GPtrArray) offerings = NULL;
  g_autoptr(KpPlan) plan = NULL;
  g_auto(GStrv) providers = NULL;
  guint64 prompt = 1000, output = 1000;
  KpRouteRequest request = { 0 };
  const GOptionEntry entries[] = {
    { "prompt-tokens", 0, 0, G_OPTION_ARG_STRING, &prompt_text, NULL, NULL },
    { "max-tokens", 0, 0, G_OPTION_ARG_STRING, &max_text, NULL, NULL },
    { NULL }
  };

  if (!kp_cli_parse_options (cmdline, &argv, &argc, entries))
    return EXIT_FAILURE;
  if (argc != 2)
    return kp_cli_fail (cmdline, "usage: keypool route MODEL [--prompt-tokens N] [--max-tokens N]");
  if (prompt_text != NULL && !g_ascii_string_to_unsigned (prompt_text, 10, 0, 10000000, &prompt, NULL))
    return kp_cli_fail (cmdline, "--prompt-tokens “%s” is not a number from 0 to 10000000.", prompt_text);
  if (max_text != NULL && !g_ascii_string_to_unsigned (max_text, 10, 1, 10000000, &output, NULL))
    return kp_cli_fail (cmdline, "--max-tokens “%s” is not a number from 1 to 10000000.", max_text);

  offerings = kp_gateway_resolve (gateway, argv[1], &providers);
  if (offerings == NULL)
    {
      g_autofree char *close = kp_catalog_suggest (kp_gateway_get_catalog (gateway), argv[1]);

      return kp_cli_fail (cmdline, "No provider Keypool knows serves “%s”.%s%s%s", argv[1],
                   close ? " Did you mean " : "", close ? close : "", close ? "?" : "");
    }

  request.prompt_tokens = prompt;
  request.output_tokens = output;
  request.providers = (const char * const *)providers;
  plan = kp_gateway_plan_peek (gateway, offerings, &request);

  g_application_command_line_print (cmdline,
                                    "Routes for “%s” with %" G_GUINT64_FORMAT " prompt and %" G_GUINT64_FORMAT
                                    " output tokens, best first:\n", argv[1], prompt, output);
  if (plan->routes->len == 0)
    {
      g_autofree char *why = kp_plan_describe_empty (plan, argv[1]);

      g_application_command_line_print (cmdline, "  none. %s\n", why);
    }
  for (guint i = 0; i < plan->routes->len; i++)
    {
      const KpRoute *r = &g_array_index (plan->routes, KpRoute, i);
      g_autofree char *key = NULL;
      g_autofree char *cost = NULL;

      key = r->credential
        ? g_strdup_printf ("key %" G_GINT64_FORMAT " “%s” ×%g", kp_credential_get_id (r->credential),
                           kp_credential_get_label (r->credential),
                           kp_credential_get_multiplier (r->credential))
        : g_strdup ("no key needed");
      cost = r->expected_usd >= 0 ? g_strdup_printf ("$%.6f", r->expected_usd)
                                  : g_strdup ("price unknown (after every priced route)");
      g_application_command_line_print (cmdline, "  %u. %-16s %-24s %-34s %s\n", r->rank,
                                        kp_provider_get_id (r->offering->provider),
                                        r->offering->upstream_id, key, cost);
    }

  if (plan->excluded->len > 0)
    g_application_command_line_print (cmdline, "Not used now:\n");
  for (guint i = 0; i < plan->excluded->len; i++)
    {
      KpExclusion *exclusion = g_ptr_array_index (plan->excluded, i);

      g_application_command_line_print (cmdline, "  - %s: %s\n", exclusion->provider_id,
                                        exclusion->reason);
    }
  return EXIT_SUCCESS;
}

