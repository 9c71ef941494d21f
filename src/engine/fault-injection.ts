/**
 * Test-only crash points, so fault tests can kill a process at an exact place instead of a random
 * moment: with TRIBUTARY_FAULT_CRASH_AT=<point>:<n> the process SIGKILLs itself the n-th time it
 * passes <point>; with <point>@<scope>:<n>, only passes in that scope count (e.g. the consumer group
 * of one chain, when a process runs several). Unset (always, outside fault tests), a crash point
 * costs one comparison.
 */
export type CrashPoint = 'txn-sent' | 'gateway-produced' | 'file-appended' | 'hop-sent' | 'alo-sent';

const spec = /^([a-z-]+)(?:@([^:]+))?:(\d+)$/.exec(process.env.TRIBUTARY_FAULT_CRASH_AT ?? '');
let remaining = spec ? Number(spec[3]) : 0;

/** `scope`: where this pass happens (a transaction's consumer group), matched against `@<scope>` when the spec names one. */
export function crashPoint(point: CrashPoint, scope?: string): void {
  if (!spec || spec[1] !== point) return;
  if (spec[2] !== undefined && spec[2] !== scope) return;
  remaining -= 1;
  if (remaining === 0) process.kill(process.pid, 'SIGKILL');
}
