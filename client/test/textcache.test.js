import { describe, expect, it } from 'vitest';
import { createTextCache } from '../src/lib/textcache.js';

function id(n) {
  return `01HZZZ${String(n).padStart(20, '0')}`;
}

/** A fake GET /api/questions/{ids}: knows every id except those in `unknown`. */
function fakeServer({ unknown = new Set(), fail = 0 } = {}) {
  const calls = [];
  let failures = fail;
  async function fetchBatch(ids) {
    calls.push(ids);
    if (failures > 0) {
      failures -= 1;
      throw new Error('offline');
    }
    const out = {};
    for (const qid of ids) if (!unknown.has(qid)) out[qid] = { text: `text of ${qid}`, when: 1 };
    return out;
  }
  return { calls, fetchBatch };
}

/** Runs flushes only when told, so a test can decide what counts as "one tick". */
function manualSchedule() {
  const queue = [];
  return {
    schedule: (flush) => queue.push(flush),
    run: () => queue.splice(0).forEach((flush) => flush()),
  };
}

describe('question text cache', () => {
  it('batches ids asked for in the same tick into one request', async () => {
    const server = fakeServer();
    const tick = manualSchedule();
    const cache = createTextCache({ fetchBatch: server.fetchBatch, schedule: tick.schedule });
    const first = cache.load([id(1), id(2)]);
    const second = cache.load([id(2), id(3)]);
    tick.run();
    await Promise.all([first, second]);
    expect(server.calls).toEqual([[id(1), id(2), id(3)]]);
    expect(cache.get(id(3)).text).toBe(`text of ${id(3)}`);
  });

  it('splits large loads into batches of at most 100 ids', async () => {
    const server = fakeServer();
    const cache = createTextCache({ fetchBatch: server.fetchBatch });
    const ids = Array.from({ length: 250 }, (_, n) => id(n));
    await cache.load(ids);
    expect(server.calls.map((batch) => batch.length)).toEqual([100, 100, 50]);
    expect(cache.size()).toBe(250);
  });

  it('never fetches a cached text again', async () => {
    const server = fakeServer();
    let loads = 0;
    const cache = createTextCache({ fetchBatch: server.fetchBatch, onLoad: () => (loads += 1) });
    await cache.load([id(1)]);
    await cache.load([id(1)]);
    expect(server.calls).toEqual([[id(1)]]);
    expect(loads).toBe(1);
  });

  it('joins a request already in flight instead of sending another', async () => {
    const server = fakeServer();
    const cache = createTextCache({ fetchBatch: server.fetchBatch });
    const first = cache.load([id(1)]);
    await new Promise((resolve) => setTimeout(resolve, 0)); // the first batch is now in flight
    const second = cache.load([id(1)]);
    await Promise.all([first, second]);
    expect(server.calls).toEqual([[id(1)]]);
  });

  it('asks again for an id the server did not know yet', async () => {
    const unknown = new Set([id(2)]);
    const server = fakeServer({ unknown });
    const cache = createTextCache({ fetchBatch: server.fetchBatch });
    await cache.load([id(1), id(2)]);
    expect(cache.get(id(2))).toBeUndefined();
    unknown.clear();
    await cache.load([id(1), id(2)]);
    expect(server.calls).toEqual([[id(1), id(2)], [id(2)]]);
    expect(cache.get(id(2)).text).toBe(`text of ${id(2)}`);
  });

  it('lets a failed batch be retried', async () => {
    const server = fakeServer({ fail: 1 });
    const cache = createTextCache({ fetchBatch: server.fetchBatch });
    await expect(cache.load([id(1)])).rejects.toThrow('offline');
    await cache.load([id(1)]);
    expect(server.calls).toEqual([[id(1)], [id(1)]]);
    expect(cache.get(id(1))).toBeDefined();
  });

  it('keeps a text put in by hand without fetching it', async () => {
    const server = fakeServer();
    const cache = createTextCache({ fetchBatch: server.fetchBatch });
    cache.put(id(7), { text: 'my own question', when: 5 });
    await cache.load([id(7)]);
    expect(server.calls).toEqual([]);
    expect(cache.get(id(7)).text).toBe('my own question');
  });
});
