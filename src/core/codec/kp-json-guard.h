/* kp-json-guard.h: a nesting depth check before json-glib parses
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
} KpJsonError;

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

G_END_DECLS
