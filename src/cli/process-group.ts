/**
 * `tributary run --processes N`: one topology run by N processes of this machine, each a member of
 * the topology's consumer groups (Kafka splits the partitions among them), under one supervisor.
 *
 * Why processes: a pipeline process does its decoding, features, scoring and encoding on one
 * JavaScript thread, so one process tops out near one core however many the machine has (BENCHMARKS
 * item 23: the stateless topology's single thread saturates near 42,500 events/s on this 2-core
 * machine). N processes in the same groups use N cores; nothing new is needed for correctness —
 * several instances of one topology are what the engine already runs (fencing, exactly-once,
 * rebalancing), so the supervisor only starts, watches and stops them.
 *
 * The supervisor (node's cluster primary) does no stream work. It
 * - forks the workers (cluster.fork: the same command line) and restarts one that dies while the
 *   group is running, after a backoff (1 s, doubling to 30 s, reset after a minute up): its
 *   partitions move to its siblings at once by the group's rebalance, and the restart gives them back;
 * - serves /metrics summed over the workers (prom-client's AggregatorRegistry: counters and
 *   histograms add up; gauges are summed too, e.g. lag and in-flight records), and /readyz ready
 *   only when every worker is ready (each reports its pipeline's readiness every 500 ms);
 * - on SIGTERM/SIGINT asks every worker to stop gracefully (a message, so a terminal's Ctrl-C,
 *   which signals the whole process group, stops each worker once) and exits when they have: 0 if
 *   every worker stopped cleanly. A second signal kills the workers and exits 130.
 * A worker whose supervisor is gone (killed -9) stops gracefully by itself.
 *
 * Instance ids: each worker claims its own host slot (the default) or, with --instance-id ID, is
 * `ID.<worker index>` — stable per worker, so a restarted worker re-initialises its predecessor's
 * transactional ids and aborts its open transaction at once.
 */
import cluster, { type Worker } from 'node:cluster';
import { AggregatorRegistry, type Registry } from 'prom-client';
import type { ReadinessReport } from '../monitoring/http-server';
import { MonitoringServer } from '../monitoring/http-server';
import { recordRun } from '../monitoring/run-state';
import { createLogger } from '../util/logger';
import { stopThenExit } from './graceful-exit';
import { startMonitoringServer } from './monitoring-port';

const log = createLogger('process-group');

/** The supervisor's messages to a worker, and a worker's to the supervisor. */
const STOP = 'tributary:stop';
const READINESS = 'tributary:readiness';
type WorkerMessage = { type: typeof READINESS; report: ReadinessReport };

/** Env var telling a forked worker its index (0-based) in the group. */
const WORKER_INDEX_ENV = 'TRIBUTARY_WORKER_INDEX';

const RESTART_MIN_MS = 1000;
const RESTART_MAX_MS = 30000;
/** A worker up this long has its restart backoff reset. */
const HEALTHY_AFTER_MS = 60000;

/** True in a process forked by `run --processes N` (it runs the pipeline, without a monitoring server of its own). */
export function isGroupWorker(): boolean {
  return cluster.isWorker && process.env[WORKER_INDEX_ENV] !== undefined;
}

/** This worker's index in its group (0-based). */
export function groupWorkerIndex(): number {
  return Number(process.env[WORKER_INDEX_ENV]);
}

/** A worker's instance id from the operator's --instance-id: one per worker, stable across its restarts. */
export function workerInstanceId(base: string, index: number): string {
  return `${base}.${index}`;
}

/** /metrics of the supervisor: the workers' registries, summed (AggregatorRegistry asks each over IPC). */
class WorkersRegistry extends AggregatorRegistry<'text/plain; version=0.0.4; charset=utf-8'> {
  override metrics(): Promise<string> {
    return this.clusterMetrics();
  }
}

export interface ProcessGroupOptions {
  processes: number;
  topologyName: string;
  stages: string[];
  metricsPort: number;
  metricsHost: string;
  /** Each worker's graceful-stop bound; the supervisor waits this plus a margin for all of them. */
  shutdownTimeoutMs: number;
}

interface Slot {
  index: number;
  worker?: Worker;
  readiness?: ReadinessReport;
  startedAt: number;
  backoffMs: number;
  restarts: number;
  /** Whether any of this slot's workers got its pipeline started (a first start that fails stops the group). */
  wasStarted: boolean;
  timer?: NodeJS.Timeout;
}

