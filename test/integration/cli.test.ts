import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Prediction } from '../../src/client/generated/avro-types';
import { TopicConsumer } from '../../src/client/topic-consumer';
import { produceDemoEvents } from '../../examples/fraud/produce';
import { repoRoot } from '../../src/stack/paths';
import { testEndpoints, uniqueSuffix, waitFor } from '../helpers/topology';
import { faultTopologyFile } from '../helpers/processes';

const CLI = path.join(repoRoot(), 'dist/cli/main.js');
const endpoints = testEndpoints();

function cli(args: string[], timeoutMs = 120000) {
  return spawnSync(process.execPath, [CLI, ...args], { cwd: repoRoot(), encoding: 'utf8', timeout: timeoutMs, env: { ...process.env, TRIBUTARY_LOG_LEVEL: 'warn' } });
}

function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

describe('tributary CLI (built dist, real stack)', () => {
  beforeAll(() => {
    if (!fs.existsSync(CLI)) throw new Error('dist/ is missing: run `npm run build` (npm test does)');
  });

  it('refuses to start a topology with a bad field and names its path', () => {
    const file = faultTopologyFile(uniqueSuffix(), (doc) => (doc.stages[1].config.threshold = 'high'));
    const res = cli(['run', file]);
    expect(res.status).toBe(1);
    expect(res.stderr).toContain('stages[1].config.threshold');
  });

  it('runs each stage in its own process, and both drain and exit 0 on SIGTERM', async () => {
    const suffix = uniqueSuffix();
    const file = faultTopologyFile(suffix);
    const env = { ...process.env, TRIBUTARY_LOG_LEVEL: 'info' };
    const stages = ['extract', 'score'].map((stage) => spawn(process.execPath, [CLI, 'run', file, '--stage', stage, '--metrics-port', '0'], { cwd: repoRoot(), env, stdio: ['ignore', 'ignore', 'pipe'] }));
    const logs: string[] = [];
    stages.forEach((c) => c.stderr!.on('data', (d: Buffer) => logs.push(d.toString())));
    try {
      await waitFor(() => logs.join('').split('"pipeline running"').length - 1 >= 2, 90000, () => `stages did not start: ${logs.join('').slice(-2000)}`);
      // Each process serves its own health endpoints: ready once its stage holds partitions.
      const urls = [...logs.join('').matchAll(/"url":"(http:\/\/127\.0\.0\.1:\d+)"/g)].map((m) => m[1]);
      expect(urls).toHaveLength(2);
      for (const url of urls) {
        expect((await fetch(`${url}/healthz`)).status).toBe(200);
        const ready = await fetch(`${url}/readyz`);
        expect(ready.status).toBe(200);
        expect(((await ready.json()) as { ready: boolean }).ready).toBe(true);
      }
      const seen: Prediction[] = [];
      const consumer = new TopicConsumer({ ...endpoints, topic: `fraud.predictions.${suffix}`, schema: 'prediction', groupId: `cli-test-${suffix}` });
      await consumer.run((p) => {
        seen.push(p);
      });
      await produceDemoEvents({ ...endpoints, topic: `fraud.transactions.${suffix}`, count: 100, rate: 0, seed: 5 });
      await waitFor(() => seen.length >= 100, 60000, () => `${seen.length} predictions`);
      await consumer.stop();
      expect(new Set(seen.map((p) => p.key)).size).toBe(100);
    } finally {
      const codes = await Promise.all(stages.map((c) => {
        const done = exited(c);
        c.kill('SIGTERM');
        return done;
      }));
      expect(codes).toEqual([0, 0]);
    }
    expect(logs.join('')).toContain('chain stopped');
  });

  it('runs the demo end to end and accounts for every event', () => {
    const res = cli(['demo', '--count', '200', '--rate', '0', '--bootstrap', '50', '--json'], 150000);
    expect(res.status).toBe(0);
    const summary = JSON.parse(res.stdout);
    expect(summary.predictions).toBe(200);
    expect(summary.deadLettered).toBe(5);
    expect(Object.keys(summary.deadLetterKinds).sort()).toEqual(['DECODE_ERROR', 'MISSING_FIELD', 'NOT_AVRO', 'UNKNOWN_SCHEMA', 'WRONG_TYPE']);
    expect(summary.latencyMs.p99).toBeGreaterThan(0);
    expect(summary.labels).toBe(200);
    expect(summary.shadow.records).toBe(200);
    expect(fs.existsSync(summary.shadow.report.html)).toBe(true);
    // --json: every stderr line is JSON. A clean run logs no ERROR, and its only WARN lines are the
    // ones README's demo section explains: the five malformed events it injects, dead-lettered.
    const lines = res.stderr.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as { level: number; msg: string; kinds?: string[] });
    expect(lines.filter((l) => l.level >= 50)).toEqual([]);
    const warnings = lines.filter((l) => l.level === 40);
    expect(warnings.map((l) => l.msg)).toEqual(warnings.map(() => 'dead-lettered records'));
    expect(warnings.flatMap((l) => l.kinds ?? []).sort()).toEqual(['DECODE_ERROR', 'MISSING_FIELD', 'NOT_AVRO', 'UNKNOWN_SCHEMA', 'WRONG_TYPE']);
  });

  it('tails a topic as decoded JSON lines', () => {
    const res = cli(['tail', 'fraud-demo.predictions', '--from-beginning', '--max', '3'], 60000); // written by the demo above
    expect(res.status).toBe(0);
    const lines = res.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines).toHaveLength(3);
    for (const l of lines) {
      expect(typeof l.value.score).toBe('number');
      expect(l.value.modelName).toBe('fraud');
    }
  });
});
