// End-to-end: cross-format translation through the official Node SDKs (`openai`,
// `@anthropic-ai/sdk`) and the Vercel AI SDK (`ai` + `@ai-sdk/openai` +
// `@ai-sdk/anthropic`), against a real spendgate gateway in front of spendgate's mock
// provider. An OpenAI-format spend key asks for a Claude model on /v1/chat/completions
// (the provider gets /v1/messages); an Anthropic-format key asks for a GPT model on
// /v1/messages (the provider gets /v1/chat/completions). The client sees only its own
// format; the key is charged the provider's native usage at the catalog's prices.
// Contract: README "Cross-format", shared/spec/wire-formats.md.

import { after, before, describe, it as nodeIt } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { jsonSchema, streamText, tool } from 'ai';
import { createOpenAI } from '@ai-sdk/openai';
import { createAnthropic } from '@ai-sdk/anthropic';

import { startEnvironment, tail } from './harness.mjs';

// The SDKs read OPENAI_* / ANTHROPIC_* (base URL, key, auth token, organisation...): this
// file passes everything explicitly and keeps the operator's shell out of it.
for (const name of Object.keys(process.env)) {
  if (/^(OPENAI|ANTHROPIC)_/.test(name)) delete process.env[name];
}

const CLAUDE = 'claude-sonnet-4-20250514';
const GPT = 'gpt-4o-mini';
const CLAUDE_MAX_OUTPUT = 64000; // the catalog's max_output_tokens for CLAUDE

// Catalog prices in nano-dollars per token (USD per million tokens x 1000): every
// figure is a whole number of nano-dollars, so expected costs are exact.
const NANO_PRICES = {
  [CLAUDE]: { input: 3000n, output: 15000n, cacheRead: 300n, cacheWrite: 3750n }, // $3, $15, $0.30, $3.75
  [GPT]: { input: 150n, output: 600n, cacheRead: 75n, cacheWrite: 0n }, // $0.15, $0.60, $0.075
};

// The mock's deterministic answers (crates/mock/src/text.rs).
const WORDS = [
  'lorem', 'ipsum', 'dolor', 'sit', 'amet', 'consectetur', 'adipiscing', 'elit', 'sed', 'do',
  'eiusmod', 'tempor', 'incididunt', 'ut', 'labore', 'et', 'dolore', 'magna', 'aliqua',
];
const DEFAULT_OUTPUT_TOKENS = 16;
const TOOL_OUTPUT_TOKENS = 12;
const TOOL_ARGUMENTS = { location: 'Paris', unit: 'celsius' };
const TOOL_PREAMBLE = 'Let me check. '; // Anthropic's text block before tool_use

const WEATHER_SCHEMA = {
  type: 'object',
  properties: {
    location: { type: 'string' },
    unit: { type: 'string', enum: ['celsius', 'fahrenheit'] },
  },
  required: ['location'],
};
const OPENAI_WEATHER_TOOL = {
  type: 'function',
  function: { name: 'get_weather', description: 'The weather in a city.', parameters: WEATHER_SCHEMA },
};
const ANTHROPIC_WEATHER_TOOL = { name: 'get_weather', description: 'The weather in a city.', input_schema: WEATHER_SCHEMA };

function mockText(n = DEFAULT_OUTPUT_TOKENS) {
  let out = '';
  for (let i = 0; i < n; i += 1) out += `${WORDS[i % WORDS.length]} `;
  return out;
}

/** The mock's input tokens for chat-style requests: ceil(chars / 4) + one per message. */
function mockInputTokens(texts, system = '') {
  const chars = [...system].length + texts.reduce((n, t) => n + [...t].length, 0);
  return Math.max(1, Math.ceil(chars / 4) + texts.length);
}

/** Expected cost in nano-dollars. `input` counts uncached input tokens only. */
function costNano(model, { input = 0, output = 0, cacheRead = 0, cacheWrite = 0 }) {
  const p = NANO_PRICES[model];
  return (
    BigInt(input) * p.input + BigInt(output) * p.output + BigInt(cacheRead) * p.cacheRead + BigInt(cacheWrite) * p.cacheWrite
  );
}

