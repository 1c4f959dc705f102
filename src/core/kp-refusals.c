/* kp-refusals.c: a trace of the requests Keypool refuses, bounded
 *
 * A request Keypool refuses before any relay sees it (a bad token, an
 * unknown path, a wrong method, a Host or Origin it does not trust, a body
 * too large) is written to the ledger, so that a user whose tool "does
 * nothing" can see why. What is written comes from whoever sent the
 * request: the path and the method are cut short and cleaned, and nothing
 * else of the request is kept (no body, no header, no token).
 *
 * A flood of refusals must not become a flood of writes. The first refusal
 * of a kind (method, path, status, code and client) is written at once;
 * repeats within KP_REFUSALS_WINDOW_MS are counted in memory and added to
 * that row when the window ends. At most KP_REFUSALS_MAX_KINDS kinds are
 * kept apart in a window; refusals of further kinds are counted together
 * in one row. So each window writes at most about twice as many rows as
 * there are kinds, whatever the rate.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include <string.h>

#include "kp-refusals.h"

#define METHOD_MAX 16
#define CLIENT_MAX 64
#define WINDOW_US  ((gint64)KP_REFUSALS_WINDOW_MS * 1000)

typedef struct
{
  KpRefusalRow row;         /* the kind, and its repeats not yet written */
  gint64       started_us;  /* monotonic: when its row was written */
} Kind;

struct _KpRefusals
{
  GObject     parent_instance;

  KpLedger   *ledger;
  GHashTable *kinds;      /* key → Kind */
  KpRefusalRow overflow;  /* refusals of kinds past the limit, counted together */
  guint       flush_id;
};

G_DEFINE_FINAL_TYPE (KpRefusals, kp_refusals, G_TYPE_OBJECT)

static void
kind_free (Kind *kind)
{
  g_free (kind->row.method);
  g_free (kind->row.path);
  g_free (kind->row.code);
  g_free (kind->row.client);
  g_free (kind);
}

static void
kp_refusals_dispose (GObject *object)
{
  KpRefusals *self = KP_REFUSALS (object);

  /* Repeats counted so far are written before Keypool goes. */
  if (self->ledger != NULL)
    kp_refusals_flush (self);
  g_clear_handle_id (&self->flush_id, g_source_remove);
  g_clear_object (&self->ledger);

  G_OBJECT_CLASS (kp_refusals_parent_class)->dispose (object);
}

static void
kp_refusals_finalize (GObject *object)
{
  KpRefusals *self = KP_REFUSALS (object);

  g_clear_pointer (&self->kinds, g_hash_table_unref);
  g_free (self->overflow.code);

  G_OBJECT_CLASS (kp_refusals_parent_class)->finalize (object);
}

static void
kp_refusals_class_init (KpRefusalsClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = kp_refusals_dispose;
  object_class->finalize = kp_refusals_finalize;
}

static void
kp_refusals_init (KpRefusals *self)
{
  self->kinds = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify)kind_free);
  self->overflow.code = g_strdup ("too_many_kinds");
}

/**
 * kp_refusals_new:
 * @ledger: where the refusals are written
 *
 * Returns: (transfer full): a new #KpRefusals
 */
KpRefusals *
kp_refusals_new (KpLedger *ledger)
{
  KpRefusals *self;

  g_return_val_if_fail (KP_IS_LEDGER (ledger), NULL);

  self = g_object_new (KP_TYPE_REFUSALS, NULL);
  self->ledger = g_object_ref (ledger);
  return self;
}

/**
 * kp_refusals_clean:
 * @text: (nullable): text from a client
 * @max_bytes: the most bytes to keep, at least 4
 *
 * Makes text a client sent fit to keep and to show: valid UTF-8, no control
 * or formatting characters (a terminal would obey them), and no longer than
 * @max_bytes, ending in “…” when cut.
 *
 * Returns: (transfer full) (nullable): the clean text
 */
char *
kp_refusals_clean (const char *text,
                   gsize       max_bytes)
{
  g_autofree char *valid = NULL;
  GString *clean;
  gsize length;
  gsize fits = 0;   /* bytes that leave room for the ellipsis */
  gboolean cut;

  g_return_val_if_fail (max_bytes >= 4, NULL);

  if (text == NULL)
    return NULL;

  length = strnlen (text, max_bytes + 1);
  cut = length > max_bytes;
  valid = g_utf8_make_valid (text, length);
  clean = g_string_sized_new (MIN (strlen (valid), max_bytes) + 1);

  for (const char *p = valid; *p != '\0'; p = g_utf8_next_char (p))
    {
      gunichar c = g_utf8_get_char (p);

      switch (g_unichar_type (c))
        {
        case G_UNICODE_CONTROL:
        case G_UNICODE_FORMAT:
        case G_UNICODE_LINE_SEPARATOR:
        case G_UNICODE_PARAGRAPH_SEPARATOR:
          c = '?';
          break;
        default:
          break;
        }
      if (clean->len + g_unichar_to_utf8 (c, NULL) > max_bytes)
        {
          cut = TRUE;
          break;
        }
      g_string_append_unichar (clean, c);
      if (clean->len + strlen ("…") <= max_bytes)
        fits = clean->len;
    }

  if (cut)
    {
      g_string_truncate (clean, fits);
      g_string_append (clean, "…");
    }
  return g_string_free (clean, FALSE);
}

