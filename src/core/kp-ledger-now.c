/* kp-ledger-now.c: a row written at once on the ledger's own thread
 *
 * A request alone in flight need not wait for two thread hand-offs (to the
 * writer thread and back): its row is committed on the ledger's own
 * connection when nothing is queued ahead of it and no lock would make the
 * main loop wait (see kp-gateway-relays.c for when its answer ends). Under
 * load, rows go to the writer thread (kp-ledger-writer.c), which commits
 * many at once.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include <sqlite3.h>

#include "kp-ledger-internal.h"

/* Checkpoints --------------------------------------------------------------
 *
 * sqlite copies the WAL back into the database (a checkpoint, with an
 * fsync) from whichever connection commits past WAL_CHECKPOINT_PAGES. That
 * must never be the main loop's: its connection only notes that the WAL is
 * full, and rows go to the writer thread until the writer's next commit
 * has checkpointed.
 */
#define WAL_CHECKPOINT_PAGES 1000

/* Writer thread. */
static int
writer_wal_hook (gpointer    data,
                 sqlite3    *db,
                 const char *name,
                 int         pages)
{
  KpLedger *self = data;

  if (pages >= WAL_CHECKPOINT_PAGES || g_atomic_int_get (&self->wal_full))
    {
      sqlite3_wal_checkpoint_v2 (db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
      g_atomic_int_set (&self->wal_full, FALSE);
    }
  return SQLITE_OK;
}

/* The ledger's thread, on its own connection. */
static int
main_wal_hook (gpointer    data,
               sqlite3    *db,
               const char *name,
               int         pages)
{
  KpLedger *self = data;

  if (pages >= WAL_CHECKPOINT_PAGES)
    g_atomic_int_set (&self->wal_full, TRUE);
  return SQLITE_OK;
}

/* The ledger's own connection never checkpoints (see above). */
void
kp_ledger_watch_wal (KpLedger *self)
{
  sqlite3_wal_hook (self->db, main_wal_hook, self);
}

/* The writer's connection checkpoints for both. */
void
kp_ledger_watch_writer_wal (KpLedger *self,
                            KpLedger *writer)
{
  sqlite3_wal_hook (writer->db, writer_wal_hook, self);
}

/**
 * kp_ledger_can_add_request_now:
 * @self: a #KpLedger
 *
 * Tells whether kp_ledger_try_add_request_now() would write at once: the
 * writer thread has nothing in hand or queued (so rows stay in order),
 * writes work and the WAL needs no checkpoint. Another program's lock is
 * found only by trying.
 *
 * Returns: %TRUE if a row may be written on this thread now
 */
gboolean
kp_ledger_can_add_request_now (KpLedger *self)
{
  gboolean idle = TRUE;

  g_return_val_if_fail (KP_IS_LEDGER (self), FALSE);

  if (self->open_read_only || self->write_problem != NULL ||
      g_atomic_int_get (&self->fail_writes) || g_atomic_int_get (&self->wal_full))
    return FALSE;
  if (self->queue != NULL)
    {
      g_async_queue_lock (self->queue);
      idle = !self->writer_busy && g_async_queue_length_unlocked (self->queue) <= 0;
      g_async_queue_unlock (self->queue);
    }
  return idle;
}

/**
 * kp_ledger_try_add_request_now:
 * @self: a #KpLedger
 * @row: the request
 * @attempts: (array length=n_attempts): its attempts
 * @n_attempts: how many
 *
 * Writes @row on the ledger's own connection, on this thread, when that
 * can be done at once (kp_ledger_can_add_request_now()) and no other
 * connection holds the write lock. A request that is alone in flight is
 * recorded sooner this way: its row needs no trip to the writer thread and
 * back. Under load, rows go through the writer, which commits many at
 * once.
 *
 * Returns: %TRUE when the row is committed; %FALSE when nothing was
 *   written, and the caller should queue the row with
 *   kp_ledger_add_request_async()
 */
gboolean
kp_ledger_try_add_request_now (KpLedger           *self,
                               const KpRequestRow *row,
                               const KpAttemptRow *attempts,
                               guint               n_attempts)
{
  g_autoptr(GError) error = NULL;
  gboolean written;

  g_return_val_if_fail (KP_IS_LEDGER (self), FALSE);
  g_return_val_if_fail (row != NULL, FALSE);

  if (!kp_ledger_can_add_request_now (self))
    return FALSE;

  /* Never wait for another program's lock here: the writer will. */
  sqlite3_busy_timeout (self->db, 0);
  written = kp_ledger_add_request (self, row, attempts, n_attempts, &error);
  sqlite3_busy_timeout (self->db, BUSY_TIMEOUT_MS);
  if (!written)
    g_debug ("A row goes to the writer thread: %s", error->message);
  return written;
}
