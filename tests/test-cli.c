/* test-cli.c: the keypool command, keys in a real keyring, the ledger on disk
 *
 * Runs inside tests/session.sh --keyring: a private session bus with a real
 * gnome-keyring. The mock provider runs in this process; keypool runs as
 * child processes, as a user would run it.
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

#include "kp-ledger.h"
#include "kp-mock-google.h"
#include "kp-mock-upstream.h"
#include "kp-test-util.h"
#include "kp-vault.h"

#define GOOD_KEY      "sk-mock-valid-key-1234"
#define BAD_KEY       "sk-invalid-key-5678"
#define UNCHECKED_KEY "sk-unchecked-key-9999"
#define LIVE_KEY      "sk-live-key-abcd"
#define ENV_KEY       "sk-env-key-7777"

typedef struct
{
  KpMockUpstream *mock;
  KpTestPlace     place;
  char           *home;         /* where tools' configs are, for `keypool connect` */
  GString        *all_output;   /* everything keypool printed, to search for secrets */
  GSubprocess    *daemon;
  char           *daemon_url;
  gboolean        no_bus;
} Fixture;

static void
fixture_setup (Fixture       *fixture,
               gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *mock_json = NULL;

  fixture->mock = kp_mock_upstream_new (&error);
  g_assert_no_error (error);
  kp_test_place_init (&fixture->place, "cli");
  fixture->home = g_build_filename (fixture->place.root, "home", NULL);
  fixture->all_output = g_string_new (NULL);

  mock_json = g_strdup_printf (
    "{\"schema\":1,\"id\":\"mock\",\"name\":\"Mock\",\"base_url\":\"%s\",\"env\":[\"MOCK_API_KEY\"],"
    "\"models\":[{\"id\":\"mock/chat\",\"upstream_id\":\"mock-chat\",\"input\":1,\"output\":2},"
    "{\"id\":\"mock/stall\",\"upstream_id\":\"mock-stall\",\"input\":1,\"output\":2}]}",
    kp_mock_upstream_get_url (fixture->mock));
  kp_test_place_write_provider (&fixture->place, "mock", mock_json);

  /* A provider without a model list: keys are checked with a chat. */
  g_free (mock_json);
  mock_json = g_strdup_printf (
    "{\"schema\":1,\"id\":\"chatcheck\",\"name\":\"Chat Check\",\"base_url\":\"%s\",\"key_check\":\"chat\","
    "\"models\":[{\"id\":\"mock/chat-only\",\"upstream_id\":\"mock-chat\",\"input\":1,\"output\":2}]}",
    kp_mock_upstream_get_url (fixture->mock));
  kp_test_place_write_provider (&fixture->place, "chatcheck", mock_json);
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

  /* No secret ever reaches what keypool prints. */
  g_assert_null (strstr (fixture->all_output->str, GOOD_KEY));
  g_assert_null (strstr (fixture->all_output->str, BAD_KEY));
  g_assert_null (strstr (fixture->all_output->str, UNCHECKED_KEY));
  g_assert_null (strstr (fixture->all_output->str, LIVE_KEY));
  g_assert_null (strstr (fixture->all_output->str, ENV_KEY));

  g_clear_pointer (&fixture->mock, kp_mock_upstream_free);
  kp_test_place_clear (&fixture->place);
  g_string_free (fixture->all_output, TRUE);
  g_free (fixture->daemon_url);
  g_free (fixture->home);
}

static GSubprocessLauncher *
new_launcher (Fixture        *fixture,
              GSubprocessFlags flags)
{
  GSubprocessLauncher *launcher = kp_test_place_launcher (&fixture->place, flags);

  g_subprocess_launcher_setenv (launcher, "HOME", fixture->home, TRUE);
  g_subprocess_launcher_unsetenv (launcher, "MOCK_API_KEY");
  if (fixture->no_bus)
    {
      g_subprocess_launcher_unsetenv (launcher, "DBUS_SESSION_BUS_ADDRESS");
      g_subprocess_launcher_setenv (launcher, "MOCK_API_KEY", ENV_KEY, TRUE);
    }
  return launcher;
}

/* Runs `keypool ARGS…` with @input on stdin while this loop keeps serving
 * the mock provider; returns the exit status.
 */
static int
run_cli (Fixture     *fixture,
         const char  *input,
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
  status = kp_test_run_keypool (launcher, input, &got_out, &got_err, args);
  va_end (args);

  g_string_append (fixture->all_output, got_out);
  g_string_append (fixture->all_output, got_err);
  if (out != NULL)
    *out = g_steal_pointer (&got_out);
  if (err != NULL)
    *err = g_steal_pointer (&got_err);
  return status;
}

/* Nothing secret in the database, its WAL or anything else Keypool wrote. */
static void
assert_no_secret_on_disk (Fixture    *fixture,
                          const char *secret)
{
  g_autofree char *token = g_build_filename (fixture->place.config, "token", NULL);

  kp_test_assert_db_lacks (fixture->place.db, secret);
  g_assert_false (kp_test_file_contains (token, secret));
}

/* Tests ----------------------------------------------------------------- */

