import fc from 'fast-check';
import { decode } from '@msgpack/msgpack';
import { packStrings, type StringTree } from '../../src/features/pack-strings';

// The streaming commit sends its entity writes through packStrings and stream-commit.lua decodes
// them as MessagePack: any standard reader must get the same strings and nesting back.
const tree: fc.Arbitrary<StringTree> = fc.letrec((tie) => ({
  node: fc.oneof({ depthSize: 'small', withCrossShrink: true }, fc.oneof(fc.string(), fc.string({ unit: 'grapheme', maxLength: 120 }), fc.string({ minLength: 20000, maxLength: 30000 })), fc.array(tie('node'), { maxLength: 20 })),
})).node as fc.Arbitrary<StringTree>;

describe('packStrings', () => {
  it('decodes to the same strings and arrays with a standard MessagePack reader', () => {
    fc.assert(
      fc.property(tree, (v) => {
        expect(decode(packStrings(v))).toEqual(v);
      }),
      { numRuns: 300 },
    );
  });

  it('uses array16 and str16/str32 headers past the small forms', () => {
    const many = Array.from({ length: 70_000 }, (_, i) => String(i % 7));
    const long = 'é'.repeat(30_000); // 60,000 bytes, bound 90,000: str32 header
    const packed = packStrings([many, long, 'x'.repeat(100)]);
    expect(packed[0]).toBe(0x93);
    expect(packed[1]).toBe(0xdd); // 70,000 elements: array32
    expect(decode(packed)).toEqual([many, long, 'x'.repeat(100)]);
  });
});
