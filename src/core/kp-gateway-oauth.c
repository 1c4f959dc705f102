/* kp-gateway-oauth.c: accounts signed in with OAuth
 *
 * Part of KpGateway. A provider whose file has an "oauth" object takes OAuth
 * accounts instead of API keys: the keyring keeps each account's refresh
 * token as it keeps a key, and the credential's auth (a KpOAuthToken) turns
 * it into access tokens. Accounts come in from a CLI's saved login or from
 * a sign-in in the browser.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include <string.h>

#include "kp-gateway-private.h"
#include "kp-http.h"
#include "auth/kp-cli-creds.h"
#include "auth/kp-kiro-token.h"
#include "auth/kp-oauth-login.h"
#include "auth/kp-oauth-token.h"
#include "kp-code-assist.h"

/* The credential whose auth @auth is, or NULL (removed meanwhile). */
KpCredential *
kp_gateway_credential_of_auth (KpGateway *self,
                               KpAuth    *auth)
{
  GPtrArray *credentials = kp_gateway_get_credentials (self);

  for (guint i = 0; i < credentials->len; i++)
    {
      KpCredential *credential = g_ptr_array_index (credentials, i);

      if (kp_credential_get_auth (credential) == auth)
        return credential;
    }
  return NULL;
}

/* The refresh token is dead (an OAuth token's or a Kiro login's ::refused):
 * the account is invalid until signed in again, with @message, scrubbed.
 */
void
kp_gateway_auth_refused (KpAuth     *auth,
                         const char *message,
                         KpGateway  *self)
{
  KpCredential *credential = kp_gateway_credential_of_auth (self, auth);
  g_autofree char *clean = NULL;

  if (credential == NULL)
    return;
  clean = kp_secret_scrub (message, kp_credential_get_secret (credential));
  kp_credential_set_state (credential, KP_CREDENTIAL_INVALID, 0, clean);
  kp_ledger_save_credential_state (kp_gateway_get_ledger (self), kp_credential_get_id (credential),
                                   "invalid", 0, clean);
  kp_gateway_emit_changed (self);
}

/* Setting an account up (Code Assist: its project) ------------------------ */

/* A set-up account's tier and project (no secret: a Google Cloud project
 * id) are kept in the ledger's settings, so that a restart does not
 * discover them again: "code-assist-account.{key id}" = "{tier}\t{project}".
 */
#define ACCOUNT_SETTING "code-assist-account.%" G_GINT64_FORMAT
#define ACCOUNT_TEXT_MAX 1024

static void
save_account (KpGateway    *self,
              KpCredential *credential,
              const char   *tier,
              const char   *project)
{
  g_autofree char *key = g_strdup_printf (ACCOUNT_SETTING, kp_credential_get_id (credential));
  g_autofree char *value = g_strconcat (tier ? tier : "", "\t", project ? project : "", NULL);

  kp_ledger_set_setting_async (kp_gateway_get_ledger (self), key, value, NULL, NULL);
}

/* What save_account() kept, onto the credential; FALSE when nothing (or
 * nothing readable) was.
 */
static gboolean
load_account (KpGateway    *self,
              KpCredential *credential)
{
  g_autofree char *key = g_strdup_printf (ACCOUNT_SETTING, kp_credential_get_id (credential));
  g_autofree char *value = kp_ledger_get_setting (kp_gateway_get_ledger (self), key);
  g_auto(GStrv) fields = NULL;

  if (value == NULL || strlen (value) > ACCOUNT_TEXT_MAX || !g_utf8_validate (value, -1, NULL))
    return FALSE;
  fields = g_strsplit (value, "\t", 3);
  if (g_strv_length (fields) != 2 || *fields[0] == '\0')
    return FALSE;
  kp_credential_set_meta (credential, "tier", fields[0]);
  kp_credential_set_meta (credential, "project", *fields[1] != '\0' ? fields[1] : NULL);
  return TRUE;
}

/* The last quota read of an account is kept too, with when it was read,
 * so that a Keypool started for one command (`keypool providers` with no
 * Keypool running) shows it at once: "code-assist-quota.{key id}" =
 * "{unix time}\t{text}". It is shown for an hour after it was read; a
 * running Keypool reads it again with each new access token.
 */
#define QUOTA_SETTING "code-assist-quota.%" G_GINT64_FORMAT
#define QUOTA_FRESH_S 3600

