/* kp-connect-private.h: what kp-connect.c and kp-connect-inspect.c share
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include "kp-connect.h"

G_BEGIN_DECLS

/* A config file is small; a larger one is not edited. */
#define KP_CONNECT_FILE_MAX (1024 * 1024)

/* Beside each file Keypool writes: what was there, and Keypool's record. */
#define KP_CONNECT_BACKUP_SUFFIX ".keypool-backup"
#define KP_CONNECT_STATE_SUFFIX ".keypool-state"
#define KP_CONNECT_STATE_GROUP "keypool-connect"

char *kp_connect_read_bounded (const char           *path,
                               gboolean             *exists,
                               guint                *mode,
                               GError              **error);
char *kp_connect_get_plain    (const KpConnectFile  *file,
                               const char           *text,
                               const char * const   *path);
char *kp_connect_fill         (const char            *format,
                               const KpConnectValues *values,
                               const KpConfFormat    *quote_with);

G_END_DECLS
