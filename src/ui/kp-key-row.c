/* kp-key-row.c: one provider key in the Providers page
 *
 * Shows the key's label, its last four characters and its health; its
 * options popover changes the multiplier, turns it off, resets its state
 * or asks to remove it. The secret itself is never shown. An account
 * (a sign-in: its secret is a refresh token, whose end means nothing to
 * its owner) is shown as an account, by its label.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include "kp-key-row.h"

#include <glib/gi18n.h>

#include "kp-ui-util.h"

struct _KpKeyRow
{
  AdwActionRow    parent_instance;

  KpGateway      *gateway;
  KpCredential   *credential;
  gboolean        updating;

  GtkImage       *state_icon;
  GtkMenuButton  *options_button;
  GtkPopover     *options_popover;
  GtkSpinButton  *multiplier_spin;
  GtkSwitch      *enabled_switch;
  GtkWidget      *reset_button;
  GtkWidget      *remove_button;
  GtkWidget      *verify_button;
  GtkWidget      *retry_button;
};

G_DEFINE_FINAL_TYPE (KpKeyRow, kp_key_row, ADW_TYPE_ACTION_ROW)

KpKeyRow *
kp_key_row_new (KpGateway    *gateway,
                KpCredential *credential)
{
  KpKeyRow *self;

  g_return_val_if_fail (KP_IS_GATEWAY (gateway), NULL);
  g_return_val_if_fail (KP_IS_CREDENTIAL (credential), NULL);

  self = g_object_new (KP_TYPE_KEY_ROW, NULL);
  self->gateway = g_object_ref (gateway);
  self->credential = g_object_ref (credential);
  kp_key_row_update (self);
  return self;
}

static void
kp_key_row_dispose (GObject *object)
{
  KpKeyRow *self = KP_KEY_ROW (object);

  gtk_widget_dispose_template (GTK_WIDGET (self), KP_TYPE_KEY_ROW);
  g_clear_object (&self->credential);
  g_clear_object (&self->gateway);

  G_OBJECT_CLASS (kp_key_row_parent_class)->dispose (object);
}

static void
on_options_changed (KpKeyRow *self)
{
  g_autoptr(GError) error = NULL;

  if (self->updating)
    return;

  if (!kp_gateway_set_key_options (self->gateway, kp_credential_get_id (self->credential),
                                   gtk_spin_button_get_value (self->multiplier_spin),
                                   gtk_switch_get_active (self->enabled_switch), &error))
    {
      kp_ui_toast (GTK_WIDGET (self), error->message);
      kp_key_row_update (self);
    }
}

static void
on_reset_clicked (KpKeyRow *self)
{
  g_autoptr(GError) error = NULL;

  gtk_popover_popdown (self->options_popover);
  if (!kp_gateway_reset_key (self->gateway, kp_credential_get_id (self->credential), &error))
    kp_ui_toast (GTK_WIDGET (self), error->message);
  else
    kp_ui_toast (GTK_WIDGET (self), _("The key is ready for use again"));
}

/* The page where the provider asks the account's owner to act. */
static void
on_verify_clicked (KpKeyRow *self)
{
  const char *url = kp_credential_get_user_url (self->credential);
  g_autoptr(GError) error = NULL;

  if (url == NULL)
    return;
  /* gtk_uri_launcher is GTK 4.10; this works on 4.8 and in a sandbox alike. */
  if (!g_app_info_launch_default_for_uri (url, NULL, &error))
    {
      /* Translators: %s is a web address. */
      g_autofree char *message = g_strdup_printf (_("No browser opened: visit %s"), url);

      g_debug ("Opening %s: %s", url, error->message);
      kp_ui_copy (GTK_WIDGET (self), url, message);
    }
}

static void
on_remove_clicked (KpKeyRow *self)
{
  gtk_popover_popdown (self->options_popover);
  gtk_widget_activate_action (GTK_WIDGET (self), "providers.remove-key", "x",
                              kp_credential_get_id (self->credential));
}

