/* gemini.mjs: the official Gemini SDK (@google/genai) against a real Keypool,
 * and the OpenAI SDK on a Gemini provider
 *
 * Starts tests/mock-upstream and `keypool --headless --port 0` as child
 * processes (see harness.mjs). The mock answers Gemini's generateContent
 * (kp-mock-gemini.c) and OpenAI's chat. Provider "gem" speaks Gemini to it,
 * provider "oai" OpenAI, so the Gemini SDK exercises Keypool's passthrough
 * (same API) and its translation (the other), and the OpenAI SDK the
 * translation the other way round.
 *
 * @google/genai is pinned at 1.0.0, the last release whose engines allow
 * Node 18 (Debian 12's nodejs).
 *
 * Needs (from the environment, as meson's test() sets them):
 *   KEYPOOL_TEST_BINARY     path of the keypool program
 *   KEYPOOL_MOCK_UPSTREAM   path of the tests/mock-upstream program
 *
 * Copyright 2026 The Keypool authors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { GoogleGenAI } from '@google/genai';
import OpenAI from 'openai';

import { randomHex, startGateway } from './harness.mjs';

const WEATHER = {
  name: 'get_weather',
  description: 'The weather in a city',
  parameters: { type: 'OBJECT', properties: { city: { type: 'STRING' } }, required: ['city'] },
};

let gateway;
let geminiKey;
let ai;       /* the Gemini SDK, its key = Keypool's token */
let openai;   /* the OpenAI SDK */

const gem = (id, upstream) => ({ id, upstream_id: upstream, input: 0.3, output: 2.5, cached_input: 0.03 });

before(async () => {
  geminiKey = 'AIza-mock-' + randomHex(12);
  gateway = await startGateway({
    testName: 'client-gemini',
    providers: (mockURL) => [
      {
        id: 'gem', name: 'Gem', dialect: 'gemini', base_url: mockURL.replace(/\/v1$/, '/v1beta'),
        auth: { type: 'header', name: 'x-goog-api-key' }, env: ['KP_CLIENT_GEM_KEY'],
        models_prefix: 'models/', apis: { 'gemini-embed': true },
        models: [
          gem('google/gemini-text', 'gemini-text'), gem('google/gemini-tools', 'gemini-tools'),
          { id: 'google/text-embedding', upstream_id: 'gemini-embedding-001', kind: 'embedding', input: 0.15, output: 0 },
        ],
      },
      {
        id: 'oai', name: 'Oai', dialect: 'openai', base_url: mockURL,
        auth: 'bearer', env: ['KP_CLIENT_OAI_KEY'],
        models: [
          { id: 'oai/chat', upstream_id: 'mock-chat', input: 1, output: 2 },
          { id: 'oai/agent', upstream_id: 'mock-agent', input: 1, output: 2 },
        ],
      },
    ],
    keys: { KP_CLIENT_GEM_KEY: geminiKey, KP_CLIENT_OAI_KEY: 'sk-oai-' + randomHex(12) },
  });

  ai = new GoogleGenAI({ apiKey: gateway.token, httpOptions: { baseUrl: gateway.origin } });
  openai = new OpenAI({ baseURL: gateway.baseURL, apiKey: gateway.token, maxRetries: 0, timeout: 20000 });
});

after(async () => {
  if (gateway)
    await gateway.stop();
});

const mockRequests = () => gateway.upstreamRequests();

async function lastMockRequest() {
  const requests = await mockRequests();
  assert.ok(requests.length > 0);
  return requests[requests.length - 1];
}

function header(request, name) {
  const headers = request.headers || {};
  for (const key of Object.keys(headers))
    if (key.toLowerCase() === name)
      return headers[key];
  return undefined;
}

function textOf(response) {
  const parts = response.candidates?.[0]?.content?.parts ?? [];
  return parts.filter((part) => !part.thought && typeof part.text === 'string').map((p) => p.text).join('');
}

test('generateContent on a Gemini provider passes through', async () => {
  const response = await ai.models.generateContent({ model: 'google/gemini-text', contents: 'Say hello.' });

  assert.equal(textOf(response), 'Hello from Gemini');
  assert.equal(response.usageMetadata.promptTokenCount, 11);
  assert.equal(response.usageMetadata.thoughtsTokenCount, 5);

  const request = await lastMockRequest();
  assert.equal(request.path, '/v1beta/models/gemini-text:generateContent');
  assert.equal(header(request, 'x-goog-api-key'), geminiKey);
  assert.ok(!JSON.stringify(request).includes(gateway.token), 'the token never reaches the provider');
});

