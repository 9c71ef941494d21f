import type { Command } from 'commander';
import { createKafka } from '../../kafka/client';
import { SchemaRegistryClient, registryAuthFromEnv } from '../../kafka/schema-registry';
import { produceDemoEvents } from '../../demo/produce';
import { formatSummary, runDemo } from '../../demo/run-demo';
import { resolveEndpoints } from '../../util/endpoints';
import { startTestStack } from '../../stack/test-harness';
import { loadTopologyFile, TOPOLOGY_FLAGS, TOPOLOGY_HELP, DEFAULT_TOPOLOGY } from '../topology-file';
import { nonNegativeInt, nonNegativeNumber, positiveInt, UsageError, wantsJson } from '../options';
import { ensurePrerequisites } from '../../stack/ensure-prerequisites';
import { ENDPOINT_ENV } from '../../util/endpoints';
import { onShutdownSignal } from './pipeline';
import { loadGeneratorSpec } from '../../demo/generator-spec';

/** JSON-friendly rendering of decoded Avro: bytes as base64, Avro records as plain objects. */
function toJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => {
    if (v && typeof v === 'object' && (v as { type?: string }).type === 'Buffer' && Array.isArray((v as { data?: unknown }).data)) {
      return { base64: Buffer.from((v as { data: number[] }).data).toString('base64') };
    }
    return v;
  });
}

/** The demo's topology: fraud-detection plus the candidate model as a shadow and a canary arm. */
export const DEMO_TOPOLOGY = 'topologies/fraud-demo.yaml';

/** `--start-time`: "now", "spec" (the generator spec's fixed date), an ISO time or epoch ms. */
function parseStartTime(value: string): number | undefined {
  if (value === 'now') return Date.now();
  if (value === 'spec') return loadGeneratorSpec().defaultStartTime;
  const ms = /^\d+$/.test(value) ? Number(value) : Date.parse(value);
  if (!Number.isFinite(ms)) throw new UsageError(`--start-time: '${value}' is neither "now", "spec", an ISO time nor epoch milliseconds`);
  return ms;
}

