import type { Admin, Consumer, Kafka, Message, Producer, Transaction } from 'kafkajs';
import { RecordRejection, type ErrorKind } from '../kafka/dead-letter';
import { isRecordError, kafkaErrorType } from '../kafka/errors';
import { TributaryError } from '../util/errors';
import type { Logger } from '../util/logger';

/** How a stage's outputs and consumed offsets reach Kafka. */
export type DeliveryMode = 'exactly-once' | 'at-least-once';

/** A producer's transactional epoch was taken by a newer instance: this instance lost the partition. */
export class ProducerFencedError extends TributaryError {}

const FENCED = new Set(['INVALID_PRODUCER_EPOCH', 'PRODUCER_FENCED', 'INVALID_PRODUCER_ID_MAPPING', 'TRANSACTIONAL_ID_NOT_FOUND']);

/** One consumed batch, processed, ready to be written. */
export interface OutgoingBatch {
  topic: string;
  partition: number;
  /** The offset to commit: last consumed offset + 1. */
  nextOffset: string;
  /** Encoded outputs for the stage's output topic. */
  outputs: Message[];
  /** Called for an output the broker can never accept (e.g. too large): it becomes a dead letter. */
  reject(index: number, rejection: RecordRejection): void;
  /** Builds the dead-letter messages once every rejection is known. */
  deadLetters(): Message[];
  /** True once the partition was revoked or the consumer stopped while the batch was in flight. */
  isStale(): boolean;
}

export interface DeliveryOptions {
  kafka: Kafka;
  consumer: Consumer;
  groupId: string;
  outputTopic: string;
  deadLetterTopic: string;
  /** The output topic's max.message.bytes. */
  maxMessageBytes: number;
  log: Logger;
}

/** Bytes a record batch adds around its records (header, CRC, etc.), rounded up. */
const RECORD_BATCH_OVERHEAD = 128;

