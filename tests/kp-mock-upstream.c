/* kp-mock-upstream.c: an OpenAI-compatible provider for tests
 *
 * The upstream model id in the request picks the behaviour:
 *
 *   mock-chat            a normal answer; streamed as paced chunks when asked
 *   mock-cost            the same, with OpenRouter-style usage.cost
 *   mock-429             429 rate limited, with Retry-After
 *   mock-500             500 server error
 *   mock-400             400 context length exceeded
 *   mock-hang            never answers (until the client goes away)
 *   mock-stall           streams two chunks, then stays silent
 *   mock-cut             streams three chunks, then drops the connection
 *   mock-instream-error  200 text/event-stream whose only event is an error
 *   mock-tools           text, then two tool calls with their arguments in pieces
 *   mock-agent           a call of the request's first tool, with {"city": "Paris"};
 *                        after a tool result, "The tool said: RESULT."
 *
 * POST …/messages is Anthropic's API: see kp-mock-anthropic.c;
 * POST …/models/{model}:generateContent Gemini's: see kp-mock-gemini.c. POST
 * …/models/{model}:embedContent and :batchEmbedContents are Gemini's
 * embeddings, in kp-mock-embeddings.c. POST
 * …/responses, …/embeddings and …/completions are OpenAI's other APIs: see
 * kp-mock-responses.c, kp-mock-embeddings.c and kp-mock-completions.c.
 *
 * GET /mock/requests answers the last requests the mock received (method,
 * path, headers and body, oldest first), for tests that run the mock as a
 * program and want to see what reached it.
 *
 * A key can override that, by a word in it: "invalid" → 401, "rate" → 429
 * with Retry-After: 2, "quota" → 429 insufficient_quota, "nocredit" → 402,
 * "down" → 500, "nomodel" → 404 model_not_found, "slow" → no answer.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include <json-glib/json-glib.h>

#include "kp-mock-private.h"

/* How many requests GET /mock/requests remembers. */
#define LOG_LENGTH 64

struct _KpMockUpstream
{
  SoupServer  *server;
  char        *url;
  guint        port;
  guint        n_chunks;
  guint        interval_ms;
  char        *padding;      /* appended to each streamed word, or NULL */
  KpMockStats  stats;
  GList       *streams;   /* of Stream*, in flight */
};

typedef struct
{
  KpMockUpstream    *mock;
  SoupServerMessage *msg;
  char              *model;
  gboolean           include_usage;
  gboolean           with_cost;
  guint              sent;
  guint              limit;      /* chunks to send before the behaviour's end */
  guint              timeout_id;
  gboolean           done;       /* we ended the response */
  gboolean           finished;   /* libsoup finished the message */
  enum { END_NORMAL, END_STALL, END_CUT } end;
} Stream;

static void
stream_free (Stream *stream)
{
  g_clear_handle_id (&stream->timeout_id, g_source_remove);
  g_clear_object (&stream->msg);
  g_free (stream->model);
  g_free (stream);
}

static void
record_finish (KpMockUpstream *self,
               gboolean        complete)
{
  if (complete)
    self->stats.completed++;
  else
    self->stats.cancelled++;
}

static char *
usage_json (gboolean with_cost,
            guint    completion)
{
  return g_strdup_printf ("{\"prompt_tokens\":11,\"completion_tokens\":%u,\"total_tokens\":%u,"
                          "\"prompt_tokens_details\":{\"cached_tokens\":3},"
                          "\"completion_tokens_details\":{\"reasoning_tokens\":1}%s}",
                          completion, 11 + completion,
                          with_cost ? ",\"cost\":0.000123" : "");
}

static void
append (SoupServerMessage *msg,
        char              *text)
{
  soup_message_body_append (soup_server_message_get_response_body (msg),
                            SOUP_MEMORY_TAKE, text, strlen (text));
}

/* The body of a request to an API, as JSON; counted and kept as the last
 * request with the value of @auth_header. Answers 400 and returns NULL
 * when the body is not a JSON object.
 */
