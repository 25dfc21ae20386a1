// The client end to end, in a real browser against a real server: a host creates an
// event, two guests (separate browser contexts, so separate voter cookies) ask and vote,
// and the host moderates, presents and exports. The steps share one event and run in
// order, like a session would.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { askAsGuest, log, person, screenshot, seriousViolations, serverAndBrowser } from './harness.js';

const Q1 = 'How does the ledger survive duplicate deliveries?';
const Q2 = 'What happens when two regions disagree about a count?';
const Q3 = 'Will the slides be shared after the talk?';
/** The promise: the host sees a guest's vote within one second. */
const VOTE_VISIBLE_MS_MAX = 1_000;

const env = serverAndBrowser();
let host;
let alice;
let bob;
let eid;
let secret;
const qids = {};


function question(page, text) {
  return page.locator('li[data-qid]', { hasText: text });
}

async function votesOf(page, text) {
  return Number(await question(page, text).getAttribute('data-votes'));
}

/** Waits until the question's shown count is `votes`; fails after `timeout` ms. */
async function expectVotes(page, qid, votes, timeout = 5_000) {
  await page.waitForFunction(
    ([id, n]) => document.querySelector(`li[data-qid="${id}"]`)?.getAttribute('data-votes') === String(n),
    [qid, votes],
    { timeout },
  );
}

async function assertAccessible(page, name) {
  const violations = await seriousViolations(page);
  assert.deepEqual(violations, [], `${name}: serious or critical accessibility violations`);
}

test('the start page creates an event and opens its host view', async () => {
  host = await person(env.browser, env.server.base);
  await host.page.goto('/');
  await host.page.locator('#create-event').waitFor();
  await screenshot(host.page, 'home');
  await assertAccessible(host.page, 'home');

  await host.page.click('#create-event');
  await host.page.waitForURL(/\/event\/[0-9A-Z]{26}\/[^/]+$/);
  [, , eid, secret] = new URL(host.page.url()).pathname.split('/');
  await host.page.locator('#share-panel').waitFor();

  const link = await host.page.inputValue('#share-link');
  assert.equal(link, `${env.server.base}/event/${eid}`);
  assert.ok(!link.includes(secret), 'the shared link must not carry the secret');
  await host.context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: env.server.base });
  await host.page.click('#copy-link');
  assert.equal(await host.page.evaluate(() => navigator.clipboard.readText()), link);
  await host.page.locator('#qr-code img').waitFor();
  assert.equal(await host.page.getAttribute('#qr-code', 'data-value'), link);
  await host.page.locator('#empty-open').waitFor();
});

test('two guests ask questions; the limits are shown before sending', async () => {
  alice = await person(env.browser, env.server.base, { viewport: { width: 390, height: 844 } });
  bob = await person(env.browser, env.server.base);
  await alice.page.goto(`/event/${eid}`);
  await bob.page.goto(`/event/${eid}`);
  await alice.page.locator('#ask-open').waitFor();

  // A one-word question is refused in the dialog, without a request.
  await alice.page.click('#ask-open');
  await alice.page.fill('#ask-text', 'Why');
  await alice.page.click('#ask-submit');
  assert.match(await alice.page.textContent('#ask-error'), /two words/);
  assert.ok(await alice.page.locator('#ask-dialog').isVisible());
  await alice.page.fill('#ask-text', 'x '.repeat(260));
  assert.match(await alice.page.textContent('#ask-text-count'), /\/ 500 characters/);
  assert.match(await alice.page.textContent('#ask-error'), /over the 500-character limit/);
  await alice.page.click('#ask-cancel');
  await alice.page.locator('#ask-dialog').waitFor({ state: 'hidden' });

  qids.q1 = await askAsGuest(alice.page, Q1, 'Alice');
  qids.q2 = await askAsGuest(bob.page, Q2);
  qids.q3 = await askAsGuest(bob.page, Q3, 'Bob');

  // The asker holds the first vote, and sees it as theirs.
  assert.equal(await question(alice.page, Q1).getAttribute('data-voted'), 'true');
  assert.equal(await question(bob.page, Q2).getAttribute('data-voted'), 'true');
  assert.ok((await question(alice.page, Q1).textContent()).includes('Your question'));

  // Everyone sees every question live, with author names from the text batch.
  for (const page of [alice.page, bob.page, host.page]) {
    for (const text of [Q1, Q2, Q3]) await question(page, text).waitFor({ timeout: 5_000 });
  }
  assert.ok((await question(host.page, Q1).textContent()).includes('Alice'));
  assert.ok((await question(host.page, Q2).textContent()).includes('Anonymous'));
  assert.equal(await question(alice.page, Q2).getAttribute('data-voted'), 'false');
  for (const qid of Object.values(qids)) await expectVotes(host.page, qid, 1);
});