static void
save_quota (KpGateway    *self,
            KpCredential *credential,
            const char   *text)
{
  g_autofree char *key = g_strdup_printf (QUOTA_SETTING, kp_credential_get_id (credential));
  g_autofree char *value = g_strdup_printf ("%" G_GINT64_FORMAT "\t%s",
                                            g_get_real_time () / G_USEC_PER_SEC, text);

  kp_ledger_set_setting_async (kp_gateway_get_ledger (self), key, value, NULL, NULL);
}

static void
load_quota (KpGateway    *self,
            KpCredential *credential)
{
  g_autofree char *key = g_strdup_printf (QUOTA_SETTING, kp_credential_get_id (credential));
  g_autofree char *value = kp_ledger_get_setting (kp_gateway_get_ledger (self), key);
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;
  const char *tab;
  gint64 read_at;
  char *end = NULL;

  if (value == NULL || strlen (value) > ACCOUNT_TEXT_MAX || !g_utf8_validate (value, -1, NULL) ||
      (tab = strchr (value, '\t')) == NULL || tab[1] == '\0')
    return;
  read_at = g_ascii_strtoll (value, &end, 10);
  if (end != tab || read_at > now + 60 || now - read_at > QUOTA_FRESH_S)
    return;
  kp_credential_set_meta (credential, "quota", tab + 1);
}

/* Where the account's API is, when its login said (Qwen's resource_url):
 * kept in the ledger's settings (an address, no secret) so that a restart
 * sends the first request there, not to the provider's default, before the
 * next refresh says it again: "oauth-resource-url.{key id}" = the URL.
 * The credential's "resource_url" is what was last kept.
 */
#define RESOURCE_SETTING "oauth-resource-url.%" G_GINT64_FORMAT

static void
save_resource_url (KpGateway    *self,
                   KpCredential *credential)
{
  KpAuth *auth = kp_credential_get_auth (credential);
  const char *url = KP_IS_OAUTH_TOKEN (auth)
                      ? kp_oauth_token_get_resource_url (KP_OAUTH_TOKEN (auth)) : NULL;
  g_autofree char *key = NULL;

  if (url == NULL || g_strcmp0 (url, kp_credential_get_meta (credential, "resource_url")) == 0)
    return;
  key = g_strdup_printf (RESOURCE_SETTING, kp_credential_get_id (credential));
  kp_credential_set_meta (credential, "resource_url", url);
  kp_ledger_set_setting_async (kp_gateway_get_ledger (self), key, url, NULL, NULL);
}

static void
load_resource_url (KpGateway    *self,
                   KpCredential *credential,
                   KpOAuthToken *token)
{
  g_autofree char *key = g_strdup_printf (RESOURCE_SETTING, kp_credential_get_id (credential));
  g_autofree char *value = kp_ledger_get_setting (kp_gateway_get_ledger (self), key);

  if (value == NULL || strlen (value) > KP_OAUTH_RESOURCE_URL_MAX ||
      !g_utf8_validate (value, -1, NULL))
    return;
  /* Checked again as a login's would be: anything but an https host is ignored. */
  kp_oauth_token_set_resource_url (token, value);
  if (kp_oauth_token_get_resource_url (token) != NULL)
    kp_credential_set_meta (credential, "resource_url", value);
}

typedef struct
{
  GWeakRef      gateway;
  KpCredential *credential;
  char         *base_url;
  char         *project;
} SetUp;

static void
set_up_free (SetUp *set_up)
{
  g_weak_ref_clear (&set_up->gateway);
  g_clear_object (&set_up->credential);
  g_free (set_up->base_url);
  g_free (set_up->project);
  g_free (set_up);
}

static void
on_quota_read (GObject      *object,
               GAsyncResult *result,
               gpointer      user_data)
{
  SetUp *set_up = user_data;
  g_autoptr(KpGateway) self = g_weak_ref_get (&set_up->gateway);
  g_autoptr(GError) error = NULL;
  g_autofree KpCodeAssistQuota *quota = kp_code_assist_quota_finish (result, &error);
  g_autofree char *text = NULL;

  if (self != NULL && quota != NULL && (text = kp_code_assist_quota_describe (quota)) != NULL)
    {
      kp_credential_set_meta (set_up->credential, "quota", text);
      save_quota (self, set_up->credential, text);
      kp_gateway_emit_changed (self);
    }
  else if (error != NULL)
    g_debug ("No quota for key %" G_GINT64_FORMAT ": %s",
             kp_credential_get_id (set_up->credential), error->message);
  set_up_free (set_up);
}

