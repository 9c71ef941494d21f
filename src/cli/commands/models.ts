import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Command } from 'commander';
import { formatGateReport, readGateSpec, runGate } from '../../inference/gate';
import { modelDir } from '../../inference/model-card';
import type { Cluster } from 'ioredis';
import type Redis from 'ioredis';
import { connectRedisClient } from '../../util/redis';
import { readControl, formatControl, setDesiredVersion, type ControlSnapshot } from '../../inference/model-control';
import { resolveEndpoints } from '../../util/endpoints';
import { repoRoot } from '../../util/paths';
import { TributaryError } from '../../util/errors';
import { DEFAULT_TOPOLOGY, loadTopologyFile, TOPOLOGY_FLAGS } from '../topology-file';
import { positiveInt, UsageError, wantsJson } from '../options';
import { Progress } from '../../util/progress';

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

/** Gate progress through the shared bar: one bar per phase (golden set, confidence set, latency). */
function gateProgress(): { onProgress: (phase: string, done: number, total: number) => void; end: () => void } {
  let phase = '';
  let bar: Progress | undefined;
  return {
    onProgress: (next, done, total) => {
      if (next !== phase) {
        bar?.end();
        phase = next;
        bar = new Progress({ label: next, unit: next === 'latency' ? 'runs' : 'rows' });
      }
      bar!.update({ done, total });
    },
    end: () => bar?.end(),
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
    .action(async (ref: string, opts: { repository: string; live?: string; provider: string[] }, cmd: Command) => {
      const json = wantsJson(cmd);
      const target = resolveModelRef(path.resolve(opts.repository), ref);
      requireVersion(path.resolve(opts.repository), target.name, target.version);
      if (opts.live) requireVersion(path.resolve(opts.repository), target.name, opts.live, '--live');
      const liveDir = opts.live ? modelDir(path.resolve(opts.repository), target.name, opts.live) : undefined;
      const progress = gateProgress();
      const report = await runGate(target.dir, { liveDir, session: { executionProviders: opts.provider }, onProgress: progress.onProgress }).finally(progress.end);
      // Without gate.json only integrity and loading are checked: say so, rather than a bare PASSED.
      const loadOnly = readGateSpec(target.dir) === undefined;
      process.stdout.write(json ? `${JSON.stringify({ ...report, loadCheckOnly: loadOnly }, null, 2)}\n` : `${formatGateReport(report)}\n`);
      if (loadOnly && !json) process.stdout.write(`load check only: ${report.model}@${report.version} has no gate.json (golden set, confidence set and latency were not checked)\n`);
      if (!report.passed) process.exitCode = 1;
    });
  registerHotSwapCommands(models);
}

interface ControlOpts {
  topology: string;
  stage?: string;
  group?: string;
  repository?: string;
  /** Milliseconds, or false with --no-wait. */
  wait: number | false;
  json?: boolean;
}

/** A version exists when its directory has a model card. */
export function requireVersion(repository: string, name: string, version: string, what = 'model'): void {
  if (fs.existsSync(path.join(modelDir(repository, name, version), 'model.json'))) return;
  const base = path.join(repository, name);
  const known = fs.existsSync(base) ? fs.readdirSync(base).filter((v) => fs.existsSync(path.join(base, v, 'model.json'))) : [];
  throw new UsageError(`${what}: ${name}@${version} does not exist in ${repository} (versions: ${known.sort().join(', ') || 'none'})`);
}

/** The model repository of the stage(s) a control command addresses: --repository, else the topology stage's. */
function controlRepository(opts: ControlOpts, model: string): string {
  if (opts.repository) return path.resolve(opts.repository);
  if (opts.group) return path.join(repoRoot(), 'models');
  const topology = loadTopologyFile(opts.topology);
  const stage = topology.spec.stages.find((s) => s.processor === 'onnx_inference' && (opts.stage ? s.name === opts.stage : (s.config as { model?: { name?: string } }).model?.name === model));
  const repo = (stage?.config as { model?: { repository?: string } } | undefined)?.model?.repository ?? 'models';
  return path.resolve(topology.baseDir, repo);
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
async function waitForOutcome(redis: Redis | Cluster, group: string, version: string, since: string, timeoutMs: number): Promise<{ snapshot: ControlSnapshot; ok: boolean }> {
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
    .option(TOPOLOGY_FLAGS, 'topology declaring the stage(s)', DEFAULT_TOPOLOGY)
    .option('--stage <name>', 'only this onnx_inference stage')
    .option('--group <group>', 'the stage deployment\'s consumer group (instead of --topology/--stage)');
}

/** `tributary models promote|rollback|status`: the hot swap control plane (Redis). */
export function registerHotSwapCommands(models: Command): void {
  controlCommand(models, 'promote', 'serve NAME@VERSION in the running stage(s): each instance gates it against its live version and swaps between batches, or refuses it and keeps serving')
    .argument('<model>', 'NAME@VERSION')
    .option('--repository <dir>', 'model repository the version must exist in (default: the stage\'s; models/ with --group)')
    .option('--wait <ms>', 'how long to wait for every running instance to swap or refuse; exit 1 unless all swapped', positiveInt, 60000)
    .option('--no-wait', 'only record the desired version; do not wait for the swap')
    .action(async (ref: string, opts: ControlOpts, cmd: Command) => {
      const [name, version] = ref.split('@', 2);
      if (!name || !version) throw new UsageError(`bad model reference '${ref}' (expected NAME@VERSION)`);
      requireVersion(controlRepository(opts, name), name, version);
      const groups = controlGroups(opts, name);
      await applyDesired(groups, version, 'promote', { ...opts, json: wantsJson(cmd) });
    });
  controlCommand(models, 'rollback', 'serve the version each stage served before its last swap (one command)')
    .option('--wait <ms>', 'how long to wait for every running instance to swap back; exit 1 unless all did', positiveInt, 60000)
    .option('--no-wait', 'only record the desired version; do not wait for the swap')
    .action(async (opts: ControlOpts, cmd: Command) => {
      opts = { ...opts, json: wantsJson(cmd) };
      const redis = await connectRedisClient(resolveEndpoints().redisUrl);
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
    .action(async (opts: ControlOpts, cmd: Command) => {
      const redis = await connectRedisClient(resolveEndpoints().redisUrl);
      try {
        const snaps = await Promise.all(controlGroups(opts).map((g) => readControl(redis, g)));
        process.stdout.write(wantsJson(cmd) ? `${JSON.stringify(snaps, null, 2)}\n` : `${snaps.map(formatControl).join('\n')}\n`);
      } finally {
        redis.disconnect();
      }
    });
}

/** Why `version` was not served by the instances that refused it. */
function refusals(snapshot: ControlSnapshot, version: string): string[] {
  return snapshot.instances
    .filter((i) => i.live !== version)
    .map((i) => `${i.instance}: ${i.refused[version] ?? (i.lastSwap?.to === version ? i.lastSwap.reason : undefined) ?? 'did not swap in time'}`);
}

async function applyDesired(groups: string[], version: string, action: string, opts: ControlOpts, shared?: Redis | Cluster): Promise<void> {
  const redis = shared ?? (await connectRedisClient(resolveEndpoints().redisUrl));
  const results: Array<{ group: string; version: string; requestId: string; outcome: 'swapped' | 'refused' | 'not-waited' | 'no-instances'; reasons: string[]; snapshot?: ControlSnapshot }> = [];
  try {
    for (const group of groups) {
      const running = (await readControl(redis, group, 0)).instances.length;
      const desired = await setDesiredVersion(redis, group, version, action);
      if (!opts.json) process.stdout.write(`${group}: desired version ${version} (${action}, request ${desired.requestId})\n`);
      if (opts.wait === false || running === 0) {
        results.push({ group, version, requestId: desired.requestId, outcome: opts.wait === false ? 'not-waited' : 'no-instances', reasons: [] });
        if (!opts.json && running === 0) process.stdout.write(`${group}: no running instance reports; the stage serves ${version} when it starts\n`);
        continue;
      }
      const { snapshot, ok } = await waitForOutcome(redis, group, version, desired.at, opts.wait);
      const reasons = ok ? [] : refusals(snapshot, version);
      results.push({ group, version, requestId: desired.requestId, outcome: ok ? 'swapped' : 'refused', reasons, snapshot });
      if (!opts.json) {
        process.stdout.write(`${formatControl(snapshot)}\n`);
        if (!ok) process.stderr.write(`${action} of ${version} in ${group} refused:\n${reasons.map((r) => `  ${r}`).join('\n')}\n`);
      }
      if (!ok) process.exitCode = 1;
    }
    if (opts.json) process.stdout.write(`${JSON.stringify(results)}\n`);
  } finally {
    if (!shared) redis.disconnect();
  }
}
