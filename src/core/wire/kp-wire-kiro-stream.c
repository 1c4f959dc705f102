/* kp-wire-kiro-stream.c: Kiro's answer, an AWS event stream, into the hub's events
 *
 * The relay cuts the stream with kp_kiro_next_event(): each message of the
 * event stream becomes one event named by its :event-type, its payload the
 * data. An exception or error message becomes an event named ":exception"
 * or ":error" whose data is an error body in the common shape, its code the
 * HTTP status the exception stands for, so that it is classified as an HTTP
 * error is.
 *
 * The decoder: assistantResponseEvent is text (a chunk identical to the one
 * before is dropped: Kiro repeats some); toolUseEvent fragments are a tool
 * call's start and its arguments; reasoningContentEvent is thinking;
 * meteringEvent adds the credits used; contextUsageEvent says how full the
 * context is. Kiro counts no tokens: they are estimated, from the prompt
 * (or the context used) and from the length of the answer. The stream has
 * no last event: when Kiro closes it, the answer ends.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include <math.h>
#include <string.h>

#include "codec/kp-event-stream.h"
#include "codec/kp-json-guard.h"
#include "kp-wire-kiro-private.h"

/* Tool calls one answer may open, and credits one request may report. */
#define MAX_TOOL_CALLS 1024
#define MAX_CREDITS    1e6

#define EXCEPTION_EVENT ":exception"
#define ERROR_EVENT     ":error"

/* Cutting the stream -------------------------------------------------------- */

/* The HTTP status an exception stands for, as §7 of the protocol notes
 * classifies Kiro's errors.
 */
static guint
exception_status (const char *type,
                  gsize       type_len,
                  const char *payload,
                  gsize       payload_len)
{
  static const struct { const char *type; guint status; } types[] = {
    { "ThrottlingException", 429 },
    { "ServiceQuotaExceededException", 402 },
    { "ValidationException", 400 },
    { "AccessDeniedException", 403 },
    { "UnauthorizedException", 401 },
    { "ResourceNotFoundException", 404 },
    { "ConflictException", 409 },
    { "InternalServerException", 500 },
    { "ServiceUnavailableException", 503 },
  };

  if (payload != NULL && (memmem (payload, payload_len, "MONTHLY_REQUEST_COUNT", 21) != NULL))
    return 402;
  if (payload != NULL && (memmem (payload, payload_len, "TemporarilySuspended", 20) != NULL ||
                          memmem (payload, payload_len, "suspended", 9) != NULL))
    return 403;
  for (guint i = 0; type != NULL && i < G_N_ELEMENTS (types); i++)
    {
      gsize len = strlen (types[i].type);

      /* Some services send the type with a namespace: "…#ThrottlingException". */
      if (type_len >= len && memcmp (type + type_len - len, types[i].type, len) == 0)
        return types[i].status;
    }
  return 500;
}

/* An exception or error message as an error body in the common shape. */
static void
error_body (GString                    *out,
            const KpEventStreamMessage *message)
{
  const char *payload = (const char *)message->payload;
  gsize payload_len = message->payload_len;
  g_autoptr(JsonObject) object = NULL;
  g_autofree char *type = NULL;
  g_autofree char *text = NULL;
  const char *said = NULL;

  type = message->event_type != NULL ? g_strndup (message->event_type, message->event_type_len)
                                     : g_strdup (kp_event_stream_message_type_to_string (message->type));
  if (payload_len > 0)
    object = kp_json_parse_object (payload, payload_len);
  said = kp_json_string (object, "message");
  if (said == NULL)
    said = kp_json_string (object, "Message");
  if (said == NULL && message->error_message != NULL)
    said = text = g_strndup (message->error_message, message->error_message_len);
  if (said == NULL && object == NULL && payload_len > 0 &&
      g_utf8_validate (payload, payload_len, NULL))
    said = text = g_strndup (payload, MIN (payload_len, 300));

  g_string_truncate (out, 0);
  g_string_append_printf (out, "{\"error\":{\"code\":\"%u\",\"type\":",
                          exception_status (type, strlen (type), payload, payload_len));
  kp_json_append_string (out, type);
  if (said != NULL)
    {
      g_string_append (out, ",\"message\":");
      kp_json_append_string (out, said);
    }
  if (kp_json_string (object, "reason") != NULL)
    {
      g_string_append (out, ",\"reason\":");
      kp_json_append_string (out, kp_json_string (object, "reason"));
    }
  g_string_append (out, "}}");
}

