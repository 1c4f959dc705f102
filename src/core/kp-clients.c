/* kp-clients.c: named client tokens ("Claude Code", "Cursor", …)
 *
 * Besides the main access token, each tool may get a token of its own, so
 * that the ledger tells what each one spent and a budget can hold it. A
 * client's token lives in the keyring only; the process keeps its SHA-256
 * digest for the check, never the token. The names, which are no secret,
 * are kept in the settings table; a removed client keeps its name there so
 * that the spend it made keeps it too.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include <string.h>

#include <json-glib/json-glib.h>

#include "codec/kp-json-guard.h"
#include "kp-access-token.h"
#include "kp-clients.h"
#include "kp-credential.h"
#include "wire/kp-wire-json.h"

#define SETTING_KEY      "clients"
#define VAULT_PROVIDER   "keypool-client"
#define SETTING_MAX      (1024 * 1024)
#define MAX_CLIENTS      1000
#define DIGEST_LEN       32

typedef struct
{
  guint     id;
  char     *name;
  gint64    created;
  gboolean  removed;
  gboolean  has_digest;
  guint8    digest[DIGEST_LEN];
} Client;

struct _KpClients
{
  GObject    parent_instance;

  KpVault   *vault;
  KpLedger  *ledger;            /* where the names are kept; NULL before loading */
  GPtrArray *clients;           /* of Client, by id */
  guint      next_id;
  char      *keyring_problem;   /* why tokens cannot be kept, or NULL */
};

G_DEFINE_FINAL_TYPE (KpClients, kp_clients, G_TYPE_OBJECT)

G_DEFINE_QUARK (kp-clients-error-quark, kp_clients_error)

enum {
  CHANGED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];


static void
client_free (gpointer data)
{
  Client *client = data;

  explicit_bzero (client->digest, sizeof client->digest);
  g_free (client->name);
  g_free (client);
}

static void
kp_clients_finalize (GObject *object)
{
  KpClients *self = (KpClients *)object;

  g_clear_object (&self->vault);
  g_clear_object (&self->ledger);
  g_clear_pointer (&self->clients, g_ptr_array_unref);
  g_clear_pointer (&self->keyring_problem, g_free);

  G_OBJECT_CLASS (kp_clients_parent_class)->finalize (object);
}

static void
kp_clients_class_init (KpClientsClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = kp_clients_finalize;

  /**
   * KpClients::changed:
   *
   * Emitted when a client is added, removed or renamed, or its token
   * changed.
   */
  signals[CHANGED] =
    g_signal_new ("changed",
                  G_TYPE_FROM_CLASS (klass),
                  G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL,
                  G_TYPE_NONE, 0);

}

static void
kp_clients_init (KpClients *self)
{
  self->clients = g_ptr_array_new_with_free_func (client_free);
  self->next_id = 1;
}

KpClients *
kp_clients_new (KpVault *vault)
{
  KpClients *self;

  g_return_val_if_fail (KP_IS_VAULT (vault), NULL);

  self = g_object_new (KP_TYPE_CLIENTS, NULL);
  self->vault = g_object_ref (vault);
  return self;
}

void
kp_client_info_free (KpClientInfo *info)
{
  if (info == NULL)
    return;
  g_free (info->name);
  g_free (info);
}

/* Storage --------------------------------------------------------------------- */

static Client *
find_by_id (KpClients *self,
            guint      id)
{
  for (guint i = 0; i < self->clients->len; i++)
    {
      Client *client = g_ptr_array_index (self->clients, i);

      if (client->id == id)
        return client;
    }
  return NULL;
}

/* Removed clients keep their name for the ledger, but free it for a new one. */
static Client *
find_by_name (KpClients  *self,
              const char *name)
{
  for (guint i = 0; i < self->clients->len; i++)
    {
      Client *client = g_ptr_array_index (self->clients, i);

      if (!client->removed && g_utf8_collate (client->name, name) == 0)
        return client;
    }
  return NULL;
}

static char *
vault_credential (guint id)
{
  return g_strdup_printf ("client-%u", id);
}

