/**
 * The scaffold's feature processor: numeric features read from event fields, as listed in
 * topology.yaml (stages[0].config). A plugin: Tributary loads it (no build step) and registers
 * `event_features` next to its built-in processors. Replace it with your own feature code, keeping
 * the output names and order equal to the model card's features.names.
 */
import {
  ConfigError,
  defineProcessor,
  fieldGetter,
  RecordRejection,
  resolveFieldPath,
  topicSchema,
  type FeatureVector,
  type InputRecord,
  type ProcessResult,
} from 'tributary';

interface FeatureDefinition {
  name: string;
  /** Field path into the event (dotted Avro names; nullable unions are looked through). */
  field: string;
  /** 1 when the field equals this value, else 0. */
  equals?: string | number | boolean;
  /** Used when the field is null. */
  default?: number;
}

interface EventFeaturesConfig {
  set: string;
  version: number;
  key: string;
  eventTime: string;
  features: FeatureDefinition[];
}

export default defineProcessor<EventFeaturesConfig>({
  name: 'event_features',
  summary: 'Numeric features read from fields of the event (scaffold).',
  inputSchema: '{{schema}}',
  outputSchema: 'feature-vector',
  // Same event, same features; nothing written outside the stage's Kafka transaction.
  deterministic: true,
  sideEffects: false,
  configSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['set', 'version', 'key', 'eventTime', 'features'],
    properties: {
      set: { type: 'string', minLength: 1 },
      version: { type: 'integer', minimum: 1 },
      key: { type: 'string', minLength: 1 },
      eventTime: { type: 'string', minLength: 1 },
      features: {
        type: 'array',
        minItems: 1,
        items: {
          type: 'object',
          additionalProperties: false,
          required: ['name', 'field'],
          properties: {
            name: { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_]*$' },
            field: { type: 'string', minLength: 1 },
            equals: { type: ['string', 'number', 'boolean'] },
            default: { type: 'number' },
          },
        },
      },
    },
  },
  /** Every field path must exist in the input topic's schema: a typo fails `tributary validate` with its path. */
  validate(config, ctx) {
    const type = topicSchema(ctx.topology, ctx.stage.input.topic);
    const errors: ConfigError[] = [];
    const check = (at: string, path: string) => {
      const r = resolveFieldPath(type, path);
      if (!r.ok) errors.push(new ConfigError(at, r.problem));
    };
    check('key', config.key);
    check('eventTime', config.eventTime);
    config.features.forEach((f, i) => check(`features[${i}].field`, f.field));
    return errors;
  },
  async create(config) {
    const names = config.features.map((f) => f.name);
    const key = fieldGetter(config.key);
    const eventTime = fieldGetter(config.eventTime);
    const features = config.features.map((f) => ({ ...f, get: fieldGetter(f.field) }));
    const value = (f: (typeof features)[number], event: unknown): number => {
      const v = f.get(event);
      if (f.equals !== undefined) return v === f.equals ? 1 : 0;
      if (v === null || v === undefined) return f.default ?? Number.NaN;
      return typeof v === 'boolean' ? Number(v) : Number(v);
    };
    return {
      async processBatch(records: readonly InputRecord<unknown>[]): Promise<ProcessResult<FeatureVector>[]> {
        return records.map((r) => {
          const values = features.map((f) => value(f, r.value));
          const bad = values.findIndex((v) => !Number.isFinite(v));
          if (bad >= 0) return new RecordRejection('PROCESSING_ERROR', `feature '${names[bad]}' is not a finite number (field ${features[bad].field})`);
          const k = String(key(r.value));
          return {
            key: k,
            value: { key: k, featureSet: config.set, featureVersion: config.version, names, values, eventTime: Number(eventTime(r.value)), ingestTime: r.timestamp, lineage: r.lineage, featureSetVersions: {} },
          };
        });
      },
      async close() {},
    };
  },
});
