/* test-clients.c: client tokens and budgets, through the keypool command
 *
 * Runs inside tests/session.sh --keyring: a private session bus with a real
 * gnome-keyring. The mock provider and a notification server
 * (org.freedesktop.Notifications) run in this process; keypool runs as a
 * headless daemon and as commands, as a user would run it.
 *
 * Every mock/chat answer costs 11 input and 5 output tokens at $1 and $2
 * per million: $0.000021.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include "config.h"

#include <signal.h>
#include <string.h>

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <sqlite3.h>

#include "kp-mock-upstream.h"
#include "kp-test-util.h"
#include "kp-clients.h"
#include "kp-ledger.h"
#include "kp-vault.h"

#define MOCK_KEY "sk-mock-clients-key-4321"

typedef struct
{
  char *summary;
  char *body;
  char *actions;   /* joined with "|" */
} Notification;

typedef struct
{
  KpMockUpstream *mock;
  KpTestPlace     place;
  GString        *output;      /* what keypool printed, after the tokens were shown */
  GSubprocess    *daemon;
  char           *daemon_url;
  GString        *daemon_err;  /* the daemon's log */
  GDataInputStream *daemon_out;
  gboolean        daemon_eof;
  GArray         *notifications;
  guint           owner_id;
  guint           object_id;
  GDBusConnection *bus;
} Fixture;

/* A notification server ---------------------------------------------------- */

static const char notifications_xml[] =
  "<node><interface name='org.freedesktop.Notifications'>"
  "<method name='Notify'><arg type='s' direction='in'/><arg type='u' direction='in'/>"
  "<arg type='s' direction='in'/><arg type='s' direction='in'/><arg type='s' direction='in'/>"
  "<arg type='as' direction='in'/><arg type='a{sv}' direction='in'/><arg type='i' direction='in'/>"
  "<arg type='u' direction='out'/></method>"
  "<method name='CloseNotification'><arg type='u' direction='in'/></method>"
  "<method name='GetCapabilities'><arg type='as' direction='out'/></method>"
  "<method name='GetServerInformation'><arg type='s' direction='out'/><arg type='s' direction='out'/>"
  "<arg type='s' direction='out'/><arg type='s' direction='out'/></method>"
  "<signal name='ActionInvoked'><arg type='u'/><arg type='s'/></signal>"
  "<signal name='NotificationClosed'><arg type='u'/><arg type='u'/></signal>"
  "</interface></node>";

static void
notification_clear (gpointer data)
{
  Notification *notification = data;

  g_free (notification->summary);
  g_free (notification->body);
  g_free (notification->actions);
}

static void
on_notifications_call (GDBusConnection       *connection,
                       const char            *sender,
                       const char            *path,
                       const char            *interface,
                       const char            *method,
                       GVariant              *parameters,
                       GDBusMethodInvocation *invocation,
                       gpointer               user_data)
{
  Fixture *fixture = user_data;

  if (g_str_equal (method, "Notify"))
    {
      Notification notification = { 0 };
      g_autofree const char **actions = NULL;
      const char *summary, *body;

      g_variant_get_child (parameters, 3, "&s", &summary);
      g_variant_get_child (parameters, 4, "&s", &body);
      g_variant_get_child (parameters, 5, "^a&s", &actions);
      notification.summary = g_strdup (summary);
      notification.body = g_strdup (body);
      notification.actions = g_strjoinv ("|", (char **)actions);
      g_array_append_val (fixture->notifications, notification);
      g_dbus_method_invocation_return_value (invocation,
                                             g_variant_new ("(u)", fixture->notifications->len));
    }
  else if (g_str_equal (method, "GetCapabilities"))
    {
      const char *caps[] = { "actions", "body", NULL };

      g_dbus_method_invocation_return_value (invocation, g_variant_new ("(^as)", caps));
    }
  else if (g_str_equal (method, "GetServerInformation"))
    g_dbus_method_invocation_return_value (invocation,
                                           g_variant_new ("(ssss)", "test", "keypool", "1", "1.2"));
  else
    g_dbus_method_invocation_return_value (invocation, NULL);
}

