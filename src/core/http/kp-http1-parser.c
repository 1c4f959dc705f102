/* kp-http1-parser.c: a strict, bounded HTTP/1.1 response parser
 *
 * Everything a provider sends is untrusted: the head is capped in size and in
 * number of headers, obs-fold, NUL and control characters are refused, a
 * chunk-size line is capped, and trailers are read, bounded and dropped.
 * An answer that carries both Content-Length and Transfer-Encoding is
 * refused (the request-smuggling rule of RFC 9112 §6.1 lets a client reject
 * it; Keypool does, rather than guess which one the peer meant).
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include <string.h>

#include "kp-http1-parser.h"

void
kp_http1_parser_init (KpHttp1Parser *parser)
{
  *parser = (KpHttp1Parser) { .state = KP_HTTP1_HEAD };
}

void
kp_http1_parser_clear (KpHttp1Parser *parser)
{
  g_clear_pointer (&parser->headers, soup_message_headers_unref);
  kp_http1_parser_init (parser);
}

static gboolean
fail (GError    **error,
      const char *message)
{
  g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, message);
  return FALSE;
}

/* The same for a function that returns a count: -1. */
static gssize
refuse (GError    **error,
        const char *message)
{
  fail (error, message);
  return -1;
}

static gboolean
is_tchar (guchar c)
{
  return g_ascii_isalnum (c) || (c != 0 && strchr ("!#$%&'*+-.^_`|~", c) != NULL);
}

/* Whether the comma-separated list @value holds @token. */
static gboolean
list_has_token (const char *value,
                const char *token)
{
  g_auto(GStrv) items = NULL;

  if (value == NULL)
    return FALSE;
  items = g_strsplit (value, ",", -1);
  for (guint i = 0; items[i] != NULL; i++)
    if (g_ascii_strcasecmp (g_strstrip (items[i]), token) == 0)
      return TRUE;
  return FALSE;
}

static gboolean
parse_status_line (KpHttp1Parser *parser,
                   const char    *line,
                   gsize          len,
                   GError       **error)
{
  guint status = 0;

  /* "HTTP/1.x SSS" and an optional reason. */
  if (len < 12 || memcmp (line, "HTTP/1.", 7) != 0 || (line[7] != '0' && line[7] != '1') ||
      line[8] != ' ' || (len > 12 && line[12] != ' '))
    return fail (error, "the provider's answer does not begin with an HTTP/1 status line");
  for (guint i = 9; i < 12; i++)
    {
      if (!g_ascii_isdigit (line[i]))
        return fail (error, "the provider's answer has a malformed status code");
      status = status * 10 + (line[i] - '0');
    }
  for (gsize i = 13; i < len; i++)
    if (((guchar)line[i] < 0x20 && line[i] != '\t') || line[i] == 0x7f)
      return fail (error, "the provider's status line has a control character");
  if (status < 100)
    return fail (error, "the provider's answer has a malformed status code");

  parser->status = status;
  parser->minor_version = line[7] - '0';
  return TRUE;
}

static gboolean
parse_header_line (SoupMessageHeaders *headers,
                   const char         *line,
                   gsize               len,
                   GError            **error)
{
  gsize colon = 0;
  gsize start, end;
  g_autofree char *name = NULL;
  g_autofree char *value = NULL;

  if (line[0] == ' ' || line[0] == '\t')
    return fail (error, "the provider's answer folds a header line (obsolete, refused)");
  while (colon < len && is_tchar (line[colon]))
    colon++;
  if (colon == 0 || colon == len || line[colon] != ':')
    return fail (error, "the provider's answer has a malformed header name");
  start = colon + 1;
  end = len;
  for (gsize i = start; i < end; i++)
    if (((guchar)line[i] < 0x20 && line[i] != '\t') || line[i] == 0x7f)
      return fail (error, "the provider's answer has a control character in a header");
  while (start < end && (line[start] == ' ' || line[start] == '\t'))
    start++;
  while (end > start && (line[end - 1] == ' ' || line[end - 1] == '\t'))
    end--;

  name = g_strndup (line, colon);
  value = g_strndup (line + start, end - start);
  soup_message_headers_append (headers, name, value);
  return TRUE;
}

