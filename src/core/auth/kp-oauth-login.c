/* kp-oauth-login.c: an installed app's sign-in in the user's browser
 *
 * The authorization-code flow with PKCE (S256) and a loopback redirect: a
 * small server listens on 127.0.0.1 (on the app's fixed port, or any free
 * one), the browser is sent to the sign-in page, and the provider sends it
 * back to the server with a code; the code and the PKCE verifier buy a
 * refresh token at the token endpoint. The URL is also given to the caller,
 * for a machine without a browser.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

#include "kp-oauth-login.h"
#include "kp-credential.h"

#define PAGE_DONE "<!doctype html><meta charset=utf-8><title>Keypool</title>" \
                  "<p>Signed in. You can close this page and go back to Keypool.</p>"
#define PAGE_FAILED "<!doctype html><meta charset=utf-8><title>Keypool</title>" \
                    "<p>The sign-in did not work: %s</p>"

struct _KpOAuthLogin
{
  GObject        parent_instance;

  KpOAuthClient *client;
  SoupSession   *session;
  SoupServer    *server;
  char          *verifier;      /* wiped when dropped */
  char          *state;
  char          *redirect_uri;
  char          *url;
  guint          timeout_s;
  gboolean       open_browser;

  GTask         *task;          /* the sign-in under way */
  guint          timer;
  gulong         cancelled_id;
  gboolean       got_code;
};

G_DEFINE_FINAL_TYPE (KpOAuthLogin, kp_oauth_login, G_TYPE_OBJECT)

static void
stop (KpOAuthLogin *self)
{
  g_clear_handle_id (&self->timer, g_source_remove);
  if (self->server != NULL)
    soup_server_disconnect (self->server);
  g_clear_object (&self->server);
}

static void
kp_oauth_login_dispose (GObject *object)
{
  KpOAuthLogin *self = (KpOAuthLogin *)object;

  stop (self);
  G_OBJECT_CLASS (kp_oauth_login_parent_class)->dispose (object);
}

static void
kp_oauth_login_finalize (GObject *object)
{
  KpOAuthLogin *self = (KpOAuthLogin *)object;

  kp_secret_wipe (&self->verifier);
  g_clear_pointer (&self->state, g_free);
  g_clear_pointer (&self->redirect_uri, g_free);
  g_clear_pointer (&self->url, g_free);
  g_clear_pointer (&self->client, kp_oauth_client_free);
  g_clear_object (&self->session);
  G_OBJECT_CLASS (kp_oauth_login_parent_class)->finalize (object);
}

static void
kp_oauth_login_class_init (KpOAuthLoginClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = kp_oauth_login_dispose;
  object_class->finalize = kp_oauth_login_finalize;
}

static void
kp_oauth_login_init (KpOAuthLogin *self)
{
  self->timeout_s = KP_OAUTH_LOGIN_TIMEOUT_S;
  self->open_browser = TRUE;
}

static char *
base64url (const guint8 *data,
           gsize         len)
{
  char *text = g_base64_encode (data, len);
  char *p;

  for (p = text; *p; p++)
    {
      if (*p == '+')
        *p = '-';
      else if (*p == '/')
        *p = '_';
      else if (*p == '=')
        {
          *p = '\0';
          break;
        }
    }
  return text;
}

static char *
random_text (gsize n_bytes)
{
  guint8 bytes[64];
  char *text;

  g_assert (n_bytes <= sizeof bytes);
  if (getrandom (bytes, n_bytes, 0) != (gssize)n_bytes)
    g_error ("no random bytes: %s", g_strerror (errno));
  text = base64url (bytes, n_bytes);
  explicit_bzero (bytes, sizeof bytes);
  return text;
}

/**
 * kp_oauth_pkce_challenge:
 *
 * Returns: (transfer full): the S256 challenge of a PKCE verifier
 */
char *
kp_oauth_pkce_challenge (const char *verifier)
{
  g_autoptr(GChecksum) checksum = g_checksum_new (G_CHECKSUM_SHA256);
  guint8 digest[32];
  gsize len = sizeof digest;

  g_return_val_if_fail (verifier != NULL, NULL);

  g_checksum_update (checksum, (const guchar *)verifier, strlen (verifier));
  g_checksum_get_digest (checksum, digest, &len);
  return base64url (digest, len);
}

/**
 * kp_oauth_login_new:
 * @client: the OAuth application (copied); it must have an auth_url
 * @session: where the code is exchanged
 */
KpOAuthLogin *
kp_oauth_login_new (const KpOAuthClient *client,
                    SoupSession         *session)
{
  KpOAuthLogin *self;

  g_return_val_if_fail (client != NULL, NULL);
  g_return_val_if_fail (SOUP_IS_SESSION (session), NULL);

  self = g_object_new (KP_TYPE_OAUTH_LOGIN, NULL);
  self->client = kp_oauth_client_copy (client);
  self->session = g_object_ref (session);
  return self;
}

void
kp_oauth_login_set_timeout (KpOAuthLogin *self,
                            guint         timeout_s)
{
  g_return_if_fail (KP_IS_OAUTH_LOGIN (self));
  self->timeout_s = MAX (timeout_s, 1);
}

