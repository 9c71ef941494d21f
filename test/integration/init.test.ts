/**
 * `tributary init DIR`: the scaffold validates as written; once a real ONNX model is dropped in
 * (scripts/make-onnx-model.js writes model.onnx and its sha256 into the card) it runs against the
 * real stack with the built CLI: produce the example events, read the predictions back.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Prediction } from '../../src/client/generated/avro-types';
import { TopicConsumer } from '../../src/client/topic-consumer';
import { repoRoot } from '../../src/util/paths';
import { testEndpoints, uniqueSuffix, waitFor } from '../helpers/topology';

const CLI = path.join(repoRoot(), 'dist/cli/main.js');
const endpoints = testEndpoints();

function run(args: string[], cwd: string) {
  return spawnSync(process.execPath, args, { cwd, encoding: 'utf8', timeout: 60000, env: { ...process.env, TRIBUTARY_LOG_LEVEL: 'warn' } });
}

describe('tributary init (built CLI, real stack)', () => {
  beforeAll(() => {
    if (!fs.existsSync(CLI)) throw new Error('dist/ is missing: run `npm run build` (npm test does)');
  });

  it('scaffolds a pipeline that validates, and with a model dropped in, scores events from the local stack', async () => {
    const suffix = uniqueSuffix();
    const name = `init-${suffix}`;
    const parent = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-init-'));
    const dir = path.join(parent, 'my-pipeline');

    const init = run([CLI, '--json', 'init', dir, '--name', name], parent);
    expect(init.stderr).toBe('');
    expect(init.status).toBe(0);
    const created = JSON.parse(init.stdout) as { dir: string; name: string; files: string[] };
    expect(created.name).toBe(name);
    expect(created.files.sort()).toEqual(['README.md', 'events.jsonl', 'features/features.yaml', `models/${name}/1/model.json`, `schemas/${name}-event.avsc`, 'topology.yaml']);
    // Refuses to scaffold over what is there.
    const again = run([CLI, 'init', dir], parent);
    expect(again.status).toBe(2);
    expect(again.stderr).toContain('is not empty');

    const validate = run([CLI, 'validate', 'topology.yaml'], dir);
    expect(validate.stderr).toBe('');
    expect(validate.status).toBe(0);
    expect(validate.stdout).toContain('topology.yaml: ok (2 stages, 4 topics)');

    // Drop a real ONNX model in: logistic regression over (amount, quantity, is_web).
    const weights = [0.01, 0.5, 1.5];
    const bias = -2;
    const model = run([path.join(repoRoot(), 'scripts/make-onnx-model.js'), `models/${name}/1`, '--weights', weights.join(','), '--bias', String(bias)], dir);
    expect(model.stderr).toBe('');
    expect(model.status).toBe(0);
    expect(fs.statSync(path.join(dir, 'models', name, '1', 'model.onnx')).size).toBeGreaterThan(100);

    const child = spawn(process.execPath, [CLI, 'run', 'topology.yaml', '--metrics-port', '0'], { cwd: dir, env: { ...process.env, TRIBUTARY_LOG_LEVEL: 'info' }, stdio: ['ignore', 'ignore', 'pipe'] });
    const logs: string[] = [];
    child.stderr!.on('data', (d: Buffer) => logs.push(d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const seen: Prediction[] = [];
    const consumer = new TopicConsumer({ ...endpoints, topic: `${name}.predictions`, schema: 'prediction', groupId: `init-test-${suffix}`, fromBeginning: true });
    try {
      await waitFor(() => logs.join('').includes('"pipeline running"'), 90000, () => `pipeline did not start: ${logs.join('').slice(-3000)}`);
      await consumer.run((p) => {
        seen.push(p);
      });
      const produce = run([CLI, 'produce', '--topology', 'topology.yaml', '--topic', `${name}.events`, '--key', 'eventId', 'events.jsonl'], dir);
      expect(produce.stderr).toBe('');
      expect(produce.stdout).toBe(`sent 20 events to ${name}.events\n`);
      await waitFor(() => seen.length >= 20, 60000, () => `${seen.length} predictions; logs: ${logs.join('').slice(-2000)}`);
    } finally {
      await consumer.stop();
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);

    // Every example event scored once, by the dropped-in model, with the score its weights give.
    const events = fs.readFileSync(path.join(dir, 'events.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { eventId: string; amount: number; quantity: number | null; channel: string });
    const byKey = new Map(seen.map((p) => [p.key, p]));
    expect(byKey.size).toBe(20);
    for (const e of events) {
      const p = byKey.get(e.eventId)!;
      expect(p.modelName).toBe(name);
      expect(p.modelVersion).toBe('1');
      const x = [e.amount, e.quantity ?? 0, e.channel === 'web' ? 1 : 0];
      const expected = 1 / (1 + Math.exp(-(x.reduce((s, v, i) => s + v * weights[i], 0) + bias)));
      expect(p.score).toBeCloseTo(expected, 5);
      expect(p.label).toBe(p.score >= 0.5);
    }
    expect(logs.join('')).not.toMatch(/"level":"?(error|warn|40|50)/i);
  });
});
