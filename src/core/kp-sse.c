/* kp-sse.c: incremental Server-Sent Events scanning
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include <string.h>

#include "kp-sse.h"

static void
parse_line (const char *line,
            gsize       len,
            KpSseEvent *event)
{
  const char *colon;
  const char *value;
  gsize field_len;
  gsize value_len;

  /* A line that starts with ':' is a comment (keep-alives such as ": ping"). */
  if (line[0] == ':')
    return;

  colon = memchr (line, ':', len);
  if (colon != NULL)
    {
      field_len = colon - line;
      value = colon + 1;
      value_len = len - field_len - 1;
      /* Exactly one leading space belongs to the syntax, not to the value. */
      if (value_len > 0 && value[0] == ' ')
        {
          value++;
          value_len--;
        }
    }
  else
    {
      field_len = len;
      value = line + len;
      value_len = 0;
    }

  if (field_len == 4 && memcmp (line, "data", 4) == 0)
    {
      if (event->has_data)
        g_string_append_c (event->data, '\n');
      g_string_append_len (event->data, value, value_len);
      event->has_data = TRUE;
    }
  else if (field_len == 5 && memcmp (line, "event", 5) == 0)
    {
      event->name = value;
      event->name_len = value_len;
    }
  /* "id", "retry" and unknown fields are ignored, as the SSE spec says. */
}

/**
 * kp_sse_next_event:
 * @buf: bytes received so far that have not been consumed
 * @len: length of @buf
 * @event: (out caller-allocates): the event; its @data must be a GString
 *
 * Looks for one complete event (lines up to and including a blank line) at
 * the start of @buf. Lines end with "\n" or "\r\n".
 *
 * Returns: the number of bytes the event occupies in @buf, or 0 when @buf
 *   does not yet hold a complete event. An event made only of comments is
 *   complete too; its @has_data is %FALSE.
 */
gsize
kp_sse_next_event (const char *buf,
                   gsize       len,
                   KpSseEvent *event)
{
  const char *p = buf;
  const char *end = buf + len;

  g_assert (event != NULL);
  g_assert (event->data != NULL);

  event->name = NULL;
  event->name_len = 0;
  event->has_data = FALSE;
  g_string_truncate (event->data, 0);

  while (p < end)
    {
      const char *nl = memchr (p, '\n', end - p);
      gsize line_len;

      if (nl == NULL)
        return 0;

      line_len = nl - p;
      if (line_len > 0 && p[line_len - 1] == '\r')
        line_len--;

      if (line_len == 0)
        return (nl + 1) - buf;

      parse_line (p, line_len, event);
      p = nl + 1;
    }

  return 0;
}

gboolean
kp_sse_event_is (const KpSseEvent *event,
                 const char       *name)
{
  gsize name_len = strlen (name);

  return event->name != NULL &&
         event->name_len == name_len &&
         memcmp (event->name, name, name_len) == 0;
}
