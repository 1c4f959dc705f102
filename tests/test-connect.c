/* test-connect.c: writing and restoring tools' own config files
 *
 * Each tool Keypool connects, against a temporary home: a missing file is
 * made; a file with the user's own settings keeps them; connecting again
 * changes nothing; disconnecting puts the file back byte for byte; a file
 * Keypool cannot parse is left alone; edits the user made meanwhile stay.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include "config.h"

#include <string.h>
#include <sys/stat.h>

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include "connect/kp-connect.h"
#include "kp-test-util.h"

#define TOKEN "kp-test-token-0123456789abcdef"
#define USER_MARK "user-mark-1"

typedef struct
{
  const char *tool;
  const char *user;   /* the user's own file, with USER_MARK in it */
  const char *bad;    /* one Keypool cannot edit */
} Case;

static const Case cases[] = {
  { "claude-code",
    "{\n  \"permissions\": {\"allow\": [\"Bash(ls)\"]},\n  \"env\": {\"FOO\": \"" USER_MARK "\"},\n"
    "  \"theme\": \"dark\"\n}\n",
    "{ \"env\": { not json" },
  { "codex",
    "# my codex\nmodel = \"o3\"\napproval_policy = \"never\"   # keep asking\n\n[profiles.fast]\n"
    "model = \"" USER_MARK "\"\n\n[model_providers.other]\nname = \"Other\"\n"
    "base_url = \"https://example.com/v1\"\nenv_key = \"OTHER_KEY\"\n",
    "model = \"x\"\nthis is not toml\n" },
  { "gemini-cli",
    "# my env\nGEMINI_API_KEY=user-own-key\nexport OTHER=" USER_MARK "\n",
    "GOOD=1\nnot an assignment\n" },
  { "continue",
    "name: Mine\nversion: 1.0.0\nschema: v1\nmodels:\n  - name: " USER_MARK "\n    provider: ollama\n"
    "    model: llama3\n\n# the context providers\ncontext:\n  - provider: code\n",
    "name: Mine\nmodels: {a: 1}\n" },
  { "aider",
    "# aider\nmodel: gpt-4o\ndark-mode: true\nlint-cmd: " USER_MARK "\n",
    "{flow: mapping}\n" },
  { "opencode",
    "{\"$schema\": \"https://opencode.ai/config.json\", \"theme\": \"" USER_MARK "\", "
    "\"provider\": {\"other\": {\"name\": \"x\"}}}",
    "{\n  // a comment\n  \"theme\": \"x\"\n}\n" },
};

typedef struct
{
  char *home;
} Fixture;

static const KpConnectValues values = {
  "http://127.0.0.1:7878/v1", "http://127.0.0.1:7878", TOKEN, "openai/gpt-5"
};

static void
fixture_setup (gpointer       user_fixture,
               gconstpointer  data)
{
  Fixture *fixture = user_fixture;
  fixture->home = g_dir_make_tmp ("keypool-connect-XXXXXX", NULL);
  g_assert_nonnull (fixture->home);
}

static void
fixture_teardown (gpointer       user_fixture,
                  gconstpointer  data)
{
  Fixture *fixture = user_fixture;
  kp_test_remove_tree (fixture->home);
  g_free (fixture->home);
}

static char *
read_file (const char *path)
{
  char *text = NULL;

  g_assert_true (g_file_get_contents (path, &text, NULL, NULL));
  return text;
}

static void
put_file (const char *path,
          const char *text,
          int         mode)
{
  g_autofree char *dir = g_path_get_dirname (path);

  g_assert_cmpint (g_mkdir_with_parents (dir, 0700), ==, 0);
  g_assert_true (g_file_set_contents (path, text, -1, NULL));
  g_assert_cmpint (g_chmod (path, mode), ==, 0);
}

static int
mode_of (const char *path)
{
  GStatBuf st;

  g_assert_cmpint (g_stat (path, &st), ==, 0);
  return st.st_mode & 0777;
}

/* Whether any of the tool's files, or Keypool's records beside them, is there. */
static gboolean
any_file_of (const KpConnectTool *tool,
             const char          *home,
             gboolean             skip_first)
{
  for (const KpConnectFile *f = tool->files + (skip_first ? 1 : 0); f->path != NULL; f++)
    {
      g_autofree char *path = kp_connect_dup_path (f, home);
      const char *suffixes[] = { "", ".keypool-state", ".keypool-backup" };

      for (guint i = 0; i < G_N_ELEMENTS (suffixes); i++)
        {
          g_autofree char *name = g_strconcat (path, suffixes[i], NULL);

          if (g_file_test (name, G_FILE_TEST_EXISTS))
            return TRUE;
        }
    }
  return FALSE;
}

