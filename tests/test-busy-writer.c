/* test-busy-writer.c: nothing the serving loop writes waits for sqlite
 *
 * Another program holds the database's write lock. A catalog refresh, a
 * provider switched off, a key's options, a setting: each is queued for the
 * ledger's writer thread, so /health and a streamed request are answered
 * while they wait, what this process set reads back at once, the ledger
 * says it cannot write once the lock lasts, and everything lands in order
 * once the lock is gone, and survives a restart. Before, each of these
 * writes blocked the main loop for sqlite's busy timeout and then failed.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include "config.h"

#include <string.h>

#include <sqlite3.h>

#include "kp-gateway.h"
#include "kp-mock-catalog.h"
#include "kp-mock-upstream.h"
#include "kp-test-util.h"

#define TOKEN "kp-busy-writer-token-0123456789"
#define KEY   "sk-busy-writer-good-key-0001"

typedef struct
{
  KpMockUpstream *chat;
  KpMockCatalog  *catalog;
  KpGateway      *gateway;
  SoupSession    *client;
  KpTestPlace     place;
  char           *base;
  sqlite3        *db;      /* the other program's connection */
} Fixture;

static void
fixture_setup (Fixture       *fixture,
               gconstpointer  data)
{
  g_autoptr(GError) error = NULL;

  fixture->chat = kp_mock_upstream_new (&error);
  g_assert_no_error (error);
  fixture->catalog = kp_mock_catalog_new (&error);
  g_assert_no_error (error);
  kp_test_place_init (&fixture->place, "busy-writer");
  fixture->client = soup_session_new ();
}

static void
stop_gateway (Fixture *fixture)
{
  kp_test_gateway_clear (&fixture->gateway);
  g_clear_pointer (&fixture->base, g_free);
}

static void
fixture_teardown (Fixture       *fixture,
                  gconstpointer  data)
{
  g_clear_pointer (&fixture->db, sqlite3_close);
  soup_session_abort (fixture->client);
  g_clear_object (&fixture->client);
  stop_gateway (fixture);
  g_clear_pointer (&fixture->chat, kp_mock_upstream_free);
  g_clear_pointer (&fixture->catalog, kp_mock_catalog_free);
  kp_test_place_clear (&fixture->place);
}

/* Two providers on the chat mock: "live", whose model list comes from the
 * catalog mock, with a key; and "spare", without a key.
 */
static void
write_providers (Fixture *fixture)
{
  g_autofree char *live = NULL;
  g_autofree char *spare = NULL;
  g_autofree char *path = NULL;

  live = g_strdup_printf ("{\"id\":\"live\",\"base_url\":\"%s\",\"env\":[\"KP_BUSY_LIVE\"],"
                          "\"models_endpoint\":\"%s/live/models\",\"models\":[{\"id\":\"m/chat\","
                          "\"upstream_id\":\"mock-chat\",\"input\":1,\"output\":2}]}",
                          kp_mock_upstream_get_url (fixture->chat),
                          kp_mock_catalog_get_url (fixture->catalog));
  path = g_build_filename (fixture->place.providers, "live.json", NULL);
  g_assert_true (g_file_set_contents (path, live, -1, NULL));
  g_free (path);

  spare = g_strdup_printf ("{\"id\":\"spare\",\"base_url\":\"%s\",\"requires_key\":false,"
                           "\"auth\":\"none\",\"models\":[{\"id\":\"m/spare\","
                           "\"upstream_id\":\"mock-chat\",\"input\":1,\"output\":2}]}",
                           kp_mock_upstream_get_url (fixture->chat));
  path = g_build_filename (fixture->place.providers, "spare.json", NULL);
  g_assert_true (g_file_set_contents (path, spare, -1, NULL));

  kp_test_place_setenv (&fixture->place, "KP_BUSY_LIVE", KEY);
  kp_mock_catalog_set (fixture->catalog, "/live/models", 200,
                       "{\"data\":[{\"id\":\"mock-chat\"},{\"id\":\"mock-new\"}]}", 0);
}

static void
start_gateway (Fixture *fixture)
{
  fixture->gateway = kp_test_gateway_new (fixture->place.providers, fixture->place.root, TOKEN);
  kp_test_gateway_start (fixture->gateway);
  fixture->base = g_strdup_printf ("http://127.0.0.1:%u", kp_gateway_get_port (fixture->gateway));
}

