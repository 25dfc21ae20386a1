// The host's tools in the browser (issue 11): the approval queue (a guest's question waits,
// seen by its asker as "waiting for review" and by nobody else, until the host approves it
// from the "To review" queue; then another guest sees it within a second), the spotlight on
// the presenter view and the guest page, a written answer shown to guests, closed asking,
// and a co-host link that moderates but has no settings. Screenshots of the review queue
// and of the presenter's spotlight go to test-artifacts/client/.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { person, screenshot, seriousViolations, serverAndBrowser, serverApi } from './harness.js';

/** How long another guest may wait for an approved question (the second). */
const APPROVED_VISIBLE_MS_MAX = 1_000;

const env = serverAndBrowser();
const { api, createEvent, askByApi } = serverApi(env);

async function hostPage(eid, secret) {
  const host = await person(env.browser, env.server.base);
  await host.page.goto(`/event/${eid}/${secret}`);
  await host.page.locator('#event-page[data-phase=ready]').waitFor();
  return host;
}

async function guestPage(eid) {
  const guest = await person(env.browser, env.server.base);
  await guest.page.goto(`/event/${eid}`);
  await guest.page.locator('#event-page[data-phase=ready]').waitFor();
  return guest;
}

/** Asks through the page's dialog; resolves once the dialog closed. */
async function askInPage(page, text) {
  await page.click('#ask-open');
  await page.locator('#ask-dialog').waitFor({ state: 'visible' });
  await page.fill('#ask-text', text);
  await page.click('#ask-submit');
  await page.locator('#ask-dialog').waitFor({ state: 'hidden' });
}

async function settle() {
  // The embedded aggregator folds within milliseconds; give the lists a moment.
  await new Promise((r) => setTimeout(r, 300));
}

test('a question waits for review, seen by its asker only, until the host approves it', async () => {
  const { eid, secret } = await createEvent();
  const host = await hostPage(eid, secret);
  // The host switches moderation on in the settings panel.
  await host.page.click('#settings-open');
  await host.page.selectOption('#settings-moderation', 'pre-approve');
  await host.page.fill('#settings-title', 'Town hall');
  await host.page.click('#settings-save');
  await host.page.locator('text=Settings saved.').first().waitFor();
  await settle();

  const asker = await guestPage(eid);
  const other = await guestPage(eid);
  const text = 'Will this question be approved soon?';
  await askInPage(asker.page, text);
  const waiting = asker.page.locator('#waiting-review [data-role=review-item]', { hasText: text });
  await waiting.waitFor();
  assert.equal((await waiting.locator('[data-role=pending]').textContent()).trim(), 'Waiting for review');
  assert.equal(await asker.page.locator('li.question[data-qid]', { hasText: text }).count(), 0, 'not in the list');

  // The host's queue has it, in arrival order; the other guest sees nothing of it.
  const queued = host.page.locator('#review-queue [data-role=review-item]', { hasText: text });
  await queued.waitFor();
  await settle();
  assert.equal(await other.page.locator('li.question[data-qid]', { hasText: text }).count(), 0, 'another guest does not see it');
  assert.equal(await other.page.locator('#waiting-review').count(), 0);
  await screenshot(host.page, 'host-review-queue', { fullPage: true });
  assert.deepEqual(await seriousViolations(host.page), [], 'the settings panel and the queue are accessible');
  assert.deepEqual(await seriousViolations(asker.page), [], 'the guest page with a question waiting is accessible');

  await queued.locator('[data-action=approve]').click();
  const approvedAt = Date.now();
  await other.page.locator('li.question[data-qid]', { hasText: text }).waitFor({ timeout: 5_000 });
  const tookMs = Date.now() - approvedAt;
  assert.ok(tookMs <= APPROVED_VISIBLE_MS_MAX, `the other guest saw it after ${tookMs} ms`);
  await asker.page.locator('li.question[data-qid]', { hasText: text }).waitFor();
  await asker.page.locator('#waiting-review').waitFor({ state: 'detached' });
  await host.page.locator('#review-queue').waitFor({ state: 'detached' });
  assert.equal((await other.page.locator('#event-title').textContent()).trim(), 'Town hall');
  for (const p of [host, asker, other]) {
    assert.deepEqual(p.errors, []);
    await p.context.close();
  }
});

