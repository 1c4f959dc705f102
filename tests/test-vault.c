/* test-vault.c: the keyring, for real
 *
 * KEYPOOL_TEST_KEYRING says what this run has: "real" (a gnome-keyring on a
 * private session bus), "hung" (a private bus where the Secret Service never
 * answers), or "none" (no session bus at all).
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include "config.h"

#include <string.h>

#include "kp-test-util.h"
#include "kp-vault.h"

/* Runs the loop until an async call is done; at most @timeout_ms. */
static GAsyncResult *
wait_result (GAsyncResult **slot,
             guint          timeout_ms)
{
  gint64 deadline = g_get_monotonic_time () + (gint64)timeout_ms * 1000;

  while (!kp_test_result_ready (slot) && g_get_monotonic_time () < deadline)
    g_main_context_iteration (NULL, TRUE);
  g_assert_nonnull (*slot);
  return *slot;
}

static GHashTable *
load (KpVault  *vault,
      GError  **error)
{
  g_autoptr(GAsyncResult) result = NULL;

  kp_vault_load_async (vault, NULL, kp_test_store_result, &result);
  wait_result (&result, 20000);
  return kp_vault_load_finish (vault, result, error);
}

static void
store (KpVault    *vault,
       const char *provider,
       const char *credential,
       const char *secret)
{
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;

  kp_vault_store_async (vault, provider, credential, "Keypool test", secret, NULL, kp_test_store_result, &result);
  wait_result (&result, 20000);
  g_assert_true (kp_vault_store_finish (vault, result, &error));
  g_assert_no_error (error);
}

/* Whether libsecret (through the keyring's module) is in this process. */
static gboolean
keyring_mapped (void)
{
  return kp_test_file_contains ("/proc/self/maps", "libsecret-1.so") ||
         kp_test_file_contains ("/proc/self/maps", "libkeypool-vault.so");
}

static void
test_roundtrip (void)
{
  g_autoptr(KpVault) vault = kp_vault_new ();
  g_autoptr(GHashTable) secrets = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;

  /* The keyring's module comes with the first call, not before. */
  g_assert_false (keyring_mapped ());

  store (vault, "openrouter", "1", "sk-or-v1-first-secret-0001");
  store (vault, "deepseek", "2", "sk-second-secret-0002");
  store (vault, "keypool", KP_VAULT_TOKEN, "kp-token-0003");
  /* Storing again under the same attributes replaces the secret. */
  store (vault, "deepseek", "2", "sk-second-secret-changed");

  secrets = load (vault, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_hash_table_size (secrets), ==, 3);
  g_assert_cmpstr (g_hash_table_lookup (secrets, "openrouter:1"), ==, "sk-or-v1-first-secret-0001");
  g_assert_cmpstr (g_hash_table_lookup (secrets, "deepseek:2"), ==, "sk-second-secret-changed");
  g_assert_cmpstr (g_hash_table_lookup (secrets, KP_VAULT_TOKEN_KEY), ==, "kp-token-0003");
  g_clear_pointer (&secrets, g_hash_table_unref);

  kp_vault_clear_async (vault, "1", NULL, kp_test_store_result, &result);
  wait_result (&result, 20000);
  g_assert_true (kp_vault_clear_finish (vault, result, &error));
  g_assert_no_error (error);

  secrets = load (vault, &error);
  g_assert_no_error (error);
  g_assert_null (g_hash_table_lookup (secrets, "openrouter:1"));
  g_assert_cmpuint (g_hash_table_size (secrets), ==, 2);
  g_assert_true (keyring_mapped ());
}

