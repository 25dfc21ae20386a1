import { describe, expect, it } from 'vitest';
import { mergeQuestions, reviewQueue, sectionQuestions, topOpenQuestion } from '../src/lib/questions.js';
import { togglePatch } from '../src/lib/listview.js';
import { toggleAnnouncement } from '../src/lib/eventstatus.js';

// ULIDs whose time part orders them: A oldest … C newest.
const A = '01HZZZ0000AAAAAAAAAAAAAAAA';
const B = '01HZZZ0001BBBBBBBBBBBBBBBB';
const C = '01HZZZ0002CCCCCCCCCCCCCCCC';

const state = { voted: new Set(), pending: new Map(), busy: new Set() };

describe('the host tools in the list', () => {
  it('reads spotlight, approval and the written answer only when the server says so', () => {
    const [plain, lit, waiting, own] = mergeQuestions(
      [
        { qid: A, votes: 1, hidden: false },
        { qid: B, votes: 2, hidden: false, spotlight: true, reply: 'Soon.' },
        { qid: C, votes: 0, hidden: false, approved: false },
        { qid: 'D', votes: 1, hidden: false, pending: true },
      ],
      state,
    );
    expect([plain.spotlight, plain.approved, plain.reply]).toEqual([false, true, null]);
    expect([lit.spotlight, lit.reply]).toEqual([true, 'Soon.']);
    expect(waiting.approved).toBe(false);
    expect(own.approved).toBe(false, 'a guest’s own waiting question is not approved either');
  });

  it('keeps questions waiting for review out of the sections, in a queue by arrival', () => {
    const merged = mergeQuestions(
      [
        { qid: C, votes: 5, hidden: false, approved: false },
        { qid: B, votes: 1, hidden: false },
        { qid: A, votes: 0, hidden: false, approved: false },
        { qid: 'Z', votes: 0, hidden: true, approved: false },
      ],
      state,
    );
    const sections = sectionQuestions(merged, 'top');
    expect(sections.open.map((q) => q.qid)).toEqual([B]);
    expect(sections.hidden.map((q) => q.qid)).toEqual(['Z'], 'a hidden waiting question is hidden, not queued');
    expect(reviewQueue(merged).map((q) => q.qid)).toEqual([A, C], 'oldest first, whatever the votes');
    expect(topOpenQuestion(merged).qid).toBe(B);
  });

  it('patches and announces the new toggles', () => {
    expect(togglePatch('approved', true, { approved: true }, 0)).toEqual({ approved: true });
    expect(togglePatch('spotlight', false, {}, 0)).toEqual({ spotlight: false });
    expect(toggleAnnouncement('approved', true)).toMatch(/approved/);
    expect(toggleAnnouncement('spotlight', true)).toMatch(/spotlight/);
  });
});
