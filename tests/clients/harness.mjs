/* harness.mjs: what the client tests share
 *
 * Starts tests/mock-upstream and `keypool --headless --port 0` as child
 * processes, with provider files that point at the mock and keys that come
 * from the environment (no keyring), and stops them again.
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

import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const START_TIMEOUT_MS = 15000;
const STOP_TIMEOUT_MS = 5000;

/* Every child we start, so that even an aborted run does not leave them. */
const children = new Set();

process.on('exit', () => {
  for (const child of children) {
    try {
      process.kill(child.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
});

/* A random hex string of BYTES bytes, for tokens and keys. */
export function randomHex(bytes) {
  return randomBytes(bytes).toString('hex');
}

export function requireEnv(name, testName) {
  const value = process.env[name];
  if (!value)
    throw new Error(`${name} is not set: run this through 'meson test ${testName}', ` +
                    `or set ${name} to the built program's path`);
  return value;
}

/* Starts PROGRAM and resolves with { child, match, stderr() } once a stdout
 * line matches PATTERN.  The child is killed again if it never says so.
 */
export function startProgram(name, program, args, env, pattern) {
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let settled = false;

    children.add(child);
    child.once('exit', () => children.delete(child));

    const fail = (why) => {
      if (settled)
        return;
      settled = true;
      clearTimeout(timer);
      try {
        child.kill('SIGKILL');
      } catch {
        /* already gone */
      }
      reject(new Error(`${name}: ${why}\n--- stdout ---\n${stdout}\n--- stderr ---\n${stderr}`));
    };

    const timer = setTimeout(() => fail(`no matching line within ${START_TIMEOUT_MS} ms`),
                             START_TIMEOUT_MS);

    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (data) => {
      if (stderr.length < 64 * 1024)
        stderr += data;
    });
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (data) => {
      if (settled)
        return; /* keep draining the pipe */
      stdout += data;
      for (const line of stdout.split('\n').slice(0, -1)) {
        const match = pattern.exec(line);
        if (match) {
          settled = true;
          clearTimeout(timer);
          resolve({ child, match, stderr: () => stderr });
          return;
        }
      }
    });
    child.once('error', (error) => fail(`could not start ${program}: ${error.message}`));
    child.once('exit', (code, signal) => fail(`exited early (code ${code}, signal ${signal})`));
  });
}

/* Sends SIGTERM to this very child, and SIGKILL if it does not go. */
export function stopProgram(child) {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      resolve({ code: child.exitCode, signal: child.signalCode });
      return;
    }
    const timer = setTimeout(() => {
      try {
        child.kill('SIGKILL');
      } catch {
        /* already gone */
      }
    }, STOP_TIMEOUT_MS);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal });
    });
    child.kill('SIGTERM');
  });
}

/* Starts the mock and a Keypool in front of it.
 *
 *   testName    the meson test's name, for messages
 *   mockArgs    the mock's command line
 *   providers   (mockURL) => [provider object, …]; each becomes <id>.json
 *   keys        { ENV_NAME: key } for the providers' "env" lists
 *   keyring     true: use the session's keyring (run inside tests/session.sh
 *               --keyring), for what needs one, such as client tokens
 *   home        a HOME for Keypool, or none
 *
 * Resolves with { baseURL (…/v1), origin (without /v1), mockURL (…/v1),
 * token, env (Keypool's environment, for running `keypool <command>` on
 * the same data), stop(), upstreamRequests() (what reached the mock,
 * oldest first) }.  stop() may be called whatever happened before.
 */
