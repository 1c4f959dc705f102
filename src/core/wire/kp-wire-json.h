/* kp-wire-json.h: reading JSON of any shape, writing JSON text fast
 *
 * What every wire needs: a provider or a client may send any JSON, so every
 * getter checks the node's type and answers NULL or FALSE otherwise.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <json-glib/json-glib.h>

G_BEGIN_DECLS

JsonNode    *kp_json_member       (JsonObject *object,
                                   const char *member);
JsonObject  *kp_json_object       (JsonObject *object,
                                   const char *member);
JsonArray   *kp_json_array        (JsonObject *object,
                                   const char *member);
const char  *kp_json_node_string  (JsonNode   *node);
const char  *kp_json_string       (JsonObject *object,
                                   const char *member);
const char  *kp_json_string_or    (JsonObject *object,
                                   const char *member,
                                   const char *fallback);
gboolean     kp_json_is_number    (JsonNode   *node);
gboolean     kp_json_int          (JsonObject *object,
                                   const char *member,
                                   gint64     *value);
gint64       kp_json_int_or       (JsonObject *object,
                                   const char *member,
                                   gint64      fallback);
gboolean     kp_json_bool         (JsonObject *object,
                                   const char *member,
                                   gboolean   *value);
gboolean     kp_json_bool_or      (JsonObject *object,
                                   const char *member,
                                   gboolean    fallback);
gboolean     kp_json_double       (JsonObject *object,
                                   const char *member,
                                   double     *value);
gboolean     kp_json_nonempty     (const char *text);
void         kp_json_copy_number  (JsonObject *from,
                                   const char *member,
                                   JsonObject *to,
                                   const char *as);
JsonObject  *kp_json_parse_object (const char *text,
                                   gssize      len);
void         kp_json_ask_usage    (JsonObject *request);
JsonNode    *kp_json_object_node  (JsonObject *object);
JsonObject  *kp_json_array_object (JsonArray  *array,
                                   guint       index);
void         kp_json_append_string (GString   *out,
                                   const char *text);
char        *kp_json_to_string    (JsonNode   *node,
                                   gsize      *length);

G_END_DECLS
