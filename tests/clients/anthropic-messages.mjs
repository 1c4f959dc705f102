/* anthropic-messages.mjs: the official Anthropic Node SDK against a real Keypool
 *
 * Starts tests/mock-upstream and `keypool --headless --port 0` as child
 * processes (see harness.mjs). The mock answers both APIs: Anthropic's
 * Messages at …/messages, OpenAI's chat at …/chat/completions. Provider
 * "anthro" speaks Anthropic to it, provider "oai" OpenAI, so the
 * `@anthropic-ai/sdk` package exercises Keypool's passthrough (same dialect)
 * and its translation (the other dialect); the `openai` package checks the
 * translation the other way round.
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

import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';

import { randomHex, startGateway } from './harness.mjs';

const CHAT_TEXT = 'tok0 tok1 tok2 tok3 tok4 ';
const MESSAGES = [{ role: 'user', content: 'Say something.' }];
const MAX_TOKENS = 256;
const TOOLS = [
  {
    name: 'get_weather',
    description: 'The weather in a city',
    input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  },
  {
    name: 'get_time',
    description: 'The time in a zone',
    input_schema: { type: 'object', properties: { zone: { type: 'string' } }, required: ['zone'] },
  },
];
const OPENAI_TOOLS = TOOLS.map((tool) => ({
  type: 'function',
  function: { name: tool.name, description: tool.description, parameters: tool.input_schema },
}));

let gateway;
let anthropicKey;
let client;          /* Anthropic SDK, apiKey = the token */

/* The Anthropic provider's models: anthropic/<upstream id>. */
const claude = (name) => ({
  id: 'anthropic/' + name, upstream_id: name, input: 3, output: 15, cached_input: 0.3, cache_write: 3.75,
});

before(async () => {
  anthropicKey = 'sk-ant-mock-' + randomHex(12);
  gateway = await startGateway({
    testName: 'client-anthropic',
    mockArgs: ['--chunks', '5', '--interval', '5'],
    /* shared/x is cheaper on anthro, so anthro (answering 529) is tried
     * first and oai answers.
     */
    providers: (mockURL) => [
      {
        id: 'anthro', name: 'Anthro', dialect: 'anthropic', base_url: mockURL,
        auth: { type: 'header', name: 'x-api-key' },
        headers: { 'anthropic-version': '2023-06-01' },
        env: ['KP_CLIENT_ANTHRO_KEY'],
        models: [
          claude('claude-text'), claude('claude-tools'), claude('claude-thinking'),
          claude('claude-cache'), claude('claude-bad'),
          { id: 'shared/x', upstream_id: 'claude-529', input: 1, output: 1 },
        ],
      },
      {
        id: 'oai', name: 'Oai', dialect: 'openai', base_url: mockURL,
        auth: 'bearer', env: ['KP_CLIENT_OAI_KEY'],
        models: [
          { id: 'oai/tools', upstream_id: 'mock-tools', input: 1, output: 2 },
          { id: 'oai/chat', upstream_id: 'mock-chat', input: 1, output: 2 },
          { id: 'shared/x', upstream_id: 'mock-chat', input: 2, output: 2 },
        ],
      },
    ],
    keys: {
      KP_CLIENT_ANTHRO_KEY: anthropicKey,
      KP_CLIENT_OAI_KEY: 'sk-oai-' + randomHex(12),
    },
  });

  client = new Anthropic({ baseURL: gateway.origin, apiKey: gateway.token, maxRetries: 0, timeout: 20000 });
});

after(async () => {
  if (gateway)
    await gateway.stop();
});

/* Helpers --------------------------------------------------------------- */

function show(value) {
  return JSON.stringify(value, null, 1);
}

/* Runs an SDK event stream to its end: the events, the text of its text
 * deltas, and what it threw.
 */
async function drainEvents(stream) {
  const events = [];
  let text = '';
  let error = null;

  try {
    for await (const event of stream) {
      events.push(event);
      if (event.type === 'content_block_delta' && event.delta.type === 'text_delta')
        text += event.delta.text;
    }
  } catch (e) {
    error = e;
  }
  return { events, text, error };
}

