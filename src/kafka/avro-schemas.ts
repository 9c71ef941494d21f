import * as fs from 'node:fs';
import * as path from 'node:path';
import * as avro from 'avsc';
import { TributaryError } from '../util/errors';
import { repoRoot } from '../util/paths';

/** A schema from schemas/: its name (file stem), the parsed avsc type and the canonical JSON text. */
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

/**
 * Reads Avro schemas from a pipeline's schemas/ folder, once each; a name not found there is read
 * from the package's schemas/ (so a scaffolded pipeline carries only its own event schemas).
 */
export class SchemaCatalog {
  private readonly cache = new Map<string, LocalSchema>();
  private readonly dirs: string[];

  constructor(readonly dir: string, fallbackDirs: readonly string[] = [packageSchemasDir()]) {
    this.dirs = [path.resolve(dir), ...fallbackDirs.map((d) => path.resolve(d))].filter((d, i, all) => all.indexOf(d) === i);
  }

  has(name: string): boolean {
    return fs.existsSync(this.fileOf(name));
  }

  get(name: string): LocalSchema {
    const cached = this.cache.get(name);
    if (cached) return cached;
    const file = this.fileOf(name);
    if (!fs.existsSync(file)) {
      throw new SchemaNotFoundError(`no Avro schema '${name}' (expected ${file})`);
    }
    const json: unknown = JSON.parse(fs.readFileSync(file, 'utf8'));
    const type = avro.Type.forSchema(json as avro.Schema);
    const schema: LocalSchema = { name, file, type, text: JSON.stringify(json) };
    this.cache.set(name, schema);
    return schema;
  }

  names(): string[] {
    const names = this.dirs.flatMap((d) => (fs.existsSync(d) ? fs.readdirSync(d) : []).filter((f) => f.endsWith('.avsc')).map((f) => f.slice(0, -'.avsc'.length)));
    return [...new Set(names)].sort();
  }

  /** The first folder holding `name.avsc` (the pipeline's own before the package's); the pipeline's path when none does. */
  private fileOf(name: string): string {
    for (const d of this.dirs) {
      const file = path.join(d, `${name}.avsc`);
      if (fs.existsSync(file)) return file;
    }
    return path.join(this.dirs[0], `${name}.avsc`);
  }
}