export async function startGateway({ testName, mockArgs = [], providers, keys = {}, keyring = false,
                                    home = null }) {
  const keypoolBinary = requireEnv('KEYPOOL_TEST_BINARY', testName);
  const mockBinary = requireEnv('KEYPOOL_MOCK_UPSTREAM', testName);
  const tempDir = mkdtempSync(join(tmpdir(), 'keypool-client-test-'));
  let mock = null;
  let keypool = null;

  const stop = async () => {
    const stopped = [];
    if (keypool)
      stopped.push(stopProgram(keypool.child));
    if (mock)
      stopped.push(stopProgram(mock.child));
    await Promise.all(stopped);
    rmSync(tempDir, { recursive: true, force: true });
  };

  try {
    const providersDir = join(tempDir, 'providers');
    const configDir = join(tempDir, 'config');
    const xdgDir = join(tempDir, 'xdg');
    for (const dir of [providersDir, configDir, xdgDir])
      mkdirSync(dir);

    mock = await startProgram('mock-upstream', mockBinary, mockArgs, { ...process.env },
                              /^(http:\/\/127\.0\.0\.1:\d+\/v1)\s*$/);
    const mockURL = mock.match[1];

    for (const provider of providers(mockURL))
      writeFileSync(join(providersDir, provider.id + '.json'), JSON.stringify(provider, null, 2) + '\n');

    const token = 'kp-test-' + randomHex(16);
    const env = {
      ...process.env,
      ...keys,
      KEYPOOL_PROVIDERS_DIR: providersDir,
      KEYPOOL_CONFIG_DIR: configDir,
      KEYPOOL_TOKEN: token,
      KEYPOOL_DATA_DIR: join(tempDir, 'data'),
      ...(keyring ? {} : { KEYPOOL_NO_KEYRING: '1' }),
      ...(home ? { HOME: home } : {}),
      XDG_CONFIG_HOME: join(xdgDir, 'config'),
      XDG_DATA_HOME: join(xdgDir, 'data'),
      XDG_CACHE_HOME: join(xdgDir, 'cache'),
      XDG_STATE_HOME: join(xdgDir, 'state'),
    };
    keypool = await startProgram('keypool', keypoolBinary, ['--headless', '--port', '0'], env,
                                 /^Keypool is serving on (http:\/\/127\.0\.0\.1:\d+\/v1)\s*$/);
    const baseURL = keypool.match[1];

    /* The requests that reached the mock, oldest first. */
    const upstreamRequests = async () => {
      const response = await fetch(mockURL.replace(/\/v1$/, '') + '/mock/requests');
      if (response.status !== 200)
        throw new Error(`the mock does not show its requests (HTTP ${response.status})`);
      return (await response.json()).requests;
    };

    return { baseURL, origin: baseURL.replace(/\/v1$/, ''), mockURL, token, env, stop, upstreamRequests };
  } catch (error) {
    await stop();
    throw error;
  }
}

/* A program of an npm package, or why it cannot run here: { program,
 * viaNode, version } or { skip }.  RESOLVE returns the program's path (it
 * throws when the package is missing); VIA_NODE: it is a script for node;
 * PROBE: run `NAME --version` to see that it works; MIN_NODE: the oldest
 * Node major it runs on.
 */
export function findNpmProgram(name, resolve, viaNode, { probe: probeIt = true, minNode = 0 } = {}) {
  let program;
  try {
    program = resolve();
    if (!existsSync(program))
      throw new Error(program);
  } catch {
    return { skip: `${name} is not installed: run \`npm ci\` in tests/clients` };
  }
  const nodeMajor = Number(process.versions.node.split('.')[0]);
  if (nodeMajor < minNode)
    return { skip: `${name} needs Node ${minNode} or later; this is ${process.versions.node}` };
  if (!probeIt)
    return { program, viaNode, version: `${name} (not probed)` };
  const args = viaNode ? [program, '--version'] : ['--version'];
  const probe = spawnSync(viaNode ? process.execPath : program, args, { encoding: 'utf8', timeout: 30000 });
  if (probe.status !== 0) {
    const lines = (probe.stderr || probe.stdout || '').trim().split('\n');
    const why = lines.find((line) => /^\w*Error: /.test(line)) ?? lines.at(-1);
    return { skip: `\`${name} --version\` failed here (${probe.error?.message ?? 'exit ' + probe.status}): ${why}` };
  }
  return { program, viaNode, version: probe.stdout.trim() };
}

/* A proxy that lets nothing through, and remembers where a tool wanted to
 * go: { url, attempts, env (the proxy variables to give the tool), close() }.
 */
export function startTrapProxy() {
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
    server.listen(0, '127.0.0.1', () => {
      const url = `http://127.0.0.1:${server.address().port}`;
      resolve({
        url,
        attempts,
        env: {
          HTTP_PROXY: url, HTTPS_PROXY: url, ALL_PROXY: url,
          http_proxy: url, https_proxy: url, all_proxy: url,
          NO_PROXY: '127.0.0.1,localhost', no_proxy: '127.0.0.1,localhost',
        },
        close: () => new Promise((done) => {
          server.closeAllConnections?.();
          server.close(done);
        }),
      });
    });
  });
}

/* Runs TOOL (from findNpmProgram) with ARGS to its end; resolves with
 * { code, signal, stdout, stderr }, rejects when it takes over TIMEOUT_MS.
 */
export function runNpmProgram(tool, args, { cwd, env, timeoutMs = 90000 }) {
  const command = tool.viaNode ? process.execPath : tool.program;
  const argv = tool.viaNode ? [tool.program, ...args] : args;

  return new Promise((resolve, reject) => {
    const child = spawn(command, argv, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${tool.program} did not end within ${timeoutMs} ms\n` +
                       `--- stdout ---\n${stdout}\n--- stderr ---\n${stderr}`));
    }, timeoutMs);

    children.add(child);
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (data) => { stdout += data; });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (data) => { if (stderr.length < 256 * 1024) stderr += data; });
    child.once('error', (error) => {
      clearTimeout(timer);
      children.delete(child);
      reject(error);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      children.delete(child);
      resolve({ code, signal, stdout, stderr });
    });
  });
}
