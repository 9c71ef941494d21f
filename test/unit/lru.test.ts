import { LruCache } from '../../src/features/lru';

describe('LruCache recency (refreshed lazily: a hit moves an entry only when it is in the older half)', () => {
  const filled = (n: number) => {
    const c = new LruCache<number>(n, Infinity);
    for (let i = 0; i < n; i++) c.set(`k${i}`, i);
    return c;
  };

  it('a hit on an entry in the older half keeps it past the entries inserted after it; untouched ones go in insertion order', () => {
    const c = filled(100);
    expect(c.get('k0')).toBe(0);
    for (let i = 100; i < 160; i++) c.set(`k${i}`, i);
    expect(c.get('k0')).toBe(0); // exact LRU keeps it too
    expect(c.get('k1')).toBeUndefined();
    expect(c.get('k60')).toBeUndefined();
    expect(c.get('k61')).toBe(61);
    expect([c.size, c.evictions]).toEqual([100, 60]);
  });

  it('an entry hit while among the newest half is not moved, yet outlives at least half the cache of insertions', () => {
    const c = filled(100);
    expect(c.get('k90')).toBe(90); // 9 insertions after it: stays where it is
    for (let i = 100; i < 190; i++) c.set(`k${i}`, i); // 90 more: k0..k89 go
    expect(c.get('k89')).toBeUndefined();
    expect(c.get('k90')).toBe(90);
    // Touched again from the older half now: moved, so the next 99 insertions do not drop it.
    for (let i = 190; i < 289; i++) c.set(`k${i}`, i);
    expect(c.get('k90')).toBe(90);
  });

  it('small caches keep exact LRU order', () => {
    const c = new LruCache<number>(2, Infinity);
    c.set('a', 1);
    c.set('b', 2);
    expect(c.get('a')).toBe(1);
    c.set('c', 3);
    expect([c.get('a'), c.get('b'), c.get('c')]).toEqual([1, undefined, 3]);
  });
});
