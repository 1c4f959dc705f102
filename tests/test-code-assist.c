/* test-code-assist.c: the Code Assist wire and what its errors mean for an account
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include "config.h"

#include <string.h>

#include "kp-key-health.h"
#include "kp-upstream-error.h"
#include "wire/kp-wire.h"

static KpProvider *
provider_for (const char *dialect)
{
  g_autofree char *json = g_strdup_printf (
    "{\"id\":\"ca\",\"name\":\"CA\",\"dialect\":\"%s\","
    "\"base_url\":\"https://cloudcode-pa.googleapis.com/v1internal\","
    "\"models\":[{\"id\":\"google/gemini-2.5-pro\",\"upstream_id\":\"gemini-2.5-pro\","
    "\"input\":0,\"output\":0}]}", dialect);
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) root = json_from_string (json, &error);
  KpProvider *provider;

  g_assert_no_error (error);
  provider = kp_provider_new_from_json (root, "test.json", &error);
  g_assert_no_error (error);
  return provider;
}

static JsonObject *
build (const char *dialect,
       const char *project,
       gboolean    stream,
       char      **uri)
{
  static const char chat[] =
    "{\"model\":\"gemini-2.5-pro\",\"stream\":%s,\"max_tokens\":50,"
    "\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},"
    "{\"role\":\"user\",\"content\":\"Hi\"}]}";
  g_autofree char *json = g_strdup_printf (chat, stream ? "true" : "false");
  g_autoptr(GBytes) body = g_bytes_new (json, strlen (json));
  g_autoptr(KpWireRequest) req = kp_wire_request_new (kp_wire_for_id ("openai-chat"), body, NULL);
  g_autoptr(KpProvider) provider = provider_for (dialect);
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) built = NULL;
  g_autoptr(JsonNode) root = NULL;
  const KpWire *wire = kp_wire_for_id (dialect);
  KpWireTarget target = {
    .provider = provider, .offering = kp_provider_get_offering (provider, 0), .project = project,
  };

  g_assert_nonnull (wire);
  g_assert_true (kp_wire_request_parse (req, &error));
  g_assert_true (kp_wire_route_for (req->wire, target.offering) == wire);
  built = kp_wire_build_upstream (req, wire, &target, &error);
  g_assert_no_error (error);
  *uri = kp_wire_upstream_uri (req, wire, &target);
  root = json_from_string (g_bytes_get_data (built, NULL), &error);
  g_assert_no_error (error);
  return json_object_ref (json_node_get_object (root));
}

static void
test_envelope (void)
{
  g_autofree char *uri = NULL;
  g_autoptr(JsonObject) envelope = build ("code-assist", "proj-9", FALSE, &uri);
  JsonObject *request = json_object_get_object_member (envelope, "request");
  JsonObject *config;
  JsonArray *contents;

  g_assert_cmpstr (uri, ==, "https://cloudcode-pa.googleapis.com/v1internal:generateContent");
  g_assert_cmpstr (json_object_get_string_member (envelope, "model"), ==, "gemini-2.5-pro");
  g_assert_cmpstr (json_object_get_string_member (envelope, "project"), ==, "proj-9");
  g_assert_true (g_uuid_string_is_valid (json_object_get_string_member (envelope,
                                                                        "user_prompt_id")));
  g_assert_false (json_object_has_member (envelope, "userAgent"));
  g_assert_false (json_object_has_member (envelope, "requestType"));
  g_assert_cmpuint (json_object_get_size (envelope), ==, 4);

  g_assert_true (g_uuid_string_is_valid (json_object_get_string_member (request, "session_id")));
  g_assert_false (json_object_has_member (request, "model"));
  contents = json_object_get_array_member (request, "contents");
  g_assert_cmpuint (json_array_get_length (contents), ==, 1);
  g_assert_cmpstr (json_object_get_string_member (json_array_get_object_element (contents, 0),
                                                  "role"), ==, "user");
  g_assert_true (json_object_has_member (request, "systemInstruction"));
  config = json_object_get_object_member (request, "generationConfig");
  g_assert_cmpint (json_object_get_int_member (config, "maxOutputTokens"), ==, 50);
}

/* The free tier: no project in the envelope. A stream's method is SSE. */
static void
test_envelope_free_stream (void)
{
  g_autofree char *uri = NULL;
  g_autoptr(JsonObject) envelope = build ("code-assist", NULL, TRUE, &uri);

  g_assert_cmpstr (uri, ==,
                   "https://cloudcode-pa.googleapis.com/v1internal:streamGenerateContent?alt=sse");
  g_assert_false (json_object_has_member (envelope, "project"));
}

