import { ConfigResourceTypes, type Consumer, type EachBatchPayload, type Kafka, type KafkaMessage, type Message, type Producer } from 'kafkajs';
import type { DeadLetter } from '../client/generated/avro-types';
import { AvroDecoder, AvroEncoder } from '../kafka/avro-serde';
import type { SchemaCatalog } from '../kafka/avro-schemas';
import { RecordRejection, type ErrorKind } from '../kafka/dead-letter';
import { isRecordError, kafkaErrorType } from '../kafka/errors';
import type { SchemaRegistryClient } from '../kafka/schema-registry';
import type { StageMetrics } from '../monitoring/metrics';
import type { LoadedTopology, StageSpec } from '../topology/spec';
import { createLogger, type Logger } from '../util/logger';
import type { InputRecord, Lineage, OutputRecord, Processor } from './processor';

export interface StageRunnerOptions {
  kafka: Kafka;
  registry: SchemaRegistryClient;
  catalog: SchemaCatalog;
  topology: LoadedTopology;
  stage: StageSpec;
  processor: Processor;
  metrics: StageMetrics;
  /** Consumer group; defaults to `<topology>.<stage>`. */
  groupId?: string;
  /** Records per processor call within a consumed batch; the runner heartbeats between chunks. */
  chunkSize?: number;
  /** Dead-letter copies of original values are cut to this many bytes so the DLQ write itself cannot fail. */
  deadLetterMaxValueBytes?: number;
}

/** Counters a caller can read without Prometheus (demo summary, tests). */
export interface StageCounters {
  consumed: number;
  produced: number;
  deadLettered: number;
  batches: number;
  /** Times a partition was paused because the processor was saturated (backpressure). */
  backpressurePauses: number;
}

interface Pending<O> {
  message: KafkaMessage;
  lineage: Lineage;
  result: OutputRecord<O> | RecordRejection;
}

/**
 * Executes one stage: a Kafka consumer group reading the stage's input topic in batches,
 * decode -> process -> encode -> produce outputs and dead letters -> commit offsets.
 * Offsets are committed only after every output and dead letter of the batch is acknowledged
 * by the broker (acks=all), so a crash re-delivers rather than loses (at-least-once).
 */
export class StageRunner {
  readonly groupId: string;
  readonly counters: StageCounters = { consumed: 0, produced: 0, deadLettered: 0, batches: 0, backpressurePauses: 0 };
  private readonly log: Logger;
  private readonly consumer: Consumer;
  private readonly producer: Producer;
  private readonly decoder: AvroDecoder<unknown>;
  private readonly encoder: AvroEncoder<unknown>;
  private readonly dlqEncoder: AvroEncoder<DeadLetter>;
  private readonly chunkSize: number;
  private readonly dlqMaxValueBytes: number;
  private running = false;
  /** Partitions currently assigned by the group (from GROUP_JOIN); empty before joining and after a crash. */
  private assignedPartitions = 0;
  /** The output topic's max.message.bytes (learned at start): bounds single records and request chunks. */
  private maxMessageBytes = 1024 * 1024;

