import { type Consumer, type Kafka, type Message, type Producer, type TopicMessages, type Transaction } from 'kafkajs';
import { JavaCompatiblePartitioner } from '../kafka/partitioner';
import { RecordRejection, type ErrorKind } from '../kafka/dead-letter';
import { isRecordError, kafkaErrorType } from '../kafka/errors';
import { canOverlapOffsets, sendWithOffsets } from '../kafka/eos-v2';
import { TributaryError } from '../util/errors';
import type { Logger } from '../util/logger';
import { crashPoint } from './fault-injection';
import type { IdempotentProducer } from '../kafka/client';
import type { SendGate } from './send-gate';

/** How a chain's outputs and consumed offsets reach Kafka. */
export type DeliveryMode = 'exactly-once' | 'at-least-once';

/** A producer's transactional epoch was taken by a newer instance: this instance lost the partition. */
export class ProducerFencedError extends TributaryError {}

const FENCED = new Set(['INVALID_PRODUCER_EPOCH', 'PRODUCER_FENCED', 'INVALID_PRODUCER_ID_MAPPING', 'TRANSACTIONAL_ID_NOT_FOUND']);

export function isFencedError(err: unknown): boolean {
  return FENCED.has(kafkaErrorType(err) ?? '');
}

/** One output message for one topic. */
export interface TopicMessage {
  topic: string;
  message: Message;
}

/**
 * One consumed record, processed: the messages it produces (the chain's output and side outputs of
 * the stages it passed) and, if a stage rejected it, the reason (a dead letter is written too).
 * Outputs that cannot be written at all (too large, refused) turn the whole record into a dead letter.
 */
export interface SinkRecord {
  outputs: TopicMessage[];
  rejection?: RecordRejection;
  /** The dead-letter message for this record with the given reason. */
  toDeadLetter(rejection: RecordRejection): Message;
  /** Reply copies of the record's outputs and dead letter for a waiting requester (src/engine/replies.ts); absent: none. */
  replies?(): TopicMessage[];
  /**
   * Eager sinks (at-least-once): when the record's outputs were acknowledged, i.e. visible to
   * readers — before its offset commit. End-to-end metrics use it instead of the commit time.
   */
  visibleAt?: number;
  /** Set by a sink that stages records (SharedTransactions.stage): their order within its transactions. */
  stagedSeq?: number;
}

/** Records of one input partition, processed, to be written together with the consumed offset. */
export interface CommitBatch {
  topic: string;
  partition: number;
  /** The offset to commit: last consumed offset + 1. */
  nextOffset: string;
  /** Committed with the offset (a de-duplicating lane's state: LineageDedup); absent: none. */
  metadata?: string;
  records: SinkRecord[];
  /** Called once every record's fate is known, right before the offset is added and the transaction commits. */
  beforeCommit?(): void;
}

/** Where sinks learn each topic's max.message.bytes (read from the broker at start). */
export interface TopicLimits {
  maxMessageBytes(topic: string): number;
}

export interface SinkOptions {
  kafka: Kafka;
  groupId: string;
  deadLetterTopic: string;
  limits: TopicLimits;
  log: Logger;
}

/** Bytes a record batch adds around its records (header, CRC, etc.), rounded up. */
const RECORD_BATCH_OVERHEAD = 128;

export function recordSize(m: Message): number {
  let size = byteLength(m.key) + byteLength(m.value) + 32;
  // Runs for every output of every record (twice: the oversize check and the chunking), so no
  // Object.entries pairs or closures per record: a profile at 32,000 events/s put 2.5 % of the main
  // thread here when it allocated them.
  const headers = m.headers;
  if (headers) {
    for (const k in headers) {
      const v = headers[k];
      size += k.length + 8;
      if (Array.isArray(v)) for (const x of v) size += byteLength(x);
      else size += byteLength(v as string | Buffer | undefined);
    }
  }
  return size;
}

function byteLength(v: string | Buffer | null | undefined): number {
  return v == null ? 0 : typeof v === 'string' ? Buffer.byteLength(v) : v.length;
}

