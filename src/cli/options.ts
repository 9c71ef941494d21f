/**
 * Option parsers for the CLI: every numeric or enum option goes through one of these, so a bad value
 * (`--psi-alert 0,2`, `--count abc`) stops the command with a message naming the option and exit code 2,
 * instead of becoming NaN somewhere downstream.
 */
import { InvalidArgumentError, type Command } from 'commander';
import { TributaryError } from '../util/errors';
import { instanceIdProblem } from '../engine/instance-id';

/** Exit code of a bad invocation (unknown option, bad value, missing argument), as in most Unix tools. */
export const USAGE_EXIT_CODE = 2;

/** A bad invocation found after parsing (a combination of options, a reference that does not exist). */
export class UsageError extends TributaryError {
}

type Parser<T> = (value: string) => T;

function numberFrom(value: string): number {
  // Number('') is 0 and Number(' 1 ') is 1: only plain decimal notation is accepted.
  return /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(value.trim()) ? Number(value) : NaN;
}

function numeric(what: string, ok: (n: number) => boolean): Parser<number> {
  return (value: string) => {
    const n = numberFrom(value);
    if (!Number.isFinite(n) || !ok(n)) throw new InvalidArgumentError(`expected ${what}, got '${value}'.`);
    return n;
  };
}

export const positiveInt = numeric('a positive integer', (n) => Number.isInteger(n) && n > 0);
export const nonNegativeInt = numeric('an integer >= 0', (n) => Number.isInteger(n) && n >= 0);
export const positiveNumber = numeric('a number > 0', (n) => n > 0);
export const nonNegativeNumber = numeric('a number >= 0', (n) => n >= 0);
/** A probability or ratio strictly between 0 and 1 (a significance level, a threshold). */
export const unitInterval = numeric('a number between 0 and 1 (decimal point, e.g. 0.2)', (n) => n >= 0 && n <= 1);
export const port = numeric('a port number 0-65535 (0 = any free port)', (n) => Number.isInteger(n) && n >= 0 && n <= 65535);

/** A process instance id (shared transactions' transactional ids): [A-Za-z0-9._-], at most 64 characters. */
export function instanceId(value: string): string {
  const problem = instanceIdProblem(value);
  if (problem) throw new InvalidArgumentError(`expected an instance id ([A-Za-z0-9._-], 1-64 characters): ${problem}.`);
  return value;
}

/** One of a fixed set of words. */
export function oneOf<T extends string>(...choices: T[]): Parser<T> {
  return (value: string) => {
    if (!(choices as string[]).includes(value)) throw new InvalidArgumentError(`expected one of ${choices.join(', ')}, got '${value}'.`);
    return value as T;
  };
}

/** Whether --json was given, on the command itself or globally (`tributary --json CMD`). */
export function wantsJson(cmd: Command): boolean {
  return Boolean(cmd.optsWithGlobals<{ json?: boolean }>().json);
}
