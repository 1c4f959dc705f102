/* kp-auth.h: how a credential becomes request headers
 *
 * A credential's auth kind decides what is sent to the provider: a static
 * key is sent as it is; an OAuth refresh token is exchanged for short-lived
 * access tokens, and the current one is sent. The relay asks the route's auth
 * for its token and never needs to know which kind it is.
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
  /* The provider refused what was sent (HTTP 401). TRUE: the auth recovers
   * by itself (a refresh is under way), the credential stays usable.
   */
  gboolean      (*rejected)   (KpAuth     *self);
  /* The provider served a request with what was sent. */
  void          (*accepted)   (KpAuth     *self);
  /* What the login knows of its account that requests must name (Kiro's
   * profileArn), or NULL.
   */
  JsonObject   *(*get_account) (KpAuth    *self);
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

G_END_DECLS
