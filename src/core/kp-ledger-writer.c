/* kp-ledger-writer.c: the ledger's writer thread, its queue and retries
 *
 * Rows are written by a thread of their own, on its own connection, so that
 * sqlite's work (and, now and then, a WAL checkpoint) never runs on the main
 * loop. Rows that arrive together share one transaction; each request hears
 * back once its row is committed. When the disk or the file fails (full,
 * read-only, gone), the rows wait in memory, up to max_pending, the newest
 * kept; the writer tries again with a growing delay, on a fresh connection,
 * and #KpLedger:problem says what is wrong until a write works.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include <string.h>

#include <sqlite3.h>

#include "kp-ledger-internal.h"
#include "kp-ledger-private.h"

/* Pushed last: the writer ends after the rows queued before it. */
static Job stop_job;

/* The ledger's thread: the owner is cleared there, after the writer ended. */
static gboolean
emit_refusals_written (gpointer data)
{
  KpLedger **owner = data;

  if (*owner != NULL)
    kp_ledger_emit_refusals_written (*owner);
  return G_SOURCE_REMOVE;
}

/* Writer thread: tells the ledger's thread that refusals were committed;
 * never runs the signal here, even while the ledger is being finalized.
 */
static void
tell_refusals_written (KpLedger *self)
{
  g_autoptr(GSource) source = g_idle_source_new ();

  g_source_set_priority (source, G_PRIORITY_DEFAULT);
  g_source_set_callback (source, emit_refusals_written, g_atomic_rc_box_acquire (self->owner),
                         g_atomic_rc_box_release);
  g_source_set_static_name (source, "[keypool] refusals written");
  g_source_attach (source, self->context);
}

static void
job_free (Job *job)
{
  kp_ledger_request_row_clear (&job->row);
  g_clear_pointer (&job->refusal, kp_refusal_row_free);
  g_clear_pointer (&job->state, kp_credential_row_free);
  g_clear_pointer (&job->attempts, g_array_unref);
  g_clear_object (&job->task);
  if (job->op_data_free != NULL)
    g_clear_pointer (&job->op_data, job->op_data_free);
  g_free (job->op_key);
  g_free (job);
}

static void
attempt_row_clear (gpointer data)
{
  KpAttemptRow *attempt = data;

  g_free (attempt->provider);
  g_free (attempt->failure);
}

typedef struct
{
  KpLedger        **owner;   /* the ledger's rc box: NULL once it is finalized */
  KpLedgerOpSettled settled;
  gpointer          data;
  GDestroyNotify    data_free;
} Settled;

static void
settled_free (gpointer data)
{
  Settled *settled = data;

  g_atomic_rc_box_release (settled->owner);
  if (settled->data_free != NULL)
    settled->data_free (settled->data);
  g_free (settled);
}

/* The ledger's thread, holding no reference (see apply_write_problem()). */
static gboolean
run_settled (gpointer data)
{
  Settled *settled = data;

  if (*settled->owner != NULL)
    settled->settled (*settled->owner, settled->data);
  return G_SOURCE_REMOVE;
}

/* Writer thread: an op's fate is known; its data goes to the ledger's
 * thread with the news.
 */
static Settled *
take_settled (KpLedger *self,
              Job      *job)
{
  Settled *settled = g_new0 (Settled, 1);

  settled->owner = g_atomic_rc_box_acquire (self->owner);
  settled->settled = job->op_settled;
  settled->data = g_steal_pointer (&job->op_data);
  settled->data_free = job->op_data_free;
  job->op_settled = NULL;
  return settled;
}

static void
tell_settled (KpLedger *self,
              Job      *job)
{
  g_autoptr(GSource) source = NULL;

  if (job->op_settled == NULL)
    return;
  source = g_idle_source_new ();
  g_source_set_priority (source, G_PRIORITY_DEFAULT);
  g_source_set_callback (source, run_settled, take_settled (self, job), settled_free);
  g_source_set_static_name (source, "[keypool] ledger write settled");
  g_source_attach (source, self->context);
}

