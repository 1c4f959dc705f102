/* kp-auth.h: how a credential becomes request headers
 *
 * A credential's auth kind decides what is sent to the provider: a static
 * key is sent as it is; an OAuth refresh token is exchanged for short-lived
 * access tokens, and the current one is sent. The relay asks the route's auth
 * for its token and never needs to know which kind it is. When the provider
 * refuses a token, the relay asks the auth for a new one
 * (kp_auth_refresh_async()) and sends the same request once more.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <glib-object.h>
#include <libsoup/soup.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

typedef enum
{
  KP_AUTH_KIND_STATIC,  /* an API key, sent as it is */
  KP_AUTH_KIND_OAUTH,   /* an OAuth refresh token, sent as access tokens */
} KpAuthKindId;

#define KP_TYPE_AUTH (kp_auth_get_type ())

G_DECLARE_INTERFACE (KpAuth, kp_auth, KP, AUTH, GObject)

struct _KpAuthInterface
{
  GTypeInterface parent_iface;

  KpAuthKindId  (*get_kind)   (KpAuth     *self);
  /* What the keyring keeps: the key, or the refresh token. */
  const char   *(*get_secret) (KpAuth     *self);
  void          (*set_secret) (KpAuth     *self,
                               const char *secret);
  /* What to send now, or NULL while there is nothing valid to send. */
  const char   *(*get_token)  (KpAuth     *self);
  /* The provider refused what was sent (HTTP 401) and the request gave up
   * on it. TRUE: the auth recovers by itself (a refresh is under way), the
   * credential stays usable.
   */
  gboolean      (*rejected)   (KpAuth     *self);
  /* The provider served a request with what was sent. */
  void          (*accepted)   (KpAuth     *self);
  /* What the login knows of its account that requests must name (Kiro's
   * profileArn), or NULL.
   */
  JsonObject   *(*get_account) (KpAuth    *self);
  /* Whether a refused token can be replaced at once (an OAuth refresh):
   * NULL or FALSE for a static key.
   */
  gboolean      (*can_refresh) (KpAuth    *self);
  /* Which token get_token() gives: it changes with each new token. */
  guint         (*get_serial)  (KpAuth    *self);
  /* The token of @refused_serial was refused: get a new one now (once for
   * all who ask while it is under way), or say at once that a newer one is
   * there. The task it completes is made with g_task_new (self, ...) and
   * returns a boolean.
   */
  void          (*refresh_async) (KpAuth              *self,
                                  guint                refused_serial,
                                  GCancellable        *cancellable,
                                  GAsyncReadyCallback  callback,
                                  gpointer             user_data);
};

KpAuthKindId  kp_auth_get_kind             (KpAuth       *self);
const char   *kp_auth_get_secret           (KpAuth       *self);
void          kp_auth_set_secret           (KpAuth       *self,
                                            const char   *secret);
const char   *kp_auth_get_token            (KpAuth       *self);
gboolean      kp_auth_rejected             (KpAuth       *self);
void          kp_auth_accepted             (KpAuth       *self);
JsonObject   *kp_auth_get_account          (KpAuth       *self);
const char   *kp_auth_kind_to_string       (KpAuthKindId  kind);
gboolean      kp_auth_can_refresh          (KpAuth       *self);
guint         kp_auth_get_serial           (KpAuth       *self);
void          kp_auth_refresh_async        (KpAuth              *self,
                                            guint                refused_serial,
                                            GCancellable        *cancellable,
                                            GAsyncReadyCallback  callback,
                                            gpointer             user_data);
gboolean      kp_auth_refresh_finish       (KpAuth              *self,
                                            GAsyncResult        *result,
                                            GError             **error);

/* For the auths that refresh: the tasks waiting for the refresh under way.
 * A waiter whose cancellable is cancelled is answered at once (it stops
 * waiting; the refresh goes on for the others).
 */
typedef struct
{
  GPtrArray *tasks;
} KpAuthWaiters;

void          kp_auth_waiters_init         (KpAuthWaiters       *waiters);
void          kp_auth_waiters_add          (KpAuthWaiters       *waiters,
                                            GTask               *task);
void          kp_auth_waiters_finish       (KpAuthWaiters       *waiters,
                                            const GError        *error);
void          kp_auth_waiters_clear        (KpAuthWaiters       *waiters);

G_END_DECLS
