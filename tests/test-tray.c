/* test-tray.c: the tray against a StatusNotifierWatcher on a private bus
 *
 * Runs inside tests/session.sh (a private session bus). A fake watcher on a
 * second connection records registrations; the test then acts as the tray
 * host: it reads the item's properties, walks the menu, and clicks.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include "config.h"

#include <string.h>

#include <glib/gstdio.h>

#include "kp-gateway.h"
#include "kp-ledger-private.h"
#include "kp-test-util.h"
#include "tray/kp-tray.h"

#define WATCHER "org.kde.StatusNotifierWatcher"

typedef struct
{
  GDBusConnection *app_bus;     /* Keypool's */
  GDBusConnection *host_bus;    /* the panel's */
  KpGateway       *gateway;
  KpTray          *tray;
  char            *root;
  guint            owner_id;
  guint            object_id;
  GPtrArray       *registered;  /* service names the watcher was given */
  GPtrArray       *signals;     /* names of menu/item signals the host saw */
  guint            subscription;
  guint            activations;
  guint            quits;
} Fixture;

static const char watcher_xml[] =
  "<node><interface name='org.kde.StatusNotifierWatcher'>"
  " <method name='RegisterStatusNotifierItem'><arg name='service' type='s' direction='in'/></method>"
  " <method name='RegisterStatusNotifierHost'><arg name='service' type='s' direction='in'/></method>"
  "</interface></node>";

static void
watcher_call (GDBusConnection       *connection,
              const char            *sender,
              const char            *path,
              const char            *interface,
              const char            *method,
              GVariant              *parameters,
              GDBusMethodInvocation *invocation,
              gpointer               user_data)
{
  Fixture *fixture = user_data;
  const char *service;

  g_variant_get (parameters, "(&s)", &service);
  if (g_str_equal (method, "RegisterStatusNotifierItem"))
    g_ptr_array_add (fixture->registered, g_strdup (service));
  g_dbus_method_invocation_return_value (invocation, NULL);
}

static const GDBusInterfaceVTable watcher_vtable = { watcher_call, NULL, NULL, { 0 } };

static void
own_watcher (Fixture *fixture)
{
  fixture->owner_id = g_bus_own_name_on_connection (fixture->host_bus, WATCHER,
                                                    G_BUS_NAME_OWNER_FLAGS_NONE,
                                                    NULL, NULL, NULL, NULL);
}

static void
on_signal (GDBusConnection *connection,
           const char      *sender,
           const char      *path,
           const char      *interface,
           const char      *name,
           GVariant        *parameters,
           gpointer         user_data)
{
  Fixture *fixture = user_data;

  if (g_str_equal (name, "ItemsPropertiesUpdated"))
    {
      g_autofree char *text = g_variant_print (parameters, TRUE);

      g_ptr_array_add (fixture->signals, g_strdup_printf ("%s %s", name, text));
    }
  else
    g_ptr_array_add (fixture->signals, g_strdup (name));
}

static void
on_activate (KpTray  *tray,
             Fixture *fixture)
{
  fixture->activations++;
}

static void
on_quit (KpTray  *tray,
         Fixture *fixture)
{
  fixture->quits++;
}

static gboolean
registered_once (gpointer data)
{
  return ((Fixture *)data)->registered->len >= 1;
}

static gboolean
registered_twice (gpointer data)
{
  return ((Fixture *)data)->registered->len >= 2;
}

static gboolean
tray_registered (gpointer data)
{
  return kp_tray_is_registered (((Fixture *)data)->tray);
}

static void
write_file (const char *dir,
            const char *name,
            const char *contents)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);

  g_assert_true (g_file_set_contents (path, contents, -1, NULL));
}

