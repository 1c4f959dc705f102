/* kp-auth.c: how a credential becomes request headers
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include "kp-auth.h"

G_DEFINE_INTERFACE (KpAuth, kp_auth, G_TYPE_OBJECT)

static gboolean
kp_auth_default_rejected (KpAuth *self)
{
  return FALSE;
}

static void
kp_auth_default_accepted (KpAuth *self)
{
}

static void
kp_auth_default_init (KpAuthInterface *iface)
{
  iface->rejected = kp_auth_default_rejected;
  iface->accepted = kp_auth_default_accepted;
}

KpAuthKindId
kp_auth_get_kind (KpAuth *self)
{
  g_return_val_if_fail (KP_IS_AUTH (self), KP_AUTH_KIND_STATIC);
  return KP_AUTH_GET_IFACE (self)->get_kind (self);
}

/**
 * kp_auth_get_secret:
 *
 * Returns: (nullable): what the keyring keeps for the credential
 */
const char *
kp_auth_get_secret (KpAuth *self)
{
  g_return_val_if_fail (KP_IS_AUTH (self), NULL);
  return KP_AUTH_GET_IFACE (self)->get_secret (self);
}

void
kp_auth_set_secret (KpAuth     *self,
                    const char *secret)
{
  g_return_if_fail (KP_IS_AUTH (self));
  KP_AUTH_GET_IFACE (self)->set_secret (self, secret);
}

/**
 * kp_auth_get_token:
 *
 * Never waits: an OAuth auth that has no valid access token cached returns
 * %NULL and gets one in the background.
 *
 * Returns: (nullable): what to send to the provider now
 */
const char *
kp_auth_get_token (KpAuth *self)
{
  g_return_val_if_fail (KP_IS_AUTH (self), NULL);
  return KP_AUTH_GET_IFACE (self)->get_token (self);
}

/**
 * kp_auth_rejected:
 *
 * Tells the auth that the provider refused what it sent.
 *
 * Returns: %TRUE if the auth recovers by itself, %FALSE if the credential
 *   itself is bad
 */
gboolean
kp_auth_rejected (KpAuth *self)
{
  g_return_val_if_fail (KP_IS_AUTH (self), FALSE);
  return KP_AUTH_GET_IFACE (self)->rejected (self);
}

void
kp_auth_accepted (KpAuth *self)
{
  g_return_if_fail (KP_IS_AUTH (self));
  KP_AUTH_GET_IFACE (self)->accepted (self);
}

/**
 * kp_auth_get_account:
 *
 * Returns: (transfer none) (nullable): what the login knows of its account
 *   that a request must carry (Kiro's profileArn), or %NULL
 */
JsonObject *
kp_auth_get_account (KpAuth *self)
{
  g_return_val_if_fail (KP_IS_AUTH (self), NULL);
  if (KP_AUTH_GET_IFACE (self)->get_account == NULL)
    return NULL;
  return KP_AUTH_GET_IFACE (self)->get_account (self);
}

const char *
kp_auth_kind_to_string (KpAuthKindId kind)
{
  switch (kind)
    {
    case KP_AUTH_KIND_OAUTH:
      return "oauth";
    case KP_AUTH_KIND_STATIC:
    default:
      return "key";
    }
}
