/**
 * Loads a declarative feature-definitions file: YAML structure (JSON Schema), then every expression
 * against the input Avro schema (check.ts), then one compiled function (compile.ts). The result is
 * the stateless base of an extraction stage's vector, versioned by the file's `version` and the
 * hash of its bytes.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import Ajv from 'ajv';
import type { Type } from 'avsc';
import { parseDocument } from 'yaml';
import { fieldGetter } from '../../util/field-path';
import { SchemaCatalog, packageSchemasDir } from '../../kafka/avro-schemas';
import { checkDefinitions, DefinitionsError, type CheckedDefinitions, type DefinitionProblem } from './check';
import { compileDefinitions, type FeatureBuffer } from './compile';
import type { FeatureFunctionCatalog } from './functions';
import { tzdbVersion } from './runtime';
import { definitionsFileSchema, type FeatureDefinitions } from './spec';

/** Hex characters of the sha256 of the file's bytes recorded as the definitions hash. */
export const HASH_HEX_CHARS = 16;

/** A compiled stateless feature set. */
export interface DeclarativeFeatureSet {
  readonly set: string;
  readonly version: number;
  /** First 16 hex characters of the sha256 of the definitions file's bytes. */
  readonly hash: string;
  readonly file: string;
  readonly names: readonly string[];
  /** Number of features (= names.length). */
  readonly size: number;
  readonly definitions: FeatureDefinitions;
  readonly checked: CheckedDefinitions;
  /** The IANA time-zone database of this runtime (recorded; see SEMANTICS.md). */
  readonly tzdb: string;
  /** Features of one event, in `names` order. */
  extract(event: unknown): number[];
  /** Writes the features of `event` to out[offset .. offset + names.length) (e.g. row i of a batch at offset i * size). */
  extractInto<T extends FeatureBuffer>(event: unknown, out: T, offset: number): T;
  /** The event time (ms) per `eventTime`, or undefined when the definitions name none / the field is null. */
  eventTimeOf(event: unknown): number | undefined;
  /** The key per `key`, or undefined. */
  keyOf(event: unknown): string | undefined;
  /** Generated source of the compiled functions (extractInto, then extract). */
  readonly source: string;
}

/** Problems of a definitions file, each with its path inside the file. */
export class FeatureDefinitionsError extends Error {
  constructor(
    readonly file: string,
    readonly problems: DefinitionProblem[],
  ) {
    super(`${file}: ${problems.map((p) => `${p.path || '(root)'}: ${p.message}`).join('; ')}`);
    this.name = 'FeatureDefinitionsError';
  }
}

const ajv = new Ajv({ allErrors: true, strict: false });
const validateStructure = ajv.compile(definitionsFileSchema);

function pointerToPath(pointer: string): string {
  return pointer
    .split('/')
    .slice(1)
    .reduce((acc, part) => (/^\d+$/.test(part) ? `${acc}[${part}]` : acc ? `${acc}.${part}` : part), '');
}

/** Parses and structure-checks a definitions document (YAML text). */
export function parseDefinitions(text: string, file: string): FeatureDefinitions {
  const doc = parseDocument(text);
  if (doc.errors.length > 0) throw new FeatureDefinitionsError(file, doc.errors.map((e) => ({ path: '', message: `YAML syntax: ${e.message}` })));
  const raw: unknown = doc.toJS();
  if (!validateStructure(raw)) {
    const problems = (validateStructure.errors ?? [])
      .filter((e) => e.keyword !== 'oneOf' && e.keyword !== 'not')
      .map((e) => {
        const params = e.params as Record<string, unknown>;
        const extra = e.keyword === 'required' ? `.${String(params.missingProperty)}` : e.keyword === 'additionalProperties' ? `.${String(params.additionalProperty)}` : '';
        const message = e.keyword === 'required' ? 'is required' : e.keyword === 'additionalProperties' ? 'is not a known field' : e.message ?? 'is invalid';
        return { path: `${pointerToPath(e.instancePath)}${extra}`.replace(/^\./, ''), message };
      });
    const oneOf = (validateStructure.errors ?? []).find((e) => e.keyword === 'oneOf');
    if (oneOf) problems.push({ path: pointerToPath(oneOf.instancePath), message: 'a feature has either expr (and optional default) or oneHot' });
    throw new FeatureDefinitionsError(file, problems);
  }
  return raw as FeatureDefinitions;
}

