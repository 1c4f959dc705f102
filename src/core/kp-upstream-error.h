/* kp-upstream-error.h: what an upstream failure means for the route
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <libsoup/soup.h>

G_BEGIN_DECLS

typedef enum
{
  KP_FAILURE_NONE,
  KP_FAILURE_RATE_LIMITED,   /* next route; the key cools down */
  KP_FAILURE_QUOTA,          /* next route; the key is exhausted */
  KP_FAILURE_AUTH,           /* next route; the key is invalid */
  KP_FAILURE_NEEDS_USER,     /* next route; the account waits for its owner (a validation) */
  KP_FAILURE_MODEL_MISSING,  /* next route; the offering is suppressed */
  KP_FAILURE_DOWN,           /* next route; short cooldown with backoff */
  KP_FAILURE_CLIENT,         /* back to the client as it is */
} KpFailureClass;

/* A quota the provider documents as coming back at the start of a period. */
typedef enum
{
  KP_QUOTA_RESET_UNKNOWN,  /* Retry-After, or a default */
  KP_QUOTA_RESET_DAY,      /* 00:00 of the provider's next day */
  KP_QUOTA_RESET_MONTH,    /* 00:00 UTC on the first of next month (Kiro's) */
} KpQuotaReset;

typedef struct
{
  KpFailureClass  klass;
  char           *message;     /* the provider's own words, when it gave any */
  char           *code;        /* its error code, when it gave one */
  gint64          retry_after; /* seconds the provider asked to wait; -1 = not said */
  gboolean        overloaded;  /* the whole provider is busy (Anthropic's 529): not the key's fault */
  KpQuotaReset    quota_reset; /* QUOTA: the period the provider's quota is counted in */
  int             reset_utc_offset_min; /* ...for a day: its 00:00 is this far east of UTC */
  gboolean        account_locked; /* AUTH: the account itself is refused (suspended, banned):
                                   * no new token helps */
  char           *user_url;    /* KP_FAILURE_NEEDS_USER: the page where the owner acts, if given */
} KpFailure;

void           kp_failure_classify_http   (KpFailure          *failure,
                                           guint               status,
                                           SoupMessageHeaders *headers,
                                           const char         *body,
                                           gsize               body_len);
void           kp_failure_classify_event  (KpFailure          *failure,
                                           const char         *data);
void           kp_failure_clear           (KpFailure          *failure);
const char    *kp_failure_class_to_string (KpFailureClass      klass);
const char    *kp_quota_reset_to_string   (KpQuotaReset        reset);
gint64         kp_quota_reset_next        (KpQuotaReset        reset,
                                           int                 utc_offset_min,
                                           gint64              now);
gint64         kp_parse_retry_after       (const char         *value,
                                           gint64              now);
gint64         kp_parse_go_duration_ms    (const char         *value);

G_END_DECLS