static void
start_notification_server (Fixture *fixture)
{
  static const GDBusInterfaceVTable vtable = { on_notifications_call, NULL, NULL, { 0 } };
  g_autoptr(GDBusNodeInfo) info = g_dbus_node_info_new_for_xml (notifications_xml, NULL);
  g_autoptr(GError) error = NULL;

  fixture->bus = g_bus_get_sync (G_BUS_TYPE_SESSION, NULL, &error);
  g_assert_no_error (error);
  fixture->object_id = g_dbus_connection_register_object (fixture->bus, "/org/freedesktop/Notifications",
                                                          info->interfaces[0], &vtable, fixture,
                                                          NULL, &error);
  g_assert_no_error (error);
  fixture->owner_id = g_bus_own_name_on_connection (fixture->bus, "org.freedesktop.Notifications",
                                                    G_BUS_NAME_OWNER_FLAGS_NONE, NULL, NULL, NULL,
                                                    NULL);
}

/* Fixture ------------------------------------------------------------------ */

static void
fixture_setup (Fixture       *fixture,
               gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *mock_json = NULL;

  fixture->mock = kp_mock_upstream_new (&error);
  g_assert_no_error (error);
  kp_test_place_init (&fixture->place, "clients");
  fixture->output = g_string_new (NULL);
  fixture->daemon_err = g_string_new (NULL);
  fixture->notifications = g_array_new (FALSE, TRUE, sizeof (Notification));
  g_array_set_clear_func (fixture->notifications, notification_clear);

  mock_json = g_strdup_printf (
    "{\"schema\":1,\"id\":\"mock\",\"name\":\"Mock\",\"base_url\":\"%s\",\"env\":[\"MOCK_API_KEY\"],"
    "\"models\":[{\"id\":\"mock/chat\",\"upstream_id\":\"mock-chat\",\"input\":1,\"output\":2},"
    "{\"id\":\"mock/free\",\"upstream_id\":\"mock-chat\",\"input\":0,\"output\":0}]}",
    kp_mock_upstream_get_url (fixture->mock));
  kp_test_place_write_provider (&fixture->place, "mock", mock_json);
}

static void
fixture_teardown (Fixture       *fixture,
                  gconstpointer  data)
{
  if (fixture->daemon != NULL)
    {
      g_subprocess_force_exit (fixture->daemon);
      g_subprocess_wait (fixture->daemon, NULL, NULL);
      g_clear_object (&fixture->daemon);
    }
  g_clear_object (&fixture->daemon_out);
  if (fixture->owner_id != 0)
    g_bus_unown_name (fixture->owner_id);
  if (fixture->object_id != 0)
    g_dbus_connection_unregister_object (fixture->bus, fixture->object_id);
  g_clear_object (&fixture->bus);

  g_clear_pointer (&fixture->mock, kp_mock_upstream_free);
  kp_test_place_clear (&fixture->place);
  g_string_free (fixture->output, TRUE);
  g_string_free (fixture->daemon_err, TRUE);
  g_clear_pointer (&fixture->notifications, g_array_unref);
  g_free (fixture->daemon_url);
}

static GSubprocessLauncher *
new_launcher (Fixture          *fixture,
              GSubprocessFlags  flags)
{
  GSubprocessLauncher *launcher = kp_test_place_launcher (&fixture->place, flags);

  g_subprocess_launcher_unsetenv (launcher, "G_MESSAGES_DEBUG");
  g_subprocess_launcher_setenv (launcher, "MOCK_API_KEY", MOCK_KEY, TRUE);
  return launcher;
}

/* Runs `keypool ARGS…` while this loop serves the mock provider and the
 * notification server. Its output goes to fixture->output unless @secret:
 * the one command that shows a token.
 */
static int
run_cli (Fixture     *fixture,
         gboolean     secret,
         char       **out,
         char       **err,
         ...)
{
  g_autoptr(GSubprocessLauncher) launcher = NULL;
  g_autofree char *got_out = NULL;
  g_autofree char *got_err = NULL;
  va_list args;
  int status;

  launcher = new_launcher (fixture, G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                                    G_SUBPROCESS_FLAGS_STDERR_PIPE);
  va_start (args, err);
  status = kp_test_run_keypool (launcher, NULL, &got_out, &got_err, args);
  va_end (args);

  if (!secret)
    {
      g_string_append (fixture->output, got_out);
      g_string_append (fixture->output, got_err);
    }
  if (out != NULL)
    *out = g_steal_pointer (&got_out);
  if (err != NULL)
    *err = g_steal_pointer (&got_err);
  return status;
}

