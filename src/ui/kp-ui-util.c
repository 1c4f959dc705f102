/* kp-ui-util.c: formatting and small helpers shared by the window's pages
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include "kp-ui-util.h"

#include <string.h>

#include <glib/gi18n.h>

/**
 * kp_ui_format_usd:
 * @nano_usd: an amount in nano-USD
 *
 * Returns: (transfer full): the amount in dollars, with enough digits that a
 *   small request does not look free
 */
char *
kp_ui_format_usd (gint64 nano_usd)
{
  double usd = nano_usd / 1e9;
  char *text;
  gsize len;

  if (usd >= 1.0 || usd <= -1.0)
    return g_strdup_printf ("$%.2f", usd);

  /* Cents and below: up to six decimals, without trailing zeros. */
  text = g_strdup_printf ("$%.6f", usd);
  len = strlen (text);
  while (len > 0 && text[len - 1] == '0' && len - (strchr (text, '.') - text) > 3)
    text[--len] = '\0';
  return text;
}

/**
 * kp_ui_format_price:
 * @usd_per_million: a list price; below 0 when it is not known
 *
 * Returns: (transfer full): the price, or “unknown” (never $0)
 */
char *
kp_ui_format_price (double usd_per_million)
{
  if (usd_per_million < 0)
    return g_strdup (_("unknown"));
  return g_strdup_printf ("$%.2f", usd_per_million);
}

/* Digits grouped by thousands in the user's locale. */
char *
kp_ui_format_count (gint64 count)
{
  return g_strdup_printf ("%'" G_GINT64_FORMAT, count);
}

/**
 * kp_ui_format_time:
 * @unix_s: a moment, in unix seconds
 *
 * Returns: (transfer full): the local time; with the date when it is not today
 */
char *
kp_ui_format_time (gint64 unix_s)
{
  g_autoptr(GDateTime) when = g_date_time_new_from_unix_local (unix_s);
  g_autoptr(GDateTime) now = g_date_time_new_now_local ();

  if (when == NULL)
    return g_strdup ("?");
  if (g_date_time_get_year (when) == g_date_time_get_year (now) &&
      g_date_time_get_day_of_year (when) == g_date_time_get_day_of_year (now))
    return g_date_time_format (when, "%X");
  /* Translators: a date and time, see the strftime manual for the codes. */
  return g_date_time_format (when, _("%b %-d, %X"));
}

/**
 * kp_ui_format_ago:
 * @unix_s: a moment, in unix seconds
 *
 * Returns: (transfer full): how long ago that was, for the last day;
 *   the time as kp_ui_format_time() gives it before that
 */
char *
kp_ui_format_ago (gint64 unix_s)
{
  gint64 seconds = g_get_real_time () / G_USEC_PER_SEC - unix_s;
  int n;

  if (seconds < 60)
    return g_strdup (_("just now"));
  if (seconds < 3600)
    {
      n = seconds / 60;
      return g_strdup_printf (g_dngettext (GETTEXT_PACKAGE, "%d minute ago", "%d minutes ago", n),
                              n);
    }
  if (seconds < 24 * 3600)
    {
      n = seconds / 3600;
      return g_strdup_printf (g_dngettext (GETTEXT_PACKAGE, "%d hour ago", "%d hours ago", n), n);
    }
  return kp_ui_format_time (unix_s);
}

/**
 * kp_ui_toast:
 * @widget: any widget in a Keypool window or dialog
 * @message: what to say
 *
 * Shows @message as a toast in the window @widget is in, or in the window
 * a dialog belongs to.
 */
void
kp_ui_toast (GtkWidget  *widget,
             const char *message)
{
  GtkRoot *root = gtk_widget_get_root (widget);
  GtkWindow *window = GTK_IS_WINDOW (root) ? GTK_WINDOW (root) : NULL;

  g_return_if_fail (message != NULL);

  while (window != NULL && !ADW_IS_PREFERENCES_WINDOW (window) &&
         !ADW_IS_APPLICATION_WINDOW (window))
    window = gtk_window_get_transient_for (window);

  if (window == NULL)
    {
      g_warning ("%s", message);
      return;
    }

  if (ADW_IS_PREFERENCES_WINDOW (window))
    {
      AdwToast *toast = adw_toast_new (message);

      adw_toast_set_timeout (toast, 4);
      adw_preferences_window_add_toast (ADW_PREFERENCES_WINDOW (window), toast);
    }
  else
    gtk_widget_activate_action (GTK_WIDGET (window), "win.toast", "s", message);
}

/**
 * kp_ui_copy:
 * @widget: the widget the user copied from
 * @text: what to put on the clipboard
 * @message: (nullable): a toast to show
 */
void
kp_ui_copy (GtkWidget  *widget,
            const char *text,
            const char *message)
{
  gdk_clipboard_set_text (gtk_widget_get_clipboard (widget), text);
  if (message != NULL)
    kp_ui_toast (widget, message);
}

void
kp_ui_set_accessible_label (GtkWidget  *widget,
                            const char *label)
{
  gtk_accessible_update_property (GTK_ACCESSIBLE (widget),
                                  GTK_ACCESSIBLE_PROPERTY_LABEL, label,
                                  -1);
}
