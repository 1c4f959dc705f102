/* fuzz-sse.c: the SSE scanner, over a whole buffer and resumed as the relay
 * resumes it when bytes arrive in pieces
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include "config.h"

#include <string.h>

#include "kp-sse.h"

#include "fuzz-common.h"

/* One scanned event, kept to compare the two ways of scanning. */
static void
add_event (GString          *events,
           const KpSseEvent *event,
           const char       *buf,
           gsize             used)
{
  g_assert (used > 0 && buf[used - 1] == '\n');
  g_assert (event->has_data || event->data->len == 0);
  if (event->name != NULL)
    g_assert (event->name >= buf && event->name + event->name_len <= buf + used);

  g_string_append_printf (events, "%d|%" G_GSIZE_FORMAT "|", event->has_data, event->name_len);
  if (event->name != NULL)
    g_string_append_len (events, event->name, event->name_len);
  g_string_append_printf (events, "|%" G_GSIZE_FORMAT "|", event->data->len);
  g_string_append_len (events, event->data->str, event->data->len);
}

/* Every event in @pending, as kp_relay_process_events() takes them; at the
 * end of the stream, a last event without its blank line too.
 */
static void
take_events (GByteArray *pending,
             gboolean    eof,
             KpSseEvent *event,
             GString    *events)
{
  const char *buf = pending->len > 0 ? (const char *)pending->data : "";
  gsize offset = 0;
  gsize used;

  while ((used = kp_sse_next_event (buf + offset, pending->len - offset, event)) > 0)
    {
      g_assert (used <= pending->len - offset);
      add_event (events, event, buf + offset, used);
      offset += used;
    }

  if (eof && offset < pending->len)
    {
      g_autoptr(GByteArray) tail = g_byte_array_new ();

      g_byte_array_append (tail, pending->data + offset, pending->len - offset);
      g_byte_array_append (tail, (const guint8 *)"\n\n", 2);
      used = kp_sse_next_event ((const char *)tail->data, tail->len, event);
      if (used > 0)
        add_event (events, event, (const char *)tail->data, used);
      offset = pending->len;
    }
  g_byte_array_remove_range (pending, 0, offset);
}

int
LLVMFuzzerInitialize (int    *argc,
                      char ***argv)
{
  fuzz_init ();
  return 0;
}

int
LLVMFuzzerTestOneInput (const guint8 *data,
                        size_t        size)
{
  g_autoptr(GString) whole = g_string_new (NULL);
  g_autoptr(GString) pieces = g_string_new (NULL);
  g_autoptr(GByteArray) pending = g_byte_array_new ();
  KpSseEvent event = { .data = g_string_new (NULL) };
  gsize step = 1;

  g_byte_array_append (pending, data, size);
  take_events (pending, TRUE, &event, whole);
  g_assert_cmpuint (pending->len, ==, 0);

  /* The same bytes in reads of 1, 2, 3, 5, 8, … bytes give the same events. */
  for (gsize offset = 0, last = 1; offset < size; )
    {
      gsize n = MIN (step, size - offset);
      gsize next = step + last;

      g_byte_array_append (pending, data + offset, n);
      offset += n;
      take_events (pending, offset == size, &event, pieces);
      last = step;
      step = next > 4096 ? 1 : next;
    }
  g_assert_cmpuint (pending->len, ==, 0);
  if (!g_string_equal (whole, pieces))
    g_error ("The events differ when the bytes arrive in pieces:\n%s\n----\n%s",
             whole->str, pieces->str);

  g_string_free (event.data, TRUE);
  return 0;
}
