import { describe, expect, it } from 'vitest';
import {
  PENDING_VOTE_MS_MAX,
  applyRemovals,
  countChanges,
  mergeQuestions,
  questionProblem,
  recordVote,
  sameList,
  sectionQuestions,
  settlePending,
  timeAgo,
  topOpenQuestion,
  ulidTimeMs,
} from '../src/lib/questions.js';

// ULIDs whose time part orders them: A oldest … D newest.
const A = '01HZZZ0000AAAAAAAAAAAAAAAA';
const B = '01HZZZ0001BBBBBBBBBBBBBBBB';
const C = '01HZZZ0002CCCCCCCCCCCCCCCC';
const D = '01HZZZ0003DDDDDDDDDDDDDDDD';

const none = { voted: new Set(), pending: new Map(), busy: new Set() };

/** A server list entry: `qid` with `votes`, not hidden, plus any `more` fields. */
const entry = (qid, votes, more = {}) => ({ qid, votes, hidden: false, ...more });

describe('ulidTimeMs', () => {
  it('decodes the time of a ULID', () => {
    expect(ulidTimeMs('01ARZ3NDEKTSV4RRFFQ69G5FAV')).toBe(Date.UTC(2016, 6, 30, 23, 54, 10, 259));
  });

  it('rejects what is not a ULID', () => {
    expect(ulidTimeMs('short')).toBeNaN();
    expect(ulidTimeMs('01ARZ3NDE!TSV4RRFFQ69G5FAV')).toBeNaN();
    expect(ulidTimeMs(undefined)).toBeNaN();
  });
});

describe('merging live updates with local votes', () => {
  it('shows a fresh local up-vote on top of the server count', () => {
    const server = [entry(A, 3)];
    const pending = recordVote(new Map(), A, 3, true, 1_000);
    const [q] = mergeQuestions(server, { voted: new Set([A]), pending, busy: new Set([A]) });
    expect(q.votes).toBe(4);
    expect(q.serverVotes).toBe(3);
    expect(q.voted).toBe(true);
    expect(q.busy).toBe(true);
  });

  it('does not count the local vote twice once the server has it', () => {
    const pending = recordVote(new Map(), A, 3, true, 1_000);
    const server = [entry(A, 4)];
    const settled = settlePending(pending, server, 1_100);
    expect(settled.has(A)).toBe(false);
    const [q] = mergeQuestions(server, { ...none, voted: new Set([A]), pending: settled });
    expect(q.votes).toBe(4);
    // Even before settling, a moved server count is taken as including our vote.
    const [unsettled] = mergeQuestions(server, { ...none, pending });
    expect(unsettled.votes).toBe(4);
  });

  it('keeps the local vote while updates still carry the old count', () => {
    const pending = recordVote(new Map(), A, 3, true, 1_000);
    const server = [entry(A, 3)];
    const settled = settlePending(pending, server, 1_500);
    expect(settled).toBe(pending);
    expect(mergeQuestions(server, { ...none, pending: settled })[0].votes).toBe(4);
  });

  it('trusts the server after a pending vote grew stale', () => {
    const pending = recordVote(new Map(), A, 3, true, 1_000);
    const server = [entry(A, 3)];
    const settled = settlePending(pending, server, 1_000 + PENDING_VOTE_MS_MAX + 1);
    expect(settled.size).toBe(0);
    expect(mergeQuestions(server, { ...none, pending: settled })[0].votes).toBe(3);
  });

  it('cancels out an up-vote retracted before the server saw either', () => {
    let pending = recordVote(new Map(), A, 3, true, 1_000);
    pending = recordVote(pending, A, 3, false, 1_200);
    expect(pending.has(A)).toBe(false);
    expect(mergeQuestions([entry(A, 3)], { ...none, pending })[0].votes).toBe(3);
  });

  it('shows a retraction immediately and never a negative count', () => {
    const pending = recordVote(new Map(), A, 0, false, 1_000);
    const [q] = mergeQuestions([entry(A, 0)], { ...none, pending });
    expect(q.votes).toBe(0);
    const retract = recordVote(new Map(), B, 5, false, 1_000);
    expect(mergeQuestions([entry(B, 5)], { ...none, pending: retract })[0].votes).toBe(4);
  });

  it('does not modify the maps it is given', () => {
    const pending = new Map();
    const next = recordVote(pending, A, 1, true, 0);
    expect(pending.size).toBe(0);
    expect(next.size).toBe(1);
  });

  it('marks questions voted from the remembered set and keeps the server order', () => {
    const server = [entry(B, 5), entry(A, 2, { answered: 1700000000 })];
    const merged = mergeQuestions(server, { ...none, voted: new Set([A]) });
    expect(merged.map((q) => [q.qid, q.voted, q.rank, q.answered])).toEqual([
      [B, false, 0, null],
      [A, true, 1, 1700000000],
    ]);
  });
});