/* Runs a messages.stream() helper to its end: its text, the final message,
 * and what it threw.
 */
async function drainHelper(stream) {
  let text = '';
  let message = null;
  let error = null;

  stream.on('text', (delta) => {
    text += delta;
  });
  try {
    message = await stream.finalMessage();
  } catch (e) {
    error = e;
  }
  return { text, message, error };
}

/* Text and tool_use blocks of an Anthropic message, as the mocks answer. */
function assertToolMessage(message, { text, ids }) {
  const blocks = message.content;

  assert.equal(blocks.length, 3, `not text + two tool_use blocks:\n${show(message)}`);
  assert.equal(blocks[0].type, 'text', show(message));
  assert.equal(blocks[0].text, text);
  assert.equal(blocks[1].type, 'tool_use', show(message));
  assert.equal(blocks[1].id, ids[0]);
  assert.equal(blocks[1].name, 'get_weather');
  assert.deepEqual(blocks[1].input, { city: 'Paris' });
  assert.equal(blocks[2].type, 'tool_use', show(message));
  assert.equal(blocks[2].id, ids[1]);
  assert.equal(blocks[2].name, 'get_time');
  assert.deepEqual(blocks[2].input, { zone: 'CET' });
  assert.equal(message.stop_reason, 'tool_use');
}

/* An SDK error that Keypool or upstream sent in Anthropic's error shape. */
function assertAnthropicError(error, Class, status, type) {
  assert.ok(error instanceof Class, `got ${error?.constructor?.name}: ${error}`);
  assert.equal(error.status, status);
  assert.equal(typeof error.error, 'object', `no error body: ${error.message}`);
  assert.notEqual(error.error, null, `no error body: ${error.message}`);
  assert.equal(error.error.type, 'error', `not Anthropic's error shape: ${show(error.error)}`);
  assert.equal(error.error.error?.type, type, `error type: ${show(error.error)}`);
  assert.equal(typeof error.error.error?.message, 'string', show(error.error));
  assert.ok(error.error.error.message.length > 0, `empty error message: ${show(error.error)}`);
}

/* POSTs BODY as JSON to URL; returns { status, headers, text }. */
async function post(url, body, headers) {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01', ...headers },
    body: JSON.stringify(body),
  });
  return { status: response.status, headers: response.headers, text: await response.text() };
}

/* a. Anthropic SDK, Anthropic provider: passthrough ---------------------- */

test('passthrough: messages.create returns the text and the usage', async () => {
  const message = await client.messages.create({
    model: 'anthropic/claude-text', max_tokens: MAX_TOKENS, messages: MESSAGES,
  });

  assert.equal(message.type, 'message');
  assert.equal(message.role, 'assistant');
  assert.equal(message.content.length, 1, show(message));
  assert.equal(message.content[0].type, 'text');
  assert.equal(message.content[0].text, 'Hello from Anthropic');
  assert.equal(message.stop_reason, 'end_turn');
  assert.equal(message.usage.input_tokens, 12);
  assert.equal(message.usage.output_tokens, 4);
});

test('passthrough: messages.stream yields the text deltas and the final message', async () => {
  const { text, message, error } = await drainHelper(client.messages.stream({
    model: 'anthropic/claude-text', max_tokens: MAX_TOKENS, messages: MESSAGES,
  }));

  assert.equal(error, null, `the stream threw: ${error}`);
  assert.equal(text, 'Hello from Anthropic');
  assert.equal(message.content.length, 1, show(message));
  assert.equal(message.content[0].text, 'Hello from Anthropic');
  assert.equal(message.stop_reason, 'end_turn');
  assert.equal(message.usage.input_tokens, 12);
  assert.equal(message.usage.output_tokens, 4);
});

