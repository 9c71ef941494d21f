import fc from 'fast-check';
import { decodeStoredVector, encodeStoredVector } from '../../src/features/stored-vector';

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