static void
get (Fixture        *fixture,
     const char     *path,
     KpTestResponse *response)
{
  g_autofree char *url = g_strconcat (fixture->base, path, NULL);
  g_autoptr(SoupMessage) msg = soup_message_new ("GET", url);

  soup_message_headers_replace (soup_message_get_request_headers (msg), "Authorization",
                                "Bearer " TOKEN);
  kp_test_send (fixture->client, msg, 15000, response);
}

static void
send_chat (Fixture        *fixture,
           gboolean        stream,
           KpTestResponse *response)
{
  g_autofree char *body = g_strdup_printf ("{\"model\":\"m/chat\",\"stream\":%s,"
                                           "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
                                           stream ? "true" : "false");
  g_autofree char *url = g_strconcat (fixture->base, "/v1/chat/completions", NULL);
  g_autoptr(SoupMessage) msg = soup_message_new ("POST", url);
  g_autoptr(GBytes) bytes = g_bytes_new (body, strlen (body));

  soup_message_headers_replace (soup_message_get_request_headers (msg), "Authorization",
                                "Bearer " TOKEN);
  soup_message_set_request_body_from_bytes (msg, "application/json", bytes);
  kp_test_send (fixture->client, msg, 15000, response);
}

/* One integer from the other program's connection, or -1 for no row. */
static gint64
query_int (sqlite3    *db,
           const char *sql)
{
  sqlite3_stmt *stmt = NULL;
  gint64 value = -1;

  g_assert_cmpint (sqlite3_prepare_v2 (db, sql, -1, &stmt, NULL), ==, SQLITE_OK);
  if (sqlite3_step (stmt) == SQLITE_ROW)
    value = sqlite3_column_int64 (stmt, 0);
  sqlite3_finalize (stmt);
  return value;
}

/* Whether every write made while the lock was held is in the file. */
static gboolean
all_written (gpointer data)
{
  Fixture *fixture = data;

  return query_int (fixture->db, "SELECT COUNT(*) FROM catalog_models "
                                 "WHERE provider = 'live' AND upstream_id = 'mock-new'") == 1 &&
         query_int (fixture->db, "SELECT ok_at > 0 FROM provider_refresh "
                                 "WHERE provider = 'live'") == 1 &&
         query_int (fixture->db, "SELECT enabled FROM provider_settings "
                                 "WHERE provider = 'spare'") == 0 &&
         query_int (fixture->db, "SELECT multiplier * 100 FROM credentials "
                                 "WHERE provider = 'live'") == 50 &&
         query_int (fixture->db, "SELECT CAST(value AS INTEGER) FROM settings "
                                 "WHERE key = 'catalog-refresh-hours'") == 12 &&
         query_int (fixture->db, "SELECT COUNT(*) FROM requests WHERE status = 200") >= 1;
}

/* None of them is: the lock is still held. */
static gboolean
none_written (Fixture *fixture)
{
  return query_int (fixture->db, "SELECT COUNT(*) FROM catalog_models") == 0 &&
         query_int (fixture->db, "SELECT COUNT(*) FROM provider_refresh") == 0 &&
         query_int (fixture->db, "SELECT COUNT(*) FROM provider_settings") == 0 &&
         query_int (fixture->db, "SELECT multiplier * 100 FROM credentials "
                                 "WHERE provider = 'live'") == 100 &&
         query_int (fixture->db, "SELECT COUNT(*) FROM settings "
                                 "WHERE key = 'catalog-refresh-hours'") == 0;
}

static KpProvider *
provider (Fixture    *fixture,
          const char *id)
{
  KpProvider *found = kp_catalog_get_provider (kp_gateway_get_catalog (fixture->gateway), id);

  g_assert_nonnull (found);
  return found;
}

/* Whether the catalog serves the model only the live list names. */
static gboolean
has_live_model (Fixture *fixture)
{
  KpProvider *live = provider (fixture, "live");

  for (guint i = 0; i < kp_provider_get_n_offerings (live); i++)
    if (g_strcmp0 (kp_provider_get_offering (live, i)->upstream_id, "mock-new") == 0)
      return TRUE;
  return FALSE;
}