/* Every file's text, one after another: to compare a tool's files at once. */
static char *
read_all (const KpConnectTool *tool,
          const char          *home)
{
  GString *all = g_string_new (NULL);

  for (const KpConnectFile *f = tool->files; f->path != NULL; f++)
    {
      g_autofree char *path = kp_connect_dup_path (f, home);
      g_autofree char *text = NULL;

      g_file_get_contents (path, &text, NULL, NULL);
      g_string_append_printf (all, "== %s ==\n%s\n", f->path, text ? text : "(none)");
    }
  return g_string_free (all, FALSE);
}

static void
assert_connected (const KpConnectTool *tool,
                  const char          *home)
{
  g_auto(KpConnectStatus) status = { 0 };
  g_autofree char *token = kp_connect_dup_token (tool, home);

  kp_connect_inspect (tool, home, values.url, &status);
  g_assert_cmpstr (kp_connect_file_state_to_string (status.state), ==, "connected");
  g_assert_cmpstr (status.model, ==, values.model);
  g_assert_true (status.restorable);
  g_assert_cmpstr (token, ==, TOKEN);
}

static void
test_missing (gpointer       user_fixture,
              gconstpointer  data)
{
  Fixture *fixture = user_fixture;
  const Case *c = data;
  const KpConnectTool *tool = kp_connect_lookup (c->tool);
  g_autofree char *path = kp_connect_dup_path (tool->files, fixture->home);
  g_autofree char *first = NULL;
  g_autofree char *second = NULL;
  g_autoptr(GError) error = NULL;
  gboolean changed = FALSE;
  guint opened = 0;

  g_assert_false (any_file_of (tool, fixture->home, FALSE));
  g_assert_true (kp_connect_write (tool, fixture->home, &values, &changed, &opened, &error));
  g_assert_no_error (error);
  g_assert_true (changed);
  g_assert_cmpint (opened, ==, 0);
  g_assert_cmpint (mode_of (path), ==, 0600);
  assert_connected (tool, fixture->home);
  for (const KpConnectFile *f = tool->files; f->path != NULL; f++)
    {
      g_autofree char *each_path = kp_connect_dup_path (f, fixture->home);
      g_autofree char *text = read_file (each_path);

      g_assert_true (f->format->check (text, NULL));
    }
  first = read_all (tool, fixture->home);

  /* Again: nothing changes. */
  g_assert_true (kp_connect_write (tool, fixture->home, &values, &changed, &opened, &error));
  g_assert_false (changed);
  second = read_all (tool, fixture->home);
  g_assert_cmpstr (first, ==, second);

  /* Disconnecting removes the files Keypool made, and its records. */
  g_assert_true (kp_connect_restore (tool, fixture->home, &error));
  g_assert_no_error (error);
  g_assert_false (any_file_of (tool, fixture->home, FALSE));
}

static void
test_user_file (gpointer       user_fixture,
                gconstpointer  data)
{
  Fixture *fixture = user_fixture;
  const Case *c = data;
  const KpConnectTool *tool = kp_connect_lookup (c->tool);
  g_autofree char *path = kp_connect_dup_path (tool->files, fixture->home);
  g_autofree char *backup_path = g_strconcat (path, ".keypool-backup", NULL);
  g_autofree char *first = NULL;
  g_autofree char *second = NULL;
  g_autofree char *backup = NULL;
  g_autofree char *restored = NULL;
  g_autoptr(GError) error = NULL;
  KpConnectValues other = values;
  gboolean changed = FALSE;
  guint opened = 0;

  put_file (path, c->user, 0640);
  g_assert_true (kp_connect_write (tool, fixture->home, &values, &changed, &opened, &error));
  g_assert_no_error (error);
  g_assert_true (changed);
  assert_connected (tool, fixture->home);

  first = read_file (path);
  g_assert_nonnull (strstr (first, USER_MARK));
  /* It holds a token now: only its owner reads it, and the caller is told. */
  g_assert_cmpint (mode_of (path), ==, 0600);
  g_assert_cmpint (opened, ==, 0640);
  backup = read_file (backup_path);
  g_assert_cmpstr (backup, ==, c->user);
  g_assert_cmpint (mode_of (backup_path), ==, 0640);

  /* The line formats keep every line of the user's as it was. */
  if (!g_str_equal (tool->files->format->id, "json"))
    {
      g_auto(GStrv) lines = g_strsplit (c->user, "\n", -1);

      for (guint i = 0; lines[i] != NULL; i++)
        if (*lines[i] != '\0' && !g_str_has_prefix (lines[i], "model:") &&
            !g_str_has_prefix (lines[i], "model =") && !g_str_has_prefix (lines[i], "GEMINI_API_KEY"))
          g_assert_nonnull (strstr (first, lines[i]));
    }

  g_assert_true (kp_connect_write (tool, fixture->home, &values, &changed, &opened, &error));
  g_assert_false (changed);
  g_assert_cmpint (opened, ==, 0);
  second = read_file (path);
  g_assert_cmpstr (first, ==, second);

  /* Another model: the file changes, the backup stays the user's own. */
  other.model = "anthropic/claude-sonnet-5";
  g_assert_true (kp_connect_write (tool, fixture->home, &other, &changed, &opened, &error));
  g_assert_true (changed);
  g_clear_pointer (&backup, g_free);
  backup = read_file (backup_path);
  g_assert_cmpstr (backup, ==, c->user);

  g_assert_true (kp_connect_restore (tool, fixture->home, &error));
  g_assert_no_error (error);
  restored = read_file (path);
  g_assert_cmpstr (restored, ==, c->user);
  g_assert_cmpint (mode_of (path), ==, 0640);
  g_assert_false (g_file_test (backup_path, G_FILE_TEST_EXISTS));
  g_assert_false (any_file_of (tool, fixture->home, TRUE));

  /* Nothing of Keypool's is left to undo. */
  g_assert_false (kp_connect_restore (tool, fixture->home, &error));
  g_assert_error (error, KP_CONF_ERROR, KP_CONF_ERROR_IO);
}

