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
import { UsageError } from '../options';
import { recordRun } from '../../monitoring/run-state';
import { resolveEndpoints } from '../../stack/endpoints';
import { repoRoot } from '../../stack/paths';
import { createLogger } from '../../util/logger';
import { chosenTopology, loadTopologyFile, POSITIONAL_TOPOLOGY_HELP, TOPOLOGY_FLAGS, TOPOLOGY_HELP } from '../topology-file';
import { port, positiveInt, wantsJson } from '../options';
import { startMonitoringServer } from '../monitoring-port';

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
    .argument('[topology]', POSITIONAL_TOPOLOGY_HELP)
    .option(TOPOLOGY_FLAGS, TOPOLOGY_HELP)
    .option('--stage <name...>', 'run only these stages (one stage per process deployments)')
    .option('--split', 'run each stage as its own consumer group (no fusing); the intermediate topics are the hand-off')
    .option('--shutdown-timeout <ms>', 'graceful shutdown bound', positiveInt, 30000)
    .option('--metrics-port <port>', '/metrics, /healthz, /readyz port (0 = any free port; env TRIBUTARY_METRICS_PORT)', port, port(process.env.TRIBUTARY_METRICS_PORT ?? '9400'))
    .option('--metrics-host <host>', 'address the monitoring server binds', process.env.TRIBUTARY_METRICS_HOST ?? '127.0.0.1')
    .action(async (file: string | undefined, opts: { topology?: string; stage?: string[]; split?: boolean; shutdownTimeout: number; metricsPort: number; metricsHost: string }) => {
      const topology = loadTopologyFile(chosenTopology(file, opts.topology));
      const unknown = (opts.stage ?? []).filter((name) => !topology.spec.stages.some((s) => s.name === name));
      if (unknown.length) throw new UsageError(`--stage: no stage ${unknown.map((n) => `'${n}'`).join(', ')} in ${topology.file} (stages: ${topology.spec.stages.map((s) => s.name).join(', ')})`);
      const metrics = new StageMetrics(new Registry(), true);
      let pipeline: Pipeline | undefined;
      const monitoring = new MonitoringServer({
        registry: metrics.registry,
        port: opts.metricsPort,
        host: opts.metricsHost,
        readiness: () => pipeline?.readiness() ?? { ready: false, checks: { pipeline: 'starting' } },
      });
      const { url } = await startMonitoringServer(monitoring, { port: opts.metricsPort, host: opts.metricsHost, flag: '--metrics-port', env: 'TRIBUTARY_METRICS_PORT' });
      pipeline = await Pipeline.start({ topology, endpoints: resolveEndpoints(), stages: opts.stage, metrics, fuse: !opts.split });
      const running = pipeline;
      // `tributary status` finds this process's /metrics here.
      const unrecord = recordRun({ kind: 'run', topology: topology.spec.name, stages: opts.stage ?? topology.spec.stages.map((s) => s.name), metricsUrl: url });
      onShutdownSignal(async () => {
        unrecord();
        await running.stop();
        await monitoring.stop();
      }, opts.shutdownTimeout);
    });

  program
    .command('validate')
    .description('load and validate a topology file (structure, processor configs, topics, schemas, model cards)')
    .argument('[topology]', POSITIONAL_TOPOLOGY_HELP)
    .option(TOPOLOGY_FLAGS, TOPOLOGY_HELP)
    .action((file: string | undefined, opts: { topology?: string }, cmd: Command) => {
      const t = loadTopologyFile(chosenTopology(file, opts.topology));
      if (wantsJson(cmd)) process.stdout.write(`${JSON.stringify({ file: t.file, ok: true, stages: t.spec.stages.length, topics: t.spec.topics.length })}\n`);
      else process.stdout.write(`${t.file}: ok (${t.spec.stages.length} stages, ${t.spec.topics.length} topics)\n`);
    });

  const topics = program.command('topics').description('manage a topology\'s topics');
  topics
    .command('create')
    .description('create the topology\'s topics and register their value schemas (idempotent)')
    .argument('[topology]', POSITIONAL_TOPOLOGY_HELP)
    .option(TOPOLOGY_FLAGS, TOPOLOGY_HELP)
    .action(async (file: string | undefined, opts: { topology?: string }, cmd: Command) => {
      // With the internal repartition topics the engine would create on start.
      const topology = effectiveTopology(loadTopologyFile(chosenTopology(file, opts.topology))).topology;
      const endpoints = resolveEndpoints();
      const kafka = createKafka({ clientId: 'tributary-cli', brokers: endpoints.brokers });
      await provisionTopology(topology, kafka, new SchemaRegistryClient({ url: endpoints.schemaRegistryUrl, auth: registryAuthFromEnv() }));
      if (wantsJson(cmd)) process.stdout.write(`${JSON.stringify({ topics: topology.spec.topics.map((t) => t.name) })}\n`);
      else process.stdout.write(`topics ready: ${topology.spec.topics.map((t) => t.name).join(', ')}\n`);
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
