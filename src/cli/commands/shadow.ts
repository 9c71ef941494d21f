import * as path from 'node:path';
import type { Command } from 'commander';
import { createKafka } from '../../kafka/client';
import { SchemaRegistryClient, registryAuthFromEnv } from '../../kafka/schema-registry';
import { formatReportSummary, writeShadowReport } from '../../shadow/write-report';
import { resolveEndpoints } from '../../util/endpoints';
import { repoRoot } from '../../util/paths';
import { nonNegativeInt, positiveInt, unitInterval, UsageError, wantsJson } from '../options';

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
  segmentBy: string;
  from?: string;
  to?: string;
  threshold?: number;
  route?: string;
  unlabelledNegative?: boolean;
  bootstrap: number;
  out?: string;
  timeout: number;
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
    .option('--events <topic>', 'input event topic (schema transaction), joined by lineage for per-segment breakdowns')
    .option('--segment-by <fields>', 'comma-separated event fields to break down by', 'country,merchantCategory')
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
      const endpoints = resolveEndpoints();
      const out = path.resolve(opts.out ?? path.join(repoRoot(), '.tributary', 'reports', `shadow-${new Date().toISOString().replace(/[:.]/g, '-')}`));
      const written = await writeShadowReport({
        kafka: createKafka({ clientId: 'tributary-report', brokers: endpoints.brokers }),
        registry: new SchemaRegistryClient({ url: endpoints.schemaRegistryUrl, auth: registryAuthFromEnv() }),
        live: opts.live,
        shadow: opts.shadow,
        feedback: opts.feedback,
        events: opts.events,
        segmentBy: opts.segmentBy.split(',').map((s) => s.trim()).filter(Boolean),
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
