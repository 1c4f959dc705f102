/* test-event-stream.c: the AWS event-stream decoder
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include "config.h"

#include <string.h>

#include <zlib.h>

#include "codec/kp-event-stream.h"

static const guint8 uuid[16] = {
  0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0,
  0x0f, 0xed, 0xcb, 0xa9, 0x87, 0x65, 0x43, 0x21,
};

static const guint8 blob[] = { 0x00, 0xff, 0x7b, 0x22, 0x00 };

/* One header of every value type, with values at their edges. */
static const KpEventStreamHeader every_type[] = {
  { .name = "t", .name_len = 1, .type = KP_EVENT_STREAM_BOOL_TRUE },
  { .name = "f", .name_len = 1, .type = KP_EVENT_STREAM_BOOL_FALSE },
  { .name = "byte", .name_len = 4, .type = KP_EVENT_STREAM_BYTE, .integer = -128 },
  { .name = "short", .name_len = 5, .type = KP_EVENT_STREAM_SHORT, .integer = -2 },
  { .name = "int", .name_len = 3, .type = KP_EVENT_STREAM_INTEGER, .integer = G_MININT32 },
  { .name = "long", .name_len = 4, .type = KP_EVENT_STREAM_LONG,
    .integer = G_GINT64_CONSTANT (-81985529216486896) },
  { .name = "blob", .name_len = 4, .type = KP_EVENT_STREAM_BYTES, .bytes = blob,
    .bytes_len = sizeof blob },
  { .name = "str", .name_len = 3, .type = KP_EVENT_STREAM_STRING,
    .bytes = (const guint8 *)"h\xc3\xa9llo", .bytes_len = 6 },
  { .name = "when", .name_len = 4, .type = KP_EVENT_STREAM_TIMESTAMP,
    .integer = G_GINT64_CONSTANT (1764633600123) },
  { .name = "id", .name_len = 2, .type = KP_EVENT_STREAM_UUID, .bytes = uuid, .bytes_len = 16 },
  { .name = ":message-type", .name_len = 13, .type = KP_EVENT_STREAM_STRING,
    .bytes = (const guint8 *)"event", .bytes_len = 5 },
  { .name = ":event-type", .name_len = 11, .type = KP_EVENT_STREAM_STRING,
    .bytes = (const guint8 *)"everyType", .bytes_len = 9 },
};

static guint32
get_u32 (const guint8 *p)
{
  return ((guint32)p[0] << 24) | ((guint32)p[1] << 16) | ((guint32)p[2] << 8) | p[3];
}

/* §4.1 of the protocol notes: no headers, payload {"foo": "bar"}. */
static void
test_vector (void)
{
  static const guint8 expected[] = {
    0x00, 0x00, 0x00, 0x1e, 0x00, 0x00, 0x00, 0x00, 0xba, 0xf2, 0xf6, 0x8a,
    '{', '"', 'f', 'o', 'o', '"', ':', ' ', '"', 'b', 'a', 'r', '"', '}',
    0xae, 0x72, 0x58, 0xe4,
  };
  g_autoptr(GByteArray) out = g_byte_array_new ();
  g_autoptr(GError) error = NULL;
  KpEventStreamMessage message;
  gssize n;

  kp_event_stream_append (out, NULL, 0, "{\"foo\": \"bar\"}", 14);
  g_assert_cmpmem (out->data, out->len, expected, sizeof expected);

  /* It is a valid frame, but no message: it has no :message-type. */
  kp_event_stream_message_init (&message);
  n = kp_event_stream_next (expected, sizeof expected, &message, &error);
  g_assert_cmpint (n, ==, -1);
  g_assert_error (error, KP_EVENT_STREAM_ERROR, KP_EVENT_STREAM_ERROR_MESSAGE_TYPE);
  kp_event_stream_message_clear (&message);
}

