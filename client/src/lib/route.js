// The three pages and how their URLs look. The host's secret lives only in the host URL
// (never in a link the page shares); the presenter view is the host URL with #present so
// it can be opened on a second screen.

const ID = /^[0-9A-Za-z]{1,64}$/;

/**
 * The canonical form of an event id: Crockford base32 is case-insensitive and the server
 * writes it in uppercase, so `01abc…` and `01ABC…` are one event. Everything this browser
 * keeps per event (votes, asked questions) is keyed by this form.
 */
export function canonicalEventId(eid) {
  return eid.toUpperCase();
}
const SECRET = /^[0-9A-Za-z_-]{1,128}$/;

/**
 * Parses a path into `{ page: 'home' } | { page: 'event', eid, secret } |
 * { page: 'insights', eid, secret } | { page: 'not-found' }`. The event id comes back
 * canonical (uppercase); the secret as written (it is case-sensitive). The host's insights
 * live under the host URL (`/event/{eid}/{secret}/insights`), so only a host reaches them.
 */
export function parseRoute(pathname) {
  const parts = pathname.split('/').filter((part) => part !== '');
  if (parts.length === 0) return { page: 'home' };
  const insights = parts.length === 4 && parts[3] === 'insights';
  if (parts[0] !== 'event' || parts.length < 2 || (parts.length > 3 && !insights)) return { page: 'not-found' };
  let eid;
  let secret;
  try {
    eid = decodeURIComponent(parts[1]);
    secret = parts.length >= 3 ? decodeURIComponent(parts[2]) : null;
  } catch {
    return { page: 'not-found' };
  }
  if (!ID.test(eid) || (secret !== null && !SECRET.test(secret))) return { page: 'not-found' };
  return { page: insights ? 'insights' : 'event', eid: canonicalEventId(eid), secret };
}

export function guestPath(eid) {
  return `/event/${encodeURIComponent(eid)}`;
}

export function hostPath(eid, secret) {
  return `/event/${encodeURIComponent(eid)}/${encodeURIComponent(secret)}`;
}

/** The host's insights page. */
export function insightsPath(eid, secret) {
  return `${hostPath(eid, secret)}/insights`;
}

/** The link a host shares: the guest page, never the secret. */
export function guestLink(origin, eid) {
  return `${origin}${guestPath(eid)}`;
}