describe('ordering', () => {
  const server = [
    entry(B, 9),
    entry(D, 4),
    entry(A, 3),
    entry(C, 7, { answered: 200 }),
    entry('01HZZZ0004EEEEEEEEEEEEEEEE', 1, { answered: 300 }),
    entry('01HZZZ0005FFFFFFFFFFFFFFFF', 8, { hidden: true }),
  ];
  const merged = mergeQuestions(server, none);

  it('keeps the server ranking for Top', () => {
    const { open } = sectionQuestions(merged, 'top');
    expect(open.map((q) => q.qid)).toEqual([B, D, A]);
  });

  it('puts the newest question first for New', () => {
    const { open } = sectionQuestions(merged, 'new');
    expect(open.map((q) => q.qid)).toEqual([D, B, A]);
  });

  it('lists answered questions apart, most recently answered first, and hidden ones last', () => {
    const { answered, hidden } = sectionQuestions(merged, 'top');
    expect(answered.map((q) => q.qid)).toEqual(['01HZZZ0004EEEEEEEEEEEEEEEE', C]);
    expect(hidden.map((q) => q.qid)).toEqual(['01HZZZ0005FFFFFFFFFFFFFFFF']);
  });

  it('offers the presenter the top open question, never an answered or hidden one', () => {
    expect(topOpenQuestion(merged).qid).toBe(B);
    const onlyClosed = mergeQuestions(server.slice(3), none);
    expect(topOpenQuestion(onlyClosed)).toBeNull();
  });
});

describe('changes while paused', () => {
  const shown = [entry(A, 3), entry(B, 1), entry(C, 1)];

  it('counts new, removed and changed questions', () => {
    const latest = [entry(A, 4), entry(B, 1, { answered: 10 }), entry(D, 1)];
    // A changed votes, B answered, D new, C gone.
    expect(countChanges(shown, latest)).toBe(4);
  });

  it('sees no change in an identical list', () => {
    expect(countChanges(shown, shown.map((q) => ({ ...q })))).toBe(0);
    expect(sameList(shown, shown.map((q) => ({ ...q })))).toBe(true);
    expect(sameList(shown, [shown[1], shown[0], shown[2]])).toBe(false);
  });
});

describe('question validation before sending', () => {
  it('asks for two words', () => {
    expect(questionProblem('', '')).toMatch(/Write a question/);
    expect(questionProblem('   why   ', '')).toMatch(/two words/);
    expect(questionProblem('why though', '')).toBeNull();
  });

  it('enforces the length limits', () => {
    expect(questionProblem(`a ${'b'.repeat(498)}`, '')).toBeNull();
    expect(questionProblem(`a ${'b'.repeat(499)}`, '')).toMatch(/1 characters over/);
    expect(questionProblem('why though', 'n'.repeat(51))).toMatch(/at most 50/);
  });

  it('refuses a body over 1 KiB even under 500 characters', () => {
    const emoji = '😀'.repeat(250);
    expect(questionProblem(`why ${emoji}`, '')).toMatch(/too long to send/);
  });
});

describe('timeAgo', () => {
  it('speaks in rough human units', () => {
    const now = 1_000_000_000;
    expect(timeAgo(now / 1000 - 5, now)).toBe('just now');
    expect(timeAgo(now / 1000 - 300, now)).toBe('5 min ago');
    expect(timeAgo(now / 1000 - 7200, now)).toBe('2 h ago');
    expect(timeAgo(now / 1000 - 86400 * 3, now)).toBe('3 days ago');
  });
});

describe('removals do not wait for a paused reader', () => {
  const shown = [entry(A, 5), entry(B, 3), entry(C, 1)];

  it('drops at once a question the guest list no longer holds (the host hid it)', () => {
    // B hidden (absent from a guest's list), C gained votes and moved up, D is new.
    const latest = [entry(C, 9), entry(A, 5), entry(D, 1)];
    const next = applyRemovals(shown, latest);
    // B is gone; the order, C's count and D wait for the reader.
    expect(next).toEqual([shown[0], shown[2]]);
    expect(countChanges(next, latest)).toBe(2);
  });

  it('marks hidden at once what a host list now marks hidden, leaving the rest as shown', () => {
    const latest = [entry(A, 6), entry(B, 3, { hidden: true }), entry(C, 1, { answered: 1_700_000_000 })];
    const next = applyRemovals(shown, latest);
    expect(next).toEqual([shown[0], { ...shown[1], hidden: true }, shown[2]]);
    expect(sectionQuestions(mergeQuestions(next, none), 'top').open.map((q) => q.qid)).toEqual([A, C]);
  });

  it('returns the shown list itself when nothing was removed (additions and reorders wait)', () => {
    const latest = [{ qid: D, votes: 1 }, ...shown.slice().reverse().map((q) => ({ ...q, votes: q.votes + 1 }))];
    expect(applyRemovals(shown, latest)).toBe(shown);
    expect(applyRemovals([], latest)).toEqual([]);
  });
});
