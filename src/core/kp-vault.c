/* kp-vault.c: provider keys
 *
 * Until the keyring lands, keys come from the environment variables a
 * provider file names, one key per variable. Secrets are held in memory only
 * and wiped when dropped.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include <string.h>

#include "kp-vault.h"

typedef struct
{
  GPtrArray *keys;   /* of char*, wiped on free */
  guint      next;   /* rotation among equal keys */
} KeyRing;

struct _KpVault
{
  GObject     parent_instance;

  GHashTable *rings;  /* provider id → KeyRing */
};

G_DEFINE_TYPE (KpVault, kp_vault, G_TYPE_OBJECT)

static void
wipe_free (gpointer data)
{
  char *secret = data;

  if (secret != NULL)
    {
      explicit_bzero (secret, strlen (secret));
      g_free (secret);
    }
}

static void
key_ring_free (gpointer data)
{
  KeyRing *ring = data;

  g_ptr_array_unref (ring->keys);
  g_free (ring);
}

static void
kp_vault_finalize (GObject *object)
{
  KpVault *self = (KpVault *)object;

  g_clear_pointer (&self->rings, g_hash_table_unref);

  G_OBJECT_CLASS (kp_vault_parent_class)->finalize (object);
}

static void
kp_vault_class_init (KpVaultClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = kp_vault_finalize;
}

static void
kp_vault_init (KpVault *self)
{
  self->rings = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, key_ring_free);
}

KpVault *
kp_vault_new (void)
{
  return g_object_new (KP_TYPE_VAULT, NULL);
}

/**
 * kp_vault_load_env:
 * @self: a #KpVault
 * @provider: a provider
 *
 * Reads the keys of @provider from the environment variables its file names.
 * Surrounding white space (a common copy-and-paste accident) is removed.
 */
void
kp_vault_load_env (KpVault    *self,
                   KpProvider *provider)
{
  const char * const *env;
  KeyRing *ring;

  g_return_if_fail (KP_IS_VAULT (self));
  g_return_if_fail (KP_IS_PROVIDER (provider));

  ring = g_new0 (KeyRing, 1);
  ring->keys = g_ptr_array_new_with_free_func (wipe_free);

  env = kp_provider_get_env (provider);
  for (guint i = 0; env != NULL && env[i] != NULL; i++)
    {
      const char *value = g_getenv (env[i]);
      char *key;

      if (value == NULL)
        continue;

      key = g_strstrip (g_strdup (value));
      if (*key == '\0')
        {
          wipe_free (key);
          continue;
        }

      /* The same key exported under two names is one key. */
      for (guint j = 0; j < ring->keys->len; j++)
        if (g_str_equal (g_ptr_array_index (ring->keys, j), key))
          g_clear_pointer (&key, wipe_free);

      if (key != NULL)
        g_ptr_array_add (ring->keys, key);
    }

  g_hash_table_replace (self->rings, g_strdup (kp_provider_get_id (provider)), ring);
}

guint
kp_vault_get_n_keys (KpVault    *self,
                     const char *provider_id)
{
  KeyRing *ring;

  g_return_val_if_fail (KP_IS_VAULT (self), 0);

  ring = g_hash_table_lookup (self->rings, provider_id);
  return ring != NULL ? ring->keys->len : 0;
}

/**
 * kp_vault_next_key:
 *
 * Returns: (nullable): the next key of the provider in rotation, or %NULL
 *   when it has none. The string stays valid while the vault holds the key.
 */
const char *
kp_vault_next_key (KpVault    *self,
                   const char *provider_id)
{
  KeyRing *ring;
  const char *key;

  g_return_val_if_fail (KP_IS_VAULT (self), NULL);

  ring = g_hash_table_lookup (self->rings, provider_id);
  if (ring == NULL || ring->keys->len == 0)
    return NULL;

  key = g_ptr_array_index (ring->keys, ring->next % ring->keys->len);
  ring->next++;
  return key;
}

/**
 * kp_vault_describe_key:
 * @key: a secret
 *
 * Returns: (transfer full): a form of @key safe to show: its last four
 *   characters, or nothing of it when it is too short to hide the rest
 */
char *
kp_vault_describe_key (const char *key)
{
  gsize len;

  g_return_val_if_fail (key != NULL, NULL);

  len = strlen (key);
  if (len < 12)
    return g_strdup ("…");
  return g_strdup_printf ("…%s", key + len - 4);
}
