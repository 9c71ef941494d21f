import fc from 'fast-check';
import { exactSum, slotGroupOf } from '../../src/features/streaming';
import { bucketMsOf, effectiveWindow, featureSetProblems, type StreamingFeatureSetSpec } from '../../src/features/spec';
import { parseClusterUrl } from '../../src/util/redis';

const set = (fields: StreamingFeatureSetSpec['fields'], config: Partial<StreamingFeatureSetSpec['config']> = {}): StreamingFeatureSetSpec => ({
  name: 's',
  kind: 'windowed_aggregation',
  version: 1,
  entity: 'cardId',
  config: { allowedLatenessMs: 0, ...config },
  fields,
});
const DAY = 86_400_000;
const HOUR = 3_600_000;

describe('streaming state: exact sums', () => {
  it('is the correctly rounded sum, whatever the order (so evicting a bucket subtracts exactly)', () => {
    expect(exactSum([1e16, 1, -1e16])).toBe(1);
    expect(exactSum([0.1, 0.2, 0.3])).toBe(0.6); // naive left-to-right gives 0.6000000000000001
    expect(exactSum([])).toBe(0);
    expect(Object.is(exactSum([-0]), 0)).toBe(true); // never -0
    fc.assert(
      fc.property(fc.array(fc.double({ min: -1e9, max: 1e9, noNaN: true }), { maxLength: 40 }), fc.integer(), (xs, seed) => {
        const shuffled = [...xs].sort((a, b) => ((a * 31 + seed) % 7) - ((b * 31 + seed) % 7));
        expect(exactSum(shuffled)).toBe(exactSum(xs));
        // Adding x and then -x leaves the sum of the rest unchanged (what eviction relies on).
        expect(exactSum([...xs, 12345.678, -12345.678])).toBe(exactSum(xs));
      }),
    );
  });

  it('equals the exact integer sum for integers', () => {
    fc.assert(fc.property(fc.array(fc.integer({ min: -1e6, max: 1e6 })), (xs) => expect(exactSum(xs)).toBe(xs.reduce((a, b) => a + b, 0))));
  });
});

describe('streaming state: bucket resolution', () => {
  it('defaults to gcd(60 s, every window size and hop)', () => {
    const demo = set([
      { name: 'a', type: 'long', default: 0, aggregation: 'count', window: { type: 'sliding', sizeMs: DAY } },
      { name: 'b', type: 'double', default: 0, aggregation: 'sum', of: 'x', window: { type: 'hopping', sizeMs: DAY, hopMs: HOUR } },
    ]);
    expect(bucketMsOf(demo)).toBe(60_000);
    expect(bucketMsOf(set([{ name: 'a', type: 'long', default: 0, aggregation: 'count', window: { type: 'sliding', sizeMs: 45_000 } }]))).toBe(15_000);
    expect(bucketMsOf({ ...demo, config: { allowedLatenessMs: 0, bucketMs: 1 } })).toBe(1);
  });

  it('a sliding window is the size/R buckets ending with the event\'s bucket; hopping windows are exact', () => {
    const s = set([
      { name: 'a', type: 'long', default: 0, aggregation: 'count', window: { type: 'sliding', sizeMs: DAY } },
      { name: 'b', type: 'long', default: 0, aggregation: 'count', window: { type: 'hopping', sizeMs: DAY, hopMs: HOUR } },
    ]);
    const t = 10 * DAY + 5 * HOUR + 61_234; // 1 min 1.234 s into an hour
    expect(effectiveWindow(s.fields[0], s).start(t)).toBe(t - 1_234 + 60_000 - DAY); // bucket start + R - size
    expect(effectiveWindow(s.fields[1], s).start(t)).toBe(10 * DAY + 6 * HOUR - DAY);
    const exact = { ...s, config: { ...s.config, bucketMs: 1 } };
    expect(effectiveWindow(exact.fields[0], exact).start(t)).toBe(t - DAY + 1); // (t - size, t]
  });

  it('refuses windows that are not whole buckets, naming the field', () => {
    const s = set(
      [
        { name: 'a', type: 'long', default: 0, aggregation: 'count', window: { type: 'sliding', sizeMs: 90_000 } },
        { name: 'b', type: 'long', default: 0, aggregation: 'count', window: { type: 'hopping', sizeMs: 120_000, hopMs: 30_000 } },
      ],
      { bucketMs: 60_000 },
    );
    expect(featureSetProblems(s, { eventFields: ['cardId'], baseFeatures: [] })).toEqual([
      ['fields[0].window.sizeMs', '90000 is not a multiple of config.bucketMs (60000): windows are whole buckets'],
      ['fields[1].window.hopMs', '30000 is not a multiple of config.bucketMs (60000): windows are whole buckets'],
    ]);
  });
});

describe('streaming state: slot groups and cluster URLs', () => {
  it('puts an entity in a stable group within range', () => {
    expect(slotGroupOf('card-000001', 1)).toBe(0);
    const groups = new Set(Array.from({ length: 200 }, (_, i) => slotGroupOf(`card-${i}`, 16)));
    expect(Math.min(...groups)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...groups)).toBeLessThan(16);
    expect(groups.size).toBe(16);
    expect(slotGroupOf('card-42', 16)).toBe(slotGroupOf('card-42', 16));
  });

  it('parses redis+cluster:// seed lists and credentials, and refuses bad ones', () => {
    expect(parseClusterUrl('redis+cluster://127.0.0.1:7000,127.0.0.1:7001')).toEqual({ nodes: [{ host: '127.0.0.1', port: 7000 }, { host: '127.0.0.1', port: 7001 }], username: undefined, password: undefined, tls: false });
    expect(parseClusterUrl('rediss+cluster://u:p%40ss@h1:1,h2:2')).toMatchObject({ username: 'u', password: 'p@ss', tls: true, nodes: [{ host: 'h1', port: 1 }, { host: 'h2', port: 2 }] });
    expect(() => parseClusterUrl('redis://h:1')).toThrow(/not a cluster URL/);
    expect(() => parseClusterUrl('redis+cluster://h1,h2:2')).toThrow(/bad cluster URL/);
  });
});
