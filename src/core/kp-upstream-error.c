/* kp-upstream-error.c: what an upstream failure means for the route
 *
 * One status can mean different things: OpenAI answers 429 both for "slow
 * down" and for "out of money", and only the error code tells them apart.
 * The rules below follow what each provider documents; anything unknown
 * falls back on the status alone.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include <math.h>
#include <string.h>

#include <json-glib/json-glib.h>

#include "kp-upstream-error.h"
#include "codec/kp-json-guard.h"
#include "wire/kp-wire-json.h"

void
kp_failure_clear (KpFailure *failure)
{
  g_clear_pointer (&failure->message, g_free);
  g_clear_pointer (&failure->code, g_free);
  g_clear_pointer (&failure->user_url, g_free);
  failure->klass = KP_FAILURE_NONE;
  failure->retry_after = -1;
  failure->quota_reset = KP_QUOTA_RESET_UNKNOWN;
  failure->reset_utc_offset_min = 0;
  failure->account_locked = FALSE;
}

const char *
kp_quota_reset_to_string (KpQuotaReset reset)
{
  switch (reset)
    {
    case KP_QUOTA_RESET_DAY:
      return "day";
    case KP_QUOTA_RESET_MONTH:
      return "month";
    case KP_QUOTA_RESET_UNKNOWN:
    default:
      return "unknown";
    }
}

/**
 * kp_quota_reset_next:
 * @reset: the quota's period
 * @utc_offset_min: for %KP_QUOTA_RESET_DAY, where the provider's day starts:
 *   minutes east of UTC
 * @now: unix s
 *
 * Returns: when the period after @now starts (unix s), or 0 for
 *   %KP_QUOTA_RESET_UNKNOWN
 */
gint64
kp_quota_reset_next (KpQuotaReset reset,
                     int          utc_offset_min,
                     gint64       now)
{
  g_autoptr(GDateTime) utc = g_date_time_new_from_unix_utc (now);
  g_autoptr(GDateTime) local = NULL;
  g_autoptr(GDateTime) start = NULL;
  g_autoptr(GDateTime) next = NULL;

  if (utc == NULL)
    return 0;
  switch (reset)
    {
    case KP_QUOTA_RESET_DAY:
      utc_offset_min = CLAMP (utc_offset_min, -14 * 60, 14 * 60);
      /* The provider's wall clock, read as if it were UTC. */
      local = g_date_time_add_minutes (utc, utc_offset_min);
      start = g_date_time_new_utc (g_date_time_get_year (local), g_date_time_get_month (local),
                                   g_date_time_get_day_of_month (local), 0, 0, 0);
      next = g_date_time_add_days (start, 1);
      return g_date_time_to_unix (next) - (gint64)utc_offset_min * 60;
    case KP_QUOTA_RESET_MONTH:
      start = g_date_time_new_utc (g_date_time_get_year (utc), g_date_time_get_month (utc), 1,
                                   0, 0, 0);
      next = g_date_time_add_months (start, 1);
      return g_date_time_to_unix (next);
    case KP_QUOTA_RESET_UNKNOWN:
    default:
      return 0;
    }
}

const char *
kp_failure_class_to_string (KpFailureClass klass)
{
  switch (klass)
    {
    case KP_FAILURE_RATE_LIMITED:
      return "rate_limited";
    case KP_FAILURE_QUOTA:
      return "quota_exhausted";
    case KP_FAILURE_NEEDS_USER:
      return "needs-user";
    case KP_FAILURE_AUTH:
      return "auth_invalid";
    case KP_FAILURE_MODEL_MISSING:
      return "model_missing";
    case KP_FAILURE_DOWN:
      return "upstream_down";
    case KP_FAILURE_CLIENT:
      return "client_error";
    case KP_FAILURE_NONE:
    default:
      return "none";
    }
}

/**
 * kp_parse_go_duration_ms:
 * @value: a duration such as "1s", "6m0s", "59.1ms" or "2m59.56s"
 *
 * Returns: the duration in ms, or -1 when @value is not one
 */