/**
 * kp_kiro_next_event:
 *
 * Cuts one message of Kiro's event stream into @event (see KpWire's
 * next_event).
 */
gssize
kp_kiro_next_event (const guint8  *buf,
                    gsize          len,
                    gboolean       eof,
                    KpSseEvent    *event,
                    GError       **error)
{
  KpEventStreamMessage message;
  gssize n;

  kp_event_stream_message_init (&message);
  n = kp_event_stream_next (buf, len, &message, error);
  if (n == 0 && eof && !kp_event_stream_check_end (buf, len, error))
    n = -1;
  if (n > 0)
    {
      event->has_data = TRUE;
      switch (message.type)
        {
        case KP_EVENT_STREAM_MESSAGE_EVENT:
          event->name = message.event_type;
          event->name_len = message.event_type_len;
          g_string_truncate (event->data, 0);
          g_string_append_len (event->data, (const char *)message.payload, message.payload_len);
          break;
        case KP_EVENT_STREAM_MESSAGE_EXCEPTION:
        case KP_EVENT_STREAM_MESSAGE_ERROR:
        default:
          event->name = message.type == KP_EVENT_STREAM_MESSAGE_EXCEPTION ? EXCEPTION_EVENT
                                                                          : ERROR_EVENT;
          event->name_len = strlen (event->name);
          error_body (event->data, &message);
          break;
        }
    }
  kp_event_stream_message_clear (&message);
  return n;
}

/* Decoding ----------------------------------------------------------------- */

typedef struct
{
  JsonNode   *last;          /* the event read last (kp_json_read_into) */
  char       *id;
  char       *last_text;      /* the text chunk before, to drop a repeat */
  GHashTable *tools;          /* toolUseId -> ordinal + 1 */
  guint       n_tools;
  gboolean    started;
  gboolean    ended;
  gint64      output_chars;
  gint64      prompt_estimate;
  gint64      context;        /* the model's context window, or 0 */
  double      credits;
  gboolean    has_credits;    /* a meteringEvent came */
  KpUsage     usage;
} Decoder;

KpWireDecoder
kp_kiro_decoder_new (const KpWireRequest *req,
                     const KpWireTarget  *target,
                     gboolean             passthrough)
{
  Decoder *self = g_new0 (Decoder, 1);
  g_autofree char *uuid = g_uuid_string_random ();

  self->id = g_strconcat ("kiro-", uuid, NULL);
  self->tools = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->prompt_estimate = req != NULL ? req->prompt_tokens : 0;
  self->context = target != NULL && target->offering != NULL ? target->offering->context : 0;
  return self;
}

void
kp_kiro_decoder_free (KpWireDecoder decoder)
{
  Decoder *self = decoder;

  g_clear_pointer (&self->last, json_node_unref);
  g_hash_table_unref (self->tools);
  g_free (self->last_text);
  g_free (self->id);
  g_free (self);
}

static gboolean
name_is (const char *name,
         gsize       name_len,
         const char *literal)
{
  gsize len = strlen (literal);

  return name != NULL && name_len == len && memcmp (name, literal, len) == 0;
}

static void
emit_usage (Decoder     *self,
            KpEventSink  sink,
            gpointer     user_data)
{
  self->usage = (KpUsage) {
    .known = TRUE,
    .estimated = TRUE,
    .prompt_tokens = MAX (self->prompt_estimate, 0),
    .completion_tokens = (self->output_chars + 3) / 4,
    .has_credits = self->has_credits,
    .credits = self->credits,
  };
  kp_event_emit (sink, user_data, (KpEvent) { .type = KP_EVENT_USAGE, .usage = &self->usage });
}

