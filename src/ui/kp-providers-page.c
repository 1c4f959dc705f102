/* kp-providers-page.c: providers, their keys, and local servers
 *
 * One expander row per provider (KpProviderRow), kept across refreshes so
 * that what the user expanded stays expanded. With no key at all, a status
 * page leads to the Add Key dialog.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include "kp-providers-page.h"

#include <glib/gi18n.h>

#include "kp-add-key-dialog.h"
#include "kp-provider-row.h"
#include "kp-ui-util.h"

#define LOCAL_CHECK_TIMEOUT_S 3

struct _KpProvidersPage
{
  AdwBin                parent_instance;

  KpGateway            *gateway;
  GHashTable           *rows;          /* provider id → KpProviderRow, unowned */
  SoupSession          *session;
  GCancellable         *check_cancellable;
  guint                 expiry_id;
  gboolean              show_list;

  GtkStack             *stack;
  GtkWidget            *keyring_group;
  AdwActionRow         *keyring_row;
  AdwPreferencesGroup  *providers_group;
  AdwPreferencesGroup  *local_group;
};

G_DEFINE_FINAL_TYPE (KpProvidersPage, kp_providers_page, ADW_TYPE_BIN)

typedef struct
{
  KpProvidersPage *page;
  char            *provider_id;
  GCancellable    *cancellable;
  guint            timeout_id;
  gboolean         timed_out;
} LocalCheck;

static void
local_check_free (LocalCheck *check)
{
  g_clear_handle_id (&check->timeout_id, g_source_remove);
  g_object_unref (check->page);
  g_object_unref (check->cancellable);
  g_free (check->provider_id);
  g_free (check);
}

static void
kp_providers_page_dispose (GObject *object)
{
  KpProvidersPage *self = KP_PROVIDERS_PAGE (object);

  g_cancellable_cancel (self->check_cancellable);
  g_clear_handle_id (&self->expiry_id, g_source_remove);
  /* AdwBin would unparent its child again after the template dropped it. */
  adw_bin_set_child (ADW_BIN (self), NULL);
  gtk_widget_dispose_template (GTK_WIDGET (self), KP_TYPE_PROVIDERS_PAGE);
  g_clear_pointer (&self->rows, g_hash_table_unref);
  g_clear_object (&self->check_cancellable);
  g_clear_object (&self->session);
  g_clear_object (&self->gateway);

  G_OBJECT_CLASS (kp_providers_page_parent_class)->dispose (object);
}

static void
on_key_added (KpProvidersPage *self,
              KpCredential    *credential)
{
  KpProviderRow *row = g_hash_table_lookup (self->rows, kp_credential_get_provider_id (credential));

  self->show_list = TRUE;
  kp_providers_page_refresh (self);
  if (row != NULL)
    adw_expander_row_set_expanded (ADW_EXPANDER_ROW (row), TRUE);
}

static void
add_key_activated (GtkWidget  *widget,
                   const char *action_name,
                   GVariant   *parameter)
{
  KpProvidersPage *self = KP_PROVIDERS_PAGE (widget);
  const char *provider_id = g_variant_get_string (parameter, NULL);
  KpAddKeyDialog *dialog;

  if (self->gateway == NULL)
    return;

  dialog = kp_add_key_dialog_new (GTK_WINDOW (gtk_widget_get_root (widget)), self->gateway,
                                  provider_id[0] ? provider_id : NULL);
  g_signal_connect_object (dialog, "key-added", G_CALLBACK (on_key_added), self, G_CONNECT_SWAPPED);
  gtk_window_present (GTK_WINDOW (dialog));
}

static void
on_key_removed (GObject      *object,
                GAsyncResult *result,
                gpointer      user_data)
{
  g_autoptr(KpProvidersPage) self = user_data;
  g_autoptr(GError) error = NULL;

  if (!kp_gateway_remove_key_finish (KP_GATEWAY (object), result, &error))
    kp_ui_toast (GTK_WIDGET (self), error->message);
  else
    kp_ui_toast (GTK_WIDGET (self), _("The key is removed from Keypool and your keyring"));
}

