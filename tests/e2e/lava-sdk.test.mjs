// End-to-end: the published Lava Node SDK (@lavapayments/nodejs 11.x) against a real
// spendgate server. Contract: shared/spec/management-api.md (wallet API).
//
// One server for the whole file; wallets "alpha" (most tests) and "bravo" (exact list
// counts, isolation) are created with the CLI before the server starts, wallet "charlie"
// while it runs.

import { after, before, describe, it as nodeIt } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { Lava } from '@lavapayments/nodejs';

import { createWallet, startEnvironment, tail } from './harness.mjs';

const SK_PREFIX = 'lava_sk_';
const SPEND_KEY_FIELDS = [
  'spend_key_id',
  'key_preview',
  'name',
  'status',
  'request_shape',
  'wallet_id',
  'allowed_models',
  'allowed_providers',
  'spend_limit',
  'current_spend',
  'total_spend',
  'request_limit',
  'current_requests',
  'total_requests',
  'rate_limit',
  'expires_at',
  'last_used_at',
  'created_at',
].sort();
const CREATED_FIELDS = [...SPEND_KEY_FIELDS, 'key'].sort();
const RFC3339_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;
const URL_SAFE_RE = /^[A-Za-z0-9_-]+$/;

let env; // from startEnvironment
let alpha; // Lava client for wallet alpha
let bravo; // Lava client for wallet bravo
let failures = 0;
const secretsSeen = new Set(); // every full key returned by the server (spend and wallet keys)

// node:test in Node 20 cannot tell an after() hook whether tests failed; count it ourselves
// so the server log is printed (and the temp dir kept) when something went wrong.
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

function client(key) {
  return new Lava(key, { baseUrl: env.server.baseUrl });
}

async function createKey(lava, params) {
  const created = await lava.spendKeys.create(params);
  if (typeof created?.key === 'string') secretsSeen.add(created.key);
  return created;
}

async function rotateKey(lava, id) {
  const rotated = await lava.spendKeys.rotate(id);
  if (typeof rotated?.key === 'string') secretsSeen.add(rotated.key);
  return rotated;
}

function withoutKey(obj) {
  const { key: _key, ...rest } = obj;
  return rest;
}

/** Every spend key of a wallet, following next_cursor with the maximum page size. */
async function listAll(lava) {
  const all = [];
  let cursor;
  for (let page = 0; page < 1000; page += 1) {
    const res = await lava.spendKeys.list(cursor ? { limit: 100, cursor } : { limit: 100 });
    all.push(...res.data);
    if (!res.has_more) return all;
    assert.equal(typeof res.next_cursor, 'string', 'has_more is true but next_cursor is not a string');
    cursor = res.next_cursor;
  }
  throw new Error('listAll: more than 1000 pages, pagination does not terminate');
}

/**
 * Await a call that must fail; check the SDK's error ("Lava API Error: <status> <text> - <JSON>")
 * and the server's error object {type, message, param?}. Returns {message, body}.
 */
async function expectApiError(promise, status, { type, param, mustNotContain = [] } = {}) {
  let value;
  let error;
  try {
    value = await promise;
  } catch (e) {
    error = e;
  }
  assert.ok(error, `expected a ${status} error, but the call succeeded with ${JSON.stringify(value)}`);
  assert.ok(error instanceof Error, `expected an Error, got ${String(error)}`);
  const m = /^Lava API Error: (\d{3}) (.*?) - (.*)$/s.exec(error.message);
  assert.ok(m, `not an SDK API error (network failure?): ${error.message}`);
  assert.equal(Number(m[1]), status, `wrong status: ${error.message}`);
  assert.ok(error.message.includes(String(status)));
  let body;
  try {
    body = JSON.parse(m[3]);
  } catch {
    assert.fail(`error payload is not a JSON object {"error":{type,message,param?}}: ${error.message}`);
  }
  assert.equal(typeof body, 'object', `error payload is not an object: ${error.message}`);
  assert.notEqual(body, null);
  assert.equal(typeof body.message, 'string', `error.message missing: ${error.message}`);
  assert.ok(body.message.length > 0, `error.message empty: ${error.message}`);
  if (type !== undefined) assert.equal(body.type, type, `wrong error.type: ${error.message}`);
  if (param !== undefined) assert.equal(body.param, param, `wrong error.param: ${error.message}`);
  for (const secret of mustNotContain) {
    assert.ok(!error.message.includes(secret), `error message leaks a secret: ${error.message}`);
  }
  return { message: error.message, body };
}

