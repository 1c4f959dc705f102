/* kp-gateway-limits.c: the gateway's upstream sessions and its bounds
 *
 * Part of KpGateway: the connection pools relays reach providers through
 * (http/kp-http1-pool.c), the libsoup sessions of the other requests to
 * providers and OAuth servers, and the limits the server and the relay
 * read: body limits, timeouts, read caps, the client limits and allowed
 * origins.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include "kp-gateway-internal.h"

void
kp_gateway_set_body_limit (KpGateway *self,
                           gsize      limit)
{
  g_return_if_fail (KP_IS_GATEWAY (self));
  g_return_if_fail (limit > 0);

  self->body_limit = limit;
}

/**
 * kp_gateway_set_timeouts:
 *
 * Upstream timeouts in milliseconds; 0 turns one off. Before the first byte
 * reached the client each ends the attempt; after, it ends the stream.
 */
void
kp_gateway_set_timeouts (KpGateway *self,
                         guint      connect_ms,
                         guint      first_byte_ms,
                         guint      idle_ms)
{
  g_return_if_fail (KP_IS_GATEWAY (self));

  self->connect_ms = connect_ms;
  self->first_byte_ms = first_byte_ms;
  self->idle_ms = idle_ms;
}

/**
 * kp_gateway_set_client_limits:
 *
 * What the local server allows its clients; takes effect at once.
 */
void
kp_gateway_set_client_limits (KpGateway            *self,
                              const KpClientLimits *limits)
{
  g_return_if_fail (KP_IS_GATEWAY (self));
  g_return_if_fail (limits != NULL && limits->max_connections > 0);

  self->client_limits = *limits;
}

void
kp_gateway_set_allowed_origins (KpGateway          *self,
                                const char * const *origins)
{
  g_return_if_fail (KP_IS_GATEWAY (self));

  g_strfreev (self->allowed_origins);
  self->allowed_origins = origins ? g_strdupv ((char **)origins) : g_new0 (char *, 1);
}

/* Sessions ---------------------------------------------------------------- */

/**
 * kp_gateway_get_auth_session:
 *
 * Returns: (transfer none): the session for OAuth token endpoints and
 *   account setup: small requests, a short timeout
 */
SoupSession *
kp_gateway_get_auth_session (KpGateway *self)
{
  g_return_val_if_fail (KP_IS_GATEWAY (self), NULL);

  if (self->auth_session == NULL)
    self->auth_session = soup_session_new_with_options ("timeout", 30,
                                                        "user-agent", "Keypool/" PACKAGE_VERSION,
                                                        NULL);
  return self->auth_session;
}

SoupSession *
kp_gateway_get_session (KpGateway *self)
{
  g_return_val_if_fail (KP_IS_GATEWAY (self), NULL);
  return self->session;
}

static gboolean
uri_is_loopback (GUri *uri)
{
  g_autoptr(GInetAddress) address = NULL;
  const char *host = g_uri_get_host (uri);

  if (host == NULL)
    return FALSE;
  if (g_ascii_strcasecmp (host, "localhost") == 0)
    return TRUE;
  address = g_inet_address_new_from_string (host);
  return address != NULL && g_inet_address_get_is_loopback (address);
}

/**
 * kp_gateway_get_session_for:
 * @uri: the upstream request's URI
 *
 * A provider on this machine (a local model server, a test's mock) needs no
 * proxy. Its requests go through a session of their own without a proxy
 * resolver, with the same limits: libsoup then never asks GIO's default
 * resolver, which loads libproxy and GNOME's proxy settings (GSettings,
 * dconf and their threads, about 2.5 MB) and looks each new connection up
 * in a worker thread.
 *
 * Returns: (transfer none) (nullable): the session for @uri, or %NULL as
 *   kp_gateway_get_session()
 */
SoupSession *
kp_gateway_get_session_for (KpGateway *self,
                            GUri      *uri)
{
  guint timeout_s = 0;
  guint idle_s = 0;

  g_return_val_if_fail (KP_IS_GATEWAY (self), NULL);

  if (self->session == NULL || uri == NULL || !uri_is_loopback (uri))
    return self->session;

  if (self->local_session == NULL)
    {
      g_object_get (self->session, "timeout", &timeout_s, "idle-timeout", &idle_s, NULL);
      self->local_session = soup_session_new_with_options ("max-conns", MAX (MAX_CONNS, self->conns_per_host),
                                                           "max-conns-per-host", self->conns_per_host,
                                                           "timeout", timeout_s,
                                                           "idle-timeout", idle_s,
                                                           "user-agent", "Keypool/" PACKAGE_VERSION,
                                                           "proxy-resolver", NULL,
                                                           NULL);
    }
  return self->local_session;
}