test('generateContentStream on a Gemini provider', async () => {
  const stream = await ai.models.generateContentStream({ model: 'google/gemini-text', contents: 'Say hello.' });
  let text = '';
  let thought = '';
  let last = null;

  for await (const chunk of stream) {
    for (const part of chunk.candidates?.[0]?.content?.parts ?? []) {
      if (part.thought)
        thought += part.text;
      else if (part.text)
        text += part.text;
    }
    last = chunk;
  }
  assert.equal(text, 'Hello from Gemini');
  assert.equal(thought, 'Let me think.');
  assert.equal(last.candidates[0].finishReason, 'STOP');
  assert.equal(last.usageMetadata.candidatesTokenCount, 4);

  const request = await lastMockRequest();
  assert.equal(request.path, '/v1beta/models/gemini-text:streamGenerateContent');
});

/* @google/genai 1.0.0 predates thoughtSignature and drops it from the parts
 * it converts, so this round trip is plain HTTP, as a newer SDK sends it.
 */
async function postGemini(model, body) {
  const response = await fetch(`${gateway.origin}/v1beta/models/${model}:generateContent`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-goog-api-key': gateway.token },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: await response.json() };
}

test('a function call and its answer keep the thought signature', async () => {
  const tools = [{ functionDeclarations: [WEATHER] }];
  const question = { role: 'user', parts: [{ text: 'Weather in Paris?' }] };
  const first = await postGemini('google%2Fgemini-tools', { contents: [question], tools });

  assert.equal(first.status, 200);
  const turn = first.body.candidates[0].content;
  assert.equal(turn.parts[0].functionCall.name, 'get_weather');
  assert.equal(turn.parts[0].thoughtSignature, 'c2lnLW1vY2stMQ==');

  /* The mock refuses a function call sent back without its signature. */
  const answer = { role: 'user', parts: [{ functionResponse: { name: 'get_weather', response: { result: 'sunny' } } }] };
  const second = await postGemini('google%2Fgemini-tools', { contents: [question, turn, answer], tools });
  assert.equal(second.status, 200, JSON.stringify(second.body));

  delete turn.parts[0].thoughtSignature;
  const unsigned = await postGemini('google%2Fgemini-tools', { contents: [question, turn, answer], tools });
  assert.equal(unsigned.status, 400);
  assert.equal(unsigned.body.error.status, 'INVALID_ARGUMENT');
});

test('a function call through an OpenAI provider, translated both ways', async () => {
  const config = { tools: [{ functionDeclarations: [WEATHER] }] };
  const question = { role: 'user', parts: [{ text: 'Weather in Paris?' }] };
  const first = await ai.models.generateContent({ model: 'oai/agent', contents: [question], config });

  assert.equal(first.functionCalls.length, 1);
  assert.equal(first.functionCalls[0].name, 'get_weather');
  assert.deepEqual(first.functionCalls[0].args, { city: 'Paris' });
  assert.equal(first.candidates[0].finishReason, 'STOP');

  const request = await lastMockRequest();
  assert.equal(request.path, '/v1/chat/completions');
  const sent = typeof request.body === 'string' ? JSON.parse(request.body) : request.body;
  assert.equal(sent.tools[0].function.parameters.type, 'object');

  const stream = await ai.models.generateContentStream({
    model: 'oai/agent',
    contents: [
      question,
      first.candidates[0].content,
      { role: 'user', parts: [{ functionResponse: { id: first.functionCalls[0].id, name: 'get_weather',
                                                    response: { result: 'sunny' } } }] },
    ],
    config,
  });
  let text = '';
  for await (const chunk of stream)
    text += textOf(chunk);
  assert.match(text, /The tool said: .*sunny/);
});

test('a JSON-array stream without alt=sse', async () => {
  const response = await fetch(gateway.origin + '/v1beta/models/oai%2Fchat:streamGenerateContent', {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-goog-api-key': gateway.token },
    body: JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'hi' }] }] }),
  });
  assert.equal(response.status, 200);
  const chunks = await response.json();
  assert.ok(Array.isArray(chunks) && chunks.length >= 2);
  assert.equal(chunks[chunks.length - 1].candidates[0].finishReason, 'STOP');
  assert.ok(chunks.map(textOf).join('').length > 0);
});