static void
test_edited_since (gpointer       user_fixture,
                   gconstpointer  data)
{
  Fixture *fixture = user_fixture;
  const Case *c = data;
  const KpConnectTool *tool = kp_connect_lookup (c->tool);
  g_autofree char *path = kp_connect_dup_path (tool->files, fixture->home);
  g_autofree char *connected = NULL;
  g_autofree char *edited = NULL;
  g_autofree char *after = NULL;
  g_autofree char *quoted = tool->files->format->quote ("edited-later");
  g_autoptr(GError) error = NULL;
  const char *key[] = { "keypoolTestEdit", NULL };
  gboolean changed;
  guint opened = 0;

  put_file (path, c->user, 0644);
  g_assert_true (kp_connect_write (tool, fixture->home, &values, &changed, &opened, &error));
  g_assert_cmpint (opened, ==, 0644);
  g_assert_cmpint (mode_of (path), ==, 0600);
  connected = read_file (path);
  edited = tool->files->format->set (connected, key, quoted, &error);
  g_assert_no_error (error);
  g_assert_true (g_file_set_contents (path, edited, -1, NULL));

  g_assert_true (kp_connect_restore (tool, fixture->home, &error));
  g_assert_no_error (error);
  after = read_file (path);
  g_assert_cmpint (mode_of (path), ==, 0644);
  g_assert_nonnull (strstr (after, "edited-later"));
  g_assert_nonnull (strstr (after, USER_MARK));
  g_assert_null (strstr (after, TOKEN));
  g_assert_null (strstr (after, "127.0.0.1"));

  /* Taking the user's edit out again gives the user's file. */
  {
    g_autofree char *undone = tool->files->format->set (after, key, NULL, &error);

    g_assert_no_error (error);
    if (!g_str_equal (tool->files->format->id, "json"))
      g_assert_cmpstr (undone, ==, c->user);
  }
}

static void
test_unparsable (gpointer       user_fixture,
                 gconstpointer  data)
{
  Fixture *fixture = user_fixture;
  const Case *c = data;
  const KpConnectTool *tool = kp_connect_lookup (c->tool);
  g_autofree char *path = kp_connect_dup_path (tool->files, fixture->home);
  g_autofree char *backup_path = g_strconcat (path, ".keypool-backup", NULL);
  g_autofree char *after = NULL;
  g_autofree char *snippet = NULL;
  g_autoptr(GError) error = NULL;
  g_auto(KpConnectStatus) status = { 0 };
  gboolean changed = TRUE;
  guint opened = 0;

  put_file (path, c->bad, 0600);
  g_assert_false (kp_connect_write (tool, fixture->home, &values, &changed, &opened, &error));
  g_assert_error (error, KP_CONF_ERROR, KP_CONF_ERROR_PARSE);
  g_assert_nonnull (strstr (error->message, "cannot edit"));
  g_assert_null (strstr (error->message, TOKEN));
  g_assert_false (changed);
  after = read_file (path);
  g_assert_cmpstr (after, ==, c->bad);
  g_assert_false (g_file_test (backup_path, G_FILE_TEST_EXISTS));
  g_assert_false (any_file_of (tool, fixture->home, TRUE));

  kp_connect_inspect (tool, fixture->home, values.url, &status);
  g_assert_cmpstr (kp_connect_file_state_to_string (status.state), ==, "unreadable");
  g_assert_nonnull (status.problem);

  /* What to paste instead is a file Keypool could have written, or one
   * for each file, after a line naming it.
   */
  snippet = kp_connect_dup_snippet (tool, &values);
  g_assert_nonnull (snippet);
  g_assert_nonnull (strstr (snippet, TOKEN));
  if (tool->files[1].path == NULL)
    g_assert_true (tool->files->format->check (snippet, NULL));
  else
    for (const KpConnectFile *f = tool->files; f->path != NULL; f++)
      {
        g_autofree char *text = kp_connect_render (f, NULL, &values, NULL);
        g_autofree char *part = g_strdup_printf ("~/%s:\n%s", f->path, text);

        g_assert_true (f->format->check (text, NULL));
        g_assert_nonnull (strstr (snippet, part));
      }
}

