import { describe, expect, it } from 'vitest';
import {
  chartData,
  describeAudit,
  describeBurst,
  instantOf,
  isDarkColor,
  middleIndex,
  pngFileName,
  pointCount,
  seriesColors,
  shortLabel,
  topQuestions,
} from '../src/lib/insights.js';

const START = 1_700_000_000_000;
const timeline = {
  start: START,
  step: 10,
  questions: { QA: [0, 1, 1, 2], QB: [1, 3, 3, 3], QC: [0, 0, 0, 0], QD: [0, 2, 2, 2] },
  asked: [2, 1, 1, 0],
  new_voters: [2, 2, 0, 1],
};

describe('insights', () => {
  it('puts each point at the last millisecond of its step', () => {
    expect(pointCount(timeline)).toBe(4);
    expect(instantOf(timeline, 0)).toBe(START + 9_999);
    expect(instantOf(timeline, 3)).toBe(START + 39_999);
    // Out of range clamps to the ends; an empty timeline has no instants.
    expect(instantOf(timeline, 99)).toBe(START + 39_999);
    expect(instantOf(timeline, -1)).toBe(START + 9_999);
    expect(instantOf({ start: 0, step: 60, questions: {}, asked: [], new_voters: [] }, 0)).toBeNull();
    expect(middleIndex(timeline)).toBe(1);
    expect(middleIndex({ asked: [] })).toBe(0);
  });

  it('charts the questions with the most votes at the end, leaving out those never voted for', () => {
    expect(topQuestions(timeline)).toEqual(['QB', 'QD', 'QA']);
    expect(topQuestions(timeline, 2)).toEqual(['QB', 'QD']);
    // A tie at the end goes to the question that had more votes along the way.
    const tied = { ...timeline, questions: { QX: [0, 0, 2], QY: [2, 2, 2] } };
    expect(topQuestions(tied)).toEqual(['QY', 'QX']);
    const data = chartData(timeline, ['QB', 'QA']);
    expect(data[0]).toEqual([START / 1000 + 10, START / 1000 + 20, START / 1000 + 30, START / 1000 + 40]);
    expect(data.slice(1)).toEqual([
      [1, 3, 3, 3],
      [0, 1, 1, 2],
    ]);
    expect(chartData(timeline, ['QZ'])[1]).toEqual([0, 0, 0, 0]);
  });

  it('picks colours for the theme the page shows', () => {
    expect(isDarkColor('rgb(15, 17, 21)')).toBe(true);
    expect(isDarkColor('rgba(245, 246, 248, 1)')).toBe(false);
    expect(isDarkColor('not a colour')).toBe(false);
    const light = seriesColors(false, 8);
    const dark = seriesColors(true, 3);
    expect(light).toHaveLength(8);
    expect(light[6]).toBe(light[0]);
    expect(dark[0]).not.toBe(light[0]);
  });

  it('says what each audit record did, also of kinds it does not know', () => {
    expect(describeAudit({ at: 1, kind: 'hidden', question: 'Q', on: true })).toBe('Hidden');
    expect(describeAudit({ at: 1, kind: 'hidden', question: 'Q', on: false })).toBe('Shown again');
    expect(describeAudit({ at: 1, kind: 'answered', question: 'Q', on: false })).toBe('Marked not answered');
    expect(describeAudit({ at: 1, kind: 'approved', question: 'Q', on: false })).toBe('Sent to review');
    expect(describeAudit({ at: 1, kind: 'spotlight', question: 'Q', on: true })).toBe('Put in the spotlight');
    expect(describeAudit({ at: 1, kind: 'reply', question: 'Q', text: 'Next week' })).toBe(
      'Answered in writing: “Next week”',
    );
    expect(describeAudit({ at: 1, kind: 'reply', question: 'Q', text: '' })).toBe('Written answer removed');
    expect(describeAudit({ at: 1, kind: 'title', title: 'All hands' })).toBe('Title set to “All hands”');
    expect(describeAudit({ at: 1, kind: 'moderation', moderation: 'pre-approve' })).toBe(
      'New questions wait for review',
    );
    expect(describeAudit({ at: 1, kind: 'asking', asking: 'closed' })).toBe('Questions closed');
    expect(describeAudit({ at: 1, kind: 'blocked_words', words: ['spam', 'ads'] })).toBe('Blocked words: spam, ads');
    expect(describeAudit({ at: 1, kind: 'cohost_revoked' })).toBe('Co-host link revoked');
    // A kind this client does not know yet: its name and fields.
    expect(describeAudit({ at: 1, kind: 'pinned_note', question: 'Q', note: 'hi' })).toBe('Pinned note (note: hi)');
    expect(describeAudit({ at: 1, kind: 'toString' })).toBe('ToString');
  });

  it('words bursts and labels', () => {
    expect(describeBurst({ start: 0, end: 6_400, new_voters: 12, share: 0.923, votes: 13 })).toBe(
      '12 new voters in 6 s, 92% of its 13 votes',
    );
    expect(shortLabel('  a   short\nquestion ')).toBe('a short question');
    expect(shortLabel('x'.repeat(50), 10)).toBe(`${'x'.repeat(9)}…`);
    expect(shortLabel(undefined)).toBe('Question');
    expect(pngFileName('01ABC')).toBe('votes-over-time-01ABC.png');
  });
});
