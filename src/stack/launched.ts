import type { DetachedProcess } from './process';
import { delay, isPidAlive, lastLogLine } from './process';

/** A server process that has been spawned but may not be answering yet. */
export interface LaunchedServer<TInfo> {
  info: TInfo;
  /** Resolves once the server answers; rejects (with a message naming the log file) on timeout or early exit. */
  waitUntilReady(timeoutMs: number): Promise<void>;
}

export class ServerStartError extends Error {
  override readonly name = 'ServerStartError';
  constructor(
    readonly server: string,
    message: string,
    readonly logFile?: string,
  ) {
    super(message);
  }
}

/**
 * Polls `answers()` until it is true. Fails fast when the process exits, and on timeout, with a one-line
 * message that points at the log file and quotes its most telling line.
 */
export async function pollUntilAnswering(opts: {
  server: string;
  what: string;
  proc: Pick<DetachedProcess, 'pid' | 'exit'>;
  logFile: string;
  timeoutMs: number;
  intervalMs?: number;
  answers: () => Promise<boolean>;
}): Promise<void> {
  const started = Date.now();
  const deadline = started + opts.timeoutMs;
  const fail = (why: string): never => {
    const last = lastLogLine(opts.logFile);
    throw new ServerStartError(opts.server, `${opts.server} ${why}; see ${opts.logFile}${last ? ` (last log line: ${last})` : ''}`, opts.logFile);
  };
  for (;;) {
    const exited = opts.proc.exit();
    if (exited || !isPidAlive(opts.proc.pid)) {
      const how = exited ? (exited.signal ? `signal ${exited.signal}` : `code ${exited.code}`) : 'unknown status';
      fail(`process ${opts.proc.pid} exited (${how}) before ${opts.what}`);
    }
    if (await opts.answers()) return;
    if (Date.now() >= deadline) fail(`did not answer (${opts.what}) within ${Math.round(opts.timeoutMs / 1000)}s`);
    await delay(opts.intervalMs ?? 300);
  }
}
