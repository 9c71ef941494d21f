import fc from 'fast-check';
import { ReferenceStreamingState, valueNames, type StreamEvent } from '../../src/features/streaming';
import { EntityWindowState, setPlan } from '../../src/features/window-state';
import { TextInterner } from '../../src/features/text-interner';
import type { StreamingFeatureSetSpec } from '../../src/features/spec';
import { activitySet } from '../helpers/streaming-sets';


const eventArb = fc.record({
  card: fc.constantFrom('c1', 'c2'),
  merchant: fc.constantFrom('m1', 'm2', 'm3', 'm4', 'm5'),
  amount: fc.oneof(fc.integer({ min: -50, max: 500 }), fc.double({ min: -1e6, max: 1e6, noNaN: true, noDefaultInfinity: true })),
  step: fc.integer({ min: 0, max: 12 }),
  jitter: fc.integer({ min: 0, max: 40 }),
  /** Persist what changed and reload the entity from the stored fields before this event. */
  reload: fc.boolean(),
});

/** A hash per entity, written as StreamingState's commit script writes it. */
class FakeStore {
  readonly hashes = new Map<string, Map<string, string>>();
  write(entity: string, st: EntityWindowState): void {
    if (!st.changed) return;
    const h = this.hashes.get(entity) ?? new Map<string, string>();
    this.hashes.set(entity, h);
    const w = st.takeWrites();
    for (const f of w.del) h.delete(f);
    for (let i = 0; i < w.set.length; i += 2) {
      // A fragment is the exact text JSON.stringify gives its rows (the stored format other versions read).
      expect(w.set[i + 1]).toBe(JSON.stringify(JSON.parse(w.set[i + 1])));
      h.set(w.set[i], w.set[i + 1]);
    }
    st.version = `v${Math.random()}`;
    h.set('v', st.version);
  }
  fields(entity: string): string[] {
    return [...(this.hashes.get(entity) ?? new Map<string, string>()).entries()].flat();
  }
  storedEvents(entity: string): number {
    let n = 0;
    for (const [f, v] of this.hashes.get(entity) ?? []) if (f.startsWith('b')) n += (JSON.parse(v) as unknown[]).length;
    return n;
  }

  /** The lengths of the stored rows ([time, seq, one text per value slot]: the stored format). */
  rowLengths(entity: string): Set<number> {
    const out = new Set<number>();
    for (const [f, v] of this.hashes.get(entity) ?? []) if (f.startsWith('b')) for (const r of JSON.parse(v) as unknown[][]) out.add(r.length);
    return out;
  }
}

