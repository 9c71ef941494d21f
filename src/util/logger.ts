import pino from 'pino';
import { colourWanted, formatHumanLine } from './log-format';
import { redactSecrets } from './redact';
import { aroundBar } from './terminal-line';

export type Logger = pino.Logger;
export type LogFormat = 'json' | 'human';

const DEFAULT_LEVEL = 'info';
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export function isLogLevel(value: string): value is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(value);
}

/** Level from TRIBUTARY_LOG_LEVEL (trace|debug|info|warn|error|fatal|silent); unknown values fall back to 'info'. */
export function logLevelFromEnv(env: NodeJS.ProcessEnv = process.env): string {
  const wanted = (env.TRIBUTARY_LOG_LEVEL ?? '').trim().toLowerCase();
  return isLogLevel(wanted) ? wanted : DEFAULT_LEVEL;
}

/**
 * Format from TRIBUTARY_LOG_FORMAT (json|human); by default human on a terminal, JSON lines otherwise
 * (pipes, files, CI, the tests that parse log lines).
 */
export function logFormatFromEnv(env: NodeJS.ProcessEnv = process.env, stderr: { isTTY?: boolean } = process.stderr): LogFormat {
  const wanted = (env.TRIBUTARY_LOG_FORMAT ?? '').trim().toLowerCase();
  if (wanted === 'json' || wanted === 'human') return wanted;
  return stderr.isTTY ? 'human' : 'json';
}

/**
 * stderr, written synchronously (nothing lost when a command exits right after logging; stdout stays free for
 * command output). Every line is redacted here, after serialization, so no caller can leak a credential through a
 * message, a field, a URL or an error's stack.
 */
function stderrDestination(format: () => LogFormat): pino.DestinationStream {
  const colour = colourWanted(process.stderr);
  // pino's own synchronous writer: it retries when a non-blocking stderr is full (EAGAIN) instead of dropping lines.
  const stderr = pino.destination({ fd: 2, sync: true });
  return {
    write(line: string): void {
      const safe = redactSecrets(line);
      stderr.write(aroundBar(format() === 'human' ? formatHumanLine(safe, { colour }) : safe));
    },
  };
}

let root: Logger | undefined;
let currentLevel = logLevelFromEnv();
let currentFormat = logFormatFromEnv();
/** Every logger handed out, so a level chosen on the command line reaches the ones modules created at load time. */
const handedOut = new Set<WeakRef<Logger>>();

function rootLogger(): Logger {
  if (!root) {
    root = pino(
      {
        level: currentLevel,
        base: { pid: process.pid },
        // Credentials must never reach the logs, whatever object a caller passes in.
        redact: { paths: ['password', '*.password', '*.*.password', 'sasl', '*.sasl', 'auth', '*.auth'], censor: '[redacted]' },
      },
      stderrDestination(() => currentFormat),
    );
  }
  return root;
}

/** A logger writing to stderr, tagged with `name`, at the level configured (TRIBUTARY_LOG_LEVEL or configureLogging). */
export function createLogger(name: string): Logger {
  const logger = rootLogger().child({ name });
  logger.level = currentLevel;
  handedOut.add(new WeakRef(logger));
  return logger;
}

export interface LoggingOptions {
  level?: LogLevel;
  format?: LogFormat;
}

/**
 * Applies a level and format to every logger (existing and future) and exports them through the environment,
 * so worker threads and child processes started afterwards log the same way.
 */
export function configureLogging(opts: LoggingOptions): void {
  if (opts.level) {
    currentLevel = opts.level;
    process.env.TRIBUTARY_LOG_LEVEL = opts.level;
  }
  if (opts.format) {
    currentFormat = opts.format;
    process.env.TRIBUTARY_LOG_FORMAT = opts.format;
  }
  if (root) root.level = currentLevel;
  for (const ref of handedOut) {
    const logger = ref.deref();
    if (!logger) handedOut.delete(ref);
    else logger.level = currentLevel;
  }
}

export function currentLogFormat(): LogFormat {
  return currentFormat;
}

export function currentLogLevel(): string {
  return currentLevel;
}
