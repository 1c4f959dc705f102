/* kp-clients-group.c: the Connect page's client tokens
 *
 * Lists the named client tokens, makes new ones and removes them. A new
 * token is shown once, in a dialog, to be copied into the tool; Keypool
 * keeps it in the keyring only.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include "kp-clients-group.h"

#include <glib/gi18n.h>

#include "kp-ui-util.h"

struct _KpClientsGroup
{
  AdwPreferencesGroup parent_instance;

  KpGateway   *gateway;
  GPtrArray   *rows;       /* unowned: the group has them */

  AdwEntryRow *name_row;
};

G_DEFINE_FINAL_TYPE (KpClientsGroup, kp_clients_group, ADW_TYPE_PREFERENCES_GROUP)

static void refresh (KpClientsGroup *self);

static void
kp_clients_group_dispose (GObject *object)
{
  KpClientsGroup *self = KP_CLIENTS_GROUP (object);

  gtk_widget_dispose_template (GTK_WIDGET (self), KP_TYPE_CLIENTS_GROUP);
  g_clear_pointer (&self->rows, g_ptr_array_unref);
  g_clear_object (&self->gateway);

  G_OBJECT_CLASS (kp_clients_group_parent_class)->dispose (object);
}

static void
show_error (KpClientsGroup *self,
            const char     *heading,
            const char     *message)
{
  GtkRoot *root = gtk_widget_get_root (GTK_WIDGET (self));
  GtkWidget *dialog = adw_message_dialog_new (GTK_IS_WINDOW (root) ? GTK_WINDOW (root) : NULL,
                                              heading, message);

  adw_message_dialog_add_response (ADW_MESSAGE_DIALOG (dialog), "close", _("_Close"));
  gtk_window_present (GTK_WINDOW (dialog));
}

static void
on_token_dialog_response (AdwMessageDialog *dialog,
                          const char       *response,
                          GtkLabel         *label)
{
  if (g_str_equal (response, "copy"))
    kp_ui_copy (GTK_WIDGET (label), gtk_label_get_text (label), _("Token copied"));
}

/* The token, once: Keypool shows it nowhere else. */
static void
show_token (KpClientsGroup *self,
            const char     *name,
            const char     *token)
{
  GtkRoot *root = gtk_widget_get_root (GTK_WIDGET (self));
  g_autofree char *heading = g_strdup_printf (_("Token for %s"), name);
  GtkWidget *dialog;
  GtkWidget *label;

  dialog = adw_message_dialog_new (GTK_IS_WINDOW (root) ? GTK_WINDOW (root) : NULL, heading,
                                   _("Give the tool this token as its API key now: it is shown "
                                     "only this once."));
  label = gtk_label_new (token);
  gtk_label_set_selectable (GTK_LABEL (label), TRUE);
  gtk_label_set_wrap (GTK_LABEL (label), TRUE);
  gtk_label_set_wrap_mode (GTK_LABEL (label), PANGO_WRAP_CHAR);
  gtk_widget_add_css_class (label, "monospace");
  adw_message_dialog_set_extra_child (ADW_MESSAGE_DIALOG (dialog), label);
  adw_message_dialog_add_responses (ADW_MESSAGE_DIALOG (dialog), "close", _("_Close"),
                                    "copy", _("C_opy"), NULL);
  adw_message_dialog_set_response_appearance (ADW_MESSAGE_DIALOG (dialog), "copy",
                                              ADW_RESPONSE_SUGGESTED);
  adw_message_dialog_set_close_response (ADW_MESSAGE_DIALOG (dialog), "close");
  g_signal_connect (dialog, "response", G_CALLBACK (on_token_dialog_response), label);
  gtk_window_present (GTK_WINDOW (dialog));
}

static void
on_added (GObject      *object,
          GAsyncResult *result,
          gpointer      user_data)
{
  g_autoptr(KpClientsGroup) self = user_data;
  g_autoptr(GError) error = NULL;
  g_autofree char *name = g_object_steal_data (G_OBJECT (self), "adding");
  char *token = kp_clients_add_finish (KP_CLIENTS (object), result, NULL, &error);

  if (token == NULL)
    {
      show_error (self, _("No Token Made"), error->message);
      return;
    }
  gtk_editable_set_text (GTK_EDITABLE (self->name_row), "");
  show_token (self, name, token);
  kp_secret_wipe (&token);
}

