/* kp-problems-group.c: the requests Keypool refused or that failed
 *
 * The last few refusals (a wrong token, an unknown path, ...) and failed
 * requests, one sentence each with what to do, so that a user whose tool
 * "does nothing" sees why. Read on a worker thread when the group is shown,
 * when the ledger wrote refusals, and when the Spend page refreshes (as
 * requests finish); never once per request.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include "kp-problems-group.h"

#include <glib/gi18n.h>

#include "kp-ui-util.h"

#define RECENT_PROBLEMS  5
#define REFRESH_DELAY_MS 250

struct _KpProblemsGroup
{
  AdwPreferencesGroup parent_instance;

  KpGateway    *gateway;
  KpLedger     *ledger;        /* watched for refusals-written */
  GCancellable *cancellable;   /* of the read in flight */
  guint         refresh_id;
  GPtrArray    *rows;          /* unowned: the list box has them */

  GtkListBox   *list;
};

G_DEFINE_FINAL_TYPE (KpProblemsGroup, kp_problems_group, ADW_TYPE_PREFERENCES_GROUP)

static void
kp_problems_group_dispose (GObject *object)
{
  KpProblemsGroup *self = KP_PROBLEMS_GROUP (object);

  g_cancellable_cancel (self->cancellable);
  g_clear_object (&self->cancellable);
  g_clear_handle_id (&self->refresh_id, g_source_remove);
  gtk_widget_dispose_template (GTK_WIDGET (self), KP_TYPE_PROBLEMS_GROUP);
  g_clear_pointer (&self->rows, g_ptr_array_unref);
  g_clear_object (&self->ledger);
  g_clear_object (&self->gateway);

  G_OBJECT_CLASS (kp_problems_group_parent_class)->dispose (object);
}

static void
on_map (KpProblemsGroup *self)
{
  /* The times ("2 minutes ago") are read anew with the rows. */
  kp_problems_group_refresh (self);
}

static void
kp_problems_group_class_init (KpProblemsGroupClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = kp_problems_group_dispose;

  gtk_widget_class_set_template_from_resource (widget_class,
                                               KP_UI_RESOURCE ("kp-problems-group.ui"));
  gtk_widget_class_bind_template_child (widget_class, KpProblemsGroup, list);
}

static void
kp_problems_group_init (KpProblemsGroup *self)
{
  GtkWidget *placeholder;

  gtk_widget_init_template (GTK_WIDGET (self));
  self->rows = g_ptr_array_new ();

  placeholder = gtk_label_new (_("No problems. Requests Keypool refuses, or that fail, show "
                                 "here with what to do."));
  gtk_label_set_wrap (GTK_LABEL (placeholder), TRUE);
  gtk_widget_set_margin_top (placeholder, 18);
  gtk_widget_set_margin_bottom (placeholder, 18);
  gtk_widget_set_margin_start (placeholder, 12);
  gtk_widget_set_margin_end (placeholder, 12);
  gtk_widget_add_css_class (placeholder, "dim-label");
  gtk_list_box_set_placeholder (self->list, placeholder);

  g_signal_connect (self, "map", G_CALLBACK (on_map), NULL);
}

/* What happened, as a sentence; @hint: what to do about it, or NULL. */
static char *
describe_refusal (const KpProblemRow  *problem,
                  const char         **hint)
{
  const char *client = problem->client ? problem->client : _("an unknown address");
  const char *code = problem->code ? problem->code : "";
  const char *connect_hint = _("Give the tool Keypool’s address and access token, as the "
                               "Connect page shows them.");

  *hint = NULL;
  if (problem->path == NULL)
    {
      *hint = _("Something sends Keypool many different requests it cannot serve.");
      return g_strdup (_("Many different requests refused"));
    }
  if (g_str_equal (code, "missing_api_key"))
    {
      *hint = connect_hint;
      /* Translators: %s is the address of the program that sent the request. */
      return g_strdup_printf (_("No access token from %s"), client);
    }
  if (g_str_equal (code, "invalid_api_key"))
    {
      *hint = connect_hint;
      /* Translators: %s is the address of the program that sent the request. */
      return g_strdup_printf (_("Wrong access token from %s"), client);
    }
  if (g_str_equal (code, "unknown_path") || g_str_equal (code, "method_not_allowed"))
    {
      *hint = connect_hint;
      /* Translators: %s is the address of the program that sent the request. */
      return g_strdup_printf (_("Unknown request from %s"), client);
    }
  if (g_str_equal (code, "forbidden_host"))
    {
      *hint = _("Use 127.0.0.1 or localhost in the tool’s base address.");
      /* Translators: %s is the address of the program that sent the request. */
      return g_strdup_printf (_("Untrusted host name from %s"), client);
    }
  if (g_str_equal (code, "forbidden_origin"))
    {
      *hint = _("A web page tried to use Keypool. Allow its origin with --allow-origin only "
                "if you trust it.");
      /* Translators: %s is the address of the program that sent the request. */
      return g_strdup_printf (_("Web page refused, from %s"), client);
    }
  if (g_str_equal (code, "request_too_large"))
    {
      *hint = _("Send less context, or raise the limit with --max-body-mib.");
      /* Translators: %s is the address of the program that sent the request. */
      return g_strdup_printf (_("Request too large from %s"), client);
    }
  if (g_str_equal (code, "model_not_found"))
    {
      *hint = _("The Models page lists the models Keypool serves.");
      /* Translators: %s is the address of the program that sent the request. */
      return g_strdup_printf (_("Unknown model from %s"), client);
    }
  /* Translators: %s is the address of the program that sent the request. */
  return g_strdup_printf (_("Request refused from %s"), client);
}