static void
decode_tool_use (Decoder     *self,
                 JsonObject  *object,
                 KpEventSink  sink,
                 gpointer     user_data)
{
  const char *id = kp_json_string (object, "toolUseId");
  JsonNode *input = kp_json_member (object, "input");
  g_autofree char *arguments = NULL;
  gpointer ordinal;

  if (!kp_json_nonempty (id))
    return;
  if (input != NULL && JSON_NODE_HOLDS_OBJECT (input))
    arguments = kp_json_to_string (input, NULL);
  else if (kp_json_node_string (input) != NULL)
    arguments = g_strdup (kp_json_node_string (input));

  ordinal = g_hash_table_lookup (self->tools, id);
  if (ordinal == NULL)
    {
      const char *name = kp_json_string (object, "name");

      if (self->n_tools >= MAX_TOOL_CALLS)
        return;
      g_hash_table_insert (self->tools, g_strdup (id), GUINT_TO_POINTER (self->n_tools + 1));
      kp_event_emit (sink, user_data, (KpEvent) {
        .type = KP_EVENT_TOOL_CALL,
        .index = self->n_tools++,
        .id = id,
        .name = kp_json_nonempty (name) ? name : "tool",
        .text = kp_json_nonempty (arguments) ? arguments : NULL,
      });
    }
  else if (kp_json_nonempty (arguments))
    kp_event_emit (sink, user_data, (KpEvent) {
      .type = KP_EVENT_TOOL_ARGS,
      .index = GPOINTER_TO_UINT (ordinal) - 1,
      .text = arguments,
    });
  if (arguments != NULL)
    self->output_chars += strlen (arguments);
}

static void
decode_text (Decoder     *self,
             const char  *text,
             KpEventSink  sink,
             gpointer     user_data)
{
  if (!kp_json_nonempty (text))
    return;
  /* Kiro sends some chunks twice in a row. */
  if (g_strcmp0 (text, self->last_text) == 0)
    return;
  g_free (self->last_text);
  self->last_text = g_strdup (text);
  self->output_chars += strlen (text);
  kp_event_emit (sink, user_data, (KpEvent) { .type = KP_EVENT_TEXT, .text = text });
}

KpDecodeResult
kp_kiro_decode (KpWireDecoder  decoder,
                const char    *name,
                gsize          name_len,
                const char    *data,
                gsize          len,
                KpEventSink    sink,
                gpointer       user_data)
{
  Decoder *self = decoder;
  JsonObject *object = NULL;
  JsonNode *root;

  if (self->ended)
    return KP_DECODE_DROP;
  if (name_is (name, name_len, EXCEPTION_EVENT) || name_is (name, name_len, ERROR_EVENT))
    {
      kp_event_emit (sink, user_data, (KpEvent) { .type = KP_EVENT_ERROR, .text = data });
      return KP_DECODE_DROP;
    }

  root = kp_json_read_into (&self->last, data, len);
  if (root != NULL && JSON_NODE_HOLDS_OBJECT (root))
    object = json_node_get_object (root);
  if (object == NULL)
    return KP_DECODE_DROP;

  if (!self->started)
    {
      self->started = TRUE;
      kp_event_emit (sink, user_data, (KpEvent) { .type = KP_EVENT_START, .id = self->id });
    }

  if (name_is (name, name_len, "assistantResponseEvent"))
    decode_text (self, kp_json_string (object, "content"), sink, user_data);
  else
    {
      g_clear_pointer (&self->last_text, g_free);
      if (name_is (name, name_len, "toolUseEvent"))
        decode_tool_use (self, object, sink, user_data);
      else if (name_is (name, name_len, "reasoningContentEvent"))
        {
          const char *text = kp_json_string (object, "text");

          if (kp_json_nonempty (text))
            {
              self->output_chars += strlen (text);
              kp_event_emit (sink, user_data, (KpEvent) { .type = KP_EVENT_REASONING,
                                                          .text = text });
            }
        }
      else if (name_is (name, name_len, "meteringEvent"))
        {
          JsonNode *usage = kp_json_member (object, "usage");
          double credits = kp_json_is_number (usage) ? json_node_get_double (usage) : NAN;

          if (isfinite (credits) && credits >= 0 && self->credits + credits <= MAX_CREDITS)
            {
              self->credits += credits;
              self->has_credits = TRUE;
              emit_usage (self, sink, user_data);
            }
        }
      else if (name_is (name, name_len, "contextUsageEvent"))
        {
          JsonNode *node = kp_json_member (object, "contextUsagePercentage");
          double percent = kp_json_is_number (node) ? json_node_get_double (node) : NAN;

          /* The context used, as a share of the model's window: the prompt. */
          if (isfinite (percent) && percent > 0 && percent <= 100 && self->context > 0)
            {
              self->prompt_estimate = (gint64)(percent / 100.0 * (double)self->context);
              emit_usage (self, sink, user_data);
            }
        }
      else if (name_is (name, name_len, "invalidStateEvent"))
        kp_event_emit (sink, user_data, (KpEvent) { .type = KP_EVENT_ERROR, .text = data });
      /* followupPromptEvent, codeReferenceEvent, messageMetadataEvent, … */
    }
  return KP_DECODE_DROP;
}

