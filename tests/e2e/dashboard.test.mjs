// End-to-end test of the web dashboard in a real browser (Debian's Chromium driven by
// playwright-core) against a real gateway and the mock provider.
//
// Covers: sign-in (wrong key refused, message shown), the key lifecycle through the UI
// (create with limits and a model list, the secret shown once, a real request with it,
// usage and the request log appearing, pause -> 401, resume, rotate -> old secret 401 and
// new one works, revoke with confirmation), sign-out, session expiry, CSRF, and that no
// page ever loads anything from another origin. Screenshots of every page, at desktop
// width and at 390 px, go to tests/e2e/artifacts/.
//
// Environment:
//   SPENDGATE_CHROMIUM  browser binary (default /usr/bin/chromium; Debian: apt-get install chromium)

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { E2E_DIR, startEnvironment, tail } from './harness.mjs';

const CHROMIUM = process.env.SPENDGATE_CHROMIUM || '/usr/bin/chromium';
const ARTIFACTS = join(E2E_DIR, 'artifacts');
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const RECORD_WAIT_MS = 15_000;

let env;
let origin;
let walletKey;

before(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `Chromium not found at ${CHROMIUM}. Install it (Debian/Ubuntu: apt-get install -y chromium) ` +
        'or point SPENDGATE_CHROMIUM at a Chromium binary.',
    );
  }
  mkdirSync(ARTIFACTS, { recursive: true });
  env = await startEnvironment({ wallets: ['Acme Robotics'], mockProvider: true });
  origin = env.server.url;
  walletKey = env.wallets['Acme Robotics'].key;
});

