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
    FakeEventSource.instances.push(this);
  }

  message(list) {
    this.readyState = FakeEventSource.OPEN;
    this.onmessage({ data: typeof list === 'string' ? list : JSON.stringify(list) });
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

function harness({ EventSource = FakeEventSource, responses = [] } = {}) {
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
    secret: null,
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
    expect(es.url).toBe('/api/live/E');
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
