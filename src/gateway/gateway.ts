import { createHash, randomUUID } from 'node:crypto';
import { type Kafka, type KafkaMessage, type PartitionMetadata } from 'kafkajs';
import { JavaCompatiblePartitioner } from '../kafka/partitioner';
import type { Cluster, Redis } from 'ioredis';
import type * as avro from 'avsc';
import { topologySchemas } from '../kafka/avro-schemas';
import { AvroDecoder, AvroEncoder } from '../kafka/avro-serde';
import { idempotentProducer, type IdempotentProducer } from '../kafka/client';
import { RecordRejection } from '../kafka/dead-letter';
import type { SchemaRegistryClient } from '../kafka/schema-registry';
import { crashPoint } from '../engine/fault-injection';
import { CORRELATION_HEADER, REPLY_KIND_HEADER, REPLY_PARTITION_HEADER, REPLY_STAGE_HEADER, REPLY_TOPIC_HEADER, replyTopicName } from '../engine/replies';
import { effectiveTopology } from '../stages/pipeline';
import type { ProcessorRegistry } from '../stages/registry';
import type { LoadedTopology } from '../topology/spec';
import { fieldGetter } from '../util/field-path';
import type { Logger } from '../util/logger';
import type { DeadLetter } from '../client/generated/avro-types';
import { avroToJson, jsonToAvro, type FieldProblem } from './avro-json';
import { topologyView, type GatewayEvent, type TopologyView } from './events';
import { IdempotencyStore, type IdempotencyRecord } from './idempotency';
import type { GatewayMetrics } from './metrics';
import { ProduceBatcher } from './produce-batcher';
import { ProgressProbe } from './progress';
import { PartitionLease, ReplyConsumer, partitionEnd } from './reply-partitions';

export interface GatewayOptions {
  topology: LoadedTopology;
  processors: ProcessorRegistry;
  kafka: Kafka;
  registry: SchemaRegistryClient;
  redis: Redis | Cluster;
  metrics: GatewayMetrics;
  log: Logger;
  /** Names this instance in leases and idempotency records (default a random id). */
  instanceId?: string;
  /** Field path of the input event used as the Kafka message key (default: its first string field). */
  keyField?: string;
  /** Partition by this field instead of the key (e.g. the streaming features' entity). */
  partitionBy?: string;
  /** Consumer group prefix of the running topology (default its name). */
  groupPrefix?: string;
  /** Reply partition lease TTL (ms); a killed instance's requests are taken over after it. */
  leaseMs: number;
  idempotencyTtlMs: number;
  /** How long a request that timed out keeps listening for its late reply (to store it for a retry). */
  lateWindowMs: number;
}

export type SubmitResult =
  | { kind: 'invalid'; problems: FieldProblem[] }
  | { kind: 'conflict'; message: string }
  | { kind: 'done'; events: GatewayEvent[]; replayed: boolean };

export interface SubmitOptions {
  idempotencyKey?: string;
  timeoutMs: number;
  /** Streams wait for shadow results after the prediction (until the deadline); predict does not. */
  wantShadows: boolean;
  onEvent?(event: GatewayEvent): void;
}

/** One request's replies as they arrive (shared by the request and, after a timeout, by its late window). */
class Pending {
  readonly events: GatewayEvent[] = [];
  readonly seenStages: string[] = [];
  readonly shadows = new Set<string>();
  input?: { partition: number; offset: string };
  private listeners = new Set<(e: GatewayEvent) => void>();
  private changed: Array<() => void> = [];
  /** Replies are decoded in arrival order. */
  queue: Promise<void> = Promise.resolve();
  onTerminal?: (events: GatewayEvent[]) => void;
  private terminalSent = false;

  constructor(
    readonly cid: string,
    readonly started: number,
  ) {}

  get terminal(): GatewayEvent | undefined {
    return this.events.find((e) => e.type === 'prediction' || e.type === 'dead-letter');
  }

  push(e: GatewayEvent): void {
    this.events.push(e);
    if ('stage' in e && e.type !== 'timeout' && !this.seenStages.includes(e.stage)) this.seenStages.push(e.stage);
    if (e.type === 'shadow') this.shadows.add(e.stage);
    for (const l of this.listeners) l(e);
    if (this.terminal && !this.terminalSent && this.onTerminal) {
      this.terminalSent = true;
      this.onTerminal(this.events.slice());
    }
    const waiting = this.changed;
    this.changed = [];
    waiting.forEach((w) => w());
  }

