/* bench-util.c: helpers the benchmark programs share
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "bench-util.h"

const char *bench_program = "bench";

int64_t
now_ns (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void
die (const char *what)
{
  fprintf (stderr, "%s: %s: %s\n", bench_program, what, strerror (errno));
  exit (1);
}

void *
xrealloc (void   *p,
          size_t  size)
{
  void *q = realloc (p, size);

  if (q == NULL)
    {
      fprintf (stderr, "%s: out of memory\n", bench_program);
      exit (1);
    }
  return q;
}

/* Grows a buffer to hold at least @need bytes, doubling. */
void
buf_reserve (char   **buf,
             size_t  *cap,
             size_t   need)
{
  size_t cap2 = *cap ? *cap : 4096;

  if (need <= *cap)
    return;
  while (cap2 < need)
    cap2 *= 2;
  *buf = xrealloc (*buf, cap2);
  *cap = cap2;
}

/* Header value of @name in [headers, end), or NULL; *vlen gets its length. */
const char *
find_header (const char *headers,
             const char *end,
             const char *name,
             size_t     *vlen)
{
  size_t nlen = strlen (name);
  const char *line = headers;

  while (line < end)
    {
      const char *eol = memmem (line, (size_t)(end - line), "\r\n", 2);

      if (eol == NULL)
        eol = end;
      if ((size_t)(eol - line) > nlen && line[nlen] == ':' &&
          strncasecmp (line, name, nlen) == 0)
        {
          const char *v = line + nlen + 1;

          while (v < eol && (*v == ' ' || *v == '\t'))
            v++;
          *vlen = (size_t)(eol - v);
          return v;
        }
      line = eol + 2;
    }
  return NULL;
}
