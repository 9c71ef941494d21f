import fc from 'fast-check';
import { execFileSync } from 'node:child_process';
import { TextInterner } from '../../src/features/text-interner';
import { moduleExportsExpression } from '../helpers/transpiled';

describe('TextInterner (one string object per distinct text held by the window states)', () => {
  it('returns a text equal to the one given, and never holds more than two generations', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ maxLength: 4 }), { maxLength: 300 }), fc.integer({ min: 1, max: 20 }), (texts, max) => {
        const interner = new TextInterner(max);
        for (const t of texts) {
          expect(interner.intern(t)).toBe(t);
          expect(interner.size).toBeLessThanOrEqual(2 * max);
        }
      }),
    );
  });

  it('keeps a text that keeps coming back, and forgets one that stopped once two generations passed', () => {
    const interner = new TextInterner(3);
    interner.intern('hot');
    // Each round fills a generation with new texts while 'hot' comes back: it moves to the young one.
    for (let round = 0; round < 5; round++) {
      for (let i = 0; i < 2; i++) interner.intern(`cold-${round}-${i}`);
      interner.intern('hot');
    }
    expect(interner.size).toBeLessThanOrEqual(6);
    const held = (interner as unknown as { young: Map<string, string>; old: Map<string, string> });
    expect(held.young.has('hot') || held.old.has('hot')).toBe(true);
    expect(held.young.has('cold-0-0') || held.old.has('cold-0-0')).toBe(false);
  });

  it('shares the first string seen: 200,000 held texts of 7 values cost their pointers, not 200,000 strings', () => {
    // Strings have no identity in the language: compare the heap held with and without interning.
    // Measured in a fresh node process (its own heap, a real --expose-gc): inside a jest worker the
    // heap also holds what earlier test files left, which a later collection may free mid-measure.
    const script = `
      const { TextInterner } = ${moduleExportsExpression('src/features/text-interner.ts')};
      const heldBytes = (intern) => {
        gc(); gc();
        const before = process.memoryUsage().heapUsed;
        const held = new Array(200000);
        for (let i = 0; i < held.length; i++) held[i] = intern('merchant-' + String(i % 7).padStart(5, '0'));
        gc(); gc();
        const bytes = process.memoryUsage().heapUsed - before;
        if (new Set(held).size !== 7) throw new Error('texts changed');
        return bytes;
      };
      const interner = new TextInterner();
      const shared = heldBytes((s) => interner.intern(s));
      const separate = heldBytes((s) => s);
      process.stdout.write(JSON.stringify({ shared, separate, size: interner.size }));`;
    const out = execFileSync(process.execPath, ['--expose-gc', '-e', script], { encoding: 'utf8' });
    const { shared, separate, size } = JSON.parse(out) as { shared: number; separate: number; size: number };
    // Separate strings: ~32 bytes each plus the array's 8-byte slots; shared: the slots alone (~1.6 MB).
    expect(shared).toBeGreaterThan(0);
    expect(separate).toBeGreaterThan(3 * shared);
    expect(size).toBe(7);
  });

  it('rejects a bound that is not a positive integer', () => {
    expect(() => new TextInterner(0)).toThrow(RangeError);
    expect(() => new TextInterner(1.5)).toThrow(/positive integer/);
  });
});
