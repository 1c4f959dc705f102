/* kp-ways-in.c: how an account of a provider comes into Keypool
 *
 * A provider takes API keys, or (with an "oauth" object in its file)
 * accounts: imported from a CLI's saved login, or signed in in the browser.
 * The window's Add Key dialog and `keypool keys add` ask here which ways
 * there are, so both offer the same.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include "kp-ways-in.h"

#include "auth/kp-oauth-client.h"

/**
 * kp_ways_in_of:
 * @provider: (nullable): a provider
 *
 * Returns: the ways an account of @provider is added; %KP_WAY_IN_NONE for
 *   %NULL or a provider that needs no key
 */
KpWayIn
kp_ways_in_of (KpProvider *provider)
{
  const KpOAuthClient *client;
  KpWayIn ways = KP_WAY_IN_NONE;

  if (provider == NULL || !kp_provider_get_requires_key (provider))
    return KP_WAY_IN_NONE;

  client = kp_provider_get_oauth (provider);
  if (client == NULL)
    return KP_WAY_IN_KEY;
  switch (client->flow)
    {
    case KP_OAUTH_FLOW_CODE:
      if (client->auth_url != NULL)
        ways |= KP_WAY_IN_SIGN_IN;
      break;
    case KP_OAUTH_FLOW_DEVICE:
      if (client->device_code_url != NULL)
        ways |= KP_WAY_IN_SIGN_IN;
      break;
    case KP_OAUTH_FLOW_KIRO:
      /* Kiro's own sign-in is read where Kiro or kiro-cli keeps it. */
      ways |= KP_WAY_IN_IMPORT;
      break;
    default:
      break;
    }
  if (client->import_file != NULL)
    ways |= KP_WAY_IN_IMPORT;
  return ways;
}

/**
 * kp_ways_in_dup_hint:
 * @provider: (nullable): a provider
 *
 * Returns: (transfer full) (nullable): for a provider that takes no API
 *   key, a sentence saying how its accounts are added; %NULL for a key
 *   provider, one that needs no key, or %NULL
 */
char *
kp_ways_in_dup_hint (KpProvider *provider)
{
  KpWayIn ways = kp_ways_in_of (provider);
  const char *name;
  const char *id;

  if (ways == KP_WAY_IN_NONE || (ways & KP_WAY_IN_KEY) != 0)
    return NULL;

  name = kp_provider_get_name (provider);
  id = kp_provider_get_id (provider);
  if ((ways & KP_WAY_IN_SIGN_IN) && (ways & KP_WAY_IN_IMPORT))
    return g_strdup_printf ("%s accounts are added by signing in: keypool login %s, "
                            "or keypool keys import %s.", name, id, id);
  if (ways & KP_WAY_IN_SIGN_IN)
    return g_strdup_printf ("%s accounts are added by signing in: keypool login %s.", name, id);
  if (ways & KP_WAY_IN_IMPORT)
    return g_strdup_printf ("%s accounts are imported from its own login: sign in there, "
                            "then keypool keys import %s.", name, id);
  return g_strdup_printf ("%s takes no API key.", name);
}