static void
test_envelope_antigravity (void)
{
  g_autofree char *uri = NULL;
  g_autoptr(JsonObject) envelope = build ("antigravity", "proj-a", FALSE, &uri);
  JsonObject *request = json_object_get_object_member (envelope, "request");

  g_assert_cmpstr (json_object_get_string_member (envelope, "userAgent"), ==, "antigravity");
  g_assert_cmpstr (json_object_get_string_member (envelope, "requestType"), ==, "agent");
  g_assert_true (g_str_has_prefix (json_object_get_string_member (envelope, "requestId"),
                                   "agent-"));
  g_assert_cmpstr (json_object_get_string_member (envelope, "project"), ==, "proj-a");
  g_assert_false (json_object_has_member (envelope, "user_prompt_id"));
  g_assert_true (json_object_has_member (request, "sessionId"));
  g_assert_false (json_object_has_member (request, "session_id"));
  g_assert_false (json_object_has_member (request, "safetySettings"));
}

/* The answer comes unwrapped from .response. */
static void
test_answer (void)
{
  static const char answer[] =
    "{\"response\":{\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":"
    "[{\"text\":\"Hello from Code Assist\"}]},\"finishReason\":\"STOP\"}],"
    "\"usageMetadata\":{\"promptTokenCount\":7,\"candidatesTokenCount\":4,"
    "\"totalTokenCount\":11},\"responseId\":\"resp-1\"},\"traceId\":\"t-1\"}";
  static const char chat[] = "{\"model\":\"gemini-2.5-pro\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}";
  g_autoptr(GBytes) body = g_bytes_new_static (chat, strlen (chat));
  g_autoptr(KpWireRequest) req = kp_wire_request_new (kp_wire_for_id ("openai-chat"), body, NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) out = NULL;
  const char *text;

  g_assert_true (kp_wire_request_parse (req, &error));
  out = kp_wire_translate_answer (req, kp_wire_for_id ("code-assist"), answer, strlen (answer),
                                  NULL, &error);
  g_assert_no_error (error);
  text = g_bytes_get_data (out, NULL);
  g_assert_nonnull (strstr (text, "\"content\":\"Hello from Code Assist\""));
  g_assert_nonnull (strstr (text, "\"finish_reason\":\"stop\""));
  g_assert_nonnull (strstr (text, "\"completion_tokens\":4"));
}

/* Errors ------------------------------------------------------------------ */

#define ERR(code, status, details) \
  "{\"error\":{\"code\":" #code ",\"message\":\"m\",\"status\":\"" status "\",\"details\":[" details "]}}"
#define INFO(reason) \
  "{\"@type\":\"type.googleapis.com/google.rpc.ErrorInfo\",\"reason\":\"" reason "\"," \
  "\"domain\":\"cloudcode-pa.googleapis.com\"}"
#define RETRY(delay) \
  "{\"@type\":\"type.googleapis.com/google.rpc.RetryInfo\",\"retryDelay\":\"" delay "\"}"

static gint64 clock_now = 1800000000;

static gint64
test_clock (gpointer user_data)
{
  return clock_now;
}

static KpCredential *
account (void)
{
  KpCredentialRow row = { .id = 5, .provider = (char *)"gemini-cli", .label = (char *)"me",
                          .multiplier = 1, .enabled = TRUE, .source = (char *)"keyring",
                          .state = (char *)"ok" };
  KpCredential *credential = kp_credential_new_from_row (&row);

  kp_credential_set_secret (credential, "static-key-for-health-0001");
  return credential;
}