function assertTimestamp(value, what) {
  assert.equal(typeof value, 'string', `${what} is not a string: ${JSON.stringify(value)}`);
  assert.match(value, RFC3339_RE, `${what} is not an RFC 3339 timestamp: ${value}`);
  assert.ok(Number.isFinite(Date.parse(value)), `${what} does not parse: ${value}`);
}

function assertSpendKeyShape(obj, { created }) {
  assert.equal(typeof obj, 'object');
  assert.deepEqual(
    Object.keys(obj).sort(),
    created ? CREATED_FIELDS : SPEND_KEY_FIELDS,
    'the object must have exactly the contract fields',
  );
  assert.equal(typeof obj.spend_key_id, 'string');
  assert.ok(obj.spend_key_id.length > 0, 'spend_key_id is empty');
  assert.match(obj.spend_key_id, URL_SAFE_RE, `spend_key_id is not URL-safe: ${obj.spend_key_id}`);
  assert.equal(typeof obj.key_preview, 'string');
  assert.ok(obj.key_preview.startsWith(SK_PREFIX), `key_preview: ${obj.key_preview}`);
  assert.ok(obj.key_preview.endsWith('****'), `key_preview: ${obj.key_preview}`);
  assert.ok(obj.key_preview.length < 20, `key_preview too long: ${obj.key_preview}`);
  assert.equal(typeof obj.wallet_id, 'string');
  assert.ok(obj.wallet_id.startsWith('wal_'), `wallet_id: ${obj.wallet_id}`);
  assertTimestamp(obj.created_at, 'created_at');
  if (created) {
    assert.equal(typeof obj.key, 'string');
    assert.ok(obj.key.startsWith(SK_PREFIX), `key does not start with ${SK_PREFIX}`);
    assert.ok(obj.key.length - SK_PREFIX.length >= 40, `key too short: ${obj.key.length} chars`);
    assert.notEqual(obj.key_preview, obj.key);
    assert.ok(!obj.key_preview.includes(obj.key.slice(SK_PREFIX.length)), 'key_preview contains the secret');
  }
}

function oneYearAhead() {
  // Whole seconds, so the comparison does not depend on sub-second precision.
  return new Date(Math.floor((Date.now() + 365 * 24 * 3600 * 1000) / 1000) * 1000).toISOString();
}

function fullParams(overrides = {}) {
  return {
    name: 'Agent - Production',
    request_shape: 'anthropic',
    allowed_models: ['gpt-4o-mini', 'claude-sonnet-4-20250514'],
    allowed_providers: ['openai', 'anthropic'],
    spend_limit: { amount: '50.00', cycle: 'monthly' },
    request_limit: { count: 1000, cycle: 'daily' },
    rate_limit: { rpm: 60, burst: 10 },
    expires_at: oneYearAhead(),
    status: 'paused',
    ...overrides,
  };
}

/** An id shaped like `id` (same length and alphabet) that names no key. */
function lookalikeId(id) {
  const tailChars = id
    .slice(-4)
    .split('')
    .map((c) => (c === 'a' ? 'b' : 'a'))
    .join('');
  return id.slice(0, -4) + tailChars;
}

before(async () => {
  env = await startEnvironment({ wallets: ['alpha', 'bravo'] });
  for (const w of Object.values(env.wallets)) secretsSeen.add(w.key);
  alpha = client(env.wallets.alpha.key);
  bravo = client(env.wallets.bravo.key);
});