/* What one finished job tells its caller, on the ledger's thread. */
typedef struct
{
  Settled *settled;   /* an op's news, or NULL */
  GTask   *task;      /* its caller, or NULL */
  gint64   result;    /* an op's answer */
  gboolean is_op;
} Finished;

typedef struct
{
  GArray *finished;   /* of Finished */
  GError *error;      /* the batch's, or NULL */
} FinishedBatch;

static void
finished_batch_free (gpointer data)
{
  FinishedBatch *batch = data;

  for (guint i = 0; i < batch->finished->len; i++)
    {
      Finished *finished = &g_array_index (batch->finished, Finished, i);

      g_clear_pointer (&finished->settled, settled_free);
      g_clear_object (&finished->task);
    }
  g_array_unref (batch->finished);
  g_clear_error (&batch->error);
  g_free (batch);
}

/* The ledger's thread: each caller of the batch learns how its row went,
 * once, in the order the jobs were queued. A task returned here, on its
 * own context, calls back at once or in an idle of this thread; its last
 * reference goes here too, never on the writer (the task holds the ledger,
 * which the writer must not finalize: it would join itself).
 */
static gboolean
run_finished (gpointer data)
{
  FinishedBatch *batch = data;

  for (guint i = 0; i < batch->finished->len; i++)
    {
      Finished *finished = &g_array_index (batch->finished, Finished, i);

      if (finished->settled != NULL)
        run_settled (finished->settled);
      if (finished->task == NULL)
        continue;
      if (batch->error != NULL)
        g_task_return_error (finished->task, g_error_copy (batch->error));
      else if (finished->is_op)
        g_task_return_int (finished->task, finished->result);
      else
        g_task_return_boolean (finished->task, TRUE);
    }
  return G_SOURCE_REMOVE;
}

/* Writer thread: the jobs' callers hear of them through ONE source on the
 * ledger's thread. A source attached from another thread wakes that
 * thread's loop (an eventfd write and one more iteration each); a task
 * returned from here would take two of them per row.
 */
static void
finish_jobs (KpLedger     *self,
             GPtrArray    *jobs,
             const GError *error)
{
  gboolean pending = g_error_matches (error, KP_LEDGER_ERROR, KP_LEDGER_ERROR_PENDING);
  FinishedBatch *batch = NULL;
  g_autoptr(GSource) source = NULL;

  for (guint i = 0; i < jobs->len; i++)
    {
      Job *job = g_ptr_array_index (jobs, i);
      Finished finished = { NULL, NULL, 0, job->op != NULL };

      if (job->op != NULL && !pending && job->op_settled != NULL)
        finished.settled = take_settled (self, job);
      /* Its caller waits for the answer, not for news that it waits. */
      if (job->task != NULL && !(pending && job->op_answer))
        {
          finished.task = g_steal_pointer (&job->task);
          finished.result = job->op_result;
        }
      if (finished.settled == NULL && finished.task == NULL)
        continue;
      if (batch == NULL)
        {
          batch = g_new0 (FinishedBatch, 1);
          batch->finished = g_array_new (FALSE, FALSE, sizeof (Finished));
          batch->error = error != NULL ? g_error_copy (error) : NULL;
        }
      g_array_append_val (batch->finished, finished);
    }

  if (batch == NULL)
    return;
  source = g_idle_source_new ();
  g_source_set_priority (source, G_PRIORITY_DEFAULT);
  g_source_set_callback (source, run_finished, batch, finished_batch_free);
  g_source_set_static_name (source, "[keypool] ledger rows finished");
  g_source_attach (source, self->context);
}

