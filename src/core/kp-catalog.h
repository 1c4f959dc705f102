/* kp-catalog.h: providers × models × prices; model lookup
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include "kp-provider.h"

G_BEGIN_DECLS

#define KP_TYPE_CATALOG (kp_catalog_get_type ())

/* Whether a provider passes: for example, may serve now. */
typedef gboolean (*KpProviderFilter) (KpProvider *provider,
                                      gpointer    user_data);

G_DECLARE_FINAL_TYPE (KpCatalog, kp_catalog, KP, CATALOG, GObject)

KpCatalog  *kp_catalog_new             (void);
void        kp_catalog_load            (KpCatalog   *self,
                                        const char  *shipped_dir,
                                        const char  *user_dir);
void        kp_catalog_add_provider    (KpCatalog   *self,
                                        KpProvider  *provider);
KpProvider *kp_catalog_apply_live      (KpCatalog   *self,
                                        const char  *provider_id,
                                        GArray      *live,
                                        gint64       listed_at);
KpProvider *kp_catalog_get_bundled_provider (KpCatalog *self,
                                        const char  *id);
GPtrArray  *kp_catalog_get_providers   (KpCatalog   *self);
KpProvider *kp_catalog_get_provider    (KpCatalog   *self,
                                        const char  *id);
GPtrArray  *kp_catalog_lookup          (KpCatalog   *self,
                                        const char  *model);
GPtrArray  *kp_catalog_get_model_ids   (KpCatalog   *self);
char       *kp_catalog_suggest         (KpCatalog   *self,
                                        const char  *model);
char       *kp_catalog_describe_unknown (KpCatalog  *self,
                                        const char  *model);
const GPtrArray *kp_catalog_get_load_errors (KpCatalog *self);
char       *kp_catalog_dup_models_json (KpCatalog        *self,
                                        KpProviderFilter  usable,
                                        gpointer          user_data);

G_END_DECLS
