/* kp-refresh-run.c: one run of the catalog refresh
 *
 * Part of KpRefresh: a run starts one job per provider; a job asks for the
 * model list and each key's balance, applies what came back to the catalog,
 * the keys and the ledger as soon as it is all in (or the job's timeout
 * ends it), and the run answers everyone who waited for it. The timer that
 * starts the next run is armed here too.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include <json-glib/json-glib.h>
#include <libsoup/soup.h>

#include "kp-refresh-private.h"
#include "kp-gateway.h"
#include "kp-http.h"

static gboolean on_timer (gpointer user_data);

static KpRefreshResult *
result_copy (const KpRefreshResult *result)
{
  KpRefreshResult *copy = g_new0 (KpRefreshResult, 1);

  copy->provider_id = g_strdup (result->provider_id);
  copy->outcome = result->outcome;
  copy->summary = g_strdup (result->summary);
  return copy;
}

static void
balance_free (Balance *balance)
{
  g_clear_object (&balance->credential);
  g_clear_pointer (&balance->currency, g_free);
  g_clear_pointer (&balance->error, g_free);
  g_free (balance);
}

static void
job_free (Job *job)
{
  g_clear_handle_id (&job->timeout_id, g_source_remove);
  g_clear_pointer (&job->id, g_free);
  g_clear_object (&job->provider);
  g_clear_object (&job->credential);
  g_clear_object (&job->cancellable);
  g_clear_pointer (&job->models_url, g_free);
  g_clear_pointer (&job->models, g_array_unref);
  g_clear_pointer (&job->models_error, g_free);
  g_clear_pointer (&job->balances, g_ptr_array_unref);
  g_free (job);
}

static void
run_free (Run *run)
{
  g_clear_pointer (&run->only, g_strfreev);
  g_clear_pointer (&run->jobs, g_ptr_array_unref);
  g_clear_pointer (&run->tasks, g_ptr_array_unref);
  g_clear_pointer (&run->results, g_ptr_array_unref);
  g_clear_object (&run->cancellable);
  g_clear_object (&run->refresh);
  g_free (run);
}


/* Running ------------------------------------------------------------------ */

static SoupSession *
get_session (KpRefresh   *self,
             SoupMessage *msg)
{
  SoupSession *session = kp_gateway_get_session_for (self->gateway, soup_message_get_uri (msg));

  if (session != NULL)
    return session;
  if (self->own_session == NULL)
    self->own_session = soup_session_new_with_options ("user-agent", "Keypool/" PACKAGE_VERSION,
                                                       NULL);
  return self->own_session;
}

static char *
describe_failure (Job          *job,
                  KpCredential *credential,
                  const char   *what,
                  GError       *error,
                  guint         status,
                  GBytes       *body)
{
  g_autofree char *text = NULL;
  g_autofree char *clean = NULL;
  const char *secret = credential ? kp_credential_get_secret (credential) : NULL;

  if (job->timed_out)
    return g_strdup_printf ("%s: no answer within %.1f s", what,
                            job->run->refresh->timeout_ms / 1000.0);
  if (error != NULL)
    text = g_strdup_printf ("%s: %s", what, error->message);
  else
    {
      gsize len = 0;
      const char *data = body ? g_bytes_get_data (body, &len) : NULL;
      g_autofree char *snippet = data ? g_utf8_make_valid (data, MIN (len, 160)) : NULL;

      text = g_strdup_printf ("%s: HTTP %u%s%s", what, status, snippet && *snippet ? ": " : "",
                              snippet ? g_strstrip (snippet) : "");
    }

  /* A provider that echoes the key must not make us print it. */
  clean = kp_secret_scrub (text, secret);
  return g_steal_pointer (&clean);
}

static void job_step_done (Job *job);

