import * as fs from 'fs';
import * as path from 'path';
import { createLogger, type Logger } from '../util/logger';
import { ensureArtifacts, type ArtifactPaths } from './artifacts';
import { kafkaAnswers, kafkaFiles, kafkaProcessMarkers, launchKafkaServer } from './kafka-server';
import { ServerStartError, type LaunchedServer } from './launched';
import { withLock } from './lock';
import { cacheDir as cacheDirOf, stackDir, stateFilePath, tributaryHome } from '../util/paths';
import { findFreePorts } from './ports';
import { checkPrerequisites, type ResolvedPrerequisites } from './prerequisites';
import { isOurProcess, processesWorkingIn, stopProcess, wholeArg, type StopResult } from './process';
import { launchRedisServer, redisAnswers, redisLogFile, redisProcessMarkers } from './redis-server';
import { launchRegistryServer, registryAnswers, registryLogFile, registryProcessMarkers } from './registry-server';
import { readState, removeState, StateFileError, writeState, type ServerName, type StackState } from '../util/stack-state';

export interface LocalStackOptions {
  /** TRIBUTARY_HOME to use instead of the env var / `<repo>/.tributary`; stateDir and cacheDir derive from it. */
  home?: string;
  /** Directory for state.json and the per-server data dirs; default `<home>/stack`. Use a separate one for an isolated stack. */
  stateDir?: string;
  /** Artifact cache; default `<home>/cache`. */
  cacheDir?: string;
  /** How long `up` waits for all three servers to answer (default 180 s). */
  startTimeoutMs?: number;
  /** SIGTERM grace per process before SIGKILL (default 20 s). */
  stopTimeoutMs?: number;
  /** Broker max heap (default 512m). */
  kafkaHeap?: string;
  /**
   * More JVM options for the broker (default: TRIBUTARY_KAFKA_JVM_OPTS split on whitespace, none when
   * unset), e.g. a GC log to line a latency tail up with the broker's pauses.
   */
  kafkaJvmOptions?: string[];
  /** Registry max heap (default 384m). */
  registryHeap?: string;
  logger?: Logger;
  env?: NodeJS.ProcessEnv;
  /** Called as servers start answering during `up` (for a progress bar). */
  onStartProgress?: (answering: number, total: number) => void;
}

export interface ServerStatus {
  name: ServerName;
  pid: number;
  port: number;
  endpoint: string;
  /** The recorded pid is running and is the expected server (not a reused pid). */
  alive: boolean;
  /** It answered a request (metadata / GET subjects / PING). */
  answering: boolean;
  logFile: string;
}

export interface StackStatus {
  /** running: all three answer; degraded: state recorded but something is down; stopped: no state file. */
  state: 'running' | 'degraded' | 'stopped';
  stateFile: string;
  startedAt?: string;
  servers: ServerStatus[];
  /** The recorded state (absent when stopped). */
  stack?: StackState;
}

export interface StopReport {
  stateFound: boolean;
  servers: Array<{ name: ServerName; pid: number; result: StopResult }>;
  durationMs: number;
}

const SERVER_NAMES: readonly ServerName[] = ['kafka', 'registry', 'redis'];

/** TRIBUTARY_KAFKA_JVM_OPTS, split on whitespace: more JVM options for the local broker (none when unset). */
export function kafkaJvmOptionsFromEnv(env: NodeJS.ProcessEnv): string[] {
  return (env.TRIBUTARY_KAFKA_JVM_OPTS ?? '').split(/\s+/).filter(Boolean);
}

function logMentionsPortInUse(logFile: string): boolean {
  try {
    return /Address already in use|BindException|seems to be in use/i.test(fs.readFileSync(logFile, 'utf8'));
  } catch {
    return false;
  }
}

/** Command-line markers that must match before a recorded pid is treated as ours. */
export function serverMarkers(name: ServerName, state: StackState): string[] {
  switch (name) {
    case 'kafka':
      return kafkaProcessMarkers(state.kafka.dataDir);
    case 'registry':
      return registryProcessMarkers(state.registry.port);
    case 'redis':
      return redisProcessMarkers(state.redis.port);
  }
}

function endpointOf(name: ServerName, state: StackState): string {
  switch (name) {
    case 'kafka':
      return state.kafka.brokers.join(',');
    case 'registry':
      return state.registry.url;
    case 'redis':
      return state.redis.url;
  }
}

function answers(name: ServerName, state: StackState, timeoutMs: number): Promise<boolean> {
  switch (name) {
    case 'kafka':
      return kafkaAnswers(state.kafka.brokers, timeoutMs);
    case 'registry':
      return registryAnswers(state.registry.url, timeoutMs);
    case 'redis':
      return redisAnswers(state.redis.url, timeoutMs);
  }
}

/**
 * Kafka (KRaft, single node), Apicurio Registry (Confluent-compatible API) and Redis as local, detached
 * processes bound to 127.0.0.1 on free ports, recorded in a state file so later commands can find and stop them.
 */