  subscribe(l: (e: GatewayEvent) => void): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  /** Resolves at the next event or at `deadline`. */
  next(deadline: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, Math.max(0, deadline - Date.now()));
      this.changed.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }
}

const partitioner = JavaCompatiblePartitioner();

/**
 * The request → prediction gateway over one topology: validates an event against the input
 * topic's schema, produces it with a correlation id and this instance's reply partition in its
 * headers, and follows its replies (src/engine/replies.ts) until the prediction, a dead letter, or
 * the deadline. HTTP lives in server.ts; this class knows nothing of it.
 */
export class Gateway {
  readonly instanceId: string;
  readonly view: TopologyView;
  readonly inputType: avro.Type;
  readonly replyTopic: string;
  private readonly pending = new Map<string, Pending>();
  private readonly decoders = new Map<string, AvroDecoder<unknown>>();
  private readonly dlqDecoder: AvroDecoder<DeadLetter>;
  private readonly encoder: AvroEncoder<unknown>;
  private readonly producer: IdempotentProducer;
  private readonly batcher: ProduceBatcher;
  private readonly keyOf: (v: unknown) => unknown;
  private readonly partitionByOf?: (v: unknown) => unknown;
  private readonly idempotency: IdempotencyStore;
  private readonly probe: ProgressProbe;
  private readonly prefix: string;
  private lease?: PartitionLease;
  private consumer?: ReplyConsumer;
  private inputPartitions?: PartitionMetadata[];
  private schemaId?: number;
  private stopping = false;
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(private readonly opts: GatewayOptions) {
    const { topology } = opts;
    this.instanceId = opts.instanceId ?? randomUUID().slice(0, 12);
    // The topology as the engine runs it (repartition hops inserted): groups, topics and stages the replies name.
    const effective = effectiveTopology(topology, opts.processors).topology;
    this.view = topologyView(effective, opts.processors);
    this.replyTopic = replyTopicName(topology.spec.name);
    this.prefix = `tributary:gateway:${topology.spec.name}`;
    const catalog = topologySchemas(topology);
    const schemaOf = (topic: string) => catalog.get(effective.spec.topics.find((t) => t.name === topic)!.schema);
    for (const s of effective.spec.stages) this.decoders.set(s.name, new AvroDecoder(opts.registry, schemaOf(s.output.topic).type));
    this.dlqDecoder = new AvroDecoder<DeadLetter>(opts.registry, catalog.get('dead-letter').type);
    const input = schemaOf(this.view.inputTopic);
    this.inputType = input.type;
    this.encoder = new AvroEncoder(opts.registry, input, this.view.inputTopic);
    this.producer = idempotentProducer(opts.kafka, { name: `gateway:${this.view.inputTopic}`, logger: opts.log });
    this.batcher = new ProduceBatcher((messages) => this.producer.send({ topic: this.view.inputTopic, messages }));
    const keyField = opts.keyField ?? firstStringField(this.inputType);
    this.keyOf = fieldGetter(keyField);
    this.partitionByOf = opts.partitionBy ? fieldGetter(opts.partitionBy) : undefined;
    this.idempotency = new IdempotencyStore(opts.redis, this.prefix, opts.idempotencyTtlMs);
    this.probe = new ProgressProbe(opts.kafka, this.view, opts.groupPrefix ?? topology.spec.name);
  }

  get topology(): LoadedTopology {
    return this.opts.topology;
  }

  /** The reply partition this instance reads (after start). */
  get replyPartition(): number {
    if (!this.lease) throw new Error('gateway not started');
    return this.lease.partition;
  }

  get ready(): boolean {
    return !!this.consumer && !!this.lease?.held && !this.stopping;
  }

  get inFlight(): number {
    return this.pending.size;
  }

  async start(): Promise<void> {
    const { kafka, redis, log } = this.opts;
    this.schemaId = await this.encoder.id();
    const admin = kafka.admin();
    await admin.connect();
    let partitions: number;
    try {
      const meta = await admin.fetchTopicMetadata({ topics: [this.view.inputTopic, this.replyTopic] });
      this.inputPartitions = meta.topics.find((t) => t.name === this.view.inputTopic)!.partitions;
      partitions = meta.topics.find((t) => t.name === this.replyTopic)!.partitions.length;
    } finally {
      await admin.disconnect();
    }
    await this.producer.connect();
    this.lease = await PartitionLease.acquire(redis, this.prefix, partitions, this.instanceId, this.opts.leaseMs, log);
    const from = await partitionEnd(kafka, this.replyTopic, this.lease.partition);
    const consumer = new ReplyConsumer({
      kafka,
      topic: this.replyTopic,
      partition: this.lease.partition,
      groupId: `${this.prefix}.replies.${this.instanceId}`,
      fromOffset: from,
      onMessage: (m) => this.onReply(m),
      onFetched: (n) => this.opts.metrics.replyRecordsFetched.inc({ partition: String(this.lease!.partition) }, n),
    });
    await consumer.start();
    this.consumer = consumer;
    log.info({ instance: this.instanceId, replyTopic: this.replyTopic, replyPartition: this.lease.partition, from }, 'gateway reading its reply partition');
  }