/**
 * kp_gateway_get_pool_for:
 * @uri: the upstream request's URI
 *
 * The pool of connections a relay's request to @uri goes through. As for
 * the sessions, a provider on this machine gets a pool of its own that
 * never asks GLib's proxy resolver; both allow the same connections per
 * provider (requests beyond wait in order).
 *
 * Returns: (transfer none): the pool for @uri
 */
KpHttp1Pool *
kp_gateway_get_pool_for (KpGateway *self,
                         GUri      *uri)
{
  g_return_val_if_fail (KP_IS_GATEWAY (self), NULL);
  g_return_val_if_fail (uri != NULL, NULL);

  if (uri_is_loopback (uri))
    {
      if (self->local_relay_pool == NULL)
        self->local_relay_pool = kp_http1_pool_new (self->conns_per_host, FALSE);
      return self->local_relay_pool;
    }
  if (self->relay_pool == NULL)
    self->relay_pool = kp_http1_pool_new (self->conns_per_host, TRUE);
  return self->relay_pool;
}

/**
 * kp_gateway_ensure_session:
 * @timeout_s: the session's timeout, if it must be made now
 *
 * Returns: (transfer none): the upstream session; before Keypool serves,
 *   one made for a key check
 */
SoupSession *
kp_gateway_ensure_session (KpGateway *self,
                           guint      timeout_s)
{
  g_return_val_if_fail (KP_IS_GATEWAY (self), NULL);

  if (self->session == NULL)
    self->session = soup_session_new_with_options ("timeout", timeout_s,
                                                   "max-conns", MAX (MAX_CONNS, self->conns_per_host),
                                                   "max-conns-per-host", self->conns_per_host,
                                                   "user-agent", "Keypool/" PACKAGE_VERSION,
                                                   NULL);
  return self->session;
}

/* Bounds ------------------------------------------------------------------ */

gsize
kp_gateway_get_body_limit (KpGateway *self)
{
  return self->body_limit;
}

/**
 * kp_gateway_set_upstream_conns:
 * @per_host: how many connections to one provider at once
 *
 * Before kp_gateway_listen(); tests lower it to fill the pool.
 */
void
kp_gateway_set_upstream_conns (KpGateway *self,
                               guint      per_host)
{
  g_return_if_fail (KP_IS_GATEWAY (self));
  g_return_if_fail (self->session == NULL);
  g_return_if_fail (per_host > 0);

  self->conns_per_host = per_host;
}

guint
kp_gateway_get_upstream_conns (KpGateway *self)
{
  g_return_val_if_fail (KP_IS_GATEWAY (self), 0);
  return self->conns_per_host;
}

/**
 * kp_gateway_get_read_caps:
 * @body_cap: (out) (optional): the largest whole answer read from a provider
 * @event_cap: (out) (optional): the largest stream event
 * @list_cap: (out) (optional): the largest model list or balance answer
 */
void
kp_gateway_get_read_caps (KpGateway *self,
                          gsize     *body_cap,
                          gsize     *event_cap,
                          gsize     *list_cap)
{
  g_return_if_fail (KP_IS_GATEWAY (self));

  if (body_cap != NULL)
    *body_cap = self->body_cap;
  if (event_cap != NULL)
    *event_cap = self->event_cap;
  if (list_cap != NULL)
    *list_cap = self->list_cap;
}

/**
 * kp_gateway_set_read_caps:
 *
 * Bounds every read from a provider; 0 keeps a cap as it is.
 */
void
kp_gateway_set_read_caps (KpGateway *self,
                          gsize      body_cap,
                          gsize      event_cap,
                          gsize      list_cap)
{
  g_return_if_fail (KP_IS_GATEWAY (self));

  if (body_cap > 0)
    self->body_cap = body_cap;
  if (event_cap > 0)
    self->event_cap = event_cap;
  if (list_cap > 0)
    self->list_cap = list_cap;
}

void
kp_gateway_get_timeouts (KpGateway *self,
                         guint     *connect_ms,
                         guint     *first_byte_ms,
                         guint     *idle_ms)
{
  *connect_ms = self->connect_ms;
  *first_byte_ms = self->first_byte_ms;
  *idle_ms = self->idle_ms;
}

const KpClientLimits *
kp_gateway_get_client_limits (KpGateway *self)
{
  return &self->client_limits;
}

gboolean
kp_gateway_origin_allowed (KpGateway  *self,
                           const char *origin)
{
  for (guint i = 0; self->allowed_origins[i] != NULL; i++)
    if (g_ascii_strcasecmp (self->allowed_origins[i], origin) == 0)
      return TRUE;
  return FALSE;
}