static void
fixture_setup (Fixture       *fixture,
               gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GDBusNodeInfo) info = g_dbus_node_info_new_for_xml (watcher_xml, NULL);
  g_autoptr(GAsyncResult) loaded = NULL;
  g_autofree char *providers = NULL;
  g_autofree char *address = g_dbus_address_get_for_bus_sync (G_BUS_TYPE_SESSION, NULL, &error);

  g_assert_no_error (error);
  fixture->registered = g_ptr_array_new_with_free_func (g_free);
  fixture->signals = g_ptr_array_new_with_free_func (g_free);

  /* Two connections, as Keypool and the panel are two processes. */
  fixture->app_bus = g_dbus_connection_new_for_address_sync (address,
    G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT | G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
    NULL, NULL, &error);
  g_assert_no_error (error);
  fixture->host_bus = g_dbus_connection_new_for_address_sync (address,
    G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT | G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
    NULL, NULL, &error);
  g_assert_no_error (error);

  fixture->object_id = g_dbus_connection_register_object (fixture->host_bus, "/StatusNotifierWatcher",
                                                          info->interfaces[0], &watcher_vtable,
                                                          fixture, NULL, &error);
  g_assert_no_error (error);
  own_watcher (fixture);

  fixture->subscription =
    g_dbus_connection_signal_subscribe (fixture->host_bus, g_dbus_connection_get_unique_name (fixture->app_bus),
                                        NULL, NULL, NULL, NULL, G_DBUS_SIGNAL_FLAGS_NONE,
                                        on_signal, fixture, NULL);

  /* A provider with a key, one without, and a local server. */
  fixture->root = g_dir_make_tmp ("keypool-tray-XXXXXX", NULL);
  providers = g_build_filename (fixture->root, "providers", NULL);
  g_mkdir (providers, 0700);
  write_file (providers, "keyed.json",
              "{\"id\":\"keyed\",\"name\":\"Keyed_AI\",\"base_url\":\"http://127.0.0.1:9/v1\","
              "\"env\":[\"KP_TRAY_TEST_KEY\"],\"models\":[{\"id\":\"k/m\",\"input\":1,\"output\":1}]}");
  write_file (providers, "keyless.json",
              "{\"id\":\"keyless\",\"name\":\"Keyless\",\"base_url\":\"http://127.0.0.1:9/v1\","
              "\"env\":[\"KP_TRAY_UNSET_KEY\"],\"models\":[{\"id\":\"k/n\",\"input\":1,\"output\":1}]}");
  write_file (providers, "local.json",
              "{\"id\":\"local\",\"name\":\"Local\",\"base_url\":\"http://127.0.0.1:9/v1\","
              "\"requires_key\":false,\"models\":[{\"id\":\"l/m\",\"input\":0,\"output\":0}]}");

  fixture->gateway = kp_gateway_new ();
  kp_gateway_set_port (fixture->gateway, 0);
  kp_gateway_set_dirs (fixture->gateway, providers, fixture->root, fixture->root);
  kp_gateway_set_token (fixture->gateway, "kp-tray-test-token");
  kp_gateway_set_use_keyring (fixture->gateway, FALSE);
  kp_gateway_load_async (fixture->gateway, NULL, kp_test_store_result, &loaded);
  g_assert_true (kp_test_spin_until (kp_test_result_ready, &loaded, 5000));
  g_assert_true (kp_gateway_load_finish (fixture->gateway, loaded, &error));
  g_assert_true (kp_gateway_listen (fixture->gateway, &error));

  fixture->tray = kp_tray_new (fixture->app_bus, fixture->gateway, &error);
  g_assert_no_error (error);
  g_signal_connect (fixture->tray, "activate", G_CALLBACK (on_activate), fixture);
  g_signal_connect (fixture->tray, "quit", G_CALLBACK (on_quit), fixture);
  g_assert_true (kp_test_spin_until (registered_once, fixture, 5000));
  g_assert_true (kp_test_spin_until (tray_registered, fixture, 5000));
}

static void
fixture_teardown (Fixture       *fixture,
                  gconstpointer  data)
{
  g_clear_object (&fixture->tray);
  kp_test_gateway_clear (&fixture->gateway);
  g_dbus_connection_signal_unsubscribe (fixture->host_bus, fixture->subscription);
  g_clear_handle_id (&fixture->owner_id, g_bus_unown_name);
  g_dbus_connection_unregister_object (fixture->host_bus, fixture->object_id);
  g_dbus_connection_close_sync (fixture->app_bus, NULL, NULL);
  g_dbus_connection_close_sync (fixture->host_bus, NULL, NULL);
  g_clear_object (&fixture->app_bus);
  g_clear_object (&fixture->host_bus);
  kp_test_remove_tree (fixture->root);
  g_free (fixture->root);
  g_ptr_array_unref (fixture->registered);
  g_ptr_array_unref (fixture->signals);
}

