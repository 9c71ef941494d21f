import type { Consumer } from 'kafkajs';
import { idempotentProducer, type IdempotentProducer } from '../kafka/client';
import { JavaCompatiblePartitioner } from '../kafka/partitioner';
import { CommitPlan, offsetEntry, rejectOversized, sendAtLeastOnce, type CommitBatch, type SinkOptions, type SinkRecord } from './commit-sink';
import { crashPoint } from './fault-injection';
import type { LaneSink } from './lane';

/** What one lane of a deduplicated hop has staged. */
interface HopLane {
  /** Records whose send was acknowledged. */
  readonly sent: WeakSet<SinkRecord>;
  /** Settles when everything this lane staged so far was sent (or given up). Never rejects. */
  settled: Promise<void>;
  /**
   * Set when a send carrying this lane's records failed: from then on its staged records are not
   * sent (they would overtake the failed ones); each commit sends its batch's unsent records first.
   */
  failed?: unknown;
}

interface Queued {
  lane: HopLane;
  records: SinkRecord[];
  done: () => void;
}

/** The hop commits its input offsets at this interval: sends happen as records are processed, so it only bounds what a restart writes again. */
export const HOP_COMMIT = { intervalMs: 100, maxRecords: 20000 };

/**
 * The sink of a deduplicated repartition hop (`repartition.delivery: deduplicated`): no
 * transactions. Records go to the repartition topic as soon as they are staged (processing order
 * across the hop's lanes, StagingOrder), through one idempotent producer, one request at a time —
 * each request carries everything staged while the previous one was in flight — so a repartition
 * partition holds every input partition's records in offset order, and an entity's records in
 * processing order. A lane's commit waits until its batch's records are acknowledged and commits
 * the input offset (the consumer group's OffsetCommit): off the latency path, and a crash only
 * writes again what follows the committed offset. The reading stage skips those copies by lineage
 * (LineageDedup), which is sound because no record is ever written before an earlier record of
 * its input partition: after a failed send, that lane's later records are held back and each
 * commit resends its batch's unsent records, in order, first.
 *
 * Dead letters written here (a record too large for the repartition topic) are at-least-once;
 * undecodable records are not dead-lettered here but forwarded (ChainStage.forwardRejected) and
 * dead-lettered exactly once by the reading stage.
 */
export class HopSink {
  private readonly producer: IdempotentProducer;
  private connected?: Promise<void>;
  private queue: Queued[] = [];
  private draining = false;
  /** Produce requests sent so far (tests, metrics). */
  requests = 0;

  constructor(private readonly opts: SinkOptions & { consumer: () => Consumer }) {
    this.producer = idempotentProducer(opts.kafka, { name: `${opts.groupId} (deduplicated hop)`, logger: opts.log, createPartitioner: JavaCompatiblePartitioner });
  }

  /** The sink of one lane (one input partition). */
  lane(): LaneSink {
    const lane: HopLane = { sent: new WeakSet(), settled: Promise.resolve() };
    return {
      init: async () => null,
      stage: (records) => this.stage(lane, records),
      commit: (batch) => this.commit(lane, batch),
      committed: async () => null,
      close: async () => undefined,
      exactlyOnce: false,
    };
  }

  private ready(): Promise<void> {
    this.connected ??= this.producer.connect();
    this.connected.catch(() => (this.connected = undefined));
    return this.connected;
  }

  private stage(lane: HopLane, records: SinkRecord[]): void {
    if (records.length === 0 || lane.failed !== undefined) return;
    lane.settled = new Promise<void>((done) => this.queue.push({ lane, records, done }));
    if (!this.draining) void this.drain();
  }

  /** One request at a time, each with everything queued meanwhile (lanes that failed stay out). */
  private async drain(): Promise<void> {
    this.draining = true;
    try {
      while (this.queue.length > 0) {
        const taken = this.queue;
        this.queue = [];
        const live = taken.filter((q) => q.lane.failed === undefined);
        const records = live.flatMap((q) => q.records);
        try {
          if (records.length > 0) {
            await this.ready();
            rejectOversized({ records } as unknown as CommitBatch, this.opts.limits);
            for (const round of CommitPlan.of({ topic: '', partition: -1, nextOffset: '', records }, this.opts).rounds) {
              this.requests += 1;
              await this.producer.sendBatch({ topicMessages: round });
            }
            for (const q of live) for (const r of q.records) q.lane.sent.add(r);
          }
        } catch (err) {
          for (const q of live) q.lane.failed ??= err;
          this.opts.log.warn({ err: (err as Error).message, records: records.length }, 'deduplicated hop: a send failed; its lanes send at commit from now on (the reading stage skips what was written twice)');
        }
        for (const q of taken) q.done();
      }
    } finally {
      this.draining = false;
    }
  }

  private async commit(lane: HopLane, batch: CommitBatch): Promise<void> {
    await lane.settled;
    const unsent = batch.records.filter((r) => !lane.sent.has(r));
    if (unsent.length > 0) {
      await this.ready();
      await sendAtLeastOnce(this.producer, { records: unsent }, this.opts);
      for (const r of unsent) lane.sent.add(r);
    }
    batch.beforeCommit?.();
    crashPoint('hop-sent', this.opts.groupId);
    // Committed while the consumer still runs (kafkajs skips commits of a stopping consumer).
    await this.opts.consumer().commitOffsets([{ topic: batch.topic, ...offsetEntry(batch) }]);
  }

  async close(): Promise<void> {
    if (this.connected) await this.producer.disconnect().catch(() => undefined);
    this.connected = undefined;
  }
}