test('passthrough: create({stream: true}) yields Anthropic\'s events in order', async () => {
  const stream = await client.messages.create({
    model: 'anthropic/claude-text', max_tokens: MAX_TOKENS, messages: MESSAGES, stream: true,
  });
  const { events, text, error } = await drainEvents(stream);

  assert.equal(error, null, `the stream threw: ${error}`);
  assert.equal(text, 'Hello from Anthropic');
  assert.deepEqual(events.map((event) => event.type), [
    'message_start', 'content_block_start', 'content_block_delta', 'content_block_delta',
    'content_block_delta', 'content_block_stop', 'message_delta', 'message_stop',
  ], show(events));
  assert.equal(events[0].message.usage.input_tokens, 12);
  assert.equal(events.at(-2).delta.stop_reason, 'end_turn');
  assert.equal(events.at(-2).usage.output_tokens, 4);
});

test('passthrough: a streamed tool call ends as two tool_use blocks', async () => {
  const inputs = [];
  const stream = client.messages.stream({
    model: 'anthropic/claude-tools', max_tokens: MAX_TOKENS, messages: MESSAGES, tools: TOOLS,
  });
  stream.on('inputJson', (partial) => inputs.push(partial));
  const { text, message, error } = await drainHelper(stream);

  assert.equal(error, null, `the stream threw: ${error}`);
  assert.equal(text, 'Checking both.');
  assertToolMessage(message, { text: 'Checking both.', ids: ['toolu_01A', 'toolu_01B'] });
  assert.ok(inputs.length >= 4, `the tool input came in ${inputs.length} pieces`);
  assert.equal(message.usage.input_tokens, 40);
  assert.equal(message.usage.output_tokens, 31);
});

test('passthrough: thinking keeps its text and signature', async () => {
  const request = {
    model: 'anthropic/claude-thinking', max_tokens: 2048, messages: MESSAGES,
    thinking: { type: 'enabled', budget_tokens: 1024 },
  };
  const whole = await client.messages.create(request);
  const { message, error } = await drainHelper(client.messages.stream(request));

  assert.equal(error, null, `the stream threw: ${error}`);
  for (const answer of [whole, message]) {
    assert.equal(answer.content.length, 2, show(answer));
    assert.equal(answer.content[0].type, 'thinking');
    assert.equal(answer.content[0].thinking, 'Two plus two is four.');
    assert.equal(answer.content[0].signature, 'c2lnbmF0dXJl');
    assert.equal(answer.content[1].type, 'text');
    assert.equal(answer.content[1].text, '4');
    assert.equal(answer.stop_reason, 'end_turn');
  }
});

test('passthrough: prompt-cache usage reaches the client', async () => {
  const request = { model: 'anthropic/claude-cache', max_tokens: MAX_TOKENS, messages: MESSAGES };
  const whole = await client.messages.create(request);
  const { message, error } = await drainHelper(client.messages.stream(request));

  assert.equal(error, null, `the stream threw: ${error}`);
  for (const answer of [whole, message]) {
    assert.equal(answer.content[0].text, 'Cached.');
    assert.equal(answer.usage.input_tokens, 100, show(answer.usage));
    assert.equal(answer.usage.cache_read_input_tokens, 2000, show(answer.usage));
    assert.equal(answer.usage.cache_creation_input_tokens, 500, show(answer.usage));
    assert.equal(answer.usage.output_tokens, 50, show(answer.usage));
  }
});

test('passthrough: authToken (Bearer, as Claude Code sends it) is accepted', async () => {
  const sent = [];
  const bearer = new Anthropic({
    baseURL: gateway.origin, authToken: gateway.token, maxRetries: 0, timeout: 20000,
    /* To see what the SDK put on the wire. */
    fetch: (url, init) => {
      const headers = new Headers(init?.headers);
      sent.push({ authorization: headers.get('authorization'), apiKey: headers.get('x-api-key') });
      return fetch(url, init);
    },
  });

  const message = await bearer.messages.create({
    model: 'anthropic/claude-text', max_tokens: MAX_TOKENS, messages: MESSAGES,
  });

  assert.equal(message.content[0].text, 'Hello from Anthropic');
  assert.equal(sent.length, 1);
  assert.ok(sent[0].authorization === `Bearer ${gateway.token}`, 'the SDK did not send the token as Bearer');
  assert.equal(sent[0].apiKey, null, 'the SDK sent x-api-key as well');
});

