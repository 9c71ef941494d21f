import * as fs from 'node:fs';
import * as path from 'node:path';
import Ajv from 'ajv';
import { ConfigError, ConfigErrors, TributaryError } from '../util/errors';
import { createLogger, type Logger } from '../util/logger';
import { readJsonl } from '../util/jsonl';
import { readModelCard, type ModelCard } from './model-card';
import { OnnxModel, type OnnxModelOptions } from './onnx-model';

/** A version failed its gate: it must not be served. `report` says why. */
export class ModelGateError extends TributaryError {
  constructor(readonly report: GateReport) {
    super(`model ${report.model}@${report.version} failed its gate: ${report.checks.filter((c) => c.status === 'fail').map((c) => `${c.name}: ${c.detail}`).join('; ')}`);
  }
}

import { classificationMetrics, rocAuc, type MetricName } from '../util/stats';

/** Metrics a gate can bound (defined with the shared statistics in src/util/stats.ts). */
export { classificationMetrics, rocAuc, type MetricName };

/** Bounds on one metric: absolute (min/max) and/or change against the live version. */
export interface MetricBound {
  metric: MetricName;
  min?: number;
  max?: number;
  /**
   * Against the live version's value on the same set: the change (candidate - live, sign-flipped
   * when lower is better) must be >= `absolute` and the relative change (change / |live|) >= `relative`.
   * Negative values allow a bounded regression. Skipped when there is no live version.
   */
  change?: { direction: 'higher_is_better' | 'lower_is_better'; absolute?: number; relative?: number };
}

/** gate.json beside the card. */
export interface GateSpec {
  golden?: { path: string; tolerance: number };
  confidence?: {
    path: string;
    /** Decision threshold for precision/recall/f1/accuracy; default the card's. */
    threshold?: number;
    metrics: MetricBound[];
    /** Per-segment bounds, e.g. by merchantCategory; segments with fewer than minRows (or no positive) are skipped. */
    segments?: { by: string; minRows?: number; minPositives?: number; metrics: MetricBound[] }[];
  };
  latency?: { p99Ms: number; batchSize?: number; runs?: number };
}

export interface GateCheck {
  name: string;
  status: 'pass' | 'fail' | 'skip';
  detail: string;
  value?: number;
}

export interface GateReport {
  model: string;
  version: string;
  passed: boolean;
  /** Compared against this live version (change bounds), if any. */
  live?: string;
  checks: GateCheck[];
  metrics: Partial<Record<MetricName, number>>;
  latency?: { p50Ms: number; p99Ms: number; batchSize: number; runs: number };
  durationMs: number;
}

export interface GateOptions {
  /** The live version's directory, for change bounds. */
  liveDir?: string;
  /** Session options (providers, threads) as the stage would use them. */
  session?: OnnxModelOptions;
  /** Progress: phase name, done, total. */
  onProgress?: (phase: string, done: number, total: number) => void;
  logger?: Logger;
}

const metricBound = {
  type: 'object',
  additionalProperties: false,
  required: ['metric'],
  properties: {
    metric: { enum: ['rocAuc', 'precision', 'recall', 'f1', 'accuracy'] },
    min: { type: 'number' },
    max: { type: 'number' },
    change: {
      type: 'object',
      additionalProperties: false,
      required: ['direction'],
      properties: { direction: { enum: ['higher_is_better', 'lower_is_better'] }, absolute: { type: 'number' }, relative: { type: 'number' } },
    },
  },
};
const gateSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    $comment: { type: 'string' },
    golden: { type: 'object', additionalProperties: false, required: ['path', 'tolerance'], properties: { path: { type: 'string' }, tolerance: { type: 'number', minimum: 0 } } },
    confidence: {
      type: 'object',
      additionalProperties: false,
      required: ['path', 'metrics'],
      properties: {
        path: { type: 'string' },
        threshold: { type: 'number', minimum: 0, maximum: 1 },
        metrics: { type: 'array', items: metricBound },
        segments: {
          type: 'array',
          items: { type: 'object', additionalProperties: false, required: ['by', 'metrics'], properties: { by: { type: 'string' }, minRows: { type: 'integer', minimum: 1 }, minPositives: { type: 'integer', minimum: 1 }, metrics: { type: 'array', items: metricBound } } },
        },
      },
    },
    latency: {
      type: 'object',
      additionalProperties: false,
      required: ['p99Ms'],
      properties: { p99Ms: { type: 'number', exclusiveMinimum: 0 }, batchSize: { type: 'integer', minimum: 1 }, runs: { type: 'integer', minimum: 10 } },
    },
  },
};
const validateGate = new Ajv({ allErrors: true, strict: false }).compile(gateSchema);

