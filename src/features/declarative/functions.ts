/**
 * Plugin feature functions: named functions a plugin module registers (`defineFeatureFunction`,
 * grouped by `definePlugin`) that declarative feature definitions call like a built-in operator,
 * `{ geo.haversineKm: [lat, lon, 52.52, 13.405] }`. The loader checks the name, the arity and each
 * argument's type against the input schema (check.ts); the compiled function calls `compute`
 * directly; the Python package calls the declared twin (`python: './file.py:function'`, relative to
 * the plugin file) so training computes the same column. What the engine guarantees at the boundary
 * is pinned in SEMANTICS.md ("Plugin feature functions").
 *
 * This module lives in the features layer (check.ts and compile.ts read these types); the plugin
 * loader (src/stages/plugin-loader.ts) turns the definitions a module exports into a catalog.
 */

/** Argument types: `double` (any number or boolean as 0/1, passed as a float64), `string` (string or enum), `boolean`. */
export type FeatureFunctionArgType = 'double' | 'string' | 'boolean';

export interface FeatureFunctionArg {
  name: string;
  type: FeatureFunctionArgType;
}

/** What a plugin author writes. */
export interface FeatureFunctionDeclaration {
  /** Dotted name, `namespace.function` (e.g. `geo.haversineKm`): never one of the built-in operators. */
  name: string;
  /** One line: what it computes (shown by `validate`). */
  summary?: string;
  args: readonly FeatureFunctionArg[];
  /** Only `double` today: a feature is a number. */
  returns: 'double';
  /** Same arguments, same result, every time (no clock, no randomness, no outside state). */
  deterministic: boolean;
  /** Whether it writes anything outside the engine (a call, a file). Exactly-once holds only without. */
  sideEffects: boolean;
  /**
   * The computation. Called only with non-null arguments (a null argument makes the result null
   * without a call); returns a number, or null (or undefined) for "no value". NaN and ±∞ are values.
   */
  compute: (...args: any[]) => number | null | undefined;
  /**
   * The Python twin for training, `./file.py:function` relative to the plugin file. Required unless
   * the definitions using the function list it under `servingOnly`.
   */
  python?: string;
}

/** A defined feature function: the declaration, checked and frozen. */
export type DefinedFeatureFunction = Readonly<FeatureFunctionDeclaration>;

/** A function as a topology's plugins registered it: where it came from and its resolved twin. */
export interface RegisteredFeatureFunction {
  readonly definition: DefinedFeatureFunction;
  /** The plugin file that registered it (absolute). */
  readonly pluginFile: string;
  /** The Python twin: absolute file and function name; absent when the function declares none. */
  readonly python?: { readonly file: string; readonly function: string };
}

/** Registered functions by name (what check.ts and compile.ts receive). */
export type FeatureFunctionCatalog = ReadonlyMap<string, RegisteredFeatureFunction>;

/** A feature function definition that does not hold together; `field` names the bad member. */
export class FeatureFunctionDefinitionError extends Error {
  constructor(
    readonly field: string,
    readonly detail: string,
  ) {
    super(`${field}: ${detail}`);
    this.name = 'FeatureFunctionDefinitionError';
  }
}

/** `namespace.function`: the dot keeps plugin names apart from the built-in operators and their options. */
export const FUNCTION_NAME_PATTERN = /^[a-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)+$/;
const ARG_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** `./file.py:function`: a relative .py path and a Python identifier. */
const PYTHON_REF = /^(.+\.py):([A-Za-z_][A-Za-z0-9_]*)$/;
const ARG_TYPES: readonly string[] = ['double', 'string', 'boolean'];

/** Global symbol, not identity: a plugin that resolved its own copy of the package is still recognised. */
const FUNCTION_BRAND = Symbol.for('tributary.feature-function-definition');

/** Splits a `python:` reference; null when malformed. */
export function parsePythonRef(ref: string): { file: string; function: string } | null {
  const m = PYTHON_REF.exec(ref);
  return m ? { file: m[1], function: m[2] } : null;
}

