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
import * as v8 from 'node:v8';

export const RECOMMENDED_NODE_FLAGS: readonly string[] = Object.freeze(['--max-semi-space-size=32']);

/** V8's own maximum semi-space on 64-bit builds (MiB), used when no flag sets it. */
export const V8_DEFAULT_SEMI_SPACE_MIB = 16;

/**
 * The max semi-space (MiB) this process was started with: the last `--max-semi-space-size` in
 * NODE_OPTIONS or the process's own flags (V8 applies them in that order), else V8's default.
 */
export function semiSpaceMiB(execArgv: readonly string[] = process.execArgv, nodeOptions = process.env.NODE_OPTIONS ?? ''): { mib: number; source: 'flag' | 'default' } {
  const m = lastFlag(/^--max[-_]semi[-_]space[-_]size=(\d+)$/, execArgv, nodeOptions);
  return m === undefined ? { mib: V8_DEFAULT_SEMI_SPACE_MIB, source: 'default' } : { mib: Number(m[1]), source: 'flag' };
}

/** The last of the process's flags that `pattern` matches, NODE_OPTIONS first, then its own (the order V8 applies them). */
function lastFlag(pattern: RegExp, execArgv: readonly string[], nodeOptions: string): RegExpExecArray | undefined {
  let last: RegExpExecArray | undefined;
  for (const arg of [...nodeOptions.split(/\s+/), ...execArgv]) last = pattern.exec(arg) ?? last;
  return last;
}

/**
 * Allocation-site pretenuring, off in a pipeline process (`--no-allocation-site-pretenuring`).
 *
 * V8 counts, per allocation site (an object or array literal, an `Array()` call), how many of the
 * objects it made since the last scavenge were still alive at it; a site at 85 % or more is
 * switched to allocate straight into the old generation, and nothing switches it back while the old
 * generation keeps a third of what it marks (a pipeline's state and caches). A pipeline's per-batch
 * sites pass that test whenever records wait longer than the scavenge interval — the backlog at
 * start-up, any step the stage falls behind — and from then on every batch's containers are born
 * old: whatever they point to (the decoded records, vectors, outputs) is reachable from the old
 * generation at the next scavenge, so it is promoted too, and dies there. Measured on the demo at
 * 8,000 events/s (BENCHMARKS.md item 41): ~3.4 MB promoted per scavenge — everything the scavenge
 * found alive, although the full heap holds ~47 ms of records — so a mark-compact every ~3.5 s, and
 * the step's slowest 100 ms windows each overlapping one. Off, in paired runs: one every 13–27 s,
 * 4–10 % less CPU per event, the p99 lower in every round. (A full collection that keeps little —
 * after a large backlog drains — makes V8 reset every site; a process that overloads now and then
 * therefore sees less of this — likely why a capacity search's grown steps showed no difference.)
 *
 * Unlike the semi-space size, V8 reads this flag while it runs, so the pipeline sets it itself when
 * it starts (before its records' code gets hot), for every way a pipeline is started — the CLI,
 * docker-compose, an embedding process, the bench. A process given either form of the flag
 * (`--allocation-site-pretenuring` to keep V8's default) keeps what it was given.
 */
export const PIPELINE_V8_FLAGS: readonly string[] = Object.freeze(['--no-allocation-site-pretenuring']);

/** What `--[no-]allocation-site-pretenuring` the process was given (last wins, NODE_OPTIONS first), if any. */
export function pretenuringFlag(execArgv: readonly string[] = process.execArgv, nodeOptions = process.env.NODE_OPTIONS ?? ''): boolean | undefined {
  const m = lastFlag(/^--(no[-_])?allocation[-_]site[-_]pretenuring$/, execArgv, nodeOptions);
  return m === undefined ? undefined : m[1] === undefined;
}

/** The pretenuring in effect after `applyPipelineV8Flags`, and who decided it. */
export interface PretenuringState {
  pretenuring: boolean;
  source: 'flag' | 'pipeline';
}

/**
 * Turns allocation-site pretenuring off for this process unless it was given the flag either way
 * (setting it again, for a second pipeline in the process, changes nothing). Returns the state for
 * the 'pipeline running' log line.
 */
export function applyPipelineV8Flags(execArgv: readonly string[] = process.execArgv, nodeOptions = process.env.NODE_OPTIONS ?? ''): PretenuringState {
  const given = pretenuringFlag(execArgv, nodeOptions);
  if (given !== undefined) return { pretenuring: given, source: 'flag' };
  v8.setFlagsFromString(PIPELINE_V8_FLAGS.join(' '));
  return { pretenuring: false, source: 'pipeline' };
}
