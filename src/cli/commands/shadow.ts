import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Command } from 'commander';
import type { Transaction } from '../../client/generated/avro-types';
import { createKafka } from '../../kafka/client';
import { SchemaRegistryClient, registryAuthFromEnv } from '../../kafka/schema-registry';
import { renderHtml } from '../../shadow/html';
import { readTopicRange } from '../../shadow/log-reader';
import { buildReport, lineageKey, reportJson } from '../../shadow/report';
import { resolveEndpoints } from '../../stack/endpoints';
import { repoRoot } from '../../stack/paths';
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
      const kafka = createKafka({ clientId: 'tributary-report', brokers: endpoints.brokers });
      const registry = new SchemaRegistryClient({ url: endpoints.schemaRegistryUrl, auth: registryAuthFromEnv() });
      const timeoutMs = opts.timeout;
      // Logs are written after their events were ingested: reading from `from` by log time loses nothing.
      const read = { fromMs: from, timeoutMs };
      const [live, shadowLog, feedback, events] = await Promise.all([
        readTopicRange(kafka, registry, opts.live, 'prediction', read),
        opts.shadow ? readTopicRange(kafka, registry, opts.shadow, 'shadow-prediction', read) : Promise.resolve([]),
        opts.feedback ? readTopicRange(kafka, registry, opts.feedback, 'feedback', { timeoutMs }) : Promise.resolve([]),
        opts.events ? readTopicRange(kafka, registry, opts.events, 'transaction', read) : Promise.resolve([]),
      ]);
      const segmentBy = opts.segmentBy.split(',').map((s) => s.trim()).filter(Boolean);
      const segments = opts.events
        ? new Map(events.map((e) => [lineageKey(e), Object.fromEntries(segmentBy.map((f) => [f, String((e.value as Transaction & Record<string, unknown>)[f] ?? '(none)')]))]))
        : undefined;
      const report = buildReport({
        live: live.map((r) => r.value),
        shadow: opts.shadow ? shadowLog.map((r) => r.value) : undefined,
        feedback: feedback.map((r) => r.value),
        segments,
        segmentBy: opts.events ? segmentBy : undefined,
        from,
        to,
        sources: Object.fromEntries(Object.entries({ live: opts.live, shadow: opts.shadow, feedback: opts.feedback, events: opts.events }).filter(([, v]) => v)) as Record<string, string>,
        options: { threshold: opts.threshold, unlabelledAsNegative: opts.unlabelledNegative, bootstrapIterations: opts.bootstrap },
      });
      const out = path.resolve(opts.out ?? path.join(repoRoot(), '.tributary', 'reports', `shadow-${new Date().toISOString().replace(/[:.]/g, '-')}`));
      fs.mkdirSync(out, { recursive: true });
      fs.writeFileSync(path.join(out, 'report.json'), reportJson(report));
      fs.writeFileSync(path.join(out, 'report.html'), renderHtml(report));
      const c = report.counts;
      if (wantsJson(cmd)) {
        process.stdout.write(`${JSON.stringify({ counts: c, agreement: report.agreement.rate, psi: report.divergence.psi, shadowOutcomes: report.shadowOutcomes, json: path.join(out, 'report.json'), html: path.join(out, 'report.html') })}\n`);
        return;
      }
      process.stdout.write(
        `${report.models.shadow.join(', ') || '(no shadow)'} vs ${report.models.live.join(', ')}: ${c.matched} matched, ${c.unmatchedLive} live / ${c.unmatchedShadow} shadow unmatched; ` +
          `agreement ${(report.agreement.rate * 100).toFixed(2)}%, PSI ${report.divergence.psi.toFixed(4)}, shadow errors ${report.shadowOutcomes.error}, timeouts ${report.shadowOutcomes.timeout}\n` +
          `wrote ${path.join(out, 'report.json')} and ${path.join(out, 'report.html')}\n`,
      );
    });
}