static char *
describe_failure (const KpProblemRow *problem)
{
  const char *model = problem->model ? problem->model : "?";

  if (g_strcmp0 (problem->code, "interrupted") == 0)
    /* Translators: %s is a model's name. */
    return g_strdup_printf (_("Answer from “%s” cut short"), model);
  if (problem->status == 404)
    /* Translators: %s is a model's name. */
    return g_strdup_printf (_("Unknown model “%s”"), model);
  if (g_strcmp0 (problem->code, "upstream_error") == 0)
    /* Translators: %s is a model's name. */
    return g_strdup_printf (_("No provider answered for “%s”"), model);
  /* Translators: %s is a model's name. */
  return g_strdup_printf (_("Request for “%s” failed"), model);
}

static GtkWidget *
problem_row_new (const KpProblemRow *problem)
{
  GtkWidget *row = adw_action_row_new ();
  GtkWidget *icon;
  g_autofree char *title = NULL;
  g_autofree char *ago = kp_ui_format_ago (problem->time_ms / 1000);
  g_autoptr(GString) subtitle = g_string_new (NULL);
  const char *hint = NULL;

  if (problem->refused)
    {
      title = describe_refusal (problem, &hint);
      if (problem->path != NULL)
        g_string_append_printf (subtitle, "%s %s · ", problem->method ? problem->method : "",
                                problem->path);
      g_string_append (subtitle, ago);
      if (problem->count > 1)
        {
          g_autofree char *count = kp_ui_format_count (problem->count);

          g_string_append (subtitle, " · ");
          /* Translators: how often the same request was refused. */
          g_string_append_printf (subtitle, g_dngettext (GETTEXT_PACKAGE, "%s time", "%s times",
                                                         problem->count), count);
        }
    }
  else
    {
      title = describe_failure (problem);
      g_string_append (subtitle, ago);
      if (problem->status > 0)
        g_string_append_printf (subtitle, " · HTTP %u", problem->status);
      hint = problem->error;
    }
  if (hint != NULL && *hint != '\0')
    g_string_append_printf (subtitle, "\n%s", hint);

  /* Paths come from whoever sent the request: never markup. */
  adw_preferences_row_set_use_markup (ADW_PREFERENCES_ROW (row), FALSE);
  adw_preferences_row_set_title (ADW_PREFERENCES_ROW (row), title);
  adw_action_row_set_subtitle (ADW_ACTION_ROW (row), subtitle->str);
  adw_action_row_set_subtitle_lines (ADW_ACTION_ROW (row), 4);

  icon = gtk_image_new_from_icon_name (problem->refused ? "action-unavailable-symbolic"
                                                        : "dialog-error-symbolic");
  gtk_widget_add_css_class (icon, problem->refused ? "warning" : "error");
  gtk_accessible_update_property (GTK_ACCESSIBLE (icon), GTK_ACCESSIBLE_PROPERTY_LABEL,
                                  problem->refused ? _("Refused") : _("Failed"), -1);
  adw_action_row_add_prefix (ADW_ACTION_ROW (row), icon);
  return row;
}

