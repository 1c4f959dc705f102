/* codex.mjs: Codex CLI itself (`codex exec`) against a real Keypool
 *
 * Runs the `@openai/codex` package's program non-interactively with a
 * temporary CODEX_HOME whose config.toml names Keypool as its model
 * provider (wire_api "responses"), answered through tests/mock-upstream
 * (see harness.mjs). Provider "openai" serves the Responses API, so
 * Codex's requests pass through; "chatonly" and "anthro" make Keypool
 * translate them to Chat and to Anthropic Messages.
 *
 * The machine that runs this may have no internet, and a test must not
 * use it: the config turns off what Codex fetches by itself (analytics,
 * the plugin marketplace), and every run goes through a trap proxy that
 * refuses and records any connection that is not to 127.0.0.1.
 *
 * Codex's program comes from an optional platform package
 * (@openai/codex-linux-x64, …); where it is missing the tests are skipped
 * with the reason.
 *
 * Needs (from the environment, as meson's test() sets them):
 *   KEYPOOL_TEST_BINARY     path of the keypool program
 *   KEYPOOL_MOCK_UPSTREAM   path of the tests/mock-upstream program
 *
 * Keep this runnable on Node 18 (Debian 12's nodejs).
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { findNpmProgram, randomHex, runNpmProgram, startGateway, startTrapProxy } from './harness.mjs';

const CODEX_TIMEOUT_MS = 60000;
const MOCK_TEXT = 'tok0 tok1 tok2 tok3 tok4 ';

const require = createRequire(import.meta.url);

const codex = findNpmProgram('codex', () => require.resolve('@openai/codex/bin/codex.js'), true);

let gateway;
let trap;
let tempDir;

before(async () => {
  if (codex.skip)
    return;

  gateway = await startGateway({
    testName: 'client-codex',
    mockArgs: ['--chunks', '5'],
    providers: (mockURL) => [
      {
        schema: 1, id: 'openai', name: 'Mock OpenAI', dialect: 'openai', base_url: mockURL,
        auth: 'bearer', env: ['KP_CODEX_OPENAI_KEY'], apis: { 'openai-responses': true },
        models: [
          /* Codex asks for gpt-5-codex by default. */
          { id: 'openai/gpt-5-codex', upstream_id: 'mock-text', input: 1.25, output: 10 },
          /* The mock's Responses side calls the first function tool. */
          { id: 'openai/codex-tools', upstream_id: 'mock-chat', input: 1.25, output: 10 },
        ],
      },
      {
        schema: 1, id: 'chatonly', name: 'Mock Chat', dialect: 'openai', base_url: mockURL,
        auth: 'bearer', env: ['KP_CODEX_CHAT_KEY'],
        models: [{ id: 'chatonly/agent', upstream_id: 'mock-agent', input: 1, output: 2 }],
      },
      {
        schema: 1, id: 'anthro', name: 'Mock Anthropic', dialect: 'anthropic', base_url: mockURL,
        auth: { type: 'header', name: 'x-api-key' }, env: ['KP_CODEX_ANTHRO_KEY'],
        models: [{ id: 'anthro/claude', upstream_id: 'claude-text', input: 3, output: 15 }],
      },
    ],
    keys: {
      KP_CODEX_OPENAI_KEY: 'sk-openai-' + randomHex(8),
      KP_CODEX_CHAT_KEY: 'sk-chat-' + randomHex(8),
      KP_CODEX_ANTHRO_KEY: 'sk-anthro-' + randomHex(8),
    },
  });
  trap = await startTrapProxy();
  tempDir = mkdtempSync(join(tmpdir(), 'keypool-codex-test-'));
});

after(async () => {
  if (trap)
    await trap.close();
  if (gateway)
    await gateway.stop();
  if (tempDir)
    rmSync(tempDir, { recursive: true, force: true });
});

/* Helpers --------------------------------------------------------------- */

function show(value) {
  return JSON.stringify(value, null, 1);
}

/* A CODEX_HOME with Keypool as the model provider. */
function codexHome(name) {
  const home = join(tempDir, name);
  mkdirSync(join(home, 'codex'), { recursive: true });
  writeFileSync(join(home, 'codex', 'config.toml'), `\
model = "gpt-5-codex"
model_provider = "keypool"
check_for_update_on_startup = false

# Nothing leaves the machine: no usage analytics (ab.chatgpt.com), no
# plugin marketplace (github.com, api.github.com, chatgpt.com).
[analytics]
enabled = false

[features]
plugins = false

[model_providers.keypool]
name = "Keypool"
base_url = "${gateway.baseURL}"
env_key = "KEYPOOL_CODEX_TOKEN"
wire_api = "responses"
`);
  return home;
}

/* Runs `codex exec --json PROMPT`; resolves with { code, signal, events,
 * stdout, stderr }.  The environment is Codex's own: no key of the
 * developer's leaks in, and every proxy variable points at the trap.
 */
async function runCodex(name, prompt, extraArgs = []) {
  const home = codexHome(name);
  const work = join(home, 'work');
  mkdirSync(work);
  const env = {
    PATH: process.env.PATH,
    HOME: home,
    CODEX_HOME: join(home, 'codex'),
    KEYPOOL_CODEX_TOKEN: gateway.token,
    ...trap.env,
  };
  const run = await runNpmProgram(codex, ['exec', '--skip-git-repo-check', '--json', '--ephemeral',
                                          ...extraArgs, prompt],
                                  { cwd: work, env, timeoutMs: CODEX_TIMEOUT_MS });
  const events = run.stdout.split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line));
  return { ...run, events };
}

/* The run ended well: exit 0, a completed turn, no error event, and no
 * attempt to leave the machine.  Returns the agent's last message.
 */