  constructor(private readonly opts: StageRunnerOptions) {
    const { topology, stage, catalog, registry, kafka } = opts;
    this.groupId = opts.groupId ?? `${topology.spec.name}.${stage.name}`;
    this.log = createLogger('stage').child({ stage: stage.name, group: this.groupId });
    this.chunkSize = opts.chunkSize ?? 1000;
    this.dlqMaxValueBytes = opts.deadLetterMaxValueBytes ?? 512 * 1024;
    const topicSchema = (name: string) => catalog.get(topology.spec.topics.find((t) => t.name === name)!.schema);
    this.decoder = new AvroDecoder(registry, topicSchema(stage.input.topic).type);
    this.encoder = new AvroEncoder(registry, topicSchema(stage.output.topic), stage.output.topic);
    this.dlqEncoder = new AvroEncoder(registry, catalog.get('dead-letter'), topology.spec.deadLetter.topic);
    const tuning = stage.consumer ?? {};
    this.consumer = kafka.consumer({
      groupId: this.groupId,
      sessionTimeout: tuning.sessionTimeoutMs ?? 30000,
      heartbeatInterval: tuning.heartbeatIntervalMs ?? 3000,
      maxBytesPerPartition: tuning.maxBytesPerPartition ?? 1024 * 1024,
      maxBytes: tuning.maxBytes ?? 10 * 1024 * 1024,
      maxWaitTimeInMs: tuning.maxWaitTimeMs ?? 100,
      readUncommitted: false,
    });
    this.producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
    this.consumer.on(this.consumer.events.GROUP_JOIN, ({ payload }) => {
      this.assignedPartitions = Object.values(payload.memberAssignment).reduce((n, parts) => n + parts.length, 0);
    });
    for (const event of [this.consumer.events.CRASH, this.consumer.events.DISCONNECT, this.consumer.events.STOP]) {
      this.consumer.on(event, () => (this.assignedPartitions = 0));
    }
  }

  /** Readiness of this stage: running and holding at least one partition of its input. */
  health(): { stage: string; running: boolean; assignedPartitions: number; ready: boolean } {
    return { stage: this.opts.stage.name, running: this.running, assignedPartitions: this.assignedPartitions, ready: this.running && this.assignedPartitions > 0 };
  }

