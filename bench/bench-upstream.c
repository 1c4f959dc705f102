/* bench-upstream.c: a fast mock OpenAI- and Anthropic-style upstream for
 * Keypool's benchmark
 *
 * One thread, epoll, non-blocking sockets, HTTP/1.1 keep-alive, on an
 * ephemeral port of 127.0.0.1. It prints its base URL
 * (http://127.0.0.1:PORT/v1) as its first stdout line.
 *
 *   POST .../chat/completions with "stream":true: a chunked text/event-stream
 *     of --chunks content chunks, --interval-us apart (the first one at once),
 *     each carrying "emit_ns" (CLOCK_MONOTONIC when it was written); then a
 *     finish chunk, a usage-only chunk ("choices":[]) if the body asked for
 *     include_usage, "data: [DONE]" and the terminating chunk. When the
 *     request's model is "stamped", each content chunk carries the emit time
 *     in its text instead ("t<emit_ns> "), so that it survives translation.
 *   POST .../chat/completions otherwise: a small chat.completion with usage and
 *     a Content-Length.
 *   POST .../messages with "stream":true: Anthropic's events (each with an
 *     `event:` and a `data:` line), paced the same way: message_start (with
 *     usage) and content_block_start, then --chunks text_delta events whose
 *     text is "t<emit_ns> ", then content_block_stop, message_delta (stop
 *     reason and usage), message_stop and the terminating chunk.
 *   POST .../messages otherwise: a small Anthropic message with usage and a
 *     Content-Length.
 *   GET /stats: counters as one JSON object (accepted TCP connections, open
 *     and peak open connections, requests). GET /stats?reset restarts the
 *     peak. SIGUSR1 prints the same object to stderr.
 *
 * Streams are paced with one timerfd armed at the earliest pending deadline.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "bench-util.h"

#define MAX_EVENTS      256
#define MAX_HEADER      (64 * 1024)
#define MAX_BODY        (16 * 1024 * 1024)
#define READ_BLOCK      16384

typedef struct _Conn Conn;

struct _Conn
{
  int       fd;
  int       closing;        /* close once the output is flushed */
  int       want_out;       /* EPOLLOUT is registered */
  int       carried_chat;   /* served at least one chat request */
  int       dead;           /* closed; freed at the end of the event batch */

  char     *in;
  size_t    in_len;
  size_t    in_cap;

  char     *out;
  size_t    out_len;
  size_t    out_off;
  size_t    out_cap;

  /* The stream in progress, if any. */
  int       streaming;
  int       anthropic;      /* Anthropic's events rather than OpenAI's chunks */
  int       stamped;        /* OpenAI: the emit time in the content text */
  int       include_usage;
  int       close_after;
  int       sent;           /* content chunks written */
  int64_t   next_ns;
  Conn     *prev_stream;
  Conn     *next_stream;
  Conn     *next_dead;
};

typedef struct
{
  uint64_t accepted;
  uint64_t open;
  uint64_t open_peak;
  uint64_t chat_conns;
  uint64_t requests;
  uint64_t chat_requests;
  uint64_t messages_requests;
  uint64_t stream_requests;
  uint64_t streams_done;
  uint64_t client_aborts;
} Stats;

static int epfd = -1;
static int listen_fd = -1;
static int timer_fd = -1;
static int n_chunks = 100;
static int64_t interval_ns = 10 * 1000 * 1000;
static Conn *streams;
static Conn *graveyard;
static Stats stats;
static int64_t armed_ns = -1;
static volatile sig_atomic_t want_stats;
static volatile sig_atomic_t want_quit;

/* Markers for the two non-connection fds in epoll's data.ptr. */
static char listen_tag;
static char timer_tag;

static const char json_response[] =
  "{\"id\":\"b\",\"object\":\"chat.completion\",\"created\":1,\"model\":\"chat\","
  "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"x\"},"
  "\"finish_reason\":\"stop\"}],"
  "\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":1,\"total_tokens\":6}}";

static const char messages_response[] =
  "{\"id\":\"msg_b\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"chat\","
  "\"content\":[{\"type\":\"text\",\"text\":\"x\"}],\"stop_reason\":\"end_turn\","
  "\"stop_sequence\":null,\"usage\":{\"input_tokens\":5,\"output_tokens\":1,"
  "\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0}}";

