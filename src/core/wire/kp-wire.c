/* kp-wire.c: the registry of wires, the request as the relay holds it, and
 * the bridge from a provider's stream to a client's
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include <string.h>

#include "codec/kp-json-guard.h"
#include "kp-wire.h"
#include "kp-wire-anthropic-private.h"
#include "kp-wire-code-assist.h"
#include "kp-wire-gemini-private.h"
#include "kp-wire-kiro-private.h"
#include "kp-wire-openai-private.h"

G_DEFINE_QUARK (kp-wire-error-quark, kp_wire_error)

/* The registry: adding a wire is one line here. */
static const KpWire * const wires[] = {
  &kp_wire_openai_chat,
  &kp_wire_anthropic,
  &kp_wire_openai_responses,
  &kp_wire_openai_embeddings,
  &kp_wire_openai_completions,
  &kp_wire_gemini,
  &kp_wire_gemini_embed,
  &kp_wire_code_assist,
  &kp_wire_antigravity,
  &kp_wire_kiro,
  NULL,
};

const KpWire * const *
kp_wire_all (void)
{
  return wires;
}

const KpWire *
kp_wire_default (void)
{
  return &kp_wire_openai_chat;
}

/**
 * kp_wire_for_route:
 * @path: a request path
 *
 * Returns: (nullable): the wire that serves @path to clients. A path below
 *   a route (`/v1/messages/count_tokens`) belongs to its wire too, for
 *   the shape of its errors.
 */
const KpWire *
kp_wire_for_route (const char *path)
{
  const KpWire *below = NULL;

  if (path == NULL)
    return NULL;

  for (guint i = 0; wires[i] != NULL; i++)
    {
      const char * const *routes = wires[i]->client_routes;
      const char *models = wires[i]->models_route;
      gsize len;

      for (guint j = 0; routes != NULL && routes[j] != NULL; j++)
        {
          len = strlen (routes[j]);
          if (strncmp (path, routes[j], len) != 0)
            continue;
          if (path[len] == '\0')
            return wires[i];
          if (path[len] == '/')
            below = wires[i];
        }

      /* A wire whose requests are paths it matches (Gemini's embeddings,
       * below another wire's model list).
       */
      if (wires[i]->match_route != NULL && wires[i]->match_route (path) == KP_ROUTE_REQUEST)
        return wires[i];

      /* A wire whose requests go below its model list (Gemini's). */
      len = models != NULL ? strlen (models) : 0;
      if (len > 0 && strncmp (path, models, len) == 0 &&
          (path[len] == '\0' || path[len] == '/'))
        below = wires[i];
    }
  return below;
}

/* Whether @path is one of @wire's own routes, not one below it. */
gboolean
kp_wire_serves_route (const KpWire *wire,
                      const char   *path)
{
  for (guint j = 0; wire->client_routes != NULL && wire->client_routes[j] != NULL; j++)
    if (g_str_equal (wire->client_routes[j], path))
      return TRUE;
  return FALSE;
}

/**
 * kp_wire_route_kind:
 * @wire: the wire kp_wire_for_route() found for @path
 *
 * Returns: what @path is to @wire: one of its routes, its token counter,
 *   its model list, a path its match_route() takes, or none of these
 */
KpRouteKind
kp_wire_route_kind (const KpWire *wire,
                    const char   *path)
{
  if (wire == NULL || path == NULL)
    return KP_ROUTE_NONE;
  if (kp_wire_serves_route (wire, path))
    return KP_ROUTE_REQUEST;
  if (wire->count_route != NULL && g_str_equal (wire->count_route, path))
    return KP_ROUTE_COUNT;
  if (wire->models_route != NULL && g_str_equal (wire->models_route, path))
    return KP_ROUTE_MODELS;
  if (wire->match_route != NULL)
    return wire->match_route (path);
  return KP_ROUTE_NONE;
}

/* Whether @path is one of a wire's, or below one: it needs the token. */
gboolean
kp_wire_is_client_path (const char *path)
{
  return kp_wire_for_route (path) != NULL;
}

const KpWire *
kp_wire_for_id (const char *id)
{
  for (guint i = 0; id != NULL && wires[i] != NULL; i++)
    if (g_str_equal (wires[i]->id, id))
      return wires[i];
  return NULL;
}

/**
 * kp_wire_error_code:
 *
 * Returns: the code a client gets with a request refused for @error
 */