/** Runs the supervisor until a signal stops the group; resolves with the exit code. */
export async function superviseProcessGroup(opts: ProcessGroupOptions): Promise<number> {
  const slots: Slot[] = Array.from({ length: opts.processes }, (_, index) => ({ index, startedAt: 0, backoffMs: RESTART_MIN_MS, restarts: 0, wasStarted: false }));
  let stopping = false;
  const monitoring = new MonitoringServer({
    registry: new WorkersRegistry(),
    port: opts.metricsPort,
    host: opts.metricsHost,
    readiness: () => groupReadiness(slots),
  });
  const { url } = await startMonitoringServer(monitoring, { port: opts.metricsPort, host: opts.metricsHost, flag: '--metrics-port', env: 'TRIBUTARY_METRICS_PORT' });
  const unrecord = recordRun({ kind: 'run', topology: opts.topologyName, stages: opts.stages, metricsUrl: url });

  let failedStops = 0;
  const fork = (slot: Slot) => {
    const worker = cluster.fork({ [WORKER_INDEX_ENV]: String(slot.index) });
    slot.worker = worker;
    slot.readiness = undefined;
    slot.startedAt = Date.now();
    worker.on('message', (m: WorkerMessage) => {
      if (m?.type !== READINESS) return;
      slot.readiness = m.report; // sent once its pipeline started
      slot.wasStarted = true;
    });
    worker.once('exit', (code, signal) => {
      if (slot.worker === worker) slot.worker = undefined;
      if (stopping) {
        if (code !== 0) failedStops++;
        log.info({ worker: slot.index, pid: worker.process.pid, code, signal }, 'worker stopped');
        return;
      }
      if (!slot.wasStarted) {
        // Never got going (brokers unreachable, a model refused by its gate, ...): what it printed
        // says why; restarting would only repeat it, so the group stops, as one process would.
        log.error({ worker: slot.index, pid: worker.process.pid, code, signal }, 'worker failed before its pipeline started; stopping the process group');
        failedStops++;
        stopGroup('a worker failed to start');
        return;
      }
      // Died while the group runs: its partitions are rebalanced to the others now; bring it back.
      if (Date.now() - slot.startedAt > HEALTHY_AFTER_MS) slot.backoffMs = RESTART_MIN_MS;
      log.error({ worker: slot.index, pid: worker.process.pid, code, signal, restartInMs: slot.backoffMs }, 'worker exited while running; its partitions go to the others until it is restarted');
      slot.timer = setTimeout(() => {
        slot.timer = undefined;
        if (stopping) return;
        slot.restarts++;
        fork(slot);
        log.info({ worker: slot.index, pid: slot.worker?.process.pid, restarts: slot.restarts }, 'worker restarted');
      }, slot.backoffMs);
      slot.backoffMs = Math.min(slot.backoffMs * 2, RESTART_MAX_MS);
    });
  };
  let finished!: (code: number) => void;
  const done = new Promise<number>((r) => (finished = r));
  function stopGroup(why: string): void {
    if (stopping) return;
    stopping = true;
    log.info({ why, workers: slots.filter((s) => s.worker).length }, 'shutting down the process group gracefully');
    for (const s of slots) clearTimeout(s.timer);
    const live = slots.flatMap((s) => (s.worker ? [s.worker] : []));
    const gone = live.map((w) => new Promise<void>((r) => (w.isDead() ? r() : w.once('exit', () => r()))));
    for (const w of live) {
      try {
        w.send(STOP);
      } catch {
        // its channel closed: it is exiting already
      }
    }
    const bound = setTimeout(() => {
      log.error({ timeoutMs: opts.shutdownTimeoutMs }, 'workers did not stop in time; killing them');
      for (const s of slots) s.worker?.process.kill('SIGKILL');
    }, opts.shutdownTimeoutMs + 5000);
    bound.unref();
    void Promise.all(gone).then(async () => {
      clearTimeout(bound);
      unrecord();
      await monitoring.stop();
      finished(failedStops === 0 ? 0 : 1);
    });
  }
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      log.warn({ signal }, 'second signal: killing the workers now');
      for (const s of slots) s.worker?.process.kill('SIGKILL');
      process.exit(130);
    }
    stopGroup(signal);
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  for (const slot of slots) fork(slot);
  log.info({ processes: opts.processes, pids: slots.map((s) => s.worker?.process.pid), metrics: url }, 'process group started');
  return done;
}

/** Ready when every worker is alive and its pipeline reports ready. */
function groupReadiness(slots: Slot[]): ReadinessReport {
  const workers = slots.map((s) => ({ worker: s.index, pid: s.worker?.process.pid ?? null, restarts: s.restarts, ready: s.worker !== undefined && s.readiness?.ready === true, ...(s.readiness ? { checks: s.readiness.checks } : { checks: s.worker ? 'starting' : 'restarting' }) }));
  return { ready: workers.every((w) => w.ready), checks: { workers } };
}

/** The worker's side of /metrics: the supervisor's AggregatorRegistry asks for this registry over IPC. */
export function exposeMetricsToSupervisor(registry: Registry): void {
  AggregatorRegistry.setRegistries([registry]);
  // Constructing one is what makes prom-client answer the supervisor's requests in a worker.
  new AggregatorRegistry();
}

/**
 * The worker's side: its readiness to the supervisor every 500 ms, and `stop` (the same graceful
 * stop as a signal) on the supervisor's request, on a signal, or when the supervisor is gone.
 * Once only: a terminal's Ctrl-C reaches the worker and the supervisor's request follows it.
 */
export function serveGroupWorker(readiness: () => ReadinessReport, stop: () => Promise<void>, timeoutMs: number): void {
  const send = () => {
    if (process.connected) process.send?.({ type: READINESS, report: readiness() } satisfies WorkerMessage);
  };
  send();
  const timer = setInterval(send, 500);
  timer.unref();
  let stopping = false;
  const stopOnce = (why: string) => {
    if (stopping) return;
    stopping = true;
    clearInterval(timer);
    log.info({ worker: groupWorkerIndex(), why, timeoutMs }, 'worker stopping gracefully');
    stopThenExit(stop, timeoutMs, log);
  };
  process.on('message', (m: unknown) => m === STOP && stopOnce('supervisor asked'));
  process.on('disconnect', () => stopOnce('supervisor gone'));
  process.on('SIGTERM', () => stopOnce('SIGTERM'));
  process.on('SIGINT', () => stopOnce('SIGINT'));
}