static void
test_keys_lifecycle (Fixture       *fixture,
                     gconstpointer  data)
{
  g_autoptr(GHashTable) secrets = NULL;
  g_autofree char *token = NULL;
  g_autofree char *token_again = NULL;
  g_autofree char *token_new = NULL;
  g_autofree char *token_file = g_build_filename (fixture->place.config, "token", NULL);

  {
    g_autofree char *out = NULL;
    g_autofree char *err = NULL;

    g_assert_cmpint (run_cli (fixture, GOOD_KEY "\n", &out, &err,
                              "keys", "add", "mock", "--label", "work", NULL), ==, 0);
    kp_test_assert_contains (out, "Mock accepted the key.");
    kp_test_assert_contains (out, "Added key 1 for mock (…1234)");
  }
  {
    g_autofree char *err = NULL;

    g_assert_cmpint (run_cli (fixture, BAD_KEY, NULL, &err,
                              "keys", "add", "mock", "--label", "bad", NULL), ==, 1);
    kp_test_assert_contains (err, "Mock rejected the key (HTTP 401)");
  }
  {
    g_autofree char *out = NULL;

    g_assert_cmpint (run_cli (fixture, UNCHECKED_KEY, &out, NULL,
                              "keys", "add", "mock", "--label", "unchecked", "--no-check",
                              "--multiplier", "0.5", NULL), ==, 0);
    kp_test_assert_contains (out, "Added key 2 for mock (…9999)");
  }

  {
    KpMockStats *stats = kp_mock_upstream_get_stats (fixture->mock);
    g_autofree char *out = NULL;
    g_autofree char *err = NULL;

    g_assert_cmpint (run_cli (fixture, UNCHECKED_KEY, &out, NULL,
                              "keys", "add", "chatcheck", NULL), ==, 0);
    kp_test_assert_contains (out, "Chat Check accepted the key.");
    g_assert_cmpstr (stats->last_path, ==, "/v1/chat/completions");
    kp_test_assert_contains (stats->last_body, "\"max_tokens\":1");
    g_assert_cmpint (run_cli (fixture, BAD_KEY, NULL, &err, "keys", "add", "chatcheck", NULL), ==, 1);
    kp_test_assert_contains (err, "Chat Check rejected the key (HTTP 401)");
    g_assert_cmpint (run_cli (fixture, NULL, NULL, NULL, "keys", "remove", "3", NULL), ==, 0);
  }

  /* Each mistake: one line, non-zero. */
  {
    g_autofree char *err = NULL;

    g_assert_cmpint (run_cli (fixture, GOOD_KEY, NULL, &err, "keys", "add", "nosuch", NULL), ==, 1);
    kp_test_assert_contains (err, "There is no provider “nosuch”");
    g_clear_pointer (&err, g_free);
    g_assert_cmpint (run_cli (fixture, GOOD_KEY, NULL, &err,
                              "keys", "add", "mock", "--multiplier", "abc", NULL), ==, 1);
    kp_test_assert_contains (err, "--multiplier “abc” is not a number");
    g_clear_pointer (&err, g_free);
    g_assert_cmpint (run_cli (fixture, "", NULL, &err, "keys", "add", "mock", NULL), ==, 1);
    kp_test_assert_contains (err, "No key on standard input");
    g_clear_pointer (&err, g_free);
    g_assert_cmpint (run_cli (fixture, NULL, NULL, &err, "keys", "remove", "x", NULL), ==, 1);
    kp_test_assert_contains (err, "“x” is not a key id");
    g_clear_pointer (&err, g_free);
    g_assert_cmpint (run_cli (fixture, NULL, NULL, &err, "keys", "frobnicate", NULL), ==, 1);
    kp_test_assert_contains (err, "usage: keypool keys");
  }

  {
    g_autofree char *out = NULL;

    /* A new process: what was added is still there. */
    g_assert_cmpint (run_cli (fixture, NULL, &out, NULL, "keys", "list", NULL), ==, 0);
    kp_test_assert_contains (out, "work");
    kp_test_assert_contains (out, "…1234");
    kp_test_assert_contains (out, "unchecked");
    kp_test_assert_contains (out, "…9999");
    kp_test_assert_contains (out, "keyring   ok");
  }

  secrets = kp_test_keyring_secrets ();
  g_assert_cmpstr (g_hash_table_lookup (secrets, "mock:1"), ==, GOOD_KEY);
  g_assert_cmpstr (g_hash_table_lookup (secrets, "mock:2"), ==, UNCHECKED_KEY);
  g_clear_pointer (&secrets, g_hash_table_unref);

  {
    g_autofree char *out = NULL;
    g_autofree char *err = NULL;

    g_assert_cmpint (run_cli (fixture, NULL, &out, NULL, "keys", "remove", "2", NULL), ==, 0);
    kp_test_assert_contains (out, "Removed the key");
    g_assert_cmpint (run_cli (fixture, NULL, NULL, &err, "keys", "remove", "2", NULL), ==, 1);
    kp_test_assert_contains (err, "There is no key with id 2");
  }
  secrets = kp_test_keyring_secrets ();
  g_assert_null (g_hash_table_lookup (secrets, "mock:2"));
  g_assert_cmpstr (g_hash_table_lookup (secrets, "mock:1"), ==, GOOD_KEY);

  /* The token lives in the keyring, not in a file, and stays the same. */
  g_assert_cmpint (run_cli (fixture, NULL, &token, NULL, "token", NULL), ==, 0);
  g_assert_cmpint (run_cli (fixture, NULL, &token_again, NULL, "token", NULL), ==, 0);
  g_assert_true (g_str_has_prefix (token, "kp-"));
  g_assert_cmpstr (token, ==, token_again);
  g_assert_false (g_file_test (token_file, G_FILE_TEST_EXISTS));
  g_assert_cmpint (run_cli (fixture, NULL, &token_new, NULL, "token", "--regenerate", NULL), ==, 0);
  g_assert_cmpstr (token_new, !=, token);
  g_clear_pointer (&token_again, g_free);
  g_assert_cmpint (run_cli (fixture, NULL, &token_again, NULL, "token", NULL), ==, 0);
  g_assert_cmpstr (token_again, ==, token_new);

  assert_no_secret_on_disk (fixture, GOOD_KEY);
  assert_no_secret_on_disk (fixture, UNCHECKED_KEY);
  assert_no_secret_on_disk (fixture, BAD_KEY);
}

static void
test_token_file_moves_to_keyring (Fixture       *fixture,
                                  gconstpointer  data)
{
  g_autofree char *token_file = g_build_filename (fixture->place.config, "token", NULL);
  g_autofree char *out = NULL;

  /* A token kept by an earlier Keypool in a file, none in the keyring. */
  {
    g_autoptr(KpVault) vault = kp_vault_new ();
    g_autoptr(GAsyncResult) result = NULL;

    kp_vault_clear_async (vault, KP_VAULT_TOKEN, NULL, kp_test_store_result, &result);
    g_assert_true (kp_test_spin_until (kp_test_result_ready, &result, 20000));
    g_assert_true (kp_vault_clear_finish (vault, result, NULL));
  }
  g_mkdir_with_parents (fixture->place.config, 0700);
  g_assert_true (g_file_set_contents (token_file, "kp-from-an-old-file-0123456789\n", -1, NULL));

  g_assert_cmpint (run_cli (fixture, NULL, &out, NULL, "token", NULL), ==, 0);
  g_assert_cmpstr (out, ==, "kp-from-an-old-file-0123456789\n");
  g_assert_false (g_file_test (token_file, G_FILE_TEST_EXISTS));
  {
    g_autoptr(GHashTable) secrets = kp_test_keyring_secrets ();

    g_assert_cmpstr (g_hash_table_lookup (secrets, KP_VAULT_TOKEN_KEY), ==,
                     "kp-from-an-old-file-0123456789");
  }
}

