/* kp-gateway-routes.c: which routes serve, and what failures do to them
 *
 * Part of KpGateway: the model list served to clients (rebuilt only when
 * the catalog or the usable providers change), resolving a model to its
 * offerings, planning a request over the keys as they are now, and
 * noting what a failure, a success or a balance means for a key; and
 * switching providers on and off.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include <string.h>

#include "kp-gateway-internal.h"

/* Models ------------------------------------------------------------------ */

/* The model list changes only when providers or keys do, so it is built then
 * and served from memory.
 */
static gboolean
provider_is_usable (KpProvider *provider,
                    gpointer    user_data)
{
  return kp_gateway_provider_is_usable (user_data, provider);
}

/* The ids of the providers that may serve now: what the model list
 * depends on besides the catalog. A key's state does not change it.
 */
static char *
dup_usable_providers (KpGateway *self)
{
  GPtrArray *providers = kp_catalog_get_providers (self->catalog);
  GString *usable = g_string_new (NULL);

  for (guint i = 0; i < providers->len; i++)
    {
      KpProvider *provider = g_ptr_array_index (providers, i);

      if (kp_gateway_provider_is_usable (self, provider))
        g_string_append_printf (usable, "%s\n", kp_provider_get_id (provider));
    }
  return g_string_free (usable, FALSE);
}

/* Rebuilds the model list only when the catalog or the usable providers
 * changed, not for every failure.
 */
void
kp_gateway_update_models_json (KpGateway *self)
{
  g_autofree char *usable = dup_usable_providers (self);

  if (self->models_json != NULL && !self->catalog_changed &&
      g_strcmp0 (usable, self->models_usable) == 0)
    return;

  g_free (self->models_json);
  self->models_json = kp_catalog_dup_models_json (self->catalog, provider_is_usable, self);
  self->models_json_len = strlen (self->models_json);
  g_free (self->models_usable);
  self->models_usable = g_steal_pointer (&usable);
  self->catalog_changed = FALSE;
  self->models_builds++;
}

const char *
kp_gateway_get_models_json (KpGateway *self,
                            gsize     *length)
{
  *length = self->models_json_len;
  return self->models_json;
}

/* How many times the model list was built: tests see that failures do not. */
guint
kp_gateway_get_models_builds (KpGateway *self)
{
  g_return_val_if_fail (KP_IS_GATEWAY (self), 0);
  return self->models_builds;
}

/* Routes ------------------------------------------------------------------ */

gboolean
kp_gateway_provider_is_enabled (KpGateway  *self,
                                KpProvider *provider)
{
  g_return_val_if_fail (KP_IS_GATEWAY (self), FALSE);
  return !g_hash_table_contains (self->disabled, kp_provider_get_id (provider));
}

gboolean
kp_gateway_provider_is_usable (KpGateway  *self,
                               KpProvider *provider)
{
  g_return_val_if_fail (KP_IS_GATEWAY (self), FALSE);
  g_return_val_if_fail (KP_IS_PROVIDER (provider), FALSE);

  if (!kp_gateway_provider_is_enabled (self, provider))
    return FALSE;
  return !kp_provider_get_requires_key (provider) || kp_gateway_count_keys (self, provider) > 0;
}

/**
 * kp_gateway_resolve:
 * @self: a #KpGateway
 * @model: what the client asked for (see kp_planner_resolve())
 * @providers: (inout) (nullable): the providers the request may use; a pin
 *   narrows it to its provider
 *
 * Returns: (transfer container) (nullable) (element-type KpOffering): the
 *   offerings of the model, or %NULL when nobody serves it
 */
GPtrArray *
kp_gateway_resolve (KpGateway  *self,
                    const char *model,
                    GStrv      *providers)
{
  g_return_val_if_fail (KP_IS_GATEWAY (self), NULL);
  g_return_val_if_fail (model != NULL, NULL);

  return kp_planner_resolve (self->catalog, model, providers);
}

static KpPlan *
plan_now (KpGateway            *self,
          GPtrArray            *offerings,
          const KpRouteRequest *request)
{
  KpPlanContext context = { 0 };

  context.credentials = self->credentials;
  context.disabled = self->disabled;
  context.health = self->health;
  context.now = kp_key_health_now (self->health);
  context.rotation = self->rotation;
  return kp_planner_plan (&context, offerings, request);
}

/**
 * kp_gateway_plan:
 * @self: a #KpGateway
 * @offerings: (element-type KpOffering): the offerings of one model
 * @request: the request's size and restrictions
 *
 * Plans the request with the keys, providers and rests as they are now
 * (see kp_planner_plan()); routes that tie take turns from one plan to the
 * next.
 *
 * Returns: (transfer full): the plan
 */
KpPlan *
kp_gateway_plan (KpGateway            *self,
                 GPtrArray            *offerings,
                 const KpRouteRequest *request)
{
  KpPlan *plan;

  g_return_val_if_fail (KP_IS_GATEWAY (self), NULL);
  g_return_val_if_fail (offerings != NULL, NULL);
  g_return_val_if_fail (request != NULL, NULL);

  plan = plan_now (self, offerings, request);
  if (plan->tied > 1)
    self->rotation++;
  return plan;
}