/* A call from the host to Keypool's item or menu. */
static GVariant *
host_call (Fixture    *fixture,
           const char *path,
           const char *interface,
           const char *method,
           GVariant   *parameters,
           GError    **error)
{
  return g_dbus_connection_call_sync (fixture->host_bus,
                                      g_dbus_connection_get_unique_name (fixture->app_bus),
                                      path, interface, method, parameters, NULL,
                                      G_DBUS_CALL_FLAGS_NONE, 5000, NULL, error);
}

/* The host's calls are answered by this same loop: call from a thread. */
typedef struct
{
  Fixture    *fixture;
  const char *path;
  const char *interface;
  const char *method;
  GVariant   *parameters;
  GVariant   *reply;
  GError     *error;
  gboolean    done;
} Call;

static gpointer
call_thread (gpointer data)
{
  Call *call = data;

  call->reply = host_call (call->fixture, call->path, call->interface, call->method,
                           call->parameters, &call->error);
  g_atomic_int_set (&call->done, TRUE);
  return NULL;
}

static gboolean
call_done (gpointer data)
{
  return g_atomic_int_get (&((Call *)data)->done);
}

static GVariant *
call (Fixture    *fixture,
      const char *path,
      const char *interface,
      const char *method,
      GVariant   *parameters,
      GError    **error)
{
  Call c = { fixture, path, interface, method, parameters ? g_variant_ref_sink (parameters) : NULL };
  GThread *thread = g_thread_new ("host", call_thread, &c);

  g_assert_true (kp_test_spin_until (call_done, &c, 10000));
  g_thread_join (thread);
  g_clear_pointer (&c.parameters, g_variant_unref);
  if (c.error != NULL)
    g_propagate_error (error, c.error);
  return c.reply;
}

#define MENU "/MenuBar", "com.canonical.dbusmenu"
#define ITEM "/StatusNotifierItem", "org.kde.StatusNotifierItem"

static GVariant *
menu_layout (Fixture *fixture)
{
  g_autoptr(GError) error = NULL;
  GVariant *reply = call (fixture, MENU, "GetLayout",
                          g_variant_new ("(ii@as)", 0, -1, g_variant_new_strv (NULL, 0)), &error);

  g_assert_no_error (error);
  g_assert_true (g_variant_is_of_type (reply, G_VARIANT_TYPE ("(u(ia{sv}av))")));
  return reply;
}

/* The id and properties of the menu item whose label is @label. */
static int
find_item (GVariant    *layout,
           const char  *label,
           GVariant   **props_out)
{
  g_autoptr(GVariant) root = g_variant_get_child_value (layout, 1);
  g_autoptr(GVariant) children = g_variant_get_child_value (root, 2);

  for (gsize i = 0; i < g_variant_n_children (children); i++)
    {
      g_autoptr(GVariant) boxed = g_variant_get_child_value (children, i);
      g_autoptr(GVariant) child = g_variant_get_variant (boxed);
      g_autoptr(GVariant) props = g_variant_get_child_value (child, 1);
      const char *text = NULL;
      int id;

      g_variant_get_child (child, 0, "i", &id);
      if (g_variant_lookup (props, "label", "&s", &text) && g_str_has_prefix (text, label))
        {
          if (props_out != NULL)
            *props_out = g_variant_ref (props);
          return id;
        }
    }
  return -1;
}

static gboolean
provider_enabled (Fixture    *fixture,
                  const char *id)
{
  return kp_gateway_provider_is_enabled (fixture->gateway,
                                         kp_catalog_get_provider (kp_gateway_get_catalog (fixture->gateway), id));
}

