/**
 * The stateless base of an extraction stage's vector: declarative feature definitions
 * (src/features/declarative) loaded from the file the stage names, checked against the Avro schema
 * of the stage's input topic. Compiled sets are cached per (file bytes, input schema), so the
 * loader's validation, version sync and the running stage compile each file once.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Type } from 'avsc';
import type { FeatureFunctionCatalog } from './declarative/functions';
import { loadFeatureDefinitions, type DeclarativeFeatureSet } from './declarative/load';
import type { FeatureSetRef } from './declarative/spec';

/** A stateless feature extractor: one input event -> one vector of named features. */
export type FeatureExtractor = DeclarativeFeatureSet;

export interface InputSchemaRef {
  /** Avro schema name (file stem in schemas/) of the stage's input topic. */
  name: string;
  type: Type;
}

const cache = new Map<string, DeclarativeFeatureSet>();
const functionKeys = new WeakMap<FeatureFunctionCatalog, string>();
const computeIds = new WeakMap<object, number>();
/** A stable id per compute function object (a reloaded plugin gets a new one). */
function computeId(f: object): number {
  let id = computeIds.get(f);
  if (id === undefined) {
    id = nextId++;
    computeIds.set(f, id);
  }
  return id;
}
let nextId = 1;

/**
 * Loads (or reuses) the compiled definitions `ref.file` (relative to `baseDir`) for events of `input`,
 * calling the topology's plugin feature `functions`. Throws FeatureDefinitionsError.
 */
export function createExtractor(ref: FeatureSetRef, baseDir: string, input: InputSchemaRef, functions: FeatureFunctionCatalog = new Map()): FeatureExtractor {
  const file = path.resolve(baseDir, ref.file);
  let digest = '';
  try {
    digest = createHash('sha256').update(fs.readFileSync(file)).digest('hex');
  } catch {
    /* reported by the loader, with the path */
  }
  // Functions by name and the object that computes them: a topology with other plugins compiles anew.
  let fnKey = functionKeys.get(functions);
  if (fnKey === undefined) {
    fnKey = [...functions].map(([name, f]) => `${name}@${f.pluginFile}#${computeId(f.definition.compute)}`).sort().join(',');
    functionKeys.set(functions, fnKey);
  }
  const key = `${file}\u0000${input.name}\u0000${digest}\u0000${fnKey}`;
  let set = cache.get(key);
  if (!set) {
    set = loadFeatureDefinitions(file, { schema: input.type, schemaName: input.name, functions });
    if (cache.size > 64) cache.clear();
    cache.set(key, set);
  }
  return set;
}
