/* fuzz-answer.c: a provider's whole answer or error body
 *
 * The bytes are an answer in every provider wire, translated for every
 * client wire that takes translated answers, and an error body translated
 * for every client wire and classified as the relay classifies a failure.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include "config.h"

#include <string.h>

#include "kp-upstream-error.h"

#include "fuzz-common.h"

/* A request each client wire accepts, for the answer to be given to. */
static const struct
{
  const char *wire;
  const char *body;
} requests[] = {
  { "openai-chat", "{\"model\":\"fuzz/model\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}" },
  { "anthropic", "{\"model\":\"fuzz/model\",\"max_tokens\":100,"
                 "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}" },
  { "openai-responses", "{\"model\":\"fuzz/model\",\"input\":\"hi\"}" },
  /* Embeddings in base64: the answer's vectors are written again. */
  { "openai-embeddings", "{\"model\":\"fuzz/model\",\"input\":\"hi\",\"encoding_format\":\"base64\"}" },
};

static const guint statuses[] = { 400, 401, 402, 403, 423, 429, 503, 529 };

static SoupMessageHeaders *headers;

int
LLVMFuzzerInitialize (int    *argc,
                      char ***argv)
{
  fuzz_init ();
  headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
  soup_message_headers_append (headers, "retry-after", "7");
  return 0;
}

int
LLVMFuzzerTestOneInput (const guint8 *data,
                        size_t        size)
{
  const char *text = (const char *)data;

  for (guint i = 0; i < G_N_ELEMENTS (requests); i++)
    {
      const KpWire *client = kp_wire_for_id (requests[i].wire);
      g_autoptr(KpWireRequest) req = fuzz_request_new (client, requests[i].body);

      g_assert_nonnull (client->response_from_canonical);
      for (const KpWire * const *upstream = kp_wire_all (); *upstream != NULL; upstream++)
        {
          g_autoptr(GError) error = NULL;
          g_autoptr(GBytes) answer = NULL;

          if ((*upstream)->response_to_canonical == NULL &&
              (*upstream)->answer_to_canonical == NULL)
            continue;
          answer = kp_wire_translate_answer (req, *upstream, text, size, NULL, &error);
          g_assert_true ((answer != NULL) != (error != NULL));
          if (answer != NULL)
            fuzz_assert_json (g_bytes_get_data (answer, NULL), g_bytes_get_size (answer));
        }
    }

  for (guint i = 0; i < G_N_ELEMENTS (statuses); i++)
    {
      KpFailure failure = { 0 };

      kp_failure_classify_http (&failure, statuses[i], headers, text, size);
      /* And as the wires that read their provider's error words read them. */
      for (const KpWire * const *upstream = kp_wire_all (); *upstream != NULL; upstream++)
        if ((*upstream)->classify != NULL)
          (*upstream)->classify (&failure, statuses[i], text, size);
      kp_failure_clear (&failure);
      for (const KpWire * const *client = kp_wire_all (); *client != NULL; client++)
        {
          g_autofree char *body = NULL;

          if ((*client)->client_routes == NULL)
            continue;
          body = kp_wire_translate_error (*client, statuses[i], text, size);
          g_assert_nonnull (body);
          fuzz_assert_json (body, strlen (body));
        }
    }

  {
    g_autofree char *type = NULL;
    g_autofree char *message = NULL;
    gint64 code = 0;

    message = kp_wire_error_message (text, size, &code, &type);
  }
  return 0;
}
