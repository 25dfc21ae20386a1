import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { forgetHosted, loadHosted, loadTheme, loadVotes, rememberHosted, saveVotes } from '../src/lib/storage.js';

class MemoryStorage {
  constructor() {
    this.items = new Map();
    this.full = false;
  }
  getItem(key) {
    return this.items.has(key) ? this.items.get(key) : null;
  }
  setItem(key, value) {
    if (this.full) throw new Error('QuotaExceededError');
    this.items.set(key, String(value));
  }
}

let storage;
beforeEach(() => {
  storage = new MemoryStorage();
  globalThis.localStorage = storage;
});
afterEach(() => {
  delete globalThis.localStorage;
});

describe('what the browser remembers', () => {
  it('remembers votes per event', () => {
    saveVotes('E1', new Set(['A', 'B']));
    expect(loadVotes('E1')).toEqual(new Set(['A', 'B']));
    expect(loadVotes('E2')).toEqual(new Set());
  });

  it('tolerates junk, full and missing storage', () => {
    storage.setItem('wewerewondering:votes:E1', '{not json');
    expect(loadVotes('E1')).toEqual(new Set());
    storage.setItem('wewerewondering:votes:E1', JSON.stringify(['A', 7, null]));
    expect(loadVotes('E1')).toEqual(new Set(['A']));
    storage.setItem('wewerewondering:theme', JSON.stringify('purple'));
    expect(loadTheme()).toBe('system');
    storage.full = true;
    expect(() => saveVotes('E1', new Set(['B']))).not.toThrow();
    delete globalThis.localStorage;
    expect(loadVotes('E1')).toEqual(new Set());
    expect(() => rememberHosted('E1', 's', 1)).not.toThrow();
  });

  it('lists hosted events newest first, once each, and forgets on request', () => {
    rememberHosted('E1', 's1', 1);
    rememberHosted('E2', 's2', 2);
    rememberHosted('E1', 's1', 3);
    expect(loadHosted().map((e) => [e.eid, e.seenMs])).toEqual([
      ['E1', 3],
      ['E2', 2],
    ]);
    forgetHosted('E1');
    expect(loadHosted().map((e) => e.eid)).toEqual(['E2']);
  });
});
