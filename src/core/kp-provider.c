/* kp-provider.c: one provider definition: the KpProvider object and its accessors
 *
 * A provider is read from providers/<id>.json by kp-provider-file.c, and
 * remade with the models of its live list by kp-provider-merge.c. Once
 * made it does not change, so requests in flight may keep pointing at it.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include <string.h>

#include "kp-provider-private.h"

G_DEFINE_TYPE (KpProvider, kp_provider, G_TYPE_OBJECT)

G_DEFINE_QUARK (kp-provider-error-quark, kp_provider_error)

static void
kp_offering_clear (gpointer data)
{
  KpOffering *offering = data;

  g_clear_pointer (&offering->model_id, g_free);
  g_clear_pointer (&offering->upstream_id, g_free);
  g_clear_pointer (&offering->aliases, g_strfreev);
}

static void
kp_provider_finalize (GObject *object)
{
  KpProvider *self = (KpProvider *)object;

  g_clear_pointer (&self->id, g_free);
  g_clear_pointer (&self->name, g_free);
  g_clear_pointer (&self->base_url, g_free);
  g_clear_pointer (&self->origin, g_free);
  g_clear_pointer (&self->chat_uri, g_uri_unref);
  g_clear_pointer (&self->apis, g_hash_table_unref);
  g_clear_pointer (&self->wire, g_free);
  g_clear_pointer (&self->auth_header, g_free);
  g_clear_pointer (&self->auth_prefix, g_free);
  g_clear_pointer (&self->env, g_strfreev);
  g_clear_pointer (&self->header_names, g_strfreev);
  g_clear_pointer (&self->header_values, g_strfreev);
  g_clear_pointer (&self->prices_checked, g_free);
  g_clear_pointer (&self->models_endpoint, g_free);
  g_clear_pointer (&self->models_prefix, g_free);
  g_clear_pointer (&self->balance_endpoint, g_free);
  g_clear_pointer (&self->offerings, g_array_unref);

  g_clear_pointer (&self->oauth, kp_oauth_client_free);
  G_OBJECT_CLASS (kp_provider_parent_class)->finalize (object);
}

static void
kp_provider_class_init (KpProviderClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = kp_provider_finalize;
}

static void
kp_provider_init (KpProvider *self)
{
  self->auth_kind = KP_AUTH_BEARER;
  self->requires_key = TRUE;
  self->offerings = g_array_new (FALSE, TRUE, sizeof (KpOffering));
  g_array_set_clear_func (self->offerings, kp_offering_clear);
  self->apis = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                      (GDestroyNotify)g_uri_unref);
}

const char *
kp_provider_get_id (KpProvider *self)
{
  g_return_val_if_fail (KP_IS_PROVIDER (self), NULL);
  return self->id;
}

const char *
kp_provider_get_name (KpProvider *self)
{
  g_return_val_if_fail (KP_IS_PROVIDER (self), NULL);
  return self->name;
}

const char *
kp_provider_get_base_url (KpProvider *self)
{
  g_return_val_if_fail (KP_IS_PROVIDER (self), NULL);
  return self->base_url;
}

const char *
kp_provider_get_origin (KpProvider *self)
{
  g_return_val_if_fail (KP_IS_PROVIDER (self), NULL);
  return self->origin;
}

/**
 * kp_provider_get_chat_uri:
 *
 * Returns: (transfer none): the chat completions endpoint, parsed once
 */
GUri *
kp_provider_get_chat_uri (KpProvider *self)
{
  g_return_val_if_fail (KP_IS_PROVIDER (self), NULL);
  return self->chat_uri;
}

/**
 * kp_provider_get_wire:
 *
 * Returns: the id of the wire its chat API speaks
 */
const char *
kp_provider_get_wire (KpProvider *self)
{
  g_return_val_if_fail (KP_IS_PROVIDER (self), NULL);

  return self->wire;
}

/**
 * kp_provider_serves:
 * @wire_id: a wire's id
 *
 * Returns: whether the provider speaks that wire itself
 */
gboolean
kp_provider_serves (KpProvider *self,
                    const char *wire_id)
{
  g_return_val_if_fail (KP_IS_PROVIDER (self), FALSE);

  return g_hash_table_contains (self->apis, wire_id);
}

/**
 * kp_provider_get_api_uri:
 * @wire_id: a wire the provider serves
 *
 * Returns: (transfer none) (nullable): where that API is
 */
GUri *
kp_provider_get_api_uri (KpProvider *self,
                         const char *wire_id)
{
  g_return_val_if_fail (KP_IS_PROVIDER (self), NULL);

  return g_hash_table_lookup (self->apis, wire_id);
}

KpAuthKind
kp_provider_get_auth_kind (KpProvider *self)
{
  g_return_val_if_fail (KP_IS_PROVIDER (self), KP_AUTH_NONE);
  return self->auth_kind;
}

/**
 * kp_provider_get_check_with_chat:
 *
 * Returns: whether a key is checked with a one-token chat request (for a
 *   provider without a model list) instead of the model list
 */
gboolean
kp_provider_get_check_with_chat (KpProvider *self)
{
  g_return_val_if_fail (KP_IS_PROVIDER (self), FALSE);
  return self->check_with_chat;
}

gboolean
kp_provider_get_requires_key (KpProvider *self)
{
  g_return_val_if_fail (KP_IS_PROVIDER (self), TRUE);
  return self->requires_key;
}

const char * const *
kp_provider_get_env (KpProvider *self)
{
  g_return_val_if_fail (KP_IS_PROVIDER (self), NULL);
  return (const char * const *)self->env;
}

