/* kp-usage.h: token usage and what it cost
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <json-glib/json-glib.h>

#include "kp-provider.h"

G_BEGIN_DECLS

/* Bounds on what a provider reports, applied before rounding and casts:
 * a trillion tokens, a million dollars for one request.
 */
#define KP_USAGE_MAX_TOKENS    G_GINT64_CONSTANT (1000000000000)
#define KP_USAGE_MAX_COST_NANO G_GINT64_CONSTANT (1000000000000000)

typedef enum
{
  KP_COST_UNKNOWN,    /* no price: shown as unknown, never as $0 */
  KP_COST_REPORTED,   /* the provider said what it charged */
  KP_COST_COMPUTED,   /* reported tokens × list price */
  KP_COST_ESTIMATED,  /* tokens counted or guessed by Keypool */
  KP_COST_SUBSCRIPTION, /* served by a subscription paid already: no spend, never "$0" */
} KpCostSource;

typedef struct
{
  gboolean known;              /* the upstream reported usage */
  gint64   prompt_tokens;      /* includes cached and cache-write tokens, as OpenAI counts */
  gint64   completion_tokens;  /* includes reasoning_tokens */
  gint64   cached_tokens;      /* read from the prompt cache */
  gint64   cache_write_tokens; /* written to the prompt cache (Anthropic) */
  gint64   reasoning_tokens;
  gboolean has_reported_cost;
  gint64   reported_cost_nano; /* nano-USD */
  gboolean estimated;          /* the token counts are Keypool's guess (Kiro counts none) */
  gboolean has_credits;        /* the provider said how many credits it used */
  double   credits;            /* subscription credits the provider said it used (Kiro) */
} KpUsage;

gboolean      kp_usage_parse_openai  (KpUsage          *usage,
                                      JsonObject       *usage_object);
gboolean      kp_usage_parse_anthropic (KpUsage        *usage,
                                      JsonObject       *usage_object);
KpCostSource  kp_usage_get_cost      (const KpUsage    *usage,
                                      const KpOffering *offering,
                                      gint64           *cost_nano);
const char   *kp_cost_source_to_string (KpCostSource    source);

G_END_DECLS