const char *
kp_wire_error_code (const GError *error)
{
  if (error == NULL || error->domain != KP_WIRE_ERROR)
    return "invalid_request";

  switch ((KpWireError)error->code)
    {
    case KP_WIRE_ERROR_INVALID_JSON:
      return "invalid_json";
    case KP_WIRE_ERROR_MISSING_MODEL:
      return "missing_model";
    case KP_WIRE_ERROR_MISSING_MESSAGES:
      return "missing_messages";
    case KP_WIRE_ERROR_MISSING_INPUT:
      return "missing_input";
    case KP_WIRE_ERROR_INVALID_STREAM:
      return "invalid_stream";
    case KP_WIRE_ERROR_INVALID_MAX_TOKENS:
      return "invalid_max_tokens";
    case KP_WIRE_ERROR_INVALID_PROVIDER:
      return "invalid_provider";
    case KP_WIRE_ERROR_NEEDS_STATE:
      return "previous_response_not_found";
    case KP_WIRE_ERROR_UNSUPPORTED:
      return "unsupported_request";
    case KP_WIRE_ERROR_ANSWER:
      return "upstream_invalid_answer";
    case KP_WIRE_ERROR_INVALID:
    default:
      return "invalid_request";
    }
}

GBytes *
kp_wire_serialize (JsonNode *node)
{
  gsize len = 0;
  char *json = kp_json_to_string (node, &len);

  return g_bytes_new_take (json, len);
}

/* What a wire left in a target for the caller: the URI it picked. */
void
kp_wire_target_clear (KpWireTarget *target)
{
  g_clear_pointer (&target->uri, g_uri_unref);
}

const char *
kp_finish_to_string (KpFinish finish)
{
  switch (finish)
    {
    case KP_FINISH_LENGTH:
      return "length";
    case KP_FINISH_TOOL_CALLS:
      return "tool_calls";
    case KP_FINISH_CONTENT_FILTER:
      return "content_filter";
    case KP_FINISH_STOP:
    case KP_FINISH_NONE:
    default:
      return "stop";
    }
}

KpFinish
kp_finish_from_string (const char *reason)
{
  if (reason == NULL)
    return KP_FINISH_NONE;
  if (g_str_equal (reason, "length"))
    return KP_FINISH_LENGTH;
  if (g_str_equal (reason, "tool_calls") || g_str_equal (reason, "function_call"))
    return KP_FINISH_TOOL_CALLS;
  if (g_str_equal (reason, "content_filter"))
    return KP_FINISH_CONTENT_FILTER;
  return KP_FINISH_STOP;
}

/**
 * kp_wire_error_message:
 * @body: (nullable): an error body in any wire
 * @code: (out) (optional): its numeric code, when it has one
 * @type: (out) (optional) (transfer full): its type, when it has one
 *
 * Reads {"error":{"message":..}}, {"error":"text"} or {"message":..};
 * OpenRouter's among them. A body that is none of these is its own message.
 *
 * Returns: (transfer full) (nullable): the message
 */
char *
kp_wire_error_message (const char  *body,
                       gsize        len,
                       gint64      *code,
                       char       **type)
{
  g_autoptr(JsonObject) root = body != NULL && len > 0 ? kp_json_parse_object (body, len) : NULL;
  JsonNode *error = kp_json_member (root, "error");
  const char *message = NULL;

  if (type != NULL)
    *type = NULL;
  if (error != NULL && JSON_NODE_HOLDS_OBJECT (error))
    {
      message = kp_json_string (json_node_get_object (error), "message");
      if (code != NULL)
        kp_json_int (json_node_get_object (error), "code", code);
      if (type != NULL)
        *type = g_strdup (kp_json_string (json_node_get_object (error), "type"));
    }
  else if (kp_json_node_string (error) != NULL)
    message = kp_json_node_string (error);
  else
    message = kp_json_string (root, "message");

  if (message != NULL)
    return g_strdup (message);
  if (root == NULL && body != NULL && len > 0 && g_utf8_validate (body, len, NULL))
    return g_strstrip (g_strndup (body, len));
  return NULL;
}

