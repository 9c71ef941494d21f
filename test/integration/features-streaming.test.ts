import * as path from 'node:path';
import fc from 'fast-check';
import Redis, { Cluster } from 'ioredis';
import { Registry } from 'prom-client';
import { TransactionGenerator } from '../../examples/fraud/generator';
import { Enricher, describeVector, type VectorConfig } from '../../src/features/enricher';
import { extractionBase } from '../../src/stages/extraction';
import { FencedError, ReferenceStreamingState, StreamingState, slotGroupOf, streamKeys, type StreamEvent, type StreamResult, type StreamingStateOptions } from '../../src/features/streaming';
import { StreamingMetrics } from '../../src/features/streaming-metrics';
import { decodeStoredVector } from '../../src/features/stored-vector';
import type { StreamingFeatureSetSpec } from '../../src/features/spec';
import { repoRoot } from '../../src/stack/paths';
import { builtinProcessors } from '../../src/stages/builtin';
import { loadTopology } from '../../src/stages/load-topology';
import { redisTargets, type RedisTarget } from '../helpers/dedicated-redis';
import { activitySet } from '../helpers/streaming-sets';
import { uniqueSuffix } from '../helpers/topology';
import { RerunBatchError } from '../../src/util/errors';

const redisUrl = process.env.REDIS_URL!;


/** A second set on another entity, so one script call updates two sets. */
const merchantSet: StreamingFeatureSetSpec = {
  name: 'merchant',
  kind: 'windowed_aggregation',
  version: 1,
  entity: 'merchantId',
  config: { allowedLatenessMs: 15, onLate: 'ignore', replayRetentionMs: 1e9 },
  fields: [{ name: 'm_count', type: 'long', default: 0, aggregation: 'count', window: { type: 'tumbling', sizeMs: 50 } }],
};

const eventArb = fc.record({
  card: fc.constantFrom('c1', 'c2', 'c3'),
  merchant: fc.constantFrom('m1', 'm2', 'm3', 'm4'),
  amount: fc.oneof(fc.integer({ min: -50, max: 500 }), fc.double({ min: -1e6, max: 1e6, noNaN: true, noDefaultInfinity: true })),
  /** Near-monotone clock plus a random backwards jitter: out-of-order events, some beyond the lateness. */
  step: fc.integer({ min: 0, max: 12 }),
  jitter: fc.integer({ min: 0, max: 40 }),
});

function toEvents(raw: Array<{ card: string; merchant: string; amount: number; step: number; jitter: number }>): StreamEvent[] {
  let clock = 1_000_000;
  return raw.map((r, i) => {
    clock += r.step;
    return { offset: i, eventTime: clock - r.jitter, entities: [r.card, r.merchant], values: [[String(r.amount), r.merchant], []] };
  });
}

function cuts(n: number, sizes: number[]): StreamEvent[][] | number[][] {
  const out: number[][] = [];
  let at = 0;
  for (const s of sizes) {
    if (at >= n) break;
    out.push([at, Math.min(n, at + s)]);
    at += s;
  }
  if (at < n) out.push([at, n]);
  return out;
}

