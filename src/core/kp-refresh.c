/* kp-refresh.c: the catalog refresh: live models, prices and balances
 *
 * One refresh asks every usable provider at once for its model list (with
 * prices where the list has them) and its balance (where it has an
 * endpoint), each with a timeout of its own. A provider's answer is applied
 * as soon as it arrives, so a slow one holds up nobody; one that fails keeps
 * its last good list and records the error. Only one refresh runs at a
 * time: asking while one runs joins it, or queues one more after it when
 * the running one does not cover what was asked.
 *
 * Everything here is asynchronous, and the large model lists are parsed on
 * a worker thread: requests never wait for a refresh.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include <math.h>
#include <string.h>

#include <json-glib/json-glib.h>
#include <libsoup/soup.h>

#include "kp-refresh.h"
#include "codec/kp-json-guard.h"
#include "kp-gateway.h"
#include "kp-http.h"

#define DEFAULT_INTERVAL_HOURS 6
#define DEFAULT_TIMEOUT_MS     30000
#define MAX_BODY               (64 * 1024 * 1024)

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

enum {
  PROP_0,
  PROP_RUNNING,
  N_PROPS
};

enum {
  FINISHED,
  N_SIGNALS
};

static GParamSpec *properties[N_PROPS];
static guint signals[N_SIGNALS];

G_DEFINE_FINAL_TYPE (KpRefresh, kp_refresh, G_TYPE_OBJECT)

G_DEFINE_QUARK (kp-refresh-error-quark, kp_refresh_error)

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

static void     run_start (KpRefresh *self,
                           GStrv      only,
                           GPtrArray *tasks);
static gboolean on_timer  (gpointer   user_data);

void
kp_refresh_result_free (KpRefreshResult *result)
{
  if (result == NULL)
    return;
  g_free (result->provider_id);
  g_free (result->summary);
  g_free (result);
}

static KpRefreshResult *
result_copy (const KpRefreshResult *result)
{
  KpRefreshResult *copy = g_new0 (KpRefreshResult, 1);

  copy->provider_id = g_strdup (result->provider_id);
  copy->outcome = result->outcome;
  copy->summary = g_strdup (result->summary);
  return copy;
}

static void
balance_free (Balance *balance)
{
  g_clear_object (&balance->credential);
  g_clear_pointer (&balance->currency, g_free);
  g_clear_pointer (&balance->error, g_free);
  g_free (balance);
}

static void
job_free (Job *job)
{
  g_clear_handle_id (&job->timeout_id, g_source_remove);
  g_clear_pointer (&job->id, g_free);
  g_clear_object (&job->provider);
  g_clear_object (&job->credential);
  g_clear_object (&job->cancellable);
  g_clear_pointer (&job->models_url, g_free);
  g_clear_pointer (&job->models, g_array_unref);
  g_clear_pointer (&job->models_error, g_free);
  g_clear_pointer (&job->balances, g_ptr_array_unref);
  g_free (job);
}

static void
run_free (Run *run)
{
  g_clear_pointer (&run->only, g_strfreev);
  g_clear_pointer (&run->jobs, g_ptr_array_unref);
  g_clear_pointer (&run->tasks, g_ptr_array_unref);
  g_clear_pointer (&run->results, g_ptr_array_unref);
  g_clear_object (&run->cancellable);
  g_clear_object (&run->refresh);
  g_free (run);
}

/* Object ------------------------------------------------------------------- */

KpRefresh *
kp_refresh_new (KpGateway *gateway)
{
  KpRefresh *self;

  g_return_val_if_fail (KP_IS_GATEWAY (gateway), NULL);

  self = g_object_new (KP_TYPE_REFRESH, NULL);
  self->gateway = gateway;
  return self;
}

static void
kp_refresh_dispose (GObject *object)
{
  KpRefresh *self = (KpRefresh *)object;

  /* The gateway is going: answers still on their way find nobody to tell. */
  kp_refresh_stop (self);
  self->gateway = NULL;
  if (self->own_session != NULL)
    soup_session_abort (self->own_session);
  g_clear_object (&self->own_session);

  G_OBJECT_CLASS (kp_refresh_parent_class)->dispose (object);
}

static void
kp_refresh_finalize (GObject *object)
{
  KpRefresh *self = (KpRefresh *)object;

  g_clear_pointer (&self->states, g_hash_table_unref);
  g_clear_pointer (&self->queued, g_ptr_array_unref);

  G_OBJECT_CLASS (kp_refresh_parent_class)->finalize (object);
}