static void
on_models_parsed (GObject      *object,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  Job *job = user_data;
  g_autoptr(GError) error = NULL;
  const char *prefix = kp_provider_get_models_prefix (job->provider);

  job->models = g_task_propagate_pointer (G_TASK (result), &error);
  for (guint i = 0; job->models != NULL && prefix != NULL && i < job->models->len; i++)
    {
      char *name = g_array_index (job->models, KpLiveModel, i).upstream_id;

      if (g_str_has_prefix (name, prefix) && name[strlen (prefix)] != '\0')
        memmove (name, name + strlen (prefix), strlen (name) - strlen (prefix) + 1);
    }

  if (job->models == NULL)
    job->models_error = describe_failure (job, job->credential, "models", error, 0, NULL);
  else if (job->models->len == 0)
    {
      /* Most likely a fault: keep the last good list rather than lose every model. */
      g_clear_pointer (&job->models, g_array_unref);
      job->models_error = g_strdup ("models: the list was empty");
    }
  job_step_done (job);
}

static void
parse_models_thread (GTask        *task,
                     gpointer      source_object,
                     gpointer      task_data,
                     GCancellable *cancellable)
{
  GBytes *body = task_data;
  KpPriceFormat format = GPOINTER_TO_INT (g_object_get_data (G_OBJECT (task), "format"));
  GError *error = NULL;
  GArray *models = kp_refresh_parse_models (body, format, &error);

  if (models == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, models, (GDestroyNotify)g_array_unref);
}

static void
on_models_read (GObject      *object,
                GAsyncResult *result,
                gpointer      user_data)
{
  Job *job = user_data;
  SoupMessage *msg = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) body = NULL;
  g_autoptr(GTask) task = NULL;
  guint status;

  body = kp_http_read_bounded_finish (result, &msg, &error);
  status = soup_message_get_status (msg);
  if (body == NULL || !SOUP_STATUS_IS_SUCCESSFUL (status))
    {
      job->models_error = describe_failure (job, job->credential, "models", error, status, body);
      job_step_done (job);
      return;
    }

  task = g_task_new (NULL, job->cancellable, on_models_parsed, job);
  g_task_set_source_tag (task, on_models_read);
  g_task_set_task_data (task, g_steal_pointer (&body), (GDestroyNotify)g_bytes_unref);
  g_object_set_data (G_OBJECT (task), "format",
                     GINT_TO_POINTER (kp_provider_get_price_format (job->provider)));
  g_task_run_in_thread (task, parse_models_thread);
}

static void
on_balance_read (GObject      *object,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  Balance *balance = user_data;
  Job *job = balance->job;
  SoupMessage *msg = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) body = NULL;
  guint status;

  body = kp_http_read_bounded_finish (result, &msg, &error);
  status = soup_message_get_status (msg);
  if (body == NULL || !SOUP_STATUS_IS_SUCCESSFUL (status))
    balance->error = describe_failure (job, balance->credential, "balance", error, status, body);
  else
    kp_refresh_parse_balance (balance, kp_provider_get_balance_format (job->provider), body);
  job_step_done (job);
}

static gboolean
on_job_timeout (gpointer user_data)
{
  Job *job = user_data;

  job->timeout_id = 0;
  job->timed_out = TRUE;
  g_cancellable_cancel (job->cancellable);
  return G_SOURCE_REMOVE;
}

/* Asks @url with @key (or none); @callback gets @data. */
static void
send (Job                 *job,
      const char          *url,
      KpCredential        *key,
      GAsyncReadyCallback  callback,
      gpointer             data,
      char               **error_out)
{
  g_autoptr(SoupMessage) msg = soup_message_new (SOUP_METHOD_GET, url);
  gsize cap;

  job->pending++;
  if (msg == NULL)
    {
      /* Checked when the file was read; only a broken override gets here. */
      *error_out = g_strdup_printf ("the address “%s” is not valid", url);
      job_step_done (job);
      return;
    }

  kp_provider_apply_headers (job->provider, soup_message_get_request_headers (msg),
                             key ? kp_credential_get_token (key) : NULL);
  soup_message_headers_replace (soup_message_get_request_headers (msg), "Accept", "application/json");
  kp_gateway_get_read_caps (job->run->refresh->gateway, NULL, NULL, &cap);
  kp_http_read_bounded_async (get_session (job->run->refresh, msg), msg, cap, G_PRIORITY_LOW,
                              job->cancellable, callback, data);
}

