import type { Producer, RecordMetadata, Transaction } from 'kafkajs';
import { isRecordError, kafkaErrorType } from '../kafka/errors';
import { addOffsets, canOverlapOffsets, isGenerationError, sendOffsets, sendWithOffsets, type ConsumerGroupMetadata, type TxnOffsets } from '../kafka/eos-v2';
import { CommitPlan, connectEngineProducer, offsetEntry, ProducerFencedError, probeRecords, rejectOversized, type CommitBatch, type SinkOptions, type SinkRecord } from './commit-sink';
import { crashPoint } from './fault-injection';
import { checkInstanceId, randomInstanceId } from './instance-id';
import type { CommitPolicy } from './lane';

/** Transactional producers of one shared sink, taking turns (see SharedTransactions). */
export const SHARED_PRODUCERS = 3;

/**
 * Transaction timeout of the shared producers. Their ids are `<prefix>.<instance>.<k>`: with the
 * default instance (random per start) nobody re-initialises a crashed process's ids, so the
 * coordinator's timeout is what aborts its open transaction. Until then the new owners of its
 * partitions read their offsets as unstable (they wait) and read_committed readers of its output
 * partitions cannot read past it. (A process restarted with the same stable instance id aborts it
 * at once: the runners warm the pool up, InitProducerId, before their lanes read their offsets.) A
 * commit takes milliseconds, so 10 s leaves ample room for a slow broker while bounding that stall.
 */
export const SHARED_TRANSACTION_TIMEOUT_MS = 10000;

const MAX_BACKOFF_MS = 5000;

/**
 * Default of `readerWaitMs`: how long a transaction may wait, after one that wrote records lanes of
 * the same sink read (a repartition hop's topic), for those lanes to process them. Those records
 * become readable when that transaction commits; the reading lanes need a fetch and their
 * processing (a few ms) before they can hand them in, so a transaction cut at once would leave them
 * for the one after — a whole commit more on every event's path through the hop. BENCHMARKS.md item 17.
 */
export const READER_WAIT_MS = 20;

/**
 * One consumer group generation as this member joined it. Batches are committed with its
 * metadata; once the coordinator refused it (a newer generation exists: this member missed a
 * rebalance, or rejoined), every later batch of it is refused here at once.
 */
export class Generation {
  fenced?: Error;
  constructor(
    readonly metadata: ConsumerGroupMetadata,
    readonly group: SharedGroup,
  ) {}
}

/** What a consumer group using a shared sink tells it (a chain runner). */
export interface SharedGroupHooks {
  /** The group's committed offset of a partition once stable (used after a failed commit: did it commit after all?). */
  readStable(topic: string, partition: number): Promise<string | null>;
  /** A commit failed for a reason that is retried (broker away): readiness and ERROR logs. */
  onFailure?(err: Error): void;
  /** A commit succeeded again. */
  onHealthy?(): void;
  /** `batches` of the group's lane batches were committed (metrics). */
  onCommitted?(batches: number): void;
  /** A transaction was refused for the group's stale generation (metrics). */
  onRefused?(): void;
}

/** One consumer group committing through a shared sink: its current generation and hooks. */
export class SharedGroup {
  current?: Generation;
  constructor(
    readonly groupId: string,
    readonly hooks: SharedGroupHooks,
  ) {}

  /** The member joined a (new) generation: batches of earlier ones are refused from now on (the coordinator would). */
  join(metadata: ConsumerGroupMetadata): Generation {
    if (this.current) this.current.fenced ??= new Error(`generation ${this.current.metadata.generationId} was replaced by ${metadata.generationId}`);
    this.current = new Generation(metadata, this);
    return this.current;
  }
}

/** A lane whose commits the sink schedules (PartitionLane in coordinated mode). */
export interface CuttableLane {
  /** Hands everything processed so far to the sink (a commit() call, synchronously), unless a batch of it is in flight. */
  cut(): void;
  /** The partition it reads: a transaction that wrote to it may wait for the lane (readerWaitMs). */
  readonly input?: { topic: string; partition: number };
  /** The offset after the last record it processed; null when none yet or the lane is closed. */
  processedUpTo?(): bigint | null;
}

/** Per partition written by a transaction: the offset just past the first record of its last request there (noteWritten). */
type WrittenEnds = Map<string, bigint>;

const partitionKey = (topic: string, partition: number): string => `${topic}\u0000${partition}`;

interface Pending {
  batch: CommitBatch;
  generation: Generation;
  resolve(): void;
  reject(err: Error): void;
  /** A transaction holding it failed in a way that may still have committed it: check before resending. */
  uncertain?: boolean;
}

/** One producer of the pool: created and initialised (InitProducerId) on first use, recreated after a failure. */
class Slot {
  private producer?: Promise<Producer>;
  /** Settles once an abort of this producer's open transaction is done (the next transaction on it waits). */
  busy: Promise<void> = Promise.resolve();

  constructor(
    readonly transactionalId: string,
    private readonly opts: SharedTransactionsOptions,
  ) {}

  connected(): Promise<Producer> {
    this.producer ??= connectEngineProducer(this.opts.kafka, this.transactionalId, this.opts.transactionTimeoutMs ?? SHARED_TRANSACTION_TIMEOUT_MS);
    this.producer.catch(() => (this.producer = undefined));
    return this.producer;
  }