JsonObject *
kp_mock_read_request (KpMockStats       *stats,
                      SoupServerMessage *msg,
                      const char        *auth_header)
{
  SoupMessageHeaders *headers = soup_server_message_get_request_headers (msg);
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GBytes) body = soup_message_body_flatten (soup_server_message_get_request_body (msg));
  gsize len;
  const char *data = g_bytes_get_data (body, &len);

  stats->requests++;
  g_free (stats->last_body);
  stats->last_body = g_strndup (data, len);
  g_free (stats->last_auth);
  stats->last_auth = g_strdup (soup_message_headers_get_one (headers, auth_header));

  if (!json_parser_load_from_data (parser, data, len, NULL) ||
      !JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
    {
      kp_mock_reply_error (msg, 400, "mock: bad JSON");
      return NULL;
    }
  return json_object_ref (json_node_get_object (json_parser_get_root (parser)));
}

/* @object as compact JSON text; consumes @object. */
char *
kp_mock_object_to_data (JsonObject *object)
{
  g_autoptr(JsonNode) node = json_node_init_object (json_node_alloc (), object);

  json_object_unref (object);
  return json_to_string (node, FALSE);
}

/* Answers @object; consumes it. */
void
kp_mock_reply_json (SoupServerMessage *msg,
                    guint              status,
                    JsonObject        *object)
{
  char *text = kp_mock_object_to_data (object);

  soup_server_message_set_status (msg, status, NULL);
  soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_TAKE, text, strlen (text));
}

/* Answers a whole event stream at once. */
void
kp_mock_reply_sse (SoupServerMessage *msg,
                   GString           *events)
{
  soup_server_message_set_status (msg, 200, NULL);
  soup_server_message_set_response (msg, "text/event-stream", SOUP_MEMORY_COPY,
                                    events->str, events->len);
}

/* An OpenAI error body with @message. */
void
kp_mock_reply_error (SoupServerMessage *msg,
                     guint              status,
                     const char        *message)
{
  JsonObject *error = json_object_new ();
  JsonObject *body = json_object_new ();

  json_object_set_string_member (error, "message", message);
  json_object_set_string_member (error, "type", "invalid_request_error");
  json_object_set_null_member (error, "param");
  json_object_set_null_member (error, "code");
  json_object_set_object_member (body, "error", error);
  kp_mock_reply_json (msg, status, body);
}

/* The mock's usual answer: "tok0 tok1 … " with @n_chunks words. */
char *
kp_mock_answer_text (guint n_chunks)
{
  GString *text = g_string_new (NULL);

  for (guint i = 0; i < n_chunks; i++)
    g_string_append_printf (text, "tok%u ", i);
  return g_string_free (text, FALSE);
}

/* A paused message is not watched by libsoup 3.2, so notice ourselves when
 * Keypool drops the connection, and let libsoup finish the message.
 */
static gboolean
on_peer_socket (GSocket      *socket,
                GIOCondition  condition,
                gpointer      user_data)
{
  SoupServerMessage *msg = user_data;
  char byte;

  if ((condition & (G_IO_HUP | G_IO_ERR)) == 0 &&
      recv (g_socket_get_fd (socket), &byte, 1, MSG_PEEK | MSG_DONTWAIT) != 0)
    return errno == EAGAIN ? G_SOURCE_CONTINUE : G_SOURCE_REMOVE;

  if (soup_server_message_get_status (msg) == 0)
    soup_server_message_set_status (msg, 500, NULL);
  else
    soup_message_body_complete (soup_server_message_get_response_body (msg));
  soup_server_message_unpause (msg);
  return G_SOURCE_REMOVE;
}

static void
destroy_source (gpointer data)
{
  g_source_destroy (data);
  g_source_unref (data);
}

static void
watch_peer (SoupServerMessage *msg)
{
  GSource *source = g_socket_create_source (soup_server_message_get_socket (msg),
                                            G_IO_IN | G_IO_HUP | G_IO_ERR, NULL);

  /* The message owns the watch, so the watch need not own the message. */
  g_source_set_callback (source, G_SOURCE_FUNC (on_peer_socket), msg, NULL);
  g_source_attach (source, NULL);
  g_object_set_data_full (G_OBJECT (msg), "mock-watch", source, destroy_source);
}

/* Once the chunks so far are out, drop the connection without the chunked
 * terminator, as a provider that crashes mid-answer would.
 */
