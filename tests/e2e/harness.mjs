// Shared helpers for spendgate end-to-end tests.
//
// The tests drive a real `spendgate` binary: they create wallets with the CLI
// (`spendgate wallets create ... --json`) and start `spendgate serve` as a child
// process on an ephemeral port, each against its own SQLite file in a temp dir.
//
// Cross-format tests also start `spendgate mock-provider` (startMockProvider) and point
// the gateway at it (startEnvironment({ mockProvider: true })): only the gateway process
// gets OPENAI_* / ANTHROPIC_* variables, never the test process.
//
// Environment:
//   SPENDGATE_BIN       path to the binary (default <repo>/target/debug/spendgate)
//   SPENDGATE_E2E_KEEP  if set to 1, temp dirs (database + server log) are never removed

import { spawn, execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const E2E_DIR = dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = resolve(E2E_DIR, '..', '..');

const START_TIMEOUT_MS = 20_000;
const STOP_GRACE_MS = 5_000;
const CLI_TIMEOUT_MS = 30_000;
const LISTENING_RE = /spendgate listening on (http:\/\/127\.0\.0\.1:(\d+))/;
const MOCK_LISTENING_RE = /mock provider listening on (http:\/\/127\.0\.0\.1:(\d+))/;
const PROVIDER_ENV_RE = /^(OPENAI|ANTHROPIC)_/;
// eslint-disable-next-line no-control-regex
const ANSI_RE = /\x1b\[[0-9;]*[A-Za-z]/g;

/** Absolute path of the spendgate binary; throws a helpful error if it is missing. */
export function spendgateBin() {
  const bin = process.env.SPENDGATE_BIN
    ? resolve(process.env.SPENDGATE_BIN)
    : join(REPO_ROOT, 'target', 'debug', 'spendgate');
  if (!existsSync(bin) || !statSync(bin).isFile()) {
    throw new Error(
      `spendgate binary not found at ${bin}. Build it with \`cargo build -p spendgate\` ` +
        'or point SPENDGATE_BIN at it.',
    );
  }
  return bin;
}

/** A fresh temp directory (removed by removeTempDir unless SPENDGATE_E2E_KEEP=1). */
export function makeTempDir(prefix = 'spendgate-e2e-') {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function removeTempDir(dir) {
  if (!dir || process.env.SPENDGATE_E2E_KEEP === '1') return;
  rmSync(dir, { recursive: true, force: true });
}

/** The SQLite database URL used for a temp dir: sqlite://<dir>/spendgate.db */
export function databaseUrl(dir) {
  return `sqlite://${join(dir, 'spendgate.db')}`;
}

/** Run the spendgate CLI with args; resolves {stdout, stderr}, rejects with both on failure. */
export function runCli(args, { env = {}, timeoutMs = CLI_TIMEOUT_MS } = {}) {
  const bin = spendgateBin();
  return new Promise((resolvePromise, reject) => {
    execFile(
      bin,
      args,
      { env: { ...process.env, RUST_LOG: 'warn', ...env }, timeout: timeoutMs, maxBuffer: 16 << 20 },
      (error, stdout, stderr) => {
        if (error) {
          reject(
            new Error(
              `\`spendgate ${args.join(' ')}\` failed (${error.code ?? error.signal ?? error.message})\n` +
                `--- stdout ---\n${stdout}\n--- stderr ---\n${stderr}`,
            ),
          );
          return;
        }
        resolvePromise({ stdout, stderr });
      },
    );
  });
}

/**
 * Create a wallet with `spendgate wallets create --name NAME --database URL --json`.
 * The CLI must print exactly one JSON line `{"wallet_id":"wal_...","key":"lava_wk_..."}` on stdout.
 * Returns {wallet_id, key}.
 */
export async function createWallet({ name, database }) {
  if (!database) throw new Error('createWallet: database is required');
  const args = ['wallets', 'create', '--name', name, '--database', database, '--json'];
  const { stdout, stderr } = await runCli(args);
  const lines = stdout.split('\n').filter((l) => l.trim() !== '');
  let parsed;
  try {
    if (lines.length !== 1) throw new Error(`expected exactly 1 line on stdout, got ${lines.length}`);
    parsed = JSON.parse(lines[0]);
  } catch (e) {
    throw new Error(
      `\`spendgate ${args.join(' ')}\` did not print one JSON line: ${e.message}\n` +
        `--- stdout ---\n${stdout}\n--- stderr ---\n${stderr}`,
    );
  }
  if (
    typeof parsed?.wallet_id !== 'string' ||
    !parsed.wallet_id.startsWith('wal_') ||
    typeof parsed?.key !== 'string' ||
    !parsed.key.startsWith('lava_wk_')
  ) {
    throw new Error(`unexpected wallet JSON from the CLI: ${lines[0]}`);
  }
  return { wallet_id: parsed.wallet_id, key: parsed.key };
}

const liveChildren = new Set();
let exitHooksInstalled = false;

function installExitHooks() {
  if (exitHooksInstalled) return;
  exitHooksInstalled = true;
  // Never leave a server running behind a crashed or interrupted test process.
  process.on('exit', () => {
    for (const child of liveChildren) {
      try {
        child.kill('SIGKILL');
      } catch {
        /* already gone */
      }
    }
  });
  for (const signal of ['SIGINT', 'SIGTERM']) {
    process.once(signal, () => {
      for (const child of liveChildren) {
        try {
          child.kill('SIGKILL');
        } catch {
          /* already gone */
        }
      }
      process.exit(signal === 'SIGINT' ? 130 : 143);
    });
  }
}

/**
 * The secrets in `text`: full spend or wallet keys (a preview has 4 characters and
 * `****`), dashboard session tokens, and the given provider keys.
 */
export function secretsIn(text, providerKeys = []) {
  const found = [];
  for (const m of text.matchAll(/(lava_sk_|lava_wk_|sgs_)([A-Za-z0-9]{9,})/g)) found.push(`${m[1]}${m[2].slice(0, 4)}...`);
  for (const k of providerKeys) if (text.includes(k)) found.push(`a provider key (${k.slice(0, 6)}...)`);
  return found;
}

/**
 * Start `spendgate serve --listen 127.0.0.1:0 --database URL` and wait for the line
 * `spendgate listening on http://127.0.0.1:PORT` on its stdout.
 *
 * Returns {url, baseUrl, port, pid, logPath, output(), stderr(), exited, stop()}:
 *   url      e.g. http://127.0.0.1:41234
 *   baseUrl  url + '/v1/' (what the Lava SDK wants: it resolves paths with new URL(path, baseUrl))
 *   output() everything the server printed so far (stdout and stderr, interleaved)
 *   stop()   SIGTERM, then SIGKILL after 5 s; resolves {code, signal}
 */
export function startServer({
  dir,
  database = databaseUrl(dir),
  extraArgs = [],
  env = {},
  inheritProviderEnv = true,
  timeoutMs = START_TIMEOUT_MS,
} = {}) {
  if (!dir) throw new Error('startServer: dir is required (the log file goes there)');
  const bin = spendgateBin();
  installExitHooks();

  const args = ['serve', '--listen', '127.0.0.1:0', '--database', database, ...extraArgs];
  const logPath = join(dir, 'server.log');
  const log = createWriteStream(logPath, { flags: 'a' });
  // inheritProviderEnv: false keeps the operator's OPENAI_* / ANTHROPIC_* out of the
  // gateway (only `env` sets them), so that a shell cannot change where requests go.
  const inherited = inheritProviderEnv ? process.env : withoutProviderEnv(process.env);
  const child = spawn(bin, args, {
    env: { ...inherited, RUST_LOG: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  liveChildren.add(child);

  let combined = '';
  let stderrText = '';
  let stdoutPending = '';
  let exitInfo = null;
  const exited = new Promise((resolveExit) => {
    const done = (info) => {
      if (exitInfo) return;
      exitInfo = info;
      liveChildren.delete(child);
      resolveExit(exitInfo);
    };
    child.once('exit', (code, signal) => done({ code, signal }));
    // A spawn failure (EACCES, ENOENT) may never emit 'exit'.
    child.once('error', (error) => done({ code: null, signal: null, error }));
  });

  return new Promise((resolvePromise, reject) => {
    let settled = false;
    const fail = (why) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (!exitInfo) child.kill('SIGKILL');
      exited.then(() => {
        log.end();
        reject(
          new Error(
            `spendgate serve did not start: ${why}\ncommand: ${bin} ${args.join(' ')}\n` +
              `log: ${logPath}\n--- stderr ---\n${stderrText}\n--- stdout (partial line) ---\n${stdoutPending}`,
          ),
        );
      });
    };
    const timer = setTimeout(
      () => fail(`no "spendgate listening on http://127.0.0.1:PORT" line on stdout within ${timeoutMs} ms`),
      timeoutMs,
    );

    child.once('error', (err) => fail(`spawn error: ${err.message}`));
    child.once('exit', (code, signal) => fail(`process exited early (code ${code}, signal ${signal})`));

    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk) => {
      stderrText += chunk;
      combined += chunk;
      log.write(chunk);
    });

    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk) => {
      combined += chunk;
      log.write(chunk);
      if (settled) return;
      stdoutPending += chunk;
      const lines = stdoutPending.split('\n');
      stdoutPending = lines.pop();
      for (const line of lines) {
        const m = LISTENING_RE.exec(line.replace(ANSI_RE, ''));
        if (!m) continue;
        settled = true;
        clearTimeout(timer);
        const url = m[1];
        const stop = async () => {
          if (!exitInfo) {
            child.kill('SIGTERM');
            const killer = setTimeout(() => {
              if (!exitInfo) child.kill('SIGKILL');
            }, STOP_GRACE_MS);
            await exited;
            clearTimeout(killer);
          }
          await new Promise((r) => log.end(r));
          // The whole log of every server this suite ran must hold no secret.
          const providerKeys = Object.entries(env)
            .filter(([k, v]) => /_API_KEY$/.test(k) && v)
            .map(([, v]) => v);
          const leaked = secretsIn(stderrText, providerKeys);
          if (leaked.length) throw new Error(`secrets in the server log ${logPath}: ${leaked.join(', ')}`);
          return exitInfo;
        };
        resolvePromise({
          url,
          baseUrl: `${url}/v1/`,
          port: Number(m[2]),
          pid: child.pid,
          logPath,
          output: () => combined,
          stderr: () => stderrText,
          exited,
          stop,
        });
        return;
      }
    });
  });
}

function withoutProviderEnv(env) {
  return Object.fromEntries(Object.entries(env).filter(([name]) => !PROVIDER_ENV_RE.test(name)));
}

/**
 * Start `spendgate mock-provider --listen 127.0.0.1:0` (deterministic OpenAI + Anthropic
 * provider that records what it receives) and wait for `mock provider listening on URL`.
 *
 * Returns {url, pid, logPath, output(), requests(), clear(), exited, stop()}:
 *   requests()  GET /_mock/requests: every request received since the last clear()
 *               ({method, path, query, headers: [[name, value]], body})
 */
export function startMockProvider({ dir, timeoutMs = START_TIMEOUT_MS } = {}) {
  if (!dir) throw new Error('startMockProvider: dir is required (the log file goes there)');
  const bin = spendgateBin();
  installExitHooks();
  const args = ['mock-provider', '--listen', '127.0.0.1:0'];
  const logPath = join(dir, 'mock-provider.log');
  const log = createWriteStream(logPath, { flags: 'a' });
  const child = spawn(bin, args, {
    env: { ...withoutProviderEnv(process.env), RUST_LOG: 'info', NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  liveChildren.add(child);

  let combined = '';
  let pending = '';
  let exitInfo = null;
  const exited = new Promise((resolveExit) => {
    const done = (info) => {
      if (exitInfo) return;
      exitInfo = info;
      liveChildren.delete(child);
      resolveExit(exitInfo);
    };
    child.once('exit', (code, signal) => done({ code, signal }));
    child.once('error', (error) => done({ code: null, signal: null, error }));
  });

  return new Promise((resolvePromise, reject) => {
    let settled = false;
    const fail = (why) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (!exitInfo) child.kill('SIGKILL');
      exited.then(() => {
        log.end();
        reject(new Error(`spendgate mock-provider did not start: ${why}\nlog: ${logPath}\n${combined}`));
      });
    };
    const timer = setTimeout(() => fail(`no "mock provider listening on URL" line within ${timeoutMs} ms`), timeoutMs);
    child.once('error', (err) => fail(`spawn error: ${err.message}`));
    child.once('exit', (code, signal) => fail(`process exited early (code ${code}, signal ${signal})`));
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk) => {
      combined += chunk;
      log.write(chunk);
    });
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk) => {
      combined += chunk;
      log.write(chunk);
      if (settled) return;
      pending += chunk;
      const lines = pending.split('\n');
      pending = lines.pop();
      for (const line of lines) {
        const m = MOCK_LISTENING_RE.exec(line.replace(ANSI_RE, ''));
        if (!m) continue;
        settled = true;
        clearTimeout(timer);
        const url = m[1];
        resolvePromise({
          url,
          pid: child.pid,
          logPath,
          output: () => combined,
          exited,
          async requests() {
            const res = await fetch(`${url}/_mock/requests`);
            if (!res.ok) throw new Error(`GET /_mock/requests -> ${res.status} ${await res.text()}`);
            return res.json();
          },
          async clear() {
            const res = await fetch(`${url}/_mock/requests`, { method: 'DELETE' });
            if (!res.ok) throw new Error(`DELETE /_mock/requests -> ${res.status} ${await res.text()}`);
          },
          async stop() {
            if (!exitInfo) {
              child.kill('SIGTERM');
              const killer = setTimeout(() => {
                if (!exitInfo) child.kill('SIGKILL');
              }, STOP_GRACE_MS);
              await exited;
              clearTimeout(killer);
            }
            await new Promise((r) => log.end(r));
            return exitInfo;
          },
        });
        return;
      }
    });
  });
}

