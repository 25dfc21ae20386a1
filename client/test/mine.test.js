import { describe, expect, it } from 'vitest';
import { LOCAL_WRITE_TRUST_MS, keptLocally, mergeMine, readMine, reconnected, refreshMine } from '../src/lib/mine.js';
import * as lists from '../src/lib/listview.js';
import { mergeQuestions } from '../src/lib/questions.js';

/** Three questions' ids (ULIDs, as the server makes them). */
const [A, B, C] = ['01HZZZ0000AAAAAAAAAAAAAAAA', '01HZZZ0001BBBBBBBBBBBBBBBB', '01HZZZ0002CCCCCCCCCCCCCCCC'];

const T = 1_000_000;
const list = [
  { qid: A, votes: 3, hidden: false },
  { qid: B, votes: 2, hidden: false },
  { qid: C, votes: 1, hidden: false },
];

/** A guest's page showing `list`, with `voted` and `asked` as storage remembered them. */
function page({ voted = [], asked = [] } = {}) {
  return lists.applyList(lists.initialListView({ voted: new Set(voted), asked: new Set(asked) }), list, T);
}

function answer({ voted = [], asked = [] } = {}) {
  return { voted: new Set(voted), asked: new Set(asked) };
}

/** What the page shows for `qid`: `{ votes, voted }`. */
function shown(view, qid) {
  const q = mergeQuestions(view.serverList, view).find((item) => item.qid === qid);
  return { votes: q.votes, voted: q.voted };
}

describe('reading the server’s answer', () => {
  it('reads both lists into sets', () => {
    expect(readMine({ asked: [A], voted: [A, B] })).toEqual({ asked: new Set([A]), voted: new Set([A, B]) });
    expect(readMine({ asked: [], voted: [] })).toEqual({ asked: new Set(), voted: new Set() });
  });

  it('refuses anything else, and leaves out entries that are not ids', () => {
    for (const junk of [null, undefined, 'x', [], {}, { asked: [] }, { voted: [] }, { asked: 'A', voted: [] }]) {
      expect(readMine(junk)).toBeNull();
    }
    expect(readMine({ asked: [A, 7, null], voted: [{}] })).toEqual({ asked: new Set([A]), voted: new Set() });
  });
});

describe('merging the server’s answer with what the page holds', () => {
  it('server says voted, storage is empty: voted, with the server’s count', () => {
    const next = lists.receiveMine(page(), answer({ voted: [B] }), T);
    expect(next.voted).toEqual(new Set([B]));
    expect(shown(next, B)).toEqual({ votes: 2, voted: true });
  });

  it('a second tap on a vote the server restored withdraws it (down, one less)', () => {
    const next = lists.receiveMine(page(), answer({ voted: [B] }), T);
    const begun = lists.beginVote(next, B, 2, T + 1);
    expect(begun.vote.up).toBe(false);
    expect(shown(begun.view, B)).toEqual({ votes: 1, voted: false });
  });

  it('storage says voted, server says not: not voted', () => {
    const next = lists.receiveMine(page({ voted: [A, B] }), answer({ voted: [A] }), T);
    expect(next.voted).toEqual(new Set([A]));
    expect(shown(next, B)).toEqual({ votes: 2, voted: false });
  });

  it('storage says voted, server says not, but the vote is in flight: the click stands', () => {
    const begun = lists.beginVote(page(), B, 2, T);
    const next = lists.receiveMine(begun.view, answer(), T - 10);
    expect(next.voted.has(B)).toBe(true);
    expect(shown(next, B)).toEqual({ votes: 3, voted: true });
  });

  it('a withdrawal in flight is not undone by an answer that still lists the vote', () => {
    const begun = lists.beginVote(page({ voted: [B] }), B, 2, T);
    const next = lists.receiveMine(begun.view, answer({ voted: [B] }), T - 10);
    expect(next.voted.has(B)).toBe(false);
    expect(shown(next, B)).toEqual({ votes: 1, voted: false });
  });

  it('a vote acknowledged after the request went out, or just before it, stands; an old one does not', () => {
    const begun = lists.beginVote(page(), B, 2, T);
    const done = lists.endVote(begun.view, begun.vote, true, T + 50);
    expect(lists.receiveMine(done, answer(), T).voted.has(B)).toBe(true);
    expect(lists.receiveMine(done, answer(), T + 50 + LOCAL_WRITE_TRUST_MS - 1).voted.has(B)).toBe(true);
    expect(lists.receiveMine(done, answer(), T + 50 + LOCAL_WRITE_TRUST_MS).voted.has(B)).toBe(false);
  });

  it('a failed vote is not a write of this page: the server’s answer holds', () => {
    const begun = lists.beginVote(page({ voted: [B] }), B, 2, T);
    const failed = lists.endVote(begun.view, begun.vote, false, T + 50);
    expect(failed.voted.has(B)).toBe(true);
    expect(lists.receiveMine(failed, answer(), T + 100).voted.has(B)).toBe(false);
  });

  it('asked badges are restored, and the asker’s vote with them', () => {
    const next = lists.receiveMine(page(), answer({ asked: [C], voted: [C] }), T);
    expect(next.asked).toEqual(new Set([C]));
    expect(shown(next, C)).toEqual({ votes: 1, voted: true });
  });

  it('a question asked by another voter (another cookie) loses its badge', () => {
    const next = lists.receiveMine(page({ asked: [A], voted: [A] }), answer(), T);
    expect(next.asked).toEqual(new Set());
    expect(next.voted).toEqual(new Set());
  });

  it('a question just asked on this page keeps its badge and vote before the server knows it', () => {
    const asked = lists.askedQuestion(page(), C, T + 10);
    const next = lists.receiveMine(asked, answer({ voted: [A] }), T);
    expect(next.asked).toEqual(new Set([C]));
    expect(next.voted).toEqual(new Set([A, C]));
  });

  it('an answer that changes nothing returns the same view', () => {
    const view = page({ voted: [A], asked: [A] });
    expect(lists.receiveMine(view, answer({ voted: [A], asked: [A] }), T)).toBe(view);
    const merged = mergeMine(view, answer({ voted: [A], asked: [] }), new Set());
    expect(merged.voted).toBe(view.voted);
    expect(merged.asked).not.toBe(view.asked);
  });

  it('keeps the busy questions and the fresh writes', () => {
    const wroteAt = new Map([
      [A, T - LOCAL_WRITE_TRUST_MS],
      [B, T - LOCAL_WRITE_TRUST_MS + 1],
    ]);
    expect(keptLocally({ busy: new Set([C]), wroteAt }, T)).toEqual(new Set([B, C]));
  });
});