describe('window state in memory (what StreamingState computes between loads and commits)', () => {
  it('equals the brute-force reference, small or big, whatever the block size, reloaded from its stored fields at random points', () => {
    fc.assert(
      // Longer streams than fast-check's default size (~10 events), and pace 12: each card ~1 event
      // per ms, so blocks of F buckets (5 ms each) pass the 8 events from which they keep a summary
      // and out-of-order events read those summaries (~400 made and ~200 read over the runs).
      fc.property(fc.array(eventArb, { minLength: 1, maxLength: 80, size: '+1' }), fc.integer({ min: 0, max: 30 }), fc.constantFrom(0, 3, 1000), fc.integer({ min: 1, max: 3 }), fc.constantFrom(0, 1e9), fc.constantFrom(1, 12), fc.constantFrom(1, 2, 65_536), (raw, lateness, small, block, replayRetentionMs, pace, internedTexts) => {
        const set = activitySet(lateness, replayRetentionMs);
        const plan = setPlan(set, valueNames(set), block, 3_600_000);
        // A tiny interner drops texts while events holding them are still in the windows (1, 2: a
        // generation turns over every text or two): the values must not change.
        plan.texts = new TextInterner(internedTexts);
        const ref = new ReferenceStreamingState([set]);
        const store = new FakeStore();
        const states = new Map<string, EntityWindowState>();
        const held = new Map<string, number>(); // events held per entity (applied - evicted)
        let clock = 1_000_000;
        raw.forEach((r, offset) => {
          clock += Math.floor(r.step / pace);
          const t = clock - r.jitter;
          const values = [String(r.amount), r.merchant];
          const e: StreamEvent = { offset, eventTime: t, entities: [r.card], values: [values] };
          const [want] = ref.apply('t', 0, [e]);
          let st = states.get(r.card);
          if (!st || r.reload) {
            if (st) store.write(r.card, st);
            st = EntityWindowState.load(plan, small, store.fields(r.card));
            states.set(r.card, st);
          }
          const late = st.isLate(t);
          const got = st.score(t);
          expect(late).toBe(want.late[0]);
          // With a retention of the windows and lateness only, a late event's vector may differ (stated limit).
          if (!late || replayRetentionMs > 0) expect(got).toEqual(want.values[0]);
          if (!late) {
            const eff = st.apply(t, values);
            held.set(r.card, (held.get(r.card) ?? 0) + 1 - eff.evictedEvents);
          }
          if (r.reload) store.write(r.card, st);
        });
        // What is stored is exactly what is held: every applied event not evicted, once.
        for (const [card, st] of states) {
          store.write(card, st);
          expect(store.storedEvents(card)).toBe(held.get(card) ?? 0);
          if ((held.get(card) ?? 0) > 0) expect([...store.rowLengths(card)]).toEqual([2 + plan.slots]);
        }
      }),
      { numRuns: 300 },
    );
  });

  /**
   * 6,000 events of one entity against the reference (scores and lateness), persisted every 97 and
   * reloaded every 291; `next` moves the clock and gives the event's time from a pseudo-random x.
   * Returns the entity at the end (after checking what is stored is what it holds and reloads to
   * the same vector) and the most events it held at once.
   */
  function longStream(small: number, seed: number, next: (x: number, clock: number) => { clock: number; t: number }): { st: EntityWindowState; maxHeld: number } {
    const set = activitySet(10, 0);
    const plan = setPlan(set, valueNames(set), 4, 3_600_000);
    const ref = new ReferenceStreamingState([set]);
    const store = new FakeStore();
    let st = EntityWindowState.load(plan, small, []);
    let clock = 1_000_000;
    let x = seed;
    let maxHeld = 0;
    for (let offset = 0; offset < 6000; offset++) {
      x = (x * 48271) % 2147483647;
      const step = next(x, clock);
      clock = step.clock;
      const t = step.t;
      const values = [String((x % 1000) - 300), `m${x % 13}`];
      const [want] = ref.apply('t', 0, [{ offset, eventTime: t, entities: ['c'], values: [values] }]);
      expect([st.isLate(t), st.score(t)]).toEqual([want.late[0], want.values[0]]);
      if (!want.late[0]) st.apply(t, values);
      maxHeld = Math.max(maxHeld, st.heldEvents);
      if (offset % 97 === 0) {
        store.write('c', st);
        if (offset % 3 === 0) st = EntityWindowState.load(plan, small, store.fields('c'));
      }
    }
    store.write('c', st);
    expect(store.storedEvents('c')).toBe(st.heldEvents);
    expect(EntityWindowState.load(plan, small, store.fields('c')).score(clock + 5)).toEqual(st.score(clock + 5));
    return { st, maxHeld };
  }

  it('a long stream through a big entity (columns compacted and grown many times) equals the reference, and reloads to the same state', () => {
    // several events per 1 ms... 10 ms bucket, now and then out of order
    longStream(0, 7, (x, clock) => ({ clock: clock + (x % 3), t: clock + (x % 3) - (x % 7 === 0 ? x % 9 : 0) }));
  });

  it('a long stream through a small entity (columns grown, moved on inserts, texts renumbered on eviction) equals the reference, and reloads to the same state', () => {
    // ~3 events per ms: ~200 held in the 70 ms retention; mostly out of order (within the
    // lateness), so it stays small however many it holds.
    const { st, maxHeld } = longStream(1e9, 11, (x, clock) => {
      const now = x % 3 === 0 ? clock + 1 : clock;
      return { clock: now, t: now - ((x >> 8) % 12) };
    });
    expect(st.big).toBe(false);
    expect(maxHeld).toBeGreaterThan(150);
  });

  it('a small entity whose events come in event-time order becomes big past 128 events, one out of order does not', () => {
    const set = activitySet(1000, 0);
    const plan = setPlan(set, valueNames(set), 4, 3_600_000);
    for (const inOrder of [true, false]) {
      const ref = new ReferenceStreamingState([set]);
      const st = EntityWindowState.load(plan, 1e9, []);
      let x = 5;
      for (let offset = 0; offset < 140; offset++) {
        x = (x * 48271) % 2147483647;
        const t = 1_000_000 + (inOrder ? offset / 4 : 35 - (offset % 36));
        const values = [String(x % 500), `m${x % 7}`];
        const [want] = ref.apply('t', 0, [{ offset, eventTime: t, entities: ['c'], values: [values] }]);
        expect(st.score(t)).toEqual(want.values[0]);
        st.apply(t, values);
        expect(st.big).toBe(inOrder && st.heldEvents > 128);
      }
      expect(st.heldEvents).toBe(140);
    }
  });

  it('stores a bucket\'s events in O(log n) fragments, merged like a binary counter', () => {
    const set = activitySet(0, 1e9);
    const plan = setPlan(set, valueNames(set), 60, 3_600_000);
    const st = EntityWindowState.load(plan, 4, []);
    const store = new FakeStore();
    for (let i = 0; i < 1000; i++) {
      st.apply(1_000_000 + (i % 5) / 10, [String(i), `m${i % 3}`]); // one 5 ms bucket
      store.write('c', st);
    }
    const fragments = [...store.hashes.get('c')!.keys()].filter((f) => f.startsWith('b'));
    expect(fragments.length).toBeLessThanOrEqual(Math.ceil(Math.log2(1000)) + 1);
    expect(store.storedEvents('c')).toBe(1000);
    expect(EntityWindowState.load(plan, 4, store.fields('c')).score(1_000_001)).toEqual(st.score(1_000_001));
  });

  it('reads an event\'s values from any place of a batch\'s columns and writes its scores into any place, touching nothing around them', () => {
    const set = activitySet(1e9, 1e9);
    const plan = setPlan(set, valueNames(set), 60, 3_600_000);
    const width = set.fields.length;
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 200 }), fc.integer({ min: -50, max: 500 }), fc.integer({ min: 0, max: 4 })), { minLength: 1, maxLength: 60 }), fc.constantFrom(1024, 4), fc.nat(5), (evs, small, pad) => {
        const alone = EntityWindowState.load(plan, small, []);
        const inBatch = EntityWindowState.load(plan, small, []);
        // The batch's columns: other events' values around this one's (as the streaming state lays them out).
        const columns: Array<string | number> = Array.from({ length: pad + plan.slots + 3 }, (_, i) => `other-${i}`);
        const scores = new Float64Array(pad + width + 2).fill(-123.5);
        for (const [dt, amount, m] of evs) {
          const t = 1_000 + dt;
          inBatch.scoreInto(t, scores, pad);
          expect(Array.from(scores.subarray(pad, pad + width))).toEqual(alone.score(t));
          expect([...scores.subarray(0, pad), ...scores.subarray(pad + width)].every((x) => x === -123.5)).toBe(true);
          columns[pad] = String(amount);
          columns[pad + 1] = `m${m}`;
          alone.apply(t, [String(amount), `m${m}`]);
          inBatch.apply(t, columns, pad);
        }
        expect(inBatch.score(1_300)).toEqual(alone.score(1_300));
        expect(inBatch.heldEvents).toBe(alone.heldEvents);
      }),
    );
  });

  it('takes a slot value as a number or as its String() alike (scores, stored rows; a number in a distinct slot counts as its text)', () => {
    // amount read as a number; merchantId as a distinct value, here given numbers too
    const set = activitySet(1e9, 1e9);
    const plan = setPlan(set, valueNames(set), 60, 3_600_000);
    const value = fc.oneof(fc.double(), fc.constantFrom(-0, 0, 1e21, -7e-7, 1 / 3, Number.NaN, Infinity, -Infinity));
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 200 }), value, fc.integer({ min: 0, max: 4 })), { minLength: 1, maxLength: 60 }), fc.constantFrom(1024, 4), (evs, small) => {
        const asNumber = EntityWindowState.load(plan, small, []);
        const asText = EntityWindowState.load(plan, small, []);
        const a = new FakeStore();
        const b = new FakeStore();
        for (const [dt, amount, m] of evs) {
          const t = 1_000 + dt;
          expect(asNumber.score(t)).toEqual(asText.score(t));
          asNumber.apply(t, [amount, m + 0.5]);
          asText.apply(t, [String(amount), String(m + 0.5)]);
        }
        a.write('c', asNumber);
        b.write('c', asText);
        const rows = (s: FakeStore) => [...s.hashes.get('c')!].filter(([f]) => f.startsWith('b'));
        expect(rows(a)).toEqual(rows(b));
        expect(asNumber.score(1_300)).toEqual(asText.score(1_300));
      }),
    );
  });

  it('writes each fragment as the JSON text of its rows (texts escaped, numbers as JSON prints them), small or big', () => {
    const set = activitySet(1e9, 1e9);
    const plan = setPlan(set, valueNames(set), 60, 3_600_000);
    const texts = ['m"1', 'back\\slash', 'line\nbreak', 'tab\tend', 'é✓😀', '\u0001ctl', 'lone\ud800', 'plain'];
    const amounts = ['1e21', '-0.5', String(1 / 3), '12', '-7e-7', '0'];
    for (const small of [1024, 0]) {
      const st = EntityWindowState.load(plan, small, []);
      const store = new FakeStore();
      for (let i = 0; i < 40; i++) {
        // out of event-time order, several events per bucket
        st.apply(1_000_000 + ((i * 7) % 13) * 1_000 + (i % 3) / 10, [amounts[i % amounts.length], texts[i % texts.length]]);
        if (i % 3 === 2) store.write('c', st);
      }
      store.write('c', st);
      expect(st.changed).toBe(false); // nothing left to write once taken
      expect(st.big).toBe(small === 0);
      const rows: unknown[][] = [];
      for (const [f, v] of store.hashes.get('c')!) {
        if (!f.startsWith('b')) continue;
        expect(JSON.stringify(JSON.parse(v))).toBe(v);
        rows.push(...(JSON.parse(v) as unknown[][]));
      }
      expect(rows).toHaveLength(40);
      expect(new Set(rows.map((r) => r[3]))).toEqual(new Set(texts));
      expect(new Set(rows.map((r) => r[2]))).toEqual(new Set(amounts.map((a) => String(Number(a)))));
      expect(EntityWindowState.load(plan, small, store.fields('c')).score(1_020_000)).toEqual(st.score(1_020_000));
    }
  });

  it('looks for a value\'s previous and next occurrence only as far as its largest distinct window reaches, with the same counts', () => {
    // One slot counted distinct over a short sliding and a long hopping window: a small entity looks
    // for an inserted event's previous and next occurrence of its value within its time ± the
    // larger window (a farther one counts it as new exactly as none does), through a stream whose
    // events span far more than both windows, out of order, with repeats near and far apart.
    const base = activitySet(200, 1e9);
    const set: StreamingFeatureSetSpec = {
      ...base,
      fields: [
        { name: 'd_short', type: 'long', default: 0, aggregation: 'distinct_count', of: 'merchantId', window: { type: 'sliding', sizeMs: 15 } },
        { name: 'd_long', type: 'long', default: 0, aggregation: 'distinct_count', of: 'merchantId', window: { type: 'hopping', sizeMs: 60, hopMs: 10 } },
        { name: 'n', type: 'long', default: 0, aggregation: 'count', window: { type: 'sliding', sizeMs: 60 } },
      ],
    };
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 30 }), fc.integer({ min: 0, max: 150 }), fc.constantFrom('a', 'b', 'c', 'd')), { minLength: 1, maxLength: 120 }), fc.boolean(), (evs, reload) => {
        const plan = setPlan(set, valueNames(set), 4, 3_600_000);
        const ref = new ReferenceStreamingState([set]);
        const store = new FakeStore();
        let st = EntityWindowState.load(plan, 100_000, []);
        let clock = 1_000_000;
        evs.forEach(([step, back, merchant], offset) => {
          clock += step;
          const t = clock - back;
          const values = ['1', merchant];
          const [want] = ref.apply('t', 0, [{ offset, eventTime: t, entities: ['c'], values: [values] }]);
          expect([st.isLate(t), st.score(t)]).toEqual([want.late[0], want.values[0]]);
          if (!want.late[0]) st.apply(t, values);
          if (reload && offset % 17 === 16) {
            store.write('c', st);
            st = EntityWindowState.load(plan, 100_000, store.fields('c'));
          }
        });
        expect(st.big).toBe(false);
      }),
      { numRuns: 400 },
    );
    // The edges, in both insert orders: a repeat exactly sz - 1 ms after the first occurrence, where
    // the long window (hopping, 60 ms) starts at the first one, so the repeat is not new; one more
    // millisecond either way of the search's bound would count it new.
    for (const order of [[0, 1], [1, 0]]) {
      const plan = setPlan(set, valueNames(set), 4, 3_600_000);
      const ref = new ReferenceStreamingState([set]);
      const st = EntityWindowState.load(plan, 100_000, []);
      const times = [1_000_000, 1_000_059];
      for (const [offset, k] of order.entries()) {
        ref.apply('t', 0, [{ offset, eventTime: times[k], entities: ['c'], values: [['1', 'x']] }]);
        st.apply(times[k], ['1', 'x']);
      }
      const [want] = ref.apply('t', 0, [{ offset: 2, eventTime: 1_000_059, entities: ['c'], values: [['1', 'y']] }]);
      expect(want.values[0]).toEqual([1, 1, 2]); // d_short: the repeat alone in [1_000_045, ...]; d_long: x once in [1_000_000, ...]; n: both
      expect(st.score(1_000_059)).toEqual(want.values[0]);
    }
  });
});
