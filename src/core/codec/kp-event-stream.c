/* kp-event-stream.c: AWS event-stream framing (application/vnd.amazon.eventstream)
 *
 * One message on the wire, every integer big-endian:
 *
 *   total_length u32 | headers_length u32 | prelude_crc u32 |
 *   headers | payload | message_crc u32
 *
 * Both CRCs are the IEEE CRC-32 (zlib's). The decoder takes messages from
 * the start of a buffer as the SSE scanner does: it returns 0 until a whole
 * message is there, and reads each message once, so a stream costs linear
 * time however it is cut. Its length is checked as soon as the prelude is
 * there: a message of more than 16 MiB is refused before it is buffered,
 * and a prelude whose CRC is wrong is refused at once, never waited on.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include <string.h>

#include <zlib.h>

#include "kp-event-stream.h"

G_DEFINE_QUARK (kp-event-stream-error-quark, kp_event_stream_error)

static guint32
read_u32 (const guint8 *p)
{
  return ((guint32)p[0] << 24) | ((guint32)p[1] << 16) | ((guint32)p[2] << 8) | p[3];
}

static guint64
read_u64 (const guint8 *p)
{
  return ((guint64)read_u32 (p) << 32) | read_u32 (p + 4);
}

static void
write_u32 (guint8 *p,
           guint32 v)
{
  p[0] = v >> 24;
  p[1] = v >> 16;
  p[2] = v >> 8;
  p[3] = v;
}

static guint32
crc (guint32       start,
     const guint8 *data,
     gsize         len)
{
  uLong value = start;

  /* zlib takes an unsigned int length: feed it in pieces. */
  while (len > 0)
    {
      uInt n = (uInt)MIN (len, (gsize)G_MAXUINT32 / 2);

      value = crc32 (value, data, n);
      data += n;
      len -= n;
    }
  return (guint32)value;
}

const char *
kp_event_stream_message_type_to_string (KpEventStreamMessageType type)
{
  switch (type)
    {
    case KP_EVENT_STREAM_MESSAGE_EVENT:
      return "event";
    case KP_EVENT_STREAM_MESSAGE_EXCEPTION:
      return "exception";
    case KP_EVENT_STREAM_MESSAGE_ERROR:
      return "error";
    default:
      return "unknown";
    }
}

const char *
kp_event_stream_value_type_to_string (KpEventStreamValueType type)
{
  switch (type)
    {
    case KP_EVENT_STREAM_BOOL_TRUE:
      return "true";
    case KP_EVENT_STREAM_BOOL_FALSE:
      return "false";
    case KP_EVENT_STREAM_BYTE:
      return "byte";
    case KP_EVENT_STREAM_SHORT:
      return "short";
    case KP_EVENT_STREAM_INTEGER:
      return "integer";
    case KP_EVENT_STREAM_LONG:
      return "long";
    case KP_EVENT_STREAM_BYTES:
      return "byte array";
    case KP_EVENT_STREAM_STRING:
      return "string";
    case KP_EVENT_STREAM_TIMESTAMP:
      return "timestamp";
    case KP_EVENT_STREAM_UUID:
      return "uuid";
    default:
      return "unknown";
    }
}

void
kp_event_stream_message_init (KpEventStreamMessage *message)
{
  memset (message, 0, sizeof *message);
  message->headers = g_array_new (FALSE, TRUE, sizeof (KpEventStreamHeader));
}

void
kp_event_stream_message_clear (KpEventStreamMessage *message)
{
  g_clear_pointer (&message->headers, g_array_unref);
}

static gboolean
header_error (GError     **error,
              gsize        offset,
              const char  *what)
{
  g_set_error (error, KP_EVENT_STREAM_ERROR, KP_EVENT_STREAM_ERROR_HEADERS,
               "event-stream message: the header at byte %" G_GSIZE_FORMAT " %s",
               offset, what);
  return FALSE;
}

