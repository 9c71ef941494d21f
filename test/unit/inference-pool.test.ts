import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Registry } from 'prom-client';
import { InferenceRequestError } from '../../src/inference/batcher';
import { ExecutionProviderError, ModelIntegrityError, OnnxModel } from '../../src/inference/onnx-model';
import { InferencePool } from '../../src/inference/pool';
import { repoRoot } from '../../src/stack/paths';
import { firstWorkingProvider } from '../helpers/execution-providers';

const MODEL_DIR = path.join(repoRoot(), 'models', 'fraud', '1');
const golden = fs
  .readFileSync(path.join(MODEL_DIR, 'golden.jsonl'), 'utf8')
  .split('\n')
  .filter((l) => l.trim() !== '')
  .map((l) => JSON.parse(l) as { features: number[]; score: number });
const WIDTH = golden[0].features.length;
const goldenRows = Float32Array.from(golden.flatMap((g) => g.features));

/** Histogram sample count for a metric in a registry. */
async function histogramCount(registry: Registry, name: string): Promise<number> {
  const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === name);
  const values = (metric?.values ?? []) as { metricName?: string; value: number }[];
  return values.filter((v) => v.metricName === `${name}_count`).reduce((a, v) => a + v.value, 0);
}

describe('InferencePool (worker threads + onnxruntime)', () => {
  const registry = new Registry();
  let pool: InferencePool;
  let reference: OnnxModel;
  /** What ['cuda', 'cpu'] resolves to on this machine: cpu here, cuda on a CUDA host. */
  let expected: string;

  beforeAll(async () => {
    expected = (await firstWorkingProvider(path.join(MODEL_DIR, 'model.onnx'), ['cuda', 'cpu']))!;
    pool = await InferencePool.start({ dir: MODEL_DIR, workers: 2, executionProviders: ['cuda', 'cpu'], intraOpNumThreads: 1, maxBatchSize: 32, maxQueueDelayMs: 1, registry });
    reference = await OnnxModel.loadDir(MODEL_DIR);
  });
  afterAll(async () => {
    await pool?.close();
    await reference?.close();
  });

  it("runs ['cuda', 'cpu'] on the first provider that works here (cpu without CUDA) and reports the active provider per worker", () => {
    expect(['cuda', 'cpu']).toContain(expected);
    expect(pool.providers()).toEqual([expected, expected]);
  });

  it('scores the golden set like a single session and like Python (many concurrent requests, split/merged into batches of <= 32)', async () => {
    const single = await reference.score(goldenRows, golden.length);
    // 204 rows as requests of varying sizes, all in flight at once.
    const requests: Promise<Float32Array>[] = [];
    const bounds: [number, number][] = [];
    for (let start = 0, size = 1; start < golden.length; start += size, size = (size % 17) + 1) {
      const n = Math.min(size, golden.length - start);
      bounds.push([start, n]);
      requests.push(pool.submit(goldenRows.slice(start * WIDTH, (start + n) * WIDTH), n));
    }
    const results = await Promise.all(requests);
    results.forEach((scores, r) => {
      const [start, n] = bounds[r];
      for (let i = 0; i < n; i++) {
        expect(Math.abs(scores[i] - single[start + i])).toBeLessThanOrEqual(1e-6);
        expect(Math.abs(scores[i] - golden[start + i].score)).toBeLessThanOrEqual(1e-5);
      }
    });
  });

  it('records batch size, queue time and inference time histograms', async () => {
    expect(await histogramCount(registry, 'tributary_inference_batch_size')).toBeGreaterThan(0);
    expect(await histogramCount(registry, 'tributary_inference_queue_seconds')).toBeGreaterThan(0);
    expect(await histogramCount(registry, 'tributary_inference_seconds')).toBeGreaterThan(0);
    const text = await registry.metrics();
    expect(text).toContain(`tributary_inference_execution_provider{model="fraud",version="1",provider="${expected}"} 2`);
  });

  it('replaces a worker that exits and keeps serving', async () => {
    const before = pool.restarts;
    const replaced = new Promise((r) => pool.once('workerReplaced', r));
    pool.crashWorker(0, 9);
    await replaced;
    await pool.whenAllReady();
    expect(pool.restarts).toBe(before + 1);
    expect(pool.providers()).toEqual([expected, expected]);
    const scores = await pool.submit(goldenRows.slice(0, 10 * WIDTH), 10);
    expect(Array.from(scores).map((s, i) => Math.abs(s - golden[i].score) < 1e-5)).toEqual(Array(10).fill(true));
    expect(await registry.getSingleMetricAsString('tributary_inference_worker_restarts_total')).toContain('reason="exit_9"} 1');
  });
});

