/**
 * Repartitioning by entity.
 *
 * A stage whose state is per entity (windowed aggregations per card) is only correct when all of
 * one entity's records are applied in order by one partition owner. When the producer keys the
 * input by something else (a transaction id), the planner puts an internal step in front of the
 * stage: it re-keys every input record by the entity field and writes it to the internal topic
 * `<topology>.<stage>-repartition` (exactly-once: it is an ordinary chain whose output is that
 * topic, committed in one transaction with the consumed offset); the stage reads that topic
 * instead of its input. A repartition edge is never fused.
 *
 * The repartitioned record is the original one (value bytes unchanged) with:
 *  - key: the entity; Kafka timestamp: the original record's;
 *  - the original headers, plus LINEAGE_HEADER (original topic/partition/offset) and KEY_HEADER
 *    (original key, absent for a null key). The chain that consumes it (chain.ts) restores the
 *    original key and lineage for processors, outputs and dead letters, and strips both headers,
 *    and hands the consumed position to processors as `InputRecord.source`.
 * Consumed repartition records are purged (DeleteRecords up to the consuming group's committed
 * offset) every `repartition.purgeIntervalMs`.
 *
 * A stage whose state is kept for several entities (card and merchant windows in one vector) is
 * chained when its processor allows it (ProcessorDefinition.entitySteps): the hop re-keys by the
 * first entity, a step per entity applies that entity's state and writes a partial record (the
 * original event's bytes plus the features so far, schemas/partial-vector.avsc) keyed by the next
 * entity into `<topology>.<stage>-<entity>-repartition`, with the same lineage/key headers and
 * timestamp; the last step is the stage itself and emits the finished output (planStage). Each
 * step is an ordinary exactly-once chain whose state checkpoints by the position it consumes. The
 * hop and the steps in front of a later step keep their topic's partitions in processing order
 * across entities, not only per entity (ChainRunnerOptions.orderAcrossEntities): the later entity's
 * records meet there across the earlier entity's keys.
 */
import type { Kafka } from 'kafkajs';
import { Counter, type Registry } from 'prom-client';
import { whileNotServed } from '../kafka/admin';
import type { InputRecord, Lineage, Processor, ProcessorDefinition } from '../stages/processor';
import type { LoadedTopology, RepartitionDelivery, StageSpec, TopicSpec } from '../topology/spec';
import { ConfigError, TributaryError } from '../util/errors';
import { entityKey, parseFieldPath } from '../util/field-path';
import { PARTIAL_VECTOR_SCHEMA } from './partial-vector';
import type { Logger } from '../util/logger';

/** Header of a repartitioned record: the original record's lineage as JSON `{topic, partition, offset}`. */
export const LINEAGE_HEADER = 'tributary-lineage';
/** Header of a repartitioned record: the original record's key bytes (absent: the key was null). */
export const KEY_HEADER = 'tributary-key';
/** Name of the internal repartition processor (not in the user-visible registry). */
export const REPARTITION_PROCESSOR = 'repartition';
/** Default interval between purges of consumed repartition records. */
export const DEFAULT_PURGE_INTERVAL_MS = 30000;

export class RepartitionTopicError extends TributaryError {}

export function repartitionTopicName(topology: string, stage: string): string {
  return `${topology}.${stage}-repartition`;
}

export function repartitionStepName(stage: string): string {
  return `${stage}-repartition`;
}

/**
 * The internal topic keyed by a later entity of a stage chained over several entities, written by
 * the step before it (partial records): `<topology>.<stage>-<entity>-repartition`.
 */
export function entityTopicName(topology: string, stage: string, entity: string): string {
  return repartitionTopicName(topology, `${stage}-${entity}`);
}

/** The per-entity step of a chained stage for `entity` (every entity but the last; the last step is the stage itself). */
export function entityStepName(stage: string, entity: string): string {
  return `${stage}-${entity}`;
}

