/* kp-connect-tools.c: the tools `keypool connect` knows, one table each
 *
 * What each tool reads, and where: adding a tool is one table here and one
 * line in the list. A tool counts as installed when its program is on PATH,
 * or where it has none (an editor extension) by its markers; its settings
 * folder counts only with more in it than connecting makes. The models are
 * strong coding models, the tool's own family first; Keypool picks the
 * cheapest the user's keys serve now.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#define G_LOG_DOMAIN "keypool"

#include "config.h"

#include "kp-connect.h"

#include <string.h>

/* Claude Code: `env` in ~/.claude/settings.json. ANTHROPIC_AUTH_TOKEN is
 * sent as a bearer token; Anthropic's clients add /v1 to the base URL.
 */
static const char * const claude_programs[] = { "claude", NULL };
static const char * const claude_url[] = { "env", "ANTHROPIC_BASE_URL", NULL };
static const char * const claude_token[] = { "env", "ANTHROPIC_AUTH_TOKEN", NULL };
static const char * const claude_model[] = { "env", "ANTHROPIC_MODEL", NULL };
static const char * const claude_models[] = {
  "anthropic/claude-sonnet-5", "anthropic/claude-sonnet-4", "openai/gpt-5-codex", "openai/gpt-5",
  "google/gemini-2.5-pro", "qwen/qwen3-coder", "deepseek/deepseek-v4-pro", NULL
};

static const KpConnectEntry claude_entries[] = {
  { { "env", "ANTHROPIC_BASE_URL" }, "@ROOT@", FALSE },
  { { "env", "ANTHROPIC_AUTH_TOKEN" }, "@TOKEN@", FALSE },
  { { "env", "ANTHROPIC_MODEL" }, "@MODEL@", FALSE },
  /* Its quick background calls, too, go to a model Keypool serves. */
  { { "env", "ANTHROPIC_SMALL_FAST_MODEL" }, "@MODEL@", FALSE },
  { { NULL } }
};

static const KpConnectFile claude_files[] = {
  { ".claude/settings.json", &kp_conf_format_json, NULL, claude_entries },
  { NULL }
};

static const KpConnectTool claude_code = {
  .id = "claude-code",
  .name = "Claude Code",
  .files = claude_files,
  .programs = claude_programs,
  .url_path = claude_url,
  .token_path = claude_token,
  .model_path = claude_model,
  .models = claude_models,
};

/* Codex CLI: a model provider in ~/.codex/config.toml, on the Responses
 * wire. The token is its experimental_bearer_token: in the file, never on
 * a command line or in the environment of every shell.
 */
static const char * const codex_programs[] = { "codex", NULL };
static const char * const codex_url[] = { "model_providers.keypool", "base_url", NULL };
static const char * const codex_token[] = { "model_providers.keypool", "experimental_bearer_token", NULL };
static const char * const codex_model[] = { "model", NULL };
static const char * const codex_models[] = {
  "openai/gpt-5-codex", "openai/gpt-5", "anthropic/claude-sonnet-5", "anthropic/claude-sonnet-4",
  "google/gemini-2.5-pro", "qwen/qwen3-coder", "deepseek/deepseek-v4-pro", NULL
};

static const KpConnectEntry codex_entries[] = {
  { { "model" }, "@MODEL@", FALSE },
  { { "model_provider" }, "keypool", FALSE },
  { { "model_providers.keypool", "name" }, "Keypool", FALSE },
  { { "model_providers.keypool", "base_url" }, "@URL@", FALSE },
  { { "model_providers.keypool", "wire_api" }, "responses", FALSE },
  { { "model_providers.keypool", "experimental_bearer_token" }, "@TOKEN@", FALSE },
  { { NULL } }
};

static const KpConnectFile codex_files[] = {
  { ".codex/config.toml", &kp_conf_format_toml, NULL, codex_entries },
  { NULL }
};

static const KpConnectTool codex = {
  .id = "codex",
  .name = "Codex",
  .files = codex_files,
  .programs = codex_programs,
  .url_path = codex_url,
  .token_path = codex_token,
  .model_path = codex_model,
  .models = codex_models,
};

/* Gemini CLI: the URL, the key and the model in ~/.gemini/.env (Google's
 * SDK adds /v1beta to the base URL), and the API-key sign-in chosen in
 * ~/.gemini/settings.json: with a base URL and no sign-in chosen, Gemini
 * CLI takes the "gateway" kind, which it then refuses.
 */
static const char * const gemini_programs[] = { "gemini", NULL };
static const char * const gemini_url[] = { "GOOGLE_GEMINI_BASE_URL", NULL };
static const char * const gemini_token[] = { "GEMINI_API_KEY", NULL };
static const char * const gemini_model[] = { "GEMINI_MODEL", NULL };
static const char * const gemini_models[] = {
  "google/gemini-2.5-pro", "google/gemini-3.1-pro-preview", "anthropic/claude-sonnet-5",
  "openai/gpt-5", "qwen/qwen3-coder", "deepseek/deepseek-v4-pro", NULL
};

static const KpConnectEntry gemini_entries[] = {
  { { "GOOGLE_GEMINI_BASE_URL" }, "@ROOT@", FALSE },
  { { "GEMINI_API_KEY" }, "@TOKEN@", FALSE },
  { { "GEMINI_MODEL" }, "@MODEL@", FALSE },
  { { NULL } }
};

static const KpConnectEntry gemini_settings_entries[] = {
  { { "security", "auth", "selectedType" }, "gemini-api-key", FALSE },
  { { NULL } }
};