  /**
   * Forgets the producer (its transaction state is unknown) and initialises a fresh one at once:
   * InitProducerId aborts whatever the failed transaction left open, so the partitions whose
   * offsets it held read as stable again without waiting for the transaction timeout.
   */
  reset(): void {
    const p = this.producer;
    this.producer = undefined;
    void p?.then((x) => x.disconnect()).catch(() => undefined);
    this.connected().catch(() => undefined);
  }

  async close(): Promise<void> {
    const p = this.producer;
    this.producer = undefined;
    if (p) await p.then((x) => x.disconnect()).catch(() => undefined);
  }
}

/**
 * A transaction records are sent into as they are processed (sendAsProcessed): lanes stage their
 * processed records (SharedTransactions.stage) into the one open transaction, the sink sends them
 * one request at a time, and the transaction is committed by the next cut — by then it only lacks
 * the consumed offsets and EndTxn, where a transaction written at commit time also waits for its
 * AddPartitionsToTxn and its whole Produce. This is Kafka Streams' shape (one producer per thread
 * sending into the open transaction, a commit adding the offsets); read_committed readers see the
 * records at commit either way.
 */
class OpenTransaction {
  /** Records queued into it (sent or waiting in the send queue). */
  queued = 0;
  /** A send or AddOffsetsToTxn failed: it cannot commit; its batches are written at commit elsewhere. */
  failed?: unknown;
  aborted = false;
  /** Groups whose offsets partition was added (AddOffsetsToTxn, sent before its first records). */
  readonly offsetsAdded = new Set<string>();
  /** The request of it in flight, if any (an abort waits for it). */
  inFlight?: Promise<void>;
  /** Where its records were appended (readerWaitMs). */
  readonly written: WrittenEnds = new Map();
  readonly txn: Promise<Transaction>;

  constructor(readonly slot: Slot) {
    this.txn = slot.busy.then(() => slot.connected()).then((p) => p.transaction());
    this.txn.catch((err) => (this.failed ??= err));
  }
}

/** One entry of the sink's send queue: records to send into a transaction, or a point later sends wait behind. */
type Queued = { t: OpenTransaction; records: SinkRecord[] } | { gate: Promise<unknown> } | { barrier: OpenTransaction; done: () => void };

export interface SharedTransactionsOptions extends SinkOptions {
  /**
   * First part of the transactional ids (`<idPrefix>.<instance>.<k>`); default `groupId`. A sink
   * shared by several groups of one process uses one of them (ids must be unique per deployment).
   */
  idPrefix?: string;
  /**
   * This process's part of the transactional ids ([A-Za-z0-9._-], at most 64); two live processes
   * must never share one. Default: random per start. Reused after a restart, warmUp aborts what the
   * previous process left open.
   */
  instanceId?: string;
  /** Transaction-level reports (metrics). */
  observer?: SharedTransactionsObserver;
  /** Producers taking turns (default SHARED_PRODUCERS). */
  producers?: number;
  transactionTimeoutMs?: number;
  /**
   * When a transaction starts: `intervalMs` after the previous one started (and never while one is
   * in flight), or at once when a lane holds `maxRecords` or drains. Default: as soon as a batch waits.
   */
  commit?: CommitPolicy;
  /**
   * Send the groups' TxnOffsetCommits concurrently with the records' Produce (after AddOffsetsToTxn
   * per group and the outputs' AddPartitionsToTxn; see transact). Default true; false: one request
   * after the other, as kafkajs does.
   */
  overlapOffsets?: boolean;
  /**
   * Send staged records (stage()) into an open transaction as they are processed, so a commit only
   * adds the offsets and ends it (see OpenTransaction). Default: `commit.sendAsProcessed`, else
   * false — every record is sent at commit time, as batches handed in by commit() alone always are.
   */
  sendAsProcessed?: boolean;
}

/** What a shared sink reports per transaction (Prometheus metrics; see sharedSinkObserver). */
export interface SharedTransactionsObserver {
  /** A transaction committed `records` consumed records in `seconds` (taking the producer to EndTxn). */
  committed(records: number, seconds: number): void;
  /** AddOffsetsToTxn answered CONCURRENT_TRANSACTIONS and was retried. */
  concurrentRetry(): void;
  /** A transaction holding records sent as processed could not commit them as sent (see SharedTransactions.eagerFallbacks). */
  eagerFallback?(): void;
  /** A transaction waited `seconds` for lanes reading what the previous one wrote; `caughtUp`: they processed it (else the wait ran out). */
  readerWait?(seconds: number, caughtUp: boolean): void;
}

/** What a shared sink did, for status and tests. */
export interface SharedTransactionCounters {
  transactions: number;
  /** Lane batches committed (several per transaction). */
  batches: number;
  /** AddOffsetsToTxn answered CONCURRENT_TRANSACTIONS (a producer's previous markers not written yet) and retried. */
  concurrentRetries: number;
  /** Transactions refused because a member's generation is stale (its lanes fenced). */
  generationRefusals: number;
  /** Transactions that failed and were retried (broker away, producer reset). */
  retries: number;
  /** Transactions whose records were sent as processed (sendAsProcessed). */
  eagerTransactions: number;
  /**
   * Open transactions aborted because what they held did not match the batches cut (a lane closed or
   * fenced with records sent, records from before a failure): their batches were written at commit.
   */
  eagerFallbacks: number;
  /** Transactions that waited for in-process readers of what the previous one wrote (readerWaitMs), and of those, the waits that ran out. */
  readerWaits: number;
  readerWaitTimeouts: number;
}