static gboolean
ledger_has_problem (gpointer data)
{
  return kp_ledger_get_problem (data) != NULL;
}

static gboolean
ledger_is_well (gpointer data)
{
  return kp_ledger_get_problem (data) == NULL;
}

static void
test_busy_writer (Fixture       *fixture,
                  gconstpointer  data)
{
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GPtrArray) results = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *hours = NULL;
  KpLedger *ledger;
  KpRefresh *refresh;
  KpCredential *credential;
  gint64 started;

  write_providers (fixture);
  start_gateway (fixture);
  ledger = kp_gateway_get_ledger (fixture->gateway);
  refresh = kp_gateway_get_refresh (fixture->gateway);
  credential = kp_test_credential (fixture->gateway, KEY);
  g_assert_nonnull (credential);

  /* The other program takes the write lock and keeps it until told. */
  g_assert_cmpint (sqlite3_open_v2 (kp_ledger_get_path (ledger), &fixture->db,
                                    SQLITE_OPEN_READWRITE, NULL), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_exec (fixture->db, "BEGIN IMMEDIATE", NULL, NULL, NULL), ==, SQLITE_OK);
  g_test_expect_message ("keypool", G_LOG_LEVEL_WARNING, "*not being recorded*locked*");
  started = g_get_monotonic_time ();

  /* A catalog refresh: its list applies at once, its rows wait. */
  kp_refresh_run_async (refresh, "live", NULL, kp_test_store_result, &result);
  g_assert_true (kp_test_spin_until (kp_test_result_ready, &result, 15000));
  results = kp_refresh_run_finish (refresh, result, &error);
  g_assert_no_error (error);
  g_assert_cmpint (((KpRefreshResult *)g_ptr_array_index (results, 0))->outcome, ==,
                   KP_REFRESH_OK);
  g_assert_true (has_live_model (fixture));

  /* What the user changes applies at once too. */
  g_assert_true (kp_gateway_set_provider_enabled (fixture->gateway, "spare", FALSE, &error));
  g_assert_no_error (error);
  g_assert_true (kp_gateway_set_key_options (fixture->gateway, kp_credential_get_id (credential),
                                             0.5, TRUE, &error));
  g_assert_no_error (error);
  kp_ledger_set_setting_async (ledger, "catalog-refresh-hours", "12", NULL, NULL);
  hours = kp_ledger_get_setting (ledger, "catalog-refresh-hours");
  g_assert_cmpstr (hours, ==, "12");

  /* The loop serves meanwhile: /health, and a stream to its end. */
  {
    g_auto(KpTestResponse) health = { 0 };
    g_auto(KpTestResponse) stream = { 0 };

    get (fixture, "/health", &health);
    g_assert_cmpuint (health.status, ==, 200);
    send_chat (fixture, TRUE, &stream);
    g_assert_cmpuint (stream.status, ==, 200);
    g_assert_nonnull (strstr (stream.body, "data: [DONE]"));
  }
  g_test_message ("refresh, three writes, /health and a stream with the database locked: "
                  "%" G_GINT64_FORMAT " ms", (g_get_monotonic_time () - started) / 1000);
  g_assert_true (none_written (fixture));

  /* The lock lasts: the ledger says so, and so does /health. */
  g_assert_true (kp_test_spin_until (ledger_has_problem, ledger, 20000));
  g_test_assert_expected_messages ();
  {
    g_auto(KpTestResponse) health = { 0 };

    get (fixture, "/health", &health);
    g_assert_nonnull (strstr (health.body, "\"degraded\""));
  }
  g_assert_true (none_written (fixture));

  /* The lock goes: everything lands, and the ledger is well again. */
  g_assert_cmpint (sqlite3_exec (fixture->db, "ROLLBACK", NULL, NULL, NULL), ==, SQLITE_OK);
  g_assert_true (kp_test_spin_until (all_written, fixture, 20000));
  g_assert_true (kp_test_spin_until (ledger_is_well, ledger, 20000));

  /* And a restart finds it all. */
  g_clear_pointer (&fixture->db, sqlite3_close);
  stop_gateway (fixture);
  kp_mock_catalog_set (fixture->catalog, "/live/models", 500, "{}", 0);
  start_gateway (fixture);
  ledger = kp_gateway_get_ledger (fixture->gateway);
  g_assert_true (has_live_model (fixture));
  g_assert_true (kp_gateway_provider_is_enabled (fixture->gateway, provider (fixture, "live")));
  g_assert_false (kp_gateway_provider_is_enabled (fixture->gateway, provider (fixture, "spare")));
  g_assert_cmpfloat (kp_credential_get_multiplier (kp_test_credential (fixture->gateway, KEY)), ==,
                     0.5);
  g_clear_pointer (&hours, g_free);
  hours = kp_ledger_get_setting (ledger, "catalog-refresh-hours");
  g_assert_cmpstr (hours, ==, "12");
}

