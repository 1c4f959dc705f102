/* kp-mock-catalog.c: providers' model lists, credits and balances for tests
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include "config.h"

#include <string.h>

#include "kp-mock-catalog.h"

struct _KpMockCatalog
{
  SoupServer *server;
  char       *url;
  GHashTable *paths;    /* path → Path */
  GList      *delayed;  /* of Delayed, still waiting */
};

typedef struct
{
  guint  status;
  char  *body;
  guint  delay_ms;
  guint  requests;
  guint  in_flight;
  guint  max_in_flight;
  char  *last_auth;
  GHashTable *by_auth;   /* Authorization value → body answered to it */
} Path;

typedef struct
{
  KpMockCatalog     *mock;
  SoupServerMessage *msg;
  Path              *path;
  guint              timeout_id;
} Delayed;

static void
path_free (Path *path)
{
  g_free (path->body);
  g_free (path->last_auth);
  g_clear_pointer (&path->by_auth, g_hash_table_unref);
  g_free (path);
}

static Path *
ensure_path (KpMockCatalog *self,
             const char    *name)
{
  Path *path = g_hash_table_lookup (self->paths, name);

  if (path == NULL)
    {
      path = g_new0 (Path, 1);
      path->status = 404;
      g_hash_table_insert (self->paths, g_strdup (name), path);
    }
  return path;
}

static void
respond (SoupServerMessage *msg,
         Path              *path)
{
  const char *auth = soup_message_headers_get_one (soup_server_message_get_request_headers (msg),
                                                   "Authorization");
  const char *own = path->by_auth && auth ? g_hash_table_lookup (path->by_auth, auth) : NULL;
  const char *body = own ? own
                         : path->body ? path->body : "{\"error\":{\"message\":\"mock: nothing here\"}}";

  soup_server_message_set_status (msg, own ? 200 : path->status, NULL);
  soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_COPY, body, strlen (body));
}

static void
delayed_free (Delayed *delayed)
{
  g_clear_handle_id (&delayed->timeout_id, g_source_remove);
  g_object_unref (delayed->msg);
  g_free (delayed);
}

static gboolean
on_delay_over (gpointer user_data)
{
  Delayed *delayed = user_data;

  delayed->timeout_id = 0;
  respond (delayed->msg, delayed->path);
  soup_server_message_unpause (delayed->msg);
  return G_SOURCE_REMOVE;
}

/* Answered or given up by the client: either way, no longer in flight. */
static void
on_finished (SoupServerMessage *msg,
             gpointer           user_data)
{
  KpMockCatalog *self = user_data;
  Path *path = g_object_get_data (G_OBJECT (msg), "mock-path");

  if (path != NULL && path->in_flight > 0)
    path->in_flight--;

  for (GList *l = self->delayed; l != NULL; l = l->next)
    {
      Delayed *delayed = l->data;

      if (delayed->msg == msg)
        {
          self->delayed = g_list_delete_link (self->delayed, l);
          delayed_free (delayed);
          break;
        }
    }
}

static void
handler (SoupServer        *server,
         SoupServerMessage *msg,
         const char        *name,
         GHashTable        *query,
         gpointer           user_data)
{
  KpMockCatalog *self = user_data;
  Path *path = ensure_path (self, name);
  SoupMessageHeaders *headers = soup_server_message_get_request_headers (msg);

  path->requests++;
  path->in_flight++;
  path->max_in_flight = MAX (path->max_in_flight, path->in_flight);
  g_free (path->last_auth);
  path->last_auth = g_strdup (soup_message_headers_get_one (headers, "Authorization"));
  g_object_set_data (G_OBJECT (msg), "mock-path", path);
  g_signal_connect (msg, "finished", G_CALLBACK (on_finished), self);

  if (path->delay_ms == 0)
    {
      respond (msg, path);
      return;
    }

  {
    Delayed *delayed = g_new0 (Delayed, 1);

    delayed->mock = self;
    delayed->msg = g_object_ref (msg);
    delayed->path = path;
    delayed->timeout_id = g_timeout_add (path->delay_ms, on_delay_over, delayed);
    self->delayed = g_list_prepend (self->delayed, delayed);
    soup_server_message_pause (msg);
  }
}

