/* connect.mjs: `keypool connect` sets up the real tools, which then work
 *
 * Runs inside tests/session.sh --keyring (client tokens live in the
 * keyring). Keypool runs with a temporary HOME; `keypool connect TOOL`
 * (carried out by the running Keypool) writes the tool's own config there
 * with a client token of its own, and the real tool, run non-interactively
 * with that HOME and nothing else to authenticate with, answers through
 * Keypool and the mock upstream. `keypool disconnect` then puts the
 * user's file back byte for byte.
 *
 * Codex CLI (`codex exec`) and Claude Code (`claude -p`) come from npm; a
 * tool whose program is missing or cannot run here is skipped with the
 * reason. Every run goes through a trap proxy that refuses any connection
 * that is not to 127.0.0.1. No token is printed.
 *
 * Needs (from the environment, as meson's test() sets them):
 *   KEYPOOL_TEST_BINARY     path of the keypool program
 *   KEYPOOL_MOCK_UPSTREAM   path of the tests/mock-upstream program
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

import { spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { findNpmProgram, randomHex, runNpmProgram, startGateway, startTrapProxy } from './harness.mjs';

const RUN_TIMEOUT_MS = 90000;
const require = createRequire(import.meta.url);

const codex = findNpmProgram('codex', () => require.resolve('@openai/codex/bin/codex.js'), true);
const claude = findNpmProgram('claude',
  () => join(dirname(require.resolve('@anthropic-ai/claude-code/package.json')), 'bin', 'claude.exe'), false);
/* `gemini --version` alone takes half a minute on a busy machine: no probe. */
const gemini = findNpmProgram('gemini',
  () => join(dirname(require.resolve('@google/gemini-cli/package.json')), 'bundle', 'gemini.js'), true,
  { probe: false, minNode: 20 });

let gateway;
let trap;
let home;

before(async () => {
  home = mkdtempSync(join(tmpdir(), 'keypool-connect-home-'));
  gateway = await startGateway({
    testName: 'client-connect',
    keyring: true,
    home,
    providers: (mockURL) => [
      {
        schema: 1, id: 'openai', name: 'Mock OpenAI', dialect: 'openai', base_url: mockURL,
        auth: 'bearer', env: ['KP_CONNECT_OPENAI_KEY'], apis: { 'openai-responses': true },
        models: [{ id: 'openai/gpt-5-codex', upstream_id: 'mock-text', input: 1.25, output: 10 }],
      },
      {
        schema: 1, id: 'anthro', name: 'Mock Anthropic', dialect: 'anthropic', base_url: mockURL,
        auth: { type: 'header', name: 'x-api-key' }, env: ['KP_CONNECT_ANTHRO_KEY'],
        models: [{ id: 'anthropic/claude-sonnet-5', upstream_id: 'claude-text', input: 3, output: 15 }],
      },
      {
        /* As cheap as gpt-5-codex, so that Codex's own order picks that one. */
        schema: 1, id: 'gem', name: 'Mock Gemini', dialect: 'gemini',
        base_url: mockURL.replace(/\/v1$/, '/v1beta'), auth: { type: 'header', name: 'x-goog-api-key' },
        env: ['KP_CONNECT_GEM_KEY'], models_prefix: 'models/',
        models: [{ id: 'google/gemini-2.5-pro', upstream_id: 'gemini-text', input: 1.25, output: 10 }],
      },
    ],
    keys: {
      KP_CONNECT_OPENAI_KEY: 'sk-openai-' + randomHex(8),
      KP_CONNECT_ANTHRO_KEY: 'sk-anthro-' + randomHex(8),
      KP_CONNECT_GEM_KEY: 'AIza-gem-' + randomHex(8),
    },
  });
  trap = await startTrapProxy();
});

after(async () => {
  if (trap)
    await trap.close();
  if (gateway)
    await gateway.stop();
  if (home)
    rmSync(home, { recursive: true, force: true });
});

/* `keypool ARGS…`, carried out by the running Keypool. */
function keypool(...args) {
  const run = spawnSync(process.env.KEYPOOL_TEST_BINARY, args,
                        { env: gateway.env, encoding: 'utf8', timeout: 60000 });
  return { code: run.status, stdout: run.stdout ?? '', stderr: run.stderr ?? '' };
}

/* Runs a tool with only HOME, PATH and the trap in its environment. */
function runTool(tool, args, extraEnv = {}) {
  const work = join(home, 'work');
  mkdirSync(work, { recursive: true });
  const env = { PATH: process.env.PATH, HOME: home, ...trap.env, ...extraEnv };
  return runNpmProgram(tool, args, { cwd: work, env, timeoutMs: RUN_TIMEOUT_MS });
}

