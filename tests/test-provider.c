/* test-provider.c: provider files, the catalog and cost arithmetic
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include "config.h"

#include <string.h>

#include <glib/gstdio.h>

#include "kp-catalog.h"
#include "kp-planner.h"
#include "kp-usage.h"
#include "kp-ways-in.h"
#include "wire/kp-wire.h"
#include "kp-test-util.h"

static KpProvider *
provider_from_string (const char  *json,
                      GError     **error)
{
  g_autoptr(JsonParser) parser = json_parser_new ();

  g_assert_true (json_parser_load_from_data (parser, json, -1, NULL));
  return kp_provider_new_from_json (json_parser_get_root (parser), "test.json", error);
}

static void
test_parse_full (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(KpProvider) provider = NULL;
  g_autoptr(SoupMessageHeaders) headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_REQUEST);
  const KpOffering *offering;

  provider = provider_from_string (
    "{\"schema\":1,\"id\":\"acme\",\"name\":\"Acme AI\",\"base_url\":\"https://api.acme.test/v1/\","
    "\"env\":[\"ACME_KEY\"],\"headers\":{\"X-Title\":\"Keypool\"},\"future_field\":true,"
    "\"models\":[{\"id\":\"Vendor/Model-A\",\"upstream_id\":\"model-a\",\"input\":1.5,\"output\":6,"
    "\"cached_input\":0.15,\"context\":128000},{\"id\":\"vendor/free-form\"}]}", &error);
  g_assert_no_error (error);

  g_assert_cmpstr (kp_provider_get_id (provider), ==, "acme");
  g_assert_cmpstr (kp_provider_get_name (provider), ==, "Acme AI");
  /* A trailing slash is dropped; the endpoint is derived once. */
  g_assert_cmpstr (kp_provider_get_base_url (provider), ==, "https://api.acme.test/v1");
  g_assert_cmpstr (g_uri_get_path (kp_provider_get_chat_uri (provider)), ==, "/v1/chat/completions");
  g_assert_true (kp_provider_get_requires_key (provider));
  g_assert_cmpstr (kp_provider_get_env (provider)[0], ==, "ACME_KEY");

  g_assert_cmpuint (kp_provider_get_n_offerings (provider), ==, 2);
  /* It speaks OpenAI Chat only, and its models are chat models. */
  g_assert_cmpstr (kp_provider_get_wire (provider), ==, "openai-chat");
  g_assert_true (kp_provider_serves (provider, "openai-chat"));
  g_assert_false (kp_provider_serves (provider, "openai-responses"));
  g_assert_false (kp_provider_get_offering (provider, 0)->reasoning);
  g_assert_cmpint (kp_provider_get_offering (provider, 0)->kind, ==, KP_MODEL_CHAT);
  offering = kp_provider_get_offering (provider, 0);
  g_assert_cmpstr (offering->model_id, ==, "vendor/model-a");
  g_assert_cmpstr (offering->upstream_id, ==, "model-a");
  g_assert_cmpfloat (offering->input, ==, 1.5);
  g_assert_cmpfloat (offering->output, ==, 6.0);
  g_assert_cmpfloat (offering->cached_input, ==, 0.15);
  g_assert_cmpint (offering->context, ==, 128000);
  g_assert_true (kp_offering_has_price (offering));

  /* No price is unknown, not zero; the upstream id defaults to the model part. */
  offering = kp_provider_get_offering (provider, 1);
  g_assert_false (kp_offering_has_price (offering));
  g_assert_cmpstr (offering->upstream_id, ==, "free-form");

  kp_provider_apply_headers (provider, headers, "sk-test-1234567890");
  g_assert_cmpstr (soup_message_headers_get_one (headers, "Authorization"), ==,
                   "Bearer sk-test-1234567890");
  g_assert_cmpstr (soup_message_headers_get_one (headers, "X-Title"), ==, "Keypool");
}

static void
test_parse_auth_header (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(KpProvider) provider = NULL;
  g_autoptr(SoupMessageHeaders) headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_REQUEST);

  provider = provider_from_string (
    "{\"id\":\"g\",\"base_url\":\"http://127.0.0.1:1/v1\","
    "\"auth\":{\"type\":\"header\",\"name\":\"x-goog-api-key\"}}", &error);
  g_assert_no_error (error);
  g_assert_cmpint (kp_provider_get_auth_kind (provider), ==, KP_AUTH_HEADER);
  kp_provider_apply_headers (provider, headers, "secret-value-123");
  g_assert_cmpstr (soup_message_headers_get_one (headers, "x-goog-api-key"), ==, "secret-value-123");
  g_assert_null (soup_message_headers_get_one (headers, "Authorization"));
}

/* "apis": where its other APIs are, by default under base_url. */
static void
test_parse_apis (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(KpProvider) provider = provider_from_string (
    "{\"id\":\"many\",\"base_url\":\"https://api.many.test/v1\","
    "\"apis\":{\"openai-responses\":true,\"openai-embeddings\":false,"
    "\"openai-completions\":\"https://fim.many.test/beta/completions\"},"
    "\"models\":[{\"id\":\"v/think\",\"reasoning\":true},{\"id\":\"v/embed\",\"kind\":\"embedding\"}]}",
    &error);

  g_assert_no_error (error);
  g_assert_true (kp_provider_serves (provider, "openai-responses"));
  g_assert_false (kp_provider_serves (provider, "openai-embeddings"));
  g_assert_cmpstr (g_uri_get_path (kp_provider_get_api_uri (provider, "openai-responses")), ==,
                   "/v1/responses");
  g_assert_cmpstr (g_uri_get_host (kp_provider_get_api_uri (provider, "openai-completions")), ==,
                   "fim.many.test");
  g_assert_cmpstr (g_uri_get_path (kp_provider_get_api_uri (provider, "openai-chat")), ==,
                   "/v1/chat/completions");
  g_assert_true (kp_provider_get_offering (provider, 0)->reasoning);
  g_assert_cmpint (kp_provider_get_offering (provider, 1)->kind, ==, KP_MODEL_EMBEDDING);
}