/* What is left of a subscription's quota, for the window and the list. */
static void
read_quota (KpGateway    *self,
            KpCredential *credential,
            SetUp        *set_up)
{
  KpAuth *auth = kp_credential_get_auth (credential);
  const char *token = KP_IS_OAUTH_TOKEN (auth) ? kp_auth_token_peek (KP_AUTH_TOKEN (auth)) : NULL;

  if (token == NULL)
    {
      set_up_free (set_up);
      return;
    }
  kp_code_assist_quota_async (kp_gateway_get_auth_session (self), set_up->base_url, token,
                              kp_credential_get_meta (credential, "project"), NULL, on_quota_read,
                              set_up);
}

static void
on_set_up (GObject      *object,
           GAsyncResult *result,
           gpointer      user_data)
{
  SetUp *set_up = user_data;
  g_autoptr(KpGateway) self = g_weak_ref_get (&set_up->gateway);
  g_autoptr(GError) error = NULL;
  g_autoptr(KpCodeAssistAccount) account = kp_code_assist_setup_finish (result, &error);
  KpCredential *credential = set_up->credential;
  KpAuth *auth = kp_credential_get_auth (credential);

  kp_credential_set_meta (credential, "setup", NULL);
  if (self == NULL || !KP_IS_OAUTH_TOKEN (auth))
    {
      set_up_free (set_up);
      return;
    }

  if (account == NULL)
    {
      g_autofree char *clean = kp_secret_scrub (error->message, kp_credential_get_secret (credential));

      g_debug ("Key %" G_GINT64_FORMAT " not set up: %s", kp_credential_get_id (credential), clean);
      if (g_error_matches (error, KP_CODE_ASSIST_ERROR, KP_CODE_ASSIST_ERROR_VALIDATION))
        {
          /* Google wants its owner to verify the account: it waits for them. */
          g_autofree char *url = kp_code_assist_setup_dup_validation_url (result);
          g_autofree char *clean_url = url ? kp_secret_scrub (url, kp_credential_get_secret (credential))
                                           : NULL;

          kp_credential_set_needs_user (credential, clean_url, clean);
          kp_ledger_save_credential_needs_user (kp_gateway_get_ledger (self),
                                                kp_credential_get_id (credential), clean_url, clean);
        }
      else if (g_error_matches (error, KP_CODE_ASSIST_ERROR, KP_CODE_ASSIST_ERROR_INELIGIBLE))
        {
          kp_credential_set_state (credential, KP_CREDENTIAL_INVALID, 0, clean);
          kp_ledger_save_credential_state (kp_gateway_get_ledger (self),
                                           kp_credential_get_id (credential), "invalid", 0, clean);
        }
      /* Otherwise tried again at the next refresh. */
      kp_gateway_emit_changed (self);
      set_up_free (set_up);
      return;
    }

  kp_credential_set_meta (credential, "tier", account->tier);
  kp_credential_set_meta (credential, "project", account->project);
  save_account (self, credential, account->tier, account->project);
  kp_auth_token_set_held (KP_AUTH_TOKEN (auth), FALSE);
  kp_gateway_emit_changed (self);
  read_quota (self, credential, set_up);
}

/* An account that needs setting up is held until it is: a request sent
 * without its project would fail.
 */
