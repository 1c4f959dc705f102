/* kp-ledger.h: Keypool's sqlite store
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define KP_LEDGER_ERROR (kp_ledger_error_quark ())

typedef enum
{
  KP_LEDGER_ERROR_OPEN,
  KP_LEDGER_ERROR_NEWER,
  KP_LEDGER_ERROR_QUERY,
  KP_LEDGER_ERROR_NOT_FOUND,
  KP_LEDGER_ERROR_DAMAGED,   /* the database file is damaged */
  KP_LEDGER_ERROR_PENDING,   /* the row waits in memory; it is written when writes work again */
} KpLedgerError;

/* A credential's metadata. The secret itself lives in the keyring (or the
 * environment) and never here.
 */
typedef struct
{
  gint64  id;
  char   *provider;
  char   *label;
  double  multiplier;
  gboolean enabled;
  gint64  created;       /* unix seconds */
  char   *source;        /* "keyring" or "env" */
  char   *env_var;       /* for "env": the variable that holds it */
  char   *fingerprint;   /* a digest to notice that a key changed */
  char   *state;         /* "ok", "cooling", "exhausted", "invalid", "needs_user" */
  gint64  state_until;   /* unix seconds; 0 = until something changes */
  char   *last_error;
  char   *user_url;      /* "needs_user": the page where the owner acts; else NULL */
} KpCredentialRow;

/* Bounds on what a provider may make the ledger keep about an account
 * waiting for its owner: a longer URL is not kept, a longer reason is cut.
 */
#define KP_LEDGER_MAX_USER_URL    2048
#define KP_LEDGER_MAX_USER_REASON 512

/* One finished client request. */
typedef struct
{
  char     *request_id;
  gint64    time_ms;        /* unix ms when it arrived */
  char     *api;           /* the wire the client spoke: "openai-chat", "anthropic", … */
  char     *model;
  char     *provider;
  gint64    credential_id;  /* 0 = none */
  char     *upstream_model;
  guint     status;
  char     *outcome;
  char     *error;
  guint     attempts;
  gint64    prompt_tokens;
  gint64    completion_tokens;
  gint64    cached_tokens;
  gint64    cache_write_tokens;
  gint64    reasoning_tokens;
  gint64    cost_nano;
  char     *cost_source;
  gint64    ttfb_ms;        /* -1 = none */
  gint64    total_ms;
  gboolean  streamed;
  guint     client_id;      /* the client token it came with; 0 = the main token */
  char     *client_address; /* the client's IP address, as refusals keep it; NULL = unknown */
  gboolean  has_credits;    /* the provider said how many credits it used (Kiro) */
  double    credits;
  gboolean  tokens_estimated; /* the token counts are Keypool's guess, not the provider's */
} KpRequestRow;

/* One attempt of a request on one route. */
typedef struct
{
  char   *provider;
  gint64  credential_id;
  guint   status;
  char   *failure;        /* failure class, or NULL when it succeeded */
  gint64  ms;
} KpAttemptRow;

/* Requests refused before they reached a relay (a bad token, an unknown
 * path, ...), counted together while they repeat. Never a body, a header
 * or a token.
 */
typedef struct
{
  gint64  time_ms;   /* unix ms of the first refusal the row counts */
  gint64  last_ms;   /* of the last */
  guint   count;
  char   *method;
  char   *path;      /* NULL: refusals too many to keep apart, counted together */
  guint   status;
  char   *code;      /* the error code the client got: "invalid_api_key", ... */
  char   *client;    /* the client's address; NULL when not known */
} KpRefusalRow;

/* Why a tool "does nothing": a refusal or a request that failed. */
typedef struct
{
  gboolean  refused;   /* a refusal, else a failed request */
  gint64    time_ms;   /* when it (last) happened */
  guint     count;     /* how many times: refusals are counted together */
  guint     status;
  char     *method;    /* refusals only */
  char     *path;      /* refusals only; NULL for the refusals counted together */
  char     *model;     /* failed requests only */
  char     *api;       /* failed requests: the API the client spoke */
  char     *code;      /* a refusal's error code, or a failed request's outcome */
  char     *error;     /* failed requests: what went wrong, in words */
  char     *client;    /* the client's address; NULL when not known */
} KpProblemRow;

/* How the last catalog refresh of one provider went. */
typedef struct
{
  char     *provider;
  gint64    refreshed_at;  /* last attempt, unix seconds; 0 = never */
  gint64    ok_at;         /* last success: the cached model list is from then */
  char     *error;         /* the last attempt's error; NULL when it worked */
  gboolean  has_balance;
  double    balance;       /* in @currency, as the provider said */
  char     *currency;
  gint64    balance_at;
} KpRefreshRow;

typedef enum
{
  KP_SPEND_BY_PROVIDER,
  KP_SPEND_BY_MODEL,
  KP_SPEND_BY_KEY,
  KP_SPEND_BY_DAY,
  KP_SPEND_BY_CLIENT,   /* the key is the client's id; 0 = the main token */
} KpSpendBy;

