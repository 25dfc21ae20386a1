// Questions waiting for the host's review (design §7), as this page shows them: the host's
// "To review" queue comes straight from the host list (`"approved": false`); a guest's own
// waiting questions are known from the server's `mine` answer (`pending`) and, just after
// asking while the event pre-approves, from the page itself, until the guest list shows them.

import { reviewQueue } from './questions.js';

/** Whether the server's list shows `qid` as an approved question (so nothing waits for it). */
export function listedApproved(serverList, qid) {
  return serverList.some((q) => q.qid === qid && q.pending !== true && q.approved !== false);
}

/** The guest's own questions still waiting: those `pending` says, less those the list shows. */
export function ownWaiting(serverList, ...pending) {
  const waiting = new Set();
  for (const set of pending) for (const qid of set) if (!listedApproved(serverList, qid)) waiting.add(qid);
  return waiting;
}

/** The merged questions with the guest's own waiting ones marked not approved. */
export function markWaiting(merged, waiting) {
  if (waiting.size === 0) return merged;
  return merged.map((q) => (waiting.has(q.qid) ? { ...q, approved: false } : q));
}

/**
 * What the review block shows: the host's queue, or a guest's own waiting questions, those
 * the list no longer holds included (a question asked here stops being shown locally after
 * a while), oldest first.
 */
export function reviewItems(merged, waiting, isHost) {
  const queued = reviewQueue(merged);
  if (isHost) return queued;
  const known = new Set(merged.map((q) => q.qid));
  const others = [...waiting].filter((qid) => !known.has(qid)).map((qid) => ({ qid, approved: false, hidden: false }));
  return reviewQueue([...queued, ...others]);
}
