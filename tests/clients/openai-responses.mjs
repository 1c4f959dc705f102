/* openai-responses.mjs: the OpenAI SDK's other APIs against a real Keypool
 *
 * Responses (`client.responses.create`), embeddings and legacy completions,
 * through Keypool to tests/mock-upstream (see harness.mjs). Provider
 * "resp" serves the Responses API itself, so a Responses request passes
 * through; "chatonly" speaks only OpenAI Chat and "anthro" only Anthropic
 * Messages, so Keypool translates. "emb" serves embeddings, "fim" legacy
 * completions. The mock's GET /mock/requests shows what reached it.
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

import { execFile } from 'node:child_process';
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import OpenAI from 'openai';

import { randomHex, startGateway } from './harness.mjs';

const MOCK_TEXT = 'tok0 tok1 tok2 tok3 tok4 ';
const ANTHROPIC_TEXT = 'Hello from Anthropic';
const WEATHER_TOOL = {
  type: 'function',
  name: 'get_weather',
  description: 'The weather in a city',
  parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  strict: false,
};

let gateway;
let client;

before(async () => {
  const provider = (mockURL, id, fields, models) => ({
    schema: 1, id, name: 'Mock ' + id, dialect: 'openai', base_url: mockURL, auth: 'bearer',
    env: [id.toUpperCase() + '_API_KEY'], requires_key: true, ...fields, models,
  });

  gateway = await startGateway({
    testName: 'client-responses',
    mockArgs: ['--chunks', '5'],
    providers: (mockURL) => [
      provider(mockURL, 'resp', { apis: { 'openai-responses': true } }, [
        { id: 'resp/gpt', upstream_id: 'mock-chat', input: 1, output: 2 },
      ]),
      provider(mockURL, 'chatonly', {}, [
        { id: 'chatonly/gpt', upstream_id: 'mock-chat', input: 1, output: 2 },
        { id: 'chatonly/agent', upstream_id: 'mock-agent', input: 1, output: 2 },
        { id: 'shared/responses', upstream_id: 'mock-chat', input: 1, output: 2 },
        { id: 'chatonly/too-long', upstream_id: 'mock-400', input: 1, output: 2 },
      ]),
      provider(mockURL, 'anthro', {
        dialect: 'anthropic', auth: { type: 'header', name: 'x-api-key' },
        headers: { 'anthropic-version': '2023-06-01' },
      }, [
        { id: 'anthro/claude', upstream_id: 'claude-text', input: 3, output: 15 },
        { id: 'anthro/tools', upstream_id: 'claude-tools', input: 3, output: 15 },
      ]),
      provider(mockURL, 'emb', { apis: { 'openai-embeddings': true } }, [
        /* An embedding model needs only its input price. */
        { id: 'emb/embed', upstream_id: 'mock-embed', kind: 'embedding', input: 0.02 },
        { id: 'shared/embed', upstream_id: 'mock-embed', kind: 'embedding', input: 0.02 },
      ]),
      provider(mockURL, 'fim', { apis: { 'openai-completions': true } }, [
        { id: 'fim/coder', upstream_id: 'mock-fim', input: 0.2, output: 0.4 },
        { id: 'shared/fim', upstream_id: 'mock-fim', input: 0.2, output: 0.4 },
      ]),
      /* Cheaper, but the mock answers their keys 429: Keypool fails over
       * to the providers above (shared/responses to a translation).
       */
      provider(mockURL, 'cheapemb', { apis: { 'openai-embeddings': true } }, [
        { id: 'shared/embed', upstream_id: 'mock-embed', kind: 'embedding', input: 0.01 },
      ]),
      provider(mockURL, 'cheapfim', { apis: { 'openai-completions': true } }, [
        { id: 'shared/fim', upstream_id: 'mock-fim', input: 0.1, output: 0.2 },
      ]),
      provider(mockURL, 'cheapresp', { apis: { 'openai-responses': true } }, [
        { id: 'shared/responses', upstream_id: 'mock-chat', input: 0.5, output: 1 },
      ]),
    ],
    keys: {
      ...Object.fromEntries(['RESP', 'CHATONLY', 'ANTHRO', 'EMB', 'FIM'].map(
        (id) => [id + '_API_KEY', 'sk-' + id.toLowerCase() + '-' + randomHex(8)])),
      /* "rate" in a key makes the mock answer 429 with Retry-After. */
      ...Object.fromEntries(['CHEAPEMB', 'CHEAPFIM', 'CHEAPRESP'].map(
        (id) => [id + '_API_KEY', 'sk-rate-' + randomHex(8)])),
    },
  });

  client = new OpenAI({ baseURL: gateway.baseURL, apiKey: gateway.token, maxRetries: 0, timeout: 20000 });
});