static void
maybe_set_up (KpGateway    *self,
              KpCredential *credential)
{
  KpAuth *auth = kp_credential_get_auth (credential);
  KpOAuthToken *token;
  const KpOAuthClient *client;
  KpProvider *provider;
  const char *access_token;
  SetUp *set_up;

  if (auth == NULL || !KP_IS_OAUTH_TOKEN (auth))
    return;
  token = KP_OAUTH_TOKEN (auth);
  client = kp_auth_token_get_client (KP_AUTH_TOKEN (token));
  provider = kp_catalog_get_provider (kp_gateway_get_catalog (self),
                                      kp_credential_get_provider_id (credential));
  if (client->account_setup == NULL || provider == NULL)
    return;

  set_up = g_new0 (SetUp, 1);
  g_weak_ref_init (&set_up->gateway, self);
  set_up->credential = g_object_ref (credential);
  set_up->base_url = g_strdup (kp_provider_get_base_url (provider));

  if (kp_credential_get_meta (credential, "tier") != NULL || load_account (self, credential))
    {
      /* Set up already (before a restart, too): the quota is read again with each new token. */
      kp_auth_token_set_held (KP_AUTH_TOKEN (token), FALSE);
      read_quota (self, credential, set_up);
      return;
    }

  kp_auth_token_set_held (KP_AUTH_TOKEN (token), TRUE);
  access_token = kp_auth_token_peek (KP_AUTH_TOKEN (token));
  if (access_token == NULL || kp_credential_get_meta (credential, "setup") != NULL)
    {
      set_up_free (set_up);
      return;
    }
  kp_credential_set_meta (credential, "setup", "running");
  kp_code_assist_setup_async (kp_gateway_get_auth_session (self), set_up->base_url, access_token,
                              0, NULL, on_set_up, set_up);
}

static void
on_refreshed (KpOAuthToken *token,
              KpGateway    *self)
{
  KpCredential *credential = kp_gateway_credential_of_auth (self, KP_AUTH (token));

  if (credential != NULL)
    {
      save_resource_url (self, credential);
      maybe_set_up (self, credential);
    }
  kp_gateway_emit_changed (self);
}

/**
 * kp_gateway_attach_auth:
 *
 * Gives a credential of an OAuth provider its OAuth auth; a key of any other
 * provider stays a static key.
 */
void
kp_gateway_attach_auth (KpGateway    *self,
                        KpCredential *credential)
{
  KpProvider *provider;
  const KpOAuthClient *client;
  g_autoptr(KpAuth) auth = NULL;

  g_return_if_fail (KP_IS_GATEWAY (self));
  g_return_if_fail (KP_IS_CREDENTIAL (credential));

  provider = kp_catalog_get_provider (kp_gateway_get_catalog (self),
                                      kp_credential_get_provider_id (credential));
  client = provider ? kp_provider_get_oauth (provider) : NULL;
  if (client == NULL || kp_credential_is_from_env (credential))
    return;
  if (client->flow == KP_OAUTH_FLOW_KIRO)
    {
      kp_gateway_attach_kiro (self, credential, client);
      return;
    }

  auth = kp_oauth_token_new (client, kp_gateway_get_auth_session (self));
  g_signal_connect_object (auth, "refused", G_CALLBACK (kp_gateway_auth_refused), self, 0);
  g_signal_connect_object (auth, "refreshed", G_CALLBACK (on_refreshed), self, 0);
  kp_credential_set_auth (credential, auth);
  load_resource_url (self, credential, KP_OAUTH_TOKEN (auth));
  /* Held until set up, if it must be; the last quota read is known at once. */
  if (client->account_setup != NULL)
    {
      kp_auth_token_set_held (KP_AUTH_TOKEN (auth), TRUE);
      load_quota (self, credential);
    }
}

/* The user says an account may be tried again (it waited for them, or was
 * refused): one that is not set up yet is set up again now, not at the next
 * refresh.
 */
void
kp_gateway_retry_account (KpGateway    *self,
                          KpCredential *credential)
{
  g_return_if_fail (KP_IS_GATEWAY (self));
  g_return_if_fail (KP_IS_CREDENTIAL (credential));

  if (kp_credential_get_meta (credential, "tier") == NULL)
    maybe_set_up (self, credential);
}

/* Cancels every refresh under way: the gateway is going. */
void
kp_gateway_stop_auth (KpGateway *self)
{
  GPtrArray *credentials = kp_gateway_get_credentials (self);

  for (guint i = 0; i < credentials->len; i++)
    {
      KpAuth *auth = kp_credential_get_auth (g_ptr_array_index (credentials, i));

      if (auth != NULL && KP_IS_AUTH_TOKEN (auth))
        kp_auth_token_stop (KP_AUTH_TOKEN (auth));
    }
}

/**
 * kp_gateway_oauth_adjust_failure:
 *
 * A quota error of an account whose sign-in has a daily quota (Qwen Code's
 * free tier) lasts until the provider's next day, not the default hour.
 * Qwen Code's provider file gives 480 minutes: the next 00:00 in Beijing
 * (UTC+8), Alibaba's own day. §5 of the protocol notes says only "the next
 * day"; which midnight the free quota resets at is UNCONFIRMED.
 */