static gboolean
cut_connection (gpointer user_data)
{
  Stream *stream = user_data;

  stream->timeout_id = 0;
  g_socket_shutdown (soup_server_message_get_socket (stream->msg), TRUE, TRUE, NULL);
  return G_SOURCE_REMOVE;
}

static gboolean
stream_tick (gpointer user_data)
{
  Stream *stream = user_data;
  KpMockUpstream *self = stream->mock;
  SoupMessageBody *body = soup_server_message_get_response_body (stream->msg);
  const char *usage_null = stream->include_usage ? ",\"usage\":null" : "";

  do
    {
      if (stream->sent < stream->limit)
        {
          append (stream->msg,
                  g_strdup_printf ("data: {\"id\":\"mock-1\",\"object\":\"chat.completion.chunk\","
                                   "\"created\":1,\"model\":\"%s\",\"choices\":[{\"index\":0,"
                                   "\"delta\":{%s\"content\":\"tok%u %s\"},\"finish_reason\":null}]%s}\n\n",
                                   stream->model,
                                   stream->sent == 0 ? "\"role\":\"assistant\"," : "",
                                   stream->sent, self->padding ? self->padding : "", usage_null));
          stream->sent++;
          {
            gint64 now = g_get_monotonic_time ();
            g_array_append_val (self->stats.emit_times, now);
          }
          continue;
        }

      if (stream->end == END_STALL)
        {
          stream->timeout_id = 0;
          soup_server_message_unpause (stream->msg);
          watch_peer (stream->msg);
          return G_SOURCE_REMOVE;
        }

      if (stream->end == END_CUT)
        {
          stream->timeout_id = g_timeout_add (30, cut_connection, stream);
          soup_server_message_unpause (stream->msg);
          return G_SOURCE_REMOVE;
        }

      append (stream->msg,
              g_strdup_printf ("data: {\"id\":\"mock-1\",\"object\":\"chat.completion.chunk\","
                               "\"created\":1,\"model\":\"%s\",\"choices\":[{\"index\":0,"
                               "\"delta\":{},\"finish_reason\":\"stop\"}]%s}\n\n",
                               stream->model, usage_null));
      if (stream->include_usage)
        {
          g_autofree char *usage = usage_json (stream->with_cost, stream->sent);

          append (stream->msg,
                  g_strdup_printf ("data: {\"id\":\"mock-1\",\"object\":\"chat.completion.chunk\","
                                   "\"created\":1,\"model\":\"%s\",\"choices\":[],\"usage\":%s}\n\n",
                                   stream->model, usage));
        }
      append (stream->msg, g_strdup ("data: [DONE]\n\n"));
      soup_message_body_complete (body);
      stream->done = TRUE;
      stream->timeout_id = 0;
      soup_server_message_unpause (stream->msg);
      return G_SOURCE_REMOVE;
    }
  while (self->interval_ms == 0);

  soup_server_message_unpause (stream->msg);
  return G_SOURCE_CONTINUE;
}

static void
on_stream_finished (SoupServerMessage *msg,
                    Stream            *stream)
{
  KpMockUpstream *self = stream->mock;

  stream->finished = TRUE;
  record_finish (self, stream->done);
  self->streams = g_list_remove (self->streams, stream);
  g_signal_handlers_disconnect_by_data (msg, stream);
  stream_free (stream);
}

static void
start_stream (KpMockUpstream    *self,
              SoupServerMessage *msg,
              const char        *model,
              gboolean           include_usage)
{
  SoupMessageHeaders *headers = soup_server_message_get_response_headers (msg);
  Stream *stream = g_new0 (Stream, 1);

  stream->mock = self;
  stream->msg = g_object_ref (msg);
  stream->model = g_strdup (model);
  stream->include_usage = include_usage;
  stream->with_cost = g_str_equal (model, "mock-cost");
  stream->limit = self->n_chunks;
  if (g_str_equal (model, "mock-stall"))
    {
      stream->end = END_STALL;
      stream->limit = 2;
    }
  else if (g_str_equal (model, "mock-cut"))
    {
      stream->end = END_CUT;
      stream->limit = 3;
    }

  soup_server_message_set_status (msg, 200, NULL);
  soup_message_headers_set_encoding (headers, SOUP_ENCODING_CHUNKED);
  soup_message_headers_replace (headers, "Content-Type", "text/event-stream");
  soup_message_body_set_accumulate (soup_server_message_get_response_body (msg), FALSE);
  soup_server_message_pause (msg);

  self->streams = g_list_prepend (self->streams, stream);
  g_signal_connect (msg, "finished", G_CALLBACK (on_stream_finished), stream);

  if (self->interval_ms == 0)
    stream->timeout_id = g_idle_add (stream_tick, stream);
  else
    stream->timeout_id = g_timeout_add (self->interval_ms, stream_tick, stream);
}

