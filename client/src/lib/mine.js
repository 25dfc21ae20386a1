// A guest's own questions and votes as the server knows them by the voter cookie
// (`GET /api/event/{eid}/mine`), and how that answer meets what the page holds. The
// server's answer is the truth; what this browser remembered (storage.js) is only a cache
// that draws the buttons and badges before the answer arrives. One exception: the page's
// own fresh writes. A vote whose request is still in flight, and a vote or question the
// server acknowledged shortly before the request was sent (or after), keep the page's
// state: the answer may not know them yet (the server folds a write into it a moment after
// acknowledging it). Pure: the request and the clock are the caller's.

import { PENDING_VOTE_MS_MAX } from './questions.js';

/**
 * How long before the request was sent a write this page made still wins over the answer:
 * as long as the page trusts its own vote over the server's count.
 */
export const LOCAL_WRITE_TRUST_MS = PENDING_VOTE_MS_MAX;

/**
 * Reads the server's answer `{"asked":[qid…],"voted":[qid…]}` into `{ asked, voted }` sets;
 * null when it is not of that shape (non-string entries are left out).
 */
export function readMine(body) {
  if (body === null || typeof body !== 'object' || !Array.isArray(body.asked) || !Array.isArray(body.voted)) {
    return null;
  }
  const ids = (list) => new Set(list.filter((qid) => typeof qid === 'string'));
  return { asked: ids(body.asked), voted: ids(body.voted) };
}

/**
 * The questions whose state the page keeps over an answer to a request sent at `sentMs`:
 * `busy` (qids with a vote request in flight), and those whose last successful write on
 * this page (`wroteAt`: qid → ms) came later than `sentMs - LOCAL_WRITE_TRUST_MS`.
 */
export function keptLocally({ busy, wroteAt }, sentMs) {
  const keep = new Set(busy);
  for (const [qid, ms] of wroteAt) {
    if (ms > sentMs - LOCAL_WRITE_TRUST_MS) keep.add(qid);
  }
  return keep;
}

function sameSet(a, b) {
  return a.size === b.size && [...a].every((x) => b.has(x));
}

function mergeSet(local, server, keep) {
  const next = new Set([...server].filter((qid) => !keep.has(qid)));
  for (const qid of keep) if (local.has(qid)) next.add(qid);
  return sameSet(next, local) ? local : next;
}

/**
 * The page's `{ voted, asked }` after the server's answer `mine` (as readMine gives it):
 * the server's sets, except that each qid in `keep` keeps its local state. A set that does
 * not change is returned as it was given (the same object).
 */
export function mergeMine(local, mine, keep) {
  return { voted: mergeSet(local.voted, mine.voted, keep), asked: mergeSet(local.asked, mine.asked, keep) };
}

/**
 * Asks the server (`fetchMine()`, resolving to the raw answer) and hands what it read to
 * `apply(mine, sentMs)`, `sentMs` being `now()` when the request went out. A failed request
 * or an unreadable answer changes nothing, the cached state stays, and is no error: the
 * page never waits for this. Resolves to whether an answer was applied.
 */
export async function refreshMine({ fetchMine, now, apply }) {
  const sentMs = now();
  let mine;
  try {
    mine = readMine(await fetchMine());
  } catch {
    return false;
  }
  if (mine === null) return false;
  apply(mine, sentMs);
  return true;
}

/**
 * Whether a change of the live connection's state (`before` → `after`, see live.js) ends
 * an outage, after which the guest's own part is asked for again (writes may have been
 * made, or lost, meanwhile).
 */
export function reconnected(before, after) {
  return before === 'reconnecting' && (after === 'live' || after === 'polling');
}