static gboolean
write_batch (KpLedger   *writer,
             KpLedger   *self,
             GPtrArray  *jobs,
             GError    **error)
{
  gboolean refusals = FALSE;

  if (g_atomic_int_get (&self->fail_writes))
    {
      g_set_error (error, KP_LEDGER_ERROR, KP_LEDGER_ERROR_QUERY,
                   "Cannot record requests in %s: database or disk is full", self->path);
      return FALSE;
    }

  if (!kp_ledger_run (writer, "BEGIN IMMEDIATE", "record requests", error))
    return FALSE;
  for (guint i = 0; i < jobs->len; i++)
    {
      Job *job = g_ptr_array_index (jobs, i);
      gboolean written;

      if (job->refusal != NULL)
        {
          written = kp_ledger_insert_refusal (writer, job->refusal, job->merge, error);
          refusals = TRUE;
        }
      else if (job->state != NULL)
        written = kp_ledger_insert_state (writer, job->state, error);
      else if (job->op != NULL)
        written = job->op (writer, job->op_data, &job->op_result, error);
      else
        written = kp_ledger_insert_request (writer, &job->row,
                                            (const KpAttemptRow *)(gpointer)job->attempts->data,
                                            job->attempts->len, error);
      if (!written)
        {
          sqlite3_exec (writer->db, "ROLLBACK", NULL, NULL, NULL);
          return FALSE;
        }
    }
  if (!kp_ledger_run (writer, "COMMIT", "record requests", error))
    {
      sqlite3_exec (writer->db, "ROLLBACK", NULL, NULL, NULL);
      return FALSE;
    }
  if (refusals)
    tell_refusals_written (self);
  return TRUE;
}

/* Another connection holds the write lock. */
static gboolean
is_busy (KpLedger *writer)
{
  int code = sqlite3_errcode (writer->db) & 0xff;

  return code == SQLITE_BUSY || code == SQLITE_LOCKED;
}

/* The row itself is at fault (a constraint, a value sqlite refuses), not
 * the disk or the file: writing it again would fail again.
 */
static gboolean
row_at_fault (KpLedger *writer)
{
  switch (sqlite3_errcode (writer->db) & 0xff)
    {
    case SQLITE_CONSTRAINT:
    case SQLITE_MISMATCH:
    case SQLITE_TOOBIG:
    case SQLITE_RANGE:
      return TRUE;
    default:
      return FALSE;
    }
}

typedef struct
{
  KpLedger **owner;    /* the ledger's rc box: NULL once it is finalized */
  char      *problem;  /* NULL: rows are written again */
} ProblemUpdate;

static void
problem_update_free (gpointer data)
{
  ProblemUpdate *update = data;

  g_atomic_rc_box_release (update->owner);
  g_free (update->problem);
  g_free (update);
}

/* The ledger's thread. It holds no reference: taking one here could make
 * this the last one, and a ledger must never be finalized by its writer.
 */
static gboolean
apply_write_problem (gpointer data)
{
  ProblemUpdate *update = data;
  KpLedger *self = *update->owner;

  if (self == NULL)
    return G_SOURCE_REMOVE;

  g_free (self->write_problem);
  self->write_problem = g_strdup (update->problem);
  /* A row written means the file takes writes again. */
  if (update->problem == NULL && self->open_read_only)
    {
      g_clear_pointer (&self->open_problem, g_free);
      self->open_read_only = FALSE;
    }
  kp_ledger_update_problem (self);
  return G_SOURCE_REMOVE;
}

/* Writer thread: tells the ledger's thread what is wrong now. Always
 * through a source on that thread's context, never run here: invoking the
 * context from this thread could run the update (and drop the ledger's last
 * reference) on the writer itself, which then would have to join itself.
 */
static void
tell_write_problem (KpLedger   *self,
                    const char *problem)
{
  ProblemUpdate *update = g_new0 (ProblemUpdate, 1);
  g_autoptr(GSource) source = g_idle_source_new ();

  update->owner = g_atomic_rc_box_acquire (self->owner);
  update->problem = g_strdup (problem);
  g_source_set_priority (source, G_PRIORITY_DEFAULT);
  g_source_set_callback (source, apply_write_problem, update, problem_update_free);
  g_source_set_static_name (source, "[keypool] ledger problem");
  g_source_attach (source, self->context);
}

