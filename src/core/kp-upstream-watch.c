/* kp-upstream-watch.c: one flat source that says when an upstream body may
 * have more to read
 *
 * The pollable source of a libsoup body stream is a chain of four nested
 * sources (client stream, message I/O, filter stream, socket). GLib
 * dispatches every ready source of the chain, and blocks each one while it
 * is dispatched: the socket's descriptor leaves the poll set and comes back,
 * and every such change writes to the main context's wakeup eventfd, which
 * in turn costs one more main-loop iteration. That was eight eventfd writes
 * per relayed chunk.
 *
 * The relay reads until a read would block, so once it waits, every filter
 * stream above the socket has handed out all it could: only new bytes on
 * the socket can make the body readable again. The watch therefore polls the
 * innermost stream under the filter streams: the socket's descriptor itself
 * when that stream is descriptor-based (plain HTTP), or else that stream's
 * own pollable source (TLS keeps decrypted bytes of its own, HTTP/2 bodies
 * are fed by their connection). Cancelling wakes the watch as well.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include <gio/gfiledescriptorbased.h>

#include "kp-upstream-watch.h"

typedef struct
{
  GSource  source;
  gboolean flat;
} KpUpstreamWatch;

static gboolean
watch_dispatch (GSource     *source,
                GSourceFunc  callback,
                gpointer     user_data)
{
  /* Only kp_upstream_watch_again() sets a ready time; clear it once. */
  if (g_source_get_ready_time (source) != -1)
    g_source_set_ready_time (source, -1);

  if (callback == NULL)
    return G_SOURCE_REMOVE;

  return callback (user_data);
}

static GSourceFuncs watch_funcs = { NULL, NULL, watch_dispatch, NULL, NULL, NULL };

/* The stream under all filter streams that can still be polled. */
static GPollableInputStream *
innermost (GPollableInputStream *stream)
{
  GInputStream *current = G_INPUT_STREAM (stream);

  while (G_IS_FILTER_INPUT_STREAM (current))
    {
      GInputStream *base = g_filter_input_stream_get_base_stream (G_FILTER_INPUT_STREAM (current));

      if (!G_IS_POLLABLE_INPUT_STREAM (base) ||
          !g_pollable_input_stream_can_poll (G_POLLABLE_INPUT_STREAM (base)))
        break;
      current = base;
    }

  return G_POLLABLE_INPUT_STREAM (current);
}

static void
add_child (GSource *parent,
           GSource *child)
{
  g_source_set_dummy_callback (child);
  g_source_add_child_source (parent, child);
  g_source_unref (child);
}

/**
 * kp_upstream_watch_new:
 * @stream: a body stream that the caller reads until it would block
 * @flat: poll the innermost stream; %FALSE polls @stream as it is
 * @cancellable: (nullable): wakes the watch when cancelled
 *
 * Returns: (transfer full): an unattached source; its callback is a plain
 *   #GSourceFunc. It is never blocked while dispatched (the relay runs no
 *   nested main loop), so dispatching it leaves the poll set alone.
 */
GSource *
kp_upstream_watch_new (GPollableInputStream *stream,
                       gboolean              flat,
                       GCancellable         *cancellable)
{
  GPollableInputStream *inner = flat ? innermost (stream) : stream;
  GSource *source = g_source_new (&watch_funcs, sizeof (KpUpstreamWatch));
  KpUpstreamWatch *watch = (KpUpstreamWatch *)(gpointer)source;

  if (flat && G_IS_FILE_DESCRIPTOR_BASED (inner))
    {
      watch->flat = TRUE;
      g_source_add_unix_fd (source, g_file_descriptor_based_get_fd (G_FILE_DESCRIPTOR_BASED (inner)),
                            G_IO_IN | G_IO_HUP | G_IO_ERR);
    }
  else
    {
      watch->flat = inner != stream;
      add_child (source, g_pollable_input_stream_create_source (inner, NULL));
    }

  if (cancellable != NULL)
    add_child (source, g_cancellable_source_new (cancellable));

  kp_source_set_unblocked (source);
  return source;
}

/* Whether the watch polls under @stream's filter streams. */
gboolean
kp_upstream_watch_is_flat (GSource *watch)
{
  return ((KpUpstreamWatch *)(gpointer)watch)->flat;
}

/* The reader stopped before the stream would block: call again soon, even if
 * no new byte reaches the socket.
 */
void
kp_upstream_watch_again (GSource *watch)
{
  g_source_set_ready_time (watch, 0);
}

/* GLib blocks a source while it dispatches it, taking its descriptors (and
 * those of its child sources) out of the poll set and putting them back,
 * with a wakeup eventfd write for each. A source whose callback never runs a
 * nested main loop can skip that.
 */
void
kp_source_set_unblocked (GSource *source)
{
  g_source_set_can_recurse (source, TRUE);
}