/* An embedding has no output: its input price alone prices it. */
static void
test_parse_embedding_price (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(KpProvider) provider = NULL;
  const KpOffering *offering;

  provider = provider_from_string (
    "{\"id\":\"e\",\"base_url\":\"http://127.0.0.1:1/v1\",\"apis\":{\"openai-embeddings\":true},"
    "\"models\":[{\"id\":\"e/embed\",\"kind\":\"embedding\",\"input\":0.02},"
    "{\"id\":\"e/unpriced\",\"kind\":\"embedding\"}]}", &error);
  g_assert_no_error (error);

  offering = kp_provider_get_offering (provider, 0);
  g_assert_cmpint (offering->kind, ==, KP_MODEL_EMBEDDING);
  g_assert_true (kp_offering_has_price (offering));
  g_assert_cmpfloat (offering->input, ==, 0.02);
  g_assert_cmpfloat (offering->output, ==, 0.0);
  g_assert_false (kp_offering_has_price (kp_provider_get_offering (provider, 1)));
}

static void
test_parse_errors (void)
{
  const struct {
    const char *json;
    const char *expect;
  } cases[] = {
    { "[]", "one JSON object" },
    { "{\"name\":\"x\",\"base_url\":\"http://a\"}", "missing the field “id”" },
    { "{\"id\":\"x\"}", "missing the field “base_url”" },
    { "{\"id\":\"Bad Id\",\"base_url\":\"http://a\"}", "may use only" },
    { "{\"id\":\"x\",\"base_url\":\"ftp://a\"}", "not an http(s) URL" },
    { "{\"id\":\"x\",\"base_url\":\"http://a\",\"dialect\":\"smoke-signals\"}", "not supported" },
    { "{\"schema\":2,\"id\":\"x\",\"base_url\":\"http://a\"}", "newer than this Keypool" },
    { "{\"schema\":{},\"id\":\"x\",\"base_url\":\"http://a\"}", "must be a whole number" },
    { "{\"schema\":\"1\",\"id\":\"x\",\"base_url\":\"http://a\"}", "must be a whole number" },
    { "{\"schema\":1.5,\"id\":\"x\",\"base_url\":\"http://a\"}", "must be a whole number" },
    { "{\"id\":\"x\",\"base_url\":\"http://a\",\"auth\":\"magic\"}", "“auth” is “magic”" },
    { "{\"id\":\"x\",\"base_url\":\"http://a\",\"models\":[{\"id\":\"nocanon\"}]}", "canonical" },
    { "{\"id\":\"x\",\"base_url\":\"http://a\",\"models\":[{\"id\":\"a/b\",\"input\":\"1\",\"output\":1}]}",
      "not a number" },
    { "{\"id\":\"x\",\"base_url\":\"http://a\",\"models\":[{\"id\":\"a/b\",\"input\":-1,\"output\":1}]}",
      "out of range" },
    { "{\"id\":\"x\",\"base_url\":\"http://a\",\"models\":[{\"id\":\"a/b\",\"input\":1}]}",
      "only one of" },
    { "{\"id\":\"x\",\"base_url\":\"http://a\",\"requires_key\":\"no\"}", "true or false" },
    /* The other APIs a provider serves, and what its models are. */
    { "{\"id\":\"x\",\"base_url\":\"http://a\",\"apis\":{\"smoke-signals\":true}}",
      "does not speak" },
    { "{\"id\":\"x\",\"base_url\":\"http://a\",\"apis\":[\"openai-responses\"]}", "“apis” must be" },
    { "{\"id\":\"x\",\"base_url\":\"http://a\",\"apis\":{\"openai-embeddings\":3}}",
      "must be true, false or a path" },
    { "{\"id\":\"x\",\"base_url\":\"http://a\",\"apis\":{\"openai-completions\":\"ftp://b\"}}",
      "not an http(s) URL" },
    { "{\"id\":\"x\",\"base_url\":\"http://a\",\"dialect\":\"openai-responses\"}", "not supported" },
    { "{\"id\":\"x\",\"base_url\":\"http://a\",\"models\":[{\"id\":\"a/b\",\"kind\":\"image\"}]}",
      "“chat” or “embedding”" },
    { "{\"id\":\"x\",\"base_url\":\"http://a\",\"models\":[{\"id\":\"a/b\",\"reasoning\":\"yes\"}]}",
      "true or false" },
    /* A line break in a header would let a file add headers of its own. */
    { "{\"id\":\"x\",\"base_url\":\"http://a\",\"headers\":{\"X-A\":\"1\\r\\nX-Evil: 2\"}}",
      "line break" },
    { "{\"id\":\"x\",\"base_url\":\"http://a\",\"headers\":{\"X-A\":\"1\\nX-Evil: 2\"}}",
      "line break" },
    { "{\"id\":\"x\",\"base_url\":\"http://a\",\"headers\":{\"X-A\\r\\nX-Evil\":\"1\"}}",
      "not a valid header name" },
    { "{\"id\":\"x\",\"base_url\":\"http://a\",\"auth\":{\"type\":\"header\",\"name\":\"k\\ne\"}}",
      "not a valid header name" },
    { "{\"id\":\"x\",\"base_url\":\"http://a\",\"auth\":{\"type\":\"header\",\"name\":\"k\","
      "\"prefix\":\"a\\rb\"}}", "line break" },
    /* A member of the wrong kind is refused by name, never read as a value. */
    { "{\"id\":\"x\",\"base_url\":\"http://a\",\"auth\":{\"type\":\"header\",\"name\":\"k\","
      "\"prefix\":{}}}", "“prefix” that is not a string" },
    { "{\"id\":\"x\",\"base_url\":\"http://a\",\"auth\":{\"type\":\"header\",\"name\":\"k\","
      "\"prefix\":7}}", "“prefix” that is not a string" },
    { "{\"id\":\"x\",\"base_url\":\"http://a\",\"models\":[{\"id\":\"a/b\",\"context\":{}}]}",
      "“context” that is not a number" },
    { "{\"id\":\"x\",\"base_url\":\"http://a\",\"models\":[{\"id\":\"a/b\",\"context\":[1]}]}",
      "“context” that is not a number" },
    { "{\"id\":\"x\",\"base_url\":\"http://a\",\"models\":[{\"id\":\"a/b\",\"context\":\"8k\"}]}",
      "“context” that is not a number" },
    { "{\"id\":\"x\",\"base_url\":\"http://a\",\"oauth\":{\"token_url\":\"https://t/token\","
      "\"client_id\":\"c\",\"scopes\":[{}]}}", "“oauth.scopes” must hold scope names" },
    { "{\"id\":\"x\",\"base_url\":\"http://a\",\"oauth\":{\"token_url\":\"https://t/token\","
      "\"client_id\":\"c\",\"scopes\":[[\"a\"]]}}", "“oauth.scopes” must hold scope names" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(KpProvider) provider = provider_from_string (cases[i].json, &error);

      g_assert_null (provider);
      g_assert_nonnull (error);
      g_assert_true (g_str_has_prefix (error->message, "test.json: "));
      if (strstr (error->message, cases[i].expect) == NULL)
        g_error ("case %u: “%s” does not mention “%s”", i, error->message, cases[i].expect);
    }
}

static void
write_file (const char *dir,
            const char *name,
            const char *contents)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);

  g_assert_true (g_file_set_contents (path, contents, -1, NULL));
}

