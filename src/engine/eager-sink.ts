import type { Consumer } from 'kafkajs';
import { idempotentProducer, type IdempotentProducer } from '../kafka/client';
import { JavaCompatiblePartitioner } from '../kafka/partitioner';
import { CommitPlan, offsetEntry, rejectOversized, sendAtLeastOnce, type CommitBatch, type SinkOptions, type SinkRecord } from './commit-sink';
import { crashPoint, type CrashPoint } from './fault-injection';
import type { LaneSink } from './lane';

/** What one lane (one input partition) has staged. */
interface EagerLane {
  /** Settles when everything this lane staged so far was sent (or given up). Never rejects. */
  settled: Promise<void>;
  /**
   * Set when a send carrying this lane's records failed: from then on its records are held back
   * (`held`, in processing order: they would overtake the failed ones otherwise) and the lane's next
   * commit sends them all, after which eager sending resumes.
   */
  failed?: unknown;
  held: SinkRecord[];
}

interface Queued {
  lane: EagerLane;
  records: SinkRecord[];
  done: () => void;
}

/** Marks records acknowledged: `visibleAt` is both the end-to-end metric's time and the sink's "sent" mark. */
function acknowledged(records: SinkRecord[]): void {
  const at = Date.now();
  for (const r of records) r.visibleAt = at;
}

/** What the sink is for: names its producer and log lines, and its crash point (fault tests). */
export type EagerSinkRole = 'at-least-once' | 'deduplicated hop';

/**
 * Commit policy of an eager sink: sends happen as records are processed, so a commit only records
 * the input position and bounds what a restart writes again (at-least-once: what it duplicates).
 */
export const EAGER_COMMIT = { intervalMs: 100, maxRecords: 20000 };

const CRASH_POINT: Record<EagerSinkRole, CrashPoint> = { 'at-least-once': 'alo-sent', 'deduplicated hop': 'hop-sent' };

/**
 * A sink that writes without transactions and without waiting for commits: records go out as soon
 * as a lane has processed them, through one idempotent producer, one request at a time — each
 * request carries everything staged while the previous one was in flight — and a lane's commit
 * only waits until its batch's records are acknowledged and commits the input offset (the consumer
 * group's OffsetCommit), off the latency path. Used for
 * - `delivery: at-least-once` stages: an output is visible one produce round trip after it was
 *   computed; a crash re-delivers what follows the committed offset (duplicates, never a loss);
 * - deduplicated repartition hops (`repartition.delivery: deduplicated`): the reading stage skips
 *   the copies a restarted hop writes again (LineageDedup). That is sound because no record is
 *   ever written before an earlier record of its input partition: a lane's records are sent in
 *   processing order, and after a failed send its later records are held back until its next
 *   commit has sent them all, in order.
 *
 * Lanes are input partitions; staging order across lanes is the caller's (StagingOrder for hops).
 * Dead letters written here are at-least-once; a hop does not dead-letter undecodable records but
 * forwards them (ChainStage.forwardRejected) to be dead-lettered exactly once by the reading stage.
 */
export class EagerSink {
  private readonly producer: IdempotentProducer;
  private connected?: Promise<void>;
  private queue: Queued[] = [];
  private draining = false;

  constructor(private readonly opts: SinkOptions & { consumer: () => Consumer; role: EagerSinkRole; producer?: IdempotentProducer }) {
    this.producer = opts.producer ?? idempotentProducer(opts.kafka, { name: `${opts.groupId} (${opts.role})`, logger: opts.log, createPartitioner: JavaCompatiblePartitioner });
  }

  /** The sink of one lane (one input partition). */
  lane(): LaneSink {
    const lane: EagerLane = { settled: Promise.resolve(), held: [] };
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

  private stage(lane: EagerLane, records: SinkRecord[]): void {
    if (records.length === 0) return;
    if (lane.failed !== undefined) {
      lane.held.push(...records);
      return;
    }
    lane.settled = new Promise<void>((done) => this.queue.push({ lane, records, done }));
    if (!this.draining) void this.drain();
  }

  /** One request at a time, each with everything queued meanwhile (a failed lane's records are held back, in order). */
  private async drain(): Promise<void> {
    this.draining = true;
    try {
      while (this.queue.length > 0) {
        const taken = this.queue;
        this.queue = [];
        const live: Queued[] = [];
        for (const q of taken) {
          if (q.lane.failed === undefined) live.push(q);
          else q.lane.held.push(...q.records);
        }
        const records = live.flatMap((q) => q.records);
        try {
          if (records.length > 0) {
            await this.ready();
            rejectOversized({ records } as unknown as CommitBatch, this.opts.limits);
            for (const round of CommitPlan.of({ topic: '', partition: -1, nextOffset: '', records }, this.opts).rounds) await this.producer.sendBatch({ topicMessages: round });
            acknowledged(records);
          }
        } catch (err) {
          // Synchronously, before anything else is staged: the failed records go first in `held`.
          for (const q of live) {
            q.lane.failed ??= err;
            q.lane.held.push(...q.records);
          }
          this.opts.log.warn({ err: (err as Error).message, records: records.length, role: this.opts.role }, `${this.opts.role}: a send failed; its lanes hold their records back until their next commit sends them`);
        }
        for (const q of taken) q.done();
      }
    } finally {
      this.draining = false;
    }
  }

  private async commit(lane: EagerLane, batch: CommitBatch): Promise<void> {
    await lane.settled;
    // After a failed send: everything held back goes out in order — the batch's records and those
    // processed since — and the lane sends eagerly again once nothing is left (checked and cleared
    // in one step, so no record staged meanwhile can overtake a held one).
    while (lane.failed !== undefined) {
      if (lane.held.length === 0) {
        lane.failed = undefined;
        break;
      }
      const held = lane.held;
      lane.held = [];
      await this.resend(held).catch((err) => {
        lane.held = held.concat(lane.held);
        throw err;
      });
    }
    // Records the lane never staged (defensive: every lane of an eager sink stages what it processes).
    const unsent = batch.records.filter((r) => r.visibleAt === undefined);
    if (unsent.length > 0) await this.resend(unsent);
    batch.beforeCommit?.();
    crashPoint(CRASH_POINT[this.opts.role], this.opts.groupId);
    // Committed while the consumer still runs (kafkajs skips commits of a stopping consumer).
    await this.opts.consumer().commitOffsets([{ topic: batch.topic, ...offsetEntry(batch) }]);
  }

  /** Sends records from a commit (record-level refusals dead-lettered, as sendAtLeastOnce does) and marks them acknowledged. */
  private async resend(records: SinkRecord[]): Promise<void> {
    await this.ready();
    await sendAtLeastOnce(this.producer, { records }, this.opts);
    acknowledged(records);
  }

  async close(): Promise<void> {
    if (this.connected) await this.producer.disconnect().catch(() => undefined);
    this.connected = undefined;
  }
}