/** The same tests on the stack's single Redis and on a 3-node Redis Cluster of their own. */
describe.each(redisTargets())('streaming windowed aggregations on %s', (_label, connect) => {
  let redis: Redis | Cluster;
  let target: RedisTarget;
  beforeAll(async () => {
    target = await connect();
    redis = target.client();
  }, 60_000);
  afterAll(async () => target.stop());
  /** On the Cluster, several slot groups, so the three cards and four merchants spread over the shards. */
  const opts = (extra: StreamingStateOptions = {}): StreamingStateOptions => ({ ...(redis.isCluster ? { slotGroups: 7 } : {}), ...extra });

  it('every aggregation equals a brute-force reference over random out-of-order streams, and replaying offsets changes nothing', async () => {
    await fc.assert(
      // smallEntityEvents: 0 = bucket summaries from the first event, 1000 = always a scan of the
      // stored events, 4 = the switch from one to the other mid-stream.
      // bucketsPerBlock 1..3: windows of 4..12 buckets read whole blocks and edge buckets.
      fc.asyncProperty(fc.array(eventArb, { minLength: 1, maxLength: 60, size: '+1' }), fc.array(fc.integer({ min: 1, max: 15 }), { maxLength: 10 }), fc.integer({ min: 0, max: 30 }), fc.constantFrom(0, 4, 1000), fc.integer({ min: 1, max: 3 }), async (raw, sizes, lateness, small, block) => {
        const sets = [activitySet(lateness), merchantSet];
        const state = new StreamingState(redis, `prop-${uniqueSuffix()}`, sets, opts({ smallEntityEvents: small, bucketsPerBlock: block }));
        const ref = new ReferenceStreamingState(sets);
        const events = toEvents(raw);
        const epoch = await state.takeEpoch('t', 0);
        try {
          for (const [a, b] of cuts(events.length, sizes) as number[][]) {
            const batch = events.slice(a, b);
            const got = await state.apply('t', 0, epoch, batch);
            expect(got).toEqual(ref.apply('t', 0, batch));
            // Replay the same offsets (crash before the Kafka commit): identical vectors, identical state.
            const before = await state.dump();
            expect(await state.apply('t', 0, epoch, batch)).toEqual(got);
            expect(await state.dump()).toEqual(before);
            // A partial replay reaching back into earlier batches, followed by nothing new.
            const from = Math.max(0, a - 3);
            expect(await state.apply('t', 0, epoch, events.slice(from, b))).toEqual(ref.apply('t', 0, events.slice(from, b)));
            expect(await state.dump()).toEqual(before);
          }
          const stats = await state.stats();
          expect(stats['late:activity'] ?? 0).toBe(ref.lateCounts.get('activity') ?? 0);
          expect(stats.applied).toBe(events.length);
        } finally {
          await state.reset();
        }
      }),
      { numRuns: 45 },
    );
  });

  it('two processes taking turns on shared entities from two partitions, with caches down to one entity (by count or by bytes), equal the reference; a restarted process replays bit-identically', async () => {
    let retries = 0;
    await fc.assert(
      // Producers keyed by something else than the entity: one card's events arrive on both
      // partitions, owned by different processes. Each process computes from its in-memory copy;
      // the commit's version check makes it reload what the other changed and compute again.
      fc.asyncProperty(fc.array(eventArb, { minLength: 1, maxLength: 50, size: '+1' }), fc.array(fc.integer({ min: 0, max: 1 }), { minLength: 50, maxLength: 50 }), fc.array(fc.integer({ min: 1, max: 8 }), { maxLength: 12 }), fc.integer({ min: 0, max: 30 }), fc.constantFrom(1, 2, 100_000), fc.constantFrom(undefined, 1, 6_000), async (raw, partOf, sizes, lateness, cacheEntities, cacheBytes) => {
        const sets = [activitySet(lateness), merchantSet];
        const ns = `procs-${uniqueSuffix()}`;
        // Bounded by entities or by estimated bytes (1: only the entity just touched stays).
        const procs = [new StreamingState(redis, ns, sets, opts({ cacheEntities, cacheBytes })), new StreamingState(redis, ns, sets, opts({ cacheEntities, cacheBytes }))];
        const ref = new ReferenceStreamingState(sets);
        const next = [0, 0];
        const events = toEvents(raw).map((e, i) => ({ p: partOf[i], e: { ...e, offset: next[partOf[i]]++ } }));
        try {
          const epochs = [await procs[0].takeEpoch('t', 0), await procs[1].takeEpoch('t', 1)];
          // Runs of one partition, cut further by the random sizes, applied in global order.
          const runs: Array<{ p: number; batch: StreamEvent[] }> = [];
          let k = 0;
          for (const { p, e } of events) {
            const last = runs[runs.length - 1];
            if (last && last.p === p && last.batch.length < (sizes[k % Math.max(1, sizes.length)] ?? 8)) last.batch.push(e);
            else {
              runs.push({ p, batch: [e] });
              k++;
            }
          }
          const got: StreamResult[][] = [];
          for (const { p, batch } of runs) {
            const r = await procs[p].apply('t', p, epochs[p], batch);
            expect(r).toEqual(ref.apply('t', p, batch));
            got.push(r);
          }
          // A restarted process (nothing in memory) replays every batch: the stored vectors, unchanged state.
          const before = await procs[0].dump();
          const restarted = new StreamingState(redis, ns, sets, opts({ cacheEntities, cacheBytes }));
          for (let i = 0; i < runs.length; i++) expect(await restarted.apply('t', runs[i].p, epochs[runs[i].p], runs[i].batch)).toEqual(got[i]);
          expect(await procs[0].dump()).toEqual(before);
          retries += procs[0].staleRetries + procs[1].staleRetries;
        } finally {
          await procs[0].reset();
        }
      }),
      { numRuns: 30 },
    );
    expect(retries).toBeGreaterThan(0); // the version check did make processes reload and recompute
  });

  it('entities with any text (non-ASCII, a NUL, the same text in two sets) are stored under their keys and reloaded by another process', async () => {
    const sets = [activitySet(10), merchantSet];
    const ns = `texts-${uniqueSuffix()}`;
    const a = new StreamingState(redis, ns, sets, opts());
    const ref = new ReferenceStreamingState(sets);
    // Entity texts a per-set cache key must keep apart: one text as a card and as a merchant, a NUL
    // inside one (the cache's set separator), multi-byte UTF-8 (the key is written as bytes).
    const pairs: Array<[string, string]> = [['x', 'x'], ['1\u0000x', 'x'], ['kärtchen-€', '1\u0000x'], ['x', 'kärtchen-€'], ['\u{1F4B3}', 'x']];
    let offset = 0;
    const batch = (): StreamEvent[] => pairs.map(([card, merchant], i) => ({ offset: offset++, eventTime: 1_000 + offset * 3 + i, entities: [card, merchant], values: [['7', merchant], []] }));
    try {
      const epoch = await a.takeEpoch('t', 0);
      for (let round = 0; round < 3; round++) {
        const events = batch();
        expect(await a.apply('t', 0, epoch, events)).toEqual(ref.apply('t', 0, events));
      }
      // Each (set, entity) has its hash under the documented key.
      for (const [card, merchant] of pairs) {
        for (const [si, entity] of [[0, card], [1, merchant]] as const) {
          const key = streamKeys.entity(ns, slotGroupOf(entity, a.slotGroups), sets[si].name, entity);
          expect(await redis.exists(key)).toBe(1);
        }
      }
      // A fresh process holds nothing in memory: it loads every entity from those keys.
      const b = new StreamingState(redis, ns, sets, opts());
      const eb = await b.takeEpoch('t', 0);
      const events = batch();
      expect(await b.apply('t', 0, eb, events)).toEqual(ref.apply('t', 0, events));
    } finally {
      await a.reset();
    }
  });

  it('a process that stopped loading entities it does not hold (they kept being new) recomputes when one was stored by another process', async () => {
    const sets = [activitySet(10)];
    const ns = `guess-${uniqueSuffix()}`;
    // One slot group, so the checkpoint is known after the first batch and only entities are guessed.
    const a = new StreamingState(redis, ns, sets, { slotGroups: 1 });
    const b = new StreamingState(redis, ns, sets, { slotGroups: 1 });
    const ref = new ReferenceStreamingState(sets);
    try {
      const [ea, eb] = [await a.takeEpoch('t', 0), await b.takeEpoch('t', 1)];
      const next = [0, 0];
      let clock = 1000;
      const one = (card: string, p: number): StreamEvent => ({ offset: next[p]++, eventTime: clock++, entities: [card], values: [['5', 'm1']] });
      for (let i = 0; i < 10; i++) {
        const batch = [one(`new-${i}`, 0)];
        expect(await a.apply('t', 0, ea, batch)).toEqual(ref.apply('t', 0, batch));
      }
      const calls = a.calls;
      const fromB = [one('shared', 1), one('shared', 1)];
      expect(await b.apply('t', 1, eb, fromB)).toEqual(ref.apply('t', 1, fromB));
      const fromA = [one('shared', 0)];
      const got = await a.apply('t', 0, ea, fromA);
      expect(got).toEqual(ref.apply('t', 0, fromA));
      expect(got[0].values[0][0]).toBe(2); // b's two events are counted
      expect(a.staleRetries).toBe(1);
      expect(a.calls - calls).toBe(3); // the guessed commit (refused), the load, the commit
    } finally {
      await a.reset();
    }
  });

  it('a replay that overlaps already-applied offsets applies only the new ones (no double counting)', async () => {
    const sets = [activitySet(10)];
    const state = new StreamingState(redis, `overlap-${uniqueSuffix()}`, sets, opts());
    const events = toEvents(Array.from({ length: 20 }, (_, i) => ({ card: 'c1', merchant: `m${i % 3}`, amount: i, step: 3, jitter: i % 4 }))).map((e) => ({ ...e, entities: [e.entities[0]], values: [e.values[0]] }));
    const epoch = await state.takeEpoch('t', 0);
    const once = new StreamingState(redis, `overlap-ref-${uniqueSuffix()}`, sets, opts());
    const e2 = await once.takeEpoch('t', 0);
    try {
      const straight = await once.apply('t', 0, e2, events);
      const first = await state.apply('t', 0, epoch, events.slice(0, 12));
      const second = await state.apply('t', 0, epoch, events.slice(5)); // 5..11 again, then 12..19
      expect([...first, ...second.slice(7)]).toEqual(straight);
      expect(second.slice(0, 7)).toEqual(first.slice(5));
      expect(await state.checkpoint('t', 0)).toBe(19);
      expect((await state.stats()).applied).toBe(20);
    } finally {
      await state.reset();
      await once.reset();
    }
  });

  it('fences off a holder of an older epoch: its update fails with FencedError and changes nothing', async () => {
    const state = new StreamingState(redis, `fence-${uniqueSuffix()}`, [activitySet(10)], opts());
    try {
      const old = await state.takeEpoch('t', 3);
      const ev: StreamEvent[] = [{ offset: 0, eventTime: 100, entities: ['c1'], values: [['1', 'm1']] }];
      await state.apply('t', 3, old, ev);
      const current = await state.takeEpoch('t', 3); // the partition was reassigned
      const before = await state.dump();
      await expect(state.apply('t', 3, old, [{ ...ev[0], offset: 1, eventTime: 101 }])).rejects.toBeInstanceOf(FencedError);
      expect(await state.dump()).toEqual(before);
      const [r] = await state.apply('t', 3, current, [{ ...ev[0], offset: 1, eventTime: 101 }]);
      expect(r.values[0][0]).toBe(1); // count of earlier events in (71, 101]
    } finally {
      await state.reset();
    }
  });

  it('a partition taken over by another process fences the old owner in every slot group: none of its (partition, slot group) commits lands, and the new owner continues from the last committed batch', async () => {
    const sets = [activitySet(10)];
    const ns = `takeover-${uniqueSuffix()}`;
    // Seven slot groups on both targets (on the Cluster they sit on all three shards).
    const oldOwner = new StreamingState(redis, ns, sets, { slotGroups: 7 });
    const newOwner = new StreamingState(redis, ns, sets, { slotGroups: 7 });
    const ref = new ReferenceStreamingState(sets);
    const cards = Array.from({ length: 40 }, (_, i) => `card-${i}`);
    const batch = (from: number, n: number): StreamEvent[] => Array.from({ length: n }, (_, i) => ({ offset: from + i, eventTime: 1000 + 3 * (from + i), entities: [cards[(from + i) % cards.length]], values: [[String(from + i), `m${i % 5}`]] }));
    try {
      expect(new Set(cards.map((c) => slotGroupOf(c, 7))).size).toBe(7);
      const stale = await oldOwner.takeEpoch('t', 2);
      const first = batch(0, 80);
      expect(await oldOwner.apply('t', 2, stale, first)).toEqual(ref.apply('t', 2, first));
      // The group gives the partition to another process; the old one, frozen meanwhile, wakes up
      // with a batch touching every slot group, its caches still warm.
      const current = await newOwner.takeEpoch('t', 2);
      expect(current).toBeGreaterThan(stale);
      const before = await oldOwner.dump();
      const second = batch(80, 80);
      await expect(oldOwner.apply('t', 2, stale, second)).rejects.toBeInstanceOf(FencedError);
      await expect(oldOwner.apply('t', 2, stale, batch(80, 1))).rejects.toBeInstanceOf(FencedError); // and again, cold or warm
      expect(await oldOwner.dump()).toEqual(before);
      expect(await oldOwner.checkpoint('t', 2)).toBe(79);
      // The new owner (nothing in memory) gets the vectors an uninterrupted owner would have.
      expect(await newOwner.apply('t', 2, current, second)).toEqual(ref.apply('t', 2, second));
      expect(await newOwner.checkpoint('t', 2)).toBe(159);
      const groups = new Set(Object.keys(await newOwner.dump()).map((k) => /:ckpt:t:2$/.test(k) && k).filter(Boolean));
      expect(groups.size).toBe(7); // a checkpoint per (partition, slot group)
    } finally {
      oldOwner.close();
      await newOwner.reset();
    }
  });

  it('trims state beyond the retention without changing non-late vectors', async () => {
    const sets = [activitySet(5, 0)];
    const trimmed = new StreamingState(redis, `trim-${uniqueSuffix()}`, sets, opts({ smallEntityEvents: 0, bucketsPerBlock: 2 }));
    const ref = new ReferenceStreamingState(sets);
    try {
      const epoch = await trimmed.takeEpoch('t', 0);
      const events = toEvents(Array.from({ length: 200 }, (_, i) => ({ card: 'c1', merchant: `m${i % 7}`, amount: i * 1.5, step: 4, jitter: i % 3 })));
      const one = events.map((e) => ({ ...e, entities: [e.entities[0]], values: [e.values[0]] }));
      const got = await trimmed.apply('t', 0, epoch, one);
      const want = ref.apply('t', 0, one);
      got.forEach((g, i) => {
        if (!want[i].late[0]) expect(g).toEqual(want[i]);
      });
      // Kept: ~ (60 ms max window + 5 ms lateness) / 4 ms per event; buckets of 5 ms.
      // The entity's hash: a version stamp and its buckets' event fragments (JSON rows).
      const dump = await trimmed.dump();
      const hash = Object.entries(dump).find(([k]) => k.endsWith(':activity:2:c1'))![1] as Record<string, string>;
      const fragments = Object.entries(hash).filter(([f]) => f.startsWith('b'));
      const kept = fragments.reduce((n, [, hex]) => n + (JSON.parse(Buffer.from(hex, 'hex').toString()) as unknown[]).length, 0);
      expect(kept).toBeLessThan(22);
      const size = await trimmed.stateSize();
      expect(size.activity.events).toBe(kept);
      expect(size.activity.buckets).toBeLessThan(16);
      expect(size.activity.buckets).toBeGreaterThan(10);
    } finally {
      await trimmed.reset();
    }
  });
  it('a replay after an upgrade is scored from the stored vectors the older version wrote as text', async () => {
    const sets = [activitySet(10), merchantSet];
    const state = new StreamingState(redis, `upgrade-${uniqueSuffix()}`, sets, opts());
    try {
      const epoch = await state.takeEpoch('t', 0);
      const events = toEvents(Array.from({ length: 24 }, (_, i) => ({ card: `c${i % 3}`, merchant: `m${i % 4}`, amount: i * 1.1, step: 3, jitter: i % 5 })));
      const first = await state.apply('t', 0, epoch, events);
      // Rewrite every stored vector in the form an older version wrote (`late:v1,v2,...` per set).
      const rewritten = new Set<number>(); // an event of two slot groups (card, merchant) is stored in each
      for (let g = 0; g < state.slotGroups; g++) {
        const key = streamKeys.results(state.namespace, g, 't', 0);
        const members = await redis.zrange(key, 0, -1, 'WITHSCORES');
        for (let m = 0; m < members.length; m += 2) {
          const [offsets, parts] = JSON.parse(members[m]) as [number[], string[]];
          const legacy = parts.map((p) => p.split(';').map((x) => (x === '' ? '' : `${x[0]}:${decodeStoredVector(x).values.join(',')}`)).join(';'));
          await redis.zrem(key, members[m]);
          await redis.zadd(key, members[m + 1], JSON.stringify([offsets, legacy]));
          offsets.forEach((o) => rewritten.add(o));
        }
      }
      expect(rewritten.size).toBe(events.length);
      // A new process (nothing cached) replays the batch: the old text gives the same vectors.
      const restarted = new StreamingState(redis, state.namespace, sets, opts());
      expect(await restarted.apply('t', 0, epoch, events)).toEqual(first);
      expect((await restarted.stats()).replay_missed ?? 0).toBe(0);
    } finally {
      await state.reset();
    }
  });

  it('a replay older than the stored vectors is scored from the current state, counted, and changes nothing', async () => {
    const sets = [activitySet(10)];
    const state = new StreamingState(redis, `limit-${uniqueSuffix()}`, sets, opts({ replayRetentionOffsets: 5 }));
    const ref = new ReferenceStreamingState(sets);
    const metrics = StreamingMetrics.for(new Registry());
    const counted = new StreamingState(redis, state.namespace, sets, opts({ replayRetentionOffsets: 5, metrics }));
    try {
      const epoch = await state.takeEpoch('t', 0);
      const events = toEvents(Array.from({ length: 30 }, (_, i) => ({ card: 'c1', merchant: `m${i % 3}`, amount: i, step: 3, jitter: 0 }))).map((e) => ({ ...e, entities: [e.entities[0]], values: [e.values[0]] }));
      const want = ref.apply('t', 0, events);
      // Vectors are stored per chunk and trimmed in whole chunks: chunks of 5 keep exactly 25..29.
      const got: StreamResult[] = [];
      for (let i = 0; i < events.length; i += 5) got.push(...(await state.apply('t', 0, epoch, events.slice(i, i + 5))));
      expect(got).toEqual(want);
      const before = await state.dump();
      // Offsets 25..29 are within the retention: identical. 0..24 are not: scored as of now.
      const replay = await counted.apply('t', 0, epoch, events);
      expect(replay.slice(25)).toEqual(want.slice(25));
      expect(replay[0].values[0][0]).not.toBe(want[0].values[0][0]); // count as of the end of the stream, not of offset 0
      expect(await state.dump()).toEqual(before);
      expect((await state.stats()).replay_missed).toBe(25);
      expect((await metrics.replayMissed.get()).values[0].value).toBe(25);
    } finally {
      counted.close();
      await state.reset();
    }
  });

  it('reports late events by policy, evictions and state size as metrics', async () => {
    const registry = new Registry();
    const metrics = StreamingMetrics.for(registry);
    const set = { ...activitySet(5, 0), config: { allowedLatenessMs: 5, onLate: 'dead_letter' as const, replayRetentionMs: 0 } };
    const state = new StreamingState(redis, `metrics-${uniqueSuffix()}`, [set], opts({ metrics, smallEntityEvents: 0 }));
    try {
      const epoch = await state.takeEpoch('t', 0);
      const events: StreamEvent[] = Array.from({ length: 100 }, (_, i) => ({ offset: i, eventTime: 1000 + i * 4, entities: ['c1'], values: [[String(i), 'm1']] }));
      events.push({ offset: 100, eventTime: 1000, entities: ['c1'], values: [['1', 'm1']] }); // 396 ms late
      await state.apply('t', 0, epoch, events);
      const text = await registry.metrics();
      expect(text).toMatch(new RegExp(`tributary_streaming_late_events_total\\{namespace="${state.namespace}",set="activity",policy="dead_letter"\\} 1`));
      const evicted = (await metrics.evictions.get()).values.filter((v) => v.labels.namespace === state.namespace);
      expect(evicted.find((v) => v.labels.kind === 'event')!.value).toBeGreaterThan(70);
      expect(evicted.find((v) => v.labels.kind === 'bucket')!.value).toBeGreaterThan(60);
      const size = await state.stateSize();
      expect(text).toMatch(new RegExp(`tributary_streaming_state_entries\\{namespace="${state.namespace}",set="activity",kind="event"\\} ${size.activity.events}\\n`));
      expect(size.activity.events).toBe(100 - evicted.find((v) => v.labels.kind === 'event')!.value);
      // The in-memory cache: one entity, its estimated bytes, nothing dropped (no bound reached).
      const cache = state.cacheSize();
      expect(cache.entities).toBe(1);
      expect(cache.bytes).toBeGreaterThan(size.activity.events * 100);
      expect(text).toMatch(new RegExp(`tributary_streaming_cache_bytes\\{namespace="${state.namespace}"\\} ${cache.bytes}\\n`));
      expect(text).toMatch(new RegExp(`tributary_streaming_cache_entities\\{namespace="${state.namespace}"\\} 1\\n`));
    } finally {
      state.close();
      await state.reset();
    }
  });

  it('keeps a namespace on its slot-group count', async () => {
    const ns = `layout-${uniqueSuffix()}`;
    const a = new StreamingState(redis, ns, [activitySet(10)], { slotGroups: 4 });
    try {
      await a.init();
      await new StreamingState(redis, ns, [activitySet(10)], { slotGroups: 4 }).init();
      await expect(new StreamingState(redis, ns, [activitySet(10)], { slotGroups: 5 }).init()).rejects.toThrow(/created with 'incremental-v3 slotGroups=4'/);
    } finally {
      await a.reset();
    }
  });

  it('the enricher gives an event without the streaming entity the set\'s declared defaults, and applies nothing for it', async () => {
    const root = repoRoot();
    const topology = loadTopology(path.join(root, 'topologies/fraud-detection.yaml'), { registry: builtinProcessors(), baseDir: root });
    const cfg = topology.spec.stages[0].config as unknown as VectorConfig;
    const base = extractionBase(cfg, { topology });
    const vector = describeVector({ ...cfg, features: ['card_activity'] }, topology.spec.features, base);
    const set = topology.spec.features!.sets.find((x) => x.name === 'card_activity') as StreamingFeatureSetSpec;
    const enricher = new Enricher(vector, { redis, namespace: `absent-${uniqueSuffix()}` });
    try {
      await enricher.init();
      const [a, b, c] = new TransactionGenerator({ seed: 8 }).take(3).map((g) => g.tx);
      const card = a.cardId;
      // The same card before and after an event without one: the middle event counts for nothing.
      const batch = [a, { ...b, cardId: '' }, { ...c, cardId: card, eventTime: a.eventTime + 1000 }].map((tx, k) => ({ event: tx, eventTime: tx.eventTime, topic: 't', partition: 0, offset: k }));
      const out = (await enricher.enrich(batch)) as Array<{ values: number[] }>;
      const width = base.names.length;
      expect(out[1].values.slice(width)).toEqual(set.fields.map((f) => Number(f.default)));
      const count = set.fields.findIndex((f) => f.aggregation === 'count');
      expect(out[2].values[width + count]).toBe(1); // a's event only
    } finally {
      enricher.close();
      await enricher.streaming!.reset();
    }
  });

  it('the enricher gives a batch mixing partitions the vectors it gives each partition\'s records alone', async () => {
    const root = repoRoot();
    const topology = loadTopology(path.join(root, 'topologies/fraud-detection.yaml'), { registry: builtinProcessors(), baseDir: root });
    const cfg = topology.spec.stages[0].config as unknown as VectorConfig;
    const vector = describeVector({ ...cfg, features: ['card_activity'] }, topology.spec.features, extractionBase(cfg, { topology }));
    const mixed = new Enricher(vector, { redis, namespace: `mix-${uniqueSuffix()}` });
    const alone = new Enricher(vector, { redis, namespace: `alone-${uniqueSuffix()}` });
    try {
      await Promise.all([mixed.init(), alone.init()]);
      // Keyed by card, as a repartitioned input is: a card's events stay on one partition, in order;
      // each partition's offsets in a range of its own (a checkpoint is per partition).
      // Nine cards, so each comes back batch after batch.
      const txs = new TransactionGenerator({ seed: 5 }).take(300).map((g, k) => ({ ...g.tx, cardId: `card-${k % 9}` }));
      const offsets = [0, 0, 0];
      const inputs = txs.map((tx) => {
        const partition = slotGroupOf(tx.cardId, 3);
        return { event: tx, eventTime: tx.eventTime, topic: 't', partition, offset: partition * 100_000 + offsets[partition]++ };
      });
      for (let i = 0; i < inputs.length; i += 60) {
        const batch = inputs.slice(i, i + 60);
        const got = await mixed.enrich(batch);
        const want = new Array(batch.length);
        for (const p of [0, 1, 2]) {
          const idx = batch.map((r, k) => (r.partition === p ? k : -1)).filter((k) => k >= 0);
          const res = await alone.enrich(idx.map((k) => batch[k]));
          idx.forEach((k, x) => (want[k] = res[x]));
        }
        expect(got).toEqual(want);
      }
    } finally {
      mixed.close();
      alone.close();
      await Promise.all([mixed.streaming!.reset(), alone.streaming!.reset()]);
    }
  });

  it('with a scope (the engine\'s chain) the enricher writes the state behind the vectors: the same vectors, one commit per (partition, slot group) handed to the scope and landed once awaited; a commit found stale rejects with RerunBatchError and the batch run again gives the vectors of the awaited path', async () => {
    const root = repoRoot();
    const topology = loadTopology(path.join(root, 'topologies/fraud-detection.yaml'), { registry: builtinProcessors(), baseDir: root });
    const cfg = topology.spec.stages[0].config as unknown as VectorConfig;
    const vector = describeVector({ ...cfg, features: ['card_activity'] }, topology.spec.features, extractionBase(cfg, { topology }));
    const ns = `behind-${uniqueSuffix()}`;
    const registry = new Registry();
    const behind = new Enricher(vector, { redis, namespace: ns, metricsRegistry: registry });
    // Another process of the same stage (one card's events on two partitions: producers not keyed by it).
    const other = new Enricher(vector, { redis, namespace: ns });
    // The reference: the same events in the same order, every commit awaited in place.
    const awaited = new Enricher(vector, { redis, namespace: `awaited-${uniqueSuffix()}` });
    try {
      await Promise.all([behind.init(), other.init(), awaited.init()]);
      const txs = new TransactionGenerator({ seed: 11 }).take(200).map((g, k) => ({ ...g.tx, cardId: `card-${k % 7}` }));
      const groups = behind.streaming!.slotGroups;
      for (let i = 0; i < 200; i += 50) {
        const batch = txs.slice(i, i + 50).map((tx, k) => ({ event: tx, eventTime: tx.eventTime, topic: 't', partition: 0, offset: i + k }));
        const works: Array<Promise<unknown>> = [];
        const got = await behind.enrich(batch, { beforeCommit: (w) => works.push(w) });
        expect(got).toEqual(await awaited.enrich(batch));
        expect(works.length).toBe(new Set(batch.map((b) => slotGroupOf(b.event.cardId, groups))).size);
        await Promise.all(works);
        // Landed: each group's checkpoint is the last offset of the batch's events in it.
        const lastOf = new Map<number, number>();
        for (const b of batch) lastOf.set(slotGroupOf(b.event.cardId, groups), b.offset);
        for (const [g, last] of lastOf) expect(await redis.get(streamKeys.ckpt(ns, g, 't', 0))).toBe(String(last));
      }
      expect(behind.streaming!.commits).toBe(new Set(txs.map((tx) => slotGroupOf(tx.cardId, groups))).size * 4);
      // The other process applies an event of card-0 from partition 1: the copy `behind` holds is now stale.
      const elsewhere = [{ event: { ...txs[0], transactionId: 'elsewhere', eventTime: txs[199].eventTime + 1 }, eventTime: txs[199].eventTime + 1, topic: 't', partition: 1, offset: 0 }];
      expect(await other.enrich(elsewhere)).toEqual(await awaited.enrich(elsewhere));
      const next = [{ event: { ...txs[7], eventTime: txs[199].eventTime + 2 }, eventTime: txs[199].eventTime + 2, topic: 't', partition: 0, offset: 200 }];
      const works: Array<Promise<unknown>> = [];
      const stale = (await behind.enrich(next, { beforeCommit: (w) => works.push(w) })) as Array<{ values: number[] }>;
      expect(works.length).toBe(1);
      await expect(works[0]).rejects.toBeInstanceOf(RerunBatchError);
      expect(behind.streaming!.staleRetries).toBe(1);
      expect(await registry.metrics()).toContain(`tributary_streaming_stale_commits_total{namespace="${ns}",outcome="rerun"} 1\n`);
      // The batch again, as the chain reruns it (no scope): computed from the stored state, the other's event counted.
      const rerun = (await behind.enrich(next)) as Array<{ values: number[] }>;
      expect(rerun).toEqual(await awaited.enrich(next));
      const countAt = vector.names.indexOf('card_txn_count_24h');
      expect(countAt).toBeGreaterThanOrEqual(0);
      expect(rerun[0].values[countAt]).toBe(stale[0].values[countAt] + 1); // what the refused values lacked
    } finally {
      behind.close();
      other.close();
      awaited.close();
      await Promise.all([behind.streaming!.reset(), awaited.streaming!.reset()]);
    }
  });

  if (_label.includes('Cluster')) {
    it('the enricher gives the same streaming features on the Cluster as on a single Redis', async () => {
      const root = repoRoot();
      const topology = loadTopology(path.join(root, 'topologies/fraud-detection.yaml'), { registry: builtinProcessors(), baseDir: root });
      const cfg = topology.spec.stages[0].config as unknown as VectorConfig;
      const vector = describeVector({ ...cfg, features: ['card_activity'] }, topology.spec.features, extractionBase(cfg, { topology }));
      const single = new Redis(redisUrl);
      const registry = new Registry();
      const singleRegistry = new Registry();
      const onCluster = new Enricher(vector, { redis, namespace: `enrich-c-${uniqueSuffix()}`, metricsRegistry: registry });
      const onSingle = new Enricher(vector, { redis: single, namespace: `enrich-s-${uniqueSuffix()}`, metricsRegistry: singleRegistry });
      try {
        await Promise.all([onCluster.init(), onSingle.init()]);
        const txs = new TransactionGenerator({ seed: 3 }).take(600).map((g) => g.tx);
        for (let i = 0; i < txs.length; i += 100) {
          const batch = txs.slice(i, i + 100).map((tx, k) => ({ event: tx, eventTime: tx.eventTime, topic: 't', partition: (i / 100) % 2, offset: i + k }));
          expect(await onCluster.enrich(batch)).toEqual(await onSingle.enrich(batch));
        }
        expect(onCluster.streaming!.slotGroups).toBe(16);
        expect(await registry.metrics()).toMatch(/tributary_streaming_redis_seconds_count\{namespace="enrich-c-[^"]+"\} 6/);
        // One commit per (partition, slot group) chunk: six batches of one partition each, over
        // one group on a single Redis and over most of the 16 on the Cluster.
        expect(onSingle.streaming!.commits).toBe(6);
        expect(await singleRegistry.metrics()).toMatch(/tributary_streaming_commit_seconds_count\{namespace="enrich-s-[^"]+"\} 6\n/);
        expect(onCluster.streaming!.commits).toBeGreaterThan(6 * 8);
        expect(await registry.metrics()).toMatch(new RegExp(`tributary_streaming_commit_seconds_count\\{namespace="enrich-c-[^"]+"\\} ${onCluster.streaming!.commits}\\n`));
      } finally {
        onCluster.close();
        await Promise.all([onCluster.streaming!.reset(), onSingle.streaming!.reset()]);
        single.disconnect();
      }
    });

    it('spreads one stage\'s state over the shards, each script call within one slot', async () => {
      const sets = [activitySet(10)];
      const state = new StreamingState(redis, `spread-${uniqueSuffix()}`, sets);
      const ref = new ReferenceStreamingState(sets);
      try {
        expect(state.slotGroups).toBe(16);
        const epoch = await state.takeEpoch('t', 0);
        const events: StreamEvent[] = Array.from({ length: 200 }, (_, i) => ({ offset: i, eventTime: 1000 + i, entities: [`card-${i % 50}`], values: [[String(i), `m${i % 7}`]] }));
        expect(await state.apply('t', 0, epoch, events)).toEqual(ref.apply('t', 0, events));
        const masters = (redis as Cluster).nodes('master');
        const perNode = await Promise.all(masters.map(async (node) => (await node.keys(`tributary:st:{${state.namespace}:*`)).length));
        expect(perNode.filter((n) => n > 0).length).toBe(3);
        expect(await state.checkpoint('t', 0)).toBe(199);
      } finally {
        await state.reset();
      }
    });
  }
});