static void
test_catalog_override (void)
{
  g_autofree char *root = g_dir_make_tmp ("keypool-test-XXXXXX", NULL);
  g_autofree char *shipped = g_build_filename (root, "shipped", NULL);
  g_autofree char *user = g_build_filename (root, "user", NULL);
  g_autoptr(KpCatalog) catalog = kp_catalog_new ();
  GPtrArray *offerings;
  KpProvider *provider;

  g_mkdir (shipped, 0700);
  g_mkdir (user, 0700);
  write_file (shipped, "alpha.json",
              "{\"id\":\"alpha\",\"base_url\":\"https://alpha.test/v1\","
              "\"models\":[{\"id\":\"v/shared\",\"input\":1,\"output\":1},{\"id\":\"v/only-alpha\"}]}");
  write_file (shipped, "beta.json",
              "{\"id\":\"beta\",\"name\":\"Beta shipped\",\"base_url\":\"https://beta.test/v1\","
              "\"models\":[{\"id\":\"v/shared\",\"input\":2,\"output\":2}]}");
  write_file (shipped, "broken.json", "{ this is not json");
  write_file (shipped, "notes.txt", "ignored");
  /* The user's beta replaces the shipped one; gamma is new. */
  write_file (user, "my-beta.json",
              "{\"id\":\"beta\",\"name\":\"Beta mine\",\"base_url\":\"http://127.0.0.1:9/v1\","
              "\"models\":[{\"id\":\"w/mine\",\"input\":0,\"output\":0}]}");
  write_file (user, "gamma.json",
              "{\"id\":\"gamma\",\"base_url\":\"https://gamma.test/v1\","
              "\"models\":[{\"id\":\"V/Shared\",\"upstream_id\":\"shared-g\"}]}");

  g_test_expect_message ("keypool", G_LOG_LEVEL_WARNING, "*broken.json: not valid JSON*");
  kp_catalog_load (catalog, shipped, user);
  g_test_assert_expected_messages ();

  g_assert_cmpuint (kp_catalog_get_providers (catalog)->len, ==, 3);
  g_assert_cmpuint (kp_catalog_get_load_errors (catalog)->len, ==, 1);
  provider = kp_catalog_get_provider (catalog, "beta");
  g_assert_cmpstr (kp_provider_get_name (provider), ==, "Beta mine");

  /* The shipped beta's offering of v/shared is gone with it. */
  offerings = kp_catalog_lookup (catalog, "v/shared");
  g_assert_nonnull (offerings);
  g_assert_cmpuint (offerings->len, ==, 2);

  /* Case does not matter; a bare name works while it is unambiguous. */
  g_assert_true (kp_catalog_lookup (catalog, "V/SHARED") == offerings);
  g_assert_true (kp_catalog_lookup (catalog, "shared") == offerings);
  g_assert_nonnull (kp_catalog_lookup (catalog, "mine"));
  g_assert_null (kp_catalog_lookup (catalog, "v/nothing"));
  g_assert_null (kp_catalog_lookup (catalog, ""));
  g_assert_cmpuint (kp_catalog_get_model_ids (catalog)->len, ==, 3);
}

