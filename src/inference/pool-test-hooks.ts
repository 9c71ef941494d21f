/**
 * Hooks for tests only, honoured by pool workers and by the in-thread session alike: make a worker
 * die, a batch fail, or the model slow down on demand.
 */
export interface PoolTestHooks {
  /** A batch whose first value equals this makes the worker exit (process.exit(70)) ... (workers only) */
  crashMarker?: number;
  /** ... while this shared counter (Int32Array over a SharedArrayBuffer, index 0) is > 0; decremented per crash. */
  crashBudget?: SharedArrayBuffer;
  /** Wait this long (ms) before each batch: simulates a slow model (a worker blocks its thread; in-thread waits on a timer). */
  delayMs?: number;
  /** A batch with any row whose first value equals this fails to score (the worker lives on): a model rejecting one input. */
  failMarker?: number;
}

/** The fail marker when a row of `rows` (rows of `width` values) starts with it; undefined otherwise. */
export function failMarkerIn(hooks: PoolTestHooks | undefined, rows: Float32Array, width: number): number | undefined {
  const marker = hooks?.failMarker;
  if (marker === undefined) return undefined;
  for (let i = 0; i < rows.length; i += width) if (rows[i] === marker) return marker;
  return undefined;
}