static gboolean
saw_signal (Fixture    *fixture,
            const char *prefix)
{
  for (guint i = 0; i < fixture->signals->len; i++)
    if (g_str_has_prefix (g_ptr_array_index (fixture->signals, i), prefix))
      return TRUE;
  return FALSE;
}

static void
test_registration_and_properties (Fixture       *fixture,
                                  gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) all = NULL;
  g_autoptr(GVariant) props = NULL;
  g_autoptr(GVariant) tooltip = NULL;
  const char *text;

  /* Registered by its unique name; the host then reads /StatusNotifierItem. */
  g_assert_cmpstr (g_ptr_array_index (fixture->registered, 0), ==,
                   g_dbus_connection_get_unique_name (fixture->app_bus));
  g_assert_true (kp_tray_is_registered (fixture->tray));

  all = call (fixture, "/StatusNotifierItem", "org.freedesktop.DBus.Properties", "GetAll",
              g_variant_new ("(s)", "org.kde.StatusNotifierItem"), &error);
  g_assert_no_error (error);
  props = g_variant_get_child_value (all, 0);
  g_assert_true (g_variant_lookup (props, "Id", "&s", &text));
  g_assert_cmpstr (text, ==, "keypool");
  g_assert_true (g_variant_lookup (props, "Status", "&s", &text));
  g_assert_cmpstr (text, ==, "Active");
  g_assert_true (g_variant_lookup (props, "Menu", "&o", &text));
  g_assert_cmpstr (text, ==, "/MenuBar");
  g_assert_true (g_variant_lookup (props, "IconName", "&s", &text));
  g_assert_cmpstr (text, ==, APPLICATION_ID);
  tooltip = g_variant_lookup_value (props, "ToolTip", G_VARIANT_TYPE ("(sa(iiay)ss)"));
  g_assert_nonnull (tooltip);
  g_variant_get_child (tooltip, 3, "&s", &text);
  g_assert_true (g_str_has_prefix (text, "Serving on 127.0.0.1:"));
  g_assert_nonnull (strstr (text, "Today: $0.0000"));

  /* Every declared property answers, with its declared type. */
  g_assert_cmpuint (g_variant_n_children (props), ==, 12);
  {
    g_autoptr(GVariant) menu_props = call (fixture, "/MenuBar", "org.freedesktop.DBus.Properties",
                                           "GetAll", g_variant_new ("(s)", "com.canonical.dbusmenu"),
                                           &error);
    g_autoptr(GVariant) dict = g_variant_get_child_value (menu_props, 0);
    guint32 version;

    g_assert_no_error (error);
    g_assert_true (g_variant_lookup (dict, "Version", "u", &version));
    g_assert_cmpuint (version, ==, 3);
    g_assert_cmpuint (g_variant_n_children (dict), ==, 4);
  }
}

static void
test_menu (Fixture       *fixture,
           gconstpointer  data)
{
  g_autoptr(GVariant) layout = menu_layout (fixture);
  g_autoptr(GVariant) props = NULL;
  g_autoptr(GVariant) state = NULL;
  const char *type;
  int id;

  g_assert_cmpint (find_item (layout, "Serving on 127.0.0.1:", NULL), >, 0);
  g_assert_cmpint (find_item (layout, "Today: $0.0000", NULL), >, 0);
  g_assert_cmpint (find_item (layout, "Open Keypool", NULL), >, 0);
  g_assert_cmpint (find_item (layout, "Quit", NULL), >, 0);

  /* One checkmark item per provider that has keys; the underscore in its
   * name is doubled, so it is not a mnemonic.
   */
  id = find_item (layout, "Keyed__AI", &props);
  g_assert_cmpint (id, >=, 100);
  g_assert_true (g_variant_lookup (props, "toggle-type", "&s", &type));
  g_assert_cmpstr (type, ==, "checkmark");
  state = g_variant_lookup_value (props, "toggle-state", NULL);
  g_assert_true (g_variant_is_of_type (state, G_VARIANT_TYPE_INT32));
  g_assert_cmpint (g_variant_get_int32 (state), ==, 1);
  g_assert_cmpint (find_item (layout, "Keyless", NULL), ==, -1);
  g_assert_cmpint (find_item (layout, "Local", NULL), ==, -1);
}