static void
on_plain_finished (SoupServerMessage *msg,
                   KpMockUpstream    *self)
{
  record_finish (self, soup_server_message_get_status (msg) != 0 &&
                       GPOINTER_TO_INT (g_object_get_data (G_OBJECT (msg), "mock-hang")) == 0);
}

static void
reply_error (SoupServerMessage *msg,
             guint              status,
             const char        *body)
{
  soup_server_message_set_status (msg, status, NULL);
  soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_COPY,
                                    body, strlen (body));
}

/* What a provider says to a key it has a problem with. */
static gboolean
reply_for_key (KpMockUpstream    *self,
               SoupServerMessage *msg,
               const char        *auth)
{
  SoupMessageHeaders *headers = soup_server_message_get_response_headers (msg);

  if (auth == NULL)
    return FALSE;

  if (strstr (auth, "invalid") != NULL)
    reply_error (msg, 401, "{\"error\":{\"message\":\"Incorrect API key provided.\","
                           "\"type\":\"invalid_request_error\",\"code\":\"invalid_api_key\"}}");
  else if (strstr (auth, "rate") != NULL)
    {
      soup_message_headers_replace (headers, "Retry-After", "2");
      reply_error (msg, 429, "{\"error\":{\"message\":\"Rate limit reached for requests\","
                             "\"type\":\"requests\",\"code\":\"rate_limit_exceeded\"}}");
    }
  else if (strstr (auth, "quota") != NULL)
    reply_error (msg, 429, "{\"error\":{\"message\":\"You exceeded your current quota, please check "
                           "your plan and billing details.\",\"type\":\"insufficient_quota\","
                           "\"code\":\"insufficient_quota\"}}");
  else if (strstr (auth, "nocredit") != NULL)
    reply_error (msg, 402, "{\"error\":{\"message\":\"Insufficient credits\",\"code\":402}}");
  else if (strstr (auth, "down") != NULL)
    reply_error (msg, 500, "{\"error\":{\"message\":\"upstream is down\",\"type\":\"server_error\"}}");
  else if (strstr (auth, "nomodel") != NULL)
    reply_error (msg, 404, "{\"error\":{\"message\":\"The model does not exist or you do not have "
                           "access to it.\",\"code\":\"model_not_found\"}}");
  else if (strstr (auth, "slow") != NULL)
    {
      g_object_set_data (G_OBJECT (msg), "mock-hang", GINT_TO_POINTER (1));
      soup_server_message_pause (msg);
      watch_peer (msg);
    }
  else
    return FALSE;

  self->stats.requests++;
  if (g_object_get_data (G_OBJECT (msg), "mock-hang") != NULL)
    g_signal_connect (msg, "finished", G_CALLBACK (on_plain_finished), self);
  return TRUE;
}

#define TOOL_CHUNK(delta, finish) \
  "data: {\"id\":\"mock-t\",\"object\":\"chat.completion.chunk\",\"created\":1," \
  "\"model\":\"mock-tools\",\"choices\":[{\"index\":0,\"delta\":" delta "," \
  "\"finish_reason\":" finish "}]}\n\n"

/* Text, then two tool calls whose arguments arrive split mid-token, the way
 * OpenAI streams them: the first delta of a call has its id and name.
 */