static void
test_every_header_type (void)
{
  g_autoptr(GByteArray) out = g_byte_array_new ();
  g_autoptr(GError) error = NULL;
  KpEventStreamMessage message;
  gssize n;

  kp_event_stream_append (out, every_type, G_N_ELEMENTS (every_type), "{}", 2);
  kp_event_stream_message_init (&message);
  n = kp_event_stream_next (out->data, out->len, &message, &error);
  g_assert_no_error (error);
  g_assert_cmpint (n, ==, out->len);
  g_assert_cmpuint (message.headers->len, ==, G_N_ELEMENTS (every_type));

  for (guint i = 0; i < G_N_ELEMENTS (every_type); i++)
    {
      const KpEventStreamHeader *want = &every_type[i];
      const KpEventStreamHeader *got = &g_array_index (message.headers, KpEventStreamHeader, i);

      g_test_message ("header %s (%s)", want->name, kp_event_stream_value_type_to_string (want->type));
      g_assert_cmpmem (got->name, got->name_len, want->name, want->name_len);
      g_assert_cmpint (got->type, ==, want->type);
      switch (want->type)
        {
        case KP_EVENT_STREAM_BOOL_TRUE:
          g_assert_cmpint (got->integer, ==, 1);
          break;
        case KP_EVENT_STREAM_BOOL_FALSE:
          g_assert_cmpint (got->integer, ==, 0);
          break;
        case KP_EVENT_STREAM_BYTES:
        case KP_EVENT_STREAM_STRING:
        case KP_EVENT_STREAM_UUID:
          g_assert_cmpmem (got->bytes, got->bytes_len, want->bytes, want->bytes_len);
          break;
        default:
          g_assert_cmpint (got->integer, ==, want->integer);
          break;
        }
    }
  g_assert_cmpint (message.type, ==, KP_EVENT_STREAM_MESSAGE_EVENT);
  g_assert_cmpmem (message.event_type, message.event_type_len, "everyType", 9);
  g_assert_cmpmem (message.payload, message.payload_len, "{}", 2);
  g_assert_nonnull (kp_event_stream_message_get_header (&message, "when"));
  g_assert_null (kp_event_stream_message_get_header (&message, "whe"));
  kp_event_stream_message_clear (&message);
}

/* A stream as Kiro sends it: events, an exception, an error. */
static GByteArray *
make_stream (void)
{
  GByteArray *out = g_byte_array_new ();
  KpEventStreamHeader error_headers[] = {
    { .name = ":message-type", .name_len = 13, .type = KP_EVENT_STREAM_STRING,
      .bytes = (const guint8 *)"error", .bytes_len = 5 },
    { .name = ":error-code", .name_len = 11, .type = KP_EVENT_STREAM_STRING,
      .bytes = (const guint8 *)"InternalError", .bytes_len = 13 },
    { .name = ":error-message", .name_len = 14, .type = KP_EVENT_STREAM_STRING,
      .bytes = (const guint8 *)"it broke", .bytes_len = 8 },
  };

  kp_event_stream_append_event (out, "assistantResponseEvent", "{\"content\":\"Hel\"}");
  kp_event_stream_append_event (out, "assistantResponseEvent", "{\"content\":\"lo\"}");
  kp_event_stream_append (out, every_type, G_N_ELEMENTS (every_type), NULL, 0);
  kp_event_stream_append_exception (out, "ThrottlingException", "{\"message\":\"slow down\"}");
  kp_event_stream_append (out, error_headers, G_N_ELEMENTS (error_headers), NULL, 0);
  return out;
}

/* Decodes @data fed in the pieces @cuts gives, as network reads would;
 * returns a description of every message.
 */
static char *
decode_in_pieces (const guint8 *data,
                  gsize         len,
                  const gsize  *cuts,
                  guint         n_cuts)
{
  g_autoptr(GByteArray) pending = g_byte_array_new ();
  GString *found = g_string_new (NULL);
  KpEventStreamMessage message;
  gsize fed = 0;

  kp_event_stream_message_init (&message);
  for (guint i = 0; i <= n_cuts; i++)
    {
      gsize upto = i < n_cuts ? cuts[i] : len;
      gsize offset = 0;
      gssize n;

      g_byte_array_append (pending, data + fed, upto - fed);
      fed = upto;
      while ((n = kp_event_stream_next (pending->data + offset, pending->len - offset,
                                        &message, NULL)) > 0)
        {
          g_string_append_printf (found, "%s %.*s %u ",
                                  kp_event_stream_message_type_to_string (message.type),
                                  (int)message.event_type_len,
                                  message.event_type ? message.event_type : "",
                                  message.headers->len);
          if (message.error_message != NULL)
            g_string_append_len (found, message.error_message, message.error_message_len);
          g_string_append_len (found, (const char *)message.payload, message.payload_len);
          g_string_append_c (found, '\n');
          offset += n;
        }
      g_assert_cmpint (n, ==, 0);
      g_byte_array_remove_range (pending, 0, offset);
    }
  g_assert_true (kp_event_stream_check_end (pending->data, pending->len, NULL));
  kp_event_stream_message_clear (&message);
  return g_string_free (found, FALSE);
}

