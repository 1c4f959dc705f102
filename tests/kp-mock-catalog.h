/* kp-mock-catalog.h: providers' model lists, credits and balances for tests
 *
 * A real SoupServer on an ephemeral loopback port that answers GET requests
 * with what the test set for each path, after a delay if asked, and counts
 * the requests (and how many were in flight at once) per path.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <libsoup/soup.h>

G_BEGIN_DECLS

typedef struct _KpMockCatalog KpMockCatalog;

KpMockCatalog *kp_mock_catalog_new              (GError        **error);
void           kp_mock_catalog_free             (KpMockCatalog  *self);
const char    *kp_mock_catalog_get_url          (KpMockCatalog  *self);
void           kp_mock_catalog_set              (KpMockCatalog  *self,
                                                 const char     *path,
                                                 guint           status,
                                                 const char     *body,
                                                 guint           delay_ms);
/* A delay that ends only with kp_mock_catalog_release(). */
#define KP_MOCK_CATALOG_HOLD ((guint)G_MAXINT)

void           kp_mock_catalog_release          (KpMockCatalog  *self,
                                                 const char     *path);
void           kp_mock_catalog_set_for_key      (KpMockCatalog  *self,
                                                 const char     *path,
                                                 const char     *auth,
                                                 const char     *body);
guint          kp_mock_catalog_get_requests     (KpMockCatalog  *self,
                                                 const char     *path);
guint          kp_mock_catalog_get_in_flight    (KpMockCatalog  *self,
                                                 const char     *path);
guint          kp_mock_catalog_get_max_in_flight (KpMockCatalog *self,
                                                 const char     *path);
gboolean       kp_mock_catalog_last_auth_is     (KpMockCatalog  *self,
                                                 const char     *path,
                                                 const char     *expected);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (KpMockCatalog, kp_mock_catalog_free)

G_END_DECLS