/**
 * kp_gateway_plan_peek:
 *
 * Like kp_gateway_plan(), for a question, not a request: the routes that
 * tie do not take a turn (picking a tool's model must not move the keys'
 * rotation).
 *
 * Returns: (transfer full): the plan
 */
KpPlan *
kp_gateway_plan_peek (KpGateway            *self,
                      GPtrArray            *offerings,
                      const KpRouteRequest *request)
{
  g_return_val_if_fail (KP_IS_GATEWAY (self), NULL);
  g_return_val_if_fail (offerings != NULL, NULL);
  g_return_val_if_fail (request != NULL, NULL);

  return plan_now (self, offerings, request);
}

/* Queued for the ledger's writer thread: a failing request never waits for
 * the database, even one another program holds locked.
 */
static void
persist_state (KpGateway    *self,
               KpCredential *credential)
{
  /* An account waiting for its owner keeps the page where they act. */
  if (kp_credential_get_state (credential, 0) == KP_CREDENTIAL_NEEDS_USER)
    {
      kp_ledger_save_credential_needs_user (self->ledger, kp_credential_get_id (credential),
                                            kp_credential_get_user_url (credential),
                                            kp_credential_get_last_error (credential));
      return;
    }
  kp_ledger_save_credential_state (self->ledger, kp_credential_get_id (credential),
                                   kp_credential_state_to_string (
                                     kp_credential_get_state (credential, 0)),
                                   kp_credential_get_state_until (credential),
                                   kp_credential_get_last_error (credential));
}

/**
 * kp_gateway_note_failure:
 * @self: a #KpGateway
 * @route: the route that failed
 * @failure: how
 *
 * Puts the route's key (or offering) out of use for as long as the failure
 * class says (see kp_key_health_note_failure()); a key's state is saved, so
 * it survives a restart, and it ends by itself at its time.
 */
void
kp_gateway_note_failure (KpGateway       *self,
                         const KpRoute   *route,
                         const KpFailure *failure)
{
  KpFailure known;

  g_return_if_fail (KP_IS_GATEWAY (self));
  g_return_if_fail (route != NULL);
  g_return_if_fail (failure != NULL);

  known = *failure;  /* shallow: its strings stay the caller's */
  /* What the account's sign-in knows of its quota (Qwen's daily one). */
  if (route->credential != NULL)
    kp_gateway_oauth_adjust_failure (route->credential, &known);
  if (!kp_key_health_note_failure (self->health, route->offering, route->credential, &known))
    return;

  persist_state (self, route->credential);
  kp_gateway_emit_changed (self);
}

void
kp_gateway_note_success (KpGateway     *self,
                         const KpRoute *route)
{
  g_return_if_fail (KP_IS_GATEWAY (self));
  g_return_if_fail (route != NULL);

  kp_key_health_note_success (self->health, route->credential);
}

/**
 * kp_gateway_note_balance:
 * @self: a #KpGateway
 * @credential: the key the balance was read with
 * @balance: what is left, in @currency
 * @currency: (nullable): the currency the provider reported
 * @available: whether the provider says the account may be used
 *
 * What a balance means for the key: see kp_key_health_note_balance().
 */
void
kp_gateway_note_balance (KpGateway    *self,
                         KpCredential *credential,
                         double        balance,
                         const char   *currency,
                         gboolean      available)
{
  g_return_if_fail (KP_IS_GATEWAY (self));
  g_return_if_fail (KP_IS_CREDENTIAL (credential));

  /* The key may have been removed while its balance was on the way. */
  if (kp_gateway_find_credential (self, kp_credential_get_id (credential)) != credential)
    return;

  if (!kp_key_health_note_balance (self->health, credential, balance, currency, available))
    return;

  persist_state (self, credential);
  kp_gateway_emit_changed (self);
}

/**
 * kp_gateway_catalog_changed:
 *
 * Called by the refresh when a provider's models or prices changed.
 */
void
kp_gateway_catalog_changed (KpGateway *self)
{
  g_return_if_fail (KP_IS_GATEWAY (self));

  self->catalog_changed = TRUE;
  kp_gateway_emit_changed (self);
}

/* Providers on and off ------------------------------------------------------ */

gboolean
kp_gateway_set_provider_enabled (KpGateway   *self,
                                 const char  *provider_id,
                                 gboolean     enabled,
                                 GError     **error)
{
  g_return_val_if_fail (KP_IS_GATEWAY (self), FALSE);

  if (kp_catalog_get_provider (self->catalog, provider_id) == NULL)
    {
      g_set_error (error, KP_GATEWAY_ERROR, KP_GATEWAY_ERROR_NOT_FOUND,
                   "There is no provider “%s”; “keypool providers” lists them.", provider_id);
      return FALSE;
    }

  /* In order with the writes before it; a failure shows as the ledger's problem. */
  kp_ledger_set_provider_enabled_async (self->ledger, provider_id, enabled, NULL, NULL);

  if (enabled)
    g_hash_table_remove (self->disabled, provider_id);
  else
    g_hash_table_add (self->disabled, g_strdup (provider_id));

  kp_gateway_emit_changed (self);
  return TRUE;
}
