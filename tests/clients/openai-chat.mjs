/* openai-chat.mjs: the official OpenAI Node SDK against a real Keypool
 *
 * Starts tests/mock-upstream and `keypool --headless --port 0` as child
 * processes (see harness.mjs), points a provider file at the mock, and
 * drives Keypool with the `openai` npm package the way a user's program
 * would.
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

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import OpenAI from 'openai';

import { randomHex, startGateway } from './harness.mjs';

const EXPECTED_TEXT = 'tok0 tok1 tok2 tok3 tok4 ';
const MESSAGES = [{ role: 'user', content: 'Say something.' }];

/* Runs a stream to its end; returns the chunks, the text, and what it threw. */
async function drain(stream) {
  const chunks = [];
  let text = '';
  let error = null;

  try {
    for await (const chunk of stream) {
      chunks.push(chunk);
      for (const choice of chunk.choices ?? [])
        text += choice.delta?.content ?? '';
    }
  } catch (e) {
    error = e;
  }
  return { chunks, text, error };
}

function describeChunks(chunks) {
  return chunks.map((chunk) => JSON.stringify(chunk)).join('\n');
}

/* Keypool's own errors are OpenAI-shaped: {"error":{message,type,param,code}}. */
function assertOpenAIErrorBody(error) {
  assert.equal(typeof error.error, 'object', `no "error" object in the body: ${error.message}`);
  assert.notEqual(error.error, null);
  assert.equal(typeof error.error.message, 'string');
  assert.ok(error.error.message.length > 0, 'error.message is empty');
  assert.equal(typeof error.error.type, 'string', 'error.type is not a string');
  assert.ok('param' in error.error, 'error.param is missing');
  assert.ok('code' in error.error, 'error.code is missing');
}

let gateway;
let baseURL;
let client;

before(async () => {
  /* Failures put a key out of use for a while, so each failing model has a
   * provider (and key) of its own; mock/failover is served by a cheaper
   * provider that is rate limited and by mock, which answers.
   */
  const providerFile = (mockURL, id, envName, models) => ({
    schema: 1, id, name: 'Mock ' + id, dialect: 'openai', base_url: mockURL,
    auth: 'bearer', env: [envName], requires_key: true, models,
  });

  gateway = await startGateway({
    testName: 'client-openai',
    /* An interval lets the cut stream's first chunks reach Keypool before
     * the mock drops the connection.
     */
    mockArgs: ['--chunks', '5', '--interval', '10'],
    providers: (mockURL) => [
      providerFile(mockURL, 'mock', 'MOCK_API_KEY', [
        { id: 'mock/chat', upstream_id: 'mock-chat', input: 1.0, output: 2.0, context: 8192 },
        { id: 'mock/too-long', upstream_id: 'mock-400', input: 1.0, output: 2.0 },
        { id: 'mock/cut', upstream_id: 'mock-cut', input: 1.0, output: 2.0 },
        { id: 'mock/failover', upstream_id: 'mock-chat', input: 1.0, output: 2.0 },
      ]),
      providerFile(mockURL, 'mockrate', 'MOCKRATE_API_KEY', [
        { id: 'mock/rate-limited', upstream_id: 'mock-429', input: 1.0, output: 2.0 },
      ]),
      providerFile(mockURL, 'mockbroken', 'MOCKBROKEN_API_KEY', [
        { id: 'mock/broken', upstream_id: 'mock-500', input: 1.0, output: 2.0 },
      ]),
      providerFile(mockURL, 'mockinstream', 'MOCKINSTREAM_API_KEY', [
        { id: 'mock/instream-error', upstream_id: 'mock-instream-error', input: 1.0, output: 2.0 },
      ]),
      providerFile(mockURL, 'mockcheap', 'MOCKCHEAP_API_KEY', [
        { id: 'mock/failover', upstream_id: 'mock-429', input: 0.1, output: 0.2 },
      ]),
    ],
    keys: {
      MOCK_API_KEY: 'sk-mock-' + randomHex(8),
      MOCKRATE_API_KEY: 'sk-mockrate-' + randomHex(8),
      MOCKBROKEN_API_KEY: 'sk-mockbroken-' + randomHex(8),
      MOCKINSTREAM_API_KEY: 'sk-mockinstream-' + randomHex(8),
      MOCKCHEAP_API_KEY: 'sk-mockcheap-' + randomHex(8),
    },
  });
  baseURL = gateway.baseURL;

  client = new OpenAI({ baseURL, apiKey: gateway.token, maxRetries: 0, timeout: 20000 });
});

