/* kp-add-key-dialog.c: add a provider key, checked with the provider first
 *
 * The dialog stays open while the provider is asked whether the key works,
 * and shows the answer. A rejected key is kept only when the user presses
 * Save Anyway. The key is handed to the gateway and never shown again.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include "kp-add-key-dialog.h"

#include <string.h>

#include <glib/gi18n.h>

#include "kp-ui-util.h"

struct _KpAddKeyDialog
{
  AdwMessageDialog  parent_instance;

  KpGateway        *gateway;
  GPtrArray        *provider_ids;
  GCancellable     *cancellable;
  GtkWindow        *parent;       /* weak: where the toast goes */
  gboolean          busy;
  gboolean          closing;
  gboolean          disposing;

  GtkWidget        *form;
  AdwComboRow      *provider_row;
  AdwEntryRow      *secret_row;
  AdwEntryRow      *label_row;
  GtkSpinButton    *multiplier_spin;
  GtkWidget        *status_box;
  GtkSpinner       *status_spinner;
  GtkWidget        *status_icon;
  GtkLabel         *status_label;
};

G_DEFINE_FINAL_TYPE (KpAddKeyDialog, kp_add_key_dialog, ADW_TYPE_MESSAGE_DIALOG)

enum {
  KEY_ADDED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

/**
 * kp_add_key_dialog_new:
 * @parent: the window the dialog belongs to
 * @gateway: the gateway to add the key to
 * @provider_id: (nullable): the provider to choose first
 */
KpAddKeyDialog *
kp_add_key_dialog_new (GtkWindow  *parent,
                       KpGateway  *gateway,
                       const char *provider_id)
{
  KpAddKeyDialog *self;
  GPtrArray *providers;
  g_autoptr(GtkStringList) names = gtk_string_list_new (NULL);
  guint selected = 0;

  g_return_val_if_fail (KP_IS_GATEWAY (gateway), NULL);

  self = g_object_new (KP_TYPE_ADD_KEY_DIALOG, "transient-for", parent, NULL);
  self->gateway = g_object_ref (gateway);
  self->parent = parent;
  if (parent != NULL)
    g_object_add_weak_pointer (G_OBJECT (parent), (gpointer *)&self->parent);

  providers = kp_catalog_get_providers (kp_gateway_get_catalog (gateway));
  for (guint i = 0; i < providers->len; i++)
    {
      KpProvider *provider = g_ptr_array_index (providers, i);

      if (!kp_provider_get_requires_key (provider))
        continue;
      if (g_strcmp0 (provider_id, kp_provider_get_id (provider)) == 0)
        selected = self->provider_ids->len;
      g_ptr_array_add (self->provider_ids, g_strdup (kp_provider_get_id (provider)));
      gtk_string_list_append (names, kp_provider_get_name (provider));
    }

  adw_combo_row_set_model (self->provider_row, G_LIST_MODEL (names));
  adw_combo_row_set_selected (self->provider_row, selected);
  gtk_widget_grab_focus (GTK_WIDGET (self->secret_row));
  return self;
}

static void
kp_add_key_dialog_dispose (GObject *object)
{
  KpAddKeyDialog *self = KP_ADD_KEY_DIALOG (object);

  /* The rows report changes while they go away; nothing to update then. */
  self->disposing = TRUE;
  g_cancellable_cancel (self->cancellable);
  if (self->parent != NULL)
    g_object_remove_weak_pointer (G_OBJECT (self->parent), (gpointer *)&self->parent);
  self->parent = NULL;
  gtk_widget_dispose_template (GTK_WIDGET (self), KP_TYPE_ADD_KEY_DIALOG);
  g_clear_object (&self->cancellable);
  g_clear_object (&self->gateway);
  g_clear_pointer (&self->provider_ids, g_ptr_array_unref);

  G_OBJECT_CLASS (kp_add_key_dialog_parent_class)->dispose (object);
}

/* A response closes an AdwMessageDialog at once; this one stays open until
 * the check is done, and closes itself (see close_dialog()).
 */
static gboolean
kp_add_key_dialog_close_request (GtkWindow *window)
{
  KpAddKeyDialog *self = KP_ADD_KEY_DIALOG (window);

  if (self->closing)
    return GTK_WINDOW_CLASS (kp_add_key_dialog_parent_class)->close_request (window);

  /* Escape: the parent class turns it into the close response. */
  GTK_WINDOW_CLASS (kp_add_key_dialog_parent_class)->close_request (window);
  return TRUE;
}

static void
close_dialog (KpAddKeyDialog *self)
{
  /* The key stays in no widget longer than the dialog. The focus leaves
   * the entries first: a GtkText destroyed with the focus complains.
   */
  gtk_window_set_focus (GTK_WINDOW (self), NULL);
  gtk_editable_set_text (GTK_EDITABLE (self->secret_row), "");
  self->closing = TRUE;
  gtk_window_destroy (GTK_WINDOW (self));
}

static const char *
selected_provider_id (KpAddKeyDialog *self)
{
  guint selected = adw_combo_row_get_selected (self->provider_row);

  if (selected == GTK_INVALID_LIST_POSITION || selected >= self->provider_ids->len)
    return NULL;
  return g_ptr_array_index (self->provider_ids, selected);
}

static void
update_responses (KpAddKeyDialog *self)
{
  const char *secret = gtk_editable_get_text (GTK_EDITABLE (self->secret_row));
  gboolean ready = !self->busy && secret[0] != '\0' && selected_provider_id (self) != NULL;

  adw_message_dialog_set_response_enabled (ADW_MESSAGE_DIALOG (self), "add", ready);
  if (adw_message_dialog_has_response (ADW_MESSAGE_DIALOG (self), "save-anyway"))
    adw_message_dialog_set_response_enabled (ADW_MESSAGE_DIALOG (self), "save-anyway", ready);
}

static void
show_status (KpAddKeyDialog *self,
             gboolean        busy,
             const char     *message)
{
  self->busy = busy;
  gtk_widget_set_visible (self->status_box, message != NULL);
  gtk_widget_set_visible (GTK_WIDGET (self->status_spinner), busy);
  gtk_spinner_set_spinning (self->status_spinner, busy);
  gtk_widget_set_visible (self->status_icon, !busy);
  gtk_label_set_label (self->status_label, message ? message : "");
  gtk_widget_set_sensitive (self->form, !busy);
  update_responses (self);
}

static void
on_secret_changed (KpAddKeyDialog *self)
{
  /* A different key has not been rejected yet. */
  if (!self->busy && !self->disposing)
    show_status (self, FALSE, NULL);
}

static void
on_provider_selected (KpAddKeyDialog *self)
{
  if (!self->busy && !self->disposing)
    show_status (self, FALSE, NULL);
}

/* The core words some errors for the command line; the dialog has a button. */
static char *
strip_cli_hint (const char *message)
{
  const char *hint = strstr (message, " Use --no-check");

  return hint ? g_strndup (message, hint - message) : g_strdup (message);
}

static void
on_key_added (GObject      *object,
              GAsyncResult *result,
              gpointer      user_data)
{
  g_autoptr(KpAddKeyDialog) self = user_data;
  g_autoptr(GError) error = NULL;
  g_autofree char *report = NULL;
  g_autoptr(KpCredential) credential = NULL;

  credential = kp_gateway_add_key_finish (KP_GATEWAY (object), result, &report, &error);
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED) || self->closing)
    return;

  if (credential == NULL)
    {
      g_autofree char *message = strip_cli_hint (error->message);

      if (g_error_matches (error, KP_GATEWAY_ERROR, KP_GATEWAY_ERROR_KEY_REJECTED) &&
          !adw_message_dialog_has_response (ADW_MESSAGE_DIALOG (self), "save-anyway"))
        {
          adw_message_dialog_add_response (ADW_MESSAGE_DIALOG (self), "save-anyway",
                                           _("Save _Anyway"));
          adw_message_dialog_set_response_appearance (ADW_MESSAGE_DIALOG (self), "save-anyway",
                                                      ADW_RESPONSE_DESTRUCTIVE);
        }
      show_status (self, FALSE, message);
      return;
    }

  {
    const char *provider_id = kp_credential_get_provider_id (credential);
    KpCatalog *catalog = kp_gateway_get_catalog (self->gateway);
    KpProvider *provider = kp_catalog_get_provider (catalog, provider_id);
    g_autofree char *hint = kp_credential_dup_hint (credential);
    const char *name = provider ? kp_provider_get_name (provider) : provider_id;
    g_autofree char *message = NULL;

    if (report != NULL)
      /* Translators: the first %s is a provider, the second the end of a key (“…a1b2”). */
      message = g_strdup_printf (_("%s accepted key %s; it is in your keyring"), name, hint);
    else
      /* Translators: the first %s is the end of a key (“…a1b2”), the second a provider. */
      message = g_strdup_printf (_("Key %s saved for %s without a check"), hint, name);

    g_signal_emit (self, signals[KEY_ADDED], 0, credential);
    if (self->parent != NULL)
      kp_ui_toast (GTK_WIDGET (self->parent), message);
  }
  close_dialog (self);
}

