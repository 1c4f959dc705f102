/* test-refusals.c: a request Keypool cannot serve still leaves a trace
 *
 * The real gateway, server and sqlite ledger in this process: refusals
 * (a bad token, an unknown path, a wrong method, an untrusted Host, a body
 * too large) and a request for an unknown model are found in the database
 * with their status, path and client, and nothing of the request's body or
 * token; a flood of them is a handful of rows; `keypool requests --errors`
 * lists them.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include "config.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sys/socket.h>

#include <glib/gstdio.h>
#include <sqlite3.h>

#include "kp-gateway.h"
#include "kp-ledger.h"
#include "kp-refusals.h"
#include "kp-test-util.h"

#define TOKEN       "kp-refusals-token-0123456789"
#define WRONG_TOKEN "kp-wrong-token-abcdefghijkl"
#define BODY_SECRET "body-secret-that-must-not-be-kept"
#define QUERY_SECRET "query-secret-zyxwvu"

typedef struct
{
  KpTestPlace  place;
  KpGateway   *gateway;
  SoupSession *client;
  char        *base;
  char        *db;
  guint        batches;   /* KpLedger::refusals-written */
} Fixture;

static void
on_refusals_written (KpLedger *ledger,
                     Fixture  *fixture)
{
  fixture->batches++;
}

static void
fixture_setup (Fixture       *fixture,
               gconstpointer  data)
{
  kp_test_place_init (&fixture->place, "refusals");
  fixture->gateway = kp_test_gateway_new (fixture->place.providers, fixture->place.root, TOKEN);
  kp_gateway_set_body_limit (fixture->gateway, 64 * 1024);
  kp_test_gateway_start (fixture->gateway);
  g_signal_connect (kp_gateway_get_ledger (fixture->gateway), "refusals-written",
                    G_CALLBACK (on_refusals_written), fixture);
  fixture->base = g_strdup_printf ("http://127.0.0.1:%u", kp_gateway_get_port (fixture->gateway));
  fixture->db = g_build_filename (fixture->place.root, "data", "keypool.db", NULL);
  fixture->client = soup_session_new ();
}

static void
stop_gateway (Fixture *fixture)
{
  if (fixture->gateway == NULL)
    return;
  g_signal_handlers_disconnect_by_data (kp_gateway_get_ledger (fixture->gateway), fixture);
  kp_test_gateway_clear (&fixture->gateway);
}

static void
fixture_teardown (Fixture       *fixture,
                  gconstpointer  data)
{
  soup_session_abort (fixture->client);
  g_clear_object (&fixture->client);
  stop_gateway (fixture);
  kp_test_place_clear (&fixture->place);
  g_free (fixture->base);
  g_free (fixture->db);
}

/* Requests --------------------------------------------------------------- */

static guint
send_request (Fixture    *fixture,
              const char *method,
              const char *path,
              const char *token,
              const char *body)
{
  g_autofree char *url = g_strconcat (fixture->base, path, NULL);
  g_autoptr(SoupMessage) msg = soup_message_new (method, url);
  g_auto(KpTestResponse) response = { 0 };

  if (token != NULL)
    {
      g_autofree char *auth = g_strconcat ("Bearer ", token, NULL);

      soup_message_headers_replace (soup_message_get_request_headers (msg), "Authorization", auth);
    }
  if (body != NULL)
    {
      g_autoptr(GBytes) bytes = g_bytes_new (body, strlen (body));

      soup_message_set_request_body_from_bytes (msg, "application/json", bytes);
    }
  kp_test_send (fixture->client, msg, 10000, &response);
  return response.status;
}

#define IN_FLIGHT 32

typedef struct
{
  Fixture     *fixture;
  SoupSession *session;
  guint        to_send;
  guint        sent;
  guint        pending;
  const char  *method;
  const char  *path;
  gboolean     numbered;
  char        *auth;
  guint        status;   /* the status every answer had, or 1 when they differed */
  guint        failed;   /* answers that did not come */
} Many;