export function recordSize(m: Message): number {
  const len = (v: Message['key'] | Message['value']) => (v == null ? 0 : typeof v === 'string' ? Buffer.byteLength(v) : v.length);
  return len(m.key) + len(m.value) + 32;
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
 * Writes batches. Both modes refuse records that can never fit the output topic before sending,
 * keep each request under the topic's size limit, and dead-letter records the broker refuses for
 * a record-level reason while the rest of the batch flows.
 */
export abstract class Delivery {
  constructor(protected readonly opts: DeliveryOptions) {}

  /** Offsets below which this partition's records were already delivered (re-checked after an ownership change), or null. */
  abstract startOffset(topic: string, partition: number): Promise<string | null>;
  /** Writes outputs, dead letters and the offset; returns false if the batch went stale and nothing was committed. */
  abstract deliver(batch: OutgoingBatch): Promise<boolean>;
  /** Called with the partitions this instance holds after each group join. */
  abstract onAssignment(assigned: Record<string, number[]>): void;
  abstract close(): Promise<void>;

  /** Marks records that can never fit as TOO_LARGE; returns the indexes of those that may be sent. */
  protected fitting(batch: OutgoingBatch): number[] {
    const limit = this.opts.maxMessageBytes - RECORD_BATCH_OVERHEAD;
    const keep: number[] = [];
    batch.outputs.forEach((m, i) => {
      const size = recordSize(m);
      if (size > limit) batch.reject(i, new RecordRejection('TOO_LARGE', `record of ${size} bytes exceeds ${this.opts.outputTopic}'s max.message.bytes (${this.opts.maxMessageBytes})`));
      else keep.push(i);
    });
    return keep;
  }

  protected chunkLimit(): number {
    return Math.max(this.opts.maxMessageBytes - RECORD_BATCH_OVERHEAD, Math.floor(this.opts.maxMessageBytes / 2));
  }
}

/** Offsets are committed by the consumer after outputs are acknowledged: a crash re-delivers (duplicates possible). */
export class AtLeastOnceDelivery extends Delivery {
  private producer?: Producer;

  private async connected(): Promise<Producer> {
    if (!this.producer) {
      this.producer = this.opts.kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
      await this.producer.connect();
    }
    return this.producer;
  }

  async startOffset(): Promise<string | null> {
    return null;
  }

  onAssignment(): void {}

  async deliver(batch: OutgoingBatch): Promise<boolean> {
    const producer = await this.connected();
    const topic = this.opts.outputTopic;
    const keep = this.fitting(batch);
    try {
      for (const chunk of chunkBySize(keep.map((i) => batch.outputs[i]), this.chunkLimit())) await producer.send({ topic, acks: -1, messages: chunk });
    } catch (err) {
      if (!isRecordError(err)) throw err;
      this.opts.log.warn({ err: kafkaErrorType(err) }, 'batch refused for a record-level reason; sending one by one');
      // Records already acknowledged in an earlier chunk are sent again: at-least-once allows it.
      for (const i of keep) {
        try {
          await producer.send({ topic, acks: -1, messages: [batch.outputs[i]] });
        } catch (e) {
          if (!isRecordError(e)) throw e;
          batch.reject(i, rejectionFor(e, topic));
        }
      }
    }
    const dlq = batch.deadLetters();
    // A failure here propagates: the batch is not committed and is retried, so nothing is lost.
    if (dlq.length > 0) await producer.send({ topic: this.opts.deadLetterTopic, acks: -1, messages: dlq });
    if (batch.isStale()) return false;
    await this.opts.consumer.commitOffsets([{ topic: batch.topic, partition: batch.partition, offset: batch.nextOffset }]);
    return true;
  }

  async close(): Promise<void> {
    await this.producer?.disconnect();
    this.producer = undefined;
  }
}

/**
 * Kafka transactions, the classic (pre-KIP-447) pattern kafkajs supports: one transactional
 * producer per input partition, transactional id `<group>.<topic>.<partition>`, so the instance
 * that takes over a partition fences the one that lost it. Outputs, dead letters and the consumed
 * offset commit atomically; downstream read_committed consumers see each batch once or not at all.
 */
export class TransactionalDelivery extends Delivery {
  private readonly producers = new Map<string, Promise<Producer>>();
  /** Partitions whose committed offset was re-read after their producer fenced any previous owner. */
  private readonly verified = new Map<string, Promise<string | null>>();
  /**
   * Partitions this instance was fenced out of. Until the next group join it must not create a
   * new producer for them: that would fence the rightful owner in turn (ping-pong).
   */
  private readonly fenced = new Set<string>();
  private admin?: Promise<Admin>;

  private key(topic: string, partition: number): string {
    return `${topic}:${partition}`;
  }

  transactionalId(topic: string, partition: number): string {
    return `${this.opts.groupId}.${topic}.${partition}`;
  }

  private producerFor(topic: string, partition: number): Promise<Producer> {
    const key = this.key(topic, partition);
    if (this.fenced.has(key)) {
      return Promise.reject(new ProducerFencedError(`${this.transactionalId(topic, partition)} was fenced; waiting for the group to reassign partitions`));
    }
    let p = this.producers.get(key);
    if (!p) {
      p = (async () => {
        const producer = this.opts.kafka.producer({
          transactionalId: this.transactionalId(topic, partition),
          idempotent: true,
          maxInFlightRequests: 1,
          allowAutoTopicCreation: false,
          transactionTimeout: 60000,
          // The broker answers CONCURRENT_TRANSACTIONS while it still writes the previous
          // transaction's markers (a few ms); kafkajs retries that with the client's backoff, which
          // at 200 ms would add 200+ ms to every batch. Retry fast here; outages are handled per batch.
          retry: { initialRetryTime: 10, maxRetryTime: 1000, retries: 12 },
        });
        await producer.connect();
        // InitProducerId now, not at the first batch: it bumps the epoch (fencing a previous owner)
        // and waits until that owner's open transaction is aborted or completed.
        const init = await producer.transaction();
        await init.abort();
        return producer;
      })();
      p.catch(() => this.producers.delete(key));
      this.producers.set(key, p);
    }
    return p;
  }

  onAssignment(assigned: Record<string, number[]>): void {
    const keep = new Set(Object.entries(assigned).flatMap(([t, parts]) => parts.map((p) => this.key(t, p))));
    for (const [key, producer] of this.producers) {
      if (!keep.has(key)) {
        this.producers.delete(key);
        void producer.then((p) => p.disconnect()).catch(() => undefined);
      }
    }
    // A new generation may have moved partitions: re-verify offsets before the next batch of each.
    this.verified.clear();
    this.fenced.clear();
    for (const [topic, parts] of Object.entries(assigned)) for (const p of parts) void this.producerFor(topic, p).catch(() => undefined);
  }

  /**
   * After fencing, re-reads the committed offset: a previous owner's transaction may have
   * committed between the consumer's offset fetch and our fencing, and those records must be skipped.
   */
  startOffset(topic: string, partition: number): Promise<string | null> {
    const key = this.key(topic, partition);
    let v = this.verified.get(key);
    if (!v) {
      v = (async () => {
        await this.producerFor(topic, partition);
        this.admin ??= (async () => {
          const admin = this.opts.kafka.admin();
          await admin.connect();
          return admin;
        })();
        const res = await (await this.admin).fetchOffsets({ groupId: this.opts.groupId, topics: [topic] });
        const entry = res.find((r) => r.topic === topic)?.partitions.find((p) => p.partition === partition);
        return entry && Number(entry.offset) >= 0 ? entry.offset : null;
      })();
      v.catch(() => this.verified.delete(key));
      this.verified.set(key, v);
    }
    return v;
  }

  async deliver(batch: OutgoingBatch): Promise<boolean> {
    const producer = await this.producerFor(batch.topic, batch.partition);
    let keep = this.fitting(batch);
    let txn = await producer.transaction();
    try {
      try {
        await this.sendAll(txn, keep.map((i) => batch.outputs[i]));
      } catch (err) {
        if (!isRecordError(err)) throw err;
        // A refused send poisons the transaction: abort, find the offending records with probe
        // transactions that are always aborted (invisible to read_committed), then write the rest.
        await txn.abort();
        this.opts.log.warn({ err: kafkaErrorType(err) }, 'batch refused for a record-level reason; probing records one by one');
        keep = await this.probe(producer, batch, keep);
        txn = await producer.transaction();
        await this.sendAll(txn, keep.map((i) => batch.outputs[i]));
      }
      const dlq = batch.deadLetters();
      if (dlq.length > 0) await txn.send({ topic: this.opts.deadLetterTopic, acks: -1, messages: dlq });
      await txn.sendOffsets({ consumerGroupId: this.opts.groupId, topics: [{ topic: batch.topic, partitions: [{ partition: batch.partition, offset: batch.nextOffset }] }] });
      if (batch.isStale()) {
        await txn.abort();
        return false;
      }
      await txn.commit();
      return true;
    } catch (err) {
      if (txn.isActive()) await txn.abort().catch(() => undefined);
      if (FENCED.has(kafkaErrorType(err) ?? '')) {
        // This instance lost the partition to a newer owner: drop the producer; nothing was committed.
        const key = this.key(batch.topic, batch.partition);
        this.fenced.add(key);
        this.dropProducer(key);
        throw new ProducerFencedError(`${this.transactionalId(batch.topic, batch.partition)} was fenced by a newer owner; batch not committed`, { cause: err });
      }
      // Any other failure (broker restart, timeout) may leave the producer's transaction state
      // unknown: start over with a fresh producer, whose init aborts whatever was left open.
      if (!isRecordError(err)) this.dropProducer(this.key(batch.topic, batch.partition));
      throw err;
    }
  }

  private dropProducer(key: string): void {
    const producer = this.producers.get(key);
    this.producers.delete(key);
    this.verified.delete(key);
    void producer?.then((p) => p.disconnect()).catch(() => undefined);
  }

  private async sendAll(txn: Transaction, messages: Message[]): Promise<void> {
    for (const chunk of chunkBySize(messages, this.chunkLimit())) await txn.send({ topic: this.opts.outputTopic, acks: -1, messages: chunk });
  }

  private async probe(producer: Producer, batch: OutgoingBatch, indexes: number[]): Promise<number[]> {
    const ok: number[] = [];
    for (const i of indexes) {
      const probe = await producer.transaction();
      try {
        await probe.send({ topic: this.opts.outputTopic, acks: -1, messages: [batch.outputs[i]] });
        ok.push(i);
      } catch (err) {
        if (!isRecordError(err)) {
          await probe.abort().catch(() => undefined);
          throw err;
        }
        batch.reject(i, rejectionFor(err, this.opts.outputTopic));
      }
      await probe.abort().catch(() => undefined);
    }
    return ok;
  }

  async close(): Promise<void> {
    const all = [...this.producers.values()];
    this.producers.clear();
    this.verified.clear();
    await Promise.allSettled(all.map(async (p) => (await p).disconnect()));
    if (this.admin) await (await this.admin).disconnect().catch(() => undefined);
    this.admin = undefined;
  }
}