static void
test_split_everywhere (void)
{
  g_autoptr(GByteArray) stream = make_stream ();
  g_autofree char *whole = decode_in_pieces (stream->data, stream->len, NULL, 0);
  g_autofree gsize *every = g_new (gsize, stream->len);

  g_assert_cmpstr (whole, ==,
                   "event assistantResponseEvent 3 {\"content\":\"Hel\"}\n"
                   "event assistantResponseEvent 3 {\"content\":\"lo\"}\n"
                   "event everyType 12 \n"
                   "exception ThrottlingException 3 {\"message\":\"slow down\"}\n"
                   "error InternalError 3 it broke\n");

  /* Cut in two at every byte boundary. */
  for (gsize cut = 1; cut < stream->len; cut++)
    {
      g_autofree char *pieces = decode_in_pieces (stream->data, stream->len, &cut, 1);

      g_assert_cmpstr (pieces, ==, whole);
    }

  /* And one byte at a time. */
  for (gsize i = 0; i < stream->len; i++)
    every[i] = i + 1;
  {
    g_autofree char *bytes = decode_in_pieces (stream->data, stream->len, every,
                                               stream->len - 1);

    g_assert_cmpstr (bytes, ==, whole);
  }
}

static gssize
decode_one (const guint8  *data,
            gsize          len,
            GError       **error)
{
  KpEventStreamMessage message;
  gssize n;

  kp_event_stream_message_init (&message);
  n = kp_event_stream_next (data, len, &message, error);
  kp_event_stream_message_clear (&message);
  return n;
}

static void
test_bad_prelude_crc (void)
{
  g_autoptr(GByteArray) stream = make_stream ();
  g_autoptr(GError) error = NULL;

  stream->data[9] ^= 0x01;
  /* Refused as soon as the prelude is there, not when the message is. */
  g_assert_cmpint (decode_one (stream->data, 11, &error), ==, 0);
  g_assert_cmpint (decode_one (stream->data, 12, &error), ==, -1);
  g_assert_error (error, KP_EVENT_STREAM_ERROR, KP_EVENT_STREAM_ERROR_PRELUDE_CRC);
  g_assert_nonnull (strstr (error->message, "prelude CRC"));
  g_clear_error (&error);

  /* A changed length, with the prelude CRC left as it was, too. */
  stream->data[9] ^= 0x01;
  stream->data[3] += 1;
  g_assert_cmpint (decode_one (stream->data, stream->len, &error), ==, -1);
  g_assert_error (error, KP_EVENT_STREAM_ERROR, KP_EVENT_STREAM_ERROR_PRELUDE_CRC);
}

static void
test_bad_message_crc (void)
{
  g_autoptr(GByteArray) stream = make_stream ();
  g_autoptr(GError) error = NULL;
  guint32 total = get_u32 (stream->data);

  /* A payload byte changed. */
  stream->data[total - 6] ^= 0x20;
  g_assert_cmpint (decode_one (stream->data, total - 1, &error), ==, 0);
  g_assert_cmpint (decode_one (stream->data, total, &error), ==, -1);
  g_assert_error (error, KP_EVENT_STREAM_ERROR, KP_EVENT_STREAM_ERROR_MESSAGE_CRC);
  g_clear_error (&error);

  /* The CRC itself changed. */
  stream->data[total - 6] ^= 0x20;
  g_assert_cmpint (decode_one (stream->data, total, &error), ==, total);
  stream->data[total - 1] ^= 0x80;
  g_assert_cmpint (decode_one (stream->data, total, &error), ==, -1);
  g_assert_error (error, KP_EVENT_STREAM_ERROR, KP_EVENT_STREAM_ERROR_MESSAGE_CRC);
}

