/* kp-connector.c: `keypool connect`, with a client token and a model
 *
 * Connecting a tool gives it a client token of its own (named after the
 * tool, so the ledger tells its spend apart) and a model the user's keys
 * serve now, and writes both into the tool's config. A tool already
 * connected with its own valid token keeps it: connecting again changes
 * nothing.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include "kp-connector.h"

#include <string.h>

/* A coding request: a large prompt, a modest answer. */
#define PLAN_PROMPT_TOKENS 20000
#define PLAN_OUTPUT_TOKENS 2000

void
kp_connect_result_free (KpConnectResult *result)
{
  if (result == NULL)
    return;
  g_free (result->path);
  g_free (result->token_path);
  g_free (result->model);
  g_free (result->problem);
  if (result->snippet != NULL)
    explicit_bzero (result->snippet, strlen (result->snippet));
  g_free (result->snippet);
  g_free (result);
}

/* What the cheapest route for @model is expected to cost; FALSE when no
 * route serves it now. An unknown price is G_MAXDOUBLE: after every known one.
 */
static gboolean
cheapest (KpGateway  *gateway,
          const char *model,
          double     *usd)
{
  g_auto(GStrv) providers = NULL;
  g_autoptr(GPtrArray) offerings = kp_gateway_resolve (gateway, model, &providers);
  g_autoptr(KpPlan) plan = NULL;
  KpRouteRequest request = { PLAN_PROMPT_TOKENS, PLAN_OUTPUT_TOKENS, NULL };
  const KpRoute *best;

  if (offerings == NULL)
    return FALSE;
  request.providers = (const char * const *)providers;
  /* A question, not a request: the keys' rotation stays where it is. */
  plan = kp_gateway_plan_peek (gateway, offerings, &request);
  if (plan->routes->len == 0)
    return FALSE;
  best = &g_array_index (plan->routes, KpRoute, 0);
  *usd = best->expected_usd >= 0 ? best->expected_usd : G_MAXDOUBLE;
  return TRUE;
}

gboolean
kp_connector_model_served (KpGateway  *gateway,
                           const char *model)
{
  double usd;

  g_return_val_if_fail (KP_IS_GATEWAY (gateway), FALSE);
  return cheapest (gateway, model, &usd);
}

/**
 * kp_connector_pick_model:
 * @served: (out): whether the user's keys serve the model now
 *
 * The tool's strong coding model with the cheapest route now; the tool's
 * first choice when none is served.
 *
 * Returns: (transfer full): a Keypool model id
 */
char *
kp_connector_pick_model (KpGateway           *gateway,
                         const KpConnectTool *tool,
                         gboolean            *served)
{
  const char *best = NULL;
  double best_usd = 0;

  g_return_val_if_fail (KP_IS_GATEWAY (gateway), NULL);

  for (guint i = 0; tool->models[i] != NULL; i++)
    {
      double usd;

      /* Ties go to the tool's own order. */
      if (cheapest (gateway, tool->models[i], &usd) && (best == NULL || usd < best_usd))
        {
          best = tool->models[i];
          best_usd = usd;
        }
    }
  *served = best != NULL;
  return g_strdup (best ? best : tool->models[0]);
}

typedef struct
{
  const KpConnectTool *tool;
  char                *home;
  char                *model;
  gboolean             served;
} ConnectData;

static void
connect_data_free (ConnectData *data)
{
  g_free (data->home);
  g_free (data->model);
  g_free (data);
}

static void
finish_connect (GTask      *task,
                const char *token)
{
  KpGateway *gateway = g_task_get_source_object (task);
  ConnectData *data = g_task_get_task_data (task);
  g_autofree char *url = kp_gateway_dup_base_url (gateway);
  g_autofree char *root = g_strdup_printf ("http://127.0.0.1:%u", kp_gateway_get_port (gateway));
  g_autoptr(KpConnectResult) result = g_new0 (KpConnectResult, 1);
  g_autoptr(GError) error = NULL;
  KpConnectValues values = { url, root, token, data->model };

  result->path = kp_connect_dup_paths (data->tool, data->home);
  result->token_path = kp_connect_dup_path (data->tool->files, data->home);
  result->model = g_strdup (data->model);
  result->model_served = data->served;
  if (!kp_connect_write (data->tool, data->home, &values, &result->changed, &result->opened_mode,
                         &error))
    {
      if (g_error_matches (error, KP_CONF_ERROR, KP_CONF_ERROR_IO))
        {
          g_task_return_error (task, g_steal_pointer (&error));
          return;
        }
      /* Left alone: the user gets why, and what to paste instead. */
      result->problem = g_strdup (error->message);
      result->snippet = kp_connect_dup_snippet (data->tool, &values);
    }
  g_task_return_pointer (task, g_steal_pointer (&result), (GDestroyNotify)kp_connect_result_free);
}

