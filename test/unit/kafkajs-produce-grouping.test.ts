/**
 * kafkajs groups a send's messages per partition before encoding them; as patched by
 * scripts/patch-kafkajs.js it appends instead of copying the partition's array for every message
 * (quadratic: 60,000 messages took seconds, one transaction's records are grouped on the event loop).
 */
/* eslint-disable @typescript-eslint/no-require-imports */
type Msg = { key: string; p: number };
const group = require('kafkajs/src/producer/groupMessagesPerPartition') as (a: { topic: string; partitionMetadata: unknown[]; messages: Msg[]; partitioner: (a: { message: Msg }) => number }) => Record<string, Msg[]>;

describe('kafkajs groupMessagesPerPartition (patched)', () => {
  const partitioner = ({ message }: { message: Msg }) => message.p;

  it('keeps every message, in order, under its partition', () => {
    const messages = [5, 0, 5, 2, 0, 0].map((p, i) => ({ key: `k${i}`, p }));
    const groups = group({ topic: 't', partitionMetadata: [{}, {}, {}, {}, {}, {}], messages, partitioner });
    expect(Object.keys(groups)).toEqual(['0', '2', '5']);
    expect(groups['0'].map((m) => m.key)).toEqual(['k1', 'k4', 'k5']);
    expect(groups['2'].map((m) => m.key)).toEqual(['k3']);
    expect(groups['5'].map((m) => m.key)).toEqual(['k0', 'k2']);
    expect(group({ topic: 't', partitionMetadata: [], messages, partitioner })).toEqual({});
  });

  it('groups 60,000 messages in linear time (unpatched: seconds)', () => {
    const messages = Array.from({ length: 60000 }, (_, i) => ({ key: `k${i}`, p: i % 3 }));
    const t0 = performance.now();
    const groups = group({ topic: 't', partitionMetadata: [{}, {}, {}], messages, partitioner });
    const ms = performance.now() - t0;
    expect(groups['1']).toHaveLength(20000);
    expect(ms).toBeLessThan(500);
  });
});
