// A guest's own questions and votes come from the server (issue 16): a guest who asked a
// question and voted on another, then lost this browser's local storage (the voter cookie
// stays), sees both again after a reload: the "Your question" badge, the vote pressed, the
// counts right, and a second tap withdraws the real vote. A vote the storage remembers but
// the server does not hold shows as not voted. When the server's answer fails, the page
// still opens at once with what storage remembered. Host pages do not ask.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { askAsGuest, person, screenshot, seriousViolations, serverAndBrowser, serverApi } from './harness.js';

/** How long the page may take to show the server's answer after it loaded. */
const RESTORED_MS_MAX = 3_000;
/** How long the server may take to fold a write into the lists and the guest's own view. */
const CATCH_UP_MS = 5_000;

const env = serverAndBrowser();
const { api, createEvent, askByApi } = serverApi(env);

function question(page, qid) {
  return page.locator(`li[data-qid="${qid}"]`);
}

/** What the page shows of a question: count, voted, its vote button pressed, the badge. */
async function shown(page, qid) {
  return page.evaluate((id) => {
    const item = document.querySelector(`li[data-qid="${id}"]`);
    if (!item) return null;
    return {
      votes: Number(item.dataset.votes),
      voted: item.dataset.voted === 'true',
      pressed: item.querySelector('[data-action=vote]')?.getAttribute('aria-pressed') === 'true',
      mine: item.querySelector('.badge-mine')?.textContent.trim() === 'Your question',
    };
  }, qid);
}