static void
on_token_made (GObject      *object,
               GAsyncResult *res,
               gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  g_autoptr(GError) error = NULL;
  g_autofree char *token = kp_clients_add_finish (KP_CLIENTS (object), res, NULL, &error);

  if (token == NULL)
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  finish_connect (task, token);
  explicit_bzero (token, strlen (token));
}

/**
 * kp_connector_connect_async:
 * @home: the home directory the tool's config is under
 * @model: (nullable): the model to use, or NULL for Keypool's pick
 *
 * Points the tool at Keypool. A file Keypool cannot edit is left alone:
 * the result then says why (@problem) and what to paste (@snippet).
 */
void
kp_connector_connect_async (KpGateway           *gateway,
                            const KpConnectTool *tool,
                            const char          *home,
                            const char          *model,
                            GCancellable        *cancellable,
                            GAsyncReadyCallback  callback,
                            gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  g_autofree char *token = NULL;
  KpClients *clients = kp_gateway_get_clients (gateway);
  ConnectData *data;
  guint client, holder;

  g_return_if_fail (KP_IS_GATEWAY (gateway));
  g_return_if_fail (tool != NULL && home != NULL);

  task = g_task_new (gateway, cancellable, callback, user_data);
  g_task_set_source_tag (task, kp_connector_connect_async);
  data = g_new0 (ConnectData, 1);
  data->tool = tool;
  data->home = g_strdup (home);
  if (model != NULL)
    {
      data->model = g_strdup (model);
      data->served = kp_connector_model_served (gateway, model);
    }
  else
    data->model = kp_connector_pick_model (gateway, tool, &data->served);
  g_task_set_task_data (task, data, (GDestroyNotify)connect_data_free);

  /* The tool's own token, still valid: keep it. */
  token = kp_connect_dup_token (tool, home);
  if (token != NULL && kp_clients_find (clients, tool->name, &client) &&
      kp_clients_check (clients, token, &holder) && holder == client)
    {
      finish_connect (task, token);
      explicit_bzero (token, strlen (token));
      return;
    }
  if (token != NULL)
    explicit_bzero (token, strlen (token));

  kp_clients_add_async (clients, tool->name, TRUE, cancellable, on_token_made,
                        g_steal_pointer (&task));
}

/**
 * kp_connector_connect_finish:
 *
 * Returns: (transfer full): what was done
 */
KpConnectResult *
kp_connector_connect_finish (KpGateway     *gateway,
                             GAsyncResult  *result,
                             GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, gateway), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

static void
on_client_removed (GObject      *object,
                   GAsyncResult *res,
                   gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  g_autoptr(GError) error = NULL;

  /* The file is restored; a token already gone is no failure. */
  if (!kp_clients_remove_finish (KP_CLIENTS (object), res, &error) &&
      !g_error_matches (error, KP_CLIENTS_ERROR, KP_CLIENTS_ERROR_NOT_FOUND))
    g_warning ("The client token of a disconnected tool stays: %s", error->message);
  g_task_return_boolean (task, TRUE);
}

/**
 * kp_connector_disconnect_async:
 *
 * Puts the tool's config back as it was and retires its client token.
 */
void
kp_connector_disconnect_async (KpGateway           *gateway,
                               const KpConnectTool *tool,
                               const char          *home,
                               GCancellable        *cancellable,
                               GAsyncReadyCallback  callback,
                               gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  g_autoptr(GError) error = NULL;
  KpClients *clients = kp_gateway_get_clients (gateway);
  guint client;

  g_return_if_fail (KP_IS_GATEWAY (gateway));

  task = g_task_new (gateway, cancellable, callback, user_data);
  g_task_set_source_tag (task, kp_connector_disconnect_async);
  if (!kp_connect_restore (tool, home, &error))
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  if (!kp_clients_find (clients, tool->name, &client))
    {
      g_task_return_boolean (task, TRUE);
      return;
    }
  kp_clients_remove_async (clients, tool->name, cancellable, on_client_removed,
                           g_steal_pointer (&task));
}

gboolean
kp_connector_disconnect_finish (KpGateway     *gateway,
                                GAsyncResult  *result,
                                GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, gateway), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}
