/* kp-test-raw.h: a raw HTTP/1.1 client for tests, strict about what comes back
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <libsoup/soup.h>

G_BEGIN_DECLS

#define KP_RAW_WAIT_MS 10000

/* One answer as it came, parsed strictly. */
typedef struct
{
  guint               status;
  SoupMessageHeaders *headers;
  GString            *body;
  gboolean            chunked;
} KpRawAnswer;

typedef struct
{
  int        fd;
  GString   *got;        /* everything the server sent */
  gsize      used;       /* of got, by the answers parsed */
  gboolean   closed;     /* by the server */
  gint64     closed_us;  /* when kp_raw_pump() found it closed */
  gboolean   head_next;  /* the next answer is to a HEAD request */
  GPtrArray *answers;    /* of KpRawAnswer */
  guint      want;       /* answers to wait for */
} KpRaw;

void         kp_raw_open          (KpRaw       *raw,
                                   guint16      port);
void         kp_raw_clear         (KpRaw       *raw);
void         kp_raw_send          (KpRaw       *raw,
                                   const char  *text);
void         kp_raw_send_len      (KpRaw       *raw,
                                   const char  *data,
                                   gsize        len);
gboolean     kp_raw_pump          (KpRaw       *raw);
gboolean     kp_raw_is_closed     (gpointer     data);
KpRawAnswer *kp_raw_wait_answer   (KpRaw       *raw,
                                   guint        n);
void         kp_raw_wait_closed   (KpRaw       *raw);
void         kp_raw_answer_free   (KpRawAnswer *answer);
void         kp_raw_assert_header (KpRawAnswer *answer,
                                   const char  *name,
                                   const char  *value);
void         kp_raw_wait_count    (guint       *counter,
                                   guint        n);

G_END_DECLS
