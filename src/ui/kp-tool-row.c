/* kp-tool-row.c: one tool on the Connect page, with its Connect button
 *
 * The row says whether the tool is installed and whether its config points
 * at Keypool now, with which model. Connect writes the tool's config with a
 * client token of its own (kp_connector_connect_async()); the model field
 * changes the model. Inside, the same settings to paste by hand, with the
 * main token, for a file Keypool cannot edit.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include "kp-tool-row.h"

#include <string.h>

#include <glib/gi18n.h>

#include "connect/kp-connector.h"
#include "kp-ui-util.h"

struct _KpToolRow
{
  AdwExpanderRow       parent_instance;

  KpGateway           *gateway;
  const KpConnectTool *tool;
  gboolean             busy;

  GtkWidget           *connect_button;
  GtkWidget           *disconnect_button;
  AdwEntryRow         *model_row;
  GtkLabel            *problem_label;
  GtkLabel            *path_label;
  GtkLabel            *snippet_label;
  GtkWidget           *copy_button;
};

G_DEFINE_FINAL_TYPE (KpToolRow, kp_tool_row, ADW_TYPE_EXPANDER_ROW)

static void
kp_tool_row_dispose (GObject *object)
{
  KpToolRow *self = KP_TOOL_ROW (object);

  g_clear_object (&self->gateway);
  G_OBJECT_CLASS (kp_tool_row_parent_class)->dispose (object);
}

static void
kp_tool_row_class_init (KpToolRowClass *klass)
{
  G_OBJECT_CLASS (klass)->dispose = kp_tool_row_dispose;
}

static void
kp_tool_row_init (KpToolRow *self)
{
}

static const char *
home (void)
{
  return g_get_home_dir ();
}

/* The status and the buttons, from the tool's file as it is now. */
static void
update_status (KpToolRow *self)
{
  g_auto(KpConnectStatus) status = { 0 };
  g_autofree char *url = kp_gateway_dup_base_url (self->gateway);
  g_autofree char *subtitle = NULL;
  const char *installed;
  const char *config;

  kp_connect_inspect (self->tool, home (), url, &status);
  installed = status.installed ? _("Installed") : _("Not found on this computer");
  switch (status.state)
    {
    case KP_CONNECT_FILE_CONNECTED:
      config = _("Uses Keypool");
      break;
    case KP_CONNECT_FILE_OTHER:
      config = _("Not set up for Keypool");
      break;
    case KP_CONNECT_FILE_UNREADABLE:
      config = _("Its settings file cannot be edited");
      break;
    case KP_CONNECT_FILE_MISSING:
    default:
      config = _("No settings file yet");
      break;
    }
  if (status.model != NULL)
    /* Translators: installed or not · connected or not · the model. */
    subtitle = g_strdup_printf (_("%s · %s · %s"), installed, config, status.model);
  else
    subtitle = g_strdup_printf (_("%s · %s"), installed, config);
  adw_expander_row_set_subtitle (ADW_EXPANDER_ROW (self), subtitle);

  gtk_label_set_label (self->path_label, status.path);
  gtk_widget_set_visible (GTK_WIDGET (self->problem_label), status.problem != NULL);
  if (status.problem != NULL)
    {
      g_autofree char *text = g_strdup_printf (_("Keypool leaves it alone: %s. Paste the settings "
                                                 "below into it yourself."), status.problem);

      gtk_label_set_label (self->problem_label, text);
    }

  gtk_widget_set_sensitive (self->connect_button, !self->busy);
  gtk_widget_set_visible (self->disconnect_button, status.restorable);
  gtk_widget_set_sensitive (self->disconnect_button, !self->busy);
  if (status.model != NULL &&
      !g_str_equal (gtk_editable_get_text (GTK_EDITABLE (self->model_row)), status.model))
    gtk_editable_set_text (GTK_EDITABLE (self->model_row), status.model);
  else if (status.model == NULL && *gtk_editable_get_text (GTK_EDITABLE (self->model_row)) == '\0')
    {
      gboolean served;
      g_autofree char *pick = kp_connector_pick_model (self->gateway, self->tool, &served);

      gtk_editable_set_text (GTK_EDITABLE (self->model_row), pick);
    }
}

static void
on_connected (GObject      *object,
              GAsyncResult *res,
              gpointer      user_data)
{
  g_autoptr(KpToolRow) self = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(KpConnectResult) result = NULL;
  g_autofree char *message = NULL;

  self->busy = FALSE;
  result = kp_connector_connect_finish (KP_GATEWAY (object), res, &error);
  if (result == NULL)
    message = g_strdup (error->message);
  else if (result->problem != NULL)
    {
      message = g_strdup_printf (_("Nothing is written to %s: paste the settings yourself"),
                                 result->path);
      adw_expander_row_set_expanded (ADW_EXPANDER_ROW (self), TRUE);
    }
  else if (result->model_served)
    /* Translators: a tool, and the model it now uses. */
    message = g_strdup_printf (_("%s uses Keypool, with %s"), self->tool->name, result->model);
  else
    message = g_strdup_printf (_("%s uses Keypool, with %s, which none of your keys serves yet"),
                               self->tool->name, result->model);
  if (result != NULL && result->problem == NULL && result->opened_mode != 0)
    {
      /* Translators: a sentence after the one above; %s is a file. */
      char *more = g_strdup_printf (_("%s. Only you can read %s now: it holds a token"), message,
                                    result->token_path);

      g_free (message);
      message = more;
    }
  kp_ui_toast (GTK_WIDGET (self), message);
  update_status (self);
}