/* Reads the headers section [p, p + len) into message->headers. */
static gboolean
parse_headers (const guint8          *p,
               gsize                  len,
               KpEventStreamMessage  *message,
               GError               **error)
{
  gsize at = 0;

  g_array_set_size (message->headers, 0);
  while (at < len)
    {
      KpEventStreamHeader header = { 0 };
      gsize start = at;
      gsize name_len = p[at++];
      gsize value_len = 0;

      if (name_len == 0)
        return header_error (error, start, "has an empty name");
      if (len - at < name_len + 1)
        return header_error (error, start, "runs past the headers section");
      if (!g_utf8_validate ((const char *)p + at, name_len, NULL))
        return header_error (error, start, "has a name that is not UTF-8");
      header.name = (const char *)p + at;
      header.name_len = name_len;
      at += name_len;
      header.type = p[at++];

      switch (header.type)
        {
        case KP_EVENT_STREAM_BOOL_TRUE:
        case KP_EVENT_STREAM_BOOL_FALSE:
          header.integer = header.type == KP_EVENT_STREAM_BOOL_TRUE;
          break;
        case KP_EVENT_STREAM_BYTE:
          value_len = 1;
          break;
        case KP_EVENT_STREAM_SHORT:
          value_len = 2;
          break;
        case KP_EVENT_STREAM_INTEGER:
          value_len = 4;
          break;
        case KP_EVENT_STREAM_LONG:
        case KP_EVENT_STREAM_TIMESTAMP:
          value_len = 8;
          break;
        case KP_EVENT_STREAM_UUID:
          value_len = 16;
          break;
        case KP_EVENT_STREAM_BYTES:
        case KP_EVENT_STREAM_STRING:
          if (len - at < 2)
            return header_error (error, start, "runs past the headers section");
          value_len = ((gsize)p[at] << 8) | p[at + 1];
          at += 2;
          break;
        default:
          {
            g_autofree char *what = g_strdup_printf ("has an unknown value type %u",
                                                     (guint)header.type);

            return header_error (error, start, what);
          }
        }

      if (len - at < value_len)
        return header_error (error, start, "runs past the headers section");

      switch (header.type)
        {
        case KP_EVENT_STREAM_BYTE:
          header.integer = (gint8)p[at];
          break;
        case KP_EVENT_STREAM_SHORT:
          header.integer = (gint16)(((guint16)p[at] << 8) | p[at + 1]);
          break;
        case KP_EVENT_STREAM_INTEGER:
          header.integer = (gint32)read_u32 (p + at);
          break;
        case KP_EVENT_STREAM_LONG:
        case KP_EVENT_STREAM_TIMESTAMP:
          header.integer = (gint64)read_u64 (p + at);
          break;
        case KP_EVENT_STREAM_STRING:
          if (!g_utf8_validate ((const char *)p + at, value_len, NULL))
            return header_error (error, start, "has a string value that is not UTF-8");
          G_GNUC_FALLTHROUGH;
        case KP_EVENT_STREAM_BYTES:
        case KP_EVENT_STREAM_UUID:
          header.bytes = p + at;
          header.bytes_len = value_len;
          break;
        case KP_EVENT_STREAM_BOOL_TRUE:
        case KP_EVENT_STREAM_BOOL_FALSE:
        default:
          break;
        }
      at += value_len;
      g_array_append_val (message->headers, header);
    }
  return TRUE;
}

/**
 * kp_event_stream_message_get_header:
 *
 * Returns: (nullable): the last header named @name
 */
const KpEventStreamHeader *
kp_event_stream_message_get_header (const KpEventStreamMessage *message,
                                    const char                 *name)
{
  gsize len = strlen (name);

  for (guint i = message->headers->len; i > 0; i--)
    {
      const KpEventStreamHeader *header = &g_array_index (message->headers,
                                                          KpEventStreamHeader, i - 1);

      if (header->name_len == len && memcmp (header->name, name, len) == 0)
        return header;
    }
  return NULL;
}

static const char *
string_header (const KpEventStreamMessage *message,
               const char                 *name,
               gsize                      *len)
{
  const KpEventStreamHeader *header = kp_event_stream_message_get_header (message, name);

  if (header == NULL || header->type != KP_EVENT_STREAM_STRING)
    {
      *len = 0;
      return NULL;
    }
  *len = header->bytes_len;
  return (const char *)header->bytes;
}

static gboolean
is (const char *value,
    gsize       len,
    const char *literal)
{
  return value != NULL && len == strlen (literal) && memcmp (value, literal, len) == 0;
}

static gboolean
read_message_type (KpEventStreamMessage  *message,
                   GError               **error)
{
  gsize len;
  const char *type = string_header (message, ":message-type", &len);

  message->error_message = NULL;
  message->error_message_len = 0;
  if (is (type, len, "event"))
    {
      message->type = KP_EVENT_STREAM_MESSAGE_EVENT;
      message->event_type = string_header (message, ":event-type", &message->event_type_len);
    }
  else if (is (type, len, "exception"))
    {
      message->type = KP_EVENT_STREAM_MESSAGE_EXCEPTION;
      message->event_type = string_header (message, ":exception-type",
                                           &message->event_type_len);
    }
  else if (is (type, len, "error"))
    {
      message->type = KP_EVENT_STREAM_MESSAGE_ERROR;
      message->event_type = string_header (message, ":error-code", &message->event_type_len);
      message->error_message = string_header (message, ":error-message",
                                              &message->error_message_len);
    }
  else if (type == NULL)
    {
      g_set_error_literal (error, KP_EVENT_STREAM_ERROR, KP_EVENT_STREAM_ERROR_MESSAGE_TYPE,
                           "event-stream message without a :message-type header");
      return FALSE;
    }
  else
    {
      g_autofree char *shown = g_strndup (type, MIN (len, 64));

      g_set_error (error, KP_EVENT_STREAM_ERROR, KP_EVENT_STREAM_ERROR_MESSAGE_TYPE,
                   "event-stream message of an unknown :message-type “%s”", shown);
      return FALSE;
    }
  return TRUE;
}