static void
add_key (KpAddKeyDialog *self,
         gboolean        check)
{
  const char *provider_id = selected_provider_id (self);
  const char *secret = gtk_editable_get_text (GTK_EDITABLE (self->secret_row));
  const char *label = gtk_editable_get_text (GTK_EDITABLE (self->label_row));
  KpProvider *provider;
  g_autofree char *message = NULL;
  g_autofree char *clean_secret = NULL;

  if (provider_id == NULL || secret[0] == '\0')
    return;
  provider = kp_catalog_get_provider (kp_gateway_get_catalog (self->gateway), provider_id);

  /* Translators: %s is a provider, such as “OpenRouter”. */
  message = check ? g_strdup_printf (_("Asking %s whether the key works…"),
                                     provider ? kp_provider_get_name (provider) : provider_id)
                  : g_strdup (_("Saving the key in the keyring…"));
  show_status (self, TRUE, message);

  clean_secret = g_strstrip (g_strdup (secret));
  g_clear_object (&self->cancellable);
  self->cancellable = g_cancellable_new ();
  kp_gateway_add_key_async (self->gateway, provider_id, label[0] ? label : NULL,
                            gtk_spin_button_get_value (self->multiplier_spin), clean_secret, check,
                            self->cancellable, on_key_added, g_object_ref (self));
  explicit_bzero (clean_secret, strlen (clean_secret));
}