/* The menu told the panel its items changed. */
static gboolean
saw_items_updated (gpointer data)
{
  return saw_signal (data, "ItemsPropertiesUpdated ([(");
}

static gboolean
tray_unregistered (gpointer data)
{
  return !tray_registered (data);
}

/* @reply as text, kept until the next call: the assertions need no frees. */
static const char *
printed (GVariant *reply)
{
  static char *text;

  g_free (text);
  text = reply ? g_variant_print (reply, FALSE) : NULL;
  return text;
}

static void
test_clicks (Fixture       *fixture,
             gconstpointer  data)
{
  g_autoptr(GVariant) layout = menu_layout (fixture);
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GError) error = NULL;
  int provider = find_item (layout, "Keyed__AI", NULL);
  int open = find_item (layout, "Open Keypool", NULL);
  int quit = find_item (layout, "Quit", NULL);
  GVariantBuilder events;
  guint32 revision;

  /* xfce4-panel sends EventGroup… */
  g_variant_builder_init (&events, G_VARIANT_TYPE ("a(isvu)"));
  g_variant_builder_add (&events, "(isvu)", provider, "clicked", g_variant_new_int32 (0), 0);
  g_variant_builder_add (&events, "(isvu)", 4242, "clicked", g_variant_new_int32 (0), 0);
  reply = call (fixture, MENU, "EventGroup", g_variant_new ("(a(isvu))", &events), &error);
  g_assert_no_error (error);
  g_assert_cmpstr (printed (reply), ==, "([4242],)");
  g_assert_false (provider_enabled (fixture, "keyed"));
  g_assert_true (kp_test_spin_until (saw_items_updated, fixture, 5000));
  g_assert_true (saw_signal (fixture, "ItemsPropertiesUpdated"));
  {
    g_autoptr(GVariant) now = menu_layout (fixture);
    g_autoptr(GVariant) props = NULL;
    int state;

    find_item (now, "Keyed__AI", &props);
    g_assert_true (g_variant_lookup (props, "toggle-state", "i", &state));
    g_assert_cmpint (state, ==, 0);
  }

  /* …the GNOME Shell extension sends Event. */
  g_clear_pointer (&reply, g_variant_unref);
  reply = call (fixture, MENU, "Event",
                g_variant_new ("(isvu)", provider, "clicked", g_variant_new_int32 (0), 0), &error);
  g_assert_no_error (error);
  g_assert_true (provider_enabled (fixture, "keyed"));

  g_clear_pointer (&reply, g_variant_unref);
  reply = call (fixture, MENU, "Event",
                g_variant_new ("(isvu)", 4242, "clicked", g_variant_new_int32 (0), 0), &error);
  g_assert_null (reply);
  g_assert_error (error, G_DBUS_ERROR, G_DBUS_ERROR_INVALID_ARGS);
  g_clear_error (&error);

  /* Hosts ask before showing; the menu is always current. */
  reply = call (fixture, MENU, "AboutToShow", g_variant_new ("(i)", 0), &error);
  g_assert_no_error (error);
  g_assert_cmpstr (printed (reply), ==, "(false,)");
  g_clear_pointer (&reply, g_variant_unref);
  reply = call (fixture, MENU, "AboutToShowGroup", g_variant_new_parsed ("([0, 4242],)"), &error);
  g_assert_no_error (error);
  g_assert_cmpstr (printed (reply), ==, "([], [4242])");
  g_clear_pointer (&reply, g_variant_unref);

  reply = call (fixture, MENU, "GetProperty", g_variant_new ("(is)", provider, "toggle-state"), &error);
  g_assert_no_error (error);
  {
    g_autoptr(GVariant) value = NULL;

    g_variant_get (reply, "(v)", &value);
    g_assert_true (g_variant_is_of_type (value, G_VARIANT_TYPE_INT32));
    g_assert_cmpint (g_variant_get_int32 (value), ==, 1);
  }
  g_clear_pointer (&reply, g_variant_unref);

  reply = call (fixture, MENU, "GetGroupProperties",
                g_variant_new_parsed ("(@ai [], ['label'])"), &error);
  g_assert_no_error (error);
  g_assert_nonnull (strstr (printed (reply), "'Open Keypool'"));
  g_assert_null (strstr (printed (reply), "toggle-type"));
  g_clear_pointer (&reply, g_variant_unref);

  /* The icon and the menu reach the application. */
  reply = call (fixture, ITEM, "Activate", g_variant_new ("(ii)", 10, 10), &error);
  g_assert_no_error (error);
  g_clear_pointer (&reply, g_variant_unref);
  reply = call (fixture, MENU, "Event",
                g_variant_new ("(isvu)", open, "clicked", g_variant_new_int32 (0), 0), &error);
  g_clear_pointer (&reply, g_variant_unref);
  reply = call (fixture, MENU, "Event",
                g_variant_new ("(isvu)", quit, "clicked", g_variant_new_int32 (0), 0), &error);
  g_assert_no_error (error);
  g_assert_cmpuint (fixture->activations, ==, 2);
  g_assert_cmpuint (fixture->quits, ==, 1);

  revision = kp_tray_get_revision (fixture->tray);
  g_assert_cmpuint (revision, >, 1);
}

