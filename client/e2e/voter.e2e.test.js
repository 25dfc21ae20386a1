// One guest, one voter: a new guest (a fresh browser context, no voter cookie yet) who
// votes on two questions at once must still be one voter, so both votes can be withdrawn
// again. The counts are read through the API, the way any other reader sees them.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { person, screenshot, serverAndBrowser } from './harness.js';

const QUESTIONS = ['Which parts of the talk will be on the exam?', 'Could you repeat the second example slowly?'];
/** How long the aggregator may take to fold a vote into the list the API serves. */
const CATCH_UP_MS = 5_000;

const env = serverAndBrowser();


async function api(path, init) {
  const response = await fetch(`${env.server.base}${path}`, init);
  assert.ok(response.ok, `${init?.method ?? 'GET'} ${path} answered ${response.status}`);
  return response.json();
}

/** The guests' list as the API serves it: qid → votes. */
async function counts(eid) {
  const list = await api(`/api/event/${eid}/questions`);
  return Object.fromEntries(list.map((q) => [q.qid, q.votes]));
}

/** Polls the API until every named question has the expected count; fails with the last seen. */
async function expectCounts(eid, expected, what) {
  const started = Date.now();
  let seen;
  for (;;) {
    const all = await counts(eid);
    seen = Object.fromEntries(Object.keys(expected).map((qid) => [qid, all[qid]]));
    if (Object.keys(expected).every((qid) => seen[qid] === expected[qid])) return;
    if (Date.now() - started > CATCH_UP_MS) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.deepEqual(seen, expected, `${what}: the API's counts after ${CATCH_UP_MS} ms`);
}

/** Clicks the vote buttons of both questions in one task: neither click waits for anything. */
function clickBothAtOnce(page, qids) {
  return page.evaluate((ids) => {
    for (const id of ids) document.querySelector(`li[data-qid="${id}"] [data-action=vote]`).click();
  }, qids);
}

/** Waits until both vote buttons show `pressed` and neither is still sending. */
function waitForButtons(page, qids, pressed) {
  return page.waitForFunction(
    ([ids, want]) =>
      ids.every((id) => {
        const button = document.querySelector(`li[data-qid="${id}"] [data-action=vote]`);
        return button?.getAttribute('aria-pressed') === want && button.getAttribute('aria-disabled') !== 'true';
      }),
    [qids, String(pressed)],
  );
}

test('a new guest voting on two questions at once is one voter, and can withdraw both votes', async () => {
  // The event and its questions come straight from the API; each ask is its own asker.
  const { id: eid } = await api('/api/event', { method: 'POST' });
  const qids = [];
  for (const body of QUESTIONS) {
    const { id } = await api(`/api/event/${eid}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ body, asker: null }),
    });
    qids.push(id);
  }
  // Each question holds its asker's vote.
  const baseline = Object.fromEntries(qids.map((qid) => [qid, 1]));
  await expectCounts(eid, baseline, 'before the guest votes');

  const guest = await person(env.browser, env.server.base);
  const votes = [];
  guest.page.on('request', (r) => r.url().includes('/api/vote/') && votes.push(`sent ${r.url().split('/').at(-2)}`));
  guest.page.on('response', (r) => r.url().includes('/api/vote/') && votes.push(`done ${r.url().split('/').at(-2)}`));
  await guest.page.goto(`/event/${eid}`);
  for (const qid of qids) await guest.page.locator(`li[data-qid="${qid}"] [data-action=vote]`).waitFor();
  assert.deepEqual(await guest.context.cookies(), [], 'a new guest starts without a voter cookie');

  await clickBothAtOnce(guest.page, qids);
  await waitForButtons(guest.page, qids, true);
  await expectCounts(eid, Object.fromEntries(qids.map((qid) => [qid, 2])), 'after the two votes');
  const cookies = (await guest.context.cookies()).filter((c) => c.name === 'voter');
  assert.equal(cookies.length, 1, 'the guest holds one voter cookie');

  await clickBothAtOnce(guest.page, qids);
  await waitForButtons(guest.page, qids, false);
  await expectCounts(eid, baseline, 'after withdrawing both votes');
  // And they stay there: nothing folded late brings a vote back.
  await new Promise((r) => setTimeout(r, 500));
  assert.deepEqual(await counts(eid), baseline, 'the counts stay where they were');

  // Without a cookie the second vote waited for the first: sent with the cookie it brought.
  // (The withdrawals, sent with the cookie held, may overlap.)
  assert.deepEqual(votes.slice(0, 4), [`sent ${qids[0]}`, `done ${qids[0]}`, `sent ${qids[1]}`, `done ${qids[1]}`]);

  assert.equal(await guest.page.locator('#toast.toast-error').count(), 0, 'no error was shown');
  await screenshot(guest.page, 'voter-two-votes-withdrawn');
  assert.deepEqual(guest.errors, []);
  await guest.context.close();
});