static void
test_truncated (void)
{
  g_autoptr(GByteArray) stream = make_stream ();
  g_autoptr(GError) error = NULL;
  guint32 total = get_u32 (stream->data);

  for (gsize len = 0; len < total; len++)
    g_assert_cmpint (decode_one (stream->data, len, NULL), ==, 0);

  g_assert_false (kp_event_stream_check_end (stream->data, total - 1, &error));
  g_assert_error (error, KP_EVENT_STREAM_ERROR, KP_EVENT_STREAM_ERROR_TRUNCATED);
  g_assert_nonnull (strstr (error->message, "ended inside a message"));
  g_clear_error (&error);
  g_assert_false (kp_event_stream_check_end (stream->data, 3, &error));
  g_assert_error (error, KP_EVENT_STREAM_ERROR, KP_EVENT_STREAM_ERROR_TRUNCATED);
  g_assert_true (kp_event_stream_check_end (stream->data, 0, NULL));
}

/* Rewrites a prelude with a valid CRC, so that only the length is wrong. */
static void
set_prelude (guint8  *p,
             guint32  total,
             guint32  headers)
{
  guint32 crc;

  for (int i = 0; i < 4; i++)
    {
      p[i] = total >> (24 - 8 * i);
      p[4 + i] = headers >> (24 - 8 * i);
    }
  crc = (guint32)crc32 (0, p, 8);
  for (int i = 0; i < 4; i++)
    p[8 + i] = crc >> (24 - 8 * i);
}

static void
test_lengths (void)
{
  guint8 frame[32] = { 0 };
  g_autoptr(GError) error = NULL;

  /* Over 16 MiB: refused on its first four bytes, nothing buffered. */
  set_prelude (frame, KP_EVENT_STREAM_MAX_MESSAGE + 1, 0);
  g_assert_cmpint (decode_one (frame, 3, &error), ==, 0);
  g_assert_cmpint (decode_one (frame, 4, &error), ==, -1);
  g_assert_error (error, KP_EVENT_STREAM_ERROR, KP_EVENT_STREAM_ERROR_LENGTH);
  g_assert_nonnull (strstr (error->message, "16 MiB"));
  g_clear_error (&error);

  set_prelude (frame, G_MAXUINT32, 0);
  g_assert_cmpint (decode_one (frame, sizeof frame, &error), ==, -1);
  g_assert_error (error, KP_EVENT_STREAM_ERROR, KP_EVENT_STREAM_ERROR_LENGTH);
  g_clear_error (&error);

  /* Under 16. */
  for (guint32 total = 0; total < 16; total++)
    {
      set_prelude (frame, total, 0);
      g_assert_cmpint (decode_one (frame, sizeof frame, &error), ==, -1);
      g_assert_error (error, KP_EVENT_STREAM_ERROR, KP_EVENT_STREAM_ERROR_LENGTH);
      g_clear_error (&error);
    }

  /* Exactly 16 MiB is allowed: it waits for the bytes. */
  set_prelude (frame, KP_EVENT_STREAM_MAX_MESSAGE, 0);
  g_assert_cmpint (decode_one (frame, sizeof frame, &error), ==, 0);
  g_assert_no_error (error);

  /* Headers longer than the frame. */
  set_prelude (frame, 32, 17);
  g_assert_cmpint (decode_one (frame, 12, &error), ==, -1);
  g_assert_error (error, KP_EVENT_STREAM_ERROR, KP_EVENT_STREAM_ERROR_HEADERS);
  g_assert_nonnull (strstr (error->message, "more than the message holds"));
  g_clear_error (&error);
  set_prelude (frame, 32, G_MAXUINT32);
  g_assert_cmpint (decode_one (frame, 12, &error), ==, -1);
  g_assert_error (error, KP_EVENT_STREAM_ERROR, KP_EVENT_STREAM_ERROR_HEADERS);
}

