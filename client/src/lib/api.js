// The HTTP API the client speaks (design §7), one small function per route. Every
// failure becomes an ApiError carrying the status (0 for "the network failed") and the
// server's short message, so the views can tell an unknown event from a wrong host link
// from a lost connection.

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
  }
}

import { createWriteGate, crossTabExclusive } from './writegate.js';

const enc = encodeURIComponent;

/**
 * The writes that may mint a voter cookie (asks and votes) pass this gate: one at a time
 * until one has succeeded on this page, concurrently after (see writegate.js).
 */
const voterWrites = createWriteGate({ exclusive: crossTabExclusive() });

async function request(url, init = {}) {
  let response;
  try {
    response = await fetch(url, { credentials: 'same-origin', ...init });
  } catch {
    throw new ApiError(0, 'Could not reach the server.');
  }
  if (!response.ok && response.status !== 304) {
    let message = `The server answered ${response.status}.`;
    try {
      const body = await response.json();
      if (body && typeof body.error === 'string') message = body.error;
    } catch {
      // Not JSON (a proxy's error page, say): keep the generic message.
    }
    throw new ApiError(response.status, message);
  }
  return response;
}

async function json(url, init) {
  const response = await request(url, init);
  try {
    return await response.json();
  } catch {
    throw new ApiError(response.status, 'The server sent something unreadable.');
  }
}

export function createEvent() {
  return json('/api/event', { method: 'POST' });
}

export function getEvent(eid) {
  return json(`/api/event/${enc(eid)}`);
}

export function listUrl(eid, secret) {
  return secret
    ? `/api/event/${enc(eid)}/questions/${enc(secret)}`
    : `/api/event/${enc(eid)}/questions`;
}

/**
 * The live stream, asked for in its delta form (design §7, `deltas=1`): a whole list on
 * connect, then only what changed (see deltas.js). A server without it ignores the query
 * and sends whole lists, which live.js takes as well.
 */
export function liveUrl(eid, secret) {
  const path = secret ? `/api/live/${enc(eid)}/${enc(secret)}` : `/api/live/${enc(eid)}`;
  return `${path}?deltas=1`;
}

export function exportUrl(eid, secret, format) {
  return `/api/export/${enc(eid)}/${enc(secret)}?format=${enc(format)}`;
}

/**
 * Fetches the ranked list. With an `etag` it asks conditionally: resolves to
 * `{ notModified: true }` on 304, else `{ list, etag }`.
 */
export async function fetchList(eid, secret, etag) {
  const headers = etag ? { 'If-None-Match': etag } : {};
  // The browser's own cache would turn a 304 into a stale 200; we revalidate ourselves.
  const response = await request(listUrl(eid, secret), { headers, cache: 'no-store' });
  if (response.status === 304) return { notModified: true };
  let list;
  try {
    list = await response.json();
  } catch {
    throw new ApiError(response.status, 'The server sent something unreadable.');
  }
  if (!Array.isArray(list)) throw new ApiError(response.status, 'The server sent something unexpected.');
  return { list, etag: response.headers.get('ETag') };
}

/**
 * The guest's own part of the event, by the voter cookie the browser sends with it:
 * `{"asked":[qid…],"voted":[qid…]}` (see mine.js). Never from a cache: it is one guest's.
 */
export function fetchMine(eid) {
  return json(`/api/event/${enc(eid)}/mine`, { cache: 'no-store' });
}

export function ask(eid, body, asker) {
  return voterWrites.run(() =>
    json(`/api/event/${enc(eid)}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ body, asker: asker || null }),
    }),
  );
}

export function vote(qid, up) {
  return voterWrites.run(() => json(`/api/vote/${enc(qid)}/${up ? 'up' : 'down'}`, { method: 'POST' }));
}

export function toggle(eid, secret, qid, what, on) {
  return json(`/api/event/${enc(eid)}/questions/${enc(secret)}/${enc(qid)}/toggle/${what}`, {
    method: 'POST',
    headers: { 'Content-Type': 'text/plain' },
    body: on ? 'on' : 'off',
  });
}

/** The host's tools (design §7): the whole settings, blocked words included (403 for a co-host). */
export function fetchSettings(eid, secret) {
  return json(`/api/event/${enc(eid)}/settings/${enc(secret)}`, { cache: 'no-store' });
}

/** Changes some settings (`{title?, moderation?, asking?, blocked_words?}`); resolves to them all. */
export function saveSettings(eid, secret, change) {
  return json(`/api/event/${enc(eid)}/settings/${enc(secret)}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(change),
  });
}

/** The written answer to a question (an empty text removes it). */
export function reply(eid, secret, qid, text) {
  return json(`/api/event/${enc(eid)}/questions/${enc(secret)}/${enc(qid)}/reply`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ text }),
  });
}

/** A new co-host link's secret, `{secret}`. */
export function mintCohost(eid, secret) {
  return json(`/api/event/${enc(eid)}/cohosts/${enc(secret)}`, { method: 'POST' });
}

export function revokeCohost(eid, secret, cohost) {
  return json(`/api/event/${enc(eid)}/cohosts/${enc(secret)}/${enc(cohost)}`, { method: 'DELETE' });
}

/** The batch fetcher the text cache uses; an unknown id (404) yields no texts. */
export async function fetchTexts(ids) {
  try {
    return await json(`/api/questions/${ids.map(enc).join(',')}`);
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) return {};
    throw error;
  }
}

/** The host's insights (design §7): never from a cache, each is the host's alone. */
function insightsJson(eid, secret, what) {
  return json(`/api/event/${enc(eid)}/${what}/${enc(secret)}`, { cache: 'no-store' });
}

/** The host's list as it stood at `at` (Unix ms). */
export async function fetchListAt(eid, secret, at) {
  const list = await json(`${listUrl(eid, secret)}?at=${enc(String(Math.trunc(at)))}`, { cache: 'no-store' });
  if (!Array.isArray(list)) throw new ApiError(200, 'The server sent something unexpected.');
  return list;
}

/**
 * Votes per question (of the `top` with the most votes at the end), asks and first-time
 * voters per step of `step` seconds (or larger).
 */
export function fetchTimeline(eid, secret, step, top) {
  const query = `step=${enc(String(step))}&top=${enc(String(top))}`;
  return json(`/api/event/${enc(eid)}/timeline/${enc(secret)}?${query}`, { cache: 'no-store' });
}

export function fetchAudit(eid, secret) {
  return insightsJson(eid, secret, 'audit');
}

export function fetchBursts(eid, secret) {
  return insightsJson(eid, secret, 'bursts');
}
