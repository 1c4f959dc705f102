/* kp-code-assist.c: a Code Assist account's project and tier
 *
 * As Gemini CLI finds them: loadCodeAssist says the account's current tier
 * and project; an account without one is onboarded to its default tier
 * (onboardUser, a long-running operation polled until done). The free tier
 * works in a project Google manages, so none is sent for it, and none is
 * kept.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include <string.h>

#include "kp-code-assist.h"
#include "codec/kp-json-guard.h"
#include "kp-credential.h"
#include "kp-http.h"
#include "wire/kp-wire-json.h"

#define MAX_ANSWER (256 * 1024)

G_DEFINE_QUARK (kp-code-assist-error-quark, kp_code_assist_error)

typedef struct
{
  SoupSession *session;
  char        *base_url;
  char        *access_token;  /* wiped when dropped */
  guint        poll_ms;
  guint        polls;
  char        *operation;
  char        *tier;
  guint        timer;
} Setup;

static void
setup_free (Setup *setup)
{
  g_clear_handle_id (&setup->timer, g_source_remove);
  g_clear_object (&setup->session);
  g_free (setup->base_url);
  kp_secret_wipe (&setup->access_token);
  g_free (setup->operation);
  g_free (setup->tier);
  g_free (setup);
}

void
kp_code_assist_account_free (KpCodeAssistAccount *account)
{
  if (account == NULL)
    return;
  g_free (account->project);
  g_free (account->tier);
  g_free (account->validation_url);
  g_free (account);
}

static void
send (GTask               *task,
      const char          *method,
      const char          *path,
      JsonObject          *body,
      GAsyncReadyCallback  callback)
{
  Setup *setup = g_task_get_task_data (task);
  g_autofree char *url = g_strconcat (setup->base_url, path, NULL);
  g_autofree char *auth = g_strconcat ("Bearer ", setup->access_token, NULL);
  g_autoptr(SoupMessage) msg = soup_message_new (method, url);

  if (msg == NULL)
    {
      g_task_return_new_error (task, KP_CODE_ASSIST_ERROR, KP_CODE_ASSIST_ERROR_FAILED,
                               "The Code Assist address is not a valid URL.");
      g_object_unref (task);
      return;
    }
  soup_message_headers_replace (soup_message_get_request_headers (msg), "Authorization", auth);
  explicit_bzero (auth, strlen (auth));
  if (body != NULL)
    {
      g_autoptr(JsonNode) node = kp_json_object_node (json_object_ref (body));
      g_autoptr(GBytes) bytes = kp_wire_serialize (node);

      soup_message_set_request_body_from_bytes (msg, "application/json", bytes);
    }
  kp_http_read_bounded_async (setup->session, msg, MAX_ANSWER, G_PRIORITY_LOW,
                              g_task_get_cancellable (task), callback, task);
}

/* Takes @task on failure. */
static JsonNode *
read_answer (GTask        *task,
             GAsyncResult *result,
             const char   *what)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) body = NULL;
  JsonNode *root;
  SoupMessage *msg = NULL;
  const char *data;
  gsize len;

  body = kp_http_read_bounded_finish (result, &msg, &error);
  if (body == NULL)
    {
      g_task_return_new_error (task, KP_CODE_ASSIST_ERROR, KP_CODE_ASSIST_ERROR_FAILED,
                               "Code Assist did not answer %s: %s", what, error->message);
      g_object_unref (task);
      return NULL;
    }
  data = g_bytes_get_data (body, &len);
  if (!SOUP_STATUS_IS_SUCCESSFUL (soup_message_get_status (msg)))
    {
      g_autofree char *message = kp_wire_error_message (data, len, NULL, NULL);

      g_task_return_new_error (task, KP_CODE_ASSIST_ERROR, KP_CODE_ASSIST_ERROR_FAILED,
                               "Code Assist refused %s (HTTP %u%s%.200s).", what,
                               soup_message_get_status (msg), message ? ": " : "",
                               message ? message : "");
      g_object_unref (task);
      return NULL;
    }
  root = kp_json_parse (data, len, NULL);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    {
      g_clear_pointer (&root, json_node_unref);
      g_task_return_new_error (task, KP_CODE_ASSIST_ERROR, KP_CODE_ASSIST_ERROR_FAILED,
                               "Code Assist's answer to %s is not a JSON object.", what);
      g_object_unref (task);
      return NULL;
    }
  return root;
}

