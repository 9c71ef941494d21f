/**
 * The plugin API: `defineProcessor` and `definePlugin`, exported by the package (`import {
 * defineProcessor } from 'tributary'`). The built-in processors register through the same call
 * (src/stages/builtin.ts), so a plugin processor is a processor like any other: a name, a JSON-Schema
 * config spec, the Avro schemas of its input and output topics, optional checks and a factory.
 */
import Ajv from 'ajv';
import { isDefinedFeatureFunction, type DefinedFeatureFunction } from '../features/declarative/functions';
import { TributaryError } from '../util/errors';
import type { ProcessorDefinition } from './processor';

/** A processor or plugin definition that does not hold together; `field` names the bad member. */
export class PluginDefinitionError extends TributaryError {
  constructor(
    readonly field: string,
    readonly detail: string,
  ) {
    super(`${field}: ${detail}`);
  }
}

/**
 * What a plugin author writes. Like ProcessorDefinition, except that the guarantees are required:
 * every processor says whether it is deterministic and whether it has outside side effects, because
 * exactly-once holds end to end only for deterministic, side-effect-free processors.
 */
export type ProcessorDeclaration<C = unknown> = ProcessorDefinition<C> & {
  deterministic: boolean;
  sideEffects: boolean;
};

/** A defined processor: the declaration, checked and frozen, marked as coming from defineProcessor. */
export type DefinedProcessor<C = unknown> = Readonly<ProcessorDeclaration<C>>;

/** A plugin module's contents: processors and feature functions, registered by name. */
export interface PluginDefinition {
  /** Shown in errors and `validate` (default: the module's file name). */
  name?: string;
  processors?: readonly DefinedProcessor<any>[];
  /** Feature functions declarative definitions may call (made by defineFeatureFunction). */
  functions?: readonly DefinedFeatureFunction[];
}

/** What definePlugin returns: both lists present (empty when the plugin has none of a kind). */
export type DefinedPlugin = Readonly<{ name?: string; processors: readonly DefinedProcessor<any>[]; functions: readonly DefinedFeatureFunction[] }>;

/**
 * Brands are global symbols, not object identity, so a plugin that resolved its own copy of the
 * package (e.g. a nested node_modules) is still recognised.
 */
const PROCESSOR_BRAND = Symbol.for('tributary.processor-definition');
const PLUGIN_BRAND = Symbol.for('tributary.plugin-definition');

const NAME_PATTERN = /^[a-z][a-z0-9_]*$/;
/** Compiles config schemas once here, so a broken schema fails where the plugin defines it. */
const ajv = new Ajv({ allErrors: true, strict: false });

/**
 * Checks and registers-ready a processor definition. Throws PluginDefinitionError naming the bad
 * member: a name that is not snake_case, a config spec ajv cannot compile, missing guarantees.
 */
export function defineProcessor<C = unknown>(declaration: ProcessorDeclaration<C>): DefinedProcessor<C> {
  const d = declaration as Partial<ProcessorDeclaration<C>> | undefined;
  if (!d || typeof d !== 'object') throw new PluginDefinitionError('(definition)', 'defineProcessor needs an object');
  if (typeof d.name !== 'string' || !NAME_PATTERN.test(d.name)) throw new PluginDefinitionError('name', `must be snake_case (${NAME_PATTERN.source}), got ${JSON.stringify(d.name)}`);
  const at = (field: string) => `processor '${d.name}': ${field}`;
  if (typeof d.summary !== 'string' || d.summary.length === 0) throw new PluginDefinitionError(at('summary'), 'is required (one line: what the processor does)');
  for (const k of ['inputSchema', 'outputSchema'] as const) {
    if (typeof d[k] !== 'string' || d[k]!.length === 0) throw new PluginDefinitionError(at(k), 'is required (an Avro schema name from schemas/, e.g. feature-vector)');
  }
  for (const k of ['deterministic', 'sideEffects'] as const) {
    if (typeof d[k] !== 'boolean') throw new PluginDefinitionError(at(k), 'must be declared true or false (exactly-once holds only for deterministic processors without side effects)');
  }
  if (!d.configSchema || typeof d.configSchema !== 'object' || Array.isArray(d.configSchema)) throw new PluginDefinitionError(at('configSchema'), 'must be a JSON Schema object');
  try {
    ajv.compile(d.configSchema);
  } catch (err) {
    throw new PluginDefinitionError(at('configSchema'), `is not a valid JSON Schema: ${(err as Error).message}`);
  }
  if (typeof d.create !== 'function') throw new PluginDefinitionError(at('create'), 'must be a function (config, context) => Promise<Processor>');
  if (d.validate !== undefined && typeof d.validate !== 'function') throw new PluginDefinitionError(at('validate'), 'must be a function (config, context) => ConfigError[]');
  const defined = { ...declaration };
  Object.defineProperty(defined, PROCESSOR_BRAND, { value: true });
  return Object.freeze(defined);
}

/** Groups processors into one plugin object (a module may also just export defined processors). */
export function definePlugin(plugin: PluginDefinition): DefinedPlugin {
  if (!plugin || typeof plugin !== 'object') throw new PluginDefinitionError('(definition)', 'definePlugin needs { processors: [...], functions: [...] }');
  for (const k of ['processors', 'functions'] as const) {
    if (plugin[k] !== undefined && !Array.isArray(plugin[k])) throw new PluginDefinitionError(k, 'must be a list');
  }
  if (!plugin.processors?.length && !plugin.functions?.length) throw new PluginDefinitionError('processors', 'definePlugin needs { processors: [...] } and/or { functions: [...] }');
  (plugin.processors ?? []).forEach((p, i) => {
    if (!isDefinedProcessor(p)) throw new PluginDefinitionError(`processors[${i}]`, 'is not made by defineProcessor');
  });
  (plugin.functions ?? []).forEach((f, i) => {
    if (!isDefinedFeatureFunction(f)) throw new PluginDefinitionError(`functions[${i}]`, 'is not made by defineFeatureFunction');
  });
  const defined = { ...plugin, processors: Object.freeze([...(plugin.processors ?? [])]), functions: Object.freeze([...(plugin.functions ?? [])]) };
  Object.defineProperty(defined, PLUGIN_BRAND, { value: true });
  return Object.freeze(defined);
}

export function isDefinedProcessor(value: unknown): value is DefinedProcessor<unknown> {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[PROCESSOR_BRAND] === true;
}

export function isPluginDefinition(value: unknown): value is DefinedPlugin {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[PLUGIN_BRAND] === true;
}