test('passthrough: the bytes are what the provider sent (x-api-key to Keypool)', async () => {
  for (const model of ['claude-text', 'claude-tools', 'claude-thinking']) {
    for (const stream of [true, false]) {
      const body = { model, max_tokens: 2048, messages: MESSAGES, stream };
      const reference = await post(gateway.mockURL + '/messages', body, { 'x-api-key': anthropicKey });
      const relayed = await post(gateway.origin + '/v1/messages', { ...body, model: 'anthropic/' + model },
                                 { 'x-api-key': gateway.token });
      const what = `${model}, stream ${stream}`;

      assert.equal(reference.status, 200, `the mock itself: ${reference.status} ${reference.text}`);
      assert.equal(relayed.status, 200, `${what}: ${relayed.status} ${relayed.text}`);
      assert.equal(relayed.headers.get('x-keypool-provider'), 'anthro', what);
      if (stream)
        assert.match(relayed.headers.get('content-type') ?? '', /^text\/event-stream/, what);
      else
        assert.match(relayed.headers.get('content-type') ?? '', /^application\/json/, what);
      assert.equal(relayed.text, reference.text, `${what}: the relayed bytes differ`);
    }
  }
});

/* b. Anthropic SDK, OpenAI provider: translated --------------------------- */

test('translated: messages.create with tools returns tool_use blocks', async () => {
  const message = await client.messages.create({
    model: 'oai/tools', max_tokens: MAX_TOKENS, messages: MESSAGES, tools: TOOLS, system: 'Be brief.',
  });

  assert.equal(message.type, 'message');
  assert.equal(message.role, 'assistant');
  assertToolMessage(message, { text: 'Let me check.', ids: ['call_w1', 'call_t2'] });
  /* prompt 30 of which 10 cached: input_tokens leaves the cached ones out. */
  assert.ok(message.usage, `no usage: ${show(message)}`);
  assert.equal(message.usage.input_tokens, 20, show(message.usage));
  assert.equal(message.usage.cache_read_input_tokens, 10, show(message.usage));
  assert.equal(message.usage.output_tokens, 20, show(message.usage));
});

test('translated: messages.stream with tools ends as tool_use blocks', async () => {
  const { events, error: eventError } = await drainEvents(await client.messages.create({
    model: 'oai/tools', max_tokens: MAX_TOKENS, messages: MESSAGES, tools: TOOLS, stream: true,
  }));
  assert.equal(eventError, null, `the stream threw: ${eventError}`);
  assert.equal(events[0]?.type, 'message_start', show(events));
  assert.equal(events.at(-1)?.type, 'message_stop', show(events));

  const { text, message, error } = await drainHelper(client.messages.stream({
    model: 'oai/tools', max_tokens: MAX_TOKENS, messages: MESSAGES, tools: TOOLS,
  }));
  assert.equal(error, null, `the stream threw: ${error}`);
  assert.equal(text, 'Let me check.');
  assertToolMessage(message, { text: 'Let me check.', ids: ['call_w1', 'call_t2'] });
  assert.ok(message.usage, `no usage: ${show(message)}`);
  assert.equal(message.usage.output_tokens, 20, show(message.usage));
});

test('translated: plain chat, not streamed and streamed', async () => {
  const request = { model: 'oai/chat', max_tokens: MAX_TOKENS, messages: MESSAGES };
  const whole = await client.messages.create(request);

  assert.equal(whole.content.length, 1, show(whole));
  assert.equal(whole.content[0].type, 'text');
  assert.equal(whole.content[0].text, CHAT_TEXT);
  assert.equal(whole.stop_reason, 'end_turn');
  assert.ok(whole.usage, `no usage: ${show(whole)}`);
  assert.equal(whole.usage.output_tokens, 5, show(whole.usage));
  assert.ok(whole.usage.input_tokens > 0, show(whole.usage));

  const { text, message, error } = await drainHelper(client.messages.stream(request));
  assert.equal(error, null, `the stream threw: ${error}`);
  assert.equal(text, CHAT_TEXT);
  assert.equal(message.content.length, 1, show(message));
  assert.equal(message.content[0].text, CHAT_TEXT);
  assert.equal(message.stop_reason, 'end_turn');
  assert.equal(message.usage.output_tokens, 5, show(message.usage));
});

