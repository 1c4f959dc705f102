/* kp-provider-row.c: one provider, its switch and its keys
 *
 * A provider that needs a key lists its keys (KpKeyRow) and has an Add Key
 * button; a local server (Ollama, LM Studio) says whether it answers.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include "kp-provider-row.h"

#include <glib/gi18n.h>

#include "kp-key-row.h"
#include "kp-ui-util.h"

struct _KpProviderRow
{
  AdwExpanderRow  parent_instance;

  KpGateway      *gateway;
  KpProvider     *provider;
  GHashTable     *key_rows;      /* credential id → KpKeyRow, unowned */
  KpReachability  reachability;
  char           *reach_detail;
  gboolean        updating;

  GtkWidget      *add_button;
  GtkSwitch      *enabled_switch;
  AdwActionRow   *info_row;
  GtkWidget      *check_button;
  AdwActionRow   *catalog_row;
  GtkWidget      *catalog_warning;
};

G_DEFINE_FINAL_TYPE (KpProviderRow, kp_provider_row, ADW_TYPE_EXPANDER_ROW)

KpProviderRow *
kp_provider_row_new (KpGateway  *gateway,
                     KpProvider *provider)
{
  KpProviderRow *self;
  g_autofree char *switch_label = NULL;
  g_autofree char *add_label = NULL;
  g_autofree char *check_label = NULL;
  const char *name;

  g_return_val_if_fail (KP_IS_GATEWAY (gateway), NULL);
  g_return_val_if_fail (KP_IS_PROVIDER (provider), NULL);

  self = g_object_new (KP_TYPE_PROVIDER_ROW, NULL);
  self->gateway = g_object_ref (gateway);
  self->provider = g_object_ref (provider);
  name = kp_provider_get_name (provider);

  adw_preferences_row_set_title (ADW_PREFERENCES_ROW (self), name);
  /* Translators: %s is a provider, such as “OpenRouter”. */
  switch_label = g_strdup_printf (_("Use %s"), name);
  kp_ui_set_accessible_label (GTK_WIDGET (self->enabled_switch), switch_label);
  gtk_widget_set_tooltip_text (GTK_WIDGET (self->enabled_switch), switch_label);
  /* A provider that takes accounts (an "oauth" object) signs in or imports. */
  if (kp_provider_get_oauth (provider) != NULL)
    /* Translators: %s is a provider, such as “Gemini CLI”. */
    add_label = g_strdup_printf (_("Add Account for %s"), name);
  else
    /* Translators: %s is a provider, such as “OpenRouter”. */
    add_label = g_strdup_printf (_("Add Key for %s"), name);
  kp_ui_set_accessible_label (self->add_button, add_label);
  /* Translators: %s is a local server, such as “Ollama”. */
  check_label = g_strdup_printf (_("Check %s Again"), name);
  kp_ui_set_accessible_label (self->check_button, check_label);

  gtk_widget_set_visible (self->add_button, kp_provider_get_requires_key (provider));
  gtk_widget_set_visible (self->check_button, !kp_provider_get_requires_key (provider));

  kp_provider_row_update (self);
  return self;
}

static void
kp_provider_row_dispose (GObject *object)
{
  KpProviderRow *self = KP_PROVIDER_ROW (object);

  gtk_widget_dispose_template (GTK_WIDGET (self), KP_TYPE_PROVIDER_ROW);
  g_clear_pointer (&self->key_rows, g_hash_table_unref);
  g_clear_object (&self->provider);
  g_clear_object (&self->gateway);

  G_OBJECT_CLASS (kp_provider_row_parent_class)->dispose (object);
}

static void
kp_provider_row_finalize (GObject *object)
{
  KpProviderRow *self = KP_PROVIDER_ROW (object);

  g_free (self->reach_detail);

  G_OBJECT_CLASS (kp_provider_row_parent_class)->finalize (object);
}

static void
on_add_clicked (KpProviderRow *self)
{
  gtk_widget_activate_action (GTK_WIDGET (self), "providers.add-key", "s",
                              kp_provider_get_id (self->provider));
}

static void
on_check_clicked (KpProviderRow *self)
{
  gtk_widget_activate_action (GTK_WIDGET (self), "providers.check-local", NULL);
}

static void
on_enabled_changed (KpProviderRow *self)
{
  g_autoptr(GError) error = NULL;
  gboolean enabled = gtk_switch_get_active (self->enabled_switch);

  if (self->updating || enabled == kp_gateway_provider_is_enabled (self->gateway, self->provider))
    return;

  if (!kp_gateway_set_provider_enabled (self->gateway, kp_provider_get_id (self->provider), enabled,
                                        &error))
    {
      kp_ui_toast (GTK_WIDGET (self), error->message);
      kp_provider_row_update (self);
    }
}