static gboolean
save (KpClients  *self,
      GError    **error)
{
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  g_autoptr(JsonNode) root = NULL;
  g_autofree char *text = NULL;

  if (self->ledger == NULL)
    return TRUE;

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "next_id");
  json_builder_add_int_value (builder, self->next_id);
  json_builder_set_member_name (builder, "clients");
  json_builder_begin_array (builder);
  for (guint i = 0; i < self->clients->len; i++)
    {
      Client *client = g_ptr_array_index (self->clients, i);

      json_builder_begin_object (builder);
      json_builder_set_member_name (builder, "id");
      json_builder_add_int_value (builder, client->id);
      json_builder_set_member_name (builder, "name");
      json_builder_add_string_value (builder, client->name);
      json_builder_set_member_name (builder, "created");
      json_builder_add_int_value (builder, client->created);
      json_builder_set_member_name (builder, "removed");
      json_builder_add_boolean_value (builder, client->removed);
      json_builder_end_object (builder);
    }
  json_builder_end_array (builder);
  json_builder_end_object (builder);

  root = json_builder_get_root (builder);
  text = json_to_string (root, FALSE);
  return kp_ledger_set_setting (self->ledger, SETTING_KEY, text, error);
}

/* A name a person can read in a list and type on a command line. */
static char *
check_name (const char  *name,
            GError     **error)
{
  g_autofree char *stripped = NULL;

  if (name == NULL || !g_utf8_validate (name, -1, NULL))
    {
      g_set_error_literal (error, KP_CLIENTS_ERROR, KP_CLIENTS_ERROR_INVALID,
                           "A client’s name must be text.");
      return NULL;
    }
  stripped = g_strstrip (g_strdup (name));
  if (*stripped == '\0')
    {
      g_set_error_literal (error, KP_CLIENTS_ERROR, KP_CLIENTS_ERROR_INVALID,
                           "A client needs a name, such as “Claude Code”.");
      return NULL;
    }
  if (g_utf8_strlen (stripped, -1) > KP_CLIENT_NAME_MAX)
    {
      g_set_error (error, KP_CLIENTS_ERROR, KP_CLIENTS_ERROR_INVALID,
                   "A client’s name has at most %d characters.", KP_CLIENT_NAME_MAX);
      return NULL;
    }
  for (const char *p = stripped; *p != '\0'; p = g_utf8_next_char (p))
    if (g_unichar_iscntrl (g_utf8_get_char (p)))
      {
        g_set_error_literal (error, KP_CLIENTS_ERROR, KP_CLIENTS_ERROR_INVALID,
                             "A client’s name cannot hold control characters.");
        return NULL;
      }
  if (g_ascii_strcasecmp (stripped, "Other") == 0)
    {
      g_set_error_literal (error, KP_CLIENTS_ERROR, KP_CLIENTS_ERROR_INVALID,
                           "“Other” stands for the main access token; choose another name.");
      return NULL;
    }
  return g_steal_pointer (&stripped);
}

static gboolean
parse (KpClients   *self,
       const char  *text,
       GError     **error)
{
  g_autoptr(JsonNode) root = NULL;
  JsonObject *object;
  JsonArray *array;

  if (strlen (text) > SETTING_MAX)
    {
      g_set_error_literal (error, KP_CLIENTS_ERROR, KP_CLIENTS_ERROR_FAILED,
                           "The list of clients in the database is too large to be Keypool’s.");
      return FALSE;
    }
  root = kp_json_parse (text, -1, error);
  if (root == NULL)
    return FALSE;
  if (!JSON_NODE_HOLDS_OBJECT (root))
    goto damaged;
  object = json_node_get_object (root);
  if (!json_object_has_member (object, "clients") ||
      !JSON_NODE_HOLDS_ARRAY (json_object_get_member (object, "clients")))
    goto damaged;
  array = json_object_get_array_member (object, "clients");
  if (json_array_get_length (array) > MAX_CLIENTS)
    goto damaged;

  for (guint i = 0; i < json_array_get_length (array); i++)
    {
      JsonNode *node = json_array_get_element (array, i);
      JsonObject *entry;
      Client *client;
      gint64 id;
      const char *name;
      g_autofree char *checked = NULL;

      if (!JSON_NODE_HOLDS_OBJECT (node))
        goto damaged;
      entry = json_node_get_object (node);
      id = kp_json_int_or (entry, "id", 0);
      name = kp_json_string (entry, "name");
      checked = check_name (name, NULL);
      if (id <= 0 || id > G_MAXINT32 || checked == NULL || find_by_id (self, (guint)id) != NULL)
        goto damaged;

      client = g_new0 (Client, 1);
      client->id = (guint)id;
      client->name = g_steal_pointer (&checked);
      client->created = kp_json_int_or (entry, "created", 0);
      client->removed = kp_json_bool_or (entry, "removed", FALSE);
      g_ptr_array_add (self->clients, client);
      self->next_id = MAX (self->next_id, client->id + 1);
    }
  self->next_id = MAX (self->next_id,
                       (guint)CLAMP (kp_json_int_or (object, "next_id", 1),
                                     1, G_MAXINT32));
  return TRUE;

damaged:
  g_ptr_array_set_size (self->clients, 0);
  g_set_error_literal (error, KP_CLIENTS_ERROR, KP_CLIENTS_ERROR_FAILED,
                       "The list of clients in the database is damaged.");
  return FALSE;
}

