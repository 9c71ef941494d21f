import type * as ort from 'onnxruntime-node';

/**
 * onnxruntime-node's native session, called synchronously.
 *
 * Why: onnxruntime-node's public `session.run` wraps a synchronous native call in `setImmediate`,
 * so every batch waits for the event loop's check phase — behind every socket callback of that
 * turn — before the model runs on the same thread anyway. In a busy pipeline that wait was most of
 * `tributary_inference_seconds` (2.2 ms per call against 0.18 ms of model time at 146 rows,
 * BENCHMARKS item 18). Calling the native session directly runs the model at once; the thread is
 * blocked for the same model time either way.
 *
 * The native binding is onnxruntime-node's internal module (`dist/binding`), not its documented
 * API: everything here checks the shape it relies on and returns `undefined` when it differs, so
 * an onnxruntime-node release that moves it falls back to the public, asynchronous session
 * (`directSessionUnavailable()` says why).
 */

/** What the native session offers that this module uses. */
interface NativeSession {
  loadModel(path: string, options: ort.InferenceSession.SessionOptions): void;
  run(feeds: Record<string, ort.Tensor>, fetches: Record<string, null>, options: Record<string, unknown>): Record<string, { data: unknown }>;
  dispose(): void;
  readonly inputMetadata: ReadonlyArray<{ name: string }>;
  readonly outputMetadata: ReadonlyArray<{ name: string }>;
}

interface BindingModule {
  binding: { InferenceSession: new () => NativeSession };
  initOrt: () => void;
}

/** A model session whose `run` returns the output at once. */
export interface DirectSession {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  /** Runs the model on one input tensor and returns one output's data. */
  run(input: string, tensor: ort.Tensor, output: string): ArrayLike<number>;
  release(): void;
}

let loaded: BindingModule | undefined;
let unavailable: string | undefined;

function bindingModule(): BindingModule | undefined {
  if (loaded || unavailable) return loaded;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const mod = require('onnxruntime-node/dist/binding') as Partial<BindingModule>;
    if (typeof mod.initOrt !== 'function' || typeof mod.binding?.InferenceSession !== 'function') {
      unavailable = 'onnxruntime-node/dist/binding has no initOrt or InferenceSession';
      return undefined;
    }
    const proto = mod.binding.InferenceSession.prototype as Partial<NativeSession>;
    for (const method of ['loadModel', 'run', 'dispose'] as const) {
      if (typeof proto[method] !== 'function') {
        unavailable = `onnxruntime-node's native session has no ${method}()`;
        return undefined;
      }
    }
    loaded = mod as BindingModule;
  } catch (err) {
    unavailable = `onnxruntime-node/dist/binding cannot be loaded: ${(err as Error).message}`;
  }
  return loaded;
}

/** Why direct sessions are not used in this process, or undefined when they are available. */
export function directSessionUnavailable(): string | undefined {
  bindingModule();
  return unavailable;
}

/**
 * Opens `weights` as a native session with `options` (the same options the public API takes).
 * Returns undefined when the native binding is not usable (see module comment); throws what
 * onnxruntime throws when the model or an execution provider fails to load, as the public API would.
 */
export function openDirectSession(weights: string, options: ort.InferenceSession.SessionOptions): DirectSession | undefined {
  const mod = bindingModule();
  if (!mod) return undefined;
  mod.initOrt();
  const native = new mod.binding.InferenceSession();
  native.loadModel(weights, options);
  const inputNames = native.inputMetadata.map((m) => m.name);
  const outputNames = native.outputMetadata.map((m) => m.name);
  // One fetch map per output name, built once: the native run only reads its keys.
  const fetchesByOutput = new Map<string, Record<string, null>>();
  const noRunOptions = {};
  return {
    inputNames,
    outputNames,
    run(input, tensor, output) {
      let fetches = fetchesByOutput.get(output);
      if (!fetches) {
        if (!outputNames.includes(output)) throw new Error(`model has no output '${output}' (it has ${outputNames.join(', ')})`);
        fetchesByOutput.set(output, (fetches = { [output]: null }));
      }
      const out = native.run({ [input]: tensor }, fetches, noRunOptions)[output];
      if (!out) throw new Error(`model returned no output '${output}'`);
      return out.data as ArrayLike<number>;
    },
    release() {
      native.dispose();
    },
  };
}
