import { describe, expect, it } from 'vitest';
import { ApiError } from '../src/lib/api.js';
import { connectLive, isUnknownEvent } from '../src/lib/live.js';

class FakeEventSource {
  static CONNECTING = 0;
  static OPEN = 1;
  static CLOSED = 2;
  static instances = [];

  constructor(url) {
    this.url = url;
    this.readyState = FakeEventSource.CONNECTING;
    this.closed = false;
    this.listeners = new Map();
    FakeEventSource.instances.push(this);
  }

  addEventListener(type, listener) {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), listener]);
  }

  /** An unnamed message (`data:` only), as a server without deltas sends the whole list. */
  message(list) {
    this.readyState = FakeEventSource.OPEN;
    this.onmessage({ data: typeof list === 'string' ? list : JSON.stringify(list) });
  }

  /** A named event (`event: type`), its payload sent as JSON unless it is a string. */
  emit(type, payload) {
    this.readyState = FakeEventSource.OPEN;
    const event = { type, data: typeof payload === 'string' ? payload : JSON.stringify(payload) };
    (this.listeners.get(type) ?? []).forEach((listener) => listener(event));
  }

  fail(readyState) {
    this.readyState = readyState;
    this.onerror(new Event('error'));
  }

  close() {
    this.closed = true;
    this.readyState = FakeEventSource.CLOSED;
  }
}

/** Timers that run only when the test says so. */
function manualTimers() {
  let next = 1;
  const pending = new Map();
  return {
    setTimeout: (fn, ms) => {
      const id = next++;
      pending.set(id, { fn, ms });
      return id;
    },
    clearTimeout: (id) => pending.delete(id),
    delays: () => [...pending.values()].map((t) => t.ms),
    runAll: () => {
      const due = [...pending.values()];
      pending.clear();
      due.forEach((t) => t.fn());
    },
  };
}

function harness({ EventSource = FakeEventSource, responses = [], secret = null } = {}) {
  FakeEventSource.instances = [];
  const timers = manualTimers();
  const lists = [];
  const states = [];
  const requests = [];
  const queue = [...responses];
  const fetchList = (eid, secret, etag) => {
    requests.push({ eid, secret, etag });
    const next = queue.shift();
    if (next instanceof Error) return Promise.reject(next);
    return Promise.resolve(next ?? { notModified: true });
  };
  const live = connectLive({
    eid: 'E',
    secret,
    etag: '"v0"',
    onList: (list) => lists.push(list),
    onState: (state) => states.push(state),
    deps: { EventSource, fetchList, setTimeout: timers.setTimeout, clearTimeout: timers.clearTimeout, pollMs: 2_500 },
  });
  return { live, timers, lists, states, requests };
}

const flush = () => new Promise((resolve) => setTimeout(resolve, 0));

