// The live stream end to end, against the real server: two guests follow one event over
// the delta stream (`?deltas=1`: one whole list, then only what changed) while a third
// votes, and both show the new counts and order; then the server is stopped (SIGTERM)
// with both pages open: it is gone within 2 s, and both pages say "Reconnecting…" at once,
// because the server told them it is restarting.
//
// What each page's EventSource received is read from the browser's debugging protocol
// (Network.eventSourceMessageReceived), so the page itself runs unmodified.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { log, person, screenshot, serverAndBrowser, serverApi } from './harness.js';

/** The promise: with pages open, the server exits within 2 s of SIGTERM. */
const EXIT_MS_MAX = 2_000;
/** "At once": the pages say they are reconnecting well before any retry would. */
const RECONNECTING_MS_MAX = 1_000;

const Q1 = 'Which question did the room ask first?';
const Q2 = 'Which question came second in the room?';
const Q3 = 'Which question was asked third tonight?';
const Q4 = 'And which question arrived late to the party?';

const env = serverAndBrowser();
const { api, askByApi } = serverApi(env);
let eid;
const qids = {};
/** The two guests who only watch: `{ context, page, errors, stream }`. */
const watchers = [];

function question(page, qid) {
  return page.locator(`li[data-qid="${qid}"]`);
}

/**
 * Records what the page's live streams receive: `requests` (their URLs) and `messages`
 * (`{ name, data }`, `name` 'message' for an unnamed one).
 */
async function recordStreams(context, page) {
  const stream = { requests: [], messages: [] };
  const cdp = await context.newCDPSession(page);
  const streamIds = new Set();
  cdp.on('Network.requestWillBeSent', ({ requestId, request, type }) => {
    if (type === 'EventSource' || request.url.includes('/api/live/')) {
      streamIds.add(requestId);
      stream.requests.push(request.url);
    }
  });
  cdp.on('Network.eventSourceMessageReceived', ({ requestId, eventName, data }) => {
    if (streamIds.has(requestId)) stream.messages.push({ name: eventName || 'message', data });
  });
  await cdp.send('Network.enable');
  return stream;
}

/** The open list's question ids and counts, top to bottom, as the page shows them. */
function shownOrder(page) {
  return page.$$eval('#open-list li[data-qid]', (items) => items.map((li) => `${li.dataset.qid}:${li.dataset.votes}`));
}

/** Waits until the page shows `expected` (ids and counts, in order); fails with what it shows. */
async function expectShown(page, expected, what) {
  try {
    await page.waitForFunction(
      (want) =>
        JSON.stringify([...document.querySelectorAll('#open-list li[data-qid]')].map((li) => `${li.dataset.qid}:${li.dataset.votes}`)) ===
        JSON.stringify(want),
      expected,
      { timeout: 5_000 },
    );
  } catch {
    assert.deepEqual(await shownOrder(page), expected, what);
  }
}

const entry = (qid, votes) => `${qid}:${votes}`;

/** This test process's child serving on `port`: its process id, from /proc. */
function serverPid(port) {
  const listen = `127.0.0.1:${port}`;
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const argv = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0');
      const parent = Number(readFileSync(`/proc/${name}/stat`, 'utf8').split(') ')[1].split(' ')[1]);
      if (parent === process.pid && argv.includes('serve') && argv[argv.indexOf('--listen') + 1] === listen) return Number(name);
    } catch {
      // The process ended while we looked: not ours to find.
    }
  }
  return null;
}

/** Whether process `pid` has ended (gone, or a zombie waiting to be reaped). */
function ended(pid) {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].startsWith('Z');
  } catch {
    return true;
  }
}

