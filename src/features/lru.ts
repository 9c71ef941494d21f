/**
 * A small LRU cache with a per-entry TTL (Map insertion order = recency, refreshed lazily: see
 * `get`). Counts hits and misses.
 * Optionally bounded by weight as well as entries: each entry carries a weight (e.g. its estimated
 * bytes), `reweigh` updates it as the value grows in place, and least recently used entries are
 * dropped until both bounds hold (the entry just set or reweighed stays, even alone over the bound).
 */
export class LruCache<V> {
  private readonly map = new Map<string, { value: V; expires: number; weight: number; tick: number }>();
  /** Counts insertions and moves to the newest end: an entry's `tick` minus it tells how many went in after it. */
  private tick = 0;
  hits = 0;
  misses = 0;
  /** Entries dropped to keep within the bounds (not deletes, not expiries). */
  evictions = 0;
  private total = 0;

  constructor(
    readonly maxEntries: number,
    readonly ttlMs: number,
    private readonly now: () => number = Date.now,
    readonly maxWeight = Infinity,
  ) {}

  get(key: string): V | undefined {
    const e = this.map.get(key);
    // An entry that never expires (TTL Infinity, e.g. the streaming state's entities) skips the clock.
    if (!e || (e.expires !== Infinity && e.expires <= this.now())) {
      if (e) this.remove(key);
      this.misses++;
      return undefined;
    }
    // Recency is refreshed only for an entry that is not among the newest half already: a Map
    // delete + set costs ~200 ns a hit (the streaming state and the batch sets make a few per
    // event), and an entry with at most size/2 insertions after it has at least as many older
    // entries to be dropped first. Exact LRU order for maps of up to three entries.
    if (this.tick - e.tick >= Math.max(1, this.map.size >> 1)) {
      this.map.delete(key);
      this.map.set(key, e);
      e.tick = ++this.tick;
    }
    this.hits++;
    return e.value;
  }

  set(key: string, value: V, weight = 0): void {
    if (this.maxEntries <= 0 || this.ttlMs <= 0) return;
    this.remove(key);
    this.map.set(key, { value, expires: this.now() + this.ttlMs, weight, tick: ++this.tick });
    this.total += weight;
    this.trim(key);
  }

  /** Sets a held entry's weight (no change of recency); drops others if the total now exceeds the bound. */
  reweigh(key: string, weight: number): void {
    const e = this.map.get(key);
    if (!e) return;
    this.total += weight - e.weight;
    e.weight = weight;
    this.trim(key);
  }

  private trim(keep: string): void {
    while (this.map.size > this.maxEntries || (this.total > this.maxWeight && this.map.size > 1)) {
      const oldest = this.map.keys().next().value as string;
      if (oldest === keep) {
        // The kept entry is the least recent: move it to the front and drop the next one.
        const e = this.map.get(keep)!;
        this.map.delete(keep);
        this.map.set(keep, e);
        e.tick = ++this.tick;
        continue;
      }
      this.remove(oldest);
      this.evictions++;
    }
  }

  private remove(key: string): void {
    const e = this.map.get(key);
    if (!e) return;
    this.total -= e.weight;
    this.map.delete(key);
  }

  /** Forgets an entry (not counted as a hit or a miss). */
  delete(key: string): void {
    this.remove(key);
  }

  get size(): number {
    return this.map.size;
  }

  /** Sum of the held entries' weights. */
  get weight(): number {
    return this.total;
  }

  clear(): void {
    this.map.clear();
    this.total = 0;
  }
}
