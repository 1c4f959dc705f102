/* fuzz-provider.c: a provider file, loaded as the catalog loads one
 *
 * The bytes are written to a file and read by kp_provider_new_from_file(),
 * the catalog's own loader; a provider that loads is then used the way the
 * planner, the relay and the refresh use one.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include "config.h"

#include <stdio.h>
#include <stdlib.h>

#include <glib/gstdio.h>

#include "kp-provider.h"

#include "fuzz-common.h"

static char *dir;
static char *path;

static void
remove_file (void)
{
  g_remove (path);
  g_rmdir (dir);
}

int
LLVMFuzzerInitialize (int    *argc,
                      char ***argv)
{
  g_autoptr(GError) error = NULL;

  fuzz_init ();
  /* Local files only: no GIO module is ever loaded. */
  g_setenv ("GIO_USE_VFS", "local", TRUE);
  dir = g_dir_make_tmp ("keypool-fuzz-XXXXXX", &error);
  g_assert_no_error (error);
  g_setenv ("GIO_MODULE_DIR", dir, TRUE);
  path = g_build_filename (dir, "provider.json", NULL);
  atexit (remove_file);
  return 0;
}

static void
use_provider (KpProvider *provider)
{
  g_autoptr(SoupMessageHeaders) headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_REQUEST);
  g_autoptr(GArray) live = g_array_new (FALSE, TRUE, sizeof (KpLiveModel));
  g_autoptr(KpProvider) merged = NULL;

  g_assert_nonnull (kp_provider_get_id (provider));
  g_assert_nonnull (kp_provider_get_name (provider));
  g_assert_nonnull (kp_provider_get_chat_uri (provider));
  g_assert_nonnull (kp_wire_for_id (kp_provider_get_wire (provider)));

  for (const KpWire * const *wire = kp_wire_all (); *wire != NULL; wire++)
    {
      GUri *uri = kp_provider_get_api_uri (provider, (*wire)->id);

      g_assert_true ((uri != NULL) == kp_provider_serves (provider, (*wire)->id));
    }

  for (guint i = 0; i < kp_provider_get_n_offerings (provider); i++)
    {
      const KpOffering *offering = kp_provider_get_offering (provider, i);
      KpLiveModel model = { .input = -1, .output = -1, .cached_input = -1 };
      g_autofree char *canonical = NULL;

      g_assert_nonnull (offering->model_id);
      g_assert_nonnull (offering->upstream_id);
      g_assert_true (offering->provider == provider);
      kp_offering_has_price (offering);
      kp_model_name_undated_length (offering->model_id);
      canonical = kp_live_model_canonical_id (provider, offering->upstream_id);
      model.upstream_id = g_strdup (offering->upstream_id);
      g_array_append_val (live, model);
    }

  kp_provider_apply_headers (provider, headers, "sk-fuzz-0000");
  kp_provider_get_models_prefix (provider);
  g_free (kp_provider_dup_models_url (provider));
  g_free (kp_provider_dup_balance_url (provider));
  kp_provider_get_prices_checked (provider);

  g_array_set_clear_func (live, kp_live_model_clear);
  merged = kp_provider_new_merged (provider, live, 1);
  g_assert_nonnull (merged);
}

int
LLVMFuzzerTestOneInput (const guint8 *data,
                        size_t        size)
{
  g_autoptr(KpProvider) provider = NULL;
  g_autoptr(GError) error = NULL;
  FILE *out = fopen (path, "wb");

  g_assert_nonnull (out);
  g_assert_cmpuint (fwrite (data, 1, size, out), ==, size);
  g_assert_cmpint (fclose (out), ==, 0);

  /* The catalog reads the message of every file it skips. */
  provider = kp_provider_new_from_file (path, &error);
  g_assert_true ((provider != NULL) != (error != NULL));
  if (provider != NULL)
    use_provider (provider);
  return 0;
}
