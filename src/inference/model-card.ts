import * as fs from 'node:fs';
import * as path from 'node:path';
import Ajv from 'ajv';
import { ConfigError, ConfigErrors } from '../util/errors';
import { jsonPointerToPath } from '../topology/loader';

export type TensorType = 'float32' | 'float64' | 'int64' | 'int32' | 'bool' | 'string';

export interface TensorSpec {
  name: string;
  type: TensorType;
  /** -1 marks a dynamic dimension (the batch). */
  shape: number[];
}

/** The card beside the weights: models/<name>/<version>/model.json. */
export interface ModelCard {
  name: string;
  version: string;
  description?: string;
  /** `definitionsHash` (optional): the declarative definitions the model was trained with; the loader refuses others. */
  features: { set: string; version: number; names: string[]; definitionsFile?: string; definitionsHash?: string };
  inputs: TensorSpec[];
  outputs: TensorSpec[];
  /** Which output holds the positive-class score, and at which column. */
  score: { output: string; index: number };
  /** Default decision threshold for the label. */
  threshold: number;
  /** sha256 of model.onnx, checked before loading. */
  sha256: string;
  /** Who built it and when (ISO 8601 UTC). */
  createdBy: string;
  createdAt: string;
  /** The training data, with a version that names it exactly. */
  trainingData: { version: string; [extra: string]: unknown };
  hyperparameters?: Record<string, unknown>;
  metrics?: Record<string, unknown>;
  /** Who approved this version for serving, and when. Absent: not yet approved (the gate reports it). */
  approvedBy?: { name: string; at: string };
  /** Gate spec file in the version directory (default gate.json when present). */
  gate?: string;
  [extra: string]: unknown;
}

const tensorSpec = {
  type: 'object',
  required: ['name', 'type', 'shape'],
  properties: {
    name: { type: 'string', minLength: 1 },
    type: { enum: ['float32', 'float64', 'int64', 'int32', 'bool', 'string'] },
    shape: { type: 'array', items: { type: 'integer', minimum: -1 }, minItems: 1 },
  },
};

const isoTime = { type: 'string', pattern: '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d+)?(Z|[+-]\\d{2}:\\d{2})$' };

const cardSchema = {
  type: 'object',
  required: ['name', 'version', 'features', 'inputs', 'outputs', 'score', 'threshold', 'sha256', 'createdBy', 'createdAt', 'trainingData'],
  properties: {
    createdBy: { type: 'string', minLength: 1 },
    createdAt: isoTime,
    trainingData: { type: 'object', required: ['version'], properties: { version: { type: 'string', minLength: 1 } } },
    hyperparameters: { type: 'object' },
    metrics: { type: 'object' },
    approvedBy: { type: 'object', required: ['name', 'at'], properties: { name: { type: 'string', minLength: 1 }, at: isoTime } },
    gate: { type: 'string', minLength: 1 },
    name: { type: 'string', minLength: 1 },
    version: { type: ['string', 'integer'] },
    features: {
      type: 'object',
      required: ['set', 'version', 'names'],
      properties: {
        set: { type: 'string', minLength: 1 },
        version: { type: 'integer', minimum: 1 },
        names: { type: 'array', items: { type: 'string' }, minItems: 1 },
        definitionsFile: { type: 'string', minLength: 1 },
        definitionsHash: { type: 'string', pattern: '^[0-9a-f]{16}$' },
      },
    },
    inputs: { type: 'array', items: tensorSpec, minItems: 1 },
    outputs: { type: 'array', items: tensorSpec, minItems: 1 },
    score: {
      type: 'object',
      required: ['output', 'index'],
      properties: { output: { type: 'string' }, index: { type: 'integer', minimum: 0 } },
    },
    threshold: { type: 'number', minimum: 0, maximum: 1 },
    sha256: { type: 'string', pattern: '^[0-9a-f]{64}$' },
  },
};

const validateCard = new Ajv({ allErrors: true, strict: false }).compile(cardSchema);

export function modelDir(repository: string, name: string, version: string): string {
  return path.join(repository, name, version);
}

/** Reads and validates a model card; errors name the card file and the bad field's path. */
export function readModelCard(dir: string): ModelCard {
  const file = path.join(dir, 'model.json');
  if (!fs.existsSync(file)) throw new ConfigError('', 'model card not found', file);
  const raw: unknown = JSON.parse(fs.readFileSync(file, 'utf8'));
  if (!validateCard(raw)) {
    throw new ConfigErrors(
      (validateCard.errors ?? []).map((e) => {
        const extra = e.keyword === 'required' ? String((e.params as { missingProperty: string }).missingProperty) : undefined;
        return new ConfigError(jsonPointerToPath(e.instancePath, extra), e.message ?? 'is invalid', file);
      }),
    );
  }
  const card = raw as ModelCard;
  card.version = String(card.version);
  const errors: ConfigError[] = [];
  if (!card.outputs.some((o) => o.name === card.score.output)) {
    errors.push(new ConfigError('score.output', `no output named '${card.score.output}'`, file));
  }
  const input = card.inputs[0];
  const width = input.shape[input.shape.length - 1];
  if (width !== -1 && width !== card.features.names.length) {
    errors.push(new ConfigError('inputs[0].shape', `last dimension ${width} != ${card.features.names.length} feature names`, file));
  }
  if (errors.length > 0) throw new ConfigErrors(errors);
  return card;
}
