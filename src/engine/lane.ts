import type { KafkaMessage } from 'kafkajs';
import type { Logger } from '../util/logger';
import type { Chain, ChainRecord } from './chain';
import { ProducerFencedError, type CommitBatch } from './commit-sink';
import type { CuttableLane } from './shared-transactions';
import type { OrderedLane, StagingOrder } from './staging-order';
import { RetryLaterError } from './transient';
import { LineageDedup } from './lineage-dedup';

/** When a lane commits: whichever comes first once records are waiting. */
export interface CommitPolicy {
  /** Minimum time between the starts of two commits of one lane (0: commit as soon as the previous one ends). */
  intervalMs: number;
  /** Commit without waiting for the interval once this many records wait. */
  maxRecords: number;
  /**
   * Shared transactions only: send processed records into the open transaction as they come, so a
   * commit only adds the offsets and ends it (SharedTransactions' sendAsProcessed). Default false.
   */
  sendAsProcessed?: boolean;
  /**
   * Shared transactions only: after a transaction wrote records that lanes of the same sink read
   * (a repartition hop's topic), how long the next one may wait for those lanes to process them
   * (SharedTransactions' readerWaitMs). Default READER_WAIT_MS; 0: never wait.
   */
  readerWaitMs?: number;
}

/** How a lane writes: exactly-once (a transactional producer of its own) or at-least-once. */
export interface LaneSink {
  /** Takes ownership of the partition; returns the committed offset to resume from (null: no skipping needed). */
  init(): Promise<string | null>;
  /** Writes the batch and its offset; after a failure the next call starts with a fresh producer. */
  commit(batch: CommitBatch): Promise<void>;
  /**
   * Optional: sends records as soon as they are processed (inside the transaction their commit
   * ends), so output order follows processing order (repartition hops: PipelinedTransactions).
   */
  stage?(records: ChainRecord[]): void;
  /**
   * Optional: the sink decides when the lane commits (shared transactions): the lane announces that
   * it holds records instead of timing its own commits, and hands them in when cut (see
   * SharedTransactions).
   */
  coordinated?: { announce(lane: CuttableLane, urgent: boolean): void };
  /** The committed offset as the broker has it now (null: none). */
  committed(): Promise<string | null>;
  /**
   * De-duplicating lanes (LaneOptions.dedup): the committed offset and the metadata committed with
   * it, read after init took the partition.
   */
  committedWithMetadata?(): Promise<{ offset: string | null; metadata: string | null }>;
  /** Exactly-once sinks own their partition's transactional id; at-least-once ones simply resend. */
  readonly exactlyOnce: boolean;
  close(): Promise<void>;
}

export interface LaneOptions {
  topic: string;
  partition: number;
  chain: Chain;
  sink: LaneSink;
  commit: CommitPolicy;
  /** Records per chain call. */
  chunkSize: number;
  /** Queued records at which fetching this partition pauses (resumes at half). */
  highWater: number;
  /** Resolves once the previous lane of this partition has let go (its in-flight commit settled). */
  after?: Promise<void>;
  pause(): void;
  resume(): void;
  /** Waits while a processor of the chain is saturated (its bounded queue is full). */
  whileSaturated(): Promise<void>;
  onCommitted(records: ChainRecord[], seconds: number): void;
  onFenced(err: Error): void;
  onFailure(err: Error, what: 'process' | 'commit'): void;
  onHealthy(): void;
  log: Logger;
  /**
   * Repartition hops: processed records are staged (sink.stage) in timestamp order across the
   * runner's lanes, as far as they are fetched (see StagingOrder).
   */
  stagingOrder?: StagingOrder;
  /**
   * The input is written by a deduplicated repartition hop: records the hop wrote again are skipped
   * (LineageDedup), and the state is committed as the offset's metadata. Called with the number of
   * copies skipped per chunk.
   */
  dedup?: { onSkipped(count: number): void };
}

type LaneState = 'running' | 'draining' | 'closed';

const MAX_BACKOFF_MS = 5000;
const SLOW_COMMIT_MS = 10000;