test('the host sees each vote within a second, without reloading', async () => {
  const navigations = [];
  host.page.on('framenavigated', (frame) => frame === host.page.mainFrame() && navigations.push(frame.url()));

  let clicked = Date.now();
  await question(bob.page, Q1).locator('[data-action=vote]').click();
  await expectVotes(host.page, qids.q1, 2, VOTE_VISIBLE_MS_MAX);
  log('vote 1 visible to host after', Date.now() - clicked, 'ms');

  clicked = Date.now();
  await question(alice.page, Q2).locator('[data-action=vote]').click();
  await expectVotes(host.page, qids.q2, 2, VOTE_VISIBLE_MS_MAX);
  log('vote 2 visible to host after', Date.now() - clicked, 'ms');

  clicked = Date.now();
  await question(alice.page, Q3).locator('[data-action=vote]').click();
  await expectVotes(host.page, qids.q3, 2, VOTE_VISIBLE_MS_MAX);
  log('vote 3 visible to host after', Date.now() - clicked, 'ms');

  assert.deepEqual(navigations, [], 'the host page must not reload');
  // The voter's own page shows the vote at once and marks the button pressed.
  assert.equal(await question(bob.page, Q1).locator('[data-action=vote]').getAttribute('aria-pressed'), 'true');
  await expectVotes(bob.page, qids.q1, 2);
});

test('a guest cannot vote twice', async () => {
  const vote = question(bob.page, Q1).locator('[data-action=vote]');
  // Bob already voted for Q1. A reload keeps his vote remembered.
  await bob.page.reload();
  await vote.waitFor();
  assert.equal(await vote.getAttribute('aria-pressed'), 'true');

  // Retract, then hammer the button: one request at a time, and the server keeps one vote.
  await vote.click();
  await expectVotes(host.page, qids.q1, 1);
  // A double click is one vote: the second click lands while the first is in flight. The
  // vote is held back 300 ms on its way so that it still is in flight (on a fast machine it
  // could otherwise come back between the two clicks, and the second would be a retraction).
  const slowVotes = async (route) => {
    await new Promise((resolve) => setTimeout(resolve, 300));
    await route.continue();
  };
  await bob.page.route('**/api/vote/**', slowVotes);
  await vote.dblclick();
  await bob.page.waitForFunction(
    (id) => !document.querySelector(`li[data-qid="${id}"] [data-action=vote][aria-disabled=true]`),
    qids.q1,
  );
  await bob.page.unroute('**/api/vote/**', slowVotes);
  // Even a hand-made repeat of the request does not count twice.
  const status = await bob.page.evaluate(async (qid) => {
    const a = await fetch(`/api/vote/${qid}/up`, { method: 'POST' });
    const b = await fetch(`/api/vote/${qid}/up`, { method: 'POST' });
    return [a.status, b.status];
  }, qids.q1);
  assert.deepEqual(status, [200, 200]);
  await expectVotes(host.page, qids.q1, 2);
  await host.page.waitForTimeout(800);
  assert.equal(await votesOf(host.page, Q1), 2, 'Alice and Bob: two votes, however often Bob clicked');
  assert.equal(await vote.getAttribute('aria-pressed'), 'true');
});

