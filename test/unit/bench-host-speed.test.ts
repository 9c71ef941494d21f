import { describeHostSpeed, measureHostSpeed, randomCycle } from '../../bench/src/host-speed';

describe("the bench's host-speed probe", () => {
  it('chases one cycle through every entry (no short sub-cycle a cache could hold)', () => {
    for (const n of [2, 3, 17, 1024]) {
      const next = randomCycle(n, 12345);
      const seen = new Uint8Array(n);
      let i = 0;
      for (let k = 0; k < n; k++) {
        expect(seen[i]).toBe(0);
        seen[i] = 1;
        i = next[i];
      }
      expect(i).toBe(0); // back at the start after exactly n steps
      expect(seen.every((v) => v === 1)).toBe(true);
    }
    // seeded: the same order each time, another order for another seed
    expect(Array.from(randomCycle(64, 7))).toEqual(Array.from(randomCycle(64, 7)));
    expect(Array.from(randomCycle(64, 7))).not.toEqual(Array.from(randomCycle(64, 8)));
  });

  it('times the three workloads in nanoseconds per step; a dependent random read costs more than an ALU step', () => {
    const h = measureHostSpeed();
    for (const v of [h.aluNs, h.memoryNs, h.allocNs]) {
      expect(Number.isFinite(v)).toBe(true);
      expect(v).toBeGreaterThan(0);
    }
    expect(h.memoryNs).toBeGreaterThan(h.aluNs);
    expect(describeHostSpeed(h)).toBe(`alu ${h.aluNs} · memory ${h.memoryNs} · alloc ${h.allocNs} ns`);
  });
});
