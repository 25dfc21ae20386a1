// The question list's pure logic: merging what the server last said with what this
// browser did locally (its own votes, still in flight or not yet folded by the
// aggregator), ordering for display, counting what changed while updates were paused, and
// the removals that do not wait for a paused reader.
// No DOM, no fetch, no clock: time is passed in, so every rule here is unit-tested.

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/** Milliseconds since the epoch encoded in a ULID's first 10 characters, or NaN. */
export function ulidTimeMs(id) {
  if (typeof id !== 'string' || id.length < 10) return NaN;
  let ms = 0;
  for (const ch of id.slice(0, 10).toUpperCase()) {
    const digit = CROCKFORD.indexOf(ch);
    if (digit < 0) return NaN;
    ms = ms * 32 + digit;
  }
  return ms;
}

/** How long a local vote may disagree with the server before the server wins. */
export const PENDING_VOTE_MS_MAX = 8_000;

/**
 * Records a click on a question's vote button.
 *
 * `pending` maps qid → `{ baseline, delta, since }`: the server's count when the first
 * unconfirmed click happened, and the net effect of this browser's clicks since. Returns
 * a new map; the input is not modified.
 */
export function recordVote(pending, qid, serverVotes, up, nowMs) {
  const next = new Map(pending);
  const entry = next.get(qid);
  const step = up ? 1 : -1;
  if (entry && entry.baseline === serverVotes) {
    const delta = entry.delta + step;
    if (delta === 0) next.delete(qid);
    else next.set(qid, { baseline: serverVotes, delta, since: nowMs });
  } else {
    next.set(qid, { baseline: serverVotes, delta: step, since: nowMs });
  }
  return next;
}

/**
 * Drops local vote adjustments the server has caught up with: once a question's count
 * moved away from the baseline, the server's number already includes our vote (or
 * someone else's moved it, and the next update settles it); past PENDING_VOTE_MS_MAX the
 * server is trusted regardless. Returns the same map when nothing changed.
 */
export function settlePending(pending, serverList, nowMs) {
  if (pending.size === 0) return pending;
  const votesByQid = new Map(serverList.map((q) => [q.qid, q.votes]));
  let next = pending;
  for (const [qid, entry] of pending) {
    const votes = votesByQid.get(qid);
    const moved = votes !== undefined && votes !== entry.baseline;
    const stale = nowMs - entry.since > PENDING_VOTE_MS_MAX;
    if (moved || stale) {
      if (next === pending) next = new Map(pending);
      next.delete(qid);
    }
  }
  return next;
}

/**
 * The list to show: the server's ranked list with this browser's own state laid over it.
 * `voted` is the set of qids this browser holds a vote on; `pending` as in recordVote;
 * `busy` the qids with a vote request in flight. Keeps the server's order (its rank).
 */
export function mergeQuestions(serverList, { voted, pending, busy }) {
  return serverList.map((q, rank) => {
    const entry = pending.get(q.qid);
    const adjusted = entry && entry.baseline === q.votes ? q.votes + entry.delta : q.votes;
    return {
      qid: q.qid,
      votes: Math.max(0, adjusted),
      serverVotes: q.votes,
      hidden: Boolean(q.hidden),
      answered: typeof q.answered === 'number' ? q.answered : null,
      voted: voted.has(q.qid),
      busy: busy.has(q.qid),
      rank,
      // The host's tools (design §7), each only when the server says so.
      spotlight: q.spotlight === true,
      approved: q.approved !== false && q.pending !== true,
      reply: typeof q.reply === 'string' && q.reply !== '' ? q.reply : null,
    };
  });
}

/**
 * Splits merged questions into the sections the page shows. `open` follows `mode`:
 * 'top' keeps the server's ranking, 'new' is newest first by the question id's time.
 * `answered` is most recently answered first; `hidden` keeps the server's order.
 */
export function sectionQuestions(merged, mode) {
  const open = [];
  const answered = [];
  const hidden = [];
  for (const q of merged) {
    if (q.hidden) hidden.push(q);
    else if (!q.approved) continue;
    else if (q.answered !== null) answered.push(q);
    else open.push(q);
  }
  if (mode === 'new') {
    open.sort((a, b) => (a.qid < b.qid ? 1 : a.qid > b.qid ? -1 : 0));
  } else {
    open.sort((a, b) => a.rank - b.rank);
  }
  answered.sort((a, b) => b.answered - a.answered || a.rank - b.rank);
  hidden.sort((a, b) => a.rank - b.rank);
  return { open, answered, hidden };
}