/* The last ledger rows of the client NAME, once there are at least COUNT. */
async function requestsOf(name, count) {
  const deadline = Date.now() + 30000;
  for (;;) {
    const run = keypool('requests', '--client', name, '--last', '20');
    assert.equal(run.code, 0, run.stderr);
    const rows = run.stdout.trim().split('\n').slice(1);
    if (rows.length >= count || Date.now() > deadline)
      return rows;
    await new Promise((done) => setTimeout(done, 100));
  }
}

/* `keypool connect ID EXTRA…`, which must succeed. */
function connect(id, extra = []) {
  const run = keypool('connect', id, ...extra);
  assert.equal(run.code, 0, `keypool connect ${id} failed: ${run.stderr}`);
  return run;
}

function checkToken(token, outputs) {
  assert.ok(token && token.length >= 32, 'no token in the tool\'s config');
  assert.notEqual(token, gateway.token, 'the tool got the main token, not one of its own');
  for (const output of outputs)
    assert.ok(!output.includes(token), 'the client token was printed');
}

test('keypool connect codex: codex exec answers through Keypool with its own token', async (t) => {
  if (codex.skip) {
    t.skip(codex.skip);
    return;
  }
  const path = join(home, '.codex', 'config.toml');
  /* The user's own settings, which must stay: nothing leaves the machine. */
  const mine = `\
# my settings
check_for_update_on_startup = false

[analytics]
enabled = false

[features]
plugins = false
`;
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, mine);

  const connected = connect('codex');
  assert.match(connected.stdout, /Model: openai\/gpt-5-codex\n/);
  const written = readFileSync(path, 'utf8');
  assert.ok(written.includes('[analytics]\nenabled = false\n'), written.replace(/token = ".*"/, 'token = …'));
  const token = /experimental_bearer_token = "([^"]+)"/.exec(written)?.[1];
  checkToken(token, [connected.stdout, connected.stderr]);

  const trapBefore = trap.attempts.length;
  const seen = (await gateway.upstreamRequests()).length;
  const run = await runTool(codex, ['exec', '--skip-git-repo-check', '--json', '--ephemeral', 'Say hi.']);
  const what = `--- stdout ---\n${run.stdout}\n--- stderr ---\n${run.stderr}`;
  assert.equal(run.code, 0, `codex exec exited ${run.code}\n${what}`);
  assert.ok(run.stdout.includes('"turn.completed"'), `no turn.completed\n${what}`);
  assert.deepEqual(trap.attempts.slice(trapBefore), [], 'Codex tried to reach the network');
  const sent = (await gateway.upstreamRequests()).slice(seen);
  assert.deepEqual(sent.map((request) => request.path), ['/v1/responses']);
  assert.equal(sent[0].body.model, 'mock-text');

  const again = connect('codex');
  assert.match(again.stdout, /already uses Keypool/);
  assert.equal(readFileSync(path, 'utf8'), written);

  const gone = keypool('disconnect', 'codex');
  assert.equal(gone.code, 0, gone.stderr);
  assert.equal(readFileSync(path, 'utf8'), mine);
});

test('keypool connect claude-code: claude -p answers through Keypool with its own token', async (t) => {
  if (claude.skip) {
    t.skip(claude.skip);
    return;
  }
  const path = join(home, '.claude', 'settings.json');
  assert.ok(!existsSync(path));

  const connected = connect('claude-code', ['--model', 'anthropic/claude-sonnet-5']);
  assert.match(connected.stdout, /Model: anthropic\/claude-sonnet-5\n/);
  const settings = JSON.parse(readFileSync(path, 'utf8'));
  assert.equal(settings.env.ANTHROPIC_BASE_URL, gateway.origin);
  assert.equal(settings.env.ANTHROPIC_MODEL, 'anthropic/claude-sonnet-5');
  checkToken(settings.env.ANTHROPIC_AUTH_TOKEN, [connected.stdout, connected.stderr]);

  const trapBefore = trap.attempts.length;
  const seen = (await gateway.upstreamRequests()).length;
  const run = await runTool(claude, ['-p', 'Say hi.'], {
    DISABLE_AUTOUPDATER: '1',
    DISABLE_TELEMETRY: '1',
    DISABLE_ERROR_REPORTING: '1',
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
  });
  const what = `--- stdout ---\n${run.stdout}\n--- stderr ---\n${run.stderr}`;
  assert.equal(run.code, 0, `claude -p exited ${run.code}\n${what}`);
  assert.match(run.stdout, /Hello/, what);
  const sent = (await gateway.upstreamRequests()).slice(seen);
  assert.ok(sent.some((request) => request.path === '/v1/messages' && request.body.model === 'claude-text'),
            JSON.stringify(sent.map((request) => request.path)));
  t.diagnostic(`${claude.version}: ${sent.length} requests upstream; ` +
               `${trap.attempts.length - trapBefore} refused by the trap proxy`);

  const gone = keypool('disconnect', 'claude-code');
  assert.equal(gone.code, 0, gone.stderr);
  assert.ok(!existsSync(path), 'the settings file Keypool made is still there');
});

