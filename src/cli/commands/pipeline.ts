import { definitionsFileSchema } from '../../features/declarative/spec';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Option, type Command } from 'commander';
import { createKafka } from '../../kafka/client';
import { SchemaRegistryClient, registryAuthFromEnv } from '../../kafka/schema-registry';
import { editorSchema } from '../../topology/schema';
import { builtinProcessors } from '../../stages/builtin';
import { TOPOLOGY_SECTIONS } from '../../stages/load-topology';
import { Pipeline, effectiveTopology, provisionTopology } from '../../stages/pipeline';
import { exactlyOnceSafe } from '../../stages/processor';
import type { LoadedTopology } from '../../topology/spec';
import { Registry } from 'prom-client';
import { StageMetrics } from '../../monitoring/metrics';
import { MonitoringServer } from '../../monitoring/http-server';
import { UsageError } from '../options';
import { recordRun } from '../../monitoring/run-state';
import { resolveEndpoints } from '../../util/endpoints';
import { repoRoot, tributaryHome } from '../../util/paths';
import { claimHostInstance, type HostInstanceClaim } from '../../engine/host-instance';
import { createLogger } from '../../util/logger';
import { chosenTopology, loadTopologyFile, POSITIONAL_TOPOLOGY_HELP, TOPOLOGY_FLAGS, TOPOLOGY_HELP } from '../topology-file';
import { instanceId, port, positiveInt, wantsJson } from '../options';
import { instanceIdProblem } from '../../engine/instance-id';
import { startMonitoringServer } from '../monitoring-port';
import { exposeMetricsToSupervisor, groupWorkerIndex, isGroupWorker, serveGroupWorker, superviseProcessGroup, workerInstanceId } from '../process-group';
import { exitWhenFlushed, stopThenExit } from '../graceful-exit';

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
    stopThenExit(stop, timeoutMs, log);
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
}

/**
 * `tributary run`'s instance id when none is given: this host's lowest free slot for the topology
 * (src/engine/host-instance.ts). Where $TRIBUTARY_HOME is not writable the id is random per start
 * (said at info: a crash then leaves its partitions waiting for the transaction timeout).
 */