after(async () => {
  if (gateway)
    await gateway.stop();
});

/* Helpers --------------------------------------------------------------- */

function show(value) {
  return JSON.stringify(value, null, 1);
}

const upstreamRequests = () => gateway.upstreamRequests();

async function lastUpstreamRequest() {
  const requests = await upstreamRequests();
  assert.ok(requests.length > 0, 'nothing reached the mock');
  return requests.at(-1);
}

/* Runs a Responses event stream to its end. */
async function drainEvents(stream) {
  const events = [];
  let error = null;

  try {
    for await (const event of stream)
      events.push(event);
  } catch (e) {
    error = e;
  }
  return { events, error };
}

/* What every Responses stream must look like: response.created first, a
 * terminal event last with the usage, sequence numbers increasing, items
 * added before their deltas and done after them.
 */
function checkEventStream(events) {
  const types = events.map((event) => event.type);
  const what = `events: ${types.join(', ')}`;

  assert.ok(events.length >= 3, what);
  assert.equal(types[0], 'response.created', what);
  assert.equal(types.at(-1), 'response.completed', what);
  assert.equal(types.filter((type) => type === 'response.completed').length, 1, what);
  for (let i = 1; i < events.length; i++)
    assert.ok(events[i].sequence_number > events[i - 1].sequence_number,
              `sequence_number does not increase at event ${i}: ${show(events.slice(i - 1, i + 1))}`);

  const added = new Set();
  const done = new Set();
  for (const event of events) {
    if (event.type === 'response.output_item.added')
      added.add(event.output_index);
    else if (event.type === 'response.output_item.done') {
      assert.ok(added.has(event.output_index), `item ${event.output_index} done before added; ${what}`);
      done.add(event.output_index);
    } else if ('output_index' in event && event.type !== 'response.output_item.added')
      assert.ok(added.has(event.output_index) && !done.has(event.output_index),
                `${event.type} outside its item ${event.output_index}; ${what}`);
  }
  assert.deepEqual([...done].sort(), [...added].sort(), `items added but not done; ${what}`);

  const completed = events.at(-1).response;
  assert.equal(completed.status, 'completed');
  assert.ok(completed.usage, `response.completed has no usage: ${show(completed)}`);
  assert.ok(completed.usage.input_tokens > 0, show(completed.usage));
  assert.ok(completed.usage.output_tokens > 0, show(completed.usage));
  assert.equal(completed.usage.total_tokens,
               completed.usage.input_tokens + completed.usage.output_tokens, show(completed.usage));
  return completed;
}

function streamedText(events) {
  return events.filter((event) => event.type === 'response.output_text.delta')
    .map((event) => event.delta).join('');
}

/* Responses: text --------------------------------------------------------- */

const TEXT_CASES = [
  { provider: 'resp', model: 'resp/gpt', path: '/v1/responses', text: MOCK_TEXT, way: 'passed through' },
  { provider: 'chatonly', model: 'chatonly/gpt', path: '/v1/chat/completions', text: MOCK_TEXT,
    way: 'translated to Chat' },
  { provider: 'anthro', model: 'anthro/claude', path: '/v1/messages', text: ANTHROPIC_TEXT,
    way: 'translated to Anthropic' },
];