static void
kp_key_row_class_init (KpKeyRowClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = kp_key_row_dispose;

  gtk_widget_class_set_template_from_resource (widget_class, KP_UI_RESOURCE ("kp-key-row.ui"));
  gtk_widget_class_bind_template_child (widget_class, KpKeyRow, state_icon);
  gtk_widget_class_bind_template_child (widget_class, KpKeyRow, options_button);
  gtk_widget_class_bind_template_child (widget_class, KpKeyRow, options_popover);
  gtk_widget_class_bind_template_child (widget_class, KpKeyRow, multiplier_spin);
  gtk_widget_class_bind_template_child (widget_class, KpKeyRow, enabled_switch);
  gtk_widget_class_bind_template_child (widget_class, KpKeyRow, reset_button);
  gtk_widget_class_bind_template_child (widget_class, KpKeyRow, remove_button);
  gtk_widget_class_bind_template_child (widget_class, KpKeyRow, verify_button);
  gtk_widget_class_bind_template_child (widget_class, KpKeyRow, retry_button);
  gtk_widget_class_bind_template_callback (widget_class, on_options_changed);
  gtk_widget_class_bind_template_callback (widget_class, on_reset_clicked);
  gtk_widget_class_bind_template_callback (widget_class, on_remove_clicked);
  gtk_widget_class_bind_template_callback (widget_class, on_verify_clicked);
}

static void
kp_key_row_init (KpKeyRow *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));
}

gint64
kp_key_row_get_id (KpKeyRow *self)
{
  g_return_val_if_fail (KP_IS_KEY_ROW (self), 0);
  return kp_credential_get_id (self->credential);
}

/* What the key's health means, in words. */
static char *
describe_state (KpKeyRow    *self,
                const char **icon,
                const char **style)
{
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;
  KpCredentialState state = kp_credential_get_state (self->credential, now);
  gint64 until = kp_credential_get_state_until (self->credential);
  g_autofree char *when = until > 0 ? kp_ui_format_time (until) : NULL;

  *icon = "dialog-error-symbolic";
  *style = "error";

  if (kp_credential_get_secret (self->credential) == NULL)
    {
      *icon = "dialog-warning-symbolic";
      *style = "warning";
      if (!kp_gateway_is_serving (self->gateway))
        return g_strdup (_("Waiting for the keyring"));
      return g_strdup (_("Locked: the keyring did not give Keypool this key"));
    }
  if (!kp_credential_get_enabled (self->credential))
    {
      *icon = "media-playback-pause-symbolic";
      *style = "dim-label";
      return g_strdup (_("Turned off"));
    }

  switch (state)
    {
    case KP_CREDENTIAL_OK:
      *icon = "emblem-ok-symbolic";
      *style = "success";
      return g_strdup (_("Ready"));
    case KP_CREDENTIAL_COOLING:
      *icon = "dialog-warning-symbolic";
      *style = "warning";
      /* Translators: %s is a time of day. */
      return when ? g_strdup_printf (_("Cooling down until %s"), when)
                  : g_strdup (_("Cooling down"));
    case KP_CREDENTIAL_EXHAUSTED:
      return when ? g_strdup_printf (_("Out of quota until %s"), when)
                  : g_strdup (_("Out of quota"));
    case KP_CREDENTIAL_NEEDS_USER:
      *icon = "dialog-warning-symbolic";
      *style = "warning";
      return g_strdup (_("Waiting for you: the provider asks you to verify the account"));
    case KP_CREDENTIAL_INVALID:
    default:
      return g_strdup (_("Rejected by the provider"));
    }
}

/* Whether the credential is a signed-in account (OAuth, Kiro, Qwen), not
 * an API key: its provider signs in.
 */
static gboolean
is_account (KpKeyRow *self)
{
  KpProvider *provider = kp_catalog_get_provider (kp_gateway_get_catalog (self->gateway),
                                                  kp_credential_get_provider_id (self->credential));

  return provider != NULL && kp_provider_get_oauth (provider) != NULL;
}

/**
 * kp_key_row_update:
 * @self: a #KpKeyRow
 *
 * Shows the key's current label, options and health.
 */