/**
 * How a stage's input is partitioned: through a repartition hop by `field`; chained over several
 * entities (a hop by the first, then one step per entity, each writing partial records keyed by the
 * next: README "Two entities on one input"); or as produced (checked against `field` when known).
 */
export type PartitionDecision = { kind: 'repartition'; field: string } | { kind: 'chain'; fields: string[] } | { kind: 'as-produced'; checkField?: string };

/**
 * The decision for one stage: `partitionBy: <field>` repartitions; `partitionBy: none` trusts the
 * producer (records whose key is not the implied entity are counted); absent, the processor's
 * `partitionKeys` (its per-entity state) imply the field, or — several of them, for a processor
 * that can run as one step per entity (`chainable`: ProcessorDefinition.entitySteps) — a chain of
 * steps in their order. Throws ConfigError (path `partitionBy`) when the processor keeps state for
 * several entities, cannot be chained and the stage does not choose.
 */
export function partitionDecision(stage: StageSpec, implied: string[], chainable = false): PartitionDecision {
  if (stage.partitionBy === 'none') return { kind: 'as-produced', checkField: implied.length === 1 ? implied[0] : undefined };
  if (stage.partitionBy) return { kind: 'repartition', field: stage.partitionBy };
  if (implied.length === 0) return { kind: 'as-produced' };
  if (implied.length > 1) {
    if (chainable) return { kind: 'chain', fields: [...implied] };
    throw new ConfigError('partitionBy', `the stage keeps per-entity state for several entities (${implied.join(', ')}), which one repartition cannot order together and its processor cannot run as one step per entity: split the state over one stage per entity, or set partitionBy to the one whose order matters (or 'none')`);
  }
  return { kind: 'repartition', field: implied[0] };
}

/** One repartition hop of the effective topology: a step writing an internal topic keyed by an entity, and the stage reading it. */
export interface RepartitionEdge {
  /** The user's stage the hop belongs to. */
  of: string;
  /** The stage that reads the repartitioned records (the user's stage, or its next per-entity step). */
  stage: string;
  /** The internal step writing the topic (processor `repartition`, or a per-entity step writing partial records). */
  step: StageSpec;
  topic: TopicSpec;
  field: string;
  purgeIntervalMs: number;
  /** How the step writes the topic (`deduplicated`: EagerSink, and the stage reads it through LineageDedup). */
  delivery: RepartitionDelivery;
}

export interface EffectiveTopology {
  /** The topology as it runs: repartition topics declared, steps inserted, stages reading their repartition topic. */
  topology: LoadedTopology;
  edges: RepartitionEdge[];
  /** Stages that trust the producer's keying (`partitionBy: none`) and the field their keys are checked against. */
  keyChecks: Map<string, string>;
}

/** What the planner puts in place of one repartitioned stage, in topology order. */
export interface StagePlan {
  stages: StageSpec[];
  topics: TopicSpec[];
  edges: RepartitionEdge[];
}

/**
 * The steps and internal topics of one stage decided `repartition` or `chain` (pure). A chain over
 * entities e1..en becomes: the hop `<stage>-repartition` (by e1, into `<topology>.<stage>-repartition`,
 * the same as a stage with the one entity e1), then the steps `<stage>-e1` ... `<stage>-e(n-1)` and
 * the stage itself, step k reading the topic keyed by ek and writing partial records keyed by
 * e(k+1) into `<topology>.<stage>-e(k+1)-repartition`; the stage itself writes its output.
 */