test('answered questions move to their own section for everyone, and back', async () => {
  await question(host.page, Q2).locator('[data-action=toggle-answered]').click();
  await host.page.locator(`#answered-list li[data-qid="${qids.q2}"]`).waitFor({ timeout: 3_000 });
  await alice.page.locator(`#answered-list li[data-qid="${qids.q2}"]`).waitFor({ timeout: 3_000 });
  assert.equal(await question(alice.page, Q2).getAttribute('data-section'), 'answered');
  assert.equal(await question(alice.page, Q2).locator('[data-action=vote]').count(), 0);

  await question(host.page, Q2).locator('[data-action=toggle-answered]').click();
  await alice.page.locator(`#open-list li[data-qid="${qids.q2}"]`).waitFor({ timeout: 3_000 });
  await host.page.locator(`#open-list li[data-qid="${qids.q2}"]`).waitFor({ timeout: 3_000 });

  // Leave Q3 answered for the screenshots and the presenter.
  await question(host.page, Q3).locator('[data-action=toggle-answered]').click();
  await alice.page.locator(`#answered-list li[data-qid="${qids.q3}"]`).waitFor({ timeout: 3_000 });
});

test('hidden questions disappear for guests and stay listed for the host', async () => {
  await question(host.page, Q2).locator('[data-action=toggle-hidden]').click();
  await host.page.locator(`#hidden-list li[data-qid="${qids.q2}"]`).waitFor({ timeout: 3_000 });
  await bob.page.locator(`li[data-qid="${qids.q2}"]`).waitFor({ state: 'detached', timeout: 3_000 });
  await alice.page.locator(`li[data-qid="${qids.q2}"]`).waitFor({ state: 'detached', timeout: 3_000 });

  await question(host.page, Q2).locator('[data-action=toggle-hidden]').click();
  await bob.page.locator(`#open-list li[data-qid="${qids.q2}"]`).waitFor({ timeout: 3_000 });
  assert.equal(await host.page.locator('#hidden-list').count(), 0);
});

test('guests can order by Top or by New', async () => {
  await alice.page.click('#sort-new');
  const newest = await alice.page.locator('#open-list li[data-qid]').first().getAttribute('data-qid');
  assert.equal(newest, qids.q2, 'New puts the most recently asked open question first');
  await alice.page.click('#sort-top');
  assert.equal(await alice.page.getAttribute('#sort-top', 'aria-pressed'), 'true');
});

test('pausing holds updates back and shows how many are waiting', async () => {
  await host.page.click('#pause-toggle');
  assert.equal(await host.page.getAttribute('#pause-toggle', 'data-paused'), 'true');
  const before = await votesOf(host.page, Q2);

  await question(bob.page, Q2).locator('[data-action=vote]').click(); // Bob retracts his own vote
  await host.page.locator('#pending-changes').waitFor({ timeout: 3_000 });
  assert.equal(await host.page.getAttribute('#pending-changes', 'data-count'), '1');
  assert.match(await host.page.textContent('#pending-changes'), /1 new change/);
  assert.equal(await votesOf(host.page, Q2), before, 'a paused list does not change');

  await host.page.click('#pending-changes');
  await expectVotes(host.page, qids.q2, before - 1);
  assert.equal(await host.page.getAttribute('#pause-toggle', 'data-paused'), 'false');
});

test('scrolling down the list pauses updates until the reader is back on top', async () => {
  const phone = await person(env.browser, env.server.base, { viewport: { width: 390, height: 420 } });
  await phone.page.goto(`/event/${eid}/${secret}`);
  await question(phone.page, Q1).waitFor();
  await screenshot(phone.page, 'host-phone', { fullPage: true });
  await phone.page.mouse.move(200, 300);
  await phone.page.mouse.wheel(0, 600);
  await phone.page.waitForFunction(() => document.querySelector('#pause-toggle')?.dataset.paused === 'true', null, {
    timeout: 3_000,
  });
  await question(bob.page, Q2).locator('[data-action=vote]').click(); // Bob votes again
  await phone.page.locator('#pending-changes').waitFor({ timeout: 3_000 });
  await phone.page.mouse.wheel(0, -2_000);
  await phone.page.waitForFunction(() => document.querySelector('#pause-toggle')?.dataset.paused === 'false', null, {
    timeout: 3_000,
  });
  await expectVotes(phone.page, qids.q2, 2);
  await phone.context.close();
});

