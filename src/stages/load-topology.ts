/**
 * A topology as the runtime understands it: the spec layer's loader (src/topology/loader.ts) given
 * the runtime's validators — the built-in processors plus the topology's plugins, the Avro schemas
 * of its schemas/ folder (and the package's), the `features` section's JSON Schema and checks.
 * Everything that loads a topology to run or validate it comes through here.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { topologySchemas, type SchemaCatalog } from '../kafka/avro-schemas';
import { featuresSectionSchema } from '../features/spec';
import { featureSectionErrors } from '../features/validate';
import * as spec from '../topology/loader';
import type { JsonSchema } from '../topology/schema';
import type { LoadedTopology } from '../topology/spec';
import type { Type } from 'avsc';
import { ConfigError, ConfigErrors } from '../util/errors';
import { repoRoot } from '../util/paths';
import { builtinProcessors } from './builtin';
import { partitionDecision, planStage } from '../engine/repartition';
import { keyFieldProblem } from '../util/field-path';
import { createLogger } from '../util/logger';
import { loadPlugins } from './plugin-loader';
import type { ProcessorRegistry } from './registry';

/** Top-level sections of a topology owned outside the spec layer (one constant object: the loader caches per object). */
export const TOPOLOGY_SECTIONS: Readonly<Record<string, JsonSchema>> = Object.freeze({
  features: { description: 'Feature sets: batch (Redis) and streaming (windowed aggregations).', ...featuresSectionSchema },
});

export interface RuntimeLoadOptions {
  /** Processors before the topology's plugins are added (default: the built-ins). */
  registry?: ProcessorRegistry;
  /** Where schemas/ and model repositories resolve (default: topologyBaseDir(file)). */
  baseDir?: string;
}

/**
 * The directory a topology's relative paths (schemas/, model repositories) resolve against: the
 * file's own directory when it has a schemas/ folder (a pipeline folder, as `tributary init` makes),
 * else the package root (this repository's topologies/*.yaml, and topologies written to temp dirs).
 */
export function topologyBaseDir(file: string): string {
  const dir = path.dirname(path.resolve(file));
  return fs.existsSync(path.join(dir, 'schemas')) ? dir : repoRoot();
}

/** Loads and fully validates a topology file; throws ConfigErrors listing every problem with its path. */
export function loadTopology(file: string, options: RuntimeLoadOptions = {}): LoadedTopology {
  const abs = path.resolve(file);
  return validateTopology(spec.readTopologyDocument(abs), abs, options);
}

/** Validates an already parsed topology document (tests and benchmarks build specs in memory). */
export function validateTopology(raw: unknown, file: string, options: RuntimeLoadOptions = {}): LoadedTopology {
  const abs = path.resolve(file);
  const baseDir = options.baseDir ?? topologyBaseDir(abs);
  // Structure first: the plugin list must be well-formed before modules are loaded from it.
  const parsed = spec.checkStructure(raw, abs, TOPOLOGY_SECTIONS);
  const { registry, functions, plugins, errors } = loadPlugins(parsed.plugins ?? [], path.dirname(abs), options.registry ?? builtinProcessors(), abs);
  // Stages naming a processor of a plugin that failed would only repeat its error as "unknown processor".
  if (errors.length > 0) throw new ConfigErrors(errors);
  // A missing schemas entry would only show up as unknown schemas on every topic that needs it.
  const sourceErrors = schemaSourceErrors(parsed.schemas ?? [], baseDir, abs);
  if (sourceErrors.length > 0) throw new ConfigErrors(sourceErrors);
  const schemas = topologySchemas({ baseDir, spec: parsed });
  return spec.validateTopology(raw, abs, {
    processors: registry,
    schemas,
    sections: TOPOLOGY_SECTIONS,
    checks: [(loaded) => featureSectionErrors(loaded, schemas, functions), (loaded) => repartitionErrors(loaded, registry, schemas)],
    baseDir,
    plugins,
  });
}

/**
 * The processors a loaded topology runs with: the built-ins plus its plugins (already loaded and
 * checked by loadTopology; modules are cached, so this returns the same definitions).
 */
export function processorsFor(topology: LoadedTopology, base: ProcessorRegistry = builtinProcessors()): ProcessorRegistry {
  const { registry, errors } = loadPlugins(topology.spec.plugins ?? [], path.dirname(topology.file), base, topology.file);
  if (errors.length > 0) throw new ConfigErrors(errors);
  return registry;
}

