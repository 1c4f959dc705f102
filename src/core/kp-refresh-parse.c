/* kp-refresh-parse.c: reading the providers' model lists and balances
 *
 * Part of KpRefresh: pure functions from an answer's bytes to live models
 * with their prices and context, or to a key's balance. Every answer is
 * outside input: it goes through the JSON guard before json-glib sees it.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include <math.h>
#include <string.h>

#include <json-glib/json-glib.h>

#include "kp-refresh-private.h"
#include "codec/kp-json-guard.h"
#include "wire/kp-wire-json.h"

/**
 * kp_refresh_parse_price:
 * @text: a decimal number, such as "0.0000025" or "2.5e-6"
 * @shift: the power of ten to multiply it by (6: per token → per million)
 * @usd: (out): the result
 *
 * Scales the decimal text itself and converts once, so the result is the
 * double nearest to the exact value: "0.0000025" × 10⁶ is exactly 2.5, with
 * none of the noise of multiplying a rounded double.
 *
 * Returns: whether @text is a number that is not negative
 */
gboolean
kp_refresh_parse_price (const char *text,
                        int         shift,
                        double     *usd)
{
  g_autofree char *scaled = NULL;
  const char *p = text;
  const char *mantissa_end;
  gint64 exponent = 0;
  gboolean digits = FALSE;
  char *end = NULL;
  double value;

  g_return_val_if_fail (text != NULL, FALSE);
  g_return_val_if_fail (usd != NULL, FALSE);

  if (*p == '+')
    p++;
  for (; g_ascii_isdigit (*p); p++)
    digits = TRUE;
  if (*p == '.')
    for (p++; g_ascii_isdigit (*p); p++)
      digits = TRUE;
  if (!digits)
    return FALSE;
  mantissa_end = p;

  if (*p == 'e' || *p == 'E')
    {
      if (!g_ascii_string_to_signed (p + 1, 10, -400, 400, &exponent, NULL))
        return FALSE;
    }
  else if (*p != '\0')
    return FALSE;

  scaled = g_strdup_printf ("%.*se%d", (int)(mantissa_end - text), text, (int)exponent + shift);
  value = g_ascii_strtod (scaled, &end);
  if (end == NULL || *end != '\0' || !isfinite (value) || value < 0)
    return FALSE;

  *usd = value;
  return TRUE;
}

/* A price member that may be a number or a decimal string; -1 when absent,
 * negative (OpenRouter's "-1" means "varies") or not a number.
 */
static double
get_price (JsonObject *object,
           const char *member,
           int         shift)
{
  JsonNode *node = object ? json_object_get_member (object, member) : NULL;
  double value = -1;
  GType type;

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node))
    return -1;

  type = json_node_get_value_type (node);
  if (type == G_TYPE_STRING)
    {
      if (!kp_refresh_parse_price (json_node_get_string (node), shift, &value))
        return -1;
    }
  else if (type == G_TYPE_DOUBLE || type == G_TYPE_INT64)
    {
      double number = json_node_get_double (node);
      char text[G_ASCII_DTOSTR_BUF_SIZE];

      if (!(number >= 0) || !isfinite (number))
        return -1;
      /* The shortest text that gives the number back, then scaled exactly. */
      g_ascii_formatd (text, sizeof text, "%.15g", number);
      if (g_ascii_strtod (text, NULL) != number)
        g_ascii_formatd (text, sizeof text, "%.17g", number);
      if (!kp_refresh_parse_price (text, shift, &value))
        return -1;
    }

  return value <= 1e6 ? value : -1;
}

static JsonObject *
get_object (JsonObject *object,
            const char *member)
{
  JsonNode *node = object ? json_object_get_member (object, member) : NULL;

  return node && JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
}

static gint64
get_context (JsonObject *model)
{
  static const char *members[] = { "context_length", "context_window", "max_context_length",
                                   "inputTokenLimit", NULL };
  JsonObject *metadata = get_object (model, "metadata");

  for (guint i = 0; members[i] != NULL; i++)
    for (JsonObject *object = model; object != NULL; object = object == model ? metadata : NULL)
      {
        JsonNode *node = json_object_get_member (object, members[i]);

        if (node != NULL && JSON_NODE_HOLDS_VALUE (node) &&
            json_node_get_value_type (node) == G_TYPE_INT64 && json_node_get_int (node) > 0)
          return json_node_get_int (node);
      }
  return 0;
}

