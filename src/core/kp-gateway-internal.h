/* kp-gateway-internal.h: what the rooms of the gateway share
 *
 * Only kp-gateway.c and kp-gateway-*.c include this.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include "http/kp-http1-pool.h"
#include "kp-access-token.h"
#include "kp-gateway-private.h"
#include "kp-server.h"

G_BEGIN_DECLS

/* Enough pooled connections per provider for 64 concurrent streams. libsoup
 * 3.2 defaults to 2 per host; a much larger limit made it stop reusing idle
 * keep-alive connections, so the limit matches the concurrency we plan for.
 */
#define MAX_CONNS_PER_HOST 64
#define MAX_CONNS          256

#define DEFAULT_CONNECT_MS    15000
#define DEFAULT_FIRST_BYTE_MS 300000
#define DEFAULT_IDLE_MS       300000

struct _KpGateway
{
  GObject        parent_instance;

  KpCatalog     *catalog;
  KpVault       *vault;
  KpLedger      *ledger;
  KpRefresh     *refresh;
  KpServer      *server;
  SoupSession   *session;
  SoupSession   *local_session;    /* for providers on this machine: no proxy */
  SoupSession   *auth_session;     /* OAuth token endpoints and account setup */
  KpHttp1Pool   *relay_pool;       /* relays' requests to providers (http/) */
  KpHttp1Pool   *local_relay_pool; /* the same, for providers on this machine: no proxy */
  GHashTable    *relays;           /* in flight: KpRelay → itself (owned) */
  GPtrArray     *credentials;      /* of KpCredential, by id */
  GHashTable    *disabled;         /* provider ids switched off */
  KpKeyHealth   *health;           /* what failures mean for keys and offerings */
  KpAccessToken *token;            /* what clients must send */
  KpClients     *clients;          /* named client tokens */
  KpBudgets     *budgets;          /* spend limits, with this day's and month's spend */
  guint          rotation;         /* plans with ties so far: equal routes take turns */

  guint          port;
  char          *providers_dir;
  char          *config_dir;
  char          *data_dir;
  char          *keyring_problem;  /* why the keyring cannot be used, or NULL */
  gboolean       use_keyring;
  gboolean       loaded;
  GStrv          allowed_origins;
  gsize          body_limit;
  guint          conns_per_host;   /* Keypool's own pool of upstream connections */
  gsize          body_cap;         /* reads from providers */
  gsize          event_cap;
  gsize          list_cap;
  guint          connect_ms;
  guint          first_byte_ms;
  guint          idle_ms;
  KpClientLimits client_limits;
  gint64         started_us;
  char          *models_json;
  gsize          models_json_len;
  char          *models_usable;    /* the usable providers models_json was built for */
  gboolean       catalog_changed;  /* models_json is out of date whatever is usable */
  guint          models_builds;
  guint          changed_id;       /* a coalesced ::changed to come */
  gint64         changed_us;       /* monotonic time of the last ::changed */
  gboolean       serving;
};

/* kp-gateway.c */
void kp_gateway_emit_request_finished (KpGateway *self,
                                       KpRelay   *relay);

/* kp-gateway-routes.c */
void kp_gateway_update_models_json    (KpGateway *self);

G_END_DECLS
