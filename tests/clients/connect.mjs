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

import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { randomHex, startGateway } from './harness.mjs';

const RUN_TIMEOUT_MS = 90000;
const require = createRequire(import.meta.url);

/* A program of an npm package, or why it cannot run here. */
function findProgram(name, resolveProgram, viaNode) {
  let program;
  try {
    program = resolveProgram();
  } catch {
    return { skip: `${name} is not installed: run \`npm ci\` in tests/clients` };
  }
  const args = viaNode ? [program, '--version'] : ['--version'];
  const probe = spawnSync(viaNode ? process.execPath : program, args, { encoding: 'utf8', timeout: 30000 });
  if (probe.status !== 0) {
    const why = (probe.stderr || probe.stdout || '').trim().split('\n').at(-1);
    return { skip: `\`${name} --version\` failed here (${probe.error?.message ?? 'exit ' + probe.status}): ${why}` };
  }
  return { program, viaNode, version: probe.stdout.trim() };
}

const codex = findProgram('codex', () => require.resolve('@openai/codex/bin/codex.js'), true);
const claude = findProgram('claude',
  () => join(dirname(require.resolve('@anthropic-ai/claude-code/package.json')), 'bin', 'claude.exe'), false);

let gateway;
let trap;
let home;

function startTrapProxy() {
  return new Promise((resolve) => {
    const attempts = [];
    const server = createServer((request, response) => {
      attempts.push(request.url);
      response.writeHead(403).end();
    });
    server.on('connect', (request, socket) => {
      attempts.push(request.url);
      socket.end('HTTP/1.1 403 Forbidden\r\n\r\n');
    });
    server.listen(0, '127.0.0.1', () => resolve({
      url: `http://127.0.0.1:${server.address().port}`,
      attempts,
      close: () => new Promise((done) => {
        server.closeAllConnections?.();
        server.close(done);
      }),
    }));
  });
}

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
    ],
    keys: {
      KP_CONNECT_OPENAI_KEY: 'sk-openai-' + randomHex(8),
      KP_CONNECT_ANTHRO_KEY: 'sk-anthro-' + randomHex(8),
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

async function upstreamRequests() {
  const response = await fetch(gateway.mockURL.replace(/\/v1$/, '') + '/mock/requests');
  assert.equal(response.status, 200, 'the mock does not show its requests');
  return (await response.json()).requests;
}

/* Runs a tool with only HOME, PATH and the trap in its environment. */
function runTool(tool, args, extraEnv = {}) {
  const work = join(home, 'work');
  mkdirSync(work, { recursive: true });
  const env = {
    PATH: process.env.PATH,
    HOME: home,
    HTTP_PROXY: trap.url, HTTPS_PROXY: trap.url, ALL_PROXY: trap.url,
    http_proxy: trap.url, https_proxy: trap.url, all_proxy: trap.url,
    NO_PROXY: '127.0.0.1,localhost', no_proxy: '127.0.0.1,localhost',
    ...extraEnv,
  };
  const command = tool.viaNode ? process.execPath : tool.program;
  const argv = tool.viaNode ? [tool.program, ...args] : args;

  return new Promise((resolve, reject) => {
    const child = spawn(command, argv, { cwd: work, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${command} did not end within ${RUN_TIMEOUT_MS} ms\n` +
                       `--- stdout ---\n${stdout}\n--- stderr ---\n${stderr}`));
    }, RUN_TIMEOUT_MS);
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (data) => { stdout += data; });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (data) => { stderr += data; });
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
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
  const seen = (await upstreamRequests()).length;
  const run = await runTool(codex, ['exec', '--skip-git-repo-check', '--json', '--ephemeral', 'Say hi.']);
  const what = `--- stdout ---\n${run.stdout}\n--- stderr ---\n${run.stderr}`;
  assert.equal(run.code, 0, `codex exec exited ${run.code}\n${what}`);
  assert.ok(run.stdout.includes('"turn.completed"'), `no turn.completed\n${what}`);
  assert.deepEqual(trap.attempts.slice(trapBefore), [], 'Codex tried to reach the network');
  const sent = (await upstreamRequests()).slice(seen);
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
  const seen = (await upstreamRequests()).length;
  const run = await runTool(claude, ['-p', 'Say hi.'], {
    DISABLE_AUTOUPDATER: '1',
    DISABLE_TELEMETRY: '1',
    DISABLE_ERROR_REPORTING: '1',
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
  });
  const what = `--- stdout ---\n${run.stdout}\n--- stderr ---\n${run.stderr}`;
  assert.equal(run.code, 0, `claude -p exited ${run.code}\n${what}`);
  assert.match(run.stdout, /Hello/, what);
  const sent = (await upstreamRequests()).slice(seen);
  assert.ok(sent.some((request) => request.path === '/v1/messages' && request.body.model === 'claude-text'),
            JSON.stringify(sent.map((request) => request.path)));
  t.diagnostic(`${claude.version}: ${sent.length} requests upstream; ` +
               `${trap.attempts.length - trapBefore} refused by the trap proxy`);

  const gone = keypool('disconnect', 'claude-code');
  assert.equal(gone.code, 0, gone.stderr);
  assert.ok(!existsSync(path), 'the settings file Keypool made is still there');
});
