import type { Producer, Transaction } from 'kafkajs';
import { isRecordError, kafkaErrorType } from '../kafka/errors';
import { isGenerationError, sendOffsets, type ConsumerGroupMetadata } from '../kafka/eos-v2';
import { CommitPlan, connectEngineProducer, ProducerFencedError, probeRecords, rejectOversized, type CommitBatch, type SinkOptions, type SinkRecord } from './commit-sink';
import { crashPoint } from './fault-injection';
import { checkInstanceId, randomInstanceId } from './instance-id';

/** Transactional producers of one runner's shared sink, taking turns (see SharedTransactions). */
export const SHARED_PRODUCERS = 3;

/**
 * Shared transactions in flight at once. Each holds different partitions' batches (a lane has one
 * batch in flight), so they are independent; one means the most sharing (fewest transactions, the
 * broker's CPU per transaction dominates on a small box), more overlaps round trips when the broker
 * is slow. Kept below the producer count so the producer used next is never the one that just
 * committed.
 */
export const SHARED_MAX_IN_FLIGHT = 1;

/**
 * Transaction timeout of the shared producers. Their ids are `<group>.<instance>.<k>`: with the
 * default instance (random per start) nobody re-initialises a crashed process's ids, so the
 * coordinator's timeout is what aborts its open transaction. Until then the new owners of its
 * partitions read their offsets as unstable (they wait) and read_committed readers of its output
 * partitions cannot read past it. (A process restarted with the same stable instance id aborts it
 * at once: the runner warms the pool up, InitProducerId, before its lanes read their offsets.) A
 * commit takes milliseconds, so 10 s leaves ample room for a slow broker while bounding that stall.
 */
export const SHARED_TRANSACTION_TIMEOUT_MS = 10000;

/**
 * One consumer group generation as this member joined it. Batches are committed with its
 * metadata; once the coordinator refused it (a newer generation exists: this member missed a
 * rebalance, or rejoined), every later batch of it is refused here at once.
 */
export class Generation {
  fenced?: Error;
  constructor(readonly metadata: ConsumerGroupMetadata) {}
}

interface Pending {
  batch: CommitBatch;
  generation: Generation;
  resolve(): void;
  reject(err: Error): void;
}

/** One producer of the pool: created and initialised (InitProducerId) on first use, recreated after a failure. */
class Slot {
  private producer?: Promise<Producer>;

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

/** What a shared sink reports as it goes (Prometheus metrics; see ChainRunner). */
export interface SharedTransactionsObserver {
  /** A transaction committed `batches` lane batches holding `records` records in `seconds`. */
  committed(batches: number, records: number, seconds: number): void;
  /** AddOffsetsToTxn answered CONCURRENT_TRANSACTIONS and was retried. */
  concurrentRetry(): void;
  /** A transaction was refused for a stale group generation. */
  generationRefused(): void;
}

export interface SharedTransactionsOptions extends SinkOptions {
  /**
   * This process's part of the transactional ids ([A-Za-z0-9._-], at most 64); two live processes
   * must never share one. Default: random per start. Reused after a restart, warmUp aborts what the
   * previous process left open.
   */
  instanceId?: string;
  observer?: SharedTransactionsObserver;
  /** Producers taking turns (default SHARED_PRODUCERS). */
  producers?: number;
  transactionTimeoutMs?: number;
  /** Transactions in flight at once, each on its own producer (default SHARED_MAX_IN_FLIGHT; at most producers - 1). */
  maxInFlight?: number;
}

/** What a shared sink did, for status and tests. */
export interface SharedTransactionCounters {
  transactions: number;
  /** Lane batches committed (several per transaction). */
  batches: number;
  /** AddOffsetsToTxn answered CONCURRENT_TRANSACTIONS (a producer's previous markers not written yet) and retried. */
  concurrentRetries: number;
  /** Transactions refused because this member's generation is stale (lanes fenced). */
  generationRefusals: number;
}

/**
 * Exactly-once v2 (KIP-447) for one chain runner: lanes hand their commit batches here and one
 * transaction at a time commits everything pending — every batch's outputs, side outputs, dead
 * letters and replies, and every partition's offset in one TxnOffsetCommit carrying the consumer
 * group generation. A few producers (`<group>.<instance>.<k>`) take turns, one transaction in
 * flight each and one in flight overall, so a producer that just committed (the coordinator still
 * writing its markers, answering CONCURRENT_TRANSACTIONS) is not the next one used.
 *
 * Fencing moves from transactional ids to the group coordinator: a member that missed a rebalance
 * (a zombie) has its TxnOffsetCommit refused (ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID), the
 * transaction is aborted and every lane of that generation is fenced (ProducerFencedError); the
 * runner rebuilds its lanes on the next join. A new owner reads its start offset with
 * require_stable, so it waits while any transaction holding that partition's offset is pending.
 * Batches of one partition never share or overtake a transaction: a lane has at most one batch
 * in flight.
 */
export class SharedTransactions {
  readonly counters: SharedTransactionCounters = { transactions: 0, batches: 0, concurrentRetries: 0, generationRefusals: 0 };
  readonly instanceId: string;
  private readonly slots: Slot[];
  private next = 0;
  private pending: Pending[] = [];
  /** Transactions in flight (each on its own producer). */
  private readonly inFlight = new Set<Promise<void>>();
  private readonly busy = new Set<Slot>();
  private current?: Generation;
  private closed = false;
  private warm?: Promise<void>;

