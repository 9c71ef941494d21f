/**
 * JSON Schema of topology files. Pure spec layer: sections owned by other layers (`features`) and the
 * processors' config specs are passed in (see TopologyValidators in ./loader).
 */
import { FIELD_PATH_PATTERN } from '../util/field-path';

/** A JSON Schema object. */
export type JsonSchema = Record<string, unknown>;

const NAME = '^[A-Za-z0-9._-]+$';

/** JSON Schema of a topology file, without the per-processor `config` shapes. */
export const topologyBaseSchema = {
  $id: 'https://tributary.dev/schemas/topology.json',
  title: 'Tributary topology',
  type: 'object',
  additionalProperties: false,
  required: ['name', 'topics', 'deadLetter', 'stages'],
  properties: {
    $schema: { type: 'string' },
    name: { type: 'string', pattern: NAME, description: 'Topology name; prefixes consumer groups.' },
    description: { type: 'string' },
    kafka: {
      type: 'object',
      additionalProperties: false,
      properties: {
        clientId: { type: 'string', minLength: 1 },
        brokers: { type: 'array', items: { type: 'string', pattern: '^[^:]+:[0-9]+$' }, minItems: 1 },
      },
    },
    topics: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'partitions', 'schema'],
        properties: {
          name: { type: 'string', pattern: NAME },
          partitions: { type: 'integer', minimum: 1, maximum: 10000 },
          replicationFactor: { type: 'integer', minimum: 1 },
          schema: { type: 'string', minLength: 1, description: 'Avro schema name (file name without .avsc) in the schemas/ folder beside the topology, a `schemas` entry, or the package\'s schemas/.' },
          config: { type: 'object', additionalProperties: { type: ['string', 'number'] } },
        },
      },
    },
    schemas: {
      type: 'array',
      description: 'Folders of <name>.avsc files or single .avsc files holding the topics\' own schemas (the input events\'), relative to the topology\'s base directory; searched after a schemas/ folder there, before the package\'s schemas/.',
      items: { type: 'string', minLength: 1 },
      uniqueItems: true,
    },
    plugins: {
      type: 'array',
      description: 'Plugin modules (.js/.ts) registering processors and feature functions, paths relative to this file.',
      items: { type: 'string', minLength: 1 },
      uniqueItems: true,
    },
    deadLetter: {
      type: 'object',
      additionalProperties: false,
      required: ['topic'],
      properties: { topic: { type: 'string', pattern: NAME } },
    },
    stages: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'processor', 'input', 'output', 'config'],
        properties: {
          name: { type: 'string', pattern: NAME },
          processor: { type: 'string' },
          input: {
            type: 'object',
            additionalProperties: false,
            required: ['topic'],
            properties: { topic: { type: 'string' }, fromBeginning: { type: 'boolean' } },
          },
          output: {
            type: 'object',
            additionalProperties: false,
            required: ['topic'],
            properties: { topic: { type: 'string' } },
          },
          consumer: {
            type: 'object',
            additionalProperties: false,
            properties: {
              maxBytesPerPartition: { type: 'integer', minimum: 1024 },
              maxBytes: { type: 'integer', minimum: 1024 },
              maxWaitTimeMs: { type: 'integer', minimum: 0 },
              minBytes: { type: 'integer', minimum: 1 },
              sessionTimeoutMs: { type: 'integer', minimum: 1000 },
              heartbeatIntervalMs: { type: 'integer', minimum: 100 },
              partitionsConsumedConcurrently: { type: 'integer', minimum: 1 },
            },
          },
          delivery: { enum: ['exactly-once', 'at-least-once'], description: 'exactly-once (default) uses Kafka transactions; at-least-once may duplicate after a crash.' },
          transactions: {
            enum: ['per-partition', 'shared'],
            description: "Exactly-once only. shared (default; exactly-once v2, KIP-447): one transaction per commit interval holds the outputs and offsets of every shared chain of the process (the stage's repartition hop included; a shadow stage has its own), zombies fenced by the consumer group generation. per-partition: one transactional producer per input partition, zombies fenced by the transactional id (more transactions, higher latency). A fused chain uses its first stage's setting.",
          },
          limits: {
            type: 'object',
            additionalProperties: false,
            properties: {
              maxMessageBytes: { type: 'integer', minimum: 64 },
              maxBatchBytes: { type: 'integer', minimum: 1024 },
            },
          },
          commit: {
            type: 'object',
            additionalProperties: false,
            description: 'When each input partition commits (one transaction under exactly-once; under at-least-once only the input offset, outputs being sent as computed): as soon as the previous commit ended and intervalMs passed since it started, or once maxRecords wait. Defaults: 10 ms / 2000 (exactly-once), 100 ms / 20000 (at-least-once). A fused chain uses its first stage\'s policy.',
            properties: {
              intervalMs: { type: 'integer', minimum: 0, maximum: 60000 },
              maxRecords: { type: 'integer', minimum: 1, maximum: 100000 },
              sendAsProcessed: {
                type: 'boolean',
                description: "Exactly-once with shared transactions: send outputs into the open transaction as they are computed, so a commit only adds the offsets and ends it (Kafka Streams' way). Default false: outputs are sent at commit time, in fewer produce requests, which measured faster with the broker on the same 2 cores (BENCHMARKS item 14).",
              },
              readerWaitMs: {
                type: 'integer',
                minimum: 0,
                maximum: 1000,
                description: 'Exactly-once with shared transactions: after a transaction wrote records that chains of the same process read (a repartition hop\'s topic), the next transaction waits up to this many ms for them to be processed, so their outputs ride it instead of the one after (one commit less on the path through the hop). Default 20; 0: never wait (BENCHMARKS item 17).',
              },
            },
          },
          errors: {
            type: 'object',
            additionalProperties: false,
            properties: {
              maxAttempts: { type: 'integer', minimum: 1, maximum: 100 },
              backoffMs: { type: 'integer', minimum: 0 },
            },
          },
          partitionBy: { type: 'string', pattern: `^(none|${FIELD_PATH_PATTERN.slice(1, -1)})$`, description: "Re-key the input by this (dotted) field of the decoded event through an internal repartition topic; 'none': the input is already keyed by the entity. Default: implied by the processor (windowed_aggregation sets' entity; several entities: chained, one internal step per entity)." },
          repartition: {
            type: 'object',
            additionalProperties: false,
            description: 'The internal repartition topic <topology>.<stage>-repartition. Its partition count is fixed at creation (see README: changing it).',
            properties: {
              partitions: { type: 'integer', minimum: 1, maximum: 10000 },
              purgeIntervalMs: { type: 'integer', minimum: 1000 },
              delivery: { enum: ['exactly-once', 'deduplicated'], description: "How the hop writes the topic. exactly-once (default): in the stage's transactions. deduplicated: with an idempotent producer as records are processed, input offsets committed apart; the stage skips records a restarted hop wrote twice by their lineage (the skip state is committed with its offsets). One transaction fewer between an event and its prediction. Not for stages chained over several entities." },
            },
          },
          config: { type: 'object' },
        },
      },
    },
  },
} as const;

