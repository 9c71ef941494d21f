/**
 * Terminal summary of running tributary processes from their Prometheus text exposition: two
 * scrapes `intervalMs` apart give rates and interval percentiles (whole-lifetime percentiles when
 * nothing happened in between).
 */

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses the Prometheus text format (comments skipped; label values unescaped). */
export function parseExposition(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    if (m[3]) {
      const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
      for (let l = re.exec(m[3]); l; l = re.exec(m[3])) labels[l[1]] = l[2].replace(/\\n/g, '\n').replace(/\\"/g, '"').replace(/\\\\/g, '\\');
    }
    const v = m[4] === '+Inf' ? Infinity : m[4] === '-Inf' ? -Infinity : Number(m[4]);
    out.push({ name: m[1], labels, value: v });
  }
  return out;
}

function sum(samples: Sample[], name: string, match: Record<string, string> = {}): number {
  return samples.filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v)).reduce((a, s) => a + s.value, 0);
}

/** Quantile of a histogram's buckets (linear within the bucket, as Prometheus' histogram_quantile). */
export function histogramQuantile(q: number, buckets: { le: number; count: number }[]): number | undefined {
  const b = [...buckets].sort((x, y) => x.le - y.le);
  const total = b.at(-1)?.count ?? 0;
  if (total <= 0) return undefined;
  const rank = q * total;
  let prevLe = 0;
  let prevCount = 0;
  for (const { le, count } of b) {
    if (count >= rank) {
      if (le === Infinity) return prevLe;
      return prevLe + ((le - prevLe) * (rank - prevCount)) / Math.max(1e-12, count - prevCount);
    }
    prevLe = le;
    prevCount = count;
  }
  return prevLe;
}

/** True when the quantile falls in the +Inf bucket: the histogram only says it is above the last bound. */
export function quantileBeyondLastBucket(q: number, buckets: { le: number; count: number }[]): boolean {
  const b = [...buckets].sort((x, y) => x.le - y.le);
  const total = b.at(-1)?.count ?? 0;
  const finite = b.filter((x) => x.le !== Infinity).at(-1);
  return total > 0 && finite !== undefined && finite.count < q * total;
}

function buckets(samples: Sample[], name: string, match: Record<string, string>): { le: number; count: number }[] {
  return samples
    .filter((s) => s.name === `${name}_bucket` && Object.entries(match).every(([k, v]) => s.labels[k] === v))
    .map((s) => ({ le: s.labels.le === '+Inf' ? Infinity : Number(s.labels.le), count: s.value }));
}

/** Interval buckets (b - a); lifetime ones when the interval saw nothing. */
function deltaBuckets(a: Sample[], b: Sample[], name: string, match: Record<string, string>) {
  const before = new Map(buckets(a, name, match).map((x) => [x.le, x.count]));
  const after = buckets(b, name, match);
  const d = after.map((x) => ({ le: x.le, count: x.count - (before.get(x.le) ?? 0) }));
  return (d.at(-1)?.count ?? 0) > 0 ? d : after;
}

export interface StageStatus {
  stage: string;
  inPerSec: number;
  outPerSec: number;
  deadLettered: number;
  batchErrors: number;
  lag: number;
  p99EventToOutputMs?: number;
  p99BatchMs?: number;
  /** The p99s above are only lower bounds: the quantile lies beyond the histogram's last bucket. */
  p99EventToOutputAbove?: boolean;
  p99BatchAbove?: boolean;
}

export interface ModelStatus {
  model: string;
  version: string;
  stage: string;
  p99InferenceMs?: number;
  p99InferenceAbove?: boolean;
}

export interface DriftStatus {
  model: string;
  version: string;
  scope: string;
  level: 'OK' | 'WARN' | 'ALERT' | 'NONE';
  windows: number;
  top: { feature: string; psi: number; level: number }[];
}

export interface ProcessStatus {
  url: string;
  ready?: boolean;
  error?: string;
  stages: StageStatus[];
  models: ModelStatus[];
  drift: DriftStatus[];
}