/* d. count_tokens ---------------------------------------------------------- */

test('messages.countTokens estimates the prompt', async () => {
  const counted = await client.messages.countTokens({
    model: 'anthropic/claude-text', system: 'You are terse.',
    messages: [{ role: 'user', content: 'How many tokens is this sentence?' }],
  });

  assert.equal(typeof counted.input_tokens, 'number', show(counted));
  assert.ok(counted.input_tokens > 0, show(counted));

  await assert.rejects(
    client.messages.countTokens({ model: 'anthropic/no-such-model', messages: MESSAGES }),
    (error) => {
      assertAnthropicError(error, Anthropic.NotFoundError, 404, 'not_found_error');
      return true;
    });
});

test('models.list() reads Keypool\'s model list in Anthropic\'s shape', async () => {
  const models = [];
  for await (const model of client.models.list())
    models.push(model);

  const ids = models.map((model) => model.id);
  assert.ok(ids.includes('anthropic/claude-text'), `anthropic/claude-text missing from ${show(ids)}`);
  for (const model of models) {
    assert.equal(model.type, 'model', show(model));
    assert.equal(typeof model.display_name, 'string', show(model));
    assert.ok(!Number.isNaN(Date.parse(model.created_at)), show(model));
  }
});

/* e. OpenAI SDK, Anthropic provider: translated the other way ------------- */

test('openai SDK: a streamed Anthropic tool call comes back as tool_calls', async () => {
  const openai = new OpenAI({ baseURL: gateway.baseURL, apiKey: gateway.token, maxRetries: 0, timeout: 20000 });
  const stream = await openai.chat.completions.create({
    model: 'anthropic/claude-tools',
    messages: MESSAGES,
    tools: OPENAI_TOOLS,
    stream: true,
    stream_options: { include_usage: true },
  });
  const chunks = [];
  const calls = [];
  let content = '';
  let finish = null;
  let usage = null;

  for await (const chunk of stream) {
    chunks.push(chunk);
    if (chunk.usage)
      usage = chunk.usage;
    for (const choice of chunk.choices ?? []) {
      content += choice.delta?.content ?? '';
      if (choice.finish_reason)
        finish = choice.finish_reason;
      for (const call of choice.delta?.tool_calls ?? []) {
        calls[call.index] ??= { id: '', name: '', arguments: '' };
        calls[call.index].id += call.id ?? '';
        calls[call.index].name += call.function?.name ?? '';
        calls[call.index].arguments += call.function?.arguments ?? '';
      }
    }
  }
  const all = chunks.map((chunk) => JSON.stringify(chunk)).join('\n');

  assert.equal(content, 'Checking both.', all);
  assert.equal(calls.length, 2, all);
  assert.equal(calls[0].id, 'toolu_01A', all);
  assert.equal(calls[0].name, 'get_weather', all);
  assert.deepEqual(JSON.parse(calls[0].arguments), { city: 'Paris' }, all);
  assert.equal(calls[1].id, 'toolu_01B', all);
  assert.equal(calls[1].name, 'get_time', all);
  assert.deepEqual(JSON.parse(calls[1].arguments), { zone: 'CET' }, all);
  assert.equal(finish, 'tool_calls', all);
  assert.ok(usage, `no usage chunk:\n${all}`);
  assert.equal(usage.prompt_tokens, 40, all);
  assert.equal(usage.completion_tokens, 31, all);
  assert.deepEqual(chunks.at(-1).choices, [], `the usage chunk is not last:\n${all}`);
});

