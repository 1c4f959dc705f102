/* kp-tray.c: Keypool's tray icon and menu (StatusNotifierItem + dbusmenu)
 *
 * GTK 4 has no tray. Panels draw tray icons from two D-Bus objects that the
 * application exports itself: an org.kde.StatusNotifierItem (icon, status,
 * tooltip) and a com.canonical.dbusmenu tree (the menu). Hosts differ in
 * which calls they use (Event or EventGroup, AboutToShow or
 * AboutToShowGroup), so all of them are answered, and every declared
 * property returns a value of its declared type.
 *
 * This file is the object, the StatusNotifierItem, registration with the
 * host and when the tray is brought up to date (today's spend is added up
 * on a worker thread). What the tray shows, and the menu's D-Bus object,
 * are in kp-tray-menu.c.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include <glib/gi18n.h>

#include "kp-tray-private.h"

enum {
  ACTIVATE,
  QUIT,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

G_DEFINE_TYPE (KpTray, kp_tray, G_TYPE_OBJECT)

static const char item_xml[] =
  "<node>"
  " <interface name='org.kde.StatusNotifierItem'>"
  "  <property name='Category' type='s' access='read'/>"
  "  <property name='Id' type='s' access='read'/>"
  "  <property name='Title' type='s' access='read'/>"
  "  <property name='Status' type='s' access='read'/>"
  "  <property name='WindowId' type='i' access='read'/>"
  "  <property name='IconName' type='s' access='read'/>"
  "  <property name='IconThemePath' type='s' access='read'/>"
  "  <property name='AttentionIconName' type='s' access='read'/>"
  "  <property name='OverlayIconName' type='s' access='read'/>"
  "  <property name='ItemIsMenu' type='b' access='read'/>"
  "  <property name='Menu' type='o' access='read'/>"
  "  <property name='ToolTip' type='(sa(iiay)ss)' access='read'/>"
  "  <method name='ContextMenu'><arg name='x' type='i' direction='in'/>"
  "   <arg name='y' type='i' direction='in'/></method>"
  "  <method name='Activate'><arg name='x' type='i' direction='in'/>"
  "   <arg name='y' type='i' direction='in'/></method>"
  "  <method name='SecondaryActivate'><arg name='x' type='i' direction='in'/>"
  "   <arg name='y' type='i' direction='in'/></method>"
  "  <method name='Scroll'><arg name='delta' type='i' direction='in'/>"
  "   <arg name='orientation' type='s' direction='in'/></method>"
  "  <method name='ProvideXdgActivationToken'><arg name='token' type='s' direction='in'/></method>"
  "  <signal name='NewTitle'/>"
  "  <signal name='NewIcon'/>"
  "  <signal name='NewAttentionIcon'/>"
  "  <signal name='NewOverlayIcon'/>"
  "  <signal name='NewToolTip'/>"
  "  <signal name='NewStatus'><arg name='status' type='s'/></signal>"
  " </interface>"
  "</node>";

static gint64
start_of_today_ms (void)
{
  g_autoptr(GDateTime) now = g_date_time_new_now_local ();
  g_autoptr(GDateTime) midnight = g_date_time_new_local (g_date_time_get_year (now),
                                                         g_date_time_get_month (now),
                                                         g_date_time_get_day_of_month (now),
                                                         0, 0, 0);

  return g_date_time_to_unix (midnight) * 1000;
}

/* From the last sums read_today() got. */
void
kp_tray_emit (KpTray     *self,
              const char *path,
              const char *interface,
              const char *name,
              GVariant   *parameters)
{
  g_autoptr(GError) error = NULL;

  if (!g_dbus_connection_emit_signal (self->connection, NULL, path, interface, name,
                                      parameters, &error))
    g_debug ("Tray: cannot emit %s: %s", name, error->message);
}


void
kp_tray_emit_activate (KpTray *self)
{
  g_signal_emit (self, signals[ACTIVATE], 0);
}

void
kp_tray_emit_quit (KpTray *self)
{
  g_signal_emit (self, signals[QUIT], 0);
}

/* Bringing the tray up to date --------------------------------------------- */

static void read_today (KpTray *self);

static void
on_today_read (GObject      *object,
               GAsyncResult *result,
               gpointer      user_data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) rows = kp_ledger_spend_finish (KP_LEDGER (object), result, &error);
  KpTray *self = user_data;

  /* Cancelled when the tray went away: @self is no more. */
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;

  self->reading_today = FALSE;
  if (rows == NULL)
    g_debug ("Tray: cannot add up today’s spend: %s", error->message);
  else
    {
      self->today_cost = 0;
      self->today_unknown = 0;
      for (guint i = 0; i < rows->len; i++)
        {
          KpSpendRow *row = g_ptr_array_index (rows, i);

          self->today_cost += row->cost_nano;
          self->today_unknown += row->unknown_cost;
        }
      kp_tray_update (self);
    }

  if (self->read_today_again)
    {
      self->read_today_again = FALSE;
      read_today (self);
    }
}

/* Today's spend is added up on a worker thread, never on the loop that
 * serves; one read at a time, and one more if asked meanwhile.
 */