/* The headers are in: how the body is framed, and whether the connection
 * may serve another request after it.
 */
static gboolean
set_framing (KpHttp1Parser *parser,
             GError       **error)
{
  SoupMessageHeaders *headers = parser->headers;
  const char *te = soup_message_headers_get_list (headers, "Transfer-Encoding");
  const char *cl = soup_message_headers_get_list (headers, "Content-Length");
  const char *connection = soup_message_headers_get_list (headers, "Connection");
  const char *coding = soup_message_headers_get_list (headers, "Content-Encoding");

  /* One coding of those asked for; "identity" or none is none. */
  parser->coding = KP_HTTP1_CODING_IDENTITY;
  if (coding != NULL && *coding != '\0' && g_ascii_strcasecmp (coding, "identity") != 0)
    {
      if (g_ascii_strcasecmp (coding, "gzip") == 0 || g_ascii_strcasecmp (coding, "x-gzip") == 0)
        parser->coding = KP_HTTP1_CODING_GZIP;
      else if (g_ascii_strcasecmp (coding, "deflate") == 0)
        parser->coding = KP_HTTP1_CODING_DEFLATE;
      else
        return fail (error, "the provider's answer uses a content coding Keypool did not ask for");
    }

  if (parser->minor_version == 0)
    parser->keep_alive = list_has_token (connection, "keep-alive");
  else
    parser->keep_alive = !list_has_token (connection, "close");

  if (parser->status == 204 || parser->status == 304)
    {
      parser->state = KP_HTTP1_DONE;
      return TRUE;
    }

  if (te != NULL)
    {
      if (cl != NULL)
        return fail (error, "the provider's answer has both Content-Length and Transfer-Encoding");
      if (g_ascii_strcasecmp (te, "chunked") != 0)
        return fail (error, "the provider's answer uses a transfer coding other than chunked");
      parser->state = KP_HTTP1_CHUNK_SIZE;
      return TRUE;
    }

  if (cl != NULL)
    {
      g_auto(GStrv) values = g_strsplit (cl, ",", -1);
      guint64 length = 0;

      /* Repeated Content-Length headers must agree. */
      for (guint i = 0; values[i] != NULL; i++)
        {
          const char *v = g_strstrip (values[i]);
          guint64 n = 0;

          if (*v == '\0' || strlen (v) > 18 || strspn (v, "0123456789") != strlen (v))
            return fail (error, "the provider's answer has a malformed Content-Length");
          n = g_ascii_strtoull (v, NULL, 10);
          if (i > 0 && n != length)
            return fail (error, "the provider's answer has conflicting Content-Length headers");
          length = n;
        }
      parser->remaining = length;
      parser->state = length > 0 ? KP_HTTP1_BODY_LENGTH : KP_HTTP1_DONE;
      return TRUE;
    }

  parser->keep_alive = FALSE;
  parser->state = KP_HTTP1_BODY_CLOSE;
  return TRUE;
}

/**
 * kp_http1_find_head_end:
 * @scanned: (inout): where to look from; on 0 returned, where to look from
 *   once more bytes came
 *
 * Finds the blank line that ends a head, of a request or an answer.
 *
 * Returns: the offset past the blank line, or 0 when it has not come yet
 */
gsize
kp_http1_find_head_end (const char *data,
                        gsize       len,
                        gsize      *scanned)
{
  for (gsize i = *scanned; i < len; i++)
    {
      if (data[i] != '\n')
        continue;
      if (i + 1 < len && data[i + 1] == '\n')
        return i + 2;
      if (i + 2 < len && data[i + 1] == '\r' && data[i + 2] == '\n')
        return i + 3;
      if (i + 2 >= len)
        {
          /* Not known yet: look at this line end again with more bytes. */
          *scanned = i;
          return 0;
        }
    }
  *scanned = len;
  return 0;
}

