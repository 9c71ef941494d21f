import fc from 'fast-check';
import { decode } from '@msgpack/msgpack';
import { decodeStoredVector, encodeStoredVector, writeStoredVector } from '../../src/features/stored-vector';
import { PackWriter } from '../../src/features/pack-writer';

describe('stored vectors (what a replayed offset is scored from)', () => {
  it('read back to the same bits, whatever the values', () => {
    fc.assert(
      fc.property(fc.boolean(), fc.array(fc.double({ noNaN: true }), { minLength: 1, maxLength: 12 }), (late, values) => {
        const back = decodeStoredVector(encodeStoredVector(late, values));
        expect(back.late).toBe(late);
        expect(back.values).toHaveLength(values.length);
        // Object.is: -0 stays -0, and every finite double its exact bits.
        back.values.forEach((v, i) => expect(Object.is(v, values[i])).toBe(true));
      }),
      { numRuns: 500 },
    );
  });

  it('writes as bytes the very text it encodes (the commit writes them so)', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.boolean(), fc.array(fc.double(), { maxLength: 12 })), { maxLength: 6 }), fc.constantFrom(1, 4096), (vectors, initial) => {
        const w = new PackWriter(initial);
        const m = w.openStr();
        for (const [late, values] of vectors) writeStoredVector(w, late, values);
        w.closeStr(m);
        expect(decode(w.take())).toBe(vectors.map(([late, values]) => encodeStoredVector(late, values)).join(''));
      }),
      { numRuns: 500 },
    );
  });

  it('still reads the text form an older version stored, to the same numbers', () => {
    fc.assert(
      // The window state never computes -0 (numericValue and psum add +0), which the text form reads as 0.
      fc.property(fc.boolean(), fc.array(fc.double({ noNaN: true }).map((v) => v + 0), { minLength: 1, maxLength: 8 }), (late, values) => {
        const legacy = `${late ? 1 : 0}:${values.join(',')}`;
        const back = decodeStoredVector(legacy);
        expect(back.late).toBe(late);
        expect(back.values).toEqual(values.map((v) => Number(String(v))));
        expect(decodeStoredVector(encodeStoredVector(late, values)).values).toEqual(back.values);
      }),
    );
  });

  it('refuses text in no known form, naming it', () => {
    expect(() => decodeStoredVector('1|3,4')).toThrow(/'1\|3,4' is in no known form/);
    expect(() => decodeStoredVector('0~AAAA')).toThrow(/not a whole number of float64 values/);
  });
});
