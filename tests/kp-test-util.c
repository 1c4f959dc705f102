/* kp-test-util.c: helpers the test programs share
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include "config.h"

#include <glib/gstdio.h>
#include <sqlite3.h>

#include "kp-test-util.h"

/* Under valgrind everything is 20 to 50 times slower: the valgrind test
 * setup sets KEYPOOL_TEST_TIMEOUT_SCALE, and every wait for a condition is
 * that much longer. A wait still ends: a test that hangs still fails.
 */
guint
kp_test_timeout_scale (void)
{
  static gsize scale = 0;

  if (g_once_init_enter (&scale))
    {
      const char *text = g_getenv ("KEYPOOL_TEST_TIMEOUT_SCALE");
      guint64 value = 1;

      if (text == NULL || !g_ascii_string_to_unsigned (text, 10, 1, 1000, &value, NULL))
        value = 1;
      g_once_init_leave (&scale, value);
    }
  return (guint)scale;
}

/**
 * kp_test_spin_until:
 *
 * Runs the main loop until @done says so, or @timeout_ms passed.
 *
 * Returns: whether @done said so in time
 */
gboolean
kp_test_spin_until (gboolean (*done) (gpointer),
                    gpointer   data,
                    guint      timeout_ms)
{
  gint64 deadline = g_get_monotonic_time () + (gint64)timeout_ms * 1000 * kp_test_timeout_scale ();

  while (!done (data))
    {
      if (g_get_monotonic_time () > deadline)
        return FALSE;
      g_main_context_iteration (NULL, FALSE);
      if (!done (data))
        g_usleep (500);
    }
  return TRUE;
}

void
kp_test_spin_ms (guint ms)
{
  gint64 deadline = g_get_monotonic_time () + (gint64)ms * 1000;

  while (g_get_monotonic_time () < deadline)
    {
      g_main_context_iteration (NULL, FALSE);
      g_usleep (500);
    }
}

static void
remove_file_tree (GFile *file)
{
  g_autoptr(GFileEnumerator) children =
    g_file_enumerate_children (file, G_FILE_ATTRIBUTE_STANDARD_NAME,
                               G_FILE_QUERY_INFO_NOFOLLOW_SYMLINKS, NULL, NULL);
  GFileInfo *info;

  while (children != NULL && (info = g_file_enumerator_next_file (children, NULL, NULL)) != NULL)
    {
      g_autoptr(GFile) child = g_file_get_child (file, g_file_info_get_name (info));

      remove_file_tree (child);
      g_object_unref (info);
    }
  g_file_delete (file, NULL, NULL);
}

void
kp_test_remove_tree (const char *path)
{
  g_autoptr(GFile) file = g_file_new_for_path (path);

  remove_file_tree (file);
}

/* A GAsyncReadyCallback that keeps the result in a GAsyncResult* slot. */
void
kp_test_store_result (GObject      *object,
                      GAsyncResult *result,
                      gpointer      user_data)
{
  *(GAsyncResult **)user_data = g_object_ref (result);
}

gboolean
kp_test_result_ready (gpointer data)
{
  return *(GAsyncResult **)data != NULL;
}

void
kp_test_response_clear (KpTestResponse *response)
{
  g_clear_pointer (&response->body, g_free);
  g_clear_pointer (&response->headers, soup_message_headers_unref);
  response->status = 0;
  response->length = 0;
}

typedef struct
{
  GBytes  *body;
  GError  *error;
  gboolean done;
} Pending;

static void
on_read (GObject      *object,
         GAsyncResult *result,
         gpointer      user_data)
{
  Pending *pending = user_data;

  pending->body = soup_session_send_and_read_finish (SOUP_SESSION (object), result,
                                                     &pending->error);
  pending->done = TRUE;
}

static gboolean
pending_done (gpointer data)
{
  return ((Pending *)data)->done;
}

/**
 * kp_test_send:
 *
 * Sends @msg and reads its whole answer while the main loop runs (the server
 * under test shares it). Fails the test when no answer came in @timeout_ms.
 */
void
kp_test_send (SoupSession    *session,
              SoupMessage    *msg,
              guint           timeout_ms,
              KpTestResponse *response)
{
  Pending pending = { 0 };
  gsize length = 0;
  const char *data;

  soup_session_send_and_read_async (session, msg, G_PRIORITY_DEFAULT, NULL, on_read, &pending);
  g_assert_true (kp_test_spin_until (pending_done, &pending, timeout_ms));
  g_assert_no_error (pending.error);
  g_assert_nonnull (pending.body);

  data = g_bytes_get_data (pending.body, &length);
  response->status = soup_message_get_status (msg);
  response->body = g_strndup (data ? data : "", length);
  response->length = length;
  response->headers = soup_message_headers_ref (soup_message_get_response_headers (msg));
  g_bytes_unref (pending.body);
}

