/* kp-test-util.c: helpers the test programs share
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include "config.h"

#include <string.h>

#include <glib/gstdio.h>
#include <sqlite3.h>

#include "kp-sse.h"
#include "kp-test-util.h"
#include "kp-vault.h"

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

/**
 * kp_test_request:
 * @body: (nullable): a JSON body
 * @...: request headers, name then value, up to a %NULL name; a %NULL
 *   value leaves its header out
 *
 * Sends a request with kp_test_send(), waiting up to 15 s.
 */
void
kp_test_request (SoupSession    *session,
                 const char     *method,
                 const char     *url,
                 const char     *body,
                 KpTestResponse *response,
                 ...)
{
  g_autoptr(SoupMessage) msg = soup_message_new (method, url);
  SoupMessageHeaders *headers = soup_message_get_request_headers (msg);
  const char *name;
  va_list args;

  g_assert_nonnull (msg);
  va_start (args, response);
  while ((name = va_arg (args, const char *)) != NULL)
    {
      const char *value = va_arg (args, const char *);

      if (value != NULL)
        soup_message_headers_replace (headers, name, value);
    }
  va_end (args);
  if (body != NULL)
    {
      g_autoptr(GBytes) bytes = g_bytes_new (body, strlen (body));

      soup_message_set_request_body_from_bytes (msg, "application/json", bytes);
    }
  kp_test_send (session, msg, 15000, response);
}

/**
 * kp_test_chat:
 * @url: a chat completions URL
 * @token: the bearer token
 * @response: (out) (optional): the whole answer
 *
 * Asks @model "hi".
 *
 * Returns: the HTTP status
 */
guint
kp_test_chat (SoupSession    *session,
              const char     *url,
              const char     *token,
              const char     *model,
              KpTestResponse *response)
{
  g_autofree char *auth = g_strconcat ("Bearer ", token, NULL);
  g_autofree char *body = g_strdup_printf ("{\"model\":\"%s\",\"messages\":[{\"role\":\"user\","
                                           "\"content\":\"hi\"}]}", model);
  g_auto(KpTestResponse) own = { 0 };

  if (response == NULL)
    response = &own;
  kp_test_request (session, "POST", url, body, response, "Authorization", auth, NULL);
  return response->status;
}

/**
 * kp_test_server_new:
 * @base_url: (out): "http://127.0.0.1:PORT", where it listens
 *
 * A mock server on a free loopback port: @handler answers every path.
 */
SoupServer *
kp_test_server_new (SoupServerCallback   handler,
                    gpointer             user_data,
                    char               **base_url)
{
  SoupServer *server = soup_server_new (NULL, NULL);
  g_autoptr(GError) error = NULL;
  GSList *uris;

  soup_server_add_handler (server, NULL, handler, user_data, NULL);
  soup_server_listen_local (server, 0, SOUP_SERVER_LISTEN_IPV4_ONLY, &error);
  g_assert_no_error (error);
  uris = soup_server_get_uris (server);
  *base_url = g_strdup_printf ("http://127.0.0.1:%u", g_uri_get_port (uris->data));
  g_slist_free_full (uris, (GDestroyNotify)g_uri_unref);
  return server;
}

/* A mock's answer: @json with @status. */
void
kp_test_reply_json (SoupServerMessage *msg,
                    guint              status,
                    const char        *json)
{
  soup_server_message_set_status (msg, status, NULL);
  soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_COPY, json,
                                    strlen (json));
}

