import pino from 'pino';

export type Logger = pino.Logger;

const DEFAULT_LEVEL = 'info';

/** Level from TRIBUTARY_LOG_LEVEL (trace|debug|info|warn|error|fatal|silent); unknown values fall back to 'info'. */
export function logLevelFromEnv(env: NodeJS.ProcessEnv = process.env): string {
  const wanted = (env.TRIBUTARY_LOG_LEVEL ?? '').trim().toLowerCase();
  if (wanted === 'silent' || Object.prototype.hasOwnProperty.call(pino.levels.values, wanted)) {
    return wanted;
  }
  return DEFAULT_LEVEL;
}

let root: Logger | undefined;

function rootLogger(): Logger {
  if (!root) {
    // Synchronous writes to stderr: nothing is lost when a CLI command exits right after logging,
    // and stdout stays free for command output (tables, --json).
    root = pino(
      {
        level: logLevelFromEnv(),
        base: { pid: process.pid },
        // Credentials must never reach the logs, whatever object a caller passes in.
        redact: { paths: ['password', '*.password', '*.*.password', 'sasl', '*.sasl', 'auth', '*.auth'], censor: '[redacted]' },
      },
      pino.destination({ fd: 2, sync: true }),
    );
  }
  return root;
}

/** A JSON logger writing to stderr, tagged with `name`. The level is read from TRIBUTARY_LOG_LEVEL at each call. */
export function createLogger(name: string): Logger {
  const logger = rootLogger().child({ name });
  logger.level = logLevelFromEnv();
  return logger;
}