/**
 * kp_clients_load:
 * @ledger: where the clients' names are kept
 *
 * Reads the clients' names. Their tokens come from the keyring, through
 * kp_clients_found_secrets(); until then no client token is accepted.
 */
gboolean
kp_clients_load (KpClients  *self,
                 KpLedger   *ledger,
                 GError    **error)
{
  g_autofree char *text = NULL;
  g_autoptr(GError) local_error = NULL;

  g_return_val_if_fail (KP_IS_CLIENTS (self), FALSE);
  g_return_val_if_fail (KP_IS_LEDGER (ledger), FALSE);

  g_set_object (&self->ledger, ledger);
  text = kp_ledger_get_setting (ledger, SETTING_KEY);
  if (text != NULL && !parse (self, text, &local_error))
    {
      /* The names are not worth refusing to start over; the tokens are in
       * the keyring still. */
      g_warning ("%s The client tokens are not accepted until clients are added again.",
                 local_error->message);
    }
  return TRUE;
}

static void
set_digest (Client     *client,
            const char *token)
{
  gsize len = DIGEST_LEN;
  g_autoptr(GChecksum) checksum = g_checksum_new (G_CHECKSUM_SHA256);

  g_checksum_update (checksum, (const guchar *)token, strlen (token));
  g_checksum_get_digest (checksum, client->digest, &len);
  client->has_digest = TRUE;
}

/**
 * kp_clients_found_secrets:
 * @secrets: the keyring's secrets by "PROVIDER:CREDENTIAL"
 *
 * Takes the digests of the clients' tokens from what the keyring holds.
 */
void
kp_clients_found_secrets (KpClients  *self,
                          GHashTable *secrets)
{
  g_return_if_fail (KP_IS_CLIENTS (self));
  g_return_if_fail (secrets != NULL);

  for (guint i = 0; i < self->clients->len; i++)
    {
      Client *client = g_ptr_array_index (self->clients, i);
      g_autofree char *credential = vault_credential (client->id);
      g_autofree char *key = g_strconcat (VAULT_PROVIDER, ":", credential, NULL);
      const char *token = g_hash_table_lookup (secrets, key);

      if (client->removed)
        continue;
      if (token != NULL)
        set_digest (client, token);
      else
        g_debug ("Client %u has no token in the keyring", client->id);
    }
}

/**
 * kp_clients_set_keyring_problem:
 * @problem: (nullable): why the keyring cannot keep tokens, or %NULL
 */
void
kp_clients_set_keyring_problem (KpClients  *self,
                                const char *problem)
{
  g_return_if_fail (KP_IS_CLIENTS (self));

  g_free (self->keyring_problem);
  self->keyring_problem = g_strdup (problem);
}

/* The check ------------------------------------------------------------------- */

/* Compares in time that does not depend on where the digests differ. */
static gboolean
digest_equal (const guint8 *a,
              const guint8 *b)
{
  guint8 diff = 0;

  for (guint i = 0; i < DIGEST_LEN; i++)
    diff |= a[i] ^ b[i];
  return diff == 0;
}