/** A decimal USD string ("0.000123456") -> nano-dollars. */
function toNano(usd) {
  const m = /^(\d+)(?:\.(\d{1,9}))?$/.exec(String(usd));
  assert.ok(m, `not a decimal USD amount with at most 9 decimals: ${usd}`);
  return BigInt(m[1]) * 1_000_000_000n + BigInt((m[2] ?? '').padEnd(9, '0'));
}

let env;
let failures = 0;
let tagCounter = 0;

// node:test in Node 20 cannot tell an after() hook whether tests failed; count it ourselves.
function it(name, fn) {
  return nodeIt(name, async (t) => {
    try {
      await fn(t);
    } catch (e) {
      failures += 1;
      throw e;
    }
  });
}

function marker() {
  tagCounter += 1;
  return `e2e-node-${process.pid}-${tagCounter}-${Math.random().toString(36).slice(2, 8)}`;
}

async function walletCall(method, path, body) {
  const res = await fetch(`${env.server.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${env.wallets.xf.key}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  assert.ok(res.ok, `${method} ${path} -> ${res.status} ${text}`);
  return JSON.parse(text);
}

async function createKey(requestShape) {
  const key = await walletCall('POST', '/v1/spend_keys', { name: `xf ${marker()}`, request_shape: requestShape });
  assert.ok(key.key.startsWith('lava_sk_'));
  return key;
}

async function spendNano(keyId) {
  return toNano((await walletCall('GET', `/v1/spend_keys/${keyId}`)).total_spend);
}

/** total_spend once it equals `expected` (a stream settles a moment after its last byte). */
async function waitForSpend(keyId, expected, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const got = await spendNano(keyId);
    if (got === expected || Date.now() > deadline) return got;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The one request the provider got whose body contains `tag` (and `filter`). */
async function upstream(tag, path, filter = () => true) {
  const found = (await env.mock.requests()).filter((r) => JSON.stringify(r.body).includes(tag) && filter(r));
  assert.equal(found.length, 1, `expected one upstream request containing ${tag}, got ${found.length}`);
  assert.equal(found[0].path, path, `the provider got ${found[0].method} ${found[0].path}, expected ${path}`);
  return found[0];
}

function header(recorded, name) {
  return recorded.headers.filter(([n]) => n.toLowerCase() === name).map(([, v]) => v);
}

function assertAnthropicUpstream(recorded) {
  assert.equal(recorded.path, '/v1/messages');
  assert.deepEqual(header(recorded, 'x-api-key'), [env.providerKeys.anthropic]);
  assert.deepEqual(header(recorded, 'authorization'), []);
  assert.equal(recorded.body.model, CLAUDE);
  for (const field of ['stream_options', 'max_completion_tokens', 'n']) {
    assert.ok(!(field in recorded.body), `OpenAI field ${field} reached Anthropic`);
  }
  for (const m of recorded.body.messages) assert.ok(['user', 'assistant'].includes(m.role), JSON.stringify(m));
}

function assertOpenAIUpstream(recorded) {
  assert.equal(recorded.path, '/v1/chat/completions');
  assert.deepEqual(header(recorded, 'authorization'), [`Bearer ${env.providerKeys.openai}`]);
  assert.deepEqual(header(recorded, 'x-api-key'), []);
  assert.equal(recorded.body.model, GPT);
  for (const field of ['max_tokens', 'system', 'stop_sequences', 'anthropic_version']) {
    assert.ok(!(field in recorded.body), `Anthropic field ${field} reached OpenAI`);
  }
}

/** A fetch that records the URL paths an SDK calls. */
function recordingFetch(paths) {
  return (input, init) => {
    const url = typeof input === 'string' || input instanceof URL ? String(input) : input.url;
    paths.push(new URL(url).pathname);
    return fetch(input, init);
  };
}

function openaiClient(key, options = {}) {
  return new OpenAI({ apiKey: key, baseURL: `${env.server.url}/v1`, maxRetries: 0, ...options });
}

function anthropicClient(key, options = {}) {
  return new Anthropic({ apiKey: key, authToken: null, baseURL: env.server.url, maxRetries: 0, ...options });
}

before(async () => {
  env = await startEnvironment({ wallets: ['xf'], mockProvider: true });
});

after(async () => {
  if (!env) return;
  const keep = failures > 0 || process.env.SPENDGATE_E2E_KEEP === '1';
  if (failures > 0) {
    console.error(
      `\n${failures} test(s) failed. Gateway log (${env.server.logPath}), last 120 lines:\n` +
        tail(env.server.output(), 120),
    );
  }
  await env.cleanup({ keep });
  if (keep) console.error(`temp dir kept: ${env.dir}`);
});

describe('openai SDK, OpenAI-format key, on a Claude model', () => {
  it('text: the answer, finish_reason and usage in OpenAI format; Anthropic format upstream; cost', async () => {
    const key = await createKey('openai');
    const client = openaiClient(key.key);
    const tag = marker();
    const prompt = `Say something. ${tag}`;

    const completion = await client.chat.completions.create({ model: CLAUDE, messages: [{ role: 'user', content: prompt }] });

    assert.equal(completion.object, 'chat.completion');
    assert.equal(completion.model, CLAUDE);
    assert.equal(completion.choices.length, 1);
    assert.equal(completion.choices[0].message.role, 'assistant');
    assert.equal(completion.choices[0].message.content, mockText());
    assert.equal(completion.choices[0].finish_reason, 'stop');
    const promptTokens = mockInputTokens([prompt]);
    assert.equal(completion.usage.prompt_tokens, promptTokens);
    assert.equal(completion.usage.completion_tokens, DEFAULT_OUTPUT_TOKENS);
    assert.equal(completion.usage.total_tokens, promptTokens + DEFAULT_OUTPUT_TOKENS);

    const recorded = await upstream(tag, '/v1/messages');
    assertAnthropicUpstream(recorded);
    assert.deepEqual(recorded.body.messages, [{ role: 'user', content: [{ type: 'text', text: prompt }] }]);
    assert.equal(recorded.body.max_tokens, CLAUDE_MAX_OUTPUT);
    assert.equal(await spendNano(key.spend_key_id), costNano(CLAUDE, { input: promptTokens, output: DEFAULT_OUTPUT_TOKENS }));
  });

  it('stream: deltas arrive one by one, join to the non-streamed text; the usage chunk comes last', async () => {
    const key = await createKey('openai');
    const client = openaiClient(key.key);
    const tag = marker();
    const prompt = `[[mock:tokens:20]] [[mock:slow:30]] ${tag}`;
    const messages = [{ role: 'user', content: prompt }];

    const whole = await client.chat.completions.create({ model: CLAUDE, messages });
    const stream = await client.chat.completions.create({
      model: CLAUDE,
      messages,
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks = [];
    const deltas = [];
    const arrivals = [];
    for await (const chunk of stream) {
      chunks.push(chunk);
      const content = chunk.choices[0]?.delta?.content;
      if (content) {
        deltas.push(content);
        arrivals.push(Date.now());
      }
    }

    assert.equal(whole.choices[0].message.content, mockText(20));
    assert.equal(deltas.length, 20);
    assert.equal(deltas.join(''), whole.choices[0].message.content);
    assert.ok(arrivals.at(-1) - arrivals[0] >= 400, `deltas arrived within ${arrivals.at(-1) - arrivals[0]} ms`);
    assert.ok(chunks.every((c) => c.object === 'chat.completion.chunk' && c.model === CLAUDE));
    assert.deepEqual(
      chunks.filter((c) => c.choices[0]?.finish_reason).map((c) => c.choices[0].finish_reason),
      ['stop'],
    );
    const usageChunks = chunks.filter((c) => c.choices.length === 0);
    assert.deepEqual(usageChunks, [chunks.at(-1)]);
    const promptTokens = mockInputTokens([prompt]);
    assert.equal(chunks.at(-1).usage.prompt_tokens, promptTokens);
    assert.equal(chunks.at(-1).usage.completion_tokens, 20);
    assert.equal(chunks.at(-1).usage.total_tokens, promptTokens + 20);

    const one = costNano(CLAUDE, { input: promptTokens, output: 20 });
    assert.equal(await waitForSpend(key.spend_key_id, 2n * one), 2n * one);
  });

  it('streamed tool call: chat.completions.stream() accumulates a call whose arguments parse', async () => {
    const key = await createKey('openai');
    const client = openaiClient(key.key);
    const tag = marker();
    const prompt = `What is the weather in Paris? [[mock:tool]] ${tag}`;

    const runner = client.chat.completions.stream({
      model: CLAUDE,
      messages: [{ role: 'user', content: prompt }],
      tools: [OPENAI_WEATHER_TOOL],
      stream_options: { include_usage: true },
    });
    const fragments = [];
    runner.on('tool_calls.function.arguments.delta', (e) => fragments.push(e.arguments_delta));
    const final = await runner.finalChatCompletion();

    assert.ok(fragments.filter(Boolean).length > 1, `argument fragments: ${JSON.stringify(fragments)}`);
    const choice = final.choices[0];
    assert.equal(choice.finish_reason, 'tool_calls');
    assert.equal(choice.message.content, TOOL_PREAMBLE);
    assert.equal(choice.message.tool_calls.length, 1);
    const call = choice.message.tool_calls[0];
    assert.equal(call.type, 'function');
    assert.match(call.id, /^toolu_/);
    assert.equal(call.function.name, 'get_weather');
    assert.deepEqual(JSON.parse(call.function.arguments), TOOL_ARGUMENTS);
    const promptTokens = mockInputTokens([prompt]);
    assert.equal(final.usage.prompt_tokens, promptTokens);
    assert.equal(final.usage.completion_tokens, TOOL_OUTPUT_TOKENS);

    const recorded = await upstream(tag, '/v1/messages');
    assertAnthropicUpstream(recorded);
    assert.equal(recorded.body.stream, true);
    assert.deepEqual(recorded.body.tools, [
      { name: 'get_weather', description: 'The weather in a city.', input_schema: WEATHER_SCHEMA },
    ]);
    const cost = costNano(CLAUDE, { input: promptTokens, output: TOOL_OUTPUT_TOKENS });
    assert.equal(await waitForSpend(key.spend_key_id, cost), cost);
  });
});

describe('@anthropic-ai/sdk, Anthropic-format key, on a GPT model', () => {
  it('text: the answer, stop_reason and usage in Anthropic format; OpenAI format upstream; cost', async () => {
    const key = await createKey('anthropic');
    const client = anthropicClient(key.key);
    const tag = marker();
    const prompt = `Say something. ${tag}`;

    const message = await client.messages.create({ model: GPT, max_tokens: 1024, messages: [{ role: 'user', content: prompt }] });

    assert.equal(message.type, 'message');
    assert.equal(message.role, 'assistant');
    assert.equal(message.model, GPT);
    assert.match(message.id, /^msg_/);
    assert.deepEqual(message.content, [{ type: 'text', text: mockText() }]);
    assert.equal(message.stop_reason, 'end_turn');
    const inputTokens = mockInputTokens([prompt]);
    assert.equal(message.usage.input_tokens, inputTokens);
    assert.equal(message.usage.output_tokens, DEFAULT_OUTPUT_TOKENS);
    assert.equal(message.usage.cache_read_input_tokens, 0);

    const recorded = await upstream(tag, '/v1/chat/completions');
    assertOpenAIUpstream(recorded);
    assert.deepEqual(recorded.body.messages, [{ role: 'user', content: prompt }]);
    assert.equal(recorded.body.max_completion_tokens, 1024);
    assert.equal(await spendNano(key.spend_key_id), costNano(GPT, { input: inputTokens, output: DEFAULT_OUTPUT_TOKENS }));
  });

  it('stream: text events one by one, joined equal to the non-streamed text; finalMessage has the real usage', async () => {
    const key = await createKey('anthropic');
    const client = anthropicClient(key.key);
    const tag = marker();
    const prompt = `[[mock:tokens:20]] [[mock:slow:30]] [[mock:cached:500]] ${tag}`;
    const messages = [{ role: 'user', content: prompt }];

    const whole = await client.messages.create({ model: GPT, max_tokens: 100, messages });
    const stream = client.messages.stream({ model: GPT, max_tokens: 100, messages });
    const deltas = [];
    const arrivals = [];
    let startUsage;
    stream.on('streamEvent', (event) => {
      if (event.type === 'message_start') startUsage = event.message.usage;
    });
    stream.on('text', (text) => {
      deltas.push(text);
      arrivals.push(Date.now());
    });
    const final = await stream.finalMessage();

    assert.equal(whole.content[0].text, mockText(20));
    assert.equal(deltas.length, 20);
    assert.equal(deltas.join(''), whole.content[0].text);
    assert.ok(arrivals.at(-1) - arrivals[0] >= 400, `deltas arrived within ${arrivals.at(-1) - arrivals[0]} ms`);
    assert.deepEqual(final.content, [{ type: 'text', text: mockText(20) }]);
    assert.equal(final.stop_reason, 'end_turn');
    assert.ok(startUsage.input_tokens > 0, 'message_start must announce a (non-zero) input estimate');
    const uncached = mockInputTokens([prompt]);
    // OpenAI's prompt_tokens (uncached + 500) minus the cached tokens, from message_delta.
    assert.equal(final.usage.input_tokens, uncached);
    assert.equal(final.usage.cache_read_input_tokens, 500);
    assert.equal(final.usage.output_tokens, 20);
    assert.equal(whole.usage.input_tokens, uncached);
    assert.equal(whole.usage.cache_read_input_tokens, 500);

    const streamed = await upstream(tag, '/v1/chat/completions', (r) => r.body.stream === true);
    assertOpenAIUpstream(streamed);
    assert.equal(streamed.body.stream_options.include_usage, true);
    const one = costNano(GPT, { input: uncached, cacheRead: 500, output: 20 });
    assert.equal(await waitForSpend(key.spend_key_id, 2n * one), 2n * one);
  });

  it('streamed tool call: finalMessage has a tool_use block whose input is the object', async () => {
    const key = await createKey('anthropic');
    const client = anthropicClient(key.key);
    const tag = marker();
    const prompt = `What is the weather in Paris? [[mock:tool]] ${tag}`;

    const stream = client.messages.stream({
      model: GPT,
      max_tokens: 1024,
      messages: [{ role: 'user', content: prompt }],
      tools: [ANTHROPIC_WEATHER_TOOL],
    });
    const partials = [];
    stream.on('inputJson', (partial) => partials.push(partial));
    const final = await stream.finalMessage();

    assert.ok(partials.filter(Boolean).length > 1, `input_json deltas: ${JSON.stringify(partials)}`);
    assert.equal(final.stop_reason, 'tool_use');
    assert.equal(final.content.length, 1);
    const [toolUse] = final.content;
    assert.equal(toolUse.type, 'tool_use');
    assert.equal(toolUse.name, 'get_weather');
    assert.match(toolUse.id, /^call_/);
    assert.deepEqual(toolUse.input, TOOL_ARGUMENTS);
    const inputTokens = mockInputTokens([prompt]);
    assert.equal(final.usage.input_tokens, inputTokens);
    assert.equal(final.usage.output_tokens, TOOL_OUTPUT_TOKENS);

    const recorded = await upstream(tag, '/v1/chat/completions');
    assertOpenAIUpstream(recorded);
    assert.deepEqual(recorded.body.tools, [OPENAI_WEATHER_TOOL]);
    const cost = costNano(GPT, { input: inputTokens, output: TOOL_OUTPUT_TOKENS });
    assert.equal(await waitForSpend(key.spend_key_id, cost), cost);
  });
});

describe('Vercel AI SDK streamText', () => {
  it('@ai-sdk/openai (chat model) with an OpenAI-format key on a Claude model', async () => {
    const key = await createKey('openai');
    const paths = [];
    const openai = createOpenAI({ baseURL: `${env.server.url}/v1`, apiKey: key.key, fetch: recordingFetch(paths) });
    const tag = marker();
    const prompt = `[[mock:tokens:14]] [[mock:slow:20]] [[mock:cached:300]] ${tag}`;

    const result = streamText({ model: openai.chat(CLAUDE), prompt, maxRetries: 0 });
    const parts = [];
    for await (const text of result.textStream) parts.push(text);

    assert.ok(parts.filter(Boolean).length > 1, `expected several text parts, got ${JSON.stringify(parts)}`);
    assert.equal(parts.join(''), mockText(14));
    assert.equal(await result.text, mockText(14));
    assert.equal(await result.finishReason, 'stop');
    const usage = await result.usage;
    const uncached = mockInputTokens([prompt]);
    assert.equal(usage.inputTokens, uncached + 300); // OpenAI's prompt_tokens includes cached
    assert.equal(usage.inputTokenDetails.cacheReadTokens, 300);
    assert.equal(usage.inputTokenDetails.noCacheTokens, uncached);
    assert.equal(usage.outputTokens, 14);
    assert.equal(usage.totalTokens, uncached + 300 + 14);

    assert.deepEqual(paths, ['/v1/chat/completions']);
    const recorded = await upstream(tag, '/v1/messages');
    assertAnthropicUpstream(recorded);
    assert.equal(recorded.body.stream, true);
    const cost = costNano(CLAUDE, { input: uncached, cacheRead: 300, output: 14 });
    assert.equal(await waitForSpend(key.spend_key_id, cost), cost);
  });

  it('@ai-sdk/anthropic with an Anthropic-format key on a GPT model', async () => {
    const key = await createKey('anthropic');
    const paths = [];
    const anthropic = createAnthropic({ baseURL: `${env.server.url}/v1`, apiKey: key.key, fetch: recordingFetch(paths) });
    const tag = marker();
    const prompt = `[[mock:tokens:14]] [[mock:slow:20]] [[mock:cached:300]] ${tag}`;

    const result = streamText({ model: anthropic(GPT), prompt, maxOutputTokens: 512, maxRetries: 0 });
    const parts = [];
    for await (const text of result.textStream) parts.push(text);

    assert.ok(parts.filter(Boolean).length > 1, `expected several text parts, got ${JSON.stringify(parts)}`);
    assert.equal(parts.join(''), mockText(14));
    assert.equal(await result.text, mockText(14));
    assert.equal(await result.finishReason, 'stop');
    const usage = await result.usage;
    const uncached = mockInputTokens([prompt]);
    assert.equal(usage.inputTokens, uncached + 300); // the SDK adds Anthropic's cache reads back
    assert.equal(usage.inputTokenDetails.cacheReadTokens, 300);
    assert.equal(usage.inputTokenDetails.noCacheTokens, uncached);
    assert.equal(usage.outputTokens, 14);
    assert.equal(usage.totalTokens, uncached + 300 + 14);

    assert.deepEqual(paths, ['/v1/messages']);
    const recorded = await upstream(tag, '/v1/chat/completions');
    assertOpenAIUpstream(recorded);
    assert.equal(recorded.body.stream, true);
    assert.equal(recorded.body.stream_options.include_usage, true);
    assert.equal(recorded.body.max_completion_tokens, 512);
    const cost = costNano(GPT, { input: uncached, cacheRead: 300, output: 14 });
    assert.equal(await waitForSpend(key.spend_key_id, cost), cost);
  });

  it('a streamed tool call, both directions', async () => {
    const weather = tool({ description: 'The weather in a city.', inputSchema: jsonSchema(WEATHER_SCHEMA) });

    const openaiKey = await createKey('openai');
    const openai = createOpenAI({ baseURL: `${env.server.url}/v1`, apiKey: openaiKey.key });
    const onClaude = streamText({
      model: openai.chat(CLAUDE),
      prompt: `Weather? [[mock:tool]] ${marker()}`,
      tools: { get_weather: weather },
      maxRetries: 0,
    });
    await onClaude.consumeStream();
    assert.equal(await onClaude.finishReason, 'tool-calls');
    assert.equal(await onClaude.text, TOOL_PREAMBLE);
    const claudeCalls = await onClaude.toolCalls;
    assert.deepEqual(
      claudeCalls.map((c) => [c.toolName, c.input]),
      [['get_weather', TOOL_ARGUMENTS]],
    );
    assert.match(claudeCalls[0].toolCallId, /^toolu_/);
    assert.equal((await onClaude.usage).outputTokens, TOOL_OUTPUT_TOKENS);

    const anthropicKey = await createKey('anthropic');
    const anthropic = createAnthropic({ baseURL: `${env.server.url}/v1`, apiKey: anthropicKey.key });
    const onGpt = streamText({
      model: anthropic(GPT),
      prompt: `Weather? [[mock:tool]] ${marker()}`,
      tools: { get_weather: weather },
      maxOutputTokens: 512,
      maxRetries: 0,
    });
    await onGpt.consumeStream();
    assert.equal(await onGpt.finishReason, 'tool-calls');
    const gptCalls = await onGpt.toolCalls;
    assert.deepEqual(
      gptCalls.map((c) => [c.toolName, c.input]),
      [['get_weather', TOOL_ARGUMENTS]],
    );
    assert.match(gptCalls[0].toolCallId, /^call_/);
    assert.equal((await onGpt.usage).outputTokens, TOOL_OUTPUT_TOKENS);
  });
});
