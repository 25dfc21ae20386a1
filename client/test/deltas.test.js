import { describe, expect, it } from 'vitest';
import { DeltaMismatch, applyDelta, isGap, readDelta, readList } from '../src/lib/deltas.js';

const q = (qid, votes, extra = {}) => ({ qid, votes, hidden: false, ...extra });
const ids = (list) => list.map((item) => item.qid);

/** Deep-frozen copies, so that a function changing its input throws. */
function frozen(value) {
  if (value !== null && typeof value === 'object') {
    Object.values(value).forEach(frozen);
    Object.freeze(value);
  }
  return value;
}

describe('applyDelta', () => {
  it('applies the design’s example: a count set and the question moved first', () => {
    const A = '01JAAAAAAAAAAAAAAAAAAAAAAA';
    const B = '01JBBBBBBBBBBBBBBBBBBBBBBB';
    const C = '01JCCCCCCCCCCCCCCCCCCCCCCC';
    const list = [q(A, 5), q(B, 4), q(C, 3)];
    const delta = readDelta(JSON.parse(`{"seq":8,"base":7,"set":[{"qid":"${C}","votes":6}],"mv":[["${C}",0]]}`));
    // `hidden` is sent only when true: read back as false.
    expect(applyDelta(list, delta)).toEqual([q(C, 6), q(A, 5), q(B, 4)]);
  });

  it('removes with del alone', () => {
    expect(applyDelta([q('a', 3), q('b', 2), q('c', 1)], { seq: 2, del: ['b'] })).toEqual([q('a', 3), q('c', 1)]);
    expect(applyDelta([q('a', 3), q('b', 2)], { seq: 2, del: ['a', 'b'] })).toEqual([]);
  });

  it('replaces an item in place with set alone, whole (a key it lacks is gone)', () => {
    const list = [q('a', 3, { answered: 1700000000 }), q('b', 2)];
    expect(applyDelta(list, { seq: 2, set: [q('a', 4)] })).toEqual([q('a', 4), q('b', 2)]);
    expect(applyDelta(list, { seq: 2, set: [q('b', 2, { hidden: true })] })).toEqual([list[0], q('b', 2, { hidden: true })]);
  });

  it('appends a new question with set alone', () => {
    expect(applyDelta([q('a', 3)], { seq: 2, set: [q('b', 0), q('c', 0)] })).toEqual([q('a', 3), q('b', 0), q('c', 0)]);
    expect(applyDelta([], { seq: 2, set: [q('a', 1)] })).toEqual([q('a', 1)]);
  });

  it('moves with mv alone: each moved question ends at its index', () => {
    const list = [q('a', 3), q('b', 2), q('c', 1), q('d', 0)];
    expect(ids(applyDelta(list, { seq: 2, mv: [['d', 0]] }))).toEqual(['d', 'a', 'b', 'c']);
    expect(ids(applyDelta(list, { seq: 2, mv: [['a', 2]] }))).toEqual(['b', 'c', 'a', 'd']);
    expect(ids(applyDelta(list, { seq: 2, mv: [['a', 3]] }))).toEqual(['b', 'c', 'd', 'a']);
    // All moved questions leave first, then go in lowest index first, whatever the order sent.
    expect(ids(applyDelta(list, { seq: 2, mv: [['d', 0], ['c', 1]] }))).toEqual(['d', 'c', 'a', 'b']);
    expect(ids(applyDelta(list, { seq: 2, mv: [['c', 1], ['d', 0]] }))).toEqual(['d', 'c', 'a', 'b']);
    // A move to where it already is changes nothing.
    expect(ids(applyDelta(list, { seq: 2, mv: [['b', 1]] }))).toEqual(['a', 'b', 'c', 'd']);
  });

  it('an empty delta keeps the list', () => {
    const list = [q('a', 1)];
    expect(applyDelta(list, { seq: 2, del: [], set: [], mv: [] })).toEqual(list);
    expect(applyDelta(list, readDelta({ seq: 2, base: 1 }))).toEqual(list);
  });

  it('combines del, then set, then mv', () => {
    const list = [q('a', 5), q('b', 4), q('c', 3), q('d', 2)];
    const delta = {
      seq: 9,
      del: ['b'],
      set: [q('d', 6), q('e', 0)],
      mv: [['d', 0], ['e', 1]],
    };
    expect(applyDelta(list, delta)).toEqual([q('d', 6), q('e', 0), q('a', 5), q('c', 3)]);
  });

  it('appends a new question, then moves it into its place', () => {
    const list = [q('a', 5), q('b', 4), q('c', 1)];
    const delta = { seq: 3, set: [q('n', 2)], mv: [['n', 2]] };
    expect(applyDelta(list, delta)).toEqual([q('a', 5), q('b', 4), q('n', 2), q('c', 1)]);
    expect(ids(applyDelta(list, { seq: 3, set: [q('n', 9)], mv: [['n', 0]] }))).toEqual(['n', 'a', 'b', 'c']);
  });

  it('a question that left and came back in the same delta is set again, at the end unless moved', () => {
    const list = [q('a', 5), q('b', 4)];
    expect(applyDelta(list, { seq: 2, del: ['a'], set: [q('a', 1)] })).toEqual([q('b', 4), q('a', 1)]);
  });

  it('changes neither the list nor the delta it is given', () => {
    const list = frozen([q('a', 5), q('b', 4), q('c', 3)]);
    const delta = frozen({ seq: 2, del: ['c'], set: [q('b', 7), q('d', 0)], mv: [['b', 0], ['d', 2]] });
    const before = JSON.stringify(list);
    const result = applyDelta(list, delta);
    expect(ids(result)).toEqual(['b', 'a', 'd']);
    expect(JSON.stringify(list)).toBe(before);
    expect(result).not.toBe(list);
  });

  it('refuses a delta that names questions the list does not hold', () => {
    const list = [q('a', 2), q('b', 1)];
    expect(() => applyDelta(list, { seq: 2, del: ['x'] })).toThrow(DeltaMismatch);
    expect(() => applyDelta(list, { seq: 2, mv: [['x', 0]] })).toThrow(DeltaMismatch);
    expect(() => applyDelta(list, { seq: 2, mv: [['a', 5]] })).toThrow(/past the list's end/);
    // Removed first, so a later move of it no longer fits.
    expect(() => applyDelta(list, { seq: 2, del: ['a'], mv: [['a', 0]] })).toThrow(DeltaMismatch);
  });
});

describe('isGap', () => {
  it('accepts only a delta from the version held, however far it reaches', () => {
    expect(isGap(7, { seq: 8, base: 7 })).toBe(false);
    expect(isGap(7, { seq: 12, base: 7 })).toBe(false); // several versions merged in one
    expect(isGap(7, { seq: 9, base: 8 })).toBe(true); // one missed
    expect(isGap(7, { seq: 20, base: 19 })).toBe(true);
  });

  it('treats a delta from the past (reordered or repeated) as a gap', () => {
    expect(isGap(7, { seq: 7, base: 6 })).toBe(true);
    expect(isGap(7, { seq: 6, base: 5 })).toBe(true);
    expect(isGap(7, { seq: 1, base: 0 })).toBe(true);
  });

  it('treats a delta before any list as a gap', () => {
    expect(isGap(null, { seq: 1, base: 0 })).toBe(true);
  });
});

describe('reading the messages', () => {
  it('reads a list', () => {
    expect(readList({ seq: 7, list: [q('a', 1)] })).toEqual({ seq: 7, list: [q('a', 1)] });
    expect(readList({ seq: 0, list: [] })).toEqual({ seq: 0, list: [] });
  });

  it('refuses what is not a list message', () => {
    const bad = [
      null,
      [],
      'x',
      { list: [] },
      { seq: -1, list: [] },
      { seq: 1.5, list: [] },
      { seq: '7', list: [] },
      { seq: 1 },
      { seq: 1, list: [{ votes: 1 }] },
      { seq: 1, list: [null] },
    ];
    for (const payload of bad) expect(readList(payload), JSON.stringify(payload)).toBeNull();
  });

  it('reads a delta, absent keys as empty and hidden as false unless true', () => {
    expect(readDelta({ seq: 8, base: 7 })).toEqual({ seq: 8, base: 7, del: [], set: [], mv: [] });
    expect(readDelta({ seq: 8, base: 5, del: ['a'], set: [{ qid: 'd', votes: 1 }, { qid: 'e', votes: 0, hidden: true }], mv: [['b', 0], ['c', 1]] })).toEqual({
      seq: 8,
      base: 5,
      del: ['a'],
      set: [q('d', 1), q('e', 0, { hidden: true })],
      mv: [['b', 0], ['c', 1]],
    });
  });

  it('refuses what is not a delta message', () => {
    const bad = [
      null,
      { set: [] },
      { seq: 'x', base: 1 },
      { seq: 2 },
      { seq: 2, base: 2 },
      { seq: 2, base: 3 },
      { seq: 2, base: -1 },
      { seq: 2, base: 1, del: 'a' },
      { seq: 2, base: 1, del: [1] },
      { seq: 2, base: 1, set: [{ votes: 1 }] },
      { seq: 2, base: 1, set: {} },
      { seq: 2, base: 1, mv: [['a']] },
      { seq: 2, base: 1, mv: [['a', null]] },
      { seq: 2, base: 1, mv: [['a', 'b']] },
      { seq: 2, base: 1, mv: [['a', -1]] },
      { seq: 2, base: 1, mv: [['a', 1.5]] },
      { seq: 2, base: 1, mv: [[null, 1]] },
      { seq: 2, base: 1, mv: 'a' },
    ];
    for (const payload of bad) expect(readDelta(payload), JSON.stringify(payload)).toBeNull();
  });
});

/** A small seeded generator (mulberry32), so a failing case can be run again. */
function random(seed) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A list of distinct ids from a small pool (so two lists share many), in random order, with random fields. */
function randomList(next) {
  const pool = Array.from({ length: 12 }, (_, i) => `q${i}`);
  const length = Math.floor(next() * (pool.length + 1));
  for (let i = pool.length - 1; i > 0; i -= 1) {
    const j = Math.floor(next() * (i + 1));
    [pool[i], pool[j]] = [pool[j], pool[i]];
  }
  return pool.slice(0, length).map((qid) => {
    const item = { qid, votes: Math.floor(next() * 4), hidden: next() < 0.2 };
    if (next() < 0.2) item.answered = 1700000000 + Math.floor(next() * 3);
    return item;
  });
}

/**
 * The reference diff (written apart from the code under test): every question that left is
 * deleted, every new or changed one set whole, and every question not already at its new
 * index once those are applied is moved to it (not the fewest moves, but a valid delta: the
 * questions left in place keep their order).
 */
function referenceDiff(before, after, seq) {
  const afterIds = new Set(ids(after));
  const beforeById = new Map(before.map((item) => [item.qid, item]));
  const del = ids(before).filter((qid) => !afterIds.has(qid));
  const set = after
    .filter((item) => JSON.stringify(beforeById.get(item.qid)) !== JSON.stringify(item))
    .map(({ hidden, ...rest }) => (hidden ? { ...rest, hidden } : rest));
  const order = [...ids(before).filter((qid) => afterIds.has(qid)), ...ids(after).filter((qid) => !beforeById.has(qid))];
  const mv = after.flatMap((item, index) => (order[index] === item.qid ? [] : [[item.qid, index]]));
  const delta = { seq, base: seq - 1 };
  if (del.length) delta.del = del;
  if (set.length) delta.set = set;
  if (mv.length) delta.mv = mv;
  return delta;
}

describe('applyDelta against a reference diff', () => {
  it('turns a random list A into a random list B (seeded, 2,000 pairs)', () => {
    const next = random(20261130);
    let moves = 0;
    for (let round = 0; round < 2_000; round += 1) {
      const a = frozen(randomList(next));
      const b = randomList(next);
      const delta = frozen(JSON.parse(JSON.stringify(referenceDiff(a, b, round + 1))));
      const read = readDelta(delta);
      expect(read, `round ${round}: the reference diff reads as a delta`).not.toBeNull();
      moves += read.mv.length;
      expect(applyDelta(a, read), `round ${round}: ${JSON.stringify({ a, delta })}`).toEqual(b);
    }
    // The pairs exercised moves, not only deletions and appends.
    expect(moves).toBeGreaterThan(2_000);
  });
});