/**
 * Convenience: temp dir + wallets created before the server starts + running server.
 * Returns {dir, database, wallets: {name: {wallet_id, key}}, server, cleanup({keep})}.
 *
 * mockProvider: true also starts `spendgate mock-provider` first and gives the gateway
 * (only it) OPENAI_API_KEY, OPENAI_BASE_URL=<mock>/v1, ANTHROPIC_API_KEY and
 * ANTHROPIC_BASE_URL=<mock>, with fresh provider keys; the operator's own OPENAI_* /
 * ANTHROPIC_* are not passed on. The result then also has `mock` (see
 * startMockProvider) and `providerKeys: {openai, anthropic}`.
 */
export async function startEnvironment({ wallets = ['primary'], env = {}, extraArgs = [], mockProvider = false } = {}) {
  const dir = makeTempDir();
  const database = databaseUrl(dir);
  const created = {};
  let mock = null;
  try {
    for (const name of wallets) {
      created[name] = await createWallet({ name, database });
    }
    let serverEnv = env;
    let providerKeys;
    if (mockProvider) {
      mock = await startMockProvider({ dir });
      providerKeys = {
        openai: `sk-provider-openai-e2e-${randomBytes(12).toString('hex')}`,
        anthropic: `sk-ant-provider-e2e-${randomBytes(12).toString('hex')}`,
      };
      serverEnv = {
        OPENAI_API_KEY: providerKeys.openai,
        OPENAI_BASE_URL: `${mock.url}/v1`,
        ANTHROPIC_API_KEY: providerKeys.anthropic,
        ANTHROPIC_BASE_URL: mock.url,
        ...env,
      };
    }
    const server = await startServer({
      dir,
      database,
      env: serverEnv,
      extraArgs,
      inheritProviderEnv: !mockProvider,
    });
    return {
      dir,
      database,
      wallets: created,
      server,
      ...(mockProvider ? { mock, providerKeys } : {}),
      async cleanup({ keep = false } = {}) {
        const status = await server.stop();
        if (mock) await mock.stop();
        if (!keep) removeTempDir(dir);
        return status;
      },
    };
  } catch (e) {
    if (mock) await mock.stop();
    // Keep the dir: it holds the log and database for diagnosis.
    e.message += `\n(temp dir kept: ${dir})`;
    throw e;
  }
}

/** Last n lines of a text. */
export function tail(text, n = 80) {
  const lines = text.split('\n');
  return lines.slice(Math.max(0, lines.length - n)).join('\n');
}
