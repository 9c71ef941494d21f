/**
 * Loads a topology's plugin modules (`plugins: [./plugins/x.ts]`, relative to the topology file) and
 * registers their processors next to the built-ins, and their feature functions in a catalog the
 * declarative feature definitions are checked and compiled against (a function's Python twin is
 * resolved relative to its plugin file and must exist).
 *
 * Modules are loaded with jiti: TypeScript (and ESM syntax) is transpiled on the fly, in-process and
 * without global hooks, so `node dist/cli/main.js run topology.yaml` runs a `.ts` plugin with no build
 * step; transpiled output is cached on disk by jiti. `import ... from 'tributary'` in a plugin is
 * aliased to this running package, so a plugin always shares the engine's module instances (its
 * RecordRejection is the one the engine checks for) even from a folder with no node_modules.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createJiti } from 'jiti';
import { ConfigError } from '../util/errors';
import { FeatureFunctionDefinitionError, isDefinedFeatureFunction, parsePythonRef, type DefinedFeatureFunction, type FeatureFunctionCatalog, type RegisteredFeatureFunction } from '../features/declarative/functions';
import type { LoadedPlugin, LoadedTopology } from '../topology/spec';
import { isDefinedProcessor, isPluginDefinition, PluginDefinitionError, type DefinedProcessor } from './define';
import { DuplicateProcessorError, ProcessorRegistry } from './registry';

/** File extensions a plugin may have (jiti transpiles the TypeScript ones). */
export const PLUGIN_EXTENSIONS = ['.js', '.cjs', '.mjs', '.ts', '.cts', '.mts'];

/** The package entry point a plugin's `import 'tributary'` resolves to: dist/index.js, or src/index.ts under ts-jest. */
function packageEntry(): string {
  for (const ext of ['.js', '.ts']) {
    const file = path.join(__dirname, '..', `index${ext}`);
    if (fs.existsSync(file)) return file;
  }
  throw new Error(`tributary's package entry (index.js) not found next to ${__dirname}`);
}

let jiti: ReturnType<typeof createJiti> | undefined;
function loader(): ReturnType<typeof createJiti> {
  if (!jiti) {
    const entry = packageEntry();
    // Load the entry through the native require first: the plugin then gets these very instances.
    require(entry);
    // interopDefault off: the module object is what the file exports (default export under `default`), no merging proxy.
    jiti = createJiti(__filename, { alias: { tributary: entry }, interopDefault: false });
  }
  return jiti;
}

/** The processors a module exports: a definePlugin object, defineProcessor results, or arrays of them (default or named exports). */
function exportedProcessors(mod: unknown): DefinedProcessor<unknown>[] {
  const found = new Set<DefinedProcessor<unknown>>();
  const visit = (v: unknown) => {
    if (isDefinedProcessor(v)) found.add(v);
    else if (isPluginDefinition(v)) (v.processors ?? []).forEach((p) => found.add(p));
    else if (Array.isArray(v)) v.forEach((x) => isDefinedProcessor(x) && found.add(x));
  };
  visit(mod);
  if (mod && typeof mod === 'object') for (const key of Object.keys(mod)) visit((mod as Record<string, unknown>)[key]);
  return [...found];
}

/** The feature functions a module exports (in a definePlugin object, directly, or in arrays). */
function exportedFunctions(mod: unknown): DefinedFeatureFunction[] {
  const found = new Set<DefinedFeatureFunction>();
  const visit = (v: unknown) => {
    if (isDefinedFeatureFunction(v)) found.add(v);
    else if (isPluginDefinition(v)) (v.functions ?? []).forEach((f) => found.add(f));
    else if (Array.isArray(v)) v.forEach((x) => isDefinedFeatureFunction(x) && found.add(x));
  };
  visit(mod);
  if (mod && typeof mod === 'object') for (const key of Object.keys(mod)) visit((mod as Record<string, unknown>)[key]);
  return [...found];
}

export interface PluginLoadResult {
  /** The base registry's processors plus the plugins'. */
  registry: ProcessorRegistry;
  /** Feature functions of all plugins, by name (with their plugin file and resolved Python twin). */
  functions: FeatureFunctionCatalog;
  plugins: LoadedPlugin[];
  /** Problems with paths `plugins[i]`; a failing plugin registers nothing. */
  errors: ConfigError[];
}