static void
connect_with (KpToolRow  *self,
              const char *model)
{
  if (self->busy)
    return;
  self->busy = TRUE;
  gtk_widget_set_sensitive (self->connect_button, FALSE);
  kp_connector_connect_async (self->gateway, self->tool, home (), model, NULL, on_connected,
                              g_object_ref (self));
}

static void
on_connect_clicked (KpToolRow *self)
{
  const char *model = gtk_editable_get_text (GTK_EDITABLE (self->model_row));

  connect_with (self, *model != '\0' ? model : NULL);
}

static void
on_model_applied (KpToolRow *self)
{
  on_connect_clicked (self);
}

static void
on_disconnected (GObject      *object,
                 GAsyncResult *res,
                 gpointer      user_data)
{
  g_autoptr(KpToolRow) self = user_data;
  g_autoptr(GError) error = NULL;
  g_autofree char *message = NULL;

  self->busy = FALSE;
  if (!kp_connector_disconnect_finish (KP_GATEWAY (object), res, &error))
    message = g_strdup (error->message);
  else
    message = g_strdup_printf (_("%s’s settings are as they were before Keypool"), self->tool->name);
  kp_ui_toast (GTK_WIDGET (self), message);
  gtk_editable_set_text (GTK_EDITABLE (self->model_row), "");
  update_status (self);
}

static void
on_disconnect_clicked (KpToolRow *self)
{
  if (self->busy)
    return;
  self->busy = TRUE;
  gtk_widget_set_sensitive (self->disconnect_button, FALSE);
  kp_connector_disconnect_async (self->gateway, self->tool, home (), NULL, on_disconnected,
                                 g_object_ref (self));
}

static void
on_copy (GtkButton *button,
         gpointer   user_data)
{
  const char *text = g_object_get_data (G_OBJECT (button), "snippet");

  if (text != NULL)
    kp_ui_copy (GTK_WIDGET (button), text, _("Settings copied"));
}

static GtkLabel *
add_label (KpToolRow *self,
           GtkWidget *box)
{
  GtkWidget *label = gtk_label_new (NULL);

  gtk_label_set_wrap (GTK_LABEL (label), TRUE);
  gtk_label_set_wrap_mode (GTK_LABEL (label), PANGO_WRAP_WORD_CHAR);
  gtk_label_set_xalign (GTK_LABEL (label), 0.0f);
  gtk_widget_set_hexpand (label, TRUE);
  gtk_box_append (GTK_BOX (box), label);
  return GTK_LABEL (label);
}

static void
add_child (KpToolRow *self,
           GtkWidget *child)
{
  GtkWidget *row = gtk_list_box_row_new ();

  gtk_list_box_row_set_child (GTK_LIST_BOX_ROW (row), child);
  gtk_list_box_row_set_activatable (GTK_LIST_BOX_ROW (row), FALSE);
  gtk_widget_set_focusable (row, FALSE);
  adw_expander_row_add_row (ADW_EXPANDER_ROW (self), row);
}

