/* kp-tray.c: Keypool's tray icon and menu (StatusNotifierItem + dbusmenu)
 *
 * GTK 4 has no tray. Panels draw tray icons from two D-Bus objects that the
 * application exports itself: an org.kde.StatusNotifierItem (icon, status,
 * tooltip) and a com.canonical.dbusmenu tree (the menu). Hosts differ in
 * which calls they use (Event or EventGroup, AboutToShow or
 * AboutToShowGroup), so all of them are answered, and every declared
 * property returns a value of its declared type.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include <string.h>

#include <glib/gi18n.h>

#include "kp-tray.h"

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

static const char menu_xml[] =
  "<node>"
  " <interface name='com.canonical.dbusmenu'>"
  "  <property name='Version' type='u' access='read'/>"
  "  <property name='TextDirection' type='s' access='read'/>"
  "  <property name='Status' type='s' access='read'/>"
  "  <property name='IconThemePath' type='as' access='read'/>"
  "  <method name='GetLayout'>"
  "   <arg name='parentId' type='i' direction='in'/>"
  "   <arg name='recursionDepth' type='i' direction='in'/>"
  "   <arg name='propertyNames' type='as' direction='in'/>"
  "   <arg name='revision' type='u' direction='out'/>"
  "   <arg name='layout' type='(ia{sv}av)' direction='out'/>"
  "  </method>"
  "  <method name='GetGroupProperties'>"
  "   <arg name='ids' type='ai' direction='in'/>"
  "   <arg name='propertyNames' type='as' direction='in'/>"
  "   <arg name='properties' type='a(ia{sv})' direction='out'/>"
  "  </method>"
  "  <method name='GetProperty'>"
  "   <arg name='id' type='i' direction='in'/>"
  "   <arg name='name' type='s' direction='in'/>"
  "   <arg name='value' type='v' direction='out'/>"
  "  </method>"
  "  <method name='Event'>"
  "   <arg name='id' type='i' direction='in'/>"
  "   <arg name='eventId' type='s' direction='in'/>"
  "   <arg name='data' type='v' direction='in'/>"
  "   <arg name='timestamp' type='u' direction='in'/>"
  "  </method>"
  "  <method name='EventGroup'>"
  "   <arg name='events' type='a(isvu)' direction='in'/>"
  "   <arg name='idErrors' type='ai' direction='out'/>"
  "  </method>"
  "  <method name='AboutToShow'>"
  "   <arg name='id' type='i' direction='in'/>"
  "   <arg name='needUpdate' type='b' direction='out'/>"
  "  </method>"
  "  <method name='AboutToShowGroup'>"
  "   <arg name='ids' type='ai' direction='in'/>"
  "   <arg name='updatesNeeded' type='ai' direction='out'/>"
  "   <arg name='idErrors' type='ai' direction='out'/>"
  "  </method>"
  "  <signal name='ItemsPropertiesUpdated'>"
  "   <arg name='updatedProps' type='a(ia{sv})'/>"
  "   <arg name='removedProps' type='a(ias)'/>"
  "  </signal>"
  "  <signal name='LayoutUpdated'>"
  "   <arg name='revision' type='u'/>"
  "   <arg name='parent' type='i'/>"
  "  </signal>"
  "  <signal name='ItemActivationRequested'>"
  "   <arg name='id' type='i'/>"
  "   <arg name='timestamp' type='u'/>"
  "  </signal>"
  " </interface>"
  "</node>";

static void
item_clear (gpointer data)
{
  Item *item = data;

  g_clear_pointer (&item->props, g_variant_unref);
}

/* The menu ----------------------------------------------------------------- */

static char *
escape_label (const char *text)
{
  g_autoptr(GString) label = g_string_new (NULL);

  /* An underscore marks a mnemonic; a literal one is doubled. */
  for (const char *p = text; *p; p++)
    {
      if (*p == '_')
        g_string_append_c (label, '_');
      g_string_append_c (label, *p);
    }
  return g_string_free (g_steal_pointer (&label), FALSE);
}

