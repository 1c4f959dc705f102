/* kp-mock-private.h: what the mock provider's files share
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <json-glib/json-glib.h>

#include "kp-mock-upstream.h"

G_BEGIN_DECLS

JsonObject *kp_mock_read_request    (KpMockStats       *stats,
                                     SoupServerMessage *msg,
                                     const char        *auth_header);
void        kp_mock_reply_json      (SoupServerMessage *msg,
                                     guint              status,
                                     JsonObject        *object);
void        kp_mock_reply_sse       (SoupServerMessage *msg,
                                     GString           *events);
void        kp_mock_reply_error     (SoupServerMessage *msg,
                                     guint              status,
                                     const char        *message);
char       *kp_mock_object_to_data  (JsonObject        *object);
char       *kp_mock_answer_text     (guint              n_chunks);

void        kp_mock_gemini_embed_handle (KpMockStats       *stats,
                                         SoupServerMessage *msg,
                                         const char        *path);

void        kp_mock_agent_reply     (SoupServerMessage *msg,
                                     JsonObject        *request,
                                     gboolean           stream,
                                     gboolean           include_usage);

/* @member of @object when it is an object (an array), else NULL. */
static inline JsonObject *
kp_mock_object_member (JsonObject *object,
                       const char *member)
{
  JsonNode *node = object != NULL ? json_object_get_member (object, member) : NULL;

  return node != NULL && JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
}

static inline JsonArray *
kp_mock_array_member (JsonObject *object,
                      const char *member)
{
  JsonNode *node = object != NULL ? json_object_get_member (object, member) : NULL;

  return node != NULL && JSON_NODE_HOLDS_ARRAY (node) ? json_node_get_array (node) : NULL;
}

G_END_DECLS
