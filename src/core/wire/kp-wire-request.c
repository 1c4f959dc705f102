/* kp-wire-request.c: the request as the relay holds it: parsed once, made
 * canonical once, built for a provider's wire; whole answers and errors
 * translated for the client
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include <string.h>

#include "codec/kp-json-guard.h"
#include "kp-wire.h"
#include "kp-wire-json.h"

/**
 * kp_wire_request_new:
 * @wire: the client's wire
 * @body: the client's body
 * @headers: (nullable): the client's request headers
 */
KpWireRequest *
kp_wire_request_new (const KpWire       *wire,
                     GBytes             *body,
                     SoupMessageHeaders *headers)
{
  KpWireRequest *req = g_new0 (KpWireRequest, 1);

  g_return_val_if_fail (wire != NULL, NULL);
  g_return_val_if_fail (body != NULL, NULL);

  req->wire = wire;
  req->body = g_bytes_ref (body);
  req->headers = headers != NULL ? soup_message_headers_ref (headers) : NULL;
  return req;
}

void
kp_wire_request_free (KpWireRequest *req)
{
  if (req == NULL)
    return;
  g_clear_pointer (&req->body, g_bytes_unref);
  g_clear_pointer (&req->root, json_node_unref);
  g_clear_pointer (&req->canonical, json_node_unref);
  g_clear_pointer (&req->headers, soup_message_headers_unref);
  g_clear_pointer (&req->providers, g_strfreev);
  g_clear_pointer (&req->query, g_hash_table_unref);
  g_free (req->path);
  g_free (req->model);
  g_free (req);
}

/**
 * kp_wire_request_set_path:
 * @path: the path the client asked for
 * @query: (nullable): its query, as libsoup decoded it
 *
 * For the wires whose path says part of the request (see
 * KpWire.parse_route); call before parsing.
 */
void
kp_wire_request_set_path (KpWireRequest *req,
                          const char    *path,
                          GHashTable    *query)
{
  g_return_if_fail (req != NULL);

  g_free (req->path);
  req->path = g_strdup (path);
  g_clear_pointer (&req->query, g_hash_table_unref);
  req->query = query != NULL ? g_hash_table_ref (query) : NULL;
}

/* "provider": one id or a list; Keypool's, so it never goes upstream. */
static gboolean
take_providers (KpWireRequest  *req,
                JsonObject     *request,
                GError        **error)
{
  JsonNode *node = json_object_get_member (request, "provider");
  g_autoptr(GStrvBuilder) providers = NULL;
  gboolean ok = TRUE;

  if (node == NULL)
    return TRUE;

  providers = g_strv_builder_new ();
  if (kp_json_node_string (node) != NULL)
    g_strv_builder_add (providers, kp_json_node_string (node));
  else if (JSON_NODE_HOLDS_ARRAY (node))
    {
      JsonArray *array = json_node_get_array (node);

      for (guint i = 0; i < json_array_get_length (array) && ok; i++)
        {
          const char *id = kp_json_node_string (json_array_get_element (array, i));

          ok = id != NULL;
          if (ok)
            g_strv_builder_add (providers, id);
        }
    }
  else
    ok = FALSE;

  if (!ok)
    {
      g_set_error_literal (error, KP_WIRE_ERROR, KP_WIRE_ERROR_INVALID_PROVIDER,
                           "“provider” must be a provider id or a list of them, e.g. \"deepseek\".");
      return FALSE;
    }
  req->providers = g_strv_builder_end (providers);
  json_object_remove_member (request, "provider");
  req->changed = TRUE;
  return TRUE;
}

/**
 * kp_wire_request_parse_common:
 *
 * Parses the body once and reads what every wire has: the model, stream,
 * Keypool's "provider". On failure @error says what the client should
 * change; kp_wire_error_code() names its code.
 */