static void
on_remove_response (AdwMessageDialog *dialog,
                    const char       *response,
                    gpointer          user_data)
{
  KpProvidersPage *self = KP_PROVIDERS_PAGE (user_data);
  gint64 id = GPOINTER_TO_SIZE (g_object_get_data (G_OBJECT (dialog), "credential-id"));

  if (!g_str_equal (response, "remove") || self->gateway == NULL)
    return;
  kp_gateway_remove_key_async (self->gateway, id, NULL, on_key_removed, g_object_ref (self));
}

static void
remove_key_activated (GtkWidget  *widget,
                      const char *action_name,
                      GVariant   *parameter)
{
  KpProvidersPage *self = KP_PROVIDERS_PAGE (widget);
  gint64 id = g_variant_get_int64 (parameter);
  KpCredential *credential;
  const char *label;
  g_autofree char *hint = NULL;
  GtkWidget *dialog;

  if (self->gateway == NULL)
    return;
  credential = kp_gateway_find_credential (self->gateway, id);
  if (credential == NULL)
    return;

  label = kp_credential_get_label (credential);
  hint = kp_credential_dup_hint (credential);
  dialog = adw_message_dialog_new (GTK_WINDOW (gtk_widget_get_root (widget)), _("Remove Key?"),
                                   NULL);
  adw_message_dialog_format_body (ADW_MESSAGE_DIALOG (dialog),
                                  /* Translators: %s is a key's label, %s the end of the key. */
                                  _("Keypool stops using “%s” (%s) at once and deletes it "
                                    "from your keyring. Its spend history stays."),
                                  label && *label ? label : hint, hint);
  adw_message_dialog_add_responses (ADW_MESSAGE_DIALOG (dialog),
                                    "cancel", _("_Cancel"),
                                    "remove", _("_Remove"),
                                    NULL);
  adw_message_dialog_set_response_appearance (ADW_MESSAGE_DIALOG (dialog), "remove",
                                              ADW_RESPONSE_DESTRUCTIVE);
  adw_message_dialog_set_default_response (ADW_MESSAGE_DIALOG (dialog), "cancel");
  adw_message_dialog_set_close_response (ADW_MESSAGE_DIALOG (dialog), "cancel");
  g_object_set_data (G_OBJECT (dialog), "credential-id", GSIZE_TO_POINTER ((gsize)id));
  g_signal_connect_object (dialog, "response", G_CALLBACK (on_remove_response), self, 0);
  gtk_window_present (GTK_WINDOW (dialog));
}

static void
show_list_activated (GtkWidget  *widget,
                     const char *action_name,
                     GVariant   *parameter)
{
  KpProvidersPage *self = KP_PROVIDERS_PAGE (widget);

  self->show_list = TRUE;
  gtk_stack_set_visible_child_name (self->stack, "list");
}

static void
check_local_activated (GtkWidget  *widget,
                       const char *action_name,
                       GVariant   *parameter)
{
  kp_providers_page_check_local_servers (KP_PROVIDERS_PAGE (widget));
}

static void
kp_providers_page_class_init (KpProvidersPageClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = kp_providers_page_dispose;

  gtk_widget_class_set_template_from_resource (widget_class,
                                               KP_UI_RESOURCE ("kp-providers-page.ui"));
  gtk_widget_class_bind_template_child (widget_class, KpProvidersPage, stack);
  gtk_widget_class_bind_template_child (widget_class, KpProvidersPage, keyring_group);
  gtk_widget_class_bind_template_child (widget_class, KpProvidersPage, keyring_row);
  gtk_widget_class_bind_template_child (widget_class, KpProvidersPage, providers_group);
  gtk_widget_class_bind_template_child (widget_class, KpProvidersPage, local_group);

  gtk_widget_class_install_action (widget_class, "providers.add-key", "s", add_key_activated);
  gtk_widget_class_install_action (widget_class, "providers.remove-key", "x", remove_key_activated);
  gtk_widget_class_install_action (widget_class, "providers.show-list", NULL, show_list_activated);
  gtk_widget_class_install_action (widget_class, "providers.check-local", NULL,
                                   check_local_activated);
}

