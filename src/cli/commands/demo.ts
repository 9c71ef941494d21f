import type { Command } from 'commander';
import { createKafka } from '../../kafka/client';
import { SchemaRegistryClient, registryAuthFromEnv } from '../../kafka/schema-registry';
import { produceDemoEvents } from '../../demo/produce';
import { formatSummary, runDemo } from '../../demo/run-demo';
import { resolveEndpoints } from '../../stack/endpoints';
import { startTestStack } from '../../stack/test-harness';
import { loadTopologyFile, TOPOLOGY_FLAGS, TOPOLOGY_HELP, DEFAULT_TOPOLOGY } from '../topology-file';
import { nonNegativeInt, nonNegativeNumber, positiveInt, UsageError, wantsJson } from '../options';
import { ensurePrerequisites } from '../../stack/ensure-prerequisites';
import { ENDPOINT_ENV } from '../../stack/endpoints';
import { onShutdownSignal } from './pipeline';

/** JSON-friendly rendering of decoded Avro: bytes as base64, Avro records as plain objects. */
function toJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => {
    if (v && typeof v === 'object' && (v as { type?: string }).type === 'Buffer' && Array.isArray((v as { data?: unknown }).data)) {
      return { base64: Buffer.from((v as { data: number[] }).data).toString('base64') };
    }
    return v;
  });
}

export function registerDemoCommands(program: Command): void {
  program
    .command('produce-demo')
    .description('publish generated card transactions (Avro via the registry) to the topology\'s input topic')
    .option(TOPOLOGY_FLAGS, TOPOLOGY_HELP, DEFAULT_TOPOLOGY)
    .option('--count <n>', 'number of events', positiveInt, 1000)
    .option('--rate <n>', 'events per second (0 = as fast as possible)', nonNegativeNumber, 200)
    .option('--seed <n>', 'generator seed (default: a fresh one per run)', nonNegativeInt, Date.now() % 1_000_000)
    .action(async (opts: { topology: string; count: number; rate: number; seed: number }, cmd: Command) => {
      const topology = loadTopologyFile(opts.topology);
      const endpoints = resolveEndpoints();
      const res = await produceDemoEvents({
        brokers: endpoints.brokers,
        schemaRegistryUrl: endpoints.schemaRegistryUrl,
        topic: topology.spec.stages[0].input.topic,
        count: opts.count,
        rate: opts.rate,
        seed: opts.seed,
      });
      if (wantsJson(cmd)) process.stdout.write(`${JSON.stringify(res)}\n`);
      else process.stdout.write(`produced ${res.produced} events in ${res.seconds.toFixed(1)} s\n`);
    });

  program
    .command('tail')
    .description('print a topic\'s records as JSON lines, decoded with their registered Avro schemas')
    .argument('<topic>')
    .option('--from-beginning', 'start at the earliest offset', false)
    .option('--max <n>', 'stop after n records', positiveInt)
    .action(async (topic: string, opts: { fromBeginning: boolean; max?: number }) => {
      const endpoints = resolveEndpoints();
      const registry = new SchemaRegistryClient({ url: endpoints.schemaRegistryUrl, auth: registryAuthFromEnv() }).registry;
      const kafka = createKafka({ clientId: 'tributary-tail', brokers: endpoints.brokers });
      const consumer = kafka.consumer({ groupId: `tributary-tail-${process.pid}-${Date.now()}`, maxWaitTimeInMs: 200 });
      const max = opts.max ?? Infinity;
      let seen = 0;
      const stop = async () => {
        await consumer.disconnect();
      };
      onShutdownSignal(stop, 5000);
      await consumer.connect();
      await consumer.subscribe({ topic, fromBeginning: opts.fromBeginning });
      await consumer.run({
        eachMessage: async ({ partition, message }) => {
          if (seen >= max) return;
          let value: unknown;
          try {
            value = message.value ? await registry.decode(message.value) : null;
          } catch (err) {
            value = { undecodable: (err as Error).message, base64: message.value?.toString('base64') };
          }
          process.stdout.write(`${toJson({ partition, offset: Number(message.offset), key: message.key?.toString() ?? null, value })}\n`);
          if (++seen >= max) setImmediate(() => void stop().then(() => process.exit(0)));
        },
      });
    });

  program
    .command('demo')
    .description('end to end on the local stack: start it, run the topology, produce events, print a summary, stop what it started')
    .option(TOPOLOGY_FLAGS, TOPOLOGY_HELP, DEFAULT_TOPOLOGY)
    .option('--count <n>', 'number of events', positiveInt, 1000)
    .option('--rate <n>', 'events per second (0 = as fast as possible)', nonNegativeNumber, 250)
    .option('--malformed <n>', 'malformed events to mix in (0-5), to show the dead-letter path', nonNegativeInt, 5)
    .option('--seed <n>', 'generator seed (default: a fresh one per run, so keys never collide with earlier runs)', nonNegativeInt, Date.now() % 1_000_000_000)
    .action(async (opts: { topology: string; count: number; rate: number; malformed: number; seed: number }, cmd: Command) => {
      if (opts.malformed > 5) throw new UsageError(`--malformed: expected 0-5 (one of each kind), got ${opts.malformed}`);
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
        });
        process.stdout.write(`${wantsJson(cmd) ? JSON.stringify(summary, null, 2) : formatSummary(summary)}\n`);
        if (summary.predictions + summary.deadLettered < summary.produced + summary.malformedInjected) process.exitCode = 1;
      } finally {
        await stack.stop();
      }
    });
}