/**
 * kp_clients_check:
 * @token: the token a request carries
 * @id: (out): the client it names
 *
 * Returns: whether @token is a client's token
 */
gboolean
kp_clients_check (KpClients  *self,
                  const char *token,
                  guint      *id)
{
  g_autoptr(GChecksum) checksum = NULL;
  guint8 digest[DIGEST_LEN];
  gsize len = DIGEST_LEN;
  gboolean found = FALSE;

  g_return_val_if_fail (KP_IS_CLIENTS (self), FALSE);
  g_return_val_if_fail (token != NULL, FALSE);
  g_return_val_if_fail (id != NULL, FALSE);

  if (self->clients->len == 0)
    return FALSE;

  checksum = g_checksum_new (G_CHECKSUM_SHA256);
  g_checksum_update (checksum, (const guchar *)token, strlen (token));
  g_checksum_get_digest (checksum, digest, &len);

  /* Every client is compared, so the time taken does not tell which matched. */
  for (guint i = 0; i < self->clients->len; i++)
    {
      Client *client = g_ptr_array_index (self->clients, i);

      if (client->has_digest && !client->removed && digest_equal (digest, client->digest) &&
          !found)
        {
          *id = client->id;
          found = TRUE;
        }
    }
  explicit_bzero (digest, sizeof digest);
  return found;
}

/* Listing --------------------------------------------------------------------- */

/**
 * kp_clients_list:
 * @with_removed: whether removed clients are listed too
 *
 * Returns: (transfer container) (element-type KpClientInfo): the clients,
 *   oldest first
 */
GPtrArray *
kp_clients_list (KpClients *self,
                 gboolean   with_removed)
{
  GPtrArray *list = g_ptr_array_new_with_free_func ((GDestroyNotify)kp_client_info_free);

  g_return_val_if_fail (KP_IS_CLIENTS (self), list);

  for (guint i = 0; i < self->clients->len; i++)
    {
      Client *client = g_ptr_array_index (self->clients, i);
      KpClientInfo *info;

      if (client->removed && !with_removed)
        continue;
      info = g_new0 (KpClientInfo, 1);
      info->id = client->id;
      info->name = g_strdup (client->name);
      info->created = client->created;
      info->removed = client->removed;
      info->active = client->has_digest && !client->removed;
      g_ptr_array_add (list, info);
    }
  return list;
}

/**
 * kp_clients_dup_name:
 * @id: a client's id, as the ledger records it
 *
 * Returns: (transfer full): the name to show for @id: "Other" for the main
 *   token, "NAME (removed)" for a removed client
 */
char *
kp_clients_dup_name (KpClients *self,
                     guint      id)
{
  Client *client;

  g_return_val_if_fail (KP_IS_CLIENTS (self), NULL);

  if (id == KP_CLIENT_OTHER)
    return g_strdup ("Other");
  client = find_by_id (self, id);
  if (client == NULL)
    return g_strdup_printf ("client %u", id);
  if (client->removed)
    return g_strdup_printf ("%s (removed)", client->name);
  return g_strdup (client->name);
}

/**
 * kp_clients_find:
 * @name: a client's name; "Other" names the main token
 * @id: (out): its id
 */
gboolean
kp_clients_find (KpClients  *self,
                 const char *name,
                 guint      *id)
{
  g_autofree char *stripped = NULL;
  Client *client;

  g_return_val_if_fail (KP_IS_CLIENTS (self), FALSE);
  g_return_val_if_fail (name != NULL && id != NULL, FALSE);

  stripped = g_strstrip (g_strdup (name));
  if (g_ascii_strcasecmp (stripped, "Other") == 0)
    {
      *id = KP_CLIENT_OTHER;
      return TRUE;
    }
  client = find_by_name (self, stripped);
  if (client == NULL)
    return FALSE;
  *id = client->id;
  return TRUE;
}

/* Adding ---------------------------------------------------------------------- */

typedef struct
{
  guint     id;
  gboolean  created;   /* a new client, dropped again if its token cannot be kept */
  char     *token;
} AddData;

static void
wipe_secret_free (gpointer data)
{
  char *secret = data;

  kp_secret_wipe (&secret);
}