static void
kp_provider_row_class_init (KpProviderRowClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = kp_provider_row_dispose;
  object_class->finalize = kp_provider_row_finalize;

  gtk_widget_class_set_template_from_resource (widget_class, KP_UI_RESOURCE ("kp-provider-row.ui"));
  gtk_widget_class_bind_template_child (widget_class, KpProviderRow, add_button);
  gtk_widget_class_bind_template_child (widget_class, KpProviderRow, enabled_switch);
  gtk_widget_class_bind_template_child (widget_class, KpProviderRow, info_row);
  gtk_widget_class_bind_template_child (widget_class, KpProviderRow, check_button);
  gtk_widget_class_bind_template_child (widget_class, KpProviderRow, catalog_row);
  gtk_widget_class_bind_template_child (widget_class, KpProviderRow, catalog_warning);
  gtk_widget_class_bind_template_callback (widget_class, on_add_clicked);
  gtk_widget_class_bind_template_callback (widget_class, on_check_clicked);
  gtk_widget_class_bind_template_callback (widget_class, on_enabled_changed);
}

static void
kp_provider_row_init (KpProviderRow *self)
{
  self->key_rows = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free, NULL);
  gtk_widget_init_template (GTK_WIDGET (self));
}

KpProvider *
kp_provider_row_get_provider (KpProviderRow *self)
{
  g_return_val_if_fail (KP_IS_PROVIDER_ROW (self), NULL);
  return self->provider;
}

static char *
describe_reachability (KpProviderRow *self)
{
  switch (self->reachability)
    {
    case KP_REACHABILITY_CHECKING:
      return g_strdup (_("Local server · checking…"));
    case KP_REACHABILITY_REACHABLE:
      return g_strdup (_("Local server · reachable"));
    case KP_REACHABILITY_UNREACHABLE:
      return g_strdup (_("Local server · not reachable"));
    case KP_REACHABILITY_UNKNOWN:
    default:
      return g_strdup (_("Local server · no key needed"));
    }
}

/* Adds, updates and removes key rows so that they match the gateway. */
static guint
sync_keys (KpProviderRow *self,
           guint         *n_ready)
{
  GPtrArray *credentials = kp_gateway_get_credentials (self->gateway);
  g_autoptr(GHashTable) seen = g_hash_table_new (NULL, NULL);
  const char *id = kp_provider_get_id (self->provider);
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;
  GHashTableIter iter;
  gpointer key, value;
  guint n = 0;

  *n_ready = 0;
  for (guint i = 0; i < credentials->len; i++)
    {
      KpCredential *credential = g_ptr_array_index (credentials, i);
      gint64 credential_id = kp_credential_get_id (credential);
      KpKeyRow *row;

      if (!g_str_equal (kp_credential_get_provider_id (credential), id))
        continue;

      n++;
      if (kp_credential_is_usable (credential, now))
        (*n_ready)++;

      row = g_hash_table_lookup (self->key_rows, &credential_id);
      if (row == NULL)
        {
          row = kp_key_row_new (self->gateway, credential);
          adw_expander_row_add_row (ADW_EXPANDER_ROW (self), GTK_WIDGET (row));
        }
      else
        kp_key_row_update (row);
      g_hash_table_insert (self->key_rows, g_memdup2 (&credential_id, sizeof credential_id), row);
      g_hash_table_add (seen, row);
    }

  g_hash_table_iter_init (&iter, self->key_rows);
  while (g_hash_table_iter_next (&iter, &key, &value))
    if (!g_hash_table_contains (seen, value))
      {
        adw_expander_row_remove (ADW_EXPANDER_ROW (self), GTK_WIDGET (value));
        g_hash_table_iter_remove (&iter);
      }

  return n;
}

/* When the catalog was last refreshed from the provider, what failed, and
 * the balance it reported.
 */
static char *
describe_refresh (KpProviderRow      *self,
                  const KpRefreshRow *state)
{
  g_autoptr(GString) text = g_string_new (NULL);

  if (state == NULL || state->refreshed_at == 0)
    {
      const char *checked = kp_provider_get_prices_checked (self->provider);

      if (checked != NULL)
        /* Translators: %s is a date, such as “2026-11-27”. */
        g_string_printf (text, _("Not refreshed yet; models and prices from the provider file, "
                                 "checked %s"), checked);
      else
        g_string_assign (text, _("Not refreshed yet; models and prices from the provider file"));
      return g_string_free (g_steal_pointer (&text), FALSE);
    }

  if (state->error != NULL)
    {
      g_autofree char *when = kp_ui_format_time (state->refreshed_at);
      g_autofree char *good = state->ok_at ? kp_ui_format_time (state->ok_at) : NULL;

      /* Translators: the first %s is a time, the second what went wrong. */
      g_string_printf (text, _("Refresh failed at %s: %s"), when, state->error);
      g_string_append (text, " · ");
      if (good != NULL)
        /* Translators: %s is a time, such as “14:05:10”. */
        g_string_append_printf (text, _("models as of %s"), good);
      else
        g_string_append (text, _("models from the provider file"));
    }
  else
    {
      g_autofree char *when = kp_ui_format_time (state->refreshed_at);

      /* Translators: %s is a time, such as “14:05:10”. */
      g_string_printf (text, _("Refreshed at %s"), when);
    }

  if (state->has_balance)
    {
      g_string_append (text, " · ");
      /* Translators: an amount and its currency, such as “12.50 USD”. */
      g_string_append_printf (text, _("balance %.2f %s"), state->balance,
                              state->currency ? state->currency : "");
    }
  return g_string_free (g_steal_pointer (&text), FALSE);
}