test('the spotlight leads the presenter view and is highlighted for guests; a written answer is shown to guests', async () => {
  const { eid, secret } = await createEvent();
  const first = await askByApi(eid, 'The most voted question here?');
  // A vote needs its question folded first (the server answers 404 until then).
  await settle();
  await api('POST', `/api/vote/${first}/up`);
  const lit = await askByApi(eid, 'The question for the spotlight?');
  await settle();
  const host = await hostPage(eid, secret);
  const guest = await guestPage(eid);
  await host.page.locator(`li[data-qid="${lit}"] [data-action=toggle-spotlight]`).click();
  const guestItem = guest.page.locator(`li[data-qid="${lit}"]`);
  await guest.page.locator(`li[data-qid="${lit}"][data-spotlight=true]`).waitFor();
  assert.equal((await guestItem.locator('[data-role=spotlight]').textContent()).trim(), 'In the spotlight');
  assert.equal(await guest.page.locator('li[data-qid]').first().getAttribute('data-qid'), lit, 'first in the list');

  // A written answer.
  const hostItem = host.page.locator(`li[data-qid="${lit}"]`);
  await hostItem.locator('[data-action=reply-open]').click();
  await hostItem.locator('[data-role=reply-text]').fill('Yes: next quarter.');
  await hostItem.locator('[data-action=reply-save]').click();
  await guestItem.locator('[data-role=reply]', { hasText: 'Yes: next quarter.' }).waitFor();

  // The presenter shows it large, as the spotlight.
  await host.page.click('#present-open');
  await host.page.locator(`#presenter-question[data-qid="${lit}"]`).waitFor();
  assert.equal(await host.page.locator('#presenter-kicker').getAttribute('data-spotlight'), 'true');
  assert.match(await host.page.locator('#presenter-kicker').textContent(), /In the spotlight/);
  await screenshot(host.page, 'presenter-spotlight');
  for (const p of [host, guest]) {
    assert.deepEqual(p.errors, []);
    await p.context.close();
  }
});

test('closed asking shows its message instead of the ask button', async () => {
  const { eid, secret } = await createEvent();
  const guest = await guestPage(eid);
  await guest.page.locator('#ask-open').waitFor();
  await api('POST', `/api/event/${eid}/settings/${secret}`, { asking: 'closed' });
  await guest.page.locator('#asking-closed').waitFor({ timeout: 6_000 });
  assert.equal((await guest.page.locator('#asking-closed').textContent()).trim(), 'Questions are closed');
  assert.equal(await guest.page.locator('#ask-open').count(), 0);
  const fresh = await guestPage(eid);
  await fresh.page.locator('#asking-closed').waitFor();
  for (const p of [guest, fresh]) {
    assert.deepEqual(p.errors, []);
    await p.context.close();
  }
});

test('a co-host link moderates but has no settings', async () => {
  const { eid, secret } = await createEvent();
  const q = await askByApi(eid, 'Can a co-host hide this question?');
  await settle();
  const host = await hostPage(eid, secret);
  await host.page.click('#settings-open');
  await host.page.click('#cohost-mint');
  const link = await host.page.locator('[data-role=cohost-link]').first().inputValue();
  assert.match(link, new RegExp(`/event/${eid}/[0-9a-f]{32}$`));
  await settle();

  const cohost = await person(env.browser, env.server.base);
  await cohost.page.goto(new URL(link).pathname);
  await cohost.page.locator('#event-page[data-phase=ready][data-role=host]').waitFor();
  await cohost.page.locator('#cohost-note').waitFor();
  assert.equal(await cohost.page.locator('#settings-panel').count(), 0, 'no settings for a co-host');
  await cohost.page.locator(`li[data-qid="${q}"] [data-action=toggle-hidden]`).click();
  await host.page.locator(`li[data-qid="${q}"][data-hidden=true]`).waitFor();
  // The settings route itself refuses the co-host.
  const cohostSecret = new URL(link).pathname.split('/').pop();
  const refused = await fetch(`${env.server.base}/api/event/${eid}/settings/${cohostSecret}`);
  assert.equal(refused.status, 403);
  for (const p of [host, cohost]) {
    assert.deepEqual(p.errors, []);
    await p.context.close();
  }
});
