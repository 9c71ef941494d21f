import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Command } from 'commander';
import { formatGateReport, readGateSpec, runGate } from '../../inference/gate';
import { modelDir } from '../../inference/model-card';
import type Redis from 'ioredis';
import { createRedis } from '../../util/redis';
import { readControl, formatControl, setDesiredVersion, type ControlSnapshot } from '../../inference/model-control';
import { resolveEndpoints } from '../../stack/endpoints';
import { repoRoot } from '../../stack/paths';
import { TributaryError } from '../../util/errors';
import { DEFAULT_TOPOLOGY, loadTopologyFile } from '../topology-file';

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
  const models = program.command('models').description('model repository: verify versions against their gate; hot swap (promote, rollback, status)');
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
      // Without gate.json only integrity and loading are checked: say so, rather than a bare PASSED.
      const loadOnly = readGateSpec(target.dir) === undefined;
      process.stdout.write(opts.json ? `${JSON.stringify({ ...report, loadCheckOnly: loadOnly }, null, 2)}\n` : `${formatGateReport(report)}\n`);
      if (loadOnly && !opts.json) process.stdout.write(`load check only: ${report.model}@${report.version} has no gate.json (golden set, confidence set and latency were not checked)\n`);
      if (!report.passed) process.exitCode = 1;
    });
  registerHotSwapCommands(models);
}

interface ControlOpts {
  topology: string;
  stage?: string;
  group?: string;
  wait?: string;
  json?: boolean;
}

/** The consumer groups (control namespaces) of the onnx_inference stages with hotSwap serving `model` (or the one named). */
export function controlGroups(opts: ControlOpts, model?: string): string[] {
  if (opts.group) return [opts.group];
  const topology = loadTopologyFile(opts.topology);
  const stages = topology.spec.stages.filter((s) => {
    if (s.processor !== 'onnx_inference') return false;
    if (opts.stage) return s.name === opts.stage;
    const cfg = s.config as { model?: { name?: string }; hotSwap?: unknown };
    return cfg.hotSwap !== undefined && (!model || cfg.model?.name === model);
  });
  if (stages.length === 0) throw new TributaryError(`no onnx_inference stage with hotSwap${model ? ` serving '${model}'` : ''}${opts.stage ? ` named '${opts.stage}'` : ''} in ${topology.file}`);
  return stages.map((s) => `${topology.spec.name}.${s.name}`);
}

/** Waits until every reporting instance of `group` serves `version` or refused it (after `since`); returns the snapshot. */
async function waitForOutcome(redis: Redis, group: string, version: string, since: string, timeoutMs: number): Promise<{ snapshot: ControlSnapshot; ok: boolean }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const snapshot = await readControl(redis, group);
    const settled = snapshot.instances.length > 0 && snapshot.instances.every((i) => i.live === version || (i.lastSwap && i.lastSwap.to === version && i.lastSwap.at >= since && i.lastSwap.result === 'refused'));
    if (settled || Date.now() > deadline) return { snapshot, ok: settled && snapshot.instances.every((i) => i.live === version) };
    await new Promise((r) => setTimeout(r, 250));
  }
}

function controlCommand(models: Command, name: string, description: string): Command {
  return models
    .command(name)
    .description(description)
    .option('--topology <file>', 'topology declaring the stage(s)', DEFAULT_TOPOLOGY)
    .option('--stage <name>', 'only this onnx_inference stage')
    .option('--group <group>', 'the stage deployment\'s consumer group (instead of --topology/--stage)')
    .option('--json', 'print JSON');
}

/** `tributary models promote|rollback|status`: the hot swap control plane (Redis). */
export function registerHotSwapCommands(models: Command): void {
  controlCommand(models, 'promote', 'serve NAME@VERSION in the running stage(s): each instance gates it against its live version and swaps between batches, or refuses it and keeps serving')
    .argument('<model>', 'NAME@VERSION')
    .option('--wait <ms>', 'wait this long for every instance to swap or refuse; exit 1 unless all swapped', '0')
    .action(async (ref: string, opts: ControlOpts) => {
      const [name, version] = ref.split('@', 2);
      if (!name || !version) throw new TributaryError(`bad model reference '${ref}' (expected NAME@VERSION)`);
      await applyDesired(controlGroups(opts, name), version, 'promote', opts);
    });
  controlCommand(models, 'rollback', 'serve the version each stage served before its last swap (one command)')
    .option('--wait <ms>', 'wait this long for every instance to swap back', '0')
    .action(async (opts: ControlOpts) => {
      const redis = createRedis(resolveEndpoints().redisUrl);
      try {
        for (const group of controlGroups(opts)) {
          const snap = await readControl(redis, group, 100);
          const previous = snap.instances.find((i) => i.previous)?.previous ?? snap.events.find((e) => e.result === 'swapped')?.from;
          if (!previous) throw new TributaryError(`${group}: no previous version to roll back to`);
          await applyDesired([group], previous, 'rollback', opts, redis);
        }
      } finally {
        redis.disconnect();
      }
    });
  controlCommand(models, 'status', 'desired and live version of each running instance, the last swap and refused versions with their reasons')
    .action(async (opts: ControlOpts) => {
      const redis = createRedis(resolveEndpoints().redisUrl);
      try {
        const snaps = await Promise.all(controlGroups(opts).map((g) => readControl(redis, g)));
        process.stdout.write(opts.json ? `${JSON.stringify(snaps, null, 2)}\n` : `${snaps.map(formatControl).join('\n')}\n`);
      } finally {
        redis.disconnect();
      }
    });
}

async function applyDesired(groups: string[], version: string, action: string, opts: ControlOpts, shared?: Redis): Promise<void> {
  const redis = shared ?? createRedis(resolveEndpoints().redisUrl);
  try {
    for (const group of groups) {
      const desired = await setDesiredVersion(redis, group, version, action);
      process.stdout.write(`${group}: desired version ${version} (${action}, request ${desired.requestId})\n`);
      const waitMs = Number(opts.wait ?? 0);
      if (waitMs > 0) {
        const { snapshot, ok } = await waitForOutcome(redis, group, version, desired.at, waitMs);
        process.stdout.write(`${formatControl(snapshot)}\n`);
        if (!ok) process.exitCode = 1;
      }
    }
  } finally {
    if (!shared) redis.disconnect();
  }
}