static void
start_daemon_mode (Fixture    *fixture,
                   const char *mode)
{
  g_autoptr(GSubprocessLauncher) launcher = NULL;
  g_autoptr(GDataInputStream) input = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *line = NULL;

  launcher = new_launcher (fixture, G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE);
  fixture->daemon = g_subprocess_launcher_spawn (launcher, &error, g_getenv ("KEYPOOL_TEST_BINARY"),
                                                 mode, "--port", "0", NULL);
  g_assert_no_error (error);

  input = g_data_input_stream_new (g_subprocess_get_stdout_pipe (fixture->daemon));
  g_filter_input_stream_set_close_base_stream (G_FILTER_INPUT_STREAM (input), FALSE);
  line = g_data_input_stream_read_line (input, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (line);
  g_assert_true (g_str_has_prefix (line, "Keypool is serving on http://127.0.0.1:"));
  fixture->daemon_url = g_strdup (strstr (line, "http://"));
}

static void
start_daemon (Fixture *fixture)
{
  start_daemon_mode (fixture, "--headless");
}

static char *
stop_daemon (Fixture *fixture)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *out = NULL;
  char *err = NULL;

  g_subprocess_send_signal (fixture->daemon, SIGTERM);
  g_subprocess_communicate_utf8 (fixture->daemon, NULL, NULL, &out, &err, &error);
  g_assert_no_error (error);
  g_assert_true (g_subprocess_get_if_exited (fixture->daemon));
  g_assert_cmpint (g_subprocess_get_exit_status (fixture->daemon), ==, 0);
  g_clear_object (&fixture->daemon);
  g_string_append (fixture->all_output, out);
  g_string_append (fixture->all_output, err);
  return err;
}

/* One chat with @token at the running Keypool; returns the status. */
static guint
chat (Fixture     *fixture,
      SoupSession *session,
      const char  *token,
      const char  *model)
{
  g_autofree char *url = g_strconcat (fixture->daemon_url, "/chat/completions", NULL);

  g_strstrip ((char *)token);
  return kp_test_chat (session, url, token, model, NULL);
}

static void
test_daemon_carries_out_commands (Fixture       *fixture,
                                  gconstpointer  data)
{
  g_autoptr(SoupSession) session = soup_session_new ();
  KpMockStats *stats = kp_mock_upstream_get_stats (fixture->mock);
  g_autofree char *token = NULL;
  g_autofree char *err = NULL;

  start_daemon (fixture);
  g_assert_cmpint (run_cli (fixture, NULL, &token, NULL, "token", NULL), ==, 0);
  g_strstrip (token);

  /* No key yet: the running Keypool says what is missing. */
  g_assert_cmpuint (chat (fixture, session, token, "mock/chat"), ==, 503);

  /* Added through the running Keypool: routable at once, no restart. */
  g_assert_cmpint (run_cli (fixture, LIVE_KEY, NULL, NULL, "keys", "add", "mock", "--label", "live",
                            NULL), ==, 0);
  g_assert_cmpuint (chat (fixture, session, token, "mock/chat"), ==, 200);
  g_assert_cmpstr (stats->last_auth, ==, "Bearer " LIVE_KEY);

  /* Switching the provider off takes it out of routing at once. */
  g_assert_cmpint (run_cli (fixture, NULL, NULL, NULL, "providers", "disable", "mock", NULL), ==, 0);
  {
    g_autofree char *out = NULL;

    g_assert_cmpint (run_cli (fixture, NULL, &out, NULL, "providers", NULL), ==, 0);
    kp_test_assert_contains (out, "Mock                   no");
  }
  g_assert_cmpuint (chat (fixture, session, token, "mock/chat"), ==, 503);
  g_assert_cmpint (run_cli (fixture, NULL, NULL, NULL, "providers", "enable", "mock", NULL), ==, 0);
  g_assert_cmpuint (chat (fixture, session, token, "mock/chat"), ==, 200);
  g_assert_cmpuint (stats->requests, ==, 2);
  /* Four relayed requests: each row is committed just after its answer. */
  g_assert_true (kp_test_wait_db_int (fixture->place.db, "SELECT COUNT(*) FROM requests", 4,
                                      20000));

  {
    g_autofree char *out = NULL;
    g_autofree char *today = NULL;
    g_autoptr(GDateTime) now = g_date_time_new_now_local ();

    g_assert_cmpint (run_cli (fixture, NULL, &out, NULL, "spend", "--by", "provider", NULL), ==, 0);
    /* Two answers of 11 + 5 tokens at $1/$2 per million: 2 × $0.000021. */
    kp_test_assert_contains (out, "mock");
    kp_test_assert_contains (out, "$0.000042");
    g_clear_pointer (&out, g_free);
    g_assert_cmpint (run_cli (fixture, NULL, &out, NULL, "spend", "--by", "day", "--since", "1d", NULL),
                     ==, 0);
    today = g_date_time_format (now, "%Y-%m-%d");
    kp_test_assert_contains (out, today);
    g_clear_pointer (&out, g_free);
    g_assert_cmpint (run_cli (fixture, NULL, &out, NULL, "requests", "--last", "3", NULL), ==, 0);
    kp_test_assert_contains (out, "mock/chat");
    kp_test_assert_contains (out, "upstream_error");
    kp_test_assert_contains (out, "$0.000021 computed");
  }
  {
    g_autofree char *bad = NULL;

    g_assert_cmpint (run_cli (fixture, NULL, NULL, &bad, "spend", "--since", "5x", NULL), ==, 1);
    kp_test_assert_contains (bad, "is not a period");
    g_clear_pointer (&bad, g_free);
    g_assert_cmpint (run_cli (fixture, NULL, NULL, &bad, "--headless", NULL), ==, 1);
    kp_test_assert_contains (bad, "already running");
  }

  err = stop_daemon (fixture);
  kp_test_assert_contains (err, "Access token: in the keyring");
  assert_no_secret_on_disk (fixture, LIVE_KEY);
}

/* `keypool refresh` in the running Keypool: the live list replaces the
 * file's, `keypool providers` says when and what failed, and a named
 * provider that could not be refreshed fails the command.
 */