static void
reply_tools (SoupServerMessage *msg,
             gboolean           stream,
             gboolean           include_usage)
{
  static const char events[] =
    TOOL_CHUNK ("{\"role\":\"assistant\",\"content\":\"\"}", "null")
    TOOL_CHUNK ("{\"content\":\"Let me check.\"}", "null")
    TOOL_CHUNK ("{\"tool_calls\":[{\"index\":0,\"id\":\"call_w1\",\"type\":\"function\","
                "\"function\":{\"name\":\"get_weather\",\"arguments\":\"\"}}]}", "null")
    TOOL_CHUNK ("{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"ci\"}}]}", "null")
    TOOL_CHUNK ("{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"ty\\\": \\\"Paris\\\"}\"}}]}", "null")
    TOOL_CHUNK ("{\"tool_calls\":[{\"index\":1,\"id\":\"call_t2\",\"type\":\"function\","
                "\"function\":{\"name\":\"get_time\",\"arguments\":\"{\\\"zone\\\":\"}}]}", "null")
    TOOL_CHUNK ("{\"tool_calls\":[{\"index\":1,\"function\":{\"arguments\":\" \\\"CET\\\"}\"}}]}", "null")
    TOOL_CHUNK ("{}", "\"tool_calls\"");
  static const char usage[] =
    "data: {\"id\":\"mock-t\",\"object\":\"chat.completion.chunk\",\"created\":1,"
    "\"model\":\"mock-tools\",\"choices\":[],\"usage\":{\"prompt_tokens\":30,"
    "\"completion_tokens\":20,\"total_tokens\":50,\"prompt_tokens_details\":{\"cached_tokens\":10}}}\n\n";
  static const char whole[] =
    "{\"id\":\"mock-t\",\"object\":\"chat.completion\",\"created\":1,\"model\":\"mock-tools\","
    "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"Let me check.\","
    "\"tool_calls\":[{\"id\":\"call_w1\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
    "\"arguments\":\"{\\\"city\\\": \\\"Paris\\\"}\"}},{\"id\":\"call_t2\",\"type\":\"function\","
    "\"function\":{\"name\":\"get_time\",\"arguments\":\"{\\\"zone\\\": \\\"CET\\\"}\"}}]},"
    "\"finish_reason\":\"tool_calls\"}],\"usage\":{\"prompt_tokens\":30,\"completion_tokens\":20,"
    "\"total_tokens\":50,\"prompt_tokens_details\":{\"cached_tokens\":10}}}";
  g_autofree char *body = NULL;

  soup_server_message_set_status (msg, 200, NULL);
  if (!stream)
    {
      soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_STATIC,
                                        whole, strlen (whole));
      return;
    }
  body = g_strconcat (events, include_usage ? usage : "", "data: [DONE]\n\n", NULL);
  soup_server_message_set_response (msg, "text/event-stream", SOUP_MEMORY_COPY,
                                    body, strlen (body));
}

