// The room, the projector and the phone (issue 16): a 500-character question on the
// presenter view at a laptop's, a projector's and a full-HD screen's size; what a guest
// sees while updates are paused or the connection is lost after scrolling down; and what
// a screen reader hears for a vote button. A real server, a real browser, its own event.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { askAsGuest, log, person, screenshot, seriousViolations, serverAndBrowser } from './harness.js';

/** The server's limit is 500 characters; this question uses all of them. */
const QUESTION_CHARS_MAX = 500;
const LONG = (() => {
  const sentence =
    'When the network between the two regions splits for an hour and both sides keep taking votes, how does the ledger decide which count is right afterwards, ';
  const text = `${sentence.repeat(4).slice(0, QUESTION_CHARS_MAX - 1).trimEnd()}?`;
  return text + 'x'.repeat(QUESTION_CHARS_MAX - text.length);
})();
const SHORT = 'Will the slides be shared?';
/** The sizes a presenter meets: an old projector, a laptop, full HD, 4K. */
const VIEWPORTS = [
  { width: 1024, height: 768 },
  { width: 1280, height: 720 },
  { width: 1920, height: 1080 },
  { width: 3840, height: 2160 },
];
/** What must stay on screen in the presenter view, whatever the question. */
const PRESENTER_PARTS = ['#presenter-qr', '#presenter-link', '#presenter-answer', '#presenter-close'];

const env = serverAndBrowser();
let host;
let guest;
let eid;
const qids = {};


function question(page, qid) {
  return page.locator(`li[data-qid="${qid}"]`);
}

/** Waits until the presenter's layout has settled (the text is fitted after a resize). */
async function settled(page) {
  await page.evaluate(
    () => new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(() => setTimeout(resolve, 100)))),
  );
}

/** Asserts each part's box lies entirely inside the viewport; returns the boxes. */
async function assertInsideViewport(page, selectors, what) {
  const { width, height } = page.viewportSize();
  const boxes = {};
  for (const selector of selectors) {
    const box = await page.locator(selector).boundingBox();
    assert.ok(box, `${what}: ${selector} is not rendered`);
    assert.ok(box.width > 0 && box.height > 0, `${what}: ${selector} has no size`);
    const inside = box.x >= 0 && box.y >= 0 && box.x + box.width <= width + 0.5 && box.y + box.height <= height + 0.5;
    assert.ok(inside, `${what}: ${selector} at ${JSON.stringify(box)} leaves the ${width}×${height} viewport`);
    boxes[selector] = box;
  }
  return boxes;
}

function overlaps(a, b) {
  return a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
}

test('a host creates an event; a guest asks a 500-character and a short question', async () => {
  host = await person(env.browser, env.server.base, { viewport: VIEWPORTS[0] });
  await host.page.goto('/');
  await host.page.click('#create-event');
  await host.page.waitForURL(/\/event\/[0-9A-Z]{26}\/[^/]+$/);
  [, , eid] = new URL(host.page.url()).pathname.split('/');

  guest = await person(env.browser, env.server.base, { viewport: { width: 390, height: 520 } });
  await guest.page.goto(`/event/${eid}`);
  assert.equal(LONG.length, QUESTION_CHARS_MAX);
  qids.long = await askAsGuest(guest.page, LONG, 'Grace');
  qids.short = await askAsGuest(guest.page, SHORT);
  // A second voter puts the long question on top.
  const other = await person(env.browser, env.server.base);
  await other.page.goto(`/event/${eid}`);
  await question(other.page, qids.long).locator('[data-action=vote]').click();
  await host.page.waitForFunction(
    (id) => document.querySelector(`li[data-qid="${id}"]`)?.getAttribute('data-votes') === '2',
    qids.long,
  );
  assert.deepEqual(other.errors, []);
  await other.context.close();
});

