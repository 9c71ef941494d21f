import * as fs from 'node:fs';
import * as path from 'node:path';
import Ajv, { type ErrorObject } from 'ajv';
import { parseDocument } from 'yaml';
import { ConfigError, ConfigErrors } from '../util/errors';
import { createLogger } from '../util/logger';
import { SchemaCatalog } from '../kafka/avro-schemas';
import type { ProcessorRegistry } from '../stages/registry';
import type { LoadedTopology, TopologySpec } from './spec';
import { topologyBaseSchema } from './schema';
import { featureSectionErrors } from '../features/validate';

export interface LoadTopologyOptions {
  registry: ProcessorRegistry;
  /** Root that schemas/ and models/ resolve against. */
  baseDir: string;
}

/** `/stages/1/config/threshold` -> `stages[1].config.threshold` */
export function jsonPointerToPath(pointer: string, extra?: string): string {
  const parts = pointer.split('/').slice(1).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  if (extra !== undefined) parts.push(extra);
  return parts.reduce((acc, part) => (/^\d+$/.test(part) ? `${acc}[${part}]` : acc ? `${acc}.${part}` : part), '');
}

function ajvErrorToConfigError(err: ErrorObject, prefix: string, file: string): ConfigError {
  const params = err.params as Record<string, unknown>;
  let extra: string | undefined;
  let detail = err.message ?? 'is invalid';
  if (err.keyword === 'required') {
    extra = String(params.missingProperty);
    detail = 'is required';
  } else if (err.keyword === 'additionalProperties') {
    extra = String(params.additionalProperty);
    detail = 'is not a known field';
  } else if (err.keyword === 'enum') {
    detail = `must be one of ${(params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
  }
  const rel = jsonPointerToPath(err.instancePath, extra);
  const full = prefix && rel ? `${prefix}.${rel}` : prefix || rel;
  return new ConfigError(full, detail, file);
}

const ajv = new Ajv({ allErrors: true, strict: false, useDefaults: true });
const validateBase = ajv.compile(topologyBaseSchema);
const configValidators = new Map<string, ReturnType<typeof ajv.compile>>();

/**
 * Reads a topology YAML file and validates it completely before anything starts: structure,
 * each processor's declared config spec, cross references (topics, schemas) and processor-specific
 * checks. All problems are reported at once, each with the path of the bad field.
 */
export function loadTopology(file: string, options: LoadTopologyOptions): LoadedTopology {
  const abs = path.resolve(file);
  if (!fs.existsSync(abs)) throw new ConfigError('', `topology file not found`, abs);
  const doc = parseDocument(fs.readFileSync(abs, 'utf8'), { prettyErrors: true });
  if (doc.errors.length > 0) {
    throw new ConfigErrors(doc.errors.map((e) => new ConfigError('', `YAML syntax: ${e.message}`, abs)));
  }
  const raw: unknown = doc.toJS();
  return validateTopology(raw, abs, options);
}

export function validateTopology(raw: unknown, file: string, options: LoadTopologyOptions): LoadedTopology {
  const errors: ConfigError[] = [];
  if (!validateBase(raw)) {
    throw new ConfigErrors((validateBase.errors ?? []).map((e) => ajvErrorToConfigError(e, '', file)));
  }
  const spec = raw as unknown as TopologySpec;
  const loaded: LoadedTopology = { spec, file, baseDir: options.baseDir };
  const catalog = new SchemaCatalog(path.join(options.baseDir, 'schemas'));
  const topics = new Map(spec.topics.map((t) => [t.name, t]));

  spec.topics.forEach((t, i) => {
    if (!catalog.has(t.schema)) errors.push(new ConfigError(`topics[${i}].schema`, `no schema '${t.schema}' in schemas/`, file));
  });
  duplicates(spec.topics.map((t) => t.name)).forEach((i) => errors.push(new ConfigError(`topics[${i}].name`, 'duplicate topic', file)));
  duplicates(spec.stages.map((s) => s.name)).forEach((i) => errors.push(new ConfigError(`stages[${i}].name`, 'duplicate stage name', file)));
  const dlq = topics.get(spec.deadLetter.topic);
  if (!dlq) errors.push(new ConfigError('deadLetter.topic', `topic '${spec.deadLetter.topic}' is not declared in topics`, file));
  else if (dlq.schema !== 'dead-letter') errors.push(new ConfigError('deadLetter.topic', `topic must carry schema 'dead-letter', not '${dlq.schema}'`, file));

  spec.stages.forEach((stage, i) => {
    const at = `stages[${i}]`;
    if (!options.registry.has(stage.processor)) {
      errors.push(new ConfigError(`${at}.processor`, `unknown processor '${stage.processor}' (known: ${options.registry.names().join(', ')})`, file));
      return;
    }
    const def = options.registry.get(stage.processor);
    for (const [side, expected] of [['input', def.inputSchema], ['output', def.outputSchema]] as const) {
      const topic = topics.get(stage[side].topic);
      if (!topic) errors.push(new ConfigError(`${at}.${side}.topic`, `topic '${stage[side].topic}' is not declared in topics`, file));
      else if (expected !== '*' && topic.schema !== expected) {
        errors.push(new ConfigError(`${at}.${side}.topic`, `processor '${def.name}' needs schema '${expected}' but topic '${topic.name}' carries '${topic.schema}'`, file));
      }
    }
    let validate = configValidators.get(def.name);
    if (!validate) {
      validate = ajv.compile(def.configSchema);
      configValidators.set(def.name, validate);
    }
    if (!validate(stage.config)) {
      errors.push(...(validate.errors ?? []).map((e) => ajvErrorToConfigError(e, `${at}.config`, file)));
      return;
    }
    const ctx = { topology: loaded, stage, logger: createLogger('topology') };
    for (const e of def.validate?.(stage.config, ctx) ?? []) {
      errors.push(new ConfigError(e.path ? `${at}.config.${e.path}` : `${at}.config`, e.detail, file));
    }
  });
  errors.push(...featureSectionErrors(loaded, catalog));
  if (errors.length > 0) throw new ConfigErrors(errors);
  return loaded;
}

function duplicates(values: string[]): number[] {
  const seen = new Set<string>();
  const out: number[] = [];
  values.forEach((v, i) => {
    if (seen.has(v)) out.push(i);
    seen.add(v);
  });
  return out;
}
