/**
 * The text of one set's stored vector (what a replayed offset is scored from): whether the event
 * was late, and the set's values as computed when it was applied.
 *
 * Written as `<late>~<base64 of the values as little-endian float64>`: the values' exact bits, and
 * no number-to-text conversion per value (formatting five doubles as shortest round-trip text cost
 * ~2 µs per event, the largest single item of the vector's commit). Read in that form and in the
 * earlier `<late>:<v1>,<v2>,...` text, which processes of an older version wrote and a replay after
 * an upgrade still finds in Redis: both give the same numbers (String() of a double reads back to it).
 */
import { endianness } from 'node:os';
import type { PackWriter } from './pack-writer';

const LITTLE_ENDIAN = endianness() === 'LE';

/** Per value count: a float64 array and a Buffer over the same bytes, reused call after call. */
const scratch: Array<{ f: Float64Array; b: Buffer }> = [];

/** The values as little-endian float64 bytes, in a scratch Buffer reused by the next call. */
function valueBytes(values: readonly number[]): Buffer {
  const n = values.length;
  let s = scratch[n];
  if (!s) {
    const f = new Float64Array(n);
    s = scratch[n] = { f, b: Buffer.from(f.buffer, f.byteOffset, f.byteLength) };
  }
  if (LITTLE_ENDIAN) for (let i = 0; i < n; i++) s.f[i] = values[i];
  else for (let i = 0; i < n; i++) s.b.writeDoubleLE(values[i], i * 8);
  return s.b;
}

/** The stored text of a set's vector. */
export function encodeStoredVector(late: boolean, values: readonly number[]): string {
  return `${late ? 1 : 0}~${valueBytes(values).toString('base64')}`;
}

/** The bytes of the float64 array writeStoredVectorAt last read (a batch's values: one view per batch, not per event). */
let viewOf: Float64Array | undefined;
let view: Uint8Array | undefined;

/**
 * The same text as encodeStoredVector(late, values[at .. at + n]), written into `w`'s open string
 * straight from the array's bytes (little-endian machines; the others go through valueBytes).
 */
export function writeStoredVectorAt(w: PackWriter, late: boolean, values: Float64Array, at: number, n: number): void {
  w.byte(late ? 0x31 : 0x30);
  w.byte(0x7e); // '~'
  if (!LITTLE_ENDIAN) {
    const bytes = valueBytes(Array.from(values.subarray(at, at + n)));
    w.base64(bytes, 0, bytes.length);
    return;
  }
  if (viewOf !== values) {
    viewOf = values;
    view = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  }
  w.base64(view!, at * 8, n * 8);
}

/** A set's vector from its stored text (either form); throws on text that is neither. */
export function decodeStoredVector(text: string): { late: boolean; values: number[] } {
  const late = text[0] === '1';
  if (text[1] === '~') {
    const bytes = Buffer.from(text.slice(2), 'base64');
    if (bytes.length % 8 !== 0) throw new Error(`stored vector '${text}' is not a whole number of float64 values`);
    const values: number[] = new Array(bytes.length / 8);
    for (let i = 0; i < values.length; i++) values[i] = bytes.readDoubleLE(i * 8);
    return { late, values };
  }
  if (text[1] === ':') return { late, values: text.length > 2 ? text.slice(2).split(',').map(Number) : [] };
  throw new Error(`stored vector '${text}' is in no known form`);
}
