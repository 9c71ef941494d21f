import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parse, stringify } from 'yaml';
import { TopicConsumer } from '../../src/client/topic-consumer';
import { TransactionGenerator } from '../../examples/fraud/generator';
import { cacheDir, repoRoot, tributaryHome } from '../../src/stack/paths';
import { KAFKA_VERSION } from '../../src/stack/artifacts';
import type { PipelineEndpoints } from '../../src/stages/pipeline';

export const CLI = path.join(repoRoot(), 'dist/cli/main.js');

/**
 * Writes a copy of the demo topology with suffixed topics (fresh per test, so runs sharing a stack
 * never meet), edited by `edit`, into a new temp dir; returns the file.
 */
export function suffixedTopologyFile(suffix: string, edit?: (doc: any) => void, tmpPrefix = 'tributary-topology-'): string {
  const doc = parse(fs.readFileSync(path.join(repoRoot(), 'topologies/fraud-detection.yaml'), 'utf8'));
  doc.name = `${doc.name}-${suffix}`;
  for (const t of doc.topics) t.name = `${t.name}.${suffix}`;
  doc.deadLetter.topic = `${doc.deadLetter.topic}.${suffix}`;
  for (const s of doc.stages) {
    s.input.topic = `${s.input.topic}.${suffix}`;
    s.output.topic = `${s.output.topic}.${suffix}`;
  }
  edit?.(doc);
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), tmpPrefix)), 'topology.yaml');
  fs.writeFileSync(file, stringify(doc));
  return file;
}

/**
 * The suffixed demo topology with fault-test friendly consumer settings: a short session timeout
 * so a killed member leaves its group fast.
 */
export function faultTopologyFile(suffix: string, edit?: (doc: any) => void): string {
  return suffixedTopologyFile(
    suffix,
    (doc) => {
      for (const s of doc.stages) s.consumer = { ...(s.consumer ?? {}), sessionTimeoutMs: 6000, heartbeatIntervalMs: 1000 };
      edit?.(doc);
    },
    'tributary-fault-',
  );
}

