/* kp-http1-answers.h: a hand-made provider answer for the HTTP/1.1 tests
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

/* A 100 Continue, then a chunked answer with extensions and trailers. */
static const char chunked_answer[] =
  "HTTP/1.1 100 Continue\r\n\r\n"
  "HTTP/1.1 200 OK\r\n"
  "Content-Type: text/event-stream\r\n"
  "Transfer-Encoding: chunked\r\n"
  "X-Test:  padded value \t\r\n"
  "\r\n"
  "5;name=value\r\nhello\r\n"
  "1\r\n \r\n"
  "5 ; ext\r\nworld\r\n"
  "0\r\n"
  "X-Trailer: dropped\r\n"
  "\r\n";