void
kp_oauth_login_set_open_browser (KpOAuthLogin *self,
                                 gboolean      open_browser)
{
  g_return_if_fail (KP_IS_OAUTH_LOGIN (self));
  self->open_browser = open_browser;
}

static void
reply_page (SoupServerMessage *msg,
            guint              status,
            const char        *page)
{
  soup_server_message_set_status (msg, status, NULL);
  soup_server_message_set_response (msg, "text/html; charset=utf-8", SOUP_MEMORY_COPY,
                                    page, strlen (page));
}

static void
finish (KpOAuthLogin *self,
        GError       *error,
        KpOAuthGrant *grant)
{
  g_autoptr(GTask) task = g_steal_pointer (&self->task);

  stop (self);
  if (task == NULL)
    {
      g_clear_error (&error);
      kp_oauth_grant_free (grant);
      return;
    }
  g_cancellable_disconnect (g_task_get_cancellable (task), self->cancelled_id);
  self->cancelled_id = 0;
  if (error != NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, grant, (GDestroyNotify)kp_oauth_grant_free);
}

static void
on_code_exchanged (GObject      *object,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  g_autoptr(KpOAuthLogin) self = user_data;
  GError *error = NULL;
  KpOAuthGrant *grant;

  grant = kp_oauth_client_request_token_finish (result, &error);
  if (grant != NULL && grant->refresh_token == NULL)
    {
      kp_oauth_grant_free (grant);
      grant = NULL;
      error = g_error_new (KP_OAUTH_ERROR, KP_OAUTH_ERROR_INVALID,
                           "The sign-in gave no refresh token, so Keypool could not keep it.");
    }
  finish (self, error, grant);
}

static void
on_callback (SoupServer        *server,
             SoupServerMessage *msg,
             const char        *path,
             GHashTable        *query,
             gpointer           user_data)
{
  KpOAuthLogin *self = user_data;
  const char *code = query ? g_hash_table_lookup (query, "code") : NULL;
  const char *state = query ? g_hash_table_lookup (query, "state") : NULL;
  const char *refused = query ? g_hash_table_lookup (query, "error") : NULL;
  g_autoptr(GHashTable) form = NULL;

  if (soup_server_message_get_method (msg) != SOUP_METHOD_GET ||
      g_strcmp0 (path, self->client->redirect_path) != 0)
    {
      soup_server_message_set_status (msg, 404, NULL);
      return;
    }
  /* Only the browser this sign-in sent comes back with its state. */
  if (self->task == NULL || self->got_code || state == NULL || !g_str_equal (state, self->state))
    {
      g_autofree char *page = g_strdup_printf (PAGE_FAILED, "this is not the sign-in Keypool "
                                               "is waiting for.");

      reply_page (msg, 400, page);
      return;
    }
  if (refused != NULL || code == NULL || *code == '\0' || strlen (code) > 4096)
    {
      g_autofree char *page = g_strdup_printf (PAGE_FAILED, "it was cancelled or refused.");
      g_autofree char *reason = g_markup_escape_text (refused ? refused : "no code", 100);

      reply_page (msg, 400, page);
      finish (self, g_error_new (KP_OAUTH_ERROR, KP_OAUTH_ERROR_REFUSED,
                                 "The sign-in was refused in the browser (%s).", reason), NULL);
      return;
    }

  self->got_code = TRUE;
  reply_page (msg, 200, PAGE_DONE);
  g_clear_handle_id (&self->timer, g_source_remove);

  form = g_hash_table_new (g_str_hash, g_str_equal);
  g_hash_table_insert (form, (gpointer)"grant_type", (gpointer)"authorization_code");
  g_hash_table_insert (form, (gpointer)"code", (gpointer)code);
  g_hash_table_insert (form, (gpointer)"code_verifier", self->verifier);
  g_hash_table_insert (form, (gpointer)"redirect_uri", self->redirect_uri);
  kp_oauth_client_request_token_async (self->client, self->session, form,
                                       g_task_get_cancellable (self->task), on_code_exchanged,
                                       g_object_ref (self));
}

/**
 * kp_oauth_login_listen:
 *
 * Starts the loopback server and makes the sign-in URL.
 */