  constructor(private readonly opts: SharedTransactionsOptions) {
    this.instanceId = opts.instanceId === undefined ? randomInstanceId() : checkInstanceId(opts.instanceId, 'instanceId');
    this.slots = Array.from({ length: opts.producers ?? SHARED_PRODUCERS }, (_, k) => new Slot(`${opts.groupId}.${this.instanceId}.${k}`, opts));
  }

  get transactionalIds(): string[] {
    return this.slots.map((s) => s.transactionalId);
  }

  /**
   * Initialises every producer (InitProducerId), once; a failed warm-up is tried again by the next
   * call. With a stable instance id this is what aborts the transaction a crashed predecessor left
   * open on the same ids, so the runner's lanes await it before reading their offsets with
   * require_stable (else they would wait for the transaction timeout).
   */
  warmUp(): Promise<void> {
    this.warm ??= Promise.all(this.slots.map((s) => s.connected())).then(() => undefined);
    this.warm.catch(() => (this.warm = undefined));
    return this.warm;
  }

  /** The member joined a (new) generation: batches of earlier ones are refused from now on (the coordinator would). */
  join(metadata: ConsumerGroupMetadata): Generation {
    if (this.current) this.current.fenced ??= new Error(`generation ${this.current.metadata.generationId} was replaced by ${metadata.generationId}`);
    this.current = new Generation(metadata);
    return this.current;
  }

