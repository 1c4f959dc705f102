/* kp-planner.c: the ranked routes for one request, and why others are left out
 *
 * Planning is a pure function of the offerings, the keys, the providers
 * switched off, the offerings that rest, the time and a rotation counter:
 * it reads them and changes nothing, so the gateway can call it on every
 * request and the tests can call it without a server.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include <string.h>

#include "kp-planner.h"

const char *
kp_exclusion_kind_to_string (KpExclusionKind kind)
{
  switch (kind)
    {
    case KP_EXCLUSION_PINNED:
      return "pinned";
    case KP_EXCLUSION_PROVIDER_OFF:
      return "off";
    case KP_EXCLUSION_KEY_OFF:
      return "key-off";
    case KP_EXCLUSION_NO_KEY:
      return "no-key";
    case KP_EXCLUSION_COOLING:
      return "cooling";
    case KP_EXCLUSION_EXHAUSTED:
      return "exhausted";
    case KP_EXCLUSION_INVALID:
      return "invalid";
    case KP_EXCLUSION_NEEDS_USER:
      return "needs-user";
    case KP_EXCLUSION_MISSING:
      return "missing";
    case KP_EXCLUSION_BUSY:
      return "busy";
    default:
      g_return_val_if_reached ("unknown");
    }
}

/**
 * kp_planner_resolve:
 * @catalog: the catalog
 * @model: what the client asked for: a canonical “vendor/model” (any case),
 *   an alias, a bare name that names one model, or a pin “provider:model”
 *   where the model may also be that provider's own name for it
 * @providers: (inout) (nullable): the providers the request may use; a pin
 *   narrows it to its provider
 *
 * Returns: (transfer container) (nullable) (element-type KpOffering): the
 *   offerings of the model, or %NULL when nobody serves it
 */
GPtrArray *
kp_planner_resolve (KpCatalog  *catalog,
                    const char *model,
                    GStrv      *providers)
{
  const char *colon;
  GPtrArray *offerings;

  g_return_val_if_fail (KP_IS_CATALOG (catalog), NULL);
  g_return_val_if_fail (model != NULL, NULL);

  /* Only a known provider id before the colon makes a pin: model names such
   * as "qwen2.5-coder:7b" or "…:free" have colons of their own.
   */
  colon = strchr (model, ':');
  if (colon != NULL)
    {
      g_autofree char *provider_id = g_strndup (model, colon - model);
      KpProvider *provider = kp_catalog_get_provider (catalog, provider_id);
      const char *name = colon + 1;

      if (provider != NULL)
        {
          if (providers != NULL)
            {
              g_strfreev (*providers);
              *providers = g_strdupv ((char *[]) { provider_id, NULL });
            }

          offerings = kp_catalog_lookup (catalog, name);
          if (offerings != NULL)
            return g_ptr_array_ref (offerings);

          for (guint i = 0; i < kp_provider_get_n_offerings (provider); i++)
            {
              const KpOffering *offering = kp_provider_get_offering (provider, i);

              if (g_ascii_strcasecmp (offering->upstream_id, name) == 0)
                {
                  GPtrArray *single = g_ptr_array_new ();

                  g_ptr_array_add (single, (gpointer)offering);
                  return single;
                }
            }
          return NULL;
        }
    }

  offerings = kp_catalog_lookup (catalog, model);
  return offerings ? g_ptr_array_ref (offerings) : NULL;
}

static void
exclusion_free (gpointer data)
{
  KpExclusion *exclusion = data;

  g_free (exclusion->provider_id);
  g_free (exclusion->reason);
  g_free (exclusion);
}

static void G_GNUC_PRINTF (6, 7)
exclude (KpPlan          *plan,
         const char      *provider_id,
         gint64           credential_id,
         KpExclusionKind  kind,
         gint64           until,
         const char      *format,
         ...)
{
  KpExclusion *exclusion = g_new0 (KpExclusion, 1);
  va_list args;

  va_start (args, format);
  exclusion->reason = g_strdup_vprintf (format, args);
  va_end (args);
  exclusion->provider_id = g_strdup (provider_id);
  exclusion->credential_id = credential_id;
  exclusion->kind = kind;
  exclusion->until = until;
  g_ptr_array_add (plan->excluded, exclusion);
}