for (const c of TEXT_CASES) {
  test(`responses.create, not streamed, ${c.way}`, async () => {
    const { data: response, response: raw } = await client.responses.create({
      model: c.model,
      instructions: 'Be brief.',
      input: 'Say something.',
      max_output_tokens: 64,
      store: false,
      metadata: { purpose: 'test' },
    }).withResponse();

    assert.equal(raw.headers.get('x-keypool-provider'), c.provider);
    assert.equal(response.object, 'response');
    assert.equal(response.status, 'completed');
    assert.equal(response.output_text, c.text, show(response));
    const message = response.output.find((item) => item.type === 'message');
    assert.ok(message, `no message item: ${show(response.output)}`);
    assert.equal(message.role, 'assistant');
    assert.equal(message.content[0].type, 'output_text');
    assert.ok(response.usage, `no usage: ${show(response)}`);
    assert.ok(response.usage.input_tokens > 0 && response.usage.output_tokens > 0, show(response.usage));

    const sent = await lastUpstreamRequest();
    assert.equal(sent.path, c.path);
    if (c.provider === 'resp') {
      /* A passthrough keeps every field; only the model id changes. */
      assert.equal(sent.body.model, 'mock-chat');
      assert.equal(sent.body.input, 'Say something.');
      assert.equal(sent.body.instructions, 'Be brief.');
      assert.equal(sent.body.max_output_tokens, 64);
      assert.equal(sent.body.store, false);
      assert.deepEqual(sent.body.metadata, { purpose: 'test' });
    } else if (c.provider === 'chatonly') {
      assert.equal(sent.body.model, 'mock-chat');
      assert.deepEqual(sent.body.messages, [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'Say something.' },
      ]);
      assert.equal(sent.body.input, undefined, show(sent.body));
    } else {
      assert.equal(sent.body.model, 'claude-text');
      assert.equal(sent.body.system, 'Be brief.');
      assert.equal(sent.body.max_tokens, 64);
    }
  });

  test(`responses.create, streamed, ${c.way}`, async () => {
    const { data: stream, response: raw } = await client.responses.create({
      model: c.model,
      input: [{ type: 'message', role: 'user', content: [{ type: 'input_text', text: 'Say something.' }] }],
      stream: true,
    }).withResponse();
    const { events, error } = await drainEvents(stream);

    assert.equal(error, null, `the stream threw: ${error}\n${show(events)}`);
    assert.equal(raw.headers.get('x-keypool-provider'), c.provider);
    assert.match(raw.headers.get('content-type') ?? '', /^text\/event-stream/);
    const completed = checkEventStream(events);
    assert.equal(streamedText(events), c.text, show(events));
    const done = events.find((event) => event.type === 'response.output_text.done');
    assert.ok(done, `no response.output_text.done: ${show(events)}`);
    assert.equal(done.text, c.text);
    const message = completed.output.find((item) => item.type === 'message');
    assert.ok(message, `response.completed has no message: ${show(completed)}`);
    assert.equal(message.content[0].text, c.text);

    const sent = await lastUpstreamRequest();
    assert.equal(sent.path, c.path);
    assert.equal(sent.body.stream, true);
  });
}

test('responses.stream() (the SDK\'s checking helper) accepts a translated stream', async () => {
  for (const model of ['chatonly/gpt', 'anthro/claude']) {
    const stream = client.responses.stream({ model, input: 'Say something.' });
    const deltas = [];

    stream.on('response.output_text.delta', (event) => deltas.push(event.delta));
    const response = await stream.finalResponse();
    assert.equal(response.status, 'completed', model);
    assert.equal(response.output_text, deltas.join(''), model);
    assert.ok(response.output_text.length > 0, model);
  }
});

/* Responses: function tools ----------------------------------------------- */

function functionCalls(output) {
  return output.filter((item) => item.type === 'function_call');
}

test('a function tool round trip, translated to Chat', async () => {
  const question = { role: 'user', content: 'What is the weather in Paris?' };
  const first = await client.responses.create({
    model: 'chatonly/agent',
    input: [question],
    tools: [WEATHER_TOOL],
  });

  const calls = functionCalls(first.output);
  assert.equal(calls.length, 1, show(first.output));
  assert.equal(calls[0].name, 'get_weather');
  assert.equal(calls[0].call_id, 'call_mock_a1');
  assert.deepEqual(JSON.parse(calls[0].arguments), { city: 'Paris' });

  let sent = await lastUpstreamRequest();
  assert.equal(sent.path, '/v1/chat/completions');
  assert.deepEqual(sent.body.tools, [{
    type: 'function',
    function: {
      name: 'get_weather', description: WEATHER_TOOL.description,
      parameters: WEATHER_TOOL.parameters, strict: false,
    },
  }]);

  const second = await client.responses.create({
    model: 'chatonly/agent',
    input: [
      question,
      { type: 'function_call', call_id: calls[0].call_id, name: calls[0].name, arguments: calls[0].arguments },
      { type: 'function_call_output', call_id: calls[0].call_id, output: '22 C and sunny' },
    ],
    tools: [WEATHER_TOOL],
  });
  assert.equal(second.output_text, 'The tool said: 22 C and sunny.', show(second));
  assert.equal(functionCalls(second.output).length, 0);

  sent = await lastUpstreamRequest();
  const messages = sent.body.messages;
  assert.equal(messages.at(-1).role, 'tool', show(messages));
  assert.equal(messages.at(-1).tool_call_id, 'call_mock_a1');
  assert.equal(messages.at(-1).content, '22 C and sunny');
  assert.equal(messages.at(-2).role, 'assistant');
  assert.equal(messages.at(-2).tool_calls[0].id, 'call_mock_a1');
  assert.equal(messages.at(-2).tool_calls[0].function.name, 'get_weather');
});

