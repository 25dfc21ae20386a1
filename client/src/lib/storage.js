// What this browser remembers between visits, in localStorage: the questions it voted
// for and asked, per event (the server's voter cookie is HttpOnly, so the page keeps its
// own copy to draw the buttons), and the events it hosts, so a host who closed the tab
// can find the host link again. Storage can be full, disabled or hold junk; every read
// tolerates that and every write is best effort.

const PREFIX = 'wewerewondering';
const HOSTED_MAX = 20;

function read(key, fallback) {
  try {
    const raw = globalThis.localStorage?.getItem(key);
    if (raw === null || raw === undefined) return fallback;
    return JSON.parse(raw);
  } catch {
    return fallback;
  }
}

function write(key, value) {
  try {
    globalThis.localStorage?.setItem(key, JSON.stringify(value));
  } catch {
    // Full or disabled storage only costs the memory of this visit.
  }
}

function readIdSet(key) {
  const value = read(key, []);
  return new Set(Array.isArray(value) ? value.filter((id) => typeof id === 'string') : []);
}

export function loadVotes(eid) {
  return readIdSet(`${PREFIX}:votes:${eid}`);
}

export function saveVotes(eid, votes) {
  write(`${PREFIX}:votes:${eid}`, [...votes]);
}

export function loadAsked(eid) {
  return readIdSet(`${PREFIX}:asked:${eid}`);
}

export function saveAsked(eid, asked) {
  write(`${PREFIX}:asked:${eid}`, [...asked]);
}

/** Events this browser hosts, newest first: `[{ eid, secret, seenMs }]`. */
export function loadHosted() {
  const value = read(`${PREFIX}:hosted`, []);
  if (!Array.isArray(value)) return [];
  return value.filter(
    (e) => e && typeof e.eid === 'string' && typeof e.secret === 'string' && typeof e.seenMs === 'number',
  );
}

export function rememberHosted(eid, secret, nowMs) {
  const others = loadHosted().filter((e) => e.eid !== eid);
  write(`${PREFIX}:hosted`, [{ eid, secret, seenMs: nowMs }, ...others].slice(0, HOSTED_MAX));
}

export function forgetHosted(eid) {
  write(`${PREFIX}:hosted`, loadHosted().filter((e) => e.eid !== eid));
}

export function loadTheme() {
  const value = read(`${PREFIX}:theme`, 'system');
  return value === 'light' || value === 'dark' ? value : 'system';
}

export function saveTheme(theme) {
  write(`${PREFIX}:theme`, theme);
}

/** The co-host links this host minted for an event (their secrets, to show and revoke them). */
export function loadCohosts(eid) {
  return [...readIdSet(`${PREFIX}:cohosts:${eid}`)];
}

export function saveCohosts(eid, secrets) {
  write(`${PREFIX}:cohosts:${eid}`, [...secrets]);
}
