import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Cluster } from 'ioredis';
import type Redis from 'ioredis';
import { TributaryError } from '../util/errors';
import type { Logger } from '../util/logger';
import { ModelGateError } from './gate';
import type { InferenceMetrics } from './metrics';
import { modelDir, readModelCard, type ModelCard } from './model-card';
import {
  controlKeys,
  getDesiredVersion,
  instanceId,
  recordEvent,
  removeStatus,
  writeStatus,
  type DesiredVersion,
  type ServingStatus,
  type SwapEvent,
} from './model-control';

/** One loaded, gated model version ready to score (its pool is warm). */
export interface ServingVersion {
  dir: string;
  card: ModelCard;
  close(): Promise<void>;
}

export type HotSwapPolicy = 'explicit' | 'latest-approved';

export interface HotSwapConfig {
  /** explicit: the version set by `tributary models promote|rollback` (Redis); latest-approved: the highest version in the repository whose card has approvedBy. */
  policy?: HotSwapPolicy;
  /** How often the control key / repository is checked (pub/sub makes promotes prompt anyway); default 2000. */
  pollIntervalMs?: number;
}

export interface HotSwapperOptions<V extends ServingVersion> {
  repository: string;
  model: string;
  stage: string;
  /** Namespaces the control keys: the stage's consumer group. */
  group: string;
  config: HotSwapConfig;
  /** Loads a version: runs its gate against `liveDir` (change bounds) and starts its pool; throws when it must not be served. */
  load: (dir: string, liveDir?: string) => Promise<V>;
  logger: Logger;
  metrics: InferenceMetrics;
  /** Control plane; required for the explicit policy, optional (status only) for latest-approved. */
  redis?: Redis | Cluster;
  /** A second connection for pub/sub (subscriber mode blocks other commands). */
  subscriber?: Redis | Cluster;
}

/** The highest version directory of `name` whose card is approved (numeric-aware order); undefined if none. */
export function latestApprovedVersion(repository: string, name: string): string | undefined {
  const base = path.join(repository, name);
  if (!fs.existsSync(base)) return undefined;
  const approved = fs.readdirSync(base).filter((v) => {
    try {
      return Boolean(readModelCard(path.join(base, v)).approvedBy) && fs.existsSync(path.join(base, v, 'model.onnx'));
    } catch {
      return false;
    }
  });
  approved.sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
  return approved[approved.length - 1];
}

/** Content fingerprint of a version directory's files: a refused version is retried once it changes. */
function fingerprint(dir: string): string {
  const h = crypto.createHash('sha1');
  if (!fs.existsSync(dir)) return 'missing';
  for (const f of fs.readdirSync(dir).sort()) {
    const st = fs.statSync(path.join(dir, f));
    h.update(`${f}:${st.size}:${st.mtimeMs}\n`);
  }
  return h.digest('hex');
}

function sameFeatures(a: ModelCard, b: ModelCard): string | undefined {
  if (a.features.set !== b.features.set || a.features.version !== b.features.version) {
    return `needs features ${b.features.set}@${b.features.version}, the stage is fed ${a.features.set}@${a.features.version}`;
  }
  if (a.features.names.join('\u0000') !== b.features.names.join('\u0000')) return 'feature names/order differ from the live version\'s';
  return undefined;
}

/**
 * Serves one model version at a time and replaces it without stopping: a candidate is loaded in
 * its own pool and gated (the live version as the change baseline) while the live one keeps
 * serving; then the switch is one assignment between batches (each batch scores entirely on the
 * version it started with), the old version's in-flight batches drain, and its pool closes.
 * A candidate that fails is refused: the live version stays, and the reason goes to the log,
 * `tributary_model_swap_total{result="refused"}`, the status in Redis and `tributary models status`.
 */
export class HotSwapper<V extends ServingVersion> {
  private live: V;
  private previous?: string;
  private readonly inFlight = new Map<V, number>();
  private readonly drainWaiters = new Map<V, (() => void)[]>();
  /** version -> fingerprint/request it was refused for, and why. */
  private readonly refused = new Map<string, { key: string; reason: string }>();
  private lastSwap?: SwapEvent;
  private chain: Promise<unknown> = Promise.resolve();
  private timer?: NodeJS.Timeout;
  private closed = false;
  readonly instance = instanceId();

  constructor(
    initial: V,
    private readonly opts: HotSwapperOptions<V>,
  ) {
    this.live = initial;
    this.opts.metrics.liveVersion.set({ model: opts.model, stage: opts.stage, version: initial.card.version }, 1);
  }

  get policy(): HotSwapPolicy {
    return this.opts.config.policy ?? 'explicit';
  }

  /** The version batches start on now. */
  get current(): V {
    return this.live;
  }

  /** Runs `fn` on the live version, counting it in flight so a swap waits for it before closing that version. */
  async use<T>(fn: (v: V) => Promise<T>): Promise<T> {
    const v = this.live;
    this.inFlight.set(v, (this.inFlight.get(v) ?? 0) + 1);
    try {
      return await fn(v);
    } finally {
      const n = (this.inFlight.get(v) ?? 1) - 1;
      if (n > 0) this.inFlight.set(v, n);
      else {
        this.inFlight.delete(v);
        for (const w of this.drainWaiters.get(v)?.splice(0) ?? []) w();
      }
    }
  }

  private drained(v: V): Promise<void> {
    if (!this.inFlight.get(v)) return Promise.resolve();
    return new Promise((resolve) => {
      const list = this.drainWaiters.get(v) ?? [];
      list.push(resolve);
      this.drainWaiters.set(v, list);
    });
  }