/* Says why a key that cannot be used now is left out. */
static void
exclude_credential (KpPlan       *plan,
                    KpCredential *credential,
                    gint64        now)
{
  const char *provider_id = kp_credential_get_provider_id (credential);
  gint64 id = kp_credential_get_id (credential);
  const char *label = kp_credential_get_label (credential);
  const char *last_error = kp_credential_get_last_error (credential);
  const char *sep = last_error ? ": " : "";
  KpCredentialState state = kp_credential_get_state (credential, now);
  gint64 until = kp_credential_get_state_until (credential);
  g_autofree char *when = until > 0 ? kp_format_time_of_day (until) : NULL;

  if (last_error == NULL)
    last_error = "";

  if (!kp_credential_get_enabled (credential))
    exclude (plan, provider_id, id, KP_EXCLUSION_KEY_OFF, 0,
             "key %" G_GINT64_FORMAT " “%s” is switched off", id, label);
  else if (kp_credential_get_secret (credential) == NULL)
    exclude (plan, provider_id, id, KP_EXCLUSION_NO_KEY, 0,
             "key %" G_GINT64_FORMAT " “%s” is not available (keyring locked or unavailable)",
             id, label);
  else if (state == KP_CREDENTIAL_OK && kp_credential_get_token (credential) == NULL)
    exclude (plan, provider_id, id, KP_EXCLUSION_NO_KEY, 0,
             "key %" G_GINT64_FORMAT " “%s” is getting a new access token", id, label);
  else if (state == KP_CREDENTIAL_COOLING)
    exclude (plan, provider_id, id, KP_EXCLUSION_COOLING, until,
             "key %" G_GINT64_FORMAT " “%s” is cooling down until %s%s%s", id, label,
             when ? when : "?", sep, last_error);
  else if (state == KP_CREDENTIAL_EXHAUSTED)
    exclude (plan, provider_id, id, KP_EXCLUSION_EXHAUSTED, until,
             "key %" G_GINT64_FORMAT " “%s” is out of quota%s%s%s%s", id, label,
             when ? " until " : "", when ? when : "", sep, last_error);
  else if (state == KP_CREDENTIAL_INVALID)
    exclude (plan, provider_id, id, KP_EXCLUSION_INVALID, 0,
             "key %" G_GINT64_FORMAT " “%s” was refused by the provider%s%s", id, label,
             sep, last_error);
  else if (state == KP_CREDENTIAL_NEEDS_USER)
    exclude (plan, provider_id, id, KP_EXCLUSION_NEEDS_USER, 0,
             "account %" G_GINT64_FORMAT " “%s” waits for its owner%s%s (then “keypool keys "
             "reset %" G_GINT64_FORMAT "”)", id, label,
             kp_credential_get_user_url (credential) ? " at " : "",
             kp_credential_get_user_url (credential) ? kp_credential_get_user_url (credential) : "",
             id);
}

static int
compare_routes (gconstpointer a,
                gconstpointer b)
{
  const KpRoute *ra = a;
  const KpRoute *rb = b;
  gboolean pa = ra->expected_usd >= 0;
  gboolean pb = rb->expected_usd >= 0;
  gboolean sa = kp_provider_get_subscription (ra->provider);
  gboolean sb = kp_provider_get_subscription (rb->provider);
  guint fa, fb;

  /* A subscription's quota is paid already: used first while it lasts (an
   * exhausted or cooling account is not a route at all).
   */
  if (sa != sb)
    return sa ? -1 : 1;

  /* Unpriced offerings come after every priced one: never treated as free. */
  if (pa != pb)
    return pa ? -1 : 1;
  if (pa && ra->expected_usd != rb->expected_usd)
    return ra->expected_usd < rb->expected_usd ? -1 : 1;

  /* Then health: a key that has been failing goes after one that has not. */
  fa = ra->credential ? kp_credential_get_failures (ra->credential) : 0;
  fb = rb->credential ? kp_credential_get_failures (rb->credential) : 0;
  return fa < fb ? -1 : fa > fb ? 1 : 0;
}

static void
route_clear (gpointer data)
{
  KpRoute *route = data;

  g_clear_object (&route->credential);
  g_clear_object (&route->provider);
}

/* Whether the offering itself rests (its provider said it lacks the model,
 * or is overloaded); if so, it is excluded and TRUE returned.
 */
static gboolean
exclude_resting_offering (KpPlan              *plan,
                          const KpPlanContext *context,
                          const KpOffering    *offering)
{
  const char *provider_id = kp_provider_get_id (offering->provider);
  gint64 missing, busy;
  g_autofree char *when = NULL;

  if (context->health == NULL)
    return FALSE;

  missing = kp_key_health_get_missing_until (context->health, offering);
  if (missing > context->now)
    {
      when = kp_format_time_of_day (missing);
      exclude (plan, provider_id, 0, KP_EXCLUSION_MISSING, missing,
               "said it does not have this model; not tried again until %s", when);
      return TRUE;
    }

  busy = kp_key_health_get_busy_until (context->health, offering);
  if (busy > context->now)
    {
      when = kp_format_time_of_day (busy);
      exclude (plan, provider_id, 0, KP_EXCLUSION_BUSY, busy,
               "said it is overloaded; not tried again until %s", when);
      return TRUE;
    }

  return FALSE;
}