/* A provider file of 100,000 "[" is skipped with a clear warning; json-glib
 * alone would overflow its stack on it and end Keypool.
 */
static void
test_catalog_deep_file (void)
{
  g_autofree char *root = g_dir_make_tmp ("keypool-test-XXXXXX", NULL);
  g_autofree char *deep = g_malloc (100000 + 1);
  g_autoptr(KpCatalog) catalog = kp_catalog_new ();

  memset (deep, '[', 100000);
  deep[100000] = '\0';
  write_file (root, "deep.json", deep);
  write_file (root, "alpha.json",
              "{\"id\":\"alpha\",\"base_url\":\"https://alpha.test/v1\","
              "\"models\":[{\"id\":\"v/a\",\"input\":1,\"output\":1}]}");

  g_test_expect_message ("keypool", G_LOG_LEVEL_WARNING, "*deep.json*deeper than 128 levels*");
  kp_catalog_load (catalog, root, NULL);
  g_test_assert_expected_messages ();

  g_assert_cmpuint (kp_catalog_get_providers (catalog)->len, ==, 1);
  g_assert_nonnull (kp_catalog_get_provider (catalog, "alpha"));
  g_assert_cmpuint (kp_catalog_get_load_errors (catalog)->len, ==, 1);
  kp_test_remove_tree (root);
}

/* An empty file (or one of spaces) is valid to json-glib, with no root: the
 * catalog skips it with a message instead of ending the process.
 */
static void
test_catalog_empty_file (void)
{
  g_autofree char *root = g_dir_make_tmp ("keypool-test-XXXXXX", NULL);
  g_autoptr(KpCatalog) catalog = kp_catalog_new ();

  write_file (root, "empty.json", "");
  write_file (root, "spaces.json", " \n\t ");
  write_file (root, "alpha.json",
              "{\"id\":\"alpha\",\"base_url\":\"https://alpha.test/v1\","
              "\"models\":[{\"id\":\"v/a\",\"input\":1,\"output\":1}]}");

  g_test_expect_message ("keypool", G_LOG_LEVEL_WARNING, "*empty.json*is empty*");
  g_test_expect_message ("keypool", G_LOG_LEVEL_WARNING, "*spaces.json*is empty*");
  kp_catalog_load (catalog, root, NULL);
  g_test_assert_expected_messages ();

  g_assert_cmpuint (kp_catalog_get_providers (catalog)->len, ==, 1);
  g_assert_nonnull (kp_catalog_get_provider (catalog, "alpha"));
  g_assert_cmpuint (kp_catalog_get_load_errors (catalog)->len, ==, 2);
  kp_test_remove_tree (root);
}

/* The Add Key dialog and `keypool keys add` offer each shipped provider
 * the way its accounts come in.
 */
static void
test_shipped_ways_in (void)
{
  static const struct { const char *id; KpWayIn ways; } cases[] = {
    { "openai", KP_WAY_IN_KEY },
    { "ollama", KP_WAY_IN_NONE },
    { "gemini-cli", KP_WAY_IN_SIGN_IN | KP_WAY_IN_IMPORT },
    { "antigravity", KP_WAY_IN_SIGN_IN },
    { "qwen-code", KP_WAY_IN_SIGN_IN | KP_WAY_IN_IMPORT },
    { "kiro", KP_WAY_IN_IMPORT },
  };
  g_autoptr(KpCatalog) catalog = kp_catalog_new ();

  kp_catalog_load (catalog, g_getenv ("KEYPOOL_PROVIDERS_DIR"), NULL);
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      KpProvider *provider = kp_catalog_get_provider (catalog, cases[i].id);
      g_autofree char *hint = NULL;

      g_assert_nonnull (provider);
      g_test_message ("%s", cases[i].id);
      g_assert_cmpint (kp_ways_in_of (provider), ==, cases[i].ways);
      hint = kp_ways_in_dup_hint (provider);
      g_assert_true ((hint != NULL) == (cases[i].ways != KP_WAY_IN_NONE &&
                                        cases[i].ways != KP_WAY_IN_KEY));
      if (cases[i].ways & KP_WAY_IN_IMPORT)
        g_assert_nonnull (strstr (hint, "keys import"));
    }
}

/* Reading the provider files sets up no GIO VFS: that would scan the GIO
 * modules and map code an idle `keypool --headless` never needs again.
 * In a process of its own, since any GFile sets it up for good.
 */
static void
test_catalog_no_vfs (void)
{
  g_autoptr(KpCatalog) catalog = NULL;

  if (!g_test_subprocess ())
    {
      g_test_trap_subprocess (NULL, 60 * G_USEC_PER_SEC, G_TEST_SUBPROCESS_DEFAULT);
      g_test_trap_assert_passed ();
      return;
    }

  catalog = kp_catalog_new ();
  kp_catalog_load (catalog, g_getenv ("KEYPOOL_PROVIDERS_DIR"), NULL);
  g_assert_cmpuint (kp_catalog_get_providers (catalog)->len, >, 0);
  g_assert_cmpuint (g_type_from_name ("GLocalVfs"), ==, 0);
  /* The same check sees a VFS once there is one. */
  g_clear_object (&catalog);
  g_assert_nonnull (g_vfs_get_default ());
  g_assert_cmpuint (g_type_from_name ("GLocalVfs"), !=, 0);
}

