/* kp-wire-openai-responses-stream.c: the hub's events as Responses events
 *
 * response.created and response.in_progress first; then, as the answer
 * comes, an output item for the message, the reasoning and each function
 * call (added, its part, its deltas); at the end every item done and
 * response.completed (or .incomplete) with the whole response and usage.
 * Every event carries its type and an increasing sequence number.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include "kp-wire-openai-private.h"
#include "kp-wire-openai-responses-private.h"

/* Streams: the hub's events as Responses events --------------------------- */

typedef enum
{
  ITEM_MESSAGE,
  ITEM_REASONING,
  ITEM_FUNCTION_CALL,
} ItemKind;

typedef struct
{
  ItemKind  kind;
  char     *id;
  char     *call_id;
  char     *name;
  GString  *text;    /* the text, the reasoning or the arguments so far */
  gboolean  done;
} Item;

static void
item_clear (gpointer data)
{
  Item *item = data;

  g_free (item->id);
  g_free (item->call_id);
  g_free (item->name);
  g_string_free (item->text, TRUE);
}

typedef struct
{
  KpWireEncoderBase base;
  char      *model;
  char      *id;
  gint64     created_at;
  guint64    sequence;
  gboolean   started;
  gboolean   ended;
  GArray    *items;       /* of Item, in output order */
  gint       open_text;   /* the item text or reasoning goes to, or -1 */
  GArray    *tools;       /* tool-call ordinal -> item index */
} Encoder;

static KpWireEncoder
encoder_new (const KpWireRequest *req)
{
  Encoder *self = g_new0 (Encoder, 1);

  self->model = g_strdup (req != NULL && req->model != NULL ? req->model : "");
  self->created_at = g_get_real_time () / G_USEC_PER_SEC;
  self->items = g_array_new (FALSE, TRUE, sizeof (Item));
  g_array_set_clear_func (self->items, item_clear);
  self->tools = g_array_new (FALSE, FALSE, sizeof (guint));
  self->open_text = -1;
  return self;
}

static void
encoder_free (KpWireEncoder encoder)
{
  Encoder *self = encoder;

  g_free (self->model);
  g_free (self->id);
  g_array_unref (self->items);
  g_array_unref (self->tools);
  g_free (self);
}

/* One event: its name, and the data with its type and sequence number
 * first; @object's members follow.
 */
static void
write_event (Encoder    *self,
             GString    *out,
             const char *type,
             JsonObject *object)
{
  g_autoptr(JsonObject) owned = object;
  g_autoptr(JsonObject) data = json_object_new ();
  g_autoptr(JsonNode) node = NULL;
  g_autofree char *json = NULL;
  JsonObjectIter iter;
  const char *name;
  JsonNode *member;

  json_object_set_string_member (data, "type", type);
  json_object_set_int_member (data, "sequence_number", (gint64)self->sequence++);
  if (owned != NULL)
    {
      json_object_iter_init_ordered (&iter, owned);
      while (json_object_iter_next_ordered (&iter, &name, &member))
        json_object_set_member (data, name, json_node_ref (member));
    }
  node = kp_json_object_node (json_object_ref (data));
  json = kp_json_to_string (node, NULL);
  g_string_append (out, "event: ");
  g_string_append (out, type);
  g_string_append (out, "\ndata: ");
  g_string_append (out, json);
  g_string_append (out, "\n\n");
}

static JsonObject *
with_response (JsonObject *response)
{
  JsonObject *object = json_object_new ();

  json_object_set_object_member (object, "response", response);
  return object;
}

static void
on_start (KpWireEncoder  encoder,
          const char    *upstream_id,
          GString       *out)
{
  Encoder *self = encoder;

  if (self->started)
    return;
  self->started = TRUE;
  if (self->id == NULL)
    self->id = kp_responses_response_id_for (upstream_id);
  write_event (self, out, "response.created",
               with_response (kp_responses_response_object (self->id, self->model, self->created_at,
                                               "in_progress", KP_FINISH_NONE, NULL, NULL)));
  write_event (self, out, "response.in_progress",
               with_response (kp_responses_response_object (self->id, self->model, self->created_at,
                                               "in_progress", KP_FINISH_NONE, NULL, NULL)));
}

