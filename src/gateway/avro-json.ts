import * as avro from 'avsc';

/**
 * JSON ⇄ Avro for the gateway: request bodies are plain JSON (nullable unions written as the value
 * or null, bytes as base64, missing fields with defaults filled in); responses are Avro values made
 * JSON-safe. The JSON Schema of a type (for /openapi.json and the playground's form) follows the
 * same rules, so what the document promises is what the validator accepts.
 */

/** One field of an event that does not match the schema: its path (src/util/field-path.ts syntax) and what was expected. */
export interface FieldProblem {
  path: string;
  expected: string;
}

export type JsonSchema = Record<string, unknown>;

/** The largest magnitude avsc accepts for a long given as a JS number (2^53 - 2). */
const SAFE_LONG = 9007199254740990;

type UnionType = avro.types.UnwrappedUnionType | avro.types.WrappedUnionType;
function isUnion(t: avro.Type): t is UnionType {
  return t instanceof avro.types.UnwrappedUnionType || t instanceof avro.types.WrappedUnionType;
}
function docOf(f: avro.types.Field): string | undefined {
  return (f as unknown as { doc?: string }).doc;
}

function typeLabel(t: avro.Type): string {
  const logical = t.schema({ exportAttrs: true }) as unknown as { logicalType?: string } | string;
  if (isUnion(t)) return t.types.map(typeLabel).join(' | ');
  if (t instanceof avro.types.EnumType) return `one of ${t.symbols.join(', ')}`;
  if (t instanceof avro.types.ArrayType) return `array of ${typeLabel(t.itemsType)}`;
  if (t instanceof avro.types.MapType) return `map of ${typeLabel(t.valuesType)}`;
  if (t instanceof avro.types.RecordType) return `record ${t.name ?? ''}`.trim();
  return (typeof logical === 'object' && logical.logicalType) || t.typeName;
}

/** The nullable union's other branch, or null when `t` is not [null, X]. */
function nullableBranch(t: UnionType): avro.Type | null {
  if (t.types.length !== 2) return null;
  const [a, b] = t.types;
  if (a.typeName === 'null') return b;
  if (b.typeName === 'null') return a;
  return null;
}

/**
 * Converts a parsed JSON body into the Avro value of `type` and validates it: every problem is
 * reported with its field path, nothing is thrown. Extra fields are problems too (a typo must not
 * silently become a default).
 */
export function jsonToAvro(type: avro.Type, json: unknown): { value: unknown; problems: FieldProblem[] } {
  const problems: FieldProblem[] = [];
  const value = convert(type, json, [], problems);
  const reported = new Set(problems.map((p) => p.path));
  type.isValid(value, {
    noUndeclaredFields: true,
    errorHook: (p: string[], _v: unknown, t: avro.Type) => {
      const at = p.join('.') || '(root)';
      if (at === '(root)' && problems.length > 0) return; // an undeclared field, already named
      if (![...reported].some((r) => r === at || r.startsWith(`${at}.`))) problems.push({ path: at, expected: typeLabel(t) });
    },
  });
  return { value, problems };
}

function convert(type: avro.Type, json: unknown, at: string[], problems: FieldProblem[]): unknown {
  const here = () => at.join('.') || '(root)';
  if (type instanceof avro.types.RecordType) {
    if (typeof json !== 'object' || json === null || Array.isArray(json)) {
      problems.push({ path: here(), expected: typeLabel(type) });
      return json;
    }
    const obj = json as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    for (const f of type.fields) {
      if (obj[f.name] === undefined) {
        const d = f.defaultValue();
        if (d === undefined) problems.push({ path: [...at, f.name].join('.'), expected: `${typeLabel(f.type)} (required)` });
        else out[f.name] = d;
        continue;
      }
      out[f.name] = convert(f.type, obj[f.name], [...at, f.name], problems);
    }
    for (const k of Object.keys(obj)) if (!type.fields.some((f) => f.name === k)) problems.push({ path: [...at, k].join('.'), expected: 'no such field' });
    return out;
  }
  if (isUnion(type)) {
    if (json === null) return null;
    const branch = nullableBranch(type);
    return branch ? convert(branch, json, at, problems) : json;
  }
  if (type instanceof avro.types.ArrayType) {
    if (!Array.isArray(json)) {
      problems.push({ path: here(), expected: typeLabel(type) });
      return json;
    }
    return json.map((x, i) => convert(type.itemsType, x, [...at, String(i)], problems));
  }
  if (type instanceof avro.types.MapType) {
    if (typeof json !== 'object' || json === null || Array.isArray(json)) {
      problems.push({ path: here(), expected: typeLabel(type) });
      return json;
    }
    return Object.fromEntries(Object.entries(json).map(([k, v]) => [k, convert(type.valuesType, v, [...at, k], problems)]));
  }
  if (type.typeName === 'bytes' || type.typeName === 'fixed') {
    if (typeof json !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(json)) {
      problems.push({ path: here(), expected: `${type.typeName} as base64` });
      return json;
    }
    return Buffer.from(json, 'base64');
  }
  return json;
}

/** An Avro value as JSON (Buffers as base64). */
export function avroToJson(value: unknown): unknown {
  if (Buffer.isBuffer(value)) return value.toString('base64');
  if (Array.isArray(value)) return value.map(avroToJson);
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, avroToJson(v)]));
  if (typeof value === 'bigint') return Number(value);
  return value;
}

/** OpenAPI 3.0 schema (a JSON Schema dialect) of an Avro type, as the gateway accepts and returns it. */
export function jsonSchemaOf(type: avro.Type): JsonSchema {
  const attrs = type.schema({ exportAttrs: true }) as unknown as { doc?: string; logicalType?: string };
  const doc = typeof attrs === 'object' && attrs && attrs.doc ? { description: attrs.doc } : {};
  if (type instanceof avro.types.RecordType) {
    return {
      type: 'object',
      ...doc,
      properties: Object.fromEntries(type.fields.map((f) => [f.name, { ...jsonSchemaOf(f.type), ...(docOf(f) ? { description: docOf(f) } : {}) }])),
      required: type.fields.filter((f) => f.defaultValue() === undefined).map((f) => f.name),
      additionalProperties: false,
    };
  }
  if (isUnion(type)) {
    const branch = nullableBranch(type);
    if (branch) return { ...jsonSchemaOf(branch), nullable: true };
    return { oneOf: type.types.map(jsonSchemaOf) };
  }
  if (type instanceof avro.types.ArrayType) return { type: 'array', items: jsonSchemaOf(type.itemsType) };
  if (type instanceof avro.types.MapType) return { type: 'object', additionalProperties: jsonSchemaOf(type.valuesType) };
  if (type instanceof avro.types.EnumType) return { type: 'string', enum: [...type.symbols] };
  switch (type.typeName) {
    case 'string':
      return { type: 'string' };
    case 'boolean':
      return { type: 'boolean' };
    case 'int':
      return { type: 'integer', format: 'int32', minimum: -2147483648, maximum: 2147483647 };
    case 'long':
      // JSON numbers are doubles: longs are accepted within the range avsc encodes exactly.
      return { type: 'integer', format: 'int64', minimum: -SAFE_LONG, maximum: SAFE_LONG, ...(attrs?.logicalType ? { description: `${attrs.logicalType} (ms since the epoch)` } : {}) };
    case 'float':
    case 'double':
      return { type: 'number', format: type.typeName };
    case 'bytes':
    case 'fixed':
      return { type: 'string', format: 'byte' };
    case 'null':
      return { nullable: true, enum: [null] };
    default:
      return {};
  }
}
