import { ConfigResourceTypes, KafkaJSError, type Consumer, type EachBatchPayload, type Kafka, type KafkaMessage, type Message } from 'kafkajs';
import type { DeadLetter } from '../client/generated/avro-types';
import { AvroDecoder, AvroEncoder } from '../kafka/avro-serde';
import type { SchemaCatalog } from '../kafka/avro-schemas';
import { RecordRejection } from '../kafka/dead-letter';
import type { SchemaRegistryClient } from '../kafka/schema-registry';
import type { StageMetrics } from '../monitoring/metrics';
import type { LoadedTopology, StageSpec } from '../topology/spec';
import { createLogger, type Logger } from '../util/logger';
import type { InputRecord, Lineage, OutputRecord, Processor, ProcessResult } from './processor';
import { AtLeastOnceDelivery, ProducerFencedError, TransactionalDelivery, type Delivery, type DeliveryMode, type OutgoingBatch } from './delivery';

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

export const DEFAULT_DELIVERY: DeliveryMode = 'exactly-once';

/** Counters a caller can read without Prometheus (demo summary, tests). */
export interface StageCounters {
  consumed: number;
  produced: number;
  deadLettered: number;
  batches: number;
  /** Times a partition was paused because the processor was saturated (backpressure). */
  backpressurePauses: number;
  /** Batches refused because this instance's transactional producer was fenced by a newer owner. */
  fencedBatches: number;
}

interface Pending<O> {
  message: KafkaMessage;
  lineage: Lineage;
  result: OutputRecord<O> | RecordRejection;
}

/**
 * Executes one stage: a Kafka consumer group reading the stage's input topic in batches,
 * decode -> process -> encode -> write outputs, dead letters and the consumed offset.
 * Exactly-once by default (Kafka transactions, see delivery.ts); at-least-once as an opt-in.
 */