/** Waits until the question shows `expected` (see shown); fails with what it showed last. */
async function expectShown(page, qid, expected, what, timeout = RESTORED_MS_MAX) {
  const started = Date.now();
  let seen;
  for (;;) {
    seen = await shown(page, qid);
    if (seen && Object.keys(expected).every((key) => seen[key] === expected[key])) return Date.now() - started;
    if (Date.now() - started > timeout) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.deepEqual(seen, expected, `${what}: shown after ${timeout} ms`);
}

/** Polls until `read()` deep-equals `expected`; fails with the last value read. */
async function eventually(read, expected, what) {
  const started = Date.now();
  let seen;
  for (;;) {
    seen = await read();
    try {
      assert.deepEqual(seen, expected);
      return;
    } catch {
      if (Date.now() - started > CATCH_UP_MS) break;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  assert.deepEqual(seen, expected, `${what} after ${CATCH_UP_MS} ms`);
}

/** The guest's own view as the server answers it to this browser context's cookie, sorted. */
async function mineOf(context, eid) {
  const response = await context.request.get(`/api/event/${eid}/mine`);
  assert.equal(response.status(), 200);
  const body = await response.json();
  return { asked: [...body.asked].sort(), voted: [...body.voted].sort() };
}

/** The count the API serves for `qid`. */
async function servedVotes(eid, qid) {
  const list = await api('GET', `/api/event/${eid}/questions`);
  return list.find((q) => q.qid === qid)?.votes;
}

/** This page's remembered votes and asked questions for the event (storage.js' keys), sorted. */
function stored(page, eid) {
  return page.evaluate((id) => {
    const read = (key) => JSON.parse(localStorage.getItem(`wewerewondering:${key}:${id}`) ?? '[]').sort();
    return { asked: read('asked'), voted: read('votes') };
  }, eid);
}

/** A page of its own in the context, its page errors collected. */
async function newPage(context, errors) {
  const page = await context.newPage();
  page.on('pageerror', (error) => errors.push(error.message));
  return page;
}

/** Clicks a question's vote button and waits until it shows `pressed` and is no longer sending. */
async function tapVote(page, qid, pressed) {
  await question(page, qid).locator('[data-action=vote]').click();
  await page.waitForFunction(
    ([id, want]) => {
      const button = document.querySelector(`li[data-qid="${id}"] [data-action=vote]`);
      return button?.getAttribute('aria-pressed') === want && button.getAttribute('aria-disabled') !== 'true';
    },
    [qid, String(pressed)],
  );
}

/**
 * A guest on a phone opens the event, asks `ownText` through the page and votes `voted` up
 * (a question already listed); resolves to `{ guest, own }`, `own` the asked question's id.
 */
async function guestWhoAskedAndVoted(eid, voted, ownText) {
  const guest = await person(env.browser, env.server.base, { viewport: { width: 390, height: 844 } });
  await guest.page.goto(`/event/${eid}`);
  await question(guest.page, voted).waitFor();
  const own = await askAsGuest(guest.page, ownText);
  await tapVote(guest.page, voted, true);
  return { guest, own };
}

test('voted state restored from the server after clearing local storage', async () => {
  const { eid, secret } = await createEvent();
  const voted = await askByApi(eid, 'Which question will this guest vote up?');
  const stale = await askByApi(eid, 'Which question does the storage wrongly remember?');

  const { guest, own } = await guestWhoAskedAndVoted(eid, voted, 'Which question did this guest ask themselves?');
  await expectShown(guest.page, voted, { votes: 2, voted: true, pressed: true, mine: false }, 'after the vote');

  // The server holds both (the guest's own view as its cookie gets it), then this
  // browser forgets everything it remembered; the cookie stays.
  await eventually(() => mineOf(guest.context, eid), { asked: [own], voted: [own, voted].sort() }, 'the server’s view');
  await guest.page.evaluate(() => localStorage.clear());
  assert.equal(await guest.page.evaluate(() => localStorage.length), 0, 'storage cleared');
  await guest.page.close();

  // A new page of the same context: cookie, but no storage.
  const page = await newPage(guest.context, guest.errors);
  const mineRequests = [];
  page.on('request', (request) => request.url().endsWith('/mine') && mineRequests.push(request.url()));
  await page.goto(`/event/${eid}`);
  await question(page, voted).waitFor();
  await expectShown(page, own, { votes: 1, voted: true, pressed: true, mine: true }, 'the guest’s own question');
  await expectShown(page, voted, { votes: 2, voted: true, pressed: true, mine: false }, 'the question voted up');
  await expectShown(page, stale, { votes: 1, voted: false, pressed: false, mine: false }, 'a question not voted');
  assert.deepEqual(mineRequests, [`${env.server.base}/api/event/${eid}/mine`], 'asked once, on opening');
  assert.deepEqual(await stored(page, eid), { asked: [own], voted: [own, voted].sort() }, 'written through to storage');
  await screenshot(page, 'mine-restored');
  assert.deepEqual(await seriousViolations(page), [], 'serious or critical accessibility violations');

  // Storage that remembers a vote the server does not hold: not voted, once the server answered.
  await page.evaluate(
    ([id, qids]) => localStorage.setItem(`wewerewondering:votes:${id}`, JSON.stringify(qids)),
    [eid, [own, voted, stale]],
  );
  await page.reload();
  await question(page, stale).waitFor();
  await expectShown(page, stale, { votes: 1, voted: false, pressed: false, mine: false }, 'a vote only storage remembered');
  await expectShown(page, voted, { votes: 2, voted: true, pressed: true, mine: false }, 'the real vote, after the reload');

  // A second tap withdraws the real vote: one less, here and on the server.
  await tapVote(page, voted, false);
  await expectShown(page, voted, { votes: 1, voted: false, pressed: false, mine: false }, 'after withdrawing');
  await eventually(() => servedVotes(eid, voted), 1, 'the count the API serves');
  await eventually(() => mineOf(guest.context, eid), { asked: [own], voted: [own] }, 'the server’s view after withdrawing');
  await screenshot(page, 'mine-withdrawn');

  // The host's page has no guest of its own to ask about.
  const host = await person(env.browser, env.server.base);
  const hostMine = [];
  host.page.on('request', (request) => request.url().endsWith('/mine') && hostMine.push(request.url()));
  await host.page.goto(`/event/${eid}/${secret}`);
  await question(host.page, own).waitFor();
  assert.deepEqual(hostMine, [], 'the host page does not ask');

  assert.deepEqual(guest.errors, []);
  assert.deepEqual(host.errors, []);
  await host.context.close();
  await guest.context.close();
});

test('when the server’s answer fails, the page opens at once with what storage remembered', async () => {
  const { eid } = await createEvent();
  const voted = await askByApi(eid, 'Which question is voted up before the outage?');
  const { guest, own } = await guestWhoAskedAndVoted(eid, voted, 'Which question stays mine without an answer?');

  // The guest's own view answers late, and then with an error.
  const answered = [];
  await guest.context.route('**/api/event/*/mine', async (route) => {
    await new Promise((r) => setTimeout(r, RESTORED_MS_MAX));
    answered.push(route.request().url());
    await route.fulfill({ status: 500, contentType: 'application/json', body: '{"error":"down"}' });
  });
  const loaded = Date.now();
  await guest.page.reload();
  await guest.page.locator('#event-page[data-phase=ready]').waitFor({ timeout: RESTORED_MS_MAX - 500 });
  await expectShown(guest.page, own, { votes: 1, voted: true, pressed: true, mine: true }, 'from storage', 0);
  await expectShown(guest.page, voted, { votes: 2, voted: true, pressed: true, mine: false }, 'from storage', 0);
  assert.ok(Date.now() - loaded < RESTORED_MS_MAX, 'shown before the answer came');

  // Once the error came (and a moment for the page to take it), nothing changed.
  const waited = Date.now();
  while (answered.length === 0 && Date.now() - waited < RESTORED_MS_MAX + 2_000) {
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal(answered.length, 1, 'the page asked, and was answered with an error');
  await new Promise((r) => setTimeout(r, 300));
  await expectShown(guest.page, own, { votes: 1, voted: true, pressed: true, mine: true }, 'after the error', 0);
  await expectShown(guest.page, voted, { votes: 2, voted: true, pressed: true, mine: false }, 'after the error', 0);
  await screenshot(guest.page, 'mine-answer-failed');
  assert.deepEqual(guest.errors, []);
  await guest.context.close();
});