gint64
kp_parse_go_duration_ms (const char *value)
{
  const char *p = value;
  double total = 0;

  if (value == NULL || *value == '\0')
    return -1;

  while (*p)
    {
      char *end = NULL;
      double amount = g_ascii_strtod (p, &end);

      if (end == p || amount < 0 || !isfinite (amount))
        return -1;
      p = end;
      if (g_str_has_prefix (p, "ms"))
        total += amount, p += 2;
      else if (g_str_has_prefix (p, "h"))
        total += amount * 3600000, p += 1;
      else if (g_str_has_prefix (p, "m"))
        total += amount * 60000, p += 1;
      else if (g_str_has_prefix (p, "s"))
        total += amount * 1000, p += 1;
      else
        return -1;
    }

  /* A duration no one waits for (years of them) is as good as a day: the
   * caller caps it anyway, and a double past gint64's range has no value.
   */
  if (total > (double)G_MAXINT32 * 1000)
    return (gint64)G_MAXINT32 * 1000;
  return (gint64)ceil (total);
}

/**
 * kp_parse_retry_after:
 * @value: a Retry-After value: seconds, or an HTTP date
 * @now: unix seconds
 *
 * Returns: seconds to wait, or -1 when @value says nothing usable
 */
gint64
kp_parse_retry_after (const char *value,
                      gint64      now)
{
  g_autofree char *text = NULL;
  guint64 seconds;
  GDateTime *date;
  gint64 when;

  if (value == NULL)
    return -1;

  text = g_strstrip (g_strdup (value));
  if (g_ascii_string_to_unsigned (text, 10, 0, G_MAXINT32, &seconds, NULL))
    return (gint64)seconds;

  date = soup_date_time_new_from_http_string (text);
  if (date == NULL)
    return -1;
  when = g_date_time_to_unix (date);
  g_date_time_unref (date);
  return MAX (when - now, 0);
}

/* "Please try again in 5.289s" (Groq, OpenAI) or "retry in 3s" (Gemini). */
static gint64
retry_from_message (const char *message)
{
  static const char *markers[] = { "try again in ", "retry in ", "retry after " };

  if (message == NULL)
    return -1;

  for (guint i = 0; i < G_N_ELEMENTS (markers); i++)
    {
      const char *p = strstr (message, markers[i]);
      char duration[32];
      guint n = 0;
      gint64 ms;

      if (p == NULL)
        continue;
      p += strlen (markers[i]);
      while (n < sizeof duration - 1 && (g_ascii_isdigit (p[n]) || p[n] == '.' ||
                                         p[n] == 'h' || p[n] == 'm' || p[n] == 's'))
        {
          duration[n] = p[n];
          n++;
        }
      duration[n] = '\0';
      ms = kp_parse_go_duration_ms (duration);
      if (ms >= 0)
        return (ms + 999) / 1000;
    }
  return -1;
}

static gint64
retry_from_headers (SoupMessageHeaders *headers)
{
  const char *names[] = { "x-ratelimit-reset-requests", "x-ratelimit-reset-tokens" };
  const char *anthropic_names[] = {
    "anthropic-ratelimit-requests-reset", "anthropic-ratelimit-tokens-reset",
    "anthropic-ratelimit-input-tokens-reset", "anthropic-ratelimit-output-tokens-reset",
  };
  const char *value;
  gint64 longest = -1;

  if (headers == NULL)
    return -1;

  value = soup_message_headers_get_one (headers, "Retry-After");
  if (value != NULL)
    {
      gint64 seconds = kp_parse_retry_after (value, g_get_real_time () / G_USEC_PER_SEC);

      if (seconds >= 0)
        return seconds;
    }

  value = soup_message_headers_get_one (headers, "retry-after-ms");
  if (value != NULL)
    {
      guint64 ms;

      if (g_ascii_string_to_unsigned (value, 10, 0, G_MAXINT64, &ms, NULL))
        return (gint64)((ms + 999) / 1000);
    }

  /* Only the limit that ran out matters, but we cannot tell which: wait for
   * the later of the two.
   */
  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      gint64 ms = kp_parse_go_duration_ms (soup_message_headers_get_one (headers, names[i]));

      if (ms >= 0)
        longest = MAX (longest, (ms + 999) / 1000);
    }
  if (longest >= 0)
    return longest;

  /* Anthropic gives the times its limits reset, in RFC 3339. */
  for (guint i = 0; i < G_N_ELEMENTS (anthropic_names); i++)
    {
      g_autoptr(GDateTime) reset = NULL;
      const char *text = soup_message_headers_get_one (headers, anthropic_names[i]);

      if (text == NULL || (reset = g_date_time_new_from_iso8601 (text, NULL)) == NULL)
        continue;
      longest = MAX (longest, MAX (g_date_time_to_unix (reset) -
                                   g_get_real_time () / G_USEC_PER_SEC, 0));
    }
  return longest;
}