/* The ledger cannot write: the first problem, and what Keypool does. */
static GtkWidget *
ledger_row_new (const char *problem)
{
  GtkWidget *row = adw_action_row_new ();
  GtkWidget *icon = gtk_image_new_from_icon_name ("dialog-error-symbolic");
  g_autofree char *subtitle =
    /* Translators: %s says why the database cannot be written. */
    g_strdup_printf (_("%s\nKeypool keeps the rows in memory and writes them when it can."),
                     problem);

  adw_preferences_row_set_use_markup (ADW_PREFERENCES_ROW (row), FALSE);
  adw_preferences_row_set_title (ADW_PREFERENCES_ROW (row), _("Requests are not being recorded"));
  adw_action_row_set_subtitle (ADW_ACTION_ROW (row), subtitle);
  adw_action_row_set_subtitle_lines (ADW_ACTION_ROW (row), 4);
  gtk_widget_add_css_class (icon, "error");
  gtk_accessible_update_property (GTK_ACCESSIBLE (icon), GTK_ACCESSIBLE_PROPERTY_LABEL,
                                  _("Failed"), -1);
  adw_action_row_add_prefix (ADW_ACTION_ROW (row), icon);
  return row;
}

static void
on_problems_read (GObject      *object,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) problems = NULL;
  KpProblemsGroup *self;

  problems = kp_ledger_recent_problems_finish (KP_LEDGER (object), result, &error);
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;
  self = KP_PROBLEMS_GROUP (user_data);
  g_clear_object (&self->cancellable);
  if (problems == NULL)
    {
      g_debug ("Cannot read the recent problems: %s", error->message);
      return;
    }

  for (guint i = 0; i < self->rows->len; i++)
    gtk_list_box_remove (self->list, g_ptr_array_index (self->rows, i));
  g_ptr_array_set_size (self->rows, 0);
  if (kp_ledger_get_problem (KP_LEDGER (object)) != NULL)
    {
      GtkWidget *row = ledger_row_new (kp_ledger_get_problem (KP_LEDGER (object)));

      gtk_list_box_append (self->list, row);
      g_ptr_array_add (self->rows, row);
    }
  for (guint i = 0; i < problems->len; i++)
    {
      GtkWidget *row = problem_row_new (g_ptr_array_index (problems, i));

      gtk_list_box_append (self->list, row);
      g_ptr_array_add (self->rows, row);
    }
}

static gboolean
refresh_cb (gpointer user_data)
{
  KpProblemsGroup *self = user_data;

  self->refresh_id = 0;
  kp_problems_group_refresh (self);
  return G_SOURCE_REMOVE;
}

/* A flood of refusals reads once. */
static void
refresh_soon (KpProblemsGroup *self)
{
  if (self->refresh_id == 0)
    self->refresh_id = g_timeout_add (REFRESH_DELAY_MS, refresh_cb, self);
}

void
kp_problems_group_set_gateway (KpProblemsGroup *self,
                               KpGateway       *gateway)
{
  g_return_if_fail (KP_IS_PROBLEMS_GROUP (self));
  g_return_if_fail (KP_IS_GATEWAY (gateway));
  g_return_if_fail (self->gateway == NULL);

  self->gateway = g_object_ref (gateway);
  kp_problems_group_refresh (self);
}

/**
 * kp_problems_group_refresh:
 * @self: a #KpProblemsGroup
 *
 * Reads the recent problems from the ledger on a worker thread; the first
 * time the gateway has a ledger, follows its refusals too.
 */
void
kp_problems_group_refresh (KpProblemsGroup *self)
{
  KpLedger *ledger;

  g_return_if_fail (KP_IS_PROBLEMS_GROUP (self));

  if (self->gateway == NULL || (ledger = kp_gateway_get_ledger (self->gateway)) == NULL)
    return;

  /* The ledger exists once the gateway has loaded. */
  if (self->ledger != ledger)
    {
      g_set_object (&self->ledger, ledger);
      g_signal_connect_object (ledger, "refusals-written", G_CALLBACK (refresh_soon), self,
                               G_CONNECT_SWAPPED);
      g_signal_connect_object (ledger, "notify::problem", G_CALLBACK (refresh_soon), self,
                               G_CONNECT_SWAPPED);
    }

  g_cancellable_cancel (self->cancellable);
  g_clear_object (&self->cancellable);
  self->cancellable = g_cancellable_new ();
  kp_ledger_recent_problems_async (ledger, RECENT_PROBLEMS, self->cancellable,
                                   on_problems_read, self);
}
