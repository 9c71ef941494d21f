/**
 * A bounded source: fixed offset ranges of a topic's partitions, read read_committed, then done.
 *
 * kafkajs only consumes through a group, so the source uses a throwaway group (never committed to:
 * positions are the caller's business, e.g. a backfill's checkpoints) and seeks each partition to
 * its start once assigned. A partition is done when the fetch position reaches its end offset —
 * tracked from each fetched batch's last offset, control records (transaction markers) included,
 * so a range that ends on a commit marker still ends. Done partitions are paused; records at or
 * past the end are never handed out.
 */
import { randomUUID } from 'node:crypto';
import { KafkaJSError, type Consumer, type Kafka, type KafkaMessage } from 'kafkajs';

export interface ReadRange {
  partition: number;
  /** First offset to hand out. */
  from: number;
  /** Exclusive end. */
  end: number;
}

export interface RangeBatch {
  topic: string;
  partition: number;
  /** Messages with from <= offset < end, in offset order. */
  messages: KafkaMessage[];
  /** The position after this batch (<= end): where a resumed read would start. */
  nextOffset: number;
  heartbeat(): Promise<void>;
}

export interface BoundedReadOptions {
  kafka: Kafka;
  topic: string;
  ranges: readonly ReadRange[];
  /** Throwaway group prefix (the group id gets a random suffix). */
  groupPrefix: string;
  /**
   * Called once per fetched batch of a partition, batches of one partition in order. Throwing
   * retries the batch. The engine's range runner hands the batch to the partition's lane and
   * returns at once (backpressure: `pause`/`resume`); plain readers process it before returning.
   */
  onBatch(batch: RangeBatch): Promise<void>;
  maxBytesPerPartition?: number;
  /** Partitions processed at the same time (default: all). */
  concurrency?: number;
  /** Stops early (graceful: the in-flight batches finish). */
  signal?: AbortSignal;
}

export class RangeSource {
  private readonly position = new Map<number, number>();
  private readonly end = new Map<number, number>();
  private readonly pending = new Set<number>();
  private readonly paused = new Set<number>();
  private consumer?: Consumer;
  private groupId?: string;

  constructor(private readonly opts: BoundedReadOptions) {
    for (const r of opts.ranges) {
      this.position.set(r.partition, r.from);
      this.end.set(r.partition, r.end);
      if (r.from < r.end) this.pending.add(r.partition);
    }
  }

  /** Backpressure: stops fetching a partition until `resume`. */
  pause(partition: number): void {
    this.paused.add(partition);
    this.consumer?.pause([{ topic: this.opts.topic, partitions: [partition] }]);
  }

  resume(partition: number): void {
    this.paused.delete(partition);
    // A partition that reached its end stays paused.
    if (this.pending.has(partition)) this.consumer?.resume([{ topic: this.opts.topic, partitions: [partition] }]);
  }

