import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Kafka } from 'kafkajs';
import type { Type } from 'avsc';
import type { SchemaRegistryClient } from '../kafka/schema-registry';
import { ConfigError } from '../util/errors';
import { renderHtml } from './html';
import { readTopicRange } from './log-reader';
import { buildReport, lineageKey, reportJson, type ReportInput, type ShadowReport } from './report';

export interface WriteReportOptions {
  kafka: Kafka;
  registry: SchemaRegistryClient;
  live: string;
  shadow?: string;
  feedback?: string;
  /**
   * Input events, joined by lineage for per-segment rows: their topic and Avro type (the topology's
   * input schema: topicSchema(topology, topic)); the engine assumes no domain.
   */
  events?: { topic: string; schema: Type };
  /** Event fields to break down by (top-level names of the events' schema); required with `events`. */
  segmentBy: string[];
  from?: number;
  to?: number;
  timeoutMs: number;
  outDir: string;
  options?: ReportInput['options'];
}

export interface WrittenReport {
  report: ShadowReport;
  json: string;
  html: string;
}

/**
 * Reads the logs over the range (by log time from `from`; labels whole), builds the report and
 * writes report.json and report.html into `outDir`. Shared by `tributary shadow report` and the demo.
 */
export async function writeShadowReport(o: WriteReportOptions): Promise<WrittenReport> {
  // Logs are written after their events were ingested: reading from `from` by log time loses nothing.
  const read = { fromMs: o.from, timeoutMs: o.timeoutMs };
  if (o.events) segmentFieldsCheck(o.events.schema, o.segmentBy);
  const [live, shadowLog, feedback, events] = await Promise.all([
    readTopicRange(o.kafka, o.registry, o.live, 'prediction', read),
    o.shadow ? readTopicRange(o.kafka, o.registry, o.shadow, 'shadow-prediction', read) : Promise.resolve([]),
    o.feedback ? readTopicRange(o.kafka, o.registry, o.feedback, 'feedback', { timeoutMs: o.timeoutMs }) : Promise.resolve([]),
    o.events ? readTopicRange<Record<string, unknown>>(o.kafka, o.registry, o.events.topic, o.events.schema, read) : Promise.resolve([]),
  ]);
  const segments = o.events
    ? new Map(events.map((e) => [lineageKey(e), Object.fromEntries(o.segmentBy.map((f) => [f, String(e.value[f] ?? '(none)')]))]))
    : undefined;
  const report = buildReport({
    live: live.map((r) => r.value),
    shadow: o.shadow ? shadowLog.map((r) => r.value) : undefined,
    feedback: feedback.map((r) => r.value),
    segments,
    segmentBy: o.events ? o.segmentBy : undefined,
    from: o.from,
    to: o.to,
    sources: Object.fromEntries(Object.entries({ live: o.live, shadow: o.shadow, feedback: o.feedback, events: o.events?.topic }).filter(([, v]) => v)) as Record<string, string>,
    options: o.options,
  });
  fs.mkdirSync(o.outDir, { recursive: true });
  const json = path.join(o.outDir, 'report.json');
  const html = path.join(o.outDir, 'report.html');
  fs.writeFileSync(json, reportJson(report));
  fs.writeFileSync(html, renderHtml(report));
  return { report, json, html };
}

/** Segment fields must be top-level fields of the events' record schema (else every row would read '(none)'). */
function segmentFieldsCheck(schema: Type, segmentBy: readonly string[]): void {
  if (segmentBy.length === 0) throw new ConfigError('segmentBy', 'name the event fields to break down by when input events are read');
  const fields = new Set(((schema as Type & { fields?: { name: string }[] }).fields ?? []).map((f) => f.name));
  segmentBy.forEach((f, i) => {
    if (!fields.has(f)) throw new ConfigError(`segmentBy[${i}]`, `'${f}' is not a field of the events' schema ${schema.name ?? ''} (fields: ${[...fields].join(', ')})`);
  });
}

/** The report in a few lines for a terminal: counts, agreement, divergence, metrics or why not, verdict. */
export function formatReportSummary(report: ShadowReport): string {
  const c = report.counts;
  const pct = (x: number) => (Number.isFinite(x) ? `${(100 * x).toFixed(2)}%` : '–');
  const lines = [
    `${report.models.shadow.join(', ') || '(no shadow)'} vs ${report.models.live.join(', ')}: ${c.matched} matched, ${c.unmatchedLive} live / ${c.unmatchedShadow} shadow unmatched; ` +
      `agreement ${pct(report.agreement.rate)}, PSI ${Number.isFinite(report.divergence.psi) ? report.divergence.psi.toFixed(4) : '–'}, shadow errors ${report.shadowOutcomes.error}, timeouts ${report.shadowOutcomes.timeout}`,
  ];
  if (report.metrics) {
    const m = report.metrics;
    const row = (k: 'rocAuc' | 'precision' | 'recall') => `${k} ${m.live[k].toFixed(3)} -> ${m.shadow[k].toFixed(3)} [${m.deltas[k].low.toFixed(3)}, ${m.deltas[k].high.toFixed(3)}]`;
    lines.push(`on ${m.n} labelled events (${m.positives} positive), live -> shadow [95% CI of the difference]: ${row('rocAuc')}; ${row('precision')}; ${row('recall')}`);
  }
  for (const n of report.notes) lines.push(n);
  lines.push(`verdict: ${report.verdict.text}`);
  return lines.join('\n');
}