static void
kp_providers_page_init (KpProvidersPage *self)
{
  self->rows = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  gtk_widget_init_template (GTK_WIDGET (self));
}

void
kp_providers_page_set_gateway (KpProvidersPage *self,
                               KpGateway       *gateway)
{
  g_return_if_fail (KP_IS_PROVIDERS_PAGE (self));
  g_return_if_fail (KP_IS_GATEWAY (gateway));
  g_return_if_fail (self->gateway == NULL);

  self->gateway = g_object_ref (gateway);
  g_signal_connect_object (gateway, "changed", G_CALLBACK (kp_providers_page_refresh), self,
                           G_CONNECT_SWAPPED);
  kp_providers_page_refresh (self);
}

static gboolean
on_state_expired (gpointer user_data)
{
  KpProvidersPage *self = user_data;

  self->expiry_id = 0;
  kp_providers_page_refresh (self);
  return G_SOURCE_REMOVE;
}

/* A key that cools down or is out of quota until some time comes back by
 * itself then; the page shows it when it does.
 */
static void
schedule_expiry (KpProvidersPage *self)
{
  GPtrArray *credentials = kp_gateway_get_credentials (self->gateway);
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;
  gint64 next = 0;

  g_clear_handle_id (&self->expiry_id, g_source_remove);
  for (guint i = 0; i < credentials->len; i++)
    {
      KpCredential *credential = g_ptr_array_index (credentials, i);
      gint64 until = kp_credential_get_state_until (credential);

      if (kp_credential_get_state (credential, now) != KP_CREDENTIAL_OK && until > now &&
          (next == 0 || until < next))
        next = until;
    }
  if (next > 0)
    self->expiry_id = g_timeout_add_seconds ((guint)MIN (next - now + 1, G_MAXUINT / 2),
                                             on_state_expired, self);
}

/**
 * kp_providers_page_refresh:
 * @self: a #KpProvidersPage
 *
 * Shows the providers and keys as the gateway has them now.
 */
void
kp_providers_page_refresh (KpProvidersPage *self)
{
  GPtrArray *providers;
  const char *problem;
  gboolean has_keys;

  g_return_if_fail (KP_IS_PROVIDERS_PAGE (self));

  if (self->gateway == NULL)
    return;

  providers = kp_catalog_get_providers (kp_gateway_get_catalog (self->gateway));
  for (guint i = 0; i < providers->len; i++)
    {
      KpProvider *provider = g_ptr_array_index (providers, i);
      const char *id = kp_provider_get_id (provider);
      KpProviderRow *row = g_hash_table_lookup (self->rows, id);

      if (row != NULL)
        {
          kp_provider_row_update (row);
          continue;
        }

      row = kp_provider_row_new (self->gateway, provider);
      g_hash_table_insert (self->rows, g_strdup (id), row);
      adw_preferences_group_add (kp_provider_get_requires_key (provider) ? self->providers_group
                                                                          : self->local_group,
                                 GTK_WIDGET (row));
      /* Open the providers that have keys, so their health shows at once. */
      if (kp_gateway_count_keys (self->gateway, provider) > 0)
        adw_expander_row_set_expanded (ADW_EXPANDER_ROW (row), TRUE);
    }

  problem = kp_gateway_get_keyring_problem (self->gateway);
  gtk_widget_set_visible (self->keyring_group, problem != NULL);
  if (problem != NULL)
    {
      g_autofree char *subtitle =
        g_strdup_printf (_("%s. Keys come from environment variables only, and new keys cannot be "
                           "saved."), problem);

      adw_action_row_set_subtitle (self->keyring_row, subtitle);
    }

  schedule_expiry (self);
  has_keys = kp_gateway_get_credentials (self->gateway)->len > 0;
  gtk_stack_set_visible_child_name (self->stack, has_keys || self->show_list ? "list" : "empty");
}

static gboolean
on_check_timeout (gpointer user_data)
{
  LocalCheck *check = user_data;

  check->timeout_id = 0;
  check->timed_out = TRUE;
  g_cancellable_cancel (check->cancellable);
  return G_SOURCE_REMOVE;
}