after(async () => {
  if (!env) return;
  const keep = failures > 0 || process.env.SPENDGATE_E2E_KEEP === '1';
  if (failures > 0) {
    console.error(
      `\n${failures} test(s) failed. Server log (${env.server.logPath}), last 120 lines:\n` +
        tail(env.server.output(), 120),
    );
  }
  await env.cleanup({ keep });
  if (keep) console.error(`temp dir kept: ${env.dir}`);
});

describe('1. spendKeys.create', () => {
  it('create with every option returns every field, as sent', async () => {
    const params = fullParams();
    const t0 = Date.now();
    const k = await createKey(alpha, params);
    assertSpendKeyShape(k, { created: true });

    assert.equal(k.wallet_id, env.wallets.alpha.wallet_id, 'wallet_id must be the wallet the key belongs to');
    assert.equal(k.name, 'Agent - Production');
    assert.equal(k.status, 'paused');
    assert.equal(k.request_shape, 'anthropic');
    assert.deepEqual(k.allowed_models, ['gpt-4o-mini', 'claude-sonnet-4-20250514']);
    assert.deepEqual(k.allowed_providers, ['openai', 'anthropic']);
    assert.deepEqual(k.spend_limit, { amount: '50.00', cycle: 'monthly' });
    assert.deepEqual(k.request_limit, { count: 1000, cycle: 'daily' });
    assert.deepEqual(k.rate_limit, { rpm: 60, burst: 10 });
    assertTimestamp(k.expires_at, 'expires_at');
    assert.equal(Date.parse(k.expires_at), Date.parse(params.expires_at), `expires_at ${k.expires_at}`);
    assert.strictEqual(k.current_spend, '0.00');
    assert.strictEqual(k.total_spend, '0.00');
    assert.strictEqual(k.current_requests, 0);
    assert.strictEqual(k.total_requests, 0);
    assert.strictEqual(k.last_used_at, null);
    const createdAt = Date.parse(k.created_at);
    assert.ok(Math.abs(createdAt - t0) < 60_000, `created_at ${k.created_at} is not within a minute of now`);
  });

  it('create with only a name applies the documented defaults', async () => {
    const k = await createKey(alpha, { name: 'minimal' });
    assertSpendKeyShape(k, { created: true });
    assert.equal(k.wallet_id, env.wallets.alpha.wallet_id);
    assert.equal(k.name, 'minimal');
    assert.equal(k.status, 'active');
    assert.equal(k.request_shape, 'openai');
    assert.strictEqual(k.allowed_models, null);
    assert.strictEqual(k.allowed_providers, null);
    assert.strictEqual(k.spend_limit, null);
    assert.strictEqual(k.request_limit, null);
    assert.strictEqual(k.rate_limit, null);
    assert.strictEqual(k.expires_at, null);
    assert.strictEqual(k.current_spend, '0.00');
    assert.strictEqual(k.total_spend, '0.00');
    assert.strictEqual(k.current_requests, 0);
    assert.strictEqual(k.total_requests, 0);
    assert.strictEqual(k.last_used_at, null);
    assert.ok(Math.abs(Date.parse(k.created_at) - Date.now()) < 60_000, `created_at ${k.created_at}`);
  });

  it('two creates give distinct ids, keys and previews', async () => {
    const a = await createKey(alpha, { name: 'twin' });
    const b = await createKey(alpha, { name: 'twin' });
    assert.notEqual(a.spend_key_id, b.spend_key_id);
    assert.notEqual(a.key, b.key);
    assert.notEqual(a.key_preview, b.key_preview);
  });
});