static void
test_refresh (Fixture       *fixture,
              gconstpointer  data)
{
  g_autofree char *path = g_build_filename (fixture->place.providers, "broken.json", NULL);
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;

  /* A local server that is not running. */
  g_assert_true (g_file_set_contents (path,
                                      "{\"id\":\"broken\",\"name\":\"Broken\","
                                      "\"base_url\":\"http://127.0.0.1:1/v1\",\"auth\":\"none\","
                                      "\"requires_key\":false,\"models\":[{\"id\":\"b/x\"}]}",
                                      -1, NULL));
  start_daemon (fixture);
  g_assert_cmpint (run_cli (fixture, LIVE_KEY, NULL, NULL, "keys", "add", "mock", NULL), ==, 0);

  g_assert_cmpint (run_cli (fixture, NULL, &out, NULL, "models", NULL), ==, 0);
  kp_test_assert_contains (out, "mock/stall");
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (run_cli (fixture, NULL, &out, NULL, "providers", NULL), ==, 0);
  g_assert_true (g_regex_match_simple ("^mock +Mock +yes +1 +2 +never$", out, G_REGEX_MULTILINE, 0));
  g_clear_pointer (&out, g_free);

  /* The mock lists only mock-chat. */
  g_assert_cmpint (run_cli (fixture, NULL, &out, NULL, "refresh", "mock", NULL), ==, 0);
  g_assert_true (g_regex_match_simple ("^mock +ok +1 model(;|$)", out, G_REGEX_MULTILINE, 0));
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (run_cli (fixture, NULL, &out, NULL, "models", NULL), ==, 0);
  kp_test_assert_contains (out, "mock/chat");
  g_assert_null (strstr (out, "mock/stall"));
  g_clear_pointer (&out, g_free);

  g_assert_cmpint (run_cli (fixture, NULL, &out, &err, "refresh", "broken", NULL), ==, 1);
  g_assert_true (g_regex_match_simple ("^broken +failed +models: ", out, G_REGEX_MULTILINE, 0));
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (run_cli (fixture, NULL, NULL, &err, "refresh", "nosuch", NULL), ==, 1);
  kp_test_assert_contains (err, "There is no provider “nosuch”");
  g_clear_pointer (&err, g_free);
  /* No key: nothing to ask it with. */
  g_assert_cmpint (run_cli (fixture, NULL, &out, NULL, "refresh", "chatcheck", NULL), ==, 1);
  kp_test_assert_contains (out, "skipped");
  g_clear_pointer (&out, g_free);

  g_assert_cmpint (run_cli (fixture, NULL, &out, NULL, "providers", NULL), ==, 0);
  g_assert_true (g_regex_match_simple ("^mock +Mock +yes +1 +1 +[0-9]{4}-", out, G_REGEX_MULTILINE, 0));
  g_assert_true (g_regex_match_simple ("^broken .* [0-9]{4}-[0-9-]+ [0-9:]+\n +last error: models: ",
                                       out, G_REGEX_MULTILINE, 0));
  kp_test_assert_contains (out, "models as of: the provider file");
  g_clear_pointer (&out, g_free);

  /* Everything: the broken one fails, the command does not. */
  g_assert_cmpint (run_cli (fixture, NULL, &out, NULL, "refresh", NULL), ==, 0);
  g_assert_true (g_regex_match_simple ("^mock +ok ", out, G_REGEX_MULTILINE, 0));
  g_assert_true (g_regex_match_simple ("^broken +failed ", out, G_REGEX_MULTILINE, 0));
  g_assert_true (g_regex_match_simple ("^chatcheck +skipped ", out, G_REGEX_MULTILINE, 0));

  g_free (stop_daemon (fixture));
}

static void
test_without_keyring (Fixture       *fixture,
                      gconstpointer  data)
{
  g_autoptr(SoupSession) session = soup_session_new ();
  KpMockStats *stats = kp_mock_upstream_get_stats (fixture->mock);
  g_autofree char *token = NULL;
  g_autofree char *err = NULL;
  g_autofree char *add_err = NULL;
  g_autofree char *list = NULL;
  g_autofree char *token_file = g_build_filename (fixture->place.config, "token", NULL);

  /* A headless server: no session bus, a key in the environment. */
  fixture->no_bus = TRUE;
  start_daemon (fixture);

  g_assert_true (g_file_get_contents (token_file, &token, NULL, NULL));
  g_strstrip (token);
  g_assert_cmpuint (chat (fixture, session, token, "mock/chat"), ==, 200);
  g_assert_cmpstr (stats->last_auth, ==, "Bearer " ENV_KEY);

  g_assert_cmpint (run_cli (fixture, UNCHECKED_KEY, NULL, &add_err, "keys", "add", "mock", NULL), ==, 1);
  kp_test_assert_contains (add_err,
                           "the keyring is unavailable (no Secret Service could be reached: ");
  kp_test_assert_contains (add_err, "MOCK_API_KEY");
  g_assert_cmpint (run_cli (fixture, NULL, &list, NULL, "keys", "list", NULL), ==, 0);
  kp_test_assert_contains (list, "MOCK_API_KEY");
  kp_test_assert_contains (list, "…7777");
  kp_test_assert_contains (list, "env ");

  err = stop_daemon (fixture);
  /* Said once, with the reason in words. */
  kp_test_assert_contains (err, "The keyring is unavailable: no Secret Service could be reached: ");
  g_assert_cmpuint (strstr (err, "The keyring is unavailable") == g_strrstr (err, "The keyring is unavailable"),
                    ==, TRUE);
  assert_no_secret_on_disk (fixture, ENV_KEY);
}

typedef struct
{
  Fixture     *fixture;
  SoupSession *session;
  char        *auth;
  char        *url;
  guint        completed;
  guint        failed;
  guint        in_flight;
  gboolean     stopped;
} Load;

static void send_one (Load *load);

static void
on_load_reply (GObject      *object,
               GAsyncResult *result,
               gpointer      user_data)
{
  Load *load = user_data;
  SoupMessage *msg = soup_session_get_async_result_message (SOUP_SESSION (object), result);
  g_autoptr(GBytes) body = soup_session_send_and_read_finish (SOUP_SESSION (object), result, NULL);

  load->in_flight--;
  /* Completed: the whole answer arrived. */
  if (body != NULL && soup_message_get_status (msg) == 200 &&
      strstr (g_bytes_get_data (body, NULL), "\"total_tokens\"") != NULL)
    load->completed++;
  else
    load->failed++;

  if (!load->stopped)
    send_one (load);
}