static void
add_data_free (gpointer data)
{
  AddData *add = data;

  kp_secret_wipe (&add->token);
  g_free (add);
}

static void
drop_client (KpClients *self,
             guint      id)
{
  for (guint i = 0; i < self->clients->len; i++)
    if (((Client *)g_ptr_array_index (self->clients, i))->id == id)
      {
        g_ptr_array_remove_index (self->clients, i);
        return;
      }
}

static void
on_token_stored (GObject      *object,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  KpClients *self = g_task_get_source_object (task);
  AddData *add = g_task_get_task_data (task);
  g_autoptr(GError) error = NULL;
  Client *client = find_by_id (self, add->id);

  if (!kp_vault_store_finish (self->vault, result, &error))
    {
      if (add->created)
        drop_client (self, add->id);
      g_task_return_new_error (task, KP_CLIENTS_ERROR, KP_CLIENTS_ERROR_KEYRING,
                               "The keyring did not keep the client’s token: %s.", error->message);
      return;
    }

  /* Removed meanwhile: the token is of no use. */
  if (client == NULL || client->removed)
    {
      g_task_return_new_error (task, KP_CLIENTS_ERROR, KP_CLIENTS_ERROR_NOT_FOUND,
                               "The client was removed while its token was made.");
      return;
    }

  set_digest (client, add->token);
  if (!save (self, &error))
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  g_signal_emit (self, signals[CHANGED], 0);
  g_task_return_pointer (task, g_steal_pointer (&add->token), wipe_secret_free);
}

/**
 * kp_clients_add_async:
 * @name: the client's name, such as "Claude Code"
 * @replace: when a client of that name exists: %TRUE gives it a new token
 *   (its old one stops working, its spend stays its own), %FALSE fails
 * @cancellable: (nullable): a #GCancellable
 * @callback: called when the token is in the keyring and in use
 * @user_data: data for @callback
 *
 * Makes a new token for a client; kp_clients_add_finish() gives it, once.
 * This is the call for code that sets a tool up ("a new client token for
 * that tool"): pass the tool's name and @replace %TRUE.
 */
void
kp_clients_add_async (KpClients           *self,
                      const char          *name,
                      gboolean             replace,
                      GCancellable        *cancellable,
                      GAsyncReadyCallback  callback,
                      gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *checked = NULL;
  g_autofree char *credential = NULL;
  g_autofree char *label = NULL;
  AddData *add;
  Client *client;

  g_return_if_fail (KP_IS_CLIENTS (self));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, kp_clients_add_async);

  checked = check_name (name, &error);
  if (checked == NULL)
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  if (self->keyring_problem != NULL)
    {
      g_task_return_new_error (task, KP_CLIENTS_ERROR, KP_CLIENTS_ERROR_KEYRING,
                               "Client tokens are kept in the keyring, which cannot be used: %s.",
                               self->keyring_problem);
      return;
    }

  add = g_new0 (AddData, 1);
  g_task_set_task_data (task, add, add_data_free);

  client = find_by_name (self, checked);
  if (client != NULL && !replace)
    {
      g_task_return_new_error (task, KP_CLIENTS_ERROR, KP_CLIENTS_ERROR_EXISTS,
                               "There is a client named “%s” already.", checked);
      return;
    }
  if (client == NULL)
    {
      if (self->clients->len >= MAX_CLIENTS)
        {
          g_task_return_new_error (task, KP_CLIENTS_ERROR, KP_CLIENTS_ERROR_INVALID,
                                   "Keypool keeps at most %d clients.", MAX_CLIENTS);
          return;
        }
      /* The name is taken at once; the token works once it is stored. */
      client = g_new0 (Client, 1);
      client->id = self->next_id++;
      client->name = g_steal_pointer (&checked);
      client->created = g_get_real_time () / G_USEC_PER_SEC;
      g_ptr_array_add (self->clients, client);
      add->created = TRUE;
    }
  add->id = client->id;

  add->token = kp_access_token_generate (&error);
  if (add->token == NULL)
    {
      if (add->created)
        drop_client (self, add->id);
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }

  credential = vault_credential (client->id);
  label = g_strdup_printf ("Keypool client token: %s", client->name);
  kp_vault_store_async (self->vault, VAULT_PROVIDER, credential, label, add->token,
                        cancellable, on_token_stored, g_steal_pointer (&task));
}

