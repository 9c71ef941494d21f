/**
 * The one field-path syntax of Tributary: every reference into an event — declarative features,
 * `partitionBy`, streaming sets' `entity` / `of`, gateway field errors — is a dotted path of Avro
 * field names, `merchant.address.country`.
 *
 * Semantics (pinned, so that the TypeScript and Python feature implementations agree):
 * - each segment is an Avro name (`[A-Za-z_][A-Za-z0-9_]*`); there is no array indexing or escaping;
 * - a union with null (an optional field) is looked through to its single non-null branch;
 *   a null anywhere along the path makes the whole path null (not an error);
 * - a missing segment at run time (only possible for values not decoded with the declared schema)
 *   reads as undefined; validation against the schema rejects unknown names before anything runs.
 */
import type { Type } from 'avsc';

export const FIELD_PATH_PATTERN = '^[A-Za-z_][A-Za-z0-9_]*(\\.[A-Za-z_][A-Za-z0-9_]*)*$';
const FIELD_PATH_RE = new RegExp(FIELD_PATH_PATTERN);

/** A parsed field path: its text and its segments. */
export interface FieldPath {
  readonly text: string;
  readonly segments: readonly string[];
}

export class FieldPathSyntaxError extends Error {
  constructor(readonly path: string) {
    super(`'${path}' is not a field path (dotted Avro field names, e.g. merchant.country)`);
    this.name = 'FieldPathSyntaxError';
  }
}

export function parseFieldPath(text: string): FieldPath {
  if (typeof text !== 'string' || !FIELD_PATH_RE.test(text)) throw new FieldPathSyntaxError(String(text));
  return { text, segments: text.split('.') };
}

/** The value at a field path of a decoded record (null when a record along it is null, undefined when a segment is missing). */
export function fieldAt(value: unknown, path: FieldPath | readonly string[]): unknown {
  const segs = Array.isArray(path) ? (path as readonly string[]) : (path as FieldPath).segments;
  let cur = value;
  for (const seg of segs) {
    if (cur === null) return null;
    if (cur === undefined || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[seg];
  }
  return cur;
}

/** A compiled getter for one path (avoids re-splitting on every event). */
export function fieldGetter(path: FieldPath | string): (value: unknown) => unknown {
  const p = typeof path === 'string' ? parseFieldPath(path) : path;
  if (p.segments.length === 1) {
    const [a] = p.segments;
    return (v) => (v === null || v === undefined || typeof v !== 'object' ? undefined : (v as Record<string, unknown>)[a]);
  }
  return (v) => fieldAt(v, p);
}

interface AvroTypeLike {
  typeName: string;
  fields?: Array<{ name: string; type: Type }>;
  types?: Type[];
}

/** The Avro type a path leads to, with the nullability met on the way; or a problem in words. */
export type FieldPathResolution = { ok: true; type: Type; nullable: boolean } | { ok: false; problem: string };

function nonNullBranch(t: AvroTypeLike): { type: AvroTypeLike; nullable: boolean } {
  if (t.typeName.startsWith('union') && t.types) {
    const branches = t.types.filter((b) => (b as unknown as AvroTypeLike).typeName !== 'null');
    if (branches.length === 1) return { type: branches[0] as unknown as AvroTypeLike, nullable: branches.length !== t.types.length };
  }
  return { type: t, nullable: false };
}

/** Resolves a path against an Avro record type (validation at load time, with the path in the words). */
export function resolveFieldPath(type: Type, path: string): FieldPathResolution {
  let parsed: FieldPath;
  try {
    parsed = parseFieldPath(path);
  } catch (err) {
    return { ok: false, problem: (err as Error).message };
  }
  let cur = type as unknown as AvroTypeLike;
  let nullable = false;
  const segs = parsed.segments;
  for (let i = 0; i < segs.length; i++) {
    const nb = nonNullBranch(cur);
    cur = nb.type;
    nullable ||= nb.nullable;
    if (cur.typeName !== 'record' || !cur.fields) return { ok: false, problem: `'${segs.slice(0, i).join('.')}' is not a record, so it has no field '${segs[i]}'` };
    const f = cur.fields.find((x) => x.name === segs[i]);
    if (!f) return { ok: false, problem: `event has no field '${segs.slice(0, i + 1).join('.')}' (fields${i > 0 ? ` of ${segs.slice(0, i).join('.')}` : ''}: ${cur.fields.map((x) => x.name).join(', ')})` };
    cur = f.type as unknown as AvroTypeLike;
  }
  const leaf = nonNullBranch(cur);
  return { ok: true, type: leaf.type as unknown as Type, nullable: nullable || leaf.nullable };
}

/** Avro type names whose values can key a partition or an entity (string, number, boolean, enum). */
export const KEYABLE_TYPE_NAMES: readonly string[] = ['string', 'int', 'long', 'boolean', 'enum', 'timestamp-millis', 'timestamp-micros', 'uuid'];

/** Problem with a path used as an entity / partition key (null when it names a keyable field). */
export function keyFieldProblem(type: Type, path: string): string | null {
  const r = resolveFieldPath(type, path);
  if (!r.ok) return r.problem;
  const t = r.type as unknown as AvroTypeLike;
  const name = t.typeName.startsWith('union') && t.types ? t.types.map((b) => (b as unknown as AvroTypeLike).typeName).filter((n) => n !== 'null').join(' | ') : t.typeName;
  if (!KEYABLE_TYPE_NAMES.includes(name)) return `field '${path}' is ${name}; a key must be a string, number, boolean or enum`;
  return null;
}

/** The entity key of a record as a string; null when the field is missing, null or empty. */
export function entityKey(value: unknown, path: FieldPath | readonly string[]): string | null {
  const v = fieldAt(value, path);
  if (v === undefined || v === null || v === '') return null;
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean') return String(v);
  return null;
}
