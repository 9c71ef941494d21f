import * as avro from 'avsc';

/**
 * An Avro writer type that caches the encoding of string arrays repeating record after record. A
 * feature vector carries its feature names in every record — the same frozen array for every vector
 * of a set version — and writing them string by string was ~4 % of a stateless pipeline's main
 * thread at 8,000 events/s (BENCHMARKS.md item 15). Only frozen arrays are cached (by identity): a
 * frozen array cannot change, so its bytes cannot either. Anything else is written as avsc writes it.
 *
 * avsc builds the type (its `typeHook` puts CachedStringArrayType in place of each array of
 * strings); the subclass overrides `_write`, which avsc's compiled record writers call for each
 * field, and appends cached bytes with `Tap.writeFixed`. Both are avsc internals (pinned by
 * package-lock): test/unit/avro.test.ts compares every byte with plain avsc, so a change there fails
 * the tests rather than the data.
 */

/** The avsc internals used here. */
interface Tap {
  buf: Buffer;
  pos: number;
  writeFixed(buf: Buffer, len: number): void;
}
interface InternalArrayType {
  _write(tap: Tap, value: unknown): void;
}

/** The last frozen array each type wrote, and its bytes (avsc freezes type instances: the state lives here). */
const lastWritten = new WeakMap<object, { value: unknown; bytes: Buffer }>();

class CachedStringArrayType extends avro.types.ArrayType {
  _write(tap: Tap, value: unknown): void {
    const last = lastWritten.get(this);
    if (last !== undefined && last.value === value) {
      tap.writeFixed(last.bytes, last.bytes.length);
      return;
    }
    const start = tap.pos;
    (avro.types.ArrayType.prototype as unknown as InternalArrayType)._write.call(this, tap, value);
    // Cache only what was written whole (past the buffer's end the caller retries with a larger one).
    if (Object.isFrozen(value) && tap.pos <= tap.buf.length) lastWritten.set(this, { value, bytes: Buffer.from(tap.buf.subarray(start, tap.pos)) });
  }
}

function isStringArray(schema: avro.Schema): boolean {
  if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) return false;
  const s = schema as { type?: unknown; items?: unknown };
  return s.type === 'array' && (s.items === 'string' || (typeof s.items === 'object' && s.items !== null && (s.items as { type?: unknown }).type === 'string' && !('logicalType' in s.items)));
}

/** The type of `schema` (JSON) for writing: the same encoding as avsc's, frozen string arrays written once. */
export function writerType(schema: avro.Schema): avro.Type {
  return avro.Type.forSchema(schema, {
    typeHook: (s, opts) => (isStringArray(s) ? new CachedStringArrayType(s, opts) : undefined),
  });
}
