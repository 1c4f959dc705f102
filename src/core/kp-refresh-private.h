/* kp-refresh-private.h: what the rooms of the refresh share
 *
 * Only kp-refresh.c and kp-refresh-*.c include this.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <libsoup/soup.h>

#include "kp-credential.h"
#include "kp-refresh.h"

G_BEGIN_DECLS

/* The setting that remembers when the last full refresh ended. */
#define LAST_RUN_SETTING "catalog-refreshed-at"

struct _KpRefresh
{
  GObject      parent_instance;

  KpGateway   *gateway;      /* unowned: the gateway owns the refresh */
  SoupSession *own_session;  /* when the gateway serves nothing (a command) */
  GHashTable  *states;       /* provider id → KpRefreshRow */
  struct _Run *run;          /* in flight, or NULL */
  GPtrArray   *queued;       /* of GTask, for the run after this one */
  guint        timer_id;
  gboolean     started;
  gint64       interval_ms;  /* 0 = only on demand */
  guint        timeout_ms;   /* per provider */
  gint64       last_run;     /* unix s the last full refresh ended */
  gint64       last_run_us;  /* the same in µs, when it ended in this process */
};

typedef struct _Run Run;

typedef struct _Job Job;

/* The balance of one key: each key may be an account of its own. */
typedef struct
{
  Job          *job;           /* unowned: the job owns its balances */
  KpCredential *credential;
  gboolean      has_balance;
  gboolean      available;
  double        balance;
  char         *currency;
  char         *error;
} Balance;

/* One provider's part of a run. */
struct _Job
{
  Run          *run;           /* unowned: the run owns its jobs */
  char         *id;
  KpProvider   *provider;
  KpCredential *credential;    /* the key its model list is asked with, or NULL */
  GCancellable *cancellable;
  guint         timeout_id;
  gboolean      timed_out;
  guint         pending;       /* HTTP exchanges not yet answered */
  char         *models_url;
  GArray       *models;        /* of KpLiveModel, once parsed */
  char         *models_error;
  GPtrArray    *balances;      /* of Balance: one for each usable key */
};

struct _Run
{
  KpRefresh    *refresh;       /* owned */
  GStrv         only;          /* these providers, or NULL for all */
  GPtrArray    *jobs;          /* of Job */
  GPtrArray    *tasks;         /* of GTask waiting for this run */
  GPtrArray    *results;       /* of KpRefreshResult */
  GCancellable *cancellable;
  guint         pending;       /* jobs not yet done */
};

/* kp-refresh.c */
void kp_refresh_notify_running (KpRefresh       *self);
void kp_refresh_emit_finished  (KpRefresh       *self);

/* kp-refresh-run.c */
void kp_refresh_schedule       (KpRefresh       *self);
void kp_refresh_run_start      (KpRefresh       *self,
                                GStrv            only,
                                GPtrArray       *tasks);

/* kp-refresh-parse.c */
void kp_refresh_parse_balance  (Balance         *balance,
                                KpBalanceFormat  format,
                                GBytes          *body);

G_END_DECLS