/* The first price of @names that @pricing gives. */
static double
first_price (JsonObject         *pricing,
             const char * const *names,
             int                 shift)
{
  for (guint i = 0; names[i] != NULL; i++)
    {
      double price = get_price (pricing, names[i], shift);

      if (price >= 0)
        return price;
    }
  return -1;
}

static void
read_prices (JsonObject    *model,
             KpPriceFormat  format,
             KpLiveModel   *out)
{
  static const char *or_input[] = { "prompt", NULL };
  static const char *or_output[] = { "completion", NULL };
  static const char *or_cached[] = { "input_cache_read", NULL };
  static const char *pm_input[] = { "input", "input_tokens", NULL };
  static const char *pm_output[] = { "output", "output_tokens", NULL };
  static const char *pm_cached[] = { "cached_input", "cache_read", "cache_read_tokens", NULL };
  JsonObject *pricing;

  out->input = out->output = out->cached_input = -1;

  switch (format)
    {
    case KP_PRICES_FREE:
      out->input = out->output = out->cached_input = 0;
      return;

    case KP_PRICES_OPENROUTER:
      pricing = get_object (model, "pricing");
      out->input = first_price (pricing, or_input, 6);
      out->output = first_price (pricing, or_output, 6);
      out->cached_input = first_price (pricing, or_cached, 6);
      break;

    case KP_PRICES_PER_MILLION:
      pricing = get_object (model, "pricing");
      if (pricing == NULL)
        pricing = get_object (get_object (model, "metadata"), "pricing");
      out->input = first_price (pricing, pm_input, 0);
      out->output = first_price (pricing, pm_output, 0);
      out->cached_input = first_price (pricing, pm_cached, 0);
      break;

    case KP_PRICES_NONE:
    default:
      return;
    }

  /* Half a price is no price. */
  if (out->input < 0 || out->output < 0)
    out->input = out->output = out->cached_input = -1;
}

/**
 * kp_refresh_parse_models:
 * @body: a model list: `{"data": [...]}` or a bare array (Together)
 * @format: how the list gives prices
 * @error: a location for a #GError
 *
 * Safe to call from any thread.
 *
 * Returns: (transfer full) (element-type KpLiveModel): the models, in the
 *   list's order, or %NULL with @error set when the body is not a model list
 */
GArray *
kp_refresh_parse_models (GBytes         *body,
                         KpPriceFormat   format,
                         GError        **error)
{
  g_autoptr(JsonParser) parser = json_parser_new_immutable ();
  g_autoptr(GArray) models = g_array_new (FALSE, TRUE, sizeof (KpLiveModel));
  JsonNode *root;
  JsonArray *list = NULL;
  gboolean named = FALSE;   /* Gemini's: "name", not "id" */
  gsize len;
  const char *data = g_bytes_get_data (body, &len);

  g_array_set_clear_func (models, kp_live_model_clear);

  if (!kp_json_parser_load_from_data (parser, data, len, error))
    {
      g_prefix_error (error, "the model list %s: ",
                      g_error_matches (*error, KP_JSON_ERROR, KP_JSON_ERROR_TOO_DEEP) ? "is refused"
                                                                                      : "is not JSON");
      return NULL;
    }

  root = json_parser_get_root (parser);
  if (root != NULL && JSON_NODE_HOLDS_ARRAY (root))
    list = json_node_get_array (root);
  else if (root != NULL && JSON_NODE_HOLDS_OBJECT (root))
    {
      JsonNode *node = json_object_get_member (json_node_get_object (root), "data");

      /* Gemini's own list: {"models": [{"name": "models/…"}]}. */
      if (node == NULL)
        {
          node = json_object_get_member (json_node_get_object (root), "models");
          named = TRUE;
        }
      if (node != NULL && JSON_NODE_HOLDS_ARRAY (node))
        list = json_node_get_array (node);
    }
  if (list == NULL)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                           "the answer is not a model list (no “data” list)");
      return NULL;
    }

  for (guint i = 0; i < json_array_get_length (list); i++)
    {
      JsonNode *element = json_array_get_element (list, i);
      JsonObject *object;
      const char *id;
      KpLiveModel model = { 0 };

      if (!JSON_NODE_HOLDS_OBJECT (element))
        continue;
      object = json_node_get_object (element);
      id = kp_json_string (object, "id");
      if (id == NULL && named)
        id = kp_json_string (object, "name");
      if (id == NULL || *id == '\0')
        continue;

      model.upstream_id = g_strdup (id);
      model.context = get_context (object);
      read_prices (object, format, &model);
      g_array_append_val (models, model);
    }

  return g_steal_pointer (&models);
}