  /** Commits the batch in the next shared transaction. ProducerFencedError: its generation is stale. */
  commit(batch: CommitBatch, generation: Generation): Promise<void> {
    if (generation.fenced) return Promise.reject(this.fencedError(generation, batch));
    if (this.closed) return Promise.reject(new Error('shared transactions closed'));
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ batch, generation, resolve, reject });
      this.kick();
    });
  }

  private kick(): void {
    const max = Math.min(this.opts.maxInFlight ?? SHARED_MAX_IN_FLIGHT, this.slots.length - 1) || 1;
    while (this.pending.length > 0 && this.inFlight.size < max) {
      const slot = this.freeSlot();
      if (!slot) return;
      this.busy.add(slot);
      const run: Promise<void> = this.runOne(slot).finally(() => {
        this.busy.delete(slot);
        this.inFlight.delete(run);
        // Not at once: the lanes this transaction just resolved hand in their next batches in the
        // same turn of the event loop (microtasks); starting after it puts them in the next
        // transaction too, instead of lanes settling into alternating groups that never share.
        setImmediate(() => this.kick());
      });
      this.inFlight.add(run);
    }
  }

  /** The next producer in turn that has no transaction in flight (the one used longest ago first). */
  private freeSlot(): Slot | undefined {
    for (let i = 0; i < this.slots.length; i++) {
      const slot = this.slots[(this.next + i) % this.slots.length];
      if (this.busy.has(slot)) continue;
      this.next = (this.next + i + 1) % this.slots.length;
      return slot;
    }
    return undefined;
  }

  private async runOne(slot: Slot): Promise<void> {
    const taken = this.pending;
    this.pending = [];
    const entries: Pending[] = [];
    for (const e of taken) {
      if (e.generation.fenced || e.generation !== this.current) e.reject(this.fencedError(e.generation, e.batch));
      else entries.push(e);
    }
    if (entries.length === 0) return;
    const generation = entries[0].generation;
    try {
      await this.transact(slot, entries.map((e) => e.batch), generation);
      this.counters.transactions += 1;
      this.counters.batches += entries.length;
      for (const e of entries) e.resolve();
    } catch (err) {
      if (isGenerationError(err)) return this.refused(err, entries, generation);
      if (!isRecordError(err)) {
        slot.reset();
        for (const e of entries) e.reject(err as Error);
        return;
      }
      // A record-level refusal poisoned the shared transaction (aborted by transact): each batch
      // is committed alone, probing its records as PartitionTransactions does, so one lane's bad
      // record does not hold the others back.
      this.opts.log.warn({ err: kafkaErrorType(err), batches: entries.length }, 'shared transaction refused for a record-level reason; committing each batch alone');
      for (let i = 0; i < entries.length; i++) {
        const e = entries[i];
        try {
          await this.transact(slot, [e.batch], generation, true);
          this.counters.transactions += 1;
          this.counters.batches += 1;
          e.resolve();
        } catch (one) {
          if (isGenerationError(one)) return this.refused(one, entries.slice(i), generation);
          slot.reset();
          e.reject(one as Error);
        }
      }
    }
  }

  private refused(err: unknown, entries: Pending[], generation: Generation): void {
    this.counters.generationRefusals += 1;
    this.opts.observer?.generationRefused();
    generation.fenced ??= err as Error;
    this.opts.log.warn({ generation: generation.metadata.generationId, err: kafkaErrorType(err) }, 'shared transaction refused: this member\'s group generation is stale (a rebalance passed it by); its lanes are fenced');
    for (const e of entries) e.reject(this.fencedError(generation, e.batch));
  }

  private fencedError(generation: Generation, batch: CommitBatch): ProducerFencedError {
    return new ProducerFencedError(`generation ${generation.metadata.generationId} of member ${generation.metadata.memberId} is stale; nothing of ${batch.topic}[${batch.partition}] committed here`, { cause: generation.fenced });
  }

  /** One transaction: the batches' writes, their offsets with the group metadata, commit. */
  private async transact(slot: Slot, batches: CommitBatch[], generation: Generation, probe = false): Promise<void> {
    const t0 = performance.now();
    const producer = await slot.connected();
    for (const b of batches) rejectOversized(b, this.opts.limits);
    const records: SinkRecord[] = batches.flatMap((b) => b.records);
    let txn: Transaction | undefined = await producer.transaction();
    try {
      try {
        await this.sendPlan(txn, records);
      } catch (err) {
        if (!probe || !isRecordError(err)) throw err;
        await txn.abort();
        txn = undefined;
        await probeRecords(producer, { records });
        txn = await producer.transaction();
        await this.sendPlan(txn, records);
      }
      const tSent = performance.now();
      const byTopic = new Map<string, { partition: number; offset: string }[]>();
      for (const b of batches) {
        let list = byTopic.get(b.topic);
        if (!list) byTopic.set(b.topic, (list = []));
        list.push({ partition: b.partition, offset: b.nextOffset });
      }
      await sendOffsets(txn, { consumerGroupId: this.opts.groupId, topics: [...byTopic].map(([topic, partitions]) => ({ topic, partitions })), consumerGroupMetadata: generation.metadata }, () => {
        this.counters.concurrentRetries += 1;
        this.opts.observer?.concurrentRetry();
      });
      for (const b of batches) b.beforeCommit?.();
      crashPoint('txn-sent', this.opts.groupId);
      const tOffsets = performance.now();
      await txn.commit();
      this.opts.observer?.committed(batches.length, records.length, (performance.now() - t0) / 1000);
      const ms = (a: number, b: number) => Math.round((b - a) * 10) / 10;
      this.opts.log.debug({ transactionalId: slot.transactionalId, batches: batches.length, records: records.length, sendMs: ms(t0, tSent), offsetsMs: ms(tSent, tOffsets), commitMs: ms(tOffsets, performance.now()) }, 'shared txn: committed');
    } catch (err) {
      if (txn?.isActive()) await txn.abort().catch(() => undefined);
      throw err;
    }
  }

  private async sendPlan(txn: Transaction, records: SinkRecord[]): Promise<void> {
    const plan = CommitPlan.of({ topic: '', partition: -1, nextOffset: '', records }, this.opts);
    for (const round of plan.rounds) await txn.sendBatch({ topicMessages: round, acks: -1 });
  }

  /** Waits for the transaction in flight, refuses what is still pending, closes the producers. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.allSettled([...this.inFlight]);
    for (const e of this.pending.splice(0)) e.reject(new Error('shared transactions closed'));
    await Promise.all(this.slots.map((s) => s.close()));
  }
}
