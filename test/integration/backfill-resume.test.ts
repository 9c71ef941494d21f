import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Prediction } from '../../src/client/generated/avro-types';
import { TopicProducer } from '../../src/client/topic-producer';
import { readOutputFile, readTopicNow } from '../../src/backfill/feedback';
import { JobStore } from '../../src/backfill/job-store';
import { TransactionGenerator } from '../../examples/fraud/generator';
import { prepareFeatureSets } from '../../src/features/prepare';
import { SchemaCatalog } from '../../src/kafka/avro-schemas';
import { AvroDecoder } from '../../src/kafka/avro-serde';
import { createKafka } from '../../src/kafka/client';
import { RecordRejection } from '../../src/kafka/dead-letter';
import { SchemaRegistryClient } from '../../src/kafka/schema-registry';
import { provisionTopology } from '../../src/stages/pipeline';
import { repoRoot } from '../../src/stack/paths';
import { faultTopologyFile } from '../helpers/processes';
import { isolatedTopology, testEndpoints, uniqueSuffix } from '../helpers/topology';
import { fraudSchemas, type Transaction } from '../../examples/fraud/schemas';

const endpoints = testEndpoints();
const catalog = new SchemaCatalog(path.join(repoRoot(), 'schemas'));
const registry = new SchemaRegistryClient({ url: endpoints.schemaRegistryUrl });
const kafka = createKafka({ clientId: 'test-backfill-resume', brokers: endpoints.brokers });
const ENTRY = path.join(repoRoot(), 'dist/backfill/main.js');