/* Requests ----------------------------------------------------------------- */

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
  g_autoptr(JsonParser) parser = json_parser_new ();
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
  if (!kp_json_parser_load_from_data (parser, data, len, &json_error))
    {
      g_set_error (error, KP_WIRE_ERROR, KP_WIRE_ERROR_INVALID_JSON,
                   "The request body is not valid JSON: %s", json_error->message);
      return FALSE;
    }
  node = json_parser_get_root (parser);
  if (node == NULL || !JSON_NODE_HOLDS_OBJECT (node))
    {
      g_set_error_literal (error, KP_WIRE_ERROR, KP_WIRE_ERROR_INVALID_JSON,
                           "The request body must be a JSON object with “model”.");
      return FALSE;
    }
  req->root = json_node_ref (node);
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
  g_autoptr(JsonParser) parser = json_parser_new_immutable ();
  g_autoptr(JsonNode) canonical = NULL;
  g_autoptr(JsonNode) answer = NULL;
  JsonNode *root;

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

  if (!kp_json_parser_load_from_data (parser, data, len, error))
    return NULL;
  root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
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

/* Streams ------------------------------------------------------------------ */

struct _KpWireBridge
{
  const KpWire  *upstream;
  const KpWire  *client;
  KpWireDecoder  decoder;
  KpWireEncoder  encoder;   /* NULL for a passthrough */
  GString       *out;       /* during a feed */
  KpStreamStatus status;
  gboolean       has_content;
  gboolean       has_finish;
  gboolean       ended;
  gboolean       encoded_end;
  gboolean       as_array;  /* the client's stream is a JSON array */
  const char    *error;     /* during a feed */
  KpUsage        usage;
};

/**
 * kp_wire_bridge_new:
 * @upstream: the provider's wire
 * @client: the client's wire; the same as @upstream for a passthrough
 * @req: (nullable): the client's request
 * @target: (nullable): the route
 */
KpWireBridge *
kp_wire_bridge_new (const KpWire        *upstream,
                    const KpWire        *client,
                    const KpWireRequest *req,
                    const KpWireTarget  *target)
{
  KpWireBridge *self = g_new0 (KpWireBridge, 1);
  gboolean as_array = req != NULL && req->stream_as_array;
  gboolean passthrough = upstream == client && !as_array;

  self->as_array = as_array;
  self->upstream = upstream;
  self->client = client;
  self->decoder = upstream->decoder_new (req, target, passthrough);
  if (!passthrough)
    self->encoder = client->encoder->create (req);
  return self;
}

void
kp_wire_bridge_free (KpWireBridge *self)
{
  if (self == NULL)
    return;
  self->upstream->decoder_free (self->decoder);
  if (self->encoder != NULL)
    self->client->encoder->destroy (self->encoder);
  g_free (self);
}

/* The one place that tells events apart: each goes to its encoder method. */
static void
encode (KpWireBridge  *self,
        const KpEvent *event)
{
  const KpWireEncoderClass *encoder = self->client->encoder;

  switch (event->type)
    {
    case KP_EVENT_START:
      encoder->start (self->encoder, event->id, self->out);
      break;
    case KP_EVENT_TEXT:
      if (kp_json_nonempty (event->text))
        encoder->text (self->encoder, event->text, self->out);
      break;
    case KP_EVENT_REASONING:
      if (kp_json_nonempty (event->text))
        encoder->reasoning (self->encoder, event->text, self->out);
      break;
    case KP_EVENT_TOOL_CALL:
      encoder->tool_call (self->encoder, event, self->out);
      break;
    case KP_EVENT_TOOL_ARGS:
      if (kp_json_nonempty (event->text))
        encoder->tool_args (self->encoder, event->index, event->text, self->out);
      break;
    case KP_EVENT_USAGE:
      encoder->usage (self->encoder, event->usage);
      break;
    case KP_EVENT_FINISH:
      encoder->finish (self->encoder, event->finish, self->out);
      break;
    case KP_EVENT_END:
      encoder->end (self->encoder, self->out);
      break;
    case KP_EVENT_ERROR:
    case KP_EVENT_KEEPALIVE:
    default:
      break;
    }
}

