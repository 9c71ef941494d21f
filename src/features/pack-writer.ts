/**
 * MessagePack of nested arrays of strings — the one shape stream-commit.lua unpacks (cmsgpack, in
 * C) — written straight into one growable Buffer, including strings whose bytes are produced piece
 * by piece (a window fragment's JSON rows: numbers and texts written as bytes, no JS string per row,
 * per number or per concatenation). The streaming commit encodes every changed entity of a chunk
 * this way, so it is on the per-event path: building each row as JS strings and then encoding them
 * was a fifth of the enrichment path's allocations (BENCHMARKS.md item 37).
 *
 * Headers are the smallest form for the length: a string or array whose length is not known when
 * it starts gets 5 bytes reserved, and its body is moved back when it closes shorter.
 */
/** The base64 alphabet's character codes. */
const B64 = Uint8Array.from('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/', (c) => c.charCodeAt(0));

export class PackWriter {
  private buf: Buffer;
  private pos = 0;

  constructor(initialBytes = 16 * 1024) {
    this.buf = Buffer.allocUnsafe(initialBytes);
  }

  /** Starts a new message (the buffer is kept). */
  reset(): void {
    this.pos = 0;
  }

  /** Bytes written so far. */
  get length(): number {
    return this.pos;
  }

  /**
   * A copy of the message: the writer's buffer is reused by the next message while the socket may
   * still hold the previous one.
   */
  take(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.pos));
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  /** An array header for `n` elements (the elements follow). */
  array(n: number): void {
    this.ensure(5);
    const b = this.buf;
    if (n < 16) b[this.pos++] = 0x90 | n;
    else if (n < 65536) {
      b[this.pos] = 0xdc;
      b.writeUInt16BE(n, this.pos + 1);
      this.pos += 3;
    } else {
      b[this.pos] = 0xdd;
      b.writeUInt32BE(n, this.pos + 1);
      this.pos += 5;
    }
  }

  /** Starts an array whose length is told at `closeArray`; returns its mark. */
  openArray(): number {
    this.ensure(5);
    const mark = this.pos;
    this.pos += 5;
    return mark;
  }

  closeArray(mark: number, n: number): void {
    const h = n < 16 ? 1 : n < 65536 ? 3 : 5;
    this.settle(mark, h);
    const b = this.buf;
    if (h === 1) b[mark] = 0x90 | n;
    else if (h === 3) {
      b[mark] = 0xdc;
      b.writeUInt16BE(n, mark + 1);
    } else {
      b[mark] = 0xdd;
      b.writeUInt32BE(n, mark + 1);
    }
  }

  /** A whole string. */
  str(s: string): void {
    const mark = this.openStr();
    this.text(s);
    this.closeStr(mark);
  }

  /** Starts a string written piece by piece (byte, text, number, jsonString, base64); returns its mark. */
  openStr(): number {
    this.ensure(5);
    const mark = this.pos;
    this.pos += 5;
    return mark;
  }

  closeStr(mark: number): void {
    const n = this.pos - mark - 5;
    const h = n < 32 ? 1 : n < 256 ? 2 : n < 65536 ? 3 : 5;
    this.settle(mark, h);
    const b = this.buf;
    if (h === 1) b[mark] = 0xa0 | n;
    else if (h === 2) {
      b[mark] = 0xd9;
      b[mark + 1] = n;
    } else if (h === 3) {
      b[mark] = 0xda;
      b.writeUInt16BE(n, mark + 1);
    } else {
      b[mark] = 0xdb;
      b.writeUInt32BE(n, mark + 1);
    }
  }

  /** Moves the body after a 5-byte reservation at `mark` back so that its header takes `h` bytes. */
  private settle(mark: number, h: number): void {
    if (h === 5) return;
    this.buf.copyWithin(mark + h, mark + 5, this.pos);
    this.pos -= 5 - h;
  }

  /** One byte (an ASCII character code) of the open string. */
  byte(c: number): void {
    this.ensure(1);
    this.buf[this.pos++] = c;
  }

  /** Any text, as its UTF-8 bytes, into the open string (ASCII copied here; the rest by Buffer#write). */
  text(s: string): void {
    this.ensure(s.length);
    const b = this.buf;
    let p = this.pos;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) {
        this.ensure(3 * s.length);
        this.pos += this.buf.write(s, this.pos, 'utf8');
        return;
      }
      b[p++] = c;
    }
    this.pos = p;
  }

  /** The bytes of `src[from, from + len)` as standard base64 with padding (what Buffer#toString('base64') gives), into the open string. */
  base64(src: Uint8Array, from: number, len: number): void {
    this.ensure(4 * Math.ceil(len / 3));
    const b = this.buf;
    let p = this.pos;
    const end = from + len;
    let i = from;
    for (; i + 2 < end; i += 3) {
      const n = (src[i] << 16) | (src[i + 1] << 8) | src[i + 2];
      b[p++] = B64[n >>> 18];
      b[p++] = B64[(n >>> 12) & 63];
      b[p++] = B64[(n >>> 6) & 63];
      b[p++] = B64[n & 63];
    }
    if (i < end) {
      const two = i + 1 < end;
      const n = (src[i] << 16) | (two ? src[i + 1] << 8 : 0);
      b[p++] = B64[n >>> 18];
      b[p++] = B64[(n >>> 12) & 63];
      b[p++] = two ? B64[(n >>> 6) & 63] : 0x3d; // '='
      b[p++] = 0x3d;
    }
    this.pos = p;
  }

  /** Another writer's bytes so far, appended. */
  append(other: PackWriter): void {
    this.ensure(other.pos);
    other.buf.copy(this.buf, this.pos, 0, other.pos);
    this.pos += other.pos;
  }

  /**
   * The text `String(x)` gives, without making it for a safe integer: digits written directly, in
   * 32-bit integer arithmetic (a 13-digit time as two halves; a float division and remainder per
   * digit cost twice what String() does).
   */
  number(x: number): void {
    if (!Number.isSafeInteger(x)) {
      this.text(String(x));
      return;
    }
    this.ensure(17);
    let v = x;
    if (v < 0) {
      this.buf[this.pos++] = 0x2d; // '-'
      v = -v;
    }
    if (v < 1e8) {
      this.digits(v, 0);
      return;
    }
    let hi = Math.floor(v / 1e8);
    let lo = v - hi * 1e8; // exact: both below 2^53
    if (lo < 0) {
      hi--;
      lo += 1e8;
    } else if (lo >= 1e8) {
      hi++;
      lo -= 1e8;
    }
    this.digits(hi, 0);
    this.digits(lo, 8);
  }

  /** The decimal digits of v (an integer below 2^31), at least `width` of them (zero-padded). */
  private digits(v: number, width: number): void {
    let n = 1;
    for (let p = 10; p <= v; p *= 10) n++;
    if (n < width) n = width;
    const b = this.buf;
    const end = this.pos + n;
    for (let i = end - 1; i >= this.pos; i--) {
      const q = (v / 10) | 0;
      b[i] = 0x30 + v - q * 10;
      v = q;
    }
    this.pos = end;
  }

  /** The text `JSON.stringify(s)` gives: plain printable ASCII copied as it is, the rest through JSON.stringify. */
  jsonString(s: string): void {
    this.ensure(s.length + 2);
    const b = this.buf;
    const start = this.pos;
    let p = start;
    b[p++] = 0x22;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c < 0x20 || c > 0x7e || c === 0x22 || c === 0x5c) {
        // Escapes or non-ASCII: JSON's own text, as UTF-8.
        const json = JSON.stringify(s);
        this.pos = start;
        this.ensure(3 * json.length);
        this.pos += this.buf.write(json, start, 'utf8');
        return;
      }
      b[p++] = c;
    }
    b[p++] = 0x22;
    this.pos = p;
  }
}

/** Nested arrays of strings. */
export type StringTree = string | readonly StringTree[];

/** Writes a whole tree (arrays and strings). */
export function writeTree(w: PackWriter, v: StringTree): void {
  if (typeof v === 'string') {
    w.str(v);
    return;
  }
  w.array(v.length);
  for (const x of v) writeTree(w, x);
}
