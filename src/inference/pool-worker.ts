/**
 * Inference worker thread: loads one model version in onnxruntime, warms it up, then scores the
 * Float32Array batches it is sent (buffers transferred both ways). Started by InferencePool.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { OnnxModel, type OnnxModelOptions } from './onnx-model';
import { createLogger } from '../util/logger';
import { failMarkerIn, type PoolTestHooks } from './pool-test-hooks';

/** What the pool passes in workerData. */
export interface PoolWorkerData {
  dir: string;
  index: number;
  options: OnnxModelOptions;
  warmupRuns: number;
  warmupBatchSize: number;
  testHooks?: PoolTestHooks;
}

export type ToWorker = { type: 'score'; id: number; rows: Float32Array; count: number } | { type: 'exit'; code: number } | { type: 'close' };

export type FromWorker =
  | { type: 'ready'; provider: string; warmupMs: number }
  | { type: 'failed'; name: string; message: string }
  | { type: 'result'; id: number; scores: Float32Array }
  | { type: 'error'; id: number; message: string };

const port = parentPort;
if (!port) throw new Error('pool-worker must run in a worker thread');
const data = workerData as PoolWorkerData;
const log = createLogger('inference-worker').child({ worker: data.index });
const send = (msg: FromWorker, transfer: ArrayBuffer[] = []) => port.postMessage(msg, transfer);

function shouldCrash(rows: Float32Array): boolean {
  const hooks = data.testHooks;
  if (!hooks || hooks.crashMarker === undefined || rows[0] !== hooks.crashMarker) return false;
  if (!hooks.crashBudget) return true;
  const budget = new Int32Array(hooks.crashBudget);
  return Atomics.sub(budget, 0, 1) > 0;
}

async function main(): Promise<void> {
  let model: OnnxModel;
  const started = performance.now();
  try {
    model = await OnnxModel.loadWarm(data.dir, data.options, data.warmupRuns, data.warmupBatchSize);
  } catch (err) {
    send({ type: 'failed', name: (err as Error).name, message: (err as Error).message });
    return;
  }
  const sleeper = data.testHooks?.delayMs ? new Int32Array(new SharedArrayBuffer(4)) : undefined;
  port!.on('message', (msg: ToWorker) => {
    if (msg.type === 'exit') process.exit(msg.code);
    if (msg.type === 'close') {
      model.close().finally(() => port!.close());
      return;
    }
    if (shouldCrash(msg.rows)) {
      log.warn({ id: msg.id }, 'test hook: crashing on marker batch');
      process.exit(70);
    }
    if (sleeper) Atomics.wait(sleeper, 0, 0, data.testHooks!.delayMs);
    const marker = failMarkerIn(data.testHooks, msg.rows, model.width);
    if (marker !== undefined) {
      send({ type: 'error', id: msg.id, message: `test hook: cannot score a row marked ${marker}` });
      return;
    }
    model.score(msg.rows, msg.count).then(
      (scores) => send({ type: 'result', id: msg.id, scores }, [scores.buffer as ArrayBuffer]),
      (err: Error) => send({ type: 'error', id: msg.id, message: err.message }),
    );
  });
  send({ type: 'ready', provider: model.provider, warmupMs: performance.now() - started });
}

void main();