function claimDefaultInstance(topologyName: string): HostInstanceClaim | undefined {
  const dir = path.join(tributaryHome(), 'instances');
  try {
    const claim = claimHostInstance({ dir, scope: topologyName });
    log.info({ instanceId: claim.id, slotFile: claim.file }, 'instance id from this host\'s free slot');
    return claim;
  } catch (err) {
    log.info({ dir, reason: (err as Error).message }, 'no host slot for the instance id; a random one is used (give --instance-id for fast recovery after a crash)');
    return undefined;
  }
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
    .addOption(
      new Option('--instance-id <id>', 'this process\'s stable name in the transactional ids of its exactly-once stages (`transactions: shared`, the default) ([A-Za-z0-9._-], at most 64). Default: <host>-<slot>, the lowest slot no live process on this host holds for the topology ($TRIBUTARY_HOME/instances), so a restart on the same host gets the same id and aborts its predecessor\'s open transaction at once instead of waiting for the transaction timeout. Must be unique among live processes (e.g. the pod name of a StatefulSet)')
        .env('TRIBUTARY_INSTANCE_ID')
        .argParser(instanceId),
    )
    .option('--processes <n>', 'run the topology in N processes of this machine, members of the same consumer groups (one JavaScript thread each: N cores), under one supervisor that serves their /metrics summed, restarts a worker that dies and stops them all gracefully on SIGTERM', positiveInt, 1)
    .action(async (file: string | undefined, opts: { topology?: string; stage?: string[]; split?: boolean; shutdownTimeout: number; metricsPort: number; metricsHost: string; instanceId?: string; processes: number }) => {
      const topology = loadTopologyFile(chosenTopology(file, opts.topology));
      const unknown = (opts.stage ?? []).filter((name) => !topology.spec.stages.some((s) => s.name === name));
      if (unknown.length) throw new UsageError(`--stage: no stage ${unknown.map((n) => `'${n}'`).join(', ')} in ${topology.file} (stages: ${topology.spec.stages.map((s) => s.name).join(', ')})`);
      const stages = opts.stage ?? topology.spec.stages.map((s) => s.name);
      if (opts.processes > 1 && opts.instanceId !== undefined) {
        // Each worker is ID.<index>: checked here, once, rather than by a worker that would fail to start.
        const problem = instanceIdProblem(workerInstanceId(opts.instanceId, opts.processes - 1));
        if (problem) throw new UsageError(`--instance-id with --processes ${opts.processes}: the workers are named ${workerInstanceId(opts.instanceId, 0)} ... ${workerInstanceId(opts.instanceId, opts.processes - 1)}, and ${problem}`);
      }
      if (opts.processes > 1 && !isGroupWorker()) {
        // The supervisor: validated the topology above (bad config fails here, once), runs no stage itself.
        const code = await superviseProcessGroup({ processes: opts.processes, topologyName: topology.spec.name, stages, metricsPort: opts.metricsPort, metricsHost: opts.metricsHost, shutdownTimeoutMs: opts.shutdownTimeout });
        exitWhenFlushed(code);
        return;
      }
      const metrics = new StageMetrics(new Registry(), true);
      // A worker of `--processes N` serves no /metrics of its own: the supervisor serves the group's.
      const worker = isGroupWorker();
      let pipeline: Pipeline | undefined;
      let monitoring: MonitoringServer | undefined;
      let record: (() => () => void) | undefined;
      if (worker) exposeMetricsToSupervisor(metrics.registry);
      else {
        monitoring = new MonitoringServer({
          registry: metrics.registry,
          port: opts.metricsPort,
          host: opts.metricsHost,
          readiness: () => pipeline?.readiness() ?? { ready: false, checks: { pipeline: 'starting' } },
        });
        const { url } = await startMonitoringServer(monitoring, { port: opts.metricsPort, host: opts.metricsHost, flag: '--metrics-port', env: 'TRIBUTARY_METRICS_PORT' });
        // `tributary status` finds this process's /metrics here (once the pipeline runs).
        record = () => recordRun({ kind: 'run', topology: topology.spec.name, stages, metricsUrl: url });
      }
      const claim = opts.instanceId === undefined ? claimDefaultInstance(topology.spec.name) : undefined;
      const instance = opts.instanceId === undefined ? claim?.id : worker ? workerInstanceId(opts.instanceId, groupWorkerIndex()) : opts.instanceId;
      // Of a group's workers the first alone moves the split era's groups at stop (they would fence each other).
      pipeline = await Pipeline.start({ topology, endpoints: resolveEndpoints(), stages: opts.stage, metrics, fuse: !opts.split, instanceId: instance, fastForwardOnStop: !worker || groupWorkerIndex() === 0 });
      const running = pipeline;
      const unrecord = record?.();
      const stop = async () => {
        unrecord?.();
        await running.stop();
        await monitoring?.stop();
        claim?.release();
      };
      if (worker) serveGroupWorker(() => running.readiness(), stop, opts.shutdownTimeout);
      else onShutdownSignal(stop, opts.shutdownTimeout);
    });

  program
    .command('validate')
    .description('load and validate a topology file (structure, processor configs, topics, schemas, model cards)')
    .argument('[topology]', POSITIONAL_TOPOLOGY_HELP)
    .option(TOPOLOGY_FLAGS, TOPOLOGY_HELP)
    .action((file: string | undefined, opts: { topology?: string }, cmd: Command) => {
      const t = loadTopologyFile(chosenTopology(file, opts.topology));
      const plugins = pluginReport(t);
      if (wantsJson(cmd)) process.stdout.write(`${JSON.stringify({ file: t.file, ok: true, stages: t.spec.stages.length, topics: t.spec.topics.length, plugins })}\n`);
      else {
        process.stdout.write(`${t.file}: ok (${t.spec.stages.length} stages, ${t.spec.topics.length} topics)\n`);
        for (const line of pluginReportLines(plugins)) process.stdout.write(`${line}\n`);
      }
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
    .option('--write', `write it to topologies/topology.schema.json (and the feature-definitions file schema to topologies/feature-definitions.schema.json)`)
    .action((opts: { write?: boolean }) => {
      const text = `${JSON.stringify(editorSchema(builtinProcessors().all(), TOPOLOGY_SECTIONS), null, 2)}\n`;
      if (opts.write) {
        fs.writeFileSync(path.join(repoRoot(), 'topologies', 'topology.schema.json'), text);
        // The feature-definitions files' structure, for editors (expressions are checked by the loader).
        fs.writeFileSync(path.join(repoRoot(), 'topologies', 'feature-definitions.schema.json'), `${JSON.stringify({ $schema: 'http://json-schema.org/draft-07/schema#', ...definitionsFileSchema }, null, 2)}\n`);
      }
      else process.stdout.write(text);
    });
}

/** What each loaded plugin registered, its declared guarantees, and which stages use it. */
export function pluginReport(t: LoadedTopology) {
  return (t.plugins ?? []).map((p) => ({
    plugin: p.ref,
    file: p.file,
    processors: p.processors.map((proc) => ({
      ...proc,
      exactlyOnce: exactlyOnceSafe(proc),
      stages: t.spec.stages.filter((s) => s.processor === proc.name).map((s) => s.name),
    })),
    // Feature functions run inside the extraction stage: its exactly-once covers them only when deterministic and side-effect free.
    functions: (p.functions ?? []).map((f) => ({ ...f, exactlyOnce: exactlyOnceSafe(f) })),
  }));
}

/** Human lines for `validate`: one per plugin processor, saying whether exactly-once covers it. */
function pluginReportLines(report: ReturnType<typeof pluginReport>): string[] {
  return report.flatMap((p) =>
    p.processors.map((proc) => {
      const used = proc.stages.length > 0 ? `used by ${proc.stages.join(', ')}` : 'not used';
      const guarantees = `${proc.deterministic ? 'deterministic' : 'NOT deterministic'}, ${proc.sideEffects ? 'HAS outside side effects' : 'no outside side effects'}`;
      const delivery = proc.exactlyOnce ? 'exactly-once applies' : 'exactly-once covers only its Kafka outputs: a retried batch may repeat its side effects or produce other outputs';
      return `  plugin ${p.plugin}: processor ${proc.name} (${guarantees}; ${used}): ${delivery}`;
    }).concat(
      p.functions.map((f) => {
        const guarantees = `${f.deterministic ? 'deterministic' : 'NOT deterministic'}, ${f.sideEffects ? 'HAS outside side effects' : 'no outside side effects'}`;
        const twin = f.python ? `Python twin ${f.python}` : 'no Python twin (serving only)';
        const delivery = f.exactlyOnce ? 'exactly-once applies' : 'exactly-once does not cover it: a retried batch calls it again and may compute other values';
        return `  plugin ${p.plugin}: feature function ${f.name} (${guarantees}; ${twin}): ${delivery}`;
      }),
    ),
  );
}