guint
kp_provider_get_n_offerings (KpProvider *self)
{
  g_return_val_if_fail (KP_IS_PROVIDER (self), 0);
  return self->offerings->len;
}

const KpOffering *
kp_provider_get_offering (KpProvider *self,
                          guint       index)
{
  g_return_val_if_fail (KP_IS_PROVIDER (self), NULL);
  g_return_val_if_fail (index < self->offerings->len, NULL);
  return &g_array_index (self->offerings, KpOffering, index);
}

/**
 * kp_provider_apply_headers:
 * @self: a #KpProvider
 * @headers: the upstream request headers
 * @key: (nullable): the credential to send, if any
 *
 * Adds the provider's authentication and extra headers to an upstream request.
 */
void
kp_provider_apply_headers (KpProvider         *self,
                           SoupMessageHeaders *headers,
                           const char         *key)
{
  g_return_if_fail (KP_IS_PROVIDER (self));

  for (guint i = 0; self->header_names[i] != NULL; i++)
    soup_message_headers_replace (headers, self->header_names[i], self->header_values[i]);

  if (key == NULL || self->auth_kind == KP_AUTH_NONE)
    return;

  if (self->auth_kind == KP_AUTH_BEARER)
    {
      g_autofree char *value = g_strconcat ("Bearer ", key, NULL);

      soup_message_headers_replace (headers, "Authorization", value);
      memset (value, 0, strlen (value));
    }
  else
    {
      g_autofree char *value = g_strconcat (self->auth_prefix ? self->auth_prefix : "", key, NULL);

      soup_message_headers_replace (headers, self->auth_header, value);
      memset (value, 0, strlen (value));
    }
}

/**
 * kp_provider_get_oauth:
 *
 * Returns: (nullable): the OAuth application its keys belong to, or %NULL
 *   when its keys are API keys
 */
const KpOAuthClient *
kp_provider_get_oauth (KpProvider *self)
{
  g_return_val_if_fail (KP_IS_PROVIDER (self), NULL);
  return self->oauth;
}

gboolean
kp_provider_get_subscription (KpProvider *self)
{
  g_return_val_if_fail (KP_IS_PROVIDER (self), FALSE);
  return self->subscription;
}

gboolean
kp_offering_has_price (const KpOffering *offering)
{
  return offering->input >= 0 && offering->output >= 0;
}

const char *
kp_price_source_to_string (KpPriceSource source)
{
  switch (source)
    {
    case KP_PRICE_BUNDLED:
      return "bundled";
    case KP_PRICE_LIVE:
      return "live";
    case KP_PRICE_UNKNOWN:
    default:
      return "unknown";
    }
}

/**
 * kp_provider_get_prices_checked:
 *
 * Returns: (nullable): the date the file's prices were last compared with the
 *   provider's, as YYYY-MM-DD
 */
const char *
kp_provider_get_prices_checked (KpProvider *self)
{
  g_return_val_if_fail (KP_IS_PROVIDER (self), NULL);
  return self->prices_checked;
}

static char *
resolve_endpoint (KpProvider *self,
                  const char *endpoint)
{
  if (g_str_has_prefix (endpoint, "http://") || g_str_has_prefix (endpoint, "https://"))
    return g_strdup (endpoint);
  return g_strconcat (self->base_url, endpoint[0] == '/' ? "" : "/", endpoint, NULL);
}

/**
 * kp_provider_dup_models_url:
 *
 * Returns: (transfer full) (nullable): where the provider lists its models,
 *   or %NULL for a provider without a model list (`"key_check": "chat"`)
 */
char *
kp_provider_dup_models_url (KpProvider *self)
{
  g_return_val_if_fail (KP_IS_PROVIDER (self), NULL);

  if (self->models_endpoint == NULL && self->check_with_chat)
    return NULL;
  return resolve_endpoint (self, self->models_endpoint ? self->models_endpoint : "/models");
}

/**
 * kp_provider_get_models_need_key:
 *
 * Returns: whether the model list is only given to a caller with a key
 */
gboolean
kp_provider_get_models_need_key (KpProvider *self)
{
  g_return_val_if_fail (KP_IS_PROVIDER (self), TRUE);
  return self->models_need_key;
}

/**
 * kp_provider_get_models_prefix:
 *
 * Returns: (nullable): what the model list puts before each model's name
 *   (Google's "models/"), which requests leave out
 */
const char *
kp_provider_get_models_prefix (KpProvider *self)
{
  g_return_val_if_fail (KP_IS_PROVIDER (self), NULL);
  return self->models_prefix;
}

KpPriceFormat
kp_provider_get_price_format (KpProvider *self)
{
  g_return_val_if_fail (KP_IS_PROVIDER (self), KP_PRICES_NONE);
  return self->price_format;
}

/**
 * kp_provider_dup_balance_url:
 *
 * Returns: (transfer full) (nullable): where a key's balance is read, or
 *   %NULL when the provider has no such endpoint
 */
char *
kp_provider_dup_balance_url (KpProvider *self)
{
  g_return_val_if_fail (KP_IS_PROVIDER (self), NULL);
  return self->balance_endpoint ? resolve_endpoint (self, self->balance_endpoint) : NULL;
}

KpBalanceFormat
kp_provider_get_balance_format (KpProvider *self)
{
  g_return_val_if_fail (KP_IS_PROVIDER (self), KP_BALANCE_NONE);
  return self->balance_endpoint ? self->balance_format : KP_BALANCE_NONE;
}