describe('2. spendKeys.list pagination (fresh wallet bravo)', () => {
  const createdIds = []; // in creation order
  const createdById = new Map();

  it('a fresh wallet lists nothing', async () => {
    const initial = await bravo.spendKeys.list({ limit: 10 });
    assert.deepEqual(initial.data, [], 'wallet bravo must start empty');
    assert.equal(initial.has_more, false);
    assert.ok(!('next_cursor' in initial), `next_cursor present on an empty list: ${initial.next_cursor}`);
  });

  it('25 keys come back as pages of 10, 10, 5, newest first, without secrets', async () => {
    for (let i = 0; i < 25; i += 1) {
      const k = await createKey(bravo, { name: `list-${String(i).padStart(2, '0')}` });
      createdIds.push(k.spend_key_id);
      createdById.set(k.spend_key_id, k);
    }
    const newestFirst = [...createdIds].reverse();

    const page1 = await bravo.spendKeys.list({ limit: 10 });
    assert.equal(page1.data.length, 10);
    assert.equal(page1.has_more, true);
    assert.equal(typeof page1.next_cursor, 'string');
    assert.ok(page1.next_cursor.length > 0);

    const page2 = await bravo.spendKeys.list({ limit: 10, cursor: page1.next_cursor });
    assert.equal(page2.data.length, 10);
    assert.equal(page2.has_more, true);
    assert.equal(typeof page2.next_cursor, 'string');
    assert.ok(page2.next_cursor.length > 0);
    assert.notEqual(page2.next_cursor, page1.next_cursor);

    const page3 = await bravo.spendKeys.list({ limit: 10, cursor: page2.next_cursor });
    assert.equal(page3.data.length, 5);
    assert.equal(page3.has_more, false);
    assert.strictEqual(page3.next_cursor, undefined);
    assert.ok(!('next_cursor' in page3), 'next_cursor must be absent on the last page (not null)');

    const pages = [page1, page2, page3];
    for (const p of pages) {
      assert.deepEqual(Object.keys(p).sort(), p.has_more ? ['data', 'has_more', 'next_cursor'] : ['data', 'has_more']);
    }
    const listed = pages.flatMap((p) => p.data);
    const ids = listed.map((k) => k.spend_key_id);
    assert.equal(new Set(ids).size, ids.length, 'duplicate ids across pages');
    assert.deepEqual(new Set(ids), new Set(createdIds), 'all 25 keys must be listed');
    assert.deepEqual(ids, newestFirst, 'keys must be listed newest first');

    for (const item of listed) {
      assert.ok(!('key' in item), `listed object has a key field: ${item.spend_key_id}`);
      assertSpendKeyShape(item, { created: false });
      assert.deepEqual(item, withoutKey(createdById.get(item.spend_key_id)), 'listed object equals the created one minus key');
      assert.equal(item.wallet_id, env.wallets.bravo.wallet_id);
    }
  });

  it('default limit is 10; limit equal to the count has has_more false', async () => {
    const newestFirst = [...createdIds].reverse();
    const def = await bravo.spendKeys.list();
    assert.deepEqual(
      def.data.map((k) => k.spend_key_id),
      newestFirst.slice(0, 10),
    );
    assert.equal(def.has_more, true);

    const exact = await bravo.spendKeys.list({ limit: 25 });
    assert.equal(exact.data.length, 25);
    assert.equal(exact.has_more, false, 'limit == number of keys: there is no more');
    assert.ok(!('next_cursor' in exact));

    const big = await bravo.spendKeys.list({ limit: 100 });
    assert.deepEqual(
      big.data.map((k) => k.spend_key_id),
      newestFirst,
    );
    assert.equal(big.has_more, false);
  });

  it('a cursor stays valid and stable while keys are created', async () => {
    const newestFirst = [...createdIds].reverse();
    const page1 = await bravo.spendKeys.list({ limit: 10 });
    const extra = await createKey(bravo, { name: 'list-extra' });
    const page2 = await bravo.spendKeys.list({ limit: 10, cursor: page1.next_cursor });
    assert.deepEqual(
      page2.data.map((k) => k.spend_key_id),
      newestFirst.slice(10, 20),
      'the page after the cursor must not shift when a newer key is created',
    );
    const fresh = await bravo.spendKeys.list({ limit: 10 });
    assert.equal(fresh.data[0].spend_key_id, extra.spend_key_id, 'the new key is listed first');
  });
});

