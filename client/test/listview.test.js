import { describe, expect, it } from 'vitest';
import {
  AUTO_PAUSE_SCROLL_PX,
  LOCAL_ASKED_MS_MAX,
  USER_SCROLL_WINDOW_MS,
  applyList,
  askedQuestion,
  beginToggle,
  beginVote,
  endToggle,
  endVote,
  initialListView,
  isPaused,
  patchQuestion,
  pause,
  receiveList,
  remembered,
  resume,
  scrolled,
  tick,
  togglePatch,
  visibleList,
  waitingChanges,
} from '../src/lib/listview.js';
import { PENDING_VOTE_MS_MAX, mergeQuestions } from '../src/lib/questions.js';

const A = '01HZZZ0000AAAAAAAAAAAAAAAA';
const B = '01HZZZ0001BBBBBBBBBBBBBBBB';
const C = '01HZZZ0002CCCCCCCCCCCCCCCC';

const T = 1_000_000;
const first = [
  { qid: A, votes: 3, hidden: false },
  { qid: B, votes: 1, hidden: false },
];

/** A page showing `list`, nothing remembered. */
function showing(list = first) {
  return applyList(initialListView({ voted: new Set(), asked: new Set() }), list, T);
}

/** The count the page shows for `qid`. */
function shownVotes(view, qid) {
  return mergeQuestions(visibleList(view), view).find((q) => q.qid === qid)?.votes;
}

describe('pause and resume', () => {
  it('shows a list at once while not paused', () => {
    const latest = [{ qid: A, votes: 4, hidden: false }, ...first.slice(1)];
    const view = receiveList(showing(), latest, T);
    expect(view.serverList).toBe(latest);
    expect(view.waitingList).toBeNull();
  });

  it('keeps a list waiting while paused, counts its changes, and shows it on resume', () => {
    const latest = [{ qid: A, votes: 4, hidden: false }, ...first.slice(1), { qid: C, votes: 1, hidden: false }];
    const paused = receiveList(pause(showing()), latest, T);
    expect(isPaused(paused)).toBe(true);
    expect(paused.serverList).toEqual(first);
    expect(waitingChanges(paused)).toBe(2);

    const resumed = resume(paused, T);
    expect(isPaused(resumed)).toBe(false);
    expect(resumed.serverList).toBe(latest);
    expect(resumed.waitingList).toBeNull();
    expect(waitingChanges(resumed)).toBe(0);
  });

  it('drops a question that left the list at once, even while paused', () => {
    const latest = [{ qid: A, votes: 9, hidden: false }];
    const view = receiveList(pause(showing()), latest, T);
    // B is gone; A's new count waits.
    expect(view.serverList).toEqual([first[0]]);
    expect(view.waitingList).toBe(latest);
  });

  it('pauses on a scroll down the page only soon after the reader’s own input', () => {
    const down = { scrollY: AUTO_PAUSE_SCROLL_PX + 1, nowMs: T };
    expect(scrolled(showing(), { ...down, lastUserInputMs: T - USER_SCROLL_WINDOW_MS + 1 }).pausedByScroll).toBe(true);
    // A scroll the page made (a list growing, say) long after any input does not pause.
    expect(scrolled(showing(), { ...down, lastUserInputMs: T - USER_SCROLL_WINDOW_MS }).pausedByScroll).toBe(false);
    const near = { scrollY: AUTO_PAUSE_SCROLL_PX, nowMs: T, lastUserInputMs: T };
    expect(scrolled(showing(), near).pausedByScroll).toBe(false);
  });

  it('resumes by itself back at the top, unless the reader also paused by hand', () => {
    const latest = [{ qid: C, votes: 1, hidden: false }, ...first];
    const down = { scrollY: AUTO_PAUSE_SCROLL_PX + 1, nowMs: T, lastUserInputMs: T };
    const top = { scrollY: 0, nowMs: T, lastUserInputMs: T };
    const byScroll = receiveList(scrolled(showing(), down), latest, T);
    const back = scrolled(byScroll, top);
    expect(isPaused(back)).toBe(false);
    expect(back.serverList).toBe(latest);

    const alsoByHand = scrolled(pause(byScroll), top);
    expect(alsoByHand.pausedByScroll).toBe(false);
    expect(isPaused(alsoByHand)).toBe(true);
    expect(alsoByHand.serverList).toEqual(first);
    expect(alsoByHand.waitingList).toBe(latest);
  });
});

