/* kp-sse.h: incremental Server-Sent Events scanning
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* One complete event found at the start of a buffer. The name points into the
 * scanned buffer; the data is assembled in a caller-owned GString so that a
 * relay reuses one allocation for every event of a stream.
 */
typedef struct
{
  const char *name;      /* "event:" value, or NULL when the event has none */
  gsize       name_len;
  GString    *data;      /* "data:" lines joined with '\n' */
  gboolean    has_data;  /* at least one "data:" line was present */
} KpSseEvent;

gsize    kp_sse_next_event   (const char *buf,
                              gsize       len,
                              KpSseEvent *event);
gboolean kp_sse_event_is     (const KpSseEvent *event,
                              const char       *name);

G_END_DECLS
