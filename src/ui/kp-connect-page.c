/* kp-connect-page.c: how tools connect to Keypool
 *
 * The base URL and the access token with copy buttons, regenerating the
 * token, and ready-to-paste settings for common tools. The token is
 * Keypool's own (not a provider key); it is still hidden until asked for.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include "kp-connect-page.h"

#include <string.h>

#include <glib/gi18n.h>

#include "kp-clients-group.h"
#include "kp-tool-row.h"
#include "kp-ui-util.h"

#define FALLBACK_MODEL "openai/gpt-4.1-mini"

/* Tools whose settings Keypool cannot write (Cursor keeps them in its own
 * database): ready-to-paste settings. The others are KpToolRows.
 */
typedef enum
{
  TOOL_CURSOR,
  N_TOOLS
} Tool;

typedef struct
{
  Tool        tool;
  const char *format;
  GtkLabel   *label;    /* unowned: in the tool's row */
  GtkWidget  *button;   /* unowned */
} Snippet;

struct _KpConnectPage
{
  AdwBin               parent_instance;

  KpGateway           *gateway;
  AdwExpanderRow      *tool_rows[N_TOOLS];
  GPtrArray           *snippets;     /* of Snippet */
  GPtrArray           *connect_rows; /* of KpToolRow, unowned: in tools_group */

  AdwActionRow        *url_row;
  AdwActionRow        *token_row;
  GtkToggleButton     *reveal_button;
  GtkWidget           *copy_url_button;
  GtkWidget           *copy_token_button;
  GtkWidget           *regenerate_button;
  AdwPreferencesGroup *tools_group;
  KpClientsGroup      *clients_group;
};

G_DEFINE_FINAL_TYPE (KpConnectPage, kp_connect_page, ADW_TYPE_BIN)

static void
kp_connect_page_dispose (GObject *object)
{
  KpConnectPage *self = KP_CONNECT_PAGE (object);

  /* AdwBin would unparent its child again after the template dropped it. */
  adw_bin_set_child (ADW_BIN (self), NULL);
  gtk_widget_dispose_template (GTK_WIDGET (self), KP_TYPE_CONNECT_PAGE);
  g_clear_pointer (&self->snippets, g_ptr_array_unref);
  g_clear_pointer (&self->connect_rows, g_ptr_array_unref);
  g_clear_object (&self->gateway);

  G_OBJECT_CLASS (kp_connect_page_parent_class)->dispose (object);
}

static void
on_copy_url (KpConnectPage *self)
{
  g_autofree char *url = NULL;

  if (self->gateway == NULL)
    return;
  url = kp_gateway_dup_base_url (self->gateway);
  kp_ui_copy (GTK_WIDGET (self), url, _("Base URL copied"));
}

static void
on_copy_token (KpConnectPage *self)
{
  const char *token = self->gateway ? kp_gateway_get_token (self->gateway) : NULL;

  if (token != NULL)
    kp_ui_copy (GTK_WIDGET (self), token, _("Token copied"));
}

static void
on_regenerated (GObject      *object,
                GAsyncResult *result,
                gpointer      user_data)
{
  g_autoptr(KpConnectPage) self = user_data;
  g_autoptr(GError) error = NULL;

  gtk_widget_set_sensitive (self->regenerate_button, TRUE);
  if (!kp_gateway_regenerate_token_finish (KP_GATEWAY (object), result, &error))
    kp_ui_toast (GTK_WIDGET (self), error->message);
  else
    kp_ui_toast (GTK_WIDGET (self), _("A new token is in use; give it to your tools"));
  kp_connect_page_refresh (self);
}

static void
on_regenerate_response (AdwMessageDialog *dialog,
                        const char       *response,
                        KpConnectPage    *self)
{
  if (!g_str_equal (response, "regenerate") || self->gateway == NULL)
    return;
  gtk_widget_set_sensitive (self->regenerate_button, FALSE);
  kp_gateway_regenerate_token_async (self->gateway, NULL, on_regenerated, g_object_ref (self));
}