static void
test_too_big (gpointer       user_fixture,
              gconstpointer  data)
{
  Fixture *fixture = user_fixture;
  const KpConnectTool *tool = kp_connect_lookup ("gemini-cli");
  g_autofree char *path = kp_connect_dup_path (tool->files, fixture->home);
  g_autofree char *big = g_strnfill (2 * 1024 * 1024, '#');
  g_autoptr(GError) error = NULL;
  gboolean changed;
  guint opened = 0;
  GStatBuf st;

  put_file (path, big, 0600);
  g_assert_false (kp_connect_write (tool, fixture->home, &values, &changed, &opened, &error));
  g_assert_error (error, KP_CONF_ERROR, KP_CONF_ERROR_TOO_BIG);
  g_assert_cmpint (g_stat (path, &st), ==, 0);
  g_assert_cmpint (st.st_size, ==, 2 * 1024 * 1024);
}

static void
test_too_deep (gpointer       user_fixture,
               gconstpointer  data)
{
  Fixture *fixture = user_fixture;
  const KpConnectTool *tool = kp_connect_lookup ("claude-code");
  g_autofree char *path = kp_connect_dup_path (tool->files, fixture->home);
  g_autoptr(GString) deep = g_string_new ("{\"a\":");
  g_autoptr(GError) error = NULL;
  gboolean changed;
  guint opened = 0;

  for (guint i = 0; i < 10000; i++)
    g_string_append_c (deep, '[');
  for (guint i = 0; i < 10000; i++)
    g_string_append_c (deep, ']');
  g_string_append_c (deep, '}');
  put_file (path, deep->str, 0600);
  g_assert_false (kp_connect_write (tool, fixture->home, &values, &changed, &opened, &error));
  g_assert_error (error, KP_CONF_ERROR, KP_CONF_ERROR_PARSE);
}