static void
handle_chat (KpMockUpstream    *self,
             SoupServerMessage *msg)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GBytes) body = NULL;
  SoupMessageHeaders *request_headers = soup_server_message_get_request_headers (msg);
  JsonObject *request;
  JsonNode *options;
  const char *model;
  gboolean stream;
  gboolean include_usage = FALSE;
  gsize len;
  const char *data;

  body = soup_message_body_flatten (soup_server_message_get_request_body (msg));
  data = g_bytes_get_data (body, &len);

  self->stats.requests++;
  g_free (self->stats.last_body);
  self->stats.last_body = g_strndup (data, len);
  g_free (self->stats.last_auth);
  self->stats.last_auth = g_strdup (soup_message_headers_get_one (request_headers, "Authorization"));

  if (!json_parser_load_from_data (parser, data, len, NULL) ||
      !JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
    {
      reply_error (msg, 400, "{\"error\":{\"message\":\"mock: bad JSON\",\"type\":\"invalid_request_error\"}}");
      return;
    }
  request = json_node_get_object (json_parser_get_root (parser));
  model = json_object_get_string_member_with_default (request, "model", "mock-chat");
  stream = json_object_get_boolean_member_with_default (request, "stream", FALSE);
  options = json_object_get_member (request, "stream_options");
  if (options != NULL && JSON_NODE_HOLDS_OBJECT (options))
    include_usage = json_object_get_boolean_member_with_default (json_node_get_object (options),
                                                                 "include_usage", FALSE);

  if (g_str_equal (model, "mock-429"))
    {
      soup_message_headers_replace (soup_server_message_get_response_headers (msg),
                                    "Retry-After", "7");
      reply_error (msg, 429, "{\"error\":{\"message\":\"Rate limit reached for requests\","
                             "\"type\":\"requests\",\"param\":null,\"code\":\"rate_limit_exceeded\"}}");
      return;
    }
  if (g_str_equal (model, "mock-500"))
    {
      reply_error (msg, 500, "{\"error\":{\"message\":\"mock upstream exploded\","
                             "\"type\":\"server_error\",\"param\":null,\"code\":null}}");
      return;
    }
  if (g_str_equal (model, "mock-400"))
    {
      reply_error (msg, 400, "{\"error\":{\"message\":\"This model's maximum context length is 8 tokens.\","
                             "\"type\":\"invalid_request_error\",\"param\":\"messages\","
                             "\"code\":\"context_length_exceeded\"}}");
      return;
    }
  if (g_str_equal (model, "mock-hang"))
    {
      g_object_set_data (G_OBJECT (msg), "mock-hang", GINT_TO_POINTER (1));
      soup_server_message_pause (msg);
      watch_peer (msg);
      return;
    }
  if (g_str_equal (model, "mock-instream-error"))
    {
      static const char event[] =
        "data: {\"error\":{\"message\":\"mock: provider overloaded mid-stream\",\"code\":502}}\n\n";

      soup_server_message_set_status (msg, 200, NULL);
      soup_server_message_set_response (msg, "text/event-stream", SOUP_MEMORY_STATIC,
                                        event, strlen (event));
      return;
    }

  if (g_str_equal (model, "mock-tools"))
    {
      reply_tools (msg, stream, include_usage);
      return;
    }
  if (g_str_equal (model, "mock-agent"))
    {
      kp_mock_agent_reply (msg, request, stream, include_usage);
      return;
    }

  if (stream)
    {
      start_stream (self, msg, model, include_usage);
      return;
    }

  {
    g_autofree char *text = kp_mock_answer_text (self->n_chunks);
    g_autofree char *usage = usage_json (g_str_equal (model, "mock-cost"), self->n_chunks);
    char *json;

    json = g_strdup_printf ("{\"id\":\"mock-2\",\"object\":\"chat.completion\",\"created\":1,"
                            "\"model\":\"%s\",\"choices\":[{\"index\":0,\"message\":"
                            "{\"role\":\"assistant\",\"content\":\"%s\"},\"finish_reason\":\"stop\"}],"
                            "\"usage\":%s}", model, text, usage);
    soup_server_message_set_status (msg, 200, NULL);
    soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_TAKE, json, strlen (json));
  }
}

/* Remembers a request for GET /mock/requests: its method, path, headers
 * and body (as JSON when it is JSON).
 */
static void
log_request (KpMockUpstream    *self,
             SoupServerMessage *msg,
             const char        *path)
{
  g_autoptr(GBytes) body = soup_message_body_flatten (soup_server_message_get_request_body (msg));
  g_autoptr(JsonParser) parser = json_parser_new ();
  SoupMessageHeadersIter iter;
  JsonObject *entry = json_object_new ();
  JsonObject *headers = json_object_new ();
  const char *name;
  const char *value;
  gsize len;
  const char *data = g_bytes_get_data (body, &len);

  json_object_set_string_member (entry, "method", soup_server_message_get_method (msg));
  json_object_set_string_member (entry, "path", path);
  soup_message_headers_iter_init (&iter, soup_server_message_get_request_headers (msg));
  while (soup_message_headers_iter_next (&iter, &name, &value))
    {
      g_autofree char *lower = g_ascii_strdown (name, -1);

      json_object_set_string_member (headers, lower, value);
    }
  json_object_set_object_member (entry, "headers", headers);
  if (len > 0 && json_parser_load_from_data (parser, data, len, NULL))
    json_object_set_member (entry, "body", json_node_copy (json_parser_get_root (parser)));
  else if (len > 0)
    {
      g_autofree char *raw = g_utf8_make_valid (data, len);

      json_object_set_string_member (entry, "body", raw);
    }
  else
    json_object_set_null_member (entry, "body");

  if (self->stats.log->len == LOG_LENGTH)
    g_ptr_array_remove_index (self->stats.log, 0);
  g_ptr_array_add (self->stats.log, kp_mock_object_to_data (entry));
}

