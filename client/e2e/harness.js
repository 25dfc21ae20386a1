// What the end-to-end tests stand on: a real `wewerewondering serve` on a free port
// with a throw-away database (or, with E2E_SERVER=mock, the in-memory stand-in), headless
// Debian Chromium driven by playwright-core, axe-core for accessibility, and a folder
// for screenshots and logs. Quiet unless TEST_LOG is set.

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { after, before } from 'node:test';
import { chromium } from 'playwright-core';

const require = createRequire(import.meta.url);
const here = dirname(fileURLToPath(import.meta.url));
export const clientDir = resolve(here, '..');
export const repoDir = resolve(clientDir, '..');
export const artifactsDir = resolve(process.env.TEST_ARTIFACTS ?? join(repoDir, 'test-artifacts'), 'client');

const verbose = Boolean(process.env.TEST_LOG);
export const log = (...args) => {
  if (verbose) console.error('[e2e]', ...args);
};

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

function freePort() {
  return new Promise((resolvePort, reject) => {
    const probe = createServer();
    probe.unref();
    probe.on('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolvePort(port));
    });
  });
}

export function serverBinary() {
  if (process.env.WEWEREWONDERING_BIN) return process.env.WEWEREWONDERING_BIN;
  const target = process.env.CARGO_TARGET_DIR ? resolve(repoDir, process.env.CARGO_TARGET_DIR) : join(repoDir, 'target');
  return join(target, 'release', 'wewerewondering');
}

async function waitUntilUp(base, child, deadlineMs) {
  const started = Date.now();
  while (Date.now() - started < deadlineMs) {
    if (child && child.exitCode !== null) throw new Error(`serve exited early with code ${child.exitCode}`);
    try {
      const response = await fetch(`${base}/`);
      if (response.ok) return;
    } catch {
      // Not listening yet.
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`serve did not answer on ${base} within ${deadlineMs} ms`);
}

/**
 * Starts the server; resolves to `{ base, stop() }`. With `seed` (NDJSON, as `ledger export`
 * writes it), the new database first imports those records (`ledger import`), so a test can
 * stage a session spread over past minutes.
 */
export async function startServer({ seed } = {}) {
  mkdirSync(artifactsDir, { recursive: true });
  const dist = join(clientDir, 'dist');
  if (!existsSync(join(dist, 'index.html'))) throw new Error('client/dist is missing: run `npm run build` first');

  if (process.env.E2E_SERVER === 'mock') {
    const { startMock } = await import('./mock-server.js');
    const server = await startMock({ noLive: Boolean(process.env.E2E_NO_LIVE) });
    const base = `http://127.0.0.1:${server.address().port}`;
    log('mock server on', base);
    return { base, stop: () => new Promise((r) => server.close(() => r())) };
  }

  const binary = serverBinary();
  if (!existsSync(binary)) {
    throw new Error(`server binary ${binary} is missing: run \`cargo build --release --bin wewerewondering\``);
  }
  const port = await freePort();
  const dbDir = mkdtempSync(join(tmpdir(), 'www-e2e-'));
  const base = `http://127.0.0.1:${port}`;
  const logFile = join(artifactsDir, 'server.log');
  if (seed !== undefined) {
    const imported = spawnSync(binary, ['ledger', 'import', '--db', join(dbDir, 'e2e.db')], {
      input: seed,
      env: { ...process.env, RUST_LOG: 'error' },
    });
    if (imported.status !== 0) throw new Error(`ledger import failed: ${imported.stdout}${imported.stderr}`);
  }
  const out = createWriteStream(logFile);
  const child = spawn(
    binary,
    ['serve', '--listen', `127.0.0.1:${port}`, '--db', join(dbDir, 'e2e.db'), '--no-demo', '--static', dist],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'info' } },
  );
  child.stdout.pipe(out);
  child.stderr.pipe(out);
  log('started', binary, 'on', base, 'log in', logFile);
  try {
    await waitUntilUp(base, child, 30_000);
  } catch (error) {
    child.kill('SIGTERM');
    throw new Error(`${error.message} (server log: ${logFile})`, { cause: error });
  }
  return {
    base,
    stop: async () => {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await Promise.race([exited, new Promise((r) => setTimeout(r, 5_000))]);
        if (child.exitCode === null) child.kill('SIGKILL');
      }
      rmSync(dbDir, { recursive: true, force: true });
    },
  };
}