test('a streamed function call, translated to Chat', async () => {
  const stream = await client.responses.create({
    model: 'chatonly/agent',
    input: 'What is the weather in Paris?',
    tools: [WEATHER_TOOL],
    stream: true,
  });
  const { events, error } = await drainEvents(stream);

  assert.equal(error, null, `the stream threw: ${error}\n${show(events)}`);
  const completed = checkEventStream(events);
  const added = events.find((event) => event.type === 'response.output_item.added' &&
                                       event.item.type === 'function_call');
  assert.ok(added, `no function_call item added: ${show(events)}`);
  assert.equal(added.item.name, 'get_weather');
  assert.equal(added.item.call_id, 'call_mock_a1');
  const args = events.filter((event) => event.type === 'response.function_call_arguments.delta')
    .map((event) => event.delta).join('');
  assert.deepEqual(JSON.parse(args), { city: 'Paris' });
  const argsDone = events.find((event) => event.type === 'response.function_call_arguments.done');
  assert.ok(argsDone, `no response.function_call_arguments.done: ${show(events)}`);
  assert.equal(argsDone.arguments, args);

  const calls = functionCalls(completed.output);
  assert.equal(calls.length, 1, show(completed.output));
  assert.equal(calls[0].arguments, args);
});

test('Anthropic tool_use blocks become function_call items', async () => {
  const response = await client.responses.create({
    model: 'anthro/tools',
    input: 'Weather and time in Paris?',
    tools: [WEATHER_TOOL, { ...WEATHER_TOOL, name: 'get_time', description: 'The time in a zone' }],
  });
  const calls = functionCalls(response.output);

  assert.equal(response.output_text, 'Checking both.', show(response));
  assert.deepEqual(calls.map((call) => [call.name, call.call_id, JSON.parse(call.arguments)]), [
    ['get_weather', 'toolu_01A', { city: 'Paris' }],
    ['get_time', 'toolu_01B', { zone: 'CET' }],
  ]);

  const sent = await lastUpstreamRequest();
  assert.equal(sent.path, '/v1/messages');
  assert.deepEqual(sent.body.tools.map((tool) => tool.name), ['get_weather', 'get_time']);
  assert.deepEqual(sent.body.tools[0].input_schema, WEATHER_TOOL.parameters);

  const stream = await client.responses.create({
    model: 'anthro/tools',
    input: 'Weather and time in Paris?',
    tools: [WEATHER_TOOL],
    stream: true,
  });
  const { events, error } = await drainEvents(stream);
  assert.equal(error, null, `the stream threw: ${error}\n${show(events)}`);
  const completed = checkEventStream(events);
  assert.deepEqual(functionCalls(completed.output).map((call) => JSON.parse(call.arguments)),
                   [{ city: 'Paris' }, { zone: 'CET' }]);
});

test('a function tool round trip, passed through', async () => {
  const first = await client.responses.create({
    model: 'resp/gpt',
    input: 'What is the weather in Paris?',
    tools: [WEATHER_TOOL],
  });
  const calls = functionCalls(first.output);

  assert.equal(calls.length, 1, show(first.output));
  assert.equal(calls[0].call_id, 'call_mock_r1');
  const second = await client.responses.create({
    model: 'resp/gpt',
    input: [
      { role: 'user', content: 'What is the weather in Paris?' },
      calls[0],
      { type: 'function_call_output', call_id: calls[0].call_id, output: 'rain' },
    ],
    tools: [WEATHER_TOOL],
  });
  assert.equal(second.output_text, 'The tool said: rain.');

  const sent = await lastUpstreamRequest();
  assert.equal(sent.path, '/v1/responses');
  assert.deepEqual(sent.body.tools, [WEATHER_TOOL]);
  assert.equal(sent.body.input.at(-1).type, 'function_call_output');
});

/* Responses: what Keypool cannot do --------------------------------------- */