test('screenshots and accessibility of the guest and host views', async () => {
  await expectVotes(alice.page, qids.q2, 2);
  await screenshot(alice.page, 'guest-phone', { fullPage: true });
  await assertAccessible(alice.page, 'guest');
  await alice.page.click('#ask-open');
  await alice.page.locator('#ask-dialog').waitFor({ state: 'visible' });
  await screenshot(alice.page, 'guest-ask-dialog');
  await assertAccessible(alice.page, 'guest ask dialog');
  await alice.page.keyboard.press('Escape');
  await alice.page.locator('#ask-dialog').waitFor({ state: 'hidden' });

  await question(host.page, Q1).locator('[data-action=toggle-hidden]').waitFor();
  await screenshot(host.page, 'host', { fullPage: true });
  await assertAccessible(host.page, 'host');

  const dark = await person(env.browser, env.server.base, { colorScheme: 'dark' });
  const textRequests = [];
  dark.page.on('request', (request) => {
    const path = new URL(request.url()).pathname;
    if (path.startsWith('/api/questions/')) textRequests.push(decodeURIComponent(path.slice('/api/questions/'.length)));
  });
  await dark.page.goto(`/event/${eid}/${secret}`);
  for (const text of [Q1, Q2, Q3]) await question(dark.page, text).locator('[data-role=text]', { hasText: text }).waitFor();
  // A fresh page fetches every text it needs in one batch.
  assert.equal(textRequests.length, 1, `one batch of texts, got ${JSON.stringify(textRequests)}`);
  assert.deepEqual(new Set(textRequests[0].split(',')), new Set(Object.values(qids)));
  await screenshot(dark.page, 'host-dark', { fullPage: true });
  await assertAccessible(dark.page, 'host (dark)');
  await dark.page.goto(`/event/${eid}`);
  await question(dark.page, Q1).waitFor();
  await screenshot(dark.page, 'guest-dark', { fullPage: true });
  await assertAccessible(dark.page, 'guest (dark)');
  await dark.page.goto('/');
  await dark.page.locator('#create-event').waitFor();
  await screenshot(dark.page, 'home-dark');
  await assertAccessible(dark.page, 'home (dark)');
  await dark.context.close();
});

test('the presenter view shows the top open question and how to join', async () => {
  await host.page.click('#present-open');
  await host.page.locator('#presenter').waitFor();
  const top = await host.page.locator('#open-list li[data-qid]').first().getAttribute('data-qid');
  assert.equal(await host.page.getAttribute('#presenter-question', 'data-qid'), top);
  assert.equal(top, qids.q1, 'Q1 has the most votes');
  await host.page.waitForFunction((text) => document.querySelector('#presenter-question')?.textContent.includes(text), Q1);
  await host.page.locator('#presenter-qr img').waitFor();
  assert.ok((await host.page.textContent('#presenter-link')).includes(`/event/${eid}`));
  assert.ok(!(await host.page.textContent('#presenter')).includes(secret));
  await screenshot(host.page, 'presenter');
  await assertAccessible(host.page, 'presenter');

  // Answering from the presenter (the A key, as a presenter's clicker would) moves on.
  await host.page.keyboard.press('a');
  await host.page.waitForFunction(
    (q1) => {
      const id = document.querySelector('#presenter-question')?.dataset.qid;
      return id && id !== q1;
    },
    qids.q1,
    { timeout: 3_000 },
  );
  assert.equal(await host.page.getAttribute('#presenter-question', 'data-qid'), qids.q2);
  await host.page.keyboard.press('Escape');
  await host.page.locator('#presenter').waitFor({ state: 'detached' });
});

test('export downloads a file with the questions, in every format', async () => {
  for (const format of ['csv', 'json', 'md']) {
    const [download] = await Promise.all([host.page.waitForEvent('download'), host.page.click(`#export-${format}`)]);
    const path = await download.path();
    const content = await readFile(path, 'utf8');
    for (const text of [Q1, Q2, Q3]) assert.ok(content.includes(text), `${format} export lacks "${text}"`);
    assert.ok(download.suggestedFilename().length > 0);
    log('export', format, download.suggestedFilename(), content.length, 'bytes');
  }
});

