/* kp-catalog.c: providers × models × prices; model lookup
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include <string.h>

#include <json-glib/json-glib.h>

#include "kp-catalog.h"

struct _KpCatalog
{
  GObject     parent_instance;

  GPtrArray  *providers;    /* of KpProvider, in id order: as served now */
  GHashTable *bundled;      /* id → KpProvider as its file describes it */
  GHashTable *by_model;     /* canonical id → GPtrArray of const KpOffering* */
  GHashTable *by_bare;      /* "model" part → canonical id, or "" when ambiguous */
  GHashTable *by_alias;     /* alias → canonical id, or "" when ambiguous */
  GPtrArray  *model_ids;    /* sorted canonical ids */
  GPtrArray  *load_errors;  /* of char*, one line each */
};

G_DEFINE_TYPE (KpCatalog, kp_catalog, G_TYPE_OBJECT)

static void
kp_catalog_finalize (GObject *object)
{
  KpCatalog *self = (KpCatalog *)object;

  g_clear_pointer (&self->by_model, g_hash_table_unref);
  g_clear_pointer (&self->by_bare, g_hash_table_unref);
  g_clear_pointer (&self->by_alias, g_hash_table_unref);
  g_clear_pointer (&self->model_ids, g_ptr_array_unref);
  g_clear_pointer (&self->providers, g_ptr_array_unref);
  g_clear_pointer (&self->bundled, g_hash_table_unref);
  g_clear_pointer (&self->load_errors, g_ptr_array_unref);

  G_OBJECT_CLASS (kp_catalog_parent_class)->finalize (object);
}

static void
kp_catalog_class_init (KpCatalogClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = kp_catalog_finalize;
}

static void
kp_catalog_init (KpCatalog *self)
{
  self->providers = g_ptr_array_new_with_free_func (g_object_unref);
  self->bundled = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, g_object_unref);
  self->load_errors = g_ptr_array_new_with_free_func (g_free);
  self->by_model = g_hash_table_new_full (g_str_hash, g_str_equal, NULL,
                                          (GDestroyNotify)g_ptr_array_unref);
  self->by_bare = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->by_alias = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->model_ids = g_ptr_array_new ();
}

KpCatalog *
kp_catalog_new (void)
{
  return g_object_new (KP_TYPE_CATALOG, NULL);
}

static int
compare_provider (gconstpointer a,
                  gconstpointer b)
{
  KpProvider *pa = *(KpProvider **)a;
  KpProvider *pb = *(KpProvider **)b;

  return strcmp (kp_provider_get_id (pa), kp_provider_get_id (pb));
}

static int
compare_string (gconstpointer a,
                gconstpointer b)
{
  return strcmp (*(const char **)a, *(const char **)b);
}

static void
rebuild_index (KpCatalog *self)
{
  g_hash_table_remove_all (self->by_model);
  g_hash_table_remove_all (self->by_bare);
  g_hash_table_remove_all (self->by_alias);
  g_ptr_array_set_size (self->model_ids, 0);

  g_ptr_array_sort (self->providers, compare_provider);

  for (guint i = 0; i < self->providers->len; i++)
    {
      KpProvider *provider = g_ptr_array_index (self->providers, i);

      for (guint j = 0; j < kp_provider_get_n_offerings (provider); j++)
        {
          const KpOffering *offering = kp_provider_get_offering (provider, j);
          GPtrArray *offerings = g_hash_table_lookup (self->by_model, offering->model_id);
          const char *bare;
          const char *known;

          if (offerings == NULL)
            {
              offerings = g_ptr_array_new ();
              g_hash_table_insert (self->by_model, offering->model_id, offerings);
              g_ptr_array_add (self->model_ids, offering->model_id);

              /* A bare name resolves only while it names one canonical model. */
              bare = strchr (offering->model_id, '/') + 1;
              known = g_hash_table_lookup (self->by_bare, bare);
              if (known == NULL)
                g_hash_table_insert (self->by_bare, g_strdup (bare), offering->model_id);
              else if (*known != '\0' && !g_str_equal (known, offering->model_id))
                g_hash_table_insert (self->by_bare, g_strdup (bare), (gpointer)"");
            }
          g_ptr_array_add (offerings, (gpointer)offering);

          for (guint k = 0; offering->aliases && offering->aliases[k] != NULL; k++)
            {
              known = g_hash_table_lookup (self->by_alias, offering->aliases[k]);
              if (known == NULL)
                g_hash_table_insert (self->by_alias, g_strdup (offering->aliases[k]),
                                     offering->model_id);
              else if (*known != '\0' && !g_str_equal (known, offering->model_id))
                g_hash_table_insert (self->by_alias, g_strdup (offering->aliases[k]), (gpointer)"");
            }
        }
    }

  g_ptr_array_sort (self->model_ids, compare_string);
}