/**
 * kp_provider_row_update:
 * @self: a #KpProviderRow
 *
 * Shows the provider's switch, keys and summary as the gateway has them now.
 */
void
kp_provider_row_update (KpProviderRow *self)
{
  gboolean enabled;
  gboolean needs_key;
  g_autofree char *summary = NULL;
  g_autofree char *refresh_text = NULL;
  const KpRefreshRow *state;
  guint n_keys = 0, n_ready = 0;

  g_return_if_fail (KP_IS_PROVIDER_ROW (self));

  enabled = kp_gateway_provider_is_enabled (self->gateway, self->provider);
  needs_key = kp_provider_get_requires_key (self->provider);

  self->updating = TRUE;
  gtk_switch_set_active (self->enabled_switch, enabled);
  self->updating = FALSE;

  if (needs_key)
    {
      /* A provider one signs in to has accounts, not keys. */
      gboolean accounts = kp_provider_get_oauth (self->provider) != NULL;

      n_keys = sync_keys (self, &n_ready);
      if (n_keys == 0)
        summary = g_strdup (accounts ? _("No account yet") : _("No key yet"));
      else if (n_ready == n_keys)
        summary = g_strdup_printf (accounts
                                   ? g_dngettext (GETTEXT_PACKAGE, "%u account, ready",
                                                  "%u accounts, all ready", n_keys)
                                   : g_dngettext (GETTEXT_PACKAGE, "%u key, ready",
                                                  "%u keys, all ready", n_keys), n_keys);
      else
        summary = g_strdup_printf (accounts
                                   /* Translators: the first %u counts accounts, the second the
                                    * accounts that work now. */
                                   ? g_dngettext (GETTEXT_PACKAGE, "%u account, %u ready",
                                                  "%u accounts, %u ready", n_keys)
                                   /* Translators: the first %u counts keys, the second the keys
                                    * that work now. */
                                   : g_dngettext (GETTEXT_PACKAGE, "%u key, %u ready",
                                                  "%u keys, %u ready", n_keys), n_keys, n_ready);
    }
  else
    summary = describe_reachability (self);

  state = kp_refresh_get_state (kp_gateway_get_refresh (self->gateway),
                                kp_provider_get_id (self->provider));
  refresh_text = describe_refresh (self, state);
  adw_action_row_set_subtitle (self->catalog_row, refresh_text);
  gtk_widget_set_visible (self->catalog_warning, state != NULL && state->error != NULL);
  if (state != NULL && state->error != NULL)
    {
      /* Translators: %s says what keys the provider has, e.g. “2 keys, all ready”. */
      g_autofree char *failed = g_strdup_printf (_("%s · refresh failed"), summary);

      g_free (summary);
      summary = g_steal_pointer (&failed);
    }

  if (!enabled)
    {
      /* Translators: %s says what keys the provider has, e.g. “2 keys, all ready”. */
      g_autofree char *off = g_strdup_printf (_("Off · %s"), summary);

      g_free (summary);
      summary = g_steal_pointer (&off);
    }
  adw_expander_row_set_subtitle (ADW_EXPANDER_ROW (self), summary);

  /* The row under the keys: what to do when there is none, or the server. */
  if (needs_key)
    {
      g_autofree char *add = g_strdup_printf (_("Add a key with the + button to use %s."),
                                              kp_provider_get_name (self->provider));

      gtk_widget_set_visible (GTK_WIDGET (self->info_row), n_keys == 0);
      adw_preferences_row_set_title (ADW_PREFERENCES_ROW (self->info_row), _("No keys"));
      adw_action_row_set_subtitle (self->info_row, add);
    }
  else
    {
      g_autofree char *detail = NULL;

      if (self->reachability == KP_REACHABILITY_UNREACHABLE && self->reach_detail != NULL)
        detail = g_strdup_printf (_("Not reachable: %s"), self->reach_detail);
      else if (self->reachability == KP_REACHABILITY_REACHABLE)
        detail = g_strdup (_("Answers, no key needed"));
      else
        detail = g_strdup (_("No key needed"));
      adw_preferences_row_set_title (ADW_PREFERENCES_ROW (self->info_row),
                                     kp_provider_get_base_url (self->provider));
      adw_action_row_set_subtitle (self->info_row, detail);
    }
}

/**
 * kp_provider_row_set_reachability:
 * @self: a #KpProviderRow for a local server
 * @reachability: what the last check found
 * @detail: (nullable): why it is not reachable
 */
void
kp_provider_row_set_reachability (KpProviderRow  *self,
                                  KpReachability  reachability,
                                  const char     *detail)
{
  g_return_if_fail (KP_IS_PROVIDER_ROW (self));

  self->reachability = reachability;
  g_free (self->reach_detail);
  self->reach_detail = g_strdup (detail);
  kp_provider_row_update (self);
}