static gboolean
contains_any (const char         *text,
              const char * const *words)
{
  g_autofree char *lower = NULL;

  if (text == NULL)
    return FALSE;
  lower = g_ascii_strdown (text, -1);
  for (guint i = 0; words[i] != NULL; i++)
    if (strstr (lower, words[i]) != NULL)
      return TRUE;
  return FALSE;
}

static const char *quota_words[] = {
  "insufficient_quota", "quota_exceeded", "quota exceeded", "exceeded your current quota",
  "insufficient balance", "insufficient credits", "credit balance", "out of credits",
  "spending limit", "billing", "per day", "(rpd)", "(tpd)", "quota_exhausted",
  "free allocated quota", "payment required", NULL
};

/* Money words that outweigh a 400's "invalid_request_error" (Anthropic's
 * low credit balance comes as one).
 */
static const char *credit_words[] = {
  "credit balance", "insufficient balance", "insufficient credits", "out of credits", NULL
};

static const char *model_missing_words[] = {
  "model_not_found", "model not found", "does not exist", "not a valid model",
  "unknown model", "no such model", "is not supported", "model is not available", NULL
};

static const char *bad_key_words[] = {
  "api key", "api_key", "apikey", "invalid key", "invalid_key", "unauthorized",
  "authentication", "bearer token", NULL
};

static const char *invalid_words[] = {
  "invalid", "incorrect", "expired", "revoked", NULL
};

static const char *client_words[] = {
  "context_length_exceeded", "context length", "maximum context", "too many tokens",
  "moderation", "flagged", "invalid_request", NULL
};

/* What google.rpc error details say (Gemini, Code Assist). */
typedef struct
{
  char    *reason;        /* ErrorInfo.reason */
  gboolean daily;         /* a QuotaFailure on a per-day quota */
  gboolean per_minute;    /* a QuotaFailure on a per-minute quota */
  gint64   retry_delay;   /* RetryInfo.retryDelay in seconds; -1 = none */
  char    *help_url;      /* Help.links[0].url: where the user must go */
} GoogleDetails;

/* Code Assist: a per-minute limit longer than this is a quota (googleQuotaErrors.ts). */
#define GOOGLE_RETRYABLE_MAX_S 300

