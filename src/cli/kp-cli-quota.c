/* kp-cli-quota.c: what is left of each account, for `keypool providers`
 *
 * A subscription account's quota or credits is a text its reader left in
 * the credential ("62 % of today's quota left, resets 09:00"); the command
 * line shows it as it is, whatever the provider.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include "kp-cli-private.h"

/**
 * kp_cli_print_quotas:
 * @provider: a provider
 *
 * Prints one line for each of @provider's accounts whose quota is known.
 */
void
kp_cli_print_quotas (GApplicationCommandLine *cmdline,
                     KpGateway               *gateway,
                     KpProvider              *provider)
{
  GPtrArray *credentials = kp_gateway_get_credentials (gateway);
  const char *provider_id = kp_provider_get_id (provider);

  for (guint i = 0; i < credentials->len; i++)
    {
      KpCredential *credential = g_ptr_array_index (credentials, i);
      const char *quota = kp_credential_get_meta (credential, "quota");
      const char *label = kp_credential_get_label (credential);

      if (quota == NULL || *quota == '\0' ||
          g_strcmp0 (kp_credential_get_provider_id (credential), provider_id) != 0)
        continue;
      g_application_command_line_print (cmdline, "     key %" G_GINT64_FORMAT "%s%s%s: %.200s\n",
                                        kp_credential_get_id (credential),
                                        label && *label ? " (" : "", label ? label : "",
                                        label && *label ? ")" : "", quota);
    }
}