static void
send_one (Load *load)
{
  static const char body[] = "{\"model\":\"mock/chat\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}";
  g_autoptr(SoupMessage) msg = soup_message_new ("POST", load->url);
  g_autoptr(GBytes) bytes = g_bytes_new_static (body, strlen (body));

  soup_message_headers_replace (soup_message_get_request_headers (msg), "Authorization", load->auth);
  soup_message_set_request_body_from_bytes (msg, "application/json", bytes);
  load->in_flight++;
  soup_session_send_and_read_async (load->session, msg, G_PRIORITY_DEFAULT, NULL, on_load_reply, load);
}

static gboolean
load_reached (gpointer data)
{
  return ((Load *)data)->completed >= 150;
}

static gboolean
load_drained (gpointer data)
{
  return ((Load *)data)->in_flight == 0;
}

static void
test_kill_during_load (Fixture       *fixture,
                       gconstpointer  data)
{
  g_autoptr(SoupSession) session = soup_session_new_with_options ("max-conns-per-host", 8, NULL);
  g_autoptr(KpLedger) ledger = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *token = NULL;
  g_autofree char *token_file = g_build_filename (fixture->place.config, "token", NULL);
  Load load = { 0 };
  sqlite3 *db = NULL;
  sqlite3_stmt *stmt = NULL;
  gint64 rows = -1, orphans = -1;

  fixture->no_bus = TRUE;
  start_daemon (fixture);
  g_assert_true (g_file_get_contents (token_file, &token, NULL, NULL));
  g_strstrip (token);

  load.fixture = fixture;
  load.session = session;
  load.auth = g_strconcat ("Bearer ", token, NULL);
  load.url = g_strconcat (fixture->daemon_url, "/chat/completions", NULL);
  for (guint i = 0; i < 8; i++)
    send_one (&load);

  g_assert_true (kp_test_spin_until (load_reached, &load, 60000));
  g_subprocess_send_signal (fixture->daemon, SIGKILL);
  load.stopped = TRUE;
  g_assert_true (kp_test_spin_until (load_drained, &load, 20000));
  g_subprocess_wait (fixture->daemon, NULL, NULL);
  g_clear_object (&fixture->daemon);
  g_test_message ("%u requests completed, %u cut off by kill -9", load.completed, load.failed);

  /* The database opens, passes its integrity check, and has a whole row
   * (with its attempt) for every request whose answer arrived.
   */
  ledger = kp_ledger_open (fixture->place.db, &error);
  g_assert_no_error (error);
  g_assert_true (kp_ledger_check_integrity (ledger, &error));
  g_assert_no_error (error);

  g_assert_cmpint (sqlite3_open_v2 (fixture->place.db, &db, SQLITE_OPEN_READONLY, NULL), ==,
                   SQLITE_OK);
  g_assert_cmpint (sqlite3_prepare_v2 (db, "SELECT COUNT(*) FROM requests WHERE outcome = 'ok'", -1,
                                       &stmt, NULL), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_step (stmt), ==, SQLITE_ROW);
  rows = sqlite3_column_int64 (stmt, 0);
  sqlite3_finalize (stmt);
  g_assert_cmpint (sqlite3_prepare_v2 (db, "SELECT COUNT(*) FROM requests r WHERE r.attempts != "
                                       "(SELECT COUNT(*) FROM attempts a WHERE a.request = r.id)", -1,
                                       &stmt, NULL), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_step (stmt), ==, SQLITE_ROW);
  orphans = sqlite3_column_int64 (stmt, 0);
  sqlite3_finalize (stmt);
  sqlite3_close (db);

  g_test_message ("%" G_GINT64_FORMAT " rows after kill -9", rows);
  g_assert_cmpint (rows, >=, load.completed);
  g_assert_cmpint (orphans, ==, 0);

  g_free (load.auth);
  g_free (load.url);
}

typedef struct
{
  GInputStream *stream;
  GString      *text;
  gboolean      done;
  char          buffer[4096];
} StreamReader;

static void
on_stream_chunk (GObject      *object,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  StreamReader *reader = user_data;
  gssize n = g_input_stream_read_finish (G_INPUT_STREAM (object), result, NULL);

  if (n <= 0)
    {
      reader->done = TRUE;
      return;
    }
  g_string_append_len (reader->text, reader->buffer, n);
  g_input_stream_read_async (reader->stream, reader->buffer, sizeof reader->buffer,
                             G_PRIORITY_DEFAULT, NULL, on_stream_chunk, reader);
}

static void
on_stream_sent (GObject      *object,
                GAsyncResult *result,
                gpointer      user_data)
{
  StreamReader *reader = user_data;

  reader->stream = soup_session_send_finish (SOUP_SESSION (object), result, NULL);
  if (reader->stream == NULL)
    {
      reader->done = TRUE;
      return;
    }
  g_input_stream_read_async (reader->stream, reader->buffer, sizeof reader->buffer,
                             G_PRIORITY_DEFAULT, NULL, on_stream_chunk, reader);
}

static gboolean
stream_started (gpointer data)
{
  return strstr (((StreamReader *)data)->text->str, "tok1") != NULL;
}

static gboolean
stream_ended (gpointer data)
{
  return ((StreamReader *)data)->done;
}

static gboolean
daemon_exited (gpointer data)
{
  return g_subprocess_get_identifier (G_SUBPROCESS (data)) == NULL;
}