static void
read_google_details (JsonObject    *error,
                     GoogleDetails *google)
{
  JsonNode *node = json_object_get_member (error, "details");
  JsonArray *details;

  if (node == NULL || !JSON_NODE_HOLDS_ARRAY (node))
    return;
  details = json_node_get_array (node);
  for (guint i = 0; i < json_array_get_length (details) && i < 32; i++)
    {
      JsonNode *element = json_array_get_element (details, i);
      JsonObject *detail;
      const char *type;

      if (!JSON_NODE_HOLDS_OBJECT (element))
        continue;
      detail = json_node_get_object (element);
      type = kp_json_string_or (detail, "@type", "");
      if (g_str_has_suffix (type, "google.rpc.ErrorInfo") && google->reason == NULL)
        google->reason = g_strdup (kp_json_string (detail, "reason"));
      else if (g_str_has_suffix (type, "google.rpc.Help") && google->help_url == NULL)
        {
          JsonObject *first = kp_json_array_object (kp_json_array (detail, "links"), 0);
          const char *url = kp_json_string (first, "url");

          if (url != NULL && g_str_has_prefix (url, "https://") && strlen (url) < 2048)
            google->help_url = g_strdup (url);
        }
      else if (g_str_has_suffix (type, "google.rpc.RetryInfo"))
        {
          gint64 ms = kp_parse_go_duration_ms (kp_json_string (detail, "retryDelay"));

          if (ms >= 0)
            google->retry_delay = (ms + 999) / 1000;
        }
      else if (g_str_has_suffix (type, "google.rpc.QuotaFailure"))
        {
          JsonArray *list = kp_json_array (detail, "violations");

          for (guint j = 0; list != NULL && j < json_array_get_length (list) && j < 32; j++)
            {
              JsonObject *violation = kp_json_array_object (list, j);
              const char *quota;

              if (violation == NULL)
                continue;
              quota = kp_json_string_or (violation, "quotaId", "");
              if (strstr (quota, "PerDay") != NULL || strstr (quota, "Daily") != NULL)
                google->daily = TRUE;
              else if (strstr (quota, "PerMinute") != NULL)
                google->per_minute = TRUE;
            }
        }
    }
}

/* Reads {"error":{"message","code","type"}} and the variants providers use:
 * OpenRouter's numeric code, a bare {"message"}, Gemini's "status" and
 * details, Google's error wrapped in an array.
 */
static void
read_error_body (KpFailure     *failure,
                 const char    *body,
                 gsize          body_len,
                 char         **type,
                 GoogleDetails *google)
{
  g_autoptr(JsonParser) parser = json_parser_new_immutable ();
  JsonObject *root;
  JsonObject *error;
  JsonNode *node;

  /* Spaces or comments alone parse, with no root. */
  if (body == NULL || body_len == 0 ||
      !kp_json_parser_load_from_data (parser, body, body_len, NULL) ||
      (node = json_parser_get_root (parser)) == NULL)
    {
      if (body != NULL && body_len > 0)
        failure->message = g_strndup (body, MIN (body_len, 300));
      return;
    }
  /* Gemini's OpenAI-compatible endpoint may wrap the error in an array. */
  if (JSON_NODE_HOLDS_ARRAY (node) && json_array_get_length (json_node_get_array (node)) > 0)
    node = json_array_get_element (json_node_get_array (node), 0);
  if (!JSON_NODE_HOLDS_OBJECT (node))
    {
      failure->message = g_strndup (body, MIN (body_len, 300));
      return;
    }

  root = json_node_get_object (node);
  node = json_object_get_member (root, "error");
  if (node != NULL && JSON_NODE_HOLDS_OBJECT (node))
    error = json_node_get_object (node);
  else
    error = root;

  if (node != NULL && JSON_NODE_HOLDS_VALUE (node) &&
      json_node_get_value_type (node) == G_TYPE_STRING)
    failure->message = g_strdup (json_node_get_string (node));

  node = json_object_get_member (error, "message");
  if (node != NULL && JSON_NODE_HOLDS_VALUE (node) &&
      json_node_get_value_type (node) == G_TYPE_STRING && failure->message == NULL)
    failure->message = g_strdup (json_node_get_string (node));

  node = json_object_get_member (error, "code");
  if (node != NULL && JSON_NODE_HOLDS_VALUE (node))
    {
      if (json_node_get_value_type (node) == G_TYPE_STRING)
        failure->code = g_strdup (json_node_get_string (node));
      else if (json_node_get_value_type (node) == G_TYPE_INT64)
        failure->code = g_strdup_printf ("%" G_GINT64_FORMAT, json_node_get_int (node));
    }

  read_google_details (error, google);
  node = json_object_get_member (error, "type");
  if (node == NULL)
    node = json_object_get_member (error, "status");
  if (node != NULL && JSON_NODE_HOLDS_VALUE (node) &&
      json_node_get_value_type (node) == G_TYPE_STRING)
    *type = g_strdup (json_node_get_string (node));
}