describe('3. spendKeys.retrieve', () => {
  it('returns the created object minus key (full key)', async () => {
    const k = await createKey(alpha, fullParams({ name: 'retrieve-full' }));
    const got = await alpha.spendKeys.retrieve(k.spend_key_id);
    assert.ok(!('key' in got), 'retrieve must not return the secret');
    assertSpendKeyShape(got, { created: false });
    assert.deepEqual(got, withoutKey(k));
  });

  it('returns the created object minus key (minimal key)', async () => {
    const k = await createKey(alpha, { name: 'retrieve-minimal' });
    const got = await alpha.spendKeys.retrieve(k.spend_key_id);
    assert.ok(!('key' in got));
    assert.deepEqual(got, withoutKey(k));
  });

  it('an unknown id is 404', async () => {
    const k = await createKey(alpha, { name: 'retrieve-404' });
    await expectApiError(alpha.spendKeys.retrieve(lookalikeId(k.spend_key_id)), 404, { type: 'not_found_error' });
  });
});

describe('4. spendKeys.update', () => {
  it('partial updates change only the fields present; null clears', async () => {
    const created = await createKey(alpha, fullParams({ name: 'to-update' }));
    const id = created.spend_key_id;
    let current = withoutKey(created);

    async function step(params, changes) {
      const updated = await alpha.spendKeys.update(id, params);
      assert.ok(!('key' in updated), 'update must not return the secret');
      assertSpendKeyShape(updated, { created: false });
      const expected = { ...current, ...changes };
      assert.deepEqual(updated, expected, `update ${JSON.stringify(params)}`);
      const retrieved = await alpha.spendKeys.retrieve(id);
      assert.deepEqual(retrieved, updated, `retrieve after update ${JSON.stringify(params)}`);
      current = updated;
    }

    await step({ name: 'renamed' }, { name: 'renamed' });
    await step({ spend_limit: null }, { spend_limit: null });
    await step(
      { spend_limit: { amount: '100.00', cycle: 'weekly' }, allowed_models: ['gpt-4o-mini'] },
      { spend_limit: { amount: '100.00', cycle: 'weekly' }, allowed_models: ['gpt-4o-mini'] },
    );
    await step({ status: 'active' }, { status: 'active' });
    await step({ rate_limit: { rpm: 30 } }, { rate_limit: { rpm: 30, burst: null } });
    await step(
      { expires_at: null, request_limit: { count: 5, cycle: 'total' }, allowed_providers: null },
      { expires_at: null, request_limit: { count: 5, cycle: 'total' }, allowed_providers: null },
    );
    await step({ request_shape: 'openai', status: 'paused' }, { request_shape: 'openai', status: 'paused' });

    // The secret never changed.
    assert.equal(current.key_preview, created.key_preview);
  });

  it('an invalid update is 400 and changes nothing', async () => {
    const created = await createKey(alpha, fullParams({ name: 'bad-update' }));
    const id = created.spend_key_id;
    await expectApiError(
      alpha.spendKeys.update(id, { name: 'should-not-stick', spend_limit: { amount: '-1', cycle: 'daily' } }),
      400,
      { type: 'invalid_request_error', param: 'spend_limit.amount' },
    );
    assert.deepEqual(await alpha.spendKeys.retrieve(id), withoutKey(created));
  });
});