static void
on_event (const KpEvent *event,
          gpointer       user_data)
{
  KpWireBridge *self = user_data;

  switch (event->type)
    {
    case KP_EVENT_ERROR:
      self->status = KP_STREAM_ERROR;
      self->error = event->text;
      return;
    case KP_EVENT_TEXT:
    case KP_EVENT_REASONING:
    case KP_EVENT_TOOL_ARGS:
      if (event->light || kp_json_nonempty (event->text))
        self->has_content = TRUE;
      break;
    case KP_EVENT_TOOL_CALL:
      self->has_content = TRUE;
      break;
    case KP_EVENT_USAGE:
      self->usage = *event->usage;
      break;
    case KP_EVENT_FINISH:
      self->has_finish = TRUE;
      break;
    case KP_EVENT_END:
      if (self->status != KP_STREAM_ERROR)
        self->status = KP_STREAM_END;
      self->ended = TRUE;
      break;
    case KP_EVENT_KEEPALIVE:
      if (self->status == KP_STREAM_CONTINUE)
        self->status = KP_STREAM_KEEPALIVE;
      return;
    case KP_EVENT_START:
    default:
      break;
    }

  if (self->encoder != NULL && self->status != KP_STREAM_ERROR && !self->encoded_end)
    {
      encode (self, event);
      self->encoded_end = event->type == KP_EVENT_END;
    }
}

/**
 * kp_wire_bridge_feed:
 * @self: a bridge
 * @event_name: (nullable): the upstream event's name (not NUL-terminated)
 * @name_len: its length
 * @data: the event's data, NUL-terminated
 * @len: its length
 * @out: where the client's text is appended (not for a passthrough)
 * @forward_raw: (out): for a passthrough, whether the event's own bytes go
 *   to the client
 *
 * Returns: what the event meant for the stream. After an error, the event's
 *   data is kp_wire_bridge_get_error() until the next feed.
 */
KpStreamStatus
kp_wire_bridge_feed (KpWireBridge *self,
                     const char   *event_name,
                     gsize         name_len,
                     const char   *data,
                     gsize         len,
                     GString      *out,
                     gboolean     *forward_raw)
{
  KpDecodeResult result;

  g_return_val_if_fail (self != NULL, KP_STREAM_ERROR);
  g_return_val_if_fail (data != NULL, KP_STREAM_ERROR);

  *forward_raw = FALSE;
  if (self->ended)
    return KP_STREAM_END;

  self->out = out;
  self->status = KP_STREAM_CONTINUE;
  self->error = NULL;
  result = self->upstream->decode (self->decoder, event_name, name_len, data, len,
                                   on_event, self);
  self->out = NULL;

  *forward_raw = self->encoder == NULL && result == KP_DECODE_FORWARD &&
                 self->status != KP_STREAM_ERROR;
  return self->status;
}

/**
 * kp_wire_bridge_finish:
 * @out: where the client's end is appended
 *
 * For an upstream that closed without its last event. An answer whose
 * finish reason came is complete: the client gets the end it expects. One
 * cut before that gets nothing here; the relay reports the cut.
 *
 * Returns: %TRUE if the stream ended well (or had already ended)
 */
gboolean
kp_wire_bridge_finish (KpWireBridge *self,
                       GString      *out)
{
  KpEvent end = { .type = KP_EVENT_END };

  g_return_val_if_fail (self != NULL, FALSE);

  if (self->ended)
    return TRUE;
  /* A wire whose streams end with the connection ends its answer here. */
  if (self->upstream->decode_end != NULL)
    {
      self->out = out;
      self->status = KP_STREAM_CONTINUE;
      self->error = NULL;
      self->upstream->decode_end (self->decoder, on_event, self);
      self->out = NULL;
      if (self->ended)
        return TRUE;
    }
  if (!self->has_finish)
    return FALSE;
  if (self->encoder != NULL && !self->encoded_end)
    {
      self->out = out;
      encode (self, &end);
      self->out = NULL;
      self->encoded_end = TRUE;
    }
  self->ended = TRUE;
  return TRUE;
}

/* A comment in the client's stream, so that a long silence mid-answer does
 * not look like a dead connection to it.
 */
void
kp_wire_bridge_keepalive (KpWireBridge *self,
                          GString      *out)
{
  /* Between the elements of a JSON array, white space is all there is. */
  if (self->as_array)
    g_string_append (out, "\n");
  else
    g_string_append (out, self->client->keepalive ?: ": keep-alive\n\n");
}

gboolean
kp_wire_bridge_is_passthrough (KpWireBridge *self)
{
  return self->encoder == NULL;
}

gboolean
kp_wire_bridge_has_content (KpWireBridge *self)
{
  return self->has_content;
}

gboolean
kp_wire_bridge_has_finish (KpWireBridge *self)
{
  return self->has_finish;
}

const char *
kp_wire_bridge_get_error (KpWireBridge *self)
{
  return self->error;
}

const KpUsage *
kp_wire_bridge_get_usage (KpWireBridge *self)
{
  return &self->usage;
}
