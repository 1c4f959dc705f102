/* kp-provider-merge.c: a provider remade with the models of its live list
 *
 * Part of KpProvider: the catalog refresh hands over the models a
 * provider's live list names; kp_provider_new_merged() makes the provider
 * as it is now, keeping what the file says about the models it knows.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include <string.h>

#include "kp-provider-private.h"

void
kp_live_model_clear (gpointer data)
{
  KpLiveModel *model = data;

  g_clear_pointer (&model->upstream_id, g_free);
}

/**
 * kp_live_model_canonical_id:
 * @provider: the provider that listed the model
 * @upstream_id: what the provider calls it
 *
 * The canonical id of a model the provider file does not know: the upstream
 * id in lower case when it already reads “vendor/model” (OpenRouter,
 * DeepInfra, Together), otherwise “provider/model”.
 *
 * Returns: (transfer full) (nullable): the id, or %NULL for a name that
 *   cannot be one (empty, too long, spaces or control characters)
 */
char *
kp_live_model_canonical_id (KpProvider *provider,
                            const char *upstream_id)
{
  g_autofree char *lower = NULL;
  const char *slash;
  gsize len;

  g_return_val_if_fail (KP_IS_PROVIDER (provider), NULL);
  g_return_val_if_fail (upstream_id != NULL, NULL);

  len = strlen (upstream_id);
  if (len == 0 || len > 200)
    return NULL;
  for (const char *p = upstream_id; *p; p++)
    if ((guchar)*p <= ' ' || (guchar)*p >= 0x7f || *p == '"' || *p == '\\')
      return NULL;

  lower = g_ascii_strdown (upstream_id, -1);
  slash = strchr (lower, '/');
  if (slash != NULL && slash != lower && slash[1] != '\0' && !g_str_has_suffix (lower, "/"))
    return g_steal_pointer (&lower);
  if (slash != NULL)
    return NULL;
  return g_strconcat (provider->id, "/", lower, NULL);
}

/* Whether a file model has exactly @upstream_id; if none has, the file
 * models whose upstream id differs from it only in case stand for it.
 */
static gboolean
has_exact_upstream_id (KpProvider *bundled,
                       const char *upstream_id)
{
  for (guint i = 0; i < bundled->offerings->len; i++)
    if (g_str_equal (g_array_index (bundled->offerings, KpOffering, i).upstream_id, upstream_id))
      return TRUE;
  return FALSE;
}

/**
 * kp_model_name_undated_length:
 * @name: a model name
 *
 * Anthropic names snapshots by date: "claude-sonnet-4-20250514".
 *
 * Returns: the length of @name without a trailing "-YYYYMMDD", or 0 when it
 *   has none
 */
gsize
kp_model_name_undated_length (const char *name)
{
  gsize len = strlen (name);

  if (len <= 9 || name[len - 9] != '-')
    return 0;
  for (gsize i = len - 8; i < len; i++)
    if (!g_ascii_isdigit (name[i]))
      return 0;
  return len - 9;
}

/* The file's model of which @upstream_id is a dated snapshot
 * ("claude-sonnet-4-20250514" of "claude-sonnet-4", by its upstream id, an
 * alias or its canonical name without the vendor), or NULL.
 */
static const KpOffering *
find_snapshot_of (KpProvider *bundled,
                  const char *upstream_id)
{
  gsize len = kp_model_name_undated_length (upstream_id);
  g_autofree char *base = NULL;

  if (len == 0)
    return NULL;
  base = g_ascii_strdown (upstream_id, len);

  for (guint i = 0; i < bundled->offerings->len; i++)
    {
      const KpOffering *offering = &g_array_index (bundled->offerings, KpOffering, i);
      const char *bare = strchr (offering->model_id, '/');

      if (g_ascii_strcasecmp (offering->upstream_id, base) == 0 ||
          (bare != NULL && g_str_equal (bare + 1, base)) ||
          (offering->aliases != NULL &&
           g_strv_contains ((const char * const *)offering->aliases, base)))
        return offering;
    }
  return NULL;
}

/* One offering of the merged provider: @model as the live list names it,
 * under the name of the file model @known, or a name of its own.
 */
static void
merge_one (KpProvider        *self,
           KpProvider        *bundled,
           const KpLiveModel *model,
           const KpOffering  *known,
           GHashTable        *seen,
           gint64             listed_at)
{
  const KpOffering *snapshot_of = known ? NULL : find_snapshot_of (bundled, model->upstream_id);
  gboolean live_price = model->input >= 0 && model->output >= 0;
  KpOffering offering = { 0 };

  offering.model_id = known ? g_strdup (known->model_id)
                            : kp_live_model_canonical_id (bundled, model->upstream_id);
  if (offering.model_id == NULL || g_hash_table_contains (seen, offering.model_id))
    {
      g_free (offering.model_id);
      return;
    }

  offering.upstream_id = g_strdup (model->upstream_id);
  offering.aliases = known ? g_strdupv (known->aliases) : g_new0 (char *, 1);
  offering.context = model->context > 0 ? model->context : known ? known->context : 0;
  offering.reasoning = known ? known->reasoning : snapshot_of ? snapshot_of->reasoning : FALSE;
  offering.kind = known ? known->kind : snapshot_of ? snapshot_of->kind : KP_MODEL_CHAT;
  offering.provider = self;
  offering.listed_at = listed_at;
  if (live_price)
    {
      offering.input = model->input;
      offering.output = model->output;
      offering.cached_input = model->cached_input;
      /* Lists give no cache-write price: the file's, or the input price. */
      offering.cache_write = known ? known->cache_write : -1;
      offering.price_source = KP_PRICE_LIVE;
    }
  else if (known != NULL && kp_offering_has_price (known))
    {
      offering.input = known->input;
      offering.output = known->output;
      offering.cached_input = known->cached_input;
      offering.cache_write = known->cache_write;
      offering.price_source = KP_PRICE_BUNDLED;
    }
  else if (snapshot_of != NULL && kp_offering_has_price (snapshot_of))
    {
      /* A dated snapshot costs what the file says its model costs. */
      offering.input = snapshot_of->input;
      offering.output = snapshot_of->output;
      offering.cached_input = snapshot_of->cached_input;
      offering.cache_write = snapshot_of->cache_write;
      offering.context = offering.context > 0 ? offering.context : snapshot_of->context;
      offering.price_source = KP_PRICE_BUNDLED;
    }
  else
    {
      offering.input = offering.output = offering.cached_input = offering.cache_write = -1;
      offering.price_source = KP_PRICE_UNKNOWN;
    }

  g_array_append_val (self->offerings, offering);
  g_hash_table_add (seen, g_array_index (self->offerings, KpOffering,
                                         self->offerings->len - 1).model_id);
}

