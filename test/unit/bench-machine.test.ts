import * as fs from 'node:fs';
import { cpuFacts, describeCpu } from '../../bench/src/machine';

describe('the bench records which CPU it ran on', () => {
  it('names the model with its clock and cache', () => {
    expect(describeCpu({ cpuModel: 'Intel(R) Xeon(R) Processor', cpuMHz: 2600, cacheKB: 491520 })).toBe('Intel(R) Xeon(R) Processor, 2600 MHz, 480 MB cache');
    expect(describeCpu({ cpuModel: 'AMD EPYC' })).toBe('AMD EPYC');
  });

  it('reads clock and cache from /proc/cpuinfo where it states them', () => {
    const facts = cpuFacts();
    expect(facts.cpuModel.length).toBeGreaterThan(0);
    const info = fs.existsSync('/proc/cpuinfo') ? fs.readFileSync('/proc/cpuinfo', 'utf8') : '';
    const cache = /^cache size\s*:\s*(\d+) KB$/m.exec(info);
    if (cache) expect(facts.cacheKB).toBe(Number(cache[1]));
    else expect(facts.cacheKB).toBeUndefined();
    if (/^cpu MHz\s*:/m.test(info)) expect(facts.cpuMHz).toBeGreaterThan(0);
  });
});