test('previous_response_id is refused: Keypool keeps no conversation state', async () => {
  for (const model of ['chatonly/gpt', 'resp/gpt']) {
    const seen = (await upstreamRequests()).length;

    await assert.rejects(
      client.responses.create({ model, input: 'And then?', previous_response_id: 'resp_abc123' }),
      (error) => {
        assert.ok(error instanceof OpenAI.BadRequestError, `got ${error?.constructor?.name}: ${error}`);
        assert.equal(error.status, 400);
        assert.match(error.message, /no conversation state/i);
        assert.match(error.message, /previous_response_id/);
        return true;
      }, model);
    assert.equal((await upstreamRequests()).length, seen, `${model}: the request reached upstream`);
  }
});

test('an upstream 400 reaches a Responses client as a BadRequestError with its message', async () => {
  for (const stream of [false, true]) {
    await assert.rejects(
      (async () => {
        const answer = await client.responses.create({ model: 'chatonly/too-long', input: 'Hi', stream });
        if (stream)
          for await (const _event of answer) { /* to the end */ }
      })(),
      (error) => {
        assert.ok(error instanceof OpenAI.BadRequestError, `got ${error?.constructor?.name}: ${error}`);
        assert.equal(error.status, 400);
        assert.match(error.message, /maximum context length/);
        return true;
      }, `stream: ${stream}`);
  }
});

test('a translated upstream error keeps its code and param', async () => {
  /* Clients tell a prompt that is too long from other refusals by the
   * code (the SDK's error.code), so it must survive the translation, as
   * it does when the client's API is the provider's (client-openai).
   */
  const error = await client.responses.create({ model: 'chatonly/too-long', input: 'Hi' })
    .then(() => null, (e) => e);

  assert.ok(error instanceof OpenAI.BadRequestError, `got ${error?.constructor?.name}: ${error}`);
  assert.ok(error.code === 'context_length_exceeded' && error.param === 'messages',
            `code ${error.code}, param ${error.param}; the provider said context_length_exceeded, messages`);
});

/* Embeddings -------------------------------------------------------------- */

/* The mock's vector i holds (i + 1) / 8 + j / 128 at j. */
function mockVector(index, dimensions) {
  return Array.from({ length: dimensions }, (_, j) => (index + 1) / 8 + j / 128);
}

test('embeddings.create with one text', async () => {
  const { data: answer, response: raw } = await client.embeddings.create({
    model: 'emb/embed',
    input: 'hello embedding world',
  }).withResponse();

  assert.equal(raw.headers.get('x-keypool-provider'), 'emb');
  assert.equal(answer.object, 'list');
  assert.equal(answer.data.length, 1);
  assert.equal(answer.data[0].index, 0);
  /* The SDK asks for base64 and decodes it. */
  assert.deepEqual(Array.from(answer.data[0].embedding), mockVector(0, 8));
  assert.equal(answer.usage.prompt_tokens, 3);

  const sent = await lastUpstreamRequest();
  assert.equal(sent.path, '/v1/embeddings');
  assert.equal(sent.body.model, 'mock-embed');
  assert.equal(sent.body.input, 'hello embedding world');
  assert.equal(sent.body.encoding_format, 'base64');
});

test('embeddings.create with a list of texts', async () => {
  const answer = await client.embeddings.create({
    model: 'emb/embed',
    input: ['one two', 'three four five', 'six'],
    encoding_format: 'float',
    dimensions: 4,
  });

  assert.equal(answer.data.length, 3);
  answer.data.forEach((item, i) => {
    assert.equal(item.index, i);
    assert.deepEqual(item.embedding, mockVector(i, 4));
  });
  assert.equal(answer.usage.prompt_tokens, 6);

  const sent = await lastUpstreamRequest();
  assert.deepEqual(sent.body.input, ['one two', 'three four five', 'six']);
  assert.equal(sent.body.dimensions, 4);
});

