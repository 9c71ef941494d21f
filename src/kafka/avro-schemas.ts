import * as fs from 'node:fs';
import * as path from 'node:path';
import * as avro from 'avsc';
import { TributaryError } from '../util/errors';
import { repoRoot } from '../util/paths';

/** A schema from a schemas/ folder: its name (file stem), the parsed avsc type and the canonical JSON text. */
export interface LocalSchema {
  name: string;
  file: string;
  type: avro.Type;
  text: string;
}

export class SchemaNotFoundError extends TributaryError {}

/** The package's own schemas (dead letters, feature vectors, predictions, ...): every pipeline may use them. */
export function packageSchemasDir(): string {
  return path.join(repoRoot(), 'schemas');
}

/** What a topology contributes to its schema catalog (structural, so this layer imports no topology types). */
export interface SchemaSourcesOf {
  baseDir: string;
  spec: { schemas?: readonly string[] };
}

/**
 * Where a topology's topic schemas come from, first match wins: `schemas/` in its base directory,
 * then each `schemas:` entry of the topology (a folder of `<name>.avsc` files or one `.avsc` file,
 * relative to the base directory), then the package's schemas/. The one rule every stage, the
 * backfill, the gateway, the shadow report and the CLI use (src/stages/load-topology.ts checks
 * that each entry exists, with its field path, before anything runs).
 */
export function topologySchemaSources(topology: SchemaSourcesOf): string[] {
  return [path.join(topology.baseDir, 'schemas'), ...(topology.spec.schemas ?? []).map((s) => path.resolve(topology.baseDir, s))];
}

/** The schema catalog of a loaded topology (see topologySchemaSources). */
export function topologySchemas(topology: SchemaSourcesOf): SchemaCatalog {
  const [first, ...rest] = topologySchemaSources(topology);
  return new SchemaCatalog(first, [...rest, packageSchemasDir()]);
}

/**
 * Reads Avro schemas, once each, from a list of sources searched in order: folders of
 * `<name>.avsc` files, or single `.avsc` files (named by their stem). By default the package's
 * schemas/ comes last, so a pipeline carries only its own event schemas.
 */
export class SchemaCatalog {
  private readonly cache = new Map<string, LocalSchema>();
  private readonly sources: string[];

  constructor(readonly dir: string, fallbackDirs: readonly string[] = [packageSchemasDir()]) {
    this.sources = [path.resolve(dir), ...fallbackDirs.map((d) => path.resolve(d))].filter((d, i, all) => all.indexOf(d) === i);
  }

  /** The folders and files searched, in order (for error messages). */
  get searched(): readonly string[] {
    return this.sources;
  }

  has(name: string): boolean {
    return this.fileOf(name) !== undefined;
  }

  get(name: string): LocalSchema {
    const cached = this.cache.get(name);
    if (cached) return cached;
    const file = this.fileOf(name);
    if (!file) {
      throw new SchemaNotFoundError(`no Avro schema '${name}' (looked for ${name}.avsc in ${this.sources.join(', ')})`);
    }
    const json: unknown = JSON.parse(fs.readFileSync(file, 'utf8'));
    const type = avro.Type.forSchema(json as avro.Schema);
    const schema: LocalSchema = { name, file, type, text: JSON.stringify(json) };
    this.cache.set(name, schema);
    return schema;
  }

  names(): string[] {
    const names = this.sources.flatMap((s) => {
      if (isSchemaFile(s)) return fs.existsSync(s) ? [path.basename(s, '.avsc')] : [];
      return (fs.existsSync(s) ? fs.readdirSync(s) : []).filter((f) => f.endsWith('.avsc')).map((f) => f.slice(0, -'.avsc'.length));
    });
    return [...new Set(names)].sort();
  }

  /** The first source holding `name` (the pipeline's own before the package's); undefined when none does. */
  private fileOf(name: string): string | undefined {
    for (const s of this.sources) {
      const file = isSchemaFile(s) ? (path.basename(s, '.avsc') === name ? s : undefined) : path.join(s, `${name}.avsc`);
      if (file && fs.existsSync(file)) return file;
    }
    return undefined;
  }
}

function isSchemaFile(source: string): boolean {
  return source.endsWith('.avsc');
}
