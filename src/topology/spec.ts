/**
 * The declarative description of a topology, as written in topologies/*.yaml.
 * This is pure description (like Kafka Streams' Topology): the runtime in src/stages executes it.
 * The spec layer imports no other layer (lint:layers): sections owned elsewhere (`features`) are
 * added to TopologySections by their owners, and their validators are passed to the loader.
 */

export interface TopicSpec {
  /** Kafka topic name. */
  name: string;
  partitions: number;
  replicationFactor?: number;
  /**
   * Avro schema name: the file stem of `<name>.avsc` in the topology's schemas/ folder, one of its
   * `schemas` entries, or the package's schemas/ (e.g. `prediction`).
   */
  schema: string;
  /** Extra topic configs passed to CreateTopics, e.g. `max.message.bytes`. */
  config?: Record<string, string>;
}

export interface StageInputSpec {
  topic: string;
  /** Where a new consumer group starts. */
  fromBeginning?: boolean;
}

export interface StageOutputSpec {
  topic: string;
}

/** Consumer tuning for a stage; kafkajs defaults apply where absent. */
export interface ConsumerTuning {
  /** Upper bound of bytes fetched per partition per request (kafkajs maxBytesPerPartition). */
  maxBytesPerPartition?: number;
  /** Upper bound of bytes per fetch response (kafkajs maxBytes). */
  maxBytes?: number;
  /** How long the broker may wait to fill a fetch (kafkajs maxWaitTimeInMs; engine default 5). */
  maxWaitTimeMs?: number;
  /** Bytes a fetch waits for, up to maxWaitTimeMs (kafkajs minBytes; engine default 32 KiB; 1: answer with whatever is there). */
  minBytes?: number;
  sessionTimeoutMs?: number;
  heartbeatIntervalMs?: number;
  /** Partitions processed concurrently by one stage instance. */
  partitionsConsumedConcurrently?: number;
}

/** How a repartition hop writes its topic (StageSpec.repartition.delivery). */
export type RepartitionDelivery = 'exactly-once' | 'deduplicated';

export interface StageSpec {
  /** Unique within the topology; also names the consumer group. */
  name: string;
  /** Registered processor name, e.g. `feature_extraction`, `onnx_inference`. */
  processor: string;
  input: StageInputSpec;
  output: StageOutputSpec;
  consumer?: ConsumerTuning;
  /** `exactly-once` (default): Kafka transactions (see `transactions`); `at-least-once`: opt-in, may duplicate after a crash. */
  delivery?: 'exactly-once' | 'at-least-once';
  /**
   * Exactly-once only. `shared` (default): exactly-once v2 (KIP-447), one transaction per commit
   * interval for every shared chain of the process (the stage's repartition hop included; a stage
   * that runs apart, a shadow, has a sink of its own), zombies fenced by the group generation
   * (src/engine/shared-transactions.ts). `per-partition`: one transactional producer per input
   * partition (src/engine/commit-sink.ts PartitionTransactions). A fused chain uses its first
   * stage's setting; the hop in front of a stage uses the stage's.
   */
  transactions?: 'per-partition' | 'shared';
  /**
   * Input limits. A record larger than `maxMessageBytes` is dead-lettered (TOO_LARGE) without being
   * decoded; `maxBatchBytes` bounds what one fetch may bring into memory (kafkajs maxBytes).
   */
  limits?: { maxMessageBytes?: number; maxBatchBytes?: number };
  /**
   * When each input partition commits (one transaction under exactly-once; under at-least-once only
   * the input offset, the outputs being sent as computed): as soon as the previous commit ended and
   * `intervalMs` passed since it started, or once `maxRecords` wait. Defaults in
   * src/engine/chain-runner.ts (DEFAULT_COMMIT). A fused chain uses its first stage's policy.
   */
  commit?: {
    intervalMs?: number;
    maxRecords?: number;
    /**
     * Exactly-once with shared transactions: send outputs into the open transaction as they are
     * computed (Kafka Streams' way), so a commit only adds the offsets and ends it; default false:
     * a transaction's outputs are sent at commit time (fewer produce requests; BENCHMARKS item 14).
     */
    sendAsProcessed?: boolean;
    /**
     * Exactly-once with shared transactions: after a transaction wrote records that chains of the
     * same process read (a repartition hop's topic), how long the next one may wait for them to be
     * processed (default READER_WAIT_MS, 20; 0: never).
     */
    readerWaitMs?: number;
  };
  /** Transient processing failures are retried this many times (with exponential backoff) before records are isolated and dead-lettered. */
  errors?: { maxAttempts?: number; backoffMs?: number };
  /**
   * Repartitioning by entity (src/engine/repartition.ts): a dotted field path into the decoded
   * input event (e.g. `cardId`). The engine then re-keys every input record by that field into an
   * internal topic `<topology>.<stage>-repartition` and the stage reads that topic, so all of one
   * entity's records are applied in order by one partition owner. Absent: implied by the
   * processor (feature_extraction with windowed_aggregation sets: the sets' entity; sets on several
   * entities: chained, one internal step per entity, see `entityStep`). `none`: the
   * producer already keys the input by the entity (no extra hop; records whose key differs from the
   * entity are counted in tributary_partition_key_mismatch_total and reported).
   */
  partitionBy?: string;
  /**
   * The repartition topic: partitions (default the input topic's; fixed once created), purge
   * interval, and how the hop writes it: `exactly-once` (default: in the stage's transactions) or
   * `deduplicated` (an idempotent producer as records are processed; the stage skips what a
   * restarted hop wrote twice, by lineage — one transaction fewer on the latency path; README
   * "Repartitioning by entity").
   */
  repartition?: { partitions?: number; purgeIntervalMs?: number; delivery?: RepartitionDelivery };
  /** Processor-specific configuration, validated against the processor's declared spec. */
  config: Record<string, unknown>;
  /**
   * Set by the engine's planner (src/engine/repartition.ts), never in a topology file: this stage is
   * an internal step inserted for the user's stage of this name (a repartition hop, or a per-entity
   * step of a stage chained over several entities). `--stage <name>` runs its steps too.
   */
  internalOf?: string;
  /**
   * Set by the planner on every step of a stage chained over several entities (the user's stage
   * itself being the last one): which entity this step applies and where it stands.
   */
  entityStep?: EntityStepSpec;
}