/**
 * kp_event_stream_next:
 * @buf: received bytes, starting at a message
 * @len: how many
 * @message: where the message is described; its @headers array is reused
 * @error: why the stream cannot be read on
 *
 * Returns: the length of the message at the start of @buf; 0 when more
 *   bytes are needed; -1 with @error set when the bytes are not a message
 *   (a length out of bounds, a wrong CRC, headers past the frame, no or an
 *   unknown :message-type). After -1 the stream cannot be resynchronized.
 */
gssize
kp_event_stream_next (const guint8          *buf,
                      gsize                  len,
                      KpEventStreamMessage  *message,
                      GError               **error)
{
  guint32 total;
  guint32 headers_len;
  guint32 expected;
  guint32 actual;

  g_return_val_if_fail (buf != NULL || len == 0, -1);
  g_return_val_if_fail (message != NULL && message->headers != NULL, -1);

  /* The length alone is refused as soon as it is there. */
  if (len < 4)
    return 0;
  total = read_u32 (buf);
  if (total < KP_EVENT_STREAM_OVERHEAD || total > KP_EVENT_STREAM_MAX_MESSAGE)
    {
      g_set_error (error, KP_EVENT_STREAM_ERROR, KP_EVENT_STREAM_ERROR_LENGTH,
                   "event-stream message of %u bytes: a message is %d bytes to 16 MiB",
                   total, KP_EVENT_STREAM_OVERHEAD);
      return -1;
    }
  if (len < KP_EVENT_STREAM_PRELUDE)
    return 0;

  expected = read_u32 (buf + 8);
  actual = crc (0, buf, 8);
  if (expected != actual)
    {
      g_set_error (error, KP_EVENT_STREAM_ERROR, KP_EVENT_STREAM_ERROR_PRELUDE_CRC,
                   "event-stream prelude CRC mismatch: it says %08x, the bytes give %08x",
                   expected, actual);
      return -1;
    }
  headers_len = read_u32 (buf + 4);
  if (headers_len > total - KP_EVENT_STREAM_OVERHEAD)
    {
      g_set_error (error, KP_EVENT_STREAM_ERROR, KP_EVENT_STREAM_ERROR_HEADERS,
                   "event-stream message of %u bytes with %u bytes of headers: "
                   "more than the message holds", total, headers_len);
      return -1;
    }
  if (len < total)
    return 0;

  expected = read_u32 (buf + total - 4);
  actual = crc (actual, buf + 8, total - 12);
  if (expected != actual)
    {
      g_set_error (error, KP_EVENT_STREAM_ERROR, KP_EVENT_STREAM_ERROR_MESSAGE_CRC,
                   "event-stream message CRC mismatch: it says %08x, the bytes give %08x",
                   expected, actual);
      return -1;
    }

  if (!parse_headers (buf + KP_EVENT_STREAM_PRELUDE, headers_len, message, error))
    return -1;
  if (!read_message_type (message, error))
    return -1;
  message->payload = buf + KP_EVENT_STREAM_PRELUDE + headers_len;
  message->payload_len = total - KP_EVENT_STREAM_OVERHEAD - headers_len;
  return total;
}

/**
 * kp_event_stream_check_end:
 * @buf: the bytes left when the stream ended
 * @len: how many
 *
 * Returns: %TRUE if the stream ended between messages; %FALSE with @error
 *   set when it ended inside one
 */
gboolean
kp_event_stream_check_end (const guint8  *buf,
                           gsize          len,
                           GError       **error)
{
  if (len == 0)
    return TRUE;
  if (len < 4)
    g_set_error (error, KP_EVENT_STREAM_ERROR, KP_EVENT_STREAM_ERROR_TRUNCATED,
                 "the event stream ended inside a message prelude (%" G_GSIZE_FORMAT
                 " of 12 bytes)", len);
  else
    g_set_error (error, KP_EVENT_STREAM_ERROR, KP_EVENT_STREAM_ERROR_TRUNCATED,
                 "the event stream ended inside a message (%" G_GSIZE_FORMAT " of %u bytes)",
                 len, read_u32 (buf));
  return FALSE;
}

