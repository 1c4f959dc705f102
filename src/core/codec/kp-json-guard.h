/* kp-json-guard.h: a nesting depth check before json-glib parses, and
 * kp-json-read.c's reader for the request path
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/* How deep JSON from outside may nest: far more than any API uses. */
#define KP_JSON_MAX_DEPTH 128

#define KP_JSON_ERROR (kp_json_error_quark ())

typedef enum
{
  KP_JSON_ERROR_TOO_DEEP,
  KP_JSON_ERROR_SYNTAX,
  KP_JSON_ERROR_NOT_UTF8,
} KpJsonError;

typedef enum
{
  KP_JSON_READ_NONE = 0,
  KP_JSON_READ_SEAL = 1 << 0,
} KpJsonReadFlags;

GQuark      kp_json_error_quark          (void);
gboolean    kp_json_check                (const char  *data,
                                          gssize       len,
                                          guint        max_depth,
                                          GError     **error);
gboolean    kp_json_parser_load_from_data (JsonParser *parser,
                                          const char  *data,
                                          gssize       len,
                                          GError     **error);
JsonNode   *kp_json_parse                (const char  *data,
                                          gssize       len,
                                          GError     **error);

/* kp-json-read.c */
JsonNode   *kp_json_read                 (const char      *data,
                                          gssize           len,
                                          KpJsonReadFlags  flags,
                                          GError         **error);
JsonNode   *kp_json_read_into            (JsonNode       **last,
                                          const char      *data,
                                          gssize           len);

G_END_DECLS