static void
test_shipped_providers (void)
{
  const char *dir = g_getenv ("KEYPOOL_PROVIDERS_DIR");
  const char *expected[] = { "deepinfra", "deepseek", "google-ai-studio", "groq", "lmstudio",
                             "mistral", "oaipro", "ollama", "openai", "openrouter", "together",
                             "xai", "zenmux" };
  g_autoptr(KpCatalog) catalog = kp_catalog_new ();

  g_assert_nonnull (dir);
  kp_catalog_load (catalog, dir, NULL);

  /* Every shipped file loads: a broken one would be a warning here. */
  g_assert_cmpuint (kp_catalog_get_load_errors (catalog)->len, ==, 0);
  for (guint i = 0; i < G_N_ELEMENTS (expected); i++)
    {
      KpProvider *provider = kp_catalog_get_provider (catalog, expected[i]);

      if (provider == NULL)
        g_error ("no shipped provider “%s”", expected[i]);
      g_assert_cmpuint (kp_provider_get_n_offerings (provider), >, 0);
      if (kp_provider_get_requires_key (provider))
        g_assert_nonnull (kp_provider_get_env (provider)[0]);
    }

  /* One model served by several providers shares one canonical id. */
  g_assert_cmpuint (kp_catalog_lookup (catalog, "meta-llama/llama-3.3-70b-instruct")->len, >=, 2);
}

/* AI Studio keys serve embeddings: to Gemini's clients as they are, to
 * OpenAI's through Gemini's embeddings API.
 */
static void
test_shipped_gemini_embeddings (void)
{
  const char *dir = g_getenv ("KEYPOOL_PROVIDERS_DIR");
  g_autoptr(KpCatalog) catalog = kp_catalog_new ();
  g_auto(GStrv) providers = NULL;
  g_autoptr(GPtrArray) offerings = NULL;
  const KpOffering *found = NULL;

  g_assert_nonnull (dir);
  kp_catalog_load (catalog, dir, NULL);
  g_assert_cmpuint (kp_catalog_get_load_errors (catalog)->len, ==, 0);
  offerings = kp_planner_resolve (catalog, "gemini-embedding-001", &providers);
  g_assert_nonnull (offerings);
  for (guint i = 0; i < offerings->len; i++)
    {
      const KpOffering *offering = g_ptr_array_index (offerings, i);

      if (g_str_equal (kp_provider_get_id (offering->provider), "google-ai-studio"))
        found = offering;
    }
  g_assert_nonnull (found);
  g_assert_cmpstr (found->model_id, ==, "google/gemini-embedding-001");
  g_assert_cmpstr (found->upstream_id, ==, "gemini-embedding-001");
  g_assert_cmpint (found->kind, ==, KP_MODEL_EMBEDDING);
  g_assert_cmpfloat (found->input, ==, 0.15);
  g_assert_cmpfloat (found->output, ==, 0);

  g_assert_true (kp_wire_route_for (kp_wire_for_id ("gemini-embed"), found) ==
                 kp_wire_for_id ("gemini-embed"));
  g_assert_true (kp_wire_route_for (kp_wire_for_id ("openai-embeddings"), found) ==
                 kp_wire_for_id ("gemini-embed"));
  /* An embedding model does not chat. */
  g_assert_null (kp_wire_route_for (kp_wire_for_id ("openai-chat"), found));
}

/* Run unmodified, today's clients ask for these models by default: the
 * shipped files must serve each with a price, so no override is needed.
 */
static void
test_client_defaults (void)
{
  const struct {
    const char *client;
    const char *asks;          /* the model name the client sends */
    const char *provider;      /* a provider that must serve it */
    const char *upstream_id;   /* what that provider is asked for */
  } cases[] = {
    { "Claude Code 2.1", "claude-opus-4-8", "anthropic", "claude-opus-4-8" },
    { "Claude Code 2.1 (small tasks)", "claude-haiku-4-5-20251001", "anthropic", "claude-haiku-4-5" },
    { "Claude Code 2.1 (small tasks)", "claude-haiku-4-5", "anthropic", "claude-haiku-4-5" },
    { "Codex CLI", "gpt-5-codex", "openai", "gpt-5-codex" },
    { "Gemini CLI", "gemini-2.5-pro", "google-ai-studio", "gemini-2.5-pro" },
    { "Gemini CLI", "gemini-2.5-flash", "google-ai-studio", "gemini-2.5-flash" },
  };
  const char *dir = g_getenv ("KEYPOOL_PROVIDERS_DIR");
  g_autoptr(KpCatalog) catalog = kp_catalog_new ();

  g_assert_nonnull (dir);
  kp_catalog_load (catalog, dir, NULL);
  g_assert_cmpuint (kp_catalog_get_load_errors (catalog)->len, ==, 0);

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_auto(GStrv) providers = NULL;
      g_autoptr(GPtrArray) offerings = kp_planner_resolve (catalog, cases[i].asks, &providers);
      const KpOffering *found = NULL;

      if (offerings == NULL)
        g_error ("%s asks for “%s”: no shipped provider serves it", cases[i].client, cases[i].asks);
      /* Not a pin: every provider of the model may serve it. */
      g_assert_null (providers);

      for (guint j = 0; j < offerings->len; j++)
        {
          const KpOffering *offering = g_ptr_array_index (offerings, j);

          if (g_str_equal (kp_provider_get_id (offering->provider), cases[i].provider))
            found = offering;
          /* Every provider of it has a price from its file, and says when it was checked. */
          if (!kp_offering_has_price (offering))
            g_error ("%s: “%s” has no price at %s", cases[i].client, cases[i].asks,
                     kp_provider_get_id (offering->provider));
          g_assert_cmpint (offering->price_source, ==, KP_PRICE_BUNDLED);
          g_assert_nonnull (kp_provider_get_prices_checked (offering->provider));
        }

      if (found == NULL)
        g_error ("%s asks for “%s”: %s does not serve it", cases[i].client, cases[i].asks,
                 cases[i].provider);
      g_assert_cmpstr (found->upstream_id, ==, cases[i].upstream_id);
      g_assert_cmpfloat (found->input, >, 0);
      g_assert_cmpfloat (found->output, >, found->input);
    }
}