/**
 * One server and one browser for a test file: started before its tests, ended after them
 * (also when a test fails). Their handles are on the returned object once the tests run.
 */
export function serverAndBrowser() {
  const env = { server: undefined, browser: undefined };
  before(async () => {
    env.server = await startServer();
    env.browser = await launchBrowser();
  });
  after(async () => {
    await env.browser?.close();
    await env.server?.stop();
  });
  return env;
}

/**
 * Requests to the API of `env`'s server (serverAndBrowser's, looked up when called) made by
 * the test itself, outside any browser, so without a cookie: each write is a new voter.
 * `api` sends `body` as JSON, resolves to the parsed answer (null when empty) and fails
 * the test on an error status.
 */
export function serverApi(env) {
  async function api(method, path, body) {
    const response = await fetch(`${env.server.base}${path}`, {
      method,
      headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    assert.ok(response.ok, `${method} ${path} answered ${response.status}: ${text}`);
    return text === '' ? null : JSON.parse(text);
  }
  return {
    api,
    /** A new event: `{ eid, secret }`. */
    async createEvent() {
      const { id, secret } = await api('POST', '/api/event');
      return { eid: id, secret };
    },
    /** Asks `text` as a new anonymous voter; the question starts with its asker's vote. Resolves to its id. */
    async askByApi(eid, text) {
      const { id } = await api('POST', `/api/event/${eid}`, { body: text, asker: null });
      return id;
    },
    /** One more vote for `qid`, by a new voter. */
    voteByApi(qid) {
      return api('POST', `/api/vote/${qid}/up`);
    },
  };
}

export function launchBrowser() {
  const executablePath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
  return chromium.launch({ executablePath, args: CHROMIUM_ARGS });
}

/** A browser context of its own (own cookies, own storage): one person. */
export async function person(browser, base, { viewport = { width: 1280, height: 900 }, colorScheme = 'light' } = {}) {
  const context = await browser.newContext({ baseURL: base, viewport, colorScheme, acceptDownloads: true });
  context.setDefaultTimeout(8_000);
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (error) => errors.push(error.message));
  page.on('console', (message) => {
    if (message.type() !== 'error') return;
    log('console error:', message.text());
    // A Content-Security-Policy violation is a bug of the page or of the server's policy
    // (design §7): it counts as an error of the page.
    if (/Content.Security.Policy/i.test(message.text())) errors.push(message.text());
  });
  return { context, page, errors };
}

/**
 * A guest asks `text` (signed `name`, or anonymously) through the page's dialog and waits
 * until the question is listed; resolves to its id. The list item is found by the text's
 * first 60 characters, which a long question's item shows too.
 */
export async function askAsGuest(page, text, name = '') {
  await page.click('#ask-open');
  await page.locator('#ask-dialog').waitFor({ state: 'visible' });
  await page.fill('#ask-text', text);
  await page.fill('#ask-name', name);
  await page.click('#ask-submit');
  await page.locator('#ask-dialog').waitFor({ state: 'hidden' });
  const item = page.locator('li[data-qid]', { hasText: text.slice(0, 60) });
  await item.waitFor();
  return item.getAttribute('data-qid');
}

const axeSource = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

/** Runs axe-core on the page; returns the serious and critical violations. */
export async function seriousViolations(page) {
  // Evaluated through the debugging protocol, not as an inline <script> the page's CSP
  // (rightly) refuses.
  await page.evaluate(axeSource);
  const violations = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const result = await axe.run(document, { resultTypes: ['violations'] });
    return result.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      targets: v.nodes.slice(0, 5).map((n) => n.target.join(' ')),
    }));
  });
  return violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
}

export async function screenshot(page, name, options = {}) {
  mkdirSync(artifactsDir, { recursive: true });
  const path = join(artifactsDir, `${name}.png`);
  await page.screenshot({ path, ...options });
  log('screenshot', path);
  return path;
}
