import * as path from 'node:path';
import type { Command } from 'commander';
import type { Type } from 'avsc';
import { SchemaCatalog, topologySchemas } from '../../kafka/avro-schemas';
import { createKafka } from '../../kafka/client';
import { SchemaRegistryClient, registryAuthFromEnv } from '../../kafka/schema-registry';
import { formatReportSummary, writeShadowReport } from '../../shadow/write-report';
import { resolveEndpoints } from '../../util/endpoints';
import { repoRoot } from '../../util/paths';
import { nonNegativeInt, positiveInt, unitInterval, UsageError, wantsJson } from '../options';
import { loadTopologyFile } from '../topology-file';

/** ISO time or epoch milliseconds. */
export function parseTime(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const ms = /^\d+$/.test(value) ? Number(value) : Date.parse(value);
  if (!Number.isFinite(ms)) throw new UsageError(`${flag}: '${value}' is neither an ISO time nor epoch milliseconds`);
  return ms;
}

interface ReportOpts {
  live: string;
  shadow?: string;
  feedback?: string;
  events?: string;
  eventsSchema?: string;
  topology?: string;
  segmentBy?: string;
  from?: string;
  to?: string;
  threshold?: number;
  route?: string;
  unlabelledNegative?: boolean;
  bootstrap: number;
  out?: string;
  timeout: number;
}

/**
 * The Avro type of the `--events` topic: `--events-schema FILE.avsc`, or a schema name (or, without
 * one, the schema the `--topology` declares for that topic) resolved in the topology's schemas. No
 * domain is assumed: without either flag the events cannot be decoded, and that is a usage error.
 */
export function eventsSchemaOf(opts: Pick<ReportOpts, 'events' | 'eventsSchema' | 'topology'>): Type | undefined {
  if (!opts.events) {
    if (opts.eventsSchema) throw new UsageError('--events-schema: only with --events');
    return undefined;
  }
  if (opts.eventsSchema?.endsWith('.avsc')) {
    const file = path.resolve(opts.eventsSchema);
    return new SchemaCatalog(file, []).get(path.basename(file, '.avsc')).type;
  }
  if (!opts.topology) throw new UsageError(`--events: name the events' schema with --events-schema <file.avsc>, or --topology <file> declaring topic '${opts.events}' (or with --events-schema <name> in its schemas)`);
  const topology = loadTopologyFile(opts.topology);
  const name = opts.eventsSchema ?? topology.spec.topics.find((t) => t.name === opts.events)?.schema;
  if (!name) throw new UsageError(`--events: topic '${opts.events}' is not declared in ${opts.topology}; name its schema with --events-schema`);
  const catalog = topologySchemas(topology);
  if (!catalog.has(name)) throw new UsageError(`--events-schema: no schema '${name}' in ${catalog.searched.join(', ')}`);
  return catalog.get(name).type;
}

/** `tributary shadow report`: offline comparison of a live prediction log with a shadow log. */
export function registerShadowCommands(program: Command): void {
  const shadow = program.command('shadow').description('shadow models: offline comparison with the live model');
  shadow
    .command('report')
    .description('read the live and shadow prediction logs (and labels, and input events for segments) over a bounded range; write report.json and a self-contained report.html')
    .requiredOption('--live <topic>', 'live prediction topic (schema prediction)')
    .option('--shadow <topic>', 'shadow log topic (schema shadow-prediction)')
    .option('--feedback <topic>', 'labels arriving later (schema feedback), joined by key')
    .option('--events <topic>', 'input event topic, joined by lineage for per-segment breakdowns (with --segment-by, and --events-schema or --topology)')
    .option('--events-schema <schema>', 'Avro schema of the --events topic: an .avsc file, or a schema name in the --topology\'s schemas (default: the schema the topology declares for that topic)')
    .option('--topology <file>', 'topology the --events topic belongs to (its schemas resolve --events-schema)')
    .option('--segment-by <fields>', 'comma-separated top-level event fields to break down by (required with --events)')
    .option('--from <time>', 'only events ingested at or after this time (ISO or epoch ms)')
    .option('--to <time>', 'only events ingested before this time (ISO or epoch ms)')
    .option('--route <route>', 'compare the shadow only with live predictions of this route, e.g. canary:stable (the A/B table keeps every route)')
    .option('--threshold <x>', 'decision threshold 0-1 for agreement and metrics (default: each record\'s own)', unitInterval)
    .option('--unlabelled-negative', 'events without feedback count as negatives (feedback carries only confirmed positives)')
    .option('--bootstrap <n>', 'bootstrap resamples for confidence intervals', nonNegativeInt, 300)
    .option('--out <dir>', 'output directory (default .tributary/reports/shadow-<time>)')
    .option('--timeout <ms>', 'bound on reading each topic', positiveInt, 120000)
    .action(async (opts: ReportOpts, cmd: Command) => {
      const from = parseTime(opts.from, '--from');
      const to = parseTime(opts.to, '--to');
      if (from !== undefined && to !== undefined && from >= to) throw new UsageError(`--from must be before --to`);
      const eventsSchema = eventsSchemaOf(opts);
      const segmentBy = (opts.segmentBy ?? '').split(',').map((s) => s.trim()).filter(Boolean);
      if (eventsSchema && segmentBy.length === 0) throw new UsageError('--segment-by: name the event fields to break down by (required with --events)');
      const endpoints = resolveEndpoints();
      const out = path.resolve(opts.out ?? path.join(repoRoot(), '.tributary', 'reports', `shadow-${new Date().toISOString().replace(/[:.]/g, '-')}`));
      const written = await writeShadowReport({
        kafka: createKafka({ clientId: 'tributary-report', brokers: endpoints.brokers }),
        registry: new SchemaRegistryClient({ url: endpoints.schemaRegistryUrl, auth: registryAuthFromEnv() }),
        live: opts.live,
        shadow: opts.shadow,
        feedback: opts.feedback,
        events: opts.events && eventsSchema ? { topic: opts.events, schema: eventsSchema } : undefined,
        segmentBy,
        from,
        to,
        timeoutMs: opts.timeout,
        outDir: out,
        options: { compareRoute: opts.route, threshold: opts.threshold, unlabelledAsNegative: opts.unlabelledNegative, bootstrapIterations: opts.bootstrap },
      });
      const r = written.report;
      if (wantsJson(cmd)) process.stdout.write(`${JSON.stringify({ counts: r.counts, agreement: r.agreement.rate, psi: r.divergence.psi, shadowOutcomes: r.shadowOutcomes, json: written.json, html: written.html })}\n`);
      else process.stdout.write(`${formatReportSummary(r)}\nwrote ${written.json} and ${written.html}\n`);
    });
}