static void
test_tray_quit_ends_streams (Fixture       *fixture,
                             gconstpointer  data)
{
  g_autoptr(SoupSession) session = soup_session_new ();
  g_autoptr(SoupMessage) msg = NULL;
  g_autoptr(GBytes) body = NULL;
  g_autoptr(GAsyncResult) clicked = NULL;
  g_autoptr(GDBusConnection) bus = g_bus_get_sync (G_BUS_TYPE_SESSION, NULL, NULL);
  g_autoptr(GSubprocess) daemon = NULL;
  g_autoptr(KpLedger) ledger = NULL;
  g_autoptr(GPtrArray) rows = NULL;
  g_autofree char *token = NULL;
  g_autofree char *auth = NULL;
  g_autofree char *url = NULL;
  static const char request[] =
    "{\"model\":\"mock/stall\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
  StreamReader reader = { .text = g_string_new (NULL) };

  /* The tray only: serving, no window. */
  start_daemon_mode (fixture, "--background");
  g_assert_cmpint (run_cli (fixture, LIVE_KEY, NULL, NULL, "keys", "add", "mock", "--no-check", NULL), ==, 0);
  g_assert_cmpint (run_cli (fixture, NULL, &token, NULL, "token", NULL), ==, 0);
  g_strstrip (token);

  url = g_strconcat (fixture->daemon_url, "/chat/completions", NULL);
  auth = g_strconcat ("Bearer ", token, NULL);
  msg = soup_message_new ("POST", url);
  body = g_bytes_new_static (request, strlen (request));
  soup_message_headers_replace (soup_message_get_request_headers (msg), "Authorization", auth);
  soup_message_set_request_body_from_bytes (msg, "application/json", body);
  soup_session_send_async (session, msg, G_PRIORITY_DEFAULT, NULL, on_stream_sent, &reader);
  g_assert_true (kp_test_spin_until (stream_started, &reader, 10000));

  /* Quit from the tray menu, as a panel would send it. */
  g_dbus_connection_call (bus, APPLICATION_ID, "/MenuBar", "com.canonical.dbusmenu", "Event",
                          g_variant_new ("(isvu)", 6, "clicked", g_variant_new_int32 (0), 0),
                          NULL, G_DBUS_CALL_FLAGS_NONE, 5000, NULL, kp_test_store_result, &clicked);
  g_assert_true (kp_test_spin_until (stream_ended, &reader, 10000));

  /* The stream ends with an error event, never a false [DONE]… */
  g_assert_nonnull (strstr (reader.text->str, "data: {\"error\""));
  g_assert_nonnull (strstr (reader.text->str, "shutting down"));
  g_assert_null (strstr (reader.text->str, "[DONE]"));

  /* …Keypool exits cleanly, and the request has its row. */
  daemon = g_steal_pointer (&fixture->daemon);
  g_assert_true (kp_test_spin_until (daemon_exited, daemon, 10000));
  g_assert_cmpint (g_subprocess_get_exit_status (daemon), ==, 0);
  ledger = kp_ledger_open (fixture->place.db, NULL);
  rows = kp_ledger_recent_requests (ledger, 5, NULL);
  g_assert_cmpuint (rows->len, ==, 1);
  g_assert_cmpstr (((KpRequestRow *)g_ptr_array_index (rows, 0))->outcome, ==, "interrupted");

  g_string_free (reader.text, TRUE);
  g_clear_object (&reader.stream);
}

/* keypool keys import: a CLI's saved login becomes an account in the keyring;
 * the file is only read, the refresh token never printed; the account gets
 * its access token from the (mock) token endpoint.
 */
static void
test_import_login (Fixture       *fixture,
                   gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(KpMockGoogle) google = kp_mock_google_new (&error);
  g_autofree char *provider = NULL;
  g_autofree char *provider_path = g_build_filename (fixture->place.providers, "gca.json", NULL);
  g_autofree char *dir = g_build_filename (fixture->home, ".gemini", NULL);
  g_autofree char *creds = g_build_filename (dir, "oauth_creds.json", NULL);
  g_autofree char *fixture_file = g_build_filename (g_getenv ("KEYPOOL_FIXTURES_DIR"), "oauth",
                                                    "oauth_creds.json", NULL);
  g_autofree char *before = NULL;
  g_autofree char *after = NULL;
  g_autofree char *home = g_strdup (g_getenv ("HOME"));
  gsize len;

  g_assert_no_error (error);
  provider = g_strdup_printf (
    "{\"schema\":1,\"id\":\"gca\",\"name\":\"Code Assist test\",\"dialect\":\"code-assist\","
    "\"base_url\":\"%s/v1internal\",\"key_check\":\"chat\",\"requires_key\":true,"
    "\"subscription\":true,\"prices_checked\":\"2026-12-02\","
    "\"oauth\":{\"token_url\":\"%s/token\",\"client_id\":\"test-client.apps\","
    "\"import_file\":\"~/.gemini/oauth_creds.json\",\"account_setup\":\"code-assist\"},"
    "\"models\":[{\"id\":\"google/gemini-2.5-pro\",\"upstream_id\":\"gemini-2.5-pro\","
    "\"input\":0,\"output\":0}]}",
    kp_mock_google_get_url (google), kp_mock_google_get_url (google));
  g_file_set_contents (provider_path, provider, -1, &error);
  g_assert_no_error (error);
  g_assert_cmpint (g_mkdir_with_parents (dir, 0700), ==, 0);
  g_file_get_contents (fixture_file, &before, &len, &error);
  g_assert_no_error (error);
  g_file_set_contents (creds, before, len, &error);
  g_assert_no_error (error);
  g_setenv ("HOME", fixture->home, TRUE);
  kp_mock_google_set_quota (google, "[{\"modelId\":\"gemini-2.5-pro\",\"remainingFraction\":0.62,"
                                    "\"resetTime\":\"2030-01-01T09:00:00Z\"}]");

  {
    g_autofree char *out = NULL;
    g_autofree char *err = NULL;

    /* An account provider asks for no key: the command says the way in. */
    g_assert_cmpint (run_cli (fixture, "sk-piped-to-an-account-provider", &out, &err, "keys",
                              "add", "gca", NULL), ==, 1);
    kp_test_assert_contains (err, "Code Assist test accounts are imported from its own login");
    kp_test_assert_contains (err, "keypool keys import gca");
    g_assert_null (strstr (out, "API key for"));
    g_assert_null (strstr (err, "API key for"));
  }

  {
    g_autofree char *out = NULL;
    g_autofree char *err = NULL;

    g_assert_cmpint (run_cli (fixture, NULL, &out, &err, "keys", "import", "gca", "--label",
                              "me", NULL), ==, 0);
    kp_test_assert_contains (out, "Added account 1 for gca");
  }
  {
    g_autofree char *err = NULL;

    g_assert_cmpint (run_cli (fixture, NULL, NULL, &err, "keys", "import", "gca", NULL), ==, 1);
    kp_test_assert_contains (err, "already key 1");
  }
  {
    g_autofree char *err = NULL;

    /* An API-key provider has nothing to import. */
    g_assert_cmpint (run_cli (fixture, NULL, NULL, &err, "keys", "import", "mock", NULL), ==, 1);
    kp_test_assert_contains (err, "takes API keys");
  }
  {
    g_autofree char *out = NULL;

    g_assert_cmpint (run_cli (fixture, NULL, &out, NULL, "keys", "list", NULL), ==, 0);
    kp_test_assert_contains (out, "gca");
    kp_test_assert_contains (out, "…0001");
  }
  {
    g_autoptr(GDateTime) reset = g_date_time_new_from_unix_local (1893488400);  /* 2030-01-01T09:00Z */
    g_autofree char *time = g_date_time_format (reset, "%H:%M");
    g_autofree char *quota = g_strdup_printf ("62 %% of today's quota left, resets %s", time);
    g_autofree char *out = NULL;
    gint64 deadline = g_get_monotonic_time () + 30 * G_USEC_PER_SEC;

    /* The account is set up and its quota read after the import: wait for it. */
    while (out == NULL || strstr (out, quota) == NULL)
      {
        g_assert_cmpint (g_get_monotonic_time (), <, deadline);
        g_clear_pointer (&out, g_free);
        g_assert_cmpint (run_cli (fixture, NULL, &out, NULL, "keys", "list", NULL), ==, 0);
      }
    g_clear_pointer (&out, g_free);
    /* keypool providers shows it under the provider (each command here is
     * a Keypool of its own, which reads the quota anew: wait again).
     */
    while (out == NULL || strstr (out, quota) == NULL)
      {
        g_assert_cmpint (g_get_monotonic_time (), <, deadline);
        g_clear_pointer (&out, g_free);
        g_assert_cmpint (run_cli (fixture, NULL, &out, NULL, "providers", NULL), ==, 0);
      }
    kp_test_assert_contains (out, "key 1 (me): ");
  }

  if (home != NULL)
    g_setenv ("HOME", home, TRUE);
  else
    g_unsetenv ("HOME");

  g_file_get_contents (creds, &after, NULL, &error);
  g_assert_cmpstr (after, ==, before);
  /* Neither token was ever printed. */
  g_assert_null (strstr (fixture->all_output->str, "fixture-refresh-token"));
  g_assert_null (strstr (fixture->all_output->str, "fixture-access-token"));
}

