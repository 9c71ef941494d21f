import { ShadowAgreementConsumer } from '../../monitoring/shadow-agreement';
import { Registry } from 'prom-client';
import { createKafka } from '../../kafka/client';
import { SchemaRegistryClient, registryAuthFromEnv } from '../../kafka/schema-registry';
import { DRIFT_DEFAULTS, type DriftConfig } from '../../monitoring/drift-monitor';
import type { Correction } from '../../monitoring/drift-stats';
import type { Command } from 'commander';
import { driftServiceFor, type DriftService } from '../../monitoring/drift-service';
import { MonitoringServer } from '../../monitoring/http-server';
import { StageMetrics } from '../../monitoring/metrics';
import { listRuns, recordRun } from '../../monitoring/run-state';
import { parseExposition, renderStatus, summarize, type ProcessStatus, type Sample } from '../../monitoring/status-view';
import { resolveEndpoints } from '../../util/endpoints';
import { UsageError } from '../options';
import { chosenTopology, loadTopologyFile, POSITIONAL_TOPOLOGY_HELP, TOPOLOGY_FLAGS, TOPOLOGY_HELP } from '../topology-file';
import { oneOf, port, positiveInt, positiveNumber, unitInterval, wantsJson } from '../options';
import { startMonitoringServer } from '../monitoring-port';
import { onShutdownSignal } from './pipeline';

async function scrape(url: string): Promise<Sample[]> {
  const res = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5000) });
  if (!res.ok) throw new Error(`/metrics answered ${res.status}`);
  return parseExposition(await res.text());
}

async function readiness(url: string): Promise<boolean | undefined> {
  try {
    return (await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(5000) })).status === 200;
  } catch {
    return undefined;
  }
}

/** Status of the given /metrics base URLs: two scrapes `intervalMs` apart. */
export async function collectStatus(urls: string[], intervalMs: number): Promise<ProcessStatus[]> {
  const first = await Promise.all(urls.map((u) => scrape(u).catch((err: Error) => err)));
  await new Promise((r) => setTimeout(r, intervalMs));
  return Promise.all(
    urls.map(async (url, i) => {
      const a = first[i];
      try {
        const b = await scrape(url);
        return summarize(url, a instanceof Error ? b : a, b, intervalMs / 1000, await readiness(url));
      } catch (err) {
        return { url, error: (err as Error).message, stages: [], models: [], drift: [] };
      }
    }),
  );
}