static void send_next (Many *many);

static void
on_many_sent (GObject      *object,
              GAsyncResult *result,
              gpointer      user_data)
{
  Many *many = user_data;
  SoupMessage *msg = soup_session_get_async_result_message (SOUP_SESSION (object), result);
  g_autoptr(GBytes) body = soup_session_send_and_read_finish (SOUP_SESSION (object), result, NULL);
  guint status = soup_message_get_status (msg);

  if (body == NULL)
    many->failed++;
  else if (many->status == 0)
    many->status = status;
  else if (many->status != status)
    many->status = 1;
  many->pending--;
  send_next (many);
}

static void
send_next (Many *many)
{
  g_autofree char *number = NULL;
  g_autofree char *url = NULL;
  g_autoptr(SoupMessage) msg = NULL;

  if (many->sent == many->to_send)
    return;
  number = many->numbered ? g_strdup_printf ("%u", many->sent) : NULL;
  url = g_strconcat (many->fixture->base, many->path, number, NULL);
  msg = soup_message_new (many->method, url);
  soup_message_headers_replace (soup_message_get_request_headers (msg), "Authorization",
                                many->auth);
  many->sent++;
  many->pending++;
  soup_session_send_and_read_async (many->session, msg, G_PRIORITY_DEFAULT, NULL,
                                    on_many_sent, many);
}

static gboolean
many_done (gpointer data)
{
  Many *many = data;

  return many->sent == many->to_send && many->pending == 0;
}

/* Sends @n requests to @path, followed by the request's number when
 * @numbered, IN_FLIGHT at a time: a flood, as fast as this loop serves it.
 * Returns the status they all had.
 */
static guint
send_many (Fixture    *fixture,
           guint       n,
           const char *method,
           const char *path,
           gboolean    numbered,
           const char *token)
{
  g_autoptr(SoupSession) session = soup_session_new_with_options ("max-conns", IN_FLIGHT,
                                                                  "max-conns-per-host", IN_FLIGHT,
                                                                  NULL);
  g_autofree char *auth = g_strconcat ("Bearer ", token, NULL);
  Many many = { fixture, session, n, 0, 0, method, path, numbered, auth, 0, 0 };

  for (guint i = 0; i < IN_FLIGHT; i++)
    send_next (&many);
  g_assert_true (kp_test_spin_until (many_done, &many, 60000));
  g_assert_cmpuint (many.failed, ==, 0);
  return many.status;
}

typedef struct
{
  int      fd;
  GString *answer;
  gboolean closed;
} Raw;

static gboolean
raw_closed (gpointer data)
{
  Raw *raw = data;
  char buffer[4096];
  gssize n;

  while ((n = recv (raw->fd, buffer, sizeof buffer, MSG_DONTWAIT)) > 0)
    g_string_append_len (raw->answer, buffer, n);
  if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
    raw->closed = TRUE;
  return raw->closed;
}

/* Sends @request as it is (the server shares this loop) and returns the
 * status of the answer.
 */
static guint
send_raw (Fixture    *fixture,
          const char *request,
          gsize       length)
{
  struct sockaddr_in address = { 0 };
  g_autoptr(GString) answer = g_string_new (NULL);
  Raw raw = { -1, answer, FALSE };
  guint status = 0;

  raw.fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  g_assert_cmpint (raw.fd, >=, 0);
  address.sin_family = AF_INET;
  address.sin_port = htons (kp_gateway_get_port (fixture->gateway));
  address.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
  g_assert_cmpint (connect (raw.fd, (struct sockaddr *)&address, sizeof address), ==, 0);
  g_assert_cmpint (send (raw.fd, request, length, MSG_NOSIGNAL), ==, (gssize)length);
  shutdown (raw.fd, SHUT_WR);

  g_assert_true (kp_test_spin_until (raw_closed, &raw, 10000));
  close (raw.fd);
  if (g_str_has_prefix (answer->str, "HTTP/1.1 "))
    status = atoi (answer->str + 9);
  return status;
}

