/* bench-util.h: helpers the benchmark programs share
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <stddef.h>
#include <stdint.h>

/* The program's name, for messages; each program sets it first. */
extern const char *bench_program;

int64_t now_ns      (void);
void    die         (const char  *what);
void   *xrealloc    (void        *p,
                     size_t       size);
const char *find_header (const char *headers,
                         const char *end,
                         const char *name,
                         size_t     *vlen);
void    buf_reserve (char       **buf,
                     size_t      *cap,
                     size_t       need);
