// Links as people type, shorten and mistype them, and the one change that does not wait for
// a paused reader: a lowercase event link lands on the canonical URL with the guest's own
// questions and votes intact; a malformed or unknown event link says "This event does not
// exist" (and stops asking); an unknown path is the app's not-found page with status 404;
// a question the host hides leaves a scrolled (paused) guest's screen within a second,
// while additions still wait.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { person, screenshot, serverAndBrowser, serverApi } from './harness.js';

/** The promise: Hide takes a question off every screen at once. */
const HIDE_GONE_MS_MAX = 1_000;

const env = serverAndBrowser();
const { createEvent, askByApi } = serverApi(env);

function question(page, text) {
  return page.locator('li[data-qid]', { hasText: text });
}

test('a lowercase event link lands on the canonical URL, with the guest’s question and vote', async () => {
  const { eid } = await createEvent();
  const lower = eid.toLowerCase();
  const guest = await person(env.browser, env.server.base);

  const response = await guest.page.goto(`/event/${lower}`);
  assert.equal(new URL(guest.page.url()).pathname, `/event/${eid}`, 'redirected to the canonical URL');
  const redirect = response.request().redirectedFrom();
  assert.ok(redirect, 'the server redirected');
  assert.equal((await redirect.response()).status(), 308);

  // The guest asks (and so votes for) a question on the canonical page ...
  const text = 'Does a lowercase link keep my question?';
  await guest.page.click('#ask-open');
  await guest.page.fill('#ask-text', text);
  await guest.page.click('#ask-submit');
  await question(guest.page, text).waitFor();
  await question(guest.page, text).locator('.badge-mine').waitFor();

  // ... and the lowercase link, opened again, still shows it as theirs and voted.
  await guest.page.goto(`/event/${lower}`);
  await question(guest.page, text).locator('.badge-mine').waitFor();
  assert.equal(await question(guest.page, text).locator('[data-action=vote]').getAttribute('aria-pressed'), 'true');

  // The Join box turns a lowercase id, or a lowercase link, into the canonical URL.
  for (const typed of [lower, `${env.server.base}/event/${lower}`]) {
    await guest.page.goto('/');
    await guest.page.fill('#join-input', typed);
    await guest.page.click('#join-submit');
    await guest.page.waitForURL(`**/event/${eid}`);
    await question(guest.page, text).locator('.badge-mine').waitFor();
  }
  assert.deepEqual(guest.errors, []);
  await guest.context.close();
});

test('a malformed or unknown event link says the event does not exist, and stops', async () => {
  const visitor = await person(env.browser, env.server.base);
  const listRequests = [];
  visitor.page.on('request', (request) => {
    if (new URL(request.url()).pathname.startsWith('/api/')) listRequests.push(request.url());
  });
  for (const path of [
    '/event/01abc', // cut short: the API answers 400
    '/event/01ARZ3NDEKTSV4RRFFQ69G5FA', // one character missing: 400
    '/event/01ARZ3NDEKTSV4RRFFQ69G5FAV', // well-formed, unknown: 404
    '/event/01arz3ndektsv4rrffq69g5fav', // the same in lowercase: redirected, then 404
  ]) {
    listRequests.length = 0;
    await visitor.page.goto(path);
    await visitor.page.locator('#error-unknown-event').waitFor({ timeout: 3_000 });
    assert.match(await visitor.page.textContent('#error-unknown-event'), /does not exist/, path);
    assert.equal(await visitor.page.locator('#error-unreachable').count(), 0, `${path}: not "cannot reach the server"`);
    // Final: nothing is asked again.
    const asked = listRequests.length;
    await visitor.page.waitForTimeout(1_500);
    assert.equal(listRequests.length, asked, `${path}: no retries after the answer (${listRequests.join(', ')})`);
  }
  await screenshot(visitor.page, 'links-unknown-event');
  assert.deepEqual(visitor.errors, []);
  await visitor.context.close();
});

test('an unknown path is the app’s not-found page with status 404', async () => {
  const visitor = await person(env.browser, env.server.base);
  for (const path of ['/nonsense', '/events/01ARZ3NDEKTSV4RRFFQ69G5FAV', '/event']) {
    const response = await visitor.page.goto(path);
    assert.equal(response.status(), 404, path);
    await visitor.page.locator('#error-not-found').waitFor();
    assert.match(await visitor.page.textContent('#error-not-found'), /Page not found/, path);
  }
  await screenshot(visitor.page, 'links-not-found');
  assert.deepEqual(visitor.errors, []);
  await visitor.context.close();
});

test('a question the host hides leaves a paused guest’s screen within a second; additions wait', async () => {
  const { eid, secret } = await createEvent();
  const texts = Array.from({ length: 10 }, (_, i) => `Question number ${i + 1} about the scrolling list?`);
  const qids = [];
  for (const text of texts) qids.push(await askByApi(eid, text));

  const host = await person(env.browser, env.server.base);
  await host.page.goto(`/event/${eid}/${secret}`);
  await question(host.page, texts[9]).waitFor();

  const guest = await person(env.browser, env.server.base, { viewport: { width: 390, height: 420 } });
  await guest.page.goto(`/event/${eid}`);
  await question(guest.page, texts[9]).waitFor();
  await guest.page.mouse.move(200, 300);
  await guest.page.mouse.wheel(0, 700);
  await guest.page.waitForFunction(() => document.querySelector('#pause-toggle')?.dataset.paused === 'true', null, {
    timeout: 3_000,
  });

  // An addition waits for the guest.
  const added = 'A new question while the guest reads?';
  await askByApi(eid, added);
  await guest.page.locator('#pending-changes').waitFor({ timeout: 3_000 });
  assert.equal(await question(guest.page, added).count(), 0, 'a paused list does not grow');

  // A hide does not.
  const target = question(guest.page, texts[6]);
  await target.waitFor();
  const hide = question(host.page, texts[6]).locator('[data-action=toggle-hidden]');
  const clicked = Date.now();
  await hide.click();
  await guest.page
    .locator(`li[data-qid="${qids[6]}"]`)
    .waitFor({ state: 'detached', timeout: HIDE_GONE_MS_MAX });
  const goneMs = Date.now() - clicked;
  assert.ok(goneMs <= HIDE_GONE_MS_MAX, `gone after ${goneMs} ms`);

  assert.equal(await guest.page.getAttribute('#pause-toggle', 'data-paused'), 'true', 'still paused');
  assert.equal(await question(guest.page, added).count(), 0, 'the addition still waits');
  assert.equal(await guest.page.getAttribute('#pending-changes', 'data-count'), '1', 'one change waits: the addition');
  await screenshot(guest.page, 'links-paused-guest-after-hide');

  // Resuming shows the addition, and the hidden question stays gone.
  await guest.page.click('#pending-changes');
  await question(guest.page, added).waitFor({ timeout: 3_000 });
  assert.equal(await guest.page.locator(`li[data-qid="${qids[6]}"]`).count(), 0);
  assert.deepEqual(guest.errors, []);
  assert.deepEqual(host.errors, []);
  await guest.context.close();
  await host.context.close();
});
