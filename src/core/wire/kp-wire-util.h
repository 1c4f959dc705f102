/* kp-wire-util.h: logic more than one wire needs, that is no one wire's
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <json-glib/json-glib.h>

G_BEGIN_DECLS

typedef gboolean (*KpWireItemFilter) (JsonNode *item);

JsonArray *kp_wire_require_list (JsonObject        *request,
                                 const char        *member,
                                 const char        *items,
                                 GError           **error);
JsonArray *kp_wire_messages     (JsonObject        *request,
                                 const char        *one_answer,
                                 GError           **error);
void       kp_wire_add_turn     (JsonArray         *turns,
                                 const char        *role,
                                 const char        *member,
                                 JsonArray         *items,
                                 KpWireItemFilter   goes_first);
void       kp_wire_append_event (GString           *out,
                                 const char        *name,
                                 const char        *data,
                                 const char        *eol);

G_END_DECLS