/**
 * Loads each plugin (paths relative to `topologyDir`) into a copy of `base`. Every problem is a
 * ConfigError at `plugins[i]`: a missing file, a module that throws while loading (including a
 * definition defineProcessor refused), one that registers nothing, a processor name already taken.
 */
export function loadPlugins(refs: readonly string[], topologyDir: string, base: ProcessorRegistry, file?: string): PluginLoadResult {
  const registry = base.clone();
  const plugins: LoadedPlugin[] = [];
  const errors: ConfigError[] = [];
  const functions = new Map<string, RegisteredFeatureFunction & { source: string }>();
  refs.forEach((ref, i) => {
    const at = `plugins[${i}]`;
    const abs = path.resolve(topologyDir, ref);
    if (!PLUGIN_EXTENSIONS.includes(path.extname(abs))) {
      errors.push(new ConfigError(at, `plugin '${ref}' must be a ${PLUGIN_EXTENSIONS.join(', ')} file`, file));
      return;
    }
    if (!fs.existsSync(abs)) {
      errors.push(new ConfigError(at, `plugin file not found: ${abs}`, file));
      return;
    }
    let mod: unknown;
    try {
      mod = loader()(abs);
    } catch (err) {
      const detail = err instanceof PluginDefinitionError || err instanceof FeatureFunctionDefinitionError ? err.message : `failed to load: ${(err as Error).message}`;
      errors.push(new ConfigError(at, detail, file));
      return;
    }
    const processors = exportedProcessors(mod);
    const fns = exportedFunctions(mod);
    if (processors.length === 0 && fns.length === 0) {
      errors.push(new ConfigError(at, `plugin '${ref}' registers no processor or feature function (export what defineProcessor, defineFeatureFunction or definePlugin from 'tributary' returns)`, file));
      return;
    }
    const source = `${at} (${ref})`;
    for (const def of fns) {
      const taken = functions.get(def.name);
      if (taken) {
        errors.push(new ConfigError(at, `feature function '${def.name}' is already registered by ${taken.source}`, file));
        continue;
      }
      let python: RegisteredFeatureFunction['python'];
      if (def.python !== undefined) {
        const twin = parsePythonRef(def.python)!;
        const pyFile = path.resolve(path.dirname(abs), twin.file);
        if (!fs.existsSync(pyFile)) {
          errors.push(new ConfigError(at, `feature function '${def.name}': python: twin file not found: ${pyFile}`, file));
          continue;
        }
        python = Object.freeze({ file: pyFile, function: twin.function });
      }
      functions.set(def.name, Object.freeze({ definition: def, pluginFile: abs, ...(python ? { python } : {}), source }));
    }
    for (const def of processors) {
      try {
        registry.register(def, source);
      } catch (err) {
        if (!(err instanceof DuplicateProcessorError)) throw err;
        errors.push(new ConfigError(at, err.message, file));
      }
    }
    const info = (name: string) => {
      const f = functions.get(name)!;
      return { name, deterministic: f.definition.deterministic, sideEffects: f.definition.sideEffects, ...(f.python ? { python: `${f.python.file}:${f.python.function}` } : {}) };
    };
    plugins.push({
      ref,
      file: abs,
      processors: processors.map((p) => ({ name: p.name, deterministic: p.deterministic, sideEffects: p.sideEffects })),
      functions: fns.filter((f) => functions.get(f.name)?.pluginFile === abs).map((f) => info(f.name)),
    });
  });
  return { registry, functions, plugins, errors };
}

/**
 * The feature functions a loaded topology's plugins register (modules are cached: the definitions
 * loadTopology checked). Plugin problems are reported by loadTopology, not here.
 */
export function featureFunctionsFor(topology: Pick<LoadedTopology, 'spec' | 'file'>): FeatureFunctionCatalog {
  const refs = topology.spec.plugins ?? [];
  if (refs.length === 0) return new Map();
  return loadPlugins(refs, path.dirname(topology.file), new ProcessorRegistry(), topology.file).functions;
}
