import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Command } from 'commander';
import { createKafka } from '../../kafka/client';
import { SchemaRegistryClient, registryAuthFromEnv } from '../../kafka/schema-registry';
import { editorSchema } from '../../topology/schema';
import { builtinProcessors } from '../../stages/builtin';
import { Pipeline, effectiveTopology, provisionTopology } from '../../stages/pipeline';
import { Registry } from 'prom-client';
import { StageMetrics } from '../../monitoring/metrics';
import { MonitoringServer } from '../../monitoring/http-server';
import { recordRun } from '../../monitoring/run-state';
import { resolveEndpoints } from '../../stack/endpoints';
import { repoRoot } from '../../stack/paths';
import { createLogger } from '../../util/logger';
import { DEFAULT_TOPOLOGY, loadTopologyFile } from '../topology-file';

const log = createLogger('cli');

/** Stops `stop` on SIGTERM/SIGINT within `timeoutMs`; a second signal exits at once. */
export function onShutdownSignal(stop: () => Promise<void>, timeoutMs = 30000): void {
  let stopping = false;
  const handler = (signal: NodeJS.Signals) => {
    if (stopping) {
      log.warn({ signal }, 'second signal: exiting now');
      process.exit(130);
    }
    stopping = true;
    log.info({ signal, timeoutMs }, 'shutting down gracefully');
    const timer = setTimeout(() => {
      log.error('graceful shutdown timed out; exiting');
      process.exit(1);
    }, timeoutMs);
    timer.unref();
    stop().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, 'error during shutdown');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
}

export function registerPipelineCommands(program: Command): void {
  program
    .command('run')
    .description('run a topology: all stages in this process, or only those named with --stage')
    .argument('[topology]', 'topology file', DEFAULT_TOPOLOGY)
    .option('--stage <name...>', 'run only these stages (one stage per process deployments)')
    .option('--split', 'run each stage as its own consumer group (no fusing); the intermediate topics are the hand-off')
    .option('--shutdown-timeout <ms>', 'graceful shutdown bound', '30000')
    .option('--metrics-port <port>', '/metrics, /healthz, /readyz port (0 = any free port)', process.env.TRIBUTARY_METRICS_PORT ?? '9400')
    .option('--metrics-host <host>', 'address the monitoring server binds', process.env.TRIBUTARY_METRICS_HOST ?? '127.0.0.1')
    .action(async (file: string, opts: { stage?: string[]; split?: boolean; shutdownTimeout: string; metricsPort: string; metricsHost: string }) => {
      const topology = loadTopologyFile(file);
      const metrics = new StageMetrics(new Registry(), true);
      let pipeline: Pipeline | undefined;
      const monitoring = new MonitoringServer({
        registry: metrics.registry,
        port: Number(opts.metricsPort),
        host: opts.metricsHost,
        readiness: () => pipeline?.readiness() ?? { ready: false, checks: { pipeline: 'starting' } },
      });
      const { url } = await monitoring.start();
      pipeline = await Pipeline.start({ topology, endpoints: resolveEndpoints(), stages: opts.stage, metrics, fuse: !opts.split });
      const running = pipeline;
      // `tributary status` finds this process's /metrics here.
      const unrecord = recordRun({ kind: 'run', topology: topology.spec.name, stages: opts.stage ?? topology.spec.stages.map((s) => s.name), metricsUrl: url });
      onShutdownSignal(async () => {
        unrecord();
        await running.stop();
        await monitoring.stop();
      }, Number(opts.shutdownTimeout));
    });

  program
    .command('validate')
    .description('load and validate a topology file (structure, processor configs, topics, schemas, model cards)')
    .argument('[topology]', 'topology file', DEFAULT_TOPOLOGY)
    .action((file: string) => {
      const t = loadTopologyFile(file);
      process.stdout.write(`${t.file}: ok (${t.spec.stages.length} stages, ${t.spec.topics.length} topics)\n`);
    });

  const topics = program.command('topics').description('manage a topology\'s topics');
  topics
    .command('create')
    .description('create the topology\'s topics and register their value schemas (idempotent)')
    .argument('[topology]', 'topology file', DEFAULT_TOPOLOGY)
    .action(async (file: string) => {
      // With the internal repartition topics the engine would create on start.
      const topology = effectiveTopology(loadTopologyFile(file)).topology;
      const endpoints = resolveEndpoints();
      const kafka = createKafka({ clientId: 'tributary-cli', brokers: endpoints.brokers });
      await provisionTopology(topology, kafka, new SchemaRegistryClient({ url: endpoints.schemaRegistryUrl, auth: registryAuthFromEnv() }));
      process.stdout.write(`topics ready: ${topology.spec.topics.map((t) => t.name).join(', ')}\n`);
    });

  program
    .command('topology-schema')
    .description('print the JSON Schema of topology files (with every registered processor\'s config)')
    .option('--write', `write it to topologies/topology.schema.json`)
    .action((opts: { write?: boolean }) => {
      const text = `${JSON.stringify(editorSchema(builtinProcessors()), null, 2)}\n`;
      if (opts.write) fs.writeFileSync(path.join(repoRoot(), 'topologies', 'topology.schema.json'), text);
      else process.stdout.write(text);
    });
}