gboolean
kp_wire_request_parse_common (KpWireRequest  *req,
                              GError        **error)
{
  g_autoptr(GError) json_error = NULL;
  JsonObject *request;
  JsonNode *node;
  gconstpointer data;
  gsize len;

  g_return_val_if_fail (req != NULL, FALSE);

  data = g_bytes_get_data (req->body, &len);
  if (len == 0)
    {
      g_set_error_literal (error, KP_WIRE_ERROR, KP_WIRE_ERROR_INVALID_JSON,
                           "The request body is empty; send a JSON object with “model” and "
                           "the rest of the request.");
      return FALSE;
    }
  /* The request path's own reader: a seventh of a request's cost went to
   * json-glib's set-up (kp-json-read.c).
   */
  node = kp_json_read (data, len, KP_JSON_READ_NONE, &json_error);
  if (node == NULL)
    {
      g_set_error (error, KP_WIRE_ERROR, KP_WIRE_ERROR_INVALID_JSON,
                   "The request body is not valid JSON: %s", json_error->message);
      return FALSE;
    }
  if (!JSON_NODE_HOLDS_OBJECT (node))
    {
      json_node_unref (node);
      g_set_error_literal (error, KP_WIRE_ERROR, KP_WIRE_ERROR_INVALID_JSON,
                           "The request body must be a JSON object with “model”.");
      return FALSE;
    }
  req->root = node;
  request = json_node_get_object (node);

  /* A wire whose path names the model (Gemini's) says so first. */
  if (req->wire->parse_route != NULL && !req->wire->parse_route (req, error))
    return FALSE;

  node = json_object_get_member (request, "model");
  if (req->model == NULL)
    {
      if (kp_json_node_string (node) == NULL || *kp_json_node_string (node) == '\0')
        {
          g_set_error_literal (error, KP_WIRE_ERROR, KP_WIRE_ERROR_MISSING_MODEL,
                               "The request has no “model”: name the model to use, e.g. "
                               "“deepseek/deepseek-chat”. GET /v1/models lists them.");
          return FALSE;
        }
      req->model = g_strdup (kp_json_node_string (node));
    }

  node = json_object_get_member (request, "stream");
  if (node != NULL && JSON_NODE_HOLDS_VALUE (node) &&
      json_node_get_value_type (node) == G_TYPE_BOOLEAN)
    req->stream = json_node_get_boolean (node);
  else if (node != NULL && !JSON_NODE_HOLDS_NULL (node))
    {
      g_set_error_literal (error, KP_WIRE_ERROR, KP_WIRE_ERROR_INVALID_STREAM,
                           "“stream” must be true or false.");
      return FALSE;
    }

  if (!take_providers (req, request, error))
    return FALSE;

  /* About four bytes of JSON per token: rough, and the same for every route. */
  req->prompt_tokens = MAX ((gint64)len / 4, 1);
  return TRUE;
}

/**
 * kp_wire_request_parse:
 *
 * What kp_wire_request_parse_common() reads, then what the client's wire
 * checks.
 */
gboolean
kp_wire_request_parse (KpWireRequest  *req,
                       GError        **error)
{
  if (!kp_wire_request_parse_common (req, error))
    return FALSE;
  req->output_tokens = 0;
  if (!req->wire->parse_request (req, error))
    return FALSE;
  if (req->output_tokens <= 0)
    req->output_tokens = 1000;
  return TRUE;
}

/**
 * kp_wire_request_get_canonical:
 *
 * Returns: (transfer none) (nullable): the request as the hub's Chat JSON,
 *   made once; %NULL with @error set when it cannot be
 */
JsonObject *
kp_wire_request_get_canonical (KpWireRequest  *req,
                               GError        **error)
{
  g_return_val_if_fail (req != NULL && req->root != NULL, NULL);

  if (req->canonical == NULL)
    {
      if (req->wire->to_canonical == NULL)
        {
          g_set_error (error, KP_WIRE_ERROR, KP_WIRE_ERROR_UNSUPPORTED,
                       "Requests to %s cannot be translated for another API.", req->wire->id);
          return NULL;
        }
      req->canonical = req->wire->to_canonical (json_node_get_object (req->root), error);
      if (req->canonical == NULL)
        return NULL;
      /* A wire whose path says the model and stream (Gemini's) has neither
       * in its body.
       */
      if (!json_object_has_member (json_node_get_object (req->canonical), "model"))
        json_object_set_string_member (json_node_get_object (req->canonical), "model", req->model);
      if (req->stream && !json_object_has_member (json_node_get_object (req->canonical), "stream"))
        json_object_set_boolean_member (json_node_get_object (req->canonical), "stream", TRUE);
    }
  return json_node_get_object (req->canonical);
}

/**
 * kp_wire_upstream_for:
 * @client: the client's wire
 * @provider: a provider
 *
 * Returns: (nullable): the wire to speak to @provider for a request in
 *   @client's: @client's own when the provider serves it, its chat wire for
 *   a chat request otherwise, %NULL when it cannot serve the request
 */
/* An embeddings API of @provider's that takes the hub's request (OpenAI's
 * embeddings, which @client's translates to) and gives back the hub's answer.
 */