static const char stream_head[] =
  "HTTP/1.1 200 OK\r\n"
  "Content-Type: text/event-stream\r\n"
  "Cache-Control: no-cache\r\n"
  "Transfer-Encoding: chunked\r\n"
  "\r\n";

static void
conn_set_out_watch (Conn *c,
                    int   on)
{
  struct epoll_event ev;

  if (c->want_out == on)
    return;
  ev.events = EPOLLIN | EPOLLRDHUP | (on ? EPOLLOUT : 0);
  ev.data.ptr = c;
  if (epoll_ctl (epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0)
    die ("epoll_ctl");
  c->want_out = on;
}

static void
stream_unlink (Conn *c)
{
  if (!c->streaming)
    return;
  if (c->prev_stream != NULL)
    c->prev_stream->next_stream = c->next_stream;
  else
    streams = c->next_stream;
  if (c->next_stream != NULL)
    c->next_stream->prev_stream = c->prev_stream;
  c->prev_stream = c->next_stream = NULL;
  c->streaming = 0;
}

/* Closes a connection now; its memory lives until the end of the event
 * batch, so that later events of the same batch can still look at it.
 */
static void
conn_free (Conn *c)
{
  if (c->dead)
    return;
  if (c->streaming)
    {
      stats.client_aborts++;
      stream_unlink (c);
    }
  epoll_ctl (epfd, EPOLL_CTL_DEL, c->fd, NULL);
  close (c->fd);
  stats.open--;
  c->dead = 1;
  c->next_dead = graveyard;
  graveyard = c;
}

static void
bury_dead (void)
{
  while (graveyard != NULL)
    {
      Conn *c = graveyard;

      graveyard = c->next_dead;
      free (c->in);
      free (c->out);
      free (c);
    }
}

/* Returns 0, or -1 if the connection failed (the caller frees it). */
static int
conn_flush (Conn *c)
{
  while (c->out_off < c->out_len)
    {
      ssize_t n = send (c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);

      if (n < 0)
        {
          if (errno == EINTR)
            continue;
          if (errno == EAGAIN || errno == EWOULDBLOCK)
            {
              conn_set_out_watch (c, 1);
              return 0;
            }
          return -1;
        }
      c->out_off += (size_t)n;
    }

  c->out_off = c->out_len = 0;
  conn_set_out_watch (c, 0);
  if (c->closing)
    return -1;
  return 0;
}

/* Queues bytes and writes what the socket takes now. */
static int
conn_write (Conn       *c,
            const void *data,
            size_t      len)
{
  buf_reserve (&c->out, &c->out_cap, c->out_len + len);
  memcpy (c->out + c->out_len, data, len);
  c->out_len += len;
  if (c->want_out)
    return 0;
  return conn_flush (c);
}

/* Wraps one payload in HTTP chunk framing. */
static int
conn_write_chunk (Conn       *c,
                  const char *payload,
                  size_t      len)
{
  char frame[4096 + 32];
  int head;

  if (len > 4096)
    return -1;
  head = snprintf (frame, 32, "%zx\r\n", len);
  memcpy (frame + head, payload, len);
  memcpy (frame + head + len, "\r\n", 2);
  return conn_write (c, frame, (size_t)head + len + 2);
}

/* Appends one payload in HTTP chunk framing to @buf, which has @size bytes;
 * returns the new offset.
 */
static size_t
frame_append (char       *buf,
              size_t      off,
              size_t      size,
              const char *payload,
              int         len)
{
  int n = snprintf (buf + off, size - off, "%x\r\n%s\r\n", len, payload);

  if (n < 0 || (size_t)n >= size - off)
    {
      fprintf (stderr, "bench-upstream: frame buffer too small\n");
      exit (1);
    }
  return off + (size_t)n;
}

static void
arm_timer (int64_t when_ns)
{
  struct itimerspec its;

  if (when_ns == armed_ns)
    return;
  memset (&its, 0, sizeof its);
  if (when_ns >= 0)
    {
      if (when_ns == 0)
        when_ns = 1;
      its.it_value.tv_sec = when_ns / 1000000000;
      its.it_value.tv_nsec = when_ns % 1000000000;
    }
  if (timerfd_settime (timer_fd, TFD_TIMER_ABSTIME, &its, NULL) < 0)
    die ("timerfd_settime");
  armed_ns = when_ns;
}

static void
rearm_streams (void)
{
  int64_t earliest = -1;

  for (Conn *c = streams; c != NULL; c = c->next_stream)
    if (earliest < 0 || c->next_ns < earliest)
      earliest = c->next_ns;
  arm_timer (earliest);
}

static void process_input (Conn *c);

/* Ends a stream whose last bytes are queued. Returns -1 if the connection
 * failed.
 */
static int
stream_finish (Conn       *c,
               const char *tail,
               size_t      len)
{
  stream_unlink (c);
  stats.streams_done++;
  if (c->close_after)
    c->closing = 1;
  if (conn_write (c, tail, len) < 0)
    return -1;

  /* A pipelined request may be waiting. */
  if (c->in_len > 0)
    process_input (c);
  return 0;
}

/* The next piece of an Anthropic stream: the opening events go out with the
 * first text_delta, in one write, and so do the closing ones.
 */
static int
anthropic_step (Conn *c)
{
  char payload[1024];
  char out[4096];
  size_t off = 0;
  int len;

  if (c->sent == 0)
    {
      len = snprintf (payload, sizeof payload,
                      "event: message_start\n"
                      "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_b\","
                      "\"type\":\"message\",\"role\":\"assistant\",\"model\":\"chat\","
                      "\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,"
                      "\"usage\":{\"input_tokens\":5,\"output_tokens\":1,"
                      "\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0}}}\n\n");
      off = frame_append (out, off, sizeof out, payload, len);
      len = snprintf (payload, sizeof payload,
                      "event: content_block_start\n"
                      "data: {\"type\":\"content_block_start\",\"index\":0,"
                      "\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n");
      off = frame_append (out, off, sizeof out, payload, len);
    }

  if (c->sent < n_chunks)
    {
      len = snprintf (payload, sizeof payload,
                      "event: content_block_delta\n"
                      "data: {\"type\":\"content_block_delta\",\"index\":0,"
                      "\"delta\":{\"type\":\"text_delta\",\"text\":\"t%" PRId64 " \"}}\n\n",
                      now_ns ());
      off = frame_append (out, off, sizeof out, payload, len);
      c->sent++;
      c->next_ns += interval_ns;
      return conn_write (c, out, off);
    }

  /* The end: block stop, message_delta with usage, message_stop, terminator. */
  len = snprintf (payload, sizeof payload,
                  "event: content_block_stop\n"
                  "data: {\"type\":\"content_block_stop\",\"index\":0}\n\n");
  off = frame_append (out, off, sizeof out, payload, len);
  len = snprintf (payload, sizeof payload,
                  "event: message_delta\n"
                  "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\","
                  "\"stop_sequence\":null},\"usage\":{\"output_tokens\":%d}}\n\n",
                  n_chunks);
  off = frame_append (out, off, sizeof out, payload, len);
  len = snprintf (payload, sizeof payload,
                  "event: message_stop\n"
                  "data: {\"type\":\"message_stop\"}\n\n");
  off = frame_append (out, off, sizeof out, payload, len);
  off += (size_t)snprintf (out + off, sizeof out - off, "0\r\n\r\n");
  return stream_finish (c, out, off);
}

/* Writes the next piece of a stream. Returns -1 if the connection failed. */
static int
stream_step (Conn *c)
{
  char payload[1024];
  int len;

  if (c->anthropic)
    return anthropic_step (c);

  if (c->sent < n_chunks)
    {
      if (c->stamped)
        len = snprintf (payload, sizeof payload,
                        "data: {\"id\":\"b\",\"object\":\"chat.completion.chunk\",\"created\":1,"
                        "\"model\":\"stamped\",\"choices\":[{\"index\":0,\"delta\":"
                        "{\"content\":\"t%" PRId64 " \"},\"finish_reason\":null}]}\n\n",
                        now_ns ());
      else
        len = snprintf (payload, sizeof payload,
                        "data: {\"id\":\"b\",\"object\":\"chat.completion.chunk\",\"created\":1,"
                        "\"model\":\"chat\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\"},"
                        "\"finish_reason\":null}],\"emit_ns\":%" PRId64 "}\n\n",
                        now_ns ());
      c->sent++;
      c->next_ns += interval_ns;
      return conn_write_chunk (c, payload, (size_t)len);
    }

  /* The end: finish chunk, usage, [DONE], terminator, in one write. */
  {
    char tail[2048];
    size_t off = 0;

    len = snprintf (payload, sizeof payload,
                    "data: {\"id\":\"b\",\"object\":\"chat.completion.chunk\",\"created\":1,"
                    "\"model\":\"chat\",\"choices\":[{\"index\":0,\"delta\":{},"
                    "\"finish_reason\":\"stop\"}]}\n\n");
    off += (size_t)snprintf (tail + off, sizeof tail - off, "%x\r\n%s\r\n", len, payload);

    if (c->include_usage)
      {
        len = snprintf (payload, sizeof payload,
                        "data: {\"id\":\"b\",\"object\":\"chat.completion.chunk\",\"created\":1,"
                        "\"model\":\"chat\",\"choices\":[],\"usage\":{\"prompt_tokens\":5,"
                        "\"completion_tokens\":%d,\"total_tokens\":%d}}\n\n",
                        n_chunks, n_chunks + 5);
        off += (size_t)snprintf (tail + off, sizeof tail - off, "%x\r\n%s\r\n", len, payload);
      }

    off += (size_t)snprintf (tail + off, sizeof tail - off,
                             "e\r\ndata: [DONE]\n\n\r\n0\r\n\r\n");
    return stream_finish (c, tail, off);
  }
}

static void
on_timer (void)
{
  uint64_t expirations;
  int64_t now;
  Conn *c;
  Conn *next;

  if (read (timer_fd, &expirations, sizeof expirations) < 0 && errno != EAGAIN)
    die ("read timerfd");
  armed_ns = -1;

  now = now_ns ();
  for (c = streams; c != NULL; c = next)
    {
      next = c->next_stream;
      if (c->next_ns <= now)
        {
          if (stream_step (c) < 0)
            conn_free (c);
        }
    }
  rearm_streams ();
}

/* Calls @match with each value that follows `"key"`, blanks, a colon and
 * blanks in @body, until it says yes.
 */
static int
json_find_value (const char *body,
                 size_t      len,
                 const char *key,
                 int       (*match) (const char *value, size_t left, const void *data),
                 const void *data)
{
  size_t klen = strlen (key);
  const char *p = body;
  const char *end = body + len;

  while (p < end)
    {
      const char *q = memmem (p, (size_t)(end - p), key, klen);

      if (q == NULL)
        return 0;
      q += klen;
      while (q < end && (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r'))
        q++;
      if (q < end && *q == ':')
        {
          q++;
          while (q < end && (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r'))
            q++;
          if (match (q, (size_t)(end - q), data))
            return 1;
        }
      p = q;
    }
  return 0;
}

static int
is_true (const char *value,
         size_t      left,
         const void *data)
{
  return left >= 4 && memcmp (value, "true", 4) == 0;
}

static int
is_string (const char *value,
           size_t      left,
           const void *data)
{
  size_t vlen = strlen (data);

  return left >= vlen + 2 && value[0] == '"' && memcmp (value + 1, data, vlen) == 0 &&
         value[vlen + 1] == '"';
}

/* Finds `"key"` followed by optional blanks, a colon, blanks and `true`. */
static int
json_flag_true (const char *body,
                size_t      len,
                const char *key)
{
  return json_find_value (body, len, key, is_true, NULL);
}

/* Whether `"key"` is followed by optional blanks, a colon, blanks and the
 * JSON string @value (no escapes in it).
 */
static int
json_string_is (const char *body,
                size_t      len,
                const char *key,
                const char *value)
{
  return json_find_value (body, len, key, is_string, value);
}

static int
reply_simple (Conn       *c,
              const char *status,
              const char *type,
              const char *body,
              size_t      len)
{
  char head[256];
  int n;

  n = snprintf (head, sizeof head,
                "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s\r\n",
                status, type, len, c->closing ? "Connection: close\r\n" : "");
  buf_reserve (&c->out, &c->out_cap, c->out_len + (size_t)n + len);
  memcpy (c->out + c->out_len, head, (size_t)n);
  memcpy (c->out + c->out_len + n, body, len);
  c->out_len += (size_t)n + len;
  if (c->want_out)
    return 0;
  return conn_flush (c);
}

static int
format_stats (char   *buf,
              size_t  size)
{
  return snprintf (buf, size,
                   "{\"accepted\":%" PRIu64 ",\"open\":%" PRIu64 ",\"open_peak\":%" PRIu64
                   ",\"chat_conns\":%" PRIu64 ",\"requests\":%" PRIu64
                   ",\"chat_requests\":%" PRIu64 ",\"messages_requests\":%" PRIu64
                   ",\"stream_requests\":%" PRIu64
                   ",\"streams_done\":%" PRIu64 ",\"client_aborts\":%" PRIu64 "}",
                   stats.accepted, stats.open, stats.open_peak, stats.chat_conns,
                   stats.requests, stats.chat_requests, stats.messages_requests,
                   stats.stream_requests,
                   stats.streams_done, stats.client_aborts);
}

/* Handles every complete request in the input buffer, stopping at a stream. */
static void
process_input (Conn *c)
{
  while (!c->streaming && !c->closing && c->in_len > 0)
    {
      const char *hend = memmem (c->in, c->in_len, "\r\n\r\n", 4);
      const char *line_end;
      const char *sp1;
      const char *sp2;
      const char *v;
      const char *body;
      size_t vlen;
      size_t head_len;
      size_t body_len = 0;
      size_t path_len;
      const char *path;
      int rc = 0;

      if (hend == NULL)
        {
          if (c->in_len > MAX_HEADER)
            {
              c->closing = 1;
              rc = reply_simple (c, "431 Request Header Fields Too Large", "text/plain", "", 0);
              if (rc < 0)
                conn_free (c);
            }
          return;
        }
      head_len = (size_t)(hend - c->in) + 4;

      line_end = memmem (c->in, head_len, "\r\n", 2);
      sp1 = memchr (c->in, ' ', (size_t)(line_end - c->in));
      sp2 = sp1 ? memchr (sp1 + 1, ' ', (size_t)(line_end - sp1 - 1)) : NULL;
      if (sp1 == NULL || sp2 == NULL)
        {
          c->closing = 1;
          if (reply_simple (c, "400 Bad Request", "text/plain", "", 0) < 0)
            conn_free (c);
          return;
        }
      path = sp1 + 1;
      path_len = (size_t)(sp2 - path);

      if (find_header (line_end + 2, hend + 2, "Transfer-Encoding", &vlen) != NULL)
        {
          /* Keypool sends a Content-Length; chunked uploads are not needed here. */
          c->closing = 1;
          if (reply_simple (c, "411 Length Required", "text/plain", "", 0) < 0)
            conn_free (c);
          return;
        }
      v = find_header (line_end + 2, hend + 2, "Content-Length", &vlen);
      if (v != NULL)
        body_len = strtoul (v, NULL, 10);
      if (body_len > MAX_BODY)
        {
          c->closing = 1;
          if (reply_simple (c, "413 Content Too Large", "text/plain", "", 0) < 0)
            conn_free (c);
          return;
        }
      if (c->in_len < head_len + body_len)
        return;
      body = c->in + head_len;

      v = find_header (line_end + 2, hend + 2, "Connection", &vlen);
      if (v != NULL && vlen == 5 && strncasecmp (v, "close", 5) == 0)
        c->closing = 1;

      stats.requests++;

      if (strncmp (c->in, "POST ", 5) == 0 &&
          ((path_len >= 17 && memcmp (path + path_len - 17, "/chat/completions", 17) == 0) ||
           (path_len >= 9 && memcmp (path + path_len - 9, "/messages", 9) == 0)))
        {
          int anthropic = path_len >= 9 && memcmp (path + path_len - 9, "/messages", 9) == 0;

          stats.chat_requests++;
          if (anthropic)
            stats.messages_requests++;
          if (!c->carried_chat)
            {
              c->carried_chat = 1;
              stats.chat_conns++;
            }

          if (json_flag_true (body, body_len, "\"stream\""))
            {
              stats.stream_requests++;
              c->anthropic = anthropic;
              c->stamped = !anthropic && json_string_is (body, body_len, "\"model\"", "stamped");
              c->include_usage = !anthropic &&
                                 json_flag_true (body, body_len, "\"include_usage\"");
              c->close_after = c->closing;
              c->closing = 0;
              c->sent = 0;
              c->streaming = 1;
              c->next_ns = now_ns ();
              c->prev_stream = NULL;
              c->next_stream = streams;
              if (streams != NULL)
                streams->prev_stream = c;
              streams = c;

              rc = conn_write (c, stream_head, sizeof stream_head - 1);
              if (rc == 0)
                rc = stream_step (c);   /* the first chunk at once */
            }
          else if (anthropic)
            rc = reply_simple (c, "200 OK", "application/json",
                               messages_response, sizeof messages_response - 1);
          else
            rc = reply_simple (c, "200 OK", "application/json",
                               json_response, sizeof json_response - 1);
        }
      else if (strncmp (c->in, "GET ", 4) == 0 && path_len >= 6 && memcmp (path, "/stats", 6) == 0)
        {
          char json[1024];
          int n = format_stats (json, sizeof json);

          if (path_len >= 12 && memmem (path, path_len, "reset", 5) != NULL)
            stats.open_peak = stats.open;
          rc = reply_simple (c, "200 OK", "application/json", json, (size_t)n);
        }
      else
        rc = reply_simple (c, "404 Not Found", "application/json",
                           "{\"error\":{\"message\":\"not found\"}}", 33);

      /* Consume the request. */
      memmove (c->in, c->in + head_len + body_len, c->in_len - head_len - body_len);
      c->in_len -= head_len + body_len;

      if (rc < 0)
        {
          conn_free (c);
          return;
        }
      if (c->streaming)
        {
          rearm_streams ();
          return;
        }
    }
}

static void
on_readable (Conn *c)
{
  for (;;)
    {
      ssize_t n;

      buf_reserve (&c->in, &c->in_cap, c->in_len + READ_BLOCK);
      n = recv (c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
      if (n < 0)
        {
          if (errno == EINTR)
            continue;
          if (errno == EAGAIN || errno == EWOULDBLOCK)
            break;
          conn_free (c);
          return;
        }
      if (n == 0)
        {
          conn_free (c);
          return;
        }
      c->in_len += (size_t)n;
      if ((size_t)n < READ_BLOCK)
        break;
    }

  process_input (c);
}

static void
on_accept (void)
{
  for (;;)
    {
      int fd = accept4 (listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
      struct epoll_event ev;
      int one = 1;
      Conn *c;

      if (fd < 0)
        {
          if (errno == EINTR)
            continue;
          if (errno == EAGAIN || errno == EWOULDBLOCK)
            return;
          if (errno == EMFILE || errno == ENFILE || errno == ECONNABORTED)
            {
              fprintf (stderr, "bench-upstream: accept: %s\n", strerror (errno));
              return;
            }
          die ("accept");
        }

      setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      c = calloc (1, sizeof *c);
      if (c == NULL)
        die ("calloc");
      c->fd = fd;
      ev.events = EPOLLIN | EPOLLRDHUP;
      ev.data.ptr = c;
      if (epoll_ctl (epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
        die ("epoll_ctl");

      stats.accepted++;
      stats.open++;
      if (stats.open > stats.open_peak)
        stats.open_peak = stats.open;
    }
}

static void
on_signal (int sig)
{
  if (sig == SIGUSR1)
    want_stats = 1;
  else
    want_quit = 1;
}

static void
usage (void)
{
  fprintf (stderr,
           "Usage: bench-upstream [--port N] [--chunks N] [--interval-us N]\n"
           "  --port N         TCP port on 127.0.0.1 (default 0: any free port)\n"
           "  --chunks N       content chunks per stream (default 100)\n"
           "  --interval-us N  spacing between content chunks (default 10000)\n");
  exit (2);
}

int
main (int    argc,
      char **argv)
{
  struct sockaddr_in addr;
  socklen_t alen = sizeof addr;
  struct epoll_event ev;
  struct epoll_event events[MAX_EVENTS];
  struct sigaction sa;
  int port = 0;
  int one = 1;

  bench_program = "bench-upstream";

  for (int i = 1; i < argc; i++)
    {
      if (strcmp (argv[i], "--port") == 0 && i + 1 < argc)
        port = atoi (argv[++i]);
      else if (strcmp (argv[i], "--chunks") == 0 && i + 1 < argc)
        n_chunks = atoi (argv[++i]);
      else if (strcmp (argv[i], "--interval-us") == 0 && i + 1 < argc)
        interval_ns = strtoll (argv[++i], NULL, 10) * 1000;
      else
        usage ();
    }
  if (n_chunks < 0 || interval_ns < 0 || port < 0 || port > 65535)
    usage ();

  memset (&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset (&sa.sa_mask);
  sigaction (SIGUSR1, &sa, NULL);
  sigaction (SIGTERM, &sa, NULL);
  sigaction (SIGINT, &sa, NULL);
  signal (SIGPIPE, SIG_IGN);

  listen_fd = socket (AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (listen_fd < 0)
    die ("socket");
  setsockopt (listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  memset (&addr, 0, sizeof addr);
  addr.sin_family = AF_INET;
  addr.sin_port = htons ((uint16_t)port);
  addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
  if (bind (listen_fd, (struct sockaddr *)&addr, sizeof addr) < 0)
    die ("bind");
  if (listen (listen_fd, 4096) < 0)
    die ("listen");
  if (getsockname (listen_fd, (struct sockaddr *)&addr, &alen) < 0)
    die ("getsockname");

  timer_fd = timerfd_create (CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (timer_fd < 0)
    die ("timerfd_create");

  epfd = epoll_create1 (EPOLL_CLOEXEC);
  if (epfd < 0)
    die ("epoll_create1");
  ev.events = EPOLLIN;
  ev.data.ptr = &listen_tag;
  if (epoll_ctl (epfd, EPOLL_CTL_ADD, listen_fd, &ev) < 0)
    die ("epoll_ctl");
  ev.events = EPOLLIN;
  ev.data.ptr = &timer_tag;
  if (epoll_ctl (epfd, EPOLL_CTL_ADD, timer_fd, &ev) < 0)
    die ("epoll_ctl");

  printf ("http://127.0.0.1:%d/v1\n", ntohs (addr.sin_port));
  fflush (stdout);

  while (!want_quit)
    {
      int n = epoll_wait (epfd, events, MAX_EVENTS, -1);

      if (want_stats)
        {
          char json[1024];

          want_stats = 0;
          format_stats (json, sizeof json);
          fprintf (stderr, "%s\n", json);
        }
      if (n < 0)
        {
          if (errno == EINTR)
            continue;
          die ("epoll_wait");
        }

      /* Timers first: a late chunk is what the benchmark measures. */
      for (int i = 0; i < n; i++)
        if (events[i].data.ptr == &timer_tag)
          on_timer ();

      for (int i = 0; i < n; i++)
        {
          void *ptr = events[i].data.ptr;
          Conn *c;

          if (ptr == &timer_tag)
            continue;
          if (ptr == &listen_tag)
            {
              on_accept ();
              continue;
            }

          c = ptr;
          if (c->dead)
            continue;
          if (events[i].events & (EPOLLERR | EPOLLHUP))
            {
              conn_free (c);
              continue;
            }
          if (events[i].events & EPOLLOUT)
            {
              if (conn_flush (c) < 0)
                {
                  conn_free (c);
                  continue;
                }
              if (!c->streaming && c->in_len > 0)
                process_input (c);
              continue;
            }
          if (events[i].events & (EPOLLIN | EPOLLRDHUP))
            on_readable (c);
        }

      bury_dead ();
    }

  return 0;
}