/**
 * One step of a stage whose per-entity state is kept for several entities (README "Two entities on
 * one input"): the steps run in `entities` order, each reading its input keyed by its entity; every
 * step but the last writes a partial record (schemas/partial-vector.avsc) keyed by the next entity.
 */
export interface EntityStepSpec {
  /** The field this step's input is keyed by (its windowed sets' entity). */
  entity: string;
  /** Every entity of the stage, in the vector's order; this step is `entities[index]`. */
  entities: string[];
  index: number;
  /** The user's stage's input topic: where the events come from (every step after the first reads partial records). */
  eventTopic: string;
}

export interface KafkaClientSpec {
  clientId?: string;
  /** Overrides the endpoints from env/stack state when given. */
  brokers?: string[];
}

/**
 * Top-level sections declared by other layers through declaration merging (src/features/spec.ts
 * adds `features`), so this layer need not import them.
 */
export interface TopologySections {}

export interface TopologySpec extends TopologySections {
  name: string;
  description?: string;
  /**
   * Plugin modules (.js, .ts, .mjs, .cjs, .mts, .cts) registering processors and feature functions by
   * name, paths relative to the topology file. See src/stages/plugin-loader.ts and README "Plugins".
   */
  plugins?: string[];
  /**
   * Where the topics' own schemas (the input events') are, besides a schemas/ folder in the base
   * directory: folders of `<name>.avsc` files or single `.avsc` files, relative to the base directory
   * (`baseDir`). E.g. `[examples/fraud/schemas]`. The package's schemas/ is always searched last.
   */
  schemas?: string[];
  kafka?: KafkaClientSpec;
  topics: TopicSpec[];
  deadLetter: { topic: string };
  stages: StageSpec[];
}

/** What a topology's plugin declared about one processor it registers (for `validate` and the delivery notes). */
export interface PluginProcessorInfo {
  name: string;
  /** Same inputs and config give the same outputs (a replay reproduces them). */
  deterministic: boolean;
  /** Writes to something outside the stage's Kafka transaction (HTTP calls, databases, files). */
  sideEffects: boolean;
}

/** A plugin module a topology loaded: its resolved file and what it registered. */
export interface LoadedPlugin {
  /** As written in the topology (`plugins[i]`). */
  ref: string;
  /** Absolute path of the module. */
  file: string;
  processors: PluginProcessorInfo[];
  /** Feature functions it registered (callable from declarative feature definitions). */
  functions?: PluginFunctionInfo[];
}

/** What a topology's plugin declared about one feature function. */
export interface PluginFunctionInfo {
  name: string;
  deterministic: boolean;
  sideEffects: boolean;
  /** The Python twin (`/abs/file.py:function`), absent when the function has none (serving only). */
  python?: string;
}

/** A loaded topology: the spec plus where it came from (relative paths resolve against `baseDir`). */
export interface LoadedTopology {
  spec: TopologySpec;
  file: string;
  /** Directory against which `schemas/` and model repository paths resolve (see topologyBaseDir). */
  baseDir: string;
  /** Plugin modules loaded for this topology, in `plugins` order. */
  plugins?: LoadedPlugin[];
}
