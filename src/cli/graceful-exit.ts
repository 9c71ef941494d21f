import type { Logger } from '../util/logger';

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
    () => process.exit(0),
    (err: unknown) => {
      logger.error({ err }, 'error during shutdown');
      process.exit(1);
    },
  );
}
