import { EventEmitter } from 'node:events';
import { TributaryError } from '../util/errors';

/** A batch executor failed in a way worth one retry elsewhere (e.g. its worker thread died). */
export class RetriableBatchError extends TributaryError {}

/** A request was given up on: it failed its retry too, or the batcher was closed under it. */
export class InferenceRequestError extends TributaryError {}

/**
 * A request got no scores within its timeout (queue wait and scoring together). Its rows still
 * queued are dropped; a batch already running finishes on its worker and its scores for this
 * request are discarded.
 */
export class InferenceTimeoutError extends InferenceRequestError {
  constructor(
    readonly rows: number,
    readonly timeoutMs: number,
  ) {
    super(`inference of ${rows} rows timed out after ${timeoutMs} ms`);
  }
}

export interface DynamicBatcherOptions {
  /** Values per row (the model's feature count). */
  width: number;
  /** Most rows per executed batch. */
  maxBatchSize: number;
  /**
   * How long a batch that is not yet full may wait for more rows (ms), like Triton's
   * `max_queue_delay_microseconds`. 0: dispatch whatever is queued as soon as an executor is free.
   */
  maxQueueDelayMs: number;
  /** Bound on rows waiting for dispatch. A submit that does not fit waits for room (FIFO) instead of growing the queue. */
  maxQueueRows: number;
  /** `drained` is emitted when the queue falls to this many rows after being saturated; default maxQueueRows / 2. */
  lowWaterRows?: number;
  /** Longest a request may take from submit to its scores, ms; it then rejects with InferenceTimeoutError. 0 or unset: no limit. */
  requestTimeoutMs?: number;
  /** Batches executed at the same time (the pool's worker count). */
  concurrency: number | (() => number);
  /** Runs one batch: `count` rows of `width` values, row-major; resolves one score per row. */
  execute: (rows: Float32Array, count: number) => Promise<Float32Array>;
  /** Observers for metrics: rows per dispatched batch, a request's wait from submit to its last row's dispatch, batch run time. */
  onBatch?: (rows: number) => void;
  onQueueTime?: (seconds: number) => void;
  onExecuteTime?: (seconds: number) => void;
}

interface Request {
  rows: Float32Array;
  count: number;
  /** Rows of this request not yet handed to a batch. */
  nextRow: number;
  /** Segments dispatched and not yet settled. */
  outstanding: number;
  scores: Float32Array;
  enqueuedAt: number;
  settled: boolean;
  timer?: NodeJS.Timeout;
  resolve: (scores: Float32Array) => void;
  reject: (err: Error) => void;
}

/** Part of a request inside one batch. */
interface Segment {
  req: Request;
  start: number;
  count: number;
  /** 0 on first dispatch, 1 on the retry. */
  attempt: number;
}

/**
 * Dynamic batcher in front of a pool of executors: requests of any size are queued in order,
 * cut and merged into batches of at most `maxBatchSize` rows, and each request's scores are put
 * back together in its own order. A batch that failed retriably (its worker died) is not retried
 * as a whole: each of its segments is retried once on its own, so a poison request only fails
 * itself; a second failure rejects that request explicitly. A merged batch that failed outright (the
 * model could not score it) is re-run one request at a time, so only the request it cannot score
 * fails. A request that takes longer than `requestTimeoutMs` rejects with InferenceTimeoutError.
 *
 * Events: `saturated` when a submit has to wait for room, `drained` when the queue is back at
 * or under the low-water mark with nobody waiting.
 */
export class DynamicBatcher extends EventEmitter {
  private readonly queue: Request[] = [];
  private readonly retries: Segment[] = [];
  private readonly waiters: Request[] = [];
  private queuedRows = 0;
  private inFlight = 0;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private wasSaturated = false;
  /** The largest number of rows ever queued at once (bounded by maxQueueRows). */
  peakQueuedRows = 0;
  readonly lowWaterRows: number;

  constructor(private readonly opts: DynamicBatcherOptions) {
    super();
    if (!(opts.maxBatchSize >= 1)) throw new TributaryError(`maxBatchSize must be >= 1, got ${opts.maxBatchSize}`);
    if (!(opts.maxQueueRows >= 1)) throw new TributaryError(`maxQueueRows must be >= 1, got ${opts.maxQueueRows}`);
    if (!(opts.maxQueueDelayMs >= 0)) throw new TributaryError(`maxQueueDelayMs must be >= 0, got ${opts.maxQueueDelayMs}`);
    if (opts.requestTimeoutMs !== undefined && !(opts.requestTimeoutMs >= 0)) throw new TributaryError(`requestTimeoutMs must be >= 0, got ${opts.requestTimeoutMs}`);
    this.lowWaterRows = opts.lowWaterRows ?? Math.floor(opts.maxQueueRows / 2);
  }