typedef struct
{
  char   *key;       /* the group; for the day-and-provider query, the day */
  char   *provider;  /* only in the day-and-provider query */
  gint64  requests;
  gint64  cost_nano;       /* of the requests whose cost is known */
  gint64  unknown_cost;    /* requests whose cost is unknown */
  gint64  prompt_tokens;
  gint64  completion_tokens;
  gint64  subscription;    /* requests served by a subscription: no spend */
  gboolean has_credits;    /* some request said how many credits it used (Kiro) */
  double  credits;         /* their sum */
} KpSpendRow;

#define KP_TYPE_LEDGER (kp_ledger_get_type ())

G_DECLARE_FINAL_TYPE (KpLedger, kp_ledger, KP, LEDGER, GObject)

GQuark      kp_ledger_error_quark             (void);
KpLedger   *kp_ledger_open                    (const char            *path,
                                               GError               **error);
const char *kp_ledger_get_path                (KpLedger              *self);
const char *kp_ledger_get_problem             (KpLedger              *self);

gint64      kp_ledger_add_credential          (KpLedger              *self,
                                               const char            *provider,
                                               const char            *label,
                                               double                 multiplier,
                                               const char            *source,
                                               const char            *env_var,
                                               const char            *fingerprint,
                                               GError               **error);
gboolean    kp_ledger_remove_credential       (KpLedger              *self,
                                               gint64                 id,
                                               GError               **error);
GPtrArray  *kp_ledger_list_credentials        (KpLedger              *self,
                                               GError               **error);
gboolean    kp_ledger_set_credential_state    (KpLedger              *self,
                                               gint64                 id,
                                               const char            *state,
                                               gint64                 until,
                                               const char            *last_error,
                                               GError               **error);
void        kp_ledger_save_credential_state   (KpLedger              *self,
                                               gint64                 id,
                                               const char            *state,
                                               gint64                 until,
                                               const char            *last_error);
void        kp_ledger_save_credential_needs_user (KpLedger           *self,
                                               gint64                 id,
                                               const char            *url,
                                               const char            *reason);
char       *kp_ledger_bound_reason            (const char            *reason);
gboolean    kp_ledger_set_credential_options  (KpLedger              *self,
                                               gint64                 id,
                                               double                 multiplier,
                                               gboolean               enabled,
                                               GError               **error);
gboolean    kp_ledger_set_credential_fingerprint (KpLedger           *self,
                                               gint64                 id,
                                               const char            *fingerprint,
                                               GError               **error);
void        kp_credential_row_free            (KpCredentialRow       *row);

gboolean    kp_ledger_set_provider_enabled    (KpLedger              *self,
                                               const char            *provider,
                                               gboolean               enabled,
                                               GError               **error);
GHashTable *kp_ledger_get_disabled_providers  (KpLedger              *self,
                                               GError               **error);

char       *kp_ledger_get_setting             (KpLedger              *self,
                                               const char            *key);
gboolean    kp_ledger_set_setting             (KpLedger              *self,
                                               const char            *key,
                                               const char            *value,
                                               GError               **error);

gboolean    kp_ledger_save_live_models        (KpLedger              *self,
                                               const char            *provider,
                                               const char            *source,
                                               GArray                *models,
                                               gint64                 refreshed_at,
                                               GError               **error);
GArray     *kp_ledger_get_live_models         (KpLedger              *self,
                                               const char            *provider,
                                               gint64                *refreshed_at,
                                               GError               **error);
gboolean    kp_ledger_save_refresh            (KpLedger              *self,
                                               const KpRefreshRow    *row,
                                               GError               **error);
GPtrArray  *kp_ledger_list_refreshes          (KpLedger              *self,
                                               GError               **error);
void        kp_refresh_row_free               (KpRefreshRow          *row);

/* The same writes through the writer thread: the caller never waits. */
void        kp_ledger_add_credential_async    (KpLedger              *self,
                                               const char            *provider,
                                               const char            *label,
                                               double                 multiplier,
                                               const char            *source,
                                               const char            *env_var,
                                               const char            *fingerprint,
                                               GAsyncReadyCallback    callback,
                                               gpointer               user_data);
gint64      kp_ledger_add_credential_finish   (KpLedger              *self,
                                               GAsyncResult          *result,
                                               GError               **error);
void        kp_ledger_remove_credential_async (KpLedger              *self,
                                               gint64                 id,
                                               GAsyncReadyCallback    callback,
                                               gpointer               user_data);
void        kp_ledger_set_credential_options_async (KpLedger         *self,
                                               gint64                 id,
                                               double                 multiplier,
                                               gboolean               enabled,
                                               GAsyncReadyCallback    callback,
                                               gpointer               user_data);
void        kp_ledger_set_provider_enabled_async (KpLedger           *self,
                                               const char            *provider,
                                               gboolean               enabled,
                                               GAsyncReadyCallback    callback,
                                               gpointer               user_data);
void        kp_ledger_set_setting_async       (KpLedger              *self,
                                               const char            *key,
                                               const char            *value,
                                               GAsyncReadyCallback    callback,
                                               gpointer               user_data);
