import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Registry } from 'prom-client';
import { produceDemoEvents } from '../../examples/fraud/produce';
import { MonitoringServer } from '../../src/monitoring/http-server';
import { StageMetrics } from '../../src/monitoring/metrics';
import { Pipeline } from '../../src/stages/pipeline';
import { findFreePort } from '../../src/stack/ports';
import { isolatedTopology, testEndpoints, uniqueSuffix, waitFor } from '../helpers/topology';

const endpoints = testEndpoints();

/** promtool and prometheus come from Debian's `prometheus` package (installed by .ci/run). */
function requireTool(name: string): string {
  const res = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
  if (res.status !== 0) throw new Error(`${name} not found: apt-get install -y prometheus`);
  return res.stdout.trim();
}

describe('metrics and health endpoints (real pipeline, promtool, Prometheus server)', () => {
  const suffix = uniqueSuffix();
  const topology = isolatedTopology('topologies/fraud-detection.yaml', suffix);
  const metrics = new StageMetrics(new Registry(), true);
  let pipeline: Pipeline | undefined;
  const server = new MonitoringServer({ registry: metrics.registry, port: 0, readiness: () => pipeline?.readiness() ?? { ready: false, checks: {} } });
  let url = '';
  let prometheus: ChildProcess | undefined;

  beforeAll(async () => {
    url = (await server.start()).url;
  });
  afterAll(async () => {
    prometheus?.kill('SIGTERM');
    await pipeline?.stop();
    await server.stop();
  });

  it('is alive but not ready before the stages hold partitions, and ready after', async () => {
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    expect((await fetch(`${url}/readyz`)).status).toBe(503);
    pipeline = await Pipeline.start({ topology, endpoints, metrics });
    const res = await fetch(`${url}/readyz`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { checks: { stages: { stage: string; assignedPartitions: number }[] } };
    // The repartition step the extract stage's windowed set implies (by cardId) is a stage of its own.
    expect(body.checks.stages.map((s) => s.stage)).toEqual(['extract-repartition', 'extract', 'score']);
    expect(body.checks.stages.every((s) => s.assignedPartitions === 3)).toBe(true);
  });

  it('exposes stage counters that promtool accepts', async () => {
    await produceDemoEvents({ ...endpoints, topic: `fraud.transactions.${suffix}`, count: 200, rate: 0, seed: 3 });
    await waitFor(() => pipeline!.stageCounters('score').produced >= 200, 60000, () => JSON.stringify(pipeline!.stageCounters('score')));
    const text = await (await fetch(`${url}/metrics`)).text();
    expect(text).toMatch(/tributary_stage_events_in_total\{stage="score",topic="fraud\.features\.[^"]+"\} 200/);
    expect(text).toMatch(/tributary_stage_events_out_total\{stage="extract",topic="fraud\.features\.[^"]+"\} 200/);
    expect(text).toContain('tributary_stage_event_to_output_seconds_bucket');
    const check = spawnSync(requireTool('promtool'), ['check', 'metrics'], { input: text, encoding: 'utf8' });
    expect(`${check.stdout}${check.stderr}`.trim()).toBe('');
    expect(check.status).toBe(0);
  });

  it('is scraped by a real Prometheus server', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-prom-'));
    const port = await findFreePort();
    const target = new URL(url).host;
    fs.writeFileSync(path.join(dir, 'prometheus.yml'), `global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: tributary\n    static_configs:\n      - targets: ['${target}']\n`);
    prometheus = spawn(requireTool('prometheus'), [`--config.file=${path.join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${path.join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`], { stdio: 'ignore' });
    const query = async (q: string) => {
      try {
        const res = await fetch(`http://127.0.0.1:${port}/api/v1/query?query=${encodeURIComponent(q)}`);
        const body = (await res.json()) as { data: { result: { value: [number, string] }[] } };
        return body.data.result.map((r) => Number(r.value[1]));
      } catch {
        return [];
      }
    };
    let events: number[] = [];
    const deadline = Date.now() + 60000;
    while (Date.now() < deadline) {
      events = await query('sum(tributary_stage_events_in_total{stage="score"})');
      if (events.length > 0 && events[0] >= 200) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    expect(await query('up{job="tributary"}')).toEqual([1]);
    expect(events[0]).toBe(200);
  });
});