/**
 * kp_provider_new_merged:
 * @bundled: the provider as its file describes it
 * @live: (element-type KpLiveModel): the models its live list names
 * @listed_at: when the list was fetched, unix seconds
 *
 * Makes the provider as it is now: its definition from the file, and exactly
 * the models of the live list. A model the file knows keeps its canonical id
 * and aliases, and its file price while the list gives none; a new model
 * gets its live price, or none (never free). Models the list no longer names
 * are left out, so they are no longer routed to this provider.
 *
 * The result is a new object, so that requests in flight keep the offerings
 * they point at for as long as they hold the old one.
 *
 * Returns: (transfer full): the merged provider
 */
KpProvider *
kp_provider_new_merged (KpProvider *bundled,
                        GArray     *live,
                        gint64      listed_at)
{
  g_autoptr(GHashTable) seen = g_hash_table_new (g_str_hash, g_str_equal);
  KpProvider *self;

  g_return_val_if_fail (KP_IS_PROVIDER (bundled), NULL);
  g_return_val_if_fail (live != NULL, NULL);

  self = g_object_new (KP_TYPE_PROVIDER, NULL);
  self->id = g_strdup (bundled->id);
  self->name = g_strdup (bundled->name);
  self->wire = g_strdup (bundled->wire);
  self->base_url = g_strdup (bundled->base_url);
  self->origin = g_strdup (bundled->origin);
  self->chat_uri = g_uri_ref (bundled->chat_uri);
  g_hash_table_unref (self->apis);
  self->apis = g_hash_table_ref (bundled->apis);
  self->auth_kind = bundled->auth_kind;
  self->auth_header = g_strdup (bundled->auth_header);
  self->auth_prefix = g_strdup (bundled->auth_prefix);
  self->env = g_strdupv (bundled->env);
  self->header_names = g_strdupv (bundled->header_names);
  self->header_values = g_strdupv (bundled->header_values);
  self->requires_key = bundled->requires_key;
  self->check_with_chat = bundled->check_with_chat;
  self->prices_checked = g_strdup (bundled->prices_checked);
  self->models_endpoint = g_strdup (bundled->models_endpoint);
  self->models_prefix = g_strdup (bundled->models_prefix);
  self->models_need_key = bundled->models_need_key;
  self->models_list_adds = bundled->models_list_adds;
  self->price_format = bundled->price_format;
  self->balance_endpoint = g_strdup (bundled->balance_endpoint);
  self->balance_format = bundled->balance_format;
  self->oauth = kp_oauth_client_copy (bundled->oauth);
  self->subscription = bundled->subscription;

  for (guint i = 0; i < live->len; i++)
    {
      const KpLiveModel *model = &g_array_index (live, KpLiveModel, i);
      gboolean exact = has_exact_upstream_id (bundled, model->upstream_id);
      gboolean found = FALSE;

      /* Every file model of that upstream id (an alias may be written as an
       * entry of its own), or the live model under a name of its own.
       */
      for (guint k = 0; k < bundled->offerings->len; k++)
        {
          const KpOffering *known = &g_array_index (bundled->offerings, KpOffering, k);

          if (exact ? !g_str_equal (known->upstream_id, model->upstream_id)
                    : g_ascii_strcasecmp (known->upstream_id, model->upstream_id) != 0)
            continue;
          merge_one (self, bundled, model, known, seen, listed_at);
          found = TRUE;
        }
      if (!found)
        merge_one (self, bundled, model, NULL, seen, listed_at);
    }

  /* A list that names models otherwise than requests do (Anthropic lists
   * dated ids, and serves the file's aliases too) only adds to the file.
   */
  for (guint i = 0; self->models_list_adds && i < bundled->offerings->len; i++)
    {
      const KpOffering *known = &g_array_index (bundled->offerings, KpOffering, i);
      KpOffering offering = *known;

      if (g_hash_table_contains (seen, known->model_id))
        continue;
      offering.model_id = g_strdup (known->model_id);
      offering.upstream_id = g_strdup (known->upstream_id);
      offering.aliases = g_strdupv (known->aliases);
      offering.provider = self;
      g_array_append_val (self->offerings, offering);
    }

  return self;
}