static void
kp_refresh_get_property (GObject    *object,
                         guint       prop_id,
                         GValue     *value,
                         GParamSpec *pspec)
{
  KpRefresh *self = KP_REFRESH (object);

  switch (prop_id)
    {
    case PROP_RUNNING:
      g_value_set_boolean (value, self->run != NULL);
      break;

    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
kp_refresh_class_init (KpRefreshClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = kp_refresh_dispose;
  object_class->finalize = kp_refresh_finalize;
  object_class->get_property = kp_refresh_get_property;

  /**
   * KpRefresh:running:
   *
   * Whether a refresh is in flight.
   */
  properties[PROP_RUNNING] =
    g_param_spec_boolean ("running", NULL, NULL, FALSE,
                          G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  g_object_class_install_properties (object_class, N_PROPS, properties);

  /**
   * KpRefresh::finished:
   *
   * Emitted when a refresh has asked every provider it was to ask. Each
   * provider's answer was applied (and #KpGateway::changed emitted) as it
   * arrived.
   */
  signals[FINISHED] =
    g_signal_new ("finished",
                  G_TYPE_FROM_CLASS (klass),
                  G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL,
                  G_TYPE_NONE, 0);
}

static void
kp_refresh_init (KpRefresh *self)
{
  self->states = g_hash_table_new_full (g_str_hash, g_str_equal, NULL,
                                        (GDestroyNotify)kp_refresh_row_free);
  self->queued = g_ptr_array_new_with_free_func (g_object_unref);
  self->interval_ms = (gint64)DEFAULT_INTERVAL_HOURS * 3600 * 1000;
  self->timeout_ms = DEFAULT_TIMEOUT_MS;
}

/* Parsing ------------------------------------------------------------------ */

/**
 * kp_refresh_parse_price:
 * @text: a decimal number, such as "0.0000025" or "2.5e-6"
 * @shift: the power of ten to multiply it by (6: per token → per million)
 * @usd: (out): the result
 *
 * Scales the decimal text itself and converts once, so the result is the
 * double nearest to the exact value: "0.0000025" × 10⁶ is exactly 2.5, with
 * none of the noise of multiplying a rounded double.
 *
 * Returns: whether @text is a number that is not negative
 */
gboolean
kp_refresh_parse_price (const char *text,
                        int         shift,
                        double     *usd)
{
  g_autofree char *scaled = NULL;
  const char *p = text;
  const char *mantissa_end;
  gint64 exponent = 0;
  gboolean digits = FALSE;
  char *end = NULL;
  double value;

  g_return_val_if_fail (text != NULL, FALSE);
  g_return_val_if_fail (usd != NULL, FALSE);

  if (*p == '+')
    p++;
  for (; g_ascii_isdigit (*p); p++)
    digits = TRUE;
  if (*p == '.')
    for (p++; g_ascii_isdigit (*p); p++)
      digits = TRUE;
  if (!digits)
    return FALSE;
  mantissa_end = p;

  if (*p == 'e' || *p == 'E')
    {
      if (!g_ascii_string_to_signed (p + 1, 10, -400, 400, &exponent, NULL))
        return FALSE;
    }
  else if (*p != '\0')
    return FALSE;

  scaled = g_strdup_printf ("%.*se%d", (int)(mantissa_end - text), text, (int)exponent + shift);
  value = g_ascii_strtod (scaled, &end);
  if (end == NULL || *end != '\0' || !isfinite (value) || value < 0)
    return FALSE;

  *usd = value;
  return TRUE;
}

/* A price member that may be a number or a decimal string; -1 when absent,
 * negative (OpenRouter's "-1" means "varies") or not a number.
 */
static double
get_price (JsonObject *object,
           const char *member,
           int         shift)
{
  JsonNode *node = object ? json_object_get_member (object, member) : NULL;
  double value = -1;
  GType type;

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node))
    return -1;

  type = json_node_get_value_type (node);
  if (type == G_TYPE_STRING)
    {
      if (!kp_refresh_parse_price (json_node_get_string (node), shift, &value))
        return -1;
    }
  else if (type == G_TYPE_DOUBLE || type == G_TYPE_INT64)
    {
      double number = json_node_get_double (node);
      char text[G_ASCII_DTOSTR_BUF_SIZE];

      if (!(number >= 0) || !isfinite (number))
        return -1;
      /* The shortest text that gives the number back, then scaled exactly. */
      g_ascii_formatd (text, sizeof text, "%.15g", number);
      if (g_ascii_strtod (text, NULL) != number)
        g_ascii_formatd (text, sizeof text, "%.17g", number);
      if (!kp_refresh_parse_price (text, shift, &value))
        return -1;
    }

  return value <= 1e6 ? value : -1;
}

static JsonObject *
get_object (JsonObject *object,
            const char *member)
{
  JsonNode *node = object ? json_object_get_member (object, member) : NULL;

  return node && JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
}

static gint64
get_context (JsonObject *model)
{
  static const char *members[] = { "context_length", "context_window", "max_context_length", NULL };
  JsonObject *metadata = get_object (model, "metadata");

  for (guint i = 0; members[i] != NULL; i++)
    for (JsonObject *object = model; object != NULL; object = object == model ? metadata : NULL)
      {
        JsonNode *node = json_object_get_member (object, members[i]);

        if (node != NULL && JSON_NODE_HOLDS_VALUE (node) &&
            json_node_get_value_type (node) == G_TYPE_INT64 && json_node_get_int (node) > 0)
          return json_node_get_int (node);
      }
  return 0;
}

/* The first price of @names that @pricing gives. */
static double
first_price (JsonObject         *pricing,
             const char * const *names,
             int                 shift)
{
  for (guint i = 0; names[i] != NULL; i++)
    {
      double price = get_price (pricing, names[i], shift);

      if (price >= 0)
        return price;
    }
  return -1;
}

static void
read_prices (JsonObject    *model,
             KpPriceFormat  format,
             KpLiveModel   *out)
{
  static const char *or_input[] = { "prompt", NULL };
  static const char *or_output[] = { "completion", NULL };
  static const char *or_cached[] = { "input_cache_read", NULL };
  static const char *pm_input[] = { "input", "input_tokens", NULL };
  static const char *pm_output[] = { "output", "output_tokens", NULL };
  static const char *pm_cached[] = { "cached_input", "cache_read", "cache_read_tokens", NULL };
  JsonObject *pricing;

  out->input = out->output = out->cached_input = -1;

  switch (format)
    {
    case KP_PRICES_FREE:
      out->input = out->output = out->cached_input = 0;
      return;

    case KP_PRICES_OPENROUTER:
      pricing = get_object (model, "pricing");
      out->input = first_price (pricing, or_input, 6);
      out->output = first_price (pricing, or_output, 6);
      out->cached_input = first_price (pricing, or_cached, 6);
      break;

    case KP_PRICES_PER_MILLION:
      pricing = get_object (model, "pricing");
      if (pricing == NULL)
        pricing = get_object (get_object (model, "metadata"), "pricing");
      out->input = first_price (pricing, pm_input, 0);
      out->output = first_price (pricing, pm_output, 0);
      out->cached_input = first_price (pricing, pm_cached, 0);
      break;

    case KP_PRICES_NONE:
    default:
      return;
    }

  /* Half a price is no price. */
  if (out->input < 0 || out->output < 0)
    out->input = out->output = out->cached_input = -1;
}

/**
 * kp_refresh_parse_models:
 * @body: a model list: `{"data": [...]}` or a bare array (Together)
 * @format: how the list gives prices
 * @error: a location for a #GError
 *
 * Safe to call from any thread.
 *
 * Returns: (transfer full) (element-type KpLiveModel): the models, in the
 *   list's order, or %NULL with @error set when the body is not a model list
 */
GArray *
kp_refresh_parse_models (GBytes         *body,
                         KpPriceFormat   format,
                         GError        **error)
{
  g_autoptr(JsonParser) parser = json_parser_new_immutable ();
  g_autoptr(GArray) models = g_array_new (FALSE, TRUE, sizeof (KpLiveModel));
  JsonNode *root;
  JsonArray *list = NULL;
  gsize len;
  const char *data = g_bytes_get_data (body, &len);

  g_array_set_clear_func (models, kp_live_model_clear);

  if (!kp_json_parser_load_from_data (parser, data, len, error))
    {
      g_prefix_error (error, "the model list %s: ",
                      g_error_matches (*error, KP_JSON_ERROR, KP_JSON_ERROR_TOO_DEEP) ? "is refused"
                                                                                      : "is not JSON");
      return NULL;
    }

  root = json_parser_get_root (parser);
  if (root != NULL && JSON_NODE_HOLDS_ARRAY (root))
    list = json_node_get_array (root);
  else if (root != NULL && JSON_NODE_HOLDS_OBJECT (root))
    {
      JsonNode *node = json_object_get_member (json_node_get_object (root), "data");

      if (node != NULL && JSON_NODE_HOLDS_ARRAY (node))
        list = json_node_get_array (node);
    }
  if (list == NULL)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                           "the answer is not a model list (no “data” list)");
      return NULL;
    }

  for (guint i = 0; i < json_array_get_length (list); i++)
    {
      JsonNode *element = json_array_get_element (list, i);
      JsonObject *object;
      const char *id;
      KpLiveModel model = { 0 };

      if (!JSON_NODE_HOLDS_OBJECT (element))
        continue;
      object = json_node_get_object (element);
      id = json_object_get_string_member_with_default (object, "id", NULL);
      if (id == NULL || *id == '\0')
        continue;

      model.upstream_id = g_strdup (id);
      model.context = get_context (object);
      read_prices (object, format, &model);
      g_array_append_val (models, model);
    }

  return g_steal_pointer (&models);
}