test('models.list and Google-shaped errors', async () => {
  const pager = await ai.models.list();
  const names = [];
  for await (const model of pager)
    names.push(model.name);
  assert.ok(names.includes('models/google/gemini-text'), JSON.stringify(names));

  const bad = new GoogleGenAI({ apiKey: 'not-the-token', httpOptions: { baseUrl: gateway.origin } });
  await assert.rejects(bad.models.generateContent({ model: 'google/gemini-text', contents: 'hi' }),
                       (error) => /401/.test(String(error.message ?? error)));
  await assert.rejects(ai.models.generateContent({ model: 'no/such-model', contents: 'hi' }),
                       (error) => /404/.test(String(error.message ?? error)));
});

test('models.get: one model in Google\'s shape, or a 404 in Google\'s error shape', async () => {
  const model = await ai.models.get({ model: 'google/gemini-text' });
  assert.equal(model.name, 'models/google/gemini-text');
  assert.ok(model.supportedActions.includes('generateContent'), JSON.stringify(model));

  /* Gemini's clients name models bare: the first Keypool model of that name. */
  const bare = await ai.models.get({ model: 'gemini-tools' });
  assert.equal(bare.name, 'models/google/gemini-tools');

  await assert.rejects(ai.models.get({ model: 'no-such-model' }),
                       (error) => /404/.test(String(error.message ?? error)));
  const response = await fetch(`${gateway.origin}/v1beta/models/no-such-model?key=${gateway.token}`);
  assert.equal(response.status, 404);
  const body = await response.json();
  assert.equal(body.error.code, 404);
  assert.equal(body.error.status, 'NOT_FOUND');
  assert.match(body.error.message, /models\/no-such-model/);

  const refused = await fetch(`${gateway.origin}/v1beta/models/gemini-text`);
  assert.equal(refused.status, 401, 'one model without the token');
});

test('embedContent and batchEmbedContents are routed like embeddings', async () => {
  const seen = (await mockRequests()).length;
  const batch = await ai.models.embedContent({ model: 'google/text-embedding', contents: ['hello', 'world'] });
  assert.equal(batch.embeddings.length, 2);
  assert.ok(batch.embeddings[0].values.length > 0);
  assert.notDeepEqual(batch.embeddings[0].values, batch.embeddings[1].values);

  /* The provider's model name, in the path and in every request of the batch. */
  const sent = (await mockRequests()).slice(seen);
  assert.deepEqual(sent.map((request) => request.path), ['/v1beta/models/gemini-embedding-001:batchEmbedContents']);
  for (const one of sent[0].body.requests)
    assert.equal(one.model, 'models/gemini-embedding-001');
  assert.equal(header(sent[0], 'x-goog-api-key'), geminiKey);

  const unknown = await fetch(`${gateway.origin}/v1beta/models/no-such-embedding:embedContent`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-goog-api-key': gateway.token },
    body: JSON.stringify({ content: { parts: [{ text: 'hello' }] } }),
  });
  assert.equal(unknown.status, 404);
  assert.equal((await unknown.json()).error.status, 'NOT_FOUND');

  /* Gemini's clients name models bare. */
  const single = await fetch(`${gateway.origin}/v1beta/models/text-embedding:embedContent`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-goog-api-key': gateway.token },
    body: JSON.stringify({ content: { parts: [{ text: 'hello' }] } }),
  });
  const singleBody = await single.json();
  assert.equal(single.status, 200, JSON.stringify(singleBody));
  assert.ok(singleBody.embedding.values.length > 0);
  assert.equal((await lastMockRequest()).path, '/v1beta/models/gemini-embedding-001:embedContent');

  /* A chat model does not embed, an embedding model does not chat, and an empty input is refused. */
  await assert.rejects(ai.models.embedContent({ model: 'google/gemini-text', contents: ['x'] }),
                       (error) => /40\d/.test(String(error.message ?? error)));
  await assert.rejects(ai.models.generateContent({ model: 'google/text-embedding', contents: 'hi' }),
                       (error) => /40\d/.test(String(error.message ?? error)));
  const empty = await fetch(`${gateway.origin}/v1beta/models/google%2Ftext-embedding:batchEmbedContents`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-goog-api-key': gateway.token },
    body: JSON.stringify({ requests: [] }),
  });
  assert.equal(empty.status, 400);
  assert.equal((await empty.json()).error.status, 'INVALID_ARGUMENT');
});