export interface LoadOptions {
  /** Input record type; default: `<definitions.input>.avsc` found in `schemaSources`. */
  schema?: Type;
  /** Name of the input schema (checked against `input:` when both are known). */
  schemaName?: string;
  /**
   * Folders of `.avsc` files (or single `.avsc` files) searched for the input schema when `schema` is
   * not given, before the package's schemas/ — e.g. an example's schemas folder. A topology's
   * extraction stage passes the input topic's type instead.
   */
  schemaSources?: readonly string[];
  /** Plugin feature functions the expressions may call (a topology's plugins; src/stages/plugin-loader.ts). */
  functions?: FeatureFunctionCatalog;
}

/** Loads, checks and compiles a definitions file. Throws FeatureDefinitionsError with every problem. */
export function loadFeatureDefinitions(file: string, options: LoadOptions = {}): DeclarativeFeatureSet {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (err) {
    throw new FeatureDefinitionsError(file, [{ path: '', message: `cannot read: ${(err as Error).message}` }]);
  }
  const defs = parseDefinitions(bytes.toString('utf8'), file);
  if (options.schemaName && defs.input && defs.input !== options.schemaName) {
    throw new FeatureDefinitionsError(file, [{ path: 'input', message: `definitions are for schema '${defs.input}', the input topic carries '${options.schemaName}'` }]);
  }
  let schema = options.schema;
  if (!schema) {
    if (!defs.input) throw new FeatureDefinitionsError(file, [{ path: 'input', message: 'is required when no input schema is given' }]);
    const [first = packageSchemasDir(), ...rest] = options.schemaSources ?? [];
    const catalog = new SchemaCatalog(first, [...rest, packageSchemasDir()]);
    if (!catalog.has(defs.input)) throw new FeatureDefinitionsError(file, [{ path: 'input', message: `no schema '${defs.input}' (no ${defs.input}.avsc in ${catalog.searched.join(', ')}; pass the folder of the input schema)` }]);
    schema = catalog.get(defs.input).type;
  }
  return buildFeatureSet(defs, schema, file, createHash('sha256').update(bytes).digest('hex').slice(0, HASH_HEX_CHARS), options.functions);
}

/** Checks and compiles already-parsed definitions (tests, generated definitions); `hash` as recorded. */
export function buildFeatureSet(defs: FeatureDefinitions, schema: Type, file: string, hash: string, functions?: FeatureFunctionCatalog): DeclarativeFeatureSet {
  let checked: CheckedDefinitions;
  try {
    checked = checkDefinitions(defs, schema, functions);
  } catch (err) {
    if (err instanceof DefinitionsError) throw new FeatureDefinitionsError(file, err.problems);
    throw err;
  }
  const compiled = compileDefinitions(checked);
  const { extractInto, extract } = compiled;
  const source = `${compiled.source}\n${compiled.extractSource}`;
  const width = checked.names.length;
  const timeOf = defs.eventTime ? fieldGetter(defs.eventTime) : undefined;
  const keyGet = defs.key ? fieldGetter(defs.key) : undefined;
  return {
    set: defs.featureSet,
    version: defs.version,
    hash,
    file,
    names: Object.freeze([...checked.names]),
    size: width,
    definitions: defs,
    checked,
    tzdb: tzdbVersion(),
    source,
    extract,
    extractInto: extractInto as DeclarativeFeatureSet['extractInto'],
    eventTimeOf: (event) => {
      const v = timeOf?.(event);
      return typeof v === 'number' ? v : undefined;
    },
    keyOf: (event) => {
      const v = keyGet?.(event);
      return v === undefined || v === null ? undefined : String(v);
    },
  };
}