static void
on_regenerate_clicked (KpConnectPage *self)
{
  GtkWidget *dialog;

  dialog = adw_message_dialog_new (GTK_WINDOW (gtk_widget_get_root (GTK_WIDGET (self))),
                                   _("Regenerate Token?"),
                                   _("Tools that use the current token stop working until you give "
                                     "them the new one."));
  adw_message_dialog_add_responses (ADW_MESSAGE_DIALOG (dialog),
                                    "cancel", _("_Cancel"),
                                    "regenerate", _("_Regenerate"),
                                    NULL);
  adw_message_dialog_set_response_appearance (ADW_MESSAGE_DIALOG (dialog), "regenerate",
                                              ADW_RESPONSE_DESTRUCTIVE);
  adw_message_dialog_set_default_response (ADW_MESSAGE_DIALOG (dialog), "cancel");
  adw_message_dialog_set_close_response (ADW_MESSAGE_DIALOG (dialog), "cancel");
  g_signal_connect_object (dialog, "response", G_CALLBACK (on_regenerate_response), self, 0);
  gtk_window_present (GTK_WINDOW (dialog));
}

/* A model the user can use now, for the examples. */
static const char *
example_model (KpConnectPage *self)
{
  KpCatalog *catalog = kp_gateway_get_catalog (self->gateway);
  GPtrArray *ids = kp_catalog_get_model_ids (catalog);

  for (guint i = 0; i < ids->len; i++)
    {
      GPtrArray *offerings = kp_catalog_lookup (catalog, g_ptr_array_index (ids, i));

      for (guint j = 0; offerings != NULL && j < offerings->len; j++)
        {
          const KpOffering *offering = g_ptr_array_index (offerings, j);

          if (kp_provider_get_requires_key (offering->provider) &&
              kp_gateway_provider_is_usable (self->gateway, offering->provider))
            return g_ptr_array_index (ids, i);
        }
    }
  return FALLBACK_MODEL;
}

static void
on_copy_snippet (GtkButton *button,
                 gpointer   user_data)
{
  const char *text = g_object_get_data (G_OBJECT (button), "snippet");

  if (text != NULL)
    kp_ui_copy (GTK_WIDGET (button), text, _("Settings copied"));
}

/* Notes and snippets are not rows one activates: the keyboard goes to
 * their text and buttons.
 */
static void
add_child (KpConnectPage *self,
           Tool           tool,
           GtkWidget     *child)
{
  GtkWidget *row = gtk_list_box_row_new ();

  gtk_list_box_row_set_child (GTK_LIST_BOX_ROW (row), child);
  gtk_list_box_row_set_activatable (GTK_LIST_BOX_ROW (row), FALSE);
  gtk_widget_set_focusable (row, FALSE);
  adw_expander_row_add_row (self->tool_rows[tool], row);
}

static void
add_note (KpConnectPage *self,
          Tool           tool,
          const char    *note)
{
  GtkWidget *label = gtk_label_new (note);

  gtk_label_set_wrap (GTK_LABEL (label), TRUE);
  gtk_label_set_xalign (GTK_LABEL (label), 0.0f);
  gtk_widget_set_margin_top (label, 12);
  gtk_widget_set_margin_bottom (label, 6);
  gtk_widget_set_margin_start (label, 12);
  gtk_widget_set_margin_end (label, 12);
  add_child (self, tool, label);
}

/* A snippet's @format has @URL@, @TOKEN@ and @MODEL@ filled in on refresh. */
static void
add_snippet (KpConnectPage *self,
             Tool           tool,
             const char    *format)
{
  Snippet *snippet = g_new0 (Snippet, 1);
  GtkWidget *box = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 6);
  g_autofree char *copy_label = NULL;
  const char *title = adw_preferences_row_get_title (ADW_PREFERENCES_ROW (self->tool_rows[tool]));

  snippet->tool = tool;
  snippet->format = format;
  snippet->label = GTK_LABEL (gtk_label_new (NULL));
  snippet->button = gtk_button_new_from_icon_name ("edit-copy-symbolic");
  g_ptr_array_add (self->snippets, snippet);

  gtk_label_set_selectable (snippet->label, TRUE);
  gtk_label_set_wrap (snippet->label, TRUE);
  gtk_label_set_wrap_mode (snippet->label, PANGO_WRAP_WORD_CHAR);
  gtk_label_set_xalign (snippet->label, 0.0f);
  gtk_widget_set_hexpand (GTK_WIDGET (snippet->label), TRUE);
  gtk_widget_add_css_class (GTK_WIDGET (snippet->label), "monospace");
  gtk_widget_set_margin_top (box, 6);
  gtk_widget_set_margin_bottom (box, 12);
  gtk_widget_set_margin_start (box, 12);
  gtk_widget_set_margin_end (box, 6);

  /* Translators: %s is a tool, such as “aider”. */
  copy_label = g_strdup_printf (_("Copy %s Settings"), title);
  gtk_widget_set_tooltip_text (snippet->button, copy_label);
  kp_ui_set_accessible_label (snippet->button, copy_label);
  gtk_widget_set_valign (snippet->button, GTK_ALIGN_START);
  gtk_widget_add_css_class (snippet->button, "flat");
  g_signal_connect (snippet->button, "clicked", G_CALLBACK (on_copy_snippet), NULL);

  gtk_box_append (GTK_BOX (box), GTK_WIDGET (snippet->label));
  gtk_box_append (GTK_BOX (box), snippet->button);
  add_child (self, tool, box);
}