static gboolean
clock_moved (gpointer data)
{
  return g_get_real_time () / 1000 > *(gint64 *)data;
}

/* Waits for the next millisecond: rows are ordered by their time in ms. */
static void
next_ms (void)
{
  gint64 now_ms = g_get_real_time () / 1000;

  g_assert_true (kp_test_spin_until (clock_moved, &now_ms, 1000));
}

/* The database, read as another process would -------------------------------- */

static sqlite3 *
open_db (Fixture *fixture)
{
  sqlite3 *db = NULL;

  g_assert_cmpint (sqlite3_open_v2 (fixture->db, &db, SQLITE_OPEN_READONLY, NULL), ==, SQLITE_OK);
  sqlite3_busy_timeout (db, 2000);
  return db;
}

/* Waits until @sql answers @want; fails the test after a while. */
static void
wait_for (Fixture    *fixture,
          const char *sql,
          gint64      want)
{
  if (!kp_test_wait_db_int (fixture->db, sql, want, 20000))
    g_error ("“%s” answered %" G_GINT64_FORMAT ", not %" G_GINT64_FORMAT,
             sql, kp_test_db_int (fixture->db, sql), want);
}

/* One refusal row, as "METHOD PATH STATUS CODE CLIENT COUNT". */
static char *
refusal_row (Fixture    *fixture,
             const char *code)
{
  sqlite3 *db = open_db (fixture);
  sqlite3_stmt *stmt = NULL;
  char *row = NULL;

  g_assert_cmpint (sqlite3_prepare_v2 (db,
                                       "SELECT method, path, status, code, client, count "
                                       "FROM refusals WHERE code = ?", -1, &stmt, NULL),
                   ==, SQLITE_OK);
  sqlite3_bind_text (stmt, 1, code, -1, SQLITE_STATIC);
  if (sqlite3_step (stmt) == SQLITE_ROW)
    row = g_strdup_printf ("%s %s %d %s %s %d", sqlite3_column_text (stmt, 0),
                           sqlite3_column_text (stmt, 1), sqlite3_column_int (stmt, 2),
                           sqlite3_column_text (stmt, 3), sqlite3_column_text (stmt, 4),
                           sqlite3_column_int (stmt, 5));
  g_assert_cmpint (sqlite3_step (stmt), ==, SQLITE_DONE);
  sqlite3_finalize (stmt);
  sqlite3_close (db);
  return row;
}

/* Tests -------------------------------------------------------------------- */

#define CHAT_BODY "{\"model\":\"nobody/no-such-model\",\"messages\":[{\"role\":\"user\"," \
                  "\"content\":\"" BODY_SECRET "\"}]}"

/* Each kind of refusal, and a request for an unknown model, leaves a row
 * with its status, path and client, and nothing else of the request.
 */