/** TxnOffsetCommit of one group was refused for a stale generation: the transaction is aborted. */
class GroupRefused extends Error {
  constructor(
    readonly group: SharedGroup,
    readonly original: unknown,
  ) {
    super(`group ${group.groupId}: ${kafkaErrorType(original)}`);
  }
}

/**
 * Exactly-once v2 (KIP-447) for the chains of one process: one transaction at a time commits
 * everything lanes have processed — every batch's outputs, side outputs, dead letters and replies,
 * and every partition's offset, one TxnOffsetCommit per consumer group carrying that group's
 * generation. A repartition hop and the chain reading its topic, both in one process, share it: a
 * transaction's fixed cost (~2–3 ms of broker CPU and 1–2 ms of client CPU, `npm run bench:txn`)
 * is paid once per interval for the whole process instead of once per partition and chain.
 *
 * Scheduling: lanes in coordinated mode (LaneSink.coordinated) announce that they hold records; the
 * sink starts a transaction once the commit interval has passed since the previous one started and
 * none is in flight (or at once for a full or draining lane), and then *cuts* every announced lane:
 * each hands in all it has processed. Because a transaction takes everything processed before it
 * started and transactions never overlap, records staged in order (stage(): a repartition hop's
 * processing order across its lanes, StagingOrder) are written in that order — within a
 * transaction they are sorted by it, and a later transaction only holds later records. A failed
 * transaction is retried here, its batches first, so that order also holds across failures.
 *
 * A few producers (`<prefix>.<instance>.<k>`) take turns so that the one just committed (the
 * coordinator still writing its markers, answering CONCURRENT_TRANSACTIONS) is not the next one
 * used. Fencing moves from transactional ids to the group coordinator: a member that missed a
 * rebalance (a zombie) has its TxnOffsetCommit refused (ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID), the
 * transaction is aborted, that generation's batches are refused (ProducerFencedError: the runner
 * rebuilds its lanes on the next join) and the other groups' batches go into the next transaction.
 * A new owner reads its start offset with require_stable, so it waits while any transaction holding
 * that partition's offset is pending. A lane has at most one batch in flight.
 *
 * By default a transaction's records are sent at commit time, in as few produce requests as the
 * topics' limits allow. With `commit.sendAsProcessed` they are sent into an open transaction as
 * lanes stage them (OpenTransaction), and the cut commits that transaction if it holds exactly the
 * batches cut; the next records go into the next producer's transaction meanwhile. Every send goes
 * through one queue, so records reach each partition in staging order across transactions too, and
 * after a failure nothing is sent ahead of the batches being retried.
 */
export class SharedTransactions {
  readonly counters: SharedTransactionCounters = { transactions: 0, batches: 0, concurrentRetries: 0, generationRefusals: 0, retries: 0, eagerTransactions: 0, eagerFallbacks: 0, readerWaits: 0, readerWaitTimeouts: 0 };
  readonly instanceId: string;
  private readonly slots: Slot[];
  private next = 0;
  private pending: Pending[] = [];
  /** Batches of a failed transaction, sent first in the next one. */
  private retry: Pending[] = [];
  private readonly announced = new Set<CuttableLane>();
  private urgent = false;
  private running?: Promise<void>;
  private timer?: NodeJS.Timeout;
  private soon?: NodeJS.Immediate;
  private lastStart = 0;
  private failures = 0;
  private backoffUntil = 0;
  /** The next staging number (stage() writes it into SinkRecord.stagedSeq; recordsOf sorts by it). */
  private seq = 0;
  private readonly groups = new Map<string, SharedGroup>();
  private closed = false;
  private warm?: Promise<void>;
  /** sendAsProcessed: staged records are sent into `open` as they come (see OpenTransaction). */
  private eager: boolean;
  private open?: OpenTransaction;
  /** The open transaction a staged record was queued into. */
  private readonly queuedIn = new WeakMap<SinkRecord, OpenTransaction>();
  /** Sends of every transaction, one request at a time, in staging order (a partition's records are written in it). */
  private sendQueue: Queued[] = [];
  private pumping = false;
  /** A failed transaction is being handled (its batches re-queued or committed one by one): nothing may be sent ahead of them. */
  private recovering = false;
  /** Lanes of this sink by the partition they read (learned from their announcements). */
  private readonly readers = new Map<string, CuttableLane>();
  /** What the last transaction wrote that lanes of this sink read and have not processed yet, and until when the next transaction waits for them. */
  private awaited?: { ends: WrittenEnds; since: number; until: number };