static void
reply_log (KpMockUpstream    *self,
           SoupServerMessage *msg)
{
  GString *text = g_string_new ("{\"requests\":[");

  for (guint i = 0; i < self->stats.log->len; i++)
    {
      if (i > 0)
        g_string_append_c (text, ',');
      g_string_append (text, g_ptr_array_index (self->stats.log, i));
    }
  g_string_append (text, "]}");
  soup_server_message_set_status (msg, 200, NULL);
  soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_TAKE,
                                    text->str, text->len);
  g_string_free (text, FALSE);
}

static void
handler (SoupServer        *server,
         SoupServerMessage *msg,
         const char        *path,
         GHashTable        *query,
         gpointer           user_data)
{
  KpMockUpstream *self = user_data;
  const char *auth = soup_message_headers_get_one (soup_server_message_get_request_headers (msg),
                                                   "Authorization");
  const char *method = soup_server_message_get_method (msg);

  if (g_str_equal (path, "/mock/requests") && method == SOUP_METHOD_GET)
    {
      reply_log (self, msg);
      return;
    }

  g_free (self->stats.last_path);
  self->stats.last_path = g_strdup (path);
  log_request (self, msg, path);

  if (auth != NULL)
    {
      guint n = GPOINTER_TO_UINT (g_hash_table_lookup (self->stats.by_key, auth));

      g_hash_table_replace (self->stats.by_key, g_strdup (auth), GUINT_TO_POINTER (n + 1));
    }

  if (g_str_has_suffix (path, "/messages") &&
      soup_server_message_get_method (msg) == SOUP_METHOD_POST)
    {
      kp_mock_anthropic_handle (&self->stats, msg);
      return;
    }

  if (method == SOUP_METHOD_POST && strstr (path, "/models/") != NULL &&
      (g_str_has_suffix (path, ":generateContent") ||
       g_str_has_suffix (path, ":streamGenerateContent")))
    {
      kp_mock_gemini_handle (&self->stats, msg, path, query);
      return;
    }
  if (method == SOUP_METHOD_POST && strstr (path, "/models/") != NULL &&
      (g_str_has_suffix (path, ":embedContent") || g_str_has_suffix (path, ":batchEmbedContents")))
    {
      kp_mock_gemini_embed_handle (&self->stats, msg, path);
      return;
    }

  if (reply_for_key (self, msg, auth))
    return;

  if (g_str_has_suffix (path, "/chat/completions") &&
      soup_server_message_get_method (msg) == SOUP_METHOD_POST)
    {
      handle_chat (self, msg);
      if (soup_server_message_get_status (msg) != 200 ||
          g_object_get_data (G_OBJECT (msg), "mock-hang") != NULL ||
          soup_message_headers_get_encoding (soup_server_message_get_response_headers (msg)) !=
            SOUP_ENCODING_CHUNKED)
        g_signal_connect (msg, "finished", G_CALLBACK (on_plain_finished), self);
      return;
    }

  if (g_str_has_suffix (path, "/responses") && method == SOUP_METHOD_POST)
    {
      kp_mock_responses_handle (&self->stats, self->n_chunks, msg);
      return;
    }
  if (g_str_has_suffix (path, "/embeddings") && method == SOUP_METHOD_POST)
    {
      kp_mock_embeddings_handle (&self->stats, msg);
      return;
    }
  if (g_str_has_suffix (path, "/completions") && method == SOUP_METHOD_POST)
    {
      kp_mock_completions_handle (&self->stats, self->n_chunks, msg);
      return;
    }

  /* Gemini's list: names with their "models/" prefix. */
  if (g_str_has_prefix (path, "/v1beta/") && g_str_has_suffix (path, "/models"))
    {
      static const char models[] =
        "{\"models\":[{\"name\":\"models/gemini-text\",\"inputTokenLimit\":1048576},"
        "{\"name\":\"models/gemini-tools\"},{\"name\":\"models/gemini-bad\"},"
        "{\"name\":\"models/gemini-429-day\"},{\"name\":\"models/gemini-429-minute\"},"
        "{\"name\":\"models/gemini-503\"},{\"name\":\"models/gemini-error-event\"}]}";

      soup_server_message_set_status (msg, 200, NULL);
      soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_STATIC,
                                        models, strlen (models));
      return;
    }

  if (g_str_has_suffix (path, "/models"))
    {
      static const char models[] =
        "{\"object\":\"list\",\"data\":[{\"id\":\"mock-chat\",\"object\":\"model\"}]}";

      soup_server_message_set_status (msg, 200, NULL);
      soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_STATIC,
                                        models, strlen (models));
      return;
    }

  reply_error (msg, 404, "{\"error\":{\"message\":\"mock: no such path\"}}");
}