/* The daemon's output is read as it comes, so that its log never fills the
 * pipe and stops it.
 */
static void
on_daemon_line (GObject      *object,
                GAsyncResult *result,
                gpointer      user_data)
{
  Fixture *fixture = user_data;
  g_autofree char *line = NULL;

  line = g_data_input_stream_read_line_finish (G_DATA_INPUT_STREAM (object), result, NULL, NULL);
  if (line == NULL)
    {
      fixture->daemon_eof = TRUE;
      return;
    }
  g_string_append_printf (fixture->daemon_err, "%s\n", line);
  g_data_input_stream_read_line_async (G_DATA_INPUT_STREAM (object), G_PRIORITY_DEFAULT, NULL,
                                       on_daemon_line, fixture);
}

static gboolean
daemon_ended (gpointer data)
{
  return ((Fixture *)data)->daemon_eof;
}

static void
start_daemon (Fixture *fixture)
{
  g_autoptr(GSubprocessLauncher) launcher = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *line = NULL;

  launcher = new_launcher (fixture, G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_MERGE);
  /* Every debug message goes to the log the test searches for tokens. */
  g_subprocess_launcher_setenv (launcher, "G_MESSAGES_DEBUG", "all", TRUE);
  fixture->daemon = g_subprocess_launcher_spawn (launcher, &error, g_getenv ("KEYPOOL_TEST_BINARY"),
                                                 "--headless", "--port", "0", NULL);
  g_assert_no_error (error);

  /* Debug messages go to standard output too: they are part of the log. */
  fixture->daemon_out = g_data_input_stream_new (g_subprocess_get_stdout_pipe (fixture->daemon));
  for (;;)
    {
      line = g_data_input_stream_read_line (fixture->daemon_out, NULL, NULL, &error);
      g_assert_no_error (error);
      g_assert_nonnull (line);
      if (g_str_has_prefix (line, "Keypool is serving on http://127.0.0.1:"))
        break;
      g_string_append_printf (fixture->daemon_err, "%s\n", line);
      g_clear_pointer (&line, g_free);
    }
  g_free (fixture->daemon_url);
  fixture->daemon_url = g_strdup (strstr (line, "http://"));
  fixture->daemon_eof = FALSE;
  g_data_input_stream_read_line_async (fixture->daemon_out, G_PRIORITY_DEFAULT, NULL,
                                       on_daemon_line, fixture);
}