describe('live updates', () => {
  it('delivers Server-Sent Events lists and reports them live', () => {
    const h = harness();
    const es = FakeEventSource.instances[0];
    expect(es.url).toBe('/api/live/E?deltas=1');
    es.message([{ qid: 'Q', votes: 1, hidden: false }]);
    es.message('not json');
    expect(h.lists).toEqual([[{ qid: 'Q', votes: 1, hidden: false }]]);
    expect(h.states).toEqual(['connecting', 'live']);
    h.live.close();
    expect(es.closed).toBe(true);
  });

  it('says it is reconnecting while the browser retries the stream', () => {
    const h = harness();
    const es = FakeEventSource.instances[0];
    es.message([]);
    es.fail(FakeEventSource.CONNECTING);
    expect(h.states.at(-1)).toBe('reconnecting');
    es.message([]);
    expect(h.states.at(-1)).toBe('live');
  });

  it('falls back to polling with If-None-Match when the live route is missing', async () => {
    const h = harness({
      responses: [{ list: [{ qid: 'Q', votes: 2 }], etag: '"v1"' }, { notModified: true }],
    });
    FakeEventSource.instances[0].fail(FakeEventSource.CLOSED);
    await flush();
    expect(h.states.at(-1)).toBe('polling');
    expect(h.lists).toEqual([[{ qid: 'Q', votes: 2 }]]);
    expect(h.timers.delays()).toEqual([2_500]);
    h.timers.runAll();
    await flush();
    expect(h.requests.map((r) => r.etag)).toEqual(['"v0"', '"v1"']);
    expect(h.lists).toHaveLength(1); // the 304 delivered nothing
  });

  it('polls from the start where there is no EventSource', async () => {
    const h = harness({ EventSource: null, responses: [{ list: [], etag: '"v1"' }] });
    await flush();
    expect(h.requests).toHaveLength(1);
    expect(h.states).toEqual(['polling']);
  });

  it('stops for good on an unknown event or a wrong host link', async () => {
    const unknown = harness({ responses: [new ApiError(404, 'no such event')] });
    FakeEventSource.instances[0].fail(FakeEventSource.CLOSED);
    await flush();
    expect(unknown.states.at(-1)).toBe('unknown-event');
    expect(unknown.timers.delays()).toEqual([]);

    const wrong = harness({ responses: [new ApiError(401, 'wrong secret')] });
    FakeEventSource.instances[0].fail(FakeEventSource.CLOSED);
    await flush();
    expect(wrong.states.at(-1)).toBe('wrong-secret');
  });

  it('stops for good on a malformed event id (400), as on an unknown one', async () => {
    const malformed = harness({ responses: [new ApiError(400, 'malformed event id')] });
    FakeEventSource.instances[0].fail(FakeEventSource.CLOSED);
    await flush();
    expect(malformed.states.at(-1)).toBe('unknown-event');
    expect(malformed.states).not.toContain('reconnecting');
    expect(malformed.timers.delays()).toEqual([]);
  });

  it('tells a missing event from a passing failure', () => {
    expect(isUnknownEvent(new ApiError(404, 'no such event'))).toBe(true);
    expect(isUnknownEvent(new ApiError(400, 'malformed id'))).toBe(true);
    expect(isUnknownEvent(new ApiError(401, 'wrong secret'))).toBe(false);
    expect(isUnknownEvent(new ApiError(503, 'unavailable'))).toBe(false);
    expect(isUnknownEvent(new ApiError(429, 'slow down'))).toBe(false);
    expect(isUnknownEvent(new TypeError('Failed to fetch'))).toBe(false);
  });

  it('retries a lost server with growing pauses and recovers', async () => {
    const h = harness({
      EventSource: null,
      responses: [new ApiError(0, 'offline'), new ApiError(502, 'bad gateway'), { list: [], etag: '"v2"' }],
    });
    await flush();
    expect(h.states.at(-1)).toBe('reconnecting');
    expect(h.timers.delays()).toEqual([2_500]);
    h.timers.runAll();
    await flush();
    expect(h.timers.delays()).toEqual([5_000]);
    h.timers.runAll();
    await flush();
    expect(h.states.at(-1)).toBe('polling');
    expect(h.timers.delays()).toEqual([2_500]);
  });
});

const q = (qid, votes) => ({ qid, votes, hidden: false });
const latest = (instances = FakeEventSource.instances) => instances.at(-1);