  async start(): Promise<void> {
    // Register schemas first: a registry problem fails the start, not the first batch.
    await Promise.all([this.encoder.id(), this.dlqEncoder.id()]);
    this.maxMessageBytes = await topicMaxMessageBytes(this.opts.kafka, this.opts.stage.output.topic);
    await this.producer.connect();
    await this.consumer.connect();
    await this.consumer.subscribe({ topic: this.opts.stage.input.topic, fromBeginning: this.opts.stage.input.fromBeginning ?? true });
    this.running = true;
    await this.consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: this.opts.stage.consumer?.partitionsConsumedConcurrently ?? 3,
      eachBatch: (payload) => this.handleBatch(payload),
    });
    this.log.info({ input: this.opts.stage.input.topic, output: this.opts.stage.output.topic }, 'stage started');
  }

  /** Stops fetching, lets the in-flight batch finish and commit, then closes everything. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    await this.consumer.disconnect();
    await this.producer.disconnect();
    await this.opts.processor.close();
    this.log.info({ counters: this.counters }, 'stage stopped');
  }

  /** Resolves once the consumer has joined its group and got an assignment (or times out). */
  waitForAssignment(timeoutMs = 30000): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(new Error(`stage ${this.opts.stage.name}: no partition assignment within ${timeoutMs} ms`));
      }, timeoutMs);
      const off = this.consumer.on(this.consumer.events.GROUP_JOIN, () => {
        clearTimeout(timer);
        off();
        resolve();
      });
    });
  }

  private async handleBatch(payload: EachBatchPayload): Promise<void> {
    const { batch, heartbeat, resolveOffset, isRunning, isStale } = payload;
    if (batch.messages.length === 0) return;
    const started = process.hrtime.bigint();
    const { stage, metrics } = this.opts;
    const pending: Pending<unknown>[] = [];

    for (let start = 0; start < batch.messages.length; start += this.chunkSize) {
      if (!isRunning() || isStale()) return; // nothing committed: the next owner re-reads
      await this.waitWhileSaturated(payload);
      if (!isRunning() || isStale()) return;
      const chunk = batch.messages.slice(start, start + this.chunkSize);
      const decoded: InputRecord<unknown>[] = [];
      const decodedIdx: number[] = [];
      for (const message of chunk) {
        const lineage = { topic: batch.topic, partition: batch.partition, offset: Number(message.offset) };
        const value = await this.decoder.decode(message.value);
        if (value instanceof RecordRejection) {
          pending.push({ message, lineage, result: value });
        } else {
          decodedIdx.push(pending.length);
          pending.push({ message, lineage, result: new RecordRejection('PROCESSING_ERROR', 'not processed') });
          decoded.push({ value, key: message.key, timestamp: Number(message.timestamp), lineage });
        }
      }
      const results = await this.opts.processor.processBatch(decoded);
      results.forEach((r, i) => (pending[decodedIdx[i]].result = r));
      await heartbeat();
    }

    const outputs = pending.filter((p) => !(p.result instanceof RecordRejection));
    const schemaId = await this.encoder.id();
    const messages: Message[] = [];
    const sentOf: Pending<unknown>[] = [];
    for (const p of outputs) {
      try {
        const out = p.result as OutputRecord<unknown>;
        messages.push({ key: out.key, value: this.encoder.encodeWithId(schemaId, out.value) });
        sentOf.push(p);
      } catch (err) {
        p.result = new RecordRejection('PROCESSING_ERROR', `output does not match schema: ${(err as Error).message}`);
      }
    }
    await this.produceOutputs(messages, sentOf);
    await this.produceDeadLetters(pending.filter((p) => p.result instanceof RecordRejection));

    const produced = pending.length - pending.filter((p) => p.result instanceof RecordRejection).length;
    const last = batch.messages[batch.messages.length - 1].offset;
    resolveOffset(last);
    if (isStale()) return; // partition was revoked meanwhile: its new owner re-reads this batch
    await this.consumer.commitOffsets([{ topic: batch.topic, partition: batch.partition, offset: String(Number(last) + 1) }]);
    await heartbeat();

    this.counters.consumed += batch.messages.length;
    this.counters.produced += produced;
    this.counters.batches += 1;
    metrics.eventsIn.inc({ stage: stage.name, topic: batch.topic }, batch.messages.length);
    metrics.eventsOut.inc({ stage: stage.name, topic: stage.output.topic }, produced);
    metrics.batchSize.observe({ stage: stage.name }, batch.messages.length);
    metrics.batchSeconds.observe({ stage: stage.name }, Number(process.hrtime.bigint() - started) / 1e9);
    const now = Date.now();
    for (const p of outputs) {
      if (!(p.result instanceof RecordRejection)) metrics.endToEndSeconds.observe({ stage: stage.name }, (now - Number(p.message.timestamp)) / 1000);
    }
  }

  /**
   * Backpressure: while the processor is saturated (e.g. its bounded inference queue is full),
   * pauses fetching for this batch's partition and waits, heartbeating, until it drains.
   */
  private async waitWhileSaturated({ batch, pause, heartbeat, isRunning, isStale }: EachBatchPayload): Promise<void> {
    const bp = this.opts.processor.backpressure;
    if (!bp?.saturated()) return;
    const resume = pause();
    this.counters.backpressurePauses += 1;
    this.log.debug({ topic: batch.topic, partition: batch.partition }, 'processor saturated: partition paused');
    try {
      while (bp.saturated() && isRunning() && !isStale()) {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([bp.whenDrained(), new Promise((r) => (timer = setTimeout(r, 1000)))]);
        clearTimeout(timer);
        await heartbeat();
      }
    } finally {
      resume();
    }
  }

  /**
   * Sends a batch's outputs. If the broker refuses the request for a record-level reason
   * (e.g. a record too large for the topic), falls back to one send per record so only the
   * offending records are dead-lettered; transient errors propagate and the batch is retried.
   */
  private async produceOutputs(messages: Message[], owners: Pending<unknown>[]): Promise<void> {
    if (messages.length === 0) return;
    const topic = this.opts.stage.output.topic;
    // Records that can never fit the topic are refused here, without a round trip.
    const recordLimit = this.maxMessageBytes - RECORD_BATCH_OVERHEAD;
    const fitting: Message[] = [];
    const fittingOwners: Pending<unknown>[] = [];
    messages.forEach((m, i) => {
      const size = recordSize(m);
      if (size > recordLimit) {
        owners[i].result = new RecordRejection('TOO_LARGE', `record of ${size} bytes exceeds ${topic}'s max.message.bytes (${this.maxMessageBytes})`);
      } else {
        fitting.push(m);
        fittingOwners.push(owners[i]);
      }
    });
    try {
      // Chunks keep every per-partition record batch under the topic's limit.
      for (const chunk of chunkBySize(fitting, Math.max(recordLimit, Math.floor(this.maxMessageBytes / 2)))) {
        await this.producer.send({ topic, acks: -1, messages: chunk });
      }
      return;
    } catch (err) {
      if (!isRecordError(err)) throw err;
      this.log.warn({ err: kafkaErrorType(err) }, 'batch refused for a record-level reason; sending one by one');
    }
    // Re-sending records already acknowledged in an earlier chunk duplicates them; at-least-once allows it and it only happens after a broker-side refusal.
    messages = fitting;
    owners = fittingOwners;
    for (let i = 0; i < messages.length; i++) {
      try {
        await this.producer.send({ topic, acks: -1, messages: [messages[i]] });
      } catch (err) {
        if (!isRecordError(err)) throw err;
        const type = kafkaErrorType(err);
        const kind: ErrorKind = type === 'MESSAGE_TOO_LARGE' || type === 'RECORD_LIST_TOO_LARGE' ? 'TOO_LARGE' : 'PRODUCE_FAILED';
        owners[i].result = new RecordRejection(kind, `producing to ${topic} failed: ${type}: ${(err as Error).message}`);
      }
    }
  }

  private async produceDeadLetters(rejected: Pending<unknown>[]): Promise<void> {
    if (rejected.length === 0) return;
    const { stage, metrics, topology } = this.opts;
    const id = await this.dlqEncoder.id();
    const now = Date.now();
    const messages: Message[] = rejected.map((p) => {
      const rejection = p.result as RecordRejection;
      let value = p.message.value;
      let note = '';
      if (value && value.length > this.dlqMaxValueBytes) {
        note = ` [original value of ${value.length} bytes truncated to ${this.dlqMaxValueBytes}]`;
        value = value.subarray(0, this.dlqMaxValueBytes);
      }
      const record: DeadLetter = {
        stage: stage.name,
        errorKind: rejection.kind,
        errorMessage: rejection.message + note,
        lineage: p.lineage,
        key: p.message.key ?? null,
        value: value ?? null,
        failedTime: now,
      };
      metrics.deadLettered.inc({ stage: stage.name, kind: rejection.kind });
      return { key: p.message.key, value: this.dlqEncoder.encodeWithId(id, record), headers: { 'tributary-error-kind': rejection.kind } };
    });
    // A failure here propagates: the batch is not committed and will be retried, so nothing is lost.
    await this.producer.send({ topic: topology.spec.deadLetter.topic, acks: -1, messages });
    this.counters.deadLettered += rejected.length;
    this.log.warn({ count: rejected.length, kinds: [...new Set(rejected.map((p) => (p.result as RecordRejection).kind))] }, 'dead-lettered records');
  }
}

/** Bytes a record batch adds around its records (header, CRC, etc.), rounded up. */
const RECORD_BATCH_OVERHEAD = 128;

function recordSize(m: Message): number {
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

/** Reads a topic's effective max.message.bytes from the broker. */
async function topicMaxMessageBytes(kafka: Kafka, topic: string): Promise<number> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const res = await admin.describeConfigs({ includeSynonyms: false, resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configNames: ['max.message.bytes'] }] });
    const entry = res.resources[0]?.configEntries.find((e) => e.configName === 'max.message.bytes');
    return entry ? Number(entry.configValue) : 1024 * 1024;
  } finally {
    await admin.disconnect();
  }
}