KpMockUpstream *
kp_mock_upstream_new (GError **error)
{
  g_autoptr(GSList) uris = NULL;
  KpMockUpstream *self = g_new0 (KpMockUpstream, 1);
  GUri *uri;

  self->n_chunks = 5;
  self->stats.emit_times = g_array_new (FALSE, FALSE, sizeof (gint64));
  self->stats.by_key = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->stats.log = g_ptr_array_new_with_free_func (g_free);
  self->server = soup_server_new (NULL, NULL);
  soup_server_add_handler (self->server, NULL, handler, self, NULL);

  if (!soup_server_listen_local (self->server, 0, SOUP_SERVER_LISTEN_IPV4_ONLY, error))
    {
      kp_mock_upstream_free (self);
      return NULL;
    }

  uris = soup_server_get_uris (self->server);
  uri = uris->data;
  self->port = g_uri_get_port (uri);
  self->url = g_strdup_printf ("http://127.0.0.1:%u/v1", self->port);
  g_slist_free_full (g_steal_pointer (&uris), (GDestroyNotify)g_uri_unref);

  return self;
}

void
kp_mock_upstream_free (KpMockUpstream *self)
{
  if (self == NULL)
    return;

  while (self->streams != NULL)
    {
      Stream *stream = self->streams->data;

      self->streams = g_list_delete_link (self->streams, self->streams);
      g_signal_handlers_disconnect_by_data (stream->msg, stream);
      stream_free (stream);
    }
  soup_server_disconnect (self->server);
  g_clear_object (&self->server);
  kp_mock_upstream_reset (self);
  g_array_unref (self->stats.emit_times);
  g_hash_table_unref (self->stats.by_key);
  g_ptr_array_unref (self->stats.log);
  g_free (self->url);
  g_free (self->padding);
  g_free (self);
}

const char *
kp_mock_upstream_get_url (KpMockUpstream *self)
{
  return self->url;
}

guint
kp_mock_upstream_get_port (KpMockUpstream *self)
{
  return self->port;
}

KpMockStats *
kp_mock_upstream_get_stats (KpMockUpstream *self)
{
  return &self->stats;
}

void
kp_mock_upstream_reset (KpMockUpstream *self)
{
  self->stats.requests = 0;
  self->stats.cancelled = 0;
  self->stats.completed = 0;
  g_clear_pointer (&self->stats.last_body, g_free);
  g_clear_pointer (&self->stats.last_auth, g_free);
  g_clear_pointer (&self->stats.last_path, g_free);
  g_clear_pointer (&self->stats.last_anthropic_beta, g_free);
  g_clear_pointer (&self->stats.last_anthropic_version, g_free);
  g_array_set_size (self->stats.emit_times, 0);
  g_hash_table_remove_all (self->stats.by_key);
  g_ptr_array_set_size (self->stats.log, 0);
}

guint
kp_mock_upstream_count_key (KpMockUpstream *self,
                            const char     *key)
{
  g_autofree char *auth = g_strconcat ("Bearer ", key, NULL);

  return GPOINTER_TO_UINT (g_hash_table_lookup (self->stats.by_key, auth));
}

void
kp_mock_upstream_set_chunks (KpMockUpstream *self,
                             guint           n_chunks,
                             guint           interval_ms)
{
  self->n_chunks = n_chunks;
  self->interval_ms = interval_ms;
}

/* Each streamed chunk of the chat stream carries @bytes more of text. */
void
kp_mock_upstream_set_chunk_padding (KpMockUpstream *self,
                                    gsize           bytes)
{
  g_free (self->padding);
  self->padding = bytes > 0 ? g_strnfill (bytes, 'x') : NULL;
}