function checkRun(run, trapBefore) {
  const what = `--- stdout ---\n${run.stdout}\n--- stderr ---\n${run.stderr}`;

  assert.equal(run.code, 0, `codex exec exited ${run.code} (signal ${run.signal})\n${what}`);
  assert.ok(run.events.some((event) => event.type === 'turn.completed'), `no turn.completed\n${what}`);
  assert.ok(!run.events.some((event) => event.type === 'turn.failed' || event.type === 'error'),
            `an error event\n${what}`);
  assert.deepEqual(trap.attempts.slice(trapBefore), [],
                   'Codex tried to reach the network beyond Keypool; turn that off in its config');

  const messages = run.events.filter((event) => event.type === 'item.completed' &&
                                                event.item.type === 'agent_message');
  assert.ok(messages.length > 0, `no agent_message\n${what}`);
  return { text: messages.at(-1).item.text, usage: run.events.find((e) => e.type === 'turn.completed').usage };
}

function skipUnlessCodex(t) {
  if (codex.skip) {
    t.skip(codex.skip);
    return true;
  }
  return false;
}

/* Tests --------------------------------------------------------------------- */

test('codex exec answers through Keypool, passed through to a Responses provider', async (t) => {
  if (skipUnlessCodex(t))
    return;
  const trapBefore = trap.attempts.length;
  const seen = (await gateway.upstreamRequests()).length;

  const run = await runCodex('plain', 'Say hi.');
  const { text, usage } = checkRun(run, trapBefore);

  assert.equal(text, MOCK_TEXT);
  assert.equal(usage.input_tokens, 11);
  assert.equal(usage.output_tokens, 5);

  /* What Codex sends, as it reached the provider: the lead reads this. */
  const sent = (await gateway.upstreamRequests()).slice(seen);
  assert.equal(sent.length, 1, show(sent.map((request) => request.path)));
  const body = sent[0].body;
  assert.equal(sent[0].path, '/v1/responses');
  assert.equal(body.model, 'mock-text');
  assert.equal(body.stream, true);
  assert.equal(body.store, false);
  assert.ok(Array.isArray(body.input) && body.input.length > 0, show(body.input));
  assert.equal(body.input.at(-1).role, 'user');
  assert.ok(JSON.stringify(body.input.at(-1)).includes('Say hi.'), show(body.input.at(-1)));
  assert.equal(body.previous_response_id, undefined);
  assert.ok(body.tools.some((tool) => tool.type === 'function'), show(body.tools));
  t.diagnostic(`${codex.version} sent: ${show({
    fields: Object.keys(body).sort(),
    tool_types: [...new Set(body.tools.map((tool) => tool.type))],
    tools: body.tools.map((tool) => tool.name ?? tool.type),
    reasoning: body.reasoning, include: body.include, store: body.store,
    input: body.input.map((item) => `${item.type}/${item.role ?? ''}`),
  })}`);
});

test('codex exec runs a tool round trip, passed through', async (t) => {
  if (skipUnlessCodex(t))
    return;
  const trapBefore = trap.attempts.length;
  const seen = (await gateway.upstreamRequests()).length;

  /* The mock calls Codex's first function tool with arguments it cannot
   * use ({"city": "Paris"}), so Codex runs nothing and reports that back
   * as the call's output.
   */
  const run = await runCodex('tools', 'What is the weather in Paris?', ['-m', 'openai/codex-tools']);
  const { text } = checkRun(run, trapBefore);

  assert.match(text, /^The tool said: /);
  const sent = (await gateway.upstreamRequests()).slice(seen);
  assert.equal(sent.length, 2, show(sent.map((request) => request.path)));
  const output = sent[1].body.input.at(-1);
  assert.equal(output.type, 'function_call_output', show(sent[1].body.input.slice(-2)));
  assert.equal(output.call_id, 'call_mock_r1');
  const call = sent[1].body.input.at(-2);
  assert.equal(call.type, 'function_call');
  assert.equal(call.call_id, 'call_mock_r1');
});

test('codex exec runs a tool round trip, translated to Chat', async (t) => {
  if (skipUnlessCodex(t))
    return;
  const trapBefore = trap.attempts.length;
  const seen = (await gateway.upstreamRequests()).length;

  const run = await runCodex('chat', 'What is the weather in Paris?', ['-m', 'chatonly/agent']);
  const { text } = checkRun(run, trapBefore);

  assert.match(text, /^The tool said: /);
  const sent = (await gateway.upstreamRequests()).slice(seen);
  assert.deepEqual(sent.map((request) => request.path), ['/v1/chat/completions', '/v1/chat/completions']);
  assert.ok(sent[0].body.tools.length > 0, 'Codex\'s function tools did not reach the provider');
  for (const tool of sent[0].body.tools)
    assert.equal(tool.type, 'function', show(tool));
  const messages = sent[1].body.messages;
  assert.equal(messages.at(-1).role, 'tool', show(messages.slice(-2)));
  assert.equal(messages.at(-1).tool_call_id, 'call_mock_a1');
  assert.equal(messages.at(-2).tool_calls[0].id, 'call_mock_a1');
});

test('codex exec answers through Keypool, translated to Anthropic', async (t) => {
  if (skipUnlessCodex(t))
    return;
  const trapBefore = trap.attempts.length;
  const seen = (await gateway.upstreamRequests()).length;

  const run = await runCodex('anthropic', 'Say hi.', ['-m', 'anthro/claude']);
  const { text } = checkRun(run, trapBefore);

  assert.equal(text, 'Hello from Anthropic');
  const sent = (await gateway.upstreamRequests()).slice(seen);
  assert.deepEqual(sent.map((request) => request.path), ['/v1/messages']);
  assert.equal(sent[0].body.model, 'claude-text');
  assert.ok(sent[0].body.max_tokens > 0);
});