/* The keys a provider is asked with: those that are switched on, have their
 * secret and were not refused, in the order they were added. An exhausted
 * key is asked too, so that a balance topped up brings it back.
 */
static GPtrArray *
usable_credentials (KpRefresh  *self,
                    KpProvider *provider)
{
  GPtrArray *credentials = kp_gateway_get_credentials (self->gateway);
  GPtrArray *usable = g_ptr_array_new ();
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;

  for (guint i = 0; i < credentials->len; i++)
    {
      KpCredential *credential = g_ptr_array_index (credentials, i);

      if (g_str_equal (kp_credential_get_provider_id (credential), kp_provider_get_id (provider)) &&
          kp_credential_get_enabled (credential) && kp_credential_get_secret (credential) != NULL &&
          kp_credential_get_state (credential, now) != KP_CREDENTIAL_INVALID)
        g_ptr_array_add (usable, credential);
    }
  return usable;
}

static KpRefreshRow *
ensure_state (KpRefresh  *self,
              const char *provider_id)
{
  KpRefreshRow *row = g_hash_table_lookup (self->states, provider_id);

  if (row == NULL)
    {
      row = g_new0 (KpRefreshRow, 1);
      row->provider = g_strdup (provider_id);
      g_hash_table_insert (self->states, row->provider, row);
    }
  return row;
}

static void
add_result (Run              *run,
            const char       *provider_id,
            KpRefreshOutcome  outcome,
            char             *summary)
{
  KpRefreshResult *result = g_new0 (KpRefreshResult, 1);

  result->provider_id = g_strdup (provider_id);
  result->outcome = outcome;
  result->summary = summary;
  g_ptr_array_add (run->results, result);
}

static void run_job_done (Run *run);