/**
 * kp_kiro_decode_end:
 *
 * Kiro closed its stream: the answer is complete (a stream with no event at
 * all is not an answer, and ends nothing).
 */
void
kp_kiro_decode_end (KpWireDecoder  decoder,
                    KpEventSink    sink,
                    gpointer       user_data)
{
  Decoder *self = decoder;

  if (!self->started || self->ended)
    return;
  self->ended = TRUE;
  emit_usage (self, sink, user_data);
  kp_event_emit (sink, user_data, (KpEvent) {
    .type = KP_EVENT_FINISH,
    .finish = self->n_tools > 0 ? KP_FINISH_TOOL_CALLS : KP_FINISH_STOP,
  });
  kp_event_emit (sink, user_data, (KpEvent) { .type = KP_EVENT_END });
}

/* A whole answer ------------------------------------------------------------ */

typedef struct
{
  GString   *text;
  GString   *reasoning;
  GPtrArray *tool_ids;   /* by ordinal */
  GPtrArray *tool_names;
  GPtrArray *tool_args;  /* of GString */
  char      *error;
  KpUsage    usage;
  KpFinish   finish;
} Answer;

static void
string_free (gpointer data)
{
  g_string_free (data, TRUE);
}

static void
on_answer_event (const KpEvent *event,
                 gpointer       user_data)
{
  Answer *answer = user_data;

  switch (event->type)
    {
    case KP_EVENT_TEXT:
      g_string_append (answer->text, event->text);
      break;
    case KP_EVENT_REASONING:
      g_string_append (answer->reasoning, event->text);
      break;
    case KP_EVENT_TOOL_CALL:
      if (event->index == answer->tool_ids->len)
        {
          g_ptr_array_add (answer->tool_ids, g_strdup (event->id));
          g_ptr_array_add (answer->tool_names, g_strdup (event->name));
          g_ptr_array_add (answer->tool_args, g_string_new (event->text));
        }
      break;
    case KP_EVENT_TOOL_ARGS:
      if (event->index < answer->tool_args->len)
        g_string_append (g_ptr_array_index (answer->tool_args, event->index), event->text);
      break;
    case KP_EVENT_USAGE:
      answer->usage = *event->usage;
      break;
    case KP_EVENT_FINISH:
      answer->finish = event->finish;
      break;
    case KP_EVENT_ERROR:
      if (answer->error == NULL)
        answer->error = g_strdup (event->text);
      break;
    case KP_EVENT_START:
    case KP_EVENT_KEEPALIVE:
    case KP_EVENT_END:
    default:
      break;
    }
}

