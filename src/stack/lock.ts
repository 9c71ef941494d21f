import * as fs from 'fs';
import * as path from 'path';
import { delay, isPidAlive } from './process';

export class LockTimeoutError extends Error {
  override readonly name = 'LockTimeoutError';
}

function tryAcquire(lockFile: string): boolean {
  try {
    const fd = fs.openSync(lockFile, 'wx');
    fs.writeSync(fd, String(process.pid));
    fs.closeSync(fd);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return false;
  }
}

function holderPid(lockFile: string): number | undefined {
  try {
    const pid = Number(fs.readFileSync(lockFile, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Runs `fn` while holding an exclusive lock file (pid inside) so two processes don't start or stop the same
 * stack at once (also serialises operations within one process). A lock left by a dead process is taken over.
 * Not re-entrant: `fn` must not take the same lock again.
 */
export async function withLock<T>(lockFile: string, timeoutMs: number, fn: () => Promise<T>): Promise<T> {
  fs.mkdirSync(path.dirname(lockFile), { recursive: true });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (tryAcquire(lockFile)) break;
    const holder = holderPid(lockFile);
    if (holder === undefined) {
      // Just created and not yet written, or left half-written: give the writer a moment, then treat as stale.
      await delay(200);
      if (holderPid(lockFile) === undefined) fs.rmSync(lockFile, { force: true });
      continue;
    }
    if (!isPidAlive(holder)) {
      fs.rmSync(lockFile, { force: true }); // the holder died without releasing it
      continue;
    }
    if (Date.now() > deadline) {
      throw new LockTimeoutError(`Timed out waiting for ${lockFile} (held by pid ${holder})`);
    }
    await delay(250);
  }
  try {
    return await fn();
  } finally {
    fs.rmSync(lockFile, { force: true });
  }
}