static void
test_codex_toml (void)
{
  const KpConnectFile *codex_file = kp_connect_lookup ("codex")->files;
  g_autoptr(GError) error = NULL;
  g_autofree char *out = NULL;

  /* Keypool's table written some other way is not edited. */
  out = kp_connect_render (codex_file, "model_providers = { keypool = { name = \"x\" } }\n", &values, &error);
  g_assert_null (out);
  g_assert_error (error, KP_CONF_ERROR, KP_CONF_ERROR_PARSE);
  g_clear_error (&error);

  /* Multi-line values are one value; top-level keys stay before the tables. */
  out = kp_connect_render (codex_file,
                           "notify = [\n  \"a\",\n  \"b\",\n]\ninstructions = \"\"\"\n[not a table]\n\"\"\"\n"
                           "[tui]\nmodel = \"kept\"\n", &values, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (out, ==,
                   "notify = [\n  \"a\",\n  \"b\",\n]\ninstructions = \"\"\"\n[not a table]\n\"\"\"\n"
                   "model = \"openai/gpt-5\"\nmodel_provider = \"keypool\"\n"
                   "[tui]\nmodel = \"kept\"\n\n[model_providers.keypool]\nname = \"Keypool\"\n"
                   "base_url = \"http://127.0.0.1:7878/v1\"\nwire_api = \"responses\"\n"
                   "experimental_bearer_token = \"" TOKEN "\"\n");
}

static gboolean
continue_installed (const char *home)
{
  const KpConnectTool *tool = kp_connect_lookup ("continue");
  g_auto(KpConnectStatus) status = { 0 };

  kp_connect_inspect (tool, home, values.url, &status);
  return status.installed;
}

/* Continue is found by its editor extension or its own folder, not by the
 * folder connecting makes.
 */
static void
test_continue_detected (gpointer       user_fixture,
                        gconstpointer  data)
{
  Fixture *fixture = user_fixture;
  const KpConnectTool *tool = kp_connect_lookup ("continue");
  g_autofree char *old_path = g_strdup (g_getenv ("PATH"));
  g_autofree char *bin = g_build_filename (fixture->home, "bin", NULL);
  const char *extensions[] = {
    ".vscode/extensions/continue.continue-1.2.3-linux-x64",
    ".vscode-oss/extensions/continue.continue-1.2.3-universal",
    ".cursor/extensions/continue.continue-1.0.9",
  };
  g_autoptr(GError) error = NULL;
  gboolean changed;
  guint opened;

  /* No `cn` on this PATH. */
  g_assert_cmpint (g_mkdir_with_parents (bin, 0700), ==, 0);
  g_setenv ("PATH", bin, TRUE);

  g_assert_false (continue_installed (fixture->home));
  g_assert_true (kp_connect_write (tool, fixture->home, &values, &changed, &opened, &error));
  g_assert_no_error (error);
  g_assert_false (continue_installed (fixture->home));
  g_assert_true (kp_connect_restore (tool, fixture->home, &error));
  g_assert_no_error (error);

  /* Another extension of the same editor is not Continue. */
  {
    g_autofree char *other = g_build_filename (fixture->home, ".vscode/extensions/continued.other-1.0", NULL);

    g_assert_cmpint (g_mkdir_with_parents (other, 0700), ==, 0);
    g_assert_false (continue_installed (fixture->home));
  }
  for (guint i = 0; i < G_N_ELEMENTS (extensions); i++)
    {
      g_autofree char *dir = g_build_filename (fixture->home, extensions[i], NULL);

      g_assert_cmpint (g_mkdir_with_parents (dir, 0700), ==, 0);
      g_assert_true (continue_installed (fixture->home));
      g_assert_cmpint (g_rmdir (dir), ==, 0);
      g_assert_false (continue_installed (fixture->home));
    }

  /* The user's own ~/.continue: a config Keypool did not make, or anything else in it. */
  {
    g_autofree char *config = kp_connect_dup_path (tool->files, fixture->home);
    g_autofree char *index = g_build_filename (fixture->home, ".continue", "index", NULL);

    put_file (config, "name: Mine\n", 0600);
    g_assert_true (continue_installed (fixture->home));
    g_assert_cmpint (g_unlink (config), ==, 0);
    g_assert_false (continue_installed (fixture->home));
    g_assert_cmpint (g_mkdir_with_parents (index, 0700), ==, 0);
    g_assert_true (continue_installed (fixture->home));
  }

  g_setenv ("PATH", old_path, TRUE);
}

/* Gemini CLI: ~/.gemini/.env and the sign-in kind in ~/.gemini/settings.json. */
#define GEMINI_ENV "# mine\nNO_BROWSER=true\n"
#define GEMINI_SETTINGS \
  "{\n    \"security\": {\"folderTrust\": {\"enabled\": true}, \"auth\": {\"useExternal\": false}},\n" \
  "    \"ui\": {\"theme\": \"GitHub\"}, \"general\": {\"vimMode\": true}\n}"

typedef struct
{
  const KpConnectTool *tool;
  char                *env;
  char                *settings;
} Gemini;

static void
gemini_init (Gemini     *gemini,
             const char *home)
{
  gemini->tool = kp_connect_lookup ("gemini-cli");
  g_assert_nonnull (gemini->tool->files[1].path);
  g_assert_null (gemini->tool->files[2].path);
  gemini->env = kp_connect_dup_path (&gemini->tool->files[0], home);
  gemini->settings = kp_connect_dup_path (&gemini->tool->files[1], home);
  g_assert_true (g_str_has_suffix (gemini->env, "/.gemini/.env"));
  g_assert_true (g_str_has_suffix (gemini->settings, "/.gemini/settings.json"));
}

static void
gemini_clear (Gemini *gemini)
{
  g_free (gemini->env);
  g_free (gemini->settings);
}

static const char *
state_of (const KpConnectTool *tool,
          const char          *home)
{
  g_auto(KpConnectStatus) status = { 0 };

  kp_connect_inspect (tool, home, values.url, &status);
  return kp_connect_file_state_to_string (status.state);
}

/* The string at @path in the JSON file @file, or NULL. */
static char *
json_string_at (const char         *file,
                const char * const *path)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  JsonNode *node;

  g_assert_true (json_parser_load_from_file (parser, file, NULL));
  node = json_parser_get_root (parser);
  for (guint i = 0; path[i] != NULL; i++)
    {
      if (node == NULL || !JSON_NODE_HOLDS_OBJECT (node))
        return NULL;
      node = json_object_get_member (json_node_get_object (node), path[i]);
    }
  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node))
    return NULL;
  return json_node_get_value_type (node) == G_TYPE_STRING ? g_strdup (json_node_get_string (node))
         : json_node_get_value_type (node) == G_TYPE_BOOLEAN ? g_strdup (json_node_get_boolean (node) ? "true" : "false")
         : NULL;
}

static void
assert_json_at (const char *file,
                const char *expected,
                ...)
{
  const char *path[8] = { NULL };
  g_autofree char *value = NULL;
  va_list args;

  va_start (args, expected);
  for (guint i = 0; i < G_N_ELEMENTS (path) - 1 && (path[i] = va_arg (args, const char *)) != NULL; i++)
    ;
  va_end (args);
  value = json_string_at (file, path);
  g_assert_cmpstr (value, ==, expected);
}

/* The user's settings.json keeps every other setting, in the security
 * object too; connecting again changes nothing; disconnecting gives both
 * files back byte for byte, with their modes.
 */