/* What Keypool keeps in the keyring, as kp_vault_load_finish() gives it. */
GHashTable *
kp_test_keyring_secrets (void)
{
  g_autoptr(KpVault) vault = kp_vault_new ();
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  GHashTable *secrets;

  kp_vault_load_async (vault, NULL, kp_test_store_result, &result);
  g_assert_true (kp_test_spin_until (kp_test_result_ready, &result, 20000));
  secrets = kp_vault_load_finish (vault, result, &error);
  g_assert_no_error (error);
  return secrets;
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
  place->config = g_build_filename (place->root, "config", NULL);
  place->data = g_build_filename (place->root, "data", NULL);
  place->db = g_build_filename (place->data, "keypool.db", NULL);
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
  g_clear_pointer (&place->config, g_free);
  g_clear_pointer (&place->data, g_free);
  g_clear_pointer (&place->db, g_free);
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

/* A launcher for `keypool` on @place: its folders, and no token or port
 * from the test's own environment.
 */
GSubprocessLauncher *
kp_test_place_launcher (KpTestPlace      *place,
                        GSubprocessFlags  flags)
{
  GSubprocessLauncher *launcher = g_subprocess_launcher_new (flags);

  g_subprocess_launcher_setenv (launcher, "KEYPOOL_PROVIDERS_DIR", place->providers, TRUE);
  g_subprocess_launcher_setenv (launcher, "KEYPOOL_CONFIG_DIR", place->config, TRUE);
  g_subprocess_launcher_setenv (launcher, "KEYPOOL_DATA_DIR", place->data, TRUE);
  g_subprocess_launcher_unsetenv (launcher, "KEYPOOL_TOKEN");
  g_subprocess_launcher_unsetenv (launcher, "KEYPOOL_PORT");
  return launcher;
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

/* A folder "keypool-NAME-…" for a gateway, and a client for it. */
void
kp_test_rig_init (KpTestRig  *rig,
                  const char *name)
{
  kp_test_place_init (&rig->place, name);
  rig->client = soup_session_new ();
}

/* A gateway on the rig's providers, not started yet: set what the test
 * needs, then kp_test_rig_start().
 */
KpGateway *
kp_test_rig_new_gateway (KpTestRig  *rig,
                         const char *token)
{
  g_assert_null (rig->gateway);
  rig->gateway = kp_test_gateway_new (rig->place.providers, rig->place.root, token);
  return rig->gateway;
}

void
kp_test_rig_start (KpTestRig *rig)
{
  kp_test_gateway_start (rig->gateway);
  rig->base = g_strdup_printf ("http://127.0.0.1:%u", kp_gateway_get_port (rig->gateway));
}

/* The gateway on the rig's providers, serving with @token. */
void
kp_test_rig_serve (KpTestRig  *rig,
                   const char *token)
{
  kp_test_rig_new_gateway (rig, token);
  kp_test_rig_start (rig);
}

/* Stops the gateway; the place stays, for another one. */
void
kp_test_rig_stop (KpTestRig *rig)
{
  if (rig->gateway == NULL)
    return;
  kp_test_gateway_clear (&rig->gateway);
  g_clear_pointer (&rig->base, g_free);
}

/* Ends the client's requests, then the gateway, and removes the place. */
void
kp_test_rig_clear (KpTestRig *rig)
{
  kp_test_gateway_clear_with_client (&rig->gateway, &rig->client);
  g_clear_pointer (&rig->base, g_free);
  kp_test_place_clear (&rig->place);
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
 * kp_test_run_keypool:
 * @launcher: how to start it, with its three pipes
 * @input: (nullable): its standard input
 * @args: the arguments up to a %NULL
 *
 * kp_test_run() for `$KEYPOOL_TEST_BINARY ARGS…`.
 *
 * Returns: its exit status
 */
int
kp_test_run_keypool (GSubprocessLauncher  *launcher,
                     const char           *input,
                     char                **out,
                     char                **err,
                     va_list               args)
{
  g_autoptr(GPtrArray) argv = kp_test_keypool_argv (args);

  return kp_test_run (launcher, (const char * const *)argv->pdata, input ? input : "", out, err);
}

/* Fails the test, saying both, unless @needle is in @haystack. */
void
kp_test_assert_contains (const char *haystack,
                         const char *needle)
{
  if (haystack == NULL || strstr (haystack, needle) == NULL)
    g_error ("“%s” does not contain “%s”", haystack ? haystack : "(null)", needle);
}

gboolean
kp_test_file_contains (const char *path,
                       const char *needle)
{
  g_autofree char *contents = NULL;
  gsize len = 0;

  if (!g_file_get_contents (path, &contents, &len, NULL))
    return FALSE;
  return memmem (contents, len, needle, strlen (needle)) != NULL;
}

/* Not in the database @db, its WAL or its shared memory. */
void
kp_test_assert_db_lacks (const char *db,
                         const char *text)
{
  const char *suffixes[] = { "", "-wal", "-shm" };

  for (guint i = 0; i < G_N_ELEMENTS (suffixes); i++)
    {
      g_autofree char *path = g_strconcat (db, suffixes[i], NULL);

      if (kp_test_file_contains (path, text))
        g_error ("%s holds “%s”", path, text);
    }
}

/* The database @db opened read-only; a writer holding it is waited for. */
static sqlite3 *
db_open (const char *db)
{
  sqlite3 *handle = NULL;

  g_assert_cmpint (sqlite3_open_v2 (db, &handle, SQLITE_OPEN_READONLY, NULL), ==, SQLITE_OK);
  sqlite3_busy_timeout (handle, 2000);
  return handle;
}

/* The first column of @sql's first row, or -1 without a row. */
gint64
kp_test_db_int (const char *db,
                const char *sql)
{
  sqlite3 *handle = db_open (db);
  sqlite3_stmt *stmt = NULL;
  gint64 value = -1;

  g_assert_cmpint (sqlite3_prepare_v2 (handle, sql, -1, &stmt, NULL), ==, SQLITE_OK);
  if (sqlite3_step (stmt) == SQLITE_ROW)
    value = sqlite3_column_int64 (stmt, 0);
  sqlite3_finalize (stmt);
  sqlite3_close (handle);
  return value;
}

typedef struct
{
  const char *db;
  const char *sql;
  gint64      want;
} DbWait;

static gboolean
db_has (gpointer data)
{
  DbWait *wait = data;

  return kp_test_db_int (wait->db, wait->sql) == wait->want;
}

/**
 * kp_test_wait_db_int:
 *
 * Waits until @sql's first value in @db is @want: a Keypool in another
 * process may commit a request's row just after its answer went out.
 *
 * Returns: whether it was, within @timeout_ms
 */
gboolean
kp_test_wait_db_int (const char *db,
                     const char *sql,
                     gint64      want,
                     guint       timeout_ms)
{
  DbWait wait = { db, sql, want };

  return kp_test_spin_until (db_has, &wait, timeout_ms);
}

/* The first column of @sql's first row, or %NULL without a row or value. */
char *
kp_test_db_text (const char *db,
                 const char *sql)
{
  sqlite3 *handle = db_open (db);
  sqlite3_stmt *stmt = NULL;
  char *value = NULL;

  g_assert_cmpint (sqlite3_prepare_v2 (handle, sql, -1, &stmt, NULL), ==, SQLITE_OK);
  if (sqlite3_step (stmt) == SQLITE_ROW && sqlite3_column_text (stmt, 0) != NULL)
    value = g_strdup ((const char *)sqlite3_column_text (stmt, 0));
  sqlite3_finalize (stmt);
  sqlite3_close (handle);
  return value;
}

/* Streams ------------------------------------------------------------------ */

/* Every byte of @text must belong to a complete event. */
KpTestEvents
kp_test_scan_events (const char *text,
                     gsize       len)
{
  KpTestEvents events = { g_ptr_array_new_with_free_func (g_free),
                          g_ptr_array_new_with_free_func (g_free) };
  KpSseEvent event = { .data = g_string_new (NULL) };
  gsize offset = 0;
  gsize used;

  while ((used = kp_sse_next_event (text + offset, len - offset, &event)) > 0)
    {
      if (event.has_data)
        {
          g_ptr_array_add (events.names, event.name != NULL ? g_strndup (event.name, event.name_len)
                                                           : g_strdup (""));
          g_ptr_array_add (events.datas, g_strdup (event.data->str));
        }
      offset += used;
    }
  g_assert_cmpuint (offset, ==, len);
  g_string_free (event.data, TRUE);
  return events;
}

void
kp_test_events_clear (KpTestEvents *events)
{
  g_clear_pointer (&events->names, g_ptr_array_unref);
  g_clear_pointer (&events->datas, g_ptr_array_unref);
}

/* Fixture files ------------------------------------------------------------ */

/* The text of tests/fixtures/@dir/@name; the test fails without it. */
char *
kp_test_load_text (const char *dir,
                   const char *name,
                   gsize      *len)
{
  const char *fixtures = g_getenv ("KEYPOOL_FIXTURES_DIR");
  g_autofree char *path = NULL;
  g_autoptr(GError) error = NULL;
  char *text = NULL;

  g_assert_nonnull (fixtures);
  path = g_build_filename (fixtures, dir, name, NULL);
  g_file_get_contents (path, &text, len, &error);
  g_assert_no_error (error);
  return text;
}

/* @text parsed; the test fails when it is no JSON. */
JsonNode *
kp_test_parse_json (const char *text,
                    gssize      len)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) error = NULL;

  json_parser_load_from_data (parser, text, len, &error);
  g_assert_no_error (error);
  return json_node_copy (json_parser_get_root (parser));
}

JsonNode *
kp_test_load_json (const char *dir,
                   const char *name)
{
  gsize len = 0;
  g_autofree char *text = kp_test_load_text (dir, name, &len);

  return kp_test_parse_json (text, len);
}

/* Fails the test, printing both, unless they are equal. */
void
kp_test_assert_json_equal (JsonNode   *actual,
                           JsonNode   *expected,
                           const char *what)
{
  if (!json_node_equal (actual, expected))
    {
      g_autofree char *a = json_to_string (actual, TRUE);
      g_autofree char *e = json_to_string (expected, TRUE);

      g_printerr ("%s differs.\nGot:\n%s\nExpected:\n%s\n", what, a, e);
      g_assert_not_reached ();
    }
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