static void
test_cost (void)
{
  KpOffering offering = { .input = 3.0, .output = 15.0, .cached_input = 0.3 };
  KpOffering unpriced = { .input = -1, .output = -1, .cached_input = -1 };
  g_autoptr(JsonParser) parser = json_parser_new ();
  KpUsage usage = { 0 };
  gint64 cost = -1;

  g_assert_true (json_parser_load_from_data (parser,
    "{\"prompt_tokens\":1000,\"completion_tokens\":200,"
    "\"prompt_tokens_details\":{\"cached_tokens\":400},"
    "\"completion_tokens_details\":{\"reasoning_tokens\":50}}", -1, NULL));
  g_assert_true (kp_usage_parse_openai (&usage, json_node_get_object (json_parser_get_root (parser))));
  g_assert_cmpint (usage.prompt_tokens, ==, 1000);
  g_assert_cmpint (usage.cached_tokens, ==, 400);
  g_assert_cmpint (usage.reasoning_tokens, ==, 50);

  /* 600 × $3 + 400 × $0.30 + 200 × $15 per million = $0.00492 */
  g_assert_cmpint (kp_usage_get_cost (&usage, &offering, &cost), ==, KP_COST_COMPUTED);
  g_assert_cmpint (cost, ==, 4920000);

  g_assert_cmpint (kp_usage_get_cost (&usage, &unpriced, &cost), ==, KP_COST_UNKNOWN);
  g_assert_cmpint (cost, ==, 0);

  g_assert_true (json_parser_load_from_data (parser,
    "{\"prompt_tokens\":10,\"completion_tokens\":2,\"cost\":0.000123}", -1, NULL));
  kp_usage_parse_openai (&usage, json_node_get_object (json_parser_get_root (parser)));
  g_assert_cmpint (kp_usage_get_cost (&usage, &unpriced, &cost), ==, KP_COST_REPORTED);
  g_assert_cmpint (cost, ==, 123000);

  g_assert_true (json_parser_load_from_data (parser,
    "{\"prompt_tokens\":10,\"completion_tokens\":2,\"estimated_cost\":\"0.5\"}", -1, NULL));
  kp_usage_parse_openai (&usage, json_node_get_object (json_parser_get_root (parser)));
  g_assert_cmpint (kp_usage_get_cost (&usage, &offering, &cost), ==, KP_COST_REPORTED);
  g_assert_cmpint (cost, ==, 500000000);
}

/* What a provider reports is clamped before it is rounded or cast: a double
 * past the range of gint64 is undefined behaviour there.
 */
static void
test_cost_clamped (void)
{
  KpOffering dear = { .input = 1e6, .output = 1e6, .cached_input = -1, .cache_write = -1 };
  g_autoptr(JsonParser) parser = json_parser_new ();
  KpUsage usage = { 0 };
  gint64 cost = -1;

  g_assert_true (json_parser_load_from_data (parser,
    "{\"prompt_tokens\":1e300,\"completion_tokens\":9.3e18,"
    "\"prompt_tokens_details\":{\"cached_tokens\":-1e300},"
    "\"completion_tokens_details\":{\"reasoning_tokens\":99999999999999999999},"
    "\"cost\":1e300}", -1, NULL));
  g_assert_true (kp_usage_parse_openai (&usage, json_node_get_object (json_parser_get_root (parser))));
  g_assert_cmpint (usage.prompt_tokens, ==, KP_USAGE_MAX_TOKENS);
  g_assert_cmpint (usage.completion_tokens, ==, KP_USAGE_MAX_TOKENS);
  g_assert_cmpint (usage.cached_tokens, ==, 0);
  g_assert_cmpint (usage.reasoning_tokens, >=, 0);
  g_assert_cmpint (usage.reasoning_tokens, <=, KP_USAGE_MAX_TOKENS);
  g_assert_true (usage.has_reported_cost);
  g_assert_cmpint (usage.reported_cost_nano, ==, KP_USAGE_MAX_COST_NANO);

  /* The most tokens at the dearest price still fit. */
  usage.has_reported_cost = FALSE;
  g_assert_cmpint (kp_usage_get_cost (&usage, &dear, &cost), ==, KP_COST_COMPUTED);
  g_assert_cmpint (cost, ==, KP_USAGE_MAX_COST_NANO);

  g_assert_true (json_parser_load_from_data (parser,
    "{\"input_tokens\":1e300,\"output_tokens\":-5,\"cache_read_input_tokens\":1e19}", -1, NULL));
  usage = (KpUsage) { 0 };
  g_assert_true (kp_usage_parse_anthropic (&usage, json_node_get_object (json_parser_get_root (parser))));
  g_assert_cmpint (usage.completion_tokens, ==, 0);
  g_assert_cmpint (usage.cached_tokens, ==, KP_USAGE_MAX_TOKENS);
  g_assert_cmpint (usage.prompt_tokens, <=, 3 * KP_USAGE_MAX_TOKENS);
  g_assert_cmpint (usage.prompt_tokens, >=, KP_USAGE_MAX_TOKENS);
}