export function registerDemoCommands(program: Command): void {
  program
    .command('produce-demo')
    .description('publish generated card transactions (Avro via the registry) to the topology\'s input topic')
    .option(TOPOLOGY_FLAGS, TOPOLOGY_HELP, DEFAULT_TOPOLOGY)
    .option('--count <n>', 'number of events', positiveInt, 1000)
    .option('--rate <n>', 'events per second (0 = as fast as possible)', nonNegativeNumber, 200)
    .option('--seed <n>', 'generator seed (default: a fresh one per run)', nonNegativeInt, Date.now() % 1_000_000)
    .option('--feedback <topic>', 'also publish each event\'s planted label (schema feedback, keyed like the event) to this topic')
    .option('--start-time <time>', 'generator clock at the first event: ISO time, epoch ms, "now" or "spec" (the training data\'s fixed date)', 'now')
    .action(async (opts: { topology: string; count: number; rate: number; seed: number; feedback?: string; startTime: string }, cmd: Command) => {
      const topology = loadTopologyFile(opts.topology);
      const endpoints = resolveEndpoints();
      const res = await produceDemoEvents({
        brokers: endpoints.brokers,
        schemaRegistryUrl: endpoints.schemaRegistryUrl,
        topic: topology.spec.stages[0].input.topic,
        count: opts.count,
        rate: opts.rate,
        seed: opts.seed,
        startTime: parseStartTime(opts.startTime),
        feedbackTopic: opts.feedback,
      });
      if (wantsJson(cmd)) process.stdout.write(`${JSON.stringify(res)}\n`);
      else process.stdout.write(`produced ${res.produced} events in ${res.seconds.toFixed(1)} s (dated ${new Date(res.startTime).toISOString().slice(0, 10)})${opts.feedback ? `; ${res.labels} labels to ${opts.feedback}` : ''}\n`);
    });

  program
    .command('tail')
    .description('print a topic\'s records as JSON lines, decoded with their registered Avro schemas')
    .argument('<topic>')
    .option('--from-beginning', 'start at the earliest offset', false)
    .option('--max <n>', 'stop after n records', positiveInt)
    .option('--until-end', 'stop at the end of the topic (the last offsets when tail starts) instead of waiting for more')
    .action(async (topic: string, opts: { fromBeginning: boolean; max?: number; untilEnd?: boolean }) => {
      const endpoints = resolveEndpoints();
      const registry = new SchemaRegistryClient({ url: endpoints.schemaRegistryUrl, auth: registryAuthFromEnv() }).registry;
      const kafka = createKafka({ clientId: 'tributary-tail', brokers: endpoints.brokers });
      const consumer = kafka.consumer({ groupId: `tributary-tail-${process.pid}-${Date.now()}`, maxWaitTimeInMs: 200 });
      const max = opts.max ?? Infinity;
      let seen = 0;
      let stopping = false;
      const stop = async () => {
        await consumer.disconnect();
      };
      const finish = () => {
        if (stopping) return;
        stopping = true;
        setImmediate(() => void stop().then(() => process.exit(0)));
      };
      onShutdownSignal(stop, 5000);
      // --until-end: the partitions still to read up to the end offsets seen now. Progress is taken
      // from batch ends, which also cover transaction markers (never delivered as messages).
      const pending = new Map<number, bigint>();
      if (opts.untilEnd) {
        const admin = kafka.admin();
        await admin.connect();
        try {
          for (const o of await admin.fetchTopicOffsets(topic)) if (opts.fromBeginning && BigInt(o.high) > BigInt(o.low)) pending.set(o.partition, BigInt(o.high));
        } finally {
          await admin.disconnect();
        }
        if (pending.size === 0) {
          process.exit(0);
        }
        consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
          const end = pending.get(payload.partition);
          if (payload.topic !== topic || end === undefined || payload.lastOffset === null) return;
          if (BigInt(String(payload.lastOffset)) + 1n >= end) pending.delete(payload.partition);
          if (pending.size === 0) finish();
        });
      }
      await consumer.connect();
      await consumer.subscribe({ topic, fromBeginning: opts.fromBeginning });
      await consumer.run({
        eachMessage: async ({ partition, message }) => {
          if (seen >= max || stopping) return;
          let value: unknown;
          try {
            value = message.value ? await registry.decode(message.value) : null;
          } catch (err) {
            value = { undecodable: (err as Error).message, base64: message.value?.toString('base64') };
          }
          process.stdout.write(`${toJson({ partition, offset: Number(message.offset), key: message.key?.toString() ?? null, value })}\n`);
          if (++seen >= max) finish();
        },
      });
    });

  program
    .command('demo')
    .description('end to end on the local stack: start it, run the topology, produce events, print a summary, stop what it started')
    .option(TOPOLOGY_FLAGS, 'topology file (default: the fraud pipeline with a shadow and a canary arm for the candidate model)', DEMO_TOPOLOGY)
    .option('--count <n>', 'number of events', positiveInt, 1000)
    .option('--rate <n>', 'events per second (0 = as fast as possible)', nonNegativeNumber, 250)
    .option('--malformed <n>', 'malformed events to mix in (0-5), to show the dead-letter path', nonNegativeInt, 5)
    .option('--seed <n>', 'generator seed (default: a fresh one per run, so keys never collide with earlier runs)', nonNegativeInt, Date.now() % 1_000_000_000)
    .option('--no-feedback', 'do not publish the planted labels to the topology\'s feedback topic')
    .option('--no-report', 'skip the shadow report (faster)')
    .option('--report-dir <dir>', 'where the shadow report goes (default .tributary/reports/demo-<time>)')
    .option('--bootstrap <n>', 'bootstrap resamples for the report\'s confidence intervals (fewer is faster)', nonNegativeInt, 300)
    .option('--start-time <time>', 'generator clock at the first event: ISO time, epoch ms, "now" or "spec"', 'now')
    .action(async (opts: { topology: string; count: number; rate: number; malformed: number; seed: number; feedback: boolean; report: boolean; reportDir?: string; bootstrap: number; startTime: string }, cmd: Command) => {
      if (opts.malformed > 5) throw new UsageError(`--malformed: expected 0-5 (one of each kind), got ${opts.malformed}`);
      const startTime = parseStartTime(opts.startTime);
      loadTopologyFile(opts.topology); // fail fast on a bad file, before starting servers
      // A fresh machine: install the servers' system packages first (unless every endpoint comes from the env).
      if (!Object.values(ENDPOINT_ENV).every((name) => Boolean(process.env[name]?.trim()))) await ensurePrerequisites({ set: 'stack' });
      // Existing endpoints (env or a running local stack) are reused and left alone; otherwise the stack
      // is started here and stopped at the end.
      const stack = await startTestStack();
      try {
        const summary = await runDemo({
          endpoints: stack.endpoints,
          topologyFile: opts.topology,
          count: opts.count,
          rate: opts.rate,
          seed: opts.seed,
          malformed: opts.malformed,
          startTime,
          feedback: opts.feedback,
          shadowReport: opts.report,
          reportDir: opts.reportDir,
          bootstrap: opts.bootstrap,
        });
        process.stdout.write(`${wantsJson(cmd) ? JSON.stringify(summary, null, 2) : formatSummary(summary)}\n`);
        if (summary.predictions + summary.deadLettered < summary.produced + summary.malformedInjected) process.exitCode = 1;
      } finally {
        await stack.stop();
      }
    });
}
