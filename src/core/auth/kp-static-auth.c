/* kp-static-auth.c: an API key, sent as it is
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include <string.h>

#include "kp-static-auth.h"

struct _KpStaticAuth
{
  GObject  parent_instance;

  char    *secret;  /* wiped when dropped */
};

static void kp_static_auth_iface_init (KpAuthInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (KpStaticAuth, kp_static_auth, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (KP_TYPE_AUTH, kp_static_auth_iface_init))

static void
wipe (char **secret)
{
  if (*secret != NULL)
    {
      explicit_bzero (*secret, strlen (*secret));
      g_clear_pointer (secret, g_free);
    }
}

static void
kp_static_auth_finalize (GObject *object)
{
  KpStaticAuth *self = (KpStaticAuth *)object;

  wipe (&self->secret);
  G_OBJECT_CLASS (kp_static_auth_parent_class)->finalize (object);
}

static void
kp_static_auth_class_init (KpStaticAuthClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = kp_static_auth_finalize;
}

static void
kp_static_auth_init (KpStaticAuth *self)
{
}

static KpAuthKindId
static_get_kind (KpAuth *auth)
{
  return KP_AUTH_KIND_STATIC;
}

static const char *
static_get_secret (KpAuth *auth)
{
  return KP_STATIC_AUTH (auth)->secret;
}

static void
static_set_secret (KpAuth     *auth,
                   const char *secret)
{
  KpStaticAuth *self = KP_STATIC_AUTH (auth);

  wipe (&self->secret);
  self->secret = g_strdup (secret);
}

static void
kp_static_auth_iface_init (KpAuthInterface *iface)
{
  iface->get_kind = static_get_kind;
  iface->get_secret = static_get_secret;
  iface->set_secret = static_set_secret;
  /* The key is what is sent. */
  iface->get_token = static_get_secret;
}

KpAuth *
kp_static_auth_new (const char *secret)
{
  KpStaticAuth *self = g_object_new (KP_TYPE_STATIC_AUTH, NULL);

  self->secret = g_strdup (secret);
  return KP_AUTH (self);
}