  /** Starts watching the control key (pub/sub + polling) or the repository. */
  async start(): Promise<void> {
    if (this.opts.subscriber) {
      const channel = controlKeys(this.opts.group).notify;
      await this.opts.subscriber.subscribe(channel);
      this.opts.subscriber.on('message', (ch) => {
        if (ch === channel) void this.check();
      });
    }
    await this.publishStatus();
    const interval = this.opts.config.pollIntervalMs ?? 2000;
    const tick = () => {
      if (this.closed) return;
      this.timer = setTimeout(() => void this.check().finally(tick), interval);
      this.timer.unref();
    };
    tick();
    this.opts.logger.info({ policy: this.policy, live: this.live.card.version, interval }, 'hot swap: watching for new model versions');
  }

  /** One look at the control key or repository; swaps when a new version is wanted. Serialized. */
  check(): Promise<void> {
    const run = this.chain.then(async () => {
      if (this.closed) return;
      try {
        if (this.policy === 'latest-approved') {
          const v = latestApprovedVersion(this.opts.repository, this.opts.model);
          if (v && v !== this.live.card.version) await this.trySwap(v, 'latest-approved');
        } else if (this.opts.redis) {
          const desired = await getDesiredVersion(this.opts.redis, this.opts.group);
          if (desired && desired.version !== this.live.card.version) await this.trySwap(desired.version, desired.action, desired);
        }
        await this.publishStatus();
      } catch (err) {
        this.opts.logger.warn({ err: (err as Error).message }, 'hot swap: control check failed; will retry');
      }
    });
    this.chain = run;
    return run;
  }

  /** Loads, gates and switches to `version`; resolves with the event (result swapped or refused). Never throws for a bad candidate. */
  swapTo(version: string, trigger = 'promote'): Promise<SwapEvent | undefined> {
    const run = this.chain.then(() => this.trySwap(version, trigger));
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async trySwap(version: string, trigger: string, desired?: DesiredVersion): Promise<SwapEvent | undefined> {
    const dir = modelDir(this.opts.repository, this.opts.model, version);
    const key = `${fingerprint(dir)}:${desired?.requestId ?? ''}`;
    const before = this.refused.get(version);
    if (before && before.key === key) return undefined; // already refused as it is; a new request or new files retry it
    const from = this.live.card.version;
    const started = performance.now();
    const log = this.opts.logger.child({ model: this.opts.model, from, to: version, trigger });
    log.info('hot swap: loading and gating candidate while the live version keeps serving');
    let next: V | undefined;
    let reason: string | undefined;
    try {
      if (!fs.existsSync(dir)) throw new TributaryError(`no version directory ${dir}`);
      const card = readModelCard(dir);
      if (card.name !== this.opts.model) throw new TributaryError(`card names model '${card.name}', expected '${this.opts.model}'`);
      const mismatch = sameFeatures(this.live.card, card);
      if (mismatch) throw new TributaryError(`incompatible: ${mismatch}`);
      next = await this.opts.load(dir, this.live.dir);
    } catch (err) {
      reason = err instanceof ModelGateError ? `gate failed: ${err.report.checks.filter((c) => c.status === 'fail').map((c) => `${c.name}: ${c.detail}`).join('; ')}` : (err as Error).message;
    }
    const event: SwapEvent = { at: new Date().toISOString(), instance: this.instance, model: this.opts.model, from, to: version, result: next ? 'swapped' : 'refused', trigger, reason, durationMs: 0 };
    if (!next) {
      this.refused.set(version, { key, reason: reason! });
      event.durationMs = Math.round(performance.now() - started);
      log.error({ reason, durationMs: event.durationMs }, `hot swap REFUSED: ${this.opts.model}@${version} is not served; ${from} keeps serving`);
    } else {
      // The switch: batches starting from now use `next`; those in flight finish on the old version.
      const old = this.live;
      this.live = next;
      this.previous = from;
      this.refused.delete(version);
      const m = this.opts.metrics.liveVersion;
      m.set({ model: this.opts.model, stage: this.opts.stage, version: from }, 0);
      m.set({ model: this.opts.model, stage: this.opts.stage, version }, 1);
      await this.drained(old);
      await old.close();
      event.durationMs = Math.round(performance.now() - started);
      log.info({ durationMs: event.durationMs }, `hot swap: now serving ${this.opts.model}@${version} (was ${from}); old version drained and closed`);
    }
    this.opts.metrics.swaps.inc({ model: this.opts.model, stage: this.opts.stage, result: event.result });
    this.lastSwap = event;
    if (this.opts.redis) {
      await recordEvent(this.opts.redis, this.opts.group, event).catch(() => undefined);
      await this.publishStatus();
    }
    return event;
  }

  status(): ServingStatus {
    return {
      instance: this.instance,
      stage: this.opts.stage,
      model: this.opts.model,
      live: this.live.card.version,
      previous: this.previous,
      policy: this.policy,
      lastSwap: this.lastSwap,
      refused: Object.fromEntries([...this.refused].map(([v, r]) => [v, r.reason])),
      updatedAt: new Date().toISOString(),
    };
  }

  private async publishStatus(): Promise<void> {
    if (this.opts.redis && !this.closed) await writeStatus(this.opts.redis, this.opts.group, this.status()).catch(() => undefined);
  }

  /** Stops watching, waits for a swap in progress, closes the live version. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    await this.chain.catch(() => undefined);
    if (this.opts.redis) await removeStatus(this.opts.redis, this.opts.group, this.instance).catch(() => undefined);
    this.opts.subscriber?.disconnect();
    this.opts.redis?.disconnect();
    await this.drained(this.live);
    await this.live.close();
  }
}