/**
 * Checks a feature function declaration. Throws FeatureFunctionDefinitionError naming the bad
 * member: a name without a namespace, an argument of an unknown type, missing guarantees, a
 * malformed Python reference.
 */
export function defineFeatureFunction(declaration: FeatureFunctionDeclaration): DefinedFeatureFunction {
  const d = declaration as Partial<FeatureFunctionDeclaration> | undefined;
  if (!d || typeof d !== 'object') throw new FeatureFunctionDefinitionError('(definition)', 'defineFeatureFunction needs an object');
  if (typeof d.name !== 'string' || !FUNCTION_NAME_PATTERN.test(d.name)) throw new FeatureFunctionDefinitionError('name', `must be a dotted name such as geo.haversineKm (${FUNCTION_NAME_PATTERN.source}), got ${JSON.stringify(d.name)}`);
  const at = (field: string) => `feature function '${d.name}': ${field}`;
  if (!Array.isArray(d.args)) throw new FeatureFunctionDefinitionError(at('args'), 'must be a list of { name, type } (type: double, string or boolean)');
  const seen = new Set<string>();
  d.args.forEach((a, i) => {
    if (!a || typeof a.name !== 'string' || !ARG_NAME_PATTERN.test(a.name)) throw new FeatureFunctionDefinitionError(at(`args[${i}].name`), `must be an identifier, got ${JSON.stringify(a?.name)}`);
    if (seen.has(a.name)) throw new FeatureFunctionDefinitionError(at(`args[${i}].name`), `duplicate argument '${a.name}'`);
    seen.add(a.name);
    if (!ARG_TYPES.includes(a.type)) throw new FeatureFunctionDefinitionError(at(`args[${i}].type`), `must be one of ${ARG_TYPES.join(', ')}, got ${JSON.stringify(a.type)}`);
  });
  if (d.returns !== 'double') throw new FeatureFunctionDefinitionError(at('returns'), `must be 'double' (a feature is a number), got ${JSON.stringify(d.returns)}`);
  for (const k of ['deterministic', 'sideEffects'] as const) {
    if (typeof d[k] !== 'boolean') throw new FeatureFunctionDefinitionError(at(k), 'must be declared true or false (exactly-once holds only for deterministic functions without side effects)');
  }
  if (typeof d.compute !== 'function') throw new FeatureFunctionDefinitionError(at('compute'), 'must be a function (...args) => number | null');
  if (d.python !== undefined && (typeof d.python !== 'string' || !parsePythonRef(d.python))) throw new FeatureFunctionDefinitionError(at('python'), `must be './file.py:function' (relative to the plugin file), got ${JSON.stringify(d.python)}`);
  const defined = { ...declaration, args: Object.freeze(d.args.map((a) => Object.freeze({ name: a.name, type: a.type }))) };
  Object.defineProperty(defined, FUNCTION_BRAND, { value: true });
  return Object.freeze(defined);
}

export function isDefinedFeatureFunction(value: unknown): value is DefinedFeatureFunction {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[FUNCTION_BRAND] === true;
}

/** Thrown (per event) when a function returns something other than a number or null; the stage dead-letters the event. */
export class FeatureFunctionResultError extends Error {
  constructor(name: string, got: unknown) {
    super(`feature function '${name}' returned ${typeof got === 'object' ? JSON.stringify(got) ?? 'an object' : `a ${typeof got}`} (${String(got)}); it must return a number or null`);
    this.name = 'FeatureFunctionResultError';
  }
}

/** A Python twin as python/tributary_features takes it (`functions={name: {...}}`). */
export interface PythonTwinRef {
  /** `/abs/file.py:function`. */
  twin: string;
  /** Declared argument types, so the Python side converts arguments as the TypeScript side does. */
  args: FeatureFunctionArgType[];
}

/** The Python twins of a catalog (functions without one are left out: they are serving-only). */
export function pythonTwins(catalog: FeatureFunctionCatalog): Record<string, PythonTwinRef> {
  const out: Record<string, PythonTwinRef> = {};
  for (const [name, f] of catalog) if (f.python) out[name] = { twin: `${f.python.file}:${f.python.function}`, args: f.definition.args.map((a) => a.type) };
  return out;
}