/* A frame with valid CRCs around the headers section @headers. */
static GByteArray *
frame_with_headers (const guint8 *headers,
                    gsize         len)
{
  GByteArray *out = g_byte_array_new ();
  guint8 crc_bytes[4];
  guint32 crc;

  g_byte_array_set_size (out, 12);
  set_prelude (out->data, (guint32)(16 + len), (guint32)len);
  g_byte_array_append (out, headers, len);
  crc = (guint32)crc32 (0, out->data, (uInt)out->len);
  for (int i = 0; i < 4; i++)
    crc_bytes[i] = crc >> (24 - 8 * i);
  g_byte_array_append (out, crc_bytes, 4);
  return out;
}

static void
test_bad_headers (void)
{
  static const struct
  {
    const char *what;
    const char *bytes;
    gsize       len;
    int         code;
  } cases[] = {
    { "empty name", "\x00\x07\x00\x00", 4, KP_EVENT_STREAM_ERROR_HEADERS },
    { "name past the section", "\x09:message", 9, KP_EVENT_STREAM_ERROR_HEADERS },
    { "no type", "\x01x", 2, KP_EVENT_STREAM_ERROR_HEADERS },
    { "unknown type", "\x01x\x0a", 3, KP_EVENT_STREAM_ERROR_HEADERS },
    { "short int", "\x01x\x04\x00\x00", 5, KP_EVENT_STREAM_ERROR_HEADERS },
    { "string length cut", "\x01x\x07\x00", 4, KP_EVENT_STREAM_ERROR_HEADERS },
    { "string past the section", "\x01x\x07\x00\x05" "abc", 8, KP_EVENT_STREAM_ERROR_HEADERS },
    { "uuid cut", "\x01x\x09" "0123456789", 13, KP_EVENT_STREAM_ERROR_HEADERS },
    { "string not UTF-8", "\x01x\x07\x00\x02\xff\xfe", 7, KP_EVENT_STREAM_ERROR_HEADERS },
    { "name not UTF-8", "\x01\xff\x00", 3, KP_EVENT_STREAM_ERROR_HEADERS },
    { "unknown message type", "\x0d:message-type\x07\x00\x04" "nope", 21,
      KP_EVENT_STREAM_ERROR_MESSAGE_TYPE },
    { "message type not a string", "\x0d:message-type\x00", 15,
      KP_EVENT_STREAM_ERROR_MESSAGE_TYPE },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GByteArray) frame = frame_with_headers ((const guint8 *)cases[i].bytes,
                                                        cases[i].len);
      g_autoptr(GError) error = NULL;

      g_test_message ("%s", cases[i].what);
      g_assert_cmpint (decode_one (frame->data, frame->len, &error), ==, -1);
      g_assert_error (error, KP_EVENT_STREAM_ERROR, cases[i].code);
    }
}

static void
test_exception_and_error (void)
{
  g_autoptr(GByteArray) stream = g_byte_array_new ();
  g_autoptr(GError) error = NULL;
  KpEventStreamMessage message;
  gssize n;

  kp_event_stream_append_exception (stream, "ValidationException",
                                    "{\"message\":\"Improperly formed request.\"}");
  kp_event_stream_message_init (&message);
  n = kp_event_stream_next (stream->data, stream->len, &message, &error);
  g_assert_no_error (error);
  g_assert_cmpint (n, ==, stream->len);
  g_assert_cmpint (message.type, ==, KP_EVENT_STREAM_MESSAGE_EXCEPTION);
  g_assert_cmpmem (message.event_type, message.event_type_len, "ValidationException", 19);
  g_assert_null (message.error_message);
  kp_event_stream_message_clear (&message);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/event-stream/vector", test_vector);
  g_test_add_func ("/event-stream/every-header-type", test_every_header_type);
  g_test_add_func ("/event-stream/split-everywhere", test_split_everywhere);
  g_test_add_func ("/event-stream/bad-prelude-crc", test_bad_prelude_crc);
  g_test_add_func ("/event-stream/bad-message-crc", test_bad_message_crc);
  g_test_add_func ("/event-stream/truncated", test_truncated);
  g_test_add_func ("/event-stream/lengths", test_lengths);
  g_test_add_func ("/event-stream/bad-headers", test_bad_headers);
  g_test_add_func ("/event-stream/exception", test_exception_and_error);

  return g_test_run ();
}