/* The fields the catalog refresh reads, and the ids it gives new models. */
static void
test_parse_refresh (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(KpProvider) provider = NULL;
  g_autoptr(KpProvider) plain = NULL;
  g_autofree char *models = NULL;
  g_autofree char *balance = NULL;
  g_autofree char *id = NULL;
  static const char *bad[] = {
    "\"prices\":\"per_token\"",
    "\"models_need_key\":\"no\"",
    "\"balance\":\"/credits\"",
    "\"balance\":{\"endpoint\":\"/credits\"}",
    "\"balance\":{\"endpoint\":\"/credits\",\"format\":\"stripe\"}",
  };

  provider = provider_from_string (
    "{\"id\":\"or\",\"base_url\":\"https://or.test/api/v1\",\"prices\":\"openrouter\","
    "\"models_need_key\":false,\"prices_checked\":\"2026-11-27\","
    "\"balance\":{\"endpoint\":\"/credits\",\"format\":\"openrouter_credits\"}}", &error);
  g_assert_no_error (error);
  models = kp_provider_dup_models_url (provider);
  balance = kp_provider_dup_balance_url (provider);
  g_assert_cmpstr (models, ==, "https://or.test/api/v1/models");
  g_assert_cmpstr (balance, ==, "https://or.test/api/v1/credits");
  g_assert_false (kp_provider_get_models_need_key (provider));
  g_assert_cmpint (kp_provider_get_price_format (provider), ==, KP_PRICES_OPENROUTER);
  g_assert_cmpint (kp_provider_get_balance_format (provider), ==, KP_BALANCE_OPENROUTER_CREDITS);
  g_assert_cmpstr (kp_provider_get_prices_checked (provider), ==, "2026-11-27");

  /* Defaults: the list under base_url, asked with a key, no prices, no balance. */
  plain = provider_from_string ("{\"id\":\"ds\",\"base_url\":\"https://ds.test/v1\","
                                "\"balance\":{\"endpoint\":\"https://ds.test/user/balance\","
                                "\"format\":\"deepseek\"}}", &error);
  g_assert_no_error (error);
  g_clear_pointer (&balance, g_free);
  balance = kp_provider_dup_balance_url (plain);
  g_assert_cmpstr (balance, ==, "https://ds.test/user/balance");
  g_assert_true (kp_provider_get_models_need_key (plain));
  g_assert_cmpint (kp_provider_get_price_format (plain), ==, KP_PRICES_NONE);

  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autofree char *json = g_strdup_printf ("{\"id\":\"x\",\"base_url\":\"https://x.test\",%s}",
                                               bad[i]);
      g_autoptr(KpProvider) broken = provider_from_string (json, &error);

      g_assert_null (broken);
      g_assert_error (error, KP_PROVIDER_ERROR, KP_PROVIDER_ERROR_INVALID);
      g_clear_error (&error);
    }

  /* Canonical ids for models the file does not know. */
  id = kp_live_model_canonical_id (plain, "DeepSeek-Chat");
  g_assert_cmpstr (id, ==, "ds/deepseek-chat");
  g_clear_pointer (&id, g_free);
  id = kp_live_model_canonical_id (plain, "Qwen/Qwen3-Coder");
  g_assert_cmpstr (id, ==, "qwen/qwen3-coder");
  g_clear_pointer (&id, g_free);
  g_assert_null (kp_live_model_canonical_id (plain, "has space"));
  g_assert_null (kp_live_model_canonical_id (plain, "/leading"));
  g_assert_null (kp_live_model_canonical_id (plain, ""));
}

/* A live list replaces the file's models, unless the file says it only adds
 * to them (Anthropic lists dated ids, not the aliases the file routes to).
 */