/* Writes every row that waits. Rows the database refuses for what they are
 * fail alone; when the disk or the file fails, every row stays in @jobs.
 *
 * Returns: %TRUE when nothing is left to write
 */
static gboolean
write_jobs (KpLedger   *self,
            KpLedger  **writer,
            GPtrArray  *jobs,
            gboolean    stopping,
            GError    **error)
{
  if (*writer == NULL)
    {
      *writer = kp_ledger_open_connection (self->path, FALSE, error);
      if (*writer == NULL)
        return FALSE;
      kp_ledger_watch_writer_wal (self, *writer);
    }
  /* Rows wait for a lock only briefly, and their requests with them; the
   * last ones, before Keypool stops, as long as the main connection would.
   */
  sqlite3_busy_timeout ((*writer)->db, stopping ? BUSY_TIMEOUT_MS : WRITER_BUSY_TIMEOUT_MS);

  if (write_batch (*writer, self, jobs, error))
    {
      /* Idle before the callers hear of it: a caller may write the next
       * row itself at once (kp_ledger_try_add_request_now()).
       */
      g_async_queue_lock (self->queue);
      self->writer_busy = FALSE;
      g_async_queue_unlock (self->queue);
      finish_jobs (self, jobs, NULL);
      g_ptr_array_set_size (jobs, 0);
      return TRUE;
    }
  if (!row_at_fault (*writer))
    return FALSE;
  g_clear_error (error);

  /* One bad row must not take the others with it. */
  for (guint i = 0; i < jobs->len;)
    {
      g_autoptr(GPtrArray) one = g_ptr_array_new ();
      g_autoptr(GError) row_error = NULL;

      g_ptr_array_add (one, g_ptr_array_index (jobs, i));
      if (write_batch (*writer, self, one, &row_error))
        finish_jobs (self, one, NULL);
      else if (row_at_fault (*writer))
        {
          g_debug ("A row was refused: %s", row_error->message);
          finish_jobs (self, one, row_error);
        }
      else
        {
          g_propagate_error (error, g_steal_pointer (&row_error));
          return FALSE;
        }
      g_ptr_array_remove_index (jobs, i);
    }
  return TRUE;
}

/* Writer thread: a key's newer state replaces one that still waits, so
 * a key failing again and again while writes fail is one row to write;
 * so does an op of the same key (a setting, a provider's model list)
 * whose caller already heard that it waits.
 */
static gboolean
replace_waiting (KpLedger  *self,
                 GPtrArray *jobs,
                 Job       *job)
{
  if (job->state == NULL && job->op_key == NULL)
    return FALSE;

  for (guint i = jobs->len; i > 0; i--)
    {
      Job *waiting = g_ptr_array_index (jobs, i - 1);

      if (job->state != NULL && waiting->state != NULL && waiting->state->id == job->state->id)
        {
          g_assert (waiting->task == NULL);
          /* The page of a key waiting for its owner outlives a newer save
           * of the same state without it.
           */
          if (job->state->user_url == NULL && g_strcmp0 (job->state->state, "needs_user") == 0)
            job->state->user_url = g_steal_pointer (&waiting->state->user_url);
        }
      else if (!(job->op_key != NULL && waiting->task == NULL &&
                 g_strcmp0 (waiting->op_key, job->op_key) == 0))
        continue;
      if (waiting->op != NULL)
        tell_settled (self, waiting);
      job_free (waiting);
      jobs->pdata[i - 1] = job;
      return TRUE;
    }
  return FALSE;
}

/* A request row or a refusal: what may be dropped when too many wait. */
static gboolean
is_row (Job *job)
{
  return job->state == NULL && job->op == NULL;
}