void        kp_ledger_save_live_models_async  (KpLedger              *self,
                                               const char            *provider,
                                               const char            *source,
                                               GArray                *models,
                                               gint64                 refreshed_at,
                                               GAsyncReadyCallback    callback,
                                               gpointer               user_data);
void        kp_ledger_save_refresh_async      (KpLedger              *self,
                                               const KpRefreshRow    *row,
                                               GAsyncReadyCallback    callback,
                                               gpointer               user_data);
gboolean    kp_ledger_write_finish            (KpLedger              *self,
                                               GAsyncResult          *result,
                                               GError               **error);

gboolean    kp_ledger_add_request             (KpLedger              *self,
                                               const KpRequestRow    *row,
                                               const KpAttemptRow    *attempts,
                                               guint                  n_attempts,
                                               GError               **error);
void        kp_ledger_add_request_async       (KpLedger              *self,
                                               const KpRequestRow    *row,
                                               const KpAttemptRow    *attempts,
                                               guint                  n_attempts,
                                               GAsyncReadyCallback    callback,
                                               gpointer               user_data);
gboolean    kp_ledger_add_request_finish      (KpLedger              *self,
                                               GAsyncResult          *result,
                                               GError               **error);
gboolean    kp_ledger_can_add_request_now     (KpLedger              *self);
gboolean    kp_ledger_try_add_request_now     (KpLedger              *self,
                                               const KpRequestRow    *row,
                                               const KpAttemptRow    *attempts,
                                               guint                  n_attempts);
GPtrArray  *kp_ledger_recent_requests         (KpLedger              *self,
                                               guint                  limit,
                                               GError               **error);
void        kp_ledger_recent_requests_async   (KpLedger              *self,
                                               guint                  limit,
                                               GCancellable          *cancellable,
                                               GAsyncReadyCallback    callback,
                                               gpointer               user_data);
GPtrArray  *kp_ledger_recent_requests_finish  (KpLedger              *self,
                                               GAsyncResult          *result,
                                               GError               **error);
void        kp_request_row_free               (KpRequestRow          *row);
GPtrArray  *kp_ledger_recent_requests_of_client (KpLedger            *self,
                                               guint                  client_id,
                                               guint                  limit,
                                               GError               **error);
GPtrArray  *kp_ledger_spend_by_client_and_provider (KpLedger         *self,
                                               gint64                 since_ms,
                                               GError               **error);
void        kp_ledger_spend_by_client_and_provider_async (KpLedger   *self,
                                               gint64                 since_ms,
                                               GCancellable          *cancellable,
                                               GAsyncReadyCallback    callback,
                                               gpointer               user_data);
GPtrArray  *kp_ledger_spend_by_client_and_provider_finish (KpLedger  *self,
                                               GAsyncResult          *result,
                                               GError               **error);

void        kp_ledger_add_refusal             (KpLedger              *self,
                                               const KpRefusalRow    *row,
                                               gboolean               merge);
GPtrArray  *kp_ledger_recent_problems         (KpLedger              *self,
                                               guint                  limit,
                                               GError               **error);
void        kp_ledger_recent_problems_async   (KpLedger              *self,
                                               guint                  limit,
                                               GCancellable          *cancellable,
                                               GAsyncReadyCallback    callback,
                                               gpointer               user_data);
GPtrArray  *kp_ledger_recent_problems_finish  (KpLedger              *self,
                                               GAsyncResult          *result,
                                               GError               **error);
void        kp_refusal_row_free               (KpRefusalRow          *row);
void        kp_problem_row_free               (KpProblemRow          *row);

GPtrArray  *kp_ledger_spend                   (KpLedger              *self,
                                               gint64                 since_ms,
                                               KpSpendBy              by,
                                               GError               **error);
GPtrArray  *kp_ledger_spend_by_day_and_provider (KpLedger            *self,
                                               gint64                 since_ms,
                                               GError               **error);
void        kp_ledger_spend_async             (KpLedger              *self,
                                               gint64                 since_ms,
                                               KpSpendBy              by,
                                               GCancellable          *cancellable,
                                               GAsyncReadyCallback    callback,
                                               gpointer               user_data);
GPtrArray  *kp_ledger_spend_finish            (KpLedger              *self,
                                               GAsyncResult          *result,
                                               GError               **error);
void        kp_ledger_spend_by_day_and_provider_async (KpLedger      *self,
                                               gint64                 since_ms,
                                               GCancellable          *cancellable,
                                               GAsyncReadyCallback    callback,
                                               gpointer               user_data);
GPtrArray  *kp_ledger_spend_by_day_and_provider_finish (KpLedger     *self,
                                               GAsyncResult          *result,
                                               GError               **error);
void        kp_spend_row_free                 (KpSpendRow            *row);

gboolean    kp_ledger_check_integrity         (KpLedger              *self,
                                               GError               **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (KpCredentialRow, kp_credential_row_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (KpRequestRow, kp_request_row_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (KpRefreshRow, kp_refresh_row_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (KpRefusalRow, kp_refusal_row_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (KpProblemRow, kp_problem_row_free)

G_END_DECLS
