import fc from 'fast-check';
import { decode } from '@msgpack/msgpack';
import { PackWriter, writeTree, type StringTree } from '../../src/features/pack-writer';

// The streaming commit writes its entity writes through PackWriter and stream-commit.lua decodes
// them as MessagePack: any standard reader must get the same strings and nesting back, and a
// fragment written piece by piece must be the very text JSON.stringify gives its rows.
const tree: fc.Arbitrary<StringTree> = fc.letrec((tie) => ({
  node: fc.oneof({ depthSize: 'small', withCrossShrink: true }, fc.oneof(fc.string(), fc.string({ unit: 'grapheme', maxLength: 120 }), fc.string({ minLength: 20000, maxLength: 30000 })), fc.array(tie('node'), { maxLength: 20 })),
})).node as fc.Arbitrary<StringTree>;

const packTree = (v: StringTree, initialBytes?: number): Buffer => {
  const w = new PackWriter(initialBytes);
  writeTree(w, v);
  return w.take();
};

/** One string written piece by piece: each piece a number (as String gives it) or a text (as JSON.stringify gives it). */
const pieces = fc.array(fc.oneof(fc.double(), fc.integer(), fc.maxSafeInteger(), fc.constantFrom(0, -0, 9, 10, 99_999_999, 1e8, 1e8 + 1, 100_000_007, 1_700_000_000_007, -1_700_000_000_000, 2 ** 53 - 1, 2 ** 53, -(2 ** 53), 1e21, 123456789012345680000, 1.5e-7, NaN, Infinity), fc.string(), fc.string({ unit: 'binary' }), fc.string({ unit: 'grapheme' })), { maxLength: 40 });

describe('PackWriter', () => {
  it('decodes to the same strings and arrays with a standard MessagePack reader, whatever the starting buffer', () => {
    fc.assert(
      fc.property(tree, fc.constantFrom(1, 64, 16 * 1024), (v, initial) => {
        expect(decode(packTree(v, initial))).toEqual(v);
      }),
      { numRuns: 300 },
    );
  });

  it('writes numbers as String() and texts as JSON.stringify() does, in strings and arrays whose length is told at the end', () => {
    fc.assert(
      fc.property(fc.array(pieces, { maxLength: 30 }), fc.constantFrom(1, 256), (strings, initial) => {
        const w = new PackWriter(initial);
        const arr = w.openArray();
        for (const ps of strings) {
          const m = w.openStr();
          for (const p of ps) typeof p === 'number' ? w.number(p) : w.jsonString(p);
          w.closeStr(m);
        }
        w.closeArray(arr, strings.length);
        expect(decode(w.take())).toEqual(strings.map((ps) => ps.map((p) => (typeof p === 'number' ? String(p) : JSON.stringify(p))).join('')));
      }),
      { numRuns: 500 },
    );
  });

  it('writes any well-formed text piece by piece as its UTF-8 bytes', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.string(), fc.string({ unit: 'grapheme' }), fc.string({ unit: 'grapheme', minLength: 200, maxLength: 400 })), { maxLength: 10 }), fc.constantFrom(1, 256), (parts, initial) => {
        const w = new PackWriter(initial);
        const m = w.openStr();
        for (const p of parts) w.text(p);
        w.closeStr(m);
        expect(decode(w.take())).toBe(parts.join(''));
      }),
      { numRuns: 300 },
    );
  });

  it('writes bytes as base64 the way Buffer does, and appends another writer\'s bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.nat(10), fc.nat(10), (bytes, cutFront, cutBack) => {
        const from = Math.min(cutFront, bytes.length);
        const len = Math.max(0, bytes.length - from - cutBack);
        const inner = new PackWriter(1);
        inner.base64(bytes, from, len);
        const w = new PackWriter(1);
        const m = w.openStr();
        w.text('<');
        w.append(inner);
        w.text('>');
        w.closeStr(m);
        expect(decode(w.take())).toBe(`<${Buffer.from(bytes.subarray(from, from + len)).toString('base64')}>`);
      }),
      { numRuns: 500 },
    );
  });

  it('uses the smallest header for each length, also when the length is told at the end', () => {
    for (const n of [0, 31, 32, 255, 256, 65535, 65536]) {
      const s = 'x'.repeat(n);
      const whole = new PackWriter(8);
      whole.str(s);
      const piecewise = new PackWriter(8);
      const m = piecewise.openStr();
      piecewise.text(s);
      piecewise.closeStr(m);
      const bytes = whole.take();
      expect(piecewise.take()).toEqual(bytes);
      expect(bytes.length - n).toBe(n < 32 ? 1 : n < 256 ? 2 : n < 65536 ? 3 : 5);
      expect(decode(bytes)).toBe(s);
    }
    for (const n of [0, 15, 16, 65535, 65536]) {
      const open = new PackWriter(8);
      const m = open.openArray();
      for (let i = 0; i < n; i++) open.byte(0xc0); // nil
      open.closeArray(m, n);
      const told = new PackWriter(8);
      told.array(n);
      for (let i = 0; i < n; i++) told.byte(0xc0);
      const bytes = told.take();
      expect(open.take()).toEqual(bytes);
      expect(bytes.length - n).toBe(n < 16 ? 1 : n < 65536 ? 3 : 5);
      expect((decode(bytes) as unknown[]).length).toBe(n);
    }
  });

  it('starts each message afresh and hands out copies that later messages do not change', () => {
    const w = new PackWriter(4);
    w.str('first message');
    const first = w.take();
    w.reset();
    w.str('second');
    expect(decode(first)).toBe('first message');
    expect(decode(w.take())).toBe('second');
  });
});