static gboolean
get_amount (JsonObject *object,
            const char *member,
            double     *out)
{
  JsonNode *node = object ? json_object_get_member (object, member) : NULL;
  GType type;

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node))
    return FALSE;
  type = json_node_get_value_type (node);
  if (type == G_TYPE_DOUBLE || type == G_TYPE_INT64)
    *out = json_node_get_double (node);
  else if (type == G_TYPE_STRING)
    {
      const char *text = json_node_get_string (node);
      char *end = NULL;

      *out = g_ascii_strtod (text, &end);
      if (end == text || *end != '\0')
        return FALSE;
    }
  else
    return FALSE;
  return isfinite (*out);
}

/* Reads a balance answer into @balance, or says what is wrong with it. */
static void
parse_balance (Balance         *balance,
               KpBalanceFormat  format,
               GBytes          *body)
{
  g_autoptr(JsonParser) parser = json_parser_new_immutable ();
  g_autoptr(GError) error = NULL;
  JsonObject *root = NULL;
  gsize len;
  const char *data = g_bytes_get_data (body, &len);

  if (!kp_json_parser_load_from_data (parser, data, len, &error))
    {
      balance->error = g_strdup_printf ("the balance %s: %s",
                                        error->domain == KP_JSON_ERROR ? "is refused" : "is not JSON",
                                        error->message);
      return;
    }
  /* An empty or whitespace-only answer parses to no root at all. */
  if (json_parser_get_root (parser) != NULL && JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
    root = json_node_get_object (json_parser_get_root (parser));

  if (format == KP_BALANCE_OPENROUTER_CREDITS)
    {
      JsonObject *credits = get_object (root, "data");
      double total = 0, usage = 0;

      if (!get_amount (credits, "total_credits", &total) ||
          !get_amount (credits, "total_usage", &usage))
        {
          balance->error = g_strdup ("the credits answer has no total_credits and total_usage");
          return;
        }
      /* Cents are what matter; this keeps 10 − 9.7 from reading 0.30000000000000071. */
      balance->balance = round ((total - usage) * 1e6) / 1e6;
      balance->currency = g_strdup ("USD");
      balance->available = TRUE;
      balance->has_balance = TRUE;
    }
  else if (format == KP_BALANCE_DEEPSEEK)
    {
      JsonNode *node = root ? json_object_get_member (root, "balance_infos") : NULL;
      JsonArray *infos = node && JSON_NODE_HOLDS_ARRAY (node) ? json_node_get_array (node) : NULL;
      JsonObject *chosen = NULL;

      for (guint i = 0; infos != NULL && i < json_array_get_length (infos); i++)
        {
          JsonNode *element = json_array_get_element (infos, i);
          JsonObject *info = JSON_NODE_HOLDS_OBJECT (element) ? json_node_get_object (element) : NULL;

          if (info == NULL)
            continue;
          if (chosen == NULL ||
              g_strcmp0 (json_object_get_string_member_with_default (info, "currency", ""), "USD") == 0)
            chosen = info;
        }

      if (chosen == NULL || !get_amount (chosen, "total_balance", &balance->balance))
        {
          balance->error = g_strdup ("the balance answer has no balance_infos total_balance");
          return;
        }
      balance->currency = g_strdup (json_object_get_string_member_with_default (chosen, "currency", "?"));
      balance->available = json_object_get_boolean_member_with_default (root, "is_available", TRUE);
      balance->has_balance = TRUE;
    }
}

/* Running ------------------------------------------------------------------ */

static SoupSession *
get_session (KpRefresh   *self,
             SoupMessage *msg)
{
  SoupSession *session = kp_gateway_get_session_for (self->gateway, soup_message_get_uri (msg));

  if (session != NULL)
    return session;
  if (self->own_session == NULL)
    self->own_session = soup_session_new_with_options ("user-agent", "Keypool/" PACKAGE_VERSION,
                                                       NULL);
  return self->own_session;
}

static char *
describe_failure (Job          *job,
                  KpCredential *credential,
                  const char   *what,
                  GError       *error,
                  guint         status,
                  GBytes       *body)
{
  g_autofree char *text = NULL;
  g_autofree char *clean = NULL;
  const char *secret = credential ? kp_credential_get_secret (credential) : NULL;

  if (job->timed_out)
    return g_strdup_printf ("%s: no answer within %.1f s", what,
                            job->run->refresh->timeout_ms / 1000.0);
  if (error != NULL)
    text = g_strdup_printf ("%s: %s", what, error->message);
  else
    {
      gsize len = 0;
      const char *data = body ? g_bytes_get_data (body, &len) : NULL;
      g_autofree char *snippet = data ? g_utf8_make_valid (data, MIN (len, 160)) : NULL;

      text = g_strdup_printf ("%s: HTTP %u%s%s", what, status, snippet && *snippet ? ": " : "",
                              snippet ? g_strstrip (snippet) : "");
    }

  /* A provider that echoes the key must not make us print it. */
  clean = kp_secret_scrub (text, secret);
  return g_steal_pointer (&clean);
}

static void job_step_done (Job *job);

static void
on_models_parsed (GObject      *object,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  Job *job = user_data;
  g_autoptr(GError) error = NULL;
  const char *prefix = kp_provider_get_models_prefix (job->provider);

  job->models = g_task_propagate_pointer (G_TASK (result), &error);
  for (guint i = 0; job->models != NULL && prefix != NULL && i < job->models->len; i++)
    {
      char *name = g_array_index (job->models, KpLiveModel, i).upstream_id;

      if (g_str_has_prefix (name, prefix) && name[strlen (prefix)] != '\0')
        memmove (name, name + strlen (prefix), strlen (name) - strlen (prefix) + 1);
    }

  if (job->models == NULL)
    job->models_error = describe_failure (job, job->credential, "models", error, 0, NULL);
  else if (job->models->len == 0)
    {
      /* Most likely a fault: keep the last good list rather than lose every model. */
      g_clear_pointer (&job->models, g_array_unref);
      job->models_error = g_strdup ("models: the list was empty");
    }
  job_step_done (job);
}

static void
parse_models_thread (GTask        *task,
                     gpointer      source_object,
                     gpointer      task_data,
                     GCancellable *cancellable)
{
  GBytes *body = task_data;
  KpPriceFormat format = GPOINTER_TO_INT (g_object_get_data (G_OBJECT (task), "format"));
  GError *error = NULL;
  GArray *models = kp_refresh_parse_models (body, format, &error);

  if (models == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, models, (GDestroyNotify)g_array_unref);
}

static void
on_models_read (GObject      *object,
                GAsyncResult *result,
                gpointer      user_data)
{
  Job *job = user_data;
  SoupMessage *msg = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) body = NULL;
  g_autoptr(GTask) task = NULL;
  guint status;

  body = kp_http_read_bounded_finish (result, &msg, &error);
  status = soup_message_get_status (msg);
  if (body == NULL || !SOUP_STATUS_IS_SUCCESSFUL (status))
    {
      job->models_error = describe_failure (job, job->credential, "models", error, status, body);
      job_step_done (job);
      return;
    }

  task = g_task_new (NULL, job->cancellable, on_models_parsed, job);
  g_task_set_source_tag (task, on_models_read);
  g_task_set_task_data (task, g_steal_pointer (&body), (GDestroyNotify)g_bytes_unref);
  g_object_set_data (G_OBJECT (task), "format",
                     GINT_TO_POINTER (kp_provider_get_price_format (job->provider)));
  g_task_run_in_thread (task, parse_models_thread);
}