/**
 * One input partition's pipeline: records handed over by the fetch loop queue here, are processed
 * in order chunk by chunk, and buffer until the lane commits them with their offset. Processing of
 * the next records overlaps the commit of the previous ones, and lanes are independent of each
 * other: one lane's commit never holds back another's fetch, processing or commit.
 */
export class PartitionLane implements OrderedLane, CuttableLane {
  private queue: KafkaMessage[] = [];
  /** Staging order only: the chunk being processed, and the timestamps of its processed records not yet staged. */
  private processing: KafkaMessage[] = [];
  private unstaged: number[] = [];
  private buffer: ChainRecord[] = [];
  private bufferNext?: string;
  /** De-duplicating lanes: the state as of `bufferNext` (committed with it). */
  private bufferMeta?: string;
  private dedup?: LineageDedup;
  /** De-duplicating lanes: a chunk whose processing failed, retried as it was de-duplicated. */
  private retryChunk?: { chunk: KafkaMessage[]; next: bigint; meta?: string };
  /** Records below this offset were processed already (or committed by a previous owner). */
  private nextOffset: bigint | null = null;
  /** The offset this lane last committed (or found committed when it took the partition). */
  private lastCommitted: string | null = null;
  private state: LaneState = 'running';
  private paused = false;
  private fenced = false;
  private pumping?: Promise<void>;
  private committing?: Promise<void>;
  private timer?: NodeJS.Timeout;
  private lastCommitStart = 0;
  /** The partition this lane reads (the shared sink matches it with what its transactions wrote). */
  readonly input: { topic: string; partition: number };
  /** Coordinated mode: a drain waiting for the sink's next cut. */
  private cutWaiter?: () => void;
  private readonly ready: Promise<boolean>;
  /** Backpressure pauses of this lane. */
  pauses = 0;

  constructor(private readonly opts: LaneOptions) {
    this.input = { topic: opts.topic, partition: opts.partition };
    this.ready = this.init();
  }

  private async init(): Promise<boolean> {
    await this.opts.after?.catch(() => undefined);
    for (let attempt = 0; !this.isClosed(); attempt++) {
      try {
        const committed = await this.opts.sink.init();
        this.opts.log.debug({ partition: this.opts.partition, committed }, 'lane took its partition');
        if (this.opts.dedup) {
          const read = await this.opts.sink.committedWithMetadata!();
          // Another owner committed in between: retried (and fenced at commit if it keeps the partition).
          if (read.offset !== committed) throw new Error(`partition ${this.opts.partition}: committed offset moved from ${committed} to ${read.offset} while its de-duplication state was read`);
          this.dedup = LineageDedup.restore(read.metadata);
        }
        this.lastCommitted = committed;
        if (committed !== null) this.nextOffset = BigInt(committed);
        return true;
      } catch (err) {
        if (err instanceof ProducerFencedError) {
          this.fence(err);
          return false;
        }
        this.opts.onFailure(err as Error, 'commit');
        this.opts.log.debug({ partition: this.opts.partition, err: (err as Error).message }, 'taking the partition failed; retrying');
        await sleep(Math.min(100 * 2 ** attempt, MAX_BACKOFF_MS));
      }
    }
    return false;
  }

  /** Resolves once the lane owns its partition (true) or gave up (closed, fenced: false). */
  whenReady(): Promise<boolean> {
    return this.ready;
  }

  private isClosed(): boolean {
    return this.state === 'closed';
  }

  get queued(): number {
    return this.queue.length;
  }

  get isFenced(): boolean {
    return this.fenced;
  }

  /** Hands consumed records to the lane (called from the fetch loop; returns at once). */
  enqueue(messages: KafkaMessage[]): void {
    if (this.state !== 'running' || this.fenced) return;
    for (const m of messages) this.queue.push(m);
    if (!this.paused && this.queue.length >= this.opts.highWater) {
      this.paused = true;
      this.pauses += 1;
      this.opts.pause();
    }
    this.pumping ??= this.pump().finally(() => (this.pumping = undefined));
  }

