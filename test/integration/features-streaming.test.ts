import fc from 'fast-check';
import Redis from 'ioredis';
import { FencedError, ReferenceStreamingState, StreamingState, type StreamEvent } from '../../src/features/streaming';
import type { StreamingFeatureSetSpec } from '../../src/features/spec';
import { uniqueSuffix } from '../helpers/topology';

const redisUrl = process.env.REDIS_URL!;

/** One set exercising every aggregation and window type; small windows so random streams hit their edges. */
function activitySet(allowedLatenessMs: number, replayRetentionMs = 1e9): StreamingFeatureSetSpec {
  return {
    name: 'activity',
    kind: 'windowed_aggregation',
    version: 1,
    entity: 'cardId',
    stalenessMs: 40,
    config: { allowedLatenessMs, onLate: 'ignore', replayRetentionMs },
    fields: [
      { name: 'n_slide', type: 'long', default: 0, aggregation: 'count', window: { type: 'sliding', sizeMs: 30 } },
      { name: 'sum_hop', type: 'double', default: 0, aggregation: 'sum', of: 'amount', window: { type: 'hopping', sizeMs: 40, hopMs: 10 } },
      { name: 'mean_tumble', type: 'double', default: -1, aggregation: 'mean', of: 'amount', window: { type: 'tumbling', sizeMs: 25 } },
      { name: 'min_slide', type: 'double', default: -2, aggregation: 'min', of: 'amount', window: { type: 'sliding', sizeMs: 50 } },
      { name: 'max_slide', type: 'double', default: -3, aggregation: 'max', of: 'amount', window: { type: 'sliding', sizeMs: 20 } },
      { name: 'distinct_merchants', type: 'long', default: 0, aggregation: 'distinct_count', of: 'merchantId', window: { type: 'sliding', sizeMs: 60 } },
      { name: 'last_amount', type: 'double', default: -4, aggregation: 'last', of: 'amount' },
      { name: 'since_prev', type: 'long', default: -5, aggregation: 'time_since_prev' },
    ],
  };
}

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

describe('streaming windowed aggregations in Redis (real Redis)', () => {
  let redis: Redis;
  beforeAll(() => {
    redis = new Redis(redisUrl);
  });
  afterAll(() => redis.disconnect());

  it('every aggregation equals a brute-force reference over random out-of-order streams, and replaying offsets changes nothing', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(eventArb, { minLength: 1, maxLength: 60 }), fc.array(fc.integer({ min: 1, max: 15 }), { maxLength: 10 }), fc.integer({ min: 0, max: 30 }), async (raw, sizes, lateness) => {
        const sets = [activitySet(lateness), merchantSet];
        const state = new StreamingState(redis, `prop-${uniqueSuffix()}`, sets);
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
          }
          const stats = await state.stats();
          expect(stats['late:activity'] ?? 0).toBe(ref.lateCounts.get('activity') ?? 0);
          expect(stats.applied).toBe(events.length);
        } finally {
          await state.reset();
        }
      }),
      { numRuns: 40 },
    );
  });

  it('a replay that overlaps already-applied offsets applies only the new ones (no double counting)', async () => {
    const sets = [activitySet(10)];
    const state = new StreamingState(redis, `overlap-${uniqueSuffix()}`, sets);
    const events = toEvents(Array.from({ length: 20 }, (_, i) => ({ card: 'c1', merchant: `m${i % 3}`, amount: i, step: 3, jitter: i % 4 }))).map((e) => ({ ...e, entities: [e.entities[0]], values: [e.values[0]] }));
    const epoch = await state.takeEpoch('t', 0);
    const once = new StreamingState(redis, `overlap-ref-${uniqueSuffix()}`, sets);
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
    const state = new StreamingState(redis, `fence-${uniqueSuffix()}`, [activitySet(10)]);
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

  it('trims state beyond the retention without changing non-late vectors', async () => {
    const sets = [activitySet(5, 0)];
    const trimmed = new StreamingState(redis, `trim-${uniqueSuffix()}`, sets);
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
      const dump = await trimmed.dump();
      const zset = Object.entries(dump).find(([k]) => k.endsWith(':activity:c1'))![1] as string[];
      expect(zset.length / 2).toBeLessThan(40); // ~ (60 ms max window + 5 ms lateness) / 4 ms per event
    } finally {
      await trimmed.reset();
    }
  });
});