export function registerStatusCommands(program: Command): void {
  program
    .command('status')
    .description('terminal summary of running topologies: rates, lag, p99 latencies, model versions, drift state (reads their /metrics)')
    .option('--metrics-url <url...>', 'monitoring servers to read (default: the processes recorded under $TRIBUTARY_HOME/runs)')
    .option('--interval <ms>', 'time between the two scrapes rates are computed from', positiveInt, 2000)
    .action(async (opts: { metricsUrl?: string[]; interval: number }, cmd: Command) => {
      for (const u of opts.metricsUrl ?? []) {
        if (!/^https?:\/\/[^/]+/.test(u)) throw new UsageError(`--metrics-url: expected http://HOST:PORT, got '${u}'`);
      }
      const urls = opts.metricsUrl ?? [...new Set(listRuns().map((r) => r.metricsUrl))];
      if (urls.length === 0) {
        process.stdout.write('no running tributary processes recorded; pass --metrics-url http://HOST:PORT\n');
        process.exitCode = 1;
        return;
      }
      const status = await collectStatus(urls, opts.interval);
      process.stdout.write(wantsJson(cmd) ? `${JSON.stringify(status, null, 2)}\n` : renderStatus(status));
      if (status.some((s) => s.error)) process.exitCode = 1;
    });

  program
    .command('drift')
    .description('run the drift monitor of a topology\'s scoring stage: feature and score windows vs the model card\'s training baseline; alerts to a monitoring topic')
    .argument('[topology]', POSITIONAL_TOPOLOGY_HELP)
    .option(TOPOLOGY_FLAGS, TOPOLOGY_HELP)
    .option('--stage <name>', 'the onnx_inference stage to monitor (needed when there are several)')
    .option('--alert-topic <topic>', 'DriftAlert topic (default: the prediction topic with .predictions -> .monitoring)')
    .option('--window-events <n>', 'tumbling window size in events', positiveInt, DRIFT_DEFAULTS.windowEvents)
    .option('--window-ms <ms>', 'or window duration (closes with at least --min-events)', positiveInt, DRIFT_DEFAULTS.windowMs)
    .option('--min-events <n>', 'smallest window evaluated', positiveInt, DRIFT_DEFAULTS.minEvents)
    .option('--psi-warn <x>', 'PSI warn threshold', positiveNumber, DRIFT_DEFAULTS.psiWarn)
    .option('--psi-alert <x>', 'PSI alert threshold', positiveNumber, DRIFT_DEFAULTS.psiAlert)
    .option('--ks-warn <x>', 'KS warn threshold (0-1)', unitInterval, DRIFT_DEFAULTS.ksWarn)
    .option('--ks-alert <x>', 'KS alert threshold (0-1)', unitInterval, DRIFT_DEFAULTS.ksAlert)
    .option('--alpha <p>', 'significance level after the correction (0-1)', unitInterval, DRIFT_DEFAULTS.alpha)
    .option('--correction <c>', 'benjamini-hochberg | bonferroni | none', oneOf<Correction>('benjamini-hochberg', 'bonferroni', 'none'), DRIFT_DEFAULTS.correction)
    .option('--from-beginning', 'read the topics from the beginning when the group has no offsets')
    .option('--emit-all', 'publish every closed window, OK ones included')
    .option('--feedback-topic <topic>', 'labels arriving later (schema feedback, keyed by event key): rolling precision, recall, AUC, corrected share')
    .option('--shadow-topic <topic...>', 'shadow logs to join with the live predictions: tributary_shadow_agreement_ratio')
    .option('--metrics-port <port>', '/metrics, /healthz, /readyz port (0 = any free port; env TRIBUTARY_DRIFT_METRICS_PORT)', port, port(process.env.TRIBUTARY_DRIFT_METRICS_PORT ?? '9401'))
    .option('--metrics-host <host>', 'address the monitoring server binds', process.env.TRIBUTARY_METRICS_HOST ?? '127.0.0.1')
    .action(async (file: string | undefined, o: Record<string, string | number | boolean | undefined>) => {
      const topology = loadTopologyFile(chosenTopology(file, o.topology as string | undefined));
      const endpoints = resolveEndpoints();
      if ((o.psiWarn as number) > (o.psiAlert as number)) throw new UsageError(`--psi-warn (${o.psiWarn}) must not exceed --psi-alert (${o.psiAlert})`);
      if ((o.ksWarn as number) > (o.ksAlert as number)) throw new UsageError(`--ks-warn (${o.ksWarn}) must not exceed --ks-alert (${o.ksAlert})`);
      const config: DriftConfig = {
        windowEvents: o.windowEvents as number,
        windowMs: o.windowMs as number,
        minEvents: o.minEvents as number,
        psiWarn: o.psiWarn as number,
        psiAlert: o.psiAlert as number,
        ksWarn: o.ksWarn as number,
        ksAlert: o.ksAlert as number,
        alpha: o.alpha as number,
        correction: o.correction as Correction,
      };
      const metrics = new StageMetrics(new Registry(), true);
      let service: DriftService | undefined;
      const server = new MonitoringServer({
        registry: metrics.registry,
        port: o.metricsPort as number,
        host: o.metricsHost as string,
        readiness: () => {
          const h = service?.health();
          return { ready: !!h?.ready, checks: { stages: h ? [h] : [] } };
        },
      });
      const { url } = await startMonitoringServer(server, { port: o.metricsPort as number, host: o.metricsHost as string, flag: '--metrics-port', env: 'TRIBUTARY_DRIFT_METRICS_PORT' });
      service = driftServiceFor(topology, {
        kafka: createKafka({ clientId: `tributary-drift-${topology.spec.name}`, brokers: topology.spec.kafka?.brokers ?? endpoints.brokers }),
        registry: new SchemaRegistryClient({ url: endpoints.schemaRegistryUrl, auth: registryAuthFromEnv() }),
        metricsRegistry: metrics.registry,
        engineMetrics: metrics,
        config,
        stage: o.stage as string | undefined,
        alertTopic: o.alertTopic as string | undefined,
        fromBeginning: !!o.fromBeginning,
        emitAll: !!o.emitAll,
        feedbackTopic: o.feedbackTopic as string | undefined,
      });
      await service.start();
      const kafkaForShadows = createKafka({ clientId: `tributary-shadow-agreement-${topology.spec.name}`, brokers: topology.spec.kafka?.brokers ?? endpoints.brokers });
      const shadows = ((o.shadowTopic as unknown as string[] | undefined) ?? []).map(
        (shadowTopic) =>
          new ShadowAgreementConsumer({
            kafka: kafkaForShadows,
            registry: new SchemaRegistryClient({ url: endpoints.schemaRegistryUrl, auth: registryAuthFromEnv() }),
            metricsRegistry: metrics.registry,
            engineMetrics: metrics,
            predictionsTopic: service!.predictionsTopic,
            shadowTopic,
            groupId: `${topology.spec.name}.shadow-agreement.${shadowTopic}`,
          }),
      );
      for (const s of shadows) await s.start();
      const unrecord = recordRun({ kind: 'drift', topology: topology.spec.name, stages: ['drift'], metricsUrl: url });
      const running = service;
      onShutdownSignal(async () => {
        await Promise.all(shadows.map((s) => s.stop()));
        unrecord();
        await running.stop();
        await server.stop();
      });
    });
}