  private async pump(): Promise<void> {
    if (!(await this.ready)) return;
    let failures = 0;
    while ((this.queue.length > 0 || this.retryChunk) && !this.isClosed() && !this.fenced) {
      // Bound memory while commits fail: stop processing until the buffer drains.
      while (this.buffer.length >= this.opts.commit.maxRecords * 4 && this.committing && !this.isClosed()) await this.committing;
      await this.opts.whileSaturated();
      if (this.isClosed() || this.fenced) return;
      const taken = this.nextChunk();
      if (!taken || taken.chunk.length === 0) {
        // Nothing to process (copies, or records below the committed offset): a paused partition must still resume.
        this.opts.stagingOrder?.changed();
        this.resumeIfDrained();
        continue;
      }
      const { chunk, next, meta } = taken;
      let records: ChainRecord[];
      this.processing = chunk;
      try {
        records = await this.opts.chain.process(this.opts.topic, this.opts.partition, chunk);
        failures = 0;
      } catch (err) {
        this.processing = [];
        // A dependency is down (or a bug): nothing of this chunk is kept; retry it after a backoff.
        if (this.dedup) this.retryChunk = taken; // already de-duplicated: the state moved past it
        else this.queue.unshift(...chunk);
        if (err instanceof RetryLaterError) {
          // Waiting for other data is not a failure; stopping does not wait for it.
          if (this.state === 'draining') {
            this.queue = [];
            this.retryChunk = undefined;
            return;
          }
        } else this.opts.onFailure(err as Error, 'process');
        const base = this.opts.chain.stages[0].spec.errors?.backoffMs ?? 200;
        const delay = Math.min(base * 2 ** failures++, MAX_BACKOFF_MS);
        this.opts.log.debug({ partition: this.opts.partition, err: (err as Error).message, retryInMs: delay }, 'processing failed; the chunk will be retried');
        await sleep(delay);
        continue;
      }
      this.processing = [];
      if (this.isClosed() || this.fenced) return;
      // Coordinated (shared transactions): staged records join the buffer as they are staged, so a
      // cut taken while this lane waits for older records of other lanes holds everything staged
      // before it (a hop's order across lanes then holds across transactions too).
      const progressive = this.opts.sink.coordinated !== undefined && this.opts.stagingOrder !== undefined && this.opts.sink.stage !== undefined;
      if (this.opts.stagingOrder && this.opts.sink.stage) {
        if (!(await this.stageInOrder(this.opts.stagingOrder, chunk, records, progressive))) return;
      } else this.opts.sink.stage?.(records);
      if (!progressive) this.take(records, next, meta);
      this.resumeIfDrained();
      this.maybeCommit();
    }
  }

  /** Backpressure: a paused partition resumes once its queue is down to half the high-water mark. */
  private resumeIfDrained(): void {
    if (this.paused && this.queue.length <= this.opts.highWater / 2) {
      this.paused = false;
      this.opts.resume();
    }
  }

  /** Processed records join the buffer; `next` is the offset after the last of them; `meta`: the de-duplication state as of `next`. */
  private take(records: ChainRecord[], next: bigint, meta?: string): void {
    this.buffer.push(...records);
    this.bufferNext = next.toString();
    this.bufferMeta = meta;
    this.nextOffset = next;
  }

  /**
   * The next chunk to process and the offset after it. De-duplicating lanes drop the copies a
   * deduplicated hop wrote again (deciding once per record: a chunk whose processing failed is
   * retried as it was) and return the state as of `next`; undefined when the chunk held only copies.
   */
  private nextChunk(): { chunk: KafkaMessage[]; next: bigint; meta?: string } | undefined {
    if (this.retryChunk) {
      const retry = this.retryChunk;
      this.retryChunk = undefined;
      return retry;
    }
    const chunk = this.takeChunk();
    const next = chunk.length === 0 ? 0n : BigInt(chunk[chunk.length - 1].offset) + 1n;
    if (!this.dedup || chunk.length === 0) return { chunk, next };
    const dedup = this.dedup;
    const kept = chunk.filter((m) => dedup.keep(m));
    const meta = dedup.snapshot();
    if (kept.length < chunk.length) this.opts.dedup!.onSkipped(chunk.length - kept.length);
    if (kept.length > 0) return { chunk: kept, next, meta };
    // Only copies: nothing to process; the position moves on (committed with the next records).
    this.nextOffset = next;
    if (this.buffer.length > 0) {
      this.bufferNext = next.toString();
      this.bufferMeta = meta;
    }
    return undefined;
  }