static void
build_tools (KpConnectPage *self)
{
  add_note (self, TOOL_CURSOR,
            _("In Cursor’s settings, under Models: turn on OpenAI API Key and paste the "
              "token, turn on Override OpenAI Base URL and paste the base URL, then add the "
              "models you want by their Keypool names."));
  add_snippet (self, TOOL_CURSOR,
               "OpenAI API Key: @TOKEN@\n"
               "Override OpenAI Base URL: @URL@\n"
               "Model: @MODEL@");

}

static char *
fill (const char *format,
      const char *url,
      const char *root,
      const char *token,
      const char *model)
{
  g_autoptr(GString) text = g_string_new (format);

  g_string_replace (text, "@URL@", url, 0);
  g_string_replace (text, "@ROOT@", root, 0);
  g_string_replace (text, "@TOKEN@", token, 0);
  g_string_replace (text, "@MODEL@", model, 0);
  return g_string_free (g_steal_pointer (&text), FALSE);
}

static void
refresh_tools (KpConnectPage *self,
               const char    *url,
               const char    *token,
               const char    *shown_token)
{
  const char *model = example_model (self);
  g_autofree char *root = NULL;

  root = g_strdup_printf ("http://127.0.0.1:%u", kp_gateway_get_port (self->gateway));

  for (guint i = 0; i < self->snippets->len; i++)
    {
      Snippet *snippet = g_ptr_array_index (self->snippets, i);
      g_autofree char *shown = fill (snippet->format, url, root, shown_token, model);

      gtk_label_set_label (snippet->label, shown);
      g_object_set_data_full (G_OBJECT (snippet->button), "snippet",
                              fill (snippet->format, url, root, token, model), g_free);
    }
}

static void
kp_connect_page_class_init (KpConnectPageClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = kp_connect_page_dispose;

  g_type_ensure (KP_TYPE_CLIENTS_GROUP);
  gtk_widget_class_set_template_from_resource (widget_class, KP_UI_RESOURCE ("kp-connect-page.ui"));
  gtk_widget_class_bind_template_child (widget_class, KpConnectPage, url_row);
  gtk_widget_class_bind_template_child (widget_class, KpConnectPage, token_row);
  gtk_widget_class_bind_template_child (widget_class, KpConnectPage, reveal_button);
  gtk_widget_class_bind_template_child (widget_class, KpConnectPage, copy_url_button);
  gtk_widget_class_bind_template_child (widget_class, KpConnectPage, copy_token_button);
  gtk_widget_class_bind_template_child (widget_class, KpConnectPage, regenerate_button);
  gtk_widget_class_bind_template_child (widget_class, KpConnectPage, tools_group);
  gtk_widget_class_bind_template_child (widget_class, KpConnectPage, clients_group);
  gtk_widget_class_bind_template_callback (widget_class, on_copy_url);
  gtk_widget_class_bind_template_callback (widget_class, on_copy_token);
  gtk_widget_class_bind_template_callback (widget_class, on_regenerate_clicked);
  gtk_widget_class_bind_template_callback (widget_class, kp_connect_page_refresh);
}