static void
on_balance_read (GObject      *object,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  Balance *balance = user_data;
  Job *job = balance->job;
  SoupMessage *msg = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) body = NULL;
  guint status;

  body = kp_http_read_bounded_finish (result, &msg, &error);
  status = soup_message_get_status (msg);
  if (body == NULL || !SOUP_STATUS_IS_SUCCESSFUL (status))
    balance->error = describe_failure (job, balance->credential, "balance", error, status, body);
  else
    parse_balance (balance, kp_provider_get_balance_format (job->provider), body);
  job_step_done (job);
}

static gboolean
on_job_timeout (gpointer user_data)
{
  Job *job = user_data;

  job->timeout_id = 0;
  job->timed_out = TRUE;
  g_cancellable_cancel (job->cancellable);
  return G_SOURCE_REMOVE;
}

/* Asks @url with @key (or none); @callback gets @data. */
static void
send (Job                 *job,
      const char          *url,
      KpCredential        *key,
      GAsyncReadyCallback  callback,
      gpointer             data,
      char               **error_out)
{
  g_autoptr(SoupMessage) msg = soup_message_new (SOUP_METHOD_GET, url);
  gsize cap;

  job->pending++;
  if (msg == NULL)
    {
      /* Checked when the file was read; only a broken override gets here. */
      *error_out = g_strdup_printf ("the address “%s” is not valid", url);
      job_step_done (job);
      return;
    }

  kp_provider_apply_headers (job->provider, soup_message_get_request_headers (msg),
                             key ? kp_credential_get_secret (key) : NULL);
  soup_message_headers_replace (soup_message_get_request_headers (msg), "Accept", "application/json");
  kp_gateway_get_read_caps (job->run->refresh->gateway, NULL, NULL, &cap);
  kp_http_read_bounded_async (get_session (job->run->refresh, msg), msg, cap, G_PRIORITY_LOW,
                              job->cancellable, callback, data);
}