test('openai SDK: a thinking model\'s answer is the text', async () => {
  const openai = new OpenAI({ baseURL: gateway.baseURL, apiKey: gateway.token, maxRetries: 0, timeout: 20000 });
  const completion = await openai.chat.completions.create({
    model: 'anthropic/claude-thinking', messages: MESSAGES,
  });

  assert.equal(completion.object, 'chat.completion');
  assert.equal(completion.choices[0].message.role, 'assistant');
  assert.equal(completion.choices[0].message.content, '4', show(completion));
  assert.equal(completion.choices[0].finish_reason, 'stop');
  assert.equal(completion.usage.prompt_tokens, 20);
  assert.equal(completion.usage.completion_tokens, 15);
});

/* c. Errors through the SDK, and failover (last: they may cool keys) ------- */

test('an unknown model is a NotFoundError (404, not_found_error)', async () => {
  await assert.rejects(
    client.messages.create({ model: 'anthropic/no-such-model', max_tokens: MAX_TOKENS, messages: MESSAGES }),
    (error) => {
      assertAnthropicError(error, Anthropic.NotFoundError, 404, 'not_found_error');
      return true;
    });
});

test('an upstream 400 is a BadRequestError with the provider\'s message', async () => {
  await assert.rejects(
    client.messages.create({ model: 'anthropic/claude-bad', max_tokens: MAX_TOKENS, messages: MESSAGES }),
    (error) => {
      assertAnthropicError(error, Anthropic.BadRequestError, 400, 'invalid_request_error');
      assert.match(error.message, /unexpected tool_use_id found in tool_result blocks/);
      return true;
    });
});

test('a wrong token is an AuthenticationError (401)', async () => {
  for (const credential of [{ apiKey: 'not-the-token' }, { authToken: 'not-the-token' }]) {
    const stranger = new Anthropic({ baseURL: gateway.origin, ...credential, maxRetries: 0, timeout: 20000 });

    await assert.rejects(
      stranger.messages.create({ model: 'anthropic/claude-text', max_tokens: MAX_TOKENS, messages: MESSAGES }),
      (error) => {
        assertAnthropicError(error, Anthropic.AuthenticationError, 401, 'authentication_error');
        return true;
      });
  }

  const raw = await post(gateway.origin + '/v1/messages',
                         { model: 'anthropic/claude-text', max_tokens: MAX_TOKENS, messages: MESSAGES },
                         { 'x-api-key': 'not-the-token' });
  assert.equal(raw.status, 401, raw.text);
  assert.equal(JSON.parse(raw.text).error?.type, 'authentication_error', raw.text);
});

test('an overloaded (529) cheaper provider fails over to the other dialect', async () => {
  const { data, response } = await client.messages.create({
    model: 'shared/x', max_tokens: MAX_TOKENS, messages: MESSAGES,
  }).withResponse();

  assert.equal(response.status, 200);
  assert.equal(response.headers.get('x-keypool-provider'), 'oai');
  assert.equal(data.type, 'message');
  assert.equal(data.content[0].text, CHAT_TEXT);

  const stream = client.messages.stream({ model: 'shared/x', max_tokens: MAX_TOKENS, messages: MESSAGES });
  const drained = drainHelper(stream); /* listens from the start */
  const { response: streamed } = await stream.withResponse();
  const { text, message, error } = await drained;

  assert.equal(streamed.headers.get('x-keypool-provider'), 'oai');
  assert.equal(error, null, `the stream threw: ${error}`);
  assert.equal(text, CHAT_TEXT);
  assert.equal(message.stop_reason, 'end_turn');
});

test('after a 400 and a 529 the Anthropic key still answers', async () => {
  const { data, response } = await client.messages.create({
    model: 'anthropic/claude-text', max_tokens: MAX_TOKENS, messages: MESSAGES,
  }).withResponse();

  assert.equal(response.headers.get('x-keypool-provider'), 'anthro');
  assert.equal(data.content[0].text, 'Hello from Anthropic');
});