/** The gate spec of a version (card's `gate`, else gate.json); undefined when it has none. */
export function readGateSpec(dir: string, card: ModelCard = readModelCard(dir)): GateSpec | undefined {
  const file = path.join(dir, card.gate ?? 'gate.json');
  if (!fs.existsSync(file)) {
    if (card.gate) throw new ConfigError('gate', `gate file ${card.gate} not found`, path.join(dir, 'model.json'));
    return undefined;
  }
  const raw: unknown = JSON.parse(fs.readFileSync(file, 'utf8'));
  if (!validateGate(raw)) throw new ConfigErrors((validateGate.errors ?? []).map((e) => new ConfigError(e.instancePath || '(root)', e.message ?? 'is invalid', file)));
  return raw as GateSpec;
}

// ---- metrics (pure) ----


/** Checks one metric value against its bound (and the live value for change bounds). */
export function checkBound(name: string, bound: MetricBound, value: number, live?: number): GateCheck[] {
  const checks: GateCheck[] = [];
  const v = round(value);
  if (bound.min !== undefined || bound.max !== undefined) {
    const ok = Number.isFinite(value) && (bound.min === undefined || value >= bound.min) && (bound.max === undefined || value <= bound.max);
    const range = `${bound.min ?? '-inf'}..${bound.max ?? '+inf'}`;
    checks.push({ name, status: ok ? 'pass' : 'fail', value, detail: `${bound.metric} ${v} ${ok ? 'within' : 'outside'} ${range}` });
  }
  if (bound.change) {
    if (live === undefined) {
      checks.push({ name: `${name} vs live`, status: 'skip', detail: 'no live version to compare with' });
    } else {
      const sign = bound.change.direction === 'higher_is_better' ? 1 : -1;
      const change = sign * (value - live);
      const relative = live === 0 ? (change === 0 ? 0 : sign * Infinity) : change / Math.abs(live);
      const problems: string[] = [];
      if (!Number.isFinite(value)) problems.push('not computable');
      if (bound.change.absolute !== undefined && !(change >= bound.change.absolute)) problems.push(`change ${round(change)} < ${bound.change.absolute}`);
      if (bound.change.relative !== undefined && !(relative >= bound.change.relative)) problems.push(`relative change ${round(relative)} < ${bound.change.relative}`);
      checks.push({
        name: `${name} vs live`,
        status: problems.length === 0 ? 'pass' : 'fail',
        value,
        detail: `${bound.metric} ${v} vs live ${round(live)} (${bound.change.direction.replace(/_/g, ' ')})${problems.length ? ': ' + problems.join(', ') : ''}`,
      });
    }
  }
  return checks;
}

function round(x: number): number {
  return Number.isFinite(x) ? Number(x.toFixed(6)) : x;
}

function matrix(rows: { features: number[] }[], width: number): Float32Array {
  const m = new Float32Array(rows.length * width);
  rows.forEach((r, i) => {
    if (r.features.length !== width) throw new TributaryError(`row ${i} has ${r.features.length} features, the model takes ${width}`);
    m.set(r.features, i * width);
  });
  return m;
}

