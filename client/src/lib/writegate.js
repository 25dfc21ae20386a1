// One guest, one voter. A guest's identity is the HttpOnly `voter` cookie, which the
// server mints on the first write (ask or vote) that carries none. Two cookie-less
// writes in flight at once would mint two identities; the browser keeps one cookie, and
// whatever the other did could then never be withdrawn. So until this browser is known
// to hold the cookie, writes go one at a time: each waits for the write before it to
// settle, and is sent with whatever cookie that one left behind. Once a write has
// succeeded, the cookie is there and writes go concurrently.
//
// "Known to hold the cookie" is module state, per page load: the page cannot read an
// HttpOnly cookie, and a flag kept in localStorage or sessionStorage could outlive the
// cookie (cleared with the browser's cookies, expired with the event's retention,
// blocked), which would bring the two identities back. Being careful costs little: a
// guest returning with a cookie from an earlier visit only has the writes that start
// while this page's first write is in flight wait for it, one round trip, once.
//
// Tabs of the same browser share the cookie, so the first write of each page also takes
// a lock shared between tabs where the browser has one (Web Locks): two fresh tabs
// voting at the same moment send their first writes one after the other too.

/** The name of the lock the first writes of all tabs of this site share. */
export const FIRST_WRITE_LOCK = 'wewerewondering:first-write';

/**
 * A gate for the writes that may mint a voter. `exclusive(write)` runs a first write
 * under a lock shared with other tabs and resolves to its result; it defaults to running
 * the write as is.
 *
 * `run(write)` sends `write()` (a function returning a promise) when the gate allows and
 * resolves or rejects as the write does. `held` tells whether a write has succeeded, so
 * the cookie is known to be there.
 */
export function createWriteGate({ exclusive = (write) => write() } = {}) {
  let held = false;
  // While a write without a known cookie is in flight: a promise that resolves (never
  // rejects) once it has settled, `held` telling how it went.
  let pioneer = null;

  function run(write) {
    if (held) return write();
    if (pioneer) return pioneer.then(() => run(write));
    // `held` is settled before the caller hears back, so a write the caller sends next
    // goes straight out; a write that failed brought no cookie, and the next waiting
    // write goes first alone.
    const result = new Promise((resolve) => resolve(exclusive(write))).then(
      (value) => {
        held = true;
        pioneer = null;
        return value;
      },
      (error) => {
        pioneer = null;
        throw error;
      },
    );
    pioneer = result.then(
      () => {},
      () => {},
    );
    return result;
  }

  return {
    run,
    get held() {
      return held;
    },
  };
}

/**
 * `exclusive` for `createWriteGate` from the browser's Web Locks, shared by the tabs of
 * this site; without them (an old browser, a page not served over HTTPS), the write runs
 * as is.
 */
export function crossTabExclusive(locks = globalThis.navigator?.locks) {
  if (!locks || typeof locks.request !== 'function') return (write) => write();
  return (write) => locks.request(FIRST_WRITE_LOCK, () => write());
}
