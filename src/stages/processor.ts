import type { Registry } from 'prom-client';
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

/** A decoded input record handed to a processor. */
export interface InputRecord<I> {
  value: I;
  key: Buffer | null;
  /** Kafka timestamp of the consumed message (ms). */
  timestamp: number;
  lineage: Lineage;
  /**
   * Kafka headers of the source record (lineage, reply-to, tracing...). The engine copies them onto
   * every output of this record, at every stage and hop, so a processor need not.
   */
  headers?: Record<string, Buffer>;
}

/** An output of a processor for one input: a keyed record for the output topic. */
export interface OutputRecord<O> {
  key: string;
  value: O;
  /** Headers to add to (or override on) the ones inherited from the input record. */
  headers?: Record<string, Buffer | string>;
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
  processBatch(records: readonly InputRecord<I>[]): Promise<ProcessResult<O>[]>;
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
}