/**
 * kp_http1_parser_head:
 * @data: the bytes received since the head began
 *
 * Returns: the bytes the head took (then the state says what follows; a 1xx
 *   answer leaves it reading a head again), 0 when more are needed, or -1
 */
gssize
kp_http1_parser_head (KpHttp1Parser *parser,
                      const char    *data,
                      gsize          len,
                      GError       **error)
{
  g_autoptr(SoupMessageHeaders) headers = NULL;
  gsize from = parser->scanned;
  gsize end, pos = 0;
  guint count = 0;

  g_assert (parser->state == KP_HTTP1_HEAD);

  end = kp_http1_find_head_end (data, MIN (len, KP_HTTP1_HEAD_MAX), &parser->scanned);
  if (end == 0)
    {
      if (len >= KP_HTTP1_HEAD_MAX)
        return refuse (error, "the provider's answer headers are larger than 64 KiB");
      /* Only the bytes not looked at before: a head in many pieces costs
       * no more than one in one.
       */
      if (len > from && memchr (data + from, '\0', len - from) != NULL)
        return refuse (error, "the provider's answer has a NUL byte in its head");
      return 0;
    }
  if (memchr (data, '\0', end) != NULL)
    return refuse (error, "the provider's answer has a NUL byte in its head");

  headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
  while (pos < end)
    {
      const char *nl = memchr (data + pos, '\n', end - pos);
      gsize line_len = nl - (data + pos);

      if (line_len > 0 && data[pos + line_len - 1] == '\r')
        line_len--;
      if (memchr (data + pos, '\r', line_len) != NULL)
        return refuse (error, "the provider's answer has a bare CR in its head");

      if (pos == 0)
        {
          if (!parse_status_line (parser, data, line_len, error))
            return -1;
        }
      else if (line_len > 0)
        {
          if (++count > KP_HTTP1_HEADERS_MAX)
            return refuse (error, "the provider's answer has more than 128 headers");
          if (!parse_header_line (headers, data + pos, line_len, error))
            return -1;
        }
      pos = (nl - data) + 1;
    }

  parser->scanned = 0;
  if (parser->status < 200)
    {
      /* An interim answer (100 Continue, 103 Early Hints): the real one follows. */
      if (parser->status == 101)
        return refuse (error, "the provider switched protocols, which Keypool did not ask for");
      return end;
    }

  g_clear_pointer (&parser->headers, soup_message_headers_unref);
  parser->headers = g_steal_pointer (&headers);
  if (!set_framing (parser, error))
    return -1;
  return end;
}

/* One byte of a chunk-size line ("1a;name=value\r\n"). FALSE on an error. */
static gboolean
chunk_size_byte (KpHttp1Parser *parser,
                 guchar         c,
                 GError       **error)
{
  if (++parser->line_len > KP_HTTP1_LINE_MAX)
    return fail (error, "the provider's chunk-size line is longer than 1 KiB");

  if (parser->line_cr && c != '\n')
    return fail (error, "the provider's chunk-size line has a bare CR");

  if (c == '\n')
    {
      if (parser->digits == 0)
        return fail (error, "the provider's answer has a malformed chunk size");
      parser->line_len = 0;
      parser->digits = 0;
      parser->in_extension = FALSE;
      parser->line_cr = FALSE;
      parser->state = parser->remaining > 0 ? KP_HTTP1_CHUNK_DATA : KP_HTTP1_TRAILERS;
      return TRUE;
    }
  if (c == '\r')
    {
      parser->line_cr = TRUE;
      return TRUE;
    }

  if (!parser->in_extension && g_ascii_isxdigit (c))
    {
      /* 15 hex digits are well past any body Keypool would accept. */
      if (++parser->digits > 15)
        return fail (error, "the provider's chunk size is too large");
      parser->remaining = parser->remaining * 16 + g_ascii_xdigit_value (c);
      return TRUE;
    }
  if (parser->digits > 0 && (c == ';' || c == ' ' || c == '\t'))
    {
      parser->in_extension = TRUE;
      return TRUE;
    }
  if (parser->in_extension && (c >= 0x20 || c == '\t') && c != 0x7f)
    return TRUE;
  return fail (error, "the provider's answer has a malformed chunk size");
}