static void
build (KpToolRow *self)
{
  g_autofree char *connect_label = NULL;
  g_autofree char *disconnect_label = NULL;
  g_autofree char *copy_label = NULL;
  GtkWidget *notes = gtk_box_new (GTK_ORIENTATION_VERTICAL, 6);
  GtkWidget *snippet = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 6);
  gboolean several;

  adw_preferences_row_set_use_markup (ADW_PREFERENCES_ROW (self), FALSE);
  adw_preferences_row_set_title (ADW_PREFERENCES_ROW (self), self->tool->name);

  /* Translators: %s is a tool, such as “Codex”. */
  connect_label = g_strdup_printf (_("Connect %s"), self->tool->name);
  self->connect_button = gtk_button_new_with_mnemonic (_("_Connect"));
  gtk_widget_set_valign (self->connect_button, GTK_ALIGN_CENTER);
  gtk_widget_set_tooltip_text (self->connect_button,
                               _("Write its settings so that it uses Keypool, with a token of its own"));
  kp_ui_set_accessible_label (self->connect_button, connect_label);
  g_signal_connect_swapped (self->connect_button, "clicked", G_CALLBACK (on_connect_clicked), self);
  adw_expander_row_add_action (ADW_EXPANDER_ROW (self), self->connect_button);

  disconnect_label = g_strdup_printf (_("Disconnect %s"), self->tool->name);
  self->disconnect_button = gtk_button_new_from_icon_name ("edit-undo-symbolic");
  gtk_widget_set_valign (self->disconnect_button, GTK_ALIGN_CENTER);
  gtk_widget_add_css_class (self->disconnect_button, "flat");
  gtk_widget_set_tooltip_text (self->disconnect_button,
                               _("Put its settings back as they were before Keypool"));
  kp_ui_set_accessible_label (self->disconnect_button, disconnect_label);
  g_signal_connect_swapped (self->disconnect_button, "clicked", G_CALLBACK (on_disconnect_clicked), self);
  adw_expander_row_add_action (ADW_EXPANDER_ROW (self), self->disconnect_button);

  self->model_row = ADW_ENTRY_ROW (adw_entry_row_new ());
  adw_preferences_row_set_title (ADW_PREFERENCES_ROW (self->model_row), _("Model"));
  adw_entry_row_set_show_apply_button (self->model_row, TRUE);
  g_signal_connect_swapped (self->model_row, "apply", G_CALLBACK (on_model_applied), self);
  adw_expander_row_add_row (ADW_EXPANDER_ROW (self), GTK_WIDGET (self->model_row));

  gtk_widget_set_margin_top (notes, 12);
  gtk_widget_set_margin_bottom (notes, 6);
  gtk_widget_set_margin_start (notes, 12);
  gtk_widget_set_margin_end (notes, 12);
  self->problem_label = add_label (self, notes);
  gtk_widget_add_css_class (GTK_WIDGET (self->problem_label), "error");
  several = self->tool->files[1].path != NULL;
  gtk_label_set_label (add_label (self, notes),
                       several ? _("Its settings files; Connect keeps a backup beside each:")
                               : _("Its settings file; Connect keeps a backup beside it:"));
  self->path_label = add_label (self, notes);
  gtk_label_set_selectable (self->path_label, TRUE);
  gtk_widget_add_css_class (GTK_WIDGET (self->path_label), "monospace");
  /* What the user should know of the tool (Gemini CLI: trusted folders). */
  if (self->tool->note != NULL)
    gtk_label_set_label (add_label (self, notes), self->tool->note);
  gtk_label_set_label (add_label (self, notes),
                       several ? _("Or put this in them yourself, with the main token:")
                               : _("Or put this in it yourself, with the main token:"));
  add_child (self, notes);

  gtk_widget_set_margin_bottom (snippet, 12);
  gtk_widget_set_margin_start (snippet, 12);
  gtk_widget_set_margin_end (snippet, 6);
  self->snippet_label = add_label (self, snippet);
  gtk_label_set_selectable (self->snippet_label, TRUE);
  gtk_widget_add_css_class (GTK_WIDGET (self->snippet_label), "monospace");
  self->copy_button = gtk_button_new_from_icon_name ("edit-copy-symbolic");
  copy_label = g_strdup_printf (_("Copy %s Settings"), self->tool->name);
  gtk_widget_set_tooltip_text (self->copy_button, copy_label);
  kp_ui_set_accessible_label (self->copy_button, copy_label);
  gtk_widget_set_valign (self->copy_button, GTK_ALIGN_START);
  gtk_widget_add_css_class (self->copy_button, "flat");
  g_signal_connect (self->copy_button, "clicked", G_CALLBACK (on_copy), NULL);
  gtk_box_append (GTK_BOX (snippet), self->copy_button);
  add_child (self, snippet);
}

KpToolRow *
kp_tool_row_new (KpGateway           *gateway,
                 const KpConnectTool *tool)
{
  KpToolRow *self;

  g_return_val_if_fail (KP_IS_GATEWAY (gateway), NULL);
  g_return_val_if_fail (tool != NULL, NULL);

  self = g_object_new (KP_TYPE_TOOL_ROW, NULL);
  self->gateway = g_object_ref (gateway);
  self->tool = tool;
  build (self);
  return self;
}

/**
 * kp_tool_row_refresh:
 * @token: the main token, for what is copied
 * @shown_token: the token as shown (masked unless asked for)
 *
 * Reads the tool's settings file again and fills in the snippet.
 */
void
kp_tool_row_refresh (KpToolRow  *self,
                     const char *token,
                     const char *shown_token)
{
  g_autofree char *url = NULL;
  g_autofree char *root = NULL;
  g_autofree char *shown = NULL;
  const char *model;

  g_return_if_fail (KP_IS_TOOL_ROW (self));

  update_status (self);
  url = kp_gateway_dup_base_url (self->gateway);
  root = g_strdup_printf ("http://127.0.0.1:%u", kp_gateway_get_port (self->gateway));
  model = gtk_editable_get_text (GTK_EDITABLE (self->model_row));
  {
    KpConnectValues shown_values = { url, root, shown_token, model };
    KpConnectValues values = { url, root, token, model };

    shown = kp_connect_dup_snippet (self->tool, &shown_values);
    gtk_label_set_label (self->snippet_label, shown);
    g_object_set_data_full (G_OBJECT (self->copy_button), "snippet",
                            kp_connect_dup_snippet (self->tool, &values), g_free);
  }
}