static void
kp_connect_page_init (KpConnectPage *self)
{
  const char *names[N_TOOLS] = { "Cursor" };
  const char *subtitles[N_TOOLS] = {
    _("OpenAI API key and base URL in its settings"),
  };

  gtk_widget_init_template (GTK_WIDGET (self));

  for (guint i = 0; i < N_TOOLS; i++)
    {
      self->tool_rows[i] = ADW_EXPANDER_ROW (adw_expander_row_new ());
      adw_preferences_row_set_use_markup (ADW_PREFERENCES_ROW (self->tool_rows[i]), FALSE);
      adw_preferences_row_set_title (ADW_PREFERENCES_ROW (self->tool_rows[i]), names[i]);
      adw_expander_row_set_subtitle (self->tool_rows[i], subtitles[i]);
      adw_preferences_group_add (self->tools_group, GTK_WIDGET (self->tool_rows[i]));
    }
  self->snippets = g_ptr_array_new_with_free_func (g_free);
  self->connect_rows = g_ptr_array_new ();
  build_tools (self);
}

void
kp_connect_page_set_gateway (KpConnectPage *self,
                             KpGateway     *gateway)
{
  g_return_if_fail (KP_IS_CONNECT_PAGE (self));
  g_return_if_fail (KP_IS_GATEWAY (gateway));
  g_return_if_fail (self->gateway == NULL);

  self->gateway = g_object_ref (gateway);
  for (const KpConnectTool * const *tool = kp_connect_get_tools (); *tool != NULL; tool++)
    {
      KpToolRow *row = kp_tool_row_new (gateway, *tool);

      g_ptr_array_add (self->connect_rows, row);
      adw_preferences_group_add (self->tools_group, GTK_WIDGET (row));
    }
  kp_clients_group_set_gateway (self->clients_group, gateway);
  g_signal_connect_object (gateway, "changed", G_CALLBACK (kp_connect_page_refresh), self,
                           G_CONNECT_SWAPPED);
  kp_connect_page_refresh (self);
}

/**
 * kp_connect_page_refresh:
 * @self: a #KpConnectPage
 *
 * Shows the current base URL and token, in the page and in the snippets.
 */
void
kp_connect_page_refresh (KpConnectPage *self)
{
  g_autofree char *url = NULL;
  g_autofree char *masked = NULL;
  const char *token;
  const char *reveal_label;
  gboolean reveal;
  gsize len;

  g_return_if_fail (KP_IS_CONNECT_PAGE (self));

  if (self->gateway == NULL)
    return;

  url = kp_gateway_dup_base_url (self->gateway);
  token = kp_gateway_get_token (self->gateway);
  reveal = gtk_toggle_button_get_active (self->reveal_button);
  gtk_button_set_icon_name (GTK_BUTTON (self->reveal_button),
                            reveal ? "view-conceal-symbolic" : "view-reveal-symbolic");
  reveal_label = reveal ? _("Hide Token") : _("Show Token");
  gtk_widget_set_tooltip_text (GTK_WIDGET (self->reveal_button), reveal_label);
  kp_ui_set_accessible_label (GTK_WIDGET (self->reveal_button), reveal_label);

  if (!kp_gateway_is_serving (self->gateway))
    {
      g_autofree char *starting = g_strdup_printf (_("%s (starting…)"), url);

      adw_action_row_set_subtitle (self->url_row, starting);
    }
  else
    adw_action_row_set_subtitle (self->url_row, url);

  gtk_widget_set_sensitive (self->copy_token_button, token != NULL);
  gtk_widget_set_sensitive (GTK_WIDGET (self->reveal_button), token != NULL);
  gtk_widget_set_sensitive (self->regenerate_button, token != NULL);
  if (token == NULL)
    {
      adw_action_row_set_subtitle (self->token_row, _("Not made yet: Keypool is starting"));
      return;
    }

  len = strlen (token);
  masked = g_strdup_printf ("••••••••%s", len > 4 ? token + len - 4 : "");
  adw_action_row_set_subtitle (self->token_row, reveal ? token : masked);
  refresh_tools (self, url, token, reveal ? token : masked);
  for (guint i = 0; i < self->connect_rows->len; i++)
    kp_tool_row_refresh (g_ptr_array_index (self->connect_rows, i), token, reveal ? token : masked);
}
