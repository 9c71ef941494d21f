import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Registry } from 'prom-client';
import { InferenceRequestError, InferenceTimeoutError } from '../../src/inference/batcher';
import { ExecutionProviderError, ModelIntegrityError, OnnxModel } from '../../src/inference/onnx-model';
import { InferencePool } from '../../src/inference/pool';
import { repoRoot } from '../../src/stack/paths';
import { firstWorkingProvider } from '../helpers/execution-providers';
import { goldenMatrix, readGolden } from '../helpers/golden';

const MODEL_DIR = path.join(repoRoot(), 'models', 'fraud', '1');
const golden = readGolden(MODEL_DIR);
const WIDTH = golden[0].features.length;
const goldenRows = goldenMatrix(golden);

/** Histogram sample count for a metric in a registry. */
async function histogramCount(registry: Registry, name: string): Promise<number> {
  const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === name);
  const values = (metric?.values ?? []) as { metricName?: string; value: number }[];
  return values.filter((v) => v.metricName === `${name}_count`).reduce((a, v) => a + v.value, 0);
}

/**
 * Submits the golden set as concurrent requests of 1..cycle rows, all in flight at once, and checks
 * every score against one session's and Python's; returns how many requests it made.
 */
async function expectGoldenScores(pool: InferencePool, reference: OnnxModel, cycle: number): Promise<number> {
  const single = await reference.score(goldenRows, golden.length);
  const requests: Promise<Float32Array>[] = [];
  const bounds: [number, number][] = [];
  for (let start = 0, size = 1; start < golden.length; start += size, size = (size % cycle) + 1) {
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
  return requests.length;
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
    // 204 rows as requests of varying sizes, all in flight at once.
    await expectGoldenScores(pool, reference, 17);
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

describe('InferencePool in-thread (workers: 0)', () => {
  it('scores on the calling thread like a single session: no worker thread, concurrent requests merged into batches', async () => {
    const registry = new Registry();
    const threadsBefore = (process as unknown as { getActiveResourcesInfo(): string[] }).getActiveResourcesInfo().filter((r) => r === 'MessagePort').length;
    const pool = await InferencePool.start({ dir: MODEL_DIR, workers: 0, intraOpNumThreads: 1, maxBatchSize: 32, maxQueueDelayMs: 1, warmupRuns: 1, registry });
    const reference = await OnnxModel.loadDir(MODEL_DIR);
    try {
      expect(pool.workerCount).toBe(0);
      expect(pool.providers()).toEqual(['cpu']);
      // A worker thread would hold a MessagePort open in this process.
      expect((process as unknown as { getActiveResourcesInfo(): string[] }).getActiveResourcesInfo().filter((r) => r === 'MessagePort').length).toBe(threadsBefore);
      const requests = await expectGoldenScores(pool, reference, 13);
      // Requests were merged: fewer batches than requests.
      const batches = await histogramCount(registry, 'tributary_inference_batch_size');
      expect(batches).toBeGreaterThan(0);
      expect(batches).toBeLessThan(requests);
      expect(await registry.metrics()).toContain('tributary_inference_execution_provider{model="fraud",version="1",provider="cpu"} 1');
    } finally {
      await pool.close();
      await reference.close();
    }
  });

  it('close while a batch is in flight: that batch finishes with its scores, queued requests fail, the session is released after it', async () => {
    const pool = await InferencePool.start({ dir: MODEL_DIR, workers: 0, maxQueueDelayMs: 0, warmupRuns: 1, registry: new Registry(), testHooks: { delayMs: 100 } });
    const inFlight = pool.submit(goldenRows.slice(0, 4 * WIDTH), 4);
    const queued = pool.submit(goldenRows.slice(4 * WIDTH, 8 * WIDTH), 4);
    const settled = Promise.allSettled([inFlight, queued]);
    await new Promise((r) => setTimeout(r, 20));
    await pool.close();
    const [a, b] = await settled;
    expect(a.status).toBe('fulfilled');
    (a as PromiseFulfilledResult<Float32Array>).value.forEach((s, i) => expect(Math.abs(s - golden[i].score)).toBeLessThanOrEqual(1e-5));
    expect(b.status).toBe('rejected');
    expect(((b as PromiseRejectedResult).reason as Error).message).toContain('closed');
    await expect(pool.submit(goldenRows.slice(0, WIDTH), 1)).rejects.toThrow(/closed/);
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

  it.each([
    [1, 'inference worker 0: '],
    [0, 'inference in-thread: '],
  ])('a request the model cannot score fails alone: the requests merged into its batch are scored (real onnxruntime, workers: %i)', async (workers, source) => {
    const registry = new Registry();
    // One worker (or none: in-thread), and a queue delay that lets concurrent requests merge into one batch.
    const pool = await InferencePool.start({ dir: MODEL_DIR, workers, maxQueueDelayMs: 30, warmupRuns: 1, registry, testHooks: { failMarker: -9 } });
    try {
      const badRows = goldenRows.slice(20 * WIDTH, 23 * WIDTH);
      badRows[1 * WIDTH] = -9; // its second row is one the worker cannot score
      const a = pool.submit(goldenRows.slice(0, 4 * WIDTH), 4);
      const bad = pool.submit(badRows, 3);
      const c = pool.submit(goldenRows.slice(40 * WIDTH, 45 * WIDTH), 5);
      const [ra, rbad, rc] = await Promise.allSettled([a, bad, c]);
      expect(rbad.status).toBe('rejected');
      const reason = (rbad as PromiseRejectedResult).reason as Error;
      expect(reason).toBeInstanceOf(InferenceRequestError);
      expect(reason.message).toBe(`inference of 3 rows ${source}test hook: cannot score a row marked -9`);
      expect(ra.status).toBe('fulfilled');
      expect(rc.status).toBe('fulfilled');
      (ra as PromiseFulfilledResult<Float32Array>).value.forEach((s, i) => expect(Math.abs(s - golden[i].score)).toBeLessThanOrEqual(1e-5));
      (rc as PromiseFulfilledResult<Float32Array>).value.forEach((s, i) => expect(Math.abs(s - golden[40 + i].score)).toBeLessThanOrEqual(1e-5));
      // One merged batch of 12 rows, then each request alone: 4 batches, 24 rows.
      expect(await histogramCount(registry, 'tributary_inference_batch_size')).toBe(4);
      expect(pool.restarts).toBe(0);
      expect(await pool.submit(goldenRows.slice(0, 2 * WIDTH), 2)).toHaveLength(2);
    } finally {
      await pool.close();
    }
  });

  it.each([1, 0])('times out a request stuck behind a slow batch with InferenceTimeoutError; its late result breaks nothing (real onnxruntime, workers: %i)', async (workers) => {
    const registry = new Registry();
    // Every batch takes >= 250 ms; one worker (or in-thread); no merging (maxQueueDelayMs 0, batches of 4 rows).
    const pool = await InferencePool.start({ dir: MODEL_DIR, workers, maxBatchSize: 4, maxQueueDelayMs: 0, warmupRuns: 1, requestTimeoutMs: 400, registry, testHooks: { delayMs: 250 } });
    try {
      const first = pool.submit(goldenRows.slice(0, 4 * WIDTH), 4);
      const second = pool.submit(goldenRows.slice(4 * WIDTH, 8 * WIDTH), 4); // waits ~250 ms, then needs 250 more
      const [r1, r2] = await Promise.allSettled([first, second]);
      expect(r1.status).toBe('fulfilled');
      (r1 as PromiseFulfilledResult<Float32Array>).value.forEach((s, i) => expect(Math.abs(s - golden[i].score)).toBeLessThanOrEqual(1e-5));
      expect(r2.status).toBe('rejected');
      expect((r2 as PromiseRejectedResult).reason).toBeInstanceOf(InferenceTimeoutError);
      expect(((r2 as PromiseRejectedResult).reason as Error).message).toBe('inference of 4 rows timed out after 400 ms');
      // The timed-out batch still runs on the worker; its result arrives and is discarded.
      while ((await histogramCount(registry, 'tributary_inference_seconds')) < 2) await new Promise((r) => setTimeout(r, 20));
      // The next request is scored, with its own scores.
      const third = await pool.submit(goldenRows.slice(8 * WIDTH, 12 * WIDTH), 4);
      third.forEach((s, i) => expect(Math.abs(s - golden[8 + i].score)).toBeLessThanOrEqual(1e-5));
      expect(pool.restarts).toBe(0);
      expect((await registry.getSingleMetricAsString('tributary_inference_requests_failed_total'))).toContain('tributary_inference_requests_failed_total{model="fraud",version="1"} 1');
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