static JsonObject *
item_json (const Item *item,
           gboolean    done)
{
  const char *status = done ? "completed" : "in_progress";

  switch (item->kind)
    {
    case ITEM_REASONING:
      {
        JsonObject *object = kp_responses_reasoning_item (item->id, item->text->str);

        if (!done)
          json_object_set_array_member (object, "summary", json_array_new ());
        return object;
      }
    case ITEM_FUNCTION_CALL:
      return kp_responses_function_call_item (item->id, item->call_id, item->name,
                                 done ? item->text->str : "", status);
    case ITEM_MESSAGE:
    default:
      return kp_responses_message_item (item->id, done ? item->text->str : NULL, status);
    }
}

static JsonObject *
item_event (guint       output_index,
            JsonObject *item)
{
  JsonObject *object = json_object_new ();

  json_object_set_int_member (object, "output_index", output_index);
  json_object_set_object_member (object, "item", item);
  return object;
}

static JsonObject *
part_event (const Item *item,
            guint       output_index,
            const char *member,
            JsonObject *part)
{
  JsonObject *object = json_object_new ();

  json_object_set_string_member (object, "item_id", item->id);
  json_object_set_int_member (object, "output_index", output_index);
  json_object_set_int_member (object, member, 0);
  json_object_set_object_member (object, "part", part);
  return object;
}

static JsonObject *
summary_part (const char *text)
{
  JsonObject *part = json_object_new ();

  json_object_set_string_member (part, "type", "summary_text");
  json_object_set_string_member (part, "text", text);
  return part;
}

static guint
add_item (Encoder    *self,
          ItemKind    kind,
          const char *call_id,
          const char *name,
          GString    *out)
{
  static const char * const prefixes[] = { "msg_", "rs_", "fc_" };
  Item item = { .kind = kind, .text = g_string_new (NULL) };
  guint index = self->items->len;
  Item *stored;

  on_start (self, NULL, out);
  item.id = g_strdup_printf ("%s%s_%u", prefixes[kind], self->id + 5, index);
  item.call_id = g_strdup (kp_json_nonempty (call_id) ? call_id : item.id);
  item.name = g_strdup (name != NULL ? name : "");
  g_array_append_val (self->items, item);
  stored = &g_array_index (self->items, Item, index);

  write_event (self, out, "response.output_item.added", item_event (index, item_json (stored, FALSE)));
  if (kind == ITEM_MESSAGE)
    write_event (self, out, "response.content_part.added",
                 part_event (stored, index, "content_index", kp_responses_output_text_part ("")));
  else if (kind == ITEM_REASONING)
    write_event (self, out, "response.reasoning_summary_part.added",
                 part_event (stored, index, "summary_index", summary_part ("")));
  return index;
}

static JsonObject *
delta_event (const Item *item,
             guint       output_index,
             const char *index_member,
             const char *member,
             const char *value)
{
  JsonObject *object = json_object_new ();

  json_object_set_string_member (object, "item_id", item->id);
  json_object_set_int_member (object, "output_index", output_index);
  if (index_member != NULL)
    json_object_set_int_member (object, index_member, 0);
  json_object_set_string_member (object, member, value);
  return object;
}

static void
close_item (Encoder *self,
            guint    index,
            GString *out)
{
  Item *item = &g_array_index (self->items, Item, index);

  if (item->done)
    return;
  item->done = TRUE;
  switch (item->kind)
    {
    case ITEM_MESSAGE:
      write_event (self, out, "response.output_text.done",
                   delta_event (item, index, "content_index", "text", item->text->str));
      write_event (self, out, "response.content_part.done",
                   part_event (item, index, "content_index", kp_responses_output_text_part (item->text->str)));
      break;
    case ITEM_REASONING:
      write_event (self, out, "response.reasoning_summary_text.done",
                   delta_event (item, index, "summary_index", "text", item->text->str));
      write_event (self, out, "response.reasoning_summary_part.done",
                   part_event (item, index, "summary_index", summary_part (item->text->str)));
      break;
    case ITEM_FUNCTION_CALL:
    default:
      write_event (self, out, "response.function_call_arguments.done",
                   delta_event (item, index, NULL, "arguments", item->text->str));
      break;
    }
  write_event (self, out, "response.output_item.done", item_event (index, item_json (item, TRUE)));
}

