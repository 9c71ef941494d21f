import type { Registry } from 'prom-client';
import type { PartialVector } from '../engine/records';
import type { RecordRejection } from '../kafka/dead-letter';
import type { LoadedTopology, StageSpec } from '../topology/spec';
import type { Logger } from '../util/logger';
import type { ConfigError } from '../util/errors';

/** Where an input record was read from; carried into every downstream record. */
export interface Lineage {
  topic: string;
  partition: number;
  offset: number;
}

/**
 * A decoded input record handed to a processor.
 *
 * Behind a repartition hop (a stage with `partitionBy`, see src/engine/repartition.ts) the record
 * a processor sees is the ORIGINAL one: `key`, `timestamp`, `lineage` and `headers` are those of
 * the record the producer wrote, carried through the repartition topic; only `source` tells where
 * it was actually consumed. Without a hop `source` equals `lineage`.
 */
export interface InputRecord<I> {
  value: I;
  /** Key of the original record (not the repartition key). */
  key: Buffer | null;
  /** Kafka timestamp of the original record (ms); the repartition hop keeps it. */
  timestamp: number;
  /** Where the original record was written (outputs and dead letters carry it). */
  lineage: Lineage;
  /**
   * The position this stage consumed (the repartition topic's partition and offset behind a hop).
   * State that checkpoints by consumed position (streaming windows, fencing epochs per assigned
   * partition) must use this, not `lineage`. Optional for callers outside the engine (then = lineage).
   */
  source?: Lineage;
  /**
   * Kafka headers of the source record (lineage, reply-to, tracing...). The engine copies them onto
   * every output of this record, at every stage and hop, so a processor need not.
   */
  headers?: Record<string, Buffer>;
  /**
   * Only for the steps after the first of a stage chained over several entities (ProcessorDefinition
   * `entitySteps`): the features the steps before computed for this event, in the vector's order.
   * `value` is still the original event (decoded from the partial record).
   */
  partial?: PartialValues;
}

/** Features computed so far by a stage's earlier per-entity steps (a PartialVector without its event). */
export type PartialValues = Omit<PartialVector, 'event'>;

/** An output of a processor for one input: a keyed record for the output topic. */
export interface OutputRecord<O> {
  key: string;
  value: O;
  /** Headers to add to (or override on) the ones inherited from the input record. */
  headers?: Record<string, Buffer | string>;
  /** Kafka timestamp of the output message (ms); default: the producer's clock at send. */
  timestamp?: number;
}

export type ProcessResult<O> = OutputRecord<O> | RecordRejection;

/**
 * A processor transforms a batch of decoded records into output records, one result per input,
 * in order. Per-record failures are returned as RecordRejection (dead-lettered). A thrown error
 * fails the batch: a TransientError (or an infrastructure error: connection refused, timeout) is
 * retried with backoff for as long as it lasts; any other error is retried `errors.maxAttempts`
 * times, then the records are processed one by one and those that still fail are dead-lettered.
 *
 * This is the engine's processor API and the plugin API: stages of one process that follow each
 * other are fused into one chain, where one processor's outputs are the next one's inputs in memory.
 */
export interface Processor<I = unknown, O = unknown> {
  /**
   * `scope` (given by the engine's chains; absent when a caller processes a batch on its own): work
   * the batch's outputs must not be committed before may be handed to `scope.beforeCommit` instead of
   * being awaited here, so the stages after this one run meanwhile. Without a scope, await it here.
   */
  processBatch(records: readonly InputRecord<I>[], scope?: BatchScope): Promise<ProcessResult<O>[]>;
  /** Releases resources (sessions, connections). */
  close(): Promise<void>;
  /**
   * Optional: called with the group's assignment ({topic: partitions}) each time this consumer
   * joins its group, before batches of the new assignment are processed (e.g. to take fencing epochs).
   */
  onAssignment?(assignment: Record<string, number[]>): void;
  /** Optional backpressure: while `saturated()`, the engine's lanes stop taking records (their queues fill and their partitions pause) until `whenDrained()`. */
  backpressure?: { saturated(): boolean; whenDrained(): Promise<void> };
}