/* Ops whose caller waits for the answer, not for news that they wait: each
 * is tried at once, even while writes fail; after a failure it is answered
 * with the error and forgotten, unless another program holds the lock and
 * it has waited less than a caller on the main connection would.
 */
static gboolean
has_answer_op (GPtrArray *jobs)
{
  for (guint i = 0; i < jobs->len; i++)
    if (((Job *)g_ptr_array_index (jobs, i))->op_answer)
      return TRUE;
  return FALSE;
}

static void
fail_answer_ops (KpLedger     *self,
                 GPtrArray    *jobs,
                 gboolean      busy,
                 const GError *error)
{
  g_autoptr(GPtrArray) failed = g_ptr_array_new_with_free_func ((GDestroyNotify)job_free);
  gint64 now = g_get_monotonic_time ();

  for (guint i = 0; i < jobs->len;)
    {
      Job *job = g_ptr_array_index (jobs, i);

      if (job->op_answer && (!busy || now - job->queued_us >= BUSY_TIMEOUT_MS * 1000))
        g_ptr_array_add (failed, g_ptr_array_steal_index (jobs, i));
      else
        i++;
    }
  finish_jobs (self, failed, error);
}

static gpointer
writer_thread (gpointer data)
{
  KpLedger *self = data;
  g_autoptr(GPtrArray) jobs = g_ptr_array_new_with_free_func ((GDestroyNotify)job_free);
  g_autoptr(KpLedger) writer = NULL;
  gboolean stopping = FALSE;
  guint delay_ms = 0;       /* 0 while writes work */
  gint64 next_try = 0;      /* monotonic µs of the next retry */
  guint64 lost = 0;
  gint64 failing_since = 0; /* monotonic µs of the first failed try; 0 while writes work */
  gboolean busy;
  guint n_rows;

  while (!stopping || jobs->len > 0)
    {
      gint64 now = g_get_monotonic_time ();
      Job *job;

      /* The writer is idle while it waits with nothing in hand: then the
       * ledger's thread may write a row itself (kp_ledger_try_add_request_now()).
       */
      g_async_queue_lock (self->queue);
      if (jobs->len == 0)
        self->writer_busy = FALSE;
      if (stopping)
        job = NULL;
      else if (delay_ms == 0 || jobs->len == 0)
        job = g_async_queue_pop_unlocked (self->queue);
      else
        job = g_async_queue_timeout_pop_unlocked (self->queue, MAX (next_try - now, 0));
      if (job != NULL)
        self->writer_busy = TRUE;
      g_async_queue_unlock (self->queue);

      /* Take whatever else is waiting: one commit for all of it. */
      while (job != NULL)
        {
          if (job == &stop_job)
            stopping = TRUE;
          else if (!replace_waiting (self, jobs, job))
            g_ptr_array_add (jobs, job);
          job = g_async_queue_try_pop (self->queue);
        }

      /* Keep the newest rows when too many wait. Keys' states are few (one
       * per key, see replace_waiting()) and stay: a restart must find them;
       * so do ops, which the user or a refresh made, a few at a time.
       */
      n_rows = 0;
      for (guint i = 0; i < jobs->len; i++)
        if (is_row (g_ptr_array_index (jobs, i)))
          n_rows++;
      if (n_rows > self->max_pending)
        {
          g_autoptr(GPtrArray) dropped = g_ptr_array_new_with_free_func ((GDestroyNotify)job_free);
          g_autoptr(GError) too_many = g_error_new (KP_LEDGER_ERROR, KP_LEDGER_ERROR_QUERY,
                                                    "Too many requests wait to be recorded; "
                                                    "the oldest are dropped");

          for (guint i = 0; n_rows > self->max_pending;)
            {
              if (!is_row (g_ptr_array_index (jobs, i)))
                i++;
              else
                {
                  g_ptr_array_add (dropped, g_ptr_array_steal_index (jobs, i));
                  n_rows--;
                }
            }
          finish_jobs (self, dropped, too_many);
          lost += dropped->len;
        }

      if (jobs->len == 0)
        continue;

      if (delay_ms != 0 && !stopping && g_get_monotonic_time () < next_try &&
          !has_answer_op (jobs))
        {
          /* Rows that arrive while writes fail wait with the others. */
          g_autoptr(GError) pending = g_error_new (KP_LEDGER_ERROR, KP_LEDGER_ERROR_PENDING,
                                                   "The request waits in memory to be recorded");
          finish_jobs (self, jobs, pending);
          continue;
        }

      {
        g_autoptr(GError) error = NULL;
        g_autoptr(GError) pending = NULL;
        g_autofree char *problem = NULL;
        g_autofree char *lost_text = NULL;

        if (write_jobs (self, &writer, jobs, stopping, &error))
          {
            if (delay_ms != 0)
              tell_write_problem (self, NULL);
            delay_ms = 0;
            failing_since = 0;
            lost = 0;
            continue;
          }

        /* Another program holds the write lock: the rows wait, and are
         * tried again soon on the same connection; that is a problem for
         * the user only once it lasts. The disk or the file failed: every
         * row waits, and the connection is opened anew for the next try (a
         * file made writable again).
         */
        busy = writer != NULL && is_busy (writer);
        if (!busy)
          g_clear_object (&writer);
        if (failing_since == 0)
          failing_since = g_get_monotonic_time ();
        fail_answer_ops (self, jobs, busy && !stopping, error);
        if (stopping)
          {
            if (jobs->len > 0)
              g_warning ("%u requests could not be recorded before Keypool stopped: %s",
                         jobs->len, error->message);
            finish_jobs (self, jobs, error);
            break;
          }

        if (jobs->len == 0)
          {
            if (delay_ms == 0)
              failing_since = 0;
            continue;
          }
        pending = g_error_new (KP_LEDGER_ERROR, KP_LEDGER_ERROR_PENDING,
                               "The request waits in memory to be recorded: %s", error->message);
        finish_jobs (self, jobs, pending);
        delay_ms = delay_ms == 0 ? self->retry_min_ms
                                 : MIN (delay_ms * 2, busy ? MIN (self->retry_max_ms, BUSY_RETRY_MAX_MS)
                                                           : self->retry_max_ms);
        next_try = g_get_monotonic_time () + (gint64)delay_ms * 1000;
        if (busy && g_get_monotonic_time () - failing_since < BUSY_PROBLEM_AFTER_MS * 1000)
          continue;
        if (lost > 0)
          lost_text = g_strdup_printf (" %" G_GUINT64_FORMAT " older ones were dropped.", lost);
        problem = g_strdup_printf ("Requests are not being recorded. %s. %u wait in memory and "
                                   "are written when the database takes them again.%s",
                                   error->message, jobs->len, lost_text ? lost_text : "");
        tell_write_problem (self, problem);
      }
    }

  return NULL;
}