static JsonObject *
canonical_message (Answer *answer)
{
  JsonObject *message = json_object_new ();

  json_object_set_string_member (message, "role", "assistant");
  if (answer->text->len > 0 || answer->tool_ids->len == 0)
    json_object_set_string_member (message, "content", answer->text->str);
  else
    json_object_set_null_member (message, "content");
  if (answer->reasoning->len > 0)
    json_object_set_string_member (message, "reasoning_content", answer->reasoning->str);
  if (answer->tool_ids->len > 0)
    {
      JsonArray *calls = json_array_new ();

      for (guint i = 0; i < answer->tool_ids->len; i++)
        {
          JsonObject *call = json_object_new ();
          JsonObject *function = json_object_new ();
          GString *arguments = g_ptr_array_index (answer->tool_args, i);

          json_object_set_string_member (function, "name", g_ptr_array_index (answer->tool_names, i));
          json_object_set_string_member (function, "arguments",
                                         arguments->len > 0 ? arguments->str : "{}");
          json_object_set_string_member (call, "id", g_ptr_array_index (answer->tool_ids, i));
          json_object_set_string_member (call, "type", "function");
          json_object_set_object_member (call, "function", function);
          json_array_add_object_element (calls, call);
        }
      json_object_set_array_member (message, "tool_calls", calls);
    }
  return message;
}

/**
 * kp_kiro_answer_to_canonical:
 * @data: a whole event stream, as Kiro answers a request
 * @model: the model the client asked for
 * @usage: (out): the estimated usage and the credits
 *
 * Returns: (transfer full) (nullable): the answer as the hub's Chat
 *   completion, or %NULL with @error set when the stream cannot be read or
 *   carries an error
 */
JsonNode *
kp_kiro_answer_to_canonical (const char  *data,
                             gsize        len,
                             const char  *model,
                             KpUsage     *usage,
                             GError     **error)
{
  Answer answer = {
    .text = g_string_new (NULL),
    .reasoning = g_string_new (NULL),
    .tool_ids = g_ptr_array_new_with_free_func (g_free),
    .tool_names = g_ptr_array_new_with_free_func (g_free),
    .tool_args = g_ptr_array_new_with_free_func (string_free),
  };
  KpSseEvent event = { .data = g_string_new (NULL) };
  KpWireDecoder decoder = kp_kiro_decoder_new (NULL, NULL, FALSE);
  const guint8 *buf = (const guint8 *)data;
  g_autoptr(GError) cut = NULL;
  JsonObject *completion = NULL;
  JsonNode *node = NULL;
  gsize offset = 0;
  gssize n;

  while ((n = kp_kiro_next_event (buf + offset, len - offset, TRUE, &event, &cut)) > 0 &&
         answer.error == NULL)
    {
      kp_kiro_decode (decoder, event.name, event.name_len, event.data->str, event.data->len,
                      on_answer_event, &answer);
      offset += n;
    }
  kp_kiro_decode_end (decoder, on_answer_event, &answer);

  if (n < 0)
    g_set_error (error, KP_WIRE_ERROR, KP_WIRE_ERROR_ANSWER, "Kiro's answer cannot be read: %s",
                 cut->message);
  else if (answer.error != NULL)
    {
      g_autofree char *message = kp_wire_error_message (answer.error, strlen (answer.error),
                                                        NULL, NULL);

      g_set_error (error, KP_WIRE_ERROR, KP_WIRE_ERROR_ANSWER, "Kiro answered with an error: %s",
                   message != NULL ? message : answer.error);
    }
  else if (answer.finish == KP_FINISH_NONE)
    g_set_error_literal (error, KP_WIRE_ERROR, KP_WIRE_ERROR_ANSWER,
                         "Kiro's answer has no event in it");
  else
    {
      JsonObject *choice = json_object_new ();
      JsonArray *choices = json_array_new ();
      JsonObject *usage_object = json_object_new ();

      json_object_set_string_member (choice, "finish_reason", kp_finish_to_string (answer.finish));
      json_object_set_int_member (choice, "index", 0);
      json_object_set_object_member (choice, "message", canonical_message (&answer));
      json_array_add_object_element (choices, choice);

      json_object_set_int_member (usage_object, "prompt_tokens", answer.usage.prompt_tokens);
      json_object_set_int_member (usage_object, "completion_tokens",
                                  answer.usage.completion_tokens);
      json_object_set_int_member (usage_object, "total_tokens",
                                  answer.usage.prompt_tokens + answer.usage.completion_tokens);

      completion = json_object_new ();
      json_object_set_string_member (completion, "id", ((Decoder *)decoder)->id);
      json_object_set_string_member (completion, "object", "chat.completion");
      json_object_set_int_member (completion, "created", g_get_real_time () / G_USEC_PER_SEC);
      json_object_set_string_member (completion, "model", model != NULL ? model : "");
      json_object_set_array_member (completion, "choices", choices);
      json_object_set_object_member (completion, "usage", usage_object);
      node = json_node_new (JSON_NODE_OBJECT);
      json_node_take_object (node, completion);
      *usage = answer.usage;
    }

  kp_kiro_decoder_free (decoder);
  g_string_free (event.data, TRUE);
  g_string_free (answer.text, TRUE);
  g_string_free (answer.reasoning, TRUE);
  g_ptr_array_unref (answer.tool_ids);
  g_ptr_array_unref (answer.tool_names);
  g_ptr_array_unref (answer.tool_args);
  g_free (answer.error);
  return node;
}

