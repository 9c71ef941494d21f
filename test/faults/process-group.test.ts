/**
 * `tributary run --processes 2` (src/cli/process-group.ts) against the real stack: two worker
 * processes in the topology's groups under one supervisor. Judged by Kafka's read_committed
 * console consumer (committedKeys) and by the supervisor's own /metrics and /readyz.
 */
import { produceDemoEvents } from '../../examples/fraud/produce';
import { testEndpoints, uniqueSuffix } from '../helpers/topology';
import { committedKeys, faultTopologyFile, generatedKeys, lossAndDuplicates, recordFault, StageProcess } from '../helpers/processes';

const endpoints = testEndpoints();

/** `run --processes 2` on this topology file, once the supervisor started both workers and both pipelines run: the workers' pids. */
async function startGroup(file: string): Promise<{ group: StageProcess; pids: number[] }> {
  const group = new StageProcess(file, ['--processes', '2']);
  const started = await group.waitFor('the group start', () => group.entries('process group started')[0]);
  await group.waitFor('both pipelines running', () => (group.entries('pipeline running').length >= 2 ? true : undefined));
  return { group, pids: started.pids as number[] };
}

/** The sum of a counter's samples with these labels in a Prometheus text exposition. */
function counterSum(text: string, name: string, labels: Record<string, string>): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

describe('run --processes 2: one topology in two processes under a supervisor (real processes, real broker)', () => {
  it('both workers take partitions and score; every event exactly once; /metrics is their sum and /readyz lists both; SIGTERM stops both gracefully with exit 0', async () => {
    const suffix = uniqueSuffix();
    const file = faultTopologyFile(suffix);
    const count = 1500;
    const seed = 611;
    const { group, pids } = await startGroup(file);
    expect(pids).toHaveLength(2);
    const url = group.entries('monitoring server listening')[0].url as string;
    await produceDemoEvents({ ...endpoints, topic: `fraud.transactions.${suffix}`, count, rate: 300, seed });
    const seen = await committedKeys(endpoints, `fraud.predictions.${suffix}`, count, 120000, suffix);
    expect(lossAndDuplicates(generatedKeys(seed, count), seen)).toEqual({ lost: 0, duplicated: 0 });

    // Each worker owns some of the scoring chain's partitions (3 in the topology: split 2 / 1).
    const owners = new Set(group.entries('lanes own their partitions').filter((e) => String(e.group).endsWith('.extract')).map((e) => e.pid));
    expect([...owners].sort()).toEqual([...pids].sort());
    const ready = await fetch(`${url}/readyz`);
    const report = (await ready.json()) as { ready: boolean; checks: { workers: Array<{ pid: number; ready: boolean }> } };
    expect(ready.status).toBe(200);
    expect(report.checks.workers.map((w) => [w.pid, w.ready])).toEqual(pids.map((p) => [p, true]));
    // The supervisor's /metrics adds the workers' counters: what the score stage produced across
    // both is at least every event (a rebalance may have made a worker redo an aborted batch).
    const metrics = await (await fetch(`${url}/metrics`)).text();
    const scored = counterSum(metrics, 'tributary_stage_events_out_total', { stage: 'score' });
    expect(scored).toBeGreaterThanOrEqual(count);

    expect((await group.stop()).code).toBe(0);
    const stopped = group.entries('worker stopped');
    expect(stopped.map((e) => e.code)).toEqual([0, 0]);
    expect(new Set(group.entries('pipeline stopped').map((e) => e.pid))).toEqual(new Set(pids));
    // A clean run: no ERROR or WARN from the supervisor or either worker (their stops included).
    expect(group.output).not.toMatch(/"level":(40|50|60)\b/);
  });

  it('a worker killed -9 while events flow is restarted by the supervisor; its partitions go to the other meanwhile; 0 lost, 0 duplicated', async () => {
    const suffix = uniqueSuffix();
    const file = faultTopologyFile(suffix);
    const count = 3000;
    const seed = 612;
    const { group, pids } = await startGroup(file);
    const producing = produceDemoEvents({ ...endpoints, topic: `fraud.transactions.${suffix}`, count, rate: 200, seed });
    await new Promise((r) => setTimeout(r, 4000));
    const victim = pids[0];
    process.kill(victim, 'SIGKILL');
    const killedAt = Date.now();
    const restarted = await group.waitFor('the worker restart', () => group.entries('worker restarted')[0]);
    expect(restarted.worker).toBe(0);
    expect(restarted.pid).not.toBe(victim);
    await producing;
    const seen = await committedKeys(endpoints, `fraud.predictions.${suffix}`, count, 120000, suffix);
    const { lost, duplicated } = lossAndDuplicates(generatedKeys(seed, count), seen);
    recordFault({ scenario: 'run --processes 2: one worker killed -9, restarted by the supervisor', events: count, lost, duplicated, recoverySeconds: (Date.now() - killedAt) / 1000 });
    expect(group.entries('worker exited while running; its partitions go to the others until it is restarted')[0]).toMatchObject({ worker: 0, pid: victim, signal: 'SIGKILL' });
    expect((await group.stop()).code).toBe(0);
    expect({ lost, duplicated }).toEqual({ lost: 0, duplicated: 0 });
  });
});
