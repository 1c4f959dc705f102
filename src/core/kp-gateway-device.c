/* kp-gateway-device.c: accounts signed in with a device code (Qwen Code)
 *
 * Part of KpGateway. kp_gateway_login_async() for a provider whose "oauth"
 * object says "flow": "device": Keypool asks the provider for a code, tells
 * it with the gateway's "login-code" signal (the CLI prints it, the window
 * shows it), opens the page where it is entered unless told not to, and
 * polls until the user approved it (kp-device-flow.c: pending, slow_down,
 * expired, denied). The caller's cancellable (Ctrl-C, the dialog's Cancel)
 * and the timeout end it. The account then goes into the keyring as any
 * OAuth account does.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include "kp-gateway-private.h"
#include "auth/kp-device-flow.h"

typedef struct
{
  char         *provider_id;
  char         *label;
  gboolean      open_browser;
  guint         timeout_s;
  KpDeviceFlow *flow;
  GCancellable *cancellable;     /* ours: the caller's and the timeout cancel it */
  GCancellable *outer;           /* the caller's, or NULL */
  gulong        outer_id;
  guint         timeout_id;
  gboolean      timed_out;
} DeviceLogin;

static void
device_login_free (DeviceLogin *login)
{
  g_clear_handle_id (&login->timeout_id, g_source_remove);
  if (login->outer != NULL)
    g_cancellable_disconnect (login->outer, login->outer_id);
  g_clear_object (&login->outer);
  g_clear_object (&login->cancellable);
  g_clear_object (&login->flow);
  g_free (login->provider_id);
  g_free (login->label);
  g_free (login);
}

static gboolean
on_timeout (gpointer user_data)
{
  DeviceLogin *login = user_data;

  login->timeout_id = 0;
  login->timed_out = TRUE;
  g_cancellable_cancel (login->cancellable);
  return G_SOURCE_REMOVE;
}

static void
on_outer_cancelled (GCancellable *outer,
                    GCancellable *ours)
{
  g_cancellable_cancel (ours);
}

/* Why the sign-in ended without an account, for the user. */
static void
return_error (GTask  *task,
              GError *error)
{
  DeviceLogin *login = g_task_get_task_data (task);

  if (login->timed_out)
    g_task_return_new_error (task, KP_OAUTH_ERROR, KP_OAUTH_ERROR_CANCELLED,
                             "The sign-in timed out after %u s: nobody approved the code.",
                             login->timeout_s);
  else if (g_error_matches (error, KP_OAUTH_ERROR, KP_OAUTH_ERROR_CANCELLED))
    g_task_return_new_error (task, KP_OAUTH_ERROR, KP_OAUTH_ERROR_CANCELLED,
                             "The sign-in was cancelled.");
  else
    g_task_return_new_error (task, error->domain, error->code, "Not signed in: %s",
                             error->message);
}

static void
on_granted (GObject      *object,
            GAsyncResult *result,
            gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  KpGateway *self = g_task_get_source_object (task);
  DeviceLogin *login = g_task_get_task_data (task);
  g_autoptr(GError) error = NULL;
  g_autoptr(KpDeviceGrant) grant = NULL;

  grant = kp_device_flow_poll_finish (KP_DEVICE_FLOW (object), result, &error);
  if (grant == NULL)
    {
      return_error (task, error);
      return;
    }
  g_clear_handle_id (&login->timeout_id, g_source_remove);
  /* Approved: the account is kept, whatever the caller's cancellable says now. */
  kp_gateway_add_signed_in (self, g_steal_pointer (&task), login->provider_id, login->label,
                            grant->refresh_token, grant->access_token, grant->expires_in,
                            grant->resource_url, NULL);
}

static void
on_code (GObject      *object,
         GAsyncResult *result,
         gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  KpGateway *self = g_task_get_source_object (task);
  DeviceLogin *login = g_task_get_task_data (task);
  g_autoptr(GError) error = NULL;
  g_autoptr(KpDeviceCode) code = NULL;
  const char *page;

  code = kp_device_flow_start_finish (KP_DEVICE_FLOW (object), result, &error);
  if (code == NULL)
    {
      return_error (task, error);
      return;
    }

  page = code->verification_uri_complete != NULL ? code->verification_uri_complete
                                                 : code->verification_uri;
  kp_gateway_emit_login_code (self, login->provider_id, code->user_code, page);
  if (login->open_browser && page != NULL)
    {
      g_autoptr(GError) launch_error = NULL;

      if (!g_app_info_launch_default_for_uri (page, NULL, &launch_error))
        g_debug ("No browser opened for the sign-in: %s", launch_error->message);
    }
  kp_device_flow_poll_async (login->flow, login->cancellable, on_granted, g_steal_pointer (&task));
}

/**
 * kp_gateway_login_device_async:
 * @provider: a provider whose "oauth" says "flow": "device"
 * @timeout_s: how long to wait for the user; 0 = until the code expires
 *
 * The device sign-in of kp_gateway_login_async(). The user code and its page
 * come with the signal "login-code".
 *
 * Returns: %TRUE: the callback is called
 */
gboolean
kp_gateway_login_device_async (KpGateway           *self,
                               KpProvider          *provider,
                               const char          *label,
                               gboolean             open_browser,
                               guint                timeout_s,
                               GCancellable        *cancellable,
                               GAsyncReadyCallback  callback,
                               gpointer             user_data,
                               GError             **error)
{
  const KpOAuthClient *client = kp_provider_get_oauth (provider);
  g_autofree char *scope = client->scopes != NULL ? g_strjoinv (" ", client->scopes) : NULL;
  g_autoptr(GTask) task = NULL;
  DeviceLogin *login;

  login = g_new0 (DeviceLogin, 1);
  login->provider_id = g_strdup (kp_provider_get_id (provider));
  login->label = g_strdup (label ? label : "");
  login->open_browser = open_browser;
  login->timeout_s = timeout_s;
  login->flow = kp_device_flow_new (kp_gateway_get_auth_session (self), client->device_code_url,
                                    client->token_url, client->client_id, scope);
  login->cancellable = g_cancellable_new ();
  if (cancellable != NULL)
    {
      login->outer = g_object_ref (cancellable);
      login->outer_id = g_cancellable_connect (cancellable, G_CALLBACK (on_outer_cancelled),
                                               login->cancellable, NULL);
    }
  if (timeout_s > 0)
    login->timeout_id = g_timeout_add_seconds (timeout_s, on_timeout, login);

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, kp_gateway_login_async);
  /* Cancelled, the task still returns our own message, not GIO's. */
  g_task_set_check_cancellable (task, FALSE);
  g_task_set_task_data (task, login, (GDestroyNotify)device_login_free);
  kp_device_flow_start_async (login->flow, login->cancellable, on_code, g_steal_pointer (&task));
  return TRUE;
}
