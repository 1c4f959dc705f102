/* fuzz-event-stream.c: the AWS event-stream decoder, over a whole buffer and
 * resumed as a relay resumes it when bytes arrive in pieces
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include "config.h"

#include <string.h>

#include "codec/kp-event-stream.h"

#include "fuzz-common.h"

/* One decoded message, described to compare the two ways of decoding. */
static void
add_message (GString                    *found,
             const KpEventStreamMessage *message,
             const guint8               *buf,
             gsize                       used)
{
  g_assert (used >= KP_EVENT_STREAM_OVERHEAD && used <= KP_EVENT_STREAM_MAX_MESSAGE);
  g_assert (message->payload >= buf && message->payload + message->payload_len <= buf + used);
  g_assert (message->event_type == NULL ||
            g_utf8_validate (message->event_type, message->event_type_len, NULL));

  g_string_append_printf (found, "%s|%u|", kp_event_stream_message_type_to_string (message->type),
                          message->headers->len);
  for (guint i = 0; i < message->headers->len; i++)
    {
      const KpEventStreamHeader *header = &g_array_index (message->headers,
                                                          KpEventStreamHeader, i);

      g_assert (header->name_len > 0 && header->name_len <= 255);
      g_assert ((const guint8 *)header->name > buf &&
                (const guint8 *)header->name + header->name_len <= buf + used);
      if (header->bytes != NULL)
        g_assert (header->bytes > buf && header->bytes + header->bytes_len <= buf + used);
      g_string_append_len (found, header->name, header->name_len);
      g_string_append_printf (found, "=%d:%" G_GINT64_FORMAT ":%" G_GSIZE_FORMAT ";",
                              header->type, header->integer, header->bytes_len);
    }
  g_string_append_printf (found, "%" G_GSIZE_FORMAT "|", message->payload_len);
  g_string_append_len (found, (const char *)message->payload, message->payload_len);
  g_string_append_c (found, '\n');
}

/* Every message in @pending; an error ends the stream. Returns FALSE then. */
static gboolean
take_messages (GByteArray           *pending,
               gboolean              eof,
               KpEventStreamMessage *message,
               GString              *found)
{
  g_autoptr(GError) error = NULL;
  /* An empty GByteArray has no data at all. */
  const guint8 *buf = pending->len > 0 ? pending->data : (const guint8 *)"";
  gsize offset = 0;
  gssize used;

  while ((used = kp_event_stream_next (buf + offset, pending->len - offset,
                                       message, &error)) > 0)
    {
      g_assert ((gsize)used <= pending->len - offset);
      add_message (found, message, buf + offset, used);
      offset += used;
    }
  if (used < 0)
    {
      g_assert (error != NULL && error->message[0] != '\0');
      g_string_append_printf (found, "error %d\n", error->code);
      g_byte_array_set_size (pending, 0);
      return FALSE;
    }
  g_byte_array_remove_range (pending, 0, offset);
  if (eof && !kp_event_stream_check_end (pending->len > 0 ? pending->data : buf, pending->len,
                                          &error))
    {
      g_assert (error != NULL && error->code == KP_EVENT_STREAM_ERROR_TRUNCATED);
      g_string_append (found, "truncated\n");
      g_byte_array_set_size (pending, 0);
    }
  return TRUE;
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
  KpEventStreamMessage message;
  gsize step = 1;

  kp_event_stream_message_init (&message);
  g_byte_array_append (pending, data, size);
  take_messages (pending, TRUE, &message, whole);
  g_assert_cmpuint (pending->len, ==, 0);

  /* The same bytes in reads of 1, 2, 3, 5, 8, … bytes give the same messages;
   * an error ends both at the same place.
   */
  for (gsize offset = 0, last = 1; offset < size; )
    {
      gsize n = MIN (step, size - offset);
      gsize next = step + last;

      g_byte_array_append (pending, data + offset, n);
      offset += n;
      if (!take_messages (pending, offset == size, &message, pieces))
        break;
      last = step;
      step = next > 4096 ? 1 : next;
    }
  if (!g_string_equal (whole, pieces))
    g_error ("The messages differ when the bytes arrive in pieces:\n%s\n----\n%s",
             whole->str, pieces->str);

  kp_event_stream_message_clear (&message);
  return 0;
}