static void
read_today (KpTray *self)
{
  KpLedger *ledger = kp_gateway_get_ledger (self->gateway);

  if (ledger == NULL)
    return;
  if (self->reading_today)
    {
      self->read_today_again = TRUE;
      return;
    }
  self->reading_today = TRUE;
  kp_ledger_spend_async (ledger, start_of_today_ms (), KP_SPEND_BY_PROVIDER, self->cancellable,
                         on_today_read, self);
}

/**
 * kp_tray_refresh:
 *
 * Brings the menu, status and tooltip up to date and tells the host what
 * changed; today's spend follows once it is added up.
 */
void
kp_tray_refresh (KpTray *self)
{
  g_return_if_fail (KP_IS_TRAY (self));

  kp_tray_update (self);
  read_today (self);
}

static gboolean
refresh_later_cb (gpointer user_data)
{
  KpTray *self = user_data;

  self->refresh_id = 0;
  kp_tray_refresh (self);
  return G_SOURCE_REMOVE;
}

/* Requests finish often; the menu is brought up to date at most four times
 * a second.
 */
static void
refresh_later (KpTray *self)
{
  if (self->refresh_id == 0)
    self->refresh_id = g_timeout_add (250, refresh_later_cb, self);
}

/* org.kde.StatusNotifierItem ---------------------------------------------- */

static GVariant *
item_get_property (GDBusConnection  *connection,
                   const char       *sender,
                   const char       *object_path,
                   const char       *interface_name,
                   const char       *property_name,
                   GError          **error,
                   gpointer          user_data)
{
  KpTray *self = user_data;

  if (g_str_equal (property_name, "Category"))
    return g_variant_new_string ("ApplicationStatus");
  if (g_str_equal (property_name, "Id"))
    return g_variant_new_string ("keypool");
  if (g_str_equal (property_name, "Title"))
    return g_variant_new_string ("Keypool");
  if (g_str_equal (property_name, "Status"))
    return g_variant_new_string (self->status);
  if (g_str_equal (property_name, "WindowId"))
    return g_variant_new_int32 (0);
  if (g_str_equal (property_name, "IconName"))
    return g_variant_new_string (APPLICATION_ID);
  if (g_str_equal (property_name, "IconThemePath") || g_str_equal (property_name, "OverlayIconName"))
    return g_variant_new_string ("");
  if (g_str_equal (property_name, "AttentionIconName"))
    return g_variant_new_string ("dialog-warning");
  if (g_str_equal (property_name, "ItemIsMenu"))
    return g_variant_new_boolean (FALSE);
  if (g_str_equal (property_name, "Menu"))
    return g_variant_new_object_path (MENU_PATH);
  if (g_str_equal (property_name, "ToolTip"))
    return g_variant_new ("(sa(iiay)ss)", APPLICATION_ID, NULL, "Keypool", self->tooltip);

  g_set_error (error, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_PROPERTY, "No property %s", property_name);
  return NULL;
}

static void
item_method_call (GDBusConnection       *connection,
                  const char            *sender,
                  const char            *object_path,
                  const char            *interface_name,
                  const char            *method_name,
                  GVariant              *parameters,
                  GDBusMethodInvocation *invocation,
                  gpointer               user_data)
{
  KpTray *self = user_data;

  /* A click on the icon opens the window; the menu has the rest. */
  if (g_str_equal (method_name, "Activate") || g_str_equal (method_name, "SecondaryActivate"))
    g_signal_emit (self, signals[ACTIVATE], 0);

  g_dbus_method_invocation_return_value (invocation, NULL);
}

static const GDBusInterfaceVTable item_vtable = { item_method_call, item_get_property, NULL, { 0 } };

/* Registration ----------------------------------------------------------- */

static void
on_registered (GObject      *object,
               GAsyncResult *result,
               gpointer      user_data)
{
  g_autoptr(KpTray) self = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;

  reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (object), result, &error);
  if (reply == NULL)
    {
      g_debug ("Tray: the watcher refused the item: %s", error->message);
      return;
    }
  self->registered = TRUE;
  g_debug ("Tray: registered with the watcher");
}

/* A watcher appears when a panel with a tray starts, or restarts: register
 * every time. With no watcher there is no tray, and the window is enough.
 */
static void
on_watcher_appeared (GDBusConnection *connection,
                     const char      *name,
                     const char      *owner,
                     gpointer         user_data)
{
  KpTray *self = user_data;

  self->registered = FALSE;
  g_dbus_connection_call (connection, WATCHER_NAME, WATCHER_PATH, WATCHER_NAME,
                          "RegisterStatusNotifierItem",
                          g_variant_new ("(s)", g_dbus_connection_get_unique_name (connection)),
                          NULL, G_DBUS_CALL_FLAGS_NONE, 5000, NULL, on_registered,
                          g_object_ref (self));
}

static void
on_watcher_vanished (GDBusConnection *connection,
                     const char      *name,
                     gpointer         user_data)
{
  KP_TRAY (user_data)->registered = FALSE;
}