describe('InferencePool failure handling', () => {
  it('fails clearly when no configured execution provider is available on this machine', async () => {
    // Providers this machine cannot run (cuda and tensorrt without their libraries; on a CUDA host, a name onnxruntime does not know).
    const weights = path.join(MODEL_DIR, 'model.onnx');
    const unusable: string[] = [];
    for (const name of ['cuda', 'tensorrt', 'no-such-provider']) if ((await firstWorkingProvider(weights, [name])) === undefined) unusable.push(name);
    const err = await InferencePool.start({ dir: MODEL_DIR, workers: 1, executionProviders: unusable, registry: new Registry() }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(ExecutionProviderError);
    expect((err as Error).message).toContain(`no configured execution provider is available (tried ${unusable.join(', ')})`);
    for (const name of unusable) expect((err as Error).message).toContain(`\n  ${name}: `);
  });

  it('refuses to load weights whose sha256 does not match the card', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-model-'));
    try {
      fs.copyFileSync(path.join(MODEL_DIR, 'model.onnx'), path.join(dir, 'model.onnx'));
      const card = JSON.parse(fs.readFileSync(path.join(MODEL_DIR, 'model.json'), 'utf8'));
      card.sha256 = '0'.repeat(64);
      fs.writeFileSync(path.join(dir, 'model.json'), JSON.stringify(card));
      await expect(InferencePool.start({ dir, workers: 1, registry: new Registry() })).rejects.toThrow(ModelIntegrityError);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('retries the in-flight requests of a worker that crashed under them: a one-off crash is invisible to callers', async () => {
    const budget = new SharedArrayBuffer(4);
    new Int32Array(budget)[0] = 1; // the first marker batch crashes its worker, the retry does not
    const pool = await InferencePool.start({ dir: MODEL_DIR, workers: 1, maxQueueDelayMs: 0, registry: new Registry(), testHooks: { crashMarker: -7, crashBudget: budget } });
    try {
      const rows = goldenRows.slice(0, 4 * WIDTH);
      rows[0] = -7;
      const scores = await pool.submit(rows, 4);
      expect(scores).toHaveLength(4);
      expect(pool.restarts).toBe(1);
      expect(new Int32Array(budget)[0]).toBeLessThanOrEqual(0);
    } finally {
      await pool.close();
    }
  });

  it('fails a request explicitly when its retry crashes too, while requests batched with it are served', async () => {
    const budget = new SharedArrayBuffer(4);
    new Int32Array(budget)[0] = 100;
    const pool = await InferencePool.start({ dir: MODEL_DIR, workers: 2, maxQueueDelayMs: 20, registry: new Registry(), testHooks: { crashMarker: -7, crashBudget: budget } });
    try {
      const poisonRows = goldenRows.slice(0, 2 * WIDTH);
      poisonRows[0] = -7;
      const poison = pool.submit(poisonRows, 2);
      const healthy = pool.submit(goldenRows.slice(10 * WIDTH, 15 * WIDTH), 5);
      const [p, h] = await Promise.allSettled([poison, healthy]);
      expect(p.status).toBe('rejected');
      expect((p as PromiseRejectedResult).reason).toBeInstanceOf(InferenceRequestError);
      expect(((p as PromiseRejectedResult).reason as Error).message).toMatch(/failed after a retry: inference worker \d exited with code 70/);
      expect(h.status).toBe('fulfilled');
      const hs = (h as PromiseFulfilledResult<Float32Array>).value;
      hs.forEach((s, i) => expect(Math.abs(s - golden[10 + i].score)).toBeLessThanOrEqual(1e-5));
      expect(pool.restarts).toBe(2); // the merged batch, then the poison request's retry
      await pool.whenAllReady();
    } finally {
      await pool.close();
    }
  });

  it('pins workers to device ids: devices x workersPerDevice, each on the first provider that works for its device', async () => {
    const weights = path.join(MODEL_DIR, 'model.onnx');
    const perDevice = [await firstWorkingProvider(weights, ['cuda', 'cpu'], 0), await firstWorkingProvider(weights, ['cuda', 'cpu'], 1)];
    const pool = await InferencePool.start({ dir: MODEL_DIR, devices: [0, 1], workersPerDevice: 2, warmupRuns: 1, executionProviders: ['cuda', 'cpu'], registry: new Registry() });
    try {
      expect(pool.workerCount).toBe(4);
      expect(pool.deviceIds()).toEqual([0, 0, 1, 1]);
      expect(pool.providers()).toEqual([perDevice[0], perDevice[0], perDevice[1], perDevice[1]]);
    } finally {
      await pool.close();
    }
  });
});