  /** Rows waiting for dispatch. */
  get queued(): number {
    return this.queuedRows;
  }

  /** Submits still waiting for room in the queue. */
  get waiting(): number {
    return this.waiters.length;
  }

  /** True while the queue is full: callers should stop producing (pause their Kafka partitions). */
  saturated(): boolean {
    return this.waiters.length > 0 || this.queuedRows >= this.opts.maxQueueRows;
  }

  /** Resolves when not saturated (immediately if it is not). */
  whenDrained(): Promise<void> {
    if (!this.saturated()) return Promise.resolve();
    return new Promise((resolve) => this.once('drained', resolve));
  }

  /**
   * Scores `count` rows (row-major `rows`, `width` values each); resolves their scores in order.
   * Requests larger than the queue bound are admitted in pieces, so the queue never exceeds it.
   */
  async submit(rows: Float32Array, count: number): Promise<Float32Array> {
    const { width, maxQueueRows } = this.opts;
    if (rows.length !== count * width) throw new TributaryError(`feature matrix has ${rows.length} values, expected ${count} x ${width}`);
    if (count === 0) return new Float32Array(0);
    // One deadline for the whole request, however many pieces it is admitted in.
    const deadline = this.opts.requestTimeoutMs ? performance.now() + this.opts.requestTimeoutMs : undefined;
    // The pieces of one request: timing out, they fail together.
    const group: Request[] = [];
    if (count <= maxQueueRows) return this.submitPiece(rows, count, deadline, group, count);
    const pieces: Promise<Float32Array>[] = [];
    for (let start = 0; start < count; start += maxQueueRows) {
      const n = Math.min(maxQueueRows, count - start);
      pieces.push(this.submitPiece(rows.subarray(start * width, (start + n) * width), n, deadline, group, count));
    }
    const out = new Float32Array(count);
    let offset = 0;
    for (const piece of await Promise.all(pieces)) {
      out.set(piece, offset);
      offset += piece.length;
    }
    return out;
  }