  /** Oldest record fetched and not yet staged (StagingOrder compares lanes by it). */
  headTimestamp(): number | undefined {
    if (this.isClosed() || this.fenced) return undefined;
    const head = this.unstaged[0] ?? this.processing[0]?.timestamp ?? this.queue[0]?.timestamp;
    return head === undefined ? undefined : Number(head);
  }

  /**
   * Stages a processed chunk's records in order, each prefix once no other lane holds an older
   * fetched record; false when the lane closed or was fenced meanwhile.
   */
  private async stageInOrder(order: StagingOrder, chunk: KafkaMessage[], records: ChainRecord[], progressive: boolean): Promise<boolean> {
    // One ChainRecord per consumed record; should that ever not hold, the chunk goes as one piece.
    const oneToOne = records.length === chunk.length;
    const ts = oneToOne ? chunk.map((m) => Number(m.timestamp)) : [Math.max(...chunk.map((m) => Number(m.timestamp)))];
    // Pieces i..j-1 are records i..j-1 (one-to-one) or, otherwise, the one piece of all records.
    const pieces = ts.length;
    this.unstaged = ts;
    const stopped = () => this.isClosed() || this.fenced;
    for (let i = 0; i < pieces; ) {
      await order.waitFor(this, ts[i], stopped);
      if (stopped()) {
        this.unstaged = [];
        return false;
      }
      const bound = order.bound(this);
      let j = i + 1;
      while (j < pieces && ts[j] <= bound) j++;
      const staged = !oneToOne || (i === 0 && j === pieces) ? records : records.slice(i, j);
      this.opts.sink.stage!(staged);
      if (progressive) {
        this.take(staged, BigInt(chunk[oneToOne ? j - 1 : chunk.length - 1].offset) + 1n);
        this.maybeCommit();
      }
      this.unstaged = ts.slice(j);
      i = j;
      order.changed();
    }
    return true;
  }

  /** The next chunk, without records already processed (re-delivered after a rebalance) or below the committed offset. */
  private takeChunk(): KafkaMessage[] {
    const chunk = this.queue.splice(0, this.opts.chunkSize);
    const from = this.nextOffset;
    if (from === null || chunk.length === 0 || BigInt(chunk[0].offset) >= from) return chunk; // the usual case: one parse per chunk
    return chunk.filter((m) => BigInt(m.offset) >= from);
  }

  private maybeCommit(): void {
    if (this.committing || this.buffer.length === 0 || this.isClosed() || this.fenced) return;
    const coordinated = this.opts.sink.coordinated;
    if (coordinated) {
      coordinated.announce(this, this.state === 'draining' || this.buffer.length >= this.opts.commit.maxRecords);
      return;
    }
    const wait = this.lastCommitStart + this.opts.commit.intervalMs - Date.now();
    if (this.state === 'draining' || this.buffer.length >= this.opts.commit.maxRecords || wait <= 0) {
      clearTimeout(this.timer);
      this.timer = undefined;
      this.startCommit();
    } else {
      this.timer ??= setTimeout(() => {
        this.timer = undefined;
        this.maybeCommit();
      }, wait);
    }
  }

  /** The offset after the last record this lane processed (null: none yet, or closed / fenced). */
  processedUpTo(): bigint | null {
    return this.isClosed() || this.fenced ? null : this.nextOffset;
  }

  /** Coordinated mode: the sink starts a transaction and takes what this lane processed so far. */
  cut(): void {
    if (!this.committing && this.buffer.length > 0 && !this.isClosed() && !this.fenced) this.startCommit();
    const waiter = this.cutWaiter;
    this.cutWaiter = undefined;
    waiter?.();
  }

  /** Coordinated mode: resolves at the sink's next cut of this lane. */
  private nextCut(): Promise<void> {
    return new Promise((resolve) => {
      const previous = this.cutWaiter;
      this.cutWaiter = () => {
        previous?.();
        resolve();
      };
    });
  }

  private startCommit(): void {
    const records = this.buffer;
    const batch: CommitBatch & { records: ChainRecord[] } = { topic: this.opts.topic, partition: this.opts.partition, nextOffset: this.bufferNext!, records, ...(this.bufferMeta === undefined ? {} : { metadata: this.bufferMeta }) };
    this.buffer = [];
    this.lastCommitStart = Date.now();
    this.committing = this.commitUntilDone(batch).finally(() => {
      this.committing = undefined;
      this.maybeCommit();
    });
  }

