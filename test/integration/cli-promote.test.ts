import { spawn } from 'node:child_process';
import Redis from 'ioredis';
import { readControl } from '../../src/inference/model-control';
import { Pipeline } from '../../src/stages/pipeline';
import { repoRoot } from '../../src/stack/paths';
import { impossibleGate, stage, tempModelRepo, v1Topology } from '../helpers/model-repo';
import { CLI } from '../helpers/processes';
import { testEndpoints, uniqueSuffix } from '../helpers/topology';

const endpoints = testEndpoints();

/** Runs the CLI without blocking this process's event loop (the pipeline under test runs in it). */
function cli(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: repoRoot(), env: { ...process.env, TRIBUTARY_LOG_LEVEL: 'warn' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('exit', (status) => resolve({ status, stdout, stderr }));
  });
}

describe('tributary models promote: checks the version, waits for the swap, reports refusals', () => {
  const suffix = uniqueSuffix();
  // 1: live; 2: a good candidate; 3: a gate bound it cannot meet.
  const repo = tempModelRepo({ '1': null, '2': null, '3': impossibleGate });
  const topology = v1Topology(suffix, repo, (spec) => {
    stage(spec, 'score').config.hotSwap = { policy: 'explicit', pollIntervalMs: 300 };
  });
  const group = `${topology.spec.name}.score`;
  const redis = new Redis(endpoints.redisUrl!);
  let pipeline: Pipeline;

  beforeAll(async () => {
    pipeline = await Pipeline.start({ topology, endpoints });
    // The stage reports its serving status to Redis once it runs.
    const deadline = Date.now() + 30000;
    while ((await readControl(redis, group)).instances.length !== 1) {
      if (Date.now() > deadline) throw new Error('the stage never reported its serving status');
      await new Promise((r) => setTimeout(r, 200));
    }
  });
  afterAll(async () => {
    await pipeline?.stop();
    redis.disconnect();
  });

  it('a version that does not exist: exit 2, nothing requested', async () => {
    const res = await cli(['models', 'promote', 'fraud@9', '--group', group, '--repository', repo]);
    expect(res.status).toBe(2);
    expect(res.stderr).toContain(`fraud@9 does not exist in ${repo} (versions: 1, 2, 3)`);
    expect((await readControl(redis, group)).desired).toBeUndefined();
  });

  it('a refused version: waits by default, prints the reason, exit 1; the live version stays', async () => {
    const res = await cli(['models', 'promote', 'fraud@3', '--group', group, '--repository', repo]);
    expect(res.status).toBe(1);
    expect(res.stderr).toMatch(/promote of 3 in .* refused:\n {2}\S+: gate failed: confidence\.rocAuc/);
    expect((await readControl(redis, group)).instances.map((i) => i.live)).toEqual(['1']);
  });

  it('a good version with --json: one JSON result, swapped, exit 0', async () => {
    const res = await cli(['--json', 'models', 'promote', 'fraud@2', '--group', group, '--repository', repo]);
    expect(res.status).toBe(0);
    const [result] = JSON.parse(res.stdout) as Array<{ group: string; outcome: string; version: string }>;
    expect(result).toMatchObject({ group, version: '2', outcome: 'swapped' });
    expect((await readControl(redis, group)).instances.map((i) => i.live)).toEqual(['2']);
  });
});