/* A project comes as a string or as {"id": …}. */
static const char *
project_of (JsonObject *object)
{
  JsonNode *node = object ? json_object_get_member (object, "cloudaicompanionProject") : NULL;

  if (node == NULL)
    return NULL;
  if (JSON_NODE_HOLDS_OBJECT (node))
    return kp_json_string (json_node_get_object (node), "id");
  return kp_json_node_string (node);
}

static JsonObject *
metadata (void)
{
  JsonObject *object = json_object_new ();

  json_object_set_string_member (object, "ideType", "IDE_UNSPECIFIED");
  json_object_set_string_member (object, "platform", "PLATFORM_UNSPECIFIED");
  json_object_set_string_member (object, "pluginType", "GEMINI");
  return object;
}

static void
done (GTask      *task,
      const char *project)
{
  Setup *setup = g_task_get_task_data (task);
  KpCodeAssistAccount *account = g_new0 (KpCodeAssistAccount, 1);

  account->tier = g_strdup (setup->tier);
  if (g_strcmp0 (setup->tier, "free-tier") != 0 && project != NULL && *project != '\0')
    account->project = g_strndup (project, 256);
  g_task_return_pointer (task, account, (GDestroyNotify)kp_code_assist_account_free);
  g_object_unref (task);
}

static void on_operation (GObject      *object,
                          GAsyncResult *result,
                          gpointer      user_data);

static gboolean
poll_operation (gpointer user_data)
{
  GTask *task = user_data;
  Setup *setup = g_task_get_task_data (task);
  g_autofree char *path = NULL;

  setup->timer = 0;
  path = g_strconcat ("/", setup->operation, NULL);
  send (task, SOUP_METHOD_GET, path, NULL, on_operation);
  return G_SOURCE_REMOVE;
}

/* {"name", "done", "response": {"cloudaicompanionProject": {"id"}}} */
static void
on_operation (GObject      *object,
              GAsyncResult *result,
              gpointer      user_data)
{
  GTask *task = user_data;
  Setup *setup = g_task_get_task_data (task);
  g_autoptr(JsonNode) root = read_answer (task, result, "the onboarding");
  JsonObject *operation;
  gboolean finished = FALSE;

  if (root == NULL)
    return;
  operation = json_node_get_object (root);
  if (!kp_json_bool (operation, "done", &finished) || !finished)
    {
      const char *name = kp_json_string (operation, "name");

      if (name != NULL && setup->operation == NULL)
        setup->operation = g_strdup (name);
      if (setup->operation == NULL || strstr (setup->operation, "..") != NULL ||
          ++setup->polls > KP_CODE_ASSIST_MAX_POLLS)
        {
          g_task_return_new_error (task, KP_CODE_ASSIST_ERROR, KP_CODE_ASSIST_ERROR_FAILED,
                                   "Code Assist's onboarding did not finish.");
          g_object_unref (task);
          return;
        }
      setup->timer = g_timeout_add (setup->poll_ms, poll_operation, task);
      return;
    }
  done (task, project_of (kp_json_object (operation, "response")));
}

