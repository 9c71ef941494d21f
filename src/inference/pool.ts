import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { Registry } from 'prom-client';
import { TributaryError } from '../util/errors';
import { createLogger, type Logger } from '../util/logger';
import { DynamicBatcher, RetriableBatchError } from './batcher';
import { InferenceMetrics } from './metrics';
import { readModelCard, type ModelCard } from './model-card';
import { ExecutionProviderError, ModelIntegrityError, OnnxModel, type OnnxModelOptions } from './onnx-model';
import type { FromWorker, PoolWorkerData, ToWorker } from './pool-worker';
import { failMarkerIn, type PoolTestHooks } from './pool-test-hooks';

export { InferenceRequestError, InferenceTimeoutError } from './batcher';

/** The pool could not start (no worker became ready) or lost every worker. */
export class PoolError extends TributaryError {}

export interface BatchingOptions {
  /** Most rows per batch sent to a worker (default 256). */
  maxBatchSize?: number;
  /** How long a non-full batch may wait for more rows, ms (default 1; 0 = take what is queued). */
  maxQueueDelayMs?: number;
  /** Bound on queued rows; beyond it submits wait and `saturated()` is true (default 4096). */
  maxQueueRows?: number;
  /** Longest a request may take from submit to its scores, queue wait included, ms (default 30000; 0: no limit). It then rejects with InferenceTimeoutError. */
  requestTimeoutMs?: number;
}

export interface InferencePoolOptions extends BatchingOptions {
  /** models/<name>/<version> directory (card + weights). */
  dir: string;
  /**
   * Worker threads (default 1). With `devices`, defaults to devices.length x workersPerDevice.
   * 0: no worker thread — one session scores on the caller's own thread (in-thread), which saves
   * the hand-over to a worker and back per batch (a message each way and a thread wake-up) but
   * blocks the caller's event loop for each batch's run: for models whose batch runs in well under
   * a millisecond (README "Inference", in-thread scoring). On a GPU it uses the first of `devices`.
   */
  workers?: number;
  /** GPU ordinals; worker i is pinned to devices[floor(i / workersPerDevice) % devices.length] (passed as the cuda/tensorrt `deviceId`). */
  devices?: number[];
  workersPerDevice?: number;
  executionProviders?: string[];
  intraOpNumThreads?: number;
  interOpNumThreads?: number;
  /** Warm-up runs per worker at load (default 3) of `warmupBatchSize` rows (default maxBatchSize). */
  warmupRuns?: number;
  warmupBatchSize?: number;
  /** A worker that exits is replaced; after this many consecutive failed replacements its slot is given up (default 3). */
  maxConsecutiveRestarts?: number;
  /** prom-client registry for the metrics (default: prom-client's global registry). */
  registry?: Registry;
  logger?: Logger;
  /** Tests only. */
  testHooks?: PoolTestHooks;
}

interface Task {
  id: number;
  count: number;
  rows?: Float32Array;
  resolve: (scores: Float32Array) => void;
  reject: (err: Error) => void;
}

interface Slot {
  index: number;
  deviceId?: number;
  worker?: Worker;
  /** In-thread mode (workers: 0): the session this thread scores with. */
  model?: OnnxModel;
  /** In-thread mode: the batch being scored (close waits for it before releasing the session). */
  scoring?: Promise<unknown>;
  ready: boolean;
  busy?: Task;
  provider?: string;
  failedStarts: number;
  dead: boolean;
}