/* Puts @provider in place of the one with its id, or adds it. */
static void
put_provider (KpCatalog  *self,
              KpProvider *provider)
{
  const char *id = kp_provider_get_id (provider);

  for (guint i = 0; i < self->providers->len; i++)
    {
      KpProvider *existing = g_ptr_array_index (self->providers, i);

      if (g_str_equal (kp_provider_get_id (existing), id))
        {
          g_ptr_array_index (self->providers, i) = g_object_ref (provider);
          g_object_unref (existing);
          return;
        }
    }

  g_ptr_array_add (self->providers, g_object_ref (provider));
}

static void
add_provider (KpCatalog  *self,
              KpProvider *provider)
{
  const char *id = kp_provider_get_id (provider);
  KpProvider *existing = g_hash_table_lookup (self->bundled, id);

  if (existing != NULL)
    g_debug ("Provider “%s” from %s replaces the one from %s",
             id, kp_provider_get_origin (provider), kp_provider_get_origin (existing));
  g_hash_table_replace (self->bundled, (gpointer)id, g_object_ref (provider));
  put_provider (self, provider);
}

/**
 * kp_catalog_add_provider:
 *
 * Adds @provider, replacing a provider with the same id.
 */
void
kp_catalog_add_provider (KpCatalog  *self,
                         KpProvider *provider)
{
  g_return_if_fail (KP_IS_CATALOG (self));
  g_return_if_fail (KP_IS_PROVIDER (provider));

  add_provider (self, provider);
  rebuild_index (self);
}

static void
load_dir (KpCatalog  *self,
          const char *path)
{
  g_autoptr(GDir) dir = NULL;
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GError) error = NULL;
  const char *name;

  if (path == NULL || !g_file_test (path, G_FILE_TEST_IS_DIR))
    return;

  dir = g_dir_open (path, 0, &error);
  if (dir == NULL)
    {
      g_ptr_array_add (self->load_errors, g_strdup (error->message));
      g_warning ("Cannot read the provider folder: %s", error->message);
      return;
    }

  /* Sorted, so that the result never depends on the file system's order. */
  while ((name = g_dir_read_name (dir)) != NULL)
    if (g_str_has_suffix (name, ".json") && name[0] != '.')
      g_ptr_array_add (names, g_strdup (name));
  g_ptr_array_sort (names, compare_string);

  for (guint i = 0; i < names->len; i++)
    {
      g_autofree char *file_path = g_build_filename (path, g_ptr_array_index (names, i), NULL);
      g_autoptr(KpProvider) provider = NULL;
      g_autoptr(GError) load_error = NULL;

      provider = kp_provider_new_from_file (file_path, &load_error);
      if (provider == NULL)
        {
          g_warning ("Skipping a provider file: %s", load_error->message);
          g_ptr_array_add (self->load_errors, g_strdup (load_error->message));
          continue;
        }
      add_provider (self, provider);
    }
}

/**
 * kp_catalog_load:
 * @self: a #KpCatalog
 * @shipped_dir: (nullable): the providers shipped with Keypool
 * @user_dir: (nullable): the user's providers, which replace shipped ones with
 *   the same id or add new ones
 *
 * Reads every `*.json` file of both folders. A file that cannot be used is
 * skipped with a warning that names it and says why; the rest still load.
 */
void
kp_catalog_load (KpCatalog  *self,
                 const char *shipped_dir,
                 const char *user_dir)
{
  g_return_if_fail (KP_IS_CATALOG (self));

  load_dir (self, shipped_dir);
  load_dir (self, user_dir);
  rebuild_index (self);
}

