import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { summariseProfile } from '../../bench/src/profile';

/**
 * The CPU-profile summary the bench's findings quote, on a hand-made profile: three functions
 * sampled one after another, 10 s each, so a window before the profile's end keeps exactly the
 * samples taken inside it (a system's last step without the rest of its run).
 */
function writeProfile(): string {
  const frame = (functionName: string) => ({ functionName, url: 'file:///repo/dist/src/x.js', lineNumber: 0 });
  const nodes = [
    { id: 1, callFrame: frame('(root)'), children: [2, 3, 4] },
    { id: 2, callFrame: frame('early') },
    { id: 3, callFrame: frame('middle') },
    { id: 4, callFrame: frame('late') },
  ];
  // 30 samples, one per second (µs deltas; sample i is taken at the sum of the deltas up to it,
  // 1 s .. 30 s): 10 of each function, in that order.
  const samples = [...Array(10).fill(2), ...Array(10).fill(3), ...Array(10).fill(4)];
  const timeDeltas = samples.map(() => 1_000_000);
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'prof-')), 'x.cpuprofile');
  fs.writeFileSync(file, JSON.stringify({ nodes, startTime: 0, endTime: 30_000_000, samples, timeDeltas }));
  return file;
}

describe('bench profile summary', () => {
  const file = writeProfile();
  afterAll(() => fs.rmSync(path.dirname(file), { recursive: true, force: true }));
  const msOf = (s: ReturnType<typeof summariseProfile>, fn: string) => s.top.find((e) => e.fn === fn)?.selfMs ?? 0;

  it('counts every sample without a window', () => {
    const s = summariseProfile(file, 10);
    expect([msOf(s, 'early'), msOf(s, 'middle'), msOf(s, 'late')]).toEqual([10_000, 10_000, 10_000]);
  });

  it('--last FROM:TO keeps the samples taken FROM to TO seconds before the end', () => {
    const last = summariseProfile(file, 10, { fromEndS: 9.5, toEndS: 0 });
    expect([msOf(last, 'early'), msOf(last, 'middle'), msOf(last, 'late')]).toEqual([0, 0, 10_000]);
    const middle = summariseProfile(file, 10, { fromEndS: 19.5, toEndS: 10.5 });
    expect([msOf(middle, 'early'), msOf(middle, 'middle'), msOf(middle, 'late')]).toEqual([0, 9_000, 0]);
  });
});