/* One byte of the trailer section, which is dropped. */
static gboolean
trailer_byte (KpHttp1Parser *parser,
              guchar         c,
              GError       **error)
{
  if (++parser->trailer_len > KP_HTTP1_HEAD_MAX)
    return fail (error, "the provider's trailers are larger than 64 KiB");
  if (parser->line_cr && c != '\n')
    return fail (error, "the provider's trailers have a bare CR");
  if (c == '\n')
    {
      if (parser->line_len == 0)
        parser->state = KP_HTTP1_DONE;
      parser->line_len = 0;
      parser->line_cr = FALSE;
      return TRUE;
    }
  if (c == '\r')
    {
      parser->line_cr = TRUE;
      return TRUE;
    }
  if (c == '\0')
    return fail (error, "the provider's trailers have a NUL byte");
  parser->line_len++;
  return TRUE;
}

/**
 * kp_http1_parser_body:
 * @body_start: (out): where the body bytes found begin, in @data
 * @body_len: (out): how many there are (0 for none)
 *
 * Decodes the body's framing in @data up to its first run of body bytes.
 *
 * Returns: the bytes of @data used, or -1
 */
gssize
kp_http1_parser_body (KpHttp1Parser *parser,
                      const guint8  *data,
                      gsize          len,
                      gsize         *body_start,
                      gsize         *body_len,
                      GError       **error)
{
  gsize pos = 0;

  *body_start = 0;
  *body_len = 0;

  while (pos < len)
    {
      switch (parser->state)
        {
        case KP_HTTP1_BODY_CLOSE:
          *body_start = pos;
          *body_len = len - pos;
          return len;

        case KP_HTTP1_BODY_LENGTH:
        case KP_HTTP1_CHUNK_DATA:
          {
            gsize n = (gsize)MIN ((guint64)(len - pos), parser->remaining);

            *body_start = pos;
            *body_len = n;
            parser->remaining -= n;
            if (parser->remaining == 0)
              parser->state = parser->state == KP_HTTP1_BODY_LENGTH ? KP_HTTP1_DONE
                                                                   : KP_HTTP1_CHUNK_END;
            return pos + n;
          }

        case KP_HTTP1_CHUNK_SIZE:
          if (!chunk_size_byte (parser, data[pos++], error))
            return -1;
          break;

        case KP_HTTP1_CHUNK_END:
          {
            guchar c = data[pos++];

            if (c == '\r' && !parser->line_cr)
              parser->line_cr = TRUE;
            else if (c == '\n')
              {
                parser->line_cr = FALSE;
                parser->state = KP_HTTP1_CHUNK_SIZE;
              }
            else
              {
                fail (error, "the provider's chunk is longer than its size says");
                return -1;
              }
          }
          break;

        case KP_HTTP1_TRAILERS:
          if (!trailer_byte (parser, data[pos++], error))
            return -1;
          /* What follows the answer is not the body's. */
          if (parser->state == KP_HTTP1_DONE)
            return pos;
          break;

        case KP_HTTP1_DONE:
          /* Bytes after the answer: the connection is not trusted again. */
          parser->keep_alive = FALSE;
          return len;

        case KP_HTTP1_HEAD:
        default:
          g_assert_not_reached ();
        }
    }
  return pos;
}

/**
 * kp_http1_parser_eof:
 *
 * The peer closed the connection.
 *
 * Returns: whether the body was complete
 */
gboolean
kp_http1_parser_eof (KpHttp1Parser *parser,
                     GError       **error)
{
  if (parser->state == KP_HTTP1_BODY_CLOSE)
    {
      parser->state = KP_HTTP1_DONE;
      return TRUE;
    }
  if (parser->state == KP_HTTP1_DONE)
    return TRUE;

  g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_PARTIAL_INPUT,
                       parser->state == KP_HTTP1_HEAD
                         ? "the provider closed the connection before answering"
                         : "the provider closed the connection before the answer was complete");
  return FALSE;
}