/* In a process of its own: the module, once loaded, stays. */
static void
test_broken_module (void)
{
  g_autofree char *dir = NULL;
  g_autofree char *path = NULL;
  g_autoptr(KpVault) vault = NULL;
  g_autoptr(GHashTable) secrets = NULL;
  g_autoptr(GError) error = NULL;

  if (!g_test_subprocess ())
    {
      g_test_trap_subprocess (NULL, 60 * G_USEC_PER_SEC, G_TEST_SUBPROCESS_DEFAULT);
      g_test_trap_assert_passed ();
      return;
    }

  /* A file where the module should be that is no module: looked at first,
   * it is what Keypool tries to load. */
  dir = g_dir_make_tmp ("keypool-vault-XXXXXX", NULL);
  g_assert_nonnull (dir);
  path = g_module_build_path (dir, "keypool-vault");
  g_assert_true (g_file_set_contents (path, "not a module\n", -1, NULL));
  g_setenv ("KEYPOOL_MODULE_DIR", dir, TRUE);

  vault = kp_vault_new ();
  secrets = load (vault, &error);
  g_assert_null (secrets);
  g_assert_error (error, KP_VAULT_ERROR, KP_VAULT_ERROR_UNAVAILABLE);
  g_assert_true (g_str_has_prefix (error->message, "Keypool's keyring module cannot be loaded: "));
  kp_test_assert_contains (error->message, path);
  g_assert_false (kp_test_file_contains ("/proc/self/maps", "libsecret-1.so"));

  kp_test_remove_tree (dir);
}

static void
test_hung (void)
{
  g_autoptr(KpVault) vault = kp_vault_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GHashTable) secrets = NULL;
  gint64 start = g_get_monotonic_time ();
  gint64 elapsed_ms;

  /* The keyring never answers; Keypool's own timeout ends the wait. */
  kp_vault_set_timeout (vault, 1500);
  secrets = load (vault, &error);
  elapsed_ms = (g_get_monotonic_time () - start) / 1000;

  g_assert_null (secrets);
  g_assert_error (error, KP_VAULT_ERROR, KP_VAULT_ERROR_TIMEOUT);
  g_assert_nonnull (strstr (error->message, "did not answer"));
  g_test_message ("gave up after %" G_GINT64_FORMAT " ms (timeout 1500 ms)", elapsed_ms);
  g_assert_cmpint (elapsed_ms, <, 10000);
}

static void
test_hung_env (void)
{
  g_autoptr(KpVault) vault = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GHashTable) secrets = NULL;

  /* KEYPOOL_KEYRING_TIMEOUT_MS replaces the default of 5 s. */
  g_setenv ("KEYPOOL_KEYRING_TIMEOUT_MS", "2500", TRUE);
  vault = kp_vault_new ();
  g_unsetenv ("KEYPOOL_KEYRING_TIMEOUT_MS");
  secrets = load (vault, &error);

  g_assert_null (secrets);
  g_assert_error (error, KP_VAULT_ERROR, KP_VAULT_ERROR_TIMEOUT);
  g_assert_cmpstr (error->message, ==, "the keyring did not answer within 2 s");
}

static void
test_none (void)
{
  g_autoptr(KpVault) vault = kp_vault_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GHashTable) secrets = load (vault, &error);

  g_assert_null (secrets);
  g_assert_error (error, KP_VAULT_ERROR, KP_VAULT_ERROR_UNAVAILABLE);
  /* No session bus: the keyring's module is never loaded. */
  g_assert_false (keyring_mapped ());
  /* The reason, in words. */
  g_assert_nonnull (strstr (error->message, "no Secret Service could be reached: "));
  g_assert_cmpuint (strlen (error->message), >, strlen ("no Secret Service could be reached: ") + 5);
}

int
main (int   argc,
      char *argv[])
{
  const char *mode = g_getenv ("KEYPOOL_TEST_KEYRING");

  if (g_strcmp0 (mode, "none") == 0)
    {
      g_unsetenv ("DBUS_SESSION_BUS_ADDRESS");
      g_unsetenv ("DISPLAY");
    }

  g_test_init (&argc, &argv, NULL);

  if (g_strcmp0 (mode, "real") == 0)
    {
      g_test_add_func ("/keypool/vault/roundtrip", test_roundtrip);
      g_test_add_func ("/keypool/vault/broken-module", test_broken_module);
    }
  else if (g_strcmp0 (mode, "hung") == 0)
    {
      g_test_add_func ("/keypool/vault/hung", test_hung);
      g_test_add_func ("/keypool/vault/hung-env", test_hung_env);
    }
  else
    g_test_add_func ("/keypool/vault/none", test_none);

  return g_test_run ();
}
