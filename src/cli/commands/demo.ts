import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Command } from 'commander';
import { createKafka } from '../../kafka/client';
import { SchemaRegistryClient, registryAuthFromEnv } from '../../kafka/schema-registry';
import { resolveEndpoints } from '../../util/endpoints';
import { positiveInt } from '../options';
import { onShutdownSignal } from './pipeline';
import { repoRoot } from '../../util/paths';
import { exitWhenFlushed } from '../graceful-exit';

/** JSON-friendly rendering of decoded Avro: bytes as base64, Avro records as plain objects. */
function toJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => {
    if (v && typeof v === 'object' && (v as { type?: string }).type === 'Buffer' && Array.isArray((v as { data?: unknown }).data)) {
      return { base64: Buffer.from((v as { data: number[] }).data).toString('base64') };
    }
    return v;
  });
}

/** The fraud example's runner, built from examples/fraud/cli.ts by `npm run build`. */
export const FRAUD_EXAMPLE_RUNNER = 'dist-examples/examples/fraud/cli.js';

/**
 * `demo` and `produce-demo` belong to the fraud example (examples/fraud), not the engine: they run
 * its compiled runner in a child process with this invocation's arguments (global options
 * included), so the engine has no import of the example and builds and tests without the folder.
 */
function delegateToFraudExample(): void {
  const root = repoRoot();
  const runner = path.join(root, FRAUD_EXAMPLE_RUNNER);
  if (!fs.existsSync(runner)) {
    const why = fs.existsSync(path.join(root, 'examples/fraud'))
      ? 'the fraud example is not built: run `npm run build` (it compiles examples/fraud too)'
      : 'this checkout has no examples/fraud folder (the demo and its generator live there)';
    process.stderr.write(`error: ${why}\n`);
    process.exit(1);
  }
  const child = spawn(process.execPath, [runner, ...process.argv.slice(2)], { stdio: 'inherit' });
  const forward = (signal: NodeJS.Signals) => () => child.kill(signal);
  process.on('SIGINT', forward('SIGINT'));
  process.on('SIGTERM', forward('SIGTERM'));
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
}

export function registerDemoCommands(program: Command): void {
  for (const [name, description] of [
    ['produce-demo', 'publish generated card transactions (Avro via the registry) to the topology\'s input topic (the fraud example\'s generator; --help for options)'],
    ['demo', 'end to end on the local stack: start it, run the fraud topology, produce events, print a summary, stop what it started (the fraud example; --help for options)'],
  ] as const) {
    program
      .command(name)
      .description(description)
      .helpOption(false)
      .allowUnknownOption()
      .allowExcessArguments()
      .action(() => delegateToFraudExample());
  }

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
        setImmediate(() => void stop().then(() => exitWhenFlushed(0)));
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
          exitWhenFlushed(0);
          return;
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

}
