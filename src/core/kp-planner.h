/* kp-planner.h: the ranked routes for one request, and why others are left out
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <glib-object.h>

#include "kp-catalog.h"
#include "kp-credential.h"
#include "kp-key-health.h"
#include "kp-provider.h"

G_BEGIN_DECLS

/* One way to serve a request: an offering, and the key to use (none for a
 * provider that needs no key), with what the request is expected to cost.
 */
typedef struct
{
  const KpOffering *offering;
  KpCredential     *credential;
  double            expected_usd;  /* < 0 when the offering has no price */
  guint             rank;          /* 1 = first choice */
  KpProvider       *provider;      /* holds the offering: a refresh may replace it meanwhile */
} KpRoute;

/* Why a candidate is not a route now. */
typedef enum
{
  KP_EXCLUSION_PINNED,        /* the request named other providers */
  KP_EXCLUSION_PROVIDER_OFF,  /* the user switched the provider off */
  KP_EXCLUSION_KEY_OFF,       /* the user switched the key off */
  KP_EXCLUSION_NO_KEY,        /* no key, or its secret is not at hand */
  KP_EXCLUSION_COOLING,       /* the key is rate limited or its upstream was down */
  KP_EXCLUSION_EXHAUSTED,     /* the key is out of quota or credit */
  KP_EXCLUSION_INVALID,       /* the provider refused the key */
  KP_EXCLUSION_NEEDS_USER,    /* the account waits for its owner (a page to visit) */
  KP_EXCLUSION_MISSING,       /* the provider said it does not have the model */
  KP_EXCLUSION_BUSY,          /* the provider said it is overloaded */
} KpExclusionKind;

/* A candidate that is not a route now, and why. */
typedef struct
{
  char            *provider_id;
  gint64           credential_id;  /* 0 = about the provider or offering */
  char            *reason;
  gint64           until;          /* unix seconds it may come back; 0 = not by itself */
  KpExclusionKind  kind;
} KpExclusion;

typedef struct
{
  gint64              prompt_tokens;
  gint64              output_tokens;
  const char * const *providers;     /* only these, or NULL for any */
} KpRouteRequest;

typedef struct
{
  GArray    *routes;    /* of KpRoute, best first */
  GPtrArray *excluded;  /* of KpExclusion */
  guint      tied;      /* how many routes at the front tie, and took turns */
} KpPlan;

/* Everything a plan depends on besides the request: planning reads it and
 * changes nothing, so a plan can be made (and tested) without a server.
 */
typedef struct
{
  GPtrArray   *credentials;  /* of KpCredential: every key */
  GHashTable  *disabled;     /* provider ids switched off, or NULL */
  KpKeyHealth *health;       /* offerings that rest, or NULL */
  gint64       now;          /* unix seconds */
  guint        rotation;     /* plans with ties made so far: equal routes take turns */
} KpPlanContext;

GPtrArray   *kp_planner_resolve          (KpCatalog            *catalog,
                                          const char           *model,
                                          GStrv                *providers);
KpPlan      *kp_planner_plan             (const KpPlanContext  *context,
                                          GPtrArray            *offerings,
                                          const KpRouteRequest *request);
char        *kp_plan_describe_empty      (KpPlan               *plan,
                                          const char           *model);
void         kp_plan_free                (KpPlan               *plan);
const char  *kp_exclusion_kind_to_string (KpExclusionKind       kind);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (KpPlan, kp_plan_free)

G_END_DECLS
