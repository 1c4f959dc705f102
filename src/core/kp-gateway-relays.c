/* kp-gateway-relays.c: the requests in flight and their ledger rows
 *
 * Part of KpGateway: the server hands each relay over when it starts; when
 * it finishes, its row goes to the ledger's writer and its cost to the
 * budgets, and ::request-finished is told once the row is committed. The
 * health answer counts what is in flight.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include <json-glib/json-glib.h>

#include "kp-gateway-internal.h"

guint
kp_gateway_get_n_active (KpGateway *self)
{
  g_return_val_if_fail (KP_IS_GATEWAY (self), 0);
  return g_hash_table_size (self->relays);
}

/* "status":"ok", or "degraded" with the ledger's problem as "problem". */
static char *
health_status_json (const char *problem)
{
  g_autoptr(JsonNode) node = NULL;
  g_autofree char *quoted = NULL;

  if (problem == NULL)
    return g_strdup ("\"status\":\"ok\"");
  node = json_node_init_string (json_node_alloc (), problem);
  quoted = json_to_string (node, FALSE);
  return g_strdup_printf ("\"status\":\"degraded\",\"problem\":%s", quoted);
}

char *
kp_gateway_dup_health_json (KpGateway *self)
{
  GPtrArray *providers = kp_catalog_get_providers (self->catalog);
  g_autofree char *status =
    health_status_json (self->ledger ? kp_ledger_get_problem (self->ledger) : NULL);
  guint usable = 0;

  for (guint i = 0; i < providers->len; i++)
    if (kp_gateway_provider_is_usable (self, g_ptr_array_index (providers, i)))
      usable++;

  return g_strdup_printf ("{%s,\"version\":\"%s\",\"uptime_s\":%" G_GINT64_FORMAT
                          ",\"providers\":%u,\"usable_providers\":%u,\"models\":%u,"
                          "\"active_requests\":%u,\"keyring\":%s}",
                          status, PACKAGE_VERSION,
                          (g_get_monotonic_time () - self->started_us) / G_USEC_PER_SEC,
                          providers->len, usable,
                          kp_catalog_get_model_ids (self->catalog)->len,
                          g_hash_table_size (self->relays),
                          self->keyring_problem ? "false" : "true");
}

/**
 * kp_gateway_relay_started:
 * @client_address: (nullable): the client's IP address, for its row
 */
void
kp_gateway_relay_started (KpGateway  *self,
                          KpRelay    *relay,
                          const char *client_address)
{
  g_hash_table_insert (self->relays, g_object_ref (relay), g_strdup (client_address));
}

/* The relay's gateway is the one whose ledger wrote the row. */
static void
row_done (KpRelay *relay)
{
  KpGateway *self = kp_relay_get_gateway (relay);

  if (self != NULL && self->relays != NULL && g_hash_table_remove (self->relays, relay))
    kp_gateway_emit_request_finished (self, relay);
  kp_relay_end_answer (relay);
}

static void
on_row_written (GObject      *object,
                GAsyncResult *result,
                gpointer      user_data)
{
  g_autoptr(KpRelay) relay = user_data;
  g_autoptr(GError) error = NULL;

  /* A row that waits in memory is the ledger's problem to tell, once. */
  if (!kp_ledger_add_request_finish (KP_LEDGER (object), result, &error) &&
      !g_error_matches (error, KP_LEDGER_ERROR, KP_LEDGER_ERROR_PENDING))
    g_warning ("A request was not recorded: %s", error->message);
  row_done (relay);
}

static void
record (KpGateway *self,
        KpRelay   *relay)
{
  const KpUsage *usage = kp_relay_get_usage (relay);
  KpCredential *credential = kp_relay_get_credential (relay);
  GArray *attempts = kp_relay_get_attempts (relay);
  KpCostSource source;
  gint64 cost = 0;
  KpRequestRow row = { 0 };

  source = kp_relay_get_cost (relay, &cost);

  row.request_id = (char *)kp_relay_get_request_id (relay);
  row.time_ms = kp_relay_get_start_time (relay) / 1000;
  row.api = (char *)kp_relay_get_api (relay);
  row.model = (char *)kp_relay_get_model (relay);
  row.provider = (char *)kp_relay_get_provider_id (relay);
  row.credential_id = credential ? kp_credential_get_id (credential) : 0;
  row.upstream_model = (char *)kp_relay_get_upstream_model (relay);
  row.status = kp_relay_get_status (relay);
  row.outcome = (char *)kp_outcome_to_string (kp_relay_get_outcome (relay));
  row.error = (char *)kp_relay_get_error_message (relay);
  row.attempts = attempts->len;
  row.prompt_tokens = usage->prompt_tokens;
  row.completion_tokens = usage->completion_tokens;
  row.cached_tokens = usage->cached_tokens;
  row.cache_write_tokens = usage->cache_write_tokens;
  row.reasoning_tokens = usage->reasoning_tokens;
  row.cost_nano = cost;
  row.cost_source = (char *)kp_cost_source_to_string (source);
  row.ttfb_ms = kp_relay_get_ttfb_ms (relay);
  row.total_ms = MAX (kp_relay_get_total_ms (relay), 0);
  row.streamed = kp_relay_get_streamed (relay);
  row.client_id = kp_relay_get_client_id (relay);
  row.client_address = g_hash_table_lookup (self->relays, relay);
  row.has_credits = usage->has_credits;
  row.credits = usage->credits;
  row.tokens_estimated = usage->known && usage->estimated;

  /* Counted at once: the next request is checked against it, even while
   * the row is still on its way to the disk. */
  if (kp_relay_get_outcome (relay) == KP_OUTCOME_OK ||
      kp_relay_get_outcome (relay) == KP_OUTCOME_INTERRUPTED)
    kp_budgets_note (self->budgets, row.provider, row.client_id, source, cost);

  /* A request alone in flight, whose row can be committed on this thread
   * at once: its answer ends first, and the row is committed right after,
   * in this same call, before the main loop runs anything else. The commit
   * (about 70 µs: two inserts, four WAL frames, 14 system calls) then
   * overlaps with the client reading its answer instead of delaying it;
   * only a kill in those microseconds could lose the row. The server
   * writes the answer now, and tells the relay that its exchange is over
   * only from its own dispatch, never from inside this call. Under load the
   * answer waits for the writer thread's commit, as below.
   */
  if (g_hash_table_size (self->relays) == 1 && kp_ledger_can_add_request_now (self->ledger))
    {
      g_autoptr(KpRelay) hold = g_object_ref (relay);

      kp_relay_end_answer (hold);
      if (kp_ledger_try_add_request_now (self->ledger, &row,
                                         (const KpAttemptRow *)(gpointer)attempts->data,
                                         attempts->len))
        {
          row_done (hold);
          return;
        }
      /* Another program took the write lock meanwhile: the writer waits for it. */
    }

  kp_ledger_add_request_async (self->ledger, &row, (const KpAttemptRow *)(gpointer)attempts->data,
                               attempts->len, on_row_written, g_object_ref (relay));
}

/* The relay stays among the active ones until its row is committed, so a
 * shutdown waits for it.
 */
void
kp_gateway_relay_finished (KpGateway *self,
                           KpRelay   *relay)
{
  if (!g_hash_table_contains (self->relays, relay))
    return;

  record (self, relay);
}
