/**
 * The `tributary` command tree's shared behaviour: global output options, exit codes, error printing.
 *
 *  --log-level L   trace|debug|info|warn|error|fatal|silent (default info, or TRIBUTARY_LOG_LEVEL)
 *  --quiet         warnings and errors only, no progress bars
 *  --json          JSON lines on stderr, and JSON results on stdout where a command has them
 *
 * Exit codes: 0 ok, 1 the command failed, 2 bad invocation (unknown option, bad value, missing argument).
 * A reader of stdout that goes away (`| head`) stops the command quietly (src/cli/broken-pipe.ts).
 */
import { Command, CommanderError, Option } from 'commander';
import { configureLogging, logFormatFromEnv, LOG_LEVELS, type LogLevel } from '../util/logger';
import { redactSecrets } from '../util/redact';
import { USAGE_EXIT_CODE, UsageError } from './options';
import { exitWhenFlushed } from './graceful-exit';
import { handleBrokenStdout } from './broken-pipe';

interface GlobalOptions {
  logLevel?: LogLevel;
  quiet?: boolean;
  json?: boolean;
}

/** Applies the global options before any command runs (and before it creates clients or workers). */
export function applyGlobalOptions(opts: GlobalOptions): void {
  const level = opts.logLevel ?? (opts.quiet ? 'warn' : undefined);
  if (opts.quiet) process.env.TRIBUTARY_QUIET = '1';
  configureLogging({ level, format: opts.json ? 'json' : logFormatFromEnv() });
}

/** A root command with the global options, exit code 2 for bad invocations and global options shown in every help. */
export function createProgram(name = 'tributary'): Command {
  const program = new Command(name);
  program
    .addOption(new Option('--log-level <level>', 'log level').choices(LOG_LEVELS))
    .option('--quiet', 'only warnings and errors; no progress bars')
    .option('--json', 'JSON lines on stderr, and JSON results on stdout where the command has them')
    .configureHelp({ showGlobalOptions: true })
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride((err: CommanderError) => {
      // Help and version end with 0; every parse error is a usage error.
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.help' || err.code === 'commander.version') process.exit(0);
      process.exit(err.exitCode === 0 ? 0 : USAGE_EXIT_CODE);
    })
    .hook('preAction', (root) => applyGlobalOptions(root.opts<GlobalOptions>()));
  return program;
}

/** Parses argv and runs the command; errors print as one `error:` line (redacted) and set the exit code. */
export function runProgram(program: Command, argv: string[] = process.argv): void {
  handleBrokenStdout();
  program.parseAsync(argv).catch((err: unknown) => {
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`${redactSecrets(`error: ${message}`)}\n`);
    if (process.env.TRIBUTARY_LOG_LEVEL === 'debug' || process.env.TRIBUTARY_LOG_LEVEL === 'trace') process.stderr.write(`${redactSecrets(String((err as Error).stack))}\n`);
    exitWhenFlushed(err instanceof UsageError ? USAGE_EXIT_CODE : 1);
  });
}