void
kp_key_row_update (KpKeyRow *self)
{
  const char *label;
  const char *name;
  const char *icon;
  const char *style;
  const char *last_error;
  gboolean account;
  const char *quota;
  gboolean needs_user;
  g_autofree char *hint = NULL;
  g_autofree char *state = NULL;
  g_autofree char *subtitle = NULL;
  g_autofree char *options_label = NULL;
  static const char *styles[] = { "success", "warning", "error", "dim-label" };
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;

  g_return_if_fail (KP_IS_KEY_ROW (self));

  account = is_account (self);
  label = kp_credential_get_label (self->credential);
  hint = kp_credential_dup_hint (self->credential);
  name = label && *label ? label : account ? _("Account") : hint;
  state = describe_state (self, &icon, &style);

  if (account)
    /* Translators: %s is the state of a signed-in account, such as “Ready”. */
    subtitle = g_strdup_printf (_("Account · %s"), state);
  else
    /* Translators: the first %s is the end of a key, such as “…a1b2”; the second its state. */
    subtitle = g_strdup_printf (_("Key %s · %s"), hint, state);
  if (kp_credential_is_from_env (self->credential))
    {
      g_autofree char *with_env = g_strdup_printf (_("%s · from %s"), subtitle,
                                                   kp_credential_get_env_var (self->credential));
      g_free (subtitle);
      subtitle = g_steal_pointer (&with_env);
    }
  if (kp_credential_get_multiplier (self->credential) != 1.0)
    {
      g_autofree char *with_multiplier =
        g_strdup_printf ("%s · ×%g", subtitle, kp_credential_get_multiplier (self->credential));
      g_free (subtitle);
      subtitle = g_steal_pointer (&with_multiplier);
    }
  /* What is left of a subscription: its quota, or its credits (kept as text
   * by whatever read it, "62 % of today's quota left, resets 09:00").
   */
  quota = kp_credential_get_meta (self->credential, "quota");
  if (quota != NULL && *quota != '\0')
    {
      g_autofree char *with_quota = g_strdup_printf ("%s\n%s", subtitle, quota);
      g_free (subtitle);
      subtitle = g_steal_pointer (&with_quota);
    }
  last_error = kp_credential_get_last_error (self->credential);
  if (last_error != NULL && *last_error != '\0' &&
      kp_credential_get_state (self->credential, now) != KP_CREDENTIAL_OK)
    {
      g_autofree char *with_error = g_strdup_printf (_("%s\nLast error: %s"), subtitle, last_error);
      g_free (subtitle);
      subtitle = g_steal_pointer (&with_error);
    }

  adw_preferences_row_set_title (ADW_PREFERENCES_ROW (self), name);
  adw_action_row_set_subtitle (ADW_ACTION_ROW (self), subtitle);
  gtk_image_set_from_icon_name (self->state_icon, icon);
  for (guint i = 0; i < G_N_ELEMENTS (styles); i++)
    gtk_widget_remove_css_class (GTK_WIDGET (self->state_icon), styles[i]);
  gtk_widget_add_css_class (GTK_WIDGET (self->state_icon), style);

  options_label = account
                  /* Translators: %s is the label of a signed-in account. */
                  ? g_strdup_printf (_("Options for account %s"), name)
                  /* Translators: %s is the label of a key. */
                  : g_strdup_printf (_("Options for key %s"), name);
  kp_ui_set_accessible_label (GTK_WIDGET (self->options_button), options_label);

  self->updating = TRUE;
  gtk_spin_button_set_value (self->multiplier_spin,
                             kp_credential_get_multiplier (self->credential));
  gtk_switch_set_active (self->enabled_switch, kp_credential_get_enabled (self->credential));
  self->updating = FALSE;
  gtk_widget_set_sensitive (self->reset_button,
                            kp_credential_get_state (self->credential, now) != KP_CREDENTIAL_OK);
  /* An account waiting for its owner is not tried again until they say so. */
  needs_user = kp_credential_get_state (self->credential, now) == KP_CREDENTIAL_NEEDS_USER;
  gtk_widget_set_visible (self->verify_button,
                          needs_user && kp_credential_get_user_url (self->credential) != NULL);
  gtk_widget_set_visible (self->retry_button, needs_user);
  /* A key from an environment variable stays as long as the variable does. */
  gtk_widget_set_sensitive (self->remove_button, !kp_credential_is_from_env (self->credential));
}
