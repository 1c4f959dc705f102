/* kp-mock-kiro.h: Kiro's generateAssistantResponse for tests
 *
 * A real SoupServer on an ephemeral loopback port that answers in the AWS
 * event stream. What it does is chosen by the modelId of the request (see
 * kp-mock-kiro.c). Its streams are written from the fixtures in
 * tests/fixtures/kiro/ (the .events files), a line per message:
 *
 *   event <event-type> <JSON payload>
 *   exception <exception-type> <JSON payload>
 *   # a comment
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <libsoup/soup.h>

G_BEGIN_DECLS

typedef struct _KpMockKiro KpMockKiro;

typedef struct
{
  guint  refreshes;
  char  *last_refresh_path;
  char  *last_refresh_body;
  guint  usage_reads;
  char  *last_usage_auth;
  char  *last_usage_arn;
  guint  model_reads;
} KpMockKiroStats;

KpMockKiro *kp_mock_kiro_new            (GError     **error);
void        kp_mock_kiro_free           (KpMockKiro  *self);
const char *kp_mock_kiro_get_url        (KpMockKiro  *self);
guint       kp_mock_kiro_get_requests   (KpMockKiro  *self);
const char *kp_mock_kiro_get_last_body  (KpMockKiro  *self);
const char *kp_mock_kiro_get_last_auth  (KpMockKiro  *self);

void        kp_mock_kiro_set_refresh    (KpMockKiro  *self,
                                         const char  *refresh_token,
                                         gboolean     rotate);
void        kp_mock_kiro_require_token  (KpMockKiro  *self,
                                         const char  *access_token);
void        kp_mock_kiro_set_usage_answer (KpMockKiro *self,
                                           const char *answer);
KpMockKiroStats *kp_mock_kiro_get_stats (KpMockKiro  *self);

GByteArray *kp_mock_kiro_load_events    (const char  *name);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (KpMockKiro, kp_mock_kiro_free)

G_END_DECLS
