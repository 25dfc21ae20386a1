// Question texts (text, author, time) never change once asked, so the client fetches
// each one once and keeps it. Requests made in the same tick are coalesced into batches
// of at most `batchMax` ids (the server's limit on GET /api/questions/{ids}), an id
// already in flight is not asked for again, and a failed batch leaves its ids free to be
// retried by the next call.

export const QUESTION_IDS_PER_REQUEST_MAX = 100;

/**
 * @param {object} options
 * @param {(ids: string[]) => Promise<Record<string, {text: string, when: number, who?: string}>>} options.fetchBatch
 * @param {number} [options.batchMax]
 * @param {(flush: () => void) => void} [options.schedule] when to send what was queued
 * @param {() => void} [options.onLoad] called after a batch added texts
 */
export function createTextCache({
  fetchBatch,
  batchMax = QUESTION_IDS_PER_REQUEST_MAX,
  schedule = (flush) => setTimeout(flush, 0),
  onLoad = () => {},
}) {
  const texts = new Map();
  /** qid → promise of the batch that is fetching it */
  const inflight = new Map();
  /** qid → deferred, waiting for the next flush */
  let queued = new Map();
  let flushScheduled = false;

  function flush() {
    flushScheduled = false;
    const batch = queued;
    queued = new Map();
    const ids = [...batch.keys()];
    for (let start = 0; start < ids.length; start += batchMax) {
      const chunk = ids.slice(start, start + batchMax);
      const request = Promise.resolve()
        .then(() => fetchBatch(chunk))
        .then((found) => {
          let added = 0;
          for (const id of chunk) {
            const entry = found && Object.hasOwn(found, id) ? found[id] : undefined;
            if (entry && typeof entry.text === 'string') {
              texts.set(id, entry);
              added += 1;
            }
          }
          if (added > 0) onLoad();
        });
      for (const id of chunk) {
        inflight.set(id, request);
        const { resolve, reject } = batch.get(id);
        request.then(resolve, reject);
      }
      request
        .catch(() => {})
        .finally(() => {
          for (const id of chunk) {
            if (inflight.get(id) === request) inflight.delete(id);
          }
        });
    }
  }

  /** The text for `qid` if it has been loaded, else undefined. */
  function get(qid) {
    return texts.get(qid);
  }

  /**
   * Makes sure the texts for `ids` are loaded. Resolves once every id is either cached
   * or has been asked for (an id the server does not know yet stays missing and is asked
   * for again on a later call); rejects if a batch request failed.
   */
  function load(ids) {
    const waits = [];
    for (const id of new Set(ids)) {
      if (texts.has(id)) continue;
      const running = inflight.get(id);
      if (running) {
        waits.push(running);
        continue;
      }
      let deferred = queued.get(id);
      if (!deferred) {
        let resolve;
        let reject;
        const promise = new Promise((res, rej) => {
          resolve = res;
          reject = rej;
        });
        deferred = { promise, resolve, reject };
        queued.set(id, deferred);
      }
      waits.push(deferred.promise);
    }
    if (queued.size > 0 && !flushScheduled) {
      flushScheduled = true;
      schedule(flush);
    }
    return Promise.all(waits).then(() => undefined);
  }

  /** Stores a text this browser already knows (its own question, just asked). */
  function put(qid, entry) {
    if (entry && typeof entry.text === 'string') texts.set(qid, entry);
  }

  return { get, load, put, size: () => texts.size };
}