  private async commitUntilDone(batch: CommitBatch & { records: ChainRecord[] }): Promise<void> {
    const started = process.hrtime.bigint();
    // The producer retries retriable answers without limit (broker restarting): a commit stuck that
    // long makes the chain not ready until it completes.
    const watchdog = setTimeout(() => this.opts.onFailure(new Error(`commit of partition ${batch.partition} has been running for ${SLOW_COMMIT_MS} ms`), 'commit'), SLOW_COMMIT_MS);
    let committed: boolean;
    try {
      committed = await this.commitAttempts(batch);
    } finally {
      clearTimeout(watchdog);
    }
    if (!committed) return;
    this.lastCommitted = batch.nextOffset;
    this.opts.onHealthy();
    this.opts.onCommitted(batch.records, Number(process.hrtime.bigint() - started) / 1e9);
  }

  /** True once the batch is committed; false when the partition was lost (fenced or abandoned). */
  private async commitAttempts(batch: CommitBatch): Promise<boolean> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.opts.sink.commit(batch);
        return true;
      } catch (err) {
        if (err instanceof ProducerFencedError) {
          this.fence(err);
          return false;
        }
        this.opts.onFailure(err as Error, 'commit');
        if (this.isClosed()) return false;
        this.opts.log.debug({ partition: batch.partition, err: (err as Error).message, attempt }, 'commit failed; retrying with a fresh producer');
        await sleep(Math.min(50 * 2 ** attempt, MAX_BACKOFF_MS));
        if (!this.opts.sink.exactlyOnce) continue; // at-least-once: resending may duplicate, never loses
        // Before resending: the failed commit may have completed (its answer lost), and another
        // instance may own the partition now. Only an unchanged committed offset means "ours, not
        // committed"; retaking the transactional id in any other case could fence the rightful owner.
        let committed: string | null;
        try {
          committed = await this.opts.sink.committed();
        } catch {
          continue; // the broker is still away: the next attempt fails fast or succeeds
        }
        if (committed === batch.nextOffset) return true;
        if (committed !== this.lastCommitted) {
          this.fence(new ProducerFencedError(`partition ${batch.partition} was committed to ${committed} by another owner (this lane last committed ${this.lastCommitted})`));
          return false;
        }
      }
    }
  }

  private fence(err: Error): void {
    if (this.fenced) return;
    this.fenced = true;
    this.opts.stagingOrder?.remove(this);
    this.queue = [];
    this.retryChunk = undefined;
    this.buffer = [];
    this.opts.onFenced(err);
  }

  /** Graceful stop: processes what is queued, commits everything, lets go of the partition. */
  async drain(): Promise<void> {
    if (this.state !== 'running') return this.closeSink();
    this.state = 'draining';
    await this.ready;
    while (this.pumping || this.committing || (this.buffer.length > 0 && !this.fenced)) {
      if (!this.pumping && !this.committing) {
        // Coordinated: the sink cuts the lane (soon: a draining lane is urgent); wait for that.
        const cut = this.opts.sink.coordinated && this.buffer.length > 0 ? this.nextCut() : undefined;
        this.maybeCommit();
        if (cut && !this.committing) await cut;
      }
      await Promise.all([this.pumping, this.committing]);
    }
    this.state = 'closed';
    this.opts.stagingOrder?.remove(this);
    await this.closeSink();
  }

  /** Ownership lost or a rebalance: drops what is not committed (it is re-read from the committed offset), waits for an in-flight commit. */
  async abandon(): Promise<void> {
    if (this.isClosed()) return;
    this.state = 'closed';
    this.opts.stagingOrder?.remove(this);
    clearTimeout(this.timer);
    this.queue = [];
    this.retryChunk = undefined;
    this.buffer = [];
    await Promise.allSettled([this.ready, this.pumping, this.committing]);
    await this.closeSink();
  }

  private closeSink(): Promise<void> {
    clearTimeout(this.timer);
    return this.opts.sink.close().catch(() => undefined);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