static void
on_local_answered (GObject      *object,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  LocalCheck *check = user_data;
  KpProvidersPage *self = check->page;
  SoupMessage *msg = soup_session_get_async_result_message (SOUP_SESSION (object), result);
  g_autoptr(GBytes) body = NULL;
  g_autoptr(GError) error = NULL;
  KpProviderRow *row;

  body = soup_session_send_and_read_finish (SOUP_SESSION (object), result, &error);
  row = self->rows ? g_hash_table_lookup (self->rows, check->provider_id) : NULL;

  /* Cancelled because the page went away or checks again: nothing to show. */
  if (row == NULL || (g_cancellable_is_cancelled (check->cancellable) && !check->timed_out))
    {
      local_check_free (check);
      return;
    }

  if (check->timed_out)
    kp_provider_row_set_reachability (row, KP_REACHABILITY_UNREACHABLE, _("no answer in time"));
  else if (body == NULL)
    kp_provider_row_set_reachability (row, KP_REACHABILITY_UNREACHABLE, error->message);
  else if (!SOUP_STATUS_IS_SUCCESSFUL (soup_message_get_status (msg)))
    {
      g_autofree char *detail = g_strdup_printf (_("it answered HTTP %u"),
                                                 soup_message_get_status (msg));

      kp_provider_row_set_reachability (row, KP_REACHABILITY_UNREACHABLE, detail);
    }
  else
    kp_provider_row_set_reachability (row, KP_REACHABILITY_REACHABLE, NULL);

  local_check_free (check);
}

/**
 * kp_providers_page_check_local_servers:
 * @self: a #KpProvidersPage
 *
 * Asks every local server (a provider that needs no key) for its models,
 * with a short timeout, and shows whether it answered.
 */
void
kp_providers_page_check_local_servers (KpProvidersPage *self)
{
  GPtrArray *providers;

  g_return_if_fail (KP_IS_PROVIDERS_PAGE (self));

  if (self->gateway == NULL)
    return;

  g_cancellable_cancel (self->check_cancellable);
  g_clear_object (&self->check_cancellable);
  self->check_cancellable = g_cancellable_new ();
  if (self->session == NULL)
    self->session = soup_session_new_with_options ("timeout", LOCAL_CHECK_TIMEOUT_S,
                                                   "user-agent", "Keypool/" PACKAGE_VERSION,
                                                   NULL);

  providers = kp_catalog_get_providers (kp_gateway_get_catalog (self->gateway));
  for (guint i = 0; i < providers->len; i++)
    {
      KpProvider *provider = g_ptr_array_index (providers, i);
      KpProviderRow *row = g_hash_table_lookup (self->rows, kp_provider_get_id (provider));
      g_autofree char *url = NULL;
      g_autoptr(SoupMessage) msg = NULL;
      LocalCheck *check;

      if (kp_provider_get_requires_key (provider) || row == NULL)
        continue;

      url = g_strdup_printf ("%s/models", kp_provider_get_base_url (provider));
      msg = soup_message_new (SOUP_METHOD_GET, url);
      if (msg == NULL)
        {
          kp_provider_row_set_reachability (row, KP_REACHABILITY_UNREACHABLE,
                                            _("its address is not valid"));
          continue;
        }

      check = g_new0 (LocalCheck, 1);
      check->page = g_object_ref (self);
      check->provider_id = g_strdup (kp_provider_get_id (provider));
      check->cancellable = g_cancellable_new ();
      g_signal_connect_object (self->check_cancellable, "cancelled",
                               G_CALLBACK (g_cancellable_cancel), check->cancellable,
                               G_CONNECT_SWAPPED);
      check->timeout_id = g_timeout_add_seconds (LOCAL_CHECK_TIMEOUT_S, on_check_timeout, check);
      kp_provider_row_set_reachability (row, KP_REACHABILITY_CHECKING, NULL);
      soup_session_send_and_read_async (self->session, msg, G_PRIORITY_DEFAULT, check->cancellable,
                                        on_local_answered, check);
    }
}
