/* kp-conf-format.h: editing the parts Keypool owns in a tool's config file
 *
 * One table per file format (JSON, TOML, YAML, dotenv). A key is a path of
 * names; a value is "raw": text in the format's own syntax (a quoted string,
 * a JSON object, a YAML block). get() reads a key's raw value, set() writes
 * or (raw NULL) removes it, and leaves every other byte it can alone.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* How deep a config file may nest before Keypool gives up on it. */
#define KP_CONF_MAX_DEPTH 64

#define KP_CONF_ERROR (kp_conf_error_quark ())

typedef enum
{
  KP_CONF_ERROR_PARSE,     /* Keypool cannot read the file well enough to edit it */
  KP_CONF_ERROR_TOO_BIG,
  KP_CONF_ERROR_IO,
} KpConfError;

typedef struct
{
  const char *id;   /* "json", "toml", "yaml", "dotenv" */

  /* Whether Keypool can edit @text; an error says why not. */
  gboolean  (*check)   (const char          *text,
                        GError             **error);
  /* The raw value at @path, or NULL when there is none. */
  char     *(*get)     (const char          *text,
                        const char * const  *path,
                        GError             **error);
  /* @text with @raw at @path (NULL removes it): a new string. */
  char     *(*set)     (const char          *text,
                        const char * const  *path,
                        const char          *raw,
                        GError             **error);
  /* A string as a raw scalar, and back (NULL if @raw is no plain scalar). */
  char     *(*quote)   (const char          *value);
  char     *(*unquote) (const char          *raw);
} KpConfFormat;

GQuark kp_conf_error_quark (void);

extern const KpConfFormat kp_conf_format_json;
extern const KpConfFormat kp_conf_format_toml;
extern const KpConfFormat kp_conf_format_yaml;
extern const KpConfFormat kp_conf_format_dotenv;

/* Shared by the line-based formats. */
GPtrArray *kp_conf_split_lines (const char *text);
char      *kp_conf_join_lines  (GPtrArray  *lines);
char      *kp_conf_quote_basic (const char *value);
char      *kp_conf_unquote_basic (const char *raw);

G_END_DECLS
