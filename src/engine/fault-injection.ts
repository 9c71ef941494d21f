/**
 * Test-only crash points, so fault tests can kill a process at an exact place instead of a random
 * moment: with TRIBUTARY_FAULT_CRASH_AT=<point>:<n> the process SIGKILLs itself the n-th time it
 * passes <point>. Unset (always, outside fault tests), a crash point costs one comparison.
 */
export type CrashPoint = 'txn-sent' | 'gateway-produced';

const spec = /^([a-z-]+):(\d+)$/.exec(process.env.TRIBUTARY_FAULT_CRASH_AT ?? '');
let remaining = spec ? Number(spec[2]) : 0;

export function crashPoint(point: CrashPoint): void {
  if (!spec || spec[1] !== point) return;
  remaining -= 1;
  if (remaining === 0) process.kill(process.pid, 'SIGKILL');
}