/**
 * kp_catalog_apply_live:
 * @self: a #KpCatalog
 * @provider_id: a provider from the files
 * @live: (element-type KpLiveModel): the models its live list names
 * @listed_at: when the list was fetched, unix seconds
 *
 * Serves the provider's live model list from now on, merged with its file
 * (see kp_provider_new_merged()). The provider object is replaced, not
 * changed: a request in flight that holds the old one keeps its offerings.
 *
 * Returns: (transfer none) (nullable): the provider as served now, or %NULL
 *   when no file describes @provider_id
 */
KpProvider *
kp_catalog_apply_live (KpCatalog  *self,
                       const char *provider_id,
                       GArray     *live,
                       gint64      listed_at)
{
  g_autoptr(KpProvider) merged = NULL;
  KpProvider *bundled;

  g_return_val_if_fail (KP_IS_CATALOG (self), NULL);
  g_return_val_if_fail (provider_id != NULL, NULL);
  g_return_val_if_fail (live != NULL, NULL);

  bundled = g_hash_table_lookup (self->bundled, provider_id);
  if (bundled == NULL)
    return NULL;

  merged = kp_provider_new_merged (bundled, live, listed_at);
  put_provider (self, merged);
  rebuild_index (self);
  return merged;
}

/**
 * kp_catalog_get_bundled_provider:
 *
 * Returns: (transfer none) (nullable): the provider as its file describes
 *   it, before any live model list
 */
KpProvider *
kp_catalog_get_bundled_provider (KpCatalog  *self,
                                 const char *id)
{
  g_return_val_if_fail (KP_IS_CATALOG (self), NULL);
  g_return_val_if_fail (id != NULL, NULL);

  return g_hash_table_lookup (self->bundled, id);
}

/**
 * kp_catalog_get_providers:
 *
 * Returns: (transfer none) (element-type KpProvider): the providers, by id
 */
GPtrArray *
kp_catalog_get_providers (KpCatalog *self)
{
  g_return_val_if_fail (KP_IS_CATALOG (self), NULL);
  return self->providers;
}

KpProvider *
kp_catalog_get_provider (KpCatalog  *self,
                         const char *id)
{
  g_return_val_if_fail (KP_IS_CATALOG (self), NULL);
  g_return_val_if_fail (id != NULL, NULL);

  for (guint i = 0; i < self->providers->len; i++)
    {
      KpProvider *provider = g_ptr_array_index (self->providers, i);

      if (g_str_equal (kp_provider_get_id (provider), id))
        return provider;
    }
  return NULL;
}

static GPtrArray *
lookup_folded (KpCatalog  *self,
               const char *lower)
{
  GPtrArray *offerings = g_hash_table_lookup (self->by_model, lower);
  const char *canonical;

  if (offerings != NULL)
    return offerings;

  canonical = g_hash_table_lookup (self->by_alias, lower);
  if (canonical == NULL || *canonical == '\0')
    canonical = g_hash_table_lookup (self->by_bare, lower);
  if (canonical != NULL && *canonical != '\0')
    return g_hash_table_lookup (self->by_model, canonical);

  return NULL;
}

/**
 * kp_catalog_lookup:
 * @self: a #KpCatalog
 * @model: a canonical “vendor/model” id (any case) or a bare model name
 *   that names exactly one canonical model
 *
 * Returns: (transfer none) (nullable) (element-type KpOffering): the
 *   offerings of that model, or %NULL when no provider serves it
 */
GPtrArray *
kp_catalog_lookup (KpCatalog  *self,
                   const char *model)
{
  char lower[256];
  gsize len;
  GPtrArray *offerings;

  g_return_val_if_fail (KP_IS_CATALOG (self), NULL);
  g_return_val_if_fail (model != NULL, NULL);

  /* Fold case without allocating: this runs once per request. */
  len = strlen (model);
  if (len == 0 || len >= sizeof lower)
    return NULL;
  for (gsize i = 0; i <= len; i++)
    lower[i] = g_ascii_tolower (model[i]);

  offerings = lookup_folded (self, lower);
  if (offerings != NULL)
    return offerings;

  /* Anthropic's clients name snapshots by date ("claude-…-20250929"): when
   * no provider lists that snapshot, the model without its date serves.
   */
  len = kp_model_name_undated_length (lower);
  if (len == 0)
    return NULL;
  lower[len] = '\0';
  return lookup_folded (self, lower);
}