/* The gateway's key with that secret; the test fails when there is none. */
KpCredential *
kp_test_credential (KpGateway  *gateway,
                    const char *secret)
{
  GPtrArray *credentials = kp_gateway_get_credentials (gateway);

  for (guint i = 0; i < credentials->len; i++)
    {
      KpCredential *credential = g_ptr_array_index (credentials, i);

      if (g_strcmp0 (kp_credential_get_secret (credential), secret) == 0)
        return credential;
    }
  g_error ("no key with that secret");
  return NULL;
}

KpCredentialState
kp_test_credential_state (KpGateway  *gateway,
                          const char *secret)
{
  return kp_credential_get_state (kp_test_credential (gateway, secret),
                                  g_get_real_time () / G_USEC_PER_SEC);
}

/**
 * kp_test_gateway_new:
 * @providers_dir: the provider files it reads
 * @root: a private folder for its config and data
 *
 * A gateway for a test: any free port, no keyring, short timeouts. Set
 * anything else, then kp_test_gateway_start().
 */
KpGateway *
kp_test_gateway_new (const char *providers_dir,
                     const char *root,
                     const char *token)
{
  g_autofree char *config = g_build_filename (root, "config", NULL);
  g_autofree char *data = g_build_filename (root, "data", NULL);
  KpGateway *gateway = kp_gateway_new ();

  kp_gateway_set_port (gateway, 0);
  kp_gateway_set_dirs (gateway, providers_dir, config, data);
  kp_gateway_set_token (gateway, token);
  kp_gateway_set_use_keyring (gateway, FALSE);
  kp_gateway_set_timeouts (gateway, 2000, 5000, 2000);
  return gateway;
}

/* Loads @gateway and has it listen; the test fails if it cannot. */
void
kp_test_gateway_start (KpGateway *gateway)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GAsyncResult) loaded = NULL;

  kp_gateway_load_async (gateway, NULL, kp_test_store_result, &loaded);
  g_assert_true (kp_test_spin_until (kp_test_result_ready, &loaded, 5000));
  g_assert_true (kp_gateway_load_finish (gateway, loaded, &error));
  g_assert_no_error (error);
  g_assert_true (kp_gateway_listen (gateway, &error));
  g_assert_no_error (error);
}

static gboolean
gateway_drained (gpointer data)
{
  return kp_gateway_get_n_active (data) == 0;
}

/* Stops a test's gateway, lets its requests end, and drops it. */
void
kp_test_gateway_clear (KpGateway **gateway)
{
  if (*gateway == NULL)
    return;
  kp_gateway_stop (*gateway);
  /* Stopping aborts every request; each ends on the main loop. */
  g_assert_true (kp_test_spin_until (gateway_drained, *gateway, 30000));
  while (g_main_context_pending (NULL))
    g_main_context_iteration (NULL, FALSE);
  g_clear_object (gateway);
}

/* A folder "keypool-NAME-…" with an empty providers/ in it. */
void
kp_test_place_init (KpTestPlace *place,
                    const char  *name)
{
  g_autofree char *template = g_strdup_printf ("keypool-%s-XXXXXX", name);

  place->root = g_dir_make_tmp (template, NULL);
  g_assert_nonnull (place->root);
  place->providers = g_build_filename (place->root, "providers", NULL);
  g_assert_cmpint (g_mkdir (place->providers, 0700), ==, 0);
  place->env = g_ptr_array_new_with_free_func (g_free);
}

/* Sets @variable until kp_test_place_clear(). */
void
kp_test_place_setenv (KpTestPlace *place,
                      const char  *variable,
                      const char  *value)
{
  g_setenv (variable, value, TRUE);
  g_ptr_array_add (place->env, g_strdup (variable));
}

/* Unsets what the test set, and removes the folder. */
void
kp_test_place_clear (KpTestPlace *place)
{
  for (guint i = 0; place->env != NULL && i < place->env->len; i++)
    g_unsetenv (g_ptr_array_index (place->env, i));
  g_clear_pointer (&place->env, g_ptr_array_unref);
  if (place->root != NULL)
    kp_test_remove_tree (place->root);
  g_clear_pointer (&place->root, g_free);
  g_clear_pointer (&place->providers, g_free);
}

/* Writes providers/@id.json. */
void
kp_test_place_write_provider (KpTestPlace *place,
                              const char  *id,
                              const char  *json)
{
  g_autofree char *path = g_strdup_printf ("%s/%s.json", place->providers, id);

  g_assert_true (g_file_set_contents (path, json, -1, NULL));
}

/**
 * kp_test_gateway_serve:
 * @base_url: (out): "http://127.0.0.1:PORT", where it serves
 *
 * A gateway on @place's providers, loaded and serving with @token.
 */