/** `schemas[i]`: each entry must be an existing folder or `.avsc` file (relative to the base directory). */
function schemaSourceErrors(entries: readonly string[], baseDir: string, file: string): ConfigError[] {
  const out: ConfigError[] = [];
  entries.forEach((entry, i) => {
    const abs = path.resolve(baseDir, entry);
    const stat = fs.statSync(abs, { throwIfNoEntry: false });
    if (!stat) out.push(new ConfigError(`schemas[${i}]`, `${abs} does not exist (a folder of <name>.avsc files or one .avsc file, relative to ${baseDir})`, file));
    else if (stat.isFile() ? !entry.endsWith('.avsc') : !stat.isDirectory()) out.push(new ConfigError(`schemas[${i}]`, `${abs} is neither a folder nor an .avsc file`, file));
  });
  return out;
}

/**
 * The Avro type a topology's topic carries (its schemas, then the package's: topologySchemas): what a
 * processor checks field paths against (`resolveFieldPath(topicSchema(ctx.topology, ctx.stage.input.topic), path)`).
 * `at` names the field that referred to the topic, for the error when the topology does not declare it.
 */
export function topicSchema(topology: LoadedTopology, topic: string, at = 'topics'): Type {
  const spec = topology.spec.topics.find((t) => t.name === topic);
  if (!spec) throw new ConfigError(at, `topic '${topic}' is not declared in topics`, topology.file);
  return topologySchemas(topology).get(spec.schema).type;
}

/**
 * partitionBy / repartition of every stage: the decision (explicit, `none`, or implied by the
 * processor's per-entity state — several entities chained when the processor allows it) must name
 * keyable fields of the input schema, and the internal steps and topics must not clash with
 * declared stages and topics.
 */
function repartitionErrors(loaded: LoadedTopology, registry: ProcessorRegistry, schemas: SchemaCatalog): ConfigError[] {
  const out: ConfigError[] = [];
  const topics = new Map(loaded.spec.topics.map((t) => [t.name, t]));
  const stageNames = new Set(loaded.spec.stages.map((s) => s.name));
  loaded.spec.stages.forEach((stage, i) => {
    const at = `stages[${i}]`;
    if (!registry.has(stage.processor)) return;
    const def = registry.get(stage.processor);
    const implied = def.partitionKeys?.(stage.config, { topology: loaded, stage, logger: createLogger('topology') }) ?? [];
    let decision: ReturnType<typeof partitionDecision>;
    try {
      decision = partitionDecision(stage, implied, def.entitySteps === true);
    } catch (err) {
      out.push(new ConfigError(`${at}.partitionBy`, err instanceof ConfigError ? err.detail : (err as Error).message, loaded.file));
      return;
    }
    const input = topics.get(stage.input.topic);
    if (decision.kind === 'as-produced') {
      if (stage.repartition) out.push(new ConfigError(`${at}.repartition`, `has no effect: the stage is not repartitioned (partitionBy: ${stage.partitionBy ?? 'absent, and nothing implies it'})`, loaded.file));
      return;
    }
    const source = stage.partitionBy ? `${at}.partitionBy` : `${at}.partitionBy (implied by the processor's per-entity state)`;
    const fields = decision.kind === 'chain' ? decision.fields : [decision.field];
    if (input && schemas.has(input.schema)) {
      for (const field of fields) {
        const problem = keyFieldProblem(schemas.get(input.schema).type, field);
        if (problem) out.push(new ConfigError(source, problem, loaded.file));
      }
    }
    if (!input) return;
    let plan: ReturnType<typeof planStage>;
    try {
      plan = planStage(loaded.spec.name, stage, input, decision);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      out.push(new ConfigError(`${at}.${err.path}`, err.detail, loaded.file));
      return;
    }
    for (const t of plan.topics) {
      if (topics.has(t.name)) out.push(new ConfigError(`${at}.name`, `the stage's internal topic '${t.name}' is also declared in topics (it is internal: created and named by Tributary)`, loaded.file));
    }
    for (const step of plan.stages) {
      if (step.name !== stage.name && stageNames.has(step.name)) out.push(new ConfigError(`${at}.name`, `the stage's internal step '${step.name}' has the name of another stage (the engine names it after the stage${decision.kind === 'chain' ? ' and its entities' : ''}; rename one)`, loaded.file));
    }
  });
  return out;
}