/** Splits messages into consecutive groups whose summed size stays under `limit` (a lone record may reach it). */
export function chunkBySize(messages: Message[], limit: number): Message[][] {
  const chunks: Message[][] = [];
  let current: Message[] = [];
  let size = 0;
  for (const m of messages) {
    const s = recordSize(m);
    if (current.length > 0 && size + s > limit) {
      chunks.push(current);
      current = [];
      size = 0;
    }
    current.push(m);
    size += s;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}

function rejectionFor(err: unknown, topic: string): RecordRejection {
  const type = kafkaErrorType(err);
  const kind: ErrorKind = type === 'MESSAGE_TOO_LARGE' || type === 'RECORD_LIST_TOO_LARGE' ? 'TOO_LARGE' : 'PRODUCE_FAILED';
  return new RecordRejection(kind, `producing to ${topic} failed: ${type}: ${(err as Error).message}`);
}

/**
 * What a commit writes, grouped so that each produce request stays under every topic's own
 * max.message.bytes: outputs per topic, and dead letters chunked by the dead-letter topic's limit
 * (several large dead letters in one batch would otherwise exceed it and retry forever).
 */
export class CommitPlan {
  private constructor(readonly rounds: TopicMessages[][]) {}

  static of(batch: CommitBatch, opts: Pick<SinkOptions, 'deadLetterTopic' | 'limits'>): CommitPlan {
    const byTopic = new Map<string, Message[]>();
    const add = (topic: string, m: Message) => {
      let list = byTopic.get(topic);
      if (!list) byTopic.set(topic, (list = []));
      list.push(m);
    };
    for (const r of batch.records) {
      for (const o of r.outputs) add(o.topic, o.message);
      if (r.rejection) add(opts.deadLetterTopic, r.toDeadLetter(r.rejection));
      for (const reply of r.replies?.() ?? []) add(reply.topic, reply.message);
    }
    const chunked = [...byTopic].map(([topic, messages]) => ({ topic, chunks: chunkBySize(messages, chunkLimit(opts.limits.maxMessageBytes(topic))) }));
    const rounds: TopicMessages[][] = [];
    for (let i = 0; ; i++) {
      const round = chunked.filter((c) => i < c.chunks.length).map((c) => ({ topic: c.topic, messages: c.chunks[i] }));
      if (round.length === 0) break;
      rounds.push(round);
    }
    return new CommitPlan(rounds);
  }

  get messageCount(): number {
    return this.rounds.reduce((n, r) => n + r.reduce((m, t) => m + t.messages.length, 0), 0);
  }
}

function chunkLimit(maxMessageBytes: number): number {
  return Math.max(maxMessageBytes - RECORD_BATCH_OVERHEAD, Math.floor(maxMessageBytes / 2));
}

/** Marks records with an output that can never fit its topic as TOO_LARGE (the whole record is dead-lettered). */
export function rejectOversized(batch: CommitBatch, limits: TopicLimits): void {
  for (const r of batch.records) {
    for (const o of r.outputs) {
      const size = recordSize(o.message);
      const max = limits.maxMessageBytes(o.topic);
      if (size > max - RECORD_BATCH_OVERHEAD) {
        r.rejection = new RecordRejection('TOO_LARGE', `record of ${size} bytes exceeds ${o.topic}'s max.message.bytes (${max})`);
        r.outputs = [];
        break;
      }
    }
  }
}

/**
 * The engine's transactional producer, connected and with its id taken (InitProducerId bumps the
 * epoch, fencing a previous owner, and waits until that owner's open transaction is finished).
 * Several requests may be in flight on one connection so that a transaction's TxnOffsetCommits go
 * out while its Produce is answered (SharedTransactions.transact; on one broker every coordinator
 * and leader shares the connection). Produce requests still go one at a time per broker: kafkajs
 * holds a per-broker lock of the idempotent producer from AddPartitionsToTxn to the Produce
 * response, which keeps sequence numbers in order. The broker answers CONCURRENT_TRANSACTIONS while it still writes the previous
 * commit's markers (a few ms) and a Kafka 3.9 client cannot see when they are written, so retries
 * start at 10 ms (doubling, capped at 1 s). Retries are not limited (kafkajs: limiting them may break
 * idempotence); fencing and record errors are not retried, and a commit that stays stuck shows in
 * readiness (see lane.ts). Used by PartitionTransactions and SharedTransactions.
 */
export async function connectEngineProducer(kafka: Kafka, transactionalId: string, transactionTimeoutMs: number): Promise<Producer> {
  const producer = kafka.producer({
    transactionalId,
    idempotent: true,
    maxInFlightRequests: 5,
    allowAutoTopicCreation: false,
    transactionTimeout: transactionTimeoutMs,
    createPartitioner: JavaCompatiblePartitioner,
    retry: { initialRetryTime: 10, maxRetryTime: 1000, retries: Number.MAX_SAFE_INTEGER },
  });
  try {
    await producer.connect();
    const init = await producer.transaction();
    await init.abort();
  } catch (err) {
    await producer.disconnect().catch(() => undefined);
    throw err;
  }
  return producer;
}

/**
 * Exactly-once for one input partition: the classic (pre-KIP-447) pattern kafkajs supports. One
 * transactional producer per input partition, transactional id `<group>.<topic>.<partition>`, so
 * the instance that takes a partition over fences the one that lost it. A commit opens the
 * transaction only when everything to write is ready (a read_committed reader cannot read past an
 * open transaction on an output partition), sends outputs, dead letters and the consumed offset,
 * and commits: four serial round trips (AddOffsetsToTxn, AddPartitionsToTxn, Produce beside
 * TxnOffsetCommit, EndTxn: sendWithOffsets), none of them while records are being processed.
 */
export class PartitionTransactions {
  private producer?: Promise<Producer>;
  /** Eager mode (see stage()): the transaction records were sent into as they were processed. */
  private open?: OpenTransaction;

  constructor(
    private readonly opts: SinkOptions & {
      topic: string;
      partition: number;
      fetchCommitted: (topic: string, partition: number) => Promise<string | null>;
      /** Appended to the transactional id (a lane with several producers: see PipelinedTransactions). */
      idSuffix?: string;
      /** Eager sends (stage) of a repartition hop's lanes go through one gate, in processing order. */
      gate?: SendGate<SinkRecord>;
    },
  ) {}

  get transactionalId(): string {
    return `${this.opts.groupId}.${this.opts.topic}.${this.opts.partition}${this.opts.idSuffix ?? ''}`;
  }

  /** Takes the transactional id (fencing a previous owner) without reading the committed offset. */
  async takeOwnership(): Promise<void> {
    await this.connected();
  }

  /**
   * Eager mode: sends processed records now, into this producer's open transaction (begun at the
   * first send, as Kafka Streams' StreamsProducer does), so that their order in the output
   * partitions is the order they were processed in, not the order commits end in. The commit that
   * follows adds the offset and commits if the transaction holds exactly that commit's records;
   * otherwise (a send failed, a retry, records split differently) it aborts the transaction and
   * writes the batch the classic way. Must not be called while this producer commits.
   */
  stage(records: SinkRecord[]): void {
    if (records.length === 0) return;
    rejectOversized({ records } as unknown as CommitBatch, this.opts.limits);
    if (!this.open) {
      const txn = this.connected().then((p) => p.transaction());
      txn.catch(() => undefined); // surfaced through `sends`
      this.open = { txn, records: [], sends: Promise.resolve() };
    }
    const open = this.open;
    open.records.push(...records);
    const send = async (rs: SinkRecord[]) => {
      if (open.error === undefined) await this.sendPlan(await open.txn, CommitPlan.of({ records: rs } as unknown as CommitBatch, this.opts));
    };
    const sent = this.opts.gate ? this.opts.gate.submit(open, records, send) : open.sends.then(() => send(records));
    open.sends = Promise.all([open.sends, sent.catch((err: unknown) => void (open.error ??= err))]).then(() => undefined);
  }

  /**
   * Creates the producer and takes the transactional id (InitProducerId bumps the epoch, fencing a
   * previous owner, and waits until that owner's open transaction is aborted or completed), then
   * re-reads the committed offset: records below it were delivered by the previous owner.
   */
  async init(): Promise<string | null> {
    await this.connected();
    return this.opts.fetchCommitted(this.opts.topic, this.opts.partition);
  }

  private connected(): Promise<Producer> {
    this.producer ??= (async () => {
      try {
        return await connectEngineProducer(this.opts.kafka, this.transactionalId, 60000);
      } catch (err) {
        throw this.classify(err);
      }
    })();
    this.producer.catch(() => (this.producer = undefined));
    return this.producer;
  }

  /** Writes the batch and its offset in one transaction. Throws ProducerFencedError when this instance lost the partition. */
  async commit(batch: CommitBatch): Promise<void> {
    const open = this.open;
    this.open = undefined;
    let txn: Transaction | undefined;
    let eager = false;
    if (open) {
      await open.sends;
      txn = await open.txn.catch(() => undefined);
      eager = open.error === undefined && txn !== undefined && sameRecords(open.records, batch.records);
      if (!eager) {
        this.opts.log.debug({ partition: batch.partition, staged: open.records.length, batch: batch.records.length, err: open.error === undefined ? undefined : (open.error as Error).message }, 'txn: eager transaction does not hold the batch; aborting it and writing the batch at commit');
        if (txn?.isActive()) await txn.abort().catch(() => undefined);
        txn = undefined;
        // Anything but a record-level refusal leaves this producer in an unknown state: the lane
        // retries (after checking the committed offset) with a fresh one.
        if (open.error !== undefined && !isRecordError(open.error)) {
          this.drop();
          throw this.classify(open.error);
        }
      }
    }
    const offsets = { consumerGroupId: this.opts.groupId, topics: [{ topic: batch.topic, partitions: [offsetEntry(batch)] }] };
    if (eager) {
      try {
        await txn!.sendOffsets(offsets);
        batch.beforeCommit?.();
        crashPoint('txn-sent', this.opts.groupId);
        this.opts.log.debug({ partition: batch.partition, nextOffset: batch.nextOffset, records: batch.records.length }, 'txn: committing (records sent as processed)');
        await txn!.commit();
        return;
      } catch (err) {
        if (txn!.isActive()) await txn!.abort().catch(() => undefined);
        this.drop();
        throw this.classify(err);
      }
    }
    const producer = await this.connected();
    rejectOversized(batch, this.opts.limits);
    try {
      txn = await producer.transaction();
      let offsetsSent = false;
      try {
        const t = txn;
        // Fewest round trips (sendWithOffsets): AddOffsetsToTxn, AddPartitionsToTxn, then Produce
        // and TxnOffsetCommit at once.
        if (canOverlapOffsets(t)) {
          await sendWithOffsets(t, () => this.sendPlan(t, CommitPlan.of(batch, this.opts)), [offsets]);
          offsetsSent = true;
        } else await this.sendPlan(t, CommitPlan.of(batch, this.opts));
      } catch (err) {
        if (!isRecordError(err)) throw err;
        // A refused send poisons the transaction: abort, find the offending records with probe
        // transactions that are always aborted (invisible to read_committed), then write the rest.
        await txn.abort();
        this.opts.log.warn({ err: kafkaErrorType(err), partition: batch.partition }, 'batch refused for a record-level reason; probing records one by one');
        await this.probe(producer, batch);
        txn = await producer.transaction();
        await this.sendPlan(txn, CommitPlan.of(batch, this.opts));
      }
      // Not AddOffsetsToTxn beside the outputs' AddPartitionsToTxn: the coordinator answers
      // CONCURRENT_TRANSACTIONS to one of two state changes at once and, with kafkajs' retries,
      // outputs were seen committed without their offset (duplicates in fault tests). Without
      // patch 10 (and after probing), one request after the other.
      if (!offsetsSent) await txn.sendOffsets(offsets);
      batch.beforeCommit?.();
      crashPoint('txn-sent', this.opts.groupId);
      this.opts.log.debug({ partition: batch.partition, nextOffset: batch.nextOffset, records: batch.records.length }, 'txn: committing');
      await txn.commit();
      this.opts.log.debug({ partition: batch.partition, nextOffset: batch.nextOffset }, 'txn: committed');
    } catch (err) {
      if (txn?.isActive()) await txn.abort().catch(() => undefined);
      // Whatever failed, this producer's transaction state is unknown: the next attempt starts with a
      // fresh producer, whose init aborts (or completes) whatever was left open.
      this.drop();
      throw this.classify(err);
    }
  }

  private classify(err: unknown): Error {
    if (isFencedError(err)) return new ProducerFencedError(`${this.transactionalId} was fenced by a newer owner; nothing committed`, { cause: err });
    return err as Error;
  }

  private async sendPlan(txn: Transaction, plan: CommitPlan): Promise<void> {
    for (const round of plan.rounds) await txn.sendBatch({ topicMessages: round, acks: -1 });
  }

  private probe(producer: Producer, batch: CommitBatch): Promise<void> {
    return probeRecords(producer, batch);
  }

  /** Forgets the producer (its state is unknown); the next commit or init creates a fresh one. */
  drop(): void {
    const p = this.producer;
    this.producer = undefined;
    void p?.then((x) => x.disconnect()).catch(() => undefined);
  }

  async close(): Promise<void> {
    const open = this.open;
    this.open = undefined;
    if (open) {
      // Records of a lane that lets go uncommitted (a rebalance): abort now, or read_committed
      // readers of the output partitions would wait for the transaction timeout.
      await open.sends;
      const txn = await open.txn.catch(() => undefined);
      if (txn?.isActive()) await txn.abort().catch(() => undefined);
    }
    const p = this.producer;
    this.producer = undefined;
    if (p) await p.then((x) => x.disconnect()).catch(() => undefined);
  }
}

/**
 * After a record-level refusal poisoned a transaction: finds the offending records with probe
 * transactions that are always aborted (invisible to read_committed) and turns each into a dead
 * letter (its outputs dropped), so the batch can then be written.
 */
export async function probeRecords(producer: Producer, batch: Pick<CommitBatch, 'records'>): Promise<void> {
  for (const r of batch.records) {
    if (r.outputs.length === 0) continue;
    const probe = await producer.transaction();
    try {
      for (const o of r.outputs) await probe.send({ topic: o.topic, acks: -1, messages: [o.message] });
    } catch (err) {
      if (!isRecordError(err)) {
        await probe.abort().catch(() => undefined);
        throw err;
      }
      r.rejection = rejectionFor(err, r.outputs[0].topic);
      r.outputs = [];
    }
    await probe.abort().catch(() => undefined);
  }
}

/** Producers per input partition of a pipelined lane (see PipelinedTransactions). */
export const PIPELINE_PRODUCERS = 3;

/** A transaction records are sent into as they are processed (PartitionTransactions.stage). */
interface OpenTransaction {
  txn: Promise<Transaction>;
  /** The records sent (or being sent) into it, in order. */
  records: SinkRecord[];
  /** The chain of its sends, in order; never rejects (a failure lands in `error`). */
  sends: Promise<void>;
  error?: unknown;
}

/** A batch's partition entry of an offset commit: its next offset, and its metadata when it has one. */
export function offsetEntry(batch: Pick<CommitBatch, 'partition' | 'nextOffset' | 'metadata'>): { partition: number; offset: string; metadata?: string } {
  return batch.metadata === undefined ? { partition: batch.partition, offset: batch.nextOffset } : { partition: batch.partition, offset: batch.nextOffset, metadata: batch.metadata };
}

function sameRecords(a: readonly SinkRecord[], b: readonly SinkRecord[]): boolean {
  return a.length === b.length && a.every((r, i) => r === b[i]);
}

/**
 * Exactly-once with records sent as they are processed and no wait behind the lane's own commit:
 * PIPELINE_PRODUCERS transactional producers per input partition (`<group>.<topic>.<p>`, `…<p>.1`,
 * `…<p>.2`) take turns. While one commits (offsets, EndTxn: several round trips, longer under
 * load), the records the lane processes meanwhile go straight into the next one's transaction, so
 * their write order in the output partition follows processing order. A repartition hop needs that:
 * one entity's records from several input partitions meet in one repartition partition, and a
 * record that waited behind its lane's commit could land after a later record of the same entity
 * from another lane. Three, not two: a producer that just committed cannot start its next
 * transaction until the coordinator has written the commit markers (it answers
 * CONCURRENT_TRANSACTIONS, and kafkajs backs off), so the producer that takes new records is the
 * one whose commit ended a whole commit earlier.
 *
 * Exactly-once holds as with one producer: the lane commits one batch at a time, in offset order,
 * so a later producer's transaction (later records, later offset) commits only after the earlier
 * one's did; a failed commit leaves the other transactions holding records of later batches, which
 * no longer match their commits and are aborted then (see PartitionTransactions.commit); and a new
 * owner takes every id (fencing all, aborting whatever any left open) before it reads the committed
 * offset.
 */
export class PipelinedTransactions {
  private readonly slots: PartitionTransactions[];
  /** The producer that takes processed records (the previous one may be committing). */
  private current = 0;

  constructor(private readonly opts: ConstructorParameters<typeof PartitionTransactions>[0]) {
    this.slots = Array.from({ length: PIPELINE_PRODUCERS }, (_, i) => new PartitionTransactions({ ...opts, idSuffix: i === 0 ? '' : `.${i}` }));
  }

  async init(): Promise<string | null> {
    for (const slot of this.slots) await slot.takeOwnership();
    return this.opts.fetchCommitted(this.opts.topic, this.opts.partition);
  }

  stage(records: SinkRecord[]): void {
    this.slots[this.current].stage(records);
  }

  /** Commits with the producer that took the batch's records; from now on the other one takes new records. */
  async commit(batch: CommitBatch): Promise<void> {
    const slot = this.slots[this.current];
    this.current = (this.current + 1) % this.slots.length;
    // Should this fail, the lane retries the batch with the other producer: the records that one took
    // meanwhile belong to a later batch, so its transaction does not match and is aborted first.
    await slot.commit(batch);
  }

  async close(): Promise<void> {
    await Promise.all(this.slots.map((s) => s.close()));
  }
}

/**
 * Writes a batch's outputs, dead letters and replies with an idempotent producer (at-least-once):
 * in size-bounded requests, or — after a record-level refusal — record by record, refused records
 * turned into dead letters (records already acknowledged are sent again: at-least-once allows it).
 */
export async function sendAtLeastOnce(producer: IdempotentProducer, batch: Pick<CommitBatch, 'records'> & Partial<Pick<CommitBatch, 'partition'>>, opts: Pick<SinkOptions, 'deadLetterTopic' | 'limits' | 'log'>): Promise<void> {
  rejectOversized(batch as CommitBatch, opts.limits);
  try {
    for (const round of CommitPlan.of(batch as CommitBatch, opts).rounds) await producer.sendBatch({ topicMessages: round });
  } catch (err) {
    if (!isRecordError(err)) throw err;
    opts.log.warn({ err: kafkaErrorType(err), partition: batch.partition }, 'batch refused for a record-level reason; sending record by record');
    for (const r of batch.records) {
      if (r.outputs.length === 0) continue;
      try {
        for (const o of r.outputs) await producer.send({ topic: o.topic, messages: [o.message] });
      } catch (e) {
        if (!isRecordError(e)) throw e;
        r.rejection = rejectionFor(e, r.outputs[0].topic);
        r.outputs = [];
      }
    }
    const dlq = batch.records.filter((r) => r.rejection).map((r) => r.toDeadLetter(r.rejection!));
    for (const chunk of chunkBySize(dlq, chunkLimit(opts.limits.maxMessageBytes(opts.deadLetterTopic)))) {
      await producer.send({ topic: opts.deadLetterTopic, messages: chunk });
    }
    const replies = batch.records.flatMap((r) => r.replies?.() ?? []);
    if (replies.length > 0) await producer.send({ topic: replies[0].topic, messages: replies.map((x) => x.message) });
  }
}

/**
 * Commits consumed offsets only (no producer): for consumers whose processor acts elsewhere (Redis,
 * metrics, an alert producer of its own) and writes nothing per record. Rejected records (say,
 * undecodable) are counted by the runner but written nowhere. At-least-once: a crash before the
 * commit re-delivers the records, so processors keep their side effects idempotent or tolerant.
 */
export class OffsetsOnlySink {
  constructor(private readonly consumer: () => Consumer) {}

  async commit(batch: CommitBatch): Promise<void> {
    batch.beforeCommit?.();
    // Committed while the consumer still runs (kafkajs skips commits of a stopping consumer).
    await this.consumer().commitOffsets([{ topic: batch.topic, partition: batch.partition, offset: batch.nextOffset }]);
  }
}