after(async () => {
  if (gateway)
    await gateway.stop();
});

test('non-streaming chat returns the text and the usage', async () => {
  const completion = await client.chat.completions.create({
    model: 'mock/chat',
    messages: MESSAGES,
  });

  assert.equal(completion.object, 'chat.completion');
  assert.equal(completion.choices.length, 1);
  assert.equal(completion.choices[0].message.role, 'assistant');
  assert.equal(completion.choices[0].message.content, EXPECTED_TEXT);
  assert.equal(completion.choices[0].finish_reason, 'stop');
  assert.ok(completion.usage, 'no usage in the answer');
  assert.equal(completion.usage.prompt_tokens, 11);
  assert.equal(completion.usage.completion_tokens, 5);
  assert.equal(completion.usage.total_tokens, 16);
});

test('streaming chat yields the text and no usage-only chunk', async () => {
  const stream = await client.chat.completions.create({
    model: 'mock/chat',
    messages: MESSAGES,
    stream: true,
  });
  const { chunks, text, error } = await drain(stream);

  assert.equal(error, null, `the stream threw: ${error}`);
  assert.equal(text, EXPECTED_TEXT);
  assert.ok(chunks.length >= 5, `only ${chunks.length} chunks`);
  for (const chunk of chunks) {
    assert.equal(chunk.object, 'chat.completion.chunk');
    assert.ok(Array.isArray(chunk.choices) && chunk.choices.length > 0,
              `a chunk without choices was passed on although include_usage was not asked:\n` +
              describeChunks(chunks));
    assert.ok(chunk.usage == null, `a chunk carries usage although not asked:\n${describeChunks(chunks)}`);
  }
  assert.equal(chunks.at(-1).choices[0].finish_reason, 'stop');
});

test('streaming chat with include_usage ends with the usage chunk', async () => {
  const stream = await client.chat.completions.create({
    model: 'mock/chat',
    messages: MESSAGES,
    stream: true,
    stream_options: { include_usage: true },
  });
  const { chunks, text, error } = await drain(stream);

  assert.equal(error, null, `the stream threw: ${error}`);
  assert.equal(text, EXPECTED_TEXT);
  assert.ok(chunks.length >= 6, `only ${chunks.length} chunks:\n${describeChunks(chunks)}`);

  const last = chunks.at(-1);
  assert.deepEqual(last.choices, [], `the last chunk has choices:\n${describeChunks(chunks)}`);
  assert.ok(last.usage, `the last chunk has no usage:\n${describeChunks(chunks)}`);
  assert.equal(last.usage.prompt_tokens, 11);
  assert.equal(last.usage.completion_tokens, 5);
  assert.equal(last.usage.total_tokens, 16);

  for (const chunk of chunks.slice(0, -1))
    assert.ok(chunk.choices.length > 0, `an empty-choices chunk before the end:\n${describeChunks(chunks)}`);
  assert.equal(chunks.at(-2).choices[0].finish_reason, 'stop');
});

test('models.list() lists the provider file\'s models', async () => {
  const ids = [];
  for await (const model of client.models.list())
    ids.push(model.id);

  assert.ok(ids.includes('mock/chat'), `mock/chat missing from ${JSON.stringify(ids)}`);
  assert.ok(ids.includes('mock/too-long'), `mock/too-long missing from ${JSON.stringify(ids)}`);
});

test('a wrong token is an AuthenticationError (401)', async () => {
  const stranger = new OpenAI({ baseURL, apiKey: 'not-the-token', maxRetries: 0, timeout: 20000 });

  await assert.rejects(
    stranger.chat.completions.create({ model: 'mock/chat', messages: MESSAGES }),
    (error) => {
      assert.ok(error instanceof OpenAI.AuthenticationError, `got ${error?.constructor?.name}: ${error}`);
      assert.equal(error.status, 401);
      assert.ok(error.message.length > '401 '.length, `no message: "${error.message}"`);
      assertOpenAIErrorBody(error);
      return true;
    });
});

