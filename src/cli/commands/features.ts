import { connectRedisClient } from '../../util/redis';
import * as path from 'node:path';
import type { Command } from 'commander';
import { collectGarbage, currentVersion, listVersions } from '../../features/batch-store';
import { loadFeatureFile, type LoadProgress } from '../../features/load-file';
import type { BatchFeatureSetSpec } from '../../features/spec';
import { resolveEndpoints } from '../../util/endpoints';
import { repoRoot } from '../../util/paths';
import { TributaryError } from '../../util/errors';
import { startOfUtcDay } from '../../util/time';
import { DEFAULT_TOPOLOGY, loadTopologyFile, TOPOLOGY_FLAGS } from '../topology-file';
import { nonNegativeInt, oneOf, positiveInt, UsageError, wantsJson } from '../options';
import { Progress } from '../../util/progress';

function batchSet(topologyFile: string, name: string): BatchFeatureSetSpec {
  const topology = loadTopologyFile(topologyFile);
  const sets = topology.spec.features?.sets ?? [];
  const set = sets.find((s) => s.name === name);
  if (!set) throw new TributaryError(`no feature set '${name}' in ${topology.file} (declared: ${sets.map((s) => s.name).join(', ') || 'none'})`);
  if (set.kind !== 'redis_batch') throw new TributaryError(`feature set '${name}' is ${set.kind}, not redis_batch: only batch sets are loaded from files`);
  return set;
}

/** `--redate-to`: ISO time, epoch ms, or "yesterday" (the UTC midnight before today). */
function parseRedate(value: string): number {
  if (value === 'yesterday') return startOfUtcDay(Date.now()) - 86_400_000;
  const ms = /^\d+$/.test(value) ? Number(value) : Date.parse(value);
  if (!Number.isFinite(ms)) throw new UsageError(`--redate-to: '${value}' is neither "yesterday", an ISO time nor epoch milliseconds`);
  return ms;
}

/** `tributary features load|versions|gc`: batch feature sets in Redis. */
export function registerFeatureCommands(program: Command): void {
  const features = program.command('features').description('batch feature sets in Redis: bulk load, versions, clean-up');
  features
    .command('load')
    .description('bulk-load a batch feature set (CSV or JSON lines) into a new version, then make it current atomically')
    .requiredOption('--set <name>', 'feature set declared in the topology (kind redis_batch)')
    .option('--file <path>', 'CSV with a header row, or JSON lines (.jsonl/.ndjson); default the set\'s config.file')
    .option(TOPOLOGY_FLAGS, 'topology file declaring the set', DEFAULT_TOPOLOGY)
    .option('--format <fmt>', 'csv or jsonl (default: from the file extension)', oneOf('csv', 'jsonl'))
    .option('--on-bad-row <policy>', 'skip: report and skip bad rows; reject: abort the load on the first one', oneOf('skip', 'reject'), 'skip' as const)
    .option('--batch-rows <n>', 'rows per pipelined round trip', positiveInt, 1000)
    .option('--grace-ms <ms>', 'delete versions retired longer ago than this (default: the set\'s gracePeriodMs or 10 min)', nonNegativeInt)
    .option('--redate-to <time>', 'shift every row\'s ts so the newest is this time: ISO, epoch ms, or "yesterday" (UTC midnight before today, as the demo does for the synthetic files)')
    .action(async (opts: { set: string; file?: string; topology: string; format?: 'csv' | 'jsonl'; onBadRow: 'skip' | 'reject'; batchRows: number; graceMs?: number; redateTo?: string }, cmd: Command) => {
      const set = batchSet(opts.topology, opts.set);
      const file = opts.file ?? (set.config.file && path.resolve(repoRoot(), set.config.file));
      if (!file) throw new TributaryError(`--file is required: feature set '${set.name}' declares no config.file`);
      const redateTo = opts.redateTo === undefined ? undefined : parseRedate(opts.redateTo);
      const redis = await connectRedisClient(resolveEndpoints().redisUrl);
      const bar = new Progress({ label: 'load', unit: 'rows' });
      const onProgress = (p: LoadProgress) => bar.update({ done: p.rows + p.bad, total: p.total, extra: p.bad ? `(${p.bad} bad)` : undefined });
      try {
        const res = await loadFeatureFile(redis, set, { file, format: opts.format, onBadRow: opts.onBadRow, batchRows: opts.batchRows, gracePeriodMs: opts.graceMs, redateTo, onProgress });
        bar.end();
        for (const b of res.bad.slice(0, 20)) process.stderr.write(`${file}:${b.line}: ${b.reason} (skipped)\n`);
        if (res.bad.length > 20) process.stderr.write(`... and ${res.bad.length - 20} more bad rows\n`);
        if (wantsJson(cmd)) process.stdout.write(`${JSON.stringify({ ...res, bad: res.bad.length })}\n`);
        else process.stdout.write(`${set.name}: version ${res.version} is current (${res.rows} rows, ${res.bad.length} bad, ${res.seconds.toFixed(2)} s; previous ${res.previous || 'none'}${res.removedVersions.length ? `; removed ${res.removedVersions.join(', ')}` : ''})\n`);
      } catch (err) {
        bar.end();
        const bad = (err as { bad?: Array<{ line: number; reason: string }> }).bad;
        if (bad) throw new TributaryError(`${file}:${bad[0].line}: ${bad[0].reason} (--on-bad-row reject: nothing loaded)`);
        throw err;
      } finally {
        redis.disconnect();
      }
    });

  features
    .command('versions')
    .description('list the versions of a batch feature set and which is current')
    .requiredOption('--set <name>')
    .action(async (opts: { set: string }, cmd: Command) => {
      const redis = await connectRedisClient(resolveEndpoints().redisUrl);
      try {
        const cur = await currentVersion(redis, opts.set);
        if (wantsJson(cmd)) {
          process.stdout.write(`${JSON.stringify({ set: opts.set, current: cur, versions: await listVersions(redis, opts.set) })}\n`);
          return;
        }
        for (const [v, m] of Object.entries(await listVersions(redis, opts.set))) {
          process.stdout.write(`${v === cur ? '*' : ' '} v${v} ${m.status} rows=${m.rows} loadedAt=${new Date(m.loadedAt).toISOString()}${m.retiredAt ? ` retiredAt=${new Date(m.retiredAt).toISOString()}` : ''}\n`);
        }
      } finally {
        redis.disconnect();
      }
    });

  features
    .command('gc')
    .description('delete versions retired longer ago than the grace period')
    .requiredOption('--set <name>')
    .option('--grace-ms <ms>', 'grace period', nonNegativeInt, 600000)
    .action(async (opts: { set: string; graceMs: number }, cmd: Command) => {
      const redis = await connectRedisClient(resolveEndpoints().redisUrl);
      try {
        const removed = await collectGarbage(redis, opts.set, opts.graceMs);
        if (wantsJson(cmd)) process.stdout.write(`${JSON.stringify({ set: opts.set, removed })}\n`);
        else process.stdout.write(`${opts.set}: removed ${removed.length ? removed.map((v) => `v${v}`).join(', ') : 'nothing'}\n`);
      } finally {
        redis.disconnect();
      }
    });
}