static void
test_gemini_settings (gpointer       user_fixture,
                      gconstpointer  data)
{
  Fixture *fixture = user_fixture;
  Gemini gemini;
  g_autofree char *first = NULL;
  g_autofree char *second = NULL;
  g_autofree char *env_after = NULL;
  g_autofree char *settings_after = NULL;
  g_autoptr(GError) error = NULL;
  gboolean changed = FALSE;
  guint opened = 0;

  gemini_init (&gemini, fixture->home);
  put_file (gemini.env, GEMINI_ENV, 0644);
  put_file (gemini.settings, GEMINI_SETTINGS, 0644);
  g_assert_cmpstr (state_of (gemini.tool, fixture->home), ==, "other");

  g_assert_true (kp_connect_write (gemini.tool, fixture->home, &values, &changed, &opened, &error));
  g_assert_no_error (error);
  g_assert_true (changed);
  g_assert_cmpint (opened, ==, 0644);
  assert_connected (gemini.tool, fixture->home);

  assert_json_at (gemini.settings, "gemini-api-key", "security", "auth", "selectedType", NULL);
  assert_json_at (gemini.settings, "false", "security", "auth", "useExternal", NULL);
  assert_json_at (gemini.settings, "true", "security", "folderTrust", "enabled", NULL);
  assert_json_at (gemini.settings, "GitHub", "ui", "theme", NULL);
  assert_json_at (gemini.settings, "true", "general", "vimMode", NULL);
  /* Only the file with the token is made private. */
  g_assert_cmpint (mode_of (gemini.env), ==, 0600);
  g_assert_cmpint (mode_of (gemini.settings), ==, 0644);
  env_after = read_file (gemini.env);
  g_assert_true (g_str_has_prefix (env_after, GEMINI_ENV));
  g_assert_nonnull (strstr (env_after, "\nGOOGLE_GEMINI_BASE_URL=http://127.0.0.1:7878\n"));
  {
    g_autofree char *env_backup = g_strconcat (gemini.env, ".keypool-backup", NULL);
    g_autofree char *settings_backup = g_strconcat (gemini.settings, ".keypool-backup", NULL);
    g_autofree char *env_copy = read_file (env_backup);
    g_autofree char *settings_copy = read_file (settings_backup);

    g_assert_cmpstr (env_copy, ==, GEMINI_ENV);
    g_assert_cmpstr (settings_copy, ==, GEMINI_SETTINGS);
  }

  first = read_all (gemini.tool, fixture->home);
  g_assert_true (kp_connect_write (gemini.tool, fixture->home, &values, &changed, &opened, &error));
  g_assert_no_error (error);
  g_assert_false (changed);
  second = read_all (gemini.tool, fixture->home);
  g_assert_cmpstr (first, ==, second);

  g_assert_true (kp_connect_restore (gemini.tool, fixture->home, &error));
  g_assert_no_error (error);
  g_clear_pointer (&env_after, g_free);
  env_after = read_file (gemini.env);
  settings_after = read_file (gemini.settings);
  g_assert_cmpstr (env_after, ==, GEMINI_ENV);
  g_assert_cmpstr (settings_after, ==, GEMINI_SETTINGS);
  g_assert_cmpint (mode_of (gemini.env), ==, 0644);
  g_assert_cmpint (mode_of (gemini.settings), ==, 0644);
  {
    g_autofree char *state = g_strconcat (gemini.settings, ".keypool-state", NULL);
    g_autofree char *backup = g_strconcat (gemini.settings, ".keypool-backup", NULL);

    g_assert_false (g_file_test (state, G_FILE_TEST_EXISTS));
    g_assert_false (g_file_test (backup, G_FILE_TEST_EXISTS));
  }
  g_assert_cmpstr (state_of (gemini.tool, fixture->home), ==, "other");
  gemini_clear (&gemini);
}

/* A settings.json Keypool cannot edit: neither file is touched, and the
 * user is told which file, and what to paste in each.
 */