KpGateway *
kp_test_gateway_serve (KpTestPlace  *place,
                       const char   *token,
                       char        **base_url)
{
  KpGateway *gateway = kp_test_gateway_new (place->providers, place->root, token);

  kp_test_gateway_start (gateway);
  *base_url = g_strdup_printf ("http://127.0.0.1:%u", kp_gateway_get_port (gateway));
  return gateway;
}

/* Ends the client's requests, then the gateway, before the mock goes. */
void
kp_test_gateway_clear_with_client (KpGateway   **gateway,
                                   SoupSession **client)
{
  if (*client != NULL)
    soup_session_abort (*client);
  g_clear_object (client);
  kp_test_gateway_clear (gateway);
  kp_test_spin_ms (10);
}

typedef struct
{
  char    *out;
  char    *err;
  GError  *error;
  gboolean done;
} Communicated;

static void
on_communicated (GObject      *object,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  Communicated *c = user_data;

  g_subprocess_communicate_utf8_finish (G_SUBPROCESS (object), result, &c->out, &c->err, &c->error);
  c->done = TRUE;
}

static gboolean
communicated (gpointer data)
{
  return ((Communicated *)data)->done;
}

/**
 * kp_test_run:
 * @launcher: how to start it (with stdout and stderr piped)
 * @argv: the command
 * @input: (nullable): what to write on its standard input
 * @out: (out): what it wrote on standard output
 * @err: (out): what it wrote on standard error
 *
 * Runs a program while this thread's main loop keeps running, so that a
 * mock or a gateway in this process can answer it.
 *
 * Returns: its exit status
 */
int
kp_test_run (GSubprocessLauncher *launcher,
             const char * const  *argv,
             const char          *input,
             char               **out,
             char               **err)
{
  g_autoptr(GSubprocess) process = NULL;
  g_autoptr(GError) error = NULL;
  Communicated c = { 0 };

  process = g_subprocess_launcher_spawnv (launcher, argv, &error);
  g_assert_no_error (error);

  g_subprocess_communicate_utf8_async (process, input, NULL, on_communicated, &c);
  g_assert_true (kp_test_spin_until (communicated, &c, 30000));
  g_assert_no_error (c.error);

  *out = c.out;
  *err = c.err;
  return g_subprocess_get_exit_status (process);
}

/* `$KEYPOOL_TEST_BINARY` and the arguments up to a NULL, NULL-terminated. */
GPtrArray *
kp_test_keypool_argv (va_list args)
{
  GPtrArray *argv = g_ptr_array_new ();
  const char *arg;

  g_ptr_array_add (argv, (gpointer)g_getenv ("KEYPOOL_TEST_BINARY"));
  while ((arg = va_arg (args, const char *)) != NULL)
    g_ptr_array_add (argv, (gpointer)arg);
  g_ptr_array_add (argv, NULL);
  return argv;
}

/**
 * kp_test_last_attempts:
 * @db_path: a ledger's file
 * @n_requests: (out) (optional): how many requests it holds
 *
 * Returns: the attempts of its newest request, one "status failure key"
 *   per line ("-" for none)
 */
char *
kp_test_last_attempts (const char *db_path,
                       guint      *n_requests)
{
  GString *text = g_string_new (NULL);
  sqlite3 *db = NULL;
  sqlite3_stmt *stmt = NULL;

  g_assert_cmpint (sqlite3_open_v2 (db_path, &db, SQLITE_OPEN_READONLY, NULL), ==, SQLITE_OK);
  if (n_requests != NULL)
    {
      g_assert_cmpint (sqlite3_prepare_v2 (db, "SELECT COUNT(*) FROM requests", -1, &stmt, NULL),
                       ==, SQLITE_OK);
      g_assert_cmpint (sqlite3_step (stmt), ==, SQLITE_ROW);
      *n_requests = sqlite3_column_int (stmt, 0);
      sqlite3_finalize (stmt);
    }
  g_assert_cmpint (sqlite3_prepare_v2 (db, "SELECT status, failure, credential_id FROM attempts "
                                           "WHERE request = (SELECT MAX(id) FROM requests) "
                                           "ORDER BY n", -1, &stmt, NULL), ==, SQLITE_OK);
  while (sqlite3_step (stmt) == SQLITE_ROW)
    {
      const char *failure = (const char *)sqlite3_column_text (stmt, 1);

      g_string_append_printf (text, "%d %s %lld\n", sqlite3_column_int (stmt, 0),
                              failure ? failure : "-", (long long)sqlite3_column_int64 (stmt, 2));
    }
  sqlite3_finalize (stmt);
  sqlite3_close (db);
  return g_string_free (text, FALSE);
}
