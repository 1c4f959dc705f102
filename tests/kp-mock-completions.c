/* kp-mock-completions.c: the mock provider's legacy completions API
 *
 * POST …/completions answers the mock's usual "tok0 tok1 … " text. With a
 * `suffix` (fill-in-the-middle) the text ends "[before SUFFIX]", so that a
 * test sees the suffix arrived. Streamed, a chunk per word, one with the
 * finish_reason, and with stream_options.include_usage a last chunk with
 * empty choices and the usage (the others then carry "usage": null); then
 * [DONE].
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include "config.h"

#include <string.h>

#include "kp-mock-private.h"

static JsonObject *
usage_object (guint completion_tokens)
{
  JsonObject *usage = json_object_new ();

  json_object_set_int_member (usage, "prompt_tokens", 11);
  json_object_set_int_member (usage, "completion_tokens", completion_tokens);
  json_object_set_int_member (usage, "total_tokens", 11 + completion_tokens);
  return usage;
}

static JsonObject *
completion (const char *model,
            const char *text,
            const char *finish_reason)
{
  JsonObject *object = json_object_new ();
  JsonArray *choices = json_array_new ();

  json_object_set_string_member (object, "id", "cmpl-mock01");
  json_object_set_string_member (object, "object", "text_completion");
  json_object_set_int_member (object, "created", 1700000000);
  json_object_set_string_member (object, "model", model);
  if (text != NULL)
    {
      JsonObject *choice = json_object_new ();

      json_object_set_string_member (choice, "text", text);
      json_object_set_int_member (choice, "index", 0);
      json_object_set_null_member (choice, "logprobs");
      if (finish_reason != NULL)
        json_object_set_string_member (choice, "finish_reason", finish_reason);
      else
        json_object_set_null_member (choice, "finish_reason");
      json_array_add_object_element (choices, choice);
    }
  json_object_set_array_member (object, "choices", choices);
  return object;
}

static void
add_chunk (GString    *events,
           JsonObject *chunk,
           gboolean    usage_null)
{
  g_autofree char *data = NULL;

  if (usage_null)
    json_object_set_null_member (chunk, "usage");
  data = kp_mock_object_to_data (chunk);
  g_string_append_printf (events, "data: %s\n\n", data);
}

/**
 * kp_mock_completions_handle:
 * @stats: the mock's statistics, updated
 * @n_chunks: how many words the answer has
 * @msg: a POST to …/completions
 */
void
kp_mock_completions_handle (KpMockStats       *stats,
                            guint              n_chunks,
                            SoupServerMessage *msg)
{
  g_autoptr(JsonObject) request = kp_mock_read_request (stats, msg, "Authorization");
  g_autofree char *words = NULL;
  g_autofree char *text = NULL;
  g_autofree char *tail = NULL;
  JsonObject *options;
  const char *model;
  const char *suffix;
  gboolean include_usage = FALSE;

  if (request == NULL)
    return;
  if (!json_object_has_member (request, "prompt"))
    {
      kp_mock_reply_error (msg, 400, "mock: “prompt” is missing");
      return;
    }

  model = json_object_get_string_member_with_default (request, "model", "mock-fim");
  suffix = json_object_get_string_member_with_default (request, "suffix", NULL);
  words = kp_mock_answer_text (n_chunks);
  tail = suffix != NULL ? g_strdup_printf ("[before %s]", suffix) : g_strdup ("");
  text = g_strconcat (words, tail, NULL);
  options = kp_mock_object_member (request, "stream_options");
  if (options != NULL)
    include_usage = json_object_get_boolean_member_with_default (options, "include_usage", FALSE);

  if (json_object_get_boolean_member_with_default (request, "stream", FALSE))
    {
      g_autoptr(GString) events = g_string_new (NULL);
      const char *next = words;
      JsonObject *chunk;

      while (*next != '\0')
        {
          const char *space = strchr (next, ' ');
          gsize len = space != NULL ? (gsize) (space - next) + 1 : strlen (next);
          g_autofree char *piece = g_strndup (next, len);

          add_chunk (events, completion (model, piece, NULL), include_usage);
          next += len;
        }
      if (tail[0] != '\0')
        add_chunk (events, completion (model, tail, NULL), include_usage);
      add_chunk (events, completion (model, "", "stop"), include_usage);
      if (include_usage)
        {
          chunk = completion (model, NULL, NULL);
          json_object_set_object_member (chunk, "usage", usage_object (n_chunks));
          add_chunk (events, chunk, FALSE);
        }
      g_string_append (events, "data: [DONE]\n\n");
      kp_mock_reply_sse (msg, events);
      return;
    }

  {
    JsonObject *answer = completion (model, text, "stop");

    json_object_set_object_member (answer, "usage", usage_object (n_chunks));
    kp_mock_reply_json (msg, 200, answer);
  }
}
