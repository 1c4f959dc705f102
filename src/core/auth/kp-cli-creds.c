/* kp-cli-creds.c: an OAuth login another CLI saved in a JSON file
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include <string.h>

#include <json-glib/json-glib.h>

#include "kp-cli-creds.h"
#include "kp-oauth-client.h"
#include "codec/kp-json-guard.h"
#include "kp-credential.h"

#define MAX_TOKEN 8192

/**
 * kp_cli_creds_expand_path:
 * @path: a path, maybe starting with "~/"
 *
 * Returns: (transfer full): @path with "~" as the user's home ($HOME first)
 */
char *
kp_cli_creds_expand_path (const char *path)
{
  const char *home = g_getenv ("HOME");

  g_return_val_if_fail (path != NULL, NULL);

  if (home == NULL || *home == '\0')
    home = g_get_home_dir ();
  if (g_str_has_prefix (path, "~/"))
    return g_build_filename (home, path + 2, NULL);
  return g_strdup (path);
}

gboolean
kp_cli_creds_exists (const char *path)
{
  g_autofree char *full = NULL;

  if (path == NULL)
    return FALSE;
  full = kp_cli_creds_expand_path (path);
  return g_file_test (full, G_FILE_TEST_IS_REGULAR);
}

void
kp_cli_creds_free (KpCliCreds *creds)
{
  if (creds == NULL)
    return;
  kp_secret_wipe (&creds->refresh_token);
  kp_secret_wipe (&creds->access_token);
  g_free (creds->resource_url);
  g_free (creds);
}

static char *
dup_token (JsonObject *object,
           const char *name)
{
  JsonNode *node = json_object_get_member (object, name);
  const char *value;

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node) ||
      json_node_get_value_type (node) != G_TYPE_STRING)
    return NULL;
  value = json_node_get_string (node);
  if (value == NULL || *value == '\0' || strlen (value) > MAX_TOKEN ||
      strpbrk (value, " \t\r\n") != NULL)
    return NULL;
  return g_strdup (value);
}

/**
 * kp_cli_creds_read:
 * @path: the file, maybe "~/"-relative
 *
 * Reads a CLI's saved login, at most %KP_CLI_CREDS_MAX_SIZE bytes of it. The
 * file is opened for reading only.
 *
 * Returns: (transfer full): the login, or %NULL with @error set
 */
KpCliCreds *
kp_cli_creds_read (const char  *path,
                   GError     **error)
{
  g_autofree char *full = NULL;
  g_autoptr(GFile) file = NULL;
  g_autoptr(GFileInputStream) stream = NULL;
  g_autoptr(GByteArray) data = g_byte_array_new ();
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(KpCliCreds) creds = NULL;
  g_autoptr(GError) local = NULL;
  JsonObject *object;
  JsonNode *expiry;
  guint8 buffer[4096];

  g_return_val_if_fail (path != NULL, NULL);

  full = kp_cli_creds_expand_path (path);
  file = g_file_new_for_path (full);
  stream = g_file_read (file, NULL, &local);
  if (stream == NULL)
    {
      if (g_error_matches (local, G_IO_ERROR, G_IO_ERROR_NOT_FOUND))
        g_set_error (error, KP_OAUTH_ERROR, KP_OAUTH_ERROR_INVALID,
                     "There is no %s: sign in with the CLI first (with its credentials kept "
                     "in that file, not in the system keychain).", full);
      else
        g_set_error (error, KP_OAUTH_ERROR, KP_OAUTH_ERROR_INVALID,
                     "Cannot read %s: %s", full, local->message);
      return NULL;
    }

  for (;;)
    {
      gssize n = g_input_stream_read (G_INPUT_STREAM (stream), buffer, sizeof buffer, NULL, &local);

      if (n < 0)
        {
          g_set_error (error, KP_OAUTH_ERROR, KP_OAUTH_ERROR_INVALID,
                       "Cannot read %s: %s", full, local->message);
          explicit_bzero (data->data, data->len);
          return NULL;
        }
      if (n == 0)
        break;
      if (data->len + (gsize)n > KP_CLI_CREDS_MAX_SIZE)
        {
          g_set_error (error, KP_OAUTH_ERROR, KP_OAUTH_ERROR_INVALID,
                       "%s is over %d KiB: not a credentials file.", full,
                       KP_CLI_CREDS_MAX_SIZE / 1024);
          explicit_bzero (data->data, data->len);
          explicit_bzero (buffer, sizeof buffer);
          return NULL;
        }
      g_byte_array_append (data, buffer, (guint)n);
    }
  explicit_bzero (buffer, sizeof buffer);

  root = kp_json_parse ((const char *)data->data, data->len, &local);
  explicit_bzero (data->data, data->len);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    {
      g_set_error (error, KP_OAUTH_ERROR, KP_OAUTH_ERROR_INVALID,
                   "%s is not a credentials file: %s", full,
                   local ? local->message : "it is not a JSON object");
      return NULL;
    }

  object = json_node_get_object (root);
  creds = g_new0 (KpCliCreds, 1);
  creds->refresh_token = dup_token (object, "refresh_token");
  creds->access_token = dup_token (object, "access_token");
  creds->resource_url = dup_token (object, "resource_url");
  expiry = json_object_get_member (object, "expiry_date");
  if (expiry != NULL && JSON_NODE_HOLDS_VALUE (expiry))
    {
      GType type = json_node_get_value_type (expiry);
      gint64 ms = 0;

      if (type == G_TYPE_INT64)
        ms = json_node_get_int (expiry);
      else if (type == G_TYPE_DOUBLE)
        ms = (gint64)json_node_get_double (expiry);
      if (ms > 0 && ms < G_GINT64_CONSTANT (100000000000000))
        creds->expires_at = ms / 1000;
    }

  if (creds->refresh_token == NULL)
    {
      g_set_error (error, KP_OAUTH_ERROR, KP_OAUTH_ERROR_INVALID,
                   "%s has no refresh token: sign in with the CLI again.", full);
      return NULL;
    }
  return g_steal_pointer (&creds);
}