  /** Reads until every range is fetched (or the signal aborts); rejects when the consumer fails for good. */
  async run(): Promise<{ aborted: boolean }> {
    const { opts, pending, position, end } = this;
    if (pending.size === 0) return { aborted: false };
    if (opts.signal?.aborted) return { aborted: true };

    const groupId = (this.groupId = `${opts.groupPrefix}.reader-${randomUUID().slice(0, 8)}`);
    const consumer: Consumer = (this.consumer = opts.kafka.consumer({
      groupId,
      readUncommitted: false,
      sessionTimeout: 30000,
      heartbeatInterval: 3000,
      maxWaitTimeInMs: 100,
      maxBytesPerPartition: opts.maxBytesPerPartition ?? 1024 * 1024,
      maxBytes: Math.max(10 * 1024 * 1024, (opts.maxBytesPerPartition ?? 1024 * 1024) * opts.ranges.length),
    }));

    let finish!: (aborted: boolean) => void;
    let fail!: (err: Error) => void;
    const finished = new Promise<boolean>((resolve, reject) => {
      finish = resolve;
      fail = reject;
    });
    const markProgress = (partition: number, next: number) => {
      if (next > (position.get(partition) ?? 0)) position.set(partition, next);
      if (pending.has(partition) && position.get(partition)! >= end.get(partition)!) {
        pending.delete(partition);
        consumer.pause([{ topic: opts.topic, partitions: [partition] }]);
        if (pending.size === 0) finish(false);
      }
    };
    const onAbort = () => finish(true);
    opts.signal?.addEventListener('abort', onAbort, { once: true });

    consumer.on(consumer.events.CRASH, ({ payload }) => {
      if (!payload.restart) fail(payload.error);
    });
    // Batches holding only control records / aborted data never reach eachBatch: learn their position here.
    consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
      if (payload.topic === opts.topic && payload.batchSize === 0) markProgress(payload.partition, Number(payload.lastOffset) + 1);
    });
    let running = false;
    const seekPending = () => {
      for (const r of opts.ranges) {
        if (pending.has(r.partition)) {
          consumer.seek({ topic: opts.topic, partition: r.partition, offset: String(position.get(r.partition)) });
          if (this.paused.has(r.partition)) consumer.pause([{ topic: opts.topic, partitions: [r.partition] }]);
        } else consumer.pause([{ topic: opts.topic, partitions: [r.partition] }]);
      }
    };
    // A (re)join resets kafkajs' positions to the group's (never committed) offsets: put ours back.
    consumer.on(consumer.events.GROUP_JOIN, () => {
      if (running) seekPending();
    });

    try {
      await consumer.connect();
      await consumer.subscribe({ topic: opts.topic, fromBeginning: true });
      await consumer.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        partitionsConsumedConcurrently: opts.concurrency ?? Math.max(1, opts.ranges.length),
        eachBatch: async ({ batch, resolveOffset, heartbeat, isRunning, isStale }) => {
          const p = batch.partition;
          if (!pending.has(p) || opts.signal?.aborted) return;
          const from = position.get(p)!;
          const stop = end.get(p)!;
          const messages = batch.messages.filter((m) => {
            const o = Number(m.offset);
            return o >= from && o < stop;
          });
          const next = Math.min(Number(batch.lastOffset()) + 1, stop);
          if (next <= from) {
            // Entirely before our position (a fetch from before the seek applied): skip it.
            if (Number(batch.lastOffset()) + 1 <= from) consumer.seek({ topic: opts.topic, partition: p, offset: String(from) });
            return;
          }
          if (!isRunning() || isStale()) return;
          if (messages.length === 0) {
            resolveOffset(batch.lastOffset());
            markProgress(p, next);
            return;
          }
          try {
            await opts.onBatch({ topic: batch.topic, partition: p, messages, nextOffset: next, heartbeat });
          } catch (err) {
            if (err instanceof KafkaJSError && err.retriable) throw err;
            throw new KafkaJSError(`${(err as Error).name}: ${(err as Error).message}`, { retriable: true });
          }
          resolveOffset(batch.lastOffset());
          markProgress(p, next);
          await heartbeat();
        },
      });
      running = true;
      seekPending();
      const aborted = await finished;
      return { aborted };
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
      await this.stop();
    }
  }

  /** Leaves and removes the throwaway group (it never held offsets; best effort). */
  private async stop(): Promise<void> {
    const consumer = this.consumer;
    this.consumer = undefined;
    if (!consumer) return;
    await consumer.disconnect().catch(() => undefined);
    const admin = this.opts.kafka.admin();
    await admin
      .connect()
      .then(() => admin.deleteGroups([this.groupId!]))
      .catch(() => undefined)
      .finally(() => admin.disconnect().catch(() => undefined));
  }
}

/** Reads until every range is done (or the signal aborts), processing each batch before the next of its partition. */
export function readRanges(opts: BoundedReadOptions): Promise<{ aborted: boolean }> {
  return new RangeSource(opts).run();
}
