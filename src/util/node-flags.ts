/**
 * The Node/V8 flags a Tributary process is meant to run with, and what the running process has.
 *
 * `--max-semi-space-size=32` (MiB per semi-space; V8's default on 64-bit is 16): a pipeline
 * allocates every record it decodes, scores and encodes, and at thousands of events per second the
 * young generation fills many times a second. Each scavenge copies what is still alive — the
 * records in flight — so a larger semi-space means fewer scavenges for about the same survivors,
 * and fewer objects promoted to the old generation. Measured (BENCHMARKS.md item 18, the stateless
 * topology at 24,000 events/s, the same events through each): scavenge time 8.9 s with V8's
 * default, 3.8 s with 32, 2.8 s with 64; process CPU 84 / 68 / 63 %. Not more than 32: what a
 * stateful stage keeps (window state, the feature cache) is copied by the scavenge that meets it
 * whatever the size, so a larger young generation makes each such pause longer — the enrichment
 * microbenchmark's batch p99 rose with 64 (and a little with 32) — and 64 cost the demo ~150 MiB
 * of RSS. V8 reads the flag only at start-up (v8.setFlagsFromString is too late), so it is on the
 * `tributary` executable's first line, in the demo's npm script and docker-compose.yml, and the
 * bench starts every Tributary system with it; `node dist/cli/main.js ...` needs it given by hand
 * or in NODE_OPTIONS. The pipeline logs the value in effect ('pipeline running').
 */
export const RECOMMENDED_NODE_FLAGS: readonly string[] = Object.freeze(['--max-semi-space-size=32']);

/** V8's own maximum semi-space on 64-bit builds (MiB), used when no flag sets it. */
export const V8_DEFAULT_SEMI_SPACE_MIB = 16;

/**
 * The max semi-space (MiB) this process was started with: the last `--max-semi-space-size` in
 * NODE_OPTIONS or the process's own flags (V8 applies them in that order), else V8's default.
 */
export function semiSpaceMiB(execArgv: readonly string[] = process.execArgv, nodeOptions = process.env.NODE_OPTIONS ?? ''): { mib: number; source: 'flag' | 'default' } {
  let mib: number | undefined;
  for (const arg of [...nodeOptions.split(/\s+/), ...execArgv]) {
    const m = /^--max[-_]semi[-_]space[-_]size(?:=(\d+))?$/.exec(arg);
    if (m?.[1] !== undefined) mib = Number(m[1]);
  }
  return mib === undefined ? { mib: V8_DEFAULT_SEMI_SPACE_MIB, source: 'default' } : { mib, source: 'flag' };
}