/* The keys a provider is asked with: those that are switched on, have their
 * secret and were not refused, in the order they were added. An exhausted
 * key is asked too, so that a balance topped up brings it back.
 */
static GPtrArray *
usable_credentials (KpRefresh  *self,
                    KpProvider *provider)
{
  GPtrArray *credentials = kp_gateway_get_credentials (self->gateway);
  GPtrArray *usable = g_ptr_array_new ();
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;

  for (guint i = 0; i < credentials->len; i++)
    {
      KpCredential *credential = g_ptr_array_index (credentials, i);

      if (g_str_equal (kp_credential_get_provider_id (credential), kp_provider_get_id (provider)) &&
          kp_credential_get_enabled (credential) && kp_credential_get_secret (credential) != NULL &&
          kp_credential_get_state (credential, now) != KP_CREDENTIAL_INVALID)
        g_ptr_array_add (usable, credential);
    }
  return usable;
}

static KpRefreshRow *
ensure_state (KpRefresh  *self,
              const char *provider_id)
{
  KpRefreshRow *row = g_hash_table_lookup (self->states, provider_id);

  if (row == NULL)
    {
      row = g_new0 (KpRefreshRow, 1);
      row->provider = g_strdup (provider_id);
      g_hash_table_insert (self->states, row->provider, row);
    }
  return row;
}

static void
add_result (Run              *run,
            const char       *provider_id,
            KpRefreshOutcome  outcome,
            char             *summary)
{
  KpRefreshResult *result = g_new0 (KpRefreshResult, 1);

  result->provider_id = g_strdup (provider_id);
  result->outcome = outcome;
  result->summary = summary;
  g_ptr_array_add (run->results, result);
}

static void run_job_done (Run *run);

/* Applies what one provider said, at once: the others may still be asking. */
static void
job_apply (Job *job)
{
  KpRefresh *self = job->run->refresh;
  KpLedger *ledger = kp_gateway_get_ledger (self->gateway);
  KpRefreshRow *state = ensure_state (self, job->id);
  g_autoptr(GString) summary = g_string_new (NULL);
  g_autoptr(GError) error = NULL;
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;
  g_autoptr(GString) balance_errors = g_string_new (NULL);
  gboolean failed = job->models_error != NULL;
  gboolean first_balance = TRUE;

  state->refreshed_at = now;

  if (job->models != NULL)
    {
      KpProvider *merged;
      guint live = 0, unknown = 0, n_models;

      if (!kp_ledger_save_live_models (ledger, job->id, job->models_url, job->models, now, &error))
        {
          g_warning ("The model list of %s was not saved: %s", job->id, error->message);
          g_clear_error (&error);
        }
      merged = kp_catalog_apply_live (kp_gateway_get_catalog (self->gateway), job->id, job->models,
                                      now);
      for (guint i = 0; merged != NULL && i < kp_provider_get_n_offerings (merged); i++)
        {
          KpPriceSource source = kp_provider_get_offering (merged, i)->price_source;

          live += source == KP_PRICE_LIVE;
          unknown += source == KP_PRICE_UNKNOWN;
        }
      state->ok_at = now;
      n_models = merged ? kp_provider_get_n_offerings (merged) : 0;
      g_string_append_printf (summary, "%u model%s", n_models, n_models == 1 ? "" : "s");
      if (live > 0)
        g_string_append_printf (summary, ", %u with live prices", live);
      if (unknown > 0)
        g_string_append_printf (summary, ", %u unpriced", unknown);
    }

  /* Each key's balance is that key's: its account may be another's. The
   * provider shows the first key's.
   */
  for (guint i = 0; i < job->balances->len; i++)
    {
      Balance *balance = g_ptr_array_index (job->balances, i);
      const char *label = kp_credential_get_label (balance->credential);
      g_autofree char *who = job->balances->len < 2 ? g_strdup ("")
        : label && *label ? g_strdup_printf (" (%s)", label)
        : g_strdup_printf (" (key %" G_GINT64_FORMAT ")", kp_credential_get_id (balance->credential));

      if (balance->error != NULL)
        {
          g_string_append_printf (balance_errors, "%s%s%s", balance_errors->len ? "; " : "",
                                  balance->error, who);
          failed = TRUE;
          continue;
        }
      if (!balance->has_balance)
        continue;

      if (first_balance)
        {
          state->has_balance = TRUE;
          state->balance = balance->balance;
          g_free (state->currency);
          state->currency = g_strdup (balance->currency);
          state->balance_at = now;
          first_balance = FALSE;
        }
      kp_gateway_note_balance (self->gateway, balance->credential, balance->balance,
                               balance->currency, balance->available);
      g_string_append_printf (summary, "%sbalance %.2f %s%s", summary->len ? "; " : "",
                              balance->balance, balance->currency, who);
    }

  g_free (state->error);
  state->error = NULL;
  if (failed)
    {
      state->error = g_strjoin ("; ", job->models_error ? job->models_error : balance_errors->str,
                                job->models_error && balance_errors->len ? balance_errors->str : NULL,
                                NULL);
      g_string_append_printf (summary, "%s%s", summary->len ? "; " : "", state->error);
      g_debug ("Refresh of %s failed: %s", job->id, state->error);
    }

  if (!kp_ledger_save_refresh (ledger, state, &error))
    g_warning ("How the refresh of %s went was not saved: %s", job->id, error->message);

  add_result (job->run, job->id, failed ? KP_REFRESH_FAILED : KP_REFRESH_OK,
              g_string_free (g_steal_pointer (&summary), FALSE));
  kp_gateway_catalog_changed (self->gateway);
}

