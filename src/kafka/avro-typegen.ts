import * as avro from 'avsc';
import type { SchemaCatalog } from './avro-schemas';

/**
 * Emits TypeScript declarations for the Avro schemas of a catalog (the package's schemas/, or an
 * example's), so producers, stages and downstream consumers share one contract. Output is
 * deterministic (checked by a unit test). `origin` names the folder in the header.
 */
export function generateTypes(catalog: SchemaCatalog, origin = 'schemas'): string {
  const emitted = new Map<string, string>();
  const lines: string[] = [
    `// Generated from ${origin}/*.avsc by \`npm run gen:types\`. Do not edit by hand.`,
    '/* eslint-disable */',
    '',
  ];
  const schemaNames: string[] = [];
  for (const name of catalog.names()) {
    const { type } = catalog.get(name);
    const root = tsType(type, emitted);
    schemaNames.push(`  '${name}': ${root};`);
  }
  for (const decl of emitted.values()) lines.push(decl, '');
  lines.push(`/** Schema file name (${origin}/<name>.avsc) -> the TypeScript type of its records. */`);
  lines.push('export interface SchemaTypes {', ...schemaNames, '}', '');
  return lines.join('\n');
}

function shortName(t: avro.Type): string {
  const full = t.name ?? t.typeName;
  return full.slice(full.lastIndexOf('.') + 1);
}

function tsType(t: avro.Type, emitted: Map<string, string>): string {
  if (t instanceof avro.types.RecordType) {
    const name = shortName(t);
    if (!emitted.has(name)) {
      emitted.set(name, ''); // reserve (recursive types)
      const doc = (t.schema() as { doc?: string }).doc;
      const fields = t.fields.map((f) => {
        const fdoc = (f as unknown as { doc?: string }).doc;
        const optional = f.defaultValue() !== undefined ? '?' : '';
        return `${fdoc ? `  /** ${fdoc} */\n` : ''}  ${f.name}${optional}: ${tsType(f.type, emitted)};`;
      });
      emitted.set(name, `${doc ? `/** ${doc} */\n` : ''}export interface ${name} {\n${fields.join('\n')}\n}`);
    }
    return name;
  }
  if (t instanceof avro.types.EnumType) {
    const name = shortName(t);
    if (!emitted.has(name)) emitted.set(name, `export type ${name} = ${t.symbols.map((s) => `'${s}'`).join(' | ')};`);
    return name;
  }
  if (t instanceof avro.types.ArrayType) return `${wrap(tsType(t.itemsType, emitted))}[]`;
  if (t instanceof avro.types.MapType) return `Record<string, ${tsType(t.valuesType, emitted)}>`;
  if (t instanceof avro.types.UnwrappedUnionType || t instanceof avro.types.WrappedUnionType) {
    return t.types.map((x) => tsType(x, emitted)).join(' | ');
  }
  switch (t.typeName) {
    case 'null':
      return 'null';
    case 'boolean':
      return 'boolean';
    case 'int':
    case 'long':
    case 'float':
    case 'double':
      return 'number';
    case 'bytes':
    case 'fixed':
      return 'Buffer';
    case 'string':
      return 'string';
    default:
      // Logical types (timestamp-millis) decode to their underlying primitive: numbers here.
      return 'number';
  }
}

function wrap(s: string): string {
  return s.includes('|') ? `(${s})` : s;
}
