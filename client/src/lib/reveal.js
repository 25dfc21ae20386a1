// Taking a guest to the question they just asked. In a long list a new question is placed
// far down (by its one vote), while the page stays where the ask button was. So once the
// question is on the list, the page scrolls it into view and marks it for a moment; while
// its place still changes (this browser shows it at the list's end until the server's list
// places it), the page follows it, until the reader does something or REVEAL_FOLLOW_MS
// passed. Time is an argument; the page scrolls, this says when.

/** How long to wait for the asked question to be shown before giving up. */
export const REVEAL_WAIT_MS_MAX = 15_000;
/** How long after it was first shown the page still follows the question when it moves. */
export const REVEAL_FOLLOW_MS = 3_000;
/** How long the question stays marked once shown. */
export const HIGHLIGHT_MS = 3_000;

/** This browser asked `qid`: reveal it once it is shown. */
export function startReveal(qid, nowMs) {
  return { qid, askedMs: nowMs, shownMs: null, place: null };
}

/** Where `qid` is in the sections shown ('open:3': the open list's fourth), or null. */
export function placeOf(sections, qid) {
  for (const name of ['open', 'answered', 'hidden']) {
    const index = sections[name].findIndex((q) => q.qid === qid);
    if (index >= 0) return `${name}:${index}`;
  }
  return null;
}

/**
 * The list was drawn with the question at `place` (null: not shown). Returns the next
 * reveal state (null: done) and whether to scroll to the question now (`scroll`), the first
 * time with the mark and the announcement (`first`). `lastUserInputMs`: the reader's
 * latest input; any after the question was first shown ends the following.
 */
export function revealStep(reveal, { place, nowMs, lastUserInputMs }) {
  const none = { reveal: null, scroll: false, first: false };
  if (reveal === null) return none;
  if (reveal.shownMs === null) {
    if (place === null) return nowMs - reveal.askedMs < REVEAL_WAIT_MS_MAX ? { ...none, reveal } : none;
    return { reveal: { ...reveal, shownMs: nowMs, place }, scroll: true, first: true };
  }
  if (place === null || lastUserInputMs > reveal.shownMs || nowMs - reveal.shownMs >= REVEAL_FOLLOW_MS) return none;
  if (place === reveal.place) return { ...none, reveal };
  return { reveal: { ...reveal, place }, scroll: true, first: false };
}
