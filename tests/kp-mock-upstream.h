/* kp-mock-upstream.h: an OpenAI-compatible provider for tests
 *
 * A real SoupServer on an ephemeral loopback port. What it does is chosen by
 * the model the request names (see kp-mock-upstream.c for the list).
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <libsoup/soup.h>

G_BEGIN_DECLS

typedef struct _KpMockUpstream KpMockUpstream;

typedef struct
{
  guint   requests;         /* API requests received (chat, messages, responses, …) */
  guint   cancelled;        /* responses the client (Keypool) broke off */
  guint   completed;        /* responses written to the end */
  char   *last_body;        /* the last API request's body */
  char   *last_auth;        /* its Authorization header */
  char   *last_path;
  char   *last_anthropic_beta;     /* headers of the last Anthropic request */
  char   *last_anthropic_version;
  GArray *emit_times;       /* of gint64: monotonic µs each content chunk was written */
  GHashTable *by_key;       /* Authorization value → requests (GUINT_TO_POINTER) */
  GPtrArray  *log;          /* of char*: the last requests as JSON, for GET /mock/requests */
} KpMockStats;

guint           kp_mock_upstream_count_key     (KpMockUpstream *self,
                                                const char     *key);

KpMockUpstream *kp_mock_upstream_new           (GError        **error);
void            kp_mock_upstream_free          (KpMockUpstream *self);
const char     *kp_mock_upstream_get_url       (KpMockUpstream *self);
guint           kp_mock_upstream_get_port      (KpMockUpstream *self);
KpMockStats    *kp_mock_upstream_get_stats     (KpMockUpstream *self);
void            kp_mock_upstream_reset         (KpMockUpstream *self);
void            kp_mock_upstream_set_chunks    (KpMockUpstream *self,
                                                guint           n_chunks,
                                                guint           interval_ms);
void            kp_mock_upstream_set_chunk_padding (KpMockUpstream *self,
                                                    gsize           bytes);

/* The Anthropic side (kp-mock-anthropic.c). */
void            kp_mock_anthropic_handle       (KpMockStats       *stats,
                                                SoupServerMessage *msg);
const char     *kp_mock_anthropic_stream       (const char        *model);
const char     *kp_mock_anthropic_message      (const char        *model);

/* Gemini's generateContent (kp-mock-gemini.c). */
void            kp_mock_gemini_handle          (KpMockStats       *stats,
                                                SoupServerMessage *msg,
                                                const char        *path,
                                                GHashTable        *query);

/* OpenAI's other APIs (kp-mock-responses.c, kp-mock-embeddings.c,
 * kp-mock-completions.c).
 */
void            kp_mock_responses_handle       (KpMockStats       *stats,
                                                guint              n_chunks,
                                                SoupServerMessage *msg);
void            kp_mock_embeddings_handle      (KpMockStats       *stats,
                                                SoupServerMessage *msg);
void            kp_mock_completions_handle     (KpMockStats       *stats,
                                                guint              n_chunks,
                                                SoupServerMessage *msg);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (KpMockUpstream, kp_mock_upstream_free)

G_END_DECLS