export class LocalStack {
  readonly stateDir: string;
  readonly stateFile: string;
  readonly cacheDir: string;
  private readonly opts: LocalStackOptions;
  private readonly log: Logger;
  /** The broker's extra JVM options: the option, else TRIBUTARY_KAFKA_JVM_OPTS (resolved once, as home is). */
  private readonly kafkaJvmOptions: string[];

  constructor(opts: LocalStackOptions = {}) {
    this.opts = opts;
    const env = opts.env ?? process.env;
    const home = opts.home ? path.resolve(opts.home) : tributaryHome(env);
    this.stateDir = path.resolve(opts.stateDir ?? stackDir(home));
    this.stateFile = stateFilePath(this.stateDir);
    this.cacheDir = path.resolve(opts.cacheDir ?? cacheDirOf(home));
    this.log = opts.logger ?? createLogger('stack');
    this.kafkaJvmOptions = opts.kafkaJvmOptions ?? kafkaJvmOptionsFromEnv(env);
  }

  private get lockFile(): string {
    return path.join(this.stateDir, '.lock');
  }

  /** The recorded state, if any (no liveness check). */
  readState(): StackState | undefined {
    return readState(this.stateFile);
  }

  /**
   * Starts the stack, or returns the recorded one when all its processes are alive and answering. A partially
   * dead stack is stopped and started fresh. Every server gets a fresh data dir.
   */
  async up(): Promise<StackState> {
    return withLock(this.lockFile, this.startTimeout() + 60_000, async () => {
      const existing = this.readStateLenient();
      if (existing) {
        const servers = await this.check(existing, 3_000);
        if (servers.every((s) => s.answering)) {
          this.log.info({ stateFile: this.stateFile, pids: servers.map((s) => s.pid) }, 'local stack already running');
          return existing;
        }
        this.log.warn({ servers: servers.map(({ name, pid, alive, answering }) => ({ name, pid, alive, answering })) }, 'local stack is partially down; restarting it');
        await this.stopRecorded(existing);
        removeState(this.stateFile);
      }
      return this.start();
    });
  }

  /** Stops exactly the recorded pids (SIGTERM, then SIGKILL after stopTimeoutMs) and removes the state file. */
  async down(): Promise<StopReport> {
    const started = Date.now();
    return withLock(this.lockFile, this.startTimeout() + 60_000, async () => {
      const state = this.readStateLenient();
      if (!state) {
        this.log.info({ stateFile: this.stateFile }, 'local stack is not running (no state file)');
        return { stateFound: false, servers: [], durationMs: Date.now() - started };
      }
      const servers = await this.stopRecorded(state);
      removeState(this.stateFile);
      const report: StopReport = { stateFound: true, servers, durationMs: Date.now() - started };
      this.log.info({ servers, ms: report.durationMs }, 'local stack stopped');
      return report;
    });
  }

  /** What the state file records and whether each process is alive and answering. */
  async status(): Promise<StackStatus> {
    const stack = this.readStateLenient();
    if (!stack) return { state: 'stopped', stateFile: this.stateFile, servers: [] };
    const servers = await this.check(stack, 3_000);
    const state = servers.every((s) => s.answering) ? 'running' : 'degraded';
    return { state, stateFile: this.stateFile, startedAt: stack.startedAt, servers, stack };
  }

  private startTimeout(): number {
    return this.opts.startTimeoutMs ?? 180_000;
  }

  private readStateLenient(): StackState | undefined {
    try {
      return readState(this.stateFile);
    } catch (err) {
      if (!(err instanceof StateFileError)) throw err;
      this.log.warn({ err: err.message }, 'ignoring unreadable state file');
      removeState(this.stateFile);
      return undefined;
    }
  }

  private async check(state: StackState, timeoutMs: number): Promise<ServerStatus[]> {
    return Promise.all(
      SERVER_NAMES.map(async (name): Promise<ServerStatus> => {
        const rec = state[name];
        const alive = isOurProcess(rec.pid, serverMarkers(name, state));
        const answering = alive && (await answers(name, state, timeoutMs));
        return { name, pid: rec.pid, port: rec.port, endpoint: endpointOf(name, state), alive, answering, logFile: rec.logFile };
      }),
    );
  }

  private async stopRecorded(state: StackState): Promise<StopReport['servers']> {
    const timeout = this.opts.stopTimeoutMs ?? 20_000;
    return Promise.all(
      SERVER_NAMES.map(async (name) => {
        const pid = state[name].pid;
        const result = await stopProcess(pid, serverMarkers(name, state), timeout);
        if (result === 'not-ours') this.log.warn({ server: name, pid }, 'recorded pid now belongs to another process; left alone');
        return { name, pid, result };
      }),
    );
  }

