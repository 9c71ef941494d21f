/**
 * The topology loader: a pure spec layer. It parses and validates a topology file against what it is
 * given — the processor types (their config specs and checks), the Avro schema names available, the
 * JSON Schemas of sections other layers own and their checks — and imports none of those layers
 * (lint:layers). The runtime assembles them in src/stages/load-topology.ts.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';
import { parseDocument } from 'yaml';
import { ConfigError, ConfigErrors } from '../util/errors';
import { createLogger, type Logger } from '../util/logger';
import type { LoadedPlugin, LoadedTopology, StageSpec, TopologySpec } from './spec';
import { topologySchema, type JsonSchema } from './schema';

/** What a processor check sees (the runtime's ProcessorContext is a superset). */
export interface ProcessorCheckContext {
  topology: LoadedTopology;
  stage: StageSpec;
  logger: Logger;
}

/** What the loader needs of a processor type: its topic schemas, config spec and extra checks. */
export interface ProcessorSpec {
  name: string;
  inputSchema: string;
  outputSchema: string;
  configSchema: JsonSchema;
  /** Checks beyond the JSON Schema; paths relative to the stage's `config`. */
  validate?(config: any, ctx: ProcessorCheckContext): ConfigError[];
}

/** Processor types by name (src/stages/registry.ts implements it). */
export interface ProcessorCatalog {
  has(name: string): boolean;
  get(name: string): ProcessorSpec;
  names(): string[];
}

/** A whole-topology check run once structure and stages are valid (e.g. the features section against the input schemas). */
export type TopologyCheck = (loaded: LoadedTopology) => ConfigError[];

/** The validators a topology is checked with: passed in, so this layer depends on none of them. */
export interface TopologyValidators {
  processors: ProcessorCatalog;
  /** Avro schema names the topics may carry; `searched` (folders and files, in order) goes into the error for an unknown one. */
  schemas: { has(name: string): boolean; readonly searched?: readonly string[] };
  /** JSON Schemas of top-level sections owned by other layers, e.g. `{ features: ... }`. */
  sections?: Readonly<Record<string, JsonSchema>>;
  checks?: readonly TopologyCheck[];
}

