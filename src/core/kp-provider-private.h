/* kp-provider-private.h: what the rooms of the provider share
 *
 * Only kp-provider.c and kp-provider-*.c include this.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include "kp-provider.h"

G_BEGIN_DECLS

struct _KpProvider
{
  GObject     parent_instance;

  char       *id;
  char       *name;
  char       *wire;          /* the wire of its chat API: "openai-chat", "anthropic", … */
  char       *base_url;
  char       *origin;        /* the file it came from, for messages */
  GUri       *chat_uri;
  GHashTable *apis;          /* wire id -> GUri: every API it serves, the chat one included */
  KpAuthKind  auth_kind;
  char       *auth_header;
  char       *auth_prefix;
  GStrv       env;
  GStrv       header_names;
  GStrv       header_values;
  gboolean    requires_key;
  gboolean    check_with_chat;  /* no model list: check keys with a tiny chat */
  char       *prices_checked;
  char       *models_endpoint;   /* a path under base_url or a URL; NULL = "/models" */
  char       *models_prefix;     /* put before each name in the list, not in requests */
  gboolean    models_need_key;
  gboolean    models_list_adds; /* the live list adds to the file's models */
  KpPriceFormat price_format;
  char       *balance_endpoint;
  KpBalanceFormat balance_format;
  KpOAuthClient *oauth;      /* its keys are OAuth refresh tokens; NULL = API keys */
  gboolean    subscription;  /* its accounts' quota is paid already: $0 at the margin */
  GArray     *offerings;     /* of KpOffering */
};

G_END_DECLS
