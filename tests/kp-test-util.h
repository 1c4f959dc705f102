/* kp-test-util.h: helpers the test programs share
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <gio/gio.h>
#include <libsoup/soup.h>

#include "kp-gateway.h"

G_BEGIN_DECLS

gboolean kp_test_spin_until     (gboolean      (*done) (gpointer),
                                 gpointer        data,
                                 guint           timeout_ms);
void     kp_test_spin_ms        (guint           ms);
guint    kp_test_timeout_scale  (void);
void     kp_test_remove_tree    (const char     *path);
void     kp_test_store_result   (GObject        *object,
                                 GAsyncResult   *result,
                                 gpointer        user_data);
gboolean kp_test_result_ready   (gpointer        data);

KpGateway    *kp_test_gateway_new    (const char     *providers_dir,
                                      const char     *root,
                                      const char     *token);
void          kp_test_gateway_start  (KpGateway      *gateway);
void          kp_test_gateway_clear  (KpGateway     **gateway);

/* A test's private folder, with a providers/ folder in it, and the
 * environment variables it set.
 */
typedef struct
{
  char      *root;
  char      *providers;
  GPtrArray *env;
} KpTestPlace;

void          kp_test_place_init     (KpTestPlace    *place,
                                      const char     *name);
void          kp_test_place_setenv   (KpTestPlace    *place,
                                      const char     *variable,
                                      const char     *value);
void          kp_test_place_clear    (KpTestPlace    *place);
void          kp_test_place_write_provider (KpTestPlace *place,
                                            const char  *id,
                                            const char  *json);

KpGateway    *kp_test_gateway_serve  (KpTestPlace    *place,
                                      const char     *token,
                                      char          **base_url);
void          kp_test_gateway_clear_with_client (KpGateway   **gateway,
                                                 SoupSession **client);

int           kp_test_run            (GSubprocessLauncher *launcher,
                                      const char * const  *argv,
                                      const char          *input,
                                      char               **out,
                                      char               **err);
GPtrArray    *kp_test_keypool_argv   (va_list         args);

/* What a request through libsoup got back. */
typedef struct
{
  guint               status;
  char               *body;      /* NUL-terminated */
  gsize               length;
  SoupMessageHeaders *headers;
} KpTestResponse;

void          kp_test_response_clear (KpTestResponse *response);
void          kp_test_send           (SoupSession    *session,
                                      SoupMessage    *msg,
                                      guint           timeout_ms,
                                      KpTestResponse *response);
KpCredential *kp_test_credential     (KpGateway      *gateway,
                                      const char     *secret);
KpCredentialState kp_test_credential_state (KpGateway *gateway,
                                            const char *secret);
char         *kp_test_last_attempts  (const char     *db_path,
                                      guint          *n_requests);

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (KpTestResponse, kp_test_response_clear)

G_END_DECLS