static gboolean
saw_layout_updated (gpointer data)
{
  return saw_signal (data, "LayoutUpdated");
}

static gboolean
saw_new_status (gpointer data)
{
  return saw_signal (data, "NewStatus");
}

static void
test_live_updates (Fixture       *fixture,
                   gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  KpCredential *credential = g_ptr_array_index (kp_gateway_get_credentials (fixture->gateway), 0);
  KpFailure failure = { .klass = KP_FAILURE_RATE_LIMITED, .retry_after = 30,
                        .message = (char *)"Rate limit reached" };
  GPtrArray *offerings = kp_catalog_lookup (kp_gateway_get_catalog (fixture->gateway), "k/m");
  KpRoute route = { g_ptr_array_index (offerings, 0), credential, 1, 1 };

  /* A change made elsewhere (the window, the CLI) reaches the host. */
  g_ptr_array_set_size (fixture->signals, 0);
  g_assert_true (kp_gateway_set_provider_enabled (fixture->gateway, "keyed", FALSE, &error));
  g_assert_true (kp_test_spin_until (saw_layout_updated, fixture, 2000));

  /* A key resting after a rate limit asks for attention. */
  kp_gateway_note_failure (fixture->gateway, &route, &failure);
  g_assert_true (kp_test_spin_until (saw_new_status, fixture, 2000));
  g_assert_cmpstr (kp_tray_get_status (fixture->tray), ==, "NeedsAttention");
}

static void
on_row_written (GObject      *object,
                GAsyncResult *result,
                gpointer      user_data)
{
  gboolean *written = user_data;

  g_assert_true (kp_ledger_add_request_finish (KP_LEDGER (object), result, NULL));
  *written = TRUE;
}

static gboolean
is_true (gpointer data)
{
  return *(gboolean *)data;
}

static gboolean
shows_today (gpointer data)
{
  g_autoptr(GVariant) layout = menu_layout (data);

  return find_item (layout, "Today: $1.5000 + 1 unknown", NULL) > 0;
}

/* Today's spend is added up on a worker thread: the tray never queries
 * the ledger on the loop that serves, however often it is refreshed.
 */
static void
test_today_off_main_loop (Fixture       *fixture,
                          gconstpointer  data)
{
  KpLedger *ledger = kp_gateway_get_ledger (fixture->gateway);
  KpRequestRow row = {
    .request_id = (char *)"kp-tray-cost", .time_ms = g_get_real_time () / 1000,
    .api = (char *)"openai-chat", .model = (char *)"k/m", .provider = (char *)"keyed",
    .status = 200, .outcome = (char *)"ok", .cost_nano = 1500000000,
    .cost_source = (char *)"computed", .ttfb_ms = -1,
  };
  gboolean written = FALSE;

  kp_ledger_add_request_async (ledger, &row, NULL, 0, on_row_written, &written);
  g_assert_true (kp_test_spin_until (is_true, &written, 10000));
  written = FALSE;
  row.request_id = (char *)"kp-tray-unpriced";
  row.cost_nano = 0;
  row.cost_source = (char *)"unknown";
  kp_ledger_add_request_async (ledger, &row, NULL, 0, on_row_written, &written);
  g_assert_true (kp_test_spin_until (is_true, &written, 10000));

  for (guint i = 0; i < 20; i++)
    kp_tray_refresh (fixture->tray);
  g_assert_true (kp_test_spin_until (shows_today, fixture, 10000));
  g_assert_cmpuint (kp_ledger_get_reads (ledger), ==, 0);
}

