import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Command } from 'commander';
import { formatGateReport, runGate } from '../../inference/gate';
import { modelDir } from '../../inference/model-card';
import { repoRoot } from '../../stack/paths';
import { TributaryError } from '../../util/errors';

/** NAME or NAME@VERSION; without a version, the highest version directory in the repository. */
export function resolveModelRef(repository: string, ref: string): { name: string; version: string; dir: string } {
  const [name, version] = ref.split('@', 2);
  if (!name) throw new TributaryError(`bad model reference '${ref}' (expected NAME or NAME@VERSION)`);
  if (version) return { name, version, dir: modelDir(repository, name, version) };
  const base = path.join(repository, name);
  const versions = fs.existsSync(base)
    ? fs.readdirSync(base).filter((v) => fs.existsSync(path.join(base, v, 'model.json')))
    : [];
  if (versions.length === 0) throw new TributaryError(`no versions of model '${name}' in ${repository}`);
  versions.sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
  const latest = versions[versions.length - 1];
  return { name, version: latest, dir: modelDir(repository, name, latest) };
}

/** A one-line progress bar on stderr (redrawn in place on a terminal, a line per phase otherwise). */
function progressBar(stream: NodeJS.WriteStream = process.stderr) {
  let lastPhase = '';
  return (phase: string, done: number, total: number) => {
    const width = 30;
    const filled = Math.round((done / Math.max(1, total)) * width);
    const line = `${phase.padEnd(11)} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total}`;
    if (stream.isTTY) {
      stream.write(`\r${line}`);
      if (done >= total) stream.write('\n');
    } else if (done >= total || phase !== lastPhase) {
      if (done >= total) stream.write(`${line}\n`);
    }
    lastPhase = phase;
  };
}

/** `tributary models verify NAME[@VERSION]`: runs the version's gate and prints the report. */
export function registerModelCommands(program: Command): void {
  const models = program.command('models').description('model repository: verify versions against their gate');
  models
    .command('verify')
    .description('run a version\'s gate (integrity, golden set, labelled confidence set, p99 latency) and print the report; exit 1 if it fails')
    .argument('<model>', 'NAME or NAME@VERSION (default: the highest version)')
    .option('--repository <dir>', 'model repository', path.join(repoRoot(), 'models'))
    .option('--live <version>', 'compare against this live version (change bounds)')
    .option('--provider <name...>', 'execution providers to try in order', ['cpu'])
    .option('--json', 'print the report as JSON')
    .action(async (ref: string, opts: { repository: string; live?: string; provider: string[]; json?: boolean }) => {
      const target = resolveModelRef(path.resolve(opts.repository), ref);
      const liveDir = opts.live ? modelDir(path.resolve(opts.repository), target.name, opts.live) : undefined;
      const report = await runGate(target.dir, { liveDir, session: { executionProviders: opts.provider }, onProgress: opts.json ? undefined : progressBar() });
      process.stdout.write(opts.json ? `${JSON.stringify(report, null, 2)}\n` : `${formatGateReport(report)}\n`);
      if (!report.passed) process.exitCode = 1;
    });
}
