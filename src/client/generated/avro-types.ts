// Generated from schemas/*.avsc by `npm run gen:types`. Do not edit by hand.
/* eslint-disable */

export interface DeadLetter {
  stage: string;
  errorKind: ErrorKind;
  errorMessage: string;
  lineage: Lineage;
  key?: null | Buffer;
  /** The original message bytes, untouched. */
  value?: null | Buffer;
  failedTime: number;
}

export type ErrorKind = 'NOT_AVRO' | 'UNKNOWN_SCHEMA' | 'MISSING_FIELD' | 'WRONG_TYPE' | 'DECODE_ERROR' | 'PROCESSING_ERROR' | 'PRODUCE_FAILED' | 'TOO_LARGE';

export interface Lineage {
  topic: string;
  partition: number;
  offset: number;
}

export interface DriftAlert {
  modelName: string;
  modelVersion: string;
  /** The drift monitor (consumer group) that raised it. */
  monitor: string;
  /** FEATURES: the feature vectors; SCORE: the model's scores. */
  scope: DriftScope;
  /** The worst level among the window's features. */
  level: DriftLevel;
  windowStart: number;
  windowEnd: number;
  windowEvents: number;
  /** Rows of the training data the baseline was computed from. */
  baselineRows: number;
  /** Multiple-testing correction across features: benjamini-hochberg, bonferroni or none. */
  correction: string;
  /** Significance level the corrected p-values are compared with. */
  alpha: number;
  /** Features at WARN or ALERT, worst first. */
  driftedFeatures: string[];
  /** Every monitored feature of the window (the score alone for scope SCORE). */
  features: FeatureDrift[];
  producedTime: number;
}

export type DriftScope = 'FEATURES' | 'SCORE';

export type DriftLevel = 'OK' | 'WARN' | 'ALERT';

export interface FeatureDrift {
  feature: string;
  /** numeric (decile bins) or categorical (top-K + other). */
  kind: string;
  /** Population stability index over the baseline bins. */
  psi: number;
  /** Jensen-Shannon divergence (base 2, 0..1) over the same bins. */
  jsDivergence: number;
  /** Approximate two-sample KS statistic (numeric features): streaming quantile sketch vs the baseline percentiles. */
  ks?: null | number;
  /** Chi-square (G-test) p-value of the bin counts against the baseline frequencies. */
  pValue: number;
  /** pValue after the multiple-testing correction. */
  adjustedPValue: number;
  level: DriftLevel;
}

export interface FeatureVector {
  /** Entity/event key carried through to the prediction. */
  key: string;
  /** Name of the feature definitions that produced the values. */
  featureSet: string;
  /** Version of those definitions; must match the model card. */
  featureVersion: number;
  names: string[];
  values: number[];
  eventTime: number;
  /** Kafka timestamp of the input event's message (when it entered the pipeline); end-to-end latency is measured from it. */
  ingestTime: number;
  lineage: Lineage;
  /** Version of each batch feature set (Redis) the values were read from, by set name; empty when none was used. */
  featureSetVersions?: Record<string, string>;
  /** Name of the declarative stateless feature definitions that computed the base features ('' when written by an older producer). */
  definitionsSet?: string;
  /** Their declared version (0: unknown). */
  definitionsVersion?: number;
  /** First 16 hex characters of the sha256 of the definitions file's bytes ('' : unknown); the model card may pin it. */
  definitionsHash?: string;
}

export interface Feedback {
  /** The event key the label is for. */
  key: string;
  /** true: positive (e.g. fraud confirmed). */
  label: boolean;
  /** e.g. chargeback, analyst_review. */
  source?: string;
  labelTime: number;
}

export interface PartialVector {
  /** The original input record's value bytes, exactly as produced (schema-registry framed): the next step decodes the event from them, and its dead letters carry them. */
  event: Buffer;
  /** Features computed so far, in the vector's order (the base features, the batch sets, the windowed sets of the steps before). */
  names: string[];
  values: number[];
  /** Version of each batch feature set the values so far were read from, by set name. */
  featureSetVersions?: Record<string, string>;
}

export interface Prediction {
  key: string;
  modelName: string;
  modelVersion: string;
  /** Probability of the positive class. */
  score: number;
  /** score >= the stage's decision threshold. */
  label: boolean;
  threshold: number;
  eventTime: number;
  /** Kafka timestamp of the input event's message (when it entered the pipeline); end-to-end latency is measured from it. */
  ingestTime: number;
  /** When the inference stage produced this prediction. */
  producedTime: number;
  lineage: Lineage;
  /** Version of each batch feature set (Redis) the scored features were read from, by set name (from the feature vector). */
  featureSetVersions?: Record<string, string>;
  /** Which route chose the version that made this prediction: 'live' (one version served), or the routing arm, e.g. 'canary:candidate', 'blue'. */
  route?: null | string;
  /** Time the model took to score the inference request this event was part of (ms). */
  latencyMs?: null | number;
}

export interface ShadowPrediction {
  key: string;
  /** The shadow stage that made it. */
  shadow: string;
  modelName: string;
  modelVersion: string;
  /** OK: scored; ERROR: the shadow model failed; TIMEOUT: no score within the shadow's timeout. */
  status: ShadowStatus;
  score?: null | number;
  label?: null | boolean;
  threshold: number;
  /** Time the shadow model took for the request this event was in (up to the timeout). */
  latencyMs: number;
  error?: null | string;
  eventTime: number;
  ingestTime: number;
  producedTime: number;
  /** The input event's topic/partition/offset (same as the live prediction's). */
  lineage: Lineage;
  featureSetVersions?: Record<string, string>;
}

export type ShadowStatus = 'OK' | 'ERROR' | 'TIMEOUT';

/** Schema file name (schemas/<name>.avsc) -> the TypeScript type of its records. */
export interface SchemaTypes {
  'dead-letter': DeadLetter;
  'drift-alert': DriftAlert;
  'feature-vector': FeatureVector;
  'feedback': Feedback;
  'partial-vector': PartialVector;
  'prediction': Prediction;
  'shadow-prediction': ShadowPrediction;
}