  async stop(): Promise<void> {
    this.stopping = true;
    for (const t of this.timers) clearTimeout(t);
    await this.consumer?.stop();
    await this.lease?.release();
    await this.producer.disconnect().catch(() => undefined);
    await this.probe.close();
  }

  /** Validates and converts a JSON event (nothing is produced when it has problems). */
  validate(json: unknown): { value: unknown; problems: FieldProblem[] } {
    return jsonToAvro(this.inputType, json);
  }

  async submit(json: unknown, opts: SubmitOptions): Promise<SubmitResult> {
    const started = Date.now();
    const deadline = started + opts.timeoutMs;
    const { value, problems } = this.validate(json);
    if (problems.length > 0) return { kind: 'invalid', problems };
    const cid = randomUUID();
    const fingerprint = createHash('sha256').update(JSON.stringify(avroToJson(value))).digest('hex');
    if (opts.idempotencyKey) {
      const existing = await this.idempotency.claim(opts.idempotencyKey, { cid, owner: this.instanceId, fingerprint, replyPartition: this.replyPartition, replyFrom: this.consumer!.nextOffset });
      if (existing) {
        if (existing.fingerprint !== fingerprint) return { kind: 'conflict', message: `idempotency key ${opts.idempotencyKey} was used for a different event` };
        return this.follow(opts.idempotencyKey, existing, started, deadline, opts);
      }
    }
    const pending = this.register(cid, started, opts.idempotencyKey);
    const unsubscribe = opts.onEvent ? pending.subscribe(opts.onEvent) : undefined;
    try {
      let meta;
      try {
        meta = await this.produce(value, cid);
      } catch (err) {
        this.pending.delete(cid);
        if (opts.idempotencyKey) await this.idempotency.release(opts.idempotencyKey, cid).catch(() => undefined);
        throw err;
      }
      pending.input = meta;
      if (opts.idempotencyKey) await this.idempotency.produced(opts.idempotencyKey, meta.partition, meta.offset);
      crashPoint('gateway-produced');
      pending.push({ type: 'accepted', ms: Date.now() - started, correlationId: cid, topic: this.view.inputTopic, partition: meta.partition, offset: meta.offset });
      return { kind: 'done', events: await this.await(pending, deadline, opts), replayed: false };
    } finally {
      unsubscribe?.();
      this.retire(pending, opts.idempotencyKey);
    }
  }

  private register(cid: string, started: number, idempotencyKey?: string): Pending {
    const pending = new Pending(cid, started);
    if (idempotencyKey) {
      const key = idempotencyKey;
      pending.onTerminal = (events) => void this.idempotency.done(key, events).catch((err: Error) => this.opts.log.warn({ err: err.message }, 'storing an idempotent result failed'));
    }
    this.pending.set(cid, pending);
    return pending;
  }

  /** Forgets a finished request; one with an idempotency key keeps listening a while for a late reply. */
  private retire(pending: Pending, idempotencyKey?: string): void {
    if (!idempotencyKey || pending.terminal || this.stopping) {
      this.pending.delete(pending.cid);
      return;
    }
    const t = setTimeout(() => {
      this.timers.delete(t);
      this.pending.delete(pending.cid);
    }, this.opts.lateWindowMs);
    t.unref();
    this.timers.add(t);
  }

  private produce(value: unknown, cid: string): Promise<{ partition: number; offset: string }> {
    const key = String(this.keyOf(value) ?? '');
    // The partition is chosen here (the default partitioner's choice for the key, or for the
    // partition-by field), so the batcher can tell each record's offset.
    const partition = partitioner({ topic: this.view.inputTopic, partitionMetadata: this.inputPartitions!, message: { key: this.partitionByOf ? String(this.partitionByOf(value) ?? '') : key, value: null } });
    return this.batcher.produce({ key, value: this.encoder.encodeWithId(this.schemaId!, value), partition, headers: { [CORRELATION_HEADER]: cid, [REPLY_TOPIC_HEADER]: this.replyTopic, [REPLY_PARTITION_HEADER]: String(this.replyPartition) } });
  }