after(async () => {
  if (env) await env.cleanup();
});

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/** A fresh Chromium profile; records every request URL, CSP violations and page errors. */
async function openBrowser({ width = 1280, height = 900 } = {}) {
  const profile = mkdtempSync(join(tmpdir(), 'spendgate-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width, height },
    locale: 'en-US',
    colorScheme: 'light',
    acceptDownloads: true,
  });
  const requests = [];
  const problems = [];
  context.on('request', (r) => requests.push(r.url()));
  const page = context.pages()[0] || (await context.newPage());
  page.on('console', (m) => {
    if (/Content Security Policy|Refused to (load|execute|apply|connect|frame)/i.test(m.text())) problems.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.setDefaultTimeout(10_000);
  return {
    context,
    page,
    requests,
    problems,
    /** Every request the pages made went to the gateway: nothing left the machine. */
    assertLocalOnly() {
      const foreign = requests.filter((u) => !(u.startsWith(`${origin}/`) || u === origin || u.startsWith('data:') || u.startsWith('blob:') || u === 'about:blank'));
      assert.deepEqual(foreign, [], `requests to another origin than ${origin}`);
      assert.ok(requests.length > 0, 'the browser made requests');
      assert.deepEqual(problems, [], 'CSP violations or page errors');
    },
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/**
 * A screenshot of the whole page. The window is made as tall as the page for the shot
 * (rather than fullPage) so that sticky bars sit where a reader expects them.
 */
async function screenshot(page, name) {
  const viewport = page.viewportSize();
  const height = await page.evaluate(() => document.documentElement.scrollHeight);
  await page.setViewportSize({ width: viewport.width, height: Math.max(viewport.height, Math.min(height, 8000)) });
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.waitForTimeout(200);
  await page.screenshot({ path: join(ARTIFACTS, `${name}-${viewport.width}.png`) });
  await page.setViewportSize(viewport);
}

async function signIn(page, key = walletKey) {
  await page.goto(`${origin}/`);
  await page.getByLabel('Wallet API key').fill(key);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

async function signedIn(page) {
  await signIn(page);
  await page.locator('#topbar:not([hidden])').waitFor();
  await page.getByRole('heading', { level: 1, name: 'AI Spend', exact: true }).waitFor();
}

/** A chat completion through the gateway with a spend key, from Node (not the browser). */
async function chat(secret, model = 'gpt-4o-mini') {
  const res = await fetch(`${origin}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model, messages: [{ role: 'user', content: 'Hello from the dashboard test' }], max_tokens: 32 }),
  });
  return { status: res.status, body: await res.text() };
}

/** The Cookie header the browser holds for the gateway. */
async function cookieHeader(context) {
  const cookies = await context.cookies(origin);
  return cookies.map((c) => `${c.name}=${c.value}`).join('; ');
}

/** Click the page's Refresh button until check() holds (the record writer batches). */
async function refreshUntil(page, check, what) {
  const deadline = Date.now() + RECORD_WAIT_MS;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) assert.fail(`timed out after ${RECORD_WAIT_MS} ms waiting for ${what}`);
    await page.waitForTimeout(400);
    await page.locator('#refresh').click();
    await page.locator('#refresh:not([aria-busy])').waitFor();
  }
}

async function noHorizontalOverflow(page, what) {
  const { scroll, inner } = await page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, inner: window.innerWidth }));
  assert.ok(scroll <= inner + 1, `${what}: page is ${scroll}px wide in a ${inner}px viewport`);
}

async function unlabelledControls(page) {
  return page.evaluate(() =>
    [...document.querySelectorAll('main input, main select, main textarea, dialog input')]
      .filter((el) => el.type !== 'hidden' && el.offsetParent !== null)
      .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute('aria-label') && !el.getAttribute('aria-labelledby'))
      .map((el) => el.outerHTML.slice(0, 120)),
  );
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

test('the dashboard is served with its CSP and assets from the gateway', async () => {
  const res = await fetch(`${origin}/`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') || '', /text\/html/);
  const csp = res.headers.get('content-security-policy') || '';
  assert.match(csp, /script-src 'self'/);
  assert.match(csp, /frame-ancestors 'none'/);
  const html = await res.text();
  assert.doesNotMatch(html, /<script>|<style|style="|https?:\/\//, 'no inline script or style, no absolute URLs');
  for (const [path, type] of [
    ['/assets/app.js', /javascript/],
    ['/assets/app.css', /css/],
    ['/assets/favicon.svg', /svg/],
  ]) {
    const a = await fetch(`${origin}${path}`);
    assert.equal(a.status, 200, path);
    assert.match(a.headers.get('content-type') || '', type, path);
    const body = await a.text();
    assert.doesNotMatch(body, /https?:\/\/(?!www\.w3\.org\/2000\/svg)/, `${path} references no other site`);
  }
  const anon = await fetch(`${origin}/api/session`);
  assert.equal(anon.status, 401, 'no session without a cookie');
});

test('sign-in refuses a wrong wallet key and shows why', { timeout: 60_000 }, async () => {
  const b = await openBrowser();
  try {
    const { page } = b;
    await page.goto(`${origin}/`);
    const field = page.getByLabel('Wallet API key');
    await field.waitFor();
    assert.equal(await field.getAttribute('type'), 'password');
    assert.equal(await field.getAttribute('autocomplete'), 'off');
    await screenshot(page, '01-sign-in');

    // Empty: refused before any request.
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('#wallet-key-error').getByText('Enter your wallet API key').waitFor();

    await field.fill('lava_wk_this_is_not_a_real_key_000000000000');
    await page.getByRole('button', { name: 'Sign in' }).click();
    const error = page.locator('#wallet-key-error');
    await error.getByText('was not accepted').waitFor();
    assert.equal(await field.getAttribute('aria-invalid'), 'true');
    assert.match(await field.getAttribute('aria-describedby'), /wallet-key-error/);
    assert.equal(await page.locator('#topbar').isHidden(), true, 'still signed out');
    assert.deepEqual(await b.context.cookies(origin), [], 'no session cookie after a wrong key');
    await screenshot(page, '01-sign-in-wrong-key');
    b.assertLocalOnly();
  } finally {
    await b.close();
  }
});

test('key lifecycle through the dashboard: create, use, usage, pause, resume, rotate, revoke, sign out', { timeout: 180_000 }, async () => {
  const b = await openBrowser();
  const { page, context } = b;
  try {
    // ----- Sign in
    await signedIn(page);
    assert.match(await page.locator('#wallet-chip').innerText(), /Acme Robotics/);
    const cookies = await context.cookies(origin);
    assert.equal(cookies.length, 1, 'one session cookie');
    assert.equal(cookies[0].httpOnly, true, 'the session cookie is HttpOnly');
    const stored = await page.evaluate(() => ({ local: localStorage.length, session: sessionStorage.length, cookie: document.cookie }));
    assert.deepEqual(stored, { local: 0, session: 0, cookie: '' }, 'nothing stored by the page; the cookie is invisible to scripts');
    assert.ok(!(await page.content()).includes(walletKey), 'the wallet key is not kept in the page');

    // ----- Empty state with a call to action
    await page.getByRole('heading', { name: 'No spend keys yet' }).waitFor();
    await screenshot(page, '02-keys-empty');
    await page.getByRole('link', { name: 'Create your first spend key' }).click();

    // ----- Create form: every control labelled; an API field error shown at its field
    await page.getByRole('heading', { level: 1, name: 'Create a spend key', exact: true }).waitFor();
    assert.deepEqual(await unlabelledControls(page), [], 'every form control has a label');
    await page.getByLabel('Name').fill('E2E agent');
    await page.locator('#f-spend_limit-amount').fill('-5');
    await page.getByRole('button', { name: 'Create spend key' }).click();
    const amountError = page.locator('[data-error-for="spend_limit.amount"]');
    await amountError.locator('span').waitFor();
    assert.ok((await amountError.innerText()).length > 5, 'the API message for spend_limit.amount is shown next to the field');
    assert.equal(await page.locator('#f-spend_limit-amount').getAttribute('aria-invalid'), 'true');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'f-spend_limit-amount', 'focus moves to the field in error');

    await page.locator('#f-spend_limit-amount').fill('5.00');
    await page.locator('#f-spend_limit-cycle').selectOption('monthly');
    await page.locator('#f-request_limit-count').fill('100');
    await page.locator('#f-request_limit-cycle').selectOption('daily');
    await page.locator('#f-rate_limit-rpm').fill('60');
    await page.locator('#f-rate_limit-burst').fill('10');
    await page.getByLabel('Only the models I choose').check();
    await page.locator('#f-model-search').fill('gpt-4o');
    await page.locator('label[data-model="gpt-4o-mini"] input').check();
    await page.locator('#f-model-search').fill('');
    await screenshot(page, '03-create-form');
    await page.getByRole('button', { name: 'Create spend key' }).click();

    // ----- The secret, shown once, with the base URL and snippets
    const secretEl = page.locator('#secret-value');
    await secretEl.waitFor();
    const secret = (await secretEl.innerText()).trim();
    assert.match(secret, /^lava_sk_\S{16,}$/);
    await page.getByText('You won’t see this key again.').waitFor();
    assert.equal(await page.locator('[data-base-url="openai"]').innerText(), `${origin}/v1`);
    assert.match(await page.locator('.tabpanel:not([hidden]) pre').innerText(), new RegExp(secret));
    await page.getByRole('tab', { name: 'curl' }).click();
    const curl = await page.locator('.tabpanel:not([hidden]) pre').innerText();
    assert.ok(curl.includes(`${origin}/v1/chat/completions`) && curl.includes(secret), 'curl snippet with the base URL and key');
    await page.getByRole('tab', { name: 'Python' }).click();
    await screenshot(page, '04-secret-shown');

    // ----- A real request with the key, through the gateway
    const first = await chat(secret);
    assert.equal(first.status, 200, `chat completion with the new key: ${first.body}`);
    const notAllowed = await chat(secret, 'gpt-4o');
    assert.equal(notAllowed.status, 403, `a model outside the key's list is refused: ${notAllowed.body}`);

    // ----- Key detail: limits, usage and the request log (allow the record writer time)
    await page.getByRole('link', { name: 'I’ve saved my key' }).click();
    await page.getByRole('heading', { level: 1, name: 'E2E agent', exact: true }).waitFor();
    assert.equal(await page.locator('#secret-value').count(), 0, 'the secret is gone once you leave');
    const logRows = page.locator('[data-section="requests"] tbody tr');
    await refreshUntil(page, async () => (await logRows.count()) >= 1, 'the request in the key’s log');
    const rowsText = await logRows.allInnerTexts();
    assert.ok(rowsText.some((t) => t.includes('gpt-4o-mini') && t.includes('Completed')), `a completed gpt-4o-mini row: ${rowsText}`);
    const spendCard = page.locator('section[data-meter="spend"]');
    assert.match(await spendCard.innerText(), /\$[\d.,]+\s*\/ \$5\.00 per month/);
    const requestsCard = page.locator('section[data-meter="requests"]');
    assert.match(await requestsCard.innerText(), /\b[12]\s*\/ 100 per day/);
    await refreshUntil(
      page,
      async () => /^[1-9]/.test((await page.locator('[data-total="requests"] .stat-value').innerText()).trim()),
      'the usage totals',
    );
    const spendTotal = await page.locator('[data-total="spend"] .stat-value').innerText();
    assert.match(spendTotal, /^\$\d/, 'spend total shown in dollars');
    await page.locator('[data-chart="Requests per day"] svg').waitFor();
    await page.waitForFunction(() => document.querySelectorAll('[data-chart="Spend per day"] svg g.bar').length >= 28); // a bar per day, last 30 days
    await page.locator('[data-section="by-model"] [data-model="gpt-4o-mini"]').waitFor();
    const exportHref = await page.getByRole('link', { name: 'Export CSV' }).getAttribute('href');
    assert.match(exportHref, /^\/v1\/requests\/export\?spend_key_id=/);
    const csv = await page.evaluate(async (href) => {
      const r = await fetch(href);
      return { status: r.status, type: r.headers.get('content-type'), text: await r.text() };
    }, exportHref);
    assert.equal(csv.status, 200, 'CSV export');
    assert.match(csv.type || '', /csv/);
    assert.ok(csv.text.includes('gpt-4o-mini'), 'the CSV lists the request');
    await screenshot(page, '05-key-detail');

    // ----- Keys list: the card shows it all
    await page.getByRole('link', { name: 'AI Spend', exact: true }).first().click();
    const card = page.locator('article.key-card', { hasText: 'E2E agent' });
    await card.waitFor();
    const cardText = await card.innerText();
    assert.match(cardText, /Active/);
    assert.match(cardText, /OpenAI/);
    assert.match(cardText, /gpt-4o-mini/);
    assert.match(cardText, /\/ \$5\.00 per month/);
    assert.match(cardText, /\/ 100 per day/);
    assert.match(cardText, /60 per minute · burst 10/);
    assert.match(await card.locator('[data-field="last-used"]').innerText(), /just now|second|minute/);
    assert.ok(await card.locator('[data-field="last-used"] time').getAttribute('title'), 'absolute time in the title');
    await page.getByLabel('Search keys').fill('no such key');
    await page.getByRole('heading', { name: 'No keys match' }).waitFor();
    await page.getByRole('button', { name: 'Clear filters' }).click();
    await page.getByLabel('Filter by status').selectOption('paused');
    await page.getByRole('heading', { name: 'No keys match' }).waitFor();
    await page.getByLabel('Filter by status').selectOption('all');
    await card.waitFor();
    await screenshot(page, '06-keys-list');

    // ----- Usage page: wallet totals and the request log with the key's name
    await page.getByRole('link', { name: 'Usage', exact: true }).click();
    await page.getByRole('heading', { level: 1, name: 'Usage', exact: true }).waitFor();
    const walletRows = page.locator('[data-section="requests"] tbody tr');
    await refreshUntil(page, async () => (await walletRows.count()) >= 1, 'the wallet request log');
    assert.match(await walletRows.first().innerText(), /E2E agent/);
    await page.getByRole('radio', { name: '7 days' }).check();
    await page.waitForFunction(() => document.querySelectorAll('[data-chart="Spend per day"] svg g.bar').length === 7);
    assert.match(page.url(), /#\/usage\?range=7/);
    await page.locator('[data-chart="Spend per day"] .chart').hover({ position: { x: 200, y: 100 } });
    await screenshot(page, '07-usage');

    // ----- Edit: the same form, prefilled; only what changed is sent
    await page.goto(`${origin}/#/keys`);
    await page.locator('article.key-card', { hasText: 'E2E agent' }).getByRole('link', { name: 'E2E agent', exact: true }).click();
    await page.getByRole('heading', { level: 1, name: 'E2E agent', exact: true }).waitFor();
    await page.getByRole('link', { name: 'Edit' }).click();
    await page.getByRole('heading', { level: 1, name: 'Edit “E2E agent”', exact: true }).waitFor();
    assert.equal(await page.locator('#f-spend_limit-amount').inputValue(), '5.00');
    assert.equal(await page.locator('#f-request_limit-count').inputValue(), '100');
    assert.equal(await page.locator('label[data-model="gpt-4o-mini"] input').isChecked(), true);
    await page.locator('#f-spend_limit-amount').fill('7.50');
    await page.locator('#f-request_limit-count').fill('');
    const patch = page.waitForRequest((r) => r.method() === 'PATCH');
    await page.getByRole('button', { name: 'Save changes' }).click();
    const sent = JSON.parse((await patch).postData());
    assert.deepEqual(sent, { spend_limit: { amount: '7.50', cycle: 'monthly' }, request_limit: null }, 'a partial update');
    await page.getByRole('heading', { level: 1, name: 'E2E agent', exact: true }).waitFor();
    assert.match(await page.locator('section[data-meter="spend"]').innerText(), /\/ \$7\.50 per month/);
    assert.match(await page.locator('section[data-meter="requests"]').innerText(), /this month/);
    assert.match(await page.locator('section[data-meter="requests"]').innerText(), /No limit/);

    // ----- Pause in the UI -> 401; resume -> works
    await page.locator('#toggle-status').click();
    await page.locator('.detail-title [data-status="paused"]').waitFor();
    const paused = await chat(secret);
    assert.equal(paused.status, 401, `a paused key is refused: ${paused.body}`);
    await page.locator('#toggle-status').click();
    await page.locator('.detail-title [data-status="active"]').waitFor();
    const resumed = await chat(secret);
    assert.equal(resumed.status, 200, `a resumed key works: ${resumed.body}`);

    // ----- Rotate: a confirmation, then the new secret on the same panel
    await page.getByRole('button', { name: 'Rotate' }).click();
    const rotateDialog = page.getByRole('dialog');
    await rotateDialog.waitFor();
    await page.keyboard.press('Escape');
    await rotateDialog.waitFor({ state: 'detached' });
    assert.equal(await page.evaluate(() => document.activeElement.textContent.trim()), 'Rotate', 'focus returns to the opener');
    await page.getByRole('button', { name: 'Rotate' }).click();
    await rotateDialog.getByRole('button', { name: 'Rotate key' }).click();
    await page.getByRole('heading', { level: 1, name: 'New secret for “E2E agent”', exact: true }).waitFor();
    const rotated = (await page.locator('#secret-value').innerText()).trim();
    assert.match(rotated, /^lava_sk_/);
    assert.notEqual(rotated, secret);
    await screenshot(page, '08-secret-rotated');
    const oldAfterRotate = await chat(secret);
    assert.equal(oldAfterRotate.status, 401, `the old secret stops working: ${oldAfterRotate.body}`);
    const newAfterRotate = await chat(rotated);
    assert.equal(newAfterRotate.status, 200, `the new secret works: ${newAfterRotate.body}`);

    // ----- Revoke: type the name to confirm; Escape closes; Tab stays in the dialog
    await page.getByRole('link', { name: 'I’ve saved my key' }).click();
    await page.getByRole('heading', { level: 1, name: 'E2E agent', exact: true }).waitFor();
    await page.getByRole('button', { name: 'Revoke' }).click();
    const revokeDialog = page.getByRole('dialog');
    await revokeDialog.waitFor();
    const confirm = revokeDialog.getByRole('button', { name: 'Revoke key' });
    assert.equal(await confirm.isDisabled(), true, 'disabled until the name is typed');
    for (let i = 0; i < 6; i++) {
      await page.keyboard.press('Tab');
      assert.equal(await page.evaluate(() => !!document.activeElement.closest('dialog')), true, 'focus stays in the dialog');
    }
    await revokeDialog.getByLabel('Type E2E agent to confirm').fill('E2E agen');
    assert.equal(await confirm.isDisabled(), true);
    await revokeDialog.getByLabel('Type E2E agent to confirm').fill('E2E agent');
    await screenshot(page, '09-revoke-confirm');
    await confirm.click();
    await page.getByRole('heading', { name: 'No spend keys yet' }).waitFor();
    const revoked = await chat(rotated);
    assert.equal(revoked.status, 401, `a revoked key is refused: ${revoked.body}`);

    // ----- Sign out: back to sign-in, and the old cookie no longer works
    const cookie = await cookieHeader(context);
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByText('You have signed out.').waitFor();
    await page.getByLabel('Wallet API key').waitFor();
    const stale = await fetch(`${origin}/api/session`, { headers: { cookie } });
    assert.equal(stale.status, 401, 'the session is gone on the server');
    b.assertLocalOnly();
  } catch (e) {
    await page.screenshot({ path: join(ARTIFACTS, 'failure-lifecycle.png'), fullPage: true }).catch(() => {});
    e.message += `\n--- server log (tail) ---\n${tail(env.server.output(), 40)}`;
    throw e;
  } finally {
    await b.close();
  }
});

test('an expired or ended session sends the browser back to sign-in', { timeout: 90_000 }, async () => {
  const b = await openBrowser();
  const { page, context } = b;
  try {
    await signedIn(page);

    // The cookie disappears (as when it expires): the next action goes back to sign-in.
    await context.clearCookies();
    await page.getByRole('link', { name: 'Usage', exact: true }).click();
    await page.getByText('Your session has expired. Sign in again to continue.').waitFor();
    assert.equal(await page.locator('#topbar').isHidden(), true);
    // Signing in again returns to where you were.
    await page.getByLabel('Wallet API key').fill(walletKey);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { level: 1, name: 'Usage', exact: true }).waitFor();

    // The session ends on the server (signed out elsewhere): same.
    const ended = await page.evaluate(async () => {
      const s = await (await fetch('/api/session')).json();
      const r = await fetch('/api/session', { method: 'DELETE', headers: { 'x-csrf-token': s.csrf_token } });
      return r.status;
    });
    assert.equal(ended, 200);
    await page.locator('#refresh').click();
    await page.getByText('Your session has expired. Sign in again to continue.').waitFor();
    b.assertLocalOnly();
  } finally {
    await b.close();
  }
});

test('requests without the CSRF token are refused even with the session cookie', { timeout: 60_000 }, async () => {
  const b = await openBrowser();
  const { page, context } = b;
  try {
    await signedIn(page);
    const cookie = await cookieHeader(context);
    const body = JSON.stringify({ name: 'forged' });

    // A forged cross-site post: the cookie, no x-csrf-token.
    const forged = await fetch(`${origin}/v1/spend_keys`, {
      method: 'POST',
      headers: { cookie, 'content-type': 'application/json', origin: 'https://evil.example' },
      body,
    });
    assert.equal(forged.status, 403, `no CSRF token: ${await forged.text()}`);
    const wrong = await fetch(`${origin}/v1/spend_keys`, {
      method: 'POST',
      headers: { cookie, 'content-type': 'application/json', 'x-csrf-token': 'not-the-token' },
      body,
    });
    assert.equal(wrong.status, 403, 'a wrong CSRF token');
    const signOutForged = await fetch(`${origin}/api/session`, { method: 'DELETE', headers: { cookie } });
    assert.equal(signOutForged.status, 403, 'signing out also needs the token');

    // From the page itself (the browser attaches the cookie), without the token.
    const inPage = await page.evaluate(async () => {
      const r = await fetch('/v1/spend_keys', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'forged' }) });
      return r.status;
    });
    assert.equal(inPage, 403);

    // Control: the same cookie with the session's token is accepted, and nothing forged was created.
    const session = await (await fetch(`${origin}/api/session`, { headers: { cookie } })).json();
    const list = await fetch(`${origin}/v1/spend_keys?limit=100`, { headers: { cookie } });
    assert.equal(list.status, 200);
    assert.ok(!(await list.json()).data.some((k) => k.name === 'forged'), 'no forged key was created');
    const ok = await fetch(`${origin}/v1/spend_keys`, {
      method: 'POST',
      headers: { cookie, 'content-type': 'application/json', 'x-csrf-token': session.csrf_token },
      body: JSON.stringify({ name: 'with token' }),
    });
    assert.ok(ok.status === 200 || ok.status === 201, `with the token: ${ok.status}`);
    const created = await ok.json();
    const del = await fetch(`${origin}/v1/spend_keys/${created.spend_key_id}`, { method: 'DELETE', headers: { cookie, 'x-csrf-token': session.csrf_token } });
    assert.equal(del.status, 200);
    b.assertLocalOnly();
  } finally {
    await b.close();
  }
});

test('expired keys are marked; the request log pages with cursors; custom date ranges', { timeout: 120_000 }, async () => {
  const wallet = { authorization: `Bearer ${walletKey}`, 'content-type': 'application/json' };
  const expiring = await (
    await fetch(`${origin}/v1/spend_keys`, {
      method: 'POST',
      headers: wallet,
      body: JSON.stringify({ name: 'Short-lived', expires_at: new Date(Date.now() + 1500).toISOString() }),
    })
  ).json();
  assert.ok(expiring.spend_key_id, JSON.stringify(expiring));
  const busy = await (await fetch(`${origin}/v1/spend_keys`, { method: 'POST', headers: wallet, body: JSON.stringify({ name: 'Busy agent' }) })).json();
  const results = await Promise.all(Array.from({ length: 23 }, () => chat(busy.key)));
  assert.deepEqual(results.map((r) => r.status), Array(23).fill(200));
  await new Promise((r) => setTimeout(r, 1600));

  const b = await openBrowser();
  const { page } = b;
  try {
    await signedIn(page);
    const expiredCard = page.locator('article.key-card', { hasText: 'Short-lived' });
    await expiredCard.waitFor();
    assert.equal(await expiredCard.locator('[data-status]').innerText(), 'Expired');
    assert.match(await expiredCard.innerText(), /Expired\s+(just now|\d+ seconds? ago)/);
    await page.getByLabel('Filter by status').selectOption('expired');
    assert.deepEqual(await page.locator('article.key-card h2').allInnerTexts(), ['Short-lived']);
    const gone = await chat(expiring.key);
    assert.equal(gone.status, 401, 'an expired key is refused');

    await page.goto(`${origin}/#/usage?key=${encodeURIComponent(busy.spend_key_id)}`);
    await page.getByRole('heading', { level: 1, name: 'Usage', exact: true }).waitFor();
    await page.locator(`#usage-key option[value="${busy.spend_key_id}"]`).waitFor({ state: 'attached' });
    assert.equal(await page.locator('#usage-key').inputValue(), busy.spend_key_id, 'the key from the URL is selected');
    const rows = page.locator('[data-section="requests"] tbody tr');
    await refreshUntil(page, async () => (await rows.count()) === 20 && (await page.getByRole('button', { name: 'Next' }).isEnabled()), 'a full first page');
    await page.getByRole('button', { name: 'Next' }).click();
    await page.getByText('Page 2 · requests 21–23').waitFor();
    assert.equal(await rows.count(), 3);
    assert.equal(await page.getByRole('button', { name: 'Next' }).isDisabled(), true);
    await page.getByRole('button', { name: 'Previous' }).click();
    await page.getByText('Page 1 · requests 1–20').waitFor();
    assert.equal(await page.getByRole('button', { name: 'Previous' }).isDisabled(), true);
    await refreshUntil(page, async () => (await page.locator('[data-total="requests"] .stat-value').innerText()) === '23', 'the usage totals');

    // Custom range: the last two UTC days before today have no requests.
    const day = (n) => new Date(Date.now() - n * 86_400_000).toISOString().slice(0, 10);
    await page.getByRole('radio', { name: 'Custom' }).check();
    await page.getByLabel('From (UTC)').fill(day(2));
    await page.getByLabel('To (UTC)').fill(day(1));
    await page.getByRole('button', { name: 'Apply' }).click();
    await page.waitForFunction(() => document.querySelectorAll('[data-chart="Spend per day"] svg g.bar').length === 2);
    await page.locator('[data-total="requests"] .stat-value', { hasText: /^0$/ }).waitFor();
    assert.match(page.url(), new RegExp(`range=custom&from=${day(2)}&to=${day(1)}`));
    // Today only: every request.
    await page.getByLabel('From (UTC)').fill(day(0));
    await page.getByLabel('To (UTC)').fill(day(0));
    await page.getByRole('button', { name: 'Apply' }).click();
    await page.locator('[data-total="requests"] .stat-value', { hasText: /^23$/ }).waitFor();
    // Charts are drawn once laid out (ResizeObserver), a frame after the totals.
    await page.waitForFunction(() => document.querySelectorAll('[data-chart="Spend per day"] svg g.bar').length === 1);
    b.assertLocalOnly();
  } finally {
    await b.close();
  }
});

test('every page works at 390 px wide', { timeout: 120_000 }, async () => {
  // Data to show: an Anthropic-format key with limits, created through the wallet API, and a request.
  const created = await fetch(`${origin}/v1/spend_keys`, {
    method: 'POST',
    headers: { authorization: `Bearer ${walletKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      name: 'Claude Code (mobile)',
      request_shape: 'anthropic',
      allowed_models: ['claude-sonnet-4-20250514', 'gpt-4o-mini'],
      spend_limit: { amount: '20.00', cycle: 'weekly' },
      request_limit: { count: 500, cycle: 'daily' },
      rate_limit: { rpm: 30, burst: null },
    }),
  });
  assert.ok(created.status === 200 || created.status === 201);
  const key = await created.json();
  const msg = await fetch(`${origin}/v1/messages`, {
    method: 'POST',
    headers: { 'x-api-key': key.key, 'anthropic-version': '2023-06-01', 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'claude-sonnet-4-20250514', max_tokens: 64, messages: [{ role: 'user', content: 'Hi' }] }),
  });
  assert.equal(msg.status, 200, await msg.text());

  const b = await openBrowser({ width: 390, height: 844 });
  const { page } = b;
  try {
    await page.goto(`${origin}/`);
    await page.getByLabel('Wallet API key').waitFor();
    await noHorizontalOverflow(page, 'sign-in');
    await screenshot(page, '01-sign-in');
    await page.getByLabel('Wallet API key').fill(walletKey);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('article.key-card', { hasText: 'Claude Code (mobile)' }).waitFor();
    await noHorizontalOverflow(page, 'keys');
    await screenshot(page, '06-keys-list');

    await page.getByRole('link', { name: 'Create spend key' }).click();
    await page.getByRole('heading', { level: 1, name: 'Create a spend key', exact: true }).waitFor();
    await page.getByLabel('Only the models I choose').check();
    await noHorizontalOverflow(page, 'create');
    await screenshot(page, '03-create-form');
    await page.getByLabel('Name').fill('Phone key');
    await page.getByRole('radio', { name: /Anthropic/ }).check();
    await page.getByLabel('All models', { exact: true }).check();
    await page.getByRole('button', { name: 'Create spend key' }).click();
    await page.locator('#secret-value').waitFor();
    assert.equal(await page.locator('[data-base-url="anthropic"]').innerText(), origin, 'Anthropic base URL has no /v1');
    assert.match(await page.locator('.tabpanel:not([hidden]) pre').innerText(), /ANTHROPIC_BASE_URL=\S+ ANTHROPIC_API_KEY=lava_sk_\S+ claude/);
    await noHorizontalOverflow(page, 'secret');
    await screenshot(page, '04-secret-shown');

    await page.goto(`${origin}/#/keys/${encodeURIComponent(key.spend_key_id)}`);
    await page.getByRole('heading', { level: 1, name: 'Claude Code (mobile)', exact: true }).waitFor();
    const rows = page.locator('[data-section="requests"] tbody tr');
    await refreshUntil(page, async () => (await rows.count()) >= 1, 'the request in the key’s log');
    await noHorizontalOverflow(page, 'key detail');
    await screenshot(page, '05-key-detail');

    await page.getByRole('link', { name: 'Usage', exact: true }).click();
    await page.locator('[data-chart="Requests per day"] svg').waitFor();
    await noHorizontalOverflow(page, 'usage');
    await screenshot(page, '07-usage');
    b.assertLocalOnly();
  } finally {
    await b.close();
  }
});

test('the activity page lists who changed what, when and from where', { timeout: 90_000 }, async () => {
  const wallet = { authorization: `Bearer ${walletKey}`, 'content-type': 'application/json' };
  const key = await (await fetch(`${origin}/v1/spend_keys`, { method: 'POST', headers: wallet, body: JSON.stringify({ name: 'Audited' }) })).json();
  assert.ok(key.spend_key_id, JSON.stringify(key));
  const changed = await fetch(`${origin}/v1/spend_keys/${key.spend_key_id}`, {
    method: 'PATCH',
    headers: wallet,
    body: JSON.stringify({ name: 'Audited 2', spend_limit: { amount: '3', cycle: 'daily' } }),
  });
  assert.equal(changed.status, 200);

  const b = await openBrowser();
  const { page } = b;
  try {
    await signedIn(page);
    await page.getByRole('link', { name: 'Activity' }).click();
    await page.getByRole('heading', { level: 1, name: 'Activity', exact: true }).waitFor();
    const rows = page.locator('[data-section="activity"] tbody tr');
    await rows.first().waitFor();
    assert.equal(await rows.first().getAttribute('data-action'), 'dashboard_session.created', 'the sign-in just now comes first');
    assert.match(await rows.first().innerText(), /Signed in to the dashboard/);
    const update = page.locator(`tr[data-action="spend_key.updated"]:has(a[title="${key.spend_key_id}"])`).first();
    const text = await update.innerText();
    assert.match(text, /Spend key changed/);
    assert.match(text, /name: Audited → Audited 2/);
    assert.match(text, /spend_limit: none → \$3\.00 daily/);
    assert.match(text, /API · wk_/);
    assert.match(text, /127\.0\.0\.1/);
    const created = page.locator(`tr[data-action="spend_key.created"]:has(a[title="${key.spend_key_id}"])`).first();
    assert.match(await created.innerText(), /name: Audited\n/);
    assert.doesNotMatch(await created.innerText(), /: none/, 'a creation lists the settings that are set');
    assert.doesNotMatch(await page.locator('main').innerText(), /lava_sk_[A-Za-z0-9]{20}/, 'no secret on the page');
    await screenshot(page, '09-activity');
    await page.setViewportSize({ width: 390, height: 844 });
    await noHorizontalOverflow(page, 'activity');
    await screenshot(page, '09-activity');
    await page.setViewportSize({ width: 1280, height: 900 });

    // The target links to the key.
    await update.locator(`a[title="${key.spend_key_id}"]`).click();
    await page.getByRole('heading', { level: 1, name: 'Audited 2', exact: true }).waitFor();
    b.assertLocalOnly();
  } finally {
    await b.close();
  }
});

test('the alerts page adds webhooks, shows the secret once, sends a signed test event, and deletes them', { timeout: 120_000 }, async () => {
  const wallet = { authorization: `Bearer ${walletKey}`, 'content-type': 'application/json' };
  const key = await (
    await fetch(`${origin}/v1/spend_keys`, { method: 'POST', headers: wallet, body: JSON.stringify({ name: 'Alerted agent', spend_limit: { amount: '10', cycle: 'monthly' } }) })
  ).json();
  assert.ok(key.spend_key_id, JSON.stringify(key));

  // A receiver for the alerts: records every request and answers 200.
  const received = [];
  const receiver = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      received.push({ method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('ok');
    });
  });
  await new Promise((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const hookUrl = `http://127.0.0.1:${receiver.address().port}/hooks/spendgate`;
  // And an address where nothing listens.
  const closed = createServer();
  await new Promise((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const deadUrl = `http://127.0.0.1:${closed.address().port}/gone`;
  await new Promise((resolve) => closed.close(resolve));

  const b = await openBrowser();
  const { page } = b;
  try {
    await signedIn(page);
    await page.getByRole('link', { name: 'Alerts' }).click();
    await page.getByRole('heading', { level: 1, name: 'Alerts', exact: true }).waitFor();
    assert.match(page.url(), /#\/alerts$/);
    assert.equal(await page.locator('[data-nav="alerts"]').getAttribute('aria-current'), 'page');

    // ----- Empty state; its button leads to the form, which has the defaults
    await page.getByRole('heading', { name: 'No webhooks yet' }).waitFor();
    assert.deepEqual(await unlabelledControls(page), [], 'every form control has a label');
    await page.getByRole('button', { name: 'Add a webhook' }).click();
    assert.equal(await page.evaluate(() => document.activeElement.id), 'wh-url', 'focus moves to the URL field');
    assert.equal(await page.locator('#wh-scope').inputValue(), '', 'all keys by default');
    assert.equal(await page.locator(`#wh-scope option[value="${key.spend_key_id}"]`).innerText(), `Alerted agent (${key.key_preview})`);
    assert.equal(await page.locator('input[name="events"]:checked').count(), 3, 'every event by default');
    assert.equal(await page.locator('#wh-thresholds').inputValue(), '50, 80, 100');
    await screenshot(page, '10-alerts-empty');

    // ----- Add a webhook for every key: the secret, shown once
    await page.locator('#wh-url').fill(hookUrl);
    const post = page.waitForRequest((r) => r.method() === 'POST' && r.url().endsWith('/v1/webhooks'));
    await page.getByRole('button', { name: 'Add webhook', exact: true }).click();
    assert.deepEqual(JSON.parse((await post).postData()), {
      url: hookUrl,
      spend_key_id: null,
      events: ['spend.threshold', 'request_limit.reached', 'spend_key.expired'],
      thresholds: [50, 80, 100],
    });
    const secretEl = page.locator('#webhook-secret');
    await secretEl.waitFor();
    const secret = (await secretEl.innerText()).trim();
    assert.match(secret, /^whsec_\S{16,}$/);
    await page.getByText('You won’t see this secret again.').waitFor();
    await page.getByRole('button', { name: 'Copy signing secret' }).waitFor();
    assert.equal(await page.locator('#wh-url').inputValue(), '', 'the form is emptied for the next one');
    const listed = await (await fetch(`${origin}/v1/webhooks`, { headers: wallet })).json();
    assert.equal(listed.data.length, 1);
    assert.equal(listed.data[0].secret, undefined, 'the secret is not in the list');

    const card = page.locator('article.webhook-card', { hasText: hookUrl });
    await card.waitFor();
    assert.equal(await card.getAttribute('data-webhook-id'), listed.data[0].webhook_id);
    assert.equal(await card.locator('[data-field="scope"]').innerText(), 'All keys');
    assert.deepEqual(await card.locator('[data-field="events"] .chip').allInnerTexts(), ['Spend threshold reached', 'Request limit reached', 'Key expired']);
    assert.equal(await card.locator('[data-field="thresholds"]').innerText(), '50% · 80% · 100%');
    await card.getByText('No alerts sent yet').waitFor();

    // ----- Send a test event: the log follows it until it is delivered, signed with the secret
    await card.getByRole('button', { name: 'Send test' }).click();
    await card.locator('tr[data-event="webhook.test"]').waitFor(); // pending at first (or already delivered)
    const delivered = card.locator('tr[data-event="webhook.test"][data-status="delivered"]');
    await delivered.waitFor({ timeout: 10_000 });
    await page.locator('.toast', { hasText: 'Test event delivered: your endpoint answered HTTP 200.' }).waitFor();
    await page.locator('#refresh').click();
    await page.locator('#refresh:not([aria-busy])').waitFor();
    assert.equal(await delivered.count(), 1, 'still there after Refresh');
    const row = await delivered.innerText();
    assert.match(row, /Test event/);
    assert.match(row, /Delivered/);
    assert.match(row, /HTTP 200/);
    assert.match(await delivered.locator('.c-attempts').innerText(), /^1$/);
    assert.equal(await page.locator('#webhook-secret').innerText(), secret, 'the secret stays until dismissed');

    const tests = received.filter((r) => r.headers['spendgate-event'] === 'webhook.test');
    assert.equal(tests.length, 1, `one test event received: ${JSON.stringify(received.map((r) => r.headers['spendgate-event']))}`);
    const hit = tests[0];
    assert.equal(hit.method, 'POST');
    assert.equal(hit.url, '/hooks/spendgate');
    assert.match(hit.headers['content-type'] || '', /application\/json/);
    const sig = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(hit.headers['spendgate-signature'] || '');
    assert.ok(sig, `spendgate-signature: ${hit.headers['spendgate-signature']}`);
    assert.equal(sig[2], createHmac('sha256', secret).update(`${sig[1]}.${hit.body}`).digest('hex'), 'HMAC-SHA256 of "t.body" under the secret');
    assert.ok(Math.abs(Date.now() / 1000 - Number(sig[1])) < 120, 'a current timestamp');
    const payload = JSON.parse(hit.body);
    assert.equal(payload.type, 'webhook.test');
    assert.equal(payload.data.webhook_id, listed.data[0].webhook_id);
    assert.equal(hit.headers['spendgate-delivery'], payload.id);
    assert.equal(await delivered.getAttribute('data-delivery-id'), payload.id);
    await screenshot(page, '10-alerts');
    await page.setViewportSize({ width: 390, height: 844 });
    await noHorizontalOverflow(page, 'alerts');
    await screenshot(page, '10-alerts');
    await page.setViewportSize({ width: 1280, height: 900 });

    // Dismissed, the secret is gone.
    await page.getByRole('button', { name: 'I’ve saved the secret' }).click();
    assert.equal(await page.locator('#webhook-secret').count(), 0);

    // ----- Invalid input: the API's errors next to their fields; nothing added
    await page.locator('#wh-url').fill('ftp://x');
    await page.getByRole('button', { name: 'Add webhook', exact: true }).click();
    const urlError = page.locator('[data-error-for="url"]');
    await urlError.locator('span').waitFor();
    assert.match(await urlError.innerText(), /http:\/\/ or https:\/\//);
    assert.equal(await page.locator('#wh-url').getAttribute('aria-invalid'), 'true');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'wh-url', 'focus moves to the field in error');
    await page.locator('#wh-url').fill(deadUrl);
    assert.equal(await urlError.innerText(), '', 'the error goes once the field changes');
    assert.equal(await page.locator('#wh-url').getAttribute('aria-invalid'), null);

    // One key, two events, other thresholds; 0 is refused first.
    await page.locator('#wh-scope').selectOption(key.spend_key_id);
    await page.locator('label[data-event="spend_key.expired"] input').uncheck();
    await page.locator('#wh-thresholds').fill('0, 90');
    await page.getByRole('button', { name: 'Add webhook', exact: true }).click();
    const thresholdsError = page.locator('[data-error-for="thresholds"]');
    await thresholdsError.locator('span').waitFor();
    assert.match(await thresholdsError.innerText(), /1 to 100/);
    assert.equal(await page.evaluate(() => document.activeElement.id), 'wh-thresholds');
    assert.equal(await page.locator('article.webhook-card').count(), 1, 'nothing was added');
    await page.locator('#wh-thresholds').fill('75, 90');
    await page.getByRole('button', { name: 'Add webhook', exact: true }).click();
    await page.locator('#webhook-secret').waitFor();
    const scoped = page.locator('article.webhook-card', { has: page.locator('[data-field="scope"] a') });
    await scoped.waitFor();
    assert.equal(await page.locator('article.webhook-card').count(), 2);
    assert.equal(await page.locator('article.webhook-card').first().getAttribute('data-webhook-id'), await scoped.getAttribute('data-webhook-id'), 'newest first');
    assert.equal(await scoped.locator('[data-field="scope"] a').innerText(), 'Alerted agent');
    assert.equal(await scoped.locator('[data-field="scope"] a').getAttribute('href'), `#/keys/${key.spend_key_id}`);
    assert.deepEqual(await scoped.locator('[data-field="events"] .chip').allInnerTexts(), ['Spend threshold reached', 'Request limit reached']);
    assert.equal(await scoped.locator('[data-field="thresholds"]').innerText(), '75% · 90%');

    // A test event to an endpoint that does not answer: the failed attempt, to be retried.
    await scoped.getByRole('button', { name: 'Send test' }).click();
    const retrying = scoped.locator('tr[data-event="webhook.test"][data-status="pending"]', { hasText: 'Retrying' });
    await retrying.waitFor({ timeout: 10_000 });
    assert.match(await retrying.locator('.c-attempts').innerText(), /^1$/);
    assert.ok((await retrying.locator('.c-answer').innerText()).trim().length > 3, 'the error is shown');
    assert.match(await retrying.locator('.c-when').innerText(), /^Next try /);
    await page.locator('.toast', { hasText: 'The test event was not accepted' }).waitFor();
    await screenshot(page, '10-alerts-retrying');

    // Leaving the page drops the secret.
    await page.getByRole('link', { name: 'Activity' }).click();
    await page.locator('tr[data-action="webhook.created"]').first().waitFor();
    assert.match(await page.locator('tr[data-action="webhook.created"]').first().innerText(), /Webhook added/);
    await page.getByRole('link', { name: 'Alerts' }).click();
    await page.locator('article.webhook-card').nth(1).waitFor();
    assert.equal(await page.locator('#webhook-secret').count(), 0);

    // ----- Delete both, with a confirmation; Escape cancels
    await scoped.getByRole('button', { name: 'Delete' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.waitFor();
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });
    assert.equal(await page.locator('article.webhook-card').count(), 2, 'nothing deleted on cancel');
    for (let i = 0; i < 2; i++) {
      await page.locator('article.webhook-card').first().getByRole('button', { name: 'Delete' }).click();
      await dialog.waitFor();
      assert.ok((await dialog.innerText()).includes(i === 0 ? deadUrl : hookUrl), 'the dialog names the URL');
      await dialog.getByRole('button', { name: 'Delete webhook' }).click();
      await dialog.waitFor({ state: 'detached' });
      await page.waitForFunction((n) => document.querySelectorAll('article.webhook-card').length === n, 1 - i);
    }
    await page.getByRole('heading', { name: 'No webhooks yet' }).waitFor();
    assert.deepEqual((await (await fetch(`${origin}/v1/webhooks`, { headers: wallet })).json()).data, []);
    b.assertLocalOnly();
  } catch (e) {
    await page.screenshot({ path: join(ARTIFACTS, 'failure-alerts.png'), fullPage: true }).catch(() => {});
    e.message += `\n--- server log (tail) ---\n${tail(env.server.output(), 40)}`;
    throw e;
  } finally {
    await b.close();
    receiver.closeAllConnections();
    await new Promise((resolve) => receiver.close(resolve));
  }
});