/* Adds a route for each usable key of the offering's provider, and says why
 * the others are left out.
 */
static void
add_key_routes (KpPlan              *plan,
                const KpPlanContext *context,
                const KpOffering    *offering,
                double               base)
{
  KpProvider *provider = offering->provider;
  const char *provider_id = kp_provider_get_id (provider);
  const char * const *env;
  guint keys = 0;

  for (guint j = 0; context->credentials != NULL && j < context->credentials->len; j++)
    {
      KpCredential *credential = g_ptr_array_index (context->credentials, j);

      if (!g_str_equal (kp_credential_get_provider_id (credential), provider_id))
        continue;
      keys++;
      if (kp_credential_is_usable (credential, context->now))
        {
          KpRoute route = {
            offering, g_object_ref (credential),
            base >= 0 ? base * kp_credential_get_multiplier (credential) : -1, 0,
            g_object_ref (provider)
          };

          g_array_append_val (plan->routes, route);
        }
      else
        exclude_credential (plan, credential, context->now);
    }

  if (keys > 0)
    return;

  env = kp_provider_get_env (provider);
  exclude (plan, provider_id, 0, KP_EXCLUSION_NO_KEY, 0,
           "no key (add one with “keypool keys add %s”%s%s)", provider_id,
           env && env[0] ? " or set " : "", env && env[0] ? env[0] : "");
}

/**
 * kp_planner_plan:
 * @context: the keys, providers switched off, resting offerings and time
 * @offerings: (element-type KpOffering): the offerings of one model
 * @request: the request's size and restrictions
 *
 * Expands each offering of an enabled provider by its usable keys, orders
 * the routes by the request's expected cost (input and output price × the
 * key's multiplier), then health, and lets routes that tie take turns at the
 * front (by @context's rotation) so that load spreads over equal keys.
 * Everything left out is listed with the reason.
 *
 * Returns: (transfer full): the plan
 */
KpPlan *
kp_planner_plan (const KpPlanContext  *context,
                 GPtrArray            *offerings,
                 const KpRouteRequest *request)
{
  KpPlan *plan = g_new0 (KpPlan, 1);
  guint run = 1;

  plan->routes = g_array_new (FALSE, TRUE, sizeof (KpRoute));
  g_array_set_clear_func (plan->routes, route_clear);
  plan->excluded = g_ptr_array_new_with_free_func (exclusion_free);

  g_return_val_if_fail (context != NULL, plan);
  g_return_val_if_fail (offerings != NULL, plan);
  g_return_val_if_fail (request != NULL, plan);

  for (guint i = 0; i < offerings->len; i++)
    {
      const KpOffering *offering = g_ptr_array_index (offerings, i);
      KpProvider *provider = offering->provider;
      const char *provider_id = kp_provider_get_id (provider);
      double base = -1;

      if (request->providers != NULL && !g_strv_contains (request->providers, provider_id))
        {
          exclude (plan, provider_id, 0, KP_EXCLUSION_PINNED, 0,
                   "not among the providers the request named");
          continue;
        }
      if (context->disabled != NULL && g_hash_table_contains (context->disabled, provider_id))
        {
          exclude (plan, provider_id, 0, KP_EXCLUSION_PROVIDER_OFF, 0, "provider is switched off");
          continue;
        }
      if (exclude_resting_offering (plan, context, offering))
        continue;

      if (kp_offering_has_price (offering))
        base = (request->prompt_tokens * offering->input +
                request->output_tokens * offering->output) / 1e6;

      if (kp_provider_get_requires_key (provider))
        {
          add_key_routes (plan, context, offering, base);
        }
      else
        {
          KpRoute route = { offering, NULL, base, 0, g_object_ref (provider) };

          g_array_append_val (plan->routes, route);
        }
    }

  g_array_sort (plan->routes, compare_routes);

  /* Rotate the leading run of routes that tie on price and health. */
  while (run < plan->routes->len &&
         compare_routes (&g_array_index (plan->routes, KpRoute, 0),
                         &g_array_index (plan->routes, KpRoute, run)) == 0)
    run++;
  if (run > 1)
    {
      guint shift = context->rotation % run;
      g_autofree KpRoute *copy = g_memdup2 (plan->routes->data, run * sizeof (KpRoute));

      for (guint i = 0; i < run; i++)
        g_array_index (plan->routes, KpRoute, i) = copy[(i + shift) % run];
      plan->tied = run;
    }

  for (guint i = 0; i < plan->routes->len; i++)
    g_array_index (plan->routes, KpRoute, i).rank = i + 1;

  return plan;
}

