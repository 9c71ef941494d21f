import fc from 'fast-check';
import { DynamicBatcher, InferenceRequestError, InferenceTimeoutError, RetriableBatchError, type DynamicBatcherOptions } from '../../src/inference/batcher';

const WIDTH = 3;

/** Rows whose first value is `start + i`: the fake model scores a row as its first value. */
function rows(start: number, count: number): Float32Array {
  const a = new Float32Array(count * WIDTH);
  for (let i = 0; i < count; i++) a[i * WIDTH] = start + i;
  return a;
}

function firstColumn(r: Float32Array, count: number): Float32Array {
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = r[i * WIDTH];
  return out;
}

const expected = (start: number, count: number) => Float32Array.from({ length: count }, (_, i) => start + i);

function batcher(over: Partial<DynamicBatcherOptions> & Pick<DynamicBatcherOptions, 'execute'>) {
  const batches: number[] = [];
  const b = new DynamicBatcher({ width: WIDTH, maxBatchSize: 64, maxQueueDelayMs: 0, maxQueueRows: 1024, concurrency: 1, onBatch: (n) => batches.push(n), ...over });
  return { b, batches };
}

/** An executor whose batches complete only when the test says so. */
function gatedExecutor() {
  const pending: { rows: Float32Array; count: number; release: () => void }[] = [];
  const execute = (r: Float32Array, count: number) =>
    new Promise<Float32Array>((resolve) => pending.push({ rows: r, count, release: () => resolve(firstColumn(r, count)) }));
  return { pending, execute };
}

const tick = () => new Promise((r) => setImmediate(r));