static void
on_add (KpClientsGroup *self)
{
  const char *name = gtk_editable_get_text (GTK_EDITABLE (self->name_row));

  if (self->gateway == NULL)
    return;
  g_object_set_data_full (G_OBJECT (self), "adding", g_strdup (name), g_free);
  kp_clients_add_async (kp_gateway_get_clients (self->gateway), name, FALSE, NULL, on_added,
                        g_object_ref (self));
}

static void
on_removed (GObject      *object,
            GAsyncResult *result,
            gpointer      user_data)
{
  g_autoptr(KpClientsGroup) self = user_data;
  g_autoptr(GError) error = NULL;

  if (!kp_clients_remove_finish (KP_CLIENTS (object), result, &error))
    show_error (self, _("Client Removed, With a Problem"), error->message);
}

static void
on_remove_clicked (GtkButton      *button,
                   KpClientsGroup *self)
{
  const char *name = g_object_get_data (G_OBJECT (button), "client-name");

  kp_clients_remove_async (kp_gateway_get_clients (self->gateway), name, NULL, on_removed,
                           g_object_ref (self));
}

static void
refresh (KpClientsGroup *self)
{
  g_autoptr(GPtrArray) clients = NULL;

  for (guint i = 0; i < self->rows->len; i++)
    adw_preferences_group_remove (ADW_PREFERENCES_GROUP (self), g_ptr_array_index (self->rows, i));
  g_ptr_array_set_size (self->rows, 0);
  if (self->gateway == NULL)
    return;

  clients = kp_clients_list (kp_gateway_get_clients (self->gateway), FALSE);
  for (guint i = 0; i < clients->len; i++)
    {
      KpClientInfo *info = g_ptr_array_index (clients, i);
      GtkWidget *row = adw_action_row_new ();
      GtkWidget *remove = gtk_button_new_from_icon_name ("user-trash-symbolic");
      g_autofree char *created = kp_ui_format_time (info->created);
      g_autofree char *subtitle = NULL;
      g_autofree char *label = g_strdup_printf (_("Remove %s"), info->name);

      subtitle = info->active ? g_strdup_printf (_("Made %s"), created)
                              : g_strdup (_("Its token is not in the keyring: remove it and "
                                            "make a new one"));
      adw_preferences_row_set_use_markup (ADW_PREFERENCES_ROW (row), FALSE);
      adw_preferences_row_set_title (ADW_PREFERENCES_ROW (row), info->name);
      adw_action_row_set_subtitle (ADW_ACTION_ROW (row), subtitle);
      gtk_widget_set_valign (remove, GTK_ALIGN_CENTER);
      gtk_widget_add_css_class (remove, "flat");
      gtk_widget_set_tooltip_text (remove, label);
      kp_ui_set_accessible_label (remove, label);
      g_object_set_data_full (G_OBJECT (remove), "client-name", g_strdup (info->name), g_free);
      g_signal_connect (remove, "clicked", G_CALLBACK (on_remove_clicked), self);
      adw_action_row_add_suffix (ADW_ACTION_ROW (row), remove);
      adw_preferences_group_add (ADW_PREFERENCES_GROUP (self), row);
      g_ptr_array_add (self->rows, row);
    }
}

static void
kp_clients_group_class_init (KpClientsGroupClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = kp_clients_group_dispose;

  gtk_widget_class_set_template_from_resource (widget_class,
                                               KP_UI_RESOURCE ("kp-clients-group.ui"));
  gtk_widget_class_bind_template_child (widget_class, KpClientsGroup, name_row);
  gtk_widget_class_bind_template_callback (widget_class, on_add);
}

static void
kp_clients_group_init (KpClientsGroup *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));
  self->rows = g_ptr_array_new ();
}

void
kp_clients_group_set_gateway (KpClientsGroup *self,
                              KpGateway      *gateway)
{
  g_return_if_fail (KP_IS_CLIENTS_GROUP (self));
  g_return_if_fail (KP_IS_GATEWAY (gateway));

  g_set_object (&self->gateway, gateway);
  g_signal_connect_object (kp_gateway_get_clients (gateway), "changed", G_CALLBACK (refresh), self,
                           G_CONNECT_SWAPPED);
  refresh (self);
}
