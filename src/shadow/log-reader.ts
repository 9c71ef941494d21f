import type { Kafka } from 'kafkajs';
import type { Type } from 'avsc';
import type { SchemaTypes } from '../client/generated/avro-types';
import { SchemaCatalog, packageSchemasDir } from '../kafka/avro-schemas';
import { AvroDecoder } from '../kafka/avro-serde';
import { RecordRejection } from '../kafka/dead-letter';
import type { SchemaRegistryClient } from '../kafka/schema-registry';
import { TributaryError } from '../util/errors';

export interface LogRecord<T> {
  value: T;
  topic: string;
  partition: number;
  offset: number;
  key: string | null;
  timestamp: number;
}

export interface ReadOptions {
  /** Start at the first record written at or after this time (ms); default the beginning. */
  fromMs?: number;
  /** Give up after this long (default 120 s). */
  timeoutMs?: number;
  /** Undecodable records are counted, not fatal. */
  onUndecodable?: (r: RecordRejection) => void;
}

/**
 * Reads a topic over a bounded range — from `fromMs` (by log time) up to the end offsets seen when
 * the read starts — decoding Avro through the registry; read_committed, so aborted transactions
 * never show. Completion is tracked per partition on kafkajs' batch events, which also report
 * batches holding only transaction markers.
 */
export async function readTopicRange<S extends keyof SchemaTypes>(kafka: Kafka, registry: SchemaRegistryClient, topic: string, schema: S, options?: ReadOptions): Promise<LogRecord<SchemaTypes[S]>[]>;
/** Any other schema (e.g. a topology's input events): the caller passes the reader type and names the record type. */
export async function readTopicRange<T = unknown>(kafka: Kafka, registry: SchemaRegistryClient, topic: string, reader: Type, options?: ReadOptions): Promise<LogRecord<T>[]>;
export async function readTopicRange(kafka: Kafka, registry: SchemaRegistryClient, topic: string, schema: string | Type, options: ReadOptions = {}): Promise<LogRecord<unknown>[]> {
  const admin = kafka.admin();
  await admin.connect();
  let ends: Map<number, bigint>;
  let starts: Map<number, bigint>;
  try {
    const offsets = await admin.fetchTopicOffsets(topic);
    ends = new Map(offsets.map((o) => [o.partition, BigInt(o.high)]));
    starts = new Map(offsets.map((o) => [o.partition, BigInt(o.low)]));
    if (options.fromMs !== undefined) {
      for (const o of await admin.fetchTopicOffsetsByTimestamp(topic, options.fromMs)) {
        const at = BigInt(o.offset);
        starts.set(o.partition, at < 0n ? ends.get(o.partition)! : at);
      }
    }
  } finally {
    await admin.disconnect();
  }
  const pending = new Set([...ends].filter(([p, end]) => end > starts.get(p)!).map(([p]) => p));
  const out: LogRecord<unknown>[] = [];
  if (pending.size === 0) return out;

  // The engine's own schemas by name (the package's schemas/); anything else as the given type.
  const reader = typeof schema === 'string' ? new SchemaCatalog(packageSchemasDir(), []).get(schema).type : schema;
  const decoder = new AvroDecoder<unknown>(registry, reader);
  const consumer = kafka.consumer({ groupId: `tributary-report-${topic}-${Date.now()}-${Math.floor(Math.random() * 1e9)}`, readUncommitted: false, maxWaitTimeInMs: 200 });
  let finish!: () => void;
  let fail!: (err: Error) => void;
  const done = new Promise<void>((resolve, reject) => {
    finish = resolve;
    fail = reject;
  });
  const reached = (partition: number, lastOffset: string) => {
    if (BigInt(lastOffset) + 1n >= ends.get(partition)!) {
      pending.delete(partition);
      if (pending.size === 0) finish();
    }
  };
  consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
    if (payload.topic === topic && payload.lastOffset !== null) reached(payload.partition, String(payload.lastOffset));
  });
  consumer.on(consumer.events.CRASH, ({ payload }) => fail(payload.error));
  const timer = setTimeout(() => fail(new TributaryError(`reading ${topic}: partitions ${[...pending].join(', ')} did not reach their end offsets within ${options.timeoutMs ?? 120000} ms`)), options.timeoutMs ?? 120000);
  try {
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    let seeked = false;
    await consumer.run({
      eachBatchAutoResolve: true,
      eachBatch: async ({ batch }) => {
        const end = ends.get(batch.partition)!;
        const start = starts.get(batch.partition)!;
        for (const m of batch.messages) {
          const off = BigInt(m.offset);
          if (off < start || off >= end) continue;
          const value = await decoder.decode(m.value);
          if (value instanceof RecordRejection) {
            options.onUndecodable?.(value);
            continue;
          }
          out.push({ value, topic: batch.topic, partition: batch.partition, offset: Number(m.offset), key: m.key?.toString() ?? null, timestamp: Number(m.timestamp) });
        }
      },
    });
    if (!seeked && options.fromMs !== undefined) {
      seeked = true;
      for (const [partition, offset] of starts) consumer.seek({ topic, partition, offset: String(offset) });
    }
    await done;
  } finally {
    clearTimeout(timer);
    await consumer.disconnect().catch(() => undefined);
  }
  return out;
}