test('the presenter view keeps the QR code, the link and the buttons on screen with a 500-character question', async () => {
  await host.page.click('#present-open');
  await host.page.locator('#presenter').waitFor();
  await host.page.waitForFunction(
    ([id, start]) => {
      const h = document.querySelector('#presenter-question');
      return h?.dataset.qid === id && h.textContent.includes(start);
    },
    [qids.long, LONG.slice(0, 40)],
  );
  await host.page.locator('#presenter-qr img').waitFor();
  for (const viewport of VIEWPORTS) {
    await host.page.setViewportSize(viewport);
    await settled(host.page);
    const what = `long question at ${viewport.width}×${viewport.height}`;
    const boxes = await assertInsideViewport(host.page, [...PRESENTER_PARTS, '#presenter-question'], what);
    for (const part of PRESENTER_PARTS) {
      assert.ok(!overlaps(boxes['#presenter-question'], boxes[part]), `${what}: the question covers ${part}`);
    }
    const panel = await host.page.locator('#presenter .join').boundingBox();
    for (const part of ['#presenter-qr', '#presenter-link']) {
      const box = boxes[part];
      const inPanel =
        box.x >= panel.x && box.y >= panel.y && box.x + box.width <= panel.x + panel.width && box.y + box.height <= panel.y + panel.height;
      assert.ok(inPanel, `${what}: ${part} at ${JSON.stringify(box)} spills out of its panel ${JSON.stringify(panel)}`);
    }
    const shown = await host.page.evaluate(() => {
      const h = document.querySelector('#presenter-question');
      const style = getComputedStyle(h);
      const presenter = document.querySelector('#presenter');
      return {
        fontPx: parseFloat(style.fontSize),
        clamp: style.webkitLineClamp,
        scrolls: presenter.scrollHeight > presenter.clientHeight || presenter.scrollWidth > presenter.clientWidth,
      };
    });
    log(what, JSON.stringify(shown));
    assert.equal(shown.scrolls, false, `${what}: the presenter view must not need scrolling`);
    assert.ok(shown.fontPx >= 18, `${what}: the question stays readable (${shown.fontPx}px)`);
    await screenshot(host.page, `presenter-long-${viewport.width}x${viewport.height}`);
  }
  await host.page.setViewportSize(VIEWPORTS[0]);
  await settled(host.page);
  const violations = await seriousViolations(host.page);
  assert.deepEqual(violations, [], 'presenter with a long question: serious or critical accessibility violations');
});

test('past the smallest size the question is cut with an ellipsis, the controls stay', async () => {
  // A window far smaller than any projector: the text cannot fit even at the smallest size.
  await host.page.setViewportSize({ width: 1024, height: 360 });
  await settled(host.page);
  await assertInsideViewport(host.page, ['#presenter-answer', '#presenter-close'], 'long question at 1024×360');
  const cut = await host.page.evaluate(() => {
    const h = document.querySelector('#presenter-question');
    const box = h.parentElement;
    return {
      clamp: getComputedStyle(h).webkitLineClamp,
      textOverflows: h.scrollHeight > h.clientHeight,
      boxFits: box.scrollHeight <= box.clientHeight + 1,
    };
  });
  assert.notEqual(cut.clamp, 'none', `the question is clamped to some lines: ${JSON.stringify(cut)}`);
  assert.ok(cut.textOverflows, 'the rest of the text is cut (and ends with an ellipsis)');
  assert.ok(cut.boxFits, 'what is shown fits its box');
  await screenshot(host.page, 'presenter-long-clamped-1024x360');
});

test('the presenter view with a short question: large text, everything on screen', async () => {
  await host.page.setViewportSize(VIEWPORTS[0]);
  // "Mark answered" from the presenter moves on to the short question.
  await host.page.click('#presenter-answer');
  await host.page.waitForFunction((id) => document.querySelector('#presenter-question')?.dataset.qid === id, qids.short, {
    timeout: 3_000,
  });
  for (const viewport of VIEWPORTS) {
    await host.page.setViewportSize(viewport);
    await settled(host.page);
    const what = `short question at ${viewport.width}×${viewport.height}`;
    await assertInsideViewport(host.page, [...PRESENTER_PARTS, '#presenter-question'], what);
    const fontPx = await host.page.evaluate(() => parseFloat(getComputedStyle(document.querySelector('#presenter-question')).fontSize));
    assert.ok(fontPx >= 40, `${what}: a short question is shown large (${fontPx}px)`);
    await screenshot(host.page, `presenter-short-${viewport.width}x${viewport.height}`);
  }
  await host.page.keyboard.press('Escape');
  await host.page.locator('#presenter').waitFor({ state: 'detached' });
  await host.page.setViewportSize(VIEWPORTS[0]);
});