/* Google's error details, when they settle the class. */
static gboolean
classify_google (KpFailure     *failure,
                 guint          status,
                 const char    *type,
                 GoogleDetails *google)
{
  const char *reason = google->reason != NULL ? google->reason : "";

  /* FAILED_PRECONDITION: the account cannot use the API (its region, its
   * free tier): nothing this request or another model can change.
   */
  if (g_str_equal (reason, "API_KEY_INVALID") || g_str_equal (reason, "API_KEY_EXPIRED") ||
      (status == 400 && g_strcmp0 (type, "FAILED_PRECONDITION") == 0))
    failure->klass = KP_FAILURE_AUTH;
  else if (g_str_equal (reason, "VALIDATION_REQUIRED"))
    {
      /* Not a bad key: its owner must visit a page first. */
      failure->klass = KP_FAILURE_NEEDS_USER;
      if (google->help_url != NULL)
        {
          char *message = g_strdup_printf ("%s Verify the account at %s",
                                           failure->message ? failure->message : "",
                                           google->help_url);

          g_free (failure->message);
          failure->message = message;
          g_free (failure->user_url);
          failure->user_url = g_strdup (google->help_url);
        }
    }
  else if (g_str_equal (reason, "MODEL_CAPACITY_EXHAUSTED"))
    {
      /* The model is busy for everyone: another route, the key is fine. */
      failure->klass = KP_FAILURE_DOWN;
      failure->overloaded = TRUE;
    }
  else if (g_str_equal (reason, "QUOTA_EXHAUSTED") ||
           g_str_equal (reason, "INSUFFICIENT_G1_CREDITS_BALANCE"))
    failure->klass = KP_FAILURE_QUOTA;
  else if (status != 429)
    return FALSE;
  else if (google->daily)
    failure->klass = KP_FAILURE_QUOTA;
  else if (google->per_minute || g_str_equal (reason, "RATE_LIMIT_EXCEEDED"))
    failure->klass = google->retry_delay > GOOGLE_RETRYABLE_MAX_S ? KP_FAILURE_QUOTA
                                                                  : KP_FAILURE_RATE_LIMITED;
  else
    return FALSE;
  return TRUE;
}

/**
 * kp_failure_classify_http:
 * @failure: (out caller-allocates): filled in
 * @status: the upstream HTTP status (not 2xx)
 * @headers: (nullable): its headers
 * @body: (nullable): its body
 * @body_len: length of @body
 *
 * Sorts an upstream error response into a failure class and reads how long
 * the provider asked to wait.
 */