static const KpWire *
embeddings_for (const KpWire *client,
                KpProvider   *provider)
{
  const KpWire * const *all = kp_wire_all ();

  if (client->to_canonical == NULL || client->response_from_canonical == NULL)
    return NULL;
  for (guint i = 0; all[i] != NULL; i++)
    if (all[i]->kind == KP_WIRE_KIND_EMBEDDINGS && all[i]->response_to_canonical != NULL &&
        kp_provider_serves (provider, all[i]->id))
      return all[i];
  return NULL;
}

const KpWire *
kp_wire_upstream_for (const KpWire *client,
                      KpProvider   *provider)
{
  const KpWire *chat;

  if (kp_provider_serves (provider, client->id))
    return client;
  if (client->kind == KP_WIRE_KIND_EMBEDDINGS)
    return embeddings_for (client, provider);
  if (client->kind != KP_WIRE_KIND_CHAT)
    return NULL;
  chat = kp_wire_for_id (kp_provider_get_wire (provider));
  return chat != NULL && (chat->response_to_canonical != NULL ||
                          chat->answer_to_canonical != NULL) ? chat : NULL;
}

/**
 * kp_wire_route_for:
 * @client: the client's wire
 * @offering: a model as a provider serves it
 *
 * Returns: (nullable): the wire to speak to the provider for this request,
 *   or %NULL when the offering cannot serve it (an embedding model for a
 *   chat, a provider without the client's API for embeddings, …)
 */
const KpWire *
kp_wire_route_for (const KpWire     *client,
                   const KpOffering *offering)
{
  KpModelKind needs = client->kind == KP_WIRE_KIND_EMBEDDINGS ? KP_MODEL_EMBEDDING : KP_MODEL_CHAT;

  if (offering->kind != needs)
    return NULL;
  return kp_wire_upstream_for (client, offering->provider);
}

/**
 * kp_wire_rebase_url:
 * @url: a provider's API URL
 * @provider_base: (nullable): the provider's base URL, which @url starts with
 * @account_base: where the account's API is instead (https only)
 *
 * Returns: (transfer full) (nullable): @url under @account_base, or %NULL
 *   when @url is not under @provider_base or @account_base is not https
 */
char *
kp_wire_rebase_url (const char *url,
                    const char *provider_base,
                    const char *account_base)
{
  g_autofree char *trimmed = NULL;
  gsize len;

  if (provider_base == NULL || account_base == NULL ||
      !g_str_has_prefix (account_base, "https://") || strchr (account_base, '?') != NULL)
    return NULL;
  trimmed = g_strdup (provider_base);
  len = strlen (trimmed);
  while (len > 0 && trimmed[len - 1] == '/')
    trimmed[--len] = '\0';
  if (len == 0 || !g_str_has_prefix (url, trimmed) ||
      (url[len] != '\0' && url[len] != '/'))
    return NULL;
  return g_strconcat (account_base, url + len, NULL);
}

/**
 * kp_wire_upstream_uri:
 * @req: the client's request
 * @upstream: the provider's wire
 * @target: the route
 *
 * Returns: (transfer full) (nullable): where to send the request: the
 *   provider's API for @upstream, and what the wire adds for this request
 */
char *
kp_wire_upstream_uri (const KpWireRequest *req,
                      const KpWire        *upstream,
                      const KpWireTarget  *target)
{
  /* The wire may have picked it (Kiro's region). */
  GUri *api = target->uri != NULL ? target->uri
                                  : kp_provider_get_api_uri (target->provider, upstream->id);
  const char *account_base = target->uri == NULL ? kp_json_string (target->account, "baseUrl")
                                                 : NULL;
  g_autofree char *base = NULL;
  g_autofree char *suffix = NULL;

  if (api == NULL)
    return NULL;
  base = g_uri_to_string (api);
  /* The account's own API (Qwen's resource_url) in place of the provider's base URL. */
  if (account_base != NULL)
    {
      g_autofree char *moved = kp_wire_rebase_url (base, kp_provider_get_base_url (target->provider),
                                                   account_base);

      if (moved != NULL)
        {
          g_free (base);
          base = g_steal_pointer (&moved);
        }
    }
  if (upstream->upstream_suffix == NULL)
    return g_steal_pointer (&base);
  suffix = upstream->upstream_suffix (req, target);
  return g_strconcat (base, suffix, NULL);
}

/**
 * kp_wire_build_upstream:
 * @req: the client's request
 * @upstream: the provider's wire
 * @target: the route; its @strip_usage is set here
 *
 * Returns: (transfer full) (nullable): the body for the provider, or %NULL
 *   with @error set when its wire cannot express the request
 */