static void
on_loaded (GObject      *object,
           GAsyncResult *result,
           gpointer      user_data)
{
  GTask *task = user_data;
  Setup *setup = g_task_get_task_data (task);
  g_autoptr(JsonNode) root = read_answer (task, result, "loadCodeAssist");
  g_autoptr(JsonObject) body = NULL;
  JsonObject *answer, *current, *paid;
  JsonArray *tiers;
  const char *project;

  if (root == NULL)
    return;
  answer = json_node_get_object (root);
  current = kp_json_object (answer, "currentTier");
  paid = kp_json_object (answer, "paidTier");
  project = project_of (answer);

  if (current != NULL)
    {
      const char *tier = paid ? kp_json_string (paid, "id") : NULL;

      setup->tier = g_strdup (tier ? tier : kp_json_string (current, "id"));
      if (project != NULL || g_strcmp0 (setup->tier, "free-tier") == 0)
        {
          done (task, project);
          return;
        }
    }

  /* Ineligible, perhaps until the user proves who they are. */
  tiers = kp_json_array (answer, "ineligibleTiers");
  for (guint i = 0; tiers != NULL && current == NULL && i < MIN (json_array_get_length (tiers), 32); i++)
    {
      JsonObject *tier = kp_json_array_object (tiers, i);
      const char *reason = tier ? kp_json_string (tier, "reasonCode") : NULL;

      if (g_strcmp0 (reason, "VALIDATION_REQUIRED") == 0)
        {
          const char *url = kp_json_string (tier, "validationUrl");

          /* See kp_code_assist_setup_dup_validation_url(). */
          g_object_set_data_full (G_OBJECT (task), "validation-url", g_strndup (url ? url : "", 2048),
                                  g_free);
          g_task_return_new_error (task, KP_CODE_ASSIST_ERROR, KP_CODE_ASSIST_ERROR_VALIDATION,
                                   "Google asks you to verify this account%s%s",
                                   url ? ": " : ".", url ? url : "");
          g_object_unref (task);
          return;
        }
    }

  if (setup->tier == NULL)
    {
      tiers = kp_json_array (answer, "allowedTiers");
      for (guint i = 0; tiers != NULL && i < MIN (json_array_get_length (tiers), 32); i++)
        {
          JsonObject *tier = kp_json_array_object (tiers, i);
          gboolean is_default = FALSE;

          if (tier != NULL && kp_json_bool (tier, "isDefault", &is_default) && is_default)
            {
              setup->tier = g_strdup (kp_json_string (tier, "id"));
              break;
            }
        }
      if (setup->tier == NULL)
        setup->tier = g_strdup ("legacy-tier");
    }

  body = json_object_new ();
  json_object_set_string_member (body, "tierId", setup->tier);
  /* The free tier's project is Google's: sending one fails. */
  if (g_strcmp0 (setup->tier, "free-tier") != 0 && project != NULL)
    json_object_set_string_member (body, "cloudaicompanionProject", project);
  json_object_set_object_member (body, "metadata", metadata ());
  send (task, SOUP_METHOD_POST, ":onboardUser", body, on_operation);
}

/**
 * kp_code_assist_setup_async:
 * @base_url: the API's base, "https://cloudcode-pa.googleapis.com/v1internal"
 * @access_token: a valid access token of the account
 * @poll_ms: how long between polls of the onboarding; 0 = Google's 5 s
 *
 * Finds the account's tier and project, onboarding it if it has none.
 */
void
kp_code_assist_setup_async (SoupSession         *session,
                            const char          *base_url,
                            const char          *access_token,
                            guint                poll_ms,
                            GCancellable        *cancellable,
                            GAsyncReadyCallback  callback,
                            gpointer             user_data)
{
  GTask *task;
  Setup *setup;
  g_autoptr(JsonObject) body = json_object_new ();

  g_return_if_fail (SOUP_IS_SESSION (session));
  g_return_if_fail (base_url != NULL && access_token != NULL);

  task = g_task_new (NULL, cancellable, callback, user_data);
  g_task_set_source_tag (task, kp_code_assist_setup_async);
  setup = g_new0 (Setup, 1);
  setup->session = g_object_ref (session);
  setup->base_url = g_strdup (base_url);
  setup->access_token = g_strdup (access_token);
  setup->poll_ms = poll_ms > 0 ? poll_ms : KP_CODE_ASSIST_POLL_MS;
  g_task_set_task_data (task, setup, (GDestroyNotify)setup_free);

  json_object_set_object_member (body, "metadata", metadata ());
  send (task, SOUP_METHOD_POST, ":loadCodeAssist", body, on_loaded);
}

/**
 * kp_code_assist_setup_finish:
 *
 * Returns: (transfer full): the account's tier and project, or %NULL with
 *   @error set
 */