static guint
edit_distance (const char *a,
               const char *b)
{
  gsize la = strlen (a), lb = strlen (b);
  g_autofree guint *row = g_new (guint, lb + 1);

  for (gsize j = 0; j <= lb; j++)
    row[j] = j;
  for (gsize i = 1; i <= la; i++)
    {
      guint diagonal = row[0];

      row[0] = i;
      for (gsize j = 1; j <= lb; j++)
        {
          guint above = row[j];
          guint cost = a[i - 1] == b[j - 1] ? 0 : 1;

          row[j] = MIN (MIN (row[j] + 1, row[j - 1] + 1), diagonal + cost);
          diagonal = above;
        }
    }
  return row[lb];
}

typedef struct
{
  const char *id;
  guint       distance;
} Suggestion;

static int
compare_suggestions (gconstpointer a,
                     gconstpointer b)
{
  const Suggestion *sa = a;
  const Suggestion *sb = b;

  if (sa->distance != sb->distance)
    return sa->distance < sb->distance ? -1 : 1;
  return strcmp (sa->id, sb->id);
}

/**
 * kp_catalog_suggest:
 * @self: a #KpCatalog
 * @model: a model name nobody serves
 *
 * Returns: (transfer full) (nullable): up to three close canonical ids, as
 *   “a”, “b” or “c”, or %NULL when nothing is close
 */
char *
kp_catalog_suggest (KpCatalog  *self,
                    const char *model)
{
  g_autofree char *lower = g_ascii_strdown (model, -1);
  g_autoptr(GArray) found = g_array_new (FALSE, FALSE, sizeof (Suggestion));
  const char *bare_wanted = strchr (lower, '/') ? strchr (lower, '/') + 1 : lower;
  GString *out;

  g_return_val_if_fail (KP_IS_CATALOG (self), NULL);

  for (guint i = 0; i < self->model_ids->len; i++)
    {
      const char *id = g_ptr_array_index (self->model_ids, i);
      const char *bare = strchr (id, '/') + 1;
      Suggestion suggestion = { id, MIN (edit_distance (lower, id), edit_distance (bare_wanted, bare)) };
      guint limit = MAX (2, (guint)strlen (bare_wanted) / 4);

      /* A name inside another counts as close ("gpt-4o" in "openai/gpt-4o-mini"). */
      if (strlen (bare_wanted) >= 4 && strstr (id, bare_wanted) != NULL)
        suggestion.distance = MIN (suggestion.distance, 1);
      if (suggestion.distance <= limit)
        g_array_append_val (found, suggestion);
    }

  if (found->len == 0)
    return NULL;

  g_array_sort (found, compare_suggestions);
  out = g_string_new (NULL);
  for (guint i = 0; i < MIN (found->len, 3); i++)
    g_string_append_printf (out, "%s“%s”", i == 0 ? "" : i + 1 == MIN (found->len, 3) ? " or " : ", ",
                            g_array_index (found, Suggestion, i).id);
  return g_string_free (out, FALSE);
}

/**
 * kp_catalog_get_model_ids:
 *
 * Returns: (transfer none) (element-type utf8): every canonical model id, sorted
 */
GPtrArray *
kp_catalog_get_model_ids (KpCatalog *self)
{
  g_return_val_if_fail (KP_IS_CATALOG (self), NULL);
  return self->model_ids;
}

/**
 * kp_catalog_get_load_errors:
 *
 * Returns: (transfer none) (element-type utf8): one line per provider file
 *   that could not be used
 */
const GPtrArray *
kp_catalog_get_load_errors (KpCatalog *self)
{
  g_return_val_if_fail (KP_IS_CATALOG (self), NULL);
  return self->load_errors;
}