static void
count_finished (KpGateway *gateway,
                KpRelay   *relay,
                gpointer   user_data)
{
  (*(guint *)user_data)++;
}

typedef struct
{
  Fixture *fixture;
  guint   *finished;
} Lone;

static gboolean
lone_row_written (gpointer data)
{
  Lone *lone = data;

  return query_int (lone->fixture->db, "SELECT COUNT(*) FROM requests WHERE status = 200") == 1;
}

static gboolean
lone_finished (gpointer data)
{
  Lone *lone = data;

  return *lone->finished > 0;
}

static gboolean
ledger_can_write_now (gpointer data)
{
  return kp_ledger_can_add_request_now (data);
}

/* A request alone in flight is answered first and its row committed right
 * after; when another program took the write lock in between, the row goes
 * to the writer like any other: it lands once the lock is gone, and the
 * request is told of once, its answer ended once.
 */
static void
test_lone_request_locked (Fixture       *fixture,
                          gconstpointer  data)
{
  g_auto(KpTestResponse) answer = { 0 };
  KpLedger *ledger;
  guint finished = 0;
  Lone lone = { fixture, &finished };

  write_providers (fixture);
  start_gateway (fixture);
  ledger = kp_gateway_get_ledger (fixture->gateway);
  g_signal_connect (fixture->gateway, "request-finished", G_CALLBACK (count_finished), &finished);

  /* What starting queued is written: the row would be committed at once. */
  g_assert_true (kp_test_spin_until (ledger_can_write_now, ledger, 20000));
  g_assert_cmpint (sqlite3_open_v2 (kp_ledger_get_path (ledger), &fixture->db,
                                    SQLITE_OPEN_READWRITE, NULL), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_exec (fixture->db, "BEGIN IMMEDIATE", NULL, NULL, NULL), ==, SQLITE_OK);
  g_assert_true (kp_ledger_can_add_request_now (ledger));
  g_test_expect_message ("keypool", G_LOG_LEVEL_WARNING, "*not being recorded*locked*");

  send_chat (fixture, FALSE, &answer);
  g_assert_cmpuint (answer.status, ==, 200);
  g_assert_nonnull (strstr (answer.body, "\"usage\""));
  g_assert_cmpint (query_int (fixture->db, "SELECT COUNT(*) FROM requests"), ==, 0);

  /* The row waits in memory, and the ledger says why once the lock lasts. */
  g_assert_true (kp_test_spin_until (ledger_has_problem, ledger, 20000));
  g_test_assert_expected_messages ();
  g_assert_cmpint (query_int (fixture->db, "SELECT COUNT(*) FROM requests"), ==, 0);

  g_assert_cmpint (sqlite3_exec (fixture->db, "ROLLBACK", NULL, NULL, NULL), ==, SQLITE_OK);
  g_assert_true (kp_test_spin_until (lone_row_written, &lone, 20000));
  g_assert_true (kp_test_spin_until (ledger_is_well, ledger, 20000));
  g_assert_true (kp_test_spin_until (lone_finished, &lone, 20000));
  g_assert_cmpuint (finished, ==, 1);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  /* The test refreshes when it wants to. */
  g_setenv ("KEYPOOL_REFRESH_INTERVAL_MS", "0", TRUE);

  g_test_add ("/keypool/busy-writer/serves-while-writes-wait", Fixture, NULL, fixture_setup,
              test_busy_writer, fixture_teardown);
  g_test_add ("/keypool/busy-writer/lone-request-locked", Fixture, NULL, fixture_setup,
              test_lone_request_locked, fixture_teardown);

  return g_test_run ();
}
