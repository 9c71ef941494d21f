import type { Logger } from '../util/logger';

/**
 * Exits with `code` once everything this process wrote to stdout and stderr so far has been handed
 * to the OS. `process.exit` drops writes still queued in Node: a pipe's buffer is 64 KiB, and once a
 * slower reader lets it fill, Node queues the rest of a write and sends it as the reader drains — so
 * `tail --until-end` read by another program lost its last records when it exited at once (the
 * journeys test saw 936 and 974 of 1,000 in CI runs). Nothing queued: exits now.
 */
export function exitWhenFlushed(code: number): void {
  process.exitCode = code;
  const streams = [process.stdout, process.stderr].filter((s) => s.writableLength > 0 && !s.destroyed);
  let waiting = streams.length;
  if (waiting === 0) process.exit(code);
  // An empty write's callback runs after every write queued before it (or with the stream's error,
  // e.g. EPIPE once the reader went away): then nothing of ours is left in Node's queue.
  for (const s of streams) s.write('', () => --waiting === 0 && process.exit(code));
}

/**
 * Runs a graceful `stop` and exits: 0 when it resolved, 1 when it failed or took longer than
 * `timeoutMs` (what a signal handler of `run`, or a worker of a group, does once it decided to stop).
 */
export function stopThenExit(stop: () => Promise<void>, timeoutMs: number, logger: Logger): void {
  const bound = setTimeout(() => {
    logger.error('graceful shutdown timed out; exiting');
    process.exit(1);
  }, timeoutMs);
  bound.unref();
  stop().then(
    () => exitWhenFlushed(0),
    (err: unknown) => {
      logger.error({ err }, 'error during shutdown');
      exitWhenFlushed(1);
    },
  );
}
