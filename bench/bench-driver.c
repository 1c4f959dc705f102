/* bench-driver.c: load driver for Keypool's benchmark
 *
 * One thread, epoll, keep-alive HTTP/1.1 connections to one base URL
 * (http://127.0.0.1:PORT/v1). It speaks OpenAI's chat API (POST
 * {url}/chat/completions, the default) or, with --dialect anthropic,
 * Anthropic's Messages API (POST {url}/messages with x-api-key,
 * anthropic-version and max_tokens). Two modes, each printing one JSON line:
 *
 *   --mode plain: non-streamed chat requests from --concurrency connections,
 *     each sending its next request as soon as the last answer is complete,
 *     for --warmup seconds unrecorded and then --duration seconds (or until
 *     --requests answers). Reports requests/s and latency percentiles.
 *
 *   --mode stream: --streams concurrent streamed requests, --rounds times
 *     (the first --warmup-rounds unrecorded). Reports the time to the first
 *     content chunk and, for every content chunk, the delay between the
 *     upstream writing it and this process receiving it: both are
 *     CLOCK_MONOTONIC readings on the same machine. The upstream's time is
 *     the chunk's "emit_ns" field or, where there is none (a translated
 *     stream keeps only the text), its text "t<emit_ns> ": an OpenAI
 *     chunk's delta content, or an Anthropic text_delta's text.
 *
 *   --get URL: prints the body of one GET (for the mock's /stats).
 *
 * Every answer is checked: status 200, a Content-Length on non-streamed
 * answers, the stream's chunk count (--expect-chunks) and a terminating
 * chunk. OpenAI streams: a finish chunk, no usage-only chunk (the driver
 * never asks for usage) and a [DONE]. Anthropic streams: every event has an
 * `event:` line naming the data's "type", and there are a message_start, a
 * message_delta with a stop reason and usage, and a message_stop, last.
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
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "bench-util.h"

#define MAX_CONNS       1024
#define READ_BLOCK      65536
#define MAX_RECONNECTS  1000
#define GRACE_NS        (10LL * 1000000000)

/* Whether [data, data + len) contains the string literal lit. */
#define HAS(data, len, lit) (memmem ((data), (len), (lit), sizeof (lit) - 1) != NULL)

typedef enum
{
  RESP_HEAD,
  RESP_BODY_LENGTH,
  RESP_CHUNK_SIZE,
  RESP_CHUNK_DATA,
  RESP_CHUNK_CRLF,
  RESP_TRAILER,
  RESP_BODY_EOF,
} RespState;

typedef struct
{
  int64_t *v;
  size_t   len;
  size_t   cap;
} Samples;

typedef struct
{
  int        fd;
  int        busy;          /* a request is in flight */
  int        done;          /* sends nothing more */
  int        server_closes; /* the current answer ends the connection */

  char      *in;
  size_t     in_len;
  size_t     in_off;
  size_t     in_cap;

  RespState  state;
  int        status;
  int        chunked;
  int        has_length;
  size_t     remaining;     /* body or chunk bytes still due */
  size_t     body_seen;
  int64_t    sent_ns;
  int64_t    arrival_ns;    /* the kernel's receive time of the last recv, or -1 */

  /* Streams. */
  char      *sse;
  size_t     sse_len;
  size_t     sse_cap;
  int        content_chunks;
  int        saw_done;
  int        saw_usage_only;
  int        saw_finish;
  int        got_first;
  int        saw_start;     /* Anthropic: message_start */
  int        bad_events;    /* Anthropic: events out of shape or order */
} Client;

typedef struct
{
  const char *mode;
  const char *label;
  int         anthropic;    /* --dialect anthropic */
  char        host[64];
  int         port;
  char        path[512];
  const char *token;
  const char *model;
  int         concurrency;
  double      warmup_s;
  double      duration_s;
  long        max_requests;
  int         rounds;
  int         warmup_rounds;
  int         expect_chunks;
  int         verbose;
} Options;

static Options opt;
static int epfd = -1;
static struct sockaddr_in server_addr;
static char *request_buf;
static size_t request_len;
static Client clients[MAX_CONNS];

/* Results. */
static Samples latencies;
static Samples ttfc;
static Samples chunk_delays;
static Samples chunk_arrivals;

/* CLOCK_MONOTONIC minus CLOCK_REALTIME: the kernel stamps received bytes
 * with the latter (SO_TIMESTAMPNS), the mock stamps chunks with the former.
 */
static int64_t realtime_to_monotonic;