/* Each error → its class, and the account's state and until when. */
static void
test_quota_states (void)
{
  static const struct
  {
    guint              status;
    const char        *body;
    KpFailureClass     klass;
    KpCredentialState  state;
    gint64             until;   /* seconds from now; 0 = no end */
  } cases[] = {
    /* Per minute, a short RetryInfo: cooling until then. */
    { 429, ERR (429, "RESOURCE_EXHAUSTED", INFO ("RATE_LIMIT_EXCEEDED") "," RETRY ("37s")),
      KP_FAILURE_RATE_LIMITED, KP_CREDENTIAL_COOLING, 37 },
    /* A "per minute" limit that asks for more than 300 s is a quota. */
    { 429, ERR (429, "RESOURCE_EXHAUSTED", INFO ("RATE_LIMIT_EXCEEDED") "," RETRY ("3600s")),
      KP_FAILURE_QUOTA, KP_CREDENTIAL_EXHAUSTED, 3600 },
    /* Exhausted until its reset. */
    { 429, ERR (429, "RESOURCE_EXHAUSTED", INFO ("QUOTA_EXHAUSTED") "," RETRY ("20000s")),
      KP_FAILURE_QUOTA, KP_CREDENTIAL_EXHAUSTED, 20000 },
    { 429, ERR (429, "RESOURCE_EXHAUSTED", INFO ("INSUFFICIENT_G1_CREDITS_BALANCE")),
      KP_FAILURE_QUOTA, KP_CREDENTIAL_EXHAUSTED, KP_KEY_HEALTH_QUOTA_DEFAULT_S },
    /* A daily quota. */
    { 429, ERR (429, "RESOURCE_EXHAUSTED",
                "{\"@type\":\"type.googleapis.com/google.rpc.QuotaFailure\",\"violations\":"
                "[{\"quotaId\":\"GenerateRequestsPerDayPerProjectPerModel-FreeTier\"}]}"),
      KP_FAILURE_QUOTA, KP_CREDENTIAL_EXHAUSTED, KP_KEY_HEALTH_QUOTA_DEFAULT_S },
    /* The owner must verify the account. */
    { 403, ERR (403, "PERMISSION_DENIED", INFO ("VALIDATION_REQUIRED") ","
                "{\"@type\":\"type.googleapis.com/google.rpc.Help\",\"links\":"
                "[{\"description\":\"Verify\",\"url\":\"https://accounts.google.com/verify?x=1\"}]}"),
      KP_FAILURE_NEEDS_USER, KP_CREDENTIAL_NEEDS_USER, 0 },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(KpKeyHealth) health = kp_key_health_new ();
      g_autoptr(KpCredential) credential = account ();
      g_autoptr(KpProvider) provider = provider_for ("code-assist");
      KpFailure failure;

      kp_key_health_set_clock (health, test_clock, NULL);
      kp_failure_classify_http (&failure, cases[i].status, NULL, cases[i].body,
                                strlen (cases[i].body));
      g_test_message ("case %u: %s", i, kp_failure_class_to_string (failure.klass));
      g_assert_cmpint (failure.klass, ==, cases[i].klass);
      g_assert_true (kp_key_health_note_failure (health, kp_provider_get_offering (provider, 0),
                                                 credential, &failure));
      g_assert_cmpint (kp_credential_get_state (credential, clock_now), ==, cases[i].state);
      g_assert_cmpint (kp_credential_get_state_until (credential), ==,
                       cases[i].until ? clock_now + cases[i].until : 0);
      if (cases[i].klass == KP_FAILURE_NEEDS_USER)
        {
          g_assert_nonnull (strstr (kp_credential_get_last_error (credential),
                                    "https://accounts.google.com/verify?x=1"));
          /* The page is kept apart, for the window's button. */
          g_assert_cmpstr (failure.user_url, ==, "https://accounts.google.com/verify?x=1");
          g_assert_cmpstr (kp_credential_get_user_url (credential), ==,
                           "https://accounts.google.com/verify?x=1");
        }
      else
        g_assert_null (kp_credential_get_user_url (credential));
      kp_failure_clear (&failure);
    }
}

/* A model out of capacity rests the offering, not the account. */
static void
test_capacity (void)
{
  static const char body[] = ERR (429, "RESOURCE_EXHAUSTED", INFO ("MODEL_CAPACITY_EXHAUSTED"));
  KpFailure failure;

  kp_failure_classify_http (&failure, 429, NULL, body, strlen (body));
  g_assert_cmpint (failure.klass, ==, KP_FAILURE_DOWN);
  g_assert_true (failure.overloaded);
  kp_failure_clear (&failure);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/code-assist/envelope", test_envelope);
  g_test_add_func ("/code-assist/envelope-free-stream", test_envelope_free_stream);
  g_test_add_func ("/code-assist/envelope-antigravity", test_envelope_antigravity);
  g_test_add_func ("/code-assist/answer", test_answer);
  g_test_add_func ("/code-assist/quota-states", test_quota_states);
  g_test_add_func ("/code-assist/capacity", test_capacity);

  return g_test_run ();
}