/** Where the worker script is: the compiled .js beside this file, or the .ts source under ts-jest. */
function spawnWorker(workerData: PoolWorkerData): Worker {
  const ext = path.extname(__filename);
  const script = path.join(__dirname, `pool-worker${ext}`);
  if (ext !== '.ts') return new Worker(script, { workerData });
  // Running from TypeScript sources (tests): transpile on require inside the worker, with the
  // project's own TypeScript (a dev dependency, so this path never runs from dist).
  // Transpiled files are cached on disk by content hash: every worker start would otherwise load
  // TypeScript and transpile the whole import graph again.
  const typescript = require.resolve('typescript', { paths: [__dirname] });
  // In the repository's node_modules/.cache (where tools keep such caches), not the temp folder:
  // each test file has a temp folder of its own (test/helpers/node-environment.js).
  const cacheDir = path.join(__dirname, '..', '..', 'node_modules', '.cache', 'tributary-worker-ts');
  const bootstrap = `
    const fs = require('fs');
    const path = require('path');
    const crypto = require('crypto');
    const cacheDir = ${JSON.stringify(cacheDir)};
    let ts;
    require.extensions['.ts'] = (module, filename) => {
      const source = fs.readFileSync(filename, 'utf8');
      const cached = path.join(cacheDir, crypto.createHash('sha1').update(filename + '\\0' + source).digest('hex') + '.js');
      let js;
      try { js = fs.readFileSync(cached, 'utf8'); } catch {
        ts = ts || require(${JSON.stringify(typescript)});
        js = ts.transpileModule(source, {
          fileName: filename,
          compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true, sourceMap: false },
        }).outputText;
        try { fs.mkdirSync(cacheDir, { recursive: true }); fs.writeFileSync(cached + '.' + process.pid, js); fs.renameSync(cached + '.' + process.pid, cached); } catch {}
      }
      module._compile(js, filename);
    };
    require(${JSON.stringify(script)});
  `;
  return new Worker(bootstrap, { eval: true, workerData });
}

/**
 * A pool of worker threads, each holding its own onnxruntime session of one model version, behind
 * a DynamicBatcher. Workers load and warm up at start (the pool starts only when all are ready, or
 * fails with the reason). A worker that exits is replaced; the batch it held is retried once (each
 * request alone) and then failed explicitly — never dropped. A merged batch a worker could not score
 * is re-run one request at a time (see DynamicBatcher); a request past `requestTimeoutMs` rejects
 * with InferenceTimeoutError, and its batch's late result is discarded.
 */
export class InferencePool extends EventEmitter {
  readonly card: ModelCard;
  readonly batcher: DynamicBatcher;
  readonly metrics: InferenceMetrics;
  private readonly slots: Slot[];
  private readonly log: Logger;
  private readonly labels: { model: string; version: string };
  private readonly pendingTasks: Task[] = [];
  private nextId = 1;
  private closing = false;
  /** workers: 0 — one session on this thread instead of worker threads. */
  private readonly inThread: boolean;
  /** Worker replacements so far. */
  restarts = 0;

  private constructor(private readonly opts: InferencePoolOptions) {
    super();
    this.card = readModelCard(opts.dir);
    this.labels = { model: this.card.name, version: this.card.version };
    this.log = (opts.logger ?? createLogger('inference-pool')).child(this.labels);
    this.metrics = InferenceMetrics.for(opts.registry);
    const devices = opts.devices && opts.devices.length > 0 ? opts.devices : undefined;
    const perDevice = Math.max(1, opts.workersPerDevice ?? 1);
    this.inThread = opts.workers === 0;
    const count = this.inThread ? 1 : (opts.workers ?? (devices ? devices.length * perDevice : 1));
    if (!(count >= 1)) throw new TributaryError(`pool needs at least one worker (or 0: in-thread), got ${count}`);
    this.slots = Array.from({ length: count }, (_, index) => ({
      index,
      deviceId: devices ? devices[Math.floor(index / perDevice) % devices.length] : undefined,
      ready: false,
      failedStarts: 0,
      dead: false,
    }));
    const m = this.metrics;
    this.batcher = new DynamicBatcher({
      width: this.card.features.names.length,
      maxBatchSize: opts.maxBatchSize ?? 256,
      maxQueueDelayMs: opts.maxQueueDelayMs ?? 1,
      maxQueueRows: opts.maxQueueRows ?? 4096,
      requestTimeoutMs: opts.requestTimeoutMs ?? 30000,
      concurrency: () => this.slots.filter((s) => s.ready).length,
      execute: (rows, n) => this.execute(rows, n),
      onBatch: (n) => m.batchSize.observe(this.labels, n),
      onQueueTime: (s) => m.queueSeconds.observe(this.labels, s),
      onExecuteTime: (s) => m.inferenceSeconds.observe(this.labels, s),
    });
    this.batcher.on('saturated', () => {
      m.saturations.inc(this.labels);
      this.emit('saturated');
    });
    this.batcher.on('drained', () => this.emit('drained'));
  }