describe('5. spendKeys.rotate', () => {
  it('returns a new secret for the same key; everything else is kept', async () => {
    const created = await createKey(alpha, fullParams({ name: 'to-rotate', status: 'active' }));
    const rotated = await rotateKey(alpha, created.spend_key_id);
    assertSpendKeyShape(rotated, { created: true });
    assert.notEqual(rotated.key, created.key, 'rotate must return a new key');
    assert.equal(rotated.spend_key_id, created.spend_key_id);
    assert.notEqual(rotated.key_preview, created.key_preview, 'key_preview must follow the new key');
    const { key_preview: _a, ...restRotated } = withoutKey(rotated);
    const { key_preview: _b, ...restCreated } = withoutKey(created);
    assert.deepEqual(restRotated, restCreated, 'name, limits, usage and timestamps are kept');

    const got = await alpha.spendKeys.retrieve(created.spend_key_id);
    assert.ok(!('key' in got), 'retrieve after rotate must not return the secret');
    assert.deepEqual(got, withoutKey(rotated));
  });

  it('after rotate the old secret is refused and the new one accepted (GET /v1/models)', async () => {
    const created = await createKey(alpha, { name: 'rotate-auth' });
    const beforeRotate = await client(created.key).models.list();
    assert.equal(beforeRotate.object, 'list', 'a fresh active spend key can list models');
    const rotated = await rotateKey(alpha, created.spend_key_id);
    await expectApiError(client(created.key).models.list(), 401, {
      type: 'authentication_error',
      mustNotContain: [created.key],
    });
    const afterRotate = await client(rotated.key).models.list();
    assert.equal(afterRotate.object, 'list');
  });
});

describe('6. spendKeys.revoke', () => {
  it('revoke answers {success: true}; the key is gone from list, retrieve, update and rotate', async () => {
    const created = await createKey(alpha, { name: 'to-revoke' });
    const id = created.spend_key_id;
    const res = await alpha.spendKeys.revoke(id);
    assert.deepEqual(res, { success: true });

    const all = await listAll(alpha);
    assert.ok(all.length > 0, 'wallet alpha still has other keys');
    assert.ok(!all.some((k) => k.spend_key_id === id), 'a revoked key must not be listed');

    await expectApiError(alpha.spendKeys.retrieve(id), 404, { type: 'not_found_error' });
    await expectApiError(alpha.spendKeys.update(id, { name: 'zombie' }), 404, { type: 'not_found_error' });
    await expectApiError(alpha.spendKeys.rotate(id), 404, { type: 'not_found_error' });
  });

  it('a revoked secret is refused (GET /v1/models answers 401)', async () => {
    const created = await createKey(alpha, { name: 'revoke-auth' });
    assert.equal((await client(created.key).models.list()).object, 'list');
    await alpha.spendKeys.revoke(created.spend_key_id);
    await expectApiError(client(created.key).models.list(), 401, {
      type: 'authentication_error',
      mustNotContain: [created.key],
    });
  });
});

describe('7. models.list', () => {
  it('with a wallet key: every routable model, OpenAI-shaped', async () => {
    const res = await alpha.models.list();
    assert.equal(res.object, 'list');
    assert.ok(Array.isArray(res.data), 'data is an array');
    assert.ok(res.data.length > 0, 'data is non-empty');
    for (const m of res.data) {
      assert.equal(typeof m.id, 'string', JSON.stringify(m));
      assert.ok(m.id.length > 0);
      assert.equal(m.object, 'model', JSON.stringify(m));
      assert.equal(typeof m.created, 'number', JSON.stringify(m));
      assert.ok(Number.isInteger(m.created), JSON.stringify(m));
      assert.equal(typeof m.owned_by, 'string', JSON.stringify(m));
    }
    const ids = res.data.map((m) => m.id);
    assert.equal(new Set(ids).size, ids.length, 'duplicate model ids');
    const byId = new Map(res.data.map((m) => [m.id, m]));
    assert.ok(byId.has('gpt-4o-mini'), `gpt-4o-mini missing from ${ids.join(', ')}`);
    assert.equal(byId.get('gpt-4o-mini').owned_by, 'openai');
    assert.ok(byId.has('claude-sonnet-4-20250514'), `claude-sonnet-4-20250514 missing from ${ids.join(', ')}`);
    assert.equal(byId.get('claude-sonnet-4-20250514').owned_by, 'anthropic');
  });

  it('with a spend key: only what that key may use', async () => {
    const byModels = await createKey(alpha, {
      name: 'models-by-model',
      allowed_models: ['gpt-4o-mini', 'claude-sonnet-4-20250514'],
    });
    const r1 = await client(byModels.key).models.list();
    assert.equal(r1.object, 'list');
    assert.deepEqual(r1.data.map((m) => m.id).sort(), ['claude-sonnet-4-20250514', 'gpt-4o-mini']);

    const byProvider = await createKey(alpha, { name: 'models-by-provider', allowed_providers: ['anthropic'] });
    const r2 = await client(byProvider.key).models.list();
    assert.equal(r2.object, 'list');
    assert.ok(r2.data.length > 0);
    for (const m of r2.data) assert.equal(m.owned_by, 'anthropic', `model ${m.id} is not an anthropic model`);
    const ids2 = r2.data.map((m) => m.id);
    assert.ok(ids2.includes('claude-sonnet-4-20250514'));
    assert.ok(!ids2.includes('gpt-4o-mini'));
  });
});