static const KpConnectFile gemini_files[] = {
  { ".gemini/.env", &kp_conf_format_dotenv, NULL, gemini_entries },
  { ".gemini/settings.json", &kp_conf_format_json, NULL, gemini_settings_entries },
  { NULL }
};

static const KpConnectTool gemini_cli = {
  .id = "gemini-cli",
  .name = "Gemini CLI",
  .files = gemini_files,
  .programs = gemini_programs,
  .url_path = gemini_url,
  .token_path = gemini_token,
  .model_path = gemini_model,
  .models = gemini_models,
  /* It reads ~/.gemini/.env only in a folder the user trusts (it asks). */
  .note = "Gemini CLI reads ~/.gemini/.env only in folders you trust: when it asks, trust "
          "the folder you work in.",
};

/* Continue: an OpenAI-compatible model named "Keypool" in config.yaml. */
static const char * const continue_programs[] = { "cn", NULL };
/* Continue is mostly an editor extension: VS Code's, VSCodium's, Cursor's. */
static const char * const continue_markers[] = {
  ".vscode/extensions/continue.continue-*", ".vscode-oss/extensions/continue.continue-*",
  ".cursor/extensions/continue.continue-*", ".continue", NULL
};
static const char * const continue_url[] = { "models", "name=Keypool", "apiBase", NULL };
static const char * const continue_token[] = { "models", "name=Keypool", "apiKey", NULL };
static const char * const continue_model[] = { "models", "name=Keypool", "model", NULL };
static const char * const coding_models[] = {
  "anthropic/claude-sonnet-5", "openai/gpt-5-codex", "anthropic/claude-sonnet-4", "openai/gpt-5",
  "google/gemini-2.5-pro", "qwen/qwen3-coder", "deepseek/deepseek-v4-pro", NULL
};

static const KpConnectEntry continue_entries[] = {
  { { "models", "name=Keypool" },
    "- name: Keypool\n"
    "  provider: openai\n"
    "  model: @MODEL@\n"
    "  apiBase: @URL@\n"
    "  apiKey: @TOKEN@\n"
    "  roles:\n"
    "    - chat\n"
    "    - edit\n"
    "    - apply\n", TRUE },
  { { NULL } }
};

static const KpConnectFile continue_files[] = {
  { ".continue/config.yaml", &kp_conf_format_yaml,
    "name: Local Config\nversion: 1.0.0\nschema: v1\n", continue_entries },
  { NULL }
};

static const KpConnectTool continue_tool = {
  .id = "continue",
  .name = "Continue",
  .files = continue_files,
  .programs = continue_programs,
  .markers = continue_markers,
  .url_path = continue_url,
  .token_path = continue_token,
  .model_path = continue_model,
  .models = coding_models,
};

/* aider: ~/.aider.conf.yml; aider names OpenAI-compatible models "openai/…". */
static const char * const aider_programs[] = { "aider", NULL };
static const char * const aider_url[] = { "openai-api-base", NULL };
static const char * const aider_token[] = { "openai-api-key", NULL };
static const char * const aider_model[] = { "model", NULL };

static const KpConnectEntry aider_entries[] = {
  { { "openai-api-base" }, "@URL@", FALSE },
  { { "openai-api-key" }, "@TOKEN@", FALSE },
  { { "model" }, "openai/@MODEL@", FALSE },
  { { NULL } }
};

static const KpConnectFile aider_files[] = {
  { ".aider.conf.yml", &kp_conf_format_yaml, NULL, aider_entries },
  { NULL }
};

static const KpConnectTool aider = {
  .id = "aider",
  .name = "aider",
  .files = aider_files,
  .programs = aider_programs,
  .url_path = aider_url,
  .token_path = aider_token,
  .model_path = aider_model,
  .model_prefix = "openai/",
  .models = coding_models,
};

/* opencode: a "keypool" provider through @ai-sdk/openai-compatible. */
static const char * const opencode_programs[] = { "opencode", NULL };
static const char * const opencode_url[] = { "provider", "keypool", "options", "baseURL", NULL };
static const char * const opencode_token[] = { "provider", "keypool", "options", "apiKey", NULL };
static const char * const opencode_model[] = { "model", NULL };

static const KpConnectEntry opencode_entries[] = {
  { { "provider", "keypool" },
    "{\"npm\": \"@ai-sdk/openai-compatible\", \"name\": \"Keypool\", "
    "\"options\": {\"baseURL\": @URL@, \"apiKey\": @TOKEN@}, \"models\": {@MODEL@: {}}}", TRUE },
  { { "model" }, "keypool/@MODEL@", FALSE },
  { { NULL } }
};

static const KpConnectFile opencode_files[] = {
  { ".config/opencode/opencode.json", &kp_conf_format_json,
    "{\"$schema\": \"https://opencode.ai/config.json\"}", opencode_entries },
  { NULL }
};

static const KpConnectTool opencode = {
  .id = "opencode",
  .name = "opencode",
  .files = opencode_files,
  .programs = opencode_programs,
  .url_path = opencode_url,
  .token_path = opencode_token,
  .model_path = opencode_model,
  .model_prefix = "keypool/",
  .models = coding_models,
};

static const KpConnectTool * const tools[] = {
  &claude_code, &codex, &gemini_cli, &continue_tool, &aider, &opencode, NULL
};

/**
 * kp_connect_get_tools:
 *
 * Returns: (array zero-terminated=1): every tool Keypool can connect
 */
const KpConnectTool * const *
kp_connect_get_tools (void)
{
  return tools;
}

const KpConnectTool *
kp_connect_lookup (const char *id)
{
  for (guint i = 0; tools[i] != NULL; i++)
    if (g_str_equal (tools[i]->id, id))
      return tools[i];
  return NULL;
}
