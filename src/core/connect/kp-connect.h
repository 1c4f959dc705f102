/* kp-connect.h: writing a tool's own config so that it uses Keypool
 *
 * Each tool is one table (KpConnectTool): the files of its config, each in
 * its format with the keys Keypool owns there. The engine here reads, edits,
 * backs up and restores those files; it knows no tool by name.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <glib.h>

#include "kp-conf-format.h"

G_BEGIN_DECLS

/* What a config file is filled in with. */
typedef struct
{
  const char *url;    /* Keypool's OpenAI-style base, http://127.0.0.1:7878/v1 */
  const char *root;   /* without /v1, for clients that add it themselves */
  const char *token;
  const char *model;
} KpConnectValues;

/* One key Keypool owns. @value has @URL@, @ROOT@, @TOKEN@ and @MODEL@ in
 * it; a scalar is filled in and quoted as a whole, a raw value (@raw) is
 * written as it is with each filled-in value quoted.
 */
typedef struct
{
  const char *path[4];
  const char *value;
  gboolean    raw;
} KpConnectEntry;

/* One file of a tool's config. */
typedef struct
{
  const char            *path;         /* relative to the home directory; NULL ends a list */
  const KpConfFormat    *format;
  const char            *skeleton;     /* a new file's text, or NULL */
  const KpConnectEntry  *entries;      /* ended by one with no path */
} KpConnectFile;

/* A tool may need more than one file set (Gemini CLI: its .env, and the
 * sign-in kind in settings.json); they are connected and restored as one.
 * The first file holds the URL, the token and the model.
 */
typedef struct
{
  const char            *id;           /* "claude-code": the CLI's name for it */
  const char            *name;         /* "Claude Code": also its client's name */
  const KpConnectFile   *files;        /* ended by one with no path */
  const char * const    *programs;     /* any of these on PATH: installed */
  const char * const    *markers;      /* or any of these, relative to home, exists:
                                        * "dir/prefix*" is an entry of dir whose name
                                        * starts with prefix; a folder of the tool's
                                        * files counts only with more than Keypool's */
  const char * const    *url_path;     /* where the base URL is; it says "connected" */
  const char * const    *token_path;
  const char * const    *model_path;
  const char            *model_prefix; /* before the model in the file, or NULL */
  const char * const    *models;       /* strong coding models, the tool's best first */
  const char            *note;         /* what the user should know after connecting, or NULL */
} KpConnectTool;

typedef enum
{
  KP_CONNECT_FILE_MISSING,     /* none of the tool's files is there */
  KP_CONNECT_FILE_OTHER,       /* not every file points at Keypool */
  KP_CONNECT_FILE_CONNECTED,   /* every file points at Keypool */
  KP_CONNECT_FILE_UNREADABLE,  /* Keypool cannot edit one of them */
} KpConnectFileState;

typedef struct
{
  gboolean            installed;
  KpConnectFileState  state;
  gboolean            restorable;  /* Keypool wrote one and can put it back */
  char               *path;        /* the files, for showing: ", " between them */
  char               *model;       /* when connected */
  char               *problem;     /* when unreadable: which file, and why */
} KpConnectStatus;

const KpConnectTool * const *kp_connect_get_tools   (void);
const KpConnectTool *kp_connect_lookup       (const char             *id);
const char          *kp_connect_file_state_to_string (KpConnectFileState state);

char                *kp_connect_dup_path     (const KpConnectFile    *file,
                                              const char             *home);
char                *kp_connect_dup_paths    (const KpConnectTool    *tool,
                                              const char             *home);
void                 kp_connect_inspect      (const KpConnectTool    *tool,
                                              const char             *home,
                                              const char             *url,
                                              KpConnectStatus        *status);
void                 kp_connect_status_clear (KpConnectStatus        *status);
char                *kp_connect_dup_token    (const KpConnectTool    *tool,
                                              const char             *home);
char                *kp_connect_render       (const KpConnectFile    *file,
                                              const char             *text,
                                              const KpConnectValues  *values,
                                              GError                **error);
char                *kp_connect_dup_snippet  (const KpConnectTool    *tool,
                                              const KpConnectValues  *values);
gboolean             kp_connect_write        (const KpConnectTool    *tool,
                                              const char             *home,
                                              const KpConnectValues  *values,
                                              gboolean               *changed,
                                              guint                  *opened_mode,
                                              GError                **error);
gboolean             kp_connect_restore      (const KpConnectTool    *tool,
                                              const char             *home,
                                              GError                **error);

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (KpConnectStatus, kp_connect_status_clear)

G_END_DECLS