  /** Rejects everything queued or waiting; in-flight batches settle on their own. */
  close(reason = 'batcher closed'): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    const err = new InferenceRequestError(reason);
    for (const req of this.queue.splice(0)) this.fail(req, err);
    for (const seg of this.retries.splice(0)) this.fail(seg.req, err);
    this.queuedRows = 0;
    for (const req of this.waiters.splice(0)) this.fail(req, err);
  }

  private submitPiece(rows: Float32Array, count: number, deadline: number | undefined, group: Request[], requestRows: number): Promise<Float32Array> {
    if (this.closed) return Promise.reject(new InferenceRequestError('batcher closed'));
    return new Promise<Float32Array>((resolve, reject) => {
      const req: Request = { rows, count, nextRow: 0, outstanding: 0, scores: new Float32Array(count), enqueuedAt: 0, settled: false, resolve, reject };
      group.push(req);
      if (deadline !== undefined) {
        const timeoutMs = this.opts.requestTimeoutMs!;
        req.timer = setTimeout(() => {
          const err = new InferenceTimeoutError(requestRows, timeoutMs);
          for (const piece of group) this.fail(piece, err);
          // Its queued rows were dropped: room for waiting submits, maybe a batch to cut.
          this.pump();
        }, Math.max(0, deadline - performance.now()));
        req.timer.unref();
      }
      if (this.waiters.length > 0 || this.queuedRows + count > this.opts.maxQueueRows) {
        // No room: wait in line (FIFO) rather than grow the queue past its bound.
        this.waiters.push(req);
        if (!this.wasSaturated) {
          this.wasSaturated = true;
          this.emit('saturated');
        }
        return;
      }
      this.enqueue(req);
      this.pump();
    });
  }

  private enqueue(req: Request): void {
    req.enqueuedAt = performance.now();
    this.queue.push(req);
    this.queuedRows += req.count;
    if (this.queuedRows > this.peakQueuedRows) this.peakQueuedRows = this.queuedRows;
  }

  /** Lets waiting submits in, in order, while they fit; emits `drained` when appropriate. */
  private admit(): boolean {
    let admitted = false;
    while (this.waiters.length > 0 && this.queuedRows + this.waiters[0].count <= this.opts.maxQueueRows) {
      this.enqueue(this.waiters.shift()!);
      admitted = true;
    }
    if (this.wasSaturated && this.waiters.length === 0 && this.queuedRows <= this.lowWaterRows) {
      this.wasSaturated = false;
      this.emit('drained');
    }
    return admitted;
  }

  private concurrency(): number {
    const c = this.opts.concurrency;
    return typeof c === 'function' ? c() : c;
  }

  /** Dispatches what can go now (called again by the pool when a worker frees up). */
  pump(): void {
    if (this.closed) return;
    do {
      this.dispatchReady();
    } while (this.admit());
  }

  private dispatchReady(): void {
    while (this.inFlight < this.concurrency()) {
      if (this.retries.length > 0) {
        this.dispatch([this.retries.shift()!]);
        continue;
      }
      if (this.queue.length === 0) break;
      const oldest = this.queue[0];
      const waited = performance.now() - oldest.enqueuedAt;
      if (this.queuedRows < this.opts.maxBatchSize && waited < this.opts.maxQueueDelayMs) {
        // Not full yet and still allowed to wait for more rows.
        if (!this.timer) {
          this.timer = setTimeout(() => {
            this.timer = undefined;
            this.pump();
          }, Math.max(1, Math.ceil(this.opts.maxQueueDelayMs - waited)));
        }
        break;
      }
      this.dispatch(this.takeBatch());
    }
  }

  /** Cuts up to maxBatchSize rows off the head of the queue. */
  private takeBatch(): Segment[] {
    const segments: Segment[] = [];
    let room = this.opts.maxBatchSize;
    while (room > 0 && this.queue.length > 0) {
      const req = this.queue[0];
      const n = Math.min(room, req.count - req.nextRow);
      segments.push({ req, start: req.nextRow, count: n, attempt: 0 });
      req.nextRow += n;
      req.outstanding += 1;
      room -= n;
      if (req.nextRow === req.count) {
        this.queue.shift();
        this.opts.onQueueTime?.((performance.now() - req.enqueuedAt) / 1000);
      }
    }
    this.queuedRows -= this.opts.maxBatchSize - room;
    return segments;
  }

  private dispatch(segments: Segment[]): void {
    const { width } = this.opts;
    const live = segments.filter((s) => !s.req.settled);
    if (live.length === 0) return;
    const total = live.reduce((n, s) => n + s.count, 0);
    // A fresh buffer per batch: the pool transfers it to the worker thread.
    const rows = new Float32Array(total * width);
    let offset = 0;
    for (const s of live) {
      rows.set(s.req.rows.subarray(s.start * width, (s.start + s.count) * width), offset * width);
      offset += s.count;
    }
    this.inFlight += 1;
    this.opts.onBatch?.(total);
    const started = performance.now();
    let settledBatch: Promise<Float32Array>;
    try {
      settledBatch = this.opts.execute(rows, total);
    } catch (err) {
      settledBatch = Promise.reject(err);
    }
    settledBatch.then(
      (scores) => {
        this.opts.onExecuteTime?.((performance.now() - started) / 1000);
        if (scores.length !== total) {
          const err = new InferenceRequestError(`executor returned ${scores.length} scores for ${total} rows`);
          for (const s of live) this.fail(s.req, err);
        } else {
          let at = 0;
          for (const s of live) {
            if (!s.req.settled) s.req.scores.set(scores.subarray(at, at + s.count), s.start);
            at += s.count;
            this.segmentDone(s.req);
          }
        }
        this.inFlight -= 1;
        this.pump();
      },
      (err: Error) => {
        const retriable = err instanceof RetriableBatchError;
        // A merged batch the model could not score: re-run each request's part alone (ahead of new
        // work), so only the request it cannot score fails. A part run alone is never split again.
        const isolate = !retriable && !this.closed && live.filter((s) => !s.req.settled).length > 1;
        for (const s of live) {
          if (isolate) {
            if (!s.req.settled) this.retries.push({ ...s });
          } else if (retriable && s.attempt === 0 && !this.closed) {
            // Retried alone, ahead of new work (retries are bounded by what was in flight).
            this.retries.push({ ...s, attempt: 1 });
          } else {
            const why = err instanceof RetriableBatchError ? `failed after a retry: ${err.message}` : err.message;
            this.fail(s.req, new InferenceRequestError(`inference of ${s.req.count} rows ${why}`, { cause: err }));
          }
        }
        this.inFlight -= 1;
        this.pump();
      },
    );
  }

  private segmentDone(req: Request): void {
    req.outstanding -= 1;
    if (!req.settled && req.outstanding === 0 && req.nextRow === req.count) {
      req.settled = true;
      clearTimeout(req.timer);
      req.resolve(req.scores);
    }
  }

  private fail(req: Request, err: Error): void {
    if (req.settled) return;
    req.settled = true;
    clearTimeout(req.timer);
    // Rows of this request still queued are dropped from the queue; a submit still waiting for room leaves the line.
    const idx = this.queue.indexOf(req);
    if (idx >= 0) {
      this.queuedRows -= req.count - req.nextRow;
      this.queue.splice(idx, 1);
    }
    const waiting = this.waiters.indexOf(req);
    if (waiting >= 0) this.waiters.splice(waiting, 1);
    req.reject(err);
  }
}