export function planStage(topologyName: string, stage: StageSpec, input: TopicSpec, decision: Extract<PartitionDecision, { kind: 'repartition' | 'chain' }>): StagePlan {
  const fields = decision.kind === 'chain' ? decision.fields : [decision.field];
  const partitions = stage.repartition?.partitions ?? input.partitions;
  const purgeIntervalMs = stage.repartition?.purgeIntervalMs ?? DEFAULT_PURGE_INTERVAL_MS;
  const delivery = stage.repartition?.delivery ?? 'exactly-once';
  if (delivery === 'deduplicated' && decision.kind === 'chain') throw new ConfigError('repartition.delivery', `deduplicated is for a stage repartitioned by one entity; this one is chained over ${fields.join(', ')} (its per-entity steps keep their order across entities in transactions)`);
  const internalTopic = (name: string, schema: string): TopicSpec => ({
    name,
    partitions,
    replicationFactor: input.replicationFactor,
    schema,
    // Kept until consumed (then purged), as Kafka Streams does: a stage that lags for longer
    // than a time retention would otherwise lose records.
    config: { ...(input.config?.['max.message.bytes'] ? { 'max.message.bytes': String(input.config['max.message.bytes']) } : {}), 'retention.ms': '-1', 'cleanup.policy': 'delete' },
  });
  const common = { consumer: stage.consumer, delivery: stage.delivery, transactions: stage.transactions, limits: stage.limits, commit: stage.commit, errors: stage.errors };
  const first = internalTopic(repartitionTopicName(topologyName, stage.name), input.schema);
  const hop: StageSpec = { name: repartitionStepName(stage.name), processor: REPARTITION_PROCESSOR, input: stage.input, output: { topic: first.name }, ...common, config: { field: fields[0] }, internalOf: stage.name };
  const plan: StagePlan = { stages: [hop], topics: [first], edges: [] };
  let writer = hop;
  let reading = first;
  fields.forEach((entity, index) => {
    const last = index === fields.length - 1;
    const entityStep = decision.kind === 'chain' ? { entityStep: { entity, entities: [...fields], index, eventTopic: stage.input.topic } } : {};
    const next = last ? undefined : internalTopic(entityTopicName(topologyName, stage.name, fields[index + 1]), PARTIAL_VECTOR_SCHEMA);
    const step: StageSpec = last
      ? { ...stage, input: { topic: reading.name, fromBeginning: true }, ...entityStep }
      : { name: entityStepName(stage.name, entity), processor: stage.processor, input: { topic: reading.name, fromBeginning: true }, output: { topic: next!.name }, ...common, config: stage.config, internalOf: stage.name, ...entityStep };
    plan.edges.push({ of: stage.name, stage: step.name, step: writer, topic: reading, field: entity, purgeIntervalMs, delivery: index === 0 ? delivery : 'exactly-once' });
    plan.stages.push(step);
    if (next) plan.topics.push(next);
    writer = step;
    if (next) reading = next;
  });
  return plan;
}

/**
 * Inserts the repartition steps and topics (pure: the loaded topology is not changed). `chainable`:
 * whether a stage's processor can run as one step per entity (ProcessorDefinition.entitySteps).
 */
export function planRepartitions(loaded: LoadedTopology, impliedKeys: (stage: StageSpec) => string[], chainable: (stage: StageSpec) => boolean = () => false): EffectiveTopology {
  const spec = loaded.spec;
  const topics = [...spec.topics];
  const stages: StageSpec[] = [];
  const edges: RepartitionEdge[] = [];
  const keyChecks = new Map<string, string>();
  for (const stage of spec.stages) {
    const decision = partitionDecision(stage, impliedKeys(stage), chainable(stage));
    if (decision.kind === 'as-produced') {
      if (decision.checkField) keyChecks.set(stage.name, decision.checkField);
      stages.push(stage);
      continue;
    }
    const input = spec.topics.find((t) => t.name === stage.input.topic);
    if (!input) throw new TributaryError(`stage ${stage.name}: input topic ${stage.input.topic} is not declared`);
    const plan = planStage(spec.name, stage, input, decision);
    topics.push(...plan.topics);
    stages.push(...plan.stages);
    edges.push(...plan.edges);
  }
  return { topology: { ...loaded, spec: { ...spec, topics, stages } }, edges, keyChecks };
}

