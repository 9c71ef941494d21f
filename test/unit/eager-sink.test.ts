import type { Consumer, Kafka, TopicMessages } from 'kafkajs';
import type { IdempotentProducer } from '../../src/kafka/client';
import type { ChainRecord } from '../../src/engine/chain';
import { EagerSink } from '../../src/engine/eager-sink';
import { createLogger } from '../../src/util/logger';

/**
 * The eager sink's own logic — coalescing, order per lane, holding back after a failed send,
 * resuming — with a producer that records what it is asked to send. Kafka itself is exercised by
 * the integration and fault tests (engine.test.ts at-least-once, faults/at-least-once.test.ts,
 * faults/repartition.test.ts 'deduplicated hop').
 */
class RecordingProducer {
  requests: string[][] = [];
  /** Requests (0-based) that fail. */
  failing = new Set<number>();
  private gate?: Promise<void>;
  private open?: () => void;

  /** Holds every send until release(). */
  hold(): void {
    this.gate = new Promise((r) => (this.open = r));
  }

  release(): void {
    this.open?.();
    this.gate = undefined;
  }

  async connect(): Promise<void> {}
  async disconnect(): Promise<void> {}

  async sendBatch({ topicMessages }: { topicMessages: TopicMessages[] }): Promise<void> {
    const n = this.requests.length;
    this.requests.push(topicMessages.flatMap((t) => t.messages.map((m) => String(m.value))));
    await this.gate;
    if (this.failing.has(n)) throw new Error(`request ${n} refused`);
  }

  async send({ messages }: { topic: string; messages: Array<{ value: unknown }> }): Promise<void> {
    await this.sendBatch({ topicMessages: [{ topic: 'out', messages: messages as TopicMessages['messages'] }] });
  }

  /** Every value in the order it was (last) written. */
  get written(): string[] {
    return this.requests.flat();
  }
}

/** Sink-side records only (outputs, dead letter): what the sink reads of a processed record. */
function records(...values: string[]): ChainRecord[] {
  return values.map((v) => ({ outputs: [{ topic: 'out', message: { key: v, value: v } }], toDeadLetter: () => ({ value: `dlq:${v}` }) })) as unknown as ChainRecord[];
}

/** A sink over a recording producer, and the offsets its commits committed. */
function setup(): { producer: RecordingProducer; commits: Array<{ partition: number; offset: string }>; sink: EagerSink } {
  const producer = new RecordingProducer();
  const commits: Array<{ partition: number; offset: string }> = [];
  const consumer = { commitOffsets: async (entries: Array<{ partition: number; offset: string }>) => void commits.push(...entries.map((e) => ({ partition: e.partition, offset: e.offset }))) } as unknown as Consumer;
  const sink = new EagerSink({
    kafka: {} as Kafka,
    groupId: 'g',
    deadLetterTopic: 'dlq',
    limits: { maxMessageBytes: () => 1024 * 1024 },
    log: silent,
    consumer: () => consumer,
    role: 'at-least-once',
    producer: producer as unknown as IdempotentProducer,
  });
  return { producer, commits, sink };
}

const silent = createLogger('test');
silent.level = 'silent';

const tick = () => new Promise((r) => setImmediate(r));

describe('EagerSink', () => {
  it('sends as records are staged, one request at a time, each with everything staged meanwhile', async () => {
    const { producer, commits, sink } = setup();
    const a = sink.lane();
    const b = sink.lane();
    producer.hold();
    const first = records('a1');
    a.stage!(first);
    await tick();
    const second = records('a2', 'a3');
    const third = records('b1');
    a.stage!(second);
    b.stage!(third);
    expect(producer.requests).toEqual([['a1']]);
    // Visible to readers (and to the end-to-end metric) once acknowledged, not at commit.
    expect(first[0].visibleAt).toBeUndefined();
    producer.release();
    await tick();
    expect(first[0].visibleAt).toBeLessThanOrEqual(Date.now());
    await a.commit({ topic: 'in', partition: 0, nextOffset: '3', records: [...first, ...second] });
    expect(producer.requests).toEqual([['a1'], ['a2', 'a3', 'b1']]);
    // The commit sent nothing itself: it waited for the acks and committed the offset.
    expect(commits).toEqual([{ partition: 0, offset: '3' }]);
    await b.commit({ topic: 'in', partition: 1, nextOffset: '1', records: third });
    expect(producer.requests).toHaveLength(2);
    expect(commits).toEqual([{ partition: 0, offset: '3' }, { partition: 1, offset: '1' }]);
  });

  it('after a failed send, holds the lane back until its next commit has sent everything in order, then sends eagerly again', async () => {
    const { producer, commits, sink } = setup();
    const lane = sink.lane();
    const other = sink.lane();
    producer.failing.add(0);
    producer.hold();
    const batch1 = records('r1', 'r2');
    lane.stage!(batch1);
    await tick();
    // Staged while the failing request is in flight, and after it failed: held back, not sent.
    const batch1b = records('r3');
    lane.stage!(batch1b);
    const otherRecords = records('o1');
    other.stage!(otherRecords);
    producer.release();
    await tick();
    await tick();
    const batch2 = records('r4');
    lane.stage!(batch2);
    await tick();
    // r3 queued behind the failure is not sent; the other lane is unaffected.
    expect(producer.requests).toEqual([['r1', 'r2'], ['o1']]);
    // The commit of the first batch sends everything held back (r1..r4) in processing order.
    await lane.commit({ topic: 'in', partition: 0, nextOffset: '3', records: [...batch1, ...batch1b] });
    expect(producer.requests.slice(2)).toEqual([['r1', 'r2', 'r3', 'r4']]);
    expect(commits).toEqual([{ partition: 0, offset: '3' }]);
    // Eager again: the next record goes out at once, and the next commit sends nothing twice.
    const batch3 = records('r5');
    lane.stage!(batch3);
    await tick();
    expect(producer.requests.slice(3)).toEqual([['r5']]);
    await lane.commit({ topic: 'in', partition: 0, nextOffset: '5', records: [...batch2, ...batch3] });
    expect(producer.requests).toHaveLength(4);
    // Every record of the lane reached the topic, and none after a later one of the same lane.
    const lastWrite = (v: string) => producer.written.lastIndexOf(v);
    for (let i = 1; i < 5; i++) expect(lastWrite(`r${i}`)).toBeLessThan(lastWrite(`r${i + 1}`));
  });

  it('a commit whose held-back send fails keeps the records held, in order, for the next commit', async () => {
    const { producer, commits, sink } = setup();
    const lane = sink.lane();
    producer.failing.add(0);
    producer.failing.add(1);
    const batch = records('x1', 'x2');
    lane.stage!(batch);
    await tick();
    await tick();
    const later = records('x3');
    lane.stage!(later);
    await expect(lane.commit({ topic: 'in', partition: 0, nextOffset: '2', records: batch })).rejects.toThrow('request 1 refused');
    expect(commits).toEqual([]);
    await lane.commit({ topic: 'in', partition: 0, nextOffset: '2', records: batch });
    expect(producer.requests[2]).toEqual(['x1', 'x2', 'x3']);
    expect(commits).toEqual([{ partition: 0, offset: '2' }]);
  });
});