test('embeddings or completions for a chat model, chat for an embedding model: clear 4xx errors', async () => {
  const seen = (await upstreamRequests()).length;

  /* The message names the model and the API it is not served for. */
  const refused = (model, route) => (error) => {
    assert.ok(error instanceof OpenAI.APIError, `got ${error?.constructor?.name}: ${error}`);
    assert.ok(error.status >= 400 && error.status < 500, `status ${error.status}: ${error.message}`);
    assert.ok(error.message.includes(model), `the message does not name ${model}: ${error.message}`);
    assert.ok(error.message.includes(route), `the message does not name ${route}: ${error.message}`);
    return true;
  };

  await assert.rejects(client.embeddings.create({ model: 'chatonly/gpt', input: 'hello' }),
                       refused('chatonly/gpt', '/v1/embeddings'));
  await assert.rejects(
    client.chat.completions.create({ model: 'emb/embed', messages: [{ role: 'user', content: 'hi' }] }),
    refused('emb/embed', '/v1/chat/completions'));
  await assert.rejects(client.completions.create({ model: 'chatonly/gpt', prompt: 'def f():' }),
                       refused('chatonly/gpt', '/v1/completions'));
  assert.equal((await upstreamRequests()).length, seen, 'a refused request reached upstream');
});

test('models.list() lists the embedding model', async () => {
  const ids = [];
  for await (const model of client.models.list())
    ids.push(model.id);

  for (const id of ['emb/embed', 'fim/coder', 'resp/gpt', 'chatonly/gpt', 'anthro/claude'])
    assert.ok(ids.includes(id), `${id} missing from ${JSON.stringify(ids)}`);
});

/* Legacy completions -------------------------------------------------------- */

const PROMPT = 'def add(a, b):\n    ';
const SUFFIX = '\n    return c\n';
const FIM_TEXT = MOCK_TEXT + `[before ${SUFFIX}]`;

test('completions.create with a suffix, not streamed', async () => {
  const { data: completion, response: raw } = await client.completions.create({
    model: 'fim/coder',
    prompt: PROMPT,
    suffix: SUFFIX,
    max_tokens: 32,
  }).withResponse();

  assert.equal(raw.headers.get('x-keypool-provider'), 'fim');
  assert.equal(completion.object, 'text_completion');
  assert.equal(completion.choices.length, 1);
  assert.equal(completion.choices[0].text, FIM_TEXT);
  assert.equal(completion.choices[0].finish_reason, 'stop');
  assert.equal(completion.usage.prompt_tokens, 11);
  assert.equal(completion.usage.completion_tokens, 5);

  const sent = await lastUpstreamRequest();
  assert.equal(sent.path, '/v1/completions');
  assert.equal(sent.body.model, 'mock-fim');
  assert.equal(sent.body.prompt, PROMPT);
  assert.equal(sent.body.suffix, SUFFIX);
  assert.equal(sent.body.max_tokens, 32);
});

async function drainCompletion(stream) {
  const chunks = [];
  for await (const chunk of stream)
    chunks.push(chunk);
  return { chunks, text: chunks.map((chunk) => chunk.choices[0]?.text ?? '').join('') };
}

test('completions.create with a suffix, streamed', async () => {
  const stream = await client.completions.create({
    model: 'fim/coder',
    prompt: PROMPT,
    suffix: SUFFIX,
    stream: true,
  });
  const { chunks, text } = await drainCompletion(stream);

  assert.equal(text, FIM_TEXT, show(chunks));
  for (const chunk of chunks) {
    assert.equal(chunk.object, 'text_completion');
    assert.ok(chunk.choices.length > 0, `a usage chunk although not asked:\n${show(chunks)}`);
    assert.ok(chunk.usage == null, `a chunk carries usage although not asked:\n${show(chunks)}`);
  }
  assert.equal(chunks.at(-1).choices[0].finish_reason, 'stop');

  /* Keypool asks for the usage (to know the cost) and strips it again. */
  const sent = await lastUpstreamRequest();
  assert.equal(sent.body.suffix, SUFFIX);
  assert.equal(sent.body.stream, true);
  assert.equal(sent.body.stream_options?.include_usage, true, show(sent.body));
});

test('completions.create streamed with include_usage ends with the usage chunk', async () => {
  const stream = await client.completions.create({
    model: 'fim/coder',
    prompt: PROMPT,
    suffix: SUFFIX,
    stream: true,
    stream_options: { include_usage: true },
  });
  const { chunks, text } = await drainCompletion(stream);

  assert.equal(text, FIM_TEXT, show(chunks));
  const last = chunks.at(-1);
  assert.deepEqual(last.choices, [], show(chunks));
  assert.equal(last.usage.prompt_tokens, 11);
  assert.equal(last.usage.completion_tokens, 5);
  assert.equal(chunks.at(-2).choices[0].finish_reason, 'stop');
});

/* Failover ------------------------------------------------------------------ */

