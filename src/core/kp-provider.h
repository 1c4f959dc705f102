/* kp-provider.h: one provider definition, read from providers/<id>.json
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>
#include <libsoup/soup.h>

#include "auth/kp-oauth-client.h"

G_BEGIN_DECLS

#define KP_PROVIDER_ERROR (kp_provider_error_quark ())

typedef enum
{
  KP_PROVIDER_ERROR_INVALID,
  KP_PROVIDER_ERROR_UNSUPPORTED,
} KpProviderError;

typedef enum
{
  KP_AUTH_BEARER,
  KP_AUTH_HEADER,
  KP_AUTH_NONE,
} KpAuthKind;

/* What a model is for. */
typedef enum
{
  KP_MODEL_CHAT,
  KP_MODEL_EMBEDDING,
} KpModelKind;

#define KP_TYPE_PROVIDER (kp_provider_get_type ())

/* How a provider's model list gives prices (the "prices" field). */
typedef enum
{
  KP_PRICES_NONE,
  KP_PRICES_OPENROUTER,   /* pricing.prompt/completion: USD per token, as strings */
  KP_PRICES_PER_MILLION,  /* pricing.input/output: USD per million tokens */
  KP_PRICES_FREE,         /* a local server: every model costs nothing */
} KpPriceFormat;

/* How a provider's balance endpoint answers (the "balance" field). */
typedef enum
{
  KP_BALANCE_NONE,
  KP_BALANCE_OPENROUTER_CREDITS,  /* data.total_credits − data.total_usage, USD */
  KP_BALANCE_DEEPSEEK,            /* balance_infos[].total_balance, a string, per currency */
} KpBalanceFormat;

/* Where an offering's price comes from. */
typedef enum
{
  KP_PRICE_UNKNOWN,   /* no price: ranked after priced offerings, never free */
  KP_PRICE_BUNDLED,   /* the provider file, as of its prices_checked date */
  KP_PRICE_LIVE,      /* the provider's model list, at the refresh time */
} KpPriceSource;

G_DECLARE_FINAL_TYPE (KpProvider, kp_provider, KP, PROVIDER, GObject)

/* One model as served by one provider, with its list prices. Prices are USD
 * per million tokens; a negative price means the price is not known.
 */
typedef struct
{
  char          *model_id;     /* canonical "vendor/model", lower case */
  char          *upstream_id;  /* what the provider calls it */
  double         input;
  double         output;
  double         cached_input;
  double         cache_write;  /* input written to the prompt cache (Anthropic) */
  gint64         context;
  gboolean       reasoning;    /* takes max_completion_tokens and a reasoning effort */
  KpModelKind    kind;
  GStrv          aliases;      /* other names clients use for the model, lower case */
  KpProvider    *provider;     /* unowned: the offering lives in its provider */
  KpPriceSource  price_source;
  gint64         listed_at;    /* unix s of the live list it came from; 0 = the file */
} KpOffering;

/* One model as a provider's live model list names it. Prices as above. */
typedef struct
{
  char   *upstream_id;
  double  input;
  double  output;
  double  cached_input;
  gint64  context;
} KpLiveModel;

GQuark             kp_provider_error_quark     (void);
KpProvider        *kp_provider_new_from_json   (JsonNode     *root,
                                                const char   *origin,
                                                GError      **error);
KpProvider        *kp_provider_new_from_file   (const char   *path,
                                                GError      **error);
const char        *kp_provider_get_id          (KpProvider   *self);
const char        *kp_provider_get_name        (KpProvider   *self);
const char        *kp_provider_get_base_url    (KpProvider   *self);
const char        *kp_provider_get_origin      (KpProvider   *self);
GUri              *kp_provider_get_chat_uri    (KpProvider   *self);
KpAuthKind         kp_provider_get_auth_kind   (KpProvider   *self);
const char        *kp_provider_get_wire        (KpProvider   *self);
gboolean           kp_provider_serves          (KpProvider   *self,
                                                const char   *wire_id);
GUri              *kp_provider_get_api_uri     (KpProvider   *self,
                                                const char   *wire_id);
gboolean           kp_provider_get_requires_key (KpProvider  *self);
gboolean           kp_provider_get_check_with_chat (KpProvider *self);
const char * const *kp_provider_get_env        (KpProvider   *self);
guint              kp_provider_get_n_offerings (KpProvider   *self);
const KpOffering  *kp_provider_get_offering    (KpProvider   *self,
                                                guint         index);
void               kp_provider_apply_headers   (KpProvider   *self,
                                                SoupMessageHeaders *headers,
                                                const char   *key);
const KpOAuthClient *kp_provider_get_oauth    (KpProvider   *self);
gboolean           kp_provider_get_subscription (KpProvider  *self);
gboolean           kp_offering_has_price       (const KpOffering *offering);
gsize              kp_model_name_undated_length (const char   *name);
const char        *kp_price_source_to_string   (KpPriceSource source);

/* The catalog refresh. */
const char        *kp_provider_get_prices_checked (KpProvider *self);
char              *kp_provider_dup_models_url  (KpProvider   *self);
gboolean           kp_provider_get_models_need_key (KpProvider *self);
const char        *kp_provider_get_models_prefix (KpProvider *self);
KpPriceFormat      kp_provider_get_price_format (KpProvider  *self);
char              *kp_provider_dup_balance_url (KpProvider   *self);
KpBalanceFormat    kp_provider_get_balance_format (KpProvider *self);
KpProvider        *kp_provider_new_merged      (KpProvider   *bundled,
                                                GArray       *live,
                                                gint64        listed_at);
char              *kp_live_model_canonical_id  (KpProvider   *provider,
                                                const char   *upstream_id);
void               kp_live_model_clear         (gpointer      data);

G_END_DECLS
