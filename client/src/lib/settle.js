// A list that holds still under the finger. A vote, or a host's Hide / Answered click,
// changes the list the reader is pointing at: the server ranks the question anew within
// ~150 ms, and a quick second tap would land on another question. So the open list's order
// is held from such a click until the reader's activity on the list settles: counts and
// states change in place, and a question the click took out of the open list (answered,
// hidden) stays in its place, showing its new state; after SETTLE_MS without pointer or
// keyboard activity on the list the order the server sent is applied. A question that left
// the list altogether (hidden, on a guest's page) goes at once; one that joins the open list
// meanwhile is shown at its end. The answered and hidden sections below are shown as they
// are (the hold is for the open list, where the reader votes and moderates).
// Time is an argument: every rule here is unit-tested, the page only keeps the value and
// a timer.

/** How long the list must be left alone after the last activity before it reorders. */
export const SETTLE_MS = 1_000;
/** However busy the reader, the order the server sent is applied this long after the hold began. */
export const HOLD_MS_MAX = 10_000;

/**
 * The reader clicked something in the list that will move it. `shownOpen` is the open
 * list as shown (the qids, top first). Starts a hold of that order, or, while one holds,
 * keeps it and counts the click as activity. `hold` is null or what this returned before.
 */
export function holdOrder(hold, shownOpen, nowMs) {
  if (hold !== null && !isSettled(hold, nowMs)) return touch(hold, nowMs);
  return { open: shownOpen.slice(), sinceMs: nowMs, lastMs: nowMs };
}

/** Pointer or keyboard activity on the list: an active hold lasts longer; none starts. */
export function touch(hold, nowMs) {
  if (hold === null || isSettled(hold, nowMs)) return null;
  return { ...hold, lastMs: nowMs };
}

/** Milliseconds until the hold settles (0 or less: settled). */
export function settleDelay(hold, nowMs) {
  return Math.min(hold.lastMs + SETTLE_MS, hold.sinceMs + HOLD_MS_MAX) - nowMs;
}

export function isSettled(hold, nowMs) {
  return settleDelay(hold, nowMs) <= 0;
}

/** The clock ticked: null once the hold settled, else the same hold. */
export function release(hold, nowMs) {
  return hold === null || isSettled(hold, nowMs) ? null : hold;
}

/**
 * The sections to show: `sections` as sectionQuestions made them from the latest list,
 * laid out by the held open order `heldOpen` (qids; null when nothing holds). Every entry
 * is the latest one (its count, answered and hidden state); only places wait.
 */
export function arrange(sections, heldOpen) {
  if (heldOpen === null) return sections;
  const latest = new Map();
  for (const q of [...sections.open, ...sections.answered, ...sections.hidden]) latest.set(q.qid, q);
  const held = new Set(heldOpen);
  const open = heldOpen.filter((qid) => latest.has(qid)).map((qid) => latest.get(qid));
  const others = (list) => list.filter((q) => !held.has(q.qid));
  return {
    open: [...open, ...others(sections.open)],
    answered: others(sections.answered),
    hidden: others(sections.hidden),
  };
}
