/* kp-add-key-dialog.c: add a provider key, checked with the provider first
 *
 * The dialog stays open while the provider is asked whether the key works,
 * and shows the answer. A rejected key is kept only when the user presses
 * Save Anyway. The key is handed to the gateway and never shown again.
 *
 * A provider that takes accounts instead of keys (an "oauth" object in its
 * file) gets its own way in: Sign In opens its sign-in page in the browser
 * and waits, showing the page's address (and a device code, if the page
 * needs one) until the browser comes back or Cancel stops it; Import takes
 * the account a CLI on this computer is signed in with.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include "kp-add-key-dialog.h"

#include <string.h>

#include <glib/gi18n.h>

#include "kp-ways-in.h"
#include "kp-ui-util.h"

/* A device code longer than this is not one to show. */
#define MAX_USER_CODE 64

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
  KpWayIn           ways;
  gboolean          account;      /* the provider takes accounts, not keys */
  char             *login_file;   /* the CLI login to import, if it exists */
  char             *url;          /* the sign-in page under way */

  GtkWidget        *form;
  AdwComboRow      *provider_row;
  AdwEntryRow      *secret_row;
  AdwEntryRow      *label_row;
  GtkSpinButton    *multiplier_spin;
  GtkWidget        *multiplier_row;
  GtkWidget        *import_list;
  AdwActionRow     *import_row;
  GtkWidget        *import_button;
  GtkWidget        *sign_in_box;
  GtkLabel         *user_code_label;
  GtkLabel         *url_label;
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

static void update_mode (KpAddKeyDialog *self);

/**
 * kp_add_key_dialog_new:
 * @parent: the window the dialog belongs to
 * @gateway: the gateway to add the key to
 * @provider_id: (nullable): the provider to choose first
 */
static void on_login_code (KpGateway      *gateway,
                           const char     *provider_id,
                           const char     *user_code,
                           const char     *url,
                           KpAddKeyDialog *self);

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
  g_signal_connect_object (gateway, "login-code", G_CALLBACK (on_login_code), self, 0);
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
  update_mode (self);
  if (!self->account)
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
  g_clear_pointer (&self->login_file, g_free);
  g_clear_pointer (&self->url, g_free);

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
  gboolean key_ready = !self->busy && !self->account && secret[0] != '\0' &&
                       selected_provider_id (self) != NULL;
  gboolean ready = key_ready;

  if (self->account && (self->ways & KP_WAY_IN_SIGN_IN))
    ready = !self->busy;
  else if (self->account)
    ready = !self->busy && self->login_file != NULL;

  adw_message_dialog_set_response_enabled (ADW_MESSAGE_DIALOG (self), "add", ready);
  if (adw_message_dialog_has_response (ADW_MESSAGE_DIALOG (self), "save-anyway"))
    adw_message_dialog_set_response_enabled (ADW_MESSAGE_DIALOG (self), "save-anyway", key_ready);
  gtk_widget_set_sensitive (self->import_button, !self->busy);
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
  if (!busy)
    gtk_widget_set_visible (self->sign_in_box, FALSE);
  update_responses (self);
}

