#!/usr/bin/env node
/**
 * Stand-alone entry for the backfill command (`node dist/backfill/main.js backfill ...`), the same
 * command `tributary backfill` registers; tests spawn it as a child process to kill it mid-run.
 */
import { registerBackfillCommands } from '../cli/commands/backfill';
import { createProgram, runProgram } from '../cli/program';

const program = createProgram();
registerBackfillCommands(program);
runProgram(program);