/** A `tributary run` child process whose structured logs are kept for assertions. */
export class StageProcess {
  readonly child: ChildProcess;
  private readonly logs: string[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(topologyFile: string, extraArgs: string[] = [], env: NodeJS.ProcessEnv = {}) {
    this.child = spawn(process.execPath, [CLI, 'run', topologyFile, '--metrics-port', '0', ...extraArgs], {
      cwd: repoRoot(),
      env: { ...process.env, TRIBUTARY_LOG_LEVEL: 'info', ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    this.child.stderr!.on('data', (d: Buffer) => this.logs.push(d.toString()));
    this.exited = new Promise((resolve) => this.child.once('exit', (code, signal) => resolve({ code, signal })));
  }

  get output(): string {
    return this.logs.join('');
  }

  running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Its log entries (pino JSON lines) with this message and, when given, these field values; a line still being written is skipped. */
  entries(msg: string, fields: Record<string, unknown> = {}): Array<{ time: number; [k: string]: unknown }> {
    const found: Array<{ time: number; [k: string]: unknown }> = [];
    for (const line of this.output.split('\n')) {
      if (!line.includes(`"msg":"${msg}"`)) continue;
      let entry: { time: number; [k: string]: unknown };
      try {
        entry = JSON.parse(line) as typeof entry;
      } catch {
        continue;
      }
      if (Object.entries(fields).every(([k, v]) => entry[k] === v)) found.push(entry);
    }
    return found;
  }

  /** Polls `probe` until it returns something (returned), failing when the process exits first or after `timeoutMs`; `what` names the wait in the error, with the output's tail. */
  async waitFor<T>(what: string, probe: () => T | undefined, timeoutMs = 90000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const got = probe();
      if (got !== undefined) return got;
      if (!this.running()) throw new Error(`process exited before ${what}: ${this.output.slice(-2000)}`);
      if (Date.now() > deadline) throw new Error(`no ${what} within ${timeoutMs} ms: ${this.output.slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async waitForLog(needle: string, timeoutMs: number): Promise<void> {
    await this.waitFor(`logging '${needle}'`, () => (this.output.includes(needle) ? true : undefined), timeoutMs);
  }

  kill(signal: NodeJS.Signals): void {
    if (this.running()) this.child.kill(signal);
  }

  /** SIGTERM and wait; SIGKILL if it does not exit within the timeout. */
  async stop(timeoutMs = 40000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (!this.running()) return this.exited;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.kill('SIGKILL'), timeoutMs);
    const res = await this.exited;
    clearTimeout(timer);
    return res;
  }
}

/** Reads every committed prediction key of a topic (read_committed) until `expected` distinct keys or the timeout. */
export async function committedKeys(endpoints: PipelineEndpoints, topic: string, expected: number, timeoutMs: number, groupSuffix: string, schema: 'prediction' | 'feature-vector' = 'prediction'): Promise<string[]> {
  const keys: string[] = [];
  const distinct = new Set<string>();
  const consumer = new TopicConsumer({ brokers: endpoints.brokers, schemaRegistryUrl: endpoints.schemaRegistryUrl, topic, schema: schema as "prediction", groupId: `verify-${groupSuffix}-${schema}-${Date.now()}` });
  await consumer.run((p) => {
    keys.push(p.key);
    distinct.add(p.key);
  });
  const deadline = Date.now() + timeoutMs;
  while (distinct.size < expected && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
  await consumer.stop();
  // The verdict comes from Kafka's own read_committed consumer: these tests judge the pipeline,
  // not the client that reads its output. (kafkajs' filter of aborted transactions delivered a few
  // aborted records after crashes; scripts/patch-kafkajs.js fixes both causes found.)
  return kafkaConsoleKeys(endpoints.brokers[0], topic);
}

/** Every key of a topic as Kafka's console consumer (read_committed) sees it. */
export function kafkaConsoleKeys(broker: string, topic: string): string[] {
  const libs = path.join(cacheDir(tributaryHome()), `kafka-${KAFKA_VERSION}`, 'libs', '*');
  const res = spawnSync('java', ['-cp', libs, 'org.apache.kafka.tools.consumer.ConsoleConsumer', '--bootstrap-server', broker, '--topic', topic, '--from-beginning', '--isolation-level', 'read_committed', '--timeout-ms', '8000', '--property', 'print.key=true', '--property', 'print.value=false'], { encoding: 'utf8', timeout: 120000, maxBuffer: 64 * 1024 * 1024 });
  if (res.status !== 0 && res.stdout.trim() === '') throw new Error(`console consumer failed on ${topic}: ${res.stderr.slice(-1000)}`);
  return res.stdout.split('\n').filter((l) => l.trim() !== '');
}

export function lossAndDuplicates(expectedKeys: string[], seen: string[]): { lost: number; duplicated: number } {
  const counts = new Map<string, number>();
  for (const k of seen) counts.set(k, (counts.get(k) ?? 0) + 1);
  const lost = expectedKeys.filter((k) => !counts.has(k)).length;
  const duplicated = [...counts.values()].reduce((n, c) => n + (c - 1), 0);
  return { lost, duplicated };
}

/** Appends a row to the fault report (test/faults/report.md is rewritten by each run of the fault suite). */
export function recordFault(row: { scenario: string; events: number; lost: number; duplicated: number; recoverySeconds: number | string }): void {
  const dir = path.join(repoRoot(), '.tributary');
  fs.mkdirSync(dir, { recursive: true });
  fs.appendFileSync(path.join(dir, 'fault-report.jsonl'), `${JSON.stringify({ ...row, at: new Date().toISOString() })}\n`);
}

/** Keys of every committed record of an input topic (what the pipeline really had to process). */
export async function inputKeys(brokers: string[], topic: string, minimum: number, timeoutMs = 60000): Promise<string[]> {
  const kafka = (await import('../../src/kafka/client')).createKafka({ clientId: 'verify-input', brokers });
  const consumer = kafka.consumer({ groupId: `verify-input-${topic}-${Date.now()}`, readUncommitted: false, maxWaitTimeInMs: 100 });
  const keys: string[] = [];
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({ eachMessage: async ({ message }) => void keys.push(message.key!.toString()) });
  const deadline = Date.now() + timeoutMs;
  while (keys.length < minimum && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  await new Promise((r) => setTimeout(r, 1500));
  await consumer.disconnect();
  return keys;
}

/** Exactly once per input record: for every key, as many outputs as input records (lost/duplicated otherwise). */
export function exactlyOnceAgainstInput(input: string[], seen: string[]): { lost: number; duplicated: number } {
  const want = new Map<string, number>();
  for (const k of input) want.set(k, (want.get(k) ?? 0) + 1);
  const got = new Map<string, number>();
  for (const k of seen) got.set(k, (got.get(k) ?? 0) + 1);
  let lost = 0;
  let duplicated = 0;
  for (const [k, n] of want) lost += Math.max(0, n - (got.get(k) ?? 0));
  for (const [k, n] of got) duplicated += Math.max(0, n - (want.get(k) ?? 0));
  return { lost, duplicated };
}

/** The keys produceDemoEvents publishes for a seed (the generator is deterministic). */
export function generatedKeys(seed: number, count: number): string[] {
  const g = new TransactionGenerator({ seed, startTime: 0 });
  return Array.from({ length: count }, () => g.next().tx.transactionId);
}