async function scoreInChunks(model: OnnxModel, rows: Float32Array, count: number, progress: (done: number) => void): Promise<Float32Array> {
  const out = new Float32Array(count);
  const chunk = 500;
  for (let i = 0; i < count; i += chunk) {
    const n = Math.min(chunk, count - i);
    out.set(await model.score(rows.subarray(i * model.width, (i + n) * model.width), n), i);
    progress(i + n);
  }
  return out;
}

interface ConfidenceRow {
  features: number[];
  label: number;
  segment?: Record<string, string>;
}

/**
 * Runs a version's gate: golden end-to-end scores within tolerance, labelled confidence set metrics
 * within bounds (absolute, vs live, per segment), p99 latency under budget. Integrity (sha256) and
 * card validity are checked by loading. Never throws for a failing check: the report says.
 */
export async function runGate(dir: string, options: GateOptions = {}): Promise<GateReport> {
  const started = performance.now();
  const log = options.logger ?? createLogger('model-gate');
  const progress = options.onProgress ?? (() => undefined);
  const card = readModelCard(dir);
  const spec = readGateSpec(dir, card) ?? {};
  const checks: GateCheck[] = [];
  const report: GateReport = { model: card.name, version: card.version, passed: false, checks, metrics: {}, durationMs: 0 };
  log.info({ model: card.name, version: card.version, live: options.liveDir }, 'gate: starting');

  checks.push(card.approvedBy ? { name: 'approval', status: 'pass', detail: `approved by ${card.approvedBy.name} at ${card.approvedBy.at}` } : { name: 'approval', status: 'skip', detail: 'card has no approvedBy' });

  let model: OnnxModel;
  try {
    model = await OnnxModel.loadDir(dir, options.session);
    checks.push({ name: 'load', status: 'pass', detail: `sha256 ok, provider ${model.provider}` });
  } catch (err) {
    checks.push({ name: 'load', status: 'fail', detail: (err as Error).message });
    return finish();
  }
  let live: OnnxModel | undefined;
  try {
    if (options.liveDir) {
      live = await OnnxModel.loadDir(options.liveDir, options.session);
      report.live = live.card.version;
    }

    if (!spec.golden) checks.push({ name: 'golden', status: 'skip', detail: 'no golden set in the gate spec' });
    else {
      const golden = readJsonl<{ features: number[]; score: number }>(path.join(dir, spec.golden.path));
      const scores = await scoreInChunks(model, matrix(golden, model.width), golden.length, (d) => progress('golden', d, golden.length));
      let worst = 0, worstAt = 0, bad = 0;
      golden.forEach((g, i) => {
        const diff = Math.abs(scores[i] - g.score);
        if (!(diff <= spec.golden!.tolerance)) bad++;
        if (!(diff <= worst)) { worst = diff; worstAt = i; }
      });
      checks.push({
        name: 'golden',
        status: bad === 0 && golden.length > 0 ? 'pass' : 'fail',
        value: worst,
        detail: `${golden.length} rows, max |score - expected| ${worst.toExponential(2)} (row ${worstAt}), tolerance ${spec.golden.tolerance}${bad ? `: ${bad} rows outside` : ''}`,
      });
    }

    if (!spec.confidence) checks.push({ name: 'confidence', status: 'skip', detail: 'no confidence set in the gate spec' });
    else {
      const conf = spec.confidence;
      const rows = readJsonl<ConfidenceRow>(path.join(dir, conf.path));
      const labels = Int8Array.from(rows.map((r) => r.label));
      const m = matrix(rows, model.width);
      const total = rows.length * (live ? 2 : 1);
      const scores = await scoreInChunks(model, m, rows.length, (d) => progress('confidence', d, total));
      const liveScores = live ? await scoreInChunks(live, m, rows.length, (d) => progress('confidence', rows.length + d, total)) : undefined;
      const threshold = conf.threshold ?? card.threshold;
      const overall = classificationMetrics(scores, labels, threshold);
      const liveOverall = liveScores && classificationMetrics(liveScores, labels, live!.card.threshold);
      report.metrics = overall;
      for (const b of conf.metrics) checks.push(...checkBound(`confidence.${b.metric}`, b, overall[b.metric], liveOverall?.[b.metric]));
      for (const seg of conf.segments ?? []) {
        const groups = new Map<string, number[]>();
        rows.forEach((r, i) => {
          const key = r.segment?.[seg.by] ?? '(none)';
          (groups.get(key) ?? groups.set(key, []).get(key)!).push(i);
        });
        for (const [key, idx] of [...groups].sort(([a], [b]) => a.localeCompare(b))) {
          const name = `confidence[${seg.by}=${key}]`;
          const segLabels = idx.map((i) => labels[i]);
          const positives = segLabels.filter((l) => l === 1).length;
          if (idx.length < (seg.minRows ?? 1) || positives < (seg.minPositives ?? 5) || positives === idx.length) {
            checks.push({ name, status: 'skip', detail: `${idx.length} rows, ${positives} positive: too few to measure` });
            continue;
          }
          const s = classificationMetrics(idx.map((i) => scores[i]), segLabels, threshold);
          const ls = liveScores && classificationMetrics(idx.map((i) => liveScores[i]), segLabels, live!.card.threshold);
          for (const b of seg.metrics) checks.push(...checkBound(`${name}.${b.metric}`, b, s[b.metric], ls?.[b.metric]));
        }
      }
    }

    if (!spec.latency) checks.push({ name: 'latency', status: 'skip', detail: 'no latency budget in the gate spec' });
    else {
      const batch = spec.latency.batchSize ?? 1;
      const runs = spec.latency.runs ?? 200;
      const input = new Float32Array(batch * model.width);
      for (let i = 0; i < 10; i++) await model.score(input, batch); // warm-up
      const times: number[] = [];
      for (let i = 0; i < runs; i++) {
        const t = performance.now();
        await model.score(input, batch);
        times.push(performance.now() - t);
        if (i % 20 === 19 || i === runs - 1) progress('latency', i + 1, runs);
      }
      times.sort((a, b) => a - b);
      const q = (p: number) => times[Math.min(times.length - 1, Math.ceil(p * times.length) - 1)];
      report.latency = { p50Ms: round(q(0.5)), p99Ms: round(q(0.99)), batchSize: batch, runs };
      const ok = q(0.99) <= spec.latency.p99Ms;
      checks.push({ name: 'latency', status: ok ? 'pass' : 'fail', value: q(0.99), detail: `p99 ${q(0.99).toFixed(3)} ms (p50 ${q(0.5).toFixed(3)}) for batches of ${batch}, budget ${spec.latency.p99Ms} ms` });
    }
  } catch (err) {
    checks.push({ name: 'gate', status: 'fail', detail: `gate could not run: ${(err as Error).message}` });
  } finally {
    await model.close();
    await live?.close();
  }
  return finish();

  function finish(): GateReport {
    report.passed = checks.every((c) => c.status !== 'fail');
    report.durationMs = Math.round(performance.now() - started);
    const failed = checks.filter((c) => c.status === 'fail');
    if (report.passed) log.info({ model: card.name, version: card.version, checks: checks.length, durationMs: report.durationMs }, 'gate: passed');
    else log.error({ model: card.name, version: card.version, failed: failed.map((c) => `${c.name}: ${c.detail}`) }, 'gate: FAILED; this version will not be served');
    return report;
  }
}

/** A report as text lines for people (CLI). */
export function formatGateReport(r: GateReport): string {
  const mark = { pass: 'PASS', fail: 'FAIL', skip: 'skip' } as const;
  const lines = [`model ${r.model}@${r.version}${r.live ? ` (vs live ${r.live})` : ''}: ${r.passed ? 'PASSED' : 'FAILED'} in ${r.durationMs} ms`];
  for (const c of r.checks) lines.push(`  ${mark[c.status]}  ${c.name}: ${c.detail}`);
  return lines.join('\n');
}