/** A `backfill` CLI child; stderr kept (progress lines). */
class BackfillProcess {
  readonly child: ChildProcess;
  stderr = '';
  stdout = '';
  readonly exited: Promise<number | null>;
  constructor(args: string[], env: Record<string, string> = {}) {
    this.child = spawn(process.execPath, [ENTRY, 'backfill', ...args], { cwd: repoRoot(), env: { ...process.env, TRIBUTARY_LOG_LEVEL: 'info', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.child.stdout!.on('data', (d: Buffer) => (this.stdout += d.toString()));
    this.exited = new Promise((resolve) => this.child.once('exit', (code) => resolve(code)));
  }
}

/** Appends events to the topic until stopped (a producer that keeps writing during the backfill). */
function keepAppending(topic: string, seed: number) {
  let stop = false;
  let count = 0;
  const gen = new TransactionGenerator({ seed });
  const producer = new TopicProducer({ brokers: endpoints.brokers, schemaRegistryUrl: endpoints.schemaRegistryUrl, topic, schema: 'transaction', schemas: fraudSchemas, key: (tx: Transaction) => tx.transactionId });
  const done = (async () => {
    await producer.connect();
    while (!stop) {
      await producer.send(gen.take(20).map((g) => g.tx));
      count += 20;
      await new Promise((r) => setTimeout(r, 50));
    }
    await producer.disconnect();
  })();
  return { stop: async () => ((stop = true), await done, count), count: () => count };
}

async function endOffsets(topic: string): Promise<Map<number, number>> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    return new Map((await admin.fetchTopicOffsets(topic)).map((o) => [o.partition, Number(o.high)]));
  } finally {
    await admin.disconnect();
  }
}

async function setUp(suffix: string, n: number) {
  const file = faultTopologyFile(suffix);
  const topology = isolatedTopology('topologies/fraud-detection.yaml', suffix);
  await prepareFeatureSets(topology, endpoints.redisUrl!);
  await provisionTopology(topology, kafka, registry);
  const input = `fraud.transactions.${suffix}`;
  const producer = new TopicProducer({ brokers: endpoints.brokers, schemaRegistryUrl: endpoints.schemaRegistryUrl, topic: input, schema: 'transaction', schemas: fraudSchemas, key: (tx: Transaction) => tx.transactionId });
  await producer.connect();
  const events = new TransactionGenerator({ seed: 61 }).take(n).map((g) => g.tx);
  for (let i = 0; i < n; i += 1000) await producer.send(events.slice(i, i + 1000));
  await producer.disconnect();
  return { file, input };
}

/**
 * Kills the backfill (SIGKILL) partway, while a producer keeps appending to the input topic;
 * resumes it; returns what the plan said and what the output holds. With `crashAt` (a crash
 * point of src/engine/fault-injection.ts, e.g. `txn-sent:5` or `file-appended:5`) the process
 * SIGKILLs itself at that exact place — used for both outputs: either can finish a 4,000-event
 * range between two progress lines, so a kill sent on progress could land after the end.
 */
async function crashAndResume(args: string[], stateDir: string, job: string, input: string, readOutput: () => Promise<Array<{ partition: number; offset: number }>>, crashAt: string) {
  const appender = keepAppending(input, 77);
  try {
    const first = new BackfillProcess(args, { TRIBUTARY_FAULT_CRASH_AT: crashAt });
    await first.exited;
    expect(first.child.signalCode).toBe('SIGKILL'); // killed itself mid-backfill, at the crash point
    const plan = new JobStore(stateDir, job).plan()!;
    const planned = plan.ranges.reduce((n, r) => n + (r.end - r.start), 0);
    const partial = await readOutput();
    expect(partial.length).toBeLessThan(planned);
    await new Promise((r) => setTimeout(r, 500)); // the producer keeps appending meanwhile

    const second = new BackfillProcess(args);
    expect(await second.exited).toBe(0);
    expect(second.stdout).toContain('complete (resumed)');
    expect(second.stderr).toMatch(/events\/s {2}ETA/);
    const appended = appender.count();
    expect(appended).toBeGreaterThan(0);
    // The range end held: the plan was fixed at the first start; the topic has grown past it since.
    const ends = await endOffsets(input);
    expect([...ends.values()].reduce((a, b) => a + b, 0)).toBeGreaterThan(plan.ranges.reduce((n, r) => n + r.end, 0));
    const out = await readOutput();
    // Every event of the range exactly once, nothing outside it.
    const seen = new Map<string, number>();
    for (const o of out) seen.set(`${o.partition}:${o.offset}`, (seen.get(`${o.partition}:${o.offset}`) ?? 0) + 1);
    const missing: string[] = [];
    for (const r of plan.ranges) for (let o = r.start; o < r.end; o++) if (!seen.has(`${r.partition}:${o}`)) missing.push(`${r.partition}:${o}`);
    const duplicated = [...seen.values()].filter((c) => c > 1).length;
    expect({ missing: missing.length, duplicated, total: out.length }).toEqual({ missing: 0, duplicated: 0, total: planned });
    return { plan, planned, partial: partial.length, summary: second.stdout };
  } finally {
    await appender.stop();
  }
}

describe('backfill crash and resume (CLI child killed with SIGKILL) while a producer keeps appending', () => {
  it('file output: every event of the planned range exactly once after resume; the range end holds', async () => {
    const suffix = uniqueSuffix();
    const { file, input } = await setUp(suffix, 4000);
    const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-backfill-'));
    const out = path.join(stateDir, 'out.csv');
    const args = [file, '--from', 'earliest', '--to', 'latest', '--output', out, '--include-features', '--job', 'crash-file', '--state-dir', stateDir, '--fetch-bytes', '8192', '--commit-records', '200', '--progress-interval', '100'];
    // Killed at an exact place (rows appended, checkpoint not yet replaced: the resume must truncate
    // them), not on a progress line: the file sink can finish the whole range between two of those.
    const res = await crashAndResume(args, stateDir, 'crash-file', input, async () => readOutputFile(out, 'csv'), 'file-appended:5');
    // The plan took what was there at the first start (the 4000 + what the producer had appended by then).
    expect(res.planned).toBeGreaterThanOrEqual(4000);
    expect(res.summary).toContain(`predictions ${res.planned}`);
  });

  it('topic output: every event of the planned range exactly once for read_committed readers after resume', async () => {
    const suffix = uniqueSuffix();
    const { file, input } = await setUp(suffix, 4000);
    const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-backfill-'));
    const output = `fraud.backfill.${suffix}`;
    const args = [file, '--from', 'earliest', '--output', `topic:${output}`, '--job', 'crash-topic', '--state-dir', stateDir, '--fetch-bytes', '8192', '--commit-records', '200', '--progress-interval', '100'];
    const decoder = new AvroDecoder<Prediction>(registry, catalog.get('prediction').type);
    const readOutput = async () => {
      const rows: Array<{ partition: number; offset: number }> = [];
      await readTopicNow(kafka, output, `test-verify-${uniqueSuffix()}`, async (m) => {
        const p = await decoder.decode(m.value);
        if (!(p instanceof RecordRejection)) rows.push(p.lineage);
      });
      return rows;
    };
    // The 5th transaction's outputs are sent, then the process dies before committing it (~1,000 of 4,000 events in).
    const res = await crashAndResume(args, stateDir, 'crash-topic', input, readOutput, 'txn-sent:5');
    expect(res.planned).toBeGreaterThanOrEqual(4000);
    expect(res.summary).toContain(`predictions ${res.planned}`);
  });
});
