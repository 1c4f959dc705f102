/* kp-spend-chart.h: spend per day, stacked by provider
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <gtk/gtk.h>

G_BEGIN_DECLS

#define KP_TYPE_SPEND_CHART (kp_spend_chart_get_type ())

G_DECLARE_FINAL_TYPE (KpSpendChart, kp_spend_chart, KP, SPEND_CHART, GtkWidget)

GtkWidget  *kp_spend_chart_new                (void);
void        kp_spend_chart_set_data           (KpSpendChart *self,
                                               GDateTime    *first_day,
                                               guint         n_days,
                                               GPtrArray    *rows,
                                               GHashTable   *names);
guint       kp_spend_chart_get_n_providers    (KpSpendChart *self);
const char *kp_spend_chart_get_provider_name  (KpSpendChart *self,
                                               guint         index);
const char *kp_spend_chart_get_provider_color (KpSpendChart *self,
                                               guint         index);
char       *kp_spend_chart_describe_day       (KpSpendChart *self,
                                               guint         day);

G_END_DECLS