void
kp_plan_free (KpPlan *plan)
{
  if (plan == NULL)
    return;
  g_clear_pointer (&plan->routes, g_array_unref);
  g_clear_pointer (&plan->excluded, g_ptr_array_unref);
  g_free (plan);
}

/* The earlier of two times, where 0 is “no time”. */
static gint64
earlier (gint64 a,
         gint64 b)
{
  if (a == 0 || (b > 0 && b < a))
    return b;
  return a;
}

/**
 * kp_plan_describe_empty:
 *
 * Returns: (transfer full): what is missing for a plan without routes, as
 *   one sentence a person can act on
 */
char *
kp_plan_describe_empty (KpPlan     *plan,
                        const char *model)
{
  g_autoptr(GString) no_key = g_string_new (NULL);
  g_autofree char *when = NULL;
  gint64 soonest = 0;
  guint waiting = 0, busy = 0, refused = 0, provider_off = 0, key_off = 0, pinned = 0;
  const char *owner = NULL;

  g_return_val_if_fail (plan != NULL, NULL);
  g_return_val_if_fail (model != NULL, NULL);

  for (guint i = 0; i < plan->excluded->len; i++)
    {
      KpExclusion *exclusion = g_ptr_array_index (plan->excluded, i);

      switch (exclusion->kind)
        {
        case KP_EXCLUSION_NO_KEY:
          g_string_append_printf (no_key, "%s%s: %s", no_key->len ? "; " : "",
                                  exclusion->provider_id, exclusion->reason);
          break;
        case KP_EXCLUSION_COOLING:
        case KP_EXCLUSION_EXHAUSTED:
        case KP_EXCLUSION_MISSING:
          waiting++;
          soonest = earlier (soonest, exclusion->until);
          break;
        case KP_EXCLUSION_BUSY:
          busy++;
          soonest = earlier (soonest, exclusion->until);
          break;
        case KP_EXCLUSION_INVALID:
          refused++;
          break;
        case KP_EXCLUSION_NEEDS_USER:
          if (owner == NULL)
            owner = exclusion->reason;
          break;
        case KP_EXCLUSION_PINNED:
          pinned++;
          break;
        case KP_EXCLUSION_KEY_OFF:
          key_off++;
          break;
        case KP_EXCLUSION_PROVIDER_OFF:
        default:
          provider_off++;
          break;
        }
    }

  if (soonest > 0)
    when = kp_format_time_of_day (soonest);

  if (waiting > 0)
    return g_strdup_printf ("Every key that serves “%s” is resting after errors (%u cooling down "
                            "or out of quota%s%s%s). %s%s%s“keypool route %s” shows each one.",
                            model, waiting, busy ? ", some providers overloaded" : "",
                            refused ? ", some refused" : "",
                            no_key->len ? "; other providers have no key" : "",
                            when ? "The first is back at " : "", when ? when : "",
                            when ? ". " : "", model);
  if (busy > 0)
    return g_strdup_printf ("Every provider serving “%s” said it is overloaded, so each rests a "
                            "few seconds. %s%s%sTry again then; “keypool route %s” shows each one.",
                            model, when ? "The first is back at " : "", when ? when : "",
                            when ? ". " : "", model);
  /* Only its owner can help: say where. */
  if (owner != NULL)
    return g_strdup_printf ("Nothing can serve “%s” now: %s.", model, owner);
  if (refused > 0)
    return g_strdup_printf ("Every key that serves “%s” was refused by its provider. Replace "
                            "them with “keypool keys add”; “keypool keys list” shows the errors.",
                            model);
  if (no_key->len > 0)
    return g_strdup_printf ("No key for any provider serving “%s”. %s.", model, no_key->str);
  if (key_off > 0 && provider_off == 0)
    return g_strdup_printf ("Every key that serves “%s” is switched off. Turn one on in Keypool’s "
                            "window, on the Providers page.", model);
  if (pinned > 0 && provider_off == 0)
    return g_strdup_printf ("None of the providers the request named serves “%s”.", model);
  return g_strdup_printf ("Every provider serving “%s” is switched off. Turn one on with "
                          "“keypool providers enable ID”.", model);
}
