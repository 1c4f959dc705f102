/* kp-event-stream.h: AWS event-stream framing (application/vnd.amazon.eventstream)
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* A message is at least its prelude (12 bytes) and its CRC (4 bytes), and
 * at most 16 MiB: anything longer is refused before it is buffered.
 */
#define KP_EVENT_STREAM_PRELUDE      12
#define KP_EVENT_STREAM_OVERHEAD     16
#define KP_EVENT_STREAM_MAX_MESSAGE  (16 * 1024 * 1024)

#define KP_EVENT_STREAM_ERROR (kp_event_stream_error_quark ())

typedef enum
{
  KP_EVENT_STREAM_ERROR_LENGTH,        /* total length under 16 or over 16 MiB */
  KP_EVENT_STREAM_ERROR_PRELUDE_CRC,
  KP_EVENT_STREAM_ERROR_MESSAGE_CRC,
  KP_EVENT_STREAM_ERROR_HEADERS,       /* a header runs past its section, or is malformed */
  KP_EVENT_STREAM_ERROR_MESSAGE_TYPE,  /* no :message-type, or one not known */
  KP_EVENT_STREAM_ERROR_TRUNCATED,     /* the stream ended inside a message */
} KpEventStreamError;

/* The ten header value types, as numbered on the wire. */
typedef enum
{
  KP_EVENT_STREAM_BOOL_TRUE  = 0,
  KP_EVENT_STREAM_BOOL_FALSE = 1,
  KP_EVENT_STREAM_BYTE       = 2,
  KP_EVENT_STREAM_SHORT      = 3,
  KP_EVENT_STREAM_INTEGER    = 4,
  KP_EVENT_STREAM_LONG       = 5,
  KP_EVENT_STREAM_BYTES      = 6,
  KP_EVENT_STREAM_STRING     = 7,
  KP_EVENT_STREAM_TIMESTAMP  = 8,
  KP_EVENT_STREAM_UUID       = 9,
} KpEventStreamValueType;

typedef enum
{
  KP_EVENT_STREAM_MESSAGE_EVENT,
  KP_EVENT_STREAM_MESSAGE_EXCEPTION,
  KP_EVENT_STREAM_MESSAGE_ERROR,
} KpEventStreamMessageType;

/* One header. Names, strings and byte arrays point into the buffer that was
 * decoded (or, for encoding, into the caller's memory).
 */
typedef struct
{
  const char             *name;
  gsize                   name_len;
  KpEventStreamValueType  type;
  gint64                  integer;   /* bool (1/0), byte, short, integer, long, timestamp (ms) */
  const guint8           *bytes;     /* byte array, string, uuid (16 bytes) */
  gsize                   bytes_len;
} KpEventStreamHeader;

/* One decoded message. @headers is caller-owned and reused from message to
 * message, as the SSE scanner's data string is; the rest points into the
 * decoded buffer and is valid until that buffer changes.
 */
typedef struct
{
  GArray                   *headers;       /* of KpEventStreamHeader */
  KpEventStreamMessageType  type;
  const char               *event_type;    /* :event-type, :exception-type or :error-code */
  gsize                     event_type_len;
  const char               *error_message; /* :error-message, or NULL */
  gsize                     error_message_len;
  const guint8             *payload;
  gsize                     payload_len;
} KpEventStreamMessage;

GQuark         kp_event_stream_error_quark     (void);
void           kp_event_stream_message_init    (KpEventStreamMessage       *message);
void           kp_event_stream_message_clear   (KpEventStreamMessage       *message);
gssize         kp_event_stream_next            (const guint8               *buf,
                                                gsize                       len,
                                                KpEventStreamMessage       *message,
                                                GError                    **error);
gboolean       kp_event_stream_check_end       (const guint8               *buf,
                                                gsize                       len,
                                                GError                    **error);
const KpEventStreamHeader *
               kp_event_stream_message_get_header (const KpEventStreamMessage *message,
                                                const char                 *name);
const char    *kp_event_stream_message_type_to_string (KpEventStreamMessageType type);
const char    *kp_event_stream_value_type_to_string   (KpEventStreamValueType   type);

/* Encoding, for tests and mock servers. */
void           kp_event_stream_append          (GByteArray                 *out,
                                                const KpEventStreamHeader  *headers,
                                                guint                       n_headers,
                                                const void                 *payload,
                                                gsize                       payload_len);
void           kp_event_stream_append_event    (GByteArray                 *out,
                                                const char                 *event_type,
                                                const char                 *json);
void           kp_event_stream_append_exception (GByteArray                *out,
                                                const char                 *exception_type,
                                                const char                 *json);

G_END_DECLS