/* Shows the way in the selected provider takes: a key, or an account. */
static void
update_mode (KpAddKeyDialog *self)
{
  const char *provider_id = selected_provider_id (self);
  KpProvider *provider = provider_id ? kp_catalog_get_provider (kp_gateway_get_catalog (self->gateway),
                                                                provider_id)
                                     : NULL;
  const KpOAuthClient *client = provider ? kp_provider_get_oauth (provider) : NULL;
  const char *name = provider ? kp_provider_get_name (provider) : "";
  g_autofree char *body = NULL;

  self->ways = kp_ways_in_of (provider);
  self->account = self->ways != KP_WAY_IN_NONE && (self->ways & KP_WAY_IN_KEY) == 0;
  g_clear_pointer (&self->login_file, g_free);
  if (self->account && (self->ways & KP_WAY_IN_IMPORT))
    self->login_file = kp_gateway_dup_login_file (self->gateway, provider_id);

  gtk_widget_set_visible (GTK_WIDGET (self->secret_row), !self->account);
  gtk_widget_set_visible (self->multiplier_row, !self->account);
  /* With a sign-in, the import is the other way, in a row of its own. */
  gtk_widget_set_visible (self->import_list, self->account && (self->ways & KP_WAY_IN_SIGN_IN) &&
                                             self->login_file != NULL);
  if (client != NULL && client->import_file != NULL)
    {
      /* Translators: %s is a file, such as “~/.gemini/oauth_creds.json”. */
      g_autofree char *title = g_strdup_printf (_("Import from %s"), client->import_file);

      adw_preferences_row_set_title (ADW_PREFERENCES_ROW (self->import_row), title);
      adw_action_row_set_subtitle (self->import_row,
                                   _("The account this computer is signed in with; the file is only read"));
    }

  if (!self->account)
    {
      adw_message_dialog_set_response_label (ADW_MESSAGE_DIALOG (self), "add", _("_Add"));
      body = g_strdup (_("Keypool asks the provider whether the key works, then keeps it in your keyring."));
    }
  else if (self->ways & KP_WAY_IN_SIGN_IN)
    {
      adw_message_dialog_set_response_label (ADW_MESSAGE_DIALOG (self), "add", _("_Sign In…"));
      /* Translators: %s is a provider, such as “Gemini CLI”. */
      body = g_strdup_printf (_("%s takes no API key: sign in with your account in the browser, "
                                "and Keypool keeps the sign-in in your keyring."), name);
    }
  else
    {
      adw_message_dialog_set_response_label (ADW_MESSAGE_DIALOG (self), "add", _("_Import"));
      if (self->login_file != NULL)
        /* Translators: the first %s is a provider, the second a file. */
        body = g_strdup_printf (_("%s takes no API key: Keypool imports the account %s is signed "
                                  "in with, and keeps it in your keyring."), name,
                                self->login_file);
      else
        /* Translators: the first %s is a provider, the second a file. */
        body = g_strdup_printf (_("%s takes no API key, and there is no sign-in to import in %s: "
                                  "sign in with %s on this computer first."), name,
                                client && client->import_file ? client->import_file : "",
                                name);
    }
  adw_message_dialog_set_heading (ADW_MESSAGE_DIALOG (self),
                                  self->account ? _("Add Account") : _("Add Key"));
  adw_message_dialog_set_body (ADW_MESSAGE_DIALOG (self), body);
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
  if (self->busy || self->disposing || self->gateway == NULL)
    return;
  show_status (self, FALSE, NULL);
  update_mode (self);
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

/* Accounts ------------------------------------------------------------------ */

static void
account_added (KpAddKeyDialog *self,
               KpCredential   *credential,
               GError         *error,
               gboolean        imported)
{
  KpProvider *provider;
  const char *name;
  g_autofree char *message = NULL;

  if (self->closing || self->disposing)
    return;
  if (credential == NULL)
    {
      show_status (self, FALSE, error->message);
      return;
    }

  provider = kp_catalog_get_provider (kp_gateway_get_catalog (self->gateway),
                                      kp_credential_get_provider_id (credential));
  name = provider ? kp_provider_get_name (provider) : kp_credential_get_provider_id (credential);
  message = imported
    /* Translators: %s is a provider, such as “Gemini CLI”. */
    ? g_strdup_printf (_("Imported the %s account; it is in your keyring"), name)
    /* Translators: %s is a provider, such as “Gemini CLI”. */
    : g_strdup_printf (_("Signed in to %s; the account is in your keyring"), name);
  g_signal_emit (self, signals[KEY_ADDED], 0, credential);
  if (self->parent != NULL)
    kp_ui_toast (GTK_WIDGET (self->parent), message);
  close_dialog (self);
}

static void
on_signed_in (GObject      *object,
              GAsyncResult *result,
              gpointer      user_data)
{
  g_autoptr(KpAddKeyDialog) self = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(KpCredential) credential = kp_gateway_login_finish (KP_GATEWAY (object), result, &error);

  account_added (self, credential, error, FALSE);
}

static void
on_imported (GObject      *object,
             GAsyncResult *result,
             gpointer      user_data)
{
  g_autoptr(KpAddKeyDialog) self = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(KpCredential) credential = kp_gateway_import_login_finish (KP_GATEWAY (object), result,
                                                                       &error);

  account_added (self, credential, error, TRUE);
}

static const char *
account_label (KpAddKeyDialog *self)
{
  const char *label = gtk_editable_get_text (GTK_EDITABLE (self->label_row));

  return label[0] != '\0' ? label : NULL;
}

static void
import_login (KpAddKeyDialog *self)
{
  const char *provider_id = selected_provider_id (self);

  if (provider_id == NULL || self->busy)
    return;
  show_status (self, TRUE, _("Importing the account…"));
  g_clear_object (&self->cancellable);
  self->cancellable = g_cancellable_new ();
  kp_gateway_import_login_async (self->gateway, provider_id, account_label (self),
                                 self->cancellable, on_imported, g_object_ref (self));
}

static void
on_import_clicked (KpAddKeyDialog *self)
{
  import_login (self);
}

/* The provider's words are shown only when they look like a code. */
static gboolean
looks_like_code (const char *code)
{
  if (code == NULL || code[0] == '\0' || strlen (code) > MAX_USER_CODE)
    return FALSE;
  for (const char *c = code; *c != '\0'; c++)
    if (!g_ascii_isalnum (*c) && *c != '-')
      return FALSE;
  return TRUE;
}

/* A device sign-in's page carries the code the user must see. */
static char *
dup_user_code (const char *url)
{
  g_autoptr(GUri) uri = g_uri_parse (url, G_URI_FLAGS_ENCODED_QUERY, NULL);
  g_autoptr(GHashTable) params = NULL;
  const char *code;

  if (uri == NULL || g_uri_get_query (uri) == NULL)
    return NULL;
  params = g_uri_parse_params (g_uri_get_query (uri), -1, "&", G_URI_PARAMS_NONE, NULL);
  code = params ? g_hash_table_lookup (params, "user_code") : NULL;
  return looks_like_code (code) ? g_strdup (code) : NULL;
}

/* Shows where the user signs in, and the code to enter there when the
 * sign-in gives one (with @code, or in the page's query).
 */
static void
show_sign_in_page (KpAddKeyDialog *self,
                   const char     *url,
                   const char     *code)
{
  g_autofree char *found = NULL;

  g_free (self->url);
  self->url = g_strdup (url);
  gtk_label_set_label (self->url_label, self->url ? self->url : "");
  gtk_widget_set_tooltip_text (GTK_WIDGET (self->url_label), self->url);
  if (code == NULL && self->url != NULL)
    code = found = dup_user_code (self->url);
  if (code != NULL)
    {
      /* Translators: %s is a code such as “ABCD-1234”, typed on the sign-in page. */
      g_autofree char *text = g_strdup_printf (_("Code: %s"), code);

      gtk_label_set_label (self->user_code_label, text);
    }
  gtk_widget_set_visible (GTK_WIDGET (self->user_code_label), code != NULL);
  gtk_widget_set_visible (self->sign_in_box, self->url != NULL);
}

/* A device sign-in (Qwen Code) tells its code once the provider gave it. */
static void
on_login_code (KpGateway      *gateway,
               const char     *provider_id,
               const char     *user_code,
               const char     *url,
               KpAddKeyDialog *self)
{
  const char *checked = looks_like_code (user_code) ? user_code : NULL;

  if (!self->busy || g_strcmp0 (provider_id, selected_provider_id (self)) != 0)
    return;
  show_status (self, TRUE, checked ? _("Enter the code on the sign-in page, then approve")
                                   : _("Waiting for you to sign in in your browser…"));
  show_sign_in_page (self, url, checked);
}

static void
sign_in (KpAddKeyDialog *self)
{
  const char *provider_id = selected_provider_id (self);
  g_autoptr(GError) error = NULL;
  g_autofree char *url = NULL;

  if (provider_id == NULL || self->busy)
    return;
  g_clear_object (&self->cancellable);
  self->cancellable = g_cancellable_new ();
  if (!kp_gateway_login_async (self->gateway, provider_id, account_label (self), TRUE, 0, &url,
                               self->cancellable, on_signed_in, g_object_ref (self), &error))
    {
      /* The callback is not called: its reference is dropped here. */
      g_object_unref (self);
      show_status (self, FALSE, error->message);
      return;
    }

  show_status (self, TRUE, _("Waiting for you to sign in in your browser…"));
  show_sign_in_page (self, url, NULL);
}

static void
on_copy_url_clicked (KpAddKeyDialog *self)
{
  if (self->url != NULL)
    kp_ui_copy (GTK_WIDGET (self), self->url, NULL);
}

static void
on_response (KpAddKeyDialog *self,
             const char     *response)
{
  if (g_str_equal (response, "add") && self->account && (self->ways & KP_WAY_IN_SIGN_IN))
    sign_in (self);
  else if (g_str_equal (response, "add") && self->account)
    import_login (self);
  else if (g_str_equal (response, "add"))
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
  gtk_widget_class_bind_template_child (widget_class, KpAddKeyDialog, multiplier_row);
  gtk_widget_class_bind_template_child (widget_class, KpAddKeyDialog, import_list);
  gtk_widget_class_bind_template_child (widget_class, KpAddKeyDialog, import_row);
  gtk_widget_class_bind_template_child (widget_class, KpAddKeyDialog, import_button);
  gtk_widget_class_bind_template_child (widget_class, KpAddKeyDialog, sign_in_box);
  gtk_widget_class_bind_template_child (widget_class, KpAddKeyDialog, user_code_label);
  gtk_widget_class_bind_template_child (widget_class, KpAddKeyDialog, url_label);
  gtk_widget_class_bind_template_child (widget_class, KpAddKeyDialog, status_box);
  gtk_widget_class_bind_template_child (widget_class, KpAddKeyDialog, status_spinner);
  gtk_widget_class_bind_template_child (widget_class, KpAddKeyDialog, status_icon);
  gtk_widget_class_bind_template_child (widget_class, KpAddKeyDialog, status_label);
  gtk_widget_class_bind_template_callback (widget_class, on_response);
  gtk_widget_class_bind_template_callback (widget_class, on_secret_changed);
  gtk_widget_class_bind_template_callback (widget_class, on_provider_selected);
  gtk_widget_class_bind_template_callback (widget_class, on_import_clicked);
  gtk_widget_class_bind_template_callback (widget_class, on_copy_url_clicked);
}

static void
kp_add_key_dialog_init (KpAddKeyDialog *self)
{
  self->provider_ids = g_ptr_array_new_with_free_func (g_free);
  gtk_widget_init_template (GTK_WIDGET (self));
}
