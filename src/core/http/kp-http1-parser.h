/* kp-http1-parser.h: a strict, bounded HTTP/1.1 response parser
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <libsoup/soup.h>

G_BEGIN_DECLS

#define KP_HTTP1_HEAD_MAX     (64 * 1024)  /* status line and headers together */
#define KP_HTTP1_HEADERS_MAX  128
#define KP_HTTP1_LINE_MAX     1024         /* a chunk-size line */

typedef enum
{
  KP_HTTP1_HEAD,          /* reading the status line and headers */
  KP_HTTP1_BODY_LENGTH,   /* Content-Length bytes */
  KP_HTTP1_BODY_CLOSE,    /* everything until the peer closes */
  KP_HTTP1_CHUNK_SIZE,    /* a chunk-size line, with its extensions */
  KP_HTTP1_CHUNK_DATA,
  KP_HTTP1_CHUNK_END,     /* the CRLF after a chunk's data */
  KP_HTTP1_TRAILERS,      /* read and dropped */
  KP_HTTP1_DONE,
} KpHttp1State;

/* The content codings Keypool asks for, as libsoup's decoder did. */
typedef enum
{
  KP_HTTP1_CODING_IDENTITY,
  KP_HTTP1_CODING_GZIP,
  KP_HTTP1_CODING_DEFLATE,
} KpHttp1Coding;

typedef struct
{
  KpHttp1State        state;
  KpHttp1Coding       coding;         /* of the body */
  guint               status;
  guint               minor_version;
  gboolean            keep_alive;     /* the framing and headers allow another request */
  SoupMessageHeaders *headers;        /* of the final (not 1xx) answer */
  guint64             remaining;      /* of a Content-Length body or a chunk */
  gsize               scanned;        /* of the head: no blank line before this */
  gsize               line_len;       /* of the chunk-size or trailer line so far */
  gsize               trailer_len;    /* all trailers so far */
  guint               digits;         /* of the chunk size */
  gboolean            in_extension;   /* past the chunk size, in its extensions */
  gboolean            line_cr;        /* the line's last byte was a CR */
} KpHttp1Parser;

void     kp_http1_parser_init   (KpHttp1Parser  *parser);
void     kp_http1_parser_clear  (KpHttp1Parser  *parser);
gssize   kp_http1_parser_head   (KpHttp1Parser  *parser,
                                 const char     *data,
                                 gsize           len,
                                 GError        **error);
gssize   kp_http1_parser_body   (KpHttp1Parser  *parser,
                                 const guint8   *data,
                                 gsize           len,
                                 gsize          *body_start,
                                 gsize          *body_len,
                                 GError        **error);
gboolean kp_http1_parser_eof    (KpHttp1Parser  *parser,
                                 GError        **error);
gsize    kp_http1_find_head_end (const char     *data,
                                 gsize           len,
                                 gsize          *scanned);

G_END_DECLS