static void
encode_text (Encoder    *self,
             ItemKind    kind,
             const char *text,
             GString    *out)
{
  Item *item;
  guint index;

  if (!kp_json_nonempty (text))
    return;
  if (self->open_text < 0 || g_array_index (self->items, Item, self->open_text).kind != kind)
    {
      if (self->open_text >= 0)
        close_item (self, self->open_text, out);
      self->open_text = add_item (self, kind, NULL, NULL, out);
    }
  index = self->open_text;
  item = &g_array_index (self->items, Item, index);
  g_string_append (item->text, text);
  if (kind == ITEM_MESSAGE)
    write_event (self, out, "response.output_text.delta",
                 delta_event (item, index, "content_index", "delta", text));
  else
    write_event (self, out, "response.reasoning_summary_text.delta",
                 delta_event (item, index, "summary_index", "delta", text));
}

static void
on_tool_args (KpWireEncoder  encoder,
              guint          ordinal,
              const char    *text,
              GString       *out)
{
  Encoder *self = encoder;
  guint index;
  Item *item;

  if (!kp_json_nonempty (text) || ordinal >= self->tools->len)
    return;
  index = g_array_index (self->tools, guint, ordinal);
  item = &g_array_index (self->items, Item, index);
  g_string_append (item->text, text);
  write_event (self, out, "response.function_call_arguments.delta",
               delta_event (item, index, NULL, "delta", text));
}

static void
on_tool_call (KpWireEncoder  encoder,
              const KpEvent *event,
              GString       *out)
{
  Encoder *self = encoder;
  guint index;

  if (self->open_text >= 0)
    {
      close_item (self, self->open_text, out);
      self->open_text = -1;
    }
  index = add_item (self, ITEM_FUNCTION_CALL, event->id, event->name, out);
  while (self->tools->len <= event->index)
    g_array_append_val (self->tools, index);
  g_array_index (self->tools, guint, event->index) = index;
  on_tool_args (self, event->index, event->text, out);
}

static void
on_end (KpWireEncoder  encoder,
        GString       *out)
{
  Encoder *self = encoder;
  JsonArray *output = json_array_new ();
  const char *status = kp_responses_status_for (self->base.finish);

  on_start (self, NULL, out);
  for (guint i = 0; i < self->items->len; i++)
    close_item (self, i, out);
  for (guint i = 0; i < self->items->len; i++)
    json_array_add_object_element (output, item_json (&g_array_index (self->items, Item, i), TRUE));

  write_event (self, out, g_str_equal (status, "completed") ? "response.completed"
                                                            : "response.incomplete",
               with_response (kp_responses_response_object (self->id, self->model,
                                                            self->created_at, status,
                                                            self->base.finish, output,
                                                            &self->base.usage)));
  self->ended = TRUE;
}

static void
on_text (KpWireEncoder  encoder,
         const char    *text,
         GString       *out)
{
  encode_text (encoder, ITEM_MESSAGE, text, out);
}

static void
on_reasoning (KpWireEncoder  encoder,
              const char    *text,
              GString       *out)
{
  encode_text (encoder, ITEM_REASONING, text, out);
}

const KpWireEncoderClass kp_responses_encoder_class = {
  .create = encoder_new,
  .destroy = encoder_free,
  .start = on_start,
  .text = on_text,
  .reasoning = on_reasoning,
  .tool_call = on_tool_call,
  .tool_args = on_tool_args,
  .usage = kp_wire_encoder_keep_usage,
  .finish = kp_wire_encoder_keep_finish,
  .end = on_end,
};
