/* kp-tool-row.h: one tool on the Connect page, with its Connect button
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <adwaita.h>

#include "kp-gateway.h"
#include "connect/kp-connect.h"

G_BEGIN_DECLS

#define KP_TYPE_TOOL_ROW (kp_tool_row_get_type ())

G_DECLARE_FINAL_TYPE (KpToolRow, kp_tool_row, KP, TOOL_ROW, AdwExpanderRow)

KpToolRow *kp_tool_row_new     (KpGateway           *gateway,
                                const KpConnectTool *tool);
void       kp_tool_row_refresh (KpToolRow           *self,
                                const char          *token,
                                const char          *shown_token);

G_END_DECLS
