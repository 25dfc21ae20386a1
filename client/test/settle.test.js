import { describe, expect, it } from 'vitest';
import { HOLD_MS_MAX, SETTLE_MS, arrange, holdOrder, isSettled, release, settleDelay, touch } from '../src/lib/settle.js';
import { mergeQuestions, sectionQuestions } from '../src/lib/questions.js';

const A = '01HZZZ0000AAAAAAAAAAAAAAAA';
const B = '01HZZZ0001BBBBBBBBBBBBBBBB';
const C = '01HZZZ0002CCCCCCCCCCCCCCCC';
const D = '01HZZZ0003DDDDDDDDDDDDDDDD';

const T = 1_000_000;

/** The sections a page would show for a server list (its order is the server's ranking). */
function sectionsOf(list, mode = 'top') {
  return sectionQuestions(mergeQuestions(list, { voted: new Set(), pending: new Map(), busy: new Set() }), mode);
}

const qids = (list) => list.map((q) => q.qid);

describe('when the held order settles', () => {
  it('settles SETTLE_MS after the click, not before', () => {
    let clock = T;
    let hold = holdOrder(null, [A, B], clock);
    clock += SETTLE_MS - 1;
    expect(release(hold, clock)).toBe(hold);
    expect(settleDelay(hold, clock)).toBe(1);
    clock += 1;
    expect(isSettled(hold, clock)).toBe(true);
    expect(release(hold, clock)).toBeNull();
  });

  it('waits SETTLE_MS after the last activity on the list', () => {
    let clock = T;
    let hold = holdOrder(null, [A, B], clock);
    for (let i = 0; i < 5; i += 1) {
      clock += SETTLE_MS - 100;
      hold = touch(hold, clock);
      expect(hold).not.toBeNull();
    }
    clock += SETTLE_MS - 1;
    expect(release(hold, clock)).toBe(hold);
    clock += 1;
    expect(release(hold, clock)).toBeNull();
  });

  it('a second click while held keeps the first order and counts as activity', () => {
    let clock = T;
    const hold = holdOrder(null, [A, B, C], clock);
    clock += 500;
    const again = holdOrder(hold, [C, B, A], clock);
    expect(again.open).toEqual([A, B, C]);
    expect(again.sinceMs).toBe(T);
    expect(settleDelay(again, clock)).toBe(SETTLE_MS);
  });

  it('a click after the hold settled holds the order shown then', () => {
    const hold = holdOrder(null, [A, B], T);
    const next = holdOrder(hold, [B, A], T + SETTLE_MS);
    expect(next.open).toEqual([B, A]);
    expect(next.sinceMs).toBe(T + SETTLE_MS);
  });

  it('activity alone starts nothing, and does not revive a settled hold', () => {
    expect(touch(null, T)).toBeNull();
    const hold = holdOrder(null, [A], T);
    expect(touch(hold, T + SETTLE_MS)).toBeNull();
  });

  it('gives way HOLD_MS_MAX after it began, however busy the reader', () => {
    let clock = T;
    let hold = holdOrder(null, [A, B], clock);
    while (clock + 100 < T + HOLD_MS_MAX) {
      clock += 100;
      hold = touch(hold, clock);
      expect(hold).not.toBeNull();
    }
    expect(release(hold, T + HOLD_MS_MAX - 1)).toBe(hold);
    expect(release(hold, T + HOLD_MS_MAX)).toBeNull();
  });
});

describe('what a held list shows', () => {
  const before = [
    { qid: A, votes: 3 },
    { qid: B, votes: 2 },
    { qid: C, votes: 1 },
  ];

  it('without a hold, the sections as they are', () => {
    const sections = sectionsOf(before);
    expect(arrange(sections, null)).toBe(sections);
  });

  it('a vote that reorders changes the count in place, not the order', () => {
    // C got two votes: the server now ranks it first.
    const after = [
      { qid: C, votes: 3 },
      { qid: A, votes: 3 },
      { qid: B, votes: 2 },
    ];
    const shown = arrange(sectionsOf(after), [A, B, C]);
    expect(qids(shown.open)).toEqual([A, B, C]);
    expect(shown.open[2].votes).toBe(3);
    // Settled: the server's order.
    expect(qids(arrange(sectionsOf(after), null).open)).toEqual([C, A, B]);
  });

  it('a question the host hid or answered keeps its place in the open list, showing its new state', () => {
    const after = [
      { qid: B, votes: 2 },
      { qid: C, votes: 1, answered: 1_700_000_000 },
      { qid: A, votes: 3, hidden: true },
    ];
    const shown = arrange(sectionsOf(after), [A, B, C]);
    expect(qids(shown.open)).toEqual([A, B, C]);
    expect(shown.open[0].hidden).toBe(true);
    expect(shown.open[2].answered).toBe(1_700_000_000);
    // Shown once: not also in the sections they are headed for.
    expect(shown.hidden).toEqual([]);
    expect(shown.answered).toEqual([]);
  });

  it('a question gone from the list leaves at once', () => {
    // A guest's list leaves a hidden question out.
    const shown = arrange(sectionsOf([before[0], before[2]]), [A, B, C]);
    expect(qids(shown.open)).toEqual([A, C]);
  });

  it('a question new to the open list joins at its end', () => {
    const after = [{ qid: D, votes: 5 }, ...before];
    expect(qids(arrange(sectionsOf(after), [A, B, C]).open)).toEqual([A, B, C, D]);
  });

  it('the answered and hidden sections are shown as the server sent them', () => {
    const hiddenD = arrange(sectionsOf([...before, { qid: D, votes: 1, hidden: true }]), [A, B, C]);
    expect(qids(hiddenD.hidden)).toEqual([D]);
    // D was unhidden: it leaves the hidden list at once, and is open again at the open list's end.
    const back = arrange(sectionsOf([...before, { qid: D, votes: 1 }]), [A, B, C]);
    expect(qids(back.open)).toEqual([A, B, C, D]);
    expect(back.hidden).toEqual([]);
  });
});
