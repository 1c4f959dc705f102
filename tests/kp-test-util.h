/* kp-test-util.h: helpers the test programs share
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>
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
 * environment variables it set. config/, data/ and the database in it are
 * where a gateway or a keypool command on this place keeps them.
 */
typedef struct
{
  char      *root;
  char      *providers;
  char      *config;
  char      *data;
  char      *db;
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
GSubprocessLauncher *kp_test_place_launcher (KpTestPlace     *place,
                                             GSubprocessFlags flags);

KpGateway    *kp_test_gateway_serve  (KpTestPlace    *place,
                                      const char     *token,
                                      char          **base_url);
void          kp_test_gateway_clear_with_client (KpGateway   **gateway,
                                                 SoupSession **client);

/* A gateway in this process serving a test's place, and a client for it.
 * The test's mocks go after kp_test_rig_clear(): the gateway is gone then.
 */
typedef struct
{
  KpTestPlace  place;
  KpGateway   *gateway;   /* from kp_test_rig_serve() to kp_test_rig_stop() */
  SoupSession *client;
  char        *base;      /* the gateway's URL */
} KpTestRig;

void          kp_test_rig_init       (KpTestRig      *rig,
                                      const char     *name);
KpGateway    *kp_test_rig_new_gateway (KpTestRig     *rig,
                                       const char    *token);
void          kp_test_rig_start      (KpTestRig      *rig);
void          kp_test_rig_serve      (KpTestRig      *rig,
                                      const char     *token);
void          kp_test_rig_stop       (KpTestRig      *rig);
void          kp_test_rig_clear      (KpTestRig      *rig);

int           kp_test_run            (GSubprocessLauncher *launcher,
                                      const char * const  *argv,
                                      const char          *input,
                                      char               **out,
                                      char               **err);
GPtrArray    *kp_test_keypool_argv   (va_list         args);
int           kp_test_run_keypool    (GSubprocessLauncher *launcher,
                                      const char          *input,
                                      char               **out,
                                      char               **err,
                                      va_list              args);

/* What a request through libsoup got back. */
typedef struct
{
  guint               status;
  char               *body;      /* NUL-terminated */
  gsize               length;
  SoupMessageHeaders *headers;
} KpTestResponse;

SoupServer   *kp_test_server_new     (SoupServerCallback handler,
                                      gpointer           user_data,
                                      char             **base_url);
void          kp_test_reply_json     (SoupServerMessage *msg,
                                      guint              status,
                                      const char        *json);

void          kp_test_response_clear (KpTestResponse *response);
void          kp_test_send           (SoupSession    *session,
                                      SoupMessage    *msg,
                                      guint           timeout_ms,
                                      KpTestResponse *response);
void          kp_test_request        (SoupSession    *session,
                                      const char     *method,
                                      const char     *url,
                                      const char     *body,
                                      KpTestResponse *response,
                                      ...) G_GNUC_NULL_TERMINATED;
guint         kp_test_chat           (SoupSession    *session,
                                      const char     *url,
                                      const char     *token,
                                      const char     *model,
                                      KpTestResponse *response);
GHashTable   *kp_test_keyring_secrets (void);
KpCredential *kp_test_credential     (KpGateway      *gateway,
                                      const char     *secret);
KpCredentialState kp_test_credential_state (KpGateway *gateway,
                                            const char *secret);
char         *kp_test_last_attempts  (const char     *db_path,
                                      guint          *n_requests);

void          kp_test_assert_contains  (const char   *haystack,
                                        const char   *needle);
gboolean      kp_test_file_contains    (const char   *path,
                                        const char   *needle);
void          kp_test_assert_db_lacks  (const char   *db,
                                        const char   *text);
gint64        kp_test_db_int           (const char   *db,
                                        const char   *sql);
gboolean      kp_test_wait_db_int      (const char   *db,
                                        const char   *sql,
                                        gint64        want,
                                        guint         timeout_ms);
char         *kp_test_db_text          (const char   *db,
                                        const char   *sql);

/* The events of an SSE stream that carry data, in order. */
typedef struct
{
  GPtrArray *names;  /* "" for an event without a name */
  GPtrArray *datas;
} KpTestEvents;

KpTestEvents  kp_test_scan_events      (const char   *text,
                                        gsize         len);
void          kp_test_events_clear     (KpTestEvents *events);

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (KpTestEvents, kp_test_events_clear)

/* Fixture files (tests/fixtures/@dir/@name) and JSON, for the tests that
 * do no I/O.
 */
char         *kp_test_load_text        (const char   *dir,
                                        const char   *name,
                                        gsize        *len);
JsonNode     *kp_test_parse_json       (const char   *text,
                                        gssize        len);
JsonNode     *kp_test_load_json        (const char   *dir,
                                        const char   *name);
void          kp_test_assert_json_equal (JsonNode    *actual,
                                         JsonNode    *expected,
                                         const char  *what);

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (KpTestResponse, kp_test_response_clear)

G_END_DECLS