test('a rate-limited cheaper provider fails over, for embeddings, completions and Responses', async () => {
  const cases = [
    { cheap: 'cheapemb', dear: 'emb', path: '/v1/embeddings', dearPath: '/v1/embeddings',
      call: () => client.embeddings.create({ model: 'shared/embed', input: 'one two' }).withResponse(),
      check: (data) => assert.equal(data.data.length, 1) },
    { cheap: 'cheapfim', dear: 'fim', path: '/v1/completions', dearPath: '/v1/completions',
      call: () => client.completions.create({ model: 'shared/fim', prompt: PROMPT, suffix: SUFFIX }).withResponse(),
      check: (data) => assert.equal(data.choices[0].text, FIM_TEXT) },
    /* From a provider that speaks Responses to one that needs a translation. */
    { cheap: 'cheapresp', dear: 'chatonly', path: '/v1/responses', dearPath: '/v1/chat/completions',
      call: () => client.responses.create({ model: 'shared/responses', input: 'Say something.' }).withResponse(),
      check: (data) => assert.equal(data.output_text, MOCK_TEXT) },
  ];

  for (const c of cases) {
    const seen = (await upstreamRequests()).length;
    const { data, response } = await c.call();

    assert.equal(response.headers.get('x-keypool-provider'), c.dear, c.path);
    c.check(data);
    const sent = (await upstreamRequests()).slice(seen);
    assert.deepEqual(sent.map((request) => request.path), [c.path, c.dearPath],
                     `${c.path}: not tried at ${c.cheap} first`);
    assert.match(sent[0].headers.authorization, /^Bearer sk-rate-/, c.path);
  }
});

/* The ledger --------------------------------------------------------------- */

/* `keypool requests` on Keypool's data: { model, provider, status, outcome,
 * input, output, cost } per row, newest first.
 */
function ledgerRows() {
  return new Promise((resolve, reject) => {
    execFile(process.env.KEYPOOL_TEST_BINARY, ['requests', '--last', '200'],
             { env: gateway.env, timeout: 20000 }, (error, stdout, stderr) => {
      if (error) {
        reject(new Error(`keypool requests failed: ${error.message}\n${stderr}`));
        return;
      }
      const pattern = /^\S+ \S+\s+(\S+)\s+(\S+)\s+(\d+)\s+(\S+)\s+(\d+)\s+(\d+)\s+(.*?)\s+\d+ (?:\S.*)?$/;
      resolve(stdout.split('\n').slice(1).map((line) => pattern.exec(line)).filter(Boolean)
        .map(([, model, provider, status, outcome, input, output, cost]) => ({
          model, provider, status: Number(status), outcome, input: Number(input), output: Number(output), cost,
        })));
    });
  });
}

/* Polls the ledger until FOUND says it holds what a test needs. */
async function waitForLedger(found, what) {
  const deadline = Date.now() + 15000;
  let rows = [];

  while (Date.now() < deadline) {
    rows = await ledgerRows();
    if (found(rows))
      return rows;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.fail(`the ledger never showed ${what}:\n${show(rows)}`);
}

test('the ledger records embeddings, completions and Responses like chat', async () => {
  const has = (rows, model, provider, input, output) =>
    rows.some((row) => row.model === model && row.provider === provider && row.status === 200 &&
                       row.input === input && row.output === output && /computed$/.test(row.cost));

  /* Input tokens from usage.prompt_tokens, priced; no output. */
  await waitForLedger((rows) => has(rows, 'emb/embed', 'emb', 3, 0) && has(rows, 'emb/embed', 'emb', 6, 0),
                      'the embeddings with their prompt tokens');
  /* The streamed completion's usage came from the chunk Keypool asked for. */
  await waitForLedger((rows) => rows.filter((row) => has([row], 'fim/coder', 'fim', 11, 5)).length >= 3,
                      'three completions with 11 input and 5 output tokens');
  await waitForLedger((rows) => has(rows, 'resp/gpt', 'resp', 11, 5) &&
                                has(rows, 'anthro/claude', 'anthro', 12, 4),
                      'Responses requests, passed through and translated');
  /* A request that failed over is one row, with the provider that answered. */
  await waitForLedger((rows) => has(rows, 'shared/embed', 'emb', 2, 0) &&
                                has(rows, 'shared/fim', 'fim', 11, 5) &&
                                has(rows, 'shared/responses', 'chatonly', 11, 5) &&
                                !rows.some((row) => row.provider.startsWith('cheap')),
                      'the requests that failed over, once each');
});
