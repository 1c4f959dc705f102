/* kp-usage.c: token usage and what it cost
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include <math.h>

#include "kp-usage.h"

/* A count as a provider reports it, within 0 … KP_USAGE_MAX_TOKENS: a
 * double outside gint64's range is undefined behaviour to cast.
 */
static gint64
get_count (JsonObject *object,
           const char *member)
{
  JsonNode *node;
  double value;

  if (object == NULL)
    return 0;
  node = json_object_get_member (object, member);
  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node))
    return 0;
  if (json_node_get_value_type (node) == G_TYPE_INT64)
    return CLAMP (json_node_get_int (node), 0, KP_USAGE_MAX_TOKENS);
  if (json_node_get_value_type (node) != G_TYPE_DOUBLE)
    return 0;
  value = json_node_get_double (node);
  if (!(value > 0))
    return 0;  /* negative or NaN */
  if (value >= (double)KP_USAGE_MAX_TOKENS)
    return KP_USAGE_MAX_TOKENS;
  return (gint64)value;
}

/* nano-USD, rounded, within 0 … KP_USAGE_MAX_COST_NANO. */
static gint64
clamp_nano (double nano)
{
  if (!(nano > 0))
    return 0;
  if (nano >= (double)KP_USAGE_MAX_COST_NANO)
    return KP_USAGE_MAX_COST_NANO;
  return (gint64)llround (nano);
}

static JsonObject *
get_object (JsonObject *object,
            const char *member)
{
  JsonNode *node = json_object_get_member (object, member);

  return node != NULL && JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
}

static gboolean
get_usd (JsonObject *object,
         const char *member,
         gint64     *nano)
{
  JsonNode *node = json_object_get_member (object, member);
  double usd;

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node))
    return FALSE;

  switch (json_node_get_value_type (node))
    {
    case G_TYPE_DOUBLE:
    case G_TYPE_INT64:
      usd = json_node_get_double (node);
      break;
    case G_TYPE_STRING:
      usd = g_ascii_strtod (json_node_get_string (node), NULL);
      break;
    default:
      return FALSE;
    }

  if (!isfinite (usd) || usd < 0)
    return FALSE;

  *nano = clamp_nano (usd * 1e9);
  return TRUE;
}

/**
 * kp_usage_parse_openai:
 * @usage: the usage to fill
 * @usage_object: an OpenAI-style `usage` object
 *
 * Reads token counts, including the cached and reasoning details, and a cost
 * the provider reports (OpenRouter's `cost`, DeepInfra's `estimated_cost`).
 * A later call replaces what an earlier one read: the last usage a stream
 * reports is the one that counts.
 *
 * Returns: %TRUE if @usage_object held usage
 */
gboolean
kp_usage_parse_openai (KpUsage    *usage,
                       JsonObject *usage_object)
{
  JsonObject *prompt_details;
  JsonObject *completion_details;

  g_return_val_if_fail (usage != NULL, FALSE);

  if (usage_object == NULL)
    return FALSE;

  *usage = (KpUsage) { 0 };
  usage->known = TRUE;
  usage->prompt_tokens = get_count (usage_object, "prompt_tokens");
  usage->completion_tokens = get_count (usage_object, "completion_tokens");

  prompt_details = get_object (usage_object, "prompt_tokens_details");
  completion_details = get_object (usage_object, "completion_tokens_details");
  usage->cached_tokens = get_count (prompt_details, "cached_tokens");
  if (usage->cached_tokens == 0)
    usage->cached_tokens = get_count (usage_object, "prompt_cache_hit_tokens");
  usage->cached_tokens = MIN (usage->cached_tokens, usage->prompt_tokens);
  usage->cache_write_tokens = get_count (prompt_details, "cache_write_tokens");
  usage->cache_write_tokens = MIN (usage->cache_write_tokens,
                                   usage->prompt_tokens - usage->cached_tokens);
  usage->reasoning_tokens = get_count (completion_details, "reasoning_tokens");

  usage->has_reported_cost = get_usd (usage_object, "cost", &usage->reported_cost_nano) ||
                             get_usd (usage_object, "estimated_cost", &usage->reported_cost_nano);

  return TRUE;
}

static gboolean
has_count (JsonObject *object,
           const char *member)
{
  JsonNode *node = json_object_get_member (object, member);

  return node != NULL && JSON_NODE_HOLDS_VALUE (node) &&
         (json_node_get_value_type (node) == G_TYPE_INT64 ||
          json_node_get_value_type (node) == G_TYPE_DOUBLE);
}