describe('8. errors through the SDK', () => {
  it('create with an empty name is 400 naming the field', async () => {
    const { message } = await expectApiError(alpha.spendKeys.create({ name: '' }), 400, {
      type: 'invalid_request_error',
      param: 'name',
    });
    assert.ok(message.includes('400') && message.includes('name'));
  });

  it('create with a negative spend_limit amount is 400 naming spend_limit.amount', async () => {
    const { message } = await expectApiError(
      alpha.spendKeys.create({ name: 'neg', spend_limit: { amount: '-5', cycle: 'monthly' } }),
      400,
      { type: 'invalid_request_error', param: 'spend_limit.amount' },
    );
    assert.ok(message.includes('400') && message.includes('spend_limit.amount'));
  });

  it('other invalid values are 400 with the field in param, and create nothing', async () => {
    const countBefore = (await listAll(alpha)).length;
    const cases = [
      [{ name: 'x'.repeat(201) }, 'name'],
      [{ name: 'bad', spend_limit: { amount: 'abc', cycle: 'monthly' } }, 'spend_limit.amount'],
      [{ name: 'bad', spend_limit: { amount: '', cycle: 'monthly' } }, 'spend_limit.amount'],
      [{ name: 'bad', spend_limit: { amount: 'NaN', cycle: 'monthly' } }, 'spend_limit.amount'],
      [{ name: 'bad', spend_limit: { amount: '10.00', cycle: 'yearly' } }, 'spend_limit.cycle'],
      [{ name: 'bad', request_limit: { count: 0, cycle: 'daily' } }, 'request_limit.count'],
      [{ name: 'bad', rate_limit: { rpm: 0 } }, 'rate_limit.rpm'],
      [{ name: 'bad', status: 'deleted' }, 'status'],
      [{ name: 'bad', request_shape: 'gemini' }, 'request_shape'],
      [{ name: 'bad', expires_at: 'not-a-date' }, 'expires_at'],
    ];
    const problems = [];
    for (const [params, param] of cases) {
      try {
        await expectApiError(alpha.spendKeys.create(params), 400, { type: 'invalid_request_error', param });
      } catch (e) {
        problems.push(`create ${JSON.stringify(params).slice(0, 120)}: ${e.message.split('\n')[0]}`);
      }
    }
    assert.deepEqual(problems, [], `\n${problems.join('\n')}`);
    assert.equal((await listAll(alpha)).length, countBefore, 'a rejected create must not create a key');
  });

  it('an unknown wallet key is 401', async () => {
    await expectApiError(client('lava_wk_nope').spendKeys.list(), 401, {
      type: 'authentication_error',
      mustNotContain: ['lava_wk_nope'],
    });
  });

  it('a spend key is not a management credential: 401', async () => {
    const k = await createKey(alpha, { name: 'not-a-wallet-key' });
    await expectApiError(client(k.key).spendKeys.list(), 401, {
      type: 'authentication_error',
      mustNotContain: [k.key],
    });
    await expectApiError(client(k.key).spendKeys.create({ name: 'via-spend-key' }), 401, {
      type: 'authentication_error',
      mustNotContain: [k.key],
    });
  });
});