static void
on_response (KpAddKeyDialog *self,
             const char     *response)
{
  if (g_str_equal (response, "add"))
    add_key (self, TRUE);
  else if (g_str_equal (response, "save-anyway"))
    add_key (self, FALSE);
  else
    {
      g_cancellable_cancel (self->cancellable);
      close_dialog (self);
    }
}

static void
kp_add_key_dialog_class_init (KpAddKeyDialogClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);
  GtkWindowClass *window_class = GTK_WINDOW_CLASS (klass);

  object_class->dispose = kp_add_key_dialog_dispose;
  window_class->close_request = kp_add_key_dialog_close_request;

  /**
   * KpAddKeyDialog::key-added:
   * @credential: the new key
   */
  signals[KEY_ADDED] =
    g_signal_new ("key-added",
                  G_TYPE_FROM_CLASS (klass),
                  G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL,
                  G_TYPE_NONE, 1, KP_TYPE_CREDENTIAL);

  gtk_widget_class_set_template_from_resource (widget_class,
                                               KP_UI_RESOURCE ("kp-add-key-dialog.ui"));
  gtk_widget_class_bind_template_child (widget_class, KpAddKeyDialog, form);
  gtk_widget_class_bind_template_child (widget_class, KpAddKeyDialog, provider_row);
  gtk_widget_class_bind_template_child (widget_class, KpAddKeyDialog, secret_row);
  gtk_widget_class_bind_template_child (widget_class, KpAddKeyDialog, label_row);
  gtk_widget_class_bind_template_child (widget_class, KpAddKeyDialog, multiplier_spin);
  gtk_widget_class_bind_template_child (widget_class, KpAddKeyDialog, status_box);
  gtk_widget_class_bind_template_child (widget_class, KpAddKeyDialog, status_spinner);
  gtk_widget_class_bind_template_child (widget_class, KpAddKeyDialog, status_icon);
  gtk_widget_class_bind_template_child (widget_class, KpAddKeyDialog, status_label);
  gtk_widget_class_bind_template_callback (widget_class, on_response);
  gtk_widget_class_bind_template_callback (widget_class, on_secret_changed);
  gtk_widget_class_bind_template_callback (widget_class, on_provider_selected);
}

static void
kp_add_key_dialog_init (KpAddKeyDialog *self)
{
  self->provider_ids = g_ptr_array_new_with_free_func (g_free);
  gtk_widget_init_template (GTK_WIDGET (self));
}