describe('asking the server', () => {
  it('applies the answer with the time the request went out', async () => {
    const calls = [];
    let clock = T;
    const applied = await refreshMine({
      fetchMine: async () => {
        clock += 500;
        return { asked: [A], voted: [A] };
      },
      now: () => clock,
      apply: (mine, sentMs) => calls.push({ mine, sentMs }),
    });
    expect(applied).toBe(true);
    expect(calls).toEqual([{ mine: { asked: new Set([A]), voted: new Set([A]) }, sentMs: T }]);
  });

  it('a failed request leaves the cached state: nothing applied, no error', async () => {
    const view = page({ voted: [B], asked: [B] });
    let current = view;
    const apply = (mine, sentMs) => (current = lists.receiveMine(current, mine, sentMs));
    const failing = () => Promise.reject(new Error('Could not reach the server.'));
    await expect(refreshMine({ fetchMine: failing, now: () => T, apply })).resolves.toBe(false);
    const throwing = () => {
      throw new Error('synchronously');
    };
    await expect(refreshMine({ fetchMine: throwing, now: () => T, apply })).resolves.toBe(false);
    await expect(refreshMine({ fetchMine: async () => '<html>', now: () => T, apply })).resolves.toBe(false);
    expect(current).toBe(view);
    expect(shown(current, B)).toEqual({ votes: 2, voted: true });
  });

  it('does not hold the page up: the request is out before anything is awaited, the caller goes on', async () => {
    let answer;
    let asked = 0;
    const pending = refreshMine({
      fetchMine: () => {
        asked += 1;
        return new Promise((resolve) => (answer = resolve));
      },
      now: () => T,
      apply: () => {},
    });
    expect(asked).toBe(1);
    answer({ asked: [], voted: [] });
    await expect(pending).resolves.toBe(true);
  });
});

describe('when to ask again', () => {
  it('after an outage ends, not on the first connection or while it lasts', () => {
    expect(reconnected('reconnecting', 'live')).toBe(true);
    expect(reconnected('reconnecting', 'polling')).toBe(true);
    expect(reconnected('connecting', 'live')).toBe(false);
    expect(reconnected('live', 'reconnecting')).toBe(false);
    expect(reconnected('reconnecting', 'reconnecting')).toBe(false);
  });
});