/* Applies what one provider said, at once: the others may still be asking. */
static void
job_apply (Job *job)
{
  KpRefresh *self = job->run->refresh;
  KpLedger *ledger = kp_gateway_get_ledger (self->gateway);
  KpRefreshRow *state = ensure_state (self, job->id);
  g_autoptr(GString) summary = g_string_new (NULL);
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;
  g_autoptr(GString) balance_errors = g_string_new (NULL);
  gboolean failed = job->models_error != NULL;
  gboolean first_balance = TRUE;

  state->refreshed_at = now;

  if (job->models != NULL)
    {
      KpProvider *merged;
      guint live = 0, unknown = 0, n_models;

      /* Through the writer thread: a busy database never stalls the loop;
       * when writes fail, the ledger keeps it and says so.
       */
      kp_ledger_save_live_models_async (ledger, job->id, job->models_url, job->models, now,
                                        NULL, NULL);
      merged = kp_catalog_apply_live (kp_gateway_get_catalog (self->gateway), job->id, job->models,
                                      now);
      for (guint i = 0; merged != NULL && i < kp_provider_get_n_offerings (merged); i++)
        {
          KpPriceSource source = kp_provider_get_offering (merged, i)->price_source;

          live += source == KP_PRICE_LIVE;
          unknown += source == KP_PRICE_UNKNOWN;
        }
      state->ok_at = now;
      n_models = merged ? kp_provider_get_n_offerings (merged) : 0;
      g_string_append_printf (summary, "%u model%s", n_models, n_models == 1 ? "" : "s");
      if (live > 0)
        g_string_append_printf (summary, ", %u with live prices", live);
      if (unknown > 0)
        g_string_append_printf (summary, ", %u unpriced", unknown);
    }

  /* Each key's balance is that key's: its account may be another's. The
   * provider shows the first key's.
   */
  for (guint i = 0; i < job->balances->len; i++)
    {
      Balance *balance = g_ptr_array_index (job->balances, i);
      const char *label = kp_credential_get_label (balance->credential);
      g_autofree char *who = job->balances->len < 2 ? g_strdup ("")
        : label && *label ? g_strdup_printf (" (%s)", label)
        : g_strdup_printf (" (key %" G_GINT64_FORMAT ")", kp_credential_get_id (balance->credential));

      if (balance->error != NULL)
        {
          g_string_append_printf (balance_errors, "%s%s%s", balance_errors->len ? "; " : "",
                                  balance->error, who);
          failed = TRUE;
          continue;
        }
      if (!balance->has_balance)
        continue;

      if (first_balance)
        {
          state->has_balance = TRUE;
          state->balance = balance->balance;
          g_free (state->currency);
          state->currency = g_strdup (balance->currency);
          state->balance_at = now;
          first_balance = FALSE;
        }
      kp_gateway_note_balance (self->gateway, balance->credential, balance->balance,
                               balance->currency, balance->available);
      g_string_append_printf (summary, "%sbalance %.2f %s%s", summary->len ? "; " : "",
                              balance->balance, balance->currency, who);
    }

  g_free (state->error);
  state->error = NULL;
  if (failed)
    {
      state->error = g_strjoin ("; ", job->models_error ? job->models_error : balance_errors->str,
                                job->models_error && balance_errors->len ? balance_errors->str : NULL,
                                NULL);
      g_string_append_printf (summary, "%s%s", summary->len ? "; " : "", state->error);
      g_debug ("Refresh of %s failed: %s", job->id, state->error);
    }

  kp_ledger_save_refresh_async (ledger, state, NULL, NULL);

  add_result (job->run, job->id, failed ? KP_REFRESH_FAILED : KP_REFRESH_OK,
              g_string_free (g_steal_pointer (&summary), FALSE));
  kp_gateway_catalog_changed (self->gateway);
}

static void
job_step_done (Job *job)
{
  g_assert (job->pending > 0);

  if (--job->pending > 0)
    return;

  g_clear_handle_id (&job->timeout_id, g_source_remove);

  /* Stopped, or the gateway went away meanwhile: nothing to tell, and a
   * cancelled request is not the provider's failure.
   */
  if (job->run->refresh->gateway != NULL && !g_cancellable_is_cancelled (job->run->cancellable))
    job_apply (job);
  run_job_done (job->run);
}