describe('optimistic votes', () => {
  it('counts a vote at once and blocks a second click while the first is in flight', () => {
    const begun = beginVote(showing(), A, 3, T);
    expect(begun.vote.up).toBe(true);
    expect(begun.view.voted.has(A)).toBe(true);
    expect(shownVotes(begun.view, A)).toBe(4);
    expect(beginVote(begun.view, A, 3, T)).toBeNull();
    const done = endVote(begun.view, begun.vote, true);
    expect(done.busy.has(A)).toBe(false);
    expect(shownVotes(done, A)).toBe(4);
  });

  it('withdraws a vote this browser holds', () => {
    const view = remembered(showing(), { voted: new Set([A]) });
    const begun = beginVote(view, A, 3, T);
    expect(begun.vote.up).toBe(false);
    expect(begun.view.voted.has(A)).toBe(false);
    expect(shownVotes(begun.view, A)).toBe(2);
  });

  it('undoes a failed vote: the button and the count as before, other votes kept', () => {
    const onB = beginVote(showing(), B, 1, T);
    const onA = beginVote(onB.view, A, 3, T);
    const failed = endVote(onA.view, onA.vote, false);
    expect(failed.voted.has(A)).toBe(false);
    expect(failed.busy.has(A)).toBe(false);
    expect(failed.pending.has(A)).toBe(false);
    expect(shownVotes(failed, A)).toBe(3);
    // B's vote, still in flight, is untouched.
    expect(failed.voted.has(B)).toBe(true);
    expect(shownVotes(failed, B)).toBe(2);
  });

  it('restores the earlier unconfirmed vote when a withdrawal fails', () => {
    const up = beginVote(showing(), A, 3, T);
    const counted = endVote(up.view, up.vote, true);
    const down = beginVote(counted, A, 3, T + 1);
    expect(shownVotes(down.view, A)).toBe(3);
    const failed = endVote(down.view, down.vote, false);
    expect(failed.voted.has(A)).toBe(true);
    expect(failed.pending.get(A)).toEqual(counted.pending.get(A));
    expect(shownVotes(failed, A)).toBe(4);
  });

  it('settles a local vote on a tick once it is stale, but not while paused', () => {
    const begun = beginVote(showing(), A, 3, T);
    const voted = endVote(begun.view, begun.vote, true);
    const late = T + PENDING_VOTE_MS_MAX + 1;
    expect(tick(voted, late).pending.has(A)).toBe(false);
    expect(tick(pause(voted), late).pending.has(A)).toBe(true);
  });
});

describe('questions this browser asked', () => {
  it('shows a just-asked question until the server lists it, voted and marked as asked', () => {
    const view = askedQuestion(showing(), C, T);
    expect(view.voted.has(C)).toBe(true);
    expect(view.asked.has(C)).toBe(true);
    expect(visibleList(view).map((q) => q.qid)).toEqual([A, B, C]);

    const listed = [...first, { qid: C, votes: 1, hidden: false }];
    const next = receiveList(view, listed, T);
    expect(next.localAsked.size).toBe(0);
    expect(visibleList(next)).toBe(listed);
  });

  it('stops showing a just-asked question the server never listed', () => {
    const view = askedQuestion(showing(), C, T);
    expect(tick(view, T + LOCAL_ASKED_MS_MAX - 1).localAsked.has(C)).toBe(true);
    expect(visibleList(tick(view, T + LOCAL_ASKED_MS_MAX)).map((q) => q.qid)).toEqual([A, B]);
  });
});

describe('moderation toggles', () => {
  it('refuses a toggle already in flight and frees it when done', () => {
    const busy = beginToggle(showing(), A, 'answered');
    expect(busy.toggling.has(`${A}:answered`)).toBe(true);
    expect(beginToggle(busy, A, 'answered')).toBeNull();
    expect(beginToggle(busy, A, 'hidden')).not.toBeNull();
    expect(endToggle(busy, A, 'answered').toggling.size).toBe(0);
  });

  it('takes the server’s answer when it gave one, else what was asked for', () => {
    expect(togglePatch('hidden', true, { hidden: false }, T)).toEqual({ hidden: false });
    expect(togglePatch('hidden', true, null, T)).toEqual({ hidden: true });
    expect(togglePatch('answered', true, { answered: 42 }, T)).toEqual({ answered: 42 });
    expect(togglePatch('answered', true, {}, 5_500)).toEqual({ answered: 5 });
    expect(togglePatch('answered', false, { answered: 42 }, T)).toEqual({ answered: undefined });
  });

  it('patches the question in the shown and in the waiting list', () => {
    const latest = [...first, { qid: C, votes: 1, hidden: false }];
    const view = patchQuestion(receiveList(pause(showing()), latest, T), B, { answered: 7 });
    expect(view.serverList.find((q) => q.qid === B).answered).toBe(7);
    expect(view.waitingList.find((q) => q.qid === B).answered).toBe(7);
    expect(view.serverList.find((q) => q.qid === A)).toBe(first[0]);
  });
});

describe('another tab', () => {
  it('takes the votes and questions another tab remembered, and nothing else', () => {
    const view = showing();
    expect(remembered(view, {})).toBe(view);
    const next = remembered(view, { asked: new Set([B]) });
    expect(next.asked.has(B)).toBe(true);
    expect(next.voted).toBe(view.voted);
  });
});
