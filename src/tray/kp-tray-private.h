/* kp-tray-private.h: what the rooms of the tray share
 *
 * Only kp-tray.c and kp-tray-*.c include this.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include "kp-tray.h"

G_BEGIN_DECLS

#define ITEM_PATH    "/StatusNotifierItem"
#define MENU_PATH    "/MenuBar"
#define WATCHER_NAME "org.kde.StatusNotifierWatcher"
#define WATCHER_PATH "/StatusNotifierWatcher"

enum {
  ID_ROOT = 0,
  ID_SERVING = 1,
  ID_SPEND = 2,
  ID_SEPARATOR_1 = 3,
  ID_SEPARATOR_2 = 4,
  ID_OPEN = 5,
  ID_QUIT = 6,
  ID_PROBLEM = 7,
  ID_BUDGET = 8,
  ID_PROVIDERS = 100,   /* + the provider's index in the catalog */
};

typedef struct
{
  int       id;
  GVariant *props;      /* a{sv}, only what differs from the defaults */
} Item;

struct _KpTray
{
  GObject          parent_instance;

  GDBusConnection *connection;
  KpGateway       *gateway;
  GDBusNodeInfo   *item_info;
  GDBusNodeInfo   *menu_info;
  guint            item_id;
  guint            menu_id;
  guint            watch_id;
  guint            refresh_id;
  gboolean         registered;

  /* Today's spend, added up on a worker thread (see read_today()). */
  GCancellable    *cancellable;
  gboolean         reading_today;
  gboolean         read_today_again;
  gint64           today_cost;
  gint64           today_unknown;

  GArray          *items;       /* of Item, the root's children in order */
  guint            revision;
  char            *status;      /* "Active" or "NeedsAttention" */
  char            *tooltip;
};

/* kp-tray.c */
void kp_tray_emit          (KpTray     *self,
                            const char *path,
                            const char *interface,
                            const char *name,
                            GVariant   *parameters);
void kp_tray_emit_activate (KpTray     *self);
void kp_tray_emit_quit     (KpTray     *self);

/* kp-tray-menu.c */
extern const char                 kp_tray_menu_xml[];
extern const GDBusInterfaceVTable kp_tray_menu_vtable;

void kp_tray_update        (KpTray     *self);

G_END_DECLS