test('keypool connect gemini-cli: gemini -p answers through Keypool with its own token', async (t) => {
  if (gemini.skip) {
    t.skip(gemini.skip);
    return;
  }
  const path = join(home, '.gemini', '.env');
  const settingsPath = join(home, '.gemini', 'settings.json');
  /* The user's own settings: one in the .env, and a settings.json without
   * a sign-in chosen; Gemini CLI works with nothing but what `keypool
   * connect` adds to them. Gemini CLI reads ~/.gemini/.env only in a
   * folder the user trusts (it asks, and keeps the answer in
   * trustedFolders.json): the work folder is one. Trusting is the user's
   * decision; Keypool does not make it. Usage statistics are off so that
   * nothing leaves the machine (Gemini CLI works without that too: the
   * trap proxy refuses them).
   */
  const mine = '# mine\nNO_BROWSER=true\n';
  const mySettings = JSON.stringify({
    ui: { theme: 'GitHub' }, privacy: { usageStatisticsEnabled: false }, security: { folderTrust: { enabled: true } },
  });
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, mine, { mode: 0o644 });
  writeFileSync(settingsPath, mySettings, { mode: 0o644 });
  writeFileSync(join(home, '.gemini', 'trustedFolders.json'), JSON.stringify({ [join(home, 'work')]: 'TRUST_FOLDER' }));

  const connected = connect('gemini-cli');
  assert.match(connected.stdout, /Model: google\/gemini-2\.5-pro\n/);
  assert.match(connected.stdout, /0600/, 'the message does not say the file is now private');
  const written = readFileSync(path, 'utf8');
  assert.equal(statSync(path).mode & 0o777, 0o600);
  assert.ok(written.startsWith(mine), written.replace(/GEMINI_API_KEY=.*/, 'GEMINI_API_KEY=…'));
  assert.match(written, new RegExp(`^GOOGLE_GEMINI_BASE_URL="?${gateway.origin}"?$`, 'm'));
  assert.match(written, /^GEMINI_MODEL="?google\/gemini-2\.5-pro"?$/m);
  const token = /^GEMINI_API_KEY="?([^"\n]+)"?$/m.exec(written)?.[1];
  checkToken(token, [connected.stdout, connected.stderr]);
  /* The API-key sign-in is chosen; the user's other settings stay. */
  const settings = JSON.parse(readFileSync(settingsPath, 'utf8'));
  assert.deepEqual(settings, {
    ui: { theme: 'GitHub' }, privacy: { usageStatisticsEnabled: false },
    security: { folderTrust: { enabled: true }, auth: { selectedType: 'gemini-api-key' } },
  });

  const trapBefore = trap.attempts.length;
  const seen = (await gateway.upstreamRequests()).length;
  const before = (await requestsOf('Gemini CLI', 0)).length;
  const run = await runTool(gemini, ['-p', 'Say hello.'], { CI: 'true', NO_COLOR: '1' });
  const what = `--- stdout ---\n${run.stdout}\n--- stderr ---\n${run.stderr}`;
  assert.equal(run.code, 0, `gemini -p exited ${run.code}\n${what}`);
  assert.match(run.stdout, /Hello from Gemini/, what);
  assert.deepEqual(trap.attempts.slice(trapBefore), [], 'Gemini CLI tried to reach the network');
  const sent = (await gateway.upstreamRequests()).slice(seen);
  assert.ok(sent.some((request) => request.path === '/v1beta/models/gemini-text:streamGenerateContent'),
            JSON.stringify(sent.map((request) => request.path)));
  for (const request of sent)
    assert.ok(!JSON.stringify(request).includes(token), 'the client token reached the provider');

  /* It came with Gemini CLI's own token: the ledger puts it on that client. */
  const rows = await requestsOf('Gemini CLI', before + 1);
  assert.ok(rows.length > before, 'no request of the client "Gemini CLI" in the ledger');
  assert.match(rows[0], /google\/gemini-2\.5-pro/);

  const writtenSettings = readFileSync(settingsPath, 'utf8');
  const again = connect('gemini-cli');
  assert.match(again.stdout, /already uses Keypool/);
  assert.equal(readFileSync(path, 'utf8'), written);
  assert.equal(readFileSync(settingsPath, 'utf8'), writtenSettings);

  const gone = keypool('disconnect', 'gemini-cli');
  assert.equal(gone.code, 0, gone.stderr);
  assert.equal(readFileSync(path, 'utf8'), mine);
  assert.equal(statSync(path).mode & 0o777, 0o644, 'disconnect did not put the file\'s mode back');
  assert.equal(readFileSync(settingsPath, 'utf8'), mySettings);
  assert.equal(statSync(settingsPath).mode & 0o777, 0o644);
});
