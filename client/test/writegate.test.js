import { describe, expect, it } from 'vitest';
import { FIRST_WRITE_LOCK, createWriteGate, crossTabExclusive } from '../src/lib/writegate.js';

/** A write the test settles by hand; `started` tells whether the gate has sent it. */
function manualWrite(name) {
  const write = { name, started: false };
  write.run = () => {
    write.started = true;
    return new Promise((resolve, reject) => {
      write.succeed = () => resolve(name);
      write.fail = () => reject(new Error(`${name} failed`));
    });
  };
  return write;
}

/** Lets every queued promise callback run. */
const flush = () => new Promise((resolve) => setTimeout(resolve, 0));

/** A fresh gate (no cookie known) given one manual write per name, after it sent what it would. */
async function queued(names) {
  const gate = createWriteGate();
  const writes = names.map(manualWrite);
  const results = writes.map((w) => gate.run(w.run));
  await flush();
  return { gate, writes, results };
}

describe('the voter write gate', () => {
  // While no cookie is known, queued writes go one at a time: each failed one (it brought
  // no cookie) lets the next go alone, and the first success releases the one after it.
  it.each([
    { name: 'holds a second write until the first has settled, while no cookie is known', failures: 0 },
    { name: 'lets the next write go first alone when the first fails, and reports the failure', failures: 1 },
  ])('$name', async ({ failures }) => {
    const names = ['a', 'b', 'c'].slice(0, failures + 2);
    const { gate, writes, results } = await queued(names);
    // Only the writes up to `last` have been sent.
    const sentUpTo = (last) => writes.map((_, i) => i <= last);
    for (let i = 0; i < failures; i += 1) {
      expect(writes.map((w) => w.started)).toEqual(sentUpTo(i));
      writes[i].fail();
      await expect(results[i]).rejects.toThrow(`${names[i]} failed`);
      await flush();
      expect(gate.held).toBe(false);
    }
    const [first, next] = [failures, failures + 1];
    expect(writes.map((w) => w.started)).toEqual(sentUpTo(first));
    expect(gate.held).toBe(false);

    writes[first].succeed();
    await expect(results[first]).resolves.toBe(names[first]);
    await flush();
    expect(gate.held).toBe(true);
    expect(writes[next].started).toBe(true);
    writes[next].succeed();
    await expect(results[next]).resolves.toBe(names[next]);
  });

  it('sends writes concurrently once one has succeeded', async () => {
    const gate = createWriteGate();
    const first = manualWrite('first');
    const r = gate.run(first.run);
    await flush();
    first.succeed();
    await r;

    const writes = ['a', 'b', 'c'].map(manualWrite);
    const results = writes.map((w) => gate.run(w.run));
    // Sent at once, synchronously: no write waits for another.
    expect(writes.map((w) => w.started)).toEqual([true, true, true]);
    writes.forEach((w) => w.succeed());
    await expect(Promise.all(results)).resolves.toEqual(['a', 'b', 'c']);
  });

  it('releases every waiting write together when the first succeeds', async () => {
    const {
      writes: [a, b, c],
      results: [, rb, rc],
    } = await queued(['a', 'b', 'c']);
    expect([a.started, b.started, c.started]).toEqual([true, false, false]);

    a.succeed();
    await flush();
    // b and c both carry the cookie a brought: neither waits for the other.
    expect([b.started, c.started]).toEqual([true, true]);
    c.succeed();
    await expect(rc).resolves.toBe('c');
    b.succeed();
    await expect(rb).resolves.toBe('b');
  });


  it('treats a write that throws before returning a promise as a failed write', async () => {
    const gate = createWriteGate();
    const b = manualWrite('b');
    const ra = gate.run(() => {
      throw new Error('bad request');
    });
    const rb = gate.run(b.run);
    await expect(ra).rejects.toThrow('bad request');
    await flush();
    expect(b.started).toBe(true);
    expect(gate.held).toBe(false);
    b.succeed();
    await expect(rb).resolves.toBe('b');
  });

  it('takes the shared lock for the first write only', async () => {
    const locked = [];
    const gate = createWriteGate({
      exclusive: (write) => {
        locked.push('lock');
        return write();
      },
    });
    const a = manualWrite('a');
    const ra = gate.run(a.run);
    await flush();
    a.succeed();
    await ra;
    const b = manualWrite('b');
    const rb = gate.run(b.run);
    b.succeed();
    await rb;
    expect(locked).toEqual(['lock']);
  });
});

describe('the lock shared between tabs', () => {
  it('runs the write under the Web Lock named for the first write', async () => {
    const requests = [];
    const locks = {
      request: (name, callback) => {
        requests.push(name);
        return Promise.resolve(callback());
      },
    };
    const exclusive = crossTabExclusive(locks);
    await expect(exclusive(() => Promise.resolve(7))).resolves.toBe(7);
    expect(requests).toEqual([FIRST_WRITE_LOCK]);
  });

  it('runs the write as is where the browser has no Web Locks', async () => {
    await expect(crossTabExclusive(undefined)(() => Promise.resolve('sent'))).resolves.toBe('sent');
    await expect(crossTabExclusive({})(() => Promise.resolve('sent'))).resolves.toBe('sent');
  });
});