/* keypool keys import kiro: Kiro's sign-in goes to the keyring, its file is
 * only read, and no token is printed or written to the database.
 */
static void
test_import_kiro (Fixture       *fixture,
                  gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *cache = g_build_filename (fixture->home, ".aws", "sso", "cache", NULL);
  g_autofree char *token = g_build_filename (cache, "kiro-auth-token.json", NULL);
  g_autofree char *provider = g_build_filename (fixture->place.providers, "kiro.json", NULL);
  g_autofree char *after = NULL;
  const char *before =
    "{\"accessToken\":\"kiro-cli-access-1\",\"refreshToken\":\"kiro-cli-refresh-1\","
    "\"expiresAt\":\"2099-01-01T00:00:00.000Z\",\"authMethod\":\"social\","
    "\"profileArn\":\"arn:aws:codewhisperer:us-east-1:1:profile/P\"}";

  /* Its management API on a closed loopback port: nothing leaves the machine. */
  g_file_set_contents (provider,
                       "{\"schema\":1,\"id\":\"kiro\",\"name\":\"Kiro\",\"dialect\":\"kiro\","
                       "\"base_url\":\"http://127.0.0.1:9\",\"requires_key\":true,"
                       "\"oauth\":{\"flow\":\"kiro\",\"token_url\":\"http://127.0.0.1:9/refreshToken\","
                       "\"manage_url\":\"http://127.0.0.1:9\"},\"models\":[{\"id\":\"kiro/auto\","
                       "\"upstream_id\":\"auto\",\"input\":0,\"output\":0}]}", -1, &error);
  g_assert_no_error (error);
  g_assert_cmpint (g_mkdir_with_parents (cache, 0700), ==, 0);
  g_file_set_contents (token, before, -1, &error);
  g_assert_no_error (error);
  {
    g_autofree char *out = NULL;

    g_assert_cmpint (run_cli (fixture, NULL, &out, NULL, "keys", "import", "kiro", NULL), ==, 0);
    kp_test_assert_contains (out, "Added account 1 for kiro");
  }
  g_file_get_contents (token, &after, NULL, &error);
  g_assert_cmpstr (after, ==, before);
  g_assert_null (strstr (fixture->all_output->str, "kiro-cli-refresh-1"));
  g_assert_null (strstr (fixture->all_output->str, "kiro-cli-access-1"));
  assert_no_secret_on_disk (fixture, "kiro-cli-refresh-1");
}

/* The token `keypool connect codex` wrote into Codex's config. */
static char *
codex_token (const char *path)
{
  g_autofree char *text = NULL;
  const char *at;

  if (!g_file_get_contents (path, &text, NULL, NULL))
    return NULL;
  at = strstr (text, "experimental_bearer_token = \"");
  if (at == NULL)
    return NULL;
  at += strlen ("experimental_bearer_token = \"");
  return g_strndup (at, strcspn (at, "\""));
}

/* `keypool connect codex` in the running Keypool: Codex's config gets a
 * client token of its own that Keypool serves at once; connecting again
 * changes nothing; disconnecting removes the file it made and retires the
 * token; a file Keypool cannot edit is left alone, with what to paste.
 */