/** The topology schema with the given top-level sections (e.g. `{ features: ... }`) added. */
export function topologySchema(sections: Readonly<Record<string, JsonSchema>> = {}): JsonSchema {
  return { ...topologyBaseSchema, properties: { ...topologyBaseSchema.properties, ...sections } };
}

/** What the editor schema needs of each processor type. */
export interface ProcessorSchemaInfo {
  name: string;
  summary?: string;
  configSchema: JsonSchema;
}

/**
 * The full schema for editors: the base schema and sections plus, per processor, an if/then that
 * applies that processor's config schema. Written to topologies/topology.schema.json.
 */
export function editorSchema(processors: readonly ProcessorSchemaInfo[], sections: Readonly<Record<string, JsonSchema>> = {}): JsonSchema {
  const stageItems = topologyBaseSchema.properties.stages.items;
  const allOf = processors.map((def) => ({
    if: { properties: { processor: { const: def.name } } },
    then: { properties: { config: { description: def.summary, ...def.configSchema } } },
  }));
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    ...topologyBaseSchema,
    properties: {
      ...topologyBaseSchema.properties,
      ...sections,
      stages: {
        ...topologyBaseSchema.properties.stages,
        // Known names complete in editors; other snake_case names are a topology's plugin processors.
        items: { ...stageItems, properties: { ...stageItems.properties, processor: { anyOf: [{ enum: processors.map((p) => p.name) }, { type: 'string', pattern: '^[a-z][a-z0-9_]*$', description: 'a processor registered by one of the topology\'s plugins' }] } }, allOf },
      },
    },
  };
}