test('while updates are paused the status says "Paused", not a green "Live"', async () => {
  const status = guest.page.locator('#connection-status');
  await guest.page.waitForFunction(() => document.querySelector('#connection-status')?.dataset.state === 'live');
  const dotColour = () =>
    guest.page.evaluate(() => getComputedStyle(document.querySelector('#connection-status .dot')).backgroundColor);
  const success = await guest.page.evaluate(() => {
    // The theme's success colour, resolved the way the browser paints it.
    const probe = document.createElement('span');
    probe.style.color = 'var(--success)';
    document.body.append(probe);
    const colour = getComputedStyle(probe).color;
    probe.remove();
    return colour;
  });
  assert.equal((await status.textContent()).trim(), 'Live');
  assert.equal(await dotColour(), success, 'live is green');

  await guest.page.click('#pause-toggle');
  await guest.page.waitForFunction(() => document.querySelector('#connection-status')?.textContent.trim() === 'Paused');
  assert.equal(await status.getAttribute('data-paused'), 'true');
  assert.notEqual(await dotColour(), success, 'a paused list is not shown as live');
  await screenshot(guest.page, 'status-paused', { clip: { x: 0, y: 0, width: 390, height: 200 } });

  await guest.page.click('#pause-toggle');
  await guest.page.waitForFunction(() => document.querySelector('#connection-status')?.textContent.trim() === 'Live');
  assert.equal(await status.getAttribute('data-paused'), 'false');
  assert.equal(await dotColour(), success);
});

test('the "Connection lost" banner stays in view for a guest who scrolled down', async () => {
  const reader = await person(env.browser, env.server.base, { viewport: { width: 390, height: 420 } });
  // Without the live route the page polls, so cutting the list's route loses the connection.
  await reader.context.route('**/api/live/**', (route) =>
    route.fulfill({ status: 404, contentType: 'application/json', body: '{"error":"not available"}' }),
  );
  await reader.page.goto(`/event/${eid}`);
  await reader.page.waitForFunction(() => document.querySelector('#connection-status')?.dataset.state === 'polling');
  await question(reader.page, qids.short).waitFor();
  await reader.page.mouse.move(200, 300);
  await reader.page.mouse.wheel(0, 2_000);
  await reader.page.waitForFunction(() => window.scrollY > 300);

  await reader.context.route(`**/api/event/${eid}/questions`, (route) => route.abort('connectionrefused'));
  await reader.page.locator('#connection-lost').waitFor({ state: 'visible', timeout: 8_000 });
  assert.ok((await reader.page.evaluate(() => window.scrollY)) > 300, 'the guest is still scrolled down');
  await assertInsideViewport(reader.page, ['#connection-lost'], 'scrolled guest');
  await screenshot(reader.page, 'connection-lost-scrolled');

  await reader.context.unroute(`**/api/event/${eid}/questions`);
  await reader.page.locator('#connection-lost').waitFor({ state: 'detached', timeout: 12_000 });
  assert.deepEqual(reader.errors, []);
  await reader.context.close();
});

test('each vote button is named by its question', async () => {
  const voteButtons = guest.page.getByRole('button', { name: `Vote for: ${SHORT}` });
  assert.equal(await voteButtons.count(), 1, 'one button named "Vote for: <the question> …"');
  const vote = voteButtons.first();
  assert.equal(await vote.getAttribute('data-action'), 'vote');
  assert.equal(await vote.evaluate((button) => button.closest('li').dataset.qid), qids.short);
  // Then the count it shows, so the name holds the button's visible text (WCAG 2.5.3).
  const votes = await question(guest.page, qids.short).getAttribute('data-votes');
  const named = guest.page.getByRole('button', {
    name: `Vote for: ${SHORT} ${votes} ${votes === '1' ? 'vote' : 'votes'}`,
    exact: true,
  });
  assert.equal(await named.count(), 1, 'the name ends with the count');
  // Voting through the named button presses that button and no other.
  const pressedBefore = await vote.getAttribute('aria-pressed');
  await vote.click();
  await guest.page.waitForFunction(
    ([id, before]) => {
      const button = document.querySelector(`li[data-qid="${id}"] [data-action=vote]`);
      return button?.getAttribute('aria-pressed') !== before && !button.hasAttribute('aria-disabled');
    },
    [qids.short, pressedBefore],
  );
  const snapshot = await guest.page.locator('#open-list').ariaSnapshot();
  log('open list as a screen reader meets it:', snapshot);
  assert.match(snapshot, /button "Vote for: Will the slides be shared\? \d+ votes?"/);
  assert.doesNotMatch(snapshot, /Vote for this question/);
  const violations = await seriousViolations(guest.page);
  assert.deepEqual(violations, [], 'guest: serious or critical accessibility violations');
});

test('no page threw an uncaught error or broke the content security policy', () => {
  assert.deepEqual(host.errors, [], 'host');
  assert.deepEqual(guest.errors, [], 'guest');
});