test('an unknown model is a NotFoundError (404)', async () => {
  await assert.rejects(
    client.chat.completions.create({ model: 'mock/no-such-model', messages: MESSAGES }),
    (error) => {
      assert.ok(error instanceof OpenAI.NotFoundError, `got ${error?.constructor?.name}: ${error}`);
      assert.equal(error.status, 404);
      assertOpenAIErrorBody(error);
      return true;
    });
});

test('an upstream 429 is passed through as a RateLimitError', async () => {
  await assert.rejects(
    client.chat.completions.create({ model: 'mock/rate-limited', messages: MESSAGES }),
    (error) => {
      assert.ok(error instanceof OpenAI.RateLimitError, `got ${error?.constructor?.name}: ${error}`);
      assert.equal(error.status, 429);
      assert.equal(error.code, 'rate_limit_exceeded');
      assert.match(error.message, /Rate limit reached for requests/);
      return true;
    });
});

test('an upstream 400 context_length_exceeded is a BadRequestError', async () => {
  await assert.rejects(
    client.chat.completions.create({ model: 'mock/too-long', messages: MESSAGES }),
    (error) => {
      assert.ok(error instanceof OpenAI.BadRequestError, `got ${error?.constructor?.name}: ${error}`);
      assert.equal(error.status, 400);
      assert.equal(error.code, 'context_length_exceeded');
      assert.equal(error.param, 'messages');
      assert.match(error.message, /maximum context length/);
      return true;
    });
});

test('an upstream 500 is an InternalServerError', async () => {
  await assert.rejects(
    client.chat.completions.create({ model: 'mock/broken', messages: MESSAGES }),
    (error) => {
      assert.ok(error instanceof OpenAI.InternalServerError, `got ${error?.constructor?.name}: ${error}`);
      assert.equal(error.status, 500);
      assert.match(error.message, /mock upstream exploded/);
      return true;
    });
});

test('a stream cut mid-way makes the iterator throw an APIError', async () => {
  const stream = await client.chat.completions.create({
    model: 'mock/cut',
    messages: MESSAGES,
    stream: true,
  });
  const { chunks, text, error } = await drain(stream);

  assert.ok(error !== null,
            `the stream ended normally after a cut upstream; chunks:\n${describeChunks(chunks)}`);
  assert.match(text, /tok0/, `text before the error: ${JSON.stringify(text)}`);
  assert.ok(!text.includes('tok3'), `text past the cut: ${JSON.stringify(text)}`);
  /* Keypool ends the stream with a `data: {"error":...}` event, which the
   * SDK turns into an APIError (a bare dropped connection would be a
   * TypeError from fetch instead).
   */
  assert.ok(error instanceof OpenAI.APIError,
            `expected an APIError from Keypool's error event, got ${error?.constructor?.name}: ${error}`);
  assert.ok(error.message.length > 0, 'the error event has no message');
});

test('an in-stream upstream error reaches the client as an error', async () => {
  let text = '';
  let error = null;
  let chunks = [];

  try {
    const stream = await client.chat.completions.create({
      model: 'mock/instream-error',
      messages: MESSAGES,
      stream: true,
    });
    ({ chunks, text, error } = await drain(stream));
  } catch (e) {
    error = e;
  }

  assert.ok(error !== null, `no error; chunks:\n${describeChunks(chunks)}`);
  assert.ok(error instanceof OpenAI.APIError, `got ${error?.constructor?.name}: ${error}`);
  assert.equal(text, '');
});

test('a rate-limited cheaper provider fails over: the client gets the whole answer', async () => {
  /* mockcheap is cheaper and answers 429; mock answers. Streamed first, while
   * mockcheap is still first in line, then not streamed.
   */
  const stream = await client.chat.completions.create({
    model: 'mock/failover',
    messages: MESSAGES,
    stream: true,
  });
  const { text, error, chunks } = await drain(stream);
  assert.equal(error, null, `the stream threw: ${error}`);
  assert.equal(text, EXPECTED_TEXT, `chunks:\n${describeChunks(chunks)}`);

  const completion = await client.chat.completions.create({ model: 'mock/failover', messages: MESSAGES });
  assert.equal(completion.choices[0].message.content, EXPECTED_TEXT);
  assert.equal(completion.usage.completion_tokens, 5);
});