  /**
   * Servers left from an `up` that was interrupted before it recorded them: processes of the right kind whose
   * working directory is one of this stack's server dirs. Stopped before starting fresh.
   */
  private async stopUnrecorded(dirs: Record<ServerName, string>): Promise<void> {
    const kinds: Record<ServerName, string[]> = {
      kafka: [wholeArg('kafka.Kafka')],
      registry: ['apicurio-registry-app'],
      redis: ['redis-server'],
    };
    const timeout = this.opts.stopTimeoutMs ?? 20_000;
    await Promise.all(
      SERVER_NAMES.flatMap((name) =>
        processesWorkingIn(dirs[name], kinds[name]).map(async (pid) => {
          this.log.warn({ server: name, pid, dir: dirs[name] }, 'stopping an unrecorded server left by an interrupted start');
          await stopProcess(pid, kinds[name], timeout);
        }),
      ),
    );
  }

  private async start(): Promise<StackState> {
    const env = this.opts.env ?? process.env;
    const tools = checkPrerequisites({ need: ['java', 'redis-server'], env });
    const artifacts = await ensureArtifacts({ cacheDir: this.cacheDir, logger: this.log, env });
    const dirs: Record<ServerName, string> = {
      kafka: path.join(this.stateDir, 'kafka'),
      registry: path.join(this.stateDir, 'registry'),
      redis: path.join(this.stateDir, 'redis'),
    };
    await this.stopUnrecorded(dirs);
    try {
      return await this.startOnce(tools, artifacts, dirs);
    } catch (err) {
      // Free ports are picked just before the servers bind them; if another process took one meanwhile, try once more.
      const logs = [kafkaFiles(dirs.kafka).logFile, registryLogFile(dirs.registry), redisLogFile(dirs.redis)];
      if (!(err instanceof ServerStartError) || !logs.some(logMentionsPortInUse)) throw err;
      this.log.warn({ err: err.message }, 'a port was taken before the server could bind it; retrying with new ports');
      return this.startOnce(tools, artifacts, dirs);
    }
  }

  private async startOnce(tools: ResolvedPrerequisites, artifacts: ArtifactPaths, dirs: Record<ServerName, string>): Promise<StackState> {
    const started = Date.now();
    for (const dir of Object.values(dirs)) {
      fs.rmSync(dir, { recursive: true, force: true });
      fs.mkdirSync(dir, { recursive: true });
    }
    const [kafkaPort, controllerPort, registryPort, redisPort] = (await findFreePorts(4)) as [number, number, number, number];
    this.log.info({ stateDir: this.stateDir, kafkaPort, controllerPort, registryPort, redisPort }, 'starting local stack');

    const launches = await Promise.allSettled([
      launchKafkaServer({ classpath: artifacts.kafkaClasspath, dataDir: dirs.kafka, port: kafkaPort, controllerPort, javaPath: tools.java, heap: this.opts.kafkaHeap, jvmOptions: this.kafkaJvmOptions }),
      launchRegistryServer({ runnerJar: artifacts.registryJar, dataDir: dirs.registry, port: registryPort, javaPath: tools.java, heap: this.opts.registryHeap }),
      launchRedisServer({ dataDir: dirs.redis, port: redisPort, redisServerPath: tools['redis-server'] }),
    ]);
    const [kafka, registry, redis] = launches;
    if (kafka.status === 'rejected' || registry.status === 'rejected' || redis.status === 'rejected') {
      await this.abandon(launches.flatMap((l) => (l.status === 'fulfilled' ? [l.value] : [])));
      throw (launches.find((l) => l.status === 'rejected') as PromiseRejectedResult).reason;
    }

    const state: StackState = {
      version: 1,
      startedAt: new Date().toISOString(),
      kafka: kafka.value.info,
      registry: registry.value.info,
      redis: redis.value.info,
    };
    // Record the pids before waiting, so an interrupted `up` leaves processes that the next `up`/`down` can find.
    writeState(this.stateFile, state);

    const servers: Array<[ServerName, LaunchedServer<{ pid: number }>]> = [
      ['kafka', kafka.value],
      ['registry', registry.value],
      ['redis', redis.value],
    ];
    let answering = 0;
    this.opts.onStartProgress?.(0, servers.length);
    const ready = await Promise.allSettled(
      servers.map(async ([name, launched]) => {
        await launched.waitUntilReady(this.startTimeout());
        this.log.info({ server: name, pid: launched.info.pid, ms: Date.now() - started }, `${name} is answering`);
        this.opts.onStartProgress?.(++answering, servers.length);
      }),
    );
    const failures = ready.flatMap((r) => (r.status === 'rejected' ? [r.reason as Error] : []));
    if (failures.length > 0) {
      for (const f of failures) this.log.error({ err: f.message }, 'local stack failed to start');
      await this.stopRecorded(state);
      removeState(this.stateFile);
      throw failures[0];
    }
    this.log.info({ brokers: state.kafka.brokers, registry: state.registry.url, redis: state.redis.url, ms: Date.now() - started }, 'local stack is up');
    return state;
  }

  private async abandon(launched: Array<LaunchedServer<{ pid: number; port: number }>>): Promise<void> {
    const timeout = this.opts.stopTimeoutMs ?? 20_000;
    await Promise.all(
      launched.map((l) => stopProcess(l.info.pid, [], timeout).catch(() => undefined)),
    );
  }
}
