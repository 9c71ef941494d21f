#!/usr/bin/env node
/**
 * Stand-alone entry for the backfill command (`node dist/backfill/main.js backfill ...`), the same
 * command `tributary backfill` registers; tests spawn it as a child process to kill it mid-run.
 */
import { Command } from 'commander';
import { registerBackfillCommands } from '../cli/commands/backfill';

const program = new Command();
program.name('tributary');
registerBackfillCommands(program);
program.parseAsync(process.argv).catch((err: unknown) => {
  process.stderr.write(`error: ${(err as Error).message ?? String(err)}\n`);
  if (process.env.TRIBUTARY_LOG_LEVEL === 'debug') process.stderr.write(`${(err as Error).stack}\n`);
  process.exit(1);
});