export interface LoadTopologyOptions extends TopologyValidators {
  /** Directory that schemas/ and model repositories resolve against. */
  baseDir: string;
  /** Plugins already loaded for this topology (recorded on the result). */
  plugins?: LoadedPlugin[];
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
/** Compiled structure validators per sections object (the runtime passes one constant object). */
const structureValidators = new WeakMap<object, ValidateFunction>();
const NO_SECTIONS = {};
/** Compiled config validators per processor config schema (plugins may reuse a name across topologies, not a schema object). */
const configValidators = new WeakMap<object, ValidateFunction>();

/** Reads a topology YAML file into plain data; a missing file or bad YAML is a ConfigErrors. */
export function readTopologyDocument(file: string): unknown {
  const abs = path.resolve(file);
  if (!fs.existsSync(abs)) throw new ConfigError('', `topology file not found`, abs);
  const doc = parseDocument(fs.readFileSync(abs, 'utf8'), { prettyErrors: true });
  if (doc.errors.length > 0) {
    throw new ConfigErrors(doc.errors.map((e) => new ConfigError('', `YAML syntax: ${e.message}`, abs)));
  }
  return doc.toJS();
}

/** Checks the document's structure (the topology JSON Schema plus the given sections); throws ConfigErrors with paths. */
export function checkStructure(raw: unknown, file: string, sections: Readonly<Record<string, JsonSchema>> = NO_SECTIONS): TopologySpec {
  let validate = structureValidators.get(sections);
  if (!validate) {
    validate = ajv.compile(topologySchema(sections));
    structureValidators.set(sections, validate);
  }
  if (!validate(raw)) throw new ConfigErrors((validate.errors ?? []).map((e) => ajvErrorToConfigError(e, '', file)));
  return raw as TopologySpec;
}

/**
 * Reads a topology YAML file and validates it completely before anything starts: structure,
 * each processor's declared config spec, cross references (topics, schemas) and processor-specific
 * checks. All problems are reported at once, each with the path of the bad field.
 */
export function loadTopology(file: string, options: LoadTopologyOptions): LoadedTopology {
  return validateTopology(readTopologyDocument(file), path.resolve(file), options);
}

export function validateTopology(raw: unknown, file: string, options: LoadTopologyOptions): LoadedTopology {
  const errors: ConfigError[] = [];
  const spec = checkStructure(raw, file, options.sections);
  const loaded: LoadedTopology = { spec, file, baseDir: options.baseDir, ...(options.plugins ? { plugins: options.plugins } : {}) };
  const catalog = options.schemas;
  const registry = options.processors;
  const topics = new Map(spec.topics.map((t) => [t.name, t]));

  spec.topics.forEach((t, i) => {
    if (!catalog.has(t.schema)) {
      const where = catalog.searched ? catalog.searched.map((d) => path.relative(options.baseDir, d) || '.').join(', ') : 'schemas/';
      errors.push(new ConfigError(`topics[${i}].schema`, `no schema '${t.schema}' (no ${t.schema}.avsc in ${where}; a topology names the folders or files of its own schemas in \`schemas\`)`, file));
    }
  });
  duplicates(spec.topics.map((t) => t.name)).forEach((i) => errors.push(new ConfigError(`topics[${i}].name`, 'duplicate topic', file)));
  duplicates(spec.stages.map((s) => s.name)).forEach((i) => errors.push(new ConfigError(`stages[${i}].name`, 'duplicate stage name', file)));
  const dlq = topics.get(spec.deadLetter.topic);
  if (!dlq) errors.push(new ConfigError('deadLetter.topic', `topic '${spec.deadLetter.topic}' is not declared in topics`, file));
  else if (dlq.schema !== 'dead-letter') errors.push(new ConfigError('deadLetter.topic', `topic must carry schema 'dead-letter', not '${dlq.schema}'`, file));

  spec.stages.forEach((stage, i) => {
    const at = `stages[${i}]`;
    if (!registry.has(stage.processor)) {
      errors.push(new ConfigError(`${at}.processor`, `unknown processor '${stage.processor}' (known: ${registry.names().join(', ')})`, file));
      return;
    }
    if (stage.transactions === 'shared' && stage.delivery === 'at-least-once') {
      errors.push(new ConfigError(`${at}.transactions`, "'shared' transactions need delivery: exactly-once (this stage is at-least-once)", file));
    }
    if (stage.commit?.sendAsProcessed && (stage.delivery === 'at-least-once' || stage.transactions === 'per-partition')) {
      const why = stage.delivery === 'at-least-once' ? 'at-least-once stages always send outputs as they are computed' : "per-partition transactions send at commit (repartition hops already send as processed); use transactions: 'shared'";
      errors.push(new ConfigError(`${at}.commit.sendAsProcessed`, `only for exactly-once stages with shared transactions: ${why}`, file));
    }
    if (stage.commit?.readerWaitMs !== undefined && (stage.delivery === 'at-least-once' || stage.transactions === 'per-partition')) {
      errors.push(new ConfigError(`${at}.commit.readerWaitMs`, `only for exactly-once stages with shared transactions (this stage is ${stage.delivery === 'at-least-once' ? 'at-least-once' : 'per-partition'})`, file));
    }
    const def = registry.get(stage.processor);
    for (const [side, expected] of [['input', def.inputSchema], ['output', def.outputSchema]] as const) {
      const topic = topics.get(stage[side].topic);
      if (!topic) errors.push(new ConfigError(`${at}.${side}.topic`, `topic '${stage[side].topic}' is not declared in topics`, file));
      else if (expected !== '*' && topic.schema !== expected) {
        errors.push(new ConfigError(`${at}.${side}.topic`, `processor '${def.name}' needs schema '${expected}' but topic '${topic.name}' carries '${topic.schema}'`, file));
      }
    }
    let validate = configValidators.get(def.configSchema);
    if (!validate) {
      validate = ajv.compile(def.configSchema);
      configValidators.set(def.configSchema, validate);
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
  for (const check of options.checks ?? []) errors.push(...check(loaded));
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