  /** Starts every worker, loads and warms up the model in each; rejects with the first worker's failure. */
  static async start(opts: InferencePoolOptions): Promise<InferencePool> {
    const pool = new InferencePool(opts);
    try {
      await Promise.all(pool.slots.map((s) => pool.startSlot(s)));
    } catch (err) {
      await pool.close();
      throw err;
    }
    pool.log.info({ workers: pool.inThread ? 0 : pool.slots.length, inThread: pool.inThread, providers: pool.providers(), devices: pool.slots.map((s) => s.deviceId) }, 'inference pool ready');
    return pool;
  }

  /** Active execution provider of each worker. */
  providers(): string[] {
    return this.slots.map((s) => s.provider ?? 'none');
  }

  /** GPU ordinal of each worker (undefined when unpinned). */
  deviceIds(): (number | undefined)[] {
    return this.slots.map((s) => s.deviceId);
  }

  /** Worker threads (0 in-thread). */
  get workerCount(): number {
    return this.inThread ? 0 : this.slots.length;
  }

  /** Scores `count` rows; resolves their scores in order. */
  submit(rows: Float32Array, count: number): Promise<Float32Array> {
    return this.batcher.submit(rows, count).catch((err: Error) => {
      this.metrics.requestsFailed.inc(this.labels);
      throw err;
    });
  }

  saturated(): boolean {
    return this.batcher.saturated();
  }

  whenDrained(): Promise<void> {
    return this.batcher.whenDrained();
  }

  /** Test hook: makes worker `index` exit with `code` (as if it crashed); in-thread there is no worker to crash. */
  crashWorker(index: number, code = 1): void {
    this.slots[index]?.worker?.postMessage({ type: 'exit', code } satisfies ToWorker);
  }