/**
 * The partition count of a repartition topic is fixed at creation: growing it would send an
 * entity's new records to another partition while its older ones may still wait in the old one.
 * A mismatch fails the start with how to change it.
 */
export async function checkRepartitionTopics(kafka: Kafka, edges: RepartitionEdge[]): Promise<void> {
  if (edges.length === 0) return;
  const admin = kafka.admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const present = edges.filter((e) => existing.has(e.topic.name));
    if (present.length === 0) return;
    const names = present.map((e) => e.topic.name);
    const meta = await whileNotServed(`metadata of ${names.join(', ')}`, () => admin.fetchTopicMetadata({ topics: names }));
    for (const e of present) {
      const have = meta.topics.find((t) => t.name === e.topic.name)?.partitions.length;
      if (have !== undefined && have !== e.topic.partitions) {
        throw new RepartitionTopicError(`repartition topic ${e.topic.name} has ${have} partitions but stage ${e.of} asks for ${e.topic.partitions}; the count is fixed at creation (see README "Repartitioning by entity" for how to change it)`);
      }
    }
  } finally {
    await admin.disconnect();
  }
}

/** LINEAGE_HEADER's value for a record of this lineage. */
export function lineageHeader(l: Lineage): string {
  return JSON.stringify({ topic: l.topic, partition: l.partition, offset: l.offset });
}

/** The headers that carry a record's origin through a hop: LINEAGE_HEADER, and KEY_HEADER unless the key was null. */
export function originHeaders(lineage: Lineage, key: Buffer | string | null | undefined): Record<string, Buffer | string> {
  return key ? { [LINEAGE_HEADER]: lineageHeader(lineage), [KEY_HEADER]: key } : { [LINEAGE_HEADER]: lineageHeader(lineage) };
}

/** Parses LINEAGE_HEADER; undefined when absent or malformed (then the consumed position is the lineage). */
export function parseLineageHeader(v: Buffer | string | undefined): Lineage | undefined {
  if (v === undefined) return undefined;
  try {
    const o = JSON.parse(v.toString()) as Partial<Lineage>;
    if (typeof o.topic === 'string' && Number.isInteger(o.partition) && Number.isInteger(o.offset)) return { topic: o.topic, partition: o.partition!, offset: o.offset! };
  } catch {
    /* not ours */
  }
  return undefined;
}

/**
 * The internal repartition step: one output per input, keyed by the entity, with the original
 * timestamp, lineage and key in headers. The chain forwards the consumed value bytes unchanged
 * (ChainStage.passthroughValue), so what this returns as `value` is only used for the key.
 * A record without the entity keeps its original key (it touches no per-entity state).
 */
export const repartitionProcessor: ProcessorDefinition<{ field: string }> = {
  name: REPARTITION_PROCESSOR,
  summary: 'Internal: re-keys input records by an entity field into the stage\'s repartition topic.',
  inputSchema: '*',
  outputSchema: '*',
  configSchema: { type: 'object', required: ['field'], properties: { field: { type: 'string' } } },
  async create(config): Promise<Processor> {
    const path = parseFieldPath(config.field);
    return {
      async processBatch(records: readonly InputRecord<unknown>[]) {
        return records.map((r) => {
          return { key: entityKey(r.value, path) ?? r.key?.toString() ?? '', value: r.value, headers: originHeaders(r.lineage, r.key), timestamp: r.timestamp };
        });
      },
      async close() {},
    };
  },
};

/** Purges consumed records of one repartition topic (DeleteRecords up to the reading group's committed offsets). */
export class RepartitionPurger {
  private timer?: NodeJS.Timeout;
  private running?: Promise<number>;
  private stopped = false;

  constructor(
    private readonly opts: { kafka: Kafka; groupId: string; topic: string; intervalMs: number; log: Logger; purged: Counter<'topic'> },
  ) {}