test('an unknown event and a wrong host link get clear messages', async () => {
  const stranger = await person(env.browser, env.server.base);
  await stranger.page.goto('/event/01ARZ3NDEKTSV4RRFFQ69G5FAV');
  await stranger.page.locator('#error-unknown-event').waitFor();
  assert.match(await stranger.page.textContent('#error-unknown-event'), /does not exist/);

  await stranger.page.goto(`/event/${eid}/not-the-secret`);
  await stranger.page.locator('#error-wrong-secret').waitFor();
  assert.match(await stranger.page.textContent('#error-wrong-secret'), /host link is not right/);
  await stranger.page.click('#wrong-secret-guest-link');
  await question(stranger.page, Q1).waitFor();

  // A server that cannot be reached is said so, and tried again until it answers.
  await stranger.context.route(`**/api/event/${eid}`, (route) => route.abort('connectionrefused'));
  await stranger.page.reload();
  await stranger.page.locator('#error-unreachable').waitFor();
  await stranger.context.unroute(`**/api/event/${eid}`);
  await question(stranger.page, Q1).waitFor({ timeout: 10_000 });
  assert.deepEqual(stranger.errors, []);
  await stranger.context.close();
});

test('without the live route (as on AWS) a guest polls with ETags and still sees changes', async () => {
  const carol = await person(env.browser, env.server.base);
  const lists = [];
  await carol.context.route('**/api/live/**', (route) =>
    route.fulfill({ status: 404, contentType: 'application/json', body: '{"error":"not available"}' }),
  );
  carol.page.on('response', (response) => {
    if (new URL(response.url()).pathname === `/api/event/${eid}/questions`) {
      lists.push({ status: response.status(), ifNoneMatch: response.request().headers()['if-none-match'] ?? null });
    }
  });
  await carol.page.goto(`/event/${eid}`);
  await carol.page.waitForFunction(() => document.querySelector('#connection-status')?.dataset.state === 'polling');
  const before = await votesOf(carol.page, Q2);
  await question(alice.page, Q2).locator('[data-action=vote]').click(); // Alice withdraws her vote
  await expectVotes(carol.page, qids.q2, before - 1, 8_000);
  await carol.page.waitForTimeout(3_000); // one more poll of an unchanged list
  assert.ok(lists.some((r) => r.ifNoneMatch !== null), 'polls are conditional');
  assert.ok(lists.some((r) => r.status === 304), 'an unchanged list costs a 304');

  // A lost connection is said out loud and retried until the server answers again.
  await carol.context.route(`**/api/event/${eid}/questions`, (route) => route.abort('connectionrefused'));
  await carol.page.locator('#connection-lost').waitFor({ timeout: 8_000 });
  assert.equal(await carol.page.getAttribute('#connection-status', 'data-state'), 'reconnecting');
  await carol.context.unroute(`**/api/event/${eid}/questions`);
  await carol.page.locator('#connection-lost').waitFor({ state: 'detached', timeout: 12_000 });
  assert.equal(await carol.page.getAttribute('#connection-status', 'data-state'), 'polling');
  assert.deepEqual(carol.errors, []);
  await carol.context.close();
});

test('a guest can ask and vote with the keyboard alone', async () => {
  const dave = await person(env.browser, env.server.base);
  await dave.page.goto(`/event/${eid}`);
  await dave.page.locator('#ask-open').focus();
  await dave.page.keyboard.press('Enter');
  await dave.page.locator('#ask-dialog').waitFor({ state: 'visible' });
  assert.equal(await dave.page.evaluate(() => document.activeElement?.id), 'ask-text');
  await dave.page.keyboard.type('Is there a recording of this talk?');
  await dave.page.keyboard.press('Tab');
  await dave.page.keyboard.type('Dave');
  await dave.page.keyboard.press('Enter'); // submits the form
  await dave.page.locator('#ask-dialog').waitFor({ state: 'hidden' });
  await question(dave.page, 'Is there a recording of this talk?').waitFor();

  // Q1 was answered by the presenter; Q2 is open, with Bob's vote alone.
  const before = await votesOf(host.page, Q2);
  const vote = question(dave.page, Q2).locator('[data-action=vote]');
  await vote.focus();
  await dave.page.keyboard.press('Space');
  await dave.page.waitForFunction(
    (id) => document.querySelector(`li[data-qid="${id}"] [data-action=vote]`)?.getAttribute('aria-pressed') === 'true',
    qids.q2,
  );
  await expectVotes(host.page, qids.q2, before + 1);
  assert.deepEqual(dave.errors, []);
  await dave.context.close();
});

test('no page threw an uncaught error', () => {
  for (const [name, who] of Object.entries({ host, alice, bob })) {
    assert.deepEqual(who.errors, [], `${name}'s page threw`);
  }
});
