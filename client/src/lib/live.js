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

import { ApiError, fetchList as defaultFetchList, liveUrl } from './api.js';

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

  function backoffMs() {
    return Math.min(RETRY_MS_MAX, pollMs * 2 ** Math.max(0, failures - 1));
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

  function startEvents() {
    if (!EventSourceImpl) {
      poll();
      return;
    }
    setState(state === 'reconnecting' ? 'reconnecting' : 'connecting');
    const es = new EventSourceImpl(liveUrl(eid, secret));
    source = es;
    es.onmessage = (message) => {
      if (closed) return;
      let list;
      try {
        list = JSON.parse(message.data);
      } catch {
        return; // A malformed message is skipped; the next one carries the whole list.
      }
      if (!Array.isArray(list)) return;
      failures = 0;
      setState('live');
      onList(list);
    };
    es.onerror = () => {
      if (closed || source !== es) return;
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