static gboolean
get_amount (JsonObject *object,
            const char *member,
            double     *out)
{
  JsonNode *node = object ? json_object_get_member (object, member) : NULL;
  GType type;

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node))
    return FALSE;
  type = json_node_get_value_type (node);
  if (type == G_TYPE_DOUBLE || type == G_TYPE_INT64)
    *out = json_node_get_double (node);
  else if (type == G_TYPE_STRING)
    {
      const char *text = json_node_get_string (node);
      char *end = NULL;

      *out = g_ascii_strtod (text, &end);
      if (end == text || *end != '\0')
        return FALSE;
    }
  else
    return FALSE;
  return isfinite (*out);
}

/* Reads a balance answer into @balance, or says what is wrong with it. */
void
kp_refresh_parse_balance (Balance         *balance,
                          KpBalanceFormat  format,
                          GBytes          *body)
{
  g_autoptr(JsonParser) parser = json_parser_new_immutable ();
  g_autoptr(GError) error = NULL;
  JsonObject *root = NULL;
  gsize len;
  const char *data = g_bytes_get_data (body, &len);

  if (!kp_json_parser_load_from_data (parser, data, len, &error))
    {
      balance->error = g_strdup_printf ("the balance %s: %s",
                                        error->domain == KP_JSON_ERROR ? "is refused" : "is not JSON",
                                        error->message);
      return;
    }
  /* An empty or whitespace-only answer parses to no root at all. */
  if (json_parser_get_root (parser) != NULL && JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
    root = json_node_get_object (json_parser_get_root (parser));

  if (format == KP_BALANCE_OPENROUTER_CREDITS)
    {
      JsonObject *credits = get_object (root, "data");
      double total = 0, usage = 0;

      if (!get_amount (credits, "total_credits", &total) ||
          !get_amount (credits, "total_usage", &usage))
        {
          balance->error = g_strdup ("the credits answer has no total_credits and total_usage");
          return;
        }
      /* Cents are what matter; this keeps 10 − 9.7 from reading 0.30000000000000071. */
      balance->balance = round ((total - usage) * 1e6) / 1e6;
      balance->currency = g_strdup ("USD");
      balance->available = TRUE;
      balance->has_balance = TRUE;
    }
  else if (format == KP_BALANCE_DEEPSEEK)
    {
      JsonNode *node = root ? json_object_get_member (root, "balance_infos") : NULL;
      JsonArray *infos = node && JSON_NODE_HOLDS_ARRAY (node) ? json_node_get_array (node) : NULL;
      JsonObject *chosen = NULL;

      for (guint i = 0; infos != NULL && i < json_array_get_length (infos); i++)
        {
          JsonNode *element = json_array_get_element (infos, i);
          JsonObject *info = JSON_NODE_HOLDS_OBJECT (element) ? json_node_get_object (element) : NULL;

          if (info == NULL)
            continue;
          if (chosen == NULL ||
              g_strcmp0 (kp_json_string (info, "currency"), "USD") == 0)
            chosen = info;
        }

      if (chosen == NULL || !get_amount (chosen, "total_balance", &balance->balance))
        {
          balance->error = g_strdup ("the balance answer has no balance_infos total_balance");
          return;
        }
      balance->currency = g_strdup (kp_json_string_or (chosen, "currency", "?"));
      balance->available = kp_json_bool_or (root, "is_available", TRUE);
      balance->has_balance = TRUE;
    }
}
