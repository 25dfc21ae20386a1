import { describe, expect, it } from 'vitest';
import { listedApproved, markWaiting, ownWaiting, reviewItems } from '../src/lib/review.js';
import { mergeQuestions } from '../src/lib/questions.js';

const A = '01HZZZ0000AAAAAAAAAAAAAAAA';
const B = '01HZZZ0001BBBBBBBBBBBBBBBB';
const C = '01HZZZ0002CCCCCCCCCCCCCCCC';
const state = { voted: new Set(), pending: new Map(), busy: new Set() };

describe('questions waiting for review', () => {
  it('knows a question is no longer waiting once the list shows it approved', () => {
    const list = [{ qid: A, votes: 1 }, { qid: B, votes: 1, pending: true }, { qid: C, votes: 0, approved: false }];
    expect([A, B, C].map((q) => listedApproved(list, q))).toEqual([true, false, false]);
    expect([...ownWaiting(list, new Set([A, B]), new Set([C, 'D']))]).toEqual([B, C, 'D']);
  });

  it('shows a guest their own waiting questions, listed or not, oldest first, and none of them in the list', () => {
    // The page's own placeholder for a question just asked (B), and the server's word on C.
    const merged = markWaiting(mergeQuestions([{ qid: A, votes: 2 }, { qid: B, votes: 1 }], state), new Set([B, C]));
    expect(merged.map((q) => [q.qid, q.approved])).toEqual([
      [A, true],
      [B, false],
    ]);
    expect(reviewItems(merged, new Set([C, B]), false).map((q) => q.qid)).toEqual([B, C]);
  });

  it('gives the host the queue from the host list only', () => {
    const merged = mergeQuestions([{ qid: C, votes: 0, approved: false }, { qid: A, votes: 3 }], state);
    expect(reviewItems(merged, new Set([B]), true).map((q) => q.qid)).toEqual([C]);
    expect(markWaiting(merged, new Set())).toBe(merged);
  });
});