export class StageRunner {
  readonly groupId: string;
  readonly counters: StageCounters = { consumed: 0, produced: 0, deadLettered: 0, batches: 0, backpressurePauses: 0, fencedBatches: 0 };
  private readonly log: Logger;
  private readonly consumer: Consumer;
  private delivery!: Delivery;
  readonly deliveryMode: DeliveryMode;
  private readonly maxAttempts: number;
  private readonly maxInputBytes: number;
  private readonly backoffMs: number;
  /** Failed processing attempts per (partition, first offset) of a re-delivered chunk. */
  private readonly attempts = new Map<string, number>();
  private readonly decoder: AvroDecoder<unknown>;
  private readonly encoder: AvroEncoder<unknown>;
  private readonly dlqEncoder: AvroEncoder<DeadLetter>;
  private readonly chunkSize: number;
  private readonly dlqMaxValueBytes: number;
  private running = false;
  /** Partitions currently assigned by the group (from GROUP_JOIN); empty before joining and after a crash. */
  private assignedPartitions = 0;
  /** Set while batches keep failing (broker, registry or Redis outage); cleared by the next success. */
  private failingSince?: number;
  private lastError?: string;
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
      maxBytesPerPartition: Math.min(tuning.maxBytesPerPartition ?? 1024 * 1024, stage.limits?.maxBatchBytes ?? Number.POSITIVE_INFINITY),
      maxBytes: stage.limits?.maxBatchBytes ?? tuning.maxBytes ?? 10 * 1024 * 1024,
      maxWaitTimeInMs: tuning.maxWaitTimeMs ?? 100,
      readUncommitted: false,
    });
    this.deliveryMode = stage.delivery ?? DEFAULT_DELIVERY;
    this.maxAttempts = stage.errors?.maxAttempts ?? 3;
    this.maxInputBytes = stage.limits?.maxMessageBytes ?? Number.POSITIVE_INFINITY;
    this.backoffMs = stage.errors?.backoffMs ?? 200;
    this.consumer.on(this.consumer.events.GROUP_JOIN, ({ payload }) => {
      this.assignedPartitions = Object.values(payload.memberAssignment).reduce((n, parts) => n + parts.length, 0);
      this.opts.processor.onAssignment?.(payload.memberAssignment);
      this.delivery?.onAssignment(payload.memberAssignment);
    });
    for (const event of [this.consumer.events.CRASH, this.consumer.events.DISCONNECT, this.consumer.events.STOP]) {
      this.consumer.on(event, () => (this.assignedPartitions = 0));
    }
    // Supervisor: a consumer kafkajs will not restart itself is restarted here while the stage runs.
    this.consumer.on(this.consumer.events.CRASH, ({ payload }) => {
      if (payload.restart || !this.running) return;
      this.log.error({ err: payload.error.message }, 'consumer crashed without restart; restarting it');
      void this.restartConsumer();
    });
  }

  /** Readiness of this stage: running and holding at least one partition of its input. */
  health(): { stage: string; running: boolean; assignedPartitions: number; failingSinceMs?: number; lastError?: string; ready: boolean } {
    const failingSinceMs = this.failingSince === undefined ? undefined : Date.now() - this.failingSince;
    return {
      stage: this.opts.stage.name,
      running: this.running,
      assignedPartitions: this.assignedPartitions,
      ...(failingSinceMs === undefined ? {} : { failingSinceMs, lastError: this.lastError }),
      ready: this.running && this.assignedPartitions > 0 && failingSinceMs === undefined,
    };
  }

  async start(): Promise<void> {
    // Register schemas first: a registry problem fails the start, not the first batch.
    await Promise.all([this.encoder.id(), this.dlqEncoder.id()]);
    this.maxMessageBytes = await topicMaxMessageBytes(this.opts.kafka, this.opts.stage.output.topic);
    const deliveryOptions = {
      kafka: this.opts.kafka,
      consumer: this.consumer,
      groupId: this.groupId,
      outputTopic: this.opts.stage.output.topic,
      deadLetterTopic: this.opts.topology.spec.deadLetter.topic,
      maxMessageBytes: this.maxMessageBytes,
      log: this.log,
    };
    this.delivery = this.deliveryMode === 'exactly-once' ? new TransactionalDelivery(deliveryOptions) : new AtLeastOnceDelivery(deliveryOptions);
    this.running = true;
    await this.subscribeAndRun();
    this.log.info({ input: this.opts.stage.input.topic, output: this.opts.stage.output.topic, delivery: this.deliveryMode }, 'stage started');
  }

  private async restartConsumer(): Promise<void> {
    for (let delay = 1000; this.running; delay = Math.min(delay * 2, 30000)) {
      await new Promise((r) => setTimeout(r, delay));
      if (!this.running) return;
      try {
        await this.subscribeAndRun();
        this.log.info('consumer restarted');
        return;
      } catch (err) {
        this.log.error({ err: (err as Error).message, retryInMs: delay * 2 }, 'consumer restart failed');
      }
    }
  }

  private async subscribeAndRun(): Promise<void> {
    await this.consumer.connect();
    await this.consumer.subscribe({ topic: this.opts.stage.input.topic, fromBeginning: this.opts.stage.input.fromBeginning ?? true });
    await this.consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: this.opts.stage.consumer?.partitionsConsumedConcurrently ?? 3,
      eachBatch: (payload) => this.handleBatchRetriably(payload),
    });
  }

  /** Stops fetching, lets the in-flight batch finish and commit, then closes everything. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    await this.consumer.disconnect();
    await this.delivery.close();
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

  /**
   * Every failure of a batch means "retry this batch": per-record problems never throw. kafkajs
   * stops a consumer for good on a non-retriable error (e.g. a broker connection refused while the
   * broker restarts), so errors are handed to it as retriable: it retries the batch with backoff
   * and, past its retries, restarts the consumer, which rejoins the group.
   */
  private async handleBatchRetriably(payload: EachBatchPayload): Promise<void> {
    try {
      await this.handleBatch(payload);
      this.failingSince = undefined;
    } catch (err) {
      this.failingSince ??= Date.now();
      this.lastError = `${(err as Error).name}: ${(err as Error).message}`;
      this.opts.metrics.batchErrors.inc({ stage: this.opts.stage.name, kind: (err as Error).name || 'Error' });
      if (err instanceof KafkaJSError && err.retriable) throw err;
      throw new KafkaJSError(`${(err as Error).name}: ${(err as Error).message}`, { retriable: true });
    }
  }

  private async handleBatch(payload: EachBatchPayload): Promise<void> {
    const { batch, heartbeat, resolveOffset, isRunning, isStale } = payload;
    if (batch.messages.length === 0) return;
    const started = process.hrtime.bigint();
    const { stage, metrics } = this.opts;
    const last = batch.messages[batch.messages.length - 1].offset;

    // After an ownership change, records below the re-read committed offset were delivered by the
    // previous owner (its transaction completed after our offset fetch): skip them.
    const from = await this.delivery.startOffset(batch.topic, batch.partition);
    const messages = from === null ? batch.messages : batch.messages.filter((m) => BigInt(m.offset) >= BigInt(from));
    if (messages.length < batch.messages.length) {
      this.log.info({ partition: batch.partition, skipped: batch.messages.length - messages.length, committed: from }, 'skipped records already delivered by the previous owner');
    }
    if (messages.length === 0) {
      resolveOffset(last);
      return;
    }

    const pending: Pending<unknown>[] = [];
    for (let start = 0; start < messages.length; start += this.chunkSize) {
      if (!isRunning() || isStale()) return; // nothing committed: the next owner re-reads
      await this.waitWhileSaturated(payload);
      if (!isRunning() || isStale()) return;
      const chunk = messages.slice(start, start + this.chunkSize);
      const decoded: InputRecord<unknown>[] = [];
      const decodedIdx: number[] = [];
      for (const message of chunk) {
        const lineage = { topic: batch.topic, partition: batch.partition, offset: Number(message.offset) };
        const size = (message.value?.length ?? 0) + (message.key?.length ?? 0);
        if (size > this.maxInputBytes) {
          pending.push({ message, lineage, result: new RecordRejection('TOO_LARGE', `input record of ${size} bytes exceeds the stage's limits.maxMessageBytes (${this.maxInputBytes})`) });
          continue;
        }
        const value = await this.decoder.decode(message.value);
        if (value instanceof RecordRejection) {
          pending.push({ message, lineage, result: value });
        } else {
          decodedIdx.push(pending.length);
          pending.push({ message, lineage, result: new RecordRejection('PROCESSING_ERROR', 'not processed') });
          decoded.push({ value, key: message.key, timestamp: Number(message.timestamp), lineage });
        }
      }
      const results = await this.processWithRetries(batch.partition, chunk[0].offset, decoded);
      results.forEach((r, i) => (pending[decodedIdx[i]].result = r));
      await heartbeat();
    }

    const schemaId = await this.encoder.id();
    const outputs: Message[] = [];
    const owners: Pending<unknown>[] = [];
    for (const p of pending) {
      if (p.result instanceof RecordRejection) continue;
      try {
        const out = p.result as OutputRecord<unknown>;
        outputs.push({ key: out.key, value: this.encoder.encodeWithId(schemaId, out.value) });
        owners.push(p);
      } catch (err) {
        p.result = new RecordRejection('PROCESSING_ERROR', `output does not match schema: ${(err as Error).message}`);
      }
    }
    const dlqId = await this.dlqEncoder.id();
    const committed = await this.deliverCountingFences({
      topic: batch.topic,
      partition: batch.partition,
      nextOffset: String(BigInt(last) + 1n),
      outputs,
      reject: (i, rejection) => (owners[i].result = rejection),
      deadLetters: () => pending.filter((p) => p.result instanceof RecordRejection).map((p) => this.deadLetter(dlqId, p)),
      isStale: () => isStale() || !isRunning(),
    });
    if (!committed) return; // revoked meanwhile: nothing committed, the new owner re-reads this batch
    resolveOffset(last);
    await heartbeat();

    const rejected = pending.filter((p) => p.result instanceof RecordRejection);
    const produced = pending.length - rejected.length;
    this.counters.consumed += batch.messages.length;
    this.counters.produced += produced;
    this.counters.deadLettered += rejected.length;
    this.counters.batches += 1;
    metrics.eventsIn.inc({ stage: stage.name, topic: batch.topic }, batch.messages.length);
    metrics.eventsOut.inc({ stage: stage.name, topic: stage.output.topic }, produced);
    for (const p of rejected) metrics.deadLettered.inc({ stage: stage.name, kind: (p.result as RecordRejection).kind });
    if (rejected.length > 0) {
      this.log.warn({ count: rejected.length, kinds: [...new Set(rejected.map((p) => (p.result as RecordRejection).kind))] }, 'dead-lettered records');
    }
    metrics.batchSize.observe({ stage: stage.name }, batch.messages.length);
    metrics.batchSeconds.observe({ stage: stage.name }, Number(process.hrtime.bigint() - started) / 1e9);
    const now = Date.now();
    for (const p of pending) {
      if (!(p.result instanceof RecordRejection)) metrics.endToEndSeconds.observe({ stage: stage.name }, (now - Number(p.message.timestamp)) / 1000);
    }
  }

  private async deliverCountingFences(batch: OutgoingBatch): Promise<boolean> {
    try {
      return await this.delivery.deliver(batch);
    } catch (err) {
      if (err instanceof ProducerFencedError) {
        this.counters.fencedBatches += 1;
        this.log.warn({ partition: batch.partition, err: err.message }, 'fenced: another instance owns this partition now; nothing committed');
      }
      throw err;
    }
  }

  /**
   * Transient processor failures are retried with backoff by re-delivering the batch; after
   * `maxAttempts` the records are processed one by one and those that still fail are
   * dead-lettered, so a poison message never blocks its partition forever.
   */
  private async processWithRetries(partition: number, firstOffset: string, records: InputRecord<unknown>[]): Promise<ProcessResult<unknown>[]> {
    const key = `${partition}:${firstOffset}`;
    try {
      const results = await this.opts.processor.processBatch(records);
      this.attempts.delete(key);
      return results;
    } catch (err) {
      const attempt = (this.attempts.get(key) ?? 0) + 1;
      if (attempt < this.maxAttempts) {
        this.attempts.set(key, attempt);
        const delay = this.backoffMs * 2 ** (attempt - 1);
        this.log.warn({ err: (err as Error).message, partition, firstOffset, attempt, delay }, 'processing failed; the batch will be retried');
        await new Promise((r) => setTimeout(r, delay));
        throw err;
      }
      this.attempts.delete(key);
      this.log.error({ err: (err as Error).message, partition, firstOffset, attempt }, 'processing kept failing; isolating records');
      const out: ProcessResult<unknown>[] = [];
      for (const r of records) {
        try {
          out.push(...(await this.opts.processor.processBatch([r])));
        } catch (e) {
          out.push(new RecordRejection('PROCESSING_ERROR', `failed after ${attempt} attempts: ${(e as Error).message}`));
        }
      }
      return out;
    }
  }

  private deadLetter(schemaId: number, p: Pending<unknown>): Message {
    const rejection = p.result as RecordRejection;
    let value = p.message.value;
    let note = '';
    if (value && value.length > this.dlqMaxValueBytes) {
      note = ` [original value of ${value.length} bytes truncated to ${this.dlqMaxValueBytes}]`;
      value = value.subarray(0, this.dlqMaxValueBytes);
    }
    const record: DeadLetter = {
      stage: this.opts.stage.name,
      errorKind: rejection.kind,
      errorMessage: rejection.message + note,
      lineage: p.lineage,
      key: p.message.key ?? null,
      value: value ?? null,
      failedTime: Date.now(),
    };
    return { key: p.message.key, value: this.dlqEncoder.encodeWithId(schemaId, record), headers: { 'tributary-error-kind': rejection.kind } };
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
}


/** Reads a topic's effective max.message.bytes from the broker. */
export async function topicMaxMessageBytes(kafka: Kafka, topic: string): Promise<number> {
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
