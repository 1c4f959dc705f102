/* kp-tray-menu.c: what the tray shows, and its com.canonical.dbusmenu object
 *
 * Part of KpTray: the menu's items (serving, today's spend, problems, a
 * switch per provider with keys, Open and Quit), the status and tooltip,
 * and the dbusmenu interface hosts read the menu through and click it with.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include <string.h>

#include <glib/gi18n.h>

#include "kp-tray-private.h"

const char kp_tray_menu_xml[] =
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

/* Brings the menu, status and tooltip up to date, with today's spend as
 * last read, and tells the host what changed.
 */
void
kp_tray_update (KpTray *self)
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
      kp_tray_emit (self, MENU_PATH, "com.canonical.dbusmenu", "LayoutUpdated",
            g_variant_new ("(ui)", self->revision, 0));
    }

  if (g_strcmp0 (self->status, status) != 0)
    {
      g_free (self->status);
      self->status = g_strdup (status);
      kp_tray_emit (self, ITEM_PATH, "org.kde.StatusNotifierItem", "NewStatus", g_variant_new ("(s)", status));
    }

  if (g_strcmp0 (self->tooltip, tooltip) != 0)
    {
      g_free (self->tooltip);
      self->tooltip = g_steal_pointer (&tooltip);
      kp_tray_emit (self, ITEM_PATH, "org.kde.StatusNotifierItem", "NewToolTip", NULL);
    }
}

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
    kp_tray_emit_activate (self);
  else if (id == ID_QUIT)
    kp_tray_emit_quit (self);
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
      kp_tray_emit (self, MENU_PATH, "com.canonical.dbusmenu", "ItemsPropertiesUpdated",
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

const GDBusInterfaceVTable kp_tray_menu_vtable = { menu_method_call, menu_get_property, NULL, { 0 } };