static int64_t
clock_ns (clockid_t clock)
{
  struct timespec ts;

  clock_gettime (clock, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void
measure_clock_offset (void)
{
  int64_t best = INT64_MAX;

  /* The reading whose two realtime samples are closest brackets the
   * monotonic one best.
   */
  for (int i = 0; i < 16; i++)
    {
      int64_t r1 = clock_ns (CLOCK_REALTIME);
      int64_t m = clock_ns (CLOCK_MONOTONIC);
      int64_t r2 = clock_ns (CLOCK_REALTIME);

      if (r2 - r1 < best)
        {
          best = r2 - r1;
          realtime_to_monotonic = m - (r1 + (r2 - r1) / 2);
        }
    }
}
static long n_ok;
static long n_errors;
static long n_bad_bytes;
static long n_chunked_plain;
static long n_connects;
static long n_server_closes;
static long n_streams_ok;
static long n_usage_leaks;
static int recording;
static int64_t record_from_ns;
static int64_t record_until_ns;
static int printed_errors;

static void
samples_add (Samples *s,
             int64_t  value)
{
  if (s->len == s->cap)
    {
      s->cap = s->cap ? s->cap * 2 : 4096;
      s->v = xrealloc (s->v, s->cap * sizeof *s->v);
    }
  s->v[s->len++] = value;
}

static int
cmp_i64 (const void *a,
         const void *b)
{
  int64_t x = *(const int64_t *)a;
  int64_t y = *(const int64_t *)b;

  return x < y ? -1 : x > y;
}

/* Nearest-rank percentile in microseconds, or -1 without samples. */
static double
percentile_us (Samples *s,
               double   p)
{
  size_t rank;

  if (s->len == 0)
    return -1;
  rank = (size_t)((p / 100.0) * (double)s->len + 0.999999);
  if (rank < 1)
    rank = 1;
  if (rank > s->len)
    rank = s->len;
  return (double)s->v[rank - 1] / 1000.0;
}

static double
mean_us (Samples *s)
{
  double sum = 0;

  if (s->len == 0)
    return -1;
  for (size_t i = 0; i < s->len; i++)
    sum += (double)s->v[i];
  return sum / (double)s->len / 1000.0;
}

static void
report_error (const char *what,
              const char *detail,
              size_t      len)
{
  n_errors++;
  if (printed_errors++ < 5)
    fprintf (stderr, "bench-driver: %s%s%.*s\n", what, detail ? ": " : "",
             (int)(len > 300 ? 300 : len), detail ? detail : "");
}

/* URL ------------------------------------------------------------------- */

static int
parse_url (const char *url,
           char       *host,
           size_t      host_size,
           int        *port,
           char       *path,
           size_t      path_size)
{
  const char *p;
  const char *colon;
  const char *slash;
  size_t hlen;

  if (strncmp (url, "http://", 7) != 0)
    return -1;
  p = url + 7;
  slash = strchr (p, '/');
  if (slash == NULL)
    slash = p + strlen (p);
  colon = memchr (p, ':', (size_t)(slash - p));
  hlen = (size_t)((colon ? colon : slash) - p);
  if (hlen == 0 || hlen >= host_size)
    return -1;
  memcpy (host, p, hlen);
  host[hlen] = '\0';
  *port = colon ? atoi (colon + 1) : 80;
  snprintf (path, path_size, "%s", slash);
  /* No trailing slash: the request path is appended. */
  hlen = strlen (path);
  while (hlen > 0 && path[hlen - 1] == '/')
    path[--hlen] = '\0';
  return 0;
}

/* Connections ----------------------------------------------------------- */

static void
client_reset_response (Client *c)
{
  c->state = RESP_HEAD;
  c->status = 0;
  c->chunked = 0;
  c->has_length = 0;
  c->remaining = 0;
  c->body_seen = 0;
  c->server_closes = 0;
  c->sse_len = 0;
  c->content_chunks = 0;
  c->saw_done = 0;
  c->saw_usage_only = 0;
  c->saw_finish = 0;
  c->got_first = 0;
  c->saw_start = 0;
  c->bad_events = 0;
}

static void
client_close (Client *c)
{
  if (c->fd >= 0)
    {
      epoll_ctl (epfd, EPOLL_CTL_DEL, c->fd, NULL);
      close (c->fd);
      c->fd = -1;
    }
  c->in_len = c->in_off = 0;
  c->busy = 0;
}

static int
client_connect (Client *c)
{
  struct epoll_event ev;
  int one = 1;
  int fd;

  if (n_connects >= opt.concurrency + MAX_RECONNECTS)
    {
      fprintf (stderr, "bench-driver: too many reconnects, giving up\n");
      return -1;
    }

  /* A blocking connect to loopback completes at once; then non-blocking. */
  fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    die ("socket");
  if (connect (fd, (struct sockaddr *)&server_addr, sizeof server_addr) < 0)
    {
      fprintf (stderr, "bench-driver: connect: %s\n", strerror (errno));
      close (fd);
      return -1;
    }
  setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  /* When the bytes reached the socket, apart from when this loop read them. */
  setsockopt (fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one);
  if (fcntl (fd, F_SETFL, fcntl (fd, F_GETFL) | O_NONBLOCK) < 0)
    die ("fcntl");

  ev.events = EPOLLIN | EPOLLRDHUP;
  ev.data.ptr = c;
  if (epoll_ctl (epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
    die ("epoll_ctl");

  c->fd = fd;
  c->in_len = c->in_off = 0;
  n_connects++;
  return 0;
}

/* Sends the request; returns -1 if the connection cannot be had. */
static int
client_send (Client *c)
{
  size_t off = 0;
  int spins = 0;

  if (c->fd < 0 && client_connect (c) < 0)
    return -1;

  client_reset_response (c);
  c->busy = 1;
  c->sent_ns = now_ns ();

  while (off < request_len)
    {
      ssize_t n = send (c->fd, request_buf + off, request_len - off, MSG_NOSIGNAL);

      if (n < 0)
        {
          if (errno == EINTR || ((errno == EAGAIN || errno == EWOULDBLOCK) && spins++ < 100000))
            continue;
          report_error ("send failed", strerror (errno), strlen (strerror (errno)));
          client_close (c);
          return -1;
        }
      off += (size_t)n;
    }
  return 0;
}

/* Streams --------------------------------------------------------------- */

/* Reads the emit time from text that starts "t<digits>" at @p, the first
 * character of a JSON string's contents; returns -1 if there is none.
 */
static int64_t
stamp_at (const char *p,
          const char *end)
{
  int64_t v = 0;
  const char *q;

  if (p >= end || *p != 't')
    return -1;
  for (q = p + 1; q < end && *q >= '0' && *q <= '9'; q++)
    v = v * 10 + (*q - '0');
  return q > p + 1 ? v : -1;
}

/* The emit time of a content chunk: "emit_ns", else the stamp at the start
 * of the string after @text_key; -1 if the data carries neither.
 */
static int64_t
emit_time (const char *data,
           size_t      len,
           const char *text_key)
{
  size_t klen = strlen (text_key);
  const char *end = data + len;
  const char *p;

  p = memmem (data, len, "\"emit_ns\":", sizeof "\"emit_ns\":" - 1);
  if (p != NULL)
    return strtoll (p + sizeof "\"emit_ns\":" - 1, NULL, 10);

  p = memmem (data, len, text_key, klen);
  if (p == NULL)
    return -1;
  return stamp_at (p + klen, end);
}

static void
content_chunk (Client  *c,
               int64_t  emit,
               int64_t  t)
{
  c->content_chunks++;
  if (recording)
    {
      samples_add (&chunk_delays, t - emit);
      if (c->arrival_ns >= 0)
        samples_add (&chunk_arrivals, c->arrival_ns - emit);
      if (!c->got_first)
        samples_add (&ttfc, t - c->sent_ns);
    }
  c->got_first = 1;
}

/* One Anthropic event. The data's "type" must be the event's name. */
static void
handle_anthropic_event (Client     *c,
                        const char *event,
                        size_t      elen,
                        const char *data,
                        size_t      len,
                        int64_t     t)
{
  char type[64];
  int64_t emit;

  if (event == NULL || elen == 0 || elen > 40)
    {
      c->bad_events++;
      return;
    }
  snprintf (type, sizeof type, "\"type\":\"%.*s\"", (int)elen, event);
  if (memmem (data, len, type, strlen (type)) == NULL)
    {
      c->bad_events++;
      return;
    }
  /* Nothing may follow message_stop. */
  if (c->saw_done)
    c->bad_events++;

#define IS(name) (elen == sizeof (name) - 1 && memcmp (event, name, elen) == 0)
  if (IS ("message_start"))
    {
      if (c->saw_start || !HAS (data, len, "\"usage\""))
        c->bad_events++;
      c->saw_start = 1;
    }
  else if (IS ("content_block_delta"))
    {
      if (!c->saw_start)
        c->bad_events++;
      emit = HAS (data, len, "\"text_delta\"") ? emit_time (data, len, "\"text\":\"") : -1;
      if (emit >= 0)
        content_chunk (c, emit, t);
    }
  else if (IS ("message_delta"))
    {
      if (HAS (data, len, "\"stop_reason\":\"end_turn\"") && HAS (data, len, "\"usage\""))
        c->saw_finish = 1;
      else
        c->bad_events++;
    }
  else if (IS ("message_stop"))
    c->saw_done = 1;
  else if (IS ("error"))
    report_error ("error event", data, len);
#undef IS
}

static void
handle_event_data (Client     *c,
                   const char *event,
                   size_t      elen,
                   const char *data,
                   size_t      len,
                   int64_t     t)
{
  int64_t emit;

  if (opt.anthropic)
    {
      handle_anthropic_event (c, event, elen, data, len, t);
      return;
    }

  if (len == 6 && memcmp (data, "[DONE]", 6) == 0)
    {
      c->saw_done = 1;
      return;
    }

  emit = emit_time (data, len, "\"content\":\"");
  if (emit >= 0)
    {
      content_chunk (c, emit, t);
      return;
    }

  if (HAS (data, len, "\"choices\":[]"))
    c->saw_usage_only = 1;
  else if (HAS (data, len, "\"finish_reason\":\"stop\""))
    c->saw_finish = 1;
  else if (HAS (data, len, "\"error\""))
    report_error ("error event", data, len);
}

/* Takes the SSE events complete in the buffer. */
static void
process_sse (Client  *c,
             int64_t  t)
{
  size_t off = 0;

  for (;;)
    {
      const char *start = c->sse + off;
      const char *end = memmem (start, c->sse_len - off, "\n\n", 2);
      const char *line;
      const char *event = NULL;
      size_t elen = 0;

      if (end == NULL)
        break;

      for (line = start; line < end;)
        {
          const char *eol = memchr (line, '\n', (size_t)(end - line));

          if (eol == NULL)
            eol = end;
          if (eol - line >= 6 && memcmp (line, "event:", 6) == 0)
            {
              event = line + 6;
              if (event < eol && *event == ' ')
                event++;
              elen = (size_t)(eol - event);
            }
          else if (eol - line >= 6 && memcmp (line, "data: ", 6) == 0)
            handle_event_data (c, event, elen, line + 6, (size_t)(eol - line - 6), t);
          else if (eol - line >= 5 && memcmp (line, "data:", 5) == 0)
            handle_event_data (c, event, elen, line + 5, (size_t)(eol - line - 5), t);
          line = eol + 1;
        }
      off = (size_t)(end - c->sse) + 2;
    }

  if (off > 0)
    {
      memmove (c->sse, c->sse + off, c->sse_len - off);
      c->sse_len -= off;
    }
}

/* Responses ------------------------------------------------------------- */

static void
on_complete (Client  *c,
             int64_t  t,
             const char *body,
             size_t   body_len)
{
  int stream = strcmp (opt.mode, "stream") == 0;

  c->busy = 0;

  if (c->status != 200)
    {
      char what[64];

      snprintf (what, sizeof what, "HTTP status %d", c->status);
      report_error (what, body, body ? body_len : 0);
    }
  else if (!stream)
    {
      int shaped;

      if (!c->has_length)
        n_chunked_plain++;
      if (body == NULL)
        shaped = 0;
      else if (opt.anthropic)
        shaped = HAS (body, body_len, "\"type\":\"message\"") &&
                 HAS (body, body_len, "\"input_tokens\"") &&
                 HAS (body, body_len, "\"output_tokens\"");
      else
        shaped = HAS (body, body_len, "\"chat.completion\"") &&
                 HAS (body, body_len, "\"usage\"");
      if (!shaped)
        {
          n_bad_bytes++;
          report_error ("unexpected body", body, body ? body_len : 0);
        }
      else if (c->sent_ns >= record_from_ns && t <= record_until_ns)
        {
          n_ok++;
          samples_add (&latencies, t - c->sent_ns);
        }
    }
  else
    {
      int good = c->saw_done && c->saw_finish && c->sse_len == 0 &&
                 (!opt.anthropic || (c->saw_start && c->bad_events == 0)) &&
                 (opt.expect_chunks <= 0 || c->content_chunks == opt.expect_chunks);

      if (c->saw_usage_only)
        n_usage_leaks++;
      if (!good)
        {
          char detail[200];
          int n = snprintf (detail, sizeof detail,
                            "chunks=%d expected=%d done=%d finish=%d leftover=%zu "
                            "start=%d bad_events=%d",
                            c->content_chunks, opt.expect_chunks, c->saw_done,
                            c->saw_finish, c->sse_len, c->saw_start, c->bad_events);

          n_bad_bytes++;
          report_error ("malformed stream", detail, (size_t)n);
        }
      else if (recording)
        n_streams_ok++;
    }

  if (c->server_closes)
    {
      n_server_closes++;
      client_close (c);
    }
}

/* Parses what has arrived; returns -1 on a protocol error. */
static int
client_parse (Client  *c,
              int64_t  t)
{
  for (;;)
    {
      char *buf = c->in + c->in_off;
      size_t avail = c->in_len - c->in_off;

      switch (c->state)
        {
        case RESP_HEAD:
          {
            const char *hend = memmem (buf, avail, "\r\n\r\n", 4);
            const char *v;
            size_t vlen;
            size_t head_len;

            if (hend == NULL)
              return avail > 65536 ? -1 : 0;
            head_len = (size_t)(hend - buf) + 4;
            if (avail < 12 || strncmp (buf, "HTTP/1.", 7) != 0)
              return -1;
            c->status = atoi (buf + 9);

            if ((v = find_header (buf, buf + head_len, "Transfer-Encoding", &vlen)) != NULL &&
                vlen >= 7 && strncasecmp (v, "chunked", 7) == 0)
              {
                c->chunked = 1;
                c->state = RESP_CHUNK_SIZE;
              }
            else if ((v = find_header (buf, buf + head_len, "Content-Length", &vlen)) != NULL)
              {
                c->has_length = 1;
                c->remaining = strtoul (v, NULL, 10);
                c->state = RESP_BODY_LENGTH;
              }
            else
              c->state = RESP_BODY_EOF;

            if (((v = find_header (buf, buf + head_len, "Connection", &vlen)) != NULL &&
                 vlen == 5 && strncasecmp (v, "close", 5) == 0) ||
                strncmp (buf, "HTTP/1.0", 8) == 0)
              c->server_closes = 1;

            c->in_off += head_len;
            break;
          }

        case RESP_BODY_LENGTH:
          if (avail < c->remaining)
            return 0;
          c->in_off += c->remaining;
          on_complete (c, t, buf, c->remaining);
          return 0;

        case RESP_CHUNK_SIZE:
          {
            const char *eol = memmem (buf, avail, "\r\n", 2);
            char *endp;

            if (eol == NULL)
              return avail > 1024 ? -1 : 0;
            c->remaining = strtoul (buf, &endp, 16);
            if (endp == buf)
              return -1;
            c->in_off += (size_t)(eol - buf) + 2;
            c->state = c->remaining == 0 ? RESP_TRAILER : RESP_CHUNK_DATA;
            break;
          }

        case RESP_CHUNK_DATA:
          {
            size_t n = avail < c->remaining ? avail : c->remaining;

            if (n == 0)
              return 0;
            buf_reserve (&c->sse, &c->sse_cap, c->sse_len + n);
            memcpy (c->sse + c->sse_len, buf, n);
            c->sse_len += n;
            c->in_off += n;
            c->remaining -= n;
            c->body_seen += n;
            process_sse (c, t);
            if (c->remaining == 0)
              c->state = RESP_CHUNK_CRLF;
            break;
          }

        case RESP_CHUNK_CRLF:
          if (avail < 2)
            return 0;
          if (buf[0] != '\r' || buf[1] != '\n')
            return -1;
          c->in_off += 2;
          c->state = RESP_CHUNK_SIZE;
          break;

        case RESP_TRAILER:
          {
            const char *eol = memmem (buf, avail, "\r\n", 2);

            if (eol == NULL)
              return 0;
            c->in_off += (size_t)(eol - buf) + 2;
            if (eol == buf)
              {
                /* An error answer's JSON went through the SSE buffer. */
                on_complete (c, t, c->sse, c->sse_len);
                return 0;
              }
            break;
          }

        case RESP_BODY_EOF:
        default:
          return 0;
        }
    }
}

/* Reads what is there; returns -1 if the connection ended. */
/* recv(), noting in @c when the kernel received the bytes read. */
static ssize_t
recv_stamped (Client *c,
              char   *buf,
              size_t  len)
{
  struct iovec iov = { buf, len };
  union
  {
    char           buf[CMSG_SPACE (sizeof (struct timespec))];
    struct cmsghdr align;
  } control;
  struct msghdr message = { 0 };
  ssize_t n;

  message.msg_iov = &iov;
  message.msg_iovlen = 1;
  message.msg_control = control.buf;
  message.msg_controllen = sizeof control.buf;
  n = recvmsg (c->fd, &message, 0);
  if (n <= 0)
    return n;
  c->arrival_ns = -1;
  for (struct cmsghdr *cmsg = CMSG_FIRSTHDR (&message); cmsg != NULL;
       cmsg = CMSG_NXTHDR (&message, cmsg))
    if (cmsg->cmsg_level == SOL_SOCKET && cmsg->cmsg_type == SCM_TIMESTAMPNS)
      {
        struct timespec ts;

        memcpy (&ts, CMSG_DATA (cmsg), sizeof ts);
        c->arrival_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec + realtime_to_monotonic;
      }
  return n;
}

static int
client_read (Client *c)
{
  for (;;)
    {
      ssize_t n;
      int64_t t;

      if (c->in_off > 0 && c->in_off == c->in_len)
        c->in_off = c->in_len = 0;
      else if (c->in_off > 0 && c->in_off > c->in_cap / 2)
        {
          memmove (c->in, c->in + c->in_off, c->in_len - c->in_off);
          c->in_len -= c->in_off;
          c->in_off = 0;
        }
      buf_reserve (&c->in, &c->in_cap, c->in_len + READ_BLOCK);

      n = recv_stamped (c, c->in + c->in_len, c->in_cap - c->in_len);
      t = now_ns ();
      if (n < 0)
        {
          if (errno == EINTR)
            continue;
          if (errno == EAGAIN || errno == EWOULDBLOCK)
            return 0;
          n = 0;
        }
      if (n == 0)
        {
          if (c->busy && c->state == RESP_BODY_EOF)
            on_complete (c, t, c->in + c->in_off, c->in_len - c->in_off);
          else if (c->busy)
            report_error ("connection closed mid-response", NULL, 0);
          else
            n_server_closes++;
          client_close (c);
          return -1;
        }

      c->in_len += (size_t)n;
      if (!c->busy)
        {
          report_error ("bytes without a request", c->in + c->in_off, c->in_len - c->in_off);
          client_close (c);
          return -1;
        }
      if (client_parse (c, t) < 0)
        {
          n_bad_bytes++;
          report_error ("cannot parse the response", c->in + c->in_off, c->in_len - c->in_off);
          client_close (c);
          return -1;
        }
      if (!c->busy || c->fd < 0)
        return 0;
    }
}

/* Modes ----------------------------------------------------------------- */

static long plain_window_completions;

static int
finished_sending (void)
{
  int64_t t = now_ns ();

  if (t >= record_until_ns)
    return 1;
  if (opt.max_requests > 0 && n_ok + n_errors >= opt.max_requests)
    return 1;
  return 0;
}

/* Runs until no request is in flight. After each answer, a connection sends
 * its next request unless @stop_sending is NULL or says so.
 */
static void
run_loop (int     (*stop_sending) (void),
          int64_t   hard_deadline)
{
  struct epoll_event events[MAX_CONNS];

  for (;;)
    {
      int active = 0;
      int n;

      for (int i = 0; i < opt.concurrency; i++)
        if (clients[i].busy)
          active++;
      if (active == 0)
        return;
      if (now_ns () > hard_deadline)
        {
          for (int i = 0; i < opt.concurrency; i++)
            if (clients[i].busy)
              {
                report_error ("timed out waiting for an answer", NULL, 0);
                client_close (&clients[i]);
              }
          return;
        }

      n = epoll_wait (epfd, events, MAX_CONNS, 20);
      if (n < 0)
        {
          if (errno == EINTR)
            continue;
          die ("epoll_wait");
        }

      for (int i = 0; i < n; i++)
        {
          Client *c = events[i].data.ptr;
          int before = c->busy;

          if (c->fd < 0)
            continue;
          client_read (c);
          if (before && !c->busy)
            {
              int64_t t = now_ns ();

              if (t >= record_from_ns && t <= record_until_ns && stop_sending != NULL)
                plain_window_completions++;
              if (stop_sending != NULL && !stop_sending ())
                client_send (c);
            }
        }
    }
}

static void
run_plain (void)
{
  int64_t start = now_ns ();

  record_from_ns = start + (int64_t)(opt.warmup_s * 1e9);
  record_until_ns = opt.max_requests > 0 && opt.duration_s <= 0
                      ? INT64_MAX / 2
                      : record_from_ns + (int64_t)(opt.duration_s * 1e9);
  recording = 1;

  for (int i = 0; i < opt.concurrency; i++)
    client_send (&clients[i]);

  run_loop (finished_sending, record_until_ns + GRACE_NS);
}

static void
run_stream (void)
{
  record_from_ns = 0;
  record_until_ns = INT64_MAX / 2;

  for (int round = 0; round < opt.rounds; round++)
    {
      recording = round >= opt.warmup_rounds;
      for (int i = 0; i < opt.concurrency; i++)
        client_send (&clients[i]);
      run_loop (NULL, now_ns () + (int64_t)(opt.duration_s * 1e9));
    }
}

static int
do_get (const char *url)
{
  char host[64];
  char path[512];
  char req[1024];
  char *buf = NULL;
  size_t len = 0;
  size_t cap = 0;
  int port;
  int fd;
  const char *body;

  if (parse_url (url, host, sizeof host, &port, path, sizeof path) < 0)
    {
      fprintf (stderr, "bench-driver: bad URL %s\n", url);
      return 2;
    }
  memset (&server_addr, 0, sizeof server_addr);
  server_addr.sin_family = AF_INET;
  server_addr.sin_port = htons ((uint16_t)port);
  if (inet_pton (AF_INET, host, &server_addr.sin_addr) != 1)
    {
      fprintf (stderr, "bench-driver: only IPv4 literals are supported: %s\n", host);
      return 2;
    }

  fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || connect (fd, (struct sockaddr *)&server_addr, sizeof server_addr) < 0)
    die ("connect");
  snprintf (req, sizeof req, "GET %s HTTP/1.1\r\nHost: %s:%d\r\nConnection: close\r\n\r\n",
            path[0] ? path : "/", host, port);
  if (send (fd, req, strlen (req), MSG_NOSIGNAL) < 0)
    die ("send");
  for (;;)
    {
      ssize_t n;

      buf_reserve (&buf, &cap, len + 4096);
      n = recv (fd, buf + len, cap - len - 1, 0);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        break;
      len += (size_t)n;
    }
  close (fd);
  if (buf == NULL)
    return 1;
  buf[len] = '\0';
  body = strstr (buf, "\r\n\r\n");
  if (body == NULL)
    return 1;
  printf ("%s\n", body + 4);
  free (buf);
  return 0;
}

static void
usage (void)
{
  fprintf (stderr,
           "Usage: bench-driver --url http://127.0.0.1:PORT/v1 [options]\n"
           "       bench-driver --get URL\n"
           "  --mode plain|stream   non-streamed requests or concurrent streams (plain)\n"
           "  --dialect openai|anthropic\n"
           "                        POST {url}/chat/completions, or POST {url}/messages\n"
           "                        with Anthropic's headers and events (openai)\n"
           "  --token TOKEN         sent as Authorization: Bearer TOKEN (OpenAI) or\n"
           "                        x-api-key: TOKEN (Anthropic)\n"
           "  --model MODEL         the request's model (bench/chat)\n"
           "  --label TEXT          copied into the result line\n"
           "  --concurrency N       connections, or concurrent streams (1)\n"
           "  --warmup S            plain: unrecorded seconds first (1)\n"
           "  --duration S          plain: recorded seconds (5); stream: per-round limit (60)\n"
           "  --requests N          plain: stop after N answers instead\n"
           "  --rounds N            stream: rounds of concurrent streams (2)\n"
           "  --warmup-rounds N     stream: unrecorded rounds first (1)\n"
           "  --expect-chunks N     stream: content chunks each stream must carry\n");
  exit (2);
}

static void
print_plain (void)
{
  double seconds = opt.duration_s > 0 ? opt.duration_s
                                      : (double)(now_ns () - record_from_ns) / 1e9;

  qsort (latencies.v, latencies.len, sizeof *latencies.v, cmp_i64);
  printf ("{\"mode\":\"plain\",\"dialect\":\"%s\",\"label\":\"%s\",\"concurrency\":%d,\"seconds\":%.3f,"
          "\"requests\":%ld,\"errors\":%ld,\"bad_bytes\":%ld,\"chunked_answers\":%ld,"
          "\"connects\":%ld,\"server_closes\":%ld,\"rps\":%.1f,"
          "\"lat_p50_us\":%.1f,\"lat_p90_us\":%.1f,\"lat_p99_us\":%.1f,"
          "\"lat_mean_us\":%.1f,\"lat_max_us\":%.1f}\n",
          opt.anthropic ? "anthropic" : "openai", opt.label, opt.concurrency, seconds, n_ok, n_errors, n_bad_bytes, n_chunked_plain,
          n_connects, n_server_closes,
          (double)plain_window_completions / seconds,
          percentile_us (&latencies, 50), percentile_us (&latencies, 90),
          percentile_us (&latencies, 99), mean_us (&latencies),
          percentile_us (&latencies, 100));
}

static void
print_stream (void)
{
  qsort (ttfc.v, ttfc.len, sizeof *ttfc.v, cmp_i64);
  qsort (chunk_delays.v, chunk_delays.len, sizeof *chunk_delays.v, cmp_i64);
  qsort (chunk_arrivals.v, chunk_arrivals.len, sizeof *chunk_arrivals.v, cmp_i64);
  printf ("{\"mode\":\"stream\",\"dialect\":\"%s\",\"label\":\"%s\",\"streams\":%d,\"rounds\":%d,"
          "\"warmup_rounds\":%d,\"streams_ok\":%ld,\"errors\":%ld,\"bad_bytes\":%ld,"
          "\"usage_leaks\":%ld,\"connects\":%ld,\"server_closes\":%ld,\"chunks\":%zu,"
          "\"ttfc_p50_us\":%.1f,\"ttfc_p99_us\":%.1f,\"ttfc_max_us\":%.1f,"
          "\"chunk_p50_us\":%.1f,\"chunk_p90_us\":%.1f,\"chunk_p99_us\":%.1f,"
          "\"chunk_mean_us\":%.1f,\"chunk_max_us\":%.1f,"
          "\"arrival_p50_us\":%.1f,\"arrival_p99_us\":%.1f,\"arrivals\":%zu}\n",
          opt.anthropic ? "anthropic" : "openai", opt.label, opt.concurrency, opt.rounds,
          opt.warmup_rounds, n_streams_ok, n_errors,
          n_bad_bytes, n_usage_leaks, n_connects, n_server_closes, chunk_delays.len,
          percentile_us (&ttfc, 50), percentile_us (&ttfc, 99), percentile_us (&ttfc, 100),
          percentile_us (&chunk_delays, 50), percentile_us (&chunk_delays, 90),
          percentile_us (&chunk_delays, 99), mean_us (&chunk_delays),
          percentile_us (&chunk_delays, 100),
          percentile_us (&chunk_arrivals, 50), percentile_us (&chunk_arrivals, 99),
          chunk_arrivals.len);
}

int
main (int    argc,
      char **argv)
{
  const char *url = NULL;
  char body[1024];
  int stream;
  int body_len;

  bench_program = "bench-driver";

  opt.mode = "plain";
  opt.label = "";
  opt.token = "";
  opt.model = "bench/chat";
  opt.concurrency = 1;
  opt.warmup_s = 1;
  opt.duration_s = -1;
  opt.rounds = 2;
  opt.warmup_rounds = 1;

  for (int i = 1; i < argc; i++)
    {
      const char *a = argv[i];
      const char *v = i + 1 < argc ? argv[i + 1] : NULL;

      if (v == NULL)
        usage ();
      i++;
      if (strcmp (a, "--get") == 0)
        return do_get (v);
      else if (strcmp (a, "--url") == 0)
        url = v;
      else if (strcmp (a, "--mode") == 0)
        opt.mode = v;
      else if (strcmp (a, "--dialect") == 0)
        {
          if (strcmp (v, "anthropic") == 0)
            opt.anthropic = 1;
          else if (strcmp (v, "openai") == 0)
            opt.anthropic = 0;
          else
            usage ();
        }
      else if (strcmp (a, "--token") == 0)
        opt.token = v;
      else if (strcmp (a, "--model") == 0)
        opt.model = v;
      else if (strcmp (a, "--label") == 0)
        opt.label = v;
      else if (strcmp (a, "--concurrency") == 0 || strcmp (a, "--streams") == 0)
        opt.concurrency = atoi (v);
      else if (strcmp (a, "--warmup") == 0)
        opt.warmup_s = atof (v);
      else if (strcmp (a, "--duration") == 0)
        opt.duration_s = atof (v);
      else if (strcmp (a, "--requests") == 0)
        opt.max_requests = atol (v);
      else if (strcmp (a, "--rounds") == 0)
        opt.rounds = atoi (v);
      else if (strcmp (a, "--warmup-rounds") == 0)
        opt.warmup_rounds = atoi (v);
      else if (strcmp (a, "--expect-chunks") == 0)
        opt.expect_chunks = atoi (v);
      else
        usage ();
    }

  stream = strcmp (opt.mode, "stream") == 0;
  if (url == NULL || (!stream && strcmp (opt.mode, "plain") != 0) ||
      opt.concurrency < 1 || opt.concurrency > MAX_CONNS || opt.rounds < 1 ||
      opt.rounds > 1000 || strchr (opt.label, '"') != NULL || strchr (opt.model, '"') != NULL)
    usage ();
  if (opt.duration_s < 0)
    opt.duration_s = stream ? 60 : (opt.max_requests > 0 ? 0 : 5);
  if (opt.duration_s > 600 || opt.warmup_s > 600)
    usage ();
  if (parse_url (url, opt.host, sizeof opt.host, &opt.port, opt.path, sizeof opt.path) < 0)
    {
      fprintf (stderr, "bench-driver: bad URL %s\n", url);
      return 2;
    }

  memset (&server_addr, 0, sizeof server_addr);
  server_addr.sin_family = AF_INET;
  server_addr.sin_port = htons ((uint16_t)opt.port);
  if (inet_pton (AF_INET, opt.host, &server_addr.sin_addr) != 1)
    {
      fprintf (stderr, "bench-driver: only IPv4 literals are supported: %s\n", opt.host);
      return 2;
    }

  /* The two APIs differ in path, key header and where max_tokens goes. */
  body_len = snprintf (body, sizeof body,
                       opt.anthropic
                         ? "{\"model\":\"%s\",\"max_tokens\":16,"
                           "\"messages\":[{\"role\":\"user\",\"content\":\"Say x.\"}],\"stream\":%s}"
                         : "{\"model\":\"%s\",\"messages\":[{\"role\":\"user\",\"content\":\"Say x.\"}],"
                           "\"max_tokens\":16,\"stream\":%s}",
                       opt.model, stream ? "true" : "false");
  request_buf = xrealloc (NULL, 2048 + strlen (opt.token));
  request_len = (size_t)sprintf (request_buf,
                                 "POST %s%s HTTP/1.1\r\n"
                                 "Host: %s:%d\r\n"
                                 "%s%s\r\n"
                                 "%s"
                                 "Content-Type: application/json\r\n"
                                 "Accept: %s\r\n"
                                 "Content-Length: %d\r\n"
                                 "\r\n%s",
                                 opt.path, opt.anthropic ? "/messages" : "/chat/completions",
                                 opt.host, opt.port,
                                 opt.anthropic ? "x-api-key: " : "Authorization: Bearer ", opt.token,
                                 opt.anthropic ? "anthropic-version: 2023-06-01\r\n" : "",
                                 stream ? "text/event-stream" : "application/json",
                                 body_len, body);

  signal (SIGPIPE, SIG_IGN);
  measure_clock_offset ();
  epfd = epoll_create1 (EPOLL_CLOEXEC);
  if (epfd < 0)
    die ("epoll_create1");
  for (int i = 0; i < opt.concurrency; i++)
    clients[i].fd = -1;

  if (stream)
    {
      run_stream ();
      print_stream ();
    }
  else
    {
      run_plain ();
      print_plain ();
    }

  for (int i = 0; i < opt.concurrency; i++)
    client_close (&clients[i]);
  return 0;
}