/**
 * kp_clients_add_finish:
 * @id: (out) (optional): the client's id
 *
 * Returns: (transfer full): the new token: show it once, then wipe it
 *   (kp_secret_wipe())
 */
char *
kp_clients_add_finish (KpClients     *self,
                       GAsyncResult  *result,
                       guint         *id,
                       GError       **error)
{
  AddData *add;

  g_return_val_if_fail (g_task_is_valid (result, self), NULL);

  add = g_task_get_task_data (G_TASK (result));
  if (id != NULL)
    *id = add ? add->id : 0;
  return g_task_propagate_pointer (G_TASK (result), error);
}

/* Removing and renaming --------------------------------------------------------- */

static void
on_token_cleared (GObject      *object,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  KpClients *self = g_task_get_source_object (task);
  g_autoptr(GError) error = NULL;

  if (!kp_vault_clear_finish (self->vault, result, &error))
    g_task_return_new_error (task, KP_CLIENTS_ERROR, KP_CLIENTS_ERROR_KEYRING,
                             "The client is removed and its token refused, but the keyring "
                             "kept its copy: %s.", error->message);
  else
    g_task_return_boolean (task, TRUE);
}

/**
 * kp_clients_remove_async:
 * @name: the client's name
 *
 * Refuses the client's token at once, then clears it from the keyring.
 * What the client spent keeps its name.
 */
void
kp_clients_remove_async (KpClients           *self,
                         const char          *name,
                         GCancellable        *cancellable,
                         GAsyncReadyCallback  callback,
                         gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *credential = NULL;
  Client *client;

  g_return_if_fail (KP_IS_CLIENTS (self));
  g_return_if_fail (name != NULL);

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, kp_clients_remove_async);

  {
    g_autofree char *stripped = g_strstrip (g_strdup (name));

    client = find_by_name (self, stripped);
  }
  if (client == NULL)
    {
      g_task_return_new_error (task, KP_CLIENTS_ERROR, KP_CLIENTS_ERROR_NOT_FOUND,
                               "There is no client named “%s”; “keypool clients list” lists them.",
                               name);
      return;
    }

  client->removed = TRUE;
  client->has_digest = FALSE;
  explicit_bzero (client->digest, sizeof client->digest);
  g_signal_emit (self, signals[CHANGED], 0);
  if (!save (self, &error))
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }

  credential = vault_credential (client->id);
  kp_vault_clear_async (self->vault, credential, cancellable, on_token_cleared,
                        g_steal_pointer (&task));
}

gboolean
kp_clients_remove_finish (KpClients     *self,
                          GAsyncResult  *result,
                          GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

gboolean
kp_clients_rename (KpClients   *self,
                   const char  *name,
                   const char  *new_name,
                   GError     **error)
{
  g_autofree char *stripped = NULL;
  g_autofree char *checked = NULL;
  Client *client;
  Client *other;

  g_return_val_if_fail (KP_IS_CLIENTS (self), FALSE);
  g_return_val_if_fail (name != NULL, FALSE);

  stripped = g_strstrip (g_strdup (name));
  client = find_by_name (self, stripped);
  if (client == NULL)
    {
      g_set_error (error, KP_CLIENTS_ERROR, KP_CLIENTS_ERROR_NOT_FOUND,
                   "There is no client named “%s”; “keypool clients list” lists them.", name);
      return FALSE;
    }
  checked = check_name (new_name, error);
  if (checked == NULL)
    return FALSE;
  other = find_by_name (self, checked);
  if (other != NULL && other != client)
    {
      g_set_error (error, KP_CLIENTS_ERROR, KP_CLIENTS_ERROR_EXISTS,
                   "There is a client named “%s” already.", checked);
      return FALSE;
    }

  g_free (client->name);
  client->name = g_steal_pointer (&checked);
  if (!save (self, error))
    return FALSE;
  g_signal_emit (self, signals[CHANGED], 0);
  return TRUE;
}