static void
test_connect (Fixture       *fixture,
              gconstpointer  data)
{
  g_autoptr(SoupSession) session = soup_session_new ();
  KpMockStats *stats = kp_mock_upstream_get_stats (fixture->mock);
  g_autofree char *path = g_build_filename (fixture->home, ".codex", "config.toml", NULL);
  g_autofree char *main_token = NULL;
  g_autofree char *token = NULL;
  g_autofree char *first = NULL;
  g_autofree char *second = NULL;
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;
  const char *bad = "model = \"x\"\nnot toml at all\n";

  g_assert_cmpint (g_mkdir_with_parents (fixture->home, 0700), ==, 0);
  start_daemon (fixture);
  g_assert_cmpint (run_cli (fixture, NULL, &main_token, NULL, "token", NULL), ==, 0);
  g_strstrip (main_token);
  g_assert_cmpint (run_cli (fixture, LIVE_KEY, NULL, NULL, "keys", "add", "mock", NULL), ==, 0);

  g_assert_cmpint (run_cli (fixture, NULL, &out, NULL, "connect", "codex", "--model", "mock/chat", NULL),
                   ==, 0);
  kp_test_assert_contains (out, "Codex now uses Keypool");
  kp_test_assert_contains (out, "Model: mock/chat\n");
  token = codex_token (path);
  g_assert_nonnull (token);
  g_assert_cmpstr (token, !=, main_token);
  g_assert_null (strstr (fixture->all_output->str, token));
  g_assert_true (g_file_get_contents (path, &first, NULL, NULL));
  kp_test_assert_contains (first, "model = \"mock/chat\"\nmodel_provider = \"keypool\"\n");
  kp_test_assert_contains (first, fixture->daemon_url);

  g_assert_cmpuint (chat (fixture, session, token, "mock/chat"), ==, 200);
  g_assert_cmpstr (stats->last_auth, ==, "Bearer " LIVE_KEY);

  /* The list shows it connected. */
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (run_cli (fixture, NULL, &out, NULL, "connect", NULL), ==, 0);
  kp_test_assert_contains (out, "connected   mock/chat");

  g_clear_pointer (&out, g_free);
  g_assert_cmpint (run_cli (fixture, NULL, &out, NULL, "connect", "codex", "--model", "mock/chat", NULL),
                   ==, 0);
  kp_test_assert_contains (out, "already uses Keypool");
  g_assert_true (g_file_get_contents (path, &second, NULL, NULL));
  g_assert_cmpstr (first, ==, second);

  g_clear_pointer (&out, g_free);
  g_assert_cmpint (run_cli (fixture, NULL, &out, NULL, "disconnect", "codex", NULL), ==, 0);
  kp_test_assert_contains (out, "as it was before Keypool");
  g_assert_false (g_file_test (path, G_FILE_TEST_EXISTS));
  g_assert_cmpuint (chat (fixture, session, token, "mock/chat"), ==, 401);

  /* A file Keypool cannot edit: left alone, the snippet instead. */
  g_assert_true (g_file_set_contents (path, bad, -1, NULL));
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (run_cli (fixture, NULL, &out, &err, "connect", "codex", "--model", "mock/chat", NULL),
                   ==, 1);
  kp_test_assert_contains (err, "cannot edit");
  kp_test_assert_contains (err, "line 2");
  kp_test_assert_contains (out, "[model_providers.keypool]");
  g_clear_pointer (&second, g_free);
  g_assert_true (g_file_get_contents (path, &second, NULL, NULL));
  g_assert_cmpstr (second, ==, bad);

  g_clear_pointer (&err, g_free);
  g_assert_cmpint (run_cli (fixture, NULL, NULL, &err, "connect", "cursor", NULL), ==, 1);
  kp_test_assert_contains (err, "claude-code, codex, gemini-cli, continue, aider, opencode");
  g_free (stop_daemon (fixture));
}

static void
add_row (KpLedger   *ledger,
         const char *id,
         const char *provider,
         const char *source,
         gint64      cost_nano,
         double      credits,
         gboolean    estimated)
{
  g_autoptr(GError) error = NULL;
  KpRequestRow row = {
    .request_id = (char *)id, .time_ms = g_get_real_time () / 1000, .api = (char *)"openai-chat",
    .model = (char *)"mock/chat", .provider = (char *)provider, .status = 200,
    .outcome = (char *)"ok", .prompt_tokens = 25000, .completion_tokens = 4,
    .cost_nano = cost_nano, .cost_source = (char *)source, .ttfb_ms = -1, .total_ms = 12,
    .has_credits = credits >= 0, .credits = credits, .tokens_estimated = estimated,
  };

  g_assert_true (kp_ledger_add_request (ledger, &row, NULL, 0, &error));
  g_assert_no_error (error);
}

/* `keypool spend` and `keypool requests` on a real ledger file: a
 * subscription's requests are "subscription", never $0 and never in the
 * spend; credits are summed apart; estimated tokens are marked.
 */
static void
test_spend_subscription (Fixture       *fixture,
                         gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(KpLedger) ledger = kp_ledger_open (fixture->place.db, &error);
  g_autofree char *out = NULL;
  g_autofree char *kiro_line = NULL;
  g_autofree char *mock_line = NULL;
  g_auto(GStrv) lines = NULL;

  g_assert_no_error (error);
  add_row (ledger, "kp-1", "mock", "computed", 21000, -1, FALSE);
  add_row (ledger, "kp-2", "kiro", "subscription", 0, 41.25, TRUE);
  add_row (ledger, "kp-3", "kiro", "subscription", 0, 0.05, TRUE);
  add_row (ledger, "kp-4", "gemini-cli", "subscription", 0, -1, FALSE);
  g_clear_object (&ledger);

  g_assert_cmpint (run_cli (fixture, NULL, &out, NULL, "spend", "--by", "provider", NULL), ==, 0);
  g_test_message ("%s", out);
  lines = g_strsplit (out, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    if (g_str_has_prefix (lines[i], "kiro "))
      kiro_line = g_strdup (lines[i]);
    else if (g_str_has_prefix (lines[i], "mock "))
      mock_line = g_strdup (lines[i]);
  kp_test_assert_contains (kiro_line, "subscription (2 requests)");
  kp_test_assert_contains (kiro_line, "41.3");
  g_assert_null (strstr (kiro_line, "$"));
  kp_test_assert_contains (mock_line, "$0.000021");
  kp_test_assert_contains (out, "subscription (1 request)");
  /* The total is the money; the subscriptions and credits are told apart. */
  kp_test_assert_contains (out, "TOTAL");
  kp_test_assert_contains (out, "$0.000021 + subscription (3 requests)");
  kp_test_assert_contains (out, "3 requests went to subscriptions: no spend.");
  kp_test_assert_contains (out, "41.3 credits");
  g_assert_null (strstr (out, "$0.000000"));

  g_clear_pointer (&out, g_free);
  g_assert_cmpint (run_cli (fixture, NULL, &out, NULL, "requests", "--last", "10", NULL), ==, 0);
  g_test_message ("%s", out);
  kp_test_assert_contains (out, "subscription");
  kp_test_assert_contains (out, "$0.000021 computed");
  /* Estimated token counts are marked. */
  kp_test_assert_contains (out, "~25000");
  g_assert_null (strstr (out, "$0.000000"));
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

#define ADD(path, func) \
  g_test_add ("/keypool/cli/" path, Fixture, NULL, fixture_setup, func, fixture_teardown)

  ADD ("keys-lifecycle", test_keys_lifecycle);
  ADD ("import-login", test_import_login);
  ADD ("import-kiro", test_import_kiro);
  ADD ("token-file-moves-to-keyring", test_token_file_moves_to_keyring);
  ADD ("daemon-carries-out-commands", test_daemon_carries_out_commands);
  ADD ("refresh", test_refresh);
  ADD ("without-keyring", test_without_keyring);
  ADD ("kill-during-load", test_kill_during_load);
  ADD ("tray-quit-ends-streams", test_tray_quit_ends_streams);
  ADD ("connect", test_connect);
  ADD ("spend-subscription", test_spend_subscription);

#undef ADD

  return g_test_run ();
}