  private onReply(m: KafkaMessage, only?: Pending): void {
    const cid = m.headers?.[CORRELATION_HEADER]?.toString();
    const pending = only ? (cid === only.cid ? only : undefined) : cid ? this.pending.get(cid) : undefined;
    if (!pending) {
      if (!only) this.opts.metrics.orphanReplies.inc();
      return;
    }
    const stage = m.headers?.[REPLY_STAGE_HEADER]?.toString() ?? '';
    const kind = m.headers?.[REPLY_KIND_HEADER]?.toString();
    pending.queue = pending.queue.then(async () => {
      const e = await this.toEvent(stage, kind, m.value, pending.started);
      if (e) {
        if (pending.events.some((x) => 'stage' in x && x.type === e.type && x.stage === e.stage)) return; // a scan may see what the owner saw
        this.opts.metrics.eventLatency.observe({ event: e.type }, e.ms / 1000);
        pending.push(e);
      }
    }).catch((err: Error) => this.opts.log.warn({ err: err.message, cid: pending.cid }, 'a reply could not be decoded'));
  }

  private async toEvent(stage: string, kind: string | undefined, value: Buffer | null, started: number): Promise<GatewayEvent | null> {
    const ms = Date.now() - started;
    if (kind === 'dead-letter') {
      const dl = await this.dlqDecoder.decode(value);
      if (dl instanceof RecordRejection) return { type: 'dead-letter', ms, stage, errorKind: dl.kind, errorMessage: dl.message };
      return { type: 'dead-letter', ms, stage: dl.stage, errorKind: dl.errorKind, errorMessage: dl.errorMessage };
    }
    const role = this.view.roles.get(stage);
    const decoder = this.decoders.get(stage);
    if (!role || role === 'hop' || !decoder) return null;
    const decoded = await decoder.decode(value);
    if (decoded instanceof RecordRejection) return null;
    const json = avroToJson(decoded);
    if (role === 'features') return { type: 'features', ms, stage, value: json, featureSetVersions: (json as { featureSetVersions?: Record<string, string> }).featureSetVersions };
    return { type: role, ms, stage, value: json };
  }

  /** Waits for the outcome of a request this instance produced (or is scanning for) and closes its event list. */
  private async await(pending: Pending, deadline: number, opts: SubmitOptions): Promise<GatewayEvent[]> {
    const complete = () => {
      const t = pending.terminal;
      if (!t) return false;
      if (t.type === 'dead-letter' || !opts.wantShadows) return true;
      return this.view.shadowStages.every((s) => pending.shadows.has(s));
    };
    while (!complete() && Date.now() < deadline) await pending.next(deadline);
    await pending.queue;
    return this.close(pending, opts);
  }

  private async close(pending: Pending, opts: SubmitOptions): Promise<GatewayEvent[]> {
    const t = pending.terminal;
    const ms = () => Date.now() - pending.started;
    const out = pending.events.slice();
    const emit = (e: GatewayEvent) => {
      out.push(e);
      opts.onEvent?.(e);
    };
    if (!t) {
      const reached = await this.probe.reached(pending.input, pending.seenStages);
      emit({ type: 'timeout', ms: ms(), stage: reached.stage, detail: reached.detail });
      emit({ type: 'end', ms: ms(), outcome: 'timeout' });
    } else {
      const missing = opts.wantShadows && t.type === 'prediction' ? this.view.shadowStages.filter((s) => !pending.shadows.has(s)) : [];
      emit({ type: 'end', ms: ms(), outcome: t.type === 'prediction' ? 'prediction' : 'dead-letter', ...(missing.length ? { missing } : {}) });
    }
    return out;
  }

