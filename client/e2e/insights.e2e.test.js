// The host's insights (issue 12): after a session staged over twenty simulated minutes (its
// records imported with `ledger import` before the server starts: asks, votes, a question
// hidden and shown again, one answered), the host opens Insights from the host page and
// sees the vote-over-time chart of the top questions, scrubs to the middle of the session
// and sees the list as it stood then (and at the end, the list as it is), the moderation
// audit in order, and downloads the chart as a PNG. A guest's page offers none of it.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { launchBrowser, person, screenshot, seriousViolations, startServer } from './harness.js';

const SECRET = randomBytes(16).toString('hex');
const MINUTE = 60_000;
const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/** A ULID of `ms` whose 80 low bits are `low` (deterministic, so ids sort as written). */
function ulid(ms, low) {
  let value = (BigInt(ms) << 80n) | BigInt(low);
  let out = '';
  for (let i = 0; i < 26; i += 1) {
    out = CROCKFORD[Number(value & 31n)] + out;
    value >>= 5n;
  }
  return out;
}

/** The staged session: the NDJSON to import and what it means. */
function session() {
  const start = Math.floor((Date.now() - 30 * MINUTE) / 1000) * 1000;
  const event = ulid(start - 1_000, 1);
  let seq = 0;
  const records = [];
  const texts = [
    'How does the ledger keep every single vote?',
    'Will the slides be online after the talk?',
    'What did the benchmark show on one laptop?',
  ];
  const questions = texts.map((_, i) => ulid(start + i * MINUTE, 100 + i));
  const record = (ms, question, fields) => {
    seq += 1;
    records.push({ id: ulid(ms, seq), event, question, region: 'e2e', ...fields });
  };
  const voter = (n) => ulid(start, 10_000 + n);
  texts.forEach((text, i) => record(start + i * MINUTE + 1, questions[i], { kind: 'asked', text, voter: voter(i) }));
  const votes = (q, count, fromMs, toMs, firstVoter) => {
    for (let i = 0; i < count; i += 1) {
      const at = fromMs + Math.round(((toMs - fromMs) * i) / Math.max(1, count - 1));
      record(at, questions[q], { kind: 'vote', voter: voter(firstVoter + i), up: true });
    }
  };
  votes(0, 2, start + 3 * MINUTE, start + 4 * MINUTE, 100);
  votes(1, 6, start + 5 * MINUTE, start + 9 * MINUTE, 200);
  votes(2, 8, start + 12 * MINUTE, start + 18 * MINUTE, 300);
  votes(0, 1, start + 15 * MINUTE, start + 15 * MINUTE, 400);
  record(start + 16 * MINUTE, questions[1], { kind: 'hidden', on: true });
  record(start + 17 * MINUTE, questions[1], { kind: 'hidden', on: false });
  record(start + 19 * MINUTE, questions[0], { kind: 'answered', on: true });
  const hash = createHash('sha256').update(SECRET).digest('hex');
  const lines = [{ kind: 'event', event, secret_hash: hash }, ...records].map((l) => JSON.stringify(l));
  return { event, questions, texts, records, ndjson: `${lines.join('\n')}\n` };
}

/** Each question's votes after the records up to `at` (no vote is withdrawn in the script). */
function votesAt(staged, at) {
  const votes = new Map();
  for (const r of staged.records) {
    if (Number.isNaN(at) || decodeTime(r.id) > at) continue;
    if (r.kind === 'asked' || (r.kind === 'vote' && r.up)) votes.set(r.question, (votes.get(r.question) ?? 0) + 1);
  }
  return votes;
}

function decodeTime(id) {
  let ms = 0;
  for (const c of id.slice(0, 10)) ms = ms * 32 + CROCKFORD.indexOf(c);
  return ms;
}

/** The replayed list as the page shows it: [qid, votes] in order. */
async function replayed(page) {
  return page.$$eval('#insights-list li[data-qid]', (items) =>
    items.map((li) => [li.dataset.qid, Number(li.dataset.votes)]),
  );
}

/** Waits until the replayed list is the one at a new instant; returns that instant. */
async function listAtChanged(page, previous) {
  await page.waitForFunction(
    (before) => {
      const list = document.querySelector('#insights-list');
      return list && list.dataset.at !== '' && list.dataset.at !== before && list.getAttribute('aria-busy') === 'false';
    },
    previous,
  );
  return Number(await page.getAttribute('#insights-list', 'data-at'));
}

const staged = session();
const env = { server: undefined, browser: undefined };
const mock = process.env.E2E_SERVER === 'mock';