static void
job_start (Run        *run,
           KpProvider *provider)
{
  KpRefresh *self = run->refresh;
  KpCatalog *catalog = kp_gateway_get_catalog (self->gateway);
  const char *id = kp_provider_get_id (provider);
  KpProvider *bundled = kp_catalog_get_bundled_provider (catalog, id);
  g_autofree char *balance_url = NULL;
  g_autoptr(GPtrArray) keys = NULL;
  Job *job;

  job = g_new0 (Job, 1);
  job->run = run;
  job->id = g_strdup (id);
  job->provider = g_object_ref (bundled ? bundled : provider);
  job->cancellable = g_cancellable_new ();
  g_signal_connect_object (run->cancellable, "cancelled", G_CALLBACK (g_cancellable_cancel),
                           job->cancellable, G_CONNECT_SWAPPED);
  job->balances = g_ptr_array_new_with_free_func ((GDestroyNotify)balance_free);
  keys = kp_provider_get_requires_key (provider) ? usable_credentials (self, provider)
                                                 : g_ptr_array_new ();
  if (keys->len > 0)
    job->credential = g_object_ref (g_ptr_array_index (keys, 0));
  g_ptr_array_add (run->jobs, job);

  job->models_url = kp_provider_dup_models_url (job->provider);
  if (job->models_url != NULL && job->credential == NULL &&
      kp_provider_get_requires_key (provider) && kp_provider_get_models_need_key (provider))
    g_clear_pointer (&job->models_url, g_free);
  if (job->credential != NULL)
    balance_url = kp_provider_dup_balance_url (job->provider);

  if (job->models_url == NULL && balance_url == NULL)
    {
      add_result (run, id, KP_REFRESH_SKIPPED,
                  g_strdup (job->credential == NULL && kp_provider_get_requires_key (provider)
                              ? "skipped: no usable key"
                              : "skipped: no model list or balance to read"));
      return;
    }

  run->pending++;
  /* Held until both answers are in, so that the first cannot finish the job. */
  job->pending = 1;
  job->timeout_id = g_timeout_add (self->timeout_ms, on_job_timeout, job);
  if (job->models_url != NULL)
    send (job, job->models_url,
          kp_provider_get_models_need_key (job->provider) ? job->credential : NULL,
          on_models_read, job, &job->models_error);
  for (guint i = 0; balance_url != NULL && i < keys->len; i++)
    {
      Balance *balance = g_new0 (Balance, 1);

      balance->job = job;
      balance->credential = g_object_ref (g_ptr_array_index (keys, i));
      g_ptr_array_add (job->balances, balance);
      send (job, balance_url, balance->credential, on_balance_read, balance, &balance->error);
    }
  job_step_done (job);
}

/* Arms the timer: an interval after the last refresh of everything, and at
 * once when that is past.
 */
void
kp_refresh_schedule (KpRefresh *self)
{
  gint64 delay;

  g_clear_handle_id (&self->timer_id, g_source_remove);
  if (!self->started || self->interval_ms <= 0 || self->run != NULL)
    return;

  if (self->last_run_us > 0)
    delay = (self->last_run_us - g_get_real_time ()) / 1000 + self->interval_ms;
  else
    delay = self->last_run * 1000 - g_get_real_time () / 1000 + self->interval_ms;
  delay = CLAMP (delay, 0, self->interval_ms);
  /* Hours away: a seconds timer, which also reaches past 49 days. */
  if (delay >= 3600 * 1000)
    self->timer_id = g_timeout_add_seconds ((guint)MIN (delay / 1000, G_MAXUINT), on_timer, self);
  else
    self->timer_id = g_timeout_add ((guint)delay, on_timer, self);
}

static void
run_finish (Run *run)
{
  KpRefresh *self = run->refresh;
  g_autoptr(GPtrArray) queued = NULL;
  gboolean all = FALSE;
  g_autoptr(GStrvBuilder) next = g_strv_builder_new ();

  if (run->only == NULL && self->gateway != NULL)
    {
      g_autofree char *value = NULL;

      self->last_run_us = g_get_real_time ();
      self->last_run = self->last_run_us / G_USEC_PER_SEC;
      value = g_strdup_printf ("%" G_GINT64_FORMAT, self->last_run);
      kp_ledger_set_setting_async (kp_gateway_get_ledger (self->gateway), LAST_RUN_SETTING, value,
                                   NULL, NULL);
    }

  for (guint i = 0; i < run->tasks->len; i++)
    {
      GTask *task = g_ptr_array_index (run->tasks, i);
      const char *wanted = g_task_get_task_data (task);
      GPtrArray *results = g_ptr_array_new_with_free_func ((GDestroyNotify)kp_refresh_result_free);

      for (guint j = 0; j < run->results->len; j++)
        {
          KpRefreshResult *result = g_ptr_array_index (run->results, j);

          if (wanted == NULL || g_str_equal (wanted, result->provider_id))
            g_ptr_array_add (results, result_copy (result));
        }
      g_task_return_pointer (task, results, (GDestroyNotify)g_ptr_array_unref);
    }

  self->run = NULL;
  kp_refresh_notify_running (self);
  kp_refresh_emit_finished (self);

  /* Those who asked for more than this run covered get a run of their own. */
  queued = g_steal_pointer (&self->queued);
  self->queued = g_ptr_array_new_with_free_func (g_object_unref);
  if (queued->len > 0 && self->gateway != NULL)
    {
      g_auto(GStrv) only = NULL;

      for (guint i = 0; i < queued->len; i++)
        {
          const char *wanted = g_task_get_task_data (g_ptr_array_index (queued, i));

          if (wanted == NULL)
            all = TRUE;
          else
            g_strv_builder_add (next, wanted);
        }
      only = all ? NULL : g_strv_builder_end (next);
      run_free (run);
      kp_refresh_run_start (self, only, queued);
      return;
    }
  else
    {
      for (guint i = 0; i < queued->len; i++)
        g_task_return_new_error (g_ptr_array_index (queued, i), KP_REFRESH_ERROR,
                                 KP_REFRESH_ERROR_UNAVAILABLE, "Keypool is shutting down.");
      kp_refresh_schedule (self);
    }

  run_free (run);
}