describe('9. wallet isolation', () => {
  let isolatedKey;

  it("wallet bravo gets 404 for everything on wallet alpha's key, which stays untouched", async () => {
    const a = await createKey(alpha, fullParams({ name: 'alpha-private', status: 'active' }));
    const id = a.spend_key_id;

    const errs = [];
    errs.push(await expectApiError(bravo.spendKeys.retrieve(id), 404, { type: 'not_found_error' }));
    errs.push(await expectApiError(bravo.spendKeys.update(id, { name: 'hijacked' }), 404, { type: 'not_found_error' }));
    errs.push(await expectApiError(bravo.spendKeys.rotate(id), 404, { type: 'not_found_error' }));
    errs.push(await expectApiError(bravo.spendKeys.revoke(id), 404, { type: 'not_found_error' }));

    const bravoIds = (await listAll(bravo)).map((k) => k.spend_key_id);
    assert.ok(!bravoIds.includes(id), "wallet bravo lists wallet alpha's key");

    const got = await alpha.spendKeys.retrieve(id);
    assert.deepEqual(got, withoutKey(a), "wallet alpha's key must be unchanged (name, key_preview, status)");
    assert.ok((await listAll(alpha)).some((k) => k.spend_key_id === id));

    // No existence oracle: the answer for another wallet's id is the answer for an id
    // that does not exist (up to the id itself).
    const ghost = lookalikeId(id);
    const ghostErr = await expectApiError(bravo.spendKeys.retrieve(ghost), 404, { type: 'not_found_error' });
    assert.equal(errs[0].message.replaceAll(id, '<id>'), ghostErr.message.replaceAll(ghost, '<id>'));
    isolatedKey = a;
  });

  it("the other wallet's failed rotate/revoke left the secret working (GET /v1/models)", async (t) => {
    if (!isolatedKey) return t.skip('previous test did not get that far');
    assert.equal((await client(isolatedKey.key).models.list()).object, 'list');
  });
});

describe('10. wallets created while the server runs', () => {
  it('a wallet created with the CLI during serve works at once', async () => {
    const charlie = await createWallet({ name: 'charlie', database: env.database });
    secretsSeen.add(charlie.key);
    assert.notEqual(charlie.wallet_id, env.wallets.alpha.wallet_id);
    assert.notEqual(charlie.wallet_id, env.wallets.bravo.wallet_id);
    const c = client(charlie.key);
    const empty = await c.spendKeys.list();
    assert.deepEqual(empty.data, []);
    assert.equal(empty.has_more, false);
    const k = await createKey(c, { name: 'charlie-key' });
    assert.equal(k.wallet_id, charlie.wallet_id);
    assert.deepEqual(
      (await c.spendKeys.list()).data.map((x) => x.spend_key_id),
      [k.spend_key_id],
    );
  });
});

describe('11. secrets are never logged or stored in clear (runs last)', () => {
  it('no full key appears in the server output', () => {
    assert.ok(secretsSeen.size >= 2, 'the two wallet keys at least');
    const out = env.server.output();
    const leaked = [...secretsSeen].filter((s) => out.includes(s) || out.includes(s.slice(8)));
    assert.deepEqual(leaked.map((s) => `${s.slice(0, 12)}...`), [], 'secrets found in the server log');
  });

  it('no full key appears in the SQLite files (only hashes are stored)', () => {
    const base = join(env.dir, 'spendgate.db');
    const files = [base, `${base}-wal`].filter((f) => existsSync(f));
    assert.ok(files.length > 0, `no database file at ${base}`);
    const blobs = files.map((f) => readFileSync(f).toString('latin1'));
    const leaked = [...secretsSeen].filter((s) => blobs.some((b) => b.includes(s.slice(8))));
    assert.deepEqual(leaked.map((s) => `${s.slice(0, 12)}...`), [], 'secrets stored in clear in the database');
  });
});