/* The object ------------------------------------------------------------------ */

static void
kp_tray_dispose (GObject *object)
{
  KpTray *self = (KpTray *)object;

  g_clear_handle_id (&self->refresh_id, g_source_remove);
  g_cancellable_cancel (self->cancellable);
  g_clear_object (&self->cancellable);
  g_clear_handle_id (&self->watch_id, g_bus_unwatch_name);
  if (self->connection != NULL)
    {
      if (self->item_id != 0)
        g_dbus_connection_unregister_object (self->connection, self->item_id);
      if (self->menu_id != 0)
        g_dbus_connection_unregister_object (self->connection, self->menu_id);
      self->item_id = self->menu_id = 0;
    }
  g_clear_object (&self->gateway);
  g_clear_object (&self->connection);

  G_OBJECT_CLASS (kp_tray_parent_class)->dispose (object);
}

static void
kp_tray_finalize (GObject *object)
{
  KpTray *self = (KpTray *)object;

  g_clear_pointer (&self->item_info, g_dbus_node_info_unref);
  g_clear_pointer (&self->menu_info, g_dbus_node_info_unref);
  g_clear_pointer (&self->items, g_array_unref);
  g_clear_pointer (&self->status, g_free);
  g_clear_pointer (&self->tooltip, g_free);

  G_OBJECT_CLASS (kp_tray_parent_class)->finalize (object);
}

static void
kp_tray_class_init (KpTrayClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = kp_tray_dispose;
  object_class->finalize = kp_tray_finalize;

  /**
   * KpTray::activate:
   *
   * The user asked for the window (a click on the icon, or "Open Keypool").
   */
  signals[ACTIVATE] = g_signal_new ("activate", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                                    0, NULL, NULL, NULL, G_TYPE_NONE, 0);

  /**
   * KpTray::quit:
   *
   * The user chose Quit.
   */
  signals[QUIT] = g_signal_new ("quit", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                                0, NULL, NULL, NULL, G_TYPE_NONE, 0);
}

static void
kp_tray_init (KpTray *self)
{
  self->status = g_strdup ("Active");
  self->tooltip = g_strdup ("");
  self->cancellable = g_cancellable_new ();
}

/**
 * kp_tray_new:
 * @connection: the session bus
 * @gateway: the gateway whose state the tray shows
 * @error: a location for a #GError
 *
 * Exports the item and its menu, and registers with the tray host whenever
 * one is there.
 *
 * Returns: (transfer full): the tray, or %NULL when the objects could not be
 *   exported
 */
KpTray *
kp_tray_new (GDBusConnection  *connection,
             KpGateway        *gateway,
             GError          **error)
{
  g_autoptr(KpTray) self = NULL;

  g_return_val_if_fail (G_IS_DBUS_CONNECTION (connection), NULL);
  g_return_val_if_fail (KP_IS_GATEWAY (gateway), NULL);

  self = g_object_new (KP_TYPE_TRAY, NULL);
  self->connection = g_object_ref (connection);
  self->gateway = g_object_ref (gateway);
  self->item_info = g_dbus_node_info_new_for_xml (item_xml, error);
  self->menu_info = self->item_info ? g_dbus_node_info_new_for_xml (kp_tray_menu_xml, error) : NULL;
  if (self->menu_info == NULL)
    return NULL;

  kp_tray_refresh (self);

  /* The objects first: a host reads them as soon as the item registers. */
  self->item_id = g_dbus_connection_register_object (connection, ITEM_PATH,
                                                     self->item_info->interfaces[0],
                                                     &item_vtable, self, NULL, error);
  if (self->item_id == 0)
    return NULL;
  self->menu_id = g_dbus_connection_register_object (connection, MENU_PATH,
                                                     self->menu_info->interfaces[0],
                                                     &kp_tray_menu_vtable, self, NULL, error);
  if (self->menu_id == 0)
    return NULL;

  g_signal_connect_object (gateway, "changed", G_CALLBACK (refresh_later), self, G_CONNECT_SWAPPED);
  g_signal_connect_object (gateway, "notify::serving", G_CALLBACK (refresh_later), self,
                           G_CONNECT_SWAPPED);
  g_signal_connect_object (gateway, "request-finished", G_CALLBACK (refresh_later), self,
                           G_CONNECT_SWAPPED);

  self->watch_id = g_bus_watch_name_on_connection (connection, WATCHER_NAME,
                                                   G_BUS_NAME_WATCHER_FLAGS_NONE,
                                                   on_watcher_appeared, on_watcher_vanished,
                                                   self, NULL);
  return g_steal_pointer (&self);
}

gboolean
kp_tray_is_registered (KpTray *self)
{
  g_return_val_if_fail (KP_IS_TRAY (self), FALSE);
  return self->registered;
}

const char *
kp_tray_get_status (KpTray *self)
{
  g_return_val_if_fail (KP_IS_TRAY (self), NULL);
  return self->status;
}

guint
kp_tray_get_revision (KpTray *self)
{
  g_return_val_if_fail (KP_IS_TRAY (self), 0);
  return self->revision;
}
