// The event page's list state as one plain value and the transitions between its states:
// what the server last sent and, while updates are paused, the newest list waiting; the
// pause (by hand, or by scrolling down the list); this browser's votes, their optimistic
// counts and the requests in flight; the questions it just asked; the moderation toggles
// in flight. Every function takes the state and returns the next one (the input is never
// modified); time and scroll position are passed in, so every rule here is unit-tested.
// The page holds one such value and stores what these return.

import { keptLocally, mergeMine } from './mine.js';
import { applyRemovals, countChanges, recordVote, settlePending } from './questions.js';

/** Scrolling further than this down the page pauses updates (when the reader scrolled). */
export const AUTO_PAUSE_SCROLL_PX = 240;
/** A scroll this soon after wheel, touch, key or pointer input counts as the reader's. */
export const USER_SCROLL_WINDOW_MS = 1_000;
/** How long a just-asked question is shown before the server's list has it. */
export const LOCAL_ASKED_MS_MAX = 15_000;

/**
 * The state before the first list: `voted` and `asked` are the sets of qids this browser
 * voted on and asked (as remembered in storage, until the server's answer replaces them:
 * see receiveMine). `wroteAt` maps a qid to when this page's last write on it (a vote or
 * the question itself) succeeded.
 */
export function initialListView({ voted, asked }) {
  return {
    serverList: [],
    waitingList: null,
    pausedByUser: false,
    pausedByScroll: false,
    voted,
    asked,
    pending: new Map(),
    busy: new Set(),
    toggling: new Set(),
    localAsked: new Map(),
    wroteAt: new Map(),
  };
}

export function isPaused(view) {
  return view.pausedByUser || view.pausedByScroll;
}

/** The server's list plus the questions this browser just asked that it does not hold yet. */
export function visibleList(view) {
  const { serverList, localAsked } = view;
  const missing = [...localAsked.keys()].filter((qid) => !serverList.some((q) => q.qid === qid));
  if (missing.length === 0) return serverList;
  return [...serverList, ...missing.map((qid) => ({ qid, votes: 1, hidden: false }))];
}

/** How many questions differ between the list shown and the one waiting (0 when none waits). */
export function waitingChanges(view) {
  return view.waitingList ? countChanges(view.serverList, view.waitingList) : 0;
}

/** Shows `list` now: nothing waits any more, settled votes and arrived questions drop out. */
export function applyList(view, list, nowMs) {
  let { localAsked } = view;
  if (localAsked.size > 0) {
    const next = new Map([...localAsked].filter(([qid]) => !list.some((q) => q.qid === qid)));
    if (next.size !== localAsked.size) localAsked = next;
  }
  return {
    ...view,
    serverList: list,
    waitingList: null,
    pending: settlePending(view.pending, list, nowMs),
    localAsked,
  };
}

/**
 * A list arrived from the server. Unpaused, it is shown; paused, it waits, except that a
 * hidden (or otherwise gone) question leaves the screen at once.
 */
export function receiveList(view, list, nowMs) {
  if (!isPaused(view)) return applyList(view, list, nowMs);
  return { ...view, waitingList: list, serverList: applyRemovals(view.serverList, list) };
}

/** The reader paused the updates by hand. */
export function pause(view) {
  return { ...view, pausedByUser: true };
}

/** Ends either pause and shows the list that waited, if any. */
export function resume(view, nowMs) {
  const next = { ...view, pausedByUser: false, pausedByScroll: false };
  return next.waitingList ? applyList(next, next.waitingList, nowMs) : next;
}

/**
 * The page scrolled to `scrollY`. Far enough down, and soon enough after the reader's own
 * input (`lastUserInputMs`), it pauses; back near the top it ends a pause the scrolling
 * made, showing what waited unless the reader also paused by hand.
 */
export function scrolled(view, { scrollY, nowMs, lastUserInputMs }) {
  if (scrollY > AUTO_PAUSE_SCROLL_PX) {
    if (!view.pausedByScroll && nowMs - lastUserInputMs < USER_SCROLL_WINDOW_MS) {
      return { ...view, pausedByScroll: true };
    }
    return view;
  }
  if (!view.pausedByScroll) return view;
  const next = { ...view, pausedByScroll: false };
  return !next.pausedByUser && next.waitingList ? applyList(next, next.waitingList, nowMs) : next;
}

/**
 * The clock ticked: stale optimistic votes settle (not while paused: the shown list is old
 * on purpose, and settling against it would drop this browser's fresh votes from view),
 * and a just-asked question the server never listed stops being shown.
 */