static void
add_item (GArray     *items,
          int         id,
          const char *label,
          gboolean    enabled,
          int         toggle_state)
{
  GVariantDict dict;
  Item item = { id, NULL };

  g_variant_dict_init (&dict, NULL);
  if (label == NULL)
    g_variant_dict_insert (&dict, "type", "s", "separator");
  else
    {
      g_autofree char *escaped = escape_label (label);

      g_variant_dict_insert (&dict, "label", "s", escaped);
    }
  if (!enabled)
    g_variant_dict_insert (&dict, "enabled", "b", FALSE);
  if (toggle_state >= 0)
    {
      g_variant_dict_insert (&dict, "toggle-type", "s", "checkmark");
      /* An int32, never a boolean: hosts drop other types. */
      g_variant_dict_insert (&dict, "toggle-state", "i", toggle_state);
    }
  item.props = g_variant_ref_sink (g_variant_dict_end (&dict));
  g_array_append_val (items, item);
}

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
static char *
describe_today (KpTray *self)
{
  if (self->today_unknown > 0)
    {
      /* A format macro cannot be in a translatable string. */
      g_autofree char *count = g_strdup_printf ("%" G_GINT64_FORMAT, self->today_unknown);

      /* Translators: a sum of money, and how many requests have no known price */
      return g_strdup_printf (_("Today: $%.4f + %s unknown"), self->today_cost / 1e9, count);
    }
  return g_strdup_printf (_("Today: $%.4f"), self->today_cost / 1e9);
}

/* Why requests are not being recorded, or NULL. */
static const char *
ledger_problem (KpTray *self)
{
  KpLedger *ledger = kp_gateway_get_ledger (self->gateway);

  return ledger != NULL ? kp_ledger_get_problem (ledger) : NULL;
}

static gboolean
needs_attention (KpTray *self)
{
  GPtrArray *credentials = kp_gateway_get_credentials (self->gateway);
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;

  if (!kp_gateway_is_serving (self->gateway) || ledger_problem (self) != NULL ||
      kp_budgets_get_warning (kp_gateway_get_budgets (self->gateway)))
    return TRUE;
  for (guint i = 0; i < credentials->len; i++)
    {
      KpCredential *credential = g_ptr_array_index (credentials, i);

      if (kp_credential_get_enabled (credential) &&
          kp_credential_get_state (credential, now) != KP_CREDENTIAL_OK)
        return TRUE;
    }
  return FALSE;
}

static GArray *
build_items (KpTray  *self,
             char   **tooltip_body)
{
  GArray *items = g_array_new (FALSE, TRUE, sizeof (Item));
  GPtrArray *providers = kp_catalog_get_providers (kp_gateway_get_catalog (self->gateway));
  g_autofree char *serving = NULL;
  g_autofree char *today = describe_today (self);

  g_array_set_clear_func (items, item_clear);

  if (kp_gateway_is_serving (self->gateway))
    {
      g_autofree char *url = kp_gateway_dup_base_url (self->gateway);

      serving = g_strdup_printf (_("Serving on %s"), url + strlen ("http://"));
    }
  else
    serving = g_strdup (_("Not serving"));

  add_item (items, ID_SERVING, serving, FALSE, -1);
  add_item (items, ID_SPEND, today, FALSE, -1);
  if (ledger_problem (self) != NULL)
    add_item (items, ID_PROBLEM, _("Requests are not being recorded"), FALSE, -1);
  if (kp_budgets_get_warning (kp_gateway_get_budgets (self->gateway)))
    add_item (items, ID_BUDGET, _("A budget is 80 % spent or more"), FALSE, -1);
  add_item (items, ID_SEPARATOR_1, NULL, TRUE, -1);

  for (guint i = 0; i < providers->len; i++)
    {
      KpProvider *provider = g_ptr_array_index (providers, i);

      if (kp_gateway_count_keys (self->gateway, provider) == 0)
        continue;
      add_item (items, ID_PROVIDERS + i, kp_provider_get_name (provider), TRUE,
                kp_gateway_provider_is_enabled (self->gateway, provider) ? 1 : 0);
    }

  add_item (items, ID_SEPARATOR_2, NULL, TRUE, -1);
  add_item (items, ID_OPEN, _("Open Keypool"), TRUE, -1);
  add_item (items, ID_QUIT, _("Quit"), TRUE, -1);

  if (ledger_problem (self) != NULL)
    *tooltip_body = g_strdup_printf ("%s\n%s\n%s", serving, today, ledger_problem (self));
  else
    *tooltip_body = g_strdup_printf ("%s\n%s", serving, today);
  return items;
}