/* The ledger's finalize: rows already handed over are written first. */
void
kp_ledger_stop_writer (KpLedger *self)
{
  if (self->writer == NULL)
    return;
  g_async_queue_push (self->queue, &stop_job);
  g_thread_join (self->writer);
  self->writer = NULL;
}

static void
push_job (KpLedger *self,
          Job      *job)
{
  if (self->writer == NULL)
    {
      self->queue = g_async_queue_new ();
      self->writer = g_thread_new ("keypool-ledger", writer_thread, self);
    }
  g_async_queue_push (self->queue, job);
}

/* Queues an op for the writer thread; @task (nullable, taken) hears back. */
void
kp_ledger_push_op (KpLedger          *self,
                   KpLedgerOpFunc     op,
                   gpointer           op_data,
                   GDestroyNotify     op_data_free,
                   KpLedgerOpSettled  op_settled,
                   const char        *op_key,
                   gboolean           answer,
                   GTask             *task)
{
  Job *job = g_new0 (Job, 1);

  job->op = op;
  job->op_data = op_data;
  job->op_data_free = op_data_free;
  job->op_settled = op_settled;
  job->op_key = g_strdup (op_key);
  job->op_answer = answer;
  job->task = task;
  job->queued_us = g_get_monotonic_time ();
  push_job (self, job);
}

