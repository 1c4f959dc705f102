/* fuzz-json-guard.c: the nesting check against json-glib's own parser
 *
 * Whatever kp_json_check() lets through, json-glib must parse without
 * nesting deeper than the limit: the parser reports how deep it went through
 * its signals, even when it fails later. Small limits let short inputs tell
 * whether the check and json-glib read the same brackets.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include "config.h"

#include "codec/kp-json-guard.h"

#include "fuzz-common.h"

typedef struct
{
  guint depth;
  guint deepest;
} Depth;

static void
on_start (JsonParser *parser,
          gpointer    user_data)
{
  Depth *depth = user_data;

  depth->depth++;
  depth->deepest = MAX (depth->deepest, depth->depth);
}

static void
on_end (JsonParser *parser,
        gpointer    container,
        gpointer    user_data)
{
  Depth *depth = user_data;

  depth->depth--;
}

int
LLVMFuzzerInitialize (int    *argc,
                      char ***argv)
{
  fuzz_init ();
  return 0;
}

int
LLVMFuzzerTestOneInput (const guint8 *data,
                        size_t        size)
{
  const char *text = (const char *)data;
  g_autoptr(JsonParser) parser = NULL;
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(GError) error = NULL;
  Depth depth = { 0 };
  gboolean parsed;

  if (!kp_json_check (text, size, KP_JSON_MAX_DEPTH, NULL))
    return 0;

  parser = json_parser_new ();
  g_signal_connect (parser, "array-start", G_CALLBACK (on_start), &depth);
  g_signal_connect (parser, "object-start", G_CALLBACK (on_start), &depth);
  g_signal_connect (parser, "array-end", G_CALLBACK (on_end), &depth);
  g_signal_connect (parser, "object-end", G_CALLBACK (on_end), &depth);
  parsed = json_parser_load_from_data (parser, text, size, NULL);

  for (guint limit = 1; limit <= KP_JSON_MAX_DEPTH; limit *= 2)
    if (kp_json_check (text, size, limit, NULL) && depth.deepest > limit)
      g_error ("kp_json_check() let JSON nested %u deep through a limit of %u", depth.deepest,
               limit);
  if (depth.deepest > KP_JSON_MAX_DEPTH)
    g_error ("kp_json_check() let JSON nested %u deep through", depth.deepest);

  /* kp_json_parse() agrees with json-glib on everything the check lets by. */
  root = kp_json_parse (text, size, &error);
  g_assert_true ((root != NULL) == (parsed && json_parser_get_root (parser) != NULL));
  g_assert_true ((root != NULL) != (error != NULL));
  return 0;
}