/* Errors ------------------------------------------------------------------- */

/* The first second of next month, UTC: when a monthly quota comes back. */
static gint64
seconds_to_next_month (void)
{
  g_autoptr(GDateTime) now = g_date_time_new_now_utc ();
  g_autoptr(GDateTime) first = g_date_time_new_utc (g_date_time_get_year (now),
                                                    g_date_time_get_month (now), 1, 0, 0, 0);
  g_autoptr(GDateTime) next = g_date_time_add_months (first, 1);

  return MAX (g_date_time_difference (next, now) / G_TIME_SPAN_SECOND, 1);
}

static gboolean
has (const char *lower,
     const char *word)
{
  return strstr (lower, word) != NULL;
}

/**
 * kp_kiro_classify:
 *
 * Kiro's errors as §4.2 of the protocol notes sorts them: a suspended or
 * locked account is a dead credential; the monthly quota is exhausted until
 * next month; throttling is a rate limit; a malformed request is the
 * client's, and no other account is tried for it.
 */
void
kp_kiro_classify (KpFailure  *failure,
                  guint       status,
                  const char *body,
                  gsize       len)
{
  g_autofree char *text = body != NULL ? g_utf8_make_valid (body, MIN (len, 8192))
                                       : g_strdup ("");
  g_autofree char *lower = g_ascii_strdown (text, -1);

  if (status == 423 ||
      ((status == 403 || status == 400) && (has (lower, "temporarilysuspended") ||
                                            has (lower, "suspended"))))
    {
      failure->klass = KP_FAILURE_AUTH;
      g_free (failure->code);
      failure->code = g_strdup ("account_suspended");
      /* No refresh brings a locked account back. */
      failure->account_locked = TRUE;
      if (failure->message == NULL)
        failure->message = g_strdup ("the Kiro account is suspended or locked");
    }
  else if (status == 402 || has (lower, "servicequotaexceededexception") ||
           has (lower, "monthly_request_count"))
    {
      failure->klass = KP_FAILURE_QUOTA;
      /* Kiro's limits are monthly; key health rests the account until the
       * first of next month by its clock. The Retry-After for the client.
       */
      failure->quota_reset = KP_QUOTA_RESET_MONTH;
      failure->retry_after = seconds_to_next_month ();
    }
  else if (status == 429 || has (lower, "throttlingexception"))
    failure->klass = KP_FAILURE_RATE_LIMITED;
  else if (status == 403 && has (lower, "bearer token"))
    failure->klass = KP_FAILURE_AUTH;
  else if (status == 400 && (has (lower, "improperly formed") ||
                             has (lower, "validationexception")))
    failure->klass = KP_FAILURE_CLIENT;
}