/**
 * kp_usage_parse_anthropic:
 * @usage: the usage to update
 * @usage_object: an Anthropic `usage` object, from a message, a
 *   `message_start` or a `message_delta` event
 *
 * Anthropic counts input without the cache: the prompt is `input_tokens` +
 * `cache_creation_input_tokens` + `cache_read_input_tokens`. In a stream the
 * input and cache counts come with `message_start` and the output count,
 * cumulative, with each `message_delta`; so only the counts present in
 * @usage_object replace what @usage held.
 *
 * Returns: %TRUE if @usage_object held any count
 */
gboolean
kp_usage_parse_anthropic (KpUsage    *usage,
                          JsonObject *usage_object)
{
  gboolean any = FALSE;
  gint64 uncached;

  g_return_val_if_fail (usage != NULL, FALSE);

  if (usage_object == NULL)
    return FALSE;

  /* prompt_tokens is kept as the sum; take the uncached part back out. */
  uncached = usage->prompt_tokens - usage->cached_tokens - usage->cache_write_tokens;

  if (has_count (usage_object, "input_tokens"))
    {
      uncached = get_count (usage_object, "input_tokens");
      any = TRUE;
    }
  if (has_count (usage_object, "cache_read_input_tokens"))
    {
      usage->cached_tokens = get_count (usage_object, "cache_read_input_tokens");
      any = TRUE;
    }
  if (has_count (usage_object, "cache_creation_input_tokens"))
    {
      usage->cache_write_tokens = get_count (usage_object, "cache_creation_input_tokens");
      any = TRUE;
    }
  if (has_count (usage_object, "output_tokens"))
    {
      usage->completion_tokens = get_count (usage_object, "output_tokens");
      any = TRUE;
    }

  if (!any)
    return FALSE;

  usage->known = TRUE;
  usage->prompt_tokens = MAX (uncached, 0) + usage->cached_tokens + usage->cache_write_tokens;
  return TRUE;
}

/**
 * kp_usage_get_cost:
 * @usage: the usage of one request
 * @offering: (nullable): the offering that served it
 * @cost_nano: (out): the cost in nano-USD; 0 when the source is unknown or
 *   a subscription
 *
 * Returns: where the cost comes from
 */
KpCostSource
kp_usage_get_cost (const KpUsage    *usage,
                   const KpOffering *offering,
                   gint64           *cost_nano)
{
  double nano;
  double cached_price;
  double write_price;
  gint64 uncached;

  g_return_val_if_fail (usage != NULL, KP_COST_UNKNOWN);
  g_return_val_if_fail (cost_nano != NULL, KP_COST_UNKNOWN);

  *cost_nano = 0;

  /* A subscription's quota is paid already: whatever the tokens, this
   * request spent nothing at the margin.
   */
  if (offering != NULL && offering->provider != NULL &&
      kp_provider_get_subscription (offering->provider))
    return KP_COST_SUBSCRIPTION;

  if (usage->has_reported_cost)
    {
      *cost_nano = usage->reported_cost_nano;
      return KP_COST_REPORTED;
    }

  if (!usage->known || offering == NULL || !kp_offering_has_price (offering))
    return KP_COST_UNKNOWN;

  /* USD per million tokens is nano-USD per thousand tokens. */
  cached_price = offering->cached_input >= 0 ? offering->cached_input : offering->input;
  write_price = offering->cache_write >= 0 ? offering->cache_write : offering->input;
  uncached = MAX (usage->prompt_tokens - usage->cached_tokens - usage->cache_write_tokens, 0);
  nano = (uncached * offering->input +
          usage->cached_tokens * cached_price +
          usage->cache_write_tokens * write_price +
          usage->completion_tokens * offering->output) * 1000.0;

  *cost_nano = clamp_nano (nano);
  return usage->estimated ? KP_COST_ESTIMATED : KP_COST_COMPUTED;
}

const char *
kp_cost_source_to_string (KpCostSource source)
{
  switch (source)
    {
    case KP_COST_REPORTED:
      return "reported";
    case KP_COST_COMPUTED:
      return "computed";
    case KP_COST_ESTIMATED:
      return "estimated";
    case KP_COST_SUBSCRIPTION:
      return "subscription";
    case KP_COST_UNKNOWN:
    default:
      return "unknown";
    }
}