static void
job_step_done (Job *job)
{
  g_assert (job->pending > 0);

  if (--job->pending > 0)
    return;

  g_clear_handle_id (&job->timeout_id, g_source_remove);

  /* Stopped, or the gateway went away meanwhile: nothing to tell, and a
   * cancelled request is not the provider's failure.
   */
  if (job->run->refresh->gateway != NULL && !g_cancellable_is_cancelled (job->run->cancellable))
    job_apply (job);
  run_job_done (job->run);
}

static void
job_start (Run        *run,
           KpProvider *provider)
{
  KpRefresh *self = run->refresh;
  KpCatalog *catalog = kp_gateway_get_catalog (self->gateway);
  const char *id = kp_provider_get_id (provider);
  KpProvider *bundled = kp_catalog_get_bundled_provider (catalog, id);
  g_autofree char *balance_url = NULL;
  g_autoptr(GPtrArray) keys = NULL;
  Job *job;

  job = g_new0 (Job, 1);
  job->run = run;
  job->id = g_strdup (id);
  job->provider = g_object_ref (bundled ? bundled : provider);
  job->cancellable = g_cancellable_new ();
  g_signal_connect_object (run->cancellable, "cancelled", G_CALLBACK (g_cancellable_cancel),
                           job->cancellable, G_CONNECT_SWAPPED);
  job->balances = g_ptr_array_new_with_free_func ((GDestroyNotify)balance_free);
  keys = kp_provider_get_requires_key (provider) ? usable_credentials (self, provider)
                                                 : g_ptr_array_new ();
  if (keys->len > 0)
    job->credential = g_object_ref (g_ptr_array_index (keys, 0));
  g_ptr_array_add (run->jobs, job);

  job->models_url = kp_provider_dup_models_url (job->provider);
  if (job->models_url != NULL && job->credential == NULL &&
      kp_provider_get_requires_key (provider) && kp_provider_get_models_need_key (provider))
    g_clear_pointer (&job->models_url, g_free);
  if (job->credential != NULL)
    balance_url = kp_provider_dup_balance_url (job->provider);

  if (job->models_url == NULL && balance_url == NULL)
    {
      add_result (run, id, KP_REFRESH_SKIPPED,
                  g_strdup (job->credential == NULL && kp_provider_get_requires_key (provider)
                              ? "skipped: no usable key"
                              : "skipped: no model list or balance to read"));
      return;
    }

  run->pending++;
  /* Held until both answers are in, so that the first cannot finish the job. */
  job->pending = 1;
  job->timeout_id = g_timeout_add (self->timeout_ms, on_job_timeout, job);
  if (job->models_url != NULL)
    send (job, job->models_url,
          kp_provider_get_models_need_key (job->provider) ? job->credential : NULL,
          on_models_read, job, &job->models_error);
  for (guint i = 0; balance_url != NULL && i < keys->len; i++)
    {
      Balance *balance = g_new0 (Balance, 1);

      balance->job = job;
      balance->credential = g_object_ref (g_ptr_array_index (keys, i));
      g_ptr_array_add (job->balances, balance);
      send (job, balance_url, balance->credential, on_balance_read, balance, &balance->error);
    }
  job_step_done (job);
}

/* Arms the timer: an interval after the last refresh of everything, and at
 * once when that is past.
 */
static void
schedule (KpRefresh *self)
{
  gint64 delay;

  g_clear_handle_id (&self->timer_id, g_source_remove);
  if (!self->started || self->interval_ms <= 0 || self->run != NULL)
    return;

  if (self->last_run_us > 0)
    delay = (self->last_run_us - g_get_real_time ()) / 1000 + self->interval_ms;
  else
    delay = self->last_run * 1000 - g_get_real_time () / 1000 + self->interval_ms;
  delay = CLAMP (delay, 0, self->interval_ms);
  /* Hours away: a seconds timer, which also reaches past 49 days. */
  if (delay >= 3600 * 1000)
    self->timer_id = g_timeout_add_seconds ((guint)MIN (delay / 1000, G_MAXUINT), on_timer, self);
  else
    self->timer_id = g_timeout_add ((guint)delay, on_timer, self);
}

static void
run_finish (Run *run)
{
  KpRefresh *self = run->refresh;
  g_autoptr(GPtrArray) queued = NULL;
  gboolean all = FALSE;
  g_autoptr(GStrvBuilder) next = g_strv_builder_new ();

  if (run->only == NULL && self->gateway != NULL)
    {
      g_autofree char *value = NULL;

      self->last_run_us = g_get_real_time ();
      self->last_run = self->last_run_us / G_USEC_PER_SEC;
      value = g_strdup_printf ("%" G_GINT64_FORMAT, self->last_run);
      kp_ledger_set_setting (kp_gateway_get_ledger (self->gateway), LAST_RUN_SETTING, value, NULL);
    }

  for (guint i = 0; i < run->tasks->len; i++)
    {
      GTask *task = g_ptr_array_index (run->tasks, i);
      const char *wanted = g_task_get_task_data (task);
      GPtrArray *results = g_ptr_array_new_with_free_func ((GDestroyNotify)kp_refresh_result_free);

      for (guint j = 0; j < run->results->len; j++)
        {
          KpRefreshResult *result = g_ptr_array_index (run->results, j);

          if (wanted == NULL || g_str_equal (wanted, result->provider_id))
            g_ptr_array_add (results, result_copy (result));
        }
      g_task_return_pointer (task, results, (GDestroyNotify)g_ptr_array_unref);
    }

  self->run = NULL;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_RUNNING]);
  g_signal_emit (self, signals[FINISHED], 0);

  /* Those who asked for more than this run covered get a run of their own. */
  queued = g_steal_pointer (&self->queued);
  self->queued = g_ptr_array_new_with_free_func (g_object_unref);
  if (queued->len > 0 && self->gateway != NULL)
    {
      g_auto(GStrv) only = NULL;

      for (guint i = 0; i < queued->len; i++)
        {
          const char *wanted = g_task_get_task_data (g_ptr_array_index (queued, i));

          if (wanted == NULL)
            all = TRUE;
          else
            g_strv_builder_add (next, wanted);
        }
      only = all ? NULL : g_strv_builder_end (next);
      run_free (run);
      run_start (self, only, queued);
      return;
    }
  else
    {
      for (guint i = 0; i < queued->len; i++)
        g_task_return_new_error (g_ptr_array_index (queued, i), KP_REFRESH_ERROR,
                                 KP_REFRESH_ERROR_UNAVAILABLE, "Keypool is shutting down.");
      schedule (self);
    }

  run_free (run);
}