before(async () => {
  if (mock) return;
  env.server = await startServer({ seed: staged.ndjson });
  env.browser = await launchBrowser();
});

after(async () => {
  await env.browser?.close();
  await env.server?.stop();
});

test('a host replays the session in Insights: chart, scrubber, audit, PNG', { skip: mock }, async () => {
  const { context, page, errors } = await person(env.browser, env.server.base);
  try {
    await page.goto(`/event/${staged.event}/${SECRET}`);
    await page.locator('#insights-open').click();
    await page.waitForURL(`**/event/${staged.event}/${SECRET}/insights`);
    await page.locator('#insights-page[data-phase="ready"]').waitFor();

    // The chart of the top questions: all three had votes.
    await page.locator('#insights-chart canvas').first().waitFor();
    assert.equal(await page.getAttribute('#insights-chart', 'data-series'), '3');
    const points = Number(await page.getAttribute('#insights-chart', 'data-points'));
    assert.ok(points >= 100 && points <= 130, `about 19 minutes in 10 s steps: ${points} points`);
    for (const text of staged.texts) {
      await page.locator('#insights-chart .u-legend', { hasText: text.slice(0, 30) }).waitFor();
    }

    // The scrubber opens in the middle of the session; to the end and back to the middle.
    const scrubber = page.locator('#insights-scrubber');
    const middle = Math.floor((points - 1) / 2);
    assert.equal(Number(await scrubber.inputValue()), middle);
    let at = await listAtChanged(page, '');
    await scrubber.fill(String(points - 1));
    at = await listAtChanged(page, String(at));
    const [q1, q2, q3] = staged.questions;
    assert.deepEqual(await replayed(page), [
      [q3, 9],
      [q2, 7],
      [q1, 4],
    ]);
    assert.equal(await page.locator(`#insights-list li[data-qid="${q1}"] .badge`).textContent(), 'Answered');
    await scrubber.fill(String(middle));
    at = await listAtChanged(page, String(at));
    const expected = [...votesAt(staged, at)].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
    assert.deepEqual(await replayed(page), expected, `the list at ${new Date(at).toISOString()}`);
    // Around minute 9-10: the slides question leads, the benchmark question has only its asker.
    assert.deepEqual(expected, [
      [q2, 7],
      [q1, 3],
      [q3, 1],
    ]);
    await page.locator('#insights-list', { hasText: staged.texts[1] }).waitFor();

    // The audit, in order, with the undoing.
    const audit = await page.$$eval('#insights-audit li', (items) => items.map((li) => li.textContent.trim()));
    assert.equal(audit.length, 3);
    assert.match(audit[0], /Hidden/);
    assert.match(audit[1], /Shown again/);
    assert.match(audit[2], /Marked answered/);
    assert.equal(await page.locator('#bursts-empty').textContent(), 'None found.');

    assert.deepEqual(await seriousViolations(page), []);
    await screenshot(page, 'insights', { fullPage: true });

    // Download PNG: a real PNG of the chart.
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#chart-download')]);
    assert.equal(download.suggestedFilename(), `votes-over-time-${staged.event}.png`);
    const path = await download.path();
    const { readFileSync } = await import('node:fs');
    const png = readFileSync(path);
    assert.deepEqual([...png.subarray(1, 4)], [0x50, 0x4e, 0x47], 'a PNG signature');
    assert.ok(png.length > 2_000, `${png.length} bytes`);
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
  }
});

test('the dark theme draws the chart too, and a guest sees no insights', { skip: mock }, async () => {
  const host = await person(env.browser, env.server.base, { colorScheme: 'dark' });
  try {
    await host.page.goto(`/event/${staged.event}/${SECRET}/insights`);
    await host.page.locator('#insights-chart canvas').first().waitFor();
    await listAtChanged(host.page, '');
    await screenshot(host.page, 'insights-dark', { fullPage: true });
    assert.deepEqual(host.errors, []);
  } finally {
    await host.context.close();
  }
  const guest = await person(env.browser, env.server.base);
  try {
    await guest.page.goto(`/event/${staged.event}`);
    await guest.page.locator('#event-page[data-phase="ready"]').waitFor();
    assert.equal(await guest.page.locator('#insights-open').count(), 0);
    // Under a wrong secret the page says so and shows nothing of the session.
    await guest.page.goto(`/event/${staged.event}/not-the-secret/insights`);
    await guest.page.locator('#insights-problem').waitFor();
    assert.equal(await guest.page.locator('#insights-chart').count(), 0);
    assert.equal(await guest.page.getAttribute('#insights-page', 'data-phase'), 'wrong-secret');
  } finally {
    await guest.context.close();
  }
});
