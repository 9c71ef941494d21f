/**
 * A topology as the runtime understands it: the spec layer's loader (src/topology/loader.ts) given
 * the runtime's validators — the built-in processors plus the topology's plugins, the Avro schemas
 * of its schemas/ folder (and the package's), the `features` section's JSON Schema and checks.
 * Everything that loads a topology to run or validate it comes through here.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SchemaCatalog } from '../kafka/avro-schemas';
import { featuresSectionSchema } from '../features/spec';
import { featureSectionErrors } from '../features/validate';
import * as spec from '../topology/loader';
import type { JsonSchema } from '../topology/schema';
import type { LoadedTopology } from '../topology/spec';
import type { Type } from 'avsc';
import { ConfigError, ConfigErrors } from '../util/errors';
import { repoRoot } from '../util/paths';
import { builtinProcessors } from './builtin';
import { partitionDecision, repartitionTopicName } from '../engine/repartition';
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
  const schemas = new SchemaCatalog(path.join(baseDir, 'schemas'));
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

/**
 * The Avro type a topology's topic carries (its schemas/ folder, then the package's): what a
 * processor checks field paths against (`resolveFieldPath(topicSchema(ctx.topology, ctx.stage.input.topic), path)`).
 */
export function topicSchema(topology: LoadedTopology, topic: string): Type {
  const spec = topology.spec.topics.find((t) => t.name === topic);
  if (!spec) throw new ConfigError('topics', `no topic '${topic}' in the topology`, topology.file);
  return new SchemaCatalog(path.join(topology.baseDir, 'schemas')).get(spec.schema).type;
}

/**
 * partitionBy / repartition of every stage: the decision (explicit, `none`, or implied by the
 * processor's per-entity state) must name one keyable field of the input schema, and the internal
 * repartition topic must not clash with a declared topic.
 */
function repartitionErrors(loaded: LoadedTopology, registry: ProcessorRegistry, schemas: SchemaCatalog): ConfigError[] {
  const out: ConfigError[] = [];
  const topics = new Map(loaded.spec.topics.map((t) => [t.name, t]));
  loaded.spec.stages.forEach((stage, i) => {
    const at = `stages[${i}]`;
    if (!registry.has(stage.processor)) return;
    const def = registry.get(stage.processor);
    const implied = def.partitionKeys?.(stage.config, { topology: loaded, stage, logger: createLogger('topology') }) ?? [];
    let decision: ReturnType<typeof partitionDecision>;
    try {
      decision = partitionDecision(stage, implied);
    } catch (err) {
      out.push(new ConfigError(`${at}.partitionBy`, err instanceof ConfigError ? err.detail : (err as Error).message, loaded.file));
      return;
    }
    const input = topics.get(stage.input.topic);
    if (decision.kind === 'repartition') {
      const source = stage.partitionBy ? `${at}.partitionBy` : `${at}.partitionBy (implied by the processor's per-entity state)`;
      if (input && schemas.has(input.schema)) {
        const problem = keyFieldProblem(schemas.get(input.schema).type, decision.field);
        if (problem) out.push(new ConfigError(source, problem, loaded.file));
      }
      const name = repartitionTopicName(loaded.spec.name, stage.name);
      if (topics.has(name)) out.push(new ConfigError(`${at}.name`, `the stage's repartition topic '${name}' is also declared in topics (it is internal: created and named by Tributary)`, loaded.file));
    } else if (stage.repartition) {
      out.push(new ConfigError(`${at}.repartition`, `has no effect: the stage is not repartitioned (partitionBy: ${stage.partitionBy ?? 'absent, and nothing implies it'})`, loaded.file));
    }
  });
  return out;
}