void
kp_gateway_oauth_adjust_failure (KpCredential *credential,
                                 KpFailure    *failure)
{
  KpAuth *auth = kp_credential_get_auth (credential);
  const KpOAuthClient *client;

  if (failure->klass != KP_FAILURE_QUOTA || failure->quota_reset != KP_QUOTA_RESET_UNKNOWN ||
      auth == NULL || !KP_IS_OAUTH_TOKEN (auth))
    return;
  client = kp_auth_token_get_client (KP_AUTH_TOKEN (auth));
  if (client->daily_quota_utc_offset_min == G_MININT)
    return;
  failure->quota_reset = KP_QUOTA_RESET_DAY;
  failure->reset_utc_offset_min = client->daily_quota_utc_offset_min;
}

/* Short names the commands take for sign-in providers: `keypool login qwen`. */
static const char *
resolve_alias (KpGateway  *self,
               const char *provider_id)
{
  static const struct { const char *alias; const char *id; } aliases[] = {
    { "qwen", "qwen-code" },
  };

  if (provider_id == NULL ||
      kp_catalog_get_provider (kp_gateway_get_catalog (self), provider_id) != NULL)
    return provider_id;
  for (guint i = 0; i < G_N_ELEMENTS (aliases); i++)
    if (g_str_equal (provider_id, aliases[i].alias))
      return aliases[i].id;
  return provider_id;
}

static KpProvider *
oauth_provider (KpGateway   *self,
                const char  *provider_id,
                GError     **error)
{
  KpProvider *provider = kp_catalog_get_provider (kp_gateway_get_catalog (self), provider_id);

  if (provider == NULL)
    {
      g_set_error (error, KP_GATEWAY_ERROR, KP_GATEWAY_ERROR_NOT_FOUND,
                   "There is no provider “%s”; “keypool providers” lists them.", provider_id);
      return NULL;
    }
  if (kp_provider_get_oauth (provider) == NULL)
    {
      g_set_error (error, KP_GATEWAY_ERROR, KP_GATEWAY_ERROR_INVALID,
                   "%s takes API keys, not sign-ins: use “keypool keys add %s”.",
                   kp_provider_get_name (provider), provider_id);
      return NULL;
    }
  return provider;
}

/* Add an account ------------------------------------------------------------ */

typedef struct
{
  char   *provider_id;
  char   *label;
  char   *refresh_token;
  char   *access_token;
  gint64  expires_at;
  char   *resource_url;
} AddAccount;

static void
add_account_free (AddAccount *add)
{
  g_free (add->provider_id);
  g_free (add->label);
  kp_secret_wipe (&add->refresh_token);
  kp_secret_wipe (&add->access_token);
  g_free (add->resource_url);
  g_free (add);
}

static void
on_account_stored (GObject      *object,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  AddAccount *add = g_task_get_task_data (task);
  g_autoptr(GError) error = NULL;
  g_autoptr(KpCredential) credential = NULL;
  KpAuth *auth;

  credential = kp_gateway_add_key_finish (KP_GATEWAY (object), result, NULL, &error);
  if (credential == NULL)
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }

  auth = kp_credential_get_auth (credential);
  if (auth != NULL && KP_IS_OAUTH_TOKEN (auth))
    {
      if (add->resource_url != NULL)
        kp_oauth_token_set_resource_url (KP_OAUTH_TOKEN (auth), add->resource_url);
      save_resource_url (KP_GATEWAY (object), credential);
      if (add->access_token != NULL)
        kp_auth_token_set_access_token (KP_AUTH_TOKEN (auth), add->access_token,
                                         add->expires_at);
      /* Ready before the first request asks. */
      kp_auth_get_token (auth);
      maybe_set_up (KP_GATEWAY (object), credential);
    }
  g_task_return_pointer (task, g_steal_pointer (&credential), g_object_unref);
}

