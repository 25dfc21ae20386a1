import { describe, expect, it } from 'vitest';
import { REVEAL_FOLLOW_MS, REVEAL_WAIT_MS_MAX, placeOf, revealStep, startReveal } from '../src/lib/reveal.js';

const A = '01HZZZ0000AAAAAAAAAAAAAAAA';
const B = '01HZZZ0001BBBBBBBBBBBBBBBB';
const MINE = '01HZZZ0009MMMMMMMMMMMMMMMM';

const T = 1_000_000;
/** The reader's last input: the click on "Send question", just before the answer came. */
const SENT = T - 50;

const sections = (open, answered = [], hidden = []) => ({
  open: open.map((qid) => ({ qid })),
  answered: answered.map((qid) => ({ qid })),
  hidden: hidden.map((qid) => ({ qid })),
});

describe('where a question is', () => {
  it('names the section and the index', () => {
    expect(placeOf(sections([A, B, MINE]), MINE)).toBe('open:2');
    expect(placeOf(sections([A], [MINE]), MINE)).toBe('answered:0');
    expect(placeOf(sections([A], [], [MINE]), MINE)).toBe('hidden:0');
    expect(placeOf(sections([A, B]), MINE)).toBeNull();
  });
});

describe('taking the asker to their question', () => {
  it('waits until the question is shown, then scrolls to it and marks it once', () => {
    let clock = T;
    let reveal = startReveal(MINE, clock);
    let step = revealStep(reveal, { place: null, nowMs: clock, lastUserInputMs: SENT });
    expect(step).toMatchObject({ scroll: false, first: false });
    reveal = step.reveal;
    expect(reveal).not.toBeNull();

    clock += 20;
    step = revealStep(reveal, { place: 'open:30', nowMs: clock, lastUserInputMs: SENT });
    expect(step).toMatchObject({ scroll: true, first: true });
    reveal = step.reveal;

    // Drawn again in the same place: nothing to do.
    clock += 100;
    step = revealStep(reveal, { place: 'open:30', nowMs: clock, lastUserInputMs: SENT });
    expect(step).toMatchObject({ scroll: false, first: false });
    expect(step.reveal).toBe(reveal);
  });

  it('follows the question when the server’s list places it elsewhere', () => {
    let reveal = revealStep(startReveal(MINE, T), { place: 'open:30', nowMs: T, lastUserInputMs: SENT }).reveal;
    const step = revealStep(reveal, { place: 'open:12', nowMs: T + 150, lastUserInputMs: SENT });
    expect(step).toMatchObject({ scroll: true, first: false });
    reveal = step.reveal;
    expect(revealStep(reveal, { place: 'open:12', nowMs: T + 300, lastUserInputMs: SENT }).scroll).toBe(false);
  });

  it('stops following once the reader does something', () => {
    const reveal = revealStep(startReveal(MINE, T), { place: 'open:30', nowMs: T, lastUserInputMs: SENT }).reveal;
    const step = revealStep(reveal, { place: 'open:12', nowMs: T + 500, lastUserInputMs: T + 400 });
    expect(step).toEqual({ reveal: null, scroll: false, first: false });
  });

  it('stops following REVEAL_FOLLOW_MS after the question was first shown', () => {
    const reveal = revealStep(startReveal(MINE, T), { place: 'open:30', nowMs: T, lastUserInputMs: SENT }).reveal;
    const late = { place: 'open:12', lastUserInputMs: SENT };
    expect(revealStep(reveal, { ...late, nowMs: T + REVEAL_FOLLOW_MS - 1 }).scroll).toBe(true);
    expect(revealStep(reveal, { ...late, nowMs: T + REVEAL_FOLLOW_MS })).toEqual({
      reveal: null,
      scroll: false,
      first: false,
    });
  });

  it('gives up on a question that is never shown', () => {
    const reveal = startReveal(MINE, T);
    expect(revealStep(reveal, { place: null, nowMs: T + REVEAL_WAIT_MS_MAX - 1, lastUserInputMs: SENT }).reveal).toBe(
      reveal,
    );
    expect(revealStep(reveal, { place: null, nowMs: T + REVEAL_WAIT_MS_MAX, lastUserInputMs: SENT }).reveal).toBeNull();
  });

  it('does nothing when nothing was asked', () => {
    expect(revealStep(null, { place: 'open:0', nowMs: T, lastUserInputMs: SENT })).toEqual({
      reveal: null,
      scroll: false,
      first: false,
    });
  });
});