/**
 * What a processor may ask of the chunk it processes (one scope per chunk and chain run).
 *
 * `beforeCommit(work)`: the chunk's outputs are not committed (nor handed to the lane at all) until
 * `work` has settled — as Kafka Streams flushes a state store's changelog before it commits: a
 * processor writes its state behind its results (streaming windows: the state commit's round trip
 * overlaps the inference stage after it) and the chain awaits every such write once its last stage
 * is done, or — when a stage throws — before it rethrows, so no write is left in flight behind a
 * retry. A rejection fails the chunk like a thrown error: the lane retries it with backoff (its
 * records are never dead-lettered for it); RerunBatchError runs it again at once without a scope.
 */
export interface BatchScope {
  beforeCommit(work: Promise<unknown>): void;
}

export interface ProcessorContext {
  topology: LoadedTopology;
  stage: StageSpec;
  logger: Logger;
  /** Redis of the pipeline's endpoints (feature sets), when known. */
  redisUrl?: string;
  /** The stage's consumer group (namespaces per-stage state), when known. */
  groupId?: string;
  /** Where processors register their own metrics (the process's /metrics registry); prom-client's global one when absent. */
  metricsRegistry?: Registry;
}

/**
 * A processor type, registered by name (like a Benthos component): it declares its config as a
 * JSON Schema, so topology files are validated — and editors helped — before anything runs.
 */
export interface ProcessorDefinition<C = unknown> {
  name: string;
  summary: string;
  /** JSON Schema (draft 2020-12 subset understood by ajv) of the stage's `config` block. */
  configSchema: Record<string, unknown>;
  /** Avro schema names (schemas/*.avsc) the input and output topics must carry; `*`: any record schema (the processor checks its config against it). */
  inputSchema: string;
  outputSchema: string;
  /** Checks that need files or other parts of the topology (e.g. the model's feature list). Path-prefixed errors. */
  validate?(config: C, ctx: ProcessorContext): ConfigError[];
  create(config: C, ctx: ProcessorContext): Promise<Processor>;
  /**
   * Never fused into a chain with the stage before it: always its own consumer group reading the
   * committed topic (shadow models: a slow or failing shadow must not touch the live path).
   */
  runsApart?: boolean;
  /**
   * Optional: the input fields (dotted paths) whose per-entity state this processor keeps and
   * therefore needs applied in order by one partition owner (feature_extraction: the entity of each
   * windowed_aggregation set). The planner then inserts a repartition hop by that field unless the
   * stage says `partitionBy` itself (or `none`). More than one distinct field is refused unless the
   * processor declares `entitySteps` (see README "Two entities on one input"). Order matters there:
   * the steps run in the order of the returned fields.
   */
  partitionKeys?(config: C, ctx: ProcessorContext): string[];
  /**
   * With several `partitionKeys`, the stage runs as one step per entity, chained by re-keying: the
   * planner inserts a repartition hop by the first entity and a step per entity, each an instance of
   * this processor with `ctx.stage.entityStep` set; every step but the last returns the features it
   * has so far (PartialValues), which the engine wraps with the original event into a partial record
   * keyed by the next entity; the next step gets them as `InputRecord.partial`; the last returns the
   * stage's real output. Without it, a stage with several keys must choose one (`partitionBy`).
   */
  entitySteps?: boolean;
  /**
   * The same input records and config always give the same outputs. A batch retried after a crash or
   * an aborted transaction is processed again; only then does the committed result equal what a
   * single run would have produced (and backfills reproduce live outputs). Required by defineProcessor.
   */
  deterministic?: boolean;
  /**
   * The processor writes somewhere outside the stage's Kafka transaction (HTTP calls, databases,
   * files). Such writes are not rolled back with an aborted transaction: a retried batch repeats them
   * (at-least-once). Exactly-once covers them only when false. Required by defineProcessor.
   */
  sideEffects?: boolean;
}

/** The guarantees a processor declares; exactly-once holds end to end only for `{ deterministic: true, sideEffects: false }`. */
export type ProcessorGuarantees = Required<Pick<ProcessorDefinition, 'deterministic' | 'sideEffects'>>;

/** True when the engine's exactly-once delivery covers everything this processor does. */
export function exactlyOnceSafe(def: Pick<ProcessorDefinition, 'deterministic' | 'sideEffects'>): boolean {
  return def.deterministic === true && def.sideEffects === false;
}
