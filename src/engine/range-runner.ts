import type { Kafka } from 'kafkajs';
import type { Logger } from '../util/logger';
import type { Chain, ChainRecord } from './chain';
import { PartitionLane, type CommitPolicy, type LaneSink } from './lane';
import { RangeSource, type ReadRange } from './range-source';

/** Commit policy for bounded runs: throughput over latency (fewer, larger commits). */
export const RANGE_COMMIT: CommitPolicy = { intervalMs: 200, maxRecords: 5000 };

export interface RangeRunnerOptions {
  kafka: Kafka;
  chain: Chain;
  /** The chain's input topic and the ranges of it to read. */
  topic: string;
  ranges: readonly ReadRange[];
  /** Prefix of the throwaway reader group. */
  groupPrefix: string;
  /** The sink of each partition's lane (it owns where the partition resumes: its `init`). */
  sinkFor(partition: number): LaneSink;
  commit?: CommitPolicy;
  chunkSize?: number;
  maxBytesPerPartition?: number;
  /** Aborting stops fetching; what the lanes hold is still processed and committed (resumable). */
  signal?: AbortSignal;
  /** Called once per fetched batch (before it is processed). */
  onFetched?(partition: number, count: number): void;
  onCommitted?(partition: number, records: ChainRecord[]): void;
  log: Logger;
}

/**
 * Runs a chain over bounded offset ranges: the range source hands each partition's records to
 * that partition's lane (the same lanes as live chains: chunked processing with retries and poison
 * isolation, commit policy, backpressure), and the run ends once every range is fetched and every
 * lane has committed what it holds. A fenced lane (another process took the job) fails the run.
 */
export class RangeRunner {
  private readonly lanes = new Map<number, PartitionLane>();
  private fatal?: Error;
  private abandoned?: Promise<unknown>;
  private readonly stop = new AbortController();

  constructor(private readonly opts: RangeRunnerOptions) {}

  async run(): Promise<{ aborted: boolean }> {
    const { opts } = this;
    const onAbort = () => this.stop.abort();
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    if (opts.signal?.aborted) this.stop.abort();
    const chunkSize = opts.chunkSize ?? 500;
    const source = new RangeSource({
      kafka: opts.kafka,
      topic: opts.topic,
      ranges: opts.ranges,
      groupPrefix: opts.groupPrefix,
      maxBytesPerPartition: opts.maxBytesPerPartition,
      signal: this.stop.signal,
      onBatch: async (batch) => {
        opts.onFetched?.(batch.partition, batch.messages.length);
        this.lanes.get(batch.partition)?.enqueue(batch.messages);
      },
    });
    for (const r of opts.ranges) {
      if (r.from >= r.end) continue;
      const partition = r.partition;
      this.lanes.set(
        partition,
        new PartitionLane({
          topic: opts.topic,
          partition,
          chain: opts.chain,
          sink: opts.sinkFor(partition),
          commit: opts.commit ?? RANGE_COMMIT,
          chunkSize,
          highWater: 4 * chunkSize,
          pause: () => source.pause(partition),
          resume: () => source.resume(partition),
          whileSaturated: () => this.whileSaturated(),
          onCommitted: (records) => opts.onCommitted?.(partition, records),
          onFenced: (err) => this.fail(err),
          onFailure: () => undefined, // the lane logs and retries
          onHealthy: () => undefined,
          log: opts.log,
        }),
      );
    }
    try {
      let aborted: boolean;
      try {
        ({ aborted } = await source.run());
      } catch (err) {
        this.fail(err as Error);
        aborted = true;
      }
      if (this.fatal) {
        await this.abandoned;
        throw this.fatal;
      }
      // Fetched to the end (or stopped): the lanes process and commit what they hold.
      await Promise.all([...this.lanes.values()].map((l) => l.drain()));
      if (this.fatal) {
        await this.abandoned;
        throw this.fatal;
      }
      return { aborted: aborted || (opts.signal?.aborted ?? false) };
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
    }
  }

  /** Fails the run (fenced lane, failing source, a processor that found the job taken): fetching stops, nothing more is committed. */
  fail(err: Error): void {
    if (this.fatal) return;
    this.fatal = err;
    this.stop.abort();
    this.abandoned = Promise.allSettled([...this.lanes.values()].map((l) => l.abandon()));
  }

  private async whileSaturated(): Promise<void> {
    for (const s of this.opts.chain.stages) {
      const bp = s.processor.backpressure;
      while (bp?.saturated() && !this.stop.signal.aborted) {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([bp.whenDrained(), new Promise((r) => (timer = setTimeout(r, 1000)))]);
        clearTimeout(timer);
      }
    }
  }
}