static void
test_gemini_unparsable (gpointer       user_fixture,
                        gconstpointer  data)
{
  Fixture *fixture = user_fixture;
  const char *bad[] = {
    "{\n  // Gemini CLI reads comments; Keypool would lose them\n  \"ui\": {}\n}\n",
    "{\"security\": \"not an object\"}",
    "{\"security\": {\"auth\": [1, 2]}}",
    "{ \"ui\": ",
  };
  Gemini gemini;

  gemini_init (&gemini, fixture->home);
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    for (guint with_env = 0; with_env < 2; with_env++)
      {
        g_autoptr(GError) error = NULL;
        g_autofree char *settings_after = NULL;
        g_auto(KpConnectStatus) status = { 0 };
        gboolean changed = TRUE;
        guint opened = 0;

        if (with_env)
          put_file (gemini.env, GEMINI_ENV, 0644);
        else
          g_unlink (gemini.env);
        put_file (gemini.settings, bad[i], 0644);

        g_assert_false (kp_connect_write (gemini.tool, fixture->home, &values, &changed, &opened, &error));
        g_assert_error (error, KP_CONF_ERROR, KP_CONF_ERROR_PARSE);
        g_assert_nonnull (strstr (error->message, "cannot edit"));
        g_assert_nonnull (strstr (error->message, gemini.settings));
        g_assert_false (changed);
        settings_after = read_file (gemini.settings);
        g_assert_cmpstr (settings_after, ==, bad[i]);
        if (with_env)
          {
            g_autofree char *env_after = read_file (gemini.env);

            g_assert_cmpstr (env_after, ==, GEMINI_ENV);
            g_assert_cmpint (mode_of (gemini.env), ==, 0644);
          }
        else
          g_assert_false (g_file_test (gemini.env, G_FILE_TEST_EXISTS));
        {
          const char *records[] = {
            ".gemini/.env.keypool-state", ".gemini/.env.keypool-backup",
            ".gemini/settings.json.keypool-state", ".gemini/settings.json.keypool-backup",
          };

          for (guint j = 0; j < G_N_ELEMENTS (records); j++)
            {
              g_autofree char *record = g_build_filename (fixture->home, records[j], NULL);

              g_assert_false (g_file_test (record, G_FILE_TEST_EXISTS));
            }
        }

        kp_connect_inspect (gemini.tool, fixture->home, values.url, &status);
        g_assert_cmpstr (kp_connect_file_state_to_string (status.state), ==, "unreadable");
        g_assert_nonnull (strstr (status.problem, gemini.settings));
        g_assert_false (status.restorable);
      }
  gemini_clear (&gemini);
}

/* Points at Keypool only when both files do: a .env set up by hand with
 * another sign-in chosen is not connected, and connecting sets the rest.
 */
static void
test_gemini_both_files (gpointer       user_fixture,
                        gconstpointer  data)
{
  Fixture *fixture = user_fixture;
  const char *by_hand =
    "GOOGLE_GEMINI_BASE_URL=http://127.0.0.1:7878\nGEMINI_API_KEY=" TOKEN "\nGEMINI_MODEL=openai/gpt-5\n";
  const char *oauth = "{\"security\": {\"auth\": {\"selectedType\": \"oauth-personal\"}}}";
  Gemini gemini;
  g_autofree char *env_after = NULL;
  g_autoptr(GError) error = NULL;
  gboolean changed;
  guint opened;

  gemini_init (&gemini, fixture->home);
  put_file (gemini.env, by_hand, 0600);
  g_assert_cmpstr (state_of (gemini.tool, fixture->home), ==, "other");
  put_file (gemini.settings, oauth, 0600);
  g_assert_cmpstr (state_of (gemini.tool, fixture->home), ==, "other");

  g_assert_true (kp_connect_write (gemini.tool, fixture->home, &values, &changed, &opened, &error));
  g_assert_no_error (error);
  g_assert_true (changed);
  assert_connected (gemini.tool, fixture->home);
  env_after = read_file (gemini.env);
  g_assert_cmpstr (env_after, ==, by_hand);
  assert_json_at (gemini.settings, "gemini-api-key", "security", "auth", "selectedType", NULL);

  /* The user signs in with Google again: no longer connected. */
  put_file (gemini.settings, oauth, 0600);
  g_assert_cmpstr (state_of (gemini.tool, fixture->home), ==, "other");

  /* Disconnecting keeps the user's later edit (written back as JSON is). */
  g_assert_true (kp_connect_restore (gemini.tool, fixture->home, &error));
  g_assert_no_error (error);
  assert_json_at (gemini.settings, "oauth-personal", "security", "auth", "selectedType", NULL);
  g_clear_pointer (&env_after, g_free);
  env_after = read_file (gemini.env);
  g_assert_cmpstr (env_after, ==, by_hand);
  gemini_clear (&gemini);
}

/* Connected before Keypool wrote settings.json: disconnecting restores the
 * .env and leaves settings.json alone; connecting again adds it.
 */
