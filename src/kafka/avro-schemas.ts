import * as fs from 'node:fs';
import * as path from 'node:path';
import * as avro from 'avsc';
import { TributaryError } from '../util/errors';

/** A schema from schemas/: its name (file stem), the parsed avsc type and the canonical JSON text. */
export interface LocalSchema {
  name: string;
  file: string;
  type: avro.Type;
  text: string;
}

export class SchemaNotFoundError extends TributaryError {}

/** Reads Avro schemas from the project's schemas/ folder, once each. */
export class SchemaCatalog {
  private readonly cache = new Map<string, LocalSchema>();

  constructor(readonly dir: string) {}

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
    return fs
      .readdirSync(this.dir)
      .filter((f) => f.endsWith('.avsc'))
      .map((f) => f.slice(0, -'.avsc'.length))
      .sort();
  }

  private fileOf(name: string): string {
    return path.join(this.dir, `${name}.avsc`);
  }
}