/**
 * kp_ledger_add_request_async:
 * @self: a #KpLedger
 * @row: the request; copied
 * @attempts: (array length=n_attempts): its attempts; copied
 * @n_attempts: how many
 * @callback: called on this thread's main context once the row is committed,
 *   or with %KP_LEDGER_ERROR_PENDING when writes fail and the row waits in
 *   memory (bounded) to be written, with its own time, once they work again
 * @user_data: data for @callback
 *
 * Like kp_ledger_add_request(), without blocking the caller.
 */
void
kp_ledger_add_request_async (KpLedger            *self,
                             const KpRequestRow  *row,
                             const KpAttemptRow  *attempts,
                             guint                n_attempts,
                             GAsyncReadyCallback  callback,
                             gpointer             user_data)
{
  Job *job;

  g_return_if_fail (KP_IS_LEDGER (self));
  g_return_if_fail (row != NULL);

  job = g_new0 (Job, 1);
  job->row = *row;
  job->row.request_id = g_strdup (row->request_id);
  job->row.api = g_strdup (row->api);
  job->row.model = g_strdup (row->model);
  job->row.provider = g_strdup (row->provider);
  job->row.upstream_model = g_strdup (row->upstream_model);
  job->row.outcome = g_strdup (row->outcome);
  job->row.error = g_strdup (row->error);
  job->row.cost_source = g_strdup (row->cost_source);
  job->row.client_address = g_strdup (row->client_address);
  job->attempts = g_array_sized_new (FALSE, TRUE, sizeof (KpAttemptRow), n_attempts);
  g_array_set_clear_func (job->attempts, attempt_row_clear);
  for (guint i = 0; i < n_attempts; i++)
    {
      KpAttemptRow copy = attempts[i];

      copy.provider = g_strdup (attempts[i].provider);
      copy.failure = g_strdup (attempts[i].failure);
      g_array_append_val (job->attempts, copy);
    }
  job->task = g_task_new (self, NULL, callback, user_data);
  g_task_set_source_tag (job->task, kp_ledger_add_request_async);
  push_job (self, job);
}

/**
 * kp_ledger_add_refusal:
 * @self: a #KpLedger
 * @row: the refusal; copied
 * @merge: add @row's count to the newest row of the same method, path,
 *   status, code and client, when there is one, instead of a new row
 *
 * Queues @row for the writer thread and returns at once. The table keeps
 * the newest 1,000 rows. #KpLedger::refusals-written follows the commit.
 */
void
kp_ledger_add_refusal (KpLedger           *self,
                       const KpRefusalRow *row,
                       gboolean            merge)
{
  Job *job;

  g_return_if_fail (KP_IS_LEDGER (self));
  g_return_if_fail (row != NULL);

  job = g_new0 (Job, 1);
  job->refusal = g_new0 (KpRefusalRow, 1);
  *job->refusal = *row;
  job->refusal->method = g_strdup (row->method);
  job->refusal->path = g_strdup (row->path);
  job->refusal->code = g_strdup (row->code);
  job->refusal->client = g_strdup (row->client);
  job->merge = merge;
  /* No task: nobody waits for a refusal, and the ledger may go meanwhile
   * (its finalize writes what is queued).
   */
  push_job (self, job);
}

/**
 * kp_ledger_save_credential_state:
 * @self: a #KpLedger
 * @id: the key
 * @state: "ok", "cooling", "exhausted", "invalid" or "needs_user"
 * @until: unix seconds; 0 = until something changes
 * @last_error: (nullable): what went wrong, without the secret
 *
 * Queues the key's state for the writer thread and returns at once, so a
 * failing request never waits for the database. It is written in order
 * with the rows queued before it; a newer state of the same key replaces
 * one that still waits; while writes fail it waits in memory, and the
 * ledger's finalize writes it. A key removed meanwhile is skipped.
 */