test('OpenAI embeddings on a Gemini provider: one batchEmbedContents, an OpenAI answer', async () => {
  /* The mock's vector i holds (i + 1) / 8 + j / 128 at j: exact in float32. */
  const expected = (i) => Array.from({ length: 8 }, (_, j) => (i + 1) / 8 + j / 128);
  const seen = (await mockRequests()).length;

  /* The SDK asks for base64 and decodes it. */
  const { data: answer, response: raw } = await openai.embeddings.create({
    model: 'google/text-embedding', input: ['hello there', 'world'], dimensions: 8,
  }).withResponse();
  assert.equal(raw.headers.get('x-keypool-provider'), 'gem');
  assert.deepEqual(answer.data.map((item) => [item.object, item.index]), [['embedding', 0], ['embedding', 1]]);
  assert.deepEqual(answer.data[0].embedding, expected(0));
  assert.deepEqual(answer.data[1].embedding, expected(1));
  assert.equal(answer.model, 'google/text-embedding');
  /* Google counts no tokens: Keypool's estimate of the input. */
  assert.ok(answer.usage.prompt_tokens > 0, JSON.stringify(answer.usage));
  assert.equal(answer.usage.total_tokens, answer.usage.prompt_tokens);

  const sent = (await mockRequests()).slice(seen);
  assert.deepEqual(sent.map((request) => request.path), ['/v1beta/models/gemini-embedding-001:batchEmbedContents']);
  assert.deepEqual(sent[0].body, {
    requests: [
      { model: 'models/gemini-embedding-001', content: { parts: [{ text: 'hello there' }] }, outputDimensionality: 8 },
      { model: 'models/gemini-embedding-001', content: { parts: [{ text: 'world' }] }, outputDimensionality: 8 },
    ],
  });
  assert.equal(header(sent[0], 'x-goog-api-key'), geminiKey);
  assert.ok(!JSON.stringify(sent[0]).includes(gateway.token), 'the token never reaches the provider');

  /* Floats when asked for; one text is a batch of one. */
  const floats = await openai.embeddings.create({
    model: 'google/text-embedding', input: 'hello', encoding_format: 'float',
  });
  assert.deepEqual(floats.data.map((item) => item.embedding), [expected(0)]);
  assert.deepEqual((await lastMockRequest()).body.requests.map((one) => one.content.parts[0].text), ['hello']);

  /* Token ids are no texts for Google: a client error, and nothing is sent. */
  const before = (await mockRequests()).length;
  await assert.rejects(openai.embeddings.create({ model: 'google/text-embedding', input: [[1, 2, 3]] }),
                       (error) => error.status >= 400 && error.status < 500);
  assert.equal((await mockRequests()).length, before);
});

test('the OpenAI SDK on a Gemini provider', async () => {
  const stream = await openai.chat.completions.create({
    model: 'google/gemini-text', stream: true, stream_options: { include_usage: true },
    messages: [{ role: 'user', content: 'Say hello.' }],
  });
  let text = '';
  let usage = null;
  for await (const chunk of stream) {
    text += chunk.choices[0]?.delta?.content ?? '';
    if (chunk.usage)
      usage = chunk.usage;
  }
  assert.equal(text, 'Hello from Gemini');
  assert.equal(usage.prompt_tokens, 11);
  assert.equal(usage.completion_tokens, 9);

  const tools = [{ type: 'function', function: { name: 'get_weather',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, additionalProperties: false } } }];
  const first = await openai.chat.completions.create({
    model: 'google/gemini-tools', tools, messages: [{ role: 'user', content: 'Weather?' }],
  });
  const call = first.choices[0].message.tool_calls[0];
  assert.equal(first.choices[0].finish_reason, 'tool_calls');
  assert.equal(call.function.name, 'get_weather');
  assert.deepEqual(JSON.parse(call.function.arguments), { city: 'Paris' });

  /* Back with only what Chat defines: the signature rode in the id. */
  const second = await openai.chat.completions.create({
    model: 'google/gemini-tools', tools,
    messages: [
      { role: 'user', content: 'Weather?' },
      { role: 'assistant', content: null,
        tool_calls: [{ id: call.id, type: 'function', function: call.function }] },
      { role: 'tool', tool_call_id: call.id, content: 'sunny' },
    ],
  });
  assert.equal(second.choices[0].message.role, 'assistant');
  const request = await lastMockRequest();
  const sent = typeof request.body === 'string' ? JSON.parse(request.body) : request.body;
  assert.equal(sent.contents[1].parts[0].thoughtSignature, 'c2lnLW1vY2stMQ==');
});