export function tick(view, nowMs) {
  let { pending, localAsked } = view;
  if (pending.size > 0 && !isPaused(view)) pending = settlePending(pending, view.serverList, nowMs);
  if (localAsked.size > 0) {
    const next = new Map([...localAsked].filter(([, since]) => nowMs - since < LOCAL_ASKED_MS_MAX));
    if (next.size !== localAsked.size) localAsked = next;
  }
  if (pending === view.pending && localAsked === view.localAsked) return view;
  return { ...view, pending, localAsked };
}

/** Another tab changed what this browser remembers: `voted` and/or `asked`, as given. */
export function remembered(view, { voted, asked }) {
  if (voted === undefined && asked === undefined) return view;
  return { ...view, voted: voted ?? view.voted, asked: asked ?? view.asked };
}

/**
 * A click on a question's vote button (`serverVotes`: the count the server last sent for
 * it). Returns `null` while a vote on that question is in flight, else `{ view, vote }`:
 * the vote counted at once, and what `endVote` needs to settle or undo it.
 */
export function beginVote(view, qid, serverVotes, nowMs) {
  if (view.busy.has(qid)) return null;
  const up = !view.voted.has(qid);
  const vote = { qid, up, pendingBefore: view.pending.get(qid) };
  const voted = new Set(view.voted);
  if (up) voted.add(qid);
  else voted.delete(qid);
  return {
    vote,
    view: {
      ...view,
      busy: new Set(view.busy).add(qid),
      pending: recordVote(view.pending, qid, serverVotes, up, nowMs),
      voted,
    },
  };
}

/**
 * The vote's request ended at `nowMs`; a failed one is undone (the count and the button as
 * before), a successful one is remembered as this page's write.
 */
export function endVote(view, vote, succeeded, nowMs) {
  const busy = new Set(view.busy);
  busy.delete(vote.qid);
  if (succeeded) return { ...view, busy, wroteAt: new Map(view.wroteAt).set(vote.qid, nowMs) };
  const pending = new Map(view.pending);
  if (vote.pendingBefore) pending.set(vote.qid, vote.pendingBefore);
  else pending.delete(vote.qid);
  const voted = new Set(view.voted);
  if (vote.up) voted.delete(vote.qid);
  else voted.add(vote.qid);
  return { ...view, busy, pending, voted };
}

/** The key of a moderation toggle in flight (`what`: 'answered' or 'hidden'). */
export function toggleKey(qid, what) {
  return `${qid}:${what}`;
}

/** Marks a toggle in flight; returns `null` when that toggle is already in flight. */
export function beginToggle(view, qid, what) {
  const key = toggleKey(qid, what);
  if (view.toggling.has(key)) return null;
  return { ...view, toggling: new Set(view.toggling).add(key) };
}

export function endToggle(view, qid, what) {
  const toggling = new Set(view.toggling);
  toggling.delete(toggleKey(qid, what));
  return { ...view, toggling };
}

/**
 * What a moderation toggle changes in a list entry: the server's answer when it gave one
 * (`result`), else what was asked for (answered "now", in unix seconds, when marked).
 */
export function togglePatch(what, on, result, nowMs) {
  if (what === 'hidden') return { hidden: typeof result?.hidden === 'boolean' ? result.hidden : on };
  if (what === 'approved') return { approved: on };
  if (what === 'spotlight') return { spotlight: on };
  if (!on) return { answered: undefined };
  return { answered: typeof result?.answered === 'number' ? result.answered : Math.floor(nowMs / 1000) };
}

/** A toggle succeeded: the question shows its new state in the shown and the waiting list. */
export function patchQuestion(view, qid, patch) {
  const patchList = (list) => list.map((item) => (item.qid === qid ? { ...item, ...patch } : item));
  return {
    ...view,
    serverList: patchList(view.serverList),
    waitingList: view.waitingList ? patchList(view.waitingList) : null,
  };
}

/** This browser asked `qid`: it holds a vote on it, and shows it until the server lists it. */
export function askedQuestion(view, qid, nowMs) {
  return {
    ...view,
    voted: new Set(view.voted).add(qid),
    asked: new Set(view.asked).add(qid),
    localAsked: new Map(view.localAsked).set(qid, nowMs),
    wroteAt: new Map(view.wroteAt).set(qid, nowMs),
  };
}

/**
 * The server's answer about this guest (`{ asked, voted }` sets, see mine.js) to a request
 * sent at `sentMs`: it becomes what the page shows as theirs, except for a vote in flight
 * and this page's fresh writes (mine.js' keptLocally). The same view when nothing changed.
 */
export function receiveMine(view, mine, sentMs) {
  const { voted, asked } = mergeMine(view, mine, keptLocally(view, sentMs));
  if (voted === view.voted && asked === view.asked) return view;
  return { ...view, voted, asked };
}
