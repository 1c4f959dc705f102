/* gemini-cli.mjs: Gemini CLI itself, run non-interactively against Keypool
 *
 * Gemini CLI started with GEMINI_API_KEY=<Keypool's token> and
 * GOOGLE_GEMINI_BASE_URL=<Keypool> must be served by any provider that
 * serves the model: a Gemini one (its bytes passed through) and an OpenAI
 * one (translated both ways, with Gemini CLI's whole tool list).
 *
 * @google/gemini-cli is pinned in package.json (about 100 MB; `npm ci` in
 * tests/clients installs it); KEYPOOL_GEMINI_CLI may point at another
 * bundle/gemini.js. It needs Node 20: on an older Node (Debian 12's is 18)
 * or without it the tests are skipped, and say why.
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { randomHex, startGateway } from './harness.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const bundle = process.env.KEYPOOL_GEMINI_CLI ||
  join(here, 'node_modules', '@google', 'gemini-cli', 'bundle', 'gemini.js');
const nodeMajor = Number(process.versions.node.split('.')[0]);
const skip = !existsSync(bundle)
  ? '@google/gemini-cli is not installed: run `npm ci` in tests/clients'
  : nodeMajor < 20 ? `Gemini CLI needs Node 20 or later; this is ${process.versions.node}` : false;

let gateway;
let home;

before(async () => {
  if (skip)
    return;
  gateway = await startGateway({
    testName: 'client-gemini-cli',
    providers: (mockURL) => [
      {
        id: 'gem', name: 'Gem', dialect: 'gemini', base_url: mockURL.replace(/\/v1$/, '/v1beta'),
        auth: { type: 'header', name: 'x-goog-api-key' }, env: ['KP_CLI_GEM_KEY'], models_prefix: 'models/',
        models: [{ id: 'google/gemini-2.5-flash', upstream_id: 'gemini-text', input: 0.3, output: 2.5 }],
      },
      {
        id: 'oai', name: 'Oai', dialect: 'openai', base_url: mockURL, auth: 'bearer', env: ['KP_CLI_OAI_KEY'],
        models: [{ id: 'other/gemini-2.5-pro', upstream_id: 'mock-chat', input: 1, output: 2 }],
      },
    ],
    keys: { KP_CLI_GEM_KEY: 'AIza-cli-' + randomHex(8), KP_CLI_OAI_KEY: 'sk-cli-' + randomHex(8) },
  });
  home = mkdtempSync(join(tmpdir(), 'keypool-gemini-cli-'));
  mkdirSync(join(home, '.gemini'));
  writeFileSync(join(home, '.gemini', 'settings.json'), JSON.stringify({
    security: { auth: { selectedType: 'gemini-api-key' } },
    privacy: { usageStatisticsEnabled: false },
    telemetry: { enabled: false },
  }));
});

after(async () => {
  if (gateway)
    await gateway.stop();
  if (home)
    rmSync(home, { recursive: true, force: true });
});

function runCli(model, prompt) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [bundle, '-m', model, '-p', prompt], {
      cwd: home,
      env: {
        PATH: process.env.PATH, HOME: home, CI: 'true', NO_COLOR: '1',
        GEMINI_API_KEY: gateway.token, GOOGLE_GEMINI_BASE_URL: gateway.origin,
        GEMINI_CLI_TRUST_WORKSPACE: 'true',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), 90000);
    child.stdout.on('data', (data) => { stdout += data; });
    child.stderr.on('data', (data) => { if (stderr.length < 65536) stderr += data; });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

async function lastMockRequest() {
  const requests = await gateway.upstreamRequests();
  return requests[requests.length - 1];
}

test('Gemini CLI on a Gemini provider', { skip }, async () => {
  const run = await runCli('gemini-2.5-flash', 'Say hello.');
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /Hello from Gemini/);
  const request = await lastMockRequest();
  assert.equal(request.path, '/v1beta/models/gemini-text:streamGenerateContent');
  assert.ok(request.body.contents.length > 0);
  assert.ok(!JSON.stringify(request).includes(gateway.token));
});

test('Gemini CLI on an OpenAI provider, translated', { skip }, async () => {
  const run = await runCli('gemini-2.5-pro', 'Say hello.');
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /tok0 tok1/);
  const request = await lastMockRequest();
  assert.equal(request.path, '/v1/chat/completions');
  assert.equal(request.body.messages[0].role, 'system');
  assert.ok(request.body.tools.length > 0, 'Gemini CLI\'s tools reach the provider');
  for (const tool of request.body.tools)
    assert.equal(tool.function.parameters.type, 'object', JSON.stringify(tool));
});