  /** Waits until every live slot has a ready worker (after a crash, the replacement). */
  async whenAllReady(timeoutMs = 30000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.slots.some((s) => !s.ready && !s.dead)) {
      if (Date.now() > deadline) throw new PoolError(`workers not ready within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Rejects queued requests, lets nothing new in, and stops every worker. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    this.batcher.close(`inference pool for ${this.card.name}@${this.card.version} closed`);
    for (const t of this.pendingTasks.splice(0)) t.reject(new PoolError('inference pool closed'));
    await Promise.all(
      this.slots.map(async (s) => {
        const w = s.worker;
        s.ready = false;
        if (w) await w.terminate();
        if (s.model) {
          // The batch in flight finishes first and its caller gets its scores; queued requests were failed by the batcher's close.
          await s.scoring?.catch(() => undefined);
          await s.model.close();
          s.model = undefined;
        }
      }),
    );
    this.metrics.queueRows.set(this.labels, 0);
    for (const p of new Set(this.providers())) this.metrics.activeProvider.set({ ...this.labels, provider: p }, 0);
  }

  private workerOptions(slot: Slot): OnnxModelOptions {
    const o: OnnxModelOptions = { executionProviders: this.opts.executionProviders ?? ['cpu'] };
    if (this.opts.intraOpNumThreads !== undefined) o.intraOpNumThreads = this.opts.intraOpNumThreads;
    if (this.opts.interOpNumThreads !== undefined) o.interOpNumThreads = this.opts.interOpNumThreads;
    if (slot.deviceId !== undefined) o.deviceId = slot.deviceId;
    return o;
  }

  /** Spawns a worker for `slot` (or loads the in-thread session); resolves when it is ready, rejects if it fails to load. */
  private startSlot(slot: Slot): Promise<void> {
    if (this.inThread) return this.startInThread(slot);
    const { runs, batchSize } = this.warmup();
    return new Promise((resolve, reject) => {
      const worker = spawnWorker({
        dir: path.resolve(this.opts.dir),
        index: slot.index,
        options: this.workerOptions(slot),
        warmupRuns: runs,
        warmupBatchSize: batchSize,
        testHooks: this.opts.testHooks,
      });
      slot.worker = worker;
      let started = false;
      worker.on('message', (msg: FromWorker) => {
        switch (msg.type) {
          case 'ready':
            started = true;
            slot.ready = true;
            slot.failedStarts = 0;
            slot.provider = msg.provider;
            this.metrics.activeProvider.inc({ ...this.labels, provider: msg.provider });
            this.log.info({ worker: slot.index, provider: msg.provider, deviceId: slot.deviceId, warmupMs: Math.round(msg.warmupMs) }, 'inference worker ready');
            resolve();
            this.releaseSlot(slot);
            return;
          case 'failed': {
            const Err = msg.name === 'ExecutionProviderError' ? ExecutionProviderError : msg.name === 'ModelIntegrityError' ? ModelIntegrityError : PoolError;
            reject(new Err(`inference worker ${slot.index} could not load ${this.opts.dir}: ${msg.message}`));
            void worker.terminate();
            return;
          }
          case 'result':
            this.settle(slot, msg.id, msg.scores);
            return;
          case 'error':
            this.settle(slot, msg.id, new TributaryError(`inference worker ${slot.index}: ${msg.message}`));
            return;
        }
      });
      worker.on('error', (err) => {
        this.log.error({ worker: slot.index, err }, 'inference worker error');
        if (!started) reject(new PoolError(`inference worker ${slot.index} failed to start: ${err.message}`, { cause: err }));
      });
      worker.on('exit', (code) => {
        if (slot.worker !== worker) return;
        if (!started) {
          reject(new PoolError(`inference worker ${slot.index} exited with code ${code} before it was ready`));
          return;
        }
        this.onWorkerExit(slot, code);
      });
    });
  }

  /** Warm-up runs and their batch size, for each worker and the in-thread session alike. */
  private warmup(): { runs: number; batchSize: number } {
    return { runs: this.opts.warmupRuns ?? 3, batchSize: this.opts.warmupBatchSize ?? this.opts.maxBatchSize ?? 256 };
  }

  /**
   * In-thread mode: loads and warms up the session here, as a worker would. A load failure rejects
   * the pool's start; there is nothing to replace.
   */
  private async startInThread(slot: Slot): Promise<void> {
    const started = performance.now();
    const { runs, batchSize } = this.warmup();
    const model = await OnnxModel.loadWarm(path.resolve(this.opts.dir), this.workerOptions(slot), runs, batchSize);
    slot.model = model;
    slot.ready = true;
    slot.provider = model.provider;
    this.metrics.activeProvider.inc({ ...this.labels, provider: model.provider });
    this.log.info({ inThread: true, provider: model.provider, deviceId: slot.deviceId, warmupMs: Math.round(performance.now() - started) }, 'inference session ready (in-thread)');
  }

  /** Ends the batch `id` a slot holds with its scores or its error, and frees the slot (a stale id is ignored). */
  private settle(slot: Slot, id: number, outcome: Float32Array | Error): void {
    const task = slot.busy;
    if (!task || task.id !== id) return;
    slot.busy = undefined;
    if (outcome instanceof Error) task.reject(outcome);
    else task.resolve(outcome);
    this.releaseSlot(slot);
  }

  private onWorkerExit(slot: Slot, code: number): void {
    const wasProvider = slot.provider;
    slot.ready = false;
    slot.worker = undefined;
    if (wasProvider) this.metrics.activeProvider.dec({ ...this.labels, provider: wasProvider });
    const task = slot.busy;
    slot.busy = undefined;
    if (this.closing) {
      task?.reject(new PoolError('inference pool closed'));
      return;
    }
    this.log.error({ worker: slot.index, code, inFlightRows: task?.count ?? 0 }, 'inference worker exited; replacing it');
    this.metrics.workerRestarts.inc({ ...this.labels, reason: `exit_${code}` });
    // The batcher retries each request of this batch once, alone, on another (or the new) worker.
    task?.reject(new RetriableBatchError(`inference worker ${slot.index} exited with code ${code} while scoring ${task.count} rows`));
    this.replace(slot);
  }

  private replace(slot: Slot): void {
    this.restarts += 1;
    this.startSlot(slot).then(
      () => this.emit('workerReplaced', slot.index),
      (err: Error) => {
        slot.failedStarts += 1;
        if (this.closing) return;
        if (slot.failedStarts >= (this.opts.maxConsecutiveRestarts ?? 3)) {
          slot.dead = true;
          this.log.error({ worker: slot.index, err: err.message }, 'inference worker keeps failing to start; giving its slot up');
          if (this.slots.every((s) => s.dead)) this.batcher.close(`every inference worker of ${this.card.name}@${this.card.version} failed: ${err.message}`);
          return;
        }
        this.log.warn({ worker: slot.index, err: err.message }, 'replacement worker failed to start; retrying');
        setTimeout(() => this.replace(slot), 200 * slot.failedStarts).unref();
      },
    );
  }

  /** Gives an idle ready slot a pending batch, or lets the batcher dispatch more. */
  private releaseSlot(slot: Slot): void {
    if (!slot.ready || slot.busy || this.closing) return;
    const task = this.pendingTasks.shift();
    if (task) this.run(slot, task);
    else this.batcher.pump();
  }

  /** Runs one batch on an idle worker (or the next one to become idle). */
  private execute(rows: Float32Array, count: number): Promise<Float32Array> {
    this.metrics.queueRows.set(this.labels, this.batcher.queued);
    if (this.closing) return Promise.reject(new PoolError('inference pool closed'));
    return new Promise<Float32Array>((resolve, reject) => {
      const task: Task = { id: this.nextId++, count, rows, resolve, reject };
      const idle = this.slots.find((s) => s.ready && !s.busy);
      if (idle) this.run(idle, task);
      else this.pendingTasks.push(task);
    });
  }

  /** Sends the batch, transferring its rows buffer (the batcher built it for this batch alone); in-thread, scores it here. */
  private run(slot: Slot, task: Task): void {
    slot.busy = task;
    const { rows } = task;
    task.rows = undefined;
    if (slot.model) {
      slot.scoring = this.scoreInThread(slot.model, rows!, task.count).then(
        (scores) => this.settle(slot, task.id, scores),
        (err: Error) => this.settle(slot, task.id, new TributaryError(`inference in-thread: ${err.message}`, { cause: err })),
      );
      return;
    }
    slot.worker!.postMessage({ type: 'score', id: task.id, rows: rows!, count: task.count } satisfies ToWorker, [rows!.buffer as ArrayBuffer]);
  }

  /** One in-thread batch, with the test hooks a worker honours (a simulated slow model waits without blocking here). */
  private async scoreInThread(model: OnnxModel, rows: Float32Array, count: number): Promise<Float32Array> {
    const hooks = this.opts.testHooks;
    if (hooks?.delayMs) await new Promise((r) => setTimeout(r, hooks.delayMs));
    const marker = failMarkerIn(hooks, rows, model.width);
    if (marker !== undefined) throw new TributaryError(`test hook: cannot score a row marked ${marker}`);
    return model.score(rows, count);
  }
}

/** True when `dir` holds a model version (a card and weights). */
export function isModelDir(dir: string): boolean {
  return fs.existsSync(path.join(dir, 'model.json')) && fs.existsSync(path.join(dir, 'model.onnx'));
}