void
kp_failure_classify_http (KpFailure          *failure,
                          guint               status,
                          SoupMessageHeaders *headers,
                          const char         *body,
                          gsize               body_len)
{
  g_autofree char *type = NULL;
  g_autofree char *all = NULL;
  GoogleDetails google = { .retry_delay = -1 };

  g_return_if_fail (failure != NULL);

  *failure = (KpFailure) { .retry_after = -1, .quota_reset = KP_QUOTA_RESET_UNKNOWN };
  read_error_body (failure, body, body_len, &type, &google);
  failure->retry_after = retry_from_headers (headers);
  if (failure->retry_after < 0)
    failure->retry_after = google.retry_delay;
  if (failure->retry_after < 0)
    failure->retry_after = retry_from_message (failure->message);

  /* Google's details say it plainly, whatever the status. */
  if (classify_google (failure, status, type, &google))
    {
      g_free (google.reason);
      g_free (google.help_url);
      return;
    }
  g_free (google.reason);
  g_free (google.help_url);

  /* Code, type and message together: providers put the telling word in any. */
  all = g_strjoin (" ", failure->code ? failure->code : "", type ? type : "",
                   failure->message ? failure->message : "", NULL);

  switch (status)
    {
    case 401:
      failure->klass = KP_FAILURE_AUTH;
      break;
    case 402:
      failure->klass = KP_FAILURE_QUOTA;
      break;
    case 403:
      if (contains_any (all, quota_words))
        failure->klass = KP_FAILURE_QUOTA;
      else if (contains_any (all, client_words))
        failure->klass = KP_FAILURE_CLIENT;
      else
        failure->klass = KP_FAILURE_AUTH;
      break;
    case 404:
      failure->klass = KP_FAILURE_MODEL_MISSING;
      break;
    case 408:
      failure->klass = KP_FAILURE_DOWN;
      break;
    case 429:
      failure->klass = contains_any (all, quota_words) ? KP_FAILURE_QUOTA : KP_FAILURE_RATE_LIMITED;
      break;
    case 400:
    case 422:
      /* A 400 is the client's, unless it names the key, the money or the model. */
      if (contains_any (all, credit_words))
        failure->klass = KP_FAILURE_QUOTA;
      else if (contains_any (all, client_words))
        failure->klass = KP_FAILURE_CLIENT;
      else if (contains_any (all, quota_words))
        failure->klass = KP_FAILURE_QUOTA;
      else if (contains_any (all, model_missing_words))
        failure->klass = KP_FAILURE_MODEL_MISSING;
      else if (status == 400 && contains_any (all, bad_key_words) &&
               contains_any (all, invalid_words))
        failure->klass = KP_FAILURE_AUTH;
      else
        failure->klass = KP_FAILURE_CLIENT;
      break;
    default:
      if (status >= 500 || status == 498)
        {
          failure->klass = KP_FAILURE_DOWN;
          /* Anthropic's 529, and Gemini's 503 "The model is overloaded". */
          failure->overloaded = status == 529 || g_strcmp0 (type, "overloaded_error") == 0 ||
                                (status == 503 && g_strcmp0 (type, "UNAVAILABLE") == 0);
        }
      else
        failure->klass = KP_FAILURE_CLIENT;
      break;
    }
}

/* Anthropic's error events carry no status, only the type its HTTP errors
 * have: {"type":"error","error":{"type":"overloaded_error",…}}.
 */
static guint
anthropic_event_status (const char *data)
{
  static const struct { const char *type; guint status; } types[] = {
    { "\"overloaded_error\"", 529 },
    { "\"rate_limit_error\"", 429 },
    { "\"api_error\"", 500 },
    { "\"authentication_error\"", 401 },
    { "\"permission_error\"", 403 },
    { "\"not_found_error\"", 404 },
    { "\"billing_error\"", 402 },
    { "\"request_too_large\"", 413 },
    { "\"invalid_request_error\"", 400 },
  };

  for (guint i = 0; i < G_N_ELEMENTS (types); i++)
    if (strstr (data, types[i].type) != NULL)
      return types[i].status;
  return 0;
}

/**
 * kp_failure_classify_event:
 * @failure: (out caller-allocates): filled in
 * @data: the data of an SSE event that carries `{"error":…}`
 *
 * An error inside a 200 stream, before anything reached the client. Its code
 * is read like an HTTP status when it is one (OpenRouter puts the status in
 * `code`); otherwise the provider is taken to be down.
 */
void
kp_failure_classify_event (KpFailure  *failure,
                           const char *data)
{
  guint64 status = 0;

  g_return_if_fail (failure != NULL);

  kp_failure_classify_http (failure, 502, NULL, data, strlen (data));
  if ((failure->code != NULL &&
       g_ascii_string_to_unsigned (failure->code, 10, 400, 599, &status, NULL)) ||
      (status = anthropic_event_status (data)) != 0)
    {
      KpFailure again;

      kp_failure_classify_http (&again, (guint)status, NULL, data, strlen (data));
      failure->klass = again.klass;
      failure->overloaded = again.overloaded;
      kp_failure_clear (&again);
    }
}