static KpCredential *
find_account (KpGateway  *self,
              const char *provider_id,
              const char *refresh_token)
{
  GPtrArray *credentials = kp_gateway_get_credentials (self);

  for (guint i = 0; i < credentials->len; i++)
    {
      KpCredential *credential = g_ptr_array_index (credentials, i);
      const char *secret = kp_credential_get_secret (credential);

      if (g_str_equal (kp_credential_get_provider_id (credential), provider_id) &&
          secret != NULL && kp_http_secret_equal (secret, refresh_token))
        return credential;
    }
  return NULL;
}

/**
 * kp_gateway_add_account_full_async:
 * @resource_url: (nullable): where the login says the account's API is (Qwen)
 *
 * kp_gateway_add_account_async(), and where the account's API is.
 */
void
kp_gateway_add_account_full_async (KpGateway           *self,
                                   const char          *provider_id,
                                   const char          *label,
                                   const char          *refresh_token,
                                   const char          *access_token,
                                   gint64               expires_at,
                                   const char          *resource_url,
                                   GCancellable        *cancellable,
                                   GAsyncReadyCallback  callback,
                                   gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  g_autoptr(GError) error = NULL;
  KpCredential *existing;
  AddAccount *add;

  g_return_if_fail (KP_IS_GATEWAY (self));
  g_return_if_fail (provider_id != NULL && refresh_token != NULL);

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, kp_gateway_add_account_async);

  if (oauth_provider (self, provider_id, &error) == NULL)
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  existing = find_account (self, provider_id, refresh_token);
  if (existing != NULL)
    {
      g_task_return_new_error (task, KP_GATEWAY_ERROR, KP_GATEWAY_ERROR_INVALID,
                               "That account is already key %" G_GINT64_FORMAT
                               "; “keypool keys reset %" G_GINT64_FORMAT "” tries it again.",
                               kp_credential_get_id (existing), kp_credential_get_id (existing));
      return;
    }

  add = g_new0 (AddAccount, 1);
  add->provider_id = g_strdup (provider_id);
  add->label = g_strdup (label ? label : "");
  add->refresh_token = g_strdup (refresh_token);
  add->access_token = g_strdup (access_token);
  add->expires_at = expires_at;
  add->resource_url = g_strdup (resource_url);
  g_task_set_task_data (task, add, (GDestroyNotify)add_account_free);

  /* The refresh at once checks the account better than any key check. */
  kp_gateway_add_key_async (self, provider_id, add->label, 1.0, refresh_token, FALSE,
                            cancellable, on_account_stored, g_steal_pointer (&task));
}

/**
 * kp_gateway_add_account_async:
 * @provider_id: a provider with an "oauth" object
 * @label: a name for the account
 * @refresh_token: the account's refresh token (kept in the keyring)
 * @access_token: (nullable): a valid access token, if one is known
 * @expires_at: when @access_token expires, unix s
 *
 * Saves an OAuth account like a key: routable at once.
 */
void
kp_gateway_add_account_async (KpGateway           *self,
                              const char          *provider_id,
                              const char          *label,
                              const char          *refresh_token,
                              const char          *access_token,
                              gint64               expires_at,
                              GCancellable        *cancellable,
                              GAsyncReadyCallback  callback,
                              gpointer             user_data)
{
  kp_gateway_add_account_full_async (self, provider_id, label, refresh_token, access_token,
                                     expires_at, NULL, cancellable, callback, user_data);
}

/**
 * kp_gateway_add_account_finish:
 *
 * Returns: (transfer full): the new account, or %NULL with @error set
 */