test('two guests follow one event over the delta stream while a third votes', async () => {
  ({ id: eid } = await api('POST', '/api/event'));
  qids.q1 = await askByApi(eid, Q1);
  qids.q2 = await askByApi(eid, Q2);
  qids.q3 = await askByApi(eid, Q3);

  for (const viewport of [
    { width: 390, height: 844 },
    { width: 1280, height: 900 },
  ]) {
    const watcher = await person(env.browser, env.server.base, { viewport });
    watcher.stream = await recordStreams(watcher.context, watcher.page);
    await watcher.page.goto(`/event/${eid}`);
    watchers.push(watcher);
  }
  // One vote each, so ties go to the older question.
  const start = [entry(qids.q1, 1), entry(qids.q2, 1), entry(qids.q3, 1)];
  for (const { page } of watchers) {
    await page.waitForFunction(() => document.querySelector('#connection-status')?.dataset.state === 'live');
    await expectShown(page, start, 'the first list');
  }

  // A third guest, in a context of its own, votes from its page.
  const voter = await person(env.browser, env.server.base);
  await voter.page.goto(`/event/${eid}`);
  const vote = async (qid) => {
    await question(voter.page, qid).locator('[data-action=vote]').click();
    await voter.page.waitForFunction(
      (id) => document.querySelector(`li[data-qid="${id}"] [data-action=vote]`)?.getAttribute('aria-pressed') === 'true',
      qid,
    );
  };

  // The last question climbs to the top ...
  await vote(qids.q3);
  for (const { page } of watchers) {
    await expectShown(page, [entry(qids.q3, 2), entry(qids.q1, 1), entry(qids.q2, 1)], 'q3 voted to the top');
  }
  // ... the second follows it (equal votes: the older first) ...
  await vote(qids.q2);
  for (const { page } of watchers) {
    await expectShown(page, [entry(qids.q2, 2), entry(qids.q3, 2), entry(qids.q1, 1)], 'q2 voted up');
  }
  // ... a new question arrives at the end, then climbs past the first.
  qids.q4 = await askByApi(eid, Q4);
  for (const { page } of watchers) {
    await expectShown(page, [entry(qids.q2, 2), entry(qids.q3, 2), entry(qids.q1, 1), entry(qids.q4, 1)], 'q4 asked');
  }
  await question(voter.page, qids.q4).waitFor();
  await vote(qids.q4);
  const final = [entry(qids.q2, 2), entry(qids.q3, 2), entry(qids.q4, 2), entry(qids.q1, 1)];
  for (const { page } of watchers) await expectShown(page, final, 'q4 voted up');

  // The server agrees with what the pages show.
  const served = await api('GET', `/api/event/${eid}/questions`);
  assert.deepEqual(
    served.map((q) => entry(q.qid, q.votes)),
    final,
  );

  // It all came as deltas: each page asked for them, got one whole list and then only changes.
  for (const [index, { stream, errors }] of watchers.entries()) {
    const who = `watcher ${index + 1}`;
    assert.equal(stream.requests.length, 1, `${who}: one stream, never reopened (no gap)`);
    assert.match(stream.requests[0], new RegExp(`/api/live/${eid}\\?deltas=1$`), `${who}: asked for deltas`);
    const names = stream.messages.map((m) => m.name);
    assert.equal(names[0], 'list', `${who}: the stream starts with the whole list`);
    assert.equal(names.filter((n) => n === 'list').length, 1, `${who}: one whole list only (${names.join(', ')})`);
    assert.ok(names.filter((n) => n === 'delta').length >= 4, `${who}: a delta per change (${names.join(', ')})`);
    assert.ok(!names.includes('message'), `${who}: no whole lists as unnamed messages`);
    const deltas = stream.messages.filter((m) => m.name === 'delta').map((m) => JSON.parse(m.data));
    const seqs = [JSON.parse(stream.messages[0].data).seq, ...deltas.map((d) => d.seq)];
    assert.deepEqual(seqs, seqs.map((_, i) => seqs[0] + i), `${who}: versions one after another`);
    const bytes = stream.messages.filter((m) => m.name === 'delta').map((m) => m.data.length);
    log(who, 'received', names.join(' '), 'delta sizes', bytes.join(' '));
    assert.deepEqual(errors, [], `${who}: page errors`);
  }
  await screenshot(watchers[1].page, 'live-deltas');
  await voter.context.close();
});

test('SIGTERM with two live pages: the server is gone within 2 s and both pages say "Reconnecting…"', async () => {
  assert.equal(watchers.length, 2, 'the pages of the test before are open');
  for (const { page } of watchers) {
    assert.equal(await page.getAttribute('#connection-status', 'data-state'), 'live');
  }
  const port = Number(new URL(env.server.base).port);
  const pid = serverPid(port);
  assert.ok(pid, `the server on port ${port} is this test's child`);

  const signalled = Date.now();
  process.kill(pid, 'SIGTERM');
  // How long after the signal each page said so (Infinity: not within 5 s).
  const reconnecting = watchers.map(({ page }) =>
    page
      .waitForFunction(
        () => {
          const status = document.querySelector('#connection-status');
          return status?.dataset.state === 'reconnecting' && status.textContent.trim() === 'Reconnecting…';
        },
        undefined,
        { timeout: RECONNECTING_MS_MAX * 5, polling: 20 },
      )
      .then(
        () => Date.now() - signalled,
        () => Infinity,
      ),
  );
  while (!ended(pid) && Date.now() - signalled < 5_000) await new Promise((r) => setTimeout(r, 20));
  const exitMs = Date.now() - signalled;
  log('server ended', exitMs, 'ms after SIGTERM');
  assert.ok(ended(pid), 'the server ended at all within 5 s');
  assert.ok(exitMs <= EXIT_MS_MAX, `the server ended ${exitMs} ms after SIGTERM (at most ${EXIT_MS_MAX})`);

  const shownAfter = await Promise.all(reconnecting);
  log('pages said "Reconnecting…" after', shownAfter.join(', '), 'ms');
  for (const [index, { page, stream, errors }] of watchers.entries()) {
    const who = `watcher ${index + 1}`;
    assert.ok(shownAfter[index] <= RECONNECTING_MS_MAX, `${who}: "Reconnecting…" after ${shownAfter[index]} ms`);
    await page.locator('#connection-lost').waitFor({ state: 'visible', timeout: 1_000 });
    const names = stream.messages.map((m) => m.name);
    assert.ok(names.includes('restarting'), `${who}: the server said it is restarting (${names.join(', ')})`);
    assert.equal(await page.getAttribute('#event-page', 'data-phase'), 'ready', `${who}: the questions stay shown`);
    assert.ok((await page.locator('#open-list li[data-qid]').count()) === 4, `${who}: all four questions still shown`);
    assert.deepEqual(errors, [], `${who}: page errors`);
  }
  await screenshot(watchers[0].page, 'live-restarting');
  for (const { context } of watchers) await context.close();
});