static Item *
find_item (KpTray *self,
           int     id)
{
  for (guint i = 0; i < self->items->len; i++)
    if (g_array_index (self->items, Item, i).id == id)
      return &g_array_index (self->items, Item, i);
  return NULL;
}

static gboolean
same_items (GArray *a,
            GArray *b)
{
  if (a == NULL || a->len != b->len)
    return FALSE;
  for (guint i = 0; i < a->len; i++)
    {
      Item *x = &g_array_index (a, Item, i);
      Item *y = &g_array_index (b, Item, i);

      if (x->id != y->id || !g_variant_equal (x->props, y->props))
        return FALSE;
    }
  return TRUE;
}

static void
emit (KpTray     *self,
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

/* Brings the menu, status and tooltip up to date, with today's spend as
 * last read, and tells the host what changed.
 */
static void
update_tray (KpTray *self)
{
  g_autoptr(GArray) items = NULL;
  g_autofree char *tooltip = NULL;
  const char *status;

  items = build_items (self, &tooltip);
  status = needs_attention (self) ? "NeedsAttention" : "Active";

  if (!same_items (self->items, items))
    {
      g_clear_pointer (&self->items, g_array_unref);
      self->items = g_steal_pointer (&items);
      self->revision++;
      emit (self, MENU_PATH, "com.canonical.dbusmenu", "LayoutUpdated",
            g_variant_new ("(ui)", self->revision, 0));
    }

  if (g_strcmp0 (self->status, status) != 0)
    {
      g_free (self->status);
      self->status = g_strdup (status);
      emit (self, ITEM_PATH, "org.kde.StatusNotifierItem", "NewStatus", g_variant_new ("(s)", status));
    }

  if (g_strcmp0 (self->tooltip, tooltip) != 0)
    {
      g_free (self->tooltip);
      self->tooltip = g_steal_pointer (&tooltip);
      emit (self, ITEM_PATH, "org.kde.StatusNotifierItem", "NewToolTip", NULL);
    }
}

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
      update_tray (self);
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

  update_tray (self);
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

/* com.canonical.dbusmenu --------------------------------------------------- */

static GVariant *
filter_props (GVariant            *props,
              const char * const  *names)
{
  GVariantDict dict;
  GVariantIter iter;
  const char *key;
  GVariant *value;

  if (names == NULL || names[0] == NULL)
    return g_variant_ref (props);

  g_variant_dict_init (&dict, NULL);
  g_variant_iter_init (&iter, props);
  while (g_variant_iter_next (&iter, "{&sv}", &key, &value))
    {
      if (g_strv_contains (names, key))
        g_variant_dict_insert_value (&dict, key, value);
      g_variant_unref (value);
    }
  return g_variant_ref_sink (g_variant_dict_end (&dict));
}

static GVariant *
root_props (void)
{
  GVariantDict dict;

  g_variant_dict_init (&dict, NULL);
  g_variant_dict_insert (&dict, "children-display", "s", "submenu");
  return g_variant_dict_end (&dict);
}

static GVariant *
layout_node (KpTray             *self,
             int                 id,
             int                 depth,
             const char * const *names)
{
  GVariantBuilder children;
  g_autoptr(GVariant) props = NULL;

  g_variant_builder_init (&children, G_VARIANT_TYPE ("av"));

  if (id == ID_ROOT)
    {
      g_autoptr(GVariant) all = g_variant_ref_sink (root_props ());

      props = filter_props (all, names);
      for (guint i = 0; depth != 0 && i < self->items->len; i++)
        g_variant_builder_add (&children, "v",
                               layout_node (self, g_array_index (self->items, Item, i).id,
                                            depth > 0 ? depth - 1 : -1, names));
    }
  else
    props = filter_props (find_item (self, id)->props, names);

  return g_variant_new ("(i@a{sv}av)", id, props, &children);
}

static gboolean
known_id (KpTray *self,
          int     id)
{
  return id == ID_ROOT || find_item (self, id) != NULL;
}

/* "clicked" on an item: toggle a provider, open the window, or quit. */
static gboolean
handle_event (KpTray     *self,
              int         id,
              const char *event)
{
  g_autoptr(GError) error = NULL;

  if (!known_id (self, id))
    return FALSE;
  if (!g_str_equal (event, "clicked"))
    return TRUE;

  if (id == ID_OPEN)
    g_signal_emit (self, signals[ACTIVATE], 0);
  else if (id == ID_QUIT)
    g_signal_emit (self, signals[QUIT], 0);
  else if (id >= ID_PROVIDERS)
    {
      GPtrArray *providers = kp_catalog_get_providers (kp_gateway_get_catalog (self->gateway));
      KpProvider *provider = g_ptr_array_index (providers, id - ID_PROVIDERS);
      gboolean enabled = !kp_gateway_provider_is_enabled (self->gateway, provider);
      GVariantBuilder updated;

      if (!kp_gateway_set_provider_enabled (self->gateway, kp_provider_get_id (provider), enabled,
                                            &error))
        {
          g_warning ("The tray could not switch %s: %s", kp_provider_get_id (provider), error->message);
          return TRUE;
        }

      /* Tell the host at once; the full refresh follows from ::changed. */
      g_variant_builder_init (&updated, G_VARIANT_TYPE ("a(ia{sv})"));
      g_variant_builder_open (&updated, G_VARIANT_TYPE ("(ia{sv})"));
      g_variant_builder_add (&updated, "i", id);
      g_variant_builder_open (&updated, G_VARIANT_TYPE ("a{sv}"));
      g_variant_builder_add (&updated, "{sv}", "toggle-state", g_variant_new_int32 (enabled ? 1 : 0));
      g_variant_builder_close (&updated);
      g_variant_builder_close (&updated);
      emit (self, MENU_PATH, "com.canonical.dbusmenu", "ItemsPropertiesUpdated",
            g_variant_new ("(a(ia{sv})a(ias))", &updated, NULL));
      kp_tray_refresh (self);
    }
  return TRUE;
}

static void
menu_method_call (GDBusConnection       *connection,
                  const char            *sender,
                  const char            *object_path,
                  const char            *interface_name,
                  const char            *method_name,
                  GVariant              *parameters,
                  GDBusMethodInvocation *invocation,
                  gpointer               user_data)
{
  KpTray *self = user_data;

  if (g_str_equal (method_name, "GetLayout"))
    {
      g_autofree const char **names = NULL;
      int parent, depth;

      g_variant_get (parameters, "(ii^a&s)", &parent, &depth, &names);
      if (!known_id (self, parent))
        {
          g_dbus_method_invocation_return_error (invocation, G_DBUS_ERROR, G_DBUS_ERROR_INVALID_ARGS,
                                                 "No menu item %d", parent);
          return;
        }
      g_dbus_method_invocation_return_value (invocation,
        g_variant_new ("(u@(ia{sv}av))", self->revision,
                       layout_node (self, parent, depth, (const char * const *)names)));
    }
  else if (g_str_equal (method_name, "GetGroupProperties"))
    {
      g_autoptr(GVariantIter) ids = NULL;
      g_autofree const char **names = NULL;
      GVariantBuilder result;
      int id;

      g_variant_get (parameters, "(ai^a&s)", &ids, &names);
      g_variant_builder_init (&result, G_VARIANT_TYPE ("a(ia{sv})"));
      if (g_variant_iter_n_children (ids) == 0)
        {
          for (guint i = 0; i < self->items->len; i++)
            {
              Item *item = &g_array_index (self->items, Item, i);

              g_variant_builder_add (&result, "(i@a{sv})", item->id,
                                     filter_props (item->props, (const char * const *)names));
            }
        }
      while (g_variant_iter_next (ids, "i", &id))
        {
          if (id == ID_ROOT)
            g_variant_builder_add (&result, "(i@a{sv})", id, root_props ());
          else if (find_item (self, id) != NULL)
            g_variant_builder_add (&result, "(i@a{sv})", id,
                                   filter_props (find_item (self, id)->props,
                                                 (const char * const *)names));
        }
      g_dbus_method_invocation_return_value (invocation, g_variant_new ("(a(ia{sv}))", &result));
    }
  else if (g_str_equal (method_name, "GetProperty"))
    {
      const char *name;
      g_autoptr(GVariant) value = NULL;
      g_autoptr(GVariant) props = NULL;
      int id;

      g_variant_get (parameters, "(i&s)", &id, &name);
      props = id == ID_ROOT ? g_variant_ref_sink (root_props ())
                            : find_item (self, id) ? g_variant_ref (find_item (self, id)->props) : NULL;
      if (props != NULL)
        value = g_variant_lookup_value (props, name, NULL);
      if (value == NULL)
        g_dbus_method_invocation_return_error (invocation, G_DBUS_ERROR, G_DBUS_ERROR_INVALID_ARGS,
                                               "Menu item %d has no property %s", id, name);
      else
        g_dbus_method_invocation_return_value (invocation, g_variant_new ("(v)", value));
    }
  else if (g_str_equal (method_name, "Event"))
    {
      const char *event;
      g_autoptr(GVariant) data = NULL;
      guint32 timestamp;
      int id;

      g_variant_get (parameters, "(i&svu)", &id, &event, &data, &timestamp);
      if (!handle_event (self, id, event))
        g_dbus_method_invocation_return_error (invocation, G_DBUS_ERROR, G_DBUS_ERROR_INVALID_ARGS,
                                               "No menu item %d", id);
      else
        g_dbus_method_invocation_return_value (invocation, NULL);
    }
  else if (g_str_equal (method_name, "EventGroup"))
    {
      g_autoptr(GVariantIter) events = NULL;
      GVariantBuilder errors;
      const char *event;
      GVariant *data;
      guint32 timestamp;
      int id;

      g_variant_get (parameters, "(a(isvu))", &events);
      g_variant_builder_init (&errors, G_VARIANT_TYPE ("ai"));
      while (g_variant_iter_next (events, "(i&svu)", &id, &event, &data, &timestamp))
        {
          if (!handle_event (self, id, event))
            g_variant_builder_add (&errors, "i", id);
          g_variant_unref (data);
        }
      g_dbus_method_invocation_return_value (invocation, g_variant_new ("(ai)", &errors));
    }
  else if (g_str_equal (method_name, "AboutToShow"))
    {
      int id;

      g_variant_get (parameters, "(i)", &id);
      /* The menu is always up to date: nothing to reload. */
      g_dbus_method_invocation_return_value (invocation, g_variant_new ("(b)", FALSE));
    }
  else if (g_str_equal (method_name, "AboutToShowGroup"))
    {
      g_autoptr(GVariantIter) ids = NULL;
      GVariantBuilder updates;
      GVariantBuilder errors;
      int id;

      g_variant_get (parameters, "(ai)", &ids);
      g_variant_builder_init (&updates, G_VARIANT_TYPE ("ai"));
      g_variant_builder_init (&errors, G_VARIANT_TYPE ("ai"));
      while (g_variant_iter_next (ids, "i", &id))
        if (!known_id (self, id))
          g_variant_builder_add (&errors, "i", id);
      g_dbus_method_invocation_return_value (invocation, g_variant_new ("(aiai)", &updates, &errors));
    }
  else
    g_dbus_method_invocation_return_error (invocation, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_METHOD,
                                           "No method %s", method_name);
}

static GVariant *
menu_get_property (GDBusConnection  *connection,
                   const char       *sender,
                   const char       *object_path,
                   const char       *interface_name,
                   const char       *property_name,
                   GError          **error,
                   gpointer          user_data)
{
  if (g_str_equal (property_name, "Version"))
    return g_variant_new_uint32 (3);
  if (g_str_equal (property_name, "TextDirection"))
    /* Translators: "default:RTL" for right-to-left languages, else leave it */
    return g_variant_new_string (g_str_equal (_("default:LTR"), "default:RTL") ? "rtl" : "ltr");
  if (g_str_equal (property_name, "Status"))
    return g_variant_new_string ("normal");
  if (g_str_equal (property_name, "IconThemePath"))
    return g_variant_new_strv (NULL, 0);

  g_set_error (error, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_PROPERTY, "No property %s", property_name);
  return NULL;
}

static const GDBusInterfaceVTable menu_vtable = { menu_method_call, menu_get_property, NULL, { 0 } };

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
  self->menu_info = self->item_info ? g_dbus_node_info_new_for_xml (menu_xml, error) : NULL;
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
                                                     &menu_vtable, self, NULL, error);
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