KpCredential *
kp_gateway_add_account_finish (KpGateway     *self,
                               GAsyncResult  *result,
                               GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

/* Import a CLI's login ------------------------------------------------------- */

/**
 * kp_gateway_dup_login_file:
 *
 * Returns: (transfer full) (nullable): the full path of the CLI login file
 *   the provider's accounts can be imported from, if it exists
 */
char *
kp_gateway_dup_login_file (KpGateway  *self,
                           const char *provider_id)
{
  KpProvider *provider;
  const KpOAuthClient *client;

  g_return_val_if_fail (KP_IS_GATEWAY (self), NULL);

  provider_id = resolve_alias (self, provider_id);
  provider = kp_catalog_get_provider (kp_gateway_get_catalog (self), provider_id);
  client = provider ? kp_provider_get_oauth (provider) : NULL;
  if (client != NULL && client->flow == KP_OAUTH_FLOW_KIRO)
    return kp_gateway_dup_kiro_source (client);
  if (client == NULL || client->import_file == NULL || !kp_cli_creds_exists (client->import_file))
    return NULL;
  return kp_cli_creds_expand_path (client->import_file);
}

/**
 * kp_gateway_import_login_async:
 *
 * Adds the account a CLI is signed in with (for gemini-cli,
 * ~/.gemini/oauth_creds.json). The file is only read.
 */
void
kp_gateway_import_login_async (KpGateway           *self,
                               const char          *provider_id,
                               const char          *label,
                               GCancellable        *cancellable,
                               GAsyncReadyCallback  callback,
                               gpointer             user_data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(KpCliCreds) creds = NULL;
  KpProvider *provider;
  const KpOAuthClient *client;

  g_return_if_fail (KP_IS_GATEWAY (self));
  g_return_if_fail (provider_id != NULL);

  provider_id = resolve_alias (self, provider_id);
  provider = oauth_provider (self, provider_id, &error);
  client = provider ? kp_provider_get_oauth (provider) : NULL;
  if (client != NULL && client->flow == KP_OAUTH_FLOW_KIRO)
    {
      kp_gateway_import_kiro_async (self, provider_id, client, label, NULL, cancellable, callback,
                                    user_data);
      return;
    }
  if (client != NULL && client->import_file == NULL)
    g_set_error (&error, KP_GATEWAY_ERROR, KP_GATEWAY_ERROR_INVALID,
                 "%s has no CLI login to import; use “keypool login %s”.",
                 kp_provider_get_name (provider), provider_id);
  if (error == NULL)
    {
      creds = kp_cli_creds_read (client->import_file, &error);
      if (creds == NULL)
        g_prefix_error (&error, "Nothing imported: ");
    }
  if (error != NULL)
    {
      g_task_report_error (self, callback, user_data, kp_gateway_import_login_async,
                           g_steal_pointer (&error));
      return;
    }

  kp_gateway_add_account_full_async (self, provider_id, label, creds->refresh_token,
                                     creds->access_token, creds->expires_at, creds->resource_url,
                                     cancellable, callback, user_data);
}

KpCredential *
kp_gateway_import_login_finish (KpGateway     *self,
                                GAsyncResult  *result,
                                GError       **error)
{
  g_return_val_if_fail (G_IS_TASK (result), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

/* Sign in in the browser ------------------------------------------------------ */

typedef struct
{
  char         *provider_id;
  char         *label;
  KpOAuthLogin *login;
} Login;

static void
login_free (Login *login)
{
  g_free (login->provider_id);
  g_free (login->label);
  g_clear_object (&login->login);
  g_free (login);
}

static void
on_signed_in_account_added (GObject      *object,
                            GAsyncResult *result,
                            gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  GError *error = NULL;
  KpCredential *credential;

  credential = kp_gateway_add_account_finish (KP_GATEWAY (object), result, &error);
  if (credential == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, credential, g_object_unref);
}

/**
 * kp_gateway_add_signed_in:
 * @task: (transfer full): the sign-in's task, returning the credential
 * @expires_in: how long @access_token lasts, in s; 0 = unknown
 * @cancellable: (nullable): stops the account being added
 *
 * What every sign-in ends with (in the browser, or with a device code):
 * its grant becomes an account, and @task returns it or why not.
 */
void
kp_gateway_add_signed_in (KpGateway    *self,
                          GTask        *task,
                          const char   *provider_id,
                          const char   *label,
                          const char   *refresh_token,
                          const char   *access_token,
                          gint64        expires_in,
                          const char   *resource_url,
                          GCancellable *cancellable)
{
  if (refresh_token == NULL || *refresh_token == '\0')
    {
      g_task_return_new_error (task, KP_OAUTH_ERROR, KP_OAUTH_ERROR_INVALID,
                               "Not signed in: the provider gave no refresh token.");
      g_object_unref (task);
      return;
    }
  kp_gateway_add_account_full_async (self, provider_id, label, refresh_token, access_token,
                                     expires_in > 0
                                       ? g_get_real_time () / G_USEC_PER_SEC + expires_in : 0,
                                     resource_url, cancellable, on_signed_in_account_added, task);
}

static void
on_signed_in (GObject      *object,
              GAsyncResult *result,
              gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  KpGateway *self = g_task_get_source_object (task);
  Login *login = g_task_get_task_data (task);
  g_autoptr(GError) error = NULL;
  g_autoptr(KpOAuthGrant) grant = NULL;
  GCancellable *cancellable;

  grant = kp_oauth_login_run_finish (KP_OAUTH_LOGIN (object), result, &error);
  if (grant == NULL)
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  cancellable = g_task_get_cancellable (task);
  kp_gateway_add_signed_in (self, g_steal_pointer (&task), login->provider_id, login->label,
                            grant->refresh_token, grant->access_token, grant->expires_in, NULL,
                            cancellable);
}

/**
 * kp_gateway_login_async:
 * @provider_id: a provider with an "oauth" object that has an "auth_url"
 * @label: a name for the account
 * @open_browser: open the sign-in page in the default browser
 * @timeout_s: how long to wait for the browser; 0 = the default
 * @url_out: (out) (optional): the sign-in URL, to show the user
 *
 * Signs in in the browser (PKCE, loopback redirect) and adds the account.
 * For a provider whose sign-in is a device code (Qwen Code), @url_out is set
 * to %NULL: the code and its page come with the signal #KpGateway::login-code
 * once the provider gave them (kp-gateway-device.c). Kiro's accounts are
 * imported, not signed in here.
 *
 * Returns: %FALSE with @error set if the sign-in cannot start; the callback
 *   is then not called
 */
gboolean
kp_gateway_login_async (KpGateway           *self,
                        const char          *provider_id,
                        const char          *label,
                        gboolean             open_browser,
                        guint                timeout_s,
                        char               **url_out,
                        GCancellable        *cancellable,
                        GAsyncReadyCallback  callback,
                        gpointer             user_data,
                        GError             **error)
{
  g_autoptr(GTask) task = NULL;
  KpProvider *provider;
  Login *login;

  g_return_val_if_fail (KP_IS_GATEWAY (self), FALSE);
  g_return_val_if_fail (provider_id != NULL, FALSE);

  provider_id = resolve_alias (self, provider_id);
  provider = oauth_provider (self, provider_id, error);
  if (provider == NULL)
    return FALSE;
  if (kp_gateway_get_keyring_problem (self) != NULL)
    {
      g_set_error (error, KP_GATEWAY_ERROR, KP_GATEWAY_ERROR_KEYRING,
                   "Cannot keep a sign-in: the keyring is unavailable (%s).",
                   kp_gateway_get_keyring_problem (self));
      return FALSE;
    }
  switch (kp_provider_get_oauth (provider)->flow)
    {
    case KP_OAUTH_FLOW_DEVICE:
      /* The code and its page come with the signal "login-code". */
      if (url_out != NULL)
        *url_out = NULL;
      return kp_gateway_login_device_async (self, provider, label, open_browser, timeout_s,
                                            cancellable, callback, user_data, error);
    case KP_OAUTH_FLOW_KIRO:
      g_set_error (error, KP_GATEWAY_ERROR, KP_GATEWAY_ERROR_INVALID,
                   "Sign in to Kiro itself, then “keypool keys import %s”.", provider_id);
      return FALSE;
    case KP_OAUTH_FLOW_CODE:
    default:
      break;
    }

  login = g_new0 (Login, 1);
  login->provider_id = g_strdup (provider_id);
  login->label = g_strdup (label);
  login->login = kp_oauth_login_new (kp_provider_get_oauth (provider),
                                     kp_gateway_get_auth_session (self));
  kp_oauth_login_set_open_browser (login->login, open_browser);
  if (timeout_s > 0)
    kp_oauth_login_set_timeout (login->login, timeout_s);
  if (!kp_oauth_login_listen (login->login, error))
    {
      login_free (login);
      return FALSE;
    }
  if (url_out != NULL)
    *url_out = g_strdup (kp_oauth_login_get_url (login->login));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, kp_gateway_login_async);
  g_task_set_task_data (task, login, (GDestroyNotify)login_free);
  kp_oauth_login_run_async (login->login, cancellable, on_signed_in, g_steal_pointer (&task));
  return TRUE;
}

/**
 * kp_gateway_login_finish:
 *
 * Returns: (transfer full): the new account, or %NULL with @error set
 */
KpCredential *
kp_gateway_login_finish (KpGateway     *self,
                         GAsyncResult  *result,
                         GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}
