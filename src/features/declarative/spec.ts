/**
 * Declarative stateless feature definitions: the file format (types + JSON Schema of its structure).
 *
 * A definitions file (YAML) names a feature set and its version and lists features as expressions
 * over the fields of ONE input event (any Avro record schema). The structure is checked here by JSON
 * Schema; every expression is then checked node by node against the input schema by check.ts (with
 * the path of the bad node), compiled by compile.ts, and evaluated identically by the Python package
 * python/tributary_features (semantics pinned in SEMANTICS.md beside this file).
 */

/** Feature set names: the same pattern as the topology's feature sets. */
export const SET_NAME_PATTERN = '^[A-Za-z][A-Za-z0-9_]*$';
/** Feature (column) names in a vector. */
export const FEATURE_NAME_PATTERN = '^[A-Za-z_][A-Za-z0-9_]*$';

/**
 * An expression: a number / boolean / null literal, a bare string (a field path into the event,
 * `merchant.country`), or a map with exactly one operator key plus that operator's options, e.g.
 * `{ mul: [amount, { lookup: usdRate, key: currency }] }`. Operators are listed in OPERATORS; a
 * dotted key calls a plugin feature function, `{ geo.haversineKm: [lat, lon, 52.5, 13.4] }`
 * (functions.ts).
 */
export type Expr = number | boolean | null | string | { [key: string]: unknown };

/** A small static table for `lookup`: string keys to numbers (or to strings), and the value of an unknown key. */
export interface TableSpec {
  values: Record<string, number | string>;
  /** Value for a key not in `values` (and for a null key); absent: null (the feature's default then applies). */
  default?: number | string | null;
  description?: string;
}

/** A scalar feature: one column. */
export interface ScalarFeatureSpec {
  name: string;
  expr: Expr;
  /** Value when the expression is null (a null field, an unknown lookup without default, ...). Default 0. */
  default?: number;
  description?: string;
}

/** A one-hot feature: one column per vocabulary entry (`<name>_<value>`), plus `<name>__unknown` with `unknown: bucket`. */
export interface OneHotFeatureSpec {
  name: string;
  oneHot: {
    of: Expr;
    vocabulary: string[];
    /** `ignore` (default): an unknown or null value sets no column; `bucket`: it sets the extra `<name>__unknown` column. */
    unknown?: 'ignore' | 'bucket';
    /** Column names instead of `<name>_<value>` (same length as the vocabulary, + 1 with `unknown: bucket`). */
    names?: string[];
  };
  description?: string;
}

export type FeatureSpec = ScalarFeatureSpec | OneHotFeatureSpec;

export interface FeatureDefinitions {
  /** Name of the set (a model card's `features.set` when the vector is this set alone). */
  featureSet: string;
  /** Version of the definitions; raise it when a feature's meaning changes. */
  version: number;
  description?: string;
  /** Avro schema (schemas/<input>.avsc) these definitions were written for; checked against the stage's input topic when given. */
  input?: string;
  /** IANA time zone of `hour` / `dayOfWeek` when an expression names none. Default `UTC`. */
  timeZone?: string;
  /** Field path of the event time (ms since epoch) copied into the vector; default: the Kafka timestamp. */
  eventTime?: string;
  /** Field path of the vector's key when the input record has no Kafka key. */
  key?: string;
  tables?: Record<string, TableSpec>;
  /**
   * Plugin feature functions used here that have (or may have) no Python twin: the loader then
   * accepts them without one, and python/tributary_features refuses to compute the set, naming them.
   */
  servingOnly?: string[];
  features: FeatureSpec[];
}

/** Operator keys and the option keys each allows beside it (the operator key holds the main operand). */
export const OPERATORS: Readonly<Record<string, readonly string[]>> = {
  field: ['default'],
  str: [],
  feature: [],
  add: [], sub: [], mul: [], div: [], mod: [], min: [], max: [],
  neg: [], abs: [], floor: [], ceil: [], sqrt: [], log1p: [], log: [], exp: [],
  clip: ['lower', 'upper'],
  bucketize: ['edges'],
  hash: ['buckets', 'seed'],
  hour: ['timeZone'],
  dayOfWeek: ['timeZone'],
  lookup: ['key'],
  ordinal: ['vocabulary', 'unknown'],
  eq: [], ne: [], lt: [], le: [], gt: [], ge: [],
  and: [], or: [], not: [],
  in: ['values'],
  isNull: [], isFinite: [],
  if: ['then', 'else'],
  coalesce: [],
};

const describedString = { type: 'string' };

/** JSON Schema of a definitions file's structure (expressions are checked by check.ts, with the input schema). */
export const definitionsFileSchema = {
  $id: 'https://tributary.dev/schemas/feature-definitions.json',
  title: 'Tributary declarative feature definitions',
  type: 'object',
  additionalProperties: false,
  required: ['featureSet', 'version', 'features'],
  properties: {
    $schema: { type: 'string' },
    featureSet: { type: 'string', pattern: SET_NAME_PATTERN },
    version: { type: 'integer', minimum: 1 },
    description: describedString,
    input: { type: 'string', minLength: 1 },
    timeZone: { type: 'string', minLength: 1 },
    eventTime: { type: 'string', minLength: 1 },
    key: { type: 'string', minLength: 1 },
    servingOnly: { type: 'array', items: { type: 'string', minLength: 1 }, uniqueItems: true },
    tables: {
      type: 'object',
      propertyNames: { pattern: SET_NAME_PATTERN },
      additionalProperties: {
        type: 'object',
        additionalProperties: false,
        required: ['values'],
        properties: {
          values: { type: 'object', additionalProperties: { type: ['number', 'string'] } },
          default: { type: ['number', 'string', 'null'] },
          description: describedString,
        },
      },
    },
    features: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name'],
        properties: {
          name: { type: 'string', pattern: FEATURE_NAME_PATTERN },
          expr: { type: ['number', 'boolean', 'null', 'string', 'object', 'array'] },
          default: { type: 'number' },
          description: describedString,
          oneHot: {
            type: 'object',
            additionalProperties: false,
            required: ['of', 'vocabulary'],
            properties: {
              of: { type: ['string', 'object'] },
              vocabulary: { type: 'array', minItems: 1, items: { type: 'string' }, uniqueItems: true },
              unknown: { enum: ['ignore', 'bucket'] },
              names: { type: 'array', items: { type: 'string', pattern: FEATURE_NAME_PATTERN } },
            },
          },
        },
        oneOf: [{ required: ['expr'], not: { required: ['oneHot'] } }, { required: ['oneHot'], not: { anyOf: [{ required: ['expr'] }, { required: ['default'] }] } }],
      },
    },
  },
} as const;

/** The stage config block naming a definitions file: `featureSet: { file: models/x/features/y.yaml }`. */
export interface FeatureSetRef {
  /** Definitions file, relative to the topology's base directory (the repository root). */
  file: string;
}