KpCodeAssistAccount *
kp_code_assist_setup_finish (GAsyncResult  *result,
                             GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

/* Quota ---------------------------------------------------------------------- */

static void
on_quota (GObject      *object,
          GAsyncResult *result,
          gpointer      user_data)
{
  GTask *task = user_data;
  g_autoptr(JsonNode) root = read_answer (task, result, "retrieveUserQuota");
  JsonArray *buckets;
  double lowest = 2;
  const char *reset = NULL;
  KpCodeAssistQuota *quota;

  if (root == NULL)
    return;
  buckets = kp_json_array (json_node_get_object (root), "buckets");
  for (guint i = 0; buckets != NULL && i < MIN (json_array_get_length (buckets), 256); i++)
    {
      JsonObject *bucket = kp_json_array_object (buckets, i);
      JsonNode *fraction = bucket ? json_object_get_member (bucket, "remainingFraction") : NULL;
      double value;

      if (fraction == NULL || !kp_json_is_number (fraction))
        continue;
      value = json_node_get_double (fraction);
      if (value >= 0 && value <= 1 && value < lowest)
        {
          lowest = value;
          reset = kp_json_string (bucket, "resetTime");
        }
    }

  quota = g_new0 (KpCodeAssistQuota, 1);
  quota->remaining = lowest <= 1 ? lowest : -1;
  if (reset != NULL)
    {
      g_autoptr(GDateTime) when = g_date_time_new_from_iso8601 (reset, NULL);

      quota->reset_at = when ? g_date_time_to_unix (when) : 0;
    }
  g_task_return_pointer (task, quota, g_free);
  g_object_unref (task);
}

/**
 * kp_code_assist_quota_async:
 * @project: (nullable): the account's project
 *
 * Reads what is left of the account's quota (retrieveUserQuota): the
 * lowest remaining fraction of its buckets, and when that one resets.
 */
void
kp_code_assist_quota_async (SoupSession         *session,
                            const char          *base_url,
                            const char          *access_token,
                            const char          *project,
                            GCancellable        *cancellable,
                            GAsyncReadyCallback  callback,
                            gpointer             user_data)
{
  GTask *task;
  Setup *setup;
  g_autoptr(JsonObject) body = json_object_new ();

  g_return_if_fail (SOUP_IS_SESSION (session));
  g_return_if_fail (base_url != NULL && access_token != NULL);

  task = g_task_new (NULL, cancellable, callback, user_data);
  g_task_set_source_tag (task, kp_code_assist_quota_async);
  setup = g_new0 (Setup, 1);
  setup->session = g_object_ref (session);
  setup->base_url = g_strdup (base_url);
  setup->access_token = g_strdup (access_token);
  g_task_set_task_data (task, setup, (GDestroyNotify)setup_free);

  if (project != NULL)
    json_object_set_string_member (body, "project", project);
  send (task, SOUP_METHOD_POST, ":retrieveUserQuota", body, on_quota);
}

/**
 * kp_code_assist_quota_finish:
 *
 * Returns: (transfer full): what is left (remaining < 0: not said), or
 *   %NULL with @error set
 */
KpCodeAssistQuota *
kp_code_assist_quota_finish (GAsyncResult  *result,
                             GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

/**
 * kp_code_assist_setup_dup_validation_url:
 * @result: the result of a setup that failed with
 *   %KP_CODE_ASSIST_ERROR_VALIDATION
 *
 * Returns: (transfer full) (nullable): the page where Google asks the
 *   account's owner to verify it
 */
char *
kp_code_assist_setup_dup_validation_url (GAsyncResult *result)
{
  const char *url;

  g_return_val_if_fail (G_IS_TASK (result), NULL);

  url = g_object_get_data (G_OBJECT (result), "validation-url");
  return url != NULL && url[0] != '\0' ? g_strdup (url) : NULL;
}

/**
 * kp_code_assist_quota_describe:
 * @quota: what is left
 *
 * Returns: (transfer full) (nullable): "62 % of today's quota left, resets
 *   09:00", or %NULL when the quota was not said
 */
char *
kp_code_assist_quota_describe (const KpCodeAssistQuota *quota)
{
  g_autoptr(GDateTime) when = NULL;
  g_autofree char *time = NULL;

  if (quota == NULL || quota->remaining < 0)
    return NULL;
  if (quota->reset_at > 0 && (when = g_date_time_new_from_unix_local (quota->reset_at)) != NULL)
    time = g_date_time_format (when, "%H:%M");
  return g_strdup_printf ("%d %% of today's quota left%s%s", (int)(quota->remaining * 100 + 0.5),
                          time ? ", resets " : "", time ? time : "");
}