static void
run_job_done (Run *run)
{
  g_assert (run->pending > 0);

  if (--run->pending == 0)
    run_finish (run);
}

/* Starts a run for @only (or every provider) that answers @tasks. It may be
 * over before this returns, when no provider needs asking.
 */
void
kp_refresh_run_start (KpRefresh *self,
           GStrv      only,
           GPtrArray *tasks)
{
  GPtrArray *providers = kp_catalog_get_providers (kp_gateway_get_catalog (self->gateway));
  g_autoptr(GPtrArray) chosen = g_ptr_array_new_with_free_func (g_object_unref);
  Run *run;

  g_assert (self->run == NULL);

  g_clear_handle_id (&self->timer_id, g_source_remove);

  run = g_new0 (Run, 1);
  run->refresh = g_object_ref (self);
  run->only = g_strdupv (only);
  run->jobs = g_ptr_array_new_with_free_func ((GDestroyNotify)job_free);
  run->tasks = g_ptr_array_new_with_free_func (g_object_unref);
  for (guint i = 0; tasks != NULL && i < tasks->len; i++)
    g_ptr_array_add (run->tasks, g_object_ref (g_ptr_array_index (tasks, i)));
  run->results = g_ptr_array_new_with_free_func ((GDestroyNotify)kp_refresh_result_free);
  run->cancellable = g_cancellable_new ();
  self->run = run;
  kp_refresh_notify_running (self);

  /* Copied first: applying an answer replaces providers in the catalog. */
  for (guint i = 0; i < providers->len; i++)
    {
      KpProvider *provider = g_ptr_array_index (providers, i);

      if (only == NULL || g_strv_contains ((const char * const *)only, kp_provider_get_id (provider)))
        g_ptr_array_add (chosen, g_object_ref (provider));
    }

  /* Held while the jobs start, so that a job that ends at once cannot end the run. */
  run->pending = 1;
  for (guint i = 0; i < chosen->len; i++)
    {
      KpProvider *provider = g_ptr_array_index (chosen, i);
      const char *id = kp_provider_get_id (provider);

      if (!kp_gateway_provider_is_enabled (self->gateway, provider))
        add_result (run, id, KP_REFRESH_SKIPPED, g_strdup ("skipped: switched off"));
      else if (only == NULL && !kp_gateway_provider_is_usable (self->gateway, provider))
        add_result (run, id, KP_REFRESH_SKIPPED, g_strdup ("skipped: no key"));
      else
        job_start (run, provider);
    }
  run_job_done (run);
}

static gboolean
on_timer (gpointer user_data)
{
  KpRefresh *self = user_data;

  self->timer_id = 0;
  g_debug ("Refreshing the catalog on the timer");
  if (self->run == NULL)
    kp_refresh_run_start (self, NULL, NULL);
  return G_SOURCE_REMOVE;
}
