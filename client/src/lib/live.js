// Keeps a question list current. It prefers Server-Sent Events (embedded mode pushes
// every change); where the live route is absent (AWS: API Gateway cannot stream, the
// route 404s) it polls the list with If-None-Match so an unchanged list costs a 304.
// A lost connection is retried with growing pauses, and reported, so the page can say
// so; an unknown event (404, or 400 for a malformed id) or a wrong host link stops it for
// good.
//
// EventSource hides the HTTP status of a failed connection, so when one closes for good
// the list route is asked once to find out why: if the list works, the live route is
// what is missing, and polling takes over.
//
// The stream is asked for with deltas (design §7, `deltas=1`): a `list` event carries the
// whole list at a version `seq`, each `delta` event what changed from the version held
// (`base`) to the latest (applied by deltas.js). A delta from another version (one missed,
// or out of order), that cannot be read or does not fit the list held is a gap: the stream
// is closed and opened again at once, which starts with a fresh `list` (if that happens again before a
// delta fits, the reopening waits the growing pause, so a confused server is not hammered).
// A `restarting` event says the server is shutting down: the page says "Reconnecting" at
// once, and the stream is opened again after the usual pause. Unnamed messages holding a
// whole list (a server without deltas) are taken as before.

import { ApiError, fetchList as defaultFetchList, liveUrl } from './api.js';
import { DeltaMismatch, applyDelta, isGap, readDelta, readList } from './deltas.js';

export const POLL_MS = 2_500;

/**
 * Whether an API error means the event is not there, for good: 404 (no such event, or it
 * expired) or 400 (the id in the link is malformed, say mistyped or cut short). Retrying
 * either would never succeed.
 */
export function isUnknownEvent(error) {
  return error instanceof ApiError && (error.status === 404 || error.status === 400);
}
export const RETRY_MS_MAX = 15_000;

/**
 * @param {object} options
 * @param {string} options.eid
 * @param {string|null} options.secret the host's secret, or null for the guest list
 * @param {string|null} [options.etag] ETag of the list already shown
 * @param {(list: object[]) => void} options.onList
 * @param {(state: 'connecting'|'live'|'polling'|'reconnecting'|'unknown-event'|'wrong-secret') => void} options.onState
 * @param {object} [options.deps] injected for tests: EventSource, fetchList, setTimeout, clearTimeout
 */
export function connectLive({ eid, secret, etag = null, onList, onState, deps = {} }) {
  const EventSourceImpl = 'EventSource' in deps ? deps.EventSource : globalThis.EventSource;
  const fetchList = deps.fetchList ?? defaultFetchList;
  const schedule = deps.setTimeout ?? ((fn, ms) => setTimeout(fn, ms));
  const cancel = deps.clearTimeout ?? ((id) => clearTimeout(id));
  const pollMs = deps.pollMs ?? POLL_MS;

  let closed = false;
  let source = null;
  let timer = null;
  let failures = 0;
  /** Resyncs after gaps since a delta last fitted. */
  let resyncs = 0;
  let currentEtag = etag;
  let state = null;

  function setState(next) {
    if (closed || next === state) return;
    state = next;
    onState(next);
  }

  function later(fn, ms) {
    if (closed) return;
    if (timer !== null) cancel(timer);
    timer = schedule(() => {
      timer = null;
      if (!closed) fn();
    }, ms);
  }

  /** The pause before the `n`th retry in a row: the poll interval, doubling, at most RETRY_MS_MAX. */
  function growingPause(n) {
    return Math.min(RETRY_MS_MAX, pollMs * 2 ** Math.max(0, n - 1));
  }

  function backoffMs() {
    return growingPause(failures);
  }

  /** Returns true when the error ends the connection for good. */
  function fatal(error) {
    if (isUnknownEvent(error)) {
      setState('unknown-event');
      return true;
    }
    if (error instanceof ApiError && error.status === 401) {
      setState('wrong-secret');
      return true;
    }
    return false;
  }

  function deliver(result) {
    if (result.notModified) return;
    if (result.etag) currentEtag = result.etag;
    onList(result.list);
  }

  /** Parses an event's data; undefined when it is not JSON. */
  function parse(data) {
    try {
      return JSON.parse(data);
    } catch {
      return undefined;
    }
  }

  function received(list) {
    failures = 0;
    setState('live');
    onList(list);
  }

  /**
   * Opens the stream. `quietly`: a resync after a gap, which leaves the state shown as it
   * is (the list on screen is only as old as the gap).
   */
  function startEvents({ quietly = false } = {}) {
    if (!EventSourceImpl) {
      poll();
      return;
    }
    if (!quietly) setState(state === 'reconnecting' ? 'reconnecting' : 'connecting');
    const es = new EventSourceImpl(liveUrl(eid, secret));
    source = es;
    // The delta stream's list and its version; a stream (and each of the browser's own
    // reconnections of it) starts with a `list`, so they belong to this source.
    let held = null;
    let seq = null;
    const current = () => !closed && source === es;

    es.onmessage = (message) => {
      if (!current()) return;
      const list = parse(message.data);
      // A malformed message is skipped; the next one carries the whole list.
      if (!Array.isArray(list)) return;
      received(list);
    };
    es.addEventListener('list', (message) => {
      if (!current()) return;
      const read = readList(parse(message.data));
      if (read === null) {
        // Skipped; a delta cannot follow it, so the next one resyncs.
        held = null;
        seq = null;
        return;
      }
      held = read.list;
      seq = read.seq;
      received(held);
    });
    es.addEventListener('delta', (message) => {
      if (!current()) return;
      const delta = readDelta(parse(message.data));
      if (delta === null || isGap(seq, delta)) {
        resync(es);
        return;
      }
      let next;
      try {
        next = applyDelta(held, delta);
      } catch (error) {
        if (!(error instanceof DeltaMismatch)) throw error;
        resync(es);
        return;
      }
      held = next;
      seq = delta.seq;
      resyncs = 0;
      received(next);
    });
    es.addEventListener('restarting', () => {
      if (!current()) return;
      es.close();
      source = null;
      failures += 1;
      setState('reconnecting');
      later(startEvents, backoffMs());
    });
    es.onerror = () => {
      if (!current()) return;
      if (es.readyState === EventSourceImpl.CLOSED) {
        es.close();
        source = null;
        probe();
      } else {
        // The browser reconnects by itself; say so until the next message arrives.
        setState('reconnecting');
      }
    };
  }

  /** A gap in the delta stream: open it again, which starts with the whole list. */
  function resync(es) {
    es.close();
    source = null;
    resyncs += 1;
    if (resyncs === 1) startEvents({ quietly: true });
    else later(() => startEvents({ quietly: true }), growingPause(resyncs - 1));
  }

  /** The live route closed for good: find out whether it is missing or the server is. */
  function probe() {
    fetchOnce(startEvents);
  }

  function poll() {
    fetchOnce(poll);
  }

  /** One list fetch; on success polling goes on, on failure `retry` runs after a backoff. */
  function fetchOnce(retry) {
    fetchList(eid, secret, currentEtag).then(
      (result) => {
        if (closed) return;
        failures = 0;
        deliver(result);
        setState('polling');
        later(poll, pollMs);
      },
      (error) => {
        if (closed || fatal(error)) return;
        failures += 1;
        setState('reconnecting');
        later(retry, backoffMs());
      },
    );
  }

  startEvents();

  return {
    close() {
      closed = true;
      if (timer !== null) cancel(timer);
      timer = null;
      if (source) source.close();
      source = null;
    },
  };
}