/** Builds the status of one process from two scrapes `seconds` apart. */
export function summarize(url: string, a: Sample[], b: Sample[], seconds: number, ready?: boolean): ProcessStatus {
  const stages = [...new Set(b.filter((s) => s.name.startsWith('tributary_stage_') && s.labels.stage).map((s) => s.labels.stage))].sort();
  const rate = (name: string, stage: string) => (sum(b, name, { stage }) - sum(a, name, { stage })) / seconds;
  const ms = (x: number | undefined) => (x === undefined ? undefined : x * 1000);
  const stageRows: StageStatus[] = stages.map((stage) => ({
    stage,
    inPerSec: rate('tributary_stage_events_in_total', stage),
    outPerSec: rate('tributary_stage_events_out_total', stage),
    deadLettered: sum(b, 'tributary_stage_dead_lettered_total', { stage }),
    batchErrors: sum(b, 'tributary_stage_batch_errors_total', { stage }),
    lag: sum(b, 'tributary_stage_consumer_lag_messages', { stage }),
    p99EventToOutputMs: ms(histogramQuantile(0.99, deltaBuckets(a, b, 'tributary_stage_event_to_output_seconds', { stage }))),
    p99BatchMs: ms(histogramQuantile(0.99, deltaBuckets(a, b, 'tributary_stage_batch_processing_seconds', { stage }))),
    p99EventToOutputAbove: quantileBeyondLastBucket(0.99, deltaBuckets(a, b, 'tributary_stage_event_to_output_seconds', { stage })),
    p99BatchAbove: quantileBeyondLastBucket(0.99, deltaBuckets(a, b, 'tributary_stage_batch_processing_seconds', { stage })),
  }));
  const models: ModelStatus[] = b
    .filter((s) => s.name === 'tributary_model_live_version_info' && s.value === 1)
    .map((s) => {
      const inference = deltaBuckets(a, b, 'tributary_inference_seconds', { model: s.labels.model, version: s.labels.version });
      return { model: s.labels.model, version: s.labels.version, stage: s.labels.stage, p99InferenceMs: ms(histogramQuantile(0.99, inference)), p99InferenceAbove: quantileBeyondLastBucket(0.99, inference) };
    });
  const scopes = new Map<string, DriftStatus>();
  const levels = ['OK', 'WARN', 'ALERT'] as const;
  for (const s of b.filter((x) => x.name === 'tributary_drift_windows_total')) {
    const k = `${s.labels.model}@${s.labels.version}/${s.labels.scope}`;
    const d = scopes.get(k) ?? { model: s.labels.model, version: s.labels.version, scope: s.labels.scope, level: 'NONE' as const, windows: 0, top: [] };
    d.windows += s.value;
    scopes.set(k, d);
  }
  for (const d of scopes.values()) {
    const isScore = d.scope === 'SCORE';
    const psi = b.filter((s) => s.name === 'tributary_drift_psi' && s.labels.model === d.model && s.labels.version === d.version && (s.labels.feature === '_score') === isScore);
    const lvl = new Map(b.filter((s) => s.name === 'tributary_drift_level' && s.labels.model === d.model && s.labels.version === d.version).map((s) => [s.labels.feature, s.value]));
    d.top = psi.map((s) => ({ feature: s.labels.feature, psi: s.value, level: lvl.get(s.labels.feature) ?? 0 })).sort((x, y) => y.level - x.level || y.psi - x.psi).slice(0, 3);
    d.level = d.top.length === 0 ? 'NONE' : levels[Math.max(...d.top.map((t) => t.level))] ?? 'NONE';
  }
  return { url, ready, stages: stageRows, models, drift: [...scopes.values()] };
}

const f1 = (x: number | undefined, unit = '') => (x === undefined || !Number.isFinite(x) ? '-' : `${x >= 100 ? x.toFixed(0) : x.toFixed(1)}${unit}`);

/** A latency quantile in ms; beyond the histogram's last bucket it is shown as "> <bound>" (e.g. "> 30 s"), never as the bound itself. */
export function latencyText(msValue: number | undefined, above = false): string {
  if (msValue === undefined || !Number.isFinite(msValue)) return '-';
  const text = msValue >= 1000 ? `${f1(msValue / 1000)} s` : `${f1(msValue)} ms`;
  return above ? `> ${text.replace('.0 s', ' s')}` : text;
}

function table(rows: string[][]): string {
  const w = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(w[i])).join('  ').trimEnd()).join('\n');
}

export function renderStatus(procs: ProcessStatus[]): string {
  const out: string[] = [];
  for (const p of procs) {
    out.push(`${p.url}  ${p.error ? `unreachable: ${p.error}` : p.ready === undefined ? '' : p.ready ? 'ready' : 'NOT READY'}`.trimEnd());
    if (p.error) continue;
    if (p.stages.length > 0) {
      out.push(
        table([
          ['STAGE', 'IN/s', 'OUT/s', 'LAG', 'DLQ', 'ERRORS', 'P99 E2E', 'P99 BATCH'],
          ...p.stages.map((s) => [s.stage, f1(s.inPerSec), f1(s.outPerSec), String(s.lag), String(s.deadLettered), String(s.batchErrors), latencyText(s.p99EventToOutputMs, s.p99EventToOutputAbove), latencyText(s.p99BatchMs, s.p99BatchAbove)]),
        ]).replace(/^/gm, '  '),
      );
    }
    for (const m of p.models) out.push(`  model ${m.model}@${m.version} live on stage ${m.stage}; inference p99 ${latencyText(m.p99InferenceMs, m.p99InferenceAbove)}`);
    for (const d of p.drift) {
      const top = d.top.map((t) => `${t.feature} psi ${t.psi.toFixed(3)}`).join(', ');
      out.push(`  drift ${d.model}@${d.version} ${d.scope.toLowerCase()}: ${d.level} after ${d.windows} windows${top ? ` (${top})` : ''}`);
    }
  }
  return `${out.join('\n')}\n`;
}
