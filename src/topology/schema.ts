import type { ProcessorRegistry } from '../stages/registry';
import { featuresSectionSchema } from '../features/spec';
import { FIELD_PATH_PATTERN } from '../util/field-path';

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
          schema: { type: 'string', minLength: 1, description: 'Avro schema in schemas/ (file name without .avsc).' },
          config: { type: 'object', additionalProperties: { type: ['string', 'number'] } },
        },
      },
    },
    features: { description: 'Feature sets: batch (Redis) and streaming (windowed aggregations).', ...featuresSectionSchema },
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
              sessionTimeoutMs: { type: 'integer', minimum: 1000 },
              heartbeatIntervalMs: { type: 'integer', minimum: 100 },
              partitionsConsumedConcurrently: { type: 'integer', minimum: 1 },
            },
          },
          delivery: { enum: ['exactly-once', 'at-least-once'], description: 'exactly-once (default) uses Kafka transactions; at-least-once may duplicate after a crash.' },
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
            description: 'When each input partition commits (one transaction under exactly-once): as soon as the previous commit ended and intervalMs passed since it started, or once maxRecords wait. A fused chain uses its first stage\'s policy.',
            properties: {
              intervalMs: { type: 'integer', minimum: 0, maximum: 60000 },
              maxRecords: { type: 'integer', minimum: 1, maximum: 100000 },
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
          partitionBy: { type: 'string', pattern: `^(none|${FIELD_PATH_PATTERN.slice(1, -1)})$`, description: "Re-key the input by this (dotted) field of the decoded event through an internal repartition topic; 'none': the input is already keyed by the entity. Default: implied by the processor (windowed_aggregation sets' entity)." },
          repartition: {
            type: 'object',
            additionalProperties: false,
            description: 'The internal repartition topic <topology>.<stage>-repartition. Its partition count is fixed at creation (see README: changing it).',
            properties: {
              partitions: { type: 'integer', minimum: 1, maximum: 10000 },
              purgeIntervalMs: { type: 'integer', minimum: 1000 },
            },
          },
          config: { type: 'object' },
        },
      },
    },
  },
} as const;

/**
 * The full schema for editors: the base schema plus, per registered processor, an if/then that
 * applies that processor's config schema. Written to topologies/topology.schema.json.
 */
export function editorSchema(registry: ProcessorRegistry): Record<string, unknown> {
  const stageItems = topologyBaseSchema.properties.stages.items;
  const allOf = registry.all().map((def) => ({
    if: { properties: { processor: { const: def.name } } },
    then: { properties: { config: { description: def.summary, ...def.configSchema } } },
  }));
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    ...topologyBaseSchema,
    properties: {
      ...topologyBaseSchema.properties,
      stages: {
        ...topologyBaseSchema.properties.stages,
        items: { ...stageItems, properties: { ...stageItems.properties, processor: { enum: registry.names() } }, allOf },
      },
    },
  };
}
