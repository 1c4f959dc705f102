/* kp-spend-text.c: what a spend total or a request cost says, in words
 *
 * Shared by the Spend page and `keypool spend` / `keypool requests`, so
 * both say the same: a request served by a subscription is "subscription",
 * never "$0.00" and never spend; a cost nobody knows is "unknown", never
 * "$0"; credits (Kiro's unit) are counted apart from money. The words are
 * translatable (the window's language; the CLI's, where its locale has it).
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include <math.h>
#include <string.h>

#include <glib/gi18n-lib.h>

#include "kp-spend-text.h"

/**
 * kp_spend_format_credits:
 * @credits: a count of credits, as a provider reports them
 *
 * Returns: (transfer full): "41.3 credits", "1 credit", "0.0417 credits":
 *   two decimals, or four below one, without trailing zeros
 */
char *
kp_spend_format_credits (double credits)
{
  char number[64];
  gsize len;

  if (!isfinite (credits) || credits < 0)
    credits = 0;
  g_ascii_formatd (number, sizeof number, credits < 1 ? "%.4f" : "%.2f",
                   credits);
  len = strlen (number);
  while (len > 0 && number[len - 1] == '0')
    number[--len] = '\0';
  if (len > 0 && number[len - 1] == '.')
    number[--len] = '\0';
  /* Translators: a count of credits, a provider's unit of use: "41.3 credits". */
  return g_strdup_printf (g_str_equal (number, "1") ? _("%s credit") : _("%s credits"), number);
}

/**
 * kp_spend_describe_total:
 * @row: the spend of one group (a provider, a day, ...)
 * @format_usd: how to write an amount
 *
 * Returns: (transfer full): "$0.12", "$0.12 + 2 unknown",
 *   "subscription (12 requests)" or "$0.12 + subscription (3 requests)":
 *   the money only where some request was not served by a subscription
 */
char *
kp_spend_describe_total (const KpSpendRow *row,
                         KpUsdFormat       format_usd)
{
  g_autoptr(GString) text = g_string_new (NULL);
  gint64 paid;

  g_return_val_if_fail (row != NULL, NULL);
  g_return_val_if_fail (format_usd != NULL, NULL);

  paid = row->requests - row->subscription;
  if (paid > 0 || row->subscription <= 0)
    {
      g_autofree char *usd = format_usd (row->cost_nano);

      g_string_append (text, usd);
      if (row->unknown_cost > 0)
        /* Translators: after an amount, a count of requests whose cost is unknown. */
        g_string_append_printf (text, g_dngettext (GETTEXT_PACKAGE, " + %d unknown",
                                                   " + %d unknown",
                                                   (gulong)row->unknown_cost),
                                (int)row->unknown_cost);
    }
  if (row->subscription > 0)
    {
      if (text->len > 0)
        g_string_append (text, " + ");
      /* Translators: requests served by a subscription, which cost nothing more. */
      g_string_append_printf (text, g_dngettext (GETTEXT_PACKAGE, "subscription (%d request)",
                                                 "subscription (%d requests)",
                                                 (gulong)row->subscription),
                              (int)row->subscription);
    }
  return g_string_free (g_steal_pointer (&text), FALSE);
}

/**
 * kp_spend_describe_request:
 * @row: one request
 * @format_usd: how to write an amount
 *
 * Returns: (transfer full): "subscription", "unknown", or the amount
 */
char *
kp_spend_describe_request (const KpRequestRow *row,
                           KpUsdFormat         format_usd)
{
  g_return_val_if_fail (row != NULL, NULL);
  g_return_val_if_fail (format_usd != NULL, NULL);

  if (g_strcmp0 (row->cost_source, "subscription") == 0)
    return g_strdup (_("subscription"));
  if (row->cost_source == NULL || g_str_equal (row->cost_source, "unknown"))
    return g_strdup (_("unknown"));
  return format_usd (row->cost_nano);
}

/**
 * kp_spend_describe_credits:
 * @rows: (element-type KpSpendRow): the spend by provider of a period
 * @name_of: (nullable): a provider's name from its id; %NULL: the id
 * @data: for @name_of
 * @period: the period in words: "this month"
 *
 * Returns: (transfer full) (nullable): one line per provider whose
 *   requests reported credits ("Kiro: 41.3 credits this month"), or %NULL
 *   when none did
 */
char *
kp_spend_describe_credits (GPtrArray    *rows,
                           const char *(*name_of) (const char *provider_id,
                                                   gpointer    data),
                           gpointer      data,
                           const char   *period)
{
  g_autoptr(GString) text = g_string_new (NULL);

  g_return_val_if_fail (rows != NULL, NULL);
  g_return_val_if_fail (period != NULL, NULL);

  for (guint i = 0; i < rows->len; i++)
    {
      const KpSpendRow *row = g_ptr_array_index (rows, i);
      g_autofree char *credits = NULL;
      const char *name;

      if (!row->has_credits)
        continue;
      credits = kp_spend_format_credits (row->credits);
      name = name_of ? name_of (row->key, data) : row->key;
      if (text->len > 0)
        g_string_append_c (text, '\n');
      /* Translators: a provider, its credits and a period: "Kiro: 41.3 credits this month". */
      g_string_append_printf (text, _("%s: %s %s"), name ? name : "?", credits, period);
    }
  if (text->len == 0)
    return NULL;
  return g_string_free (g_steal_pointer (&text), FALSE);
}