static void
test_traces (Fixture       *fixture,
             gconstpointer  data)
{
  g_autofree char *row = NULL;
  g_autofree char *too_large = NULL;
  g_autoptr(GPtrArray) problems = NULL;
  g_autoptr(GError) error = NULL;
  const char *evil_host =
    "GET /health HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n";

  g_assert_cmpuint (send_request (fixture, "POST", "/v1/chat/completions", WRONG_TOKEN, CHAT_BODY),
                    ==, 401);
  g_assert_cmpuint (send_request (fixture, "POST", "/v1/messages", NULL, CHAT_BODY), ==, 401);
  g_assert_cmpuint (send_request (fixture, "GET", "/v1/nothing-here?key=" QUERY_SECRET, TOKEN,
                                  NULL), ==, 404);
  g_assert_cmpuint (send_request (fixture, "GET", "/v1/chat/completions", TOKEN, NULL), ==, 405);
  g_assert_cmpuint (send_request (fixture, "POST", "/v1/chat/completions", TOKEN, CHAT_BODY),
                    ==, 404);
  g_assert_cmpuint (send_raw (fixture, evil_host, strlen (evil_host)), ==, 403);
  next_ms ();
  too_large = g_strdup_printf ("POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                               "Authorization: Bearer %s\r\nContent-Type: application/json\r\n"
                               "Content-Length: 10000000\r\nExpect: 100-continue\r\n"
                               "Connection: close\r\n\r\n", TOKEN);
  g_assert_cmpuint (send_raw (fixture, too_large, strlen (too_large)), ==, 413);

  wait_for (fixture, "SELECT COUNT(*) FROM refusals", 6);
  wait_for (fixture, "SELECT COUNT(*) FROM requests", 1);

  row = refusal_row (fixture, "invalid_api_key");
  g_assert_cmpstr (row, ==, "POST /v1/chat/completions 401 invalid_api_key 127.0.0.1 1");
  g_free (row);
  row = refusal_row (fixture, "missing_api_key");
  g_assert_cmpstr (row, ==, "POST /v1/messages 401 missing_api_key 127.0.0.1 1");
  g_free (row);
  /* The path without its query: a key can be in a query. */
  row = refusal_row (fixture, "unknown_path");
  g_assert_cmpstr (row, ==, "GET /v1/nothing-here 404 unknown_path 127.0.0.1 1");
  g_free (row);
  row = refusal_row (fixture, "method_not_allowed");
  g_assert_cmpstr (row, ==, "GET /v1/chat/completions 405 method_not_allowed 127.0.0.1 1");
  g_free (row);
  row = refusal_row (fixture, "forbidden_host");
  g_assert_cmpstr (row, ==, "GET /health 403 forbidden_host 127.0.0.1 1");
  g_free (row);
  row = refusal_row (fixture, "request_too_large");
  g_assert_cmpstr (row, ==, "POST /v1/chat/completions 413 request_too_large 127.0.0.1 1");

  /* The unknown model went through the relay: a failed request row. */
  g_assert_cmpint (kp_test_db_int (fixture->db,
                                   "SELECT COUNT(*) FROM requests WHERE status = 404 AND "
                                       "outcome = 'client_error' AND "
                                       "model = 'nobody/no-such-model' AND "
                                       "client_address = '127.0.0.1'"),
                   ==, 1);

  /* Both in one list, newest first: the refusal of the large body last. */
  problems = kp_ledger_recent_problems (kp_gateway_get_ledger (fixture->gateway), 100, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (problems->len, ==, 7);
  {
    KpProblemRow *newest = g_ptr_array_index (problems, 0);
    gboolean model_seen = FALSE;

    g_assert_true (newest->refused);
    g_assert_cmpstr (newest->code, ==, "request_too_large");
    for (guint i = 0; i < problems->len; i++)
      {
        KpProblemRow *problem = g_ptr_array_index (problems, i);

        if (i > 0)
          g_assert_cmpint (problem->time_ms, <=,
                           ((KpProblemRow *)g_ptr_array_index (problems, i - 1))->time_ms);
        if (!problem->refused)
          {
            g_assert_cmpstr (problem->model, ==, "nobody/no-such-model");
            g_assert_cmpuint (problem->status, ==, 404);
            g_assert_cmpstr (problem->code, ==, "client_error");
            /* Where it came from, like a refusal. */
            g_assert_cmpstr (problem->client, ==, "127.0.0.1");
            model_seen = TRUE;
          }
      }
    g_assert_true (model_seen);
  }

  /* Nothing of the requests' bodies, tokens or queries, even in the WAL. */
  stop_gateway (fixture);
  kp_test_assert_db_lacks (fixture->db, WRONG_TOKEN);
  kp_test_assert_db_lacks (fixture->db, TOKEN);
  kp_test_assert_db_lacks (fixture->db, BODY_SECRET);
  kp_test_assert_db_lacks (fixture->db, QUERY_SECRET);
  kp_test_assert_db_lacks (fixture->db, "evil.example");
}

/* A path from an attacker is kept short, as valid UTF-8 without control
 * characters (a terminal would obey an escape sequence).
 */
static void
test_hostile_path (Fixture       *fixture,
                   gconstpointer  data)
{
  g_autoptr(GString) request = g_string_new ("GET /v1/\xff\xfe\x1b[2J");
  g_autoptr(GPtrArray) problems = NULL;
  g_autoptr(GError) error = NULL;
  KpProblemRow *problem;

  for (guint i = 0; i < 1000; i++)
    g_string_append (request, "é");
  g_string_append_printf (request, " HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n"
                          "Connection: close\r\n\r\n", TOKEN);
  g_assert_cmpuint (send_raw (fixture, request->str, request->len), ==, 404);

  wait_for (fixture, "SELECT COUNT(*) FROM refusals", 1);
  problems = kp_ledger_recent_problems (kp_gateway_get_ledger (fixture->gateway), 10, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (problems->len, ==, 1);
  problem = g_ptr_array_index (problems, 0);
  g_assert_cmpstr (problem->code, ==, "unknown_path");
  g_assert_cmpuint (strlen (problem->path), <=, KP_REFUSALS_PATH_MAX);
  g_assert_true (g_utf8_validate (problem->path, -1, NULL));
  g_assert_null (strchr (problem->path, '\x1b'));
  g_assert_true (g_str_has_prefix (problem->path, "/v1/"));
  g_assert_true (g_str_has_suffix (problem->path, "…"));
}

static void
test_clean (void)
{
  g_autofree char *plain = kp_refusals_clean ("/v1/chat/completions", 200);
  g_autofree char *control = kp_refusals_clean ("/a\x1b[31m\n\r\x7f\xc2\x9b\xe2\x80\xae", 200);
  g_autofree char *invalid = kp_refusals_clean ("/\xff\xfe/x", 200);
  g_autofree char *cut = kp_refusals_clean ("/ééééééééé", 8);
  g_autofree char *exact = kp_refusals_clean ("/abcdefg", 8);

  g_assert_cmpstr (plain, ==, "/v1/chat/completions");
  /* ESC, newline, CR, DEL, CSI (C1) and a right-to-left override. */
  g_assert_cmpstr (control, ==, "/a?[31m?????");
  g_assert_true (g_utf8_validate (invalid, -1, NULL));
  g_assert_true (g_str_has_suffix (invalid, "/x"));
  /* Cut on a character, with room for the ellipsis. */
  g_assert_cmpstr (cut, ==, "/éé…");
  g_assert_cmpstr (exact, ==, "/abcdefg");
  g_assert_null (kp_refusals_clean (NULL, 8));
}

/* 2,000 requests with a wrong token: one row, written once and then
 * counted up, not 2,000 writes.
 */
static void
test_flood (Fixture       *fixture,
            gconstpointer  data)
{
  gint64 started = g_get_monotonic_time ();
  guint windows;

  g_assert_cmpuint (send_many (fixture, 2000, "POST", "/v1/chat/completions", FALSE,
                               WRONG_TOKEN), ==, 401);
  /* A slow machine may need more than one window for the flood. */
  windows = 1 + (g_get_monotonic_time () - started) / (KP_REFUSALS_WINDOW_MS * 1000);

  wait_for (fixture, "SELECT COUNT(*) > 0 FROM refusals", 1);
  g_assert_cmpint (kp_test_db_int (fixture->db, "SELECT COUNT(*) FROM refusals"), <=, 2 * windows);
  g_assert_cmpuint (fixture->batches, <=, 2 * windows);

  /* The repeats counted in memory are written when Keypool stops. */
  stop_gateway (fixture);
  wait_for (fixture, "SELECT SUM(count) FROM refusals WHERE code = 'invalid_api_key' AND "
                     "path = '/v1/chat/completions' AND client = '127.0.0.1' AND "
                     "status = 401", 2000);
  g_assert_cmpint (kp_test_db_int (fixture->db, "SELECT COUNT(*) FROM refusals"), <=, windows);
  g_assert_cmpint (kp_test_db_int (fixture->db,
                                   "SELECT MIN(last_time >= time) FROM refusals"), ==, 1);
}

/* A flood of ever different paths: a row for each of the first kinds, the
 * others counted together in one.
 */
static void
test_flood_of_kinds (Fixture       *fixture,
                     gconstpointer  data)
{
  gint64 started = g_get_monotonic_time ();
  guint windows;

  g_assert_cmpuint (send_many (fixture, 300, "GET", "/v1/nothing-", TRUE, TOKEN), ==, 404);
  windows = 1 + (g_get_monotonic_time () - started) / (KP_REFUSALS_WINDOW_MS * 1000);

  wait_for (fixture, "SELECT COUNT(*) >= " G_STRINGIFY (KP_REFUSALS_MAX_KINDS) " FROM refusals", 1);
  stop_gateway (fixture);
  wait_for (fixture, "SELECT SUM(count) FROM refusals", 300);
  g_assert_cmpint (kp_test_db_int (fixture->db, "SELECT COUNT(*) FROM refusals"),
                   <=, windows * (KP_REFUSALS_MAX_KINDS + 1));
  g_assert_cmpint (kp_test_db_int (fixture->db,
                                   "SELECT SUM(count) FROM refusals WHERE path IS NULL AND "
                                       "code = 'too_many_kinds'"),
                   >, 0);
  if (windows == 1)
    g_assert_cmpint (kp_test_db_int (fixture->db, "SELECT count FROM refusals WHERE path IS NULL"),
                     ==, 300 - KP_REFUSALS_MAX_KINDS);
}

typedef struct
{
  KpLedger *ledger;
  guint     want;
  char     *newest_path;
} Kept;

static gboolean
newest_written (gpointer data)
{
  Kept *kept = data;
  g_autoptr(GPtrArray) rows = kp_ledger_recent_problems (kept->ledger, 5000, NULL);

  return rows != NULL && rows->len == kept->want &&
         g_strcmp0 (((KpProblemRow *)g_ptr_array_index (rows, 0))->path, kept->newest_path) == 0;
}

/* The table keeps the newest 1,000 refusals; a merge adds to the newest
 * row of its kind; failed requests are listed with them, answered ones and
 * those the client gave up not.
 */
static void
test_kept (void)
{
  KpTestPlace place = { 0 };
  g_autofree char *path = NULL;
  g_autoptr(KpLedger) ledger = NULL;
  g_autoptr(GPtrArray) rows = NULL;
  g_autoptr(GError) error = NULL;
  KpRequestRow request = { 0 };
  KpRefusalRow refusal = { 0 };
  Kept kept = { 0 };
  gint64 now_ms = g_get_real_time () / 1000;

  kp_test_place_init (&place, "refusals-kept");
  path = g_build_filename (place.root, "keypool.db", NULL);
  ledger = kp_ledger_open (path, &error);
  g_assert_no_error (error);

  refusal.method = (char *)"GET";
  refusal.status = 404;
  refusal.code = (char *)"unknown_path";
  refusal.client = (char *)"127.0.0.1";
  for (guint i = 0; i < 1100; i++)
    {
      g_autofree char *p = g_strdup_printf ("/p/%u", i);

      refusal.path = p;
      refusal.time_ms = refusal.last_ms = now_ms - 100000 + i;
      refusal.count = 1;
      kp_ledger_add_refusal (ledger, &refusal, FALSE);
    }
  kept = (Kept) { ledger, 1000, (char *)"/p/1099" };
  g_assert_true (kp_test_spin_until (newest_written, &kept, 20000));

  rows = kp_ledger_recent_problems (ledger, 5000, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (((KpProblemRow *)g_ptr_array_index (rows, 999))->path, ==, "/p/100");
  g_clear_pointer (&rows, g_ptr_array_unref);

  /* Repeats add to the newest row of their kind, and make it the newest. */
  refusal.path = (char *)"/p/500";
  refusal.time_ms = refusal.last_ms = now_ms;
  refusal.count = 41;
  kp_ledger_add_refusal (ledger, &refusal, TRUE);
  kept = (Kept) { ledger, 1000, (char *)"/p/500" };
  g_assert_true (kp_test_spin_until (newest_written, &kept, 20000));
  rows = kp_ledger_recent_problems (ledger, 1, &error);
  g_assert_cmpuint (((KpProblemRow *)g_ptr_array_index (rows, 0))->count, ==, 42);
  g_clear_pointer (&rows, g_ptr_array_unref);

  /* A failed request is among the problems; an answered one, or one its
   * client gave up, is not.
   */
  request.request_id = (char *)"kp-answered";
  request.time_ms = now_ms + 1;
  request.model = (char *)"mock/chat";
  request.status = 200;
  request.outcome = (char *)"ok";
  g_assert_true (kp_ledger_add_request (ledger, &request, NULL, 0, &error));
  request.request_id = (char *)"kp-cancelled";
  request.status = 499;
  request.outcome = (char *)"cancelled";
  g_assert_true (kp_ledger_add_request (ledger, &request, NULL, 0, &error));
  request.request_id = (char *)"kp-failed";
  request.time_ms = now_ms + 2;
  request.status = 502;
  request.outcome = (char *)"upstream_error";
  request.error = (char *)"Mock answered 500";
  g_assert_true (kp_ledger_add_request (ledger, &request, NULL, 0, &error));

  rows = kp_ledger_recent_problems (ledger, 3, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (rows->len, ==, 3);
  {
    KpProblemRow *failed = g_ptr_array_index (rows, 0);

    g_assert_false (failed->refused);
    g_assert_cmpuint (failed->status, ==, 502);
    g_assert_cmpstr (failed->code, ==, "upstream_error");
    g_assert_cmpstr (failed->error, ==, "Mock answered 500");
    g_assert_cmpstr (((KpProblemRow *)g_ptr_array_index (rows, 1))->path, ==, "/p/500");
  }

  g_clear_object (&ledger);
  kp_test_place_clear (&place);
}

/* The CLI ------------------------------------------------------------------ */

/* `keypool requests ARGS…` on this test's database, as a user would run it
 * with no Keypool running (no session bus to find one on).
 */
static char *
run_requests (Fixture    *fixture,
              const char *first_arg,
              ...)
{
  g_autoptr(GSubprocessLauncher) launcher = NULL;
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_autofree char *config = g_build_filename (fixture->place.root, "config", NULL);
  g_autofree char *data = g_build_filename (fixture->place.root, "data", NULL);
  g_autofree char *err = NULL;
  char *out = NULL;
  va_list args;

  g_ptr_array_add (argv, (gpointer)g_getenv ("KEYPOOL_TEST_BINARY"));
  g_ptr_array_add (argv, (gpointer)"requests");
  va_start (args, first_arg);
  for (const char *arg = first_arg; arg != NULL; arg = va_arg (args, const char *))
    g_ptr_array_add (argv, (gpointer)arg);
  va_end (args);
  g_ptr_array_add (argv, NULL);

  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                                        G_SUBPROCESS_FLAGS_STDERR_PIPE);
  g_subprocess_launcher_setenv (launcher, "KEYPOOL_PROVIDERS_DIR", fixture->place.providers, TRUE);
  g_subprocess_launcher_setenv (launcher, "KEYPOOL_CONFIG_DIR", config, TRUE);
  g_subprocess_launcher_setenv (launcher, "KEYPOOL_DATA_DIR", data, TRUE);
  g_subprocess_launcher_setenv (launcher, "KEYPOOL_TOKEN", TOKEN, TRUE);
  /* No bus, not even $XDG_RUNTIME_DIR/bus: a Keypool running there is not this test's. */
  g_subprocess_launcher_unsetenv (launcher, "DBUS_SESSION_BUS_ADDRESS");
  g_subprocess_launcher_setenv (launcher, "XDG_RUNTIME_DIR", fixture->place.root, TRUE);
  if (kp_test_run (launcher, (const char * const *)argv->pdata, NULL, &out, &err) != 0)
    g_error ("keypool requests failed: %s", err);
  return out;
}

static void
assert_line (const char *output,
             const char *pattern)
{
  if (!g_regex_match_simple (pattern, output, G_REGEX_MULTILINE, 0))
    g_error ("no line like “%s” in:\n%s", pattern, output);
}

static void
test_cli (Fixture       *fixture,
          gconstpointer  data)
{
  g_autofree char *out = NULL;
  g_autofree char *last = NULL;
  g_autofree char *plain = NULL;

  for (guint i = 0; i < 3; i++)
    g_assert_cmpuint (send_request (fixture, "POST", "/v1/chat/completions", WRONG_TOKEN,
                                    CHAT_BODY), ==, 401);
  next_ms ();
  g_assert_cmpuint (send_request (fixture, "POST", "/v1/chat/completions", TOKEN, CHAT_BODY),
                    ==, 404);
  next_ms ();
  g_assert_cmpuint (send_request (fixture, "PUT", "/v2/whatever", NULL, NULL), ==, 404);
  /* Written when Keypool stops: the three wrong tokens count as one row. */
  stop_gateway (fixture);

  out = run_requests (fixture, "--errors", NULL);
  g_test_message ("keypool requests --errors:\n%s", out);
  assert_line (out, "^TIME +HTTP +TIMES +CLIENT +CODE +REQUEST$");
  assert_line (out, "^[-0-9]{10} [:0-9]{8}  401      3 127\\.0\\.0\\.1 +invalid_api_key +"
                    "POST /v1/chat/completions$");
  /* A relayed request says where it came from too. */
  assert_line (out, "^[-0-9]{10} [:0-9]{8}  404      1 127\\.0\\.0\\.1 +client_error +"
                    "model nobody/no-such-model: .*nobody/no-such-model");
  assert_line (out, "^[-0-9]{10} [:0-9]{8}  404      1 127\\.0\\.0\\.1 +unknown_path +"
                    "PUT /v2/whatever$");
  g_assert_null (strstr (out, WRONG_TOKEN));
  g_assert_null (strstr (out, BODY_SECRET));
  /* Newest first: the unknown path came last. */
  g_assert_true (strstr (out, "/v2/whatever") < strstr (out, "nobody/no-such-model"));
  g_assert_true (strstr (out, "nobody/no-such-model") < strstr (out, "invalid_api_key"));

  last = run_requests (fixture, "--errors", "--last", "1", NULL);
  g_assert_nonnull (strstr (last, "/v2/whatever"));
  g_assert_null (strstr (last, "invalid_api_key"));
  g_assert_null (strstr (last, "no-such-model"));

  /* Without --errors: the requests as before, refusals not among them. */
  plain = run_requests (fixture, NULL);
  assert_line (plain, "^TIME +MODEL +PROVIDER +HTTP +OUTCOME");
  g_assert_nonnull (strstr (plain, "nobody/no-such-model"));
  g_assert_null (strstr (plain, "invalid_api_key"));
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

#define ADD(path, func) \
  g_test_add ("/keypool/refusals/" path, Fixture, NULL, fixture_setup, func, fixture_teardown)

  g_test_add_func ("/keypool/refusals/clean", test_clean);
  g_test_add_func ("/keypool/refusals/kept", test_kept);
  ADD ("traces", test_traces);
  ADD ("hostile-path", test_hostile_path);
  ADD ("flood", test_flood);
  ADD ("flood-of-kinds", test_flood_of_kinds);
  ADD ("cli", test_cli);

#undef ADD

  return g_test_run ();
}