describe('the delta live stream', () => {
  it('asks for deltas on the guest and the host stream', () => {
    harness();
    expect(latest().url).toBe('/api/live/E?deltas=1');
    harness({ secret: 's/cr t' });
    expect(latest().url).toBe('/api/live/E/s%2Fcr%20t?deltas=1');
  });

  it('shows the list of a `list` event, then each delta applied to it', () => {
    const h = harness();
    const es = latest();
    es.emit('list', { seq: 7, list: [q('a', 5), q('b', 4), q('c', 3)] });
    expect(h.lists).toEqual([[q('a', 5), q('b', 4), q('c', 3)]]);
    expect(h.states).toEqual(['connecting', 'live']);

    es.emit('delta', { seq: 8, base: 7, set: [q('c', 6)], mv: [['c', 0]] });
    es.emit('delta', { seq: 9, base: 8, del: ['b'], set: [q('n', 0)] });
    es.emit('delta', { seq: 10, base: 9 });
    expect(h.lists.slice(1)).toEqual([
      [q('c', 6), q('a', 5), q('b', 4)],
      [q('c', 6), q('a', 5), q('n', 0)],
      [q('c', 6), q('a', 5), q('n', 0)],
    ]);
    expect(FakeEventSource.instances).toHaveLength(1);
    expect(es.closed).toBe(false);
  });

  it('on a gap closes the stream and opens it again at once, then shows its fresh list', () => {
    const h = harness();
    const first = latest();
    first.emit('list', { seq: 7, list: [q('a', 1)] });
    first.emit('delta', { seq: 9, base: 8, set: [q('a', 3)] }); // 8 was missed
    expect(first.closed).toBe(true);
    expect(FakeEventSource.instances).toHaveLength(2);
    expect(h.timers.delays()).toEqual([]); // at once, not after a pause
    expect(h.lists).toEqual([[q('a', 1)]]); // the delta was not applied

    const second = latest();
    expect(second.url).toBe('/api/live/E?deltas=1');
    second.emit('list', { seq: 9, list: [q('a', 3)] });
    second.emit('delta', { seq: 10, base: 9, set: [q('a', 4)] });
    expect(h.lists.slice(1)).toEqual([[q('a', 3)], [q('a', 4)]]);
    // A resync is not a lost connection: the status stays "Live" throughout.
    expect(h.states).toEqual(['connecting', 'live']);
  });

  it('treats a delta from the past (reordered or repeated) as a gap', () => {
    const h = harness();
    latest().emit('list', { seq: 7, list: [q('a', 1)] });
    latest().emit('delta', { seq: 8, base: 7, set: [q('a', 2)] });
    latest().emit('delta', { seq: 8, base: 7, set: [q('a', 2)] });
    expect(FakeEventSource.instances).toHaveLength(2);
    expect(FakeEventSource.instances[0].closed).toBe(true);
    latest().emit('list', { seq: 8, list: [q('a', 2)] });
    latest().emit('delta', { seq: 9, base: 8, set: [q('a', 3)] });
    latest().emit('delta', { seq: 8, base: 7, set: [q('a', 2)] }); // arrived late
    expect(FakeEventSource.instances).toHaveLength(3);
    expect(h.lists).toEqual([[q('a', 1)], [q('a', 2)], [q('a', 2)], [q('a', 3)]]);
  });

  it('resyncs on a delta before any list, an unreadable one, or one that does not fit the list', () => {
    const h = harness();
    latest().emit('delta', { seq: 1, base: 0, set: [q('a', 1)] });
    expect(FakeEventSource.instances).toHaveLength(2);

    // Each time a delta fits in between, so each resync is at once.
    latest().emit('list', { seq: 1, list: [q('a', 1)] });
    latest().emit('delta', { seq: 2, base: 1 });
    latest().emit('delta', 'not json');
    expect(FakeEventSource.instances).toHaveLength(3);

    latest().emit('list', { seq: 1, list: [q('a', 1)] });
    latest().emit('delta', { seq: 2, base: 1 });
    latest().emit('delta', { seq: 3, base: 2, mv: [['x', 0]] }); // x is not in the list
    expect(FakeEventSource.instances).toHaveLength(4);
    expect(h.lists.filter((list) => list.length !== 1 || list[0].votes !== 1)).toEqual([]);
    expect(h.timers.delays()).toEqual([]);
  });

  it('skips an unreadable list; the delta after it resyncs', () => {
    const h = harness();
    latest().emit('list', { seq: 1, list: [q('a', 1)] });
    latest().emit('list', { seq: 2, list: 'nope' });
    expect(h.lists).toEqual([[q('a', 1)]]);
    latest().emit('delta', { seq: 3, base: 2, set: [q('a', 3)] });
    expect(FakeEventSource.instances).toHaveLength(2);
    expect(h.lists).toEqual([[q('a', 1)]]);
  });

  it('waits the growing pause before resyncing again when no delta fitted since the last resync', () => {
    const h = harness();
    latest().emit('list', { seq: 1, list: [] });
    latest().emit('delta', { seq: 5, base: 4 });
    expect(FakeEventSource.instances).toHaveLength(2); // the first resync: at once
    latest().emit('list', { seq: 6, list: [] });
    latest().emit('delta', { seq: 9, base: 8 });
    expect(FakeEventSource.instances).toHaveLength(2); // the second waits
    expect(h.timers.delays()).toEqual([2_500]);
    h.timers.runAll();
    expect(FakeEventSource.instances).toHaveLength(3);
    latest().emit('list', { seq: 9, list: [] });
    latest().emit('delta', { seq: 9, base: 8 });
    expect(h.timers.delays()).toEqual([5_000]); // and the third longer
    h.timers.runAll();
    expect(FakeEventSource.instances).toHaveLength(4);
    // A delta that fits ends the streak: the next gap resyncs at once again.
    latest().emit('list', { seq: 9, list: [] });
    latest().emit('delta', { seq: 10, base: 9 });
    latest().emit('delta', { seq: 12, base: 11 });
    expect(FakeEventSource.instances).toHaveLength(5);
    expect(h.timers.delays()).toEqual([]);
  });

  it('a stream the browser reconnected starts again from its new list', () => {
    const h = harness();
    const es = latest();
    es.emit('list', { seq: 40, list: [q('a', 1)] });
    es.fail(FakeEventSource.CONNECTING);
    expect(h.states.at(-1)).toBe('reconnecting');
    // A restarted server numbers its versions afresh.
    es.emit('list', { seq: 1, list: [q('b', 1)] });
    es.emit('delta', { seq: 2, base: 1, set: [q('b', 2)] });
    expect(h.lists.slice(1)).toEqual([[q('b', 1)], [q('b', 2)]]);
    expect(h.states.at(-1)).toBe('live');
    expect(FakeEventSource.instances).toHaveLength(1);
  });

  it('on `restarting` says "reconnecting" at once and reopens the stream after the usual pause', () => {
    const h = harness();
    const first = latest();
    first.emit('list', { seq: 3, list: [q('a', 1)] });
    first.emit('restarting', {});
    expect(first.closed).toBe(true);
    expect(h.states).toEqual(['connecting', 'live', 'reconnecting']);
    expect(FakeEventSource.instances).toHaveLength(1);
    expect(h.timers.delays()).toEqual([2_500]);
    expect(h.requests).toEqual([]); // no polling in between: the stream comes back

    h.timers.runAll();
    expect(FakeEventSource.instances).toHaveLength(2);
    const second = latest();
    expect(second.url).toBe('/api/live/E?deltas=1');
    expect(h.states.at(-1)).toBe('reconnecting'); // until the new stream delivers
    second.emit('list', { seq: 1, list: [q('a', 1), q('b', 0)] });
    expect(h.states.at(-1)).toBe('live');
    expect(h.lists.at(-1)).toEqual([q('a', 1), q('b', 0)]);
  });

  it('pauses longer after each restart that did not come back', () => {
    const h = harness();
    latest().emit('list', { seq: 1, list: [] });
    latest().emit('restarting', {});
    h.timers.runAll();
    latest().emit('restarting', {});
    expect(h.timers.delays()).toEqual([5_000]);
  });

  it('ignores what a closed stream still delivers', () => {
    const h = harness();
    const first = latest();
    first.emit('list', { seq: 1, list: [q('a', 1)] });
    first.emit('delta', { seq: 3, base: 2 }); // gap: first is closed, second opened
    first.emit('list', { seq: 9, list: [q('z', 9)] });
    first.emit('delta', { seq: 10, base: 9 });
    first.message([q('z', 9)]);
    first.emit('restarting', {});
    expect(h.lists).toEqual([[q('a', 1)]]);
    expect(FakeEventSource.instances).toHaveLength(2);
    expect(h.timers.delays()).toEqual([]);
    h.live.close();
    expect(latest().closed).toBe(true);
  });
});