GBytes *
kp_wire_build_upstream (KpWireRequest  *req,
                        const KpWire   *upstream,
                        KpWireTarget   *target,
                        GError        **error)
{
  JsonObject *canonical;

  g_return_val_if_fail (req != NULL && upstream != NULL && target != NULL, NULL);

  target->strip_usage = FALSE;
  if (upstream == req->wire)
    return upstream->build_body (req, json_node_get_object (req->root), TRUE, target, error);

  canonical = kp_wire_request_get_canonical (req, error);
  if (canonical == NULL)
    return NULL;
  return upstream->build_body (req, canonical, FALSE, target, error);
}

/* Whole answers and errors ------------------------------------------------ */

/**
 * kp_wire_translate_answer:
 *
 * A provider's whole answer in the client's wire.
 *
 * Returns: (transfer full) (nullable): the client's body, or %NULL with
 *   @error set when the answer cannot be read
 */
GBytes *
kp_wire_translate_answer (KpWireRequest  *req,
                          const KpWire   *upstream,
                          const char     *data,
                          gsize           len,
                          KpUsage        *usage,
                          GError        **error)
{
  g_autoptr(JsonNode) canonical = NULL;
  g_autoptr(JsonNode) answer = NULL;
  g_autoptr(JsonNode) root = NULL;

  /* An answer that is no JSON: its wire reads it whole, usage and all. */
  if (upstream->answer_to_canonical != NULL)
    {
      KpUsage ignored = { 0 };

      if (req->wire->response_from_canonical == NULL)
        {
          g_set_error (error, KP_WIRE_ERROR, KP_WIRE_ERROR_ANSWER,
                       "an answer in %s cannot be given to a client of %s",
                       upstream->id, req->wire->id);
          return NULL;
        }
      canonical = upstream->answer_to_canonical (data, len, req->model,
                                                 usage != NULL ? usage : &ignored, error);
      if (canonical == NULL)
        return NULL;
      answer = req->wire->response_from_canonical (json_node_get_object (canonical), req, error);
      return answer != NULL ? kp_wire_serialize (answer) : NULL;
    }

  root = kp_json_read (data, len, KP_JSON_READ_SEAL, error);
  if (root == NULL)
    return NULL;
  if (!JSON_NODE_HOLDS_OBJECT (root))
    {
      g_set_error_literal (error, KP_WIRE_ERROR, KP_WIRE_ERROR_ANSWER,
                           "the answer is not a JSON object");
      return NULL;
    }
  if (upstream->response_to_canonical == NULL || req->wire->response_from_canonical == NULL)
    {
      g_set_error (error, KP_WIRE_ERROR, KP_WIRE_ERROR_ANSWER,
                   "an answer in %s cannot be given to a client of %s",
                   upstream->id, req->wire->id);
      return NULL;
    }
  canonical = upstream->response_to_canonical (json_node_get_object (root), req->model, error);
  if (canonical == NULL)
    return NULL;
  answer = req->wire->response_from_canonical (json_node_get_object (canonical), req, error);
  if (answer == NULL)
    return NULL;
  /* Embeddings whose provider counts no tokens (Google's): the client's
   * answer says Keypool's estimate of the input, and so does the ledger.
   */
  if (usage != NULL && !usage->known && req->wire->kind == KP_WIRE_KIND_EMBEDDINGS)
    {
      usage->known = TRUE;
      usage->estimated = TRUE;
      usage->prompt_tokens = req->prompt_tokens;
    }
  return kp_wire_serialize (answer);
}

/**
 * kp_wire_translate_error:
 *
 * Returns: (transfer full): a provider's error body in @client's shape
 */
char *
kp_wire_translate_error (const KpWire *client,
                         guint         status,
                         const char   *data,
                         gsize         len)
{
  return client->error_from_upstream (status, data, len);
}

/**
 * kp_wire_error_event:
 * @req: (nullable): the client's request
 *
 * The error that ends a stream already under way, in the client's wire and
 * framing: an event, or the last element of a JSON array stream.
 */
void
kp_wire_error_event (const KpWireRequest *req,
                     guint                status,
                     const char          *code,
                     const char          *message,
                     GString             *out)
{
  g_autofree char *json = NULL;

  if (req == NULL || !req->stream_as_array)
    {
      req != NULL ? req->wire->error_event (status, code, message, out)
                  : kp_wire_default ()->error_event (status, code, message, out);
      return;
    }
  json = req->wire->error_json (status, code, message);
  g_string_append (out, ",\r\n");
  g_string_append (out, json);
  g_string_append (out, "]");
}