static void
test_gemini_older_connection (gpointer       user_fixture,
                              gconstpointer  data)
{
  Fixture *fixture = user_fixture;
  Gemini gemini;
  KpConnectFile env_only[2] = { { NULL } };
  KpConnectTool older;
  g_autofree char *settings_after = NULL;
  g_autofree char *env_after = NULL;
  g_autoptr(GError) error = NULL;
  gboolean changed;
  guint opened;

  gemini_init (&gemini, fixture->home);
  env_only[0] = gemini.tool->files[0];
  older = *gemini.tool;
  older.files = env_only;

  put_file (gemini.env, GEMINI_ENV, 0644);
  put_file (gemini.settings, GEMINI_SETTINGS, 0644);
  g_assert_true (kp_connect_write (&older, fixture->home, &values, &changed, &opened, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (state_of (gemini.tool, fixture->home), ==, "other");

  g_assert_true (kp_connect_restore (gemini.tool, fixture->home, &error));
  g_assert_no_error (error);
  env_after = read_file (gemini.env);
  settings_after = read_file (gemini.settings);
  g_assert_cmpstr (env_after, ==, GEMINI_ENV);
  g_assert_cmpstr (settings_after, ==, GEMINI_SETTINGS);

  /* Connected the old way, then again: both files, and both come back. */
  g_assert_true (kp_connect_write (&older, fixture->home, &values, &changed, &opened, &error));
  g_assert_true (kp_connect_write (gemini.tool, fixture->home, &values, &changed, &opened, &error));
  g_assert_no_error (error);
  g_assert_true (changed);
  assert_connected (gemini.tool, fixture->home);
  g_assert_true (kp_connect_restore (gemini.tool, fixture->home, &error));
  g_assert_no_error (error);
  g_clear_pointer (&env_after, g_free);
  g_clear_pointer (&settings_after, g_free);
  env_after = read_file (gemini.env);
  settings_after = read_file (gemini.settings);
  g_assert_cmpstr (env_after, ==, GEMINI_ENV);
  g_assert_cmpstr (settings_after, ==, GEMINI_SETTINGS);
  g_assert_cmpint (mode_of (gemini.env), ==, 0644);
  gemini_clear (&gemini);
}

/* A record that cannot be written for the second file: the first file's
 * record and backup are taken back, and neither file changes.
 */
static void
test_gemini_half_way (gpointer       user_fixture,
                      gconstpointer  data)
{
  Fixture *fixture = user_fixture;
  Gemini gemini;
  g_autofree char *blocker = NULL;
  g_autofree char *env_after = NULL;
  g_autoptr(GError) error = NULL;
  gboolean changed = TRUE;
  guint opened;

  gemini_init (&gemini, fixture->home);
  put_file (gemini.env, GEMINI_ENV, 0644);
  /* A folder where settings.json's record goes: writing it fails, even as root. */
  blocker = g_strconcat (gemini.settings, ".keypool-state", NULL);
  g_assert_cmpint (g_mkdir_with_parents (blocker, 0700), ==, 0);

  g_assert_false (kp_connect_write (gemini.tool, fixture->home, &values, &changed, &opened, &error));
  g_assert_error (error, KP_CONF_ERROR, KP_CONF_ERROR_IO);
  g_assert_false (changed);
  env_after = read_file (gemini.env);
  g_assert_cmpstr (env_after, ==, GEMINI_ENV);
  g_assert_cmpint (mode_of (gemini.env), ==, 0644);
  g_assert_false (g_file_test (gemini.settings, G_FILE_TEST_EXISTS));
  {
    g_autofree char *state = g_strconcat (gemini.env, ".keypool-state", NULL);
    g_autofree char *backup = g_strconcat (gemini.env, ".keypool-backup", NULL);

    g_assert_false (g_file_test (state, G_FILE_TEST_EXISTS));
    g_assert_false (g_file_test (backup, G_FILE_TEST_EXISTS));
  }
  gemini_clear (&gemini);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      const char *tests[] = { "missing", "user-file", "edited-since", "unparsable" };
      GTestFixtureFunc funcs[] = { test_missing, test_user_file, test_edited_since, test_unparsable };

      g_assert_nonnull (kp_connect_lookup (cases[i].tool));
      for (guint j = 0; j < G_N_ELEMENTS (tests); j++)
        {
          g_autofree char *name = g_strdup_printf ("/keypool/connect/%s/%s", cases[i].tool, tests[j]);

          g_test_add_vtable (name, sizeof (Fixture), &cases[i], fixture_setup, funcs[j], fixture_teardown);
        }
    }
  g_test_add_vtable ("/keypool/connect/too-big", sizeof (Fixture), NULL, fixture_setup, test_too_big, fixture_teardown);
  g_test_add_vtable ("/keypool/connect/too-deep", sizeof (Fixture), NULL, fixture_setup, test_too_deep, fixture_teardown);
  g_test_add_func ("/keypool/connect/codex-toml", test_codex_toml);
  g_test_add_vtable ("/keypool/connect/continue-detected", sizeof (Fixture), NULL, fixture_setup,
                     test_continue_detected, fixture_teardown);
  g_test_add_vtable ("/keypool/connect/gemini-cli/settings", sizeof (Fixture), NULL, fixture_setup,
                     test_gemini_settings, fixture_teardown);
  g_test_add_vtable ("/keypool/connect/gemini-cli/settings-unparsable", sizeof (Fixture), NULL,
                     fixture_setup, test_gemini_unparsable, fixture_teardown);
  g_test_add_vtable ("/keypool/connect/gemini-cli/both-files", sizeof (Fixture), NULL, fixture_setup,
                     test_gemini_both_files, fixture_teardown);
  g_test_add_vtable ("/keypool/connect/gemini-cli/older-connection", sizeof (Fixture), NULL,
                     fixture_setup, test_gemini_older_connection, fixture_teardown);
  g_test_add_vtable ("/keypool/connect/gemini-cli/half-way", sizeof (Fixture), NULL, fixture_setup,
                     test_gemini_half_way, fixture_teardown);
  return g_test_run ();
}