  /**
   * A retry of a key already claimed: the stored answer, the owner's live request (same
   * instance), or waiting for the owner; an owner gone (its lease expired) is taken over and the
   * reply partition it named is read from where it stood at claim time.
   */
  private async follow(key: string, rec: IdempotencyRecord, started: number, deadline: number, opts: SubmitOptions): Promise<SubmitResult> {
    for (;;) {
      if (rec.state === 'done' && rec.events) return this.replay(rec.events, opts);
      const local = rec.owner === this.instanceId ? this.pending.get(rec.cid) : undefined;
      if (local) {
        const unsubscribe = opts.onEvent ? local.subscribe(opts.onEvent) : undefined;
        try {
          for (const e of local.events) opts.onEvent?.(e);
          return { kind: 'done', events: await this.await(local, deadline, opts), replayed: true };
        } finally {
          unsubscribe?.();
        }
      }
      const leaseHolder = await this.opts.redis.get(PartitionLease.leaseKey(this.prefix, rec.replyPartition));
      const ownerGone = leaseHolder !== rec.owner || rec.owner === this.instanceId;
      if (ownerGone && (rec.owner === this.instanceId || (await this.idempotency.takeOver(key, rec.owner, this.instanceId)))) {
        return this.scan(key, rec, started, deadline, opts);
      }
      if (Date.now() >= deadline) {
        const input = rec.inputPartition !== undefined ? { partition: rec.inputPartition, offset: rec.inputOffset! } : undefined;
        const reached = await this.probe.reached(input, []);
        const events: GatewayEvent[] = [
          { type: 'timeout', ms: Date.now() - started, stage: reached.stage, detail: `${reached.detail} (request owned by gateway instance ${rec.owner})` },
          { type: 'end', ms: Date.now() - started, outcome: 'timeout' },
        ];
        events.forEach((e) => opts.onEvent?.(e));
        return { kind: 'done', events, replayed: true };
      }
      await new Promise((r) => setTimeout(r, 25));
      const again = await this.idempotency.get(key);
      if (!again) return this.expired(key, opts);
      rec = again;
    }
  }

  /** The key expired while this retry waited on it: nothing left to follow; the caller may retry as new. */
  private expired(key: string, opts: SubmitOptions): SubmitResult {
    const events: GatewayEvent[] = [{ type: 'timeout', ms: 0, stage: 'gateway', detail: `idempotency key ${key} expired while waiting` }, { type: 'end', ms: 0, outcome: 'timeout' }];
    events.forEach((e) => opts.onEvent?.(e));
    return { kind: 'done', events, replayed: true };
  }

  /** The stored outcome of an earlier request with the same key, closed with a fresh `end`. */
  private replay(events: GatewayEvent[], opts: SubmitOptions): SubmitResult {
    const out: GatewayEvent[] = events.filter((e) => e.type !== 'end' && e.type !== 'timeout');
    const terminal = out.find((e) => e.type === 'prediction' || e.type === 'dead-letter');
    const end: GatewayEvent = { type: 'end', ms: out[out.length - 1]?.ms ?? 0, outcome: terminal?.type === 'dead-letter' ? 'dead-letter' : 'prediction' };
    out.push(end);
    out.forEach((e) => opts.onEvent?.(e));
    return { kind: 'done', events: out, replayed: true };
  }

  /** Reads the reply partition the previous owner named, from its claim-time position, for this request's replies. */
  private async scan(key: string, rec: IdempotencyRecord, started: number, deadline: number, opts: SubmitOptions): Promise<SubmitResult> {
    const pending = new Pending(rec.cid, started);
    pending.onTerminal = (events) => void this.idempotency.done(key, events).catch(() => undefined);
    if (rec.inputPartition !== undefined) pending.input = { partition: rec.inputPartition, offset: rec.inputOffset! };
    const unsubscribe = opts.onEvent ? pending.subscribe(opts.onEvent) : undefined;
    if (pending.input) pending.push({ type: 'accepted', ms: 0, correlationId: rec.cid, topic: this.view.inputTopic, partition: pending.input.partition, offset: pending.input.offset });
    const scanner = new ReplyConsumer({
      kafka: this.opts.kafka,
      topic: this.replyTopic,
      partition: rec.replyPartition,
      groupId: `${this.prefix}.scan.${this.instanceId}.${randomUUID().slice(0, 8)}`,
      fromOffset: rec.replyFrom,
      onMessage: (m) => this.onReply(m, pending),
    });
    this.opts.log.info({ key, cid: rec.cid, previousOwner: rec.owner, partition: rec.replyPartition, from: rec.replyFrom }, 'took over an idempotent request; reading its replies');
    try {
      try {
        await scanner.start(Math.max(1000, deadline - Date.now()));
      } catch (err) {
        this.opts.log.warn({ err: (err as Error).message }, 'reading the previous owner\'s reply partition failed');
      }
      return { kind: 'done', events: await this.await(pending, deadline, opts), replayed: true };
    } finally {
      unsubscribe?.();
      await scanner.stop();
    }
  }
}

function firstStringField(type: avro.Type): string {
  const fields = (type as avro.types.RecordType).fields ?? [];
  const f = fields.find((x) => x.type.typeName === 'string');
  if (!f) throw new Error('the input schema has no string field to key messages by: pass --key-field');
  return f.name;
}