/**
 * The questions waiting for review (not approved, not hidden), in the order they arrived
 * (question ids are minted in time order): the host's "To review" queue, or a guest's own
 * questions waiting.
 */
export function reviewQueue(merged) {
  return merged.filter((q) => !q.approved && !q.hidden).sort((a, b) => (a.qid < b.qid ? -1 : a.qid > b.qid ? 1 : 0));
}

/** The question a presenter should be looking at: the top-ranked open one, or null. */
export function topOpenQuestion(merged) {
  const { open } = sectionQuestions(merged, 'top');
  return open.length > 0 ? open[0] : null;
}

/**
 * How many questions differ between the list on screen and the newest one received:
 * added, removed, or with a different count, answered or hidden state. This is the
 * "N new changes" a paused reader is offered.
 */
export function countChanges(shown, latest) {
  const before = new Map(shown.map((q) => [q.qid, q]));
  let changes = 0;
  for (const q of latest) {
    const old = before.get(q.qid);
    before.delete(q.qid);
    if (
      !old ||
      old.votes !== q.votes ||
      Boolean(old.hidden) !== Boolean(q.hidden) ||
      (old.answered ?? null) !== (q.answered ?? null)
    ) {
      changes += 1;
    }
  }
  return changes + before.size;
}

/**
 * Removals do not wait for a paused reader: given the list on screen and the newest one
 * received while paused, returns the list on screen without the questions the newest list
 * no longer holds (a guest's list leaves hidden questions out), and with the hidden flag
 * of those it now marks hidden (a host's list keeps them, in the hidden section). So a
 * question the host hides leaves every screen at once; additions, counts, answered state
 * and order still wait for the reader. Returns `shown` itself when nothing is removed.
 */
export function applyRemovals(shown, latest) {
  const now = new Map(latest.map((q) => [q.qid, q]));
  let changed = false;
  const next = [];
  for (const q of shown) {
    const current = now.get(q.qid);
    if (current === undefined) {
      changed = true;
    } else if (Boolean(current.hidden) && !q.hidden) {
      changed = true;
      next.push({ ...q, hidden: true });
    } else {
      next.push(q);
    }
  }
  return changed ? next : shown;
}

/** Whether two server lists are the same in content and order (skips needless redraws). */
export function sameList(a, b) {
  if (a.length !== b.length) return false;
  return countChanges(a, b) === 0 && a.every((q, i) => q.qid === b[i].qid);
}

/** Validates a question before it is sent, mirroring the server's limits. */
export const QUESTION_TEXT_CHARS_MAX = 500;
export const QUESTION_WORDS_MIN = 2;
export const ASKER_NAME_CHARS_MAX = 50;

export function countWords(text) {
  const trimmed = text.trim();
  return trimmed === '' ? 0 : trimmed.split(/\s+/u).length;
}

/** Characters as the server counts them (Unicode scalar values, after trimming). */
export function charCount(text) {
  return [...text.trim()].length;
}

/** Returns null when the question may be sent, else a sentence saying what to fix. */
export function questionProblem(text, name) {
  const chars = charCount(text);
  if (chars === 0) return 'Write a question first.';
  if (countWords(text) < QUESTION_WORDS_MIN) return 'A question needs at least two words.';
  if (chars > QUESTION_TEXT_CHARS_MAX)
    return `That is ${chars - QUESTION_TEXT_CHARS_MAX} characters over the ${QUESTION_TEXT_CHARS_MAX}-character limit.`;
  if (charCount(name) > ASKER_NAME_CHARS_MAX)
    return `A name can have at most ${ASKER_NAME_CHARS_MAX} characters.`;
  // The whole JSON body must fit in 1 KiB; multi-byte text can hit that before 500 chars.
  const bodyBytes = new TextEncoder().encode(
    JSON.stringify({ body: text.trim(), asker: name.trim() || null }),
  ).length;
  if (bodyBytes > 1024) return 'That question is too long to send; please shorten it.';
  return null;
}

/** "just now", "5 min ago", "2 h ago", "3 days ago" for a unix-seconds time. */
export function timeAgo(unixSeconds, nowMs) {
  const seconds = Math.max(0, Math.round(nowMs / 1000 - unixSeconds));
  if (seconds < 60) return 'just now';
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ago`;
  const hours = Math.floor(minutes / 60);
  if (hours < 24) return `${hours} h ago`;
  const days = Math.floor(hours / 24);
  return days === 1 ? '1 day ago' : `${days} days ago`;
}