static void
stop_daemon (Fixture *fixture)
{
  g_autoptr(GError) error = NULL;

  g_subprocess_send_signal (fixture->daemon, SIGTERM);
  g_assert_true (kp_test_spin_until (daemon_ended, fixture, 30000));
  g_subprocess_wait (fixture->daemon, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (g_subprocess_get_if_exited (fixture->daemon));
  g_assert_cmpint (g_subprocess_get_exit_status (fixture->daemon), ==, 0);
  g_clear_object (&fixture->daemon);
  g_clear_object (&fixture->daemon_out);
}

/* One chat with @token; returns the status, and the body in @body. */
static guint
chat (Fixture     *fixture,
      const char  *token,
      const char  *model,
      char       **body)
{
  g_autoptr(SoupSession) session = soup_session_new ();
  g_autofree char *url = g_strconcat (fixture->daemon_url, "/chat/completions", NULL);
  g_auto(KpTestResponse) response = { 0 };

  kp_test_chat (session, url, token, model, &response);
  if (body != NULL)
    *body = g_steal_pointer (&response.body);
  return response.status;
}

/* Makes a client and returns its token, shown this once. */
static char *
add_client (Fixture    *fixture,
            const char *name)
{
  char *token = NULL;
  g_autofree char *err = NULL;

  g_assert_cmpint (run_cli (fixture, TRUE, &token, &err, "clients", "add", name, NULL), ==, 0);
  g_strstrip (token);
  g_assert_true (g_str_has_prefix (token, "kp-"));
  g_assert_cmpuint (strlen (token), >=, 32);
  kp_test_assert_contains (err, "shown once");
  return token;
}

/* No file Keypool wrote holds @secret. */
static void
assert_not_on_disk (const char *dir,
                    const char *secret)
{
  g_autoptr(GDir) listing = g_dir_open (dir, 0, NULL);
  const char *name;

  if (listing == NULL)
    return;
  while ((name = g_dir_read_name (listing)) != NULL)
    {
      g_autofree char *path = g_build_filename (dir, name, NULL);

      if (g_file_test (path, G_FILE_TEST_IS_DIR))
        assert_not_on_disk (path, secret);
      else if (kp_test_file_contains (path, secret))
        g_error ("%s holds a client token", name);
    }
}

static char *
query_text (Fixture    *fixture,
            const char *sql)
{
  sqlite3 *db = NULL;
  sqlite3_stmt *stmt = NULL;
  GString *text = g_string_new (NULL);

  g_assert_cmpint (sqlite3_open_v2 (fixture->place.db, &db, SQLITE_OPEN_READONLY, NULL), ==,
                   SQLITE_OK);
  g_assert_cmpint (sqlite3_prepare_v2 (db, sql, -1, &stmt, NULL), ==, SQLITE_OK);
  while (sqlite3_step (stmt) == SQLITE_ROW)
    {
      for (int i = 0; i < sqlite3_column_count (stmt); i++)
        g_string_append_printf (text, "%s%s", i ? " " : "", (const char *)sqlite3_column_text (stmt, i));
      g_string_append_c (text, '\n');
    }
  sqlite3_finalize (stmt);
  sqlite3_close (db);
  return g_string_free (text, FALSE);
}

/* Tests ---------------------------------------------------------------------- */

/* Two client tokens: each request is its client's in the ledger and in
 * `keypool spend --by client`; a removed token is refused at once; a token
 * is in the keyring and nowhere else.
 */
static void
test_client_tokens (Fixture       *fixture,
                    gconstpointer  data)
{
  g_autofree char *main_token = NULL;
  g_autofree char *claude = NULL;
  g_autofree char *cursor = NULL;
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;
  g_autofree char *rows = NULL;

  start_daemon (fixture);
  g_assert_cmpint (run_cli (fixture, TRUE, &main_token, NULL, "token", NULL), ==, 0);
  g_strstrip (main_token);

  claude = add_client (fixture, "Claude Code");
  cursor = add_client (fixture, "Cursor");
  g_assert_cmpstr (claude, !=, cursor);
  g_assert_cmpint (run_cli (fixture, FALSE, NULL, &err, "clients", "add", "Claude Code", NULL), ==, 1);
  kp_test_assert_contains (err, "already");
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (run_cli (fixture, FALSE, NULL, &err, "clients", "add", "other", NULL), ==, 1);
  kp_test_assert_contains (err, "main access token");
  g_clear_pointer (&err, g_free);

  g_assert_cmpuint (chat (fixture, claude, "mock/chat", NULL), ==, 200);
  g_assert_cmpuint (chat (fixture, claude, "mock/chat", NULL), ==, 200);
  g_assert_cmpuint (chat (fixture, cursor, "mock/chat", NULL), ==, 200);
  g_assert_cmpuint (chat (fixture, main_token, "mock/chat", NULL), ==, 200);
  g_assert_cmpuint (chat (fixture, "kp-not-a-token-of-anyone", "mock/chat", NULL), ==, 401);
  /* Upstream, the provider's key; never the client's token. */
  g_assert_cmpstr (kp_mock_upstream_get_stats (fixture->mock)->last_auth, ==, "Bearer " MOCK_KEY);

  /* Each row is committed just after its answer went out. */
  g_assert_true (kp_test_wait_db_int (fixture->place.db, "SELECT COUNT(*) FROM requests", 4,
                                      20000));
  rows = query_text (fixture, "SELECT client_id, COUNT(*), SUM(cost_nano) FROM requests "
                              "GROUP BY client_id ORDER BY client_id");
  g_assert_cmpstr (rows, ==, "0 1 21000\n1 2 42000\n2 1 21000\n");

  g_assert_cmpint (run_cli (fixture, FALSE, &out, NULL, "spend", "--by", "client", NULL), ==, 0);
  g_assert_true (g_regex_match_simple ("^Claude Code +2 +\\$0\\.000042 ", out, G_REGEX_MULTILINE, 0));
  g_assert_true (g_regex_match_simple ("^Cursor +1 +\\$0\\.000021 ", out, G_REGEX_MULTILINE, 0));
  g_assert_true (g_regex_match_simple ("^Other +1 +\\$0\\.000021 ", out, G_REGEX_MULTILINE, 0));
  g_assert_true (g_regex_match_simple ("^TOTAL +4 +\\$0\\.000084", out, G_REGEX_MULTILINE, 0));
  g_clear_pointer (&out, g_free);

  g_assert_cmpint (run_cli (fixture, FALSE, &out, NULL, "requests", "--client", "Cursor", NULL), ==, 0);
  {
    g_auto(GStrv) lines = g_strsplit (out, "\n", -1);

    g_assert_cmpuint (g_strv_length (lines), ==, 3);  /* the header, one row, "" */
  }
  kp_test_assert_contains (out, "Cursor");
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (run_cli (fixture, FALSE, NULL, &err, "requests", "--client", "Nobody", NULL), ==, 1);
  kp_test_assert_contains (err, "no client named");
  g_clear_pointer (&err, g_free);

  g_assert_cmpint (run_cli (fixture, FALSE, &out, NULL, "clients", "list", NULL), ==, 0);
  kp_test_assert_contains (out, "Claude Code");
  kp_test_assert_contains (out, "in use");
  g_clear_pointer (&out, g_free);

  /* Removed: refused at once, while the other goes on. */
  g_assert_cmpint (run_cli (fixture, FALSE, NULL, NULL, "clients", "remove", "Cursor", NULL), ==, 0);
  g_assert_cmpuint (chat (fixture, cursor, "mock/chat", NULL), ==, 401);
  g_assert_cmpuint (chat (fixture, claude, "mock/chat", NULL), ==, 200);

  /* Renamed: its spend follows it; the removed one keeps its name. */
  g_assert_cmpint (run_cli (fixture, FALSE, NULL, NULL, "clients", "rename", "Claude Code", "Claude",
                            NULL), ==, 0);
  g_assert_cmpint (run_cli (fixture, FALSE, &out, NULL, "spend", "--by", "client", NULL), ==, 0);
  g_assert_true (g_regex_match_simple ("^Claude +3 +\\$0\\.000063 ", out, G_REGEX_MULTILINE, 0));
  g_assert_true (g_regex_match_simple ("^Cursor \\(removed\\) +1 ", out, G_REGEX_MULTILINE, 0));
  g_clear_pointer (&out, g_free);

  {
    g_autoptr(GHashTable) secrets = kp_test_keyring_secrets ();

    g_assert_cmpstr (g_hash_table_lookup (secrets, "keypool-client:client-1"), ==, claude);
    g_assert_null (g_hash_table_lookup (secrets, "keypool-client:client-2"));
  }

  /* After a restart the keyring's token works, the removed one does not. */
  stop_daemon (fixture);
  start_daemon (fixture);
  g_assert_cmpuint (chat (fixture, claude, "mock/chat", NULL), ==, 200);
  g_assert_cmpuint (chat (fixture, cursor, "mock/chat", NULL), ==, 401);
  stop_daemon (fixture);

  /* Never on disk, in a log or in what keypool printed after showing it. */
  assert_not_on_disk (fixture->place.root, claude);
  assert_not_on_disk (fixture->place.root, cursor);
  g_assert_null (strstr (fixture->daemon_err->str, claude));
  g_assert_null (strstr (fixture->daemon_err->str, cursor));
  g_assert_null (strstr (fixture->output->str, claude));
  g_assert_null (strstr (fixture->output->str, cursor));
  /* The log is there to be searched: it says what the daemon did. */
  kp_test_assert_contains (fixture->daemon_err->str, "mock/chat");
}

static gboolean
has_notifications (gpointer data)
{
  Fixture *fixture = data;

  return fixture->notifications->len >= GPOINTER_TO_UINT (g_object_get_data (G_OBJECT (fixture->bus),
                                                                              "want"));
}

static void
wait_notifications (Fixture *fixture,
                    guint    n)
{
  g_object_set_data (G_OBJECT (fixture->bus), "want", GUINT_TO_POINTER (n));
  g_assert_true (kp_test_spin_until (has_notifications, fixture, 20000));
}

/* A client's daily budget in "refuse" mode, set with `keypool budget`: one
 * desktop notification at 80 % with an action that opens the Spend page,
 * one when it is spent, then a 429 with the figures for that client only;
 * a free route still serves it, and "warn" mode serves it again.
 */
static void
test_budget_notifications (Fixture       *fixture,
                           gconstpointer  data)
{
  g_autofree char *main_token = NULL;
  g_autofree char *aider = NULL;
  g_autofree char *out = NULL;
  g_autofree char *body = NULL;
  const Notification *notification;

  start_notification_server (fixture);
  start_daemon (fixture);
  g_assert_cmpint (run_cli (fixture, TRUE, &main_token, NULL, "token", NULL), ==, 0);
  g_strstrip (main_token);
  aider = add_client (fixture, "aider");

  /* $0.0002: 8 answers are 84 %, 9 are 94.5 %, 10 are 105 %. */
  g_assert_cmpint (run_cli (fixture, FALSE, &out, NULL, "budget", "set", "daily", "0.0002",
                            "--client", "aider", "--action", "refuse", NULL), ==, 0);
  kp_test_assert_contains (out, "daily budget for aider");
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (run_cli (fixture, FALSE, NULL, NULL, "budget", "set", "daily", "x", NULL), ==, 1);

  for (guint i = 0; i < 7; i++)
    g_assert_cmpuint (chat (fixture, aider, "mock/chat", NULL), ==, 200);
  g_assert_cmpuint (chat (fixture, main_token, "mock/chat", NULL), ==, 200);
  g_assert_cmpuint (fixture->notifications->len, ==, 0);
  g_assert_cmpuint (chat (fixture, aider, "mock/chat", NULL), ==, 200);
  wait_notifications (fixture, 1);
  notification = &g_array_index (fixture->notifications, Notification, 0);
  kp_test_assert_contains (notification->summary, "80 % of the daily budget for aider");
  kp_test_assert_contains (notification->body, "$0.000168 of $0.000200");
  kp_test_assert_contains (notification->actions, "default");
  kp_test_assert_contains (notification->actions, "Show Spend");

  g_assert_cmpuint (chat (fixture, aider, "mock/chat", NULL), ==, 200);
  g_assert_cmpuint (chat (fixture, aider, "mock/chat", NULL), ==, 200);
  wait_notifications (fixture, 2);
  /* The second is the budget spent, not the 80 % again. */
  notification = &g_array_index (fixture->notifications, Notification, 1);
  kp_test_assert_contains (notification->summary, "The daily budget for aider is spent");

  g_assert_cmpuint (chat (fixture, aider, "mock/chat", &body), ==, 429);
  kp_test_assert_contains (body, "budget_exceeded");
  kp_test_assert_contains (body, "the daily budget for aider ($0.000200)");
  kp_test_assert_contains (body, "$0.000210 so far");
  kp_test_assert_contains (body, "resets at ");
  g_clear_pointer (&body, g_free);
  g_assert_cmpuint (chat (fixture, aider, "mock/free", NULL), ==, 200);
  /* Another client's requests are not billed against it. */
  g_assert_cmpuint (chat (fixture, main_token, "mock/chat", NULL), ==, 200);

  g_assert_cmpint (run_cli (fixture, FALSE, &out, NULL, "budget", "list", NULL), ==, 0);
  kp_test_assert_contains (out, "daily budget for aider");
  kp_test_assert_contains (out, "$0.000210");
  kp_test_assert_contains (out, "refuse");
  g_clear_pointer (&out, g_free);

  g_assert_cmpint (run_cli (fixture, FALSE, NULL, NULL, "budget", "set", "daily", "0.0002",
                            "--client", "aider", "--action", "warn", NULL), ==, 0);
  g_assert_cmpuint (chat (fixture, aider, "mock/chat", NULL), ==, 200);
  g_assert_cmpint (run_cli (fixture, FALSE, NULL, NULL, "budget", "clear", "daily", "--client",
                            "aider", NULL), ==, 0);
  g_assert_cmpint (run_cli (fixture, FALSE, &out, NULL, "budget", "list", NULL), ==, 0);
  kp_test_assert_contains (out, "No budgets");

  stop_daemon (fixture);
  g_assert_cmpuint (fixture->notifications->len, ==, 2);
  g_assert_null (strstr (fixture->daemon_err->str, aider));
  g_assert_null (strstr (fixture->output->str, aider));
}

/* Loads a KpClients from a ledger whose "clients" setting is @text. */
static GPtrArray *
load_clients (const char *dir,
              const char *text)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *path = g_build_filename (dir, "keypool.db", NULL);
  g_autoptr(KpLedger) ledger = kp_ledger_open (path, &error);
  g_autoptr(KpVault) vault = kp_vault_new ();
  g_autoptr(KpClients) clients = kp_clients_new (vault);

  g_assert_no_error (error);
  g_assert_true (kp_ledger_set_setting (ledger, "clients", text, &error));
  g_assert_no_error (error);
  g_assert_true (kp_clients_load (clients, ledger, &error));
  g_assert_no_error (error);
  return kp_clients_list (clients, TRUE);
}