static void
run_job_done (Run *run)
{
  g_assert (run->pending > 0);

  if (--run->pending == 0)
    run_finish (run);
}

/* Starts a run for @only (or every provider) that answers @tasks. It may be
 * over before this returns, when no provider needs asking.
 */
static void
run_start (KpRefresh *self,
           GStrv      only,
           GPtrArray *tasks)
{
  GPtrArray *providers = kp_catalog_get_providers (kp_gateway_get_catalog (self->gateway));
  g_autoptr(GPtrArray) chosen = g_ptr_array_new_with_free_func (g_object_unref);
  Run *run;

  g_assert (self->run == NULL);

  g_clear_handle_id (&self->timer_id, g_source_remove);

  run = g_new0 (Run, 1);
  run->refresh = g_object_ref (self);
  run->only = g_strdupv (only);
  run->jobs = g_ptr_array_new_with_free_func ((GDestroyNotify)job_free);
  run->tasks = g_ptr_array_new_with_free_func (g_object_unref);
  for (guint i = 0; tasks != NULL && i < tasks->len; i++)
    g_ptr_array_add (run->tasks, g_object_ref (g_ptr_array_index (tasks, i)));
  run->results = g_ptr_array_new_with_free_func ((GDestroyNotify)kp_refresh_result_free);
  run->cancellable = g_cancellable_new ();
  self->run = run;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_RUNNING]);

  /* Copied first: applying an answer replaces providers in the catalog. */
  for (guint i = 0; i < providers->len; i++)
    {
      KpProvider *provider = g_ptr_array_index (providers, i);

      if (only == NULL || g_strv_contains ((const char * const *)only, kp_provider_get_id (provider)))
        g_ptr_array_add (chosen, g_object_ref (provider));
    }

  /* Held while the jobs start, so that a job that ends at once cannot end the run. */
  run->pending = 1;
  for (guint i = 0; i < chosen->len; i++)
    {
      KpProvider *provider = g_ptr_array_index (chosen, i);
      const char *id = kp_provider_get_id (provider);

      if (!kp_gateway_provider_is_enabled (self->gateway, provider))
        add_result (run, id, KP_REFRESH_SKIPPED, g_strdup ("skipped: switched off"));
      else if (only == NULL && !kp_gateway_provider_is_usable (self->gateway, provider))
        add_result (run, id, KP_REFRESH_SKIPPED, g_strdup ("skipped: no key"));
      else
        job_start (run, provider);
    }
  run_job_done (run);
}

static gboolean
on_timer (gpointer user_data)
{
  KpRefresh *self = user_data;

  self->timer_id = 0;
  g_debug ("Refreshing the catalog on the timer");
  if (self->run == NULL)
    run_start (self, NULL, NULL);
  return G_SOURCE_REMOVE;
}

/* Public ------------------------------------------------------------------- */

/**
 * kp_refresh_load:
 * @self: a #KpRefresh
 * @error: a location for a #GError
 *
 * Serves the last good model list of each provider from the database, and
 * reads how its last refresh went. Called once the catalog and the ledger
 * are loaded.
 */
gboolean
kp_refresh_load (KpRefresh  *self,
                 GError    **error)
{
  KpLedger *ledger;
  KpCatalog *catalog;
  g_autoptr(GPtrArray) rows = NULL;
  g_autoptr(GPtrArray) ids = NULL;
  g_autofree char *last = NULL;

  g_return_val_if_fail (KP_IS_REFRESH (self), FALSE);

  ledger = kp_gateway_get_ledger (self->gateway);
  catalog = kp_gateway_get_catalog (self->gateway);

  rows = kp_ledger_list_refreshes (ledger, error);
  if (rows == NULL)
    return FALSE;
  while (rows->len > 0)
    {
      KpRefreshRow *row = g_ptr_array_steal_index (rows, 0);

      g_hash_table_replace (self->states, row->provider, row);
    }

  /* Copied first: applying a list replaces providers in the catalog. */
  ids = g_ptr_array_new_with_free_func (g_free);
  for (guint i = 0; i < kp_catalog_get_providers (catalog)->len; i++)
    {
      KpProvider *provider = g_ptr_array_index (kp_catalog_get_providers (catalog), i);

      g_ptr_array_add (ids, g_strdup (kp_provider_get_id (provider)));
    }
  for (guint i = 0; i < ids->len; i++)
    {
      const char *id = g_ptr_array_index (ids, i);
      g_autoptr(GArray) models = NULL;
      gint64 listed_at = 0;

      models = kp_ledger_get_live_models (ledger, id, &listed_at, error);
      if (models == NULL)
        return FALSE;
      if (models->len > 0)
        kp_catalog_apply_live (catalog, id, models, listed_at);
    }

  last = kp_ledger_get_setting (ledger, LAST_RUN_SETTING);
  if (last == NULL || !g_ascii_string_to_signed (last, 10, 0, G_MAXINT64, &self->last_run, NULL))
    self->last_run = 0;

  kp_refresh_reload_interval (self);
  return TRUE;
}