void
kp_ledger_save_credential_state (KpLedger   *self,
                                 gint64      id,
                                 const char *state,
                                 gint64      until,
                                 const char *last_error)
{
  Job *job;

  g_return_if_fail (KP_IS_LEDGER (self));
  g_return_if_fail (id > 0);
  g_return_if_fail (state != NULL);

  job = g_new0 (Job, 1);
  job->state = g_new0 (KpCredentialRow, 1);
  job->state->id = id;
  job->state->state = g_strdup (state);
  job->state->state_until = until;
  job->state->last_error = g_strdup (last_error);
  push_job (self, job);
}

/* Whether @url may be kept as the page where an account's owner acts:
 * http(s), bounded, without a user name or password, printable ASCII.
 */
static gboolean
user_url_is_keepable (const char *url)
{
  g_autoptr(GUri) uri = NULL;

  if (url == NULL || strlen (url) > KP_LEDGER_MAX_USER_URL)
    return FALSE;
  for (const char *c = url; *c != '\0'; c++)
    if (*c <= ' ' || *c >= 0x7f)
      return FALSE;
  uri = g_uri_parse (url, G_URI_FLAGS_NONE, NULL);
  return uri != NULL &&
         (g_strcmp0 (g_uri_get_scheme (uri), "https") == 0 ||
          g_strcmp0 (g_uri_get_scheme (uri), "http") == 0) &&
         g_uri_get_userinfo (uri) == NULL && g_uri_get_host (uri) != NULL &&
         *g_uri_get_host (uri) != '\0';
}

/**
 * kp_ledger_save_credential_needs_user:
 * @self: a #KpLedger
 * @id: the key (an account)
 * @url: (nullable): the page where its owner acts (Google's
 *   VALIDATION_REQUIRED link, ...): an http(s) URL of at most
 *   %KP_LEDGER_MAX_USER_URL bytes, else it is not kept
 * @reason: (nullable): why, in words, without the secret; cut to
 *   %KP_LEDGER_MAX_USER_REASON bytes
 *
 * Queues the "needs_user" state like kp_ledger_save_credential_state().
 * The caller scrubs the account's secrets out of @url and @reason.
 */
void
kp_ledger_save_credential_needs_user (KpLedger   *self,
                                      gint64      id,
                                      const char *url,
                                      const char *reason)
{
  Job *job;

  g_return_if_fail (KP_IS_LEDGER (self));
  g_return_if_fail (id > 0);

  job = g_new0 (Job, 1);
  job->state = g_new0 (KpCredentialRow, 1);
  job->state->id = id;
  job->state->state = g_strdup ("needs_user");
  job->state->last_error = kp_ledger_bound_reason (reason);
  if (user_url_is_keepable (url))
    job->state->user_url = g_strdup (url);
  push_job (self, job);
}

/* Before the first row. */
void
kp_ledger_set_retry_policy (KpLedger *self,
                            guint     min_delay_ms,
                            guint     max_delay_ms,
                            guint     max_pending)
{
  g_return_if_fail (KP_IS_LEDGER (self));
  g_return_if_fail (self->writer == NULL);
  g_return_if_fail (min_delay_ms > 0 && min_delay_ms <= max_delay_ms && max_pending > 0);

  self->retry_min_ms = min_delay_ms;
  self->retry_max_ms = max_delay_ms;
  self->max_pending = max_pending;
}

/* Every write fails as a full disk would, until told otherwise. */
void
kp_ledger_set_fail_writes (KpLedger *self,
                           gboolean  fail)
{
  g_return_if_fail (KP_IS_LEDGER (self));
  g_atomic_int_set (&self->fail_writes, fail ? 1 : 0);
}

gboolean
kp_ledger_add_request_finish (KpLedger      *self,
                              GAsyncResult  *result,
                              GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}