  constructor(private opts: SharedTransactionsOptions) {
    this.eager = opts.sendAsProcessed ?? opts.commit?.sendAsProcessed ?? false;
    this.instanceId = opts.instanceId === undefined ? randomInstanceId() : checkInstanceId(opts.instanceId, 'instanceId');
    const prefix = opts.idPrefix ?? opts.groupId;
    this.slots = Array.from({ length: opts.producers ?? SHARED_PRODUCERS }, (_, k) => new Slot(`${prefix}.${this.instanceId}.${k}`, opts));
  }

  get transactionalIds(): string[] {
    return this.slots.map((s) => s.transactionalId);
  }

  /**
   * Initialises every producer (InitProducerId), once; a failed warm-up is tried again by the next
   * call. With a stable instance id this is what aborts the transaction a crashed predecessor left
   * open on the same ids, so the runners' lanes await it before reading their offsets with
   * require_stable (else they would wait for the transaction timeout).
   */
  warmUp(): Promise<void> {
    this.warm ??= Promise.all(this.slots.map((s) => s.connected())).then(() => undefined);
    this.warm.catch(() => (this.warm = undefined));
    return this.warm;
  }

  /**
   * Another chain joins this sink: transactions start at the shorter of the two intervals, the
   * smaller record bound, wait for readers the longer of the two readerWaitMs set; records are sent
   * as processed if either chain asks for it.
   */
  tighten(commit: CommitPolicy): void {
    const own = this.opts.commit;
    const readerWaitMs = own?.readerWaitMs === undefined ? commit.readerWaitMs : commit.readerWaitMs === undefined ? own.readerWaitMs : Math.max(own.readerWaitMs, commit.readerWaitMs);
    this.opts.commit = own ? { intervalMs: Math.min(own.intervalMs, commit.intervalMs), maxRecords: Math.min(own.maxRecords, commit.maxRecords), ...(readerWaitMs === undefined ? {} : { readerWaitMs }) } : { ...commit };
    if (commit.sendAsProcessed && this.opts.sendAsProcessed === undefined) this.eager = true;
  }

  /** The handle of one consumer group committing here (one per chain runner). */
  group(groupId: string, hooks: SharedGroupHooks): SharedGroup {
    let g = this.groups.get(groupId);
    if (!g) this.groups.set(groupId, (g = new SharedGroup(groupId, hooks)));
    return g;
  }

  /** Single-group use (tests): the member of `opts.groupId` joined a (new) generation. */
  join(metadata: ConsumerGroupMetadata): Generation {
    return this.group(this.opts.groupId, { readStable: async () => null }).join(metadata);
  }

  /**
   * Records a lane processed, in processing order (a hop's lanes: in staging order across lanes,
   * StagingOrder). They are numbered, and a transaction writes them in that order. With
   * sendAsProcessed they are also sent now into the open transaction, unless a failed transaction's
   * batches are still to be written (they go first; until then records are sent at commit).
   */
  stage(records: readonly SinkRecord[]): void {
    for (const r of records) r.stagedSeq = this.seq++;
    if (records.length === 0 || !this.sendingNow()) return;
    const t = (this.open ??= new OpenTransaction(this.nextSlot()));
    const list = [...records];
    rejectOversized({ topic: '', partition: -1, nextOffset: '', records: list }, this.opts.limits);
    for (const r of list) this.queuedIn.set(r, t);
    t.queued += list.length;
    this.sendQueue.push({ t, records: list });
    this.pump();
  }

  /** Whether staged records are sent as processed (commit.sendAsProcessed of any chain using this sink). */
  get sendsAsProcessed(): boolean {
    return this.eager;
  }

  private sendingNow(): boolean {
    return this.eager && !this.closed && this.failures === 0 && this.retry.length === 0 && !this.recovering;
  }