describe('DynamicBatcher', () => {
  it('splits and merges requests into batches of at most maxBatchSize and returns each request its scores in order', async () => {
    const { b, batches } = batcher({ maxBatchSize: 64, concurrency: 2, execute: async (r, n) => firstColumn(r, n) });
    const sizes = [5, 300, 7, 64, 1];
    let start = 0;
    const submitted = sizes.map((n) => {
      const p = b.submit(rows(start, n), n);
      const e = expected(start, n);
      start += n;
      return p.then((got) => expect(got).toEqual(e));
    });
    await Promise.all(submitted);
    expect(Math.max(...batches)).toBeLessThanOrEqual(64);
    expect(batches.reduce((a, n) => a + n, 0)).toBe(start);
  });

  it('with maxQueueDelayMs 0 takes what is queued: a lone request goes at once, requests arriving while busy are merged', async () => {
    const ex = gatedExecutor();
    const { b, batches } = batcher({ maxQueueDelayMs: 0, execute: ex.execute });
    const first = b.submit(rows(0, 3), 3);
    expect(batches).toEqual([3]); // dispatched synchronously, no waiting for more
    const second = b.submit(rows(3, 4), 4);
    const third = b.submit(rows(7, 5), 5);
    expect(b.queued).toBe(9);
    ex.pending[0].release();
    await first;
    await tick();
    expect(batches).toEqual([3, 9]); // both queued requests in one batch
    ex.pending[1].release();
    expect(await second).toEqual(expected(3, 4));
    expect(await third).toEqual(expected(7, 5));
  });

  it('holds a non-full batch up to maxQueueDelayMs to merge later requests, but sends a full batch at once', async () => {
    const { b, batches } = batcher({ maxBatchSize: 16, maxQueueDelayMs: 40, execute: async (r, n) => firstColumn(r, n) });
    const t0 = performance.now();
    const a = b.submit(rows(0, 2), 2);
    await new Promise((r) => setTimeout(r, 10));
    const c = b.submit(rows(2, 3), 3);
    expect(batches).toEqual([]);
    expect(await a).toEqual(expected(0, 2));
    expect(await c).toEqual(expected(2, 3));
    expect(batches).toEqual([5]);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(35);

    const t1 = performance.now();
    const full = b.submit(rows(0, 16), 16);
    expect(batches).toEqual([5, 16]);
    await full;
    expect(performance.now() - t1).toBeLessThan(30);
  });

  it('bounds the queue: submits beyond maxQueueRows wait (saturated), are admitted in order as it drains, and nothing is lost', async () => {
    const ex = gatedExecutor();
    const events: string[] = [];
    const { b } = batcher({ maxBatchSize: 8, maxQueueRows: 20, execute: ex.execute });
    b.on('saturated', () => events.push('saturated'));
    b.on('drained', () => events.push('drained'));
    const results: Promise<void>[] = [];
    let start = 0;
    for (let i = 0; i < 12; i++) {
      const n = 5;
      const e = expected(start, n);
      results.push(b.submit(rows(start, n), n).then((got) => expect(got).toEqual(e)));
      start += n;
    }
    // 5 rows went out at once (idle executor); 20 fit the queue; the rest wait.
    expect(b.queued).toBe(20);
    expect(b.waiting).toBe(7);
    expect(b.saturated()).toBe(true);
    expect(events).toEqual(['saturated']);
    while (ex.pending.length > 0 || b.queued > 0) {
      const next = ex.pending.shift();
      next?.release();
      await tick();
      expect(b.queued).toBeLessThanOrEqual(20);
    }
    await Promise.all(results);
    expect(b.saturated()).toBe(false);
    expect(events).toEqual(['saturated', 'drained']);
    expect(b.peakQueuedRows).toBe(20);
  });

  it('admits a request larger than the whole queue in pieces, so the bound holds', async () => {
    const { b } = batcher({ maxBatchSize: 7, maxQueueRows: 10, execute: async (r, n) => firstColumn(r, n) });
    expect(await b.submit(rows(100, 95), 95)).toEqual(expected(100, 95));
    expect(b.peakQueuedRows).toBeLessThanOrEqual(10);
  });

  it('retries a request whose batch crashed once: the retry succeeds and the caller sees only scores', async () => {
    let crashesLeft = 1;
    const { b, batches } = batcher({ execute: async (r, n) => { if (crashesLeft-- > 0) throw new RetriableBatchError('worker exited'); return firstColumn(r, n); } });
    expect(await b.submit(rows(3, 5), 5)).toEqual(expected(3, 5));
    expect(batches).toEqual([5, 5]);
  });

  it('retries each request of a crashed batch once, alone: a poison request fails only itself, explicitly', async () => {
    const POISON = 1000;
    const execute = async (r: Float32Array, n: number) => {
      const values = firstColumn(r, n);
      if (values.includes(POISON)) throw new RetriableBatchError('worker exited (poison)');
      return values;
    };
    const ex = gatedExecutor();
    // Hold the executor busy so the three requests are merged into one batch.
    let gate = true;
    const { b, batches } = batcher({ execute: (r, n) => (gate ? ((gate = false), ex.execute(r, n)) : execute(r, n)) });
    const warm = b.submit(rows(500, 1), 1);
    const a = b.submit(rows(0, 4), 4);
    const poison = b.submit(rows(POISON, 2), 2);
    const c = b.submit(rows(10, 3), 3);
    ex.pending[0].release();
    await warm;
    const outcomes = await Promise.allSettled([a, poison, c]);
    expect(outcomes[0]).toEqual({ status: 'fulfilled', value: expected(0, 4) });
    expect(outcomes[2]).toEqual({ status: 'fulfilled', value: expected(10, 3) });
    expect(outcomes[1].status).toBe('rejected');
    const reason = (outcomes[1] as PromiseRejectedResult).reason as Error;
    expect(reason).toBeInstanceOf(InferenceRequestError);
    expect(reason.message).toMatch(/2 rows failed after a retry: worker exited \(poison\)/);
    expect(batches).toEqual([1, 9, 4, 2, 3]); // the merged batch, then each of its requests alone
  });

  it('fails the requests of a batch whose executor fails non-retriably, and keeps serving', async () => {
    let fail = true;
    const { b } = batcher({ execute: async (r, n) => { if (fail) { fail = false; throw new Error('bad input'); } return firstColumn(r, n); } });
    await expect(b.submit(rows(0, 2), 2)).rejects.toThrow(/bad input/);
    expect(await b.submit(rows(5, 2), 2)).toEqual(expected(5, 2));
  });

  it('re-runs a merged batch the model could not score one request at a time: only the bad request fails', async () => {
    const BAD = 1000;
    const execute = async (r: Float32Array, n: number) => {
      const values = firstColumn(r, n);
      if (values.includes(BAD)) throw new Error(`cannot score row ${BAD}`);
      return values;
    };
    const ex = gatedExecutor();
    let gate = true;
    const { b, batches } = batcher({ execute: (r, n) => (gate ? ((gate = false), ex.execute(r, n)) : execute(r, n)) });
    const warm = b.submit(rows(500, 1), 1);
    const a = b.submit(rows(0, 4), 4);
    const bad = b.submit(rows(BAD - 1, 3), 3); // its second row is the one the model rejects
    const c = b.submit(rows(10, 3), 3);
    ex.pending[0].release();
    await warm;
    const outcomes = await Promise.allSettled([a, bad, c]);
    expect(outcomes[0]).toEqual({ status: 'fulfilled', value: expected(0, 4) });
    expect(outcomes[2]).toEqual({ status: 'fulfilled', value: expected(10, 3) });
    const reason = (outcomes[1] as PromiseRejectedResult).reason as Error;
    expect(reason).toBeInstanceOf(InferenceRequestError);
    expect(reason.message).toBe(`inference of 3 rows cannot score row ${BAD}`);
    expect(batches).toEqual([1, 10, 4, 3, 3]); // the merged batch, then each request alone, never split further
    // Serving goes on.
    expect(await b.submit(rows(20, 2), 2)).toEqual(expected(20, 2));
  });

  it('times a request out with InferenceTimeoutError while its batch runs; the late result is discarded and the next requests are scored', async () => {
    const ex = gatedExecutor();
    const { b } = batcher({ requestTimeoutMs: 30, execute: ex.execute });
    const slow = b.submit(rows(0, 2), 2);
    const outcome = await slow.then(() => 'resolved', (err: unknown) => err);
    expect(outcome).toBeInstanceOf(InferenceTimeoutError);
    expect(outcome).toBeInstanceOf(InferenceRequestError);
    expect((outcome as InferenceTimeoutError).message).toBe('inference of 2 rows timed out after 30 ms');
    // The batch completes after its request gave up: nothing breaks, the executor is free again.
    ex.pending[0].release();
    await tick();
    const next = b.submit(rows(7, 3), 3);
    await tick();
    ex.pending[1].release();
    expect(await next).toEqual(expected(7, 3));
  });

  it('times out requests still queued or waiting for room: their rows leave the queue and waiting submits move up', async () => {
    const ex = gatedExecutor();
    const { b } = batcher({ requestTimeoutMs: 40, maxQueueRows: 4, execute: ex.execute });
    const inFlight = b.submit(rows(0, 2), 2).catch((err: unknown) => err);
    const queued = b.submit(rows(2, 4), 4).catch((err: unknown) => err);
    const waiting = b.submit(rows(6, 3), 3).catch((err: unknown) => err);
    expect(b.saturated()).toBe(true);
    const [e1, e2, e3] = await Promise.all([inFlight, queued, waiting]);
    for (const e of [e1, e2, e3]) expect(e).toBeInstanceOf(InferenceTimeoutError);
    expect(b.queued).toBe(0);
    expect(b.waiting).toBe(0);
    expect(b.saturated()).toBe(false);
    ex.pending[0].release();
    await tick();
    const later = b.submit(rows(9, 1), 1);
    await tick();
    ex.pending[1].release();
    expect(await later).toEqual(expected(9, 1));
  });

  it('a request admitted in pieces has one deadline for all of them', async () => {
    const ex = gatedExecutor();
    const { b } = batcher({ requestTimeoutMs: 30, maxQueueRows: 4, maxBatchSize: 4, execute: ex.execute });
    const started = performance.now();
    await expect(b.submit(rows(0, 10), 10)).rejects.toBeInstanceOf(InferenceTimeoutError);
    expect(performance.now() - started).toBeLessThan(1000);
    expect(b.queued).toBe(0);
    expect(b.waiting).toBe(0);
  });

  it('close() rejects queued and waiting requests explicitly', async () => {
    const ex = gatedExecutor();
    const { b } = batcher({ maxQueueRows: 4, execute: ex.execute });
    const inFlight = b.submit(rows(0, 2), 2);
    const queued = b.submit(rows(2, 4), 4);
    const waiting = b.submit(rows(6, 4), 4);
    b.close('shutting down');
    await expect(queued).rejects.toThrow(InferenceRequestError);
    await expect(waiting).rejects.toThrow(/shutting down/);
    ex.pending[0].release();
    expect(await inFlight).toEqual(expected(0, 2));
    await expect(b.submit(rows(0, 1), 1)).rejects.toThrow(/closed/);
  });

  it('rejects a matrix whose length does not match count x width', async () => {
    const { b } = batcher({ execute: async (r, n) => firstColumn(r, n) });
    await expect(b.submit(new Float32Array(5), 2)).rejects.toThrow(/expected 2 x 3/);
  });

  it('property: any mix of request sizes, batch sizes, queue bounds and concurrency returns every row its own score', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 25 }),
        fc.integer({ min: 1, max: 32 }),
        fc.integer({ min: 1, max: 50 }),
        fc.integer({ min: 1, max: 3 }),
        fc.constantFrom(0, 1),
        async (sizes, maxBatchSize, maxQueueRows, concurrency, maxQueueDelayMs) => {
          const { b, batches } = batcher({
            maxBatchSize, maxQueueRows, concurrency, maxQueueDelayMs,
            execute: async (r, n) => { await tick(); return firstColumn(r, n); },
          });
          let start = 0;
          const all = sizes.map((n) => {
            const e = expected(start, n);
            const p = b.submit(rows(start, n), n).then((got) => expect(got).toEqual(e));
            start += n;
            return p;
          });
          await Promise.all(all);
          expect(Math.max(...batches)).toBeLessThanOrEqual(maxBatchSize);
          expect(b.peakQueuedRows).toBeLessThanOrEqual(maxQueueRows);
          expect(b.queued).toBe(0);
        },
      ),
      { numRuns: 60 },
    );
  });
});
