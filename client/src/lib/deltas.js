// The delta live stream's rules (design §7, `deltas=1`), pure: reading its two messages and
// applying a delta to the list it follows.
//
// A stream sends `list` (`{"seq","list"}`) on connect, then `delta`s
// (`{"seq","base","set"?,"del"?,"mv"?}`, a key with nothing in it left out): version `seq`
// from version `base`, the one the stream last had. A delta is applied in this order:
// `del` (qids) leave the list; each item of `set` (`hidden` only when true) replaces the
// item with its qid or, if there is none, is appended; then every qid of `mv` (`[qid,
// index]`) is taken out, and each is put back at its index, lowest index first. The result
// is exactly the server's list of version `seq`, in its rank order.

/** A delta that does not fit the list it should follow: the lists have diverged. */
export class DeltaMismatch extends Error {
  constructor(message) {
    super(message);
    this.name = 'DeltaMismatch';
  }
}

const isSeq = (value) => Number.isSafeInteger(value) && value >= 0;
const isQid = (value) => typeof value === 'string' && value !== '';
const isItem = (value) => value !== null && typeof value === 'object' && !Array.isArray(value) && isQid(value.qid);
const isIndex = (value) => Number.isSafeInteger(value) && value >= 0;
const isMove = (value) => Array.isArray(value) && value.length === 2 && isQid(value[0]) && isIndex(value[1]);

/** A `list` message's parsed payload as `{ seq, list }`, or null when it is not one. */
export function readList(payload) {
  if (payload === null || typeof payload !== 'object') return null;
  const { seq, list } = payload;
  if (!isSeq(seq) || !Array.isArray(list) || !list.every(isItem)) return null;
  return { seq, list };
}

/**
 * A `delta` message's parsed payload as `{ seq, base, del, set, mv }` (absent keys as empty
 * arrays; `set` items with `hidden` filled in), or null when it is not one.
 */
export function readDelta(payload) {
  if (payload === null || typeof payload !== 'object') return null;
  const { seq, base, del = [], set = [], mv = [] } = payload;
  if (!isSeq(seq) || !isSeq(base) || base >= seq) return null;
  if (!Array.isArray(del) || !del.every(isQid)) return null;
  if (!Array.isArray(set) || !set.every(isItem)) return null;
  if (!Array.isArray(mv) || !mv.every(isMove)) return null;
  return { seq, base, del, set: set.map((item) => ({ ...item, hidden: item.hidden === true })), mv };
}

/**
 * Whether `delta` cannot be applied to the list of version `lastSeq` (null: no list yet):
 * it must start from exactly that version. A delta from another base (reordered, repeated,
 * or one missed) is a gap: the list it follows is not the one held.
 */
export function isGap(lastSeq, delta) {
  return lastSeq === null || delta.base !== lastSeq;
}

/**
 * The list `delta` makes of `list` (neither is changed). Throws DeltaMismatch when the
 * delta names a question the list does not hold where it must (a `del`, a moved qid or an
 * `after`): the lists have diverged, and only a whole list can set them right.
 */
export function applyDelta(list, delta) {
  const { del = [], set = [], mv = [] } = delta;
  const held = new Set(list.map((item) => item.qid));
  for (const qid of del) {
    if (!held.has(qid)) throw new DeltaMismatch(`the delta removes ${qid}, which the list does not hold`);
  }
  const leaving = new Set(del);
  const next = list.filter((item) => !leaving.has(item.qid));

  const position = new Map(next.map((item, index) => [item.qid, index]));
  for (const item of set) {
    const at = position.get(item.qid);
    if (at === undefined) {
      position.set(item.qid, next.length);
      next.push(item);
    } else {
      next[at] = item;
    }
  }

  // Every moved question out first, then each back at its index, lowest index first.
  const moving = new Map();
  for (const [qid] of mv) {
    const item = next.find((held) => held.qid === qid);
    if (item === undefined) throw new DeltaMismatch(`the delta moves ${qid}, which the list does not hold`);
    moving.set(qid, item);
  }
  const staying = next.filter((item) => !moving.has(item.qid));
  for (const [qid, index] of [...mv].sort((a, b) => a[1] - b[1])) {
    if (index > staying.length) throw new DeltaMismatch(`the delta moves ${qid} to ${index}, past the list's end`);
    staying.splice(index, 0, moving.get(qid));
  }
  return staying;
}