  /** Works through the send queue, one request at a time. */
  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    void this.drainSendQueue().finally(() => {
      this.pumping = false;
      if (this.sendQueue.length > 0) this.pump();
    });
  }

  private async drainSendQueue(): Promise<void> {
    while (this.sendQueue.length > 0) {
      const head = this.sendQueue.shift()!;
      if ('gate' in head) {
        await head.gate;
        continue;
      }
      if ('barrier' in head) {
        head.done();
        continue;
      }
      // Everything queued for this transaction meanwhile goes in one request.
      const t = head.t;
      const records = [...head.records];
      while (this.sendQueue.length > 0) {
        const next = this.sendQueue[0];
        if (!('t' in next) || next.t !== t) break;
        records.push(...next.records);
        this.sendQueue.shift();
      }
      if (t.failed !== undefined || t.aborted) continue;
      t.inFlight = this.sendInto(t, records);
      await t.inFlight;
      t.inFlight = undefined;
    }
  }

  /** One send into an open transaction; its first adds every group's offsets partition (off the commit's path). Never rejects. */
  private async sendInto(t: OpenTransaction, records: SinkRecord[]): Promise<void> {
    try {
      const txn = await t.txn;
      if (t.offsetsAdded.size === 0) {
        for (const groupId of this.groups.keys()) {
          await addOffsets(txn, groupId, () => this.concurrentRetry());
          t.offsetsAdded.add(groupId);
        }
      }
      await this.sendPlan(txn, records, t.written);
    } catch (err) {
      t.failed ??= err;
    }
  }

  private concurrentRetry(): void {
    this.counters.concurrentRetries += 1;
    this.opts.observer?.concurrentRetry();
  }

  /**
   * At a cut: the open transaction, if it holds exactly the records of these batches (the usual
   * case: every lane that staged records is cut). Otherwise — a lane closed or was fenced after
   * staging, records staged before a failure are among the batches, a send failed — it is aborted
   * and undefined returned: the batches are written at commit instead. Synchronous, so nothing is
   * staged between the cut and this decision.
   */
  private takeOpen(entries: Pending[]): OpenTransaction | undefined {
    const t = this.open;
    this.open = undefined;
    if (!t) return undefined;
    let inT = 0;
    let others = 0;
    for (const e of entries) for (const r of e.batch.records) this.queuedIn.get(r) === t ? inT++ : others++;
    if (inT === t.queued && others === 0 && t.failed === undefined && !entries.some((e) => e.uncertain)) return t;
    this.counters.eagerFallbacks += 1;
    this.opts.observer?.eagerFallback?.();
    this.opts.log.debug({ sent: t.queued, cut: inT, notSent: others, err: t.failed === undefined ? undefined : (t.failed as Error).message }, 'shared txn: the open transaction does not hold the batches cut; aborting it and writing them at commit');
    void this.abortOpen(t);
    return undefined;
  }

  /** Aborts an open transaction once its request in flight settled; its producer takes no new transaction before. */
  private abortOpen(t: OpenTransaction): Promise<void> {
    t.aborted = true;
    const done = (async () => {
      await t.inFlight;
      const txn = await t.txn.catch(() => undefined);
      if (txn?.isActive()) {
        try {
          await txn.abort();
        } catch {
          t.slot.reset(); // its state is unknown: a fresh producer aborts what is left open
        }
      }
    })();
    t.slot.busy = done;
    return done;
  }

  /** A transaction failed: the open one holds later records, which must not be written before its batches. */
  private dropOpen(): Promise<void> {
    const t = this.open;
    this.open = undefined;
    return t ? this.abortOpen(t) : Promise.resolve();
  }

  /** A coordinated lane holds records (urgent: it is full or draining). It is cut when the next transaction starts. */
  announce(lane: CuttableLane, urgent: boolean): void {
    if (this.closed) return;
    if (lane.input) this.readers.set(partitionKey(lane.input.topic, lane.input.partition), lane);
    this.announced.add(lane);
    if (urgent) this.urgent = true;
    this.schedule();
  }

  /** Commits the batch in the next shared transaction. ProducerFencedError: its generation is stale. */
  commit(batch: CommitBatch, generation: Generation): Promise<void> {
    if (generation.fenced) return Promise.reject(this.fencedError(generation, batch));
    if (this.closed) return Promise.reject(new Error('shared transactions closed'));
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ batch, generation, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.running || this.closed) return;
    if (this.announced.size === 0 && this.pending.length === 0 && this.retry.length === 0) return;
    const now = Date.now();
    const interval = this.opts.commit?.intervalMs ?? 0;
    let wait = Math.max(this.backoffUntil - now, this.urgent ? 0 : this.lastStart + interval - now);
    // Due: but lanes reading what the last transaction wrote may be about to hand it in (each
    // announcement calls this again).
    if (wait <= 0 && !this.urgent) wait = this.readerWait(now);
    // Never from inside the caller's turn: lanes resolved by the last transaction hand in (announce)
    // through microtasks, one after another; starting in a later macrotask cuts all of them, so no
    // lane's earlier records miss a transaction that takes another lane's later ones.
    if (wait <= 0) {
      clearTimeout(this.timer);
      this.timer = undefined;
      this.soon ??= setImmediate(() => {
        this.soon = undefined;
        if (!this.running && !this.closed) this.start();
      });
    } else if (!this.timer && !this.soon) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.schedule();
      }, wait);
    }
  }

  /**
   * Ms the next transaction still waits for lanes of this sink that read what the last one wrote
   * (0: none left, or the wait ran out). Ends the wait, and reports it, when it returns 0.
   */
  private readerWait(now: number): number {
    const a = this.awaited;
    if (!a) return 0;
    for (const [k, end] of a.ends) {
      const at = this.readers.get(k)?.processedUpTo?.();
      if (at === null || at === undefined || at >= end) a.ends.delete(k);
    }
    const left = a.ends.size === 0 ? 0 : Math.max(0, a.until - now);
    if (left > 0) return left;
    this.awaited = undefined;
    const caughtUp = a.ends.size === 0;
    this.counters.readerWaits += 1;
    if (!caughtUp) this.counters.readerWaitTimeouts += 1;
    this.opts.observer?.readerWait?.(Math.max(0, now - a.since) / 1000, caughtUp);
    return 0;
  }

  /**
   * A transaction committed: the partitions it wrote that lanes of this sink read (a hop's topic)
   * are awaited by the next one (readerWait), at most readerWaitMs past when it is due.
   */
  private awaitReaders(written: WrittenEnds): void {
    // After a transaction wrote records that lanes of this sink read (a repartition hop's topic read
    // by the chain behind it, in this process), the next one starts once those lanes processed them,
    // or `commit.readerWaitMs` after it could have started; a full or draining lane starts it at once.
    const limit = this.opts.commit?.readerWaitMs ?? READER_WAIT_MS;
    if (limit <= 0 || written.size === 0 || this.readers.size === 0) return;
    const ends: WrittenEnds = new Map();
    for (const [k, end] of written) if (this.readers.has(k)) ends.set(k, end);
    if (ends.size === 0) return;
    const now = Date.now();
    const due = Math.max(now, this.lastStart + (this.opts.commit?.intervalMs ?? 0));
    this.awaited = { ends, since: due, until: due + limit };
  }

  private start(): void {
    this.awaited = undefined;
    this.lastStart = Date.now();
    this.urgent = false;
    // The cut: every announced lane hands in what it processed (synchronously, into `pending`).
    const lanes = [...this.announced];
    this.announced.clear();
    for (const lane of lanes) lane.cut();
    const entries = [...this.retry, ...this.pending];
    this.retry = [];
    this.pending = [];
    if (entries.length === 0) return;
    this.running = this.runOne(entries).finally(() => {
      this.running = undefined;
      this.schedule();
    });
  }

  /** The next producer in turn. */
  private nextSlot(): Slot {
    const slot = this.slots[this.next];
    this.next = (this.next + 1) % this.slots.length;
    return slot;
  }

  private async runOne(all: Pending[]): Promise<void> {
    let entries: Pending[] = [];
    for (const e of all) {
      if (e.generation.fenced || e.generation !== e.generation.group.current) e.reject(this.fencedError(e.generation, e.batch));
      else entries.push(e);
    }
    if (entries.length === 0) return;
    // Synchronously with the cut: the open transaction if it holds exactly these batches; else these
    // are written at commit, and a gate in the send queue keeps records staged from now on behind them.
    const open = this.takeOpen(entries);
    let release: (() => void) | undefined;
    if (!open && this.eager) this.sendQueue.push({ gate: new Promise<void>((r) => (release = r)) });
    const slot = open?.slot ?? this.nextSlot();
    let written: WrittenEnds = new Map();
    try {
      if (open) {
        await this.commitOpen(open, entries);
        written = open.written;
        this.counters.eagerTransactions += 1;
      } else {
        entries = await this.settleUncertain(entries);
        if (entries.length === 0) return;
        await this.transact(slot, entries, false, release, written);
      }
      this.committed(entries, 1);
      this.awaitReaders(written);
    } catch (err) {
      // Records staged meanwhile went into a later transaction: it is aborted, and they are written
      // after these batches (held until then: see sendsAsProcessed).
      this.recovering = true;
      try {
        const dropped = this.dropOpen();
        release?.();
        await dropped;
        if (err instanceof GroupRefused) return this.refused(err, entries);
        if (isRecordError(err)) return await this.oneByOne(slot, entries);
        // The broker is away or the producer broke: a fresh producer, the same batches again (first
        // in the next transaction, so a hop's write order holds), after a backoff.
        slot.reset();
        this.counters.retries += 1;
        this.failures += 1;
        this.backoffUntil = Date.now() + Math.min(50 * 2 ** (this.failures - 1), MAX_BACKOFF_MS);
        const groups = new Set(entries.map((e) => e.generation.group));
        for (const g of groups) g.hooks.onFailure?.(err as Error);
        this.opts.log.debug({ err: (err as Error).message, batches: entries.length, failures: this.failures }, 'shared transaction failed; retrying its batches with a fresh producer');
        for (const e of entries) e.uncertain = true;
        this.retry.unshift(...entries);
      } finally {
        this.recovering = false;
      }
    } finally {
      release?.();
    }
  }

  /**
   * Commits an open transaction (sendAsProcessed): once its sends are done, the groups' offsets
   * (TxnOffsetCommit; their AddOffsetsToTxn went before its first records unless a group is new)
   * and EndTxn — 2 serial round trips after the last send, where a transaction written at commit
   * takes 4 with its AddPartitionsToTxn and Produce. Aborted on failure.
   */
  private async commitOpen(t: OpenTransaction, entries: Pending[]): Promise<void> {
    const t0 = performance.now();
    await new Promise<void>((done) => {
      this.sendQueue.push({ barrier: t, done });
      this.pump();
    });
    const tSent = performance.now();
    try {
      if (t.failed !== undefined) throw t.failed;
      const txn = await t.txn;
      const { offsets, refusedAs } = this.offsetsOf(entries);
      for (let g = 0; g < offsets.length; g++) {
        if (t.offsetsAdded.has(offsets[g].consumerGroupId)) continue;
        try {
          await addOffsets(txn, offsets[g].consumerGroupId, () => this.concurrentRetry());
        } catch (err) {
          throw refusedAs(g, err);
        }
        t.offsetsAdded.add(offsets[g].consumerGroupId);
      }
      const results = await Promise.allSettled(offsets.map((o) => sendOffsets(txn, { ...o, offsetsPartitionAdded: true }, () => this.concurrentRetry())));
      results.forEach((r, g) => {
        if (r.status === 'rejected') throw refusedAs(g, r.reason);
      });
      const records = entries.reduce((n, e) => n + e.batch.records.length, 0);
      await this.end(txn, t.slot, entries, { records, groups: offsets.length, t0, tSent, sentAsProcessed: true });
    } catch (err) {
      await this.abortOpen(t);
      throw err;
    }
  }

  /**
   * Each group's offsets of these batches, with the generation they are committed for, and what a
   * group's failure is thrown as (GroupRefused for a stale generation).
   */
  private offsetsOf(entries: Pending[]): { offsets: TxnOffsets[]; refusedAs: (group: number, err: unknown) => unknown } {
    const byGroup = new Map<Generation, Map<string, ReturnType<typeof offsetEntry>[]>>();
    for (const e of entries) {
      let topics = byGroup.get(e.generation);
      if (!topics) byGroup.set(e.generation, (topics = new Map()));
      let list = topics.get(e.batch.topic);
      if (!list) topics.set(e.batch.topic, (list = []));
      list.push(offsetEntry(e.batch));
    }
    const generations = [...byGroup.keys()];
    const offsets = [...byGroup].map(([generation, topics]) => ({ consumerGroupId: generation.group.groupId, topics: [...topics].map(([topic, partitions]) => ({ topic, partitions })), consumerGroupMetadata: generation.metadata }));
    const refusedAs = (g: number, err: unknown) => (isGenerationError(err) ? new GroupRefused(generations[g].group, err) : err);
    return { offsets, refusedAs };
  }

  /**
   * The end of a transaction whose records and offsets are in: the batches' last hooks, the fault
   * point, EndTxn, metrics and the debug line with its phases.
   */
  private async end(txn: Transaction, slot: Slot, entries: Pending[], at: { records: number; groups: number; t0: number; tSent: number; sentAsProcessed?: boolean }): Promise<void> {
    for (const e of entries) e.batch.beforeCommit?.();
    for (const g of new Set(entries.map((e) => e.generation.group.groupId))) crashPoint('txn-sent', g);
    const tOffsets = performance.now();
    await txn.commit();
    this.opts.observer?.committed(at.records, (performance.now() - at.t0) / 1000);
    const ms = (a: number, b: number) => Math.round((b - a) * 10) / 10;
    this.opts.log.debug({ transactionalId: slot.transactionalId, batches: entries.length, groups: at.groups, records: at.records, ...(at.sentAsProcessed ? { sentAsProcessed: true } : {}), sendMs: ms(at.t0, at.tSent), offsetsMs: ms(at.tSent, tOffsets), commitMs: ms(tOffsets, performance.now()) }, 'shared txn: committed');
  }

  private committed(entries: Pending[], transactions: number): void {
    this.counters.transactions += transactions;
    this.counters.batches += entries.length;
    const perGroup = new Map<SharedGroup, number>();
    for (const e of entries) perGroup.set(e.generation.group, (perGroup.get(e.generation.group) ?? 0) + 1);
    for (const [g, n] of perGroup) g.hooks.onCommitted?.(n);
    if (this.failures > 0) {
      this.failures = 0;
      for (const g of new Set(entries.map((e) => e.generation.group))) g.hooks.onHealthy?.();
    }
    for (const e of entries) e.resolve();
  }

  /**
   * Batches of a failed transaction may have committed after all (EndTxn's answer lost): their
   * partition's stable committed offset says so. Those are resolved, the others sent again. A lane
   * has one batch in flight, so "the group's offset equals the batch's next offset" is exact.
   */
  private async settleUncertain(entries: Pending[]): Promise<Pending[]> {
    const uncertain = entries.filter((e) => e.uncertain);
    if (uncertain.length === 0) return entries;
    const done = await Promise.all(uncertain.map(async (e) => (await e.generation.group.hooks.readStable(e.batch.topic, e.batch.partition)) === e.batch.nextOffset));
    const settled = new Set(uncertain.filter((_, i) => done[i]));
    if (settled.size > 0) {
      this.opts.log.debug({ batches: settled.size }, 'a failed shared transaction had committed after all');
      this.committed([...settled], 0);
    }
    for (const e of entries) e.uncertain = false;
    return entries.filter((e) => !settled.has(e));
  }

  /**
   * A record-level refusal poisoned the shared transaction (aborted by transact): each batch is
   * committed alone, probing its records as PartitionTransactions does, so one lane's bad record
   * does not hold the others back. (Rare: across lanes, these batches keep batch order only.)
   */
  private async oneByOne(slot: Slot, entries: Pending[]): Promise<void> {
    this.opts.log.warn({ batches: entries.length }, 'shared transaction refused for a record-level reason; committing each batch alone');
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i];
      try {
        await this.transact(slot, [e], true);
        this.committed([e], 1);
      } catch (one) {
        if (one instanceof GroupRefused) return this.refused(one, entries.slice(i));
        slot.reset();
        e.reject(one as Error);
      }
    }
  }

  /** One group's generation was refused: its batches are fenced, the others go into the next transaction. */
  private refused(err: GroupRefused, entries: Pending[]): void {
    this.counters.generationRefusals += 1;
    err.group.hooks.onRefused?.();
    const stale = new Set<Generation>();
    for (const e of entries) if (e.generation.group === err.group) stale.add(e.generation);
    for (const g of stale) g.fenced ??= err.original as Error;
    this.opts.log.warn({ group: err.group.groupId, generations: [...stale].map((g) => g.metadata.generationId), err: kafkaErrorType(err.original) }, "shared transaction refused: a member's group generation is stale (a rebalance passed it by); its lanes are fenced");
    const others: Pending[] = [];
    for (const e of entries) {
      if (e.generation.group === err.group) e.reject(this.fencedError(e.generation, e.batch));
      else others.push(e);
    }
    this.retry.unshift(...others);
  }

  private fencedError(generation: Generation, batch: CommitBatch): ProducerFencedError {
    return new ProducerFencedError(`generation ${generation.metadata.generationId} of member ${generation.metadata.memberId} is stale; nothing of ${batch.topic}[${batch.partition}] committed here`, { cause: generation.fenced });
  }

  /** The transaction's records: staged ones in staging order (a hop's processing order), then the rest in batch order. */
  private recordsOf(entries: Pending[]): SinkRecord[] {
    const records = entries.flatMap((e) => e.batch.records);
    const keyOf = (r: SinkRecord, i: number) => r.stagedSeq ?? Number.MAX_SAFE_INTEGER / 2 + i;
    // Usually already in that order (one lane, or lanes staged in turn): then no sort (it is stable).
    let sorted = true;
    for (let i = 1; i < records.length && sorted; i++) sorted = keyOf(records[i - 1], i - 1) <= keyOf(records[i], i);
    if (sorted) return records;
    return records.map((r, i) => ({ r, k: keyOf(r, i) })).sort((a, b) => a.k - b.k).map((x) => x.r);
  }

  /**
   * One transaction: the batches' writes, each group's offsets with its generation, commit. The
   * writes and offsets go out with the fewest serial round trips (sendWithOffsets: 5 with EndTxn
   * for a hop and its chain, where kafkajs' order takes 7), unless `overlapOffsets` is false or a
   * record-level refusal is being probed.
   */
  private async transact(slot: Slot, entries: Pending[], probe = false, onSent?: () => void, written?: WrittenEnds): Promise<void> {
    const t0 = performance.now();
    await slot.busy;
    const producer = await slot.connected();
    for (const e of entries) rejectOversized(e.batch, this.opts.limits);
    const records = this.recordsOf(entries);
    const { offsets, refusedAs } = this.offsetsOf(entries);
    const onRetry = () => this.concurrentRetry();
    let txn: Transaction | undefined = await producer.transaction();
    let tSent = t0;
    try {
      if (!probe && this.opts.overlapOffsets !== false && canOverlapOffsets(txn)) {
        const t = txn;
        await sendWithOffsets(t, () => this.sendPlan(t, records, written), offsets, { onRetry, offsetsError: refusedAs });
        tSent = performance.now();
        onSent?.();
      } else {
        try {
          await this.sendPlan(txn, records, written);
        } catch (err) {
          if (!probe || !isRecordError(err)) throw err;
          await txn.abort();
          txn = undefined;
          written?.clear();
          await probeRecords(producer, { records });
          txn = await producer.transaction();
          await this.sendPlan(txn, records, written);
        }
        tSent = performance.now();
        onSent?.();
        for (let g = 0; g < offsets.length; g++) {
          try {
            await sendOffsets(txn, offsets[g], onRetry);
          } catch (err) {
            throw refusedAs(g, err);
          }
        }
      }
      await this.end(txn, slot, entries, { records: records.length, groups: offsets.length, t0, tSent });
    } catch (err) {
      if (txn?.isActive()) {
        try {
          await txn.abort();
        } catch {
          slot.reset(); // its state is unknown: a fresh producer aborts what is left open
        }
      }
      throw err;
    }
  }

  /** Sends records in as few requests as the topics' limits allow; `written` learns where each partition's last record went. */
  private async sendPlan(txn: Transaction, records: SinkRecord[], written?: WrittenEnds): Promise<void> {
    const plan = CommitPlan.of({ topic: '', partition: -1, nextOffset: '', records }, this.opts);
    for (const round of plan.rounds) {
      const appended = await txn.sendBatch({ topicMessages: round, acks: -1 });
      if (written) noteWritten(written, appended);
    }
  }

  /** Waits for the transaction in flight, refuses what is still pending, closes the producers. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    if (this.soon) clearImmediate(this.soon);
    await this.running?.catch(() => undefined);
    await this.dropOpen(); // records staged after the last cut: never committed, so never visible
    for (const e of [...this.retry.splice(0), ...this.pending.splice(0)]) e.reject(new Error('shared transactions closed'));
    this.announced.clear();
    this.readers.clear();
    await Promise.all(this.slots.map((s) => s.close()));
  }
}

/**
 * Records where one request's records were appended. The response gives each partition's base
 * offset (the first record's); a request's records of one partition are one record batch, which a
 * reader fetches whole, so a lane past that offset holds the whole request's records there. (The
 * count per partition is not known here: most records leave the partitioning to the producer.)
 */
function noteWritten(written: WrittenEnds, appended: readonly RecordMetadata[]): void {
  for (const a of appended) {
    if (a.baseOffset === undefined) continue;
    const k = partitionKey(a.topicName, a.partition);
    const past = BigInt(a.baseOffset) + 1n;
    const before = written.get(k);
    if (before === undefined || past > before) written.set(k, past);
  }
}