/* The clients' names are read back from the ledger's file, which may hold
 * anything: a member of the wrong kind counts as missing, or makes the list
 * damaged, and is never a programming error (json-glib's getters raise a
 * CRITICAL on an object where a value goes).
 */
static void
test_damaged_setting (void)
{
  static const char *const damaged[] = {
    "{\"clients\":[{\"id\":{},\"name\":\"Cursor\"}]}",
    "{\"clients\":[{\"id\":\"1\",\"name\":\"Cursor\"}]}",
    "{\"clients\":[{\"id\":1,\"name\":[]}]}",
    "{\"clients\":[{\"id\":1,\"name\":7}]}",
  };
  g_autofree char *dir = g_dir_make_tmp ("keypool-clients-XXXXXX", NULL);

  for (guint i = 0; i < G_N_ELEMENTS (damaged); i++)
    {
      g_autoptr(GPtrArray) list = NULL;

      g_test_message ("%s", damaged[i]);
      g_test_expect_message ("keypool", G_LOG_LEVEL_WARNING, "*clients in the database is damaged*");
      list = load_clients (dir, damaged[i]);
      g_test_assert_expected_messages ();
      g_assert_cmpuint (list->len, ==, 0);
    }

  {
    /* Wrong kinds where a value may be missing: the client is kept. */
    g_autoptr(GPtrArray) list =
      load_clients (dir, "{\"clients\":[{\"id\":3,\"name\":\"Cursor\",\"created\":{},"
                         "\"removed\":[]}],\"next_id\":{}}");
    KpClientInfo *info;

    g_assert_cmpuint (list->len, ==, 1);
    info = g_ptr_array_index (list, 0);
    g_assert_cmpuint (info->id, ==, 3);
    g_assert_cmpstr (info->name, ==, "Cursor");
    g_assert_cmpint (info->created, ==, 0);
    g_assert_false (info->removed);
  }
  {
    g_autoptr(GPtrArray) list =
      load_clients (dir, "{\"clients\":[{\"id\":3,\"name\":\"Cursor\",\"created\":\"5\","
                         "\"removed\":\"yes\"}],\"next_id\":[]}");
    KpClientInfo *info = g_ptr_array_index (list, 0);

    g_assert_cmpint (info->created, ==, 0);
    g_assert_false (info->removed);
  }
  kp_test_remove_tree (dir);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

#define ADD(path, func) \
  g_test_add ("/keypool/clients/" path, Fixture, NULL, fixture_setup, func, fixture_teardown)

  ADD ("tokens", test_client_tokens);
  ADD ("budget-notifications", test_budget_notifications);

#undef ADD

  g_test_add_func ("/keypool/clients/damaged-setting", test_damaged_setting);

  return g_test_run ();
}
