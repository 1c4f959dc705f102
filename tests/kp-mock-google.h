/* kp-mock-google.h: Google's OAuth token endpoint and Code Assist API, for tests
 *
 * A real SoupServer on an ephemeral loopback port:
 *   POST /token                         refresh_token and authorization_code grants
 *   GET  /auth                          never asked: the test plays the browser
 *   POST /v1internal:loadCodeAssist     as the chosen tier says
 *   POST /v1internal:onboardUser        a long-running operation
 *   GET  /v1internal/operations/ID      done after the chosen number of polls
 *   POST /v1internal:retrieveUserQuota  the chosen buckets
 *   POST /v1internal:generateContent    and :streamGenerateContent, or an error
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <libsoup/soup.h>

G_BEGIN_DECLS

typedef enum
{
  KP_MOCK_TIER_EXISTING,   /* loadCodeAssist: a current tier and a project */
  KP_MOCK_TIER_ONBOARD,    /* no current tier: onboard to the standard tier */
  KP_MOCK_TIER_FREE,       /* no current tier: onboard to the free tier (no project) */
} KpMockTier;

typedef struct _KpMockGoogle KpMockGoogle;

typedef struct
{
  guint       refreshes;        /* refresh_token grants answered */
  guint       code_grants;      /* authorization_code grants answered */
  guint       loads;            /* loadCodeAssist */
  guint       onboards;         /* onboardUser */
  guint       polls;            /* operation polls */
  guint       generates;        /* generateContent and streamGenerateContent */
  guint       refused;          /* generate requests refused with 401 */
  char       *last_onboard;     /* the last onboardUser body */
  char       *last_generate;    /* the last generate body */
  char       *last_auth;        /* the last Code Assist Authorization header */
  char       *last_token_form;  /* the last token request's form, for scrub checks */
} KpMockGoogleStats;

KpMockGoogle      *kp_mock_google_new              (GError      **error);
void               kp_mock_google_free             (KpMockGoogle *self);
const char        *kp_mock_google_get_url          (KpMockGoogle *self);
KpMockGoogleStats *kp_mock_google_get_stats        (KpMockGoogle *self);
/* Refresh tokens the endpoint refuses (invalid_grant). */
void               kp_mock_google_kill_refresh_token (KpMockGoogle *self,
                                                    const char   *refresh_token);
void               kp_mock_google_set_expires_in   (KpMockGoogle *self,
                                                    gint64        expires_in);
/* The code a sign-in gives, and the PKCE challenge its verifier must match. */
void               kp_mock_google_expect_code      (KpMockGoogle *self,
                                                    const char   *code,
                                                    const char   *challenge,
                                                    const char   *redirect_uri);
void               kp_mock_google_set_tier         (KpMockGoogle *self,
                                                    KpMockTier    tier,
                                                    guint         polls_needed);
/* The next generate requests fail with this status and body (NULL: succeed). */
void               kp_mock_google_set_error        (KpMockGoogle *self,
                                                    guint         status,
                                                    const char   *body);
/* Access tokens the API refuses with 401. */
void               kp_mock_google_reject_access_token (KpMockGoogle *self,
                                                    const char   *access_token);
void               kp_mock_google_set_quota        (KpMockGoogle *self,
                                                    const char   *buckets_json);
/* While held, refresh answers wait (counted, not sent); released, they go out. */
void               kp_mock_google_hold_refreshes   (KpMockGoogle *self,
                                                    gboolean      hold);
guint              kp_mock_google_get_held         (KpMockGoogle *self);
void               kp_mock_google_hold_refusals    (KpMockGoogle *self,
                                                    guint         n);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (KpMockGoogle, kp_mock_google_free)

G_END_DECLS
