/**
 * MessagePack of nested arrays of strings — the one shape stream-commit.lua unpacks (cmsgpack, in
 * C) — written straight into one Buffer. A general encoder dispatches on every value's type and
 * grows its buffer as it goes; this one knows the shape, sizes the buffer once from an upper
 * bound and lets Buffer#write do the UTF-8 (in C++). The commit encodes every changed entity of a
 * chunk this way, so it is on the per-event path.
 */
export type StringTree = string | readonly StringTree[];

/** Upper bound of the encoded size: each string at most 3 bytes per UTF-16 unit, plus 5-byte headers. */
function bound(v: StringTree): number {
  if (typeof v === 'string') return 5 + 3 * v.length;
  let n = 5;
  for (const x of v) n += bound(x);
  return n;
}

function write(v: StringTree, buf: Buffer, off: number): number {
  if (typeof v === 'string') {
    // The header's size follows from the string's largest possible byte length; msgpack readers
    // accept a str8/str16 header for a string that would fit a smaller one.
    const max = 3 * v.length;
    if (max < 32) {
      const n = buf.write(v, off + 1);
      buf[off] = 0xa0 | n;
      return off + 1 + n;
    }
    if (max < 256) {
      const n = buf.write(v, off + 2);
      buf[off] = 0xd9;
      buf[off + 1] = n;
      return off + 2 + n;
    }
    if (max < 65536) {
      const n = buf.write(v, off + 3);
      buf[off] = 0xda;
      buf.writeUInt16BE(n, off + 1);
      return off + 3 + n;
    }
    const n = buf.write(v, off + 5);
    buf[off] = 0xdb;
    buf.writeUInt32BE(n, off + 1);
    return off + 5 + n;
  }
  const len = v.length;
  if (len < 16) buf[off++] = 0x90 | len;
  else if (len < 65536) {
    buf[off] = 0xdc;
    buf.writeUInt16BE(len, off + 1);
    off += 3;
  } else {
    buf[off] = 0xdd;
    buf.writeUInt32BE(len, off + 1);
    off += 5;
  }
  for (const x of v) off = write(x, buf, off);
  return off;
}

/** The MessagePack encoding of `v` (arrays and str families only). */
export function packStrings(v: StringTree): Buffer {
  const buf = Buffer.allocUnsafe(bound(v));
  const end = write(v, buf, 0);
  return buf.subarray(0, end);
}