  start(): void {
    const tick = () => {
      this.timer = setTimeout(() => {
        this.running = this.purgeOnce().catch((err: Error) => {
          this.opts.log.debug({ topic: this.opts.topic, err: err.message }, 'repartition purge failed; next interval retries');
          return 0;
        });
        void this.running.finally(() => !this.stopped && tick());
      }, this.opts.intervalMs);
    };
    tick();
  }

  /** One purge; returns the number of records deleted. */
  async purgeOnce(): Promise<number> {
    const admin = this.opts.kafka.admin();
    await admin.connect();
    try {
      const [committed, offsets] = await Promise.all([admin.fetchOffsets({ groupId: this.opts.groupId, topics: [this.opts.topic] }), admin.fetchTopicOffsets(this.opts.topic)]);
      const low = new Map(offsets.map((o) => [o.partition, BigInt(o.low)]));
      const partitions = (committed[0]?.partitions ?? []).filter((p) => Number(p.offset) >= 0 && BigInt(p.offset) > (low.get(p.partition) ?? 0n));
      if (partitions.length === 0) return 0;
      await admin.deleteTopicRecords({ topic: this.opts.topic, partitions: partitions.map((p) => ({ partition: p.partition, offset: p.offset })) });
      const deleted = partitions.reduce((n, p) => n + Number(BigInt(p.offset) - (low.get(p.partition) ?? 0n)), 0);
      this.opts.purged.inc({ topic: this.opts.topic }, deleted);
      this.opts.log.debug({ topic: this.opts.topic, deleted }, 'purged consumed repartition records');
      return deleted;
    } finally {
      await admin.disconnect();
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }
}

/** Counter of purged repartition records (one per registry). */
export function purgedCounter(registry: Registry): Counter<'topic'> {
  const name = 'tributary_repartition_purged_records_total';
  return (registry.getSingleMetric(name) as Counter<'topic'> | undefined) ?? new Counter({ name, help: 'Consumed repartition-topic records deleted (DeleteRecords up to the committed offset)', labelNames: ['topic'], registers: [registry] });
}

/** Counter of records a deduplicated hop wrote twice that its reading stage skipped (one per registry). */
export function duplicatesSkipped(registry: Registry): Counter<'topic'> {
  const name = 'tributary_repartition_duplicates_skipped_total';
  return (registry.getSingleMetric(name) as Counter<'topic'> | undefined) ?? new Counter({ name, help: 'Records of a deduplicated repartition topic skipped as copies a restarted hop wrote again (by lineage)', labelNames: ['topic'], registers: [registry] });
}

/**
 * Counts (metric) and reports (a WARN line at the first mismatch, then at most once a minute) the
 * records of a `partitionBy: none` stage whose Kafka key is not the entity its state is kept by:
 * their order relative to the entity's other records is not guaranteed.
 */
export class KeyMismatchReporter {
  private readonly counter: Counter<'stage' | 'field'>;
  private lastLog = 0;
  private sinceLog = 0;
  total = 0;

  constructor(
    registry: Registry,
    private readonly log: Logger,
  ) {
    const name = 'tributary_partition_key_mismatch_total';
    this.counter = (registry.getSingleMetric(name) as Counter<'stage' | 'field'> | undefined) ?? new Counter({ name, help: "Records of a 'partitionBy: none' stage whose key is not their entity (their per-entity order is not guaranteed)", labelNames: ['stage', 'field'], registers: [registry] });
  }

  report(stage: string, field: string, count: number, example: { key: string | null; entity: string | null }): void {
    this.counter.inc({ stage, field }, count);
    this.total += count;
    this.sinceLog += count;
    const now = Date.now();
    if (now - this.lastLog >= 60000) {
      this.log.warn({ stage, field, records: this.sinceLog, example }, `records keyed otherwise than by ${field} in a stage declared 'partitionBy: none': per-entity order is not guaranteed for them (repartition instead, or fix the producer's key)`);
      this.lastLog = now;
      this.sinceLog = 0;
    }
  }
}
