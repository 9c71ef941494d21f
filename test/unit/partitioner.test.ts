import fc from 'fast-check';
import { Partitioners, type PartitionMetadata } from 'kafkajs';
import { JavaCompatiblePartitioner, murmur2 } from '../../src/kafka/partitioner';

// kafkajs' own murmur2 (64-bit Long arithmetic): the reference our 32-bit version must equal.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const kafkajsMurmur2 = require('kafkajs/src/producer/partitioners/default/murmur2') as (key: Buffer | string) => number;

const partitions = (n: number, leaderless: number[] = []): PartitionMetadata[] =>
  Array.from({ length: n }, (_, i) => ({ partitionId: i, leader: leaderless.includes(i) ? -1 : 0, replicas: [0], isr: [0], partitionErrorCode: 0 }) as PartitionMetadata);

describe('JavaCompatiblePartitioner (placement identical to kafkajs DefaultPartitioner)', () => {
  it("murmur2 equals kafkajs' for strings (ASCII, multi-byte, long) and buffers of every tail length", () => {
    // Kafka's own published vectors (Utils.murmur2 of these UTF-8 strings, Java's UtilsTest).
    expect(murmur2('21')).toBe(-973932308);
    expect(murmur2('foobar')).toBe(-790332482);
    expect(murmur2('a-little-bit-long-string')).toBe(-985981536);
    expect(murmur2('a-little-bit-longer-string')).toBe(-1486304829);
    expect(murmur2('lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8')).toBe(-58897971);
    expect(murmur2('abc')).toBe(479470107);
    fc.assert(
      fc.property(fc.string({ maxLength: 40, unit: 'binary' }), (s) => {
        expect(murmur2(s)).toBe(kafkajsMurmur2(s));
      }),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        const b = Buffer.from(bytes);
        expect(murmur2(b)).toBe(kafkajsMurmur2(b));
      }),
      { numRuns: 2000 },
    );
    const long = 'x'.repeat(1000) + 'é';
    expect(murmur2(long)).toBe(kafkajsMurmur2(long));
    expect(murmur2('a'.repeat(300))).toBe(kafkajsMurmur2('a'.repeat(300)));
  });

  it('chooses the same partition as kafkajs for keyed messages, honours an explicit one, and spreads null keys over partitions with a leader', () => {
    const ours = JavaCompatiblePartitioner();
    const theirs = Partitioners.DefaultPartitioner();
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 30, unit: 'grapheme' }), fc.uint8Array({ maxLength: 30 }).map((a) => Buffer.from(a))), fc.integer({ min: 1, max: 64 }), (key, n) => {
        const args = { topic: 't', partitionMetadata: partitions(n), message: { key, value: null } };
        expect(ours(args)).toBe(theirs(args));
      }),
      { numRuns: 2000 },
    );
    expect(ours({ topic: 't', partitionMetadata: partitions(3), message: { key: 'k', value: null, partition: 2 } })).toBe(2);
    const seen = new Set<number>();
    for (let i = 0; i < 30; i++) seen.add(ours({ topic: 'u', partitionMetadata: partitions(4, [1]), message: { key: null, value: null } }));
    expect([...seen].sort()).toEqual([0, 2, 3]);
  });
});