gboolean
kp_oauth_login_listen (KpOAuthLogin  *self,
                       GError       **error)
{
  g_autoptr(GInetAddress) loopback = NULL;
  g_autoptr(GSocketAddress) address = NULL;
  g_autoptr(GSList) uris = NULL;
  g_autofree char *challenge = NULL;
  g_autofree char *scope = NULL;
  g_autoptr(GString) query = g_string_new (NULL);
  guint port = 0;

  g_return_val_if_fail (KP_IS_OAUTH_LOGIN (self), FALSE);
  g_return_val_if_fail (self->server == NULL, FALSE);

  if (self->client->auth_url == NULL)
    {
      g_set_error (error, KP_OAUTH_ERROR, KP_OAUTH_ERROR_INVALID,
                   "This provider has no browser sign-in.");
      return FALSE;
    }

  self->server = soup_server_new ("server-header", NULL, NULL);
  soup_server_add_handler (self->server, NULL, on_callback, self, NULL);
  loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  address = g_inet_socket_address_new (loopback, self->client->redirect_port);
  if (!soup_server_listen (self->server, address, 0, error))
    {
      g_prefix_error (error, "Cannot wait for the browser on 127.0.0.1:%u: ",
                      self->client->redirect_port);
      g_clear_object (&self->server);
      return FALSE;
    }
  uris = soup_server_get_uris (self->server);
  if (uris != NULL)
    port = (guint)g_uri_get_port (uris->data);
  g_slist_free_full (g_steal_pointer (&uris), (GDestroyNotify)g_uri_unref);

  kp_secret_wipe (&self->verifier);
  self->verifier = random_text (32);
  g_free (self->state);
  self->state = random_text (16);
  challenge = kp_oauth_pkce_challenge (self->verifier);
  g_free (self->redirect_uri);
  self->redirect_uri = g_strdup_printf ("http://127.0.0.1:%u%s", port, self->client->redirect_path);
  scope = g_strjoinv (" ", self->client->scopes);

#define ADD(name, value) \
  G_STMT_START { \
    g_autofree char *escaped = g_uri_escape_string ((value), NULL, FALSE); \
    g_string_append_printf (query, "%s%s=%s", query->len ? "&" : "", (name), escaped); \
  } G_STMT_END
  ADD ("client_id", self->client->client_id);
  ADD ("redirect_uri", self->redirect_uri);
  ADD ("response_type", "code");
  ADD ("scope", scope);
  ADD ("code_challenge", challenge);
  ADD ("code_challenge_method", "S256");
  ADD ("state", self->state);
  for (guint i = 0; self->client->auth_params[i] && self->client->auth_params[i + 1]; i += 2)
    ADD (self->client->auth_params[i], self->client->auth_params[i + 1]);
#undef ADD

  g_free (self->url);
  self->url = g_strdup_printf ("%s%s%s", self->client->auth_url,
                               strchr (self->client->auth_url, '?') ? "&" : "?", query->str);
  return TRUE;
}

/**
 * kp_oauth_login_get_url:
 *
 * Returns: (nullable): the sign-in URL, once listening
 */
const char *
kp_oauth_login_get_url (KpOAuthLogin *self)
{
  g_return_val_if_fail (KP_IS_OAUTH_LOGIN (self), NULL);
  return self->url;
}

static gboolean
on_timeout (gpointer user_data)
{
  KpOAuthLogin *self = user_data;

  self->timer = 0;
  finish (self, g_error_new (KP_OAUTH_ERROR, KP_OAUTH_ERROR_CANCELLED,
                             "Nobody signed in within %u s.", self->timeout_s), NULL);
  return G_SOURCE_REMOVE;
}

static gboolean
on_cancelled_idle (gpointer user_data)
{
  KpOAuthLogin *self = user_data;

  if (self->task != NULL && !self->got_code)
    finish (self, g_error_new (KP_OAUTH_ERROR, KP_OAUTH_ERROR_CANCELLED,
                               "The sign-in was cancelled."), NULL);
  return G_SOURCE_REMOVE;
}

static void
on_cancelled (GCancellable *cancellable,
              KpOAuthLogin *self)
{
  g_idle_add_full (G_PRIORITY_DEFAULT, on_cancelled_idle, g_object_ref (self), g_object_unref);
}

/**
 * kp_oauth_login_run_async:
 *
 * Listens if not yet, opens the sign-in URL in the browser (unless told not
 * to), and waits for the browser to come back, at most the timeout.
 */
void
kp_oauth_login_run_async (KpOAuthLogin        *self,
                          GCancellable        *cancellable,
                          GAsyncReadyCallback  callback,
                          gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  g_autoptr(GError) error = NULL;

  g_return_if_fail (KP_IS_OAUTH_LOGIN (self));
  g_return_if_fail (self->task == NULL);

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, kp_oauth_login_run_async);
  /* A cancelled sign-in says so in Keypool's words. */
  g_task_set_check_cancellable (task, FALSE);

  if (self->server == NULL && !kp_oauth_login_listen (self, &error))
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }

  self->task = g_steal_pointer (&task);
  self->got_code = FALSE;
  self->timer = g_timeout_add_seconds (self->timeout_s, on_timeout, self);
  if (cancellable != NULL)
    self->cancelled_id = g_cancellable_connect (cancellable, G_CALLBACK (on_cancelled), self, NULL);

  if (self->open_browser &&
      !g_app_info_launch_default_for_uri (self->url, NULL, &error))
    g_debug ("No browser opened for the sign-in: %s", error->message);
}

/**
 * kp_oauth_login_run_finish:
 *
 * Returns: (transfer full): what the sign-in granted (with a refresh token),
 *   or %NULL with @error set
 */
KpOAuthGrant *
kp_oauth_login_run_finish (KpOAuthLogin  *self,
                           GAsyncResult  *result,
                           GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}