/**
 * kp_refresh_reload_interval:
 *
 * Reads how often to refresh: `KEYPOOL_REFRESH_INTERVAL_MS` when set (0 =
 * only on demand), otherwise the `catalog-refresh-hours` setting (default 6;
 * 0 = never), and re-arms the timer. `KEYPOOL_REFRESH_TIMEOUT_MS` sets how
 * long each provider may take (default 30 s).
 */
void
kp_refresh_reload_interval (KpRefresh *self)
{
  const char *env = g_getenv ("KEYPOOL_REFRESH_INTERVAL_MS");
  const char *timeout = g_getenv ("KEYPOOL_REFRESH_TIMEOUT_MS");
  KpLedger *ledger;
  guint64 value;

  g_return_if_fail (KP_IS_REFRESH (self));

  ledger = self->gateway ? kp_gateway_get_ledger (self->gateway) : NULL;
  if (env != NULL && g_ascii_string_to_unsigned (env, 10, 0, G_MAXINT32, &value, NULL))
    self->interval_ms = (gint64)value;
  else
    {
      g_autofree char *hours = ledger ? kp_ledger_get_setting (ledger, "catalog-refresh-hours") : NULL;

      if (hours == NULL || !g_ascii_string_to_unsigned (hours, 10, 0, 24 * 365, &value, NULL))
        value = DEFAULT_INTERVAL_HOURS;
      self->interval_ms = (gint64)value * 3600 * 1000;
    }

  if (timeout != NULL && g_ascii_string_to_unsigned (timeout, 10, 1, G_MAXINT32, &value, NULL))
    self->timeout_ms = (guint)value;

  schedule (self);
}

/**
 * kp_refresh_start:
 *
 * Refreshes on the timer from now on, and at once when the last refresh is
 * older than the interval.
 */
void
kp_refresh_start (KpRefresh *self)
{
  g_return_if_fail (KP_IS_REFRESH (self));

  self->started = TRUE;
  schedule (self);
}

/**
 * kp_refresh_stop:
 *
 * Stops the timer and breaks off a refresh in flight; what was already
 * applied stays.
 */
void
kp_refresh_stop (KpRefresh *self)
{
  g_return_if_fail (KP_IS_REFRESH (self));

  self->started = FALSE;
  g_clear_handle_id (&self->timer_id, g_source_remove);
  if (self->run != NULL)
    g_cancellable_cancel (self->run->cancellable);
}

gint64
kp_refresh_get_interval_ms (KpRefresh *self)
{
  g_return_val_if_fail (KP_IS_REFRESH (self), 0);
  return self->interval_ms;
}

gboolean
kp_refresh_is_running (KpRefresh *self)
{
  g_return_val_if_fail (KP_IS_REFRESH (self), FALSE);
  return self->run != NULL;
}

/**
 * kp_refresh_get_last_run:
 *
 * Returns: when the last refresh of every provider ended, unix seconds; 0
 *   when there has been none
 */
gint64
kp_refresh_get_last_run (KpRefresh *self)
{
  g_return_val_if_fail (KP_IS_REFRESH (self), 0);
  return self->last_run;
}

/**
 * kp_refresh_get_state:
 *
 * Returns: (nullable): how the provider's last refresh went, or %NULL when
 *   it was never refreshed
 */
const KpRefreshRow *
kp_refresh_get_state (KpRefresh  *self,
                      const char *provider_id)
{
  g_return_val_if_fail (KP_IS_REFRESH (self), NULL);
  g_return_val_if_fail (provider_id != NULL, NULL);

  return g_hash_table_lookup (self->states, provider_id);
}

/**
 * kp_refresh_run_async:
 * @self: a #KpRefresh
 * @provider_id: (nullable): one provider, or %NULL for every usable one
 * @cancellable: (nullable): a #GCancellable; it stops the wait, not the refresh
 * @callback: called when the refresh is done
 * @user_data: data for @callback
 *
 * Refreshes now. While a refresh runs, this waits for it when it covers
 * @provider_id (or everything), or for one more right after it.
 */
void
kp_refresh_run_async (KpRefresh           *self,
                      const char          *provider_id,
                      GCancellable        *cancellable,
                      GAsyncReadyCallback  callback,
                      gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;

  g_return_if_fail (KP_IS_REFRESH (self));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, kp_refresh_run_async);
  g_task_set_task_data (task, g_strdup (provider_id), g_free);

  if (self->gateway == NULL || kp_gateway_get_ledger (self->gateway) == NULL)
    {
      g_task_return_new_error (task, KP_REFRESH_ERROR, KP_REFRESH_ERROR_UNAVAILABLE,
                               "Keypool is still starting; refresh in a moment.");
      return;
    }

  if (provider_id != NULL && kp_catalog_get_provider (kp_gateway_get_catalog (self->gateway),
                                                      provider_id) == NULL)
    {
      g_task_return_new_error (task, KP_REFRESH_ERROR, KP_REFRESH_ERROR_NOT_FOUND,
                               "There is no provider “%s”; “keypool providers” lists them.",
                               provider_id);
      return;
    }

  if (self->run != NULL)
    {
      gboolean covered = self->run->only == NULL ||
                         (provider_id != NULL &&
                          g_strv_contains ((const char * const *)self->run->only, provider_id));

      g_ptr_array_add (covered ? self->run->tasks : self->queued, g_steal_pointer (&task));
      return;
    }

  {
    g_auto(GStrv) only = provider_id ? g_strdupv ((char *[]) { (char *)provider_id, NULL }) : NULL;
    g_autoptr(GPtrArray) tasks = g_ptr_array_new_with_free_func (g_object_unref);

    g_ptr_array_add (tasks, g_steal_pointer (&task));
    run_start (self, only, tasks);
  }
}

/**
 * kp_refresh_run_finish:
 *
 * Returns: (transfer full) (element-type KpRefreshResult): one result per
 *   provider asked or skipped, or %NULL with @error set
 */
GPtrArray *
kp_refresh_run_finish (KpRefresh     *self,
                       GAsyncResult  *result,
                       GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}