/* Answers every request to @path that waits for its delay, now. */
void
kp_mock_catalog_release (KpMockCatalog *self,
                         const char    *path)
{
  Path *held = g_hash_table_lookup (self->paths, path);

  for (GList *l = self->delayed; l != NULL; l = l->next)
    {
      Delayed *delayed = l->data;

      if (delayed->timeout_id == 0 || delayed->path != held)
        continue;
      g_clear_handle_id (&delayed->timeout_id, g_source_remove);
      respond (delayed->msg, delayed->path);
      soup_server_message_unpause (delayed->msg);
    }
}

KpMockCatalog *
kp_mock_catalog_new (GError **error)
{
  KpMockCatalog *self = g_new0 (KpMockCatalog, 1);
  GSList *uris;

  self->paths = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify)path_free);
  self->server = soup_server_new (NULL, NULL);
  soup_server_add_handler (self->server, NULL, handler, self, NULL);
  if (!soup_server_listen_local (self->server, 0, SOUP_SERVER_LISTEN_IPV4_ONLY, error))
    {
      kp_mock_catalog_free (self);
      return NULL;
    }

  uris = soup_server_get_uris (self->server);
  self->url = g_strdup_printf ("http://127.0.0.1:%d", g_uri_get_port (uris->data));
  g_slist_free_full (uris, (GDestroyNotify)g_uri_unref);
  return self;
}

void
kp_mock_catalog_free (KpMockCatalog *self)
{
  if (self == NULL)
    return;
  g_list_free_full (g_steal_pointer (&self->delayed), (GDestroyNotify)delayed_free);
  if (self->server != NULL)
    soup_server_disconnect (self->server);
  g_clear_object (&self->server);
  g_clear_pointer (&self->paths, g_hash_table_unref);
  g_free (self->url);
  g_free (self);
}

/* The base for the paths, without a trailing slash. */
const char *
kp_mock_catalog_get_url (KpMockCatalog *self)
{
  return self->url;
}

/**
 * kp_mock_catalog_set:
 *
 * Answers GET @path with @status and @body, @delay_ms after the request.
 */
void
kp_mock_catalog_set (KpMockCatalog *self,
                     const char    *name,
                     guint          status,
                     const char    *body,
                     guint          delay_ms)
{
  Path *path = ensure_path (self, name);

  path->status = status;
  g_free (path->body);
  path->body = g_strdup (body);
  path->delay_ms = delay_ms;
}

guint
kp_mock_catalog_get_requests (KpMockCatalog *self,
                              const char    *name)
{
  Path *path = g_hash_table_lookup (self->paths, name);

  return path ? path->requests : 0;
}

guint
kp_mock_catalog_get_in_flight (KpMockCatalog *self,
                               const char    *name)
{
  Path *path = g_hash_table_lookup (self->paths, name);

  return path ? path->in_flight : 0;
}

guint
kp_mock_catalog_get_max_in_flight (KpMockCatalog *self,
                                   const char    *name)
{
  Path *path = g_hash_table_lookup (self->paths, name);

  return path ? path->max_in_flight : 0;
}

/* Compared here, so that a test never prints a key. */
gboolean
kp_mock_catalog_last_auth_is (KpMockCatalog *self,
                              const char    *name,
                              const char    *expected)
{
  Path *path = g_hash_table_lookup (self->paths, name);

  return path != NULL && g_strcmp0 (path->last_auth, expected) == 0;
}

/**
 * kp_mock_catalog_set_for_key:
 * @auth: an Authorization header value
 *
 * Answers requests for @path that carry @auth with 200 and @body, whatever
 * kp_mock_catalog_set() said for the others: one account per key.
 */
void
kp_mock_catalog_set_for_key (KpMockCatalog *self,
                             const char    *name,
                             const char    *auth,
                             const char    *body)
{
  Path *path = ensure_path (self, name);

  if (path->by_auth == NULL)
    path->by_auth = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  g_hash_table_replace (path->by_auth, g_strdup (auth), g_strdup (body));
}