/* Encoding ----------------------------------------------------------------- */

static void
append_header (GByteArray                *out,
               const KpEventStreamHeader *header)
{
  guint8 value[8];
  guint8 byte;

  g_return_if_fail (header->name_len > 0 && header->name_len <= 255);

  byte = (guint8)header->name_len;
  g_byte_array_append (out, &byte, 1);
  g_byte_array_append (out, (const guint8 *)header->name, header->name_len);
  byte = (guint8)header->type;
  g_byte_array_append (out, &byte, 1);

  switch (header->type)
    {
    case KP_EVENT_STREAM_BYTE:
      value[0] = (guint8)header->integer;
      g_byte_array_append (out, value, 1);
      break;
    case KP_EVENT_STREAM_SHORT:
      value[0] = (guint8)((guint64)header->integer >> 8);
      value[1] = (guint8)header->integer;
      g_byte_array_append (out, value, 2);
      break;
    case KP_EVENT_STREAM_INTEGER:
      write_u32 (value, (guint32)header->integer);
      g_byte_array_append (out, value, 4);
      break;
    case KP_EVENT_STREAM_LONG:
    case KP_EVENT_STREAM_TIMESTAMP:
      write_u32 (value, (guint32)((guint64)header->integer >> 32));
      write_u32 (value + 4, (guint32)header->integer);
      g_byte_array_append (out, value, 8);
      break;
    case KP_EVENT_STREAM_BYTES:
    case KP_EVENT_STREAM_STRING:
      g_return_if_fail (header->bytes_len <= G_MAXUINT16);
      value[0] = (guint8)(header->bytes_len >> 8);
      value[1] = (guint8)header->bytes_len;
      g_byte_array_append (out, value, 2);
      g_byte_array_append (out, header->bytes, header->bytes_len);
      break;
    case KP_EVENT_STREAM_UUID:
      g_return_if_fail (header->bytes_len == 16);
      g_byte_array_append (out, header->bytes, 16);
      break;
    case KP_EVENT_STREAM_BOOL_TRUE:
    case KP_EVENT_STREAM_BOOL_FALSE:
    default:
      break;
    }
}

/**
 * kp_event_stream_append:
 *
 * Appends one message with @headers and @payload to @out.
 */
void
kp_event_stream_append (GByteArray                *out,
                        const KpEventStreamHeader *headers,
                        guint                      n_headers,
                        const void                *payload,
                        gsize                      payload_len)
{
  gsize start = out->len;
  gsize headers_start;
  guint8 word[4];
  guint32 value;

  g_byte_array_set_size (out, start + KP_EVENT_STREAM_PRELUDE);
  headers_start = out->len;
  for (guint i = 0; i < n_headers; i++)
    append_header (out, &headers[i]);
  write_u32 (out->data + start + 4, (guint32)(out->len - headers_start));
  if (payload_len > 0)
    g_byte_array_append (out, payload, payload_len);
  write_u32 (out->data + start, (guint32)(out->len - start + 4));
  write_u32 (out->data + start + 8, crc (0, out->data + start, 8));
  value = crc (0, out->data + start, out->len - start);
  write_u32 (word, value);
  g_byte_array_append (out, word, 4);
}

static KpEventStreamHeader
string_value (const char *name,
              const char *value)
{
  return (KpEventStreamHeader) {
    .name = name,
    .name_len = strlen (name),
    .type = KP_EVENT_STREAM_STRING,
    .bytes = (const guint8 *)value,
    .bytes_len = strlen (value),
  };
}

/* An event as AWS services send them: its type, JSON, and the message type. */
void
kp_event_stream_append_event (GByteArray *out,
                              const char *event_type,
                              const char *json)
{
  KpEventStreamHeader headers[] = {
    string_value (":event-type", event_type),
    string_value (":content-type", "application/json"),
    string_value (":message-type", "event"),
  };

  kp_event_stream_append (out, headers, G_N_ELEMENTS (headers), json, strlen (json));
}

void
kp_event_stream_append_exception (GByteArray *out,
                                  const char *exception_type,
                                  const char *json)
{
  KpEventStreamHeader headers[] = {
    string_value (":exception-type", exception_type),
    string_value (":content-type", "application/json"),
    string_value (":message-type", "exception"),
  };

  kp_event_stream_append (out, headers, G_N_ELEMENTS (headers), json, strlen (json));
}