static gboolean
status_is_active (gpointer data)
{
  Fixture *fixture = data;

  return g_strcmp0 (kp_tray_get_status (fixture->tray), "Active") == 0;
}

static gboolean
status_needs_attention (gpointer data)
{
  Fixture *fixture = data;

  return g_strcmp0 (kp_tray_get_status (fixture->tray), "NeedsAttention") == 0;
}

/* A ledger that cannot write asks for attention, says so in the menu, and
 * stops asking once the rows are written.
 */
static void
test_ledger_problem (Fixture       *fixture,
                     gconstpointer  data)
{
  KpLedger *ledger = kp_gateway_get_ledger (fixture->gateway);
  KpRequestRow row = {
    .request_id = (char *)"kp-tray-late", .time_ms = g_get_real_time () / 1000,
    .api = (char *)"openai-chat", .model = (char *)"k/m", .status = 200,
    .outcome = (char *)"ok", .cost_source = (char *)"unknown",
  };
  g_autoptr(GVariant) layout = NULL;

  g_assert_true (kp_test_spin_until (status_is_active, fixture, 5000));
  kp_ledger_set_retry_policy (ledger, 5, 40, 100);
  kp_ledger_set_fail_writes (ledger, TRUE);
  g_test_expect_message ("keypool", G_LOG_LEVEL_WARNING, "*not being recorded*");
  kp_ledger_add_request_async (ledger, &row, NULL, 0, NULL, NULL);
  g_assert_true (kp_test_spin_until (status_needs_attention, fixture, 20000));
  g_test_assert_expected_messages ();
  layout = menu_layout (fixture);
  g_assert_cmpint (find_item (layout, "Requests are not being recorded", NULL), >, 0);

  kp_ledger_set_fail_writes (ledger, FALSE);
  g_assert_true (kp_test_spin_until (status_is_active, fixture, 20000));
  g_clear_pointer (&layout, g_variant_unref);
  layout = menu_layout (fixture);
  g_assert_cmpint (find_item (layout, "Requests are not being recorded", NULL), ==, -1);
}

static void
test_watcher_comes_back (Fixture       *fixture,
                         gconstpointer  data)
{
  /* The panel restarts: the watcher goes, and comes back. */
  g_clear_handle_id (&fixture->owner_id, g_bus_unown_name);
  g_assert_true (kp_test_spin_until (tray_unregistered, fixture, 5000));
  own_watcher (fixture);
  g_assert_true (kp_test_spin_until (registered_twice, fixture, 5000));
  g_assert_true (kp_test_spin_until (tray_registered, fixture, 5000));
}

int
main (int   argc,
      char *argv[])
{
  g_setenv ("KP_TRAY_TEST_KEY", "sk-tray-test-key-0001", TRUE);
  g_unsetenv ("KP_TRAY_UNSET_KEY");
  g_test_init (&argc, &argv, NULL);

#define ADD(path, func) \
  g_test_add ("/keypool/tray/" path, Fixture, NULL, fixture_setup, func, fixture_teardown)

  ADD ("registration-and-properties", test_registration_and_properties);
  ADD ("menu", test_menu);
  ADD ("clicks", test_clicks);
  ADD ("live-updates", test_live_updates);
  ADD ("ledger-problem", test_ledger_problem);
  ADD ("today-off-main-loop", test_today_off_main_loop);
  ADD ("watcher-comes-back", test_watcher_comes_back);

#undef ADD

  return g_test_run ();
}
