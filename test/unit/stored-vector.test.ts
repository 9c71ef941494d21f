import fc from 'fast-check';
import { decode } from '@msgpack/msgpack';
import { decodeStoredVector, encodeStoredVector, writeStoredVectorAt } from '../../src/features/stored-vector';
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

  it('writes as bytes, from any place of a batch\'s values, the very text it encodes (the commit writes them so)', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.boolean(), fc.array(fc.double(), { maxLength: 12 })), { maxLength: 6 }), fc.constantFrom(1, 4096), fc.nat(3), (vectors, initial, pad) => {
        // Two batches' arrays (the second a view that starts 8 bytes into its buffer), the vectors
        // laid out after `pad` values in the first and one value later in the second, the rest
        // filled with other values; read alternately, each from its own bytes and place.
        const total = pad + 1 + vectors.reduce((n, [, v]) => n + v.length, 0);
        const arrays = [new Float64Array(total).fill(-7.25), new Float64Array(total + 1).fill(3.5).subarray(1)];
        const at: number[][] = [[], []];
        let p = pad;
        for (const [, values] of vectors) {
          arrays[0].set(values, p);
          arrays[1].set(values, p + 1);
          at[0].push(p);
          at[1].push(p + 1);
          p += values.length;
        }
        const w = new PackWriter(initial);
        const m = w.openStr();
        vectors.forEach(([late, values], k) => writeStoredVectorAt(w, late, arrays[k % 2], at[k % 2][k], values.length));
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