/**
 * kp_catalog_describe_unknown:
 * @model: a model name nobody serves
 *
 * Returns: (transfer full): what to tell a client that asked for @model,
 *   with close names when there are any
 */
char *
kp_catalog_describe_unknown (KpCatalog  *self,
                             const char *model)
{
  g_autofree char *close = kp_catalog_suggest (self, model);

  return g_strdup_printf ("The model “%s” is not served by any provider Keypool knows.%s%s%s "
                          "GET /v1/models lists the models you can use.", model,
                          close ? " Did you mean " : "", close ? close : "", close ? "?" : "");
}

/* Whether any of the offerings' providers passes @usable. */
static gboolean
any_usable (GPtrArray        *offerings,
            KpProviderFilter  usable,
            gpointer          user_data)
{
  for (guint j = 0; j < offerings->len; j++)
    {
      const KpOffering *offering = g_ptr_array_index (offerings, j);

      if (usable (offering->provider, user_data))
        return TRUE;
    }
  return FALSE;
}

/**
 * kp_catalog_dup_models_json:
 * @self: a #KpCatalog
 * @usable: which providers may serve now
 * @user_data: data for @usable
 *
 * Returns: (transfer full): the models some usable provider serves, as the
 *   one list both SDKs read: OpenAI's fields, and Anthropic's (type,
 *   display_name, created_at; has_more, first_id, last_id) beside them
 */
char *
kp_catalog_dup_models_json (KpCatalog        *self,
                            KpProviderFilter  usable,
                            gpointer          user_data)
{
  g_autoptr(JsonBuilder) builder = json_builder_new_immutable ();
  g_autoptr(JsonNode) root = NULL;
  const char *first = NULL;
  const char *last = NULL;

  g_return_val_if_fail (KP_IS_CATALOG (self), NULL);
  g_return_val_if_fail (usable != NULL, NULL);

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "object");
  json_builder_add_string_value (builder, "list");
  json_builder_set_member_name (builder, "data");
  json_builder_begin_array (builder);

  for (guint i = 0; i < self->model_ids->len; i++)
    {
      const char *id = g_ptr_array_index (self->model_ids, i);
      GPtrArray *offerings = kp_catalog_lookup (self, id);
      g_autofree char *vendor = g_strndup (id, strchr (id, '/') - id);

      if (!any_usable (offerings, usable, user_data))
        continue;

      json_builder_begin_object (builder);
      json_builder_set_member_name (builder, "id");
      json_builder_add_string_value (builder, id);
      json_builder_set_member_name (builder, "object");
      json_builder_add_string_value (builder, "model");
      json_builder_set_member_name (builder, "created");
      json_builder_add_int_value (builder, 0);
      json_builder_set_member_name (builder, "owned_by");
      json_builder_add_string_value (builder, vendor);
      json_builder_set_member_name (builder, "type");
      json_builder_add_string_value (builder, "model");
      json_builder_set_member_name (builder, "display_name");
      json_builder_add_string_value (builder, id);
      json_builder_set_member_name (builder, "created_at");
      json_builder_add_string_value (builder, "1970-01-01T00:00:00Z");
      json_builder_set_member_name (builder, "providers");
      json_builder_begin_array (builder);
      for (guint j = 0; j < offerings->len; j++)
        {
          const KpOffering *offering = g_ptr_array_index (offerings, j);

          if (usable (offering->provider, user_data))
            json_builder_add_string_value (builder, kp_provider_get_id (offering->provider));
        }
      json_builder_end_array (builder);
      json_builder_end_object (builder);
      if (first == NULL)
        first = id;
      last = id;
    }

  json_builder_end_array (builder);
  json_builder_set_member_name (builder, "has_more");
  json_builder_add_boolean_value (builder, FALSE);
  json_builder_set_member_name (builder, "first_id");
  if (first != NULL)
    json_builder_add_string_value (builder, first);
  else
    json_builder_add_null_value (builder);
  json_builder_set_member_name (builder, "last_id");
  if (last != NULL)
    json_builder_add_string_value (builder, last);
  else
    json_builder_add_null_value (builder);
  json_builder_end_object (builder);

  root = json_builder_get_root (builder);
  return json_to_string (root, FALSE);
}