/* A repeat, counted until the window ends. */
static void
count_repeat (KpRefusalRow *row,
              gint64        now_ms)
{
  if (row->count == 0)
    row->time_ms = now_ms;
  row->count++;
  row->last_ms = now_ms;
}

static void
write_repeats (KpRefusals   *self,
               KpRefusalRow *row)
{
  if (row->count == 0)
    return;
  kp_ledger_add_refusal (self->ledger, row, TRUE);
  row->count = 0;
}

/* Writes the repeats, and forgets the kinds whose window began before
 * @forget_before_us (monotonic).
 */
static void
sweep (KpRefusals *self,
       gint64      forget_before_us)
{
  GHashTableIter iter;
  Kind *kind;

  g_hash_table_iter_init (&iter, self->kinds);
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *)&kind))
    {
      write_repeats (self, &kind->row);
      if (kind->started_us <= forget_before_us)
        g_hash_table_iter_remove (&iter);
    }
  write_repeats (self, &self->overflow);
}

static gboolean
on_flush (gpointer user_data)
{
  KpRefusals *self = user_data;

  sweep (self, g_get_monotonic_time () - WINDOW_US);
  if (g_hash_table_size (self->kinds) > 0)
    return G_SOURCE_CONTINUE;
  self->flush_id = 0;
  return G_SOURCE_REMOVE;
}

static void
schedule_flush (KpRefusals *self)
{
  if (self->flush_id != 0)
    return;
  self->flush_id = g_timeout_add (KP_REFUSALS_WINDOW_MS, on_flush, self);
  g_source_set_static_name (g_main_context_find_source_by_id (NULL, self->flush_id),
                            "[keypool] refusals");
}

/**
 * kp_refusals_note:
 * @self: a #KpRefusals
 * @method: the request's method
 * @path: the path it asked for, without the query
 * @status: the HTTP status it was answered
 * @code: the error code it was answered
 * @client: (nullable): the client's address
 *
 * Notes one refusal; cheap enough to call for every one of a flood.
 */
void
kp_refusals_note (KpRefusals *self,
                  const char *method,
                  const char *path,
                  guint       status,
                  const char *code,
                  const char *client)
{
  g_autofree char *clean_method = NULL;
  g_autofree char *clean_path = NULL;
  g_autofree char *clean_client = NULL;
  g_autofree char *key = NULL;
  gint64 now_us = g_get_monotonic_time ();
  gint64 now_ms = g_get_real_time () / 1000;
  KpRefusalRow first = { 0 };
  Kind *kind;

  g_return_if_fail (KP_IS_REFUSALS (self));
  g_return_if_fail (code != NULL);

  clean_method = kp_refusals_clean (method, METHOD_MAX);
  clean_path = kp_refusals_clean (path, KP_REFUSALS_PATH_MAX);
  clean_client = kp_refusals_clean (client, CLIENT_MAX);
  /* Clean text has no control characters: \x1f cannot occur in a field. */
  key = g_strdup_printf ("%u\x1f%s\x1f%s\x1f%s\x1f%s", status, code,
                         clean_method ? clean_method : "", clean_path ? clean_path : "",
                         clean_client ? clean_client : "");

  kind = g_hash_table_lookup (self->kinds, key);
  if (kind != NULL && now_us - kind->started_us < WINDOW_US)
    {
      count_repeat (&kind->row, now_ms);
      return;
    }
  if (kind == NULL && g_hash_table_size (self->kinds) >= KP_REFUSALS_MAX_KINDS)
    sweep (self, now_us - WINDOW_US);
  if (kind == NULL && g_hash_table_size (self->kinds) >= KP_REFUSALS_MAX_KINDS)
    {
      count_repeat (&self->overflow, now_ms);
      return;
    }

  if (kind == NULL)
    {
      kind = g_new0 (Kind, 1);
      kind->row.method = g_steal_pointer (&clean_method);
      kind->row.path = g_steal_pointer (&clean_path);
      kind->row.status = status;
      kind->row.code = g_strdup (code);
      kind->row.client = g_steal_pointer (&clean_client);
      g_hash_table_insert (self->kinds, g_steal_pointer (&key), kind);
    }
  else
    write_repeats (self, &kind->row);

  /* A new window: its first refusal is written at once. */
  kind->started_us = now_us;
  first = kind->row;
  first.time_ms = now_ms;
  first.last_ms = now_ms;
  first.count = 1;
  kp_ledger_add_refusal (self->ledger, &first, FALSE);
  schedule_flush (self);
}

/**
 * kp_refusals_flush:
 * @self: a #KpRefusals
 *
 * Writes the repeats counted so far now rather than when their window ends.
 */
void
kp_refusals_flush (KpRefusals *self)
{
  g_return_if_fail (KP_IS_REFUSALS (self));

  sweep (self, G_MININT64);
}