static void
test_merge_live_list (void)
{
  static const char models[] =
    "\"models\":[{\"id\":\"anthropic/claude-sonnet-9\",\"upstream_id\":\"claude-sonnet-9-0\","
    "\"input\":3,\"output\":15,\"cached_input\":0.3,\"cache_write\":3.75}]";
  g_autoptr(GError) error = NULL;
  g_autoptr(GArray) live = g_array_new (FALSE, TRUE, sizeof (KpLiveModel));
  KpLiveModel dated = { g_strdup ("claude-sonnet-9-20261101"), -1, -1, -1, 0 };
  KpLiveModel other = { g_strdup ("claude-haiku-1-20240101"), -1, -1, -1, 0 };
  g_autofree char *replaces_json = g_strdup_printf (
    "{\"id\":\"anthropic\",\"dialect\":\"anthropic\",\"base_url\":\"https://a.test/v1\",%s}", models);
  g_autofree char *adds_json = g_strdup_printf (
    "{\"id\":\"anthropic\",\"dialect\":\"anthropic\",\"base_url\":\"https://a.test/v1\","
    "\"models_list\":\"adds\",%s}", models);
  g_autoptr(KpProvider) replaces = provider_from_string (replaces_json, &error);
  g_autoptr(KpProvider) adds = provider_from_string (adds_json, &error);
  g_autoptr(KpProvider) replaced = NULL;
  g_autoptr(KpProvider) added = NULL;
  const KpOffering *kept;
  const KpOffering *dated_offering;

  g_assert_no_error (error);
  g_array_set_clear_func (live, kp_live_model_clear);
  g_array_append_val (live, dated);
  g_array_append_val (live, other);

  replaced = kp_provider_new_merged (replaces, live, 1000);
  g_assert_cmpuint (kp_provider_get_n_offerings (replaced), ==, 2);
  g_assert_cmpstr (kp_provider_get_offering (replaced, 0)->upstream_id, ==, "claude-sonnet-9-20261101");
  g_assert_cmpstr (kp_provider_get_wire (replaced), ==, "anthropic");

  added = kp_provider_new_merged (adds, live, 1000);
  g_assert_cmpuint (kp_provider_get_n_offerings (added), ==, 3);
  /* A dated snapshot of a model the file prices costs the same. */
  dated_offering = kp_provider_get_offering (added, 0);
  g_assert_cmpstr (dated_offering->model_id, ==, "anthropic/claude-sonnet-9-20261101");
  g_assert_cmpstr (dated_offering->upstream_id, ==, "claude-sonnet-9-20261101");
  g_assert_cmpfloat (dated_offering->input, ==, 3.0);
  g_assert_cmpfloat (dated_offering->cache_write, ==, 3.75);
  g_assert_cmpint (dated_offering->price_source, ==, KP_PRICE_BUNDLED);
  /* Anything else the list names is unpriced, never free. */
  g_assert_false (kp_offering_has_price (kp_provider_get_offering (added, 1)));
  kept = kp_provider_get_offering (added, 2);
  g_assert_cmpstr (kept->model_id, ==, "anthropic/claude-sonnet-9");
  g_assert_cmpstr (kept->upstream_id, ==, "claude-sonnet-9-0");
  g_assert_cmpfloat (kept->cache_write, ==, 3.75);
  g_assert_true (kept->provider == added);

  g_assert_null (provider_from_string ("{\"id\":\"x\",\"base_url\":\"https://x.test\","
                                       "\"models_list\":\"merges\"}", &error));
  g_assert_error (error, KP_PROVIDER_ERROR, KP_PROVIDER_ERROR_INVALID);
}

/* Two models of one file that map to the same upstream id (an alias written
 * as its own entry) both stay when the live list names that id.
 */
static void
test_merge_keeps_every_file_model (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GArray) live = g_array_new (FALSE, TRUE, sizeof (KpLiveModel));
  KpLiveModel listed = { g_strdup ("chat-v3"), -1, -1, -1, 0 };
  g_autoptr(KpProvider) bundled = provider_from_string (
    "{\"id\":\"deep\",\"base_url\":\"https://d.test/v1\",\"models\":["
    "{\"id\":\"deep/chat\",\"upstream_id\":\"chat-v3\",\"input\":1,\"output\":2},"
    "{\"id\":\"deep/chat-v3\",\"upstream_id\":\"chat-v3\",\"input\":1,\"output\":2},"
    "{\"id\":\"deep/gone\",\"upstream_id\":\"gone\"}]}", &error);
  g_autoptr(KpProvider) merged = NULL;

  g_assert_no_error (error);
  g_array_set_clear_func (live, kp_live_model_clear);
  g_array_append_val (live, listed);

  merged = kp_provider_new_merged (bundled, live, 1000);
  g_assert_cmpuint (kp_provider_get_n_offerings (merged), ==, 2);
  g_assert_cmpstr (kp_provider_get_offering (merged, 0)->model_id, ==, "deep/chat");
  g_assert_cmpstr (kp_provider_get_offering (merged, 1)->model_id, ==, "deep/chat-v3");
  for (guint i = 0; i < 2; i++)
    {
      const KpOffering *offering = kp_provider_get_offering (merged, i);

      g_assert_cmpstr (offering->upstream_id, ==, "chat-v3");
      g_assert_cmpfloat (offering->output, ==, 2.0);
      g_assert_cmpint (offering->price_source, ==, KP_PRICE_BUNDLED);
      g_assert_true (offering->provider == merged);
    }
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/keypool/provider/parse-full", test_parse_full);
  g_test_add_func ("/keypool/provider/parse-auth-header", test_parse_auth_header);
  g_test_add_func ("/keypool/provider/parse-embedding-price", test_parse_embedding_price);
  g_test_add_func ("/keypool/provider/parse-errors", test_parse_errors);
  g_test_add_func ("/keypool/provider/parse-refresh", test_parse_refresh);
  g_test_add_func ("/keypool/provider/parse-apis", test_parse_apis);
  g_test_add_func ("/keypool/provider/merge-live-list", test_merge_live_list);
  g_test_add_func ("/keypool/provider/merge-keeps-every-file-model", test_merge_keeps_every_file_model);
  g_test_add_func ("/keypool/catalog/override", test_catalog_override);
  g_test_add_func ("/keypool/catalog/shipped", test_shipped_providers);
  g_test_add_func ("/keypool/catalog/no-vfs", test_catalog_no_vfs);
  g_test_add_func ("/keypool/catalog/shipped-ways-in", test_shipped_ways_in);
  g_test_add_func ("/keypool/catalog/deep-file", test_catalog_deep_file);
  g_test_add_func ("/keypool/catalog/empty-file", test_catalog_empty_file);
  g_test_add_func ("/keypool/catalog/client-defaults", test_client_defaults);
  g_test_add_func ("/keypool/catalog/shipped-gemini-embeddings", test_shipped_gemini_embeddings);
  g_test_add_func ("/keypool/usage/cost", test_cost);
  g_test_add_func ("/keypool/usage/cost-clamped", test_cost_clamped);

  return g_test_run ();
}
