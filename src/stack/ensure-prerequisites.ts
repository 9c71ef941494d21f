/**
 * The one set-up step for system packages, run by the demo, the test suite's global set-up and `.ci/run`
 * (through `tributary setup`): finds which tools are missing and installs their Debian packages with apt-get
 * when it can (root, apt-get on PATH, not opted out), or says in one line what to run.
 *
 * Opt out with TRIBUTARY_NO_INSTALL=1: nothing is installed, missing tools are reported with the command.
 */
import * as fs from 'node:fs';
import { createLogger, type Logger } from '../util/logger';
import { TributaryError } from '../util/errors';
import { runCommand, type RunResult } from './process';
import { checkPrerequisites, findExecutable, MissingPrerequisiteError, PREREQUISITE_SETS, PREREQUISITES, type PrerequisiteName, type PrerequisiteSet } from './prerequisites';

export const NO_INSTALL_ENV = 'TRIBUTARY_NO_INSTALL';

export interface MissingTool {
  name: PrerequisiteName;
  /** Why it is missing: not on PATH, or too old. */
  detail: string;
}

/** Which of `names` are missing (or unusable, e.g. Java older than 17). */
export function findMissing(names: readonly PrerequisiteName[], env: NodeJS.ProcessEnv = process.env): MissingTool[] {
  const missing: MissingTool[] = [];
  for (const name of names) {
    try {
      checkPrerequisites({ need: [name], env });
    } catch (err) {
      if (!(err instanceof MissingPrerequisiteError)) throw err;
      missing.push({ name, detail: err.message });
    }
  }
  return missing;
}

export interface HostFacts {
  isRoot: boolean;
  hasApt: boolean;
  optedOut: boolean;
}

export function hostFacts(env: NodeJS.ProcessEnv = process.env): HostFacts {
  return {
    isRoot: typeof process.getuid === 'function' && process.getuid() === 0,
    hasApt: findExecutable('apt-get', env) !== undefined,
    optedOut: ['1', 'true', 'yes'].includes((env[NO_INSTALL_ENV] ?? '').trim().toLowerCase()),
  };
}

export type InstallPlan =
  | { action: 'none' }
  | { action: 'install'; packages: string[]; missing: MissingTool[] }
  /** Cannot (or must not) install: `command` is what a person should run; `reason` why we did not. */
  | { action: 'instruct'; packages: string[]; missing: MissingTool[]; command: string; reason: string };

/** Debian packages providing `missing`, each once, in a stable order. */
export function packagesFor(missing: readonly MissingTool[]): string[] {
  return [...new Set(missing.flatMap((m) => PREREQUISITES[m.name].packages))];
}

/** The decision, without side effects: install, tell the user what to run, or nothing to do. */
export function planInstall(missing: readonly MissingTool[], facts: HostFacts): InstallPlan {
  if (missing.length === 0) return { action: 'none' };
  const packages = packagesFor(missing);
  const aptLine = `apt-get update && apt-get install -y --no-install-recommends ${packages.join(' ')}`;
  if (!facts.hasApt) {
    return { action: 'instruct', packages, missing: [...missing], reason: 'apt-get is not available', command: `install ${missing.map((m) => m.name).join(', ')} with your system's package manager (Debian/Ubuntu packages: ${packages.join(' ')})` };
  }
  if (facts.optedOut) return { action: 'instruct', packages, missing: [...missing], reason: `${NO_INSTALL_ENV} is set`, command: aptLine };
  if (!facts.isRoot) return { action: 'instruct', packages, missing: [...missing], reason: 'not running as root', command: `sudo sh -c '${aptLine}'` };
  return { action: 'install', packages, missing: [...missing] };
}

export class PrerequisitesError extends TributaryError {}

/** One line: what is missing, what for, and the command. */
export function instructionLine(plan: Extract<InstallPlan, { action: 'instruct' }>): string {
  const what = plan.missing.map((m) => `${m.name} (${PREREQUISITES[m.name].purpose})`).join('; ');
  return `Missing prerequisites: ${what}. Not installed automatically (${plan.reason}); run: ${plan.command}`;
}

export type AptRunner = (args: readonly string[]) => Promise<RunResult>;

const APT_TIMEOUT_MS = 20 * 60_000;

function defaultApt(args: readonly string[]): Promise<RunResult> {
  return runCommand('apt-get', args, { timeoutMs: APT_TIMEOUT_MS, env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
}

export interface EnsureOptions {
  /** Which tools: 'stack' (demo, stack up) or 'tests' (everything the test suite runs). */
  set: PrerequisiteSet;
  env?: NodeJS.ProcessEnv;
  facts?: HostFacts;
  logger?: Logger;
  /** Runs apt-get (tests pass a fake). */
  apt?: AptRunner;
  /** Where the one progress line goes (default stderr). */
  out?: (line: string) => void;
  /** Missing tools without automatic install: throw (default; opting out always only reports) or only report. */
  onMissing?: 'throw' | 'report';
}

export interface EnsureResult {
  installed: string[];
  stillMissing: PrerequisiteName[];
}

function tail(text: string, lines = 15): string {
  return text.trim().split('\n').slice(-lines).join('\n');
}

/** Checks, installs what it may, re-checks. Throws PrerequisitesError with one actionable line when something stays missing. */
export async function ensurePrerequisites(opts: EnsureOptions): Promise<EnsureResult> {
  const env = opts.env ?? process.env;
  const log = opts.logger ?? createLogger('setup');
  const out = opts.out ?? ((line: string) => fs.writeSync(2, `${line}\n`));
  const names = PREREQUISITE_SETS[opts.set];
  const missing = findMissing(names, env);
  const facts = opts.facts ?? hostFacts(env);
  const plan = planInstall(missing, facts);
  if (plan.action === 'none') {
    log.debug({ set: opts.set }, 'prerequisites present');
    return { installed: [], stillMissing: [] };
  }
  if (plan.action === 'instruct') {
    const line = instructionLine(plan);
    // Opting out means "I manage this machine": report, and let whatever needs the tool fail on its own.
    if ((opts.onMissing ?? 'throw') === 'throw' && !facts.optedOut) throw new PrerequisitesError(line);
    out(line);
    return { installed: [], stillMissing: plan.missing.map((m) => m.name) };
  }
  const apt = opts.apt ?? defaultApt;
  out(`installing system packages (first run only; ${NO_INSTALL_ENV}=1 to skip): ${plan.packages.join(' ')} ...`);
  const started = Date.now();
  const update = await apt(['update', '-qq']);
  if (update.code !== 0) throw new PrerequisitesError(`apt-get update failed (exit ${update.code}):\n${tail(update.output)}`);
  const install = await apt(['install', '-y', '-qq', '--no-install-recommends', ...plan.packages]);
  if (install.code !== 0) throw new PrerequisitesError(`apt-get install ${plan.packages.join(' ')} failed (exit ${install.code}):\n${tail(install.output)}`);
  const stillMissing = findMissing(names, env);
  if (stillMissing.length > 0) {
    throw new PrerequisitesError(`installed ${plan.packages.join(' ')} but still missing: ${stillMissing.map((m) => m.detail).join('; ')}`);
  }
  log.info({ packages: plan.packages, ms: Date.now() - started }, 'system packages installed');
  return { installed: plan.packages, stillMissing: [] };
}
